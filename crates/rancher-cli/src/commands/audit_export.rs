//! `approvals audit --export FORMAT [--since SEQ]`: the audit log for a SIEM on stdout, one JSON object a line,
//! read a page at a time (from the local store, or streamed from the service), so memory stays flat however long
//! the log. The shapes are the service's ([`rancher_server::audit_export`]).

use std::io::Write as _;

use rancher_server::audit_export::{line, ExportFormat, PAGE};

use crate::commands::backend::{failure, Backend};
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

/// Writes the export of the entries after `since` to stdout.
pub async fn run(ctx: &Context, backend: &Backend, format: &str, since: u64) -> anyhow::Result<Exit> {
    let format: ExportFormat = format
        .parse()
        .map_err(|e: String| Failure::new(e, "pass --export jsonl, --export ocsf or --export cloudevents"))?;
    // JSON leaves some characters a terminal acts on raw: they are written as escapes (same document).
    let mut out = output::safe_json_writer(std::io::BufWriter::new(std::io::stdout().lock()));
    match backend {
        Backend::Local => {
            let store = ctx.open_store().await?;
            let source = ctx
                .domain_flag()
                .ok()
                .flatten()
                .map_or_else(|| "local-store".to_string(), |d| d.to_string());
            let mut after = since;
            let mut n = 0u64;
            loop {
                let page = store.audit_after(after, PAGE).await?;
                for e in &page {
                    out.write_all(line(e, format, &source).as_bytes())?;
                    after = e.seq;
                    n += 1;
                }
                if page.len() < PAGE {
                    break;
                }
            }
            out.flush()?;
            output::note(format!(
                "exported {n} audit entries as {} (last seq {after})",
                format.as_str()
            ));
        }
        Backend::Service(c) => {
            let bytes = c
                .audit_export(format, since, |chunk| out.write_all(chunk))
                .await
                .map_err(failure)?;
            out.flush()?;
            output::note(format!("exported {bytes} bytes of audit log as {}", format.as_str()));
        }
    }
    Ok(Exit::Done)
}
