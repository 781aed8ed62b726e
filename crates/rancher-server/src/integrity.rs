//! The service's anchors: the last audit head it published, kept outside the store (in memory, and in an
//! owner-only file when configured), and checked against the store at start and on every job run.
//!
//! Whoever can write the store can rewrite its history and re-chain every entry and the head after it; the chain
//! is then consistent in itself and `verify` cannot tell. The anchor can: the entry at the anchored position must
//! still carry the anchored hash, and the chain from there must reach the store's head. Only the entries after the
//! anchor are read, so the check is cheap enough for every job run. While it fails, the runners' gate is closed:
//! decisions are still recorded, nothing is claimed, taken over or run.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rancher_approval::{AuditHead, Store};
use rancher_workflows::runner::ExecutionGate;

use crate::error::{Error, Result};

/// The largest anchor file read (it holds one small JSON object).
const MAX_ANCHOR_BYTES: u64 = 4096;

/// The anchor and the gate it controls.
#[derive(Debug)]
pub(crate) struct Integrity {
    file: Option<PathBuf>,
    anchor: Mutex<Option<AuditHead>>,
    pub(crate) gate: Arc<ExecutionGate>,
}

impl Integrity {
    /// Loads the anchor from `file` when it exists. A file others may read or write, another owner's, or one that
    /// is not a small regular file holding an audit head is refused: the service would check the store against an
    /// anchor someone else chose.
    pub(crate) fn load(file: Option<PathBuf>) -> Result<Integrity> {
        let anchor = match &file {
            Some(path) => read_anchor(path)?,
            None => None,
        };
        if let (Some(path), Some(a)) = (&file, &anchor) {
            tracing::info!(anchor = %format!("{}:{}", a.seq, a.hash), file = %path.display(), "audit anchor loaded");
        }
        Ok(Integrity {
            file,
            anchor: Mutex::new(anchor),
            gate: Arc::new(ExecutionGate::default()),
        })
    }

    /// An anchor kept in memory only, starting from the whole log.
    pub(crate) fn in_memory() -> Integrity {
        Integrity {
            file: None,
            anchor: Mutex::new(None),
            gate: Arc::new(ExecutionGate::default()),
        }
    }

    /// Whether the store verified from the anchor at the last check.
    pub(crate) fn ok(&self) -> bool {
        self.gate.closed().is_none()
    }

    /// What the last check found wrong, if anything.
    pub(crate) fn problem(&self) -> Option<String> {
        self.gate.closed()
    }

    /// Checks the store from the anchor (the whole log when there is none yet). Verified: the gate opens and the
    /// store's head becomes the anchor, written to the file and logged when it moved. Not verified: the gate closes
    /// (and the anchor stays, so every later check fails the same way until the store is restored).
    pub(crate) async fn check(&self, store: &Arc<dyn Store>) {
        let anchor = self.anchor.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let from = anchor.clone().unwrap_or_else(AuditHead::genesis);
        match store.verify_audit_from(&from).await {
            Ok(head) => {
                if let Some(was) = self.gate.closed() {
                    tracing::warn!(was = %was, "the audit log verifies from the published head again; executions resume");
                }
                self.gate.open();
                if anchor.as_ref() != Some(&head) {
                    tracing::info!(audit_head = %format!("{}:{}", head.seq, head.hash), "audit head");
                    if let Some(path) = &self.file {
                        let (path, h) = (path.clone(), head.clone());
                        match tokio::task::spawn_blocking(move || write_anchor(&path, &h)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::warn!("could not save the audit anchor: {e}"),
                            Err(e) => tracing::warn!("could not save the audit anchor: {e}"),
                        }
                    }
                    *self.anchor.lock().unwrap_or_else(|p| p.into_inner()) = Some(head);
                }
            }
            Err(rancher_approval::Error::AuditBroken { seq, problem }) => {
                let why = format!(
                    "entry {seq}: {problem} (checked from the published head {}:{})",
                    from.seq, from.hash
                );
                if self.gate.closed().as_deref() != Some(why.as_str()) {
                    tracing::error!(
                        "the audit log does not verify from the head this service published; executions stop until the store is restored: {why}"
                    );
                }
                self.gate.close(why);
            }
            // The store is unreachable: nothing is known to be wrong; the gate stays as it is.
            Err(e) => tracing::warn!("could not check the audit log against the published head: {e}"),
        }
    }
}

fn read_anchor(path: &Path) -> Result<Option<AuditHead>> {
    let bad = |problem: String| Error::Config(format!("the audit anchor file {}: {problem}", path.display()));
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("cannot be read: {e}"))),
    };
    if !meta.file_type().is_file() {
        return Err(bad(
            "is not a regular file (a symbolic link or a directory); remove it".into()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "others may read or write it (mode {mode:o}); check who changed it, then `chmod 600` it"
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(bad(format!(
            "it belongs to user id {}, not to this service's user ({me})",
            meta.uid()
        )));
    }
    if meta.len() > MAX_ANCHOR_BYTES {
        return Err(bad(format!("it is {} bytes, more than an anchor holds", meta.len())));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let head: AuditHead = serde_json::from_str(&text).map_err(|e| bad(format!("does not hold an audit head ({e})")))?;
    if head.hash.len() != 64 || !head.hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad("its hash is not 64 hex digits".into()));
    }
    Ok(Some(head))
}

/// Replaces the anchor file atomically: a new owner-only file beside it, synced, renamed over it, and the
/// directory synced.
fn write_anchor(path: &Path, head: &AuditHead) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("audit-anchor"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)?;
    f.write_all(serde_json::to_string(head).expect("a head serialises").as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchor_file_is_written_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-anchor.json");
        assert!(read_anchor(&path).unwrap().is_none(), "no file yet: no anchor");
        let head = AuditHead {
            seq: 7,
            hash: "ab".repeat(32),
        };
        write_anchor(&path, &head).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_anchor(&path).unwrap(), Some(head.clone()));
        write_anchor(&path, &AuditHead { seq: 8, ..head }).unwrap();
        assert_eq!(read_anchor(&path).unwrap().unwrap().seq, 8);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file is left"
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_anchor(&path).unwrap_err().to_string();
        assert!(err.contains("mode 644") && err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "{\"seq\": 1, \"hash\": \"nope\"}").unwrap();
        assert!(read_anchor(&path).unwrap_err().to_string().contains("64 hex digits"));
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_anchor(&link)
            .unwrap_err()
            .to_string()
            .contains("not a regular file"));
    }
}
