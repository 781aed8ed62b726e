//! Choosing a store by URL: `sqlite:PATH` or `postgres://...`.

use std::path::PathBuf;
use std::sync::Arc;

use super::postgres::{redact_url, PostgresUrl};
use super::{PostgresStore, SqliteStore, Store};
use crate::error::{Error, Result};

/// Where a store lives. `Debug` and `Display` never show a password.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:PATH` (also `sqlite://PATH`): one file on this machine.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...` (libpq-style): a database several replicas share.
    Postgres(String),
}

impl StoreUrl {
    /// Parses and checks a store URL; a bad one is [`Error::BadStoreUrl`].
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(Error::BadStoreUrl {
                    url: url.into(),
                    problem: "it names no file".into(),
                });
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            PostgresUrl::parse(url)?;
            return Ok(Self::Postgres(url.to_owned()));
        }
        Err(Error::BadStoreUrl {
            url: redact_url(url),
            problem: "it is neither a sqlite: nor a postgres:// URL".into(),
        })
    }

    /// Opens the store (creating the SQLite file, or migrating the PostgreSQL database, as needed).
    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        match self {
            Self::Sqlite(path) => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(path))
                    .await
                    .map_err(|_| Error::Stopped)??;
                Ok(Arc::new(store))
            }
            Self::Postgres(url) => Ok(Arc::new(PostgresStore::connect(url).await?)),
        }
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// Opens the store at `url`: `sqlite:PATH` or `postgres://USER@HOST/DATABASE` (see [`StoreUrl`]). A bad URL is
/// [`Error::BadStoreUrl`], an unreachable database [`Error::StoreUnreachable`].
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
    StoreUrl::parse(url)?.open().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_store_and_hide_passwords() {
        assert_eq!(
            StoreUrl::parse("sqlite:/var/lib/r/approvals.db").unwrap(),
            StoreUrl::Sqlite("/var/lib/r/approvals.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite://rel/approvals.db").unwrap(),
            StoreUrl::Sqlite("rel/approvals.db".into())
        );
        let pg = StoreUrl::parse("postgres://app:hunter2@db.example/approvals?sslmode=require").unwrap();
        assert_eq!(
            pg.to_string(),
            "postgres://app:***@db.example/approvals?sslmode=require"
        );
        assert!(!format!("{pg:?}").contains("hunter2"));
        for bad in [
            "approvals.db",
            "sqlite:",
            "mysql://app:hunter2@db/x",
            "postgres://app:hunter2@db.example",
        ] {
            let err = StoreUrl::parse(bad).unwrap_err();
            assert!(matches!(err, Error::BadStoreUrl { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[tokio::test]
    async fn open_store_opens_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("approvals.db").display());
        let store = open_store(&url).await.unwrap();
        assert_eq!(store.verify_audit().await.unwrap(), 0);
        assert!(dir.path().join("approvals.db").exists());
    }
}
