//! Moving a whole store to another (e.g. from SQLite to PostgreSQL): [`export`] writes JSON lines, [`import`]
//! reads them into an empty store and verifies the result before committing it.
//!
//! The format: a first `header` line, then one line per installation, request (with its decisions and its
//! execution and outcome, as stored), audit entry (in order) and webhook delivery cursor:
//! `{"record": "request", "data": {...}}`. Everything comes from one consistent snapshot of the source.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::{Installation, Store, Tx};
use crate::audit::{AuditEntry, AuditHead};
use crate::error::{Error, Result};
use crate::request::ApprovalRequest;

/// The `format` named in an export's header line.
pub const EXPORT_FORMAT: &str = "rancher-approval-export";

/// The version of the export format this build writes and reads.
pub const EXPORT_VERSION: u32 = 1;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", content = "data", rename_all = "snake_case")]
pub enum ExportRecord {
    /// The first line: what this file is.
    Header {
        /// Always [`EXPORT_FORMAT`].
        format: String,
        /// [`EXPORT_VERSION`] of the writer.
        version: u32,
    },
    /// A workflow installation.
    Installation(Installation),
    /// A request with its decisions and its execution outcome.
    Request(Box<ApprovalRequest>),
    /// An audit entry.
    Audit(AuditEntry),
    /// How far a webhook sink has been delivered.
    Cursor {
        /// The sink.
        sink: String,
        /// The last delivered audit sequence number.
        seq: u64,
    },
    /// A time-bound grant (stores of SQLite schema 3 / PostgreSQL schema 2 and later).
    Grant(Box<crate::grant::Grant>),
}

/// What an export or import moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TransferSummary {
    /// Installations.
    pub installations: usize,
    /// Requests (their decisions and outcomes included).
    pub requests: usize,
    /// Decisions within the requests.
    pub decisions: usize,
    /// Audit entries.
    pub audit_entries: usize,
    /// Delivery cursors.
    pub cursors: usize,
    /// Time-bound grants.
    pub grants: usize,
}

impl TransferSummary {
    fn of(records: &[ExportRecord]) -> Self {
        let mut s = Self::default();
        for r in records {
            match r {
                ExportRecord::Header { .. } => {}
                ExportRecord::Installation(_) => s.installations += 1,
                ExportRecord::Request(r) => {
                    s.requests += 1;
                    s.decisions += r.decisions.len();
                }
                ExportRecord::Audit(_) => s.audit_entries += 1,
                ExportRecord::Cursor { .. } => s.cursors += 1,
                ExportRecord::Grant(_) => s.grants += 1,
            }
        }
        s
    }
}

/// Writes every record of `store` to `out` as JSON lines, from one snapshot.
pub async fn export(store: &dyn Store, mut out: impl Write) -> Result<TransferSummary> {
    let records = store.export_records().await?;
    let io = |e: std::io::Error| Error::Io {
        path: "the export output".into(),
        source: e,
    };
    for record in &records {
        serde_json::to_writer(&mut out, record).map_err(|e| io(e.into()))?;
        out.write_all(b"\n").map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(TransferSummary::of(&records))
}

/// Reads an [`export`] from `input` into `store`, which must be empty. The chain and every request are verified
/// against each other (as [`Store::verify_audit`] does) inside the import's transaction: a broken or edited
/// export leaves the store empty.
pub async fn import(store: &dyn Store, input: impl BufRead) -> Result<TransferSummary> {
    let mut records = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| Error::BadExport {
            line: i + 1,
            problem: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record: ExportRecord = serde_json::from_str(&line).map_err(|e| Error::BadExport {
            line: i + 1,
            problem: e.to_string(),
        })?;
        match (&record, records.is_empty()) {
            (ExportRecord::Header { format, version }, true)
                if format != EXPORT_FORMAT || *version > EXPORT_VERSION =>
            {
                return Err(Error::BadExport {
                    line: 1,
                    problem: format!("it is {format} version {version}; this build reads {EXPORT_FORMAT} up to version {EXPORT_VERSION}"),
                });
            }
            (ExportRecord::Header { .. }, true) => {}
            (_, true) => {
                return Err(Error::BadExport {
                    line: i + 1,
                    problem: "the header line is missing".into(),
                })
            }
            (ExportRecord::Header { .. }, false) => {
                return Err(Error::BadExport {
                    line: i + 1,
                    problem: "a second header line".into(),
                })
            }
            _ => {}
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(Error::BadExport {
            line: 0,
            problem: "the export is empty".into(),
        });
    }
    let summary = TransferSummary::of(&records);
    store.import_records(records).await?;
    Ok(summary)
}

/// The records of one snapshot, header first.
pub(crate) async fn export_records(tx: &mut dyn Tx) -> Result<Vec<ExportRecord>> {
    let mut records = vec![ExportRecord::Header {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
    }];
    records.extend(tx.installations().await?.into_iter().map(ExportRecord::Installation));
    records.extend(
        tx.requests_in(&[])
            .await?
            .into_iter()
            .map(|r| ExportRecord::Request(Box::new(r))),
    );
    records.extend(tx.audit_entries().await?.into_iter().map(ExportRecord::Audit));
    records.extend(
        tx.delivery_cursors()
            .await?
            .into_iter()
            .map(|(sink, seq)| ExportRecord::Cursor { sink, seq }),
    );
    records.extend(
        tx.grants(&crate::grant::GrantFilter::all())
            .await?
            .into_iter()
            .map(|g| ExportRecord::Grant(Box::new(g))),
    );
    Ok(records)
}

/// Writes `records` into an empty store and verifies the result (the caller's transaction rolls back on error).
pub(crate) async fn import_records(tx: &mut dyn Tx, records: Vec<ExportRecord>) -> Result<u64> {
    let mut found = Vec::new();
    if !tx.installations().await?.is_empty() {
        found.push("installations");
    }
    if !tx.requests_in(&[]).await?.is_empty() {
        found.push("requests");
    }
    if tx.audit_head().await? != AuditHead::genesis() {
        found.push("audit entries");
    }
    if !found.is_empty() {
        return Err(Error::ImportTargetNotEmpty { what: found.join(", ") });
    }
    let entries: Vec<&AuditEntry> = records
        .iter()
        .filter_map(|r| if let ExportRecord::Audit(e) = r { Some(e) } else { None })
        .collect();
    let owned: Vec<AuditEntry> = entries.iter().map(|e| (*e).clone()).collect();
    crate::audit::verify(&owned, None)?;
    for record in records {
        match record {
            ExportRecord::Header { .. } => {}
            ExportRecord::Installation(i) => {
                if tx.load_installation(&i.workflow_id).await?.is_some() {
                    return Err(Error::BadExport {
                        line: 0,
                        problem: format!("workflow {} is installed twice", i.workflow_id),
                    });
                }
                tx.save_installation(&i).await?;
            }
            ExportRecord::Request(r) => {
                if tx.load_request(&r.id).await?.is_some() {
                    return Err(Error::BadExport {
                        line: 0,
                        problem: format!("request {} appears twice", r.id),
                    });
                }
                tx.save_request(&r).await?;
            }
            ExportRecord::Audit(e) => tx.append_audit(&e).await?,
            ExportRecord::Cursor { sink, seq } => tx.set_delivery_cursor(&sink, seq).await?,
            ExportRecord::Grant(g) => {
                if tx.load_grant(&g.id).await?.is_some() {
                    return Err(Error::BadExport {
                        line: 0,
                        problem: format!("grant {} appears twice", g.id),
                    });
                }
                tx.save_grant(&g).await?;
            }
        }
    }
    super::ops::verify(tx).await
}
