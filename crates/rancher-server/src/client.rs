//! [`ServerClient`]: the approvals service's API from Rust, speaking with one person's Rancher token (what
//! `rancherctl --server URL` uses). Plain HTTP only to a loopback address; the token is sent only in the
//! `Authorization` header (marked sensitive) and never shown by `Debug` or in errors.

use rancher_approval::{Installation, Policy};
use rancher_auth::BearerToken;
use rancher_workflows::Inputs;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::wire::{
    AuditPage, Catalog, CatalogEntry, DecisionRequest, ExtendRequest, Extended, GrantList, GrantView, ListLine, Me,
    PolicyRequest, RequestPage, RequestQuery, RequestView, RunAnswer, RunRequest,
};

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
    pub item: crate::wire::RancherObject,
    /// Its row in the workflow's table.
    pub row: Option<Vec<String>>,
}

impl RemoteList {
    async fn line(&mut self) -> Result<Option<ListLine>, ClientError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line).map(Some).map_err(|e| {
                    ClientError::local(format!(
                        "the approvals service sent a line that is not a list line ({e}); check that it runs the same rancherctl version"
                    ))
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
        let Some(line) = self.line().await? else {
            self.ended = true;
            return Err(ClientError::local(format!(
                "the approvals service's answer was cut off after {} {}",
                self.received, self.noun
            )));
        };
        if let ListLine::Item { item, row } = line {
            self.received += 1;
            return Ok(Some(RemoteItem { item, row }));
        }
        self.ended = true;
        match line {
            ListLine::Error { error } => Err(ClientError::answered(200, error)),
            ListLine::End { end } if end.count as usize == self.received => Ok(None),
            ListLine::End { end } => Err(ClientError::local(format!(
                "the approvals service listed {} {} but {} arrived",
                end.count, self.noun, self.received
            ))),
            _ => Err(ClientError::local(format!(
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

    async fn send<T: DeserializeOwned, B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(u16, T), ClientError> {
        let mut r = self.builder(method, path)?;
        if let Some(b) = body {
            r = r.json(b);
        }
        Self::answer(self.dispatch(r).await?).await
    }

    /// A whole JSON answer of type `T`: its status and document, or the service's error. At most
    /// [`MAX_ANSWER_BYTES`] are read.
    async fn answer<T: DeserializeOwned>(mut resp: reqwest::Response) -> Result<(u16, T), ClientError> {
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
        if status >= 400 {
            let Ok(e) = serde_json::from_slice::<crate::wire::ErrorAnswer>(&body) else {
                return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                    Ok(_) => not_ours("JSON without the service's `error` field"),
                    Err(_) => not_ours("something that is not JSON"),
                });
            };
            return Err(ClientError {
                status: Some(status),
                message: e.error,
                fix: e.fix,
            });
        }
        match serde_json::from_slice::<T>(&body) {
            Ok(v) => Ok((status, v)),
            Err(e) => Err(match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                Err(_) => not_ours("something that is not JSON"),
                // JSON of another shape: another version of the service, or not the service at all.
                Ok(_) => ClientError {
                    status: Some(status),
                    message: format!("the approvals service's answer is not what this rancherctl expects: {e}"),
                    fix: Some(
                        "check that the service runs the same rancherctl version, and that the URL is the service's"
                            .into(),
                    ),
                },
            }),
        }
    }

    /// The service's liveness check (`/healthz`, sent without the token): `Ok` when it answers as the service.
    pub async fn healthz(&self) -> Result<(), ClientError> {
        let url = format!("{}/healthz", self.base.as_str().trim_end_matches('/'));
        Self::answer::<serde::de::IgnoredAny>(self.dispatch(self.http.get(url)).await?).await?;
        Ok(())
    }

    /// Who the token belongs to.
    pub async fn me(&self) -> Result<Me, ClientError> {
        Ok(self.send(reqwest::Method::GET, "/api/v1/me", None::<&()>).await?.1)
    }

    /// The catalog with installations.
    pub async fn workflows(&self) -> Result<Vec<CatalogEntry>, ClientError> {
        let (_, c): (_, Catalog) = self
            .send(reqwest::Method::GET, "/api/v1/workflows", None::<&()>)
            .await?;
        Ok(c.items)
    }

    /// Installs a workflow (admins).
    pub async fn install(&self, workflow: &str, policy: Option<&Policy>) -> Result<Installation, ClientError> {
        let body = PolicyRequest {
            policy: policy.cloned(),
        };
        let path = format!("/api/v1/workflows/{}/install", seg(workflow));
        let (_, i): (_, crate::wire::InstallationView) = self.send(reqwest::Method::POST, &path, Some(&body)).await?;
        Ok(i.0)
    }

    /// Changes a workflow's policy (its installer or an admin).
    pub async fn set_policy(&self, workflow: &str, policy: &Policy) -> Result<Installation, ClientError> {
        let body = PolicyRequest {
            policy: Some(policy.clone()),
        };
        let path = format!("/api/v1/workflows/{}/policy", seg(workflow));
        let (_, i): (_, crate::wire::InstallationView) = self.send(reqwest::Method::PUT, &path, Some(&body)).await?;
        Ok(i.0)
    }

    /// Runs a workflow, or files a request when it needs approval.
    pub async fn run(
        &self,
        workflow: &str,
        inputs: Inputs,
        reason: Option<&str>,
        dry_run: bool,
    ) -> Result<RunAnswer, ClientError> {
        let body = RunRequest {
            workflow: workflow.into(),
            inputs: Some(inputs),
            reason: reason.map(str::to_string),
            dry_run,
            rows: false,
            break_glass: false,
        };
        Ok(self.send(reqwest::Method::POST, "/api/v1/runs", Some(&body)).await?.1)
    }

    /// Break-glass: runs a time-bound grant at once where a policy rule of the service permits it for the caller
    /// (403 with the rules' message otherwise; nothing is created).
    pub async fn run_break_glass(
        &self,
        workflow: &str,
        inputs: Inputs,
        reason: Option<&str>,
    ) -> Result<RunAnswer, ClientError> {
        let body = RunRequest {
            workflow: workflow.into(),
            inputs: Some(inputs),
            reason: reason.map(str::to_string),
            dry_run: false,
            rows: false,
            break_glass: true,
        };
        Ok(self.send(reqwest::Method::POST, "/api/v1/runs", Some(&body)).await?.1)
    }

    /// Runs a workflow, asking for a list workflow's items as they arrive (`rows`: with their table rows); any
    /// other answer (not a list, waiting for approval) comes back whole.
    pub async fn run_list(
        &self,
        workflow: &str,
        inputs: Inputs,
        reason: Option<&str>,
        rows: bool,
    ) -> Result<ListAnswer, ClientError> {
        let body = RunRequest {
            workflow: workflow.into(),
            inputs: Some(inputs),
            reason: reason.map(str::to_string),
            dry_run: false,
            rows,
            break_glass: false,
        };
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
            return Ok(ListAnswer::Answer(Self::answer(resp).await?.1));
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
        match list.line().await? {
            Some(ListLine::Head {
                workflow,
                noun,
                columns,
                ..
            }) => {
                (list.workflow, list.noun, list.columns) = (workflow, noun, columns);
                Ok(ListAnswer::Items(list))
            }
            Some(ListLine::Error { error }) => Err(ClientError::answered(200, error)),
            Some(_) => Err(ClientError::local(
                "the approvals service's list began without its head line",
            )),
            None => Err(ClientError::local("the approvals service's list ended before it began")),
        }
    }

    /// Every request the caller may see that `filter` keeps, newest first (all pages: `limit` and `before` are
    /// the client's).
    pub async fn requests(&self, filter: RequestQuery) -> Result<Vec<RequestView>, ClientError> {
        let mut out = Vec::new();
        let mut q = RequestQuery {
            limit: Some(1000),
            before: None,
            ..filter
        };
        loop {
            let path = format!("/api/v1/requests?{}", q.query_string());
            let (_, page): (_, RequestPage) = self.send(reqwest::Method::GET, &path, None::<&()>).await?;
            out.extend(page.items);
            match page.next {
                Some(n) => q.before = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// One request with its decisions, outcome and audit entries.
    pub async fn request(&self, id: &str) -> Result<RequestView, ClientError> {
        Ok(self
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/requests/{}", seg(id)),
                None::<&()>,
            )
            .await?
            .1)
    }

    /// Approves; answers the request with its new state (executed once by the service when approved, with the
    /// whole output of that run in `result`). `reviewed`: the `content_hash` of the request as it was shown; the
    /// service refuses (409) when the request differs.
    pub async fn approve(
        &self,
        id: &str,
        reason: Option<&str>,
        reviewed: Option<&str>,
    ) -> Result<RequestView, ClientError> {
        self.decision(id, "approve", reason, reviewed).await
    }

    /// Denies; `reviewed` as for [`ServerClient::approve`].
    pub async fn deny(
        &self,
        id: &str,
        reason: Option<&str>,
        reviewed: Option<&str>,
    ) -> Result<RequestView, ClientError> {
        self.decision(id, "deny", reason, reviewed).await
    }

    /// Cancels (the requester or an admin).
    pub async fn cancel(&self, id: &str, reason: Option<&str>) -> Result<RequestView, ClientError> {
        self.decision(id, "cancel", reason, None).await
    }

    async fn decision(
        &self,
        id: &str,
        what: &str,
        reason: Option<&str>,
        reviewed: Option<&str>,
    ) -> Result<RequestView, ClientError> {
        let body = DecisionRequest {
            reason: reason.map(str::to_string),
            reviewed: reviewed.map(str::to_string),
        };
        let path = format!("/api/v1/requests/{}/{what}", seg(id));
        Ok(self.send(reqwest::Method::POST, &path, Some(&body)).await?.1)
    }

    /// The time-bound grants the caller may see, optionally in one status (`active`, `overdue`, `expired`).
    pub async fn grants(&self, status: Option<&str>) -> Result<Vec<GrantView>, ClientError> {
        let path = match status {
            Some(s) => format!("/api/v1/grants?status={}", seg(s)),
            None => "/api/v1/grants".to_string(),
        };
        let (_, list): (_, GrantList) = self.send(reqwest::Method::GET, &path, None::<&()>).await?;
        Ok(list.items)
    }

    /// The approval rules installed in the service (`None` when none were ever applied).
    pub async fn installed_policies(&self) -> Result<Option<crate::policies_api::InstalledPoliciesView>, ClientError> {
        let (_, a): (_, crate::policies_api::InstalledPoliciesAnswer) =
            self.send(reqwest::Method::GET, "/api/v1/policies", None::<&()>).await?;
        Ok(a.installed)
    }

    /// Asks for more time on a grant (`by`: `30m`, `8h`, `7d`): a new request under the grant's policy.
    /// Answers the grant's workflow with the answer to the new request.
    pub async fn extend_grant(&self, id: &str, by: &str, reason: Option<&str>) -> Result<Extended, ClientError> {
        let body = ExtendRequest {
            by: by.into(),
            reason: reason.map(str::to_string),
        };
        let path = format!("/api/v1/grants/{}/extend", seg(id));
        Ok(self.send(reqwest::Method::POST, &path, Some(&body)).await?.1)
    }

    /// Ends a grant now; the service revokes it and answers how that went.
    pub async fn revoke_grant(&self, id: &str) -> Result<rancher_workflows::grants::RevokeOutcome, ClientError> {
        let path = format!("/api/v1/grants/{}/revoke", seg(id));
        let (_, r): (_, crate::wire::Revoked) = self.send(reqwest::Method::POST, &path, None::<&()>).await?;
        Ok(r.0)
    }

    /// The audit log with its verification (admins).
    pub async fn audit(&self) -> Result<AuditPage, ClientError> {
        Ok(self.send(reqwest::Method::GET, "/api/v1/audit", None::<&()>).await?.1)
    }

    /// The audit export (admins) after sequence `after`, in `format`, handed to `sink` chunk by chunk as it
    /// arrives (never held whole). Answers the bytes received.
    pub async fn audit_export(
        &self,
        format: crate::audit_export::ExportFormat,
        after: u64,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, ClientError> {
        let path = format!("/api/v1/audit/export?format={}&after={after}", format.as_str());
        let mut resp = self.dispatch(self.builder(reqwest::Method::GET, &path)?).await?;
        let status = resp.status().as_u16();
        if status >= 400 {
            return Self::answer::<serde::de::IgnoredAny>(resp).await.map(|_| 0);
        }
        let mut n = 0u64;
        loop {
            match resp.chunk().await {
                Ok(Some(bytes)) => {
                    n += bytes.len() as u64;
                    sink(&bytes).map_err(|e| ClientError::local(format!("could not write the export: {e}")))?;
                }
                Ok(None) => return Ok(n),
                Err(e) => {
                    return Err(ClientError::answered(
                        status,
                        format!(
                            "the export was cut off after {n} bytes ({}); run again with --since the last seq received",
                            crate::error::chain(&e.without_url())
                        ),
                    ))
                }
            }
        }
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
