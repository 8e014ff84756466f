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
        Some(
            "1 pressure policy changed; 1 risk; no change in messages over 37 days on the sample base"
        ),
        "{out}"
    );
    // A revision against the dirty work tree, from inside the project
    // (without the impact on data).
    let (code, out, err) = run(&repo.join("proj"), &["HEAD~1", "--no-data"]);
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

/// Runs the real binary with `args` in `dir`; panics unless it exits 0.
fn relance_ok(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "relance {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The summary of `relance run` on the project at `dir` (its own
/// relance.toml gives the data and the window), after `relance build`.
fn run_summary(dir: &Path, work: &Path) -> serde_json::Value {
    let build = work.join("build");
    let summary = work.join("summary.json");
    let _ = std::fs::remove_dir_all(&build);
    let d = dir.to_string_lossy();
    relance_ok(&root(), &["build", &d, "--out", &build.to_string_lossy()]);
    relance_ok(
        &root(),
        &[
            "run",
            &d,
            "--plan",
            &build.join("plan.json").to_string_lossy(),
            "--out",
            &work.join("outbox.jsonl").to_string_lossy(),
            "--summary",
            &summary.to_string_lossy(),
        ],
    );
    serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap()
}

/// `relance segments` of the project at `dir` on its sample data at `as_of`:
/// count by target (`name`, `audience:SCENARIO`).
fn segment_counts(dir: &Path, as_of: &str) -> std::collections::BTreeMap<String, u64> {
    let text = relance_ok(
        &root(),
        &[
            "segments",
            &dir.to_string_lossy(),
            "--contacts",
            &dir.join("data/contacts.jsonl").to_string_lossy(),
            "--events",
            &dir.join("data/events.jsonl").to_string_lossy(),
            "--as-of",
            as_of,
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The impact on the sample data equals two separate `relance run`s (and
/// `relance segments` at the start of the window), side by side.
#[test]
fn the_impact_on_data_equals_two_relance_runs() {
    let dir = campaigns_copy("impact");
    // Christmas goes to every marketable reader or customer, not only the
    // French-speaking ones; weekly digests stop for pros; a wait shortens.
    apply_edits(
        &dir,
        "@@ scenarios.camp\n-   audience marketable and (newsletter or customers) and french_speaking\n+   audience marketable and (newsletter or customers)\n-   audience marketable and newsletter and not talking_to_us\n+   audience marketable and newsletter and not talking_to_us and not pros\n@@ segments.camp\n- segment new_signups = signup_at >= 14d ago\n+ segment new_signups = signup_at >= 30d ago\n",
    );
    let new = dir.to_string_lossy().into_owned();
    let json = diff(&["campaigns", &new, "--format", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert!(json.stderr.is_empty(), "{}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let data = &v["impact"]["data"];
    assert_eq!(data["base"], "sample base", "{data:#}");
    assert_eq!(data["contacts_file"], "data/contacts.jsonl");
    assert_eq!(data["from"], "2026-11-01T00:00:00Z");
    assert_eq!(data["until"], "2026-12-08T00:00:00Z");

    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("diff-impact-runs");
    let (old_work, new_work) = (work.join("old"), work.join("new"));
    for w in [&old_work, &new_work] {
        let _ = std::fs::remove_dir_all(w);
        std::fs::create_dir_all(w).unwrap();
    }
    let before = run_summary(&root().join("campaigns"), &old_work);
    let after = run_summary(&dir, &new_work);
    // The edit must change what is sent, or this test proves nothing.
    assert_ne!(before["messages"], after["messages"]);

    assert_eq!(data["contacts"]["before"], before["contacts"]);
    assert_eq!(data["contacts"]["after"], after["contacts"]);
    assert_eq!(data["messages"]["before"], before["messages"]);
    assert_eq!(data["messages"]["after"], after["messages"]);
    for side in ["before", "after"] {
        let summary = if side == "before" { &before } else { &after };
        assert_eq!(
            data[format!("pressure_{side}")],
            summary["pressure"],
            "{side}"
        );
    }
    // Every channel and template that sends on either side, and only those.
    let mut channels = 0;
    for (c, n) in before["channels"].as_object().unwrap() {
        let m = &after["channels"][c];
        if n.as_u64() == Some(0) && m.as_u64() == Some(0) {
            continue;
        }
        channels += 1;
        let row = data["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["channel"] == c.as_str())
            .unwrap_or_else(|| panic!("channel {c} missing: {data:#}"));
        assert_eq!((&row["before"], &row["after"]), (n, m), "{c}");
    }
    assert_eq!(data["channels"].as_array().unwrap().len(), channels);
    let mut templates = 0;
    for (t, counts) in before["templates"].as_object().unwrap() {
        let (b, a) = (&counts["sent"], &after["templates"][t]["sent"]);
        if b.as_u64() == Some(0) && a.as_u64() == Some(0) {
            continue;
        }
        templates += 1;
        let row = data["templates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["template"] == t.as_str())
            .unwrap_or_else(|| panic!("template {t} missing: {data:#}"));
        assert_eq!((&row["before"], &row["after"]), (b, a), "{t}");
        assert_eq!(row["channel"], counts["channel"], "{t}");
    }
    assert_eq!(data["templates"].as_array().unwrap().len(), templates);
    assert!(templates > 3, "{data:#}");

    // Audiences at the start of the window, as `relance segments` counts.
    let (seg_before, seg_after) = (
        segment_counts(&root().join("campaigns"), "2026-11-01T00:00:00Z"),
        segment_counts(&dir, "2026-11-01T00:00:00Z"),
    );
    let segments = data["segments"].as_array().unwrap();
    assert!(
        segments.iter().any(|s| s["name"] == "new_signups"),
        "{data:#}"
    );
    for s in segments {
        let name = s["name"].as_str().unwrap();
        assert_eq!(
            s["before"].as_u64(),
            seg_before.get(name).copied(),
            "{name}"
        );
        assert_eq!(s["after"].as_u64(), seg_after.get(name).copied(), "{name}");
    }
    let scenarios = data["scenarios"].as_array().unwrap();
    for name in ["xmas_2026", "weekly_digest"] {
        let s = scenarios
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("scenario {name} missing: {data:#}"));
        let key = format!("audience:{name}");
        assert_eq!(
            s["audience"]["before"].as_u64(),
            seg_before.get(&key).copied()
        );
        assert_eq!(
            s["audience"]["after"].as_u64(),
            seg_after.get(&key).copied()
        );
        assert_eq!(
            s["entries"]["before"], before["scenarios"][name]["entries"],
            "{name}"
        );
        assert_eq!(
            s["entries"]["after"], after["scenarios"][name]["entries"],
            "{name}"
        );
    }
    // The summary line says how the emails move over the window.
    let (b, a) = (
        before["channels"]["email"].as_i64().unwrap(),
        after["channels"]["email"].as_i64().unwrap(),
    );
    let moved = if a > b {
        format!("{} more emails", a - b)
    } else {
        format!("{} fewer emails", b - a)
    };
    let summary = v["summary"].as_str().unwrap();
    assert!(
        summary.contains(&moved) && summary.ends_with(" over 37 days on the sample base"),
        "{summary}"
    );
}

/// Flags override the sample data, `--no-data` leaves it out, and an
/// equal plan is not simulated.
#[test]
fn data_from_flags_or_none() {
    let dir = campaigns_copy("data-flags");
    apply_edits(
        &dir,
        "@@ pressure.camp\n- email max 3 per 7d\n+ email max 4 per 7d\n",
    );
    let new = dir.to_string_lossy().into_owned();
    let none = diff(&["campaigns", &new, "--format", "json", "--no-data"]);
    let v: serde_json::Value = serde_json::from_str(&none.stdout).unwrap();
    assert_eq!(v["impact"], serde_json::json!({}));
    assert_eq!(v["summary"], "1 pressure policy changed; 1 risk");
    let given = diff(&[
        "campaigns",
        &new,
        "--format",
        "json",
        "--contacts",
        "campaigns/data/contacts.jsonl",
        "--from",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-11-15T00:00:00Z",
    ]);
    assert_eq!(given.code, 0, "{}", given.stderr);
    let v: serde_json::Value = serde_json::from_str(&given.stdout).unwrap();
    assert_eq!(v["impact"]["data"]["base"], "base given");
    assert_eq!(
        v["impact"]["data"]["contacts_file"],
        "campaigns/data/contacts.jsonl"
    );
    assert_eq!(v["impact"]["data"]["events_file"], serde_json::Value::Null);
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .ends_with(" over 14 days on the base given"),
        "{}",
        v["summary"]
    );
    // An empty window is refused.
    let empty = diff(&[
        "campaigns",
        &new,
        "--from",
        "2026-11-15T00:00:00Z",
        "--until",
        "2026-11-01T00:00:00Z",
    ]);
    assert_eq!(empty.code, 2);
    assert!(
        empty.stderr.contains("the window is empty"),
        "{}",
        empty.stderr
    );
}

#[test]
fn risk_codes_are_listed_by_explain() {
    let out = Command::new(BIN)
        .args(["explain", "--list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for (code, title) in [
        ("R0101", "steps removed from a scenario or cadence"),
        ("R0105", "a consent rule loosened or removed"),
    ] {
        assert!(
            text.lines().any(|l| l == format!("{code}  {title}")),
            "{code}: {text}"
        );
    }
    // A typo in a risk code gets a suggestion.
    let typo = Command::new(BIN)
        .args(["explain", "R0110"])
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("did you mean `R01"),
        "{}",
        String::from_utf8_lossy(&typo.stderr)
    );
}

/// A PostgreSQL database made for one test, dropped at the end.
struct TestDatabase {
    admin: String,
    name: String,
    url: String,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A fresh database on `RELANCE_TEST_POSTGRES` (`.ci/run` starts one);
/// `None` outside CI without it, after a loud warning.
fn test_database(tag: &str) -> Option<TestDatabase> {
    let Ok(admin) = std::env::var("RELANCE_TEST_POSTGRES") else {
        let message = "PostgreSQL: RELANCE_TEST_POSTGRES is not set (a URL; .ci/run starts one with .ci/postgres)";
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("\n!!!!! SKIPPED: {message} !!!!!\n");
        return None;
    };
    let name = format!("relance_diff_{tag}_{}", std::process::id());
    let mut c = postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("RELANCE_TEST_POSTGRES={admin}: {e}"));
    // One statement each: a multi-statement batch is one transaction, and
    // neither may run in one.
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let base = admin.split('?').next().unwrap_or(&admin);
    let cut = base
        .rfind('/')
        .filter(|i| base[..*i].ends_with(|c: char| c != '/'));
    let url = match cut {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => format!("{base}/{name}"),
    };
    Some(TestDatabase { admin, name, url })
}

/// `--database`: the runs waiting at each removed step, read from the
/// schema `relance serve --migrate-only` makes (`relance.contacts.waiting`).
#[test]
fn runs_waiting_at_removed_steps_come_from_the_database() {
    let Some(db) = test_database("waiting") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("relance-diff-waiting-{}", std::process::id()));
    let build = Command::new(BIN)
        .args(["build", "--color", "never", "--out"])
        .arg(&out)
        .arg(root.join("campaigns"))
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let migrate = Command::new(BIN)
        .arg("serve")
        .arg("--plan")
        .arg(out.join("plan.json"))
        .args(["--database", &db.url, "--migrate-only"])
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let _ = std::fs::remove_dir_all(&out);
    let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    c.batch_execute(
        "INSERT INTO relance.contacts (id, contact, joined, waiting) VALUES
           ('c1', '{}', 0, '{weekly_digest/0}'),
           ('c2', '{}', 0, '{weekly_digest/0,drip_offers/1}'),
           ('c3', '{}', 0, '{}'),
           ('c4', '{}', 0, '{fleet_followup/9,welcome/0}'),
           ('c5', '{}', 0, '{fleet_followup/9}'),
           ('c6', '{}', 0, '{fleet_followup/2}');",
    )
    .unwrap();
    let dir = campaigns_copy("waiting");
    apply_edits(
        &dir,
        "@@ scenarios.camp\n- scenario weekly_digest {\\n  audience marketable and newsletter and not talking_to_us\\n  trigger  every monday 09:00\\n  reentry  always\\n  exit when not newsletter\\n\\n  send weekly_tips\\n}\n+\n@@ cadences.camp\n-   touch call_closing              // day 19: closing call\n+\n",
    );
    let new = dir.to_string_lossy().into_owned();
    let out = diff(&[
        "campaigns",
        &new,
        "--database",
        &db.url,
        "--no-data",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let waiting: Vec<(String, u64)> = v["impact"]["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["step"].as_str().unwrap().to_string(),
                w["runs"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        waiting.contains(&("weekly_digest/0".to_string(), 2)),
        "{waiting:?}"
    );
    // Touch ids are positional: removing the 9th touch of ten removes the
    // id of the last one, `fleet_followup/9`.
    assert!(
        waiting.contains(&("fleet_followup/9".to_string(), 2)),
        "{waiting:?}"
    );
    // Runs at steps that stay (drip_offers/1, welcome/0, fleet_followup/2)
    // are not counted.
    assert!(
        !waiting
            .iter()
            .any(|(s, _)| s == "drip_offers/1" || s == "welcome/0" || s == "fleet_followup/2"),
        "{waiting:?}"
    );
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    let risks = v["risks"].as_array().unwrap();
    let scenario = risks
        .iter()
        .find(|r| r["code"] == "R0101" && r["name"] == "weekly_digest")
        .unwrap();
    assert!(
        scenario["message"]
            .as_str()
            .unwrap()
            .ends_with("; 2 runs waiting there now (2 at weekly_digest/0)"),
        "{scenario}"
    );
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .ends_with("; 4 runs waiting at removed steps"),
        "{}",
        v["summary"]
    );
    // The human and Markdown reports show them too.
    let human = diff(&["campaigns", &new, "--database", &db.url, "--no-data"]);
    assert!(
        human
            .stdout
            .contains("runs waiting now at the steps the new plan removes:\n    ~ weekly_digest/0 (scenario weekly_digest): 2\n"),
        "{}",
        human.stdout
    );
    let md = diff(&[
        "campaigns",
        &new,
        "--database",
        &db.url,
        "--no-data",
        "--format",
        "markdown",
    ]);
    assert!(
        md.stdout
            .contains("| `weekly_digest/0` | scenario `weekly_digest` | 2 |"),
        "{}",
        md.stdout
    );
    // A database without relance serve's schema: a clear error, exit 2.
    c.batch_execute("DROP SCHEMA relance CASCADE").unwrap();
    let bad = diff(&["campaigns", &new, "--database", &db.url, "--no-data"]);
    assert_eq!(bad.code, 2, "{}", bad.stdout);
    assert!(
        bad.stderr.contains("relance.contacts") && bad.stderr.contains("relance serve"),
        "{}",
        bad.stderr
    );
}
