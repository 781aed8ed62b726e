//! The client: builder, sending typed requests with retries, pagination as streams, and the generic call.

use std::collections::HashSet;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{self, Stream, TryStreamExt};
use http::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tracing::Instrument;
use url::Url;

use crate::error::{parse_server_error, ConnectFailure, Error, Result};
use crate::request::{JsonPage, ListItem, Page, PageLink, Paginated, Request};
use crate::spec::{find_operation, suggest_operation, Method, OperationSpec, ParamKind, RancherVersion, ResponseKind};
use crate::transport::{HttpRequest, HttpResponse, ReqwestTransport, Transport, TransportError};

mod watch;
pub use watch::{Watch, WatchEvent, WatchEventType, WatchOptions};

/// A stream of list items that follows every page.
pub type ItemStream<T> = std::pin::Pin<Box<dyn Stream<Item = Result<T>> + Send>>;

/// Told about every round trip a [`Client`] finishes (retries included), e.g. to keep latency metrics per
/// operation. Called on the task that made the call; keep it cheap.
pub trait CallObserver: Send + Sync + 'static {
    /// `call` has just finished.
    fn observe(&self, call: &CallRecord);
}

/// One finished round trip, as a [`CallObserver`] sees it. Holds no URL, body or header: nothing secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallRecord {
    /// The operation id (`rancher_api::ids::*`).
    pub operation: &'static str,
    /// The final answer's status; `None` when no answer came (connection failure, timeout).
    pub status: Option<u16>,
    /// From the first attempt to the final answer, retries and their waits included.
    pub elapsed: Duration,
    /// How many times the request was sent (1 without retries).
    pub attempts: u32,
}

/// When and how reads are retried. Writes (POST, PUT, PATCH) are never sent twice; a DELETE is repeated after a
/// lost answer and a 404 then counts as done.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff step (doubled each retry, with full jitter).
    pub base_delay: Duration,
    /// Largest backoff step.
    pub max_delay: Duration,
    /// Largest `Retry-After` honoured; longer requests are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Default::default()
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        cap.mul_f64(rand::random::<f64>())
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    target: String,
    token: Option<SecretString>,
    ca_pems: Vec<Vec<u8>>,
    system_roots: bool,
    connect_timeout: Duration,
    timeout: Duration,
    retry: RetryPolicy,
    concurrency: usize,
    user_agent: String,
    page_size: i64,
    max_body: usize,
    server_version: Option<RancherVersion>,
    transport: Option<Arc<dyn Transport>>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("target", &self.target)
            .field("token", &self.token.as_ref().map(|_| crate::REDACTED))
            .field("ca_certificates", &self.ca_pems.len())
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("concurrency", &self.concurrency)
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Tells `observer` about every round trip the client makes (see [`CallObserver`]).
    pub fn observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The bearer token (`token-xxxxx:<secret>`), kept secret.
    pub fn token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Adds CA certificates (a PEM bundle; may hold several) to trust besides the system's.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pems.push(pem.into());
        self
    }

    /// Trust only the given CA bundle, not the system's roots.
    pub fn without_system_roots(mut self) -> Self {
        self.system_roots = false;
        self
    }

    /// Time allowed to connect (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Time allowed for a whole exchange (default 60 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Retry policy for reads.
    pub fn retry_policy(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }

    /// Most requests in flight at once (default 16).
    pub fn concurrency_limit(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// User agent (never Mozilla-like: Rancher would treat the client as a browser).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Items per page when a list request does not say (default 500).
    pub fn page_size(mut self, n: i64) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Largest answer read, in bytes (default 64 MiB).
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_body = n;
        self
    }

    /// The server's version, when known: operations it does not serve are refused before sending.
    pub fn server_version(mut self, v: RancherVersion) -> Self {
        self.server_version = Some(v);
        self
    }

    /// Uses another transport (tests, proxies).
    pub fn transport(mut self, t: Arc<dyn Transport>) -> Self {
        self.transport = Some(t);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let base = base_url(&self.target)?;
        if self.user_agent.to_ascii_lowercase().contains("mozilla") {
            return Err(Error::Config(
                "the user agent must not look like a browser (Rancher would demand a CSRF token)".into(),
            ));
        }
        let transport: Arc<dyn Transport> = match self.transport {
            Some(t) => t,
            None => {
                let mut extra = Vec::new();
                for pem in &self.ca_pems {
                    extra.extend(crate::tls::parse_ca_bundle(pem)?);
                }
                let tls = crate::tls::client_config(&extra, self.system_roots)?;
                let client = reqwest::Client::builder()
                    .use_preconfigured_tls(tls)
                    .https_only(true)
                    .connect_timeout(self.connect_timeout)
                    .timeout(self.timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_max_idle_per_host(self.concurrency)
                    .no_proxy()
                    .build()
                    .map_err(|e| Error::Config(format!("HTTP client setup failed: {e}")))?;
                Arc::new(ReqwestTransport::new(client, self.max_body, self.timeout))
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                base,
                token: self.token,
                transport,
                retry: self.retry,
                limit: Arc::new(Semaphore::new(self.concurrency)),
                user_agent: HeaderValue::from_str(&self.user_agent)
                    .map_err(|_| Error::Config("the user agent has invalid characters".into()))?,
                page_size: self.page_size,
                max_body: self.max_body,
                timeout: self.timeout,
                observer: self.observer,
            }),
            server_version: self.server_version,
        })
    }
}

fn base_url(target: &str) -> Result<Url> {
    let t = target.trim();
    if t.starts_with("http://") {
        return Err(Error::Config(format!(
            "`{t}` is plain HTTP; Rancher is only reached over HTTPS"
        )));
    }
    let with_scheme = if t.starts_with("https://") {
        t.to_string()
    } else {
        format!("https://{t}")
    };
    let url =
        Url::parse(&with_scheme).map_err(|e| Error::Config(format!("`{t}` is not a host name or host:port ({e})")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::Config(format!("`{t}` has no host name")));
    }
    Ok(url)
}

struct Inner {
    base: Url,
    token: Option<SecretString>,
    transport: Arc<dyn Transport>,
    retry: RetryPolicy,
    limit: Arc<Semaphore>,
    user_agent: HeaderValue,
    page_size: i64,
    max_body: usize,
    timeout: Duration,
    observer: Option<Arc<dyn CallObserver>>,
}

/// A connection to one Rancher server. Cheap to clone; clones share the connection pool and the concurrency limit.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    server_version: Option<RancherVersion>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("token", &self.inner.token.as_ref().map(|_| crate::REDACTED))
            .field("server_version", &self.server_version)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

const PATH_VALUE: &AsciiSet = &URI_VALUE.remove(b':');
const URI_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

impl Client {
    /// Starts a builder for `domain` (`rancher.example.com`, `host:port`, or an `https://` URL).
    pub fn builder(domain: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            target: domain.into(),
            token: None,
            ca_pems: Vec::new(),
            system_roots: true,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            concurrency: 16,
            user_agent: format!("rancher-access/{}", env!("CARGO_PKG_VERSION")),
            page_size: 500,
            max_body: 64 << 20,
            server_version: None,
            transport: None,
            observer: None,
        }
    }

    /// The base URL (`https://<domain>`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The server version this client was told about, if any.
    pub fn server_version(&self) -> Option<RancherVersion> {
        self.server_version
    }

    /// The name of the token this client sends (`token-xxxxx`, the part before `:`; `ext/` dropped), which is
    /// not secret: it lets a workflow recognise the caller's own token in a list. `None` without a token or for a
    /// bearer value with no name part.
    pub fn token_name(&self) -> Option<String> {
        let t = self.inner.token.as_ref()?.expose_secret();
        let (name, _) = t.split_once(':')?;
        let name = name.strip_prefix("ext/").unwrap_or(name);
        (!name.is_empty()).then(|| name.to_string())
    }

    /// A client for the same server that knows its version (shares the pool).
    pub fn with_server_version(&self, v: RancherVersion) -> Client {
        Client {
            inner: self.inner.clone(),
            server_version: Some(v),
        }
    }

    /// Sends a typed request and decodes its answer.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        self.send_dated(request).await.map(|(answer, _)| answer)
    }

    /// [`Client::send`], also answering the server's clock as the answer's `Date` header gave it (`None` when the
    /// server sent none, or one that does not parse): for decisions that must follow the server's time, not this
    /// host's.
    pub async fn send_dated<R: Request>(&self, request: &R) -> Result<(R::Response, Option<std::time::SystemTime>)> {
        let spec = request.spec();
        self.check_available(spec)?;
        let url = self.url_for(spec, &request.path_values(), &request.query_pairs())?;
        let body = match request.body_bytes() {
            None => None,
            Some(Ok(b)) => Some(Bytes::from(b)),
            Some(Err(e)) => {
                return Err(Error::InvalidRequest {
                    operation: spec.id.into(),
                    message: format!("the body cannot be encoded: {e}"),
                })
            }
        };
        let resp = self.execute(spec, spec.method, url, body).await?;
        let date = resp
            .headers
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        Ok((decode(spec, &resp)?, date))
    }

    /// Streams every item of a list, page by page. While one page is decoded and yielded the next is already
    /// being fetched (on a tokio runtime), so memory stays bounded by about two pages.
    ///
    /// Kubernetes lists follow `continue` while it is non-empty, even across empty pages; an expired token (410)
    /// restarts the list and skips what was already yielded (a few times in a row at most). Norman lists follow
    /// `pagination.next` on the same host only. A token or link seen twice stops the stream with an error instead
    /// of looping.
    pub fn stream<R>(&self, request: R) -> ItemStream<R::Item>
    where
        R: Paginated,
        R::Response: Page<Item = R::Item>,
        R::Item: ListItem,
    {
        let mut request = request;
        if request.page_size().is_none() {
            request.set_page_size(self.inner.page_size);
        }
        let state = PagerState {
            client: self.clone(),
            request,
            next: Some(PageLink::End),
            first: true,
            seen: HashSet::new(),
            restarts: 0,
            stalled: 0,
            last_key: None,
            skip_until: None,
            prefetch: None,
        };
        let pages = stream::try_unfold(state, |mut st| async move {
            match st.next_page().await? {
                Some(items) => Ok(Some((items, st))),
                None => Ok(None),
            }
        });
        Box::pin(
            pages
                .map_ok(|items: Vec<R::Item>| stream::iter(items.into_iter().map(Ok)))
                .try_flatten(),
        )
    }

    /// Calls any operation of the endpoint list by id. Parameters are checked against the operation (unknown,
    /// missing or mistyped ones are refused before sending) and so is the body's shape. Lists answer one page.
    pub async fn call(
        &self,
        operation_id: &str,
        params: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let req = GenericRequest::new(operation_id, params, body)?;
        Ok(self.send(&req).await?.0)
    }

    /// Like [`Client::call`], but streams every item of a paginated operation.
    pub fn call_stream(&self, operation_id: &str, params: &[(&str, &str)]) -> Result<ItemStream<serde_json::Value>> {
        let req = GenericRequest::new(operation_id, params, None)?;
        if req.spec.pagination == crate::spec::Pagination::None {
            return Err(Error::InvalidRequest {
                operation: operation_id.into(),
                message: "this operation does not page; use call".into(),
            });
        }
        Ok(self.stream(req))
    }

    fn check_available(&self, spec: &OperationSpec) -> Result<()> {
        if let Some(v) = self.server_version {
            if !spec.available_in(v) {
                let when = match spec.removed {
                    Some(r) if v.at_least(r.major, r.minor) => {
                        format!("was removed in Rancher {}.{}", r.major, r.minor)
                    }
                    _ => format!("needs Rancher {}.{} or newer", spec.since.major, spec.since.minor),
                };
                return Err(Error::InvalidRequest {
                    operation: spec.id.into(),
                    message: format!("this operation {when}; the server runs {v}"),
                });
            }
        }
        Ok(())
    }

    fn url_for(&self, spec: &OperationSpec, path_values: &[&str], query: &[(&'static str, String)]) -> Result<Url> {
        let (path, query) = render_target(spec, path_values, query)?;
        let mut url = self.inner.base.clone();
        url.set_path(&path);
        url.set_query(query.as_deref());
        exact_path(spec, &path, &url)?;
        Ok(url)
    }

    fn headers(&self, spec: &OperationSpec, has_body: bool) -> Result<HeaderMap> {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        h.insert(USER_AGENT, self.inner.user_agent.clone());
        if has_body {
            let ct = spec.body.map(|b| b.content_type).unwrap_or("application/json");
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        if spec.auth == crate::spec::Auth::Bearer {
            if let Some(token) = &self.inner.token {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).map_err(|_| Error::InvalidRequest {
                    operation: spec.id.into(),
                    // Never echo the token: say what is wrong with it only.
                    message: "the token holds characters that cannot be sent in a header (a line break or control character?)".into(),
                })?;
                v.set_sensitive(true);
                h.insert(AUTHORIZATION, v);
            }
        }
        Ok(h)
    }

    /// One operation's round trip, retries included, in a `rancher_call` span (operation id, method, final
    /// status), told to the [`CallObserver`] when it ends.
    async fn execute(
        &self,
        spec: &OperationSpec,
        method: Method,
        url: Url,
        body: Option<Bytes>,
    ) -> Result<HttpResponse> {
        let span = tracing::info_span!(
            "rancher_call",
            operation = spec.id,
            method = method.as_str(),
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let started = Instant::now();
        let mut attempts = 0;
        let result = self
            .attempts(spec, method, url, body, &mut attempts)
            .instrument(span.clone())
            .await;
        let status = result.as_ref().ok().map(|r| r.status);
        if let Some(status) = status {
            span.record("status", status);
        }
        span.record("attempts", attempts);
        if let Some(observer) = &self.inner.observer {
            observer.observe(&CallRecord {
                operation: spec.id,
                status,
                elapsed: started.elapsed(),
                attempts,
            });
        }
        result
    }

    async fn attempts(
        &self,
        spec: &OperationSpec,
        method: Method,
        url: Url,
        body: Option<Bytes>,
        sent: &mut u32,
    ) -> Result<HttpResponse> {
        let headers = self.headers(spec, body.is_some())?;
        let http_method = match method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Patch => http::Method::PATCH,
            Method::Delete => http::Method::DELETE,
        };
        let retry_reads = spec.is_idempotent_read();
        let is_delete = method == Method::Delete;
        let policy = &self.inner.retry;
        let mut attempt: u32 = 0;
        loop {
            let request = HttpRequest {
                method: http_method.clone(),
                url: url.clone(),
                headers: headers.clone(),
                body: body.clone(),
            };
            let result = {
                let _permit = self
                    .inner
                    .limit
                    .acquire()
                    .await
                    .map_err(|_| Error::Config("client closed".into()))?;
                *sent += 1;
                self.inner.transport.send(request).await
            };
            let can_retry = attempt < policy.max_retries;
            match result {
                Ok(resp) => {
                    if is_delete && attempt > 0 && resp.status == 404 {
                        tracing::debug!(
                            operation = spec.id,
                            "repeated DELETE answered 404: the first attempt had removed it"
                        );
                        return Ok(HttpResponse {
                            status: 200,
                            headers: HeaderMap::new(),
                            body: Bytes::from_static(ALREADY_DELETED),
                        });
                    }
                    let retryable = matches!(resp.status, 429 | 500 | 502 | 503 | 504) && (retry_reads || is_delete);
                    if retryable && can_retry {
                        let wait = retry_after(&resp.headers)
                            .map(|d| d.min(policy.max_retry_after))
                            .unwrap_or_else(|| policy.backoff(attempt));
                        tracing::debug!(operation = spec.id, status = resp.status, ?wait, attempt, "retrying");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    let never_sent = matches!(
                        &e,
                        TransportError::Connect {
                            failure: ConnectFailure::Closed | ConnectFailure::Other,
                            ..
                        }
                    );
                    let transient = matches!(&e, TransportError::Io { .. } | TransportError::Timeout(_)) || never_sent;
                    if transient && can_retry && (retry_reads || is_delete) {
                        let wait = policy.backoff(attempt);
                        tracing::debug!(operation = spec.id, error = %e, ?wait, attempt, "retrying after a transport error");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(self.transport_error(spec, e));
                }
            }
        }
    }

    fn transport_error(&self, spec: &OperationSpec, e: TransportError) -> Error {
        let host = match (self.inner.base.host_str(), self.inner.base.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => format!("{h}:443"),
            _ => String::new(),
        };
        match e {
            TransportError::Connect { failure, source } => Error::Connect {
                operation: spec.id.into(),
                host,
                failure,
                source,
            },
            TransportError::Timeout(after) => Error::Timeout {
                operation: spec.id.into(),
                after,
            },
            TransportError::TooLarge(limit) => Error::TooLarge {
                operation: spec.id.into(),
                limit,
            },
            TransportError::Io { message, source } => Error::Transport {
                operation: spec.id.into(),
                message,
                source,
            },
        }
    }

    /// The URL of a norman `next` link, refused unless it has the same scheme, host and port as the base (the
    /// token must not be sent elsewhere).
    fn link_url(&self, spec: &OperationSpec, link: &str) -> Result<Url> {
        let url = Url::parse(link)
            .or_else(|_| self.inner.base.join(link))
            .map_err(|e| Error::Pagination {
                operation: spec.id.into(),
                problem: format!(
                    "the next-page link `{}` is not a URL ({e})",
                    crate::error::one_line(link, 200)
                ),
            })?;
        let base = &self.inner.base;
        if url.scheme() != "https"
            || url.host_str() != base.host_str()
            || url.port_or_known_default() != base.port_or_known_default()
        {
            return Err(Error::Pagination {
                operation: spec.id.into(),
                problem: format!(
                    "the server's next-page link points to {}://{}, not to {}; refusing to send the token elsewhere",
                    url.scheme(),
                    url.host_str().unwrap_or("?"),
                    base.host_str().unwrap_or("?")
                ),
            });
        }
        Ok(url)
    }

    /// The largest answer this client reads.
    pub fn max_response_bytes(&self) -> usize {
        self.inner.max_body
    }

    /// The exchange timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }
}

/// Refuses a path value that is empty or blank, or that a URL parser would treat as a dot segment (`.`, `..`):
/// `/users/.` is sent as `/users/`, the collection, so a delete of "one object" would delete them all.
fn check_path_value(spec: &OperationSpec, name: &str, value: &str) -> Result<()> {
    let invalid = |message: String| {
        Err(Error::InvalidRequest {
            operation: spec.id.into(),
            message,
        })
    };
    if value.trim().is_empty() {
        return invalid(format!("path parameter `{name}` is empty"));
    }
    if value == "." || value == ".." {
        return invalid(format!(
            "path parameter `{name}` is `{value}`: a URL drops that segment, so the request would reach the collection \
             or its parent instead of one object; name the object"
        ));
    }
    Ok(())
}

/// Checks that the URL about to be sent has exactly the path the operation table promises (no segment dropped or
/// merged by URL normalisation).
fn exact_path(spec: &OperationSpec, rendered: &str, url: &Url) -> Result<()> {
    if url.path() == rendered {
        return Ok(());
    }
    Err(Error::InvalidRequest {
        operation: spec.id.into(),
        message: format!(
            "the URL would be sent as `{}` instead of `{rendered}`; refusing to send it",
            crate::error::one_line(url.path(), 200)
        ),
    })
}

/// The path (parameters filled in and encoded) and the query string (the template's fixed `?action=` first) of a
/// request: what is sent after the base URL.
fn render_target(
    spec: &OperationSpec,
    path_values: &[&str],
    query: &[(&'static str, String)],
) -> Result<(String, Option<String>)> {
    let (template, fixed_query) = match spec.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (spec.path, None),
    };
    let mut path = String::with_capacity(template.len() + 32);
    let mut rest = template;
    let mut values = path_values.iter();
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map(|e| start + e).unwrap_or(rest.len() - 1);
        path.push_str(&rest[..start]);
        let name = &rest[start + 1..end];
        let value = values.next().copied().unwrap_or("");
        check_path_value(spec, name, value)?;
        // Principal ids are URIs (local://u-x): encode them whole; namespaced ids keep their ':'.
        if value.contains('/') {
            path.extend(utf8_percent_encode(value, URI_VALUE));
        } else {
            path.extend(utf8_percent_encode(value, PATH_VALUE));
        }
        rest = &rest[end + 1..];
    }
    path.push_str(rest);
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    if let Some(fq) = fixed_query {
        for (k, v) in url::form_urlencoded::parse(fq.as_bytes()) {
            pairs.append_pair(&k, &v);
        }
    }
    for (k, v) in query {
        pairs.append_pair(k, v);
    }
    let q = pairs.finish();
    Ok((path, (!q.is_empty()).then_some(q)))
}

const ALREADY_DELETED: &[u8] = br#"{"kind":"Status","apiVersion":"v1","status":"Success","code":200,"message":"already deleted: an earlier attempt removed it before its answer was lost"}"#;

fn retry_after(h: &HeaderMap) -> Option<Duration> {
    let v = h.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

fn content_type(h: &HeaderMap) -> Option<String> {
    h.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn decode<T: DeserializeOwned>(spec: &OperationSpec, resp: &HttpResponse) -> Result<T> {
    let ct = content_type(&resp.headers);
    if !(200..300).contains(&resp.status) {
        return Err(Error::Api {
            operation: spec.id.into(),
            status: resp.status,
            server: parse_server_error(spec.surface, ct.as_deref(), &resp.body),
            retry_after: retry_after(&resp.headers),
        });
    }
    let decode_err = |detail: String, source: Option<serde_json::Error>| Error::Decode {
        operation: spec.id.into(),
        status: resp.status,
        content_type: ct.clone(),
        detail,
        source,
    };
    if spec.response == ResponseKind::Text {
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        return serde_json::from_value(serde_json::Value::String(text)).map_err(|e| decode_err(e.to_string(), Some(e)));
    }
    let body: &[u8] = if resp.body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &resp.body
    };
    if ct.as_deref().is_some_and(|c| c.contains("html")) || body.first() == Some(&b'<') {
        return Err(decode_err(
            format!(
                "expected JSON but got an HTML page (a login page or proxy in front of Rancher?): {}",
                crate::error::one_line(&String::from_utf8_lossy(&body[..body.len().min(200)]), 120)
            ),
            None,
        ));
    }
    // A 2xx that carries an error body is still an error (proxies and some handlers answer 200 with one).
    if is_error_body(body) {
        let server = parse_server_error(spec.surface, ct.as_deref(), body);
        return Err(Error::Api {
            operation: spec.id.into(),
            status: resp.status,
            server,
            retry_after: None,
        });
    }
    serde_json::from_slice::<T>(body).map_err(|e| {
        let snippet = crate::error::one_line(&String::from_utf8_lossy(&body[..body.len().min(200)]), 120);
        let what = if e.is_eof() {
            "the answer is truncated JSON"
        } else {
            "the answer does not have the expected shape"
        };
        decode_err(format!("{what} ({e}); it starts with: {snippet}"), Some(e))
    })
}

/// True for a norman/1.x error (`type: "error"`) or a failed Kubernetes `Status`. Only small bodies are looked at:
/// error bodies are small, and list pages (large) are never errors.
fn is_error_body(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "type")]
        type_: Option<serde_json::Value>,
        kind: Option<serde_json::Value>,
        status: Option<serde_json::Value>,
    }
    if body.len() > 64 * 1024 || body.first() != Some(&b'{') {
        return false;
    }
    match serde_json::from_slice::<Probe>(body) {
        Ok(p) => {
            p.type_.as_ref().and_then(|t| t.as_str()) == Some("error")
                || (p.kind.as_ref().and_then(|k| k.as_str()) == Some("Status")
                    && p.status.as_ref().and_then(|s| s.as_str()) == Some("Failure"))
        }
        Err(_) => false,
    }
}

/// Most restarts of one list after expired continue tokens.
const MAX_LIST_RESTARTS: u32 = 32;
/// Most restarts in a row without a continue request succeeding in between.
const MAX_STALLED_RESTARTS: u32 = 3;

struct PagerState<R> {
    client: Client,
    request: R,
    next: Option<PageLink>,
    first: bool,
    seen: HashSet<u64>,
    /// Restarts after an expired continue token so far.
    restarts: u32,
    /// Expired continue tokens since a continue request last succeeded.
    stalled: u32,
    last_key: Option<String>,
    skip_until: Option<String>,
    /// The next page, already requested while this one is decoded (at most one page ahead).
    prefetch: Option<Prefetch>,
}

/// A page requested ahead of time: its link and the exchange running on its own task. Dropping it (the stream was
/// dropped, or the page turned out not to be needed) aborts the exchange.
struct Prefetch {
    link: PageLink,
    task: tokio::task::JoinHandle<Result<HttpResponse>>,
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The next-page link of a list answer, found cheaply so the next page can be requested while this one is
/// decoded. Only the ends of the body are read: a Kubernetes list of custom resources (every Rancher kind) puts
/// `metadata` (with `continue`) last, its keys being sorted; a norman collection puts `pagination` before `data`.
/// Nothing else is scanned, so a body laid out otherwise simply gets no prefetch. The full decode has the last word:
/// a prefetched page whose link differs from the decoded one is dropped unused.
fn probe_link(body: &[u8]) -> Option<PageLink> {
    const WINDOW: usize = 4096;
    let tail = &body[body.len().saturating_sub(WINDOW)..];
    if let Some(token) = member_after(tail, b"\"metadata\"", true).and_then(|m| str_field(&m, "continue")) {
        return Some(PageLink::Continue(token));
    }
    let head = &body[..body.len().min(WINDOW)];
    member_after(head, b"\"pagination\"", false)
        .and_then(|p| str_field(&p, "next"))
        .map(PageLink::Next)
}

/// The JSON object that follows the last (or first) `key:` in `window`, if it parses.
fn member_after(window: &[u8], key: &[u8], last: bool) -> Option<serde_json::Map<String, serde_json::Value>> {
    let at = if last {
        window.windows(key.len()).rposition(|w| w == key)?
    } else {
        window.windows(key.len()).position(|w| w == key)?
    };
    let rest = window[at + key.len()..].trim_ascii_start().strip_prefix(b":")?;
    // One value is read; whatever follows it (the end of the list) is not looked at.
    let value: serde_json::Value =
        serde::Deserialize::deserialize(&mut serde_json::Deserializer::from_slice(rest)).ok()?;
    match value {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

fn str_field(map: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    map.get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn fingerprint(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl<R> PagerState<R>
where
    R: Paginated,
    R::Response: Page<Item = R::Item>,
    R::Item: ListItem,
{
    /// The URL of the page behind `link` (`End`: the request as it stands, i.e. the first page). A continue
    /// token is set on the request.
    fn url_of(&mut self, link: &PageLink) -> Result<(Method, Url)> {
        let spec = self.request.spec();
        match link {
            PageLink::End => {}
            PageLink::Continue(token) => self.request.set_continue(Some(token.clone())),
            PageLink::Next(url) => return Ok((Method::Get, self.client.link_url(spec, url)?)),
        }
        self.client.check_available(spec)?;
        Ok((
            spec.method,
            self.client
                .url_for(spec, &self.request.path_values(), &self.request.query_pairs())?,
        ))
    }

    /// Requests the page behind `link` now and waits for it.
    async fn exchange(&mut self, link: &PageLink) -> Result<HttpResponse> {
        let spec = self.request.spec();
        let (method, url) = self.url_of(link)?;
        self.client.execute(spec, method, url, None).await
    }

    /// Requests the page after the one in `body` on its own task, so the server answers (and the transport
    /// reads) it while this page is decoded. Only on a tokio runtime, for a link not followed before.
    fn start_prefetch(&mut self, body: &[u8]) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let Some(link) = probe_link(body) else { return };
        let (PageLink::Continue(t) | PageLink::Next(t)) = &link else {
            return;
        };
        if self.seen.contains(&fingerprint(t)) {
            return;
        }
        let Ok((method, url)) = self.url_of(&link) else { return };
        let spec = self.request.spec();
        let client = self.client.clone();
        let task = tokio::spawn(async move { client.execute(spec, method, url, None).await }.in_current_span());
        self.prefetch = Some(Prefetch { link, task });
    }

    async fn next_page(&mut self) -> Result<Option<Vec<R::Item>>> {
        let spec = self.request.spec();
        loop {
            let link = match self.next.take() {
                None => return Ok(None),
                Some(l) => l,
            };
            if link == PageLink::End {
                if !self.first {
                    return Ok(None);
                }
                self.first = false;
            }
            let answer = match self.prefetch.take() {
                Some(mut p) if p.link == link => match (&mut p.task).await {
                    Ok(answer) => answer,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => self.exchange(&link).await,
                },
                _ => self.exchange(&link).await,
            };
            let response = answer.and_then(|resp| {
                if (200..300).contains(&resp.status) {
                    self.start_prefetch(&resp.body);
                }
                decode::<R::Response>(spec, &resp)
            });
            let page = match response {
                Ok(p) => p,
                Err(e) if e.status() == Some(410) && matches!(link, PageLink::Continue(_)) => {
                    // Restart again only while continue requests also succeed in between: a server that expires
                    // every token cannot keep the list going round, and no list restarts without end.
                    if self.stalled >= MAX_STALLED_RESTARTS || self.restarts >= MAX_LIST_RESTARTS {
                        return Err(Error::Pagination {
                            operation: spec.id.into(),
                            problem: format!(
                                "the continue token expired {} times (410 Gone), {} in a row; the list changes faster than it can be read: retry, or use a larger page size",
                                self.restarts + 1,
                                self.stalled + 1
                            ),
                        });
                    }
                    tracing::info!(
                        operation = spec.id,
                        restarts = self.restarts,
                        "continue token expired (410); restarting the list after the last item read"
                    );
                    self.restarts += 1;
                    self.stalled += 1;
                    self.skip_until = self.last_key.clone();
                    self.prefetch = None;
                    self.seen.clear();
                    self.request.set_continue(None);
                    self.first = true;
                    self.next = Some(PageLink::End);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let (mut items, next) = page.into_parts();
            if self.prefetch.as_ref().is_some_and(|p| p.link != next) {
                self.prefetch = None;
            }
            match &next {
                PageLink::Continue(t) | PageLink::Next(t) => {
                    if !self.seen.insert(fingerprint(t)) {
                        return Err(Error::Pagination {
                            operation: spec.id.into(),
                            problem: "the server sent the same page link twice; stopping instead of looping forever"
                                .into(),
                        });
                    }
                }
                PageLink::End => {}
            }
            self.next = Some(next);
            if let Some(after) = &self.skip_until {
                let after = after.clone();
                items.retain(|i| i.list_key().is_none_or(|k| k > after));
                if !items.is_empty() {
                    self.skip_until = None;
                }
            }
            if let Some(k) = items.last().and_then(ListItem::list_key) {
                self.last_key = Some(k);
            }
            if matches!(link, PageLink::Continue(_)) {
                self.stalled = 0;
            }
            return Ok(Some(items));
        }
    }
}

/// The request behind [`Client::call`]: an operation id with string parameters and a JSON body.
#[derive(Debug, Clone)]
pub struct GenericRequest {
    spec: &'static OperationSpec,
    path: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<serde_json::Value>,
}

impl GenericRequest {
    /// Checks the id, the parameters and the body against the endpoint list.
    pub fn new(operation_id: &str, params: &[(&str, &str)], body: Option<serde_json::Value>) -> Result<Self> {
        let spec = find_operation(operation_id).ok_or_else(|| Error::UnknownOperation {
            id: operation_id.into(),
            suggestion: suggest_operation(operation_id),
        })?;
        let invalid = |message: String| Error::InvalidRequest {
            operation: spec.id.into(),
            message,
        };
        let mut path = Vec::new();
        for p in spec.path_params {
            let v = params.iter().find(|(k, _)| *k == p.name).map(|(_, v)| *v);
            match v {
                Some(v) if !v.is_empty() => {
                    check_path_value(spec, p.name, v)?;
                    path.push(v.to_string())
                }
                _ => return Err(invalid(format!("missing path parameter `{}` ({})", p.name, p.doc))),
            }
        }
        let mut query = Vec::new();
        for (k, v) in params {
            if spec.path_params.iter().any(|p| p.name == *k) {
                continue;
            }
            let Some(p) = spec.query_param(k) else {
                let known: Vec<&str> = spec
                    .path_params
                    .iter()
                    .chain(spec.query_params)
                    .map(|p| p.name)
                    .collect();
                return Err(invalid(format!(
                    "unknown parameter `{k}`; this operation takes {}",
                    if known.is_empty() {
                        "no parameters".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            match p.kind {
                ParamKind::Int if v.parse::<i64>().is_err() => {
                    return Err(invalid(format!("parameter `{k}` must be a whole number, not `{v}`")))
                }
                ParamKind::Bool if !matches!(*v, "true" | "false") => {
                    return Err(invalid(format!("parameter `{k}` must be true or false, not `{v}`")))
                }
                _ => {}
            }
            query.push((p.name, v.to_string()));
        }
        match (&spec.body, &body) {
            (None, Some(_)) => return Err(invalid("this operation takes no body".into())),
            (Some(b), None) if b.required => {
                return Err(invalid(format!("a body of type {} is required", b.type_name)))
            }
            (Some(b), Some(v)) => {
                if !v.is_object() && b.type_name != "any" {
                    return Err(invalid(format!(
                        "the body must be a JSON object of type {}",
                        b.type_name
                    )));
                }
                crate::check_body_shape(b.type_name, v)
                    .map_err(|e| invalid(format!("the body does not fit type {}: {e}", b.type_name)))?;
                if spec.method == Method::Post {
                    let missing: Vec<&str> = crate::required_fields(b.type_name)
                        .iter()
                        .copied()
                        .filter(|f| v.get(f).is_none_or(|x| x.is_null()))
                        .collect();
                    if !missing.is_empty() {
                        return Err(invalid(format!(
                            "the body lacks required field(s): {}",
                            missing.join(", ")
                        )));
                    }
                }
            }
            _ => {}
        }
        Ok(GenericRequest {
            spec,
            path,
            query,
            body,
        })
    }

    /// The operation.
    pub fn spec(&self) -> &'static OperationSpec {
        self.spec
    }

    /// What would be sent after the base URL: the encoded path and its query string (for dry runs and logs).
    pub fn target(&self) -> Result<String> {
        let values: Vec<&str> = self.path.iter().map(String::as_str).collect();
        let (path, query) = render_target(self.spec, &values, &self.query)?;
        // What a URL makes of it, as the client would send it.
        let mut url = Url::parse("https://rancher.invalid/").expect("a valid base");
        url.set_path(&path);
        exact_path(self.spec, &path, &url)?;
        Ok(match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        })
    }
}

/// What a typed request would send after the base URL: the encoded path and its query string (for dry runs and
/// logs), as [`GenericRequest::target`] renders it.
pub fn request_target<R: Request + ?Sized>(request: &R) -> Result<String> {
    let spec = request.spec();
    let (path, query) = render_target(spec, &request.path_values(), &request.query_pairs())?;
    Ok(match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    })
}

impl Request for GenericRequest {
    type Response = JsonPage;
    fn spec(&self) -> &'static OperationSpec {
        self.spec
    }
    fn path_values(&self) -> Vec<&str> {
        self.path.iter().map(String::as_str).collect()
    }
    fn query_pairs(&self) -> Vec<(&'static str, String)> {
        self.query.clone()
    }
    fn body_bytes(&self) -> Option<std::result::Result<Vec<u8>, serde_json::Error>> {
        self.body.as_ref().map(serde_json::to_vec)
    }
}

impl Paginated for GenericRequest {
    type Item = serde_json::Value;
    fn set_continue(&mut self, token: Option<String>) {
        self.query.retain(|(k, _)| *k != "continue");
        if let Some(t) = token {
            if self.spec.query_param("continue").is_some() {
                self.query.push(("continue", t));
            }
        }
    }
    fn set_page_size(&mut self, size: i64) {
        if self.spec.query_param("limit").is_some() && !self.query.iter().any(|(k, _)| *k == "limit") {
            self.query.push(("limit", size.to_string()));
        }
    }
    fn page_size(&self) -> Option<i64> {
        self.query
            .iter()
            .find(|(k, _)| *k == "limit")
            .and_then(|(_, v)| v.parse().ok())
    }
}

#[cfg(test)]
mod prefetch_tests {
    use std::sync::{Arc, Mutex};

    use futures::TryStreamExt;
    use serde_json::json;

    use super::*;
    use crate::requests::RkUsersList;
    use crate::transport::BoxFuture;

    #[test]
    fn the_link_is_read_from_the_ends_of_the_body_only() {
        // A custom-resource list: keys sorted, metadata last.
        let crd = json!({"apiVersion": "management.cattle.io/v3", "items": [{"metadata": {"name": "a"}}], "kind": "UserList",
                         "metadata": {"continue": "tok", "resourceVersion": "7"}});
        assert_eq!(
            probe_link(&serde_json::to_vec(&crd).unwrap()),
            Some(PageLink::Continue("tok".into()))
        );
        let last = json!({"apiVersion": "v3", "items": [], "kind": "UserList", "metadata": {"continue": ""}});
        assert_eq!(probe_link(&serde_json::to_vec(&last).unwrap()), None);
        let norman = json!({"type": "collection", "pagination": {"limit": 1, "next": "https://h/v3/users?marker=b"}, "data": [{"id": "a"}]});
        assert_eq!(
            probe_link(&serde_json::to_vec(&norman).unwrap()),
            Some(PageLink::Next("https://h/v3/users?marker=b".into()))
        );
        let spaced = b"{\"items\": [], \"metadata\" : {\"continue\": \"t2\"}}";
        assert_eq!(probe_link(spaced), Some(PageLink::Continue("t2".into())));
        for junk in [
            &b""[..],
            b"{",
            b"\"metadata\":",
            b"\"metadata\": [1]",
            b"<html>metadata</html>",
        ] {
            assert_eq!(probe_link(junk), None);
        }
    }

    /// Answers user pages by their continue token and records the tokens asked for.
    #[derive(Debug)]
    struct Pages {
        asked: Mutex<Vec<String>>,
        pages: Vec<(&'static str, serde_json::Value)>,
    }

    impl Transport for Pages {
        fn send(&self, request: HttpRequest) -> BoxFuture<'_, std::result::Result<HttpResponse, TransportError>> {
            let token = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "continue")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            self.asked.lock().unwrap().push(token.clone());
            let body = self.pages.iter().find(|(t, _)| *t == token).map(|(_, b)| b.clone());
            Box::pin(async move {
                let (status, body) = match body {
                    Some(b) => (200, b),
                    None => (
                        400,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "BadRequest", "code": 400}),
                    ),
                };
                Ok(HttpResponse {
                    status,
                    headers: HeaderMap::new(),
                    body: Bytes::from(serde_json::to_vec(&body).unwrap()),
                })
            })
        }
    }

    fn client(pages: Vec<(&'static str, serde_json::Value)>) -> (Client, Arc<Pages>) {
        let t = Arc::new(Pages {
            asked: Mutex::new(Vec::new()),
            pages,
        });
        let c = Client::builder("rancher.example.com")
            .transport(t.clone())
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        (c, t)
    }

    fn user(name: &str) -> serde_json::Value {
        json!({"metadata": {"name": name}, "username": name})
    }

    fn names(users: &[crate::types::User]) -> Vec<String> {
        users
            .iter()
            .map(|u| u.metadata.as_ref().unwrap().name.clone().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn pages_are_requested_ahead_and_each_once() {
        let (c, t) = client(vec![
            (
                "",
                json!({"apiVersion": "v3", "items": [user("a"), user("b")], "kind": "UserList", "metadata": {"continue": "t1"}}),
            ),
            (
                "t1",
                json!({"apiVersion": "v3", "items": [user("c")], "kind": "UserList", "metadata": {"continue": "t2"}}),
            ),
            (
                "t2",
                json!({"apiVersion": "v3", "items": [user("d")], "kind": "UserList", "metadata": {}}),
            ),
        ]);
        let users: Vec<_> = c.users().list(RkUsersList::new()).try_collect().await.unwrap();
        assert_eq!(names(&users), ["a", "b", "c", "d"]);
        assert_eq!(*t.asked.lock().unwrap(), ["", "t1", "t2"]);
    }

    #[tokio::test]
    async fn a_prefetch_the_decoded_page_disagrees_with_is_not_used() {
        // Metadata first (the order of built-in kinds), and the last item carries a decoy `continue` in its own
        // metadata: the probe follows the decoy, the full decode says `real`, and only `real` is yielded.
        let decoy = json!({"metadata": {"name": "b", "continue": "decoy"}, "username": "b"});
        let (c, t) = client(vec![
            (
                "",
                json!({"kind": "UserList", "metadata": {"continue": "real"}, "items": [user("a"), decoy]}),
            ),
            (
                "real",
                json!({"kind": "UserList", "metadata": {}, "items": [user("c")]}),
            ),
            (
                "decoy",
                json!({"kind": "UserList", "metadata": {}, "items": [user("x")]}),
            ),
        ]);
        let users: Vec<_> = c.users().list(RkUsersList::new()).try_collect().await.unwrap();
        assert_eq!(names(&users), ["a", "b", "c"]);
        assert!(t.asked.lock().unwrap().contains(&"real".to_string()));
    }

    #[test]
    fn without_a_tokio_runtime_pages_are_fetched_one_by_one() {
        let (c, t) = client(vec![
            (
                "",
                json!({"apiVersion": "v3", "items": [user("a")], "kind": "UserList", "metadata": {"continue": "t1"}}),
            ),
            (
                "t1",
                json!({"apiVersion": "v3", "items": [user("b")], "kind": "UserList", "metadata": {}}),
            ),
        ]);
        let users: Vec<_> =
            futures::executor::block_on(c.users().list(RkUsersList::new()).try_collect::<Vec<_>>()).unwrap();
        assert_eq!(names(&users), ["a", "b"]);
        assert_eq!(*t.asked.lock().unwrap(), ["", "t1"]);
    }
}
