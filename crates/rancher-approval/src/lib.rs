//! Approval policies, durable approval requests with exactly-once execution, and a hash-chained audit log.
//!
//! Some workflows may only run after someone says yes. This crate decides who may say yes ([`Policy`],
//! [`evaluate()`]), records every request and decision durably ([`Store`]: [`SqliteStore`] on one machine, [`PostgresStore`] for several), guarantees an
//! approved request is executed once ([`Store::claim_execution`]), and keeps an append-only, hash-chained audit
//! log ([`AuditEntry`], [`Store::verify_audit`]). It has no HTTP: facts that live on the Rancher server (who the
//! admins are, group memberships) are resolved by the caller through an [`ApproverDirectory`] and passed in.
//!
//! ```no_run
//! use chrono::Utc;
//! use rancher_approval::{
//!     Decision, EligibilityContext, Executor, NewRequest, Outcome, Policy, Principal, RequestState, SqliteStore, Store,
//! };
//!
//! #[tokio::main]
//! async fn main() -> rancher_approval::Result<()> {
//!     let store = SqliteStore::open("approvals.db")?;
//!     let alice = Principal::new("u-alice").with_username("alice");
//!     let bob = Principal::new("u-bob").with_username("bob");
//!
//!     // Alice installs a workflow that needs her approval; Bob asks to run it.
//!     let installation = store.install("create-global-role-binding", &alice, Policy::installer(), Utc::now()).await?;
//!     let request = store.create_request(
//!         NewRequest::for_installation(&installation, bob.clone())
//!             .inputs(serde_json::json!({"user": "u-carol", "role": "admin"}), ["token"])
//!             .targets(["u-carol"])
//!             .reason("on-call rotation"),
//!         Utc::now(),
//!     ).await?;
//!     assert_eq!(request.state, RequestState::Pending);
//!
//!     // Alice approves (the caller resolved the eligibility facts; the installer policy needs none here).
//!     let decided = store.decide(
//!         &request.id,
//!         &alice,
//!         Decision::approve().because("looks right"),
//!         &EligibilityContext::default(),
//!         Utc::now(),
//!     ).await?;
//!     assert_eq!(decided.request.state, RequestState::Approved);
//!
//!     // Exactly one executor wins the claim, runs the workflow, and records the outcome.
//!     // The claim is a lease: if this process dies, another may take over once it runs out.
//!     let executor = Executor::new("u-alice", "rancherctl@host-1 pid 4242");
//!     let claim = store.claim_execution(&request.id, &executor, Utc::now() + chrono::TimeDelta::minutes(5), Utc::now()).await?;
//!     store.record_outcome(&claim, Outcome::succeeded(serde_json::json!({"binding": "grb-x1"})), Utc::now()).await?;
//!
//!     println!("{} audit entries verified", store.verify_audit().await?);
//!     Ok(())
//! }
//! ```
//!
//! Modules: [`policy`] (the data), [`evaluate`](mod@evaluate) (pure evaluation and eligibility), [`request`] (requests and
//! decisions), [`store`] (the trait, the stores, store URLs and export/import), [`audit`] (the chain and its verification).

pub mod audit;
mod basics;
mod canonical;
mod error;
pub mod evaluate;
pub mod grant;
mod installation;
pub mod names;
pub mod policy;
mod principal;
pub mod request;
pub mod rules;
pub mod store;

pub use audit::{verify as verify_audit_chain, AuditDetail, AuditEntry, AuditHead, AuditKind, GENESIS_HASH};
pub use error::{DirectoryError, Error, Ineligibility, Result};
pub use evaluate::{
    check_eligibility, evaluate, resolve_reviewer, ApproverDirectory, EligibilityContext, RequestFacts, Verdict,
};
pub use grant::{
    format_duration, parse_duration, BindingKind, Extension, Grant, GrantChange, GrantFilter, GrantStatus, NewGrant,
    Revocation, RevocationClaim, RevokedHow, SubjectKind,
};
pub use names::{LookAlike, NamedKind, NamedTarget, PinnedNames};
pub use policy::{ApproverRef, ChatDecisions, Combine, Count, Policy, PolicyOptions, Rule, Threshold, DEFAULT_EXPIRY};
pub use principal::Principal;
pub use request::{
    content_hash, redact, ApprovalRequest, Closure, Decision, DecisionRecord, ExecutionRecord, Executor, NewRequest,
    Outcome, OutcomeStatus, Reconciliation, RequestId, RequestState, ServerIdentity, Vote, REDACTED,
};
pub use store::{
    export, import, open_store, Clock, DecideOutcome, ExecutionClaim, ExportRecord, Installation, MemoryStore,
    ObservedStore, PostgresOptions, PostgresStore, RequestFilter, SqliteOptions, SqliteStore, Store, StoreCall,
    StoreObserver, StoreUrl, Synchronous, Takeover, TransferSummary, EXPORT_FORMAT, EXPORT_VERSION,
    POSTGRES_SCHEMA_VERSION, SCHEMA_VERSION, SYSTEM_ACTOR,
};

#[cfg(feature = "test-util")]
pub mod test_util;
