//! Self-hosted Rancher often serves a certificate made with `openssl req -x509`: self-signed with `CA:TRUE`. curl,
//! kubectl and the Python clients accept it when it is given as the CA; rustls refuses a CA certificate as a server
//! certificate (webpki `CaUsedAsEndEntity`). We accept it when it is byte-identical to a certificate the user gave
//! with --ca-cert (host name and validity still checked), and name the real cause of every other refusal.
//! The certificates are made here with rcgen (no openssl needed).

use std::time::Duration;

use rancher_access_tests::cli::{command, Run};
use rancher_api::{Client, ConnectFailure, Error};
use rancher_auth::{BearerToken, CaSource, Cause, Connection, InstanceDomain};
use rancher_sim::testing;
use rancher_sim::{RancherVersion, SimConfig, Simulator};

const TOKEN: &str = "token-abcde:tlstlstlstlstlstlstlstlstlstlstlstlstlstlstlstlstlstls";

async fn connect_error(domain: &str, ca: Option<&str>) -> Error {
    let mut b = Client::builder(domain.to_string())
        .token(rancher_api::SecretString::from(TOKEN.to_string()))
        .connect_timeout(Duration::from_secs(5));
    if let Some(ca) = ca {
        b = b.ca_pem(ca.as_bytes().to_vec()).without_system_roots();
    }
    b.build()
        .expect("client")
        .call("v3.users.list", &[], None)
        .await
        .unwrap_err()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openssl_style_certificate_given_as_the_ca_is_accepted_end_to_end() {
    let sim = Simulator::start(
        SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .seed(7)
            .openssl_style_certificate(true),
    )
    .await
    .expect("simulator starts");
    let pem = sim.ca_pem();
    // The server's certificate is the CA certificate itself.
    let conn = Connection::new(
        InstanceDomain::parse(&sim.domain()).expect("domain"),
        BearerToken::parse(&sim.tokens().admin).expect("token"),
    )
    .with_ca(Some(CaSource::Pem(pem.clone())));
    let v = conn.verify().await.expect("accepted when given with --ca-cert");
    assert_eq!(v.identity.username.as_deref(), Some("admin"));

    // rancherctl check with the same certificate as RANCHER_CA_CERT: works.
    let dir = tempfile::tempdir().expect("dir");
    let ca_path = dir.path().join("server.pem");
    std::fs::write(&ca_path, &pem).expect("write");
    let env = vec![
        ("RANCHER_DOMAIN", sim.domain()),
        ("RANCHER_TOKEN", sim.tokens().admin.clone()),
        ("RANCHER_CA_CERT", ca_path.display().to_string()),
        ("RANCHERCTL_CONFIG_DIR", dir.path().join("config").display().to_string()),
        ("RANCHERCTL_STATE_DIR", dir.path().join("state").display().to_string()),
    ];
    let run = tokio::task::spawn_blocking(move || {
        Run::from_output(command(&["check"], &env).output().expect("rancherctl runs"))
    })
    .await
    .expect("joined");
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[tokio::test]
async fn other_certificate_failures_name_their_cause() {
    // An openssl-style certificate the user did not give: untrusted, and the words say it is a CA certificate.
    let server = testing::openssl_style_server(&["127.0.0.1"], false)
        .await
        .expect("server");
    let other = testing::openssl_style_server(&["127.0.0.1"], false)
        .await
        .expect("server");
    let e = connect_error(&server.domain(), Some(&other.ca_pem)).await;
    match &e {
        Error::Connect { failure, .. } => assert_eq!(failure, &ConnectFailure::CaCertificateAsServer, "{e}"),
        other => panic!("not a connect failure: {other:?}"),
    }
    let conn = Connection::new(
        InstanceDomain::parse(&server.domain()).expect("domain"),
        BearerToken::parse(TOKEN).expect("token"),
    )
    .with_ca(Some(CaSource::Pem(other.ca_pem.clone())));
    let d = conn.verify().await.expect_err("refused");
    assert_eq!(d.cause, Cause::UntrustedCertificate, "{d}");
    let text = d.to_string();
    assert!(
        text.contains("CA certificate") && text.contains("--ca-cert") && !text.contains("Rancher itself"),
        "{text}"
    );

    // The right certificate, but for another host name: the name is still checked.
    let wrong_name = testing::openssl_style_server(&["rancher.example.com"], false)
        .await
        .expect("server");
    let e = connect_error(&wrong_name.domain(), Some(&wrong_name.ca_pem)).await;
    assert!(
        matches!(
            &e,
            Error::Connect {
                failure: ConnectFailure::WrongHostname,
                ..
            }
        ),
        "{e}"
    );

    // The right certificate, but expired: validity is still checked.
    let expired = testing::openssl_style_server(&["127.0.0.1"], true)
        .await
        .expect("server");
    let e = connect_error(&expired.domain(), Some(&expired.ca_pem)).await;
    assert!(
        matches!(
            &e,
            Error::Connect {
                failure: ConnectFailure::ExpiredCertificate,
                ..
            }
        ),
        "{e}"
    );

    // Not given at all: untrusted, with the cause named.
    let e = connect_error(&server.domain(), None).await;
    assert!(
        matches!(
            &e,
            Error::Connect {
                failure: ConnectFailure::UntrustedCertificate | ConnectFailure::CaCertificateAsServer,
                ..
            }
        ),
        "{e}"
    );
}
