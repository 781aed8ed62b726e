//! `rancherctl api list` and `rancherctl api OPERATION-ID`: any operation of the endpoint list, directly.
//!
//! Writes sent here go straight to the server without approval; the `rancher-api-request` workflow
//! (`rancherctl run rancher-api-request ...`) puts writes behind the installer's approval.

use std::io::Read;

use anyhow::Context as _;
use futures::StreamExt;
use rancher_api::spec::Pagination;
use rancher_api::{find_operation, operations};
use serde_json::{json, Value};

use crate::cli::ApiArgs;
use crate::commands::run::pairs;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

/// Every operation with its method and path.
pub fn list(ctx: &Context) -> anyhow::Result<Exit> {
    let docs: Vec<Value> = operations()
        .iter()
        .map(|o| {
            json!({
                "id": o.id,
                "surface": o.surface.as_str(),
                "method": o.method.as_str(),
                "path": o.path,
                "mutating": o.mutating,
                "paginated": o.pagination != Pagination::None,
                "summary": o.summary,
            })
        })
        .collect();
    output::data(ctx.format(), &docs, || {
        output::table(
            &["ID", "METHOD", "PATH", "WRITES", "SUMMARY"],
            operations().iter().map(|o| {
                vec![o.id.into(), o.method.as_str().into(), o.path.into(), if o.mutating { "yes".into() } else { String::new() }, o.summary.into()]
            }),
        )
    })?;
    Ok(Exit::Done)
}

/// One call. The answer is printed as the server sent it (`-o table` prints it as JSON too); with `--all`, a
/// paginated operation streams every page and prints one array of every item.
pub async fn call(ctx: &Context, args: ApiArgs) -> anyhow::Result<Exit> {
    let Some(id) = args.operation.as_deref() else {
        return Err(Failure::new("no operation given", "run `rancherctl api list` for the ids, then `rancherctl api ID --param k=v`").into());
    };
    let spec = find_operation(id).ok_or_else(|| {
        let hint = rancher_api::spec::suggest_operation(id).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
        Failure::new(format!("unknown operation `{id}`"), format!("{hint}`rancherctl api list` shows every id"))
    })?;
    let params = pairs("param", &args.params)?;
    let body = match &args.body {
        None => None,
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("reading the body from stdin")?;
                s
            } else {
                std::fs::read_to_string(path).with_context(|| format!("reading the body file {}", path.display()))?
            };
            Some(serde_json::from_str::<Value>(&text).map_err(|e| Failure::new(format!("the body is not JSON: {e}"), "pass a file holding one JSON document"))?)
        }
    };
    if spec.mutating {
        output::warn(format!("{id} changes state on the server and is sent without approval"));
    }
    let session = ctx.session().await?;
    let client = &session.client;
    if args.all {
        if spec.pagination == Pagination::None {
            return Err(Failure::new(format!("{id} does not page, so --all does not apply"), "drop --all").into());
        }
        stream_all(ctx, id, client.call_stream(id, &params)?).await?;
        return Ok(Exit::Done);
    }
    let answer = client.call(id, &params, body).await?;
    output::document(ctx.format(), &answer)?;
    Ok(Exit::Done)
}

/// Writes every item of every page to stdout as it arrives: one JSON array (`-o table` too) or one YAML
/// sequence. A failure part way leaves the JSON unclosed and is returned (the exit is non-zero).
async fn stream_all(ctx: &Context, id: &str, mut stream: rancher_api::ItemStream<Value>) -> anyhow::Result<()> {
    let progress = output::Progress::spinner(format!("{id}: listing"));
    let stdout = std::io::stdout();
    let mut w = output::ListWriter::new(ctx.format(), std::io::BufWriter::with_capacity(64 * 1024, stdout), &[]);
    while let Some(item) = stream.next().await {
        match item {
            Ok(item) => w.item(&item, Vec::new)?,
            Err(e) => {
                let written = w.count();
                w.abort()?;
                drop(progress);
                return Err(Failure::new(
                    format!("{id} stopped after {written} items: {e}"),
                    "the output is incomplete (JSON output is left without its closing `]`); run it again",
                )
                .into());
            }
        }
        if w.count() % 500 == 0 {
            progress.set(format!("{id}: {} items", w.count()));
        }
    }
    drop(progress);
    w.finish()
}
