//! Diagnostics as data: codes, spans, the source map, and the sink every
//! pass writes into. Turning them into text happens in [`render`], at the edge.

pub mod ci;
mod codes;
pub mod render;

pub use codes::{Code, Explanation};

use std::fmt;
use std::sync::Arc;

/// Index of a file in the [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

/// A byte range inside one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// A value with the span of the source text it came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

/// One source file of a project, with its line index computed once
/// (shared by clones: `relance lsp` keeps the files an edit did not touch).
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Path relative to the project folder, with `/` separators.
    pub path: String,
    /// Shared so that rendered reports can hold the text cheaply.
    pub text: Arc<str>,
    /// False for a file that could not be read as UTF-8 text: `text` then
    /// holds only what can be shown, and the file is not parsed.
    pub readable: bool,
    /// False for template files (`.hbs`): shown in diagnostics, not parsed
    /// as campaign source.
    pub camp: bool,
    /// Where each line starts: after `\n`, after `\r\n`, and after a `\r`
    /// alone (old Mac line ends), as the grammar reads them.
    line_starts: Arc<[u32]>,
    /// (byte offset, characters before it) about every [`CHAR_MARK`]
    /// bytes: a column on a long line is counted from the nearest mark,
    /// not from the start of the line.
    char_marks: Arc<[(u32, u32)]>,
}

/// Bytes between two entries of `SourceFile::char_marks`.
const CHAR_MARK: usize = 1024;

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        let text: Arc<str> = text.into();
        let bytes = text.as_bytes();
        let mut line_starts = vec![0u32];
        line_starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
                .map(|(i, _)| i as u32 + 1),
        );
        let mut char_marks = vec![(0u32, 0u32)];
        let (mut at, mut chars) = (0usize, 0usize);
        while at + CHAR_MARK < text.len() {
            let mut next = at + CHAR_MARK;
            while !text.is_char_boundary(next) {
                next -= 1;
            }
            chars += text[at..next].chars().count();
            char_marks.push((next as u32, chars as u32));
            at = next;
        }
        SourceFile {
            path: path.into(),
            text,
            readable: true,
            camp: true,
            line_starts: line_starts.into(),
            char_marks: char_marks.into(),
        }
    }

    /// A template file (`file("…")` or a partial), kept for diagnostics.
    pub fn template(path: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        SourceFile {
            camp: false,
            ..SourceFile::new(path, text)
        }
    }

    /// A file that could not be read; `shown` is what can be displayed.
    pub fn unreadable(path: impl Into<String>, shown: impl Into<Arc<str>>) -> SourceFile {
        SourceFile {
            readable: false,
            ..SourceFile::new(path, shown)
        }
    }

    /// 1-based line and column (columns count characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = offset.min(self.text.len() as u32);
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line] as usize;
        let mut end = offset as usize;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let column = self.chars_before(end) - self.chars_before(start) + 1;
        (line + 1, column)
    }

    /// The number of characters before byte `at` (a character boundary).
    fn chars_before(&self, at: usize) -> usize {
        let i = self
            .char_marks
            .partition_point(|&(b, _)| b as usize <= at)
            .saturating_sub(1);
        let (b, c) = self.char_marks[i];
        c as usize + self.text[b as usize..at].chars().count()
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Byte range of a 1-based line, without its line terminator (`\n`,
    /// `\r\n` or `\r`).
    pub fn line_range(&self, line: usize) -> std::ops::Range<usize> {
        let start = self.line_starts[line - 1] as usize;
        let bytes = self.text.as_bytes();
        let mut end = self
            .line_starts
            .get(line)
            .map(|&e| e as usize)
            .unwrap_or(self.text.len());
        if end > start && self.line_starts.get(line).is_some() {
            end -= 1; // `\n`, or a `\r` alone
            if end > start && bytes[end] == b'\n' && bytes[end - 1] == b'\r' {
                end -= 1;
            }
        }
        start..end
    }
}

/// All files of a project.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn text(&self, span: Span) -> &str {
        let file = self.get(span.file);
        &file.text[span.start as usize..span.end as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A span with what to say about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One problem found in a project.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// The main place; `None` only for project-wide problems (no files at all).
    pub primary: Option<Label>,
    /// Further places, possibly in other files.
    pub secondary: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn at(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.primary = Some(Label {
            span,
            message: label.into(),
        });
        self
    }

    pub fn also(mut self, span: Span, label: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label {
            span,
            message: label.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    fn sort_key(&self) -> (u32, u32, u32, Code, &str) {
        match &self.primary {
            Some(l) => (
                l.span.file.0,
                l.span.start,
                l.span.end,
                self.code,
                &self.message,
            ),
            None => (0, 0, 0, self.code, &self.message),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The sink every pass writes into: problems are collected, not thrown.
#[derive(Debug, Default)]
pub struct Problems {
    list: Vec<Diagnostic>,
}

impl Problems {
    pub fn new() -> Problems {
        Problems::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.list.push(diagnostic);
    }

    /// Adds a diagnostic if there is one.
    pub fn extend_one(&mut self, diagnostic: Option<Diagnostic>) {
        self.list.extend(diagnostic);
    }

    pub fn extend(&mut self, other: Problems) {
        self.list.extend(other.list);
    }

    pub fn errors(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.list.len() - self.errors()
    }

    pub fn has_errors(&self) -> bool {
        self.errors() > 0
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.list.iter()
    }

    /// Sorted by place, then code, with exact duplicates removed:
    /// the order users and CI see is stable.
    pub fn into_sorted(mut self, sources: &SourceMap) -> Vec<Diagnostic> {
        self.list.sort_by(|a, b| {
            let path = |d: &Diagnostic| {
                d.primary
                    .as_ref()
                    .map(|l| sources.get(l.span.file).path.as_str())
            };
            path(a)
                .cmp(&path(b))
                .then_with(|| a.sort_key().cmp(&b.sort_key()))
        });
        self.list.dedup();
        self.list
    }
}

// The work `did you mean` may do on this thread, in candidates looked at
// plus edit-distance cells computed; unlimited unless a caller sets it
// with `with_suggestion_budget`.
thread_local! {
    static SUGGESTION_BUDGET: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

/// The suggestion work one `relance check` may do: enough for thousands of
/// unknown names against thousands of declarations, small enough that a
/// flood of unknown names costs about a second, not minutes.
pub const SUGGESTION_BUDGET_PER_CHECK: u64 = 5_000_000;

/// Runs `f` with at most `units` of suggestion work on this thread; once
/// spent, [`did_you_mean`] answers `None` (help falls back to its general
/// advice). Restores the previous budget afterwards.
pub fn with_suggestion_budget<R>(units: u64, f: impl FnOnce() -> R) -> R {
    struct Restore(u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            SUGGESTION_BUDGET.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(SUGGESTION_BUDGET.with(|b| b.replace(units)));
    f()
}

/// Whether [`did_you_mean`] may still look for suggestions: a caller that
/// builds a candidate list can skip it when not.
pub fn suggestions_left() -> bool {
    SUGGESTION_BUDGET.with(|b| b.get() > 0)
}

/// Takes `cost` from the budget; false (and the budget emptied) when it
/// does not hold that much.
fn spend(cost: u64) -> bool {
    SUGGESTION_BUDGET.with(|b| match b.get().checked_sub(cost) {
        Some(left) => {
            b.set(left);
            true
        }
        None => {
            b.set(0);
            false
        }
    })
}

/// The closest candidate to `name` by edit distance, if close enough to be a
/// plausible typo. Candidates whose length differs by more than the allowed
/// distance are skipped without computing it; the work is charged to the
/// thread's suggestion budget ([`with_suggestion_budget`]).
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if !suggestions_left() {
        return None;
    }
    let len = name.chars().count();
    let limit = (len / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == name {
            continue;
        }
        // A byte-length bound first: a character is at most 4 bytes.
        if c.len() + limit < len || c.len() > (len + limit) * 4 {
            if !spend(1) {
                return None;
            }
            continue;
        }
        let clen = c.chars().count();
        if clen.abs_diff(len) > limit {
            if !spend(1) {
                return None;
            }
            continue;
        }
        if !spend(16 + (len as u64) * (clen as u64)) {
            return None;
        }
        let d = edit_distance(name, c);
        if d <= limit && best.is_none_or(|b| (d, c) < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `did you mean` as help text, or `fallback` when nothing is close.
pub fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    fallback: impl FnOnce() -> Option<String>,
) -> Option<String> {
    match did_you_mean(name, candidates) {
        Some(c) => Some(format!("did you mean `{c}`?")),
        None => fallback(),
    }
}

/// Edit distance over characters, counting a swap of two neighbours as
/// one edit (optimal string alignment): `sned` is one edit from `send`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    if a.is_ascii() && b.is_ascii() {
        osa(a.as_bytes(), b.as_bytes())
    } else {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        osa(&a, &b)
    }
}

/// Optimal string alignment over three rows (a swap looks two rows back):
/// one allocation, memory linear in `b`.
fn osa<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let w = b.len() + 1;
    let mut rows = vec![0usize; 3 * w];
    let (mut before, mut prev, mut cur) = (0, w, 2 * w);
    for (j, cell) in rows[prev..prev + w].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        rows[cur] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (rows[prev + j] + 1)
                .min(rows[cur + j - 1] + 1)
                .min(rows[prev + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(rows[before + j - 2] + 1);
            }
            rows[cur + j] = v;
        }
        (before, prev, cur) = (prev, cur, before);
    }
    rows[prev + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("a.camp", "ab\nçé x\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        // "çé " is 5 bytes, 3 characters.
        assert_eq!(f.line_col(8), (2, 4));
        assert_eq!(f.line_col(100), (3, 1));
    }

    #[test]
    fn suggestions_are_close_names_only() {
        assert_eq!(did_you_mean("contry", ["country", "plan"]), Some("country"));
        assert_eq!(did_you_mean("zzz", ["country", "plan"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("sned", "send"), 1);
    }

    #[test]
    fn edit_distance_matches_the_full_table() {
        for (a, b, d) in [
            ("", "", 0),
            ("", "abc", 3),
            ("abc", "", 3),
            ("ab", "ba", 1),
            ("abcd", "badc", 2),
            ("flaw", "lawn", 2),
            ("ça", "ac", 2),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} / {b}");
        }
    }

    #[test]
    fn a_spent_budget_stops_suggestions_and_is_restored() {
        let names: Vec<String> = (0..100).map(|i| format!("name{i}")).collect();
        let found = with_suggestion_budget(10, || {
            did_you_mean("name5x", names.iter().map(String::as_str))
        });
        assert_eq!(found, None, "ten units cannot look at a hundred names");
        assert!(suggestions_left(), "the budget is restored afterwards");
        assert_eq!(
            did_you_mean("nane5", names.iter().map(String::as_str)),
            Some("name5")
        );
    }

    #[test]
    fn a_lone_cr_ends_a_line_as_lf_and_crlf_do() {
        for text in [
            "a\nb\nc\nnope",
            "a\r\nb\r\nc\r\nnope",
            "a\rb\rc\rnope",
            "a\rb\r\nc\nnope",
        ] {
            let f = SourceFile::new("a.camp", text);
            let at = text.find("nope").unwrap() as u32;
            assert_eq!(f.line_col(at), (4, 1), "{text:?}");
            assert_eq!(f.line_count(), 4, "{text:?}");
            assert_eq!(&f.text[f.line_range(2)], "b", "{text:?}");
            assert_eq!(&f.text[f.line_range(4)], "nope", "{text:?}");
        }
    }

    #[test]
    fn columns_on_a_long_line_count_characters() {
        let text = format!("x\n{}{}z", "é".repeat(3000), "a".repeat(5000));
        let f = SourceFile::new("a.camp", text.as_str());
        let z = text.find('z').unwrap() as u32;
        assert_eq!(f.line_col(z), (2, 8001));
        assert_eq!(f.line_col(z - 4999), (2, 3002));
    }

    #[test]
    fn line_range_strips_crlf() {
        let f = SourceFile::new("a.camp", "ab\r\ncd");
        assert_eq!(&f.text[f.line_range(1)], "ab");
        assert_eq!(&f.text[f.line_range(2)], "cd");
    }
}
