//! The peers we compare against: `kubectl` and the Python `kubernetes` client. Found on the machine, installed
//! when allowed (kubectl from Debian's `kubernetes-client` package, the Python client from PyPI into a private
//! virtual environment), or skipped with a note.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::harness::which;

/// The Python `kubernetes` client version the bench installs when none is present.
pub const PYTHON_KUBERNETES: &str = "kubernetes==37.0.2";

/// How long an installation may take before it is abandoned.
const INSTALL_LIMIT: Duration = Duration::from_secs(300);

/// A peer that was found (or installed), with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The program to run (kubectl, or the Python interpreter that has `kubernetes`).
    pub program: PathBuf,
    /// Its version, as it reports it.
    pub version: String,
    /// How it was obtained.
    pub origin: String,
}

/// Whether a missing peer may be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Install what is missing (bounded in time).
    Allowed,
    /// Use only what is already there.
    Never,
}

/// Runs a command with a time limit, capturing its output.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<std::process::Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut b);
        b
    });
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("gave up after {}s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(std::process::Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Finds kubectl on `PATH`; when missing and allowed, installs Debian's `kubernetes-client` package.
pub fn kubectl(install: Install) -> Result<Peer> {
    let origin;
    let program = match which("kubectl") {
        Some(p) => {
            origin = "found on PATH".to_string();
            p
        }
        None => {
            if install == Install::Never {
                bail!("kubectl is not installed (the quick run installs nothing)");
            }
            if which("apt-get").is_none() {
                bail!("kubectl is not installed and there is no apt-get to install Debian's kubernetes-client");
            }
            eprintln!("bench: installing kubectl (Debian package kubernetes-client) ...");
            let _ = run_bounded(Command::new("apt-get").args(["update", "-qq"]), INSTALL_LIMIT);
            let out = run_bounded(
                Command::new("apt-get")
                    .args(["install", "-y", "-qq", "--no-install-recommends", "kubernetes-client"])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
                INSTALL_LIMIT,
            )?;
            if !out.status.success() {
                bail!("apt-get install kubernetes-client failed: {}", first_line(&out.stderr));
            }
            origin = "installed from Debian's kubernetes-client package".to_string();
            which("kubectl").context("kubernetes-client installed no kubectl on PATH")?
        }
    };
    let out = run_bounded(
        Command::new(&program).args(["version", "--client"]),
        Duration::from_secs(30),
    )?;
    if !out.status.success() {
        bail!("`kubectl version --client` failed: {}", first_line(&out.stderr));
    }
    let version = first_line(&out.stdout)
        .trim_start_matches("Client Version:")
        .trim()
        .to_string();
    Ok(Peer {
        program,
        version,
        origin,
    })
}

fn python_kubernetes_version(python: &Path) -> Option<String> {
    let out = run_bounded(
        Command::new(python).args(["-c", "import kubernetes; print(kubernetes.__version__)"]),
        Duration::from_secs(60),
    )
    .ok()?;
    out.status.success().then(|| first_line(&out.stdout))
}

/// Finds a Python with the `kubernetes` package: the system's `python3`, else a virtual environment under
/// `peers_dir`; when missing and allowed, creates that environment and installs [`PYTHON_KUBERNETES`] from PyPI.
pub fn python(install: Install, peers_dir: &Path) -> Result<Peer> {
    let system = which("python3").context("python3 is not installed")?;
    if let Some(v) = python_kubernetes_version(&system) {
        return Ok(Peer {
            program: system,
            version: v,
            origin: "found in the system's python3".into(),
        });
    }
    let venv = peers_dir.join("python-venv");
    let venv_python = venv.join("bin").join("python");
    if venv_python.is_file() {
        if let Some(v) = python_kubernetes_version(&venv_python) {
            return Ok(Peer {
                program: venv_python,
                version: v,
                origin: format!("found in {}", venv.display()),
            });
        }
    }
    if install == Install::Never {
        bail!("the Python kubernetes client is not installed (the quick run installs nothing)");
    }
    eprintln!(
        "bench: installing the Python kubernetes client ({PYTHON_KUBERNETES}) into {} ...",
        venv.display()
    );
    std::fs::create_dir_all(peers_dir)?;
    let out = run_bounded(Command::new(&system).args(["-m", "venv"]).arg(&venv), INSTALL_LIMIT)?;
    if !out.status.success() {
        bail!("python3 -m venv failed: {}", first_line(&out.stderr));
    }
    let out = run_bounded(
        Command::new(&venv_python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PYTHON_KUBERNETES,
        ]),
        INSTALL_LIMIT,
    )?;
    if !out.status.success() {
        bail!("pip install {PYTHON_KUBERNETES} failed: {}", first_line(&out.stderr));
    }
    let version = python_kubernetes_version(&venv_python)
        .context("the kubernetes package does not import after installing it")?;
    Ok(Peer {
        program: venv_python,
        version,
        origin: format!("installed from PyPI into {}", venv.display()),
    })
}

/// A kubeconfig naming the simulator, its CA file and the token. Write it with [`crate::harness::write_private`].
pub fn kubeconfig(server: &str, ca_file: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: rancher-sim\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
         users:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: rancher-sim\n  context:\n    cluster: rancher-sim\n    user: admin\n\
         current-context: rancher-sim\n",
        ca = ca_file.display()
    )
}

/// The Python peer's program: lists every user with `limit`/`continue` through `CustomObjectsApi` and prints the
/// count and the seconds the listing took (interpreter start-up and imports excluded). The token comes from the
/// `BENCH_TOKEN` environment variable, never from the command line.
pub const PYTHON_LIST: &str = r#"
import os, sys, time
from kubernetes import client

cfg = client.Configuration()
cfg.host = sys.argv[1]
cfg.ssl_ca_cert = sys.argv[2]
cfg.api_key = {"authorization": os.environ["BENCH_TOKEN"]}
cfg.api_key_prefix = {"authorization": "Bearer"}
api = client.CustomObjectsApi(client.ApiClient(cfg))
limit = int(sys.argv[3])
start = time.perf_counter()
count = 0
token = None
while True:
    kwargs = {"limit": limit}
    if token:
        kwargs["_continue"] = token
    page = api.list_cluster_custom_object("management.cattle.io", "v3", "users", **kwargs)
    count += len(page["items"])
    token = (page.get("metadata") or {}).get("continue")
    if not token:
        break
print(count, time.perf_counter() - start)
"#;
