//! The JSON API under `/api/v1`, authenticated by `Authorization: Bearer <the person's Rancher API token>`, and
//! its OpenAPI description (generated from these handlers with utoipa).

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rancher_approval::{RequestFilter, RequestState};
use rancher_auth::BearerToken;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use utoipa::OpenApi;

use crate::app::{may_see_details, request_view, with_store, App};
use crate::error::ApiError;
use crate::identity::{Identities, Person};
use crate::wire::{
    AuditPage, AuditVerified, Catalog, CatalogEntry, DeadLetters, DecisionRequest, ErrorAnswer, ExtendRequest,
    Extended, GrantList, GrantQuery, GrantView, InputView, InstallationView, ListEnd, ListLine, Me, PolicyRequest,
    RequestPage, RequestQuery, RequestView, Revoked, RunAnswer, RunRequest,
};

/// The caller: who their bearer token belongs to (the token itself is kept only for a run that needs no
/// approval, which goes to Rancher with the caller's own rights, and is dropped with the request).
pub(crate) struct Caller {
    pub(crate) person: Person,
    pub(crate) token: BearerToken,
    /// The session opened with the token to learn who the caller is, when that happened for this request: a run
    /// reuses it instead of opening another.
    pub(crate) session: Option<rancher_workflows::Session>,
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("no Authorization header; send `Authorization: Bearer <your Rancher API token>`")
        })?;
        let text = header.to_str().map_err(|_| {
            ApiError::unauthorized(
                "the Authorization header is not text; send `Authorization: Bearer <your Rancher API token>`",
            )
        })?;
        let raw = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("the Authorization header is not a bearer token; send `Authorization: Bearer <your Rancher API token>`"))?;
        let token = Identities::parse_token(raw)?;
        // A token the identity cache does not know (as good or as refused) costs Rancher calls: those are
        // throttled per client.
        if !app.identities.known(&token) {
            let client = app
                .throttle
                .client(parts.extensions.get::<crate::throttle::Peer>().copied(), &parts.headers);
            app.throttle.token_check(client)?;
        }
        let (person, session) = app.person(&token).await?;
        Ok(Caller { person, token, session })
    }
}

/// A JSON body whose every rejection (too large, not JSON, wrong shape) is answered as `{"error": ...}`.
pub(crate) struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "the request body is too large; send less (bodies are limited)")
            } else {
                ApiError::new(status, format!("could not read the request body: {e}"))
            }
        })?;
        if bytes.is_empty() {
            return serde_json::from_value(json!({}))
                .map(Body)
                .map_err(|e| ApiError::bad_request(format!("a JSON body is required: {e}")));
        }
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON for this operation: {e}")))
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "rancher-access approvals service", description = "Team approvals for Rancher access workflows. Every call needs `Authorization: Bearer <your Rancher API token>`; the service learns who you are from Rancher and never keeps the token."),
    paths(me, catalog, workflow, install, set_policy, run, list_requests, show_request, approve, deny, cancel, list_grants, extend_grant, revoke_grant, audit, verify_audit, export_audit, webhook_dead_letters, installed_policies),
    components(schemas(ErrorAnswer, Me, Catalog, CatalogEntry, InputView, PolicyRequest, InstallationView, RunRequest, RunAnswer, ListLine, ListEnd,
        RequestView, RequestPage, DecisionRequest, ExtendRequest, Extended, GrantView, GrantList, Revoked, AuditPage, AuditVerified, DeadLetters,
        crate::policies_api::InstalledPoliciesAnswer, crate::policies_api::InstalledPoliciesView)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The OpenAPI document, pretty-printed (what `/api/v1/openapi.json` serves and `openapi.json` holds).
pub fn openapi_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.to_pretty_json().unwrap_or_default() + "\n"
}

pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], openapi_json()) }),
        )
        .route("/api/v1/me", get(me))
        .route("/api/v1/workflows", get(catalog))
        .route("/api/v1/workflows/{id}", get(workflow))
        .route("/api/v1/workflows/{id}/install", post(install))
        .route("/api/v1/workflows/{id}/policy", put(set_policy))
        .route("/api/v1/runs", post(run))
        .route("/api/v1/requests", get(list_requests))
        .route("/api/v1/requests/{id}", get(show_request))
        .route("/api/v1/requests/{id}/approve", post(approve))
        .route("/api/v1/requests/{id}/deny", post(deny))
        .route("/api/v1/requests/{id}/cancel", post(cancel))
        .route("/api/v1/grants", get(list_grants))
        .route("/api/v1/policies", get(installed_policies))
        .route("/api/v1/grants/{id}/extend", post(extend_grant))
        .route("/api/v1/grants/{id}/revoke", post(revoke_grant))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/verify", get(verify_audit))
        .route("/api/v1/audit/export", get(export_audit))
        .route("/api/v1/webhooks/dead-letters", get(webhook_dead_letters))
        .fallback(|| async { ApiError::not_found("no such API operation; /api/v1/openapi.json lists them") })
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me), (status = 401, body = ErrorAnswer)))]
async fn me(caller: Caller) -> Json<Me> {
    Json(Me::new(&caller.person.principal, caller.person.is_admin))
}

/// The catalog, with each workflow's installation and policy.
#[utoipa::path(get, path = "/api/v1/workflows", responses((status = 200, body = Catalog), (status = 401, body = ErrorAnswer)))]
async fn catalog(State(app): State<Arc<App>>, _caller: Caller) -> Result<Json<Catalog>, ApiError> {
    let installs = with_store(app.store(), |s| async move { s.list_installations().await }).await?;
    let items = app
        .runner
        .registry()
        .defs()
        .into_iter()
        .map(|w| CatalogEntry::new(w, installs.iter().find(|i| i.workflow_id == w.id)))
        .collect();
    Ok(Json(Catalog { items }))
}

/// One workflow.
#[utoipa::path(get, path = "/api/v1/workflows/{id}", params(("id" = String, Path, description = "workflow id")), responses((status = 200, body = CatalogEntry), (status = 404, body = ErrorAnswer)))]
async fn workflow(
    State(app): State<Arc<App>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CatalogEntry>, ApiError> {
    let w = app
        .runner
        .registry()
        .get(&id)
        .map(|w| w.def())
        .ok_or_else(|| ApiError::from(rancher_workflows::Error::UnknownWorkflow(id.clone())))?;
    let inst = app.runner.installation(w.id).await?;
    Ok(Json(CatalogEntry::new(w, inst.as_ref())))
}

/// Installs a workflow (admins); the caller becomes its installer. Audited.
#[utoipa::path(post, path = "/api/v1/workflows/{id}/install", params(("id" = String, Path, description = "workflow id")), request_body = PolicyRequest,
    responses((status = 200, body = InstallationView), (status = 403, body = ErrorAnswer), (status = 409, body = ErrorAnswer)))]
async fn install(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<PolicyRequest>,
) -> Result<Json<InstallationView>, ApiError> {
    let inst = app.install(&caller.person, &id, body.policy).await?;
    Ok(Json(InstallationView(inst)))
}

/// Changes a workflow's policy (its installer or an admin). Audited.
#[utoipa::path(put, path = "/api/v1/workflows/{id}/policy", params(("id" = String, Path, description = "workflow id")), request_body = PolicyRequest,
    responses((status = 200, body = InstallationView), (status = 400, body = ErrorAnswer), (status = 403, body = ErrorAnswer)))]
async fn set_policy(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<PolicyRequest>,
) -> Result<Json<InstallationView>, ApiError> {
    let policy = body
        .policy
        .ok_or_else(|| ApiError::bad_request("the body needs a `policy`"))?;
    let inst = app.set_policy(&caller.person, &id, policy).await?;
    Ok(Json(InstallationView(inst)))
}

/// Runs a workflow: `200` with the result when no approval is needed (it ran with the caller's own Rancher
/// rights), `202` with `{"request": id, "status": "pending", ...}` when it waits for approval.
#[utoipa::path(post, path = "/api/v1/runs", request_body = RunRequest,
    responses((status = 200, description = "it ran (`status: succeeded`); a list asked for as `application/x-ndjson` streams one `ListLine` per line", content((RunAnswer = "application/json"), (ListLine = "application/x-ndjson"))),
              (status = 202, body = RunAnswer, description = "it waits for approval (`status: pending`)"),
              (status = 400, body = ErrorAnswer), (status = 404, body = ErrorAnswer)))]
async fn run(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Body(body): Body<RunRequest>,
) -> Result<Response, ApiError> {
    let inputs = body
        .inputs
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()).into());
    let lines = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(NDJSON));
    if lines {
        if let Some(list) = app
            .open_list(
                &caller.token,
                caller.session.clone(),
                &body.workflow,
                inputs.as_value(),
                body.rows,
            )
            .await?
        {
            return Ok(list_lines(&app, list, body.rows));
        }
    }
    if body.break_glass {
        if body.dry_run {
            return Err(ApiError::bad_request(
                "break_glass and dry_run do not go together: a dry run of the grant shows what it would do",
            ));
        }
        let b = app
            .break_glass(&caller.person, &body.workflow, inputs, body.reason)
            .await?;
        return Ok(answer(RunAnswer::Succeeded { result: b.result }).into_response());
    }
    let done = app
        .submit(
            &caller.person,
            &caller.token,
            caller.session,
            &body.workflow,
            inputs,
            body.reason,
            body.dry_run,
        )
        .await?;
    Ok(answer(RunAnswer::from(done)).into_response())
}

/// A run's answer with its status: `202` while it waits for approval, `200` when it ran.
fn answer(a: RunAnswer) -> (StatusCode, Json<RunAnswer>) {
    (status_of(&a), Json(a))
}

fn status_of(a: &RunAnswer) -> StatusCode {
    match a {
        RunAnswer::Pending { .. } => StatusCode::ACCEPTED,
        RunAnswer::Succeeded { .. } => StatusCode::OK,
    }
}

/// The media type of a streamed list run.
pub const NDJSON: &str = "application/x-ndjson";

/// A list run as it arrives, one JSON document per line: first `{"status": "streaming", "workflow", "noun",
/// "columns"}`, then `{"item": ..., "row": [...]}` per item (`row` when asked for), and last either
/// `{"end": {"count": N}}` or `{"error": "..."}`: an answer without its last line was cut off. Memory stays flat
/// whatever the list's length; the service holds the in-flight guard until the last line is written.
fn list_lines(app: &Arc<App>, list: rancher_workflows::ListStream, rows: bool) -> Response {
    use futures::StreamExt;
    let head = line(&ListLine::Head {
        status: "streaming".into(),
        workflow: list.workflow().into(),
        noun: list.noun().into(),
        columns: list.columns().iter().map(|c| c.to_string()).collect(),
    });
    // The state is `None` once the last line (the end or an error) was written.
    let items = futures::stream::unfold(Some((list, 0usize, app.inflight.enter())), move |state| async move {
        let (mut list, count, guard) = state?;
        let (last, next) = match list.next().await {
            Some(Ok(item)) => match item_line(&item, rows.then(|| list.row(&item))) {
                Ok(l) => (l, Some((list, count + 1, guard))),
                Err(e) => (
                    line(&ListLine::Error {
                        error: format!("item {} could not be encoded: {e}", count + 1),
                    }),
                    None,
                ),
            },
            Some(Err(e)) => (
                line(&ListLine::Error {
                    error: ApiError::from(e).message,
                }),
                None,
            ),
            None => (
                line(&ListLine::End {
                    end: ListEnd { count: count as u64 },
                }),
                None,
            ),
        };
        Some((last, next))
    });
    let lines = futures::stream::once(async { head })
        .chain(items)
        .map(Ok::<_, std::convert::Infallible>);
    ([(header::CONTENT_TYPE, NDJSON)], axum::body::Body::from_stream(lines)).into_response()
}

/// `{"item": ..., "row": [...]}` (`row` when asked for), written straight from the typed item.
fn item_line(item: &rancher_workflows::Listed, row: Option<Vec<String>>) -> serde_json::Result<bytes::Bytes> {
    let mut bytes = b"{\"item\":".to_vec();
    serde_json::to_writer(&mut bytes, item)?;
    if let Some(row) = row {
        bytes.extend_from_slice(b",\"row\":");
        serde_json::to_writer(&mut bytes, &row)?;
    }
    bytes.extend_from_slice(b"}\n");
    Ok(bytes.into())
}

/// One NDJSON line.
fn line(doc: &ListLine) -> bytes::Bytes {
    let mut bytes = serde_json::to_vec(doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes.into()
}

pub(crate) fn parse_state(s: &str) -> Result<RequestState, ApiError> {
    RequestState::ALL
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown state `{s}`; use one of {}",
                RequestState::ALL.map(|s| s.as_str()).join(", ")
            ))
        })
}

/// Whether `person` may see `req`: admins see all; others their own requests and those they may decide on.
pub(crate) fn visible(app: &App, person: &Person, req: &rancher_approval::ApprovalRequest, admins: &[String]) -> bool {
    if person.is_admin || req.requester.id == person.principal.id {
        return true;
    }
    let ctx = rancher_approval::EligibilityContext::with_fallback_approvers(admins.iter().cloned());
    let _ = app;
    !matches!(
        rancher_approval::check_eligibility(&req.policy, &req.facts(), &person.principal, &ctx),
        Err(rancher_approval::Ineligibility::NotAnApprover { .. })
    )
}

/// Requests the caller may see, newest first (admins: all; others: their own and those they may decide), a page at
/// a time: `next` is the `before` of the following page (absent on the last).
#[utoipa::path(get, path = "/api/v1/requests", params(RequestQuery), responses((status = 200, body = RequestPage), (status = 400, body = ErrorAnswer)))]
async fn list_requests(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<RequestQuery>,
) -> Result<Json<RequestPage>, ApiError> {
    let mut f = RequestFilter::all();
    if let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) {
        f = f.state(parse_state(s)?);
    }
    if let Some(w) = q.workflow.filter(|s| !s.is_empty()) {
        f = f.workflow(w);
    }
    if let Some(r) = q.requester.filter(|s| !s.is_empty()) {
        f = f.requester(r);
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is out of range; use 1 to 1000"
        )));
    }
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(
            b.parse::<rancher_approval::RequestId>()
                .map_err(|e| ApiError::bad_request(format!("before: {e}; pass the `next` of the previous page")))?,
        ),
        None => None,
    };
    let admins = app.admin_ids().await;
    let me = &caller.person;
    let (mine, to_approve) = (q.mine == Some(true), q.to_approve == Some(true));
    if to_approve && q.state.as_deref().is_none_or(str::is_empty) {
        f = f.state(RequestState::Pending);
    }
    let keep = |r: &rancher_approval::ApprovalRequest| {
        visible(&app, me, r, &admins)
            && (!mine || r.requester.id == me.principal.id)
            && (!to_approve
                || (r.requester.id != me.principal.id
                    && !r.decisions.iter().any(|d| d.principal.id == me.principal.id)
                    && app.may_decide(me, r, &admins).is_ok()))
    };
    let (list, next) = app.request_page(f, before, limit, keep).await?;
    let items = list
        .iter()
        .map(|r| request_view(r, &admins, None, may_see_details(&caller.person, r, &admins)))
        .collect();
    Ok(Json(RequestPage { items, next }))
}

/// One request as `person` may see it; with its audit entries when `audit` (reading them scans the log, so the
/// answers to decisions leave them out).
async fn one(app: &Arc<App>, person: &Person, id: &str, audit: bool) -> Result<RequestView, ApiError> {
    let req = app.runner.get(id).await?;
    let admins = app.admin_ids().await;
    if !visible(app, person, &req, &admins) {
        return Err(ApiError::forbidden(format!(
            "{} may not see approval request {id}: not its requester, an approver or an admin",
            person.who()
        )));
    }
    let entries = if audit { Some(app.audit_of(id).await?) } else { None };
    Ok(request_view(
        &req,
        &admins,
        entries.as_deref(),
        may_see_details(person, &req, &admins),
    ))
}

/// One request: inputs, policy, who may approve, decisions, outcome and its audit entries.
#[utoipa::path(get, path = "/api/v1/requests/{id}", params(("id" = String, Path, description = "request id (`req-...`)")),
    responses((status = 200, body = RequestView), (status = 403, body = ErrorAnswer), (status = 404, body = ErrorAnswer)))]
async fn show_request(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(one(&app, &caller.person, &id, true).await?))
}

/// Approves; when that approves the request the service executes it, once, with its own service account.
/// Answers the request with its new state (`succeeded` / `failed` once executed, `pending` while more approvals
/// are needed). A request already decided or claimed answers `409`.
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", params(("id" = String, Path, description = "request id")), request_body = DecisionRequest,
    responses((status = 200, body = RequestView, description = "the request after the decision, with `result` when it executed"), (status = 403, body = ErrorAnswer), (status = 409, body = ErrorAnswer)))]
async fn approve(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<DecisionRequest>,
) -> Result<Json<RequestView>, ApiError> {
    // Who decides is asked of Rancher now, not taken from the identity cache.
    let person = app.person_now(&caller.token).await?;
    let (req, result) = app.decide(&person, &id, true, body.reason, body.reviewed).await?;
    let admins = app.admin_ids().await;
    let details = may_see_details(&person, &req, &admins);
    let mut view = request_view(&req, &admins, None, details);
    // The run just made, whole: the stored outcome keeps a long result only in part.
    view.result = result.filter(|_| details);
    Ok(Json(view))
}

/// Denies.
#[utoipa::path(post, path = "/api/v1/requests/{id}/deny", params(("id" = String, Path, description = "request id")), request_body = DecisionRequest,
    responses((status = 200, body = RequestView, description = "the request after the decision"), (status = 403, body = ErrorAnswer), (status = 409, body = ErrorAnswer)))]
async fn deny(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<DecisionRequest>,
) -> Result<Json<RequestView>, ApiError> {
    // Who decides is asked of Rancher now, not taken from the identity cache.
    let person = app.person_now(&caller.token).await?;
    let (req, _) = app.decide(&person, &id, false, body.reason, body.reviewed).await?;
    let admins = app.admin_ids().await;
    Ok(Json(request_view(
        &req,
        &admins,
        None,
        may_see_details(&person, &req, &admins),
    )))
}

/// Cancels a pending request (its requester or an admin).
#[utoipa::path(post, path = "/api/v1/requests/{id}/cancel", params(("id" = String, Path, description = "request id")), request_body = DecisionRequest,
    responses((status = 200, body = RequestView, description = "the cancelled request"), (status = 403, body = ErrorAnswer), (status = 409, body = ErrorAnswer)))]
async fn cancel(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<DecisionRequest>,
) -> Result<Json<RequestView>, ApiError> {
    let req = app.cancel(&caller.person, &id, body.reason).await?;
    let admins = app.admin_ids().await;
    Ok(Json(request_view(
        &req,
        &admins,
        None,
        may_see_details(&caller.person, &req, &admins),
    )))
}

fn admin_only(person: &Person) -> Result<(), ApiError> {
    if person.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "only an admin may read the audit log; {} is not an admin",
            person.who()
        )))
    }
}

/// The whole audit log (admins), with the result of verifying its hash chain.
#[utoipa::path(get, path = "/api/v1/audit", responses((status = 200, body = AuditPage), (status = 403, body = ErrorAnswer)))]
async fn audit(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<AuditPage>, ApiError> {
    admin_only(&caller.person)?;
    // The head first: read before the entries, it is always among them (a client checks the chain against it).
    let (head, entries, verified) = with_store(app.store(), |s| async move {
        Ok((
            s.audit_head().await?,
            s.audit_entries().await?,
            s.verify_audit().await.map_err(|e| e.to_string()),
        ))
    })
    .await?;
    Ok(Json(AuditPage {
        items: entries,
        head,
        verified: verified.is_ok(),
        problem: verified.err(),
    }))
}

/// The audit log as NDJSON for a SIEM (admins), streamed a page at a time from the store: `jsonl`, `ocsf` or
/// `cloudevents`, each line with its hash-chain fields. Resume with `after=` the last `seq` received.
#[utoipa::path(get, path = "/api/v1/audit/export", params(crate::audit_export::ExportQuery),
    responses((status = 200, description = "one JSON object a line", content_type = "application/x-ndjson"), (status = 400, body = ErrorAnswer), (status = 403, body = ErrorAnswer)))]
async fn export_audit(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<crate::audit_export::ExportQuery>,
) -> Result<Response, ApiError> {
    admin_only(&caller.person)?;
    crate::audit_export::response(app, q)
}

/// Verifies the audit chain (admins): `{"ok": true, "entries": n}`, or `409` naming the first bad entry.
#[utoipa::path(get, path = "/api/v1/audit/verify", responses((status = 200, body = AuditVerified), (status = 403, body = ErrorAnswer), (status = 409, body = ErrorAnswer)))]
async fn verify_audit(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<AuditVerified>, ApiError> {
    admin_only(&caller.person)?;
    let (n, head) = with_store(app.store(), |s| async move {
        Ok((s.verify_audit().await?, s.audit_head().await?))
    })
    .await?;
    Ok(Json(AuditVerified {
        ok: true,
        entries: n,
        head,
    }))
}

/// Whether `person` may see grant `g`: admins see all; others the grants they asked for, approved or hold.
fn grant_visible(person: &Person, g: &rancher_approval::Grant) -> bool {
    let me = &person.principal.id;
    person.is_admin || g.requested_by.id == *me || g.granted.subject == *me || g.approved_by.iter().any(|p| p.id == *me)
}

/// The installed approval rules: their files and hash (any signed-in caller).
#[utoipa::path(get, path = "/api/v1/policies", responses((status = 200, body = crate::policies_api::InstalledPoliciesAnswer), (status = 500, body = crate::wire::ErrorAnswer)))]
async fn installed_policies(
    State(app): State<Arc<App>>,
    _caller: Caller,
) -> Result<Json<crate::policies_api::InstalledPoliciesAnswer>, ApiError> {
    let now = (app.clock)();
    let installed = rancher_approval::rules::installed::installed(app.store().as_ref(), now)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(crate::policies_api::InstalledPoliciesAnswer {
        installed: installed.map(|(record, _)| record.into()),
    }))
}

/// Time-bound grants the caller may see (admins: all; others: those they asked for, approved or hold), each with
/// its `status` now.
#[utoipa::path(get, path = "/api/v1/grants", params(GrantQuery), responses((status = 200, body = GrantList), (status = 400, body = ErrorAnswer)))]
async fn list_grants(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<GrantQuery>,
) -> Result<Json<GrantList>, ApiError> {
    let wanted = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<rancher_approval::GrantStatus>()
                .map_err(ApiError::bad_request)?,
        ),
    };
    let now = (app.clock)();
    let grants = with_store(app.store(), |s| async move {
        s.list_grants(&rancher_approval::GrantFilter::all()).await
    })
    .await?;
    let items = grants
        .into_iter()
        .filter(|g| grant_visible(&caller.person, g) && wanted.is_none_or(|w| w.includes(g.status(now))))
        .map(|g| GrantView {
            status: g.status(now).as_str().into(),
            grant: g,
        })
        .collect();
    Ok(Json(GrantList { items, now }))
}

/// Asks for more time on a grant: files a new approval request under the grant's own workflow and policy
/// (answered like a run: `202` while it waits for approval).
#[utoipa::path(post, path = "/api/v1/grants/{id}/extend", params(("id" = String, Path, description = "grant id (the request that granted it)")), request_body = ExtendRequest,
    responses((status = 202, body = Extended), (status = 200, body = Extended, description = "it ran at once (its policy needs no approval)"), (status = 400, body = ErrorAnswer), (status = 403, body = ErrorAnswer), (status = 404, body = ErrorAnswer)))]
async fn extend_grant(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<ExtendRequest>,
) -> Result<Response, ApiError> {
    let g = with_store(app.store(), |s| {
        let id = id.clone();
        async move { s.get_grant(&id).await }
    })
    .await?;
    if !grant_visible(&caller.person, &g) {
        return Err(ApiError::forbidden(format!(
            "{} may not extend grant {id}: not its requester, an approver, its holder or an admin",
            caller.person.who()
        )));
    }
    let (workflow, inputs) = rancher_workflows::grants::extension(app.store().as_ref(), &id, &body.by).await?;
    let done = app
        .submit(
            &caller.person,
            &caller.token,
            caller.session,
            &workflow,
            inputs,
            body.reason,
            false,
        )
        .await?;
    let answer = RunAnswer::from(done);
    Ok((status_of(&answer), Json(Extended { answer, workflow })).into_response())
}

/// Ends a grant now (an admin, its requester or its holder): records the early end, then the service revokes
/// it with its own Rancher account. Answers how the revocation went (`revoked`, `failed` with the next attempt,
/// or `skipped`).
#[utoipa::path(post, path = "/api/v1/grants/{id}/revoke", params(("id" = String, Path, description = "grant id")),
    responses((status = 200, body = Revoked), (status = 403, body = ErrorAnswer), (status = 404, body = ErrorAnswer), (status = 409, body = ErrorAnswer)))]
async fn revoke_grant(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    Ok(Json(Revoked(app.end_grant(&caller.person, &id).await?)))
}

/// Query of the dead-letter list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct DeadLetterQuery {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// Webhook events given up on (admins): each with the webhook (scheme, host and port), its audit sequence number,
/// event, request, why it was given up, the last status, the number of posts tried and when. Kept 30 days.
#[utoipa::path(get, path = "/api/v1/webhooks/dead-letters", params(DeadLetterQuery),
    responses((status = 200, body = DeadLetters), (status = 401, body = ErrorAnswer), (status = 403, body = ErrorAnswer)))]
async fn webhook_dead_letters(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<DeadLetterQuery>,
) -> Result<Json<DeadLetters>, ApiError> {
    if !caller.person.is_admin {
        return Err(ApiError::forbidden(format!(
            "only an admin may list webhook dead letters; {} is not an admin",
            caller.person.who()
        )));
    }
    let items = crate::webhooks::dead_letters(&app, q.limit.unwrap_or(100).clamp(1, 1000)).await?;
    Ok(Json(DeadLetters { items }))
}
