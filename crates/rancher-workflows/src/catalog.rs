//! The catalog of prebuilt workflows: ids, titles, inputs and default approval policies.

use rancher_approval::Policy;
use serde::Serialize;

/// The kind of value an input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// Text.
    String,
    /// A JSON object (e.g. a request body or a parameter map).
    Json,
}

/// One input of a workflow, described for a UI or the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputSpec {
    /// Name, as in `--input name=value`.
    pub name: &'static str,
    /// Value kind.
    pub kind: InputKind,
    /// Must be given (see the workflow for alternatives).
    pub required: bool,
    /// What it means.
    pub description: &'static str,
}

impl InputSpec {
    /// Whether the runner sets this input itself when a request is filed (its description starts with "set when",
    /// "set by" or "set at"): such inputs are not offered to people in errors and suggestions.
    pub fn is_internal(&self) -> bool {
        ["set when", "set by", "set at"]
            .iter()
            .any(|p| self.description.starts_with(p))
    }
}

/// The id of a catalog workflow nearest to `id`, for "did you mean" (`None` when nothing is near).
pub fn suggest_workflow(id: &str) -> Option<&'static str> {
    rancher_api::spec::closest(id, CATALOG.iter().map(|d| d.id))
}

/// ` did you mean `X`?` for an unknown workflow id, or nothing.
pub(crate) fn did_you_mean(id: &str) -> String {
    suggest_workflow(id)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// What approval a workflow gets when installed without an explicit policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultApproval {
    /// Runs at once.
    None,
    /// The installer approves (another admin when the installer is the requester).
    Installer,
    /// No approval for read operations, installer approval for writes.
    InstallerForWrites,
}

impl DefaultApproval {
    /// The policy to install.
    pub fn policy(self) -> Policy {
        match self {
            DefaultApproval::None => Policy::none(),
            DefaultApproval::Installer | DefaultApproval::InstallerForWrites => Policy::installer(),
        }
    }
}

/// One of the built-in list workflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `list-users`.
    Users,
    /// `list-global-roles`.
    GlobalRoles,
    /// `list-global-role-bindings`.
    GlobalRoleBindings,
    /// `list-clusters`.
    Clusters,
    /// `list-projects`.
    Projects,
    /// `list-role-templates`.
    RoleTemplates,
}

impl ListKind {
    /// Every list, in catalog order.
    pub const ALL: [ListKind; 6] = [
        ListKind::Users,
        ListKind::GlobalRoles,
        ListKind::GlobalRoleBindings,
        ListKind::Clusters,
        ListKind::Projects,
        ListKind::RoleTemplates,
    ];

    /// The workflow id.
    pub const fn id(self) -> &'static str {
        self.def().id
    }

    /// The list workflow with this id.
    pub fn of(id: &str) -> Option<ListKind> {
        ListKind::ALL.into_iter().find(|k| k.id() == id)
    }

    /// Its definition in the catalog.
    pub const fn def(self) -> &'static WorkflowDef {
        match self {
            ListKind::Users => &LIST_USERS,
            ListKind::GlobalRoles => &LIST_GLOBAL_ROLES,
            ListKind::GlobalRoleBindings => &LIST_GLOBAL_ROLE_BINDINGS,
            ListKind::Clusters => &LIST_CLUSTERS,
            ListKind::Projects => &LIST_PROJECTS,
            ListKind::RoleTemplates => &LIST_ROLE_TEMPLATES,
        }
    }
}

/// A prebuilt workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowDef {
    /// Stable id.
    pub id: &'static str,
    /// Short title.
    pub title: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Its inputs.
    pub inputs: &'static [InputSpec],
    /// What it returns.
    pub output: &'static str,
    /// Approval when installed without a policy.
    pub default_approval: DefaultApproval,
    /// It can change state on the server.
    pub writes: bool,
}

const NO_INPUTS: &[InputSpec] = &[];

/// Set at submit for a time-bound grant of a role that can grant roles: why, and the warning approvers see.
pub const GRANTS_ROLES: InputSpec = InputSpec {
    name: "grants-roles",
    kind: InputKind::Json,
    required: false,
    description: "set when a time-bound grant is filed: why its role can grant roles (so the grant is not contained), and the warning approvers see",
};

/// Inputs of `access-control-allow` and `access-control-disallow`.
const CHANGE_ALLOWED_INPUTS: &[InputSpec] = &[
    InputSpec {
        name: "identities",
        kind: InputKind::String,
        required: true,
        description: "comma-separated names, logins or ids",
    },
    InputSpec {
        name: "mode",
        kind: InputKind::String,
        required: false,
        description: "also change the access mode",
    },
    InputSpec {
        name: "provider",
        kind: InputKind::String,
        required: false,
        description: "the provider (default: the enabled one)",
    },
];

/// `list-users`.
pub const LIST_USERS: WorkflowDef = WorkflowDef {
    id: "list-users",
    title: "List Rancher users",
    description: "Every user of the management plane, all pages.",
    inputs: NO_INPUTS,
    output: "the users as the server sent them",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// `list-global-roles`.
pub const LIST_GLOBAL_ROLES: WorkflowDef = WorkflowDef {
    id: "list-global-roles",
    title: "List global roles",
    description: "Every global role (admin, user, custom roles), all pages.",
    inputs: NO_INPUTS,
    output: "the global roles as the server sent them",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// `list-global-role-bindings`.
pub const LIST_GLOBAL_ROLE_BINDINGS: WorkflowDef = WorkflowDef {
    id: "list-global-role-bindings",
    title: "List global role bindings",
    description: "Which user or group holds which global role, with user names resolved.",
    inputs: NO_INPUTS,
    output: "the bindings as the server sent them; the table adds the user name",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// `list-clusters`.
pub const LIST_CLUSTERS: WorkflowDef = WorkflowDef {
    id: "list-clusters",
    title: "List clusters",
    description:
        "Every cluster with its id and display name (the names `cluster=` and `project=cluster/project` inputs take).",
    inputs: NO_INPUTS,
    output: "the clusters as the server sent them",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// `list-projects`.
pub const LIST_PROJECTS: WorkflowDef = WorkflowDef {
    id: "list-projects",
    title: "List projects",
    description: "Every project of every cluster, all pages, with its cluster's display name.",
    inputs: NO_INPUTS,
    output: "the projects as the server sent them",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// `list-role-templates`.
pub const LIST_ROLE_TEMPLATES: WorkflowDef = WorkflowDef {
    id: "list-role-templates",
    title: "List role templates",
    description: "The cluster and project role templates used for access control.",
    inputs: NO_INPUTS,
    output: "the role templates as the server sent them",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// `create-global-role-binding`.
pub const CREATE_GLOBAL_ROLE_BINDING: WorkflowDef = WorkflowDef {
    id: "create-global-role-binding",
    title: "Create a global role binding",
    description:
        "Give a user a global role (e.g. admin or user). Idempotent: an existing binding is reported, not duplicated.",
    inputs: &[
        InputSpec {
            name: "user",
            kind: InputKind::String,
            required: true,
            description: "the user, by id (u-xxxxx, user-xxxxx) or username",
        },
        InputSpec {
            name: "role",
            kind: InputKind::String,
            required: true,
            description: "the global role by name, e.g. admin, user, restricted-admin",
        },
        InputSpec {
            name: "duration",
            kind: InputKind::String,
            required: false,
            description: "grant it for this long (30m, 8h, 7d), counted from execution; then it is revoked",
        },
        InputSpec {
            name: "binding",
            kind: InputKind::String,
            required: false,
            description: "set when a timed request is filed: the binding's fixed name",
        },
        InputSpec {
            name: "extends",
            kind: InputKind::String,
            required: false,
            description: "set by `rancherctl grants extend`: the grant to extend by `duration`",
        },
        GRANTS_ROLES,
    ],
    output: "the binding created, or the one that already existed",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// `delete-global-role-binding`.
pub const DELETE_GLOBAL_ROLE_BINDING: WorkflowDef = WorkflowDef {
    id: "delete-global-role-binding",
    title: "Delete a global role binding",
    description: "Remove a binding by its name, or every binding of a user to a role. A binding that does not exist is nothing to delete.",
    inputs: &[
        InputSpec { name: "binding", kind: InputKind::String, required: false, description: "the binding name (grb-xxxxx); or give user and role" },
        InputSpec { name: "user", kind: InputKind::String, required: false, description: "the user, by id or username (with role)" },
        InputSpec { name: "role", kind: InputKind::String, required: false, description: "the global role name (with user)" },
    ],
    output: "the bindings deleted",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// `rancher-api-request`.
pub const RANCHER_API_REQUEST: WorkflowDef = WorkflowDef {
    id: "rancher-api-request",
    title: "Rancher API request",
    description: "Any operation of the endpoint list, by id, with parameters and a body checked before sending.",
    inputs: &[
        InputSpec { name: "operation", kind: InputKind::String, required: true, description: "operation id, e.g. rk.users.list (see `rancherctl api list`)" },
        InputSpec { name: "params", kind: InputKind::Json, required: false, description: "path and query parameters as a JSON object of strings" },
        InputSpec { name: "body", kind: InputKind::Json, required: false, description: "the JSON body, for operations that take one" },
        InputSpec { name: "role-change", kind: InputKind::Json, required: false, description: "set when an edit of a global role or role template is filed: the rules before and after and how many hold the role (all of them are targets)" },
    ],
    output: "the server's answer",
    default_approval: DefaultApproval::InstallerForWrites,
    writes: true,
};

/// `access-control-status`.
pub const ACCESS_CONTROL_STATUS: WorkflowDef = WorkflowDef {
    id: "access-control-status",
    title: "Access control status",
    description: "Which auth provider is on, its access mode and how many identities are allowed, on 1.x or 2.x. Never shows a secret.",
    inputs: NO_INPUTS,
    output: "the generation, version and every provider config's public state",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// `access-control-enable`.
pub const ACCESS_CONTROL_ENABLE: WorkflowDef = WorkflowDef {
    id: "access-control-enable",
    title: "Enable access control safely",
    description: "Save the provider settings disabled, prove a test login works, and only then enable. A failed test stops and leaves the provider off: no lockout.",
    inputs: &[
        InputSpec { name: "provider", kind: InputKind::String, required: true, description: "activedirectory, azuread, openldap, github or local" },
        InputSpec { name: "config", kind: InputKind::Json, required: false, description: "the provider settings: inline as a JSON object (the service takes only this; its secrets are held in memory, never stored), or, run locally, the path of a JSON or YAML file (chmod 600 when it holds a secret)" },
        InputSpec { name: "mode", kind: InputKind::String, required: false, description: "unrestricted (default), restricted or required; checked against the server version" },
        InputSpec { name: "allow", kind: InputKind::String, required: false, description: "identities to allow, comma-separated names or ids (looked up on the server); the tester is always allowed" },
        InputSpec { name: "test-user", kind: InputKind::String, required: false, description: "login of the test user (password providers)" },
        InputSpec { name: "test-password-file", kind: InputKind::String, required: false, description: "path of a chmod 600 file holding the test user's password" },
        InputSpec { name: "test-code-file", kind: InputKind::String, required: false, description: "path of a chmod 600 file holding an OAuth code (GitHub; Azure AD on 2.x)" },
        InputSpec { name: "test-password", kind: InputKind::String, required: false, description: "the test user's password inline (with inline settings): held in memory for this request only, used once, never stored" },
        InputSpec { name: "test-code", kind: InputKind::String, required: false, description: "an OAuth code inline (with inline settings): held in memory for this request only, used once, never stored" },
        InputSpec { name: "held-secrets", kind: InputKind::Json, required: false, description: "set when a request with inline settings is filed: the handle of the settings and credentials the filing service holds in memory" },
        InputSpec { name: "pinned-files", kind: InputKind::Json, required: false, description: "set when an approval request is filed: the SHA-256 of each file; execution refuses a file that changed" },
        InputSpec { name: "settings-shown", kind: InputKind::Json, required: false, description: "set when an approval request is filed: the settings for approvers, every field not known to be harmless masked" },
    ],
    output: "the provider, mode and allowed identities now in force, and who the test login was",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// `access-control-allow`.
pub const ACCESS_CONTROL_ALLOW: WorkflowDef = WorkflowDef {
    id: "access-control-allow",
    title: "Allow identities",
    description:
        "Add users or groups (looked up, never typed as raw ids) to the allowed list; stored secrets are kept.",
    inputs: CHANGE_ALLOWED_INPUTS,
    output: "the identities added and the allowed list now in force",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// `access-control-disallow`.
pub const ACCESS_CONTROL_DISALLOW: WorkflowDef = WorkflowDef {
    id: "access-control-disallow",
    title: "Disallow identities",
    description: "Remove users or groups from the allowed list; refuses a change that would lock the caller out. Stored secrets are kept.",
    inputs: CHANGE_ALLOWED_INPUTS,
    output: "the identities removed and the allowed list now in force",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// `access-control-disable`.
pub const ACCESS_CONTROL_DISABLE: WorkflowDef = WorkflowDef {
    id: "access-control-disable",
    title: "Disable access control",
    description: "Turn the enabled provider off. On 2.x Rancher then resets its settings and deletes its users, bindings and tokens (the plan lists them); on 1.x the server is open to anyone until a provider is enabled again.",
    inputs: &[
        InputSpec {
            name: "provider",
            kind: InputKind::String,
            required: false,
            description: "the provider (default: the enabled one)",
        },
        InputSpec {
            name: "acknowledge",
            kind: InputKind::String,
            required: false,
            description: "2.x: the code the plan shows for what Rancher will delete; required when it deletes anything",
        },
        InputSpec {
            name: "deletions",
            kind: InputKind::Json,
            required: false,
            description: "set when the request is filed (2.x): what Rancher will delete, for approvers; execution refuses when the server's set differs",
        },
    ],
    output: "the provider turned off",
    default_approval: DefaultApproval::Installer,
    writes: true,
};

/// `access-control-switch-plan`.
pub const ACCESS_CONTROL_SWITCH_PLAN: WorkflowDef = WorkflowDef {
    id: "access-control-switch-plan",
    title: "Plan a provider switch",
    description: "Every admin and user account whose external identity would no longer resolve after switching to another provider, to re-map by hand; on 2.x also what Rancher deletes when the current provider is disabled, with the code `access-control disable` needs.",
    inputs: &[InputSpec { name: "to", kind: InputKind::String, required: true, description: "the provider you would switch to" }],
    output: "the accounts (1.x) or users (2.x) that would lose their identity",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// `identities-search`.
pub const IDENTITIES_SEARCH: WorkflowDef = WorkflowDef {
    id: "identities-search",
    title: "Search identities",
    description:
        "Look up users, groups and organisations of the auth providers by name (1.x identities, 2.x principals).",
    inputs: &[
        InputSpec {
            name: "name",
            kind: InputKind::String,
            required: true,
            description: "name or login prefix",
        },
        InputSpec {
            name: "type",
            kind: InputKind::String,
            required: false,
            description: "user or group",
        },
    ],
    output: "the identities with their ids, to use in allow/disallow",
    default_approval: DefaultApproval::None,
    writes: false,
};

/// The definitions of the prebuilt workflows, in the order the docs list them. Each is a
/// [`crate::Workflow`] of its own; [`crate::Registry::builtin`] maps their ids (and the others') to them once.
pub static CATALOG: &[WorkflowDef] = &[
    LIST_USERS,
    LIST_GLOBAL_ROLES,
    LIST_GLOBAL_ROLE_BINDINGS,
    LIST_CLUSTERS,
    LIST_PROJECTS,
    LIST_ROLE_TEMPLATES,
    CREATE_GLOBAL_ROLE_BINDING,
    DELETE_GLOBAL_ROLE_BINDING,
    RANCHER_API_REQUEST,
    ACCESS_CONTROL_STATUS,
    ACCESS_CONTROL_ENABLE,
    ACCESS_CONTROL_ALLOW,
    ACCESS_CONTROL_DISALLOW,
    ACCESS_CONTROL_DISABLE,
    ACCESS_CONTROL_SWITCH_PLAN,
    IDENTITIES_SEARCH,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{all, find};

    #[test]
    fn ids_are_unique_and_defaults_match_the_design_table() {
        let mut ids: Vec<_> = all().iter().map(|w| w.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all().len());
        for w in all() {
            let needs = w.default_approval.policy().needs_approval();
            assert_eq!(needs, w.writes, "{}: writes and default approval disagree", w.id);
        }
        assert_eq!(find("list-users").unwrap().default_approval, DefaultApproval::None);
        assert_eq!(
            find("create-global-role-binding").unwrap().default_approval,
            DefaultApproval::Installer
        );
    }
}
