//! Diagnostics → text: miette's graphical report for people, the JSON
//! shape of §11 for tools, and GitHub Actions workflow commands for CI.

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
use serde::Serialize;

use super::{Diagnostic, Label, Severity, SourceFile, SourceMap};

/// How `relance check` prints its findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Github,
}

/// Options of the human renderer.
#[derive(Clone, Copy, Debug)]
pub struct HumanStyle {
    pub color: bool,
    pub unicode: bool,
    pub width: usize,
}

impl HumanStyle {
    /// Plain, stable output for files and tests.
    pub fn plain() -> HumanStyle {
        HumanStyle {
            color: false,
            unicode: true,
            width: 100,
        }
    }
}

/// The part of a source file one report shows, as miette reads it: the
/// lines of its labels with one line of context, every long line clipped
/// around the labels (`…` marks what is left out). miette reads the whole
/// text it is given once per label and prints whole lines, so the file
/// itself would make a report cost as much as the file, per diagnostic.
///
/// Label spans are translated into this text; line numbers and the
/// header's column stay those of the real file (columns count characters,
/// as §11 asks).
struct Window {
    name: String,
    text: String,
    lines: Vec<WindowLine>,
    /// The real (0-based line, 0-based character column) of each label
    /// start, by its offset in `text`.
    starts: Vec<(usize, usize, usize)>,
}

struct WindowLine {
    /// Byte range in `Window::text`, without the line break.
    start: usize,
    end: usize,
    /// 0-based line number in the real file.
    line: usize,
}

/// Lines up to this many bytes are shown whole.
const LINE_SHOWN_WHOLE: usize = 200;
/// Bytes kept on each side of a label's start and end on a longer line.
const LINE_MARGIN: usize = 60;
/// Labels at most this many lines apart are shown in one snippet with the
/// lines between; farther apart, each in its own.
const LABEL_GAP: usize = 12;
/// A label spanning more lines is shown on its first line only.
const LABEL_LINES: usize = 8;

impl Window {
    /// The window of `file` that shows `spans` (byte ranges in the file);
    /// returns it and the spans translated into it.
    fn new(
        name: String,
        file: &SourceFile,
        spans: &[(usize, usize)],
    ) -> (Window, Vec<(usize, usize)>) {
        let text_len = file.text.len();
        let last_line = file.line_count();
        // Labels as (first line, last line, start, end), clipped.
        let labels: Vec<(usize, usize, usize, usize)> = spans
            .iter()
            .map(|&(start, end)| {
                let start = start.min(text_len);
                let end = end.clamp(start, text_len);
                let (l0, _) = file.line_col(start as u32);
                let (l1, _) = file.line_col(end.saturating_sub(1).max(start) as u32);
                if l1 > l0 + LABEL_LINES {
                    let line_end = file.line_range(l0).end.max(start);
                    let end = floor_char(&file.text, line_end.min(start + LINE_MARGIN));
                    (l0, l0, start, end)
                } else {
                    (l0, l1, start, end)
                }
            })
            .collect();
        let mut wanted: Vec<usize> = labels
            .iter()
            .flat_map(|&(l0, l1, ..)| l0.saturating_sub(1).max(1)..=(l1 + 1).min(last_line))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Labels a few lines apart share one snippet, as miette shows them.
        let mut filled = Vec::with_capacity(wanted.len());
        for (i, &line) in wanted.iter().enumerate() {
            if let Some(&next) = wanted.get(i + 1)
                && next - line <= LABEL_GAP
            {
                filled.extend(line..next);
            } else {
                filled.push(line);
            }
        }
        let wanted = filled;

        let mut window = Window {
            name,
            text: String::new(),
            lines: Vec::with_capacity(wanted.len()),
            starts: Vec::new(),
        };
        // Per shown line: (real start, real end, window start) pieces.
        let mut pieces: Vec<Vec<(usize, usize, usize)>> = Vec::with_capacity(wanted.len());
        for (i, &line) in wanted.iter().enumerate() {
            if i > 0 {
                window.text.push('\n');
            }
            let range = file.line_range(line);
            let kept: Vec<(usize, usize)> = if range.len() <= LINE_SHOWN_WHOLE {
                vec![(range.start, range.end)]
            } else {
                let mut points: Vec<usize> = labels
                    .iter()
                    .flat_map(|&(l0, l1, s, e)| {
                        [(l0 == line).then_some(s), (l1 == line).then_some(e)]
                    })
                    .flatten()
                    .filter(|p| range.contains(p) || *p == range.end)
                    .collect();
                if points.is_empty() {
                    points.push(range.start);
                }
                points.sort_unstable();
                let mut kept: Vec<(usize, usize)> = Vec::new();
                for p in points {
                    let a = floor_char(&file.text, p.saturating_sub(LINE_MARGIN).max(range.start));
                    let b = floor_char(&file.text, (p + LINE_MARGIN).min(range.end));
                    match kept.last_mut() {
                        Some(last) if a <= last.1 => last.1 = last.1.max(b),
                        _ => kept.push((a, b)),
                    }
                }
                kept
            };
            let start = window.text.len();
            let mut line_pieces = Vec::with_capacity(kept.len());
            let mut at = range.start;
            for &(a, b) in &kept {
                if a > at {
                    window.text.push('…');
                }
                line_pieces.push((a, b, window.text.len()));
                window.text.push_str(&file.text[a..b]);
                at = b;
            }
            if at < range.end {
                window.text.push('…');
            }
            window.lines.push(WindowLine {
                start,
                end: window.text.len(),
                line: line - 1,
            });
            pieces.push(line_pieces);
        }
        let to_window = |line: usize, offset: usize| -> usize {
            let i = wanted.binary_search(&line).unwrap_or(0);
            let line_pieces = &pieces[i];
            for &(a, b, w) in line_pieces {
                if (a..=b).contains(&offset) {
                    return w + (offset - a);
                }
            }
            line_pieces
                .first()
                .map_or(window.lines[i].start, |&(_, _, w)| w)
        };
        let mut translated = Vec::with_capacity(labels.len());
        let mut starts = Vec::with_capacity(labels.len());
        for &(l0, l1, s, e) in &labels {
            let ws = to_window(l0, s);
            let we = to_window(l1, e).max(ws);
            let (_, column) = file.line_col(s as u32);
            starts.push((ws, l0 - 1, column - 1));
            translated.push((ws, we));
        }
        window.starts = starts;
        (window, translated)
    }

    /// The index of the shown line holding `offset`.
    fn line_at(&self, offset: usize) -> usize {
        self.lines
            .partition_point(|l| l.start <= offset)
            .saturating_sub(1)
    }
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        if self.lines.is_empty() || span.offset() > self.text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let first = self.line_at(span.offset());
        let last = self.line_at(
            (span.offset() + span.len())
                .saturating_sub(1)
                .max(span.offset()),
        );
        // Context lines only where the real lines follow each other.
        let mut top = first;
        while top > first.saturating_sub(before)
            && self.lines[top - 1].line + 1 == self.lines[top].line
        {
            top -= 1;
        }
        let mut bottom = last;
        while bottom < (last + after).min(self.lines.len() - 1)
            && self.lines[bottom].line + 1 == self.lines[bottom + 1].line
        {
            bottom += 1;
        }
        let (start, column) = if before == 0 {
            let column = self
                .starts
                .iter()
                .find(|s| s.0 == span.offset())
                .map(|s| s.2)
                .unwrap_or_else(|| {
                    self.text[self.lines[first].start..span.offset()]
                        .chars()
                        .count()
                });
            (span.offset(), column)
        } else {
            (self.lines[top].start, 0)
        };
        let mut end = self.lines[bottom].end;
        if end < self.text.len() {
            end += 1; // the line break, as miette's own sources include it
        }
        let line = self.lines[if before == 0 { first } else { top }].line;
        // miette joins two snippets when the first's lines reach the
        // second's: count to the end of the run of consecutive lines, so
        // snippets join exactly when the window holds the lines between.
        let mut run_end = bottom;
        while run_end + 1 < self.lines.len()
            && self.lines[run_end].line + 1 == self.lines[run_end + 1].line
        {
            run_end += 1;
        }
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            &self.text.as_bytes()[start..end],
            SourceSpan::new(start.into(), end - start),
            line,
            column,
            self.lines[run_end].line - line + 1,
        )))
    }
}

/// A diagnostic in miette's terms; labels in other files become related
/// reports, each with its own source.
struct Report {
    message: String,
    code: Option<String>,
    severity: miette::Severity,
    help: Option<String>,
    labels: Vec<LabeledSpan>,
    source: Option<Window>,
    related: Vec<Report>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.code
            .as_ref()
            .map(|c| Box::new(c) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn miette::Diagnostic),
            ))
        }
    }
}

fn labeled(message: &str, (start, end): (usize, usize), primary: bool) -> LabeledSpan {
    let span = SourceSpan::new(start.into(), end - start);
    if primary {
        LabeledSpan::new_primary_with_span(Some(message.to_string()), span)
    } else {
        LabeledSpan::new_with_span(Some(message.to_string()), span)
    }
}

fn to_report(d: &Diagnostic, sources: &SourceMap, prefix: &str) -> Report {
    let severity = match d.severity() {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
    };
    let mut report = Report {
        message: d.message.clone(),
        code: Some(d.code.to_string()),
        severity,
        help: d.help.clone(),
        labels: Vec::new(),
        source: None,
        related: Vec::new(),
    };
    let Some(primary) = &d.primary else {
        return report;
    };
    let span = |l: &Label| (l.span.start as usize, l.span.end as usize);
    let same: Vec<&Label> = std::iter::once(primary)
        .chain(
            d.secondary
                .iter()
                .filter(|l| l.span.file == primary.span.file),
        )
        .collect();
    let file = sources.get(primary.span.file);
    let spans: Vec<(usize, usize)> = same.iter().map(|l| span(l)).collect();
    let (window, shown) = Window::new(display_path(prefix, &file.path), file, &spans);
    report.source = Some(window);
    for (i, (l, s)) in same.iter().zip(shown).enumerate() {
        report.labels.push(labeled(&l.message, s, i == 0));
    }
    for l in d
        .secondary
        .iter()
        .filter(|l| l.span.file != primary.span.file)
    {
        let other = sources.get(l.span.file);
        let (window, shown) = Window::new(display_path(prefix, &other.path), other, &[span(l)]);
        report.related.push(Report {
            message: l.message.clone(),
            code: None,
            severity: miette::Severity::Advice,
            help: None,
            labels: vec![labeled(&l.message, shown[0], true)],
            source: Some(window),
            related: Vec::new(),
        });
    }
    report
}

/// `prefix/path`, the way a user who ran the command names the file.
pub fn display_path(prefix: &str, path: &str) -> String {
    if prefix.is_empty() || prefix == "." {
        path.to_string()
    } else {
        format!("{}/{}", prefix.trim_end_matches('/'), path)
    }
}

/// The human report shows at most this many diagnostics per file, then
/// says how many more there are (the summary line counts them all).
pub const HUMAN_PER_FILE: usize = 50;

/// miette's graphical report of each diagnostic (at most
/// [`HUMAN_PER_FILE`] per file, long lines clipped around the labels),
/// then a summary line.
pub fn human(
    diagnostics: &[Diagnostic],
    sources: &SourceMap,
    prefix: &str,
    style: HumanStyle,
) -> String {
    let theme = match (style.color, style.unicode) {
        (true, true) => GraphicalTheme::unicode(),
        (true, false) => GraphicalTheme::ascii(),
        (false, true) => GraphicalTheme::unicode_nocolor(),
        (false, false) => GraphicalTheme::none(),
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false)
        .with_context_lines(1);
    let mut out = String::new();
    // Diagnostics come sorted by file: count them per file as they pass.
    let more = |out: &mut String, file: Option<super::FileId>, hidden: usize| {
        if let (Some(f), 1..) = (file, hidden) {
            out.push_str(&format!(
                "… and {hidden} more in {}; use --format json for all\n\n",
                display_path(prefix, &sources.get(f).path)
            ));
        }
    };
    let (mut current, mut shown, mut hidden) = (None, 0usize, 0usize);
    for d in diagnostics {
        let file = d.primary.as_ref().map(|l| l.span.file);
        if file != current {
            more(&mut out, current, hidden);
            (current, shown, hidden) = (file, 0, 0);
        }
        if file.is_some() && shown >= HUMAN_PER_FILE {
            hidden += 1;
            continue;
        }
        shown += 1;
        let report = to_report(d, sources, prefix);
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
        out.push('\n');
    }
    more(&mut out, current, hidden);
    out.push_str(&summary(diagnostics));
    out.push('\n');
    out
}

/// "2 errors, 1 warning" or "no problems".
pub fn summary(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    if errors == 0 && warnings == 0 {
        return "no problems found".to_string();
    }
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    diagnostics: Vec<JsonDiagnostic<'a>>,
    errors: usize,
    warnings: usize,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'static str,
    severity: &'static str,
    message: &'a str,
    file: Option<&'a str>,
    line: Option<usize>,
    column: Option<usize>,
    end_line: Option<usize>,
    end_column: Option<usize>,
    help: Option<&'a str>,
    labels: Vec<JsonLabel<'a>>,
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    message: &'a str,
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
}

struct Place<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
}

fn place<'a>(label: &Label, sources: &'a SourceMap) -> Place<'a> {
    let file = sources.get(label.span.file);
    let (line, column) = file.line_col(label.span.start);
    let (end_line, end_column) = file.line_col(label.span.end);
    Place {
        file: &file.path,
        line,
        column,
        end_line,
        end_column,
    }
}

/// The JSON object of §11 (one line, `file` relative to the project).
pub fn json(diagnostics: &[Diagnostic], sources: &SourceMap) -> String {
    let out = JsonOutput {
        diagnostics: diagnostics
            .iter()
            .map(|d| {
                let p = d.primary.as_ref().map(|l| place(l, sources));
                JsonDiagnostic {
                    code: d.code.as_str(),
                    severity: d.severity().as_str(),
                    message: &d.message,
                    file: p.as_ref().map(|p| p.file),
                    line: p.as_ref().map(|p| p.line),
                    column: p.as_ref().map(|p| p.column),
                    end_line: p.as_ref().map(|p| p.end_line),
                    end_column: p.as_ref().map(|p| p.end_column),
                    help: d.help.as_deref(),
                    labels: d
                        .primary
                        .iter()
                        .chain(&d.secondary)
                        .map(|l| {
                            let p = place(l, sources);
                            JsonLabel {
                                message: &l.message,
                                file: p.file,
                                line: p.line,
                                column: p.column,
                                end_line: p.end_line,
                                end_column: p.end_column,
                            }
                        })
                        .collect(),
                }
            })
            .collect(),
        errors: diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .count(),
        warnings: diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Warning)
            .count(),
    };
    let mut s = serde_json::to_string_pretty(&out).unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

/// GitHub Actions workflow commands, one line per diagnostic.
pub fn github(diagnostics: &[Diagnostic], sources: &SourceMap, prefix: &str) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let command = match d.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = d.message.clone();
        for l in &d.secondary {
            let p = place(l, sources);
            message.push_str(&format!(
                "\n{}:{}:{}: {}",
                display_path(prefix, p.file),
                p.line,
                p.column,
                l.message
            ));
        }
        if let Some(h) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(h);
        }
        let title = format!("{} {}", d.code, d.code.title());
        match &d.primary {
            Some(l) => {
                let p = place(l, sources);
                out.push_str(&format!(
                    "::{command} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
                    escape_property(&display_path(prefix, p.file)),
                    p.line,
                    p.column,
                    p.end_line,
                    p.end_column,
                    escape_property(&title),
                    escape_data(&message)
                ));
            }
            None => out.push_str(&format!(
                "::{command} title={}::{}\n",
                escape_property(&title),
                escape_data(&message)
            )),
        }
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Code, SourceFile, Span};

    #[test]
    fn github_escapes_newlines_and_separators() {
        let mut sources = SourceMap::new();
        let f = sources.add(SourceFile::new("a,b.camp", "segment x = y\n"));
        let d = Diagnostic::new(Code::E0208, "unknown name `y`")
            .at(Span::new(f, 12, 13), "here")
            .help("50% sure:\nfix it");
        let out = github(&[d], &sources, "campaigns");
        assert_eq!(
            out,
            "::error file=campaigns/a%2Cb.camp,line=1,col=13,endLine=1,endColumn=14,title=E0208 unknown name::unknown name `y`%0Ahelp: 50%25 sure:%0Afix it\n"
        );
    }
}
