//! Security review 2026-12, the local-machine items, end to end through the real `rancherctl` against rancher-sim:
//! a profile is used whole (item 8), profile files and directories (13), the state directory (14), CA files (15),
//! core dumps and the simulator's output files (18).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use rancher_access_tests::cli::{assert_no_secrets, command, Run, SimCli};
use rancher_access_tests::process::SpawnKilledOnDrop;
use rancher_sim::RancherVersion;

const NOBODY: u32 = 65534;

/// The uid this test runs as (the owner of its own /proc entry).
fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").expect("/proc").uid()
}

/// Gives `path` to `uid` when this test runs as root (only root can); `false` (the step is skipped, and said so)
/// otherwise.
fn give_to(path: &Path, uid: u32) -> bool {
    if my_uid() != 0 {
        eprintln!("not root: the foreign-owner step for {} is skipped", path.display());
        return false;
    }
    std::os::unix::fs::chown(path, Some(uid), None).expect("chown");
    true
}

struct Env {
    cli: SimCli,
    /// A loopback port that accepts nothing on its own: a stand-in for "another server". Any connection to it
    /// means a token could have gone there.
    decoy: TcpListener,
}

impl Env {
    fn start() -> Env {
        let decoy = TcpListener::bind("127.0.0.1:0").expect("decoy listener");
        decoy.set_nonblocking(true).expect("non-blocking");
        Env {
            cli: SimCli::start(RancherVersion::V2_13, 3),
            decoy,
        }
    }

    fn decoy_domain(&self) -> String {
        self.decoy.local_addr().unwrap().to_string()
    }

    #[track_caller]
    fn assert_decoy_untouched(&self) {
        assert!(self.decoy.accept().is_err(), "something connected to the other domain");
    }

    fn config(&self) -> PathBuf {
        self.cli.tmp.path().join("config")
    }

    /// Runs with the state and config dirs plus `extra` (no connection settings unless given).
    fn run(&self, args: &[&str], extra: &[(&'static str, String)]) -> Run {
        let mut env = self.cli.base_env();
        env.extend(extra.iter().cloned());
        let run = Run::from_output(command(args, &env).output().expect("rancherctl runs"));
        let secrets = self.cli.token_secrets();
        assert_no_secrets(&run, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
        run
    }

    /// A token file (0600) holding `token`.
    fn token_file(&self, name: &str, token: &str) -> String {
        let path = self.cli.tmp.path().join(name);
        std::fs::write(&path, token).unwrap();
        set_mode(&path, 0o600);
        path.display().to_string()
    }

    /// Saves profile `name` for the simulator with the admin token and `ca`.
    fn connect(&self, name: &str, ca: &Path) {
        let tf = self.token_file(&format!("{name}-token"), &self.cli.sim.tokens().admin);
        self.run(
            &[
                "connect",
                "--profile",
                name,
                "--domain",
                &self.cli.sim.domain(),
                "--token-file",
                &tf,
                "--ca-cert",
                &ca.display().to_string(),
            ],
            &[],
        )
        .expect_code(0);
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

/// Exit 1 and an error line holding every needle.
#[track_caller]
fn refused(run: &Run, needles: &[&str]) {
    run.expect_code(1);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{}", run.stderr);
    for n in needles {
        assert!(run.stderr.contains(n), "`{n}` missing:\n{}", run.stderr);
    }
}

#[test]
fn a_profile_is_used_whole_its_token_goes_only_to_its_own_domain() {
    let env = Env::start();
    env.connect("prod", &env.cli.ca);
    let sim = &env.cli.sim;
    let ca = env.cli.ca.display().to_string();
    let decoy = env.decoy_domain();

    // The review's reproduction: a profile's token with a domain from the environment.
    let mixed = env.run(&["--profile", "prod", "check"], &[("RANCHER_DOMAIN", decoy.clone())]);
    refused(
        &mixed,
        &[
            "profile `prod` was chosen by --profile",
            "the domain comes from RANCHER_DOMAIN",
            "unset RANCHER_DOMAIN",
        ],
    );
    let mixed = env.run(
        &[
            "--profile",
            "prod",
            "approvals",
            "approve",
            "req-01m8t2anr5exra93cg8jtn8frv",
        ],
        &[("RANCHER_DOMAIN", decoy.clone())],
    );
    refused(&mixed, &["RANCHER_DOMAIN"]);
    let mixed = env.run(&["--profile", "prod", "--domain", &decoy, "run", "list-users"], &[]);
    refused(&mixed, &["the domain comes from --domain", "drop --domain"]);
    env.assert_decoy_untouched();

    // An explicit profile is never silently ignored when domain and token both come from the environment.
    let full = [
        ("RANCHER_DOMAIN", sim.domain()),
        ("RANCHER_TOKEN", sim.tokens().approver.clone()),
        ("RANCHER_CA_CERT", ca.clone()),
    ];
    refused(
        &env.run(&["--profile", "prod", "check"], &full),
        &[
            "the token from RANCHER_TOKEN",
            "the CA from RANCHER_CA_CERT",
            "drop --profile",
        ],
    );
    let mut by_env = full.to_vec();
    by_env.push(("RANCHER_PROFILE", "prod".into()));
    refused(
        &env.run(&["check"], &by_env),
        &["chosen by RANCHER_PROFILE", "unset RANCHER_PROFILE"],
    );
    refused(
        &env.run(&["--profile", "nope", "check"], &full),
        &["no profile named `nope`"],
    );

    // The default profile, used implicitly: a token or a domain or a CA from elsewhere is refused too.
    env.connect("default", &env.cli.ca);
    refused(
        &env.run(&["check"], &[("RANCHER_TOKEN", sim.tokens().approver.clone())]),
        &[
            "profile `default` is used by default",
            "the token comes from RANCHER_TOKEN",
        ],
    );
    refused(
        &env.run(&["run", "list-users"], &[("RANCHER_DOMAIN", decoy.clone())]),
        &["the domain comes from RANCHER_DOMAIN"],
    );
    refused(
        &env.run(&["check"], &[("RANCHER_CA_CERT", ca.clone())]),
        &["the CA comes from RANCHER_CA_CERT"],
    );
    env.assert_decoy_untouched();

    // Moving a profile to another domain needs its token again.
    refused(
        &env.run(&["connect", "--profile", "prod", "--domain", &decoy], &[]),
        &["needs its token again"],
    );
    env.assert_decoy_untouched();

    // Used whole, each way works.
    env.run(&["--profile", "prod", "check"], &[]).expect_code(0);
    env.run(&["check"], &[]).expect_code(0);
    env.run(&["check"], &full).expect_code(0);
}

#[test]
fn profile_files_and_directories_others_control_are_refused() {
    let env = Env::start();
    env.connect("prod", &env.cli.ca);
    let dir = env.config();
    let (json, token) = (dir.join("prod.json"), dir.join("prod.token"));
    let check = || env.run(&["--profile", "prod", "check"], &[]);
    check().expect_code(0);

    set_mode(&dir, 0o777);
    refused(
        &check(),
        &[
            "profile directory",
            "writable by group and others",
            &format!("chmod 700 {}", dir.display()),
        ],
    );
    refused(&env.run(&["profiles", "list"], &[]), &["chmod 700"]);
    assert_eq!(
        mode_of(&dir),
        0o777,
        "a directory is never chmod-ed behind the user's back"
    );
    set_mode(&dir, 0o700);

    set_mode(&json, 0o666);
    refused(&check(), &["profile file", &format!("chmod 600 {}", json.display())]);
    set_mode(&json, 0o600);
    if give_to(&json, NOBODY) {
        refused(
            &check(),
            &["owned by uid 65534", &format!("chown 0 {}", json.display())],
        );
        give_to(&json, 0);
    }

    if give_to(&token, NOBODY) {
        refused(&check(), &["profile token file", "owned by uid 65534"]);
        give_to(&token, 0);
    }
    set_mode(&token, 0o620);
    refused(&check(), &["profile token file", "writable by its group"]);
    set_mode(&token, 0o600);

    if give_to(&dir, NOBODY) {
        refused(&check(), &["profile directory", "owned by uid 65534"]);
        give_to(&dir, 0);
    }
    check().expect_code(0);
}

#[test]
fn the_state_directory_is_checked_never_chmod_ed() {
    let env = Env::start();
    let shared = env.cli.tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    set_mode(&shared, 0o1777);
    let with_state = |dir: &Path, args: &[&str]| env.run(args, &[("RANCHERCTL_STATE_DIR", dir.display().to_string())]);
    refused(
        &with_state(&shared, &["approvals", "list"]),
        &[
            "state directory",
            "writable by group and others (mode 1777)",
            "--state-dir",
        ],
    );
    assert_eq!(mode_of(&shared), 0o1777, "a shared directory keeps its mode");
    assert!(!shared.join("approvals.db").exists(), "no store is created there");

    let foreign = env.cli.tmp.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    set_mode(&foreign, 0o700);
    if give_to(&foreign, NOBODY) {
        refused(
            &with_state(&foreign, &["approvals", "audit"]),
            &["state directory", "owned by uid 65534"],
        );
        assert!(!foreign.join("approvals.db").exists());
    }

    // One made here is private.
    let fresh = env.cli.tmp.path().join("a/b/state");
    with_state(&fresh, &["approvals", "list"]).expect_code(0);
    assert_eq!(mode_of(&fresh), 0o700);
    // A private one of ours, 0755, is fine as it is.
    let mine = env.cli.tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    set_mode(&mine, 0o755);
    with_state(&mine, &["approvals", "list"]).expect_code(0);
    assert_eq!(mode_of(&mine), 0o755);
}

#[test]
fn ca_files_others_can_write_are_refused_and_profiles_keep_the_pem() {
    let env = Env::start();
    let sim = &env.cli.sim;
    let ca = env.cli.tmp.path().join("ca-copy.pem");
    std::fs::copy(&env.cli.ca, &ca).unwrap();
    let flags = |ca: &Path| {
        vec![
            ("RANCHER_DOMAIN", sim.domain()),
            ("RANCHER_TOKEN", sim.tokens().admin.clone()),
            ("RANCHER_CA_CERT", ca.display().to_string()),
        ]
    };
    env.run(&["check"], &flags(&ca)).expect_code(0);
    set_mode(&ca, 0o666);
    refused(
        &env.run(&["check"], &flags(&ca)),
        &[
            "CA bundle",
            "writable by group and others",
            &format!("chmod go-w {}", ca.display()),
        ],
    );
    set_mode(&ca, 0o644);
    if give_to(&ca, NOBODY) {
        refused(&env.run(&["check"], &flags(&ca)), &["CA bundle", "owned by uid 65534"]);
        give_to(&ca, 0);
    }

    // connect stores the PEM itself: the file may change or go afterwards.
    env.connect("prod", &ca);
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.config().join("prod.json")).unwrap()).unwrap();
    assert!(
        stored["ca"]["pem"]
            .as_str()
            .is_some_and(|p| p.contains("BEGIN CERTIFICATE")),
        "{stored}"
    );
    std::fs::write(&ca, "not a certificate").unwrap();
    env.run(&["--profile", "prod", "check"], &[]).expect_code(0);
    std::fs::remove_file(&ca).unwrap();
    env.run(&["--profile", "prod", "check"], &[]).expect_code(0);

    // A profile saved earlier with a CA path still works, and its file is checked the same way.
    let old_ca = env.cli.tmp.path().join("old-ca.pem");
    std::fs::copy(&env.cli.ca, &old_ca).unwrap();
    set_mode(&old_ca, 0o644);
    let mut data = stored.clone();
    data["ca"] = serde_json::json!({"path": old_ca});
    std::fs::write(env.config().join("old.json"), data.to_string()).unwrap();
    std::fs::copy(env.config().join("prod.token"), env.config().join("old.token")).unwrap();
    for f in ["old.json", "old.token"] {
        set_mode(&env.config().join(f), 0o600);
    }
    env.run(&["--profile", "old", "check"], &[]).expect_code(0);
    set_mode(&old_ca, 0o664);
    refused(
        &env.run(&["--profile", "old", "check"], &[]),
        &["CA bundle", "writable by its group"],
    );
}

#[test]
fn rancherctl_is_not_dumpable_and_has_no_core_limit() {
    let env = Env::start();
    let mut vars = env.cli.base_env();
    vars.push(("RANCHER_DOMAIN", "127.0.0.1:1".into()));
    // Waits on stdin for the token. A dumpable process's /proc files belong to its user, a non-dumpable one's to
    // root; run as root, the test starts it as another user to tell the two apart.
    let mut cmd = command(&["check", "--token-stdin"], &vars);
    let uid = if my_uid() == 0 { NOBODY } else { my_uid() };
    if uid != my_uid() {
        std::os::unix::process::CommandExt::uid(&mut cmd, uid);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_killed_on_drop()
        .expect("rancherctl starts");
    let proc_dir = PathBuf::from(format!("/proc/{}", child.id()));
    let core_limit = || {
        std::fs::read_to_string(proc_dir.join("limits"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .map(|l| l.split_whitespace().skip(4).take(2).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let mut limit = core_limit();
    for _ in 0..100 {
        let status = std::fs::read_to_string(proc_dir.join("status")).unwrap_or_default();
        if limit == "0 0" && status.contains("State:\tS") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        limit = core_limit();
    }
    let status = std::fs::read_to_string(proc_dir.join("status")).unwrap();
    let owner = std::fs::metadata(proc_dir.join("status")).unwrap().uid();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains(&uid.to_string())),
        "{status}"
    );
    assert_eq!(limit, "0 0", "soft and hard core size limits");
    assert_eq!(
        owner, 0,
        "the process is not dumpable (its /proc entries belong to root)"
    );
}

#[test]
fn sim_writes_its_files_private_and_warns_about_a_shared_stdout() {
    let env = Env::start();
    let out = env.cli.tmp.path().join("sim.env");
    let file = std::fs::File::create(&out).unwrap();
    set_mode(&out, 0o644);
    let state = env.cli.tmp.path().join("state");
    let mut child = command(&["sim", "--users", "1"], &env.cli.base_env())
        .stdout(file)
        .stderr(Stdio::piped())
        .spawn_killed_on_drop()
        .expect("sim starts");
    let mut lines = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("rancher-sim: in another shell");
        lines.push(line);
        if done {
            break;
        }
    }
    let ca = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("sim-ca-"))
        });
    let ca_mode = mode_of(&ca.expect("the simulator's CA file, named after its port"));
    child.kill().unwrap();
    let _ = child.wait();
    let warning = lines
        .iter()
        .find(|l| l.starts_with("warning: stdout is a file others may read (mode 644)"));
    assert!(warning.is_some_and(|w| w.contains("umask 077")), "{lines:?}");
    assert_eq!(ca_mode, 0o600);
    assert_eq!(mode_of(&state), 0o700);
}
