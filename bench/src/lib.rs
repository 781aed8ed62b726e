//! rancher-bench: the measurements behind `cargo xtask bench` (internal, not published).
//!
//! Everything runs against rancher-sim over real HTTPS on loopback, in one run: (1) listing every user with our
//! typed stream against a transport floor, a parse floor, kubectl and the Python kubernetes client; (2) peak memory
//! streaming vs collecting as the total grows; (3) global role binding creations against injected latency,
//! concurrent vs one at a time, then a count in the simulator; (4) durable approval decisions per second; (5)
//! `rancherctl workflows list` start-up; (6) the simulator's small GETs per second; (7) the approvals service over
//! HTTP: decisions per second from 8 approvers and the pending list's p99 with 10,000 requests stored. [`run`] measures, and
//! [`Report::markdown`] renders the table that `cargo xtask bench` prints and writes to docs/benchmarks.md.
//!
//! ```no_run
//! use rancher_bench::{run, Options};
//!
//! # fn demo() -> anyhow::Result<()> {
//! // Toy sizes: proves every case still runs, judges no speed, writes nothing.
//! let report = run(&Options::quick("target/release/rancher-bench-rss".into()))?;
//! println!("{}", report.markdown());
//! assert!(report.failures.is_empty());
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

pub mod approvals;
pub mod bindings;
pub mod harness;
pub mod list;
pub mod machine;
pub mod memory;
pub mod peers;
pub mod process;
pub mod report;
pub mod review;
pub mod rules;
pub mod server;
pub mod sim_gets;
pub mod startup;
pub mod stats;

pub use report::{Ratio, Report, TargetCheck, Verdict};
pub use stats::{Figure, Unit};

/// How to run the bench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Toy sizes, one run each, no peer installation, no speed verdicts.
    pub quick: bool,
    /// Where temporary files go (approval stores, kubeconfigs); on a real disk, so fsyncs cost what they cost.
    pub work_dir: PathBuf,
    /// Where installed peers live (the Python virtual environment).
    pub peers_dir: PathBuf,
    /// The memory case's child program (`rancher-bench-rss`).
    pub rss_bin: PathBuf,
    /// The `rancherctl` binary for the start-up case (skipped when `None`).
    pub rancherctl: Option<PathBuf>,
    /// Only these cases (1 to 8); all when empty.
    pub only: Vec<u8>,
    /// Compare against kubectl and the Python client (case 1).
    pub peers: bool,
}

impl Options {
    /// A full run with temporary files under the system's temporary directory.
    pub fn full(rss_bin: PathBuf) -> Options {
        let tmp = std::env::temp_dir().join("rancher-bench");
        Options {
            quick: false,
            work_dir: tmp.clone(),
            peers_dir: tmp.join("peers"),
            rss_bin,
            rancherctl: None,
            only: Vec::new(),
            peers: true,
        }
    }

    /// A quick run (toy sizes).
    pub fn quick(rss_bin: PathBuf) -> Options {
        Options {
            quick: true,
            ..Options::full(rss_bin)
        }
    }

    /// Whether case `n` runs.
    pub fn wants(&self, n: u8) -> bool {
        self.only.is_empty() || self.only.contains(&n)
    }

    /// Runs per figure: 5, or 1 when quick.
    pub fn runs(&self) -> usize {
        if self.quick {
            1
        } else {
            5
        }
    }

    fn sizes(&self) -> Sizes {
        if self.quick {
            Sizes {
                list_users: 1_200,
                memory: vec![500, 1_500],
                grb_total: 40,
                grb_sequential: 10,
                grb_latency: Duration::from_millis(1),
                decisions: 20,
                startup_runs: 3,
                gets_duration: Duration::from_millis(200),
                server_decisions: 40,
                server_stored: 200,
                server_gets: 20,
                review: review::ReviewSizes {
                    token_users: 60,
                    tokens: 3_000,
                    review_users: 300,
                    review_bindings: 900,
                    runs: 1,
                },
            }
        } else {
            Sizes {
                list_users: 50_000,
                memory: vec![10_000, 50_000, 100_000],
                grb_total: 2_000,
                grb_sequential: 250,
                grb_latency: Duration::from_millis(10),
                decisions: 2_000,
                startup_runs: 100,
                gets_duration: Duration::from_secs(2),
                server_decisions: 2_000,
                server_stored: 10_000,
                server_gets: 200,
                // Issue 34: ten times the largest token report we know of (155,000 tokens of 1,465 users).
                review: review::ReviewSizes {
                    token_users: 14_650,
                    tokens: 1_550_000,
                    review_users: 100_000,
                    review_bindings: 300_000,
                    runs: 3,
                },
            }
        }
    }
}

/// The sizes of one run.
struct Sizes {
    list_users: usize,
    memory: Vec<usize>,
    grb_total: usize,
    grb_sequential: usize,
    grb_latency: Duration,
    decisions: usize,
    startup_runs: usize,
    gets_duration: Duration,
    server_decisions: usize,
    server_stored: usize,
    server_gets: usize,
    review: review::ReviewSizes,
}

/// Runs every case and judges the targets. A case that fails is recorded in [`Report::failures`] and the others
/// still run.
pub fn run(opts: &Options) -> Result<Report> {
    let sizes = opts.sizes();
    let rt = harness::client_runtime()?;
    let mut report = Report {
        quick: opts.quick,
        machine: Some(machine::Machine::detect()),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        runs: opts.runs(),
        ..Report::default()
    };

    if opts.wants(1) {
        eprintln!("bench: case 1/9: listing users");
        let list = list::run(opts, &rt, sizes.list_users);
        judge_list(&mut report, list);
    }
    if opts.wants(2) {
        eprintln!("bench: case 2/9: memory, streaming vs collecting");
        let memory = memory::run(opts, &sizes.memory);
        judge_memory(&mut report, memory);
    }
    if opts.wants(3) {
        eprintln!("bench: case 3/9: global role binding creations");
        let grb = bindings::run(opts, &rt, sizes.grb_total, sizes.grb_sequential, sizes.grb_latency);
        judge_bindings(&mut report, grb);
    }
    if opts.wants(4) {
        eprintln!("bench: case 4/9: approval decisions");
        let approvals = approvals::run(opts, sizes.decisions);
        judge_approvals(&mut report, approvals);
    }
    if opts.wants(5) {
        eprintln!("bench: case 5/9: rancherctl start-up");
        let startup = match &opts.rancherctl {
            Some(p) if p.is_file() => Some(startup::run(opts, p, sizes.startup_runs)),
            _ => None,
        };
        judge_startup(&mut report, startup);
    }
    if opts.wants(6) {
        eprintln!("bench: case 6/9: simulator GETs");
        let gets = sim_gets::run(opts, &rt, 1_000, sizes.gets_duration);
        judge_gets(&mut report, gets);
    }
    if opts.wants(7) {
        eprintln!("bench: case 7/9: the approvals service over HTTP");
        let server = server::run(
            opts,
            &rt,
            sizes.server_decisions,
            sizes.server_stored,
            sizes.server_gets,
        );
        judge_server(&mut report, server);
    }
    if opts.wants(8) {
        eprintln!("bench: case 8/9: rancherctl run list-users, whole process, vs the Python client");
        match &opts.rancherctl {
            Some(p) if p.is_file() => {
                let install = if opts.quick {
                    peers::Install::Never
                } else {
                    peers::Install::Allowed
                };
                let python = if opts.peers {
                    peers::python(install, &opts.peers_dir)
                } else {
                    Err(anyhow::anyhow!("peers not run (--no-peers)"))
                };
                if let Err(e) = &python {
                    report
                        .notes
                        .push(format!("case 8: the Python kubernetes client skipped: {e:#}"));
                }
                let sizes = if opts.quick { vec![1_200] } else { vec![50_000, 100_000] };
                let runs = if opts.quick { 1 } else { 3 };
                let result = process::run(opts, p, python.as_ref().ok(), &sizes, runs);
                judge_process(&mut report, result);
            }
            _ => report
                .notes
                .push("case 8 not run: no rancherctl binary was given".into()),
        }
    }
    if opts.wants(9) {
        eprintln!("bench: case 9/9: access review and token hygiene");
        let r = match &opts.rancherctl {
            Some(p) if p.is_file() => {
                let install = if opts.quick {
                    peers::Install::Never
                } else {
                    peers::Install::Allowed
                };
                let python = if opts.peers {
                    peers::python(install, &opts.peers_dir)
                } else {
                    Err(anyhow::anyhow!("peers not run (--no-peers)"))
                };
                if let Err(e) = &python {
                    report
                        .notes
                        .push(format!("case 9: the Python kubernetes client skipped: {e:#}"));
                }
                Some(review::run(opts, p, python.as_ref().ok(), sizes.review))
            }
            _ => None,
        };
        judge_review(&mut report, r, sizes.review);
    }
    if opts.wants(10) {
        eprintln!("bench: case 10: approval rule evaluation");
        let n = if opts.quick { 2_000 } else { 200_000 };
        judge_rules(&mut report, rules::run(opts, n));
    }
    if opts.quick {
        for t in report.targets.iter_mut().filter(|t| t.speed) {
            if matches!(t.verdict, Verdict::Met | Verdict::Missed) {
                t.verdict = Verdict::NotJudged;
            }
        }
    }
    Ok(report)
}

fn failed(report: &mut Report, case: u8, target: &str, e: &anyhow::Error) {
    report.failures.push(format!("case {case}: {e:#}"));
    report.targets.push(TargetCheck {
        case,
        target: target.into(),
        measured: "-".into(),
        verdict: Verdict::NotMeasured("the case failed".into()),
        speed: true,
    });
}

fn median_of(report: &Report, key: &str) -> Option<f64> {
    report.figure(key).map(Figure::median_secs)
}

fn judge_list(report: &mut Report, result: Result<list::ListResult>) {
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            return failed(
                report,
                1,
                "list users within 1.1x of the floors, faster than kubectl, 10x the Python client",
                &e,
            )
        }
    };
    report.figures.extend(r.figures);
    report.notes.extend(r.peers.iter().map(|p| format!("peer: {p}")));
    report.notes.extend(r.skipped.iter().cloned());
    let (ours, transport, parse) = (
        median_of(report, "list.ours"),
        median_of(report, "list.transport"),
        median_of(report, "list.parse"),
    );
    if let (Some(o), Some(t), Some(p)) = (ours, transport, parse) {
        let floors = o / (t + p);
        report.ratios.push(Ratio {
            label: "typed stream / (transport floor + parse floor)".into(),
            value: floors,
            suffix: "the floors".into(),
        });
        report.targets.push(TargetCheck {
            case: 1,
            target: "typed stream at most 1.1x the sum of the floors".into(),
            measured: format!(
                "{} ({} s vs {} s + {} s)",
                report::fmt_ratio(floors),
                fmt_s(o),
                fmt_s(t),
                fmt_s(p)
            ),
            verdict: Verdict::of(floors <= 1.1),
            speed: true,
        });
        // Issue 20's aim: decoding costs at most a quarter on top of what the bytes take to arrive.
        let over_transport = o / t;
        report.ratios.push(Ratio {
            label: "typed stream / transport floor".into(),
            value: over_transport,
            suffix: "the transport floor".into(),
        });
        report.targets.push(TargetCheck {
            case: 1,
            target: "typed stream at most 1.25x the transport floor".into(),
            measured: format!(
                "{} ({} s vs {} s)",
                report::fmt_ratio(over_transport),
                fmt_s(o),
                fmt_s(t)
            ),
            verdict: Verdict::of(over_transport <= 1.25),
            speed: true,
        });
        for (key, name, need, target) in [
            ("list.kubectl", "kubectl", 1.0, "faster than kubectl"),
            (
                "list.python",
                "the Python client",
                10.0,
                "at least 10x faster than the Python client",
            ),
        ] {
            match median_of(report, key) {
                Some(peer) => {
                    let x = peer / o;
                    report.ratios.push(Ratio {
                        label: format!("{name} / typed stream"),
                        value: x,
                        suffix: "faster".into(),
                    });
                    report.targets.push(TargetCheck {
                        case: 1,
                        target: target.into(),
                        measured: format!("{} faster ({} s vs {} s)", report::fmt_ratio(x), fmt_s(peer), fmt_s(o)),
                        verdict: Verdict::of(if need > 1.0 { x >= need } else { x > need }),
                        speed: true,
                    });
                }
                None => report.targets.push(TargetCheck {
                    case: 1,
                    target: target.into(),
                    measured: "-".into(),
                    verdict: Verdict::NotMeasured(format!("{name} was not run")),
                    speed: true,
                }),
            }
        }
    }
    if let (Some(py), Some(t)) = (median_of(report, "list.python"), transport) {
        // No client can beat the server: this is the most any client could be ahead of the Python one here.
        report.ratios.push(Ratio {
            label: "ceiling: the Python client / transport floor (a client that parsed for free)".into(),
            value: py / t,
            suffix: "".into(),
        });
    }
    report.notes.push(format!(
        "case 1: {} users, {} per page, {} KiB per page on the wire",
        r.users,
        list::PAGE_SIZE,
        r.page_bytes / 1024
    ));
    report.page_bytes = r.page_bytes;
}

fn fmt_s(x: f64) -> String {
    stats::fmt_num(x)
}

fn judge_memory(report: &mut Report, result: Result<memory::MemoryResult>) {
    let r = match result {
        Ok(r) => r,
        Err(e) => return failed(report, 2, "streaming peak RSS independent of the total", &e),
    };
    report.figures.extend(r.figures);
    let stream: Vec<(usize, f64)> = r
        .sizes
        .iter()
        .filter_map(|n| report.figure(&format!("mem.stream.{n}")).map(|f| (*n, f.median())))
        .collect();
    let collect: Vec<(usize, f64)> = r
        .sizes
        .iter()
        .filter_map(|n| report.figure(&format!("mem.collect.{n}")).map(|f| (*n, f.median())))
        .collect();
    let lo = stream.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let hi = stream.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    let spread = hi - lo;
    // "A couple of pages": two pages as they arrive on the wire.
    let page_bytes = if report.page_bytes > 0 {
        report.page_bytes
    } else {
        300 * 1024
    };
    let allowance = 2.0 * page_bytes as f64 / (1024.0 * 1024.0);
    if let (Some(first), Some(last)) = (stream.first(), stream.last()) {
        report.ratios.push(Ratio {
            label: format!("streaming peak RSS, {} vs {} users", last.0, first.0),
            value: last.1 / first.1,
            suffix: "".into(),
        });
    }
    if let (Some(first), Some(last)) = (collect.first(), collect.last()) {
        report.ratios.push(Ratio {
            label: format!("collecting peak RSS, {} vs {} users", last.0, first.0),
            value: last.1 / first.1,
            suffix: "".into(),
        });
    }
    if let (Some(s), Some(c)) = (stream.last(), collect.last()) {
        report.ratios.push(Ratio {
            label: format!("collecting / streaming peak RSS at {} users", c.0),
            value: c.1 / s.1,
            suffix: "".into(),
        });
    }
    report.targets.push(TargetCheck {
        case: 2,
        target: "streaming peak RSS independent of the total (spread within two pages)".into(),
        measured: format!(
            "spread {spread:.2} MiB over {} (allowance {allowance:.2} MiB)",
            r.sizes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" / ")
        ),
        verdict: Verdict::of(spread <= allowance),
        speed: true,
    });
}

fn judge_bindings(report: &mut Report, result: Result<bindings::BindingsResult>) {
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            return failed(
                report,
                3,
                "concurrent creations at least 20x faster than sequential, no duplicates",
                &e,
            )
        }
    };
    report.figures.extend(r.figures);
    let (Some(conc), Some(seq)) = (median_of(report, "grb.concurrent"), median_of(report, "grb.sequential")) else {
        return;
    };
    let seq_total = seq * r.total as f64 / r.sequential_subset as f64;
    let x = seq_total / conc;
    report.ratios.push(Ratio {
        label: format!(
            "one at a time (extrapolated {} -> {}) / concurrent",
            r.sequential_subset, r.total
        ),
        value: x,
        suffix: "faster".into(),
    });
    report.targets.push(TargetCheck {
        case: 3,
        target: format!("{} creations at least 20x faster than one at a time", r.total),
        measured: format!(
            "{} ({} s vs {} s extrapolated)",
            report::fmt_ratio(x),
            fmt_s(conc),
            fmt_s(seq_total)
        ),
        verdict: Verdict::of(x >= 20.0),
        speed: true,
    });
    let exact =
        r.counts.iter().all(|c| *c == (r.total, r.total)) && r.creates_applied.iter().all(|c| *c == r.total as u64);
    report.targets.push(TargetCheck {
        case: 3,
        target: format!("exactly {} bindings, no duplicates", r.total),
        measured: format!(
            "each run: {} bindings for {} distinct users, {} creates applied",
            r.counts.first().map(|c| c.0).unwrap_or(0),
            r.counts.first().map(|c| c.1).unwrap_or(0),
            r.creates_applied.first().copied().unwrap_or(0)
        ),
        verdict: Verdict::of(exact),
        speed: false,
    });
}

fn judge_approvals(report: &mut Report, result: Result<Vec<Figure>>) {
    match result {
        Ok(figs) => report.figures.extend(figs),
        Err(e) => return failed(report, 4, "at least 1,000 durable decisions per second", &e),
    }
    for (key, what) in [
        ("approvals.full", "SQLite synchronous=FULL (default)"),
        ("approvals.full8", "SQLite synchronous=FULL (default), 8 deciders"),
        ("approvals.normal", "SQLite synchronous=NORMAL"),
        ("approvals.pg1", "PostgreSQL synchronous_commit=on, 1 decider"),
        ("approvals.pg8", "PostgreSQL synchronous_commit=on, 8 deciders"),
    ] {
        if key.starts_with("approvals.pg") && report.figure(key).is_none() {
            report.targets.push(TargetCheck {
                case: 4,
                target: format!("at least 1,000 durable decisions/s, {what}"),
                measured: "-".into(),
                verdict: Verdict::NotMeasured(
                    "no PostgreSQL could be started here (install the `postgresql` package)".into(),
                ),
                speed: true,
            });
        }
        if let Some(f) = report.figure(key) {
            let m = f.median();
            report.targets.push(TargetCheck {
                case: 4,
                target: format!("at least 1,000 durable decisions/s, {what}"),
                measured: format!("{}/s", stats::fmt_num(m)),
                verdict: Verdict::of(m >= 1000.0),
                speed: true,
            });
        }
    }
}

fn judge_rules(report: &mut Report, result: Result<Vec<Figure>>) {
    const TARGET: &str = "at least 100,000 evaluations/s of a 20-rule set, one thread";
    match result {
        Ok(figs) => report.figures.extend(figs),
        Err(e) => return failed(report, 10, TARGET, &e),
    }
    if let Some(f) = report.figure("rules.evaluate") {
        let m = f.median();
        report.targets.push(TargetCheck {
            case: 10,
            target: TARGET.into(),
            measured: format!("{}/s", stats::fmt_num(m)),
            verdict: Verdict::of(m >= 100_000.0),
            speed: true,
        });
    }
}

fn judge_server(report: &mut Report, result: Result<Vec<Figure>>) {
    match result {
        Ok(figs) => report.figures.extend(figs),
        Err(e) => return failed(report, 7, "at least 500 decisions/s through the HTTP API", &e),
    }
    for (key, what) in [
        ("server.decisions", "synchronous=FULL (default)"),
        ("server.decisions.normal", "synchronous=NORMAL"),
    ] {
        if let Some(f) = report.figure(key) {
            let m = f.median();
            report.targets.push(TargetCheck {
                case: 7,
                target: format!("at least 500 decisions/s through the service's HTTP API, 8 approvers, {what}"),
                measured: format!("{}/s", stats::fmt_num(m)),
                verdict: Verdict::of(m >= 500.0),
                speed: true,
            });
        }
    }
    if let Some(f) = report.figure("server.pending_p99") {
        let m = f.median();
        report.targets.push(TargetCheck {
            case: 7,
            target: "pending list p99 under 50 ms with 10,000 requests stored".into(),
            measured: format!("{} ms", stats::fmt_num(m)),
            verdict: Verdict::of(m < 50.0),
            speed: true,
        });
    }
}

fn judge_startup(report: &mut Report, result: Option<Result<Figure>>) {
    let target = "`rancherctl workflows list` under 20 ms";
    match result {
        None => report.targets.push(TargetCheck {
            case: 5,
            target: target.into(),
            measured: "-".into(),
            verdict: Verdict::NotMeasured("no rancherctl binary was given".into()),
            speed: true,
        }),
        Some(Err(e)) => failed(report, 5, target, &e),
        Some(Ok(f)) => {
            let m = f.median();
            report.targets.push(TargetCheck {
                case: 5,
                target: target.into(),
                measured: format!("{} ms median", stats::fmt_num(m)),
                verdict: Verdict::of(m < 20.0),
                speed: true,
            });
            report.figures.push(f);
        }
    }
}

fn judge_gets(report: &mut Report, result: Result<Figure>) {
    match result {
        Err(e) => failed(report, 6, "at least 10,000 small GETs/s", &e),
        Ok(f) => {
            let m = f.median();
            report.targets.push(TargetCheck {
                case: 6,
                target: "simulator: at least 10,000 small GETs/s".into(),
                measured: format!("{}/s", stats::fmt_num(m)),
                verdict: Verdict::of(m >= 10_000.0),
                speed: true,
            });
            report.figures.push(f);
        }
    }
}

fn judge_review(report: &mut Report, result: Option<Result<review::ReviewResult>>, sizes: review::ReviewSizes) {
    let thousands = |n: usize| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let scale = format!(
        "{} tokens / {} users",
        thousands(sizes.tokens),
        thousands(sizes.token_users)
    );
    let targets = [
        (
            "review.seed",
            format!("simulator seeds {scale} in under 10 s"),
            10.0,
            "s",
            true,
        ),
        (
            "review.token_report",
            format!("`token-report` over {scale} under 10 s end to end"),
            10.0,
            "s",
            true,
        ),
        (
            "review.token_report_rss",
            "`token-report` peak RSS at most 64 MiB".to_string(),
            64.0,
            "MiB",
            true, // memory at 1.55 M tokens: not judged on a quick run's toy sizes
        ),
        (
            "review.cleanup",
            format!("`cleanup-tokens` over {scale} (filed, approved, run) under 10 s end to end"),
            10.0,
            "s",
            true,
        ),
        (
            "review.cleanup_rss",
            "`cleanup-tokens` peak RSS at most 64 MiB".to_string(),
            64.0,
            "MiB",
            true, // memory at 1.55 M tokens: not judged on a quick run's toy sizes
        ),
        (
            "review.access_review",
            format!(
                "access-review over {} users / {} bindings (global, cluster, project; a tenth through groups) under 5 s",
                thousands(sizes.review_users),
                thousands(sizes.review_bindings)
            ),
            5.0,
            "s",
            true,
        ),
        (
            "review.access_review_rss",
            "access-review peak RSS at most 128 MiB".to_string(),
            128.0,
            "MiB",
            true, // memory at 100,000 users: not judged on a quick run's toy sizes
        ),
    ];
    let r = match result {
        None => {
            for (_, t, _, _, speed) in targets {
                report.targets.push(TargetCheck {
                    case: 9,
                    target: t,
                    measured: "-".into(),
                    verdict: Verdict::NotMeasured("no rancherctl binary was given".into()),
                    speed,
                });
            }
            return;
        }
        Some(Err(e)) => return failed(report, 9, "access review and token hygiene", &e),
        Some(Ok(r)) => r,
    };
    for (key, target, limit, unit, speed) in targets {
        if let Some(f) = r.figures.iter().find(|f| f.key == key) {
            let (lo, m, hi) = (f.min(), f.median(), f.max());
            // A memory target holds at every run; a time target at the median.
            let ok = if speed { m <= limit } else { hi <= limit };
            report.targets.push(TargetCheck {
                case: 9,
                target,
                measured: format!(
                    "{} / {} / {} {unit} (min / median / max)",
                    stats::fmt_num(lo),
                    stats::fmt_num(m),
                    stats::fmt_num(hi)
                ),
                verdict: Verdict::of(ok),
                speed,
            });
        }
    }
    // The review's memory grows with the bindings' index, not with the users: at most twice a tenth's.
    let peak = |key: &str| r.figures.iter().find(|f| f.key == key).map(Figure::max);
    if let (Some(full), Some(tenth)) = (peak("review.access_review_rss"), peak("review.access_review_tenth_rss")) {
        let ratio = full / tenth;
        report.targets.push(TargetCheck {
            case: 9,
            target: format!(
                "access-review peak RSS at {} users within 2x of {} users",
                thousands(sizes.review_users),
                thousands(sizes.review_users / 10)
            ),
            measured: format!(
                "{}x ({} / {} MiB, the max of each)",
                stats::fmt_num(ratio),
                stats::fmt_num(full),
                stats::fmt_num(tenth)
            ),
            verdict: Verdict::of(ratio <= 2.0),
            speed: true,
        });
    }
    let ours = r
        .figures
        .iter()
        .find(|f| f.key == "review.token_report")
        .map(Figure::median);
    for (key, name) in [
        ("review.python", "the Python client"),
        ("review.kubectl", "kubectl (names only)"),
    ] {
        if let (Some(o), Some(p)) = (ours, r.figures.iter().find(|f| f.key == key).map(Figure::median)) {
            report.ratios.push(Ratio {
                label: format!("{name} / `rancherctl run token-report`, whole process"),
                value: p / o,
                suffix: "faster".into(),
            });
        }
    }
    report.notes.extend(r.notes);
    report.figures.extend(r.figures);
}

fn judge_process(report: &mut Report, result: Result<process::ProcessResult>) {
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            return failed(
                report,
                8,
                "`rancherctl run list-users` peak RSS at most 64 MiB, flat",
                &e,
            )
        }
    };
    report.figures.extend(r.figures.iter().cloned());
    let med = |k: &str| r.figures.iter().find(|f| f.key == k).map(Figure::median);
    for format in ["json", "table"] {
        let peaks: Vec<(usize, f64)> = r
            .sizes
            .iter()
            .filter_map(|n| med(&format!("proc.rancherctl.{format}.{n}.rss")).map(|m| (*n, m)))
            .collect();
        if let (Some(first), Some(last)) = (peaks.first(), peaks.last()) {
            if peaks.len() > 1 {
                report.ratios.push(Ratio {
                    label: format!(
                        "`rancherctl run list-users -o {format}` peak RSS, {} vs {} users",
                        last.0, first.0
                    ),
                    value: last.1 / first.1,
                    suffix: String::new(),
                });
            }
        }
        if let Some(worst) = peaks.iter().map(|p| p.1).reduce(f64::max) {
            let shown: Vec<String> = peaks.iter().map(|(n, m)| format!("{m:.1} MiB at {n}")).collect();
            report.targets.push(TargetCheck {
                case: 8,
                target: format!("`rancherctl run list-users -o {format}` peak RSS at most 64 MiB at every size"),
                measured: shown.join(", "),
                verdict: Verdict::of(worst <= 64.0),
                speed: false,
            });
        }
        for n in &r.sizes {
            let (Some(ours), Some(py)) = (
                med(&format!("proc.rancherctl.{format}.{n}.time")),
                med(&format!("proc.python.{format}.{n}.time")),
            ) else {
                continue;
            };
            let x = py / ours;
            report.ratios.push(Ratio {
                label: format!("Python client / rancherctl, -o {format}, {n} users, whole process"),
                value: x,
                suffix: "faster".into(),
            });
            report.targets.push(TargetCheck {
                case: 8,
                target: format!(
                    "`rancherctl run list-users -o {format}` at least 1.5x faster than the Python client, {n} users"
                ),
                measured: format!("{x:.2}x ({} s vs {} s)", fmt_s(py), fmt_s(ours)),
                verdict: Verdict::of(x >= 1.5),
                speed: true,
            });
        }
    }
}
