//! rancher-workflows: the prebuilt Rancher access workflows, their install-time approval defaults, and the runner
//! that executes an approved request exactly once.
//!
//! ```no_run
//! use std::sync::Arc;
//! use rancher_workflows::{Client, Runner, Session, SqliteStore, Submitted};
//!
//! # async fn demo(client: Client) -> Result<(), rancher_workflows::Error> {
//! let session = Session::open(client).await?; // who the token belongs to, and the server version
//! let runner = Runner::new(Arc::new(SqliteStore::open("approvals.db")?), "example");
//! runner.install(&session, "create-global-role-binding", None).await?; // installer approval by default
//! let inputs = serde_json::json!({"user": "alice", "role": "admin"});
//! match runner.submit(&session, "create-global-role-binding", inputs, None, false).await? {
//!     Submitted::Pending { request, approvers, .. } => println!("waiting: {request} ({approvers})"),
//!     Submitted::Succeeded { result } => println!("{}", result.summary),
//! }
//! # Ok(()) }
//! ```
//!
//! Every workflow uses RK-API where the server has it and falls back to norman `/v3` on older servers.

// The error wraps rancher-api's (which keeps the server's body inline); errors are the cold path.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod apply_policies;
pub mod bindings;
pub mod builtins;
pub mod catalog;
mod error;
pub mod exec;
pub mod files;
pub mod grants;
pub mod held;
pub mod listing;
pub mod names;
pub mod policies;
pub mod progress;
pub mod registry;
mod resolve;
pub mod review;
mod roles;
pub mod runner;
pub mod session;
pub mod targets;
pub mod text;
pub mod workflow;

pub use catalog::{suggest_workflow, DefaultApproval, InputKind, InputSpec, WorkflowDef, CATALOG};
pub use error::{Error, Result};
pub use exec::{Exec, PlannedRequest, ResolvedUser, RunOutput, Table};
pub use files::refuse_host_paths;
pub use listing::{ListKind, ListStream, Listed};
pub use progress::{Progress, ProgressHandle, Recorded, Silent};
pub use registry::{all as all_workflows, find as find_workflow, Registry};
pub use runner::{approver_names, who_may_approve, Approved, Failure, RefusedBy, Runner, Submitted, DEFAULT_LEASE};
pub use runner::{BrokeGlass, REVIEW_WORKFLOW};
pub use session::{server_version, Session};
pub use workflow::{inputs_from_pairs, Inputs, Pinned, Report, Typed, TypedWorkflow, Workflow};

// The layers below, so a downstream crate (a workflow of its own, a tool around the runner) depends on this crate
// alone: the whole crates under short names, and at the top what a runner needs to start.
pub use async_trait::async_trait;
pub use rancher_api as api;
pub use rancher_api::{Client, ClientBuilder};
pub use rancher_approval as approval;
pub use rancher_approval::{MemoryStore, SqliteStore, Store};
pub use rancher_auth as auth;
