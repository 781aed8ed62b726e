//! Users, their UserAttributes and role bindings seeded in bulk (`SimConfig::users`, `bindings`,
//! `mixed_bindings`), kept as compact records rather than JSON objects, as the seeded tokens are
//! ([`crate::tokens`]): 100,000 users and 300,000 bindings as objects took minutes to build and gigabytes to hold.
//!
//! A record keeps what its object cannot be derived from: its key, resourceVersion, the 16 random bytes of its uid
//! and its number in the seeding order (a user's number gives its username, a binding's gives its kind, subject and
//! group). The random draws are the ones seeding the objects one by one made (names, then uids, in the same order),
//! so the objects, the ids and everything seeded after them are what they were. The store sees the records as
//! objects: `get` renders one and keeps it, `put` and `remove` turn it into a stored object first, lists render them
//! one at a time ([`Store::items`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::config::SimConfig;
use crate::ids;
use crate::seed::{grb_obj, user_obj, SEED_TIME};
use crate::state::{key_of, stamp_with, Kind, Store};
use crate::tokens::{Record, Table};

/// One object seeded in bulk.
pub(crate) struct BulkRec {
    key: Box<str>,
    rv: u64,
    uid: [u8; 16],
    /// A user's or attribute's number among the bulk users; a binding's among the bulk bindings (0-based).
    n: u32,
    gone: bool,
    /// The object, once something read it by key.
    pub(crate) full: OnceLock<Box<Value>>,
}

impl Record for BulkRec {
    fn key(&self) -> &str {
        &self.key
    }
    fn is_gone(&self) -> bool {
        self.gone
    }
}

/// The objects seeded in bulk, per kind (see the module documentation).
#[derive(Default)]
pub(crate) struct Bulk {
    users: Table<BulkRec>,
    attrs: Table<BulkRec>,
    grbs: Table<BulkRec>,
    crtbs: Table<BulkRec>,
    prtbs: Table<BulkRec>,
    /// The users the bindings name, in seeding order (binding `i` names `subjects[i % len]`).
    subjects: Vec<Box<str>>,
    /// Groups (`team(n)`) the bulk users are spread over, ten users a team.
    teams: usize,
    mixed: bool,
    downstream: String,
    project: String,
    project_ns: String,
}

/// The group principal of team `n`.
pub(crate) fn team(n: usize) -> String {
    format!("activedirectory_group://CN=Team {n:05},OU=Groups,DC=example,DC=com")
}

/// The kind of bulk binding `i`: a third each of global, cluster and project bindings when mixed.
fn binding_kind(mixed: bool, i: usize) -> Kind {
    match (mixed, i % 3) {
        (false, _) | (true, 0) => Kind::GlobalRoleBinding,
        (true, 1) => Kind::Crtb,
        _ => Kind::Prtb,
    }
}

/// Bulk binding `i` names a group (one in ten, when mixed).
fn binds_group(mixed: bool, i: usize) -> bool {
    mixed && i % 10 == 9
}

impl Bulk {
    fn table(&self, kind: Kind) -> Option<&Table<BulkRec>> {
        match kind {
            Kind::User => Some(&self.users),
            Kind::UserAttribute => Some(&self.attrs),
            Kind::GlobalRoleBinding => Some(&self.grbs),
            Kind::Crtb => Some(&self.crtbs),
            Kind::Prtb => Some(&self.prtbs),
            _ => None,
        }
    }

    fn table_mut(&mut self, kind: Kind) -> Option<&mut Table<BulkRec>> {
        match kind {
            Kind::User => Some(&mut self.users),
            Kind::UserAttribute => Some(&mut self.attrs),
            Kind::GlobalRoleBinding => Some(&mut self.grbs),
            Kind::Crtb => Some(&mut self.crtbs),
            Kind::Prtb => Some(&mut self.prtbs),
            _ => None,
        }
    }

    /// Bulk objects of `kind` still there.
    pub(crate) fn len(&self, kind: Kind) -> usize {
        self.table(kind).map(Table::live).unwrap_or(0)
    }

    /// A bulk object as a stored object, kept once asked for.
    pub(crate) fn get(&self, kind: Kind, key: &str) -> Option<&Value> {
        let t = self.table(kind)?;
        let rec = &t.recs[t.find(key)?];
        Some(rec.full.get_or_init(|| Box::new(self.render(kind, rec))))
    }

    /// The object of `rec` (borrowed when it was kept, else built for the caller).
    pub(crate) fn value<'a>(&'a self, kind: Kind, rec: &'a BulkRec) -> Cow<'a, Value> {
        match rec.full.get() {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Owned(self.render(kind, rec)),
        }
    }

    /// Takes a bulk object out (it is being replaced or deleted): its object, for the store to hold instead.
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

    /// The key prefix of `namespace`'s objects, for a namespaced kind.
    fn prefix(kind: Kind, namespace: Option<&str>) -> Option<String> {
        namespace.filter(|_| kind.info().namespaced).map(|ns| format!("{ns}:"))
    }

    /// Indexes `[start, end)` of the records of `kind` in `namespace` after `after`.
    fn bounds(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        after: Option<&str>,
    ) -> Option<(&Table<BulkRec>, usize, usize)> {
        let t = self.table(kind)?;
        let mut start = t.start(after);
        let mut end = t.recs.len();
        if let Some(p) = Self::prefix(kind, namespace) {
            start = start.max(t.at(&p));
            end = start + t.recs[start..].partition_point(|r| r.key().starts_with(p.as_str()));
        }
        Some((t, start, end))
    }

    /// The live records of `kind` (in `namespace` for a namespaced kind) with a key after `after`, in key order.
    pub(crate) fn range<'a>(
        &'a self,
        kind: Kind,
        namespace: Option<&str>,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a BulkRec> + 'a {
        let recs = match self.bounds(kind, namespace, after) {
            Some((t, start, end)) => &t.recs[start..end],
            None => &[],
        };
        recs.iter().filter(|r| !r.gone)
    }

    /// How many records [`Bulk::range`] yields (binary searches and a block's scan).
    pub(crate) fn count_after(&self, kind: Kind, namespace: Option<&str>, after: Option<&str>) -> usize {
        match self.bounds(kind, namespace, after) {
            Some((t, start, end)) => t.live_from(start) - t.live_from(end),
            None => 0,
        }
    }

    /// The stored object of a bulk record: exactly what seeding it as an object stored.
    fn render(&self, kind: Kind, rec: &BulkRec) -> Value {
        let n = rec.n as usize;
        let mut obj = match kind {
            Kind::User => user_obj(&rec.key, &format!("user{:05}", n + 1), &format!("User {:05}", n + 1)),
            Kind::UserAttribute => attribute_obj(&rec.key, n % self.teams.max(1)),
            _ => {
                let name = rec.key.rsplit(':').next().unwrap_or(&rec.key);
                let user = self
                    .subjects
                    .get(n % self.subjects.len().max(1))
                    .map(|s| &**s)
                    .unwrap_or("");
                binding_obj(
                    kind,
                    self.mixed,
                    name,
                    user,
                    binds_group(self.mixed, n).then(|| team((n / 10) % self.teams.max(1))),
                    &self.downstream,
                    &self.project,
                    &self.project_ns,
                )
            }
        };
        let info = kind.info();
        obj["apiVersion"] = json!(format!("{}/{}", info.group, info.version));
        obj["kind"] = json!(info.kind_name);
        stamp_with(&mut obj, rec.rv, ids::fmt_uid(&rec.uid), SEED_TIME);
        obj
    }
}

impl Bulk {
    /// Writes a bulk object as a list shows it, byte for byte what serializing its object gives (a unit test holds
    /// them equal), without building the object: lists of the bulk kinds cost what lists of stored objects did.
    pub(crate) fn write_json(&self, kind: Kind, rec: &BulkRec, buf: &mut Vec<u8>) {
        use std::io::Write as _;
        let s = |buf: &mut Vec<u8>, v: &str| serde_json::to_writer(&mut *buf, v).expect("in-memory JSON");
        let n = rec.n as usize;
        let name = rec.key.rsplit(':').next().unwrap_or(&rec.key);
        let user = self
            .subjects
            .get(n % self.subjects.len().max(1))
            .map(|s| &**s)
            .unwrap_or("");
        let meta_tail = |buf: &mut Vec<u8>| {
            let _ = write!(
                buf,
                ",\"uid\":\"{}\",\"resourceVersion\":\"{}\",\"creationTimestamp\":\"{SEED_TIME}\",\"generation\":1}}",
                ids::fmt_uid(&rec.uid),
                rec.rv
            );
        };
        let subject = |buf: &mut Vec<u8>| {
            if binds_group(self.mixed, n) {
                buf.extend_from_slice(b",\"groupPrincipalName\":");
                s(buf, &team((n / 10) % self.teams.max(1)));
            } else {
                buf.extend_from_slice(b",\"userName\":");
                s(buf, user);
                buf.extend_from_slice(b",\"userPrincipalName\":");
                s(buf, &format!("local://{user}"));
            }
        };
        buf.extend_from_slice(b"{\"metadata\":{\"name\":");
        s(buf, name);
        match kind {
            Kind::User => {
                meta_tail(buf);
                let _ = write!(
                    buf,
                    ",\"displayName\":\"User {:05}\",\"username\":\"user{:05}\"",
                    n + 1,
                    n + 1
                );
                buf.extend_from_slice(
                    b",\"description\":\"\",\"enabled\":true,\"mustChangePassword\":false,\"principalIds\":[",
                );
                s(buf, &format!("local://{}", rec.key));
                let _ = write!(
                    buf,
                    "],\"status\":{{\"conditions\":[{{\"type\":\"InitialRolesPopulated\",\"status\":\"True\",\"lastUpdateTime\":\"{SEED_TIME}\"}}]}}"
                );
            }
            Kind::UserAttribute => {
                meta_tail(buf);
                buf.extend_from_slice(b",\"UserName\":");
                s(buf, &rec.key);
                buf.extend_from_slice(
                    b",\"GroupPrincipals\":{\"activedirectory\":{\"Items\":[{\"metadata\":{\"name\":",
                );
                s(buf, &team(n % self.teams.max(1)));
                let _ = write!(
                    buf,
                    "}},\"principalType\":\"group\",\"provider\":\"activedirectory\",\"memberOf\":true}}]}}}},\"ExtraByProvider\":{{}},\"LastRefresh\":\"{SEED_TIME}\",\"NeedsRefresh\":false"
                );
            }
            Kind::GlobalRoleBinding => {
                buf.extend_from_slice(b",\"annotations\":{\"cleanup.cattle.io/grbUpgradeCluster\":\"true\"},\"ownerReferences\":[{\"apiVersion\":\"management.cattle.io/v3\",\"kind\":\"GlobalRole\",\"name\":\"user\",\"uid\":\"\"}]");
                meta_tail(buf);
                buf.extend_from_slice(b",\"globalRoleName\":\"user\"");
                let status = format!(
                    ",\"status\":{{\"summary\":\"Completed\",\"summaryLocal\":\"Completed\",\"localConditions\":[],\"lastUpdateTime\":\"{SEED_TIME}\"}}"
                );
                if self.mixed {
                    // The user fields were taken out of the object (swapping the status forward), then the subject
                    // was added at the end.
                    buf.extend_from_slice(status.as_bytes());
                    subject(buf);
                } else {
                    subject(buf);
                    buf.extend_from_slice(status.as_bytes());
                }
            }
            Kind::Crtb => {
                buf.extend_from_slice(b",\"namespace\":");
                s(buf, &self.downstream);
                meta_tail(buf);
                buf.extend_from_slice(b",\"clusterName\":");
                s(buf, &self.downstream);
                let _ = write!(
                    buf,
                    ",\"roleTemplateName\":\"cluster-member\",\"status\":{{\"summary\":\"Completed\",\"summaryLocal\":\"Completed\",\"summaryRemote\":\"Completed\",\"lastUpdateTime\":\"{SEED_TIME}\"}}"
                );
                subject(buf);
            }
            _ => {
                buf.extend_from_slice(b",\"namespace\":");
                s(buf, &self.project_ns);
                meta_tail(buf);
                buf.extend_from_slice(b",\"projectName\":");
                s(buf, &self.project);
                buf.extend_from_slice(b",\"roleTemplateName\":\"project-member\"");
                subject(buf);
            }
        }
        let info = kind.info();
        let _ = write!(
            buf,
            ",\"apiVersion\":\"{}/{}\",\"kind\":\"{}\"}}",
            info.group, info.version, info.kind_name
        );
    }
}

/// A bulk user's UserAttribute: a member of one team.
fn attribute_obj(id: &str, team_n: usize) -> Value {
    json!({
        "metadata": {"name": id},
        "UserName": id,
        "GroupPrincipals": {"activedirectory": {"Items": [
            {"metadata": {"name": team(team_n)}, "principalType": "group", "provider": "activedirectory", "memberOf": true}]}},
        "ExtraByProvider": {},
        "LastRefresh": SEED_TIME,
        "NeedsRefresh": false,
    })
}

/// A bulk binding of `kind` named `name` for `user`, or for `group` when given (`user` still names the global
/// binding's owner reference role; a group binding has no user fields).
fn binding_obj(
    kind: Kind,
    mixed: bool,
    name: &str,
    user: &str,
    group: Option<String>,
    downstream: &str,
    project: &str,
    project_ns: &str,
) -> Value {
    let mut obj = match kind {
        Kind::Crtb => json!({"metadata": {"name": name, "namespace": downstream}, "clusterName": downstream,
                       "roleTemplateName": "cluster-member",
                       "status": {"summary": "Completed", "summaryLocal": "Completed", "summaryRemote": "Completed", "lastUpdateTime": SEED_TIME}}),
        Kind::Prtb => json!({"metadata": {"name": name, "namespace": project_ns}, "projectName": project,
                       "roleTemplateName": "project-member"}),
        _ => grb_obj(name, "user", user),
    };
    if !mixed {
        // A plain global binding of the user, as it is.
        return obj;
    }
    if let Some(o) = obj.as_object_mut() {
        o.remove("userName");
        o.remove("userPrincipalName");
        match group {
            Some(g) => {
                o.insert("groupPrincipalName".into(), json!(g));
            }
            None => {
                o.insert("userName".into(), json!(user));
                o.insert("userPrincipalName".into(), json!(format!("local://{user}")));
            }
        }
    }
    obj
}

/// A fresh generated name for `kind` in `namespace`, drawn as [`Store::fresh_name`] draws it, also free of the
/// names in `taken` (those seeded so far, not in the store yet).
fn fresh_name(store: &mut Store, kind: Kind, namespace: &str, prefix: &str, taken: &mut HashSet<Box<str>>) -> Box<str> {
    loop {
        let name = ids::gen_name(&mut store.rng, prefix);
        let key = key_of(kind, namespace, &name);
        if !taken.contains(key.as_str()) && store.get(kind, &key).is_none() {
            taken.insert(key.into());
            return name.into();
        }
    }
}

/// A new record: the next resourceVersion and a uid, drawn as `Store::stamp_new` draws them.
fn record(store: &mut Store, key: Box<str>, n: usize) -> BulkRec {
    store.rv += 1;
    BulkRec {
        key,
        rv: store.rv,
        uid: ids::uid_bytes(&mut store.rng),
        n: n as u32,
        gone: false,
        full: OnceLock::new(),
    }
}

/// Seeds the bulk data sets (`users(N)`, `bindings(N)`, mixed or not) as compact records: the users
/// (`user00001`, ...), with `mixed_bindings` a UserAttribute per user making it a member of one team of ten, and
/// the bindings spread over the users (see [`SimConfig::mixed_bindings`]).
pub(crate) fn seed_bulk(store: &mut Store, cfg: &SimConfig, downstream: &str, project: &str) {
    let mut taken = HashSet::new();
    let mut users = Vec::with_capacity(cfg.users);
    let mut subjects: Vec<Box<str>> = Vec::with_capacity(cfg.users);
    for i in 0..cfg.users {
        let id = fresh_name(store, Kind::User, "", "u-", &mut taken);
        users.push(record(store, id.clone(), i));
        store.usernames.insert(format!("user{:05}", i + 1), id.to_string());
        subjects.push(id);
    }
    let teams = (subjects.len() / 10).max(1);
    let mut attrs = Vec::new();
    if cfg.mixed_bindings {
        attrs.reserve(subjects.len());
        for (i, id) in subjects.iter().enumerate() {
            attrs.push(record(store, id.clone(), i));
        }
    }
    if subjects.is_empty() && cfg.bindings > 0 {
        subjects = store.map(Kind::User).keys().map(|k| k.as_str().into()).collect();
    }
    let project_ns = store.project_namespace(project).unwrap_or_default();
    let mut by_kind: [(Vec<BulkRec>, HashSet<Box<str>>); 3] = Default::default();
    for i in 0..cfg.bindings {
        if subjects.is_empty() {
            break;
        }
        let kind = binding_kind(cfg.mixed_bindings, i);
        let (slot, ns, prefix) = match kind {
            Kind::Crtb => (1, downstream, "crtb-"),
            Kind::Prtb => (2, project_ns.as_str(), "prtb-"),
            _ => (0, "", "grb-"),
        };
        let name = fresh_name(store, kind, ns, prefix, &mut by_kind[slot].1);
        let key: Box<str> = key_of(kind, ns, &name).into();
        if kind == Kind::GlobalRoleBinding {
            let subject = if binds_group(cfg.mixed_bindings, i) {
                team((i / 10) % teams)
            } else {
                subjects[i % subjects.len()].to_string()
            };
            store.grb_by_user.entry(subject).or_default().insert(key.to_string());
        }
        by_kind[slot].0.push(record(store, key, i));
    }
    let [(grbs, _), (crtbs, _), (prtbs, _)] = by_kind;
    store.bulk = Bulk {
        users: Table::new(users),
        attrs: Table::new(attrs),
        grbs: Table::new(grbs),
        crtbs: Table::new(crtbs),
        prtbs: Table::new(prtbs),
        subjects,
        teams,
        mixed: cfg.mixed_bindings,
        downstream: downstream.to_string(),
        project: project.to_string(),
        project_ns,
    };
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::config::RancherVersion;
    use crate::seed::insert_new;

    /// How bulk data was seeded before the records: one object at a time (kept to compare against).
    fn seed_as_objects(store: &mut Store, cfg: &SimConfig, downstream: &str, project: &str) {
        let mut bulk_ids = Vec::with_capacity(cfg.users);
        for i in 0..cfg.users {
            let id = store.fresh_name(Kind::User, "", "u-");
            let username = format!("user{:05}", i + 1);
            let display = format!("User {:05}", i + 1);
            insert_new(store, Kind::User, user_obj(&id, &username, &display), SEED_TIME, None);
            bulk_ids.push(id);
        }
        let teams = (bulk_ids.len() / 10).max(1);
        if cfg.mixed_bindings {
            for (i, id) in bulk_ids.iter().enumerate() {
                let attr = json!({
                    "metadata": {"name": id},
                    "UserName": id,
                    "GroupPrincipals": {"activedirectory": {"Items": [
                        {"metadata": {"name": team(i % teams)}, "principalType": "group", "provider": "activedirectory", "memberOf": true}]}},
                    "ExtraByProvider": {},
                    "LastRefresh": SEED_TIME,
                    "NeedsRefresh": false,
                });
                insert_new(store, Kind::UserAttribute, attr, SEED_TIME, None);
            }
        }
        if cfg.bindings > 0 {
            let subjects: Vec<String> = if bulk_ids.is_empty() {
                store.map(Kind::User).keys().cloned().collect()
            } else {
                bulk_ids
            };
            let project_ns = store.project_namespace(project).unwrap_or_default();
            for i in 0..cfg.bindings {
                let user = &subjects[i % subjects.len()];
                if !cfg.mixed_bindings {
                    let n = store.fresh_name(Kind::GlobalRoleBinding, "", "grb-");
                    insert_new(
                        store,
                        Kind::GlobalRoleBinding,
                        grb_obj(&n, "user", user),
                        SEED_TIME,
                        None,
                    );
                    continue;
                }
                let subject = if i % 10 == 9 {
                    json!({"groupPrincipalName": team((i / 10) % teams)})
                } else {
                    json!({"userName": user, "userPrincipalName": format!("local://{user}")})
                };
                let (kind, mut obj) = match i % 3 {
                    0 => {
                        let n = store.fresh_name(Kind::GlobalRoleBinding, "", "grb-");
                        let mut b = grb_obj(&n, "user", user);
                        b.as_object_mut()
                            .map(|o| (o.remove("userName"), o.remove("userPrincipalName")));
                        (Kind::GlobalRoleBinding, b)
                    }
                    1 => {
                        let n = store.fresh_name(Kind::Crtb, downstream, "crtb-");
                        let b = json!({"metadata": {"name": n, "namespace": downstream}, "clusterName": downstream,
                                       "roleTemplateName": "cluster-member",
                                       "status": {"summary": "Completed", "summaryLocal": "Completed", "summaryRemote": "Completed", "lastUpdateTime": SEED_TIME}});
                        (Kind::Crtb, b)
                    }
                    _ => {
                        let n = store.fresh_name(Kind::Prtb, &project_ns, "prtb-");
                        let b = json!({"metadata": {"name": n, "namespace": project_ns}, "projectName": project,
                                       "roleTemplateName": "project-member"});
                        (Kind::Prtb, b)
                    }
                };
                if let (Some(o), Some(s)) = (obj.as_object_mut(), subject.as_object()) {
                    o.extend(s.clone());
                }
                insert_new(store, kind, obj, SEED_TIME, None);
            }
        }
    }

    /// A store with everything but the bulk data, and its downstream cluster and that cluster's Default project.
    fn base(seed: u64) -> (Store, String, String) {
        let cfg = SimConfig::default().seed(seed);
        let mut store = Store::new(
            RancherVersion::V2_13,
            rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            false,
        );
        crate::seed::seed_2x(&mut store, &cfg);
        let downstream = store
            .map(Kind::Cluster)
            .keys()
            .find(|k| k.as_str() != "local")
            .cloned()
            .expect("a downstream cluster");
        let project = store
            .map(Kind::Project)
            .iter()
            .find(|(k, p)| {
                k.starts_with(&format!("{downstream}:")) && crate::state::s(p, "spec.displayName") == "Default"
            })
            .map(|(_, p)| format!("{}:{}", downstream, crate::state::s(p, "metadata.name")))
            .expect("the downstream Default project");
        (store, downstream, project)
    }

    const KINDS: [Kind; 5] = [
        Kind::User,
        Kind::UserAttribute,
        Kind::GlobalRoleBinding,
        Kind::Crtb,
        Kind::Prtb,
    ];

    #[test]
    fn compact_records_are_the_objects_seeding_one_by_one_made() {
        for mixed in [true, false] {
            let mut cfg = SimConfig::default().users(300).bindings(900);
            if mixed {
                cfg = cfg.mixed_bindings();
            }
            let (mut compact, downstream, project) = base(9);
            let (mut objects, _, _) = base(9);
            seed_bulk(&mut compact, &cfg, &downstream, &project);
            seed_as_objects(&mut objects, &cfg, &downstream, &project);
            for kind in KINDS {
                let listed: Vec<(String, Value)> = compact
                    .items(kind, None, None)
                    .map(|(k, i)| (k.to_string(), i.value().into_owned()))
                    .collect();
                let stored: Vec<(String, Value)> =
                    objects.map(kind).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                assert_eq!(listed.len(), stored.len(), "{kind:?} mixed={mixed}");
                assert_eq!(listed, stored, "{kind:?} mixed={mixed}");
                assert_eq!(compact.len_of(kind), objects.map(kind).len());
                // Read by key, as a GET does, and kept.
                for (k, v) in stored.iter().step_by(37) {
                    assert_eq!(compact.get(kind, k), Some(v), "{kind:?} {k}");
                }
            }
            if mixed {
                assert!(compact.bulk.len(Kind::Crtb) >= 300 && compact.bulk.len(Kind::UserAttribute) == 300);
            }
            // The same draws: the indexes, the resourceVersion and the next random name agree.
            assert_eq!(compact.rv, objects.rv);
            assert_eq!(compact.usernames, objects.usernames);
            assert_eq!(compact.grb_by_user, objects.grb_by_user);
            assert_eq!(compact.uid(), objects.uid());
            // Namespaced lists and their counts.
            let ns = compact.project_namespace(&project).unwrap_or_default();
            for (kind, ns) in [(Kind::Crtb, downstream.as_str()), (Kind::Prtb, ns.as_str())] {
                let a: Vec<String> = compact
                    .items(kind, Some(ns), None)
                    .map(|(k, _)| k.to_string())
                    .collect();
                let b: Vec<String> = objects
                    .items(kind, Some(ns), None)
                    .map(|(k, _)| k.to_string())
                    .collect();
                assert_eq!(a, b);
                if a.len() > 10 {
                    assert_eq!(compact.count_after(kind, Some(ns), Some(&a[5])), a.len() - 6);
                }
            }
        }
    }

    #[test]
    fn a_listed_bulk_object_is_byte_for_byte_its_object() {
        for mixed in [true, false] {
            let mut cfg = SimConfig::default().users(120).bindings(600);
            if mixed {
                cfg = cfg.mixed_bindings();
            }
            let (mut store, downstream, project) = base(2);
            seed_bulk(&mut store, &cfg, &downstream, &project);
            let mut seen = 0;
            for kind in KINDS {
                for (key, item) in store.items(kind, None, None) {
                    let mut fast = Vec::new();
                    if item.write_seeded(0, &mut fast).is_none() {
                        continue;
                    }
                    let slow = serde_json::to_string(&item.value()).unwrap();
                    assert_eq!(String::from_utf8(fast).unwrap(), slow, "{kind:?} {key} mixed={mixed}");
                    seen += 1;
                }
            }
            assert_eq!(seen, 120 + 600 + if mixed { 120 } else { 0 });
        }
    }

    #[test]
    fn a_bulk_object_is_replaced_and_removed_as_a_stored_one() {
        let cfg = SimConfig::default().users(50).bindings(150).mixed_bindings();
        let (mut store, downstream, project) = base(4);
        seed_bulk(&mut store, &cfg, &downstream, &project);
        let users = store.keys_of(Kind::User);
        let total = users.len();
        let id = store.usernames["user00007"].clone();
        let mut changed = store.get(Kind::User, &id).cloned().expect("a bulk user reads by id");
        changed["username"] = json!("renamed");
        store.put(Kind::User, id.clone(), changed, None);
        assert_eq!(
            crate::state::s(store.get(Kind::User, &id).unwrap(), "username"),
            "renamed"
        );
        assert!(!store.usernames.contains_key("user00007"));
        assert_eq!(store.usernames["renamed"], id);
        assert_eq!(store.len_of(Kind::User), total);
        // Deleting a bulk user takes its bulk global bindings with it (the index knew them).
        let grbs = store.grb_by_user.get(&id).cloned().unwrap_or_default();
        assert!(!grbs.is_empty());
        let other = store.usernames["user00009"].clone();
        assert!(store.remove(Kind::User, &other, true).is_some());
        assert!(store.get(Kind::User, &other).is_none());
        assert_eq!(store.len_of(Kind::User), total - 1);
        assert!(store
            .values(Kind::GlobalRoleBinding)
            .all(|(_, g)| crate::state::s(&g, "userName") != other));
        let listed = store.keys_of(Kind::User);
        assert_eq!(listed.len(), total - 1);
        assert!(listed.windows(2).all(|w| w[0] < w[1]));
        assert!(listed.contains(&id) && !listed.contains(&other));
    }
}
