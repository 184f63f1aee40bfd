//! The core's modules depend on each other without a cycle (docs: design.md#layout): parts (delivery,
//! reservoir, fluid path, battery, patient limits, …) never import the pump that orchestrates
//! them, and orchestration modules that add methods to `Pump` are never imported back.
//!
//! The graph is read from the sources: every `crate::<module>` path in `src/<module>.rs`
//! (in `use` lines, braces `crate::{a, b::c}`, or inline) is an edge; `crate::<Name>` of a
//! root re-export counts as an edge to the module it comes from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Top-level names inside `{…}` starting at `s` (which starts just after the `{`).
fn brace_names(s: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut at_item_start = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if c.is_whitespace() => {}
            _ if at_item_start && depth == 0 => {
                names.push(ident_at(&s[i..]).to_string());
                at_item_start = false;
            }
            _ => at_item_start = false,
        }
    }
    names
}

/// Names a module's source refers to as `crate::<name>`.
fn crate_refs(source: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = source;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let preceded_by_ident = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !preceded_by_ident {
            if let Some(inner) = after.strip_prefix('{') {
                refs.extend(brace_names(inner));
            } else {
                refs.insert(ident_at(after).to_string());
            }
        }
        rest = after;
    }
    refs.retain(|r| !r.is_empty());
    refs
}

/// Root re-exports `pub use module::{A, B}` / `pub use module::A`: name -> module.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let module = ident_at(rest).to_string();
        let after = &rest[module.len()..];
        let Some(after) = after.strip_prefix("::") else {
            continue;
        };
        let names = match after.strip_prefix('{') {
            Some(inner) => brace_names(inner),
            None => vec![ident_at(after).to_string()],
        };
        for n in names {
            map.insert(n, module.clone());
        }
    }
    map
}

fn module_graph() -> Graph {
    // ITB_MODULE_GRAPH_SRC points the test at another tree (e.g. an older checkout's src).
    let src = match std::env::var_os("ITB_MODULE_GRAPH_SRC") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    };
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let names = reexports(&lib);
    let mut sources = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && stem != "lib" && stem != "main" {
            sources.insert(stem.to_string(), std::fs::read_to_string(&path).unwrap());
        }
    }
    let mut graph = Graph::new();
    for (module, source) in &sources {
        let deps = crate_refs(source)
            .into_iter()
            .filter_map(|r| {
                if sources.contains_key(&r) {
                    Some(r)
                } else {
                    names.get(&r).cloned()
                }
            })
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
    let src = "use crate::a::X;\nuse crate::{b::Y, c, d::{E, F}};\nfn f() { crate::e::g(); let _ = crate::Pump::new; }\n\
               // mycrate::z is not a crate path\n";
    let refs: Vec<_> = crate_refs(src).into_iter().collect();
    assert_eq!(refs, ["Pump", "a", "b", "c", "d", "e"]);
    let lib = "pub use pump::{Pump, PumpConfig};\npub use model::PumpModel;\npub mod x;\n";
    let map = reexports(lib);
    assert_eq!(map.get("Pump").map(String::as_str), Some("pump"));
    assert_eq!(map.get("PumpModel").map(String::as_str), Some("model"));
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
    for part in [
        "battery",
        "bolus",
        "delivery",
        "model",
        "path",
        "patient",
        "program",
        "reservoir",
        "units",
        "events",
        "error",
    ] {
        let deps = graph
            .get(part)
            .unwrap_or_else(|| panic!("no module {part}"));
        for orchestrator in [
            "pump",
            "therapy",
            "projection",
            "refill",
            "snapshot",
            "batch",
        ] {
            assert!(
                !deps.contains(orchestrator),
                "part {part} imports {orchestrator}"
            );
        }
    }
    // The pump does not import the modules that add orchestration methods to it.
    let pump = &graph["pump"];
    for m in [
        "therapy",
        "projection",
        "refill",
        "snapshot",
        "snapshot_wire",
        "snapshot_v1",
        "batch",
    ] {
        assert!(!pump.contains(m), "pump imports {m}");
    }
}
