//! `rancherctl grants list|extend|revoke|expire`: time-bound grants recorded in the approval store.

use chrono::{DateTime, Utc};
use rancher_approval::{format_duration, Grant, GrantStatus};
use serde_json::json;

use crate::commands::backend::Backend;
use crate::context::Context;
use crate::error::{Exit, Failure};
use crate::output;
use crate::text;

fn left(g: &Grant, now: DateTime<Utc>) -> String {
    match g.status(now) {
        GrantStatus::Active => format_duration((g.due_at - now).num_seconds().max(0) as u64),
        GrantStatus::Overdue => format!(
            "overdue {}",
            format_duration((now - g.due_at).num_seconds().max(0) as u64)
        ),
        GrantStatus::Expired | GrantStatus::Revoked => g
            .revocation
            .as_ref()
            .map(|r| r.how.as_str().replace('_', " "))
            .unwrap_or_default(),
    }
}

/// Who has what, until when, and the time left; only grants in status `which` when given.
pub async fn list(ctx: &Context, backend: &Backend, which: Option<GrantStatus>) -> anyhow::Result<Exit> {
    let (grants, now) = backend.grants(ctx, which).await?;
    let exit = show(ctx, &grants, now)?;
    let overdue = grants.iter().filter(|g| g.status(now) == GrantStatus::Overdue).count();
    // The service revokes overdue grants by itself: the note is for local mode only.
    if overdue > 0 && !backend.is_service() {
        output::note(format!(
            "note: {overdue} grant(s) are overdue: in local mode nothing revokes them by itself; run `rancherctl grants expire` now and from cron, or use the approvals service (`rancherctl serve`)"
        ));
    }
    Ok(exit)
}

/// Prints `grants` (as they stand at `now`) in the chosen format.
pub fn show(ctx: &Context, grants: &[Grant], now: DateTime<Utc>) -> anyhow::Result<Exit> {
    let docs: Vec<serde_json::Value> = grants
        .iter()
        .map(|g| {
            let mut v = serde_json::to_value(g).unwrap_or_default();
            v["status"] = json!(g.status(now).as_str());
            v
        })
        .collect();
    output::data(ctx.format(), &docs, || {
        if grants.is_empty() {
            return "no grants".into();
        }
        output::table(
            &[
                "ID", "KIND", "SCOPE", "ROLE", "SUBJECT", "STATUS", "DUE", "ENDED", "LEFT",
            ],
            grants.iter().map(|g| {
                vec![
                    g.id.clone(),
                    g.granted.kind.as_str().to_string(),
                    text::escape(g.granted.scope.as_deref().unwrap_or("-")),
                    text::escape(&g.granted.role),
                    text::escape(&g.granted.subject),
                    g.status(now).as_str().to_string(),
                    g.due_at.format("%Y-%m-%d %H:%M").to_string(),
                    g.ended_at
                        .map(|e| e.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "-".into()),
                    left(g, now),
                ]
            }),
        )
    })?;
    Ok(Exit::Done)
}

/// Files a new approval request, under the grant's own workflow and policy, to extend it by `by`.
pub async fn extend(
    ctx: &Context,
    backend: &Backend,
    id: &str,
    by: &str,
    reason: Option<String>,
) -> anyhow::Result<Exit> {
    let store = ctx.open_store().await?;
    let (workflow, inputs) = rancher_workflows::grants::extension(store.as_ref(), id, by).await?;
    backend.submit(ctx, &workflow, inputs.into_value(), reason, false).await
}

/// Ends a grant now: records the early end, then revokes it.
pub async fn revoke(ctx: &Context, id: &str) -> anyhow::Result<Exit> {
    let session = ctx.session().await?;
    let runner = ctx.runner().await?;
    let store = runner.store().clone();
    let now = Utc::now();
    rancher_workflows::grants::end_early(&session, store.as_ref(), id, now).await?;
    let out =
        rancher_workflows::grants::revoke_grant(&session, store.as_ref(), id, runner.process_label(), now).await?;
    report(ctx, std::slice::from_ref(&out))
}

/// Revokes every due grant, once (for cron: running it again does nothing more).
pub async fn expire(ctx: &Context) -> anyhow::Result<Exit> {
    let session = ctx.session().await?;
    let runner = ctx.runner().await?;
    let done =
        rancher_workflows::grants::revoke_due(&session, runner.store().as_ref(), runner.process_label(), Utc::now())
            .await?;
    report(ctx, &done.outcomes)
}

/// Prints what revocations did; a failed one is a failure (exit non-zero) naming the grant.
pub fn report(ctx: &Context, outcomes: &[rancher_workflows::grants::RevokeOutcome]) -> anyhow::Result<Exit> {
    use rancher_workflows::grants::RevokeOutcome as O;
    output::data(ctx.format(), outcomes, || {
        if outcomes.is_empty() {
            return "no grants due".into();
        }
        outcomes
            .iter()
            .map(|o| match o {
                O::Revoked { grant, how, note } => {
                    let note = if note.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", text::escape(note))
                    };
                    format!("revoked {grant} ({}){note}", how.as_str().replace('_', " "))
                }
                O::Failed { grant, error, retry_at } => format!(
                    "could not revoke {grant}: {}; next attempt at {}",
                    text::escape(error),
                    retry_at.to_rfc3339()
                ),
                O::Skipped { grant, why } => format!("skipped {grant}: {}", text::escape(why)),
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    if let Some(O::Failed { grant, error, .. }) = outcomes.iter().find(|o| matches!(o, O::Failed { .. })) {
        return Err(Failure::new(
            format!("grant {grant} is overdue and could not be revoked: {error}"),
            "it is retried with backoff; run `rancherctl grants expire` again later",
        )
        .into());
    }
    Ok(Exit::Done)
}

/// The status a `grants list` asks for (`None`: every grant, and for the other subcommands).
pub fn which(cmd: &crate::cli::GrantsCommand) -> Option<GrantStatus> {
    match cmd {
        crate::cli::GrantsCommand::List { active: true, .. } => Some(GrantStatus::Active),
        crate::cli::GrantsCommand::List { expired: true, .. } => Some(GrantStatus::Expired),
        crate::cli::GrantsCommand::List { overdue: true, .. } => Some(GrantStatus::Overdue),
        _ => None,
    }
}

/// Runs one `grants` subcommand.
pub async fn dispatch(ctx: &Context, backend: &Backend, cmd: crate::cli::GrantsCommand) -> anyhow::Result<Exit> {
    use crate::cli::GrantsCommand as G;
    match cmd {
        G::List { .. } => list(ctx, backend, which(&cmd)).await,
        G::Extend { id, by, reason } => extend(ctx, backend, &id, &by, reason).await,
        G::Revoke { id } => revoke(ctx, &id).await,
        G::Expire => expire(ctx).await,
    }
}
