//! Where a command's settings come from: the connection (flags, then environment, then the profile) and the
//! state directory of the approval store.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rancher_approval::SqliteStore;
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
                Failure::new("no data directory is known on this system", "pass --state-dir DIR (or set RANCHERCTL_STATE_DIR)").into()
            }),
        }
    }

    /// The approval store file.
    pub fn store_path(&self) -> anyhow::Result<PathBuf> {
        Ok(self.state_dir()?.join(STORE_FILE))
    }

    /// Opens (creating if needed) the approval store.
    pub fn open_store(&self) -> anyhow::Result<Arc<SqliteStore>> {
        let dir = self.state_dir()?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating the state directory {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(Arc::new(SqliteStore::open(dir.join(STORE_FILE))?))
    }

    /// Opens the approval store only when it exists (read-only commands need not create it).
    pub fn existing_store(&self) -> anyhow::Result<Option<SqliteStore>> {
        let path = self.store_path()?;
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(SqliteStore::open(path)?))
    }

    /// The audit log's head, when the store exists and can be read (for the line printed after a change).
    pub fn audit_head(&self) -> Option<rancher_approval::AuditHead> {
        let store = self.existing_store().ok()??;
        rancher_approval::Store::audit_head(&store).ok()
    }

    /// A workflow runner over the approval store.
    pub fn runner(&self) -> anyhow::Result<Runner> {
        Ok(Runner::new(self.open_store()?, executor_label()))
    }

    /// The profile store: `RANCHERCTL_CONFIG_DIR`, else `<config dir>/rancher-access`.
    pub fn profiles(&self) -> anyhow::Result<ProfileStore> {
        Ok(ProfileStore::open(std::env::var_os(CONFIG_DIR_ENV).map(PathBuf::from))?)
    }

    /// The profile in use: the one named, else `default` when it exists.
    pub fn profile_name(&self) -> anyhow::Result<Option<String>> {
        if let Some(p) = &self.global.profile {
            return Ok(Some(p.clone()));
        }
        let store = self.profiles()?;
        Ok(store.exists(DEFAULT_PROFILE).unwrap_or(false).then(|| DEFAULT_PROFILE.to_string()))
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
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("reading the token from stdin")?;
            return Ok(Some(BearerToken::parse_input(&text)?));
        }
        match std::env::var(TOKEN_ENV) {
            Ok(t) if !t.trim().is_empty() => Ok(Some(BearerToken::parse_input(&t)?)),
            _ => Ok(None),
        }
    }

    /// The CA bundle from `--ca-cert` / `RANCHER_CA_CERT`.
    pub fn ca_flag(&self) -> Option<CaSource> {
        self.global.ca_cert.clone().map(CaSource::File)
    }

    /// The connection: each of domain, token and CA from flags, then the environment, then the profile.
    pub fn connection(&self) -> anyhow::Result<Connection> {
        let domain = self.domain_flag()?;
        let token = self.token_flag()?;
        let ca = self.ca_flag();
        if let (Some(domain), Some(token)) = (&domain, &token) {
            return Ok(Connection::new(domain.clone(), token.clone()).with_ca(ca));
        }
        let Some(name) = self.profile_name()? else {
            let missing = if domain.is_none() { "no Rancher domain" } else { "no token" };
            return Err(Failure::new(
                format!("{missing} given and no profile is saved"),
                "save one with `rancherctl connect --profile default --domain HOST --token-stdin`, or set RANCHER_DOMAIN and RANCHER_TOKEN",
            )
            .into());
        };
        let stored = self.profiles()?.connection(&name)?;
        let conn = Connection::new(domain.unwrap_or_else(|| stored.domain().clone()), token.unwrap_or_else(|| stored.token().clone()));
        Ok(conn.with_ca(ca.or_else(|| stored.ca().cloned())))
    }

    /// Opens a session (server version and identity from the server). When that fails, the connection test
    /// runs to say why (unreachable, untrusted certificate, expired token, ...).
    pub async fn session(&self) -> anyhow::Result<Session> {
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

/// Names this process in the audit log: `rancherctl@<host>`.
pub fn executor_label() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
    format!("rancherctl@{host}")
}
