//! `--server URL` / `RANCHERCTL_SERVER`: the approval commands as a client of the approvals service
//! (`rancherctl serve`), with the same commands, output shapes and exit codes as local mode. The service holds the
//! store and executes with its own Rancher connection; this process only proves who you are with your token.

use rancher_approval::{AuditEntry, Policy, RequestState};
use rancher_server::wire::RequestView;
use rancher_server::ServerClient;
use rancher_workflows::find_workflow;
use serde_json::{json, Value};

use crate::cli::{ApprovalsCommand, Command, GrantsCommand, WorkflowsCommand};
use crate::commands::backend::{answered, build_client, failure, principal, Backend, SERVER_ORIGIN};
use crate::commands::{approvals, grants as local_grants, workflows};
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;
use crate::text;

/// Runs `command` against the service when it is one of the approval commands; `None` for the others (they talk to
/// Rancher directly, as in local mode).
pub async fn dispatch(ctx: &Context, backend: &Backend, command: &Command) -> anyhow::Result<Option<Exit>> {
    use ApprovalsCommand as A;
    use WorkflowsCommand as W;
    if !matches!(
        command,
        Command::Workflows(_) | Command::Approvals(_) | Command::Grants(_)
    ) {
        return Ok(None);
    }
    let Backend::Service(c) = backend else { return Ok(None) };
    let exit = match command {
        Command::Workflows(W::List) => workflows::list(ctx, backend).await?,
        Command::Workflows(W::Show { id }) => workflows::show(ctx, backend, id).await?,
        Command::Workflows(W::Install { ids, reads, policy }) => {
            let installed: Vec<String> = if *reads {
                let items = c.workflows().await.map_err(failure)?;
                items.into_iter().filter_map(|i| i.installation.map(|i| i.workflow_id)).collect()
            } else {
                Vec::new()
            };
            let ids = crate::commands::install::chosen(ids, *reads, &installed)?;
            crate::commands::install::each(&ids, async |id: String| change(ctx, c, &id, policy, true).await).await?
        }
        Command::Workflows(W::SetPolicy { id, policy }) => change(ctx, c, id, policy, false).await?,
        Command::Approvals(A::List { state, mine, to_approve }) => {
            let which = approvals::Which {
                state: state.as_deref(),
                mine: *mine,
                to_approve: *to_approve,
            };
            approvals::list(ctx, backend, which).await?
        }
        Command::Approvals(A::Show { id, full }) => show(ctx, c, id, *full).await?,
        Command::Approvals(A::Approve { id, reason }) => {
            let seen = reviewed(c, id).await?;
            decided(ctx, c.approve(id, reason.as_deref(), Some(&seen)).await.map_err(failure)?, "approve")?
        }
        Command::Approvals(A::Deny { id, reason }) => {
            let seen = reviewed(c, id).await?;
            decided(ctx, c.deny(id, reason.as_deref(), Some(&seen)).await.map_err(failure)?, "deny")?
        }
        Command::Approvals(A::Cancel { id, reason }) => decided(ctx, c.cancel(id, reason.as_deref()).await.map_err(failure)?, "cancel")?,
        Command::Approvals(A::Audit { verify, expect_head }) => audit(ctx, c, *verify, expect_head.as_deref()).await?,
        Command::Approvals(A::Export | A::Import { .. } | A::Reconcile) => {
            return Err(Failure::new(
                "`approvals export`, `import` and `reconcile` work on the store itself, not through the approvals service",
                "run them on the service's host with --store URL (the service reconciles by itself at start and periodically)",
            )
            .into())
        }
        Command::Grants(g) => grants(ctx, backend, c, g).await?,
        _ => return Ok(None),
    };
    Ok(Some(exit))
}

/// Tests the service at `url` with `token` (`/healthz`, then `/api/v1/me`) and answers the line to print:
/// `service: URL (ok, you are NAME)`. A failure names the service, the cause and the fix.
pub async fn test_service(
    ctx: &Context,
    url: &str,
    token: rancher_auth::BearerToken,
) -> anyhow::Result<(String, Value)> {
    let _ = SERVER_ORIGIN.set(ctx.server_origin());
    let c = build_client(ctx, url, token)?;
    c.healthz().await.map_err(failure)?;
    let me = c.me().await.map_err(failure)?;
    let who = me.name().to_string();
    let admin = if me.is_admin { ", an admin" } else { "" };
    let line = format!(
        "service: {} (ok, you are {}{admin})",
        text::escape(url),
        text::escape(&who)
    );
    Ok((line, json!({"url": url, "ok": true, "user": me})))
}

async fn change(
    ctx: &Context,
    c: &ServerClient,
    id: &str,
    args: &crate::cli::PolicyArgs,
    install: bool,
) -> anyhow::Result<Exit> {
    let w = find_workflow(id).ok_or_else(|| workflows::unknown(id))?;
    let current = if install {
        None
    } else {
        let items = c.workflows().await.map_err(failure)?;
        items
            .into_iter()
            .filter_map(|i| i.installation)
            .find(|i| i.workflow_id == w.id)
            .map(|i| i.policy)
    };
    let policy: Option<Policy> = workflows::policy_from_args(args, w, current.as_ref())?;
    let inst = if install {
        c.install(w.id, policy.as_ref()).await
    } else {
        let p = policy.ok_or_else(workflows::no_policy_given)?;
        c.set_policy(w.id, &p).await
    }
    .map_err(failure)?;
    workflows::print_installation(ctx, &inst, install)
}

/// The content hash of request `id` as `approvals show` prints it: the decision is sent bound to it, so the
/// service refuses it when the request changed since.
async fn reviewed(c: &ServerClient, id: &str) -> anyhow::Result<String> {
    Ok(approvals::reviewed_hash(&c.request(id).await.map_err(failure)?.stored))
}

async fn show(ctx: &Context, c: &ServerClient, id: &str, full: bool) -> anyhow::Result<Exit> {
    let view = c.request(id).await.map_err(failure)?;
    let me = match ctx.format() {
        crate::cli::Format::Table => c.me().await.ok(),
        _ => None,
    };
    // The service's own document (it carries `who_may_approve`), escaped like every JSON output.
    output::data(ctx.format(), &view, || {
        let text = approvals::describe_with(&view.stored, full, &view.who_may_approve);
        match &me {
            Some(me) => approvals::mark_you(&text, &principal(me)),
            None => text,
        }
    })?;
    Ok(Exit::Done)
}

/// After approve / deny / cancel: the request as the service left it, printed as local mode prints it. An approval
/// that completed the request was executed once by the service: the run it answers decides the document and the
/// exit code.
fn decided(ctx: &Context, view: RequestView, what: &str) -> anyhow::Result<Exit> {
    let r = &view.stored;
    let approver = r
        .decisions
        .iter()
        .rev()
        .find(|d| matches!(d.vote, rancher_approval::Vote::Approve))
        .map(|d| d.principal.username.clone().unwrap_or_else(|| d.principal.id.clone()))
        .unwrap_or_default();
    match (what, r.state) {
        ("approve", RequestState::Pending) => approvals::print_partial(ctx, r, &approver, &view.who_may_approve),
        ("approve", RequestState::Failed) => {
            // A service older than the typed field: read from the stored outcome.
            let failure = view
                .failure
                .clone()
                .or_else(|| {
                    view.outcome
                        .as_ref()
                        .and_then(rancher_workflows::Failure::of)
                        .map(Into::into)
                })
                .unwrap_or(rancher_server::wire::FailureView {
                    error: "no error recorded".into(),
                    refused_by: rancher_workflows::RefusedBy::Rancherctl,
                });
            Err(approvals::execution_failed(
                r.id.as_str(),
                &failure.error,
                failure.refused_by,
                true,
            ))
        }
        ("approve", _) => match &view.result {
            Some(out) => approvals::print_executed(ctx, r.id.as_str(), &approver, out),
            None => {
                let doc = json!({"status": r.state.as_str(), "request": r.id.as_str()});
                output::data(ctx.format(), &doc, || format!("request {} is {}", r.id, r.state))?;
                Ok(Exit::Done)
            }
        },
        _ => {
            output::data(ctx.format(), r, || format!("request {} is {}", r.id, r.state))?;
            Ok(Exit::Done)
        }
    }
}

async fn audit(ctx: &Context, c: &ServerClient, verify: bool, expect_head: Option<&str>) -> anyhow::Result<Exit> {
    let entries: Vec<AuditEntry> = c.audit().await.map_err(failure)?.items;
    if !verify {
        output::data(ctx.format(), &entries, || approvals::audit_table(&entries))?;
        return Ok(Exit::Done);
    }
    // Verified here, from the entries the service sent, not only taken from its word.
    let head = entries.last().map(|e| e.head());
    let n = rancher_approval::verify_audit_chain(&entries, head.as_ref())?;
    let anchor = match expect_head {
        Some(saved) => {
            let (seq, hash) = approvals::parse_head(saved)?;
            Some(approvals::check_saved_head(&entries, seq, &hash)?)
        }
        None => None,
    };
    approvals::print_verified(ctx, n, &head.unwrap_or_default(), anchor.as_ref())
}

/// `grants list|extend|revoke` through the service (it keeps the grants and revokes with its own account);
/// `grants expire` is refused: the service revokes due grants by itself.
async fn grants(ctx: &Context, backend: &Backend, c: &ServerClient, cmd: &GrantsCommand) -> anyhow::Result<Exit> {
    match cmd {
        GrantsCommand::List { .. } => local_grants::list(ctx, backend, local_grants::which(cmd)).await,
        GrantsCommand::Extend { id, by, reason } => {
            let extended = c.extend_grant(id, by, reason.as_deref()).await.map_err(failure)?;
            answered(ctx, &extended.workflow, extended.answer)
        }
        GrantsCommand::Revoke { id } => {
            let out = c.revoke_grant(id).await.map_err(failure)?;
            local_grants::report(ctx, std::slice::from_ref(&out))
        }
        GrantsCommand::Expire => Err(Failure::new(
            "`grants expire` works on the store itself, not through the approvals service",
            "the service revokes due grants by itself (at start and periodically); on its host, run it with --store URL",
        )
        .into()),
    }
}
