//! The approver's web page over real HTTP(S), driven like a browser without JavaScript: sign-in (token and
//! Rancher's local login), CSRF on every form, buttons only for people who may decide, HTML escaping of what
//! requesters wrote, and the cookie's flags.

use std::sync::Arc;

use rancher_access_tests::server::{self, Api, Browser};
use rancher_approval::MemoryStore;
use rancher_sim::RancherVersion;

const XSS: &str = "<script>alert('owned')</script> & \"quotes\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_signs_in_sees_the_escaped_request_and_approves_it() {
    let (sim, srv, id) = server::with_pending_request(XSS).await;
    let mut b = Browser::new(srv.url(), None);
    let first = b.get("/").await;
    assert_eq!((first.status, first.location.as_deref()), (303, Some("/login")));
    b.sign_in_with_token(&sim.tokens().admin).await;
    let session_cookie = b
        .last_set_cookie
        .iter()
        .find(|c| c.starts_with("ra_session="))
        .cloned()
        .expect("session cookie");
    assert!(
        session_cookie.contains("HttpOnly")
            && session_cookie.contains("SameSite=Strict")
            && session_cookie.contains("Max-Age="),
        "{session_cookie}"
    );
    assert!(
        !session_cookie.contains("Secure"),
        "plain HTTP on loopback: no Secure flag"
    );
    assert!(!session_cookie.contains(rancher_access_tests::cli::secret_of(&sim.tokens().admin)));

    let list = b.get("/").await;
    assert_eq!(list.status, 200);
    assert!(list.html.contains("Signed in as admin"), "{}", list.html);
    assert!(list.html.contains(&id), "the pending request is listed");
    assert!(!list.html.contains("<script>alert"), "the reason is escaped");
    assert!(list.html.contains("&lt;script&gt;"), "{}", list.html);
    assert!(list.html.contains("(you)"), "the admin may approve: {}", list.html);

    let page = b.get(&format!("/requests/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("id=\"approve\"") && page.html.contains("id=\"deny\""));
    assert!(!page.html.contains("<script>alert"));
    let csrf = page.csrf();
    let done = b
        .post(
            &format!("/requests/{id}/decide"),
            &[
                ("csrf", &csrf),
                ("vote", "approve"),
                ("reason", "<b>ok</b>"),
                ("reviewed", &page.reviewed()),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    let after = b.get(done.location.as_deref().unwrap()).await;
    assert!(
        after.html.contains("The service ran it once: it succeeded."),
        "{}",
        after.html
    );
    assert!(after.html.contains("id=\"state\">succeeded"), "{}", after.html);
    assert!(after.html.contains("&lt;b&gt;ok&lt;"), "the decision reason is escaped");
    assert!(!after.html.contains("id=\"approve\""), "no buttons once decided");
    assert!(sim.has_binding(&sim.user_id("carol").unwrap(), "admin"));

    let history = b.get("/history?state=succeeded").await;
    assert!(history.html.contains(&id));
    let admin = b.get("/admin").await;
    assert!(
        admin.html.contains("create-global-role-binding") && admin.html.contains("hash chain verified"),
        "{}",
        admin.html
    );

    let out = b.post("/logout", &[("csrf", &after.csrf())]).await;
    assert_eq!(out.location.as_deref(), Some("/login"));
    assert_eq!(b.get("/").await.location.as_deref(), Some("/login"));
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_who_may_not_decide_see_no_buttons_and_forged_posts_are_refused() {
    let (sim, srv, id) = server::with_pending_request("rotation").await;
    let t = sim.tokens().clone();

    // The requester sees the request, and why they cannot decide.
    let mut requester = Browser::new(srv.url(), None);
    requester.sign_in_with_token(&t.approver).await;
    let page = requester.get(&format!("/requests/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.html.contains("id=\"approve\""), "no buttons for the requester");
    assert!(page.html.contains("You cannot decide on this request"), "{}", page.html);
    // Their own page's CSRF token does not make them an approver.
    let csrf = page.csrf();
    let (_, shown) = Api::new(srv.url(), Some(&t.approver))
        .get(&format!("/api/v1/requests/{id}"))
        .await;
    let hash = shown["content_hash"].as_str().unwrap().to_string();
    let tried = requester
        .post(
            &format!("/requests/{id}/decide"),
            &[("csrf", &csrf), ("vote", "approve"), ("reviewed", &hash)],
        )
        .await;
    assert_eq!(tried.status, 303);
    let after = requester.get(&format!("/requests/{id}")).await;
    assert!(
        after.html.contains("Nothing was changed") && after.html.contains("may not decide"),
        "{}",
        after.html
    );

    // A standard user sees neither the request nor buttons.
    let mut alice = Browser::new(srv.url(), None);
    alice.sign_in_with_token(&t.user).await;
    assert!(!alice.get("/").await.html.contains(&id));
    assert_eq!(alice.get(&format!("/requests/{id}")).await.status, 403);
    assert_eq!(alice.get("/admin").await.status, 403);

    // Forged approvals for the admin: no CSRF token, a wrong one, another person's, or no session at all.
    let mut admin = Browser::new(srv.url(), None);
    admin.sign_in_with_token(&t.admin).await;
    let admins_csrf = admin.get(&format!("/requests/{id}")).await.csrf();
    for form in [
        vec![("vote", "approve")],
        vec![("csrf", "0".repeat(64).as_str()), ("vote", "approve")],
        vec![("csrf", csrf.as_str()), ("vote", "approve")],
    ] {
        let forged = admin.post(&format!("/requests/{id}/decide"), &form).await;
        assert_eq!(forged.status, 403, "{}", forged.html);
        assert!(forged.html.contains("nothing was done"), "{}", forged.html);
    }
    let mut stranger = Browser::new(srv.url(), None);
    let forged = stranger
        .post(
            &format!("/requests/{id}/decide"),
            &[("csrf", &admins_csrf), ("vote", "approve")],
        )
        .await;
    assert_eq!(forged.status, 403);
    // A login form posted without the cookie that came with it is refused too.
    let forged = stranger
        .post("/login", &[("csrf", &admins_csrf), ("token", &t.admin)])
        .await;
    assert_eq!(forged.status, 403);
    let (_, shown) = Api::new(srv.url(), Some(&t.admin))
        .get(&format!("/api/v1/requests/{id}"))
        .await;
    assert_eq!(shown["state"], "pending", "nothing forged went through");
    assert_eq!(
        sim.writes("globalrolebindings", "create"),
        1,
        "only the service account's own binding"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_rancher_password_keeps_the_session_token_until_sign_out() {
    let (sim, srv, _id) = server::with_pending_request("rotation").await;
    let tokens_before = sim.count("tokens");
    let mut b = Browser::new(srv.url(), None);
    let login = b.get("/login").await;
    let bad = b
        .post(
            "/login",
            &[
                ("csrf", &login.csrf()),
                ("username", "admin"),
                ("password", "wrong-password-123"),
            ],
        )
        .await;
    assert_eq!(bad.status, 401);
    assert!(
        bad.html.contains("Rancher refused this user name and password"),
        "{}",
        bad.html
    );
    let ok = b
        .post(
            "/login",
            &[
                ("csrf", &bad.csrf()),
                ("username", "admin"),
                ("password", rancher_sim::DEFAULT_PASSWORD),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.html);
    let home = b.get("/").await;
    assert!(home.html.contains("Signed in as admin"));
    assert_eq!(
        sim.count("tokens"),
        tokens_before + 1,
        "the login session token is kept (sealed) for the session"
    );
    let out = b.post("/logout", &[("csrf", &home.csrf())]).await;
    assert_eq!(out.location.as_deref(), Some("/login"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sim.count("tokens") != tokens_before && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        sim.count("tokens"),
        tokens_before,
        "signing out logged the session token out"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_cookie_is_secure_and_the_api_answers() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 2).await;
    let svc = server::service_account(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = server::tls_files(dir.path());
    let mut cfg = server::config(&sim, &svc, Arc::new(MemoryStore::new())).tls(&cert, &key);
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    let srv = server::start(cfg).await;
    assert!(srv.url().starts_with("https://127.0.0.1:"), "{}", srv.url());
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let (st, me) = Api::with_client(srv.url(), Some(&sim.tokens().admin), http)
        .get("/api/v1/me")
        .await;
    assert_eq!((st, me["username"].as_str()), (200, Some("admin")));
    let mut b = Browser::new(srv.url(), Some(&ca));
    b.sign_in_with_token(&sim.tokens().admin).await;
    let c = b
        .last_set_cookie
        .iter()
        .find(|c| c.starts_with("__Host-ra_session="))
        .cloned()
        .unwrap();
    assert!(c.contains("; Secure"), "{c}");
    srv.shutdown().await;
}

/// The history page shows a page of requests, newest first, with a link to the older ones that keeps the filters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_page_links_to_older_requests() {
    let (sim, srv, first) = server::with_pending_request("one").await;
    let approver = Api::new(srv.url(), Some(&sim.tokens().approver));
    let mut ids = vec![first];
    for who in ["dave", "bob"] {
        let (st, sub) = approver
            .post(
                "/api/v1/runs",
                serde_json::json!({"workflow": "create-global-role-binding", "inputs": {"user": who, "role": "admin"}}),
            )
            .await;
        assert_eq!(st, 202, "{sub}");
        ids.push(sub["request"].as_str().unwrap().to_string());
    }
    let mut b = Browser::new(srv.url(), None);
    b.sign_in_with_token(&sim.tokens().admin).await;
    let rows = |html: &str| -> Vec<String> {
        html.split("class=\"request\" data-id=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect()
    };
    let page = b.get("/history?state=pending&limit=2").await;
    assert_eq!(page.status, 200);
    assert_eq!(rows(&page.html), [ids[2].clone(), ids[1].clone()], "the newest two");
    let link = page
        .html
        .split("id=\"older\" href=\"")
        .nth(1)
        .expect("a link to older requests")
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    assert!(
        link.contains("state=pending") && link.contains("limit=2"),
        "the filters are kept: {link}"
    );
    let older = b.get(&link).await;
    assert_eq!(rows(&older.html), [ids[0].clone()]);
    assert!(!older.html.contains("id=\"older\""), "the last page links no further");
    let bad = b.get("/history?before=yesterday").await;
    assert_eq!(bad.status, 400);
    assert!(bad.html.contains("Older"), "{}", bad.html);
    srv.shutdown().await;
}

/// N12: the request page names each pinned target next to its id, prints the look-alike warnings `rancherctl`
/// prints, and shows bidi and control characters a requester wrote as visible escapes instead of passing them on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n12_the_page_names_targets_warns_of_look_alikes_and_neutralises_bidi() {
    let (sim, srv, id) = server::with_pending_request("routine \u{202e}nimda ot\u{202c} change\u{1b}[2K").await;
    let carol = sim.user_id("carol").unwrap();
    let mut b = Browser::new(srv.url(), None);
    b.sign_in_with_token(&sim.tokens().admin).await;
    let page = b.get(&format!("/requests/{id}")).await;
    assert_eq!(page.status, 200);
    let targets = page
        .html
        .split("id=\"targets\">")
        .nth(1)
        .expect("a targets line")
        .split("</dd>")
        .next()
        .unwrap()
        .to_string();
    assert!(
        targets.contains("carol") && targets.contains(&carol),
        "the target by name and id: {targets}"
    );
    for raw in ['\u{202e}', '\u{202c}', '\u{1b}'] {
        assert!(!page.html.contains(raw), "U+{:04X} passed through raw", raw as u32);
    }
    assert!(
        page.html.contains(r"\u{202e}nimda"),
        "the override is shown as an escape: {}",
        page.html
    );
    let list = b.get("/").await;
    assert!(!list.html.contains('\u{202e}'), "the list row neutralises it too");
    assert!(
        list.html.contains("carol (") && list.html.contains(&carol),
        "the row names the target: {}",
        list.html
    );

    // A target whose name mixes scripts (a Cyrillic `а`) is flagged as the CLI flags it.
    let twin = server::create_user(&sim, "\u{430}lice", "look-alike-password-1", false).await;
    let (st, sub) = Api::new(srv.url(), Some(&sim.tokens().approver))
        .post("/api/v1/runs", serde_json::json!({"workflow": "create-global-role-binding", "inputs": {"user": twin, "role": "admin"}, "reason": "r"}))
        .await;
    assert_eq!(st, 202, "{sub}");
    let page = b.get(&format!("/requests/{}", sub["request"].as_str().unwrap())).await;
    let warnings = page
        .html
        .split("id=\"warnings\"")
        .nth(1)
        .expect("a warnings box")
        .split("</div>")
        .next()
        .unwrap()
        .to_string();
    assert!(warnings.contains("mixes Cyrillic and Latin letters"), "{warnings}");
    srv.shutdown().await;
}

/// N14 (API and page): a decision carries the content hash the reviewer was shown; a hash that is not the
/// request's is refused and nothing runs; the page's form carries the request's hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n14_decisions_carry_the_reviewed_hash_and_a_changed_request_is_refused() {
    let (sim, srv, id) = server::with_pending_request("rotation").await;
    let admin = Api::new(srv.url(), Some(&sim.tokens().admin));
    let (_, shown) = admin.get(&format!("/api/v1/requests/{id}")).await;
    let hash = shown["content_hash"].as_str().expect("a content hash").to_string();
    let other = "0".repeat(64);

    // API: a decision on other content is refused with 409.
    let (st, e) = admin
        .post(
            &format!("/api/v1/requests/{id}/approve"),
            serde_json::json!({"reviewed": other}),
        )
        .await;
    assert_eq!(st, 409, "{e}");
    let (st, e) = admin
        .post(
            &format!("/api/v1/requests/{id}/deny"),
            serde_json::json!({"reviewed": other}),
        )
        .await;
    assert_eq!(st, 409, "{e}");

    // Page: the form carries the hash; a form with another one changes nothing.
    let mut b = Browser::new(srv.url(), None);
    b.sign_in_with_token(&sim.tokens().admin).await;
    let page = b.get(&format!("/requests/{id}")).await;
    assert!(
        page.html.contains(&format!("name=\"reviewed\" value=\"{hash}\"")),
        "{}",
        page.html
    );
    let done = b
        .post(
            &format!("/requests/{id}/decide"),
            &[("csrf", &page.csrf()), ("vote", "approve"), ("reviewed", &other)],
        )
        .await;
    assert_eq!(done.status, 303);
    let after = b.get(&format!("/requests/{id}")).await;
    assert!(
        after.html.contains("Nothing was changed") && after.html.contains("id=\"state\">pending"),
        "{}",
        after.html
    );
    let missing = b
        .post(
            &format!("/requests/{id}/decide"),
            &[("csrf", &after.csrf()), ("vote", "approve")],
        )
        .await;
    assert_eq!(
        missing.status, 400,
        "a form without the hash is refused: {}",
        missing.html
    );
    assert!(!sim.has_binding(&sim.user_id("carol").unwrap(), "admin"), "nothing ran");

    // The hash as shown: approved and executed once.
    let (st, v) = admin
        .post(
            &format!("/api/v1/requests/{id}/approve"),
            serde_json::json!({"reviewed": hash}),
        )
        .await;
    assert_eq!((st, v["state"].as_str()), (200, Some("succeeded")), "{v}");
    srv.shutdown().await;
}

/// N5: a standard user who files `offboard-user` for another person and `cleanup-tokens` reads back counts, not
/// the token names and binding names the service read with its own rights; an admin sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n5_the_requester_sees_counts_not_what_the_service_read() {
    let (sim, _svc, srv) = server::sim_and_service(Arc::new(MemoryStore::new())).await;
    let t = sim.tokens().clone();
    let admin = Api::new(srv.url(), Some(&t.admin));
    for w in ["offboard-user", "cleanup-tokens"] {
        server::install(&admin, w).await;
    }
    let alice = Api::new(srv.url(), Some(&t.user));
    let mut ids = Vec::new();
    for (w, inputs) in [
        ("offboard-user", serde_json::json!({"user": "approver"})),
        ("cleanup-tokens", serde_json::json!({"unused-days": "0"})),
    ] {
        let (st, sub) = alice
            .post(
                "/api/v1/runs",
                serde_json::json!({"workflow": w, "inputs": inputs, "reason": "tidy up"}),
            )
            .await;
        assert_eq!(st, 202, "{w}: {sub}");
        ids.push(sub["request"].as_str().unwrap().to_string());
    }
    // What the admin sees: the names the service read.
    let mut secrets: Vec<String> = Vec::new();
    for id in &ids {
        let (_, full) = admin.get(&format!("/api/v1/requests/{id}")).await;
        let inputs = &full["inputs"];
        for step in inputs["plan"]["shown"].as_array().into_iter().flatten() {
            let step = step.as_str().unwrap();
            // "delete grb grb-xxxx (...)", "delete token token-xxxx"
            if let Some(name) = step.split_whitespace().nth(2) {
                if step.starts_with("delete") {
                    secrets.push(name.to_string());
                }
            }
        }
        secrets.extend(
            inputs["pinned"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string)),
        );
    }
    assert!(
        secrets.iter().any(|s| s.starts_with("token-")) && secrets.iter().any(|s| s.starts_with("grb-")),
        "the admin sees the names: {secrets:?}"
    );

    let (_, listed) = alice.get("/api/v1/requests").await;
    let mut seen = vec![listed.to_string()];
    for id in &ids {
        let (st, mine) = alice.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(st, 200);
        assert!(
            mine["details"].as_str().unwrap_or_default().starts_with("withheld"),
            "{mine}"
        );
        seen.push(mine.to_string());
    }
    let mut b = Browser::new(srv.url(), None);
    b.sign_in_with_token(&t.user).await;
    seen.push(b.get("/history").await.html);
    for id in &ids {
        let page = b.get(&format!("/requests/{id}")).await;
        assert!(page.html.contains("id=\"withheld\""), "{}", page.html);
        seen.push(page.html);
    }
    for text in &seen {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "the requester was handed {s}:\n{text}");
        }
    }
    let (_, mine) = alice.get(&format!("/api/v1/requests/{}", ids[1])).await;
    assert!(
        mine["inputs"]["pinned"]["count"].as_u64().unwrap() > 0,
        "counts instead: {mine}"
    );
    srv.shutdown().await;
}

/// N3: an approver signed in on the page whose Rancher account is then disabled cannot decide: the decision is
/// checked with Rancher first, the session ends (back to sign-in), and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_an_approver_disabled_in_rancher_after_signing_in_cannot_decide() {
    let (sim, srv, id) = server::with_pending_request("rotation").await;
    let t = sim.tokens().clone();
    let mut b = Browser::new(srv.url(), None);
    b.sign_in_with_token(&t.admin).await;
    let page = b.get(&format!("/requests/{id}")).await;
    assert!(
        page.html.contains("id=\"approve\""),
        "the admin may decide before: {}",
        page.html
    );
    let reviewed = page
        .html
        .split("name=\"reviewed\" value=\"")
        .nth(1)
        .map(|r| r.split('"').next().unwrap().to_string())
        .unwrap_or_default();

    // The API knows the admin's token too (cached as an admin for up to 30 s).
    let admin_api = Api::new(srv.url(), Some(&t.admin));
    assert_eq!(admin_api.get("/api/v1/me").await.0, 200);
    let admin_id = sim.user_id("admin").unwrap();
    let approver = rancher_workflows::Session::open(rancher_access_tests::client(&sim, &t.approver))
        .await
        .unwrap();
    approver
        .client
        .users()
        .patch(rancher_api::requests::RkUsersPatch::new(
            &admin_id,
            serde_json::json!({"enabled": false}),
        ))
        .await
        .unwrap();

    let tried = b
        .post(
            &format!("/requests/{id}/decide"),
            &[("csrf", &page.csrf()), ("vote", "approve"), ("reviewed", &reviewed)],
        )
        .await;
    assert!(
        tried.status == 403 || tried.location.as_deref() == Some("/login"),
        "{} {:?} {}",
        tried.status,
        tried.location,
        tried.html
    );
    assert_eq!(
        b.get("/").await.location.as_deref(),
        Some("/login"),
        "the session ended"
    );
    // Through the API, within the identity cache's 30 s: the decision asks Rancher afresh and is refused.
    let (st, e) = admin_api
        .post(
            &format!("/api/v1/requests/{id}/approve"),
            serde_json::json!({"reviewed": reviewed}),
        )
        .await;
    assert_eq!(st, 401, "{e}");
    let (_, shown) = Api::new(srv.url(), Some(&t.approver))
        .get(&format!("/api/v1/requests/{id}"))
        .await;
    assert_eq!(shown["state"], "pending", "{shown}");
    assert!(!sim.has_binding(&sim.user_id("carol").unwrap(), "admin"), "no binding");
    srv.shutdown().await;
}

/// N3: two replicas on one SQLite store, no sticky sessions: a sign-in at one is served by the other, which
/// decides with it. The store holds neither the cookie nor the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_two_replicas_on_one_store_serve_one_web_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("approvals.db");
    let open = || -> Arc<dyn rancher_approval::Store> { Arc::new(rancher_approval::SqliteStore::open(&db).unwrap()) };
    two_replicas_serve_one_sign_in(open(), open(), open()).await;
}

/// N3: the same on one PostgreSQL database (a throwaway cluster; skipped with a note where PostgreSQL cannot
/// start, outside CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_two_replicas_on_one_postgres_serve_one_web_sign_in() {
    let Some(db) = rancher_approval::test_util::TestDatabase::create("web_sessions").await else {
        return;
    };
    two_replicas_serve_one_sign_in(
        Arc::new(db.store().await),
        Arc::new(db.store().await),
        Arc::new(db.store().await),
    )
    .await;
}

async fn two_replicas_serve_one_sign_in(
    a: Arc<dyn rancher_approval::Store>,
    b: Arc<dyn rancher_approval::Store>,
    inspect: Arc<dyn rancher_approval::Store>,
) {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 2).await;
    let svc = server::service_account(&sim).await;
    let one = server::start(server::config(&sim, &svc, a).executor("replica-1")).await;
    let two = server::start(server::config(&sim, &svc, b).executor("replica-2")).await;
    let t = sim.tokens().clone();
    server::install(&Api::new(one.url(), Some(&t.admin)), "create-global-role-binding").await;
    let (st, sub) = Api::new(one.url(), Some(&t.approver))
        .post(
            "/api/v1/runs",
            serde_json::json!({"workflow": "create-global-role-binding", "inputs": {"user": "carol", "role": "admin"}}),
        )
        .await;
    assert_eq!(st, 202, "{sub}");
    let id = sub["request"].as_str().unwrap().to_string();

    let mut b = Browser::new(one.url(), None);
    b.sign_in_with_token(&t.admin).await;
    let cookie = b
        .last_set_cookie
        .iter()
        .find(|c| c.starts_with("ra_session="))
        .cloned()
        .unwrap();
    let cookie = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("ra_session=")
        .to_string();
    b.at(two.url());
    let home = b.get("/").await;
    assert_eq!(
        home.status, 200,
        "the other replica knows the sign-in: {:?}",
        home.location
    );
    assert!(
        home.html.contains("Signed in as admin") && home.html.contains(&id),
        "{}",
        home.html
    );
    let page = b.get(&format!("/requests/{id}")).await;
    let done = b
        .post(
            &format!("/requests/{id}/decide"),
            &[
                ("csrf", &page.csrf()),
                ("vote", "approve"),
                ("reviewed", &page.reviewed()),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    b.at(one.url());
    assert!(b
        .get(&format!("/requests/{id}"))
        .await
        .html
        .contains("id=\"state\">succeeded"));
    assert!(sim.has_binding(&sim.user_id("carol").unwrap(), "admin"));

    let records = inspect
        .state_list("web-session", chrono::Utc::now(), 100)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    for (k, v) in &records {
        assert!(!k.contains(&cookie) && !v.contains(&cookie), "the cookie is not stored");
        assert!(
            !v.contains(rancher_access_tests::cli::secret_of(&t.admin)),
            "the token is stored sealed only"
        );
    }
    // Signing out at one replica ends the session at both.
    let out = b.post("/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(out.location.as_deref(), Some("/login"));
    assert!(inspect
        .state_list("web-session", chrono::Utc::now(), 100)
        .await
        .unwrap()
        .is_empty());
    one.shutdown().await;
    two.shutdown().await;
}

/// N3: a web sign-in ends after the idle timeout without a page, and at the absolute limit however active
/// (the service's clock is injected and moved on instead of sleeping).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_web_sessions_end_after_idle_time_and_at_the_absolute_limit() {
    use std::sync::atomic::{AtomicI64, Ordering};
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 2).await;
    let svc = server::service_account(&sim).await;
    let ahead = Arc::new(AtomicI64::new(0));
    let clock = {
        let ahead = ahead.clone();
        Arc::new(move || chrono::Utc::now() + chrono::Duration::seconds(ahead.load(Ordering::SeqCst)))
    };
    let cfg = server::config(&sim, &svc, Arc::new(MemoryStore::new()))
        .clock(clock)
        .web_sessions(
            std::time::Duration::from_secs(30 * 60),
            std::time::Duration::from_secs(8 * 3600),
        );
    let srv = server::start(cfg).await;
    let minutes = |m: i64| ahead.fetch_add(m * 60, Ordering::SeqCst);
    let mut b = Browser::new(srv.url(), None);
    b.sign_in_with_token(&sim.tokens().admin).await;
    minutes(29);
    assert_eq!(b.get("/").await.status, 200, "29 minutes idle: still signed in");
    minutes(29);
    assert_eq!(b.get("/").await.status, 200, "each page restarts the idle time");
    minutes(31);
    assert_eq!(
        b.get("/").await.location.as_deref(),
        Some("/login"),
        "31 minutes idle: signed out"
    );

    b.sign_in_with_token(&sim.tokens().admin).await;
    for _ in 0..(8 * 60 / 20 - 1) {
        minutes(20);
        assert_eq!(b.get("/").await.status, 200, "active within the working day");
    }
    minutes(21);
    assert_eq!(
        b.get("/").await.location.as_deref(),
        Some("/login"),
        "past 8 hours: signed out however active"
    );
    srv.shutdown().await;
}

/// N16: behind a TLS-terminating proxy (an https:// public URL, the service itself on loopback HTTP) the cookies
/// are `__Host-` prefixed and `Secure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n16_behind_a_tls_proxy_the_cookies_are_host_prefixed_and_secure() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 2).await;
    let svc = server::service_account(&sim).await;
    let cfg = server::config(&sim, &svc, Arc::new(MemoryStore::new()))
        .public_url(url::Url::parse("https://approvals.example.com").unwrap());
    let srv = server::start(cfg).await;
    assert!(srv.url().starts_with("http://127.0.0.1:"));
    let mut b = Browser::new(srv.url(), None);
    b.get("/login").await;
    let login = b.last_set_cookie.first().cloned().unwrap_or_default();
    assert!(
        login.starts_with("__Host-ra_login=")
            && login.contains("; Secure")
            && login.contains("Path=/")
            && !login.contains("Domain"),
        "{login}"
    );
    b.sign_in_with_token(&sim.tokens().admin).await;
    let session = b
        .last_set_cookie
        .iter()
        .find(|c| c.contains("ra_session="))
        .cloned()
        .unwrap();
    assert!(
        session.starts_with("__Host-ra_session=")
            && session.contains("; Secure")
            && session.contains("HttpOnly")
            && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert_eq!(b.get("/").await.status, 200, "the prefixed cookie signs in");
    srv.shutdown().await;
}

/// N10: sign-in attempts are throttled per client: the 26th rapid wrong password gets 429 with `Retry-After`,
/// while a client at another address signs in and calls the API as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n10_the_26th_rapid_wrong_password_gets_429_and_other_clients_are_unaffected() {
    let (sim, _svc, srv) = server::sim_and_service(Arc::new(MemoryStore::new())).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http.get(format!("{}/login", srv.url())).send().await.unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = login.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    for i in 1..=26 {
        let r = http
            .post(format!("{}/login", srv.url()))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", "admin"),
                ("password", "wrong-password-123"),
            ])
            .send()
            .await
            .unwrap();
        if i <= 25 {
            assert_eq!(r.status().as_u16(), 401, "attempt {i}");
        } else {
            assert_eq!(r.status().as_u16(), 429, "attempt {i}");
            let wait: u64 = r
                .headers()
                .get("retry-after")
                .expect("Retry-After")
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
    }
    // Another address: its own budget.
    let elsewhere = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let (st, me) = Api::with_client(srv.url(), Some(&sim.tokens().approver), elsewhere.clone())
        .get("/api/v1/me")
        .await;
    assert_eq!((st, me["username"].as_str()), (200, Some("approver")));
    let login = elsewhere.get(format!("{}/login", srv.url())).send().await.unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = login.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = elsewhere
        .post(format!("{}/login", srv.url()))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("token", sim.tokens().approver.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "signed in from elsewhere");
    srv.shutdown().await;
}

/// N10: a refused token is remembered (by hash) for a few seconds, so repeating it costs Rancher nothing; many
/// different bad tokens from one client are throttled with 429 and `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n10_bad_tokens_are_cached_and_token_checks_are_throttled_per_client() {
    let (sim, _svc, srv) = server::sim_and_service(Arc::new(MemoryStore::new())).await;
    let bad = format!("token-zzzzz:{}", "q".repeat(54));
    let admin = Api::new(srv.url(), Some(&sim.tokens().admin));
    assert_eq!(admin.get("/api/v1/me").await.0, 200);
    sim.clear_request_log();
    for _ in 0..40 {
        let (st, _) = Api::new(srv.url(), Some(&bad)).get("/api/v1/me").await;
        assert_eq!(st, 401);
    }
    let calls = sim.request_log().len();
    assert!(calls <= 4, "40 calls with one refused token made {calls} Rancher calls");

    let mut throttled = None;
    for i in 0..150 {
        let token = format!("token-y{i:04}:{}", "r".repeat(54));
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/me", srv.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            throttled = Some((
                i,
                r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()),
            ));
            break;
        }
        assert_eq!(r.status().as_u16(), 401);
    }
    let (after, wait) = throttled.expect("a flood of distinct bad tokens is throttled");
    assert!(after >= 90, "throttled only past the burst: {after}");
    assert!(wait.is_some_and(|w| w.parse::<u64>().unwrap() >= 1), "Retry-After");
    // A token resolved before still works from the same client: the identity cache answers it, no Rancher call.
    assert_eq!(admin.get("/api/v1/me").await.0, 200);
    srv.shutdown().await;
}
