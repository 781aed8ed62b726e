//! TEMPORARY stand-in for the foundation's `Store` service state and leases (process memory, keyed by the store's
//! address), so the webhook code builds and its tests run before the foundation lands. Removed at the merge.
#![allow(missing_docs, dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use rancher_approval::{Result, Store};

type Key = (usize, String, String);

fn state() -> &'static Mutex<BTreeMap<Key, (String, Option<DateTime<Utc>>)>> {
    static S: OnceLock<Mutex<BTreeMap<Key, (String, Option<DateTime<Utc>>)>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

fn leases() -> &'static Mutex<BTreeMap<(usize, String), (String, DateTime<Utc>)>> {
    static S: OnceLock<Mutex<BTreeMap<(usize, String), (String, DateTime<Utc>)>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

fn id(s: &Arc<dyn Store>) -> usize {
    Arc::as_ptr(s) as *const () as usize
}

#[allow(async_fn_in_trait)]
pub(crate) trait StateExt {
    async fn state_put(&self, ns: &str, key: &str, value: &str, expires_at: Option<DateTime<Utc>>) -> Result<()>;
    async fn state_list(&self, ns: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<(String, String)>>;
    async fn try_lease(&self, name: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool>;
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
}

impl StateExt for Arc<dyn Store> {
    async fn state_put(&self, ns: &str, key: &str, value: &str, expires_at: Option<DateTime<Utc>>) -> Result<()> {
        state().lock().unwrap().insert((id(self), ns.into(), key.into()), (value.into(), expires_at));
        Ok(())
    }
    async fn state_list(&self, ns: &str, now: DateTime<Utc>, limit: usize) -> Result<Vec<(String, String)>> {
        let me = id(self);
        Ok(state()
            .lock()
            .unwrap()
            .iter()
            .filter(|((s, n, _), (_, e))| *s == me && n == ns && e.is_none_or(|e| e > now))
            .take(limit)
            .map(|((_, _, k), (v, _))| (k.clone(), v.clone()))
            .collect())
    }
    async fn try_lease(&self, name: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool> {
        let mut m = leases().lock().unwrap();
        let k = (id(self), name.to_string());
        match m.get(&k) {
            Some((h, u)) if h != holder && *u > now => Ok(false),
            _ => {
                m.insert(k, (holder.into(), until));
                Ok(true)
            }
        }
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let mut m = leases().lock().unwrap();
        let k = (id(self), name.to_string());
        if m.get(&k).is_some_and(|(h, _)| h == holder) {
            m.remove(&k);
        }
        Ok(())
    }
}
