//! `rancherctl api list` and `rancherctl api OPERATION-ID`: any operation of the endpoint list, directly.
//!
//! Writes are refused unless confirmed with `--yes`; a confirmed write goes straight to the server without
//! approval, recorded in the local audit log as a `direct_write` before it is sent. With a service (`--server`)
//! they are refused: the service keeps the log, and `rancherctl run rancher-api-request ...` files the write there
//! behind the installer's approval.

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
                vec![
                    o.id.into(),
                    o.method.as_str().into(),
                    o.path.into(),
                    if o.mutating { "yes".into() } else { String::new() },
                    o.summary.into(),
                ]
            }),
        )
    })?;
    Ok(Exit::Done)
}

/// One call. The answer is printed as the server sent it (`-o table` prints it as JSON too); with `--all`, a
/// paginated operation streams every page and prints one array of every item.
pub async fn call(ctx: &Context, args: ApiArgs) -> anyhow::Result<Exit> {
    let Some(id) = args.operation.as_deref() else {
        return Err(Failure::new(
            "no operation given",
            "run `rancherctl api list` for the ids, then `rancherctl api ID --param k=v`",
        )
        .into());
    };
    let spec = find_operation(id).ok_or_else(|| {
        let hint = rancher_api::spec::suggest_operation(id)
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        Failure::new(
            format!("unknown operation `{id}`"),
            format!("{hint}`rancherctl api list` shows every id"),
        )
    })?;
    let params = pairs("param", &args.params)?;
    let body = match &args.body {
        None => None,
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading the body from stdin")?;
                s
            } else {
                std::fs::read_to_string(path).with_context(|| format!("reading the body file {}", path.display()))?
            };
            Some(serde_json::from_str::<Value>(&text).map_err(|e| {
                Failure::new(
                    format!("the body is not JSON: {e}"),
                    "pass a file holding one JSON document",
                )
            })?)
        }
    };
    if spec.mutating {
        refuse_unconfirmed_write(ctx, id, &args)?;
    }
    let session = direct_session(ctx).await?;
    let client = &session.client;
    if spec.mutating {
        record_direct_write(ctx, &session, spec, &params, body.as_ref()).await?;
    }
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

/// The session of a direct call. `rancherctl api` always talks to Rancher itself, even with a service: without a
/// domain (flag, environment or profile) that is said, rather than a bare "no Rancher domain".
async fn direct_session(ctx: &Context) -> anyhow::Result<rancher_workflows::Session> {
    if let Some(url) = ctx.server_url()? {
        if ctx.domain_flag()?.is_none() && ctx.profile_name()?.is_none() {
            return Err(Failure::new(
                format!(
                    "`rancherctl api` talks to Rancher directly, even with a service ({}), and no Rancher domain is given",
                    crate::text::escape(&url)
                ),
                "give the domain by --domain or RANCHER_DOMAIN (with your token), or use `rancherctl run rancher-api-request --input operation=ID ...` to go through the service",
            )
            .into());
        }
    }
    ctx.session().await
}

/// The approved way to send the same write, as a command line (inputs as `run` takes them).
fn approved_path(id: &str, params: &[(&str, &str)]) -> String {
    let mut line = format!("rancherctl run rancher-api-request --input operation={id}");
    if !params.is_empty() {
        let map: serde_json::Map<String, Value> = params
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        line.push_str(&format!(" --input 'params={}'", Value::Object(map)));
    }
    line.push_str(" --input body=@FILE");
    line
}

/// Refuses a write operation that is not confirmed with `--yes`, and any direct write with a service (which keeps
/// the audit log, so a write that skips it would go unrecorded).
fn refuse_unconfirmed_write(ctx: &Context, id: &str, args: &ApiArgs) -> anyhow::Result<()> {
    let params = pairs("param", &args.params)?;
    let mut approved = approved_path(id, &params);
    if args.body.is_none() {
        approved = approved.trim_end_matches(" --input body=@FILE").to_string();
    }
    if let Some(url) = ctx.server_url()? {
        return Err(Failure::new(
            format!(
                "{id} changes state on the server; with a service ({}) direct writes are refused, as the service keeps the audit log",
                crate::text::escape(&url)
            ),
            format!("file it for approval through the service: `{approved}`"),
        )
        .into());
    }
    if !args.yes {
        return Err(Failure::new(
            format!("{id} changes state on the server, and `rancherctl api` sends it without approval"),
            format!("file it for approval with `{approved}`, or add --yes to send it directly (recorded in the audit log as a direct write)"),
        )
        .into());
    }
    Ok(())
}

/// Records a confirmed direct write in the local audit log (`direct_write`: the operation, its parameters, the
/// path it is sent to, the body with its secrets masked, and the caller), before it is sent: a write that cannot
/// be recorded is not sent.
async fn record_direct_write(
    ctx: &Context,
    session: &rancher_workflows::Session,
    spec: &'static rancher_api::spec::OperationSpec,
    params: &[(&str, &str)],
    body: Option<&Value>,
) -> anyhow::Result<()> {
    let request = rancher_api::GenericRequest::new(spec.id, params, body.cloned())?;
    let target = request.target()?;
    let masked = body.map(|b| {
        let mut b = b.clone();
        if let Some(t) = &spec.body {
            rancher_api::redact_secrets(t.type_name, &mut b);
        }
        b
    });
    let write = rancher_approval::audit::DirectWrite {
        operation: spec.id.to_string(),
        method: spec.method.as_str().to_string(),
        path: target,
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        body: masked,
        server: session.client.base_url().as_str().to_string(),
        actor_username: session.principal.username.clone(),
    };
    let store = ctx.open_store().await?;
    store
        .record_direct_write(&session.principal.id, write, chrono::Utc::now())
        .await
        .map_err(|e| {
            Failure::new(
                format!("could not record the direct write in the audit log, so it was not sent: {e}"),
                "check the approval store (--store / --state-dir) and try again",
            )
        })?;
    Ok(())
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
