//! The one error type of this crate: bad input (domain, token), a failed connection test, or a profile problem.

use std::path::PathBuf;

use crate::diagnosis::Diagnosis;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate. `Display` is one line that names the problem and its fix; no
/// variant ever holds a token or its secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The instance domain was refused before anything was sent.
    #[error("instance domain: {message}")]
    InvalidDomain {
        /// Which mistake it is.
        mistake: DomainMistake,
        /// What is wrong and the corrected value, when one can be guessed.
        message: String,
        /// The corrected value, when one can be guessed.
        suggestion: Option<String>,
    },
    /// The bearer token was refused before anything was sent.
    #[error("bearer token: {message}")]
    InvalidToken {
        /// Which mistake it is.
        mistake: TokenMistake,
        /// What is wrong and how to fix it (never the token itself).
        message: String,
    },
    /// The CA bundle could not be read or used.
    #[error("CA bundle{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    InvalidCa {
        /// The file, when it came from one.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
    /// The connection test failed; the diagnosis names the cause and the remedy.
    #[error("connection test failed: {0}")]
    ConnectionTest(Box<Diagnosis>),
    /// A profile name is not usable as a file name.
    #[error("profile name `{name}` is invalid: {reason}")]
    InvalidProfileName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// No profile of that name exists.
    #[error("no profile named `{name}` in {dir}; `rancherctl profiles list` shows the saved ones")]
    ProfileNotFound {
        /// The name asked for.
        name: String,
        /// The profile directory searched.
        dir: PathBuf,
    },
    /// A new profile needs a value that was not given.
    #[error("profile `{profile}` does not exist yet, so {field} is required")]
    MissingField {
        /// The profile name.
        profile: String,
        /// The missing field (`--domain`, the token).
        field: &'static str,
    },
    /// A profile file exists but cannot be understood (truncated, wrong types, ...).
    #[error("profile file {path} is unreadable: {problem}")]
    CorruptProfile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A token file is readable by other users: it is not read until that is fixed.
    #[error("token file {path} is readable by {who} (mode {mode:o}); fix it with `chmod 600 {path}`")]
    InsecureTokenFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// "group", "others" or "group and others".
        who: &'static str,
    },
    /// A profile file or directory another user owns or may write: it is not used until that is fixed.
    #[error("{what} {path} {exposure}, so it could send the token elsewhere; fix: {fix}")]
    InsecureProfile {
        /// "profile directory" or "profile file".
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        exposure: crate::private::Exposure,
        /// The command that fixes it.
        fix: String,
    },
    /// A profile's domain would change while its token is kept.
    #[error("changing the domain of profile `{profile}` from {from} to {to} needs its token again: a profile's token goes only to the domain it was saved for; pass --token-file PATH or --token-stdin too")]
    DomainChangeWithoutToken {
        /// The profile.
        profile: String,
        /// The saved domain.
        from: String,
        /// The new one.
        to: String,
    },
    /// No configuration directory could be found for profiles.
    #[error("no configuration directory is known on this system; pass a directory (RANCHERCTL_CONFIG_DIR)")]
    NoConfigDir,
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The API client could not be built.
    #[error(transparent)]
    Api(Box<rancher_api::Error>),
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The diagnosis, when the connection test failed.
    pub fn diagnosis(&self) -> Option<&Diagnosis> {
        match self {
            Error::ConnectionTest(d) => Some(d),
            _ => None,
        }
    }
}

impl From<rancher_api::Error> for Error {
    fn from(e: rancher_api::Error) -> Self {
        Error::Api(Box::new(e))
    }
}

impl From<Diagnosis> for Error {
    fn from(d: Diagnosis) -> Self {
        Error::ConnectionTest(Box::new(d))
    }
}

/// Which mistake an instance domain holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DomainMistake {
    /// Nothing was entered.
    Empty,
    /// Spaces, tabs or line breaks around or inside it.
    Whitespace,
    /// A full `https://` URL was pasted.
    HttpsUrl,
    /// An `http://` URL: plain HTTP is not supported.
    PlainHttp,
    /// Another scheme (`ftp://`, `wss://`...).
    OtherScheme,
    /// A path after the host (`/dashboard`, `/v3`).
    Path,
    /// A query (`?x=y`) or fragment (`#...`).
    Query,
    /// Credentials before the host (`user@host`).
    Credentials,
    /// The host is not a DNS name, an IPv4 address or a bracketed IPv6 address.
    InvalidHost,
    /// The port is not a number from 1 to 65535.
    InvalidPort,
}

/// Which mistake a bearer token holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenMistake {
    /// Nothing was entered.
    Empty,
    /// `Bearer ` was pasted in front of it.
    BearerPrefix,
    /// It is wrapped in quotes.
    Quoted,
    /// Spaces or tabs around or inside it.
    Whitespace,
    /// A line break around or inside it.
    Newline,
    /// Only the access key (`token-xxxxx`), no secret.
    AccessKeyOnly,
    /// Only the secret key, no access key.
    SecretKeyOnly,
    /// The access key with `:` but nothing after it.
    EmptySecret,
    /// The access key part has characters a token name cannot have.
    InvalidAccessKey,
    /// The secret part has characters a secret cannot have.
    InvalidSecret,
}
