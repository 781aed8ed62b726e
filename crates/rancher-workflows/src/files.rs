//! Reading a file that someone named in an input or on the command line, the one way the project does it.
//!
//! A name typed by a person may point anywhere: at a symlink planted in a shared directory, at a pipe that never
//! answers, at `/dev/zero`, at a directory, or at a file far larger than any settings file. [`read_given_file`]
//! therefore opens without following a final symlink (`O_NOFOLLOW`) and without blocking on a FIFO
//! (`O_NONBLOCK`), accepts only a regular file, reads at most [`MAX_GIVEN_FILE`] bytes, and does all of it on a
//! blocking thread under a timeout, so an async worker never waits on a file.
//!
//! The approvals service never reads a file a caller names (see [`refuse_host_paths`]): callers send contents.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::WorkflowDef;
use crate::error::{Error, Result};

/// The most bytes read from a given file (settings, passwords and codes are far smaller).
pub const MAX_GIVEN_FILE: u64 = 64 * 1024;

/// How long reading a given file may take before it is abandoned.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A file read by [`read_given_file`].
pub struct GivenFile {
    /// The bytes (at most [`MAX_GIVEN_FILE`]).
    pub bytes: Vec<u8>,
    /// The permission bits (`0o777` part of the mode) of the file that was read, from the open file itself.
    pub mode: u32,
}

impl std::fmt::Debug for GivenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The contents may be a secret: never shown.
        f.debug_struct("GivenFile")
            .field("len", &self.bytes.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// Reads `path` as [`read_given_file`] does, on the calling thread (which may block up to the file system's
/// answer; use [`read_given_file`] from async code). The error says what is wrong and what to give instead.
pub fn read_given_file_blocking(path: &Path, cap: u64) -> std::result::Result<GivenFile, String> {
    use rustix::fs::{FileType, Mode, OFlags};
    let shown = path.display();
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
        rustix::io::Errno::LOOP => {
            format!("`{shown}` is a symbolic link; give the file it points to (links are not followed)")
        }
        rustix::io::Errno::NOENT => format!("`{shown}` does not exist"),
        rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => format!("`{shown}` cannot be read: permission denied"),
        other => format!("cannot open `{shown}`: {}", std::io::Error::from(other)),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("cannot inspect `{shown}`: {}", std::io::Error::from(e)))?;
    let kind = FileType::from_raw_mode(st.st_mode);
    if kind != FileType::RegularFile {
        let what = match kind {
            FileType::Directory => "a directory",
            FileType::Fifo => "a pipe (FIFO)",
            FileType::CharacterDevice => "a character device",
            FileType::BlockDevice => "a block device",
            FileType::Socket => "a socket",
            FileType::Symlink => "a symbolic link",
            _ => "not a regular file",
        };
        return Err(format!("`{shown}` is {what}; give a regular file"));
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    if size > cap {
        return Err(format!(
            "`{shown}` holds {size} bytes, more than the {cap} a settings, password or code file may hold"
        ));
    }
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    (&mut file)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    if bytes.len() as u64 > cap {
        return Err(format!("`{shown}` grew past {cap} bytes while it was read"));
    }
    Ok(GivenFile {
        bytes,
        mode: st.st_mode & 0o777,
    })
}

/// Reads a file someone named: a regular file only (a final symlink is not followed, a FIFO does not block),
/// at most `cap` bytes, on a blocking thread, abandoned after `timeout`.
pub async fn read_given_file(path: &Path, cap: u64, timeout: Duration) -> std::result::Result<GivenFile, String> {
    let owned: PathBuf = path.to_path_buf();
    let job = tokio::task::spawn_blocking(move || read_given_file_blocking(&owned, cap));
    match tokio::time::timeout(timeout, job).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => Err(format!("reading `{}` failed: {e}", path.display())),
        Err(_) => Err(format!(
            "reading `{}` took longer than {} s; give a local regular file",
            path.display(),
            timeout.as_secs()
        )),
    }
}

/// Reads a file named by input `input_name` of `def` as text ([`read_given_file`], with the default cap and
/// timeout). When `private`, the file must be readable by its owner only.
pub(crate) async fn read_input_file(def: &WorkflowDef, input_name: &str, path: &str, private: bool) -> Result<String> {
    let bad = |message: String| Error::Input {
        workflow: def.id.into(),
        input: input_name.into(),
        message,
    };
    let read = read_given_file(Path::new(path), MAX_GIVEN_FILE, READ_TIMEOUT)
        .await
        .map_err(bad)?;
    if private && read.mode & 0o077 != 0 {
        return Err(bad(format!(
            "`{path}` holds a secret but others may read it (mode {:o}); run `chmod 600 {path}`",
            read.mode
        )));
    }
    String::from_utf8(read.bytes).map_err(|_| bad(format!("`{path}` is not UTF-8 text")))
}

/// Whether input `name` is one that names a file (`config`, or any `*-file`).
fn names_a_file(name: &str) -> bool {
    name == "config" || name.ends_with("-file")
}

/// The approvals service never reads a file on its own host for a caller: an input that names a file (`config`
/// given as text, any `*-file`) is refused, naming what to send instead. Local runs (rancherctl on the caller's own
/// machine) still take paths.
pub fn refuse_host_paths(def: &WorkflowDef, inputs: &crate::workflow::Inputs) -> Result<()> {
    let Some(map) = inputs.as_object() else {
        return Ok(());
    };
    for (name, value) in map {
        if !names_a_file(name) || value.is_null() || value.is_object() {
            continue;
        }
        let instead = match name.as_str() {
            "config" => "send the provider settings inline as a JSON object (`\"config\": {\"servers\": [...], ...}`)".to_string(),
            "test-password-file" => "send the password inline as `test-password`; the service holds it in memory for this one request and never stores it".to_string(),
            "test-code-file" => "send the code inline as `test-code`; the service holds it in memory for this one request and never stores it".to_string(),
            other => format!("send the contents inline as `{}`", other.trim_end_matches("-file")),
        };
        return Err(Error::Input {
            workflow: def.id.into(),
            input: name.clone(),
            message: format!(
                "the approvals service never reads files on its own host; {instead}. `rancherctl --server URL ...` reads the file on your machine and sends its contents"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn blocking(p: &Path) -> std::result::Result<GivenFile, String> {
        read_given_file_blocking(p, MAX_GIVEN_FILE)
    }

    #[test]
    fn a_regular_file_is_read_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settings.json");
        std::fs::write(&p, "{\"servers\": [\"ad\"]}").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let f = blocking(&p).unwrap();
        assert_eq!(f.bytes, b"{\"servers\": [\"ad\"]}");
        assert_eq!(f.mode, 0o600);
        assert!(!format!("{f:?}").contains("servers"), "Debug never shows the contents");
    }

    #[test]
    fn n1_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, "s3cret").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = blocking(&link).unwrap_err();
        assert!(e.contains("symbolic link") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn n1_a_directory_and_devices_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let e = blocking(dir.path()).unwrap_err();
        assert!(e.contains("is a directory; give a regular file"), "{e}");
        let e = blocking(Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("character device"), "{e}");
        let e = blocking(&dir.path().join("missing")).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn n1_a_file_over_the_cap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'x'; (MAX_GIVEN_FILE + 1) as usize]).unwrap();
        let e = blocking(&p).unwrap_err();
        assert!(e.contains("more than the 65536"), "{e}");
    }

    #[tokio::test]
    async fn n1_a_fifo_nobody_writes_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let started = std::time::Instant::now();
        let e = read_given_file(&p, MAX_GIVEN_FILE, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(e.contains("a pipe (FIFO); give a regular file"), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "answered without waiting for a writer"
        );
    }

    #[test]
    fn n1_inputs_naming_files_are_refused_by_the_service_with_the_fix() {
        let def = crate::registry::find("access-control-enable").unwrap();
        let e = refuse_host_paths(
            def,
            &serde_json::json!({"provider": "openldap", "config": "/etc/hostname"}).into(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("never reads files on its own host") && e.contains("inline as a JSON object"),
            "{e}"
        );
        let e = refuse_host_paths(def, &serde_json::json!({"test-password-file": "./pw"}).into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`test-password`"), "{e}");
        assert!(refuse_host_paths(
            def,
            &serde_json::json!({"provider": "openldap", "config": {"servers": ["ldap"]}, "test-password": "x"}).into()
        )
        .is_ok());
    }
}
