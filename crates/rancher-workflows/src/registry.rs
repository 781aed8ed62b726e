//! The top of the crate: a [`Registry`] maps ids to [`Workflow`]s, once. The built-in workflows are registered the
//! same way a downstream crate registers its own, so an added workflow gets the same input checks, approval
//! policies, dry run, exactly-once execution and audit.
//!
//! ```
//! use async_trait::async_trait;
//! use rancher_workflows::{DefaultApproval, Exec, InputKind, InputSpec, Inputs, Registry, Report, Workflow, WorkflowDef};
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
//!     async fn run(&self, exec: &mut Exec<'_>, inputs: &Inputs) -> rancher_workflows::Result<Report> {
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

use crate::access::{AccessControl, AccessFlow};
use crate::builtins::{ApiRequest, CreateGlobalRoleBinding, DeleteGlobalRoleBinding};
use crate::catalog::{WorkflowDef, CATALOG};
use crate::error::{Error, Result};
use crate::exec::{Exec, RunOutput};
use crate::listing::{List, ListKind};
use crate::workflow::{Inputs, Typed};
pub use crate::workflow::{Report, Workflow};

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
        let mut all: Vec<Arc<dyn Workflow>> = Vec::new();
        all.extend(ListKind::ALL.map(|k| Arc::new(List(k)) as Arc<dyn Workflow>));
        all.push(Arc::new(Typed(CreateGlobalRoleBinding)));
        all.push(Arc::new(Typed(DeleteGlobalRoleBinding)));
        all.push(Arc::new(Typed(ApiRequest)));
        all.extend(AccessFlow::ALL.map(|f| Arc::new(AccessControl(f)) as Arc<dyn Workflow>));
        all.extend(crate::grants::workflows());
        all.extend(crate::review::workflows());
        all.push(Arc::new(Typed(crate::apply_policies::ApplyPolicies)));
        let mut r = Registry::empty();
        for w in all {
            r.register_arc(w).expect("built-in workflow ids are unique");
        }
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

/// Looks a built-in workflow up by id.
pub fn find(id: &str) -> Option<&'static WorkflowDef> {
    Registry::builtins().get(id).map(|w| w.def())
}

/// Every built-in workflow, in the order the docs list them.
pub fn all() -> Vec<&'static WorkflowDef> {
    Registry::builtins().defs()
}

impl Exec<'_> {
    /// Runs one built-in workflow of the catalog.
    pub async fn run(self, def: &WorkflowDef, inputs: impl Into<Inputs>) -> Result<RunOutput> {
        let workflow = Registry::builtins().require(def.id)?.clone();
        self.run_workflow(workflow.as_ref(), &inputs.into()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DefaultApproval;
    use async_trait::async_trait;
    use serde_json::Value;

    /// What decides how a run prints is said by each workflow, not by a list of ids: the six built-in lists name
    /// their list, and the two reports say they print whole.
    #[test]
    fn the_lists_and_the_reports_say_what_they_are() {
        let r = Registry::builtins();
        let ids = |keep: &dyn Fn(&Arc<dyn Workflow>) -> bool| {
            let mut ids: Vec<&str> = r
                .defs()
                .iter()
                .map(|d| d.id)
                .filter(|id| keep(r.get(id).unwrap()))
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(
            ids(&|w| w.list().is_some()),
            [
                "list-clusters",
                "list-global-role-bindings",
                "list-global-roles",
                "list-projects",
                "list-role-templates",
                "list-users"
            ]
        );
        assert_eq!(ids(&|w| w.report_document()), ["access-review", "token-report"]);
        for id in ids(&|w| w.list().is_some() || w.report_document()) {
            assert!(!r.get(id).unwrap().def().writes, "{id} writes nothing");
        }
    }

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
        assert!(w.reads_only(&serde_json::json!({"operation": "rk.users.list"}).into()));
        assert!(!w.reads_only(&serde_json::json!({"operation": "rk.globalrolebindings.create"}).into()));
        assert!(!r
            .get("create-global-role-binding")
            .unwrap()
            .reads_only(&Value::Null.into()));
    }

    /// Inputs as requests filed by earlier versions store them (names pinned to ids, the inputs the filing adds),
    /// for every built-in workflow: each still passes the catalog check and parses into the workflow's own struct,
    /// so a request filed before the structs still runs.
    #[test]
    fn stored_inputs_of_every_workflow_parse_into_its_struct() {
        use serde_json::json;
        let grants_roles = json!({"why": "role `cluster-owner`: it binds roles", "warning": "WARNING: not contained"});
        let samples: Vec<(&str, Value)> = vec![
            ("list-users", json!({})),
            ("list-global-roles", json!({})),
            ("list-global-role-bindings", json!({})),
            ("list-clusters", json!({})),
            ("list-projects", json!({})),
            ("list-role-templates", json!({})),
            (
                "create-global-role-binding",
                json!({"user": "u-abc12", "role": "admin"}),
            ),
            (
                "create-global-role-binding",
                json!({"user": "u-abc12", "role": "restricted-admin", "duration": "8h", "binding": "grb-ra-0123456789ab", "grants-roles": grants_roles}),
            ),
            (
                "create-global-role-binding",
                json!({"user": "u-abc12", "role": "admin", "duration": "2h", "binding": "grb-ra-0123456789ab", "extends": "req-0123456789abcdef"}),
            ),
            ("delete-global-role-binding", json!({"binding": "grb-x7k2m"})),
            (
                "delete-global-role-binding",
                json!({"user": "u-abc12", "role": "admin"}),
            ),
            (
                "rancher-api-request",
                json!({"operation": "rk.users.get", "params": {"name": "u-abc12"}}),
            ),
            (
                "rancher-api-request",
                json!({"operation": "rk.globalroles.update", "params": {"name": "ops"}, "body": {"rules": []},
                       "role-change": {"before": [], "after": [], "holders": 2}}),
            ),
            ("access-control-status", json!({})),
            (
                "access-control-enable",
                json!({"provider": "openldap", "config": "/srv/ldap.json", "mode": "restricted", "allow": "ann,ops",
                       "test-user": "ann", "test-password-file": "/srv/pw",
                       "pinned-files": {"config": {"path": "/srv/ldap.json", "sha256": "ab12"}, "test-password-file": {"path": "/srv/pw", "sha256": "cd34"}},
                       "settings-shown": {"servers": ["ldap"], "serviceAccountPassword": "(masked)"}}),
            ),
            (
                "access-control-enable",
                json!({"provider": "github", "test-user": "ann",
                       "held-secrets": {"handle": "h-0123", "held": "held in memory"},
                       "settings-shown": {"clientId": "abc", "clientSecret": "(masked)"}}),
            ),
            (
                "access-control-allow",
                json!({"identities": "openldap_user://CN=Ann,OU=Users,DC=example,DC=com,github_team://7", "mode": "restricted", "provider": "openldap"}),
            ),
            ("access-control-disallow", json!({"identities": "ann"})),
            (
                "access-control-disable",
                json!({"provider": "activedirectory", "acknowledge": "3f9a"}),
            ),
            ("access-control-switch-plan", json!({"to": "github"})),
            ("identities-search", json!({"name": "ann", "type": "user"})),
            ("list-cluster-role-bindings", json!({"cluster": "c-m-1"})),
            ("list-project-role-bindings", json!({"project": "c-m-1:p-1"})),
            (
                "grant-cluster-role",
                json!({"cluster": "c-m-1", "user": "u-abc12", "role": "cluster-owner", "duration": "2h", "binding": "crtb-ra-0123456789ab", "grants-roles": grants_roles}),
            ),
            (
                "grant-project-role",
                json!({"project": "c-m-1:p-1", "group": "github_team://7", "role": "project-member", "binding": "prtb-ra-0123456789ab"}),
            ),
            (
                "grant-project-role",
                json!({"project": "c-m-1:p-1", "user": "u-abc12", "role": "project-member", "binding": "prtb-ra-0123456789ab", "duration": "1h", "extends": "req-0123456789abcdef"}),
            ),
            (
                "revoke-cluster-role",
                json!({"cluster": "c-m-1", "binding": "crtb-x7k2m"}),
            ),
            (
                "revoke-project-role",
                json!({"project": "c-m-1:p-1", "user": "u-abc12", "role": "project-member"}),
            ),
            (
                "access-review",
                json!({"user": "u-abc12", "role": "admin", "cluster": "c-m-1", "project": "c-m-1:p-1"}),
            ),
            ("who-can", json!({"global-role": "admin"})),
            ("who-can", json!({"role": "cluster-owner", "cluster": "local"})),
            ("token-report", json!({"unused-days": "90", "top": "10"})),
            (
                "cleanup-tokens",
                json!({"filter": "expired", "pinned": ["token-a"], "shown": {"count": 1, "users": 1, "sample": ["token-a"]}}),
            ),
            (
                "offboard-user",
                json!({"user": "u-abc12", "plan": {"steps": [
                    {"step": "delete-binding", "kind": "grb", "namespace": "", "name": "grb-x7k2m", "role": "admin", "scope": "global"},
                    {"step": "delete-token", "name": "token-a"},
                    {"step": "disable-user", "user": "u-abc12"}
                ], "shown": ["delete global role binding grb-x7k2m"], "username": "ann"}}),
            ),
            (
                "apply-policies",
                json!({"files": {"10-rules.yaml": "rules: []\n"}, "hash": "3f1e"}),
            ),
        ];
        let r = Registry::builtin();
        for def in r.defs() {
            assert!(
                samples.iter().any(|(id, _)| *id == def.id),
                "{}: add the inputs its requests store to this test",
                def.id
            );
        }
        for (id, stored) in samples {
            let w = r.get(id).unwrap_or_else(|| panic!("{id} is not registered"));
            let inputs: Inputs = stored.clone().into();
            crate::workflow::check_inputs(w.def(), &inputs).unwrap_or_else(|e| panic!("{id} {stored}: {e}"));
            w.parses(&inputs).unwrap_or_else(|e| panic!("{id} {stored}: {e}"));
        }
        // The structs refuse what no request ever stored, with the runner's words.
        let w = r.get("grant-cluster-role").unwrap();
        let e = w
            .parses(&json!({"cluster": "c-m-1", "usr": "u-1"}).into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("usr"), "{e}");
        let e = w
            .parses(&json!({"cluster": "c-m-1", "user": 5}).into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("input `user`: must be text, got 5"), "{e}");
        let e = r
            .get("access-control-enable")
            .unwrap()
            .parses(&json!({"provider": "openldap", "pinned": {}}).into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("pinned"), "{e}");
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
        async fn run(&self, _: &mut Exec<'_>, _: &Inputs) -> Result<Report> {
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
