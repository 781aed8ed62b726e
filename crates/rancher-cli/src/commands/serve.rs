//! `rancherctl serve`: the approvals service (rancher-server) with this command's connection as its service
//! account. Prints `RANCHERCTL_SERVER=<url>` on stdout once it is ready; logs go to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use rancher_approval::SqliteStore;
use rancher_server::ServerConfig;

use crate::context::Context;
use crate::error::{Exit, Failure};

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
    /// The approval store: `sqlite:PATH` (default: approvals.db in the state directory).
    #[arg(long, value_name = "URL", env = "RANCHERCTL_STORE")]
    pub store: Option<String>,
    /// POST a signed JSON event here on every request change (repeatable; HTTPS, or HTTP on loopback).
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Vec<url::Url>,
    /// File (chmod 600) holding the webhook signing secret (HMAC-SHA256 in X-Rancher-Access-Signature).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// How often overdue requests are expired and executions left in doubt are settled, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub job_interval: u64,
}

fn store_path(ctx: &Context, store: Option<&str>) -> anyhow::Result<PathBuf> {
    match store {
        None => ctx.store_path(),
        Some(s) => match s.strip_prefix("sqlite:") {
            Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
            _ => Err(Failure::new(format!("unsupported store `{s}`"), "use --store sqlite:PATH (or leave it out for approvals.db in the state directory)").into()),
        },
    }
}

/// Runs the service until SIGTERM or Ctrl-C, then stops taking requests, finishes executions in flight and exits 0.
pub async fn serve(ctx: &Context, args: ServeArgs) -> anyhow::Result<Exit> {
    let conn = ctx.connection()?;
    let path = store_path(ctx, args.store.as_deref())?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the store directory {}", dir.display()))?;
    }
    let store = Arc::new(SqliteStore::open(&path)?);
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
    let mut config = ServerConfig::new(args.listen, store, conn).executor(format!("rancherctl-serve@{host}")).job_interval(std::time::Duration::from_secs(args.job_interval.max(1)));
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config = config.tls(cert, key);
    }
    for w in args.webhooks {
        config = config.webhook(w);
    }
    if let Some(f) = &args.webhook_secret_file {
        config = config.webhook_secret(rancher_server::config::read_secret_file(f)?);
    }
    let server = rancher_server::start(config).await?;
    eprintln!("rancherctl serve: approvals service at {} (store {}); the page is at {}/", server.url(), path.display(), server.url());
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
