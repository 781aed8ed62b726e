//! The watcher: follows Rancher's access objects (global role bindings, cluster and project role template
//! bindings, global roles, role templates, tokens) on the RK-API and records every binding made or removed, matched
//! to the approval request that did it or reported as out of band.
//!
//! - One watcher per kind across replicas: a store lease (`watch/<kind>`) names the replica that follows it; the
//!   others wait and take over when it stops renewing.
//! - It resumes from the last resourceVersion it saw (kept with `Store::state_put`, so a restart or another replica
//!   goes on from there); the first start lists once and reports nothing already there.
//! - A `410 Expired` (the version is older than Rancher keeps) relists: objects changed since the last version seen
//!   and made after the last position was saved are reported; nothing is reported twice, because each change is
//!   recorded once per key in the same store transaction as its audit entry (`Store::record_access_observed`).
//! - A broken stream is opened again after a backoff that doubles up to 30 s.
//!
//! Attribution: a binding the product makes carries the `rancher-access.io/request` annotation
//! ([`rancher_workflows::bindings::REQUEST_ANNOTATION`]). A binding made with it, by a request that exists and ran
//! (and by the service account, when Rancher says who made it), is `binding.created` with that request. A removal
//! is `binding.deleted` when a grant's revocation or a running revoke request accounts for it. Anything else is
//! `binding.out_of_band`: subject, role and creator by id and by name, and when. With `revoke_out_of_band`, a
//! revoke request is filed for each cluster or project binding made out of band (it waits for approval as any
//! other).
//!
//! Roles and tokens are followed too (their watches keep the positions and metrics), but only bindings are matched
//! and reported.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rancher_api::{ids, WatchEvent, WatchEventType, WatchOptions};
use rancher_approval::audit::{AccessObserved, ObservedChange};
use rancher_approval::{RequestFilter, RequestState};
use serde_json::Value;
use tokio::sync::{watch, Mutex};

use crate::app::App;
use crate::config::WatchSettings;

/// One kind the watcher follows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    /// Its key in the store (positions, leases).
    pub(crate) key: &'static str,
    /// The RK-API list watched.
    pub(crate) list: &'static str,
    /// The Kubernetes kind.
    pub(crate) name: &'static str,
    /// Whether its changes are matched and reported (bindings).
    pub(crate) binding: bool,
}

/// Every kind watched.
pub(crate) const KINDS: [Kind; 6] = [
    Kind {
        key: "globalrolebindings",
        list: ids::RK_GLOBALROLEBINDINGS_LIST,
        name: "GlobalRoleBinding",
        binding: true,
    },
    Kind {
        key: "clusterroletemplatebindings",
        list: ids::RK_CLUSTERROLETEMPLATEBINDINGS_LIST_ALL,
        name: "ClusterRoleTemplateBinding",
        binding: true,
    },
    Kind {
        key: "projectroletemplatebindings",
        list: ids::RK_PROJECTROLETEMPLATEBINDINGS_LIST_ALL,
        name: "ProjectRoleTemplateBinding",
        binding: true,
    },
    Kind {
        key: "globalroles",
        list: ids::RK_GLOBALROLES_LIST,
        name: "GlobalRole",
        binding: false,
    },
    Kind {
        key: "roletemplates",
        list: ids::RK_ROLETEMPLATES_LIST,
        name: "RoleTemplate",
        binding: false,
    },
    Kind {
        key: "tokens",
        list: ids::RK_TOKENS_LIST,
        name: "Token",
        binding: false,
    },
];

/// The store namespace of the watch positions (`<resourceVersion> <RFC 3339 time saved>` per kind).
const POSITIONS: &str = "watch-position";
/// How long a watcher's lease runs without renewal.
const LEASE: Duration = Duration::from_secs(10);
/// How often the holder renews it (and a replica without it asks again).
const RENEW: Duration = Duration::from_secs(3);
/// How long the server keeps one watch open; the watcher then watches again from where it is.
const WATCH_FOR: Duration = Duration::from_secs(300);
/// The position is saved at least this often while events come (every bookmark and stream end too).
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// Backoff after a failure: first and longest.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Objects per list page.
const PAGE: i64 = 500;
/// Who the audit entries name as their actor.
const ACTOR: &str = "rancher-access-watcher";

/// Runs one watcher per kind until `stop` changes.
pub(crate) async fn run(app: Arc<App>, settings: WatchSettings, stop: watch::Receiver<bool>) {
    let holder = format!(
        "{}/{}",
        app.runner.process_label(),
        rancher_approval::RequestId::generate()
    );
    let names = Arc::new(Names::default());
    let watchers = KINDS.iter().map(|kind| {
        follow_kind(
            app.clone(),
            *kind,
            settings,
            holder.clone(),
            names.clone(),
            stop.clone(),
        )
    });
    futures::future::join_all(watchers).await;
}

/// Follows one kind while this replica holds its lease; waits for it otherwise.
async fn follow_kind(
    app: Arc<App>,
    kind: Kind,
    settings: WatchSettings,
    holder: String,
    names: Arc<Names>,
    mut stop: watch::Receiver<bool>,
) {
    let lease = format!("watch/{}", kind.key);
    let mut backoff = BACKOFF_FIRST;
    loop {
        if *stop.borrow() {
            break;
        }
        let now = (app.clock)();
        let held = app
            .store()
            .try_lease(&lease, &holder, now + chrono_of(LEASE), now)
            .await;
        let wait = match held {
            Ok(true) => {
                let mut w = Follower {
                    app: &app,
                    kind,
                    settings,
                    holder: &holder,
                    lease: &lease,
                    names: &names,
                };
                match w.follow(&mut stop).await {
                    Ok(()) => {
                        backoff = BACKOFF_FIRST;
                        Duration::ZERO
                    }
                    Err(e) => {
                        app.metrics.watch_restart();
                        tracing::warn!(kind = kind.key, "watching Rancher: {e}; watching again in {backoff:?}");
                        let b = backoff;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        b
                    }
                }
            }
            Ok(false) => RENEW,
            Err(e) => {
                tracing::warn!(kind = kind.key, "watch lease: {e}");
                RENEW
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    let _ = app.store().release_lease(&lease, &holder).await;
}

fn chrono_of(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or_default()
}

/// One kind's watch while this replica holds its lease.
struct Follower<'a> {
    app: &'a Arc<App>,
    kind: Kind,
    settings: WatchSettings,
    holder: &'a str,
    lease: &'a str,
    names: &'a Names,
}

impl Follower<'_> {
    /// Watches from the saved position until the stream ends, the lease is lost or `stop` changes.
    async fn follow(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), String> {
        let client = &self.app.service.client;
        let (mut position, saved_at) = match self.position().await? {
            Some(p) => p,
            None => {
                // First start: what exists now is the baseline, not news.
                let rv = self.list(None).await?;
                self.save(&rv).await?;
                (rv, (self.app.clock)())
            }
        };
        let options = WatchOptions {
            resource_version: Some(position.clone()),
            bookmarks: true,
            timeout: WATCH_FOR,
        };
        let mut stream = client
            .watch(self.kind.list, &[], &options)
            .await
            .map_err(|e| format!("could not open the watch of {}: {e}", self.kind.key))?;
        let mut renew = tokio::time::interval(RENEW);
        renew.tick().await;
        let mut last_save = Instant::now();
        let mut unsaved = false;
        let result = loop {
            tokio::select! {
                _ = stop.changed() => break Ok(()),
                _ = renew.tick() => {
                    let now = (self.app.clock)();
                    match self.app.store().try_lease(self.lease, self.holder, now + chrono_of(LEASE), now).await {
                        Ok(true) => {}
                        Ok(false) => break Ok(()),
                        Err(e) => break Err(format!("could not renew the watch lease: {e}")),
                    }
                }
                event = stream.next() => {
                    let event = match event {
                        Ok(Some(e)) => e,
                        Ok(None) => break Ok(()),
                        Err(e) => break Err(format!("the watch of {} broke: {e}", self.kind.key)),
                    };
                    match event.kind {
                        WatchEventType::Error if event.is_expired() => {
                            // Older than Rancher keeps: list again, report what changed since, go on from the list.
                            self.app.metrics.watch_restart();
                            let rv = self.list(Some((&position, saved_at))).await?;
                            position = rv;
                            unsaved = true;
                            break Ok(());
                        }
                        WatchEventType::Error => {
                            let said: String = event.object.to_string().chars().take(300).collect();
                            break Err(format!("Rancher ended the watch of {} with an error: {said:?}", self.kind.key));
                        }
                        WatchEventType::Bookmark => {}
                        WatchEventType::Added | WatchEventType::Modified | WatchEventType::Deleted => {
                            self.observe(&event).await?;
                        }
                    }
                    if let Some(rv) = event.resource_version() {
                        position = rv.to_string();
                        unsaved = true;
                    }
                    if unsaved && (event.kind == WatchEventType::Bookmark || last_save.elapsed() >= SAVE_EVERY) {
                        self.save(&position).await?;
                        last_save = Instant::now();
                        unsaved = false;
                    }
                }
            }
        };
        if unsaved {
            self.save(&position).await?;
        }
        result
    }

    /// The saved position and when it was saved.
    async fn position(&self) -> Result<Option<(String, DateTime<Utc>)>, String> {
        let saved = self
            .app
            .store()
            .state_get(POSITIONS, self.kind.key, (self.app.clock)())
            .await
            .map_err(|e| format!("could not read the watch position: {e}"))?;
        Ok(saved.and_then(|s| {
            let (rv, at) = s.split_once(' ')?;
            Some((
                rv.to_string(),
                DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
            ))
        }))
    }

    async fn save(&self, rv: &str) -> Result<(), String> {
        let at = (self.app.clock)().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.app
            .store()
            .state_put(POSITIONS, self.kind.key, &format!("{rv} {at}"), None)
            .await
            .map_err(|e| format!("could not save the watch position: {e}"))
    }

    /// Lists the kind page by page and answers the list's resourceVersion. With `since` (after a 410), each object
    /// changed after that version and made after that time is reported as made.
    async fn list(&self, since: Option<(&str, DateTime<Utc>)>) -> Result<String, String> {
        let mut cont = String::new();
        let after: Option<u64> = since.and_then(|(rv, _)| rv.parse().ok());
        loop {
            let (items, next, rv) = self.page(&cont).await?;
            if let (Some(after), Some((_, saved_at))) = (after, since) {
                for item in items {
                    let rv: Option<u64> = text(&item, "/metadata/resourceVersion").and_then(|r| r.parse().ok());
                    let made = text(&item, "/metadata/creationTimestamp")
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        // Rancher's timestamps have whole seconds.
                        .is_some_and(|t| t.with_timezone(&Utc) >= saved_at - chrono::TimeDelta::seconds(1));
                    if rv.is_some_and(|rv| rv > after) && made {
                        let event = WatchEvent {
                            kind: WatchEventType::Added,
                            object: item,
                        };
                        self.observe(&event).await?;
                    }
                }
            }
            if next.is_empty() {
                return rv.ok_or_else(|| format!("the list of {} has no resourceVersion", self.kind.key));
            }
            cont = next;
        }
    }

    /// One page of the kind's list after `cont`: its objects as Rancher sent them, the next continue token (empty
    /// at the end) and the list's resourceVersion.
    async fn page(&self, cont: &str) -> Result<(Vec<Value>, String, Option<String>), String> {
        use rancher_api::requests::{
            RkClusterroletemplatebindingsListAll, RkGlobalrolebindingsList, RkGlobalrolesList,
            RkProjectroletemplatebindingsListAll, RkRoletemplatesList, RkTokensList,
        };
        let client = &self.app.service.client;
        macro_rules! page {
            ($req:expr) => {{
                let mut req = $req.limit(PAGE);
                if !cont.is_empty() {
                    req = req.continue_token(cont);
                }
                let list = client
                    .send(&req)
                    .await
                    .map_err(|e| format!("could not list {}: {e}", self.kind.key))?;
                let items = list
                    .items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| serde_json::to_value(i).ok())
                    .collect();
                let meta = list.metadata.unwrap_or_default();
                (items, meta.continue_.unwrap_or_default(), meta.resource_version)
            }};
        }
        Ok(match self.kind.key {
            "globalrolebindings" => page!(RkGlobalrolebindingsList::new()),
            "clusterroletemplatebindings" => page!(RkClusterroletemplatebindingsListAll::new()),
            "projectroletemplatebindings" => page!(RkProjectroletemplatebindingsListAll::new()),
            "globalroles" => page!(RkGlobalrolesList::new()),
            "roletemplates" => page!(RkRoletemplatesList::new()),
            _ => page!(RkTokensList::new()),
        })
    }

    /// Records one change (bindings only): matched to its request, or out of band.
    async fn observe(&self, event: &WatchEvent) -> Result<(), String> {
        if !self.kind.binding {
            return Ok(());
        }
        let change = match event.kind {
            WatchEventType::Added => ObservedChange::Created,
            WatchEventType::Deleted => ObservedChange::Deleted,
            _ => return Ok(()),
        };
        let mut seen = facts(
            self.kind,
            change,
            &event.object,
            &self.app.service.client.base_url().to_string(),
        );
        let (request, note) = match change {
            ObservedChange::Created => self.made_by(&event.object).await,
            ObservedChange::Deleted => self.removed_by(&event.object).await,
        };
        seen.out_of_band = request.is_none();
        seen.request = request;
        seen.note = note;
        let client = &self.app.service.client;
        if let Some(id) = &seen.subject {
            seen.subject_name = self.names.user(client, id).await;
        }
        if let Some(id) = &seen.creator {
            seen.creator_name = self.names.user(client, id).await;
        }
        if let Some(role) = &seen.role {
            seen.role_name = self.names.role(client, self.kind, role).await;
        }
        let key = format!(
            "{}/{}/{}",
            self.kind.key,
            text(&event.object, "/metadata/uid").unwrap_or(&seen.resource_version),
            match change {
                ObservedChange::Created => "created",
                ObservedChange::Deleted => "deleted",
            }
        );
        let out_of_band = seen.out_of_band;
        let recorded = self
            .app
            .store()
            .record_access_observed(ACTOR, &key, seen.clone(), (self.app.clock)())
            .await
            .map_err(|e| format!("could not record a change to {} {}: {e}", self.kind.name, seen.name))?;
        if !recorded {
            return Ok(());
        }
        self.app.metrics.access_observed(
            self.kind.name,
            match change {
                ObservedChange::Created => "created",
                ObservedChange::Deleted => "deleted",
            },
            out_of_band,
        );
        if out_of_band && change == ObservedChange::Created && self.settings.revoke_out_of_band {
            self.file_revoke(&seen).await;
        }
        Ok(())
    }

    /// The request that made a binding: the one its annotation names, when that request exists, was approved to
    /// run and (when Rancher says who made the binding) the service account made it. Otherwise none, with why when
    /// the annotation named one.
    async fn made_by(&self, obj: &Value) -> (Option<String>, Option<String>) {
        let Some(id) = annotation(obj, rancher_workflows::bindings::REQUEST_ANNOTATION) else {
            return (None, None);
        };
        let id = id.to_string();
        let shown = id.clone();
        let request = match id.parse::<rancher_approval::RequestId>() {
            Ok(rid) => self.app.store().get_request(&rid).await.ok(),
            Err(_) => None,
        };
        let Some(request) = request else {
            return (None, Some(format!("it names request {shown}, which does not exist")));
        };
        if !matches!(
            request.state,
            RequestState::Executing | RequestState::Succeeded | RequestState::Failed
        ) {
            return (
                None,
                Some(format!(
                    "it names request {shown}, which is {} and never ran",
                    request.state.as_str()
                )),
            );
        }
        // The executor is the service account (or, for a request run from the command line, its requester).
        let service = &self.app.service.principal.id;
        if let Some(creator) = annotation(obj, "field.cattle.io/creatorId") {
            if creator != service && creator != request.requester.id {
                return (
                    None,
                    Some(format!(
                        "it names request {shown}, but {} made it, not the service account",
                        creator
                    )),
                );
            }
        }
        (Some(id), None)
    }

    /// The request that removed a binding: the grant it belongs to when that grant is being (or was) revoked or
    /// ended, or a revoke request running now that names the binding.
    async fn removed_by(&self, obj: &Value) -> (Option<String>, Option<String>) {
        let name = text(obj, "/metadata/name").unwrap_or_default();
        if let Some(id) = annotation(obj, rancher_workflows::bindings::REQUEST_ANNOTATION) {
            if let Ok(g) = self.app.store().get_grant(id).await {
                let now = (self.app.clock)();
                let ending = g.revocation.is_some() || g.claim.is_some() || g.ends_at() <= now;
                if ending && g.granted.binding == name {
                    return (Some(g.id), None);
                }
            }
        }
        let running = self
            .app
            .store()
            .list_requests(&RequestFilter {
                states: vec![RequestState::Executing],
                ..Default::default()
            })
            .await
            .unwrap_or_default();
        for r in running {
            if r.workflow_id.starts_with("revoke-") && names_binding(&r.inputs, name) {
                return (Some(r.id.to_string()), None);
            }
        }
        (None, None)
    }

    /// Files a revoke request for a binding made out of band (cluster and project bindings; a global one is
    /// reported only).
    async fn file_revoke(&self, seen: &AccessObserved) {
        let (workflow, inputs) = match (self.kind.key, &seen.scope) {
            ("clusterroletemplatebindings", Some(cluster)) => (
                "revoke-cluster-role",
                serde_json::json!({"cluster": cluster, "binding": seen.name}),
            ),
            ("projectroletemplatebindings", Some(project)) => (
                "revoke-project-role",
                serde_json::json!({"project": project, "binding": seen.name}),
            ),
            _ => {
                tracing::info!(binding = %seen.name, "a global role binding made out of band is reported, not revoked automatically");
                return;
            }
        };
        let reason = format!(
            "{} {} was made outside the product{}; filed automatically by the watcher",
            self.kind.name,
            seen.name,
            seen.creator.as_deref().map(|c| format!(" by {c}")).unwrap_or_default()
        );
        match self
            .app
            .runner
            .submit(&self.app.service, workflow, inputs, Some(reason), false)
            .await
        {
            Ok(_) => {
                tracing::info!(binding = %seen.name, workflow, "filed a revoke request for an out-of-band binding")
            }
            Err(e) => {
                tracing::warn!(binding = %seen.name, workflow, "could not file a revoke request for an out-of-band binding: {e}")
            }
        }
    }
}

/// What a binding object says: kind, name, subject, role, scope, creator, when.
pub(crate) fn facts(kind: Kind, change: ObservedChange, obj: &Value, server: &str) -> AccessObserved {
    let s = |p: &str| text(obj, p).filter(|v| !v.is_empty()).map(str::to_string);
    let subject = s("/userName")
        .or_else(|| s("/groupPrincipalName"))
        .or_else(|| s("/userPrincipalName"));
    let role = s("/globalRoleName").or_else(|| s("/roleTemplateName"));
    let scope = s("/clusterName").or_else(|| s("/projectName"));
    let changed_at = match change {
        ObservedChange::Created => s("/metadata/creationTimestamp"),
        ObservedChange::Deleted => s("/metadata/deletionTimestamp"),
    };
    AccessObserved {
        change,
        kind: kind.name.to_string(),
        name: s("/metadata/name").unwrap_or_default(),
        namespace: s("/metadata/namespace"),
        uid: s("/metadata/uid"),
        resource_version: s("/metadata/resourceVersion").unwrap_or_default(),
        subject,
        subject_name: None,
        role,
        role_name: None,
        scope,
        creator: annotation(obj, "field.cattle.io/creatorId").map(str::to_string),
        creator_name: None,
        changed_at,
        request: None,
        out_of_band: true,
        note: None,
        server: server.trim_end_matches('/').to_string(),
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// Whether a request's inputs name the binding (its `binding` input).
fn names_binding(inputs: &impl serde::Serialize, binding: &str) -> bool {
    serde_json::to_value(inputs)
        .ok()
        .and_then(|v| v.get("binding").and_then(Value::as_str).map(|b| b == binding))
        .unwrap_or(false)
}

/// Names of users and roles, looked up once each (a failed look-up is not retried for a minute).
#[derive(Default)]
struct Names {
    cache: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl Names {
    const FORGET_AFTER: Duration = Duration::from_secs(60);

    async fn cached(&self, key: String, look_up: impl std::future::Future<Output = Option<String>>) -> Option<String> {
        if let Some((name, at)) = self.cache.lock().await.get(&key) {
            if name.is_some() || at.elapsed() < Self::FORGET_AFTER {
                return name.clone();
            }
        }
        let name = look_up.await;
        let mut cache = self.cache.lock().await;
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, (name.clone(), Instant::now()));
        name
    }

    /// A user's name: `Display Name (username)`, or the username.
    async fn user(&self, client: &rancher_api::Client, id: &str) -> Option<String> {
        if !(id.starts_with("u-") || id.starts_with("user-")) {
            return None;
        }
        self.cached(format!("user/{id}"), async {
            let u = client.send(&rancher_api::requests::RkUsersGet::new(id)).await.ok()?;
            let username = u.username.as_deref().filter(|s| !s.is_empty());
            let display = u.display_name.as_deref().filter(|s| !s.is_empty());
            match (display, username) {
                (Some(d), Some(u)) if d != u => Some(format!("{d} ({u})")),
                (_, Some(u)) => Some(u.to_string()),
                (Some(d), None) => Some(d.to_string()),
                (None, None) => None,
            }
        })
        .await
    }

    /// A role's display name.
    async fn role(&self, client: &rancher_api::Client, kind: Kind, role: &str) -> Option<String> {
        let global = kind.key == "globalrolebindings";
        self.cached(format!("role/{global}/{role}"), async {
            let name = if global {
                client
                    .send(&rancher_api::requests::RkGlobalrolesGet::new(role))
                    .await
                    .ok()?
                    .display_name
            } else {
                client
                    .send(&rancher_api::requests::RkRoletemplatesGet::new(role))
                    .await
                    .ok()?
                    .display_name
            };
            name.filter(|s| !s.is_empty())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_binding_object_gives_its_subject_role_scope_and_creator() {
        let obj = json!({"metadata": {"name": "crtb-1", "namespace": "c-1", "uid": "u1", "resourceVersion": "7",
                "creationTimestamp": "2026-12-08T01:00:00Z",
                "annotations": {"field.cattle.io/creatorId": "user-admin"}},
            "clusterName": "c-1", "roleTemplateName": "cluster-owner", "userName": "u-bob"});
        let f = facts(KINDS[1], ObservedChange::Created, &obj, "https://rancher.example/");
        assert_eq!(f.kind, "ClusterRoleTemplateBinding");
        assert_eq!(f.subject.as_deref(), Some("u-bob"));
        assert_eq!(f.role.as_deref(), Some("cluster-owner"));
        assert_eq!(f.scope.as_deref(), Some("c-1"));
        assert_eq!(f.creator.as_deref(), Some("user-admin"));
        assert_eq!(f.changed_at.as_deref(), Some("2026-12-08T01:00:00Z"));
        assert_eq!(f.server, "https://rancher.example");
        let group = json!({"metadata": {"name": "grb-1"}, "globalRoleName": "admin",
            "groupPrincipalName": "github_team://7"});
        let f = facts(KINDS[0], ObservedChange::Deleted, &group, "s");
        assert_eq!(f.subject.as_deref(), Some("github_team://7"));
        assert_eq!(f.scope, None);
        assert_eq!(f.creator, None);
    }

    #[test]
    fn a_revoke_request_names_its_binding_by_the_binding_input() {
        assert!(names_binding(&json!({"cluster": "c-1", "binding": "crtb-1"}), "crtb-1"));
        assert!(!names_binding(
            &json!({"cluster": "c-1", "binding": "crtb-2"}),
            "crtb-1"
        ));
        assert!(!names_binding(&json!({"cluster": "c-1"}), "crtb-1"));
    }
}
