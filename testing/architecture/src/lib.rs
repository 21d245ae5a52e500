//! The import graph of a crate's files, and the cycles in it.
//!
//! A file depends on another when its code names an item through `crate::` or
//! `super::` that lives in the other file's module (in a `use` or anywhere in
//! an expression or type). Declaring a child module (`mod x;`) is not a
//! dependency, and neither is test code (`#[cfg(test)]` items), which may
//! reach anywhere. The graph is built from files parsed with `syn`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// Module path (from the crate root) → the file that holds its code.
type Modules = BTreeMap<Vec<String>, PathBuf>;

/// Files of one crate and the files each of them depends on.
#[derive(Debug, Default)]
pub struct Graph {
    /// Every file of the crate, relative to the crate root, with its arrows.
    pub arrows: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
}

/// Builds the graph of the crate whose root file (`src/lib.rs` or
/// `src/main.rs`) is `root`. Paths in the result are relative to `root`'s folder.
pub fn graph(root: &Path) -> Result<Graph, String> {
    let dir = root.parent().ok_or("root file has no folder")?;
    let mut modules = Modules::new();
    let mut parsed = BTreeMap::new();
    collect(dir, root, Vec::new(), &mut modules, &mut parsed)?;
    let mut g = Graph::default();
    for (module, file) in &modules {
        let ast: &syn::File = &parsed[file];
        let mut paths = PathCollector {
            module: module.clone(),
            children: child_modules(&modules, module),
            aliases: BTreeMap::new(),
            found: Vec::new(),
        };
        // First the names the file's `use` items bring in, so that a path
        // through one of them (`handlers::home::show`) resolves wherever it is.
        for item in &ast.items {
            if let syn::Item::Use(u) = item
                && !is_test_only(&u.attrs)
            {
                paths.use_tree(&mut Vec::new(), &u.tree);
            }
        }
        paths.found.clear();
        paths.visit_file(ast);
        let targets = g.arrows.entry(rel(dir, file)).or_default();
        for path in paths.found {
            if let Some(target) = resolve(&modules, &path)
                && target != *file
            {
                targets.insert(rel(dir, &target));
            }
        }
    }
    Ok(g)
}

/// The names of the modules directly under `module` that have files.
fn child_modules(modules: &Modules, module: &[String]) -> BTreeSet<String> {
    modules
        .keys()
        .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
        .map(|m| m[module.len()].clone())
        .collect()
}

fn rel(dir: &Path, file: &Path) -> PathBuf {
    file.strip_prefix(dir).unwrap_or(file).to_path_buf()
}

/// Walks `mod x;` declarations from the root, as rustc finds module files.
fn collect(
    dir: &Path,
    file: &Path,
    module: Vec<String>,
    modules: &mut Modules,
    parsed: &mut BTreeMap<PathBuf, syn::File>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let ast = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    // A file's own child modules live beside it (`lib.rs`, `main.rs`,
    // `mod.rs`) or in the folder named after it (`x.rs` → `x/`).
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let child_dir = if module.is_empty() || stem == "mod" {
        file.parent().unwrap_or(dir).to_path_buf()
    } else {
        file.with_extension("")
    };
    let mut children = Vec::new();
    declared_files(&ast.items, &child_dir, &module, &mut children);
    modules.insert(module.clone(), file.to_path_buf());
    parsed.insert(file.to_path_buf(), ast);
    for (child_module, child_file) in children {
        collect(dir, &child_file, child_module, modules, parsed)?;
    }
    Ok(())
}

/// The out-of-line modules declared among `items` (inline `mod x { .. }` are
/// searched too: their `mod y;` children live in `dir/x/`). Test-only and
/// `#[path]` modules are skipped.
fn declared_files(
    items: &[syn::Item],
    dir: &Path,
    module: &[String],
    out: &mut Vec<(Vec<String>, PathBuf)>,
) {
    for item in items {
        let syn::Item::Mod(m) = item else { continue };
        if is_test_only(&m.attrs) || m.attrs.iter().any(|a| a.path().is_ident("path")) {
            continue;
        }
        let name = m.ident.to_string();
        let mut child = module.to_vec();
        child.push(name.clone());
        match &m.content {
            Some((_, inner)) => declared_files(inner, &dir.join(&name), &child, out),
            None => {
                let flat = dir.join(format!("{name}.rs"));
                let nested = dir.join(&name).join("mod.rs");
                if flat.exists() {
                    out.push((child, flat));
                } else if nested.exists() {
                    out.push((child, nested));
                }
            }
        }
    }
}

/// `#[cfg(test)]`, and `#[cfg(..)]` that mentions `test` (e.g. `any(test, ..)`):
/// code that exists for tests may depend on anything.
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && match &a.meta {
                syn::Meta::List(list) => list
                    .tokens
                    .clone()
                    .into_iter()
                    .any(|t| t.to_string() == "test"),
                _ => false,
            }
    })
}

/// The file holding the longest module prefix of an absolute module path.
fn resolve(modules: &Modules, path: &[String]) -> Option<PathBuf> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]).cloned())
        .or_else(|| modules.get(&Vec::new()).cloned())
}

/// Collects every path into the crate outside test code, made absolute:
/// `crate::`, `super::`, `self::`, a child module's name, or a name a `use`
/// of the file brought in.
struct PathCollector {
    module: Vec<String>,
    /// Child modules of the file's module (`login` in `handlers/mod.rs`).
    children: BTreeSet<String>,
    /// Name a `use` brought in → the absolute path it stands for.
    aliases: BTreeMap<String, Vec<String>>,
    found: Vec<Vec<String>>,
}

impl PathCollector {
    /// Turns `crate::a::b`, `super::a`, `self::a` into a path from the crate root.
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?.as_str();
        if let Some(target) = self.aliases.get(first) {
            let mut path = target.clone();
            path.extend(segments[1..].iter().cloned());
            return Some(path);
        }
        if self.children.contains(first) {
            let mut path = self.module.clone();
            path.extend(segments.iter().cloned());
            return Some(path);
        }
        let mut base = match first {
            "crate" => Vec::new(),
            "super" | "self" => self.module.clone(),
            _ => return None,
        };
        let mut rest = segments;
        if rest[0] == "crate" {
            rest = &rest[1..];
        } else {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                let alias = match name.as_str() {
                    "self" => prefix.last().cloned(),
                    _ => Some(name.clone()),
                };
                self.record(prefix, Some(name), alias);
            }
            syn::UseTree::Rename(r) => self.record(
                prefix,
                Some(r.ident.to_string()),
                Some(r.rename.to_string()),
            ),
            syn::UseTree::Glob(_) => self.record(prefix, None, None),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    fn record(&mut self, prefix: &[String], last: Option<String>, alias: Option<String>) {
        let mut segments = prefix.to_vec();
        segments.extend(last.filter(|l| l != "self"));
        if let Some(path) = self.absolute(&segments) {
            if let Some(alias) = alias {
                self.aliases.entry(alias).or_insert_with(|| path.clone());
            }
            self.found.push(path);
        }
    }
}

impl<'ast> Visit<'ast> for PathCollector {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Trait(t) => &t.attrs,
            syn::Item::Type(t) => &t.attrs,
            _ => &[],
        };
        if is_test_only(attrs) {
            return;
        }
        match item {
            syn::Item::Mod(m) if m.content.is_some() => {
                self.module.push(m.ident.to_string());
                syn::visit::visit_item(self, item);
                self.module.pop();
            }
            syn::Item::Use(u) => self.use_tree(&mut Vec::new(), &u.tree),
            _ => syn::visit::visit_item(self, item),
        }
    }

    /// Macro input is tokens, not syntax; runs of `a::b::c` in it are read as
    /// paths (`bindgen!`'s `with:` names host types this way).
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let mut run: Vec<String> = Vec::new();
        let mut colons = 0;
        let flush = |run: &mut Vec<String>, this: &mut Self| {
            if run.len() > 1
                && let Some(p) = this.absolute(run)
            {
                this.found.push(p);
            }
            run.clear();
        };
        let mut stack = vec![mac.tokens.clone().into_iter()];
        while let Some(top) = stack.last_mut() {
            let Some(token) = top.next() else {
                stack.pop();
                flush(&mut run, self);
                continue;
            };
            match token {
                proc_macro2::TokenTree::Ident(i) if run.is_empty() || colons == 2 => {
                    run.push(i.to_string());
                    colons = 0;
                }
                proc_macro2::TokenTree::Punct(p) if p.as_char() == ':' && !run.is_empty() => {
                    colons += 1;
                }
                proc_macro2::TokenTree::Group(g) => {
                    flush(&mut run, self);
                    colons = 0;
                    stack.push(g.stream().into_iter());
                }
                other => {
                    flush(&mut run, self);
                    colons = 0;
                    if let proc_macro2::TokenTree::Ident(i) = other {
                        run.push(i.to_string());
                    }
                }
            }
        }
        syn::visit::visit_macro(self, mac);
    }

    /// `pub(crate)`, `pub(super)` name a scope, not an item.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(p) = self.absolute(&segments) {
            self.found.push(p);
        }
        syn::visit::visit_path(self, path);
    }
}

/// Every set of files that depend on each other in a circle (Tarjan's strongly
/// connected components with more than one file), each sorted.
pub fn cycles(g: &Graph) -> Vec<Vec<PathBuf>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        out: Vec<Vec<PathBuf>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.g.arrows.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.arrows.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// A cycle as a reader wants it: each file and the files of the cycle it imports.
pub fn describe(g: &Graph, cycle: &[PathBuf]) -> String {
    let members: BTreeSet<&PathBuf> = cycle.iter().collect();
    cycle
        .iter()
        .map(|f| {
            let to: Vec<String> = g.arrows[f]
                .iter()
                .filter(|t| members.contains(t))
                .map(|t| t.display().to_string())
                .collect();
            format!("  {} -> {}", f.display(), to.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
