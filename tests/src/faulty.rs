//! A transport that injects faults into chosen writes, deterministically, in front of the real HTTPS transport:
//! refuse a write before it reaches the server, or deliver it and lose the answer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rancher_api::transport::{BoxFuture, HttpRequest, HttpResponse, ReqwestTransport, Transport, TransportError};
use rancher_api::{Client, SecretString};
use rancher_sim::SimHandle;

/// What happens to one write (POST, PUT, PATCH, DELETE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// Answer `503` without sending it (nothing is applied).
    Refuse503,
    /// Send it (the server applies it), then lose the answer.
    LoseAnswer,
    /// Send it normally.
    Pass,
}

/// The transport: writes meet the scripted faults in order, then pass; reads always pass.
#[derive(Debug)]
pub struct FaultyTransport {
    inner: ReqwestTransport,
    script: Mutex<VecDeque<WriteFault>>,
    seen: Mutex<Vec<(String, String, WriteFault)>>,
}

impl FaultyTransport {
    /// Every request seen: method, path, and the fault applied.
    pub fn seen(&self) -> Vec<(String, String, WriteFault)> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Transport for FaultyTransport {
    fn send(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        let write = request.method != http::Method::GET;
        let fault = if write {
            self.script
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or(WriteFault::Pass)
        } else {
            WriteFault::Pass
        };
        self.seen
            .lock()
            .expect("lock")
            .push((request.method.to_string(), request.url.path().to_string(), fault));
        Box::pin(async move {
            match fault {
                WriteFault::Refuse503 => {
                    let mut headers = http::HeaderMap::new();
                    headers.insert("content-type", http::HeaderValue::from_static("application/json"));
                    let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503,"message":"injected"}"#;
                    Ok(HttpResponse {
                        status: 503,
                        headers,
                        body: bytes::Bytes::from_static(body),
                    })
                }
                WriteFault::LoseAnswer => {
                    let _ = self.inner.send(request).await;
                    Err(TransportError::Io {
                        message: "connection closed before message completed (injected)".into(),
                        source: None,
                    })
                }
                WriteFault::Pass => self.inner.send(request).await,
            }
        })
    }
}

/// A client of the simulator whose writes meet `script` in order; also returns the transport to inspect.
pub fn faulty_client(sim: &SimHandle, token: &str, script: &[WriteFault]) -> (Client, Arc<FaultyTransport>) {
    let ca = rancher_api::tls::parse_ca_bundle(sim.ca_pem().as_bytes()).expect("the simulator's CA");
    let tls = rancher_api::tls::client_config(&ca, false).expect("TLS config");
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .https_only(true)
        .no_proxy()
        .build()
        .expect("HTTP client");
    let transport = Arc::new(FaultyTransport {
        inner: ReqwestTransport::new(http, 64 << 20, Duration::from_secs(30)),
        script: Mutex::new(script.iter().copied().collect()),
        seen: Mutex::new(Vec::new()),
    });
    let client = Client::builder(sim.domain())
        .token(SecretString::from(token.to_string()))
        .transport(transport.clone())
        .build()
        .expect("client builds");
    (client, transport)
}
