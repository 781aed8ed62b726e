//! Tidy: checks over the workspace's manifests and sources that no compiler makes.
//!
//! - **Layers.** An internal dependency points down the layers, never up or sideways (see [`LAYERS`]).
//! - **Declared dependencies are used.** A `[dependencies]` entry is named by the crate's own code (`src/` outside
//!   `#[cfg(test)]`); a `[dev-dependencies]` entry by its tests, examples, benches, test modules or doc examples; a
//!   `[build-dependencies]` entry by `build.rs`. Renamed packages are looked up under their new name, and a package
//!   whose library has another name than the package (`foo-bar` → `foo_bar`) under its library's name.
//! - **Used `rancher_*` crates are declared.**
//! - **Module cycles.** The `use crate::…` / `super::…` graph between a crate's modules, with no more cycles than
//!   [`MAX_MODULE_CYCLES`].
//!
//! "Used" means the crate's name appears as the root of a path (`name::…`), in a `use` tree or in `extern crate`,
//! in code, macro bodies or attributes; comments and string literals do not count. Sources are read as Rust tokens
//! (proc-macro2), not by regex.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use serde_json::Value;

/// Our crates from the bottom up; a crate may depend only on crates on a lower level.
///
/// rancher-sim sits apart on the bottom level: it depends on none of our crates (it plays Rancher, so it must not
/// share our types with the code it tests), and of the layer crates only rancher-cli takes it as a normal dependency
/// (for `rancherctl sim` and `rancherctl demo`); the libraries may use it in their tests only ([`SIM_USERS`]).
/// rancher-approval uses neither rancher-api nor rancher-auth: it knows no HTTP and no Rancher types ([`NEVER`]).
/// The workspace's other members (tests, xtask, bench, examples) sit above all of them.
const LAYERS: &[(&str, u8)] = &[
    ("rancher-api", 0),
    ("rancher-sim", 0),
    ("rancher-auth", 1),
    ("rancher-approval", 2),
    ("rancher-workflows", 3),
    ("rancher-server", 4),
    ("rancher-cli", 5),
];

/// Layer crates that may take rancher-sim as a normal (not dev-) dependency.
const SIM_USERS: &[&str] = &["rancher-cli"];

/// Arrows forbidden although they point down: (from, to, why).
const NEVER: &[(&str, &str, &str)] = &[
    (
        "rancher-approval",
        "rancher-api",
        "the approval layer knows no HTTP and no Rancher types",
    ),
    (
        "rancher-approval",
        "rancher-auth",
        "the approval layer knows no HTTP and no Rancher types",
    ),
];

/// Members outside the layers: the end-to-end tests, maintainer tasks, benchmarks and examples. They may use any
/// crate; no layer crate may use them.
const ABOVE_ALL: u8 = 6;

/// Declared dependencies that no code names, with the reason they stay: (package, dependency, reason).
const ALLOWED_UNUSED: &[(&str, &str, &str)] = &[];

/// The number of module cycles inside our crates that tidy accepts today. Lower it as cycles are broken; never
/// raise it.
const MAX_MODULE_CYCLES: usize = 1;

#[test]
fn internal_dependencies_point_down_the_layers() {
    let ws = Workspace::load();
    let mut problems = Vec::new();
    for p in &ws.packages {
        let from = level(&p.name);
        for d in p.deps.iter().filter(|d| d.internal && d.name != p.name) {
            let section = d.kind.section();
            let (Some(from), Some(to)) = (from, level(&d.name)) else {
                continue; // a member in no layer is reported below
            };
            if from == ABOVE_ALL {
                continue;
            }
            if to == ABOVE_ALL {
                problems.push(format!(
                    "{}: {} depends on `{}`, which is not a layer crate; only tests, xtask, bench and examples may \
                     use it. Remove it from {section}.",
                    p.manifest, p.name, d.name
                ));
                continue;
            }
            if d.name == "rancher-sim" {
                if d.kind == Kind::Normal && !SIM_USERS.contains(&p.name.as_str()) {
                    problems.push(format!(
                        "{}: {} takes rancher-sim as a normal dependency; the simulator is for tests, `rancherctl \
                         sim` and `rancherctl demo` only. Move it to [dev-dependencies].",
                        p.manifest, p.name
                    ));
                }
                continue;
            }
            if to >= from {
                problems.push(format!(
                    "{}: {} depends on `{}` in {section}, which sits {} it (layers, bottom up: {}). Move the code \
                     that needs `{}` up into a crate above it, or what it needs down; then remove the dependency.",
                    p.manifest,
                    p.name,
                    d.name,
                    if to == from { "beside" } else { "above" },
                    layer_order(),
                    d.name
                ));
            }
            if let Some((_, _, why)) = NEVER.iter().find(|(f, t, _)| *f == p.name && *t == d.name) {
                problems.push(format!(
                    "{}: {} depends on `{}`, but {why}. Remove the dependency and keep that code above.",
                    p.manifest, p.name, d.name
                ));
            }
        }
        if from.is_none() {
            problems.push(format!(
                "{}: {} is in no layer; add it to LAYERS in xtask/tests/tidy.rs (or, for an internal member, to the \
                 members above all layers).",
                p.manifest, p.name
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_architecture_doc_shows_the_arrows_as_declared() {
    let ws = Workspace::load();
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md");
    let mut problems = Vec::new();
    for (name, _) in LAYERS {
        let p = ws
            .packages
            .iter()
            .find(|p| p.name == *name)
            .expect("a layer crate is a member");
        let Some(row) = doc.lines().find(|l| l.starts_with(&format!("| {name} |"))) else {
            problems.push(format!(
                "docs/architecture.md: the dependency table has no row for {name}; add one."
            ));
            continue;
        };
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let listed = |cell: &str| -> BTreeSet<String> {
            cell.split(',')
                .map(|c| c.split_whitespace().next().unwrap_or(""))
                .filter(|c| c.starts_with("rancher-"))
                .map(str::to_string)
                .collect()
        };
        for (kind, cell) in [(Kind::Normal, 1), (Kind::Dev, 2)] {
            let declared: BTreeSet<String> = p
                .deps
                .iter()
                .filter(|d| d.internal && d.kind == kind && d.name != p.name && level(&d.name) != Some(ABOVE_ALL))
                .map(|d| d.name.clone())
                .collect();
            let shown = listed(cells.get(cell).copied().unwrap_or(""));
            if declared != shown {
                problems.push(format!(
                    "docs/architecture.md: the row of {name} shows {} {shown:?}, but {} declares {declared:?}; \
                     update the row (and the drawing above it).",
                    kind.section(),
                    p.manifest
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_declared_dependency_is_used() {
    let ws = Workspace::load();
    let mut problems = Vec::new();
    let mut allowed_seen = BTreeSet::new();
    for p in &ws.packages {
        let code = Code::of(p);
        for d in &p.deps {
            if d.name == p.name {
                continue; // a package's dev-dependency on itself only turns on features for its tests
            }
            let allowed = ALLOWED_UNUSED
                .iter()
                .find(|(pk, dep, _)| *pk == p.name && *dep == d.name);
            let problem = match d.kind {
                Kind::Normal if code.main.contains_key(&d.code_name) => None,
                Kind::Normal if code.test.contains_key(&d.code_name) => Some(format!(
                    "`{}` in [dependencies] is used only by {}'s tests; move it to [dev-dependencies].",
                    d.name, p.name
                )),
                Kind::Normal => Some(format!(
                    "`{}` in [dependencies] is not used by {}'s code (no `{}::` and no `use {}` in src/); remove it.",
                    d.name, p.name, d.code_name, d.code_name
                )),
                Kind::Dev if p.redundant_dev(d) => Some(format!(
                    "`{}` in [dev-dependencies] is already a normal dependency of {} with these features (tests see \
                     normal dependencies too); remove it from [dev-dependencies].",
                    d.name, p.name
                )),
                Kind::Dev if code.test.contains_key(&d.code_name) => None,
                Kind::Dev => Some(format!(
                    "`{}` in [dev-dependencies] is not used by {}'s tests, examples, benches, test modules or doc \
                     examples; remove it.",
                    d.name, p.name
                )),
                Kind::Build if code.build.contains_key(&d.code_name) => None,
                Kind::Build => Some(format!(
                    "`{}` in [build-dependencies] is not used by {}'s build.rs; remove it.",
                    d.name, p.name
                )),
            };
            match (problem, allowed) {
                (Some(_), Some(_)) => {
                    allowed_seen.insert((p.name.clone(), d.name.clone()));
                }
                (Some(problem), None) => problems.push(format!(
                    "{}: {problem} (If it only turns on a feature of another crate, add it to ALLOWED_UNUSED in \
                     xtask/tests/tidy.rs with the reason.)",
                    p.manifest
                )),
                (None, _) => {}
            }
        }
    }
    for (pk, dep, _) in ALLOWED_UNUSED {
        if !allowed_seen.contains(&(pk.to_string(), dep.to_string())) {
            problems.push(format!(
                "ALLOWED_UNUSED in xtask/tests/tidy.rs lists `{dep}` of {pk}, which is used or no longer declared; \
                 remove the entry."
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_workspace_dependency_is_used() {
    let ws = Workspace::load();
    let text = std::fs::read_to_string(root().join("Cargo.toml")).expect("the workspace's Cargo.toml");
    let mut section = "";
    let mut problems = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        // Our own crates are all pinned there, used or not, so the list of layers stays whole.
        if section != "[workspace.dependencies]" || name.starts_with('#') || level(name).is_some() {
            continue;
        }
        if !ws.packages.iter().any(|p| p.deps.iter().any(|d| d.name == name)) {
            problems.push(format!(
                "Cargo.toml: `{name}` in [workspace.dependencies] is used by no member; remove it."
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn every_used_rancher_crate_is_declared() {
    let ws = Workspace::load();
    let mut problems = Vec::new();
    for p in &ws.packages {
        let code = Code::of(p);
        let own = p.lib_name.clone().into_iter().collect::<BTreeSet<_>>();
        let declared = |kinds: &[Kind]| -> BTreeSet<String> {
            p.deps
                .iter()
                .filter(|d| kinds.contains(&d.kind))
                .map(|d| d.code_name.clone())
                .chain(own.iter().cloned())
                .collect()
        };
        let (normal, dev) = (declared(&[Kind::Normal]), declared(&[Kind::Normal, Kind::Dev]));
        for (uses, declared, section) in [
            (&code.main, &normal, "[dependencies]"),
            (&code.test, &dev, "[dev-dependencies] (or [dependencies])"),
        ] {
            for (root, file) in uses.iter().filter(|(r, _)| r.starts_with("rancher_")) {
                if !declared.contains(root) && !code.local_modules.contains(root) {
                    problems.push(format!(
                        "{}: {} uses `{root}`, which {} does not declare; add `{}.workspace = true` to {section} in \
                         {}.",
                        rel(file),
                        p.name,
                        p.name,
                        root.replace('_', "-"),
                        p.manifest
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn module_cycles_stay_within_the_limit() {
    let ws = Workspace::load();
    let mut report = Vec::new();
    let mut total = 0;
    for p in ws
        .packages
        .iter()
        .filter(|p| level(&p.name).is_some_and(|l| l < ABOVE_ALL))
    {
        for root in &p.roots {
            let graph = ModuleGraph::build(root);
            for cycle in graph.cycles() {
                total += 1;
                report.push(format!("{} ({}): {}", p.name, rel(root), cycle));
            }
        }
    }
    println!("{total} module cycles:\n{}", report.join("\n"));
    assert!(
        total <= MAX_MODULE_CYCLES,
        "{total} module cycles inside our crates, more than the {MAX_MODULE_CYCLES} tidy allows. Break the new one: \
         move what both sides need into a module below them both (or into the one that uses it).\n{}",
        report.join("\n")
    );
}

#[test]
fn children_of_tests_are_killed_on_drop() {
    let ws = Workspace::load();
    // The guard itself (rancher-approval's `test_util`, used by its process suites and the tests package).
    let guards = [root().join("crates/rancher-approval/src/test_util/process.rs")];
    let mut problems = Vec::new();
    // The end-to-end tests, xtask and rancher-approval's process suites, which start rancherctl, simulators and
    // test binaries.
    for p in ws
        .packages
        .iter()
        .filter(|p| ["rancher-access-tests", "xtask", "rancher-approval"].contains(&p.name.as_str()))
    {
        // rancher-approval's own code starts one child on purpose: the detached watchdog of its test database,
        // which must outlive a killed test to stop the database.
        let dirs = match p.name.as_str() {
            "rancher-approval" => vec![p.dir.join("tests")],
            _ => vec![p.dir.join("src"), p.dir.join("tests")],
        };
        for file in dirs.iter().flat_map(|d| rust_files(d)).filter(|f| !guards.contains(f)) {
            let text = std::fs::read_to_string(&file).unwrap();
            let tokens = TokenStream::from_str(&text).unwrap_or_else(|e| panic!("{} does not lex: {e:?}", rel(&file)));
            if bare_spawns(tokens.into_iter().collect()) > 0 {
                problems.push(format!(
                    "{}: spawns a child with `.spawn()`, which outlives the test when it panics first; use \
                     `rancher_access_tests::process::SpawnKilledOnDrop::spawn_killed_on_drop()` (in rancher-approval, \
                     `test_util::process::SpawnKilledOnDrop`; for a `tokio::process::Command`, `.kill_on_drop(true)` \
                     before `.spawn()`).",
                    rel(&file)
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// Public functions, fields and variants of rancher-workflows and rancher-server that may carry
/// `serde_json::Value`, each with why: (crate, item, reason). Everything else says what it holds with a type.
const VALUE_ALLOWED: &[(&str, &str, &str)] = &[
    (
        "rancher-workflows",
        "Exec::write",
        "the body and answer of any operation of the endpoint list, which types them `any`",
    ),
    (
        "rancher-workflows",
        "ApiInputs.body",
        "the body of a `rancher-api-request`: typed `any` by the endpoint list",
    ),
    (
        "rancher-workflows",
        "PlannedRequest.body",
        "the body of a write a dry run would send: any operation's body, typed `any` by the endpoint list",
    ),
    (
        "rancher-workflows",
        "Inputs::into_value",
        "the stored form of a request's inputs: JSON is the contract with requests filed before an upgrade",
    ),
    (
        "rancher-workflows",
        "Inputs::as_value",
        "the stored form of a request's inputs: JSON is the contract with requests filed before an upgrade",
    ),
    (
        "rancher-workflows",
        "Report::new",
        "a run's result document (left: one result type per workflow; for `rancher-api-request` it is the \
         server's `any` answer)",
    ),
    (
        "rancher-workflows",
        "Report.result",
        "a run's result document (left: one result type per workflow; for `rancher-api-request` it is the \
         server's `any` answer)",
    ),
    (
        "rancher-workflows",
        "RunOutput.result",
        "a run's result document (left: one result type per workflow; for `rancher-api-request` it is the \
         server's `any` answer)",
    ),
];

#[test]
fn no_json_value_in_public_signatures_but_the_allowed() {
    let mut found = Vec::new();
    for (package, dir) in [
        ("rancher-workflows", "crates/rancher-workflows/src"),
        ("rancher-server", "crates/rancher-server/src"),
    ] {
        for file in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            let tokens = TokenStream::from_str(&text).unwrap_or_else(|e| panic!("{} does not lex: {e:?}", rel(&file)));
            let mut items = Vec::new();
            public_value_items(tokens.into_iter().collect(), None, false, &mut items);
            found.extend(items.into_iter().map(|item| (package, item, rel(&file))));
        }
    }
    let listed = |package: &str, item: &str| VALUE_ALLOWED.iter().any(|(p, i, _)| *p == package && *i == item);
    let problems: Vec<String> = found
        .iter()
        .filter(|(p, item, _)| !listed(p, item))
        .map(|(p, item, file)| format!("{p} {file}: `{item}` has `serde_json::Value` in a public signature"))
        .collect();
    let stale: Vec<String> = VALUE_ALLOWED
        .iter()
        .filter(|(p, i, _)| !found.iter().any(|(fp, fi, _)| fp == p && fi == i))
        .map(|(p, i, _)| format!("{p}: `{i}` is allowed but has no `Value` any more; take it off VALUE_ALLOWED"))
        .collect();
    assert!(
        problems.is_empty() && stale.is_empty(),
        "\n{}\n\nSay what the JSON holds with a type (a struct of the wire module, a typed input struct, an enum); only \
         what the endpoint list itself types `any` stays JSON, listed in VALUE_ALLOWED with the reason.\n",
        problems.iter().chain(&stale).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// The names (`fn`, `Type::fn`, `Type.field`, `Enum::Variant`) of public functions, fields and variants whose
/// signature names `Value`, outside `#[cfg(test)]` code. `owner` is the type whose `impl`, struct or enum body is
/// being read; `all_public` is set inside a public trait, whose functions have no `pub` of their own.
fn public_value_items(tokens: Vec<TokenTree>, owner: Option<&str>, all_public: bool, out: &mut Vec<String>) {
    let mut i = 0;
    while i < tokens.len() {
        // `#[cfg(test)]` items are not part of the interface.
        if is_punct(tokens.get(i), '#') {
            if let Some(TokenTree::Group(g)) = tokens.get(i + 1) {
                if cfg_predicate(&g.stream()).is_some_and(|(name, p)| name == "cfg" && only_test(p)) {
                    i = item_end(&tokens, i + 2);
                    continue;
                }
            }
            i += 2;
            continue;
        }
        let public = is_ident(tokens.get(i), "pub")
            && !matches!(tokens.get(i + 1), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis);
        let start = if public { i + 1 } else { i };
        let mut k = start;
        while ["async", "const", "unsafe", "extern", "default"]
            .iter()
            .any(|q| is_ident(tokens.get(k), q))
        {
            k += 1;
        }
        match ident(tokens.get(k)).as_deref() {
            Some("fn") if public || all_public => {
                let name = ident(tokens.get(k + 1)).unwrap_or_default();
                let end = item_end(&tokens, k);
                // The signature: everything before the body.
                let sig_end = if matches!(tokens.get(end - 1), Some(TokenTree::Group(_))) {
                    end - 1
                } else {
                    end
                };
                if names_value(&tokens[k..sig_end]) {
                    out.push(owner.map_or(name.clone(), |o| format!("{o}::{name}")));
                }
                i = end;
            }
            Some(kind @ ("struct" | "enum" | "union")) if public => {
                let name = ident(tokens.get(k + 1)).unwrap_or_default();
                let end = item_end(&tokens, k);
                let body = tokens[k..end.min(tokens.len())].iter().rev().find_map(|t| match t {
                    TokenTree::Group(g) if g.delimiter() != Delimiter::Bracket => Some(g.stream()),
                    _ => None,
                });
                if let Some(body) = body {
                    let parts: Vec<TokenTree> = body.into_iter().collect();
                    for (n, member) in split_members(&parts).into_iter().enumerate() {
                        let member = strip_attributes(member);
                        let (member_public, rest) = match member.first() {
                            Some(t) if is_ident(Some(t), "pub") => match member.get(1) {
                                Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => {
                                    (false, &member[2..])
                                }
                                _ => (true, &member[1..]),
                            },
                            _ => (kind == "enum", member),
                        };
                        if member_public && names_value(rest) {
                            let member_name = ident(rest.first())
                                .filter(|_| is_punct(rest.get(1), ':') || kind == "enum")
                                .unwrap_or_else(|| n.to_string());
                            let sep = if kind == "enum" { "::" } else { "." };
                            out.push(format!("{name}{sep}{member_name}"));
                        }
                    }
                }
                i = end;
            }
            Some("trait") if public => {
                let name = ident(tokens.get(k + 1)).unwrap_or_default();
                let end = item_end(&tokens, k);
                if let Some(TokenTree::Group(g)) = tokens.get(end - 1) {
                    public_value_items(g.stream().into_iter().collect(), Some(&name), true, out);
                }
                i = end;
            }
            Some("impl") => {
                let end = item_end(&tokens, k);
                let head = &tokens[k + 1..end - 1];
                // `impl Trait for Type` answers to the trait; an inherent `impl Type` declares its own.
                if !head.iter().any(|t| is_ident(Some(t), "for")) {
                    let ty = impl_type(head);
                    if let Some(TokenTree::Group(g)) = tokens.get(end - 1) {
                        public_value_items(g.stream().into_iter().collect(), ty.as_deref(), false, out);
                    }
                }
                i = end;
            }
            Some("mod") => {
                let end = item_end(&tokens, k);
                if let Some(TokenTree::Group(g)) = tokens.get(end - 1) {
                    public_value_items(g.stream().into_iter().collect(), None, false, out);
                }
                i = end;
            }
            _ => i += 1,
        }
    }
}

/// The fields or variants of a body, split at the commas outside generic arguments (`Map<String, Value>` is one).
fn split_members(tokens: &[TokenTree]) -> Vec<&[TokenTree]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, t) in tokens.iter().enumerate() {
        match t {
            TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
            // `->` in a function type closes nothing.
            TokenTree::Punct(p)
                if p.as_char() == '>' && !is_punct(i.checked_sub(1).and_then(|j| tokens.get(j)), '-') =>
            {
                depth = depth.saturating_sub(1)
            }
            TokenTree::Punct(p) if p.as_char() == ',' && depth == 0 => {
                out.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&tokens[start..]);
    out
}

/// The type an inherent `impl<…> Type<…>` is for: the first name after the impl's own generics.
fn impl_type(head: &[TokenTree]) -> Option<String> {
    let mut depth = 0usize;
    for (i, t) in head.iter().enumerate() {
        match t {
            TokenTree::Punct(p) if p.as_char() == '<' => depth += 1,
            TokenTree::Punct(p) if p.as_char() == '>' => depth = depth.saturating_sub(1),
            // A lifetime (`'s`) is a quote and a name: not a type.
            TokenTree::Ident(id) if depth == 0 && !is_punct(i.checked_sub(1).and_then(|j| head.get(j)), '\'') => {
                return Some(id.to_string())
            }
            _ => {}
        }
    }
    None
}

/// The tokens of a field or variant without its attributes (doc comments included).
fn strip_attributes(tokens: &[TokenTree]) -> &[TokenTree] {
    let mut i = 0;
    while is_punct(tokens.get(i), '#') && matches!(tokens.get(i + 1), Some(TokenTree::Group(_))) {
        i += 2;
    }
    &tokens[i.min(tokens.len())..]
}

/// Whether `Value` is named anywhere in the tokens (`serde_json::Value`, `Value`, `Map<String, Value>`, ...).
fn names_value(tokens: &[TokenTree]) -> bool {
    tokens.iter().any(|t| match t {
        TokenTree::Ident(id) => id == "Value",
        TokenTree::Group(g) => names_value(&g.stream().into_iter().collect::<Vec<_>>()),
        _ => false,
    })
}

/// Calls `.spawn()` (no arguments: a process, not a task) in a statement that does not say `kill_on_drop`.
fn bare_spawns(tokens: Vec<TokenTree>) -> usize {
    let mut found = 0;
    let mut statement_start = 0;
    for (i, t) in tokens.iter().enumerate() {
        match t {
            TokenTree::Punct(p) if p.as_char() == ';' => statement_start = i + 1,
            TokenTree::Group(g) => found += bare_spawns(g.stream().into_iter().collect()),
            TokenTree::Ident(id) if id == "spawn" && i > 0 && is_punct(tokens.get(i - 1), '.') => {
                let no_args = matches!(tokens.get(i + 1), Some(TokenTree::Group(g))
                    if g.delimiter() == Delimiter::Parenthesis && g.stream().is_empty());
                let guarded = tokens[statement_start..i]
                    .iter()
                    .any(|t| is_ident(Some(t), "kill_on_drop"));
                if no_args && !guarded {
                    found += 1;
                }
            }
            _ => {}
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------------------------
// The workspace, from `cargo metadata`.

fn level(package: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(n, _)| *n == package)
        .map(|(_, l)| *l)
        .or(match package {
            "rancher-access-tests" | "xtask" | "rancher-bench" | "custom-workflow" => Some(ABOVE_ALL),
            _ => None,
        })
}

fn layer_order() -> String {
    let top = LAYERS.iter().map(|(_, l)| *l).max().unwrap_or(0);
    (0..=top)
        .map(|l| {
            LAYERS
                .iter()
                .filter(|(_, x)| *x == l)
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>()
        .join(" < ")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A path relative to the workspace root, for messages.
fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Dev,
    Build,
}

impl Kind {
    fn section(self) -> &'static str {
        match self {
            Kind::Normal => "[dependencies]",
            Kind::Dev => "[dev-dependencies]",
            Kind::Build => "[build-dependencies]",
        }
    }
}

#[derive(Debug)]
struct Dep {
    /// The package's name.
    name: String,
    /// The name the code uses: the rename, else the package's library name.
    code_name: String,
    kind: Kind,
    optional: bool,
    target: Option<String>,
    features: BTreeSet<String>,
    default_features: bool,
    /// A path dependency inside the workspace.
    internal: bool,
}

#[derive(Debug)]
struct Package {
    name: String,
    dir: PathBuf,
    /// The manifest, relative to the workspace root.
    manifest: String,
    lib_name: Option<String>,
    deps: Vec<Dep>,
    /// The root files of the library and binary targets.
    roots: Vec<PathBuf>,
}

impl Package {
    /// A dev-dependency that adds nothing to the normal one of the same package: tests see normal dependencies.
    fn redundant_dev(&self, dev: &Dep) -> bool {
        self.deps.iter().any(|n| {
            n.kind == Kind::Normal
                && n.name == dev.name
                && n.code_name == dev.code_name
                && !n.optional
                && n.target.is_none()
                && dev.target.is_none()
                && dev.features.is_subset(&n.features)
                && (n.default_features || !dev.default_features)
        })
    }
}

struct Workspace {
    packages: Vec<Package>,
}

impl Workspace {
    /// The workspace, read once per test run.
    fn load() -> &'static Workspace {
        static WS: std::sync::OnceLock<Workspace> = std::sync::OnceLock::new();
        WS.get_or_init(Workspace::read)
    }

    fn read() -> Workspace {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1"])
            .current_dir(root())
            .output()
            .expect("cargo metadata runs");
        assert!(
            out.status.success(),
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata answers JSON");
        let members: BTreeSet<&str> = meta["workspace_members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let lib_of = |p: &Value| -> Option<String> {
            p["targets"].as_array()?.iter().find_map(|t| {
                let kinds = t["kind"].as_array()?;
                let lib = kinds
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|k| k.ends_with("lib") || k == "proc-macro");
                lib.then(|| t["name"].as_str().unwrap().replace('-', "_"))
            })
        };
        let mut lib_names: HashMap<String, String> = HashMap::new();
        for p in meta["packages"].as_array().unwrap() {
            if let Some(lib) = lib_of(p) {
                lib_names.insert(p["name"].as_str().unwrap().to_string(), lib);
            }
        }
        let ws_root = root();
        let mut packages = Vec::new();
        for p in meta["packages"].as_array().unwrap() {
            if !members.contains(p["id"].as_str().unwrap()) {
                continue;
            }
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
            let dir = manifest.parent().unwrap().to_path_buf();
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    let name = d["name"].as_str().unwrap().to_string();
                    let code_name = d["rename"]
                        .as_str()
                        .map(|r| r.replace('-', "_"))
                        .or_else(|| lib_names.get(&name).cloned())
                        .unwrap_or_else(|| name.replace('-', "_"));
                    Dep {
                        kind: match d["kind"].as_str() {
                            Some("dev") => Kind::Dev,
                            Some("build") => Kind::Build,
                            _ => Kind::Normal,
                        },
                        optional: d["optional"].as_bool().unwrap_or(false),
                        target: d["target"].as_str().map(str::to_string),
                        features: d["features"]
                            .as_array()
                            .map(|f| f.iter().filter_map(Value::as_str).map(str::to_string).collect())
                            .unwrap_or_default(),
                        default_features: d["uses_default_features"].as_bool().unwrap_or(true),
                        internal: d["path"]
                            .as_str()
                            .is_some_and(|path| Path::new(path).starts_with(&ws_root)),
                        code_name,
                        name,
                    }
                })
                .collect();
            let roots = p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| {
                    t["kind"].as_array().is_some_and(|k| {
                        k.iter()
                            .filter_map(Value::as_str)
                            .any(|k| k.ends_with("lib") || k == "bin")
                    })
                })
                .map(|t| PathBuf::from(t["src_path"].as_str().unwrap()))
                .collect();
            packages.push(Package {
                name: p["name"].as_str().unwrap().to_string(),
                manifest: rel(&manifest),
                lib_name: lib_of(p),
                dir,
                deps,
                roots,
            });
        }
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        Workspace { packages }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// What the code names, per scope.

/// The path roots a package's code names, each with the first file that names it.
struct Code {
    /// `src/` outside test modules.
    main: BTreeMap<String, PathBuf>,
    /// Test modules in `src/`, doc examples, `tests/`, `examples/`, `benches/`.
    test: BTreeMap<String, PathBuf>,
    /// `build.rs`.
    build: BTreeMap<String, PathBuf>,
    /// Names of the package's own modules (a path root that is one is not a crate).
    local_modules: BTreeSet<String>,
}

impl Code {
    fn of(p: &Package) -> Code {
        let mut code = Code {
            main: BTreeMap::new(),
            test: BTreeMap::new(),
            build: BTreeMap::new(),
            local_modules: BTreeSet::new(),
        };
        let src = p.dir.join("src");
        let scans: Vec<(PathBuf, FileScan)> = rust_files(&src)
            .into_iter()
            .map(|f| (f.clone(), scan_file(&f)))
            .collect();
        // Files that are test modules: `#[cfg(test)] mod name;` and everything below them.
        let mut test_dirs = Vec::new();
        for (file, scan) in &scans {
            for m in &scan.test_mods {
                let base = module_dir(file);
                test_dirs.push(base.join(format!("{m}.rs")));
                test_dirs.push(base.join(m));
            }
        }
        for (file, scan) in &scans {
            let is_test = scan.whole_test || test_dirs.iter().any(|t| file.starts_with(t));
            let main = if is_test { &mut code.test } else { &mut code.main };
            for r in &scan.roots_main {
                main.entry(r.clone()).or_insert_with(|| file.clone());
            }
            for r in scan.roots_test.iter().chain(&scan.doc_roots) {
                code.test.entry(r.clone()).or_insert_with(|| file.clone());
            }
            code.local_modules.extend(scan.mods.iter().cloned());
            code.local_modules.extend(scan.test_mods.iter().cloned());
        }
        for dir in ["tests", "examples", "benches"] {
            for f in rust_files(&p.dir.join(dir)) {
                let scan = scan_file(&f);
                for r in scan.roots_main.iter().chain(&scan.roots_test).chain(&scan.doc_roots) {
                    code.test.entry(r.clone()).or_insert_with(|| f.clone());
                }
            }
        }
        let build = p.dir.join("build.rs");
        if build.exists() {
            for r in scan_file(&build).roots_main {
                code.build.entry(r).or_insert_with(|| build.clone());
            }
        }
        code
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Where the files of `file`'s child modules live.
fn module_dir(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap().to_path_buf();
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("lib" | "main" | "mod") => dir,
        Some(stem) => dir.join(stem),
        None => dir,
    }
}

/// One `use` entry: `a::b::c as d`, or `a::b::*`.
#[derive(Debug, Clone)]
struct UseEntry {
    path: Vec<String>,
    /// The name it binds (None for a glob).
    name: Option<String>,
    public: bool,
}

/// What one file says, read as tokens.
#[derive(Default, Debug)]
struct FileScan {
    roots_main: BTreeSet<String>,
    roots_test: BTreeSet<String>,
    /// Roots named in the code blocks of doc comments (doc tests).
    doc_roots: BTreeSet<String>,
    /// `mod x;` / `mod x { }` outside tests.
    mods: Vec<String>,
    /// `#[cfg(test)] mod x;`.
    test_mods: Vec<String>,
    /// `#![cfg(test)]` at the top.
    whole_test: bool,
    /// Items defined at the file's top level (outside tests).
    items: BTreeSet<String>,
    /// Module-level `use` entries outside tests.
    uses: Vec<UseEntry>,
    /// Private `use` entries anywhere outside tests (inside functions too): real imports.
    imports: Vec<UseEntry>,
    /// Every path `a::b::…` outside tests and `use`s.
    paths: Vec<Vec<String>>,
    /// Inside a Rust code block of a doc comment: its text so far.
    doc_block: Option<String>,
    /// Inside a code block of another language.
    doc_other: bool,
}

fn scan_file(file: &Path) -> FileScan {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    scan_text(&text, &rel(file))
}

fn scan_text(text: &str, name: &str) -> FileScan {
    let tokens = TokenStream::from_str(text).unwrap_or_else(|e| panic!("{name} does not lex: {e:?}"));
    let mut scan = FileScan::default();
    walk(tokens.into_iter().collect(), Scope::Main, 0, &mut scan);
    scan
}

fn is_punct(t: Option<&TokenTree>, c: char) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

fn is_ident(t: Option<&TokenTree>, s: &str) -> bool {
    matches!(t, Some(TokenTree::Ident(i)) if i == s)
}

fn ident(t: Option<&TokenTree>) -> Option<String> {
    match t {
        Some(TokenTree::Ident(i)) => Some(i.to_string()),
        _ => None,
    }
}

/// The predicate of a `cfg(…)` or `cfg_attr(…, …)` attribute, with the attribute's name.
fn cfg_predicate(attr: &TokenStream) -> Option<(String, TokenStream)> {
    let toks: Vec<TokenTree> = attr.clone().into_iter().collect();
    let name = ident(toks.first()).filter(|n| n == "cfg" || n == "cfg_attr")?;
    let Some(TokenTree::Group(g)) = toks.get(1) else {
        return None;
    };
    let inner: Vec<TokenTree> = g.stream().into_iter().collect();
    let predicate = inner.split(|t| is_punct(Some(t), ',')).next().unwrap_or_default();
    Some((name, predicate.iter().cloned().collect()))
}

/// The index after the item starting at `start`: past its `;` or its `{ … }` body.
fn item_end(tokens: &[TokenTree], mut i: usize) -> usize {
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Punct(p) if p.as_char() == ';' => return i + 1,
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Which builds see a stretch of code: the normal one, only tests, or both (`cfg(any(test, feature = …))`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Main,
    Test,
    Both,
}

impl Scope {
    /// The scope of code under a `cfg` predicate, inside code of scope `self`.
    fn under(self, predicate: &TokenStream) -> Scope {
        if only_test(predicate.clone()) {
            Scope::Test
        } else if mentions_test(predicate.clone()) && self == Scope::Main {
            Scope::Both
        } else {
            self
        }
    }

    fn record(self, scan: &mut FileScan, root: String) {
        if self != Scope::Test {
            scan.roots_main.insert(root.clone());
        }
        if self != Scope::Main {
            scan.roots_test.insert(root);
        }
    }
}

/// `test` somewhere in the predicate, outside `not(…)` (code under `not(test)` is normal code only).
fn mentions_test(ts: TokenStream) -> bool {
    let toks: Vec<TokenTree> = ts.into_iter().collect();
    toks.iter().enumerate().any(|(i, t)| match t {
        TokenTree::Ident(id) => id == "test",
        TokenTree::Group(g) => {
            !is_ident(i.checked_sub(1).and_then(|j| toks.get(j)), "not") && mentions_test(g.stream())
        }
        _ => false,
    })
}

/// `test`, or `all(…)` with `test` in it: code that only tests compile. Not `any(test, feature = …)`.
fn only_test(ts: TokenStream) -> bool {
    let toks: Vec<TokenTree> = ts.into_iter().collect();
    toks.iter().enumerate().any(|(i, t)| match t {
        TokenTree::Ident(id) => id == "test",
        TokenTree::Group(g) => is_ident(i.checked_sub(1).and_then(|j| toks.get(j)), "all") && only_test(g.stream()),
        _ => false,
    })
}

fn walk(tokens: Vec<TokenTree>, mut scope: Scope, depth: usize, scan: &mut FileScan) {
    let mut i = 0;
    while i < tokens.len() {
        // Attributes: doc comments (doc tests), `#[cfg(test)]` items, the rest scanned as code.
        if is_punct(tokens.get(i), '#') {
            let inner = is_punct(tokens.get(i + 1), '!');
            let at = if inner { i + 2 } else { i + 1 };
            if let Some(TokenTree::Group(g)) = tokens
                .get(at)
                .filter(|t| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Bracket))
            {
                let attr = g.stream();
                let attr_toks: Vec<TokenTree> = attr.clone().into_iter().collect();
                if is_ident(attr_toks.first(), "doc") {
                    if let Some(TokenTree::Literal(l)) = attr_toks.get(2) {
                        doc_code(&l.to_string(), scan);
                    }
                    i = at + 1;
                    continue;
                }
                match cfg_predicate(&attr) {
                    Some((kind, pred)) if kind == "cfg" && scope.under(&pred) != scope => {
                        let inner_scope = scope.under(&pred);
                        if inner {
                            if depth == 0 && inner_scope == Scope::Test {
                                scan.whole_test = true;
                            }
                            scope = inner_scope;
                            i = at + 1;
                            continue;
                        }
                        let end = item_end(&tokens, at + 1);
                        let item = &tokens[at + 1..end];
                        if inner_scope == Scope::Test {
                            if let Some(pos) = item.iter().position(|t| is_ident(Some(t), "mod")) {
                                if let (Some(name), true) = (ident(item.get(pos + 1)), is_punct(item.get(pos + 2), ';'))
                                {
                                    scan.test_mods.push(name);
                                }
                            }
                        }
                        walk(item.to_vec(), inner_scope, depth, scan);
                        i = end;
                        continue;
                    }
                    Some((kind, pred)) if kind == "cfg_attr" => {
                        walk(attr_toks, scope.under(&pred), depth + 1, scan);
                        i = at + 1;
                        continue;
                    }
                    _ => {}
                }
                walk(attr_toks, scope, depth + 1, scan);
                i = at + 1;
                continue;
            }
        }
        match &tokens[i] {
            TokenTree::Group(g) => walk(g.stream().into_iter().collect(), scope, depth + 1, scan),
            TokenTree::Ident(id) => {
                let word = id.to_string();
                let prev = i.checked_sub(1).and_then(|j| tokens.get(j));
                if word == "use" && !is_punct(prev, '.') {
                    let end = tokens[i..]
                        .iter()
                        .position(|t| is_punct(Some(t), ';'))
                        .map_or(tokens.len(), |p| i + p);
                    let public = is_ident(prev, "pub")
                        || (matches!(prev, Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
                            && is_ident(i.checked_sub(2).and_then(|j| tokens.get(j)), "pub"));
                    let mut entries = Vec::new();
                    use_tree(&tokens[i + 1..end], Vec::new(), public, &mut entries);
                    for e in &entries {
                        if let Some(r) = e.path.first() {
                            scope.record(scan, r.clone());
                        }
                    }
                    if scope != Scope::Test {
                        if depth == 0 {
                            scan.uses.extend(entries.iter().cloned());
                        }
                        scan.imports.extend(entries.into_iter().filter(|e| !e.public));
                    }
                    i = end + 1;
                    continue;
                }
                if word == "crate" && is_ident(prev, "extern") {
                    if let Some(name) = ident(tokens.get(i + 1)) {
                        scope.record(scan, name);
                    }
                }
                if scope != Scope::Test && depth == 0 {
                    if let Some(name) = ident(tokens.get(i + 1)) {
                        match word.as_str() {
                            "mod" => scan.mods.push(name.clone()),
                            "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "union" => {
                                scan.items.insert(name);
                            }
                            _ => {}
                        }
                    }
                }
                // A path root: `name::` not preceded by `::` (or by `.`, `$`); `field: name::T` is a root.
                let after_colons = is_punct(prev, ':')
                    && matches!(i.checked_sub(2).and_then(|j| tokens.get(j)),
                        Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == proc_macro2::Spacing::Joint);
                let after_dot = is_punct(prev, '.') || is_punct(prev, '$');
                if is_punct(tokens.get(i + 1), ':') && is_punct(tokens.get(i + 2), ':') && !after_colons && !after_dot {
                    let mut path = vec![word.clone()];
                    let mut j = i + 1;
                    while is_punct(tokens.get(j), ':') && is_punct(tokens.get(j + 1), ':') {
                        match ident(tokens.get(j + 2)) {
                            Some(seg) => path.push(seg),
                            None => break,
                        }
                        j += 3;
                    }
                    scope.record(scan, word);
                    if scope != Scope::Test {
                        scan.paths.push(path);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
}

/// Splits a `use` tree into its entries.
fn use_tree(tokens: &[TokenTree], prefix: Vec<String>, public: bool, out: &mut Vec<UseEntry>) {
    let mut path = prefix;
    let mut alias = None;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Ident(id) if id == "as" => {
                alias = ident(tokens.get(i + 1));
                i += 1;
            }
            TokenTree::Ident(id) => path.push(id.to_string()),
            TokenTree::Punct(p) if p.as_char() == '*' => {
                out.push(UseEntry {
                    path,
                    name: None,
                    public,
                });
                return;
            }
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => {
                let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                for part in inner.split(|t| is_punct(Some(t), ',')) {
                    if !part.is_empty() {
                        use_tree(part, path.clone(), public, out);
                    }
                }
                return;
            }
            _ => {}
        }
        i += 1;
    }
    if path.last().is_some_and(|l| l == "self") {
        path.pop();
    }
    if let Some(last) = path.last().cloned() {
        out.push(UseEntry {
            name: Some(alias.unwrap_or(last)),
            path,
            public,
        });
    }
}

/// Follows the fenced code blocks of doc comments, one doc attribute at a time; at the end of a Rust block (a fence
/// without a language, or `rust`, `no_run`, `ignore`, `should_panic`, `compile_fail`) its path roots count as test
/// code (doc tests). Lines hidden with `# ` count too.
fn doc_code(literal: &str, scan: &mut FileScan) {
    let raw = literal.starts_with('r');
    let text = literal.trim_start_matches('r').trim_matches('#');
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    let text = if raw { text.to_string() } else { unescape(text) };
    for line in text.lines() {
        let line = line.trim();
        if let Some(info) = line.strip_prefix("```") {
            match scan.doc_block.take() {
                Some(block) => {
                    if let Ok(ts) = TokenStream::from_str(&block) {
                        let mut inner = FileScan::default();
                        walk(ts.into_iter().collect(), Scope::Test, 1, &mut inner);
                        scan.doc_roots.extend(inner.roots_test);
                    }
                }
                None if scan.doc_other => scan.doc_other = false,
                None => {
                    let rust = info.split(',').all(|w| {
                        let w = w.trim();
                        w.is_empty()
                            || matches!(w, "rust" | "no_run" | "ignore" | "should_panic" | "compile_fail")
                            || w.starts_with("edition")
                    });
                    if rust {
                        scan.doc_block = Some(String::new());
                    } else {
                        scan.doc_other = true;
                    }
                }
            }
        } else if let Some(block) = scan.doc_block.as_mut() {
            block.push_str(line.strip_prefix("# ").unwrap_or(line));
            block.push('\n');
        }
    }
}

/// The text of a (non-raw) string literal's body.
fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => {}
            Some('0') => {}
            Some('u') => {
                let code: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                out.extend(u32::from_str_radix(&code, 16).ok().and_then(char::from_u32));
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Module cycles.

/// The modules of one crate target (one per file; inline modules belong to their file) and which use which.
struct ModuleGraph {
    /// Module paths (`""` for the crate root, `a::b`), index = node.
    names: Vec<String>,
    /// Edges with one example path each: (from, to) → `crate::to::Item`.
    edges: BTreeMap<(usize, usize), String>,
}

struct ModuleInfo {
    path: Vec<String>,
    scan: FileScan,
    children: BTreeMap<String, usize>,
}

impl ModuleGraph {
    fn build(root_file: &Path) -> ModuleGraph {
        let mut modules: Vec<ModuleInfo> = Vec::new();
        let mut queue = vec![(Vec::<String>::new(), root_file.to_path_buf(), None::<(usize, String)>)];
        while let Some((path, file, parent)) = queue.pop() {
            let scan = scan_file(&file);
            let idx = modules.len();
            if let Some((p, name)) = parent {
                modules[p].children.insert(name, idx);
            }
            let base = module_dir(&file);
            for m in &scan.mods {
                let candidates = [base.join(format!("{m}.rs")), base.join(m).join("mod.rs")];
                if let Some(f) = candidates.into_iter().find(|c| c.exists()) {
                    let mut child = path.clone();
                    child.push(m.clone());
                    queue.push((child, f, Some((idx, m.clone()))));
                }
            }
            modules.push(ModuleInfo {
                path,
                scan,
                children: BTreeMap::new(),
            });
        }
        let mut edges = BTreeMap::new();
        for (from, m) in modules.iter().enumerate() {
            let mut refs: Vec<Vec<String>> = m.scan.paths.clone();
            refs.extend(m.scan.imports.iter().map(|u| u.path.clone()));
            for r in refs {
                if let Some(abs) = absolute(&modules, from, &r) {
                    if let Some(to) = resolve(&modules, &abs, 0) {
                        if to != from {
                            edges.entry((from, to)).or_insert_with(|| r.join("::"));
                        }
                    }
                }
            }
        }
        ModuleGraph {
            names: modules
                .iter()
                .map(|m| {
                    if m.path.is_empty() {
                        "crate".into()
                    } else {
                        m.path.join("::")
                    }
                })
                .collect(),
            edges,
        }
    }

    /// Strongly connected components of two or more modules, each with the edges inside it.
    fn cycles(&self) -> Vec<String> {
        let n = self.names.len();
        let mut adj = vec![Vec::new(); n];
        for &(a, b) in self.edges.keys() {
            adj[a].push(b);
        }
        // Tarjan's algorithm.
        struct State {
            index: usize,
            idx: Vec<Option<usize>>,
            low: Vec<usize>,
            on: Vec<bool>,
            stack: Vec<usize>,
            sccs: Vec<Vec<usize>>,
        }
        fn visit(v: usize, adj: &[Vec<usize>], s: &mut State) {
            s.idx[v] = Some(s.index);
            s.low[v] = s.index;
            s.index += 1;
            s.stack.push(v);
            s.on[v] = true;
            for &w in &adj[v] {
                match s.idx[w] {
                    None => {
                        visit(w, adj, s);
                        s.low[v] = s.low[v].min(s.low[w]);
                    }
                    Some(iw) if s.on[w] => s.low[v] = s.low[v].min(iw),
                    _ => {}
                }
            }
            if Some(s.low[v]) == s.idx[v] {
                let mut scc = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                s.sccs.push(scc);
            }
        }
        let mut s = State {
            index: 0,
            idx: vec![None; n],
            low: vec![0; n],
            on: vec![false; n],
            stack: vec![],
            sccs: vec![],
        };
        for v in 0..n {
            if s.idx[v].is_none() {
                visit(v, &adj, &mut s);
            }
        }
        let mut out = Vec::new();
        for scc in s.sccs.into_iter().filter(|c| c.len() > 1) {
            let set: BTreeSet<usize> = scc.iter().copied().collect();
            let mut names: Vec<&str> = scc.iter().map(|&i| self.names[i].as_str()).collect();
            names.sort();
            let inside: Vec<String> = self
                .edges
                .iter()
                .filter(|((a, b), _)| set.contains(a) && set.contains(b))
                .map(|((a, b), via)| format!("{} → {} ({via})", self.names[*a], self.names[*b]))
                .collect();
            out.push(format!(
                "{} modules [{}]; edges: {}",
                scc.len(),
                names.join(", "),
                inside.join("; ")
            ));
        }
        out
    }
}

/// `path` as written in module `from`, made absolute (segments below the crate root); None when it names another
/// crate or a local item.
fn absolute(modules: &[ModuleInfo], from: usize, path: &[String]) -> Option<Vec<String>> {
    let mut base = modules[from].path.clone();
    let mut rest = path;
    match rest.first()?.as_str() {
        "crate" => {
            base.clear();
            rest = &rest[1..];
        }
        "self" => rest = &rest[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        first if modules[from].children.contains_key(first) => {}
        _ => return None,
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module a (absolute) path leads into, following `use` re-exports of the names it passes.
fn resolve(modules: &[ModuleInfo], abs: &[String], depth: usize) -> Option<usize> {
    if depth > 16 {
        return None;
    }
    let mut cur = modules.iter().position(|m| m.path.is_empty())?;
    for seg in abs {
        if let Some(&child) = modules[cur].children.get(seg) {
            cur = child;
            continue;
        }
        let m = &modules[cur];
        if m.scan.items.contains(seg) {
            return Some(cur);
        }
        if let Some(u) = m.scan.uses.iter().find(|u| u.name.as_deref() == Some(seg.as_str())) {
            return absolute(modules, cur, &u.path)
                .and_then(|a| resolve(modules, &a, depth + 1))
                .or(Some(cur));
        }
        for u in m.scan.uses.iter().filter(|u| u.name.is_none()) {
            if let Some(mut a) = absolute(modules, cur, &u.path) {
                a.push(seg.clone());
                if let Some(found) = resolve(modules, &a, depth + 1) {
                    if modules[found].scan.items.contains(seg) {
                        return Some(found);
                    }
                }
            }
        }
        return Some(cur);
    }
    Some(cur)
}

// ---------------------------------------------------------------------------------------------------------------
// The reader itself, on small sources.

#[test]
fn the_reader_sees_roots_in_code_and_not_in_comments_or_strings() {
    let scan = scan_text(
        r#"
        //! Uses `fake_comment::X` in prose only.
        use serde::Deserialize;
        use {alpha::A, beta as b};
        extern crate gamma;
        struct S { body: bytes::Bytes, text: &'static str }
        fn f() { let _ = "string_only::x"; json_macro::json!({"k": inner_macro::v()}); }
        #[tokio::main]
        async fn main() {}
        "#,
        "sample",
    );
    let roots: Vec<&str> = scan.roots_main.iter().map(String::as_str).collect();
    assert_eq!(
        roots,
        [
            "alpha",
            "beta",
            "bytes",
            "gamma",
            "inner_macro",
            "json_macro",
            "serde",
            "tokio"
        ]
    );
}

#[test]
fn the_reader_tells_test_code_from_normal_code() {
    let scan = scan_text(
        r#"
        /// ```
        /// let c = doc_only::Client::new();
        /// ```
        ///
        /// ```text
        /// not_code::x
        /// ```
        pub fn a() {}
        #[cfg(test)]
        mod tests { use insta::assert_snapshot; }
        #[cfg(test)]
        mod more;
        #[cfg_attr(any(test, feature = "mock"), mockall::automock)]
        trait T {}
        #[cfg(all(test, unix))]
        fn only_tests() { rustix::process::getuid(); }
        #[cfg(not(test))]
        fn not_tests() { real::f(); }
        "#,
        "sample",
    );
    let main: Vec<&str> = scan.roots_main.iter().map(String::as_str).collect();
    let test: Vec<&str> = scan
        .roots_test
        .iter()
        .chain(&scan.doc_roots)
        .map(String::as_str)
        .collect();
    assert_eq!(main, ["mockall", "real"]);
    assert_eq!(test, ["insta", "mockall", "rustix", "doc_only"]);
    assert_eq!(scan.test_mods, ["more"]);
}

#[test]
fn a_cycle_between_two_modules_is_found_and_a_re_export_is_not_one() {
    let dir = std::env::temp_dir().join(format!("tidy-cycles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        ("lib.rs", "mod a; mod b; mod c; pub use a::A; pub use c::C;"),
        ("a.rs", "pub struct A; pub fn f() -> crate::b::B { crate::b::B }"),
        ("b.rs", "use super::A; pub struct B; fn g(_: A) {}"),
        ("c.rs", "pub struct C; fn h() -> crate::A { crate::A }"),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let graph = ModuleGraph::build(&dir.join("lib.rs"));
    let cycles = graph.cycles();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].starts_with("2 modules [a, b]"), "{}", cycles[0]);
}
