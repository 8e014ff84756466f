//! The pest tree flattened into tokens: every leaf pair, and between leaves
//! the punctuation, comments and line ends that the grammar keeps out of the
//! tree (`{`, `=`, `,` are literals, `COMMENT` is silent). Nothing of the
//! source is lost: every byte is in a token or is a space, a tab or a BOM.

use pest::iterators::Pair;

use crate::syntax::Rule;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A leaf pair of the tree (a name, a keyword, a string, a duration…).
    Leaf(Rule),
    /// Literal punctuation of the grammar (`{`, `=`, `(`, `,`, `enum`…), with
    /// the rule whose text holds it.
    Punct(Rule),
    LineComment,
    BlockComment,
    Newline,
}

#[derive(Clone, Copy, Debug)]
pub struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Tok {
    pub fn is_comment(&self) -> bool {
        matches!(self.kind, Kind::LineComment | Kind::BlockComment)
    }

    pub fn is_punct(&self, src: &str, text: &str) -> bool {
        matches!(self.kind, Kind::Punct(_)) && &src[self.start..self.end] == text
    }
}

/// Rules whose pair is one token although pest gives it inner pairs.
fn is_leaf(rule: Rule) -> bool {
    matches!(rule, Rule::string)
}

/// Every token of the tree rooted at `root`, in source order.
pub fn tokens(src: &str, root: Pair<'_, Rule>) -> Vec<Tok> {
    let mut out = Vec::with_capacity(src.len() / 4);
    walk(src, root, &mut out);
    out
}

fn walk(src: &str, pair: Pair<'_, Rule>, out: &mut Vec<Tok>) {
    let rule = pair.as_rule();
    let span = pair.as_span();
    let (start, end) = (span.start(), span.end());
    if is_leaf(rule) || pair.clone().into_inner().next().is_none() {
        if rule != Rule::EOI {
            out.push(Tok {
                kind: Kind::Leaf(rule),
                start,
                end,
            });
        }
        return;
    }
    let mut at = start;
    for child in pair.into_inner() {
        let s = child.as_span();
        gap(src, at, s.start(), rule, out);
        at = s.end();
        walk(src, child, out);
    }
    gap(src, at, end, rule, out);
}

/// Splits `src[from..to]`, text between two pairs, into tokens.
fn gap(src: &str, from: usize, to: usize, parent: Rule, out: &mut Vec<Tok>) {
    let b = src.as_bytes();
    let mut i = from;
    while i < to {
        let c = b[i];
        match c {
            b' ' | b'\t' => i += 1,
            b'\n' => {
                out.push(Tok {
                    kind: Kind::Newline,
                    start: i,
                    end: i + 1,
                });
                i += 1;
            }
            b'\r' => {
                let len = if b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                out.push(Tok {
                    kind: Kind::Newline,
                    start: i,
                    end: i + len,
                });
                i += len;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let mut j = i;
                while j < to && b[j] != b'\n' && b[j] != b'\r' {
                    j += 1;
                }
                out.push(Tok {
                    kind: Kind::LineComment,
                    start: i,
                    end: j,
                });
                i = j;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let j = src[i + 2..to]
                    .find("*/")
                    .map(|k| i + 2 + k + 2)
                    .unwrap_or(to);
                out.push(Tok {
                    kind: Kind::BlockComment,
                    start: i,
                    end: j,
                });
                i = j;
            }
            _ if c.is_ascii_alphabetic() => {
                let mut j = i;
                while j < to && b[j].is_ascii_alphanumeric() {
                    j += 1;
                }
                out.push(Tok {
                    kind: Kind::Punct(parent),
                    start: i,
                    end: j,
                });
                i = j;
            }
            _ if src[i..].starts_with('\u{FEFF}') => i += '\u{FEFF}'.len_utf8(),
            _ => {
                let len = src[i..].chars().next().map(char::len_utf8).unwrap_or(1);
                out.push(Tok {
                    kind: Kind::Punct(parent),
                    start: i,
                    end: i + len,
                });
                i += len;
            }
        }
    }
}
