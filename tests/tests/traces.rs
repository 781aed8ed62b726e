//! Traces and per-operation metrics of one approval (rancher-server's `otel` feature, on for this package): the
//! service exports its spans over OTLP/HTTP (JSON) to a collector running in this process, and `/metrics` times
//! each Rancher operation and store transaction of the execution.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::routing::post;
use rancher_access_tests::server::{self, Api};
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// What the collector received: every span of every export, flattened.
type Received = Arc<Mutex<Vec<Value>>>;

/// An OTLP/HTTP traces receiver on loopback: keeps the spans of each JSON export request and answers as a
/// collector does (an empty `ExportTraceServiceResponse`).
async fn collector() -> (String, Received, Arc<Mutex<Vec<String>>>) {
    let spans: Received = Arc::default();
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s, b) = (spans.clone(), bodies.clone());
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let (s, b) = (s.clone(), b.clone());
            async move {
                assert_eq!(
                    headers.get("content-type").and_then(|v| v.to_str().ok()),
                    Some("application/json"),
                    "OTLP/HTTP with JSON bodies"
                );
                let export: Value = serde_json::from_str(&body).expect("an export is JSON");
                for rs in export["resourceSpans"].as_array().into_iter().flatten() {
                    let service = rs["resource"]["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|a| a["key"] == "service.name")
                        .map(|a| a["value"]["stringValue"].clone());
                    assert_eq!(service, Some(json!("rancher-access")), "{rs}");
                    for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                        s.lock()
                            .unwrap()
                            .extend(ss["spans"].as_array().into_iter().flatten().cloned());
                    }
                }
                b.lock().unwrap().push(body);
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans, bodies)
}

/// A span's attribute as text (string or integer values).
fn attr(span: &Value, key: &str) -> Option<String> {
    let a = span["attributes"].as_array()?.iter().find(|a| a["key"] == key)?;
    let v = &a["value"];
    v["stringValue"]
        .as_str()
        .map(str::to_string)
        .or_else(|| v["intValue"].as_str().map(str::to_string))
        .or_else(|| v["intValue"].as_i64().map(|i| i.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_of_one_approval_holds_its_request_its_rancher_calls_and_its_store_transactions() {
    let (endpoint, spans, bodies) = collector().await;
    let (layer, telemetry) = rancher_server::telemetry::otlp_layer(&endpoint).expect("the exporter starts");
    tracing_subscriber::registry().with(layer).init();

    let (sim, srv, id) = server::with_pending_request("for the trace").await;
    let t = sim.tokens().clone();
    let admin = Api::new(srv.url(), Some(&t.admin));
    let (st, done) = admin.post(&format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!((st, done["state"].as_str()), (200, Some("succeeded")), "{done}");

    // Metrics: the execution's own Rancher operations by id, and the store's transactions by name.
    let (_, m) = Api::new(srv.url(), None).get("/metrics").await;
    let m = m.as_str().expect("metrics text").to_string();
    let create = rancher_api::ids::RK_GLOBALROLEBINDINGS_CREATE;
    for needle in [
        format!("rancher_access_rancher_call_seconds_count{{operation=\"{create}\"}} 1"),
        "rancher_access_store_seconds_count{operation=\"decide\",result=\"ok\"}".to_string(),
        "rancher_access_store_seconds_count{operation=\"claim_execution\",result=\"ok\"} 1".to_string(),
        "rancher_access_execution_seconds_count{outcome=\"succeeded\"} 1".to_string(),
    ] {
        assert!(m.contains(&needle), "{needle} missing from\n{m}");
    }
    srv.shutdown().await;
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.unwrap();

    let spans = spans.lock().unwrap().clone();
    let by_id: HashMap<String, &Value> = spans
        .iter()
        .map(|s| (s["spanId"].as_str().unwrap_or_default().to_string(), s))
        .collect();
    let approve = spans
        .iter()
        .find(|s| s["name"] == "http_request" && attr(s, "route").as_deref() == Some("/api/v1/requests/{id}/approve"))
        .unwrap_or_else(|| panic!("no span for the approve request among {} spans", spans.len()));
    assert_eq!(attr(approve, "method").as_deref(), Some("POST"));
    assert_eq!(attr(approve, "status").as_deref(), Some("200"));
    // Everything the approval did, found by walking each span's parents up to the request's span.
    let under_approve = |s: &Value| {
        let mut cur = s;
        for _ in 0..64 {
            let parent = cur["parentSpanId"].as_str().unwrap_or_default();
            if parent.is_empty() {
                return false;
            }
            if parent == approve["spanId"].as_str().unwrap() {
                return cur["traceId"] == approve["traceId"];
            }
            match by_id.get(parent) {
                Some(p) => cur = p,
                None => return false,
            }
        }
        false
    };
    let beneath: Vec<&Value> = spans.iter().filter(|s| under_approve(s)).collect();
    let ops = |name: &str| -> Vec<String> {
        beneath
            .iter()
            .filter(|s| s["name"] == name)
            .filter_map(|s| attr(s, "operation"))
            .collect()
    };
    let rancher = ops("rancher_call");
    let store = ops("store");
    assert!(
        rancher.iter().any(|o| o == create),
        "the binding's creation is a Rancher call beneath the approval: {rancher:?}"
    );
    for op in ["decide", "claim_execution", "record_outcome"] {
        assert!(
            store.iter().any(|o| o == op),
            "the store's `{op}` is beneath the approval: {store:?}"
        );
    }
    // Span names are fixed words (routes are patterns), and no token leaves in any span or event.
    for s in &spans {
        let name = s["name"].as_str().unwrap_or_default();
        assert!(!name.contains(&id), "a request id in a span name: {name}");
    }
    let sent = bodies.lock().unwrap().join("\n");
    for secret in [&t.admin, &t.approver, &t.user] {
        let (_, secret_part) = secret.split_once(':').unwrap();
        assert!(!sent.contains(secret_part), "a token was exported in a span");
    }
}
