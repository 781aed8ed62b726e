//! Rancher-shaped answers (tests/fixtures/*.json, written from Rancher's Go types; each says so in `_comment`, none is
//! a capture) parsed with the generated types. Every field a type names must land in that field, and nothing may be
//! lost: the parsed value serializes back to the fixture (nulls aside, which the types render as absent).

use rancher_api::types::{GlobalRole, UserAttribute, V3ActiveDirectoryConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        v["_comment"].as_str().is_some_and(|c| c.starts_with("Not a capture.")),
        "{name} says it is not a capture"
    );
    v
}

/// Drops null members (an absent optional field and a null one mean the same to these types).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), without_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Parses `name` as `T` and checks the round trip loses nothing.
fn parse<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let raw = fixture(name);
    let parsed: T = serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let back = serde_json::to_value(&parsed).expect("serializes");
    assert_eq!(
        without_nulls(&back),
        without_nulls(&raw),
        "{name}: the round trip changed the document"
    );
    parsed
}

#[test]
fn user_attribute_keeps_group_principals_per_provider() {
    let ua: UserAttribute = parse("userattribute-rk.json");
    assert_eq!(ua.kind.as_deref(), Some("UserAttribute"));
    assert_eq!(ua.user_name.as_deref(), Some("u-7xk2q"));
    let groups = ua.group_principals.as_ref().expect("GroupPrincipals is a typed field");
    let ad = groups["activedirectory"].items.as_ref().expect("Items");
    let names: Vec<&str> = ad.iter().filter_map(|p| p["metadata"]["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "activedirectory_group://CN=Platform Admins,OU=Groups,DC=corp,DC=example,DC=com",
            "activedirectory_group://CN=Engineering,OU=Groups,DC=corp,DC=example,DC=com",
        ]
    );
    assert!(groups["local"].items.is_none(), "a provider with null Items");
    assert_eq!(ua.last_refresh.as_deref(), Some("2026-12-01T06:00:12Z"));
    assert_eq!(ua.needs_refresh, Some(false));
    assert_eq!(ua.last_login.as_deref(), Some("2026-12-01T05:59:58Z"));
    assert_eq!(ua.disable_after.as_deref(), Some("720h0m0s"));
    assert_eq!(ua.delete_after.as_deref(), Some("2160h0m0s"));
    assert!(ua.extra_by_provider.is_some());
    let extra: Vec<&String> = ua.extra.keys().collect();
    assert_eq!(extra, ["_comment"], "every Rancher field is a typed one");
}

#[test]
fn global_role_keeps_inherited_cluster_roles_and_its_status() {
    let gr: GlobalRole = parse("globalrole-inherited-cluster-roles.json");
    assert_eq!(
        gr.inherited_cluster_roles.as_deref(),
        Some(&["cluster-owner".to_string()][..])
    );
    assert_eq!(gr.display_name.as_deref(), Some("Fleet operators"));
    assert_eq!(gr.new_user_default, Some(false));
    assert_eq!(gr.rules.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        gr.namespaced_rules.as_ref().map(|m| m.contains_key("fleet-default")),
        Some(true)
    );
    let fleet = gr.inherited_fleet_workspace_permissions.as_ref().expect("typed");
    assert_eq!(
        fleet.workspace_verbs.as_deref(),
        Some(&["get".to_string(), "list".to_string()][..])
    );
    let status = serde_json::to_value(gr.status.as_ref().expect("status")).unwrap();
    assert_eq!(status["summary"], "Completed");
    assert_eq!(status["conditions"][0]["type"], "ClusterRolesReconciled");
    let extra: Vec<&String> = gr.extra.keys().collect();
    assert_eq!(extra, ["_comment"], "every Rancher field is a typed one");
}

#[test]
fn disabled_active_directory_config_shows_the_reset_and_the_lock() {
    let ad: V3ActiveDirectoryConfig = parse("activedirectoryconfig-disabled.json");
    assert_eq!(ad.enabled, Some(false));
    assert_eq!(ad.base_type.as_deref(), Some("authConfig"));
    assert!(ad.servers.is_none(), "the reset removed the servers");
    assert!(ad.service_account_username.is_none());
    assert!(
        ad.access_mode.is_none(),
        "accessMode has no default, so it is gone after the reset"
    );
    assert_eq!(ad.port, Some(389), "norman fills the schema default");
    assert_eq!(ad.connection_timeout, Some(5000));
    assert_eq!(ad.user_search_attribute.as_deref(), Some("sAMAccountName|sn|givenName"));
    assert_eq!(ad.group_dn_attribute.as_deref(), Some("distinguishedName"));
    assert_eq!(ad.nested_group_membership_enabled, Some(false));
    assert_eq!(
        ad.annotations
            .as_ref()
            .and_then(|a| a.get("management.cattle.io/auth-provider-cleanup"))
            .map(String::as_str),
        Some("rancher-locked")
    );
    let actions: Vec<&String> = ad.actions.as_ref().expect("actions").keys().collect();
    assert_eq!(actions, ["testAndApply"], "no disable on a disabled provider");
    let extra: Vec<&String> = ad.extra.keys().collect();
    assert_eq!(extra, ["_comment"], "every Rancher field is a typed one");
}
