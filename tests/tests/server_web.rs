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
    let session_cookie = b.last_set_cookie.iter().find(|c| c.starts_with("ra_session=")).cloned().expect("session cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Strict") && session_cookie.contains("Max-Age="), "{session_cookie}");
    assert!(!session_cookie.contains("Secure"), "plain HTTP on loopback: no Secure flag");
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
    let done = b.post(&format!("/requests/{id}/decide"), &[("csrf", &csrf), ("vote", "approve"), ("reason", "<b>ok</b>")]).await;
    assert_eq!(done.status, 303);
    let after = b.get(done.location.as_deref().unwrap()).await;
    assert!(after.html.contains("The service ran it once: it succeeded."), "{}", after.html);
    assert!(after.html.contains("id=\"state\">succeeded"), "{}", after.html);
    assert!(after.html.contains("&lt;b&gt;ok&lt;"), "the decision reason is escaped");
    assert!(!after.html.contains("id=\"approve\""), "no buttons once decided");
    assert!(sim.has_binding(&sim.user_id("carol").unwrap(), "admin"));

    let history = b.get("/history?state=succeeded").await;
    assert!(history.html.contains(&id));
    let admin = b.get("/admin").await;
    assert!(admin.html.contains("create-global-role-binding") && admin.html.contains("hash chain verified"), "{}", admin.html);

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
    let tried = requester.post(&format!("/requests/{id}/decide"), &[("csrf", &csrf), ("vote", "approve")]).await;
    assert_eq!(tried.status, 303);
    let after = requester.get(&format!("/requests/{id}")).await;
    assert!(after.html.contains("Nothing was changed") && after.html.contains("may not decide"), "{}", after.html);

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
    for form in [vec![("vote", "approve")], vec![("csrf", "0".repeat(64).as_str()), ("vote", "approve")], vec![("csrf", csrf.as_str()), ("vote", "approve")]] {
        let forged = admin.post(&format!("/requests/{id}/decide"), &form).await;
        assert_eq!(forged.status, 403, "{}", forged.html);
        assert!(forged.html.contains("nothing was done"), "{}", forged.html);
    }
    let mut stranger = Browser::new(srv.url(), None);
    let forged = stranger.post(&format!("/requests/{id}/decide"), &[("csrf", &admins_csrf), ("vote", "approve")]).await;
    assert_eq!(forged.status, 403);
    // A login form posted without the cookie that came with it is refused too.
    let forged = stranger.post("/login", &[("csrf", &admins_csrf), ("token", &t.admin)]).await;
    assert_eq!(forged.status, 403);
    let (_, shown) = Api::new(srv.url(), Some(&t.admin)).get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown["state"], "pending", "nothing forged went through");
    assert_eq!(sim.writes("globalrolebindings", "create"), 1, "only the service account's own binding");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_rancher_password_logs_the_session_token_out() {
    let (sim, srv, _id) = server::with_pending_request("rotation").await;
    let tokens_before = sim.count("tokens");
    let mut b = Browser::new(srv.url(), None);
    let login = b.get("/login").await;
    let bad = b.post("/login", &[("csrf", &login.csrf()), ("username", "admin"), ("password", "wrong-password-123")]).await;
    assert_eq!(bad.status, 401);
    assert!(bad.html.contains("Rancher refused this user name and password"), "{}", bad.html);
    let ok = b.post("/login", &[("csrf", &bad.csrf()), ("username", "admin"), ("password", rancher_sim::DEFAULT_PASSWORD)]).await;
    assert_eq!(ok.status, 303, "{}", ok.html);
    assert!(b.get("/").await.html.contains("Signed in as admin"));
    assert_eq!(sim.count("tokens"), tokens_before, "the login session token was logged out again");
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
    let http = reqwest::Client::builder().use_rustls_tls().add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()).build().unwrap();
    let (st, me) = Api::with_client(srv.url(), Some(&sim.tokens().admin), http).get("/api/v1/me").await;
    assert_eq!((st, me["username"].as_str()), (200, Some("admin")));
    let mut b = Browser::new(srv.url(), Some(&ca));
    b.sign_in_with_token(&sim.tokens().admin).await;
    let c = b.last_set_cookie.iter().find(|c| c.starts_with("ra_session=")).cloned().unwrap();
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
            .post("/api/v1/runs", serde_json::json!({"workflow": "create-global-role-binding", "inputs": {"user": who, "role": "admin"}}))
            .await;
        assert_eq!(st, 202, "{sub}");
        ids.push(sub["request"].as_str().unwrap().to_string());
    }
    let mut b = Browser::new(srv.url(), None);
    b.sign_in_with_token(&sim.tokens().admin).await;
    let rows = |html: &str| -> Vec<String> {
        html.split("class=\"request\" data-id=\"").skip(1).map(|rest| rest.split('"').next().unwrap().to_string()).collect()
    };
    let page = b.get("/history?state=pending&limit=2").await;
    assert_eq!(page.status, 200);
    assert_eq!(rows(&page.html), [ids[2].clone(), ids[1].clone()], "the newest two");
    let link = page.html.split("id=\"older\" href=\"").nth(1).expect("a link to older requests").split('"').next().unwrap().replace("&#x2f;", "/").replace("&amp;", "&");
    assert!(link.contains("state=pending") && link.contains("limit=2"), "the filters are kept: {link}");
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
    let targets = page.html.split("id=\"targets\">").nth(1).expect("a targets line").split("</dd>").next().unwrap().to_string();
    assert!(targets.contains("carol") && targets.contains(&carol), "the target by name and id: {targets}");
    for raw in ['\u{202e}', '\u{202c}', '\u{1b}'] {
        assert!(!page.html.contains(raw), "U+{:04X} passed through raw", raw as u32);
    }
    assert!(page.html.contains(r"\u{202e}nimda"), "the override is shown as an escape: {}", page.html);
    let list = b.get("/").await;
    assert!(!list.html.contains('\u{202e}'), "the list row neutralises it too");
    assert!(list.html.contains("carol (") && list.html.contains(&carol), "the row names the target: {}", list.html);

    // A target whose name mixes scripts (a Cyrillic `а`) is flagged as the CLI flags it.
    let twin = server::create_user(&sim, "\u{430}lice", "look-alike-password-1", false).await;
    let (st, sub) = Api::new(srv.url(), Some(&sim.tokens().approver))
        .post("/api/v1/runs", serde_json::json!({"workflow": "create-global-role-binding", "inputs": {"user": twin, "role": "admin"}, "reason": "r"}))
        .await;
    assert_eq!(st, 202, "{sub}");
    let page = b.get(&format!("/requests/{}", sub["request"].as_str().unwrap())).await;
    let warnings = page.html.split("id=\"warnings\"").nth(1).expect("a warnings box").split("</div>").next().unwrap().to_string();
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
    let (st, e) = admin.post(&format!("/api/v1/requests/{id}/approve"), serde_json::json!({"reviewed": other})).await;
    assert_eq!(st, 409, "{e}");
    let (st, e) = admin.post(&format!("/api/v1/requests/{id}/deny"), serde_json::json!({"reviewed": other})).await;
    assert_eq!(st, 409, "{e}");

    // Page: the form carries the hash; a form with another one changes nothing.
    let mut b = Browser::new(srv.url(), None);
    b.sign_in_with_token(&sim.tokens().admin).await;
    let page = b.get(&format!("/requests/{id}")).await;
    assert!(page.html.contains(&format!("name=\"reviewed\" value=\"{hash}\"")), "{}", page.html);
    let done = b.post(&format!("/requests/{id}/decide"), &[("csrf", &page.csrf()), ("vote", "approve"), ("reviewed", &other)]).await;
    assert_eq!(done.status, 303);
    let after = b.get(&format!("/requests/{id}")).await;
    assert!(after.html.contains("Nothing was changed") && after.html.contains("id=\"state\">pending"), "{}", after.html);
    let missing = b.post(&format!("/requests/{id}/decide"), &[("csrf", &after.csrf()), ("vote", "approve")]).await;
    assert_eq!(missing.status, 400, "a form without the hash is refused: {}", missing.html);
    assert!(!sim.has_binding(&sim.user_id("carol").unwrap(), "admin"), "nothing ran");

    // The hash as shown: approved and executed once.
    let (st, v) = admin.post(&format!("/api/v1/requests/{id}/approve"), serde_json::json!({"reviewed": hash})).await;
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
    for (w, inputs) in [("offboard-user", serde_json::json!({"user": "approver"})), ("cleanup-tokens", serde_json::json!({"unused-days": "0"}))] {
        let (st, sub) = alice.post("/api/v1/runs", serde_json::json!({"workflow": w, "inputs": inputs, "reason": "tidy up"})).await;
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
        secrets.extend(inputs["pinned"].as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_string)));
    }
    assert!(secrets.iter().any(|s| s.starts_with("token-")) && secrets.iter().any(|s| s.starts_with("grb-")), "the admin sees the names: {secrets:?}");

    let (_, listed) = alice.get("/api/v1/requests").await;
    let mut seen = vec![listed.to_string()];
    for id in &ids {
        let (st, mine) = alice.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(st, 200);
        assert!(mine["details"].as_str().unwrap_or_default().starts_with("withheld"), "{mine}");
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
    assert!(mine["inputs"]["pinned"]["count"].as_u64().unwrap() > 0, "counts instead: {mine}");
    srv.shutdown().await;
}
