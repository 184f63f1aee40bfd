//! The core's modules depend on each other without a cycle: parts (delivery, reservoir, fluid
//! path, battery, patient limits, …) never import the pump that orchestrates them, and
//! orchestration modules that add methods to `Pump` are never imported back.
//!
//! The graph is read from the sources, recursively: `src/a.rs` is module `a`, `src/a/mod.rs` is
//! module `a`, `src/a/b.rs` is module `a::b`. Every `crate::…` path (in `use` lines, nested braces
//! `crate::{a, b::{c, D}}`, or inline) is an edge to the deepest module it names; a name that a
//! module re-exports (`pub use`, e.g. the root's `pub use delivery::program::{Basal, …}` or
//! `pub use pump::{refill, …}`) is followed to the module it comes from. A parent declaring a
//! child (`mod x;`) is not an edge. Every `.rs` file must be declared by its parent and every
//! declaration must have its file, so no module escapes the check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths of a use tree starting at `s`: `a::b::{c, d::{E, F}}` gives `a::b::c`,
/// `a::b::d::E`, `a::b::d::F`. Stops at the end of the tree (`;`, `)`, whitespace after a
/// path, …). `as` renames are ignored (the path is what matters).
fn use_tree(s: &str) -> Vec<Vec<String>> {
    fn tree(s: &str, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
        let mut path = prefix.to_vec();
        let mut i = 0;
        loop {
            let rest = &s[i..];
            let trimmed = rest.trim_start();
            i += rest.len() - trimmed.len();
            if let Some(inner) = trimmed.strip_prefix('{') {
                i += 1;
                let mut j = 0;
                loop {
                    let r = &inner[j..];
                    let t = r.trim_start();
                    j += r.len() - t.len();
                    if t.starts_with('}') || t.is_empty() {
                        j += usize::from(!t.is_empty());
                        break;
                    }
                    j += tree(&inner[j..], &path, out);
                    let r = &inner[j..];
                    let t = r.trim_start();
                    j += r.len() - t.len();
                    if t.starts_with(',') {
                        j += 1;
                    }
                }
                return i + j;
            }
            let id = ident_at(trimmed);
            if id.is_empty() {
                break;
            }
            path.push(id.to_string());
            i += id.len();
            match s[i..].strip_prefix("::") {
                Some(_) => i += 2,
                None => break,
            }
        }
        // Skip an `as name` rename.
        let rest = &s[i..];
        if let Some(r) = rest.trim_start().strip_prefix("as ") {
            let t = r.trim_start();
            i += rest.len() - t.len() + ident_at(t).len();
        }
        if path.len() > prefix.len() {
            out.push(path);
        }
        i
    }
    let mut out = Vec::new();
    tree(s, &[], &mut out);
    out
}

/// Paths a module's source refers to as `crate::<path>` (without the `crate`).
fn crate_refs(source: &str) -> BTreeSet<Vec<String>> {
    let mut refs = BTreeSet::new();
    let mut rest = source;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let preceded_by_ident = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !preceded_by_ident {
            refs.extend(use_tree(after));
        }
        rest = after;
    }
    refs.retain(|r| !r.is_empty());
    refs
}

/// A module's re-exports `pub use …` / `pub(crate) use …`: exported name -> full path (from
/// the crate root). Paths in a module file are relative to the crate root (edition 2018+
/// `use a::b` in lib.rs, `use crate::a::b` elsewhere); `self::`/`super::` are not used here.
fn reexports(source: &str) -> BTreeMap<String, Vec<String>> {
    let mut map = BTreeMap::new();
    for line in source.lines() {
        let t = line.trim();
        let Some(rest) = t
            .strip_prefix("pub use ")
            .or_else(|| t.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let rest = rest.strip_prefix("crate::").unwrap_or(rest);
        for path in use_tree(rest) {
            if let Some(last) = path.last() {
                map.insert(last.clone(), path);
            }
        }
    }
    map
}

/// `mod x;` declarations of a module file (any visibility).
fn declared_children(source: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in source.lines() {
        let t = line.trim();
        let t = t
            .strip_prefix("pub(crate) ")
            .or_else(|| t.strip_prefix("pub "))
            .unwrap_or(t);
        if let Some(rest) = t.strip_prefix("mod ") {
            let id = ident_at(rest);
            if !id.is_empty() && rest[id.len()..].trim_start().starts_with(';') {
                out.insert(id.to_string());
            }
        }
    }
    out
}

/// Module path (`""` for lib.rs, `"pump"`, `"pump::refill"`) -> source, read recursively.
fn sources() -> BTreeMap<String, String> {
    // ITB_MODULE_GRAPH_SRC points the test at another tree (e.g. an older checkout's src).
    let src = match std::env::var_os("ITB_MODULE_GRAPH_SRC") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    };
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(stem.to_string());
                walk(&path, &p, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut p = prefix.to_vec();
                if !(stem == "mod" || (prefix.is_empty() && stem == "lib")) {
                    p.push(stem.to_string());
                }
                if prefix.is_empty() && stem == "main" {
                    continue;
                }
                out.insert(p.join("::"), std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src, &[], &mut out);
    out
}

/// The module a crate path names: the deepest module prefix, following re-exports.
fn resolve(
    path: &[String],
    modules: &BTreeSet<String>,
    exports: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    depth: usize,
) -> Option<String> {
    let mut best = String::new(); // the crate root
    let mut used = 0;
    for n in 1..=path.len() {
        let candidate = path[..n].join("::");
        if modules.contains(&candidate) {
            best = candidate;
            used = n;
        } else {
            break;
        }
    }
    if used < path.len() && depth < 8 {
        if let Some(target) = exports.get(&best).and_then(|m| m.get(&path[used])) {
            let mut full = target.clone();
            full.extend_from_slice(&path[used + 1..]);
            return resolve(&full, modules, exports, depth + 1);
        }
    }
    (!best.is_empty()).then_some(best)
}

fn module_graph() -> Graph {
    let sources = sources();
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let exports: BTreeMap<_, _> = sources
        .iter()
        .map(|(m, s)| (m.clone(), reexports(s)))
        .collect();
    let mut graph = Graph::new();
    for (module, source) in &sources {
        if module.is_empty() {
            continue; // lib.rs only declares and re-exports
        }
        let deps = crate_refs(source)
            .into_iter()
            .filter_map(|r| resolve(&r, &modules, &exports, 0))
            .filter(|d| d != module)
            .collect();
        graph.insert(module.clone(), deps);
    }
    graph
}

/// A cycle of the graph, if any (as a path that ends where it starts).
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    // 0 = unseen, 1 = on the current path, 2 = done.
    fn visit(
        g: &Graph,
        n: &str,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            match state.get(d.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|p| p == d).unwrap_or(0);
                    let mut cycle = path[from..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(g, d, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(graph, n, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn the_parser_sees_every_form_of_crate_path() {
    let src = "use crate::a::X;\nuse crate::{b::Y, c, d::{E, F as G}};\nfn f() { crate::e::g(); let _ = crate::Pump::new; }\n\
               // mycrate::z is not a crate path\n";
    let refs: Vec<String> = crate_refs(src).into_iter().map(|p| p.join("::")).collect();
    assert_eq!(
        refs,
        ["Pump::new", "a::X", "b::Y", "c", "d::E", "d::F", "e::g"]
    );
    let lib = "pub use pump::{Pump, PumpConfig};\npub use delivery::{bolus, path};\npub mod x;\n";
    let map = reexports(lib);
    assert_eq!(map["Pump"], ["pump", "Pump"]);
    assert_eq!(map["path"], ["delivery", "path"]);
    let decl = "pub mod a;\nmod b;\npub(crate) mod c;\nmod tests {\n}\n";
    assert_eq!(
        declared_children(decl).into_iter().collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    // Resolution: the deepest module, through re-exports of the root and of a module.
    let modules: BTreeSet<String> = ["", "delivery", "delivery::path", "pump"]
        .map(String::from)
        .into();
    let mut exports = BTreeMap::new();
    exports.insert(String::new(), reexports(lib));
    exports.insert(
        "pump".to_string(),
        reexports("pub use crate::delivery::path::MAX;\n"),
    );
    let r = |p: &str| {
        let path: Vec<String> = p.split("::").map(String::from).collect();
        resolve(&path, &modules, &exports, 0)
    };
    assert_eq!(r("path::FluidLine").as_deref(), Some("delivery::path"));
    assert_eq!(r("delivery::path::FL").as_deref(), Some("delivery::path"));
    assert_eq!(r("delivery::peak_rate").as_deref(), Some("delivery"));
    assert_eq!(r("pump::MAX").as_deref(), Some("delivery::path"));
    assert_eq!(r("Pump").as_deref(), Some("pump"));
}

#[test]
fn every_source_file_is_a_declared_module() {
    let sources = sources();
    assert!(sources.len() > 20, "only {} modules found", sources.len());
    for (module, source) in &sources {
        for child in declared_children(source) {
            let full = if module.is_empty() {
                child.clone()
            } else {
                format!("{module}::{child}")
            };
            assert!(
                sources.contains_key(&full),
                "{module} declares {child} without a file"
            );
        }
        if let Some((parent, child)) = module.rsplit_once("::").or(Some(("", module.as_str()))) {
            if module.is_empty() {
                continue;
            }
            assert!(
                declared_children(&sources[parent]).contains(child),
                "{module} has a file but {parent:?} does not declare it"
            );
        }
    }
    for grouped in ["delivery::program", "pump::refill", "snapshot::wire"] {
        assert!(sources.contains_key(grouped), "no module {grouped}");
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_accepts_a_dag() {
    let g = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for &(a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(find_cycle(&g(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    let cycle = find_cycle(&g(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])).unwrap();
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
}

#[test]
fn the_core_module_graph_has_no_cycle() {
    let graph = module_graph();
    for (m, deps) in &graph {
        println!(
            "{m} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn parts_do_not_import_the_pump() {
    let graph = module_graph();
    let parts = [
        "battery",
        "delivery",
        "delivery::bolus",
        "delivery::faults",
        "delivery::path",
        "delivery::program",
        "delivery::reservoir",
        "delivery::spans",
        "delivery::stroke_times",
        "model",
        "pump::patient",
        "units",
        "events",
        "error",
    ];
    let orchestrators = [
        "pump",
        "pump::therapy",
        "pump::faults",
        "pump::projection",
        "pump::refill",
        "snapshot",
        "snapshot::wire",
        "snapshot::v1",
        "batch",
    ];
    for part in parts {
        let deps = graph
            .get(part)
            .unwrap_or_else(|| panic!("no module {part}"));
        for orchestrator in orchestrators {
            assert!(
                !deps.contains(orchestrator),
                "part {part} imports {orchestrator}"
            );
        }
    }
    // The pump does not import the modules that add orchestration methods to it.
    let pump = &graph["pump"];
    for m in &orchestrators[1..] {
        assert!(!pump.contains(*m), "pump imports {m}");
    }
}

/// Rooms, lowest first: a module imports only modules of its own room or of rooms below it.
#[test]
fn rooms_import_only_rooms_below_them() {
    fn room(module: &str) -> usize {
        match module.split("::").next().unwrap_or("") {
            "error" | "units" | "events" => 0,
            "battery" | "model" => 1,
            "delivery" => 2,
            "pump" => 3,
            "snapshot" | "batch" => 4,
            other => panic!("module {other} has no room: add it here"),
        }
    }
    for (m, deps) in module_graph() {
        for d in deps {
            assert!(
                room(&d) <= room(&m),
                "{m} (room {}) imports {d} (room {})",
                room(&m),
                room(&d)
            );
        }
    }
}
