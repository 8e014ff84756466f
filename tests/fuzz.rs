//! Property tests of the front end: whatever the input, `check_sources`
//! does not panic, returns diagnostics whose spans are valid (known file,
//! `start <= end <= len`, both ends on character boundaries) and every
//! renderer (human, JSON, GitHub) copes with them.
//!
//! * `mutated_campaigns_never_break_the_front_end`: the sample project under
//!   random edits (characters, including multi-byte ones, inserted, deleted
//!   or replaced; lines duplicated, moved or dropped; files truncated,
//!   emptied or swapped; keywords, literals and punctuation sprinkled in).
//!   The text always stays valid UTF-8, as the loader guarantees.
//!   Structural mutations as an attacker would write them: whole
//!   declarations spliced into another file or repeated up to 40 times,
//!   chains of up to 300 segments each naming the previous one (straight,
//!   or as a diamond `fz2 = fz1 and fz1`) with a persona expecting the last,
//!   line ends rewritten as `\r` alone, `\r\n` or a mix, and lines repeated
//!   up to 3,000 times on one line.
//!   Beyond "no panic" and valid spans, the human report stays bounded
//!   relative to the JSON one (at most 4× + 16 KiB; no line much wider
//!   than the longest message), which is what the 50-per-file cap and the
//!   clipped source lines guarantee. Exponential or quadratic work shows as
//!   a property that does not finish.
//! * `mutated_campaigns_check_the_same_on_any_thread_count`: parallel
//!   parsing gives exactly the diagnostics of sequential parsing.
//! * `arbitrary_text_never_panics` (`".*"`) and `token_soup_never_panics`
//!   (relance's own tokens glued together).
//! * `generated_declarations_*`: syntactically plausible declarations
//!   (nested expressions, branches, splits, personas, templates…) with
//!   random names and literals, alone and next to the sample, so that the
//!   checker, not only the parser, sees odd input.
//!
//! Runs are reproducible: a fixed seed and a fixed number of cases, small
//! enough for a debug build. Environment variables for local runs:
//! `RELANCE_FUZZ_CASES` (cases per property, e.g. `20000`),
//! `RELANCE_FUZZ_SEED` (another fixed seed), `RELANCE_FUZZ_STRICT=1` (fail on
//! known bugs too, see [`KNOWN_BUGS`]). For example
//! `RELANCE_FUZZ_CASES=20000 cargo test --release --test fuzz`.
//!
//! Each property runs on its own thread with a large stack: debug builds of
//! the recursive-descent parser (and of nested proptest strategies) need
//! more than the harness's 2 MiB for input the nesting guard accepts. Stack
//! depth as users meet it is tested with the real binary in `tests/cli.rs`.

use std::cell::RefCell;
use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Once, OnceLock};

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};

use relance::diagnostics::render::{self, HumanStyle};
use relance::diagnostics::{Diagnostic, Label, Problems, SourceFile, SourceMap};

// ------------------------------------------------------------ configuration

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Proptest settings: `default_cases` unless `RELANCE_FUZZ_CASES` says
/// otherwise, always a fixed seed, and no regression files written into the
/// source tree (a failure prints its minimal input instead).
fn config(default_cases: u32) -> Config {
    let cases = env_number("RELANCE_FUZZ_CASES")
        .map(|n| n.clamp(1, u32::MAX as u64) as u32)
        .unwrap_or(default_cases);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(env_number("RELANCE_FUZZ_SEED").unwrap_or(0x7e1a_0ce5)),
        failure_persistence: None,
        max_shrink_iters: 2048,
        max_global_rejects: cases.saturating_mul(4).max(1024),
        ..Config::default()
    }
}

fn strict() -> bool {
    std::env::var_os("RELANCE_FUZZ_STRICT").is_some_and(|v| v != "0")
}

const FUZZ_THREAD: &str = "relance-fuzz";

/// Runs one property on a thread with a large stack and a fixed seed;
/// panics (failing the `#[test]`) with the minimal failing input.
fn property<S, F>(name: &str, default_cases: u32, strategy: fn() -> S, test: F)
where
    S: Strategy + 'static,
    S::Value: Debug,
    F: Fn(S::Value) -> Result<(), TestCaseError> + Send + 'static,
{
    install_panic_hook();
    let name = name.to_string();
    let outcome = std::thread::Builder::new()
        .name(FUZZ_THREAD.to_string())
        .stack_size(256 * 1024 * 1024)
        .spawn(move || {
            let mut runner = TestRunner::new(config(default_cases));
            match runner.run(&strategy(), test) {
                Ok(()) => Ok(()),
                Err(TestError::Fail(reason, value)) => Err(format!(
                    "property `{name}` failed: {reason}\nminimal failing input: {value:#?}"
                )),
                Err(TestError::Abort(reason)) => {
                    Err(format!("property `{name}` aborted: {reason}"))
                }
            }
        })
        .expect("spawn the fuzz thread")
        .join();
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(report)) => panic!("{report}"),
        Err(_) => panic!("the fuzz thread panicked outside the property"),
    }
}

// ------------------------------------------------------------ panics

/// A panic of the front end: where and what.
#[derive(Debug)]
struct Panic {
    location: String,
    message: String,
}

/// A panic already reported as a bug. While it is not fixed, inputs that
/// trigger it are rejected (proptest draws another case) so that the
/// properties keep looking for *other* problems; `RELANCE_FUZZ_STRICT=1`
/// makes them failures again. Each also gets an `#[ignore]`d regression
/// test with its minimal input at the end of this file.
struct KnownBug {
    file: &'static str,
    message: &'static str,
    what: &'static str,
}

impl KnownBug {
    fn matches(&self, p: &Panic) -> bool {
        p.location.replace('\\', "/").contains(self.file) && p.message.contains(self.message)
    }
}

/// Empty while no panic is known. An entry looks like
/// `KnownBug { file: "src/syntax/errors.rs", message: "is not a char boundary", what: "…" }`.
const KNOWN_BUGS: &[KnownBug] = &[];

thread_local! {
    static LAST_PANIC: RefCell<Option<Panic>> = const { RefCell::new(None) };
}

/// Records where fuzzed code panicked (the payload alone has no location)
/// and keeps shrinking from printing hundreds of panic messages; panics on
/// other threads are printed as usual.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(FUZZ_THREAD) {
                return default(info);
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".to_string());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "(unknown)".to_string());
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(Panic { location, message }));
        }));
    });
}

/// Runs `f`, turning a panic into a test failure, or into a rejection when
/// it is a known bug.
fn no_panic<T>(f: impl FnOnce() -> Result<T, TestCaseError>) -> Result<T, TestCaseError> {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(_) => {
            let panic = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or(Panic {
                location: "(unknown)".to_string(),
                message: "(panic not recorded)".to_string(),
            });
            if let Some(bug) = KNOWN_BUGS.iter().find(|b| !strict() && b.matches(&panic)) {
                return Err(TestCaseError::reject(format!("known bug: {}", bug.what)));
            }
            Err(TestCaseError::fail(format!(
                "the front end panicked at {}: {}",
                panic.location, panic.message
            )))
        }
    }
}

// ------------------------------------------------------------ the oracle

/// The sample project's `.camp` files, loaded once, as (path, text).
fn sample() -> &'static [(String, String)] {
    static SAMPLE: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
        let loaded = relance::cli::load_project(&dir)
            .unwrap_or_else(|e| panic!("cannot load {}: {}", dir.display(), e.0));
        assert!(loaded.problems.is_empty(), "the sample loads cleanly");
        let files: Vec<_> = loaded
            .sources
            .files()
            // Campaign files only: not the project's relance.toml.
            .filter(|(_, f)| f.camp)
            .map(|(_, f)| (f.path.clone(), f.text.to_string()))
            .collect();
        assert!(files.len() >= 2, "the sample has several files");
        files
    })
}

fn source_map(files: &[(String, String)]) -> SourceMap {
    let mut sources = SourceMap::new();
    for (path, text) in files {
        sources.add(SourceFile::new(path.clone(), text.as_str()));
    }
    sources
}

fn check_label(
    sources: &SourceMap,
    d: &Diagnostic,
    label: &Label,
    which: &str,
) -> Result<(), TestCaseError> {
    let span = label.span;
    prop_assert!(
        (span.file.0 as usize) < sources.len(),
        "{which} label of {d} points at file {:?}; there are {} files",
        span.file,
        sources.len()
    );
    let text = &sources.get(span.file).text;
    prop_assert!(
        span.start <= span.end && span.end as usize <= text.len(),
        "{which} label of {d} has span {}..{} in a file of {} bytes",
        span.start,
        span.end,
        text.len()
    );
    prop_assert!(
        text.is_char_boundary(span.start as usize) && text.is_char_boundary(span.end as usize),
        "{which} label of {d} has span {}..{} that splits a character",
        span.start,
        span.end
    );
    Ok(())
}

/// Checks a project given as (path, text) pairs and asserts the invariants.
fn check_files(files: &[(String, String)]) -> Result<(), TestCaseError> {
    no_panic(|| {
        let sources = source_map(files);
        let checked = relance::driver::check_sources(&sources, Problems::new(), 1);

        for d in &checked.diagnostics {
            prop_assert!(!d.message.is_empty(), "{:?} has no message", d.code);
            if let Some(primary) = &d.primary {
                check_label(&sources, d, primary, "primary")?;
            } else {
                prop_assert!(d.secondary.is_empty(), "{d} has labels but no primary");
            }
            for label in &d.secondary {
                check_label(&sources, d, label, "secondary")?;
            }
        }

        // The renderers cope with every diagnostic.
        let human = render::human(
            &checked.diagnostics,
            &sources,
            "campaigns",
            HumanStyle::plain(),
        );
        prop_assert!(human.ends_with('\n'));
        let github = render::github(&checked.diagnostics, &sources, "campaigns");
        prop_assert_eq!(github.lines().count(), checked.diagnostics.len());
        let json = render::json(&checked.diagnostics, &sources);
        let value: serde_json::Value = serde_json::from_str(&json)
            .map_err(|e| TestCaseError::fail(format!("--format json is not JSON: {e}")))?;
        prop_assert_eq!(
            value["diagnostics"].as_array().map(Vec::len),
            Some(checked.diagnostics.len())
        );
        prop_assert_eq!(value["errors"].as_u64(), Some(checked.errors() as u64));
        prop_assert_eq!(value["warnings"].as_u64(), Some(checked.warnings() as u64));
        // The human report does not amplify its input: a few lines of
        // context per diagnostic, clipped, at most 50 per file.
        prop_assert!(
            human.len() <= 4 * json.len() + 16_384,
            "the human report is {} bytes for a JSON report of {}",
            human.len(),
            json.len()
        );
        let widest = human.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        let longest_message = checked
            .diagnostics
            .iter()
            .flat_map(|d| {
                std::iter::once(d.message.as_str())
                    .chain(d.help.as_deref())
                    .chain(
                        d.primary
                            .iter()
                            .chain(&d.secondary)
                            .map(|l| l.message.as_str()),
                    )
            })
            .map(|m| m.chars().count())
            .max()
            .unwrap_or(0);
        prop_assert!(
            widest <= 600 + longest_message,
            "a line of {widest} characters in the human report"
        );
        Ok(())
    })
}

/// Parallel parsing gives the same answer as sequential parsing.
fn check_threads_agree(files: &[(String, String)]) -> Result<(), TestCaseError> {
    no_panic(|| {
        let sources = source_map(files);
        let one = relance::driver::check_sources(&sources, Problems::new(), 1);
        let many = relance::driver::check_sources(&sources, Problems::new(), 3);
        prop_assert!(
            one.diagnostics == many.diagnostics,
            "1 thread and 3 threads disagree:\n{:?}\n{:?}",
            one.diagnostics,
            many.diagnostics
        );
        Ok(())
    })
}

// ------------------------------------------------------------ vocabulary

/// The language's reserved words, from the parser itself.
const KEYWORDS: &[&str] = relance::syntax::KEYWORDS;

const WORDS: &[&str] = &[
    // types, channels, weekdays, policy words, functions
    "text",
    "number",
    "bool",
    "date",
    "timestamp",
    "email",
    "phone",
    "device",
    "timezone",
    "enum",
    "set<text>",
    "sms",
    "push",
    "task",
    "webhook",
    "monday",
    "sunday",
    "day",
    "never",
    "always",
    "defer",
    "drop",
    "all",
    "marketing",
    "transactional",
    "kind",
    "subject",
    "preheader",
    "html",
    "body",
    "title",
    "url",
    "lists",
    "tags",
    "opened",
    "clicked",
    "delivered",
    "replied",
    "bounced",
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "name",
    "from",
    "address",
    // names of the sample and of the generated declarations
    "prospects",
    "customers",
    "newsletter",
    "purchase",
    "amount",
    "country",
    "first_name",
    "plan",
    "pro",
    "free",
    "welcome",
    "a",
    "b",
    "c",
    "_",
    "x1",
    "Bad",
    "caf\u{e9}",
];

const PUNCTUATION: &[&str] = &[
    "{", "}", "(", ")", "[", "]", "\"", "//", "/*", "*/", "///", ",", "=", ".", ":", "?", "<", ">",
    "==", "!=", "<=", ">=", "%", "-", "+", "\\", "\\u{", "{{", "}}", "{{>", "\n", "\r\n", "\r",
    "\t", " ", "\u{feff}",
];

const LITERALS: &[&str] = &[
    "\"FR\"",
    "\"\"",
    "\"a\\\"b\"",
    "\"\\u{e9}\"",
    "\"\\u{110000}\"",
    "\"\\u{}\"",
    "\"\\q\"",
    "\"\\",
    "\"open",
    "\"{{first_name}}\"",
    "\"https://a.example/x\"",
    "\"ftp://x\"",
    "\"Europe/Paris\"",
    "\"Mars/Olympus\"",
    "\"\r\n\"",
    "0",
    "-3",
    "12.50",
    "1.",
    ".5",
    "--1",
    "99999999999999999999999",
    "-99999999999999999999",
    "2026-01-15",
    "2026-02-30",
    "0000-00-00",
    "9999-99-99",
    "2026-01-15T09:00:00Z",
    "2026-01-15T09:00:00+01:00",
    "2026-01-15T25:61:61Z",
    "2026-01-15T09:00:00+99:99",
    "30m",
    "2h",
    "3d",
    "2w",
    "1d12h",
    "0d",
    "99999999999999999999d",
    "4294967296w",
    "50%",
    "0%",
    "100%",
    "101%",
    "33.3%",
    "99999999999999999999%",
    "09:00",
    "24:00",
    "23:59",
    "99:99",
    "14d ago",
    "now",
    "[]",
    "[a, b]",
    "[pro, team,]",
    "[\"gps\", \"kids\"]",
];

/// Characters that stress byte/character arithmetic.
const CHARS: &[&str] = &[
    "\u{e9}",
    "\u{20ac}",
    "\u{1f697}",
    "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}",
    "e\u{301}",
    "\u{2028}",
    "\u{85}",
    "\u{a0}",
    "\u{fffd}",
    "\u{10ffff}",
    "\u{0}",
    "\u{7f}",
    "\u{202e}",
    "\u{3000}",
    "\u{ff5b}",
];

/// A short piece of text to insert.
fn snippet() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(KEYWORDS).prop_map(str::to_string),
        2 => select(WORDS).prop_map(str::to_string),
        4 => select(PUNCTUATION).prop_map(str::to_string),
        2 => select(LITERALS).prop_map(str::to_string),
        3 => select(CHARS).prop_map(str::to_string),
        2 => any::<char>().prop_map(String::from),
        1 => "[ -~]{1,8}",
        1 => ".{1,4}",
    ]
}

// ------------------------------------------------------------ mutations

#[derive(Clone, Debug)]
enum Mutation {
    Insert {
        file: Index,
        at: Index,
        text: String,
    },
    Delete {
        file: Index,
        at: Index,
        chars: usize,
    },
    Replace {
        file: Index,
        at: Index,
        chars: usize,
        text: String,
    },
    DuplicateLine {
        file: Index,
        line: Index,
    },
    DeleteLine {
        file: Index,
        line: Index,
    },
    MoveLine {
        file: Index,
        from: Index,
        to: Index,
    },
    Truncate {
        file: Index,
        at: Index,
    },
    SwapFiles {
        a: Index,
        b: Index,
    },
    EmptyFile {
        file: Index,
    },
    /// A whole top-level declaration copied into another file (or the same
    /// one) at a line boundary: names declared twice, references across
    /// files.
    SpliceDeclaration {
        from: Index,
        decl: Index,
        to: Index,
        at: Index,
    },
    /// A declaration repeated in place, `times` more times.
    RepeatDeclaration {
        file: Index,
        decl: Index,
        times: usize,
    },
    /// A chain of segments each naming the previous one (`diamond`: twice,
    /// `fz3 = fz2 and fz2`), and a persona expecting the last: deep and
    /// exponential evaluation, the depth limit (E0020) on either side.
    Chain {
        file: Index,
        length: usize,
        diamond: bool,
    },
    /// Line ends rewritten: 0 `\r` alone, 1 `\r\n`, 2 every other `\n`
    /// as `\r` (mixed).
    LineEnds {
        file: Index,
        style: u8,
    },
    /// A line's text repeated `times` times on that one line: very long
    /// lines full of names, for the human report.
    LongLine {
        file: Index,
        line: Index,
        times: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (any::<Index>(), any::<Index>(), snippet())
            .prop_map(|(file, at, text)| Mutation::Insert { file, at, text }),
        3 => (any::<Index>(), any::<Index>(), 1usize..24)
            .prop_map(|(file, at, chars)| Mutation::Delete { file, at, chars }),
        4 => (any::<Index>(), any::<Index>(), 1usize..6, snippet())
            .prop_map(|(file, at, chars, text)| Mutation::Replace { file, at, chars, text }),
        2 => (any::<Index>(), any::<Index>())
            .prop_map(|(file, line)| Mutation::DuplicateLine { file, line }),
        2 => (any::<Index>(), any::<Index>())
            .prop_map(|(file, line)| Mutation::DeleteLine { file, line }),
        1 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(file, from, to)| Mutation::MoveLine { file, from, to }),
        1 => (any::<Index>(), any::<Index>())
            .prop_map(|(file, at)| Mutation::Truncate { file, at }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapFiles { a, b }),
        1 => any::<Index>().prop_map(|file| Mutation::EmptyFile { file }),
        2 => (any::<Index>(), any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(from, decl, to, at)| Mutation::SpliceDeclaration { from, decl, to, at }),
        1 => (any::<Index>(), any::<Index>(), 1usize..40)
            .prop_map(|(file, decl, times)| Mutation::RepeatDeclaration { file, decl, times }),
        1 => (any::<Index>(), prop_oneof![1usize..40, 240usize..300], any::<bool>())
            .prop_map(|(file, length, diamond)| Mutation::Chain { file, length, diamond }),
        1 => (any::<Index>(), 0u8..3).prop_map(|(file, style)| Mutation::LineEnds { file, style }),
        1 => (any::<Index>(), any::<Index>(), prop_oneof![2usize..50, 500usize..3000])
            .prop_map(|(file, line, times)| Mutation::LongLine { file, line, times }),
    ]
}

/// Byte ranges of the top-level declarations of `t`: from a line that
/// starts with a declaration keyword to the next such line.
fn declarations(t: &str) -> Vec<(usize, usize)> {
    const STARTS: &[&str] = &[
        "workspace",
        "contact",
        "event",
        "list",
        "segment",
        "persona",
        "negative",
        "template",
        "scenario",
        "cadence",
        "pressure",
    ];
    let mut starts = Vec::new();
    let mut at = 0;
    for l in t.split_inclusive('\n') {
        if STARTS.iter().any(|k| l.starts_with(k)) {
            starts.push(at);
        }
        at += l.len();
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, starts.get(i + 1).copied().unwrap_or(t.len())))
        .collect()
}

/// The start of a line of `t`, picked by `at`.
fn line_start(t: &str, at: &Index) -> usize {
    let mut starts = vec![0];
    starts.extend(t.match_indices('\n').map(|(i, _)| i + 1));
    starts[at.index(starts.len())]
}

/// The character boundary at or before `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A byte offset on a character boundary, anywhere in `s` including its end.
fn offset(s: &str, at: &Index) -> usize {
    floor_boundary(s, at.index(s.len() + 1))
}

/// The end of `chars` characters starting at `start`.
fn advance(s: &str, start: usize, chars: usize) -> usize {
    s[start..]
        .char_indices()
        .nth(chars)
        .map(|(i, _)| start + i)
        .unwrap_or(s.len())
}

/// Lines with their terminators, so that joining them gives the text back.
fn lines(s: &str) -> Vec<String> {
    s.split_inclusive('\n').map(str::to_string).collect()
}

fn apply(files: &mut [(String, String)], m: &Mutation) {
    match m {
        Mutation::Insert { file, at, text } => {
            let t = &mut files[file.index(files.len())].1;
            let i = offset(t, at);
            t.insert_str(i, text);
        }
        Mutation::Delete { file, at, chars } => {
            let t = &mut files[file.index(files.len())].1;
            let i = offset(t, at);
            let j = advance(t, i, *chars);
            t.replace_range(i..j, "");
        }
        Mutation::Replace {
            file,
            at,
            chars,
            text,
        } => {
            let t = &mut files[file.index(files.len())].1;
            let i = offset(t, at);
            let j = advance(t, i, *chars);
            t.replace_range(i..j, text);
        }
        Mutation::DuplicateLine { file, line } => {
            let t = &mut files[file.index(files.len())].1;
            let mut ls = lines(t);
            if !ls.is_empty() {
                let k = line.index(ls.len());
                let mut copy = ls[k].clone();
                if !copy.ends_with('\n') {
                    copy.push('\n');
                }
                ls.insert(k, copy);
                *t = ls.concat();
            }
        }
        Mutation::DeleteLine { file, line } => {
            let t = &mut files[file.index(files.len())].1;
            let mut ls = lines(t);
            if !ls.is_empty() {
                ls.remove(line.index(ls.len()));
                *t = ls.concat();
            }
        }
        Mutation::MoveLine { file, from, to } => {
            let t = &mut files[file.index(files.len())].1;
            let mut ls = lines(t);
            if !ls.is_empty() {
                let mut l = ls.remove(from.index(ls.len()));
                if !l.ends_with('\n') {
                    l.push('\n');
                }
                ls.insert(to.index(ls.len() + 1), l);
                *t = ls.concat();
            }
        }
        Mutation::Truncate { file, at } => {
            let t = &mut files[file.index(files.len())].1;
            let i = offset(t, at);
            t.truncate(i);
        }
        Mutation::SwapFiles { a, b } => {
            let (a, b) = (a.index(files.len()), b.index(files.len()));
            if a != b {
                let ta = std::mem::take(&mut files[a].1);
                let tb = std::mem::replace(&mut files[b].1, ta);
                files[a].1 = tb;
            }
        }
        Mutation::EmptyFile { file } => {
            files[file.index(files.len())].1.clear();
        }
        Mutation::SpliceDeclaration { from, decl, to, at } => {
            let src = &files[from.index(files.len())].1;
            let decls = declarations(src);
            if decls.is_empty() {
                return;
            }
            let (a, b) = decls[decl.index(decls.len())];
            let mut piece = src[a..b].to_string();
            if !piece.ends_with('\n') {
                piece.push('\n');
            }
            let t = &mut files[to.index(files.len())].1;
            let i = line_start(t, at);
            t.insert_str(i, &piece);
        }
        Mutation::RepeatDeclaration { file, decl, times } => {
            let t = &mut files[file.index(files.len())].1;
            let decls = declarations(t);
            if decls.is_empty() {
                return;
            }
            let (a, b) = decls[decl.index(decls.len())];
            let mut piece = t[a..b].to_string();
            if !piece.ends_with('\n') {
                piece.push('\n');
            }
            t.insert_str(b, &piece.repeat(*times));
        }
        Mutation::Chain {
            file,
            length,
            diamond,
        } => {
            let mut chain = String::from("\nsegment fz0 = country == \"FR\"\n");
            for i in 1..*length {
                let p = i - 1;
                if *diamond {
                    let op = if i % 2 == 0 { "and" } else { "or" };
                    chain.push_str(&format!("segment fz{i} = fz{p} {op} fz{p}\n"));
                } else {
                    chain.push_str(&format!("segment fz{i} = fz{p}\n"));
                }
            }
            let last = length - 1;
            chain.push_str(&format!(
                "persona fz_p {{\n  email = \"fz@example.com\"\n  country = \"FR\"\n  customer_type = garage\n  signup_at = 10d ago\n  ltv = 1\n  sms_opt_in = true\n  interests = []\n  expect fz{last}\n}}\n"
            ));
            files[file.index(files.len())].1.push_str(&chain);
        }
        Mutation::LineEnds { file, style } => {
            let t = &mut files[file.index(files.len())].1;
            *t = match style {
                0 => t.replace("\r\n", "\n").replace('\n', "\r"),
                1 => t.replace("\r\n", "\n").replace('\n', "\r\n"),
                _ => t
                    .split('\n')
                    .enumerate()
                    .map(|(i, l)| {
                        if i % 2 == 0 {
                            format!("{l}\r")
                        } else {
                            format!("{l}\n")
                        }
                    })
                    .collect::<String>(),
            };
        }
        Mutation::LongLine { file, line, times } => {
            let t = &mut files[file.index(files.len())].1;
            let mut ls = lines(t);
            if !ls.is_empty() {
                let k = line.index(ls.len());
                let body = ls[k].trim_end_matches(['\n', '\r']).to_string();
                let end = &ls[k][body.len()..];
                ls[k] = format!("{}{end}", vec![body.as_str(); *times].join(" "));
                *t = ls.concat();
            }
        }
    }
}

fn mutated(mutations: &[Mutation]) -> Vec<(String, String)> {
    let mut files = sample().to_vec();
    for m in mutations {
        apply(&mut files, m);
    }
    files
}

// ------------------------------------------------------------ generated text
//
// Mostly well-formed declarations with an occasional odd part, so that most
// projects get past the parser and exercise the checker.

/// Names that the generated declarations declare and reference.
const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "x1",
    "_",
    "prospects",
    "customers",
    "newsletter",
    "purchase",
    "page_view",
    "amount",
    "sku",
    "path",
    "country",
    "first_name",
    "plan",
    "ltv",
    "kids",
    "tz",
    "signup_at",
    "interests",
    "free",
    "pro",
    "team",
    "welcome",
    "nudge",
    "offer",
    "call_me",
    "gps",
    "s1",
    "c1",
    "marie",
    "email",
    "phone",
    "text",
    "monday",
];

const ODD_NAMES: &[&str] = &[
    "Bad",
    "caf\u{e9}",
    "9lives",
    "exit",
    "when",
    "send",
    "max",
    "a-b",
    "",
];

const TYPES: &[&str] = &[
    "text",
    "number",
    "bool",
    "date",
    "timestamp",
    "email",
    "phone",
    "device",
    "timezone",
    "set<text>",
    "enum(free, pro, team)",
    "enum(a)",
];

const ODD_TYPES: &[&str] = &[
    "set<number>",
    "money",
    "enum()",
    "enum(free, free)",
    "set<>",
];

const CHANNELS: &[&str] = &["email", "sms", "push", "task", "webhook"];

const VALID_LITERALS: &[&str] = &[
    "\"FR\"",
    "\"\"",
    "\"a\\\"b\\n\\t\\\\\"",
    "\"\\u{e9}t\u{e9}\"",
    "\"{{first_name}}\"",
    "\"https://a.example/x\"",
    "\"mailto:a@b.example\"",
    "\"Europe/Paris\"",
    "0",
    "-3",
    "12.50",
    "2026-01-15",
    "2026-01-15T09:00:00Z",
    "2026-01-15T09:00:00+01:00",
    "30m",
    "2h",
    "3d",
    "2w",
    "1d12h",
    "50%",
    "100%",
    "09:00",
    "14d ago",
    "now",
    "true",
    "false",
    "[]",
    "[a, b]",
    "[\"gps\", \"kids\"]",
    "pro",
];

const DURATIONS: &[&str] = &["30m", "2h", "3d", "2w", "1d12h", "0d", "1m", "999w"];

fn pick(valid: &'static [&'static str], odd: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        12 => select(valid).prop_map(str::to_string),
        1 => select(odd).prop_map(str::to_string),
    ]
    .boxed()
}

fn name() -> BoxedStrategy<String> {
    prop_oneof![
        12 => pick(NAMES, ODD_NAMES),
        1 => "[a-z_][a-z0-9_]{0,8}",
    ]
    .boxed()
}

fn literal() -> BoxedStrategy<String> {
    prop_oneof![
        10 => select(VALID_LITERALS).prop_map(str::to_string),
        2 => select(LITERALS).prop_map(str::to_string),
        1 => "\"[^\"\\\\\n\0]{0,12}\"",
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => (0u32..400, select(&["m", "h", "d", "w", "%"][..]))
            .prop_map(|(n, u)| format!("{n}{u}")),
    ]
    .boxed()
}

fn duration() -> BoxedStrategy<String> {
    prop_oneof![8 => pick(DURATIONS, LITERALS), 1 => literal()].boxed()
}

fn string() -> BoxedStrategy<String> {
    prop_oneof![6 => "\"[a-z_ \u{e9}]{0,8}\"", 1 => literal()].boxed()
}

fn term() -> BoxedStrategy<String> {
    prop_oneof![
        4 => name(),
        3 => literal(),
        1 => (name(), name()).prop_map(|(a, b)| format!("{a}.{b}")),
        1 => (1u32..100, select(&["m", "h", "d", "w"][..])).prop_map(|(n, u)| format!("{n}{u} ago")),
    ]
    .boxed()
}

fn atom() -> BoxedStrategy<String> {
    let cmp = || pick(&["==", "!=", "<", "<=", ">", ">="], &["=", "=>", "<>"]);
    let engagement = select(&["opened", "clicked", "delivered", "replied", "bounced"][..]);
    let aggregate = || pick(&["count", "sum", "min", "max", "avg"], &["total"]);
    prop_oneof![
        3 => name(),
        5 => (term(), cmp(), term()).prop_map(|(a, c, b)| format!("{a} {c} {b}")),
        1 => (term(), prop::collection::vec(term(), 0..4), any::<bool>()).prop_map(|(t, xs, neg)| {
            format!("{t} {}in [{}]", if neg { "not " } else { "" }, xs.join(", "))
        }),
        1 => (term(), term()).prop_map(|(a, b)| format!("{a} contains {b}")),
        1 => (term(), any::<bool>())
            .prop_map(|(t, neg)| format!("{t} is {}set", if neg { "not " } else { "" })),
        2 => (engagement, prop_oneof![name(), Just("any".to_string()), (name(), name()).prop_map(|(t, l)| format!("{t}.{l}"))], prop::option::of(term()))
            .prop_map(|(e, t, since)| match since {
                Some(s) => format!("{e}({t} since {s})"),
                None => format!("{e}({t})"),
            }),
        2 => (aggregate(), name(), prop::option::of(name()), cmp(), term()).prop_map(
            |(f, ev, field, c, t)| match field {
                Some(field) => format!("{f}({ev}.{field} since 30d ago) {c} {t}"),
                None => format!("{f}({ev} where amount > 3) {c} {t}"),
            }
        ),
    ]
    .boxed()
}

fn expr() -> BoxedStrategy<String> {
    atom()
        .prop_recursive(3, 16, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| format!("({e})")),
                inner.clone().prop_map(|e| format!("not {e}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("{a} or\n  {b}")),
            ]
        })
        .boxed()
}

fn block(items: Vec<String>, comma: bool) -> String {
    if items.is_empty() {
        "{}".to_string()
    } else if comma {
        format!("{{ {} }}", items.join(", "))
    } else {
        format!("{{\n  {}\n}}", items.join("\n  "))
    }
}

fn items(item: BoxedStrategy<String>, max: usize) -> BoxedStrategy<String> {
    (
        prop::collection::vec(item, 0..max),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(v, comma)| block(v, comma))
        .boxed()
}

fn step() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        4 => name().prop_map(|t| format!("send {t}")),
        2 => duration().prop_map(|d| format!("wait {d}")),
        1 => (expr(), duration()).prop_map(|(e, d)| format!("wait until {e} for {d}")),
        1 => name().prop_map(|l| format!("join {l}")),
        1 => name().prop_map(|l| format!("leave {l}")),
        1 => string().prop_map(|t| format!("tag {t}")),
        1 => string().prop_map(|t| format!("untag {t}")),
        1 => name().prop_map(|c| format!("start {c}")),
        1 => Just("exit".to_string()),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        let steps = items(inner.boxed(), 3);
        let percent = pick(
            &["50%", "25%", "100%", "0%", "33.3%"],
            &["101%", "-5%", "50"],
        );
        prop_oneof![
            (
                prop::collection::vec((expr(), steps.clone()), 0..3),
                prop::option::of(steps.clone()),
            )
                .prop_map(|(arms, other)| {
                    let mut items: Vec<String> = arms
                        .into_iter()
                        .map(|(e, s)| format!("when {e} {s}"))
                        .collect();
                    if let Some(o) = other {
                        items.push(format!("else {o}"));
                    }
                    format!("branch {}", block(items, false))
                }),
            prop::collection::vec((percent, steps), 0..3).prop_map(|arms| {
                let items = arms.into_iter().map(|(p, s)| format!("{p} {s}")).collect();
                format!("split {}", block(items, false))
            }),
        ]
    })
    .boxed()
}

fn field() -> BoxedStrategy<String> {
    (name(), pick(TYPES, ODD_TYPES), prop::bool::weighted(0.4))
        .prop_map(|(n, t, opt)| format!("{n}: {t}{}", if opt { "?" } else { "" }))
        .boxed()
}

fn value() -> BoxedStrategy<String> {
    prop_oneof![4 => literal(), 1 => name()].boxed()
}

fn template_attribute() -> BoxedStrategy<String> {
    let key = pick(
        &[
            "kind",
            "subject",
            "preheader",
            "html",
            "text",
            "body",
            "title",
            "url",
        ],
        &["colour", "from"],
    );
    prop_oneof![
        4 => (key.clone(), string()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => Just("kind = marketing".to_string()),
        1 => Just("kind = transactional".to_string()),
        1 => (key, string()).prop_map(|(k, p)| format!("{k} = file({p})")),
        2 => (name(), literal()).prop_map(|(n, v)| format!("link {n} = {v}")),
        1 => Just("body = \"{{unsubscribe_url}} {{> footer}} {{#if kids}}x{{/if}}\"".to_string()),
    ]
    .boxed()
}

fn persona_item() -> BoxedStrategy<String> {
    let event_value = (name(), value())
        .prop_map(|(n, v)| format!("{n} = {v}"))
        .boxed();
    prop_oneof![
        5 => (name(), value()).prop_map(|(n, v)| format!("{n} = {v}")),
        1 => prop::collection::vec(name(), 0..3).prop_map(|l| format!("lists = [{}]", l.join(", "))),
        1 => prop::collection::vec(string(), 0..3).prop_map(|l| format!("tags = [{}]", l.join(", "))),
        2 => expr().prop_map(|e| format!("expect {e}")),
        2 => (name(), prop::option::of(items(event_value, 3)), term()).prop_map(|(ev, fields, t)| match fields {
            Some(f) => format!("event {ev} {f} at {t}"),
            None => format!("event {ev} at {t}"),
        }),
    ]
    .boxed()
}

fn scenario_item() -> BoxedStrategy<String> {
    let trigger = prop_oneof![
        name().prop_map(|l| format!("trigger joined {l}")),
        (name(), prop::option::of(expr())).prop_map(|(e, w)| match w {
            Some(w) => format!("trigger event {e} where {w}"),
            None => format!("trigger event {e}"),
        }),
        name().prop_map(|s| format!("trigger entered {s}")),
        (
            pick(&["monday", "sunday", "day"], &["funday"]),
            pick(&["09:00", "23:59"], &["24:00", "9:00"])
        )
            .prop_map(|(d, t)| format!("trigger every {d} {t}")),
        literal().prop_map(|t| format!("trigger once at {t}")),
        // v1.1 calendar triggers.
        (
            pick(
                &["weekday", "month on 1", "month on 28", "month on last"],
                &["month on 31", "month 3", "month on first"]
            ),
            pick(&["09:00", "23:59"], &["24:00", "9:00"])
        )
            .prop_map(|(d, t)| format!("trigger every {d} {t}")),
        (
            pick(
                &["2026-12-01", "2027-03-28"],
                &["2026-02-30", "2026-12-01T09:00Z"]
            ),
            pick(&["09:00 local", "02:30 local"], &["09:00", "local"])
        )
            .prop_map(|(d, t)| format!("trigger once at {d} {t}")),
    ];
    let header = prop_oneof![
        expr().prop_map(|e| format!("audience {e}")),
        pick(
            &["reentry never", "reentry always", "reentry after 30d"],
            &["reentry sometimes"]
        ),
        expr().prop_map(|e| format!("exit when {e}")),
        (name(), duration()).prop_map(|(e, d)| format!("goal {e} within {d}")),
        // v1.1 goals with a condition and a value, and `joined` goals.
        (name(), expr(), duration(), prop::option::of(name())).prop_map(|(e, w, d, v)| match v {
            Some(v) => format!("goal {e} where {w} within {d} value {v}"),
            None => format!("goal {e} where {w} within {d}"),
        }),
        (name(), duration()).prop_map(|(l, d)| format!("goal joined {l} within {d}")),
    ];
    prop_oneof![2 => trigger, 2 => header, 6 => step()].boxed()
}

fn cadence_item() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (name(), prop::option::of(duration())).prop_map(|(t, a)| match a {
            Some(a) => format!("touch {t} after {a}"),
            None => format!("touch {t}"),
        }),
        1 => expr().prop_map(|e| format!("stop when {e}")),
        1 => duration().prop_map(|d| format!("spacing = {d}")),
    ]
    .boxed()
}

fn pressure_item() -> BoxedStrategy<String> {
    let count = pick(
        &["0", "1", "3", "100"],
        &["-1", "1.5", "99999999999999999999"],
    );
    let scope = pick(&["email", "sms", "push", "all"], &["task", "fax"]);
    let clock = || pick(&["21:00", "08:00", "00:00", "23:59"], &["24:00", "12:60"]);
    prop_oneof![
        3 => (scope, count.clone(), duration()).prop_map(|(c, n, w)| format!("{c} max {n} per {w}")),
        1 => duration().prop_map(|g| format!("gap {g}")),
        1 => (clock(), clock()).prop_map(|(a, b)| format!("quiet {a} to {b}")),
        1 => pick(&["defer", "drop"], &["panic"]).prop_map(|a| format!("on excess {a}")),
        1 => (count, duration()).prop_map(|(n, w)| format!("under below {n} per {w}")),
    ]
    .boxed()
}

fn declaration() -> BoxedStrategy<String> {
    let workspace_attr = (
        pick(&["name", "timezone", "from", "address"], &["colour"]),
        prop_oneof![
            3 => string(),
            1 => pick(&["\"Europe/Paris\"", "\"UTC\"", "\"America/New_York\""], &["\"Mars/Base\"", "\"\""]),
        ],
    )
        .prop_map(|(k, v)| format!("{k} = {v}"))
        .boxed();
    prop_oneof![
        1 => items(workspace_attr, 5).prop_map(|b| format!("workspace {b}")),
        3 => items(field(), 8).prop_map(|b| format!("contact {b}")),
        1 => (name(), items(field(), 4)).prop_map(|(n, b)| format!("event {n} {b}")),
        1 => name().prop_map(|n| format!("list {n}")),
        1 => (name(), items(step(), 3)).prop_map(|(n, b)| format!("list {n} {{ on join {b} }}")),
        3 => (name(), expr()).prop_map(|(n, e)| format!("segment {n} = {e}")),
        2 => (prop::bool::weighted(0.3), name(), items(persona_item(), 6)).prop_map(|(neg, n, b)| {
            format!("/// doc \u{e9}\n{}persona {n} {b}", if neg { "negative " } else { "" })
        }),
        2 => (name(), pick(CHANNELS, &["fax", "Email"]), items(template_attribute(), 5))
            .prop_map(|(n, c, b)| format!("template {n} : {c} {b}")),
        3 => (name(), items(scenario_item(), 6)).prop_map(|(n, b)| format!("scenario {n} {b}")),
        1 => (name(), items(cadence_item(), 4)).prop_map(|(n, b)| format!("cadence {n} {b}")),
        1 => items(pressure_item(), 5).prop_map(|b| format!("pressure {b}")),
    ]
    .boxed()
}

/// A project of one to three files of generated declarations; most have a
/// contact schema so that the checker goes past E0103.
fn generated_project() -> impl Strategy<Value = Vec<(String, String)>> {
    let schema = "contact {\n  email: email\n  phone: phone?\n  country: text\n  plan: enum(free, pro, team)\n  \
                  signup_at: timestamp\n  ltv: number\n  kids: bool?\n  interests: set<text>\n  tz: timezone?\n}\n\
                  event purchase { amount: number, sku: text }\nlist prospects\nlist customers\n";
    let file = prop::collection::vec(declaration(), 0..6).prop_map(|d| d.join("\n\n") + "\n");
    (prop::collection::vec(file, 1..4), prop::bool::weighted(0.7)).prop_map(
        move |(files, with_schema)| {
            let mut out: Vec<(String, String)> = files
                .into_iter()
                .enumerate()
                .map(|(i, text)| (format!("gen{i}.camp"), text))
                .collect();
            if with_schema {
                out.push(("schema.camp".to_string(), schema.to_string()));
            }
            out
        },
    )
}

/// Relance tokens glued together with random separators.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        3 => select(KEYWORDS).prop_map(str::to_string),
        3 => select(WORDS).prop_map(str::to_string),
        4 => select(PUNCTUATION).prop_map(str::to_string),
        3 => select(LITERALS).prop_map(str::to_string),
        1 => select(CHARS).prop_map(str::to_string),
    ];
    let sep = select(&["", " ", " ", "\n", ", ", "\t"][..]);
    prop::collection::vec((token, sep), 0..80)
        .prop_map(|v| v.into_iter().map(|(t, s)| format!("{t}{s}")).collect())
}

fn single(text: String) -> Vec<(String, String)> {
    vec![("fuzz.camp".to_string(), text)]
}

// ------------------------------------------------------------ properties

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..10)
}

#[test]
fn mutated_campaigns_never_break_the_front_end() {
    property("mutated campaigns", 160, mutations, |m| {
        let files = mutated(&m);
        check_files(&files)?;
        // A chain appended last is intact: `fz0` holds for the persona in
        // France, so every link does, however deep (no cut-off answers
        // false; past the limit the project is refused with E0020).
        if let Some(Mutation::Chain { .. }) = m.last() {
            let sources = source_map(&files);
            let checked = relance::driver::check_sources(&sources, Problems::new(), 1);
            for d in &checked.diagnostics {
                prop_assert!(
                    !(d.code == relance::diagnostics::Code::E0403 && d.message.contains("`fz_p`")),
                    "a chain's expectation reported false: {d}"
                );
            }
        }
        Ok(())
    });
}

#[test]
fn mutated_campaigns_check_the_same_on_any_thread_count() {
    property("thread count", 16, mutations, |m| {
        check_threads_agree(&mutated(&m))
    });
}

#[test]
fn arbitrary_text_never_panics() {
    property(
        "arbitrary text",
        300,
        || ".*",
        |text: String| check_files(&single(text)),
    );
}

#[test]
fn arbitrary_lines_never_panic() {
    // `.*` never produces a newline; real files have many.
    property(
        "arbitrary lines",
        200,
        || prop::collection::vec(".{0,30}", 0..12).prop_map(|l| l.join("\n")),
        |text: String| check_files(&single(text)),
    );
}

#[test]
fn token_soup_never_panics() {
    property("token soup", 300, token_soup, |text| {
        check_files(&single(text))
    });
}

#[test]
fn generated_declarations_never_panic() {
    property("generated declarations", 300, generated_project, |files| {
        check_files(&files)
    });
}

/// Generated declarations next to the real schema, lists and templates, so
/// that more names resolve and the type and flow checks run.
#[test]
fn generated_declarations_next_to_the_sample_never_panic() {
    property(
        "generated next to the sample",
        24,
        generated_project,
        |extra| {
            let mut files = sample().to_vec();
            // The sample has its own schema.
            files.extend(extra.into_iter().filter(|(path, _)| path != "schema.camp"));
            check_files(&files)
        },
    );
}

/// The unmodified sample is clean: the baseline the mutations start from.
#[test]
fn sample_is_clean() {
    let sources = source_map(sample());
    let checked = relance::driver::check_sources(&sources, Problems::new(), 2);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    assert_eq!(checked.files.len(), sample().len());
}

// ------------------------------------------------------------ regressions

/// Checks one file in-process on a large stack, returning the panic if any.
fn panics_on(text: &str) -> Option<String> {
    let text = text.to_string();
    std::thread::Builder::new()
        .stack_size(64 * 1024 * 1024)
        .spawn(move || {
            catch_unwind(|| {
                let sources = source_map(&single(text));
                relance::driver::check_sources(&sources, Problems::new(), 1);
            })
            .err()
            .map(|e| {
                e.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| e.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            })
        })
        .unwrap()
        .join()
        .unwrap()
}

/// Found by `arbitrary_text_never_panics` (minimal input `"\u{feff}!"`):
/// a file saved with a UTF-8 byte-order mark whose first word had a typo
/// panicked in `syntax::errors::previous_word` (`relance check` exited 101)
/// instead of reporting E0001.
#[test]
fn bom_before_a_syntax_error_does_not_panic() {
    for text in ["\u{feff}!", "\u{feff}segmnt french = true\n", "\u{feff}}\n"] {
        assert_eq!(panics_on(text), None, "input {text:?}");
    }
}

#[test]
fn bom_before_valid_text_is_fine() {
    assert_eq!(panics_on("\u{feff}contact {\n  email: email\n}\n"), None);
}
