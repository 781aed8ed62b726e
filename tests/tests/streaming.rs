//! Streamed list output end to end: the real `rancherctl` against rancher-sim over HTTPS, with enough users for
//! several pages (500 a page). `-o json` is one array holding every user exactly as the server sent it, `-o yaml`
//! one sequence, `-o table` one row per user; a list that fails part way exits non-zero, names the cause, and
//! leaves its JSON without the closing `]`.

use std::collections::BTreeSet;

use rancher_access_tests::cli::{assert_no_secrets, command, Run, SimCli};
use rancher_sim::{Faults, RancherVersion};
use serde_json::Value;

/// Extra users seeded: with the built-in ones, three pages.
const USERS: usize = 1_200;

struct Env(SimCli);

impl Env {
    fn start(version: RancherVersion) -> Env {
        let env = Env(SimCli::start(version, USERS));
        env.run(&["workflows", "install", "list-users"]).expect_code(0);
        env.run(&["workflows", "install", "list-global-role-bindings"])
            .expect_code(0);
        env
    }

    fn run(&self, args: &[&str]) -> Run {
        let env = self.0.connected_env(Some(&self.0.sim.tokens().admin.clone()));
        let run = Run::from_output(command(args, &env).output().expect("rancherctl runs"));
        let secrets = self.0.token_secrets();
        assert_no_secrets(&run, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
        run
    }
}

fn json(run: &Run) -> Vec<Value> {
    match serde_json::from_str(&run.stdout) {
        Ok(Value::Array(items)) => items,
        other => panic!("stdout is not one JSON array ({other:?}):\n{}", run.stderr),
    }
}

/// The object with its null-valued fields left out (the generated types write an absent value and a null alike:
/// not at all).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[test]
fn streaming_json_holds_every_user_once_with_every_field() {
    let env = Env::start(RancherVersion::V2_13);
    let total = env.0.sim.count("users");
    assert!(total > 1_000, "several pages expected, {total} users");
    let items = json(env.run(&["run", "list-users", "-o", "json"]).expect_code(0));
    assert_eq!(items.len(), total, "every user");
    let names: BTreeSet<&str> = items
        .iter()
        .filter_map(|u| u.pointer("/metadata/name").and_then(Value::as_str))
        .collect();
    assert_eq!(names.len(), total, "each user once");
    // Nothing the server sent is lost on the way through the typed items (field order aside).
    let on_server: Vec<Value> = env.0.sim.objects("users");
    let by_name = |n: &str| {
        on_server
            .iter()
            .find(|u| u.pointer("/metadata/name").and_then(Value::as_str) == Some(n))
            .cloned()
    };
    for item in items.iter().step_by(97) {
        let name = item.pointer("/metadata/name").and_then(Value::as_str).expect("a name");
        let api = env.run(&["api", "rk.users.get", "--param", &format!("name={name}"), "-o", "json"]);
        let sent: Value = serde_json::from_str(&api.expect_code(0).stdout).expect("one user");
        assert_eq!(
            item,
            &without_nulls(&sent),
            "user {name} as listed vs as the server sends it (null fields aside)"
        );
        assert!(by_name(name).is_some());
    }
    // `api --all` streams the same way.
    let all = json(env.run(&["api", "rk.users.list", "--all", "-o", "json"]).expect_code(0));
    assert_eq!(all.len(), total);
    // A list writes nothing, so its dry run is the run itself: streamed in the same shape, not collected first.
    let dry = json(
        env.run(&["run", "list-users", "--dry-run", "-o", "json"])
            .expect_code(0),
    );
    assert_eq!(dry.len(), total, "a dry run lists every user as the run does");
}

#[test]
fn streaming_table_and_yaml_have_a_row_and_an_entry_per_user() {
    let env = Env::start(RancherVersion::V2_13);
    let total = env.0.sim.count("users");
    let table = env.run(&["run", "list-users"]);
    table.expect_code(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("USERNAME"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), total + 2, "header, a row per user, the summary");
    assert_eq!(lines.last().copied(), Some(format!("{total} users").as_str()));
    // Columns line up within the sample that sized them.
    let at = lines[0].find("USERNAME").unwrap();
    assert!(lines[1..400].iter().all(|l| l[..at].ends_with("  ")), "aligned columns");

    let yaml = env.run(&["run", "list-users", "-o", "yaml"]);
    yaml.expect_code(0);
    let doc: Value = serde_norway::from_str(&yaml.stdout).expect("one YAML document");
    assert_eq!(doc.as_array().map(Vec::len), Some(total), "one sequence of every user");

    // The binding table joins usernames; the JSON is the bindings as sent.
    let bindings = json(
        env.run(&["run", "list-global-role-bindings", "-o", "json"])
            .expect_code(0),
    );
    assert_eq!(bindings.len(), env.0.sim.count("globalrolebindings"));
    let rows = env.run(&["run", "list-global-role-bindings"]);
    assert!(
        rows.expect_code(0)
            .stdout
            .lines()
            .any(|l| l.contains(" Default Admin (admin) ") && l.trim_end().ends_with("admin")),
        "{}",
        rows.stdout
    );
}

#[test]
fn streaming_on_norman_lists_every_user() {
    let env = Env::start(RancherVersion::V2_8);
    let items = json(env.run(&["run", "list-users", "-o", "json"]).expect_code(0));
    // Every user /v3 lists (it leaves out a few system users the store holds), as the generic stream sees them.
    let all = json(env.run(&["api", "v3.users.list", "--all", "-o", "json"]).expect_code(0));
    assert!(items.len() > USERS, "several pages: {}", items.len());
    assert_eq!(items.len(), all.len());
    for (typed, sent) in items.iter().zip(&all) {
        assert_eq!(
            typed,
            &without_nulls(sent),
            "the typed item serializes to what the server sent, but for null fields"
        );
    }
}

#[test]
fn a_fault_mid_stream_exits_non_zero_and_leaves_the_json_unclosed() {
    let env = Env::start(RancherVersion::V2_13);
    // Every continue token expires (410): the first page arrives, the client restarts a few times, then gives up.
    env.0.sim.set_faults(Faults {
        continue_expire_rate: 1.0,
        ..Faults::none()
    });
    for args in [
        &["run", "list-users", "-o", "json"][..],
        &["api", "rk.users.list", "--all", "-o", "json"][..],
    ] {
        let run = env.run(args);
        assert_ne!(run.code, 0, "a failed list must not exit 0:\n{}", run.stderr);
        assert!(
            run.stderr.contains("stopped after 500"),
            "the cause and how far it got:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("410") || run.stderr.to_lowercase().contains("expired"),
            "{}",
            run.stderr
        );
        assert!(
            run.stdout.starts_with("[\n") && !run.stdout.trim_end().ends_with(']'),
            "unclosed JSON"
        );
        assert!(
            serde_json::from_str::<Value>(&run.stdout).is_err(),
            "the part must not parse as a whole document"
        );
        // What was written is the first page, item by item.
        let repaired = format!("{}]", run.stdout.trim_end());
        let part: Vec<Value> = serde_json::from_str(&repaired).expect("the written items are whole");
        assert_eq!(part.len(), 500);
    }
    let table = env.run(&["run", "list-users"]);
    assert_ne!(table.code, 0);
    assert!(
        !table.stdout.contains(" users\n"),
        "no summary line after a failed list:\n{}",
        table.stdout
    );
}
