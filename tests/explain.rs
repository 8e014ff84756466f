//! Every diagnostic code has an explanation in `docs/errors/CODE.md`
//! (printed by `relance explain CODE`), and its examples are real: each
//! `## Wrong` example, checked as a one-file project, produces that code,
//! and each `## Right` example checks with no diagnostics at all.

use relance::diagnostics::{Code, Explanation, Problems, SourceFile, SourceMap};

/// Codes whose situation cannot be written as a campaign file (bad bytes,
/// huge files, parser budget, no files at all). Their explanations describe
/// the situation in a ```text block instead of a camp `## Wrong` example.
const NOT_SHOWABLE: &[Code] = &[
    Code::E0002, // file is not valid UTF-8
    Code::E0003, // file over 4 MiB
    Code::E0005, // parser call limit
    Code::E0006, // NUL byte
    Code::E0007, // no .camp files
    Code::E0506, // needs a missing file next to the project
    Code::E0507, // needs a path outside the project
    Code::E0513, // needs partial files that include each other
    Code::E0901, // relance.toml, not a campaign file
    Code::E0902, // relance.toml, not a campaign file
    Code::W0901, // relance.toml, not a campaign file
    Code::E0910, // needs a FIFO or a device among the project files
];

/// Codes whose `## Wrong` example cannot produce the code because of a bug
/// or a gap in the checker (the code is registered but never emitted, or
/// emitted in the wrong situation). Each entry says what was expected.
/// Their Wrong examples are still checked, but a missing code is reported
/// only as a note; remove the entry once the checker is fixed (the test
/// fails when a listed code starts working, as a reminder).
const KNOWN_GAPS: &[(Code, &str)] = &[
    // None at present: every registered code is produced by its example.
];

/// The diagnostics of a one-file project, each as `CODE at LINE:COL: message`.
fn check(text: &str) -> Vec<(Code, String)> {
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new("example.camp", text));
    let checked = relance::driver::check_sources(&sources, Problems::new(), 1);
    checked
        .diagnostics
        .iter()
        .map(|d| {
            let at = match &d.primary {
                Some(label) => {
                    let (line, col) = sources.get(label.span.file).line_col(label.span.start);
                    format!("{line}:{col}")
                }
                None => "-".to_string(),
            };
            (d.code, format!("{} at {at}: {}", d.code, d.message))
        })
        .collect()
}

fn show(found: &[(Code, String)]) -> String {
    if found.is_empty() {
        return "    (no diagnostics)".to_string();
    }
    found
        .iter()
        .map(|(_, d)| format!("    {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn numbered(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| format!("{:>4} | {l}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_explanation_starts_with_its_code_and_title() {
    let mut failures = Vec::new();
    for &code in Code::ALL {
        let text = code.explanation();
        let first = text.lines().next().unwrap_or("");
        let want = format!("# {code}:");
        if !first.starts_with(&want) {
            failures.push(format!(
                "{code}: docs/errors/{code}.md must start with `{want} …`, found `{first}`"
            ));
        } else if first.trim_end() != format!("# {code}: {}", code.title()) {
            failures.push(format!(
                "{code}: title line `{first}` differs from the registry's `# {code}: {}`",
                code.title()
            ));
        }
        if text.lines().count() < 4 {
            failures.push(format!("{code}: docs/errors/{code}.md has no explanation"));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn every_explanation_has_examples() {
    let mut failures = Vec::new();
    for &code in Code::ALL {
        let ex = Explanation::of(code);
        let wrong = ex.examples("Wrong");
        let right = ex.examples("Right");
        let has_heading = |h: &str| code.explanation().lines().any(|l| l.trim() == h);
        if !has_heading("## Wrong") || !has_heading("## Right") {
            failures.push(format!(
                "{code}: needs a `## Wrong` and a `## Right` section"
            ));
        }
        if NOT_SHOWABLE.contains(&code) {
            if !wrong.is_empty() {
                failures.push(format!(
                    "{code}: cannot be shown in a campaign file, so its Wrong section should be a ```text block"
                ));
            }
            continue;
        }
        if wrong.is_empty() {
            failures.push(format!("{code}: no ```camp example under `## Wrong`"));
        }
        if right.is_empty() {
            failures.push(format!("{code}: no ```camp example under `## Right`"));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn wrong_examples_produce_their_code() {
    let mut failures = Vec::new();
    let mut fixed_gaps = Vec::new();
    for &code in Code::ALL {
        let gap = KNOWN_GAPS.iter().find(|(c, _)| *c == code);
        for (i, example) in Explanation::of(code).examples("Wrong").iter().enumerate() {
            let found = check(example);
            let produced = found.iter().any(|(c, _)| *c == code);
            match (produced, gap) {
                (true, None) => {}
                (true, Some(_)) => fixed_gaps.push(format!(
                    "{code}: Wrong example {} now produces {code}; remove it from KNOWN_GAPS",
                    i + 1
                )),
                (false, Some((_, why))) => {
                    eprintln!("note: {code} is a known checker gap: {why}");
                }
                (false, None) => failures.push(format!(
                    "{code}: Wrong example {} of docs/errors/{code}.md does not produce {code}.\n  example:\n{}\n  diagnostics found:\n{}",
                    i + 1,
                    numbered(example),
                    show(&found)
                )),
            }
        }
    }
    failures.extend(fixed_gaps);
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n\n"));
}

#[test]
fn right_examples_are_clean() {
    let mut failures = Vec::new();
    for &code in Code::ALL {
        for (i, example) in Explanation::of(code).examples("Right").iter().enumerate() {
            let found = check(example);
            if !found.is_empty() {
                failures.push(format!(
                    "{code}: Right example {} of docs/errors/{code}.md is not clean.\n  example:\n{}\n  diagnostics found:\n{}",
                    i + 1,
                    numbered(example),
                    show(&found)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n\n"));
}

#[test]
fn codes_parse_case_insensitively() {
    for &code in Code::ALL {
        assert_eq!(Code::parse(&code.as_str().to_ascii_lowercase()), Some(code));
    }
}
