//! Token sprawl: `SimConfig::tokens(N)` seeds N extra tokens spread over the users with the mix a long-lived
//! Rancher accumulates (login sessions, API keys, kubeconfig tokens; expired ones Rancher has not purged yet,
//! never-expiring keys, cluster-scoped keys, and a spread of last-use times).
//!
//! Shapes follow Rancher: a `management.cattle.io/v3` Token carries its owner in `userId` and in the label
//! `authn.management.cattle.io/token-userId`, and its kind in the label `authn.management.cattle.io/kind`
//! (`session` for a login, `kubeconfig` for a kubeconfig token, empty for an API key) (rancher/rancher
//! pkg/auth/tokens/manager.go `UserIDLabel`, `TokenKindLabel`); from 2.10 `lastUsedAt` is set on authenticated use
//! (pkg/apis/management.cattle.io/v3/authn_types.go; `auth::note_use`) and absent for a token never used. On 2.12+ a share of the
//! tokens are `ext.cattle.io/v1` Tokens (pkg/ext/stores/tokens), owned through the label `cattle.io/user-id`.
//! Seeded tokens have no usable secret: nobody holds them, as nobody holds a forgotten key.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write as _;
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::config::SimConfig;
use crate::ids::ALPHABET;
use crate::state::{fmt_ms, now_ms, Kind, Store};

/// A login session lives 16 hours by default (`auth-user-session-ttl-minutes` = 960).
const SESSION_TTL_MS: i64 = 960 * 60_000;
/// Kubeconfig tokens live 30 days by default (`kubeconfig-default-token-ttl-minutes` = 43200).
const KUBECONFIG_TTL_MS: i64 = 43_200 * 60_000;
const DAY_MS: i64 = 86_400_000;

/// One user a token can belong to.
struct Owner {
    id: String,
    username: String,
    display: String,
}

/// The share of seeded tokens that are ext tokens on 2.12+ (one in `EXT_EVERY`).
const EXT_EVERY: usize = 10;

/// The classes of seeded token: (kind label, TTL in ms, derived, cluster-scoped to the downstream cluster).
/// Kind mix: 25% login sessions, 10% kubeconfig tokens, the rest API keys (30% of those never expire, 8% of those
/// scoped to the downstream cluster).
const CLASSES: [(&str, i64, bool, bool); 6] = [
    ("session", SESSION_TTL_MS, false, false),
    ("kubeconfig", KUBECONFIG_TTL_MS, true, false),
    ("", 0, true, false),
    ("", 0, true, true),
    ("", 90 * DAY_MS, true, false),
    ("", 30 * DAY_MS, true, false),
];

/// No last use recorded.
const NEVER: i64 = i64::MIN;

/// One seeded token, compactly: what its object is rendered from, and the object itself once something asked
/// for it by name (a GET; most tokens are only ever listed, and a list renders them without keeping anything).
pub(crate) struct Rec {
    name: Box<str>,
    rv: u64,
    created: i64,
    last_used: i64,
    owner: u32,
    class: u8,
    gone: bool,
    full: OnceLock<Box<Value>>,
}

/// Deleted records are counted per block, so "how many are left after this name" (a list's
/// `remainingItemCount`) costs a binary search and a block's scan, not a walk over every token.
const BLOCK: usize = 1024;

/// A compact record of a [`Table`]: its store key, and whether it was taken out (replaced or deleted).
pub(crate) trait Record {
    /// The store key (`name`, or `namespace:name` for a namespaced kind).
    fn key(&self) -> &str;
    /// Taken out: the store holds an object under this key instead, or nothing.
    fn is_gone(&self) -> bool;
}

impl Record for Rec {
    fn key(&self) -> &str {
        &self.name
    }
    fn is_gone(&self) -> bool {
        self.gone
    }
}

/// Compact records of one kind, sorted by key.
pub(crate) struct Table<R = Rec> {
    pub(crate) recs: Vec<R>,
    gone: usize,
    gone_per_block: Vec<u32>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Table {
            recs: Vec::new(),
            gone: 0,
            gone_per_block: Vec::new(),
        }
    }
}

impl<R: Record> Table<R> {
    /// A table of `recs` (sorted here by key).
    pub(crate) fn new(mut recs: Vec<R>) -> Self {
        recs.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        Table {
            gone_per_block: vec![0; recs.len().div_ceil(BLOCK)],
            recs,
            gone: 0,
        }
    }

    pub(crate) fn find(&self, key: &str) -> Option<usize> {
        self.recs
            .binary_search_by(|r| r.key().cmp(key))
            .ok()
            .filter(|i| !self.recs[*i].is_gone())
    }

    /// Index of the first record after `after` (all when `None`).
    pub(crate) fn start(&self, after: Option<&str>) -> usize {
        match after {
            Some(a) => self.recs.partition_point(|r| r.key() <= a),
            None => 0,
        }
    }

    /// Index of the first record at or after `key`.
    pub(crate) fn at(&self, key: &str) -> usize {
        self.recs.partition_point(|r| r.key() < key)
    }

    pub(crate) fn live(&self) -> usize {
        self.recs.len() - self.gone
    }

    /// Live records at index `i` and after.
    pub(crate) fn live_from(&self, i: usize) -> usize {
        let block = i / BLOCK;
        let gone_before = self.gone_per_block[..block].iter().map(|g| *g as usize).sum::<usize>()
            + self.recs[block * BLOCK..i].iter().filter(|r| r.is_gone()).count();
        self.live() - (i - gone_before)
    }

    /// Counts record `i` as taken out (the caller marks the record itself).
    pub(crate) fn note_gone(&mut self, i: usize) {
        self.gone += 1;
        self.gone_per_block[i / BLOCK] += 1;
    }
}

/// The seeded tokens of both APIs (see the module documentation), outside the store's object maps: an object per
/// token would take kilobytes each, a record takes under a hundred bytes. [`Store`]'s `get`, `put` and `remove`
/// see them as stored objects; listing goes through [`Store::items`].
#[derive(Default)]
pub(crate) struct Seeded {
    owners: Vec<Owner>,
    mgmt: Table,
    ext: Table,
    /// The `uid` of every seeded object derives from this and its resourceVersion.
    uid_seed: u64,
    /// `lastUsedAt` on v3 tokens (2.10+).
    mgmt_last_used: bool,
    /// `spec.clusterName` on ext tokens (2.13+).
    ext_cluster: bool,
    downstream: String,
    /// `metadata.creationTimestamp` of every seeded object.
    created_ts: String,
}

impl Seeded {
    fn table(&self, kind: Kind) -> Option<&Table> {
        match kind {
            Kind::Token => Some(&self.mgmt),
            Kind::ExtToken => Some(&self.ext),
            _ => None,
        }
    }

    fn table_mut(&mut self, kind: Kind) -> Option<&mut Table> {
        match kind {
            Kind::Token => Some(&mut self.mgmt),
            Kind::ExtToken => Some(&mut self.ext),
            _ => None,
        }
    }

    /// Seeded tokens of `kind` still there.
    pub(crate) fn len(&self, kind: Kind) -> usize {
        self.table(kind).map(Table::live).unwrap_or(0)
    }

    /// A seeded token as a stored object, kept once asked for.
    pub(crate) fn get(&self, kind: Kind, key: &str) -> Option<&Value> {
        let t = self.table(kind)?;
        let rec = &t.recs[t.find(key)?];
        Some(rec.full.get_or_init(|| Box::new(self.render(kind, rec))))
    }

    /// Takes a seeded token out (it is being replaced or deleted): its object, for the store to hold instead.
    pub(crate) fn take(&mut self, kind: Kind, key: &str) -> Option<Value> {
        let i = self.table(kind)?.find(key)?;
        let value = {
            let rec = &self.table(kind)?.recs[i];
            rec.full
                .get()
                .map(|v| (**v).clone())
                .unwrap_or_else(|| self.render(kind, rec))
        };
        let t = self.table_mut(kind)?;
        t.recs[i].gone = true;
        t.recs[i].full = OnceLock::new();
        t.note_gone(i);
        Some(value)
    }

    /// Names of the seeded tokens of `kind` that `user_id` owns.
    pub(crate) fn of_user(&self, kind: Kind, user_id: &str) -> Vec<String> {
        let Some(owner) = self.owners.iter().position(|o| o.id == user_id) else {
            return Vec::new();
        };
        self.table(kind)
            .map(|t| {
                t.recs
                    .iter()
                    .filter(|r| !r.gone && r.owner as usize == owner)
                    .map(|r| r.name.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn uid(&self, rv: u64) -> String {
        let mut x = self.uid_seed ^ rv.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut next = || {
            // splitmix64
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let h = format!("{:016x}{:016x}", next(), next());
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }

    /// The stored object of a seeded token: exactly what seeding it as an object would have stored.
    fn render(&self, kind: Kind, rec: &Rec) -> Value {
        let who = &self.owners[rec.owner as usize];
        let (label, ttl, derived, scoped) = CLASSES[rec.class as usize];
        let cluster = if scoped { self.downstream.as_str() } else { "" };
        let last_used = (rec.last_used != NEVER).then_some(rec.last_used);
        let mut obj = if kind == Kind::ExtToken {
            ext_token(
                &rec.name,
                who,
                label,
                ttl,
                rec.created,
                last_used,
                cluster,
                self.ext_cluster,
            )
        } else {
            let last_used = last_used.filter(|_| self.mgmt_last_used);
            mgmt_token(&rec.name, who, label, ttl, rec.created, derived, cluster, last_used)
        };
        let info = kind.info();
        obj["apiVersion"] = json!(format!("{}/{}", info.group, info.version));
        obj["kind"] = json!(info.kind_name);
        let m = obj["metadata"].as_object_mut().expect("metadata object");
        m.insert("uid".into(), Value::String(self.uid(rec.rv)));
        m.insert("resourceVersion".into(), Value::String(rec.rv.to_string()));
        m.insert("creationTimestamp".into(), Value::String(self.created_ts.clone()));
        m.insert("generation".into(), json!(1));
        obj
    }

    /// Writes a seeded token as the RK-API shows it to a caller that does not hold it, byte for byte what
    /// serializing its object (and, for an ext token, its view: `status.expired` judged now) gives, without building
    /// the object: a list of a million tokens renders in about a second.
    fn write_json(&self, kind: Kind, rec: &Rec, now: i64, buf: &mut Vec<u8>) {
        let who = &self.owners[rec.owner as usize];
        let (label, ttl, derived, scoped) = CLASSES[rec.class as usize];
        let cluster = if scoped { self.downstream.as_str() } else { "" };
        let expires = (ttl > 0).then(|| fmt_ms(rec.created + ttl));
        let last_used = (rec.last_used != NEVER).then_some(rec.last_used);
        let info = kind.info();
        let s = |buf: &mut Vec<u8>, v: &str| serde_json::to_writer(&mut *buf, v).expect("in-memory JSON");
        let meta_tail = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(b",\"uid\":\"");
            buf.extend_from_slice(self.uid(rec.rv).as_bytes());
            let _ = write!(
                buf,
                "\",\"resourceVersion\":\"{}\",\"creationTimestamp\":\"{}\",\"generation\":1}}",
                rec.rv, self.created_ts
            );
        };
        buf.extend_from_slice(b"{\"metadata\":{\"name\":");
        s(buf, &rec.name);
        if kind == Kind::ExtToken {
            buf.extend_from_slice(b",\"labels\":{\"cattle.io/user-id\":");
            s(buf, &who.id);
            buf.extend_from_slice(b",\"authn.management.cattle.io/kind\":");
            s(buf, label);
            buf.push(b'}');
            meta_tail(buf);
            buf.extend_from_slice(b",\"spec\":{\"userID\":");
            s(buf, &who.id);
            buf.extend_from_slice(b",\"userPrincipal\":{\"name\":");
            s(buf, &format!("local://{}", who.id));
            buf.extend_from_slice(b",\"displayName\":");
            s(buf, &who.display);
            buf.extend_from_slice(b",\"loginName\":");
            s(buf, &who.username);
            buf.extend_from_slice(b",\"principalType\":\"user\",\"provider\":\"local\"},\"kind\":");
            s(buf, label);
            let _ = write!(buf, ",\"ttl\":{ttl},\"enabled\":true,\"description\":");
            s(buf, if label == "session" { "" } else { "API key" });
            if self.ext_cluster {
                buf.extend_from_slice(b",\"clusterName\":");
                s(buf, cluster);
            }
            // The view judges expiry from the formatted (whole-second) expiry, as `ops::expired` does.
            let expired = ttl > 0 && (rec.created + ttl).div_euclid(1000) * 1000 <= now;
            let _ = write!(
                buf,
                "}},\"status\":{{\"current\":false,\"expired\":{expired},\"expiresAt\":"
            );
            s(buf, expires.as_deref().unwrap_or(""));
            buf.extend_from_slice(b",\"lastUpdateTime\":");
            s(buf, &fmt_ms(rec.created));
            if let Some(t) = last_used {
                buf.extend_from_slice(b",\"lastUsedAt\":");
                s(buf, &fmt_ms(t));
            }
            buf.push(b'}');
        } else {
            buf.extend_from_slice(b",\"labels\":{\"authn.management.cattle.io/token-userId\":");
            s(buf, &who.id);
            buf.extend_from_slice(b",\"authn.management.cattle.io/kind\":");
            s(buf, label);
            buf.extend_from_slice(b",\"cattle.io/creator\":\"norman\"}");
            meta_tail(buf);
            buf.extend_from_slice(b",\"userId\":");
            s(buf, &who.id);
            buf.extend_from_slice(b",\"authProvider\":\"local\",\"userPrincipal\":{\"metadata\":{\"name\":");
            s(buf, &format!("local://{}", who.id));
            buf.extend_from_slice(b"},\"displayName\":");
            s(buf, &who.display);
            buf.extend_from_slice(b",\"loginName\":");
            s(buf, &who.username);
            let _ = write!(
                buf,
                ",\"principalType\":\"user\",\"provider\":\"local\"}},\"ttl\":{ttl},\"expiresAt\":"
            );
            s(buf, expires.as_deref().unwrap_or(""));
            let _ = write!(buf, ",\"isDerived\":{derived},\"description\":");
            s(
                buf,
                match label {
                    "session" => "",
                    "kubeconfig" => "Kubeconfig token",
                    _ => "API key",
                },
            );
            buf.extend_from_slice(b",\"clusterName\":");
            s(buf, cluster);
            buf.extend_from_slice(b",\"enabled\":true,\"lastUpdateTime\":\"\"");
            if let Some(t) = last_used.filter(|_| self.mgmt_last_used) {
                buf.extend_from_slice(b",\"lastUsedAt\":");
                s(buf, &fmt_ms(t));
            }
        }
        let _ = write!(
            buf,
            ",\"apiVersion\":\"{}/{}\",\"kind\":\"{}\"}}",
            info.group, info.version, info.kind_name
        );
    }
}

/// One object of a kind as a list sees it: stored, or a seeded token or bulk object rendered on demand.
pub(crate) enum Item<'a> {
    Stored(&'a Value),
    Seeded(&'a Seeded, Kind, &'a Rec),
    Bulk(&'a crate::bulk::Bulk, Kind, &'a crate::bulk::BulkRec),
}

impl<'a> Item<'a> {
    /// The object (a seeded one's is built for the caller and dropped after).
    pub(crate) fn value(&self) -> Cow<'_, Value> {
        self.clone_ref().into_value()
    }

    fn clone_ref(&self) -> Item<'a> {
        match self {
            Item::Stored(v) => Item::Stored(v),
            Item::Seeded(s, k, r) => Item::Seeded(s, *k, r),
            Item::Bulk(b, k, r) => Item::Bulk(b, *k, r),
        }
    }

    /// The object, borrowed from the store when it holds one.
    pub(crate) fn into_value(self) -> Cow<'a, Value> {
        match self {
            Item::Stored(v) => Cow::Borrowed(v),
            Item::Seeded(s, kind, rec) => match rec.full.get() {
                Some(v) => Cow::Borrowed(v),
                None => Cow::Owned(s.render(kind, rec)),
            },
            Item::Bulk(b, kind, rec) => b.value(kind, rec),
        }
    }

    /// Writes a seeded token or bulk object as the RK-API shows it to someone who may list every one; `None` for a
    /// stored object (or one kept after a read), which the caller writes itself.
    pub(crate) fn write_seeded(&self, now: i64, buf: &mut Vec<u8>) -> Option<()> {
        match self {
            Item::Seeded(s, kind, rec) if rec.full.get().is_none() => {
                s.write_json(*kind, rec, now, buf);
                Some(())
            }
            Item::Bulk(b, kind, rec) if rec.full.get().is_none() => {
                b.write_json(*kind, rec, buf);
                Some(())
            }
            _ => None,
        }
    }
}

impl Store {
    /// Every object of `kind` (in `namespace` for a namespaced kind) with a key after `after`, in key order:
    /// the stored objects and the seeded tokens merged.
    pub(crate) fn items<'a>(
        &'a self,
        kind: Kind,
        namespace: Option<&str>,
        after: Option<&str>,
    ) -> impl Iterator<Item = (&'a str, Item<'a>)> + 'a {
        let mut stored = self
            .items_stored(kind, namespace, after)
            .map(|(k, v)| (k, Item::Stored(v)))
            .peekable();
        let seeded = &self.seeded;
        let bulk = &self.bulk;
        let mut recs = match seeded.table(kind) {
            Some(t) => t.recs[t.start(after)..].iter(),
            None => [].iter(),
        }
        .filter(|r| !r.gone)
        .map(move |r| (r.name.as_ref(), Item::Seeded(seeded, kind, r)))
        .chain(
            bulk.range(kind, namespace, after)
                .map(move |r| (r.key(), Item::Bulk(bulk, kind, r))),
        )
        .peekable();
        std::iter::from_fn(move || match (stored.peek(), recs.peek()) {
            (Some(a), Some(b)) if b.0 < a.0 => recs.next(),
            (Some(_), _) => stored.next(),
            (None, _) => recs.next(),
        })
    }

    fn items_stored<'a>(
        &'a self,
        kind: Kind,
        namespace: Option<&str>,
        after: Option<&str>,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        use std::ops::Bound;
        let prefix = match namespace {
            Some(ns) if kind.info().namespaced => Some(format!("{ns}:")),
            _ => None,
        };
        let lower = match (after, &prefix) {
            (Some(a), _) => Bound::Excluded(a.to_string()),
            (None, Some(p)) => Bound::Included(p.clone()),
            (None, None) => Bound::Unbounded,
        };
        self.map(kind)
            .range::<String, _>((lower, Bound::Unbounded))
            .take_while(move |(k, _)| prefix.as_ref().is_none_or(|p| k.starts_with(p.as_str())))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// How many objects [`Store::items`] would yield (a binary search for the seeded tokens).
    pub(crate) fn count_after(&self, kind: Kind, namespace: Option<&str>, after: Option<&str>) -> usize {
        let stored = self.items_stored(kind, namespace, after).count();
        let seeded = self
            .seeded
            .table(kind)
            .map(|t| t.live_from(t.start(after)))
            .unwrap_or(0);
        stored + seeded + self.bulk.count_after(kind, namespace, after)
    }

    /// Keys of the objects of `kind`, stored and seeded, for which `keep` holds (a seeded token is rendered to be
    /// looked at, so this is for rare sweeps such as a disabled user's or provider's tokens).
    pub(crate) fn keys_where(&self, kind: Kind, keep: impl Fn(&Value) -> bool) -> Vec<String> {
        self.items(kind, None, None)
            .filter(|(_, item)| keep(&item.value()))
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// Every object of `kind` with its key, stored and seeded, in key order (a seeded one is rendered for the
    /// caller, so this is for sweeps, not for hot paths over bulk-seeded kinds).
    pub(crate) fn values<'a>(&'a self, kind: Kind) -> impl Iterator<Item = (&'a str, Cow<'a, Value>)> + 'a {
        self.items(kind, None, None).map(|(k, i)| (k, i.into_value()))
    }

    /// Keys of every object of `kind`, stored and seeded, in order.
    pub(crate) fn keys_of(&self, kind: Kind) -> Vec<String> {
        self.items(kind, None, None).map(|(k, _)| k.to_string()).collect()
    }

    /// Objects of `kind`, stored and seeded.
    pub(crate) fn len_of(&self, kind: Kind) -> usize {
        self.map(kind).len() + self.seeded.len(kind) + self.bulk.len(kind)
    }
}

/// Seeds `cfg.tokens` tokens over every non-system user, skewed so a few users hold many (as in the field).
/// Deterministic for a seed, apart from times, which are relative to now so the expired share stays stable.
/// They are kept as compact records ([`Seeded`]), rendered when asked for.
pub(crate) fn seed_tokens(store: &mut Store, cfg: &SimConfig, downstream: &str) {
    if cfg.tokens == 0 {
        return;
    }
    let owners: Vec<Owner> = store
        .values(Kind::User)
        .map(|(_, u)| u)
        .filter(|u| {
            !u.get("principalIds")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|p| p.as_str().is_some_and(|p| p.starts_with("system://"))))
        })
        .map(|u| Owner {
            id: u
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            username: u
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            display: u
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
        .collect();
    if owners.is_empty() {
        return;
    }
    let ext = cfg.version.at_least(2, 12);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x70c3_e115);
    let now = now_ms();
    let mut mgmt = Vec::with_capacity(cfg.tokens);
    let mut exts = Vec::with_capacity(if ext { cfg.tokens / EXT_EVERY + 1 } else { 0 });
    let mut taken: [HashSet<Box<str>>; 2] = [HashSet::with_capacity(cfg.tokens), HashSet::new()];
    let mut name = String::with_capacity(40);
    for i in 0..cfg.tokens {
        // Skew: squaring a uniform draw puts most tokens on the first users of the (sorted) list.
        let r: f64 = rng.gen();
        let owner = ((r * r) * owners.len() as f64) as usize % owners.len();
        let roll: u32 = rng.gen_range(0..100);
        let age = rng.gen_range(0..400 * DAY_MS);
        let created = now - age;
        let class: u8 = match roll {
            0..=24 => 0,
            25..=34 => 1,
            35..=54 => 2,
            55..=59 => 3,
            60..=79 => 4,
            _ => 5,
        };
        // Last use: a fifth never used; the rest some time between creation and now.
        let last_used = if rng.gen_range(0..5) == 0 {
            NEVER
        } else {
            created + rng.gen_range(0..=age.max(1))
        };
        let is_ext = ext && i % EXT_EVERY == EXT_EVERY - 1 && class != 1;
        let kind = if is_ext { Kind::ExtToken } else { Kind::Token };
        // Kubeconfig tokens are named after their owner (ops::new_v3_token, as Rancher's kubeconfig handler does).
        let set = &mut taken[is_ext as usize];
        let rec_name: Box<str> = loop {
            name.clear();
            if class == 1 {
                name.push_str("kubeconfig-");
                name.push_str(&owners[owner].id);
            } else {
                name.push_str("token-");
            }
            for _ in 0..5 {
                name.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
            }
            if !set.contains(name.as_str()) && store.get(kind, &name).is_none() {
                let b: Box<str> = name.as_str().into();
                set.insert(b.clone());
                break b;
            }
        };
        let rec = Rec {
            name: rec_name,
            rv: 0,
            created,
            last_used,
            owner: owner as u32,
            class,
            gone: false,
            full: OnceLock::new(),
        };
        if is_ext {
            exts.push(rec);
        } else {
            mgmt.push(rec);
        }
    }
    drop(taken);
    // Resource versions as objects stored one by one would have had (unique, after everything seeded before).
    let mut rv = store.rv;
    for r in mgmt.iter_mut().chain(exts.iter_mut()) {
        rv += 1;
        r.rv = rv;
    }
    store.rv = rv;
    let table = Table::new;
    let mut uid_seed: u64 = rng.gen();
    uid_seed |= 1;
    store.seeded = Seeded {
        owners,
        mgmt: table(mgmt),
        ext: table(exts),
        uid_seed,
        mgmt_last_used: cfg.version.at_least(2, 10),
        ext_cluster: cfg.version.at_least(2, 13),
        downstream: downstream.to_string(),
        created_ts: fmt_ms(now - 400 * DAY_MS),
    };
}

#[allow(clippy::too_many_arguments)]
fn mgmt_token(
    name: &str,
    who: &Owner,
    kind: &str,
    ttl: i64,
    created: i64,
    derived: bool,
    cluster: &str,
    last_used: Option<i64>,
) -> Value {
    let mut labels = Map::new();
    labels.insert("authn.management.cattle.io/token-userId".into(), json!(who.id));
    labels.insert("authn.management.cattle.io/kind".into(), json!(kind));
    labels.insert("cattle.io/creator".into(), json!("norman"));
    let mut obj = json!({
        "metadata": {"name": name, "labels": labels},
        "userId": who.id,
        "authProvider": "local",
        "userPrincipal": {"metadata": {"name": format!("local://{}", who.id)}, "displayName": who.display, "loginName": who.username,
                           "principalType": "user", "provider": "local"},
        "ttl": ttl,
        "expiresAt": if ttl > 0 { fmt_ms(created + ttl) } else { String::new() },
        "isDerived": derived,
        "description": match kind { "session" => "", "kubeconfig" => "Kubeconfig token", _ => "API key" },
        "clusterName": cluster,
        "enabled": true,
        "lastUpdateTime": "",
    });
    if let Some(t) = last_used {
        obj["lastUsedAt"] = json!(fmt_ms(t));
    }
    obj
}

#[allow(clippy::too_many_arguments)]
fn ext_token(
    name: &str,
    who: &Owner,
    kind: &str,
    ttl: i64,
    created: i64,
    last_used: Option<i64>,
    cluster: &str,
    has_cluster: bool,
) -> Value {
    let mut spec = json!({
        "userID": who.id,
        "userPrincipal": {"name": format!("local://{}", who.id), "displayName": who.display, "loginName": who.username,
                           "principalType": "user", "provider": "local"},
        "kind": kind,
        "ttl": ttl,
        "enabled": true,
        "description": if kind == "session" { "" } else { "API key" },
    });
    if has_cluster {
        spec["clusterName"] = json!(cluster);
    }
    let mut status = json!({"current": false, "expired": false, "expiresAt": if ttl > 0 { fmt_ms(created + ttl) } else { String::new() },
                            "lastUpdateTime": fmt_ms(created)});
    if let Some(t) = last_used {
        status["lastUsedAt"] = json!(fmt_ms(t));
    }
    json!({
        "metadata": {"name": name, "labels": {"cattle.io/user-id": who.id, "authn.management.cattle.io/kind": kind}},
        "spec": spec,
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RancherVersion;
    use crate::state::Store;

    fn seeded_store(version: RancherVersion, users: usize, tokens: usize) -> Store {
        let cfg = SimConfig::default()
            .rancher_version(version)
            .users(users)
            .tokens(tokens)
            .seed(5);
        let mut store = Store::new(version, rand_chacha::ChaCha8Rng::seed_from_u64(5), false);
        crate::seed::seed_2x(&mut store, &cfg);
        store
    }

    #[test]
    fn a_listed_seeded_token_is_byte_for_byte_its_object() {
        for version in [RancherVersion::V2_13, RancherVersion::V2_12, RancherVersion::V2_8] {
            let store = seeded_store(version, 20, 400);
            let now = now_ms();
            let mut seen = [0usize; 2];
            for kind in [Kind::Token, Kind::ExtToken] {
                for (name, item) in store.items(kind, None, None) {
                    let mut fast = Vec::new();
                    if item.write_seeded(now, &mut fast).is_none() {
                        continue;
                    }
                    let mut obj = item.value().into_owned();
                    if kind == Kind::ExtToken {
                        obj["status"]["expired"] =
                            json!(crate::ops::expired(crate::state::s(&obj, "status.expiresAt")));
                    }
                    assert_eq!(
                        String::from_utf8(fast).unwrap(),
                        serde_json::to_string(&obj).unwrap(),
                        "{version:?} {name}"
                    );
                    seen[(kind == Kind::ExtToken) as usize] += 1;
                }
            }
            assert!(seen[0] > 300, "{version:?}: {seen:?}");
            assert_eq!(seen[1] > 0, version.at_least(2, 12), "{version:?}: {seen:?}");
        }
    }

    #[test]
    fn seeded_tokens_act_as_stored_objects_and_stay_in_name_order() {
        let mut store = seeded_store(RancherVersion::V2_13, 10, 3_000);
        let names: Vec<String> = store
            .items(Kind::Token, None, None)
            .map(|(k, _)| k.to_string())
            .collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        let total = store.len_of(Kind::Token);
        assert_eq!(names.len(), total);
        assert_eq!(store.count_after(Kind::Token, None, Some(&names[1500])), total - 1501);
        // Read, replaced, deleted: as any object.
        let name = names[1200].clone();
        let obj = store
            .get(Kind::Token, &name)
            .cloned()
            .expect("a seeded token reads by name");
        assert_eq!(crate::state::s(&obj, "metadata.name"), name);
        let mut changed = obj.clone();
        changed["description"] = json!("changed");
        store.put(Kind::Token, name.clone(), changed, None);
        assert_eq!(
            crate::state::s(store.get(Kind::Token, &name).unwrap(), "description"),
            "changed"
        );
        assert_eq!(store.len_of(Kind::Token), total, "replaced, not added");
        let gone = names[1300].clone();
        assert!(store.remove(Kind::Token, &gone, true).is_some());
        assert!(store.get(Kind::Token, &gone).is_none());
        assert_eq!(store.len_of(Kind::Token), total - 1);
        assert_eq!(
            store.count_after(Kind::Token, None, Some(&names[1000])),
            total - 1001 - 1
        );
        let listed: Vec<String> = store
            .items(Kind::Token, None, None)
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(listed.len(), total - 1);
        assert!(listed.contains(&name) && !listed.contains(&gone));
        assert!(listed.windows(2).all(|w| w[0] < w[1]));
    }
}
