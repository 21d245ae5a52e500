//! No crate of the workspace has files that import each other in a circle:
//! dependencies point one way (entry → routes → handlers → domain → ports).

use architecture::{cycles, describe, graph};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every crate root of the workspace: the product, `bench/` and each `testing/*`.
fn crate_roots() -> Vec<PathBuf> {
    let repo = repo();
    let mut dirs = vec![repo.clone(), repo.join("bench")];
    let mut testing: Vec<PathBuf> = std::fs::read_dir(repo.join("testing"))
        .expect("testing/ is readable")
        .map(|e| e.expect("testing/ entry").path())
        .filter(|d| d.join("Cargo.toml").exists())
        .collect();
    testing.sort();
    dirs.extend(testing);
    dirs.iter()
        .flat_map(|d| ["src/lib.rs", "src/main.rs"].map(|f| d.join(f)))
        .filter(|f| f.exists())
        .collect()
}

#[test]
fn no_crate_has_an_import_cycle_between_its_files() {
    let roots = crate_roots();
    assert!(
        roots
            .iter()
            .any(|r| r.ends_with("spin-test-host/src/main.rs"))
            && roots.len() >= 5,
        "expected the product, bench and the testing crates, found {roots:?}"
    );
    let mut report = String::new();
    for root in &roots {
        let g = graph(root).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            g.arrows.len() > 1 || root.ends_with("lib.rs"),
            "{}: no files found",
            root.display()
        );
        for cycle in cycles(&g) {
            report.push_str(&format!(
                "{}: files that import each other in a circle:\n{}\n",
                root.parent().unwrap().display(),
                describe(&g, &cycle)
            ));
        }
    }
    assert!(report.is_empty(), "{report}");
}

#[test]
fn the_product_graph_sees_its_layers() {
    let g = graph(&repo().join("src/lib.rs")).unwrap();
    let entry = g
        .arrows
        .get(Path::new("entry.rs"))
        .expect("src/entry.rs is a module of the product");
    assert!(!entry.is_empty(), "entry.rs imports nothing? {g:?}");
    assert!(g.arrows.len() >= 20, "only {} files seen", g.arrows.len());
}

/// The check itself can fail: a two-file circle and a longer one are found,
/// test-only imports are not arrows.
#[test]
fn a_cycle_is_found_and_test_code_is_not_counted() {
    let dir = std::env::temp_dir().join(format!("architecture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src/inner")).unwrap();
    let write = |p: &str, s: &str| std::fs::write(dir.join(p), s).unwrap();
    write("src/lib.rs", "mod a; mod b; mod c; mod inner; mod d;\n");
    write("src/a.rs", "use crate::b::B;\npub struct A;\n");
    write(
        "src/b.rs",
        "pub struct B;\nfn f() -> crate::a::A { crate::a::A }\n",
    );
    write(
        "src/c.rs",
        "pub(crate) struct C;\n#[cfg(test)]\nmod tests { use crate::d::D; }\n",
    );
    write("src/d.rs", "use crate::c::C;\npub(crate) struct D;\n");
    write("src/inner/mod.rs", "mod x;\npub use x::X;\npub struct Y;\n");
    write("src/inner/x.rs", "pub struct X(super::Y);\n");
    let g = graph(&dir.join("src/lib.rs")).unwrap();
    let found = cycles(&g);
    let names: Vec<Vec<String>> = found
        .iter()
        .map(|c| c.iter().map(|p| p.display().to_string()).collect())
        .collect();
    assert_eq!(
        names,
        vec![
            vec!["a.rs".to_owned(), "b.rs".to_owned()],
            vec!["inner/mod.rs".to_owned(), "inner/x.rs".to_owned()],
        ],
        "{g:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
