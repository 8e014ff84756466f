//! Places: byte offsets of the compiler against LSP positions (line and
//! column in UTF-16 code units, or in bytes when the client accepts
//! UTF-8), diagnostics against LSP diagnostics.

use std::path::{Path, PathBuf};

use lsp_types::{
    CodeDescription, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString,
    Position, Range, Url,
};

use crate::diagnostics::{Code, Diagnostic, Severity, SourceFile, SourceMap, Span};

/// How the client counts columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
}

/// The position of byte `offset` of `file`.
pub fn position(file: &SourceFile, offset: u32, enc: Encoding) -> Position {
    let text = &*file.text;
    let mut off = (offset as usize).min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    let (line, _) = file.line_col(off as u32);
    let start = file.line_range(line).start.min(off);
    let prefix = &text[start..off];
    let col = match enc {
        Encoding::Utf8 => prefix.len(),
        Encoding::Utf16 => prefix.encode_utf16().count(),
    };
    Position::new((line - 1) as u32, col as u32)
}

/// The byte offset of `pos` in `file`, clamped to the file and to the end
/// of its line.
pub fn offset(file: &SourceFile, pos: Position, enc: Encoding) -> usize {
    let line = pos.line as usize + 1;
    if line > file.line_count() {
        return file.text.len();
    }
    let range = file.line_range(line);
    let text = &file.text[range.clone()];
    let mut units = 0usize;
    for (i, c) in text.char_indices() {
        if units >= pos.character as usize {
            return range.start + i;
        }
        units += match enc {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
        };
    }
    range.end
}

pub fn range(file: &SourceFile, start: u32, end: u32, enc: Encoding) -> Range {
    Range::new(position(file, start, enc), position(file, end, enc))
}

pub fn span_range(sources: &SourceMap, span: Span, enc: Encoding) -> Range {
    range(sources.get(span.file), span.start, span.end, enc)
}

/// A file URL from a path (absolute, or made so).
pub fn url(path: &Path) -> Option<Url> {
    let abs = std::path::absolute(path).ok()?;
    Url::from_file_path(abs).ok()
}

pub fn path_of(url: &Url) -> Option<PathBuf> {
    if url.scheme() != "file" {
        return None;
    }
    url.to_file_path().ok()
}

/// Where the explanation of `code` can be read: `base` + `CODE.md` when the
/// client gave a base (`initializationOptions.explainBaseUrl`), else a
/// file written once into the temporary folder from the explanation
/// embedded in the binary (`relance explain CODE` prints the same text).
pub fn explanation_url(code: Code, base: Option<&str>) -> Option<Url> {
    if let Some(base) = base {
        let mut b = base.to_string();
        if !b.ends_with('/') {
            b.push('/');
        }
        return Url::parse(&format!("{b}{}.md", code.as_str())).ok();
    }
    let dir = std::env::temp_dir().join(format!("relance-{}-explain", env!("CARGO_PKG_VERSION")));
    let file = dir.join(format!("{}.md", code.as_str()));
    if !file.is_file() {
        let _ = std::fs::create_dir_all(&dir);
        // Written beside, then renamed: a reader never sees half a file.
        let tmp = dir.join(format!(".{}.{}.tmp", code.as_str(), std::process::id()));
        if std::fs::write(&tmp, code.explanation()).is_ok() {
            let _ = std::fs::rename(&tmp, &file);
        }
    }
    url(&file)
}

/// The LSP form of one diagnostic of `relance check`: the same code,
/// message, label, help and related places.
pub fn diagnostic(
    d: &Diagnostic,
    sources: &SourceMap,
    root: &Path,
    enc: Encoding,
    explain_base: Option<&str>,
) -> lsp_types::Diagnostic {
    let range = d
        .primary
        .as_ref()
        .map(|l| span_range(sources, l.span, enc))
        .unwrap_or_default();
    let mut message = d.message.clone();
    if let Some(l) = &d.primary
        && !l.message.is_empty()
    {
        message.push('\n');
        message.push_str(&l.message);
    }
    if let Some(h) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(h);
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .filter_map(|l| {
            let f = sources.get(l.span.file);
            Some(DiagnosticRelatedInformation {
                location: Location::new(
                    url(&root.join(&f.path))?,
                    span_range(sources, l.span, enc),
                ),
                message: if l.message.is_empty() {
                    "see also".to_string()
                } else {
                    l.message.clone()
                },
            })
        })
        .collect();
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity() {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        code_description: explanation_url(d.code, explain_base)
            .map(|href| CodeDescription { href }),
        source: Some("relance".to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: d.help.as_ref().map(|h| serde_json::json!({ "help": h })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units_or_bytes() {
        let f = SourceFile::new("a.camp", "ab\r\nçé😀x\nend");
        let x = f.text.find('x').unwrap() as u32;
        assert_eq!(position(&f, x, Encoding::Utf16), Position::new(1, 4));
        assert_eq!(position(&f, x, Encoding::Utf8), Position::new(1, 8));
        assert_eq!(offset(&f, Position::new(1, 4), Encoding::Utf16), x as usize);
        assert_eq!(offset(&f, Position::new(1, 8), Encoding::Utf8), x as usize);
        // Past the end of a line: the line's end; past the last line: the end.
        assert_eq!(offset(&f, Position::new(0, 99), Encoding::Utf16), 2);
        assert_eq!(
            offset(&f, Position::new(9, 0), Encoding::Utf16),
            f.text.len()
        );
        // Inside a character: the start of the character.
        let e = f.text.find('😀').unwrap() as u32;
        assert_eq!(position(&f, e + 1, Encoding::Utf16), Position::new(1, 2));
    }
}
