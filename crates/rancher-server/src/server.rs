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
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rancher_approval::RequestState;
use rancher_workflows::{Runner, Session};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::app::{with_store, App};
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::identity::Identities;

/// A running service. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    url: String,
    addr: SocketAddr,
    app: Arc<App>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    listener: JoinHandle<()>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer").field("url", &self.url).finish_non_exhaustive()
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
        let _ = self.stop.send(true);
        let _ = (&mut self.listener).await;
        self.app.inflight.drained().await;
        for t in self.tasks.drain(..) {
            t.abort();
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
pub async fn start(config: ServerConfig) -> Result<RunningServer> {
    config.validate()?;
    let tls = match &config.tls {
        Some(files) => Some(crate::tls::acceptor(files)?),
        None => None,
    };
    let client = config
        .rancher
        .client_builder()
        .map_err(|e| Error::Config(format!("the service's Rancher connection: {e}")))?
        .retry_policy(config.retry.clone())
        .user_agent("rancher-access-server")
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
    let runner = Runner::new(config.store.clone(), &config.executor).with_executor(service.clone()).with_gate(integrity.gate.clone());
    let direct = Runner::new(config.store.clone(), &config.executor).with_gate(integrity.gate.clone());
    let identities = Identities::new(config.rancher.clone(), config.retry.clone(), config.identity_ttl);
    let app = Arc::new(App::new(runner, direct, service, identities, config.web_session_ttl, config.tls.is_some()).with_clock(config.clock.clone()).with_integrity(integrity));

    jobs_once(&app).await.map_err(Error::Startup)?;

    let listener = TcpListener::bind(config.listen).await.map_err(|source| Error::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind { addr: config.listen, source })?;
    let url = format!("{}://{}", if tls.is_some() { "https" } else { "http" }, addr);

    let router = routes(app.clone(), &config);
    let (stop, stop_rx) = watch::channel(false);
    let listener_task = tokio::spawn(accept_loop(listener, tls, router, stop_rx.clone()));
    let mut tasks = vec![tokio::spawn(jobs_loop(app.clone(), config.job_interval, stop_rx.clone()))];
    if !config.webhooks.is_empty() {
        tasks.push(tokio::spawn(crate::webhooks::deliver_loop(app.clone(), config.clone(), stop_rx.clone())));
    }
    tracing::info!(%url, "approvals service ready");
    Ok(RunningServer { url, addr, app, stop, tasks, listener: listener_task })
}

fn routes(app: Arc<App>, config: &ServerConfig) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::api::router())
        .merge(crate::web::router())
        .layer(RequestBodyLimitLayer::new(config.body_limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, config.request_timeout))
        .layer(middleware::from_fn_with_state(app.clone(), count_requests))
        .with_state(app)
}

async fn count_requests(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    app.metrics.http_request();
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut r = next.run(req).await;
    // A body-limit refusal comes from the layer as plain text: answer it in the API's JSON shape.
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE && !r.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json")) {
        r = crate::error::ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large; send less (bodies are limited)").into_response();
    }
    tracing::debug!(%method, %path, status = r.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    r
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    let store = with_store(app.store(), |s| async move { s.audit_head().await }).await.map(|_| ()).map_err(|e| e.message);
    let started = Instant::now();
    let rancher = app.service.client.send(&rancher_api::requests::PublicPingGet::new()).await.map(|_| ()).map_err(|e| e.to_string());
    app.metrics.rancher_call(started.elapsed());
    let ok = store.is_ok() && rancher.is_ok();
    let body = json!({
        "status": if ok { "ready" } else { "not ready" },
        "store": store.err().unwrap_or_else(|| "ok".into()),
        "rancher": rancher.err().unwrap_or_else(|| "ok".into()),
    });
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body)).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let counts = with_store(app.store(), |s| async move {
        let counts = s.count_requests().await?;
        Ok(RequestState::ALL.map(|st| (st.as_str(), counts.iter().find(|(s, _)| *s == st).map_or(0, |(_, n)| *n))))
    })
    .await;
    let now = (app.clock)();
    let grants = with_store(app.store(), |s| async move { s.list_grants(&rancher_approval::GrantFilter::unrevoked()).await }).await;
    match (counts, grants) {
        (Ok(c), Ok(g)) => {
            let overdue: Vec<_> = g.iter().filter(|g| g.due_at <= now).collect();
            let oldest = overdue.iter().map(|g| (now - g.due_at).num_seconds().max(0) as u64).max().unwrap_or(0);
            let text = app.metrics.render(&c) + &crate::metrics::render_grants((g.len() - overdue.len()) as u64, overdue.len() as u64, oldest);
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        (Err(e), _) | (_, Err(e)) => e.into_response(),
    }
}

/// Checks the store against the published head, expires overdue pending requests, settles executions left in
/// doubt (a crash after a claim) and revokes due time-bound grants. While the store does not verify from the
/// published head, nothing that writes to Rancher runs (no reconcile, no revocation: the store says what to do).
async fn jobs_once(app: &Arc<App>) -> std::result::Result<(), rancher_workflows::Error> {
    app.integrity.check(app.store()).await;
    let expired = with_store(app.store(), |s| async move { s.expire_due(Utc::now()).await }).await.map_err(|e| rancher_workflows::Error::Task(e.message))?;
    if !expired.is_empty() {
        tracing::info!(count = expired.len(), "expired overdue pending requests");
    }
    if !app.integrity_ok() {
        tracing::debug!("reconcile and grant revocation skipped: {}", app.integrity_problem().unwrap_or_default());
        return Ok(());
    }
    let _guard = app.inflight.enter();
    let settled = app.runner.reconcile(&app.service).await?;
    for r in &settled {
        tracing::info!(request = %r.id, state = %r.state, "settled an execution left in doubt");
    }
    // Time-bound grants: each due one revoked once, whichever replica claims it (at start, before serving).
    let now = (app.clock)();
    let report = rancher_workflows::grants::revoke_due(&app.service, app.store().as_ref(), app.runner.process_label(), now).await?;
    app.metrics.revocations(report.revoked() as u64, report.failed() as u64);
    publish_head(app).await;
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

async fn accept_loop(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, router: Router, mut stop: watch::Receiver<bool>) {
    let open = Arc::new(crate::app::InFlight::default());
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
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        let guard = open.enter();
        tokio::spawn(async move {
            let _guard = guard;
            match tls {
                None => serve_connection(TokioIo::new(tcp), router, stop, peer).await,
                // The handshake runs in the connection's own task, so a slow client cannot stall the accept loop.
                Some(acceptor) => match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => serve_connection(TokioIo::new(s), router, stop, peer).await,
                    Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    // Requests in flight finish; idle keep-alive connections close.
    if tokio::time::timeout(Duration::from_secs(60), open.drained()).await.is_err() {
        tracing::warn!("connections still open after 60s; closing them");
    }
}

async fn serve_connection<I>(io: TokioIo<I>, router: Router, mut stop: watch::Receiver<bool>, peer: SocketAddr)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| router.clone().oneshot(req.map(axum::body::Body::new)));
    let builder = auto::Builder::new(TokioExecutor::new());
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
