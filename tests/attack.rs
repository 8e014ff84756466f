//! Regression tests for the inputs a mutation fuzzer found (issue 9, "Under
//! attack"): reference chains, diamonds of segments, floods of unknown
//! names, megabyte lines and CR-only line ends. Each input is generated
//! here and run through the real binary; where a hang was the bug, the
//! process is killed after a generous bound and the test fails saying so
//! (a bound on hanging, not a timing assertion).

mod common;

use std::process::Command;
use std::time::Duration;

use common::project::{Ran, bounded};
use common::{BIN, TempDir};

const HEAD: &str = r#"workspace {
  name = "W"
  timezone = "Europe/Paris"
  from = "W <a@b.example>"
  address = "1 rue X, Paris"
}
contact { email: email, country: text }
list customers
template hi : email {
  kind = transactional
  subject = "Hi"
  html = "<p>hi</p>"
}
"#;

/// `relance check --now … DIR` with extra arguments; killed (and the test
/// failed) if it runs longer than `bound`.
fn check(dir: &TempDir, extra: &[&str], bound: Duration) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.arg("check")
        .args(extra)
        .arg(dir.path())
        .env("NO_COLOR", "1");
    let out = bounded(
        &mut cmd,
        bound,
        &format!("relance check {extra:?} did not finish within {bound:?}"),
    );
    assert!(out.code >= 0, "relance was killed by a signal");
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("overflow"),
        "relance crashed:\n{}",
        &out.stderr[..out.stderr.len().min(4000)]
    );
    out
}

const BOUND: Duration = Duration::from_secs(300);

fn codes(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("JSON output");
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect()
}

/// `s0 = country == "FR"`, then `s{i} = s{i-1}`, a persona in France that
/// expects the last one, and a scenario whose audience excludes it.
fn chain(n: usize) -> String {
    let mut s = String::from(HEAD);
    s.push_str("segment s0 = country == \"FR\"\n");
    for i in 1..n {
        s.push_str(&format!("segment s{i} = s{}\n", i - 1));
    }
    let last = n - 1;
    s.push_str(&format!(
        "persona p {{\n  email = \"x@y.example\"\n  country = \"FR\"\n  expect s{last}\n}}\n\
         scenario sc {{\n  trigger joined customers\n  audience not s{last}\n  send hi\n}}\n"
    ));
    s
}

#[test]
fn a_chain_past_the_depth_limit_is_refused_not_answered_false() {
    let t = TempDir::new("attack-chain300");
    t.write("a.camp", &chain(300));
    let out = check(&t, &["--format", "json"], BOUND);
    let found = codes(&out.stdout);
    assert!(found.contains(&"E0020".to_string()), "{found:?}");
    assert!(
        !found.contains(&"E0403".to_string()),
        "the persona's expect holds; a depth cut-off must not call it false: {found:?}"
    );
    assert_eq!(
        found.iter().filter(|c| *c == "E0020").count(),
        1,
        "{found:?}"
    );
}

#[test]
fn a_chain_within_the_limit_passes_with_its_expect_true() {
    let t = TempDir::new("attack-chain200");
    t.write("a.camp", &chain(200));
    let out = check(&t, &["--format", "json"], BOUND);
    assert_eq!(codes(&out.stdout), Vec::<String>::new(), "{}", out.stdout);
    assert_eq!(out.code, 0);
}

#[test]
fn a_chain_of_forty_thousand_segments_does_not_overflow_the_stack() {
    let t = TempDir::new("attack-chain40k");
    t.write("a.camp", &chain(40_000));
    let out = check(&t, &["--format", "json"], BOUND);
    // The depth error, and the note that the persona built on the chain
    // was not checked (W0910).
    assert_eq!(
        codes(&out.stdout),
        vec!["E0020".to_string(), "W0910".to_string()]
    );
    assert_eq!(out.code, 1);
}

#[test]
fn a_diamond_of_sixty_levels_checks_in_linear_work() {
    // `d{i} = d{i-1} or d{i-1}`: 2^60 walks without memoisation, so this
    // never finished before the fix.
    let mut s = String::from(HEAD);
    s.push_str("segment d0 = country == \"FR\"\n");
    for i in 1..60 {
        let op = if i % 2 == 0 { "and" } else { "or" };
        s.push_str(&format!("segment d{i} = d{0} {op} d{0}\n", i - 1));
    }
    s.push_str(
        "persona p {\n  email = \"x@y.example\"\n  country = \"DE\"\n  expect not d59\n}\n\
         persona q {\n  email = \"q@y.example\"\n  country = \"FR\"\n  expect d59\n}\n",
    );
    let t = TempDir::new("attack-diamond");
    t.write("a.camp", &s);
    let out = check(&t, &["--format", "json"], BOUND);
    assert_eq!(codes(&out.stdout), Vec::<String>::new(), "{}", out.stdout);
}

#[test]
fn a_flood_of_unknown_names_gives_a_bounded_human_report() {
    let mut s = String::from(HEAD);
    for i in 0..5000 {
        s.push_str(&format!("segment s{i} = unknown_{i} and other{i}\n"));
    }
    let t = TempDir::new("attack-unknown");
    t.write("a.camp", &s);
    let json = check(&t, &["--format", "json"], BOUND);
    assert_eq!(codes(&json.stdout).len(), 10_000);
    let human = check(&t, &[], BOUND);
    let report = format!("{}{}", human.stdout, human.stderr);
    assert!(
        report.contains("… and 9950 more in "),
        "{}",
        &report[report.len().saturating_sub(500)..]
    );
    assert!(report.contains("use --format json for all"));
    assert!(report.contains("10000 errors"));
    assert!(
        report.len() * 10 < json.stdout.len(),
        "human {} bytes",
        report.len()
    );
}

#[test]
fn a_megabyte_line_is_clipped_around_each_label() {
    let mut s = String::from(HEAD);
    s.push_str("segment s = ");
    let names: Vec<String> = (0..100_000).map(|i| format!("zz{i}")).collect();
    s.push_str(&names.join(" or "));
    s.push('\n');
    let t = TempDir::new("attack-longline");
    t.write("a.camp", &s);
    let human = check(&t, &[], BOUND);
    let report = format!("{}{}", human.stdout, human.stderr);
    let widest = report.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(widest < 400, "a line of {widest} characters in the report");
    // A label far along the line is shown with the text around it.
    assert!(
        report.contains("… zz40 or zz41") || report.contains("zz49 or"),
        "{}",
        &report[..3000.min(report.len())]
    );
    assert!(report.contains("100000 errors"));
}

#[test]
fn lone_cr_line_ends_give_the_right_line_numbers() {
    // A comment first: it used to run to the end of a CR-only file.
    let text = "// note\rcontact { email: email }\r\rsegment s = nope\r";
    let t = TempDir::new("attack-cr");
    t.write("a.camp", text);
    let out = check(&t, &["--format", "json"], BOUND);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "E0208", "{}", out.stdout);
    assert_eq!(d["line"], 4);
    assert_eq!(d["column"], 13);
    let human = check(&t, &[], BOUND);
    assert!(human.stderr.contains("a.camp:4:13]"), "{}", human.stderr);
}

/// A scenario with a hundred thousand `once at … local` triggers on distinct
/// dates and one `every weekday` at the same time: the coincidence check
/// (W0660) is linear, not a comparison of every pair (5·10⁹ of them).
#[test]
fn a_hundred_thousand_triggers_check_in_linear_work() {
    let mut s = String::from(HEAD);
    s.push_str("scenario many {\n");
    let mut date = jiff::civil::date(2026, 1, 1);
    for _ in 0..100_000 {
        s.push_str(&format!("  trigger once at {date} 09:00 local\n"));
        date = date.tomorrow().unwrap();
    }
    s.push_str("  trigger every weekday 09:00\n  reentry always\n  send hi\n}\n");
    let t = TempDir::new("attack-triggers");
    t.write("a.camp", &s);
    let out = check(&t, &["--format", "json"], BOUND);
    assert_eq!(
        codes(&out.stdout),
        ["W0660"],
        "{}",
        &out.stdout[..out.stdout.len().min(2000)]
    );
}
