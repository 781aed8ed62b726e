//! RK-API watch streams, as the kube-apiserver serves them from its watch cache (crates/rancher-sim/src/watch.rs
//! names the Kubernetes source of each rule): a long-lived chunked stream of ADDED/MODIFIED/DELETED events from a
//! resourceVersion, BOOKMARK events when asked for, and a 410 `Expired` ERROR event for a version older than the
//! kept history.

mod common;

use std::time::Duration;

use common::*;
use rancher_sim::{Faults, RancherVersion, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const MG: &str = "/apis/management.cattle.io/v3";

/// An open watch: the response and the bytes of a line not yet complete.
struct Watch {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Watch {
    async fn open(sim: &SimHandle, path_and_query: &str) -> Watch {
        let resp = client(sim)
            .get(format!("{}{}", sim.base_url(), path_and_query))
            .bearer_auth(&sim.tokens().admin)
            .send()
            .await
            .expect("the watch is answered");
        assert_eq!(resp.status(), StatusCode::OK);
        Watch { resp, buf: Vec::new() }
    }

    /// The next event, or `None` when the server ended the stream. A stream silent for 20 s fails the test (a
    /// guard against hanging, not a timing assertion).
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).expect("each line is one JSON event"));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.resp.chunk())
                .await
                .expect("the stream says something within 20 s")
                .expect("the stream reads");
            match chunk {
                Some(c) => self.buf.extend_from_slice(&c),
                None => {
                    assert!(self.buf.is_empty(), "the stream ended inside a line");
                    return None;
                }
            }
        }
    }

    /// The next event that is not a BOOKMARK.
    async fn next_change(&mut self) -> Option<Value> {
        loop {
            let e = self.next().await?;
            if e["type"] != "BOOKMARK" {
                return Some(e);
            }
        }
    }
}

fn downstream(sim: &SimHandle) -> String {
    sim.users().downstream_cluster.clone()
}

async fn list_rv(sim: &SimHandle, path: &str) -> String {
    let (st, v) = admin_get(sim, path).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["metadata"]["resourceVersion"]
        .as_str()
        .expect("a list has a version")
        .to_string()
}

async fn create_crtb(sim: &SimHandle, user: &str, role: &str) -> Value {
    let cluster = downstream(sim);
    let (st, v) = call(
        sim,
        Method::POST,
        &format!("{MG}/namespaces/{cluster}/clusterroletemplatebindings"),
        Some(&sim.tokens().admin),
        Some(
            json!({"metadata": {"generateName": "crtb-", "namespace": cluster}, "clusterName": cluster,
                    "roleTemplateName": role, "userName": user}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

#[tokio::test]
async fn a_watch_from_a_lists_version_streams_each_change_as_it_happens() {
    let sim = start(RancherVersion::V2_13).await;
    let rv = list_rv(&sim, &format!("{MG}/clusterroletemplatebindings")).await;
    let mut w = Watch::open(
        &sim,
        &format!("{MG}/clusterroletemplatebindings?watch=true&resourceVersion={rv}"),
    )
    .await;
    assert_eq!(
        w.resp.headers()["content-type"],
        "application/json",
        "a JSON watch is plain application/json (the apiserver adds ;stream=watch to other media types only)"
    );
    // Nothing from before the version: the first event is the binding made after it was opened.
    let bob = sim.user_id("bob").unwrap();
    let made = create_crtb(&sim, &bob, "cluster-member").await;
    let name = made["metadata"]["name"].as_str().unwrap().to_string();
    let e = w.next_change().await.expect("an event");
    assert_eq!(e["type"], "ADDED", "{e}");
    assert_eq!(e["object"]["metadata"]["name"], name.as_str());
    assert_eq!(e["object"]["userName"], bob.as_str());
    let added_rv: u64 = e["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(added_rv > rv.parse::<u64>().unwrap());

    let cluster = downstream(&sim);
    let path = format!("{MG}/namespaces/{cluster}/clusterroletemplatebindings/{name}");
    let (st, v) = call_ct(
        &sim,
        Method::PATCH,
        &path,
        Some(&sim.tokens().admin),
        Some(json!({"metadata": {"annotations": {"example.com/note": "x"}}})),
        "application/merge-patch+json",
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let e = w.next_change().await.expect("an event");
    assert_eq!(e["type"], "MODIFIED", "{e}");
    assert_eq!(e["object"]["metadata"]["annotations"]["example.com/note"], "x");

    let (st, v) = call(&sim, Method::DELETE, &path, Some(&sim.tokens().admin), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The binding's finalizer first marks it (MODIFIED with a deletionTimestamp), then it goes (DELETED).
    let e = w.next_change().await.expect("an event");
    assert_eq!(e["type"], "MODIFIED", "{e}");
    assert!(e["object"]["metadata"]["deletionTimestamp"].is_string(), "{e}");
    let e = w.next_change().await.expect("an event");
    assert_eq!(e["type"], "DELETED", "{e}");
    assert_eq!(e["object"]["metadata"]["name"], name.as_str());
    let deleted_rv: u64 = e["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(deleted_rv > added_rv);
}

#[tokio::test]
async fn a_watch_from_a_version_sends_what_changed_since_and_other_kinds_stay_out() {
    let sim = start(RancherVersion::V2_13).await;
    let rv = list_rv(&sim, &format!("{MG}/clusterroletemplatebindings")).await;
    let bob = sim.user_id("bob").unwrap();
    let first = create_crtb(&sim, &bob, "cluster-member").await;
    // A change of another kind in between is not on this stream.
    let (st, v) = call(
        &sim,
        Method::POST,
        &format!("{MG}/globalrolebindings"),
        Some(&sim.tokens().admin),
        Some(json!({"metadata": {"generateName": "grb-"}, "globalRoleName": "user-base", "userName": bob})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let second = create_crtb(&sim, &bob, "cluster-owner").await;
    let mut w = Watch::open(
        &sim,
        &format!("{MG}/clusterroletemplatebindings?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
    )
    .await;
    let mut names = Vec::new();
    while let Some(e) = w.next().await {
        assert_eq!(e["type"], "ADDED", "{e}");
        assert_eq!(e["object"]["kind"], "ClusterRoleTemplateBinding", "{e}");
        names.push(e["object"]["metadata"]["name"].as_str().unwrap().to_string());
    }
    assert_eq!(
        names,
        vec![
            first["metadata"]["name"].as_str().unwrap(),
            second["metadata"]["name"].as_str().unwrap()
        ],
        "both bindings made after the version, in order, then the stream ends at timeoutSeconds"
    );
}

#[tokio::test]
async fn a_watch_without_a_version_starts_with_the_current_objects() {
    let sim = start(RancherVersion::V2_13).await;
    let (_, list) = admin_get(&sim, &format!("{MG}/globalroles")).await;
    let want = list["items"].as_array().unwrap().len();
    let mut w = Watch::open(&sim, &format!("{MG}/globalroles?watch=1&timeoutSeconds=1")).await;
    let mut n = 0;
    while let Some(e) = w.next().await {
        assert_eq!(e["type"], "ADDED", "{e}");
        n += 1;
    }
    assert_eq!(n, want, "every global role, once, as ADDED");
    assert!(n > 0);
}

#[tokio::test]
async fn bookmarks_carry_the_version_and_nothing_else_when_asked_for() {
    let sim = start(RancherVersion::V2_13).await;
    sim.set_faults(Faults {
        watch_bookmark_interval: Some(Duration::from_millis(50)),
        ..Faults::default()
    });
    let rv = list_rv(&sim, &format!("{MG}/projectroletemplatebindings")).await;
    let mut w = Watch::open(
        &sim,
        &format!("{MG}/projectroletemplatebindings?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"),
    )
    .await;
    let e = w.next().await.expect("a bookmark");
    assert_eq!(e["type"], "BOOKMARK", "{e}");
    assert_eq!(
        e["object"],
        json!({"kind": "ProjectRoleTemplateBinding", "apiVersion": "management.cattle.io/v3",
               "metadata": {"resourceVersion": rv}}),
        "a bookmark's object holds only its kind and the version the stream has reached"
    );
    // A change elsewhere moves the next bookmark's version on.
    create_crtb(&sim, &sim.user_id("bob").unwrap(), "cluster-member").await;
    let now = sim.resource_version();
    loop {
        let e = w.next().await.expect("bookmarks keep coming");
        assert_eq!(e["type"], "BOOKMARK", "no PRTB changed: {e}");
        let at: u64 = e["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if at >= now {
            break;
        }
    }
    // Without allowWatchBookmarks, none: the stream ends at its timeout with nothing sent.
    let mut quiet = Watch::open(
        &sim,
        &format!("{MG}/projectroletemplatebindings?watch=true&resourceVersion={now}&timeoutSeconds=1"),
    )
    .await;
    assert!(quiet.next().await.is_none(), "no bookmarks unless asked for");
}

#[tokio::test]
async fn a_version_older_than_the_kept_history_gets_a_410_expired_error_event() {
    let sim = start(RancherVersion::V2_13).await;
    let old = list_rv(&sim, &format!("{MG}/globalrolebindings")).await;
    create_crtb(&sim, &sim.user_id("bob").unwrap(), "cluster-member").await;
    sim.compact_watch_history();
    let floor = sim.resource_version();
    let mut w = Watch::open(
        &sim,
        &format!("{MG}/globalrolebindings?watch=true&resourceVersion={old}"),
    )
    .await;
    let e = w.next().await.expect("one event");
    assert_eq!(
        e,
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("too old resource version: {old} ({floor})"), "reason": "Expired", "code": 410}})
    );
    assert!(w.next().await.is_none(), "the stream ends after the error");
    // A fresh list's version watches fine.
    let rv = list_rv(&sim, &format!("{MG}/globalrolebindings")).await;
    let mut w = Watch::open(
        &sim,
        &format!("{MG}/globalrolebindings?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
    )
    .await;
    assert!(
        w.next().await.is_none(),
        "no error from a current version: the stream just times out"
    );
}

#[tokio::test]
async fn a_bad_version_is_refused_and_a_watch_needs_the_right_to_watch() {
    let sim = start(RancherVersion::V2_13).await;
    let (st, v) = admin_get(&sim, &format!("{MG}/globalrolebindings?watch=true&resourceVersion=abc")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["reason"], "BadRequest");
    let (st, v) = call(
        &sim,
        Method::GET,
        &format!("{MG}/globalrolebindings?watch=true"),
        Some(&sim.tokens().user),
        None,
    )
    .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "a standard user may not watch every binding: {v}"
    );
}

#[tokio::test]
async fn ext_tokens_are_watched_on_the_deprecated_path_too() {
    let sim = start(RancherVersion::V2_13).await;
    let rv = sim.resource_version();
    let mut w = Watch::open(
        &sim,
        &format!("/apis/ext.cattle.io/v1/watch/tokens?resourceVersion={rv}"),
    )
    .await;
    let (st, v) = call(
        &sim,
        Method::POST,
        "/apis/ext.cattle.io/v1/tokens",
        Some(&sim.tokens().admin),
        Some(
            json!({"apiVersion": "ext.cattle.io/v1", "kind": "Token", "metadata": {"generateName": "t-"},
                    "spec": {"description": "watched", "ttl": 3600000}}),
        ),
    )
    .await;
    assert!(st.is_success(), "{st} {v}");
    let e = w.next_change().await.expect("an event");
    assert_eq!(e["type"], "ADDED", "{e}");
    assert_eq!(e["object"]["kind"], "Token");
    assert!(
        e["object"]["status"]
            .get("value")
            .is_none_or(|v| v.is_null() || v == ""),
        "no secret on a watch: {e}"
    );
}
