//! Schema discovery as Rancher's own clients use it: Norman's `/v3/schemas` (the `rancher` CLI, the Terraform
//! provider and the Python client build their types from it), Steve's `/v1/schemas` (the dashboard), and the RK
//! `clusters.management.cattle.io` kind.
//!
//! The schema-driven client below knows only the server's base URL and a type name: it finds the schema collection
//! through the `X-Api-Schemas` header (rancher/norman clientbase/common.go `NewAPIClient`), reads the type's
//! schema, checks the methods it needs are declared (rancher/norman clientbase/ops.go `DoCreate`, `DoUpdate`,
//! `DoResourceDelete`), builds the create body from the fields marked `create` (required ones filled by itself,
//! references resolved by listing the referenced type), and follows the links the server gives.

mod common;

use common::*;
use rancher_sim::{RancherVersion, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// A generic Norman client: base URL and bearer token, nothing else.
struct SchemaClient<'a> {
    sim: &'a SimHandle,
    token: String,
    schemas: Vec<Value>,
}

impl<'a> SchemaClient<'a> {
    /// Reads the API root, follows its `X-Api-Schemas` header and loads the schema collection.
    async fn connect(sim: &'a SimHandle, token: &str) -> SchemaClient<'a> {
        let resp = client(sim)
            .get(format!("{}/v3", sim.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .expect("the API root answers");
        assert_eq!(resp.status(), StatusCode::OK);
        let schemas_url = resp
            .headers()
            .get("x-api-schemas")
            .and_then(|v| v.to_str().ok())
            .expect("the API root names its schema collection in X-Api-Schemas")
            .to_string();
        let (status, body) = Self::raw(sim, token, Method::GET, &schemas_url, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["type"], "collection");
        assert_eq!(body["resourceType"], "schema");
        let schemas = body["data"].as_array().cloned().unwrap_or_default();
        SchemaClient {
            sim,
            token: token.to_string(),
            schemas,
        }
    }

    async fn raw(sim: &SimHandle, token: &str, method: Method, url: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut rb = client(sim).request(method, url).bearer_auth(token);
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b.to_string());
        }
        let resp = rb.send().await.expect("answered");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> (StatusCode, Value) {
        Self::raw(self.sim, &self.token, method, url, body).await
    }

    fn schema(&self, ty: &str) -> &Value {
        self.schemas
            .iter()
            .find(|s| s["id"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(ty)))
            .unwrap_or_else(|| panic!("the schema collection has no {ty}"))
    }

    fn allows(schema: &Value, list: &str, method: &str) -> bool {
        schema[list].as_array().is_some_and(|m| m.iter().any(|x| x == method))
    }

    /// A value for a required field the caller did not give: a reference is resolved by listing the referenced
    /// type's collection, anything else gets a generated value of the field's type.
    async fn fill(&self, name: &str, field: &Value) -> Value {
        let ty = field["type"].as_str().unwrap_or("string");
        if let Some(target) = ty.strip_prefix("reference[").and_then(|t| t.strip_suffix(']')) {
            let target = target.rsplit('/').next().unwrap_or(target);
            let url = self.schema(target)["links"]["collection"]
                .as_str()
                .unwrap_or_else(|| panic!("{target} has a collection link"))
                .to_string();
            let (status, list) = self.call(Method::GET, &url, None).await;
            assert_eq!(status, StatusCode::OK, "{list}");
            return list["data"][0]["id"].clone();
        }
        if let Some(d) = field.get("default") {
            return d.clone();
        }
        match ty {
            "boolean" => json!(false),
            "int" => json!(0),
            "enum" => field["options"][0].clone(),
            _ => json!(format!("schema-client-{}", name.to_ascii_lowercase())),
        }
    }

    /// Creates a `ty` from `given` plus the required create fields, after checking every given field is one the
    /// schema lets a create set.
    async fn create(&self, ty: &str, given: Value) -> Value {
        let schema = self.schema(ty).clone();
        assert!(
            Self::allows(&schema, "collectionMethods", "POST"),
            "{ty} takes no create: {}",
            schema["collectionMethods"]
        );
        let fields = schema["resourceFields"].as_object().expect("resourceFields");
        let mut body: Map<String, Value> = given.as_object().cloned().unwrap_or_default();
        for k in body.keys() {
            assert_eq!(fields[k]["create"], true, "{ty}.{k} is not settable on create");
        }
        for (name, field) in fields {
            if field["create"] == true && field["required"] == true && !body.contains_key(name) {
                let v = self.fill(name, field).await;
                body.insert(name.clone(), v);
            }
        }
        let url = schema["links"]["collection"]
            .as_str()
            .expect("collection link")
            .to_string();
        let (status, obj) = self.call(Method::POST, &url, Some(Value::Object(body))).await;
        assert_eq!(status, StatusCode::CREATED, "create {ty}: {obj}");
        assert_eq!(obj["type"], ty);
        obj
    }

    /// Changes the first string field (by name) the schema marks `update`, else the first string map (a new key). Returns the field and the value sent.
    async fn update(&self, ty: &str, obj: &Value) -> (String, Value) {
        let schema = self.schema(ty).clone();
        assert!(Self::allows(&schema, "resourceMethods", "PUT"), "{ty} takes no update");
        let fields = schema["resourceFields"].as_object().expect("resourceFields");
        let mut names: Vec<&String> = fields.keys().collect();
        names.sort();
        let updatable = |want: &str| {
            names
                .iter()
                .find(|n| fields[n.as_str()]["update"] == true && fields[n.as_str()]["type"] == want)
                .map(|n| n.to_string())
        };
        let (name, value) = match (updatable("string"), updatable("map[string]")) {
            (Some(n), _) => (n, json!("changed by a schema-driven client")),
            (None, Some(n)) => (n, json!({"schema-client": "updated"})),
            (None, None) => panic!("{ty} has no updatable string or string map field"),
        };
        let url = obj["links"]["update"]
            .as_str()
            .expect("an update link for the creator")
            .to_string();
        let (status, out) = self
            .call(Method::PUT, &url, Some(json!({ name.clone(): value.clone() })))
            .await;
        assert_eq!(status, StatusCode::OK, "update {ty}: {out}");
        let (status, read) = self
            .call(Method::GET, obj["links"]["self"].as_str().unwrap(), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        match &value {
            Value::Object(m) => {
                for (k, v) in m {
                    assert_eq!(&read[&name][k], v, "{ty}.{name} after the update: {read}");
                }
            }
            v => assert_eq!(&read[&name], v, "{ty}.{name} after the update: {read}"),
        }
        (name, value)
    }

    /// Deletes through the `remove` link, which the schema's resourceMethods must allow.
    async fn delete(&self, ty: &str, obj: &Value) {
        let schema = self.schema(ty).clone();
        assert!(
            Self::allows(&schema, "resourceMethods", "DELETE"),
            "{ty} takes no delete"
        );
        let url = obj["links"]["remove"]
            .as_str()
            .expect("a remove link for the creator")
            .to_string();
        let (status, out) = self.call(Method::DELETE, &url, None).await;
        assert!(status.is_success(), "delete {ty}: {status} {out}");
        // Objects with a finalizer linger until Rancher's controllers release them: poll until the read is a 404.
        let mut last = (StatusCode::OK, Value::Null);
        for _ in 0..200 {
            last = self
                .call(Method::GET, obj["links"]["self"].as_str().unwrap(), None)
                .await;
            if last.0 == StatusCode::NOT_FOUND {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("{ty} is still there after its delete: {} {}", last.0, last.1);
    }
}

#[tokio::test]
async fn norman_schema_of_a_global_role_binding_says_what_rancher_says() {
    let sim = start(RancherVersion::V2_13).await;
    let (status, s) = admin_get(&sim, "/v3/schemas/globalRoleBinding").await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["id"], "globalRoleBinding");
    assert_eq!(s["type"], "schema");
    assert_eq!(s["baseType"], "schema");
    assert_eq!(s["pluralName"], "globalRoleBindings");
    let base = sim.base_url();
    assert_eq!(s["links"]["self"], format!("{base}/v3/schemas/globalRoleBinding"));
    assert_eq!(s["links"]["collection"], format!("{base}/v3/globalrolebindings"));
    assert_eq!(
        s["version"],
        json!({"group": "management.cattle.io", "version": "v3", "path": "/v3"})
    );
    assert_eq!(s["collectionMethods"], json!(["POST", "GET"]));
    assert_eq!(s["resourceMethods"], json!(["PUT", "DELETE", "GET"]));
    let f = &s["resourceFields"];
    assert_eq!(
        f["globalRoleId"],
        json!({"type": "reference[globalRole]", "create": true, "update": false, "required": true, "nullable": true})
    );
    assert_eq!(f["userId"]["type"], "reference[user]");
    assert_eq!(f["userId"]["create"], true);
    assert_eq!(f["userId"]["update"], false);
    assert_eq!(f["groupPrincipalId"]["type"], "reference[principal]");
    assert_eq!(f["name"]["type"], "dnsLabel");
    assert_eq!(
        (f["name"]["create"].clone(), f["name"]["update"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        (f["labels"]["create"].clone(), f["labels"]["update"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(f["created"]["type"], "date");
    assert_eq!(f["created"]["create"], false);
    assert_eq!(f["status"]["create"], false);
    assert_eq!(f["creatorId"]["type"], "reference[/v3/schemas/user]");
    assert!(
        f.get("globalRoleName").is_none(),
        "the k8s name is renamed to the id form"
    );
    assert_eq!(
        s["collectionFilters"]["globalRoleId"]["modifiers"],
        json!(["eq", "ne", "in", "notin"])
    );
    // Looked up case-insensitively, as norman's schema store does.
    let (status, lower) = admin_get(&sim, "/v3/schemas/globalrolebinding").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lower["id"], "globalRoleBinding");
}

#[tokio::test]
async fn norman_schemas_carry_defaults_options_actions_and_provider_methods() {
    let sim = start(RancherVersion::V2_13).await;
    let (_, rt) = admin_get(&sim, "/v3/schemas/roleTemplate").await;
    assert_eq!(
        rt["resourceFields"]["context"]["options"],
        json!(["project", "cluster"])
    );
    assert_eq!(
        rt["resourceFields"]["roleTemplateIds"]["type"],
        "array[reference[roleTemplate]]"
    );
    assert_eq!(rt["resourceFields"]["builtin"]["create"], false);
    assert_eq!(rt["resourceFields"]["locked"]["default"], false);
    let (_, user) = admin_get(&sim, "/v3/schemas/user").await;
    assert_eq!(user["resourceFields"]["password"]["writeOnly"], true);
    assert_eq!(user["resourceFields"]["password"]["update"], false);
    assert_eq!(user["resourceFields"]["enabled"]["default"], true);
    assert_eq!(
        user["resourceActions"]["setpassword"],
        json!({"input": "setPasswordInput", "output": "user"})
    );
    assert_eq!(
        user["collectionActions"]["changepassword"],
        json!({"input": "changePasswordInput"})
    );
    let (_, token) = admin_get(&sim, "/v3/schemas/token").await;
    assert_eq!(
        token["collectionActions"]["logoutAll"],
        json!({"input": "authConfigLogoutInput", "output": "authConfigLogoutOutput"})
    );
    let (_, ad) = admin_get(&sim, "/v3/schemas/activeDirectoryConfig").await;
    // A schema answers as a `schema` resource: its baseType is the schema schema's, not authConfig.
    assert_eq!(ad["baseType"], "schema");
    assert!(
        ad.get("collectionMethods").is_none(),
        "a provider config has no collection: {ad}"
    );
    assert_eq!(ad["resourceMethods"], json!(["PUT", "GET"]));
    assert!(ad["links"].get("collection").is_none());
    assert_eq!(ad["resourceFields"]["port"]["default"], 389);
    assert_eq!(
        ad["resourceFields"]["accessMode"]["options"],
        json!(["required", "restricted", "unrestricted"])
    );
    assert_eq!(ad["resourceFields"]["serviceAccountPassword"]["type"], "password");
    assert_eq!(
        ad["resourceActions"]["testAndApply"],
        json!({"input": "activeDirectoryTestAndApplyInput"})
    );
    let (_, cluster) = admin_get(&sim, "/v3/schemas/cluster").await;
    assert_eq!(
        cluster["resourceActions"]["generateKubeconfig"],
        json!({"output": "generateKubeConfigOutput"})
    );
    // UserAttribute is imported with no methods at all: known by id, never listed.
    let (status, ua) = admin_get(&sim, "/v3/schemas/userAttribute").await;
    assert_eq!(status, StatusCode::OK, "{ua}");
    assert!(
        ua.get("resourceMethods").is_none() && ua.get("collectionMethods").is_none(),
        "{ua}"
    );
    assert_eq!(ua["resourceFields"]["groupPrincipals"]["type"], "map[principals]");
    assert_eq!(ua["resourceFields"]["disableAfter"]["type"], "string");
}

#[tokio::test]
async fn norman_schema_collection_lists_every_modelled_type_for_every_caller() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().clone();
    let (status, admin) = admin_get(&sim, "/v3/schemas").await;
    assert_eq!(status, StatusCode::OK, "{admin}");
    assert_eq!(admin["type"], "collection");
    assert_eq!(admin["resourceType"], "schema");
    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    let listed = ids(&admin);
    for ty in [
        "user",
        "globalRole",
        "globalRoleBinding",
        "roleTemplate",
        "project",
        "clusterRoleTemplateBinding",
        "projectRoleTemplateBinding",
        "token",
        "cluster",
        "authConfig",
        "setting",
        "principal",
        "githubConfig",
        "activeDirectoryConfig",
        "localConfig",
        // Referenced by a listed type's fields or actions, so listed too.
        "policyRule",
        "setPasswordInput",
    ] {
        assert!(listed.iter().any(|i| i == ty), "{ty} is listed: {listed:?}");
    }
    assert!(
        !listed.iter().any(|i| i == "userAttribute"),
        "no methods, not referenced: not listed"
    );
    // Rancher's norman access control for schemas is the schema's own methods (rancher/rancher pkg/rbac/user_based.go
    // `userCachedAccess` embeds norman's `AllAccess`): a standard user gets the same schemas and methods.
    let (status, alice) = call(&sim, Method::GET, "/v3/schemas", Some(&t.user), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&alice), listed);
    assert_eq!(alice["data"], admin["data"]);
    // Behind authentication like the rest of /v3.
    let (status, _) = call(&sim, Method::GET, "/v3/schemas", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = admin_get(&sim, "/v3/schemas/nosuchtype").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "NotFound");
}

#[tokio::test]
async fn a_schema_driven_client_creates_updates_and_deletes() {
    let sim = start(RancherVersion::V2_13).await;
    let admin = sim.tokens().admin.clone();
    let c = SchemaClient::connect(&sim, &admin).await;
    let bob = sim.users().standard[1].id.clone();

    // globalRoleBinding: the required globalRoleId is found by listing globalRoles; the subject is the caller's.
    let grb = c.create("globalRoleBinding", json!({"userId": bob})).await;
    assert_eq!(grb["userId"], bob.as_str());
    assert!(grb["globalRoleId"].as_str().is_some_and(|r| !r.is_empty()), "{grb}");
    let (field, _) = c.update("globalRoleBinding", &grb).await;
    assert_eq!(field, "annotations");
    c.delete("globalRoleBinding", &grb).await;

    // projectRoleTemplateBinding: projectId is resolved from the project collection.
    let prtb = c
        .create(
            "projectRoleTemplateBinding",
            json!({"userId": bob, "roleTemplateId": "project-member"}),
        )
        .await;
    assert!(prtb["projectId"].as_str().is_some_and(|p| p.contains(':')), "{prtb}");
    c.update("projectRoleTemplateBinding", &prtb).await;
    c.delete("projectRoleTemplateBinding", &prtb).await;

    // user: no field is required by the schema; the caller names the login.
    let user = c
        .create(
            "user",
            json!({"username": "schemaclient", "password": "a-long-enough-password-1"}),
        )
        .await;
    assert_eq!(user["username"], "schemaclient");
    assert!(user.get("password").is_none(), "write-only");
    let (field, value) = c.update("user", &user).await;
    assert_eq!(
        (field.as_str(), value),
        ("description", json!("changed by a schema-driven client"))
    );
    c.delete("user", &user).await;
}

#[tokio::test]
async fn a_field_not_marked_update_is_dropped_from_an_update_as_norman_does() {
    // rancher/norman parse/builder/builder.go: `copyInputs` skips every field `fieldMatchesOp` rejects, and an
    // update matches only fields with `update: true`. No error: the field keeps its value.
    let sim = start(RancherVersion::V2_13).await;
    let admin = sim.tokens().admin.clone();
    let c = SchemaClient::connect(&sim, &admin).await;
    assert_eq!(
        c.schema("globalRoleBinding")["resourceFields"]["globalRoleId"]["update"],
        false
    );
    let bob = sim.users().standard[1].id.clone();
    let grb = c
        .create("globalRoleBinding", json!({"userId": bob, "globalRoleId": "user-base"}))
        .await;
    let url = grb["links"]["update"].as_str().unwrap().to_string();
    let (status, out) = c
        .call(
            Method::PUT,
            &url,
            Some(json!({"globalRoleId": "admin", "userId": "someone-else", "annotations": {"a": "b"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["globalRoleId"], "user-base");
    assert_eq!(out["userId"], bob.as_str());
    assert_eq!(out["annotations"]["a"], "b");
    let stored = sim.object("globalrolebindings", grb["id"].as_str().unwrap()).unwrap();
    assert_eq!(stored["globalRoleName"], "user-base");
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

fn steve_ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|s| s["id"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn steve_schemas_list_the_kinds_with_methods_from_the_callers_access() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().clone();
    let (status, all) = admin_get(&sim, "/v1/schemas").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["type"], "collection");
    assert_eq!(all["resourceType"], "schema");
    let ids = steve_ids(&all);
    for id in [
        "management.cattle.io.globalrolebinding",
        "management.cattle.io.projectroletemplatebinding",
        "management.cattle.io.user",
        "management.cattle.io.cluster",
        "ext.cattle.io.token",
        "schema",
    ] {
        assert!(ids.iter().any(|i| i == id), "{id} in {ids:?}");
    }
    let base = sim.base_url();
    let (status, grb) = admin_get(&sim, "/v1/schemas/management.cattle.io.globalrolebinding").await;
    assert_eq!(status, StatusCode::OK, "{grb}");
    assert_eq!(grb["type"], "schema");
    assert_eq!(grb["pluralName"], "management.cattle.io.globalrolebindings");
    assert_eq!(
        grb["links"]["self"],
        format!("{base}/v1/schemas/management.cattle.io.globalrolebinding")
    );
    assert_eq!(
        grb["links"]["collection"],
        format!("{base}/v1/management.cattle.io.globalrolebindings")
    );
    assert_eq!(grb["attributes"]["kind"], "GlobalRoleBinding");
    assert_eq!(grb["attributes"]["group"], "management.cattle.io");
    assert_eq!(grb["attributes"]["resource"], "globalrolebindings");
    assert_eq!(grb["attributes"]["namespaced"], false);
    assert!(
        grb["attributes"].get("access").is_none(),
        "steve drops the access set from the schema"
    );
    // Steve fills the method lists from Go maps: their order is not part of the answer.
    assert_eq!(sorted(&grb["collectionMethods"]), ["GET", "POST"]);
    assert_eq!(sorted(&grb["resourceMethods"]), ["DELETE", "GET", "PATCH", "PUT"]);
    // A management kind off Rancher's allow-list: writes are marked blocked (rancher/rancher
    // pkg/api/steve/disallow/disallow.go).
    let (_, rt) = admin_get(&sim, "/v1/schemas/management.cattle.io.roletemplate").await;
    assert_eq!(sorted(&rt["collectionMethods"]), ["GET", "blocked-POST"]);
    assert_eq!(
        sorted(&rt["resourceMethods"]),
        ["GET", "blocked-DELETE", "blocked-PATCH", "blocked-PUT"]
    );
    assert_eq!(rt["attributes"]["disallowMethods"]["PATCH"], true);

    // alice holds no global role binding rights: that schema is neither listed nor found for her.
    let (status, hers) = call(&sim, Method::GET, "/v1/schemas", Some(&t.user), None).await;
    assert_eq!(status, StatusCode::OK);
    let her_ids = steve_ids(&hers);
    assert!(
        !her_ids.iter().any(|i| i == "management.cattle.io.globalrolebinding"),
        "{her_ids:?}"
    );
    let (status, _) = call(
        &sim,
        Method::GET,
        "/v1/schemas/management.cattle.io.globalrolebinding",
        Some(&t.user),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // She may read role templates (the `user` global role) and nothing more on them.
    let (_, her_rt) = call(
        &sim,
        Method::GET,
        "/v1/schemas/management.cattle.io.roletemplate",
        Some(&t.user),
        None,
    )
    .await;
    assert_eq!(sorted(&her_rt["collectionMethods"]), ["GET"]);
    assert_eq!(sorted(&her_rt["resourceMethods"]), ["GET"]);
    // Her project-owner binding gives her project role template bindings in that project's namespace.
    assert!(
        her_ids
            .iter()
            .any(|i| i == "management.cattle.io.projectroletemplatebinding"),
        "{her_ids:?}"
    );
    let (status, _) = call(&sim, Method::GET, "/v1/schemas", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn steve_schemas_for_the_kinds_a_generic_client_uses() {
    let sim = start(RancherVersion::V2_13).await;
    for (id, kind, namespaced) in [
        ("management.cattle.io.globalrolebinding", "GlobalRoleBinding", false),
        (
            "management.cattle.io.projectroletemplatebinding",
            "ProjectRoleTemplateBinding",
            true,
        ),
        ("management.cattle.io.user", "User", false),
    ] {
        let (status, s) = admin_get(&sim, &format!("/v1/schemas/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {s}");
        assert_eq!(s["id"], id);
        assert_eq!(s["attributes"]["kind"], kind);
        assert_eq!(s["attributes"]["namespaced"], namespaced);
        assert_eq!(s["attributes"]["version"], "v3");
        assert!(s["attributes"]["verbs"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == "create")));
        assert!(
            s.get("resourceFields").is_some_and(Value::is_null),
            "fields come from schemaDefinitions"
        );
    }
}

#[tokio::test]
async fn rk_clusters_are_served_to_admins() {
    let sim = start(RancherVersion::V2_13).await;
    let t = sim.tokens().clone();
    let (status, list) = admin_get(&sim, "/apis/management.cattle.io/v3/clusters").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["kind"], "ClusterList");
    assert_eq!(list["apiVersion"], "management.cattle.io/v3");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"local"), "{names:?}");
    assert!(names.contains(&sim.users().downstream_cluster.as_str()), "{names:?}");
    let (status, local) = admin_get(&sim, "/apis/management.cattle.io/v3/clusters/local").await;
    assert_eq!(status, StatusCode::OK, "{local}");
    assert_eq!(local["kind"], "Cluster");
    assert_eq!(local["spec"]["displayName"], "local");
    let (_, disco) = admin_get(&sim, "/apis/management.cattle.io/v3").await;
    let cl = disco["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "clusters")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(cl["namespaced"], false, "{disco}");
    assert_eq!(cl["kind"], "Cluster");
    // Off the RK proxy's allow-list (rancher/rancher pkg/api/steve/disallow/disallow.go `AllowAll`), so a caller
    // without access to the local cluster gets an empty 403 (pkg/api/steve/proxy/proxy.go `authLocalCluster`).
    let resp = client(&sim)
        .get(format!("{}/apis/management.cattle.io/v3/clusters", sim.base_url()))
        .bearer_auth(&t.user)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.bytes().await.unwrap().is_empty());
    let (status, missing) = admin_get(&sim, "/apis/management.cattle.io/v3/clusters/c-nosuch").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing["message"],
        "clusters.management.cattle.io \"c-nosuch\" not found"
    );
}

#[tokio::test]
async fn rk_clusters_are_served_from_2_8() {
    let sim = start(RancherVersion::V2_8).await;
    let (status, list) = admin_get(&sim, "/apis/management.cattle.io/v3/clusters").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn norman_token_schema_follows_the_version() {
    // `Token.LastUsedAt` exists from 2.10 (rancher/rancher pkg/apis/management.cattle.io/v3/authn_types.go).
    for (version, has) in [(RancherVersion::V2_8, false), (RancherVersion::V2_13, true)] {
        let sim = start(version).await;
        let (status, token) = admin_get(&sim, "/v3/schemas/token").await;
        assert_eq!(status, StatusCode::OK, "{token}");
        assert_eq!(token["resourceFields"].get("lastUsedAt").is_some(), has, "{version:?}");
        assert_eq!(token["resourceFields"]["token"]["writeOnly"], true);
        let (_, grb) = admin_get(&sim, "/v3/schemas/globalRoleBinding").await;
        assert!(grb.get("resourceActions").is_none(), "no actions, no key: {grb}");
        let (status, _) = call(
            &sim,
            Method::PUT,
            "/v3/schemas/token",
            Some(&sim.tokens().admin),
            Some(json!({})),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn a_field_not_marked_create_is_dropped_from_a_create() {
    // `serviceAccount` is `nocreate,noupdate` on ProjectRoleTemplateBinding (rancher/rancher
    // pkg/apis/management.cattle.io/v3/authz_types.go); norman's builder keeps only `create` fields of a create body.
    let sim = start(RancherVersion::V2_13).await;
    let (_, schema) = admin_get(&sim, "/v3/schemas/projectRoleTemplateBinding").await;
    assert_eq!(schema["resourceFields"]["serviceAccount"]["create"], false);
    let project = sim.users().projects[0].clone();
    let bob = sim.users().standard[1].id.clone();
    let (status, prtb) = call(
        &sim,
        Method::POST,
        "/v3/projectroletemplatebindings",
        Some(&sim.tokens().admin),
        Some(json!({"projectId": project, "roleTemplateId": "project-member", "userId": bob, "serviceAccount": "sneaky"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{prtb}");
    assert!(prtb.get("serviceAccount").is_none(), "{prtb}");
    let key = prtb["id"].as_str().unwrap();
    assert!(sim
        .object("projectroletemplatebindings", key)
        .unwrap()
        .get("serviceAccount")
        .is_none());
}

#[tokio::test]
async fn the_v3_root_links_every_collection_it_serves() {
    // rancher/norman api/builtin/api_root.go `APIRootFormatter`: `root` and `self`, then a link per schema of the
    // version with a GET collection, keyed by its plural name.
    let sim = start(RancherVersion::V2_13).await;
    let (status, root) = admin_get(&sim, "/v3").await;
    assert_eq!(status, StatusCode::OK, "{root}");
    assert_eq!(root["type"], "apiRoot");
    assert_eq!(root["baseType"], "apiRoot");
    let base = sim.base_url();
    assert_eq!(root["links"]["self"], format!("{base}/v3"));
    assert_eq!(root["links"]["root"], format!("{base}/v3"));
    assert_eq!(
        root["links"]["globalRoleBindings"],
        format!("{base}/v3/globalrolebindings")
    );
    let links = root["links"].as_object().unwrap();
    assert!(links.len() > 10, "{root}");
    for (name, url) in links {
        if name == "self" || name == "root" {
            continue;
        }
        let path = url.as_str().unwrap().trim_start_matches(&base).to_string();
        let (status, list) = admin_get(&sim, &path).await;
        assert_eq!(status, StatusCode::OK, "{name}: {list}");
        assert_eq!(list["type"], "collection", "{name}");
    }
}

#[tokio::test]
async fn steve_blocks_user_writes_until_users_join_the_allow_list_in_2_13() {
    // rancher/rancher pkg/api/steve/disallow/disallow.go: `users` joined `AllowAll` with the user public API (2.13).
    for (version, blocked) in [(RancherVersion::V2_12, true), (RancherVersion::V2_13, false)] {
        let sim = start(version).await;
        let (status, user) = admin_get(&sim, "/v1/schemas/management.cattle.io.user").await;
        assert_eq!(status, StatusCode::OK, "{version:?}: {user}");
        let methods = sorted(&user["resourceMethods"]);
        assert_eq!(
            methods.contains(&"blocked-PUT".to_string()),
            blocked,
            "{version:?}: {methods:?}"
        );
        assert_eq!(
            methods.contains(&"PUT".to_string()),
            !blocked,
            "{version:?}: {methods:?}"
        );
    }
}
