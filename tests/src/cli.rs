//! Helpers for the `rancherctl` end-to-end tests: the binary, runs with captured output, secret scanning and
//! the redactions that make snapshots stable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The `rancherctl` binary, built once per test process (`cargo build -p rancher-cli --bin rancherctl`), so the
/// tests always run the current code without the tests member depending on the binary crate.
pub fn rancherctl() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/cli-<hash> -> target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile dir")
            .to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "rancher-cli", "--bin", "rancherctl"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building rancherctl failed");
        let bin = profile_dir.join(format!("rancherctl{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.exists(), "rancherctl not found at {}", bin.display());
        bin
    })
}

/// One finished run of the binary.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// From a process output.
    pub fn from_output(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A `rancherctl` invocation with a clean environment: no RANCHER_* or RANCHERCTL_* from the caller's shell.
pub fn command(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut c = Command::new(rancherctl());
    for (k, _) in std::env::vars() {
        if k.starts_with("RANCHER") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// The secret part of a bearer token (`token-xxxxx:<secret>`).
pub fn secret_of(token: &str) -> &str {
    token.split_once(':').map(|(_, s)| s).unwrap_or(token)
}

/// Panics when any secret appears in the run's output.
#[track_caller]
pub fn assert_no_secrets(run: &Run, secrets: &[&str]) {
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !run.stdout.contains(s) && !run.stderr.contains(s),
            "a token secret leaked into the output:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

/// Regex filters (pattern, replacement) that hide ports, ids, times, hashes, masks and temp paths.
pub fn redactions() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"req-[0-9a-z]{26}", "[REQUEST]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)", "[TIME]"),
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?", "[TIME]"),
        (r"\*\*\*\*[0-9a-z]{4}", "****[MASK]"),
        (r"grb-[0-9a-z]{5}", "grb-[NAME]"),
        (r"\b[0-9a-f]{16,64}\b", "[HASH]"),
        (r"(/tmp|/var/folders)/[^\s\x22']+", "[TMP]"),
    ]
}

/// A simulator on its own runtime (so synchronous tests can run the binary while it serves), temporary state and
/// config directories, and the simulator's CA written to a file.
pub struct SimCli {
    /// The simulator.
    pub sim: rancher_sim::SimHandle,
    /// The runtime serving it (also for async calls from a synchronous test).
    pub rt: tokio::runtime::Runtime,
    /// Holds `state/`, `config/` and `ca.pem`.
    pub tmp: tempfile::TempDir,
    /// The CA file.
    pub ca: PathBuf,
}

impl SimCli {
    /// Starts a simulator playing `version` with `users` extra users.
    pub fn start(version: rancher_sim::RancherVersion, users: usize) -> SimCli {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let config = rancher_sim::SimConfig::default()
            .rancher_version(version)
            .users(users)
            .seed(7)
            .port(0);
        let sim = rt
            .block_on(rancher_sim::Simulator::start(config))
            .expect("simulator starts");
        let tmp = tempfile::tempdir().expect("temp dir");
        let ca = tmp.path().join("ca.pem");
        std::fs::write(&ca, sim.ca_pem()).expect("CA written");
        SimCli { sim, rt, tmp, ca }
    }

    /// The state and config directories (no connection).
    pub fn base_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "RANCHERCTL_STATE_DIR",
                self.tmp.path().join("state").display().to_string(),
            ),
            (
                "RANCHERCTL_CONFIG_DIR",
                self.tmp.path().join("config").display().to_string(),
            ),
            ("HOSTNAME", "e2e".into()),
        ]
    }

    /// The base environment plus the simulator's domain and CA, and `token` when given.
    pub fn connected_env(&self, token: Option<&str>) -> Vec<(&'static str, String)> {
        let mut env = self.base_env();
        env.push(("RANCHER_DOMAIN", self.sim.domain()));
        env.push(("RANCHER_CA_CERT", self.ca.display().to_string()));
        if let Some(t) = token {
            env.push(("RANCHER_TOKEN", t.to_string()));
        }
        env
    }

    /// Runs the binary with `env`, and fails the test when any seeded token's secret reaches its output.
    pub fn exec(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let run = Run::from_output(command(args, env).output().expect("rancherctl runs"));
        let secrets = self.token_secrets();
        assert_no_secrets(&run, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
        run
    }

    /// Runs with the simulator's domain, CA and `token` in the environment.
    pub fn run_as(&self, token: &str, args: &[&str]) -> Run {
        self.exec(args, &self.connected_env(Some(token)))
    }

    /// Runs as the simulator's admin.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_as(&self.sim.tokens().admin.clone(), args)
    }

    /// Runs with only the state and config directories (no connection in the environment).
    pub fn bare(&self, args: &[&str]) -> Run {
        self.exec(args, &self.base_env())
    }

    /// The secret parts of every seeded token (a whole 1.x bearer, which has no `:`).
    pub fn token_secrets(&self) -> Vec<String> {
        let t = self.sim.tokens();
        [&t.admin, &t.approver, &t.user, &t.cluster_scoped, &t.expired]
            .iter()
            .map(|s| secret_of(s).to_string())
            .collect()
    }
}
