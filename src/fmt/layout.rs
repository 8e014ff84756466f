//! The printer: walks the pest tree and the token list together and writes
//! the canonical layout. Only the space between tokens changes (and the
//! commas or line ends that separate block items); every other token is
//! written as it is, in order. See `docs/fmt.md` for the rules.

use super::tokens::{Kind, N, Tok, Tree};
use crate::syntax::Rule;

/// Lines are kept under this width where the printer has a choice (a short
/// block on one line); long strings and expressions are never broken.
pub const MAX_WIDTH: usize = 100;

pub struct Printer<'s> {
    src: &'s str,
    tree: Tree,
    toks: Vec<Tok>,
    pos: usize,
    out: String,
    /// Indentation of the item being written.
    indent: usize,
    /// Brackets open in the item being written (continuation lines).
    depth: usize,
    pending_nl: bool,
    /// The last token written on the current line, for spacing.
    prev: Option<Tok>,
    /// Pad the first token at or after this offset to this column.
    pad: Option<(usize, usize)>,
    /// Inside a block written on one line.
    flat: bool,
}

fn is_block(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::workspace_decl
            | Rule::field_block
            | Rule::list_block
            | Rule::on_join
            | Rule::persona_decl
            | Rule::event_values
            | Rule::template_decl
            | Rule::scenario_decl
            | Rule::step_block
            | Rule::branch_step
            | Rule::split_step
            | Rule::cadence_decl
            | Rule::pressure_decl
    )
}

/// What sits between two items (or between a brace and an item): comments
/// on the line of the previous item, then whole lines (an empty line is a
/// blank line; the others hold comments).
#[derive(Default)]
struct Gap {
    trailing: Vec<Tok>,
    lines: Vec<Vec<Tok>>,
}

impl Gap {
    fn has_blank(&self) -> bool {
        self.lines.iter().any(Vec::is_empty)
    }
}

/// How an item lines up with its neighbours: items of the same `kind` in a
/// run (no blank line between them) pad their key to the widest key.
#[derive(Clone, Copy)]
struct Key {
    kind: u8,
    /// Offset where the key ends: the next token is padded.
    end: usize,
    width: usize,
    /// A fixed width rather than the widest of the run.
    fixed: bool,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

impl<'s> Printer<'s> {
    pub fn new(src: &'s str, mut tree: Tree) -> Printer<'s> {
        let toks = std::mem::take(&mut tree.toks);
        Printer {
            src,
            tree,
            toks,
            pos: 0,
            out: String::with_capacity(src.len() + src.len() / 8),
            indent: 0,
            depth: 0,
            pending_nl: false,
            prev: None,
            pad: None,
            flat: false,
        }
    }

    fn text(&self, t: Tok) -> &'s str {
        &self.src[t.start..t.end]
    }

    fn index_at(&self, offset: usize) -> usize {
        self.toks.partition_point(|t| t.start < offset)
    }

    /// Where the text of a pair ends: pest's spans may take in the spaces
    /// and comments skipped before an optional part that is absent.
    fn text_end(&self, start: usize, end: usize) -> usize {
        let mut i = self.index_at(end);
        while i > 0 && self.toks[i - 1].start >= start {
            let t = self.toks[i - 1];
            if !(t.is_comment() || t.kind == Kind::Newline) {
                return t.end;
            }
            i -= 1;
        }
        start
    }

    fn col(&self) -> usize {
        let line = match self.out.rfind('\n') {
            Some(i) => &self.out[i + 1..],
            None => &self.out[..],
        };
        chars(line)
    }

    fn spaces(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }

    // ---------------------------------------------------------- tokens

    fn flush_until(&mut self, offset: usize) {
        while self.pos < self.toks.len() && self.toks[self.pos].start < offset {
            let t = self.toks[self.pos];
            self.pos += 1;
            self.emit(t);
        }
    }

    fn emit(&mut self, t: Tok) {
        if t.kind == Kind::Newline {
            self.pending_nl = true;
            return;
        }
        let text = self.text(t);
        let is_punct = matches!(t.kind, Kind::Punct(_));
        let closer = is_punct && (text == ")" || text == "]");
        let padded = match self.pad {
            Some((off, col)) if t.start >= off => {
                self.pad = None;
                Some(col)
            }
            _ => None,
        };
        if self.pending_nl {
            self.pending_nl = false;
            let trimmed = self.out.trim_end_matches(' ').len();
            self.out.truncate(trimmed);
            self.out.push('\n');
            let d = if closer {
                self.depth.saturating_sub(1)
            } else {
                self.depth
            };
            self.spaces(self.indent + 2 + 2 * d);
        } else if let Some(col) = padded {
            let c = self.col();
            self.spaces(col.saturating_sub(c).max(1));
        } else if let Some(p) = self.prev
            && self.space(p, t)
        {
            self.out.push(' ');
        }
        self.write_token(t);
        if is_punct {
            match text {
                "(" | "[" => self.depth += 1,
                ")" | "]" => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
        self.prev = Some(t);
        if t.kind == Kind::LineComment {
            self.pending_nl = true;
        }
    }

    fn write_token(&mut self, t: Tok) {
        let text = self.text(t);
        match t.kind {
            Kind::LineComment => self.out.push_str(text.trim_end()),
            Kind::BlockComment => self.out.push_str(&block_comment(text)),
            Kind::Leaf(Rule::business_days) => {
                let words: Vec<&str> = text.split_whitespace().collect();
                self.out.push_str(&words.join(" "));
            }
            _ => self.out.push_str(text),
        }
    }

    /// Whether a space separates `a` and `b` on one line.
    fn space(&self, a: Tok, b: Tok) -> bool {
        let (ta, tb) = (self.text(a), self.text(b));
        let pa = matches!(a.kind, Kind::Punct(_));
        let pb = matches!(b.kind, Kind::Punct(_));
        if pb && matches!(tb, "," | ")" | "]" | ".") {
            return false;
        }
        if pa && matches!(ta, "(" | "[" | ".") {
            return false;
        }
        if b.kind == Kind::Leaf(Rule::optional) {
            return false;
        }
        if let Kind::Punct(rule) = b.kind {
            match tb {
                "(" => {
                    return !(matches!(
                        a.kind,
                        Kind::Leaf(
                            Rule::kw_file
                                | Rule::env_word
                                | Rule::engagement_kind
                                | Rule::aggregate_fn
                                | Rule::kw_distinct
                        )
                    ) || (pa && ta == "enum"));
                }
                "<" | ">" if rule == Rule::set_type => return false,
                ":" if rule == Rule::field_decl => return false,
                _ => {}
            }
        }
        if pa && ta == "<" && matches!(a.kind, Kind::Punct(Rule::set_type)) {
            return false;
        }
        true
    }

    // ---------------------------------------------------------- pairs

    fn pair(&mut self, p: N) {
        let node = self.tree.node(p);
        if is_block(node.rule) {
            return self.block(p);
        }
        let (start, end) = (node.start, node.end);
        let n = self.tree.kids(p).len();
        if node.rule == Rule::string || n == 0 {
            self.flush_until(end.max(start + 1));
            return;
        }
        for i in 0..n {
            let child = self.tree.kids(p)[i];
            self.pair(child);
        }
        self.flush_until(self.text_end(start, end));
    }

    fn block(&mut self, p: N) {
        let end = self.tree.node(p).end;
        let children: Vec<N> = self.tree.kids(p).to_vec();
        let last = self.index_at(end) - 1;
        let Some(brace) = (self.pos..=last).find(|&i| self.toks[i].is_punct(self.src, "{")) else {
            // Not a block after all (cannot happen with the grammar): as is.
            for c in children {
                self.pair(c);
            }
            self.flush_until(end);
            return;
        };
        let brace_at = self.toks[brace].start;
        let mut items = Vec::new();
        for c in children {
            if self.tree.node(c).start < brace_at {
                self.pair(c);
            } else {
                items.push(c);
            }
        }
        self.flush_until(brace_at + 1);
        let close = last;
        let inner = &self.toks[brace + 1..close];
        let comments = inner.iter().any(Tok::is_comment);
        let breaks = comments || inner.iter().any(|t| t.kind == Kind::Newline);
        if items.is_empty() && !comments {
            self.pos = close + 1;
            self.out.push('}');
            self.prev = Some(self.toks[close]);
            return;
        }
        if !breaks || self.flat {
            let save = (self.out.len(), self.pos, self.prev, self.depth);
            let was_flat = self.flat;
            self.flat = true;
            self.out.push(' ');
            for (k, &item) in items.iter().enumerate() {
                if k > 0 {
                    self.out.push_str(", ");
                }
                self.pos = self.index_at(self.tree.node(item).start);
                self.prev = None;
                self.pair(item);
            }
            self.out.push_str(" }");
            self.pos = close + 1;
            self.prev = Some(self.toks[close]);
            self.flat = was_flat;
            if was_flat || self.col() <= MAX_WIDTH {
                return;
            }
            self.out.truncate(save.0);
            (self.pos, self.prev, self.depth) = (save.1, save.2, save.3);
        }
        let (base, depth) = (self.indent, self.depth);
        self.pending_nl = false;
        let gaps = self.gaps(brace + 1, &items, close);
        let keys = self.keys(&items, &gaps);
        let texts = self.items(&items, &keys, base + 2);
        self.layout(&texts, &gaps, base + 2, &[], true);
        self.out.push('\n');
        self.spaces(base);
        self.out.push('}');
        self.pos = close + 1;
        self.prev = Some(self.toks[close]);
        (self.indent, self.depth) = (base, depth);
    }

    /// The gaps around `items`: before the first (from token `from`), between
    /// two, and after the last (up to token `to`, excluded).
    fn gaps(&self, from: usize, items: &[N], to: usize) -> Vec<Gap> {
        let mut bounds = Vec::with_capacity(items.len() + 1);
        let mut at = from;
        for &item in items {
            let node = self.tree.node(item);
            bounds.push((at, self.index_at(node.start)));
            at = self.index_at(self.text_end(node.start, node.end));
        }
        bounds.push((at, to));
        bounds
            .into_iter()
            .map(|(a, b)| {
                let mut gap = Gap::default();
                let mut line: Option<Vec<Tok>> = None;
                for &t in &self.toks[a..b.max(a)] {
                    match t.kind {
                        Kind::Newline => {
                            if let Some(l) = line.take() {
                                gap.lines.push(l);
                            }
                            line = Some(Vec::new());
                        }
                        Kind::LineComment | Kind::BlockComment => match &mut line {
                            Some(l) => l.push(t),
                            None => gap.trailing.push(t),
                        },
                        _ => {}
                    }
                }
                if let Some(l) = line
                    && !l.is_empty()
                {
                    gap.lines.push(l);
                }
                gap
            })
            .collect()
    }

    /// The alignment key of each item.
    fn keys(&self, items: &[N], gaps: &[Gap]) -> Vec<Option<Key>> {
        let mut keys: Vec<Option<Key>> = items.iter().map(|&p| self.key(p)).collect();
        // Widest key of each run.
        let mut i = 0;
        while i < keys.len() {
            let Some(k) = keys[i] else {
                i += 1;
                continue;
            };
            let mut j = i + 1;
            while j < keys.len()
                && keys[j].is_some_and(|n| n.kind == k.kind)
                && !gaps[j].has_blank()
            {
                j += 1;
            }
            if !k.fixed {
                let w = keys[i..j].iter().flatten().map(|k| k.width).max();
                for key in keys[i..j].iter_mut().flatten() {
                    key.width = w.unwrap_or(key.width);
                }
            }
            i = j;
        }
        keys
    }

    fn key(&self, p: N) -> Option<Key> {
        let kid = |i: usize| self.tree.kid(p, i);
        let len = |i: usize| {
            kid(i)
                .map(|k| chars(&self.src[k.start..k.end]))
                .unwrap_or(0)
        };
        let end = |i: usize| kid(i).map(|k| k.end).unwrap_or(0);
        let (kind, end, width, fixed) = match self.tree.rule(p) {
            Rule::attr
            | Rule::template_topic
            | Rule::delivery_attr
            | Rule::locales_attr
            | Rule::locale_attr => (1, end(0), len(0), false),
            Rule::variant_attr => (2, end(1), len(0) + 1 + len(1), false),
            Rule::link_decl => (3, end(1), len(0) + 1 + len(1), false),
            Rule::header_decl => (4, end(1), len(0) + 1 + len(1), false),
            Rule::field_decl => (5, kid(1).map(|k| k.start)?, len(0) + 1, false),
            Rule::persona_value | Rule::event_value => (6, end(0), len(0), false),
            Rule::cap | Rule::gap | Rule::quiet => (7, end(0), len(0), false),
            Rule::audience | Rule::trigger | Rule::reentry | Rule::goal => (8, end(0), 8, true),
            Rule::topic_decl => (9, end(1), len(0) + 1 + len(1), false),
            Rule::consent_decl => (10, end(1), len(0) + 1 + len(1), false),
            Rule::segment_decl => (11, end(1), len(0) + 1 + len(1), false),
            _ => return None,
        };
        Some(Key {
            kind,
            end,
            width,
            fixed,
        })
    }

    /// Each item written alone, indented by `indent` (one string, possibly
    /// of several lines).
    fn items(&mut self, items: &[N], keys: &[Option<Key>], indent: usize) -> Vec<String> {
        let saved = std::mem::take(&mut self.out);
        let mut texts = Vec::with_capacity(items.len());
        for (&item, key) in items.iter().zip(keys) {
            self.out = String::new();
            self.spaces(indent);
            self.indent = indent;
            self.depth = 0;
            self.prev = None;
            self.pending_nl = false;
            self.pad = key.map(|k| (k.end, indent + k.width + 1));
            self.pos = self.index_at(self.tree.node(item).start);
            self.pair(item);
            self.pad = None;
            self.pending_nl = false;
            texts.push(std::mem::take(&mut self.out));
        }
        self.out = saved;
        texts
    }

    /// Writes items and the comments around them. `gaps[0]` is before the
    /// first item (its trailing comments follow the opening brace), `gaps[i]`
    /// between item i-1 and i, the last after the last item. `joined[i]`
    /// (top level) says item i follows item i-1 with no blank line.
    fn layout(
        &mut self,
        texts: &[String],
        gaps: &[Gap],
        indent: usize,
        joined: &[bool],
        braced: bool,
    ) {
        let first_gap = &gaps[0];
        if braced && !first_gap.trailing.is_empty() {
            self.out.push(' ');
            self.comments(&first_gap.trailing);
        }
        let trailing_lead = if braced {
            &[][..]
        } else {
            &first_gap.trailing[..]
        };
        let mut lines: Vec<&[Tok]> = Vec::new();
        if !trailing_lead.is_empty() {
            lines.push(trailing_lead);
        }
        lines.extend(first_gap.lines.iter().map(Vec::as_slice));
        let mut started = braced;
        self.lines(&lines, indent, &mut started, true, false);
        let columns = comment_columns(texts, gaps);
        for (i, text) in texts.iter().enumerate() {
            if started {
                self.out.push('\n');
            }
            started = true;
            self.out.push_str(text);
            let gap = &gaps[i + 1];
            if !gap.trailing.is_empty() {
                let c = self.col();
                let target = columns[i].unwrap_or(c + 2);
                self.spaces(target.saturating_sub(c).max(1));
                self.comments(&gap.trailing);
            }
            let last = i + 1 == texts.len();
            let mut lines: Vec<&[Tok]> = Vec::with_capacity(gap.lines.len() + 1);
            // A blank line between two top-level declarations, unless they
            // are joined; before the comments, which belong to the next one.
            if !braced && !last && !joined.get(i + 1).copied().unwrap_or(false) && !gap.has_blank()
            {
                lines.push(&[]);
            }
            lines.extend(gap.lines.iter().map(Vec::as_slice));
            self.lines(&lines, indent, &mut started, false, last);
        }
    }

    /// Comment lines and blank lines (at most one in a row; none at the
    /// start or the end of a block).
    fn lines(
        &mut self,
        lines: &[&[Tok]],
        indent: usize,
        started: &mut bool,
        at_start: bool,
        at_end: bool,
    ) {
        let mut blank = false;
        let mut seen = !at_start;
        for line in lines {
            if line.is_empty() {
                blank = seen;
                continue;
            }
            if blank {
                self.out.push('\n');
                blank = false;
            }
            if *started {
                self.out.push('\n');
            }
            *started = true;
            seen = true;
            self.spaces(indent);
            self.comments(line);
        }
        if blank && !at_end {
            self.out.push('\n');
        }
    }

    fn comments(&mut self, line: &[Tok]) {
        for (k, &t) in line.iter().enumerate() {
            if k > 0 {
                self.out.push(' ');
            }
            self.write_token(t);
        }
    }

    // ---------------------------------------------------------- the file

    pub fn file(mut self) -> String {
        let decls: Vec<N> = self
            .tree
            .kids(0)
            .iter()
            .copied()
            .filter(|&p| self.tree.rule(p) != Rule::EOI)
            .collect();
        let gaps = self.gaps(0, &decls, self.toks.len());
        let mut keys = self.keys(&decls, &gaps);
        let compact: Vec<bool> = decls.iter().map(|&d| self.compact(d)).collect();
        let joined: Vec<bool> = (0..decls.len())
            .map(|i| {
                i > 0
                    && compact[i]
                    && compact[i - 1]
                    && self.tree.rule(decls[i]) == self.tree.rule(decls[i - 1])
                    && !gaps[i].has_blank()
            })
            .collect();
        // Top-level keys line up only within runs of joined declarations.
        let mut i = 0;
        while i < decls.len() {
            let mut j = i + 1;
            while j < decls.len() && joined[j] {
                j += 1;
            }
            let w = keys[i..j].iter().flatten().map(|k| k.width).max();
            for key in keys[i..j].iter_mut() {
                match key {
                    Some(k) if j - i > 1 => k.width = w.unwrap_or(k.width),
                    _ => *key = None,
                }
            }
            i = j;
        }
        let texts = self.items(&decls, &keys, 0);
        self.layout(&texts, &gaps, 0, &joined, false);
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        self.out
    }

    /// A declaration that may sit on the line after one of its kind, with no
    /// blank line between: a one-line topic, consent, segment or list.
    fn compact(&self, d: N) -> bool {
        let node = self.tree.node(d);
        let one_line = !self.src[node.start..node.end].contains(['\n', '\r']);
        one_line
            && match node.rule {
                Rule::topic_decl | Rule::consent_decl | Rule::segment_decl => true,
                Rule::list_decl => self
                    .tree
                    .kids(d)
                    .iter()
                    .all(|&c| self.tree.rule(c) != Rule::list_block),
                _ => false,
            }
    }
}

/// The column of each item's trailing comment: lined up over runs of
/// one-line items with nothing between them.
fn comment_columns(texts: &[String], gaps: &[Gap]) -> Vec<Option<usize>> {
    let mut cols = vec![None; texts.len()];
    let mut i = 0;
    while i < texts.len() {
        let single = |k: usize| !texts[k].contains('\n');
        if !single(i) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < texts.len() && single(j) && gaps[j].lines.is_empty() {
            j += 1;
        }
        let w = (i..j)
            .filter(|&k| !gaps[k + 1].trailing.is_empty())
            .map(|k| chars(&texts[k]))
            .max();
        if let Some(w) = w {
            for c in cols.iter_mut().take(j).skip(i) {
                *c = Some(w + 2);
            }
        }
        i = j;
    }
    cols
}

/// A block comment as written, with `\n` line ends and no trailing spaces.
pub fn block_comment(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').map(str::trim_end).collect();
    lines.join("\n")
}
