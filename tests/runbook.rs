//! A runbook for every report: each kind of hand-over (`Handover::ALL`) has its section in
//! docs/RUNBOOK.md under "What each report asks of you", at the anchor its reports link,
//! with what it means, what to look at, what to do and what never to do; that part of the
//! runbook has no section of a kind the code does not have; every link to a section
//! resolves; and the breaker's resume commands, as written there, send the resume event.

#[path = "common/files.rs"]
mod files;

use autoheal::intake::{parse, Intake};
use autoheal::model::handover::{github_anchor, Handover};
use autoheal::model::scope::ScopeKey;
use files::files_under;
use std::collections::BTreeMap;
use std::path::Path;

/// The part of the runbook that holds one section per kind.
const KINDS: &str = "## What each report asks of you";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn runbook() -> String {
    std::fs::read_to_string(root().join("docs/RUNBOOK.md")).unwrap()
}

/// Every heading of `text`: (level, title, the text under it up to the next heading of
/// its level or above). Lines inside code fences are not headings.
fn sections(text: &str) -> Vec<(usize, String, String)> {
    let mut heads: Vec<(usize, usize, String)> = vec![];
    let mut fenced = false;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let level = line.chars().take_while(|c| *c == '#').count();
        if !fenced && level > 0 && line[level..].starts_with(' ') {
            heads.push((i, level, line[level..].trim().to_string()));
        }
    }
    heads
        .iter()
        .enumerate()
        .map(|(n, (i, level, title))| {
            let end = heads[n + 1..]
                .iter()
                .find(|(_, l, _)| l <= level)
                .map_or(lines.len(), |(j, _, _)| *j);
            (*level, title.clone(), lines[i + 1..end].join("\n"))
        })
        .collect()
}

/// The kinds' sections: title -> text.
fn kind_sections(text: &str) -> BTreeMap<String, String> {
    let all = sections(text);
    let at = all
        .iter()
        .position(|(l, t, _)| *l == 2 && format!("## {t}") == KINDS)
        .unwrap_or_else(|| panic!("docs/RUNBOOK.md has no {KINDS:?}"));
    all[at + 1..]
        .iter()
        .take_while(|(l, _, _)| *l > 2)
        .filter(|(l, _, _)| *l == 3)
        .map(|(_, t, body)| (t.clone(), body.clone()))
        .collect()
}

#[test]
fn every_kind_has_a_section_with_steps_and_every_section_is_a_kinds() {
    let text = runbook();
    let found = kind_sections(&text);
    let by_anchor: BTreeMap<String, &String> = found
        .iter()
        .map(|(title, body)| (github_anchor(title), body))
        .collect();
    assert_eq!(by_anchor.len(), found.len(), "two sections share an anchor");
    for &kind in Handover::ALL {
        let body = by_anchor.get(kind.anchor()).unwrap_or_else(|| {
            panic!(
                "docs/RUNBOOK.md has no section for {kind:?}: add \"### {}\" under {KINDS:?}",
                kind.title()
            )
        });
        for part in ["**Means**:", "**Look**:", "**Do**:", "**Never**:"] {
            assert!(body.contains(part), "{kind:?}: no {part} in its section");
        }
        let (_, todo) = body.split_once("**Do**:").unwrap();
        assert!(
            todo.contains("\n1. "),
            "{kind:?}: what to do is not a numbered list of steps"
        );
    }
    for title in found.keys() {
        let anchor = github_anchor(title);
        assert!(
            Handover::ALL.iter().any(|k| k.anchor() == anchor),
            "docs/RUNBOOK.md has a section {title:?} (#{anchor}) that no hand-over kind links"
        );
    }
    // Every heading of the runbook has its own anchor: no kind's link lands elsewhere.
    let mut anchors: Vec<String> = sections(&text)
        .iter()
        .map(|(_, t, _)| github_anchor(t))
        .collect();
    let count = anchors.len();
    anchors.sort();
    anchors.dedup();
    assert_eq!(anchors.len(), count, "two headings share an anchor");
}

/// `(file, anchor)` for every link at a runbook section: `](#x)` inside the runbook,
/// `RUNBOOK.md#x` anywhere in the documents and sources.
fn links_to_sections() -> Vec<(String, String)> {
    let mut files = vec![root().join("README.md")];
    files_under(&root().join("docs"), "md", &mut files);
    files_under(&root().join("src"), "rs", &mut files);
    let mut out = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let name = f.strip_prefix(root()).unwrap().display().to_string();
        let mut marks = vec!["RUNBOOK.md#"];
        if name == "docs/RUNBOOK.md" {
            marks.push("](#");
        }
        for mark in marks {
            for (at, _) in text.match_indices(mark) {
                let anchor: String = text[at + mark.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                out.push((name.clone(), anchor));
            }
        }
    }
    out
}

#[test]
fn every_link_to_a_runbook_section_resolves() {
    let anchors: Vec<String> = sections(&runbook())
        .iter()
        .map(|(_, t, _)| github_anchor(t))
        .collect();
    let links = links_to_sections();
    assert!(links.len() > 10, "the links were not found: {links:?}");
    for (file, anchor) in links {
        // `<anchor>` in a sentence that explains the form is a placeholder.
        if anchor.is_empty() {
            continue;
        }
        assert!(
            anchors.contains(&anchor),
            "{file} links docs/RUNBOOK.md#{anchor}, which has no such heading"
        );
    }
}

/// What a POSIX shell passes to `aws` for `command`, argument by argument.
fn as_the_shell_reads(command: &str) -> Vec<String> {
    let script = format!("aws() {{ for a in \"$@\"; do printf '%s\\0' \"$a\"; done; }}; {command}");
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{command}");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_terminator('\0')
        .map(str::to_string)
        .collect()
}

#[test]
fn the_breakers_resume_commands_as_written_send_the_resume_event() {
    let sections = kind_sections(&runbook());
    let breaker = &sections[Handover::Breaker.title()];
    let commands: Vec<&str> = breaker
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.starts_with("aws lambda invoke"))
        .collect();
    assert_eq!(commands.len(), 2, "both forms: {breaker}");
    let mut scopes = vec![];
    for command in commands {
        // Placeholders as a person fills them in.
        let filled = command
            .replace("<FunctionName>", "autoheal")
            .replace("<other-region>", "ap-northeast-1")
            .replace("<region>", "us-east-1")
            .replace("<name>", "web");
        assert!(!filled.contains('<'), "a placeholder left: {filled}");
        let args = as_the_shell_reads(&filled);
        let payload = &args[args.iter().position(|a| a == "--payload").unwrap() + 1];
        assert!(
            args.windows(2)
                .any(|w| w == ["--cli-binary-format", "raw-in-base64-out"]),
            "{filled}"
        );
        match parse(payload.as_bytes()).as_slice() {
            [Intake::Resume { scope }] => scopes.push(scope.clone()),
            other => panic!("{filled}: {other:?}"),
        }
    }
    assert_eq!(
        scopes,
        vec![
            ScopeKey::group("web"),
            ScopeKey::group("web").in_region("ap-northeast-1")
        ],
        "the function's own region's form, then another region's"
    );
}
