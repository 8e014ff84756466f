//! The text of one template body and the way its byte offsets map back to
//! spans: into the `.hbs` file, or into the `.camp` string literal (past the
//! opening quote, through escapes).

use std::ops::Range;

use crate::diagnostics::{FileId, SourceMap, Span};

#[derive(Clone, Debug)]
pub(crate) struct Source {
    /// The template text as Handlebars sees it (escapes decoded).
    pub text: String,
    pub file: FileId,
    map: OffsetMap,
}

#[derive(Clone, Debug)]
enum OffsetMap {
    /// Offset `i` of the text is byte `base + i` of the file.
    Shift(u32),
    /// `table[i]` is the file offset of text byte `i` (one entry past the end).
    Table(Vec<u32>),
    /// No precise mapping: every range is the whole literal.
    Whole(Span),
}

impl Source {
    /// A template file: offsets are file offsets.
    pub fn file(file: FileId, text: String) -> Source {
        Source {
            text,
            file,
            map: OffsetMap::Shift(0),
        }
    }

    /// An inline string whose literal (quotes included) is at `literal`;
    /// `decoded` is its value.
    pub fn inline(sources: &SourceMap, literal: Span, decoded: &str) -> Source {
        let whole = Source {
            text: decoded.to_string(),
            file: literal.file,
            map: OffsetMap::Whole(literal),
        };
        if literal.file.0 as usize >= sources.len() {
            return whole;
        }
        let file_text = &sources.get(literal.file).text;
        let Some(raw) = file_text.get(literal.start as usize..literal.end as usize) else {
            return whole;
        };
        let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
            return whole;
        };
        let base = literal.start + 1;
        if inner == decoded {
            return Source {
                map: OffsetMap::Shift(base),
                ..whole
            };
        }
        match decode_with_table(inner) {
            Some((text, table)) if text == decoded => Source {
                map: OffsetMap::Table(table.into_iter().map(|o| base + o).collect()),
                ..whole
            },
            _ => whole,
        }
    }

    /// The span of a range of the text.
    pub fn span(&self, r: Range<usize>) -> Span {
        let len = self.text.len();
        let (s, e) = (r.start.min(len), r.end.min(len).max(r.start.min(len)));
        match &self.map {
            OffsetMap::Shift(base) => Span {
                file: self.file,
                start: base + s as u32,
                end: base + e as u32,
            },
            OffsetMap::Table(t) => {
                let at = |i: usize| {
                    t.get(i)
                        .copied()
                        .unwrap_or_else(|| t.last().copied().unwrap_or(0))
                };
                Span {
                    file: self.file,
                    start: at(s),
                    end: at(e),
                }
            }
            OffsetMap::Whole(span) => *span,
        }
    }

    /// The byte offset of a 1-based line and column (in characters), as
    /// Handlebars reports syntax errors.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (n, l) in self.text.split_inclusive('\n').enumerate() {
            if n + 1 == line {
                let col: usize = l
                    .chars()
                    .take(column.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + col;
            }
            offset += l.len();
        }
        self.text.len()
    }
}

/// Decodes the escapes of a `.camp` string (`\"` `\\` `\n` `\t` `\u{…}`),
/// recording the raw offset of every decoded byte.
fn decode_with_table(raw: &str) -> Option<(String, Vec<u32>)> {
    let mut out = String::with_capacity(raw.len());
    let mut table = Vec::with_capacity(raw.len() + 1);
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let decoded = if c == '\\' {
            let (_, e) = chars.next()?;
            match e {
                '"' => '"',
                '\\' => '\\',
                'n' => '\n',
                't' => '\t',
                'u' => {
                    let rest = raw.get(i + 2..)?;
                    let hex = rest.strip_prefix('{')?;
                    let end = hex.find('}')?;
                    let v = u32::from_str_radix(&hex[..end], 16).ok()?;
                    // Skip `{hex}`.
                    for _ in 0..end + 2 {
                        chars.next();
                    }
                    char::from_u32(v)?
                }
                _ => return None,
            }
        } else {
            c
        };
        for _ in 0..decoded.len_utf8() {
            table.push(i as u32);
        }
        out.push(decoded);
    }
    table.push(raw.len() as u32);
    Some((out, table))
}

/// Resolves `path` (as written in `file("…")`) against the folder of the
/// `.camp` file, relative to the project root with `/` separators. `None`
/// when the path is absolute or climbs out of the project. The same
/// resolver as the loader's ([`crate::plan::resolve_in_dir`]).
pub fn resolve_path(dir: &str, path: &str) -> Option<String> {
    crate::plan::resolve_in_dir(dir, path)
}

/// The folder of a project-relative file path (`""` at the root).
pub fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::SourceFile;

    #[test]
    fn inline_spans_skip_the_quote_and_escapes() {
        let mut sm = SourceMap::new();
        let text = r#"x = "a\"b {{c}} \u{e9} {{d}}""#;
        let id = sm.add(SourceFile::new("a.camp", text));
        let lit = Span::new(id, 4, text.len());
        let decoded = "a\"b {{c}} \u{e9} {{d}}";
        let src = Source::inline(&sm, lit, decoded);
        let c = decoded.find('c').unwrap_or(0);
        let sp = src.span(c..c + 1);
        assert_eq!(&text[sp.start as usize..sp.end as usize], "c");
        let d = decoded.find('d').unwrap_or(0);
        let sp = src.span(d..d + 1);
        assert_eq!(&text[sp.start as usize..sp.end as usize], "d");
        let plain = r#"y = "{{e}}""#;
        let id = sm.add(SourceFile::new("b.camp", plain));
        let src = Source::inline(&sm, Span::new(id, 4, plain.len()), "{{e}}");
        let sp = src.span(2..3);
        assert_eq!(&plain[sp.start as usize..sp.end as usize], "e");
    }

    #[test]
    fn paths_resolve_inside_the_project() {
        assert_eq!(
            resolve_path("", "templates/a.hbs").as_deref(),
            Some("templates/a.hbs")
        );
        assert_eq!(
            resolve_path("sub", "../t/a.hbs").as_deref(),
            Some("t/a.hbs")
        );
        assert_eq!(resolve_path("sub", "./a.hbs").as_deref(), Some("sub/a.hbs"));
        assert_eq!(resolve_path("", "../a.hbs"), None);
        assert_eq!(resolve_path("", "/etc/passwd"), None);
        assert_eq!(resolve_path("", "C:/x"), None);
        assert_eq!(parent_dir("a/b.camp"), "a");
        assert_eq!(parent_dir("b.camp"), "");
    }

    #[test]
    fn line_and_column_to_offset() {
        let s = Source::file(FileId(0), "ab\nçd\n".into());
        assert_eq!(s.offset_of(1, 1), 0);
        assert_eq!(s.offset_of(2, 2), 5);
        assert_eq!(s.offset_of(9, 1), 7);
    }
}
