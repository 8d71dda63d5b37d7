//! The crate's modules form layers: the `use crate::` edges between top-level modules
//! make no cycle, and `model` (the shared types) imports nothing of the crate. Run with
//! `--nocapture` to see the edges.

#[path = "common/files.rs"]
mod files;

use files::files_under;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The code of a file without its comments and its unit tests (a test may reach anywhere).
fn code_of(text: &str) -> String {
    let text = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i]);
    text.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names: `crate::x`, the items of
/// `use crate::{x, y::z}`, and `super::x` where `super` is the crate root.
fn named(code: &str, super_is_root: bool) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut prefixes = vec!["crate::"];
    if super_is_root {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (i, _) in code.match_indices(prefix) {
            let rest = &code[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // Top-level items of the group: split at depth-0 commas.
                let (mut depth, mut item) = (0, String::new());
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.insert(ident(item.trim()));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                out.insert(ident(item.trim()));
            } else {
                out.insert(ident(rest));
            }
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

/// Top-level module -> the top-level modules its code names.
fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    files_under(&src, "rs", &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str().unwrap()).collect();
        let top = parts[0].trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        // `super` is the crate root in `src/x.rs` and `src/x/mod.rs`.
        let super_is_root = parts.len() == 1 || parts[1] == "mod.rs";
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(top.clone()).or_default();
        edges.extend(
            named(&code_of(&text), super_is_root)
                .into_iter()
                .filter(|m| *m != top),
        );
    }
    graph
}

/// A cycle, as the path of modules from one back to itself, if any.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut c = path[i..].to_vec();
            c.push(node.to_string());
            return Some(c);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(graph, n, &mut vec![], &mut done))
}

#[test]
fn the_modules_make_no_cycle() {
    let graph = graph();
    for (module, uses) in &graph {
        let uses: Vec<&str> = uses.iter().map(String::as_str).collect();
        println!("{module} -> {}", uses.join(", "));
    }
    assert!(graph.len() > 8, "the crate's modules were not found");
    assert!(
        graph["pipeline"].contains("app") && graph["aws"].contains("model"),
        "the edges were not read: {graph:?}"
    );
    if let Some(c) = cycle(&graph) {
        panic!("import cycle: {}", c.join(" -> "));
    }
}

#[test]
fn the_model_imports_nothing_of_the_crate() {
    let graph = graph();
    assert_eq!(graph.get("model"), Some(&BTreeSet::new()));
}

/// What a pure rule or a shared type may not reach: the SDKs, the effects, the clock.
const IMPURE: [&str; 11] = [
    "aws_sdk",
    "aws_config",
    "crate::aws",
    "crate::ledger",
    "crate::notify",
    "crate::pipeline",
    "crate::app",
    "Utc::now",
    "SystemTime",
    "Instant::now",
    "now_ms()",
];

/// The impure names a file's code (comments and unit tests aside) reaches.
fn impure_in(code: &str) -> Vec<&'static str> {
    IMPURE.into_iter().filter(|n| code.contains(n)).collect()
}

#[test]
fn rules_and_the_model_reach_no_sdk_no_effect_and_no_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    files_under(&src.join("rules"), "rs", &mut files);
    files_under(&src.join("model"), "rs", &mut files);
    assert!(files.len() > 15, "the rules were not found: {files:?}");
    for file in files {
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let found = impure_in(&code);
        assert!(found.is_empty(), "{}: reaches {found:?}", file.display());
    }
    // The check sees what it looks for.
    assert_eq!(
        impure_in("use crate::ledger::Ledger; let t = deps.now_ms();"),
        ["crate::ledger", "now_ms()"]
    );
    assert!(impure_in(&code_of("// crate::aws, in a comment\nfn f() {}\n")).is_empty());
}

/// A source file may hold this many lines of code (its unit tests aside).
const MAX_FILE_LINES: usize = 500;
/// A function may span this many lines.
const MAX_FN_LINES: usize = 80;

/// The lines of a file before its unit tests.
fn code_lines(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .collect()
}

/// (name, lines) of every function a file's code defines: from its `fn` line to the line
/// that closes it at the same indentation (one line when it opens and closes on one).
fn functions(code: &[&str]) -> Vec<(String, usize)> {
    let mut out = vec![];
    for (i, line) in code.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "fn");
        let prefix_ok = at.is_some_and(|n| {
            words[..n].iter().all(|w| {
                matches!(*w, "pub" | "async" | "const" | "unsafe") || w.starts_with("pub(")
            })
        });
        if !prefix_ok {
            continue;
        }
        // A declaration without a body (a trait's), on one line or several.
        let signature_end = code[i..]
            .iter()
            .find(|l| l.contains('{') || l.trim_end().ends_with(';'));
        if signature_end.is_none_or(|l| !l.contains('{')) {
            continue;
        }
        let name: String = words[at.unwrap() + 1]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let closing = format!("{indent}}}");
        let len = if trimmed.contains('{') && trimmed.ends_with('}') {
            1
        } else {
            code[i..]
                .iter()
                .position(|l| *l == closing)
                .map_or(code.len() - i, |n| n + 1)
        };
        out.push((name, len));
    }
    out
}

#[test]
fn no_file_and_no_function_is_too_long_to_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    files_under(&root.join("src"), "rs", &mut files);
    files_under(&root.join("admin/src"), "rs", &mut files);
    assert!(files.len() > 40, "the sources were not found");
    let mut too_long = vec![];
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let code = code_lines(&text);
        let name = file.strip_prefix(root).unwrap().display().to_string();
        if code.len() > MAX_FILE_LINES {
            too_long.push(format!("{name}: {} lines", code.len()));
        }
        for (f, n) in functions(&code) {
            if n > MAX_FN_LINES {
                too_long.push(format!("{name}: fn {f}, {n} lines"));
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "too long to read:\n{}",
        too_long.join("\n")
    );
}

#[test]
fn functions_are_measured_from_fn_to_their_close() {
    let code = "pub(crate) async fn a(\n    x: i32,\n) {\n    b();\n}\nfn one() { 1 }\nimpl X {\n    pub fn c() {\n        d();\n    }\n}\ntrait T {\n    fn e();\n    async fn f(\n        x: i32,\n    ) -> i32;\n}\n";
    let lines: Vec<&str> = code.lines().collect();
    assert_eq!(
        functions(&lines),
        [
            ("a".to_string(), 5),
            ("one".to_string(), 1),
            ("c".to_string(), 3)
        ]
    );
    assert_eq!(code_lines("a\n#[cfg(test)]\nmod tests {}\n"), ["a"]);
}

#[test]
fn a_cycle_is_found_and_comments_and_tests_are_not_edges() {
    let g: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .into_iter()
        .fold(Graph::new(), |mut g, (x, y)| {
            g.entry(x.into()).or_default().insert(y.into());
            g
        });
    let c = cycle(&g).expect("a -> b -> c -> a is a cycle");
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 4);
    let mut acyclic = g.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert_eq!(cycle(&acyclic), None);

    let code = code_of(
        "use crate::{a::{X, Y}, b, self};\n// crate::c\nfn f() { crate::d::g(); super::e::h() }\n#[cfg(test)]\nmod tests { use crate::z; }\n",
    );
    assert_eq!(
        named(&code, false),
        ["a", "b", "d"].map(String::from).into()
    );
    assert_eq!(
        named(&code, true),
        ["a", "b", "d", "e"].map(String::from).into()
    );
}
