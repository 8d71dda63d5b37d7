//! The documents cannot drift from the files: the file table in docs/how-it-works.md covers
//! every source file (both crates) and names only files that exist; every relative link in README.md and
//! docs/ resolves; the README stays a front door (at most 250 lines, the two commands
//! first); and nothing cites a section or an issue number (see docs/tests.md).

#[path = "common/files.rs"]
mod files;

use files::files_under;
use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The paths of the file table's first column: `src/a.rs`, a folder `src/b/`, or names after
/// a first path, relative to its folder (`src/aws/image.rs`, `launch.rs`).
fn table_entries(doc: &str) -> Vec<String> {
    let mut out = vec![];
    for line in doc
        .lines()
        .filter(|l| l.starts_with("| `src/") || l.starts_with("| `admin/"))
    {
        let first = line.split('|').nth(1).unwrap();
        let names: Vec<&str> = first.split('`').skip(1).step_by(2).collect();
        let dir = names[0].rsplit_once('/').map_or("", |(d, _)| d).to_string();
        for name in names {
            out.push(if name.starts_with("src/") || name.starts_with("admin/") {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            });
        }
    }
    out
}

#[test]
fn the_file_table_covers_every_source_file_and_names_only_real_ones() {
    let entries = table_entries(&read("docs/how-it-works.md"));
    assert!(entries.len() > 20, "{entries:?}");
    for e in &entries {
        assert!(
            root().join(e).exists(),
            "the file table names {e}, which does not exist"
        );
    }
    let mut sources = vec![];
    files_under(&root().join("src"), "rs", &mut sources);
    files_under(&root().join("admin/src"), "rs", &mut sources);
    let uncovered: Vec<String> = sources
        .iter()
        .map(|p| rel(p))
        .filter(|f| {
            !entries
                .iter()
                .any(|e| e == f || (e.ends_with('/') && f.starts_with(e.as_str())))
        })
        .collect();
    assert!(
        uncovered.is_empty(),
        "not in docs/how-it-works.md's file table: {uncovered:?}"
    );
}

/// `[text](target)` targets that are files of the repository (not URLs, not anchors).
fn relative_links(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let target = &rest[..rest.find(')')?];
            let target = target.split('#').next().unwrap();
            (!target.is_empty() && !target.contains("://")).then(|| target.to_string())
        })
        .collect()
}

#[test]
fn every_relative_link_resolves() {
    let mut docs = vec![root().join("README.md")];
    files_under(&root().join("docs"), "md", &mut docs);
    let mut broken = BTreeSet::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        for link in relative_links(&text) {
            if !doc.parent().unwrap().join(&link).exists() {
                broken.insert(format!("{}: {link}", rel(doc)));
            }
        }
    }
    assert!(broken.is_empty(), "broken links: {broken:?}");
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move detail to docs/"
    );
    let first_block: String = readme
        .lines()
        .skip(2)
        .take(5)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        first_block.contains("make demo") && first_block.contains("make test"),
        "the README opens with the two commands:\n{first_block}"
    );
    // every document in docs/ is reachable from the README
    let mut docs = vec![];
    files_under(&root().join("docs"), "md", &mut docs);
    let linked: BTreeSet<String> = relative_links(&readme).into_iter().collect();
    for doc in docs {
        let name = rel(&doc);
        assert!(linked.contains(&name), "README.md does not link {name}");
    }
}

#[test]
fn nothing_cites_a_section_or_an_issue_the_repository_lacks() {
    let mut files = vec![root().join("README.md"), root().join("template.yaml")];
    for (dir, ext) in [
        ("docs", "md"),
        ("src", "rs"),
        ("admin", "rs"),
        ("tools", "py"),
        ("tests", "rs"),
    ] {
        files_under(&root().join(dir), ext, &mut files);
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains('\u{a7}'), "{} cites a section sign", rel(f));
        // the word followed by a number or "#": the tracker is not part of the repository
        let cites_issue = text.match_indices("issue ").any(|(at, w)| {
            let next = text[at + w.len()..].chars().next();
            next.is_some_and(|c| c.is_ascii_digit() || c == '#')
        });
        assert!(!cites_issue, "{} cites an issue number", rel(f));
    }
}

/// The logical ids of the template's CloudWatch alarms (the stack's own alarms).
fn stack_alarms() -> Vec<String> {
    let template = read("template.yaml");
    let lines: Vec<&str> = template.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[1].trim() == "Type: AWS::CloudWatch::Alarm")
        .map(|w| w[0].trim().trim_end_matches(':').to_string())
        .collect()
}

#[test]
fn the_runbook_says_what_to_do_for_each_of_the_stacks_alarms() {
    let alarms = stack_alarms();
    assert!(alarms.len() >= 5, "the scan found the alarms: {alarms:?}");
    let runbook = read("docs/RUNBOOK.md");
    let (_, section) = runbook
        .split_once("## The stack's own alarms")
        .expect("docs/RUNBOOK.md has a section on the stack's own alarms");
    for alarm in alarms {
        assert!(
            section.contains(&format!("\n### {alarm} ")),
            "docs/RUNBOOK.md says nothing under its own heading about the alarm {alarm}"
        );
    }
}
