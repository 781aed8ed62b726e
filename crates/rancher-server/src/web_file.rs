//! Requests filed from the page: a form per installed workflow built from its inputs (with pickers for users,
//! roles, clusters and projects), the signed-in person's own requests, and cancelling one. Plain HTML forms, each
//! carrying the session's CSRF token like the decision form, so it all works without JavaScript.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use rancher_approval::{RequestFilter, RequestState};
use rancher_workflows::Submitted;
use serde_json::Value;

use crate::app::App;
use crate::sessions::Flash;
use crate::web::{cookie, cookie_name, esc, forged, me_view, message, render, same, visitor, when, SESSION_COOKIE};

/// The routes of filing from the page (merged beside [`crate::web::router`]).
pub(crate) fn router() -> axum::Router<Arc<App>> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/requests/{id}/cancel", post(cancel))
        .route("/file", get(choose))
        .route("/file/{workflow}", get(form).post(submit))
        .route("/mine", get(mine))
}

/// The form fields that are no workflow input.
const NOT_INPUTS: &[&str] = &["csrf", "reason"];

fn path_part(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `GET /file`: the installed workflows a person may file.
pub(crate) async fn choose(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let v = match visitor(&app, &headers, true, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut items = Vec::new();
    for w in app.runner.registry().defs() {
        if let Ok(Some(_)) = app.runner.installation(w.id).await {
            items.push(
                serde_json::json!({"id": w.id, "title": w.title, "description": w.description, "writes": w.writes}),
            );
        }
    }
    render(
        "file.html",
        context! { me => me_view(&v.person), csrf => v.csrf, flash => v.flash, items },
    )
}

/// `GET /file/{workflow}`: the form of one workflow, its inputs as fields (the ones the service sets itself left
/// out), with the choices the person may pick from where the input names a user, role, cluster or project.
pub(crate) async fn form(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let v = match visitor(&app, &headers, true, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let me = Some((&v.person, v.csrf.as_str()));
    let Some(w) = app.runner.registry().get(&id) else {
        return message(
            StatusCode::NOT_FOUND,
            me,
            "No such workflow",
            &format!("There is no workflow `{}`.", esc(&id)),
        );
    };
    let def = w.def();
    if !matches!(app.runner.installation(def.id).await, Ok(Some(_))) {
        return message(
            StatusCode::NOT_FOUND,
            me,
            "Not installed",
            &format!("`{}` is not installed; an admin installs it first.", def.id),
        );
    }
    // The choices are listed with the person's own Rancher token, so they offer the users, roles, clusters and
    // projects Rancher shows this person and nothing more (the service account's view would show anyone who signs
    // in every project and user there is). When Rancher refuses a list (or the token no longer opens a session),
    // that field takes typed text, as the command line does; filing still resolves and checks what was typed.
    let session = match app.identities.open_for_reads(&v.token, &app.metrics).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::info!("the form of {} offers no choices: {}", def.id, e.message);
            None
        }
    };
    let mut fields = Vec::new();
    for input in def.inputs.iter().filter(|i| !i.is_internal() && i.name != "extends") {
        let mut choices = match &session {
            Some(s) => rancher_workflows::names::choices(s, def.id, input.name).await,
            None => Vec::new(),
        };
        // Rancher shows a standard user only their own user: they type the person's username instead (filing finds
        // it as the command line does), and the page never lists the users Rancher hides from them.
        if input.name == "user" && choices.len() <= 1 {
            choices.clear();
        }
        fields.push(serde_json::json!({
            "name": input.name, "required": input.required, "description": input.description,
            "json": input.kind == rancher_workflows::InputKind::Json, "duration": input.name == "duration",
            "choices": choices.into_iter().map(|(value, label)| serde_json::json!({"value": value, "label": label})).collect::<Vec<_>>(),
        }));
    }
    let w = serde_json::json!({"id": def.id, "title": def.title, "description": def.description, "path": path_part(def.id)});
    render(
        "file_form.html",
        context! { me => me_view(&v.person), csrf => v.csrf, flash => v.flash, w, fields },
    )
}

/// `POST /file/{workflow}`: files the run as the signed-in person, as `POST /api/v1/runs` does.
pub(crate) async fn submit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<BTreeMap<String, String>>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return forged() };
    if cookie(&headers, &cookie_name(&app, SESSION_COOKIE)).is_none() {
        return forged();
    }
    let v = match visitor(&app, &headers, false, true).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !form.get("csrf").is_some_and(|c| same(c, &v.csrf)) {
        return forged();
    }
    let me = Some((&v.person, v.csrf.as_str()));
    let Some(w) = app.runner.registry().get(&id) else {
        return message(
            StatusCode::NOT_FOUND,
            me,
            "No such workflow",
            &format!("There is no workflow `{}`.", esc(&id)),
        );
    };
    let def = w.def();
    let mut inputs = serde_json::Map::new();
    for (k, raw) in &form {
        let value = raw.trim();
        if NOT_INPUTS.contains(&k.as_str()) || value.is_empty() {
            continue;
        }
        let Some(spec) = def.inputs.iter().find(|i| i.name == k && !i.is_internal()) else {
            return message(
                StatusCode::BAD_REQUEST,
                me,
                "Unknown field",
                &format!("`{}` takes no input `{}`.", def.id, esc(k)),
            );
        };
        let value = if spec.kind == rancher_workflows::InputKind::Json {
            match serde_json::from_str::<Value>(value) {
                Ok(v) => v,
                Err(e) => {
                    return message(
                        StatusCode::BAD_REQUEST,
                        me,
                        "Not JSON",
                        &format!("Input `{}` takes a JSON value: {}", spec.name, esc(&e.to_string())),
                    )
                }
            }
        } else {
            Value::String(value.to_string())
        };
        inputs.insert(k.clone(), value);
    }
    let reason = form
        .get("reason")
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let done = app
        .submit(
            &v.person,
            &v.token,
            None,
            def.id,
            Value::Object(inputs).into(),
            reason,
            false,
        )
        .await;
    match done {
        Ok(Submitted::Pending { request, .. }) => {
            let flash = Flash::ok(format!("Request {request} is filed and waits for approval."));
            if let Err(e) = app.web.flash(&v.cookie, flash).await {
                tracing::warn!("could not keep the message for the next page: {}", e.message);
            }
            Redirect::to(&format!("/requests/{}", path_part(&request))).into_response()
        }
        Ok(Submitted::Succeeded { result }) => message(
            StatusCode::OK,
            me,
            "Done",
            &format!("It needed no approval and ran: {}", esc(&result.summary)),
        ),
        Err(e) => message(e.status, me, "Not filed", &format!("Nothing was filed: {}", e.message)),
    }
}

/// `GET /mine`: the signed-in person's own requests, newest first, each pending one with a Cancel button.
pub(crate) async fn mine(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let v = match visitor(&app, &headers, true, false).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let filter = RequestFilter {
        states: Vec::new(),
        workflow_id: None,
        requester: Some(v.person.principal.id.clone()),
    };
    let mut reqs = app.runner.store().list_requests(&filter).await.unwrap_or_default();
    reqs.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let items: Vec<Value> = reqs
        .iter()
        .take(200)
        .map(|r| {
            serde_json::json!({
                "id": r.id.as_str(), "path": path_part(r.id.as_str()), "workflow": esc(&r.workflow_id), "state": r.state.as_str(),
                "plan": esc(&rancher_workflows::names::plan_of(r)),
                "created": when(r.created_at), "pending": r.state == RequestState::Pending,
            })
        })
        .collect();
    render(
        "mine.html",
        context! { me => me_view(&v.person), csrf => v.csrf, flash => v.flash, items },
    )
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct CancelForm {
    csrf: Option<String>,
    reason: Option<String>,
}

/// `POST /requests/{id}/cancel`: cancels one of the person's own pending requests.
pub(crate) async fn cancel(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<CancelForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else { return forged() };
    if cookie(&headers, &cookie_name(&app, SESSION_COOKIE)).is_none() {
        return forged();
    }
    let v = match visitor(&app, &headers, false, true).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if !form.csrf.as_deref().is_some_and(|c| same(c, &v.csrf)) {
        return forged();
    }
    let reason = form.reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    let flash = match app.cancel(&v.person, &id, reason).await {
        Ok(_) => Flash::ok(format!("Request {id} is cancelled. Nothing will run.")),
        Err(e) => Flash::error(format!("Nothing was changed: {}", e.message)),
    };
    if let Err(e) = app.web.flash(&v.cookie, flash).await {
        tracing::warn!("could not keep the message for the next page: {}", e.message);
    }
    Redirect::to("/mine").into_response()
}
