//! Names instead of ids: every write workflow of the catalog, filed against the simulator, is shown by
//! `rancherctl approvals show` and by the service's page and API with the names of every target pinned at filing.

use std::sync::Arc;

use rancher_access_tests::cli::SimCli;
use rancher_access_tests::server::{install, sim_and_service, Api, Browser};
use rancher_approval::{ApprovalRequest, NamedKind, NamedTarget};
use rancher_sim::RancherVersion;
use serde_json::{json, Value};

/// The write workflows this catalog walk does not file, and why. Every other write workflow of the catalog must be
/// in [`inputs_for`]. Allow, disallow and disable are filed with a provider enabled in
/// `access_control_requests_name_their_identities_on_the_page_and_in_the_api`.
/// (The plans of these name their identities as every other plan does: see the unit tests of
/// `rancher_workflows::names`.)
const NOT_FILED: &[(&str, &str)] = &[
    (
        "apply-policies",
        "it acts on no Rancher principal (it installs rule files); tests/tests/policy_files.rs files it",
    ),
    (
        "access-control-enable",
        "filing needs provider settings and a test login",
    ),
    (
        "access-control-allow",
        "the seeded 2.x simulator has no auth provider enabled to allow identities in",
    ),
    (
        "access-control-disallow",
        "the seeded 2.x simulator has no auth provider enabled to disallow identities in",
    ),
    (
        "access-control-disable",
        "the seeded 2.x simulator has no auth provider enabled to disable",
    ),
];

/// Inputs that file a request of `workflow` against the seeded simulator (`ids`: alice, bob, carol, dave).
fn inputs_for(workflow: &str, ids: &[String]) -> Option<Value> {
    Some(match workflow {
        "create-global-role-binding" => json!({"user": "carol", "role": "admin"}),
        "delete-global-role-binding" => json!({"user": "bob", "role": "user"}),
        "rancher-api-request" => json!({"operation": rancher_api::ids::RK_GLOBALROLEBINDINGS_CREATE,
            "body": {"metadata": {"generateName": "grb-"}, "globalRoleName": "admin", "userName": ids[3]}}),
        "grant-cluster-role" => json!({"cluster": "downstream", "user": "bob", "role": "cluster-member"}),
        "grant-project-role" => {
            json!({"project": "downstream/Default", "user": "carol", "role": "project-member", "duration": "2h"})
        }
        "revoke-cluster-role" => json!({"cluster": "downstream", "user": "alice", "role": "cluster-member"}),
        "revoke-project-role" => json!({"project": "downstream/Default", "user": "alice", "role": "project-owner"}),
        "offboard-user" => json!({"user": "dave"}),
        "cleanup-tokens" => json!({"user": ids[0]}),
        _ => return None,
    })
}

/// What a shown request must say of a pinned target: for a user its display name, username and id; for anything
/// else its display name (or its id when it has none).
fn must_show(t: &NamedTarget) -> Vec<String> {
    let mut out = Vec::new();
    match t.kind {
        NamedKind::User => {
            out.push(t.id.clone());
            out.extend(t.username.clone());
            out.extend(t.display_name.clone());
        }
        // A role whose display name says no more than its id (`Admin` for `admin`) is shown by its id.
        _ => match &t.display_name {
            Some(d) if !d.eq_ignore_ascii_case(&t.id) => out.push(d.clone()),
            _ => out.push(t.id.clone()),
        },
    }
    out
}

fn write_workflows() -> Vec<&'static str> {
    rancher_workflows::all_workflows()
        .iter()
        .filter(|w| w.writes)
        .map(|w| w.id)
        .collect()
}

/// Checks that every user named in the request's inputs or targets was pinned with its names, and that `shown`
/// holds every pinned name.
fn check_shown(workflow: &str, r: &ApprovalRequest, shown: &str, users: &[(String, String, String)]) {
    for id in &r.targets {
        assert!(
            r.names.by_id(id).is_some(),
            "{workflow}: target {id} has no pinned names: {:?}",
            r.names
        );
    }
    if let Some(u) = r.inputs.get("user").and_then(Value::as_str) {
        let t = r
            .names
            .by_id(u)
            .unwrap_or_else(|| panic!("{workflow}: user {u} not pinned: {:?}", r.names));
        let (_, username, display) = users.iter().find(|(id, _, _)| id == u).expect("a seeded user");
        assert_eq!(t.username.as_deref(), Some(username.as_str()), "{workflow}");
        assert_eq!(t.display_name.as_deref(), Some(display.as_str()), "{workflow}");
    }
    for t in &r.names.targets {
        for name in must_show(t) {
            assert!(shown.contains(&name), "{workflow}: `{name}` not shown:\n{shown}");
        }
    }
}

fn seeded_users(s: &rancher_sim::SimHandle) -> (Vec<String>, Vec<(String, String, String)>) {
    let u = s.users().standard.clone();
    let displays = ["Alice Example", "Bob Example", "Carol Example", "Dave Example"];
    let ids: Vec<String> = u.iter().map(|x| x.id.clone()).collect();
    let named = u
        .iter()
        .zip(displays)
        .map(|(x, d)| (x.id.clone(), x.username.clone(), d.to_string()))
        .collect();
    (ids, named)
}

#[test]
fn approvals_show_names_every_pinned_target_of_every_write_workflow() {
    let s = SimCli::start(RancherVersion::V2_13, 2);
    let t = s.sim.tokens().clone();
    let (ids, users) = seeded_users(&s.sim);
    let mut filed = 0;
    for w in write_workflows() {
        let Some(inputs) = inputs_for(w, &ids) else {
            assert!(
                NOT_FILED.iter().any(|(id, _)| *id == w),
                "{w}: a write workflow this test does not file"
            );
            continue;
        };
        s.run(&["workflows", "install", w]).expect_code(0);
        let mut args: Vec<String> = vec!["-o".into(), "json".into(), "run".into(), w.into()];
        for (k, v) in inputs.as_object().unwrap() {
            args.push("--input".into());
            args.push(format!(
                "{k}={}",
                v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
            ));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sub = s.run_as(&t.approver, &args);
        assert_eq!(sub.code, 3, "{w}: {}\n{}", sub.stdout, sub.stderr);
        let pending: Value = serde_json::from_str(&sub.stdout).unwrap();
        let id = pending["request"].as_str().unwrap().to_string();
        let json = s.run(&["-o", "json", "approvals", "show", &id]);
        let doc: Value = serde_json::from_str(&json.expect_code(0).stdout).unwrap();
        let r: ApprovalRequest = serde_json::from_value(doc).unwrap();
        let shown = s.run(&["approvals", "show", &id]);
        let text = &shown.expect_code(0).stdout;
        let plan = rancher_workflows::names::plan_of(&r);
        assert!(text.contains(&format!("plan:      {plan}")), "{w}: {text}");
        check_shown(w, &r, text, &users);
        filed += 1;
    }
    assert_eq!(
        filed,
        write_workflows().len() - NOT_FILED.len(),
        "every other write workflow was filed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_the_api_name_every_pinned_target() {
    let (sim, _svc, srv) = sim_and_service(Arc::new(rancher_approval::MemoryStore::new())).await;
    let t = sim.tokens().clone();
    let (ids, users) = seeded_users(&sim);
    let admin = Api::new(srv.url(), Some(&t.admin));
    let mut browser = Browser::new(srv.url(), None);
    browser.sign_in_with_token(&t.admin).await;
    for w in write_workflows() {
        let Some(inputs) = inputs_for(w, &ids) else { continue };
        install(&admin, w).await;
        let (st, sub) = Api::new(srv.url(), Some(&t.approver))
            .post("/api/v1/runs", json!({"workflow": w, "inputs": inputs}))
            .await;
        assert_eq!(st, 202, "{w}: {sub}");
        let id = sub["request"].as_str().unwrap();
        let (st, view) = admin.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(st, 200, "{view}");
        let r: ApprovalRequest = serde_json::from_value(view.clone()).unwrap();
        let plan = view["plan"].as_str().unwrap();
        assert_eq!(plan, rancher_workflows::names::plan_of(&r), "{w}");
        check_shown(w, &r, plan, &users);
        let page = browser.get(&format!("/requests/{id}")).await;
        assert_eq!(page.status, 200);
        let html = page
            .html
            .replace("&#x27;", "'")
            .replace("&#96;", "`")
            .replace("&amp;", "&");
        let plan_html = html
            .split("id=\"plan\">")
            .nth(1)
            .and_then(|p| p.split("</dd>").next())
            .unwrap_or_default();
        check_shown(w, &r, plan_html, &users);
    }
}

/// Requests from the page, without JavaScript: a standard user picks `grant-project-role`'s user, role and project
/// from the form's pickers, gives a duration and files it; sees it among their own requests; an admin sees the plan
/// in names on the request's page and approves it; it runs. A second request is cancelled from "My requests".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_files_from_the_page_and_an_approver_approves_it_in_names() {
    let (sim, _svc, srv) = sim_and_service(Arc::new(rancher_approval::MemoryStore::new())).await;
    let t = sim.tokens().clone();
    install(&Api::new(srv.url(), Some(&t.admin)), "grant-project-role").await;
    let mut alice = Browser::new(srv.url(), None);
    alice.sign_in_with_token(&t.user).await;
    let list = alice.get("/file").await;
    assert!(list.html.contains("/file/grant-project-role"), "{}", list.html);
    let form = alice.get("/file/grant-project-role").await;
    assert_eq!(form.status, 200, "{}", form.html);
    for picked in [
        // Rancher shows alice only her own user: she types the person's username.
        "<input type=\"text\" id=\"in-user\"",
        "<select id=\"in-role\"",
        "<option value=\"project-member\">Project Member (project-member)</option>",
        "<select id=\"in-project\"",
        "Default (",
        "id=\"in-duration\"",
    ] {
        assert!(form.html.contains(picked), "{picked} missing:\n{}", form.html);
    }
    assert!(
        !form.html.contains("name=\"binding\""),
        "inputs the service sets are not offered"
    );
    // The project's value as the picker offers it (its id).
    let project = form
        .html
        .split("<select id=\"in-project\"")
        .nth(1)
        .and_then(|s| s.split("<option value=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("a project to pick")
        .to_string();
    let csrf = form.csrf();
    let filed = alice
        .post(
            "/file/grant-project-role",
            &[
                ("csrf", csrf.as_str()),
                ("user", "carol"),
                ("role", "project-member"),
                ("project", project.as_str()),
                ("group", ""),
                ("duration", "2h"),
                ("reason", "on call this week"),
            ],
        )
        .await;
    assert_eq!(filed.status, 303, "{}", filed.html);
    let at = filed.location.clone().expect("to the request");
    let id = at.trim_start_matches("/requests/").to_string();
    let mine = alice.get("/mine").await;
    assert!(
        mine.html.contains(&id) && mine.html.contains("Carol Example (carol, "),
        "{}",
        mine.html
    );
    // A forged post files nothing.
    let forged = alice
        .post("/file/grant-project-role", &[("csrf", "nope"), ("user", "carol")])
        .await;
    assert_eq!(forged.status, 403);

    let mut admin = Browser::new(srv.url(), None);
    admin.sign_in_with_token(&t.admin).await;
    // The pending list says what each request will do, in the names pinned at filing.
    let pending = admin.get("/").await;
    let row = pending
        .html
        // (The redirect's location encodes the id's dashes.)
        .split(&format!("data-id=\"{}\"", id.replace("%2D", "-")))
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_default()
        .replace("&#96;", "`");
    let listed_plan = row
        .split("<p class=\"plan\">")
        .nth(1)
        .and_then(|p| p.split("</p>").next())
        .unwrap_or_default();
    for name in ["Carol Example", "(carol, ", "Project Member", "for 2h"] {
        assert!(
            listed_plan.contains(name),
            "{name} not in the listed plan of {id}: {row}\n{}",
            pending.html
        );
    }
    let page = admin.get(&at).await;
    let plan = page
        .html
        .split("id=\"plan\">")
        .nth(1)
        .and_then(|p| p.split("</dd>").next())
        .unwrap_or_default()
        .to_string();
    for name in [
        "Carol Example",
        "(carol, ",
        "Project Member",
        "Default",
        "downstream",
        "for 2h",
    ] {
        assert!(plan.contains(name), "{name} not in the plan: {plan}");
    }
    let done = admin
        .post(
            &format!("/requests/{id}/decide"),
            &[
                ("csrf", &page.csrf()),
                ("vote", "approve"),
                ("reviewed", &page.reviewed()),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    let after = admin.get(done.location.as_deref().unwrap()).await;
    assert!(after.html.contains("id=\"state\">succeeded"), "{}", after.html);

    // Cancelled from the person's own list.
    let form = alice.get("/file/grant-project-role").await;
    let second = alice
        .post(
            "/file/grant-project-role",
            &[
                ("csrf", &form.csrf()),
                ("user", "dave"),
                ("role", "project-member"),
                ("project", project.as_str()),
            ],
        )
        .await;
    assert_eq!(second.status, 303, "{}", second.html);
    let second_id = second.location.unwrap().trim_start_matches("/requests/").to_string();
    let mine = alice.get("/mine").await;
    let cancelled = alice
        .post(&format!("/requests/{second_id}/cancel"), &[("csrf", &mine.csrf())])
        .await;
    assert_eq!(cancelled.status, 303);
    let mine = alice.get("/mine").await;
    assert!(mine.html.contains("is cancelled"), "{}", mine.html);
    let r: ApprovalRequest = serde_json::from_value(
        Api::new(srv.url(), Some(&t.admin))
            .get(&format!("/api/v1/requests/{second_id}"))
            .await
            .1,
    )
    .unwrap();
    assert_eq!(r.state, rancher_approval::RequestState::Cancelled);
}

/// The binding lists name a group subject as people know it: its display name from the auth provider (SUBJECT
/// `Engineering (group)`), with the principal id beside it; a group nobody can name stays `group`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_lists_name_group_subjects() {
    use rancher_workflows::{Runner, Submitted};
    let sim = rancher_access_tests::sim(RancherVersion::V2_13, 0).await;
    let admin = rancher_access_tests::session(&sim, &sim.tokens().admin).await;
    let r = Runner::new(Arc::new(rancher_approval::MemoryStore::new()), "names-test");
    let run = |wf: &'static str, inputs: Value| {
        let (r, admin) = (&r, &admin);
        async move {
            r.install(admin, wf, Some(rancher_approval::Policy::none())).await.ok();
            match r.submit(admin, wf, inputs, None, false).await.unwrap() {
                Submitted::Succeeded { result } => *result,
                other => panic!("{wf}: expected a result, got {other:?}"),
            }
        }
    };
    let group = "activedirectory_group://CN=Engineering,OU=Groups,DC=example,DC=com";
    let unknown = "activedirectory_group://CN=Gone,OU=Groups,DC=example,DC=com";
    for (name, g) in [("grb-engnr", group), ("grb-gonex", unknown)] {
        assert!(sim.insert_object(
            "globalrolebindings",
            json!({"metadata": {"name": name}, "globalRoleName": "user", "groupPrincipalName": g}),
        ));
    }
    let listed = run("list-global-role-bindings", json!({})).await;
    let t = listed.table.unwrap();
    assert_eq!(t.columns[2], "SUBJECT");
    let row_of = |id: &str| t.rows.iter().find(|row| row[3] == id).cloned();
    assert_eq!(row_of(group).unwrap()[2], "Engineering (group)", "{t:?}");
    assert_eq!(row_of(unknown).unwrap()[2], "group", "{t:?}");

    // A cluster role granted to the group: the cluster list names it too.
    run(
        "grant-cluster-role",
        json!({"cluster": "downstream", "group": group, "role": "cluster-member"}),
    )
    .await;
    let listed = run("list-cluster-role-bindings", json!({"cluster": "downstream"})).await;
    let t = listed.table.unwrap();
    assert_eq!(t.columns[4], "SUBJECT");
    let row = t.rows.iter().find(|row| row[5] == group).expect("the group's binding");
    assert_eq!(row[4], "Engineering (group)", "{t:?}");
}

/// The form's pickers list with the signed-in person's own Rancher token: a standard user is offered the projects
/// Rancher lets them read (alice: the downstream cluster's), never another cluster's projects, which the service
/// account could list; an admin is offered those too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forms_pickers_offer_only_what_rancher_lets_the_person_see() {
    let (sim, _svc, srv) = sim_and_service(Arc::new(rancher_approval::MemoryStore::new())).await;
    let t = sim.tokens().clone();
    install(&Api::new(srv.url(), Some(&t.admin)), "grant-project-role").await;
    let users = sim.users().clone();
    let (local_default, local_system, downstream_default) =
        (&users.projects[0], &users.projects[1], &users.projects[2]);
    let options = |html: &str, field: &str| -> Vec<String> {
        html.split(&format!("<select id=\"in-{field}\""))
            .nth(1)
            .and_then(|s| s.split("</select>").next())
            .unwrap_or_default()
            .split("<option value=\"")
            .skip(1)
            .filter_map(|o| o.split('"').next())
            .map(str::to_string)
            .collect()
    };
    let mut alice = Browser::new(srv.url(), None);
    alice.sign_in_with_token(&t.user).await;
    let form = alice.get("/file/grant-project-role").await;
    assert_eq!(form.status, 200, "{}", form.html);
    let projects = options(&form.html, "project");
    assert!(projects.contains(downstream_default), "{projects:?}");
    // Rancher shows alice her own user only: no list of users, she types the username.
    assert!(
        options(&form.html, "user").is_empty() && !form.html.contains("Carol Example"),
        "{}",
        form.html
    );
    for hidden in [local_default, local_system] {
        assert!(
            !projects.contains(hidden),
            "alice cannot read {hidden}, yet the form offers it: {projects:?}"
        );
    }
    let mut admin = Browser::new(srv.url(), None);
    admin.sign_in_with_token(&t.admin).await;
    let form = admin.get("/file/grant-project-role").await;
    assert!(options(&form.html, "user").contains(&"carol".to_string()));
    let projects = options(&form.html, "project");
    for seen in [local_default, local_system, downstream_default] {
        assert!(projects.contains(seen), "{seen}: {projects:?}");
    }
}

/// The access-control workflows the catalog walk cannot file on a simulator with no provider enabled: with Active
/// Directory enabled (as Rancher keeps it once it was set up), each is filed through the service and its plan, in
/// the API and on the page, names the identities and the provider it touches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_control_requests_name_their_identities_on_the_page_and_in_the_api() {
    let (sim, _svc, srv) = sim_and_service(Arc::new(rancher_approval::MemoryStore::new())).await;
    let t = sim.tokens().clone();
    let john = "activedirectory_user://CN=John Doe,OU=Users,DC=example,DC=com";
    let engineering = "activedirectory_group://CN=Engineering,OU=Groups,DC=example,DC=com";
    let mut ad = sim.object("authconfigs", "activedirectory").unwrap();
    ad["enabled"] = json!(true);
    ad["accessMode"] = json!("restricted");
    ad["allowedPrincipalIds"] = json!([john, engineering, format!("local://{}", sim.users().admin.id)]);
    assert!(sim.insert_object("authconfigs", ad));
    let admin = Api::new(srv.url(), Some(&t.admin));
    let mut browser = Browser::new(srv.url(), None);
    browser.sign_in_with_token(&t.admin).await;
    for (w, inputs, names) in [
        (
            "access-control-allow",
            json!({"identities": "Anna Smith"}),
            &["Anna Smith", "activedirectory"][..],
        ),
        (
            "access-control-disallow",
            json!({"identities": "Engineering"}),
            &["Engineering", "activedirectory"][..],
        ),
        ("access-control-disable", json!({}), &["activedirectory"][..]),
    ] {
        install(&admin, w).await;
        let (st, sub) = Api::new(srv.url(), Some(&t.approver))
            .post("/api/v1/runs", json!({"workflow": w, "inputs": inputs}))
            .await;
        assert_eq!(st, 202, "{w}: {sub}");
        let id = sub["request"].as_str().unwrap();
        let (st, view) = admin.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(st, 200, "{view}");
        let r: ApprovalRequest = serde_json::from_value(view.clone()).unwrap();
        let plan = view["plan"].as_str().unwrap();
        assert_eq!(plan, rancher_workflows::names::plan_of(&r), "{w}");
        for name in names {
            assert!(plan.contains(name), "{w}: `{name}` not in the plan: {plan}");
        }
        let (_, users) = seeded_users(&sim);
        check_shown(w, &r, plan, &users);
        let page = browser.get(&format!("/requests/{id}")).await;
        assert_eq!(page.status, 200);
        let html = page
            .html
            .replace("&#x27;", "'")
            .replace("&#96;", "`")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&");
        let plan_html = html
            .split("id=\"plan\">")
            .nth(1)
            .and_then(|p| p.split("</dd>").next())
            .unwrap_or_default();
        check_shown(w, &r, plan_html, &users);
        for name in names {
            assert!(plan_html.contains(name), "{w}: `{name}` not on the page: {plan_html}");
        }
    }
}
