//! Signed webhooks from a durable outbox. The audit log is the outbox: every state change writes its audit
//! entry in the same transaction, so an event can never be lost between the change and its notice. For each
//! webhook URL a deliverer keeps a cursor in the store (the last audit sequence number handed over), posts the
//! events after it in order, retries with backoff until the receiver answers 2xx, and resumes from the cursor
//! after a restart: delivery is at least once (the `X-Rancher-Access-Delivery` header repeats on a retry, so
//! receivers can drop duplicates).
//!
//! One event never holds up the others for good: an event the receiver refuses (4xx other than 408 and 429) is
//! tried [`ServerConfig::webhook_refused_attempts`] times, one that keeps failing otherwise (network errors, 5xx,
//! 408, 429) is retried for [`ServerConfig::webhook_retry_for`]; then it is dead-lettered (kept in the store under
//! [`DEAD_LETTER_NS`], counted, logged, listed at `GET /api/v1/webhooks/dead-letters`) and delivery moves on.
//! Among replicas on one store, the one holding a URL's lease delivers its events; another takes over when the
//! lease lapses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rancher_approval::audit::{format_time, GrantFacts};
use rancher_approval::{AuditDetail, AuditEntry, OutcomeStatus, Principal, Vote};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use url::Url;

use crate::app::{with_store, App};
use crate::config::{redact_url, ServerConfig};
use crate::event::{self, Event, EventData, EventInputs, EventName, ExecutionStatus, GrantEnd};

/// The signature header: `t=<unix seconds>,v1=<hex of HMAC-SHA256(secret, "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Rancher-Access-Signature";
/// The event name header.
pub const EVENT_HEADER: &str = "X-Rancher-Access-Event";
/// The delivery id header (the audit sequence number; the same on every retry).
pub const DELIVERY_HEADER: &str = "X-Rancher-Access-Delivery";
/// How far a signature's timestamp may be from the receiver's clock, either way, for [`verify`] to accept it:
/// a captured delivery cannot be replayed later than this.
pub const REPLAY_WINDOW_SECS: i64 = 300;
/// The store namespace of dead letters (`Store::state_put`).
pub const DEAD_LETTER_NS: &str = "dead-letter";
/// How long a dead letter is kept.
const DEAD_LETTER_KEEP_DAYS: i64 = 30;
/// The largest event body sent; larger ones lose their inputs first (`"truncated": true`).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// The longest `text`, in characters.
const MAX_TEXT_CHARS: usize = 600;
/// The longest reason quoted in `text`, in characters.
const MAX_REASON_CHARS: usize = 100;

fn mac(secret: &SecretString, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` sent at `t` (unix seconds): `t=<t>,v1=<hex>`, the HMAC-SHA256 of
/// `"<t>.<body>"` under the secret, so the timestamp cannot be changed without breaking it.
pub fn sign(secret: &SecretString, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body).finalize().into_bytes()))
}

/// Checks a signature header against the raw body and the current time (for receivers written in Rust, and the
/// tests): true when one `v1` matches and `t` is within [`REPLAY_WINDOW_SECS`] of now.
pub fn verify(secret: &SecretString, body: &[u8], header: &str) -> bool {
    verify_at(secret, body, header, chrono::Utc::now().timestamp())
}

/// [`verify`] at `now` (unix seconds).
pub fn verify_at(secret: &SecretString, body: &[u8], header: &str, now: i64) -> bool {
    let mut t: Option<i64> = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => t = v.parse().ok(),
            Some(("v1", v)) => sigs.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if now.abs_diff(t) > REPLAY_WINDOW_SECS.unsigned_abs() {
        return false;
    }
    // Several v1 values may come while a secret is rotated; each is checked in constant time.
    sigs.iter().any(|sig| mac(secret, t, body).verify_slice(sig).is_ok())
}

/// Words from a requester, an approver or a server, made safe for one line of chat text: control characters
/// (newlines and tabs included), bidi controls, zero-width and line-separator characters become spaces, runs of
/// space collapse, the result is cut to `max` characters; then `&`, `<`, `>` are escaped (no links or mentions)
/// and Slack's formatting marks, which have no escape character, are replaced by look-alikes that start no
/// formatting and no emoji code (`*` ∗, `_` ˍ, `~` ∼, backtick ˋ, `:` ∶).
pub fn chat(s: &str, max: usize) -> String {
    let mut flat = String::with_capacity(s.len().min(max * 4));
    let mut space = true;
    let mut n = 0;
    let mut cut = false;
    for c in s.chars() {
        let c = if invisible_or_control(c) || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if n == max {
            // Only more words make it a cut; trailing space does not.
            if c != ' ' {
                cut = true;
                break;
            }
            continue;
        }
        flat.push(c);
        n += 1;
    }
    let mut flat = flat.trim_end().to_string();
    if cut {
        flat.push('…');
    }
    let mut out = String::with_capacity(flat.len() + 16);
    for c in flat.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' => out.push('\u{2217}'),
            '_' => out.push('\u{02CD}'),
            '~' => out.push('\u{223C}'),
            '`' => out.push('\u{02CB}'),
            ':' => out.push('\u{2236}'),
            c => out.push(c),
        }
    }
    out
}

/// C0 and C1 controls, DEL, bidi controls, zero-width characters and the Unicode line and paragraph separators.
fn invisible_or_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A principal as `text` names it: the username, or the id without one.
fn who(p: &Principal) -> String {
    let name = p.username.as_deref().filter(|u| !u.is_empty()).unwrap_or(&p.id);
    chat(name, 64)
}

/// A principal as `data` carries it: id and username (`null` when unknown).

/// A reason, quoted on one short line (empty when there is none).
fn quoted_reason(reason: Option<&str>) -> String {
    let reason = reason.unwrap_or("");
    if reason.trim().is_empty() {
        String::new()
    } else {
        format!(": \"{}\"", chat(reason, MAX_REASON_CHARS))
    }
}

/// Inputs whose name starts with `pinned` list what was pinned at submit (token names, file hashes): they are
/// counted, never listed.
fn is_pinned(key: &str) -> bool {
    key.starts_with("pinned")
}

/// Inputs as `k=v, ...`, each value cut short, the pinned lists counted (inputs are stored with secrets redacted
/// already).
fn inputs_text(inputs: &Value) -> String {
    let Some(m) = inputs.as_object() else {
        return String::new();
    };
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| {
            if is_pinned(k) {
                let n = v
                    .as_array()
                    .map(Vec::len)
                    .or_else(|| v.as_object().map(|o| o.len()))
                    .unwrap_or(1);
                return format!("{}=({n} pinned)", chat(k, 40));
            }
            format!(
                "{}={}",
                chat(k, 40),
                chat(&v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()), 40)
            )
        })
        .collect();
    // Cut whole: every part is escaped already, so the cut must not split an escape; cut by parts.
    let mut out = String::new();
    for p in parts {
        if out.chars().count() + p.chars().count() > 240 {
            out.push_str(if out.is_empty() { "…" } else { ", …" });
            break;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&p);
    }
    out
}

/// The inputs as `data` carries them: the pinned lists counted, long values cut.
fn inputs_data(inputs: &Value) -> EventInputs {
    let Some(m) = inputs.as_object() else {
        return EventInputs::Given(inputs.clone().into());
    };
    EventInputs::Given(Value::Object(
        m.iter()
            .map(|(k, v)| {
                let v = if is_pinned(k) {
                    json!({"pinned": v.as_array().map(Vec::len).or_else(|| v.as_object().map(|o| o.len())).unwrap_or(1)})
                } else {
                    match v.as_str() {
                        Some(t) if t.chars().count() > 256 => json!(format!("{}…", t.chars().take(256).collect::<String>())),
                        _ => v.clone(),
                    }
                };
                (k.clone(), v)
            })
            .collect(),
    ).into())
}

/// A reason as `data` carries it: cut to 1,000 characters (`null` when there is none).
fn reason_data(reason: Option<&str>) -> Option<String> {
    match reason {
        Some(t) if t.chars().count() > 1000 => Some(format!("{}…", t.chars().take(1000).collect::<String>())),
        other => other.map(str::to_owned),
    }
}

/// The event for an audit entry, or `None` for entries that are not request events (installs, claims), and for
/// details this build cannot read (a kind a newer build wrote).
/// Events carry names, ids, states and reasons: never a token, a secret input or an execution's full result.
pub fn event_for(entry: &AuditEntry) -> Option<Event> {
    let req = entry.request_id.clone().unwrap_or_default();
    let wf = entry.workflow_id.clone().unwrap_or_default();
    let (name, text, data) = match entry.details() {
        AuditDetail::RequestCreated(d) => {
            // A request filed with pinned names says its plan in them (older ones keep their exact text and data).
            let plan = (!d.names.is_empty())
                .then(|| rancher_workflows::names::plan_sentence(&wf, &d.inputs.clone().into(), &d.names));
            let asks = match &plan {
                Some(p) => format!("asks: {}", chat(p, 400)),
                None => format!("asks to run {wf} ({})", inputs_text(&d.inputs)),
            };
            let text = format!(
                "{} {asks}{}; waiting for approval: {req}",
                who(&d.requester),
                quoted_reason(d.reason.as_deref())
            );
            // Break-glass (permitted by a rule, filed approved): its own event, once, from this one entry.
            let broke = crate::breakglass::rule_of(&d);
            let text = match &broke {
                Some(rule) => crate::breakglass::event_text(&who(&d.requester), &asks, rule, &req, &d, chat),
                None => text,
            };
            (
                if broke.is_some() {
                    EventName::GrantBreakglass
                } else {
                    EventName::RequestCreated
                },
                text,
                EventData::Created(event::Created {
                    requester: (&d.requester).into(),
                    inputs: inputs_data(&d.inputs),
                    reason: reason_data(d.reason.as_deref()),
                    expires_at: format_time(d.expires_at),
                    state: d.state,
                    name_warnings: plan.is_some().then(|| rancher_workflows::names::warnings(&d.names)),
                    names: plan.is_some().then(|| d.names.clone()),
                    plan,
                }),
            )
        }
        AuditDetail::Decided(d) => {
            let text = format!(
                "{} {} {req} ({wf}){}; it is now {}",
                who(&d.principal),
                if d.vote == Vote::Deny { "denied" } else { "approved" },
                quoted_reason(d.reason.as_deref()),
                chat(d.state.as_str(), 120)
            );
            (
                EventName::RequestDecided,
                text,
                EventData::Decided(event::Decided {
                    by: (&d.principal).into(),
                    vote: d.vote,
                    reason: reason_data(d.reason.as_deref()),
                    state: d.state,
                }),
            )
        }
        detail @ (AuditDetail::ExecutionFinished(_) | AuditDetail::Reconciled(_)) => {
            let reconciled = matches!(detail, AuditDetail::Reconciled(_));
            let (AuditDetail::ExecutionFinished(d) | AuditDetail::Reconciled(d)) = detail else {
                unreachable!("matched above")
            };
            let ok = d.status == OutcomeStatus::Succeeded;
            // The outcome's own detail is what the workflow reported: read by name, whatever its shape.
            let summary = d.detail[if ok { "summary" } else { "error" }]
                .as_str()
                .unwrap_or("")
                .to_string();
            let note = if reconciled { " (settled after a restart)" } else { "" };
            let text = format!(
                "{req} ({wf}) {}{note}{}",
                if ok { "was executed" } else { "failed" },
                if summary.is_empty() {
                    String::new()
                } else {
                    format!(": {}", chat(&summary, 200))
                }
            );
            (
                if ok {
                    EventName::RequestExecuted
                } else {
                    EventName::RequestFailed
                },
                text,
                EventData::Finished(event::Finished {
                    status: d.status.into(),
                    summary: reason_data(Some(&summary)),
                    reconciled,
                }),
            )
        }
        AuditDetail::ExecutionRefused(d) => {
            let text = format!("{req} ({wf}) was not executed: {}", chat(&d.problem, 200));
            (
                EventName::RequestFailed,
                text,
                EventData::Finished(event::Finished {
                    status: ExecutionStatus::Refused,
                    summary: reason_data(Some(&d.problem)),
                    reconciled: false,
                }),
            )
        }
        AuditDetail::Expired(_) => (
            EventName::RequestExpired,
            format!("{req} ({wf}) expired without a decision"),
            EventData::Empty {},
        ),
        AuditDetail::Cancelled(d) => {
            let text = format!(
                "{req} ({wf}) was cancelled by {}{}",
                chat(&entry.actor, 64),
                quoted_reason(d.reason.as_deref())
            );
            (
                EventName::RequestCancelled,
                text,
                EventData::Cancelled(event::Cancelled {
                    reason: reason_data(d.reason.as_deref()),
                }),
            )
        }
        AuditDetail::GrantRevoked(d) => {
            let g = &d.facts;
            let text = format!(
                "grant {} ended: {} {} lost {} role {}{} ({}, by {} via {})",
                chat(&g.grant, 120),
                chat(g.subject_kind.as_str(), 120),
                chat(&g.subject, 120),
                chat(g.kind.as_str(), 120),
                chat(&g.role, 120),
                match g.scope.as_deref() {
                    None | Some("") => String::new(),
                    Some(scope) => format!(" in {}", chat(scope, 120)),
                },
                chat(&d.how.as_str().replace('_', " "), 60),
                chat(&d.revoked_by, 120),
                chat(&d.process, 120)
            );
            let end = GrantEnd::Revoked {
                revoked_at: format_time(d.revoked_at),
                revoked_by: d.revoked_by.clone(),
                process: d.process.clone(),
                how: d.how,
                note: d.note.clone(),
            };
            (EventName::GrantRevoked, text, grant_data(g, end))
        }
        AuditDetail::GrantOverdue(d) => {
            let g = &d.facts;
            let text = format!(
                "grant {} ({} {}, {} role {}) is overdue: it could not be revoked ({}); retrying at {}",
                chat(&g.grant, 120),
                chat(g.subject_kind.as_str(), 120),
                chat(&g.subject, 120),
                chat(g.kind.as_str(), 120),
                chat(&g.role, 120),
                chat(d.error.as_deref().unwrap_or(""), 120),
                format_time(d.next_attempt_at)
            );
            let end = GrantEnd::Overdue {
                process: d.process.clone(),
                error: d.error.clone(),
                next_attempt_at: format_time(d.next_attempt_at),
            };
            (EventName::GrantOverdue, text, grant_data(g, end))
        }
        AuditDetail::GrantEndedEarly(d) => {
            let g = &d.facts;
            let text = format!(
                "grant {} ({} {}, role {}) was ended early by {}",
                chat(&g.grant, 120),
                chat(g.subject_kind.as_str(), 120),
                chat(&g.subject, 120),
                chat(&g.role, 120),
                chat(&d.ended_by, 120)
            );
            (
                EventName::GrantEndedEarly,
                text,
                grant_data(
                    g,
                    GrantEnd::EndedEarly {
                        ended_by: d.ended_by.clone(),
                    },
                ),
            )
        }
        AuditDetail::AccessObserved(d) => access_event(&d),
        AuditDetail::Installed(_)
        | AuditDetail::PolicyChanged(_)
        | AuditDetail::ExecutionClaimed(_)
        | AuditDetail::ExecutionTakenOver(_)
        | AuditDetail::DirectWrite(_)
        | AuditDetail::Reminded(_)
        | AuditDetail::Other { .. } => return None,
    };
    // Every part from outside was made safe where it was put in; the whole is cut (on a character boundary; an
    // escape cut in half shows as text, it forms no markup).
    let text = if text.chars().count() > MAX_TEXT_CHARS {
        format!("{}…", text.chars().take(MAX_TEXT_CHARS).collect::<String>())
    } else {
        text
    };
    let mut event = Event {
        event: name,
        text,
        request: req,
        workflow: wf,
        actor: entry.actor.clone(),
        at: entry.at.to_rfc3339(),
        seq: entry.seq,
        data,
        // The audit head after this event: a receiver that keeps it holds an anchor outside the store, which
        // `rancherctl approvals audit --verify --expect-head SEQ:HASH` checks the log against.
        audit_head: format!("{}:{}", entry.seq, entry.hash),
        truncated: false,
    };
    // Receivers refuse large bodies (some near 28 KB): past the cap the inputs go, then the rest of `data`.
    if body_len(&event) > MAX_EVENT_BYTES {
        event.truncated = true;
        if let EventData::Created(created) = &mut event.data {
            created.inputs = EventInputs::Omitted {
                omitted: "too large for a webhook; see the request",
            };
        }
        if body_len(&event) > MAX_EVENT_BYTES {
            event.data = EventData::Empty {};
        }
    }
    Some(event)
}

fn body_len(event: &Event) -> usize {
    serde_json::to_vec(event).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// The event of a binding change the watcher recorded: its name, its line for chat (every part from Rancher made
/// safe), and its data.
fn access_event(d: &rancher_approval::audit::AccessObserved) -> (EventName, String, EventData) {
    use rancher_approval::audit::ObservedChange;
    let named = |id: &Option<String>, name: &Option<String>| match (id, name) {
        (Some(id), Some(name)) => format!("{} [{}]", chat(name, 120), chat(id, 120)),
        (Some(id), None) => chat(id, 120),
        (None, _) => "someone unknown".to_string(),
    };
    let subject = named(&d.subject, &d.subject_name);
    let role = named(&d.role, &d.role_name);
    let scope = d
        .scope
        .as_deref()
        .map(|s| format!(" in {}", chat(s, 120)))
        .unwrap_or_default();
    let by = d
        .creator
        .as_ref()
        .map(|_| format!(" by {}", named(&d.creator, &d.creator_name)))
        .unwrap_or_default();
    let what = format!("{} {}", chat(&d.kind, 60), chat(&d.name, 120));
    let (name, text) = match (d.change, &d.request) {
        (ObservedChange::Created, Some(r)) => (
            EventName::BindingCreated,
            format!(
                "{what} gave {subject} role {role}{scope}, as approved in request {}",
                chat(r, 80)
            ),
        ),
        (ObservedChange::Deleted, Some(r)) => (
            EventName::BindingDeleted,
            format!(
                "{what} ({subject}, role {role}{scope}) was removed for request {}",
                chat(r, 80)
            ),
        ),
        (ObservedChange::Created, None) => (
            EventName::BindingOutOfBand,
            format!(
                "OUT OF BAND: {what} gave {subject} role {role}{scope}{by}, with no approval request{}",
                d.note
                    .as_deref()
                    .map(|n| format!(" ({})", chat(n, 200)))
                    .unwrap_or_default()
            ),
        ),
        (ObservedChange::Deleted, None) => (
            EventName::BindingOutOfBand,
            format!("OUT OF BAND: {what} ({subject}, role {role}{scope}) was removed outside the product"),
        ),
    };
    (name, text, EventData::Access(d.clone()))
}

/// What a grant event carries: the grant's facts as audited (ids, role, times; never a token), then `end` (what
/// the entry adds: who revoked it and how, the error, ...).
fn grant_data(g: &GrantFacts, end: GrantEnd) -> EventData {
    EventData::Grant(event::GrantData {
        grant: g.grant.clone(),
        kind: g.kind,
        binding: g.binding.clone(),
        namespace: g.namespace.clone(),
        scope: g.scope.clone(),
        subject_kind: g.subject_kind,
        subject: g.subject.clone(),
        role: g.role.clone(),
        requested_by: g.requested_by.clone(),
        approved_by: g.approved_by.clone(),
        granted_at: format_time(g.granted_at),
        due_at: format_time(g.due_at),
        end,
    })
}

/// The store key of a webhook's cursor: a hash of its URL (URLs may hold a secret path).
fn sink_name(u: &Url) -> String {
    format!("webhook:{}", &hex::encode(Sha256::digest(u.as_str().as_bytes()))[..32])
}

pub(crate) fn http_client(config: &ServerConfig) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none());
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

/// How long a deliverer's lease on a webhook URL lasts; it is renewed before every post, so a replica that stops
/// (or hangs) hands the URL to another within this time.
const LEASE: Duration = Duration::from_secs(30);
/// How often a replica without the lease checks whether it lapsed.
const LEASE_POLL: Duration = Duration::from_secs(1);

/// What one deliverer needs.
struct Deliverer {
    app: Arc<App>,
    client: reqwest::Client,
    url: Url,
    shown: String,
    sink: String,
    secret: SecretString,
    /// Names this replica's deliverer in the lease (the executor name and a random suffix).
    holder: String,
    first: Duration,
    max: Duration,
    refused_attempts: u32,
    retry_for: Duration,
}

/// How an event's delivery ended.
enum Outcome {
    Delivered,
    /// Given up on: why, how many posts were tried, the last status (if any).
    DeadLetter {
        why: String,
        attempts: u32,
        status: Option<u16>,
    },
    /// The lease was lost (another replica delivers now) or the service stops: the cursor stays.
    Stopped,
}

/// One deliverer per webhook URL, until `stop`.
pub(crate) async fn deliver_loop(app: Arc<App>, config: ServerConfig, stop: watch::Receiver<bool>) {
    let Some(secret) = config.webhook_secret.clone() else {
        return;
    };
    let client = http_client(&config);
    let holder = format!("{}#{:016x}", config.executor, rand::random::<u64>());
    let mut tasks = Vec::new();
    for url in config.webhooks.clone() {
        let d = Deliverer {
            app: app.clone(),
            client: client.clone(),
            shown: redact_url(&url),
            sink: sink_name(&url),
            url,
            secret: secret.clone(),
            holder: holder.clone(),
            first: config.webhook_backoff,
            max: config.webhook_max_backoff,
            refused_attempts: config.webhook_refused_attempts.max(1),
            retry_for: config.webhook_retry_for,
        };
        tasks.push(tokio::spawn(d.run(stop.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
}

impl Deliverer {
    /// Takes or renews this URL's lease; false when another replica holds it (or the store cannot say).
    async fn lease(&self) -> bool {
        let (sink, holder) = (self.sink.clone(), self.holder.clone());
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::from_std(LEASE).unwrap_or_else(|_| chrono::Duration::seconds(30));
        match with_store(self.app.store(), |s| async move {
            s.try_lease(&sink, &holder, until, now).await
        })
        .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(webhook = %self.shown, "cannot take the delivery lease: {}", e.message);
                false
            }
        }
    }

    /// Whether this replica holds the lease, renewing it once a third of it has passed (a write to the store only
    /// every few seconds, not on every poll).
    async fn hold(&self, renewed: &mut Option<Instant>) -> bool {
        if renewed.is_some_and(|t| t.elapsed() < LEASE / 3) {
            return true;
        }
        let held = self.lease().await;
        *renewed = held.then(Instant::now);
        held
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut holding = false;
        let mut renewed: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            let held = self.hold(&mut renewed).await;
            if held != holding {
                tracing::info!(webhook = %self.shown, holder = %self.holder, "{}", if held { "delivering this webhook's events (lease taken)" } else { "another replica delivers this webhook's events" });
                holding = held;
            }
            if !held {
                self.app.metrics.webhook_queue_age(&self.sink, 0);
                tokio::select! { _ = stop.changed() => break, _ = tokio::time::sleep(LEASE_POLL) => continue }
            }
            let sink = self.sink.clone();
            let batch = with_store(self.app.store(), |s| async move {
                let cursor = s.delivery_cursor(&sink).await?;
                s.audit_after(cursor, 100).await
            })
            .await;
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(webhook = %self.shown, "cannot read the outbox: {}", e.message);
                    Vec::new()
                }
            };
            if batch.is_empty() {
                self.app.metrics.webhook_queue_age(&self.sink, 0);
                tokio::select! { _ = stop.changed() => break, _ = tokio::time::sleep(Duration::from_millis(200)) => continue }
            }
            for entry in batch {
                // A long batch outlives a lease: renew it as it goes, and stop if another replica took over.
                if !self.hold(&mut renewed).await {
                    break;
                }
                let waited = (chrono::Utc::now() - entry.at).num_seconds();
                self.app.metrics.webhook_queue_age(&self.sink, waited);
                if let Some(event) = event_for(&entry) {
                    match self.deliver(&entry, &event, &mut stop).await {
                        Outcome::Delivered => {}
                        Outcome::DeadLetter { why, attempts, status } => {
                            self.dead_letter(&entry, &event, &why, attempts, status).await
                        }
                        Outcome::Stopped => {
                            renewed = None;
                            break;
                        }
                    }
                }
                let (sink, seq) = (self.sink.clone(), entry.seq);
                if let Err(e) = with_store(
                    self.app.store(),
                    |s| async move { s.set_delivery_cursor(&sink, seq).await },
                )
                .await
                {
                    tracing::warn!(webhook = %self.shown, "cannot save the delivery cursor: {}", e.message);
                }
            }
        }
        if holding {
            let (sink, holder) = (self.sink.clone(), self.holder.clone());
            let _ = with_store(
                self.app.store(),
                |s| async move { s.release_lease(&sink, &holder).await },
            )
            .await;
        }
    }

    /// Posts one event until the receiver takes it, gives up on it, or the lease or the service ends.
    async fn deliver(&self, entry: &AuditEntry, event: &Event, stop: &mut watch::Receiver<bool>) -> Outcome {
        let body = serde_json::to_vec(event).unwrap_or_default();
        let started = Instant::now();
        let (mut delay, mut attempts, mut refused) = (self.first, 0u32, 0u32);
        loop {
            // Only the lease holder posts: a replica that lost it stops before sending a duplicate.
            if attempts > 0 && !self.lease().await {
                return Outcome::Stopped;
            }
            attempts += 1;
            let sent = self
                .client
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(
                    SIGNATURE_HEADER,
                    sign(&self.secret, chrono::Utc::now().timestamp(), &body),
                )
                .header(EVENT_HEADER, event.event.as_str())
                .header(DELIVERY_HEADER, entry.seq.to_string())
                .body(body.clone())
                .send()
                .await;
            let (why, status) = match sent {
                Ok(r) if r.status().is_success() => {
                    self.app.metrics.webhook(true);
                    return Outcome::Delivered;
                }
                Ok(r) => (format!("answered {}", r.status().as_u16()), Some(r.status().as_u16())),
                Err(e) => (crate::error::chain(&e.without_url()), None),
            };
            self.app.metrics.webhook(false);
            // A 4xx other than 408 (timeout) and 429 (slow down) says this event will never be taken.
            let refusal = status.is_some_and(|c| (400..500).contains(&c) && c != 408 && c != 429);
            if refusal {
                refused += 1;
                if refused >= self.refused_attempts {
                    return Outcome::DeadLetter {
                        why: format!("{why} {refused} times"),
                        attempts,
                        status,
                    };
                }
            } else if started.elapsed() >= self.retry_for {
                return Outcome::DeadLetter {
                    why: format!("{why}; failing for {}s", started.elapsed().as_secs()),
                    attempts,
                    status,
                };
            }
            tracing::warn!(webhook = %self.shown, seq = entry.seq, "webhook delivery failed ({why}); retrying in {}ms", delay.as_millis());
            tokio::select! { _ = stop.changed() => return Outcome::Stopped, _ = tokio::time::sleep(delay) => {} }
            delay = (delay * 2).min(self.max);
        }
    }

    /// Keeps an event given up on in the store (listed at `/api/v1/webhooks/dead-letters`), counts and logs it.
    async fn dead_letter(&self, entry: &AuditEntry, event: &Event, why: &str, attempts: u32, status: Option<u16>) {
        self.app.metrics.webhook_dead_letter();
        tracing::warn!(webhook = %self.shown, seq = entry.seq, event = event.event.as_str(), attempts, "webhook event dead-lettered ({why}); delivering the next events");
        let now = chrono::Utc::now();
        let letter = crate::wire::DeadLetter {
            webhook: self.shown.clone(),
            sink: self.sink.clone(),
            seq: entry.seq,
            event: Some(event.event.as_str().to_string()),
            request: Some(event.request.clone()),
            why: why.to_string(),
            status,
            attempts,
            at: now.to_rfc3339(),
        };
        let key = format!("{}:{:020}", self.sink, entry.seq);
        let expires = now + chrono::Duration::days(DEAD_LETTER_KEEP_DAYS);
        let value = serde_json::to_string(&letter).unwrap_or_default();
        if let Err(e) = with_store(self.app.store(), |s| async move {
            s.state_put(DEAD_LETTER_NS, &key, &value, Some(expires)).await
        })
        .await
        {
            tracing::warn!(webhook = %self.shown, seq = entry.seq, "cannot record the dead letter in the store: {}", e.message);
        }
    }
}

/// Dead letters, oldest first within each webhook: at most `limit`.
pub(crate) async fn dead_letters(
    app: &App,
    limit: usize,
) -> Result<Vec<crate::wire::DeadLetter>, crate::error::ApiError> {
    let now = chrono::Utc::now();
    let rows = with_store(app.store(), |s| async move {
        s.state_list(DEAD_LETTER_NS, now, limit).await
    })
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_str(&v).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rancher_approval::{audit, AuditKind, RequestState};

    /// The event of `entry` as the JSON document receivers get.
    fn event_json(entry: &AuditEntry) -> Option<Value> {
        event_for(entry).map(|e| serde_json::to_value(e).unwrap())
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body_within_a_replay_window() {
        let a = SecretString::from("0123456789abcdef-one".to_string());
        let b = SecretString::from("0123456789abcdef-two".to_string());
        let t = 1_800_000_000;
        let sig = sign(&a, t, b"{\"x\":1}");
        assert!(
            sig.starts_with(&format!("t={t},v1=")) && sig.len() == format!("t={t},v1=").len() + 64,
            "{sig}"
        );
        assert!(verify_at(&a, b"{\"x\":1}", &sig, t));
        assert!(
            verify_at(&a, b"{\"x\":1}", &sig, t + REPLAY_WINDOW_SECS)
                && verify_at(&a, b"{\"x\":1}", &sig, t - REPLAY_WINDOW_SECS)
        );
        assert!(!verify_at(&b, b"{\"x\":1}", &sig, t), "another secret");
        assert!(!verify_at(&a, b"{\"x\":2}", &sig, t), "another body");
        assert!(
            !verify_at(&a, b"{\"x\":1}", &sig, t + REPLAY_WINDOW_SECS + 1),
            "replayed after the window"
        );
        // The timestamp is signed: moving it forward breaks the signature.
        let moved = sig.replacen(&t.to_string(), &(t + 600).to_string(), 1);
        assert!(!verify_at(&a, b"{\"x\":1}", &moved, t + 600));
        // Several v1 values (a secret being rotated): any one that matches.
        let two = format!(
            "{},v1={}",
            sign(&b, t, b"{}"),
            sign(&a, t, b"{}").rsplit("v1=").next().unwrap()
        );
        assert!(verify_at(&a, b"{}", &two, t) && verify_at(&b, b"{}", &two, t));
        for bad in [
            "",
            "sha256=00",
            "t=,v1=00",
            "v1=abc",
            &format!("t={t}"),
            &format!("t={t},v1=zz"),
            "t=-9223372036854775808,v1=00",
            "t=9223372036854775807,v1=00",
        ] {
            assert!(!verify_at(&a, b"{}", bad, t), "{bad}");
        }
        assert!(verify(&a, b"{}", &sign(&a, chrono::Utc::now().timestamp(), b"{}")));
    }

    fn entry(detail: AuditDetail, actor: &str) -> AuditEntry {
        AuditEntry {
            seq: 7,
            at: chrono::Utc::now(),
            actor: actor.into(),
            kind: detail.kind(),
            request_id: Some("req-x".into()),
            workflow_id: Some("create-global-role-binding".into()),
            detail: detail.to_value(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn user(id: &str, username: Option<&str>) -> Principal {
        let p = Principal::new(id);
        match username {
            Some(u) => p.with_username(u),
            None => p,
        }
    }

    fn created(requester: Principal, inputs: Value, reason: &str) -> AuditDetail {
        let policy = rancher_approval::Policy::none();
        AuditDetail::RequestCreated(audit::RequestCreated {
            requester,
            installer: None,
            targets: Vec::new(),
            target_labels: Default::default(),
            names: Default::default(),
            reason: Some(reason.into()),
            server: None,
            inputs,
            policy_hash: policy.hash(),
            policy,
            expires_at: chrono::Utc::now(),
            content_hash: "c0ffee".into(),
            state: RequestState::Pending,
            rules: None,
        })
    }

    fn decided(principal: Principal, vote: Vote, reason: Option<&str>, state: RequestState) -> AuditDetail {
        AuditDetail::Decided(audit::Decided {
            principal,
            vote,
            reason: reason.map(str::to_owned),
            context: Default::default(),
            content_hash: Some("c0ffee".into()),
            server: None,
            state,
            via: None,
        })
    }

    fn finished(status: OutcomeStatus, detail: Value) -> audit::Finished {
        audit::Finished {
            claim_id: "claim-1".into(),
            epoch: 1,
            executor: "rancherctl@host pid 1".into(),
            status,
            detail,
            note: None,
            grant: None,
        }
    }

    fn executor() -> rancher_approval::Executor {
        rancher_approval::Executor::new("u-a", "rancherctl@host pid 1")
    }

    #[test]
    fn every_request_change_is_an_event_and_nothing_else_is() {
        let cases = [
            (created(user("u-b", Some("bob")), json!({"user": "carol", "role": "admin", "token": "***"}), "rota"), "request.created", "bob asks to run create-global-role-binding (user=carol, role=admin, token=\u{2217}\u{2217}\u{2217}): \"rota\"; waiting for approval: req-x"),
            (decided(user("u-a", Some("alice")), Vote::Approve, None, RequestState::Approved), "request.decided", "alice approved req-x (create-global-role-binding); it is now approved"),
            (decided(user("u-a", None), Vote::Deny, Some("no"), RequestState::Denied), "request.decided", "u-a denied req-x (create-global-role-binding): \"no\"; it is now denied"),
            (AuditDetail::ExecutionFinished(finished(OutcomeStatus::Succeeded, json!({"summary": "gave u-c admin", "result": {"token": "x"}}))), "request.executed", "req-x (create-global-role-binding) was executed: gave u-c admin"),
            (AuditDetail::ExecutionFinished(finished(OutcomeStatus::Failed, json!({"error": "Rancher refused"}))), "request.failed", "req-x (create-global-role-binding) failed: Rancher refused"),
            (AuditDetail::Reconciled(audit::Finished { note: Some("binding exists".into()), ..finished(OutcomeStatus::Succeeded, json!({})) }), "request.executed", "req-x (create-global-role-binding) was executed (settled after a restart)"),
            (AuditDetail::ExecutionRefused(audit::ExecutionRefused { executor: executor(), problem: "content changed".into(), state: None, why: None, previous: None }), "request.failed", "req-x (create-global-role-binding) was not executed: content changed"),
            (AuditDetail::Expired(audit::Expired { expires_at: chrono::Utc::now() }), "request.expired", "req-x (create-global-role-binding) expired without a decision"),
            (AuditDetail::Cancelled(audit::Cancelled { by: user("u-b", None), reason: Some("typo".into()) }), "request.cancelled", "req-x (create-global-role-binding) was cancelled by u-b: \"typo\""),
        ];
        for (detail, name, text) in cases {
            let kind = detail.kind();
            let actor = if kind == AuditKind::Cancelled { "u-b" } else { "u-a" };
            let e = event_json(&entry(detail, actor)).expect("an event");
            assert_eq!(
                (e["event"].as_str(), e["text"].as_str()),
                (Some(name), Some(text)),
                "{kind:?}"
            );
            assert_eq!(e["seq"], 7);
            assert!(!e.to_string().contains("\"result\""), "no full result in an event");
        }
        let policy = rancher_approval::Policy::none();
        let previous = audit::PreviousClaim {
            claim_id: "claim-1".into(),
            executor: "rancherctl@host pid 1".into(),
            epoch: 1,
        };
        for detail in [
            AuditDetail::Installed(audit::Installed {
                installer: user("u-a", None),
                policy_hash: policy.hash(),
                policy: policy.clone(),
            }),
            AuditDetail::PolicyChanged(audit::PolicyChanged {
                changed_by: user("u-a", None),
                old_policy_hash: policy.hash(),
                new_policy_hash: policy.hash(),
                old_policy: policy.clone(),
                new_policy: policy.clone(),
            }),
            AuditDetail::ExecutionClaimed(audit::ExecutionClaimed {
                executor: executor(),
                claim_id: "claim-1".into(),
                epoch: 1,
                lease_until: chrono::Utc::now(),
            }),
            AuditDetail::ExecutionTakenOver(audit::TakenOver {
                executor: executor(),
                claim_id: "claim-2".into(),
                epoch: 2,
                why: rancher_approval::Takeover::OwnerGone,
                previous,
            }),
            // A kind a newer build wrote: no event, and no failure.
            AuditDetail::Other {
                kind: AuditKind::from_stored("made_up_later"),
                detail: json!({"reason": "x"}),
            },
        ] {
            let kind = detail.kind();
            assert!(event_json(&entry(detail, "u-a")).is_none(), "{kind:?}");
        }
    }

    #[test]
    fn text_is_escaped_for_chat() {
        assert_eq!(
            chat("<!channel> & <http://x|y>", 100),
            "&lt;!channel&gt; &amp; &lt;http∶//x|y&gt;"
        );
        assert_eq!(
            chat("*bold* _it_ ~del~ `code` :tada:", 100),
            "∗bold∗ ˍitˍ ∼del∼ ˋcodeˋ ∶tada∶"
        );
        assert_eq!(
            chat("a\r\nb\tc\u{0}d\u{85}e\u{2028}f\u{202E}g\u{2066}h\u{200B}i", 100),
            "a b c d e f g h i"
        );
        assert_eq!(chat("  many   spaces \n\n ", 100), "many spaces");
        assert_eq!(chat("abcdef", 3), "abc…");
        assert_eq!(chat("abc   \n", 3), "abc", "trailing space is no cut");
        assert_eq!(
            chat("&&&&", 2),
            "&amp;&amp;…",
            "cut before escaping: an escape is never split"
        );
    }

    #[test]
    fn n9_requester_text_forms_no_extra_line_and_no_markup() {
        // The review's forged line: a reason that would show as a separate, bold "approved" message.
        let reason = format!("routine\n:white_check_mark: *admin approved req-01m9aaaa (create-global-role-binding); it is now approved*\n{}", "x".repeat(30_000));
        let inputs = json!({"user": "u-ntsxv\n*hi*", "role": "user", "pinned-tokens": (0..5000).map(|i| format!("token-{i}")).collect::<Vec<_>>()});
        let e = event_json(&entry(
            created(user("u-b", Some("bob\u{202E}")), inputs, &reason),
            "u-b",
        ))
        .unwrap();
        let text = e["text"].as_str().unwrap();
        assert!(
            !text.chars().any(|c| c.is_control() || invisible_or_control(c)),
            "no newline, control or bidi character: {text:?}"
        );
        for mark in ['*', '_', '~', '`'] {
            assert!(!text.contains(mark), "no formatting mark {mark}: {text}");
        }
        assert!(
            !text.contains(":white_check_mark:") && text.contains("∶whiteˍcheckˍmark∶ ∗admin approved"),
            "{text}"
        );
        assert!(text.chars().count() <= MAX_TEXT_CHARS + 1, "{}", text.chars().count());
        assert!(
            !text.contains("token-0") && text.contains("pinned-tokens=(5000 pinned)"),
            "pinned lists are counted, not listed: {text}"
        );
        let quoted = text.split('"').nth(1).unwrap();
        assert!(
            quoted.chars().count() <= MAX_REASON_CHARS + 1 && quoted.ends_with('…'),
            "the reason is cut to one short line: {quoted}"
        );
        // The whole body stays under the cap, whatever the reason and the inputs.
        let body = serde_json::to_vec(&e).unwrap();
        assert!(body.len() <= MAX_EVENT_BYTES, "{}", body.len());
        assert_eq!(e["data"]["inputs"]["pinned-tokens"], json!({"pinned": 5000}));
    }

    #[test]
    fn n8_large_events_are_cut_to_the_body_cap() {
        let inputs: serde_json::Map<String, Value> = (0..400)
            .map(|i| (format!("field-{i}"), json!("v".repeat(300))))
            .collect();
        let e = event_json(&entry(
            created(user("u-b", None), Value::Object(inputs), &"r".repeat(60_000)),
            "u-b",
        ))
        .unwrap();
        assert!(serde_json::to_vec(&e).unwrap().len() <= MAX_EVENT_BYTES);
        assert_eq!(e["truncated"], true);
        assert_eq!(e["event"], "request.created");
        assert!(
            e["text"].as_str().unwrap().contains("waiting for approval") || e["text"].as_str().unwrap().ends_with('…')
        );
    }

    /// The events of every entry in the audit chain pinned by rancher-approval (all kinds, written by the store),
    /// as the webhooks sent them before audit details were typed: the bodies must not change.
    #[test]
    fn the_pinned_chain_gives_the_same_events() {
        let events = pinned_events();
        let expected = std::fs::read_to_string(EVENTS_FIXTURE).unwrap_or_else(|e| panic!("{EVENTS_FIXTURE}: {e}"));
        let expected: Vec<Value> = expected.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events.len(), expected.len());
        for (now, then) in events.iter().zip(&expected) {
            assert_eq!(now.to_string(), then.to_string());
        }
        assert!(
            expected.iter().filter(|e| !e.is_null()).count() >= 20,
            "most entries are events"
        );
    }

    const EVENTS_FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/audit-chain-v1.events.jsonl"
    );

    /// One line per pinned entry: its event, or `null` for an entry that is no event.
    fn pinned_events() -> Vec<Value> {
        let chain = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../rancher-approval/tests/fixtures/audit-chain-v1.jsonl"
        );
        std::fs::read_to_string(chain)
            .unwrap()
            .lines()
            .map(|l| event_json(&serde_json::from_str::<AuditEntry>(l).unwrap()).unwrap_or(Value::Null))
            .collect()
    }

    /// Writes the events fixture with the current code. Run it only to pin new event bodies on purpose.
    #[test]
    #[ignore = "writes tests/fixtures/audit-chain-v1.events.jsonl"]
    fn write_the_events_fixture() {
        let lines: Vec<String> = pinned_events().iter().map(Value::to_string).collect();
        std::fs::create_dir_all(std::path::Path::new(EVENTS_FIXTURE).parent().unwrap()).unwrap();
        std::fs::write(EVENTS_FIXTURE, lines.join("\n") + "\n").unwrap();
    }
}
