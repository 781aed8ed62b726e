//! The approver's web page at `/`: sign in (Rancher API token, or Rancher user name and password through
//! Rancher's local login), pending requests, one request with approve/deny, history with filters, and the
//! installed workflows for admins. No JavaScript; every value is HTML-escaped by the templates, and what people
//! wrote has its controls and bidi overrides made visible first; every form carries a CSRF token. The browser
//! keeps only the service's own session cookie; the session itself is in the store ([`crate::sessions`]), and
//! every page re-checks the person with Rancher.

use std::sync::{Arc, OnceLock};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use minijinja::{context, Environment};
use rancher_approval::{ApprovalRequest, RequestFilter, RequestState};
use serde::Deserialize;
use serde_json::Value;

use crate::app::{may_see_details, seen_by, who_may_approve, with_store, App};
use crate::error::ApiError;
use crate::identity::{Identities, Person};
use crate::sessions::{random_hex, Ended, Flash};
use rancher_workflows::text;

/// The cookies' names over plain HTTP on loopback; with `Secure` they carry the `__Host-` prefix (the browser then
/// takes them only over HTTPS, for this host and path `/`, set by this host alone).
pub(crate) const SESSION_COOKIE: &str = "ra_session";
const LOGIN_COOKIE: &str = "ra_login";

/// Compares without an early exit, so the time taken does not tell how much of a token matched.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = Environment::new();
        // Names end in .html, so minijinja escapes every value as HTML.
        for (name, src) in [
            ("base.html", include_str!("../templates/base.html")),
            ("login.html", include_str!("../templates/login.html")),
            ("list.html", include_str!("../templates/list.html")),
            ("request.html", include_str!("../templates/request.html")),
            ("admin.html", include_str!("../templates/admin.html")),
            ("message.html", include_str!("../templates/message.html")),
            ("file.html", include_str!("../templates/file.html")),
            ("file_form.html", include_str!("../templates/file_form.html")),
            ("mine.html", include_str!("../templates/mine.html")),
        ] {
            e.add_template(name, src).expect("built-in templates parse");
        }
        e
    })
}

pub(crate) fn render(name: &str, ctx: minijinja::Value) -> Response {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => page(StatusCode::OK, html),
        Err(e) => {
            tracing::error!("template {name} failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

fn page(status: StatusCode, html: String) -> Response {
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

pub(crate) fn message(status: StatusCode, me: Option<(&Person, &str)>, heading: &str, text: &str) -> Response {
    let mut r = render(
        "message.html",
        context! { me => me.map(|(p, _)| me_view(p)), csrf => me.map(|(_, c)| c), heading, text },
    );
    *r.status_mut() = status;
    r
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// A cookie's name as this service sets it: `__Host-` prefixed when the cookies are `Secure`.
pub(crate) fn cookie_name(app: &App, base: &str) -> String {
    if app.secure_cookies {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

fn set_cookie(app: &App, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}",
        cookie_name(app, name)
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

pub(crate) fn me_view(p: &Person) -> Value {
    serde_json::json!({"name": esc(&p.principal.display_name.clone().map(|d| format!("{d} ({})", p.who())).unwrap_or_else(|| p.who())), "is_admin": p.is_admin, "id": esc(&p.principal.id)})
}

/// The signed-in person as Rancher knows them now, their CSRF token and any flash.
pub(crate) struct Visitor {
    pub(crate) cookie: String,
    /// The person's own Rancher token (requests filed from the page are theirs).
    pub(crate) token: rancher_auth::BearerToken,
    pub(crate) person: Person,
    pub(crate) csrf: String,
    pub(crate) flash: Option<Flash>,
}

/// Back to the sign-in page, the session cookie cleared.
fn to_sign_in(app: &App) -> Response {
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(app, SESSION_COOKIE, "", Some(0)));
    r
}

/// Logs a session token of Rancher's local login out, off the request's path.
fn log_out(app: &Arc<App>, ended: Ended) {
    if let Some(token) = ended.token {
        let app = app.clone();
        tokio::spawn(async move { app.identities.logout(&token).await });
    }
}

/// The signed-in person behind the request's cookie, re-checked with Rancher: from the identity cache (at most
/// the identity TTL old) for a page, asked now when `now` (a decision). A session past its idle or absolute limit,
/// or whose person Rancher no longer knows (token revoked, user disabled or deleted), ends: back to sign-in.
pub(crate) async fn visitor(
    app: &Arc<App>,
    headers: &HeaderMap,
    take_flash: bool,
    now: bool,
) -> Result<Visitor, Response> {
    let Some(c) = cookie(headers, &cookie_name(app, SESSION_COOKIE)) else {
        return Err(Redirect::to("/login").into_response());
    };
    let live = match app.web.get(&c, take_flash).await {
        Ok(Ok(Some(live))) => live,
        Ok(Ok(None)) => return Err(to_sign_in(app)),
        Ok(Err(ended)) => {
            log_out(app, ended);
            return Err(to_sign_in(app));
        }
        Err(e) => return Err(message(e.status, None, "Could not read your sign-in", &e.message)),
    };
    let person = if now {
        app.person_now(&live.token).await
    } else {
        app.person(&live.token).await.map(|(p, _)| p)
    };
    match person {
        Ok(person) => Ok(Visitor {
            token: live.token.clone(),
            cookie: live.cookie,
            person,
            csrf: live.csrf,
            flash: live.flash,
        }),
        Err(e) if e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::FORBIDDEN => {
            tracing::info!(
                "a web session ended: Rancher no longer accepts its person ({})",
                e.message
            );
            if let Ok(ended) = app.web.end(&c).await {
                log_out(app, ended);
            }
            Err(to_sign_in(app))
        }
        Err(e) => Err(message(
            e.status,
            None,
            "Could not check who you are with Rancher",
            &format!("{}; nothing was done, try again", e.message),
        )),
    }
}

pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(pending))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/history", get(history))
        .route("/admin", get(admin))
        .route("/requests/{id}", get(request_page))
        .route("/requests/{id}/decide", post(decide))
}

pub(crate) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn ago(t: DateTime<Utc>) -> String {
    let s = (Utc::now() - t).num_seconds();
    match s {
        i64::MIN..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// A principal's user name (else id), with controls and bidi overrides made visible.
fn name(p: &rancher_approval::Principal) -> String {
    esc(p.username.as_deref().unwrap_or(&p.id))
}

/// One line of requester or server text as the page shows it: controls, line breaks and bidi overrides (U+202E
/// and the like) written as visible escapes, as `rancherctl` prints them (the template then escapes HTML).
pub(crate) fn esc(s: &str) -> String {
    text::escape(s)
}

/// The pinned targets as `name (id)`, the name being what the target was called at submit.
fn targets(r: &ApprovalRequest) -> Vec<String> {
    r.targets
        .iter()
        .map(|id| match r.target_labels.get(id) {
            Some(label) => format!("{} ({})", esc(label), esc(id)),
            None => esc(id),
        })
        .collect()
}

/// The warnings about the names pinned at filing (a target whose name folds like another user's), escaped.
fn name_warnings(r: &ApprovalRequest) -> Vec<String> {
    rancher_workflows::names::warnings(&r.names)
        .iter()
        .map(|w| esc(w))
        .collect()
}

/// The look-alike warnings `rancherctl approvals show` prints: target names, input values and the requester's
/// user name holding non-ASCII letters that may imitate another name.
fn look_alike_warnings(r: &ApprovalRequest, inputs: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for label in r.target_labels.values() {
        if let Some(w) = text::look_alike(label) {
            out.push(format!("target \"{}\" {w}", esc(label)));
        }
    }
    input_look_alikes(inputs, "", &mut out);
    if let Some(w) = r.requester.username.as_deref().and_then(text::look_alike) {
        out.push(format!(
            "requester \"{}\" ({}) {w}",
            esc(r.requester.username.as_deref().unwrap_or_default()),
            esc(&r.requester.id)
        ));
    }
    out
}

fn input_look_alikes(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(w) = text::look_alike(s) {
                out.push(format!("input `{}` = \"{}\" {w}", esc(path), esc(s)));
            }
        }
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            input_look_alikes(
                v,
                &if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                },
                out,
            )
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .take(SHOWN_ITEMS)
            .for_each(|(i, v)| input_look_alikes(v, &format!("{path}[{i}]"), out)),
        _ => {}
    }
}

/// The most items of one list input a page shows (a cleanup pins every token name it will delete).
const SHOWN_ITEMS: usize = 20;

/// Inputs as people read them: a list longer than [`SHOWN_ITEMS`] shows its first items and how many more there
/// are (the whole request is in the API and `rancherctl approvals show ID -o json`).
fn shown_inputs(inputs: &Value) -> Value {
    match inputs {
        Value::Array(items) if items.len() > SHOWN_ITEMS => {
            let mut shown: Vec<Value> = items[..SHOWN_ITEMS].iter().map(shown_inputs).collect();
            shown.push(Value::String(format!(
                "... and {} more (the whole list: rancherctl approvals show ID -o json)",
                items.len() - SHOWN_ITEMS
            )));
            Value::Array(shown)
        }
        Value::Array(items) => Value::Array(items.iter().map(shown_inputs).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shown_inputs(v))).collect()),
        other => other.clone(),
    }
}

/// Inputs as `key=value` lines, each escaped (the request page shows the JSON).
fn inputs_line(inputs: &Value) -> String {
    let inputs = &shown_inputs(inputs);
    match inputs.as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    esc(k),
                    esc(&v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => "(none)".into(),
    }
}

/// One list row, as `me` may see it (what the service read only for approvers and admins, see
/// [`may_see_details`]).
fn row(app: &App, me: &Person, r: &ApprovalRequest, admins: &[String]) -> Value {
    let shown = seen_by(r, may_see_details(me, r, admins));
    serde_json::json!({
        "id": r.id.as_str(), "workflow": esc(&r.workflow_id), "inputs": inputs_line(&shown.inputs), "targets": targets(r).join(", "),
        "plan": (!r.names.is_empty()).then(|| esc(&rancher_workflows::names::plan_of(r))),
        "warnings": look_alike_warnings(r, &shown.inputs).len(),
        "requester": name(&r.requester), "reason": esc(r.reason.as_deref().unwrap_or_default()), "age": ago(r.created_at), "expires": when(r.expires_at),
        "state": r.state.as_str(), "who_may_approve": esc(&who_may_approve(r, admins)), "may_decide": app.may_decide(me, r, admins).is_ok(),
    })
}

/// The most rows a page shows (newest first); the API pages further.
const PAGE_ROWS: usize = 500;

async fn pending(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let v = match visitor(&app, &headers, true, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let admins = app.admin_ids().await;
    let (list, next) = match app
        .request_page(
            RequestFilter::all().state(RequestState::Pending),
            None,
            PAGE_ROWS,
            |r| crate::api::visible(&app, &v.person, r, &admins),
        )
        .await
    {
        Ok(page) => page,
        Err(e) => {
            return message(
                e.status,
                Some((&v.person, &v.csrf)),
                "Could not read the requests",
                &e.message,
            )
        }
    };
    // More pending requests than one page (or one bounded read) holds: the history page goes on from here.
    let older = next.as_deref().map(|n| {
        older_link(
            &HistoryQuery {
                state: Some("pending".into()),
                ..HistoryQuery::default()
            },
            n,
        )
    });
    let items: Vec<Value> = list.iter().map(|r| row(&app, &v.person, r, &admins)).collect();
    render(
        "list.html",
        context! { me => me_view(&v.person), csrf => v.csrf, flash => v.flash, heading => "Pending requests", items, older, empty => "Nothing is waiting for approval." },
    )
}

#[derive(Debug, Default, Deserialize)]
struct HistoryQuery {
    state: Option<String>,
    workflow: Option<String>,
    requester: Option<String>,
    /// Only requests older than this one (the "Older" link's).
    before: Option<String>,
    /// Rows a page (at most [`PAGE_ROWS`], the default).
    limit: Option<usize>,
}

/// The history page's own URL with `before` set, for the link to older requests.
fn older_link(q: &HistoryQuery, before: &str) -> String {
    let mut link = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("state", &q.state),
        ("workflow", &q.workflow),
        ("requester", &q.requester),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            link.append_pair(key, v);
        }
    }
    if let Some(limit) = q.limit {
        link.append_pair("limit", &limit.to_string());
    }
    link.append_pair("before", before);
    format!("/history?{}", link.finish())
}

async fn history(State(app): State<Arc<App>>, headers: HeaderMap, Query(q): Query<HistoryQuery>) -> Response {
    let v = match visitor(&app, &headers, true, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut f = RequestFilter::all();
    if let Some(s) = q.state.as_deref().filter(|s| !s.is_empty()) {
        match crate::api::parse_state(s) {
            Ok(st) => f = f.state(st),
            Err(e) => return message(e.status, Some((&v.person, &v.csrf)), "Unknown state", &e.message),
        }
    }
    if let Some(w) = q.workflow.clone().filter(|s| !s.is_empty()) {
        f = f.workflow(w);
    }
    if let Some(r) = q.requester.clone().filter(|s| !s.is_empty()) {
        f = f.requester(r);
    }
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => match b.parse::<rancher_approval::RequestId>() {
            Ok(id) => Some(id),
            Err(e) => {
                return message(
                    StatusCode::BAD_REQUEST,
                    Some((&v.person, &v.csrf)),
                    "Unknown page",
                    &format!("before: {e}; follow the page's \"Older\" link instead"),
                )
            }
        },
    };
    let limit = q.limit.unwrap_or(PAGE_ROWS).clamp(1, PAGE_ROWS);
    let admins = app.admin_ids().await;
    let (list, next) = match app
        .request_page(f, before, limit, |r| crate::api::visible(&app, &v.person, r, &admins))
        .await
    {
        Ok(page) => page,
        Err(e) => {
            return message(
                e.status,
                Some((&v.person, &v.csrf)),
                "Could not read the requests",
                &e.message,
            )
        }
    };
    let older = next.as_deref().map(|n| older_link(&q, n));
    let items: Vec<Value> = list.iter().map(|r| row(&app, &v.person, r, &admins)).collect();
    let filters = serde_json::json!({"state": q.state.unwrap_or_default(), "workflow": q.workflow.unwrap_or_default(), "requester": q.requester.unwrap_or_default()});
    let states: Vec<&str> = RequestState::ALL.iter().map(|s| s.as_str()).collect();
    render(
        "list.html",
        context! { me => me_view(&v.person), csrf => v.csrf, flash => v.flash, heading => "History", items, filters, states, older, empty => "No request matches." },
    )
}

async fn admin(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let v = match visitor(&app, &headers, true, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !v.person.is_admin {
        return message(
            StatusCode::FORBIDDEN,
            Some((&v.person, &v.csrf)),
            "Admins only",
            "Only Rancher admins see the installed workflows and their policies.",
        );
    }
    let (installs, verified) = match with_store(app.store(), |s| async move {
        Ok((
            s.list_installations().await?,
            s.verify_audit().await.map_err(|e| e.to_string()),
        ))
    })
    .await
    {
        Ok(x) => x,
        Err(e) => {
            return message(
                e.status,
                Some((&v.person, &v.csrf)),
                "Could not read the store",
                &e.message,
            )
        }
    };
    let items: Vec<Value> = installs
        .iter()
        .map(|i| {
            serde_json::json!({"workflow": i.workflow_id, "title": app.runner.registry().get(&i.workflow_id).map(|w| w.def().title).unwrap_or(""),
                "policy": i.policy.to_string(), "installer": name(&i.installer), "updated": when(i.updated_at)})
        })
        .collect();
    let audit = match verified {
        Ok(n) => format!("{n} entries, hash chain verified"),
        Err(e) => format!("VERIFICATION FAILED: {e}"),
    };
    render(
        "admin.html",
        context! { me => me_view(&v.person), csrf => v.csrf, flash => v.flash, items, audit },
    )
}

async fn request_page(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let v = match visitor(&app, &headers, true, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let me = Some((&v.person, v.csrf.as_str()));
    let req = match app.runner.get(&id).await {
        Ok(r) => r,
        Err(e) => {
            let e = ApiError::from(e);
            return message(e.status, me, "No such request", &e.message);
        }
    };
    let admins = app.admin_ids().await;
    if !crate::api::visible(&app, &v.person, &req, &admins) {
        return message(
            StatusCode::FORBIDDEN,
            me,
            "Not yours to see",
            "You are not the requester, an approver or an admin of this request.",
        );
    }
    let audit = app.audit_of(&id).await.unwrap_or_default();
    let decide = app.may_decide(&v.person, &req, &admins);
    let details = may_see_details(&v.person, &req, &admins);
    let shown = seen_by(&req, details);
    let outcome = shown.execution.as_ref().and_then(|e| e.outcome.as_ref()).map(|o| {
        let detail = o
            .detail
            .get("summary")
            .or_else(|| o.detail.get("error"))
            .cloned()
            .unwrap_or_else(|| o.detail.clone());
        let said = detail
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| serde_json::to_string_pretty(&detail).unwrap_or_default());
        text::escape_lines(&format!("{:?}: {said}", o.status).to_lowercase())
    });
    let closed = req.closed.as_ref().map(|c| {
        format!(
            "{} by {} at {}{}",
            req.state,
            esc(&c.by),
            when(c.at),
            c.reason.as_ref().map(|r| format!(": {}", esc(r))).unwrap_or_default()
        )
    });
    let r = serde_json::json!({
        "id": req.id.as_str(), "workflow": esc(&req.workflow_id), "state": req.state.as_str(), "requester": name(&req.requester), "requester_id": esc(&req.requester.id),
        "reason": esc(req.reason.as_deref().unwrap_or_default()), "inputs": text::escape_lines(&serde_json::to_string_pretty(&shown_inputs(&shown.inputs)).unwrap_or_default()),
        "targets": targets(&req), "warnings": name_warnings(&req).into_iter().chain(look_alike_warnings(&req, &shown.inputs)).collect::<Vec<_>>(),
        "plan": esc(&rancher_workflows::names::plan_of(&req)),
        "withheld": !details, "reviewed": req.content_hash,
        "duration": req.inputs.get("duration").and_then(Value::as_str).map(esc), "extends": req.inputs.get("extends").and_then(Value::as_str).map(esc),
        "policy": esc(&req.policy.to_string()), "who_may_approve": esc(&who_may_approve(&req, &admins)), "created": when(req.created_at), "age": ago(req.created_at),
        "expires": when(req.expires_at), "may_decide": decide.is_ok(), "why_not": esc(&decide.err().unwrap_or_default()),
        "decisions": req.decisions.iter().map(|d| serde_json::json!({"who": name(&d.principal), "vote": format!("{:?}", d.vote).to_lowercase(), "reason": esc(d.reason.as_deref().unwrap_or_default()), "at": when(d.decided_at)})).collect::<Vec<_>>(),
        "outcome": outcome, "closed": closed,
        "audit": audit.iter().map(|e| serde_json::json!({"seq": e.seq, "kind": esc(e.kind.as_str()), "actor": esc(&e.actor), "at": when(e.at)})).collect::<Vec<_>>(),
    });
    render(
        "request.html",
        context! { me => me_view(&v.person), csrf => v.csrf, flash => v.flash, r },
    )
}

#[derive(Debug, Deserialize)]
struct DecideForm {
    csrf: Option<String>,
    vote: Option<String>,
    reason: Option<String>,
    /// The content hash of the request as the page showed it.
    reviewed: Option<String>,
}

pub(crate) fn forged() -> Response {
    message(StatusCode::FORBIDDEN, None, "Refused", "This form did not come from your signed-in page (its security token is missing or wrong), so nothing was done. Reload the page and try again.")
}

async fn decide(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<DecideForm>, FormRejection>,
) -> Response {
    // Check the form before asking Rancher: a forged post costs no Rancher call.
    let Ok(Form(form)) = form else { return forged() };
    if cookie(&headers, &cookie_name(&app, SESSION_COOKIE)).is_none() {
        return forged();
    }
    // Asked of Rancher now, not from the identity cache: a disabled or demoted person decides nothing.
    let v = match visitor(&app, &headers, false, true).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !form.csrf.as_deref().is_some_and(|c| same(c, &v.csrf)) {
        return forged();
    }
    let approve = match form.vote.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return message(
                StatusCode::BAD_REQUEST,
                Some((&v.person, &v.csrf)),
                "No decision",
                "Press Approve or Deny.",
            )
        }
    };
    let reason = form.reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    let Some(reviewed) = form.reviewed.filter(|h| !h.is_empty()) else {
        return message(StatusCode::BAD_REQUEST, Some((&v.person, &v.csrf)), "Reload the request", "This form did not say which version of the request you reviewed; reload the request page and decide again.");
    };
    let flash = match app.decide(&v.person, &id, approve, reason, Some(reviewed)).await {
        Ok((r, _)) => {
            let text = match (approve, r.state) {
                (false, _) => format!("You denied request {id}. Nothing will run."),
                (true, RequestState::Succeeded) => format!("You approved request {id}. The service ran it once: it succeeded."),
                (true, RequestState::Failed) => format!("You approved request {id}. The service ran it once, and Rancher refused it: see the outcome below."),
                (true, RequestState::Pending) => format!("Your approval of request {id} is recorded. It needs more approvals before it runs."),
                (true, st) => format!("Your approval of request {id} is recorded; the request is now {st}."),
            };
            Flash::ok(text)
        }
        Err(e) => Flash::error(format!("Nothing was changed: {}", e.message)),
    };
    if let Err(e) = app.web.flash(&v.cookie, flash).await {
        tracing::warn!("could not keep the message for the next page: {}", e.message);
    }
    Redirect::to(&format!(
        "/requests/{}",
        percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
    ))
    .into_response()
}

async fn login_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if visitor(&app, &headers, false, false).await.is_ok() {
        return Redirect::to("/").into_response();
    }
    let token = random_hex();
    let mut r = render("login.html", context! { csrf => token });
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&app, LOGIN_COOKIE, &token, Some(3600)));
    r
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    csrf: Option<String>,
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The sign-in form again, with why the last attempt failed (and `Retry-After` when throttled).
fn not_signed_in(app: &App, e: &ApiError) -> Response {
    let token = random_hex();
    let flash = Flash::error(format!("Not signed in: {}", e.message));
    let mut r = render("login.html", context! { csrf => token, flash });
    *r.status_mut() = e.status;
    if let Some(secs) = e.retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(app, LOGIN_COOKIE, &token, Some(3600)));
    r
}

async fn login(
    State(app): State<Arc<App>>,
    peer: Option<axum::Extension<crate::throttle::Peer>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return forged() };
    // Double submit: the form's token must match the cookie set with the form.
    let cookie_token = cookie(&headers, &cookie_name(&app, LOGIN_COOKIE));
    if !matches!((&form.csrf, &cookie_token), (Some(a), Some(b)) if same(a, b)) {
        return forged();
    }
    let token = form.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let username = form.username.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let client = app.throttle.client(peer.map(|axum::Extension(p)| p), &headers);
    if let Err(e) = app
        .throttle
        .sign_in(client, if token.is_some() { None } else { username })
    {
        tracing::info!(%client, "sign-in throttled");
        return not_signed_in(&app, &e);
    }
    let result = match (token, username) {
        (Some(t), _) => match Identities::parse_token(t) {
            Ok(token) => app.person_now(&token).await.map(|p| (p, token, false)),
            Err(e) => Err(e),
        },
        (None, Some(u)) => app
            .identities
            .login(
                u,
                form.password.as_deref().unwrap_or(""),
                app.web.absolute,
                &app.service,
                &app.metrics,
            )
            .await
            .map(|(p, t)| (p, t, true)),
        (None, None) => Err(ApiError::bad_request("enter an API token, or a user name and password")),
    };
    let (person, token, from_login) = match result {
        Ok(x) => x,
        Err(e) => return not_signed_in(&app, &e),
    };
    let c = match app
        .web
        .create(
            &token,
            from_login,
            Flash::ok(format!("Signed in as {}.", esc(&person.who()))),
        )
        .await
    {
        Ok(c) => c,
        Err(e) => {
            if from_login {
                app.identities.logout(&token).await;
            }
            return not_signed_in(&app, &e);
        }
    };
    tracing::info!(user = %person.principal.id, "signed in to the approvals page");
    let mut r = Redirect::to("/").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app, SESSION_COOKIE, &c, Some(app.web.absolute.as_secs())),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&app, LOGIN_COOKIE, "", Some(0)));
    r
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let v = match visitor(&app, &headers, false, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !form.ok().and_then(|Form(f)| f.csrf).is_some_and(|c| same(&c, &v.csrf)) {
        return forged();
    }
    match app.web.end(&v.cookie).await {
        Ok(ended) => log_out(&app, ended),
        Err(e) => {
            return message(
                e.status,
                Some((&v.person, &v.csrf)),
                "Could not sign you out",
                &e.message,
            )
        }
    }
    to_sign_in(&app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_html() {
        let html = env()
            .get_template("message.html")
            .unwrap()
            .render(context! { heading => "<script>alert(1)</script>", text => "a & b \"c\"" })
            .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
                || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("a &amp; b &quot;c&quot;"), "{html}");
    }

    #[test]
    fn long_list_inputs_show_their_first_items_and_the_count() {
        let names: Vec<String> = (0..5_000).map(|i| format!("token-{i:05}")).collect();
        let shown = shown_inputs(&serde_json::json!({"filter": "expired", "pinned": names}));
        let list = shown["pinned"].as_array().unwrap();
        assert_eq!(list.len(), SHOWN_ITEMS + 1);
        assert_eq!(list[0], "token-00000");
        assert!(
            list[SHOWN_ITEMS].as_str().unwrap().starts_with("... and 4980 more"),
            "{}",
            list[SHOWN_ITEMS]
        );
        assert_eq!(shown["filter"], "expired");
        assert!(inputs_line(&serde_json::json!({"pinned": names})).len() < 2_000);
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; ra_session=abc; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
