//! Schema discovery: Norman's `/v3/schemas` and `/v3/schemas/<id>`, Steve's `/v1/schemas` and `/v1/schemas/<id>`.
//!
//! **Norman.** Rancher's CLI, Terraform provider and Python client read the schema collection named by the
//! `X-Api-Schemas` header and build their types from it: `resourceFields` with `create`/`update`/`required`/
//! `nullable`/`default`/`options`, the declared `collectionMethods`/`resourceMethods`, actions with their input and
//! output types, and the `collection` link they post creates to. The tables below are written from Rancher's
//! definitions:
//! - the Go types and their `norman:` tags, rancher/rancher pkg/apis/management.cattle.io/v3 (authz_types.go,
//!   authn_types.go, global_types.go, cluster_types.go), read the way rancher/norman types/reflection.go `readFields`
//!   and `applyTag` read them: every field `create` and `update` unless `nocreate`/`noupdate`, nullable unless a bool
//!   or number (which default to `false`/`0`), `options=` making an enum;
//! - the schema customizations of pkg/schemas/management.cattle.io/v3/schema.go (methods, actions, base types,
//!   per-field changes) and pkg/api/norman/server/managementstored/setup.go `setupScopedTypes` (`namespaceId` not
//!   required where `clusterId`/`projectId` place the object);
//! - the mappers: rancher/norman types/mapper/metadata.go (`name` create-only, `labels`/`annotations` create and
//!   update, the rest read-only, `uid`→`uuid`, timestamps → `created`/`removed`), display_name.go (`metadata.name`
//!   becomes `id`, `displayName` becomes `name`), rename_reference.go (`fooName` references become `fooId`),
//!   rancher/rancher pkg/schemas/mapper/status.go (`state`, `transitioning`, `transitioningMessage` where a type has
//!   spec and status), creator.go (`creatorId` on creatable, listable types), namespace.go (`namespaceId`);
//! - filters as rancher/norman types/reflection.go `setupFilters` derives them from field types.
//!
//! Access: Rancher answers norman's schema questions with norman's `AllAccess` (the scaled context's access control is
//! pkg/clustermanager's, which hands out pkg/rbac's; pkg/rbac/user_based.go `userCachedAccess` embeds `AllAccess` for
//! `CanList`, `CanGet`, `CanCreate`, `CanUpdate`, `CanDelete`), which looks only at a schema's declared methods. So every authenticated caller gets
//! the same list: each schema with a `GET` method, plus the types its fields and actions refer to
//! (rancher/norman store/schema/schema_store.go `List`, `traverseAndAdd`), and any schema by id, methods included
//! (`ByID`, `modifyForAccessControl`). A schema answers as a `schema` resource whose `baseType` is `schema` and whose
//! links are `self` (`/v3/schemas/<id>`) and, with a `GET` collection method, `collection` (the lower-cased plural)
//! (rancher/norman api/builtin/schema.go `SchemaFormatter`, urlbuilder/url.go).
//!
//! Not modelled: the many cluster fields (provisioning configs, agent settings); only what the simulator stores is
//! described. Provider configs other than Active Directory carry the common auth config fields only. Of the types
//! referenced by fields and actions, only the ones listed in [`SUB`] are served.
//!
//! **Steve.** The dashboard reads `/v1/schemas`, built per caller from Kubernetes RBAC (rancher/steve
//! pkg/schema/factory.go `schemasForSubject`): a kind is listed when the caller holds any of its verbs (cluster-scoped
//! kinds only through cluster-wide grants); `list`/`get` give `GET` on both lists, `delete` `DELETE`, `update` `PUT`
//! and `PATCH`, `create` `POST`, `patch` `PATCH`. Rancher marks writes to management kinds off its allow-list as
//! `blocked-<METHOD>` (rancher/rancher pkg/api/steve/disallow/disallow.go). Ids and plurals are `<group>.<kind>` and
//! `<group>.<resource>` (rancher/steve pkg/schema/converter/k8stonorman.go); attributes carry group, version, kind,
//! resource, verbs, namespaced and `crd` (discovery.go, crd.go), minus the access set (rancher/apiserver
//! pkg/store/schema/schema_store.go `toAPIObject`). Steve leaves `resourceFields` empty: field definitions are served
//! by `/v1/schemaDefinitions`, which the simulator does not model, nor the table `columns` attribute.

use http::Method;
use serde_json::{json, Map, Value};

use crate::auth::{Authz, Caller};
use crate::http::{norman_err, Req, Resp};
use crate::seed::AUTH_CONFIGS;
use crate::server::Shared;
use crate::state::{s, Kind, Store, KINDS};

/// One norman field: name, type, flags (`c` create, `u` update, `n` nullable, `r` required, `w` write-only), the
/// default as JSON text, and the options of an enum.
struct F(
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
);

const fn f(name: &'static str, ty: &'static str, flags: &'static str) -> F {
    F(name, ty, flags, None, &[])
}

const fn fd(name: &'static str, ty: &'static str, flags: &'static str, default: &'static str) -> F {
    F(name, ty, flags, Some(default), &[])
}

const fn fo(name: &'static str, ty: &'static str, flags: &'static str, options: &'static [&'static str]) -> F {
    F(name, ty, flags, None, options)
}

/// How the object mappers shape a type's metadata fields.
#[derive(Clone, Copy)]
enum Meta {
    /// Not a Kubernetes object (an embedded type or an action's input or output): no metadata fields.
    None,
    /// A Kubernetes object; `display`: `metadata.name` is the `id` and `displayName` the `name`; `namespaced`:
    /// `namespaceId`; `state`: the type has spec and status, so the state fields.
    Object {
        display: bool,
        namespaced: bool,
        state: bool,
    },
}

const PLAIN: Meta = Meta::Object {
    display: false,
    namespaced: false,
    state: false,
};
const DISPLAY: Meta = Meta::Object {
    display: true,
    namespaced: false,
    state: false,
};

/// An action: name, input type, output type (`""` for none).
type Act = (&'static str, &'static str, &'static str);

/// One norman schema.
struct NSchema {
    id: &'static str,
    plural: &'static str,
    collection: &'static [&'static str],
    resource: &'static [&'static str],
    actions: &'static [Act],
    collection_actions: &'static [Act],
    meta: Meta,
    fields: &'static [F],
}

const OBJECT_METHODS: (&[&str], &[&str]) = (&["GET", "POST"], &["GET", "PUT", "DELETE"]);

const POLICY_RULE: &str = "array[policyRule]";

/// The management types the simulator models (pkg/schemas/management.cattle.io/v3/schema.go `authzTypes`,
/// `authnTypes`, `tokens`, `clusterTypes`, `globalTypes`, `userTypes`).
const TYPES: &[NSchema] = &[
    NSchema {
        id: "user",
        plural: "users",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[
            ("setpassword", "setPasswordInput", "user"),
            ("refreshauthprovideraccess", "", ""),
        ],
        collection_actions: &[
            ("changepassword", "changePasswordInput", ""),
            ("refreshauthprovideraccess", "", ""),
        ],
        meta: DISPLAY,
        fields: &[
            f("name", "string", "cun"),
            f("description", "string", "cun"),
            f("username", "string", "cun"),
            f("password", "password", "cnw"),
            fd("mustChangePassword", "boolean", "cu", "false"),
            f("principalIds", "array[reference[principal]]", "cun"),
            fd("me", "boolean", "", "false"),
            fd("enabled", "boolean", "cun", "true"),
            f("conditions", "array[userCondition]", "n"),
        ],
    },
    NSchema {
        id: "globalRole",
        plural: "globalRoles",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[],
        collection_actions: &[],
        meta: DISPLAY,
        fields: &[
            f("name", "string", "curn"),
            f("description", "string", "cun"),
            f("rules", POLICY_RULE, "cun"),
            fd("newUserDefault", "boolean", "cur", "false"),
            fd("builtin", "boolean", "", "false"),
            f("inheritedClusterRoles", "array[string]", "cun"),
            f("namespacedRules", "map[array[policyRule]]", "cun"),
            f("inheritedFleetWorkspacePermissions", "fleetWorkspacePermission", "cun"),
            // schema.go customizes it to not nullable.
            f("status", "globalRoleStatus", ""),
        ],
    },
    NSchema {
        id: "globalRoleBinding",
        plural: "globalRoleBindings",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[],
        collection_actions: &[],
        meta: PLAIN,
        fields: &[
            f("globalRoleId", "reference[globalRole]", "crn"),
            f("userId", "reference[user]", "cn"),
            f("groupPrincipalId", "reference[principal]", "cn"),
            f("userPrincipalId", "reference[principal]", "cn"),
            f("status", "globalRoleBindingStatus", "n"),
        ],
    },
    NSchema {
        id: "roleTemplate",
        plural: "roleTemplates",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[],
        collection_actions: &[],
        meta: DISPLAY,
        fields: &[
            f("name", "string", "curn"),
            f("description", "string", "cun"),
            f("rules", POLICY_RULE, "cun"),
            fd("builtin", "boolean", "", "false"),
            fd("external", "boolean", "cu", "false"),
            f("externalRules", POLICY_RULE, "cun"),
            fd("hidden", "boolean", "cu", "false"),
            fd("locked", "boolean", "cu", "false"),
            fd("clusterCreatorDefault", "boolean", "cur", "false"),
            fd("projectCreatorDefault", "boolean", "cur", "false"),
            fo("context", "string", "cun", &["project", "cluster"]),
            f("roleTemplateIds", "array[reference[roleTemplate]]", "cun"),
            fd("administrative", "boolean", "cu", "false"),
        ],
    },
    NSchema {
        id: "project",
        plural: "projects",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[("exportYaml", "", "")],
        collection_actions: &[],
        meta: Meta::Object {
            display: true,
            namespaced: true,
            state: true,
        },
        fields: &[
            f("name", "string", "curn"),
            f("description", "string", "cun"),
            f("clusterId", "reference[cluster]", "curn"),
            f("resourceQuota", "projectResourceQuota", "cun"),
            f("namespaceDefaultResourceQuota", "namespaceResourceQuota", "cun"),
            f("containerDefaultResourceLimit", "containerResourceLimit", "cun"),
            f("conditions", "array[projectCondition]", "n"),
            f("backingNamespace", "string", "n"),
        ],
    },
    NSchema {
        id: "clusterRoleTemplateBinding",
        plural: "clusterRoleTemplateBindings",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[],
        collection_actions: &[],
        meta: Meta::Object {
            display: false,
            namespaced: true,
            state: false,
        },
        fields: &[
            f("clusterId", "reference[cluster]", "crn"),
            f("roleTemplateId", "reference[roleTemplate]", "crn"),
            f("userId", "reference[user]", "cn"),
            f("userPrincipalId", "reference[principal]", "cn"),
            f("groupId", "reference[group]", "cn"),
            f("groupPrincipalId", "reference[principal]", "cn"),
            f("status", "clusterRoleTemplateBindingStatus", "n"),
        ],
    },
    NSchema {
        id: "projectRoleTemplateBinding",
        plural: "projectRoleTemplateBindings",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[],
        collection_actions: &[],
        meta: Meta::Object {
            display: false,
            namespaced: true,
            state: false,
        },
        fields: &[
            f("projectId", "reference[project]", "crn"),
            f("roleTemplateId", "reference[roleTemplate]", "crn"),
            f("userId", "reference[user]", "cn"),
            f("userPrincipalId", "reference[principal]", "cn"),
            f("groupId", "reference[group]", "cn"),
            f("groupPrincipalId", "reference[principal]", "cn"),
            f("serviceAccount", "string", "n"),
        ],
    },
    NSchema {
        id: "token",
        plural: "tokens",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[],
        collection_actions: &[
            ("logout", "", ""),
            ("logoutAll", "authConfigLogoutInput", "authConfigLogoutOutput"),
        ],
        meta: PLAIN,
        fields: &[
            f("token", "string", "cnw"),
            f("userPrincipal", "reference[principal]", "cun"),
            f("groupPrincipals", "array[reference[principal]]", "cun"),
            f("providerInfo", "map[string]", "cun"),
            f("userId", "reference[user]", "cun"),
            f("authProvider", "string", "cun"),
            fd("ttl", "int", "cu", "0"),
            // From 2.10 (see `norman_schema`).
            f("lastUsedAt", "date", "cun"),
            fd("isDerived", "boolean", "cu", "false"),
            f("description", "string", "cun"),
            fd("expired", "boolean", "cu", "false"),
            f("expiresAt", "string", "cun"),
            fd("current", "boolean", "cu", "false"),
            f("clusterId", "reference[cluster]", "cn"),
            fd("enabled", "boolean", "cun", "true"),
        ],
    },
    NSchema {
        id: "cluster",
        plural: "clusters",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[
            ("generateKubeconfig", "", "generateKubeConfigOutput"),
            ("importYaml", "importClusterYamlInput", "importYamlOutput"),
            ("exportYaml", "", "exportOutput"),
            ("saveAsTemplate", "saveAsTemplateInput", "saveAsTemplateOutput"),
        ],
        collection_actions: &[],
        meta: Meta::Object {
            display: true,
            namespaced: false,
            state: true,
        },
        fields: &[
            // schema.go customizes the display name: a DNS label, nullable, not required.
            f("name", "dnsLabel", "cun"),
            f("description", "string", "cun"),
            fd("internal", "boolean", "cu", "false"),
            f("driver", "string", "cun"),
            f("conditions", "array[clusterCondition]", "n"),
            f("version", "info", "n"),
        ],
    },
    NSchema {
        id: "authConfig",
        plural: "authConfigs",
        collection: &["GET"],
        resource: OBJECT_METHODS.1,
        actions: &[],
        collection_actions: &[],
        meta: PLAIN,
        fields: AUTH_CONFIG_FIELDS,
    },
    NSchema {
        id: "setting",
        plural: "settings",
        collection: OBJECT_METHODS.0,
        resource: OBJECT_METHODS.1,
        actions: &[],
        collection_actions: &[],
        meta: PLAIN,
        fields: &[
            f("value", "string", "curn"),
            f("default", "string", "n"),
            fd("customized", "boolean", "", "false"),
            fo("source", "enum", "n", &["db", "default", "env"]),
        ],
    },
    NSchema {
        id: "principal",
        plural: "principals",
        collection: &["GET"],
        resource: &["GET"],
        actions: &[],
        collection_actions: &[("search", "searchPrincipalsInput", "collection")],
        meta: DISPLAY,
        fields: &[
            f("name", "string", "cun"),
            f("loginName", "string", "cun"),
            f("profilePicture", "string", "cun"),
            f("profileURL", "string", "cun"),
            f("principalType", "string", "cun"),
            fd("me", "boolean", "cu", "false"),
            fd("memberOf", "boolean", "cu", "false"),
            f("provider", "string", "cun"),
            f("extraInfo", "map[string]", "cun"),
        ],
    },
    NSchema {
        id: "userAttribute",
        plural: "userAttributes",
        collection: &[],
        resource: &[],
        actions: &[],
        collection_actions: &[],
        meta: PLAIN,
        fields: &[
            // Untagged Go fields: norman names them lower-camel, while the object's JSON keeps the Go names.
            f("userName", "string", "cun"),
            f("groupPrincipals", "map[principals]", "cun"),
            f("lastRefresh", "string", "cun"),
            fd("needsRefresh", "boolean", "cu", "false"),
            f("extraByProvider", "map[map[array[string]]]", "cun"),
            f("lastLogin", "date", "cun"),
            // schema.go makes both durations strings.
            f("disableAfter", "string", "cun"),
            f("deleteAfter", "string", "cun"),
        ],
    },
];

/// AuthConfig's own fields (authn_types.go `AuthConfig`), shared by every provider config.
const AUTH_CONFIG_FIELDS: &[F] = &[
    f("type", "string", "cn"),
    fd("enabled", "boolean", "cu", "false"),
    fo("accessMode", "enum", "cur", &["required", "restricted", "unrestricted"]),
    f("allowedPrincipalIds", "array[reference[principal]]", "cun"),
    fd("logoutAllSupported", "boolean", "cu", "false"),
    f("status", "authConfigStatus", "n"),
];

/// ActiveDirectoryConfig's fields after AuthConfig's (authn_types.go `ActiveDirectoryConfig`).
const AD_FIELDS: &[F] = &[
    f("servers", "array[string]", "curn"),
    fd("port", "int", "cu", "389"),
    fd("tls", "boolean", "cu", "false"),
    fd("starttls", "boolean", "cu", "false"),
    f("certificate", "string", "cun"),
    f("defaultLoginDomain", "string", "cun"),
    f("serviceAccountUsername", "string", "curn"),
    f("serviceAccountPassword", "password", "curn"),
    fd("userDisabledBitMask", "int", "cu", "2"),
    f("userSearchBase", "string", "curn"),
    fd(
        "userSearchAttribute",
        "string",
        "curn",
        "\"sAMAccountName|sn|givenName\"",
    ),
    f("userSearchFilter", "string", "cun"),
    fd("userLoginAttribute", "string", "curn", "\"sAMAccountName\""),
    fd("userObjectClass", "string", "curn", "\"person\""),
    fd("userNameAttribute", "string", "curn", "\"name\""),
    fd("userEnabledAttribute", "string", "curn", "\"userAccountControl\""),
    f("userLoginFilter", "string", "cun"),
    f("groupSearchBase", "string", "cun"),
    fd("groupSearchAttribute", "string", "curn", "\"sAMAccountName\""),
    f("groupSearchFilter", "string", "cun"),
    fd("groupObjectClass", "string", "curn", "\"group\""),
    fd("groupNameAttribute", "string", "curn", "\"name\""),
    fd("groupDNAttribute", "string", "curn", "\"distinguishedName\""),
    fd("groupMemberUserAttribute", "string", "curn", "\"distinguishedName\""),
    fd("groupMemberMappingAttribute", "string", "curn", "\"member\""),
    fd("connectionTimeout", "int", "cur", "5000"),
    fd("nestedGroupMembershipEnabled", "boolean", "cun", "false"),
];

/// Types referenced by the fields and actions above that the simulator describes (not Kubernetes objects: no
/// methods, listed only through a reference).
const SUB: &[NSchema] = &[
    sub(
        "policyRule",
        &[
            f("apiGroups", "array[string]", "cun"),
            f("nonResourceURLs", "array[string]", "cun"),
            f("resourceNames", "array[string]", "cun"),
            f("resources", "array[string]", "cun"),
            f("verbs", "array[string]", "cun"),
        ],
    ),
    sub(
        "ownerReference",
        &[
            f("apiVersion", "string", "cun"),
            f("blockOwnerDeletion", "boolean", "cun"),
            f("controller", "boolean", "cun"),
            f("kind", "string", "cun"),
            f("name", "string", "cun"),
            f("uid", "string", "cun"),
        ],
    ),
    sub("setPasswordInput", &[f("newPassword", "string", "curn")]),
    sub(
        "changePasswordInput",
        &[
            f("currentPassword", "string", "curn"),
            f("newPassword", "string", "curn"),
        ],
    ),
    sub(
        "searchPrincipalsInput",
        &[
            f("name", "string", "cur"),
            fo("principalType", "enum", "cun", &["user", "group"]),
        ],
    ),
    sub("authConfigLogoutInput", &[f("finalRedirectUrl", "string", "cun")]),
    sub("authConfigLogoutOutput", &[f("idpRedirectUrl", "string", "cun")]),
    sub("generateKubeConfigOutput", &[f("config", "string", "cun")]),
];

const fn sub(id: &'static str, fields: &'static [F]) -> NSchema {
    NSchema {
        id,
        plural: "",
        collection: &[],
        resource: &[],
        actions: &[],
        collection_actions: &[],
        meta: Meta::None,
        fields,
    }
}

/// A provider config schema (schema.go `authnTypes`: base type `authConfig`, no collection, `GET`/`PUT`).
fn provider_schema(ty: &'static str) -> NSchema {
    let actions: &'static [Act] = match ty {
        "localConfig" => &[],
        "activeDirectoryConfig" => &[
            ("disable", "", ""),
            ("testAndApply", "activeDirectoryTestAndApplyInput", ""),
        ],
        "openLdapConfig" => &[("disable", "", ""), ("testAndApply", "openLdapTestAndApplyInput", "")],
        "freeIpaConfig" => &[("disable", "", ""), ("testAndApply", "freeIpaTestAndApplyInput", "")],
        "githubConfig" => &[
            ("disable", "", ""),
            ("configureTest", "githubConfig", "githubConfigTestOutput"),
            ("testAndApply", "githubConfigApplyInput", ""),
        ],
        "azureADConfig" => &[
            ("disable", "", ""),
            ("configureTest", "azureADConfig", "azureADConfigTestOutput"),
            ("testAndApply", "azureADConfigApplyInput", ""),
            ("upgrade", "", ""),
        ],
        "googleOauthConfig" => &[
            ("disable", "", ""),
            ("configureTest", "googleOauthConfig", "googleOauthConfigTestOutput"),
            ("testAndApply", "googleOauthConfigApplyInput", ""),
        ],
        _ => &[("disable", "", "")],
    };
    NSchema {
        id: ty,
        plural: "",
        collection: &[],
        resource: if ty == "localConfig" { &["GET"] } else { &["GET", "PUT"] },
        actions,
        collection_actions: &[],
        meta: PLAIN,
        fields: if ty == "activeDirectoryConfig" { AD_FIELDS } else { &[] },
    }
}

fn field_json(fl: &F) -> Value {
    let F(_, ty, flags, default, options) = fl;
    let mut m = Map::new();
    m.insert("type".into(), json!(ty));
    m.insert("create".into(), json!(flags.contains('c')));
    m.insert("update".into(), json!(flags.contains('u')));
    if flags.contains('n') {
        m.insert("nullable".into(), json!(true));
    }
    if flags.contains('r') {
        m.insert("required".into(), json!(true));
    }
    if flags.contains('w') {
        m.insert("writeOnly".into(), json!(true));
    }
    if let Some(d) = default {
        m.insert("default".into(), serde_json::from_str(d).unwrap_or(Value::Null));
    }
    if !options.is_empty() {
        m.insert("options".into(), json!(options));
    }
    Value::Object(m)
}

/// The metadata fields the object mappers give a type.
fn meta_fields(meta: Meta, creatable_listable: bool, scoped: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let Meta::Object {
        display,
        namespaced,
        state,
    } = meta
    else {
        return out;
    };
    let mut put = |fl: F| {
        out.insert(fl.0.to_string(), field_json(&fl));
    };
    put(f("annotations", "map[string]", "cun"));
    put(f("labels", "map[string]", "cun"));
    put(f("created", "date", "n"));
    put(f("removed", "date", "n"));
    put(f("uuid", "string", "n"));
    put(f("ownerReferences", "array[ownerReference]", "n"));
    if display {
        put(f("id", "dnsLabel", "n"));
    } else {
        put(f("name", "dnsLabel", "cn"));
    }
    if namespaced {
        // Required, unless a `clusterId`/`projectId` field places the object (setupScopedTypes).
        put(f(
            "namespaceId",
            "reference[/v3/clusters/schemas/namespace]",
            if scoped { "cn" } else { "crn" },
        ));
    }
    if creatable_listable {
        put(f("creatorId", "reference[/v3/schemas/user]", ""));
    }
    if state {
        put(f("state", "string", ""));
        put(fo("transitioning", "enum", "", &["yes", "no", "error"]));
        put(f("transitioningMessage", "string", ""));
    }
    out
}

fn modifiers(ty: &str) -> Option<Value> {
    match ty {
        "enum" | "date" | "dnsLabel" | "hostname" | "string" | "int" => Some(json!(["eq", "ne", "in", "notin"])),
        "boolean" => Some(json!(["eq", "ne"])),
        t if t.starts_with("reference[") => Some(json!(["eq", "ne", "in", "notin"])),
        _ => None,
    }
}

fn actions_json(acts: &[Act]) -> Value {
    let mut m = Map::new();
    for (name, input, output) in acts {
        let mut a = Map::new();
        if !input.is_empty() {
            a.insert("input".into(), json!(input));
        }
        if !output.is_empty() {
            a.insert("output".into(), json!(output));
        }
        m.insert((*name).into(), Value::Object(a));
    }
    Value::Object(m)
}

/// The `schema` resource for `sc`, as norman writes it.
fn norman_schema(sc: &NSchema, base: &str, version: crate::config::RancherVersion) -> Value {
    let lists = sc.collection.contains(&"GET");
    let creatable_listable = lists && sc.collection.contains(&"POST");
    let scoped = sc.fields.iter().any(|fl| matches!(fl.0, "clusterId" | "projectId"));
    let mut fields = meta_fields(sc.meta, creatable_listable, scoped);
    if sc.id.ends_with("Config") && sc.id != "authConfig" {
        for fl in AUTH_CONFIG_FIELDS {
            fields.insert(fl.0.into(), field_json(fl));
        }
    }
    for fl in sc.fields {
        if sc.id == "token" && fl.0 == "lastUsedAt" && !version.at_least(2, 10) {
            continue;
        }
        fields.insert(fl.0.into(), field_json(fl));
    }
    let mut out = Map::new();
    out.insert("id".into(), json!(sc.id));
    out.insert("type".into(), json!("schema"));
    out.insert("baseType".into(), json!("schema"));
    let mut links = Map::new();
    links.insert("self".into(), json!(format!("{base}/v3/schemas/{}", sc.id)));
    if lists {
        links.insert(
            "collection".into(),
            json!(format!("{base}/v3/{}", sc.plural.to_ascii_lowercase())),
        );
    }
    out.insert("links".into(), Value::Object(links));
    // Norman guesses a plural for every schema it is not given one for (setupDefaults).
    if sc.plural.is_empty() {
        out.insert("pluralName".into(), json!(format!("{}s", sc.id)));
    } else {
        out.insert("pluralName".into(), json!(sc.plural));
    }
    out.insert(
        "version".into(),
        json!({"group": "management.cattle.io", "version": "v3", "path": "/v3"}),
    );
    // modifyForAccessControl rebuilds the lists in this order (PUT, DELETE, GET; POST, GET).
    let resource: Vec<&str> = ["PUT", "DELETE", "GET"]
        .into_iter()
        .filter(|m| sc.resource.contains(m))
        .collect();
    let collection: Vec<&str> = ["POST", "GET"]
        .into_iter()
        .filter(|m| sc.collection.contains(m))
        .collect();
    if !resource.is_empty() {
        out.insert("resourceMethods".into(), json!(resource));
    }
    if !collection.is_empty() {
        out.insert("collectionMethods".into(), json!(collection));
    }
    if lists {
        let mut filters = Map::new();
        for (name, fl) in &fields {
            if let Some(m) = fl["type"].as_str().and_then(modifiers) {
                filters.insert(name.clone(), json!({ "modifiers": m }));
            }
        }
        out.insert("collectionFilters".into(), Value::Object(filters));
    }
    // Empty maps are left out (`omitempty` on the Go schema).
    if !sc.actions.is_empty() {
        out.insert("resourceActions".into(), actions_json(sc.actions));
    }
    if !sc.collection_actions.is_empty() {
        out.insert("collectionActions".into(), actions_json(sc.collection_actions));
    }
    out.insert("resourceFields".into(), Value::Object(fields));
    Value::Object(out)
}

fn all_norman() -> Vec<NSchema> {
    let mut out: Vec<NSchema> = Vec::new();
    for sc in TYPES.iter().chain(SUB) {
        out.push(copy(sc));
    }
    for (_, ty) in AUTH_CONFIGS {
        out.push(provider_schema(ty));
    }
    out
}

fn copy(sc: &NSchema) -> NSchema {
    NSchema {
        id: sc.id,
        plural: sc.plural,
        collection: sc.collection,
        resource: sc.resource,
        actions: sc.actions,
        collection_actions: sc.collection_actions,
        meta: sc.meta,
        fields: sc.fields,
    }
}

/// The types a schema's fields and actions name (the innermost type of `array[...]`, `map[...]`, `reference[...]`).
fn referenced(sc: &NSchema, schema_json: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(fields) = schema_json["resourceFields"].as_object() {
        for fl in fields.values() {
            let mut t = fl["type"].as_str().unwrap_or("");
            while let Some(inner) = ["array[", "map[", "reference["]
                .iter()
                .find_map(|p| t.strip_prefix(p).and_then(|x| x.strip_suffix(']')))
            {
                t = inner;
            }
            out.push(t.to_string());
        }
    }
    for (_, i, o) in sc.actions.iter().chain(sc.collection_actions) {
        out.push(i.to_string());
        out.push(o.to_string());
    }
    out.retain(|t| !t.is_empty());
    out
}

/// The `/v3` API root (rancher/norman api/builtin/api_root.go `APIRootFormatter`): `root`, `self`, and the collection
/// of every schema with a GET collection method, keyed by plural name.
pub(crate) fn api_root(base: &str) -> Value {
    let mut links = Map::new();
    links.insert("root".into(), json!(format!("{base}/v3")));
    links.insert("self".into(), json!(format!("{base}/v3")));
    for sc in TYPES.iter().filter(|sc| sc.collection.contains(&"GET")) {
        links.insert(
            sc.plural.into(),
            json!(format!("{base}/v3/{}", sc.plural.to_ascii_lowercase())),
        );
    }
    json!({"type": "apiRoot", "baseType": "apiRoot", "links": links,
           "apiVersion": {"group": "management.cattle.io", "version": "v3", "path": "/v3"}})
}

/// `/v3/schemas` and `/v3/schemas/<id>` for an authenticated caller.
pub(crate) fn norman(shared: &Shared, req: &Req) -> Resp {
    if req.method != Method::GET {
        return norman_err(405, "MethodNotAllow", &format!("Method {} not supported", req.method));
    }
    let all = all_norman();
    match req.segs.len() {
        2 => {
            // Every schema with a GET method, each preceded by the described types it refers to.
            let mut listed: Vec<String> = Vec::new();
            let mut data: Vec<Value> = Vec::new();
            fn add(
                sc: &NSchema,
                all: &[NSchema],
                base: &str,
                v: crate::config::RancherVersion,
                listed: &mut Vec<String>,
                data: &mut Vec<Value>,
            ) {
                listed.push(sc.id.to_string());
                let j = norman_schema(sc, base, v);
                for r in referenced(sc, &j) {
                    if let Some(rs) = all.iter().find(|x| x.id == r) {
                        if !listed.contains(&r) {
                            add(rs, all, base, v, listed, data);
                        }
                    }
                }
                data.push(j);
            }
            for sc in &all {
                let visible = sc.collection.contains(&"GET") || sc.resource.contains(&"GET");
                if visible && !listed.iter().any(|l| l == sc.id) {
                    add(sc, &all, &req.base, shared.version, &mut listed, &mut data);
                }
            }
            Resp::json(
                200,
                &json!({"type": "collection", "links": {"self": req.url()}, "createTypes": {}, "actions": {},
                        "resourceType": "schema", "data": data}),
            )
        }
        3 => match all.iter().find(|sc| sc.id.eq_ignore_ascii_case(req.seg(2))) {
            Some(sc) => Resp::json(200, &norman_schema(sc, &req.base, shared.version)),
            None => norman_err(404, "NotFound", "no such schema"),
        },
        _ => norman_err(404, "NotFound", "not found").no_route(),
    }
}

/// Namespaces of the local cluster where namespaced grants can live (cluster and project namespaces).
fn namespaces(store: &Store) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (key, p) in store.map(Kind::Project) {
        for ns in [
            key.split(':').next().unwrap_or(""),
            key.split(':').nth(1).unwrap_or(""),
            s(p, "status.backingNamespace"),
        ] {
            if !ns.is_empty() && !out.iter().any(|o| o == ns) {
                out.push(ns.to_string());
            }
        }
    }
    out
}

/// The Steve schema of one RK kind for `caller`, or `None` when the caller holds none of its verbs.
fn steve_schema(
    store: &Store,
    authz: &Authz,
    caller: &Caller,
    info: &crate::state::KindInfo,
    base: &str,
) -> Option<Value> {
    let verbs = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    let own = matches!(info.kind, Kind::ExtToken | Kind::Kubeconfig);
    let nss = if info.namespaced { namespaces(store) } else { Vec::new() };
    let granted = |verb: &str| {
        caller.admin
            || own
            || authz.can_collection(verb, info.kind, None)
            || nss.iter().any(|ns| {
                authz
                    .rules_in(ns)
                    .iter()
                    .any(|r| r.allows(verb, info.group, info.plural, None))
            })
    };
    let management = info.group == "management.cattle.io";
    let mut disallow: Vec<&str> = Vec::new();
    // Management kinds off Rancher's allow-list get their writes blocked (disallow.go `AllowAll`, `allowPost`,
    // `allowPut`, `disallowGet`); the list is the RK proxy's, version by version.
    if management && !info.kind.rk_allow_listed(store.version) {
        disallow.extend(["PATCH", "DELETE"]);
        if !matches!(info.plural, "features" | "settings") {
            disallow.push("PUT");
        }
        if info.plural != "settings" {
            disallow.push("POST");
        }
        if matches!(
            info.plural,
            "preferences" | "templatecontents" | "templates" | "templateversions" | "tokens"
        ) {
            disallow.push("GET");
        }
    }
    let allowed = |m: &str| {
        if disallow.contains(&m) {
            format!("blocked-{m}")
        } else {
            m.to_string()
        }
    };
    let mut collection: Vec<String> = Vec::new();
    let mut resource: Vec<String> = Vec::new();
    let add = |list: &mut Vec<String>, m: String| {
        if !list.contains(&m) {
            list.push(m);
        }
    };
    if granted("list") || granted("get") {
        add(&mut resource, allowed("GET"));
        add(&mut collection, allowed("GET"));
    }
    if granted("delete") {
        add(&mut resource, allowed("DELETE"));
    }
    if granted("update") {
        add(&mut resource, allowed("PUT"));
        add(&mut resource, allowed("PATCH"));
    }
    if granted("create") {
        add(&mut collection, allowed("POST"));
    }
    if granted("patch") {
        add(&mut resource, allowed("PATCH"));
    }
    if collection.is_empty() && resource.is_empty() {
        return None;
    }
    let id = format!("{}.{}", info.group, info.singular);
    let plural = format!("{}.{}", info.group, info.plural);
    let mut links = Map::new();
    links.insert("self".into(), json!(format!("{base}/v1/schemas/{id}")));
    if collection.iter().any(|m| m == "GET" || m == "POST") {
        links.insert("collection".into(), json!(format!("{base}/v1/{plural}")));
    }
    let mut attributes = json!({
        "group": info.group, "version": info.version, "kind": info.kind_name, "resource": info.plural,
        "namespaced": info.namespaced, "verbs": verbs,
    });
    if info.group != "ext.cattle.io" {
        attributes["crd"] = json!(true);
    }
    if !disallow.is_empty() {
        let d: Map<String, Value> = disallow.iter().map(|m| (m.to_string(), json!(true))).collect();
        attributes["disallowMethods"] = Value::Object(d);
    }
    Some(json!({
        "id": id, "type": "schema", "links": links, "pluralName": plural,
        "resourceMethods": resource, "collectionMethods": collection, "resourceFields": null, "attributes": attributes,
    }))
}

/// Steve's own `schema` schema (rancher/apiserver pkg/builtin/schema.go).
fn steve_builtin(base: &str) -> Value {
    let fields: Map<String, Value> = [
        ("collectionActions", "map[json]"),
        ("collectionFields", "map[json]"),
        ("collectionFilters", "map[json]"),
        ("collectionMethods", "array[string]"),
        ("pluralName", "string"),
        ("resourceActions", "map[json]"),
        ("attributes", "map[json]"),
        ("resourceFields", "map[json]"),
        ("resourceMethods", "array[string]"),
        ("version", "map[json]"),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), json!({"type": t, "create": false, "update": false})))
    .collect();
    json!({
        "id": "schema", "type": "schema",
        "links": {"self": format!("{base}/v1/schemas/schema"), "collection": format!("{base}/v1/schemas")},
        "pluralName": "schemas", "resourceMethods": ["GET"], "collectionMethods": ["GET"], "resourceFields": fields,
    })
}

/// `/v1/schemas` and `/v1/schemas/<id>` for an authenticated caller (`segs` starts with `v1`, `schemas`).
pub(crate) fn steve(store: &Store, caller: &Caller, req: &Req, segs: &[&str]) -> Resp {
    let authz = Authz::new(store, caller);
    let mut data = vec![steve_builtin(&req.base)];
    for info in KINDS.iter().filter(|k| k.kind.rk_served(store.version)) {
        if let Some(sc) = steve_schema(store, &authz, caller, info, &req.base) {
            data.push(sc);
        }
    }
    data.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let not_found = || {
        Resp::json(
            404,
            &json!({"type": "error", "status": 404, "code": "NotFound", "message": "no such schema"}),
        )
    };
    if req.method != Method::GET {
        return Resp::json(
            405,
            &json!({"type": "error", "status": 405, "code": "MethodNotAllowed", "message": format!("Method {} not supported", req.method)}),
        );
    }
    match segs {
        [_, _] => Resp::json(
            200,
            &json!({"type": "collection", "links": {"self": req.url()}, "actions": {}, "resourceType": "schema", "data": data}),
        ),
        [_, _, id] => data
            .into_iter()
            .find(|sc| sc["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
            .map(|sc| Resp::json(200, &sc))
            .unwrap_or_else(not_found),
        _ => not_found().no_route(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the handlers knowingly differ from the schema, and why.
    const KNOWN: &[(&str, &str, &str)] = &[
        // The schema lets an update carry them, then Rancher's webhook refuses a change ("field is immutable",
        // rancher/webhook pkg/resources/management.cattle.io/v3/users/validator.go `validateUpdateFields`;
        // project/Project.md "ClusterName validation"). The simulator drops them instead.
        ("user", "username", "webhook refuses a change"),
        ("user", "principalIds", "webhook refuses a change"),
        ("project", "clusterId", "webhook refuses a change"),
        // The simulator models no /v3 writes of clusters and settings (405).
        ("cluster", "name", "no cluster writes"),
        ("cluster", "description", "no cluster writes"),
        ("setting", "name", "no setting creates"),
    ];

    /// What the simulator's `/v3` create and update accept (norman.rs `fields`) against what its schema says.
    #[test]
    fn schema_flags_match_what_the_handlers_accept() {
        let mut out = Vec::new();
        for sc in TYPES {
            let Some(kind) = crate::norman::resolve_type(sc.id).and_then(|t| match t {
                crate::norman::NType::Obj(k) => Some(k),
                _ => None,
            }) else {
                continue;
            };
            let j = norman_schema(sc, "", crate::config::RancherVersion::V2_13);
            for (name, _, c, u) in crate::norman::fields(kind) {
                if KNOWN.iter().any(|(t, n, _)| *t == sc.id && n == name) {
                    continue;
                }
                let fl = &j["resourceFields"][*name];
                if fl.is_null() {
                    out.push(format!("{}.{name}: not in the schema", sc.id));
                    continue;
                }
                if fl["create"] != *c || fl["update"] != *u {
                    out.push(format!(
                        "{}.{name}: handler create={c} update={u}, schema create={} update={}",
                        sc.id, fl["create"], fl["update"]
                    ));
                }
            }
        }
        assert!(out.is_empty(), "{}", out.join("\n"));
    }
}
