//! Client behaviour against a mocked transport: paging, retries, error shapes, validation, secrets.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use http::HeaderMap;
use serde_json::json;

use crate::requests::*;
use crate::transport::{HttpRequest, HttpResponse, MockTransport, TransportError};
use crate::{Client, ConnectFailure, Error, RetryPolicy, SecretString, ServerError};

const SECRET: &str = "token-abcde:zzzzsecretzzzzsecretzzzzsecretzzzzsecretzzzzsecretzzzz";

type Script = Arc<Mutex<VecDeque<Result<HttpResponse, TransportError>>>>;

fn resp(status: u16, body: serde_json::Value) -> Result<HttpResponse, TransportError> {
    let mut h = HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    Ok(HttpResponse {
        status,
        headers: h,
        body: Bytes::from(serde_json::to_vec(&body).unwrap()),
    })
}

fn raw(status: u16, ct: &str, body: &str) -> Result<HttpResponse, TransportError> {
    let mut h = HeaderMap::new();
    h.insert("content-type", ct.parse().unwrap());
    Ok(HttpResponse {
        status,
        headers: h,
        body: Bytes::from(body.to_string()),
    })
}

fn io_error() -> Result<HttpResponse, TransportError> {
    Err(TransportError::Io {
        message: "connection closed before message completed".into(),
        source: None,
    })
}

/// A client over a mocked transport that answers from `script` in order and records every request.
fn client(script: Vec<Result<HttpResponse, TransportError>>) -> (Client, Arc<Mutex<Vec<HttpRequest>>>) {
    client_observed(script, None)
}

/// [`client`], telling `observer` about every round trip.
fn client_observed(
    script: Vec<Result<HttpResponse, TransportError>>,
    observer: Option<Arc<dyn crate::CallObserver>>,
) -> (Client, Arc<Mutex<Vec<HttpRequest>>>) {
    let script: Script = Arc::new(Mutex::new(script.into()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut mock = MockTransport::new();
    let (s2, seen2) = (script.clone(), seen.clone());
    mock.expect_send().returning(move |req| {
        seen2.lock().unwrap().push(req);
        let next = s2
            .lock()
            .unwrap()
            .pop_front()
            .expect("the test scripted fewer answers than the client asked for");
        Box::pin(async move { next })
    });
    let mut b = Client::builder("rancher.example.com")
        .token(SecretString::from(SECRET.to_string()))
        .retry_policy(RetryPolicy {
            max_retries: 3,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_retry_after: Duration::ZERO,
        })
        .transport(Arc::new(mock));
    if let Some(o) = observer {
        b = b.observer(o);
    }
    (b.build().unwrap(), seen)
}

fn user(name: &str) -> serde_json::Value {
    json!({"apiVersion": "management.cattle.io/v3", "kind": "User", "metadata": {"name": name}, "username": name})
}

fn user_list(names: &[&str], cont: &str) -> serde_json::Value {
    json!({"apiVersion": "management.cattle.io/v3", "kind": "UserList", "metadata": {"continue": cont},
           "items": names.iter().map(|n| user(n)).collect::<Vec<_>>()})
}

fn names(users: &[crate::types::User]) -> Vec<String> {
    users
        .iter()
        .map(|u| u.metadata.as_ref().unwrap().name.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn k8s_list_follows_continue_across_an_empty_page() {
    let (c, seen) = client(vec![
        resp(200, user_list(&["a", "b"], "t1")),
        resp(200, user_list(&[], "t2")),
        resp(200, user_list(&["c"], "")),
    ]);
    let users: Vec<_> = c.users().list(RkUsersList::new().limit(2)).try_collect().await.unwrap();
    assert_eq!(names(&users), ["a", "b", "c"]);
    let urls: Vec<String> = seen.lock().unwrap().iter().map(|r| r.url.to_string()).collect();
    assert_eq!(
        urls[0],
        "https://rancher.example.com/apis/management.cattle.io/v3/users?limit=2"
    );
    assert!(
        urls[1].contains("continue=t1") && urls[1].contains("limit=2"),
        "{}",
        urls[1]
    );
    assert!(urls[2].contains("continue=t2"));
}

#[tokio::test]
async fn default_page_size_is_applied() {
    let (c, seen) = client(vec![resp(200, user_list(&["a"], ""))]);
    let _: Vec<_> = c.users().list(RkUsersList::new()).try_collect().await.unwrap();
    assert!(seen.lock().unwrap()[0].url.as_str().ends_with("?limit=500"));
}

fn expired() -> Result<HttpResponse, TransportError> {
    resp(
        410,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410,
                     "message": "The provided continue parameter is too old"}),
    )
}

#[tokio::test]
async fn expired_continue_restarts_once_without_duplicates() {
    let (c, seen) = client(vec![
        resp(200, user_list(&["a", "b"], "t1")),
        expired(),
        resp(200, user_list(&["a", "b", "c"], "")),
    ]);
    let users: Vec<_> = c.users().list(RkUsersList::new()).try_collect().await.unwrap();
    assert_eq!(names(&users), ["a", "b", "c"]);
    let last = seen.lock().unwrap()[2].url.to_string();
    assert!(!last.contains("continue"), "the restart drops the token: {last}");
}

#[tokio::test]
async fn expiries_in_a_row_fail_clearly() {
    let (c, seen) = client(vec![
        resp(200, user_list(&["a"], "t1")),
        expired(),
        resp(200, user_list(&["a"], "t2")),
        expired(),
        resp(200, user_list(&["a"], "t3")),
        expired(),
        resp(200, user_list(&["a"], "t4")),
        expired(),
    ]);
    let err = c
        .users()
        .list(RkUsersList::new())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Pagination { .. }));
    assert!(
        err.to_string().contains("expired 4 times (410 Gone), 4 in a row"),
        "{err}"
    );
    assert_eq!(seen.lock().unwrap().len(), 8, "it stopped there");
}

#[tokio::test]
async fn expiries_restart_again_while_the_list_gets_further() {
    let (c, _) = client(vec![
        resp(200, user_list(&["a"], "t1")),
        expired(),
        resp(200, user_list(&["a", "b"], "t2")),
        expired(),
        resp(200, user_list(&["a", "b"], "t3")),
        resp(200, user_list(&["c"], "")),
    ]);
    let users: Vec<_> = c.users().list(RkUsersList::new()).try_collect().await.unwrap();
    assert_eq!(names(&users), ["a", "b", "c"], "each item once across two restarts");
}

#[tokio::test]
async fn a_repeated_continue_token_is_a_loop_not_forever() {
    let (c, _) = client(vec![
        resp(200, user_list(&["a"], "same")),
        resp(200, user_list(&["b"], "same")),
    ]);
    let err = c
        .users()
        .list(RkUsersList::new())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("same page link twice"), "{err}");
}

fn norman_page(ids: &[&str], next: Option<&str>) -> serde_json::Value {
    let mut p = json!({"limit": 2, "total": 3});
    if let Some(n) = next {
        p["next"] = json!(n);
        p["partial"] = json!(true);
    }
    json!({"type": "collection", "resourceType": "user", "data": ids.iter().map(|i| json!({"id": i, "type": "user"})).collect::<Vec<_>>(), "pagination": p})
}

#[tokio::test]
async fn norman_list_follows_next_links_on_the_same_host() {
    let (c, seen) = client(vec![
        resp(
            200,
            norman_page(
                &["u-1", "u-2"],
                Some("https://rancher.example.com/v3/users?limit=2&marker=u-3"),
            ),
        ),
        resp(200, norman_page(&["u-3"], None)),
    ]);
    let users: Vec<_> = c
        .v3()
        .users()
        .list(V3UsersList::new().limit(2))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        users.iter().map(|u| u.id.clone().unwrap()).collect::<Vec<_>>(),
        ["u-1", "u-2", "u-3"]
    );
    assert_eq!(
        seen.lock().unwrap()[1].url.as_str(),
        "https://rancher.example.com/v3/users?limit=2&marker=u-3"
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_refused() {
    let (c, seen) = client(vec![resp(
        200,
        norman_page(&["u-1"], Some("https://evil.example.net/v3/users?marker=u-2")),
    )]);
    let err = c
        .v3()
        .users()
        .list(V3UsersList::new())
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("evil.example.net"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1, "nothing was sent to the other host");
}

#[tokio::test]
async fn reads_are_retried_on_429_and_5xx() {
    let mut busy = HeaderMap::new();
    busy.insert("retry-after", "0".parse().unwrap());
    let (c, seen) = client(vec![
        Ok(HttpResponse {
            status: 429,
            headers: busy,
            body: Bytes::new(),
        }),
        resp(503, json!({})),
        io_error(),
        resp(200, json!({"metadata": {"name": "admin"}, "displayName": "Admin"})),
    ]);
    let role = c.global_roles().get(RkGlobalrolesGet::new("admin")).await.unwrap();
    assert_eq!(role.display_name.as_deref(), Some("Admin"));
    assert_eq!(seen.lock().unwrap().len(), 4);
}

/// Keeps what a [`crate::CallObserver`] was told.
#[derive(Default)]
struct Calls(Mutex<Vec<crate::CallRecord>>);

impl crate::CallObserver for Calls {
    fn observe(&self, call: &crate::CallRecord) {
        self.0.lock().unwrap().push(*call);
    }
}

#[tokio::test]
async fn the_observer_hears_each_operation_once_with_its_final_status_and_attempts() {
    let calls = Arc::new(Calls::default());
    let (c, _) = client_observed(
        vec![
            resp(503, json!({})),
            resp(200, json!({"metadata": {"name": "admin"}})),
            resp(200, user_list(&["a"], "t1")),
            resp(200, user_list(&["b"], "")),
            io_error(),
            io_error(),
            io_error(),
            io_error(),
        ],
        Some(calls.clone()),
    );
    c.global_roles().get(RkGlobalrolesGet::new("admin")).await.unwrap();
    let _: Vec<_> = c.users().list(RkUsersList::new()).try_collect().await.unwrap();
    c.global_roles().get(RkGlobalrolesGet::new("gone")).await.unwrap_err();
    let seen: Vec<_> = calls
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.operation, r.status, r.attempts))
        .collect();
    assert_eq!(
        seen,
        [
            (crate::ids::RK_GLOBALROLES_GET, Some(200), 2),
            (crate::ids::RK_USERS_LIST, Some(200), 1),
            (crate::ids::RK_USERS_LIST, Some(200), 1),
            (crate::ids::RK_GLOBALROLES_GET, None, 4),
        ]
    );
}

#[tokio::test]
async fn reads_give_up_after_the_retry_budget() {
    let (c, seen) = client(vec![
        resp(503, json!({})),
        resp(503, json!({})),
        resp(503, json!({})),
        resp(503, json!({})),
    ]);
    let err = c.global_roles().get(RkGlobalrolesGet::new("admin")).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_post_is_never_retried() {
    let body = crate::types::GlobalRoleBinding {
        global_role_name: Some("admin".into()),
        user_name: Some("u-x".into()),
        ..Default::default()
    };
    let (c, seen) = client(vec![resp(503, json!({}))]);
    let err = c
        .global_role_bindings()
        .create(RkGlobalrolebindingsCreate::new(body.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    let (c, seen2) = client(vec![io_error()]);
    let err2 = c
        .global_role_bindings()
        .create(RkGlobalrolebindingsCreate::new(body))
        .await
        .unwrap_err();
    assert!(matches!(err2, Error::Transport { .. }), "{err2:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(seen2.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_delete_whose_answer_was_lost_counts_404_as_done() {
    let (c, seen) = client(vec![
        io_error(),
        resp(404, json!({"kind": "Status", "reason": "NotFound", "code": 404})),
    ]);
    let status = c
        .global_role_bindings()
        .delete(RkGlobalrolebindingsDelete::new("grb-abcde"))
        .await
        .unwrap();
    // Deletes answer with the object; the synthesized "already deleted" answer is a `Status`, read as the kind.
    assert_eq!(status.kind.as_deref(), Some("Status"));
    assert_eq!(seen.lock().unwrap().len(), 2);
    // A first-attempt 404 is a real "not found".
    let (c, _) = client(vec![resp(
        404,
        json!({"kind": "Status", "reason": "NotFound", "code": 404}),
    )]);
    assert!(c
        .global_role_bindings()
        .delete(RkGlobalrolebindingsDelete::new("grb-zzzzz"))
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn connection_refused_is_reported_not_retried() {
    let (c, seen) = client(vec![Err(TransportError::Connect {
        failure: ConnectFailure::Refused,
        source: None,
    })]);
    let err = c.public().ping().get(PublicPingGet::new()).await.unwrap_err();
    assert!(matches!(
        err,
        Error::Connect {
            failure: ConnectFailure::Refused,
            ..
        }
    ));
    assert!(err.to_string().contains("rancher.example.com:443"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn error_shapes_are_kept() {
    let (c, _) = client(vec![raw(
        401,
        "application/json",
        r#"{"type":"error","status":"401","message":"Unauthorized 401: must authenticate"}"#,
    )]);
    let err = c.v3().users().list_page(V3UsersList::new()).await.unwrap_err();
    assert!(err.is_unauthorized());
    assert_eq!(
        err.to_string(),
        "v3.users.list: 401 Unauthorized 401: must authenticate"
    );

    let (c, _) = client(vec![resp(
        403,
        json!({"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": "globalrolebindings.management.cattle.io is forbidden: User \"u-x\" cannot create resource"}),
    )]);
    let err = c
        .global_role_bindings()
        .create(RkGlobalrolebindingsCreate::new(Default::default()))
        .await
        .unwrap_err();
    assert!(err.is_forbidden());
    assert!(matches!(err.server_error(), Some(ServerError::Kubernetes(_))));
}

#[tokio::test]
async fn non_json_answers_are_clear_errors() {
    let (c, _) = client(vec![raw(
        200,
        "text/html",
        "<html><title>Log in to the corporate proxy</title></html>",
    )]);
    let err = c.v3().users().list_page(V3UsersList::new()).await.unwrap_err();
    assert!(err.to_string().contains("HTML page"), "{err}");

    let (c, _) = client(vec![raw(
        200,
        "application/json",
        r#"{"type":"collection","data":[{"id":"u-1""#,
    )]);
    let err = c.v3().users().list_page(V3UsersList::new()).await.unwrap_err();
    assert!(err.to_string().contains("truncated JSON"), "{err}");

    let (c, _) = client(vec![raw(
        200,
        "application/json",
        r#"{"type":"error","status":500,"code":"ServerError","message":"boom"}"#,
    )]);
    let err = c.v3().users().get(V3UsersGet::new("u-1")).await.unwrap_err();
    assert!(
        matches!(err, Error::Api { status: 200, .. }),
        "a 200 carrying an error body is an error: {err:?}"
    );

    // A proxy's HTML error page on a write keeps its content type and a snippet (writes are not retried).
    let (c, _) = client(vec![raw(502, "text/html", "<html>Bad gateway</html>")]);
    let body = crate::types::V3GlobalRoleBinding {
        global_role_id: Some("admin".into()),
        ..Default::default()
    };
    let err = c
        .v3()
        .globalrolebindings()
        .create(V3GlobalrolebindingsCreate::new(body))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert_eq!(
        err.to_string(),
        "v3.globalrolebindings.create: 502 unexpected text/html answer: <html>Bad gateway</html>"
    );
}

#[tokio::test]
async fn plain_text_answers_decode() {
    let (c, _) = client(vec![raw(200, "text/plain", "pong")]);
    assert_eq!(c.public().ping().get(PublicPingGet::new()).await.unwrap(), "pong");
}

#[tokio::test]
async fn public_endpoints_never_carry_the_token() {
    let (c, seen) = client(vec![raw(200, "text/plain", "pong"), resp(200, json!({"data": []}))]);
    c.public().ping().get(PublicPingGet::new()).await.unwrap();
    c.v3().users().list_page(V3UsersList::new()).await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen[0].headers.get("authorization").is_none());
    let auth = seen[1].headers.get("authorization").unwrap();
    assert!(auth.is_sensitive());
    assert_eq!(auth.to_str().unwrap(), format!("Bearer {SECRET}"));
}

#[tokio::test]
async fn urls_keep_namespaced_ids_and_encode_principals() {
    let (c, seen) = client(vec![resp(200, json!({})), resp(200, json!({})), resp(200, json!({}))]);
    c.v3()
        .projects()
        .get(V3ProjectsGet::new("c-abcde:p-xyz12"))
        .await
        .unwrap();
    c.v3()
        .principals()
        .get(V3PrincipalsGet::new("local://u-abcde"))
        .await
        .unwrap();
    c.v3()
        .principals()
        .search(V3PrincipalsSearch::new(crate::types::V3PrincipalSearch {
            name: Some("al".into()),
            ..Default::default()
        }))
        .await
        .unwrap();
    let urls: Vec<String> = seen.lock().unwrap().iter().map(|r| r.url.to_string()).collect();
    assert_eq!(urls[0], "https://rancher.example.com/v3/projects/c-abcde:p-xyz12");
    assert_eq!(
        urls[1],
        "https://rancher.example.com/v3/principals/local%3A%2F%2Fu-abcde"
    );
    assert_eq!(urls[2], "https://rancher.example.com/v3/principals?action=search");
}

#[tokio::test]
async fn generic_call_validates_before_sending() {
    let (c, seen) = client(vec![resp(200, json!({"items": [], "metadata": {}}))]);
    let e = c.call("rk.user.list", &[], None).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown operation `rk.user.list` (did you mean `rk.users.list`?); `rancherctl api list` shows every id"
    );
    let e = c.call("rk.users.list", &[("limt", "5")], None).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("unknown parameter `limt`; this operation takes continue, fieldSelector"),
        "{e}"
    );
    let e = c.call("rk.users.list", &[("limit", "five")], None).await.unwrap_err();
    assert!(e.to_string().contains("must be a whole number"), "{e}");
    let e = c.call("rk.users.get", &[], None).await.unwrap_err();
    assert!(e.to_string().contains("missing path parameter `name`"), "{e}");
    let e = c.call("rk.users.list", &[], Some(json!({}))).await.unwrap_err();
    assert!(e.to_string().contains("takes no body"), "{e}");
    let e = c
        .call("v3.globalrolebindings.create", &[], Some(json!({"userId": "u-x"})))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("lacks required field(s): globalRoleId"), "{e}");
    let e = c
        .call(
            "v3.globalrolebindings.create",
            &[],
            Some(json!({"globalRoleId": "admin", "labels": "not-a-map"})),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not fit type V3GlobalRoleBinding"), "{e}");
    assert!(seen.lock().unwrap().is_empty(), "nothing invalid was sent");
    let page = c.call("rk.users.list", &[("limit", "5")], None).await.unwrap();
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn generic_stream_pages_plain_json() {
    let (c, _) = client(vec![
        resp(200, user_list(&["a"], "t")),
        resp(200, user_list(&["b"], "")),
    ]);
    let items: Vec<serde_json::Value> = c
        .call_stream("rk.users.list", &[])
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    assert!(c.call_stream("rk.users.get", &[("name", "x")]).is_err());
}

#[tokio::test]
async fn operations_the_server_lacks_are_refused_early() {
    let (c, seen) = client(vec![]);
    let c = c.with_server_version("v2.11.3".parse().unwrap());
    let e = c.users().list_page(RkUsersList::new()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "rk.users.list: invalid request: this operation needs Rancher 2.13 or newer; the server runs 2.11.3"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_token_never_shows_in_debug_or_errors() {
    let (c, seen) = client(vec![raw(
        401,
        "application/json",
        r#"{"type":"error","status":"401","message":"Unauthorized 401: must authenticate"}"#,
    )]);
    let builder = Client::builder("r.example.com").token(SecretString::from(SECRET.to_string()));
    let err = c.v3().users().list_page(V3UsersList::new()).await.unwrap_err();
    let secret_part = SECRET.split(':').nth(1).unwrap();
    for text in [
        format!("{c:?}"),
        format!("{builder:?}"),
        format!("{err}"),
        format!("{err:?}"),
        format!("{:?}", seen.lock().unwrap()[0]),
    ] {
        assert!(!text.contains(secret_part), "secret leaked into: {text}");
    }
    let token = crate::types::V3Token {
        token: Some(SECRET.into()),
        name: Some("token-abcde".into()),
        ..Default::default()
    };
    let shown = format!("{token:?}");
    assert!(
        !shown.contains(secret_part) && shown.contains(crate::REDACTED),
        "{shown}"
    );
}

#[test]
fn builder_refuses_plain_http_and_browsers() {
    let e = Client::builder("http://rancher.example.com").build().unwrap_err();
    assert!(e.to_string().contains("plain HTTP"), "{e}");
    let e = Client::builder("rancher.example.com")
        .user_agent("Mozilla/5.0")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("browser"), "{e}");
    let e = Client::builder("rancher.example.com")
        .ca_pem(b"not a pem".to_vec())
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("CA bundle"), "{e}");
}

#[test]
fn generic_request_target_matches_what_is_sent() {
    let req = crate::GenericRequest::new("v3.principals.get", &[("id", "local://u-abcde")], None).unwrap();
    assert_eq!(req.target().unwrap(), "/v3/principals/local%3A%2F%2Fu-abcde");
    let req =
        crate::GenericRequest::new("v3.authconfigs.disable", &[("kind", "github"), ("id", "github")], None).unwrap();
    assert_eq!(req.target().unwrap(), "/v3/githubConfigs/github?action=disable");
    let req = crate::GenericRequest::new("v3.users.list", &[("username", "a b"), ("me", "true")], None).unwrap();
    assert_eq!(req.target().unwrap(), "/v3/users?username=a+b&me=true");
}

/// Security review, item 1 (critical): a path value of `.` or `..` was sent unencoded and the URL parser removed the
/// dot segment, so `DELETE .../globalrolebindings/.` became a delete of the whole collection. Every way in (the
/// typed request, the generic call, the dry-run target) refuses such values before anything is sent.
#[tokio::test]
async fn dot_segments_in_path_values_are_refused_before_sending() {
    let (c, seen) = client(vec![]);
    for bad in [".", "..", "", "   "] {
        let e = c
            .call("rk.globalrolebindings.delete", &[("name", bad)], None)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidRequest { .. }), "{bad:?}: {e}");
        let e = c
            .global_role_bindings()
            .delete(RkGlobalrolebindingsDelete::new(bad))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidRequest { .. }), "{bad:?}: {e}");
        if let Ok(req) = crate::GenericRequest::new("rk.users.delete", &[("name", bad)], None) {
            let e = req.target().unwrap_err();
            assert!(
                e.to_string().contains("collection") || e.to_string().contains("empty"),
                "{bad:?}: {e}"
            );
        }
    }
    let e = c
        .call("rk.users.delete", &[("name", "..")], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("`..`") && e.contains("collection"), "{e}");
    assert!(seen.lock().unwrap().is_empty(), "nothing may be sent");
    // Dots inside a value are ordinary characters and stay in their own segment.
    let req = crate::GenericRequest::new("rk.users.get", &[("name", "a.b")], None).unwrap();
    assert_eq!(req.target().unwrap(), "/apis/management.cattle.io/v3/users/a.b");
    let req = crate::GenericRequest::new("rk.users.get", &[("name", "../x")], None).unwrap();
    assert_eq!(req.target().unwrap(), "/apis/management.cattle.io/v3/users/..%2Fx");
}
