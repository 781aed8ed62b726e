//! The extension point: a [`Workflow`] is what a runnable workflow implements, and a [`Registry`] maps ids to
//! workflows. The built-in workflows are registered the same way a downstream crate registers its own, so an
//! added workflow gets the same input checks, approval policies, dry run, exactly-once execution and audit.
//!
//! ```
//! use async_trait::async_trait;
//! use rancher_workflows::{DefaultApproval, Exec, InputKind, InputSpec, Registry, Report, Workflow, WorkflowDef};
//! use serde_json::Value;
//!
//! static HELLO: WorkflowDef = WorkflowDef {
//!     id: "hello",
//!     title: "Say hello",
//!     description: "Greets the caller by username.",
//!     inputs: &[InputSpec { name: "greeting", kind: InputKind::String, required: false, description: "the word to use" }],
//!     output: "the greeting",
//!     default_approval: DefaultApproval::None,
//!     writes: false,
//! };
//!
//! struct Hello;
//!
//! #[async_trait]
//! impl Workflow for Hello {
//!     fn def(&self) -> &'static WorkflowDef {
//!         &HELLO
//!     }
//!     async fn run(&self, exec: &mut Exec<'_>, inputs: &Value) -> rancher_workflows::Result<Report> {
//!         let word = inputs.get("greeting").and_then(Value::as_str).unwrap_or("hello");
//!         let who = exec.session().principal.username.clone().unwrap_or_default();
//!         Ok(Report::new(format!("{word}, {who}"), Value::Null))
//!     }
//! }
//!
//! let mut registry = Registry::builtin();
//! registry.register(Hello).unwrap();
//! assert!(registry.get("hello").is_some());
//! assert!(registry.register(Hello).is_err()); // ids are unique
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::catalog::{DefaultApproval, WorkflowDef, CATALOG};
use crate::error::{Error, Result};
use crate::exec::{Exec, Table};
use crate::session::Session;
use crate::targets::Pinned;

/// What one run of a workflow produced, before the runner adds the id, the dry-run flag and the planned writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One line for people.
    pub summary: String,
    /// The result as JSON (for lists, the array of resources as the server sent them).
    pub result: Value,
    /// A table for people, when the result is a list.
    pub table: Option<Table>,
    /// A time-bound grant this run made or extended; the runner records it with the outcome.
    pub grant: Option<rancher_approval::GrantChange>,
}

impl Report {
    /// A report without a table.
    pub fn new(summary: impl Into<String>, result: Value) -> Self {
        Report {
            summary: summary.into(),
            result,
            table: None,
            grant: None,
        }
    }

    /// Adds the time-bound grant this run made or extended.
    pub fn with_grant(mut self, grant: Option<rancher_approval::GrantChange>) -> Self {
        self.grant = grant;
        self
    }

    /// Adds a table for people.
    pub fn with_table(mut self, table: Table) -> Self {
        self.table = Some(table);
        self
    }
}

/// A workflow the runner can install, submit, approve, execute once and reconcile.
///
/// Only [`Workflow::def`] and [`Workflow::run`] are required. A workflow that writes should also implement
/// [`Workflow::prepare`] (check the inputs against the server and pin names to ids at submit, so approvers review
/// what will run) and [`Workflow::applied`] (after a crash, tell from the server whether the change is there, so
/// it is completed exactly once instead of being failed as unknown).
#[async_trait]
pub trait Workflow: Send + Sync + 'static {
    /// Id, title, inputs, output and default approval.
    fn def(&self) -> &'static WorkflowDef;

    /// Checks the inputs beyond their declared kinds, without the server (the runner has already checked names,
    /// kinds and required inputs). Runs before anything else at submit, dry runs included. Default: nothing more.
    fn check(&self, inputs: &Value) -> Result<()> {
        let _ = inputs;
        Ok(())
    }

    /// At submit of a run that will be stored (every write): checks the inputs against the server and returns
    /// the inputs to store, with names replaced by the ids they mean now, and the principals the run acts on (who
    /// then may not approve it). The default stores the inputs as given, with no targets.
    async fn prepare(&self, session: &Session, inputs: Value) -> Result<Pinned> {
        let _ = session;
        Ok(Pinned {
            inputs,
            targets: Vec::new(),
        })
    }

    /// Does the work. Writes go through [`Exec::write`] (or the typed helpers), so a dry run records them instead
    /// of sending them.
    async fn run(&self, exec: &mut Exec<'_>, inputs: &Value) -> Result<Report>;

    /// After a crash between the claim and the recorded outcome: `Some(true)` when the server shows the change,
    /// `Some(false)` when it does not (it then runs once now), `None` when it cannot tell (the run is failed with
    /// the outcome unknown). The default cannot tell.
    async fn applied(&self, session: &Session, inputs: &Value) -> Result<Option<bool>> {
        let _ = (session, inputs);
        Ok(None)
    }

    /// Paths of secret values in `inputs` (a request holding one is never filed for approval).
    fn secret_fields(&self, inputs: &Value) -> Vec<String> {
        let _ = inputs;
        Vec::new()
    }

    /// True when this run cannot write (it then runs at once, without a stored request).
    fn reads_only(&self, inputs: &Value) -> bool {
        let _ = inputs;
        !self.def().writes
    }
}

/// Workflows by id.
#[derive(Clone, Default)]
pub struct Registry {
    workflows: BTreeMap<&'static str, Arc<dyn Workflow>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.workflows.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Registry::default()
    }

    /// The built-in workflows, built once per process (see [`Registry::builtin`] for a copy to extend).
    pub fn builtins() -> &'static Registry {
        static BUILTINS: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
        BUILTINS.get_or_init(Registry::builtin)
    }

    /// A registry of every built-in workflow, to extend with a crate's own.
    pub fn builtin() -> Self {
        let mut r = Registry::empty();
        for def in CATALOG {
            r.register(Builtin(def)).expect("catalog ids are unique");
        }
        crate::grants::register(&mut r);
        crate::review::register(&mut r);
        r
    }

    /// Adds a workflow; refused when its id is already taken or is not a lowercase `kebab-case` id.
    pub fn register(&mut self, workflow: impl Workflow) -> Result<()> {
        self.register_arc(Arc::new(workflow))
    }

    /// Adds a shared workflow (see [`Registry::register`]).
    pub fn register_arc(&mut self, workflow: Arc<dyn Workflow>) -> Result<()> {
        let id = workflow.def().id;
        let well_formed = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-');
        if !well_formed {
            return Err(Error::Registry(format!(
                "workflow id `{id}` must be lowercase letters, digits and dashes, like `grant-cluster-role`"
            )));
        }
        if self.workflows.contains_key(id) {
            return Err(Error::Registry(format!(
                "a workflow with id `{id}` is already registered; pick another id"
            )));
        }
        self.workflows.insert(id, workflow);
        Ok(())
    }

    /// The workflow with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Workflow>> {
        self.workflows.get(id)
    }

    /// The workflow with this id, or the error that names the unknown id.
    pub fn require(&self, id: &str) -> Result<&Arc<dyn Workflow>> {
        self.get(id).ok_or_else(|| Error::UnknownWorkflow(id.into()))
    }

    /// Every workflow's definition, built-ins in catalog order first, then the others by id.
    pub fn defs(&self) -> Vec<&'static WorkflowDef> {
        let mut out: Vec<&'static WorkflowDef> = CATALOG.iter().filter(|d| self.workflows.contains_key(d.id)).collect();
        out.extend(
            self.workflows
                .values()
                .map(|w| w.def())
                .filter(|d| !CATALOG.iter().any(|c| c.id == d.id)),
        );
        out
    }
}

/// A workflow of the catalog, dispatched to the built-in code.
struct Builtin(&'static WorkflowDef);

#[async_trait]
impl Workflow for Builtin {
    fn def(&self) -> &'static WorkflowDef {
        self.0
    }

    fn check(&self, inputs: &Value) -> Result<()> {
        if self.0.id == "rancher-api-request" {
            crate::exec::api_generic_request(self.0, inputs)?;
        }
        crate::grants::check_duration_input(self.0, inputs)?;
        Ok(())
    }

    async fn prepare(&self, session: &Session, inputs: Value) -> Result<Pinned> {
        let inputs = crate::access::prepare(session, self.0, inputs).await?;
        let pinned = crate::targets::pin(session, self.0, inputs).await?;
        let mut pinned = crate::grants::pin_timed_global(self.0, pinned)?;
        if self.0.id == "create-global-role-binding" {
            crate::grants::refuse_held_global(session, self.0, &mut pinned).await?;
            use crate::grants::containment;
            let role = pinned.inputs.get("role").and_then(Value::as_str).map(str::to_string);
            match role.filter(|_| crate::grants::timed(&pinned.inputs)) {
                Some(role) => {
                    containment::mark(
                        session,
                        rancher_approval::BindingKind::Global,
                        &role,
                        &mut pinned.inputs,
                    )
                    .await?
                }
                None => {
                    if let Some(m) = pinned.inputs.as_object_mut() {
                        m.remove(containment::INPUT);
                    }
                }
            }
        }
        Ok(pinned)
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: &Value) -> Result<Report> {
        exec.run_builtin(self.0, inputs).await
    }

    async fn applied(&self, session: &Session, inputs: &Value) -> Result<Option<bool>> {
        crate::exec::applied(session, self.0, inputs).await
    }

    fn secret_fields(&self, inputs: &Value) -> Vec<String> {
        crate::targets::secret_fields(self.0, inputs)
    }

    fn reads_only(&self, inputs: &Value) -> bool {
        if self.0.default_approval == DefaultApproval::InstallerForWrites {
            if let Some(op) = inputs
                .get("operation")
                .and_then(Value::as_str)
                .and_then(rancher_api::find_operation)
            {
                return !op.mutating;
            }
        }
        !self.0.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_all_registered_in_catalog_order() {
        let r = Registry::builtin();
        let ids: Vec<_> = r.defs().iter().map(|d| d.id).collect();
        let catalog: Vec<_> = CATALOG.iter().map(|d| d.id).collect();
        assert_eq!(ids[..catalog.len()], catalog[..]);
        // Then the workflows registered as their own types, by id.
        let mut own = ids[catalog.len()..].to_vec();
        own.sort();
        assert_eq!(own, ids[catalog.len()..], "by id");
        for id in [
            "grant-cluster-role",
            "revoke-project-role",
            "list-cluster-role-bindings",
            "token-report",
            "access-review",
            "offboard-user",
        ] {
            assert!(own.contains(&id), "{id} in {ids:?}");
        }
        assert!(matches!(r.require("no-such"), Err(Error::UnknownWorkflow(id)) if id == "no-such"));
    }

    #[test]
    fn generic_request_reads_only_for_read_operations() {
        let r = Registry::builtin();
        let w = r.get("rancher-api-request").unwrap();
        assert!(w.reads_only(&serde_json::json!({"operation": "rk.users.list"})));
        assert!(!w.reads_only(&serde_json::json!({"operation": "rk.globalrolebindings.create"})));
        assert!(!r.get("create-global-role-binding").unwrap().reads_only(&Value::Null));
    }

    static BAD: WorkflowDef = WorkflowDef {
        id: "Bad Id",
        title: "",
        description: "",
        inputs: &[],
        output: "",
        default_approval: DefaultApproval::None,
        writes: false,
    };

    struct Bad;

    #[async_trait]
    impl Workflow for Bad {
        fn def(&self) -> &'static WorkflowDef {
            &BAD
        }
        async fn run(&self, _: &mut Exec<'_>, _: &Value) -> Result<Report> {
            Ok(Report::new("", Value::Null))
        }
    }

    #[test]
    fn malformed_and_duplicate_ids_are_refused_with_the_fix() {
        let mut r = Registry::builtin();
        let e = r.register(Bad).unwrap_err().to_string();
        assert!(e.contains("Bad Id") && e.contains("lowercase"), "{e}");
        let dup = r
            .register_arc(r.get("list-users").unwrap().clone())
            .unwrap_err()
            .to_string();
        assert!(dup.contains("already registered"), "{dup}");
    }
}
