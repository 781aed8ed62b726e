//! Access review end to end against rancher-sim over HTTPS: `access-review` names roles granted directly and
//! through groups (from the group principals the server keeps on login tokens), shows inherited role templates,
//! flags admins, disabled-but-bound users, users without bindings and orphaned bindings the test creates;
//! `who-can` finds holders directly, through groups and by inheritance; `offboard-user` applies exactly its pinned
//! plan; `-o csv` of the binary parses as RFC 4180.

use rancher_access_tests::cli::SimCli;
use rancher_access_tests::{runner, session};
use rancher_sim::{RancherVersion, SimConfig, SimHandle, Simulator};
use rancher_workflows::{Approved, Runner, Session, Submitted};
use serde_json::{json, Value};

const GROUP: &str = "activedirectory_group://CN=Engineering,OU=Groups,DC=example,DC=com";

/// A simulator with two users who have no binding, and the shapes the review must recognise: a group grant that
/// reaches dave through his login token's group principals, an inheriting role template held by bob, and three
/// orphaned bindings.
async fn world() -> SimHandle {
    let sim = Simulator::start(
        SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .users(2)
            .seed(5)
            .port(0),
    )
    .await
    .expect("simulator starts");
    let u = sim.users().clone();
    let dave = u.standard[3].id.clone();
    let bob = u.standard[1].id.clone();
    let carol = u.standard[2].id.clone();
    let ds = u.downstream_cluster.clone();
    assert!(sim.insert_object(
        "tokens",
        json!({"metadata": {"name": "token-davelogin", "labels": {"authn.management.cattle.io/token-userId": dave, "authn.management.cattle.io/kind": "session"}},
               "userId": dave, "isDerived": false, "ttl": 57_600_000, "expiresAt": "2099-01-01T00:00:00Z", "authProvider": "activedirectory",
               "groupPrincipals": [{"metadata": {"name": GROUP}, "principalType": "group", "provider": "activedirectory"}]})
    ));
    assert!(sim.insert_object(
        "clusterroletemplatebindings",
        json!({"metadata": {"name": "crtb-engineers", "namespace": ds}, "clusterName": ds, "roleTemplateName": "nodes-view", "groupPrincipalName": GROUP})
    ));
    assert!(sim.insert_object(
        "roletemplates",
        json!({"metadata": {"name": "team-lead"}, "displayName": "Team Lead", "context": "cluster", "roleTemplateNames": ["cluster-member"], "rules": []})
    ));
    assert!(sim.insert_object(
        "clusterroletemplatebindings",
        json!({"metadata": {"name": "crtb-lead", "namespace": ds}, "clusterName": ds, "roleTemplateName": "team-lead", "userName": bob})
    ));
    // Orphans: a role template that is gone, a user that is gone, a global role binding of a deleted user.
    assert!(sim.insert_object(
        "clusterroletemplatebindings",
        json!({"metadata": {"name": "crtb-stale", "namespace": ds}, "clusterName": ds, "roleTemplateName": "gone-role", "userName": carol})
    ));
    let prtb = sim
        .objects("projectroletemplatebindings")
        .into_iter()
        .next()
        .expect("a seeded PRTB");
    assert!(sim.insert_object(
        "projectroletemplatebindings",
        json!({"metadata": {"name": "prtb-ghost", "namespace": prtb["metadata"]["namespace"]}, "projectName": prtb["projectName"], "roleTemplateName": "read-only", "userName": "u-gone1"})
    ));
    assert!(sim.insert_object(
        "globalrolebindings",
        json!({"metadata": {"name": "grb-ghost"}, "globalRoleName": "user", "userName": "u-ghost"})
    ));
    sim
}

async fn installed(r: &Runner, admin: &Session) {
    for w in ["access-review", "who-can", "offboard-user"] {
        r.install(admin, w, None).await.unwrap();
    }
}

async fn now(r: &Runner, s: &Session, wf: &str, inputs: Value) -> rancher_workflows::RunOutput {
    match r.submit(s, wf, inputs, None, false).await.unwrap() {
        Submitted::Succeeded { result } => *result,
        other => panic!("{wf} runs at once: {other:?}"),
    }
}

fn user<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == json!(id))
        .unwrap_or_else(|| panic!("{id} in the review: {doc}"))
}

#[tokio::test]
async fn the_review_names_direct_group_and_inherited_grants_and_flags_orphans() {
    let sim = world().await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    installed(&r, &admin).await;
    let u = sim.users().clone();
    // carol is disabled but still bound.
    admin
        .client
        .users()
        .patch(rancher_api::requests::RkUsersPatch::new(
            &u.standard[2].id,
            json!({"enabled": false}),
        ))
        .await
        .unwrap();

    let out = now(&r, &admin, "access-review", json!({})).await;
    let doc = &out.result;

    let alice = user(doc, &u.standard[0].id);
    assert!(
        alice["cluster_roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["role"] == "cluster-member" && g["via"] == "direct"),
        "{alice}"
    );
    assert!(
        alice["project_roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["role"] == "project-owner" && g["via"] == "direct"),
        "{alice}"
    );
    assert!(
        alice["global_roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["role"] == "user"),
        "{alice}"
    );

    let dave = user(doc, &u.standard[3].id);
    let via_group = dave["cluster_roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["role"] == "nodes-view")
        .unwrap_or_else(|| panic!("dave holds nodes-view through his group: {dave}"));
    assert_eq!(via_group["via"], json!(format!("group {GROUP}")));
    assert_eq!(
        via_group["binding"],
        json!(format!(
            "clusterroletemplatebinding/{}/crtb-engineers",
            u.downstream_cluster
        ))
    );
    assert_eq!(dave["groups"], json!([GROUP]));

    let bob = user(doc, &u.standard[1].id);
    let lead = bob["cluster_roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["role"] == "team-lead")
        .unwrap();
    assert_eq!(
        lead["effective"],
        json!(["team-lead", "cluster-member"]),
        "inherited role templates are shown"
    );

    let admin_row = user(doc, &u.admin.id);
    assert_eq!(admin_row["admin"], json!(true));
    assert!(admin_row["flags"].as_array().unwrap().contains(&json!("admin")));
    assert!(user(doc, &u.standard[2].id)["flags"]
        .as_array()
        .unwrap()
        .contains(&json!("disabled-but-bound")));
    let lonely = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["flags"].as_array().unwrap().contains(&json!("no-bindings")))
        .count();
    assert!(lonely >= 2, "the two bulk users have no binding: {doc}");

    let orphans = doc["orphaned_bindings"].as_array().unwrap();
    let why = |id: &str| {
        orphans
            .iter()
            .find(|b| b["id"].as_str().is_some_and(|x| x.ends_with(id)))
            .map(|b| b["orphaned"].to_string())
            .unwrap_or_default()
    };
    assert!(
        why("crtb-stale").contains("role template gone-role does not exist"),
        "{orphans:?}"
    );
    assert!(why("prtb-ghost").contains("user u-gone1 does not exist"), "{orphans:?}");
    assert!(why("grb-ghost").contains("user u-ghost does not exist"), "{orphans:?}");
    assert!(
        !orphans
            .iter()
            .any(|b| b["id"].as_str().unwrap().ends_with("crtb-engineers")),
        "a live group grant is no orphan"
    );

    // The table has one row per grant, and rows for the orphans whose user is gone.
    let t = out.table.as_ref().unwrap();
    assert!(
        t.rows.iter().any(|r| r[0] == "u-ghost" && r[8].contains("orphaned")),
        "{:?}",
        t.rows
    );

    // Filters: one user; one role (inheritance counts).
    let one = now(&r, &admin, "access-review", json!({"user": "alice"})).await;
    assert_eq!(one.result["users"].as_array().unwrap().len(), 1);
    let members = now(&r, &admin, "access-review", json!({"role": "cluster-member"})).await;
    let ids: Vec<&str> = members.result["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["user"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&u.standard[0].id.as_str()) && ids.contains(&u.standard[1].id.as_str()),
        "{ids:?}"
    );
    let e = r
        .submit(&admin, "access-review", json!({"user": "nobody-here"}), None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("list-users"), "{e}");
}

#[tokio::test]
async fn who_can_finds_holders_directly_through_groups_and_by_inheritance() {
    let sim = world().await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    installed(&r, &admin).await;
    let u = sim.users().clone();
    let ds = u.downstream_cluster.clone();

    let out = now(&r, &admin, "who-can", json!({"role": "cluster-member", "cluster": ds})).await;
    let rows = out.result.as_array().unwrap();
    let holder = |id: &str| rows.iter().find(|x| x["user"] == json!(id)).cloned();
    assert_eq!(holder(&u.standard[0].id).unwrap()["via"], json!("direct"));
    assert!(
        holder(&u.standard[1].id).unwrap()["via"]
            .as_str()
            .unwrap()
            .contains("inherits cluster-member from team-lead"),
        "{rows:?}"
    );

    let nodes = now(&r, &admin, "who-can", json!({"role": "nodes-view", "cluster": ds})).await;
    assert!(nodes
        .result
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["user"] == json!(u.standard[3].id) && x["via"] == json!(format!("group {GROUP}"))));

    let admins = now(&r, &admin, "who-can", json!({"global-role": "admin"})).await;
    let ids: Vec<&str> = admins
        .result
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["user"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&u.admin.id.as_str()) && ids.contains(&u.approver.id.as_str()) && ids.len() == 2,
        "{ids:?}"
    );

    let e = r
        .submit(&admin, "who-can", json!({}), None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("global-role=admin"), "{e}");
    let e = r
        .submit(&admin, "who-can", json!({"role": "no-such-role"}), None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("list-role-templates"), "{e}");
}

#[tokio::test]
async fn offboarding_applies_exactly_the_pinned_plan_once_and_refuses_the_caller() {
    let sim = world().await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let approver = session(&sim, &sim.tokens().approver).await;
    let r = runner();
    installed(&r, &admin).await;
    let bob = sim.users().standard[1].id.clone();

    let e = r
        .submit(&approver, "offboard-user", json!({"user": "approver"}), None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("yourself"), "{e}");

    let dry = match r
        .submit(&approver, "offboard-user", json!({"user": "bob"}), None, true)
        .await
        .unwrap()
    {
        Submitted::Succeeded { result } => result,
        other => panic!("{other:?}"),
    };
    assert!(!dry.planned.is_empty(), "a dry run shows the writes");
    let deletes_before = sim.writes("clusterroletemplatebindings", "delete") + sim.writes("tokens", "delete");
    assert_eq!(deletes_before, 0);

    let Submitted::Pending { request, .. } = r
        .submit(&approver, "offboard-user", json!({"user": "bob"}), None, false)
        .await
        .unwrap()
    else {
        panic!("needs approval")
    };
    let stored = r.get(&request).await.unwrap();
    assert_eq!(stored.inputs["user"], json!(bob), "the username is pinned to the id");
    let shown = stored.inputs["plan"]["shown"].to_string();
    assert!(
        shown.contains("crtb-lead")
            && shown.contains("prtb")
            && shown.contains("delete token")
            && shown.contains("disable user"),
        "{shown}"
    );
    let steps = stored.inputs["plan"]["steps"].as_array().unwrap().len();

    // Something appears after submit: it is not in the plan approvers saw, so it is left alone.
    assert!(sim.insert_object(
        "clusterroletemplatebindings",
        json!({"metadata": {"name": "crtb-late", "namespace": sim.users().downstream_cluster}, "clusterName": sim.users().downstream_cluster, "roleTemplateName": "nodes-view", "userName": bob})
    ));
    let out = match r.approve(&admin, &request, None).await.unwrap() {
        Approved::Succeeded { result, .. } => result,
        other => panic!("{other:?}"),
    };
    assert_eq!(out.result["done"], json!(steps), "{}", out.summary);
    assert_eq!(out.result["failed"], json!(0));
    let left: Vec<Value> = sim
        .objects("clusterroletemplatebindings")
        .into_iter()
        .filter(|b| b["userName"] == json!(bob) && b["metadata"]["deletionTimestamp"].is_null())
        .collect();
    assert_eq!(
        left.len(),
        1,
        "only the binding made after approval is left (deleted ones may linger a moment, finalizing): {left:?}"
    );
    assert!(
        sim.objects("tokens").iter().all(|t| t["userId"] != json!(bob)),
        "bob's tokens are gone"
    );
    assert!(sim
        .objects("globalrolebindings")
        .iter()
        .all(|b| b["userName"] != json!(bob) || b["metadata"]["deletionTimestamp"].is_string()));
    assert_eq!(sim.object("users", &bob).unwrap()["enabled"], json!(false));
}

/// A tiny RFC 4180 reader: fields split on commas outside quotes, `""` inside quotes is one quote.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut cur)),
                (c, _) => cur.push(c),
            }
        }
        assert!(!quoted, "unterminated quote in {line:?}");
        fields.push(cur);
        rows.push(fields);
    }
    rows
}

#[test]
fn csv_output_of_the_binary_parses_and_keeps_formulas_as_text() {
    let env = SimCli::start(RancherVersion::V2_13, 3);
    // A display name that a spreadsheet would run, and a comma and quote to be quoted.
    let alice = env.sim.users().standard[0].id.clone();
    let admin_client = rancher_access_tests::client(&env.sim, &env.sim.tokens().admin);
    env.rt
        .block_on(admin_client.users().patch(rancher_api::requests::RkUsersPatch::new(
            &alice,
            json!({"username": "=cmd|' /C calc'!A0"}),
        )))
        .ok();
    let connected = env.connected_env(Some(&env.sim.tokens().admin));
    let run = |args: &[&str]| {
        rancher_access_tests::cli::Run::from_output(
            rancher_access_tests::cli::command(args, &connected)
                .output()
                .expect("runs"),
        )
    };
    run(&["workflows", "install", "access-review"]).expect_code(0);
    run(&["workflows", "install", "token-report"]).expect_code(0);
    for wf in ["access-review", "token-report"] {
        let out = run(&["run", wf, "-o", "csv"]);
        out.expect_code(0);
        let rows = parse_csv(&out.stdout);
        assert!(rows.len() > 1, "{wf}: a header and rows: {}", out.stdout);
        let width = rows[0].len();
        assert!(
            rows.iter().all(|r| r.len() == width),
            "{wf}: every row has the header's width:\n{}",
            out.stdout
        );
        for r in &rows {
            for c in r {
                assert!(
                    !c.starts_with(['=', '+', '-', '@']),
                    "{wf}: a cell would run as a formula: {c:?}"
                );
            }
        }
        assert!(out.stdout.ends_with("\r\n"));
    }
    let review = run(&["run", "access-review", "-o", "csv"]);
    assert_eq!(parse_csv(&review.stdout)[0][0], "USER");
    let json_doc = run(&["run", "token-report", "-o", "json"]);
    let doc: Value = serde_json::from_str(&json_doc.stdout).expect("one JSON document");
    assert!(
        doc["totals"]["tokens"].as_u64().unwrap() > 0 && doc["users"].is_array(),
        "{doc}"
    );
    let refused = run(&["workflows", "list", "-o", "csv"]);
    assert_ne!(refused.code, 0, "csv is only for tables");
}

/// The last enabled admin cannot be offboarded, even by someone allowed to read everything (an auditor role):
/// it would leave nobody able to manage Rancher. Refused before anything is filed, with how to fix it.
#[tokio::test]
async fn offboarding_the_last_admin_is_refused() {
    let sim = world().await;
    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    installed(&r, &admin).await;
    // alice becomes an auditor (a global role that reads everything); the second admin loses the admin role:
    // `admin` is the last one.
    let alice = sim.users().standard[0].id.clone();
    assert!(sim.insert_object(
        "globalroles",
        json!({"metadata": {"name": "auditor"}, "displayName": "Auditor", "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]})
    ));
    assert!(sim.insert_object(
        "globalrolebindings",
        json!({"metadata": {"name": "grb-alice-auditor"}, "globalRoleName": "auditor", "userName": alice})
    ));
    let approver = sim.user_id("approver").expect("approver");
    let grb = sim
        .objects("globalrolebindings")
        .into_iter()
        .find(|b| b["userName"] == json!(approver) && b["globalRoleName"] == "admin")
        .expect("the approver's admin binding");
    let name = grb["metadata"]["name"].as_str().unwrap().to_string();
    rancher_access_tests::client(&sim, &sim.tokens().admin)
        .send(&rancher_api::requests::RkGlobalrolebindingsDelete::new(&name))
        .await
        .expect("the approver's admin binding is removed");
    let alice_session = session(&sim, &sim.tokens().user).await;
    let before = sim.writes("globalrolebindings", "delete");
    let e = r
        .submit(&alice_session, "offboard-user", json!({"user": "admin"}), None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("last enabled admin") && e.contains("Give another user the admin global role first"),
        "{e}"
    );
    assert!(r.list(None).await.unwrap().is_empty(), "nothing was filed");
    assert_eq!(sim.writes("globalrolebindings", "delete"), before);
}
