//! UI tests for diagnostics: every case under `tests/ui/` is checked and its
//! rendered diagnostics are compared with a checked-in expected file.
//!
//! Cases:
//! - `tests/ui/NAME.camp`: a one-file project; expected output `NAME.stderr`
//!   (the human report, as `relance check` prints it without colour).
//! - `tests/ui/NAME/`: a multi-file project (every `*.camp` below it);
//!   expected output `tests/ui/NAME.stderr`.
//! - `tests/ui/formats/NAME.camp` (or a folder `formats/NAME/`): compared
//!   in the JSON (`NAME.json`) and GitHub (`NAME.github`) formats.
//!
//! Every case starts with a `//` comment saying what it demonstrates.
//!
//! `BLESS=1 cargo test --test ui` rewrites the expected files from the
//! current output (and removes expected files whose case is gone). Review
//! the diff before committing.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use relance::diagnostics::Code;
use relance::diagnostics::render::{self, HumanStyle};

/// Codes that cannot be a checked-in case, and where they are tested.
const NOT_A_UI_CASE: &[(Code, &str)] = &[
    (
        Code::E0003,
        "needs a file larger than 4 MiB; covered by the unit tests of src/syntax/guard.rs",
    ),
    (
        Code::E0910,
        "needs a FIFO or a link to a device, which a checked-in case cannot be (and which would trap tools reading the cases); covered with the real binary in tests/build.rs",
    ),
    (
        Code::E0005,
        "needs input that exhausts the parser's call limit; covered by the parser's own tests",
    ),
];

/// The folder name of the format cases inside `tests/ui`.
const FORMATS: &str = "formats";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ui_dir() -> PathBuf {
    manifest_dir().join("tests").join("ui")
}

fn blessing() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// One project to check.
struct Case {
    /// `NAME`: the file stem or the folder name.
    name: String,
    /// The `.camp` file or the project folder.
    path: PathBuf,
    /// The folder holding the expected files (`tests/ui` or `tests/ui/formats`).
    dir: PathBuf,
    /// How paths are shown: `tests/ui` or `tests/ui/NAME`.
    prefix: String,
}

impl Case {
    fn expected(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.name))
    }
}

/// The cases in `dir`: its `.camp` files and its folders (except `formats/`).
fn cases_in(dir: &Path, display: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let entries =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if name == FORMATS {
                continue;
            }
            out.push(Case {
                prefix: format!("{display}/{name}"),
                name,
                path,
                dir: dir.to_path_buf(),
            });
        } else if let Some(stem) = name.strip_suffix(".camp") {
            out.push(Case {
                name: stem.to_string(),
                path,
                dir: dir.to_path_buf(),
                prefix: display.to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn human_cases() -> Vec<Case> {
    cases_in(&ui_dir(), "tests/ui")
}

fn format_cases() -> Vec<Case> {
    cases_in(&ui_dir().join(FORMATS), "tests/ui/formats")
}

/// What one case prints, in the three formats.
struct Output {
    human: String,
    json: String,
    github: String,
}

/// The reference time of every UI case (`--now`), so outputs never depend on the day.
const UI_NOW: i64 = 1_795_424_400; // 2026-11-23T09:00:00Z

/// Loads and checks a case the way `relance check` does. Absolute paths
/// (only in project-level messages such as E0007) are made relative to the
/// crate so that expected files do not depend on where the repo lives.
fn run(case: &Case) -> Result<Output, String> {
    let result = panic::catch_unwind(AssertUnwindSafe(|| -> Result<Output, String> {
        let a = relance::cli::analyse(&case.path, UI_NOW)
            .map_err(|e| format!("load error: {}", e.0))?;
        let (loaded, d) = (&a.loaded, &a.checked.diagnostics);
        Ok(Output {
            human: render::human(d, &loaded.sources, &case.prefix, HumanStyle::plain()),
            json: render::json(d, &loaded.sources),
            github: render::github(d, &loaded.sources, &case.prefix),
        })
    }));
    let out = match result {
        Ok(r) => r?,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".to_string());
            return Err(format!("the compiler panicked: {msg}"));
        }
    };
    let root = format!("{}/", manifest_dir().display());
    let clean = |s: String| s.replace(&root, "");
    Ok(Output {
        human: clean(out.human),
        json: clean(out.json),
        github: clean(out.github),
    })
}

/// Compares `actual` with the expected file, or rewrites it when blessing.
/// Returns a failure report.
fn compare(expected_path: &Path, actual: &str) -> Option<String> {
    let shown = expected_path
        .strip_prefix(manifest_dir())
        .unwrap_or(expected_path)
        .display()
        .to_string();
    if blessing() {
        let old = fs::read_to_string(expected_path).ok();
        if old.as_deref() != Some(actual) {
            write_atomically(expected_path, actual);
            eprintln!("blessed {shown}");
        }
        return None;
    }
    match fs::read_to_string(expected_path) {
        Ok(expected) => {
            let expected = expected.replace("\r\n", "\n");
            if expected == actual {
                None
            } else {
                Some(format!(
                    "{shown}: output differs (- expected, + actual)\n{}",
                    diff(&expected, actual)
                ))
            }
        }
        Err(_) => Some(format!(
            "{shown}: expected file is missing; the actual output is:\n{}",
            indent(actual)
        )),
    }
}

/// Writes through a temporary file so that a concurrent reader (the coverage
/// test) never sees half a file.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    fs::write(&tmp, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// A line diff (longest common subsequence) with 2 lines of context around
/// each change; `-` lines are expected, `+` lines actual.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // (tag, line number in expected or actual, text)
    let mut ops: Vec<(char, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', i + 1, a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i + 1, a[i]));
            i += 1;
        } else {
            ops.push(('+', j + 1, b[j]));
            j += 1;
        }
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        ops.push(('!', 0, "(the files differ in their final newline)"));
    }
    const CONTEXT: usize = 2;
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, (t, _, _))| *t != ' ')
        .map(|(k, _)| k)
        .collect();
    let keep = |k: usize| {
        changed
            .iter()
            .any(|&c| k + CONTEXT >= c && k <= c + CONTEXT)
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (tag, line, text)) in ops.iter().enumerate() {
        if !keep(k) {
            skipped = true;
            continue;
        }
        if skipped {
            out.push_str("    …\n");
            skipped = false;
        }
        match tag {
            '!' => {
                let _ = writeln!(out, "    {text}");
            }
            _ => {
                let _ = writeln!(out, "  {tag} {line:>3} | {text}");
            }
        }
    }
    if skipped && !changed.is_empty() {
        out.push_str("    …\n");
    }
    out
}

/// Expected files whose case no longer exists.
fn orphans(dir: &Path, cases: &[Case], exts: &[&str]) -> Vec<PathBuf> {
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("read ui dir").flatten() {
        let path = entry.path();
        let file = entry.file_name().to_string_lossy().into_owned();
        for ext in exts {
            if let Some(stem) = file.strip_suffix(&format!(".{ext}"))
                && !names.contains(stem)
            {
                out.push(path.clone());
            }
        }
    }
    out.sort();
    out
}

fn finish(what: &str, checked: usize, failures: Vec<String>) {
    if failures.is_empty() {
        eprintln!("{what}: {checked} cases passed");
        return;
    }
    let mut report = String::new();
    for f in &failures {
        report.push_str(f);
        report.push('\n');
    }
    let _ = write!(
        report,
        "{} of {checked} {what} cases failed.\n\
         If the new output is right, re-bless with: BLESS=1 cargo test --test ui\n",
        failures.len()
    );
    panic!("\n{report}");
}

fn check_orphans(dir: &Path, cases: &[Case], exts: &[&str], failures: &mut Vec<String>) {
    for orphan in orphans(dir, cases, exts) {
        let shown = orphan
            .strip_prefix(manifest_dir())
            .unwrap_or(&orphan)
            .display()
            .to_string();
        if blessing() {
            fs::remove_file(&orphan).unwrap_or_else(|e| panic!("cannot remove {shown}: {e}"));
            eprintln!("removed {shown} (its case is gone)");
        } else {
            failures.push(format!(
                "{shown}: expected file without a case (remove it, or run with BLESS=1)"
            ));
        }
    }
}

#[test]
fn ui_human() {
    let cases = human_cases();
    assert!(!cases.is_empty(), "no cases found in tests/ui");
    let mut failures = Vec::new();
    for case in &cases {
        match run(case) {
            Ok(out) => failures.extend(compare(&case.expected("stderr"), &out.human)),
            Err(e) => failures.push(format!("{}: {e}", case.prefix_path())),
        }
    }
    check_orphans(&ui_dir(), &cases, &["stderr"], &mut failures);
    finish("ui", cases.len(), failures);
}

#[test]
fn ui_formats() {
    let dir = ui_dir().join(FORMATS);
    let cases = format_cases();
    assert!(!cases.is_empty(), "no cases found in tests/ui/formats");
    let mut failures = Vec::new();
    for case in &cases {
        match run(case) {
            Ok(out) => {
                failures.extend(compare(&case.expected("json"), &out.json));
                failures.extend(compare(&case.expected("github"), &out.github));
            }
            Err(e) => failures.push(format!("{}: {e}", case.prefix_path())),
        }
    }
    check_orphans(&dir, &cases, &["json", "github"], &mut failures);
    finish("format", cases.len(), failures);
}

impl Case {
    fn prefix_path(&self) -> String {
        if self.path.is_dir() {
            format!("{}/", self.prefix)
        } else {
            format!("{}/{}.camp", self.prefix, self.name)
        }
    }
}

/// The codes printed in a human report: miette puts each on a line of its own.
fn codes_in_report(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| Code::parse(l).is_some_and(|c| c.as_str() == *l))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_code_has_a_ui_case() {
    let mut seen = BTreeSet::new();
    for case in human_cases() {
        // While blessing, `ui_human` may be rewriting the files: use the
        // output they are being rewritten to.
        let text = if blessing() {
            run(&case).map(|o| o.human).ok()
        } else {
            fs::read_to_string(case.expected("stderr")).ok()
        };
        if let Some(text) = text {
            seen.extend(codes_in_report(&text));
        }
    }
    let mut missing = Vec::new();
    for code in Code::ALL {
        let exempt = NOT_A_UI_CASE.iter().any(|(c, _)| c == code);
        let covered = seen.contains(code.as_str());
        if covered && exempt {
            missing.push(format!(
                "{code} is listed in NOT_A_UI_CASE but has a UI case: remove it from the list"
            ));
        } else if !covered && !exempt {
            missing.push(format!(
                "{code} ({}) appears in no tests/ui/*.stderr: add a case such as tests/ui/{}_….camp",
                code.title(),
                code.as_str().to_ascii_lowercase()
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "diagnostic codes without a UI case:\n  {}\n",
        missing.join("\n  ")
    );
}

/// Every case says what it demonstrates in a comment on its first line.
#[test]
fn every_case_starts_with_a_comment() {
    let mut bad = Vec::new();
    let mut files = Vec::new();
    collect_camp_files(&ui_dir(), &mut files);
    for f in files {
        let bytes = fs::read(&f).expect("read case");
        if !bytes.starts_with(b"//") {
            bad.push(
                f.strip_prefix(manifest_dir())
                    .unwrap_or(&f)
                    .display()
                    .to_string(),
            );
        }
    }
    assert!(
        bad.is_empty(),
        "these cases do not start with a `//` comment saying what they demonstrate:\n  {}\n",
        bad.join("\n  ")
    );
}

fn collect_camp_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_camp_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "camp") {
            out.push(path);
        }
    }
}

#[test]
fn the_diff_shows_changed_lines_with_context() {
    let d = diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nD\ne\nf\ng\n");
    assert_eq!(
        d,
        "    …\n      2 | b\n      3 | c\n  -   4 | d\n  +   4 | D\n      5 | e\n      6 | f\n    …\n"
    );
    assert_eq!(diff("x\n", "x\n"), "");
    assert!(diff("x\n", "x").contains("final newline"));
}
