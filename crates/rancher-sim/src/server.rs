//! The HTTPS server: TLS accept loop, HTTP/1.1 keep-alive connections, fault injection, dispatch to the
//! API surfaces, the request log, and the [`SimHandle`] tests use.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Faults, RancherVersion, SimConfig};
use crate::http::{k8s_status, legacy_err, norman_err, unauthorized_2x, Req, Resp};
use crate::legacy::Legacy;
use crate::seed::{SimTokens, SimUsers};
use crate::state::{s, Kind, Store, Verb};
use crate::tls::{make_tls, LeafOptions};
use crate::{auth, norman, rk, SimError};

/// One served request, as recorded in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status answered (0 when the connection was dropped without a response).
    pub status: u16,
    /// The fault injected, if any (`"429"`, `"500"`, `"503"`, `"drop-before"`, `"drop-after"`).
    pub fault: Option<String>,
    /// When the simulator answered (or dropped) it, in milliseconds since the epoch: a test measures when a
    /// change reached Rancher from here.
    pub at_ms: i64,
}

const LOG_CAP: usize = 200_000;

/// State shared by all connections.
pub(crate) struct Shared {
    pub store: RwLock<Store>,
    pub faults: Mutex<Faults>,
    pub fault_rng: Mutex<ChaCha8Rng>,
    pub version: RancherVersion,
    pub domain: String,
    pub log: Mutex<Vec<RequestRecord>>,
    /// This state itself, for answers that outlive the request's handler (watch streams).
    pub me: std::sync::Weak<Shared>,
}

/// The simulator entry point.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Seeds the state, makes a throwaway CA and server certificate, binds `127.0.0.1:<port>` and serves
    /// until the handle is shut down or dropped.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let tls = make_tls(LeafOptions {
            self_signed_ca: config.openssl_style_certificate,
            ..LeafOptions::default()
        })?;
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(SimError::Bind)?;
        let addr = listener.local_addr().map_err(SimError::Bind)?;
        let domain = format!("127.0.0.1:{}", addr.port());
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let fault_rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_fa17);
        let (store, users, tokens) = if config.version.is_legacy() {
            let (legacy, users, tokens) = Legacy::seed(&mut rng);
            let mut store = Store::new(config.version, rng, config.reject_duplicate_bindings);
            store.legacy = Some(legacy);
            (store, users, tokens)
        } else {
            let mut store = Store::new(config.version, rng, config.reject_duplicate_bindings);
            store.deletion_linger_ms = config.deletion_linger.as_millis() as i64;
            store.server_url = format!("https://{domain}");
            let (users, tokens) = crate::seed::seed_2x(&mut store, &config);
            for (name, value) in [
                ("cacerts", tls.ca_pem.clone()),
                ("server-url", format!("https://{domain}")),
            ] {
                if let Some(mut st) = store.get(Kind::Setting, name).cloned() {
                    st["value"] = json!(value);
                    store.put(Kind::Setting, name.to_string(), st, None);
                }
            }
            (store, users, tokens)
        };
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            store: RwLock::new(store),
            faults: Mutex::new(config.faults.clone()),
            fault_rng: Mutex::new(fault_rng),
            version: config.version,
            domain: domain.clone(),
            log: Mutex::new(Vec::new()),
        });
        let (tx, rx) = watch::channel(false);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config.clone());
        let task = tokio::spawn(accept_loop(listener, acceptor, shared.clone(), rx));
        Ok(SimHandle {
            shared,
            addr,
            ca_pem: tls.ca_pem,
            tokens,
            users,
            shutdown: tx,
            task: Some(task),
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut rx: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = rx.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let svc = hyper::service::service_fn(move |req| serve(shared.clone(), req));
                    let conn = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(tls), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = rx.changed() => {}
                    }
                });
            }
        }
    }
}

/// The error that makes hyper close a connection without answering (an injected drop).
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("rancher-sim: injected connection drop")
    }
}

impl std::error::Error for Dropped {}

fn to_response(r: Resp) -> Response<axum::body::Body> {
    let mut b = Response::builder().status(StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if !r.content_type.is_empty() {
        b = b.header("content-type", r.content_type);
    }
    for (k, v) in r.headers {
        b = b.header(k, v);
    }
    let body = match r.stream {
        Some(stream) => axum::body::Body::from_stream(stream),
        None => axum::body::Body::from(r.body),
    };
    b.body(body)
        .unwrap_or_else(|_| Response::new(axum::body::Body::empty()))
}

fn roll(shared: &Shared, share: f64) -> bool {
    share > 0.0 && shared.fault_rng.lock().expect("rng lock").gen::<f64>() < share
}

fn surface_error(req_path: &str, status: u16, retry_after: Option<u64>) -> Resp {
    let apis = req_path.starts_with("/apis")
        || req_path.starts_with("/api/")
        || req_path == "/api"
        || req_path.starts_with("/k8s/");
    let (reason, code, msg) = match status {
        429 => (
            "TooManyRequests",
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        503 => (
            "ServiceUnavailable",
            "ClusterUnavailable",
            "the server is currently unable to handle the request",
        ),
        _ => (
            "InternalError",
            "ServerError",
            "Internal error occurred: injected fault",
        ),
    };
    let r = if apis {
        let details = retry_after.map(|s| json!({"retryAfterSeconds": s}));
        k8s_status(status, reason, msg, details)
    } else {
        norman_err(status, code, msg)
    };
    match retry_after {
        Some(s) => r.with_header("retry-after", s.to_string()),
        None => r,
    }
}

async fn serve(shared: Arc<Shared>, req: http::Request<Incoming>) -> Result<Response<axum::body::Body>, Dropped> {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(axum::body::Body::new(body), 16 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return Ok(to_response(norman_err(
                413,
                "RequestEntityTooLarge",
                "request body too large",
            )))
        }
    };
    let path_q = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let req = Req::new(parts.method.clone(), &parts.uri, parts.headers, bytes, &shared.domain);
    let faults = shared.faults.lock().expect("faults lock").clone();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let record = |status: u16, fault: Option<&str>| {
        let mut log = shared.log.lock().expect("log lock");
        if log.len() < LOG_CAP {
            log.push(RequestRecord {
                method: parts.method.to_string(),
                path: path_q.clone(),
                status,
                fault: fault.map(str::to_string),
                at_ms: crate::state::now_ms(),
            });
        }
    };
    if roll(&shared, faults.rate_429) {
        record(429, Some("429"));
        return Ok(to_response(surface_error(
            &req.path,
            429,
            Some(faults.retry_after_secs),
        )));
    }
    if roll(&shared, faults.rate_500) {
        record(500, Some("500"));
        return Ok(to_response(surface_error(&req.path, 500, None)));
    }
    if roll(&shared, faults.rate_503) {
        record(503, Some("503"));
        return Ok(to_response(surface_error(&req.path, 503, None)));
    }
    let write = req.is_write();
    if write && roll(&shared, faults.drop_before_write) {
        record(0, Some("drop-before"));
        return Err(Dropped);
    }
    let resp = dispatch(&shared, &req);
    if write && roll(&shared, faults.drop_after_write) {
        record(0, Some("drop-after"));
        return Err(Dropped);
    }
    record(resp.status, None);
    let mut resp = resp;
    if req.seg(0) == "v3" || req.seg(0) == "v3-public" {
        resp.headers
            .push(("x-api-schemas".into(), format!("{}/v3/schemas", req.base)));
        resp.headers.push((
            "x-api-cattle-auth".into(),
            if auth::credential(&req).is_some() {
                "true"
            } else {
                "false"
            }
            .into(),
        ));
    }
    Ok(to_response(resp))
}

/// Routes a request to its API surface.
pub(crate) fn dispatch(shared: &Shared, req: &Req) -> Resp {
    if shared.version.is_legacy() {
        return crate::legacy::handle(shared, req);
    }
    if !shared.store.read().expect("store lock").terminating.is_empty() {
        shared.store.write().expect("store lock").purge_terminating();
    }
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["ping"] | ["healthz"] => Resp::text(200, "text/plain", "pong"),
        ["rancherversion"] => Resp::json(
            200,
            &json!({"Version": shared.version.full(), "GitCommit": "0123456789abcdef", "RancherPrime": "false"}),
        ),
        ["v3", ..] => norman::handle(shared, req),
        ["v3-public", ..] | ["v1-public", ..] => norman::public(shared, req),
        ["api", ..] | ["apis", ..] | ["version"] | ["openapi", ..] => rk::handle(shared, req, &segs, false),
        ["k8s", "clusters", cluster, rest @ ..] => {
            let caller = {
                let store = shared.store.read().expect("store lock");
                match auth::authenticate(&store, req) {
                    auth::AuthOutcome::Caller(c) => c,
                    _ => return unauthorized_2x(),
                }
            };
            auth::note_use(shared, &caller);
            if caller.cluster.as_deref().is_some_and(|c| c != *cluster) {
                return unauthorized_2x();
            }
            let exists = shared
                .store
                .read()
                .expect("store lock")
                .get(Kind::Cluster, cluster)
                .is_some();
            if !exists {
                return k8s_status(
                    404,
                    "NotFound",
                    &format!("clusters.management.cattle.io \"{cluster}\" not found"),
                    None,
                );
            }
            if *cluster == "local" {
                return rk::handle(shared, req, rest, true);
            }
            match rest {
                ["version"] => rk::version_doc(),
                ["api"] => Resp::json(200, &json!({"kind": "APIVersions", "versions": ["v1"]})),
                _ => crate::http::k8s_no_route(),
            }
        }
        ["v1", "logout"] if req.method == Method::POST && shared.version.at_least(2, 13) => {
            let mut store = shared.store.write().expect("store lock");
            match auth::authenticate(&store, req) {
                auth::AuthOutcome::Caller(c) => {
                    if !c.derived {
                        store.remove(Kind::Token, &c.token, true);
                    }
                    Resp::empty(200).with_header("set-cookie", "R_SESS=; Path=/; Max-Age=0; Secure; HttpOnly")
                }
                _ => unauthorized_2x(),
            }
        }
        ["v1", ..] => {
            // Steve: every /v1 path needs authentication; there is no `token` schema.
            let store = shared.store.read().expect("store lock");
            match auth::authenticate(&store, req) {
                auth::AuthOutcome::Caller(c) if c.cluster.is_none() && segs.get(1) == Some(&"schemas") => {
                    crate::schemas::steve(&store, &c, req, &segs)
                }
                auth::AuthOutcome::Caller(c) if c.cluster.is_none() => {
                    let schema = segs.get(1).copied().unwrap_or("");
                    Resp::json(404, &json!({"type": "error", "status": 404, "code": "NotFound", "message": format!("schema {schema} not found")}))
                        .no_route()
                }
                _ => unauthorized_2x(),
            }
        }
        [] => Resp::text(
            200,
            "text/html",
            "<!DOCTYPE html><html><head><title>Rancher</title></head><body></body></html>",
        ),
        _ => legacy_err(404, "NotFound", "404 page not found").no_route(),
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: String,
    tokens: SimTokens,
    users: SimUsers,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("version", &self.shared.version)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// `127.0.0.1:PORT`.
    pub fn domain(&self) -> String {
        self.shared.domain.clone()
    }
    /// `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.shared.domain)
    }
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    /// PEM of the throwaway CA that signed the server certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }
    /// The Rancher generation played.
    pub fn version(&self) -> RancherVersion {
        self.shared.version
    }
    /// Seeded tokens (full bearer strings).
    pub fn tokens(&self) -> &SimTokens {
        &self.tokens
    }
    /// Seeded users and ids.
    pub fn users(&self) -> &SimUsers {
        &self.users
    }
    /// Replaces the injected faults (effective for the next request).
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().expect("faults lock") = faults;
    }
    /// The faults now in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults.lock().expect("faults lock").clone()
    }
    /// Stored objects of a kind (`users`, `globalroles`, `globalrolebindings`, `roletemplates`, `projects`,
    /// `clusterroletemplatebindings`, `projectroletemplatebindings`, `tokens` (v3), `exttokens`,
    /// `kubeconfigs`, `auditpolicies`, `clusters`, `authconfigs`, `settings`), in Kubernetes form.
    /// An unknown kind gives an empty list. On 1.6, `accounts` lists the legacy accounts and `providerconfigs`
    /// the stored provider configs, secrets included (for tests that check a secret was kept).
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        let store = self.shared.store.read().expect("store lock");
        if let Some(legacy) = store.legacy.as_ref() {
            return crate::legacy::objects(legacy, kind);
        }
        match Kind::from_key(kind) {
            Some(k) => store
                .items(k, None, None)
                .map(|(_, i)| i.value().into_owned())
                .collect(),
            None => vec![],
        }
    }
    /// One object by kind and key (`name`, or `namespace:name` for namespaced kinds).
    pub fn object(&self, kind: &str, key: &str) -> Option<Value> {
        let store = self.shared.store.read().expect("store lock");
        Kind::from_key(kind).and_then(|k| store.get(k, key).cloned())
    }
    /// Stores `obj` (a Kubernetes-style object with `metadata.name`, and `metadata.namespace` for a namespaced
    /// kind) as if Rancher's controllers had made it, with no checks: for tests that need state the API would
    /// refuse (a binding to a role template that no longer exists) or that only a login makes (a token's group
    /// principals). Returns false for an unknown kind or an object without a name.
    pub fn insert_object(&self, kind: &str, obj: Value) -> bool {
        let Some(k) = Kind::from_key(kind) else { return false };
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            return false;
        }
        let mut store = self.shared.store.write().expect("store lock");
        crate::seed::insert_new(&mut store, k, obj, &crate::state::now_rfc3339(), None);
        true
    }
    /// Number of stored objects of a kind.
    pub fn count(&self, kind: &str) -> usize {
        let store = self.shared.store.read().expect("store lock");
        Kind::from_key(kind).map(|k| store.len_of(k)).unwrap_or(0)
    }
    /// How many writes of `verb` (`create`, `update`, `patch`, `delete`) were applied to `kind` over HTTP.
    pub fn writes(&self, kind: &str, verb: &str) -> u64 {
        let store = self.shared.store.read().expect("store lock");
        let Some(k) = Kind::from_key(kind) else { return 0 };
        let v = match verb {
            "create" => Verb::Create,
            "update" => Verb::Update,
            "patch" => Verb::Patch,
            "delete" => Verb::Delete,
            _ => return 0,
        };
        store.writes.get(&(k.info().key.to_string(), v)).copied().unwrap_or(0)
    }
    /// All applied-write counters: `((kind, verb), count)`.
    pub fn write_counts(&self) -> Vec<((String, String), u64)> {
        let store = self.shared.store.read().expect("store lock");
        store
            .writes
            .iter()
            .map(|((k, v), n)| ((k.clone(), v.as_str().to_string()), *n))
            .collect()
    }
    /// The requests served so far (capped at 200,000 entries).
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.log.lock().expect("log lock").clone()
    }
    /// Forgets the watch history, as an etcd compaction does: a watch that resumes from an older resourceVersion
    /// gets an `ERROR` event with a `410 Expired` Status and must list again.
    pub fn compact_watch_history(&self) {
        self.shared.store.write().expect("store lock").compact_watch_history();
    }
    /// The newest resourceVersion the simulator has handed out.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.read().expect("store lock").rv
    }
    /// Forgets the request log.
    pub fn clear_request_log(&self) {
        self.shared.log.lock().expect("log lock").clear();
    }
    /// When a Rancher 1.x login token (`jwt`) expires, in ms since the epoch.
    pub fn legacy_token_expiry_ms(&self, jwt: &str) -> Option<i64> {
        let store = self.shared.store.read().expect("store lock");
        store.legacy.as_ref()?.tokens.get(jwt).map(|t| t.expires_ms)
    }
    /// Looks a user id up by username.
    pub fn user_id(&self, username: &str) -> Option<String> {
        self.shared
            .store
            .read()
            .expect("store lock")
            .usernames
            .get(username)
            .cloned()
    }
    /// Global role names bound to a user.
    pub fn roles_of(&self, user_id: &str) -> Vec<String> {
        self.shared.store.read().expect("store lock").roles_of(user_id)
    }
    /// Whether a user holds a binding to `role` (a convenience for tests).
    pub fn has_binding(&self, user_id: &str, role: &str) -> bool {
        let store = self.shared.store.read().expect("store lock");
        let found = store
            .values(Kind::GlobalRoleBinding)
            .any(|(_, g)| s(&g, "userName") == user_id && s(&g, "globalRoleName") == role);
        found
    }
    /// Shell-sourceable environment lines naming this simulator (the CA is expected at `ca_path`).
    pub fn env_lines(&self, ca_path: &Path) -> String {
        let t = &self.tokens;
        format!(
            "RANCHER_DOMAIN={}\nRANCHER_CA_CERT={}\nRANCHER_TOKEN={}\nRANCHER_TOKEN_APPROVER={}\nRANCHER_TOKEN_USER={}\nRANCHER_TOKEN_CLUSTER_SCOPED={}\nRANCHER_TOKEN_EXPIRED={}\n",
            self.domain(),
            ca_path.display(),
            t.admin,
            t.approver,
            t.user,
            t.cluster_scoped,
            t.expired
        )
    }
    /// Stops the server and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Starts a simulator, writes its CA to `ca_path`, prints the [`SimHandle::env_lines`] on stdout and serves
/// until Ctrl-C or SIGTERM.
pub async fn run_until_signal(config: SimConfig, ca_path: &Path) -> Result<(), SimError> {
    let handle = Simulator::start(config).await?;
    tokio::fs::write(ca_path, handle.ca_pem()).await.map_err(SimError::Io)?;
    print!("{}", handle.env_lines(ca_path));
    wait_for_signal().await;
    handle.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
