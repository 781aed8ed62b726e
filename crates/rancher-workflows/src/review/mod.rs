//! Access review and token hygiene: who holds what (`access-review`, `who-can`), token sprawl (`token-report`),
//! approved cleanup (`cleanup-tokens`) and offboarding (`offboard-user`).
//!
//! These workflows implement [`crate::Workflow`] themselves and speak the typed requests of rancher-api. They read
//! the RK-API (Rancher 2.8+; users through it from 2.13, through norman `/v3` before), where an admin lists every
//! user's `management.cattle.io/v3` tokens and, from 2.12, the `ext.cattle.io/v1` tokens.

mod access;
mod inventory;
mod offboard;
mod tokens;

use chrono::{DateTime, Utc};
use futures::{Stream, TryStreamExt};
use rancher_api::Request;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::session::Session;

pub use access::{
    stream_access_review, AccessReview, ReviewEnd, ReviewPart, ReviewSink, WhoCan, ACCESS_REVIEW_COLUMNS,
};
pub use offboard::OffboardUser;
pub use tokens::{CleanupTokens, LocalClock, TokenFacts, TokenKind, TokenReport};

/// The review workflows, for [`crate::Registry::builtin`].
pub(crate) fn workflows() -> Vec<std::sync::Arc<dyn crate::workflow::Workflow>> {
    vec![
        std::sync::Arc::new(crate::workflow::Typed(AccessReview)),
        std::sync::Arc::new(crate::workflow::Typed(WhoCan)),
        std::sync::Arc::new(TokenReport),
        std::sync::Arc::new(CleanupTokens::default()),
        std::sync::Arc::new(crate::workflow::Typed(OffboardUser)),
    ]
}

/// A text input, trimmed; empty means absent.
pub(crate) fn text<'a>(id: &str, inputs: &'a Value, name: &str) -> Result<Option<&'a str>> {
    match inputs.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(other) => Err(Error::Input {
            workflow: id.into(),
            input: name.into(),
            message: format!("must be text, got {other}"),
        }),
    }
}

/// A whole-number input (`unused-days=90`).
pub(crate) fn number(id: &str, inputs: &Value, name: &str) -> Result<Option<i64>> {
    match inputs.get(name) {
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| bad_number(id, name, &n.to_string())),
        _ => match text(id, inputs, name)? {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(Some)
                .ok_or_else(|| bad_number(id, name, s)),
        },
    }
}

fn bad_number(id: &str, name: &str, got: &str) -> Error {
    Error::Input {
        workflow: id.into(),
        input: name.into(),
        message: format!("must be a whole number of days such as 90, not `{got}`"),
    }
}

/// Keeps `keep(item)` of each listed item as it arrives (a page of typed items at a time, not the whole list).
pub(crate) async fn collect_with<T, U, C: Default + Extend<U>>(
    what: &str,
    stream: impl Stream<Item = rancher_api::Result<T>>,
    mut keep: impl FnMut(T) -> Option<U>,
) -> Result<C> {
    let mut out = C::default();
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.try_next().await.map_err(|e| refused(what, e))? {
        out.extend(keep(item));
    }
    Ok(out)
}

/// A refused list in plain words (Kubernetes RBAC refuses the whole list, never a part of it).
pub(crate) fn refused(what: &str, e: rancher_api::Error) -> Error {
    if e.is_forbidden() && !e.is_local_cluster_gate() {
        return Error::NotAllowed(format!(
            "Rancher refused the list of {what} (403): a review reads every user's access and needs an account that may list all {what} (an admin's API key). Server said: {e}"
        ));
    }
    e.into()
}

/// Like [`refused`], for a kind that is only behind the local-cluster gate (tokens.management.cattle.io,
/// userattributes: rancher/rancher pkg/api/steve/proxy/proxy.go `matchManagementCRDs` gates every management kind
/// off pkg/api/steve/disallow/disallow.go `AllowAll`), where the empty 403 has no fallback.
pub(crate) fn refused_gated(what: &str, e: rancher_api::Error) -> Error {
    if e.is_local_cluster_gate() {
        return Error::NotAllowed(format!(
            "Rancher refused the list of {what} (403, empty answer): that kind is reachable only with access to the local cluster, and a review reads every user's access, so it needs an account that may list all {what} there (an admin's API key). Server said: {e}"
        ));
    }
    refused(what, e)
}

/// Sends a typed write through the executor, so a dry run records it instead of sending it.
pub(crate) async fn write<R: Request + Sync>(exec: &mut Exec<'_>, req: &R) -> Result<()> {
    exec.send(req).await.map(drop)
}

/// Parses an RFC 3339 time (Kubernetes and norman both write them); `None` for empty or malformed text.
pub(crate) fn time(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.filter(|t| !t.is_empty())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// True when the RK-API serves users to this caller's server generation (2.13+); older servers list them on `/v3`.
pub(crate) fn rk_users(session: &Session) -> bool {
    session.version.at_least(2, 13)
}

/// Refuses a server without the RK-API management kinds (before 2.8).
pub(crate) fn require_rk(id: &str, session: &Session) -> Result<()> {
    if session.is_legacy() || !session.version.at_least(2, 8) {
        return Err(Error::Refused(format!(
            "{id} reads the RK-API (management.cattle.io), which Rancher serves from 2.8; this server is {}. Upgrade Rancher, or use list-global-role-bindings",
            session.version
        )));
    }
    Ok(())
}
