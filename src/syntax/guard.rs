//! Limits enforced before pest sees a file. pest's recursive descent can
//! exhaust the stack on deeply nested input, and a huge file is never a
//! campaign: both are refused here with a clear diagnostic.

use crate::diagnostics::{Code, Diagnostic, FileId, Problems, Span};

/// Largest `.camp` file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// Deepest nesting of `{`, `(` and `[` accepted.
pub const MAX_DEPTH: usize = 64;

/// Returns false when the file must not be parsed.
pub fn check(file: FileId, text: &str, problems: &mut Problems) -> bool {
    if text.len() > MAX_FILE_BYTES {
        problems.push(
            Diagnostic::new(
                Code::E0003,
                format!(
                    "this file is {} bytes; the limit is {} bytes",
                    text.len(),
                    MAX_FILE_BYTES
                ),
            )
            .at(Span::new(file, 0, 0), "file starts here")
            .help("split the campaign into several smaller `.camp` files"),
        );
        return false;
    }
    let bytes = text.as_bytes();
    if let Some(nul) = memchr(0, bytes) {
        problems.push(
            Diagnostic::new(Code::E0006, "this file contains a NUL byte")
                .at(Span::new(file, nul, nul + 1), "NUL byte here")
                .help("campaign files are plain UTF-8 text; remove the byte or check that this is not a binary file"),
        );
        return false;
    }
    let mut depth = 0usize;
    // `not not not …` nests as deeply as parentheses do.
    let mut nots = 0usize;
    for token in CodeScan::new(text) {
        match token {
            Token::UnclosedComment(start) => {
                problems.push(
                    Diagnostic::new(Code::E0010, "this block comment is never closed")
                        .at(Span::new(file, start, start + 2), "comment opened here")
                        .help("close the comment with `*/`"),
                );
                return false;
            }
            Token::Word(i, len) if &bytes[i..i + len] == b"not" => {
                nots += 1;
                if nots > MAX_DEPTH {
                    problems.push(
                        Diagnostic::new(Code::E0004, format!("more than {MAX_DEPTH} nested `not`"))
                            .at(Span::new(file, i, i + len), "too deep here")
                            .help("`not not x` is `x`: remove the doubled `not`s"),
                    );
                    return false;
                }
            }
            Token::Open(i, _) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    problems.push(
                        Diagnostic::new(Code::E0004, format!("nesting is deeper than {MAX_DEPTH} levels"))
                            .at(Span::new(file, i, i + 1), "too deep here")
                            .help("move nested conditions into named segments, or nested steps into a cadence"),
                    );
                    return false;
                }
            }
            Token::Close(..) => {
                depth = depth.saturating_sub(1);
                nots = 0;
            }
            Token::Newline(_) => {}
            Token::Word(..) | Token::Other(..) => nots = 0,
        }
        if let Token::Open(_, b) = token
            && b != b'('
        {
            nots = 0;
        }
    }
    true
}

/// A lexical token that matters to the guards: strings and comments are
/// skipped (a string shows as one `Other` at its quote), spaces are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// A run of ASCII letters, digits and `_`: (start, length).
    Word(usize, usize),
    /// `{`, `(` or `[` at this offset.
    Open(usize, u8),
    /// `}`, `)` or `]` at this offset.
    Close(usize, u8),
    /// A line break (outside block comments).
    Newline(usize),
    /// Any other byte, or a whole string literal at its opening quote.
    Other(usize, u8),
    /// A `/*` that is never closed; the scan stops there.
    UnclosedComment(usize),
}

/// The one lexical scan shared by the guard, the recovery cut and the
/// syntax-error helper: it knows where strings and comments are, nothing
/// more. Strings end at their closing quote or at the end of the line.
pub(crate) struct CodeScan<'t> {
    text: &'t str,
    i: usize,
}

impl<'t> CodeScan<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        CodeScan { text, i: 0 }
    }
}

impl Iterator for CodeScan<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let bytes = self.text.as_bytes();
        loop {
            let i = self.i;
            let &b = bytes.get(i)?;
            match b {
                // A `\r` alone ends a line as `\n` does (the grammar's
                // NEWLINE); before a `\n` it is part of that line break.
                b'\n' | b'\r' if b == b'\n' || bytes.get(i + 1) != Some(&b'\n') => {
                    self.i += 1;
                    return Some(Token::Newline(i));
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    // Up to the line break, which is returned next.
                    self.i = self.text[i..]
                        .find(['\n', '\r'])
                        .map_or(bytes.len(), |e| i + e);
                }
                b'/' if bytes.get(i + 1) == Some(&b'*') => match self.text[i + 2..].find("*/") {
                    Some(end) => self.i = i + 2 + end + 2,
                    None => {
                        self.i = bytes.len();
                        return Some(Token::UnclosedComment(i));
                    }
                },
                b'"' => {
                    let mut j = i + 1;
                    while j < bytes.len() && !matches!(bytes[j], b'"' | b'\n' | b'\r') {
                        if bytes[j] == b'\\'
                            && bytes.get(j + 1).is_some_and(|&c| c != b'\n' && c != b'\r')
                        {
                            j += 1;
                        }
                        j += 1;
                    }
                    // Past the closing quote; a line break is returned next.
                    self.i = if bytes.get(j) == Some(&b'"') {
                        j + 1
                    } else {
                        j
                    };
                    return Some(Token::Other(i, b'"'));
                }
                b'{' | b'(' | b'[' => {
                    self.i += 1;
                    return Some(Token::Open(i, b));
                }
                b'}' | b')' | b']' => {
                    self.i += 1;
                    return Some(Token::Close(i, b));
                }
                c if c.is_ascii_alphanumeric() || c == b'_' => {
                    let len = bytes[i..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                        .count();
                    self.i += len;
                    return Some(Token::Word(i, len));
                }
                _ => {
                    self.i += 1;
                    return Some(Token::Other(i, b));
                }
            }
        }
    }
}

const DECLARATION_KEYWORDS: &[&str] = &[
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
    "topic",
    "consent",
];

/// Byte offsets where top-level declarations start: a declaration keyword
/// first on its line, outside braces, strings and comments. A keyword in
/// the first column starts a declaration even inside an unclosed brace, so
/// that a missing `}` does not swallow the rest of the file.
pub fn declaration_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut depth = 0usize;
    let mut line_start = 0usize;
    let mut first_on_line = true;
    for token in CodeScan::new(text) {
        if let Token::Word(at, len) = token
            && first_on_line
            && DECLARATION_KEYWORDS.contains(&&text[at..at + len])
            && (depth == 0 || at == line_start)
        {
            depth = 0;
            starts.push(at);
        }
        first_on_line = false;
        match token {
            Token::Newline(i) => {
                line_start = i + 1;
                first_on_line = true;
            }
            Token::Open(..) => depth += 1,
            Token::Close(..) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    starts
}

/// `segment vip = …` → keyword `segment`, name `vip`.
pub fn declaration_head(text: &str) -> crate::syntax::ast::BrokenDecl {
    let mut words = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    let mut keyword = words.next().unwrap_or_default().to_string();
    if keyword == "negative" {
        words.next();
        keyword = "persona".to_string();
    }
    let name = match keyword.as_str() {
        "workspace" | "contact" | "pressure" => None,
        _ => words.next().map(str::to_string),
    };
    crate::syntax::ast::BrokenDecl { keyword, name }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str) -> Vec<Code> {
        let mut p = Problems::new();
        check(FileId(0), text, &mut p);
        p.iter().map(|d| d.code).collect()
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("segment a = {}x{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(codes(&deep), vec![Code::E0004]);
        let ok = format!("segment a = {}x{}", "(".repeat(10), ")".repeat(10));
        assert_eq!(codes(&ok), vec![]);
    }

    #[test]
    fn long_not_chains_are_refused() {
        let deep = format!("segment a = {}x", "not ".repeat(100));
        assert_eq!(codes(&deep), vec![Code::E0004]);
        let ok = format!("segment a = {}x", "not ".repeat(3));
        assert_eq!(codes(&ok), vec![]);
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let s = format!(
            "// {}\nsegment a = b == \"{}\"",
            "{".repeat(100),
            "[".repeat(100)
        );
        assert_eq!(codes(&s), vec![]);
    }

    #[test]
    fn unterminated_comment_and_nul() {
        assert_eq!(codes("/* never closed"), vec![Code::E0010]);
        assert_eq!(codes("segment a\0"), vec![Code::E0006]);
        assert_eq!(codes(&"x".repeat(MAX_FILE_BYTES + 1)), vec![Code::E0003]);
    }
}
