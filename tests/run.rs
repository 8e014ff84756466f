//! Scenario tests of the runner (`relance run`), end to end through the
//! real binary: each folder under `tests/run/` is a small project with
//! `contacts.jsonl` (or `contacts.csv`), optionally `events.jsonl` and
//! `rates.toml`, and `args` (the run's window and flags, one line). The
//! expected outbox is `outbox.jsonl` and the expected standard error
//! (bad lines, trace, summary) is `stderr.txt`, both checked in and
//! reviewed like code.
//!
//! `BLESS=1 cargo test --test run` rewrites the expected files from the
//! current output; review the diff before committing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_relance")
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run");
    let mut out: Vec<PathBuf> = fs::read_dir(&root)
        .expect("tests/run exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

struct Ran {
    outbox: String,
    stderr: String,
    code: i32,
}

/// Builds the case's project at the window's start, then runs it.
fn run_case(dir: &Path, extra: &[&str]) -> Ran {
    let args = fs::read_to_string(dir.join("args")).expect("args file");
    let args: Vec<&str> = args.split_whitespace().collect();
    let from = args
        .iter()
        .position(|a| *a == "--from")
        .and_then(|i| args.get(i + 1))
        .expect("--from in args");
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let tmp = std::env::temp_dir().join(format!(
        "relance-run-{}-{}-{}",
        dir.file_name().unwrap().to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    let build = Command::new(bin())
        .args(["build", ".", "--color", "never", "--now", from, "--out"])
        .arg(&tmp)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}: build failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&build.stderr)
    );
    let contacts = if dir.join("contacts.csv").exists() {
        "contacts.csv"
    } else {
        "contacts.jsonl"
    };
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--plan"])
        .arg(tmp.join("plan.json"))
        .args(["--contacts", contacts])
        .args(&args)
        .args(extra)
        .arg("--out")
        .arg(tmp.join("outbox.jsonl"))
        .current_dir(dir);
    if dir.join("events.jsonl").exists() {
        cmd.args(["--events", "events.jsonl"]);
    }
    if dir.join("rates.toml").exists() && !args.contains(&"--engagement") {
        cmd.args(["--engagement", "rates.toml"]);
    }
    let out = cmd.output().unwrap();
    let ran = Ran {
        outbox: fs::read_to_string(tmp.join("outbox.jsonl")).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    };
    let _ = fs::remove_dir_all(&tmp);
    ran
}

fn compare(path: &Path, got: &str, failures: &mut Vec<String>) {
    if std::env::var_os("BLESS").is_some() {
        fs::write(path, got).unwrap();
        return;
    }
    let want = fs::read_to_string(path).unwrap_or_default();
    if want != got {
        failures.push(format!(
            "{} differs (BLESS=1 to accept)\n--- expected\n{want}\n--- got\n{got}",
            path.display()
        ));
    }
}

#[test]
fn scenario_cases_match_their_expected_outbox_and_report() {
    let mut failures = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 6, "the cases are missing");
    for dir in cases {
        let ran = run_case(&dir, &[]);
        let expect_code: i32 = fs::read_to_string(dir.join("exit_code"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if ran.code != expect_code {
            failures.push(format!(
                "{}: exit code {} (expected {expect_code})\n{}",
                dir.display(),
                ran.code,
                ran.stderr
            ));
        }
        compare(&dir.join("outbox.jsonl"), &ran.outbox, &mut failures);
        compare(&dir.join("stderr.txt"), &ran.stderr, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn runs_are_byte_identical_whatever_the_thread_count() {
    for dir in cases() {
        let a = run_case(&dir, &["--threads", "1"]);
        let b = run_case(&dir, &["--threads", "3"]);
        assert_eq!(a.outbox, b.outbox, "{}", dir.display());
        assert_eq!(a.stderr, b.stderr, "{}", dir.display());
    }
}
