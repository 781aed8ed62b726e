//! The quick bench runs every case end to end (toy sizes) so `cargo test --workspace` proves `cargo xtask bench`
//! still works. Timings are never asserted: machines are noisy.

use std::path::PathBuf;

use rancher_bench::{run, Options, Verdict};

#[test]
fn quick_bench_runs_every_case() {
    let rss = PathBuf::from(env!("CARGO_BIN_EXE_rancher-bench-rss"));
    let mut opts = Options::quick(rss.clone());
    let work = tempfile::tempdir().expect("temporary directory");
    opts.work_dir = work.path().to_path_buf();
    opts.peers_dir = work.path().join("peers");
    // rancherctl is there when the workspace was built (cargo test --workspace); otherwise that case is skipped.
    let rancherctl = rss.with_file_name(format!("rancherctl{}", std::env::consts::EXE_SUFFIX));
    opts.rancherctl = rancherctl.is_file().then_some(rancherctl);

    let with_rancherctl = opts.rancherctl.is_some();
    let report = run(&opts).expect("the bench runs");
    if with_rancherctl {
        for key in [
            "review.seed",
            "review.token_report",
            "review.token_report_rss",
            "review.access_review",
        ] {
            assert!(
                report.figure(key).is_some_and(|f| !f.samples.is_empty()),
                "no figure {key}"
            );
        }
    }
    assert!(report.failures.is_empty(), "cases failed: {:?}", report.failures);
    for key in [
        "list.ours",
        "list.transport",
        "list.parse",
        "grb.concurrent",
        "grb.sequential",
        "approvals.full",
        "rules.evaluate",
        "approvals.normal",
        "sim.gets",
    ] {
        assert!(
            report.figure(key).is_some_and(|f| !f.samples.is_empty()),
            "no figure {key}"
        );
    }
    assert!(report.figures.iter().any(|f| f.key.starts_with("mem.stream.")));
    assert!(report.figures.iter().any(|f| f.key.starts_with("mem.collect.")));
    // Speed is not judged on toy sizes; correctness (exactly one binding per user) is.
    for t in &report.targets {
        assert!(
            !matches!(t.verdict, Verdict::Met | Verdict::Missed) || !t.speed,
            "quick run judged speed: {t:?}"
        );
        if !t.speed {
            assert_eq!(t.verdict, Verdict::Met, "{t:?}");
        }
    }
    let md = report.markdown();
    assert!(
        md.contains("| case | measurement |") && md.contains("Quick run"),
        "{md}"
    );
}
