//! `--server URL` / `RANCHERCTL_SERVER`: the approval commands as a client of the approvals service
//! (`rancherctl serve`), with the same commands, output shapes and exit codes as local mode. The service holds the
//! store and executes with its own Rancher connection; this process only proves who you are with your token.

use rancher_approval::{ApprovalRequest, AuditEntry, GrantStatus, Installation, Policy, RequestState};
use rancher_server::wire::RequestView;
use rancher_server::{ClientError, ListAnswer, RemoteList, RunAnswer, ServerClient};
use rancher_workflows::{find_workflow, Submitted};
use serde_json::{json, Value};

use crate::cli::{ApprovalsCommand, Command, GrantsCommand, WorkflowsCommand};
use crate::commands::{approvals, grants as local_grants, run, workflows};
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;
use crate::text;

/// The client of the service named by `--server` / `RANCHERCTL_SERVER`, or `None` in local mode.
pub fn client(ctx: &Context) -> anyhow::Result<Option<ServerClient>> {
    let Some(url) = ctx.server_url()? else { return Ok(None) };
    let url = url.as_str();
    let _ = SERVER_ORIGIN.set(ctx.server_origin());
    // Your token proves who you are to the service (which asks Rancher); it is never stored there.
    // A token from flags or the environment goes to the service named anywhere; a profile's token only to the
    // service saved in that profile.
    let token = match ctx.token_flag()? {
        Some(t) => t,
        None if ctx.profile_name()?.is_none() => {
            // No domain is needed with a service: what is missing is the token that proves who you are.
            return Err(Failure::new(
                format!("no token given to prove who you are to the service at {} (and no profile is in use)", text::escape(url)),
                "give your Rancher token by --token-file FILE, --token-stdin or RANCHER_TOKEN, or save it with the service in a profile: `rancherctl connect --profile NAME --domain HOST --server URL --token-stdin`",
            )
            .into());
        }
        None => ctx.profile_token_for_service(url)?,
    };
    let c = build_client(ctx, url, token)?;
    Ok(Some(c))
}

/// Runs `command` against the service when it is one of the approval commands; `None` for the others (they talk to
/// Rancher directly, as in local mode).
pub async fn dispatch(ctx: &Context, command: &Command) -> anyhow::Result<Option<Exit>> {
    use ApprovalsCommand as A;
    use WorkflowsCommand as W;
    if !matches!(
        command,
        Command::Workflows(_) | Command::Approvals(_) | Command::Grants(_)
    ) {
        return Ok(None);
    }
    // Built once per process: a token from --token-stdin can be read only once.
    let Some(c) = client(ctx)? else { return Ok(None) };
    let c = &c;
    let exit = match command {
        Command::Workflows(W::List) => catalog(ctx, c, None).await?,
        Command::Workflows(W::Show { id }) => catalog(ctx, c, Some(id)).await?,
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
            list(ctx, c, which).await?
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
        Command::Grants(g) => grants(ctx, c, g).await?,
        _ => return Ok(None),
    };
    Ok(Some(exit))
}

/// A client of the service at `url` for `token`, trusting only `--server-ca-cert` when given; a URL it refuses
/// names the cause and the fix.
fn build_client(ctx: &Context, url: &str, token: rancher_auth::BearerToken) -> anyhow::Result<ServerClient> {
    let ca = match &ctx.global.server_ca_cert {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            Failure::new(
                format!("cannot read the service's CA bundle {}: {e}", path.display()),
                "pass the PEM file of the CA that signed the service's certificate to --server-ca-cert",
            )
        })?),
        None => None,
    };
    ServerClient::new(url, token, ca.as_deref()).map_err(|e| {
        let fix = e
            .fix
            .unwrap_or_else(|| "pass the RANCHERCTL_SERVER=... URL that `rancherctl serve` printed".into());
        Failure::new(
            format!("--server {}: {}", text::escape(url), e.message),
            text::escape(&fix),
        )
        .into()
    })
}

/// Where the service URL of this process came from (set by [`client`]), for the fix of an unreachable service.
static SERVER_ORIGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

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

/// The service's error as a failure: its own words, and what to do.
/// The service's error as a failure: its own words, and the fix the service (or the diagnosis of a failed
/// connection) gave; otherwise a fix only where the status alone says what to do, since the service's messages
/// name their own fix.
fn failure(e: ClientError) -> anyhow::Error {
    let origin = SERVER_ORIGIN.get().map(String::as_str);
    let fix = e.fix.clone().map(|f| match (e.status, origin) {
        // The service was not reached: say where its URL came from, so the right place is fixed.
        (None, Some(o)) => format!("{f} (the URL comes from {o})"),
        _ => f,
    });
    let fix = fix.or_else(|| match e.status {
        None => Some(format!(
            "check the URL (it comes from {}) and that the service runs (`curl URL/healthz`)",
            SERVER_ORIGIN
                .get()
                .map(String::as_str)
                .unwrap_or("RANCHERCTL_SERVER, --server or the profile's saved service")
        )),
        Some(401) => Some("your Rancher token was refused: check it with `rancherctl check`".into()),
        Some(403) => Some("ask an admin, or someone the policy names, to do it".into()),
        Some(_) => None,
    });
    Failure {
        message: format!("the approvals service: {}", text::escape(&e.message)),
        remedy: fix.map(|f| text::escape(&f)),
    }
    .into()
}

async fn catalog(ctx: &Context, c: &ServerClient, id: Option<&str>) -> anyhow::Result<Exit> {
    let items = c.workflows().await.map_err(failure)?;
    let installs: Vec<Installation> = items.into_iter().filter_map(|i| i.installation).collect();
    match id {
        None => workflows::print_catalog(ctx, &installs),
        Some(id) => workflows::print_one(ctx, id, &installs),
    }
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

async fn list(ctx: &Context, c: &ServerClient, which: approvals::Which<'_>) -> anyhow::Result<Exit> {
    let filter = rancher_server::wire::RequestQuery {
        state: which.state()?.map(|s| s.as_str().to_string()),
        mine: which.mine.then_some(true),
        to_approve: which.to_approve.then_some(true),
        ..Default::default()
    };
    let me = if which.needs_caller() {
        Some(principal(&c.me().await.map_err(failure)?))
    } else {
        None
    };
    let mut reqs: Vec<ApprovalRequest> = c
        .requests(filter)
        .await
        .map_err(failure)?
        .into_iter()
        .map(|v| v.stored)
        .collect();
    // Oldest first, as local mode lists them.
    reqs.reverse();
    approvals::print_list(ctx, &reqs, me.as_ref())
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
            let error = view
                .outcome
                .as_ref()
                .and_then(|o| o.detail.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("no error recorded");
            Err(approvals::execution_failed(r.id.as_str(), error, true))
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

/// `run` (and the access-control writes) through the service: `200` printed like a local run, `202` like a local
/// pending request (exit 3).
pub async fn submit(
    ctx: &Context,
    c: &ServerClient,
    workflow: &str,
    inputs: Value,
    reason: Option<String>,
    dry_run: bool,
) -> anyhow::Result<Exit> {
    let progress = output::Progress::spinner(format!("running {workflow} through the approvals service"));
    if rancher_workflows::LIST_WORKFLOWS.contains(&workflow) {
        // A list writes nothing (its dry run is the run): its items are written as the service sends them.
        let rows = matches!(ctx.format(), crate::cli::Format::Table | crate::cli::Format::Csv);
        let answer = c
            .run_list(workflow, object(inputs), reason.as_deref(), rows)
            .await
            .map_err(failure)?;
        drop(progress);
        return match answer {
            ListAnswer::Items(list) => stream_remote(ctx.format(), list).await.map(|()| Exit::Done),
            ListAnswer::Answer(a) => answered(ctx, workflow, a),
        };
    }
    let answer = c
        .run(workflow, object(inputs), reason.as_deref(), dry_run)
        .await
        .map_err(failure);
    drop(progress);
    answered(ctx, workflow, answer?)
}

/// Writes a list the service streams as it arrives, like a local list (see [`run::write_list`]).
async fn stream_remote(format: crate::cli::Format, mut list: RemoteList) -> anyhow::Result<()> {
    let (workflow, noun, columns) = (
        text::escape(&list.workflow),
        text::escape(&list.noun),
        list.columns.clone(),
    );
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    run::write_list(format, &columns, &workflow, &noun, async || match list.next().await {
        Ok(got) => got.map(|got| Ok((got.item, got.row))),
        Err(e) => Some(Err(text::escape(&e.message))),
    })
    .await
}

/// The caller as the service named them.
fn principal(me: &rancher_server::wire::Me) -> rancher_approval::Principal {
    rancher_approval::Principal {
        id: me.id.clone(),
        username: me.username.clone(),
        display_name: me.display_name.clone(),
        groups: me.groups.clone(),
    }
}

/// Inputs as the JSON object the service takes (rancherctl builds them as one).
fn object(inputs: Value) -> serde_json::Map<String, Value> {
    match inputs {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Prints the service's answer to a run (or a grant's extension) as local mode does.
fn answered(ctx: &Context, workflow: &str, answer: RunAnswer) -> anyhow::Result<Exit> {
    run::print_submitted(ctx, workflow, Submitted::from(answer))
}

/// `grants list|extend|revoke` through the service (it keeps the grants and revokes with its own account);
/// `grants expire` is refused: the service revokes due grants by itself.
async fn grants(ctx: &Context, c: &ServerClient, cmd: &GrantsCommand) -> anyhow::Result<Exit> {
    match cmd {
        GrantsCommand::List { .. } => {
            let grants: Vec<rancher_approval::Grant> = c
                .grants(local_grants::which(cmd).map(GrantStatus::as_str))
                .await
                .map_err(failure)?
                .into_iter()
                .map(|g| g.grant)
                .collect();
            local_grants::show(ctx, &grants, chrono::Utc::now())
        }
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
