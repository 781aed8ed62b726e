//! Where a command's settings come from: the connection (flags, then environment, then the profile) and the
//! state directory of the approval store.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rancher_approval::{Store, StoreUrl};
use rancher_auth::{read_token_file, BearerToken, CaSource, Connection, InstanceDomain, ProfileStore, RetryPolicy};
use rancher_workflows::{Runner, Session};

use crate::cli::{Format, Global};
use crate::error::{Diagnosed, Failure};

/// The directory under the data directory that holds the approval store.
pub const APP_DIR: &str = "rancher-access";
/// The approval store's file name.
pub const STORE_FILE: &str = "approvals.db";
/// Environment variable naming the profile directory.
pub const CONFIG_DIR_ENV: &str = "RANCHERCTL_CONFIG_DIR";
/// Environment variable holding the token.
pub const TOKEN_ENV: &str = "RANCHER_TOKEN";
/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// The settings every command starts from.
#[derive(Debug, Clone)]
pub struct Context {
    /// The global flags (with their environment fallbacks already applied by clap).
    pub global: Global,
}

impl Context {
    /// A context over parsed global flags.
    pub fn new(global: Global) -> Context {
        Context { global }
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.global.output
    }

    /// The state directory: `--state-dir` / `RANCHERCTL_STATE_DIR`, else `<data dir>/rancher-access`.
    pub fn state_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.global.state_dir {
            Some(d) => Ok(d.clone()),
            None => dirs::data_dir().map(|d| d.join(APP_DIR)).ok_or_else(|| {
                Failure::new(
                    "no data directory is known on this system",
                    "pass --state-dir DIR (or set RANCHERCTL_STATE_DIR)",
                )
                .into()
            }),
        }
    }

    /// The state directory, ready for use: created 0700 (with its parents) when missing; when it exists, it must
    /// be a directory owned by you that nobody else may write. An existing directory is never chmod-ed: it may be
    /// shared (like /tmp), and then it is refused.
    pub fn ensure_state_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self.state_dir()?;
        if !dir.exists() {
            rancher_auth::create_private_dir(&dir)
                .with_context(|| format!("creating the state directory {}", dir.display()))?;
            return Ok(dir);
        }
        check_state_dir(&dir)?;
        Ok(dir)
    }

    /// The approval store: `--store URL` / `RANCHERCTL_STORE`, else `sqlite:` [`STORE_FILE`] in the state directory.
    pub fn store_url(&self) -> anyhow::Result<StoreUrl> {
        match &self.global.store {
            Some(url) => Ok(StoreUrl::parse(url)?),
            None => Ok(StoreUrl::Sqlite(self.state_dir()?.join(STORE_FILE))),
        }
    }

    /// Opens (creating if needed) the approval store. A SQLite file's directory must be private (created so in
    /// the default state directory).
    pub async fn open_store(&self) -> anyhow::Result<Arc<dyn Store>> {
        let url = self.store_url()?;
        match &url {
            StoreUrl::Sqlite(_) if self.global.store.is_none() => {
                self.ensure_state_dir()?;
            }
            StoreUrl::Sqlite(path) => {
                let dir = store_dir(path);
                if !dir.exists() {
                    rancher_auth::create_private_dir(&dir)
                        .with_context(|| format!("creating the store directory {}", dir.display()))?;
                }
                check_state_dir(&dir)?
            }
            StoreUrl::Postgres(_) => {}
        }
        Ok(url.open().await?)
    }

    /// Opens the approval store only when it exists (read-only commands need not create a SQLite file).
    pub async fn existing_store(&self) -> anyhow::Result<Option<Arc<dyn Store>>> {
        if let StoreUrl::Sqlite(path) = self.store_url()? {
            if !path.exists() {
                return Ok(None);
            }
            check_state_dir(&store_dir(&path))?;
        }
        Ok(Some(self.store_url()?.open().await?))
    }

    /// The audit log's head, when the store exists and can be read (for the line printed after a change).
    pub async fn audit_head(&self) -> Option<rancher_approval::AuditHead> {
        let store = self.existing_store().await.ok()??;
        store.audit_head().await.ok()
    }

    /// A workflow runner over the approval store, judging what is filed by the policy rules installed there
    /// (`rancherctl policies apply`), if any.
    pub async fn runner(&self) -> anyhow::Result<Runner> {
        let store = self.open_store().await?;
        let rules = rancher_workflows::policies::Policies::installed(store.clone());
        Ok(Runner::new(store, executor_label())
            .with_progress(crate::output::Stages::handle())
            .with_policies(rules))
    }

    /// The profile store: `RANCHERCTL_CONFIG_DIR`, else `<config dir>/rancher-access`.
    pub fn profiles(&self) -> anyhow::Result<ProfileStore> {
        Ok(ProfileStore::open(std::env::var_os(CONFIG_DIR_ENV).map(PathBuf::from))?)
    }

    /// The profile in use: the one named, else the current one (`rancherctl profiles use NAME`), else `default`
    /// when it exists.
    pub fn profile_name(&self) -> anyhow::Result<Option<String>> {
        if let Some(p) = &self.global.profile {
            return Ok(Some(p.clone()));
        }
        let store = self.profiles()?;
        if let Some(current) = store.current()? {
            return Ok(Some(current));
        }
        Ok(store
            .exists(DEFAULT_PROFILE)
            .unwrap_or(false)
            .then(|| DEFAULT_PROFILE.to_string()))
    }

    /// The domain from `--domain` / `RANCHER_DOMAIN`, parsed.
    pub fn domain_flag(&self) -> anyhow::Result<Option<InstanceDomain>> {
        Ok(match &self.global.domain {
            Some(d) => Some(InstanceDomain::parse(d)?),
            None => None,
        })
    }

    /// The token from `--token-file`, `--token-stdin` or `RANCHER_TOKEN`, in that order.
    pub fn token_flag(&self) -> anyhow::Result<Option<BearerToken>> {
        if let Some(path) = &self.global.token_file {
            return Ok(Some(read_token_file(path)?));
        }
        if self.global.token_stdin {
            return Ok(Some(token_from_stdin()?));
        }
        match std::env::var(TOKEN_ENV) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(BearerToken::parse_input(&t)?)),
            _ => Ok(None),
        }
    }

    /// The approvals service to use: `--server` / `RANCHERCTL_SERVER` (an empty value means the local store), else
    /// the one saved in the profile in use (named, or `default` when no domain comes from flags or the
    /// environment), else none (local mode).
    pub fn server_url(&self) -> anyhow::Result<Option<String>> {
        if let Some(url) = &self.global.server {
            let url = url.trim();
            return Ok((!url.is_empty()).then(|| url.to_string()));
        }
        if self.global.profile.is_none() && self.global.domain.is_some() {
            return Ok(None);
        }
        match self.profile_name()? {
            Some(name) => Ok(self.profiles()?.show(&name)?.data.server),
            None => Ok(None),
        }
    }

    /// Where the service URL in use came from, for fix lines: `--server`, `RANCHERCTL_SERVER` or `profile `NAME``.
    pub fn server_origin(&self) -> String {
        match &self.global.server {
            Some(url) => Self::origin("--server", "RANCHERCTL_SERVER", std::ffi::OsStr::new(url)).to_string(),
            None => match self.profile_name() {
                Ok(Some(name)) => format!("profile `{name}`"),
                _ => "the profile".to_string(),
            },
        }
    }

    /// The token to present to the approvals service at `url` when no token comes from flags or the environment:
    /// the profile's, and only when `url` is the service saved in that profile. A service URL from `--server` /
    /// `RANCHERCTL_SERVER` beside a profile's token is refused, naming where each came from and the fix, as
    /// [`Context::connection`] does for domains: a profile's token goes only where the profile says.
    pub fn profile_token_for_service(&self, url: &str) -> anyhow::Result<BearerToken> {
        let conn = self.connection()?;
        let Some(flag) = self.global.server.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            // The URL is the profile's own (server_url falls back to it only).
            return Ok(conn.token().clone());
        };
        let name = self.profile_name()?.unwrap_or_else(|| "default".into());
        let saved = self.profiles()?.show(&name)?.data.server;
        let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
        if saved.as_deref().is_some_and(|s| same(s, flag) && same(s, url)) {
            return Ok(conn.token().clone());
        }
        let from = Self::origin(
            "--server",
            "RANCHERCTL_SERVER",
            std::ffi::OsStr::new(self.global.server.as_deref().unwrap_or_default()),
        );
        let drop = if from == "--server" {
            "drop --server"
        } else {
            "unset RANCHERCTL_SERVER"
        };
        let saved_text = match &saved {
            Some(s) => format!("saved for the service {}", crate::text::escape(s)),
            None => "which saves no service".to_string(),
        };
        Err(Failure::new(
            format!(
                "the token comes from profile `{name}` ({saved_text}), but the service URL {} comes from {from}: a profile's token goes only to the service saved in that profile",
                crate::text::escape(flag)
            ),
            format!(
                "{drop} to use the profile's own service, save this one in the profile with `rancherctl connect --profile {name} --server URL`, \
                 or give the token by --token-file, --token-stdin or RANCHER_TOKEN to use it with this service"
            ),
        )
        .into())
    }

    /// The CA bundle from `--ca-cert` / `RANCHER_CA_CERT`.
    pub fn ca_flag(&self) -> Option<CaSource> {
        self.global.ca_cert.clone().map(CaSource::File)
    }

    /// Where a value given by flag or environment came from: the variable when it holds that value, else the flag.
    fn origin(flag: &'static str, env: &'static str, value: &std::ffi::OsStr) -> &'static str {
        if std::env::var_os(env).is_some_and(|v| v == value) {
            env
        } else {
            flag
        }
    }

    /// The connection: domain and token (and the CA) from flags and the environment, or else all from the profile.
    /// A profile is used whole: its token goes only to its own domain, with its own CA, so a profile mixed with a
    /// domain, token or CA from elsewhere is refused, naming which came from where.
    pub fn connection(&self) -> anyhow::Result<Connection> {
        let domain = self.domain_flag()?;
        let token = self.token_flag()?;
        let ca = self.ca_flag();
        let explicit = self.global.profile.is_some();
        if let (Some(domain), Some(token), false) = (&domain, &token, explicit) {
            return Ok(Connection::new(domain.clone(), token.clone()).with_ca(ca));
        }
        let Some(name) = self.profile_name()? else {
            let missing = if domain.is_none() {
                "no Rancher domain"
            } else {
                "no token"
            };
            let saved = self.profiles()?.names().unwrap_or_default();
            if let Some(first) = saved.first() {
                return Err(Failure::new(
                    format!("{missing} given and no profile is in use (none named, no current profile, no profile `default`); saved: {}", saved.join(", ")),
                    format!("pass --profile {first}, set RANCHER_PROFILE={first}, or make it the one in use: `rancherctl profiles use {first}`"),
                )
                .into());
            }
            return Err(Failure::new(
                format!("{missing} given and no profile is saved"),
                "save one with `rancherctl connect --profile default --domain HOST --token-stdin`, or set RANCHER_DOMAIN and RANCHER_TOKEN",
            )
            .into());
        };
        let stored = self.profiles()?.connection(&name)?;
        let g = &self.global;
        let mut outside: Vec<(&str, &str)> = Vec::new();
        if let Some(d) = &g.domain {
            outside.push(("the domain", Self::origin("--domain", "RANCHER_DOMAIN", d.as_ref())));
        }
        if token.is_some() {
            let from = if g.token_file.is_some() {
                "--token-file"
            } else if g.token_stdin {
                "--token-stdin"
            } else {
                TOKEN_ENV
            };
            outside.push(("the token", from));
        }
        if let Some(c) = &g.ca_cert {
            outside.push(("the CA", Self::origin("--ca-cert", "RANCHER_CA_CERT", c.as_os_str())));
        }
        if outside.is_empty() {
            return Ok(stored);
        }
        let parts = outside
            .iter()
            .enumerate()
            .map(|(i, (what, from))| format!("{what}{} from {from}", if i == 0 { " comes" } else { "" }))
            .collect::<Vec<_>>()
            .join(" and ");
        let drop = outside
            .iter()
            .map(|(_, from)| {
                if from.starts_with("--") {
                    format!("drop {from}")
                } else {
                    format!("unset {from}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let (chosen, other_way) = match &g.profile {
            Some(p) => {
                let by = Self::origin("--profile", "RANCHER_PROFILE", p.as_ref());
                (
                    format!("profile `{name}` was chosen by {by}"),
                    format!(
                        "or {} to use the flags and environment alone",
                        if by == "--profile" {
                            "drop --profile"
                        } else {
                            "unset RANCHER_PROFILE"
                        }
                    ),
                )
            }
            None => (
                format!("profile `{name}` is used by default"),
                "or give both the domain and the token (flags or environment) to use no profile".to_string(),
            ),
        };
        Err(Failure::new(
            format!(
                "{chosen} (saved for {}), but {parts}: a profile is used whole, its token goes only to its own domain with its own CA",
                stored.domain()
            ),
            format!("{drop} to use profile `{name}` as saved, {other_way}"),
        )
        .into())
    }

    /// Opens a session (server version and identity from the server). When that fails, the connection test
    /// runs to say why (unreachable, untrusted certificate, expired token, ...).
    pub async fn session(&self) -> anyhow::Result<Session> {
        let (conn, client) = self.client()?;
        match Session::open(client).await {
            Ok(s) => Ok(s),
            // The server answered, but not what a session needs: its own words say more than a diagnosis.
            Err(e @ rancher_workflows::Error::NotFound(_)) => Err(e.into()),
            Err(e) => match conn.verify().await {
                Err(d) => Err(Diagnosed(Box::new(d)).into()),
                Ok(_) => Err(e.into()),
            },
        }
    }
}

/// The Rancher connection and a client over it, with the CLI's retry policy.
impl Context {
    fn client(&self) -> anyhow::Result<(Connection, rancher_api::Client)> {
        let conn = self.connection()?;
        let client = conn
            .client_builder()?
            .retry_policy(RetryPolicy {
                max_retries: 3,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(2),
                max_retry_after: Duration::from_secs(10),
            })
            .build()?;
        Ok((conn, client))
    }

    /// A session for a run that only reads with the caller's own rights: it learns the server's version and
    /// nothing more (see [`Session::open_for_reads`]), so a list's first item comes after two Rancher calls.
    pub async fn read_session(&self) -> anyhow::Result<Session> {
        let (conn, client) = self.client()?;
        match Session::open_for_reads(client).await {
            Ok(s) => Ok(s),
            Err(e @ rancher_workflows::Error::NotFound(_)) => Err(e.into()),
            Err(e) => match conn.verify().await {
                Err(d) => Err(Diagnosed(Box::new(d)).into()),
                Ok(_) => Err(e.into()),
            },
        }
    }
}

/// Refuses a state directory that is not a directory, that another user owns, or that group or others may write:
/// they could read or replace the approval store.
/// The directory holding a SQLite store file (`.` for a bare file name).
fn store_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Runs `future` to completion on a small runtime, for the commands that otherwise need none (the catalog).
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future))
}

fn check_state_dir(dir: &Path) -> anyhow::Result<()> {
    let private_dir = "use a directory only you can write: `mkdir -m 700 DIR`, then pass --state-dir DIR (or set RANCHERCTL_STATE_DIR)";
    if !dir.is_dir() {
        return Err(Failure::new(
            format!("the state directory {} is not a directory", dir.display()),
            private_dir,
        )
        .into());
    }
    match rancher_auth::exposure(dir, false) {
        Ok(None) => Ok(()),
        Ok(Some(x)) => Err(Failure::new(
            format!("the state directory {} {x}: others could read or replace the approval store", dir.display()),
            match x {
                rancher_auth::Exposure::Owner { .. } => private_dir.to_string(),
                // A sticky, world-writable directory (/tmp) is shared by design: changing its mode would break the
                // machine, so only a directory of its own is suggested.
                rancher_auth::Exposure::Writable { mode, .. } if mode & 0o1000 != 0 => {
                    format!("{private_dir}; {} is shared by every user (sticky bit), so use a directory inside it instead: `mkdir -m 700 {}/rancherctl-$USER`", dir.display(), dir.display())
                }
                rancher_auth::Exposure::Writable { .. } => format!("{private_dir}; or, if it is yours alone, `chmod 700 {}`", dir.display()),
            },
        )
        .into()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("checking the state directory {}", dir.display()))),
    }
}

/// Names this process in the audit log: `rancherctl@<host>`.
pub fn executor_label() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("rancherctl@{host}")
}

/// The token given on standard input, read once per process: standard input can be read only once, and one
/// command may need the token twice (`check` tests Rancher and then the approvals service).
fn token_from_stdin() -> anyhow::Result<BearerToken> {
    static READ: std::sync::Mutex<Option<BearerToken>> = std::sync::Mutex::new(None);
    let mut read = READ.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(t) = read.as_ref() {
        return Ok(t.clone());
    }
    let token = BearerToken::parse_input(&read_token_stdin()?)?;
    *read = Some(token.clone());
    Ok(token)
}

/// The token from standard input: from a pipe, everything up to end of input; at a terminal, one line typed or
/// pasted after a prompt on stderr, with echo off so the token never shows on screen (as `rancher login` and
/// `gh auth login` do).
fn read_token_stdin() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut text = String::new();
        stdin
            .lock()
            .read_to_string(&mut text)
            .context("reading the token from stdin")?;
        return Ok(text);
    }
    eprint!("Paste the Rancher API token (input hidden), then Enter: ");
    let _ = std::io::Write::flush(&mut std::io::stderr());
    let line = read_line_hidden(&stdin);
    eprintln!();
    line.context("reading the token from the terminal")
}

/// Reads one line from the terminal on `stdin` with echo turned off, and turns it back on whatever happens.
#[cfg(unix)]
fn read_line_hidden(stdin: &std::io::Stdin) -> std::io::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let saved = tcgetattr(stdin).map_err(std::io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(stdin, OptionalActions::Now, &quiet).map_err(std::io::Error::from)?;
    let mut line = String::new();
    let read = std::io::BufRead::read_line(&mut stdin.lock(), &mut line);
    let restored = tcsetattr(stdin, OptionalActions::Now, &saved).map_err(std::io::Error::from);
    read?;
    restored?;
    Ok(line)
}

#[cfg(not(unix))]
fn read_line_hidden(stdin: &std::io::Stdin) -> std::io::Result<String> {
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdin.lock(), &mut line)?;
    Ok(line)
}
