//! `relance fmt`: the real binary on real folders (exit codes, `--check`,
//! `--diff`, standard input, atomic writes, files left alone), the plans of
//! every shipped project and of a synthetic one unchanged by formatting,
//! and property tests: parse → format → parse gives the same AST up to
//! spans, with the same comments, and formatting is idempotent.

#[path = "../benches/synth/mod.rs"]
mod synth;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use relance::diagnostics::{FileId, Problems};
use relance::fmt::{FmtError, comments, format_text, strip_spans};

const BIN: &str = env!("CARGO_BIN_EXE_relance");
const NOW: &str = "2026-03-01T09:00:00Z";

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("relance-fmt-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent dirs");
        }
        fs::write(&path, contents).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn relance(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run relance")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("type").is_dir() {
            if entry.file_name() != "build" {
                copy_dir(&src, &dst);
            }
        } else {
            fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// The `.camp` files below `dir`, sorted.
fn camp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "camp") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The shipped projects: `campaigns/` and every folder of `examples/`.
fn projects() -> Vec<PathBuf> {
    let mut out = vec![repo().join("campaigns")];
    let mut examples: Vec<PathBuf> = fs::read_dir(repo().join("examples"))
        .expect("examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    out.extend(examples);
    out
}

/// Whitespace a formatter must undo: indentation by tabs or none, spaces
/// at line ends, doubled blank lines, CRLF line ends.
fn unformat(text: &str, variant: usize) -> String {
    let mut out = String::new();
    let mut in_comment = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        // Inside a block comment, lines are the comment's own text.
        let was_in = in_comment;
        if let Some(open) = body.rfind("/*") {
            in_comment = !body[open..].contains("*/");
        } else if body.contains("*/") {
            in_comment = false;
        }
        if was_in {
            out.push_str(line);
            continue;
        }
        let trimmed = body.trim_start();
        let indent = body.len() - trimmed.len();
        match variant % 3 {
            0 => out.push_str(&"\t".repeat(indent / 2)),
            1 => {}
            _ => out.push_str(&" ".repeat(indent * 2)),
        }
        out.push_str(trimmed);
        out.push_str(if variant.is_multiple_of(2) { "   " } else { "" });
        if line.ends_with('\n') {
            out.push_str(if variant % 3 == 1 { "\r\n" } else { "\n" });
        }
        if trimmed.is_empty() {
            out.push('\n');
        }
    }
    format!("\n\n{out}\n\n")
}

fn plan(dir: &Path, out: &Path) -> Vec<u8> {
    let o = relance(
        &[
            "build",
            &dir.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
            "--now",
            NOW,
        ],
        dir,
    );
    assert!(
        o.status.success(),
        "build {}: {}",
        dir.display(),
        text(&o.stderr)
    );
    fs::read(out.join("plan.json")).expect("plan.json")
}

// ------------------------------------------------------------ the repository

/// `.ci/run` runs the test suite: this is its check that the shipped
/// campaign files are formatted.
#[test]
fn shipped_campaigns_and_examples_are_formatted() {
    let o = relance(&["fmt", "--check", "campaigns", "examples"], &repo());
    assert_eq!(text(&o.stdout), "", "files that `relance fmt` would change");
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// Every shipped project: its files with their layout spoilt format back
/// to themselves, and the plan built from them is byte-identical.
#[test]
fn plans_are_identical_after_formatting() {
    for (n, project) in projects().into_iter().enumerate() {
        let tmp = TempDir::new("plan");
        let copy = tmp.path().join("p");
        copy_dir(&project, &copy);
        let before = plan(&project, &tmp.path().join("before"));
        let originals: Vec<(PathBuf, String)> = camp_files(&copy)
            .into_iter()
            .map(|p| {
                let t = fs::read_to_string(&p).expect("read");
                fs::write(&p, unformat(&t, n)).expect("write");
                (p, t)
            })
            .collect();
        let o = relance(&["fmt", "."], &copy);
        assert!(
            o.status.success(),
            "{}: {}",
            project.display(),
            text(&o.stderr)
        );
        for (p, original) in &originals {
            assert_eq!(
                &fs::read_to_string(p).expect("read"),
                original,
                "{}",
                p.display()
            );
        }
        let after = plan(&copy, &tmp.path().join("after"));
        assert!(before == after, "{}: the plan changed", project.display());
    }
}

/// A generated project (the benchmark's generator, 40 files): formatting
/// keeps the plan byte-identical and a second run changes nothing.
#[test]
fn synthetic_project_plan_is_identical() {
    let tmp = TempDir::new("synth");
    let dir = tmp.path().join("p");
    synth::write_project(&dir, &synth::generate(synth::DEFAULT_SEED, 40)).expect("write synth");
    let before = plan(&dir, &tmp.path().join("before"));
    let o = relance(&["fmt"], &dir);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let after = plan(&dir, &tmp.path().join("after"));
    assert!(before == after, "the plan changed");
    let o = relance(&["fmt", "--check"], &dir);
    assert!(o.status.success(), "not idempotent: {}", text(&o.stdout));
}

// ------------------------------------------------------------ the command

#[test]
fn check_lists_files_and_writes_nothing() {
    let tmp = TempDir::new("check");
    let messy = "segment  a =x\n";
    tmp.write("a.camp", messy);
    tmp.write("sub/b.camp", "segment b = x\n");
    let o = relance(&["fmt", "--check"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "a.camp\n");
    assert_eq!(
        fs::read_to_string(tmp.path().join("a.camp")).unwrap(),
        messy
    );

    let o = relance(&["fmt", "--diff", "a.camp"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stdout),
        "--- a/a.camp\n+++ b/a.camp\n@@ -1,1 +1,1 @@\n-segment  a =x\n+segment a = x\n"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("a.camp")).unwrap(),
        messy
    );

    let o = relance(&["fmt"], tmp.path());
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        fs::read_to_string(tmp.path().join("a.camp")).unwrap(),
        "segment a = x\n"
    );
    let o = relance(&["fmt", "--check"], tmp.path());
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), "");
}

#[test]
fn syntax_error_leaves_the_file_untouched() {
    let tmp = TempDir::new("syntax");
    let broken = "scenario s {\n    wait\n}\n";
    tmp.write("broken.camp", broken);
    tmp.write("fine.camp", "segment  b = x\n");
    let o = relance(&["fmt"], tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        fs::read_to_string(tmp.path().join("broken.camp")).unwrap(),
        broken
    );
    // The other file is still formatted.
    assert_eq!(
        fs::read_to_string(tmp.path().join("fine.camp")).unwrap(),
        "segment b = x\n"
    );
    // The diagnostics are those of `relance check`, as it prints them.
    let err = text(&o.stderr);
    let check = relance(&["check", "broken.camp", "--color", "never"], tmp.path());
    let check_err = text(&check.stderr);
    let report = err
        .trim_end()
        .rsplit_once('\n')
        .map(|(r, _)| r)
        .unwrap_or_default();
    assert!(
        report.contains("E0001") && report.contains("broken.camp:2:9"),
        "{err}"
    );
    assert!(
        check_err.contains(report),
        "fmt:\n{err}\ncheck:\n{check_err}"
    );
}

#[test]
fn standard_input_to_standard_output() {
    let run = |input: &str, args: &[&str]| {
        let mut child = Command::new(BIN)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    };
    let o = run("list  l\n\n\n\nlist m", &["fmt", "-"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "list l\n\nlist m\n");
    let o = run("list\n", &["fmt", "-"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), "");
    assert!(text(&o.stderr).contains("<stdin>"), "{}", text(&o.stderr));
}

#[test]
fn templates_and_other_files_are_never_touched() {
    let tmp = TempDir::new("hbs");
    let hbs = "{{#if  x}}  hello  {{/if}}\n";
    tmp.write("templates/t.hbs", hbs);
    tmp.write("relance.toml", "");
    tmp.write("a.camp", "list  a\n");
    tmp.write(".hidden/b.camp", "list  b\n");
    tmp.write("build/c.camp", "list  c\n");
    let o = relance(&["fmt"], tmp.path());
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        fs::read_to_string(tmp.path().join("a.camp")).unwrap(),
        "list a\n"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("templates/t.hbs")).unwrap(),
        hbs
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join(".hidden/b.camp")).unwrap(),
        "list  b\n"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("build/c.camp")).unwrap(),
        "list  c\n"
    );
    let o = relance(&["fmt", "templates/t.hbs"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not a `.camp` file"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("templates/t.hbs")).unwrap(),
        hbs
    );
}

#[test]
fn writes_are_atomic_and_keep_permissions() {
    let tmp = TempDir::new("atomic");
    let path = tmp.write("a.camp", "list  a\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    }
    let o = relance(&["fmt", "a.camp"], tmp.path());
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(fs::read_to_string(&path).unwrap(), "list a\n");
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["a.camp".to_string()], "no temporary file left");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
}

// ------------------------------------------------------------ properties

/// Formats `text`, checks the result against the parser independently of
/// the formatter's own check, and that a second run changes nothing.
fn round_trip(text: &str) -> Result<String, String> {
    let mut p = Problems::new();
    let before = relance::syntax::parse_file(FileId(0), text, &mut p);
    let out = match format_text(FileId(0), text) {
        Ok(out) => out,
        Err(FmtError::Syntax(_)) => return Err("syntax".into()),
        Err(FmtError::Internal(why)) => panic!("internal error: {why}\n--- input:\n{text}"),
    };
    let mut q = Problems::new();
    let after = relance::syntax::parse_file(FileId(0), &out, &mut q);
    assert!(!q.has_errors(), "formatted text does not parse:\n{out}");
    assert_eq!(
        strip_spans(&format!("{:?}", before.decls)),
        strip_spans(&format!("{:?}", after.decls)),
        "AST changed:\n{text}\n---\n{out}"
    );
    assert_eq!(comments(text), comments(&out));
    let again = format_text(FileId(0), &out).expect("formatted text formats");
    assert_eq!(
        out, again,
        "not idempotent:\n--- input:\n{text}\n--- once:\n{out}"
    );
    Ok(out)
}

/// Every `.camp` file of the repository that parses: the shipped projects,
/// the UI cases, the render and run cases, the handlebars.js corpus.
#[test]
fn every_camp_file_of_the_repository_round_trips() {
    let mut n = 0;
    for dir in ["campaigns", "examples", "tests"] {
        for path in camp_files(&repo().join(dir)) {
            let t = fs::read_to_string(&path).unwrap_or_default();
            if round_trip(&t).is_ok() {
                n += 1;
            }
        }
    }
    assert!(n > 100, "only {n} files parsed");
}

/// Edits that keep a file valid but move its layout around: comments where
/// a space or a line end was, spaces and blank lines, commas for line ends.
#[derive(Clone, Debug)]
enum Edit {
    Space(usize, &'static str),
    LineEnd(usize, &'static str),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (
            any::<usize>(),
            prop::sample::select(&["  ", "\t", " /* note */ ", "/**/", " /* two\n lines */ ",][..])
        )
            .prop_map(|(i, s)| Edit::Space(i, s)),
        (
            any::<usize>(),
            prop::sample::select(
                &[
                    "\n\n\n",
                    " // note\n",
                    "\n  // own line\n",
                    "\n/// doc\n",
                    "\r\n",
                    " \n",
                    ", ",
                    "\n/* block */\n",
                ][..]
            )
        )
            .prop_map(|(i, s)| Edit::LineEnd(i, s)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut t = text.to_string();
    for e in edits {
        let (want, with, i) = match e {
            Edit::Space(i, s) => (' ', *s, *i),
            Edit::LineEnd(i, s) => ('\n', *s, *i),
        };
        // Not the `\n` of a `\r\n`: `\r\r\n` would make a lone `\r`, a
        // line end that doc comments do not see as one (`syntax::lower`).
        let at: Vec<usize> = t
            .match_indices(want)
            .map(|(k, _)| k)
            .filter(|&k| k == 0 || t.as_bytes()[k - 1] != b'\r')
            .collect();
        if at.is_empty() {
            continue;
        }
        let k = at[i % at.len()];
        t.replace_range(k..k + 1, with);
    }
    t
}

fn corpus() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["campaigns", "examples"] {
        for p in camp_files(&repo().join(dir)) {
            files.push(fs::read_to_string(p).unwrap_or_default());
        }
    }
    files.push(
        fs::read_to_string(repo().join("tests/handlebars-js/corpus/corpus.camp"))
            .unwrap_or_default(),
    );
    files
}

/// parse → format → parse gives the same AST up to spans and the same
/// comments, and formatting is idempotent, on the shipped files edited at
/// random (edits that make a file invalid are skipped: those files are
/// refused, which `syntax_error_leaves_the_file_untouched` covers).
#[test]
fn format_keeps_the_ast_and_comments() {
    let files = corpus();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..files.len(), prop::collection::vec(edit(), 1..12));
    let result = runner.run(&strategy, |(f, edits)| {
        let t = apply(&files[f], &edits);
        let _ = round_trip(&t);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
