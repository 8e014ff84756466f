//! `relance check --format sarif` (validated against the official SARIF
//! 2.1.0 schema, vendored in `tests/sarif/`) and the extras of `--format
//! github` (the job summary, the note on annotations GitHub does not show),
//! with the real binary on real folders.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_relance");

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("relance-ci-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, rel: &str, contents: &str) {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dirs");
        }
        fs::write(path, contents).expect("write file");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn relance(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .args(args)
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run relance")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &fs::read_to_string(root().join("tests/sarif/sarif-schema-2.1.0.json")).expect("schema"),
    )
    .expect("schema is JSON");
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

fn assert_valid_sarif(v: &jsonschema::Validator, text: &str, what: &str) -> Value {
    let log: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON: {e}\n{text}"));
    let errors: Vec<String> = v
        .iter_errors(&log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: invalid SARIF:\n{}\n{text}",
        errors.join("\n")
    );
    log
}

/// A project with errors in two files, secondary labels, a warning and
/// non-ASCII columns.
fn broken_project() -> TempDir {
    let t = TempDir::new("broken");
    t.write(
        "proj/main.camp",
        "contact {\n  email:   email\n  country: text\n  age:     number?\n}\n\nsegment fr = contry == \"FR\"\nsegment old = age > \"été\"\n",
    );
    t.write(
        "proj/sub dir/more.camp",
        "workspace { name = \"Acme\", from = \"A, B <a@b.example>\" }\n",
    );
    t
}

#[test]
fn sarif_validates_against_the_official_schema() {
    let v = validator();
    let t = broken_project();
    let o = relance(&t.0, &["check", "--format", "sarif", "proj"], &[]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = stdout(&o);
    let log = assert_valid_sarif(&v, &text, "broken project");
    let run = &log["runs"][0];
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(run["tool"]["driver"]["name"], "relance");
    assert_eq!(run["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let ids: Vec<&str> = rules.iter().filter_map(|r| r["id"].as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "one rule per code, in code order");
    let results = run["results"].as_array().expect("results");
    assert!(results.len() >= 3, "{text}");
    for r in results {
        let id = r["ruleId"].as_str().expect("ruleId");
        let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], id);
        let rule = &rules[index];
        assert!(
            rule["shortDescription"]["text"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert!(
            rule["fullDescription"]["text"]
                .as_str()
                .is_some_and(|s| s.len() > 40)
        );
        assert_eq!(rule["defaultConfiguration"]["level"], r["level"]);
    }
    // E0533 on the workspace `from`, in a path with a space.
    let from = results
        .iter()
        .find(|r| r["ruleId"] == "E0533")
        .expect("E0533 result");
    let loc = &from["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "proj/sub%20dir/more.camp");
    assert_eq!(loc["region"]["startLine"], 1);
    assert_eq!(loc["region"]["startColumn"], 35);
    // A secondary label becomes a related location.
    let mismatch = results
        .iter()
        .find(|r| r["ruleId"] == "E0301")
        .expect("E0301 result");
    assert_eq!(mismatch["level"], "error");
    let related = mismatch["relatedLocations"]
        .as_array()
        .expect("relatedLocations");
    assert_eq!(
        related[0]["physicalLocation"]["artifactLocation"]["uri"],
        "proj/main.camp"
    );
    assert!(related[0]["message"]["text"].as_str().is_some());
    // Byte-identical on a second run.
    let again = relance(&t.0, &["check", "--format", "sarif", "proj"], &[]);
    assert_eq!(stdout(&again), text);
}

#[test]
fn sarif_of_clean_and_shipped_projects_validates() {
    let v = validator();
    for project in [
        "campaigns",
        "examples/b2b_cadence",
        "tests/ui/e0531_unsubscribe_link_not_visible.camp",
    ] {
        let o = relance(&root(), &["check", "--format", "sarif", project], &[]);
        let log = assert_valid_sarif(&v, &stdout(&o), project);
        let results = log["runs"][0]["results"].as_array().expect("results").len();
        assert_eq!(
            o.status.code(),
            Some(if results == 0 { 0 } else { 1 }),
            "{project}"
        );
    }
}

/// A project with 24 errors and 12 warnings.
fn many_problems() -> TempDir {
    let t = TempDir::new("many");
    let mut s = String::from("contact {\n  email: email\n  age:   number?\n}\n");
    for i in 0..24 {
        s.push_str(&format!("segment s{i} = unknown_{i}\n"));
    }
    s.push_str("workspace { name = \"A\", address = \"1 rue X\" }\n");
    for i in 0..12 {
        s.push_str(&format!(
            "template t{i} : email {{ subject = \"Age {{{{age}}}}\", html = \"<p>{{{{workspace.address}}}} <a href='{{{{unsubscribe_url}}}}'>U</a></p>\" }}\n"
        ));
    }
    t.write("proj/main.camp", &s);
    t
}

#[test]
fn github_annotations_say_how_many_more_and_the_summary_lists_all() {
    let t = many_problems();
    let summary = t.0.join("summary.md");
    fs::write(&summary, "earlier step\n").expect("write summary");
    let o = relance(
        &t.0,
        &["check", "--format", "github", "proj"],
        &[("GITHUB_STEP_SUMMARY", &summary)],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(errors.len(), 24, "{out}");
    assert!(
        errors[9].ends_with("%0A… and 14 more errors: see the job summary"),
        "{}",
        errors[9]
    );
    assert_eq!(out.matches("more errors").count(), 1, "{out}");
    let table = fs::read_to_string(&summary).expect("summary");
    assert!(
        table.starts_with("earlier step\n### relance check: 24 errors, "),
        "{table}"
    );
    let rows = table.lines().filter(|l| l.starts_with("| error |")).count();
    assert_eq!(rows, 24, "{table}");
    assert!(
        table.contains("| error | `E0208` | `proj/main.camp:5:14` |"),
        "{table}"
    );
    // Without GITHUB_STEP_SUMMARY: no file, and the note says what to do.
    let o = relance(&t.0, &["check", "--format", "github", "proj"], &[]);
    let out = stdout(&o);
    assert!(
        out.contains("… and 14 more errors: run `relance check` to see them all"),
        "{out}"
    );
}

#[test]
fn github_warnings_are_counted_apart() {
    // Warnings only: 12 optional fields without a default (W0510).
    let t = TempDir::new("warn");
    let mut s = String::from(
        "workspace { name = \"A\", address = \"1 rue X\" }\ncontact {\n  email: email\n  age:   number?\n}\n",
    );
    for i in 0..12 {
        s.push_str(&format!(
            "template t{i} : email {{ subject = \"Age {{{{age}}}}\", html = \"<p>{{{{workspace.address}}}} <a href='{{{{unsubscribe_url}}}}'>U</a></p>\" }}\n"
        ));
    }
    t.write("proj/main.camp", &s);
    let summary = t.0.join("summary.md");
    let o = relance(
        &t.0,
        &["check", "--format", "github", "proj"],
        &[("GITHUB_STEP_SUMMARY", &summary)],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    let warnings: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("::warning "))
        .collect();
    assert_eq!(warnings.len(), 12, "{out}");
    assert!(
        warnings[9].ends_with("%0A… and 2 more warnings: see the job summary"),
        "{}",
        warnings[9]
    );
    let table = fs::read_to_string(&summary).expect("summary written");
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("| warning |"))
            .count(),
        12
    );
}
