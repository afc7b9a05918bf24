//! Checks of the layering that the compiler cannot see: `payments` never
//! imports axum, `http` calls only the store's read functions, and no file
//! of the crate depends on itself through others (no import circle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, as (module path, text without its
/// `#[cfg(test)]` tail and without comments).
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).expect("under src").with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|l| l == "mod") {
                parts.pop();
            }
            let module = if parts == ["lib"] {
                "crate".to_owned()
            } else {
                parts.join("::")
            };
            let text = std::fs::read_to_string(&p).expect("readable source");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            (module, code)
        })
        .collect()
}

/// The modules a file refers to through `crate::`, `super::` and `self::`
/// paths, resolved to the longest path that is a module file.
fn dependencies(module: &str, code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut add = |base: Vec<String>, rest: &str| {
        let mut path = base;
        for seg in rest.split("::") {
            let seg: String = seg
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if seg.is_empty() || seg == "self" {
                break;
            }
            path.push(seg);
        }
        // Longest prefix that names a module file.
        while !path.is_empty() {
            let cand = path.join("::");
            if modules.contains(&cand) {
                if cand != module {
                    out.insert(cand);
                }
                return;
            }
            path.pop();
        }
    };
    let own: Vec<String> = if module == "crate" {
        Vec::new()
    } else {
        module.split("::").map(str::to_owned).collect()
    };
    // A `foo.rs` or `foo/mod.rs` file's `self::` is itself; its `super::`
    // is its parent.
    let self_base = own.clone();
    let mut super_base = own.clone();
    super_base.pop();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", super_base),
        ("self::", self_base),
    ] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().last();
            let after = &rest[i + prefix.len()..];
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                // `use a::{b, c}` groups: each item is a dependency.
                if let Some(group) = after.strip_prefix('{').or_else(|| {
                    after
                        .split_once("::{")
                        .filter(|(head, _)| !head.contains(|c: char| c.is_whitespace()))
                        .map(|(_, g)| g)
                }) {
                    let head: Vec<String> = after
                        .split_once("::{")
                        .filter(|(h, _)| !h.contains(|c: char| c.is_whitespace()))
                        .map(|(h, _)| h.split("::").map(str::to_owned).collect())
                        .unwrap_or_default();
                    let end = group.find('}').unwrap_or(group.len());
                    for item in group[..end].split(',') {
                        let mut b = base.clone();
                        b.extend(head.iter().cloned());
                        add(b, item.trim());
                    }
                } else {
                    add(base.clone(), after);
                }
            }
            rest = after;
        }
    }
    out
}

#[test]
fn payments_never_imports_axum() {
    for (module, code) in sources() {
        if module == "payments" || module.starts_with("payments::") {
            assert!(
                !code.contains("axum"),
                "{module} mentions axum: payments must stay free of HTTP"
            );
        }
    }
}

#[test]
fn http_only_reads_the_store() {
    // The store's functions that only read; every other one changes state
    // and belongs to `payments` (or `jobs`/`outbox`).
    const READS: &[&str] = &[
        "get_order",
        "get_order_by_out_trade_no",
        "list_orders",
        "list_events",
        "query_events",
        "list_delivery_attempts",
        "list_refunds",
        "list_notifications",
        "list_orphan_notifications",
        "count_orders_by_status",
        "count_events_by_state",
        "get_subscription",
        "list_subscriptions",
        "list_subscription_charges",
        "list_subscription_events",
        "recent_subscription_events",
        "count_subscriptions_by_status",
        "ping",
    ];
    let mut checked = 0;
    for (module, code) in sources() {
        if !(module == "http" || module.starts_with("http::")) {
            continue;
        }
        let mut rest = code.as_str();
        while let Some(i) = rest.find("store()") {
            rest = &rest[i + "store()".len()..];
            let call: String = rest
                .trim_start()
                .trim_start_matches('.')
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                READS.contains(&call.as_str()),
                "{module} calls store().{call}: state changes go through payments"
            );
            checked += 1;
        }
    }
    assert!(checked > 5, "the check found the handlers' store reads");
}

#[test]
fn no_import_circles_between_files() {
    let files = sources();
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let graph: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .map(|(m, code)| (m.clone(), dependencies(m, code, &modules)))
        .collect();
    // The crate root only declares and re-exports.
    let graph: BTreeMap<String, BTreeSet<String>> = graph
        .into_iter()
        .filter(|(m, _)| m != "crate")
        .map(|(m, deps)| (m, deps.into_iter().filter(|d| d != "crate").collect()))
        .collect();
    assert!(
        graph["payments::notification"].contains("payments::commit"),
        "the dependency reader sees `use super::…` lines: {graph:?}"
    );
    assert!(graph["http::orders"].contains("payments"));
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(pos) = stack.iter().position(|s| s == m) {
            panic!("import circle: {} → {m}", stack[pos..].join(" → "));
        }
        stack.push(m.to_owned());
        for d in graph.get(m).into_iter().flatten() {
            visit(d, graph, stack, done);
        }
        stack.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}
