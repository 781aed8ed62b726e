//! The pieces every case uses: a simulator on its own runtime, clients that trust its CA, files for peers.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rancher_api::{Client, SecretString};
use rancher_sim::{SimConfig, SimHandle, Simulator};

/// A simulator served by its own tokio runtime (two worker threads), so the server is not scheduled on the
/// measuring client's threads, as it would not be in production. Dropping it stops the server.
pub struct Sim {
    handle: Option<SimHandle>,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// Seeds and starts a simulator. Call it from synchronous code (not inside a runtime).
    pub fn start(config: SimConfig) -> Result<Sim> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rancher-sim")
            .enable_all()
            .build()
            .context("starting the simulator's runtime")?;
        let handle = rt.block_on(Simulator::start(config)).context("starting rancher-sim")?;
        Ok(Sim {
            handle: Some(handle),
            rt,
        })
    }

    /// The running simulator.
    pub fn handle(&self) -> &SimHandle {
        self.handle.as_ref().expect("the simulator runs until dropped")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.handle().base_url()
    }

    /// The admin's bearer token (a secret: never print it).
    pub fn admin_token(&self) -> SecretString {
        SecretString::from(self.handle().tokens().admin.clone())
    }

    /// A rancher-api client for the admin that trusts only the simulator's CA.
    pub fn client(&self, concurrency: usize) -> Result<Client> {
        Client::builder(self.handle().domain())
            .token(self.admin_token())
            .ca_pem(self.handle().ca_pem().into_bytes())
            .without_system_roots()
            .concurrency_limit(concurrency)
            .build()
            .context("building the rancher-api client")
    }

    /// A bare reqwest client with the same TLS settings as rancher-api's (the simulator's CA only).
    pub fn bare_client(&self, pool: usize) -> Result<reqwest::Client> {
        let certs = rancher_api::tls::parse_ca_bundle(self.handle().ca_pem().as_bytes())?;
        let tls = rancher_api::tls::client_config(&certs, false)?;
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(true)
            .pool_max_idle_per_host(pool)
            .no_proxy()
            .build()
            .context("building a bare reqwest client")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}

/// Writes `contents` to `path` readable by its owner only (kubeconfigs hold a token).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A private temporary directory under `parent` (created if missing), removed when dropped.
pub fn temp_dir_in(parent: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))
}

/// Finds `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// A runtime for the measuring side: two worker threads, like a small service.
pub fn client_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .context("starting the client runtime")
}
