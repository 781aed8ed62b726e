//! Case 1: listing every user. Our typed stream end to end, against the two floors measured in the same run
//! (transport: a bare reqwest loop fetching the same pages and discarding the bytes; parse: the same page bytes
//! deserialized from memory into our types) and against the peers (kubectl, the Python kubernetes client).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures::TryStreamExt;
use rancher_api::requests::RkUsersList;
use rancher_api::types::UserList;
use rancher_api::ExposeSecret;
use rancher_sim::SimConfig;

use crate::harness::{temp_dir_in, write_private, Sim};
use crate::peers::{self, Install};
use crate::stats::{Figure, Unit};
use crate::Options;

/// Items per page, for us and for both peers.
pub const PAGE_SIZE: usize = 500;

/// What the listing case measured.
#[derive(Debug, Clone)]
pub struct ListResult {
    /// Figures: `list.ours`, `list.transport`, `list.parse`, and `list.kubectl` / `list.python` when run.
    pub figures: Vec<Figure>,
    /// Users the server holds (the seeded extra users plus the named ones).
    pub users: usize,
    /// Mean size of one page on the wire, in bytes.
    pub page_bytes: usize,
    /// Why a peer was not measured.
    pub skipped: Vec<String>,
    /// Peer versions and origins, for the report.
    pub peers: Vec<String>,
}

/// The pages of one full listing, recorded once: each page's URL and body.
struct Pages {
    urls: Vec<String>,
    bodies: Vec<Vec<u8>>,
}

fn users_url(base: &str, token: Option<&str>) -> String {
    // The same query, in the same order, as rancher-api sends (continue first, then limit).
    match token {
        None => format!("{base}/apis/management.cattle.io/v3/users?limit={PAGE_SIZE}"),
        Some(t) => {
            let enc: String = url_encode(t);
            format!("{base}/apis/management.cattle.io/v3/users?continue={enc}&limit={PAGE_SIZE}")
        }
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct ContinueOnly {
    metadata: Option<ContinueMeta>,
}

#[derive(serde::Deserialize)]
struct ContinueMeta {
    #[serde(rename = "continue")]
    continue_: Option<String>,
}

async fn record_pages(http: &reqwest::Client, base: &str, token: &str) -> Result<Pages> {
    let mut pages = Pages {
        urls: Vec::new(),
        bodies: Vec::new(),
    };
    let mut next: Option<String> = None;
    loop {
        let url = users_url(base, next.as_deref());
        let resp = http
            .get(&url)
            .bearer_auth(token)
            .header("accept", "application/json")
            .send()
            .await?;
        ensure!(resp.status().is_success(), "listing users answered {}", resp.status());
        let body = resp.bytes().await?.to_vec();
        let meta: ContinueOnly = serde_json::from_slice(&body).context("a users page is not JSON")?;
        next = meta.metadata.and_then(|m| m.continue_).filter(|c| !c.is_empty());
        pages.urls.push(url);
        pages.bodies.push(body);
        if next.is_none() {
            return Ok(pages);
        }
    }
}

/// The transport floor: fetch the recorded pages one after another, reading and discarding every byte.
async fn transport_floor(http: &reqwest::Client, urls: &[String], token: &str) -> Result<(Duration, usize)> {
    let start = Instant::now();
    let mut bytes = 0usize;
    for url in urls {
        let mut resp = http
            .get(url)
            .bearer_auth(token)
            .header("accept", "application/json")
            .send()
            .await?;
        ensure!(resp.status().is_success(), "page answered {}", resp.status());
        while let Some(chunk) = resp.chunk().await? {
            bytes += chunk.len();
        }
    }
    Ok((start.elapsed(), bytes))
}

/// The parse floor: the same bytes, from memory, into our types.
fn parse_floor(bodies: &[Vec<u8>]) -> Result<(Duration, usize)> {
    let start = Instant::now();
    let mut n = 0;
    for body in bodies {
        let page: UserList = serde_json::from_slice(body)?;
        n += page.items.map(|i| i.len()).unwrap_or(0);
    }
    Ok((start.elapsed(), n))
}

/// Ours, end to end: the typed stream over every page.
async fn ours(client: &rancher_api::Client) -> Result<(Duration, usize)> {
    let start = Instant::now();
    let n = client
        .users()
        .list(RkUsersList::new().limit(PAGE_SIZE as i64))
        .try_fold(0usize, |n, _user| async move { Ok(n + 1) })
        .await?;
    Ok((start.elapsed(), n))
}

/// Runs the case on a simulator holding `n` extra users.
pub fn run(opts: &Options, rt: &tokio::runtime::Runtime, n: usize) -> Result<ListResult> {
    let runs = opts.runs();
    let sim = Sim::start(SimConfig::default().users(n).seed(1))?;
    let base = sim.base_url();
    let token = sim.admin_token();
    let http = sim.bare_client(1)?;
    let client = sim.client(16)?;

    let pages = rt.block_on(record_pages(&http, &base, token.expose_secret()))?;
    let total_bytes: usize = pages.bodies.iter().map(Vec::len).sum();
    let (_, users) = parse_floor(&pages.bodies)?;
    eprintln!(
        "bench: case 1: {users} users in {} pages of {PAGE_SIZE} ({} MiB)",
        pages.urls.len(),
        total_bytes >> 20
    );

    // Warm up both paths (connections, allocator), then interleave the runs so drift hits all three alike.
    rt.block_on(transport_floor(&http, &pages.urls, token.expose_secret()))?;
    let (_, warm) = rt.block_on(ours(&client))?;
    ensure!(
        warm == users,
        "the typed stream yielded {warm} users, the pages hold {users}"
    );
    let (mut t_ours, mut t_transport, mut t_parse) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (d, bytes) = rt.block_on(transport_floor(&http, &pages.urls, token.expose_secret()))?;
        ensure!(
            bytes == total_bytes,
            "the transport floor read {bytes} bytes, expected {total_bytes}"
        );
        t_transport.push(d);
        let (d, count) = parse_floor(&pages.bodies)?;
        ensure!(count == users);
        t_parse.push(d);
        let (d, count) = rt.block_on(ours(&client))?;
        ensure!(
            count == users,
            "the typed stream yielded {count} users, expected {users}"
        );
        t_ours.push(d);
    }
    let u = users as f64;
    let mut figures = vec![
        Figure::timings(
            "list.ours",
            1,
            format!("list {users} users: rancher-api typed stream, end to end"),
            Unit::Seconds,
            &t_ours,
        )
        .with_work(u, "users"),
        Figure::timings(
            "list.transport",
            1,
            "transport floor: bare reqwest, same pages, bytes discarded",
            Unit::Seconds,
            &t_transport,
        )
        .with_work(u, "users"),
        Figure::timings(
            "list.parse",
            1,
            "parse floor: same page bytes from memory into our types",
            Unit::Seconds,
            &t_parse,
        )
        .with_work(u, "users"),
    ];
    let mut skipped = Vec::new();
    let mut peer_notes = Vec::new();
    let install = if opts.quick { Install::Never } else { Install::Allowed };
    let peer_runs = if opts.quick { 1 } else { 3 };
    let dir = temp_dir_in(&opts.work_dir, "list-peers-")?;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, sim.handle().ca_pem())?;

    if !opts.peers {
        skipped.push("peers not run (--no-peers)".into());
        return Ok(ListResult {
            figures,
            users,
            page_bytes: total_bytes / pages.urls.len().max(1),
            skipped,
            peers: peer_notes,
        });
    }
    match peers::kubectl(install) {
        Err(e) => skipped.push(format!("kubectl skipped: {e:#}")),
        Ok(k) => match kubectl_runs(&k.program, dir.path(), &ca_file, &sim, users, peer_runs) {
            Ok(t) => {
                peer_notes.push(format!("kubectl {} ({})", k.version, k.origin));
                figures.push(
                    Figure::timings(
                        "list.kubectl",
                        1,
                        format!("kubectl get users.management.cattle.io -o json --chunk-size={PAGE_SIZE}"),
                        Unit::Seconds,
                        &t,
                    )
                    .with_work(u, "users")
                    .with_note("whole process, output to /dev/null, discovery cached by a warm-up run"),
                );
            }
            Err(e) => skipped.push(format!("kubectl {} failed: {e:#}", k.version)),
        },
    }
    match peers::python(install, &opts.peers_dir) {
        Err(e) => skipped.push(format!("Python kubernetes client skipped: {e:#}")),
        Ok(p) => match python_runs(&p.program, dir.path(), &ca_file, &sim, users, peer_runs) {
            Ok((t, whole)) => {
                peer_notes.push(format!("Python kubernetes {} ({})", p.version, p.origin));
                figures.push(
                    Figure::timings(
                        "list.python",
                        1,
                        format!("Python kubernetes client, CustomObjectsApi, limit={PAGE_SIZE} + continue"),
                        Unit::Seconds,
                        &t,
                    )
                    .with_work(u, "users")
                    .with_note("listing loop only: interpreter start-up and imports not counted"),
                );
                figures.push(
                    Figure::timings(
                        "list.python_process",
                        1,
                        "the same Python program, whole process",
                        Unit::Seconds,
                        &whole,
                    )
                    .with_work(u, "users")
                    .with_note("with interpreter start-up and imports"),
                );
            }
            Err(e) => skipped.push(format!("Python kubernetes client {} failed: {e:#}", p.version)),
        },
    }
    Ok(ListResult {
        figures,
        users,
        page_bytes: total_bytes / pages.urls.len().max(1),
        skipped,
        peers: peer_notes,
    })
}

fn count_items(json: &[u8]) -> Result<usize> {
    #[derive(serde::Deserialize)]
    struct Items {
        items: Vec<serde::de::IgnoredAny>,
    }
    Ok(serde_json::from_slice::<Items>(json)?.items.len())
}

fn kubectl_runs(
    kubectl: &Path,
    dir: &Path,
    ca_file: &Path,
    sim: &Sim,
    users: usize,
    runs: usize,
) -> Result<Vec<Duration>> {
    let config = dir.join("kubeconfig");
    write_private(
        &config,
        peers::kubeconfig(&sim.base_url(), ca_file, sim.admin_token().expose_secret()).as_bytes(),
    )?;
    let cache = dir.join("kube-cache");
    let cmd = || {
        let mut c = Command::new(kubectl);
        c.arg("--kubeconfig")
            .arg(&config)
            .arg("--cache-dir")
            .arg(&cache)
            .args([
                "get",
                "users.management.cattle.io",
                "-o",
                "json",
                &format!("--chunk-size={PAGE_SIZE}"),
            ])
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        c
    };
    // Warm-up: fills the discovery cache and checks every user came back.
    let out = peers::run_bounded(&mut cmd(), Duration::from_secs(600))?;
    if !out.status.success() {
        bail!(
            "{}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("exit status non-zero")
        );
    }
    let got = count_items(&out.stdout).context("kubectl's output is not a JSON list")?;
    ensure!(got == users, "kubectl listed {got} users, expected {users}");
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let status = cmd().stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        let d = start.elapsed();
        ensure!(status.success(), "kubectl failed on a timed run");
        times.push(d);
    }
    Ok(times)
}

/// Runs the Python peer: the listing loop's own times, and the whole processes' times.
fn python_runs(
    python: &Path,
    dir: &Path,
    ca_file: &Path,
    sim: &Sim,
    users: usize,
    runs: usize,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let script = dir.join("list_users.py");
    std::fs::write(&script, peers::PYTHON_LIST)?;
    let mut times = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = peers::run_bounded(
            Command::new(python)
                .arg(&script)
                .arg(sim.base_url())
                .arg(ca_file)
                .arg(PAGE_SIZE.to_string())
                .env("BENCH_TOKEN", sim.admin_token().expose_secret()),
            Duration::from_secs(600),
        )?;
        whole.push(start.elapsed());
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            bail!("{}", err.lines().last().unwrap_or("exit status non-zero"));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace();
        let count: usize = parts
            .next()
            .and_then(|c| c.parse().ok())
            .context("the Python client printed no count")?;
        let secs: f64 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .context("the Python client printed no time")?;
        ensure!(
            count == users,
            "the Python client listed {count} users, expected {users}"
        );
        times.push(Duration::from_secs_f64(secs));
    }
    Ok((times, whole))
}
