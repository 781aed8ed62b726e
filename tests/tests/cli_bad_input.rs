//! `rancherctl` given bad input: malformed flags, truncated or wrong-typed profile files, token files others can
//! read, and directories where files are expected. Each run ends with the right exit code and one clear `error:`
//! line (a `fix:` line may follow), prints nothing on stdout, and changes no file (every byte and mode of the
//! config and state directories is compared before and after).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rancher_access_tests::cli::{command, Run};

const TOKEN: &str = "token-abcde:badinputbadinputbadinputbadinputbadinputbadinputbadin";
const SECRET: &str = "badinputbadinputbadinput";

/// Every file under `dir`: its bytes and its mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        let mode = mode_of(&meta);
        if meta.is_dir() {
            out.insert(path.clone(), (Vec::new(), mode));
            out.extend(snapshot(&path));
        } else {
            out.insert(path.clone(), (std::fs::read(&path).expect("read"), mode));
        }
    }
    out
}

#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode()
}

#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> u32 {
    0
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let _ = (path, mode);
}

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let env = Env {
            tmp: tempfile::tempdir().expect("temp dir"),
        };
        std::fs::create_dir_all(env.config()).expect("config dir");
        std::fs::create_dir_all(env.state()).expect("state dir");
        set_mode(&env.config(), 0o700);
        set_mode(&env.state(), 0o700);
        env
    }

    fn config(&self) -> PathBuf {
        self.tmp.path().join("config")
    }

    fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    /// Runs with the config and state dirs (plus `extra`), and checks that no file changed.
    fn run(&self, args: &[&str], extra: &[(&str, String)]) -> Run {
        let before = snapshot(self.tmp.path());
        let mut env = vec![
            ("RANCHERCTL_CONFIG_DIR", self.config().display().to_string()),
            ("RANCHERCTL_STATE_DIR", self.state().display().to_string()),
            // Nothing listens here: no test reaches a server (none should be contacted at all).
            ("RANCHER_DOMAIN", "127.0.0.1:1".to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        let run = Run::from_output(command(args, &env).output().expect("rancherctl runs"));
        let after = snapshot(self.tmp.path());
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "{args:?}: files were added or removed"
        );
        for (path, (bytes, mode)) in &before {
            let (bytes2, mode2) = &after[path];
            assert!(
                bytes == bytes2 && mode == mode2,
                "{args:?}: {} was changed",
                path.display()
            );
        }
        assert!(
            !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
            "{args:?}: the token leaked"
        );
        run
    }
}

/// Exit `code`, nothing on stdout, and one `error:` line containing every needle (then only `fix:` lines).
#[track_caller]
fn refused(run: &Run, code: i32, needles: &[&str]) {
    run.expect_code(code);
    assert!(run.stdout.is_empty(), "stdout must stay empty:\n{}", run.stdout);
    let mut lines = run.stderr.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("error: "),
        "the first line names the error:\n{}",
        run.stderr
    );
    for needle in needles {
        assert!(
            first.contains(needle),
            "`{needle}` missing from the error line:\n{}",
            run.stderr
        );
    }
    for rest in lines {
        assert!(
            rest.starts_with("fix: "),
            "one error line, then the fix only:\n{}",
            run.stderr
        );
    }
}

/// A usage error (clap): exit 2, nothing on stdout, the first line names the mistake.
#[track_caller]
fn usage(run: &Run, needle: &str) {
    run.expect_code(2);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains(needle),
        "the first line names `{needle}`:\n{}",
        run.stderr
    );
}

#[test]
fn malformed_flags_are_usage_errors() {
    let env = Env::new();
    usage(
        &env.run(&["--no-such-flag", "workflows", "list"], &[]),
        "--no-such-flag",
    );
    usage(&env.run(&["workflows", "list", "-o"], &[]), "--output");
    usage(&env.run(&["workflows", "list", "-o", "xml"], &[]), "xml");
    usage(&env.run(&["run"], &[]), "required");
    usage(&env.run(&["run", "list-users", "--input"], &[]), "--input");
    usage(&env.run(&["check", "--domain"], &[]), "--domain");
    usage(&env.run(&["check", "--token", TOKEN], &[]), "--token");
    usage(&env.run(&["approvals", "frobnicate"], &[]), "frobnicate");
    usage(
        &env.run(&["check", "--token-stdin", "--token-file", "/nonexistent"], &[]),
        "cannot be used with",
    );
    // Well-formed flags with bad values: failures that name the value.
    refused(
        &env.run(
            &["check", "--domain", "https://rancher.example.com/dashboard"],
            &[("RANCHER_TOKEN", TOKEN.into())],
        ),
        1,
        &["a full URL was pasted"],
    );
    refused(
        &env.run(
            &["check", "--domain", "rancher.example.com:99999"],
            &[("RANCHER_TOKEN", TOKEN.into())],
        ),
        1,
        &["99999"],
    );
    refused(&env.run(&["check", "--profile", "../escape"], &[]), 1, &["../escape"]);
    refused(
        &env.run(&["check"], &[("RANCHER_TOKEN", format!("Bearer {TOKEN}"))]),
        1,
        &["Bearer"],
    );
}

fn write_profile(env: &Env, name: &str, json: &str) {
    std::fs::write(env.config().join(format!("{name}.json")), json).expect("profile");
    let token = env.config().join(format!("{name}.token"));
    std::fs::write(&token, TOKEN).expect("token");
    set_mode(&token, 0o600);
}

#[test]
fn truncated_or_wrong_typed_profiles_are_named_and_left_alone() {
    let env = Env::new();
    let good = r#"{"version":1,"domain":"rancher.example.com","access_key":"token-abcde","token_masked":"****badi"}"#;
    write_profile(&env, "truncated", &good[..good.len() / 2]);
    write_profile(
        &env,
        "typed",
        r#"{"version":"one","domain":"rancher.example.com","access_key":"token-abcde","token_masked":"****badi"}"#,
    );
    write_profile(&env, "array", "[1, 2, 3]");
    write_profile(&env, "empty", "");
    for (name, says) in [
        ("truncated", "truncated"),
        ("typed", "invalid type"),
        ("array", "invalid type"),
        ("empty", "truncated"),
    ] {
        let file = format!("{name}.json");
        refused(&env.run(&["check", "--profile", name], &[]), 1, &[&file, says]);
        refused(&env.run(&["profiles", "show", name], &[]), 1, &[&file, says]);
        refused(&env.run(&["run", "list-users", "--profile", name], &[]), 1, &[&file]);
        // Saving over a broken profile is refused too (the test would pass, the file would be lost).
        refused(
            &env.run(
                &["connect", "--profile", name, "--domain", "rancher.example.com"],
                &[("RANCHER_TOKEN", TOKEN.into())],
            ),
            1,
            &[&file],
        );
    }
    // Listing names the first broken file instead of skipping it silently.
    refused(&env.run(&["profiles", "list"], &[]), 1, &[".json"]);
}

#[test]
fn token_files_others_can_read_are_refused() {
    let env = Env::new();
    let loose = env.tmp.path().join("loose-token");
    std::fs::write(&loose, TOKEN).expect("token file");
    for mode in [0o644, 0o640, 0o604] {
        set_mode(&loose, mode);
        let path = loose.display().to_string();
        refused(&env.run(&["check", "--token-file", &path], &[]), 1, &["loose-token"]);
        refused(
            &env.run(&["connect", "--profile", "new", "--token-file", &path], &[]),
            1,
            &["loose-token"],
        );
        assert!(!env.config().join("new.json").exists(), "no profile was made");
    }
    // A stored profile whose token file became readable by others.
    write_profile(
        &env,
        "prod",
        r#"{"version":1,"domain":"rancher.example.com","access_key":"token-abcde","token_masked":"****badi"}"#,
    );
    set_mode(&env.config().join("prod.token"), 0o644);
    refused(&env.run(&["check", "--profile", "prod"], &[]), 1, &["prod.token"]);
    refused(
        &env.run(&["run", "list-users", "--profile", "prod"], &[]),
        1,
        &["prod.token"],
    );
}

#[test]
fn directories_where_files_are_expected() {
    let env = Env::new();
    let dir = env.tmp.path().join("a-directory");
    std::fs::create_dir_all(&dir).expect("dir");
    let d = dir.display().to_string();
    let token = [("RANCHER_TOKEN", TOKEN.to_string())];
    refused(&env.run(&["check", "--token-file", &d], &[]), 1, &["a-directory"]);
    refused(&env.run(&["check", "--ca-cert", &d], &token), 1, &["a-directory"]);
    refused(
        &env.run(&["api", "rk.globalrolebindings.create", "--body", &d], &token),
        1,
        &["a-directory"],
    );
    // A profile file that is a directory.
    std::fs::create_dir_all(env.config().join("odd.json")).expect("dir");
    refused(&env.run(&["check", "--profile", "odd"], &[]), 1, &["odd.json"]);
    // The approval store's file is a directory.
    std::fs::create_dir_all(env.state().join("approvals.db")).expect("dir");
    refused(&env.run(&["approvals", "list"], &[]), 1, &["approvals.db"]);
    // The state directory is a file.
    let file = env.tmp.path().join("state-file");
    std::fs::write(&file, "not a directory").expect("file");
    refused(
        &env.run(
            &["approvals", "list"],
            &[("RANCHERCTL_STATE_DIR", file.display().to_string())],
        ),
        1,
        &["state-file"],
    );
}
