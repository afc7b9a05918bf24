//! The crate's module layering, read from its source: the graph of
//! `crate::…` paths between files (`use` lines and inline paths alike) has
//! no cycle, and every file says what it owns in a `//!` doc.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source files by module path (`crate` for lib.rs, `api::pay`, …).
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut p = prefix.to_vec();
                if name != "mod" && name != "lib" {
                    p.push(name);
                }
                let module = if p.is_empty() {
                    "crate".to_owned()
                } else {
                    p.join("::")
                };
                out.insert(module, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut out,
    );
    out
}

/// The text without `//` comments (doc links are not dependencies).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path written after `crate::`, with `{…}` groups expanded.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    fn path(s: &[char], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut segs = prefix;
        loop {
            while *i < s.len() && s[*i].is_whitespace() {
                *i += 1;
            }
            if *i < s.len() && s[*i] == '{' {
                *i += 1;
                loop {
                    while *i < s.len() && (s[*i].is_whitespace() || s[*i] == ',') {
                        *i += 1;
                    }
                    if *i >= s.len() || s[*i] == '}' {
                        *i += 1;
                        return;
                    }
                    path(s, i, segs.clone(), out);
                }
            }
            let start = *i;
            while *i < s.len() && is_ident(s[*i]) {
                *i += 1;
            }
            if *i > start {
                segs.push(s[start..*i].iter().collect());
            }
            if s.get(*i..*i + 2) == Some(&[':', ':']) {
                *i += 2;
                continue;
            }
            // Skip ` as name` and anything else up to the item's end.
            while *i < s.len() && !matches!(s[*i], ',' | '}' | ';' | '\n') {
                *i += 1;
            }
            out.push(segs);
            return;
        }
    }
    let s: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 7 <= s.len() {
        let at_word = i == 0 || !is_ident(s[i - 1]);
        if at_word && s[i..i + 7].iter().collect::<String>() == "crate::" {
            i += 7;
            path(&s, &mut i, Vec::new(), &mut out);
        } else {
            i += 1;
        }
    }
    out
}

/// Which module a path refers to: its longest prefix that is a module, or
/// the crate root (a re-export).
fn target(path: &[String], modules: &BTreeMap<String, PathBuf>) -> String {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains_key(m))
        .unwrap_or_else(|| "crate".to_owned())
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    modules
        .iter()
        .map(|(m, file)| {
            let text = std::fs::read_to_string(file).unwrap();
            let deps = crate_paths(&code(&text))
                .iter()
                .map(|p| target(p, &modules))
                .filter(|t| t != m)
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_owned());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, done, stack) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut done, &mut Vec::new()))
}

#[test]
fn the_checker_sees_paths_groups_and_cycles() {
    let code = code(
        "use crate::a::{b, c::{d as e}, f};\nlet x = crate::g::h(1); // crate::i\nuse zhifu_crate::j;",
    );
    let paths: Vec<String> = crate_paths(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(paths, ["a::b", "a::c::d", "a::f", "g::h"]);
    let g: BTreeMap<String, BTreeSet<String>> =
        [("a", &["b"][..]), ("b", &["c"][..]), ("c", &["a"][..])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}

#[test]
fn module_imports_have_no_cycle() {
    let g = graph();
    assert!(
        g.contains_key("state") && g.contains_key("api::pay"),
        "{g:?}"
    );
    assert!(g["gateway"].contains("api"), "{g:?}");
    if let Some(cycle) = find_cycle(&g) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn every_file_says_what_it_owns() {
    for (m, file) in modules() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{m} ({}) has no //! doc",
            file.display()
        );
    }
}
