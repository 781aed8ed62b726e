//! rancher-auth: the instance domain and bearer token of a Rancher server, checked and kept secret; the
//! connection test that says who the token is and what it may do, or exactly why it fails; and named profiles.
//!
//! ```no_run
//! use rancher_auth::{BearerToken, Connection, InstanceDomain, ProfileStore, ProfileUpdate};
//!
//! # async fn demo() -> Result<(), rancher_auth::Error> {
//! // Parsing names the mistake and the fix: `https://rancher.example.com/` is refused with
//! // "a full URL was pasted; ... enter `rancher.example.com`".
//! let domain = InstanceDomain::parse("rancher.example.com")?;
//! let token = BearerToken::parse_input(&std::io::read_to_string(std::io::stdin()).expect("stdin"))?;
//! println!("token {}", token.masked()); // ****wzmt
//!
//! // The connection test: identity, version, expiry, scope, permissions; or a diagnosis.
//! match Connection::new(domain.clone(), token.clone()).verify().await {
//!     Ok(v) => v.summary_lines().iter().for_each(|l| println!("{l}")),
//!     Err(diagnosis) => eprintln!("{}", diagnosis.explain()),
//! }
//!
//! // Profiles: saving tests the connection first and refuses to save on failure.
//! let store = ProfileStore::open(std::env::var_os("RANCHERCTL_CONFIG_DIR").map(Into::into))?;
//! store.save("prod", ProfileUpdate { domain: Some(domain), token: Some(token), ..Default::default() }).await?;
//! let client = store.connection("prod")?.client()?;
//! # let _ = client;
//! # Ok(()) }
//! ```

pub mod connection;
mod diagnose;
pub mod diagnosis;
pub mod domain;
pub mod error;
pub mod private;
pub mod profile;
pub mod token;

pub use connection::{
    Access, CaSource, Connection, Identity, KnownToken, Permissions, TokenInfo, Verification, Warning,
    EXPIRY_WARNING_DAYS,
};
pub use diagnosis::{Cause, Diagnosis};
pub use domain::{DomainMistake, InstanceDomain};
pub use error::{Error, Result};
pub use private::{create_private_dir, exposure, Exposure};
pub use profile::{read_token_file, ProfileData, ProfileStore, ProfileSummary, ProfileUpdate, Saved, StoredCa};
pub use token::{mask, mask_secrets, BearerToken, TokenMistake, RANCHER_SECRET_LEN};

/// Re-exported from rancher-api: what users of this crate need to go on.
pub use rancher_api::{Client, ClientBuilder, ConnectFailure, ExposeSecret, RetryPolicy, SecretString};
