//! Shared helpers of the end-to-end tests: a simulator and clients for its seeded principals.

pub mod cli;

use std::sync::Arc;

use rancher_api::{Client, RetryPolicy, SecretString};
use rancher_approval::MemoryStore;
use rancher_sim::{RancherVersion, SimConfig, SimHandle, Simulator};
use rancher_workflows::{Runner, Session};

/// Starts a simulator playing `version` with `users` extra users.
pub async fn sim(version: RancherVersion, users: usize) -> SimHandle {
    Simulator::start(SimConfig::default().rancher_version(version).users(users).seed(7).port(0)).await.expect("simulator starts")
}

/// A client of the simulator with the given bearer token.
pub fn client(sim: &SimHandle, token: &str) -> Client {
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
        .build()
        .expect("client builds")
}

/// A session for the given token.
pub async fn session(sim: &SimHandle, token: &str) -> Session {
    Session::open(client(sim, token)).await.expect("session opens")
}

/// A runner over an in-memory approval store.
pub fn runner() -> Runner {
    Runner::new(Arc::new(MemoryStore::new()), "e2e")
}
