//! The examples of the language reference compile as documented.
//!
//! Every fenced block of `docs/language.md` whose info string starts with
//! `camp` is checked with the library, exactly as `relance check` would:
//!
//! - ```` ```camp prelude ```` — the project the examples refer to (schema,
//!   events, lists, templates). There is exactly one; alone it must check
//!   with no diagnostics at all.
//! - ```` ```camp ```` — checked together with the prelude; must produce no
//!   diagnostics at all.
//! - ```` ```camp warn ```` / ```` ```camp warn W0601 ```` — no errors and at
//!   least one warning; with codes, exactly those warning codes.
//! - ```` ```camp error E0201 [E0202 …] ```` — every listed code appears and
//!   no other code does.
//! - ```` ```camp bug E0205 ```` — like `error`, for a documented known bug:
//!   when it stops failing, the bug is fixed and the doc must be updated.
//! - `standalone` (with any of the above) — a complete project, checked
//!   without the prelude (for examples declaring `contact` or `workspace`).
//!
//! Failures name the block's line in the doc and every diagnostic, with its
//! place translated to a line of the doc.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use relance::diagnostics::{Code, Diagnostic, Problems, Severity, SourceFile, SourceMap};
use relance::driver::check_sources;

const DOC_PATH: &str = "docs/language.md";
const DOC: &str = include_str!("../docs/language.md");

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Clean,
    Warn(Vec<Code>),
    Error(Vec<Code>),
    Bug(Vec<Code>),
}

#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence in the doc.
    fence_line: usize,
    info: String,
    standalone: bool,
    prelude: bool,
    expect: Expect,
    text: String,
}

/// Reads the info string after ```` ```camp ````; an unknown word is a
/// mistake in the doc and fails the test.
fn parse_info(info: &str, line: usize) -> (bool, bool, Expect) {
    let mut standalone = false;
    let mut prelude = false;
    let mut mode: Option<&str> = None;
    let mut codes = Vec::new();
    for word in info.split_whitespace() {
        match word {
            "standalone" => standalone = true,
            "prelude" => prelude = true,
            "warn" | "error" | "bug" => {
                assert!(
                    mode.is_none(),
                    "{DOC_PATH}:{line}: a block has one of `warn`, `error`, `bug`"
                );
                mode = Some(word);
            }
            w => match Code::parse(w) {
                Some(c) if mode.is_some() => codes.push(c),
                Some(_) => {
                    panic!("{DOC_PATH}:{line}: code `{w}` must follow `warn`, `error` or `bug`")
                }
                None => panic!(
                    "{DOC_PATH}:{line}: unknown word `{w}` after ```camp \
                     (known: standalone, prelude, warn [CODES], error CODES, bug CODES; \
                     codes must exist)"
                ),
            },
        }
    }
    let expect = match mode {
        None => Expect::Clean,
        Some("warn") => {
            for c in &codes {
                assert_eq!(
                    c.severity(),
                    Severity::Warning,
                    "{DOC_PATH}:{line}: `{c}` after `warn` is not a warning code"
                );
            }
            Expect::Warn(codes)
        }
        Some(m) => {
            assert!(
                !codes.is_empty(),
                "{DOC_PATH}:{line}: `{m}` needs the codes the block must produce"
            );
            if m == "error" {
                Expect::Error(codes)
            } else {
                Expect::Bug(codes)
            }
        }
    };
    assert!(
        !(prelude && (standalone || expect != Expect::Clean)),
        "{DOC_PATH}:{line}: the prelude block takes no other marker"
    );
    (standalone, prelude, expect)
}

/// Every fenced block whose language is `camp`.
fn camp_blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, String, bool)> = None; // line, info, text, is_camp
    for (i, line) in DOC.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(rest) = trimmed.strip_prefix("```") {
                    let info = rest.trim();
                    let is_camp = info == "camp" || info.starts_with("camp ");
                    let info = info.strip_prefix("camp").unwrap_or(info).trim();
                    open = Some((n, info.to_string(), String::new(), is_camp));
                }
            }
            Some((fence_line, info, text, is_camp)) => {
                if trimmed.starts_with("```") {
                    if *is_camp {
                        let (standalone, prelude, expect) = parse_info(info, *fence_line);
                        blocks.push(Block {
                            fence_line: *fence_line,
                            info: info.clone(),
                            standalone,
                            prelude,
                            expect,
                            text: std::mem::take(text),
                        });
                    }
                    open = None;
                } else {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "{DOC_PATH}: a fenced block is never closed");
    blocks
}

fn prelude(blocks: &[Block]) -> &Block {
    let preludes: Vec<&Block> = blocks.iter().filter(|b| b.prelude).collect();
    assert_eq!(
        preludes.len(),
        1,
        "{DOC_PATH}: exactly one ```camp prelude block is needed, found {}",
        preludes.len()
    );
    preludes[0]
}

/// The file names the test gives to the sources.
const PRELUDE_FILE: &str = "prelude.camp";
const EXAMPLE_FILE: &str = "example.camp";

fn check(block: &Block, prelude: Option<&Block>) -> (SourceMap, Vec<Diagnostic>) {
    let mut sources = SourceMap::new();
    if let Some(p) = prelude {
        sources.add(SourceFile::new(PRELUDE_FILE, p.text.as_str()));
    }
    sources.add(SourceFile::new(EXAMPLE_FILE, block.text.as_str()));
    let diagnostics = check_sources(&sources, Problems::new(), 1).diagnostics;
    (sources, diagnostics)
}

/// One diagnostic, placed in the doc.
fn describe(d: &Diagnostic, sources: &SourceMap, block: &Block, prelude: Option<&Block>) -> String {
    let place = match &d.primary {
        Some(label) => {
            let file = sources.get(label.span.file);
            let (line, col) = file.line_col(label.span.start);
            let (owner, what) = if file.path == PRELUDE_FILE {
                (prelude.unwrap_or(block), "in the prelude, ")
            } else {
                (block, "")
            };
            format!(
                "{what}{DOC_PATH}:{}:{col} `{}`",
                owner.fence_line + line,
                sources.text(label.span).lines().next().unwrap_or("")
            )
        }
        None => "no place".to_string(),
    };
    let mut s = format!(
        "{}[{}] {} ({place})",
        d.severity().as_str(),
        d.code,
        d.message
    );
    if let Some(h) = &d.help {
        let _ = write!(s, "\n        help: {h}");
    }
    s
}

/// What is wrong with the diagnostics of a block, if anything.
fn verdict(expect: &Expect, diagnostics: &[Diagnostic]) -> Option<String> {
    let codes: BTreeSet<Code> = diagnostics.iter().map(|d| d.code).collect();
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let exact = |want: &[Code]| -> Option<String> {
        let want: BTreeSet<Code> = want.iter().copied().collect();
        let missing: Vec<String> = want.difference(&codes).map(|c| c.to_string()).collect();
        let extra: Vec<String> = codes.difference(&want).map(|c| c.to_string()).collect();
        if missing.is_empty() && extra.is_empty() {
            return None;
        }
        let mut s = String::new();
        if !missing.is_empty() {
            let _ = write!(s, "missing {}", missing.join(", "));
        }
        if !extra.is_empty() {
            if !s.is_empty() {
                s.push_str("; ");
            }
            let _ = write!(s, "unexpected {}", extra.join(", "));
        }
        Some(s)
    };
    match expect {
        Expect::Clean if diagnostics.is_empty() => None,
        Expect::Clean => Some(
            "expected no diagnostics (mark the block `warn` or `error CODE` if that is the point)"
                .to_string(),
        ),
        Expect::Warn(_) if errors > 0 => Some("expected warnings only, got errors".to_string()),
        Expect::Warn(_) if warnings == 0 => Some("expected at least one warning".to_string()),
        Expect::Warn(want) if want.is_empty() => None,
        Expect::Warn(want) | Expect::Error(want) => exact(want),
        Expect::Bug(want) => exact(want).map(|s| {
            format!(
                "{s}. This block shows a known bug: if the bug is fixed, update the doc's \
                 note and change the marker to the behaviour now expected"
            )
        }),
    }
}

#[test]
fn the_prelude_checks_clean() {
    let blocks = camp_blocks();
    let p = prelude(&blocks);
    let (sources, diagnostics) = check(p, None);
    let report: Vec<String> = diagnostics
        .iter()
        .map(|d| describe(d, &sources, p, None))
        .collect();
    assert!(
        diagnostics.is_empty(),
        "{DOC_PATH}:{}: the ```camp prelude block must check clean on its own:\n  {}",
        p.fence_line,
        report.join("\n  ")
    );
}

#[test]
fn every_camp_block_checks_as_marked() {
    let blocks = camp_blocks();
    let p = prelude(&blocks);
    let examples: Vec<&Block> = blocks.iter().filter(|b| !b.prelude).collect();
    assert!(
        examples.len() >= 50,
        "{DOC_PATH}: only {} ```camp examples found; is the fence syntax right?",
        examples.len()
    );
    let mut failures = Vec::new();
    for block in &examples {
        let with = if block.standalone { None } else { Some(p) };
        let (sources, diagnostics) = check(block, with);
        if let Some(why) = verdict(&block.expect, &diagnostics) {
            let fence = format!("```camp {}", block.info);
            let mut s = format!(
                "{DOC_PATH}:{}: {}\n    {why}",
                block.fence_line,
                fence.trim_end()
            );
            if diagnostics.is_empty() {
                s.push_str("\n    (no diagnostics)");
            }
            for d in &diagnostics {
                let _ = write!(s, "\n    {}", describe(d, &sources, block, with));
            }
            failures.push(s);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples do not check as marked:\n\n{}\n",
        failures.len(),
        examples.len(),
        failures.join("\n\n")
    );
}

/// Every `E…`/`W…` code the doc names exists.
#[test]
fn the_doc_names_only_real_codes() {
    let mut unknown = Vec::new();
    for (i, line) in DOC.lines().enumerate() {
        let bytes = line.as_bytes();
        for (j, &b) in bytes.iter().enumerate() {
            let starts_word = j == 0 || !bytes[j - 1].is_ascii_alphanumeric();
            if (b == b'E' || b == b'W')
                && starts_word
                && bytes.len() >= j + 5
                && bytes[j + 1..j + 5].iter().all(u8::is_ascii_digit)
                && bytes.get(j + 5).is_none_or(|c| !c.is_ascii_alphanumeric())
            {
                let code = &line[j..j + 5];
                if Code::parse(code).is_none() {
                    unknown.push(format!("{DOC_PATH}:{}: `{code}`", i + 1));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "the doc names codes that do not exist:\n  {}",
        unknown.join("\n  ")
    );
}

/// Users read the doc to learn what can warn them: every warning code is
/// described there.
#[test]
fn every_warning_code_is_documented() {
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| c.severity() == Severity::Warning)
        .map(|c| c.as_str())
        .filter(|c| !DOC.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "{DOC_PATH} does not describe the warning codes {}: add them to the \
         \"Diagnostics\" section (with an example)",
        missing.join(", ")
    );
}

#[test]
fn markers_are_read_as_documented() {
    let (s, p, e) = parse_info("standalone error E0201 E0202", 1);
    assert!(s && !p);
    assert_eq!(e, Expect::Error(vec![Code::E0201, Code::E0202]));
    assert_eq!(parse_info("warn", 1).2, Expect::Warn(vec![]));
    assert_eq!(parse_info("", 1).2, Expect::Clean);
    assert!(parse_info("prelude", 1).1);
    assert!(std::panic::catch_unwind(|| parse_info("eror E0201", 1)).is_err());
    assert!(std::panic::catch_unwind(|| parse_info("error", 1)).is_err());
    assert!(std::panic::catch_unwind(|| parse_info("warn E0201", 1)).is_err());
}
