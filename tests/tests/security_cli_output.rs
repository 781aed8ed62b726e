//! Security review 2026-12, the rancherctl output items, end to end through the real binary against rancher-sim:
//! terminal escapes in requester and server text (item 2), tokens pasted into the wrong field (item 16) and the
//! audit head kept elsewhere (item 9).

use rancher_access_tests::cli::{assert_no_secrets, command, Run, SimCli};
use rancher_sim::RancherVersion;
use serde_json::Value;

struct Env(SimCli);

impl Env {
    fn start() -> Env {
        Env(SimCli::start(RancherVersion::V2_13, 5))
    }

    /// Runs as the admin with extra environment variables; no token secret may appear in the output.
    fn run_with(&self, args: &[&str], extra: &[(&'static str, String)]) -> Run {
        let mut env = self.0.connected_env(Some(&self.0.sim.tokens().admin));
        env.extend(extra.iter().cloned());
        let run = Run::from_output(command(args, &env).output().expect("rancherctl runs"));
        let secrets = self.0.token_secrets();
        assert_no_secrets(&run, &secrets.iter().map(String::as_str).collect::<Vec<_>>());
        run
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    fn run_as(&self, token: &str, args: &[&str]) -> Run {
        self.run_with(args, &[("RANCHER_TOKEN", token.to_string())])
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// Characters a terminal acts on: C0 controls but `\n`, DEL, C1 controls, and the bidi overrides and isolates.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect()
}

#[track_caller]
fn assert_printable(what: &str, text: &str) {
    let bad = raw_controls(text);
    assert!(bad.is_empty(), "{what} printed raw control characters {bad:?}:\n{text}");
}

const FORGED_REASON: &str =
    "routine\r\u{1b}[4A\u{1b}[2Kinputs:    {\"user\":\"carol\",\"role\":\"user\"}\u{1b}[4B\r\u{1b}[2Kreason:    routine\u{9b}2J\u{202e}nimda\u{8}";

#[test]
fn requester_text_is_escaped_in_every_table_output() {
    let env = Env::start();
    let standard = env.0.sim.users().standard[0].clone();
    env.run(&["workflows", "install", "create-global-role-binding"])
        .expect_code(0);
    // The executor label comes from $HOSTNAME: an escape there must not reach the audit table raw either.
    let host = [("HOSTNAME", "ops-host\u{1b}[8m".to_string())];
    let filed = env.run_with(
        &[
            "run",
            "create-global-role-binding",
            "-i",
            &format!("user={}", standard.username),
            "-i",
            "role=admin",
            "--reason",
            FORGED_REASON,
            "-o",
            "json",
        ],
        &host,
    );
    filed.expect_code(3);
    let id = json(&filed)["request"].as_str().expect("request id").to_string();

    let show = env.run(&["approvals", "show", &id]);
    show.expect_code(0);
    assert_printable("approvals show", &show.stdout);
    assert!(
        show.stdout.contains(r"routine\r\u{1b}[4A"),
        "the escape is shown, visibly:\n{}",
        show.stdout
    );
    assert!(show.stdout.contains(r"\u{202e}nimda"), "{}", show.stdout);
    // One line per field: the forged `inputs:` line is inside the reason, not a line of its own.
    assert_eq!(
        show.stdout.lines().filter(|l| l.starts_with("inputs:")).count(),
        1,
        "{}",
        show.stdout
    );
    assert!(
        show.stdout.contains(&format!("targets:   {}", standard.id)),
        "the target id is shown:\n{}",
        show.stdout
    );

    let list = env.run(&["approvals", "list"]);
    list.expect_code(0);
    assert_printable("approvals list", &list.stdout);

    // JSON keeps the exact text (the serializer escapes it) and stays one document.
    let doc = json(env.run(&["approvals", "show", &id, "-o", "json"]).expect_code(0));
    assert_eq!(doc["reason"], FORGED_REASON);
    let raw = env.run(&["approvals", "show", &id, "-o", "json"]);
    assert_printable("approvals show -o json", &raw.stdout);
    let yaml = env.run(&["approvals", "show", &id, "-o", "yaml"]);
    assert_printable("approvals show -o yaml", &yaml.stdout);
    let list = env.run(&["approvals", "list", "-o", "yaml"]);
    assert_printable("approvals list -o yaml", &list.stdout);

    // The decision reason and the executor, after an approval with a hostile reason and host name.
    let approver = env.0.sim.tokens().approver.clone();
    let mut extra = host.to_vec();
    extra.push(("RANCHER_TOKEN", approver));
    let approve = env.run_with(
        &["approvals", "approve", &id, "--reason", "ok\u{1b}]0;pwned\u{7}"],
        &extra,
    );
    approve.expect_code(0);
    assert_printable("approvals approve stdout", &approve.stdout);
    assert_printable("approvals approve stderr", &approve.stderr);
    let show = env.run(&["approvals", "show", &id]);
    assert_printable("approvals show after decisions", &show.stdout);
    let audit = env.run_with(&["approvals", "audit"], &host);
    audit.expect_code(0);
    assert_printable("approvals audit", &audit.stdout);
}

#[test]
fn look_alike_names_are_flagged_with_their_ids() {
    let env = Env::start();
    let body = env.0.tmp.path().join("user.json");
    let look_alike = "\u{430}lice"; // Cyrillic а, then Latin
    std::fs::write(
        &body,
        serde_json::json!({"apiVersion": "management.cattle.io/v3", "kind": "User", "metadata": {"generateName": "u-"}, "username": look_alike, "password": "Corr3ct-Horse-Battery-Staple-2026"})
            .to_string(),
    )
    .unwrap();
    env.run(&["api", "rk.users.create", "--yes", "--body", &body.display().to_string()])
        .expect_code(0);
    let id = env.0.sim.user_id(look_alike).expect("the look-alike user exists");
    env.run(&["workflows", "install", "create-global-role-binding"])
        .expect_code(0);
    let filed = env.run(&[
        "run",
        "create-global-role-binding",
        "-i",
        &format!("user={look_alike}"),
        "-i",
        "role=admin",
        "-o",
        "json",
    ]);
    filed.expect_code(3);
    let req = json(&filed)["request"].as_str().unwrap().to_string();
    let show = env.run(&["approvals", "show", &req]);
    show.expect_code(0);
    let warnings: Vec<&str> = show.stdout.lines().filter(|l| l.starts_with("warning:")).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Cyrillic") && w.contains("Latin") && w.contains("U+0430")),
        "no mixed-script warning:\n{}",
        show.stdout
    );
    // The pinned names say whom it shadows too: the look-alike's own id and the other user's.
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("looks like `alice` of another user") && w.contains(&id)),
        "no look-alike warning:\n{}",
        show.stdout
    );
    assert!(show.stdout.contains(&format!("targets:   {id}")), "{}", show.stdout);
    // A plain ASCII name gets no warning.
    let plain = env.0.sim.users().standard[1].username.clone();
    let filed = json(
        env.run(&[
            "run",
            "create-global-role-binding",
            "-i",
            &format!("user={plain}"),
            "-i",
            "role=admin",
            "-o",
            "json",
        ])
        .expect_code(3),
    );
    let show = env.run(&["approvals", "show", filed["request"].as_str().unwrap()]);
    assert!(!show.stdout.contains("warning:"), "{}", show.stdout);
}

#[test]
fn errors_escape_what_they_echo() {
    let env = Env::start();
    env.run(&["workflows", "install", "list-users"]).expect_code(0);
    let bad = env.run(&["run", "list-users", "-i", "\u{1b}[31mno-equals\u{202e}"]);
    bad.expect_code(1);
    assert_printable("an --input error", &bad.stderr);
    assert!(bad.stderr.contains(r"\u{1b}[31mno-equals"), "{}", bad.stderr);
    let bad = env.run(&["run", "no\u{1b}[2Jsuch"]);
    bad.expect_code(1);
    assert_printable("an unknown workflow error", &bad.stderr);
    // The server's own words: a 404 naming the object asked for.
    let server = env.run(&["api", "rk.users.get", "-p", "name=x\u{1b}[2J\u{9b}y"]);
    server.expect_code(1);
    assert!(
        server.stderr.contains("not found") || server.stderr.contains("404"),
        "{}",
        server.stderr
    );
    assert!(
        server.stderr.contains(r"x\u{1b}[2J\u{9b}y"),
        "the name is shown escaped: {}",
        server.stderr
    );
    assert_printable("a server error", &server.stderr);
    // Logs too, at the most verbose level.
    let traced = env.run_with(
        &["api", "rk.users.get", "-p", "name=x\u{1b}[2J\u{9b}y"],
        &[("RUST_LOG", "trace".into())],
    );
    traced.expect_code(1);
    assert!(
        traced.stderr.contains("TRACE") || traced.stderr.contains("DEBUG"),
        "{}",
        traced.stderr
    );
    assert_printable("trace logs", &traced.stderr);
}

#[test]
fn a_token_pasted_into_the_wrong_field_is_never_echoed_whole() {
    let env = Env::start();
    let admin = env.0.sim.tokens().admin.clone();
    let secret = admin.split_once(':').unwrap().1.to_string();
    let legacy_key = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd"; // a 1.x 40-character key
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LWFiYzEyIiwiZXhwIjoxOTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU";
    env.run(&["workflows", "install", "list-users"]).expect_code(0);
    for pasted in [admin.as_str(), secret.as_str(), legacy_key, jwt] {
        let mut cases = vec![
            ("a request id", env.run(&["approvals", "show", pasted])),
            ("--input", env.run(&["run", "list-users", "-i", pasted])),
            (
                "--input value",
                env.run(&["run", "rancher-api-request", "-i", &format!("operation={pasted}")]),
            ),
            ("a positional argument", env.run(&["check", pasted])),
            ("a workflow id", env.run(&["run", pasted])),
            (
                "a profile name",
                env.run_with(
                    &["check"],
                    &[
                        ("RANCHER_PROFILE", pasted.to_string()),
                        ("RANCHER_TOKEN", String::new()),
                    ],
                ),
            ),
            ("an operation id", env.run(&["api", pasted])),
        ];
        // Only the 2.x form as a domain: the others are valid host names before the fix, and no test may resolve
        // a name (rancher-auth's unit tests cover them).
        if pasted.contains(':') {
            cases.push((
                "--domain",
                env.run_with(&["check"], &[("RANCHER_DOMAIN", pasted.to_string())]),
            ));
        }
        for (field, run) in cases {
            assert_ne!(run.code, 0, "{field}: {run:?}");
            let tail = &pasted[pasted.len() - 12..];
            for text in [&run.stdout, &run.stderr] {
                assert!(!text.contains(tail), "{field}: the pasted token is echoed:\n{text}");
            }
        }
    }
}

#[test]
fn a_huge_echoed_input_is_cut() {
    let env = Env::start();
    env.run(&["workflows", "install", "list-users"]).expect_code(0);
    let huge = "ab-".repeat(35_000);
    for run in [
        env.run(&["run", "list-users", "-i", &huge]),
        env.run(&["approvals", "show", &huge]),
        env.run(&["run", &huge]),
    ] {
        run.expect_code(1);
        assert!(run.stderr.len() < 2_000, "{} bytes of error", run.stderr.len());
        assert!(run.stderr.contains("…(1050"), "{}", run.stderr);
    }
}

fn head_of(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("audit head: "))
        .unwrap_or_else(|| panic!("no audit head line:\n{stderr}"));
    assert!(
        line.ends_with("(save it to check later with approvals audit --verify --expect-head)"),
        "{line}"
    );
    let head = line["audit head: ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let (seq, hash) = head.split_once(':').expect("SEQ:HASH");
    assert!(
        seq.parse::<u64>().is_ok() && hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{head}"
    );
    head
}

#[test]
fn the_audit_head_is_printed_and_checked_against_a_saved_anchor() {
    let env = Env::start();
    let approver = env.0.sim.tokens().approver.clone();
    let standard = env.0.sim.users().standard.clone();
    let install = env.run(&["workflows", "install", "create-global-role-binding"]);
    install.expect_code(0);
    head_of(&install.stderr);
    let filed = env.run(&[
        "run",
        "create-global-role-binding",
        "-i",
        &format!("user={}", standard[0].username),
        "-i",
        "role=admin",
        "-o",
        "json",
    ]);
    filed.expect_code(3);
    let saved = head_of(&filed.stderr);
    let id = json(&filed)["request"].as_str().unwrap().to_string();
    // Reads print no head line.
    assert!(!env.run(&["approvals", "list"]).stderr.contains("audit head:"));

    // --verify prints the full head in table mode.
    let verify = env.run(&["approvals", "audit", "--verify"]);
    verify.expect_code(0);
    assert!(verify.stdout.contains(&saved), "{}", verify.stdout);

    // The log grows past the anchor: still fine, by SEQ:HASH or by the hash alone.
    let approved = env.run_as(&approver, &["approvals", "approve", &id]);
    approved.expect_code(0);
    let later = head_of(&approved.stderr);
    assert_ne!(later, saved);
    env.run(&["approvals", "audit", "--verify", "--expect-head", &saved])
        .expect_code(0);
    env.run(&[
        "approvals",
        "audit",
        "--verify",
        "--expect-head",
        saved.split_once(':').unwrap().1,
    ])
    .expect_code(0);
    let filed = json(
        env.run(&[
            "run",
            "create-global-role-binding",
            "-i",
            &format!("user={}", standard[1].username),
            "-i",
            "role=admin",
            "-o",
            "json",
        ])
        .expect_code(3),
    );
    let deny = env.run_as(&approver, &["approvals", "deny", filed["request"].as_str().unwrap()]);
    deny.expect_code(0);
    head_of(&deny.stderr);
    let filed = json(
        env.run(&[
            "run",
            "create-global-role-binding",
            "-i",
            &format!("user={}", standard[2].username),
            "-i",
            "role=admin",
            "-o",
            "json",
        ])
        .expect_code(3),
    );
    let cancel = env.run(&["approvals", "cancel", filed["request"].as_str().unwrap()]);
    cancel.expect_code(0);
    let last = head_of(&cancel.stderr);
    env.run(&["approvals", "audit", "--verify", "--expect-head", &last])
        .expect_code(0);

    // A new request, and the head an operator saves after filing it.
    let filed = env.run(&[
        "run",
        "create-global-role-binding",
        "-i",
        &format!("user={}", standard[3].username),
        "-i",
        "role=admin",
        "-o",
        "json",
    ]);
    filed.expect_code(3);
    let anchor = head_of(&filed.stderr);
    let request = json(&filed)["request"].as_str().unwrap().to_string();

    // Someone who can write the store removes that request and cuts its entries off the tail, moving the head back:
    // the store is consistent again, so plain --verify cannot tell; the anchor kept elsewhere can.
    let keep: i64 = last.split_once(':').unwrap().0.parse().unwrap();
    let db = rusqlite::Connection::open(env.0.tmp.path().join("state/approvals.db")).unwrap();
    let triggers: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in triggers {
        db.execute_batch(&format!("DROP TRIGGER {t}")).unwrap();
    }
    db.execute("DELETE FROM requests WHERE id = ?1", [&request]).unwrap();
    db.execute("DELETE FROM audit WHERE seq > ?1", [keep]).unwrap();
    db.execute(
        "UPDATE audit_head SET seq = ?1, hash = (SELECT hash FROM audit WHERE seq = ?1)",
        [keep],
    )
    .unwrap();
    drop(db);
    env.run(&["approvals", "audit", "--verify"]).expect_code(0);
    let cut = env.run(&["approvals", "audit", "--verify", "--expect-head", &anchor]);
    cut.expect_code(1);
    assert!(
        cut.stderr.contains("cut off") && cut.stderr.contains(&anchor[..anchor.find(':').unwrap()]),
        "{}",
        cut.stderr
    );
    let cut = env.run(&[
        "approvals",
        "audit",
        "--verify",
        "--expect-head",
        anchor.split_once(':').unwrap().1,
    ]);
    cut.expect_code(1);
    assert!(cut.stderr.contains("not in the log"), "{}", cut.stderr);
    // A head at the right place with another hash: history was rewritten.
    let forged = format!("{keep}:{}", "0".repeat(64));
    let moved = env.run(&["approvals", "audit", "--verify", "--expect-head", &forged]);
    moved.expect_code(1);
    assert!(moved.stderr.contains("rewritten"), "{}", moved.stderr);
    // A malformed anchor is a usage mistake with the fix.
    let bad = env.run(&["approvals", "audit", "--verify", "--expect-head", "12:abc"]);
    bad.expect_code(1);
    assert!(bad.stderr.contains("SEQ:HASH"), "{}", bad.stderr);
}
