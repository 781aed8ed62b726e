//! `rancherctl serve`: the approvals service (rancher-server) with this command's connection as its service
//! account. Prints `RANCHERCTL_SERVER=<url>` on stdout once it is ready; logs go to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use rancher_server::ServerConfig;

use crate::context::Context;
use crate::error::Exit;

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. Plain HTTP only on loopback; elsewhere pass a certificate.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// PEM certificate chain to serve HTTPS with (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// POST a signed JSON event here on every request change (repeatable; HTTPS, or HTTP on loopback).
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Vec<url::Url>,
    /// File (chmod 600) holding the webhook signing secret (HMAC-SHA256 in X-Rancher-Access-Signature).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// The URL people reach the service at, when a TLS-terminating proxy stands in front of it (e.g.
    /// https://approvals.example.com): the page's cookies are then marked Secure.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<url::Url>,
    /// A web sign-in ends after this many minutes without a page.
    #[arg(long, value_name = "MINUTES", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=24 * 60))]
    pub web_idle_minutes: u64,
    /// A web sign-in ends this many hours after it began, however active (a working day by default).
    #[arg(long, value_name = "HOURS", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=72))]
    pub web_session_hours: u64,
    /// How often overdue requests are expired and executions left in doubt are settled, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub job_interval: u64,
    /// Longest wait for a request's header, in seconds, from the connection's start or the previous answer (so
    /// also how long an idle kept-alive connection stays open).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub header_timeout: u64,
    /// Most connections open at once (lowered to fit the open-file limit); more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,
    /// Most connections open at once from one IP address. Behind a reverse proxy every connection comes from the
    /// proxy: set it to --max-connections there.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections_per_ip: usize,
    /// How long a webhook event is retried after network errors, 5xx, 408 or 429 before it is dead-lettered, in
    /// seconds (an event the receiver refuses with another 4xx is dead-lettered after 3 tries).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub webhook_retry_for: u64,
    /// File (chmod 600) holding a token `/metrics` asks for as `Authorization: Bearer <token>`.
    #[arg(long, value_name = "FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Serve `/metrics` on this address only, apart from the API and the page (HTTPS with --tls-cert; plain HTTP
    /// only on loopback).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// File (owner-only) keeping the last audit head this service published, checked against the store at start
    /// and on every job run; nothing executes while the store does not verify from it. Default: audit-anchor.json
    /// in the state directory (keep it off the database host: its point is that store writers cannot reach it).
    #[arg(long, value_name = "FILE")]
    pub anchor_file: Option<PathBuf>,
}

/// Runs the service until SIGTERM or Ctrl-C, then stops taking requests, finishes executions in flight and exits 0.
pub async fn serve(ctx: &Context, args: ServeArgs) -> anyhow::Result<Exit> {
    let conn = ctx.connection()?;
    // The global --store / RANCHERCTL_STORE: several replicas share one PostgreSQL database.
    let shown = ctx.store_url()?.to_string();
    let store = ctx.open_store().await?;
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let mut config = ServerConfig::new(args.listen, store, conn)
        .executor(format!("rancherctl-serve@{host}"))
        .job_interval(std::time::Duration::from_secs(args.job_interval.max(1)));
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config = config.tls(cert, key);
    }
    if let Some(u) = args.public_url {
        config = config.public_url(u);
    }
    config = config.web_sessions(
        std::time::Duration::from_secs(args.web_idle_minutes * 60),
        std::time::Duration::from_secs(args.web_session_hours * 3600),
    );
    let anchor = match args.anchor_file {
        Some(f) => f,
        None => ctx.ensure_state_dir()?.join("audit-anchor.json"),
    };
    config = config.anchor_file(anchor);
    for w in args.webhooks {
        config = config.webhook(w);
    }
    if let Some(f) = &args.webhook_secret_file {
        config = config.webhook_secret(rancher_server::config::read_secret_file(f)?);
    }
    let refused_attempts = config.webhook_refused_attempts;
    config = config
        .header_timeout(std::time::Duration::from_secs(args.header_timeout.max(1)))
        .max_connections(args.max_connections, args.max_connections_per_ip)
        .webhook_give_up(refused_attempts, std::time::Duration::from_secs(args.webhook_retry_for));
    if let Some(f) = &args.metrics_token_file {
        config = config.metrics_token(rancher_server::config::read_metrics_token_file(f)?);
    }
    if let Some(a) = args.metrics_listen {
        config = config.metrics_listen(a);
    }
    let server = rancher_server::start(config).await?;
    eprintln!(
        "rancherctl serve: approvals service at {} (store {shown}); the page is at {}/",
        server.url(),
        server.url()
    );
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "RANCHERCTL_SERVER={}", server.url())?;
        out.flush()?;
    }
    server.run_until(stop_signal()).await;
    eprintln!("rancherctl serve: stopped");
    Ok(Exit::Done)
}

/// SIGTERM or Ctrl-C.
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
