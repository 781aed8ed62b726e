//! Replays the committed fuzz corpora of rancher-api's wire parsers on stable (the three error shapes, the list
//! envelopes), through the same entry functions the fuzz targets call, so a regression the fuzzer once covered
//! fails CI.

#[path = "../../../fuzz/src/api.rs"]
mod entries;

use std::path::PathBuf;

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus of {target} has only {} inputs", files.len());
    for file in &files {
        let data = std::fs::read(file).expect("a corpus input");
        let run = std::panic::catch_unwind(|| entry(&data));
        assert!(run.is_ok(), "{target}: {} panicked (input {:?})", file.display(), String::from_utf8_lossy(&data));
    }
}

#[test]
fn error_shapes_corpus() {
    replay("error_shapes", entries::error_shapes);
}

#[test]
fn list_envelopes_corpus() {
    replay("list_envelopes", entries::list_envelopes);
}
