//! `policies plan|apply|export`: the rules installed in the store (local mode) or the service (`--server`).

use std::collections::BTreeMap;
use std::path::Path;

use rancher_approval::rules::files;
use rancher_approval::rules::installed::{self, Plan};
use serde::Serialize;
use serde_json::json;

use crate::commands::backend::{failure, Backend};
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

/// A runtime for the commands that read the store or the service.
pub fn files_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// The installed files and their hash, from the local store or the service; `None` when none were applied.
async fn installed_files(
    ctx: &Context,
    backend: &Backend,
) -> anyhow::Result<Option<(String, BTreeMap<String, String>)>> {
    match backend {
        Backend::Local => {
            let Some(store) = ctx.existing_store().await? else {
                return Ok(None);
            };
            let found = installed::installed(store.as_ref(), chrono::Utc::now())
                .await
                .map_err(|e| Failure::new(e.to_string(), "see `rancherctl approvals audit` for who applied what"))?;
            Ok(found.map(|(record, _)| (record.hash, record.files)))
        }
        Backend::Service(c) => Ok(c
            .installed_policies()
            .await
            .map_err(failure)?
            .map(|v| (v.hash, v.files))),
    }
}

fn read(dir: &Path) -> anyhow::Result<(BTreeMap<String, String>, rancher_approval::rules::RuleSet)> {
    let invalid = |e: rancher_approval::rules::LoadError| -> anyhow::Error {
        Failure::new(
            format!("the policy files are not valid: {e}"),
            "fix the rule named above; `rancherctl policies check -f DIR` checks them",
        )
        .into()
    };
    let texts = files::read_files(dir).map_err(invalid)?;
    let set =
        rancher_approval::rules::RuleSet::load(files::spec_of_files(&texts).map_err(invalid)?).map_err(invalid)?;
    Ok((texts, set))
}

async fn plan_of(ctx: &Context, backend: &Backend, dir: &Path) -> anyhow::Result<(BTreeMap<String, String>, Plan)> {
    let (texts, set) = read(dir)?;
    let old = match installed_files(ctx, backend).await? {
        Some((_, old_files)) => Some(files::spec_of_files(&old_files).map_err(|e| {
            Failure::new(
                format!("the installed policies cannot be read: {e}"),
                "apply a valid policy directory with `rancherctl policies apply -f DIR`",
            )
        })?),
        None => None,
    };
    Ok((texts, installed::plan(old.as_ref(), set.spec())))
}

fn plan_text(p: &Plan) -> String {
    if p.is_empty() {
        return format!("no change: rule set {} is installed", p.new_hash);
    }
    let mut lines = Vec::new();
    for id in &p.added {
        lines.push(format!("+ {}", id));
    }
    for id in &p.removed {
        lines.push(format!("- {}", id));
    }
    for id in &p.changed {
        lines.push(format!("~ {}", id));
    }
    if p.reordered {
        lines.push("~ the order of the rules changes".into());
    }
    if let Some((old, new)) = &p.time_zone {
        let z = |z: &Option<String>| z.clone().unwrap_or_else(|| "UTC".to_string());
        lines.push(format!("~ time_zone: {} -> {}", z(old), z(new)));
    }
    lines.push(format!(
        "rule set {} -> {} ({} added, {} removed, {} changed)",
        p.old_hash.as_deref().unwrap_or("(none installed)"),
        p.new_hash,
        p.added.len(),
        p.removed.len(),
        p.changed.len()
    ));
    lines.join("\n")
}

/// `policies plan -f DIR`.
pub async fn plan(ctx: &Context, dir: &Path) -> anyhow::Result<Exit> {
    let backend = Backend::choose(ctx)?;
    let (_, p) = plan_of(ctx, &backend, dir).await?;
    output::data(ctx.format(), &p, || plan_text(&p))?;
    Ok(Exit::Done)
}

#[derive(Serialize)]
struct Unchanged<'a> {
    changed: bool,
    hash: &'a str,
}

/// `policies apply -f DIR`: files `apply-policies` (exit 3 while it waits for an admin), or says that nothing
/// would change.
pub async fn apply(ctx: &Context, dir: &Path, reason: Option<String>) -> anyhow::Result<Exit> {
    let backend = Backend::choose(ctx)?;
    let (texts, p) = plan_of(ctx, &backend, dir).await?;
    if p.is_empty() {
        let said = Unchanged {
            changed: false,
            hash: &p.new_hash,
        };
        output::data(ctx.format(), &said, || {
            format!(
                "no change: rule set {} is installed already; nothing was filed",
                p.new_hash
            )
        })?;
        return Ok(Exit::Done);
    }
    if matches!(ctx.format(), crate::cli::Format::Table) {
        eprintln!("{}", crate::text::escape_lines(&plan_text(&p)));
    }
    let inputs = json!({"files": texts, "hash": p.new_hash});
    backend
        .submit(
            ctx,
            rancher_workflows::apply_policies::APPLY_POLICIES,
            inputs,
            reason,
            false,
        )
        .await
}

#[derive(Serialize)]
struct Exported<'a> {
    hash: &'a str,
    files: Vec<&'a str>,
    dir: String,
}

/// `policies export -f DIR`.
pub async fn export(ctx: &Context, dir: &Path) -> anyhow::Result<Exit> {
    let backend = Backend::choose(ctx)?;
    let Some((hash, texts)) = installed_files(ctx, &backend).await? else {
        return Err(Failure::new(
            "no policies are installed, so there is nothing to export",
            "install some with `rancherctl policies apply -f DIR`",
        )
        .into());
    };
    files::write_files(dir, &texts)
        .map_err(|e| Failure::new(format!("exporting failed: {e}"), "pass a directory you can write"))?;
    let said = Exported {
        hash: &hash,
        files: texts.keys().map(String::as_str).collect(),
        dir: dir.display().to_string(),
    };
    output::data(ctx.format(), &said, || {
        format!(
            "wrote {} policy file(s) of rule set {} into {}",
            said.files.len(),
            hash,
            said.dir
        )
    })?;
    Ok(Exit::Done)
}
