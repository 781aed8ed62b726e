//! Rancher 1.6 access control (spec/001): provider discovery, token creation, configs with access modes,
//! identities and accounts.

mod common;

use common::*;
use rancher_sim::{RancherVersion, SimConfig, Simulator, DEFAULT_PASSWORD};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn legacy_access_control_flow() {
    let sim = start(RancherVersion::V1_6).await;
    let admin = sim.tokens().admin.clone();
    // Local auth is on.
    let (st, v) = call(&sim, Method::GET, "/v1/token", None, None).await;
    assert_eq!(st, 200);
    assert_eq!(v["data"][0]["security"], true);
    // Log in with user:password.
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1/token",
        None,
        Some(json!({"code": format!("admin:{DEFAULT_PASSWORD}")})),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(v["jwt"].as_str().unwrap().len(), 40);
    assert_eq!(v["userType"], "admin");
    assert_eq!(
        call(
            &sim,
            Method::POST,
            "/v1/token",
            None,
            Some(json!({"code": "admin:wrong"}))
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(&sim, Method::POST, "/v1/token", None, Some(json!({"code": "nocolon"})))
            .await
            .0,
        403
    );
    // Errors have the 1.x shape.
    let (st, v) = call(&sim, Method::GET, "/v1/ldapconfig", None, None).await;
    assert_eq!(st, 401);
    assert_eq!(v["code"], "Unauthorized");
    assert_eq!(v["status"], 401);
    assert!(v.get("detail").is_some());
    assert_eq!(
        call(
            &sim,
            Method::GET,
            "/v1/ldapconfig",
            Some(&sim.tokens().expired.clone()),
            None
        )
        .await
        .0,
        401
    );
    // Safe enable of LDAP (AD): save disabled, test a token, then enable; the secret is never returned.
    let cfg = json!({"enabled": false, "accessMode": "restricted", "server": "ad.example.com", "serviceAccountUsername": "svc",
                     "serviceAccountPassword": "s3cret", "allowedIdentities": [{"externalIdType": "ldap_user", "externalId": "CN=John Doe,OU=Users,DC=example,DC=com"}]});
    let (st, v) = call(&sim, Method::POST, "/v1/ldapconfig", Some(&admin), Some(cfg)).await;
    assert_eq!(st, 201);
    assert_eq!(v["serviceAccountPassword"], json!(null));
    // Still on local auth: enabling another provider must wait until local is off.
    let (st, _) = call(
        &sim,
        Method::POST,
        "/v1/ldapconfig",
        Some(&admin),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(st, 422);
    assert_eq!(
        call(
            &sim,
            Method::POST,
            "/v1/localauthconfig",
            Some(&admin),
            Some(json!({"enabled": false}))
        )
        .await
        .0,
        201
    );
    // Test logins against the configured (disabled) provider: restricted = allowed or environment member.
    assert_eq!(
        call(
            &sim,
            Method::POST,
            "/v1/token",
            None,
            Some(json!({"code": "jdoe:jdoe-password"}))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        call(
            &sim,
            Method::POST,
            "/v1/token",
            None,
            Some(json!({"code": "asmith:asmith-password"}))
        )
        .await
        .0,
        201,
        "member"
    );
    assert_eq!(
        call(
            &sim,
            Method::POST,
            "/v1/token",
            None,
            Some(json!({"code": "mlee:mlee-password"}))
        )
        .await
        .0,
        403
    );
    // Required: only allowed identities, members too.
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1/ldapconfig",
        Some(&admin),
        Some(json!({"enabled": true, "accessMode": "required", "serviceAccountPassword": null})),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(v["server"], "ad.example.com");
    assert_eq!(
        call(
            &sim,
            Method::POST,
            "/v1/token",
            None,
            Some(json!({"code": "asmith:asmith-password"}))
        )
        .await
        .0,
        403
    );
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1/token",
        None,
        Some(json!({"code": "jdoe:jdoe-password"})),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(v["authProvider"], "ldapconfig");
    let jdoe = v["jwt"].as_str().unwrap().to_string();
    let (_, v) = call(&sim, Method::GET, "/v1/token", None, None).await;
    assert_eq!(v["data"][0]["authProvider"], "ldapconfig");
    // Identities: own (user + groups) and search.
    let (st, v) = call(&sim, Method::GET, "/v1/identities", Some(&jdoe), None).await;
    assert_eq!(st, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    let (_, v) = call(&sim, Method::GET, "/v1/identities?name=eng", Some(&jdoe), None).await;
    assert_eq!(v["data"][0]["externalIdType"], "ldap_group");
    // Accounts by kind (admin only sees all).
    let (_, v) = call(&sim, Method::GET, "/v1/accounts?kind=admin", Some(&admin), None).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    // Unsupported modes are refused per provider.
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1/azureadconfig",
        Some(&admin),
        Some(json!({"accessMode": "restricted"})),
    )
    .await;
    assert_eq!(st, 422);
    assert_eq!(v["code"], "InvalidOption");
    // The version setting and the version header; accounts by external identity.
    let (st, v) = call(
        &sim,
        Method::GET,
        "/v1/settings/rancher.server.version",
        Some(&jdoe),
        None,
    )
    .await;
    assert_eq!((st.as_u16(), v["value"].as_str()), (200, Some("v1.6.30")));
    let (_, v) = call(
        &sim,
        Method::GET,
        "/v1/accounts?externalIdType=ldap_user&externalId=CN%3DJohn%20Doe%2COU%3DUsers%2CDC%3Dexample%2CDC%3Dcom",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test]
async fn github_refuses_a_bad_oauth_code_with_code_invalid() {
    let sim = Simulator::start(SimConfig::default().rancher_version(RancherVersion::V1_6).seed(3))
        .await
        .unwrap();
    let admin = sim.tokens().admin.clone();
    assert_eq!(
        call(
            &sim,
            Method::POST,
            "/v1/localauthconfig",
            Some(&admin),
            Some(json!({"enabled": false}))
        )
        .await
        .0,
        201
    );
    // 1.2+: GitHub is saved through the auth service (rancher/rancher-auth-service service/routes.go).
    let github = json!({"provider": "githubconfig", "enabled": false, "githubConfig": {"clientId": "abc"}});
    assert_eq!(
        call(&sim, Method::POST, "/v1-auth/config", Some(&admin), Some(github))
            .await
            .0,
        200
    );
    for code in ["not-a-real-code", "octocat:wrong"] {
        let (st, v) = call(&sim, Method::POST, "/v1/token", None, Some(json!({"code": code}))).await;
        assert_eq!((st.as_u16(), v["code"].as_str()), (400, Some("codeInvalid")), "{code}");
    }
    let (st, v) = call(
        &sim,
        Method::POST,
        "/v1/token",
        None,
        Some(json!({"code": "octocat:octocat-password"})),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(
        v["userType"], "admin",
        "while access control is off, the identity that proves a provider takes over the admin account"
    );
}
