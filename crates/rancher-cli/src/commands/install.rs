//! `rancherctl workflows install ID... [--reads]`: several workflows in one command, each installed by
//! [`crate::commands::workflows::change`], here or through the service, with the same policy flags.

use rancher_workflows::{all_workflows, find_workflow, DefaultApproval};

use crate::cli::PolicyArgs;
use crate::commands::backend::Backend;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

/// The reads: workflows that write nothing and run without approval by default.
pub fn reads() -> Vec<&'static str> {
    all_workflows()
        .iter()
        .filter(|w| !w.writes && w.default_approval == DefaultApproval::None)
        .map(|w| w.id)
        .collect()
}

/// The ids to install: those named (each once, unknown ones refused before anything is installed), then with
/// `--reads` every read not in `installed`.
pub fn chosen(ids: &[String], with_reads: bool, installed: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let w = find_workflow(id).ok_or_else(|| crate::commands::workflows::unknown(id))?;
        if !out.iter().any(|o| o == w.id) {
            out.push(w.id.to_string());
        }
    }
    if with_reads {
        for id in reads() {
            if !out.iter().any(|o| o == id) && !installed.iter().any(|i| i == id) {
                out.push(id.to_string());
            }
        }
    }
    if out.is_empty() {
        output::note("every read is already installed");
    }
    Ok(out)
}

/// Runs `install` for each id in turn; one that fails does not stop the others. The exit is 0 when all were
/// installed; else each failure is printed (prefixed with its id) and a summary error names the ones not installed.
pub async fn each(
    ids: &[String],
    mut install: impl AsyncFnMut(String) -> anyhow::Result<Exit>,
) -> anyhow::Result<Exit> {
    if ids.len() == 1 {
        return install(ids[0].clone()).await;
    }
    let mut failed: Vec<&str> = Vec::new();
    for id in ids {
        if let Err(e) = install(id.clone()).await {
            for line in crate::error::report_lines(&e) {
                eprintln!("{}", crate::text::error_line(&format!("{id}: {line}")));
            }
            failed.push(id);
        }
    }
    if failed.is_empty() {
        return Ok(Exit::Done);
    }
    Err(Failure::new(
        format!(
            "{} of {} workflows were not installed: {}",
            failed.len(),
            ids.len(),
            failed.join(", ")
        ),
        "see the error printed for each above; the others are installed",
    )
    .into())
}

/// `workflows install`, in both modes: with `--reads`, the reads not installed yet.
pub async fn install(
    ctx: &Context,
    backend: &Backend,
    ids: &[String],
    with_reads: bool,
    policy: &PolicyArgs,
) -> anyhow::Result<Exit> {
    let installed: Vec<String> = if with_reads {
        backend
            .installations(ctx)
            .await?
            .into_iter()
            .map(|i| i.workflow_id)
            .collect()
    } else {
        Vec::new()
    };
    let ids = chosen(ids, with_reads, &installed)?;
    each(&ids, async |id: String| {
        crate::commands::workflows::change(ctx, backend, &id, policy, true).await
    })
    .await
}
