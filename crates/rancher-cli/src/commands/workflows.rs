//! `rancherctl workflows list|show|install|set-policy`, and the `--policy` flag syntax.

use std::time::Duration;

use anyhow::Context as _;
use rancher_approval::{ApproverRef, Installation, Policy};
use rancher_workflows::{all_workflows, find_workflow, WorkflowDef};
use serde_json::{json, Value};

use crate::cli::PolicyArgs;
pub use crate::commands::backend::unknown;
use crate::commands::backend::Backend;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;

fn entry(w: &WorkflowDef, inst: Option<&Installation>) -> Value {
    json!({
        "id": w.id,
        "title": w.title,
        "description": w.description,
        "inputs": w.inputs,
        "output": w.output,
        "writes": w.writes,
        "default_approval": w.default_approval,
        "default_policy": default_policy_text(w),
        "installed": inst.is_some(),
        "installation": inst,
    })
}

/// The default policy in words; the generic request needs approval for writes only.
fn default_policy_text(w: &WorkflowDef) -> String {
    match w.default_approval {
        rancher_workflows::DefaultApproval::InstallerForWrites => {
            format!("reads run at once; writes: {}", w.default_approval.policy())
        }
        _ => w.default_approval.policy().to_string(),
    }
}

/// The catalog with installs; reads only the catalog and the store file (no network, no runtime).
pub async fn list(ctx: &Context, backend: &Backend) -> anyhow::Result<Exit> {
    print_catalog(ctx, &backend.installations(ctx).await?)
}

/// Prints the catalog with these installations (local store or the approvals service).
pub fn print_catalog(ctx: &Context, installs: &[Installation]) -> anyhow::Result<Exit> {
    let find = |id: &str| installs.iter().find(|i| i.workflow_id == id);
    let docs: Vec<Value> = all_workflows().into_iter().map(|w| entry(w, find(w.id))).collect();
    output::data(ctx.format(), &docs, || {
        output::table(
            &["ID", "TITLE", "INSTALLED", "APPROVAL"],
            all_workflows().into_iter().map(|w| {
                let inst = find(w.id);
                let policy = match inst {
                    Some(i) => i.policy.to_string(),
                    None => format!("default: {}", default_policy_text(w)),
                };
                vec![
                    w.id.into(),
                    w.title.into(),
                    if inst.is_some() { "yes".into() } else { "no".into() },
                    policy,
                ]
            }),
        )
    })?;
    Ok(Exit::Done)
}

/// One workflow.
pub async fn show(ctx: &Context, backend: &Backend, id: &str) -> anyhow::Result<Exit> {
    print_one(ctx, id, &backend.installations(ctx).await?)
}

/// Prints one workflow with its installation among `installs`.
pub fn print_one(ctx: &Context, id: &str, installs: &[Installation]) -> anyhow::Result<Exit> {
    let w = find_workflow(id).ok_or_else(|| unknown(id))?;
    let inst = installs.iter().find(|i| i.workflow_id == w.id);
    output::data(ctx.format(), &entry(w, inst), || {
        let mut lines = vec![
            format!("{}: {}", w.id, w.title),
            w.description.to_string(),
            String::new(),
        ];
        if w.inputs.is_empty() {
            lines.push("inputs:   none".into());
        } else {
            lines.push("inputs:".into());
            for i in w.inputs {
                lines.push(format!(
                    "  --input {}=...  {}{}",
                    i.name,
                    i.description,
                    if i.required { " (required)" } else { "" }
                ));
            }
        }
        lines.push(format!("output:   {}", w.output));
        match inst {
            Some(i) => {
                let who = crate::text::escape(i.installer.username.as_ref().unwrap_or(&i.installer.id));
                lines.push(format!("installed by {who} at {}", i.installed_at.to_rfc3339()));
                lines.push(format!("policy:   {}", crate::text::escape(&i.policy.to_string())));
            }
            None => {
                lines.push("installed: no (`rancherctl workflows install ID`)".into());
                lines.push(format!("default policy: {}", default_policy_text(w)));
            }
        }
        lines.join("\n")
    })?;
    Ok(Exit::Done)
}

/// Prints an installation after `install` or `set-policy`.
pub fn print_installation(ctx: &Context, inst: &Installation, install: bool) -> anyhow::Result<Exit> {
    output::data(ctx.format(), inst, || {
        let verb = if install { "installed" } else { "policy changed for" };
        format!(
            "{verb} {}\npolicy: {}",
            inst.workflow_id,
            crate::text::escape(&inst.policy.to_string())
        )
    })?;
    Ok(Exit::Done)
}

/// `install` and `set-policy`, in both modes: the installation, then (locally) who its named approvers are.
pub async fn change(
    ctx: &Context,
    backend: &Backend,
    id: &str,
    args: &PolicyArgs,
    install: bool,
) -> anyhow::Result<Exit> {
    let w = find_workflow(id).ok_or_else(|| unknown(id))?;
    let current = if install {
        None
    } else {
        backend
            .installations(ctx)
            .await?
            .into_iter()
            .find(|i| i.workflow_id == w.id)
            .map(|i| i.policy)
    };
    let policy = policy_from_args(args, w, current.as_ref())?;
    let done = if install {
        backend.install(ctx, w.id, policy).await?
    } else {
        let policy = policy.ok_or_else(no_policy_given)?;
        backend.set_policy(ctx, w.id, policy).await?
    };
    print_installation(ctx, &done.installation, install)?;
    // Named approvers are stored by id: show who they are (on stderr when stdout carries data).
    if !done.approver_names.is_empty() {
        let line = format!("approvers: {}", crate::text::escape(&done.approver_names.join(", ")));
        if ctx.format() != crate::cli::Format::Table {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    Ok(Exit::Done)
}

/// The refusal of a `set-policy` that changes nothing.
pub fn no_policy_given() -> anyhow::Error {
    Failure::new("no policy given", "pass --policy ..., --policy-file FILE, --allow-self-approval, --expires-after, --max-duration or --require-duration").into()
}

/// The policy the flags describe, or `None` to keep the default (install) / nothing given (set-policy).
///
/// `current` is the installed policy for `set-policy`: the flags change only what they name, so `--policy` replaces
/// who approves and keeps the options (expiry, grant limits, self-approval); `--policy-file` replaces the whole
/// policy. For `install` (`current` is `None`) the flags change the workflow's default.
pub fn policy_from_args(
    args: &PolicyArgs,
    w: &WorkflowDef,
    current: Option<&Policy>,
) -> anyhow::Result<Option<Policy>> {
    let base = if let Some(path) = &args.policy_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the policy file {}", path.display()))?;
        let p: Policy = serde_json::from_str(&text)
            .or_else(|_| serde_norway::from_str(&text))
            .map_err(|e| {
                Failure::new(
                    format!("policy file {}: {e}", path.display()),
                    "see `rancherctl workflows install --help` for the form",
                )
            })?;
        Some(p)
    } else if let Some(spec) = &args.policy {
        Some(parse_policy(spec)?)
    } else {
        None
    };
    if base.is_none()
        && !args.allow_self_approval
        && args.expires_after.is_none()
        && args.max_duration.is_none()
        && !args.require_duration
    {
        return Ok(None);
    }
    let from_file = args.policy_file.is_some();
    let mut p = match (base, current) {
        (Some(new), Some(cur)) if !from_file => Policy {
            rule: new.rule,
            options: cur.options.clone(),
        },
        (Some(new), _) => new,
        (None, Some(cur)) => cur.clone(),
        (None, None) => w.default_approval.policy(),
    };
    if args.allow_self_approval {
        p = p.allow_self_approval(true);
    }
    if let Some(d) = &args.expires_after {
        p = p.expires_after(
            parse_duration(d).map_err(|e| Failure::new(format!("--expires-after: {e}"), "e.g. --expires-after 7d"))?,
        );
    }
    if let Some(d) = &args.max_duration {
        p = p.max_duration(
            rancher_approval::parse_duration(d)
                .map_err(|e| Failure::new(format!("--max-duration: {e}"), "e.g. --max-duration 8h"))?,
        );
    }
    if args.require_duration {
        p = p.require_duration(true);
    }
    p.validate()?;
    Ok(Some(p))
}

/// Parses `none`, `installer`, `any-of:A,B`, `all-of:A,B`, `at-least:N:A,B,C`.
pub fn parse_policy(spec: &str) -> anyhow::Result<Policy> {
    let bad = |why: &str| -> anyhow::Error {
        Failure::new(
            format!("--policy `{spec}`: {why}"),
            "write none, installer, any-of:u-a,u-b, all-of:u-a,u-b or at-least:2:u-a,u-b,u-c",
        )
        .into()
    };
    let refs = |list: &str| -> anyhow::Result<Vec<ApproverRef>> {
        let v: Vec<ApproverRef> = list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        if v.is_empty() {
            return Err(bad("no approvers listed"));
        }
        Ok(v)
    };
    let spec_t = spec.trim();
    if spec_t == "none" {
        return Ok(Policy::none());
    }
    if spec_t == "installer" {
        return Ok(Policy::installer());
    }
    if let Some(list) = spec_t.strip_prefix("any-of:") {
        return Ok(Policy::any_of(refs(list)?));
    }
    if let Some(list) = spec_t.strip_prefix("all-of:") {
        return Ok(Policy::all_of(refs(list)?));
    }
    if let Some(rest) = spec_t.strip_prefix("at-least:") {
        let (n, list) = rest
            .split_once(':')
            .ok_or_else(|| bad("expected at-least:N:approver,..."))?;
        let n: u32 = n.trim().parse().map_err(|_| bad("N must be a whole number"))?;
        let of = refs(list)?;
        if n == 0 || n as usize > of.len() {
            return Err(bad(&format!(
                "N must be between 1 and the {} approvers listed",
                of.len()
            )));
        }
        return Ok(Policy::at_least(n, of));
    }
    Err(bad("unknown policy kind"))
}

/// Parses a duration flag with the one grammar every duration uses (`30m`, `8h`, `7d`, `2w`, `1h30m`; a unit is
/// required, so `90` is refused rather than read as seconds).
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    Ok(rancher_approval::parse_duration(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn policy_flags_parse() {
        assert_eq!(parse_policy("none").unwrap(), Policy::none());
        assert_eq!(parse_policy("installer").unwrap(), Policy::installer());
        assert_eq!(
            parse_policy("any-of:u-a,u-b").unwrap(),
            Policy::any_of([ApproverRef::user("u-a"), ApproverRef::user("u-b")])
        );
        assert_eq!(
            parse_policy("at-least:2:u-a,group:github_team://7,u-c").unwrap(),
            Policy::at_least(
                2,
                [
                    ApproverRef::user("u-a"),
                    ApproverRef::group("github_team://7"),
                    ApproverRef::user("u-c")
                ]
            )
        );
        assert!(parse_policy("at-least:4:u-a,u-b").is_err());
        assert!(parse_policy("any-of:").is_err());
        assert!(parse_policy("maybe").is_err());
    }

    #[tokio::test]
    async fn durations_parse() {
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_duration("36h").unwrap(), Duration::from_secs(36 * 3600));
        assert!(parse_duration("90").is_err(), "a unit is required");
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("7 days").is_err());
        assert!(parse_duration("d").is_err());
    }
}
