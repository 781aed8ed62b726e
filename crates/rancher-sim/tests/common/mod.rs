//! Shared helpers for the simulator's HTTPS tests (plain reqwest, never rancher-api).
#![allow(dead_code)]

use rancher_sim::{RancherVersion, SimConfig, SimHandle, Simulator};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

/// Starts a simulator with seed 7 for `version`.
pub async fn start(version: RancherVersion) -> SimHandle {
    Simulator::start(SimConfig::default().rancher_version(version).seed(7))
        .await
        .expect("simulator starts")
}

/// A reqwest client trusting only the simulator's CA.
pub fn client(sim: &SimHandle) -> Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("CA parses");
    Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .expect("client")
}

/// Sends a request and returns status + JSON (Null when the body is not JSON).
pub async fn call(
    sim: &SimHandle,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call_ct(sim, method, path, token, body, "application/json").await
}

/// Like [`call`] with a content type.
pub async fn call_ct(
    sim: &SimHandle,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    ct: &str,
) -> (StatusCode, Value) {
    let mut rb = client(sim).request(method, format!("{}{}", sim.base_url(), path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", ct)
            .body(serde_json::to_vec(&b).expect("json"));
    }
    let resp = rb.send().await.expect("request is answered");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// GET with the admin token.
pub async fn admin_get(sim: &SimHandle, path: &str) -> (StatusCode, Value) {
    let t = sim.tokens().admin.clone();
    call(sim, Method::GET, path, Some(&t), None).await
}
