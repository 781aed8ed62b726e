//! The canonical forms that hashes are taken over: times, JSON text and SHA-256 hex.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

/// The canonical text of a time in the audit log (RFC 3339, UTC, nanoseconds).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// SHA-256 as lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A copy of `v` with every object's keys sorted, so equal values serialise identically.
pub(crate) fn canonical_value(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical_value(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_value).collect()),
        other => other.clone(),
    }
}

/// Canonical JSON text: sorted keys, no whitespace.
pub(crate) fn canonical_json(v: &serde_json::Value) -> String {
    canonical_value(v).to_string()
}
