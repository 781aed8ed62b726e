//! Local or service: where a command runs is decided once, by [`Backend::choose`], and the commands call the same
//! methods on either side. `Local` works with the caller's connection and the local approval store; `Service` is a
//! client of the approvals service (`--server` / `RANCHERCTL_SERVER` / a profile's saved service), which holds the
//! store and executes with its own Rancher connection. Both print through [`crate::commands::printer`].

use rancher_approval::{
    ApprovalRequest, Grant, GrantFilter, GrantStatus, Installation, Principal, RequestFilter, RequestState,
};
use rancher_server::{ClientError, ListAnswer, RemoteList, RunAnswer, ServerClient};
use rancher_workflows::{find_workflow, Submitted};
use serde_json::Value;

use crate::cli::Format;
use crate::commands::printer;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;
use crate::text;

/// Where a command runs: here, or in the approvals service.
pub enum Backend {
    /// Straight to Rancher with the caller's connection; requests and audit in the local approval store.
    Local,
    /// Through the approvals service; the token only proves who the caller is.
    Service(ServerClient),
}

impl Backend {
    /// The service when one is named (by `--server`, `RANCHERCTL_SERVER` or the profile), else local. Call it once
    /// per command: a token from `--token-stdin` can be read only once.
    pub fn choose(ctx: &Context) -> anyhow::Result<Backend> {
        Ok(match client(ctx)? {
            Some(c) => Backend::Service(c),
            None => Backend::Local,
        })
    }

    /// Whether the command runs in the approvals service.
    pub fn is_service(&self) -> bool {
        matches!(self, Backend::Service(_))
    }

    /// The requests `approvals list` shows, oldest first, and the caller when `--mine` / `--to-approve` made them
    /// known.
    pub async fn requests(
        &self,
        ctx: &Context,
        which: Which<'_>,
    ) -> anyhow::Result<(Vec<ApprovalRequest>, Option<Principal>)> {
        match self {
            Backend::Local => local_requests(ctx, which).await,
            Backend::Service(c) => service_requests(c, which).await,
        }
    }

    /// The time-bound grants `grants list` shows (only those in status `which` when given), with the moment their
    /// status is read at.
    pub async fn grants(
        &self,
        ctx: &Context,
        which: Option<GrantStatus>,
    ) -> anyhow::Result<(Vec<Grant>, chrono::DateTime<chrono::Utc>)> {
        match self {
            Backend::Local => {
                let store = ctx.open_store().await?;
                let now = chrono::Utc::now();
                let mut grants = store.list_grants(&GrantFilter::all()).await?;
                grants.retain(|g| which.is_none_or(|w| w.includes(g.status(now))));
                Ok((grants, now))
            }
            Backend::Service(c) => {
                let grants: Vec<Grant> = c
                    .grants(which.map(GrantStatus::as_str))
                    .await
                    .map_err(failure)?
                    .into_iter()
                    .map(|g| g.grant)
                    .collect();
                Ok((grants, chrono::Utc::now()))
            }
        }
    }

    /// The installations the catalog shows: the local store's (none when there is no store yet) or the service's.
    pub async fn installations(&self, ctx: &Context) -> anyhow::Result<Vec<Installation>> {
        Ok(match self {
            Backend::Local => match ctx.existing_store().await? {
                Some(s) => s.list_installations().await?,
                None => Vec::new(),
            },
            Backend::Service(c) => c
                .workflows()
                .await
                .map_err(failure)?
                .into_iter()
                .filter_map(|i| i.installation)
                .collect(),
        })
    }

    /// Runs a workflow with inputs as a JSON object (for commands that build them), or files an approval request
    /// and exits 3.
    pub async fn submit(
        &self,
        ctx: &Context,
        workflow: &str,
        inputs: Value,
        reason: Option<String>,
        dry_run: bool,
    ) -> anyhow::Result<Exit> {
        match self {
            Backend::Local => submit_local(ctx, workflow, inputs, reason, dry_run).await,
            Backend::Service(c) => submit_service(ctx, c, workflow, inputs, reason, dry_run).await,
        }
    }
}

/// The client of the service named by `--server` / `RANCHERCTL_SERVER` (or the profile), or `None` in local mode.
fn client(ctx: &Context) -> anyhow::Result<Option<ServerClient>> {
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

/// A local run: straight to Rancher with the caller's connection, through the local approval store.
async fn submit_local(
    ctx: &Context,
    workflow: &str,
    inputs: Value,
    reason: Option<String>,
    dry_run: bool,
) -> anyhow::Result<Exit> {
    let w = find_workflow(workflow).ok_or_else(|| unknown(workflow))?;
    if read_only_list(w, &inputs, dry_run) {
        // A list reads with the caller's own rights and needs no approval, installed or not: it is streamed at once,
        // knowing only the server's version, and touches no approval store.
        let session = ctx.read_session().await?;
        let rows = matches!(ctx.format(), Format::Table | Format::Csv);
        if let Some(list) = rancher_workflows::Exec::new(&session, false)
            .stream_list(w.id, rows)
            .await?
        {
            printer::stream_list(ctx.format(), list).await?;
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
        printer::stream_list(ctx.format(), list).await?;
        return Ok(Exit::Done);
    }
    let submitted = runner.submit(&session, w.id, inputs, reason, dry_run).await?;
    drop(progress);
    printer::print_submitted(ctx, w.id, submitted)
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
            printer::stream_list(ctx.format(), list).await?;
            return Ok(Exit::Done);
        }
    }
    let progress = output::Progress::spinner(format!("running {}", w.id));
    let out = rancher_workflows::Exec::new(session, dry_run)
        .with_progress(crate::output::Stages::handle())
        .run(w, inputs)
        .await?;
    drop(progress);
    printer::print_result(ctx.format(), &out)?;
    Ok(Exit::Done)
}

/// A run (and an access-control write) through the service: `200` printed like a local run, `202` like a local
/// pending request (exit 3).
async fn submit_service(
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

/// Writes a list the service streams as it arrives, like a local list (see [`printer::write_list`]).
async fn stream_remote(format: crate::cli::Format, mut list: RemoteList) -> anyhow::Result<()> {
    let (workflow, noun, columns) = (
        text::escape(&list.workflow),
        text::escape(&list.noun),
        list.columns.clone(),
    );
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    printer::write_list(format, &columns, &workflow, &noun, async || match list.next().await {
        Ok(got) => got.map(|got| Ok((got.item, got.row))),
        Err(e) => Some(Err(text::escape(&e.message))),
    })
    .await
}

/// Inputs as the JSON object the service takes (rancherctl builds them as one).
fn object(inputs: Value) -> serde_json::Map<String, Value> {
    match inputs {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Prints the service's answer to a run (or a grant's extension) as local mode does.
pub(crate) fn answered(ctx: &Context, workflow: &str, answer: RunAnswer) -> anyhow::Result<Exit> {
    printer::print_submitted(ctx, workflow, Submitted::from(answer))
}

/// Which requests `approvals list` shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Which<'a> {
    /// Only requests in this state.
    pub state: Option<&'a str>,
    /// Only the caller's own requests.
    pub mine: bool,
    /// Only pending requests the caller may approve (not their own).
    pub to_approve: bool,
}

impl Which<'_> {
    /// The state asked for, parsed.
    pub fn state(&self) -> anyhow::Result<Option<RequestState>> {
        self.state
            .map(|s| {
                s.parse::<RequestState>()
                    .map_err(|e: String| Failure::new(e, "see `rancherctl approvals list --help`").into())
            })
            .transpose()
    }

    /// Whether the caller must be known to answer.
    pub fn needs_caller(&self) -> bool {
        self.mine || self.to_approve
    }
}

/// Whether `r` passes `--mine` / `--to-approve` for `me` (`admins`: the fallback approvers).
pub fn keep(r: &ApprovalRequest, me: &Principal, admins: &[String], which: Which<'_>) -> bool {
    if which.mine && r.requester.id != me.id {
        return false;
    }
    if which.to_approve {
        let ctx = rancher_approval::EligibilityContext::with_fallback_approvers(admins.iter().cloned());
        return r.state == RequestState::Pending
            && r.requester.id != me.id
            && !r.decisions.iter().any(|d| d.principal.id == me.id)
            && rancher_approval::check_eligibility(&r.policy, &r.facts(), me, &ctx).is_ok();
    }
    true
}

/// A principal for people: `name (id)`, escaped.
/// Requests in the local store, oldest first, optionally in one state, only the caller's (`--mine`) or only those
/// waiting on the caller (`--to-approve`); with the caller when the filter needed them.
async fn local_requests(ctx: &Context, which: Which<'_>) -> anyhow::Result<(Vec<ApprovalRequest>, Option<Principal>)> {
    let mut filter = RequestFilter::all();
    if let Some(st) = which.state()? {
        filter = filter.state(st);
    }
    if which.to_approve && which.state.is_none() {
        filter = filter.state(RequestState::Pending);
    }
    // Who the caller is costs Rancher calls: asked only when the filter needs it.
    let me = if which.needs_caller() {
        let session = ctx.session().await?;
        let admins = if which.to_approve {
            session.admin_user_ids().await?
        } else {
            Vec::new()
        };
        Some((session.principal.clone(), admins))
    } else {
        None
    };
    let s = ctx.open_store().await?;
    s.expire_due(chrono::Utc::now()).await?;
    let reqs: Vec<ApprovalRequest> = s
        .list_requests(&filter)
        .await?
        .into_iter()
        .filter(|r| match &me {
            Some((p, admins)) => keep(r, p, admins, which),
            None => true,
        })
        .collect();
    Ok((reqs, me.map(|(p, _)| p)))
}

/// Requests the service answers for `which`, oldest first, with the caller when the filter needed them.
async fn service_requests(
    c: &ServerClient,
    which: Which<'_>,
) -> anyhow::Result<(Vec<ApprovalRequest>, Option<Principal>)> {
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
    Ok((reqs, me))
}

/// The caller as the service named them.
pub(crate) fn principal(me: &rancher_server::wire::Me) -> rancher_approval::Principal {
    rancher_approval::Principal {
        id: me.id.clone(),
        username: me.username.clone(),
        display_name: me.display_name.clone(),
        groups: me.groups.clone(),
    }
}

/// The error for an id that is not a workflow.
pub fn unknown(id: &str) -> anyhow::Error {
    let hint = rancher_workflows::suggest_workflow(id)
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default();
    Failure::new(
        format!("unknown workflow `{id}`"),
        format!("{hint}`rancherctl workflows list` shows the ids"),
    )
    .into()
}

/// A client of the service at `url` for `token`, trusting only `--server-ca-cert` when given; a URL it refuses
/// names the cause and the fix.
pub(crate) fn build_client(ctx: &Context, url: &str, token: rancher_auth::BearerToken) -> anyhow::Result<ServerClient> {
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
pub(crate) static SERVER_ORIGIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The service's error as a failure: its own words, and the fix the service (or the diagnosis of a failed
/// connection) gave; otherwise a fix only where the status alone says what to do, since the service's messages
/// name their own fix.
pub(crate) fn failure(e: ClientError) -> anyhow::Error {
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
