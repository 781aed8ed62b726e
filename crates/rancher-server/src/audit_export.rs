//! The audit log as a SIEM takes it: one JSON object a line (NDJSON), in one of three shapes, each carrying the
//! entry's hash-chain fields so a copy can be verified offline (`tests/verify_chain.py` does it with the Python
//! standard library alone).
//!
//! - `jsonl`: the entry itself: `seq`, `at` (the exact time text the hash covers), `actor`, `kind`, `request_id`,
//!   `workflow_id`, `detail`, `prev_hash`, `hash`.
//! - `ocsf`: an OCSF 1.x event in the Identity & Access Management category (3): grant ends as User Access Management
//!   (3005, activity 2 Revoke Privileges), bindings the watcher saw made or removed as User Access Management too
//!   (activity 1 Assign Privileges or 2 Revoke Privileges; severity Medium when out of band), writes made straight to Rancher on users or tokens as Account Change
//!   (3001), everything else (requests, decisions, installs, policies, executions) as Entity Management (3004). The
//!   entry rides along under `unmapped.rancher_access`.
//! - `cloudevents`: a CloudEvents 1.0 event in structured JSON mode, the entry as its `data`.
//!
//! Exports are read from the store a page at a time ([`PAGE`] entries), so memory does not grow with the log, and
//! resume after any sequence number.

use std::str::FromStr;

use rancher_approval::audit::format_time;
use rancher_approval::{AuditEntry, AuditKind};
use serde_json::{json, Value};

/// Entries read from the store per page.
pub const PAGE: usize = 500;

/// The media type of an export: one JSON object a line.
pub const CONTENT_TYPE: &str = "application/x-ndjson";

/// The OCSF schema version the `ocsf` records follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// An export's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The entries as they are chained.
    Jsonl,
    /// OCSF events.
    Ocsf,
    /// CloudEvents 1.0, structured JSON.
    CloudEvents,
}

impl ExportFormat {
    /// `jsonl`, `ocsf` or `cloudevents`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Ocsf => "ocsf",
            ExportFormat::CloudEvents => "cloudevents",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Ok(ExportFormat::Jsonl),
            "ocsf" => Ok(ExportFormat::Ocsf),
            "cloudevents" | "cloudevent" | "ce" => Ok(ExportFormat::CloudEvents),
            _ => Err(format!(
                "unknown export format `{}`: use jsonl, ocsf or cloudevents",
                s.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// One exported line (with its newline) for `entry`; `source` names the service (its URL or host), for the
/// CloudEvents `source` and OCSF `metadata.product`.
pub fn line(entry: &AuditEntry, format: ExportFormat, source: &str) -> String {
    let v = match format {
        ExportFormat::Jsonl => chain_record(entry),
        ExportFormat::Ocsf => ocsf(entry, source),
        ExportFormat::CloudEvents => cloudevent(entry, source),
    };
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// The entry with every field its hash covers, the time in the exact text hashed.
fn chain_record(e: &AuditEntry) -> Value {
    json!({
        "seq": e.seq,
        "at": format_time(e.at),
        "actor": e.actor,
        "kind": e.kind.as_str(),
        "request_id": e.request_id,
        "workflow_id": e.workflow_id,
        "detail": e.detail,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    })
}

/// OCSF classes used, with their documented ids.
mod class {
    /// Identity & Access Management.
    pub const CATEGORY_IAM: u64 = 3;
    /// Account Change: a user account or its credentials changed.
    pub const ACCOUNT_CHANGE: u64 = 3001;
    /// Entity Management: a managed entity created, read, updated or deleted.
    pub const ENTITY_MANAGEMENT: u64 = 3004;
    /// User Access Management: privileges assigned to or revoked from a user.
    pub const USER_ACCESS: u64 = 3005;
}

/// `(class_uid, activity_id, activity_name)` for an entry.
fn ocsf_class(e: &AuditEntry) -> (u64, u64, &'static str) {
    let path = e.detail.get("path").and_then(Value::as_str).unwrap_or("");
    let method = e.detail.get("method").and_then(Value::as_str).unwrap_or("");
    match e.kind {
        AuditKind::GrantRevoked | AuditKind::GrantEndedEarly => (class::USER_ACCESS, 2, "Revoke Privileges"),
        AuditKind::AccessObserved if e.detail.get("change").and_then(Value::as_str) == Some("created") => {
            (class::USER_ACCESS, 1, "Assign Privileges")
        }
        AuditKind::AccessObserved => (class::USER_ACCESS, 2, "Revoke Privileges"),
        AuditKind::DirectWrite if account_path(path) => match method.to_ascii_uppercase().as_str() {
            "POST" => (class::ACCOUNT_CHANGE, 1, "Create"),
            "DELETE" => (class::ACCOUNT_CHANGE, 6, "Delete"),
            _ => (class::ACCOUNT_CHANGE, 99, "Other"),
        },
        AuditKind::RequestCreated | AuditKind::Installed => (class::ENTITY_MANAGEMENT, 1, "Create"),
        _ => (class::ENTITY_MANAGEMENT, 3, "Update"),
    }
}

/// Whether a Rancher path names users or tokens (norman `/v3/users`, `/v3/tokens`; RK-API `.../users`, `.../tokens`).
fn account_path(path: &str) -> bool {
    path.split(['/', '?']).any(|seg| matches!(seg, "users" | "tokens"))
}

/// The last path segment (the object's name), when the path names one beyond its collection.
fn last_segment(path: &str) -> Option<String> {
    let p = path.split('?').next().unwrap_or("");
    let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [.., coll, name] if !matches!(*name, "users" | "tokens") && !coll.is_empty() => Some((*name).to_string()),
        _ => None,
    }
}

fn ocsf(e: &AuditEntry, source: &str) -> Value {
    let (class_uid, activity_id, activity_name) = ocsf_class(e);
    let actor = json!({"user": {"uid": e.actor}});
    let mut v = json!({
        "category_uid": class::CATEGORY_IAM,
        "class_uid": class_uid,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "severity_id": 1,
        "status_id": 1,
        "time": e.at.timestamp_millis(),
        "message": format!("{} ({})", e.kind.as_str(), e.request_id.as_deref().unwrap_or("-")),
        "actor": actor,
        "metadata": {
            "version": OCSF_VERSION,
            "uid": e.hash,
            "sequence": e.seq,
            "log_name": "audit",
            "product": {"name": "rancher-access", "vendor_name": "rancher-access", "uid": source},
        },
        "unmapped": {"rancher_access": chain_record(e)},
    });
    let d = &e.detail;
    let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    match class_uid {
        class::USER_ACCESS => {
            let subject = text("subject").unwrap_or_default();
            v["user"] = json!({"uid": subject, "type": text("subject_kind").unwrap_or_else(|| "user".into())});
            v["privileges"] = json!([text("role").unwrap_or_default()]);
            let name = text("binding").or_else(|| text("name")).unwrap_or_default();
            let mut res = json!({"type": text("kind").unwrap_or_default(), "name": name});
            if let Some(ns) = text("namespace") {
                res["namespace"] = json!(ns);
            }
            v["resources"] = json!([res]);
            if e.kind == AuditKind::AccessObserved {
                // Who made the change, as Rancher recorded it (the watcher only saw it).
                if let Some(creator) = text("creator") {
                    v["actor"] = json!({"user": {"uid": creator}});
                }
                if d.get("out_of_band").and_then(Value::as_bool) == Some(true) {
                    v["severity_id"] = json!(3);
                }
            }
        }
        class::ACCOUNT_CHANGE => {
            // The account the write touched: the object's name in the path (a token's name, a user's id).
            let path = text("path").unwrap_or_default();
            v["user"] = json!({"uid": last_segment(&path).unwrap_or_default()});
            v["api"] =
                json!({"operation": text("operation").unwrap_or_default(), "request": {"uid": format!("{}", e.seq)}});
        }
        _ => {
            let (name, kind) = match (&e.request_id, &e.workflow_id) {
                (Some(r), _) => (r.clone(), "approval request"),
                (None, Some(w)) => (w.clone(), "workflow"),
                (None, None) => (e.actor.clone(), "service"),
            };
            v["entity"] = json!({"uid": name, "name": name, "type": kind});
            if let Some(w) = &e.workflow_id {
                v["entity"]["data"] = json!({"workflow": w});
            }
        }
    }
    v
}

fn cloudevent(e: &AuditEntry, source: &str) -> Value {
    let mut v = json!({
        "specversion": "1.0",
        "id": format!("{}#{}", e.seq, &e.hash[..e.hash.len().min(16)]),
        "source": format!("rancher-access:{source}"),
        "type": format!("io.rancher-access.audit.{}", e.kind.as_str()),
        "time": format_time(e.at),
        "datacontenttype": "application/json",
        "data": chain_record(e),
    });
    if let Some(r) = &e.request_id {
        v["subject"] = json!(r);
    }
    v
}

#[cfg(test)]
mod tests;

/// The export endpoint's query: `format` (`jsonl` by default) and `after` (a sequence number: entries after it).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct ExportQuery {
    /// `jsonl`, `ocsf` or `cloudevents`.
    format: Option<String>,
    /// Export the entries after this sequence number (0, the default: from the first).
    after: Option<u64>,
}

/// The answer to `GET /api/v1/audit/export` once the caller is known to be an admin: the NDJSON stream, or `400`
/// naming an unknown format.
pub(crate) fn response(
    app: std::sync::Arc<crate::app::App>,
    q: ExportQuery,
) -> Result<axum::response::Response, crate::error::ApiError> {
    use axum::response::IntoResponse as _;
    let format = match &q.format {
        Some(f) => f.parse::<ExportFormat>().map_err(crate::error::ApiError::bad_request)?,
        None => ExportFormat::Jsonl,
    };
    let source = app.service.server.domain.clone();
    let body = axum::body::Body::from_stream(pages(app, format, q.after.unwrap_or(0), source));
    Ok(([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

/// The export after `after`, one chunk per page of the store; ends at the last entry there when the page is read.
/// A store error ends the stream early (the client sees a truncated body and resumes from the last `seq` it has).
fn pages(
    app: std::sync::Arc<crate::app::App>,
    format: ExportFormat,
    after: u64,
    source: String,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures::stream::unfold(Some(after), move |cursor| {
        let (app, source) = (app.clone(), source.clone());
        async move {
            let after = cursor?;
            let page = crate::app::with_store(app.store(), |s| async move { s.audit_after(after, PAGE).await }).await;
            match page {
                Ok(entries) if entries.is_empty() => None,
                Ok(entries) => {
                    let next = entries.last().map(|e| e.seq);
                    let mut chunk = String::with_capacity(entries.len() * 512);
                    for e in &entries {
                        chunk.push_str(&line(e, format, &source));
                    }
                    let more = entries.len() == PAGE;
                    Some((Ok(bytes::Bytes::from(chunk)), if more { next } else { None }))
                }
                Err(e) => Some((Err(std::io::Error::other(e.message)), None)),
            }
        }
    })
}
