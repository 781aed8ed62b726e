//! What the service needs: where to listen, TLS, the store, its own Rancher connection, webhooks and timings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rancher_approval::Store;
use rancher_auth::{Connection, RetryPolicy};
use secrecy::SecretString;
use url::Url;

use crate::error::{Error, Result};

/// PEM files of the service's certificate (chain) and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The time the service's jobs go by (grant revocation, the overdue-grant metrics); tests inject a clock that
/// runs ahead instead of sleeping.
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

/// The service's configuration. Build with [`ServerConfig::new`] and the chained setters.
#[derive(Clone)]
pub struct ServerConfig {
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Certificate and key; without them only loopback addresses are allowed.
    pub tls: Option<TlsFiles>,
    /// The approval store.
    pub store: Arc<dyn Store>,
    /// The service account's connection to Rancher (domain, token, CA). People's tokens are checked against the
    /// same domain and CA.
    pub rancher: Connection,
    /// Retries of Rancher calls (default: 3 with short backoff).
    pub retry: RetryPolicy,
    /// Webhook URLs (HTTPS, or HTTP on loopback).
    pub webhooks: Vec<Url>,
    /// Secret for `X-Rancher-Access-Signature`.
    pub webhook_secret: Option<SecretString>,
    /// Extra CA certificates (PEM) trusted for webhook HTTPS, besides the system's.
    pub webhook_ca_pem: Option<Vec<u8>>,
    /// Names this service in the audit log.
    pub executor: String,
    /// Where the service keeps the last audit head it published (its anchor), outside the store: checked against
    /// the store at start and on every job run. `None`: the anchor lives in memory only (checked while running).
    pub anchor_file: Option<PathBuf>,
    /// How often expiry and reconcile run.
    pub job_interval: Duration,
    /// Watching Rancher's access objects (off by default; see `crate::watcher`).
    pub watch: WatchSettings,
    /// Where the audit log also goes as syslog messages (RFC 5424), if anywhere.
    pub syslog: Option<SyslogTarget>,
    /// How long a resolved identity is reused for the same token.
    pub identity_ttl: Duration,
    /// The longest a web sign-in lasts, however active (default 8 h, a working day).
    pub web_session_ttl: Duration,
    /// A web sign-in ends after this long without a page (default 30 min).
    pub web_idle_timeout: Duration,
    /// Sign-in attempts per client address and per user name (default: 25 at once, then one every 5 s).
    pub sign_in_limit: crate::throttle::Limit,
    /// Bearer-token checks that reach Rancher, per client address (default: 100 at once, then 2 a second).
    pub token_check_limit: crate::throttle::Limit,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// First webhook retry delay (doubles up to [`ServerConfig::webhook_max_backoff`]).
    pub webhook_backoff: Duration,
    /// Longest webhook retry delay.
    pub webhook_max_backoff: Duration,
    /// The clock of the jobs (default: the system's).
    pub clock: Clock,
    /// Longest wait for a request's header, counted from the connection's start or from the end of the previous
    /// answer: it is also how long an idle kept-alive connection stays open.
    pub header_timeout: Duration,
    /// On stop, how long requests, decisions and executions in flight may take to finish before the process
    /// goes anyway (an execution cut off is settled from its claim by the next start or another replica).
    pub shutdown_grace: Duration,
    /// Most connections open at once (lowered at start to fit the open-file limit).
    pub max_connections: usize,
    /// Most connections open at once from one IP address (behind a reverse proxy every connection comes from the
    /// proxy: raise it to [`ServerConfig::max_connections`] there).
    pub max_connections_per_ip: usize,
    /// Tries of an event a webhook receiver refuses for good (4xx other than 408 and 429) before it is
    /// dead-lettered.
    pub webhook_refused_attempts: u32,
    /// How long an event is retried after network errors, 5xx, 408 or 429 before it is dead-lettered.
    pub webhook_retry_for: Duration,
    /// Bearer token `/metrics` asks for (none: `/metrics` is served without one unless it has its own listener).
    pub metrics_token: Option<SecretString>,
    /// A separate address for `/metrics` (none: the main listener serves it).
    pub metrics_listen: Option<SocketAddr>,
    /// The URL people reach the service at, when it differs from the listener's: behind a TLS-terminating proxy
    /// it is `https://...` even though the service itself listens on loopback HTTP. `None`: the listener's URL.
    pub public_url: Option<Url>,
    /// Slack interactive approvals (see [`crate::slack`]); none: no Slack.
    pub slack: Option<SlackConfig>,
    /// A Teams workflow webhook URL that new requests are posted to as cards (it carries a signature: a secret).
    pub teams_webhook: Option<SecretString>,
    /// A directory of policy rule files requests are judged by when filed (`--policies DIR`); none: no rules.
    pub policies: Option<PathBuf>,
    /// The on-call providers the rules' `oncall(...)` asks.
    pub oncall: crate::oncall::OnCallConfig,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("tls", &self.tls)
            .field("rancher", &self.rancher.domain().to_string())
            .field("webhooks", &self.webhooks.iter().map(Url::as_str).collect::<Vec<_>>())
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "***"))
            .field("executor", &self.executor)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("metrics_listen", &self.metrics_listen)
            .field("slack", &self.slack)
            .field("teams_webhook", &self.teams_webhook.as_ref().map(|_| "***"))
            .field("policies", &self.policies)
            .field("oncall", &self.oncall)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// A configuration with defaults: no TLS, no webhooks, jobs every 30 s, identities cached 30 s, web sign-ins
    /// ended after 30 min idle and at 8 h, bodies up to 64 KiB, requests up to 120 s.
    pub fn new(listen: SocketAddr, store: Arc<dyn Store>, rancher: Connection) -> Self {
        ServerConfig {
            listen,
            tls: None,
            store,
            rancher,
            retry: RetryPolicy {
                max_retries: 3,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(2),
                max_retry_after: Duration::from_secs(10),
            },
            webhooks: Vec::new(),
            webhook_secret: None,
            webhook_ca_pem: None,
            executor: "rancher-server".into(),
            anchor_file: None,
            job_interval: Duration::from_secs(30),
            watch: WatchSettings::default(),
            syslog: None,
            identity_ttl: Duration::from_secs(30),
            web_session_ttl: Duration::from_secs(8 * 3600),
            web_idle_timeout: Duration::from_secs(30 * 60),
            sign_in_limit: crate::throttle::Limit {
                burst: 25,
                every: Duration::from_secs(5),
            },
            token_check_limit: crate::throttle::Limit {
                burst: 100,
                every: Duration::from_millis(500),
            },
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(120),
            webhook_backoff: Duration::from_millis(500),
            webhook_max_backoff: Duration::from_secs(60),
            clock: Arc::new(chrono::Utc::now),
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(45),
            max_connections: 4096,
            max_connections_per_ip: 256,
            webhook_refused_attempts: 3,
            webhook_retry_for: Duration::from_secs(3600),
            metrics_token: None,
            metrics_listen: None,
            public_url: None,
            slack: None,
            teams_webhook: None,
            policies: None,
            oncall: crate::oncall::OnCallConfig::default(),
        }
    }

    /// Judges requests by the rule files of `dir` when they are filed (loaded at start; see [`crate::policies`]).
    pub fn policies(mut self, dir: impl Into<PathBuf>) -> Self {
        self.policies = Some(dir.into());
        self
    }

    /// Answers the rules' `oncall(...)` from these providers.
    pub fn oncall(mut self, oncall: crate::oncall::OnCallConfig) -> Self {
        self.oncall = oncall;
        self
    }

    /// See [`ServerConfig::shutdown_grace`].
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }

    /// Posts requests to Slack and takes decisions from its buttons.
    pub fn slack(mut self, slack: SlackConfig) -> Self {
        self.slack = Some(slack);
        self
    }

    /// Posts requests to a Teams workflow webhook as Adaptive Cards.
    pub fn teams_webhook(mut self, url: SecretString) -> Self {
        self.teams_webhook = Some(url);
        self
    }

    /// Longest wait for a request's header (also the idle keep-alive timeout).
    pub fn header_timeout(mut self, d: Duration) -> Self {
        self.header_timeout = d;
        self
    }

    /// Connection caps: in all, and from one IP address.
    pub fn max_connections(mut self, total: usize, per_ip: usize) -> Self {
        self.max_connections = total;
        self.max_connections_per_ip = per_ip;
        self
    }

    /// When a webhook event is dead-lettered: after `refused_attempts` tries the receiver refused for good (4xx
    /// other than 408 and 429), or after `retry_for` of other failures.
    pub fn webhook_give_up(mut self, refused_attempts: u32, retry_for: Duration) -> Self {
        self.webhook_refused_attempts = refused_attempts;
        self.webhook_retry_for = retry_for;
        self
    }

    /// `/metrics` asks for `Authorization: Bearer <token>`.
    pub fn metrics_token(mut self, token: SecretString) -> Self {
        self.metrics_token = Some(token);
        self
    }

    /// `/metrics` is served on its own listener at `addr` (and no longer on the main one).
    pub fn metrics_listen(mut self, addr: SocketAddr) -> Self {
        self.metrics_listen = Some(addr);
        self
    }

    /// Runs the jobs by `clock` instead of the system's (tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The URL people reach the service at (see [`ServerConfig::public_url`]).
    pub fn public_url(mut self, url: Url) -> Self {
        self.public_url = Some(url);
        self
    }

    /// Web sign-ins end after `idle` without a page, and at `absolute` after sign-in.
    pub fn web_sessions(mut self, idle: Duration, absolute: Duration) -> Self {
        self.web_idle_timeout = idle;
        self.web_session_ttl = absolute;
        self
    }

    /// Whether the page's cookies are marked `Secure` (and named `__Host-`): the service serves TLS itself, or
    /// people reach it at an `https://` public URL (a TLS-terminating proxy in front).
    pub fn secure_cookies(&self) -> bool {
        self.tls.is_some() || self.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
    }

    /// Serves HTTPS with these files.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Retries of Rancher calls.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Adds a webhook URL.
    pub fn webhook(mut self, url: Url) -> Self {
        self.webhooks.push(url);
        self
    }

    /// The webhook signing secret.
    pub fn webhook_secret(mut self, secret: SecretString) -> Self {
        self.webhook_secret = Some(secret);
        self
    }

    /// Names this service in the audit log.
    pub fn executor(mut self, executor: impl Into<String>) -> Self {
        self.executor = executor.into();
        self
    }

    /// Keeps the published audit head in `path` (see [`ServerConfig::anchor_file`]).
    pub fn anchor_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.anchor_file = Some(path.into());
        self
    }

    /// How often expiry and reconcile run.
    pub fn job_interval(mut self, d: Duration) -> Self {
        self.job_interval = d;
        self
    }

    /// Watches Rancher's bindings, roles and tokens and reports each binding change, matched to its request or as
    /// out of band; with `revoke_out_of_band`, also files a revoke request for each binding made out of band.
    pub fn watch_access(mut self, revoke_out_of_band: bool) -> Self {
        self.watch = WatchSettings {
            enabled: true,
            revoke_out_of_band,
        };
        self
    }

    /// Sends every audit entry to a syslog collector too (see `crate::syslog`).
    pub fn syslog(mut self, target: SyslogTarget) -> Self {
        self.syslog = Some(target);
        self
    }

    /// Webhook retry delays: the first, and the longest.
    pub fn webhook_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.webhook_backoff = first;
        self.webhook_max_backoff = max;
        self
    }

    /// Refuses what must not run: plain HTTP off loopback, webhooks that are neither HTTPS nor loopback HTTP,
    /// webhooks without a secret.
    pub fn validate(&self) -> Result<()> {
        if self.tls.is_none() && !self.listen.ip().is_loopback() {
            return Err(Error::Config(format!(
                "refusing plain HTTP on {}: people's tokens would cross the network unencrypted; pass --tls-cert and --tls-key, or listen on a loopback address such as 127.0.0.1",
                self.listen
            )));
        }
        if let Some(u) = &self.public_url {
            check_public_url(u)?;
        }
        for u in &self.webhooks {
            check_webhook_url(u)?;
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err(Error::Config(
                "connection caps must be at least 1; pass --max-connections N and --max-connections-per-ip N".into(),
            ));
        }
        if self.header_timeout.is_zero() {
            return Err(Error::Config(
                "the header timeout must be longer than zero; pass --header-timeout SECONDS".into(),
            ));
        }
        if let Some(m) = self.metrics_listen {
            if self.tls.is_none() && !m.ip().is_loopback() {
                return Err(Error::Config(format!(
                    "refusing plain HTTP metrics on {m}: serve the service with --tls-cert and --tls-key (the metrics listener uses them too), or give --metrics-listen a loopback address"
                )));
            }
        }
        if let Some(s) = &self.slack {
            check_webhook_url(&s.api_url).map_err(|e| Error::Config(format!("--slack-api-url: {e}")))?;
        }
        for (flag, p) in [
            ("--pagerduty-url", &self.oncall.pagerduty),
            ("--opsgenie-url", &self.oncall.opsgenie),
        ] {
            if let Some(p) = p {
                check_webhook_url(&p.url).map_err(|e| Error::Config(format!("{flag}: {e}")))?;
            }
        }

        if let Some(t) = &self.teams_webhook {
            use secrecy::ExposeSecret as _;
            let u = Url::parse(t.expose_secret().trim()).map_err(|_| {
                Error::Config("the Teams webhook URL is not a URL; put the workflow's HTTP POST URL in the file".into())
            })?;
            check_webhook_url(&u)?;
        }
        if !self.webhooks.is_empty() && self.webhook_secret.is_none() {
            return Err(Error::Config(
                "webhooks need a signing secret; pass --webhook-secret-file FILE (mode 600)".into(),
            ));
        }
        Ok(())
    }
}

/// A public URL is the service's root: HTTPS (or HTTP on loopback), no user, path, query or fragment.
pub fn check_public_url(u: &Url) -> Result<()> {
    match u.scheme() {
        "https" => {}
        "http" if is_loopback_host(u) => {}
        s => {
            return Err(Error::Config(format!(
            "--public-url {}: scheme `{s}`; people must reach the service over https:// (plain http only on loopback)",
            redact_url(u)
        )))
        }
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(Error::Config("--public-url must not carry a user or password".into()));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(Error::Config(format!(
            "--public-url {} has a path, query or fragment; give the root, e.g. https://approvals.example.com",
            redact_url(u)
        )));
    }
    Ok(())
}

/// HTTPS anywhere, HTTP only to a loopback address.
pub fn check_webhook_url(u: &Url) -> Result<()> {
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(u) => Ok(()),
        "http" => Err(Error::Config(format!(
            "webhook {} is plain HTTP off loopback; use https://",
            redact_url(u)
        ))),
        s => Err(Error::Config(format!(
            "webhook {} has scheme `{s}`; use https://",
            redact_url(u)
        ))),
    }
}

fn is_loopback_host(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A webhook URL for logs and metrics: scheme, host and port only (Slack-style URLs carry a secret path).
pub fn redact_url(u: &Url) -> String {
    format!(
        "{}://{}{}",
        u.scheme(),
        u.host_str().unwrap_or(""),
        u.port().map(|p| format!(":{p}")).unwrap_or_default()
    )
}

/// Reads the webhook secret from a file that only its owner may read (mode 600); surrounding whitespace is dropped.
pub fn read_secret_file(path: &std::path::Path) -> Result<SecretString> {
    read_private_file(path, "webhook secret")
}

/// Reads a secret of a chat service (`what`: "Slack bot token", "Slack signing secret", "Teams webhook URL") from a
/// file that only its owner may read (mode 600); surrounding whitespace is dropped.
pub fn read_chat_secret_file(path: &std::path::Path, what: &str) -> Result<SecretString> {
    read_private_file(path, what)
}

/// Reads the `/metrics` bearer token from a file that only its owner may read (mode 600); surrounding whitespace
/// is dropped.
pub fn read_metrics_token_file(path: &std::path::Path) -> Result<SecretString> {
    read_private_file(path, "metrics token")
}

fn read_private_file(path: &std::path::Path, what: &str) -> Result<SecretString> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Config(format!("cannot read the {what} file {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Error::Config(format!(
            "the {what} file {} is not a regular file; pass a file (mode 600) holding the value",
            path.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "the {what} file {} has mode {mode:o}; others may read it: chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
    }
    if meta.len() > 4096 {
        return Err(Error::Config(format!(
            "the {what} file {} is larger than 4 KiB; it should hold one value",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read the {what} file {}: {e}", path.display())))?;
    let text = text.trim();
    if text.len() < 16 {
        return Err(Error::Config(format!(
            "the {what} in {} is shorter than 16 characters; use a long random value",
            path.display()
        )));
    }
    Ok(SecretString::from(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        assert!(check_webhook_url(&Url::parse("https://hooks.example.com/x").unwrap()).is_ok());
        assert!(check_webhook_url(&Url::parse("http://127.0.0.1:9/x").unwrap()).is_ok());
        assert!(check_webhook_url(&Url::parse("http://localhost:9/x").unwrap()).is_ok());
        let e = check_webhook_url(&Url::parse("http://hooks.example.com/T0/B0/secretpath").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain HTTP") && !e.contains("secretpath"), "{e}");
        assert!(check_webhook_url(&Url::parse("ftp://x/").unwrap()).is_err());
    }

    #[test]
    fn public_urls_are_roots_over_https() {
        assert!(check_public_url(&Url::parse("https://approvals.example.com").unwrap()).is_ok());
        assert!(check_public_url(&Url::parse("http://127.0.0.1:8080/").unwrap()).is_ok());
        for bad in [
            "http://approvals.example.com/",
            "https://approvals.example.com/app",
            "https://u:p@approvals.example.com/",
            "ftp://x/",
        ] {
            assert!(check_public_url(&Url::parse(bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "0123456789abcdef0123\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = read_secret_file(&p).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(read_secret_file(&p).is_ok());
    }
}

/// Where Slack's Web API is, unless configured otherwise.
pub const SLACK_API_URL: &str = "https://slack.com/api/";

/// What the service needs to talk to Slack.
#[derive(Clone)]
pub struct SlackConfig {
    /// The bot token (`xoxb-...`): posts and updates messages, opens modals, reads users' emails.
    pub bot_token: SecretString,
    /// The app's signing secret: interactions are checked against it.
    pub signing_secret: SecretString,
    /// The channel requests are posted to unless a policy names one (`chat_channel`); none: a direct message
    /// to each approver the mapping names.
    pub channel: Option<String>,
    /// The Web API's base URL (default [`SLACK_API_URL`]; Slack's government cloud, or a test double).
    pub api_url: Url,
    /// Slack user id to Rancher user id, from the mapping file; users not listed are looked up by email.
    pub users: BTreeMap<String, String>,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("bot_token", &"***")
            .field("signing_secret", &"***")
            .field("channel", &self.channel)
            .field("api_url", &self.api_url.as_str())
            .field("users", &self.users.len())
            .finish()
    }
}

impl SlackConfig {
    /// Slack with these secrets, the default API URL, no default channel and no mapping file.
    pub fn new(bot_token: SecretString, signing_secret: SecretString) -> Self {
        SlackConfig {
            bot_token,
            signing_secret,
            channel: None,
            api_url: Url::parse(SLACK_API_URL).expect("a valid URL"),
            users: BTreeMap::new(),
        }
    }

    /// Posts requests to `channel` unless a policy names another.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// Calls the Web API at `url` (a trailing `/` is added when missing).
    pub fn api_url(mut self, mut url: Url) -> Self {
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        self.api_url = url;
        self
    }

    /// Maps Slack user ids to Rancher user ids.
    pub fn users(mut self, users: BTreeMap<String, String>) -> Self {
        self.users = users;
        self
    }
}

/// Reads a mapping file: a JSON object of Slack user ids to Rancher user ids, `{"U0123ABCD": "u-b4x7k"}`.
pub fn read_user_map(path: &std::path::Path) -> std::result::Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the Slack user mapping {}: {e}", path.display()))?;
    let map: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the Slack user mapping {} is not a JSON object of Slack user ids to Rancher user ids (e.g. {{\"U0123ABCD\": \"u-b4x7k\"}}): {e}",
            path.display()
        )
    })?;
    for (slack, rancher) in &map {
        if slack.trim().is_empty() || rancher.trim().is_empty() {
            return Err(format!(
                "the Slack user mapping {} has an empty id; every entry maps a Slack user id to a Rancher user id",
                path.display()
            ));
        }
    }
    Ok(map)
}

/// Whether and how the service watches Rancher's access objects (see `crate::watcher`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchSettings {
    /// Watch at all.
    pub enabled: bool,
    /// File a revoke request for each binding made out of band.
    pub revoke_out_of_band: bool,
}

/// How messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One message per datagram (RFC 5426).
    Udp,
    /// A stream with octet-counting framing (RFC 6587).
    Tcp,
}

/// Where and how the audit log goes to syslog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTarget {
    /// The collector.
    pub addr: SocketAddr,
    /// UDP or TCP.
    pub transport: SyslogTransport,
    /// The shape of each message's body: `jsonl`, `ocsf` or `cloudevents`.
    pub format: String,
}

impl std::str::FromStr for SyslogTarget {
    type Err = String;

    /// `udp://HOST:PORT` or `tcp://HOST:PORT` (an IP address), optionally `?format=ocsf|cloudevents|jsonl`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("`{s}` is not a syslog target; write udp://IP:PORT or tcp://IP:PORT, optionally ?format=ocsf");
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        let transport = match scheme {
            "udp" => SyslogTransport::Udp,
            "tcp" => SyslogTransport::Tcp,
            _ => return Err(bad()),
        };
        let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
        let addr: SocketAddr = addr.trim_end_matches('/').parse().map_err(|_| bad())?;
        let format = match query.strip_prefix("format=") {
            None if query.is_empty() => "jsonl".to_string(),
            Some(f @ ("jsonl" | "ocsf" | "cloudevents")) => f.to_string(),
            Some(f) => return Err(format!("{s}: unknown format `{f}`; use jsonl, ocsf or cloudevents")),
            None => return Err(bad()),
        };
        Ok(SyslogTarget {
            addr,
            transport,
            format,
        })
    }
}
