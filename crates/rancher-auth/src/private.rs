//! Whether a file or directory is private to the current user: owned by them (or by root, where that is fine)
//! and writable by nobody else. Profiles, CA bundles and the approval store's directory are refused otherwise:
//! whoever can write them chooses where the token goes or what is trusted.

use std::fmt;
use std::path::Path;

/// Why a file or directory is not private.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure {
    /// Another user owns it.
    Owner {
        /// Its owner's uid.
        uid: u32,
        /// The current (effective) uid.
        me: u32,
    },
    /// Group or others may write it.
    Writable {
        /// "its group", "others" or "group and others".
        who: &'static str,
        /// Its permission bits (with the sticky bit, e.g. `1777` for /tmp).
        mode: u32,
    },
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exposure::Owner { uid, me } => write!(f, "is owned by uid {uid}, not by you (uid {me})"),
            Exposure::Writable { who, mode } => write!(f, "is writable by {who} (mode {mode:o})"),
        }
    }
}

impl Exposure {
    /// The command that fixes it: `chown` for a foreign owner (after checking what it holds), else
    /// `chmod <mode> <path>`.
    pub fn fix(&self, path: &Path, chmod: &str) -> String {
        match self {
            Exposure::Owner { me, .. } => format!(
                "check what it holds, then `chown {me} {}` (or remove it)",
                path.display()
            ),
            Exposure::Writable { .. } => format!("`chmod {chmod} {}`", path.display()),
        }
    }
}

/// What makes `path` (followed through symlinks) not private to the current user, or `None` when it is. A file
/// owned by root passes too when `root_may_own` (a system CA bundle). Always `None` off Unix.
pub fn exposure(path: &Path, root_may_own: bool) -> std::io::Result<Option<Exposure>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)?;
        let me = rustix::process::geteuid().as_raw();
        let uid = meta.uid();
        if uid != me && !(root_may_own && uid == 0) {
            return Ok(Some(Exposure::Owner { uid, me }));
        }
        let mode = meta.mode() & 0o7777;
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "its group",
            (false, true) => "others",
            (false, false) => return Ok(None),
        };
        Ok(Some(Exposure::Writable { who, mode }))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, root_may_own);
        Ok(None)
    }
}

/// Creates `dir` (and its missing parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}
