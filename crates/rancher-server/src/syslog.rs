//! The audit log to a syslog collector: every entry (requests, decisions, executions, grants, bindings seen made or
//! removed) as one RFC 5424 message, over UDP (RFC 5426, one message per datagram) or TCP (RFC 6587 octet
//! counting: `LENGTH SP MESSAGE`). It runs on the durable outbox as the webhooks do: a cursor in the store, in
//! order, retried with backoff, one replica at a time (a lease), so a collector that was down gets what it missed.
//!
//! A message: `<PRI>1 TIMESTAMP HOSTNAME rancher-access - KIND - BOM MSG`, where PRI is facility 13 (log audit)
//! with severity 6 (informational), or 4 (warning) for a binding made or removed out of band; TIMESTAMP is when
//! the entry was written; KIND (the MSGID) the entry's kind; MSG the entry in the export format chosen (`jsonl`,
//! `ocsf` or `cloudevents`, see [`crate::audit_export`]), which carries the hash-chain fields.

use std::net::SocketAddr;
use std::sync::Arc;

use rancher_approval::{AuditEntry, AuditKind};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::app::App;
use crate::audit_export::ExportFormat;
use crate::config::{SyslogTarget, SyslogTransport};
use crate::outbox::{Failure, Sink};

/// RFC 5424 facility 13: log audit.
const FACILITY_LOG_AUDIT: u8 = 13;
/// Byte order mark: RFC 5424 MSG-UTF8 starts with it.
const BOM: &str = "\u{feff}";

/// One entry as an RFC 5424 message (without transport framing).
pub fn message(entry: &AuditEntry, format: ExportFormat, hostname: &str) -> String {
    let out_of_band = entry.kind == AuditKind::AccessObserved
        && entry.detail.get("out_of_band").and_then(|v| v.as_bool()) == Some(true);
    let severity = if out_of_band { 4 } else { 6 };
    let pri = FACILITY_LOG_AUDIT * 8 + severity;
    let timestamp = entry.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let body = crate::audit_export::line(entry, format, hostname);
    format!(
        "<{pri}>1 {timestamp} {} rancher-access - {} - {BOM}{}",
        header_field(hostname, 255),
        header_field(entry.kind.as_str(), 32),
        body.trim_end_matches('\n')
    )
}

/// A header field as RFC 5424 allows it: printable US-ASCII without spaces, at most `max` characters; `-` when
/// nothing is left.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if f.is_empty() {
        "-".into()
    } else {
        f
    }
}

/// The syslog deliverer.
pub(crate) struct Syslog {
    target: SyslogTarget,
    format: ExportFormat,
    hostname: String,
    stream: Mutex<Option<tokio::net::TcpStream>>,
}

impl Syslog {
    pub(crate) fn new(target: SyslogTarget) -> Self {
        let hostname = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "-".into());
        Syslog {
            // Checked when the configuration was read.
            format: target.format.parse().unwrap_or(ExportFormat::Jsonl),
            target,
            hostname,
            stream: Mutex::new(None),
        }
    }

    async fn send(&self, msg: &str) -> Result<(), Failure> {
        let addr = self.target.addr;
        match self.target.transport {
            SyslogTransport::Udp => {
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let sock = tokio::net::UdpSocket::bind(local)
                    .await
                    .map_err(|e| Failure::retry(format!("syslog: no UDP socket: {e}")))?;
                sock.send_to(msg.as_bytes(), addr)
                    .await
                    .map_err(|e| Failure::retry(format!("syslog: could not send to udp://{addr}: {e}")))?;
                Ok(())
            }
            SyslogTransport::Tcp => {
                let mut held = self.stream.lock().await;
                if held.is_none() {
                    let s = tokio::net::TcpStream::connect(addr)
                        .await
                        .map_err(|e| Failure::retry(format!("syslog: could not connect to tcp://{addr}: {e}")))?;
                    *held = Some(s);
                }
                let framed = format!("{} {msg}", msg.len());
                let stream = held.as_mut().expect("connected above");
                if let Err(e) = stream.write_all(framed.as_bytes()).await {
                    // Connect again next time; the outbox retries this entry.
                    *held = None;
                    return Err(Failure::retry(format!(
                        "syslog: the connection to tcp://{addr} broke: {e}"
                    )));
                }
                Ok(())
            }
        }
    }
}

impl Sink for Syslog {
    fn name(&self) -> String {
        let t = match self.target.transport {
            SyslogTransport::Udp => "udp",
            SyslogTransport::Tcp => "tcp",
        };
        format!("syslog:{t}://{}", self.target.addr)
    }

    fn shown(&self) -> String {
        self.name()
    }

    fn handle<'a>(
        &'a self,
        _app: &'a Arc<App>,
        entry: &'a AuditEntry,
    ) -> futures::future::BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let msg = message(entry, self.format, &self.hostname);
            self.send(&msg).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rancher_approval::GENESIS_HASH;
    use serde_json::json;

    fn entry(kind: AuditKind, detail: serde_json::Value) -> AuditEntry {
        let mut e = AuditEntry {
            seq: 7,
            at: chrono::DateTime::parse_from_rfc3339("2026-12-08T01:02:03.004Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            actor: "u-admin".into(),
            kind,
            request_id: None,
            workflow_id: None,
            detail,
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        e
    }

    #[test]
    fn a_message_is_rfc_5424_with_the_entry_as_its_body() {
        let e = entry(
            AuditKind::DirectWrite,
            json!({"operation": "x", "method": "DELETE", "path": "/v3/tokens/t"}),
        );
        let m = message(&e, ExportFormat::Jsonl, "approvals 1");
        let prefix = "<110>1 2026-12-08T01:02:03.004000Z approvals1 rancher-access - direct_write - \u{feff}";
        assert!(m.starts_with(prefix), "{m}");
        let body: serde_json::Value = serde_json::from_str(&m[prefix.len()..]).unwrap();
        assert_eq!(body["seq"], 7);
        assert_eq!(body["hash"], e.hash.as_str());
        let oob = entry(
            AuditKind::AccessObserved,
            json!({"change": "created", "out_of_band": true}),
        );
        assert!(
            message(&oob, ExportFormat::Ocsf, "").starts_with("<108>1 "),
            "out of band is a warning"
        );
        assert!(message(&oob, ExportFormat::Ocsf, "").contains(" - access_observed - "));
    }

    #[test]
    fn targets_parse_and_bad_ones_say_the_form() {
        let t: SyslogTarget = "tcp://127.0.0.1:6514?format=ocsf".parse().unwrap();
        assert_eq!(t.transport, SyslogTransport::Tcp);
        assert_eq!(t.format, "ocsf");
        let t: SyslogTarget = "udp://[::1]:514".parse().unwrap();
        assert_eq!((t.transport, t.format.as_str()), (SyslogTransport::Udp, "jsonl"));
        for bad in [
            "syslog.example:514",
            "http://1.2.3.4:1",
            "udp://host:514",
            "udp://1.2.3.4:5?fmt=x",
        ] {
            let e = bad.parse::<SyslogTarget>().unwrap_err();
            assert!(e.contains("udp://IP:PORT"), "{e}");
        }
        assert!("udp://1.2.3.4:5?format=xml".parse::<SyslogTarget>().is_err());
    }
}
