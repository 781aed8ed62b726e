//! The webhook event bodies, pinned byte for byte with insta: one snapshot per event kind (taken from the pinned
//! audit chain of rancher-approval, every kind the store writes), plus the bodies cut to the size cap. Receivers
//! parse these documents, so a change of types behind them must leave every byte as it is.

use rancher_approval::AuditEntry;
use rancher_server::webhooks::{event_for, MAX_EVENT_BYTES};
use serde_json::json;

fn chain() -> Vec<AuditEntry> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rancher-approval/tests/fixtures/audit-chain-v1.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The event of `entry` as the bytes a receiver gets.
fn body(entry: &AuditEntry) -> String {
    serde_json::to_string(&event_for(entry).expect("an event")).unwrap()
}

#[test]
fn every_event_kind_keeps_its_body() {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for entry in chain() {
        let Some(event) = event_for(&entry) else { continue };
        let event = serde_json::to_value(&event).unwrap();
        // One snapshot per event name and `data` shape (the failed ones differ by status; grants by what they add).
        let shape: Vec<&str> = event["data"].as_object().unwrap().keys().map(String::as_str).collect();
        let status = match (event["data"]["status"].as_str(), event["data"]["reconciled"] == true) {
            (Some(s), true) => format!("{s}-reconciled"),
            (s, _) => s.unwrap_or("").to_string(),
        };
        let key = format!("{}-{status}-{}", event["event"].as_str().unwrap(), shape.join(","));
        let n = seen.len();
        if seen.contains_key(&key) {
            continue;
        }
        seen.insert(key, n);
        let name = format!(
            "{:02}-{}{}",
            n,
            event["event"].as_str().unwrap().replace('.', "-"),
            if status.is_empty() {
                String::new()
            } else {
                format!("-{status}")
            }
        );
        insta::assert_snapshot!(name, body(&entry));
    }
    let names: std::collections::BTreeSet<&str> = seen.keys().map(|k| k.split('-').next().unwrap()).collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "binding.out_of_band",
            "grant.ended_early",
            "grant.overdue",
            "grant.revoked",
            "request.cancelled",
            "request.created",
            "request.decided",
            "request.executed",
            "request.expired",
            "request.failed"
        ],
        "every event kind is pinned"
    );
}

/// A created entry of the chain with its inputs and requester made larger.
fn created_with(inputs: serde_json::Value, username: &str) -> AuditEntry {
    let mut entry = chain()
        .into_iter()
        .find(|e| e.kind.as_str() == "request_created")
        .expect("a created entry");
    entry.detail["inputs"] = inputs;
    entry.detail["requester"]["username"] = json!(username);
    entry
}

#[test]
fn bodies_cut_to_the_cap_keep_their_shape() {
    // Too many inputs: they are replaced by a note, and the body says it was cut.
    let inputs: serde_json::Map<String, serde_json::Value> = (0..100)
        .map(|i| (format!("field-{i:03}"), json!("v".repeat(200))))
        .collect();
    let cut = created_with(serde_json::Value::Object(inputs), "bob");
    let b = body(&cut);
    assert!(b.len() <= MAX_EVENT_BYTES, "{}", b.len());
    insta::assert_snapshot!("cut-inputs-omitted", b);
    // Still too large without the inputs (a huge requester name): `data` goes.
    let huge = created_with(json!({"user": "carol"}), &"b".repeat(MAX_EVENT_BYTES));
    let b = body(&huge);
    insta::assert_snapshot!("cut-data-dropped", b);
    // Pinned lists are counted and long texts cut, whatever the workflow.
    let counted = created_with(
        json!({"user": "carol", "pinned-tokens": ["token-a", "token-b", "token-c"], "note": "n".repeat(300)}),
        "bob",
    );
    insta::assert_snapshot!("inputs-counted-and-cut", body(&counted));
}

/// A binding change's event says out of band or names its request, and shows what Rancher wrote (names, ids) only
/// as safe text.
#[test]
fn binding_events_name_their_request_or_say_out_of_band_and_escape_what_rancher_wrote() {
    let mut entry = chain()
        .into_iter()
        .find(|e| e.kind == rancher_approval::AuditKind::AccessObserved)
        .expect("the pinned chain has an observed change");
    entry.detail["name"] = serde_json::json!("crtb-<b>x</b>");
    entry.detail["subject_name"] = serde_json::json!("Bob\u{1b}[31m *bold*");
    let e = event_for(&entry).expect("an event");
    assert_eq!(e.event.as_str(), "binding.out_of_band");
    assert!(e.text.starts_with("OUT OF BAND:"), "{}", e.text);
    assert!(
        !e.text.contains('\u{1b}') && !e.text.contains("<b>") && !e.text.contains("*bold*"),
        "made safe for chat: {}",
        e.text
    );
    entry.detail["request"] = serde_json::json!("req-1");
    entry.detail["out_of_band"] = serde_json::json!(false);
    assert_eq!(event_for(&entry).unwrap().event.as_str(), "binding.created");
    entry.detail["change"] = serde_json::json!("deleted");
    let e = event_for(&entry).unwrap();
    assert_eq!(e.event.as_str(), "binding.deleted");
    assert!(e.text.contains("req-1"), "{}", e.text);
}
