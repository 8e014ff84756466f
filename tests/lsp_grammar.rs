//! The VS Code grammar (`editors/vscode/syntaxes/relance.tmLanguage.json`):
//!
//! - every keyword of `grammar/relance.pest` is highlighted by the grammar
//!   and shows in the snapshot sample, and no keyword of the sample is
//!   scoped as a plain name (read from the checked-in snapshot);
//! - `vscode-tmgrammar-test` (npm, pinned in `editors/vscode/package-lock.json`,
//!   installed by `.ci/run` with `npm ci`) passes the scope assertions of
//!   `editors/vscode/test/unit/` and finds the snapshots of
//!   `editors/vscode/test/snap/` unchanged. Under `CI` a missing tool fails
//!   the test; elsewhere that part is skipped with a warning.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vscode() -> PathBuf {
    repo().join("editors/vscode")
}

/// The keywords of the language: the `kw_*` rules of the pest grammar.
fn keywords() -> BTreeSet<String> {
    let pest = std::fs::read_to_string(repo().join("grammar/relance.pest")).unwrap();
    let kws: BTreeSet<String> = pest
        .lines()
        .filter(|l| l.starts_with("kw_"))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .collect();
    assert!(kws.len() > 80, "{} keywords read", kws.len());
    kws
}

#[test]
fn every_keyword_is_in_the_grammar_and_the_sample() {
    let grammar =
        std::fs::read_to_string(vscode().join("syntaxes/relance.tmLanguage.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&grammar).expect("the grammar is JSON");
    assert_eq!(json["scopeName"], "source.relance");
    let sample = std::fs::read_to_string(vscode().join("test/snap/language.camp")).unwrap();
    let words: BTreeSet<&str> = sample
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    for kw in keywords() {
        let in_grammar = grammar.contains(&format!("|{kw}|"))
            || grammar.contains(&format!("({kw}|"))
            || grammar.contains(&format!("|{kw})"));
        assert!(in_grammar, "`{kw}` is not highlighted by the grammar");
        assert!(
            words.contains(kw.as_str()),
            "`{kw}` is not in test/snap/language.camp"
        );
    }
}

#[test]
fn no_keyword_is_scoped_as_a_name_in_the_snapshot() {
    let kws = keywords();
    let snap = std::fs::read_to_string(vscode().join("test/snap/language.camp.snap")).unwrap();
    let mut source: Option<&str> = None;
    let mut checked = 0;
    for line in snap.lines() {
        if let Some(s) = line.strip_prefix('>') {
            source = Some(s);
            continue;
        }
        let (Some(src), Some(rest)) = (source, line.strip_prefix('#')) else {
            continue;
        };
        let start = rest.len() - rest.trim_start_matches(' ').len();
        let carets = rest[start..].chars().take_while(|&c| c == '^').count();
        let scopes = rest[start + carets..].trim();
        let Some(token) = src.get(start..start + carets) else {
            continue;
        };
        if kws.contains(token) {
            checked += 1;
            assert!(
                !scopes.contains("variable.other.relance") && scopes != "source.relance",
                "`{token}` is scoped `{scopes}` in: {src}"
            );
        }
    }
    assert!(checked > 100, "{checked} keyword tokens checked");
}

fn missing(what: &str) {
    let message = format!("{what} (.ci/run runs `npm ci --prefix editors/vscode`)");
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("\n!!!!! SKIPPED the grammar's scope tests: {message} !!!!!\n");
}

#[test]
fn vscode_tmgrammar_test_passes() {
    let bin = vscode().join("node_modules/.bin");
    if !bin.join("vscode-tmgrammar-test").is_file() {
        missing("vscode-tmgrammar-test is not installed in editors/vscode/node_modules");
        return;
    }
    for (tool, glob) in [
        ("vscode-tmgrammar-test", "test/unit/*.camp"),
        ("vscode-tmgrammar-snap", "test/snap/*.camp"),
    ] {
        let out = Command::new(bin.join(tool))
            .args(["-g", "syntaxes/relance.tmLanguage.json", glob])
            .current_dir(vscode())
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{tool} failed:\n{text}");
        assert!(!text.contains("✖"), "{tool}:\n{text}");
    }
}
