//! Profiles on disk: save (tested first), edit with blank fields, re-test on domain change, file permissions,
//! broken files and crash-safe writes.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use rancher_auth::{BearerToken, CaSource, Cause, Connection, Error, InstanceDomain, ProfileStore, ProfileUpdate};
use rancher_sim::{SimConfig, SimHandle, Simulator};

fn update(domain: Option<&str>, token: Option<&str>, ca: Option<&str>) -> ProfileUpdate {
    ProfileUpdate {
        domain: domain.map(|d| InstanceDomain::parse(d).unwrap()),
        token: token.map(|t| BearerToken::parse(t).unwrap()),
        ca: ca.map(|c| CaSource::Pem(c.to_string())),
        ..Default::default()
    }
}

async fn setup() -> (SimHandle, tempfile::TempDir, ProfileStore) {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::open(Some(dir.path().join("profiles"))).unwrap();
    (sim, dir, store)
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn save_tests_first_and_stores_the_token_for_its_owner_only() {
    let (sim, _dir, store) = setup().await;
    let admin = &sim.tokens().admin;
    let saved = store
        .save("prod", update(Some(&sim.domain()), Some(admin), Some(&sim.ca_pem())))
        .await
        .unwrap();
    assert!(saved.created);
    assert_eq!(
        saved.verification.as_ref().unwrap().identity.username.as_deref(),
        Some("admin")
    );
    assert_eq!(mode(store.dir()), 0o700);
    assert_eq!(mode(&store.dir().join("prod.token")), 0o600);
    assert_eq!(mode(&store.dir().join("prod.json")), 0o600);
    let json = std::fs::read_to_string(store.dir().join("prod.json")).unwrap();
    let secret = admin.split(':').nth(1).unwrap();
    assert!(!json.contains(secret), "the profile file holds no secret");

    let shown = store.show("prod").unwrap();
    assert_eq!(shown.data.domain.to_string(), sim.domain());
    assert_eq!(shown.data.token_masked, format!("****{}", &admin[admin.len() - 4..]));
    assert_eq!(shown.data.access_key, admin.split(':').next().unwrap());
    assert_eq!(shown.data.user.as_deref(), Some("admin"));
    assert_eq!(shown.data.rancher_version.as_deref(), Some("v2.13.1"));
    assert!(!format!("{shown:?}").contains(secret));
    assert_eq!(store.names().unwrap(), vec!["prod".to_string()]);
    assert!(store
        .token("prod")
        .unwrap()
        .same_as(&BearerToken::parse(admin).unwrap()));

    // The stored profile connects, and `check` re-tests it.
    let v = store.check("prod").await.unwrap();
    assert_eq!(v.identity.username.as_deref(), Some("admin"));
    store.delete("prod").unwrap();
    assert!(store.names().unwrap().is_empty());
    assert!(!store.dir().join("prod.token").exists());
    assert!(matches!(store.show("prod"), Err(Error::ProfileNotFound { .. })));
}

#[tokio::test]
async fn failed_test_saves_nothing() {
    let (sim, _dir, store) = setup().await;
    let err = store
        .save(
            "p",
            update(Some(&sim.domain()), Some(&sim.tokens().user), Some(&sim.ca_pem())),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.diagnosis().map(|d| d.cause.clone()),
        Some(Cause::CannotListUsers),
        "{err}"
    );
    assert!(err.to_string().contains("admin-level"), "{err}");
    assert!(store.names().unwrap().is_empty());
    assert!(!store.dir().join("p.token").exists());
    // A new profile needs both fields.
    let err = store
        .save("p", update(Some(&sim.domain()), None, None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MissingField { .. }), "{err}");
}

#[tokio::test]
async fn blank_fields_keep_the_stored_values() {
    let (sim, _dir, store) = setup().await;
    store
        .save(
            "p",
            update(Some(&sim.domain()), Some(&sim.tokens().admin), Some(&sim.ca_pem())),
        )
        .await
        .unwrap();

    // Nothing changed: no test runs, nothing is rewritten.
    let tests = AtomicUsize::new(0);
    let count = |c: Connection| {
        tests.fetch_add(1, Ordering::SeqCst);
        async move { c.verify().await }
    };
    let saved = store.save_with("p", ProfileUpdate::default(), count).await.unwrap();
    assert!(!saved.created && saved.verification.is_none());
    assert_eq!(tests.load(Ordering::SeqCst), 0);

    // A new token with a blank domain: the domain is kept, the token is tested and replaced.
    let approver = &sim.tokens().approver;
    let saved = store
        .save_with("p", update(None, Some(approver), None), count)
        .await
        .unwrap();
    assert_eq!(tests.load(Ordering::SeqCst), 1);
    assert_eq!(saved.profile.data.domain.to_string(), sim.domain());
    assert!(saved.profile.data.ca.is_some(), "the CA is kept too");
    assert_eq!(
        saved.verification.unwrap().identity.username.as_deref(),
        Some("approver")
    );
    assert!(store
        .token("p")
        .unwrap()
        .same_as(&BearerToken::parse(approver).unwrap()));
}

#[tokio::test]
async fn a_domain_change_is_tested_before_it_is_saved() {
    let (sim, _dir, store) = setup().await;
    store
        .save(
            "p",
            update(Some(&sim.domain()), Some(&sim.tokens().admin), Some(&sim.ca_pem())),
        )
        .await
        .unwrap();
    let before = std::fs::read(store.dir().join("p.json")).unwrap();

    // A new domain with the token left blank: the stored token goes only to its own domain, so this is refused
    // before anything is sent (security review item 8).
    let port = support::closed_port().await;
    let err = store
        .save("p", update(Some(&format!("127.0.0.1:{port}")), None, None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DomainChangeWithoutToken { .. }), "{err}");
    assert!(err.to_string().contains("needs its token again"), "{err}");

    // A typo in the domain: the spec's connector would save it untested; we refuse.
    let err = store
        .save(
            "p",
            update(Some(&format!("127.0.0.1:{port}")), Some(&sim.tokens().admin), None),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.diagnosis().map(|d| d.cause.clone()),
        Some(Cause::ConnectionRefused),
        "{err}"
    );
    assert_eq!(
        std::fs::read(store.dir().join("p.json")).unwrap(),
        before,
        "the stored profile is untouched"
    );

    // The same server under another spelling (localhost is in the simulator's certificate) is tested and saved.
    let other = format!("localhost:{}", sim.port());
    let saved = store
        .save("p", update(Some(&other), Some(&sim.tokens().admin), None))
        .await
        .unwrap();
    assert!(saved.verification.is_some());
    assert_eq!(store.show("p").unwrap().data.domain.to_string(), other);
}

#[tokio::test]
async fn a_token_file_others_can_read_is_refused_with_the_fix() {
    let (sim, _dir, store) = setup().await;
    store
        .save(
            "p",
            update(Some(&sim.domain()), Some(&sim.tokens().admin), Some(&sim.ca_pem())),
        )
        .await
        .unwrap();
    let token = store.dir().join("p.token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = store.connection("p").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InsecureTokenFile { .. }), "{err}");
    assert!(
        text.contains(&format!("chmod 600 {}", token.display())) && text.contains("group and others"),
        "{text}"
    );
    // Editing with a blank token needs the stored one: refused the same way.
    assert!(matches!(
        store.save("p", update(None, None, None)).await,
        Err(Error::InsecureTokenFile { .. })
    ));
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(store.token("p").unwrap_err().to_string().contains("its group"));
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(store.connection("p").is_ok());
}

#[test]
fn truncated_or_wrong_typed_profiles_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::open(Some(dir.path().to_path_buf())).unwrap();
    let good = r#"{"version":1,"domain":"rancher.example.com","access_key":"token-abcde","token_masked":"****wxyz"}"#;
    std::fs::write(dir.path().join("ok.json"), good).unwrap();
    assert_eq!(store.show("ok").unwrap().data.domain.to_string(), "rancher.example.com");

    std::fs::write(dir.path().join("cut.json"), &good[..good.len() / 2]).unwrap();
    let err = store.show("cut").unwrap_err().to_string();
    assert!(err.contains("cut.json") && err.contains("truncated"), "{err}");

    std::fs::write(
        dir.path().join("typed.json"),
        r#"{"version":"one","domain":"rancher.example.com","access_key":"x","token_masked":"y"}"#,
    )
    .unwrap();
    let err = store.show("typed").unwrap_err().to_string();
    assert!(err.contains("typed.json") && err.contains("invalid type"), "{err}");

    std::fs::write(
        dir.path().join("url.json"),
        r#"{"version":1,"domain":"https://x.example/","access_key":"x","token_masked":"y"}"#,
    )
    .unwrap();
    let err = store.show("url").unwrap_err().to_string();
    assert!(err.contains("url.json") && err.contains("full URL"), "{err}");

    std::fs::write(dir.path().join("empty.json"), "").unwrap();
    assert!(matches!(store.show("empty"), Err(Error::CorruptProfile { .. })));
    // Listing reports the first broken file rather than hiding it.
    assert!(matches!(store.list(), Err(Error::CorruptProfile { .. })));
    // Names that would escape the directory are refused.
    assert!(matches!(
        store.show("../etc/passwd"),
        Err(Error::InvalidProfileName { .. })
    ));
}

#[tokio::test]
async fn writes_are_atomic_a_crash_leaves_the_old_profile_whole() {
    let (sim, _dir, store) = setup().await;
    store
        .save(
            "p",
            update(Some(&sim.domain()), Some(&sim.tokens().admin), Some(&sim.ca_pem())),
        )
        .await
        .unwrap();
    let before = store.show("p").unwrap();
    // A crash mid-write leaves only a temporary file beside the profile; the profile itself is whole.
    std::fs::write(store.dir().join(".tmp-crashed"), b"{\"version\":1,\"dom").unwrap();
    assert_eq!(store.names().unwrap(), vec!["p".to_string()]);
    assert_eq!(store.show("p").unwrap(), before);
    // The next save replaces the file in one rename and leaves no temporary file of its own.
    store
        .save("p", update(None, Some(&sim.tokens().approver), None))
        .await
        .unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".tmp-") && n != ".tmp-crashed")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(mode(&store.dir().join("p.token")), 0o600);
}
