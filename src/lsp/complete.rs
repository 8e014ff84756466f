//! Completion in context, read from the text before the cursor (a
//! half-typed file does not parse, so the AST cannot say where the cursor
//! is) and from the project's last analysis (the names it declares).
//!
//! - after `send` / `touch`: template names;
//! - after `clicked(T.`: the links of `T`; after `sum(E.`: the fields of `E`;
//! - after `opened(` and the other engagement functions: templates and `any`;
//! - after `count(`, `sum(`…: events; after `join`, `leave`, `joined`:
//!   lists; `entered`: segments; `start`: cadences; `topic =`: topics;
//! - inside `where`: the event's fields, then the contact's;
//! - inside `{{ }}` (template strings and `.hbs` files): helpers and
//!   variables, and `links.NAME`;
//! - elsewhere: the keywords of the block the cursor is in, and in
//!   conditions the fields, segments and lists.

use std::collections::BTreeSet;

use lsp_types::{Position, Url};
use serde_json::{Value, json};

use super::Server;
use super::convert;
use super::features::Ctx;
use super::index::{Index, SymKind};
use crate::syntax::ast::DeclKind;

/// The helpers of §6 and Handlebars' built-ins (`render::helpers::HELPERS`).
const HELPERS: &[&str] = &[
    "default",
    "upper",
    "lower",
    "capitalize",
    "date",
    "number",
    "eq",
    "if",
    "unless",
    "each",
    "with",
    "lookup",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "and",
    "or",
    "not",
];

/// Top-level variables of the render context besides contact fields
/// (`render::model::BUILTIN_VARIABLES`).
const VARIABLES: &[&str] = &[
    "id",
    "tags",
    "lists",
    "links",
    "unsubscribe_url",
    "preferences_url",
    "workspace",
    "trigger",
];

const WORKSPACE_VARIABLES: &[&str] = &["name", "timezone", "from", "address"];

const DECLARATIONS: &[&str] = &[
    "workspace",
    "contact",
    "event",
    "list",
    "segment",
    "persona",
    "negative persona",
    "template",
    "scenario",
    "cadence",
    "pressure",
    "topic",
    "consent",
];

const SCENARIO: &[&str] = &[
    "audience",
    "trigger",
    "reentry",
    "exit when",
    "goal",
    "send",
    "wait",
    "wait until",
    "branch",
    "split",
    "join",
    "leave",
    "tag",
    "untag",
    "start",
    "exit",
];
const STEPS: &[&str] = &[
    "send",
    "wait",
    "wait until",
    "branch",
    "split",
    "join",
    "leave",
    "tag",
    "untag",
    "start",
    "exit",
];
const TRIGGERS: &[&str] = &[
    "joined", "event", "entered", "every", "once at", "at", "yearly",
];
const CADENCE: &[&str] = &["stop when", "spacing", "touch", "after", "when"];
const TEMPLATE: &[&str] = &[
    "kind",
    "subject",
    "preheader",
    "html",
    "text",
    "body",
    "title",
    "from",
    "reply_to",
    "topic",
    "url",
    "method",
    "assignee",
    "due",
    "priority",
    "expires",
    "link",
    "header",
    "file",
];
const PERSONA: &[&str] = &["event", "expect"];
const PRESSURE: &[&str] = &[
    "email",
    "sms",
    "push",
    "task",
    "webhook",
    "all",
    "max",
    "per",
    "gap",
    "quiet",
    "weekends",
    "on excess",
    "defer",
    "drop",
    "under below",
];
const WORKSPACE: &[&str] = &["name", "timezone", "from", "address", "locale", "locales"];
/// Field types: the plan's own list.
const TYPES: &[&str] = &crate::plan::FIELD_TYPES;
const LIST: &[&str] = &["on join", "join", "leave", "tag", "untag"];
const CONDITION: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "contains",
    "is set",
    "is not set",
    "ago",
    "now",
    "true",
    "false",
    "since",
    "opened",
    "clicked",
    "delivered",
    "replied",
    "bounced",
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "starts_with",
    "ends_with",
    "matches",
];
const ENGAGEMENT: &[&str] = &crate::plan::ENGAGEMENTS;
const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "avg", "distinct"];

// LSP CompletionItemKind numbers.
const K_FUNCTION: u32 = 3;
const K_FIELD: u32 = 5;
const K_VARIABLE: u32 = 6;
const K_PROPERTY: u32 = 10;
const K_ENUM: u32 = 13;
const K_KEYWORD: u32 = 14;
const K_ENUM_MEMBER: u32 = 20;
const K_EVENT: u32 = 23;
const K_MODULE: u32 = 9;

struct Items {
    seen: BTreeSet<String>,
    list: Vec<Value>,
}

impl Items {
    fn add(&mut self, label: &str, kind: u32, detail: &str) {
        if self.seen.insert(label.to_string()) {
            self.list
                .push(json!({ "label": label, "kind": kind, "detail": detail }));
        }
    }

    fn words(&mut self, words: &[&str], kind: u32, detail: &str) {
        for w in words {
            self.add(w, kind, detail);
        }
    }

    fn names(&mut self, ix: &Index, kind: SymKind, owner: Option<&str>, k: u32) {
        let mut names: Vec<&str> = ix
            .defs
            .keys()
            .filter(|key| key.kind == kind && (owner.is_none() || key.owner.as_deref() == owner))
            .map(|key| key.name.as_str())
            .collect();
        names.sort();
        for n in names {
            self.add(n, k, kind.noun());
        }
    }
}

pub fn complete_at(server: &mut Server, uri: &Url, pos: Position) -> Value {
    let enc = server.encoding;
    let Some((project, ix, rel)) = server.analysed(uri) else {
        return json!([]);
    };
    // The text as the editor has it (the analysis holds the same).
    let Some(file) = project.snap.file_id(&rel) else {
        return json!([]);
    };
    let ctx = Ctx {
        project,
        ix,
        file,
        enc,
    };
    let source = ctx.source(file);
    let offset = convert::offset(source, pos, enc);
    let before = &source.text[..offset];
    let mut items = Items {
        seen: BTreeSet::new(),
        list: Vec::new(),
    };
    if source.camp {
        camp(&ctx, before, &mut items);
    } else if let Some(tag) = open_tag(before) {
        let owners: Vec<&str> = ix
            .template_files
            .iter()
            .filter(|(_, files)| files.contains(&rel))
            .map(|(t, _)| t.as_str())
            .collect();
        in_tag(&ctx, tag, &owners, &mut items);
    }
    json!({ "isIncomplete": false, "items": items.list })
}

/// The inside of a `{{` tag still open at the end of `before`.
fn open_tag(before: &str) -> Option<&str> {
    let open = before.rfind("{{")?;
    let inside = &before[open + 2..];
    (!inside.contains("}}")).then_some(inside)
}

fn in_tag(c: &Ctx, tag: &str, owners: &[&str], items: &mut Items) {
    let word = &tag[word_start(tag, |ch| is_word(ch) || ch == '.')..];
    if let Some(_rest) = word.strip_prefix("links.") {
        for t in owners {
            items.names(c.ix, SymKind::Link, Some(*t), K_PROPERTY);
        }
        return;
    }
    if word.starts_with("workspace.") {
        items.words(WORKSPACE_VARIABLES, K_PROPERTY, "workspace");
        return;
    }
    items.names(c.ix, SymKind::Field, None, K_FIELD);
    items.words(VARIABLES, K_VARIABLE, "template variable");
    items.words(HELPERS, K_FUNCTION, "helper");
}

/// Where the run of characters matching `word` at the end of `s` starts.
fn word_start(s: &str, word: impl Fn(char) -> bool) -> usize {
    s.char_indices()
        .rev()
        .find(|&(_, ch)| !word(ch))
        .map_or(0, |(i, ch)| i + ch.len_utf8())
}

fn is_word(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_'
}

/// The last word of `s` (letters, digits, `_`), spaces after it ignored.
fn last_word(s: &str) -> &str {
    let t = s.trim_end();
    &t[word_start(t, is_word)..]
}

/// Whether `before` ends inside a string literal (on the current line).
fn in_string(line: &str) -> bool {
    let mut inside = false;
    let mut esc = false;
    for ch in line.chars() {
        match ch {
            '\\' if inside && !esc => {
                esc = true;
                continue;
            }
            '"' if !esc => inside = !inside,
            '/' if !inside => {}
            _ => {}
        }
        esc = false;
    }
    inside
}

fn camp(c: &Ctx, before: &str, items: &mut Items) {
    let line_start = before.rfind(['\n', '\r']).map_or(0, |i| i + 1);
    let line = &before[line_start..];
    if line.trim_start().starts_with("//") {
        return;
    }
    if in_string(line) {
        if let Some(tag) = open_tag(line) {
            // The template whose attribute this is.
            let owner = enclosing_template(c, before.len());
            let owners: Vec<&str> = owner.iter().map(String::as_str).collect();
            in_tag(c, tag, &owners, items);
        }
        return;
    }
    // The word being typed, and what comes before it.
    let start = word_start(line, is_word);
    let typed = &line[start..];
    let head = line[..start].trim_end();
    let prev = last_word(head);
    let ix = c.ix;

    // `T.` / `E.`: links of a template, fields of an event.
    if let Some(h) = head.strip_suffix('.').or_else(|| line.strip_suffix('.')) {
        let owner = last_word(h);
        if c.template(owner).is_some() {
            items.names(ix, SymKind::Link, Some(owner), K_PROPERTY);
        } else {
            items.names(ix, SymKind::EventField, Some(owner), K_FIELD);
        }
        return;
    }
    if let Some(before) = head.strip_suffix('(') {
        let f = last_word(before);
        if ENGAGEMENT.contains(&f) {
            items.add("any", K_KEYWORD, "any message");
            items.names(ix, SymKind::Template, None, K_FUNCTION);
            return;
        }
        if AGGREGATES.contains(&f) {
            events(ix, items);
            return;
        }
    }
    match prev {
        "send" | "touch" => {
            items.names(ix, SymKind::Template, None, K_FUNCTION);
            return;
        }
        "join" | "leave" | "joined" => {
            items.names(ix, SymKind::List, None, K_ENUM);
            return;
        }
        "entered" => {
            items.names(ix, SymKind::Segment, None, K_VARIABLE);
            return;
        }
        "start" => {
            items.names(ix, SymKind::Cadence, None, K_MODULE);
            return;
        }
        "trigger" => {
            items.words(TRIGGERS, K_KEYWORD, "trigger");
            return;
        }
        "goal" => {
            items.add("joined", K_KEYWORD, "keyword");
            events(ix, items);
            return;
        }
        "event" if block_path(before).first().is_some_and(|b| b != "event") => {
            events(ix, items);
            return;
        }
        "yearly" => {
            items.names(ix, SymKind::Field, None, K_FIELD);
            return;
        }
        _ => {}
    }
    if head.ends_with('=') && last_word(&head[..head.len() - 1]) == "topic" {
        items.names(ix, SymKind::Topic, None, K_ENUM_MEMBER);
        return;
    }
    if head.ends_with(':') || (prev == "set" && head.ends_with('<')) {
        items.words(TYPES, K_KEYWORD, "type");
        return;
    }
    // Inside `where`: the event's fields first.
    if let Some(w) = line.rfind(" where ") {
        let event = last_word(&line[..w]);
        let tail = &line[w..];
        let closed = tail.matches(')').count() > tail.matches('(').count();
        if !closed {
            items.names(ix, SymKind::EventField, Some(event), K_FIELD);
            condition(ix, items);
            return;
        }
    }
    let path = block_path(before);
    let block = path.last().map(String::as_str);
    let top = path.first().map(String::as_str);
    match (top, block) {
        (None, _) => {
            let trimmed = line.trim_start();
            if trimmed.len() == typed.len() {
                items.words(DECLARATIONS, K_KEYWORD, "declaration");
            } else if trimmed.starts_with("segment") || trimmed.starts_with("consent") {
                condition(ix, items);
            }
        }
        (Some("scenario"), Some("scenario")) => {
            items.words(SCENARIO, K_KEYWORD, "scenario");
            condition(ix, items);
        }
        (Some("scenario"), Some("branch")) => {
            items.words(&["when", "else"], K_KEYWORD, "branch");
            condition(ix, items);
        }
        (Some("scenario"), _) | (Some("list"), Some("on")) => {
            items.words(STEPS, K_KEYWORD, "step");
            condition(ix, items);
        }
        (Some("cadence"), _) => {
            items.words(CADENCE, K_KEYWORD, "cadence");
            condition(ix, items);
        }
        (Some("template"), _) => items.words(TEMPLATE, K_PROPERTY, "template attribute"),
        (Some("persona"), _) => {
            items.names(ix, SymKind::Field, None, K_FIELD);
            items.words(PERSONA, K_KEYWORD, "persona");
            condition(ix, items);
        }
        (Some("pressure"), _) => items.words(PRESSURE, K_KEYWORD, "pressure"),
        (Some("workspace"), _) => items.words(WORKSPACE, K_PROPERTY, "workspace attribute"),
        (Some("contact" | "event"), _) => items.words(TYPES, K_KEYWORD, "type"),
        (Some("list"), _) => items.words(LIST, K_KEYWORD, "list"),
        _ => condition(ix, items),
    }
}

fn events(ix: &Index, items: &mut Items) {
    items.names(ix, SymKind::Event, None, K_EVENT);
    for e in [
        "delivered",
        "opened",
        "clicked",
        "replied",
        "bounced",
        "unsubscribed",
    ] {
        items.add(e, K_EVENT, "message event");
    }
}

/// Names and words valid in a condition.
fn condition(ix: &Index, items: &mut Items) {
    items.names(ix, SymKind::Field, None, K_FIELD);
    items.names(ix, SymKind::Segment, None, K_VARIABLE);
    items.names(ix, SymKind::List, None, K_ENUM);
    items.words(CONDITION, K_KEYWORD, "keyword");
}

/// The blocks the end of `text` is inside, outermost first, each named by
/// the first word of the line that opened it (`scenario`, `branch`,
/// `when`…; `negative persona` is `persona`). Strings and comments are
/// skipped.
pub fn block_path(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut stack: Vec<String> = Vec::new();
    let mut line_start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' | b'\r' => line_start = i + 1,
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                continue;
            }
            b'{' => {
                // The line's words before the brace (after a `{` or `,` of
                // an earlier block on the same line).
                let seg = &text[line_start..i];
                let seg = seg.rsplit(['{', ',']).next().unwrap_or(seg);
                let mut words = seg.split_whitespace();
                let mut w = words.next().unwrap_or("");
                if w == "negative" {
                    w = words.next().unwrap_or("persona");
                }
                stack.push(w.to_string());
            }
            b'}' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    stack
}

/// The template declaration at byte `offset` of the file, by the AST.
fn enclosing_template(c: &Ctx, offset: usize) -> Option<String> {
    let file = c.project.snap.ast(c.file)?;
    file.decls.iter().find_map(|d| match &d.kind {
        DeclKind::Template(t)
            if d.span.start as usize <= offset && offset <= d.span.end as usize =>
        {
            Some(t.name.name.clone())
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_path_names_open_blocks() {
        let text = "scenario s {\n  branch {\n    when x { send a }\n    when y {\n";
        assert_eq!(block_path(text), ["scenario", "branch", "when"]);
        let text = "negative persona p {\n  name = \"{\"\n  // {\n";
        assert_eq!(block_path(text), ["persona"]);
        assert!(block_path("segment a = b\n").is_empty());
    }

    #[test]
    fn strings_and_tags() {
        assert!(in_string("  subject = \"Hello {{fir"));
        assert!(!in_string("  subject = \"Hello\" "));
        assert!(in_string(r#"  subject = "a \" {{x"#));
        assert_eq!(open_tag("Hello {{fir"), Some("fir"));
        assert_eq!(open_tag("Hello {{x}} y"), None);
    }
}
