//! `create-global-role-binding` and `delete-global-role-binding`: a global role for a user, given or taken away,
//! through the one binding model of [`crate::bindings`]. A create with a `duration` is a time-bound grant and
//! runs through [`crate::grants`].

use async_trait::async_trait;
use rancher_api::requests::{RkGlobalrolebindingsGet, V3GlobalrolebindingsGet};
use rancher_approval::BindingKind;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::bindings::{self, NewBinding, RoleBinding};
use crate::catalog::{self, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::{binding_name, escalation_words, is_escalation, outcome_unknown, Exec};
use crate::session::Session;
use crate::workflow::{Inputs, Pinned, Report, TypedWorkflow};

/// The inputs of `create-global-role-binding`, as people give them and approval requests store them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInputs {
    /// The user, by id or username (an id once the request is filed).
    pub user: String,
    /// The global role.
    pub role: String,
    /// How long a time-bound grant lasts.
    #[serde(default)]
    pub duration: Option<String>,
    /// The fixed binding name of a time-bound grant (set when it is filed).
    #[serde(default)]
    pub binding: Option<String>,
    /// The grant a `rancherctl grants extend` extends.
    #[serde(default)]
    pub extends: Option<String>,
    /// Why the role can grant roles (set when a time-bound grant is filed): read by the runner's containment
    /// check, not by the workflow.
    #[serde(default, rename = "grants-roles")]
    grants_roles: Option<serde::de::IgnoredAny>,
}

impl CreateInputs {
    /// A time-bound grant.
    fn timed(&self) -> bool {
        self.duration.is_some()
    }

    /// The inputs as the time-bound grant code takes them, with `user` in place of the given one.
    fn timed_global<'a>(&'a self, user: &'a str) -> crate::grants::TimedGlobal<'a> {
        crate::grants::TimedGlobal {
            user,
            role: &self.role,
            duration: self.duration.as_deref(),
            binding: self.binding.as_deref(),
            extends: self.extends.as_deref(),
        }
    }
}

/// `create-global-role-binding`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateGlobalRoleBinding;

#[async_trait]
impl TypedWorkflow for CreateGlobalRoleBinding {
    type Inputs = CreateInputs;

    fn def(&self) -> &'static WorkflowDef {
        &catalog::CREATE_GLOBAL_ROLE_BINDING
    }

    fn check(&self, inputs: &CreateInputs) -> Result<()> {
        if let Some(d) = &inputs.duration {
            crate::grants::parse_duration_input(self.def(), d)?;
        }
        Ok(())
    }

    async fn prepare(&self, session: &Session, inputs: CreateInputs, raw: Inputs) -> Result<Pinned> {
        let def = self.def();
        let exec = Exec::new(session, true);
        let mut raw = raw;
        let user = exec.resolve_user(&inputs.user).await?;
        let targets = vec![(user.id.clone(), user.username.clone())];
        raw["user"] = Value::String(user.id.clone());
        exec.resolve_role(&inputs.role).await?;
        let pinned = Pinned { inputs: raw, targets };
        let mut pinned = crate::grants::pin_timed_global(def, inputs.timed_global(&user.id), pinned)?;
        crate::grants::refuse_held_global(session, def, inputs.timed_global(&user.id), &mut pinned).await?;
        use crate::grants::containment;
        if inputs.timed() {
            containment::mark(session, BindingKind::Global, &inputs.role, &mut pinned.inputs).await?;
        } else if let Some(m) = pinned.inputs.as_object_mut() {
            m.remove(containment::INPUT);
        }
        Ok(pinned)
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: CreateInputs, _raw: &Inputs) -> Result<Report> {
        if inputs.timed() {
            return crate::grants::create_timed_global(exec, self.def(), inputs.timed_global(&inputs.user)).await;
        }
        create(exec, &inputs).await
    }

    async fn applied(&self, session: &Session, inputs: CreateInputs, _raw: &Inputs) -> Result<Option<bool>> {
        if inputs.timed() {
            return crate::grants::applied_timed_global().await;
        }
        let exec = Exec::new(session, true);
        let uid = exec.resolve_user(&inputs.user).await?.id;
        Ok(Some(
            !bindings::find_global(session, &uid, &inputs.role).await?.is_empty(),
        ))
    }
}

/// The inputs of `delete-global-role-binding`: a binding by name, or a user and a role.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteInputs {
    /// The binding's name.
    #[serde(default)]
    pub binding: Option<String>,
    /// The user, by id or username (an id once the request is filed).
    #[serde(default)]
    pub user: Option<String>,
    /// The global role.
    #[serde(default)]
    pub role: Option<String>,
}

/// `delete-global-role-binding`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteGlobalRoleBinding;

#[async_trait]
impl TypedWorkflow for DeleteGlobalRoleBinding {
    type Inputs = DeleteInputs;

    fn def(&self) -> &'static WorkflowDef {
        &catalog::DELETE_GLOBAL_ROLE_BINDING
    }

    async fn prepare(&self, session: &Session, inputs: DeleteInputs, raw: Inputs) -> Result<Pinned> {
        let exec = Exec::new(session, true);
        let mut raw = raw;
        let mut targets = Vec::new();
        if let Some(u) = &inputs.user {
            let user = exec.resolve_user(u).await?;
            targets.push((user.id.clone(), user.username.clone()));
            raw["user"] = Value::String(user.id);
        } else if let Some(name) = &inputs.binding {
            if let Some(b) = bindings::all_global(session)
                .await?
                .into_iter()
                .find(|b| &b.name == name)
            {
                if let Some(subject) = b.user.or(b.group) {
                    targets.push((subject.clone(), subject));
                }
            }
        }
        Ok(Pinned { inputs: raw, targets })
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: DeleteInputs, _: &Inputs) -> Result<Report> {
        delete(exec, self.def(), &inputs).await
    }

    async fn applied(&self, session: &Session, inputs: DeleteInputs, _: &Inputs) -> Result<Option<bool>> {
        let exec = Exec::new(session, true);
        let remaining = match (&inputs.binding, &inputs.user, &inputs.role) {
            (Some(name), _, _) => bindings::all_global(session)
                .await?
                .into_iter()
                .filter(|b| &b.name == name)
                .count(),
            (None, Some(u), Some(r)) => bindings::find_global(session, &exec.resolve_user(u).await?.id, r)
                .await?
                .len(),
            _ => return Ok(None),
        };
        Ok(Some(remaining == 0))
    }
}

async fn create(exec: &mut Exec<'_>, inputs: &CreateInputs) -> Result<Report> {
    let user = exec.resolve_user(&inputs.user).await?.id;
    let role = exec.resolve_role(&inputs.role).await?;
    let session = exec.session();
    if let Some(b) = bindings::find_global(session, &user, &role).await?.into_iter().next() {
        return Ok(Report::new(
            format!("{user} already holds {role} (binding {}); nothing created", b.name),
            json!({"created": false, "binding": b.raw}),
        ));
    }
    // Named after the request it executes, so that a second create of it (an executor that was taken over
    // while paused) is refused by the server instead of making a second binding; otherwise the server names it.
    let name = exec.request_id().map(binding_name);
    let new = NewBinding {
        kind: BindingKind::Global,
        name: name.clone().unwrap_or_default(),
        namespace: String::new(),
        scope: String::new(),
        role: role.clone(),
        user: Some(user.clone()),
        group: None,
    };
    for attempt in 0..2 {
        // The created binding's name and the object (in a dry run: the body that would be sent).
        let sent: Result<(String, Value)> = bindings::create(exec, &new).await.map(|b| match b {
            Some(b) => (b.name, serde_json::to_value(&b.raw).unwrap_or(Value::Null)),
            None => (
                "(dry run)".into(),
                exec.planned()
                    .last()
                    .and_then(|p| p.body.clone())
                    .unwrap_or(Value::Null),
            ),
        });
        match sent {
            Ok((name, created)) => {
                return Ok(Report::new(
                    format!("gave {user} the global role {role} (binding {name})"),
                    json!({"created": !exec.is_dry_run(), "binding": created}),
                ));
            }
            Err(Error::Api(e)) if e.is_conflict() => {
                // The server refused a duplicate: the binding exists; report it like the idempotent path. A
                // binding of this request's name that grants something else is not ours.
                let existing = bindings::find_global(session, &user, &role).await?.into_iter().next();
                if let (None, Some(n)) = (&existing, &name) {
                    return Err(Error::Refused(format!("a global role binding named {n} already exists but does not give {user} the role {role}: it is not this request's, and nothing was created")));
                }
                return Ok(Report::new(
                    format!("{user} already holds {role}; the server refused a duplicate"),
                    json!({"created": false, "binding": existing.map(|b| b.raw)}),
                ));
            }
            Err(Error::Api(e)) if outcome_unknown(&e) => {
                // The answer was lost or the server was busy: check before sending anything again, and after
                // the last attempt too (it may have been applied even though its answer never came).
                tracing::warn!(error = %e, attempt, "create answer lost; checking whether the binding exists");
                if let Some(b) = bindings::find_global(session, &user, &role).await?.into_iter().next() {
                    return Ok(Report::new(
                        format!(
                            "gave {user} the global role {role} (binding {}; confirmed after a lost answer)",
                            b.name
                        ),
                        json!({"created": true, "reconciled": true, "binding": b.raw}),
                    ));
                }
                if attempt == 1 {
                    break;
                }
                if let Some(wait) = e.retry_after() {
                    tokio::time::sleep(wait.min(std::time::Duration::from_secs(5))).await;
                }
            }
            Err(Error::Api(e)) if is_escalation(&e) => {
                return Err(Error::Refused(escalation_words("give", &user, &role, &e)))
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::NotFound(format!("could not confirm the binding of {user} to {role}: the server did not answer twice and shows no binding; run the workflow again")))
}
async fn delete(exec: &mut Exec<'_>, def: &WorkflowDef, inputs: &DeleteInputs) -> Result<Report> {
    let (by_name, user_in, role_in) = (
        inputs.binding.as_deref(),
        inputs.user.as_deref(),
        inputs.role.as_deref(),
    );
    let session = exec.session();
    let targets: Vec<RoleBinding> = match (by_name, user_in, role_in) {
        (Some(name), None, None) => bindings::all_global(session)
            .await?
            .into_iter()
            .filter(|b| b.name == name)
            .collect(),
        (None, Some(u), Some(r)) => {
            let user = exec.resolve_user(u).await?.id;
            bindings::find_global(session, &user, r).await?
        }
        _ => {
            return Err(Error::Input {
                workflow: def.id.into(),
                input: "binding".into(),
                message: "give either binding=<name>, or both user=<id or username> and role=<global role>".into(),
            })
        }
    };
    if targets.is_empty() {
        let what = by_name
            .map(|n| format!("binding `{n}`"))
            .unwrap_or_else(|| format!("a binding of {} to {}", user_in.unwrap_or(""), role_in.unwrap_or("")));
        return Ok(Report::new(
            format!("nothing to delete: {what} does not exist"),
            json!({"deleted": []}),
        ));
    }
    let mut deleted = Vec::new();
    for b in &targets {
        let sent = bindings::delete(exec, BindingKind::Global, "", &b.name).await.map(drop);
        match sent {
            Ok(()) => deleted.push(b.name.clone()),
            Err(Error::Api(e)) if e.is_not_found() => deleted.push(b.name.clone()),
            // No escalation case: Rancher's webhook never sees a GlobalRoleBinding delete (rancher/webhook
            // globalrolebinding/validator.go `Operations()` are Create and Update), so only RBAC `delete` decides.
            Err(e) => return Err(e),
        }
    }
    // Rancher's lifecycle finalizer keeps a deleted binding (with a deletion timestamp) until its controller has
    // cleaned up: done only once it is gone.
    let mut pending = Vec::new();
    if !exec.is_dry_run() {
        for name in &deleted {
            if !gone(exec, name).await? {
                pending.push(name.clone());
            }
        }
    }
    let verb = if exec.is_dry_run() { "would delete" } else { "deleted" };
    let done: Vec<&String> = deleted.iter().filter(|n| !pending.contains(n)).collect();
    let mut summary = if done.is_empty() {
        String::new()
    } else {
        format!(
            "{verb} {}",
            done.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )
    };
    if !pending.is_empty() {
        let sep = if summary.is_empty() { "" } else { "; " };
        summary += &format!("{sep}deletion in progress: {} (Rancher is still finalizing; `list-global-role-bindings` shows when it is gone)", pending.join(", "));
    }
    Ok(Report::new(
        summary,
        json!({"deleted": done, "deleting": pending, "bindings": targets.into_iter().map(|b| b.raw).collect::<Vec<_>>()}),
    ))
}

/// Waits (at most 10 s) until the global role binding `name` answers 404; false when it is still there.
async fn gone(exec: &Exec<'_>, name: &str) -> Result<bool> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let client = &exec.session().client;
    loop {
        let got = if exec.rk_mgmt() {
            client
                .global_role_bindings()
                .get(RkGlobalrolebindingsGet::new(name))
                .await
                .map(drop)
        } else {
            client
                .v3()
                .globalrolebindings()
                .get(V3GlobalrolebindingsGet::new(name))
                .await
                .map(drop)
        };
        match got {
            Err(e) if e.is_not_found() => return Ok(true),
            Err(e) => return Err(e.into()),
            Ok(_) if std::time::Instant::now() >= deadline => return Ok(false),
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}
