//! Microsoft Teams: each new approval request is posted as an Adaptive Card (the plan, the policy, and a button
//! opening the request's page) to a Teams workflow webhook ("Post to a channel when a webhook request is
//! received"). Decisions are made on the page: the card has no buttons that decide. Posts go through the outbox
//! ([`crate::outbox`]), retried and dead-lettered like webhook events; reminders and escalations are posted as
//! cards too.

use std::sync::Arc;

use rancher_approval::{ApprovalRequest, AuditDetail, AuditEntry, RequestState, Rule};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use crate::app::App;
use crate::outbox::{Failure, Sink};
use crate::slack::chat_plan_text;

/// The Teams side of the service.
pub(crate) struct Teams {
    /// The workflow webhook URL: it carries a signature in its query, so it is a secret.
    url: SecretString,
    http: reqwest::Client,
    base: Url,
}

impl Teams {
    pub(crate) fn new(url: SecretString, http: reqwest::Client, base: Url) -> Self {
        Teams { url, http, base }
    }

    async fn post(&self, card: Value) -> Result<(), Failure> {
        let body = json!({
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}],
        });
        let url =
            Url::parse(self.url.expose_secret()).map_err(|_| Failure::refused("the Teams webhook URL is not a URL"))?;
        let r = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Failure::retry(format!("Teams: {}", crate::error::chain(&e.without_url()))))?;
        let status = r.status();
        if status.is_success() {
            Ok(())
        } else if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            Err(Failure::refused(format!("Teams answered {status}")))
        } else {
            Err(Failure::retry(format!("Teams answered {status}")))
        }
    }
}

/// The Adaptive Card of a request: title, the plan, facts, and a button that opens its page.
pub(crate) fn card(req: &ApprovalRequest, base: &Url, headline: &str) -> Value {
    let id = req.id.as_str();
    let url = crate::slack::page_url(base, id);
    // Adaptive Cards render a subset of Markdown: the plan is escaped as chat text already.
    json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "text": headline, "wrap": true},
            {"type": "TextBlock", "text": chat_plan_text(req), "wrap": true},
            {"type": "FactSet", "facts": [
                {"title": "Request", "value": id},
                {"title": "Workflow", "value": req.workflow_id},
                {"title": "Status", "value": req.state.as_str()},
                {"title": "Policy", "value": req.policy.to_string()},
                {"title": "Expires", "value": req.expires_at.to_rfc3339()},
            ]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Review on the approval page", "url": url}],
    })
}

impl Sink for Teams {
    fn name(&self) -> String {
        let h = hex::encode(Sha256::digest(self.url.expose_secret().as_bytes()));
        format!("chat:teams:{}", &h[..24])
    }

    fn shown(&self) -> String {
        Url::parse(self.url.expose_secret())
            .map(|u| format!("teams {}", crate::config::redact_url(&u)))
            .unwrap_or_else(|_| "teams".into())
    }

    fn handle<'a>(
        &'a self,
        app: &'a Arc<App>,
        entry: &'a AuditEntry,
    ) -> futures::future::BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let headline = match entry.details() {
                AuditDetail::RequestCreated(_) => "Approval requested".to_string(),
                AuditDetail::Reminded(r) if r.escalation => {
                    "Approval request escalated: the fallback approvers (Rancher admins) are asked to decide".into()
                }
                AuditDetail::Reminded(r) => format!(
                    "Reminder: this request has waited {} for a decision",
                    crate::reminders::human(r.waited_secs)
                ),
                _ => return Ok(()),
            };
            let Some(id) = entry.request_id.as_deref().and_then(|i| i.parse().ok()) else {
                return Ok(());
            };
            let req = match crate::app::with_store(app.store(), |s| async move { s.get_request(&id).await }).await {
                Ok(r) => r,
                Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => return Ok(()),
                Err(e) => return Err(Failure::retry(e.message)),
            };
            // Only requests still waiting: a new sink's cursor starts at the log's beginning.
            if req.state != RequestState::Pending || req.policy.rule == Rule::None {
                return Ok(());
            }
            self.post(card(&req, &self.base, &headline)).await
        })
    }
}
