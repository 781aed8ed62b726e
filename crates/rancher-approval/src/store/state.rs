//! Service state kept beside the requests: small values by namespace and key that may expire (web sessions,
//! dead-lettered webhook events), and named leases that one holder at a time owns across replicas (which replica
//! delivers a webhook, runs a job). None of it is audited: it is the service's working memory, not a record of a
//! decision. Every store keeps it in one table; times are milliseconds since the epoch so that "expired" is one
//! integer comparison in SQL.

use chrono::{DateTime, Utc};

use super::Tx;
use crate::error::{Error, Result};

/// The namespace leases live in; [`check_namespace`] keeps callers of the state methods out of it.
pub(crate) const LEASES: &str = "_lease";

/// Milliseconds since the epoch.
pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Refuses an empty namespace, key or the leases' own namespace (a session could otherwise overwrite a lease).
pub(crate) fn check_namespace(ns: &str, key: &str) -> Result<()> {
    if ns.is_empty() || key.is_empty() {
        return Err(Error::InvalidState {
            problem: "service state needs a namespace and a key".into(),
        });
    }
    if ns == LEASES {
        return Err(Error::InvalidState {
            problem: format!("the namespace `{LEASES}` holds leases; use try_lease and release_lease"),
        });
    }
    Ok(())
}

pub(crate) async fn put(
    tx: &mut dyn Tx,
    ns: &str,
    key: &str,
    value: &str,
    expires_at: Option<DateTime<Utc>>,
) -> Result<()> {
    check_namespace(ns, key)?;
    tx.state_save(ns, key, value, expires_at.map(millis)).await
}

/// Stores `value` under `ns`/`key` unless an unexpired value is there; whether it stored it. Runs in a write
/// transaction, which every store serialises (as [`try_lease`]), so two callers can never both be told yes.
pub(crate) async fn put_new(
    tx: &mut dyn Tx,
    ns: &str,
    key: &str,
    value: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool> {
    check_namespace(ns, key)?;
    let now = millis(tx.clock(now).await?);
    if let Some((_, exp)) = tx.state_load(ns, key).await? {
        if exp.is_none_or(|e| e > now) {
            return Ok(false);
        }
    }
    tx.state_save(ns, key, value, expires_at.map(millis)).await?;
    Ok(true)
}

pub(crate) async fn get(tx: &mut dyn Tx, ns: &str, key: &str, now: DateTime<Utc>) -> Result<Option<String>> {
    check_namespace(ns, key)?;
    let now = millis(tx.clock(now).await?);
    Ok(tx
        .state_load(ns, key)
        .await?
        .filter(|(_, exp)| exp.is_none_or(|e| e > now))
        .map(|(v, _)| v))
}

pub(crate) async fn list(tx: &mut dyn Tx, ns: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<(String, String)>> {
    check_namespace(ns, "-")?;
    let now = millis(tx.clock(now).await?);
    tx.state_scan(ns, now, limit).await
}

pub(crate) async fn purge(tx: &mut dyn Tx, now: DateTime<Utc>) -> Result<u64> {
    let now = millis(tx.clock(now).await?);
    tx.state_purge(now).await
}

/// Takes lease `name` for `holder` until `until` when it is free, expired or already `holder`'s. Runs in a write
/// transaction, which every store serialises, so two replicas can never both be told yes.
pub(crate) async fn try_lease(
    tx: &mut dyn Tx,
    name: &str,
    holder: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    if name.is_empty() || holder.is_empty() {
        return Err(Error::InvalidState {
            problem: "a lease needs a name and a holder".into(),
        });
    }
    let now = millis(tx.clock(now).await?);
    if let Some((other, exp)) = tx.state_load(LEASES, name).await? {
        if other != holder && exp.is_none_or(|e| e > now) {
            return Ok(false);
        }
    }
    if millis(until) <= now {
        return Err(Error::InvalidState {
            problem: format!("lease `{name}`: the end asked for is already past"),
        });
    }
    tx.state_save(LEASES, name, holder, Some(millis(until))).await?;
    Ok(true)
}

pub(crate) async fn release_lease(tx: &mut dyn Tx, name: &str, holder: &str) -> Result<()> {
    if let Some((current, _)) = tx.state_load(LEASES, name).await? {
        if current == holder {
            tx.state_remove(LEASES, name).await?;
        }
    }
    Ok(())
}
