//! `rancherctl approvals list|show|approve|deny|cancel|audit`. The reviewer is whoever the token in use
//! belongs to (resolved through the server), never a name from the command line.

use rancher_approval::{ApprovalRequest, AuditHead, RequestState};
use rancher_workflows::RunOutput;
use serde_json::json;

use crate::commands::backend::{people, Approval, Backend, Decided, Verified};
use crate::commands::printer::{render_run, run_document};
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;
use crate::text;

fn who(p: &rancher_approval::Principal) -> String {
    p.username.clone().unwrap_or_else(|| p.id.clone())
}

fn short_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// What a request asks, in one short cell: the plan in the names pinned at filing (`create a GlobalRoleBinding of
/// `admin` for Alice Example (alice, u-tt2kw)`), else, for a request filed without names, `alice → admin
/// (global), 8h` for a grant or its given inputs (`key=value`, the pinned plan left out); escaped.
pub fn summary(r: &ApprovalRequest) -> String {
    if !r.names.is_empty() {
        let plan = rancher_workflows::names::plan_of(r);
        // Whole: cut short, it would lose who or where, which is what the reader checks.
        return text::escape(plan.strip_prefix("will ").unwrap_or(&plan));
    }
    let given = given_inputs(&r.inputs);
    let get = |k: &str| given.get(k).and_then(|v| v.as_str()).map(text::escape);
    let label = |id: &str| r.target_labels.get(id).map(|l| text::escape(l));
    let mut s = match (get("user"), get("role")) {
        (Some(user), Some(role)) => {
            let who = given["user"].as_str().and_then(label).unwrap_or(user);
            let place = get("project").or(get("cluster")).unwrap_or_else(|| "global".into());
            format!("{who} → {role} ({place})")
        }
        _ => given
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| {
                        format!(
                            "{}={}",
                            text::escape(k),
                            text::escape(&v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
    };
    if let Some(d) = get("duration") {
        s.push_str(&format!(", {d}"));
    }
    if s.chars().count() > 60 {
        s = s.chars().take(59).collect::<String>() + "…";
    }
    s
}

/// The requests as a table; `me` (the caller) is marked `(you)`.
pub fn rows(reqs: &[ApprovalRequest], me: Option<&rancher_approval::Principal>) -> String {
    output::table(
        &["ID", "WORKFLOW", "STATE", "REQUESTER", "SUMMARY", "CREATED", "EXPIRES"],
        reqs.iter().map(|r| {
            let you = if me.is_some_and(|m| m.id == r.requester.id) {
                " (you)"
            } else {
                ""
            };
            vec![
                r.id.to_string(),
                r.workflow_id.clone(),
                r.state.to_string(),
                format!("{}{you}", who(&r.requester)),
                summary(r),
                short_time(&r.created_at),
                short_time(&r.expires_at),
            ]
        }),
    )
}

/// The `approvers:` and `waiting on:` lines of a request: who may approve, who approved so far, and for a pending
/// request that more approvals are still needed (from those the policy names, apart from the ones already given).
pub fn approver_lines(r: &ApprovalRequest, who_may_approve: &str) -> Vec<String> {
    let mut l = vec![format!("approvers: {}", text::escape(who_may_approve))];
    let approved: Vec<String> = r
        .decisions
        .iter()
        .filter(|d| matches!(d.vote, rancher_approval::Vote::Approve))
        .map(|d| people(&d.principal))
        .collect();
    if !approved.is_empty() {
        l.push(format!("approved:  by {}", approved.join(", ")));
    }
    if r.state == RequestState::Pending {
        l.push(format!("waiting on: {}", still_needed(r, who_may_approve)));
    }
    l
}

pub use crate::commands::backend::{keep, who_may_approve_local, Which};

/// `approvals list`: the requests the backend answers, printed the same way in both modes.
pub async fn list(ctx: &Context, backend: &Backend, which: Which<'_>) -> anyhow::Result<Exit> {
    let (reqs, me) = backend.requests(ctx, which).await?;
    print_list(ctx, &reqs, me.as_ref())
}

/// Prints requests, oldest first; `me` (when known) is marked `(you)`.
pub fn print_list(
    ctx: &Context,
    reqs: &[ApprovalRequest],
    me: Option<&rancher_approval::Principal>,
) -> anyhow::Result<Exit> {
    output::data(ctx.format(), &reqs, || {
        if reqs.is_empty() {
            "no approval requests".into()
        } else {
            rows(reqs, me)
        }
    })?;
    Ok(Exit::Done)
}

/// Warnings about look-alike strings among the inputs (`аlice` with a Cyrillic `а`), one per value.
fn look_alike_lines(inputs: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match inputs {
        serde_json::Value::String(s) => {
            if let Some(w) = text::look_alike(s) {
                out.push(format!(
                    "warning:   input `{}` = \"{}\" {w}",
                    text::escape(path),
                    text::escape(s)
                ));
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                look_alike_lines(v, &key, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                look_alike_lines(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Lines for people about one request. Everything a requester, an approver or a server wrote is escaped
/// ([`text::escape`]); the ids the request acts on are shown, and look-alike inputs are flagged.
pub fn describe(r: &ApprovalRequest) -> String {
    describe_full(r, false)
}

/// How many plan lines `approvals show` prints before `--full` is needed.
const PLAN_LINES: usize = 20;

/// Thousands separated by commas, for counts people read (`74,577`).
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The inputs people gave, without what was pinned at submit for execution (`plan`, `pinned`, `shown`), which
/// [`plan_lines`] renders; the JSON view keeps them all.
fn given_inputs(inputs: &serde_json::Value) -> serde_json::Value {
    let mut v = inputs.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["plan", "pinned", "shown"] {
            o.remove(k);
        }
    }
    v
}

/// A pinned plan for people: offboarding as a count summary and its step lines (the first [`PLAN_LINES`] unless
/// `full`), a token cleanup as "N tokens of M users" with its sample as a table. The pinned token names are
/// counted, never listed (they are in `-o json`).
fn plan_lines(inputs: &serde_json::Value, full: bool) -> Vec<String> {
    let mut l = Vec::new();
    if let Some(plan) = inputs.get("plan").filter(|p| p.is_object()) {
        let steps = plan["steps"].as_array().map(Vec::as_slice).unwrap_or_default();
        let of = |kind: &str| steps.iter().filter(|s| s["step"] == kind).count() as u64;
        let mut parts = vec![
            format!("{} tokens", count(of("delete-token"))),
            format!("{} bindings", count(of("delete-binding"))),
        ];
        if of("disable-user") > 0 {
            let name = plan["username"]
                .as_str()
                .or(inputs["user"].as_str())
                .unwrap_or("the user");
            parts.push(format!("disable {}", text::escape(name)));
        }
        l.push(format!(
            "plan:      {} steps: {}",
            count(steps.len() as u64),
            parts.join(", ")
        ));
        let shown: Vec<&str> = plan["shown"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
            .unwrap_or_default();
        let take = if full { shown.len() } else { shown.len().min(PLAN_LINES) };
        for line in &shown[..take] {
            l.push(format!("  - {}", text::escape(line)));
        }
        if take < shown.len() {
            l.push(format!(
                "  ... and {} more (`--full` shows every step)",
                count((shown.len() - take) as u64)
            ));
        }
    }
    if let Some(shown) = inputs.get("shown").filter(|s| s.is_object()) {
        let n = shown["count"].as_u64().unwrap_or(0);
        let users = shown["users"].as_u64().unwrap_or(0);
        let sample = shown["sample"].as_array().map(Vec::as_slice).unwrap_or_default();
        l.push(format!(
            "plan:      {} tokens of {} users to delete; a sample of {}:",
            count(n),
            count(users),
            sample.len()
        ));
        if let Some(clock) = shown["clock"].as_str() {
            l.push(format!("note:      {}", text::escape(clock)));
        }
        let cell = |t: &serde_json::Value, k: &str| t[k].as_str().map(text::escape).unwrap_or_else(|| "-".into());
        let table = output::table(
            &["NAME", "USER", "LOGIN", "KIND", "EXPIRES", "LAST USED"],
            sample.iter().map(|t| {
                vec![
                    cell(t, "name"),
                    cell(t, "user"),
                    cell(t, "login"),
                    cell(t, "kind"),
                    cell(t, "expires_at"),
                    cell(t, "last_used"),
                ]
            }),
        );
        l.extend(table.lines().map(|line| format!("  {line}")));
        if let Some(p) = inputs.get("pinned").and_then(|p| p.as_array()) {
            l.push(format!(
                "pinned:    {} token names (listed in -o json)",
                count(p.len() as u64)
            ));
        }
    }
    l
}

/// Marks the caller `(you)` in the lines of `text` that list people (requester, decisions, approvers, who is
/// still needed): after `name (id)`, or after the bare id.
pub fn mark_you(text: &str, me: &rancher_approval::Principal) -> String {
    const PEOPLE: [&str; 5] = ["requester:", "decision:", "approvers:", "approved:", "waiting on:"];
    let id = me.id.as_str();
    text.lines()
        .map(|line| {
            if id.is_empty() || !PEOPLE.iter().any(|p| line.starts_with(p)) {
                return line.to_string();
            }
            let named = format!("({id})");
            if line.contains(&named) {
                return line.replace(&named, &format!("{named} (you)"));
            }
            let mut out = String::new();
            let mut rest = line;
            while let Some(at) = rest.find(id) {
                let before = rest[..at].chars().last();
                let after = rest[at + id.len()..].chars().next();
                let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                out.push_str(&rest[..at + id.len()]);
                if !word(before) && !word(after) {
                    out.push_str(" (you)");
                }
                rest = &rest[at + id.len()..];
            }
            out.push_str(rest);
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// [`describe`] with every plan line when `full`, and the `approvers:` / `waiting on:` lines.
pub fn describe_with(r: &ApprovalRequest, full: bool, who_may_approve: &str) -> String {
    let mut out = describe_full(r, full);
    let lines = approver_lines(r, who_may_approve);
    // After the policy line.
    let mut l: Vec<String> = out.lines().map(str::to_string).collect();
    let at = l
        .iter()
        .position(|x| x.starts_with("policy:"))
        .map(|i| i + 1)
        .unwrap_or(l.len());
    for (i, line) in lines.into_iter().enumerate() {
        l.insert(at + i, line);
    }
    out = l.join("\n");
    out
}

/// [`describe`], with every plan line when `full`.
pub fn describe_full(r: &ApprovalRequest, full: bool) -> String {
    let mut l = vec![
        format!("request:   {}", r.id),
        format!("workflow:  {}", text::escape(&r.workflow_id)),
        format!("state:     {}", r.state),
        format!("requester: {}", people(&r.requester)),
        format!("inputs:    {}", text::escape(&given_inputs(&r.inputs).to_string())),
    ];
    // The plan in the names pinned at filing: the same sentence as the page, the API and the webhooks.
    l.push(format!(
        "plan:      {}",
        text::escape(&rancher_workflows::names::plan_of(r))
    ));
    for w in rancher_workflows::names::warnings(&r.names) {
        l.push(format!("warning:   {}", text::escape(&w)));
    }
    l.extend(plan_lines(&r.inputs, full));
    // A time-bound grant: how long, said plainly (the clock starts when it runs, not when it is approved).
    if let Some(d) = r.inputs.get("duration").and_then(|v| v.as_str()) {
        let what = if r.inputs.get("extends").is_some() {
            "extends by"
        } else {
            "grants for"
        };
        l.push(format!(
            "duration:  {what} {} from execution, then revoked",
            text::escape(d)
        ));
    }
    if !r.targets.is_empty() {
        let shown: Vec<String> = r
            .targets
            .iter()
            .map(|id| match r.target_labels.get(id) {
                Some(label) => format!("{} ({})", text::escape(id), text::escape(label)),
                None => text::escape(id),
            })
            .collect();
        l.push(format!("targets:   {}", shown.join(", ")));
    }
    for label in r.target_labels.values() {
        if let Some(w) = text::look_alike(label) {
            l.push(format!("warning:   target \"{}\" {w}", text::escape(label)));
        }
    }
    look_alike_lines(&r.inputs, "", &mut l);
    if let Some(server) = &r.server {
        l.push(format!("server:    {}", text::escape(&server.to_string())));
    }
    for p in std::iter::once(&r.requester).chain(r.decisions.iter().map(|d| &d.principal)) {
        if let Some(w) = p.username.as_deref().and_then(text::look_alike) {
            l.push(format!(
                "warning:   user name \"{}\" ({}) {w}",
                text::escape(p.username.as_deref().unwrap_or_default()),
                text::escape(&p.id)
            ));
        }
    }
    l.extend([
        format!("policy:    {}", text::escape(&r.policy.to_string())),
        format!("created:   {}", r.created_at.to_rfc3339()),
        format!("expires:   {}", r.expires_at.to_rfc3339()),
    ]);
    if let Some(reason) = &r.reason {
        l.push(format!("reason:    {}", text::escape(reason)));
    }
    for d in &r.decisions {
        let why = d
            .reason
            .as_deref()
            .map(|r| format!(": {}", text::escape(r)))
            .unwrap_or_default();
        l.push(format!(
            "decision:  {} by {} at {}{why}",
            d.vote,
            people(&d.principal),
            d.decided_at.to_rfc3339()
        ));
    }
    if let Some(x) = &r.execution {
        let outcome = match &x.outcome {
            Some(o) => {
                let status = format!("{:?}", o.status).to_lowercase();
                // The run's summary, or the error (the whole detail is in `-o json`).
                match ["summary", "error", "note"]
                    .iter()
                    .find_map(|k| o.detail.get(*k).and_then(|v| v.as_str()))
                {
                    Some(said) => format!("{status}: {}", text::escape(said)),
                    None => status,
                }
            }
            None => "in progress".into(),
        };
        let by = match &x.principal {
            Some(p) => format!("{} ({})", text::escape(p), text::escape(&x.executor)),
            None => text::escape(&x.executor),
        };
        l.push(format!(
            "executed:  by {by} at {}: {outcome}",
            x.claimed_at.to_rfc3339()
        ));
        if let Some(rec) = &x.reconciled {
            l.push(format!(
                "settled:   by {}: {}",
                text::escape(&rec.by),
                text::escape(&rec.note)
            ));
        }
    }
    if let Some(c) = &r.closed {
        let why = c
            .reason
            .as_deref()
            .map(|r| format!(": {}", text::escape(r)))
            .unwrap_or_default();
        l.push(format!(
            "closed:    by {} at {}{why}",
            text::escape(&c.by),
            c.at.to_rfc3339()
        ));
    }
    l.join("\n")
}

/// One request, in both modes: its document (`-o json`), or its lines for people with the caller marked `(you)`.
pub async fn show(ctx: &Context, backend: &Backend, id: &str, full: bool) -> anyhow::Result<Exit> {
    let (view, me) = backend.show(ctx, id).await?;
    output::data(ctx.format(), &view, || {
        let text = describe_with(&view.stored, full, &view.who_may_approve);
        match &me {
            Some(me) => mark_you(&text, me),
            None => text,
        }
    })?;
    Ok(Exit::Done)
}

/// Approves as the caller, bound to the request as read just before (its content hash); prints what that did in
/// both modes (see [`print_approval`]).
pub async fn approve(ctx: &Context, backend: &Backend, id: &str, reason: Option<String>) -> anyhow::Result<Exit> {
    print_approval(ctx, backend.approve(ctx, id, reason).await?)
}

/// Prints what an approval did: the approval recorded (exit 3), the run it executed, or why that run failed.
pub fn print_approval(ctx: &Context, approval: Approval) -> anyhow::Result<Exit> {
    match approval {
        Approval::Recorded {
            request,
            by,
            who_may_approve,
        } => print_partial(ctx, &request, &by, &who_may_approve),
        Approval::Executed {
            request,
            by,
            result,
            by_service,
        } => {
            let exit = print_executed(ctx, &request, &by, &result)?;
            if !by_service {
                crate::commands::printer::local_grant_note(&result);
            }
            Ok(exit)
        }
        Approval::Failed {
            request,
            error,
            refused_by,
            by_service,
        } => Err(execution_failed(&request, &error, refused_by, by_service)),
        Approval::Settled { request } => {
            let doc = json!({"status": request.state.as_str(), "request": request.id.as_str()});
            output::data(ctx.format(), &doc, || {
                format!("request {} is {}", request.id, request.state)
            })?;
            Ok(Exit::Done)
        }
    }
}

/// Prints an approval that executed the request, in local mode and through the service alike: the run's document
/// with the request id (`-o json`), or who approved and the run for people.
pub fn print_executed(ctx: &Context, request: &str, by: &str, result: &RunOutput) -> anyhow::Result<Exit> {
    let mut doc = run_document(result);
    if doc.get("status").is_none() {
        doc = json!({"status": "succeeded", "request": request, "result": doc});
    } else {
        doc["request"] = json!(request);
    }
    output::data(ctx.format(), &doc, || {
        format!(
            "approved by {} and executed once: {request}\n{}",
            text::escape(by),
            render_run(result)
        )
    })?;
    Ok(Exit::Done)
}

/// Prints an approval recorded on a request that needs more (exit 3): who approved, and who is still needed.
pub fn print_partial(ctx: &Context, r: &ApprovalRequest, by: &str, who_may_approve: &str) -> anyhow::Result<Exit> {
    let needed = still_needed(r, who_may_approve);
    let doc = json!({"status": "pending", "request": r.id.as_str(), "waiting_on": needed});
    output::data(ctx.format(), &doc, || {
        format!(
            "approval by {} recorded; request {} still needs {}",
            text::escape(by),
            r.id,
            text::escape(&needed)
        )
    })?;
    Ok(Exit::Pending)
}

/// The failure of an approved execution, saying who refused: Rancher (`rancher`), or rancherctl itself, which
/// checks a request again before it writes (a grant gone meanwhile, a changed target).
pub fn execution_failed(
    request: &str,
    error: &str,
    refused_by: rancher_workflows::RefusedBy,
    by_service: bool,
) -> anyhow::Error {
    let executed = if by_service {
        "approved and executed by the approvals service"
    } else {
        "approved and executed"
    };
    Failure::new(
        format!("request {request} was {executed}, and {}: {}", who_refused(refused_by), text::escape(error)),
        format!("the error is kept on the request (`rancherctl approvals show {request}`); file a new request once the cause is fixed"),
    )
    .into()
}

/// Who stopped an execution, in words, as its outcome records it.
fn who_refused(refused_by: rancher_workflows::RefusedBy) -> &'static str {
    match refused_by {
        rancher_workflows::RefusedBy::Rancher => "Rancher refused it",
        rancher_workflows::RefusedBy::Unreachable => "Rancher could not be reached",
        rancher_workflows::RefusedBy::Rancherctl => "rancherctl refused to go on",
    }
}

/// Who a pending request still waits on, in words: per threshold of its policy, the approvals still missing and from
/// whom (those who approved already left out); for the installer policy, the installer (or another admin).
pub fn still_needed(r: &ApprovalRequest, who_may_approve: &str) -> String {
    use rancher_approval::{Combine, Count, Rule, Vote};
    let approvers: Vec<&rancher_approval::Principal> = r
        .decisions
        .iter()
        .filter(|d| matches!(d.vote, Vote::Approve))
        .map(|d| &d.principal)
        .collect();
    match &r.policy.rule {
        Rule::None => "nobody".into(),
        Rule::Installer { .. } => match &r.installer {
            Some(i) if i.id != r.requester.id => format!("an approval from the installer, {}", people(i)),
            _ => match who_may_approve.split_once("another admin approves: ") {
                Some((_, list)) => format!("an approval from another admin (not the requester): {list}"),
                None => "an approval from another holder of the admin global role (not the requester)".into(),
            },
        },
        Rule::Approvers { combine, thresholds } => {
            let open: Vec<String> = thresholds
                .iter()
                .filter_map(|t| {
                    let name = |a: &rancher_approval::ApproverRef| match (a, r.target_labels.get(&a.to_string())) {
                        (_, Some(label)) => format!("{} ({})", text::escape(&a.to_string()), text::escape(label)),
                        _ => text::escape(&a.to_string()),
                    };
                    match t.count {
                        Count::All => {
                            let missing: Vec<String> =
                                t.of.iter()
                                    .filter(|a| !approvers.iter().any(|p| a.matches(p)))
                                    .map(name)
                                    .collect();
                            (!missing.is_empty()).then(|| format!("an approval from each of {}", missing.join(", ")))
                        }
                        Count::AtLeast(n) => {
                            let got = approvers.iter().filter(|p| t.names(p)).count() as u32;
                            let left = n.saturating_sub(got);
                            let from: Vec<String> =
                                t.of.iter()
                                    .filter(|a| {
                                        !matches!(a, rancher_approval::ApproverRef::User(_))
                                            || !approvers.iter().any(|p| a.matches(p))
                                    })
                                    .map(name)
                                    .collect();
                            let what = if left == 1 {
                                "1 more approval".to_string()
                            } else {
                                format!("{left} more approvals")
                            };
                            (left > 0).then(|| format!("{what} from {}", from.join(", ")))
                        }
                    }
                })
                .collect();
            if open.is_empty() {
                return "nobody: the approvals are in (the request is being executed)".into();
            }
            match combine {
                Combine::Any => open.join("; or "),
                Combine::All => open.join("; and "),
            }
        }
    }
}

/// Refuses `export`, `import`, `backup` and `reconcile` through the approvals service: they work on the store
/// itself.
fn store_here(backend: &Backend) -> anyhow::Result<()> {
    backend.store_here(
        "`approvals export`, `import`, `backup` and `reconcile` work on the store itself, not through the approvals service",
        "run them on the service's host with --store URL (the service reconciles by itself at start and periodically)",
    )
}

/// Settles executions left in doubt by a crash, by checking the server; lists what it settled.
pub async fn reconcile(ctx: &Context, backend: &Backend) -> anyhow::Result<Exit> {
    store_here(backend)?;
    let session = ctx.session().await?;
    let settled = ctx.runner().await?.reconcile(&session).await?;
    let doc = serde_json::to_value(&settled)?;
    output::data(ctx.format(), &doc, || {
        if settled.is_empty() {
            return "nothing in doubt: every claimed execution has its outcome".to_string();
        }
        settled
            .iter()
            .map(|r| format!("{} {}: {}", r.id, r.workflow_id, r.state))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(Exit::Done)
}

/// Denies as the caller, bound to the request as read just before.
pub async fn deny(ctx: &Context, backend: &Backend, id: &str, reason: Option<String>) -> anyhow::Result<Exit> {
    print_decided(ctx, &backend.deny(ctx, id, reason).await?)
}

/// Cancels a pending request (its requester or an admin).
pub async fn cancel(ctx: &Context, backend: &Backend, id: &str, reason: Option<String>) -> anyhow::Result<Exit> {
    print_decided(ctx, &backend.cancel(ctx, id, reason).await?)
}

/// Prints a denied or cancelled request: its document, or `request ID is STATE (by NAME)`.
pub fn print_decided(ctx: &Context, d: &Decided) -> anyhow::Result<Exit> {
    let r = &d.request;
    output::data(ctx.format(), r, || {
        format!("request {} is {} (by {})", r.id, r.state, text::escape(&d.by))
    })?;
    Ok(Exit::Done)
}

/// A head saved earlier: `SEQ:HASH`, or the full hash alone (`None` for the sequence number).
pub fn parse_head(text: &str) -> anyhow::Result<(Option<u64>, String)> {
    let t = text.trim();
    let (seq, hash) = match t.split_once(':') {
        Some((seq, hash)) => (seq.parse::<u64>().map(Some).ok(), hash),
        None => (Some(None), t),
    };
    if let Some(seq) = seq {
        if hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok((seq, hash.to_ascii_lowercase()));
        }
    }
    Err(Failure::new(
        format!("--expect-head `{t}` is not SEQ:HASH (a number, `:`, 64 hex digits) nor a full hash"),
        "pass the head printed after a change (`audit head: SEQ:HASH`) or by `approvals audit --verify`",
    )
    .into())
}

/// Checks the log against a head saved elsewhere: it must still hold that entry, with that hash.
pub fn check_saved_head(
    entries: &[rancher_approval::AuditEntry],
    seq: Option<u64>,
    hash: &str,
) -> anyhow::Result<AuditHead> {
    let shown = format!("{}:{hash}", seq.map(|s| s.to_string()).unwrap_or_else(|| "?".into()));
    let head = match seq {
        Some(seq) => AuditHead { seq, hash: hash.to_string() },
        None => match entries.iter().find(|e| e.hash == hash) {
            Some(e) => e.head(),
            None => {
                return Err(Failure::new(
                    format!("the saved audit head {hash} is not in the log ({} entries): the log was cut off or rewritten", entries.len()),
                    "restore approvals.db from a backup taken before the change and find out who can write the state directory",
                )
                .into())
            }
        },
    };
    match rancher_approval::verify_audit_chain(entries, Some(&head)) {
        Ok(_) => Ok(head),
        Err(rancher_approval::Error::AuditBroken { problem, .. }) => Err(Failure::new(
            format!(
                "the audit log does not hold the saved head {shown}: {}",
                problem.replace("recorded head", "saved head")
            ),
            "restore approvals.db from a backup taken before the change and find out who can write the state directory",
        )
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// The audit log as a table.
pub fn audit_table(entries: &[rancher_approval::AuditEntry]) -> String {
    output::table(
        &["SEQ", "AT", "ACTOR", "KIND", "REQUEST", "WORKFLOW"],
        entries.iter().map(|e| {
            vec![
                e.seq.to_string(),
                e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                e.actor.clone(),
                output::cell(serde_json::to_value(&e.kind).ok().as_ref()),
                e.request_id.clone().unwrap_or_default(),
                e.workflow_id.clone().unwrap_or_default(),
            ]
        }),
    )
}

/// Prints a verified log: its size, its head, where it was checked, and the saved head it still holds.
pub fn print_verified(ctx: &Context, v: &Verified, anchor: Option<&AuditHead>) -> anyhow::Result<Exit> {
    let (n, head) = (v.entries, &v.head);
    let doc = json!({"verified": true, "entries": n, "head": head.hash, "head_seq": head.seq, "checked": v.checked.as_str(), "expected_head": anchor});
    output::data(ctx.format(), &doc, || {
        let mut out = format!(
            "audit log verified: {n} entries, hash chain intact\nhead: {}:{}\n{}",
            head.seq,
            head.hash,
            v.checked.line()
        );
        if let Some(a) = anchor {
            out.push_str(&format!("\nthe saved head {}:{} is in the log", a.seq, a.hash));
        }
        out
    })?;
    Ok(Exit::Done)
}

/// The audit log; `--verify` checks the hash chain (in the store, or here on the entries the service sent), and
/// `--expect-head` that it still holds a head saved earlier.
pub async fn audit(ctx: &Context, backend: &Backend, verify: bool, expect_head: Option<&str>) -> anyhow::Result<Exit> {
    let saved = expect_head.map(parse_head).transpose()?;
    let log = backend.audit(ctx, verify).await?;
    match &log.verified {
        Some(v) => {
            let anchor = match &saved {
                Some((seq, hash)) => Some(check_saved_head(&log.entries, *seq, hash)?),
                None => None,
            };
            print_verified(ctx, v, anchor.as_ref())
        }
        None => {
            output::data(ctx.format(), &log.entries, || audit_table(&log.entries))?;
            Ok(Exit::Done)
        }
    }
}

/// `approvals export`: the whole store as JSON lines on stdout (escaped like every other JSON output).
pub async fn export(ctx: &Context, backend: &Backend) -> anyhow::Result<Exit> {
    store_here(backend)?;
    let store = ctx.existing_store().await?.ok_or_else(|| {
        Failure::new(
            "there is no approval store to export",
            "pass --store URL (or --state-dir DIR) to name the store",
        )
    })?;
    let summary = rancher_approval::export(store.as_ref(), output::safe_json_writer(std::io::stdout().lock())).await?;
    output::note(format!(
        "exported {} installations, {} requests ({} decisions), {} audit entries, {} delivery cursors",
        summary.installations, summary.requests, summary.decisions, summary.audit_entries, summary.cursors
    ));
    Ok(Exit::Done)
}

/// `approvals backup FILE`: a snapshot of a SQLite store in use, verified.
pub async fn backup(ctx: &Context, backend: &Backend, file: &std::path::Path) -> anyhow::Result<Exit> {
    store_here(backend)?;
    let path = match ctx.store_url()? {
        rancher_approval::StoreUrl::Sqlite(path) => path,
        rancher_approval::StoreUrl::Postgres(_) => {
            return Err(Failure::new(
                "the approval store is a PostgreSQL database, which rancherctl does not copy",
                "back it up with PostgreSQL's tools: pg_dump -Fc -f approvals.dump DATABASE (docs/approvals.md, \"Backups\")",
            )
            .into());
        }
    };
    if !path.exists() {
        return Err(Failure::new(
            format!("there is no approval store at {}", path.display()),
            "pass --store sqlite:PATH (or --state-dir DIR) to name the store to back up",
        )
        .into());
    }
    let store = rancher_approval::SqliteStore::open(&path)?;
    store.backup_to(file).await?;
    let copy = rancher_approval::SqliteStore::open(file)?;
    use rancher_approval::Store as _;
    let entries = copy.verify_audit().await?;
    let head = copy.audit_head().await?;
    let doc = serde_json::json!({"file": file.display().to_string(), "audit_entries": entries, "head": format!("{}:{}", head.seq, head.hash)});
    output::data(ctx.format(), &doc, || {
        format!(
            "backed up {} to {}: {entries} audit entries, chain verified, head {}:{}\nkeep the head apart; after a restore, `rancherctl approvals audit --verify --expect-head {}:{}` checks the restored store\n",
            text::escape(&path.display().to_string()),
            text::escape(&file.display().to_string()),
            head.seq,
            head.hash,
            head.seq,
            head.hash
        )
    })?;
    Ok(Exit::Done)
}

/// `approvals import FILE`: an export into this (empty) store, verified before it is kept.
pub async fn import(ctx: &Context, backend: &Backend, file: &std::path::Path) -> anyhow::Result<Exit> {
    store_here(backend)?;
    let input: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(file).map_err(|e| {
            Failure::new(
                format!("cannot read {}: {e}", file.display()),
                "name the file written by `rancherctl approvals export`",
            )
        })?;
        Box::new(std::io::BufReader::new(f))
    };
    let store = ctx.open_store().await?;
    let summary = rancher_approval::import(store.as_ref(), input).await?;
    output::data(ctx.format(), &summary, || {
        format!(
            "imported {} installations, {} requests ({} decisions), {} audit entries (chain verified), {} delivery cursors",
            summary.installations, summary.requests, summary.decisions, summary.audit_entries, summary.cursors
        )
    })?;
    Ok(Exit::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rancher_approval::{NamedKind, NamedTarget, PinnedNames};

    fn request(names: PinnedNames) -> ApprovalRequest {
        let mut r: ApprovalRequest = serde_json::from_value(json!({
            "id": "req-01jtest0000000000000000000", "workflow_id": "create-global-role-binding",
            "inputs": {"user": "u-tt2kw", "role": "admin"}, "requester": {"id": "u-req", "username": "bob"},
            "targets": [], "policy": rancher_approval::Policy::installer(), "policy_hash": "", "content_hash": "c0ffee",
            "created_at": "2026-12-07T00:00:00Z", "expires_at": "2026-12-14T00:00:00Z", "state": "pending",
            "decisions": [],
        }))
        .unwrap();
        r.names = names;
        r
    }

    #[test]
    fn the_summary_is_the_plan_in_the_names_pinned_at_filing() {
        let mut alice = NamedTarget::new(NamedKind::User, "u-tt2kw");
        alice.display_name = Some("Alice Example".into());
        alice.username = Some("alice".into());
        alice.input = Some("user".into());
        let named = request(PinnedNames {
            targets: vec![alice],
            look_alikes: vec![],
        });
        let s = summary(&named);
        assert!(
            s.starts_with("create a GlobalRoleBinding of") && s.ends_with("for Alice Example (alice, u-tt2kw)"),
            "{s}"
        );
        // Filed before names were pinned: the short form from the inputs, as before.
        assert_eq!(summary(&request(PinnedNames::default())), "u-tt2kw → admin (global)");
    }
}
