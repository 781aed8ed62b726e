//! Errors of the workflow layer.

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a workflow, an install or an approval step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The workflow id is not in the catalog.
    #[error("unknown workflow `{0}`{hint}; `rancherctl workflows list` shows them", hint = crate::catalog::did_you_mean(.0))]
    UnknownWorkflow(String),
    /// A workflow could not be registered (its id is taken or malformed).
    #[error("{0}")]
    Registry(String),
    /// The workflow must be installed before it runs.
    #[error("workflow `{0}` is not installed; install it with `rancherctl workflows install {0}`")]
    NotInstalled(String),
    /// An input is missing, unknown or malformed.
    #[error("{workflow}: input `{input}`: {message}")]
    Input {
        /// Workflow id.
        workflow: String,
        /// Input name.
        input: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Something the workflow needs does not exist on the server.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (change a policy, cancel someone else's request, ...).
    #[error("{0}")]
    NotAllowed(String),
    /// Refused before anything was sent: the server version lacks it, or it would be unsafe (a lockout).
    #[error("{0}")]
    Refused(String),
    /// The test login of a safe enable failed; the provider was left disabled.
    #[error("{0}")]
    TestFailed(String),
    /// The Rancher server refused or could not be reached.
    #[error(transparent)]
    Api(#[from] rancher_api::Error),
    /// The approval layer refused (not eligible, not pending, ...).
    #[error(transparent)]
    Approval(#[from] rancher_approval::Error),
    /// A store operation panicked or was cancelled.
    #[error("the approval store task failed: {0}")]
    Task(String),
    /// The grant asked for is held already, identically: it would change nothing. A run that needs approval is
    /// refused with this before anyone is asked; one that needs none succeeds as a no-op.
    #[error("{0}")]
    AlreadyHeld(String),
    /// Nothing is executed now: the service's audit log does not verify from the head it published (the
    /// decision was recorded; the request runs once the store is restored).
    #[error("{0}")]
    Halted(String),
}
