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

// ---------------------------------------------------------------------------------------
// Paths the documents cite.

/// The documents a newcomer reads: the README, docs/, and the template (its comments and
/// descriptions cite files too).
fn documents() -> Vec<std::path::PathBuf> {
    let mut docs = vec![root().join("README.md"), root().join("template.yaml")];
    files_under(&root().join("docs"), "md", &mut docs);
    docs
}

fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')
}

/// Repository paths written out from the top (`src/…`, `admin/…`, `tests/…`, `tools/…`,
/// `events/…`, `docs/…`), wherever they stand: not inside a longer path or a URL.
fn repo_paths(text: &str) -> Vec<String> {
    const TOPS: [&str; 6] = ["src/", "admin/", "tests/", "tools/", "events/", "docs/"];
    let mut out = vec![];
    for (at, _) in text.char_indices() {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| path_char(c) || c == '$') {
            continue;
        }
        let rest = &text[at..];
        if !TOPS.iter().any(|t| rest.starts_with(t)) {
            continue;
        }
        let end = rest.find(|c: char| !path_char(c)).unwrap_or(rest.len());
        out.push(rest[..end].trim_end_matches('.').to_string());
    }
    out
}

/// Source files cited in backticks below their top folder (`aws/ec2.rs`,
/// `relaunch/spec.rs::copy_tags`): paths with a folder and a file extension.
fn abbreviated_paths(text: &str) -> Vec<String> {
    let spans = text.split('`').skip(1).step_by(2);
    let file = regex_lite::Regex::new(
        r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]*\.(rs|py|sh|json|md|toml|yaml|txt)\b",
    )
    .unwrap();
    spans
        .filter_map(|s| file.find(s).map(|m| m.as_str().to_string()))
        .filter(|p| repo_paths(p).is_empty())
        .collect()
}

#[test]
fn every_path_the_documents_cite_exists() {
    let mut missing = BTreeSet::new();
    let mut cited = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for p in repo_paths(&text) {
            cited += 1;
            if !root().join(&p).exists() {
                missing.insert(format!("{}: {p}", rel(&doc)));
            }
        }
        // Abbreviated: from the top, or below src/ or src/rules/ as the tables write them.
        for p in abbreviated_paths(&text) {
            cited += 1;
            if !["", "src/", "src/rules/"]
                .iter()
                .any(|base| root().join(format!("{base}{p}")).exists())
            {
                missing.insert(format!("{}: {p}", rel(&doc)));
            }
        }
    }
    assert!(cited > 100, "the scan found the citations ({cited})");
    assert!(
        missing.is_empty(),
        "cited paths that do not exist: {missing:?}"
    );
}

#[test]
fn the_path_scan_reads_paths_as_the_documents_write_them() {
    assert_eq!(
        repo_paths("`src/pipeline/tick/` (see src/tick.rs.) and https://x/src/no $T/docs/no"),
        ["src/pipeline/tick/", "src/tick.rs"]
    );
    assert_eq!(
        abbreviated_paths("`aws/ec2.rs`, `relaunch/spec.rs::copy_tags`, `src/a.rs`, `a b`"),
        ["aws/ec2.rs", "relaunch/spec.rs"]
    );
}

// ---------------------------------------------------------------------------------------
// The README's configuration table against the template and the code.

fn template() -> serde_yaml::Value {
    serde_yaml::from_str(&read("template.yaml")).expect("template.yaml parses")
}

/// A parameter's default as CloudFormation passes it: text ("" when it has none).
fn default_text(p: &serde_yaml::Value) -> String {
    match &p["Default"] {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The names `!Ref` names anywhere inside a value (`!If [c, !Ref A, !Ref B]` -> A, B).
fn refs(v: &serde_yaml::Value, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::Tagged(t) if t.tag == "Ref" => {
            if let serde_yaml::Value::String(s) = &t.value {
                out.push(s.clone());
            }
        }
        serde_yaml::Value::Tagged(t) => refs(&t.value, out),
        serde_yaml::Value::Sequence(items) => items.iter().for_each(|i| refs(i, out)),
        serde_yaml::Value::Mapping(m) => m.values().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// The function's environment as the template sets it: variable -> the parameters its value
/// is made of.
fn template_environment(t: &serde_yaml::Value) -> Vec<(String, Vec<String>)> {
    let params = t["Parameters"].as_mapping().unwrap();
    let vars = t["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
        .as_mapping()
        .expect("the function's Environment.Variables");
    vars.iter()
        .map(|(k, v)| {
            let mut names = vec![];
            refs(v, &mut names);
            names.retain(|n| params.contains_key(n.as_str()));
            (k.as_str().unwrap().to_string(), names)
        })
        .collect()
}

/// The configuration table's rows: each variable its first cell names -> its default cell.
fn configuration_table(readme: &str) -> Vec<(String, String)> {
    let (_, section) = readme
        .split_once("## Configuration\n")
        .expect("README.md has a Configuration section");
    let section = section.split("\n## ").next().unwrap();
    let mut rows = vec![];
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let default = cells
            .last()
            .unwrap()
            .trim_end_matches('|')
            .trim()
            .to_string();
        for name in cells[0].split('`').skip(1).step_by(2) {
            rows.push((name.to_string(), default.clone()));
        }
    }
    rows
}

/// The variables src/app/config.rs (and its files in src/app/config/) reads: the names it
/// spells in quotes.
fn variables_read() -> BTreeSet<String> {
    let mut text = read("src/app/config.rs");
    for entry in std::fs::read_dir(root().join("src/app/config")).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    ["\"AUTOHEAL_", "\"SLACK_"]
        .iter()
        .flat_map(|prefix| text.match_indices(prefix).map(|(at, _)| at + 1))
        .map(|at| text[at..at + text[at..].find('"').unwrap()].to_string())
        .collect()
}

fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[test]
fn the_configuration_table_is_what_the_template_sets_and_the_code_reads() {
    let t = template();
    let readme = read("README.md");
    let table = configuration_table(&readme);
    let row = |var: &str| {
        table
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, d)| d.as_str())
    };
    let read_by_code = variables_read();
    let env = template_environment(&t);
    assert!(env.len() > 20 && table.len() > 20, "{env:?}\n{table:?}");
    let mut wrong = vec![];
    for (var, params) in &env {
        let Some(default_cell) = row(var) else {
            wrong.push(format!(
                "{var}: set by the template, not in README.md's table"
            ));
            continue;
        };
        if !read_by_code.contains(var) {
            wrong.push(format!(
                "{var}: set by the template, never read by src/app/config.rs"
            ));
        }
        for p in params {
            if !backticked(&readme).contains(&p.as_str()) {
                wrong.push(format!(
                    "{p} (sets {var}): a template parameter README.md never names"
                ));
            }
            // An empty default reaches the code as unset: the table's default is the code's.
            let default = default_text(&t["Parameters"][p.as_str()]);
            if default.is_empty() {
                continue;
            }
            let said = backticked(default_cell);
            if !said.contains(&default.as_str()) {
                wrong.push(format!(
                    "{var}: the template's {p} defaults to {default:?}; the table says {default_cell:?}"
                ));
            } else if said.first() != Some(&default.as_str()) && !said.contains(&p.as_str()) {
                wrong.push(format!(
                    "{var}: the table's default {default_cell:?} is not the template's {default:?} and does not say it is {p}'s"
                ));
            }
        }
    }
    // No row for a variable the code does not read, and none missing for one it does.
    for (var, _) in table.iter().filter(|(v, _)| v.starts_with("AUTOHEAL_")) {
        if !read_by_code.contains(var) {
            wrong.push(format!(
                "{var}: in README.md's table, never read by src/app/config.rs"
            ));
        }
    }
    for var in &read_by_code {
        if row(var).is_none() {
            wrong.push(format!(
                "{var}: read by src/app/config.rs, not in README.md's table"
            ));
        }
    }
    // Parameters named in docs/deploy.md's commands are the template's.
    let deploy = read("docs/deploy.md");
    for (at, w) in deploy.match_indices("ParameterKey=") {
        let name: String = deploy[at + w.len()..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        if t["Parameters"].get(name.as_str()).is_none() {
            wrong.push(format!(
                "docs/deploy.md passes {name}, which the template lacks"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------
// What the documents say the code does.

/// docs/how-it-works.md's rung table: rung -> its "applies when" cell.
fn rung_rows() -> Vec<(String, String)> {
    let doc = read("docs/how-it-works.md");
    let (_, section) = doc
        .split_once("| rung | what it does | applies when |")
        .expect("docs/how-it-works.md has the rung table");
    section
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            (
                cells[0]
                    .trim_start_matches("| ")
                    .trim_matches('`')
                    .to_string(),
                cells[2].to_string(),
            )
        })
        .collect()
}

#[test]
fn the_rung_table_says_when_the_code_skips_each_rung() {
    use autoheal::model::facts::{InstanceFacts, RISKY_KERNEL};
    use autoheal::rules::ladder::{not_applicable, Rung, RECOVERIES_PER_DAY};
    let fit = InstanceFacts {
        instance_id: "i-1".into(),
        state: "running".into(),
        instance_type: Some("m5.large".into()),
        root_device_type: Some("ebs".into()),
        auto_recovery: Some("default".into()),
        auto_recovery_supported: Some(true),
        disable_api_stop: Some(false),
        virtualization: Some("hvm".into()),
        ..Default::default()
    };
    // (what makes a rung not apply, the instance, EC2's recoveries in 24 h, words that say it)
    let cases: Vec<(&str, InstanceFacts, usize, &[&str])> = vec![
        ("fit", fit.clone(), 0, &[]),
        (
            "paravirtual",
            InstanceFacts {
                virtualization: Some("paravirtual".into()),
                ..fit.clone()
            },
            0,
            &["paravirtual"],
        ),
        (
            "risky kernel",
            InstanceFacts {
                kernel_id: Some(RISKY_KERNEL.into()),
                ..fit.clone()
            },
            0,
            &[RISKY_KERNEL],
        ),
        (
            "instance-store root",
            InstanceFacts {
                root_device_type: Some("instance-store".into()),
                ..fit.clone()
            },
            0,
            &["EBS root", "instance-store"],
        ),
        (
            "stop protection",
            InstanceFacts {
                disable_api_stop: Some(true),
                ..fit.clone()
            },
            0,
            &["disableApiStop"],
        ),
        (
            "recovery disabled",
            InstanceFacts {
                auto_recovery: Some("disabled".into()),
                ..fit.clone()
            },
            0,
            &["AutoRecovery"],
        ),
        (
            "type without recovery",
            InstanceFacts {
                auto_recovery_supported: Some(false),
                ..fit.clone()
            },
            0,
            &["AutoRecoverySupported"],
        ),
        (
            "EC2's recoveries spent",
            fit.clone(),
            RECOVERIES_PER_DAY,
            &["attempts"],
        ),
    ];
    let rows = rung_rows();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let mut wrong = vec![];
    for (name, cell) in &rows {
        let rung = Rung::parse(name).unwrap_or_else(|| panic!("{name} is not a rung"));
        for (why, instance, recoveries, words) in &cases {
            let skipped = not_applicable(rung, instance, *recoveries);
            if words.is_empty() {
                assert_eq!(skipped, None, "{name} applies to a fit instance");
            } else if skipped.is_some() && cell.contains("always") {
                wrong.push(format!(
                    "{name}: the table says always, the code skips it ({why})"
                ));
            } else if skipped.is_some() && !words.iter().any(|w| cell.contains(w)) {
                wrong.push(format!(
                    "{name}: skipped for {why}, which its row does not say ({words:?})"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn what_the_scan_and_backups_cover_with_any_region_is_what_the_code_covers() {
    use autoheal::app::config::Regions;
    // With `*` the scan and the backups cover the regions `listed` returns: the function's own.
    assert_eq!(Regions::Any.listed("eu-west-3"), ["eu-west-3"]);
    assert!(Regions::Any.serves("ap-northeast-1"));
    let readme = read("README.md");
    let scan_row = readme
        .lines()
        .find(|l| l.starts_with("| `AUTOHEAL_SCAN`"))
        .unwrap();
    for (doc, text) in [
        ("README.md's AUTOHEAL_SCAN row", scan_row.to_string()),
        ("docs/scan.md", read("docs/scan.md")),
        ("docs/regions.md", read("docs/regions.md")),
    ] {
        let text = text.replace('\n', " ").replace("  ", " ");
        assert!(
            text.contains("with `*`") && text.contains("own region only"),
            "{doc} does not say that with `*` the scan covers the function's own region only"
        );
        assert!(
            !text.contains("every served region"),
            "{doc} says the scan covers every served region"
        );
    }
}

/// Numbers as the documents write them (`11.1`, `9.80`, `1,000`), and the units after them.
fn figures(text: &str) -> Vec<(String, String)> {
    let re =
        regex_lite::Regex::new(r"(^|[^0-9.,])([0-9][0-9,]*(?:\.[0-9]+)?)\s?(ms|MB|s)\b").unwrap();
    re.captures_iter(text)
        .map(|c| (c[2].to_string(), c[3].to_string()))
        .collect()
}

#[test]
fn the_readmes_benchmark_figures_are_those_of_docs_benchmarks() {
    let readme = read("README.md");
    let (_, section) = readme
        .split_once("## Benchmark\n")
        .expect("a Benchmark section");
    let section = section.split("\n## ").next().unwrap();
    let bench = read("docs/benchmarks.md");
    let numbers: BTreeSet<String> = figures(&bench).into_iter().map(|(n, _)| n).collect();
    let mut said = 0;
    for (n, unit) in figures(section) {
        said += 1;
        assert!(
            numbers.contains(&n),
            "README.md's benchmark says {n} {unit}, which docs/benchmarks.md does not"
        );
    }
    assert!(said >= 15, "the scan found the README's figures ({said})");
    // The commit the README names is the one the figures were measured on.
    let (_, figures_section) = bench.split_once("## Figures").unwrap();
    let measured_on = figures_section
        .split_once("of commit `")
        .map(|(_, r)| &r[..r.find('`').unwrap()])
        .expect("docs/benchmarks.md names the commit of its figures");
    assert!(
        section.contains(&format!("release\nbuild of `{measured_on}`"))
            || section.contains(&format!("release build of `{measured_on}`")),
        "README.md's benchmark does not name the release build of {measured_on}"
    );
}

#[test]
fn the_documents_give_the_functions_memory_and_timeout_as_the_template_does() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    let function = &t["Resources"]["Function"]["Properties"];
    let setting = |k: &str| {
        function
            .get(k)
            .or_else(|| globals.get(k))
            .and_then(serde_yaml::Value::as_u64)
            .unwrap_or_else(|| panic!("the function's {k}"))
    };
    let (memory, timeout) = (setting("MemorySize"), setting("Timeout"));
    let pair = regex_lite::Regex::new(r"(?:^|[^0-9.])(\d+) MB,? (?:and )?(\d+) s\b").unwrap();
    let mut found = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap().replace('\n', " ");
        for c in pair.captures_iter(&text) {
            found += 1;
            assert_eq!(
                (c[1].parse::<u64>().unwrap(), c[2].parse::<u64>().unwrap()),
                (memory, timeout),
                "{} says the function has {}; the template: {memory} MB, {timeout} s",
                rel(&doc),
                &c[0]
            );
        }
    }
    assert!(
        found >= 3,
        "the scan found the documents' memory and timeout ({found})"
    );
    // A tick starts no backup in its last seconds: what one tick can start in.
    let margin_s = autoheal::pipeline::tick::backups::STOP_MARGIN_MS as u64 / 1000;
    let bench = read("docs/benchmarks.md").replace('\n', " ");
    assert!(
        bench.contains(&format!("`Timeout` ({timeout} s"))
            && bench.contains(&format!("≤ {} s in one tick", timeout - margin_s)),
        "docs/benchmarks.md sets the backup tick against the function's {timeout} s Timeout less {margin_s} s"
    );
}
