//! Chat approvals end to end against the simulator: a fake Slack Web API on loopback records `chat.postMessage`,
//! `chat.update`, `views.open` and the ephemeral answers, and the test sends signed `block_actions` payloads the
//! way Slack does. A request under a 2-of-2 policy is posted once with Approve and Deny buttons carrying its id
//! and content hash; the approvers' clicks record their decisions `via: slack`; a replay, a stale signature and
//! the requester's own click record nothing; the approved request runs once and its message says so; reminders
//! and the escalation go out once each as the service's clock runs ahead. A Teams webhook receives the card.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::routing::post;
use rancher_access_tests::server::{self, Api};
use rancher_approval::SqliteStore;
use rancher_server::slack::SlackConfig;
use rancher_sim::RancherVersion;
use secrecy::SecretString;
use serde_json::{json, Value};

/// What the fake Slack got: (method or `response/<name>`, body).
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// A fake of Slack's Web API and of its response URLs, on loopback; answers its base URL. `users.info` answers
/// the profile email of the Slack users in `emails` (and `user_not_found` for anyone else).
async fn fake_slack(calls: Calls) -> (String, tokio::task::JoinHandle<()>) {
    fake_slack_with(calls, HashMap::new()).await
}

async fn fake_slack_with(calls: Calls, emails: HashMap<String, String>) -> (String, tokio::task::JoinHandle<()>) {
    let emails = Arc::new(emails);
    let c1 = calls.clone();
    let c2 = calls.clone();
    let app = axum::Router::new()
        .route(
            "/api/{method}",
            post(move |Path(method): Path<String>, body: axum::body::Bytes| {
                let calls = c1.clone();
                let emails = emails.clone();
                async move {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let mut calls = calls.lock().unwrap();
                    calls.push((method.clone(), v.clone()));
                    let n = calls.len();
                    axum::Json(match method.as_str() {
                        "chat.postMessage" | "chat.update" => {
                            json!({"ok": true, "channel": v["channel"], "ts": v.get("ts").cloned().unwrap_or(json!(format!("1700000000.{n:06}")))})
                        }
                        "views.open" => json!({"ok": true, "view": {"id": "V1"}}),
                        "users.info" => match v["user"].as_str().and_then(|u| emails.get(u)) {
                            Some(email) => json!({"ok": true, "user": {"id": v["user"], "profile": {"email": email}}}),
                            None => json!({"ok": false, "error": "user_not_found"}),
                        },
                        _ => json!({"ok": false, "error": "unknown_method"}),
                    })
                }
            }),
        )
        .route(
            "/response/{name}",
            post(move |Path(name): Path<String>, body: axum::body::Bytes| {
                let calls = c2.clone();
                async move {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    calls.lock().unwrap().push((format!("response/{name}"), v));
                    "ok"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), task)
}

fn of<'a>(calls: &'a [(String, Value)], method: &str) -> Vec<&'a Value> {
    calls.iter().filter(|(m, _)| m == method).map(|(_, v)| v).collect()
}

async fn wait_for(calls: &Calls, what: &str, pred: impl Fn(&[(String, Value)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pred(&calls.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; Slack got {:#?}",
            calls.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the request (as an admin) until `pred` holds.
async fn wait_request(api: &Api, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, v) = api.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(st, 200, "{v}");
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {v:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A signed interaction as Slack sends it: a form with one `payload` field.
struct Click {
    body: String,
    timestamp: i64,
    signature: String,
}

fn click(
    secret: &SecretString,
    now: i64,
    user: &str,
    value: &str,
    action_ts: &str,
    response: &str,
    base: &str,
) -> Click {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase()},
        "trigger_id": format!("trigger-{action_ts}"),
        "response_url": format!("{base}/response/{response}"),
        "actions": [{"action_id": value.split(':').next().unwrap(), "block_id": "decide", "value": value, "type": "button", "action_ts": action_ts}],
    });
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let signature = rancher_server::slack::sign(secret, now, body.as_bytes());
    Click {
        body,
        timestamp: now,
        signature,
    }
}

async fn send(service: &str, c: &Click) -> u16 {
    reqwest::Client::new()
        .post(format!("{service}/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", c.timestamp.to_string())
        .header("x-slack-signature", &c.signature)
        .body(c.body.clone())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The values of the Approve and Deny buttons of a posted message.
fn buttons(message: &Value) -> Vec<String> {
    message["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().unwrap().iter())
        .filter_map(|e| e["value"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slack_buttons_decide_once_as_the_mapped_approver_and_reminders_go_out_once() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 4).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let users = sim.users().clone();
    let calls: Calls = Arc::default();
    let (slack_base, fake) = fake_slack(calls.clone()).await;
    let secret = SecretString::from("slack-signing-secret-0123456789abcdef".to_string());
    let map = [
        ("UADMIN", users.admin.id.clone()),
        ("UAPPROVER", users.approver.id.clone()),
        ("UALICE", users.user.id.clone()),
    ]
    .into_iter()
    .map(|(s, r)| (s.to_string(), r))
    .collect();
    let slack = SlackConfig::new(SecretString::from("xoxb-test-bot-token".to_string()), secret.clone())
        .channel("CAPPROVALS")
        .api_url(format!("{slack_base}/api").parse().unwrap())
        .users(map);
    // The service's clock, run ahead by the test.
    let ahead = Arc::new(AtomicI64::new(0));
    let a2 = ahead.clone();
    let clock: rancher_server::config::Clock =
        Arc::new(move || chrono::Utc::now() + chrono::Duration::seconds(a2.load(Ordering::SeqCst)));
    let now = || chrono::Utc::now().timestamp() + ahead.load(Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("approvals.db")).unwrap());
    let srv = server::start(server::config(&sim, &svc, store).slack(slack).clock(clock)).await;
    let (admin, alice) = (Api::new(srv.url(), Some(&t.admin)), Api::new(srv.url(), Some(&t.user)));
    let policy = json!({"kind": "approvers", "thresholds": [{"count": 2, "of": [{"user": users.admin.id}, {"user": users.approver.id}]}],
        "options": {"remind_after_secs": 3600, "escalate_after_secs": 7200, "chat_decisions": "allow"}});
    let (st, v) = admin
        .post(
            "/api/v1/workflows/create-global-role-binding/install",
            json!({"policy": policy}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let file = |user: &'static str| {
        let alice = alice.clone();
        async move {
            let (st, sub) = alice
                .post(
                    "/api/v1/runs",
                    json!({"workflow": "create-global-role-binding", "inputs": {"user": user, "role": "admin"}, "reason": "on call"}),
                )
                .await;
            assert_eq!(st, 202, "{sub}");
            sub["request"].as_str().unwrap().to_string()
        }
    };
    let id = file("bob").await;

    // Exactly one message, to the channel, with two buttons carrying the request id and its content hash.
    wait_for(&calls, "the request's message", |c| {
        !of(c, "chat.postMessage").is_empty()
    })
    .await;
    let shown = wait_request(&admin, &id, "the request", |_| true).await;
    let hash = shown["content_hash"].as_str().unwrap().to_string();
    let message = of(&calls.lock().unwrap(), "chat.postMessage")[0].clone();
    assert_eq!(message["channel"], "CAPPROVALS");
    assert_eq!(
        buttons(&message),
        vec![format!("approve:{id}:{hash}"), format!("deny:{id}:{hash}")]
    );
    let text = message.to_string();
    // The plan in the names pinned at filing (the target's display name, username and id), and who asked.
    assert!(
        text.contains("alice asks: will create a GlobalRoleBinding of") && text.contains("Bob Example (bob, u-"),
        "{text}"
    );

    // A clicks Approve: A's decision, via Slack.
    let a_click = click(
        &secret,
        now(),
        "UADMIN",
        &format!("approve:{id}:{hash}"),
        "1.1",
        "a",
        &slack_base,
    );
    assert_eq!(send(srv.url(), &a_click).await, 200);
    let v = wait_request(&admin, &id, "A's decision", |v| {
        v["decisions"].as_array().is_some_and(|d| !d.is_empty())
    })
    .await;
    assert_eq!(v["decisions"][0]["principal"]["id"], users.admin.id.as_str());
    assert_eq!(v["status"], "pending");
    let decided: Vec<&Value> = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "decided")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0]["detail"]["via"], "slack", "{}", decided[0]);
    wait_for(&calls, "A's confirmation", |c| !of(c, "response/a").is_empty()).await;

    // The same payload again: dropped (answered 200, as Slack expects, but nothing is done).
    assert_eq!(send(srv.url(), &a_click).await, 200);
    // A payload signed six minutes ago: 401.
    let stale = click(
        &secret,
        now() - 360,
        "UADMIN",
        &format!("approve:{id}:{hash}"),
        "1.2",
        "stale",
        &slack_base,
    );
    assert_eq!(send(srv.url(), &stale).await, 401);
    // A forged signature: 401.
    let mut forged = click(
        &secret,
        now(),
        "UAPPROVER",
        &format!("approve:{id}:{hash}"),
        "1.3",
        "forged",
        &slack_base,
    );
    forged.signature =
        rancher_server::slack::sign(&SecretString::from("guess".to_string()), now(), forged.body.as_bytes());
    assert_eq!(send(srv.url(), &forged).await, 401);

    // The requester clicks Approve: an ephemeral refusal, nothing recorded.
    let own = click(
        &secret,
        now(),
        "UALICE",
        &format!("approve:{id}:{hash}"),
        "1.4",
        "alice",
        &slack_base,
    );
    assert_eq!(send(srv.url(), &own).await, 200);
    wait_for(&calls, "the requester's refusal", |c| {
        !of(c, "response/alice").is_empty()
    })
    .await;
    let refusal = of(&calls.lock().unwrap(), "response/alice")[0].clone();
    assert_eq!(refusal["response_type"], "ephemeral");
    assert!(
        refusal["text"].as_str().unwrap().starts_with("Nothing was recorded"),
        "{refusal}"
    );
    // An unmapped Slack user: refused too.
    let stranger = click(
        &secret,
        now(),
        "UNOBODY",
        &format!("approve:{id}:{hash}"),
        "1.5",
        "nobody",
        &slack_base,
    );
    assert_eq!(send(srv.url(), &stranger).await, 200);
    wait_for(&calls, "the stranger's refusal", |c| {
        !of(c, "response/nobody").is_empty()
    })
    .await;

    // B approves: it runs once, and the message shows it succeeded.
    let creates = sim.writes("globalrolebindings", "create");
    let b_click = click(
        &secret,
        now(),
        "UAPPROVER",
        &format!("approve:{id}:{hash}"),
        "1.6",
        "b",
        &slack_base,
    );
    assert_eq!(send(srv.url(), &b_click).await, 200);
    let v = wait_request(&admin, &id, "the execution", |v| v["status"] == "succeeded").await;
    assert_eq!(sim.writes("globalrolebindings", "create"), creates + 1, "executed once");
    let decisions = v["decisions"].as_array().unwrap();
    assert_eq!(
        decisions.len(),
        2,
        "A once (the replay recorded nothing), B once: {v:#}"
    );
    assert!(v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "decided")
        .all(|e| e["detail"]["via"] == "slack"));
    wait_for(&calls, "the message updated with the outcome", |c| {
        of(c, "chat.update").iter().any(|u| u.to_string().contains("succeeded"))
    })
    .await;
    {
        let c = calls.lock().unwrap();
        assert_eq!(of(&c, "chat.postMessage").len(), 1, "one message for the request");
        assert_eq!(of(&c, "response/a").len(), 1, "the replay was not handled again");
        assert!(of(&c, "response/stale").is_empty() && of(&c, "response/forged").is_empty());
        let last = of(&c, "chat.update").last().unwrap().to_string();
        assert!(!last.contains("approve:"), "no decision buttons once it ran: {last}");
        assert!(of(&c, "chat.update").iter().all(|u| u["ts"] == message_ts(&c)));
    }

    // A second request waits: A approves it in Slack, then the clock runs ahead.
    let id2 = file("carol").await;
    wait_for(&calls, "the second message", |c| of(c, "chat.postMessage").len() == 2).await;
    let hash2 = wait_request(&admin, &id2, "the second request", |_| true).await["content_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let a2_click = click(
        &secret,
        now(),
        "UADMIN",
        &format!("approve:{id2}:{hash2}"),
        "2.1",
        "a2",
        &slack_base,
    );
    assert_eq!(send(srv.url(), &a2_click).await, 200);
    wait_request(&admin, &id2, "A's decision on the second request", |v| {
        v["decisions"].as_array().is_some_and(|d| d.len() == 1)
    })
    .await;
    let dms = |c: &[(String, Value)], user: &str| {
        of(c, "chat.postMessage")
            .into_iter()
            .filter(|m| m["channel"] == user)
            .cloned()
            .collect::<Vec<_>>()
    };
    // Past the reminder interval: one reminder, to B (A decided already).
    ahead.store(3700, Ordering::SeqCst);
    wait_request(&admin, &id2, "the reminder", |v| {
        v["audit"].as_array().unwrap().iter().any(|e| e["kind"] == "reminded")
    })
    .await;
    wait_for(&calls, "B's reminder", |c| dms(c, "UAPPROVER").len() == 1).await;
    let reminder = dms(&calls.lock().unwrap(), "UAPPROVER")[0].clone();
    assert!(
        reminder["text"].as_str().unwrap().contains("waiting for your decision"),
        "{reminder}"
    );
    // Past the escalation interval: one escalation to the fallback approvers who have not decided.
    ahead.store(7300, Ordering::SeqCst);
    wait_for(&calls, "the escalation", |c| dms(c, "UAPPROVER").len() == 2).await;
    let v = wait_request(&admin, &id2, "the escalation", |v| {
        v["audit"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "reminded")
            .count()
            == 2
    })
    .await;
    // More job runs later: still one of each.
    ahead.store(7400, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let v2 = wait_request(&admin, &id2, "no more reminders", |_| true).await;
    let reminded = |v: &Value| {
        v["audit"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "reminded")
            .count()
    };
    assert_eq!((reminded(&v), reminded(&v2)), (2, 2));
    {
        let c = calls.lock().unwrap();
        assert_eq!(dms(&c, "UAPPROVER").len(), 2, "one reminder and one escalation");
        assert!(dms(&c, "UADMIN").is_empty(), "A decided: no reminder");
        assert!(dms(&c, "UAPPROVER")[1]["text"]
            .as_str()
            .unwrap()
            .contains("fallback approver"));
    }

    let (st, verify) = admin.get("/api/v1/audit/verify").await;
    assert_eq!(st, 200, "{verify}");
    srv.shutdown().await;
    fake.abort();
}

/// The `ts` of the first message posted.
fn message_ts(c: &[(String, Value)]) -> Value {
    // The fake answers `ts` from the count of calls; the service keeps what it answered.
    let n = c.iter().position(|(m, _)| m == "chat.postMessage").unwrap() + 1;
    json!(format!("1700000000.{n:06}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_teams_workflow_webhook_gets_an_adaptive_card_with_a_link_to_the_page() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 4).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let app = axum::Router::new().route(
        "/workflows/hook",
        post(move |body: axum::body::Bytes| {
            let calls = c.clone();
            async move {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                calls.lock().unwrap().push(("teams".into(), v));
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let hook = SecretString::from(format!("http://{addr}/workflows/hook?sig=secret-part"));
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("approvals.db")).unwrap());
    let srv = server::start(server::config(&sim, &svc, store).teams_webhook(hook)).await;
    let (admin, alice) = (Api::new(srv.url(), Some(&t.admin)), Api::new(srv.url(), Some(&t.user)));
    server::install(&admin, "create-global-role-binding").await;
    let (st, sub) = alice
        .post(
            "/api/v1/runs",
            json!({"workflow": "create-global-role-binding", "inputs": {"user": "bob", "role": "admin"}}),
        )
        .await;
    assert_eq!(st, 202, "{sub}");
    let id = sub["request"].as_str().unwrap().to_string();
    wait_for(&calls, "the card", |c| !c.is_empty()).await;
    let got = calls.lock().unwrap()[0].1.clone();
    assert_eq!(got["type"], "message");
    let att = &got["attachments"][0];
    assert_eq!(att["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &att["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    let link = card["actions"][0]["url"].as_str().unwrap();
    assert_eq!(link, format!("{}/requests/{id}", srv.url()));
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl", "no decision in the card");
    // The plan in the names pinned at filing: the role and the person, not their ids alone.
    let text = card.to_string();
    assert!(
        text.contains("alice asks: will create a GlobalRoleBinding of") && text.contains("(bob, u-"),
        "{card}"
    );
    srv.shutdown().await;
    fake.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_that_wants_a_reason_opens_a_dialog_and_decides_from_its_submission() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 4).await;
    let svc = server::service_account(&sim).await;
    let t = sim.tokens().clone();
    let users = sim.users().clone();
    let calls: Calls = Arc::default();
    let (slack_base, fake) = fake_slack(calls.clone()).await;
    let secret = SecretString::from("slack-signing-secret-0123456789abcdef".to_string());
    let map = [("UADMIN".to_string(), users.admin.id.clone())].into_iter().collect();
    let slack = SlackConfig::new(SecretString::from("xoxb-test-bot-token".to_string()), secret.clone())
        .channel("CAPPROVALS")
        .api_url(format!("{slack_base}/api").parse().unwrap())
        .users(map);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("approvals.db")).unwrap());
    let srv = server::start(server::config(&sim, &svc, store).slack(slack)).await;
    let (admin, alice) = (Api::new(srv.url(), Some(&t.admin)), Api::new(srv.url(), Some(&t.user)));
    let policy = json!({"kind": "approvers", "thresholds": [{"count": 1, "of": [{"user": users.admin.id}]}],
        "options": {"require_reviewer_reason": true, "chat_decisions": "allow"}});
    let (st, v) = admin
        .post(
            "/api/v1/workflows/create-global-role-binding/install",
            json!({"policy": policy}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, sub) = alice
        .post(
            "/api/v1/runs",
            json!({"workflow": "create-global-role-binding", "inputs": {"user": "bob", "role": "admin"}}),
        )
        .await;
    assert_eq!(st, 202, "{sub}");
    let id = sub["request"].as_str().unwrap().to_string();
    wait_for(&calls, "the message", |c| !of(c, "chat.postMessage").is_empty()).await;
    let hash = wait_request(&admin, &id, "the request", |_| true).await["content_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let now = chrono::Utc::now().timestamp();
    let c = click(
        &secret,
        now,
        "UADMIN",
        &format!("deny:{id}:{hash}"),
        "3.1",
        "deny",
        &slack_base,
    );
    assert_eq!(send(srv.url(), &c).await, 200);
    wait_for(&calls, "the reason dialog", |c| !of(c, "views.open").is_empty()).await;
    let open = of(&calls.lock().unwrap(), "views.open")[0].clone();
    assert_eq!(open["trigger_id"], "trigger-3.1");
    let meta = open["view"]["private_metadata"].as_str().unwrap().to_string();
    assert_eq!(meta, format!("deny:{id}:{hash}"));
    // Nothing is recorded by the click itself.
    let v = wait_request(&admin, &id, "the request", |_| true).await;
    assert_eq!(v["decisions"].as_array().map(Vec::len), Some(0));
    // The dialog's submission decides, with its reason.
    let payload = json!({
        "type": "view_submission", "user": {"id": "UADMIN"},
        "view": {"id": "V1", "hash": "h1", "private_metadata": meta,
                 "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": "not during the freeze"}}}}},
    });
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let submit = Click {
        signature: rancher_server::slack::sign(&secret, now, body.as_bytes()),
        body,
        timestamp: now,
    };
    assert_eq!(send(srv.url(), &submit).await, 200);
    let v = wait_request(&admin, &id, "the denial", |v| v["status"] == "denied").await;
    assert_eq!(v["decisions"][0]["reason"], "not during the freeze");
    let decided = v["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "decided")
        .unwrap()
        .clone();
    assert_eq!(decided["detail"]["via"], "slack");
    wait_for(&calls, "the message shows the denial", |c| {
        of(c, "chat.update").iter().any(|u| u.to_string().contains("denied"))
    })
    .await;
    srv.shutdown().await;
    fake.abort();
}

/// `rancherctl serve` takes the Slack and Teams settings from its flags or its settings file: `--check-config` reads
/// the secret files (owner-only) and the mapping, and refuses what would not work, naming the fix.
#[test]
fn serve_checks_the_slack_and_teams_settings() {
    use rancher_access_tests::cli::SimCli;
    use std::os::unix::fs::PermissionsExt;
    let s = SimCli::start(RancherVersion::V2_13, 0);
    let private = |name: &str, text: &str| {
        let path = s.tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let svc = s.rt.block_on(server::service_account(&s.sim));
    private("service.token", &svc);
    private("slack-bot.token", "xoxb-0000-0000-test-bot-token\n");
    private("slack-signing.secret", "slack-signing-secret-0123456789\n");
    private(
        "teams.url",
        "https://example.webhook.office.com/workflows/abc?sig=secret-part\n",
    );
    std::fs::write(s.tmp.path().join("slack-users.json"), r#"{"U0123ABCD": "u-b4x7k"}"#).unwrap();
    let settings = |extra: &str| {
        let text = format!(
            "domain = \"{}\"\nca-cert = \"ca.pem\"\ntoken-file = \"service.token\"\nstore = \"sqlite:{}\"\nlisten = \"127.0.0.1:0\"\n\
             slack-bot-token-file = \"slack-bot.token\"\nslack-signing-secret-file = \"slack-signing.secret\"\nslack-channel = \"C0123ABCD\"\n\
             teams-webhook-url-file = \"teams.url\"\n{extra}",
            s.sim.domain(),
            s.tmp.path().join("approvals.db").display()
        );
        let path = s.tmp.path().join("serve.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ok = s.exec(
        &[
            "serve",
            "--config",
            &settings("slack-user-map-file = \"slack-users.json\"\n"),
            "--check-config",
        ],
        &s.base_env(),
    );
    ok.expect_code(0);
    assert!(!ok.stdout.contains("secret-part") && !ok.stderr.contains("secret-part"));

    // A mapping that is not an object of ids: refused, saying what it should be.
    std::fs::write(s.tmp.path().join("bad-users.json"), r#"["U0123ABCD"]"#).unwrap();
    let bad = s.exec(
        &[
            "serve",
            "--config",
            &settings("slack-user-map-file = \"bad-users.json\"\n"),
            "--check-config",
        ],
        &s.base_env(),
    );
    bad.expect_code(1);
    assert!(
        bad.stderr.contains("Slack user ids to Rancher user ids"),
        "{}",
        bad.stderr
    );
    // The Web API over plain HTTP off loopback: refused.
    let http = s.exec(
        &[
            "serve",
            "--config",
            &settings(""),
            "--check-config",
            "--slack-api-url",
            "http://slack.example.com/api/",
        ],
        &s.base_env(),
    );
    http.expect_code(1);
    assert!(http.stderr.contains("--slack-api-url"), "{}", http.stderr);
    // A signing secret others may read: refused, naming the fix, never echoing it.
    std::fs::set_permissions(
        s.tmp.path().join("slack-signing.secret"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let open = s.exec(&["serve", "--config", &settings(""), "--check-config"], &s.base_env());
    open.expect_code(1);
    assert!(
        open.stderr.contains("chmod 600") && !open.stderr.contains("slack-signing-secret-0123"),
        "{}",
        open.stderr
    );
}

/// A service with Slack set up against a fake Slack: `map` is the mapping file, `emails` the Slack profiles' emails.
struct SlackService {
    srv: rancher_server::RunningServer,
    /// The service account's token.
    svc: String,
    calls: Calls,
    slack_base: String,
    fake: tokio::task::JoinHandle<()>,
    secret: SecretString,
}

async fn slack_service(
    sim: &rancher_sim::SimHandle,
    map: &[(&str, &str)],
    emails: &[(&str, &str)],
    dir: &std::path::Path,
) -> SlackService {
    let calls: Calls = Arc::default();
    let emails = emails.iter().map(|(s, e)| (s.to_string(), e.to_string())).collect();
    let (slack_base, fake) = fake_slack_with(calls.clone(), emails).await;
    let svc = server::service_account(sim).await;
    let srv = slack_replica(sim, &svc, map, &slack_base, dir).await;
    SlackService {
        srv,
        svc,
        calls,
        slack_base,
        fake,
        secret: signing_secret(),
    }
}

fn signing_secret() -> SecretString {
    SecretString::from("slack-signing-secret-0123456789abcdef".to_string())
}

/// One replica of the service with Slack at `slack_base`, on the SQLite store in `dir` (replicas share it).
async fn slack_replica(
    sim: &rancher_sim::SimHandle,
    svc: &str,
    map: &[(&str, &str)],
    slack_base: &str,
    dir: &std::path::Path,
) -> rancher_server::RunningServer {
    let map = map.iter().map(|(s, r)| (s.to_string(), r.to_string())).collect();
    let slack = SlackConfig::new(SecretString::from("xoxb-test-bot-token".to_string()), signing_secret())
        .channel("CAPPROVALS")
        .api_url(format!("{slack_base}/api").parse().unwrap())
        .users(map);
    let store = Arc::new(SqliteStore::open(dir.join("approvals.db")).unwrap());
    server::start(server::config(sim, svc, store).slack(slack)).await
}

impl SlackService {
    /// Installs create-global-role-binding under `policy` and files a request as alice; its id and content hash.
    async fn file(&self, sim: &rancher_sim::SimHandle, policy: Value) -> (String, String) {
        let t = sim.tokens();
        let (admin, alice) = (
            Api::new(self.srv.url(), Some(&t.admin)),
            Api::new(self.srv.url(), Some(&t.user)),
        );
        let (st, v) = admin
            .post(
                "/api/v1/workflows/create-global-role-binding/install",
                json!({"policy": policy}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let (st, sub) = alice
            .post(
                "/api/v1/runs",
                json!({"workflow": "create-global-role-binding", "inputs": {"user": "dave", "role": "admin"}}),
            )
            .await;
        assert_eq!(st, 202, "{sub}");
        let id = sub["request"].as_str().unwrap().to_string();
        wait_for(&self.calls, "the request's message", |c| {
            !of(c, "chat.postMessage").is_empty()
        })
        .await;
        let hash = wait_request(&admin, &id, "the request", |_| true).await["content_hash"]
            .as_str()
            .unwrap()
            .to_string();
        (id, hash)
    }

    /// `user` clicks Approve on request `id`; answers what Slack shows them alone.
    async fn approve_as(&self, user: &str, id: &str, hash: &str, n: &str) -> Value {
        let c = click(
            &self.secret,
            chrono::Utc::now().timestamp(),
            user,
            &format!("approve:{id}:{hash}"),
            n,
            n,
            &self.slack_base,
        );
        assert_eq!(send(self.srv.url(), &c).await, 200);
        let what = format!("the answer to {user}");
        let name = format!("response/{n}");
        wait_for(&self.calls, &what, |c| !of(c, &name).is_empty()).await;
        let answer = of(&self.calls.lock().unwrap(), &name)[0].clone();
        assert_eq!(answer["response_type"], "ephemeral");
        answer
    }

    async fn stop(self) {
        self.srv.shutdown().await;
        self.fake.abort();
    }
}

fn standard(sim: &rancher_sim::SimHandle, username: &str) -> String {
    sim.users()
        .standard
        .iter()
        .find(|u| u.username == username)
        .unwrap()
        .id
        .clone()
}

/// A policy that names a group takes a click from a member of that group: the clicker's groups come from their
/// Rancher `UserAttribute` (a click has no Rancher session to ask), read with the service's token. A mapped Slack
/// user outside the group is refused and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_naming_a_group_takes_a_click_from_a_member_of_that_group() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 4).await;
    let (bob, carol) = (standard(&sim, "bob"), standard(&sim, "carol"));
    let group = "activedirectory_group://CN=Engineering,OU=Groups,DC=example,DC=com";
    // Bob signed in through Active Directory once: Rancher keeps the groups it reported in his UserAttribute.
    assert!(sim.insert_object(
        "userattributes",
        json!({"metadata": {"name": bob}, "UserName": bob, "LastRefresh": "2026-12-01T00:00:00Z", "NeedsRefresh": false,
               "GroupPrincipals": {"activedirectory": {"Items": [
                   {"metadata": {"name": group}, "principalType": "group", "provider": "activedirectory", "memberOf": true}]}},
               "ExtraByProvider": {}}),
    ));
    let dir = tempfile::tempdir().unwrap();
    let s = slack_service(&sim, &[("UBOB", &bob), ("UCAROL", &carol)], &[], dir.path()).await;
    let policy = json!({"kind": "approvers", "thresholds": [{"count": 1, "of": [{"group": group}]}],
        "options": {"chat_decisions": "allow"}});
    let (id, hash) = s.file(&sim, policy).await;
    let admin = Api::new(s.srv.url(), Some(&sim.tokens().admin));

    let refused = s.approve_as("UCAROL", &id, &hash, "carol").await;
    assert!(
        refused["text"].as_str().unwrap().starts_with("Nothing was recorded"),
        "{refused}"
    );
    let creates = sim.writes("globalrolebindings", "create");
    let answer = s.approve_as("UBOB", &id, &hash, "bob").await;
    assert!(answer["text"].as_str().unwrap().contains("is recorded"), "{answer}");
    let v = wait_request(&admin, &id, "the execution", |v| v["status"] == "succeeded").await;
    let decisions = v["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{v:#}");
    assert_eq!(decisions[0]["principal"]["id"], bob.as_str());
    assert_eq!(sim.writes("globalrolebindings", "create"), creates + 1);
    s.stop().await;
}

/// A Slack user who is not in the mapping file is found by the email on their Slack profile (`users.info`), through
/// Rancher's principal search: the one user principal whose login name is that email, then the Rancher user that
/// holds it. Rancher's local principals carry no email (a local user has a username and a display name only), so
/// this goes through Azure AD, whose user principals have the user principal name (an email) as their login name
/// (rancher/rancher pkg/auth/providers/azure/clients/ms_graph_client.go `userToPrincipal`). An email that finds a
/// principal no Rancher user holds, or none at all, is refused and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slack_user_is_mapped_by_the_email_on_their_profile() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 4).await;
    // Azure AD is enabled, and John Doe signed in through it once: Rancher made a user holding his principal.
    let mut azure = sim.object("authconfigs", "azuread").unwrap();
    azure["enabled"] = json!(true);
    assert!(sim.insert_object("authconfigs", azure));
    let jdoe = "u-jdz7k";
    assert!(sim.insert_object(
        "users",
        json!({"metadata": {"name": jdoe}, "displayName": "John Doe", "description": "", "enabled": true,
               "mustChangePassword": false,
               "principalIds": ["azuread_user://2b1e4d7c-0c1a-4a53-9d2e-1f0e5f7a9c01", format!("local://{jdoe}")]}),
    ));
    let dir = tempfile::tempdir().unwrap();
    let s = slack_service(
        &sim,
        &[],
        &[
            ("UJDOE", "JDoe@Example.com"),
            ("UANNA", "asmith@example.com"),
            ("UNOBODY", "nobody@example.com"),
        ],
        dir.path(),
    )
    .await;
    let policy = json!({"kind": "approvers", "thresholds": [{"count": 1, "of": [{"user": jdoe}]}],
        "options": {"chat_decisions": "allow"}});
    let (id, hash) = s.file(&sim, policy).await;
    let admin = Api::new(s.srv.url(), Some(&sim.tokens().admin));

    for (user, n) in [("UANNA", "anna"), ("UNOBODY", "nobody"), ("USTRANGER", "stranger")] {
        let refused = s.approve_as(user, &id, &hash, n).await;
        let text = refused["text"].as_str().unwrap();
        assert!(
            text.starts_with("Nothing was recorded") && text.contains("not mapped to a Rancher user"),
            "{user}: {refused}"
        );
    }
    let answer = s.approve_as("UJDOE", &id, &hash, "jdoe").await;
    assert!(answer["text"].as_str().unwrap().contains("is recorded"), "{answer}");
    let v = wait_request(&admin, &id, "the execution", |v| v["status"] == "succeeded").await;
    let decisions = v["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{v:#}");
    assert_eq!(decisions[0]["principal"]["id"], jdoe);
    // Slack was asked for the profiles, once per click.
    let asked: Vec<String> = of(&s.calls.lock().unwrap(), "users.info")
        .iter()
        .map(|v| v["user"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(asked, ["UANNA", "UNOBODY", "USTRANGER", "UJDOE"]);
    s.stop().await;
}

/// Slack may deliver one interaction more than once, and behind a load balancer the copies can reach two replicas
/// at the same moment: the replay memory is one atomic insert-if-absent in the shared store, so exactly one replica
/// takes the click (one decision, one answer) and the other drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_click_delivered_to_two_replicas_at_once_is_taken_once() {
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 4).await;
    let users = sim.users().clone();
    let dir = tempfile::tempdir().unwrap();
    let map = [
        ("UADMIN", users.admin.id.as_str()),
        ("UAPPROVER", users.approver.id.as_str()),
    ];
    let s = slack_service(&sim, &map, &[], dir.path()).await;
    let other = slack_replica(&sim, &s.svc, &map, &s.slack_base, dir.path()).await;
    // Two of two, so the first approval leaves the request pending and a second vote would show.
    let policy = json!({"kind": "approvers", "thresholds": [{"count": 2, "of": [{"user": users.admin.id}, {"user": users.approver.id}]}],
        "options": {"chat_decisions": "allow"}});
    let (id, hash) = s.file(&sim, policy).await;
    let admin = Api::new(s.srv.url(), Some(&sim.tokens().admin));
    for round in 0..8 {
        let n = format!("copy-{round}");
        let c = click(
            &s.secret,
            chrono::Utc::now().timestamp(),
            "UADMIN",
            &format!("approve:{id}:{hash}"),
            &format!("9.{round}"),
            &n,
            &s.slack_base,
        );
        let (a, b) = tokio::join!(send(s.srv.url(), &c), send(other.url(), &c));
        assert_eq!((a, b), (200, 200));
        let name = format!("response/{n}");
        wait_for(&s.calls, "one replica's answer", |c| !of(c, &name).is_empty()).await;
    }
    // Let any second handling finish before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = s.calls.lock().unwrap().clone();
    for round in 0..8 {
        let answers = of(&c, &format!("response/copy-{round}"));
        assert_eq!(answers.len(), 1, "round {round}: answered once: {answers:#?}");
    }
    let v = wait_request(&admin, &id, "the request", |_| true).await;
    assert_eq!(v["decisions"].as_array().unwrap().len(), 1, "{v:#}");
    other.shutdown().await;
    s.stop().await;
}
