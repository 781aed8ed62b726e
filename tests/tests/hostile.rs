//! Hostile server answers over real HTTPS (small local servers from `rancher_sim::testing`): an HTML login page,
//! truncated JSON, a 200 that carries an error, a body far larger than any page, a next-page link to another
//! host, and endless pages. Each gives one clear, typed error, after a bounded number of requests and with
//! bounded memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use rancher_api::{Client, Error, RetryPolicy, SecretString, ServerError};
use rancher_sim::testing::{self, Answer, BrokenServer, SeenRequest};

const TOKEN: &str = "token-abcde:hostilehostilehostilehostilehostilehostilehostileho";

fn client_for(server: &BrokenServer) -> rancher_api::ClientBuilder {
    Client::builder(server.domain())
        .token(SecretString::from(TOKEN.to_string()))
        .ca_pem(server.ca_pem.clone().into_bytes())
        .without_system_roots()
        .retry_policy(RetryPolicy {
            max_retries: 2,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_retry_after: Duration::ZERO,
        })
        .timeout(Duration::from_secs(30))
}

/// A scripted server that also counts the requests it got.
async fn server(script: impl Fn(&SeenRequest) -> Answer + Send + Sync + 'static) -> (BrokenServer, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let s = testing::scripted_server(move |r| {
        counter.fetch_add(1, Ordering::SeqCst);
        script(r)
    })
    .await
    .expect("server starts");
    (s, hits)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[track_caller]
fn one_line(e: &Error) -> String {
    let text = e.to_string();
    assert!(
        !text.contains(char::is_control) && text.len() < 600,
        "one short line: {text:?}"
    );
    assert!(!text.contains("hostilehostile"), "the token never shows: {text}");
    text
}

#[tokio::test]
async fn an_html_login_page_is_named_as_such() {
    let login = testing::html_login_server().await.expect("server");
    let c = client_for(&login).build().expect("client");
    let e = c.call("v3.users.list", &[], None).await.unwrap_err();
    assert!(matches!(e, Error::Decode { status: 200, .. }), "{e:?}");
    let text = one_line(&e);
    assert!(
        text.contains("expected JSON but got an HTML page (a login page or proxy in front of Rancher?)"),
        "{text}"
    );
    // Through the workflow layer too: the session cannot open, and says why.
    let e = rancher_workflows::Session::open(c.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTML page"), "{e}");
    // A proxy's redirect to its login page is not followed (the token stays here).
    let (redirect, hits) = server(|_| Answer::Full {
        status: 302,
        content_type: "text/html".into(),
        body: b"<a href=\"https://sso.example.invalid/login\">login</a>".to_vec(),
    })
    .await;
    let e = client_for(&redirect)
        .build()
        .expect("client")
        .call("v3.users.list", &[], None)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(302), "{e:?}");
    assert!(matches!(e.server_error(), Some(ServerError::Unparsed { .. })), "{e:?}");
    one_line(&e);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn truncated_json_is_a_clear_error() {
    let page = r#"{"type":"collection","data":[{"id":"u-1","username":"admin"},{"id":"u-2","username":"bob"}],"pagination":{"limit":100}}"#;
    // A complete answer whose JSON stops half-way.
    let half = page[..page.len() / 2].to_string();
    let (cut, _) = server(move |_| Answer::json(200, half.clone())).await;
    let e = client_for(&cut)
        .build()
        .expect("client")
        .call("v3.users.list", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e:?}");
    assert!(one_line(&e).contains("the answer is truncated JSON"), "{e}");
    // A connection closed before the announced length: retried as a read, then reported, after 1 + 2 attempts.
    let (closed, hits) = server(move |_| Answer::Truncated { body: page.to_string() }).await;
    let e = client_for(&closed)
        .build()
        .expect("client")
        .call("v3.users.list", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(one_line(&e).contains("the connection failed mid-request"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "the first attempt and two retries");
}

#[tokio::test]
async fn a_200_that_carries_an_error_is_an_error() {
    let (norman, _) = server(|_| {
        Answer::json(
            200,
            r#"{"type":"error","status":403,"code":"PermissionDenied","message":"proxy says no"}"#,
        )
    })
    .await;
    let e = client_for(&norman)
        .build()
        .expect("client")
        .call("v3.users.list", &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Api { status: 200, server: ServerError::Norman(n), .. } if n.code.as_deref() == Some("PermissionDenied")),
        "{e:?}"
    );
    assert!(one_line(&e).contains("PermissionDenied: proxy says no"), "{e}");
    let (k8s, _) = server(|_| {
        Answer::json(
            200,
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"no"}"#,
        )
    })
    .await;
    let e = client_for(&k8s)
        .build()
        .expect("client")
        .call("rk.users.list", &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Api {
                server: ServerError::Kubernetes(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.server_error().and_then(ServerError::reason), Some("Forbidden"));
    one_line(&e);
}

#[tokio::test]
async fn a_body_far_larger_than_any_page_stops_at_the_limit_with_bounded_memory() {
    const GIB: u64 = 1 << 30;
    // Four GiB streamed without a length: reading stops at the 1 MiB limit.
    let (endless, _) = server(|_| Answer::Huge {
        len: 4 * GIB,
        declare_length: false,
    })
    .await;
    let c = client_for(&endless)
        .max_response_bytes(1 << 20)
        .build()
        .expect("client");
    let before = rss_kib();
    let e = c.call("v3.users.list", &[], None).await.unwrap_err();
    let grew = rss_kib().saturating_sub(before);
    assert!(matches!(e, Error::TooLarge { limit: 1_048_576, .. }), "{e:?}");
    assert!(one_line(&e).contains("larger than the 1048576-byte limit"), "{e}");
    assert!(grew < 64 * 1024, "memory grew by {grew} KiB reading a 4 GiB answer");
    // The same through a paging stream.
    let e = c
        .call_stream("v3.users.list", &[])
        .expect("stream")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    // An announced length above the default limit (64 MiB) is refused before reading any of it.
    let (announced, hits) = server(|_| Answer::Huge {
        len: 10 * GIB,
        declare_length: true,
    })
    .await;
    let before = rss_kib();
    let e = client_for(&announced)
        .build()
        .expect("client")
        .call("v3.users.list", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { limit: 67_108_864, .. }), "{e:?}");
    assert!(rss_kib().saturating_sub(before) < 64 * 1024);
    assert_eq!(hits.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    for next in [
        "https://evil.example.invalid/v3/users?marker=u-2",
        "http://127.0.0.1/v3/users?marker=u-2",
        "https://127.0.0.1:1/v3/users?marker=u-2",
    ] {
        let body =
            format!(r#"{{"type":"collection","data":[{{"id":"u-1"}}],"pagination":{{"limit":1,"next":"{next}"}}}}"#);
        let (s, hits) = server(move |_| Answer::json(200, body.clone())).await;
        let c = client_for(&s).build().expect("client");
        let e = c
            .call_stream("v3.users.list", &[])
            .expect("stream")
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Pagination { .. }), "{next}: {e:?}");
        assert!(one_line(&e).contains("refusing to send the token elsewhere"), "{e}");
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "{next}: only the first page was fetched"
        );
    }
}

#[tokio::test]
async fn endless_pages_are_detected_not_followed_forever() {
    // The same continue token on every page.
    let (same, hits) = server(|_| {
        Answer::json(200, r#"{"apiVersion":"management.cattle.io/v3","kind":"UserList","metadata":{"continue":"c2FtZQ"},"items":[{"metadata":{"name":"u-1"}}]}"#)
    })
    .await;
    let c = client_for(&same).build().expect("client");
    let e = c
        .call_stream("rk.users.list", &[])
        .expect("stream")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Pagination { .. }), "{e:?}");
    assert!(one_line(&e).contains("the same page link twice"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Norman links going round in a circle: page a -> page b -> page a.
    let (circle, hits) = server(|r| {
        let (me, next) = if r.target.contains("marker=b") { ("b", "a") } else { ("a", "b") };
        Answer::json(200, format!(r#"{{"type":"collection","data":[{{"id":"u-{me}"}}],"pagination":{{"next":"/v3/users?marker={next}"}}}}"#))
    })
    .await;
    let c = client_for(&circle).build().expect("client");
    let e = c
        .call_stream("v3.users.list", &[])
        .expect("stream")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Pagination { .. }), "{e:?}");
    assert!(one_line(&e).contains("the same page link twice"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "a, b, a: stopped at the first repeat");
    // Expired tokens without end: a few restarts, then a clear error.
    let (expiring, hits) = server(|r| {
        if r.target.contains("continue=") {
            Answer::json(410, r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410,"message":"too old"}"#)
        } else {
            Answer::json(200, r#"{"kind":"UserList","metadata":{"continue":"bW9yZQ"},"items":[{"metadata":{"name":"u-1"}}]}"#)
        }
    })
    .await;
    let c = client_for(&expiring).build().expect("client");
    let e = c
        .call_stream("rk.users.list", &[])
        .expect("stream")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(one_line(&e).contains("expired 4 times (410 Gone), 4 in a row"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), 8);
}
