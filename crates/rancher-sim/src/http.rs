//! The simulator's small request/response model and the error bodies of each API surface.

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::{json, Value};

/// A parsed request.
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    /// Percent-decoded, non-empty path segments.
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub raw_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `https://host:port` as the client addressed us.
    pub base: String,
}

impl Req {
    /// Builds a request from parts.
    pub fn new(method: Method, uri: &http::Uri, headers: HeaderMap, body: Bytes, default_host: &str) -> Req {
        let path = uri.path().to_string();
        let segs = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let raw_query = uri.query().unwrap_or("").to_string();
        let query = url::form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(default_host)
            .to_string();
        Req {
            method,
            path,
            segs,
            query,
            raw_query,
            headers,
            body,
            base: format!("https://{host}"),
        }
    }

    /// First value of a query parameter.
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Segment `i` or "".
    pub fn seg(&self, i: usize) -> &str {
        self.segs.get(i).map(String::as_str).unwrap_or("")
    }

    /// The body as JSON (an empty body is `{}`).
    pub fn json(&self) -> Result<Value, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body).map_err(|e| e.to_string())
    }

    /// The full request URL (for `links.self`).
    pub fn url(&self) -> String {
        if self.raw_query.is_empty() {
            format!("{}{}", self.base, self.path)
        } else {
            format!("{}{}?{}", self.base, self.path, self.raw_query)
        }
    }

    /// True for writes (anything but GET/HEAD/OPTIONS).
    pub fn is_write(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// A response.
pub(crate) struct Resp {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// A body sent in chunks as they come, after `body` (a watch stream); `None` for an ordinary answer.
    pub stream: Option<BodyStream>,
}

/// The chunks of a streamed body.
pub(crate) type BodyStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send>>;

impl Resp {
    /// A JSON response.
    pub fn json(status: u16, v: &Value) -> Resp {
        Resp::raw_json(status, serde_json::to_vec(v).unwrap_or_default())
    }
    /// Pre-serialized JSON.
    pub fn raw_json(status: u16, body: Vec<u8>) -> Resp {
        Resp {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
            stream: None,
        }
    }
    /// A text response.
    pub fn text(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Resp {
        Resp {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
            stream: None,
        }
    }
    /// An empty response.
    pub fn empty(status: u16) -> Resp {
        Resp {
            status,
            content_type: "",
            headers: Vec::new(),
            body: Vec::new(),
            stream: None,
        }
    }
    /// Adds a header.
    pub fn with_header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    /// A response whose body is `stream`, sent chunk by chunk (chunked transfer encoding).
    pub fn streaming(status: u16, content_type: &'static str, stream: BodyStream) -> Resp {
        Resp {
            status,
            content_type,
            headers: Vec::new(),
            body: Vec::new(),
            stream: Some(stream),
        }
    }
    /// Marks the response as "no such route" (for the endpoint coverage test).
    pub fn no_route(self) -> Resp {
        self.with_header("x-sim-route", "none")
    }
}

/// The 2.x authentication failure: `status` is a STRING, no `code`, no `baseType`.
pub(crate) fn unauthorized_2x() -> Resp {
    Resp::json(
        401,
        &json!({"type": "error", "status": "401", "message": "Unauthorized 401: must authenticate"}),
    )
}

/// A norman error body.
pub(crate) fn norman_err(status: u16, code: &str, message: &str) -> Resp {
    Resp::json(
        status,
        &json!({"baseType": "error", "type": "error", "status": status, "code": code, "message": message}),
    )
}

/// A norman error naming a field.
pub(crate) fn norman_field_err(status: u16, code: &str, message: &str, field: &str) -> Resp {
    Resp::json(
        status,
        &json!({"baseType": "error", "type": "error", "status": status, "code": code, "message": message, "fieldName": field}),
    )
}

/// The `/v1-public` and 2.13 login writer's error body.
pub(crate) fn public_err(status: u16, code: &str, message: &str) -> Resp {
    Resp::json(
        status,
        &json!({"code": code, "status": status, "message": message, "type": "error", "baseType": "error"}),
    )
}

/// A Kubernetes `Status` failure.
pub(crate) fn k8s_status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Resp {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    Resp::json(code, &v)
}

/// The Kubernetes answer to a path it does not serve.
pub(crate) fn k8s_no_route() -> Resp {
    k8s_status(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
    .no_route()
}

/// A Rancher 1.x error body.
pub(crate) fn legacy_err(status: u16, code: &str, message: &str) -> Resp {
    Resp::json(
        status,
        &json!({"id": format!("{}", status), "type": "error", "links": {}, "actions": {}, "status": status,
                "code": code, "message": message, "detail": null}),
    )
}
