//! A small scanner for Handlebars sources that keeps the byte range of every
//! tag, name and argument, so that the static checks can point at the
//! variable itself. Handlebars' own parser decides whether a template is
//! valid; this scanner is tolerant (it never fails, it records issues) and
//! linear, and it runs first so that inputs that would make Handlebars'
//! recursive parser overflow the stack are refused before they reach it.

use std::ops::Range;

use serde_json::Value as Json;

/// Deepest nesting of blocks, or of parentheses and brackets inside a tag,
/// that is handed to Handlebars (whose parser recurses on both).
pub(crate) const MAX_DEPTH: usize = 48;

/// A template cut into nodes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Parsed {
    pub nodes: Vec<Node>,
    /// Structural problems, in source order. They explain a Handlebars
    /// syntax error with a precise place; when Handlebars accepts the
    /// template anyway they are ignored.
    pub issues: Vec<Issue>,
    /// The template nests too deeply to be given to Handlebars.
    pub too_deep: Option<Issue>,
    /// The number of `{{…}}` tags.
    pub tags: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Issue {
    pub range: Range<usize>,
    pub message: String,
    pub label: String,
    pub related: Option<(Range<usize>, String)>,
    pub help: String,
}

#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// `{{x}}`, `{{helper a b}}`; `raw` for `{{{x}}}` and `{{& x}}`.
    Output { call: Call, raw: bool },
    /// `{{#helper …}} … {{else if …}} … {{else}} … {{/helper}}`.
    Block {
        call: Call,
        body: Vec<Node>,
        arms: Vec<Arm>,
    },
    /// `{{> name ctx key=value}}`, or the block form `{{#> name}} … {{/name}}`.
    Partial {
        target: PartialTarget,
        params: Vec<Operand>,
        hash: Vec<HashArg>,
        block: Option<Vec<Node>>,
    },
    /// `{{#*inline "name"}} … {{/inline}}`.
    Inline {
        name: Option<String>,
        body: Vec<Node>,
    },
    /// Comments, raw blocks and decorators.
    Skip,
}

/// `{{else}}` or `{{else if cond}}` and what follows it.
#[derive(Clone, Debug)]
pub(crate) struct Arm {
    pub chain: Option<Call>,
    pub body: Vec<Node>,
}

#[derive(Clone, Debug)]
pub(crate) enum PartialTarget {
    Name(String, Range<usize>),
    /// `{{> (expr)}}`: chosen at render time.
    Dynamic(Range<usize>),
}

/// A helper call or a bare name: `name params… key=value… as |a b|`.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub name: Operand,
    pub params: Vec<Operand>,
    pub hash: Vec<HashArg>,
    pub block_params: Vec<(String, Range<usize>)>,
    /// The whole tag or subexpression.
    pub range: Range<usize>,
}

impl Call {
    /// The name when it is a plain identifier (a helper candidate).
    pub fn simple_name(&self) -> Option<&str> {
        match &self.name {
            Operand::Path(p) if is_identifier(&p.raw) => Some(&p.raw),
            _ => None,
        }
    }

    pub fn has_args(&self) -> bool {
        !self.params.is_empty() || !self.hash.is_empty()
    }
}

#[derive(Clone, Debug)]
pub(crate) struct HashArg {
    pub key: String,
    pub value: Operand,
}

#[derive(Clone, Debug)]
pub(crate) enum Operand {
    Path(PathRef),
    Literal(Json, Range<usize>),
    Sub(Box<Call>),
}

impl Operand {
    pub fn range(&self) -> Range<usize> {
        match self {
            Operand::Path(p) => p.range.clone(),
            Operand::Literal(_, r) => r.clone(),
            Operand::Sub(c) => c.range.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct PathRef {
    pub raw: String,
    pub range: Range<usize>,
}

fn is_symbol_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$' | ':') || !c.is_ascii()
}

fn is_partial_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@' | '/' | '.') || !c.is_ascii()
}

pub(crate) fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_symbol_char)
}

/// What a tag is, from the characters after `{{` (and `~`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sigil {
    Plain,
    Triple,
    Amp,
    Open,
    PartialOpen,
    DecoratorOpen,
    Close,
    Partial,
    Decorator,
    Else,
}

/// A lexed token inside a tag.
#[derive(Clone, Debug)]
enum Tok {
    Path(String, Range<usize>),
    Lit(Json, Range<usize>),
    Open(usize),
    Close(usize),
    Eq,
    Pipe,
}

/// One open block while scanning.
struct Frame {
    kind: FrameKind,
    /// The name its closing tag must repeat.
    name: String,
    open: Range<usize>,
    body: Vec<Node>,
    arms: Vec<Arm>,
}

enum FrameKind {
    Root,
    Block(Call),
    Partial {
        target: PartialTarget,
        params: Vec<Operand>,
        hash: Vec<HashArg>,
    },
    Inline(Option<String>),
}

impl Frame {
    fn current(&mut self) -> &mut Vec<Node> {
        match self.arms.last_mut() {
            Some(arm) => &mut arm.body,
            None => &mut self.body,
        }
    }
}

struct Scanner<'s> {
    src: &'s str,
    pos: usize,
    frames: Vec<Frame>,
    issues: Vec<Issue>,
    too_deep: Option<Issue>,
    tags: usize,
}

/// Scans a template. Never fails; see [`Parsed::issues`].
pub(crate) fn parse(src: &str) -> Parsed {
    let mut s = Scanner {
        src,
        pos: 0,
        frames: vec![Frame {
            kind: FrameKind::Root,
            name: String::new(),
            open: 0..0,
            body: Vec::new(),
            arms: Vec::new(),
        }],
        issues: Vec::new(),
        too_deep: None,
        tags: 0,
    };
    s.run();
    while s.frames.len() > 1 {
        let Some(f) = s.frames.pop() else { break };
        let shown = &s.src[f.open.clone()];
        s.issues.push(Issue {
            range: f.open.clone(),
            message: format!("`{}` is never closed", shorten(shown)),
            label: "opened here".into(),
            related: None,
            help: format!("close it with `{{{{/{}}}}}` after its content", f.name),
        });
        s.close_frame(f);
    }
    Parsed {
        nodes: s.frames.pop().map(|f| f.body).unwrap_or_default(),
        issues: s.issues,
        too_deep: s.too_deep,
        tags: s.tags,
    }
}

/// A tag as shown in a message, cut when long.
pub(crate) fn shorten(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if one_line.chars().count() > 40 {
        let cut: String = one_line.chars().take(37).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

impl<'s> Scanner<'s> {
    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn push_node(&mut self, node: Node) {
        if let Some(f) = self.frames.last_mut() {
            f.current().push(node);
        }
    }

    fn run(&mut self) {
        let mut text_start = 0;
        while let Some(found) = self.rest().find("{{") {
            let at = self.pos + found;
            // `\{{` is literal text; two or more backslashes are text too,
            // but the braces then open a tag.
            let backslashes = self.src[text_start..at]
                .bytes()
                .rev()
                .take_while(|&b| b == b'\\')
                .count();
            if backslashes == 1 {
                self.pos = at + 2;
                if self.rest().starts_with("{{") {
                    self.pos += 2;
                }
                continue;
            }
            self.pos = at;
            self.tags += 1;
            if !self.tag() {
                // Unclosed: the rest is text.
                break;
            }
            text_start = self.pos;
            if self.too_deep.is_some() {
                return;
            }
        }
        self.pos = self.src.len();
    }

    /// Scans the tag at `self.pos` (which starts with `{{`). Returns false
    /// when it is not closed.
    fn tag(&mut self) -> bool {
        let start = self.pos;
        let rest = self.rest();
        if rest.starts_with("{{{{") {
            return self.raw_block(start);
        }
        if rest.starts_with("{{!--") {
            return self.comment(start, "--}}");
        }
        if rest.starts_with("{{!") {
            return self.comment(start, "}}");
        }
        self.pos += 2;
        if self.rest().starts_with('~') {
            self.pos += 1;
        }
        let sigil = self.sigil();
        let Some((toks, end)) = self.lex(start, sigil) else {
            return false;
        };
        self.pos = end;
        self.handle(sigil, toks, start..end);
        true
    }

    fn sigil(&mut self) -> Sigil {
        let rest = self.rest();
        let (sigil, len) = if rest.starts_with("#>") {
            (Sigil::PartialOpen, 2)
        } else if rest.starts_with("#*") {
            (Sigil::DecoratorOpen, 2)
        } else if let Some(c) = rest.chars().next() {
            match c {
                '{' => (Sigil::Triple, 1),
                '&' => (Sigil::Amp, 1),
                '#' => (Sigil::Open, 1),
                '/' => (Sigil::Close, 1),
                '>' => (Sigil::Partial, 1),
                '*' => (Sigil::Decorator, 1),
                '^' => (Sigil::Else, 1),
                _ => {
                    let after = rest.strip_prefix("else");
                    match after {
                        Some(a) if !a.starts_with(is_symbol_char) => (Sigil::Else, 4),
                        _ => (Sigil::Plain, 0),
                    }
                }
            }
        } else {
            (Sigil::Plain, 0)
        };
        self.pos += len;
        sigil
    }

    fn comment(&mut self, start: usize, end: &str) -> bool {
        match self.src[start + 3..].find(end) {
            Some(i) => {
                self.pos = start + 3 + i + end.len();
                self.push_node(Node::Skip);
                true
            }
            None => {
                self.issues.push(Issue {
                    range: start..start + 3,
                    message: "this comment is never closed".into(),
                    label: format!("no `{end}` after this"),
                    related: None,
                    help: "end the comment with `--}}` (or `}}` for a `{{! … }}` comment)".into(),
                });
                false
            }
        }
    }

    fn raw_block(&mut self, start: usize) -> bool {
        let Some(open_end) = self.src[start..].find("}}}}").map(|i| start + i + 4) else {
            self.issues.push(Issue {
                range: start..start + 4,
                message: "this raw block tag is never closed".into(),
                label: "no `}}}}` after this".into(),
                related: None,
                help: "end the tag with `}}}}`".into(),
            });
            return false;
        };
        let Some(close) = self.src[open_end..].find("{{{{/").map(|i| open_end + i) else {
            self.issues.push(Issue {
                range: start..open_end,
                message: "this raw block is never closed".into(),
                label: "no `{{{{/…}}}}` after this".into(),
                related: None,
                help: "end the raw block with `{{{{/raw}}}}`".into(),
            });
            return false;
        };
        let Some(close_end) = self.src[close..].find("}}}}").map(|i| close + i + 4) else {
            self.issues.push(Issue {
                range: close..close + 5,
                message: "this raw block end is never closed".into(),
                label: "no `}}}}` after this".into(),
                related: None,
                help: "end the tag with `}}}}`".into(),
            });
            return false;
        };
        self.pos = close_end;
        self.push_node(Node::Skip);
        true
    }

    /// Lexes the inside of a tag up to its closing braces. Returns the
    /// tokens and the end offset.
    fn lex(&mut self, start: usize, sigil: Sigil) -> Option<(Vec<Tok>, usize)> {
        let src = self.src;
        let bytes = src.as_bytes();
        let mut i = self.pos;
        let mut toks = Vec::new();
        let mut depth = 0usize;
        let closing_brace = sigil == Sigil::Triple;
        // Partial names are not ordinary names.
        if matches!(sigil, Sigil::Partial | Sigil::PartialOpen) {
            while i < bytes.len() && (bytes[i] as char).is_ascii_whitespace() {
                i += 1;
            }
            let c = src[i..].chars().next();
            match c {
                Some('\'') => {
                    let end = find_quote(src, i + 1, '\'').unwrap_or(src.len());
                    toks.push(Tok::Path(
                        src[i + 1..end].to_string(),
                        i..(end + 1).min(src.len()),
                    ));
                    i = (end + 1).min(src.len());
                }
                Some('[') => {
                    let end = src[i..].find(']').map(|e| i + e).unwrap_or(src.len());
                    toks.push(Tok::Path(
                        src[i + 1..end].to_string(),
                        i..(end + 1).min(src.len()),
                    ));
                    i = (end + 1).min(src.len());
                }
                Some('(') => {}
                Some(_) => {
                    let len: usize = src[i..]
                        .chars()
                        .take_while(|&c| is_partial_char(c))
                        .map(char::len_utf8)
                        .sum();
                    if len > 0 {
                        toks.push(Tok::Path(src[i..i + len].to_string(), i..i + len));
                        i += len;
                    }
                }
                None => {}
            }
        }
        loop {
            while i < bytes.len() && (bytes[i] as char).is_ascii_whitespace() {
                i += 1;
            }
            if i >= bytes.len() {
                self.issues.push(Issue {
                    range: start..(start + 2).min(src.len()),
                    message: "this tag is never closed".into(),
                    label: "no `}}` after this".into(),
                    related: None,
                    help: "add `}}` at the end of the tag".into(),
                });
                return None;
            }
            let rest = &src[i..];
            // The end of the tag.
            let mut r = rest;
            let mut consumed = 0;
            let mut ok = true;
            if closing_brace {
                if let Some(x) = r.strip_prefix('}') {
                    r = x;
                    consumed += 1;
                } else {
                    ok = false;
                }
            }
            if ok {
                let trail = r.starts_with('~');
                let r2 = if trail { &r[1..] } else { r };
                if r2.starts_with("}}") {
                    let end = i + consumed + usize::from(trail) + 2;
                    return Some((toks, end));
                }
            }
            if rest.starts_with("{{") {
                self.issues.push(Issue {
                    range: start..(start + 2).min(src.len()),
                    message: "this tag is not closed before the next `{{`".into(),
                    label: "no `}}` after this".into(),
                    related: None,
                    help: "add `}}` at the end of the tag".into(),
                });
                i += 2;
                continue;
            }
            let c = rest.chars().next().unwrap_or(' ');
            match c {
                '(' => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        self.deep(i);
                        return None;
                    }
                    toks.push(Tok::Open(i));
                    i += 1;
                }
                ')' => {
                    depth = depth.saturating_sub(1);
                    toks.push(Tok::Close(i + 1));
                    i += 1;
                }
                '=' => {
                    toks.push(Tok::Eq);
                    i += 1;
                }
                '|' => {
                    toks.push(Tok::Pipe);
                    i += 1;
                }
                '"' | '\'' => {
                    let end = find_quote(src, i + 1, c);
                    let Some(end) = end else {
                        self.issues.push(Issue {
                            range: i..i + 1,
                            message: "this string is never closed".into(),
                            label: "unterminated string".into(),
                            related: None,
                            help: "close the string with the same quote it opens with".into(),
                        });
                        return None;
                    };
                    let value = unquote(&src[i + 1..end], c);
                    toks.push(Tok::Lit(Json::String(value), i..end + 1));
                    i = end + 1;
                }
                '[' | '{' => {
                    // A JSON literal, or a `[segment]` of a path.
                    let Some(end) = matching_bracket(src, i, MAX_DEPTH) else {
                        self.deep(i);
                        return None;
                    };
                    let text = &src[i..end];
                    match serde_json::from_str::<Json>(text) {
                        Ok(v) if !text.contains("}}") => {
                            toks.push(Tok::Lit(v, i..end));
                            i = end;
                        }
                        _ if c == '[' => {
                            let (tok, next) = lex_path(src, i);
                            toks.push(tok);
                            i = next;
                        }
                        _ => {
                            // Not something Handlebars accepts; skip a character.
                            i += 1;
                        }
                    }
                }
                '}' | '~' => {
                    // A stray brace or tilde; Handlebars reports it.
                    i += 1;
                }
                _ => {
                    let (tok, next) = lex_path(src, i);
                    toks.push(tok);
                    i = next.max(i + c.len_utf8());
                }
            }
        }
    }

    fn deep(&mut self, at: usize) {
        self.too_deep = Some(Issue {
            range: at..(at + 1).min(self.src.len()),
            message: format!("this template nests more than {MAX_DEPTH} levels deep"),
            label: "too deep".into(),
            related: None,
            help: "flatten the nesting, or split the template into partials".into(),
        });
    }

    fn handle(&mut self, sigil: Sigil, toks: Vec<Tok>, range: Range<usize>) {
        match sigil {
            Sigil::Plain | Sigil::Triple | Sigil::Amp => {
                if let Some(call) = calls(&toks, range.clone()) {
                    self.push_node(Node::Output {
                        call,
                        raw: sigil != Sigil::Plain,
                    });
                }
            }
            Sigil::Decorator => self.push_node(Node::Skip),
            Sigil::Partial => {
                let (target, params, hash) = partial_parts(&toks, range);
                self.push_node(Node::Partial {
                    target,
                    params,
                    hash,
                    block: None,
                });
            }
            Sigil::Open | Sigil::PartialOpen | Sigil::DecoratorOpen => {
                if self.frames.len() > MAX_DEPTH {
                    self.deep(range.start);
                    return;
                }
                let (kind, name) = match sigil {
                    Sigil::Open => {
                        let Some(call) = calls(&toks, range.clone()) else {
                            return;
                        };
                        let name = match &call.name {
                            Operand::Path(p) => p.raw.clone(),
                            _ => String::new(),
                        };
                        (FrameKind::Block(call), name)
                    }
                    Sigil::PartialOpen => {
                        let (target, params, hash) = partial_parts(&toks, range.clone());
                        let name = match &target {
                            PartialTarget::Name(n, _) => n.clone(),
                            PartialTarget::Dynamic(_) => String::new(),
                        };
                        (
                            FrameKind::Partial {
                                target,
                                params,
                                hash,
                            },
                            name,
                        )
                    }
                    _ => {
                        let name = match toks.first() {
                            Some(Tok::Path(n, _)) => n.clone(),
                            _ => String::new(),
                        };
                        let inline = match toks.get(1) {
                            Some(Tok::Lit(Json::String(s), _)) if name == "inline" => {
                                Some(s.clone())
                            }
                            _ => None,
                        };
                        (FrameKind::Inline(inline), name)
                    }
                };
                self.frames.push(Frame {
                    kind,
                    name,
                    open: range,
                    body: Vec::new(),
                    arms: Vec::new(),
                });
            }
            Sigil::Else => {
                let chain = if toks.is_empty() {
                    None
                } else {
                    calls(&toks, range.clone())
                };
                let in_block = self.frames.len() > 1
                    && matches!(
                        self.frames.last().map(|f| &f.kind),
                        Some(FrameKind::Block(_))
                    );
                if !in_block {
                    self.issues.push(Issue {
                        range: range.clone(),
                        message: format!("`{}` outside a block", shorten(&self.src[range])),
                        label: "no `{{#…}}` block is open here".into(),
                        related: None,
 help: "`{{else}}` goes between `{{#if …}}` (or another block) and its `{{/if}}`".into(),
                    });
                    return;
                }
                if let Some(f) = self.frames.last_mut() {
                    f.arms.push(Arm {
                        chain,
                        body: Vec::new(),
                    });
                }
            }
            Sigil::Close => {
                let name = match toks.first() {
                    Some(Tok::Path(n, _)) => n.clone(),
                    _ => String::new(),
                };
                if self.frames.len() <= 1 {
                    self.issues.push(Issue {
                        range: range.clone(),
                        message: format!(
                            "`{}` closes a block that is not open",
                            shorten(&self.src[range])
                        ),
                        label: "nothing to close".into(),
                        related: None,
                        help: "remove it, or open the block before it".into(),
                    });
                    return;
                }
                let Some(f) = self.frames.pop() else { return };
                if !name.is_empty() && name != f.name {
                    self.issues.push(Issue {
                        range: range.clone(),
                        message: format!(
                            "`{}` does not close `{}`",
                            shorten(&self.src[range.clone()]),
                            shorten(&self.src[f.open.clone()])
                        ),
                        label: format!("expected `{{{{/{}}}}}`", f.name),
                        related: Some((f.open.clone(), "the block opened here".into())),
                        help: format!("close the inner block first, with `{{{{/{}}}}}`", f.name),
                    });
                }
                self.close_frame(f);
            }
        }
    }

    fn close_frame(&mut self, f: Frame) {
        let node = match f.kind {
            FrameKind::Root => return,
            FrameKind::Block(call) => Node::Block {
                call,
                body: f.body,
                arms: f.arms,
            },
            FrameKind::Partial {
                target,
                params,
                hash,
            } => Node::Partial {
                target,
                params,
                hash,
                block: Some(f.body),
            },
            FrameKind::Inline(name) => Node::Inline { name, body: f.body },
        };
        self.push_node(node);
    }
}

/// The offset of the closing quote, skipping backslash escapes.
fn find_quote(src: &str, from: usize, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in src[from..].char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some(from + i);
        }
    }
    None
}

fn unquote(inner: &str, quote: char) -> String {
    let json = if quote == '"' {
        format!("\"{inner}\"")
    } else {
        format!("\"{}\"", inner.replace("\\'", "'").replace('"', "\\\""))
    };
    serde_json::from_str::<String>(&json).unwrap_or_else(|_| inner.to_string())
}

/// The end (exclusive) of the bracketed literal starting at `from`.
fn matching_bracket(src: &str, from: usize, max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str: Option<char> = None;
    let mut escaped = false;
    for (i, c) in src[from..].char_indices() {
        if let Some(q) = in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                in_str = None;
            }
            continue;
        }
        match c {
            '"' => in_str = Some('"'),
            '[' | '{' => {
                depth += 1;
                if depth > max {
                    return None;
                }
            }
            ']' | '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(from + i + 1);
                }
            }
            _ => {}
        }
    }
    Some(src.len())
}

/// A path, number or keyword literal starting at `from`.
fn lex_path(src: &str, from: usize) -> (Tok, usize) {
    let mut i = from;
    let bytes = src.as_bytes();
    while i < bytes.len() {
        let c = src[i..].chars().next().unwrap_or(' ');
        if c == '[' {
            match src[i..].find(']') {
                Some(e) => i += e + 1,
                None => i = src.len(),
            }
            continue;
        }
        if c.is_whitespace() || matches!(c, '(' | ')' | '=' | '|' | '}' | '~' | '"' | '\'' | '{') {
            break;
        }
        i += c.len_utf8();
    }
    let text = &src[from..i];
    let lit = match text {
        "true" => Some(Json::Bool(true)),
        "false" => Some(Json::Bool(false)),
        "null" => Some(Json::Null),
        _ if looks_numeric(text) => serde_json::from_str::<Json>(text)
            .ok()
            .or_else(|| text.parse::<f64>().ok().map(Json::from)),
        _ => None,
    };
    match lit {
        Some(v) => (Tok::Lit(v, from..i), i),
        None => (Tok::Path(text.to_string(), from..i), i),
    }
}

fn looks_numeric(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    digits.starts_with(|c: char| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'E' | '-'))
}

/// Parses the tokens of a tag into a call.
fn calls(toks: &[Tok], range: Range<usize>) -> Option<Call> {
    let mut i = 0;
    let call = call_at(toks, &mut i, range, false)?;
    Some(call)
}

fn call_at(toks: &[Tok], i: &mut usize, range: Range<usize>, sub: bool) -> Option<Call> {
    let name = operand(toks, i)?;
    let mut call = Call {
        name,
        params: Vec::new(),
        hash: Vec::new(),
        block_params: Vec::new(),
        range,
    };
    while *i < toks.len() {
        match &toks[*i] {
            Tok::Close(end) if sub => {
                call.range.end = *end;
                *i += 1;
                return Some(call);
            }
            Tok::Close(_) | Tok::Eq => *i += 1,
            Tok::Path(p, _) if p == "as" && matches!(toks.get(*i + 1), Some(Tok::Pipe)) => {
                *i += 2;
                while let Some(Tok::Path(n, r)) = toks.get(*i) {
                    call.block_params.push((n.clone(), r.clone()));
                    *i += 1;
                }
                if matches!(toks.get(*i), Some(Tok::Pipe)) {
                    *i += 1;
                }
            }
            Tok::Path(key, _) if matches!(toks.get(*i + 1), Some(Tok::Eq)) => {
                let key = key.clone();
                *i += 2;
                if let Some(value) = operand(toks, i) {
                    call.hash.push(HashArg { key, value });
                }
            }
            Tok::Pipe => *i += 1,
            _ => match operand(toks, i) {
                Some(o) => call.params.push(o),
                None => *i += 1,
            },
        }
    }
    Some(call)
}

fn operand(toks: &[Tok], i: &mut usize) -> Option<Operand> {
    match toks.get(*i)? {
        Tok::Path(p, r) => {
            *i += 1;
            Some(Operand::Path(PathRef {
                raw: p.clone(),
                range: r.clone(),
            }))
        }
        Tok::Lit(v, r) => {
            *i += 1;
            Some(Operand::Literal(v.clone(), r.clone()))
        }
        Tok::Open(start) => {
            let start = *start;
            *i += 1;
            let call = call_at(toks, i, start..start + 1, true)?;
            Some(Operand::Sub(Box::new(call)))
        }
        Tok::Close(_) | Tok::Eq | Tok::Pipe => None,
    }
}

fn partial_parts(toks: &[Tok], range: Range<usize>) -> (PartialTarget, Vec<Operand>, Vec<HashArg>) {
    let mut i = 0;
    let target = match toks.first() {
        Some(Tok::Path(n, r)) => {
            i = 1;
            PartialTarget::Name(n.clone(), r.clone())
        }
        Some(Tok::Open(start)) => {
            let start = *start;
            let _ = operand(toks, &mut i);
            PartialTarget::Dynamic(start..toks_end(toks, i).unwrap_or(range.end))
        }
        _ => PartialTarget::Dynamic(range.clone()),
    };
    let mut params = Vec::new();
    let mut hash = Vec::new();
    while i < toks.len() {
        match &toks[i] {
            Tok::Path(key, _) if matches!(toks.get(i + 1), Some(Tok::Eq)) => {
                let key = key.clone();
                i += 2;
                if let Some(value) = operand(toks, &mut i) {
                    hash.push(HashArg { key, value });
                }
            }
            _ => match operand(toks, &mut i) {
                Some(o) => params.push(o),
                None => i += 1,
            },
        }
    }
    (target, params, hash)
}

fn toks_end(toks: &[Tok], i: usize) -> Option<usize> {
    match toks.get(i.checked_sub(1)?)? {
        Tok::Close(end) => Some(*end),
        Tok::Path(_, r) | Tok::Lit(_, r) => Some(r.end),
        _ => None,
    }
}

/// The byte ranges of every `.` path (`{{.}}`, `{{#each .}}`, `(upper .)`):
/// handlebars.js reads `.` as `this`, the Rust crate's grammar does not.
pub(crate) fn dot_paths(nodes: &[Node]) -> Vec<Range<usize>> {
    fn operand(op: &Operand, out: &mut Vec<Range<usize>>) {
        match op {
            Operand::Path(p) if p.raw == "." => out.push(p.range.clone()),
            Operand::Sub(c) => call(c, out),
            _ => {}
        }
    }
    fn call(c: &Call, out: &mut Vec<Range<usize>>) {
        operand(&c.name, out);
        for p in &c.params {
            operand(p, out);
        }
        for h in &c.hash {
            operand(&h.value, out);
        }
    }
    // An explicit stack: templates nest at most MAX_DEPTH, but no recursion
    // over nodes is needed.
    let mut out = Vec::new();
    let mut stack: Vec<&[Node]> = vec![nodes];
    while let Some(list) = stack.pop() {
        for n in list {
            match n {
                Node::Output { call: c, .. } => call(c, &mut out),
                Node::Block {
                    call: c,
                    body,
                    arms,
                } => {
                    call(c, &mut out);
                    stack.push(body);
                    for a in arms {
                        if let Some(c) = &a.chain {
                            call(c, &mut out);
                        }
                        stack.push(&a.body);
                    }
                }
                Node::Partial {
                    params,
                    hash,
                    block,
                    ..
                } => {
                    for p in params {
                        operand(p, &mut out);
                    }
                    for h in hash {
                        operand(&h.value, &mut out);
                    }
                    if let Some(b) = block {
                        stack.push(b);
                    }
                }
                Node::Inline { body, .. } => stack.push(body),
                Node::Skip => {}
            }
        }
    }
    out.sort_by_key(|r| r.start);
    out
}

/// `text` with every `.` path written `this` (see [`dot_paths`]).
pub(crate) fn with_this_for_dots(text: &str, nodes: &[Node]) -> Option<String> {
    let dots = dot_paths(nodes);
    if dots.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 3 * dots.len());
    let mut at = 0;
    for r in dots {
        if r.start < at || text.get(r.clone()) != Some(".") {
            continue;
        }
        out.push_str(&text[at..r.start]);
        out.push_str("this");
        at = r.end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(nodes: &[Node], out: &mut Vec<String>) {
        for n in nodes {
            match n {
                Node::Output { call, raw } => out.push(format!(
                    "{}{:?}",
                    if *raw { "!" } else { "" },
                    call.name.range()
                )),
                Node::Block { call, body, arms } => {
                    out.push(format!("#{:?}", call.name.range()));
                    names(body, out);
                    for a in arms {
                        out.push("else".into());
                        names(&a.body, out);
                    }
                    out.push("/".into());
                }
                Node::Partial { target, .. } => out.push(format!(">{target:?}")),
                Node::Inline { name, .. } => out.push(format!("inline {name:?}")),
                Node::Skip => out.push("skip".into()),
            }
        }
    }

    fn shape(src: &str) -> Vec<String> {
        let p = parse(src);
        assert!(p.issues.is_empty(), "{:?}", p.issues);
        let mut out = Vec::new();
        names(&p.nodes, &mut out);
        out
    }

    #[test]
    fn scans_tags_with_ranges() {
        let src = "Hi {{first_name}}, {{{raw}}} {{#if x}}a{{else}}b{{/if}}";
        assert_eq!(shape(src), ["5..15", "!22..25", "#32..34", "else", "/"]);
    }

    #[test]
    fn strings_may_hold_braces() {
        let p = parse(r#"{{default x "}}"}} done"#);
        assert!(p.issues.is_empty());
        let Node::Output { call, .. } = &p.nodes[0] else {
            panic!("{:?}", p.nodes)
        };
        assert_eq!(call.params.len(), 2);
        assert!(matches!(&call.params[1], Operand::Literal(Json::String(s), _) if s == "}}"));
    }

    #[test]
    fn escapes_comments_and_raw_blocks_are_not_tags() {
        let p = parse(r"\{{x}} {{!-- {{y}} --}} {{! z }} {{{{raw}}}} {{w}} {{{{/raw}}}}");
        assert!(p.issues.is_empty());
        assert!(
            !p.nodes.iter().any(|n| matches!(n, Node::Output { .. })),
            "{:?}",
            p.nodes
        );
    }

    #[test]
    fn subexpressions_hash_and_block_params() {
        let p = parse(r#"{{#each (lookup a "b") as |item i|}}{{item}}{{/each}}{{x k=(upper y)}}"#);
        let Node::Block { call, .. } = &p.nodes[0] else {
            panic!()
        };
        assert!(matches!(&call.params[0], Operand::Sub(c) if c.params.len() == 2));
        assert_eq!(call.block_params.len(), 2);
        let Node::Output { call, .. } = &p.nodes[1] else {
            panic!()
        };
        assert_eq!(call.hash[0].key, "k");
    }

    #[test]
    fn structural_issues() {
        assert_eq!(parse("{{#if x}}").issues.len(), 1);
        assert_eq!(parse("{{/if}}").issues.len(), 1);
        assert_eq!(parse("{{#if x}}{{/each}}").issues.len(), 1);
        assert_eq!(parse("hello {{name").issues[0].range, 6..8);
        assert!(parse(&"{{#if x}}".repeat(100)).too_deep.is_some());
        assert!(
            parse(&format!("{{{{x {}}}}}", "(".repeat(100)))
                .too_deep
                .is_some()
        );
    }

    #[test]
    fn partials_and_tilde() {
        let p = parse("a {{~> footer ctx k=v ~}} b {{#> layout}}x{{/layout}}");
        assert!(p.issues.is_empty());
        match &p.nodes[0] {
            Node::Partial {
                target: PartialTarget::Name(n, _),
                params,
                hash,
                ..
            } => {
                assert_eq!(n, "footer");
                assert_eq!(params.len(), 1);
                assert_eq!(hash.len(), 1);
            }
            n => panic!("{n:?}"),
        }
        assert!(matches!(&p.nodes[1], Node::Partial { block: Some(_), .. }));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "{{",
            "{{{",
            "{{{{",
            "}}",
            "{{#}}",
            "{{/}}",
            "{{>}}",
            "{{else}}",
            "{{'}}",
            "{{[}}",
            "{{x [}}",
            "{{(}}",
            "{{)}}",
            "{{x=}}",
            "{{as ||}}",
            "{{~}}",
            "{{é}}",
            "\\{{",
            "{{!",
            "{{!--",
            "{{{{x}}}}",
            "{{{{x}}}}{{{{/",
            "{{> (}}",
            "{{x \"\\\"}}",
        ] {
            let _ = parse(s);
        }
    }
}
