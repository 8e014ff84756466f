//! `relance diff`: golden tests on a series of edits to a copy of
//! `campaigns/`. Each case is a folder of `tests/diff/`: `edits` says how
//! the copy differs from `campaigns/` (the new side), and `expected.txt`,
//! `expected.md` and `expected.json` hold the three outputs, with `exit: N`
//! as the first line of `expected.txt` (the status under `--deny-risks`).
//! `BLESS=1 cargo test --test diff` rewrites the expected files.
//!
//! The `edits` format, one edit per block:
//!
//! ```text
//! @@ pressure.camp
//! - email max 3 per 7d
//! + email max 4 per 7d
//! ```
//!
//! The `-` text must occur exactly once in the file and is replaced by the
//! `+` text (`\n` in either is a newline; no `+` line deletes it). A block with
//! no `-` line appends its `+` text to the file, creating it if need be.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_relance");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() == "build" {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A fresh copy of `campaigns/` under the test's temporary folder.
fn campaigns_copy(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("diff")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root().join("campaigns"), &dir);
    dir
}

/// Applies an `edits` file to the project at `dir`.
fn apply_edits(dir: &Path, edits: &str) {
    let mut file: Option<String> = None;
    let mut minus: Option<String> = None;
    let mut plus: Vec<String> = Vec::new();
    let flush = |file: &Option<String>, minus: &mut Option<String>, plus: &mut Vec<String>| {
        let Some(f) = file else { return };
        if minus.is_none() && plus.is_empty() {
            return;
        }
        let path = dir.join(f);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let new_text = plus.join("\n").replace("\\n", "\n");
        let text = match minus.take() {
            Some(m) => {
                let m = m.replace("\\n", "\n");
                assert_eq!(
                    text.matches(&m).count(),
                    1,
                    "`{m}` must occur exactly once in {f}"
                );
                text.replacen(&m, &new_text, 1)
            }
            None => format!("{text}\n{new_text}\n"),
        };
        std::fs::write(&path, text).unwrap();
        plus.clear();
    };
    for line in edits.lines() {
        if let Some(f) = line.strip_prefix("@@ ") {
            flush(&file, &mut minus, &mut plus);
            file = Some(f.trim().to_string());
        } else if let Some(m) = line.strip_prefix("- ") {
            flush(&file, &mut minus, &mut plus);
            minus = Some(m.to_string());
        } else if let Some(p) = line.strip_prefix("+ ").or(line.strip_prefix("+")) {
            plus.push(p.to_string());
        } else if !line.trim().is_empty() && !line.starts_with('#') {
            panic!("unreadable edit line: {line}");
        }
    }
    flush(&file, &mut minus, &mut plus);
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn diff(args: &[&str]) -> Out {
    let out = Command::new(BIN)
        .arg("diff")
        .args(args)
        .args(["--color", "never"])
        .current_dir(root())
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn check_golden(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{} differs (BLESS=1 to accept).\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ));
    }
}

#[test]
fn golden_cases() {
    let cases = root().join("tests/diff");
    let mut names: Vec<String> = std::fs::read_dir(&cases)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("edits").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 6, "the cases are missing: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let case = cases.join(name);
        let dir = campaigns_copy(name);
        apply_edits(&dir, &std::fs::read_to_string(case.join("edits")).unwrap());
        let new = dir.to_string_lossy().into_owned();
        let human = diff(&["campaigns", &new, "--deny-risks"]);
        if !human.stderr.is_empty() {
            failures.push(format!("{name}: stderr:\n{}", human.stderr));
        }
        let text = format!("exit: {}\n{}", human.code, human.stdout);
        check_golden(&case.join("expected.txt"), &text, &mut failures);
        let md = diff(&["campaigns", &new, "--format", "markdown"]);
        check_golden(&case.join("expected.md"), &md.stdout, &mut failures);
        let json = diff(&["campaigns", &new, "--format", "json"]);
        if json.code != 0 {
            failures.push(format!("{name}: without --deny-risks, exit {}", json.code));
        }
        match serde_json::from_str::<serde_json::Value>(&json.stdout) {
            Ok(v)
                if v["changes"].is_array() && v["risks"].is_array() && v["impact"].is_object() => {}
            _ => failures.push(format!("{name}: not the JSON of a diff:\n{}", json.stdout)),
        }
        check_golden(&case.join("expected.json"), &json.stdout, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn identical_projects_give_an_empty_diff() {
    let copy = campaigns_copy("identical");
    let out = diff(&["campaigns", &copy.to_string_lossy(), "--deny-risks"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "no changes; no risks\n");
    let json = diff(&["campaigns", "campaigns", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["changes"], serde_json::json!([]));
    assert_eq!(v["risks"], serde_json::json!([]));
}

#[test]
fn moved_and_reformatted_declarations_are_not_changes() {
    let dir = campaigns_copy("moved");
    // The pressure policy moves to the end of another file, on other lines
    // and with other spacing; a segment is written with extra parentheses.
    let pressure = std::fs::read_to_string(dir.join("pressure.camp")).unwrap();
    let respaced = pressure.replace("  email max 3 per 7d", "  email   max 3   per 7d\n");
    std::fs::remove_file(dir.join("pressure.camp")).unwrap();
    let mut lists = std::fs::read_to_string(dir.join("lists.camp")).unwrap();
    lists.push_str(&respaced);
    std::fs::write(dir.join("lists.camp"), lists).unwrap();
    apply_edits(
        &dir,
        "@@ segments.camp\n- segment marketable = not undesirable and not hard_bounced\n+ segment marketable = (not undesirable) and (not hard_bounced)\n",
    );
    let out = diff(&["campaigns", &dir.to_string_lossy()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "no changes; no risks\n");
}

#[test]
fn a_project_reformatted_by_relance_fmt_gives_an_empty_diff() {
    let dir = campaigns_copy("reformatted");
    // Undo the alignment before every `=` and `:`, then let `relance fmt`
    // lay the files out again.
    let mut changed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "camp") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut squeezed = text.clone();
        for op in ["=", ":"] {
            while squeezed.contains(&format!("  {op} ")) {
                squeezed = squeezed.replace(&format!("  {op} "), &format!(" {op} "));
            }
        }
        if squeezed != text {
            changed += 1;
            std::fs::write(&path, squeezed).unwrap();
        }
    }
    assert!(changed > 0, "nothing to reformat");
    let fmt = Command::new(BIN).arg("fmt").arg(&dir).output().unwrap();
    assert!(
        fmt.status.success(),
        "{}",
        String::from_utf8_lossy(&fmt.stderr)
    );
    let out = diff(&["campaigns", &dir.to_string_lossy()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "no changes; no risks\n");
}

#[test]
fn a_side_with_errors_is_reported_and_exits_1() {
    let dir = campaigns_copy("broken");
    apply_edits(
        &dir,
        "@@ segments.camp\n- segment anonymous = first_name is not set\n+ segment anonymous = frist_name is not set\n",
    );
    let out = diff(&["campaigns", &dir.to_string_lossy()]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("E0201"), "{}", out.stderr);
    assert!(
        out.stderr.contains("the new side") && out.stderr.contains("has errors"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_side_that_is_neither_folder_nor_revision_exits_2() {
    let out = diff(&["no-such-folder-or-revision-xyz", "campaigns"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("`no-such-folder-or-revision-xyz` is neither a folder nor a git revision"),
        "{}",
        out.stderr
    );
}

#[test]
fn risk_codes_are_explained() {
    for code in ["R0101", "R0102", "R0103", "R0104", "r0105"] {
        let out = Command::new(BIN).args(["explain", code]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{code}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with(&format!("# {}:", code.to_ascii_uppercase())),
            "{text}"
        );
    }
    let unknown = Command::new(BIN)
        .args(["explain", "R0199"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=relance",
            "-c",
            "user.email=relance@example.org",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two commits and a dirty work tree: revisions are read with git, from the
/// project's path in the revision (the current folder's, or `--project`).
#[test]
fn git_revisions_are_compared() {
    if Command::new("git").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "git is missing under CI");
        eprintln!("WARNING: git is not installed: git_revisions_are_compared is SKIPPED");
        return;
    }
    let repo = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("diff-git");
    let _ = std::fs::remove_dir_all(&repo);
    copy_dir(&root().join("campaigns"), &repo.join("proj"));
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "first"]);
    apply_edits(
        &repo.join("proj"),
        "@@ pressure.camp\n- email max 3 per 7d\n+ email max 4 per 7d\n",
    );
    git(&repo, &["commit", "-qam", "second"]);
    apply_edits(
        &repo.join("proj"),
        "@@ workspace.camp\n-   name     = \"Autoparts Lyon\"\n+   name     = \"Autoparts\"\n",
    );
    let run = |dir: &Path, args: &[&str]| {
        let out = Command::new(BIN)
            .arg("diff")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Two revisions, the project named from the repository's root.
    let (code, out, err) = run(&repo, &["HEAD~1", "HEAD", "--project", "proj"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.lines().last(),
        Some("1 pressure policy changed; 1 risk"),
        "{out}"
    );
    // A revision against the dirty work tree, from inside the project.
    let (code, out, err) = run(&repo.join("proj"), &["HEAD~1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("~ name: \"Autoparts Lyon\" → \"Autoparts\""),
        "{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("1 workspace changed, 1 pressure policy changed; 1 risk"),
        "{out}"
    );
    // The work tree and the index are untouched.
    let status = Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        " M proj/workspace.camp\n"
    );
}

#[test]
fn colours_only_when_asked() {
    let dir = campaigns_copy("colours");
    apply_edits(
        &dir,
        "@@ pressure.camp\n- email max 3 per 7d\n+ email max 4 per 7d\n",
    );
    let out = Command::new(BIN)
        .args([
            "diff",
            "campaigns",
            &dir.to_string_lossy(),
            "--color",
            "always",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "\x1b[33m    ~ cap email: `email max 3 per 7d` → `email max 4 per 7d`\x1b[0m"
        ),
        "{text}"
    );
    assert!(text.contains("\x1b[1;33mwarning[R0103]"), "{text}");
    // `--color never` (as in the golden files): no colour.
    let plain = diff(&["campaigns", &dir.to_string_lossy()]);
    assert!(!plain.stdout.contains('\x1b'), "{}", plain.stdout);
}

/// `docs/diff.schema.json` is the schema of the JSON output, and every
/// golden JSON output passes it.
#[test]
fn json_output_follows_its_schema() {
    let path = root().join("docs/diff.schema.json");
    let generated = relance::diff::json_schema();
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        checked_in, generated,
        "docs/diff.schema.json is stale: BLESS=1 cargo test --test diff"
    );
    let schema: serde_json::Value = serde_json::from_str(&generated).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("tests/diff")).unwrap() {
        let file = entry.unwrap().path().join("expected.json");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        checked += 1;
    }
    assert!(checked >= 6);
    // A risk code outside R01xx is refused.
    let bad = serde_json::json!({"changes": [], "risks": [{"code": "E0001", "severity": "warning", "kind": "scenario", "name": "x", "message": "m"}], "impact": {}, "summary": "s"});
    assert!(!validator.is_valid(&bad));
}
