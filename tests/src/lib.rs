//! Shared helpers of the end-to-end tests: a simulator and clients for its seeded principals.

pub mod cli;
pub mod counting;
pub mod faulty;
pub mod kubectl;
pub mod process;
pub mod server;

use std::sync::Arc;

use rancher_api::{Client, ClientBuilder, RetryPolicy, SecretString};
use rancher_approval::MemoryStore;
use rancher_sim::{RancherVersion, SimConfig, SimHandle, Simulator};
use rancher_workflows::{Runner, Session};

/// Starts a simulator playing `version` with `users` extra users.
pub async fn sim(version: RancherVersion, users: usize) -> SimHandle {
    Simulator::start(
        SimConfig::default()
            .rancher_version(version)
            .users(users)
            .seed(7)
            .port(0),
    )
    .await
    .expect("simulator starts")
}

/// A client builder for the simulator with the given bearer token, trusting only the simulator's CA, with a
/// retry policy of tiny backoffs (retries never really wait in tests).
pub fn client_builder(sim: &SimHandle, token: &str) -> ClientBuilder {
    Client::builder(sim.domain())
        .token(SecretString::from(token.to_string()))
        .ca_pem(sim.ca_pem().into_bytes())
        .without_system_roots()
        .retry_policy(RetryPolicy {
            max_retries: 8,
            base_delay: std::time::Duration::from_millis(1),
            max_delay: std::time::Duration::from_millis(20),
            max_retry_after: std::time::Duration::from_millis(20),
        })
}

/// A client of the simulator with the given bearer token.
pub fn client(sim: &SimHandle, token: &str) -> Client {
    client_builder(sim, token).build().expect("client builds")
}

/// A session for the given token.
pub async fn session(sim: &SimHandle, token: &str) -> Session {
    Session::open(client(sim, token)).await.expect("session opens")
}

/// A runner over an in-memory approval store.
pub fn runner() -> Runner {
    Runner::new(Arc::new(MemoryStore::new()), "e2e")
}

/// A `Write` that keeps everything written to it, shared by clones: give one clone to a tracing subscriber (as
/// its writer) and read the log through another.
#[derive(Debug, Clone, Default)]
pub struct Capture(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Capture {
    /// A copy of everything written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("capture").clone()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A tiny deterministic random number generator (SplitMix64) for reproducible test mixes.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The `--input` pairs of an `apply-policies` run of a one-rule set (the files as JSON and their hash), for the
/// tests that walk every workflow of the catalog.
pub fn apply_policies_inputs() -> [String; 2] {
    let files = std::collections::BTreeMap::from([(
        "10-day.yaml".to_string(),
        "rules:\n  - id: at-most-a-day\n    when: \"true\"\n    max_duration: 24h\n".to_string(),
    )]);
    let spec = rancher_approval::rules::files::spec_of_files(&files).expect("the rule file parses");
    let set = rancher_approval::rules::RuleSet::load(spec).expect("the rule set loads");
    [
        format!("files={}", serde_json::to_string(&files).expect("files as JSON")),
        format!("hash={}", set.hash()),
    ]
}
