//! Replays a committed corpus (`fuzz/corpus/<target>/`) through an entry function on stable; the crates' test
//! suites include this file, so a regression the fuzzer once covered fails CI.

use std::path::{Path, PathBuf};

/// Runs every input of `fuzz/corpus/<target>` through `entry`; panics naming the first input that panics.
pub fn replay(fuzz_dir: &Path, target: &str, entry: fn(&[u8])) {
    let dir = fuzz_dir.join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "the corpus of {target} has only {} inputs",
        files.len()
    );
    for file in &files {
        let data = std::fs::read(file).expect("a corpus input");
        let run = std::panic::catch_unwind(|| entry(&data));
        assert!(
            run.is_ok(),
            "{target}: {} panicked (input {:?})",
            file.display(),
            String::from_utf8_lossy(&data)
        );
    }
}
