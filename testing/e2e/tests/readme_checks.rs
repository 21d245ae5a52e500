//! The README's table of relying-party checks stays true: every conformance,
//! session-attack and back-channel test is listed there, linked to its file, and
//! every test the table names exists in the file it links to.

use std::collections::BTreeSet;

const FILES: &[&str] = &[
    "testing/e2e/tests/rp_conformance.rs",
    "testing/e2e/tests/session_attacks.rs",
    "testing/e2e/tests/backchannel_logout.rs",
];

/// The names of the `#[test]` functions in `source`.
fn tests_in(source: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = source.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].trim() == "#[test]")
        .filter_map(|w| w[1].trim().strip_prefix("fn "))
        .filter_map(|rest| rest.split('(').next())
        .map(str::to_owned)
        .collect()
}

/// The test names the README links to `file`, as [`name`](file).
fn listed_for(readme: &str, file: &str) -> BTreeSet<String> {
    let suffix = format!("`]({file})");
    readme
        .split("[`")
        .skip(1)
        .filter_map(|chunk| chunk.find(&suffix).map(|end| chunk[..end].to_owned()))
        .filter(|name| !name.contains('`'))
        .collect()
}

#[test]
fn the_readme_lists_every_relying_party_test_and_only_real_ones() {
    let root = e2e::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for file in FILES {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        let tests = tests_in(&source);
        assert!(!tests.is_empty(), "{file} has no tests");
        let listed = listed_for(&readme, file);
        let unlisted: Vec<_> = tests.difference(&listed).collect();
        let unknown: Vec<_> = listed.difference(&tests).collect();
        assert!(
            unlisted.is_empty(),
            "README does not list {unlisted:?} of {file}"
        );
        assert!(
            unknown.is_empty(),
            "README lists {unknown:?}, not tests in {file}"
        );
    }
}
