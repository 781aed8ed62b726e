//! The connection test end to end: against rancher-sim over real HTTPS for success and the token and
//! permission diagnoses; against purpose-built loopback servers for the network, TLS and "not Rancher" ones.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rancher_auth::{Access, CaSource, Cause, Connection, Diagnosis, KnownToken, Verification, Warning};
use rancher_sim::{testing, Faults, RancherVersion, SimConfig, Simulator};
use support::{conn, https_server};

fn ext_token(ttl_ms: i64) -> serde_json::Value {
    // rancher-api's endpoint list marks `status` required on create (it is server-written): send an empty one.
    serde_json::json!({"apiVersion": "ext.cattle.io/v1", "kind": "Token", "metadata": {"generateName": "token-"},
                       "spec": {"ttl": ttl_ms, "description": "rancher-auth test"}, "status": {}})
}

async fn fails(c: &Connection) -> Diagnosis {
    match c.verify().await {
        Ok(v) => panic!("expected a diagnosis, got {v:?}"),
        Err(d) => d,
    }
}

fn assert_cause(d: &Diagnosis, cause: Cause, summary: &str, remedy: &str) {
    assert_eq!(d.cause, cause, "{}", d.explain());
    assert!(d.summary.contains(summary), "summary {:?} lacks {summary:?}", d.summary);
    assert!(d.remedy.contains(remedy), "remedy {:?} lacks {remedy:?}", d.remedy);
}

#[tokio::test]
async fn admin_token_reports_identity_version_expiry_and_permissions() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let v: Verification = conn(&sim.domain(), &sim.tokens().admin, Some(&sim.ca_pem()))
        .verify()
        .await
        .unwrap();
    assert_eq!(v.identity.username.as_deref(), Some("admin"));
    assert_eq!(v.identity.user_id, sim.users().admin.id);
    assert_eq!(v.rancher_version.as_deref(), Some("v2.13.1"));
    let info = v.token_info.as_ref().expect("token info");
    assert_eq!(info.access_key, sim.tokens().admin.split(':').next().unwrap());
    assert_eq!(info.expires_at, None);
    assert!(!info.is_cluster_scoped());
    assert!(v.warnings.contains(&Warning::NeverExpires), "{:?}", v.warnings);
    assert!(v.users_listed >= 5, "{}", v.users_listed);
    assert!(v.permissions.global_roles.contains(&"admin".to_string()));
    assert_eq!(v.permissions.list_users, Access::Allowed);
    assert_eq!(v.permissions.create_global_role_bindings, Access::Allowed);
    assert_eq!(v.permissions.delete_global_role_bindings, Access::Allowed);
    let text = v.summary_lines().join("\n");
    assert!(
        text.contains("user:     admin") && text.contains("Rancher v2.13.1") && text.contains("expires: never"),
        "{text}"
    );
    // Nothing was changed on the server.
    assert_eq!(sim.write_counts().iter().map(|(_, n)| n).sum::<u64>(), 0);
}

#[tokio::test]
async fn norman_only_server_is_tested_through_v3() {
    let sim = Simulator::start(SimConfig::default().rancher_version(RancherVersion::V2_8))
        .await
        .unwrap();
    let v = conn(&sim.domain(), &sim.tokens().approver, Some(&sim.ca_pem()))
        .verify()
        .await
        .unwrap();
    assert_eq!(v.identity.username.as_deref(), Some("approver"));
    assert_eq!(v.rancher_version.as_deref(), Some("v2.8.5"));
    assert_eq!(v.permissions.list_users, Access::Allowed);
}

#[tokio::test]
async fn token_ending_within_seven_days_is_warned_about() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let admin = conn(&sim.domain(), &sim.tokens().admin, Some(&sim.ca_pem()))
        .client()
        .unwrap();
    // An ext token (2.12+): its expiry is read from the RK-API, not /v3.
    let created = admin
        .call("rk.tokens.create", &[], Some(ext_token(3 * 86_400_000)))
        .await
        .unwrap();
    let bearer = created
        .pointer("/status/bearerToken")
        .and_then(|b| b.as_str())
        .expect("bearer in the create answer");
    assert!(bearer.starts_with("ext/"));
    let v = conn(&sim.domain(), bearer, Some(&sim.ca_pem())).verify().await.unwrap();
    let at = v.token_info.as_ref().and_then(|i| i.expires_at).expect("an expiry");
    assert!(v.warnings.contains(&Warning::ExpiresSoon { at }), "{:?}", v.warnings);
    assert!(v.summary_lines().iter().any(|l| l.contains("less than 7 days")));
}

#[tokio::test]
async fn standard_user_cannot_list_users_on_rk_api() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let d = fails(&conn(&sim.domain(), &sim.tokens().user, Some(&sim.ca_pem()))).await;
    assert_cause(&d, Cause::CannotListUsers, "may not list users", "admin-level account");
    assert!(d.summary.contains("alice"), "{}", d.summary);
}

#[tokio::test]
async fn standard_user_cannot_list_users_decided_from_roles_on_v3() {
    // On /v3 a standard user's list is not refused, it only shows itself: the roles decide.
    let sim = Simulator::start(SimConfig::default().rancher_version(RancherVersion::V2_8))
        .await
        .unwrap();
    let d = fails(&conn(&sim.domain(), &sim.tokens().user, Some(&sim.ca_pem()))).await;
    assert_cause(&d, Cause::CannotListUsers, "may not list users", "admin-level account");
}

#[tokio::test]
async fn expired_token_is_rejected_with_the_likely_causes() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let c = conn(&sim.domain(), &sim.tokens().expired, Some(&sim.ca_pem()));
    let d = fails(&c).await;
    assert_cause(&d, Cause::TokenRejected, "rejected the token", "No Scope");
    assert!(d.summary.contains("is a Rancher server"), "{}", d.summary);
    let all = d.likely_causes.join("\n");
    assert!(
        all.contains("expired") && all.contains("deleted") && all.contains("cluster scope"),
        "{all}"
    );
    // When an earlier test saw its expiry, the cause is certain.
    let past = chrono::Utc::now() - chrono::Duration::days(1);
    let d = fails(&c.with_known_token(KnownToken {
        expires_at: Some(past),
        cluster_id: None,
    }))
    .await;
    assert_cause(&d, Cause::TokenExpired, "expired on", "create a new API key");
}

#[tokio::test]
async fn cluster_scoped_token_is_named_when_known() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let c = conn(&sim.domain(), &sim.tokens().cluster_scoped, Some(&sim.ca_pem()));
    let d = fails(&c).await;
    assert_cause(&d, Cause::TokenRejected, "401", "No Scope");
    let known = KnownToken {
        expires_at: None,
        cluster_id: Some(sim.users().downstream_cluster.clone()),
    };
    let d = fails(&c.with_known_token(known)).await;
    assert_cause(&d, Cause::ClusterScopedToken, "scoped to one cluster", "No Scope");
}

#[tokio::test]
async fn server_that_says_why_gets_the_exact_cause() {
    // Rancher 2.2-2.4 leaked the reason in the 401 body.
    let local = https_server(|path| match path {
        "/ping" => ("200 OK", "text/plain", "pong".into()),
        "/rancherversion" => ("200 OK", "application/json", r#"{"Version":"v2.4.2"}"#.into()),
        _ => (
            "401 Unauthorized",
            "application/json",
            r#"{"type":"error","status":"401","message":"clusterID does not match"}"#.into(),
        ),
    })
    .await;
    let d = fails(&conn(
        &local.domain(),
        "token-abcde:bcdfghjklmnpqrstvwxz2456789bcdfghjklmnpqrstvwxz2456789",
        Some(&local.ca_pem),
    ))
    .await;
    assert_cause(&d, Cause::ClusterScopedToken, "scoped to one cluster", "No Scope");
}

#[tokio::test]
async fn deleted_token_is_rejected() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let admin = conn(&sim.domain(), &sim.tokens().admin, Some(&sim.ca_pem()))
        .client()
        .unwrap();
    let created = admin
        .call("rk.tokens.create", &[], Some(ext_token(86_400_000)))
        .await
        .unwrap();
    let bearer = created
        .pointer("/status/bearerToken")
        .and_then(|b| b.as_str())
        .unwrap()
        .to_string();
    assert!(conn(&sim.domain(), &bearer, Some(&sim.ca_pem())).verify().await.is_ok());
    let name = bearer.trim_start_matches("ext/").split(':').next().unwrap();
    admin.call("rk.tokens.delete", &[("name", name)], None).await.unwrap();
    let d = fails(&conn(&sim.domain(), &bearer, Some(&sim.ca_pem()))).await;
    assert_cause(&d, Cause::TokenRejected, name, "create a new API key");
    assert!(d.likely_causes.iter().any(|c| c.contains("deleted")));
}

#[tokio::test]
async fn cut_token_is_suspected_from_its_length() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let admin = &sim.tokens().admin;
    let cut = &admin[..admin.len() - 10];
    let d = fails(&conn(&sim.domain(), cut, Some(&sim.ca_pem()))).await;
    assert_eq!(d.cause, Cause::TokenRejected);
    assert!(
        d.likely_causes[0].contains("not pasted in full"),
        "{:?}",
        d.likely_causes
    );
}

#[tokio::test]
async fn name_that_does_not_resolve() {
    let d = fails(&conn("rancher-auth-test.invalid", "token-abcde:secret", None)).await;
    assert_cause(&d, Cause::DnsFailure, "does not resolve", "Check the spelling");
}

#[tokio::test]
async fn connection_refused() {
    let port = support::closed_port().await;
    let d = fails(&conn(&format!("127.0.0.1:{port}"), "token-abcde:secret", None)).await;
    assert_cause(&d, Cause::ConnectionRefused, "refused the connection", "Check the port");
}

#[tokio::test]
async fn silent_server_times_out() {
    let local = support::silent_server().await;
    let c = conn(&local.domain(), "token-abcde:secret", None)
        .with_timeouts(Duration::from_millis(300), Duration::from_millis(600));
    let d = fails(&c).await;
    assert_cause(&d, Cause::TimedOut, "did not answer", "firewall");
}

#[tokio::test]
async fn untrusted_certificate_suggests_the_ca_option() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let other = testing::wrong_host_server().await.unwrap();
    // Another CA given: the server's certificate is not signed by it.
    let d = fails(&conn(&sim.domain(), &sim.tokens().admin, Some(&other.ca_pem))).await;
    assert_cause(&d, Cause::UntrustedCertificate, "not signed", "--ca-cert");
    // No CA given at all.
    let d = fails(&conn(&sim.domain(), &sim.tokens().admin, None)).await;
    assert_eq!(d.cause, Cause::UntrustedCertificate, "{}", d.explain());
    assert!(d.remedy.contains("/v3/settings/cacerts"), "{}", d.remedy);
}

#[tokio::test]
async fn certificate_for_another_host_name() {
    let bad = testing::wrong_host_server().await.unwrap();
    let d = fails(&conn(&bad.domain(), "token-abcde:secret", Some(&bad.ca_pem))).await;
    assert_cause(
        &d,
        Cause::WrongHostname,
        "not for `127.0.0.1`",
        "host name the certificate was issued for",
    );
}

#[tokio::test]
async fn expired_certificate() {
    let bad = testing::expired_cert_server().await.unwrap();
    let d = fails(&conn(&bad.domain(), "token-abcde:secret", Some(&bad.ca_pem))).await;
    assert_cause(&d, Cause::ExpiredCertificate, "has expired", "Renew");
}

#[tokio::test]
async fn plain_http_server() {
    // (rancher_sim::testing::plain_http_server waits for a full HTTP request head, which a TLS hello never
    // completes, so it times out instead; a real HTTP server answers at once, as this one does.)
    let bad = support::plain_http_server().await;
    let d = fails(&conn(&bad.domain(), "token-abcde:secret", None)).await;
    assert_cause(
        &d,
        Cause::NotHttps,
        "does not speak HTTPS",
        "plain HTTP are not supported",
    );
}

#[tokio::test]
async fn html_page_is_not_rancher() {
    let bad = testing::html_login_server().await.unwrap();
    let d = fails(&conn(&bad.domain(), "token-abcde:secret", Some(&bad.ca_pem))).await;
    assert_cause(&d, Cause::NotRancher, "an HTML page", "Rancher's own domain");
}

#[tokio::test]
async fn other_json_is_not_rancher() {
    let local = https_server(|_| ("200 OK", "application/json", r#"{"hello":"world"}"#.into())).await;
    let d = fails(&conn(&local.domain(), "token-abcde:secret", Some(&local.ca_pem))).await;
    assert_cause(&d, Cause::NotRancher, "not a Rancher API", "Rancher's own domain");
    // A server that answers /ping but not the API like Rancher.
    let local = https_server(|path| match path {
        "/ping" => ("200 OK", "text/plain", "pong".into()),
        _ => ("200 OK", "application/json", r#"{"items":[]}"#.into()),
    })
    .await;
    let d = fails(&conn(&local.domain(), "token-abcde:secret", Some(&local.ca_pem))).await;
    assert_cause(
        &d,
        Cause::NotRancher,
        "not a Rancher collection",
        "Rancher's own domain",
    );
    // 404 on /ping: something else listens there.
    let local = https_server(|_| ("404 Not Found", "text/plain", "404 page not found".into())).await;
    let d = fails(&conn(&local.domain(), "token-abcde:secret", Some(&local.ca_pem))).await;
    assert_eq!(d.cause, Cause::NotRancher, "{}", d.explain());
}

#[tokio::test]
async fn server_error() {
    let sim = Simulator::start(SimConfig::default().faults(Faults {
        rate_500: 1.0,
        ..Faults::default()
    }))
    .await
    .unwrap();
    let d = fails(&conn(&sim.domain(), &sim.tokens().admin, Some(&sim.ca_pem()))).await;
    assert_cause(&d, Cause::ServerError, "HTTP 500", "check its health");
    // No retries: one request only.
    assert_eq!(sim.request_log().len(), 1);
}

#[tokio::test]
async fn unusable_ca_bundle() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let c = conn(&sim.domain(), &sim.tokens().admin, None).with_ca(Some(CaSource::Pem("not a certificate".into())));
    let d = fails(&c).await;
    assert_eq!(d.cause, Cause::InvalidCaBundle, "{}", d.explain());
    let c = conn(&sim.domain(), &sim.tokens().admin, None).with_ca(Some(CaSource::File("/nonexistent/ca.pem".into())));
    assert_eq!(fails(&c).await.cause, Cause::InvalidCaBundle);
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_secret_appears_in_no_log_debug_display_or_error() {
    let buf = Buffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let mut seen = String::new();
    let mut secrets = Vec::new();
    for token in [
        &sim.tokens().admin,
        &sim.tokens().user,
        &sim.tokens().expired,
        &sim.tokens().cluster_scoped,
    ] {
        secrets.push(token.split(':').nth(1).unwrap().to_string());
        let c = conn(&sim.domain(), token, Some(&sim.ca_pem()));
        seen.push_str(&format!("{c:?}\n{:?}\n{}\n", c.token(), c.token()));
        match c.verify().await {
            Ok(v) => seen.push_str(&format!(
                "{v:?}\n{}\n{}\n",
                v.summary_lines().join("\n"),
                serde_json::to_string(&v).unwrap()
            )),
            Err(d) => seen.push_str(&format!(
                "{d:?}\n{d}\n{}\n{}\n",
                d.explain(),
                rancher_auth::Error::from(d.clone())
            )),
        }
    }
    // Parse errors too.
    for bad in [
        format!("Bearer {}", sim.tokens().admin),
        format!("\"{}\"", sim.tokens().admin),
        secrets[0].clone(),
    ] {
        let e = rancher_auth::BearerToken::parse(&bad).unwrap_err();
        seen.push_str(&format!("{e:?}\n{e}\n"));
    }
    tracing::info!("end of capture");
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("testing the connection") && logs.contains("end of capture"),
        "the capture works: {logs}"
    );
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
        assert!(!seen.contains(secret.as_str()), "a secret is in Debug/Display/errors");
    }
}
