//! Diagnostics → text: miette's graphical report for people, the JSON
//! shape of §11 for tools, and GitHub Actions workflow commands for CI.

use std::fmt;
use std::sync::Arc;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
use serde::Serialize;

use super::{Diagnostic, Label, Severity, SourceMap};

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

/// A named source whose reported columns count characters, as §11 asks
/// (miette's own `str` source counts bytes in the report header).
struct Source {
    name: String,
    text: Arc<str>,
}

impl SourceCode for Source {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.as_ref().read_span(span, before, after)?;
        let column = if before == 0 && after == 0 {
            let mut offset = span.offset().min(self.text.len());
            while !self.text.is_char_boundary(offset) {
                offset -= 1;
            }
            let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
            self.text[line_start..offset].chars().count()
        } else {
            inner.column()
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
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
    source: Option<Source>,
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

fn labeled(label: &Label, primary: bool) -> LabeledSpan {
    let span = SourceSpan::new((label.span.start as usize).into(), label.span.len());
    if primary {
        LabeledSpan::new_primary_with_span(Some(label.message.clone()), span)
    } else {
        LabeledSpan::new_with_span(Some(label.message.clone()), span)
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
    let file = sources.get(primary.span.file);
    report.source = Some(Source {
        name: display_path(prefix, &file.path),
        text: file.text.clone(),
    });
    report.labels.push(labeled(primary, true));
    for l in &d.secondary {
        if l.span.file == primary.span.file {
            report.labels.push(labeled(l, false));
        } else {
            let other = sources.get(l.span.file);
            report.related.push(Report {
                message: l.message.clone(),
                code: None,
                severity: miette::Severity::Advice,
                help: None,
                labels: vec![labeled(l, true)],
                source: Some(Source {
                    name: display_path(prefix, &other.path),
                    text: other.text.clone(),
                }),
                related: Vec::new(),
            });
        }
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

/// miette's graphical report of every diagnostic, then a summary line.
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
    for d in diagnostics {
        let report = to_report(d, sources, prefix);
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
        out.push('\n');
    }
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
