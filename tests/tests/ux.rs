//! Issue 27: what a first-time operator hit (shared/reviews/ux-2026-12.md, findings 1-26), each reproduced with the
//! report's command against the binary and the simulator. Test names carry the finding's number.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use rancher_access_tests::cli::{assert_no_secrets, command, Run, SimCli};
use rancher_sim::RancherVersion;

/// A 2.13 simulator with 30 extra users and private state and config directories.
struct Env(SimCli);

impl std::ops::Deref for Env {
    type Target = SimCli;
    fn deref(&self) -> &SimCli {
        &self.0
    }
}

impl Env {
    fn start() -> Env {
        Env(SimCli::start(RancherVersion::V2_13, 30))
    }

    /// Runs as the admin (domain, CA and token in the environment).
    fn run(&self, args: &[&str]) -> Run {
        self.exec(args, &self.connected_env(Some(&self.sim.tokens().admin.clone())))
    }

    /// Runs with only the state and config directories.
    fn bare(&self, args: &[&str]) -> Run {
        self.exec(args, &self.base_env())
    }

    fn exec(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let run = Run::from_output(command(args, env).output().expect("rancherctl runs"));
        let secrets = self.token_secrets();
        assert_no_secrets(&run, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
        run
    }
}

/// Finding 6: `rancherctl run token-report | head -1` panicked (exit 101) when the reader went away; so did
/// completions. A closed pipe now ends the process quietly.
#[test]
fn ux6_a_closed_pipe_exits_quietly() {
    let env = Env::start();
    env.run(&["workflows", "install", "token-report"]).expect_code(0);
    let admin = env.sim.tokens().admin.clone();
    for args in [&["run", "token-report"][..], &["run", "list-global-role-bindings"], &["completions", "zsh"]] {
        if args[0] == "run" && args[1] == "list-global-role-bindings" {
            env.run(&["workflows", "install", "list-global-role-bindings"]);
        }
        let mut child = command(args, &env.connected_env(Some(&admin))).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starts");
        // `| head -0`: the reader is gone before anything is written.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let status = child.wait().unwrap();
        assert!(matches!(status.code(), Some(0) | Some(141)), "{args:?}: {status:?}\n{stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

/// Finding 7: `-o csv` of list-global-role-bindings left the USERNAME column empty in local mode.
#[test]
fn ux7_csv_carries_every_column_the_table_shows() {
    let env = Env::start();
    env.run(&["workflows", "install", "list-global-role-bindings"]).expect_code(0);
    let table = env.run(&["run", "list-global-role-bindings"]);
    table.expect_code(0);
    let csv = env.run(&["run", "list-global-role-bindings", "-o", "csv"]);
    csv.expect_code(0);
    let header: Vec<&str> = csv.stdout.lines().next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "USERNAME").expect("a USERNAME column");
    let named: Vec<&str> = csv.stdout.lines().skip(1).filter_map(|l| l.split(',').nth(at)).filter(|u| !u.is_empty()).collect();
    assert!(named.contains(&"admin"), "usernames are filled in:\n{}", csv.stdout);
    for name in &named {
        assert!(table.stdout.contains(name), "the table shows {name} too");
    }
}

/// Starts `rancherctl sim` with `extra` arguments and waits until it printed its last line on stdout; answers the
/// child and the lines.
fn start_sim(env: &Env, extra: &[&str]) -> (std::process::Child, Vec<String>) {
    let mut args = vec!["sim", "--users", "1"];
    args.extend_from_slice(extra);
    let mut child = command(&args, &env.base_env()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("sim starts");
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("RANCHER_TOKEN_EXPIRED=");
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

/// Finding 8: the help said `eval "$(rancherctl sim)"`, which never returns and exported nothing. The lines are
/// now `export` lines, and `--env-file` writes them for another shell to source.
#[test]
fn ux8_sim_lines_reach_the_next_command() {
    let env = Env::start();
    let file = env.tmp.path().join("sim.env");
    let (mut child, lines) = start_sim(&env, &["--env-file", file.to_str().unwrap()]);
    assert!(lines.iter().all(|l| l.starts_with("export RANCHER_")), "{lines:?}");
    let sourced = std::process::Command::new("bash")
        .args(["-c", &format!("set -a; . '{}'; set +a; bash -c 'echo \"$RANCHER_DOMAIN\"'", file.display())])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let domain = String::from_utf8_lossy(&sourced.stdout).trim().to_string();
    assert!(domain.starts_with("127.0.0.1:"), "the sourced file exports the domain: {domain:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "the env file holds tokens");
    }
    let help = env.bare(&["--help"]);
    assert!(!help.stdout.contains("eval \"$(rancherctl sim)\""), "{}", help.stdout);
}

/// Finding 21: a second `rancherctl sim` replaced the first one's CA file, so everything trusting the first failed.
#[test]
fn ux21_a_second_sim_keeps_the_first_ones_ca() {
    let env = Env::start();
    let ca_of = |lines: &[String]| lines.iter().find_map(|l| l.strip_prefix("export RANCHER_CA_CERT=")).map(str::to_string).expect("a CA line");
    let (mut first, first_lines) = start_sim(&env, &[]);
    let first_ca = ca_of(&first_lines);
    let before = std::fs::read_to_string(&first_ca).unwrap();
    let (mut second, second_lines) = start_sim(&env, &[]);
    let second_ca = ca_of(&second_lines);
    let after = std::fs::read_to_string(&first_ca).unwrap();
    for c in [&mut first, &mut second] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_ne!(first_ca, second_ca, "each simulator has its own CA file");
    assert_eq!(before, after, "the first simulator's CA is untouched");
}

/// Finding 10: `set-policy --policy ...` dropped the grant limits without a word, and `--expires-after 90` meant
/// 90 seconds while `1h30m` was refused: one grammar now, and set-policy changes only what it is given.
#[test]
fn ux10_set_policy_keeps_what_it_is_not_given_and_durations_share_one_grammar() {
    let env = Env::start();
    env.run(&["workflows", "install", "grant-project-role", "--max-duration", "8h", "--require-duration"]).expect_code(0);
    let approver = env.sim.users().approver.id.clone();
    let changed = env.run(&["workflows", "set-policy", "grant-project-role", "--policy", &format!("any-of:{approver}"), "-o", "json"]);
    changed.expect_code(0);
    let inst: serde_json::Value = serde_json::from_str(&changed.stdout).unwrap();
    assert_eq!(inst["policy"]["options"]["max_duration_secs"], 8 * 3600, "{}", changed.stdout);
    assert_eq!(inst["policy"]["options"]["require_duration"], true, "{}", changed.stdout);
    let bare = env.run(&["workflows", "set-policy", "grant-project-role", "--expires-after", "90"]);
    bare.expect_code(1);
    assert!(bare.stderr.contains("--expires-after") && bare.stderr.contains("unit"), "{}", bare.stderr);
    let combined = env.run(&["workflows", "set-policy", "grant-project-role", "--expires-after", "1h30m", "-o", "json"]);
    combined.expect_code(0);
    let inst: serde_json::Value = serde_json::from_str(&combined.stdout).unwrap();
    assert_eq!(inst["policy"]["options"]["expires_after_secs"], 5400);
    assert_eq!(inst["policy"]["options"]["max_duration_secs"], 8 * 3600, "still kept");
}

/// Finding 26: every command's help listed the eleven global options among its own, and usage lines after an
/// error showed options the environment set as if they were required.
#[test]
fn ux26_help_separates_global_options_and_usage_lines_stay_short() {
    let env = Env::start();
    let help = env.bare(&["serve", "--help"]);
    help.expect_code(0);
    let own = help.stdout.find("--listen").expect("serve's own options");
    let global = help.stdout.find("Global options:").expect("a heading for the global options");
    assert!(own < global && help.stdout[global..].contains("--domain"), "{}", help.stdout);
    assert!(!help.stdout[..global].contains("--domain"), "{}", help.stdout);
    for cmd in ["run", "approvals", "grants", "connect", "serve"] {
        let h = env.bare(&[cmd, "--help"]);
        assert!(h.stdout.contains("Examples:"), "{cmd} --help has examples");
    }
    let usage = env.exec(&["run"], &env.connected_env(None));
    usage.expect_code(2);
    assert!(usage.stderr.contains("Usage: rancherctl run <WORKFLOW>"), "{}", usage.stderr);
}
