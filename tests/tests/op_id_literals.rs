//! No operation-id string literal above rancher-api: the layers above name operations through the generated
//! typed requests and handles, or the generated constants (`rancher_api::ids::...`), so a typo is a compile error,
//! not a run-time one. Test code (after a file's first `#[cfg(test)]`) may spell ids as a user would type them.

use std::path::{Path, PathBuf};

/// Where a literal is still built on purpose: nowhere (the 1.x auth-provider config operations are a match over
/// the typed requests, one per provider).
const ALLOWED: &[(&str, &str)] = &[];

/// The prefixes of every operation id of the endpoint list, as they would open a string literal.
const PREFIXES: &[&str] = &["\"rk.", "\"v3.", "\"v1.", "\"public."];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every non-comment line of the non-test code of `krates` (before a file's first `#[cfg(test)]`), with its
/// workspace-relative path and line number.
fn code_lines(krates: &[&str]) -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace");
    let mut files = Vec::new();
    for krate in krates {
        sources(&root.join("crates").join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 20, "the sources were found");
    // Files that are test modules as a whole (`#[cfg(test)] mod name;` in their parent) are test code too.
    let mut test_modules = std::collections::HashSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let dir = if matches!(stem, "lib" | "main" | "mod") {
            file.parent().expect("a directory").to_path_buf()
        } else {
            file.with_extension("")
        };
        for pair in lines.windows(2) {
            if pair[0] == "#[cfg(test)]" {
                if let Some(name) = pair[1].strip_prefix("mod ").and_then(|m| m.strip_suffix(';')) {
                    test_modules.insert(dir.join(format!("{name}.rs")));
                    test_modules.insert(dir.join(name).join("mod.rs"));
                }
            }
        }
    }
    let mut out = Vec::new();
    for file in files.iter().filter(|f| !test_modules.contains(*f)) {
        let text = std::fs::read_to_string(file).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let rel = file
            .strip_prefix(root)
            .expect("under the workspace")
            .to_string_lossy()
            .replace('\\', "/");
        for (n, line) in code.lines().enumerate() {
            if !line.trim_start().starts_with("//") {
                out.push((rel.clone(), n + 1, line.to_string()));
            }
        }
    }
    out
}

#[test]
fn no_operation_id_literals_above_rancher_api() {
    let found: Vec<String> = code_lines(&[
        "rancher-auth",
        "rancher-approval",
        "rancher-workflows",
        "rancher-server",
        "rancher-cli",
    ])
    .into_iter()
    .filter(|(rel, _, line)| {
        PREFIXES.iter().any(|p| line.contains(p)) && !ALLOWED.iter().any(|(f, s)| f == rel && line.contains(s))
    })
    .map(|(rel, n, line)| format!("{rel}:{n}: {}", line.trim()))
    .collect();
    assert!(
        found.is_empty(),
        "operation ids spelled as literals (use the typed requests or rancher_api::ids):\n{}",
        found.join("\n")
    );
}

/// The layers above rancher-api send the generated typed requests; only the two places where the user picks the
/// operation at run time go through the untyped `call`: the generic "Rancher API request" workflow
/// (`builtins/api.rs`, through the executor's untyped write in `exec.rs`, which nothing else calls) and
/// `rancherctl api call`.
const UNTYPED_ALLOWED: &[&str] = &[
    "crates/rancher-workflows/src/builtins/api.rs",
    "crates/rancher-workflows/src/exec.rs",
    "crates/rancher-cli/src/commands/api.rs",
];

#[test]
fn the_layers_above_rancher_api_send_typed_requests_only() {
    let found: Vec<String> = code_lines(&["rancher-auth", "rancher-workflows", "rancher-server", "rancher-cli"])
        .into_iter()
        .filter(|(rel, _, line)| {
            [".call(", ".call_stream(", "write_masked("]
                .iter()
                .any(|p| line.contains(p))
                && !UNTYPED_ALLOWED.contains(&rel.as_str())
        })
        .map(|(rel, n, line)| format!("{rel}:{n}: {}", line.trim()))
        .collect();
    assert!(
        found.is_empty(),
        "untyped calls outside the generic API request (use rancher_api::requests::* and Client::send/stream):\n{}",
        found.join("\n")
    );
}
