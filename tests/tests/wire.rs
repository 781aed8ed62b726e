//! The service's wire contract, end to end: rancherctl prints the same documents in local mode and through the
//! approvals service, for every workflow of the catalog and for an approval whose outcome lists many items.

use rancher_access_tests::cli::{redactions, Run, SimCli};
use rancher_access_tests::server;
use rancher_sim::RancherVersion;

/// Starts the approvals service on the simulator (a memory store) and installs `workflows` through it as the admin.
fn service(env: &SimCli, workflows: &[&str]) -> rancher_server::RunningServer {
    let svc = env.rt.block_on(server::service_account(&env.sim));
    let srv = env.rt.block_on(server::start(server::config(
        &env.sim,
        &svc,
        std::sync::Arc::new(rancher_approval::MemoryStore::new()),
    )));
    let api = server::Api::new(srv.url(), Some(&env.sim.tokens().admin));
    for wf in workflows {
        let (st, v) = env
            .rt
            .block_on(api.post(&format!("/api/v1/workflows/{wf}/install"), serde_json::json!({})));
        assert_eq!(st, 200, "{wf}: {v}");
    }
    srv
}

/// The environment of `token`'s owner using the service at `url` (no Rancher domain).
fn through(env: &SimCli, url: &str, token: &str) -> Vec<(&'static str, String)> {
    let mut e = env.base_env();
    e.push(("RANCHER_TOKEN", token.to_string()));
    e.push(("RANCHERCTL_SERVER", url.to_string()));
    e
}

/// `text` with what differs between two runs of the same thing hidden (ports, ids, times, hashes, generated names),
/// and each of `names` replaced by `[NAME]`.
fn redact(text: &str, names: &[&str]) -> String {
    let mut out = text.to_string();
    for n in names {
        out = out.replace(n, "[NAME]");
    }
    let mut rules = redactions();
    rules.extend([
        (r"token-[0-9a-z]{5}", "token-[NAME]"),
        (r"u-[0-9a-z]{5}", "u-[ID]"),
        // A binding's name is made from the request it carries out (a dry run makes one up).
        (r"\b(crtb|prtb|grb)-ra-[0-9a-f]{12}\b", "$1-ra-[NAME]"),
    ]);
    for (pattern, with) in rules {
        out = regex::Regex::new(pattern).unwrap().replace_all(&out, with).into_owned();
    }
    out
}

/// `redacted` output with what differs between two simulators hidden too (the simulator's generated names, uids,
/// resource versions and last-login stamps), for a snapshot pinned across runs.
fn pinned(redacted: &str) -> String {
    let mut out = redacted.to_string();
    for (pattern, with) in [
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[UID]"),
        (r#""resourceVersion": "\d+""#, r#""resourceVersion": "[RV]""#),
        (
            r#""cattle.io/last-login": "\d+""#,
            r#""cattle.io/last-login": "[EPOCH]""#,
        ),
        (
            r"\b(c|p|u|user|crtb|prtb|grb|token|gr|rt)-[bcdfghjklmnpqrstvwxz2456789]{5}\b",
            "$1-[GEN]",
        ),
    ] {
        out = regex::Regex::new(pattern).unwrap().replace_all(&out, with).into_owned();
    }
    out
}

/// A user who holds `tokens` tokens (each a login), so offboarding them plans more than `tokens` steps.
fn leaver(env: &SimCli, name: &str, tokens: usize) -> String {
    let id = env
        .rt
        .block_on(server::create_user(&env.sim, name, "a-long-password-0123", false));
    for _ in 0..tokens {
        env.rt
            .block_on(server::login_token(&env.sim, name, "a-long-password-0123"));
    }
    id
}

fn request_of(run: &Run) -> String {
    run.expect_code(3);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    v["request"].as_str().unwrap().to_string()
}

/// An approved offboarding whose outcome lists more steps than the store keeps of a result prints the same whole
/// result in both modes: the service answers the decision from the run it just did, not from the stored copy.
#[test]
fn an_approval_with_a_long_outcome_prints_the_same_in_both_modes() {
    let env = SimCli::start(RancherVersion::V2_13, 3);
    let approver = env.sim.tokens().approver.clone();
    env.run(&["workflows", "install", "offboard-user"]).expect_code(0);
    let srv = service(&env, &["offboard-user"]);
    let url = srv.url().to_string();
    let mut printed = Vec::new();
    for (mode, user, format) in [
        ("local", "leaver-a", "table"),
        ("local", "leaver-b", "json"),
        ("service", "leaver-c", "table"),
        ("service", "leaver-d", "json"),
    ] {
        let id = leaver(&env, user, 7);
        let (asker, decider) = match mode {
            "local" => (
                env.connected_env(Some(&env.sim.tokens().admin)),
                env.connected_env(Some(&approver)),
            ),
            _ => (
                through(&env, &url, &env.sim.tokens().admin),
                through(&env, &url, &approver),
            ),
        };
        let request = request_of(&env.exec(
            &["run", "offboard-user", "--input", &format!("user={user}"), "-o", "json"],
            &asker,
        ));
        let done = env.exec(&["approvals", "approve", &request, "-o", format], &decider);
        done.expect_code(0);
        assert!(
            done.stdout.matches("delete token").count() > rancher_workflows::runner::STORED_ITEMS
                || done.stdout.matches("\"delete-token\"").count() > rancher_workflows::runner::STORED_ITEMS,
            "{mode} {format}: every step is printed:\n{}",
            done.stdout
        );
        printed.push((mode, format, redact(&done.stdout, &[user, &id])));
    }
    insta::assert_snapshot!("long-outcome.table", pinned(&printed[0].2));
    insta::assert_snapshot!("long-outcome.json", pinned(&printed[1].2));
    for format in ["table", "json"] {
        let of = |m: &str| {
            &printed
                .iter()
                .find(|(mode, f, _)| *mode == m && *f == format)
                .unwrap()
                .2
        };
        assert_eq!(
            of("local"),
            of("service"),
            "{format}: an approval prints the same in local mode and through the service"
        );
    }
    env.rt.block_on(srv.shutdown());
}

/// Approve, deny, cancel and show print the same in local mode and through the service (table and JSON): the same
/// requests filed and decided in the same order in each mode's store, so even the audit entries line up. A denial
/// and a cancellation name who did it (`(by NAME)`) in both.
#[test]
fn decisions_and_show_print_the_same_in_both_modes() {
    let env = SimCli::start(RancherVersion::V2_13, 13);
    let (admin, approver) = (env.sim.tokens().admin.clone(), env.sim.tokens().approver.clone());
    let policy = format!("any-of:{}", env.sim.users().approver.id);
    let wf = "create-global-role-binding";
    env.run(&["workflows", "install", wf, "--policy", &policy])
        .expect_code(0);
    let srv = service(&env, &[]);
    let url = srv.url().to_string();
    env.exec(
        &["workflows", "install", wf, "--policy", &policy],
        &through(&env, &url, &admin),
    )
    .expect_code(0);
    let mut printed: Vec<(&str, &str, &str, String)> = Vec::new();
    let mut user = 0;
    for mode in ["local", "service"] {
        let (asker, decider) = match mode {
            "local" => (env.connected_env(Some(&admin)), env.connected_env(Some(&approver))),
            _ => (through(&env, &url, &admin), through(&env, &url, &approver)),
        };
        for format in ["table", "json"] {
            let mut file = || {
                user += 1;
                let name = format!("user{user:05}");
                let input = format!("user={name}");
                let id = request_of(&env.exec(
                    &["run", wf, "--input", &input, "--input", "role=user", "-o", "json"],
                    &asker,
                ));
                (id, name)
            };
            let mut keep = |what: &'static str, run: Run, name: &str| {
                // What Rancher generates for the binding an approval makes differs between the two runs, and so do the
                // target's names (a seeded `user00001` is shown as "User 00001").
                let display = format!("User {}", name.trim_start_matches("user"));
                let mut out = redact(&run.stdout, &[&display, name]);
                for (pattern, with) in [
                    (r#""resourceVersion": "\d+""#, r#""resourceVersion": "[N]""#),
                    (
                        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                        "[UID]",
                    ),
                ] {
                    out = regex::Regex::new(pattern).unwrap().replace_all(&out, with).into_owned();
                }
                printed.push((mode, format, what, format!("{}\n{out}", run.code)));
                run
            };
            let (a, name) = file();
            keep(
                "show",
                env.exec(&["approvals", "show", &a, "-o", format], &decider),
                &name,
            );
            keep(
                "approve",
                env.exec(&["approvals", "approve", &a, "-o", format], &decider),
                &name,
            )
            .expect_code(0);
            let (b, name) = file();
            let denied = keep(
                "deny",
                env.exec(&["approvals", "deny", &b, "-o", format], &decider),
                &name,
            );
            denied.expect_code(0);
            let (c, name) = file();
            let cancelled = keep(
                "cancel",
                env.exec(&["approvals", "cancel", &c, "-o", format], &asker),
                &name,
            );
            cancelled.expect_code(0);
            if format == "table" {
                assert!(
                    denied.stdout.trim_end().ends_with("is denied (by approver)"),
                    "{mode}: {}",
                    denied.stdout
                );
                assert!(
                    cancelled.stdout.trim_end().ends_with("is cancelled (by admin)"),
                    "{mode}: {}",
                    cancelled.stdout
                );
            }
        }
    }
    for format in ["table", "json"] {
        for what in ["show", "approve", "deny", "cancel"] {
            let of = |m: &str| {
                &printed
                    .iter()
                    .find(|(mode, f, w, _)| *mode == m && *f == format && *w == what)
                    .unwrap()
                    .3
            };
            assert_eq!(
                of("local"),
                of("service"),
                "approvals {what} -o {format}: local mode and the service print the same"
            );
        }
    }
    env.rt.block_on(srv.shutdown());
}

/// `approvals audit --verify` says in one line where the log was verified: in the local store (its chain and recorded
/// head), or here on the entries the service sent (their chain recomputed, up to the service's head); the rest of
/// its output is the same in both modes.
#[test]
fn audit_verify_says_where_it_was_checked() {
    let env = SimCli::start(RancherVersion::V2_13, 3);
    let admin = env.sim.tokens().admin.clone();
    env.run(&["workflows", "install", "list-users"]).expect_code(0);
    let srv = service(&env, &["list-users"]);
    let url = srv.url().to_string();
    let local = env.run(&["approvals", "audit", "--verify"]);
    let remote = env.exec(&["approvals", "audit", "--verify"], &through(&env, &url, &admin));
    local.expect_code(0);
    remote.expect_code(0);
    let checked = |out: &str| -> (String, Vec<String>) {
        let (line, rest): (Vec<&str>, Vec<&str>) = out.lines().partition(|l| l.starts_with("checked:"));
        assert_eq!(line.len(), 1, "one line says where the log was checked:\n{out}");
        (line[0].to_string(), rest.iter().map(|l| redact(l, &[])).collect())
    };
    let (here, local_rest) = checked(&local.stdout);
    let (there, remote_rest) = checked(&remote.stdout);
    assert!(here.contains("in the approval store"), "{here}");
    assert!(there.contains("the entries the approvals service sent"), "{there}");
    assert_eq!(local_rest, remote_rest, "otherwise the same");
    for (run, how) in [
        (env.run(&["approvals", "audit", "--verify", "-o", "json"]), "store"),
        (
            env.exec(
                &["approvals", "audit", "--verify", "-o", "json"],
                &through(&env, &url, &admin),
            ),
            "received",
        ),
    ] {
        let v: serde_json::Value = serde_json::from_str(&run.expect_code(0).stdout).unwrap();
        assert_eq!(
            (v["verified"].as_bool(), v["checked"].as_str()),
            (Some(true), Some(how)),
            "{v}"
        );
    }
    env.rt.block_on(srv.shutdown());
}

/// Every workflow of the catalog, run the same way (reads as they are, writes as dry runs on display names), prints
/// byte-identical documents in local mode and through the service.
#[test]
fn every_catalog_workflow_prints_the_same_in_both_modes() {
    let env = SimCli::start(RancherVersion::V2_13, 8);
    let admin = env.sim.tokens().admin.clone();
    let catalog = env.run(&["workflows", "list", "-o", "json"]);
    catalog.expect_code(0);
    let catalog: serde_json::Value = serde_json::from_str(&catalog.stdout).unwrap();
    let ids: Vec<String> = catalog
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    // Workflows left out here, with why (`the_access_control_workflows_print_the_same_in_both_modes` compares them).
    let skipped = [
        ("access-control-enable", "needs a provider's settings file"),
        ("access-control-allow", "needs an enabled authentication provider"),
        ("access-control-disallow", "needs an enabled authentication provider"),
        ("access-control-disable", "needs an enabled authentication provider"),
        ("access-control-switch-plan", "needs an enabled authentication provider"),
    ];
    // Inputs by workflow (none for the others); writes run as dry runs.
    let policy_inputs = rancher_access_tests::apply_policies_inputs();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("apply-policies", policy_inputs.iter().map(String::as_str).collect()),
        (
            "grant-project-role",
            vec![
                "project=downstream/Default",
                "user=user00005",
                "role=Project Member",
                "duration=2h",
            ],
        ),
        (
            "grant-cluster-role",
            vec!["cluster=downstream", "user=dave", "role=Cluster Member"],
        ),
        (
            "revoke-project-role",
            vec!["project=downstream/Default", "user=alice", "role=Project Owner"],
        ),
        (
            "revoke-cluster-role",
            vec!["cluster=downstream", "user=carol", "role=Cluster Owner"],
        ),
        ("create-global-role-binding", vec!["user=user00003", "role=user"]),
        ("delete-global-role-binding", vec!["user=alice", "role=user"]),
        ("offboard-user", vec!["user=dave"]),
        ("cleanup-tokens", vec!["filter=expired"]),
        (
            "rancher-api-request",
            vec![
                "operation=rk.users.create",
                r#"body={"username":"newbie","password":"x-not-real-0123"}"#,
            ],
        ),
        ("who-can", vec!["global-role=admin"]),
        ("identities-search", vec!["name=user0"]),
    ];
    let runnable: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| !skipped.iter().any(|(s, _)| s == id))
        .collect();
    for id in &runnable {
        env.run(&["workflows", "install", id]).expect_code(0);
    }
    let srv = service(&env, &runnable);
    let url = srv.url().to_string();
    let mut checked = 0;
    for id in &runnable {
        let writes = catalog
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == *id && w["writes"] == true);
        let mut args = vec!["run", id];
        for i in cases
            .iter()
            .find(|(c, _)| c == id)
            .map(|(_, i)| i.as_slice())
            .unwrap_or_default()
        {
            args.extend(["--input", i]);
        }
        if writes {
            args.push("--dry-run");
        }
        for format in ["json", "table"] {
            let mut a = args.clone();
            a.extend(["-o", format]);
            let local = env.run(&a);
            let remote = env.exec(&a, &through(&env, &url, &admin));
            assert_eq!(
                (local.code, redact(&local.stdout, &[])),
                (remote.code, redact(&remote.stdout, &[])),
                "{id} -o {format}: local mode and the service print the same\nlocal stderr: {}\nservice stderr: {}",
                local.stderr,
                remote.stderr
            );
            assert_eq!(local.code, 0, "{id} -o {format}: {}", local.stderr);
            // What is printed is pinned too, so a change of the result types cannot change a byte unnoticed.
            insta::assert_snapshot!(format!("catalog.{id}.{format}"), pinned(&redact(&local.stdout, &[])));
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} workflows compared");
    env.rt.block_on(srv.shutdown());
}

/// A read-only list asks Rancher only what it needs before its first item (the server's version, then the first
/// page) and opens no approval store: here the store file is swapped for one that is not a database (any open of it
/// fails), and the list runs.
#[test]
fn a_read_only_list_makes_two_calls_before_its_first_item_and_opens_no_store() {
    let env = SimCli::start(RancherVersion::V2_13, 3);
    env.run(&["workflows", "install", "list-users"]).expect_code(0);
    let db = env.tmp.path().join("state").join("approvals.db");
    assert!(db.exists(), "the install made the store");
    env.sim.clear_request_log();
    let kept = db.with_extension("kept");
    std::fs::rename(&db, &kept).unwrap();
    std::fs::write(
        &db,
        b"this is not a database, so opening it as the store fails".repeat(200),
    )
    .unwrap();
    let run = env.run(&["run", "list-users", "-o", "json"]);
    let broken = env.run(&["approvals", "list"]);
    std::fs::rename(&kept, &db).unwrap();
    assert_ne!(broken.code, 0, "the swapped store cannot be opened: {}", broken.stdout);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let users: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(users.as_array().map(Vec::len), Some(env.sim.count("users")));
    let log = env.sim.request_log();
    let paths: Vec<String> = log.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    let first_page = paths
        .iter()
        .position(|p| p.contains("/users") && !p.contains("me=true"))
        .unwrap_or_else(|| panic!("no list call: {paths:?}"));
    assert!(
        first_page < 2,
        "at most 2 Rancher calls before the first item, the list's first page included: {paths:?}"
    );
    assert!(!run.stderr.contains("audit head"), "{}", run.stderr);
}

/// `v` read as the type and written back: it must come back unchanged (nothing the type does not know, nothing it
/// adds).
macro_rules! through_type {
    ($t:ty, $what:expr, $v:expr) => {{
        let v: &serde_json::Value = $v;
        let typed: $t = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{}: {e}\n{v}", $what));
        let back = serde_json::to_value(&typed).unwrap();
        assert_eq!(&back, v, "{}: the answer is exactly its type", $what);
    }};
}

/// Every route of `/api/v1` answers its documented type: each real answer is read as the wire type the OpenAPI
/// document names for that route and status, and written back unchanged; and the document names a schema for every
/// success answer of every route.
#[test]
fn every_route_answers_the_type_its_openapi_schema_names() {
    use rancher_server::wire;
    use serde_json::json;
    let env = SimCli::start(RancherVersion::V2_13, 3);
    let t = env.sim.tokens().clone();
    let srv = service(&env, &[]);
    let admin = server::Api::new(srv.url(), Some(&t.admin));
    let approver = server::Api::new(srv.url(), Some(&t.approver));
    let doc: serde_json::Value = serde_json::from_str(&rancher_server::openapi_json()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    // Checks the document names `schema` for `method path` answering `status`, and the answer against the type.
    let mut check = |method: &str, path: &str, status: u16, schema: &str, got: (u16, serde_json::Value)| {
        assert_eq!(got.0, status, "{method} {path}: {}", got.1);
        let content = &doc["paths"][path][method]["responses"][status.to_string()]["content"];
        let named = content["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} {status}: no schema in the OpenAPI document: {content}"));
        assert_eq!(
            named,
            format!("#/components/schemas/{schema}"),
            "{method} {path} {status}"
        );
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} is described"
        );
        seen.insert(format!("{method} {path}"));
        got.1
    };
    let rt = &env.rt;
    let v = check("get", "/api/v1/me", 200, "Me", rt.block_on(admin.get("/api/v1/me")));
    through_type!(wire::Me, "me", &v);
    let v = check(
        "post",
        "/api/v1/workflows/{id}/install",
        200,
        "InstallationView",
        rt.block_on(admin.post("/api/v1/workflows/create-global-role-binding/install", json!({}))),
    );
    through_type!(wire::InstallationView, "install", &v);
    rt.block_on(admin.post("/api/v1/workflows/list-users/install", json!({})));
    let v = check(
        "put",
        "/api/v1/workflows/{id}/policy",
        200,
        "InstallationView",
        rt.block_on(admin.put(
            "/api/v1/workflows/create-global-role-binding/policy",
            json!({"policy": {"kind": "installer"}}),
        )),
    );
    through_type!(wire::InstallationView, "set-policy", &v);
    let v = check(
        "get",
        "/api/v1/workflows",
        200,
        "Catalog",
        rt.block_on(admin.get("/api/v1/workflows")),
    );
    through_type!(wire::Catalog, "catalog", &v);
    let v = check(
        "get",
        "/api/v1/workflows/{id}",
        200,
        "CatalogEntry",
        rt.block_on(admin.get("/api/v1/workflows/list-users")),
    );
    through_type!(wire::CatalogEntry, "workflow", &v);
    let v = check(
        "post",
        "/api/v1/runs",
        200,
        "RunAnswer",
        rt.block_on(admin.post("/api/v1/runs", json!({"workflow": "list-users"}))),
    );
    through_type!(wire::RunAnswer, "run", &v);
    // A streamed list: every line is a `ListLine`.
    let lines = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/v1/runs", srv.url()))
            .bearer_auth(&t.admin)
            .header("accept", "application/x-ndjson")
            .json(&json!({"workflow": "list-users", "rows": true}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let ndjson = &doc["paths"]["/api/v1/runs"]["post"]["responses"]["200"]["content"]["application/x-ndjson"];
    assert_eq!(ndjson["schema"]["$ref"], "#/components/schemas/ListLine", "{ndjson}");
    let lines: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() > 2, "{lines:?}");
    for l in &lines {
        through_type!(wire::ListLine, "list line", l);
    }
    // A request waiting, approved into a timed grant, then an extension and a revocation.
    let run = json!({"workflow": "create-global-role-binding", "inputs": {"user": "user00001", "role": "clusters-create", "duration": "8h"}});
    let pending = check(
        "post",
        "/api/v1/runs",
        202,
        "RunAnswer",
        rt.block_on(admin.post("/api/v1/runs", run)),
    );
    through_type!(wire::RunAnswer, "run (pending)", &pending);
    let id = pending["request"].as_str().unwrap().to_string();
    let v = check(
        "get",
        "/api/v1/requests",
        200,
        "RequestPage",
        rt.block_on(admin.get("/api/v1/requests")),
    );
    through_type!(wire::RequestPage, "requests", &v);
    let v = check(
        "get",
        "/api/v1/requests/{id}",
        200,
        "RequestView",
        rt.block_on(admin.get(&format!("/api/v1/requests/{id}"))),
    );
    through_type!(wire::RequestView, "request", &v);
    let v = check(
        "post",
        "/api/v1/requests/{id}/approve",
        200,
        "RequestView",
        rt.block_on(approver.post(&format!("/api/v1/requests/{id}/approve"), json!({"reason": "ok"}))),
    );
    through_type!(wire::RequestView, "approve", &v);
    assert!(v["result"].is_object(), "the run the approval made: {v}");
    let v = check(
        "get",
        "/api/v1/grants",
        200,
        "GrantList",
        rt.block_on(admin.get("/api/v1/grants")),
    );
    through_type!(wire::GrantList, "grants", &v);
    let v = check(
        "get",
        "/api/v1/policies",
        200,
        "InstalledPoliciesAnswer",
        rt.block_on(admin.get("/api/v1/policies")),
    );
    through_type!(rancher_server::policies_api::InstalledPoliciesAnswer, "policies", &v);
    let v = check(
        "post",
        "/api/v1/grants/{id}/extend",
        202,
        "Extended",
        rt.block_on(admin.post(&format!("/api/v1/grants/{id}/extend"), json!({"by": "1h"}))),
    );
    through_type!(wire::Extended, "extend", &v);
    let ext = v["request"].as_str().unwrap().to_string();
    let v = check(
        "post",
        "/api/v1/requests/{id}/deny",
        200,
        "RequestView",
        rt.block_on(approver.post(&format!("/api/v1/requests/{ext}/deny"), json!({}))),
    );
    through_type!(wire::RequestView, "deny", &v);
    let again = rt.block_on(admin.post(&format!("/api/v1/grants/{id}/extend"), json!({"by": "1h"})));
    let again = again.1["request"].as_str().unwrap().to_string();
    let v = check(
        "post",
        "/api/v1/requests/{id}/cancel",
        200,
        "RequestView",
        rt.block_on(admin.post(&format!("/api/v1/requests/{again}/cancel"), json!({}))),
    );
    through_type!(wire::RequestView, "cancel", &v);
    let v = check(
        "post",
        "/api/v1/grants/{id}/revoke",
        200,
        "Revoked",
        rt.block_on(admin.post(&format!("/api/v1/grants/{id}/revoke"), json!({}))),
    );
    through_type!(wire::Revoked, "revoke", &v);
    let v = check(
        "get",
        "/api/v1/audit",
        200,
        "AuditPage",
        rt.block_on(admin.get("/api/v1/audit")),
    );
    through_type!(wire::AuditPage, "audit", &v);
    let v = check(
        "get",
        "/api/v1/audit/verify",
        200,
        "AuditVerified",
        rt.block_on(admin.get("/api/v1/audit/verify")),
    );
    through_type!(wire::AuditVerified, "verify", &v);
    let v = check(
        "get",
        "/api/v1/webhooks/dead-letters",
        200,
        "DeadLetters",
        rt.block_on(admin.get("/api/v1/webhooks/dead-letters")),
    );
    through_type!(wire::DeadLetters, "dead letters", &v);
    // An error answer is `ErrorAnswer`.
    let (st, e) = rt.block_on(admin.get("/api/v1/requests/req-nope"));
    assert!(st >= 400, "{e}");
    through_type!(wire::ErrorAnswer, "error", &e);
    // The audit export: NDJSON as the document says, one entry a line with the fields its hash covers.
    let export = rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{}/api/v1/audit/export?format=jsonl", srv.url()))
            .bearer_auth(&t.admin)
            .send()
            .await
            .unwrap();
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        (r.status().as_u16(), ct, r.text().await.unwrap())
    });
    assert_eq!(export.0, 200, "{}", export.2);
    assert!(export.1.starts_with("application/x-ndjson"), "{}", export.1);
    assert!(
        doc["paths"]["/api/v1/audit/export"]["get"]["responses"]["200"]["content"]["application/x-ndjson"].is_object(),
        "the document says the export is NDJSON"
    );
    let lines: Vec<serde_json::Value> = export.2.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        for field in ["seq", "at", "actor", "kind", "detail", "prev_hash", "hash"] {
            assert!(!l[field].is_null(), "{field} missing from {l}");
        }
    }
    seen.insert("get /api/v1/audit/export".to_string());
    // Every route of the document was answered here.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            assert!(
                seen.contains(&format!("{method} {path}")),
                "{method} {path} was not checked"
            );
        }
    }
    env.rt.block_on(srv.shutdown());
}

/// The access-control workflows the catalog test leaves out (they need a provider's settings or an enabled provider)
/// print the same documents in both modes: the enable as a dry run while access control is off, then, with Active
/// Directory turned on for real (from a store of its own, so the compared stores keep the same installations), the
/// others as dry runs.
#[test]
fn the_access_control_workflows_print_the_same_in_both_modes() {
    let env = SimCli::start(RancherVersion::V2_13, 5);
    let admin = env.sim.tokens().admin.clone();
    // Inline settings and password: through the service, `run` sends its inputs as given (only
    // `rancherctl access-control enable` reads the files on this machine), and the service reads no host file.
    let enable = vec![
        "provider=ad",
        r#"config={"servers": ["ad.example.com"], "serviceAccountUsername": "svc", "serviceAccountPassword": "svc-S3cret", "userSearchBase": "dc=example,dc=com"}"#,
        "mode=required",
        "allow=Engineering",
        "test-user=jdoe",
        "test-password=jdoe-password",
    ];
    let ids = [
        "access-control-enable",
        "access-control-allow",
        "access-control-disallow",
        "access-control-switch-plan",
        "access-control-disable",
    ];
    for id in ids {
        env.run(&["workflows", "install", id]).expect_code(0);
    }
    let srv = service(&env, &ids);
    let url = srv.url().to_string();
    let compare = |id: &str, inputs: &[&str]| {
        let mut args = vec!["run", id];
        for i in inputs {
            args.extend(["--input", *i]);
        }
        args.push("--dry-run");
        for format in ["json", "table"] {
            let mut a = args.clone();
            a.extend(["-o", format]);
            let local = env.run(&a);
            let remote = env.exec(&a, &through(&env, &url, &admin));
            assert_eq!(
                (local.code, redact(&local.stdout, &[])),
                (remote.code, redact(&remote.stdout, &[])),
                "{id} -o {format}: local mode and the service print the same\nlocal stderr: {}\nservice stderr: {}",
                local.stderr,
                remote.stderr
            );
            assert_eq!(local.code, 0, "{id} -o {format}: {}", local.stderr);
            assert!(!local.stdout.trim().is_empty(), "{id} -o {format} printed something");
            insta::assert_snapshot!(format!("access.{id}.{format}"), pinned(&redact(&local.stdout, &[])));
        }
    };
    compare("access-control-enable", &enable);

    // Turn Active Directory on, from another state directory (its own store, no approval needed there).
    let mut setup = env.connected_env(Some(&admin));
    setup.retain(|(k, _)| *k != "RANCHERCTL_STATE_DIR");
    setup.push((
        "RANCHERCTL_STATE_DIR",
        env.tmp.path().join("setup-state").display().to_string(),
    ));
    env.exec(
        &["workflows", "install", "access-control-enable", "--policy", "none"],
        &setup,
    )
    .expect_code(0);
    let mut on = vec!["run", "access-control-enable"];
    for i in &enable {
        on.extend(["--input", *i]);
    }
    env.exec(&on, &setup).expect_code(0);
    assert_eq!(
        env.sim.object("authconfigs", "activedirectory").unwrap()["enabled"],
        serde_json::json!(true),
        "Active Directory is on"
    );

    compare("access-control-allow", &["identities=Anna Smith"]);
    compare("access-control-disallow", &["identities=Engineering"]);
    compare("access-control-switch-plan", &["to=github"]);
    compare("access-control-disable", &[]);
    env.rt.block_on(srv.shutdown());
}

/// `rancherctl --server URL run access-control-enable` with inputs that name files on the operator's machine (the
/// settings file, the test password's file) reads them there and sends their contents, as `rancherctl access-control
/// enable --config` does: the service never gets a path, the run prints what local mode prints, and the secrets in
/// those files show nowhere. A secret file others may read is refused on the operator's machine, naming the fix.
#[test]
fn run_reads_file_inputs_on_the_operators_machine_for_the_service() {
    use std::os::unix::fs::PermissionsExt;
    let env = SimCli::start(RancherVersion::V2_13, 5);
    let admin = env.sim.tokens().admin.clone();
    let settings = env.tmp.path().join("ad.json");
    std::fs::write(
        &settings,
        r#"{"servers": ["ad.example.com"], "serviceAccountUsername": "svc", "serviceAccountPassword": "svc-F1le-S3cret", "userSearchBase": "dc=example,dc=com"}"#,
    )
    .unwrap();
    std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o600)).unwrap();
    let password = env.tmp.path().join("jdoe.pw");
    std::fs::write(&password, "jdoe-F1le-password\n").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.run(&["workflows", "install", "access-control-enable"])
        .expect_code(0);
    let srv = service(&env, &["access-control-enable"]);
    let url = srv.url().to_string();
    let config = format!("config={}", settings.display());
    let password_file = format!("test-password-file={}", password.display());
    let secrets = ["svc-F1le-S3cret", "jdoe-F1le-password"];
    for format in ["json", "table"] {
        let a = [
            "run",
            "access-control-enable",
            "--input",
            "provider=ad",
            "--input",
            &config,
            "--input",
            "mode=required",
            "--input",
            "allow=Engineering",
            "--input",
            "test-user=jdoe",
            "--input",
            &password_file,
            "--dry-run",
            "-o",
            format,
        ];
        let local = env.run(&a);
        let remote = env.exec(&a, &through(&env, &url, &admin));
        assert_eq!(remote.code, 0, "-o {format}: the service ran it\n{}", remote.stderr);
        assert_eq!(
            (local.code, redact(&local.stdout, &[])),
            (remote.code, redact(&remote.stdout, &[])),
            "-o {format}: local mode and the service print the same\nlocal stderr: {}\nservice stderr: {}",
            local.stderr,
            remote.stderr
        );
        for run in [&local, &remote] {
            for s in secrets {
                assert!(
                    !run.stdout.contains(s) && !run.stderr.contains(s),
                    "-o {format}: a secret from a file shows\n{}\n{}",
                    run.stdout,
                    run.stderr
                );
            }
        }
    }

    // A password file others may read is refused before anything is sent, and the refusal says how to fix it.
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = env.exec(
        &[
            "run",
            "access-control-enable",
            "--input",
            "provider=ad",
            "--input",
            &config,
            "--input",
            "test-user=jdoe",
            "--input",
            &password_file,
            "--dry-run",
        ],
        &through(&env, &url, &admin),
    );
    assert_ne!(open.code, 0, "{}", open.stdout);
    assert!(
        open.stderr.contains("chmod 600") && !open.stderr.contains("never reads files on its own host"),
        "{}",
        open.stderr
    );
    for s in secrets {
        assert!(!open.stdout.contains(s) && !open.stderr.contains(s), "{}", open.stderr);
    }
    env.rt.block_on(srv.shutdown());
}
