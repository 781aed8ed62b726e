//! Local or service: where a command runs is decided once, by [`Backend::choose`], and the commands call the same
//! methods on either side. `Local` works with the caller's connection and the local approval store; `Service` is a
//! client of the approvals service (`--server` / `RANCHERCTL_SERVER` / a profile's saved service), which holds the
//! store and executes with its own Rancher connection. Both print through [`crate::commands::printer`].

use rancher_approval::{
    ApprovalRequest, AuditEntry, AuditHead, Grant, GrantFilter, GrantStatus, Installation, Policy, Principal,
    RequestFilter, RequestId, RequestState, Vote,
};
use rancher_server::wire::RequestView;
use rancher_server::{ClientError, ListAnswer, RemoteList, RunAnswer, ServerClient};
use rancher_workflows::grants::RevokeOutcome;
use rancher_workflows::{find_workflow, Approved, RunOutput, Submitted};
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

    /// Break-glass through the approvals service (only there: the rules that permit it are the service's).
    pub async fn break_glass(
        &self,
        ctx: &Context,
        workflow: &str,
        inputs: Value,
        reason: Option<String>,
    ) -> anyhow::Result<Exit> {
        let Backend::Service(c) = self else {
            return Err(crate::error::Failure::new(
                "--break-glass goes through the approvals service, whose policy rules permit it",
                "name the service with --server URL (or RANCHERCTL_SERVER)",
            )
            .into());
        };
        let answer = c
            .run_break_glass(workflow, object(inputs), reason.as_deref())
            .await
            .map_err(failure)?;
        answered(ctx, workflow, answer)
    }
}

impl Backend {
    /// One request with who may approve it, its outcome and its audit entries, and the caller when the output
    /// marks them `(you)` (table output, and locally only when a Rancher connection is at hand: the store alone
    /// does not say who the caller is).
    pub async fn show(&self, ctx: &Context, id: &str) -> anyhow::Result<(RequestView, Option<Principal>)> {
        let marks = ctx.format() == Format::Table;
        match self {
            Backend::Local => {
                let id: RequestId = id.parse()?;
                let store = ctx.open_store().await?;
                let r = store.get_request(&id).await?;
                let audit = store.audit_of_request(id.as_str()).await?;
                let me = match marks {
                    true => ctx.session().await.ok().map(|s| s.principal.clone()),
                    false => None,
                };
                Ok((local_view(r, audit), me))
            }
            Backend::Service(c) => {
                let view = c.request(id).await.map_err(failure)?;
                let me = match marks {
                    true => c.me().await.ok().map(|me| principal(&me)),
                    false => None,
                };
                Ok((view, me))
            }
        }
    }

    /// Approves request `id` as the caller, bound to the request as read just before (its content hash); when
    /// that approves it, it is executed once (here, or by the service).
    pub async fn approve(&self, ctx: &Context, id: &str, reason: Option<String>) -> anyhow::Result<Approval> {
        match self {
            Backend::Local => {
                let session = ctx.session().await?;
                let runner = ctx.runner().await?;
                let seen = runner.get(id).await?.content_hash;
                Ok(match runner.approve_reviewed(&session, id, reason, Some(seen)).await? {
                    Approved::Pending { request } => {
                        let r = runner.get(&request).await?;
                        Approval::Recorded {
                            who_may_approve: who_may_approve_local(&r),
                            request: Box::new(r),
                            by: session.who(),
                        }
                    }
                    Approved::Succeeded { request, result } => Approval::Executed {
                        request,
                        by: session.who(),
                        result,
                        by_service: false,
                    },
                    Approved::Failed {
                        request,
                        error,
                        refused_by,
                    } => Approval::Failed {
                        request,
                        error,
                        refused_by,
                        by_service: false,
                    },
                })
            }
            Backend::Service(c) => {
                let seen = c.request(id).await.map_err(failure)?.stored.content_hash;
                let view = c.approve(id, reason.as_deref(), Some(&seen)).await.map_err(failure)?;
                Ok(Approval::from_view(view))
            }
        }
    }

    /// Denies request `id` as the caller, bound to the request as read just before.
    pub async fn deny(&self, ctx: &Context, id: &str, reason: Option<String>) -> anyhow::Result<Decided> {
        match self {
            Backend::Local => {
                let session = ctx.session().await?;
                let runner = ctx.runner().await?;
                let seen = runner.get(id).await?.content_hash;
                let request = runner.deny_reviewed(&session, id, reason, Some(seen)).await?;
                Ok(Decided {
                    request,
                    by: session.who(),
                })
            }
            Backend::Service(c) => {
                let seen = c.request(id).await.map_err(failure)?.stored.content_hash;
                let request = c
                    .deny(id, reason.as_deref(), Some(&seen))
                    .await
                    .map_err(failure)?
                    .stored;
                // The denial the service recorded names the caller, as it asked Rancher.
                let by = match request.decisions.iter().rev().find(|d| d.vote == Vote::Deny) {
                    Some(d) => name(&d.principal),
                    None => caller_name(c).await?,
                };
                Ok(Decided { request, by })
            }
        }
    }

    /// Cancels pending request `id` (its requester or an admin).
    pub async fn cancel(&self, ctx: &Context, id: &str, reason: Option<String>) -> anyhow::Result<Decided> {
        match self {
            Backend::Local => {
                let session = ctx.session().await?;
                let request = ctx.runner().await?.cancel(&session, id, reason).await?;
                Ok(Decided {
                    request,
                    by: session.who(),
                })
            }
            Backend::Service(c) => {
                let request = c.cancel(id, reason.as_deref()).await.map_err(failure)?.stored;
                // The closure records the caller's id only: their name is asked of the service.
                Ok(Decided {
                    request,
                    by: caller_name(c).await?,
                })
            }
        }
    }

    /// The audit log, oldest first; with `verify`, its hash chain checked and how (see [`Checked`]).
    pub async fn audit(&self, ctx: &Context, verify: bool) -> anyhow::Result<AuditLog> {
        match self {
            Backend::Local => {
                let s = ctx.open_store().await?;
                let verified = match verify {
                    true => Some(Verified {
                        entries: s.verify_audit().await?,
                        head: s.audit_head().await?,
                        checked: Checked::InStore,
                    }),
                    false => None,
                };
                Ok(AuditLog {
                    entries: s.audit_entries().await?,
                    verified,
                })
            }
            Backend::Service(c) => {
                let page = c.audit().await.map_err(failure)?;
                // Not the service's word: the chain of the entries received is recomputed here, up to the head
                // the service reports.
                let verified = match verify {
                    true => Some(Verified {
                        entries: rancher_approval::verify_audit_chain(&page.items, Some(&page.head))?,
                        head: page.head,
                        checked: Checked::Received,
                    }),
                    false => None,
                };
                Ok(AuditLog {
                    entries: page.items,
                    verified,
                })
            }
        }
    }

    /// Installs workflow `id` as the caller, with `policy` or the workflow's default.
    pub async fn install(&self, ctx: &Context, id: &str, policy: Option<Policy>) -> anyhow::Result<Installed> {
        match self {
            Backend::Local => {
                let session = ctx.session().await?;
                let installation = ctx.runner().await?.install(&session, id, policy).await?;
                Ok(Installed::local(&session, installation).await)
            }
            Backend::Service(c) => Ok(Installed::service(
                c.install(id, policy.as_ref()).await.map_err(failure)?,
            )),
        }
    }

    /// Replaces the policy of installed workflow `id` as the caller.
    pub async fn set_policy(&self, ctx: &Context, id: &str, policy: Policy) -> anyhow::Result<Installed> {
        match self {
            Backend::Local => {
                let session = ctx.session().await?;
                let installation = ctx.runner().await?.set_policy(&session, id, policy).await?;
                Ok(Installed::local(&session, installation).await)
            }
            Backend::Service(c) => Ok(Installed::service(c.set_policy(id, &policy).await.map_err(failure)?)),
        }
    }

    /// Asks for `by` more on grant `id`: a new request under the grant's own workflow and policy. Answers that
    /// workflow and what the submit did.
    pub async fn grant_extend(
        &self,
        ctx: &Context,
        id: &str,
        by: &str,
        reason: Option<String>,
    ) -> anyhow::Result<(String, Submitted)> {
        match self {
            Backend::Local => {
                let store = ctx.open_store().await?;
                let (workflow, inputs) = rancher_workflows::grants::extension(store.as_ref(), id, by).await?;
                let session = ctx.session().await?;
                let runner = ctx.runner().await?;
                let progress = output::Progress::spinner(format!("running {workflow}"));
                let submitted = runner.submit(&session, &workflow, inputs, reason, false).await?;
                drop(progress);
                Ok((workflow, submitted))
            }
            Backend::Service(c) => {
                let extended = c.extend_grant(id, by, reason.as_deref()).await.map_err(failure)?;
                Ok((extended.workflow, Submitted::from(extended.answer)))
            }
        }
    }

    /// Ends grant `id` now: its early end recorded, then revoked (here with the caller's rights, or by the service
    /// with its own account).
    pub async fn grant_revoke(&self, ctx: &Context, id: &str) -> anyhow::Result<RevokeOutcome> {
        match self {
            Backend::Local => {
                let session = ctx.session().await?;
                let runner = ctx.runner().await?;
                let store = runner.store().clone();
                let now = chrono::Utc::now();
                rancher_workflows::grants::end_early(&session, store.as_ref(), id, now).await?;
                Ok(
                    rancher_workflows::grants::revoke_grant(&session, store.as_ref(), id, runner.process_label(), now)
                        .await?,
                )
            }
            Backend::Service(c) => c.revoke_grant(id).await.map_err(failure),
        }
    }

    /// Refuses, through the service, a command that works on the store itself: `refusal` says which, `instead`
    /// what to do.
    pub fn store_here(&self, refusal: &str, instead: &str) -> anyhow::Result<()> {
        match self {
            Backend::Local => Ok(()),
            Backend::Service(_) => Err(Failure::new(refusal, instead).into()),
        }
    }
}

/// What an approval did, in either mode.
#[derive(Debug)]
pub enum Approval {
    /// Recorded; the request still needs more approvals (exit 3).
    Recorded {
        /// The request after the approval.
        request: Box<ApprovalRequest>,
        /// Who approved (login name, else id).
        by: String,
        /// Who may approve, in words.
        who_may_approve: String,
    },
    /// The approval completed the request, which was executed once.
    Executed {
        /// The request id.
        request: String,
        /// Who approved.
        by: String,
        /// The whole output of that run.
        result: Box<RunOutput>,
        /// Executed by the service (which also revokes a time-bound grant when it is due).
        by_service: bool,
    },
    /// The approval completed the request, and its execution failed.
    Failed {
        /// The request id.
        request: String,
        /// The error, as recorded.
        error: String,
        /// Who refused it.
        refused_by: rancher_workflows::RefusedBy,
        /// Executed by the service.
        by_service: bool,
    },
    /// The service left the request in a state with no run to show.
    Settled {
        /// The request as the service left it.
        request: Box<ApprovalRequest>,
    },
}

impl Approval {
    /// What the service's answer to an approval says happened.
    fn from_view(view: RequestView) -> Approval {
        let r = view.stored;
        let by = r
            .decisions
            .iter()
            .rev()
            .find(|d| d.vote == Vote::Approve)
            .map(|d| name(&d.principal))
            .unwrap_or_default();
        match (r.state, view.result) {
            (RequestState::Pending, _) => Approval::Recorded {
                request: Box::new(r),
                by,
                who_may_approve: view.who_may_approve,
            },
            (RequestState::Failed, _) => {
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
                Approval::Failed {
                    request: r.id.to_string(),
                    error: failure.error,
                    refused_by: failure.refused_by,
                    by_service: true,
                }
            }
            (_, Some(result)) => Approval::Executed {
                request: r.id.to_string(),
                by,
                result,
                by_service: true,
            },
            (_, None) => Approval::Settled { request: Box::new(r) },
        }
    }
}

/// A request denied or cancelled, and who did it (login name, else id).
#[derive(Debug)]
pub struct Decided {
    /// The request after the decision.
    pub request: ApprovalRequest,
    /// Who decided.
    pub by: String,
}

/// The audit log, and its verification when asked.
#[derive(Debug)]
pub struct AuditLog {
    /// The entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// How the hash chain was verified (`--verify`).
    pub verified: Option<Verified>,
}

/// A verified audit log: how many entries, up to which head, and where it was checked.
#[derive(Debug)]
pub struct Verified {
    /// How many entries were verified.
    pub entries: u64,
    /// The head they were verified against.
    pub head: AuditHead,
    /// Where and against what.
    pub checked: Checked,
}

/// Where an audit log was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// In the local store: its chain and its recorded head.
    InStore,
    /// Here, on the entries the service sent: their chain recomputed, up to the head the service reports.
    Received,
}

impl Checked {
    /// The word for `-o json` (`store` / `received`).
    pub fn as_str(self) -> &'static str {
        match self {
            Checked::InStore => "store",
            Checked::Received => "received",
        }
    }

    /// The line for people.
    pub fn line(self) -> &'static str {
        match self {
            Checked::InStore => "checked: in the approval store, its hash chain and its recorded head",
            Checked::Received => {
                "checked: here, on the entries the approvals service sent: their hash chain recomputed, up to the head it reports"
            }
        }
    }
}

/// An installation after `workflows install` / `set-policy`, with the names of the approvers its policy names by
/// id (looked up locally; the service's answer carries none).
#[derive(Debug)]
pub struct Installed {
    /// The installation.
    pub installation: Installation,
    /// The named approvers, by name.
    pub approver_names: Vec<String>,
}

impl Installed {
    async fn local(session: &rancher_workflows::Session, installation: Installation) -> Installed {
        let approver_names = rancher_workflows::approver_names(session, &installation.policy).await;
        Installed {
            installation,
            approver_names,
        }
    }

    fn service(installation: Installation) -> Installed {
        Installed {
            installation,
            approver_names: Vec::new(),
        }
    }
}

/// A request of the local store as the service would show it to an approver (what the service read shown, who may
/// approve in words, its stored outcome and its audit entries).
fn local_view(r: ApprovalRequest, audit: Vec<AuditEntry>) -> RequestView {
    let outcome = r.execution.as_ref().and_then(|e| e.outcome.clone());
    RequestView {
        request: r.id.to_string(),
        status: r.state.as_str().into(),
        policy_text: r.policy.to_string(),
        who_may_approve: who_may_approve_local(&r),
        failure: outcome
            .as_ref()
            .and_then(rancher_workflows::Failure::of)
            .map(Into::into),
        outcome,
        details: "shown".into(),
        plan: rancher_workflows::names::plan_of(&r),
        name_warnings: rancher_workflows::names::warnings(&r.names),
        audit: Some(audit),
        result: None,
        stored: r,
    }
}

/// Who may approve `r`, in words, from its policy and installer. Admins are not listed (the local store does not
/// know them).
pub fn who_may_approve_local(r: &ApprovalRequest) -> String {
    let text = r.policy.to_string();
    match &r.installer {
        Some(inst)
            if inst.id == r.requester.id && matches!(r.policy.rule, rancher_approval::Rule::Installer { .. }) =>
        {
            format!("{text}; the installer is the requester, so another holder of the admin global role")
        }
        Some(inst) if matches!(r.policy.rule, rancher_approval::Rule::Installer { .. }) => {
            format!("{text}: {}", people(inst))
        }
        _ => text,
    }
}

/// A principal for people: `name (id)`, escaped.
pub fn people(p: &Principal) -> String {
    match &p.username {
        Some(name) => format!("{} ({})", text::escape(name), text::escape(&p.id)),
        None => text::escape(&p.id),
    }
}

/// A principal's login name, else their id (as a session names its caller).
fn name(p: &Principal) -> String {
    p.username.clone().unwrap_or_else(|| p.id.clone())
}

/// The caller's login name (else id), as the service knows them.
async fn caller_name(c: &ServerClient) -> anyhow::Result<String> {
    Ok(name(&principal(&c.me().await.map_err(failure)?)))
}

/// Tests the service at `url` with `token` (`/healthz`, then `/api/v1/me`) and answers the line to print,
/// `service: URL (ok, you are NAME)`, and its document. A failure names the service, the cause and the fix.
pub async fn test_service(
    ctx: &Context,
    url: &str,
    token: rancher_auth::BearerToken,
) -> anyhow::Result<(String, Value)> {
    let _ = SERVER_ORIGIN.set(ctx.server_origin());
    let c = build_client(ctx, url, token)?;
    c.healthz().await.map_err(failure)?;
    let me = c.me().await.map_err(failure)?;
    let admin = if me.is_admin { ", an admin" } else { "" };
    let line = format!(
        "service: {} (ok, you are {}{admin})",
        text::escape(url),
        text::escape(me.name())
    );
    Ok((line, serde_json::json!({"url": url, "ok": true, "user": me})))
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
    if super::review_stream::streams(w.id, ctx.format(), dry_run) {
        // A review is written as it is produced: its document would be the largest thing a run holds.
        drop(progress);
        super::review_stream::run(ctx.format(), &runner, &session, &inputs).await?;
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
        && is_list(w.id)
        && inputs.as_object().is_none_or(|o| o.is_empty())
}

/// Whether workflow `id` is one of the built-in lists, as the workflow itself says ([`rancher_workflows::Workflow::list`]).
fn is_list(id: &str) -> bool {
    rancher_workflows::Registry::builtins()
        .get(id)
        .is_some_and(|w| w.list().is_some())
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
    if is_list(workflow) {
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
fn object(inputs: Value) -> rancher_workflows::Inputs {
    match inputs {
        Value::Object(m) => Value::Object(m).into(),
        _ => Value::Object(serde_json::Map::new()).into(),
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
