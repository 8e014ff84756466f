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

/// The sample project's data runs clean, twice identically, and sends.
#[test]
fn campaigns_sample_data_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::env::temp_dir().join(format!("relance-run-campaigns-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let build = Command::new(bin())
        .args([
            "build",
            "campaigns",
            "--now",
            "2026-11-01T00:00:00Z",
            "--out",
        ])
        .arg(&tmp)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let run = || {
        let out = Command::new(bin())
            .args(["run", "--plan"])
            .arg(tmp.join("plan.json"))
            .args([
                "--contacts",
                "campaigns/data/contacts.jsonl",
                "--events",
                "campaigns/data/events.jsonl",
                "--from",
                "2026-11-01T00:00:00Z",
                "--until",
                "2026-12-01T00:00:00Z",
                "--strict",
                "--report",
            ])
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (a, report) = run();
    let (b, _) = run();
    assert_eq!(a, b);
    let outbox = String::from_utf8(a).unwrap();
    assert!(outbox.lines().count() > 50, "{outbox}");
    assert!(outbox.contains("\"scenario\":\"weekly_digest\""));
    assert!(report.contains("pressure over the window"), "{report}");
    let _ = fs::remove_dir_all(&tmp);
}

/// Usage and input failures: exit 2 (or 1 with `--strict`), with a message
/// that says what to do, and no partial outbox.
#[test]
fn run_failures_say_what_to_do() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run/bad_input");
    let tmp = std::env::temp_dir().join(format!("relance-run-fail-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).unwrap();
    let build = Command::new(bin())
        .args(["build", ".", "--now", "2026-11-01T00:00:00Z", "--out"])
        .arg(&tmp)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(build.status.success());
    let plan = tmp.join("plan.json");
    let out_file = tmp.join("outbox.jsonl");
    let run = |extra: &[&str]| {
        let out = Command::new(bin())
            .arg("run")
            .args(extra)
            .current_dir(&dir)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let plan_s = plan.to_str().unwrap();
    let out_s = out_file.to_str().unwrap();
    let base = [
        "--plan",
        plan_s,
        "--contacts",
        "contacts.jsonl",
        "--events",
        "events.jsonl",
        "--from",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-11-30T00:00:00Z",
        "--out",
        out_s,
    ];
    let (code, err) = run(&[&base[..], &["--strict"]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("run refused") && err.contains("--strict"),
        "{err}"
    );
    assert!(!out_file.exists(), "a refused run writes no outbox");

    let (code, err) = run(&[
        "--plan",
        "missing.json",
        "--contacts",
        "contacts.jsonl",
        "--from",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-11-30T00:00:00Z",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("relance build"), "{err}");

    let (code, err) = run(&[
        "--plan",
        plan_s,
        "--contacts",
        "contacts.jsonl",
        "--from",
        "2026-11-30T00:00:00Z",
        "--until",
        "2026-11-01T00:00:00Z",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("window is empty"), "{err}");

    let (code, err) = run(&[
        "--plan",
        plan_s,
        "--contacts",
        "contacts.jsonl",
        "--from",
        "yesterday",
        "--until",
        "2026-11-01T00:00:00Z",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("RFC 3339"), "{err}");

    let (code, err) = run(&[&base[..], &["--trace", "nobody"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("no contact has this id"), "{err}");

    fs::write(tmp.join("rates.toml"), "[default]\nopen = 1.5\n").unwrap();
    let rates = tmp.join("rates.toml");
    let (code, err) = run(&[&base[..], &["--engagement", rates.to_str().unwrap()]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("between 0 and 1"), "{err}");

    fs::write(&plan, "{\"plan_version\": 1}").unwrap();
    let (code, err) = run(&base);
    assert_eq!(code, 2);
    assert!(
        err.contains("rebuild it with `relance build --out "),
        "{err}"
    );
    let _ = fs::remove_dir_all(&tmp);
}

/// `relance run campaigns` needs no flag but `--plan` here (its
/// `relance.toml` gives the sample data and the window), and over the
/// sample data every scenario and every cadence of campaigns/ sends at
/// least one message: the README's sample outbox shows each flow.
#[test]
fn sample_data_exercises_every_scenario_and_cadence() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::env::temp_dir().join(format!("relance-run-sample-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let build = Command::new(bin())
        .args(["build", "campaigns", "--color", "never", "--out"])
        .arg(&tmp)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let out = Command::new(bin())
        .args(["run", "campaigns", "--strict", "--plan"])
        .arg(tmp.join("plan.json"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(tmp.join("plan.json")).unwrap()).unwrap();
    let outbox = String::from_utf8(out.stdout).unwrap();
    let mut flows = Vec::new();
    for kind in ["scenarios", "cadences"] {
        let names = plan[kind].as_object().expect("a map of flows");
        assert!(!names.is_empty(), "campaigns/ has no {kind}");
        flows.extend(names.keys().cloned());
    }
    // A step id starts with its scenario's or cadence's name.
    let silent: Vec<&String> = flows
        .iter()
        .filter(|f| !outbox.contains(&format!("\"step\":\"{f}/")))
        .collect();
    assert!(
        silent.is_empty(),
        "no outbox line over the sample data for {silent:?}; adjust campaigns/data/"
    );
    // The README's excerpt of this outbox is true.
    let readme = include_str!("../README.md");
    let start = readme
        .find("```json\n")
        .expect("README shows an outbox excerpt")
        + 8;
    let end = start + readme[start..].find("```").expect("json block is closed");
    for line in readme[start..end].lines() {
        assert!(
            outbox.lines().any(|l| l == line),
            "README's outbox line is not in the sample outbox:\n{line}"
        );
    }
    let _ = fs::remove_dir_all(&tmp);
}
