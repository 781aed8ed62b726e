//! A downstream crate's own workflow: `disable-user` turns a user's login off (`enabled: false`), through the
//! same approval policies, dry run, exactly-once execution and audit as the built-in workflows.
//!
//! Register it next to the built-ins and hand the registry to the runner:
//!
//! ```
//! let registry = custom_workflow::registry();
//! assert!(registry.get("disable-user").is_some() && registry.get("list-users").is_some());
//! // let runner = rancher_workflows::Runner::new(store, "my-tool").with_registry(registry);
//! ```

// rancher-workflows' error keeps the server's answer inline (errors are the cold path), as that crate allows too.
#![allow(clippy::result_large_err)]

use rancher_workflows::api::requests::{RkUsersGet, RkUsersPatch};
use rancher_workflows::{
    async_trait, DefaultApproval, Error, Exec, InputKind, InputSpec, Inputs, Pinned, Registry, Report, Result, Session,
    Workflow, WorkflowDef,
};
use serde_json::{json, Value};

/// The definition people see in `workflows list` and approvers see on a request.
pub static DISABLE_USER: WorkflowDef = WorkflowDef {
    id: "disable-user",
    title: "Disable a user",
    description:
        "Turns a local user's login off (enabled: false) without deleting the user or their bindings. Rancher 2.13+.",
    inputs: &[InputSpec {
        name: "user",
        kind: InputKind::String,
        required: true,
        description: "user id (u-...) or exact username",
    }],
    output: "the user as the server answered",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// The `disable-user` workflow.
#[derive(Debug, Clone, Copy, Default)]
pub struct DisableUser;

/// The built-in workflows plus `disable-user`.
pub fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register(DisableUser).expect("`disable-user` is not a built-in id");
    r
}

fn user_input(inputs: &Value) -> Result<&str> {
    inputs
        .get("user")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Input {
            workflow: DISABLE_USER.id.into(),
            input: "user".into(),
            message: "is required (e.g. --input user=alice)".into(),
        })
}

fn needs_rk_users(session: &Session) -> Result<()> {
    if session.version.at_least(2, 13) {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "disable-user changes users through the RK-API, which serves users from Rancher 2.13; this server is {}. Disable the user in Rancher's UI",
        session.version
    )))
}

#[async_trait]
impl Workflow for DisableUser {
    fn def(&self) -> &'static WorkflowDef {
        &DISABLE_USER
    }

    fn check(&self, inputs: &Inputs) -> Result<()> {
        user_input(inputs).map(drop)
    }

    /// Pins the user to its id at submit, so the approvers review exactly whom it disables, and names that user
    /// as the target (who then may not approve it).
    async fn prepare(&self, session: &Session, inputs: Inputs) -> Result<Pinned> {
        needs_rk_users(session)?;
        let user = Exec::new(session, true).resolve_user(user_input(&inputs)?).await?;
        if user.id == session.principal.id {
            return Err(Error::Refused(
                "disable-user will not disable the account that asks for it (a lockout); ask another admin".into(),
            ));
        }
        let label = if user.username.is_empty() {
            user.id.clone()
        } else {
            user.username.clone()
        };
        Ok(Pinned {
            inputs: json!({"user": user.id}).into(),
            targets: vec![(user.id, label)],
        })
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: &Inputs) -> Result<Report> {
        needs_rk_users(exec.session())?;
        let user = exec.resolve_user(user_input(inputs)?).await?;
        if user.id == exec.session().principal.id {
            return Err(Error::Refused(
                "disable-user will not disable the account that runs it (a lockout)".into(),
            ));
        }
        let patch = RkUsersPatch::new(user.id.clone(), json!({"enabled": false}));
        Ok(match exec.send(&patch).await? {
            None => Report::new(format!("would disable {}", user.id), Value::Null),
            Some(answer) => {
                let answer = serde_json::to_value(answer).unwrap_or(Value::Null);
                Report::new(format!("disabled {} ({})", user.id, user.username), answer)
            }
        })
    }

    /// After a crash: the user shows `enabled: false` when the change was applied.
    async fn applied(&self, session: &Session, inputs: &Inputs) -> Result<Option<bool>> {
        let user = user_input(inputs)?;
        let found = session.client.users().get(RkUsersGet::new(user)).await?;
        Ok(Some(found.enabled == Some(false)))
    }
}
