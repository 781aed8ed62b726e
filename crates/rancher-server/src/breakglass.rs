//! Break-glass in the service: `POST /api/v1/runs` with `"break_glass": true` runs a time-bound grant at once
//! where a policy rule permits it ([`rancher_workflows::runner::BrokeGlass`]); the `grant.breakglass` webhook
//! event comes from the grant's `request_created` audit entry (once); `rancher_access_breakglass_unreviewed`
//! counts the review requests still waiting.

use std::sync::Arc;
use std::time::Instant;

use rancher_approval::audit::RequestCreated;
use rancher_approval::rules::RuleVerdict;
use rancher_approval::{RequestFilter, RequestState, Store};
use rancher_workflows::{BrokeGlass, Inputs};

use crate::app::App;
use crate::error::ApiError;
use crate::identity::Person;

/// The rule that permitted a break-glass grant, when `d` files one (approved when filed, with the `break_glass`
/// verdict). The review request filed afterwards carries the same verdict but waits, so it is not one.
pub(crate) fn rule_of(d: &RequestCreated) -> Option<String> {
    match &d.rules.as_ref()?.verdict {
        RuleVerdict::BreakGlass { rule, .. } if d.state == RequestState::Approved => Some(rule.clone()),
        _ => None,
    }
}

/// The `grant.breakglass` event's text: who, what (`asks`: the plan as the created event words it), under which
/// rule, for how long, and why; `clean` makes the rule and the reason safe for chat (the webhooks' `chat`).
pub(crate) fn event_text(
    who: &str,
    asks: &str,
    rule: &str,
    req: &str,
    d: &RequestCreated,
    clean: impl Fn(&str, usize) -> String,
) -> String {
    let cap = match d.rules.as_ref().map(|r| &r.verdict) {
        Some(RuleVerdict::BreakGlass { cap_secs, .. }) => format!(", at most {} min", cap_secs / 60),
        _ => String::new(),
    };
    let reason = d.reason.as_deref().unwrap_or("");
    format!(
        "BREAK-GLASS: {who} {asks} under rule {}{cap}: \"{}\"; it runs now and is reviewed afterwards: {req}",
        clean(rule, 64),
        clean(reason, 300)
    )
}

/// How many break-glass review requests wait for a reviewer.
pub(crate) async fn unreviewed(store: &Arc<dyn Store>) -> rancher_approval::Result<u64> {
    let pending = store
        .list_requests(&RequestFilter {
            states: vec![RequestState::Pending],
            workflow_id: Some(rancher_workflows::REVIEW_WORKFLOW.to_string()),
            requester: None,
        })
        .await?;
    Ok(pending
        .iter()
        .filter(|r| {
            r.rules
                .as_ref()
                .is_some_and(|rec| matches!(rec.verdict, RuleVerdict::BreakGlass { .. }))
        })
        .count() as u64)
}

impl App {
    /// Break-glass for `person`: refused (403, nothing created) unless a policy rule permits it; else the grant
    /// runs at once with the service account and the review request is filed.
    pub(crate) async fn break_glass(
        self: &Arc<Self>,
        person: &Person,
        workflow: &str,
        inputs: Inputs,
        reason: Option<String>,
    ) -> Result<BrokeGlass, ApiError> {
        let def = self.runner.registry().require(workflow)?.def();
        rancher_workflows::refuse_host_paths(def, &inputs)?;
        let session = person.acting_through(&self.service);
        let app = self.clone();
        let wf = def.id.to_string();
        self.detached(async move {
            let started = Instant::now();
            let done = app.runner.break_glass(&session, &wf, inputs, reason).await?;
            app.metrics.execution(true, started.elapsed());
            Ok(done)
        })
        .await
    }
}
