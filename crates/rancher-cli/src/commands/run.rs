//! `rancherctl run WORKFLOW-ID`: run now, or file an approval request and exit 3.

use rancher_workflows::inputs_from_pairs;

use crate::cli::RunArgs;
use crate::commands::backend::Backend;
use crate::context::Context;
use crate::error::{Exit, Failure};

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
pub async fn run(ctx: &Context, backend: &Backend, args: RunArgs) -> anyhow::Result<Exit> {
    let mut inputs = inputs_from_pairs(pairs("input", &args.inputs)?).into_value();
    if let (true, Some(map)) = (backend.is_service(), inputs.as_object_mut()) {
        // The service reads no file of its host: an input naming a file here is sent as its contents.
        super::access::inline_files(map, |name| format!("--input {name}")).await?;
    }
    if args.break_glass {
        return backend.break_glass(ctx, &args.workflow, inputs, args.reason).await;
    }
    backend
        .submit(ctx, &args.workflow, inputs, args.reason, args.dry_run)
        .await
}
