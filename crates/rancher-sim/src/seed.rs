//! Deterministic seed data: built-in roles and role templates, clusters and projects, named users with
//! bindings and tokens, a kubeconfig, an audit policy, settings, auth configs and small directories.

use serde_json::{json, Value};

use crate::config::{RancherVersion, SimConfig};
use crate::ids;
use crate::state::{key_of, set_path, DirGroup, DirUser, Directory, Kind, Store, Verb};

/// The password of every named seeded user (local provider).
pub const DEFAULT_PASSWORD: &str = "rancher-sim-password";

/// Creation time of seeded objects (a fixed clock keeps seeded data deterministic).
pub(crate) const SEED_TIME: &str = "2025-01-01T00:00:00Z";

/// A seeded user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// The user id (`user-xxxxx`, `u-xxxxx`).
    pub id: String,
    /// The login name.
    pub username: String,
}

/// The seeded principals tests refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUsers {
    /// The bootstrap admin (`user-xxxxx`, username `admin`).
    pub admin: SimUser,
    /// A second admin (`u-xxxxx`, username `approver`).
    pub approver: SimUser,
    /// The standard user whose token is [`crate::SimTokens::user`] (`alice`).
    pub user: SimUser,
    /// All named standard users (`alice`, `bob`, `carol`, `dave`).
    pub standard: Vec<SimUser>,
    /// The downstream cluster id (`c-xxxxx`).
    pub downstream_cluster: String,
    /// Project ids (`<cluster>:p-xxxxx`): local Default, local System, downstream Default, downstream System.
    pub projects: Vec<String>,
    /// The password of every named user.
    pub password: String,
}

/// Full bearer tokens of the seeded principals.
#[derive(Clone, PartialEq, Eq)]
pub struct SimTokens {
    /// The bootstrap admin's API token.
    pub admin: String,
    /// The second admin's API token.
    pub approver: String,
    /// A standard user's API token.
    pub user: String,
    /// An admin token scoped to the downstream cluster.
    pub cluster_scoped: String,
    /// An expired token.
    pub expired: String,
}

impl std::fmt::Debug for SimTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mask = |t: &str| format!("...{}", &t[t.len().saturating_sub(4)..]);
        f.debug_struct("SimTokens")
            .field("admin", &mask(&self.admin))
            .field("approver", &mask(&self.approver))
            .field("user", &mask(&self.user))
            .field("cluster_scoped", &mask(&self.cluster_scoped))
            .field("expired", &mask(&self.expired))
            .finish()
    }
}

fn meta(name: &str, ns: Option<&str>) -> Value {
    let mut m = json!({"name": name});
    if let Some(ns) = ns {
        m["namespace"] = json!(ns);
    }
    m
}

/// Inserts a new object with stamped metadata; returns its key.
pub(crate) fn insert_new(store: &mut Store, kind: Kind, mut obj: Value, created: &str, verb: Option<Verb>) -> String {
    let info = kind.info();
    obj["apiVersion"] = json!(format!("{}/{}", info.group, info.version));
    obj["kind"] = json!(info.kind_name);
    store.stamp_new(&mut obj, created);
    let ns = obj["metadata"]
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let key = key_of(kind, &ns, &name);
    store.put(kind, key.clone(), obj, verb);
    key
}

/// A User object (k8s form).
pub(crate) fn user_obj(id: &str, username: &str, display: &str) -> Value {
    json!({
        "metadata": meta(id, None),
        "displayName": display,
        "username": username,
        "description": "",
        "enabled": true,
        "mustChangePassword": false,
        "principalIds": [format!("local://{id}")],
        "status": {"conditions": [{"type": "InitialRolesPopulated", "status": "True", "lastUpdateTime": SEED_TIME}]},
    })
}

/// A GlobalRoleBinding object.
pub(crate) fn grb_obj(name: &str, role: &str, user: &str) -> Value {
    json!({
        "metadata": {"name": name, "annotations": {"cleanup.cattle.io/grbUpgradeCluster": "true"},
                      "ownerReferences": [{"apiVersion": "management.cattle.io/v3", "kind": "GlobalRole", "name": role, "uid": ""}]},
        "globalRoleName": role,
        "userName": user,
        "userPrincipalName": format!("local://{user}"),
        "status": {"summary": "Completed", "summaryLocal": "Completed", "localConditions": [], "lastUpdateTime": SEED_TIME},
    })
}

/// A v3 Token object (k8s form); the secret is kept in the auth index, never in the object.
#[allow(clippy::too_many_arguments)]
pub(crate) fn token_obj(
    name: &str,
    user_id: &str,
    username: &str,
    display: &str,
    ttl_ms: i64,
    created_ms: i64,
    derived: bool,
    cluster: &str,
    description: &str,
) -> Value {
    let expires = if ttl_ms > 0 {
        crate::state::fmt_ms(created_ms + ttl_ms)
    } else {
        String::new()
    };
    json!({
        "metadata": {"name": name, "labels": {"authn.management.cattle.io/token-userId": user_id, "cattle.io/creator": "norman",
                                               "authn.management.cattle.io/kind": if derived { "" } else { "session" }}},
        "userId": user_id,
        "authProvider": "local",
        "userPrincipal": {"metadata": {"name": format!("local://{user_id}")}, "displayName": display, "loginName": username,
                           "principalType": "user", "provider": "local", "me": true},
        "groupPrincipals": [],
        "providerInfo": {},
        "ttl": ttl_ms,
        "expiresAt": expires,
        "isDerived": derived,
        "description": description,
        "clusterName": cluster,
        "enabled": true,
        "lastUpdateTime": "",
    })
}

struct Rt(&'static str, &'static str, &'static str);

const ROLE_TEMPLATES: &[Rt] = &[
    Rt("cluster-owner", "Cluster Owner", "cluster"),
    Rt("cluster-member", "Cluster Member", "cluster"),
    Rt("projects-create", "Create Projects", "cluster"),
    Rt("projects-view", "View All Projects", "cluster"),
    Rt("nodes-manage", "Manage Nodes", "cluster"),
    Rt("nodes-view", "View Nodes", "cluster"),
    Rt("storage-manage", "Manage Storage", "cluster"),
    Rt(
        "clusterroletemplatebindings-manage",
        "Manage Cluster Members",
        "cluster",
    ),
    Rt("clusterroletemplatebindings-view", "View Cluster Members", "cluster"),
    Rt("clustercatalogs-manage", "Manage Cluster Catalogs", "cluster"),
    Rt("clustercatalogs-view", "View Cluster Catalogs", "cluster"),
    Rt("backups-manage", "Manage Cluster Backups", "cluster"),
    Rt("navlinks-manage", "Manage Navlinks", "cluster"),
    Rt("cluster-admin", "Kubernetes cluster-admin", "cluster"),
    Rt("project-owner", "Project Owner", "project"),
    Rt("project-member", "Project Member", "project"),
    Rt("read-only", "Read-only", "project"),
    Rt("create-ns", "Create Namespaces", "project"),
    Rt("workloads-manage", "Manage Workloads", "project"),
    Rt("workloads-view", "View Workloads", "project"),
    Rt("ingress-manage", "Manage Ingress", "project"),
    Rt("ingress-view", "View Ingress", "project"),
    Rt("services-manage", "Manage Services", "project"),
    Rt("services-view", "View Services", "project"),
    Rt("secrets-manage", "Manage Secrets", "project"),
    Rt("secrets-view", "View Secrets", "project"),
    Rt("configmaps-manage", "Manage Config Maps", "project"),
    Rt("configmaps-view", "View Config Maps", "project"),
    Rt("persistentvolumeclaims-manage", "Manage Volumes", "project"),
    Rt("persistentvolumeclaims-view", "View Volumes", "project"),
    Rt("serviceaccounts-manage", "Manage Service Accounts", "project"),
    Rt("serviceaccounts-view", "View Service Accounts", "project"),
    Rt(
        "projectroletemplatebindings-manage",
        "Manage Project Members",
        "project",
    ),
    Rt("projectroletemplatebindings-view", "View Project Members", "project"),
    Rt("project-monitoring-readonly", "Project Monitoring View Role", "project"),
    Rt("monitoring-ui-view", "View Monitoring", "project"),
    Rt("navlinks-view", "View Navlinks", "project"),
    Rt("admin", "Kubernetes admin", "project"),
    Rt("edit", "Kubernetes edit", "project"),
    Rt("view", "Kubernetes view", "project"),
];

/// A builtin role template's `(external, hidden, administrative)` flags and the templates it inherits
/// (`roleTemplateNames`), as rancher/rancher pkg/data/management/role_data.go `addRoles` declares them with
/// `addRoleTemplate(display, name, context, external, hidden, administrative)` and `setRoleTemplateNames` (the same on
/// every 2.x the simulator plays). Rancher keeps no `rules` on the external Kubernetes roles (`cluster-admin`, `admin`,
/// `edit`, `view`: their rules are the cluster's ClusterRole of that name); the simulator keeps a stand-in in `rules`.
fn role_template_traits(name: &str) -> ((bool, bool, bool), &'static [&'static str]) {
    match name {
        "cluster-admin" => ((true, true, true), &[]),
        "admin" | "edit" | "view" => ((true, true, false), &[]),
        "cluster-owner" | "clustercatalogs-manage" => ((false, false, true), &[]),
        "monitoring-ui-view" => ((true, false, false), &[]),
        "project-monitoring-readonly" => ((false, true, false), &["view"]),
        "project-owner" => ((false, false, false), &["admin"]),
        "project-member" => ((false, false, false), &["edit"]),
        "read-only" | "projects-view" => ((false, false, false), &["view"]),
        _ => ((false, false, false), &[]),
    }
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

const READ: &[&str] = &["get", "list", "watch"];
const ALL: &[&str] = &["*"];
const M: &[&str] = &["management.cattle.io"];

/// The management-plane rules of a builtin role template, as rancher/rancher pkg/data/management/role_data.go has
/// them (the downstream-only ones left out; owners and the Kubernetes admin roles hold everything).
fn role_template_rules(name: &str) -> Vec<Value> {
    const CRTB: &[&str] = &["clusterroletemplatebindings"];
    const PRTB: &[&str] = &["projectroletemplatebindings"];
    match name {
        "cluster-owner" | "project-owner" | "cluster-admin" | "admin" => vec![rule(&["*"], &["*"], ALL)],
        "cluster-member" => vec![
            rule(M, CRTB, READ),
            rule(M, &["projects"], &["create"]),
            rule(M, &["nodes", "nodepools"], READ),
            json!({"apiGroups": M, "resources": ["clusters"], "resourceNames": ["local"], "verbs": ["get"]}),
        ],
        "projects-create" => vec![rule(M, &["projects"], &["create"])],
        "projects-view" => vec![
            rule(M, &["projects"], READ),
            rule(M, PRTB, READ),
            rule(&[""], &["namespaces"], READ),
        ],
        "nodes-manage" => vec![rule(M, &["nodes", "nodepools"], ALL), rule(&[""], &["nodes"], ALL)],
        "nodes-view" => vec![rule(M, &["nodes", "nodepools"], READ), rule(&[""], &["nodes"], READ)],
        "storage-manage" => vec![rule(&[""], &["persistentvolumes", "persistentvolumeclaims"], ALL)],
        "clusterroletemplatebindings-manage" => vec![rule(M, CRTB, ALL)],
        "clusterroletemplatebindings-view" => vec![rule(M, CRTB, READ)],
        "clustercatalogs-manage" => vec![rule(M, &["clustercatalogs"], ALL)],
        "clustercatalogs-view" => vec![rule(M, &["clustercatalogs"], READ)],
        "backups-manage" => vec![rule(M, &["etcdbackups"], ALL)],
        "navlinks-manage" => vec![rule(&["ui.cattle.io"], &["navlinks"], ALL)],
        "navlinks-view" => vec![rule(&["ui.cattle.io"], &["navlinks"], READ)],
        "project-member" => vec![
            rule(M, PRTB, READ),
            rule(&[""], &["configmaps", "secrets", "services"], ALL),
        ],
        "read-only" => vec![rule(M, PRTB, READ), rule(&[""], &["configmaps", "services"], READ)],
        "projectroletemplatebindings-manage" => vec![rule(M, PRTB, ALL)],
        "projectroletemplatebindings-view" => vec![rule(M, PRTB, READ)],
        "edit" => vec![rule(&[""], &["configmaps", "secrets", "services", "pods"], ALL)],
        "view" => vec![rule(&[""], &["configmaps", "services", "pods"], READ)],
        other => {
            let resource = other.trim_end_matches("-manage").trim_end_matches("-view");
            let verbs = if other.ends_with("-manage") { ALL } else { READ };
            vec![rule(&[""], &[resource], verbs)]
        }
    }
}

/// rancher/rancher pkg/data/management/role_data.go `addUserRules`: what every standard user (and restricted-admin)
/// holds.
fn user_rules() -> Vec<Value> {
    vec![
        rule(&[""], &["secrets"], &["create"]),
        rule(M, &["principals", "roletemplates"], READ),
        rule(M, &["preferences"], ALL),
        rule(M, &["settings"], READ),
        rule(M, &["features"], READ),
        rule(M, &["templates", "templateversions", "catalogs"], READ),
        rule(M, &["clusters"], &["create"]),
        rule(M, &["nodedrivers"], READ),
        rule(M, &["kontainerdrivers"], READ),
    ]
}

/// The builtin global roles, as rancher/rancher pkg/data/management/role_data.go `addRoles` has them (rules
/// trimmed to the management.cattle.io and core ones).
fn global_roles(version: RancherVersion) -> Vec<(&'static str, &'static str, Vec<Value>, bool)> {
    let mut user = user_rules();
    user.push(rule(&["catalog.cattle.io"], &["clusterrepos"], READ));
    user.push(rule(M, &["podsecurityadmissionconfigurationtemplates"], READ));
    let mut v = vec![
        (
            "admin",
            "Admin",
            vec![
                rule(&["*"], &["*"], ALL),
                json!({"nonResourceURLs": ["*"], "verbs": ["*"]}),
            ],
            false,
        ),
        ("user", "User", user, true),
        (
            "user-base",
            "User Base",
            vec![
                rule(M, &["preferences"], ALL),
                rule(M, &["settings"], READ),
                rule(M, &["features"], READ),
                rule(M, &["rancherusernotifications"], READ),
            ],
            false,
        ),
        (
            "clusters-create",
            "Create Clusters",
            vec![
                rule(M, &["clusters"], &["create"]),
                rule(&["provisioning.cattle.io"], &["clusters"], &["create"]),
                rule(M, &["templates", "templateversions"], READ),
            ],
            false,
        ),
        (
            "nodedrivers-manage",
            "Manage Node Drivers",
            vec![rule(M, &["nodedrivers"], ALL)],
            false,
        ),
        (
            "kontainerdrivers-manage",
            "Manage Cluster Drivers",
            vec![rule(M, &["kontainerdrivers"], ALL)],
            false,
        ),
        (
            "catalogs-manage",
            "Manage Catalogs",
            vec![rule(M, &["catalogs", "templates", "templateversions"], ALL)],
            false,
        ),
        (
            "catalogs-use",
            "Use Catalog Templates",
            vec![rule(M, &["templates", "templateversions"], READ)],
            false,
        ),
        (
            "users-manage",
            "Manage Users",
            vec![
                rule(M, &["users", "globalrolebindings"], ALL),
                rule(M, &["globalroles"], READ),
            ],
            false,
        ),
        (
            "roles-manage",
            "Manage Roles",
            vec![rule(
                M,
                &["roletemplates"],
                &[
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "create",
                    "update",
                    "watch",
                ],
            )],
            false,
        ),
        (
            "authn-manage",
            "Manage Authentication",
            vec![rule(M, &["authconfigs"], &["get", "list", "watch", "update"])],
            false,
        ),
        (
            "settings-manage",
            "Manage Settings",
            vec![rule(M, &["settings"], ALL)],
            false,
        ),
        (
            "features-manage",
            "Manage Features",
            vec![rule(M, &["features"], &["get", "list", "watch", "update"])],
            false,
        ),
        (
            "clustertemplates-create",
            "Create RKE Templates",
            vec![rule(M, &["clustertemplates"], &["create"])],
            false,
        ),
        (
            "clustertemplaterevisions-create",
            "Create RKE Template Revisions",
            vec![rule(M, &["clustertemplaterevisions"], &["create"])],
            false,
        ),
        (
            "view-rancher-metrics",
            "View Rancher Metrics",
            vec![rule(M, &["ranchermetrics"], &["get"])],
            false,
        ),
    ];
    if !version.at_least(2, 11) {
        let mut ra = user_rules();
        ra.extend([
            rule(M, &["globalrolebindings"], ALL),
            rule(
                M,
                &["globalroles"],
                &[
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "create",
                    "update",
                    "watch",
                ],
            ),
            rule(
                M,
                &["users", "userattribute", "groups", "groupmembers"],
                &["get", "list", "create", "patch", "update", "watch", "delete"],
            ),
            rule(M, &["authconfigs"], ALL),
            rule(M, &["nodedrivers", "kontainerdrivers", "roletemplates"], ALL),
            rule(M, &["catalogs", "templates", "templateversions"], ALL),
        ]);
        v.push(("restricted-admin", "Restricted Admin", ra, false));
    }
    v
}

/// Seeds everything for a 2.x server. Returns who is who and their tokens.
pub(crate) fn seed_2x(store: &mut Store, cfg: &SimConfig) -> (SimUsers, SimTokens) {
    let version = cfg.version;
    for (name, display, rules, new_user_default) in global_roles(version) {
        let obj = json!({
            "metadata": {"name": name, "labels": {"authz.management.cattle.io/bootstrapping": "default-globalrole"}},
            "displayName": display, "description": "", "builtin": true, "newUserDefault": new_user_default,
            "rules": rules,
            "status": {"summary": "Completed", "observedGeneration": 1, "lastUpdateTime": SEED_TIME, "conditions": []},
        });
        insert_new(store, Kind::GlobalRole, obj, SEED_TIME, None);
    }
    for Rt(name, display, context) in ROLE_TEMPLATES {
        let rules = role_template_rules(name);
        let ((external, hidden, administrative), inherits) = role_template_traits(name);
        let mut obj = json!({
            "metadata": {"name": name}, "displayName": display, "description": "", "context": context,
            "builtin": true, "external": external, "hidden": hidden, "locked": false, "rules": rules,
            "clusterCreatorDefault": *name == "cluster-owner", "projectCreatorDefault": *name == "project-owner",
        });
        if *context == "cluster" {
            obj["administrative"] = json!(administrative);
        }
        if !inherits.is_empty() {
            obj["roleTemplateNames"] = json!(inherits);
        }
        insert_new(store, Kind::RoleTemplate, obj, SEED_TIME, None);
    }

    // Clusters and their projects.
    let downstream = store.fresh_name(Kind::Cluster, "", "c-");
    for (id, display) in [("local", "local"), (downstream.as_str(), "downstream")] {
        let obj = json!({"metadata": {"name": id}, "spec": {"displayName": display, "description": ""},
                         "status": {"conditions": [{"type": "Ready", "status": "True"}], "version": {"gitVersion": "v1.34.1+k3s1"}}});
        insert_new(store, Kind::Cluster, obj, SEED_TIME, None);
    }
    let mut projects = Vec::new();
    for cluster in ["local".to_string(), downstream.clone()] {
        for display in ["Default", "System"] {
            let p = store.fresh_name(Kind::Project, &cluster, "p-");
            let backing = if version.at_least(2, 9) {
                format!("{cluster}-{p}")
            } else {
                p.clone()
            };
            let obj = json!({
                "metadata": {"name": p, "namespace": cluster, "labels": {format!("authz.management.cattle.io/{}-project", display.to_lowercase()): "true"}},
                "spec": {"clusterName": cluster, "displayName": display, "description": format!("{display} project created for the cluster")},
                "status": {"backingNamespace": backing, "conditions": [{"type": "BackingNamespaceCreated", "status": "True"}]},
            });
            projects.push(insert_new(store, Kind::Project, obj, SEED_TIME, None));
        }
    }

    // Users.
    let admin_id = store.fresh_name(Kind::User, "", "user-");
    let mk_user = |store: &mut Store, id: String, username: &str, display: &str| {
        insert_new(store, Kind::User, user_obj(&id, username, display), SEED_TIME, None);
        store.passwords.insert(id.clone(), ids::sha256_hex(DEFAULT_PASSWORD));
        SimUser {
            id,
            username: username.to_string(),
        }
    };
    let admin = mk_user(store, admin_id, "admin", "Default Admin");
    // rancher/rancher pkg/data/management/role_data.go `BootstrapAdmin`: the default admin carries this label.
    if let Some(mut u) = store.get(Kind::User, &admin.id).cloned() {
        set_path(
            &mut u,
            "metadata.labels",
            json!({crate::ops::DEFAULT_ADMIN_LABEL: "admin-user"}),
        );
        store.put(Kind::User, admin.id.clone(), u, None);
    }
    let approver_id = store.fresh_name(Kind::User, "", "u-");
    let approver = mk_user(store, approver_id, "approver", "Approver");
    let mut standard = Vec::new();
    for (u, d) in [
        ("alice", "Alice Example"),
        ("bob", "Bob Example"),
        ("carol", "Carol Example"),
        ("dave", "Dave Example"),
    ] {
        let id = store.fresh_name(Kind::User, "", "u-");
        standard.push(mk_user(store, id, u, d));
    }

    // Global role bindings.
    let n = store.fresh_name(Kind::GlobalRoleBinding, "", "globalrolebinding-");
    insert_new(
        store,
        Kind::GlobalRoleBinding,
        grb_obj(&n, "admin", &admin.id),
        SEED_TIME,
        None,
    );
    let n = store.fresh_name(Kind::GlobalRoleBinding, "", "grb-");
    insert_new(
        store,
        Kind::GlobalRoleBinding,
        grb_obj(&n, "admin", &approver.id),
        SEED_TIME,
        None,
    );
    for u in &standard {
        let n = store.fresh_name(Kind::GlobalRoleBinding, "", "grb-");
        insert_new(
            store,
            Kind::GlobalRoleBinding,
            grb_obj(&n, "user", &u.id),
            SEED_TIME,
            None,
        );
    }

    // Cluster and project memberships.
    let crtb = |name: &str, cluster: &str, role: &str, user: &str| {
        json!({"metadata": {"name": name, "namespace": cluster}, "clusterName": cluster, "roleTemplateName": role,
               "userName": user, "userPrincipalName": format!("local://{user}"),
               "status": {"summary": "Completed", "summaryLocal": "Completed", "summaryRemote": "Completed", "lastUpdateTime": SEED_TIME}})
    };
    let obj = crtb("creator-cluster-owner", &downstream, "cluster-owner", &admin.id);
    insert_new(store, Kind::Crtb, obj, SEED_TIME, None);
    let n = store.fresh_name(Kind::Crtb, &downstream, "crtb-");
    let obj = crtb(&n, &downstream, "cluster-member", &standard[0].id);
    insert_new(store, Kind::Crtb, obj, SEED_TIME, None);
    let n = store.fresh_name(Kind::Crtb, &downstream, "crtb-");
    let obj = crtb(&n, &downstream, "cluster-owner", &standard[2].id);
    insert_new(store, Kind::Crtb, obj, SEED_TIME, None);
    let downstream_default = projects[2].clone();
    let ns = store.project_namespace(&downstream_default).unwrap_or_default();
    for (user, role) in [(&standard[0].id, "project-owner"), (&standard[1].id, "project-member")] {
        let n = store.fresh_name(Kind::Prtb, &ns, "prtb-");
        let obj = json!({"metadata": {"name": n, "namespace": ns}, "projectName": downstream_default, "roleTemplateName": role,
                         "userName": user, "userPrincipalName": format!("local://{user}")});
        insert_new(store, Kind::Prtb, obj, SEED_TIME, None);
    }

    // Tokens.
    let seed_ms = crate::state::parse_ms(SEED_TIME).unwrap_or(0);
    let mk_token = |store: &mut Store, who: &SimUser, display: &str, ttl: i64, cluster: &str, desc: &str| {
        let name = store.fresh_name(Kind::Token, "", "token-");
        let secret = ids::secret(&mut store.rng);
        store.set_token_secret(&secret);
        let obj = token_obj(
            &name,
            &who.id,
            &who.username,
            display,
            ttl,
            seed_ms,
            true,
            cluster,
            desc,
        );
        insert_new(store, Kind::Token, obj, SEED_TIME, None);
        format!("{name}:{secret}")
    };
    let t_admin = mk_token(store, &admin, "Default Admin", 0, "", "rancher-sim admin API key");
    let t_approver = mk_token(store, &approver, "Approver", 0, "", "rancher-sim approver API key");
    let t_user = mk_token(
        store,
        &standard[0],
        "Alice Example",
        0,
        "",
        "rancher-sim standard user API key",
    );
    let t_cluster = mk_token(
        store,
        &admin,
        "Default Admin",
        0,
        &downstream,
        "rancher-sim cluster-scoped API key",
    );
    let t_expired = mk_token(
        store,
        &standard[0],
        "Alice Example",
        3_600_000,
        "",
        "rancher-sim expired API key",
    );
    let _ = mk_token(store, &standard[1], "Bob Example", 0, "", "rancher-sim bob API key");

    if version.at_least(2, 12) {
        // One ext token and one kubeconfig for the admin; the default audit policy.
        let name = store.fresh_name(Kind::ExtToken, "", "token-");
        let secret = ids::secret(&mut store.rng);
        store.set_token_secret(&secret);
        let obj = ext_token_obj(
            &name,
            &admin,
            "Default Admin",
            0,
            "",
            "rancher-sim ext token",
            version,
            seed_ms,
        );
        insert_new(store, Kind::ExtToken, obj, SEED_TIME, None);
        let kname = store.fresh_name(Kind::Kubeconfig, "", "kubeconfig-");
        let obj = json!({
            "metadata": {"name": kname, "labels": {"cattle.io/user-id": admin.id}},
            "spec": {"clusters": ["local"], "currentContext": "local", "description": "rancher-sim kubeconfig", "ttl": 2_592_000},
            "status": {"summary": "Complete", "tokens": [], "conditions": []},
        });
        insert_new(store, Kind::Kubeconfig, obj, SEED_TIME, None);
        let obj = json!({
            "metadata": {"name": "redact-generic-info"},
            "spec": {
                "enabled": true,
                "additionalRedactions": [{
                    "headers": ["Cookie", "Set-Cookie", "Authorization", "X-Api-Auth-Header", "X-Api-Set-Cookie-Header", "X-Amz-Security-Token"],
                    "paths": ["$..password", "$..token", "$..secret", "$..kubeconfig", "$..privateKey", "$..credentials"],
                }],
                "filters": [],
                "verbosity": {"level": 0, "request": {"headers": false, "body": false}, "response": {"headers": false, "body": false}},
            },
            "status": {"conditions": [{"type": "Active", "status": "True", "reason": "Active", "message": "", "lastTransitionTime": SEED_TIME}]},
        });
        insert_new(store, Kind::AuditPolicy, obj, SEED_TIME, None);
    }

    seed_settings(store, version);
    seed_authconfigs(store);
    seed_directories(store);
    crate::bulk::seed_bulk(store, cfg, &downstream, &downstream_default);
    crate::tokens::seed_tokens(store, cfg, &downstream);
    // rancher/rancher pkg/systemaccount/systemaccount.go: one `system://<cluster>` user per cluster, which the RK
    // list shows and /v3 hides (pkg/auth/api/user/user_store.go). Seeded last so the other ids stay as they were.
    for cluster in ["local".to_string(), downstream.clone()] {
        let id = store.fresh_name(Kind::User, "", "u-");
        let mut obj = user_obj(&id, "", &format!("System account for Cluster {cluster}"));
        obj["principalIds"] = json!([format!("system://{cluster}"), format!("local://{id}")]);
        insert_new(store, Kind::User, obj, SEED_TIME, None);
    }

    let users = SimUsers {
        admin,
        approver,
        user: standard[0].clone(),
        standard,
        downstream_cluster: downstream,
        projects,
        password: DEFAULT_PASSWORD.to_string(),
    };
    let tokens = SimTokens {
        admin: t_admin,
        approver: t_approver,
        user: t_user,
        cluster_scoped: t_cluster,
        expired: t_expired,
    };
    seed_install_uuid(store, cfg.seed);
    (users, tokens)
}

/// Every installation has its own id, set once at its first start (rancher/rancher pkg/settings/setting.go,
/// `install-uuid`). Derived from the seed with its own generator, so the rest of the seeded data is unchanged.
fn seed_install_uuid(store: &mut Store, seed: u64) {
    use rand::{Rng, SeedableRng};
    let b: [u8; 16] = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x0125_7a11_u64).gen();
    let h = hex::encode(b);
    let uuid = format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    );
    if let Some(mut st) = store.get(Kind::Setting, "server-version").cloned() {
        st["metadata"]["name"] = json!("install-uuid");
        st["value"] = json!(uuid);
        st["default"] = json!("");
        store.put(Kind::Setting, "install-uuid".into(), st, None);
    }
}

/// An ext.cattle.io Token object.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ext_token_obj(
    name: &str,
    who: &SimUser,
    display: &str,
    ttl: i64,
    cluster: &str,
    description: &str,
    version: RancherVersion,
    created_ms: i64,
) -> Value {
    let expires = if ttl > 0 {
        crate::state::fmt_ms(created_ms + ttl)
    } else {
        String::new()
    };
    let mut spec = json!({
        "userID": who.id,
        "userPrincipal": {"name": format!("local://{}", who.id), "displayName": display, "loginName": who.username,
                           "principalType": "user", "provider": "local"},
        "kind": "",
        "ttl": ttl,
        "enabled": true,
        "description": description,
    });
    if version.at_least(2, 13) {
        spec["clusterName"] = json!(cluster);
    }
    json!({
        "metadata": {"name": name, "labels": {"cattle.io/user-id": who.id, "authn.management.cattle.io/kind": ""}},
        "spec": spec,
        "status": {"current": false, "expired": false, "expiresAt": expires, "lastUpdateTime": crate::state::fmt_ms(created_ms)},
    })
}

fn seed_settings(store: &mut Store, version: RancherVersion) {
    let settings: &[(&str, String, &str)] = &[
        ("server-version", version.full().to_string(), ""),
        ("cacerts", String::new(), ""),
        ("server-url", String::new(), ""),
        ("first-login", "false".into(), "true"),
        ("auth-token-max-ttl-minutes", "129600".into(), "129600"),
        ("auth-user-session-ttl-minutes", "960".into(), "960"),
        ("kubeconfig-default-token-ttl-minutes", "43200".into(), "43200"),
        ("kubeconfig-generate-token", "true".into(), "true"),
        ("password-min-length", "12".into(), "12"),
        ("hide-local-auth-provider", "false".into(), "false"),
        ("ui-pl", "rancher".into(), "rancher"),
        ("ui-brand", String::new(), ""),
        ("ui-banners", "{}".into(), "{}"),
        ("ui-issues", String::new(), ""),
        ("ui-default-landing", "vue".into(), "vue"),
        // User retention (rancher/rancher pkg/settings/setting.go, 2.8-2.13; read by pkg/auth/userretention).
        ("disable-inactive-user-after", String::new(), ""),
        ("delete-inactive-user-after", String::new(), ""),
        ("user-last-login-default", String::new(), ""),
        ("user-retention-cron", String::new(), ""),
        ("user-retention-dry-run", "false".into(), "false"),
    ];
    let idle: &[(&str, String, &str)] = &[("auth-user-session-idle-ttl-minutes", "960".into(), "960")];
    // Session idle timeout: setting.go from 2.13.
    let settings: Vec<&(&str, String, &str)> = settings
        .iter()
        .chain(idle.iter().filter(|_| version.at_least(2, 13)))
        .collect();
    for (name, value, default) in settings {
        let obj =
            json!({"metadata": {"name": name}, "value": value, "default": default, "customized": false, "source": ""});
        insert_new(store, Kind::Setting, obj, SEED_TIME, None);
    }
}

/// Auth config ids, their types and the secret (password-typed) fields.
pub(crate) const AUTH_CONFIGS: &[(&str, &str)] = &[
    ("local", "localConfig"),
    ("github", "githubConfig"),
    ("activedirectory", "activeDirectoryConfig"),
    ("openldap", "openLdapConfig"),
    ("freeipa", "freeIpaConfig"),
    ("azuread", "azureADConfig"),
    ("googleoauth", "googleOauthConfig"),
];

/// Fields never returned by the server.
pub(crate) const SECRET_FIELDS: &[&str] = &[
    "clientSecret",
    "serviceAccountPassword",
    "applicationSecret",
    "privateKey",
    "spKey",
    "oauthCredential",
    "serviceAccountKey",
    "password",
];

fn seed_authconfigs(store: &mut Store) {
    for (id, ty) in AUTH_CONFIGS {
        let mut obj = json!({
            "metadata": {"name": id},
            "type": ty,
            "enabled": *id == "local",
            "accessMode": "unrestricted",
            "allowedPrincipalIds": [],
            "logoutAllSupported": false,
            "status": {"conditions": []},
        });
        match *id {
            "github" => {
                obj["hostname"] = json!("github.com");
                obj["tls"] = json!(true);
                obj["clientId"] = json!("");
            }
            "activedirectory" => {
                obj["servers"] = json!([]);
                obj["port"] = json!(389);
                obj["tls"] = json!(false);
                obj["starttls"] = json!(false);
                obj["serviceAccountUsername"] = json!("");
                obj["userSearchBase"] = json!("");
                obj["userSearchAttribute"] = json!("sAMAccountName|sn|givenName");
                obj["userLoginAttribute"] = json!("sAMAccountName");
                obj["userObjectClass"] = json!("person");
                obj["userNameAttribute"] = json!("name");
                obj["groupObjectClass"] = json!("group");
                obj["connectionTimeout"] = json!(5000);
            }
            "openldap" | "freeipa" => {
                obj["servers"] = json!([]);
                obj["port"] = json!(389);
                obj["tls"] = json!(false);
                obj["serviceAccountDistinguishedName"] = json!("");
                obj["userSearchBase"] = json!("");
                obj["userSearchAttribute"] = json!("uid|sn|givenName");
                obj["userLoginAttribute"] = json!("uid");
                obj["userObjectClass"] = json!("inetOrgPerson");
                obj["groupObjectClass"] = json!("groupOfNames");
                obj["connectionTimeout"] = json!(5000);
            }
            "azuread" => {
                obj["tenantId"] = json!("");
                obj["applicationId"] = json!("");
                obj["endpoint"] = json!("https://login.microsoftonline.com/");
                obj["graphEndpoint"] = json!("https://graph.microsoft.com");
            }
            "googleoauth" => {
                obj["hostname"] = json!("");
                obj["adminEmail"] = json!("");
            }
            _ => {}
        }
        insert_new(store, Kind::AuthConfig, obj, SEED_TIME, None);
        crate::ops::sync_auth_config(store, id);
    }
}

/// The seeded external directories, keyed by provider id (`activedirectory`, `openldap`, `freeipa`,
/// `github`, `azuread`). Every directory user's password is `<login>-password`.
pub(crate) fn directories() -> Vec<(&'static str, Directory)> {
    let u = |login: &str, name: &str, ext: String, groups: &[&str]| DirUser {
        login: login.into(),
        name: name.into(),
        password: format!("{login}-password"),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        external_id: ext,
    };
    let g = |name: &str, ext: String| DirGroup {
        name: name.into(),
        external_id: ext,
    };
    let ad_dn = |cn: &str| format!("CN={cn},OU=Users,DC=example,DC=com");
    let ad_g = |cn: &str| format!("CN={cn},OU=Groups,DC=example,DC=com");
    let ol = |uid: &str| format!("uid={uid},ou=people,dc=example,dc=com");
    let ol_g = |cn: &str| format!("cn={cn},ou=groups,dc=example,dc=com");
    let ad = Directory {
        users: vec![
            u("jdoe", "John Doe", ad_dn("John Doe"), &["Domain Admins", "Engineering"]),
            u("asmith", "Anna Smith", ad_dn("Anna Smith"), &["Engineering"]),
            u("mlee", "Min Lee", ad_dn("Min Lee"), &[]),
        ],
        groups: vec![
            g("Domain Admins", ad_g("Domain Admins")),
            g("Engineering", ad_g("Engineering")),
        ],
    };
    let ldap = |_: ()| Directory {
        users: vec![
            u("jdoe", "John Doe", ol("jdoe"), &["admins", "developers"]),
            u("asmith", "Anna Smith", ol("asmith"), &["developers"]),
            u("mlee", "Min Lee", ol("mlee"), &[]),
        ],
        groups: vec![g("admins", ol_g("admins")), g("developers", ol_g("developers"))],
    };
    let github = Directory {
        users: vec![
            u("octocat", "The Octocat", "583231".into(), &["example-org"]),
            u("hubot", "Hubot", "480938".into(), &["example-org"]),
            u("monalisa", "Mona Lisa", "2894642".into(), &[]),
        ],
        groups: vec![g("example-org", "9919".into())],
    };
    let azure = Directory {
        users: vec![
            u(
                "jdoe@example.com",
                "John Doe",
                "2b1e4d7c-0c1a-4a53-9d2e-1f0e5f7a9c01".into(),
                &["Cloud Admins"],
            ),
            u(
                "asmith@example.com",
                "Anna Smith",
                "7d3f1a2b-5e6c-4b8a-8f9d-0a1b2c3d4e5f".into(),
                &[],
            ),
        ],
        groups: vec![g("Cloud Admins", "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d".into())],
    };
    vec![
        ("activedirectory", ad),
        ("openldap", ldap(())),
        ("freeipa", ldap(())),
        ("github", github),
        ("azuread", azure),
    ]
}

/// The principal-id scheme of a provider (`activedirectory_user`, ...).
pub(crate) fn principal_scheme(provider: &str, group: bool) -> String {
    let base = match provider {
        "github" => return format!("github_{}", if group { "org" } else { "user" }),
        other => other,
    };
    format!("{base}_{}", if group { "group" } else { "user" })
}

fn seed_directories(store: &mut Store) {
    for (id, d) in directories() {
        store.directories.insert(id.to_string(), d);
    }
}
