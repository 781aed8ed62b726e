//! Slack: approval requests posted as Block Kit messages with Approve and Deny buttons, decisions taken from
//! those buttons, reminders and escalations as direct messages.
//!
//! Posting goes through the outbox ([`crate::outbox`]): the Slack deliverer reads the audit log after its cursor
//! and, for each request event, posts the message (`chat.postMessage`), updates it in place with the request's new
//! state (`chat.update`) or sends the reminders. A failing Slack call is retried with backoff and dead-lettered
//! like a webhook event; it never holds up the webhooks or Teams.
//!
//! A click arrives at `POST /slack/interactions`. It is taken only when Slack's `v0` signature verifies over
//! `v0:{timestamp}:{body}` with the app's signing secret and the timestamp is within five minutes of now (else
//! 401); a payload seen before is dropped (its action is remembered in the store for the replay window). The
//! clicker's Slack user is mapped to a Rancher user (the mapping file, else the Slack profile's email through
//! Rancher's principal search), checked with Rancher as the page checks a person, and the decision is recorded as
//! that principal with `via: slack`. Anyone the policy does not let decide (the requester above all) gets an
//! ephemeral refusal and nothing is recorded. When the policy wants a reviewer's reason, the click opens a modal
//! (`views.open`) and the decision is taken from its submission.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use rancher_approval::audit::Reminded;
use rancher_approval::{
    ApprovalRequest, AuditDetail, AuditEntry, ChatDecisions, Decision, Principal, RequestId, RequestState, Rule, Vote,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::Sha256;
use url::Url;

use crate::app::{with_store, App};
pub use crate::config::{read_user_map, SlackConfig};
use crate::error::ApiError;
use crate::identity::Person;
use crate::outbox::{Failure, Sink};
use crate::webhooks::chat;

/// How far a Slack request's timestamp may be from now, either way (Slack's own advice: five minutes).
pub const SLACK_WINDOW_SECS: i64 = 300;
/// The store namespace of the messages posted for a request (`channel` and `ts` of each).
const MESSAGES_NS: &str = "slack-message";
/// The store namespace of the interactions seen (replay protection).
const SEEN_NS: &str = "slack-seen";
/// Where Slack's Web API is, unless configured otherwise.
pub const DEFAULT_API_URL: &str = crate::config::SLACK_API_URL;
/// The value `via` takes in the audit entry of a decision made in Slack.
pub const VIA: &str = "slack";
/// The outbox sink name (its cursor and lease in the store).
const SINK: &str = "chat:slack";

fn mac(secret: &SecretString, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// Slack's signature of `body` sent at `timestamp` (unix seconds): `v0=<hex of HMAC-SHA256(secret,
/// "v0:{timestamp}:{body}")>` (for tests and test doubles).
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v0={}",
        hex::encode(mac(secret, &timestamp.to_string(), body).finalize().into_bytes())
    )
}

/// Whether a request from Slack is genuine: `signature` (`X-Slack-Signature`) is the `v0` HMAC of the body at
/// `timestamp` (`X-Slack-Request-Timestamp`), and that timestamp is within [`SLACK_WINDOW_SECS`] of `now`.
pub fn verify(secret: &SecretString, timestamp: &str, signature: &str, body: &[u8], now: i64) -> bool {
    let Ok(t) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    if now.abs_diff(t) > SLACK_WINDOW_SECS.unsigned_abs() {
        return false;
    }
    let Some(sig) = signature.trim().strip_prefix("v0=").and_then(|h| hex::decode(h).ok()) else {
        return false;
    };
    mac(secret, timestamp.trim(), body).verify_slice(&sig).is_ok()
}

/// The plan of a request as a chat message says it: who asked and the plan in the names pinned at filing (with
/// any look-alike warning), or for a request filed without names the workflow and its inputs; every part escaped
/// for chat. What the service filled in at submit is counted, not listed (a channel's members are not all
/// approvers).
pub(crate) fn chat_plan_text(req: &ApprovalRequest) -> String {
    let inputs = crate::app::withheld_inputs(&req.workflow_id, &req.inputs);
    let mut parts = Vec::new();
    if let Some(m) = inputs.as_object() {
        for (k, v) in m {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Object(o) if o.contains_key("count") => format!("({} items)", o["count"]),
                other => other.to_string(),
            };
            parts.push(format!("{}={}", chat(k, 40), chat(&v, 80)));
        }
    }
    let requester = req.requester.username.as_deref().unwrap_or(&req.requester.id);
    // A request filed with pinned names says its plan in them: what the approver reads is what runs.
    if !req.names.is_empty() {
        let mut text = format!(
            "{} asks: {}",
            chat(requester, 64),
            chat(&rancher_workflows::names::plan_of(req), 600)
        );
        if let Some(r) = req.reason.as_deref().filter(|r| !r.trim().is_empty()) {
            text.push_str(&format!(": \"{}\"", chat(r, 200)));
        }
        for w in rancher_workflows::names::warnings(&req.names) {
            text.push_str(&format!("\nWarning: {}", chat(&w, 300)));
        }
        return text;
    }
    let mut text = format!("{} asks to run {}", chat(requester, 64), chat(&req.workflow_id, 80));
    if !parts.is_empty() {
        let mut joined = String::new();
        for p in parts {
            if joined.chars().count() + p.chars().count() > 600 {
                joined.push_str(", …");
                break;
            }
            if !joined.is_empty() {
                joined.push_str(", ");
            }
            joined.push_str(&p);
        }
        text.push_str(&format!(" ({joined})"));
    }
    if let Some(r) = req.reason.as_deref().filter(|r| !r.trim().is_empty()) {
        text.push_str(&format!(": \"{}\"", chat(r, 200)));
    }
    text
}

/// Roles whose grant is admin-level: chat decisions default to `link_only` for them.
const ADMIN_ROLES: &[&str] = &["admin", "restricted-admin", "cluster-owner", "project-owner"];

/// Whether a request's buttons may decide in chat: the policy's `chat_decisions`, else `link_only` for an
/// admin-level grant (an admin role, or a role the filing found able to grant roles) and `allow` otherwise.
pub(crate) fn chat_decisions(req: &ApprovalRequest) -> ChatDecisions {
    if let Some(d) = req.policy.options.chat_decisions {
        return d;
    }
    let role_is_admin = ["role", "global-role", "role-template"]
        .iter()
        .filter_map(|k| req.inputs.get(*k).and_then(Value::as_str))
        .any(|r| ADMIN_ROLES.contains(&r));
    let grants_roles = req.inputs.get(rancher_workflows::grants::GRANTS_ROLES.name).is_some();
    if role_is_admin || grants_roles {
        ChatDecisions::LinkOnly
    } else {
        ChatDecisions::Allow
    }
}

/// The characters a request id keeps in a link (ids are letters, digits and dashes; anything else is encoded).
const ID_IN_PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_');

/// The link to a request's page.
pub(crate) fn page_url(base: &Url, id: &str) -> String {
    base.join(&format!(
        "requests/{}",
        percent_encoding::utf8_percent_encode(id, ID_IN_PATH)
    ))
    .map(|u| u.to_string())
    .unwrap_or_else(|_| base.to_string())
}

fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": text})
}

/// The Block Kit message of a request as it stands: the plan, the state, and while it is pending the Approve and
/// Deny buttons (values `approve:{id}:{content hash}`), or links to the page under `link_only`; afterwards a link
/// to the page only.
pub(crate) fn message_blocks(req: &ApprovalRequest, base: &Url) -> Value {
    let id = req.id.as_str();
    let url = page_url(base, id);
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Approval request* {}\n{}", chat(id, 80), chat_plan_text(req))}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("Status: *{}* · policy: {}", req.state.as_str(), chat(&req.policy.to_string(), 300))}]}),
    ];
    let buttons = if req.state == RequestState::Pending && chat_decisions(req) == ChatDecisions::Allow {
        json!([
            {"type": "button", "action_id": "approve", "style": "primary", "text": plain("Approve"), "value": format!("approve:{id}:{}", req.content_hash)},
            {"type": "button", "action_id": "deny", "style": "danger", "text": plain("Deny"), "value": format!("deny:{id}:{}", req.content_hash)},
        ])
    } else if req.state == RequestState::Pending {
        json!([
            {"type": "button", "action_id": "open-approve", "style": "primary", "text": plain("Approve on the page"), "url": url},
            {"type": "button", "action_id": "open-deny", "text": plain("Deny on the page"), "url": url},
        ])
    } else {
        json!([{"type": "button", "action_id": "open", "text": plain("Open the request"), "url": url}])
    };
    blocks.push(json!({"type": "actions", "block_id": "decide", "elements": buttons}));
    json!(blocks)
}

/// The fallback text of a request's message (notifications, screen readers).
fn message_text(req: &ApprovalRequest) -> String {
    format!(
        "Approval request {} is {}: {}",
        chat(req.id.as_str(), 80),
        req.state.as_str(),
        chat_plan_text(req)
    )
}

/// A call to Slack's Web API.
#[derive(Clone)]
pub(crate) struct SlackApi {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
}

impl SlackApi {
    pub(crate) fn new(http: reqwest::Client, config: &SlackConfig) -> Self {
        SlackApi {
            http,
            base: config.api_url.clone(),
            token: config.bot_token.clone(),
        }
    }

    /// Calls `method` with a JSON body; Slack answers 200 with `ok: false` for what it refuses.
    pub(crate) async fn web_api(&self, method: &str, body: &Value) -> Result<Value, Failure> {
        let url = self
            .base
            .join(method)
            .map_err(|e| Failure::refused(format!("bad Slack API URL: {e}")))?;
        let sent = self
            .http
            .post(url)
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .json(body)
            .send()
            .await
            .map_err(|e| Failure::retry(format!("Slack {method}: {}", crate::error::chain(&e.without_url()))))?;
        let status = sent.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(Failure::retry(format!("Slack {method} answered {status}")));
        }
        let v: Value = sent
            .json()
            .await
            .map_err(|e| Failure::retry(format!("Slack {method} answered no JSON: {e}")))?;
        if v["ok"] == json!(true) {
            return Ok(v);
        }
        let error = v["error"].as_str().unwrap_or("unknown_error").to_string();
        if status.is_client_error()
            || !matches!(
                error.as_str(),
                "ratelimited" | "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout"
            )
        {
            Err(Failure::refused(format!("Slack {method} refused: {error}")))
        } else {
            Err(Failure::retry(format!("Slack {method} failed: {error}")))
        }
    }
}

/// A message posted for a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Posted {
    channel: String,
    ts: String,
}

/// The Slack side of the service: its configuration, Web API client and the page's base URL.
pub(crate) struct Slack {
    pub(crate) config: SlackConfig,
    pub(crate) api: SlackApi,
    /// The service's URL as people reach it (links to request pages).
    pub(crate) base: Url,
    /// Posts to `response_url` (ephemeral answers).
    http: reqwest::Client,
}

impl Slack {
    pub(crate) fn new(config: SlackConfig, http: reqwest::Client, base: Url) -> Self {
        Slack {
            api: SlackApi::new(http.clone(), &config),
            config,
            base,
            http,
        }
    }

    /// The Slack user a Rancher user is mapped to in the mapping file (direct messages).
    fn slack_user_of(&self, rancher_id: &str) -> Option<&str> {
        self.config
            .users
            .iter()
            .find(|(_, r)| r.as_str() == rancher_id || r.strip_prefix("local://") == Some(rancher_id))
            .map(|(s, _)| s.as_str())
    }

    /// Where a request's message goes: the policy's channel, the default channel, else a direct message to each
    /// approver the mapping names.
    fn destinations(&self, req: &ApprovalRequest, admins: &[String]) -> Vec<String> {
        if let Some(c) = req
            .policy
            .options
            .chat_channel
            .clone()
            .or_else(|| self.config.channel.clone())
        {
            return vec![c];
        }
        crate::reminders::approver_ids(req, admins)
            .iter()
            .filter_map(|id| self.slack_user_of(id).map(str::to_string))
            .collect()
    }
}

impl Sink for Slack {
    fn name(&self) -> String {
        SINK.into()
    }

    fn shown(&self) -> String {
        "slack".into()
    }

    fn handle<'a>(
        &'a self,
        app: &'a Arc<App>,
        entry: &'a AuditEntry,
    ) -> futures::future::BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let Some(id) = entry.request_id.clone() else {
                return Ok(());
            };
            match entry.details() {
                AuditDetail::RequestCreated(_) => self.post_request(app, &id).await,
                AuditDetail::Decided(_)
                | AuditDetail::ExecutionFinished(_)
                | AuditDetail::Reconciled(_)
                | AuditDetail::ExecutionRefused(_)
                | AuditDetail::Expired(_)
                | AuditDetail::Cancelled(_) => self.update_request(app, &id).await,
                AuditDetail::Reminded(r) => self.remind(app, &id, &r).await,
                _ => Ok(()),
            }
        })
    }
}

async fn load(app: &App, id: &str) -> Result<Option<ApprovalRequest>, Failure> {
    let Ok(rid) = id.parse::<RequestId>() else {
        return Ok(None);
    };
    match with_store(app.store(), |s| async move { s.get_request(&rid).await }).await {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.status == StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(Failure::retry(format!("cannot read request {id}: {}", e.message))),
    }
}

async fn posted(app: &App, id: &str) -> Result<Vec<Posted>, Failure> {
    let key = id.to_string();
    let v = with_store(app.store(), |s| async move {
        s.state_get(MESSAGES_NS, &key, chrono::Utc::now()).await
    })
    .await
    .map_err(|e| Failure::retry(format!("cannot read the Slack messages of {id}: {}", e.message)))?;
    Ok(v.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default())
}

impl Slack {
    /// Posts a pending request's message (once: a retry after a post that was made does not post again).
    async fn post_request(&self, app: &Arc<App>, id: &str) -> Result<(), Failure> {
        let Some(req) = load(app, id).await? else { return Ok(()) };
        if req.state != RequestState::Pending || req.policy.rule == Rule::None {
            return Ok(());
        }
        let mut done = posted(app, id).await?;
        let admins = app.admin_ids().await;
        let blocks = message_blocks(&req, &self.base);
        let text = message_text(&req);
        for channel in self.destinations(&req, &admins) {
            if done.iter().any(|p| p.channel == channel) {
                continue;
            }
            let answer = self
                .api
                .web_api(
                    "chat.postMessage",
                    &json!({"channel": channel, "text": text, "blocks": blocks}),
                )
                .await?;
            done.push(Posted {
                channel: answer["channel"].as_str().unwrap_or(&channel).to_string(),
                ts: answer["ts"].as_str().unwrap_or_default().to_string(),
            });
            // Kept after each post, so a failure on the next destination does not post this one twice.
            let (key, value) = (id.to_string(), serde_json::to_string(&done).unwrap_or_default());
            let keep = req.expires_at + chrono::Duration::days(30);
            with_store(app.store(), |s| async move {
                s.state_put(MESSAGES_NS, &key, &value, Some(keep)).await
            })
            .await
            .map_err(|e| Failure::retry(format!("cannot keep the Slack message of {id}: {}", e.message)))?;
        }
        Ok(())
    }

    /// Shows a request's new state in every message posted for it.
    async fn update_request(&self, app: &Arc<App>, id: &str) -> Result<(), Failure> {
        let messages = posted(app, id).await?;
        if messages.is_empty() {
            return Ok(());
        }
        let Some(req) = load(app, id).await? else { return Ok(()) };
        let blocks = message_blocks(&req, &self.base);
        let text = message_text(&req);
        for m in messages {
            self.api
                .web_api(
                    "chat.update",
                    &json!({"channel": m.channel, "ts": m.ts, "text": text, "blocks": blocks}),
                )
                .await?;
        }
        Ok(())
    }

    /// Sends a reminder (or an escalation) to each approver it names who has a Slack user, as a direct message;
    /// in the request's channel too when it has one and nobody could be reached directly.
    async fn remind(&self, app: &Arc<App>, id: &str, r: &Reminded) -> Result<(), Failure> {
        let Some(req) = load(app, id).await? else { return Ok(()) };
        if req.state != RequestState::Pending {
            return Ok(());
        }
        let what = if r.escalation {
            "needs a decision and its approvers have not decided: you are asked as a fallback approver"
        } else {
            "is still waiting for your decision"
        };
        let text = format!(
            "Approval request {} {what} ({} ago): {}",
            chat(id, 80),
            crate::reminders::human(r.waited_secs),
            chat_plan_text(&req)
        );
        let blocks = message_blocks(&req, &self.base);
        let mut reached = 0;
        // One direct message per approver; the store remembers who got one, so a retry does not repeat it.
        let key = format!("{id}:{}", if r.escalation { "escalation" } else { "reminder" });
        let sent_key = key.clone();
        let already: Vec<String> = with_store(app.store(), |s| async move {
            s.state_get(SEEN_NS, &sent_key, chrono::Utc::now()).await
        })
        .await
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
        let mut sent = already.clone();
        for approver in &r.approvers {
            let Some(user) = self.slack_user_of(approver) else {
                continue;
            };
            reached += 1;
            if sent.iter().any(|s| s == user) {
                continue;
            }
            self.api
                .web_api(
                    "chat.postMessage",
                    &json!({"channel": user, "text": text, "blocks": blocks}),
                )
                .await?;
            sent.push(user.to_string());
            let (k, v) = (key.clone(), serde_json::to_string(&sent).unwrap_or_default());
            let keep = req.expires_at + chrono::Duration::days(1);
            let _ = with_store(app.store(), |s| async move {
                s.state_put(SEEN_NS, &k, &v, Some(keep)).await
            })
            .await;
        }
        if reached == 0 {
            if let Some(m) = posted(app, id).await?.into_iter().next() {
                self.api
                    .web_api(
                        "chat.postMessage",
                        &json!({"channel": m.channel, "thread_ts": m.ts, "text": text}),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// The routes Slack calls (none without Slack: `/slack/interactions` is then unknown).
pub(crate) fn router(slack: Option<Arc<Slack>>) -> Router<Arc<App>> {
    let Some(slack) = slack else { return Router::new() };
    Router::new().route(
        "/slack/interactions",
        post(move |State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes| {
            interactions(app, slack.clone(), headers, body)
        }),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// `POST /slack/interactions`: a button click (`block_actions`) or a reason modal's submission
/// (`view_submission`), signed by Slack.
async fn interactions(app: Arc<App>, slack: Arc<Slack>, headers: HeaderMap, body: Bytes) -> Response {
    let now = (app.clock)().timestamp();
    if !verify(
        &slack.config.signing_secret,
        header(&headers, "x-slack-request-timestamp"),
        header(&headers, "x-slack-signature"),
        &body,
        now,
    ) {
        return (
            StatusCode::UNAUTHORIZED,
            "the Slack signature does not verify, or its timestamp is more than five minutes from now",
        )
            .into_response();
    }
    let payload = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str::<Value>(&v).ok());
    let Some(payload) = payload else {
        return (StatusCode::BAD_REQUEST, "no `payload` form field holding JSON").into_response();
    };
    // A payload seen before (a replay within the window) does nothing. Taken with one atomic insert-if-absent in
    // the store, so a payload delivered to several replicas at once is handled by exactly one of them.
    let seen = replay_key(&payload);
    let Some(seen) = seen else {
        return StatusCode::OK.into_response();
    };
    let fresh = {
        let key = seen.clone();
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::seconds(4 * SLACK_WINDOW_SECS);
        with_store(app.store(), |s| async move {
            s.state_put_new(SEEN_NS, &key, "1", Some(until), now).await
        })
        .await
    };
    match fresh {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!("a Slack interaction was replayed; ignored");
            return StatusCode::OK.into_response();
        }
        Err(e) => return e.into_response(),
    }
    match payload["type"].as_str() {
        Some("block_actions") => {
            let app2 = app.clone();
            // Slack wants an answer within three seconds; the decision (and an execution) may take longer.
            let guard = app.inflight.enter();
            tokio::spawn(async move {
                let _guard = guard;
                block_action(&app2, &slack, &payload).await;
            });
            StatusCode::OK.into_response()
        }
        Some("view_submission") => view_submission(&app, &slack, &payload).await,
        _ => StatusCode::OK.into_response(),
    }
}

/// What makes an interaction unique: the action's timestamp and the clicker, or the submitted view.
fn replay_key(p: &Value) -> Option<String> {
    let user = p["user"]["id"].as_str().unwrap_or("");
    match p["type"].as_str() {
        Some("block_actions") => {
            let a = &p["actions"][0];
            let ts = a["action_ts"].as_str()?;
            Some(format!("action:{user}:{ts}:{}", a["action_id"].as_str().unwrap_or("")))
        }
        Some("view_submission") => Some(format!(
            "view:{user}:{}:{}",
            p["view"]["id"].as_str()?,
            p["view"]["hash"].as_str().unwrap_or("")
        )),
        _ => None,
    }
}

/// `approve:{id}:{hash}` or `deny:{id}:{hash}`.
fn parse_value(v: &str) -> Option<(bool, String, String)> {
    let mut it = v.splitn(3, ':');
    let vote = match it.next()? {
        "approve" => true,
        "deny" => false,
        _ => return None,
    };
    let id = it.next()?.to_string();
    let hash = it.next()?.to_string();
    (!id.is_empty() && !hash.is_empty()).then_some((vote, id, hash))
}

/// Answers the clicker alone, through the payload's `response_url` (HTTPS, or HTTP on loopback).
async fn ephemeral(slack: &Slack, payload: &Value, text: &str) {
    let Some(url) = payload["response_url"].as_str().and_then(|u| Url::parse(u).ok()) else {
        return;
    };
    if crate::config::check_webhook_url(&url).is_err() {
        tracing::warn!("a Slack response URL that is neither HTTPS nor loopback HTTP; not answered");
        return;
    }
    let body = json!({"response_type": "ephemeral", "replace_original": false, "text": text});
    if let Err(e) = slack.http.post(url).json(&body).send().await {
        tracing::warn!("could not answer in Slack: {}", crate::error::chain(&e.without_url()));
    }
}

/// The Rancher person behind a Slack user: the mapping file, else the Slack profile's email looked up with
/// Rancher's principal search; checked with the service account (the user exists and is enabled).
async fn person_of(app: &App, slack: &Slack, slack_user: &str) -> Result<Person, String> {
    let rancher_id = match slack.config.users.get(slack_user) {
        Some(id) => id.strip_prefix("local://").unwrap_or(id).to_string(),
        None => by_email(app, slack, slack_user).await?,
    };
    let user = app
        .service
        .client
        .send(&rancher_api::requests::V3UsersGet::new(rancher_id.clone()))
        .await
        .map_err(|e| {
            if e.status() == Some(404) {
                format!("your Slack user is mapped to the Rancher user {rancher_id}, which does not exist")
            } else {
                format!(
                    "could not check your Rancher user with the service account: {}",
                    crate::error::chain(&e)
                )
            }
        })?;
    if user.enabled == Some(false) {
        return Err(format!("the Rancher user {rancher_id} is disabled"));
    }
    let mut principal = Principal::new(rancher_id.clone());
    if let Some(u) = user.username.filter(|u| !u.is_empty()) {
        principal = principal.with_username(u);
    }
    if let Some(d) = user.name.filter(|d| !d.is_empty()) {
        principal = principal.with_display_name(d);
    }
    principal.groups = groups_of(app, &rancher_id, user.principal_ids.unwrap_or_default()).await;
    let is_admin = app.admin_ids().await.contains(&rancher_id);
    Ok(Person { principal, is_admin })
}

/// The principals a Slack clicker counts as, since a click carries no Rancher session: the user's own principal
/// ids, then the group principals every auth provider reported at the user's last login or refresh, which Rancher
/// keeps in the user's `UserAttribute` and gives a signed-in session (rancher/rancher
/// pkg/auth/requests/authenticate.go), read here with the service's token. Without that attribute (a user who
/// never signed in through a provider, or a Rancher before 2.8) there are no groups: a policy that names a group
/// then refuses the click, as it would refuse the person on the page without that membership.
async fn groups_of(app: &App, rancher_id: &str, own: Vec<String>) -> Vec<String> {
    let mut groups = own;
    if app.service.is_legacy() {
        return groups;
    }
    match app
        .service
        .client
        .send(&rancher_api::requests::RkUserattributesGet::new(rancher_id))
        .await
    {
        Ok(attr) => {
            for list in attr.group_principals.unwrap_or_default().into_values() {
                for p in list.items.unwrap_or_default() {
                    let id = p
                        .pointer("/metadata/name")
                        .or_else(|| p.get("name"))
                        .and_then(Value::as_str)
                        .filter(|g| !g.is_empty());
                    if let Some(id) = id {
                        if !groups.iter().any(|g| g == id) {
                            groups.push(id.to_string());
                        }
                    }
                }
            }
        }
        Err(e) if e.status() == Some(404) => {}
        Err(e) => tracing::warn!(
            "could not read the groups of Rancher user {rancher_id} for a Slack decision (deciding without them): {}",
            crate::error::chain(&e)
        ),
    }
    groups
}

/// A Slack user's Rancher user id through their profile's email: exactly one Rancher user principal whose login
/// name is that email.
async fn by_email(app: &App, slack: &Slack, slack_user: &str) -> Result<String, String> {
    let unmapped = || {
        "your Slack user is not mapped to a Rancher user: ask the service's admin to add you to the Slack user mapping"
            .to_string()
    };
    let info = slack
        .api
        .web_api("users.info", &json!({"user": slack_user}))
        .await
        .map_err(|_| unmapped())?;
    let Some(email) = info["user"]["profile"]["email"].as_str().filter(|e| e.contains('@')) else {
        return Err(unmapped());
    };
    let body = rancher_api::types::V3PrincipalSearch {
        name: Some(email.to_string()),
        principal_type: Some("user".into()),
        ..Default::default()
    };
    let found = app
        .service
        .client
        .send(&rancher_api::requests::V3PrincipalsSearch::new(body))
        .await
        .map_err(|e| format!("could not search Rancher for your email: {}", crate::error::chain(&e)))?
        .data;
    let exact: Vec<String> = found
        .into_iter()
        .filter(|p| {
            p.login_name.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(email))
                || p.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(email))
        })
        .filter_map(|p| p.id)
        .collect();
    let [principal] = exact.as_slice() else {
        return Err(unmapped());
    };
    if let Some(id) = principal.strip_prefix("local://") {
        return Ok(id.to_string());
    }
    // An external principal: the Rancher user that holds it.
    let users = app
        .service
        .client
        .send(&rancher_api::requests::V3UsersList::new())
        .await
        .map_err(|e| format!("could not list Rancher users: {}", crate::error::chain(&e)))?
        .data;
    users
        .into_iter()
        .find(|u| u.principal_ids.as_ref().is_some_and(|p| p.contains(principal)))
        .and_then(|u| u.id)
        .ok_or_else(unmapped)
}

/// Whether `person` may decide on `req` from Slack: the request takes chat decisions, is pending, and the policy
/// lets this person decide (as the page checks it). The refusal says why.
async fn may_decide_in_chat(app: &App, person: &Person, req: &ApprovalRequest) -> Result<(), String> {
    if chat_decisions(req) == ChatDecisions::LinkOnly {
        return Err(
            "this request is decided on the page only (chat_decisions: link_only); open it from the message".into(),
        );
    }
    let admins = app.admin_ids().await;
    app.may_decide(person, req, &admins)
        .map_err(|why| format!("you cannot decide on this request: {why}"))
}

async fn block_action(app: &Arc<App>, slack: &Slack, payload: &Value) {
    let action = &payload["actions"][0];
    let Some((approve, id, hash)) = action["value"].as_str().and_then(parse_value) else {
        // A link button (open on the page): nothing to do.
        return;
    };
    let user = payload["user"]["id"].as_str().unwrap_or("");
    let person = match person_of(app, slack, user).await {
        Ok(p) => p,
        Err(why) => return ephemeral(slack, payload, &format!("Nothing was recorded: {why}.")).await,
    };
    let req = match load(app, &id).await {
        Ok(Some(r)) => r,
        _ => {
            return ephemeral(
                slack,
                payload,
                "Nothing was recorded: this request is not known to the service.",
            )
            .await
        }
    };
    if let Err(why) = may_decide_in_chat(app, &person, &req).await {
        return ephemeral(slack, payload, &format!("Nothing was recorded: {}.", chat(&why, 300))).await;
    }
    if req.policy.options.require_reviewer_reason {
        let view = json!({
            "type": "modal", "callback_id": "decide-reason",
            "private_metadata": format!("{}:{id}:{hash}", if approve { "approve" } else { "deny" }),
            "title": plain(if approve { "Approve request" } else { "Deny request" }),
            "submit": plain(if approve { "Approve" } else { "Deny" }),
            "close": plain("Cancel"),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": chat_plan_text(&req)}},
                {"type": "input", "block_id": "reason", "label": plain("Reason (required by the policy)"),
                 "element": {"type": "plain_text_input", "action_id": "reason", "multiline": true, "max_length": 1000}},
            ],
        });
        let trigger = payload["trigger_id"].as_str().unwrap_or("");
        if let Err(e) = slack
            .api
            .web_api("views.open", &json!({"trigger_id": trigger, "view": view}))
            .await
        {
            tracing::warn!("could not open the reason dialog in Slack: {}", e.why);
            ephemeral(
                slack,
                payload,
                "Nothing was recorded: the policy asks for a reason and the dialog did not open; decide on the page.",
            )
            .await;
        }
        return;
    }
    match decide(app, &person, &id, approve, None, hash).await {
        Ok(state) => {
            let text = format!(
                "Your {} of {} is recorded (via Slack); the request is now {state}.",
                if approve { "approval" } else { "denial" },
                chat(&id, 80)
            );
            ephemeral(slack, payload, &text).await
        }
        Err(e) => {
            ephemeral(
                slack,
                payload,
                &format!("Nothing was recorded: {}", chat(&e.message, 300)),
            )
            .await
        }
    }
}

/// The reason modal was submitted: decide with its reason; a refusal is shown in the modal.
async fn view_submission(app: &Arc<App>, slack: &Slack, payload: &Value) -> Response {
    let refuse = |why: String| -> Response {
        Json(json!({"response_action": "errors", "errors": {"reason": chat(&why, 150)}})).into_response()
    };
    let Some((approve, id, hash)) = payload["view"]["private_metadata"].as_str().and_then(parse_value) else {
        return StatusCode::OK.into_response();
    };
    let reason = payload["view"]["state"]["values"]["reason"]["reason"]["value"]
        .as_str()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let user = payload["user"]["id"].as_str().unwrap_or("");
    let person = match person_of(app, slack, user).await {
        Ok(p) => p,
        Err(why) => return refuse(why),
    };
    let req = match load(app, &id).await {
        Ok(Some(r)) => r,
        _ => return refuse("this request is not known to the service".into()),
    };
    if let Err(why) = may_decide_in_chat(app, &person, &req).await {
        return refuse(why);
    }
    match decide(app, &person, &id, approve, reason, hash).await {
        Ok(_) => Json(json!({"response_action": "clear"})).into_response(),
        Err(e) => refuse(e.message),
    }
}

/// Records the decision as `person` with `via: slack` on the content they were shown, and executes the request
/// once when this approval approves it (as the page's decision does); answers the request's state afterwards.
async fn decide(
    app: &Arc<App>,
    person: &Person,
    id: &str,
    approve: bool,
    reason: Option<String>,
    reviewed: String,
) -> Result<RequestState, ApiError> {
    let session = person.acting_through(&app.service);
    let mut decision = if approve { Decision::approve() } else { Decision::deny() }
        .reviewed(reviewed)
        .via(VIA);
    if let Some(r) = reason {
        decision = decision.because(r);
    }
    let (app2, id2) = (app.clone(), id.to_string());
    app.detached(async move {
        let vote = decision.vote;
        let started = std::time::Instant::now();
        let done = app2.runner.decide_as(&session, &id2, decision).await?;
        app2.metrics.decision(vote == Vote::Approve);
        if let rancher_workflows::Approved::Succeeded { .. } | rancher_workflows::Approved::Failed { .. } = &done {
            app2.metrics.execution(
                matches!(done, rancher_workflows::Approved::Succeeded { .. }),
                started.elapsed(),
            );
        }
        Ok(app2.runner.get(&id2).await?.state)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_within_five_minutes_only() {
        let s = SecretString::from("8f742231b10e8888abcd99yyyzzz85a5".to_string());
        let t = 1_531_420_618;
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J";
        let sig = sign(&s, t, body);
        assert!(verify(&s, &t.to_string(), &sig, body, t));
        assert!(verify(&s, &t.to_string(), &sig, body, t + SLACK_WINDOW_SECS));
        assert!(!verify(&s, &t.to_string(), &sig, body, t + 360), "six minutes old");
        assert!(
            !verify(&s, &(t + 1).to_string(), &sig, body, t),
            "the timestamp is signed"
        );
        assert!(
            !verify(&s, &t.to_string(), &sig, b"token=other", t),
            "the body is signed"
        );
        let other = SecretString::from("another-secret".to_string());
        assert!(!verify(&other, &t.to_string(), &sig, body, t));
        for bad in ["", "v0=", "v0=zz", "v1=00", &sig[3..]] {
            assert!(!verify(&s, &t.to_string(), bad, body, t), "{bad}");
        }
        assert!(!verify(&s, "", &sig, body, t));
        assert!(!verify(&s, "-9223372036854775808", &sig, body, t));
    }

    #[test]
    fn slacks_documented_example_verifies() {
        // The example of Slack's "Verifying requests from Slack" page.
        let secret = SecretString::from("8f742231b10e8888abcd99yyyzzz85a5".to_string());
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert!(verify(&secret, "1531420618", sig, body, 1_531_420_618));
    }

    fn request(inputs: Value, policy: rancher_approval::Policy) -> ApprovalRequest {
        let mut r: ApprovalRequest = serde_json::from_value(json!({
            "id": "req-01jtest0000000000000000000", "workflow_id": "create-global-role-binding", "inputs": inputs,
            "requester": {"id": "u-req", "username": "*bob*"}, "targets": [], "reason": "<!channel> `x`",
            "policy": policy, "policy_hash": "", "content_hash": "c0ffee", "created_at": "2026-12-07T00:00:00Z",
            "expires_at": "2026-12-14T00:00:00Z", "state": "pending", "decisions": [],
        }))
        .unwrap();
        r.policy_hash = r.policy.hash();
        r
    }

    #[test]
    fn admin_level_grants_are_decided_on_the_page_unless_the_policy_allows_chat() {
        let p = rancher_approval::Policy::at_least(1, [rancher_approval::ApproverRef::user("u-1")]);
        let base = Url::parse("https://approvals.example.com/").unwrap();
        let admin = request(json!({"user": "u-x", "role": "admin"}), p.clone());
        assert_eq!(chat_decisions(&admin), ChatDecisions::LinkOnly);
        let blocks = message_blocks(&admin, &base).to_string();
        assert!(
            !blocks.contains("approve:")
                && blocks.contains("https://approvals.example.com/requests/req-01jtest0000000000000000000"),
            "{blocks}"
        );
        let plain_role = request(json!({"user": "u-x", "role": "user"}), p.clone());
        assert_eq!(chat_decisions(&plain_role), ChatDecisions::Allow);
        assert_eq!(
            buttons_of(&message_blocks(&plain_role, &base)),
            vec![
                "approve:req-01jtest0000000000000000000:c0ffee",
                "deny:req-01jtest0000000000000000000:c0ffee"
            ]
        );
        let mut allowed = p.clone();
        allowed.options.chat_decisions = Some(ChatDecisions::Allow);
        assert_eq!(
            chat_decisions(&request(json!({"role": "admin"}), allowed)),
            ChatDecisions::Allow
        );
        let mut link = p;
        link.options.chat_decisions = Some(ChatDecisions::LinkOnly);
        assert_eq!(
            chat_decisions(&request(json!({"role": "user"}), link)),
            ChatDecisions::LinkOnly
        );
    }

    fn buttons_of(blocks: &Value) -> Vec<String> {
        blocks
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["value"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn requester_text_forms_no_mention_link_or_markup_in_the_message() {
        let p = rancher_approval::Policy::at_least(1, [rancher_approval::ApproverRef::user("u-1")]);
        let r = request(json!({"user": "<@U123> *x*", "role": "user"}), p);
        let text = chat_plan_text(&r);
        for bad in ["<@", "<!channel>", "*", "`"] {
            assert!(!text.contains(bad), "{bad} in {text}");
        }
        assert!(
            text.contains("&lt;!channel&gt;") && text.contains("&lt;@U123&gt;"),
            "{text}"
        );
    }

    #[test]
    fn button_values_carry_the_request_and_its_content() {
        assert_eq!(
            parse_value("approve:req-01abc:deadbeef"),
            Some((true, "req-01abc".into(), "deadbeef".into()))
        );
        assert_eq!(
            parse_value("deny:req-01abc:deadbeef"),
            Some((false, "req-01abc".into(), "deadbeef".into()))
        );
        for bad in ["", "approve", "approve:x", "approve::h", "maybe:x:h", "approve:x:"] {
            assert_eq!(parse_value(bad), None, "{bad}");
        }
    }
}
