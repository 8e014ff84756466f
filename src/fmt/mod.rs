//! `relance fmt`: one canonical layout for `*.camp` files (`docs/fmt.md`).
//!
//! The formatter does not touch the parser: it parses the file with the
//! same grammar, flattens the pest tree into tokens (`tokens`: the leaves,
//! plus the punctuation, comments and line ends found in the text between
//! them) and prints them again (`layout`), changing only the space between
//! tokens and the separators between block items.
//!
//! Every result is checked before it is returned: the formatted text must
//! parse to the same AST up to spans (doc comments included) and hold the
//! same comments in the same order. A file that does not parse is refused
//! with the diagnostics `relance check` gives; a result that fails the
//! check is an internal error and nothing is written.

pub mod diff;
mod layout;
mod tokens;

use crate::diagnostics::{FileId, Problems};
use crate::syntax;

pub use layout::MAX_WIDTH;

/// Why a file was not formatted.
#[derive(Debug)]
pub enum FmtError {
    /// The file does not parse (or breaks a limit): the diagnostics of
    /// `relance check`. The file is left as it is.
    Syntax(Problems),
    /// The formatter produced text that does not mean the same thing (a bug
    /// in the formatter): what differs. The file is left as it is.
    Internal(String),
}

/// The canonical layout of `text`, the contents of file `file`.
pub fn format_text(file: FileId, text: &str) -> Result<String, FmtError> {
    let mut problems = Problems::new();
    let (before, tree) = syntax::parse_file_with_tree(file, text, &mut problems);
    let root = match tree {
        Some(root) if !problems.has_errors() => root,
        _ => return Err(FmtError::Syntax(problems)),
    };
    let tree = tokens::tree(text, root);
    let out = layout::Printer::new(text, tree).file();
    if out == text {
        return Ok(out);
    }
    let mut again = Problems::new();
    let after = syntax::parse_file(file, &out, &mut again);
    if again.has_errors() {
        let first = again
            .iter()
            .next()
            .map(|d| d.message.clone())
            .unwrap_or_default();
        return Err(FmtError::Internal(format!(
            "the formatted text does not parse: {first}"
        )));
    }
    if spanless_hash(&before.decls) != spanless_hash(&after.decls) {
        return Err(FmtError::Internal(
            "the formatted text parses to a different program".into(),
        ));
    }
    if comments(text) != comments(&out) {
        return Err(FmtError::Internal(
            "the formatted text does not hold the same comments".into(),
        ));
    }
    Ok(out)
}

/// The layout alone, without the checks (`None` when pest refuses the text).
#[cfg(test)]
fn print(text: &str) -> Option<String> {
    use crate::syntax::{CampParser, Rule};
    use pest::Parser;
    let root = CampParser::parse(Rule::file, text).ok()?.next()?;
    Some(layout::Printer::new(text, tokens::tree(text, root)).file())
}

/// A hash of the `Debug` text of `value` without its `Span { … }`s, fed
/// piece by piece (no text is built): equal for two ASTs that differ only
/// in their spans.
fn spanless_hash(value: &impl std::fmt::Debug) -> u64 {
    use std::fmt::Write as _;
    use std::hash::Hasher;

    struct Spanless {
        hasher: std::hash::DefaultHasher,
        /// 1: just saw `Span`; 2: inside a span.
        state: u8,
    }
    impl Spanless {
        fn feed(&mut self, s: &str) {
            if s == "Span" {
                self.state = 1;
            } else {
                self.hasher.write(s.as_bytes());
            }
        }
    }
    impl std::fmt::Write for Spanless {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            match self.state {
                2 => {
                    if s == " }" {
                        self.state = 0;
                    }
                }
                1 if s == " { " => self.state = 2,
                1 => {
                    self.hasher.write(b"Span");
                    self.state = 0;
                    self.feed(s);
                }
                _ => self.feed(s),
            }
            Ok(())
        }
    }
    let mut w = Spanless {
        hasher: std::hash::DefaultHasher::new(),
        state: 0,
    };
    let _ = write!(w, "{value:?}");
    w.hasher.finish()
}

/// `Debug` output of an AST with every `Span { … }` removed.
pub fn strip_spans(debug: &str) -> String {
    const OPEN: &str = "Span { file: FileId(";
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        match rest[i..].find('}') {
            Some(j) => rest = &rest[i + j + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The comments of a file that parses, in order, as the formatter writes
/// them (line ends `\n`, no trailing spaces).
pub fn comments(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && !matches!(b[i], b'"' | b'\n' | b'\r') {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = text[i..]
                    .find(['\n', '\r'])
                    .map(|k| i + k)
                    .unwrap_or(b.len());
                out.push(text[i..end].trim_end().to_string());
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..]
                    .find("*/")
                    .map(|k| i + 2 + k + 2)
                    .unwrap_or(b.len());
                out.push(layout::block_comment(&text[i..end]));
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests;
