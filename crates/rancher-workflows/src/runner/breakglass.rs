//! Break-glass: a time-bound grant that runs at once where a policy rule permits it (`break_glass`), capped at one
//! hour (or less, when a `max_duration` rule says so), with a mandatory review filed afterwards.
//!
//! Nothing is looked up in the store or written before the rules said yes: anyone no rule permits gets
//! [`Error::NotAllowed`] with the rules' message, and nothing is created. When permitted:
//! 1. the grant is filed as a request approved by the rule (its [`rancher_approval::RuleRecord`] has the
//!    `break_glass` verdict and the facts) and executed at once, claimed once and audited like any other;
//! 2. a review request is filed, waiting for whoever approves the workflow (its installer, else an admin): an
//!    `access-review` of the holder, which shows the reviewer what the holder can do; it carries the same record;
//! 3. the grant is revoked at its due time like every time-bound grant, reviewed or not.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use rancher_approval::rules::RuleVerdict;
use rancher_approval::{NewRequest, Policy, Rule};

use super::Runner;
use crate::error::{Error, Result};
use crate::exec::RunOutput;
use crate::session::Session;
use crate::workflow::{check_inputs, Inputs};

/// The workflow a break-glass review request runs when it is approved (a read).
pub const REVIEW_WORKFLOW: &str = "access-review";

/// How long a review request waits for its reviewer before it expires: 30 days.
pub const REVIEW_EXPIRY_SECS: u64 = 30 * 24 * 3600;

/// The longest any break-glass grant lasts, in seconds, whatever the rules say.
pub const HARD_CAP_SECS: u64 = 3600;

/// What a break-glass run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokeGlass {
    /// The grant's request (approved by the rule and executed).
    pub request: String,
    /// The review request filed afterwards.
    pub review: String,
    /// The rule that permitted it.
    pub rule: String,
    /// How long the grant lasts, in seconds.
    pub cap_secs: u64,
    /// The grant's output.
    pub result: Box<RunOutput>,
}

/// `secs` as a `duration` input (whole minutes, at least one).
fn minutes(secs: u64) -> Value {
    json!(format!("{}m", (secs / 60).max(1)))
}

impl Runner {
    /// Runs `workflow` (a time-bound grant) at once as break-glass, when a policy rule permits it for `session`'s
    /// user; files the review request afterwards. `reason` is required (an incident, e.g. `INC-123`).
    pub async fn break_glass(
        &self,
        session: &Session,
        workflow: &str,
        inputs: impl Into<Inputs>,
        reason: Option<String>,
    ) -> Result<BrokeGlass> {
        let w = self.workflow(workflow)?;
        let d = w.def();
        let Some(policies) = &self.policies else {
            return Err(no_rules(d.id));
        };
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| Error::Refused(format!("{}: break-glass needs a reason: --reason INC-123", d.id)))?;
        if !d.inputs.iter().any(|i| i.name == "duration") {
            return Err(Error::Refused(format!(
                "{}: break-glass is only for time-bound grants (a workflow with a `duration` input, e.g. grant-cluster-role)",
                d.id
            )));
        }
        let mut inputs: Inputs = inputs.into();
        check_inputs(d, &inputs)?;
        w.check(&inputs)?;
        // The hard cap first: a longer (or no) duration becomes one hour before anything is looked up.
        let asked = crate::grants::duration_secs(d, &inputs)?;
        if asked.is_none_or(|s| s > HARD_CAP_SECS) {
            if let Some(m) = inputs.as_object_mut() {
                m.insert("duration".into(), minutes(HARD_CAP_SECS));
            }
        }
        let inst = self
            .installation(d.id)
            .await?
            .ok_or_else(|| Error::NotInstalled(d.id.into()))?;
        let mut pinned = w.prepare(session, inputs.clone()).await?;
        if let Some(said) = pinned
            .inputs
            .as_object_mut()
            .and_then(|m| m.remove(crate::grants::ALREADY_HELD))
        {
            return Err(Error::AlreadyHeld(said.as_str().unwrap_or_default().to_string()));
        }
        let (mut decision, mut facts) = policies
            .judge(session, d, &pinned, Some(&reason), true)
            .await?
            .ok_or_else(|| no_rules(d.id))?;
        let (rule, cap) = match &decision.verdict {
            RuleVerdict::BreakGlass { rule, cap_secs } => (rule.clone(), (*cap_secs).min(HARD_CAP_SECS)),
            _ => return Err(crate::policies::refusal(d.id, &decision)),
        };
        // A rule capped it further: pin it again at that length (and judge what is filed).
        if facts.duration.is_some_and(|s| s > cap) {
            if let Some(m) = inputs.as_object_mut() {
                m.insert("duration".into(), minutes(cap));
            }
            pinned = w.prepare(session, inputs).await?;
            if let Some(m) = pinned.inputs.as_object_mut() {
                m.remove(crate::grants::ALREADY_HELD);
            }
            (decision, facts) = policies
                .judge(session, d, &pinned, Some(&reason), true)
                .await?
                .ok_or_else(|| no_rules(d.id))?;
            if !matches!(decision.verdict, RuleVerdict::BreakGlass { .. }) {
                return Err(crate::policies::refusal(d.id, &decision));
            }
        }
        // A role that can grant roles is not contained by a time-bound grant: the workflow's policy decides, as
        // for any grant.
        crate::grants::containment::check(d, &pinned.inputs, &inst.policy)?;
        let record = decision.record(&facts);
        let names = crate::names::resolve(session, d.id, pinned.inputs.as_value(), &pinned.targets).await?;
        let mut new = NewRequest::for_installation(&inst, session.principal.clone())
            .inputs(pinned.inputs.clone().into_value(), Vec::<String>::new())
            .targets(pinned.targets.iter().map(|(id, _)| id.clone()))
            .server(session.server.clone())
            .names(names)
            .reason(reason.clone());
        for (id, label) in &pinned.targets {
            new = new.target_label(id.clone(), label.clone());
        }
        new.policy = Policy {
            rule: Rule::None,
            options: inst.policy.options.clone(),
        };
        new.rules = Some(record.clone());
        let now = chrono::Utc::now();
        let req = self.store.create_request(new, now).await.map_err(Error::from)?;
        tracing::warn!(request = %req.id, workflow = d.id, requester = %session.principal.id, rule = %rule, cap_secs = cap, "break-glass: running at once");
        let out = self.execute(session, &req.id, Some(pinned.inputs.as_value())).await??;

        // The review: whoever approves this workflow looks at the holder's access afterwards.
        let holder = pinned.inputs.get("user").and_then(Value::as_str).map(str::to_string);
        let review_policy = Policy {
            rule: if inst.policy.needs_approval() {
                inst.policy.rule.clone()
            } else {
                Policy::installer().rule
            },
            options: inst.policy.options.clone(),
        }
        // A review waits until someone reviews it (up to the longest expiry a policy may set), not the workflow's
        // usual expiry: an expired review would drop out of the unreviewed count unreviewed.
        .expires_after(std::time::Duration::from_secs(REVIEW_EXPIRY_SECS));
        let mut review = NewRequest::new(REVIEW_WORKFLOW, session.principal.clone(), review_policy)
            .installer(inst.installer.clone())
            .inputs(holder.map_or(json!({}), |u| json!({"user": u})), Vec::<String>::new())
            .server(session.server.clone())
            .reason(format!(
                "after-the-fact review of break-glass request {} ({}, rule {rule}, {} min): {reason}",
                req.id,
                d.id,
                cap / 60
            ));
        review.rules = Some(record);
        let review = self.store.create_request(review, now).await.map_err(Error::from)?;
        let mut result = Box::new(out);
        result.summary = format!(
            "{} (break-glass under rule {rule}, at most {} min; review request {} filed)",
            result.summary,
            cap / 60,
            review.id
        );
        Ok(BrokeGlass {
            request: req.id.to_string(),
            review: review.id.to_string(),
            rule,
            cap_secs: cap,
            result,
        })
    }
}

/// The refusal of a break-glass where no rules are in force.
fn no_rules(workflow: &str) -> Error {
    Error::NotAllowed(format!(
        "{workflow}: break-glass is allowed only where a policy rule permits it, and no rules are in force here \
         (rancherctl serve --policies DIR, or rules installed with rancherctl policies apply)"
    ))
}
