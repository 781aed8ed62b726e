//! A real PostgreSQL for tests (feature `test-util`): one throwaway cluster per test process, one fresh database
//! per test.
//!
//! When `RANCHER_TEST_DATABASE_URL` is set, databases are created on that server instead (its user must be allowed
//! to `CREATE DATABASE`). Otherwise the first test starts a cluster itself: `initdb` and `pg_ctl` from
//! `/usr/lib/postgresql/*/bin` (or `PATH`), listening only on a unix socket in a temporary directory, run as the
//! `postgres` system user when the tests run as root (PostgreSQL refuses root). The cluster is stopped and its
//! directory removed when the test process ends, however it ends: a watchdog process waits for the test process
//! to exit; a [`Cluster`] owned outside the shared one also stops on drop.
//!
//! When PostgreSQL cannot be started, [`TestDatabase::create`] fails the test with a message naming the
//! `postgresql` package when `CI` is set, and otherwise prints a visible `SKIPPED` note and returns `None`.

pub mod process;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{Clock, PostgresOptions, PostgresStore};

/// The environment variable naming an existing server to use instead of a throwaway cluster.
pub const DATABASE_URL_ENV: &str = "RANCHER_TEST_DATABASE_URL";

/// A running throwaway PostgreSQL cluster.
#[derive(Debug)]
pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    bin: PathBuf,
    run_as_postgres: bool,
    watchdog: Option<std::process::Child>,
}

impl Cluster {
    /// Starts a cluster in a new temporary directory (unix socket only, durable commits: `fsync` and
    /// `synchronous_commit` on).
    pub fn start() -> Result<Self, String> {
        let bin = find_bin()
            .ok_or("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH")?;
        let dir = tempfile::Builder::new()
            .prefix("rancher-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let run_as_postgres = running_as_root();
        if run_as_postgres {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to the postgres user: {e}", dir.path().display()))?;
        }
        let mut cluster = Self {
            dir: Some(dir),
            bin,
            run_as_postgres,
            watchdog: None,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let options = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c fsync=on -c synchronous_commit=on -c max_connections=300",
            cluster.socket_dir().display()
        );
        let log = cluster.socket_dir().join("server.log");
        cluster.watchdog = Some(cluster.watchdog()?);
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )?;
        Ok(cluster)
    }

    /// The directory holding the server's socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }

    fn data_dir(&self) -> PathBuf {
        self.socket_dir().join("data")
    }

    /// The URL of database `name` on this cluster, as the `postgres` superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@/{name}?host={}", self.socket_dir().display())
    }

    fn command(&self, program: &str) -> Command {
        let binary = self.bin.join(program);
        if self.run_as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(binary);
            c
        } else {
            Command::new(binary)
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let out = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let log = std::fs::read_to_string(self.socket_dir().join("server.log")).unwrap_or_default();
            Err(format!(
                "{program} failed ({}): {}{}\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// A detached process that stops the cluster and removes its directory once this process has exited.
    fn watchdog(&self) -> Result<std::process::Child, String> {
        let stop = self.command("pg_ctl");
        let mut stop_line: Vec<String> = vec![shell_quote(stop.get_program().to_string_lossy().as_ref())];
        stop_line.extend(stop.get_args().map(|a| shell_quote(a.to_string_lossy().as_ref())));
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            stop = stop_line.join(" "),
            data = shell_quote(&self.data_dir().to_string_lossy()),
            dir = shell_quote(&self.socket_dir().to_string_lossy()),
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the cluster's watchdog: {e}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(data) = path_str(&self.data_dir()).map(str::to_owned) {
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str().ok_or_else(|| format!("{} is not UTF-8", p.display()))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

fn postgres_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("cannot run id: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "there is no `postgres` system user to run PostgreSQL as (we run as root)".to_string())
    };
    Ok((id("-u")?, id("-g")?))
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, else the directory of `initdb` on `PATH`.
/// A PostgreSQL client program (`pg_dump`, `pg_restore`, `psql`) of the newest installed server version, else from
/// `PATH`.
pub fn client_binary(program: &str) -> Option<PathBuf> {
    find_bin()
        .map(|bin| bin.join(program))
        .filter(|p| p.exists())
        .or_else(|| {
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|dir| dir.join(program))
                .find(|p| p.exists())
        })
}

fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
}

/// Where test databases are created: an existing server or the process's cluster.
enum Server {
    External(url::Url),
    Cluster(Cluster),
}

impl Server {
    fn url(&self, name: &str) -> String {
        match self {
            Self::External(base) => {
                let mut u = base.clone();
                u.set_path(&format!("/{name}"));
                u.to_string()
            }
            Self::Cluster(c) => c.url(name),
        }
    }

    fn admin_url(&self) -> String {
        match self {
            Self::External(base) => base.to_string(),
            Self::Cluster(c) => c.url("postgres"),
        }
    }
}

fn server() -> Result<&'static Server, String> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var(DATABASE_URL_ENV) {
            Ok(url) => url::Url::parse(&url)
                .map(Server::External)
                .map_err(|e| format!("{DATABASE_URL_ENV} is not a URL: {e}")),
            Err(_) => Cluster::start().map(Server::Cluster),
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A fresh, empty database for one test, dropped again with this value.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a new database named after `label` (plus a random suffix). `None` (after printing a visible
    /// `SKIPPED` note) when PostgreSQL cannot be started here; panics instead when `CI` is set.
    pub async fn create(label: &str) -> Option<Self> {
        let server = match tokio::task::spawn_blocking(server)
            .await
            .expect("starting PostgreSQL panicked")
        {
            Ok(server) => server,
            Err(problem) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL could not be started for the approval store tests: {problem}\ninstall the `postgresql` package (apt-get install postgresql) or set {DATABASE_URL_ENV}");
                }
                // Written to the real stderr, past the test harness's capture, so that it is seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {label} on PostgreSQL: {problem}; install the `postgresql` package or set {DATABASE_URL_ENV}"
                );
                return None;
            }
        };
        let clean: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("t_{clean}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let db = Self {
            url: server.url(&name),
            admin_url: server.admin_url(),
            name,
        };
        let (client, connection) = tokio_postgres::connect(&db.admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL: {e}"));
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE \"{}\"", db.name))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {}: {e}", db.name));
        Some(db)
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store on this database that dates changes with the callers' `now` ([`Clock::Caller`]), as the shared
    /// store tests expect.
    pub async fn store(&self) -> PostgresStore {
        self.store_with(PostgresOptions {
            clock: Clock::Caller,
            ..PostgresOptions::default()
        })
        .await
    }

    /// A store on this database with `options`.
    pub async fn store_with(&self, options: PostgresOptions) -> PostgresStore {
        PostgresStore::connect_with(&self.url, options)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A plain connection to this database (as the superuser: what someone with database access can do).
    pub async fn raw(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name));
        tokio::spawn(connection);
        client
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // On another thread with its own runtime: this may be dropped inside or outside one.
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.ok()?;
                tokio::spawn(connection);
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                tokio::time::timeout(Duration::from_secs(10), client.batch_execute(&drop))
                    .await
                    .ok()?
                    .ok()
            })
        })
        .join();
    }
}
