//! `access-review`, `who-can` and an `offboard-user` dry run over one world with every shape they read (direct,
//! group and inherited grants, a UserAttribute's groups, a legacy login token's groups, cluster and project
//! bindings, orphans of every kind, a disabled user, a system account): the documents, summaries and tables they
//! produce are pinned by snapshots, recorded before the reviews moved to an interned index with the users streamed
//! past it, so a change in how bindings are indexed or users read shows up here. Times are masked (the simulator
//! stamps some with the wall clock).

use rancher_access_tests::{runner, session};
use rancher_sim::{RancherVersion, SimConfig, Simulator};
use rancher_workflows::Submitted;
use serde_json::{json, Value};

const GROUP: &str = "activedirectory_group://CN=Engineering,OU=Groups,DC=example,DC=com";
const ADMINS: &str = "activedirectory_group://CN=Domain Admins,OU=Groups,DC=example,DC=com";

/// Every RFC 3339 time in `v` as `<time>`.
fn masked(v: Value) -> Value {
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)").unwrap();
    match v {
        Value::String(s) => Value::String(time.replace_all(&s, "<time>").into_owned()),
        Value::Array(a) => Value::Array(a.into_iter().map(masked).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, masked(v))).collect()),
        other => other,
    }
}

#[tokio::test]
async fn reviews_who_can_and_an_offboarding_plan_are_the_documents_pinned() {
    let sim = Simulator::start(
        SimConfig::default()
            .rancher_version(RancherVersion::V2_13)
            .users(6)
            .bindings(9)
            .seed(7)
            .port(0),
    )
    .await
    .expect("simulator starts");
    let u = sim.users().clone();
    let (alice, bob, carol, dave) = (
        u.standard[0].id.clone(),
        u.standard[1].id.clone(),
        u.standard[2].id.clone(),
        u.standard[3].id.clone(),
    );
    let ds = u.downstream_cluster.clone();
    // dave is in Engineering by a legacy login token; bob by his UserAttribute (and in Domain Admins too).
    assert!(sim.insert_object(
        "tokens",
        json!({"metadata": {"name": "token-davelogin", "labels": {"authn.management.cattle.io/token-userId": dave, "authn.management.cattle.io/kind": "session"}},
               "userId": dave, "isDerived": false, "ttl": 57_600_000, "expiresAt": "2099-01-01T00:00:00Z", "authProvider": "activedirectory",
               "groupPrincipals": [{"metadata": {"name": GROUP}, "principalType": "group", "provider": "activedirectory"}]})
    ));
    assert!(sim.insert_object(
        "userattributes",
        json!({"metadata": {"name": bob}, "UserName": bob, "LastRefresh": "2026-11-30T10:00:00Z", "NeedsRefresh": false,
               "GroupPrincipals": {"activedirectory": {"Items": [
                   {"metadata": {"name": GROUP}, "principalType": "group", "provider": "activedirectory"},
                   {"metadata": {"name": ADMINS}, "principalType": "group", "provider": "activedirectory"}]}}})
    ));
    let crtb = |name: &str, role: &str, subject: Value| {
        let mut b = json!({"metadata": {"name": name, "namespace": ds}, "clusterName": ds, "roleTemplateName": role});
        b.as_object_mut().unwrap().extend(subject.as_object().unwrap().clone());
        b
    };
    assert!(sim.insert_object(
        "clusterroletemplatebindings",
        crtb("crtb-engineers", "nodes-view", json!({"groupPrincipalName": GROUP}))
    ));
    assert!(sim.insert_object(
        "roletemplates",
        json!({"metadata": {"name": "team-lead"}, "displayName": "Team Lead", "context": "cluster", "roleTemplateNames": ["cluster-member"], "rules": []})
    ));
    assert!(sim.insert_object(
        "clusterroletemplatebindings",
        crtb("crtb-lead", "team-lead", json!({"userName": bob}))
    ));
    assert!(sim.insert_object(
        "clusterroletemplatebindings",
        crtb("crtb-stale", "gone-role", json!({"userName": carol}))
    ));
    assert!(sim.insert_object(
        "clusterroletemplatebindings",
        crtb("crtb-nobody", "cluster-member", json!({}))
    ));
    assert!(sim.insert_object(
        "clusterroletemplatebindings",
        json!({"metadata": {"name": "crtb-grb-copy", "namespace": ds, "labels": {"authz.management.cattle.io/grb-owner": "grb-owner1"}},
               "clusterName": ds, "roleTemplateName": "cluster-owner", "userName": alice})
    ));
    assert!(sim.insert_object(
        "globalrolebindings",
        json!({"metadata": {"name": "grb-admins"}, "globalRoleName": "admin", "groupPrincipalName": ADMINS})
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
        "projectroletemplatebindings",
        json!({"metadata": {"name": "prtb-lost", "namespace": "c-lost"}, "projectName": "c-lost:p-lost", "roleTemplateName": "project-member", "userName": dave})
    ));
    assert!(sim.insert_object(
        "globalrolebindings",
        json!({"metadata": {"name": "grb-ghost"}, "globalRoleName": "user", "userName": "u-ghost"})
    ));

    let admin = session(&sim, &sim.tokens().admin).await;
    let r = runner();
    for w in ["access-review", "who-can", "offboard-user"] {
        r.install(&admin, w, None).await.unwrap();
    }
    admin
        .client
        .users()
        .patch(rancher_api::requests::RkUsersPatch::new(
            &carol,
            json!({"enabled": false}),
        ))
        .await
        .unwrap();
    let project = prtb["projectName"].as_str().unwrap().to_string();
    let runs = [
        ("access-review", "all", json!({})),
        ("access-review", "bob", json!({"user": "bob"})),
        ("access-review", "by_id", json!({"user": dave})),
        ("access-review", "cluster_member", json!({"role": "cluster-member"})),
        ("access-review", "downstream", json!({"cluster": ds})),
        ("access-review", "project", json!({"project": project})),
        ("who-can", "admin", json!({"global-role": "admin"})),
        ("who-can", "cluster_member", json!({"role": "cluster-member"})),
        ("who-can", "downstream", json!({"cluster": ds})),
        (
            "who-can",
            "project_member",
            json!({"project": project, "role": "project-member"}),
        ),
    ];
    for (w, name, inputs) in runs {
        let out = match r.submit(&admin, w, inputs, None, false).await.unwrap() {
            Submitted::Succeeded { result } => result,
            other => panic!("{w} needs no approval: {other:?}"),
        };
        insta::assert_json_snapshot!(
            format!("{w}_{name}"),
            masked(json!({"summary": out.summary, "result": out.result, "table": out.table}))
        );
    }
    let dry = match r
        .submit(&admin, "offboard-user", json!({"user": "bob"}), None, true)
        .await
        .unwrap()
    {
        Submitted::Succeeded { result } => result,
        other => panic!("a dry run runs at once: {other:?}"),
    };
    insta::assert_json_snapshot!(
        "offboard_user_bob_dry_run",
        masked(json!({"summary": dry.summary, "result": dry.result, "planned": dry.planned}))
    );
}
