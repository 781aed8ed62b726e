use super::*;
use chrono::Utc;
use rancher_approval::GENESIS_HASH;

/// A chained log of the given kinds and details.
fn log(items: &[(AuditKind, Value)]) -> Vec<AuditEntry> {
    let mut prev = GENESIS_HASH.to_string();
    let mut out = Vec::new();
    for (i, (kind, detail)) in items.iter().enumerate() {
        let mut e = AuditEntry {
            seq: i as u64 + 1,
            at: Utc::now(),
            actor: "u-admin".into(),
            kind: kind.clone(),
            request_id: Some(format!("req-{i}")),
            workflow_id: Some("grant-project-role".into()),
            detail: detail.clone(),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        prev = e.hash.clone();
        out.push(e);
    }
    out
}

fn sample() -> Vec<AuditEntry> {
    log(&[
        (AuditKind::RequestCreated, json!({"reason": "on call ü \"quoted\"\n"})),
        (AuditKind::Decided, json!({"approve": true, "by": "u-approver"})),
        (
            AuditKind::GrantRevoked,
            json!({"grant": "req-0", "kind": "project", "binding": "prtb-x", "namespace": "p-1", "subject_kind": "user", "subject": "u-bob", "role": "read-only", "revoked_by": "system"}),
        ),
        (
            AuditKind::DirectWrite,
            json!({"operation": "tokens.delete", "method": "DELETE", "path": "/v3/tokens/token-abc", "server": "https://r"}),
        ),
    ])
}

fn get<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k)).filter(|v| !v.is_null())
}

/// The attributes OCSF marks required: for every event (base event and the IAM category) and for each class used.
const BASE_REQUIRED: &[&str] = &[
    "activity_id",
    "category_uid",
    "class_uid",
    "type_uid",
    "severity_id",
    "time",
    "metadata",
    "metadata.version",
    "metadata.product",
    "metadata.product.vendor_name",
];
const CLASS_REQUIRED: &[(u64, &[&str])] = &[(3001, &["user"]), (3004, &["entity"]), (3005, &["user", "privileges"])];

#[test]
fn ocsf_records_carry_the_fields_their_class_requires_and_the_chain() {
    let entries = sample();
    let mut classes = Vec::new();
    for e in &entries {
        let v: Value = serde_json::from_str(&line(e, ExportFormat::Ocsf, "svc.example")).unwrap();
        let class = v["class_uid"].as_u64().unwrap();
        classes.push(class);
        for f in BASE_REQUIRED {
            assert!(get(&v, f).is_some(), "{f} missing in {v}");
        }
        let (_, required) = CLASS_REQUIRED
            .iter()
            .find(|(c, _)| *c == class)
            .expect("a class we list");
        for f in *required {
            assert!(get(&v, f).is_some(), "class {class}: {f} missing in {v}");
        }
        assert_eq!(v["category_uid"], json!(3), "{v}");
        assert_eq!(
            v["type_uid"].as_u64(),
            Some(class * 100 + v["activity_id"].as_u64().unwrap())
        );
        assert_eq!(v["unmapped"]["rancher_access"]["hash"], json!(e.hash));
    }
    assert_eq!(classes, [3004, 3004, 3005, 3001]);
    let revoke: Value = serde_json::from_str(&line(&entries[2], ExportFormat::Ocsf, "s")).unwrap();
    assert_eq!(
        (revoke["activity_id"].as_u64(), &revoke["user"]["uid"]),
        (Some(2), &json!("u-bob"))
    );
    assert_eq!(revoke["privileges"], json!(["read-only"]));
    let token: Value = serde_json::from_str(&line(&entries[3], ExportFormat::Ocsf, "s")).unwrap();
    assert_eq!(
        (token["activity_id"].as_u64(), &token["user"]["uid"]),
        (Some(6), &json!("token-abc"))
    );
}

#[test]
fn cloudevents_are_structured_1_0_with_the_entry_as_data() {
    for e in sample() {
        let text = line(&e, ExportFormat::CloudEvents, "svc.example");
        assert!(
            text.ends_with('\n') && !text.trim_end().contains('\n'),
            "one line: {text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        for f in ["specversion", "id", "source", "type"] {
            assert!(v[f].as_str().is_some_and(|s| !s.is_empty()), "{f} in {v}");
        }
        assert_eq!(v["specversion"], "1.0");
        chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).expect("an RFC 3339 time");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["data"]["seq"], json!(e.seq));
        assert_eq!(v["data"]["prev_hash"], json!(e.prev_hash));
    }
}

#[test]
fn jsonl_lines_recompute_to_their_hash() {
    for e in sample() {
        let v: Value = serde_json::from_str(&line(&e, ExportFormat::Jsonl, "s")).unwrap();
        // Read back as an entry, the line hashes to what it says.
        let back = AuditEntry {
            seq: v["seq"].as_u64().unwrap(),
            at: chrono::DateTime::parse_from_rfc3339(v["at"].as_str().unwrap())
                .unwrap()
                .to_utc(),
            actor: v["actor"].as_str().unwrap().into(),
            kind: e.kind.clone(),
            request_id: v["request_id"].as_str().map(str::to_string),
            workflow_id: v["workflow_id"].as_str().map(str::to_string),
            detail: v["detail"].clone(),
            prev_hash: v["prev_hash"].as_str().unwrap().into(),
            hash: String::new(),
        };
        assert_eq!(back.compute_hash(), v["hash"].as_str().unwrap());
    }
}

#[test]
fn formats_are_named_and_unknown_ones_refused() {
    for f in [ExportFormat::Jsonl, ExportFormat::Ocsf, ExportFormat::CloudEvents] {
        assert_eq!(f.as_str().parse::<ExportFormat>(), Ok(f));
    }
    let e = "csv".parse::<ExportFormat>().unwrap_err();
    assert!(e.contains("jsonl, ocsf or cloudevents"), "{e}");
}

#[test]
fn an_observed_binding_change_is_user_access_management_with_its_subject_role_and_maker() {
    let entries = log(&[
        (
            AuditKind::AccessObserved,
            json!({"change": "created", "kind": "ClusterRoleTemplateBinding", "name": "crtb-x", "namespace": "c-1",
                   "resource_version": "9", "subject": "u-bob", "role": "cluster-owner", "scope": "c-1",
                   "creator": "user-admin", "out_of_band": true, "server": "https://r"}),
        ),
        (
            AuditKind::AccessObserved,
            json!({"change": "deleted", "kind": "ProjectRoleTemplateBinding", "name": "prtb-y", "resource_version": "10",
                   "subject": "u-bob", "role": "read-only", "request": "req-9", "out_of_band": false, "server": "https://r"}),
        ),
    ]);
    let v: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_str(&line(e, ExportFormat::Ocsf, "svc.example")).unwrap())
        .collect();
    assert_eq!(
        (v[0]["class_uid"].clone(), v[0]["activity_id"].clone()),
        (json!(3005), json!(1))
    );
    assert_eq!(v[0]["activity_name"], "Assign Privileges");
    assert_eq!(v[0]["type_uid"], json!(300501));
    assert_eq!(v[0]["user"]["uid"], "u-bob");
    assert_eq!(v[0]["privileges"], json!(["cluster-owner"]));
    assert_eq!(v[0]["resources"][0]["name"], "crtb-x");
    assert_eq!(
        v[0]["actor"]["user"]["uid"], "user-admin",
        "the actor is who made the binding"
    );
    assert_eq!(v[0]["severity_id"], json!(3), "out of band: Medium");
    assert_eq!(
        (v[1]["class_uid"].clone(), v[1]["activity_id"].clone()),
        (json!(3005), json!(2))
    );
    assert_eq!(v[1]["severity_id"], json!(1), "matched to its request: Informational");
    for r in &v {
        for f in BASE_REQUIRED.iter().chain(&["user", "privileges"]) {
            assert!(get(r, f).is_some(), "{f} missing in {r}");
        }
    }
}
