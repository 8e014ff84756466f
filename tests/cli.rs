//! End-to-end tests of the `relance` binary: real folders in temporary
//! directories, the real executable, its exit codes (§11: 0 clean, 1 errors,
//! 2 usage or I/O failure) and its three output formats.
//!
//! Nothing here depends on timing; every project is built from scratch so the
//! tests do not depend on each other or on the sample campaigns changing
//! (except the one test that checks the sample itself).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_relance");

/// A small schema so that projects do not also get "no contact schema".
const SCHEMA: &str = "contact {\n  email:   email\n  country: text\n}\n";

// ------------------------------------------------------------------ helpers

/// A unique temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "relance-cli-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `rel` (with `/` separators) below the folder, creating parents.
    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dirs");
        }
        fs::write(&path, contents).expect("write file");
        path
    }

    fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.0.join(rel);
        fs::create_dir_all(&path).expect("create dir");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    raw_stdout: Vec<u8>,
    raw_stderr: Vec<u8>,
}

impl Run {
    /// stdout and stderr together, for assertions that do not care where
    /// the text went.
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

fn run_in(cwd: Option<&Path>, args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE");
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run the relance binary");
    let run = Run {
        code: status.code().expect("relance was killed by a signal"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        raw_stdout: stdout,
        raw_stderr: stderr,
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "relance panicked on {args:?}:\n{}",
        run.stderr
    );
    assert!(
        matches!(run.code, 0..=2),
        "exit code {} is not one of 0, 1, 2 for {args:?}\n{}",
        run.code,
        run.all()
    );
    run
}

fn run(args: &[&str]) -> Run {
    run_in(None, args)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn campaigns() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns")
}

/// `relance check PATH --format json`, parsed.
fn check_json(path: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["check", s(path), "--format", "json"];
    args.extend_from_slice(extra);
    let r = run(&args);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("--format json is not JSON ({e}):\n{}", r.stdout));
    (r.code, v)
}

fn diags(v: &Value) -> &Vec<Value> {
    v["diagnostics"]
        .as_array()
        .expect("`diagnostics` is an array")
}

fn codes(v: &Value) -> Vec<String> {
    diags(v)
        .iter()
        .map(|d| d["code"].as_str().expect("code is a string").to_string())
        .collect()
}

fn has_code(v: &Value, code: &str) -> bool {
    codes(v).iter().any(|c| c == code)
}

/// The diagnostic with `code`, or a panic showing what was reported.
fn find<'a>(v: &'a Value, code: &str) -> &'a Value {
    diags(v)
        .iter()
        .find(|d| d["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {v:#}"))
}

// ------------------------------------------------------------ exit codes

#[test]
fn sample_campaigns_check_clean() {
    let r = run(&["check", s(&campaigns())]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("no problems"), "{}", r.all());

    let (code, v) = check_json(&campaigns(), &["--deny-warnings"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["errors"], 0);
    assert_eq!(v["warnings"], 0);
    assert!(diags(&v).is_empty());
}

#[test]
fn an_error_exits_1_and_shows_its_code() {
    let t = TempDir::new("error");
    t.write(
        "main.camp",
        format!("{SCHEMA}segment french = contry == \"FR\"\n"),
    );
    for format in ["human", "json", "github"] {
        let r = run(&["check", s(t.path()), "--format", format]);
        assert_eq!(r.code, 1, "{format}: {}", r.all());
        assert!(r.all().contains("E0201"), "{format}: {}", r.all());
        assert!(r.all().contains("contry"), "{format}: {}", r.all());
    }
    let r = run(&["check", s(t.path())]);
    assert!(r.all().contains("did you mean `country`?"), "{}", r.all());
    assert!(r.all().contains("1 error"), "{}", r.all());
}

/// A cadence that no scenario starts is only a warning (W0701).
fn warnings_only_project() -> TempDir {
    let t = TempDir::new("warn");
    t.write(
        "main.camp",
        format!("{SCHEMA}\ntemplate call_me : task {{ body = \"Call\" }}\n\ncadence unused {{\n  touch call_me\n}}\n"),
    );
    t
}

#[test]
fn warnings_alone_exit_0_but_1_with_deny_warnings() {
    let t = warnings_only_project();
    let r = run(&["check", s(t.path())]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("W0701"), "{}", r.all());
    assert!(r.all().contains("0 errors, 1 warning"), "{}", r.all());

    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 0);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["warnings"], 1);
    assert_eq!(find(&v, "W0701")["severity"], "warning");

    for format in ["human", "json", "github"] {
        let r = run(&["check", s(t.path()), "--format", format, "--deny-warnings"]);
        assert_eq!(r.code, 1, "{format} --deny-warnings: {}", r.all());
    }
    let r = run(&["check", s(t.path()), "--format", "github"]);
    assert!(r.stdout.starts_with("::warning file="), "{}", r.stdout);
}

#[test]
fn deny_warnings_on_a_clean_project_still_exits_0() {
    let t = TempDir::new("clean");
    t.write("main.camp", SCHEMA);
    let r = run(&["check", s(t.path()), "--deny-warnings"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("no problems"), "{}", r.all());
}

#[test]
fn missing_path_exits_2_with_a_clear_message() {
    let t = TempDir::new("missing");
    let missing = t.path().join("no-such-project");
    for format in ["human", "json", "github"] {
        let r = run(&["check", s(&missing), "--format", format]);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.stdout.is_empty(), "nothing on stdout: {}", r.stdout);
        assert!(
            r.stderr.contains("no-such-project"),
            "the message names the path: {}",
            r.stderr
        );
        assert!(
            r.stderr.to_lowercase().contains("no such file"),
            "the message says why: {}",
            r.stderr
        );
    }
}

#[test]
fn empty_folder_is_e0007() {
    let t = TempDir::new("empty");
    // Files that are not `.camp` do not count.
    t.write("README.md", "# nothing here\n");
    t.write("templates/a.html.hbs", "<p>hi</p>\n");
    let r = run(&["check", s(t.path())]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("E0007"), "{}", r.all());

    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&v), vec!["E0007"]);
    // A project-wide problem has no place.
    assert!(find(&v, "E0007")["file"].is_null());
    let r = run(&["check", s(t.path()), "--format", "github"]);
    assert!(r.stdout.starts_with("::error title=E0007"), "{}", r.stdout);
}

// ------------------------------------------------------------ bad input files

#[test]
fn invalid_utf8_is_e0002_without_panic() {
    let t = TempDir::new("utf8");
    t.write("schema.camp", SCHEMA);
    let mut bytes = b"segment french = country == \"".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0xc3]); // not UTF-8
    bytes.extend_from_slice(b"\"\n");
    t.write("bad.camp", bytes);
    for format in ["human", "json", "github"] {
        let r = run(&["check", s(t.path()), "--format", format]);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(r.all().contains("E0002"), "{format}: {}", r.all());
    }
    let (_, v) = check_json(t.path(), &[]);
    let d = find(&v, "E0002");
    assert_eq!(d["file"], "bad.camp");
    // The place is the first bad byte: line 1, after `segment french = country == "`.
    assert_eq!(d["line"], 1);
    assert_eq!(d["column"], 30);
}

#[test]
fn invalid_utf8_reports_only_e0002() {
    let t = TempDir::new("utf8-only");
    t.write("schema.camp", SCHEMA);
    t.write("bad.camp", b"segment a = \xff\xfe\n".as_slice());
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&v), vec!["E0002"], "{v:#}");
}

#[test]
fn refused_file_does_not_add_missing_schema() {
    let t = TempDir::new("cascade");
    t.write("a.camp", format!("{SCHEMA}segment a = \0\n"));
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&v), vec!["E0006"], "{v:#}");
}

#[test]
fn syntax_error_does_not_cascade_into_other_files() {
    let t = TempDir::new("cascade-syntax");
    t.write(
        "a.camp",
        format!("{SCHEMA}segment french = country == \"FR\"\nscenario s {{\n  wait\n}}\n"),
    );
    t.write("b.camp", "segment b = french\n");
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&v), vec!["E0001"], "{v:#}");
}

#[test]
fn nul_byte_is_e0006() {
    let t = TempDir::new("nul");
    t.write("schema.camp", SCHEMA);
    t.write(
        "bad.camp",
        b"segment a = country == \"FR\"\n\0\n".as_slice(),
    );
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    let d = find(&v, "E0006");
    assert_eq!(d["file"], "bad.camp");
    assert_eq!(d["line"], 2);
    assert_eq!(d["column"], 1);
}

#[test]
fn five_mib_file_is_e0003() {
    let t = TempDir::new("big");
    t.write("schema.camp", SCHEMA);
    let mut big = String::from("// a huge generated file\n");
    let line = "segment generated = country == \"FR\" // padding padding padding\n";
    while big.len() < 5 * 1024 * 1024 {
        big.push_str(line);
    }
    t.write("big.camp", big);
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(find(&v, "E0003")["file"], "big.camp");
    // The file is refused as a whole: none of its thousands of duplicate
    // segments is reported.
    assert!(!has_code(&v, "E0101"), "{v:#}");
}

#[test]
fn two_hundred_nested_parentheses_are_e0004() {
    let t = TempDir::new("deep");
    t.write("schema.camp", SCHEMA);
    t.write(
        "deep.camp",
        format!(
            "segment deep = {}country == \"FR\"{}\n",
            "(".repeat(200),
            ")".repeat(200)
        ),
    );
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    let d = find(&v, "E0004");
    assert_eq!(d["file"], "deep.camp");
    assert_eq!(d["line"], 1);

    // Deep nesting in braces and brackets is refused the same way.
    t.write(
        "deep.camp",
        format!(
            "segment deep = country in {}\"FR\"{}\n",
            "[".repeat(200),
            "]".repeat(200)
        ),
    );
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1);
    assert!(has_code(&v, "E0004"), "{v:#}");
}

/// A project of two files, so that `relance check` parses them on worker
/// threads as it does for any real project.
fn two_file_project(tag: &str, second: String) -> TempDir {
    let t = TempDir::new(tag);
    t.write("schema.camp", SCHEMA);
    t.write("deep.camp", second);
    t
}

/// Exit 0, or exit 1 with a "too deep / too complex" diagnostic; never a
/// crash (`run` fails the test when the process dies of a signal).
fn accepted_or_refused(t: &TempDir) {
    let (code, v) = check_json(t.path(), &[]);
    assert!(code == 0 || code == 1, "{v:#}");
    if code == 1 {
        assert!(has_code(&v, "E0004") || has_code(&v, "E0005"), "{v:#}");
    }
}

#[test]
fn moderate_nesting_is_accepted() {
    let t = two_file_project(
        "nest-ok",
        format!(
            "segment deep = {}country == \"FR\"{}\n",
            "(".repeat(30),
            ")".repeat(30)
        ),
    );
    let r = run(&["check", s(t.path())]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn nesting_just_below_the_limit_does_not_crash() {
    for depth in [56, 60, 63] {
        let t = two_file_project(
            "nest-limit",
            format!(
                "segment deep = {}country == \"FR\"{}\n",
                "(".repeat(depth),
                ")".repeat(depth)
            ),
        );
        let r = run(&["check", s(t.path())]);
        assert_eq!(r.code, 0, "depth {depth}: {}", r.all());
    }
}

#[test]
fn long_not_chains_do_not_crash() {
    for n in [500, 1_000, 3_000, 10_000, 30_000] {
        let t = two_file_project(
            "not-chain",
            format!("segment deep = {}true\n", "not ".repeat(n)),
        );
        accepted_or_refused(&t);
        // One file: parsed on the main thread.
        let one = TempDir::new("not-chain-one");
        one.write(
            "all.camp",
            format!("{SCHEMA}segment deep = {}true\n", "not ".repeat(n)),
        );
        accepted_or_refused(&one);
    }
}

// ------------------------------------------------------------ project layout

#[test]
fn build_target_and_hidden_folders_are_skipped() {
    let t = TempDir::new("skip");
    t.write("main.camp", SCHEMA);
    let broken = "this is {{ not ( a campaign \"\n";
    for dir in [
        "build",
        "target",
        ".hidden",
        "sub/build",
        "sub/.git",
        "sub/target",
    ] {
        t.write(&format!("{dir}/broken.camp"), broken);
    }
    // Files that are not `.camp` files are not read either.
    t.write("notes.txt", broken);
    t.write("sub/readme.camp.bak", broken);
    let r = run(&["check", s(t.path())]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("no problems"), "{}", r.all());

    // A folder merely *named* like a skipped one elsewhere in its name is read.
    t.write("builds/broken.camp", broken);
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    assert!(
        diags(&v).iter().all(|d| d["file"] == "builds/broken.camp"),
        "{v:#}"
    );
}

#[test]
fn nested_folders_are_read_and_share_one_namespace() {
    let t = TempDir::new("nested");
    t.write("a/b/c/schema.camp", SCHEMA);
    t.write("segments.camp", "segment french = country == \"FR\"\n");
    let r = run(&["check", s(t.path())]);
    assert_eq!(r.code, 0, "the schema deep down is found: {}", r.all());

    // A declaration repeated in a nested file points at both places.
    t.write("x/y/dup.camp", "segment french = country == \"BE\"\n");
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    let d = find(&v, "E0101");
    let files: BTreeSet<&str> = d["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        BTreeSet::from(["segments.camp", "x/y/dup.camp"]),
        "{d:#}"
    );
}

#[test]
fn a_single_file_is_a_project() {
    let t = TempDir::new("single");
    let good = t.write("good.camp", SCHEMA);
    // A sibling with errors is not part of a one-file project.
    t.write("broken.camp", "segment = = =\n");
    let r = run(&["check", s(&good)]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("no problems"), "{}", r.all());

    let bad = t.write(
        "bad.camp",
        format!("{SCHEMA}segment french = contry == \"FR\"\n"),
    );
    let (code, v) = check_json(&bad, &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&v), vec!["E0201"]);
    assert_eq!(find(&v, "E0201")["file"], "bad.camp");

    // A relative file name, run from its folder.
    let r = run_in(Some(t.path()), &["check", "bad.camp", "--format", "github"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.starts_with("::error file=bad.camp,line=5,col=18,"),
        "{}",
        r.stdout
    );
}

#[test]
fn default_path_is_the_current_folder() {
    let t = warnings_only_project();
    let r = run_in(Some(t.path()), &["check", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(codes(&v), vec!["W0701"]);
}

// ------------------------------------------------------------ formats

#[test]
fn json_has_exactly_the_keys_of_section_11() {
    let t = TempDir::new("json");
    t.write("schema.camp", SCHEMA);
    // Several diagnostics: an error with help, a duplicate with a secondary
    // label in another file, a warning.
    t.write(
        "sub/a.camp",
        "segment french = contry == \"FR\"\ntemplate call_me : task { body = \"Call\" }\ncadence unused {\n  touch call_me\n}\n",
    );
    t.write("z.camp", "list french\n");
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1);

    let top: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(top, BTreeSet::from(["diagnostics", "errors", "warnings"]));

    let keys = BTreeSet::from([
        "code",
        "severity",
        "message",
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "help",
        "labels",
    ]);
    let mut errors = 0;
    let mut warnings = 0;
    assert!(diags(&v).len() >= 3, "{v:#}");
    for d in diags(&v) {
        let got: BTreeSet<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(got, keys, "{d:#}");
        let code = d["code"].as_str().unwrap();
        match d["severity"].as_str().unwrap() {
            "error" => {
                assert!(code.starts_with('E'), "{d:#}");
                errors += 1;
            }
            "warning" => {
                assert!(code.starts_with('W'), "{d:#}");
                warnings += 1;
            }
            other => panic!("unknown severity {other}"),
        }
        assert!(
            d["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{d:#}"
        );
        assert!(d["help"].is_null() || d["help"].is_string(), "{d:#}");
        let file = d["file"]
            .as_str()
            .expect("every diagnostic here has a place");
        assert!(file.ends_with(".camp") && !file.starts_with('/'), "{d:#}");
        for k in ["line", "column", "end_line", "end_column"] {
            assert!(
                d[k].as_u64().is_some_and(|n| n >= 1),
                "{k} is 1-based: {d:#}"
            );
        }
        let start = (d["line"].as_u64().unwrap(), d["column"].as_u64().unwrap());
        let end = (
            d["end_line"].as_u64().unwrap(),
            d["end_column"].as_u64().unwrap(),
        );
        assert!(start <= end, "{d:#}");
        let labels = d["labels"].as_array().expect("labels is an array");
        assert!(!labels.is_empty(), "{d:#}");
        for l in labels {
            for k in ["file", "message"] {
                assert!(l[k].is_string(), "label {k}: {l:#}");
            }
            for k in ["line", "column", "end_line", "end_column"] {
                assert!(l[k].as_u64().is_some_and(|n| n >= 1), "label {k}: {l:#}");
            }
        }
    }
    assert_eq!(v["errors"], errors);
    assert_eq!(v["warnings"], warnings);

    let unknown = find(&v, "E0201");
    assert_eq!(unknown["file"], "sub/a.camp");
    assert_eq!(unknown["line"], 1);
    assert_eq!(unknown["column"], 18);
    assert_eq!(unknown["end_line"], 1);
    assert_eq!(unknown["end_column"], 24);
    assert_eq!(unknown["help"], "did you mean `country`?");
    assert!(has_code(&v, "E0101") && has_code(&v, "W0701"), "{v:#}");
}

#[test]
fn json_columns_count_characters() {
    let t = TempDir::new("columns");
    t.write(
        "schema.camp",
        "contact {\n  email:   email\n  country: text\n  city:    text?\n}\n",
    );
    // `é`, `€` and an emoji before the error on the same line: 2, 3 and 4
    // bytes but one character each.
    let line = "segment x = city == \"é€🚗\" and contry == \"FR\"";
    t.write("seg.camp", format!("// accents: é è ê\n{line}\n"));
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    let d = find(&v, "E0201");
    let byte = line.find("contry").unwrap();
    let chars = line[..byte].chars().count();
    assert_ne!(
        byte, chars,
        "the test line must contain multi-byte characters"
    );
    assert_eq!(d["file"], "seg.camp");
    assert_eq!(d["line"], 2);
    assert_eq!(d["column"], chars + 1);
    assert_eq!(d["end_line"], 2);
    assert_eq!(d["end_column"], chars + 1 + "contry".len());
    let label = &d["labels"][0];
    assert_eq!(label["column"], chars + 1);

    // The GitHub format uses the same columns.
    let r = run(&["check", s(t.path()), "--format", "github"]);
    let gh = r.stdout.lines().find(|l| l.contains("E0201")).unwrap();
    assert!(gh.starts_with("::error file="), "{gh}");
    assert!(gh.contains(&format!(",line=2,col={},", chars + 1)), "{gh}");
}

#[test]
fn crlf_line_endings_give_the_same_places() {
    let t = TempDir::new("crlf");
    let unix = format!("{SCHEMA}segment french = contry == \"FR\"\n");
    t.write("a.camp", unix.replace('\n', "\r\n"));
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(codes(&v), vec!["E0201"]);
    let d = find(&v, "E0201");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(5), Some(18))
    );
    assert_eq!(d["end_column"], 24);
}

#[test]
fn json_file_is_relative_to_the_project_folder() {
    let t = TempDir::new("relative");
    let project = t.mkdir("my project/campaigns");
    t.write("my project/campaigns/schema.camp", SCHEMA);
    t.write(
        "my project/campaigns/deep/er/seg.camp",
        "segment french = contry == \"FR\"\n",
    );
    // Absolute path, relative path from the parent, and `.` from inside.
    let runs = [
        run(&["check", s(&project), "--format", "json"]),
        run_in(
            Some(t.path()),
            &["check", "my project/campaigns", "--format", "json"],
        ),
        run_in(Some(&project), &["check", ".", "--format", "json"]),
        run_in(Some(&project), &["check", "--format", "json"]),
    ];
    for r in &runs {
        assert_eq!(r.code, 1, "{}", r.all());
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(find(&v, "E0201")["file"], "deep/er/seg.camp", "{v:#}");
        assert_eq!(find(&v, "E0201")["labels"][0]["file"], "deep/er/seg.camp");
    }
    assert_eq!(runs[0].raw_stdout, runs[1].raw_stdout);
    assert_eq!(runs[1].raw_stdout, runs[2].raw_stdout);
}

#[test]
fn github_format_prints_workflow_commands() {
    let t = TempDir::new("github");
    t.write("schema.camp", SCHEMA);
    t.write(
        "seg.camp",
        "segment french = contry == \"FR\"\nsegment belgian = pays == \"BE\"\n",
    );
    let r = run_in(Some(t.path()), &["check", ".", "--format", "github"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one line per diagnostic:\n{}", r.stdout);
    assert!(
        lines[0].starts_with("::error file=seg.camp,line=1,col=18,"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("::error file=seg.camp,line=2,col=19,"),
        "{}",
        lines[1]
    );
    for l in &lines {
        assert!(l.contains("title=E0201"), "{l}");
    }
    assert!(
        lines[0].contains("contry") && lines[1].contains("pays"),
        "{}",
        r.stdout
    );

    // From elsewhere, `file=` is the path the user typed, so that GitHub
    // can find the file from the repository root.
    let r = run_in(
        Some(t.path().parent().unwrap()),
        &[
            "check",
            t.path().file_name().unwrap().to_str().unwrap(),
            "--format",
            "github",
        ],
    );
    let name = t.path().file_name().unwrap().to_str().unwrap();
    assert!(
        r.stdout
            .starts_with(&format!("::error file={name}/seg.camp,line=1,col=18,")),
        "{}",
        r.stdout
    );
}

#[test]
fn human_format_shows_code_place_and_summary() {
    let t = TempDir::new("human");
    t.write("schema.camp", SCHEMA);
    t.write("seg.camp", "segment french = contry == \"FR\"\n");
    let r = run_in(Some(t.path()), &["check", "--color", "never"]);
    assert_eq!(r.code, 1);
    let all = r.all();
    assert!(all.contains("E0201"), "{all}");
    assert!(all.contains("seg.camp:1:18"), "{all}");
    assert!(all.contains("1 error, 0 warnings"), "{all}");
    assert!(
        !all.contains('\u{1b}'),
        "no colour with --color never: {all:?}"
    );

    let r = run_in(Some(t.path()), &["check", "--color", "always"]);
    assert!(r.all().contains('\u{1b}'), "colour with --color always");
}

#[test]
fn output_is_deterministic_and_sorted() {
    let t = TempDir::new("determinism");
    // Written in an order unrelated to their names.
    t.write(
        "zeta.camp",
        "segment z1 = nope_z == 1\nsegment z2 = nope_z2 == 1\n",
    );
    t.write("schema.camp", SCHEMA);
    t.write("m/inner.camp", "segment m1 = nope_m == 1\n");
    t.write(
        "alpha.camp",
        "segment a1 = nope_a == 1\n\n\nsegment a2 = nope_a2 == 2\n",
    );
    t.write("beta.camp", "segment b1 = nope_b == 1\n");
    t.write("m/a.camp", "segment ma = nope_ma == 1\n");
    for format in ["human", "json", "github"] {
        let a = run(&["check", s(t.path()), "--format", format]);
        let b = run(&["check", s(t.path()), "--format", format]);
        assert_eq!(a.code, 1);
        assert_eq!(a.raw_stdout, b.raw_stdout, "{format}: stdout differs");
        assert_eq!(a.raw_stderr, b.raw_stderr, "{format}: stderr differs");
    }
    let (_, v) = check_json(t.path(), &[]);
    let places: Vec<(String, u64, u64)> = diags(&v)
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(places, sorted, "diagnostics are sorted by file and place");
    let files: Vec<&str> = places.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        files,
        [
            "alpha.camp",
            "alpha.camp",
            "beta.camp",
            "m/a.camp",
            "m/inner.camp",
            "zeta.camp",
            "zeta.camp"
        ]
    );
    assert_eq!(places[1].1, 4);
}

#[test]
fn a_duplicate_declaration_is_still_checked() {
    let t = TempDir::new("dup-body");
    t.write(
        "a.camp",
        format!("{SCHEMA}segment french = country == \"FR\"\nsegment french = contry == \"FR\"\n"),
    );
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1);
    assert!(has_code(&v, "E0101"), "{v:#}");
    assert!(
        has_code(&v, "E0201"),
        "the unknown field in the duplicate is reported: {v:#}"
    );
}

#[test]
fn all_errors_are_reported_in_one_run() {
    let t = TempDir::new("all");
    t.write("schema.camp", SCHEMA);
    t.write("a.camp", "segment a = nope_a == 1\n");
    t.write("b.camp", "scenario s {\n  wait\n}\n"); // syntax error
    t.write("c.camp", "segment c = nope_c == 1\n");
    let (code, v) = check_json(t.path(), &[]);
    assert_eq!(code, 1);
    let files: BTreeSet<&str> = diags(&v)
        .iter()
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        BTreeSet::from(["a.camp", "b.camp", "c.camp"]),
        "{v:#}"
    );
    assert!(has_code(&v, "E0001"), "{v:#}");
}

// ------------------------------------------------------------ explain and usage

fn listed_codes() -> Vec<String> {
    let r = run(&["explain", "--list"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let codes: Vec<String> = r
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert!(codes.len() >= 10, "{}", r.stdout);
    codes
}

#[test]
fn explain_every_listed_code() {
    let codes = listed_codes();
    let unique: BTreeSet<&String> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len(), "codes are listed once");
    for code in &codes {
        assert!(
            code.len() == 5
                && (code.starts_with('E') || code.starts_with('W') || code.starts_with('R'))
                && code[1..].chars().all(|c| c.is_ascii_digit()),
            "malformed code {code:?}"
        );
        let r = run(&["explain", code]);
        assert_eq!(r.code, 0, "explain {code}: {}", r.all());
        assert!(
            r.stdout.starts_with(&format!("# {code}")),
            "explain {code} starts with `# {code}`:\n{}",
            r.stdout
        );
    }
    // The codes the tests above rely on exist.
    for code in [
        "E0001", "E0002", "E0003", "E0004", "E0006", "E0007", "E0201", "W0701",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} is listed");
    }
}

#[test]
fn explain_accepts_lowercase() {
    let r = run(&["explain", "e0001"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.starts_with("# E0001"), "{}", r.stdout);
}

#[test]
fn explain_unknown_code_exits_2() {
    for code in ["E9999", "W9999", "nonsense", ""] {
        let r = run(&["explain", code]);
        assert_eq!(r.code, 2, "explain {code:?}: {}", r.all());
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert!(!r.stderr.is_empty());
    }
    let r = run(&["explain", "E9999"]);
    assert!(r.stderr.contains("E9999"), "{}", r.stderr);
}

#[test]
fn unknown_flags_and_values_exit_2() {
    let t = TempDir::new("flags");
    t.write("main.camp", SCHEMA);
    let p = s(t.path());
    for args in [
        vec!["check", p, "--frobnicate"],
        vec!["check", p, "--format", "xml"],
        vec!["check", p, "--color", "sometimes"],
        vec!["check", p, p],
        vec!["--frobnicate"],
        vec!["frobnicate"],
        vec!["explain", "--frobnicate"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.all());
        assert!(!r.stderr.is_empty(), "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}

#[test]
fn no_arguments_prints_usage_and_exits_2() {
    let r = run(&[]);
    assert_eq!(r.code, 2, "{}", r.all());
    let text = r.all();
    assert!(text.contains("Usage"), "{text}");
    assert!(text.contains("check") && text.contains("explain"), "{text}");
}

#[test]
fn help_and_version_exit_0() {
    for args in [&["--help"][..], &["--version"], &["check", "--help"]] {
        let r = run(args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.all());
        assert!(!r.stdout.is_empty(), "{args:?}");
    }
}

// ------------------------------------------------- the manifest, relance.toml

/// A small project that builds and sends: `hi` to whoever joins `leads`.
const SENDING: &str = r#"workspace {
  name     = "Shop"
  timezone = "Europe/Paris"
  from     = "Shop <shop@example.com>"
  address  = "1 rue de la Paix, Paris"
}
contact { email: email }
list leads
template hi : email { subject = "Hi", html = "<p>Hi</p><p>{{workspace.address}}</p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a>" }
scenario welcome {
  trigger joined leads
  send hi
}
"#;

fn sending_project(manifest: &str) -> TempDir {
    let dir = TempDir::new("manifest");
    dir.write("relance.toml", manifest);
    dir.write("flows/main.camp", SENDING);
    dir.write(
        "data/contacts.jsonl",
        "{\"id\": \"a\", \"email\": \"a@example.com\"}\n",
    );
    dir.write(
        "data/events.jsonl",
        "{\"contact\": \"a\", \"event\": \"joined\", \"list\": \"leads\", \"at\": \"2026-11-02T10:00:00Z\"}\n",
    );
    dir
}

const RUN_TABLE: &str = "[run]\ncontacts = \"data/contacts.jsonl\"\nevents = \"data/events.jsonl\"\nfrom = \"2026-11-01T00:00:00Z\"\nuntil = \"2026-12-01T00:00:00Z\"\n";

#[test]
fn commands_walk_up_to_the_manifest() {
    let dir = sending_project("build = \"out\"\n");
    dir.write("flows/broken.camp", "segment x = \n");
    // From a subfolder, the whole project is checked, paths from its root.
    let r = run_in(Some(&dir.path().join("flows")), &["check"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("flows/broken.camp"), "{}", r.stderr);
    // A file inside a project: the project.
    let r = run(&["check", s(&dir.path().join("flows/main.camp"))]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("broken.camp"), "{}", r.stderr);
}

#[test]
fn include_and_exclude_pick_the_files() {
    let dir = sending_project("exclude = [\"drafts/**\", \"**/*_old.camp\"]\n");
    dir.write("drafts/wip.camp", "segment x = \n");
    dir.write("flows/welcome_old.camp", "segment y = \n");
    let r = run_in(Some(dir.path()), &["check"]);
    assert_eq!(r.code, 0, "{}", r.all());
    fs::write(
        dir.path().join("relance.toml"),
        "include = [\"drafts/*.camp\"]\n",
    )
    .unwrap();
    let r = run_in(Some(dir.path()), &["check"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("drafts/wip.camp"), "{}", r.stderr);
    assert!(!r.stderr.contains("welcome_old"), "{}", r.stderr);
}

#[test]
fn build_and_run_agree_on_the_plan() {
    let dir = sending_project(&format!(
        "build = \"out\"\nnow = \"2026-11-01T00:00:00Z\"\n{RUN_TABLE}"
    ));
    // No plan yet: the error names the exact path and the command.
    let r = run_in(Some(&dir.path().join("data")), &["run"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("../out/plan.json"), "{}", r.stderr);
    assert!(
        r.stderr.contains("build it first with `relance build ..`"),
        "{}",
        r.stderr
    );
    let b = run_in(Some(dir.path()), &["build"]);
    assert_eq!(b.code, 0, "{}", b.all());
    assert!(dir.path().join("out/plan.json").is_file());
    // `relance run` anywhere in the project, no flags.
    let r = run_in(Some(&dir.path().join("flows")), &["run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("\"template\":\"hi\""), "{}", r.all());
    // Flags override the manifest: a window before the join sends nothing.
    let r = run_in(
        Some(dir.path()),
        &["run", "--until", "2026-11-02T00:00:00Z"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.stdout, "", "{}", r.all());
    // Without a manifest, PROJECT/build/plan.json, as `relance build PROJECT` writes it.
    let bare = TempDir::new("bare");
    bare.write("main.camp", SENDING);
    let r = run(&[
        "run",
        s(bare.path()),
        "--contacts",
        "x.jsonl",
        "--from",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-11-02T00:00:00Z",
    ]);
    assert_eq!(r.code, 2);
    let want = bare.path().join("build").join("plan.json");
    assert!(r.stderr.contains(s(&want)), "{}", r.stderr);
    let b = run(&["build", s(bare.path()), "--now", "2026-11-01T00:00:00Z"]);
    assert_eq!(b.code, 0, "{}", b.all());
    assert!(want.is_file());
}

#[test]
fn run_says_which_setting_is_missing() {
    let dir = sending_project("");
    let r = run_in(Some(dir.path()), &["run", "--plan", "nowhere.json"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("`--contacts` is missing"), "{}", r.stderr);
    assert!(r.stderr.contains("under `[run]`"), "{}", r.stderr);
}

#[test]
fn a_bad_manifest_stops_run_with_its_place() {
    let dir = sending_project("[run]\nfrom = \"yesterday\"\n");
    let r = run_in(Some(dir.path()), &["run"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("E0902"), "{}", r.stderr);
    assert!(r.stderr.contains("relance.toml:2:8"), "{}", r.stderr);
}

#[test]
fn a_folder_of_projects_without_manifest_names_them() {
    let dir = TempDir::new("umbrella");
    dir.write("a/relance.toml", "");
    dir.write("a/main.camp", SENDING);
    dir.write("tests/broken.camp", "segment x = \n");
    let r = run(&["check", s(dir.path())]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("holds projects"), "{}", r.stderr);
    assert!(r.stderr.contains("/a"), "{}", r.stderr);
    // The repository's own root: campaigns/ and the examples.
    let r = run_in(Some(Path::new(env!("CARGO_MANIFEST_DIR"))), &["check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("relance check campaigns"), "{}", r.stderr);
}

/// The manifest's `now` is the reference time of check (and build, render,
/// watch) when `--now` is not given; `--now` overrides it.
#[test]
fn the_manifest_now_is_the_default_reference_time() {
    let dir = TempDir::new("now");
    dir.write("relance.toml", "now = \"2026-11-01T00:00:00Z\"\n");
    dir.write(
        "main.camp",
        format!(
            "{SENDING}segment new_signups = signup_at >= 14d ago\npersona p {{\n  email = \"p@example.com\"\n  signup_at = 2026-10-25\n  expect new_signups\n}}\n"
        )
        .replace("contact { email: email }", "contact { email: email, signup_at: timestamp }"),
    );
    let r = run_in(Some(dir.path()), &["check"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = run_in(
        Some(dir.path()),
        &["check", "--now", "2027-01-01T00:00:00Z"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("E0403"), "{}", r.stderr);
    // From a subfolder too.
    let sub = dir.mkdir("notes");
    let r = run_in(Some(&sub), &["check"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn partials_in_sub_folders_are_found() {
    let t = TempDir::new("subpartial");
    t.write(
        "main.camp",
        format!(
            "{SCHEMA}persona p {{ email = \"p@example.com\", country = \"FR\" }}\ntemplate t : task {{ body = \"{{{{> blocks/cta}}}}\" }}\n"
        ),
    );
    t.write("templates/partials/blocks/cta.hbs", "Call {{email}}");
    let r = run(&["check", s(t.path())]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = run(&["render", "t", "--persona", "p", s(t.path())]);
    assert!(r.all().contains("Call p@example.com"), "{}", r.all());
}

#[test]
fn render_format_context_prints_the_render_context() {
    let t = TempDir::new("context");
    t.write(
        "main.camp",
        format!(
            "{SCHEMA}persona p {{ email = \"p@example.com\", country = \"FR\" }}\ntemplate t : task {{ body = \"{{{{links.z}}}}\", link z = \"https://z.example/?e={{{{email}}}}\", link a = \"https://a.example\" }}\n"
        ),
    );
    let r = run(&[
        "render",
        "t",
        "--persona",
        "p",
        s(t.path()),
        "--format",
        "context",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: Value = serde_json::from_str(r.stdout.trim()).expect("JSON");
    assert_eq!(v["email"], "p@example.com");
    assert_eq!(v["links"]["z"], "https://z.example/?e=p%40example.com");
    // Declaration order.
    assert!(
        r.stdout.find("\"z\"") < r.stdout.find("\"a\""),
        "{}",
        r.stdout
    );
}
