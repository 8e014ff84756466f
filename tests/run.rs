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

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::project::{Built, bounded, ran};
use common::{BIN, TempDir};

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
    let built = Built::new(dir, Some(from), &[]);
    let contacts = if dir.join("contacts.csv").exists() {
        "contacts.csv"
    } else {
        "contacts.jsonl"
    };
    let mut cmd = built.run();
    cmd.args(["--contacts", contacts])
        .args(&args)
        .args(extra)
        .arg("--out")
        .arg(built.file("outbox.jsonl"));
    if dir.join("events.jsonl").exists() {
        cmd.args(["--events", "events.jsonl"]);
    }
    // `env`: NAME=VALUE lines, the runner's environment (webhook secrets).
    for (name, value) in case_env(dir) {
        cmd.env(name, value);
    }
    if dir.join("rates.toml").exists() && !args.contains(&"--engagement") {
        cmd.args(["--engagement", "rates.toml"]);
    }
    let out = ran(&mut cmd);
    Ran {
        outbox: fs::read_to_string(built.file("outbox.jsonl")).unwrap_or_default(),
        stderr: out.stderr,
        code: out.code,
    }
}

/// The `env` file of a case: `NAME=VALUE` lines.
fn case_env(dir: &Path) -> Vec<(String, String)> {
    fs::read_to_string(dir.join("env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect()
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
    let built = Built::new(&root.join("campaigns"), Some("2026-11-01T00:00:00Z"), &[]);
    let run = || {
        let out = ran(built.run().args([
            "--contacts",
            "data/contacts.jsonl",
            "--events",
            "data/events.jsonl",
            "--from",
            "2026-11-01T00:00:00Z",
            "--until",
            "2026-12-01T00:00:00Z",
            "--strict",
            "--report",
        ]));
        assert!(out.success(), "{}", out.stderr);
        (out.stdout, out.stderr)
    };
    let (a, report) = run();
    let (b, _) = run();
    assert_eq!(a, b);
    let outbox = a;
    assert!(outbox.lines().count() > 50, "{outbox}");
    assert!(outbox.contains("\"scenario\":\"weekly_digest\""));
    assert!(report.contains("pressure over the window"), "{report}");
}

/// Usage and input failures: exit 2 (or 1 with `--strict`), with a message
/// that says what to do, and no partial outbox.
#[test]
fn run_failures_say_what_to_do() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run/bad_input");
    let built = Built::new(&dir, Some("2026-11-01T00:00:00Z"), &[]);
    let plan = built.plan();
    let out_file = built.file("outbox.jsonl");
    let run = |extra: &[&str]| {
        let out = ran(built.relance().arg("run").args(extra));
        (out.code, out.stderr)
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

    let rates = built.file("rates.toml");
    fs::write(&rates, "[default]\nopen = 1.5\n").unwrap();
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
}

/// `relance run campaigns` needs no flag but `--plan` here (its
/// `relance.toml` gives the sample data and the window), and over the
/// sample data every scenario and every cadence of campaigns/ sends at
/// least one message: the README's sample outbox shows each flow.
#[test]
fn sample_data_exercises_every_scenario_and_cadence() {
    let built = Built::new(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns"),
        None,
        &[],
    );
    let out = ran(built.run().args([".", "--strict"]));
    assert!(out.success(), "{}", out.stderr);
    let plan: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(built.plan()).unwrap()).unwrap();
    let outbox = out.stdout;
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
}

/// A TZif file (version 2) for a fixed offset of `hours` east of UTC with
/// no transitions: a "different database" in which every zone is wrong.
fn fixed_tzif(hours: i32) -> Vec<u8> {
    let abbr = format!("{:+03}", hours);
    let mut chars = abbr.clone().into_bytes();
    chars.push(0);
    let header = |out: &mut Vec<u8>| {
        out.extend_from_slice(b"TZif2");
        out.extend_from_slice(&[0; 15]);
        // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
        for n in [0u32, 0, 0, 0, 1, chars.len() as u32] {
            out.extend_from_slice(&n.to_be_bytes());
        }
    };
    let body = |out: &mut Vec<u8>| {
        out.extend_from_slice(&(hours * 3600).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&chars);
    };
    let mut out = Vec::new();
    header(&mut out);
    body(&mut out);
    header(&mut out);
    body(&mut out);
    out.extend_from_slice(format!("\n<{abbr}>{}\n", -hours).as_bytes());
    out
}

/// The outbox, the plan and the check never depend on the host's zoneinfo:
/// with `TZDIR` naming a database where Paris and New York are at +05:00
/// (or an empty folder), every output is byte for byte the same as
/// without it. Before the fix, the host's database won over the bundled one.
#[test]
fn the_host_time_zone_database_changes_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp_dir = TempDir::new("tzdir");
    let tmp = tmp_dir.path();
    let fake = tmp.join("fake-zoneinfo");
    let empty = tmp.join("empty-zoneinfo");
    for zone in [
        "Europe/Paris",
        "America/New_York",
        "America/Toronto",
        "Australia/Adelaide",
        "UTC",
    ] {
        let path = fake.join(zone);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, fixed_tzif(5)).unwrap();
    }
    fs::create_dir_all(&empty).unwrap();
    // The fake database is a valid one, and it disagrees with the bundled one.
    let db = jiff::tz::TimeZoneDatabase::from_dir(&fake).unwrap();
    let paris = db.get("Europe/Paris").unwrap();
    assert_eq!(
        paris.to_offset(jiff::Timestamp::UNIX_EPOCH).seconds(),
        5 * 3600
    );
    let project = root.join("tests/run/zones");
    let args: Vec<String> = fs::read_to_string(project.join("args"))
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let from = args[args.iter().position(|a| a == "--from").unwrap() + 1].clone();
    let contacts = project.join("contacts.jsonl");
    let outputs = |tzdir: Option<&Path>, tag: &str| {
        let out = tmp.join(tag);
        fs::create_dir_all(&out).unwrap();
        let command = |args: &[&str]| {
            let mut cmd = Command::new(BIN);
            cmd.args(args).current_dir(&project);
            match tzdir {
                Some(d) => cmd.env("TZDIR", d),
                None => cmd.env_remove("TZDIR"),
            };
            cmd.output().unwrap()
        };
        let check = command(&["check", ".", "--color", "never"]);
        let build = command(&[
            "build",
            ".",
            "--color",
            "never",
            "--now",
            &from,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            build.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&build.stderr)
        );
        let plan = out.join("plan.json");
        let mut run_args = vec![
            "run",
            "--plan",
            plan.to_str().unwrap(),
            "--contacts",
            contacts.to_str().unwrap(),
        ];
        run_args.extend(args.iter().map(String::as_str));
        let run = command(&run_args);
        assert!(
            run.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        (
            String::from_utf8_lossy(&check.stdout).into_owned()
                + &String::from_utf8_lossy(&check.stderr),
            fs::read_to_string(&plan).unwrap(),
            String::from_utf8(run.stdout).unwrap(),
            String::from_utf8_lossy(&run.stderr).into_owned(),
        )
    };
    let version = Command::new(BIN).arg("--version").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let tzdb = relance::tzdb::VERSION;
    assert_eq!(
        version.trim(),
        format!("relance {} (tzdb {tzdb})", env!("CARGO_PKG_VERSION"))
    );
    let reference = outputs(None, "host");
    assert!(
        reference.1.contains(&format!("\"tzdb\": \"{tzdb}\"")),
        "{}",
        reference.1
    );
    assert!(
        reference.3.contains(&format!("(tzdb {tzdb})")),
        "{}",
        reference.3
    );
    assert!(reference.2.lines().count() >= 2, "{}", reference.2);
    assert!(reference.1.contains("\"tzdb\""), "{}", reference.1);
    // The previews: the `date` helper in the contact's zone.
    let previews = |tzdir: Option<&Path>, tag: &str| {
        let out = tmp.join(format!("shop-{tag}"));
        let mut cmd = Command::new(BIN);
        cmd.args(["build", ".", "--now", "2026-03-29T00:30:00Z", "--out"])
            .arg(&out)
            .current_dir(root.join("tests/render/shop"));
        match tzdir {
            Some(d) => cmd.env("TZDIR", d),
            None => cmd.env_remove("TZDIR"),
        };
        let build = cmd.output().unwrap();
        assert!(
            build.status.success(),
            "{}",
            String::from_utf8_lossy(&build.stderr)
        );
        let mut files = Vec::new();
        let mut todo = vec![out.clone()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    files.push((
                        p.strip_prefix(&out).unwrap().to_path_buf(),
                        fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        files.sort();
        files
    };
    let shop = previews(None, "host");
    assert!(shop.len() > 5);
    for (dir, tag) in [(&fake, "fake"), (&empty, "empty")] {
        assert!(
            previews(Some(dir), tag) == shop,
            "previews with TZDIR={tag}"
        );
    }
    for (dir, tag) in [(&fake, "fake"), (&empty, "empty")] {
        let got = outputs(Some(dir), tag);
        assert_eq!(got.0, reference.0, "check output with TZDIR={tag}");
        assert_eq!(got.1, reference.1, "plan.json with TZDIR={tag}");
        assert_eq!(got.2, reference.2, "outbox with TZDIR={tag}");
        assert_eq!(got.3, reference.3, "run summary with TZDIR={tag}");
    }
    // A plan built by a relance with another tzdb: the run says so, and
    // uses its own database (the same outbox).
    let plan = tmp.join("host/plan.json");
    let text = fs::read_to_string(&plan).unwrap();
    fs::write(
        &plan,
        text.replace(&format!("\"tzdb\": \"{tzdb}\""), "\"tzdb\": \"2019c\""),
    )
    .unwrap();
    let mut run_args = vec!["run", "--plan", plan.to_str().unwrap(), "--contacts"];
    run_args.push(contacts.to_str().unwrap());
    run_args.extend(args.iter().map(String::as_str));
    let run = Command::new(BIN)
        .args(&run_args)
        .current_dir(&project)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(&format!(
            "note: the plan was built with tzdb 2019c; this run used tzdb {tzdb}"
        )),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), reference.2);
}

/// The summary JSON says which events were ignored and why: counts by
/// reason and the first lines of the events file.
#[test]
fn the_summary_names_the_ignored_events() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run/ignored_events");
    let summary =
        std::env::temp_dir().join(format!("relance-run-ignored-{}.json", std::process::id()));
    let ran = run_case(&dir, &["--summary", summary.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    let _ = fs::remove_file(&summary);
    let events = &json["events"];
    assert_eq!(events["ignored"], 7, "{json}");
    assert_eq!(events["ignored_by_reason"]["never_sent"], 7, "{json}");
    assert_eq!(events["ignored_by_reason"]["unknown_list"], 0, "{json}");
    let first = events["ignored_first"].as_array().unwrap();
    let lines: Vec<u64> = first.iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [1, 4, 5, 8, 9], "{json}");
    assert_eq!(first[0]["file"], "events.jsonl");
    assert_eq!(first[0]["contact"], "c");
    assert_eq!(first[0]["reason"], "never_sent");
    assert_eq!(first[0]["event"], "event `opened` on `later`");
    assert_eq!(json["tzdb"], relance::tzdb::VERSION);
}

/// Goals with `value` (v1.1): the summary JSON sums the field per goal and
/// in all; goals are keyed by event, `joined LIST` for a list.
#[test]
fn the_summary_sums_goal_values() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run/calendar_goals");
    let summary =
        std::env::temp_dir().join(format!("relance-run-goals-{}.json", std::process::id()));
    let ran = run_case(&dir, &["--summary", summary.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    let _ = fs::remove_file(&summary);
    let s = &json["scenarios"]["onboarding"];
    assert_eq!(s["goals"]["invoice_paid"], 2, "{json}");
    assert_eq!(s["goals"]["joined customers"], 2, "{json}");
    assert_eq!(s["goal_values"]["invoice_paid"], 1250.75, "{json}");
    assert!(s["goal_values"].get("joined customers").is_none(), "{json}");
    assert_eq!(json["goal_value"], 1250.75, "{json}");
    assert_eq!(json["goals_reached"], 4, "{json}");
}

/// The JSON summary counts sends skipped for consent (§12): in total under
/// `skipped`, and per template for the templates a rule covers. A plan
/// without consent rules keeps the v1 shape (no such keys).
#[test]
fn the_summary_counts_sends_without_consent() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run/consent_skip");
    let summary =
        std::env::temp_dir().join(format!("relance-run-consent-{}.json", std::process::id()));
    let ran = run_case(&dir, &["--summary", summary.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    let _ = fs::remove_file(&summary);
    // `no` misses both flash SMS, `later` the first, `optout` the email.
    assert_eq!(json["skipped"]["no_consent"], 4, "{json}");
    assert_eq!(
        json["templates"]["flash"]["skipped_no_consent"], 3,
        "{json}"
    );
    assert_eq!(
        json["templates"]["hello"]["skipped_no_consent"], 1,
        "{json}"
    );
    // A transactional SMS is not covered by the rule.
    assert!(
        json["templates"]["code"]
            .get("skipped_no_consent")
            .is_none(),
        "{json}"
    );

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run/ignored_events");
    let ran = run_case(&dir, &["--summary", summary.to_str().unwrap()]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    let _ = fs::remove_file(&summary);
    assert!(json["skipped"].get("no_consent").is_none(), "{json}");
}

/// `--engagement` rates under which every message draws an event that
/// sends more messages (a purchase rate of 1, two scenarios triggered by a
/// purchase) stay bounded: a message that three drawn events in a row led
/// to draws nothing, so each contact gets 1 + 2 + 4 + 8 messages, and the
/// summary says how many drew nothing and why. Before, the outbox doubled
/// with every drawn purchase and the week never ended; the run is killed
/// after a minute (it takes well under a second) so that a return of the
/// bug fails instead of hanging.
#[test]
fn forecast_feedback_loops_are_bounded() {
    let camp = r#"
workspace { name = "F", timezone = "Europe/Paris", from = "F <f@example.com>", address = "1 rue" }
contact { email: email }
event purchase { amount: number }
list members
template hello    : email { subject = "Hello", html = "<p>Hello</p><p>{{workspace.address}} <a href='{{unsubscribe_url}}'>Unsubscribe</a></p>" }
template thanks   : email { kind = transactional, subject = "Thanks", html = "<p>Thanks</p>" }
template followup : email { subject = "More?", html = "<p>More?</p><p>{{workspace.address}} <a href='{{unsubscribe_url}}'>Unsubscribe</a></p>" }
scenario welcome {
  trigger joined members
  send hello
}
scenario receipt {
  trigger event purchase
  reentry always
  send thanks
}
scenario order_followup {
  trigger event purchase
  reentry always
  send followup
}
"#;
    let mut contacts = String::new();
    let mut events = String::new();
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        contacts.push_str(&format!(
            "{{\"id\":\"{id}\",\"email\":\"{id}@example.com\"}}\n"
        ));
        events.push_str(&format!(
            "{{\"contact\":\"{id}\",\"event\":\"joined\",\"list\":\"members\",\"at\":\"2026-11-0{}T10:00:00Z\"}}\n",
            i + 2
        ));
    }
    let built = Built::from_files(
        "feedback",
        &[
            ("main.camp", camp),
            ("rates.toml", RATES),
            ("contacts.jsonl", &contacts),
            ("events.jsonl", &events),
        ],
        "2026-11-01T00:00:00Z",
    );
    let (ok, stderr) = forecast_run(&built, "2026-11-09T00:00:00Z");
    assert!(ok, "{stderr}");
    let outbox = fs::read_to_string(built.file("outbox.jsonl")).unwrap();
    assert_eq!(outbox.lines().count(), 3 * 15, "{stderr}");
    assert!(
        stderr.contains("warning: --engagement: 24 message(s) drew no reactions"),
        "{stderr}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(built.file("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["events"]["forecast_not_drawn"]["depth"], 24);
    assert_eq!(summary["events"]["forecast"], 3 * 7);
}

/// The engagement rates of the forecast tests: every message draws a
/// purchase an hour later.
const RATES: &str = "delay = \"1h\"\n[events.purchase]\nrate = 1\nfields = { amount = 10 }\n";

/// Runs the built project with `rates.toml` over November until `until`;
/// kills it after a minute (a forecast that does not end).
fn forecast_run(built: &Built, until: &str) -> (bool, String) {
    let mut cmd = built.run();
    cmd.args([
        "--contacts",
        "contacts.jsonl",
        "--events",
        "events.jsonl",
        "--engagement",
        "rates.toml",
        "--from",
        "2026-11-01T00:00:00Z",
        "--until",
        until,
        "--out",
    ])
    .arg(built.file("outbox.jsonl"))
    .arg("--summary")
    .arg(built.file("summary.json"));
    let out = bounded(
        &mut cmd,
        Duration::from_secs(60),
        "a forecast with a feedback loop did not end: its messages are unbounded",
    );
    (out.success(), out.stderr)
}

/// The last bound of a forecast: however wide the fan-out under the depth
/// limit (ten scenarios triggered by each drawn purchase, a root message
/// every day), a contact gets at most 2,000 drawn events, and the summary
/// counts the messages that drew nothing because of it.
#[test]
fn forecast_draws_are_capped_per_contact() {
    let mut camp = String::from(
        r#"
workspace { name = "F", timezone = "Europe/Paris", from = "F <f@example.com>", address = "1 rue" }
contact { email: email }
event purchase { amount: number }
template daily : email { kind = transactional, subject = "D", html = "<p>D</p>" }
scenario every_day {
  trigger every day 09:00
  reentry always
  send daily
}
"#,
    );
    for i in 0..10 {
        camp.push_str(&format!(
            "scenario fan{i} {{\n  trigger event purchase\n  reentry always\n  send daily\n}}\n"
        ));
    }
    let built = Built::from_files(
        "fanout",
        &[
            ("main.camp", &camp),
            ("rates.toml", RATES),
            (
                "contacts.jsonl",
                "{\"id\":\"a\",\"email\":\"a@example.com\"}\n",
            ),
            ("events.jsonl", ""),
        ],
        "2026-11-01T00:00:00Z",
    );
    let (ok, stderr) = forecast_run(&built, "2026-12-01T00:00:00Z");
    assert!(ok, "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(built.file("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["events"]["forecast"], 2000, "{stderr}");
    assert!(
        summary["events"]["forecast_not_drawn"]["contact_cap"]
            .as_u64()
            .unwrap()
            > 0,
        "{stderr}"
    );
    assert!(stderr.contains("already had 2000 drawn events"), "{stderr}");
}

/// The summary JSON counts the `wait until TIME` steps that went on at
/// once (the time had passed, or was absent) and the waits and date
/// triggers re-timed by an `updated` event, on the scenarios that have
/// them only.
#[test]
fn the_summary_counts_waits_and_triggers_on_dates() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run");
    let summary_of = |case: &str| {
        let summary = std::env::temp_dir().join(format!(
            "relance-run-{case}-summary-{}.json",
            std::process::id()
        ));
        let ran = run_case(&base.join(case), &["--summary", summary.to_str().unwrap()]);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
        let _ = fs::remove_file(&summary);
        json
    };
    let json = summary_of("time_wait_until");
    let trial = &json["scenarios"]["trial"];
    assert_eq!(trial["wait_until_passed"], 1, "{json}");
    assert_eq!(trial["wait_until_absent"], 1, "{json}");
    assert_eq!(trial["wait_until_retimed"], 2, "{json}");
    assert_eq!(
        json["scenarios"]["renewal"]["wait_until_absent"], 3,
        "{json}"
    );
    assert!(
        json["scenarios"]["ending_soon"]
            .get("wait_until_passed")
            .is_none()
    );
    assert!(trial.get("trigger_rescheduled").is_none());
    let json = summary_of("time_at");
    assert_eq!(
        json["scenarios"]["ending_call"]["trigger_rescheduled"], 2,
        "{json}"
    );
    assert_eq!(
        json["scenarios"]["renewal"]["trigger_rescheduled"], 0,
        "{json}"
    );
}

/// `examples/saas_trial` (issue 10's worked example) builds and runs as
/// `relance run` does in its folder (inputs and window from its
/// `relance.toml`), with the expected outbox checked in next to it and
/// reviewed by hand in its README. The CRM webhook's secret comes from the
/// environment and never reaches the outbox.
#[test]
fn the_saas_trial_example_runs_as_checked_in() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/saas_trial");
    let manifest: toml::Table = fs::read_to_string(dir.join("relance.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let from = manifest["run"]["from"].as_str().expect("[run] from");
    let built = Built::new(&dir, Some(from), &[]);
    let secret = "saas-trial-test-secret-7f3a";
    let run = ran(built
        .run()
        .arg("--out")
        .arg(built.file("outbox.jsonl"))
        .arg("--summary")
        .arg(built.file("summary.json"))
        .env("CRM_TOKEN", secret));
    let stderr = run.stderr;
    assert!(run.code == 0, "{stderr}");
    let outbox = fs::read_to_string(built.file("outbox.jsonl")).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(built.file("summary.json")).unwrap()).unwrap();
    assert!(!outbox.contains(secret), "the secret leaked:\n{outbox}");
    assert!(!stderr.contains(secret), "the secret leaked:\n{stderr}");
    let mut failures = Vec::new();
    compare(&dir.join("expected/outbox.jsonl"), &outbox, &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The README's hand-check, in numbers: Léa's SMS and Sam's three
    // onboarding emails lack consent, Léa unsubscribed from the newsletter,
    // her Saturday reminder waits for Monday, Tom's payment is worth 490.
    assert_eq!(summary["messages"], 19, "{summary}");
    assert_eq!(summary["skipped"]["no_consent"], 4, "{summary}");
    assert_eq!(summary["skipped"]["unsubscribed"], 1, "{summary}");
    assert_eq!(summary["deferred"], 1, "{summary}");
    assert_eq!(summary["expired"], 0, "{summary}");
    assert_eq!(summary["goal_value"], 490.0, "{summary}");
    assert_eq!(
        summary["scenarios"]["trial_onboarding"]["goals"]["subscribed"], 1,
        "{summary}"
    );
    assert_eq!(summary["channels"]["webhook"], 2, "{summary}");
}
