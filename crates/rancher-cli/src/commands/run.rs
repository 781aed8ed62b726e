//! `rancherctl run WORKFLOW-ID`: run now, or file an approval request and exit 3.

use futures::StreamExt;
use rancher_workflows::{find_workflow, inputs_from_pairs, ListStream, RunOutput, Submitted};
use serde_json::{json, Value};

use crate::cli::{Format, RunArgs};
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;
use crate::text;

/// Splits `key=value` pairs (from `--input` / `--param`).
pub fn pairs<'a>(flag: &str, items: &'a [String]) -> anyhow::Result<Vec<(&'a str, &'a str)>> {
    items
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim(), v))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    Failure::new(
                        format!("--{flag} `{p}` is not key=value"),
                        format!("write e.g. --{flag} user=alice"),
                    )
                    .into()
                })
        })
        .collect()
}

/// Runs a workflow.
pub async fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<Exit> {
    let inputs = inputs_from_pairs(pairs("input", &args.inputs)?);
    submit(ctx, &args.workflow, inputs, args.reason, args.dry_run).await
}

/// Runs a workflow with inputs as a JSON object (for commands that build them), or files an approval request and
/// exits 3.
pub async fn submit(
    ctx: &Context,
    workflow: &str,
    inputs: Value,
    reason: Option<String>,
    dry_run: bool,
) -> anyhow::Result<Exit> {
    if let Some(c) = crate::commands::remote::client(ctx)? {
        return crate::commands::remote::submit(ctx, &c, workflow, inputs, reason, dry_run).await;
    }
    let w = find_workflow(workflow).ok_or_else(|| crate::commands::workflows::unknown(workflow))?;
    if read_only_list(w, &inputs, dry_run) {
        // A list reads with the caller's own rights and needs no approval, installed or not: it is streamed at once,
        // knowing only the server's version, and touches no approval store.
        let session = ctx.read_session().await?;
        let rows = matches!(ctx.format(), Format::Table | Format::Csv);
        if let Some(list) = rancher_workflows::Exec::new(&session, false)
            .stream_list(w.id, rows)
            .await?
        {
            stream_list(ctx.format(), list).await?;
            return Ok(Exit::Done);
        }
    }
    let session = ctx.session().await?;
    let runner = ctx.runner().await?;
    if uninstalled_read(&runner, w).await? {
        return run_read_at_once(ctx, &session, w, &inputs, dry_run).await;
    }
    let progress = output::Progress::spinner(format!("running {}", w.id));
    // A list writes nothing: its dry run is the run itself, streamed the same way.
    if let Some(list) = runner
        .open_list(
            &session,
            w.id,
            &inputs,
            matches!(ctx.format(), Format::Table | Format::Csv),
        )
        .await?
    {
        drop(progress);
        stream_list(ctx.format(), list).await?;
        return Ok(Exit::Done);
    }
    let submitted = runner.submit(&session, w.id, inputs, reason, dry_run).await?;
    drop(progress);
    print_submitted(ctx, w.id, submitted)
}

/// Whether a run of `w` is a built-in list that only reads: no inputs, not a dry run (a dry run of a list prints the
/// run document), and nothing written.
pub fn read_only_list(w: &rancher_workflows::WorkflowDef, inputs: &Value, dry_run: bool) -> bool {
    !w.writes
        && !dry_run
        && w.default_approval == rancher_workflows::DefaultApproval::None
        && rancher_workflows::LIST_WORKFLOWS.contains(&w.id)
        && inputs.as_object().is_none_or(|o| o.is_empty())
}

/// Whether `w` is a read (it writes nothing and needs no approval by default) that is not installed. Locally such a
/// read runs at once with the caller's own rights, by `run` as by its dedicated command (`access-control status`,
/// `identities search`); installed, its policy applies. Through a service every workflow must be installed there.
pub async fn uninstalled_read(
    runner: &rancher_workflows::Runner,
    w: &rancher_workflows::WorkflowDef,
) -> anyhow::Result<bool> {
    if w.writes || w.default_approval != rancher_workflows::DefaultApproval::None {
        return Ok(false);
    }
    Ok(runner.installation(w.id).await?.is_none())
}

/// Runs an uninstalled read at once (see [`uninstalled_read`]); a list streams as it does when installed.
pub async fn run_read_at_once(
    ctx: &Context,
    session: &rancher_workflows::Session,
    w: &rancher_workflows::WorkflowDef,
    inputs: &Value,
    dry_run: bool,
) -> anyhow::Result<Exit> {
    let empty = inputs.as_object().is_none_or(|o| o.is_empty());
    if empty && !dry_run {
        if let Some(list) = rancher_workflows::Exec::new(session, false)
            .stream_list(w.id, matches!(ctx.format(), Format::Table | Format::Csv))
            .await?
        {
            stream_list(ctx.format(), list).await?;
            return Ok(Exit::Done);
        }
    }
    let progress = output::Progress::spinner(format!("running {}", w.id));
    let out = rancher_workflows::Exec::new(session, dry_run)
        .with_progress(output::Stages::handle())
        .run(w, inputs)
        .await?;
    drop(progress);
    print_result(ctx.format(), &out)?;
    Ok(Exit::Done)
}

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
    let is_list = find_workflow(&out.workflow).is_some_and(|w| !w.writes)
        && (out.result.is_array() || rancher_workflows::review::REPORT_DOCUMENTS.contains(&out.workflow.as_str()));
    if is_list && !out.dry_run {
        return out.result.clone();
    }
    let mut doc = json!({"status": "succeeded", "workflow": out.workflow, "summary": out.summary, "dry_run": out.dry_run, "result": out.result});
    if !out.planned.is_empty() {
        doc["planned"] = serde_json::to_value(&out.planned).unwrap_or(Value::Null);
    }
    doc
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
    output::data(format, &run_document(out), || render_run(out))
}
