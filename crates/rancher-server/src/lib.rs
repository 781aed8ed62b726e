//! rancher-server: the approvals service behind `rancherctl serve`.
//!
//! Approvals across people and machines: the service holds the approval store and acts on Rancher with its own
//! service-account connection. People prove who they are with their own Rancher token (or Rancher's local
//! login on the web page); the service asks Rancher who the token belongs to and never stores, logs or forwards
//! it. It serves a JSON API under `/api/v1` (described at `/api/v1/openapi.json`), the approver's web page at
//! `/`, signed webhooks from a durable outbox (the audit log), `/healthz`, `/readyz` and `/metrics`; it settles
//! executions left in doubt and expires overdue requests at start and periodically; SIGTERM (through
//! [`RunningServer::run_until`]) stops taking requests and lets executions in flight finish.
//!
//! ```no_run
//! use std::sync::Arc;
//! use rancher_approval::SqliteStore;
//! use rancher_auth::{BearerToken, Connection, InstanceDomain};
//! use rancher_server::ServerConfig;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let service_account = Connection::new(InstanceDomain::parse("rancher.example.com")?, BearerToken::parse_input(&std::env::var("RANCHER_TOKEN")?)?);
//! let store = Arc::new(SqliteStore::open("approvals.db")?);
//! let server = rancher_server::start(ServerConfig::new("127.0.0.1:8080".parse()?, store, service_account)).await?;
//! println!("RANCHERCTL_SERVER={}", server.url());
//! server.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(()) }
//! ```

// Runner errors wrap rancher-api's (large, cold path).
#![allow(clippy::result_large_err)]

pub mod api;
mod app;
pub mod audit_export;
mod breakglass;
mod chat;
pub mod client;
pub mod config;
mod error;
pub mod event;
pub mod identity;
mod integrity;
pub mod metrics;
pub mod oncall;
mod outbox;
pub mod policies;
pub mod policies_api;
pub mod reminders;
mod revocation;
mod server;
mod sessions;
pub mod slack;
pub mod syslog;
mod teams;
pub mod telemetry;
pub mod throttle;
mod tls;
pub mod watcher;
mod web;
mod web_file;
pub mod webhooks;
pub mod wire;

pub use api::{openapi_json, ApiDoc};
pub use client::{check_server_url, ClientError, ListAnswer, RemoteItem, RemoteList, ServerClient};
pub use config::{ServerConfig, TlsFiles};
pub use error::{ApiError, Error, Result};
pub use server::{start, RunningServer};
pub use telemetry::TelemetryError;
pub use wire::RunAnswer;
