//! The one printer of runs, shared by local and service mode: what a submit did, a finished run's document and
//! lines, and lists streamed as their items arrive. Both sides of [`crate::commands::backend::Backend`] print
//! through it, so the same run prints the same bytes either way.

use futures::StreamExt;
use rancher_workflows::{ListStream, Registry, RunOutput, Submitted};
use serde_json::{json, Value};

use crate::cli::Format;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;
use crate::text;

/// Prints what a submit did: the result (exit 0), or the pending request (exit 3).
pub fn print_submitted(ctx: &Context, workflow: &str, submitted: Submitted) -> anyhow::Result<Exit> {
    match submitted {
        Submitted::Succeeded { result } => {
            print_result(ctx.format(), &result)?;
            local_grant_note(&result);
            Ok(Exit::Done)
        }
        Submitted::Pending {
            request,
            approvers,
            expires_at,
        } => {
            let doc = json!({"status": "pending", "request": request, "workflow": workflow, "approvers": approvers, "expires_at": expires_at});
            output::data(ctx.format(), &doc, || {
                format!(
                    "waiting for approval: request {request}\napprovers: {}\nexpires:   {expires_at}\nan approver runs: rancherctl approvals approve {request}",
                    text::escape(&approvers.to_string())
                )
            })?;
            Ok(Exit::Pending)
        }
    }
}

/// After a local run made a time-bound grant: nothing revokes it by itself in local mode (the service does), so say
/// what will, at the moment it matters (stderr; the data on stdout is unchanged).
pub fn local_grant_note(out: &RunOutput) {
    if matches!(out.grant, Some(rancher_approval::GrantChange::New(_))) && !out.dry_run {
        output::note(
            "note: in local mode nothing revokes this grant when it is due: run `rancherctl grants expire` from cron (e.g. every minute), or use the approvals service (`rancherctl serve`), which revokes on time",
        );
    }
}

/// Writes a list workflow's items to stdout as they arrive (see [`write_list`]).
pub async fn stream_list(format: Format, mut list: ListStream) -> anyhow::Result<()> {
    let (workflow, noun, columns) = (list.workflow(), list.noun(), list.columns());
    let rows = matches!(format, Format::Table | Format::Csv);
    write_list(format, columns, workflow, noun, async || match list.next().await? {
        Ok(item) => {
            let row = rows.then(|| list.row(&item));
            Some(Ok((item, row)))
        }
        Err(e) => Some(Err(e.to_string())),
    })
    .await
}

/// Writes the items `next` yields (each with its table row when the format needs one) to stdout as they come, in
/// `format` (see [`output::ListWriter`]); a table ends with the summary line (`3 users`). A failure part way (the
/// cause, in words fit for a terminal) leaves the JSON unclosed and is returned: the exit is non-zero.
pub async fn write_list<T: serde::Serialize>(
    format: Format,
    columns: &[&str],
    workflow: &str,
    noun: &str,
    mut next: impl AsyncFnMut() -> Option<Result<(T, Option<Vec<String>>), String>>,
) -> anyhow::Result<()> {
    let mut w = output::ListWriter::new(
        format,
        std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        columns,
    );
    while let Some(got) = next().await {
        match got {
            Ok((item, row)) => w.item(&item, || row.unwrap_or_default())?,
            Err(cause) => {
                let written = w.count();
                w.abort()?;
                return Err(Failure::new(
                    format!("{workflow} stopped after {written} {noun}: {cause}"),
                    "the output is incomplete (JSON output is left without its closing `]`); run it again",
                )
                .into());
            }
        }
    }
    let n = w.count();
    w.finish()?;
    if format == Format::Table {
        output::text(&format!("{n} {noun}"));
    }
    Ok(())
}

/// The JSON document of a finished run: a list workflow prints the bare array of resources; anything else
/// prints `{"status":"succeeded","result":...}`.
pub fn run_document(out: &RunOutput) -> Value {
    if is_bare(out) {
        return out.result.clone();
    }
    let mut doc = json!({"status": "succeeded", "workflow": out.workflow, "summary": out.summary, "dry_run": out.dry_run, "result": out.result});
    if !out.planned.is_empty() {
        doc["planned"] = serde_json::to_value(&out.planned).unwrap_or(Value::Null);
    }
    doc
}

/// Whether a run's document is its bare result (see [`run_document`]): a run that wrote nothing and answered a
/// list of resources, or a report that its workflow says is printed whole.
fn is_bare(out: &RunOutput) -> bool {
    let Some(w) = Registry::builtins().get(&out.workflow) else {
        return false;
    };
    !w.def().writes && !out.dry_run && (out.result.is_array() || w.report_document())
}

/// Lines for people: the table (if any), the planned writes of a dry run, and the summary.
pub fn render_run(out: &RunOutput) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &out.table {
        parts.push(output::table(&t.columns, t.rows.clone()));
    }
    for p in &out.planned {
        let body = p.body.as_ref().map(|b| format!(" {b}")).unwrap_or_default();
        parts.push(format!(
            "would send: {} {}{}",
            p.method,
            text::escape(&p.path),
            text::escape(&body)
        ));
    }
    // The summary may quote the server: one line, escaped.
    let summary = text::escape(&out.summary);
    parts.push(if out.dry_run {
        format!("dry run: {summary}")
    } else {
        summary
    });
    parts.join("\n")
}

/// Prints a finished run in the chosen format.
pub fn print_result(format: Format, out: &RunOutput) -> anyhow::Result<()> {
    if format == Format::Csv {
        if let Some(t) = &out.table {
            let mut stdout = std::io::stdout().lock();
            crate::csv::write(&mut stdout, &t.columns, &t.rows)?;
            return Ok(());
        }
    }
    if is_bare(out) {
        // Printed from the run's own result, not a copy: a report can hold tens of thousands of users.
        return output::data(format, &out.result, || render_run(out));
    }
    output::data(format, &run_document(out), || render_run(out))
}
