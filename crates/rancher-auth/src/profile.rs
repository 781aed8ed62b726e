//! Named connection profiles on disk: the domain and CA in `<name>.json`, the token in `<name>.token` (mode
//! 0600, directory 0700). Writes are atomic: a temporary file in the same directory, fsync, rename.
//!
//! Saving a new profile, and any change of its token or domain, runs the connection test first and refuses to
//! save when it fails. A profile is a unit: the CA is stored as PEM (not a path), a new domain needs the token
//! again, and a directory or file another user owns or may write is refused, never used.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::connection::{CaSource, Connection, KnownToken, Verification};
use crate::diagnosis::Diagnosis;
use crate::domain::InstanceDomain;
use crate::error::{Error, Result};
use crate::token::BearerToken;

/// The directory under the user's config directory that holds profiles.
pub const APP_DIR: &str = "rancher-access";

/// The profile file format version written by this crate.
pub const FORMAT_VERSION: u32 = 1;

/// The file naming the current profile (no `.json`, so never taken for a profile).
const CURRENT_FILE: &str = "current";

/// What is stored for a profile, besides the token (which lives in its own file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileData {
    /// File format version.
    pub version: u32,
    /// The instance domain.
    pub domain: InstanceDomain,
    /// The CA bundle: a path to a PEM file, or the PEM itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<StoredCa>,
    /// The token's access key (not secret; for display without reading the token file).
    pub access_key: String,
    /// The token, masked.
    pub token_masked: String,
    /// When the connection was last tested successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<DateTime<Utc>>,
    /// The token's expiry as last seen (`None`: never expires or unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<DateTime<Utc>>,
    /// The cluster the token is scoped to, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_cluster_id: Option<String>,
    /// The user the token belongs to, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The Rancher version, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rancher_version: Option<String>,
    /// The approvals service this profile's approval commands go to (`rancherctl serve`'s URL), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

impl ProfileData {
    /// Reads the contents of profile `name`'s file (`path`, for the error): what [`ProfileStore::show`] does after
    /// reading the file. A truncated, mistyped or newer-format file is [`Error::CorruptProfile`] naming the fix.
    pub fn parse(name: &str, path: &Path, bytes: &[u8]) -> Result<ProfileData> {
        let data: ProfileData = serde_json::from_slice(bytes).map_err(|e| Error::CorruptProfile {
            path: path.to_path_buf(),
            // The parser's words may quote the file (an unknown field's name): keep them to one printable line.
            problem: if e.is_eof() {
                format!(
                    "it is truncated ({}); save the profile again with `rancherctl connect --profile {name}`",
                    printable(&e.to_string())
                )
            } else {
                format!(
                    "{}; fix the file or save the profile again with `rancherctl connect --profile {name}`",
                    printable(&e.to_string())
                )
            },
        })?;
        if data.version > FORMAT_VERSION {
            return Err(Error::CorruptProfile {
                path: path.to_path_buf(),
                problem: format!(
                    "it was written by a newer version (format {}; this one reads {FORMAT_VERSION})",
                    data.version
                ),
            });
        }
        Ok(data)
    }
}

/// A stored CA bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StoredCa {
    /// A path to a PEM file.
    Path(PathBuf),
    /// The PEM itself.
    Pem(String),
}

impl From<&StoredCa> for CaSource {
    fn from(s: &StoredCa) -> CaSource {
        match s {
            StoredCa::Path(p) => CaSource::File(p.clone()),
            StoredCa::Pem(p) => CaSource::Pem(p.clone()),
        }
    }
}

impl From<&CaSource> for StoredCa {
    fn from(s: &CaSource) -> StoredCa {
        match s {
            CaSource::File(p) => StoredCa::Path(p.clone()),
            CaSource::Pem(p) => StoredCa::Pem(p.clone()),
        }
    }
}

/// A profile as listed or shown: everything but the token, which appears masked only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProfileSummary {
    /// The profile name.
    pub name: String,
    /// What is stored.
    #[serde(flatten)]
    pub data: ProfileData,
}

/// A change to a profile, as the `connect` command gathers it. `None` (a blank field) keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    /// A new domain.
    pub domain: Option<InstanceDomain>,
    /// A new token.
    pub token: Option<BearerToken>,
    /// A new CA bundle.
    pub ca: Option<CaSource>,
    /// Remove the stored CA bundle.
    pub clear_ca: bool,
    /// A new approvals service URL (not tested against Rancher; the CLI checks its form).
    pub server: Option<String>,
    /// Forget the stored approvals service URL.
    pub clear_server: bool,
}

/// What [`ProfileStore::save`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Saved {
    /// The profile as stored now.
    pub profile: ProfileSummary,
    /// True when it did not exist before.
    pub created: bool,
    /// The connection test result, when one ran (always for a new profile or a changed token/domain/CA).
    pub verification: Option<Verification>,
}

/// A directory of named profiles.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    dir: PathBuf,
}

impl ProfileStore {
    /// Profiles in `dir` (the CLI passes `RANCHERCTL_CONFIG_DIR`), or else in `<config dir>/rancher-access/`.
    pub fn open(dir: Option<PathBuf>) -> Result<ProfileStore> {
        let dir = match dir {
            Some(d) => d,
            None => dirs::config_dir().ok_or(Error::NoConfigDir)?.join(APP_DIR),
        };
        Ok(ProfileStore { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn token_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.token"))
    }

    /// True when a profile of that name exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        check_name(name)?;
        Ok(self.data_path(name).exists())
    }

    /// Names of the saved profiles, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        self.check_dir()?;
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("reading", &self.dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("reading", &self.dir, e))?;
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            if let Some(name) = file.strip_suffix(".json") {
                if check_name(name).is_ok() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every profile, without tokens. A broken profile file is an error naming it.
    pub fn list(&self) -> Result<Vec<ProfileSummary>> {
        self.names()?.into_iter().map(|n| self.show(&n)).collect()
    }

    /// One profile, without its token (the token shows masked).
    pub fn show(&self, name: &str) -> Result<ProfileSummary> {
        check_name(name)?;
        self.check_dir()?;
        let path = self.data_path(name);
        if path.exists() {
            check_private(&path, "profile file", "600")?;
        }
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::ProfileNotFound {
                    name: name.into(),
                    dir: self.dir.clone(),
                })
            }
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        let data = ProfileData::parse(name, &path, &bytes)?;
        Ok(ProfileSummary {
            name: name.into(),
            data,
        })
    }

    /// The profile's token, read from its file. Refused when group or others may read the file.
    pub fn token(&self, name: &str) -> Result<BearerToken> {
        check_name(name)?;
        self.check_dir()?;
        let path = self.token_path(name);
        if path.exists() {
            check_private(&path, "profile token file", "600")?;
        }
        read_token_file(&path)
    }

    /// A connection for the profile (domain, token, CA, and what the last test learnt about the token).
    pub fn connection(&self, name: &str) -> Result<Connection> {
        let p = self.show(name)?;
        let token = self.token(name)?;
        Ok(Connection::new(p.data.domain.clone(), token)
            .with_ca(p.data.ca.as_ref().map(CaSource::from))
            .with_known_token(KnownToken {
                expires_at: p.data.token_expires_at,
                cluster_id: p.data.token_cluster_id.clone(),
            }))
    }

    /// Creates or edits a profile with the default connection test ([`Connection::verify`]).
    ///
    /// New profile: domain and token are required. Existing profile: blank fields keep the stored values; a
    /// change of token, domain or CA is tested before it is saved; a refused test saves nothing.
    pub async fn save(&self, name: &str, update: ProfileUpdate) -> Result<Saved> {
        self.save_with(name, update, |c| async move { c.verify().await }).await
    }

    /// Like [`ProfileStore::save`], with another connection test (e.g. with shorter timeouts).
    pub async fn save_with<F, Fut>(&self, name: &str, update: ProfileUpdate, test: F) -> Result<Saved>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<Verification, Diagnosis>>,
    {
        check_name(name)?;
        // The CA is kept as PEM: a later change of the file does not matter.
        let update = ProfileUpdate {
            ca: update.ca.as_ref().map(CaSource::pinned).transpose()?,
            ..update
        };
        let existing = match self.show(name) {
            Ok(p) => Some(p),
            Err(Error::ProfileNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let old_server = existing.as_ref().and_then(|p| p.data.server.clone());
        let server = if update.clear_server {
            None
        } else {
            update.server.clone().or(old_server.clone())
        };
        let (domain, token, ca, changed) = match &existing {
            None => {
                let domain = update.domain.ok_or(Error::MissingField {
                    profile: name.into(),
                    field: "the instance domain (--domain)",
                })?;
                let token = update.token.ok_or(Error::MissingField {
                    profile: name.into(),
                    field: "the bearer token (--token-stdin)",
                })?;
                let ca = if update.clear_ca { None } else { update.ca };
                (domain, token, ca, true)
            }
            Some(p) => {
                let old_ca = p.data.ca.as_ref().map(CaSource::from);
                let domain_changed = update.domain.as_ref().is_some_and(|d| d != &p.data.domain);
                if domain_changed && update.token.is_none() {
                    return Err(Error::DomainChangeWithoutToken {
                        profile: name.into(),
                        from: p.data.domain.to_string(),
                        to: update.domain.as_ref().map(ToString::to_string).unwrap_or_default(),
                    });
                }
                let ca = if update.clear_ca {
                    None
                } else {
                    update.ca.or(old_ca.clone())
                };
                let ca_changed = ca != old_ca;
                let (token, token_changed) = match update.token {
                    Some(t) => {
                        let changed = match self.token(name) {
                            Ok(old) => !old.same_as(&t),
                            Err(_) => true,
                        };
                        (t, changed)
                    }
                    // A blank token keeps the stored one (which must still be readable).
                    None => (self.token(name)?, false),
                };
                let domain = update.domain.unwrap_or_else(|| p.data.domain.clone());
                (domain, token, ca, domain_changed || token_changed || ca_changed)
            }
        };
        if !changed {
            let mut p = existing.expect("an unchanged profile exists");
            if server != old_server {
                // Only where approvals go changed: nothing to test against Rancher.
                p.data.server = server;
                let json = serde_json::to_vec_pretty(&p.data).expect("profile data always serialises");
                write_atomic(&self.data_path(name), &json)?;
            }
            return Ok(Saved {
                profile: p,
                created: false,
                verification: None,
            });
        }
        let conn = Connection::new(domain.clone(), token.clone()).with_ca(ca.clone());
        let verification = test(conn).await.map_err(Error::from)?;
        let info = verification.token_info.as_ref();
        let data = ProfileData {
            version: FORMAT_VERSION,
            domain,
            ca: ca.as_ref().map(StoredCa::from),
            access_key: token.access_key().to_string(),
            token_masked: token.masked().to_string(),
            verified_at: Some(Utc::now()),
            token_expires_at: info.and_then(|i| i.expires_at),
            token_cluster_id: info.and_then(|i| i.cluster_id.clone()),
            user: Some(
                verification
                    .identity
                    .username
                    .clone()
                    .unwrap_or_else(|| verification.identity.user_id.clone()),
            ),
            rancher_version: verification.rancher_version.clone(),
            server,
        };
        self.ensure_dir()?;
        // Token first: a profile file never points at a token that is not there yet.
        write_atomic(
            &self.token_path(name),
            secrecy::ExposeSecret::expose_secret(token.secret()).as_bytes(),
        )?;
        let json = serde_json::to_vec_pretty(&data).expect("profile data always serialises");
        write_atomic(&self.data_path(name), &json)?;
        tracing::info!(profile = name, domain = %data.domain, token = %data.token_masked, "profile saved");
        Ok(Saved {
            profile: ProfileSummary {
                name: name.into(),
                data,
            },
            created: existing.is_none(),
            verification: Some(verification),
        })
    }

    /// Runs the connection test for a saved profile and records what it learnt (expiry, user, version).
    pub async fn check(&self, name: &str) -> Result<Verification> {
        let conn = self.connection(name)?;
        let v = conn.verify().await.map_err(Error::from)?;
        let mut p = self.show(name)?;
        p.data.verified_at = Some(Utc::now());
        p.data.token_expires_at = v.token_info.as_ref().and_then(|i| i.expires_at);
        p.data.token_cluster_id = v.token_info.as_ref().and_then(|i| i.cluster_id.clone());
        p.data.rancher_version = v.rancher_version.clone();
        let json = serde_json::to_vec_pretty(&p.data).expect("profile data always serialises");
        write_atomic(&self.data_path(name), &json)?;
        Ok(v)
    }

    /// The profile made current with [`ProfileStore::set_current`] (`rancherctl profiles use NAME`), when it still
    /// exists.
    pub fn current(&self) -> Result<Option<String>> {
        self.check_dir()?;
        let path = self.dir.join(CURRENT_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        let name = text.trim();
        if check_name(name).is_err() || !self.data_path(name).exists() {
            return Ok(None);
        }
        Ok(Some(name.to_string()))
    }

    /// Makes `name` (which must exist) the profile used when none is named, as kubectl's current context.
    pub fn set_current(&self, name: &str) -> Result<()> {
        if !self.exists(name)? {
            return Err(Error::ProfileNotFound {
                name: name.into(),
                dir: self.dir.clone(),
            });
        }
        self.ensure_dir()?;
        write_atomic(&self.dir.join(CURRENT_FILE), format!("{name}\n").as_bytes())
    }

    /// Deletes a profile (its file and its token file).
    pub fn delete(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let data = self.data_path(name);
        if !data.exists() {
            return Err(Error::ProfileNotFound {
                name: name.into(),
                dir: self.dir.clone(),
            });
        }
        // Data first: a crash in between leaves an orphan token file, never a profile without its token.
        fs::remove_file(&data).map_err(|e| Error::io("deleting", &data, e))?;
        let token = self.token_path(name);
        match fs::remove_file(&token) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("deleting", &token, e)),
        }
    }

    /// Refuses the directory when another user owns it or may write it (nothing when it does not exist yet).
    fn check_dir(&self) -> Result<()> {
        if self.dir.exists() {
            check_private(&self.dir, "profile directory", "700")?;
        }
        Ok(())
    }

    /// Creates the directory 0700, or checks the one that is there (it is never chmod-ed: it may not be ours).
    fn ensure_dir(&self) -> Result<()> {
        if self.dir.exists() {
            return check_private(&self.dir, "profile directory", "700");
        }
        crate::private::create_private_dir(&self.dir).map_err(|e| Error::io("creating", &self.dir, e))
    }
}

/// Refuses a profile file or directory another user owns or group or others may write.
fn check_private(path: &Path, what: &'static str, chmod: &str) -> Result<()> {
    match crate::private::exposure(path, false) {
        Ok(None) => Ok(()),
        Ok(Some(exposure)) => Err(Error::InsecureProfile {
            what,
            path: path.to_path_buf(),
            exposure,
            fix: exposure.fix(path, chmod),
        }),
        Err(e) => Err(Error::io("checking", path, e)),
    }
}

/// `s` on one line without control characters (escaped), at most 300 characters.
fn printable(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.chars().count() >= 300 {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Profile names: letters, digits, `-`, `_`, `.`; not starting with `.`; at most 64 characters.
fn check_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidProfileName {
            name: name.into(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if name.starts_with('.') {
        return bad("it starts with `.`");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("use letters, digits, `-`, `_` and `.` only");
    }
    Ok(())
}

/// Reads a token file (as `--token-file` does): refused when group or others may read it; one trailing line
/// ending is dropped.
pub fn read_token_file(path: &Path) -> Result<BearerToken> {
    let file = fs::File::open(path).map_err(|e| Error::io("reading token file", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file
            .metadata()
            .map_err(|e| Error::io("reading token file", path, e))?
            .permissions()
            .mode()
            & 0o777;
        let who = match (mode & 0o040 != 0, mode & 0o004 != 0) {
            (true, true) => Some("group and others"),
            (true, false) => Some("its group"),
            (false, true) => Some("others"),
            _ => None,
        };
        if let Some(who) = who {
            return Err(Error::InsecureTokenFile {
                path: path.to_path_buf(),
                mode,
                who,
            });
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut &file, &mut text).map_err(|e| Error::io("reading token file", path, e))?;
    BearerToken::parse_input(&text)
}

/// Writes `bytes` to `path` atomically: a temporary file (mode 0600) in the same directory,
/// fsync, rename over the target, fsync the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("creating a temporary file in", dir, e))?;
    #[cfg(unix)]
    {
        // Every profile file is the owner's only (tempfile creates 0600; say so explicitly).
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("securing", tmp.path(), e))?;
    }
    tmp.write_all(bytes).map_err(|e| Error::io("writing", tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("syncing", tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io("replacing", path, e.error))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
