//! Signed webhooks from a durable outbox. The audit log is the outbox: every state change writes its audit
//! entry in the same transaction, so an event can never be lost between the change and its notice. For each
//! webhook URL a deliverer keeps a cursor in the store (the last audit sequence number handed over), posts the
//! events after it in order, retries with backoff until the receiver answers 2xx, and resumes from the cursor
//! after a restart: delivery is at least once (the `X-Rancher-Access-Delivery` header repeats on a retry, so
//! receivers can drop duplicates).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rancher_approval::{AuditEntry, AuditKind};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use url::Url;

use crate::app::{with_store, App};
use crate::config::{redact_url, ServerConfig};

/// The signature header: `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-Rancher-Access-Signature";
/// The event name header.
pub const EVENT_HEADER: &str = "X-Rancher-Access-Event";
/// The delivery id header (the audit sequence number; the same on every retry).
pub const DELIVERY_HEADER: &str = "X-Rancher-Access-Delivery";

/// `sha256=<hex>` of the body under the secret.
pub fn sign(secret: &SecretString, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header against the body (for receivers written in Rust, and the tests).
pub fn verify(secret: &SecretString, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// Slack-style text escaping (`&`, `<`, `>`), so a requester's words cannot form links or mentions.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("")
}

fn who(v: &Value) -> String {
    let u = s(v, &["username"]);
    if u.is_empty() { s(v, &["id"]).to_string() } else { u.to_string() }
}

/// Inputs as `k=v, ...` (they are stored with secrets redacted already).
fn inputs_text(inputs: &Value) -> String {
    inputs
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// The event for an audit entry, or `None` for entries that are not request events (installs, claims).
/// Events carry names, ids, states and reasons: never a token, a secret input or an execution's full result.
pub fn event_for(entry: &AuditEntry) -> Option<Value> {
    let d = &entry.detail;
    let req = entry.request_id.clone().unwrap_or_default();
    let wf = entry.workflow_id.clone().unwrap_or_default();
    let (name, text, extra) = match entry.kind {
        AuditKind::RequestCreated => {
            let reason = s(d, &["reason"]);
            let text = format!(
                "{} asks to run {wf} ({}){}; waiting for approval: {req}",
                who(&d["requester"]),
                inputs_text(&d["inputs"]),
                if reason.is_empty() { String::new() } else { format!(": \"{reason}\"") }
            );
            (
                "request.created",
                text,
                json!({"requester": {"id": d["requester"]["id"], "username": d["requester"]["username"]}, "inputs": d["inputs"], "reason": d["reason"], "expires_at": d["expires_at"], "state": d["state"]}),
            )
        }
        AuditKind::Decided => {
            let vote = s(d, &["vote"]);
            let reason = s(d, &["reason"]);
            let text = format!(
                "{} {} {req} ({wf}){}; it is now {}",
                who(&d["principal"]),
                if vote == "deny" { "denied" } else { "approved" },
                if reason.is_empty() { String::new() } else { format!(": \"{reason}\"") },
                s(d, &["state"])
            );
            ("request.decided", text, json!({"by": {"id": d["principal"]["id"], "username": d["principal"]["username"]}, "vote": d["vote"], "reason": d["reason"], "state": d["state"]}))
        }
        AuditKind::ExecutionFinished | AuditKind::Reconciled => {
            let ok = s(d, &["status"]) == "succeeded";
            let summary = if ok { s(d, &["detail", "summary"]).to_string() } else { s(d, &["detail", "error"]).to_string() };
            let note = if entry.kind == AuditKind::Reconciled { " (settled after a restart)" } else { "" };
            let text = format!("{req} ({wf}) {}{note}{}", if ok { "was executed" } else { "failed" }, if summary.is_empty() { String::new() } else { format!(": {summary}") });
            (if ok { "request.executed" } else { "request.failed" }, text, json!({"status": d["status"], "summary": summary, "reconciled": entry.kind == AuditKind::Reconciled}))
        }
        AuditKind::ExecutionRefused => {
            let text = format!("{req} ({wf}) was not executed: {}", s(d, &["problem"]));
            ("request.failed", text, json!({"status": "refused", "summary": d["problem"], "reconciled": false}))
        }
        AuditKind::Expired => ("request.expired", format!("{req} ({wf}) expired without a decision"), json!({})),
        AuditKind::Cancelled => {
            let reason = s(d, &["reason"]);
            let text = format!("{req} ({wf}) was cancelled by {}{}", entry.actor, if reason.is_empty() { String::new() } else { format!(": \"{reason}\"") });
            ("request.cancelled", text, json!({"reason": d["reason"]}))
        }
        AuditKind::GrantRevoked => {
            let text = format!(
                "grant {} ended: {} {} lost {} role {}{} ({}, by {} via {})",
                s(d, &["grant"]),
                s(d, &["subject_kind"]),
                s(d, &["subject"]),
                s(d, &["kind"]),
                s(d, &["role"]),
                if s(d, &["scope"]).is_empty() { String::new() } else { format!(" in {}", s(d, &["scope"])) },
                s(d, &["how"]).replace('_', " "),
                s(d, &["revoked_by"]),
                s(d, &["process"])
            );
            ("grant.revoked", text, grant_data(d))
        }
        AuditKind::GrantOverdue => {
            let text = format!(
                "grant {} ({} {}, {} role {}) is overdue: it could not be revoked ({}); retrying at {}",
                s(d, &["grant"]),
                s(d, &["subject_kind"]),
                s(d, &["subject"]),
                s(d, &["kind"]),
                s(d, &["role"]),
                s(d, &["error"]),
                s(d, &["next_attempt_at"])
            );
            ("grant.overdue", text, grant_data(d))
        }
        AuditKind::GrantEndedEarly => {
            let text = format!("grant {} ({} {}, role {}) was ended early by {}", s(d, &["grant"]), s(d, &["subject_kind"]), s(d, &["subject"]), s(d, &["role"]), s(d, &["ended_by"]));
            ("grant.ended_early", text, grant_data(d))
        }
        _ => return None,
    };
    Some(json!({
        "event": name, "text": slack_escape(&text), "request": req, "workflow": wf, "actor": entry.actor,
        "at": entry.at.to_rfc3339(), "seq": entry.seq, "data": extra,
        // The audit head after this event: a receiver that keeps it holds an anchor outside the store, which
        // `rancherctl approvals audit --verify --expect-head SEQ:HASH` checks the log against.
        "audit_head": format!("{}:{}", entry.seq, entry.hash),
    }))
}

/// What a grant event carries: the grant's facts as audited (ids, role, times; never a token).
fn grant_data(d: &Value) -> Value {
    let keys = ["grant", "kind", "binding", "namespace", "scope", "subject_kind", "subject", "role", "requested_by", "approved_by", "granted_at", "due_at", "revoked_at", "revoked_by", "process", "how", "note", "error", "next_attempt_at", "ended_by"];
    Value::Object(keys.iter().filter_map(|k| d.get(*k).filter(|v| !v.is_null()).map(|v| (k.to_string(), v.clone()))).collect())
}

/// The store key of a webhook's cursor: a hash of its URL (URLs may hold a secret path).
fn sink_name(u: &Url) -> String {
    format!("webhook:{}", &hex::encode(Sha256::digest(u.as_str().as_bytes()))[..32])
}

fn http_client(config: &ServerConfig) -> reqwest::Client {
    let mut b = reqwest::Client::builder().use_rustls_tls().timeout(Duration::from_secs(10)).redirect(reqwest::redirect::Policy::none());
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        if let Ok(cert) = reqwest::Certificate::from_der(&c) {
            b = b.add_root_certificate(cert);
        }
    }
    if let Some(pem) = &config.webhook_ca_pem {
        if let Ok(certs) = reqwest::Certificate::from_pem_bundle(pem) {
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
    }
    b.build().unwrap_or_default()
}

/// One deliverer per webhook URL, until `stop`.
pub(crate) async fn deliver_loop(app: Arc<App>, config: ServerConfig, stop: watch::Receiver<bool>) {
    let Some(secret) = config.webhook_secret.clone() else { return };
    let client = http_client(&config);
    let mut tasks = Vec::new();
    for url in config.webhooks.clone() {
        tasks.push(tokio::spawn(deliver_to(app.clone(), client.clone(), url, secret.clone(), config.webhook_backoff, config.webhook_max_backoff, stop.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn deliver_to(app: Arc<App>, client: reqwest::Client, url: Url, secret: SecretString, first: Duration, max: Duration, mut stop: watch::Receiver<bool>) {
    let sink = sink_name(&url);
    let shown = redact_url(&url);
    loop {
        if *stop.borrow() {
            return;
        }
        let sink2 = sink.clone();
        let batch = with_store(app.store(), |s| async move {
            let cursor = s.delivery_cursor(&sink2).await?;
            s.audit_after(cursor, 100).await
        })
        .await;
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(webhook = %shown, "cannot read the outbox: {}", e.message);
                Vec::new()
            }
        };
        if batch.is_empty() {
            tokio::select! { _ = stop.changed() => return, _ = tokio::time::sleep(Duration::from_millis(200)) => continue }
        }
        for entry in batch {
            if let Some(event) = event_for(&entry) {
                let body = serde_json::to_vec(&event).unwrap_or_default();
                let signature = sign(&secret, &body);
                let mut delay = first;
                loop {
                    let sent = client
                        .post(url.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .header(SIGNATURE_HEADER, &signature)
                        .header(EVENT_HEADER, event["event"].as_str().unwrap_or(""))
                        .header(DELIVERY_HEADER, entry.seq.to_string())
                        .body(body.clone())
                        .send()
                        .await;
                    let why = match sent {
                        Ok(r) if r.status().is_success() => None,
                        Ok(r) => Some(format!("answered {}", r.status().as_u16())),
                        Err(e) => Some(crate::error::chain(&e.without_url())),
                    };
                    match why {
                        None => {
                            app.metrics.webhook(true);
                            break;
                        }
                        Some(why) => {
                            app.metrics.webhook(false);
                            tracing::warn!(webhook = %shown, seq = entry.seq, "webhook delivery failed ({why}); retrying in {}ms", delay.as_millis());
                            tokio::select! { _ = stop.changed() => return, _ = tokio::time::sleep(delay) => {} }
                            delay = (delay * 2).min(max);
                        }
                    }
                }
            }
            let (sink2, seq) = (sink.clone(), entry.seq);
            if let Err(e) = with_store(app.store(), |s| async move { s.set_delivery_cursor(&sink2, seq).await }).await {
                tracing::warn!(webhook = %shown, "cannot save the delivery cursor: {}", e.message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_differ_by_secret() {
        let a = SecretString::from("0123456789abcdef-one".to_string());
        let b = SecretString::from("0123456789abcdef-two".to_string());
        let sig = sign(&a, b"{\"x\":1}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify(&a, b"{\"x\":1}", &sig));
        assert!(!verify(&b, b"{\"x\":1}", &sig));
        assert!(!verify(&a, b"{\"x\":2}", &sig));
    }

    fn entry(kind: AuditKind, actor: &str, detail: Value) -> AuditEntry {
        AuditEntry {
            seq: 7,
            at: chrono::Utc::now(),
            actor: actor.into(),
            kind,
            request_id: Some("req-x".into()),
            workflow_id: Some("create-global-role-binding".into()),
            detail,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn every_request_change_is_an_event_and_nothing_else_is() {
        let cases = [
            (AuditKind::RequestCreated, json!({"requester": {"id": "u-b", "username": "bob"}, "inputs": {"user": "carol", "role": "admin", "token": "***"}, "reason": "rota", "state": "pending"}), "request.created", "bob asks to run create-global-role-binding (user=carol, role=admin, token=***): \"rota\"; waiting for approval: req-x"),
            (AuditKind::Decided, json!({"principal": {"id": "u-a", "username": "alice"}, "vote": "approve", "reason": null, "state": "approved"}), "request.decided", "alice approved req-x (create-global-role-binding); it is now approved"),
            (AuditKind::Decided, json!({"principal": {"id": "u-a"}, "vote": "deny", "reason": "no", "state": "denied"}), "request.decided", "u-a denied req-x (create-global-role-binding): \"no\"; it is now denied"),
            (AuditKind::ExecutionFinished, json!({"status": "succeeded", "detail": {"summary": "gave u-c admin", "result": {"token": "x"}}}), "request.executed", "req-x (create-global-role-binding) was executed: gave u-c admin"),
            (AuditKind::ExecutionFinished, json!({"status": "failed", "detail": {"error": "Rancher refused"}}), "request.failed", "req-x (create-global-role-binding) failed: Rancher refused"),
            (AuditKind::Reconciled, json!({"status": "succeeded", "detail": {}}), "request.executed", "req-x (create-global-role-binding) was executed (settled after a restart)"),
            (AuditKind::ExecutionRefused, json!({"problem": "content changed"}), "request.failed", "req-x (create-global-role-binding) was not executed: content changed"),
            (AuditKind::Expired, json!({}), "request.expired", "req-x (create-global-role-binding) expired without a decision"),
            (AuditKind::Cancelled, json!({"by": "u-b", "reason": "typo"}), "request.cancelled", "req-x (create-global-role-binding) was cancelled by u-b: \"typo\""),
        ];
        for (kind, detail, name, text) in cases {
            let actor = if kind == AuditKind::Cancelled { "u-b" } else { "u-a" };
            let e = event_for(&entry(kind, actor, detail)).expect("an event");
            assert_eq!((e["event"].as_str(), e["text"].as_str()), (Some(name), Some(text)), "{kind:?}");
            assert_eq!(e["seq"], 7);
            assert!(!e.to_string().contains("\"result\""), "no full result in an event");
        }
        for kind in [AuditKind::Installed, AuditKind::PolicyChanged, AuditKind::ExecutionClaimed, AuditKind::ExecutionTakenOver] {
            assert!(event_for(&entry(kind, "u-a", json!({}))).is_none(), "{kind:?}");
        }
    }

    #[test]
    fn text_is_escaped_for_chat() {
        assert_eq!(slack_escape("<!channel> & <http://x|y>"), "&lt;!channel&gt; &amp; &lt;http://x|y&gt;");
    }
}
