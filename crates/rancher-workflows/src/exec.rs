//! What each workflow does on the server. Reads go straight through; writes go through [`Exec::write`], which in
//! a dry run records the exact request instead of sending it, and which reconciles a write whose answer was lost
//! by checking the server rather than blindly sending it again.

use futures::TryStreamExt;
use rancher_api::requests::{
    RkGlobalrolebindingsCreate, RkGlobalrolebindingsDelete, RkGlobalrolebindingsGet, RkGlobalrolesGet, RkUsersGet,
    V3GlobalrolebindingsCreate, V3GlobalrolebindingsDelete, V3GlobalrolebindingsGet, V3GlobalrolebindingsList,
    V3GlobalrolesGet, V3UsersGet, V3UsersList,
};
use rancher_api::{types, Error as ApiError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::catalog::WorkflowDef;
use crate::error::{Error, Result};
use crate::registry::{Report, Workflow};
use crate::session::Session;

/// A request a dry run would have sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRequest {
    /// Operation id.
    pub operation: String,
    /// HTTP method.
    pub method: String,
    /// Path with the parameters filled in and encoded, and the query string, as it would be sent.
    pub path: String,
    /// The JSON body, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// A table for people: column names and rows of text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<String>>,
}

/// What a workflow run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    /// Workflow id.
    pub workflow: String,
    /// One line for people.
    pub summary: String,
    /// The result: for lists, the array of resources as the server sent them.
    pub result: Value,
    /// A table for people, when the result is a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
    /// True when nothing was written.
    pub dry_run: bool,
    /// In a dry run, the writes that would have been sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<PlannedRequest>,
    /// The time-bound grant this run made or extended (recorded with the outcome).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<rancher_approval::GrantChange>,
}

/// Runs workflows for one session.
pub struct Exec<'s> {
    pub(crate) session: &'s Session,
    pub(crate) dry_run: bool,
    planned: Vec<PlannedRequest>,
    /// Set when this run executes an approval request: its id, and the check that the claim is still ours.
    claim: Option<(String, std::sync::Arc<dyn Fence>)>,
}

/// Confirms, before each write of an approved execution, that this process still holds the execution's claim.
///
/// A process that was paused (or judged gone) may have had its execution taken over by another; its claim is no
/// longer current then, and it must stop without sending anything, since the new holder runs the request itself.
#[async_trait::async_trait]
pub trait Fence: Send + Sync {
    /// `Ok` while the claim is current (and, for a lease, extended for the write); otherwise the error that stops
    /// the run.
    async fn confirm(&self) -> Result<()>;
}

pub(crate) fn input<'a>(def: &WorkflowDef, inputs: &'a Value, name: &str) -> Result<Option<&'a str>> {
    match inputs.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(Error::Input {
            workflow: def.id.into(),
            input: name.into(),
            message: format!("must be text, got {other}"),
        }),
    }
}

pub(crate) fn required<'a>(def: &WorkflowDef, inputs: &'a Value, name: &str) -> Result<&'a str> {
    input(def, inputs, name)?.ok_or_else(|| Error::Input {
        workflow: def.id.into(),
        input: name.into(),
        message: format!("is required (e.g. --input {name}=...)"),
    })
}

/// Checks that only known inputs are given.
pub fn check_inputs(def: &WorkflowDef, inputs: &Value) -> Result<()> {
    let Some(map) = inputs.as_object() else {
        return Err(Error::Input {
            workflow: def.id.into(),
            input: "*".into(),
            message: "inputs must be a JSON object".into(),
        });
    };
    for key in map.keys() {
        if !def.inputs.iter().any(|i| i.name == key) {
            // Inputs the runner sets itself are not offered to people.
            let known: Vec<&str> = def.inputs.iter().filter(|i| !i.is_internal()).map(|i| i.name).collect();
            let hint = rancher_api::spec::closest(key, known.iter().copied())
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            return Err(Error::Input {
                workflow: def.id.into(),
                input: key.clone(),
                message: if known.is_empty() {
                    "this workflow takes no inputs".into()
                } else {
                    format!("unknown input; {hint}this workflow takes {}", known.join(", "))
                },
            });
        }
    }
    Ok(())
}

/// A user found by id or username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The user id.
    pub id: String,
    /// The username (empty when the server has none, e.g. some external users).
    pub username: String,
}

/// After a crash between claim and outcome: whether the server shows the run's change as applied (`Some(true)`),
/// not applied (`Some(false)`, safe to run now), or it cannot tell (`None`).
pub async fn applied(session: &Session, def: &WorkflowDef, inputs: &Value) -> Result<Option<bool>> {
    let exec = Exec::new(session, true);
    match def.id {
        "create-global-role-binding" if crate::grants::timed(inputs) => {
            crate::grants::applied_timed_global(session, inputs).await
        }
        "create-global-role-binding" => {
            let (Some(user), Some(role)) = (input(def, inputs, "user")?, input(def, inputs, "role")?) else {
                return Ok(None);
            };
            let uid = exec.resolve_user(user).await?.id;
            Ok(Some(!exec.find_bindings(&uid, role).await?.is_empty()))
        }
        "delete-global-role-binding" => {
            let remaining = match (
                input(def, inputs, "binding")?,
                input(def, inputs, "user")?,
                input(def, inputs, "role")?,
            ) {
                (Some(name), _, _) => exec.bindings().await?.into_iter().filter(|b| b.name == name).count(),
                (None, Some(u), Some(r)) => exec.find_bindings(&exec.resolve_user(u).await?.id, r).await?.len(),
                _ => return Ok(None),
            };
            Ok(Some(remaining == 0))
        }
        wf if wf.starts_with("access-control-") => crate::access::applied(session, wf, inputs).await,
        _ => Ok(None),
    }
}

/// A global role binding, whichever surface it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// Name (metadata name / norman id).
    pub name: String,
    /// Global role.
    pub role: String,
    /// User id, for user bindings.
    pub user: Option<String>,
    /// Group principal, for group bindings.
    pub group: Option<String>,
    /// The object as the server sent it.
    pub raw: Value,
}

impl<'s> Exec<'s> {
    /// An executor; `dry_run` sends reads but only records writes.
    pub fn new(session: &'s Session, dry_run: bool) -> Self {
        Exec {
            session,
            dry_run,
            planned: Vec::new(),
            claim: None,
        }
    }

    /// Runs as the execution of approval request `request_id`: every write first asks `fence` whether the claim
    /// is still this process's, and writes that create objects name them after the request, so that a write
    /// repeated by another executor is found (the server refuses a second object of that name).
    pub fn fenced(mut self, request_id: impl Into<String>, fence: std::sync::Arc<dyn Fence>) -> Self {
        self.claim = Some((request_id.into(), fence));
        self
    }

    /// The approval request this run executes, when it executes one.
    pub fn request_id(&self) -> Option<&str> {
        self.claim.as_ref().map(|(id, _)| id.as_str())
    }

    /// Before a write: confirms that this process still holds the execution's claim (see [`Exec::fenced`]); an
    /// unfenced run (a read, a run that needs no request) always may. Workflows that send writes through their
    /// own client call this first.
    pub async fn confirm_claim(&self) -> Result<()> {
        match &self.claim {
            Some((_, fence)) if !self.dry_run => fence.confirm().await,
            _ => Ok(()),
        }
    }

    fn rk_users(&self) -> bool {
        self.session.version.at_least(2, 13)
    }

    fn rk_mgmt(&self) -> bool {
        self.session.version.at_least(2, 11)
    }

    /// The session this executor acts with (who, which server, which version).
    pub fn session(&self) -> &'s Session {
        self.session
    }

    /// True when writes are recorded instead of sent.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// Records a write a dry run would have sent (for writes sent as typed requests).
    pub fn record_planned(&mut self, planned: PlannedRequest) {
        self.planned.push(planned);
    }

    /// Runs one built-in workflow of the catalog.
    pub async fn run(self, def: &WorkflowDef, inputs: &Value) -> Result<RunOutput> {
        let registry = crate::registry::Registry::builtin();
        let workflow = registry.require(def.id)?.clone();
        self.run_workflow(workflow.as_ref(), inputs).await
    }

    /// Runs any workflow: checks its inputs against its definition, runs it, and adds the planned writes of a dry
    /// run.
    pub async fn run_workflow(mut self, workflow: &dyn Workflow, inputs: &Value) -> Result<RunOutput> {
        let def = workflow.def();
        check_inputs(def, inputs)?;
        let Report {
            summary,
            result,
            table,
            grant,
        } = workflow.run(&mut self, inputs).await?;
        Ok(RunOutput {
            workflow: def.id.into(),
            summary,
            result,
            table,
            dry_run: self.dry_run,
            planned: self.planned,
            grant,
        })
    }

    /// The built-in workflows' code, by id.
    pub(crate) async fn run_builtin(&mut self, def: &WorkflowDef, inputs: &Value) -> Result<Report> {
        if let Some(list) = self.stream_list(def.id, true).await? {
            return list.collect_report().await;
        }
        let (summary, result, table) = match def.id {
            "create-global-role-binding" if crate::grants::timed(inputs) => {
                return crate::grants::create_timed_global(self, def, inputs).await
            }
            "create-global-role-binding" => self.create_binding(def, inputs).await?,
            "delete-global-role-binding" => self.delete_binding(def, inputs).await?,
            "rancher-api-request" => self.api_request(def, inputs).await?,
            id if id.starts_with("access-control-") || id == "identities-search" => {
                crate::access::run(self, def, inputs).await?
            }
            other => return Err(Error::UnknownWorkflow(other.into())),
        };
        Ok(Report {
            summary,
            result,
            table,
            grant: None,
        })
    }

    /// Resolves a user given by id or username. Something shaped like a user id (`u-…`, `user-…`) is looked up
    /// by id only, never as a username, so a pinned id can never land on another account; a username must match
    /// exactly (the server's filter is not trusted to).
    pub async fn resolve_user(&self, user: &str) -> Result<ResolvedUser> {
        let looks_like_id = (user.starts_with("u-") || user.starts_with("user-"))
            && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if looks_like_id {
            let client = &self.session.client;
            let found = if self.rk_users() {
                client.users().get(RkUsersGet::new(user)).await.map(|u| u.username)
            } else {
                client.v3().users().get(V3UsersGet::new(user)).await.map(|u| u.username)
            };
            return match found {
                Ok(username) => Ok(ResolvedUser { id: user.to_string(), username: username.unwrap_or_default() }),
                Err(e) if e.is_not_found() => Err(Error::NotFound(format!("user id `{user}` does not exist (it may have been deleted); `rancherctl run list-users` shows the users"))),
                Err(e) => Err(e.into()),
            };
        }
        let found = self
            .session
            .client
            .v3()
            .users()
            .list_page(V3UsersList::new().username(user))
            .await?;
        let exact = found
            .data
            .into_iter()
            .find(|u| u.username.as_deref() == Some(user))
            .and_then(|u| u.id);
        match exact {
            Some(id) => Ok(ResolvedUser {
                id,
                username: user.to_string(),
            }),
            None => {
                let hint = self.user_hint(user).await.unwrap_or_default();
                Err(Error::NotFound(format!("user `{user}` does not exist (neither a user id nor a username){hint}; `rancherctl run list-users` shows them")))
            }
        }
    }

    /// For a user name that matched nothing exactly: the users it may have meant (a username in another case, a
    /// display name), as "; `Bob Example` is the display name of bob (u-pgn2v): use user=bob". Only on this error
    /// path, so the whole user list is read only when a person mistyped.
    async fn user_hint(&self, user: &str) -> Result<String> {
        use futures::StreamExt as _;
        let wanted = user.trim().to_lowercase();
        let mut hits: Vec<(String, String, String)> = Vec::new();
        let mut users = self.user_items(self.rk_users());
        while let Some(u) = users.next().await {
            let (id, username, display) = match u? {
                crate::listing::Listed::User(u) => (
                    u.metadata.and_then(|m| m.name).unwrap_or_default(),
                    u.username.unwrap_or_default(),
                    u.display_name.unwrap_or_default(),
                ),
                crate::listing::Listed::V3User(u) => (
                    u.id.unwrap_or_default(),
                    u.username.unwrap_or_default(),
                    u.name.unwrap_or_default(),
                ),
                _ => continue,
            };
            if !username.is_empty() && (username.to_lowercase() == wanted || display.to_lowercase() == wanted) {
                let how = if display.to_lowercase() == wanted {
                    "the display name"
                } else {
                    "the username, in another case,"
                };
                hits.push((id, username, how.to_string()));
                if hits.len() > 3 {
                    break;
                }
            }
        }
        Ok(match hits.as_slice() {
            [] => String::new(),
            [(id, username, how)] => format!("; `{user}` is {how} of {username} ({id}): use user={username}"),
            many => format!(
                "; `{user}` is the name of several users: {}; use one username",
                many.iter()
                    .map(|(id, u, _)| format!("{u} ({id})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// Checks that a global role exists.
    pub async fn resolve_role(&self, role: &str) -> Result<String> {
        let client = &self.session.client;
        let found = if self.rk_mgmt() {
            client.global_roles().get(RkGlobalrolesGet::new(role)).await.map(drop)
        } else {
            client
                .v3()
                .globalroles()
                .get(V3GlobalrolesGet::new(role))
                .await
                .map(drop)
        };
        match found {
            Ok(()) => Ok(role.to_string()),
            Err(e) if e.is_not_found() => {
                let roles = self
                    .stream_list("list-global-roles", true)
                    .await?
                    .expect("a list workflow");
                let mut names: Vec<String> = roles
                    .map_ok(|r| r.row(&Default::default()).swap_remove(0))
                    .try_collect()
                    .await?;
                names.sort();
                Err(Error::NotFound(format!(
                    "global role `{role}` does not exist; existing roles: {}",
                    names.join(", ")
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn find_bindings(&self, user: &str, role: &str) -> Result<Vec<Binding>> {
        if self.rk_mgmt() {
            Ok(self
                .bindings()
                .await?
                .into_iter()
                .filter(|b| b.user.as_deref() == Some(user) && b.role == role)
                .collect())
        } else {
            let list = V3GlobalrolebindingsList::new().user_id(user).global_role_id(role);
            let items: Vec<_> = self
                .session
                .client
                .v3()
                .globalrolebindings()
                .list(list)
                .try_collect()
                .await?;
            Ok(items
                .iter()
                .map(Binding::from_v3)
                .filter(|b| b.user.as_deref() == Some(user) && b.role == role)
                .collect())
        }
    }

    async fn create_binding(&mut self, def: &WorkflowDef, inputs: &Value) -> Result<(String, Value, Option<Table>)> {
        let user_in = required(def, inputs, "user")?;
        let role_in = required(def, inputs, "role")?;
        let user = self.resolve_user(user_in).await?.id;
        let role = self.resolve_role(role_in).await?;
        if let Some(b) = self.find_bindings(&user, &role).await?.into_iter().next() {
            return Ok((
                format!("{user} already holds {role} (binding {}); nothing created", b.name),
                json!({"created": false, "binding": b.raw}),
                None,
            ));
        }
        let rk = self.rk_mgmt();
        // Named after the request it executes, so that a second create of it (an executor that was taken over
        // while paused) is refused by the server instead of making a second binding.
        let name = self.request_id().map(binding_name);
        let metadata = match &name {
            Some(n) => types::ObjectMeta {
                name: Some(n.clone()),
                ..Default::default()
            },
            None => types::ObjectMeta {
                generate_name: Some("grb-".into()),
                ..Default::default()
            },
        };
        let rk_req = RkGlobalrolebindingsCreate::new(types::GlobalRoleBinding {
            api_version: Some("management.cattle.io/v3".into()),
            kind: Some("GlobalRoleBinding".into()),
            metadata: Some(metadata),
            global_role_name: Some(role.clone()),
            user_name: Some(user.clone()),
            ..Default::default()
        });
        let v3_req = V3GlobalrolebindingsCreate::new(types::V3GlobalRoleBinding {
            type_: Some("globalRoleBinding".into()),
            global_role_id: Some(role.clone()),
            user_id: Some(user.clone()),
            name: name.clone(),
            ..Default::default()
        });
        for attempt in 0..2 {
            // The created binding's name and the object (in a dry run: the body that would be sent).
            let sent: Result<(String, Value)> = if rk {
                self.send(&rk_req).await.map(|b| match b {
                    Some(b) => (
                        Binding::from_rk(&b).name,
                        serde_json::to_value(&b).unwrap_or(Value::Null),
                    ),
                    None => (
                        "(dry run)".into(),
                        serde_json::to_value(&rk_req.body).unwrap_or(Value::Null),
                    ),
                })
            } else {
                self.send(&v3_req).await.map(|b| match b {
                    Some(b) => (
                        Binding::from_v3(&b).name,
                        serde_json::to_value(&b).unwrap_or(Value::Null),
                    ),
                    None => (
                        "(dry run)".into(),
                        serde_json::to_value(&v3_req.body).unwrap_or(Value::Null),
                    ),
                })
            };
            match sent {
                Ok((name, created)) => {
                    return Ok((
                        format!("gave {user} the global role {role} (binding {name})"),
                        json!({"created": !self.dry_run, "binding": created}),
                        None,
                    ));
                }
                Err(Error::Api(e)) if e.is_conflict() => {
                    // The server refused a duplicate: the binding exists; report it like the idempotent path. A
                    // binding of this request's name that grants something else is not ours.
                    let existing = self.find_bindings(&user, &role).await?.into_iter().next();
                    if let (None, Some(n)) = (&existing, &name) {
                        return Err(Error::Refused(format!("a global role binding named {n} already exists but does not give {user} the role {role}: it is not this request's, and nothing was created")));
                    }
                    return Ok((
                        format!("{user} already holds {role}; the server refused a duplicate"),
                        json!({"created": false, "binding": existing.map(|b| b.raw)}),
                        None,
                    ));
                }
                Err(Error::Api(e)) if outcome_unknown(&e) => {
                    // The answer was lost or the server was busy: check before sending anything again, and after
                    // the last attempt too (it may have been applied even though its answer never came).
                    tracing::warn!(error = %e, attempt, "create answer lost; checking whether the binding exists");
                    if let Some(b) = self.find_bindings(&user, &role).await?.into_iter().next() {
                        return Ok((
                            format!(
                                "gave {user} the global role {role} (binding {}; confirmed after a lost answer)",
                                b.name
                            ),
                            json!({"created": true, "reconciled": true, "binding": b.raw}),
                            None,
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

    async fn delete_binding(&mut self, def: &WorkflowDef, inputs: &Value) -> Result<(String, Value, Option<Table>)> {
        let by_name = input(def, inputs, "binding")?;
        let user_in = input(def, inputs, "user")?;
        let role_in = input(def, inputs, "role")?;
        let targets: Vec<Binding> = match (by_name, user_in, role_in) {
            (Some(name), None, None) => self.bindings().await?.into_iter().filter(|b| b.name == name).collect(),
            (None, Some(u), Some(r)) => {
                let user = self.resolve_user(u).await?.id;
                self.find_bindings(&user, r).await?
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
            return Ok((
                format!("nothing to delete: {what} does not exist"),
                json!({"deleted": []}),
                None,
            ));
        }
        let mut deleted = Vec::new();
        for b in &targets {
            let sent = if self.rk_mgmt() {
                self.send(&RkGlobalrolebindingsDelete::new(b.name.as_str()))
                    .await
                    .map(drop)
            } else {
                self.send(&V3GlobalrolebindingsDelete::new(b.name.as_str()))
                    .await
                    .map(drop)
            };
            match sent {
                Ok(()) => deleted.push(b.name.clone()),
                Err(Error::Api(e)) if e.is_not_found() => deleted.push(b.name.clone()),
                Err(Error::Api(e)) if is_escalation(&e) => {
                    return Err(Error::Refused(escalation_words(
                        "remove from",
                        b.user.as_deref().unwrap_or("its subject"),
                        &b.role,
                        &e,
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        // Rancher's lifecycle finalizer keeps a deleted binding (with a deletion timestamp) until its controller has
        // cleaned up: done only once it is gone.
        let mut pending = Vec::new();
        if !self.dry_run {
            for name in &deleted {
                if !self.gone(name).await? {
                    pending.push(name.clone());
                }
            }
        }
        let verb = if self.dry_run { "would delete" } else { "deleted" };
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
        Ok((
            summary,
            json!({"deleted": done, "deleting": pending, "bindings": targets.into_iter().map(|b| b.raw).collect::<Vec<_>>()}),
            None,
        ))
    }

    async fn api_request(&mut self, def: &WorkflowDef, inputs: &Value) -> Result<(String, Value, Option<Table>)> {
        let op = required(def, inputs, "operation")?;
        let params = api_params(def, inputs)?;
        let body = inputs.get("body").filter(|b| !b.is_null()).cloned();
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let req = api_generic_request(def, inputs)?;
        let spec = req.spec();
        if spec.mutating {
            let mut out = self.write(op, &pairs, body).await?;
            // Outcomes of approved runs are stored: a fresh token or kubeconfig in the answer never is.
            spec.redact_answer(&mut out);
            Ok((format!("{} {} done", spec.method, spec.id), out, None))
        } else {
            let out = self.session.client.call(op, &pairs, body).await?;
            Ok((format!("{} {} answered", spec.method, spec.id), out, None))
        }
    }

    /// Sends a typed write (any generated request), or in a dry run records it and answers `None`. Downstream
    /// workflows write this way: the request is checked by its type, and a dry run shows exactly what it would
    /// send.
    pub async fn send<R: rancher_api::Request + Sync>(&mut self, request: &R) -> Result<Option<R::Response>> {
        self.send_masked(request, Value::clone).await
    }

    /// Like [`Exec::send`], with the body of a recorded request passed through `mask` first (so a password in the
    /// body never reaches the planned requests that are printed and stored).
    pub(crate) async fn send_masked<R: rancher_api::Request + Sync>(
        &mut self,
        request: &R,
        mask: impl Fn(&Value) -> Value,
    ) -> Result<Option<R::Response>> {
        if self.dry_run {
            let spec = request.spec();
            let path = rancher_api::request_target(request)?;
            let body = match request.body_bytes() {
                None => None,
                Some(Ok(bytes)) => serde_json::from_slice::<Value>(&bytes).ok().map(|b| mask(&b)),
                Some(Err(e)) => return Err(Error::Refused(format!("{}: the body cannot be encoded: {e}", spec.id))),
            };
            self.planned.push(PlannedRequest {
                operation: spec.id.into(),
                method: spec.method.to_string(),
                path,
                body,
            });
            return Ok(None);
        }
        self.confirm_claim().await?;
        Ok(Some(self.session.client.send(request).await?))
    }

    /// Sends a write (any operation of the endpoint list, checked against it), or in a dry run records it.
    pub async fn write(&mut self, op: &str, params: &[(&str, &str)], body: Option<Value>) -> Result<Value> {
        self.write_masked(op, params, body, |b| b.clone()).await
    }

    /// Sends a write, or in a dry run records it with its body passed through `mask` first (so a password in
    /// the body never reaches the planned requests that are printed and stored).
    pub(crate) async fn write_masked(
        &mut self,
        op: &str,
        params: &[(&str, &str)],
        body: Option<Value>,
        mask: impl Fn(&Value) -> Value,
    ) -> Result<Value> {
        let req = rancher_api::GenericRequest::new(op, params, body.clone())?;
        if self.dry_run {
            let path = req.target()?;
            let shown = body.as_ref().map(&mask);
            self.planned.push(PlannedRequest {
                operation: op.into(),
                method: req.spec().method.to_string(),
                path,
                body: shown.clone(),
            });
            return Ok(shown.unwrap_or(Value::Null));
        }
        self.confirm_claim().await?;
        Ok(self.session.client.call(op, params, body).await?)
    }
}

impl Exec<'_> {
    /// Waits (at most 10 s) until the global role binding `name` answers 404; false when it is still there.
    async fn gone(&self, name: &str) -> Result<bool> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let client = &self.session.client;
        loop {
            let got = if self.rk_mgmt() {
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
}

/// The name of the global role binding that executing request `request_id` creates: `grb-` and the request id,
/// reduced to what an object name may hold.
pub fn binding_name(request_id: &str) -> String {
    let id: String = request_id
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(58)
        .collect();
    format!("grb-{}", id.trim_end_matches('-'))
}

/// Rancher's webhook refusal of a binding that grants more than the caller holds
/// (rancher/webhook pkg/resources/management.cattle.io/v3/globalrolebinding/validator.go).
fn is_escalation(e: &ApiError) -> bool {
    e.is_forbidden()
        && e.server_error()
            .and_then(|s| s.message())
            .is_some_and(|m| m.contains("errors due to escalation"))
}

/// The escalation refusal in plain words.
fn escalation_words(verb: &str, user: &str, role: &str, e: &ApiError) -> String {
    format!(
        "Rancher refused to {verb} `{user}` the global role `{role}` (errors due to escalation): the account running this workflow may not grant permissions it does not hold itself, unless it has the `bind` verb on globalroles as an admin has. Run it with an admin's API key. Server said: {e}"
    )
}

/// A refused RK list in plain words: Kubernetes RBAC allows or refuses the whole list, never a part of it.
pub(crate) fn refused_list(op: &str, e: &ApiError) -> String {
    let what = op.split('.').nth(1).unwrap_or("objects");
    format!(
        "Rancher refused the list of {what} (403): this account may not list all {what}, and the RK-API never shows a part of a list; run it with an account whose global roles grant `list` on {what} (an admin's API key). Server said: {e}"
    )
}

/// Whether a refused or failed write may or may not have been applied (and must be checked, not resent).
fn outcome_unknown(e: &ApiError) -> bool {
    matches!(e, ApiError::Transport { .. } | ApiError::Timeout { .. })
        || matches!(e.status(), Some(429 | 500 | 502 | 503 | 504))
}

/// The request the API request workflow sends, checked against the endpoint list (operation, parameters, body)
/// and rendered once, so a request that could not be sent as promised is refused before anything is filed.
pub(crate) fn api_generic_request(def: &WorkflowDef, inputs: &Value) -> Result<rancher_api::GenericRequest> {
    let op = required(def, inputs, "operation")?;
    let params = api_params(def, inputs)?;
    let body = inputs.get("body").filter(|b| !b.is_null()).cloned();
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let req = rancher_api::GenericRequest::new(op, &pairs, body)?;
    req.target()?;
    Ok(req)
}

/// The `params` input of the API request workflow, as string pairs.
pub fn api_params(def: &WorkflowDef, inputs: &Value) -> Result<Vec<(String, String)>> {
    match inputs.get("params") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                other => Err(Error::Input {
                    workflow: def.id.into(),
                    input: "params".into(),
                    message: format!("`{k}` must be text, a number or a boolean, not {other}"),
                }),
            })
            .collect(),
        Some(other) => Err(Error::Input {
            workflow: def.id.into(),
            input: "params".into(),
            message: format!("must be a JSON object such as {{\"name\":\"admin\"}}, not {other}"),
        }),
    }
}

/// Builds an inputs object from `key=value` pairs (values that parse as JSON objects stay objects).
pub fn inputs_from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        let value = if v.trim_start().starts_with('{') {
            serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into()))
        } else {
            Value::String(v.into())
        };
        m.insert(k.into(), value);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::find;

    #[test]
    fn inputs_from_pairs_keeps_json_objects() {
        let v = inputs_from_pairs([
            ("operation", "rk.users.get"),
            ("params", r#"{"name":"u-1"}"#),
            ("note", "{not json"),
        ]);
        assert_eq!(v["params"]["name"], json!("u-1"));
        assert_eq!(v["note"], json!("{not json"));
    }

    #[test]
    fn unknown_and_mistyped_inputs_are_named() {
        let def = find("create-global-role-binding").unwrap();
        let e = check_inputs(def, &json!({"usr": "x"})).unwrap_err().to_string();
        assert_eq!(e, "create-global-role-binding: input `usr`: unknown input; did you mean `user`? this workflow takes user, role, duration");
        let e = check_inputs(find("list-users").unwrap(), &json!({"x": "1"}))
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("this workflow takes no inputs"), "{e}");
        let e = required(def, &json!({"user": 5}), "user").unwrap_err().to_string();
        assert!(e.contains("must be text"), "{e}");
        let e = required(def, &json!({"user": "  "}), "user").unwrap_err().to_string();
        assert!(e.contains("is required (e.g. --input user=...)"), "{e}");
    }

    #[test]
    fn api_params_accept_scalars_only() {
        let def = find("rancher-api-request").unwrap();
        let p = api_params(def, &json!({"params": {"name": "x", "limit": 5, "me": true}})).unwrap();
        assert!(p.contains(&("limit".into(), "5".into())) && p.contains(&("me".into(), "true".into())));
        assert!(api_params(def, &json!({"params": {"a": [1]}})).is_err());
        assert!(api_params(def, &json!({"params": "name=x"})).is_err());
    }

    #[test]
    fn lost_answers_and_busy_servers_are_unknown_outcomes() {
        let lost = ApiError::Transport {
            operation: "x".into(),
            message: "reset".into(),
            source: None,
        };
        assert!(outcome_unknown(&lost));
        let refused = ApiError::Api {
            operation: "x".into(),
            status: 403,
            server: rancher_api::ServerError::Unparsed {
                content_type: None,
                snippet: String::new(),
            },
            retry_after: None,
        };
        assert!(!outcome_unknown(&refused));
    }
}
