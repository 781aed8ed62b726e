//! Secrets held in this process's memory for one filed request, never stored.
//!
//! A request filed through the approvals service is stored, shown to approvers and sent to webhooks, so it never
//! holds a secret. `access-control-enable` still needs two: the provider settings (with their service-account
//! password or client secret) and the test login's password or code. They are kept here, under a random handle
//! the request records, bound to a digest of the request's other inputs (a handle copied into another request
//! with different inputs finds nothing), until the approved request runs ([`take`] removes them: used once) or
//! [`HOLD_FOR`] passes. Nothing here is written anywhere: after a restart, or on a replica that did not file the
//! request, the secrets are gone and the run refuses before sending anything, asking for the request to be
//! filed again.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sha2::Digest;

/// How long secrets wait for their request to run.
pub const HOLD_FOR: Duration = Duration::from_secs(24 * 3600);

/// At most this many requests hold secrets at once (each at most a settings object and a password).
pub const MAX_HELD: usize = 256;

/// What one request holds.
pub(crate) struct Held {
    /// The provider settings as sent, secrets included.
    pub settings: Map<String, Value>,
    /// The test login: who, and `user:password` or an OAuth code.
    pub test: (String, String),
}

struct Entry {
    held: Held,
    bound: String,
    until: Instant,
}

static HELD: LazyLock<Mutex<HashMap<String, Entry>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn lock() -> std::sync::MutexGuard<'static, HashMap<String, Entry>> {
    HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Digest of `inputs` with keys sorted at every depth, so it does not depend on the order a store keeps.
pub(crate) fn digest(inputs: &Value) -> String {
    fn canonical(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
            other => other.clone(),
        }
    }
    hex::encode(sha2::Sha256::digest(canonical(inputs).to_string().as_bytes()))
}

/// Holds `held` for the request whose other inputs digest to `bound`; answers the handle to record in it.
/// Refused when [`MAX_HELD`] requests already hold secrets.
pub(crate) fn hold(held: Held, bound: String) -> Option<String> {
    let now = Instant::now();
    let mut map = lock();
    map.retain(|_, e| e.until > now);
    if map.len() >= MAX_HELD {
        return None;
    }
    let handle = format!("held-{}", uuid::Uuid::new_v4().simple());
    map.insert(
        handle.clone(),
        Entry {
            held,
            bound,
            until: now + HOLD_FOR,
        },
    );
    Some(handle)
}

/// Takes (removes) what `handle` holds, if it is still held and bound to inputs digesting to `bound`. A handle
/// whose binding does not match stays held for its own request.
pub(crate) fn take(handle: &str, bound: &str) -> Option<Held> {
    let now = Instant::now();
    let mut map = lock();
    map.retain(|_, e| e.until > now);
    if map.get(handle).is_some_and(|e| e.bound == bound) {
        return map.remove(handle).map(|e| e.held);
    }
    None
}

/// Drops everything held (as a restart does). For tests of what a restart does to a filed request.
pub fn forget_all() {
    lock().clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn held() -> Held {
        Held {
            settings: json!({"servers": ["ad"], "serviceAccountPassword": "pw"})
                .as_object()
                .unwrap()
                .clone(),
            test: ("jdoe".into(), "jdoe:pw".into()),
        }
    }

    #[test]
    fn n1_held_secrets_are_taken_once_and_only_by_their_own_request() {
        let bound = digest(&json!({"provider": "ad", "test-user": "jdoe"}));
        let h = hold(held(), bound.clone()).unwrap();
        assert!(
            take(&h, &digest(&json!({"provider": "ad", "test-user": "mallory"}))).is_none(),
            "another request's inputs find nothing"
        );
        let got = take(&h, &bound).expect("its own request finds them");
        assert_eq!(got.test.1, "jdoe:pw");
        assert!(take(&h, &bound).is_none(), "used once");
    }

    #[test]
    fn the_digest_does_not_depend_on_key_order() {
        assert_eq!(
            digest(&json!({"a": 1, "b": {"y": 2, "x": 3}})),
            digest(&json!({"b": {"x": 3, "y": 2}, "a": 1}))
        );
    }
}
