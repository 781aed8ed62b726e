//! rancher-sim: a faithful HTTPS simulator of the Rancher server, for tests, benchmarks and the demo.
//!
//! It plays one server generation ([`RancherVersion`]: 2.13 by default, 2.12, 2.11, 2.8, or the legacy
//! 1.6) on loopback HTTPS with a throwaway CA, and answers like Rancher on the wire:
//!
//! - **RK-API** (`/apis/...`, 2.11+): Kubernetes objects, `<Kind>List` with `limit`/`continue` paging
//!   (continue tokens can expire: `410 Expired`), `Status` errors, merge patch, `/status`, discovery.
//! - **Norman `/v3`** (2.x): collection envelopes with `marker` pagination, filters and sort, renamed
//!   reference fields, links by permission, tokens, clusters, principals, auth configs and actions,
//!   settings, the public login endpoints, and the `401` body whose `status` is a string.
//! - **Legacy `/v1`** (1.6): provider configs with access modes, `/v1/token`, identities and accounts.
//!
//! Data is seeded deterministically from a seed (built-in roles and role templates, two clusters and
//! their projects, an admin, a second admin, standard users, bindings and tokens), can be made large
//! ([`SimConfig::users`]), and faults can be injected ([`Faults`]). The state is the simulator's own JSON,
//! not rancher-api's types, so clients are tested against the wire.
//!
//! ```no_run
//! use rancher_sim::{Faults, RancherVersion, SimConfig, Simulator};
//!
//! # async fn demo() -> Result<(), rancher_sim::SimError> {
//! let sim = Simulator::start(
//!     SimConfig::default()
//!         .rancher_version(RancherVersion::V2_13)
//!         .users(1_000)
//!         .seed(42)
//!         .port(0),
//! )
//! .await?;
//! println!("https://{} (CA: {} bytes)", sim.domain(), sim.ca_pem().len());
//! let admin_bearer = &sim.tokens().admin;
//! assert!(admin_bearer.starts_with("token-"));
//! sim.set_faults(Faults { rate_429: 0.1, retry_after_secs: 1, ..Faults::default() });
//! // ... drive the server over HTTPS, then inspect it:
//! let bindings = sim.count("globalrolebindings");
//! let creates = sim.writes("globalrolebindings", "create");
//! println!("{bindings} bindings, {creates} created over HTTP");
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod auth;
mod bulk;
mod config;
mod http;
mod ids;
mod legacy;
mod norman;
mod ops;
mod rk;
mod schemas;
mod seed;
mod server;
mod state;
pub mod testing;
mod tls;
mod tokens;
mod watch;

pub use config::{Faults, RancherVersion, SimConfig};
pub use ids::{ALPHABET, SECRET_LEN};
pub use seed::{SimTokens, SimUser, SimUsers, DEFAULT_PASSWORD};
pub use server::{run_until_signal, RequestRecord, SimHandle, Simulator};

/// Errors starting or running the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Could not bind the loopback port.
    #[error("could not bind the simulator's port")]
    Bind(#[source] std::io::Error),
    /// Could not make the throwaway CA or the server certificate.
    #[error("could not make TLS material: {0}")]
    Tls(String),
    /// A file could not be written (e.g. the CA for `run_until_signal`).
    #[error("could not write a file")]
    Io(#[source] std::io::Error),
}

/// `Result` with [`SimError`].
pub type Result<T, E = SimError> = std::result::Result<T, E>;
