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
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() || b == b'_' {
            let len = bytes[i..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if &bytes[i..i + len] == b"not" {
                nots += 1;
                if nots > MAX_DEPTH {
                    problems.push(
                        Diagnostic::new(Code::E0004, format!("more than {MAX_DEPTH} nested `not`"))
                            .at(Span::new(file, i, i + len), "too deep here")
                            .help("`not not x` is `x`: remove the doubled `not`s"),
                    );
                    return false;
                }
            } else {
                nots = 0;
            }
            i += len;
            continue;
        }
        if !b.is_ascii_whitespace() && b != b'(' {
            nots = 0;
        }
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let start = i;
                match text[i + 2..].find("*/") {
                    Some(end) => i += 2 + end + 2,
                    None => {
                        problems.push(
                            Diagnostic::new(Code::E0010, "this block comment is never closed")
                                .at(Span::new(file, start, start + 2), "comment opened here")
                                .help("close the comment with `*/`"),
                        );
                        return false;
                    }
                }
                continue;
            }
            b'"' => {
                // Strings end at the closing quote or the end of the line; an
                // unterminated string is reported by the parser.
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' && bytes.get(i + 1).is_some_and(|&b| b != b'\n') {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' | b'(' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let end = i + 1;
                    problems.push(
                        Diagnostic::new(
                            Code::E0004,
                            format!("nesting is deeper than {MAX_DEPTH} levels"),
                        )
                        .at(Span::new(file, i, end), "too deep here")
                        .help("move nested conditions into named segments, or nested steps into a cadence"),
                    );
                    return false;
                }
            }
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    true
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
];

/// Byte offsets where top-level declarations start: a declaration keyword
/// first on its line, outside braces, strings and comments. A keyword in
/// the first column starts a declaration even inside an unclosed brace, so
/// that a missing `}` does not swallow the rest of the file.
pub fn declaration_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut line_start = true;
    while i < bytes.len() {
        if line_start {
            let indent = bytes[i..]
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
            let at = i + indent;
            let word_len = bytes[at..]
                .iter()
                .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_')
                .count();
            let word = &text[at..at + word_len];
            if DECLARATION_KEYWORDS.contains(&word) && (depth == 0 || indent == 0) {
                depth = 0;
                starts.push(at);
            }
            line_start = false;
        }
        match bytes[i] {
            b'\n' => line_start = true,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .map(|e| i + 2 + e + 1)
                    .unwrap_or(bytes.len() - 1);
                i = end;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' && bytes.get(i + 1).is_some_and(|&b| b != b'\n') {
                        i += 1;
                    }
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b'\n' {
                    line_start = true;
                }
            }
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
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
