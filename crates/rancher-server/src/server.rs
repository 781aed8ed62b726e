//! Starting and stopping the service: checks, the service account's session, startup jobs, the listener (HTTP
//! on loopback, or HTTPS), health endpoints, background jobs and a graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use hyper_util::rt::{TokioIo, TokioTimer};
use rancher_approval::RequestState;
use rancher_workflows::{Runner, Session};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument as _;

use crate::app::{with_store, App};
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::identity::Identities;

/// A running service. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    url: String,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    listener: JoinHandle<()>,
    grace: Duration,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the separate metrics listener, when one was configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The runner (and through it the store) the service uses.
    pub fn runner(&self) -> &Runner {
        &self.app.runner
    }

    /// Why the service executes nothing at the moment (its audit log did not verify from the head it published at
    /// the last check), or `None` when it verified.
    pub fn integrity_problem(&self) -> Option<String> {
        self.app.integrity_problem()
    }

    /// Webhook deliveries so far: (acknowledged, failed attempts).
    pub fn webhook_counts(&self) -> (u64, u64) {
        self.app.metrics.webhook_counts()
    }

    /// Stops taking connections, lets requests and executions in flight finish, stops the jobs and returns.
    pub async fn shutdown(mut self) {
        let stopping = Instant::now();
        let _ = self.stop.send(true);
        let _ = (&mut self.listener).await;
        // Bounded: an orchestrator kills the process after its own grace period anyway. What is cut off here is
        // safe to cut: a claimed execution is settled from its claim (reconcile) by the next start or a replica.
        let left = self.grace.saturating_sub(stopping.elapsed());
        if tokio::time::timeout(left, self.app.inflight.drained()).await.is_err() {
            tracing::warn!(
                in_flight = self.app.inflight.count(),
                grace_seconds = self.grace.as_secs(),
                "stopping with decisions or executions still in flight; each claimed execution is settled from its \
                 claim by the next start or another replica"
            );
        }
        // The jobs and deliverers end on the stop signal (a deliverer hands its webhook lease back); one still
        // busy after a few seconds is cut.
        for mut t in self.tasks.drain(..) {
            if tokio::time::timeout(Duration::from_secs(5), &mut t).await.is_err() {
                t.abort();
            }
        }
        tracing::info!("stopped");
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until<F: std::future::Future<Output = ()>>(self, signal: F) {
        signal.await;
        tracing::info!("stopping: no new connections; finishing requests and executions in flight");
        self.shutdown().await;
    }
}

/// Starts the service: validates the configuration, opens the service account's session, settles executions
/// left in doubt, expires overdue requests, binds the listener and starts the background jobs.
pub async fn start(mut config: ServerConfig) -> Result<RunningServer> {
    config.validate()?;
    // The Rancher CA is read once, here: the service's own client, people's identity checks and web sign-ins all
    // trust the same certificates, so a CA file replaced while the service runs cannot break people's calls while
    // `/readyz` (on the service's client) still says ready.
    if let Some(ca @ rancher_auth::CaSource::File(_)) = config.rancher.ca() {
        let pem = ca
            .load()
            .map_err(|e| Error::Config(format!("the service's Rancher CA: {e}")))?;
        let pem =
            String::from_utf8(pem).map_err(|_| Error::Config("the service's Rancher CA is not PEM text".into()))?;
        config.rancher = config.rancher.clone().with_ca(Some(rancher_auth::CaSource::Pem(pem)));
    }
    let tls = match &config.tls {
        Some(files) => Some(crate::tls::acceptor(files)?),
        None => None,
    };
    let metrics = crate::metrics::Metrics::default();
    config.store = rancher_approval::ObservedStore::wrap(config.store.clone(), Arc::new(metrics.store_calls()));
    let client = config
        .rancher
        .client_builder()
        .map_err(|e| Error::Config(format!("the service's Rancher connection: {e}")))?
        .retry_policy(config.retry.clone())
        .user_agent("rancher-access-server")
        .observer(metrics.call_observer())
        .build()
        .map_err(|e| Error::Config(format!("the service's Rancher connection: {e}")))?;
    let service = Session::open(client).await.map_err(Error::Rancher)?;
    tracing::info!(account = %service.who(), admin = service.is_admin, "service account session open");
    if !service.is_admin {
        tracing::warn!(account = %service.who(), "the service account is not a Rancher admin: approved requests that change access will be refused by Rancher");
    }
    // The anchor (the head this service last published) is checked before anything runs; both runners execute
    // only while the store verifies from it.
    let integrity = crate::integrity::Integrity::load(config.anchor_file.clone())?;
    let mut runner = Runner::new(config.store.clone(), &config.executor)
        .with_executor(service.clone())
        .with_gate(integrity.gate.clone());
    let mut direct = Runner::new(config.store.clone(), &config.executor).with_gate(integrity.gate.clone());
    let policies = crate::policies::judging(&config, &service)?;
    runner = runner.with_policies(policies.clone());
    direct = direct.with_policies(policies);
    let identities = Identities::new(config.rancher.clone(), config.retry.clone(), config.identity_ttl);
    let listener = TcpListener::bind(config.listen).await.map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let url = format!("{}://{}", if tls.is_some() { "https" } else { "http" }, addr);
    let chat = crate::chat::Chat::new(&config, &url);
    let app = Arc::new(App::new(runner, direct, service, identities, metrics, &config).with_integrity(integrity));

    if let Some(rules) = app.rules() {
        tracing::info!(ruleset = %rules.hash(), "requests are judged by policy rules when filed");
    }
    jobs_once(&app).await.map_err(Error::Startup)?;
    let metrics_listener = match config.metrics_listen {
        Some(m) => {
            let l = TcpListener::bind(m)
                .await
                .map_err(|source| Error::Bind { addr: m, source })?;
            let bound = l.local_addr().map_err(|source| Error::Bind { addr: m, source })?;
            tracing::info!(metrics = %bound, "metrics served on their own listener");
            Some((l, bound))
        }
        None => None,
    };

    // Every connection holds a file descriptor: raise the soft limit as far as allowed, and keep the caps under it
    // (with room for the store, Rancher and webhook connections), so a flood of sockets meets the cap, not EMFILE.
    let files = raise_open_file_limit();
    let (total, per_ip) = connection_caps(config.max_connections, config.max_connections_per_ip, files);
    if total < config.max_connections {
        tracing::warn!(configured = config.max_connections, used = total, per_ip, open_file_limit = ?files, "lowered the connection cap to fit the open-file limit");
    }
    let limits = ConnLimits {
        total,
        per_ip,
        header_timeout: config.header_timeout,
        grace: config.shutdown_grace,
    };

    let metrics_addr = metrics_listener.as_ref().map(|(_, a)| *a);
    let router = routes(app.clone(), &config, addr, metrics_addr, chat.slack.clone());
    let (stop, stop_rx) = watch::channel(false);
    let listener_task = tokio::spawn(accept_loop(
        listener,
        tls.clone(),
        router,
        app.clone(),
        limits.clone(),
        stop_rx.clone(),
    ));
    let mut tasks = vec![tokio::spawn(jobs_loop(
        app.clone(),
        config.job_interval,
        stop_rx.clone(),
    ))];
    // Grants are revoked at their due time by a timer; the jobs loop's sweep stays as a safety net.
    tasks.push(tokio::spawn(crate::revocation::timer_loop(
        app.clone(),
        stop_rx.clone(),
    )));
    if let Some(target) = &config.syslog {
        let sink = Arc::new(crate::syslog::Syslog::new(target.clone()));
        tasks.push(tokio::spawn(crate::outbox::run(
            app.clone(),
            sink,
            config.clone(),
            stop_rx.clone(),
        )));
    }
    if config.watch.enabled {
        tasks.push(tokio::spawn(crate::watcher::run(
            app.clone(),
            config.watch,
            stop_rx.clone(),
        )));
    }
    if let Some((l, bound)) = metrics_listener {
        let metrics_router = metrics_routes(app.clone(), &config, bound);
        let small = ConnLimits {
            total: 64.min(total),
            per_ip: 16.min(total),
            header_timeout: config.header_timeout,
            grace: config.shutdown_grace,
        };
        tasks.push(tokio::spawn(accept_loop(
            l,
            tls,
            metrics_router,
            app.clone(),
            small,
            stop_rx.clone(),
        )));
    }
    if !config.webhooks.is_empty() {
        tasks.push(tokio::spawn(crate::webhooks::deliver_loop(
            app.clone(),
            config.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.extend(chat.start(&app, &config, &stop_rx));
    tracing::info!(%url, "approvals service ready");
    Ok(RunningServer {
        url,
        addr,
        metrics_addr,
        app,
        stop,
        tasks,
        listener: listener_task,
        grace: config.shutdown_grace,
    })
}

fn routes(
    app: Arc<App>,
    config: &ServerConfig,
    bound: SocketAddr,
    metrics_bound: Option<SocketAddr>,
    slack: Option<Arc<crate::slack::Slack>>,
) -> Router {
    let mut r = Router::new()
        .merge(crate::api::router())
        .merge(crate::web::router())
        .merge(crate::slack::router(slack))
        .merge(crate::web_file::router())
        .route_layer(middleware::from_fn_with_state(app.clone(), time_route));
    if metrics_bound.is_none() {
        r = r.route(
            "/metrics",
            get(metrics).layer(middleware::from_fn_with_state(
                Arc::new(config.metrics_token.clone()),
                require_metrics_token,
            )),
        );
    }
    let hosts = Arc::new(AllowedHosts::new(config, bound));
    // Probes reach the process by address (a kubelet by the pod's IP), so the health endpoints skip the Host
    // check; they say nothing beyond up or down.
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .merge(r.layer(middleware::from_fn_with_state(hosts, check_host)))
        .layer(RequestBodyLimitLayer::new(config.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .with_state(app)
}

/// The metrics listener's routes: `/metrics` only, with the token when one is configured, and the `Host` check when
/// it listens on loopback (scrapers elsewhere come by whatever address they were given).
fn metrics_routes(app: Arc<App>, config: &ServerConfig, bound: SocketAddr) -> Router {
    let hosts = Arc::new(if bound.ip().is_loopback() {
        AllowedHosts::loopback(bound)
    } else {
        AllowedHosts { names: Vec::new() }
    });
    Router::new()
        .route(
            "/metrics",
            get(metrics).layer(middleware::from_fn_with_state(
                Arc::new(config.metrics_token.clone()),
                require_metrics_token,
            )),
        )
        .layer(middleware::from_fn_with_state(hosts, check_host))
        .layer(RequestBodyLimitLayer::new(1024))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout,
        ))
        .with_state(app)
}

/// `Authorization: Bearer <token>` on `/metrics` when a token is configured; compared in constant time.
async fn require_metrics_token(
    State(token): State<Arc<Option<secrecy::SecretString>>>,
    req: Request,
    next: Next,
) -> Response {
    use secrecy::ExposeSecret as _;
    use sha2::{Digest as _, Sha256};
    let Some(want) = token.as_ref() else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Equal-length digests compared without an early exit: the time taken says nothing about the token.
    let (a, b) = (
        Sha256::digest(given.trim().as_bytes()),
        Sha256::digest(want.expose_secret().as_bytes()),
    );
    if a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0 {
        return next.run(req).await;
    }
    let mut r = crate::error::ApiError::new(
        StatusCode::UNAUTHORIZED,
        "/metrics needs the metrics token: send Authorization: Bearer <the token in --metrics-token-file>",
    )
    .into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    r
}

/// The `Host` names this service answers to: the public URL's, and the address it listens on (with `localhost`
/// when that is loopback). A page on another name that resolves here (DNS rebinding) is refused with 421.
#[derive(Debug)]
struct AllowedHosts {
    /// Lower-cased `host:port` forms accepted; empty: no check (TLS off loopback without a public URL, where the
    /// certificate binds the name).
    names: Vec<String>,
}

impl AllowedHosts {
    fn new(config: &ServerConfig, bound: SocketAddr) -> AllowedHosts {
        let mut names = Vec::new();
        let public = config.public_url.clone();
        if let Some(u) = &public {
            if let Some(h) = u.host_str() {
                let h = h.to_ascii_lowercase();
                match u.port_or_known_default() {
                    Some(p) => {
                        names.push(format!("{h}:{p}"));
                        if u.port().is_none() {
                            names.push(h);
                        }
                    }
                    None => names.push(h),
                }
            }
        }
        if public.is_some() || bound.ip().is_loopback() {
            names.extend(AllowedHosts::loopback(bound).names);
        }
        AllowedHosts { names }
    }

    /// The listen address itself, and `localhost:PORT` when it is loopback.
    fn loopback(bound: SocketAddr) -> AllowedHosts {
        let port = bound.port();
        let mut names = vec![match bound.ip() {
            std::net::IpAddr::V4(ip) => format!("{ip}:{port}"),
            std::net::IpAddr::V6(ip) => format!("[{ip}]:{port}"),
        }];
        if bound.ip().is_loopback() {
            names.push(format!("localhost:{port}"));
        }
        AllowedHosts { names }
    }

    fn allows(&self, host: Option<&str>) -> bool {
        if self.names.is_empty() {
            return true;
        }
        let Some(host) = host else { return false };
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        self.names.contains(&host)
    }
}

async fn check_host(State(hosts): State<Arc<AllowedHosts>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if hosts.allows(host) {
        return next.run(req).await;
    }
    tracing::debug!(host = ?host.map(|h| h.chars().take(100).collect::<String>()), "refused a request for another host name");
    crate::error::ApiError::new(StatusCode::MISDIRECTED_REQUEST, "this service does not answer to that host name; use the URL it printed at start, or set --public-url to the name people use").into_response()
}

/// Times each request by the route it matched (the pattern, so ids stay out of the labels).
async fn time_route(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let method = req.method().clone();
    // One span per request, named by its route pattern (never the raw path: ids and query strings stay out); the
    // Rancher calls and store transactions it makes are beneath it.
    let span = tracing::info_span!(
        "http_request",
        route = %route,
        method = %method,
        status = tracing::field::Empty,
    );
    let r = next.run(req).instrument(span.clone()).await;
    span.record("status", r.status().as_u16());
    app.metrics
        .http_answered(&route, method.as_str(), r.status().as_u16(), started.elapsed());
    r
}

async fn count_requests(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    app.metrics.http_request();
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut r = next.run(req).await;
    // A body-limit refusal comes from the layer as plain text: answer it in the API's JSON shape.
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE
        && !r
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        r = crate::error::ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large; send less (bodies are limited)",
        )
        .into_response();
    }
    tracing::debug!(%method, %path, status = r.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    r
}

/// Ready when the store reads and Rancher answers. The answer says only which one is unavailable; why goes to the
/// log (error texts name hosts, databases and paths).
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let store = with_store(app.store(), |s| async move { s.audit_head().await })
        .await
        .map(|_| ())
        .map_err(|e| e.message);
    let rancher = app
        .service
        .client
        .send(&rancher_api::requests::PublicPingGet::new())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    // The audit log must verify from the head this service published (its cause is logged when the check fails).
    let audit = app.integrity_ok();
    let ok = store.is_ok() && rancher.is_ok() && audit;
    if let Err(e) = &store {
        tracing::warn!("not ready: the store cannot be read: {e}");
    }
    if let Err(e) = &rancher {
        tracing::warn!("not ready: Rancher does not answer: {e}");
    }
    let word = |r: &std::result::Result<(), String>| if r.is_ok() { "ok" } else { "unavailable" };
    let mut body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "store": word(&store),
        "rancher": word(&rancher),
    });
    if !audit {
        body["audit"] = json!("unverified");
    }
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
        .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let counts = with_store(app.store(), |s| async move {
        let counts = s.count_requests().await?;
        Ok(RequestState::ALL.map(|st| {
            (
                st.as_str(),
                counts.iter().find(|(s, _)| *s == st).map_or(0, |(_, n)| *n),
            )
        }))
    })
    .await;
    let now = (app.clock)();
    let grants = with_store(app.store(), |s| async move {
        s.list_grants(&rancher_approval::GrantFilter::unrevoked()).await
    })
    .await;
    {
        match crate::breakglass::unreviewed(app.store()).await {
            Ok(n) => app.metrics.breakglass_unreviewed(n),
            Err(e) => tracing::warn!(error = %e, "could not count the break-glass reviews waiting"),
        }
    }
    match (counts, grants) {
        (Ok(c), Ok(g)) => {
            let overdue: Vec<_> = g.iter().filter(|g| g.due_at <= now).collect();
            let oldest = overdue
                .iter()
                .map(|g| (now - g.due_at).num_seconds().max(0) as u64)
                .max()
                .unwrap_or(0);
            let text = app
                .metrics
                .render(&c, (g.len() - overdue.len()) as u64, overdue.len() as u64, oldest);
            ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
        }
        (Err(e), _) | (_, Err(e)) => e.into_response(),
    }
}

/// Checks the store against the published head, expires overdue pending requests, settles executions left in
/// doubt (a crash after a claim) and revokes due time-bound grants. While the store does not verify from the
/// published head, nothing that writes to Rancher runs (no reconcile, no revocation: the store says what to do).
async fn jobs_once(app: &Arc<App>) -> std::result::Result<(), rancher_workflows::Error> {
    app.integrity.check(app.store()).await;
    let expired = with_store(app.store(), |s| async move { s.expire_due(Utc::now()).await })
        .await
        .map_err(|e| rancher_workflows::Error::Task(e.message))?;
    if !expired.is_empty() {
        tracing::info!(count = expired.len(), "expired overdue pending requests");
    }
    if !app.integrity_ok() {
        tracing::debug!(
            "reconcile and grant revocation skipped: {}",
            app.integrity_problem().unwrap_or_default()
        );
        return Ok(());
    }
    let _guard = app.inflight.enter();
    let settled = app.runner.reconcile(&app.service).await?;
    for r in &settled {
        tracing::info!(request = %r.id, state = %r.state, "settled an execution left in doubt");
    }
    // Time-bound grants: each due one revoked once, whichever replica claims it (at start, before serving).
    let now = (app.clock)();
    let report =
        rancher_workflows::grants::revoke_due(&app.service, app.store().as_ref(), app.runner.process_label(), now)
            .await?;
    app.metrics.revocations(report.revoked() as u64, report.failed() as u64);
    publish_head(app).await;
    // Reminders and escalations, for the chat deliverers to send (only when there is a chat to send them to).
    if app.chat_configured {
        if let Err(e) = crate::reminders::run(app).await {
            tracing::warn!("could not record reminders: {}", e.message);
        }
    }
    // Expired service state (page sessions past their limits) is dropped.
    if let Err(e) = with_store(app.store(), |s| async move { s.state_purge(now).await }).await {
        tracing::warn!("could not drop expired service state: {}", e.message);
    }
    Ok(())
}

/// Publishes the audit head whenever it moved, once the log verifies from the previous one: logged (so the log,
/// shipped elsewhere, holds anchors for `rancherctl approvals audit --verify --expect-head SEQ:HASH`) and kept
/// as this service's anchor (see [`crate::integrity`]).
async fn publish_head(app: &Arc<App>) {
    app.integrity.check(app.store()).await;
}

async fn jobs_loop(app: Arc<App>, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {
                if let Err(e) = jobs_once(&app).await {
                    tracing::warn!("background job failed: {}; retrying in {}s", crate::error::chain(&e), every.as_secs());
                }
            }
        }
    }
}

/// Connection caps and the header timeout of one listener.
#[derive(Debug, Clone)]
struct ConnLimits {
    total: usize,
    per_ip: usize,
    header_timeout: Duration,
    /// How long open connections may take to finish on stop.
    grace: Duration,
}

/// The connections open on one listener, in all and by peer IP.
#[derive(Debug, Default)]
struct OpenConns {
    by_ip: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// Held for as long as a connection is open.
struct ConnSlot {
    conns: Arc<OpenConns>,
    ip: std::net::IpAddr,
    app: Arc<App>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut m = self.conns.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        self.app.metrics.connection_closed();
    }
}

impl OpenConns {
    /// A slot for a connection from `ip`, or why not (over the cap in all, or for that address).
    fn admit(
        self: &Arc<Self>,
        ip: std::net::IpAddr,
        limits: &ConnLimits,
        app: &Arc<App>,
    ) -> std::result::Result<ConnSlot, &'static str> {
        let mut m = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = m.values().sum();
        if total >= limits.total {
            return Err("the service's connection cap");
        }
        let n = m.entry(ip).or_insert(0);
        if *n >= limits.per_ip {
            return Err("the per-address connection cap");
        }
        *n += 1;
        app.metrics.connection_opened();
        Ok(ConnSlot {
            conns: self.clone(),
            ip,
            app: app.clone(),
        })
    }
}

/// The connection caps in force: the total kept 128 descriptors under the open-file limit (for the store, Rancher
/// and webhook connections); a per-address cap below the total (the usual setup) stays at most half of the total
/// in force, so one address never holds every slot even when the total was lowered; one at or above it (behind a
/// proxy, where every connection comes from the proxy) follows the total.
fn connection_caps(total: usize, per_ip: usize, open_files: Option<usize>) -> (usize, usize) {
    let used = match open_files {
        Some(limit) => total.min(limit.saturating_sub(128).max(16)),
        None => total,
    };
    let per_ip = if per_ip < total {
        per_ip.min((used / 2).max(1))
    } else {
        used
    };
    (used, per_ip)
}

/// Raises the soft limit of open files to the hard limit; answers the soft limit now in force (none when unknown).
fn raise_open_file_limit() -> Option<usize> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut lim = getrlimit(Resource::Nofile);
        if lim.current != lim.maximum {
            let before = lim.current;
            lim.current = lim.maximum;
            match setrlimit(Resource::Nofile, lim) {
                Ok(()) => tracing::debug!(?before, now = ?lim.maximum, "raised the open-file limit"),
                Err(e) => tracing::warn!(?before, "cannot raise the open-file limit: {e}"),
            }
        }
        // None in either field means unlimited.
        getrlimit(Resource::Nofile)
            .current
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Refused at once: a short 503 when the socket takes it without waiting (plain HTTP), then closed.
fn refuse(tcp: tokio::net::TcpStream, plain: bool) {
    if plain {
        let _ = tcp.try_write(
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n",
        );
    }
    drop(tcp);
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    app: Arc<App>,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) {
    let open = Arc::new(crate::app::InFlight::default());
    let conns = Arc::new(OpenConns::default());
    let mut last_warned: Option<Instant> = None;
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match conns.admit(peer.ip(), &limits, &app) {
            Ok(s) => s,
            Err(which) => {
                app.metrics.connection_refused();
                if last_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_warned = Some(Instant::now());
                    tracing::warn!(%peer, total = limits.total, per_ip = limits.per_ip, "refusing connections over {which} (counted in rancher_access_connections_refused_total)");
                }
                refuse(tcp, tls.is_none());
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        let guard = open.enter();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let (_guard, _slot) = (guard, slot);
            match tls {
                None => serve_connection(TokioIo::new(tcp), router, stop, peer, header_timeout).await,
                // The handshake runs in the connection's own task, so a slow client cannot stall the accept loop.
                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => serve_connection(TokioIo::new(s), router, stop, peer, header_timeout).await,
                    Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    // Requests in flight finish; idle keep-alive connections close.
    if tokio::time::timeout(limits.grace, open.drained()).await.is_err() {
        tracing::warn!(
            grace_seconds = limits.grace.as_secs(),
            "connections still open at the end of the shutdown grace; closing them"
        );
    }
}

/// Serves HTTP/1.1 on one connection. The header timeout runs from the start of the connection and again from the
/// end of each answer, so a client that sends part of a request (or nothing), or keeps an idle connection, is
/// closed after it.
async fn serve_connection<I>(
    io: TokioIo<I>,
    router: Router,
    mut stop: watch::Receiver<bool>,
    peer: SocketAddr,
    header_timeout: Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        // The throttle's client address.
        req.extensions_mut().insert(crate::throttle::Peer(peer.ip()));
        router.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = stop.changed() => None,
    };
    let ended = match ended {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

impl crate::config::ServerConfig {
    /// Everything [`validate`](Self::validate) refuses, plus the TLS files: the certificate chain and key must
    /// load and match. What `rancherctl serve --check-config` runs; it contacts neither the store nor Rancher.
    pub fn check(&self) -> Result<()> {
        self.validate()?;
        if let Some(dir) = &self.policies {
            crate::policies::load(dir)?;
        }
        if let Some(files) = &self.tls {
            crate::tls::acceptor(files)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n7_connection_caps_fit_the_open_file_limit_and_leave_room_for_other_addresses() {
        assert_eq!(connection_caps(4096, 256, Some(1 << 20)), (4096, 256));
        assert_eq!(connection_caps(4096, 256, None), (4096, 256));
        // `ulimit -n 256`: 128 connections, at most 64 from one address.
        assert_eq!(connection_caps(4096, 256, Some(256)), (128, 64));
        assert_eq!(connection_caps(4096, 256, Some(10)), (16, 8));
        // Behind a proxy (per address = total): the proxy may use every slot.
        assert_eq!(connection_caps(4096, 4096, Some(256)), (128, 128));
        assert_eq!(connection_caps(1, 1, None), (1, 1));
    }

    #[test]
    fn n11_host_names_allowed() {
        let hosts = |names: &[&str]| AllowedHosts {
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        let h = hosts(&["approvals.example.com:443", "approvals.example.com", "127.0.0.1:8443"]);
        for ok in [
            "approvals.example.com",
            "APPROVALS.example.com.",
            "approvals.example.com:443",
            "127.0.0.1:8443",
        ] {
            assert!(h.allows(Some(ok)), "{ok}");
        }
        for bad in [
            "approvals.example.com:8443",
            "evil.example",
            "127.0.0.1",
            "127.0.0.1:8443.evil",
            "",
        ] {
            assert!(!h.allows(Some(bad)), "{bad}");
        }
        assert!(!h.allows(None));
        assert!(
            hosts(&[]).allows(Some("anything")),
            "no names: no check (TLS off loopback without a public URL)"
        );
    }
}
