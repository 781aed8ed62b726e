//! [`ServerClient`]: the approvals service's API from Rust, speaking with one person's Rancher token (what
//! `rancherctl --server URL` uses). Plain HTTP only to a loopback address; the token is sent only in the
//! `Authorization` header (marked sensitive) and never shown by `Debug` or in errors.

use rancher_approval::{Policy, RequestState};
use rancher_auth::BearerToken;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use url::Url;

/// The longest line of a streamed list the client buffers (one item and its row).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// The largest whole answer the client buffers (the audit log is the largest one the service sends).
pub const MAX_ANSWER_BYTES: usize = 128 * 1024 * 1024;

/// Why a call to the service failed: one line naming the cause.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ClientError {
    /// The HTTP status, when the service answered.
    pub status: Option<u16>,
    /// What went wrong (the service's own `error` when it sent one).
    pub message: String,
    /// What to do about it, when the service (or the diagnosis of a failed connection) says.
    pub fix: Option<String>,
}

impl ClientError {
    fn local(message: impl Into<String>) -> Self {
        ClientError {
            status: None,
            message: message.into(),
            fix: None,
        }
    }

    fn answered(status: u16, message: impl Into<String>) -> Self {
        ClientError {
            status: Some(status),
            message: message.into(),
            fix: None,
        }
    }
}

/// Why the service at `base` could not be reached, in words, with the fix, as the Rancher connection test names
/// its failures: plain HTTP on an HTTPS URL, a certificate nobody vouched for (often: this is Rancher, not the
/// service), refused, no answer, a name that does not resolve.
fn diagnose(base: &Url, e: reqwest::Error) -> ClientError {
    let timeout = e.is_timeout();
    let chain = crate::error::chain(&e.without_url());
    let host = format!(
        "{}{}",
        base.host_str().unwrap_or(""),
        base.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    let lower = chain.to_lowercase();
    let (what, fix) = if lower.contains("invalidcontenttype")
        || lower.contains("corrupt message")
        || lower.contains("wrong version number")
    {
        (format!("{host} answers plain HTTP, not HTTPS"), format!("use http://{host} (plain HTTP is allowed on loopback only), or give the service a certificate (rancherctl serve --tls-cert/--tls-key)"))
    } else if lower.contains("unknownissuer")
        || lower.contains("invalid peer certificate")
        || lower.contains("certificate")
    {
        (
            format!("the certificate of {host} is not signed by a CA you trust"),
            "pass the CA that signed the service's certificate with --server-ca-cert PEM; and check that the URL is the approvals service (`rancherctl serve` prints it), not Rancher itself".to_string(),
        )
    } else if timeout || lower.contains("timed out") {
        (
            format!("{host} did not answer in time"),
            "check that the service runs and that nothing (a firewall, a proxy) drops the connection".to_string(),
        )
    } else if lower.contains("dns") || lower.contains("failed to lookup") || lower.contains("name or service not known")
    {
        (
            format!("the name {} does not resolve", base.host_str().unwrap_or("")),
            "check the host name in the URL".to_string(),
        )
    } else if lower.contains("refused") {
        (
            format!("nothing listens at {host}"),
            "check the URL and port, and that `rancherctl serve` runs there".to_string(),
        )
    } else {
        (
            format!("could not reach {host}"),
            "check the URL and that the service runs (`curl URL/healthz`)".to_string(),
        )
    };
    ClientError {
        status: None,
        message: format!("could not reach the approvals service at {base}: {what} ({chain})"),
        fix: Some(fix),
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunAnswer {
    /// It ran (`200`): the output.
    Succeeded(Value),
    /// It waits for approval (`202`): `{"request": id, "status": "pending", "approvers", "expires_at"}`.
    Pending(Value),
}

impl RunAnswer {
    /// The answer as its status says: `202` waits for approval, anything else ran.
    fn of(status: u16, v: Value) -> RunAnswer {
        if status == 202 {
            RunAnswer::Pending(v)
        } else {
            RunAnswer::Succeeded(v)
        }
    }
}

/// What a run of a list workflow answered: its items as they arrive, or (another workflow, or one waiting for
/// approval) the usual answer.
#[derive(Debug)]
pub enum ListAnswer {
    /// The list, streamed.
    Items(RemoteList),
    /// Not streamed.
    Answer(RunAnswer),
}

/// A list streamed by the service (`Accept: application/x-ndjson`), read one item at a time.
#[derive(Debug)]
pub struct RemoteList {
    response: reqwest::Response,
    buffer: Vec<u8>,
    received: usize,
    ended: bool,
    /// The workflow id.
    pub workflow: String,
    /// What is listed, plural (`users`).
    pub noun: String,
    /// The table's column headers.
    pub columns: Vec<String>,
}

/// One streamed item and, when asked for, its table row.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteItem {
    /// The resource as the server sent it.
    pub item: Value,
    /// Its row in the workflow's table.
    pub row: Option<Vec<String>>,
}

impl RemoteList {
    async fn line(&mut self) -> Result<Option<Value>, ClientError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line).map(Some).map_err(|e| {
                    ClientError::local(format!("the approvals service sent a line that is not JSON: {e}"))
                });
            }
            if self.buffer.len() > MAX_LINE_BYTES {
                return Err(ClientError::local(format!(
                    "the approvals service sent a line longer than {} MiB after {} {}; the list was stopped (is --server the approvals service?)",
                    MAX_LINE_BYTES >> 20,
                    self.received,
                    self.noun
                )));
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.buffer.extend_from_slice(&bytes),
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(ClientError::local(format!(
                        "the approvals service's answer was cut off: {}",
                        crate::error::chain(&e.without_url())
                    )))
                }
            }
        }
    }

    /// The next item; `None` at the end. A list that failed on the service's side, or an answer cut off before
    /// its last line, is an error naming how many items came.
    pub async fn next(&mut self) -> Result<Option<RemoteItem>, ClientError> {
        if self.ended {
            return Ok(None);
        }
        let Some(mut line) = self.line().await? else {
            self.ended = true;
            return Err(ClientError::local(format!(
                "the approvals service's answer was cut off after {} {}",
                self.received, self.noun
            )));
        };
        if let Some(item) = line.get_mut("item").map(Value::take) {
            self.received += 1;
            let row = line
                .get_mut("row")
                .map(Value::take)
                .and_then(|r| serde_json::from_value(r).ok());
            return Ok(Some(RemoteItem { item, row }));
        }
        self.ended = true;
        if let Some(error) = line.get("error").and_then(Value::as_str) {
            return Err(ClientError::answered(200, error.to_string()));
        }
        match line.pointer("/end/count").and_then(Value::as_u64) {
            Some(n) if n as usize == self.received => Ok(None),
            Some(n) => Err(ClientError::local(format!(
                "the approvals service listed {n} {} but {} arrived",
                self.noun, self.received
            ))),
            None => Err(ClientError::local(format!(
                "the approvals service sent an unknown line after {} {}",
                self.received, self.noun
            ))),
        }
    }
}

/// The service's base URL, checked: `https://`, or plain `http://` only to a loopback address (a token is sent
/// there).
pub fn check_server_url(base: &str) -> Result<Url, ClientError> {
    let base = Url::parse(base.trim_end_matches('/')).map_err(|e| {
        ClientError::local(format!(
            "`{base}` is not a URL ({e}); pass the RANCHERCTL_SERVER=... URL the service printed"
        ))
    })?;
    let loopback = match base.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !base.username().is_empty() || base.password().is_some() {
        return Err(ClientError::local(format!(
            "the service URL for {} holds a user name or password; drop them (you sign in with your Rancher token)",
            base.host_str().unwrap_or("")
        )));
    }
    if base.path() != "/" && !base.path().is_empty() || base.query().is_some() {
        let root = format!(
            "{}://{}{}",
            base.scheme(),
            base.host_str().unwrap_or(""),
            base.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        return Err(ClientError {
            status: None,
            message: format!(
                "the service URL has a path ({}); the service is addressed by its root",
                base.path()
            ),
            fix: Some(format!("use {root}")),
        });
    }
    match base.scheme() {
        "https" => Ok(base),
        "http" if loopback => Ok(base),
        s => Err(ClientError::local(format!(
            "refusing to send your token to {s}://{}: use https:// (plain http only to a loopback address)",
            base.host_str().unwrap_or("")
        ))),
    }
}

/// A client of the approvals service for one person.
#[derive(Clone)]
pub struct ServerClient {
    base: Url,
    http: reqwest::Client,
    token: BearerToken,
}

impl std::fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
            .finish()
    }
}

impl ServerClient {
    /// A client for `base` (e.g. `https://approvals.example.com`). With `ca_pem`, only those CAs are trusted (the
    /// service's certificate is pinned to them, whatever the system trusts); without, the system's roots.
    pub fn new(base: &str, token: BearerToken, ca_pem: Option<&[u8]>) -> Result<ServerClient, ClientError> {
        let base = check_server_url(base)?;
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none());
        match ca_pem {
            Some(pem) => {
                let certs = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| ClientError::local(format!("the CA bundle is not PEM: {e}")))?;
                if certs.is_empty() {
                    return Err(ClientError::local("the CA bundle holds no certificate; pass the PEM file of the CA that signed the service's certificate"));
                }
                for c in certs {
                    b = b.add_root_certificate(c);
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    if let Ok(cert) = reqwest::Certificate::from_der(&c) {
                        b = b.add_root_certificate(cert);
                    }
                }
            }
        }
        let http = b
            .build()
            .map_err(|e| ClientError::local(format!("cannot build an HTTP client: {e}")))?;
        Ok(ServerClient { base, http, token })
    }

    /// The `Authorization` header, marked sensitive.
    fn auth(&self) -> Result<reqwest::header::HeaderValue, ClientError> {
        let mut auth =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.token.secret().expose_secret()))
                .map_err(|_| ClientError::local("the token has characters a header cannot carry"))?;
        auth.set_sensitive(true);
        Ok(auth)
    }

    /// A request to `path` under the service's URL, with the token.
    fn builder(&self, method: reqwest::Method, path: &str) -> Result<reqwest::RequestBuilder, ClientError> {
        let url = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        Ok(self
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, self.auth()?))
    }

    /// Sends `r`; a failure to reach the service names it.
    async fn dispatch(&self, r: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        r.send().await.map_err(|e| diagnose(&self.base, e))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), ClientError> {
        let mut r = self.builder(method, path)?;
        if let Some(b) = body {
            r = r.json(&b);
        }
        Self::answer(self.dispatch(r).await?).await
    }

    /// A whole JSON answer: its status and document, or the service's error. At most [`MAX_ANSWER_BYTES`] are
    /// read.
    async fn answer(mut resp: reqwest::Response) -> Result<(u16, Value), ClientError> {
        let status = resp.status().as_u16();
        let too_large = || {
            ClientError {
            status: Some(status),
            fix: None,
            message: format!("the approvals service's answer is larger than {} MiB; it was not read (is --server the approvals service?)", MAX_ANSWER_BYTES >> 20),
        }
        };
        if resp.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
            return Err(too_large());
        }
        let mut body: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(bytes)) => {
                    if body.len() + bytes.len() > MAX_ANSWER_BYTES {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&bytes);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(ClientError::answered(
                        status,
                        format!(
                            "the approvals service's answer was cut off: {}",
                            crate::error::chain(&e.without_url())
                        ),
                    ))
                }
            }
        }
        let not_ours = |what: &str| ClientError {
            status: Some(status),
            message: format!("the server answered {status} with {what}: it is not the approvals service"),
            fix: Some(
                "use the URL `rancherctl serve` printed (RANCHERCTL_SERVER=...): the service's root, not Rancher's"
                    .into(),
            ),
        };
        let v: Value = serde_json::from_slice(&body).map_err(|_| not_ours("something that is not JSON"))?;
        if status >= 400 {
            let Some(msg) = v["error"].as_str() else {
                return Err(not_ours("JSON without the service's `error` field"));
            };
            return Err(ClientError {
                status: Some(status),
                message: msg.to_string(),
                fix: v["fix"].as_str().map(str::to_string),
            });
        }
        Ok((status, v))
    }

    /// The service's liveness check (`/healthz`, sent without the token): `Ok` when it answers as the service.
    pub async fn healthz(&self) -> Result<Value, ClientError> {
        let url = format!("{}/healthz", self.base.as_str().trim_end_matches('/'));
        Ok(Self::answer(self.dispatch(self.http.get(url)).await?).await?.1)
    }

    /// Who the token belongs to.
    pub async fn me(&self) -> Result<Value, ClientError> {
        Ok(self.send(reqwest::Method::GET, "/api/v1/me", None).await?.1)
    }

    /// The catalog with installations.
    pub async fn workflows(&self) -> Result<Vec<Value>, ClientError> {
        let (_, v) = self.send(reqwest::Method::GET, "/api/v1/workflows", None).await?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    }

    /// Installs a workflow (admins).
    pub async fn install(&self, workflow: &str, policy: Option<&Policy>) -> Result<Value, ClientError> {
        Ok(self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/workflows/{}/install", seg(workflow)),
                Some(json!({"policy": policy})),
            )
            .await?
            .1)
    }

    /// Changes a workflow's policy (its installer or an admin).
    pub async fn set_policy(&self, workflow: &str, policy: &Policy) -> Result<Value, ClientError> {
        Ok(self
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/workflows/{}/policy", seg(workflow)),
                Some(json!({"policy": policy})),
            )
            .await?
            .1)
    }

    /// Runs a workflow, or files a request when it needs approval.
    pub async fn run(
        &self,
        workflow: &str,
        inputs: Value,
        reason: Option<&str>,
        dry_run: bool,
    ) -> Result<RunAnswer, ClientError> {
        let (status, v) = self
            .send(
                reqwest::Method::POST,
                "/api/v1/runs",
                Some(json!({"workflow": workflow, "inputs": inputs, "reason": reason, "dry_run": dry_run})),
            )
            .await?;
        Ok(RunAnswer::of(status, v))
    }

    /// Runs a workflow, asking for a list workflow's items as they arrive (`rows`: with their table rows); any
    /// other answer (not a list, waiting for approval) comes back whole.
    pub async fn run_list(
        &self,
        workflow: &str,
        inputs: Value,
        reason: Option<&str>,
        rows: bool,
    ) -> Result<ListAnswer, ClientError> {
        let body = json!({"workflow": workflow, "inputs": inputs, "reason": reason, "rows": rows});
        let r = self.builder(reqwest::Method::POST, "/api/v1/runs")?.header(
            reqwest::header::ACCEPT,
            format!("{}, application/json", crate::api::NDJSON),
        );
        let resp = self.dispatch(r.json(&body)).await?;
        let streamed = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with(crate::api::NDJSON));
        if !streamed {
            let (status, v) = Self::answer(resp).await?;
            return Ok(ListAnswer::Answer(RunAnswer::of(status, v)));
        }
        let mut list = RemoteList {
            response: resp,
            buffer: Vec::new(),
            received: 0,
            ended: false,
            workflow: String::new(),
            noun: String::new(),
            columns: Vec::new(),
        };
        let head = list
            .line()
            .await?
            .ok_or_else(|| ClientError::local("the approvals service's list ended before it began"))?;
        let text = |k: &str| head.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        (list.workflow, list.noun) = (text("workflow"), text("noun"));
        list.columns = serde_json::from_value(head.get("columns").cloned().unwrap_or(Value::Null)).unwrap_or_default();
        Ok(ListAnswer::Items(list))
    }

    /// Every request the caller may see, optionally in one state, newest first (all pages).
    pub async fn requests(&self, state: Option<RequestState>) -> Result<Vec<Value>, ClientError> {
        let mut out = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let mut q = vec![("limit".to_string(), "1000".to_string())];
            if let Some(s) = state {
                q.push(("state".into(), s.as_str().into()));
            }
            if let Some(b) = &before {
                q.push(("before".into(), b.clone()));
            }
            let query = q
                .iter()
                .map(|(k, v)| format!("{k}={}", seg(v)))
                .collect::<Vec<_>>()
                .join("&");
            let (_, v) = self
                .send(reqwest::Method::GET, &format!("/api/v1/requests?{query}"), None)
                .await?;
            out.extend(v["items"].as_array().cloned().unwrap_or_default());
            match v["next"].as_str() {
                Some(n) => before = Some(n.to_string()),
                None => return Ok(out),
            }
        }
    }

    /// One request with its decisions, outcome and audit entries.
    pub async fn request(&self, id: &str) -> Result<Value, ClientError> {
        Ok(self
            .send(reqwest::Method::GET, &format!("/api/v1/requests/{}", seg(id)), None)
            .await?
            .1)
    }

    /// Approves; answers the request with its new state (executed once by the service when approved).
    /// `reviewed`: the `content_hash` of the request as it was shown; the service refuses (409) when the request
    /// differs.
    pub async fn approve(&self, id: &str, reason: Option<&str>, reviewed: Option<&str>) -> Result<Value, ClientError> {
        self.decision(id, "approve", json!({"reason": reason, "reviewed": reviewed}))
            .await
    }

    /// Denies; `reviewed` as for [`ServerClient::approve`].
    pub async fn deny(&self, id: &str, reason: Option<&str>, reviewed: Option<&str>) -> Result<Value, ClientError> {
        self.decision(id, "deny", json!({"reason": reason, "reviewed": reviewed}))
            .await
    }

    /// Cancels (the requester or an admin).
    pub async fn cancel(&self, id: &str, reason: Option<&str>) -> Result<Value, ClientError> {
        self.decision(id, "cancel", json!({"reason": reason})).await
    }

    async fn decision(&self, id: &str, what: &str, body: Value) -> Result<Value, ClientError> {
        Ok(self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/requests/{}/{what}", seg(id)),
                Some(body),
            )
            .await?
            .1)
    }

    /// The time-bound grants the caller may see, optionally in one status (`active`, `overdue`, `expired`).
    pub async fn grants(&self, status: Option<&str>) -> Result<Vec<rancher_approval::Grant>, ClientError> {
        let path = match status {
            Some(s) => format!("/api/v1/grants?status={}", seg(s)),
            None => "/api/v1/grants".to_string(),
        };
        let (status, v) = self.send(reqwest::Method::GET, &path, None).await?;
        serde_json::from_value(v["items"].clone()).map_err(|e| {
            ClientError::answered(
                status,
                format!("the approvals service's grant list cannot be read: {e}"),
            )
        })
    }

    /// Asks for more time on a grant (`by`: `30m`, `8h`, `7d`): a new request under the grant's policy.
    /// Answers the grant's workflow with the answer to the new request.
    pub async fn extend_grant(
        &self,
        id: &str,
        by: &str,
        reason: Option<&str>,
    ) -> Result<(String, RunAnswer), ClientError> {
        let (status, mut v) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/grants/{}/extend", seg(id)),
                Some(json!({"by": by, "reason": reason})),
            )
            .await?;
        let workflow = v
            .get("workflow")
            .and_then(Value::as_str)
            .unwrap_or("the grant's workflow")
            .to_string();
        if let Some(o) = v.as_object_mut() {
            o.remove("workflow");
        }
        Ok((workflow, RunAnswer::of(status, v)))
    }

    /// Ends a grant now; the service revokes it and answers how that went.
    pub async fn revoke_grant(&self, id: &str) -> Result<Value, ClientError> {
        Ok(self
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/grants/{}/revoke", seg(id)),
                None,
            )
            .await?
            .1)
    }

    /// The audit log with its verification (admins).
    pub async fn audit(&self) -> Result<Value, ClientError> {
        Ok(self.send(reqwest::Method::GET, "/api/v1/audit", None).await?.1)
    }
}

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_are_https_or_loopback_and_carry_no_credentials() {
        assert!(check_server_url("https://approvals.example.com/").is_ok());
        assert!(check_server_url("http://127.0.0.1:8443").is_ok());
        let e = check_server_url("http://approvals.example.com").unwrap_err().message;
        assert!(e.contains("https://"), "{e}");
        // A URL is saved in profiles and shown in messages: a password in it would end up there too.
        for url in [
            "https://alice:s3cret@approvals.example.com",
            "https://alice@approvals.example.com",
        ] {
            let e = check_server_url(url).unwrap_err().message;
            assert!(e.contains("user name or password") && !e.contains("s3cret"), "{e}");
        }
    }
}
