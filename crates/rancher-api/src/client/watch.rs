//! Watching an RK-API collection: `watch=true` from a resourceVersion, the events read one line at a time as the
//! server sends them (Kubernetes' JSON watch framing: one `{"type": ..., "object": ...}` per line).

use std::time::Duration;

use http::Method as HttpMethod;

use super::{Client, GenericRequest};
use crate::error::{parse_server_error, Error, Result};
use crate::spec::{Pagination, Surface};
use crate::transport::{BodyChunks, HttpRequest};

/// What a watch event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventType {
    /// The object was created (or, on a watch without a version, exists).
    Added,
    /// The object changed.
    Modified,
    /// The object was removed (the object as it was last).
    Deleted,
    /// Nothing changed: the stream has sent everything up to the object's `metadata.resourceVersion`.
    Bookmark,
    /// The watch failed; the object is a Kubernetes `Status` (code 410, reason `Expired`: the version is older
    /// than the server keeps, so list again and watch from the list's version).
    Error,
}

/// One watch event.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// What happened.
    pub kind: WatchEventType,
    /// The object, exactly as the server sent it.
    pub object: serde_json::Value,
}

impl WatchEvent {
    /// The object's `metadata.resourceVersion` (a bookmark's too), when it has one.
    pub fn resource_version(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/resourceVersion")
            .and_then(|v| v.as_str())
    }

    /// For an `Error` event: whether it says the version expired (410 / `Expired` / `Gone`), so the caller must
    /// list again.
    pub fn is_expired(&self) -> bool {
        self.kind == WatchEventType::Error
            && (self.object.get("code").and_then(|c| c.as_u64()) == Some(410)
                || matches!(
                    self.object.get("reason").and_then(|r| r.as_str()),
                    Some("Expired" | "Gone")
                ))
    }
}

/// How to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Send the changes after this version (`None`: the current objects first, as `Added`, then the changes).
    pub resource_version: Option<String>,
    /// Ask for `Bookmark` events.
    pub bookmarks: bool,
    /// How long the server keeps the stream open (`timeoutSeconds`); the client gives up a little later.
    pub timeout: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            resource_version: None,
            bookmarks: true,
            timeout: Duration::from_secs(300),
        }
    }
}

/// An open watch: call [`Watch::next`] until it answers `None` (the server ended the stream).
pub struct Watch {
    operation: &'static str,
    body: Box<dyn BodyChunks>,
    buf: Vec<u8>,
    done: bool,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

/// The most a single event line may hold (a binding or role is a few KiB).
const MAX_LINE: usize = 8 << 20;

impl Watch {
    /// The next event; `None` when the server ended the stream (watch again from the last version seen).
    pub async fn next(&mut self) -> Result<Option<WatchEvent>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return self.parse(&line).map(Some);
            }
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.buf);
                return self.parse(&line).map(Some);
            }
            match self.body.next_chunk().await {
                Ok(Some(chunk)) => {
                    if self.buf.len() + chunk.len() > MAX_LINE {
                        return Err(Error::TooLarge {
                            operation: self.operation.into(),
                            limit: MAX_LINE,
                        });
                    }
                    self.buf.extend_from_slice(&chunk);
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    return Err(Error::Transport {
                        operation: self.operation.into(),
                        message: format!("the watch stream broke: {e}"),
                        source: Some(Box::new(e)),
                    })
                }
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Result<WatchEvent> {
        #[derive(serde::Deserialize)]
        struct Raw {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            object: serde_json::Value,
        }
        let raw: Raw = serde_json::from_slice(line).map_err(|e| Error::Decode {
            operation: self.operation.into(),
            status: 200,
            content_type: Some("application/json".into()),
            detail: "a watch event is not JSON of the form {\"type\": ..., \"object\": ...}".into(),
            source: Some(e),
        })?;
        let kind = match raw.kind.as_str() {
            "ADDED" => WatchEventType::Added,
            "MODIFIED" => WatchEventType::Modified,
            "DELETED" => WatchEventType::Deleted,
            "BOOKMARK" => WatchEventType::Bookmark,
            "ERROR" => WatchEventType::Error,
            other => {
                return Err(Error::Decode {
                    operation: self.operation.into(),
                    status: 200,
                    content_type: Some("application/json".into()),
                    detail: format!(
                        "unknown watch event type {:?}",
                        other.chars().take(40).collect::<String>()
                    ),
                    source: None,
                })
            }
        };
        Ok(WatchEvent {
            kind,
            object: raw.object,
        })
    }
}

impl Client {
    /// Watches the collection a list operation reads (an RK-API `list`, e.g. `rancher_api::ids::RK_...`), with its
    /// parameters (a namespace, selectors). The answer's status is checked; the events are read with
    /// [`Watch::next`]. Not retried: a caller that loses the stream watches again from the last version it saw.
    pub async fn watch(&self, operation_id: &str, params: &[(&str, &str)], options: &WatchOptions) -> Result<Watch> {
        let req = GenericRequest::new(operation_id, params, None)?;
        let spec = req.spec;
        if spec.surface != Surface::Rk || spec.pagination != Pagination::Continue {
            return Err(Error::InvalidRequest {
                operation: spec.id.into(),
                message: "only an RK-API list can be watched".into(),
            });
        }
        self.check_available(spec)?;
        let mut query = req.query.clone();
        query.retain(|(k, _)| !matches!(*k, "resourceVersion" | "timeoutSeconds" | "limit" | "continue"));
        if let Some(rv) = &options.resource_version {
            query.push(("resourceVersion", rv.clone()));
        }
        query.push(("timeoutSeconds", options.timeout.as_secs().max(1).to_string()));
        let values: Vec<&str> = req.path.iter().map(String::as_str).collect();
        let mut url = self.url_for(spec, &values, &query)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("watch", "true");
            if options.bookmarks {
                q.append_pair("allowWatchBookmarks", "true");
            }
        }
        let headers = self.headers(spec, false)?;
        let request = HttpRequest {
            method: HttpMethod::GET,
            url,
            headers,
            body: None,
        };
        let _permit = self.inner.limit.acquire().await;
        let resp = self
            .inner
            .transport
            .open(request, options.timeout + Duration::from_secs(30))
            .await
            .map_err(|e| self.transport_error(spec, e))?;
        let mut body = resp.body;
        if !(200..300).contains(&resp.status) {
            let mut text = Vec::new();
            while let Ok(Some(c)) = body.next_chunk().await {
                text.extend_from_slice(&c);
                if text.len() > 64 << 10 {
                    break;
                }
            }
            let ct = resp
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            return Err(Error::Api {
                operation: spec.id.into(),
                status: resp.status,
                server: parse_server_error(spec.surface, ct, &text),
                retry_after: None,
            });
        }
        Ok(Watch {
            operation: spec.id,
            body,
            buf: Vec::new(),
            done: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::BoxFuture;
    use crate::transport::TransportError;
    use bytes::Bytes;

    /// A body that hands over the given chunks.
    struct Chunks(std::collections::VecDeque<&'static str>);

    impl BodyChunks for Chunks {
        fn next_chunk(&mut self) -> BoxFuture<'_, std::result::Result<Option<Bytes>, TransportError>> {
            let next = self.0.pop_front().map(|s| Bytes::from_static(s.as_bytes()));
            Box::pin(async move { Ok(next) })
        }
    }

    fn watch(chunks: &[&'static str]) -> Watch {
        Watch {
            operation: "rk.test.list",
            body: Box::new(Chunks(chunks.iter().copied().collect())),
            buf: Vec::new(),
            done: false,
        }
    }

    #[tokio::test]
    async fn events_are_read_whole_across_chunks_and_a_410_says_list_again() {
        let mut w = watch(&[
            "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n{\"type\":\"MOD",
            "IFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"6\"}}}\n\n",
            "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\n",
            "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}",
        ]);
        let e = w.next().await.unwrap().unwrap();
        assert_eq!((e.kind, e.resource_version()), (WatchEventType::Added, Some("5")));
        let e = w.next().await.unwrap().unwrap();
        assert_eq!((e.kind, e.resource_version()), (WatchEventType::Modified, Some("6")));
        let e = w.next().await.unwrap().unwrap();
        assert_eq!((e.kind, e.resource_version()), (WatchEventType::Bookmark, Some("9")));
        assert!(!e.is_expired());
        let e = w.next().await.unwrap().unwrap();
        assert!(e.is_expired(), "{e:?}");
        assert!(w.next().await.unwrap().is_none(), "the stream ended");
    }

    #[tokio::test]
    async fn a_line_that_is_not_an_event_is_an_error_naming_the_operation() {
        let mut w = watch(&["{\"type\":\"SURPRISE\",\"object\":{}}\n"]);
        let e = w.next().await.unwrap_err().to_string();
        assert!(e.contains("rk.test.list") && e.contains("SURPRISE"), "{e}");
        let mut w = watch(&["not json\n"]);
        assert!(w.next().await.is_err());
    }
}
