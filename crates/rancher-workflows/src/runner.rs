//! Install, submit, approve and execute exactly once.
//!
//! `submit` runs a read at once, or records a request: writes always go through the store, so every write is
//! audited and claimed once, whatever the policy. `approve` records the caller's decision (the caller is whoever
//! the session's token belongs to, on the request's own server) and, when that makes the request approved,
//! claims it and executes it once, with the approver's session or, in the approvals service, with the service's
//! own session ([`Runner::with_executor`]).
//!
//! A claim is a lease that the executing process renews while it works; [`Runner::reconcile`] takes over only
//! executions whose lease ran out or whose process is gone, so it never races a live executor.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rancher_approval::{
    ApprovalRequest, ApproverRef, Decision, EligibilityContext, ExecutionClaim, Executor, Installation, NewRequest,
    Outcome, Policy, RequestFilter, RequestId, RequestState, Rule, Store, Takeover,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::exec::{Exec, Fence, RunOutput};
use crate::listing::ListStream;
use crate::registry::Registry;
use crate::session::Session;
use crate::workflow::{check_inputs, Inputs, Workflow};

mod breakglass;
pub use breakglass::{BrokeGlass, HARD_CAP_SECS, REVIEW_WORKFLOW};

/// What `submit` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Submitted {
    /// It ran (no approval needed, or a dry run).
    Succeeded {
        /// The output.
        result: Box<RunOutput>,
    },
    /// It waits for approval.
    Pending {
        /// The approval request id.
        request: String,
        /// Who can approve it, in words.
        approvers: String,
        /// When it expires.
        expires_at: String,
    },
}

/// What `approve` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Approved {
    /// The vote was recorded; more approvals are needed.
    Pending {
        /// The approval request id.
        request: String,
    },
    /// Approved and executed once (here).
    Succeeded {
        /// The approval request id.
        request: String,
        /// The output.
        result: Box<RunOutput>,
    },
    /// Approved, executed, and the server refused: its error is kept on the request.
    Failed {
        /// The approval request id.
        request: String,
        /// The server's error.
        error: String,
        /// Who stopped it: Rancher, no answer from Rancher, or rancherctl itself.
        refused_by: RefusedBy,
    },
}

/// Who stopped an approved execution that failed. Stored with the outcome (`refused_by` in its detail) and sent
/// with a request's view, so nobody has to guess it from the error's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusedBy {
    /// Rancher answered with an HTTP error status.
    Rancher,
    /// Rancher could not be reached: no connection, or no answer in time.
    Unreachable,
    /// rancherctl itself, which checks a request again before it writes (a grant gone meanwhile, a changed
    /// target, a file changed since approval).
    Rancherctl,
}

impl RefusedBy {
    /// Who stopped a run that failed with `e`.
    pub fn of(e: &Error) -> RefusedBy {
        match e {
            Error::Api(api) if api.status().is_some() => RefusedBy::Rancher,
            Error::Api(rancher_api::Error::Connect { .. } | rancher_api::Error::Timeout { .. }) => {
                RefusedBy::Unreachable
            }
            Error::Api(rancher_api::Error::Transport { .. }) => RefusedBy::Unreachable,
            // A workflow that answers a refusal of Rancher in its own words (an escalation refused, a test login
            // that failed) keeps the server's answer in them.
            other => RefusedBy::from_words(&other.to_string()),
        }
    }

    /// Who stopped it, told from an error's words alone: an HTTP error status after `: ` is Rancher's, a
    /// connection that failed or timed out is no answer, anything else is rancherctl's. For errors a workflow
    /// put in its own words, and for outcomes stored before the refusal was recorded.
    pub fn from_words(error: &str) -> RefusedBy {
        let status = error.match_indices(": ").any(|(i, _)| {
            let rest = &error.as_bytes()[i + 2..];
            rest.len() > 3
                && matches!(rest[0], b'4' | b'5')
                && rest[1..3].iter().all(u8::is_ascii_digit)
                && rest[3] == b' '
        });
        if status {
            RefusedBy::Rancher
        } else if error.contains("could not connect")
            || error.contains("timed out")
            || error.contains("connection failed")
        {
            RefusedBy::Unreachable
        } else {
            RefusedBy::Rancherctl
        }
    }
}

/// A failed execution as its stored outcome tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The error.
    pub error: String,
    /// Who stopped it.
    pub refused_by: RefusedBy,
}

impl Failure {
    /// The failure an outcome records, or `None` for a success. An outcome stored before `refused_by` was
    /// recorded is read from its error's words.
    pub fn of(outcome: &Outcome) -> Option<Failure> {
        if outcome.status != rancher_approval::OutcomeStatus::Failed {
            return None;
        }
        let error = outcome
            .detail
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error recorded");
        let refused_by = outcome
            .detail
            .get("refused_by")
            .and_then(|r| RefusedBy::deserialize(r).ok())
            .unwrap_or_else(|| RefusedBy::from_words(error));
        Some(Failure {
            error: error.to_string(),
            refused_by,
        })
    }

    /// The detail a failed outcome stores.
    fn detail(e: &Error) -> Value {
        json!({"error": e.to_string(), "refused_by": RefusedBy::of(e)})
    }
}

/// How long a claim holds before another process may take it over, unless renewed; the executing process renews
/// it every third of that while it works.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The workflow runner over an approval store.
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn Store>,
    process: Process,
    executor: Option<Arc<Session>>,
    lease: Duration,
    registry: Arc<Registry>,
    gate: Option<Arc<ExecutionGate>>,
    progress: crate::progress::ProgressHandle,
    policies: Option<crate::policies::Policies>,
}

/// Whether a runner may execute. The approvals service closes it while its audit log does not verify from the head
/// it last published (someone rewrote the store's history): decisions are still recorded, but nothing is claimed,
/// taken over or run until the check passes again.
#[derive(Debug, Default)]
pub struct ExecutionGate {
    closed: std::sync::Mutex<Option<String>>,
}

impl ExecutionGate {
    /// Stops executions, saying why (shown in the error every refused execution gets).
    pub fn close(&self, why: impl Into<String>) {
        *self.closed.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.into());
    }

    /// Lets executions run again.
    pub fn open(&self) {
        *self.closed.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Why executions are stopped, when they are.
    pub fn closed(&self) -> Option<String> {
        self.closed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn check(&self) -> Result<()> {
        match self.closed() {
            None => Ok(()),
            Some(why) => Err(Error::Halted(format!(
                "nothing is executed while the audit log does not verify from the head this service published ({why}); the decision is recorded, and the request runs once an administrator has restored the store (see docs/server.md, \"Anchors\")"
            ))),
        }
    }
}

/// This process, as executions record it.
#[derive(Debug, Clone)]
struct Process {
    label: String,
    host: String,
    pid: u32,
    boot_id: Option<String>,
    pid_ns: Option<String>,
    started: Option<u64>,
}

impl Process {
    fn current(program: &str) -> Self {
        let host = host_name();
        let pid = std::process::id();
        let program: String = program.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
        Process {
            label: format!("{program}@{host} pid {pid}"),
            host,
            pid,
            boot_id: boot_id(),
            pid_ns: pid_namespace(),
            started: start_time(pid),
        }
    }
}

/// The kernel's id of this boot (`/proc/sys/kernel/random/boot_id`): the same for every process, container or not,
/// until the machine restarts.
fn boot_id() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = raw.trim();
    (!id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')).then(|| id.to_string())
}

/// This process's PID namespace (`pid:[4026531836]`): process ids are only comparable within one.
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let ns = link.to_str()?;
    (ns.len() <= 64 && ns.chars().all(|c| c.is_ascii_graphic())).then(|| ns.to_string())
}

/// When process `pid` (of this PID namespace) started, in clock ticks after boot (`/proc/<pid>/stat`, field 22);
/// `None` when there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses: count after the last `)`.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The machine's host name from the kernel (not `$HOSTNAME`, which anyone can set), restricted to the characters
/// a host name may have.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(253)
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// Whether the process that holds an execution is known to be gone: it ran on this host, in this boot and this
/// PID namespace, and no process with its id and start time exists any more. A host name alone proves nothing
/// (containers share names, and a process id means something only in its own namespace), so a record without
/// the boot id, namespace or start time (written by an older version) is never judged gone: its lease decides.
fn owner_gone(execution: Option<&rancher_approval::ExecutionRecord>, me: &Process) -> bool {
    let Some(e) = execution else { return false };
    let same_place = e.host.as_deref() == Some(me.host.as_str())
        && e.boot_id.is_some()
        && e.boot_id == me.boot_id
        && e.pid_ns.is_some()
        && e.pid_ns == me.pid_ns;
    match (same_place, e.pid, e.started) {
        (true, Some(pid), Some(started)) => {
            if pid == me.pid && Some(started) == me.started {
                return false;
            }
            // Gone, or its id now belongs to a process that started later.
            start_time(pid) != Some(started)
        }
        _ => false,
    }
}

/// The fence of one claimed execution: before each write, the claim's lease is renewed, which the store refuses
/// once another process has taken the execution over.
struct ClaimFence {
    store: Arc<dyn Store>,
    claim: std::sync::Mutex<ExecutionClaim>,
    lease: Duration,
}

#[async_trait::async_trait]
impl Fence for ClaimFence {
    async fn confirm(&self) -> Result<()> {
        let claim = self.claim.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match self
            .store
            .renew_lease(&claim, lease_until(self.lease), Utc::now())
            .await
        {
            Ok(renewed) => {
                *self.claim.lock().unwrap_or_else(|p| p.into_inner()) = renewed;
                Ok(())
            }
            Err(rancher_approval::Error::StaleClaim { id, state }) => {
                tracing::warn!(request = %id, %state, "this execution was taken over by another process; stopping without writing");
                Err(Error::Refused(format!(
                    "approval request {id} is no longer this process's to execute (it was taken over while this process was paused or judged gone; it is now {state}): nothing more was written"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("process", &self.process.label)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

fn lease_until(lease: Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::seconds(60))
}

impl Runner {
    /// A runner; `program` names this program in the audit log (the host and process id are added).
    pub fn new(store: Arc<dyn Store>, program: impl AsRef<str>) -> Self {
        Runner {
            store,
            process: Process::current(program.as_ref()),
            executor: None,
            lease: DEFAULT_LEASE,
            registry: Arc::new(Registry::builtin()),
            gate: None,
            progress: crate::progress::silent(),
            policies: None,
        }
    }

    /// Judges every write request filed here by `policies`' rules ([`crate::policies`]).
    pub fn with_policies(mut self, policies: crate::policies::Policies) -> Self {
        self.policies = Some(policies);
        self
    }

    /// The rules requests filed here are judged by, if any.
    pub fn policies(&self) -> Option<&crate::policies::Policies> {
        self.policies.as_ref()
    }

    /// Runs and executions this runner makes report their long stages to `progress` (a terminal's progress bar).
    pub fn with_progress(mut self, progress: crate::progress::ProgressHandle) -> Self {
        self.progress = progress;
        self
    }

    /// Executes (claims, takes over, runs) only while `gate` is open.
    pub fn with_gate(mut self, gate: Arc<ExecutionGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    fn may_execute(&self) -> Result<()> {
        self.gate.as_ref().map_or(Ok(()), |g| g.check())
    }

    /// Runs the workflows of `registry` (default: [`Registry::builtin`]); a downstream crate adds its own there.
    pub fn with_registry(mut self, registry: Registry) -> Self {
        self.registry = Arc::new(registry);
        self
    }

    /// The workflows this runner knows.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn workflow(&self, id: &str) -> Result<Arc<dyn Workflow>> {
        self.registry.require(id).cloned()
    }

    /// Executes approved requests with `session` (a service account) instead of the approver's session, which
    /// then only proves who decided. The approvals service runs this way.
    pub fn with_executor(mut self, session: Session) -> Self {
        self.executor = Some(Arc::new(session));
        self
    }

    /// Sets how long an execution claim holds without renewal (default [`DEFAULT_LEASE`]).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(300));
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// This process as the audit log names it (`program@host pid N`).
    pub fn process_label(&self) -> &str {
        &self.process.label
    }

    /// Installs a workflow with `policy` (or its default), recording the session's user as the installer. Only an
    /// admin may: the installer becomes the approval authority of the workflow.
    pub async fn install(&self, session: &Session, workflow: &str, policy: Option<Policy>) -> Result<Installation> {
        let d = self.workflow(workflow)?.def();
        if !session.is_admin {
            return Err(Error::NotAllowed(format!(
                "only an admin may install `{}`: the installer decides who approves its runs; ask an admin to run `rancherctl workflows install {}`",
                d.id, d.id
            )));
        }
        let policy = policy.unwrap_or_else(|| d.default_approval.policy());
        duration_options_fit(d, &policy)?;
        let policy = resolve_approvers(session, policy).await?;
        let who = session.principal.clone();
        let id = d.id.to_string();
        self.store
            .install(&id, &who, policy, Utc::now())
            .await
            .map_err(Error::from)
    }

    /// Changes the policy of an installed workflow: only its installer or an admin may.
    pub async fn set_policy(&self, session: &Session, workflow: &str, policy: Policy) -> Result<Installation> {
        let d = self.workflow(workflow)?.def();
        let inst = self
            .installation(d.id)
            .await?
            .ok_or_else(|| Error::NotInstalled(d.id.into()))?;
        if inst.installer.id != session.principal.id && !session.is_admin {
            return Err(Error::NotAllowed(format!(
                "only the installer ({}) or an admin may change the policy of `{}`",
                inst.installer.username.clone().unwrap_or(inst.installer.id.clone()),
                d.id
            )));
        }
        duration_options_fit(d, &policy)?;
        let policy = resolve_approvers(session, policy).await?;
        let who = session.principal.clone();
        let id = d.id.to_string();
        self.store
            .set_policy(&id, policy, &who, Utc::now())
            .await
            .map_err(Error::from)
    }

    /// The installation of a workflow, if any.
    pub async fn installation(&self, workflow: &str) -> Result<Option<Installation>> {
        let id = workflow.to_string();
        self.store.get_installation(&id).await.map_err(Error::from)
    }

    /// Runs a workflow: a read (or a dry run) at once; a write through an approval request when its policy asks
    /// for one, else at once, but always recorded, claimed and audited. Targets (users, groups, bindings) are
    /// pinned to ids at submit, and the request is bound to the session's server.
    pub async fn submit(
        &self,
        session: &Session,
        workflow: &str,
        inputs: impl Into<Inputs>,
        reason: Option<String>,
        dry_run: bool,
    ) -> Result<Submitted> {
        let w = self.workflow(workflow)?;
        let d = w.def();
        let inputs: Inputs = inputs.into();
        check_inputs(d, &inputs)?;
        w.check(&inputs)?;
        let inst = self
            .installation(d.id)
            .await?
            .ok_or_else(|| Error::NotInstalled(d.id.into()))?;
        if d.inputs.iter().any(|i| i.name == "duration") && !w.reads_only(&inputs) {
            let duration = crate::grants::duration_secs(d, &inputs)?.map(Duration::from_secs);
            inst.policy.check_duration(d.id, duration)?;
        }
        // Enabling a provider is the exception: filing it holds inline secrets in memory for the request, which a
        // dry run must not do; its run checks the same things itself.
        if w.reads_only(&inputs) || (dry_run && w.dry_run_unprepared()) {
            let out = Exec::new(session, dry_run)
                .with_progress(self.progress.clone())
                .run_workflow(w.as_ref(), &inputs)
                .await?;
            return Ok(Submitted::Succeeded { result: Box::new(out) });
        }
        // Validate inputs against the server now, so a request is never filed for something that cannot run, and
        // pin what names mean now. A dry run takes the same path up to the first write: it runs on the pinned
        // inputs, so it resolves names and finds what the real run would.
        let mut pinned = w.prepare(session, inputs).await?;
        // A grant held already: asking anyone to approve it would waste their time, so that is refused (its dry run
        // too); a run that needs no approval stays the idempotent, audited no-op it always was.
        if let Some(said) = pinned
            .inputs
            .as_object_mut()
            .and_then(|m| m.remove(crate::grants::ALREADY_HELD))
        {
            if inst.policy.needs_approval() {
                return Err(Error::AlreadyHeld(said.as_str().unwrap_or_default().to_string()));
            }
        }
        // Rules (`serve --policies`) judge what was pinned, first (a rule's refusal is the answer): a refusal files
        // nothing; otherwise the decision sets the policy the request is filed under. A dry run files nothing, so
        // nothing is judged.
        let judged = match &self.policies {
            Some(p) if !dry_run => p.judge(session, d, &pinned, reason.as_deref(), false).await?,
            _ => None,
        };
        if let Some((decision, _)) = judged
            .as_ref()
            .filter(|(d, _)| matches!(d.verdict, rancher_approval::rules::RuleVerdict::Denied { .. }))
        {
            return Err(crate::policies::refusal(d.id, decision));
        }
        // A time-bound grant of a role that can grant roles is not contained: only when the policy allows it.
        crate::grants::containment::check(d, &pinned.inputs, &inst.policy)?;
        if dry_run {
            let out = Exec::new(session, true)
                .with_progress(self.progress.clone())
                .with_store(self.store.clone())
                .run_workflow(w.as_ref(), &pinned.inputs)
                .await?;
            return Ok(Submitted::Succeeded { result: Box::new(out) });
        }
        let policy = match &judged {
            Some((decision, _)) => decision
                .policy_for(&inst.policy)
                .ok_or_else(|| crate::policies::refusal(d.id, decision))?,
            None => inst.policy.clone(),
        };
        let needs = policy.needs_approval();
        let secrets = w.secret_fields(&pinned.inputs);
        if needs && !secrets.is_empty() {
            return Err(Error::Refused(format!(
                "{}: the request holds secret field(s) {}; an approval request is stored and shown to approvers, so it never holds a secret. \
                 Send it with `rancherctl api` (no approval), or use a workflow that takes the secret from a file",
                d.id,
                secrets.join(", ")
            )));
        }
        // Stored masked by key name (the paths' last parts), at any depth.
        let secret_keys = secrets
            .iter()
            .filter_map(|p| p.rsplit('.').next())
            .map(|k| k.split('[').next().unwrap_or(k).to_string());
        let mut new = NewRequest::for_installation(&inst, session.principal.clone())
            .inputs(pinned.inputs.clone().into_value(), secret_keys)
            .targets(pinned.targets.iter().map(|(id, _)| id.clone()))
            .server(session.server.clone());
        for (id, label) in &pinned.targets {
            new = new.target_label(id.clone(), label.clone());
        }
        if let Some((decision, facts)) = &judged {
            new = new
                .under_rules(decision, facts)
                .map_err(|_| crate::policies::refusal(d.id, decision))?;
        }
        if needs {
            self.refuse_duplicate(d, &session.principal, &pinned, &session.server, reason.as_deref())
                .await?;
            // What approvers will read: the names of what it acts on, pinned now (a run that needs nobody's
            // approval is shown to nobody first, so it costs no lookups).
            let names = crate::names::resolve(session, d.id, pinned.inputs.as_value(), &pinned.targets).await?;
            new = new.names(names);
        }
        if let Some(r) = reason {
            new = new.reason(r);
        }
        let req = self.store.create_request(new, Utc::now()).await.map_err(Error::from)?;
        if req.state == RequestState::Approved {
            // No approval needed: run now, still claimed once and audited. A secret field is stored masked and
            // sent from memory: nobody reviews a run that needs no approval.
            let out = self.execute(session, &req.id, Some(pinned.inputs.as_value())).await??;
            return Ok(Submitted::Succeeded { result: Box::new(out) });
        }
        let fallback = session.admin_user_ids().await.unwrap_or_default();
        Ok(Submitted::Pending {
            request: req.id.to_string(),
            approvers: who_may_approve(&req, &fallback),
            expires_at: req.expires_at.to_rfc3339(),
        })
    }

    /// Refuses to file a request that asks exactly what a request of the same requester still waiting for approval
    /// asks: the same workflow, inputs (leaving out the ones the runner sets itself, such as a fresh binding name),
    /// targets, server and reason (what the content hash covers, less the inputs the runner sets itself): a second
    /// copy would only give approvers the same thing twice. A request that says why differently is another request.
    async fn refuse_duplicate(
        &self,
        d: &crate::catalog::WorkflowDef,
        requester: &rancher_approval::Principal,
        pinned: &crate::Pinned,
        server: &rancher_approval::ServerIdentity,
        reason: Option<&str>,
    ) -> Result<()> {
        let asked = |inputs: &Value| -> Value {
            let mut v = inputs.clone();
            if let Some(m) = v.as_object_mut() {
                for i in d.inputs.iter().filter(|i| i.is_internal()) {
                    m.remove(i.name);
                }
            }
            v
        };
        let filter = RequestFilter {
            states: vec![RequestState::Pending],
            workflow_id: Some(d.id.to_string()),
            requester: Some(requester.id.clone()),
        };
        let now = Utc::now();
        let targets: Vec<String> = pinned.targets.iter().map(|(id, _)| id.clone()).collect();
        let mine = asked(&pinned.inputs);
        let same = self
            .store
            .list_requests(&filter)
            .await
            .map_err(Error::from)?
            .into_iter()
            .find(|r| {
                r.expires_at > now
                    && r.server.as_ref() == Some(server)
                    && r.reason.as_deref() == reason
                    && asked(&r.inputs) == mine
                    && r.targets
                        .iter()
                        .map(|t| t.as_str())
                        .eq(targets.iter().map(String::as_str))
            });
        match same {
            Some(r) => Err(Error::Refused(format!(
                "{}: request {} asks the same and is already waiting for approval (filed {}); see it with `rancherctl approvals show {}`, or cancel it with `rancherctl approvals cancel {}` before filing again",
                d.id,
                r.id,
                r.created_at.format("%Y-%m-%d %H:%M UTC"),
                r.id,
                r.id
            ))),
            None => Ok(()),
        }
    }

    /// Opens a built-in list workflow (one whose [`Workflow::list`] names its list) as a stream of typed items, after the checks
    /// [`Runner::submit`] makes (inputs, installation). Lists only read, so nothing is stored. `None` when the
    /// workflow is not one of those lists; then use [`Runner::submit`]. `rows`: whether table rows will be asked
    /// for.
    pub async fn open_list(
        &self,
        session: &Session,
        workflow: &str,
        inputs: impl Into<Inputs>,
        rows: bool,
    ) -> Result<Option<ListStream>> {
        let w = self.workflow(workflow)?;
        let d = w.def();
        let inputs: Inputs = inputs.into();
        let Some(kind) = w.list().filter(|_| w.reads_only(&inputs)) else {
            return Ok(None);
        };
        check_inputs(d, &inputs)?;
        w.check(&inputs)?;
        self.installation(d.id)
            .await?
            .ok_or_else(|| Error::NotInstalled(d.id.into()))?;
        Exec::new(session, false).stream(kind, rows).await.map(Some)
    }

    /// Records the session user's approval; if that approves the request, executes it exactly once.
    pub async fn approve(&self, session: &Session, request: &str, reason: Option<String>) -> Result<Approved> {
        self.decide(session, request, Decision::approve(), reason).await
    }

    /// Records the session user's denial.
    pub async fn deny(&self, session: &Session, request: &str, reason: Option<String>) -> Result<ApprovalRequest> {
        self.deny_reviewed(session, request, reason, None).await
    }

    /// [`Runner::approve`] bound to the content the approver was shown (`reviewed`: the request's content hash as
    /// shown); refused with [`rancher_approval::Error::ContentChanged`] when the request differs.
    pub async fn approve_reviewed(
        &self,
        session: &Session,
        request: &str,
        reason: Option<String>,
        reviewed: Option<String>,
    ) -> Result<Approved> {
        let decision = match reviewed {
            Some(h) => Decision::approve().reviewed(h),
            None => Decision::approve(),
        };
        self.decide(session, request, decision, reason).await
    }

    /// [`Runner::deny`] bound to the content the reviewer was shown, as [`Runner::approve_reviewed`].
    pub async fn deny_reviewed(
        &self,
        session: &Session,
        request: &str,
        reason: Option<String>,
        reviewed: Option<String>,
    ) -> Result<ApprovalRequest> {
        let decision = match reviewed {
            Some(h) => Decision::deny().reviewed(h),
            None => Decision::deny(),
        };
        match self.decide(session, request, decision, reason).await? {
            Approved::Pending { request } | Approved::Succeeded { request, .. } | Approved::Failed { request, .. } => {
                self.get(&request).await
            }
        }
    }

    /// Records `decision` as the session's principal, as [`Runner::approve_reviewed`] and [`Runner::deny_reviewed`]
    /// do, keeping what the decision carries besides (where it was made: `via`); executes the request once when it
    /// becomes approved.
    pub async fn decide_as(&self, session: &Session, request: &str, decision: Decision) -> Result<Approved> {
        self.decide(session, request, decision, None).await
    }

    /// Records a decision made on the content the caller reviewed (`reviewed`: the request's content hash as
    /// shown), refused if the request changed since; executes it once when it becomes approved.
    pub async fn decide_reviewed(&self, session: &Session, request: &str, decision: Decision) -> Result<Approved> {
        let id = request.parse::<RequestId>()?;
        let fallback = session.admin_user_ids().await.unwrap_or_default();
        let ctx = EligibilityContext::with_fallback_approvers(fallback);
        let who = session.principal.clone();
        let decision = decision.through(session.server.clone());
        let id2 = id.clone();
        let outcome = self
            .store
            .decide(&id2, &who, decision, &ctx, Utc::now())
            .await
            .map_err(Error::from)?;
        if outcome.request.state != RequestState::Approved {
            return Ok(Approved::Pending {
                request: id.to_string(),
            });
        }
        self.execute_approved(session, &id).await
    }

    async fn decide(
        &self,
        session: &Session,
        request: &str,
        decision: Decision,
        reason: Option<String>,
    ) -> Result<Approved> {
        let id = request.parse::<RequestId>()?;
        // Approved but never claimed (the approving process died in between): an approver who voted for it, or an
        // admin, approving again runs it now. The claim still makes sure it runs once.
        let current = self.get(id.as_str()).await?;
        if decision.reviewed.as_ref().is_some_and(|h| *h != current.content_hash) {
            return Err(rancher_approval::Error::ContentChanged { id: id.to_string() }.into());
        }
        if current.state == RequestState::Approved && decision.vote == rancher_approval::Vote::Approve {
            let voted = current
                .decisions
                .iter()
                .any(|d| d.principal.id == session.principal.id && d.vote == rancher_approval::Vote::Approve);
            if voted || session.is_admin {
                tracing::info!(request = %id, "approved earlier but never executed; executing now");
                return self.execute_approved(session, &id).await;
            }
        }
        let decision = match reason {
            Some(r) => decision.because(r),
            None => decision,
        };
        self.decide_reviewed(session, id.as_str(), decision).await
    }

    /// Executes an approved request once (a second caller gets `AlreadyClaimed`), with the executor session when
    /// the runner has one, else with `session`.
    pub async fn execute_approved(&self, session: &Session, id: &RequestId) -> Result<Approved> {
        Ok(match self.execute(session, id, None).await? {
            Ok(out) => Approved::Succeeded {
                request: id.to_string(),
                result: Box::new(out),
            },
            Err(e) => Approved::Failed {
                request: id.to_string(),
                error: e.to_string(),
                refused_by: RefusedBy::of(&e),
            },
        })
    }

    fn executor_for<'a>(&'a self, session: &'a Session) -> &'a Session {
        self.executor.as_deref().unwrap_or(session)
    }

    fn executor_record(&self, session: &Session) -> Executor {
        let p = &self.process;
        Executor::new(session.principal.id.clone(), p.label.clone())
            .at(p.host.clone(), p.pid)
            .identity(p.boot_id.clone(), p.pid_ns.clone(), p.started)
            .on(session.server.clone())
    }

    /// The request `claim` was granted for, read again: its content must still be what the store checked when it
    /// granted the claim (so nothing changed in the store between the check and the run).
    async fn claimed_request(&self, claim: &ExecutionClaim) -> Result<ApprovalRequest> {
        let req = self.get(claim.request_id.as_str()).await?;
        if req.content_hash != claim.content_hash || req.compute_content_hash() != claim.content_hash {
            return Err(Error::Approval(rancher_approval::Error::Tampered {
                id: req.id.to_string(),
                problem: "its stored content changed after the claim was checked".into(),
            }));
        }
        Ok(req)
    }

    /// An executor for `claim`: every write confirms the claim first.
    fn fenced<'s>(&self, session: &'s Session, claim: &ExecutionClaim) -> Exec<'s> {
        let fence = ClaimFence {
            store: self.store.clone(),
            claim: std::sync::Mutex::new(claim.clone()),
            lease: self.lease,
        };
        Exec::new(session, false)
            .with_progress(self.progress.clone())
            .with_store(self.store.clone())
            .fenced(claim.request_id.as_str(), Arc::new(fence))
    }

    /// Claims, runs (`inputs` overrides the stored inputs only for runs nobody reviewed) and records the outcome,
    /// renewing the lease while the workflow runs.
    /// The outer error: the claim or the store failed (nothing ran, or the outcome is unknown); the inner one:
    /// the workflow ran and failed (recorded as the outcome).
    async fn execute(&self, session: &Session, id: &RequestId, inputs: Option<&Value>) -> Result<Result<RunOutput>> {
        self.may_execute()?;
        let session = self.executor_for(session);
        let executor = self.executor_record(session);
        let (id2, lease) = (id.clone(), self.lease);
        let claim = self
            .store
            .claim_execution(&id2, &executor, lease_until(lease), Utc::now())
            .await
            .map_err(Error::from)?;
        let req = match self.claimed_request(&claim).await {
            Ok(r) => r,
            Err(e) => return self.finish(claim, Err(e)).await,
        };
        let inputs = Inputs::from(inputs.cloned().unwrap_or_else(|| req.inputs.clone()));
        let exec = self.fenced(session, &claim);
        let work = async {
            let w = self.workflow(&req.workflow_id)?;
            exec.run_workflow(w.as_ref(), &inputs).await
        };
        let (result, claim) = self.renewing(claim, work).await;
        self.finish(claim, result).await
    }

    /// Runs `work` while renewing `claim` every third of the lease; returns the work's result and the claim as
    /// last renewed.
    async fn renewing<T>(
        &self,
        claim: ExecutionClaim,
        work: impl std::future::Future<Output = T>,
    ) -> (T, ExecutionClaim) {
        let store = self.store.clone();
        let lease = self.lease;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let renewer = tokio::spawn(async move {
            let mut claim = claim;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(lease / 3) => {}
                    _ = &mut stop_rx => return claim,
                }
                let c = claim.clone();
                match store
                    .renew_lease(&c, lease_until(lease), Utc::now())
                    .await
                    .map_err(Error::from)
                {
                    Ok(renewed) => claim = renewed,
                    Err(e) => {
                        tracing::warn!(error = %e, request = %claim.request_id, "could not renew the execution lease");
                        return claim;
                    }
                }
            }
        });
        let out = work.await;
        let _ = stop_tx.send(());
        let claim = renewer.await.expect("the lease renewer does not panic");
        (out, claim)
    }

    async fn finish(&self, claim: ExecutionClaim, result: Result<RunOutput>) -> Result<Result<RunOutput>> {
        let outcome = match &result {
            Ok(out) => Outcome::succeeded(stored_output(out)).with_grant(out.grant.clone()),
            Err(e) => Outcome::failed(Failure::detail(e)),
        };
        self.store
            .record_outcome(&claim, outcome, Utc::now())
            .await
            .map_err(Error::from)?;
        Ok(result)
    }

    /// Cancels a pending request: its requester or an admin may.
    pub async fn cancel(&self, session: &Session, request: &str, reason: Option<String>) -> Result<ApprovalRequest> {
        let req = self.get(request).await?;
        if req.requester.id != session.principal.id && !session.is_admin {
            return Err(Error::NotAllowed(
                "only the requester or an admin may cancel a request".into(),
            ));
        }
        let who = session.principal.clone();
        self.store
            .cancel(&req.id, &who, reason, Utc::now())
            .await
            .map_err(Error::from)
    }

    /// One request.
    pub async fn get(&self, request: &str) -> Result<ApprovalRequest> {
        let id = request.parse::<RequestId>()?;
        self.store.get_request(&id).await.map_err(Error::from)
    }

    /// Requests, optionally in one state (expired ones are marked first).
    pub async fn list(&self, state: Option<RequestState>) -> Result<Vec<ApprovalRequest>> {
        self.store.expire_due(Utc::now()).await?;
        let f = match state {
            Some(st) => RequestFilter::all().state(st),
            None => RequestFilter::all(),
        };
        Ok(self.store.list_requests(&f).await?)
    }

    /// Settles executions left in doubt: those whose lease ran out, or whose process (on this host) is gone. A
    /// live executor's request is left alone. Each is taken over (a new epoch, so the lost executor can record
    /// nothing), then checked against the server: applied means succeeded; not applied means it runs now, once,
    /// under the new claim, for the workflows whose effect can be checked; otherwise it is failed with the outcome
    /// unknown. Returns the requests settled.
    pub async fn reconcile(&self, session: &Session) -> Result<Vec<ApprovalRequest>> {
        self.may_execute()?;
        let session = self.executor_for(session);
        let now = Utc::now();
        let doubtful = self.store.in_doubt().await.map_err(Error::from)?;
        let mut settled = Vec::new();
        for req in doubtful {
            let expired = req
                .execution
                .as_ref()
                .is_some_and(|e| e.lease_until.unwrap_or(e.claimed_at) <= now);
            let why = if expired {
                Takeover::LeaseExpired
            } else if owner_gone(req.execution.as_ref(), &self.process) {
                Takeover::OwnerGone
            } else {
                continue;
            };
            let executor = self.executor_record(session);
            let (id, lease) = (req.id.clone(), self.lease);
            let seen = req.execution.as_ref().map(|e| e.claim_id.clone()).unwrap_or_default();
            let claim = match self
                .store
                .take_over(&id, &executor, why, &seen, lease_until(lease), Utc::now())
                .await
                .map_err(Error::from)
            {
                Ok(c) => c,
                // Another reconciler got there first, or the executor finished meanwhile.
                Err(Error::Approval(
                    rancher_approval::Error::NotInDoubt { .. } | rancher_approval::Error::LeaseHeld { .. },
                )) => continue,
                // Its record does not allow it to run (changed in the store, or never approved): the store settled
                // it as failed and recorded the refusal; nothing runs.
                Err(Error::Approval(refusal @ rancher_approval::Error::Tampered { .. })) => {
                    tracing::error!(request = %req.id, "refused to run an execution left in doubt: {refusal}; it is settled as failed and the refusal is in the audit log");
                    settled.push(self.get(req.id.as_str()).await?);
                    continue;
                }
                Err(e) => return Err(e),
            };
            // One request that cannot be settled now (Rancher unreachable, fenced meanwhile) does not hold up the
            // others: its claim's lease runs out and a later reconcile tries again.
            match self.settle(session, &req, claim).await {
                Ok(r) => settled.push(r),
                Err(e) => {
                    tracing::warn!(request = %req.id, error = %e, "could not settle an execution left in doubt; a later reconcile tries again")
                }
            }
        }
        Ok(settled)
    }

    /// Settles one taken-over execution: applied means succeeded; not applied runs it now, once, under `claim`;
    /// unknown is failed with the outcome unknown.
    async fn settle(&self, session: &Session, req: &ApprovalRequest, claim: ExecutionClaim) -> Result<ApprovalRequest> {
        // What runs is what the store checked at the take-over, read again under the claim.
        let req = &match self.claimed_request(&claim).await {
            Ok(r) => r,
            Err(e) => {
                let _ = self.finish(claim, Err(e)).await?;
                return self.get(req.id.as_str()).await;
            }
        };
        let w = self.workflow(&req.workflow_id)?;
        let inputs = Inputs::from(req.inputs.clone());
        let (outcome, note) = match w.applied(session, &inputs).await? {
            Some(true) => (
                Outcome::succeeded(json!({"reconciled": true, "note": "the server shows the change applied"})),
                "the change is on the server",
            ),
            Some(false) => {
                tracing::info!(request = %req.id, "not applied before the crash; executing it now under the new claim");
                let (result, claim) = self
                    .renewing(
                        claim.clone(),
                        self.fenced(session, &claim).run_workflow(w.as_ref(), &inputs),
                    )
                    .await;
                let _ = self.finish(claim, result).await?;
                return self.get(req.id.as_str()).await;
            }
            None => (
                Outcome::failed(
                    json!({"error": "outcome unknown after a crash; check the server and run again if needed"}),
                ),
                "outcome unknown",
            ),
        };
        self.store
            .resolve_in_doubt(&claim, outcome, note, Utc::now())
            .await
            .map_err(Error::from)
    }
}

/// Refuses `max_duration` / `require_duration` on a workflow that takes no `duration`: they could never be met
/// (or never matter), which is a mistake worth naming at install.
fn duration_options_fit(d: &crate::catalog::WorkflowDef, policy: &Policy) -> Result<()> {
    let o = &policy.options;
    if (o.max_duration_secs.is_some() || o.require_duration) && !d.inputs.iter().any(|i| i.name == "duration") {
        return Err(Error::Approval(rancher_approval::Error::InvalidPolicy {
            reason: format!("max_duration and require_duration apply to workflows with a `duration` input (grant-cluster-role, grant-project-role, create-global-role-binding); `{}` has none", d.id),
        }));
    }
    Ok(())
}

/// How many items of a list result, and rows of a table, an outcome keeps.
pub const STORED_ITEMS: usize = 5;

/// A run's output as the store keeps it: a list result (or table) longer than [`STORED_ITEMS`] is cut to its
/// count and first items, so a stored outcome stays small whatever the server listed.
pub(crate) fn stored_output(out: &RunOutput) -> Value {
    let mut doc = serde_json::to_value(out).unwrap_or(Value::Null);
    if let Some(items) = doc.get_mut("result").and_then(Value::as_array_mut) {
        if items.len() > STORED_ITEMS {
            let count = items.len();
            items.truncate(STORED_ITEMS);
            let first = std::mem::take(items);
            doc["result"] = json!({"count": count, "first": first, "truncated": true});
        }
    }
    if let Some(rows) = doc.pointer_mut("/table/rows").and_then(Value::as_array_mut) {
        if rows.len() > STORED_ITEMS {
            let count = rows.len();
            rows.truncate(STORED_ITEMS);
            doc["table"]["row_count"] = json!(count);
        }
    }
    doc
}

/// Who may approve `req`, in words, for the CLI and the service alike: the policy, and for the installer policy
/// the installer, or (when the installer is the requester) the other admins who stand in. Named approvers need no
/// more: the policy text lists them.
pub fn who_may_approve(req: &ApprovalRequest, admins: &[String]) -> String {
    let text = req.policy.to_string();
    if !matches!(req.policy.rule, Rule::Installer { .. }) {
        return text;
    }
    match &req.installer {
        Some(inst) if inst.id == req.requester.id => {
            let others: Vec<&str> = admins
                .iter()
                .map(String::as_str)
                .filter(|a| *a != req.requester.id)
                .collect();
            format!(
                "{text}; the installer is the requester, so another admin approves: {}",
                if others.is_empty() {
                    "none found".into()
                } else {
                    others.join(", ")
                }
            )
        }
        Some(inst) => format!("{text}: {}", inst.username.clone().unwrap_or(inst.id.clone())),
        None => text,
    }
}

/// The policy with every named approver checked on the session's server: a username becomes its user id (ids are
/// kept, so an existing policy's hash does not change), a group is checked through a principal search. An unknown
/// user or group is refused, naming the command that lists them.
async fn resolve_approvers(session: &Session, mut policy: Policy) -> Result<Policy> {
    if let Rule::Approvers { thresholds, .. } = &mut policy.rule {
        let exec = Exec::new(session, true);
        let approver = |e: Error| match e {
            Error::NotFound(m) => Error::NotFound(format!("--policy approver: {m}")),
            Error::Refused(m) => Error::Refused(format!("--policy approver: {m}")),
            other => other,
        };
        for t in thresholds.iter_mut() {
            for r in t.of.iter_mut() {
                match r {
                    ApproverRef::User(u) => *u = exec.resolve_user(u).await.map_err(approver)?.id,
                    ApproverRef::Group(g) => *g = crate::grants::resolve::group(session, g).await.map_err(approver)?,
                }
            }
        }
    }
    Ok(policy)
}

/// The named approvers of `policy` as people read them (`username (u-xxxxx)` for a user, the principal id for a
/// group), looked up on the session's server for display; a user that cannot be read is shown by id.
pub async fn approver_names(session: &Session, policy: &Policy) -> Vec<String> {
    let mut names = Vec::new();
    if let Rule::Approvers { thresholds, .. } = &policy.rule {
        let exec = Exec::new(session, true);
        for r in thresholds.iter().flat_map(|t| t.of.iter()) {
            let name = match r {
                ApproverRef::User(u) => match exec.resolve_user(u).await {
                    Ok(found) if !found.username.is_empty() => format!("{} ({u})", found.username),
                    _ => u.clone(),
                },
                ApproverRef::Group(g) => format!("group {g}"),
            };
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Table;

    /// The stored copy of a long list's outcome, byte for byte: the items cut to the first [`STORED_ITEMS`] under
    /// `first` with the count, the table's rows cut with `row_count`, Rancher's fields in Rancher's order.
    #[test]
    fn a_long_lists_stored_outcome_keeps_its_bytes() {
        let users: Vec<Value> = (0..7)
            .map(|i| json!({"id": format!("u-{i}"), "type": "user", "username": format!("user{i}"), "enabled": true, "zExtra": {"b": 1, "a": [i]}}))
            .collect();
        let out = RunOutput {
            workflow: "list-users".into(),
            summary: "7 users".into(),
            result: Value::Array(users),
            table: Some(Table {
                columns: vec!["ID".into(), "USERNAME".into()],
                rows: (0..7).map(|i| vec![format!("u-{i}"), format!("user{i}")]).collect(),
            }),
            dry_run: false,
            planned: Vec::new(),
            grant: None,
        };
        let item = |i: usize| {
            format!(
                r#"{{"id":"u-{i}","type":"user","username":"user{i}","enabled":true,"zExtra":{{"b":1,"a":[{i}]}}}}"#
            )
        };
        let row = |i: usize| format!(r#"["u-{i}","user{i}"]"#);
        let expected = format!(
            r#"{{"workflow":"list-users","summary":"7 users","result":{{"count":7,"first":[{}],"truncated":true}},"table":{{"columns":["ID","USERNAME"],"rows":[{}],"row_count":7}},"dry_run":false}}"#,
            (0..5).map(item).collect::<Vec<_>>().join(","),
            (0..5).map(row).collect::<Vec<_>>().join(","),
        );
        assert_eq!(serde_json::to_string(&stored_output(&out)).unwrap(), expected);
    }

    /// N15: a holder was judged gone when the host name matched and its process id was missing here, which also
    /// holds for a live process in another container (PID namespace) or on another machine of the same name.
    #[test]
    fn n15_owner_gone_needs_the_same_boot_pid_namespace_and_start_time() {
        let me = Process::current("test");
        assert!(
            me.boot_id.is_some() && me.pid_ns.is_some() && me.started.is_some(),
            "{me:?}"
        );
        // A process id no process of this namespace has.
        let free = (2_000_000..4_000_000)
            .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
            .unwrap();
        let record = |pid: u32, started: Option<u64>| rancher_approval::ExecutionRecord {
            claim_id: "c".into(),
            executor: "other".into(),
            principal: None,
            host: Some(me.host.clone()),
            pid: Some(pid),
            boot_id: me.boot_id.clone(),
            pid_ns: me.pid_ns.clone(),
            started,
            epoch: 1,
            lease_until: None,
            claimed_at: Utc::now(),
            finished_at: None,
            outcome: None,
            reconciled: None,
        };
        // Same host, boot and namespace, and no such process: gone.
        assert!(owner_gone(Some(&record(free, Some(1))), &me));
        // Its id taken by a process that started at another time (here: this one): gone.
        let parent = std::os::unix::process::parent_id();
        assert!(owner_gone(Some(&record(parent, Some(1))), &me));
        // The very process, alive: not gone.
        assert!(!owner_gone(Some(&record(parent, start_time(parent))), &me));
        // Another boot, another PID namespace, or an older record without them: nobody can tell; the lease decides.
        let other_boot = rancher_approval::ExecutionRecord {
            boot_id: Some("00000000-0000-0000-0000-000000000000".into()),
            ..record(free, Some(1))
        };
        assert!(!owner_gone(Some(&other_boot), &me));
        let other_ns = rancher_approval::ExecutionRecord {
            pid_ns: Some("pid:[1]".into()),
            ..record(free, Some(1))
        };
        assert!(!owner_gone(Some(&other_ns), &me));
        let old = rancher_approval::ExecutionRecord {
            boot_id: None,
            pid_ns: None,
            started: None,
            ..record(free, None)
        };
        assert!(!owner_gone(Some(&old), &me));
        assert!(!owner_gone(None, &me));
    }

    #[test]
    fn who_refused_is_typed_stored_with_the_outcome_and_read_from_old_rows_by_their_words() {
        let refused = Error::Api(rancher_api::Error::Api {
            operation: "rk.globalrolebindings.create".into(),
            status: 403,
            server: rancher_api::ServerError::Unparsed {
                content_type: None,
                snippet: String::new(),
            },
            retry_after: None,
        });
        assert_eq!(RefusedBy::of(&refused), RefusedBy::Rancher);
        let lost = Error::Api(rancher_api::Error::Transport {
            operation: "x".into(),
            message: "reset".into(),
            source: None,
        });
        assert_eq!(RefusedBy::of(&lost), RefusedBy::Unreachable);
        let ours = Error::Refused("the `config` file changed after the request was approved".into());
        assert_eq!(RefusedBy::of(&ours), RefusedBy::Rancherctl);
        // Stored with the outcome, and read back from it.
        let detail = Failure::detail(&refused);
        assert_eq!(detail["refused_by"], json!("rancher"));
        let outcome = Outcome::failed(detail);
        assert_eq!(Failure::of(&outcome).unwrap().refused_by, RefusedBy::Rancher);
        // The stored field wins over the words.
        let typed = Outcome::failed(json!({"error": "x: 403 Forbidden", "refused_by": "rancherctl"}));
        assert_eq!(Failure::of(&typed).unwrap().refused_by, RefusedBy::Rancherctl);
        // An outcome stored before the field: told from its words, as before.
        let old = |error: &str| {
            Failure::of(&Outcome::failed(json!({ "error": error })))
                .unwrap()
                .refused_by
        };
        assert_eq!(old("rk.users.get: 403 Forbidden: no"), RefusedBy::Rancher);
        assert_eq!(
            old("rk.users.get: could not connect to r:443: refused"),
            RefusedBy::Unreachable
        );
        assert_eq!(old("grant g-1 is gone"), RefusedBy::Rancherctl);
        assert_eq!(
            Failure::of(&Outcome::failed(json!({}))).unwrap().error,
            "no error recorded"
        );
        assert!(Failure::of(&Outcome::succeeded(json!({}))).is_none());
    }

    #[test]
    fn a_stored_outcome_keeps_a_count_and_the_first_items_of_a_long_list() {
        let items: Vec<Value> = (0..50_000).map(|i| json!({"id": format!("u-{i}")})).collect();
        let rows = (0..50_000).map(|i| vec![format!("u-{i}")]).collect();
        let out = RunOutput {
            workflow: "list-users".into(),
            summary: "50000 users".into(),
            result: Value::Array(items),
            table: Some(Table {
                columns: vec!["ID".into()],
                rows,
            }),
            dry_run: false,
            planned: Vec::new(),
            grant: None,
        };
        let doc = stored_output(&out);
        assert_eq!(doc["result"]["count"], 50_000);
        assert_eq!(doc["result"]["first"].as_array().map(Vec::len), Some(STORED_ITEMS));
        assert_eq!(doc["result"]["first"][0]["id"], "u-0");
        assert_eq!(doc["table"]["rows"].as_array().map(Vec::len), Some(STORED_ITEMS));
        assert_eq!(doc["table"]["row_count"], 50_000);
        assert!(serde_json::to_string(&doc).unwrap().len() < 1_000);
        // A short result is stored whole.
        let short = RunOutput {
            result: json!([1, 2]),
            table: None,
            ..out
        };
        assert_eq!(stored_output(&short)["result"], json!([1, 2]));
    }
}
