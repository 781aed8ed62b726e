//! Helpers of the approvals-service tests: a service account of its own on the simulator, the service started
//! as a library on loopback, and a small JSON client that calls it with a person's token.

use std::sync::Arc;
use std::time::Duration;

use rancher_approval::Store;
use rancher_auth::{BearerToken, CaSource, Connection, InstanceDomain, RetryPolicy};
use rancher_server::{RunningServer, ServerConfig};
use rancher_sim::SimHandle;
use serde_json::{json, Value};

/// User name of the service account the harness creates on the simulator.
pub const SERVICE_USER: &str = "svc-approvals";
/// Its password (the simulator wants 12 characters or more).
pub const SERVICE_PASSWORD: &str = "service-account-password-1";

/// A reqwest client trusting only the simulator's CA.
pub fn sim_http(sim: &SimHandle) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().as_bytes()).expect("simulator CA");
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .build()
        .expect("client")
}

/// Creates a local user on the simulator (with a password), optionally an admin, and answers its user id.
pub async fn create_user(sim: &SimHandle, username: &str, password: &str, admin: bool) -> String {
    let http = sim_http(sim);
    let base = format!("https://{}", sim.domain());
    let u: Value = http
        .post(format!("{base}/v3/users"))
        .bearer_auth(&sim.tokens().admin)
        .json(&json!({"username": username, "password": password, "name": username, "enabled": true}))
        .send()
        .await
        .expect("create user")
        .json()
        .await
        .expect("user json");
    let id = u["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no user id in {u}"))
        .to_string();
    if admin {
        let r = http
            .post(format!("{base}/v3/globalrolebindings"))
            .bearer_auth(&sim.tokens().admin)
            .json(&json!({"userId": id, "globalRoleId": "admin"}))
            .send()
            .await
            .expect("bind admin");
        assert!(r.status().is_success(), "admin binding: {}", r.status());
    }
    id
}

/// Logs `username` in through Rancher's local login and answers the session token.
pub async fn login_token(sim: &SimHandle, username: &str, password: &str) -> String {
    let v: Value = sim_http(sim)
        .post(format!(
            "https://{}/v3-public/localProviders/local?action=login",
            sim.domain()
        ))
        .json(&json!({"username": username, "password": password, "responseType": "json"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login json");
    v["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in the login answer"))
        .to_string()
}

/// A dedicated admin service account on the simulator; answers its token.
pub async fn service_account(sim: &SimHandle) -> String {
    create_user(sim, SERVICE_USER, SERVICE_PASSWORD, true).await;
    login_token(sim, SERVICE_USER, SERVICE_PASSWORD).await
}

/// A connection to the simulator with `token`, trusting its CA.
pub fn connection(sim: &SimHandle, token: &str) -> Connection {
    Connection::new(
        InstanceDomain::parse(&sim.domain()).expect("domain"),
        BearerToken::parse(token).expect("token"),
    )
    .with_ca(Some(CaSource::Pem(sim.ca_pem())))
}

/// The service's configuration for tests: loopback, any port, the service account's connection, tiny retry
/// backoffs and quick jobs.
pub fn config(sim: &SimHandle, service_token: &str, store: Arc<dyn Store>) -> ServerConfig {
    ServerConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        store,
        connection(sim, service_token),
    )
    .retry(RetryPolicy {
        max_retries: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(20),
    })
    .executor("e2e-server")
    .job_interval(Duration::from_millis(300))
    .webhook_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// Starts the service.
pub async fn start(config: ServerConfig) -> RunningServer {
    rancher_server::start(config).await.expect("the service starts")
}

/// A JSON client of the service speaking as one person (or nobody).
#[derive(Clone)]
pub struct Api {
    /// Base URL of the service.
    pub base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Api {
    /// A client for `base` with `token` (none: anonymous).
    pub fn new(base: &str, token: Option<&str>) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            token: token.map(str::to_string),
        }
    }

    /// A client over a custom reqwest client (e.g. trusting a test CA).
    pub fn with_client(base: &str, token: Option<&str>, http: reqwest::Client) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            http,
            token: token.map(str::to_string),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_send(method, path, body).await.expect("the service answers")
    }

    /// A call that may find the service gone (a crash test): the transport error instead of a panic.
    async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let v = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text));
        Ok((status, v))
    }

    /// POST that may find the service gone.
    pub async fn try_post(&self, path: &str, body: Value) -> Result<(u16, Value), reqwest::Error> {
        self.try_send(reqwest::Method::POST, path, Some(body)).await
    }

    /// GET.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }
}

/// Installs `workflow` as `admin` with its default policy (asserting success).
pub async fn install(api: &Api, workflow: &str) {
    let (st, v) = api
        .post(&format!("/api/v1/workflows/{workflow}/install"), json!({}))
        .await;
    assert_eq!(st, 200, "install {workflow}: {v}");
}

/// A throwaway CA and a certificate for `127.0.0.1` signed by it, written as `ca.pem`, `cert.pem` and `key.pem`
/// under `dir`; answers (cert path, key path, CA PEM).
pub fn tls_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("cert");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem() + &ca.pem()).expect("cert written");
    std::fs::write(&k, key.serialize_pem()).expect("key written");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("CA written");
    (c, k, ca.pem())
}

/// A browser-like client of the page: keeps its cookies, does not follow redirects.
pub struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
    /// The `Set-Cookie` headers of the last answer.
    pub last_set_cookie: Vec<String>,
}

/// An answer of the page.
#[derive(Debug)]
pub struct Page {
    /// Status code.
    pub status: u16,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// The HTML.
    pub html: String,
}

impl Page {
    /// The value of the first `csrf` hidden field.
    pub fn csrf(&self) -> String {
        let at = self
            .html
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in\n{}", self.html))
            + "name=\"csrf\" value=\"".len();
        self.html[at..].split('"').next().unwrap_or_default().to_string()
    }
}

impl Page {
    /// The value of the `reviewed` hidden field (the content hash of the request as the page showed it).
    pub fn reviewed(&self) -> String {
        let at = self
            .html
            .find("name=\"reviewed\" value=\"")
            .unwrap_or_else(|| panic!("no reviewed field in\n{}", self.html))
            + "name=\"reviewed\" value=\"".len();
        self.html[at..].split('"').next().unwrap_or_default().to_string()
    }
}

impl Browser {
    /// A browser for `base` trusting `ca_pem` when given.
    pub fn new(base: &str, ca_pem: Option<&str>) -> Browser {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("CA"));
        }
        Browser {
            base: base.trim_end_matches('/').to_string(),
            http: b.build().expect("client"),
            cookies: Default::default(),
            last_set_cookie: Vec::new(),
        }
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let r = if cookie.is_empty() {
            r
        } else {
            r.header(reqwest::header::COOKIE, cookie)
        };
        let resp = r.send().await.expect("the page answers");
        self.last_set_cookie = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        for c in &self.last_set_cookie {
            if let Some((k, rest)) = c.split_once('=') {
                let v = rest.split(';').next().unwrap_or_default();
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Page {
            status,
            location,
            html: resp.text().await.unwrap_or_default(),
        }
    }

    /// GET a page.
    pub async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    /// POST a form.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(r).await
    }

    /// Signs in with an API token through the sign-in form; panics unless it worked.
    pub async fn sign_in_with_token(&mut self, token: &str) {
        let login = self.get("/login").await;
        let csrf = login.csrf();
        let done = self.post("/login", &[("csrf", &csrf), ("token", token)]).await;
        assert_eq!(
            (done.status, done.location.as_deref()),
            (303, Some("/")),
            "{}",
            done.html
        );
    }

    /// The same browser (cookies kept) at another base URL: another replica of the service behind a load
    /// balancer without sticky sessions.
    pub fn at(&mut self, base: &str) {
        self.base = base.trim_end_matches('/').to_string();
    }

    /// Drops every cookie but the session's (to forge requests from elsewhere) or all of them.
    pub fn forget_cookies(&mut self) {
        self.cookies.clear();
    }
}

/// A simulator (Rancher 2.13, 6 extra users), a service account of its own, and the service over `store`;
/// answers the simulator, the service account's token and the service.
pub async fn sim_and_service(store: Arc<dyn Store>) -> (SimHandle, String, RunningServer) {
    let sim = crate::sim(rancher_sim::RancherVersion::V2_13, 6).await;
    let svc = service_account(&sim).await;
    let srv = start(config(&sim, &svc, store)).await;
    (sim, svc, srv)
}

/// [`sim_and_service`] over a memory store, with `create-global-role-binding` installed by the admin and one
/// request by `approver` to make carol an admin, with `reason`, waiting; answers its id too.
pub async fn with_pending_request(reason: &str) -> (SimHandle, RunningServer, String) {
    let (sim, _svc, srv) = sim_and_service(Arc::new(rancher_approval::MemoryStore::new())).await;
    let t = sim.tokens().clone();
    install(&Api::new(srv.url(), Some(&t.admin)), "create-global-role-binding").await;
    let (st, sub) = Api::new(srv.url(), Some(&t.approver))
        .post("/api/v1/runs", json!({"workflow": "create-global-role-binding", "inputs": {"user": "carol", "role": "admin"}, "reason": reason}))
        .await;
    assert_eq!(st, 202, "{sub}");
    let id = sub["request"].as_str().expect("a request id").to_string();
    (sim, srv, id)
}
