//! The README's table of relying-party checks stays true: every conformance,
//! session-attack, back-channel, private_key_jwt, PAR and DPoP test is listed there; each row links only tests of
//! one file, and each exists there; and a row's claim and its tests agree in kind:
//! a row about v2 or v3 links only tests of that setup (named `v2_`/`v3_`), and every
//! status a row promises (`502`, `504`, ...) is one each of its tests names or asserts
//! (in its body or a helper of its file it calls).

use std::collections::{BTreeMap, BTreeSet};

const FILES: &[&str] = &[
    "testing/e2e/tests/rp_conformance.rs",
    "testing/e2e/tests/session_attacks.rs",
    "testing/e2e/tests/backchannel_logout.rs",
    "testing/e2e/tests/private_key_jwt.rs",
    "testing/e2e/tests/fapi2.rs",
    "testing/e2e/tests/par_dpop_faults.rs",
];

/// Every function defined at the start of a line in `source` (tests and helpers), with
/// its source text (from `fn` to the closing brace at the start of a line), and
/// whether it is a `#[test]`.
fn functions_in(source: &str) -> BTreeMap<String, (bool, String)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut functions = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line
            .strip_prefix("fn ")
            .and_then(|rest| rest.split(['(', '<']).next())
        else {
            continue;
        };
        let is_test = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.starts_with("#[") || l.starts_with("///"))
            .any(|l| l.trim() == "#[test]");
        let text: Vec<&str> = lines[i..]
            .iter()
            .take_while(|l| **l != "}")
            .copied()
            .collect();
        functions.insert(name.to_owned(), (is_test, text.join("\n")));
    }
    functions
}

/// The names of the `#[test]` functions in `source`, each with its source text and
/// that of the file's helpers it calls, directly or through other helpers.
fn tests_in(source: &str) -> BTreeMap<String, String> {
    let functions = functions_in(source);
    let reach = |name: &str| {
        let mut seen = BTreeSet::from([name.to_owned()]);
        let mut todo = vec![name.to_owned()];
        let mut text = String::new();
        while let Some(next) = todo.pop() {
            let body = &functions[&next].1;
            text.push_str(body);
            text.push('\n');
            for (helper, (is_test, _)) in &functions {
                if !is_test && !seen.contains(helper) && body.contains(&format!("{helper}(")) {
                    seen.insert(helper.clone());
                    todo.push(helper.clone());
                }
            }
        }
        text
    };
    functions
        .iter()
        .filter(|(_, (is_test, _))| *is_test)
        .map(|(name, _)| (name.clone(), reach(name)))
        .collect()
}

/// One row of a README table that links tests: its claim (the first cell) and the
/// tests it links, as (name, file) in order.
struct Row {
    claim: String,
    links: Vec<(String, String)>,
}

/// The rows of the README whose cells link at least one test as [`name`](file).
fn rows(readme: &str) -> Vec<Row> {
    readme
        .lines()
        .filter(|line| line.starts_with('|') && line.contains("[`"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            let links = line
                .split("[`")
                .skip(1)
                .filter_map(|chunk| {
                    let (name, rest) = chunk.split_once("`](")?;
                    let (file, _) = rest.split_once(')')?;
                    Some((name.to_owned(), file.to_owned()))
                })
                .collect();
            Row {
                claim: cells[0].trim().to_owned(),
                links,
            }
        })
        .collect()
}

/// The HTTP error statuses a claim names (three-digit numbers 400-599 standing alone).
fn statuses_in(claim: &str) -> BTreeSet<String> {
    claim
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() == 3 && w.parse::<u16>().is_ok_and(|n| (400..600).contains(&n)))
        .map(str::to_owned)
        .collect()
}

/// The setup a claim is about: `v2` or `v3` when it says so in parentheses.
fn setup_of(claim: &str) -> Option<&'static str> {
    ["v2", "v3"]
        .into_iter()
        .find(|v| claim.contains(&format!("({v})")))
}

#[test]
fn the_readme_lists_every_relying_party_test_and_only_real_ones() {
    let root = e2e::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let sources: BTreeMap<&str, BTreeMap<String, String>> = FILES
        .iter()
        .map(|file| {
            let source = std::fs::read_to_string(root.join(file)).unwrap();
            let tests = tests_in(&source);
            assert!(!tests.is_empty(), "{file} has no tests");
            (*file, tests)
        })
        .collect();
    let rows = rows(&readme);
    let mut problems = Vec::new();
    let mut listed: BTreeSet<(String, String)> = BTreeSet::new();
    for row in &rows {
        let files: BTreeSet<&str> = row.links.iter().map(|(_, f)| f.as_str()).collect();
        if files.len() != 1 {
            problems.push(format!(
                "the row {:?} links tests of several files: {files:?}",
                row.claim
            ));
        }
        for (name, file) in &row.links {
            listed.insert((name.clone(), file.clone()));
            let Some(tests) = sources.get(file.as_str()) else {
                // A row of a file this check does not cover (e.g. shared_sessions.rs)
                // must still name real tests there.
                let source = std::fs::read_to_string(root.join(file))
                    .unwrap_or_else(|e| panic!("the row {:?} links {file}: {e}", row.claim));
                if !tests_in(&source).contains_key(name) {
                    problems.push(format!("{name} is not a test in {file}"));
                }
                continue;
            };
            let Some(body) = tests.get(name) else {
                problems.push(format!(
                    "the row {:?} links {name}, not a test in {file}",
                    row.claim
                ));
                continue;
            };
            if let Some(setup) = setup_of(&row.claim)
                && !name.starts_with(&format!("{setup}_"))
            {
                problems.push(format!(
                    "the row {:?} is about {setup}, but links {name}",
                    row.claim
                ));
            }
            for status in statuses_in(&row.claim) {
                if !name.contains(&status) && !body.contains(&status) {
                    problems.push(format!(
                        "the row {:?} promises {status}, which {name} neither names nor asserts",
                        row.claim
                    ));
                }
            }
        }
    }
    for (file, tests) in &sources {
        for name in tests.keys() {
            if !listed.contains(&(name.clone(), (*file).to_owned())) {
                problems.push(format!("README does not list {name} of {file}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
