//! `cargo xtask codegen`: the endpoint list -> `crates/rancher-api/src/generated/` and `docs/endpoints.md`.

pub mod model;
pub mod render;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Renders every generated file from the endpoint folder under `root`.
pub fn generate(root: &Path) -> Result<Vec<(String, String)>> {
    let model = model::Model::load(&root.join("crates/rancher-api/endpoints"))?;
    render::render_all(&model)
}

/// Files whose contents on disk differ from what the endpoint list generates.
pub fn stale_files(root: &Path) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    for (rel, want) in generate(root)? {
        let have = std::fs::read_to_string(root.join(&rel)).unwrap_or_default();
        if have != want {
            stale.push(rel);
        }
    }
    Ok(stale)
}

/// Writes (or, with `check`, only compares) the generated files.
pub fn run(root: &Path, check: bool) -> Result<()> {
    if check {
        let stale = stale_files(root)?;
        if !stale.is_empty() {
            bail!(
                "generated code is stale: {}\nthe endpoint list changed without regenerating; run `cargo xtask codegen` and commit the result",
                stale.join(", ")
            );
        }
        println!("generated code is up to date");
        return Ok(());
    }
    for (rel, contents) in generate(root)? {
        let path = root.join(&rel);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(contents.as_str()) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {rel}"))?;
        println!("wrote {rel}");
    }
    Ok(())
}
