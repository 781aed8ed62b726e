//! `rancherctl serve`: the approvals service (rancher-server) with this command's connection as its service
//! account. Prints `RANCHERCTL_SERVER=<url>` on stdout once it is ready; logs go to stderr.

use rancher_server::ServerConfig;

use crate::cli::ServeArgs;
use crate::context::Context;
use crate::error::Exit;

/// Runs the service until SIGTERM or Ctrl-C, then stops taking requests, finishes executions in flight and exits 0.
pub async fn serve(ctx: &Context, args: ServeArgs) -> anyhow::Result<Exit> {
    let conn = ctx.connection()?;
    // The global --store / RANCHERCTL_STORE: several replicas share one PostgreSQL database.
    let shown = ctx.store_url()?.to_string();
    if args.check_config {
        // Everything but the store's and Rancher's answers: those are what /readyz reports once it runs.
        let check = std::sync::Arc::new(rancher_approval::MemoryStore::new());
        let config = configure(ctx, args, check, conn)?;
        config.check()?;
        println!(
            "the settings are complete: serve would listen on {} with the store {shown} (not contacted: /readyz checks it and Rancher once it runs)",
            config.listen
        );
        return Ok(Exit::Done);
    }
    let json_logs = args.log_format == crate::cli::LogFormat::Json;
    let store = ctx.open_store().await?;
    let config = configure(ctx, args, store, conn)?;
    let server = rancher_server::start(config).await?;
    if json_logs {
        tracing::info!(url = %server.url(), store = %shown, "approvals service started");
    } else {
        eprintln!(
            "rancherctl serve: approvals service at {} (store {shown}); the page is at {}/",
            server.url(),
            server.url()
        );
    }
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "RANCHERCTL_SERVER={}", server.url())?;
        out.flush()?;
    }
    server.run_until(stop_signal()).await;
    if json_logs {
        tracing::info!("approvals service stopped");
    } else {
        eprintln!("rancherctl serve: stopped");
    }
    Ok(Exit::Done)
}

/// The service's configuration from the command's flags (and a --config file, already applied as flags); reads
/// the secret files.
fn configure(
    ctx: &Context,
    args: ServeArgs,
    store: std::sync::Arc<dyn rancher_approval::Store>,
    conn: rancher_auth::Connection,
) -> anyhow::Result<ServerConfig> {
    let oncall_config = oncall(&args)?;
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let mut config = ServerConfig::new(args.listen, store, conn)
        .executor(format!("rancherctl-serve@{host}"))
        .job_interval(std::time::Duration::from_secs(args.job_interval.max(1)))
        .shutdown_grace(std::time::Duration::from_secs(args.shutdown_grace));
    if args.watch_access {
        config = config.watch_access(args.revoke_out_of_band);
    }
    if let Some(target) = args.syslog {
        config = config.syslog(target);
    }
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
    // Checked here, not by clap: the settings file fills these in after the command line is parsed.
    match (&args.slack_bot_token_file, &args.slack_signing_secret_file) {
        (Some(_), None) | (None, Some(_)) => anyhow::bail!(
            "Slack needs both --slack-bot-token-file and --slack-signing-secret-file (or both keys in the settings file)"
        ),
        (None, None) if args.slack_channel.is_some() || args.slack_user_map_file.is_some() => anyhow::bail!(
            "--slack-channel and --slack-user-map-file need Slack: add --slack-bot-token-file and --slack-signing-secret-file"
        ),
        _ => {}
    }
    if let (Some(token), Some(secret)) = (&args.slack_bot_token_file, &args.slack_signing_secret_file) {
        use rancher_server::config::read_chat_secret_file;
        let mut slack = rancher_server::slack::SlackConfig::new(
            read_chat_secret_file(token, "Slack bot token")?,
            read_chat_secret_file(secret, "Slack signing secret")?,
        );
        if let Some(c) = &args.slack_channel {
            slack = slack.channel(c.clone());
        }
        if let Some(u) = &args.slack_api_url {
            slack = slack.api_url(u.clone());
        }
        if let Some(f) = &args.slack_user_map_file {
            slack = slack.users(rancher_server::slack::read_user_map(f).map_err(anyhow::Error::msg)?);
        }
        config = config.slack(slack);
    }
    if let Some(f) = &args.teams_webhook_url_file {
        config = config.teams_webhook(rancher_server::config::read_chat_secret_file(f, "Teams webhook URL")?);
    }
    if let Some(dir) = &args.policies {
        config = config.policies(dir.clone());
    }
    config = config.oncall(oncall_config);
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
    Ok(config)
}

/// The on-call providers from the flags (their keys read from owner-only files).
fn oncall(args: &ServeArgs) -> anyhow::Result<rancher_server::oncall::OnCallConfig> {
    use rancher_server::config::read_chat_secret_file;
    use rancher_server::oncall::{OnCallConfig, Provider};
    let mut c = OnCallConfig::default();
    if let Some(f) = &args.pagerduty_key_file {
        c.pagerduty = Some(Provider {
            url: args.pagerduty_url.clone(),
            key: read_chat_secret_file(f, "PagerDuty API key")?,
        });
    }
    if let Some(f) = &args.opsgenie_key_file {
        c.opsgenie = Some(Provider {
            url: args.opsgenie_url.clone(),
            key: read_chat_secret_file(f, "Opsgenie API key")?,
        });
    }
    if let Some(f) = &args.oncall_user_map_file {
        c.users = rancher_server::oncall::read_user_map(f).map_err(anyhow::Error::msg)?;
    }
    Ok(c)
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
