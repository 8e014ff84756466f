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

/// A node of the tree: pest's pair, copied so that the printer walks plain
/// data (pest's `Pair` API costs more than the printing itself).
#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub rule: Rule,
    pub start: usize,
    pub end: usize,
    /// Children: `Tree::kids[kids.0..kids.1]`.
    kids: (u32, u32),
}

pub type N = u32;

/// The pest tree as nodes, and its tokens in source order.
pub struct Tree {
    nodes: Vec<Node>,
    kid_ids: Vec<N>,
    pub toks: Vec<Tok>,
}

impl Tree {
    pub fn node(&self, n: N) -> Node {
        self.nodes[n as usize]
    }

    pub fn rule(&self, n: N) -> Rule {
        self.nodes[n as usize].rule
    }

    pub fn kids(&self, n: N) -> &[N] {
        let (a, b) = self.nodes[n as usize].kids;
        &self.kid_ids[a as usize..b as usize]
    }

    /// The number of children and the `i`-th one.
    pub fn kid(&self, n: N, i: usize) -> Option<Node> {
        self.kids(n).get(i).map(|&k| self.node(k))
    }
}

/// The tree and the tokens of the pest tree rooted at `root` (node 0).
pub fn tree(src: &str, root: Pair<'_, Rule>) -> Tree {
    let mut t = Tree {
        nodes: Vec::with_capacity(src.len() / 6),
        kid_ids: Vec::with_capacity(src.len() / 6),
        toks: Vec::with_capacity(src.len() / 4),
    };
    let mut stack = Vec::new();
    walk(src, root, &mut t, &mut stack);
    t
}

fn walk(src: &str, pair: Pair<'_, Rule>, t: &mut Tree, stack: &mut Vec<N>) -> N {
    let rule = pair.as_rule();
    let span = pair.as_span();
    let (start, end) = (span.start(), span.end());
    let id = t.nodes.len() as N;
    t.nodes.push(Node {
        rule,
        start,
        end,
        kids: (0, 0),
    });
    let mut inner = pair.into_inner().peekable();
    if is_leaf(rule) || inner.peek().is_none() {
        if rule != Rule::EOI {
            t.toks.push(Tok {
                kind: Kind::Leaf(rule),
                start,
                end,
            });
        }
        return id;
    }
    let mark = stack.len();
    let mut at = start;
    for child in inner {
        let s = child.as_span();
        gap(src, at, s.start(), rule, &mut t.toks);
        at = s.end();
        let k = walk(src, child, t, stack);
        stack.push(k);
    }
    gap(src, at, end, rule, &mut t.toks);
    let a = t.kid_ids.len() as u32;
    t.kid_ids.extend(stack.drain(mark..));
    t.nodes[id as usize].kids = (a, t.kid_ids.len() as u32);
    id
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
