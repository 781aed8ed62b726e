//! The one error type of this crate.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::basics::RequestState;

/// Result alias used throughout this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors a caller of a boxed [`crate::ApproverDirectory`] may return.
pub type DirectoryError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a principal may not decide on a request (carried by [`Error::NotEligible`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Ineligibility {
    /// The reviewer is the requester and the policy does not allow self-approval.
    SelfApproval,
    /// The reviewer is a target of the request (e.g. the user being granted admin).
    TargetOfRequest,
    /// The reviewer is not among the approvers the policy names.
    NotAnApprover {
        /// Who may decide instead, in words.
        expected: String,
    },
}

impl std::fmt::Display for Ineligibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SelfApproval => {
                f.write_str("self-approval is not allowed: you requested it, so another approver must decide")
            }
            Self::TargetOfRequest => f.write_str("you are a target of this request, so another approver must decide"),
            Self::NotAnApprover { expected } => {
                write!(f, "you are not in the approver list (expected {expected})")
            }
        }
    }
}

/// Everything that can go wrong in this crate. Each message names the cause and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No request with this id.
    #[error("approval request {id} does not exist; list them with `rancherctl approvals list`")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// A request id that is not of the form `req-` followed by 26 base32 characters.
    #[error("`{input}` is not an approval request id (expected `req-` followed by 26 letters and digits); list them with `rancherctl approvals list`")]
    InvalidRequestId {
        /// The text given.
        input: String,
    },
    /// The workflow has no installation record.
    #[error("workflow {workflow_id} is not installed; install it with `rancherctl workflows install {workflow_id}`")]
    NotInstalled {
        /// The workflow id.
        workflow_id: String,
    },
    /// The workflow is installed already.
    #[error("workflow {workflow_id} is already installed; change its policy with `rancherctl workflows set-policy {workflow_id}`")]
    AlreadyInstalled {
        /// The workflow id.
        workflow_id: String,
    },
    /// The principal may not decide on this request.
    #[error("{principal} may not decide on approval request {id}: {reason}")]
    NotEligible {
        /// The request id.
        id: String,
        /// The principal id that tried.
        principal: String,
        /// Why not.
        reason: Ineligibility,
    },
    /// The request is no longer waiting for decisions.
    #[error("approval request {id} is {state}, no longer pending; no decision can change it")]
    NotPending {
        /// The request id.
        id: String,
        /// Its current state.
        state: RequestState,
    },
    /// The request expired before this decision arrived (the expiry is now recorded).
    #[error("approval request {id} expired at {expired_at}; submit the workflow again for a new request")]
    Expired {
        /// The request id.
        id: String,
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
    /// The policy requires a reason and none was given.
    #[error("the approval policy requires a reason from the {from}; pass one with `--reason`")]
    ReasonRequired {
        /// `requester` or `reviewer`.
        from: &'static str,
    },
    /// Somebody else claimed the execution already.
    #[error(
        "approval request {id} was already claimed for execution by {executor} at {claimed_at}; it runs only once"
    )]
    AlreadyClaimed {
        /// The request id.
        id: String,
        /// The label of the executor that holds the claim.
        executor: String,
        /// When it was claimed.
        claimed_at: DateTime<Utc>,
    },
    /// The request is not approved (yet, or at all), so it cannot be executed.
    #[error("approval request {id} is {state}, not approved; it cannot be executed")]
    NotApproved {
        /// The request id.
        id: String,
        /// Its current state.
        state: RequestState,
    },
    /// An outcome was recorded with a claim that does not hold the request (anymore).
    #[error("the execution claim on approval request {id} is not current (the request is {state}); the outcome was not recorded")]
    StaleClaim {
        /// The request id.
        id: String,
        /// Its current state.
        state: RequestState,
    },
    /// Only a request stuck in `executing` can be reconciled.
    #[error("approval request {id} is {state}, not executing; there is nothing to reconcile")]
    NotInDoubt {
        /// The request id.
        id: String,
        /// Its current state.
        state: RequestState,
    },
    /// The execution's lease is still held by a live executor: it cannot be reconciled or taken over yet.
    #[error("approval request {id} is being executed by {executor} (lease until {lease_until}); try again after that")]
    LeaseHeld {
        /// The request id.
        id: String,
        /// The process holding the lease.
        executor: String,
        /// When the lease runs out.
        lease_until: DateTime<Utc>,
    },
    /// A decision or execution came through another Rancher server than the one the request belongs to.
    #[error("approval request {id} belongs to the Rancher server {expected}, but this session is on {found}; decide and execute through the request's own server")]
    WrongServer {
        /// The request id.
        id: String,
        /// The request's server.
        expected: String,
        /// The session's server.
        found: String,
    },
    /// The reviewer saw other content than the request now holds.
    #[error(
        "approval request {id} changed since it was shown to you; review it again (`rancherctl approvals show {id}`)"
    )]
    ContentChanged {
        /// The request id.
        id: String,
    },
    /// The stored request does not agree with what was recorded when it was made and decided: it was altered
    /// outside the approval flow. It is never executed.
    #[error("approval request {id} does not match its audit record ({problem}); it will not be executed; run `rancherctl approvals audit --verify`")]
    Tampered {
        /// The request id.
        id: String,
        /// What does not match.
        problem: String,
    },
    /// The store file could not be created.
    #[error("could not create the approval store {}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A backup could not be written where it was asked for.
    #[error("cannot back up the approval store to {}: {problem}; name a new file in a directory only you can read", path.display())]
    BackupTarget {
        /// The backup file asked for.
        path: std::path::PathBuf,
        /// Why.
        problem: String,
    },
    /// The policy is not well formed.
    #[error("invalid approval policy: {reason}")]
    InvalidPolicy {
        /// What is wrong with it.
        reason: String,
    },
    /// The audit chain does not verify.
    #[error("audit log entry {seq} fails verification: {problem}; the log was edited, reordered or truncated")]
    AuditBroken {
        /// First bad sequence number.
        seq: u64,
        /// What is wrong.
        problem: String,
    },
    /// The approver directory (the caller's resolver) failed.
    #[error("could not resolve approvers")]
    Directory {
        /// The resolver's error.
        #[source]
        source: DirectoryError,
    },
    /// The file is not an SQLite database (or not ours).
    #[error("{} is not an approval store database; point to the right file or move this one away", path.display())]
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// The underlying error, if any.
        #[source]
        source: Option<rusqlite::Error>,
    },
    /// The file was written by a newer version of this crate.
    #[error("{} has approval store schema version {found}, newer than the {supported} this build understands; upgrade rancherctl", path.display())]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version we read.
        supported: i64,
    },
    /// A stored record could not be read back.
    #[error("a stored {what} could not be decoded; the store file may be damaged")]
    Corrupt {
        /// Which record.
        what: String,
        /// The decoding error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The database failed.
    #[error("the approval store database failed")]
    Storage {
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The PostgreSQL store failed (a query, the connection, or the pool).
    #[error("the approval store database failed: {problem}")]
    Postgres {
        /// What PostgreSQL or the pool reported (never the password).
        problem: String,
    },
    /// A store URL that cannot be used.
    #[error("`{url}` is not a usable approval store URL: {problem}; use `sqlite:PATH` or `postgres://USER@HOST/DATABASE` (`?host=/run/postgresql` for a unix socket, `sslmode=disable|prefer|require`)")]
    BadStoreUrl {
        /// The URL as given, with any password hidden.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The database of a store URL could not be reached.
    #[error("cannot reach the approval store database {store}: {problem}; check that PostgreSQL runs there and that the URL, user and password are right")]
    StoreUnreachable {
        /// Which database (user, host, name; never the password).
        store: String,
        /// What the connection attempt reported.
        problem: String,
    },
    /// A PostgreSQL database written by a newer version of this crate.
    #[error("the approval store database {store} has schema version {found}, newer than the {supported} this build understands; upgrade rancherctl on this host")]
    DatabaseSchemaTooNew {
        /// Which database.
        store: String,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// Another writer changed the same record between this transaction's read and its write.
    #[error("approval request {id} was changed by another writer at the same moment; run the command again")]
    Conflict {
        /// The request.
        id: String,
    },
    /// A store operation could not finish because the async runtime is shutting down.
    #[error("the approval store operation was stopped because the program is shutting down; run it again")]
    Stopped,
    /// `import` refuses a store that already holds records.
    #[error("the target approval store is not empty ({what}); import only into a new, empty store")]
    ImportTargetNotEmpty {
        /// What was found in it.
        what: String,
    },
    /// An export file that cannot be imported.
    #[error("line {line} of the approval store export cannot be imported: {problem}; export it again with `rancherctl approvals export`")]
    BadExport {
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A grant duration that cannot be understood or is out of range.
    #[error("duration `{text}`: {reason}; write e.g. 30m, 8h, 7d or 1h30m")]
    InvalidDuration {
        /// The text given.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A duration the workflow's policy does not allow (too long, or missing when required).
    #[error("{reason}")]
    DurationRefused {
        /// What is wrong and what to do.
        reason: String,
    },
    /// No grant with this id.
    #[error("grant {id} does not exist; list them with `rancherctl grants list`")]
    GrantNotFound {
        /// The id asked for.
        id: String,
    },
    /// The grant was already revoked.
    #[error("grant {id} was already revoked at {at}; nothing to do")]
    GrantRevoked {
        /// The grant.
        id: String,
        /// When it was revoked.
        at: DateTime<Utc>,
    },
    /// The grant is not due yet, or waits for its next attempt after a failure, or another process holds its
    /// revocation.
    #[error("grant {id} cannot be revoked now: {why}")]
    NotRevocable {
        /// The grant.
        id: String,
        /// Why, in words.
        why: String,
    },
    /// A revocation claim that was taken over by another process.
    #[error(
        "the revocation claim on grant {id} is no longer current (another process took it over); nothing was recorded"
    )]
    StaleRevocation {
        /// The grant.
        id: String,
    },
    /// A misuse of the service state or lease methods (a programming error in the caller).
    #[error("service state: {problem}")]
    InvalidState {
        /// What was wrong.
        problem: String,
    },
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        // `Display` of a database error is only its severity and message; show the detail too.
        let problem = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        Self::Postgres { problem }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Postgres {
                problem: other.to_string(),
            },
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(source: rusqlite::Error) -> Self {
        Self::Storage { source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_cause_and_fix() {
        let e = Error::NotFound { id: "req-x".into() };
        assert_eq!(
            e.to_string(),
            "approval request req-x does not exist; list them with `rancherctl approvals list`"
        );
        let e = Error::NotEligible {
            id: "req-x".into(),
            principal: "u-1".into(),
            reason: Ineligibility::SelfApproval,
        };
        assert!(e.to_string().contains("self-approval is not allowed"), "{e}");
    }

    #[test]
    fn storage_keeps_source() {
        use std::error::Error as _;
        let e = Error::from(rusqlite::Error::InvalidQuery);
        assert!(e.source().is_some());
        assert_eq!(e.to_string(), "the approval store database failed");
    }
}
