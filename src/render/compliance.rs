//! What the bulk-sender rules require of a marketing email, checked on
//! what each persona actually receives: the rendered HTML and text part.
//!
//! - the postal address (`workspace.address`) shows in the HTML and in the
//!   text part (E0530);
//! - the HTML has a visible link to the unsubscribe URL: the `href` of an
//!   `<a>` with visible content and no hidden ancestor — not in a comment,
//!   not only in another attribute, not inside `display:none`,
//!   `visibility:hidden`, a `hidden` attribute, `<head>`, `<template>`,
//!   `<script>` or `<style>`, and rendered for this persona (E0531);
//! - the text part (written or derived from the HTML) carries the
//!   unsubscribe URL (E0532).
//!
//! The HTML is read by a small tokenizer that follows HTML5's rules where
//! they matter here (comments, raw-text elements, quoted attributes, end
//! tags that close open elements, void elements, a tag cut by the end of
//! the input is dropped). It never panics: it slices only at ASCII bytes
//! and loops without recursion. Texts are compared with all white space
//! removed, so line breaks and `<br>` inside the address do not matter.

use std::collections::{BTreeMap, BTreeSet};

use super::RenderedMessage;
use super::model::{MessageKind, PersonaInfo, TemplateInfo};
use super::problem::{ProblemKind, TemplateProblem};
use super::text::decode_entities;
use crate::diagnostics::Span;

/// Whether a template is under these rules: a marketing email.
pub(crate) fn applies(t: &TemplateInfo) -> bool {
    t.channel == "email" && t.kind == MessageKind::Marketing
}

/// What one persona's rendering lacks, with the reason when it helps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Missing {
    AddressInHtml,
    AddressInText,
    /// No visible unsubscribe link; why.
    VisibleLink(String),
    LinkInText,
}

/// The findings of one template over its personas: what is missing, for
/// which personas (in the order checked).
#[derive(Default)]
pub(crate) struct Findings {
    missing: BTreeMap<Missing, Vec<String>>,
    /// What each persona shape (see [`shape`]) lacks.
    by_shape: std::collections::HashMap<u64, Vec<Missing>>,
}

impl Findings {
    /// Whether a persona of this shape was checked already.
    pub fn knows(&self, shape: u64) -> bool {
        self.by_shape.contains_key(&shape)
    }

    /// Records for `persona` what the persona checked with the same shape
    /// lacks.
    pub fn same_as(&mut self, shape: u64, persona: &str) {
        for missing in self.by_shape.get(&shape).cloned().unwrap_or_default() {
            self.missing
                .entry(missing)
                .or_default()
                .push(persona.to_string());
        }
    }

    /// Checks one persona's rendering of `t` (a marketing email), of shape
    /// `shape`.
    pub fn persona(&mut self, p: &PersonaInfo, m: &RenderedMessage, address: &str, shape: u64) {
        let url = p
            .base
            .get("unsubscribe_url")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let mut found = check_message(m.html.as_deref(), m.text.as_deref(), url, address);
        // The preferences page lets the contact unsubscribe too (§12): a
        // link to it satisfies what a link to `unsubscribe_url` would.
        let preferences = p
            .base
            .get("preferences_url")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let link_missing = |f: &Missing| matches!(f, Missing::VisibleLink(_) | Missing::LinkInText);
        if !preferences.is_empty() && found.iter().any(link_missing) {
            let other = check_message(m.html.as_deref(), m.text.as_deref(), preferences, "");
            match other.iter().find(|f| matches!(f, Missing::VisibleLink(_))) {
                None => found.retain(|f| !matches!(f, Missing::VisibleLink(_))),
                // Only the preferences page is linked: its problem is the
                // one to show (hidden, in a comment…).
                Some(why) if !m.html.as_deref().unwrap_or("").contains(url) => {
                    for f in found.iter_mut() {
                        if matches!(f, Missing::VisibleLink(_)) {
                            *f = why.clone();
                        }
                    }
                }
                Some(_) => {}
            }
            if !other.contains(&Missing::LinkInText) {
                found.retain(|f| *f != Missing::LinkInText);
            }
        }
        // A text part derived from the HTML lacks what the HTML lacks: the
        // HTML's problem is the one to fix.
        if m.text_derived {
            if found.contains(&Missing::AddressInHtml) {
                found.retain(|f| *f != Missing::AddressInText);
            }
            if found.iter().any(|f| matches!(f, Missing::VisibleLink(_))) {
                found.retain(|f| *f != Missing::LinkInText);
            }
        }
        self.by_shape.insert(shape, found);
        self.same_as(shape, &p.name);
    }

    /// The problems, one per kind of miss (and reason), naming personas.
    pub fn report(self, t: &TemplateInfo, span_of: &dyn Fn(&str) -> Span) -> Vec<TemplateProblem> {
        let mut out = Vec::new();
        let text_written = t.body("text").is_some();
        for (missing, personas) in self.missing {
            let who = persona_list(&personas);
            let (kind, span, message, label, help) = match &missing {
                Missing::AddressInHtml => (
                    ProblemKind::MissingAddress,
                    span_of("html"),
                    format!("marketing email `{}` does not show the postal address in its HTML for {who}", t.name),
                    "no visible `workspace.address` in this HTML".to_string(),
                    "add `{{workspace.address}}` where every persona sees it, usually in the footer partial (not inside `{{#if}}`, a comment or a hidden element)".to_string(),
                ),
                Missing::AddressInText if text_written => (
                    ProblemKind::MissingAddress,
                    span_of("text"),
                    format!("marketing email `{}` does not show the postal address in its text part for {who}", t.name),
                    "no `workspace.address` in this text".to_string(),
                    "add `{{workspace.address}}` to the text part, for example in a text footer partial".to_string(),
                ),
                Missing::AddressInText => (
                    ProblemKind::MissingAddress,
                    span_of("html"),
                    format!("marketing email `{}` does not show the postal address in its text part (derived from the HTML) for {who}", t.name),
                    "the text part derived from this HTML has no address".to_string(),
                    "add `{{workspace.address}}` as visible text in the HTML, or write a `text` part that shows it".to_string(),
                ),
                Missing::VisibleLink(why) => (
                    ProblemKind::HiddenUnsubscribe,
                    span_of("html"),
                    format!("marketing email `{}` has no visible unsubscribe link for {who}: {why}", t.name),
                    format!("no visible unsubscribe link for {who}"),
                    "add `<a href=\"{{unsubscribe_url}}\">Unsubscribe</a>` where every persona sees it: outside comments, hidden elements and blocks such as `{{#if}}` that some personas skip".to_string(),
                ),
                Missing::LinkInText if text_written => (
                    ProblemKind::TextWithoutUnsubscribe,
                    span_of("text"),
                    format!("the text part of marketing email `{}` has no unsubscribe link for {who}", t.name),
                    "no `{{unsubscribe_url}}` in this text".to_string(),
                    "add a line such as `Unsubscribe: {{unsubscribe_url}}` to the text part".to_string(),
                ),
                Missing::LinkInText => (
                    ProblemKind::TextWithoutUnsubscribe,
                    span_of("html"),
                    format!("the text part of marketing email `{}`, derived from its HTML, has no unsubscribe link for {who}", t.name),
                    "the text part derived from this HTML has no unsubscribe URL".to_string(),
                    "make the unsubscribe link visible in the HTML, or write a `text` part with `{{unsubscribe_url}}`".to_string(),
                ),
            };
            out.push(
                TemplateProblem::new(kind, span, message, label)
                    .also(t.name_span, "marketing email declared here")
                    .help(help),
            );
        }
        out
    }
}

/// What the compliance of a rendering is taken to depend on, as a hash:
/// the values of bool and enum fields, and which other values are present
/// (or empty): an escaped value inserted into HTML cannot create a link,
/// hide one or remove the address, and rendering every persona of a large
/// project costs ten times the whole check. A string holding markup, an
/// entity, braces, a quote or a line break makes its persona a shape of its
/// own (`unique`). Personas of one shape get the same verdict, so only one
/// is checked and the others are named with it. The known gap (documented
/// in docs/language.md): a block that compares a text or number value or
/// looks inside a set (`{{#if (eq city "Lyon")}}`, `{{#if (gt ltv 100)}}`)
/// sees one shape for all of them.
pub(crate) fn shape(
    data: &serde_json::Value,
    only: Option<&BTreeSet<String>>,
    model: &super::model::Model,
    unique: usize,
) -> u64 {
    use crate::check::types::Type;
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut special = false;
    // (text-like, value), walked without recursion.
    let mut todo: Vec<(bool, &serde_json::Value)> = Vec::new();
    if let Some(m) = data.as_object() {
        for (k, v) in super::root_entries(m, only) {
            if k == "unsubscribe_url" || k == "preferences_url" {
                continue;
            }
            // Values that decide blocks in practice: bools and enums
            // (`{{#if vip}}`, `{{#if (eq plan "pro")}}`), and the constant
            // `workspace` and `links`; every other field, `id`, `tags`,
            // `lists` and `trigger` by presence (and emptiness) only.
            let text_like = match model.field(k).and_then(|f| f.ty.as_ref()) {
                Some(Type::Bool | Type::Enum(_)) => false,
                Some(_) => true,
                None => !matches!(k.as_str(), "workspace" | "links"),
            };
            k.hash(&mut h);
            todo.push((text_like, v));
        }
    }
    while let Some((text_like, v)) = todo.pop() {
        match v {
            serde_json::Value::String(s) => {
                // (Only contact data: workspace and link values are the
                // same for everyone and hashed in full.)
                if text_like && s.contains(['<', '>', '&', '"', '{', '}', '\n', '\r', '%']) {
                    special = true;
                }
                if text_like {
                    s.is_empty().hash(&mut h);
                } else {
                    s.hash(&mut h);
                }
            }
            serde_json::Value::Object(m) => {
                m.len().hash(&mut h);
                for (k, x) in m {
                    k.hash(&mut h);
                    todo.push((text_like, x));
                }
            }
            serde_json::Value::Array(xs) if text_like => xs.is_empty().hash(&mut h),
            serde_json::Value::Array(xs) => {
                xs.len().hash(&mut h);
                todo.extend(xs.iter().map(|x| (text_like, x)));
            }
            serde_json::Value::Number(_) if text_like => true.hash(&mut h),
            other => other.to_string().hash(&mut h),
        }
    }
    if special {
        (u64::MAX - unique as u64).hash(&mut h);
    }
    h.finish()
}

/// The contact the checks render for when a project declares no persona:
/// no field set, the workspace and an unsubscribe URL (its name is empty).
pub(crate) fn nobody(model: &super::model::Model) -> PersonaInfo {
    let mut base = serde_json::Map::new();
    base.insert("id".into(), "".into());
    base.insert("tags".into(), serde_json::Value::Array(Vec::new()));
    base.insert("lists".into(), serde_json::Value::Array(Vec::new()));
    base.insert(
        "unsubscribe_url".into(),
        super::model::unsubscribe_url("nobody").into(),
    );
    base.insert(
        "preferences_url".into(),
        super::model::preferences_url("nobody").into(),
    );
    let workspace: serde_json::Map<String, serde_json::Value> = model
        .workspace
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().into()))
        .collect();
    base.insert("workspace".into(), workspace.into());
    PersonaInfo {
        name: String::new(),
        doc: None,
        negative: false,
        base,
        events: Vec::new(),
        locale: None,
    }
}

/// `` `a` ``, `` `a` and `b` ``, `` `a`, `b`, `c` and 4 more personas ``,
/// with "persona"/"personas" in front.
fn persona_list(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let quoted: Vec<String> = names.iter().take(SHOWN).map(|n| format!("`{n}`")).collect();
    if let [only] = names
        && only.is_empty()
    {
        return "a contact with no data (the project declares no persona)".into();
    }
    let noun = if names.len() == 1 {
        "persona"
    } else {
        "personas"
    };
    let list = match (quoted.len(), names.len()) {
        (_, 0) => return "no persona".into(),
        (1, 1) => quoted[0].clone(),
        (k, n) if n == k => format!("{} and {}", quoted[..k - 1].join(", "), quoted[k - 1]),
        (_, n) => format!("{} and {} more", quoted.join(", "), n - SHOWN),
    };
    format!("{noun} {list}")
}

/// Everything `html`/`text` (one persona's rendering) lacks. `url` is the
/// persona's unsubscribe URL, `address` the workspace's postal address
/// (blank: not checked, E0505 reports it).
pub(crate) fn check_message(
    html: Option<&str>,
    text: Option<&str>,
    url: &str,
    address: &str,
) -> Vec<Missing> {
    let mut out = Vec::new();
    let address = squash(address);
    if let Some(html) = html {
        let scan = scan(html, url);
        if !address.is_empty() && !squash(&scan.visible_text).contains(&address) {
            out.push(Missing::AddressInHtml);
        }
        if !url.is_empty()
            && let Some(why) = scan.link_problem()
        {
            out.push(Missing::VisibleLink(why));
        }
    }
    if let Some(text) = text {
        if !address.is_empty() && !squash(text).contains(&address) {
            out.push(Missing::AddressInText);
        }
        if !url.is_empty() && !contains_url(text, url) {
            out.push(Missing::LinkInText);
        }
    }
    out
}

/// `s` without white space (NBSP included).
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Whether `url` occurs in `hay` as a whole URL: not followed by a
/// character that would make it a longer path segment
/// (`…/unsubscribe/ann` is not in `…/unsubscribe/anna`).
fn contains_url(hay: &str, url: &str) -> bool {
    contains_url_in(&memchr::memmem::Finder::new(url.as_bytes()), hay)
}

/// [`contains_url`] with the searcher built once per document.
fn contains_url_in(finder: &memchr::memmem::Finder<'_>, hay: &str) -> bool {
    let n = finder.needle().len();
    hay.len() >= n
        && finder
            .find_iter(hay.as_bytes())
            .any(|i| hay.get(i + n..).is_some_and(ends_url))
}

fn ends_url(rest: &str) -> bool {
    !rest
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%'))
}

/// An `href` that points at `url` (with a query or fragment added, too).
fn href_is(href: &str, url: &str) -> bool {
    href.trim()
        .strip_prefix(url)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['?', '#', '&']))
}

// ------------------------------------------------------------ tokenizer

/// One token of an HTML document.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Token<'h> {
    Text(&'h str),
    /// The content of `<script>`, `<style>`, `<title>`, `<textarea>`, …:
    /// never markup.
    RawText(&'h str),
    Comment(&'h str),
    /// `<!DOCTYPE …>`, `<?…>`, `<![CDATA[…]]>` and other `<!…>`.
    Declaration,
    Start {
        name: String,
        attrs: Vec<(String, &'h str)>,
        self_closing: bool,
    },
    End {
        name: String,
    },
}

/// Elements whose content is raw text up to their end tag.
const RAW_TEXT: &[&str] = &[
    "script", "style", "title", "textarea", "xmp", "iframe", "noembed", "noframes",
];

/// Elements that never have content.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Splits `html` into tokens.
pub(crate) fn tokenize(html: &str) -> Vec<Token<'_>> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let Some(lt) = html[i..].find('<').map(|n| i + n) else {
            out.push(Token::Text(&html[i..]));
            break;
        };
        if lt > i {
            out.push(Token::Text(&html[i..lt]));
        }
        i = lt;
        let next = b.get(i + 1).copied();
        match next {
            Some(b'!') if html[i..].starts_with("<!--") => {
                let body = i + 4;
                // `<!-->` and `<!--->` are empty comments in HTML5.
                let end = if html[body..].starts_with('>') {
                    Some((body, body + 1))
                } else if html[body..].starts_with("->") {
                    Some((body, body + 2))
                } else {
                    html[body..].find("-->").map(|n| (body + n, body + n + 3))
                };
                match end {
                    Some((e, after)) => {
                        out.push(Token::Comment(&html[body..e]));
                        i = after;
                    }
                    None => {
                        out.push(Token::Comment(&html[body..]));
                        i = b.len();
                    }
                }
            }
            Some(b'!' | b'?') => {
                out.push(Token::Declaration);
                i = html[i..].find('>').map_or(b.len(), |n| i + n + 1);
            }
            Some(b'/') if b.get(i + 2).is_some_and(u8::is_ascii_alphabetic) => {
                let start = i + 2;
                let name_end = tag_name_end(b, start);
                let name = html[start..name_end].to_ascii_lowercase();
                match html[name_end..].find('>') {
                    Some(n) => {
                        out.push(Token::End { name });
                        i = name_end + n + 1;
                    }
                    None => i = b.len(),
                }
            }
            Some(b'/') => {
                // `</>` is ignored; `</3` starts a bogus comment.
                i = html[i..].find('>').map_or(b.len(), |n| i + n + 1);
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let Some((token, after)) = start_tag(html, i) else {
                    // Cut by the end of the input: dropped.
                    break;
                };
                i = after;
                let raw = match &token {
                    Token::Start { name, .. } if RAW_TEXT.contains(&name.as_str()) => {
                        Some(name.clone())
                    }
                    _ => None,
                };
                out.push(token);
                if let Some(name) = raw {
                    let end = raw_text_end(html, i, &name);
                    if end > i {
                        out.push(Token::RawText(&html[i..end]));
                    }
                    i = end;
                }
            }
            _ => {
                out.push(Token::Text(&html[i..i + 1]));
                i += 1;
            }
        }
    }
    out
}

/// Where a tag name starting at `start` ends.
fn tag_name_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'/' | b'>') {
        i += 1;
    }
    // Never inside a character: stop before any byte of a multibyte one.
    while i > start && b[i - 1] >= 0x80 && (i == b.len() || b[i] & 0xC0 == 0x80) {
        i -= 1;
    }
    i
}

/// A start tag at `i` (at `<`, a letter next): the token and where it ends.
fn start_tag(html: &str, i: usize) -> Option<(Token<'_>, usize)> {
    let b = html.as_bytes();
    let name_end = tag_name_end(b, i + 1);
    let name = html[i + 1..name_end].to_ascii_lowercase();
    let mut j = name_end;
    let mut attrs: Vec<(String, &str)> = Vec::new();
    let mut self_closing = false;
    loop {
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        match b.get(j)? {
            b'>' => {
                j += 1;
                break;
            }
            b'/' => {
                j += 1;
                self_closing = b.get(j) == Some(&b'>');
                continue;
            }
            _ => {}
        }
        // An attribute name: up to white space, `/`, `>` or `=` (a leading
        // `=` belongs to the name, as in HTML5).
        let start = j;
        j += 1;
        while j < b.len() && !b[j].is_ascii_whitespace() && !matches!(b[j], b'/' | b'>' | b'=') {
            j += 1;
        }
        // The name may end inside a multibyte character only at its start
        // byte, which is ASCII here; move past any continuation bytes.
        while j < b.len() && b[j] & 0xC0 == 0x80 {
            j += 1;
        }
        let attr = html.get(start..j).unwrap_or_default().to_ascii_lowercase();
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let mut value = "";
        if b.get(j) == Some(&b'=') {
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            match b.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    let close = html[j + 1..].find(q as char)? + j + 1;
                    value = &html[j + 1..close];
                    j = close + 1;
                }
                Some(b'>') | None => {}
                Some(_) => {
                    let start = j;
                    while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                        j += 1;
                    }
                    value = &html[start..j];
                }
            }
        }
        // The first of two attributes with one name wins, as in HTML5.
        if !attrs.iter().any(|(n, _)| *n == attr) {
            attrs.push((attr, value));
        }
    }
    Some((
        Token::Start {
            name,
            attrs,
            self_closing,
        },
        j,
    ))
}

/// Where the raw text of `name` starting at `from` ends: at `</name`
/// followed by white space, `/` or `>`, or at the end of the input.
fn raw_text_end(html: &str, from: usize, name: &str) -> usize {
    let b = html.as_bytes();
    let mut k = from;
    while let Some(n) = html[k..].find("</") {
        let at = k + n;
        let after = at + 2 + name.len();
        let matches = b
            .get(at + 2..after)
            .is_some_and(|s| s.eq_ignore_ascii_case(name.as_bytes()));
        if matches
            && b.get(after)
                .is_none_or(|c| c.is_ascii_whitespace() || matches!(c, b'/' | b'>'))
        {
            return at;
        }
        k = at + 2;
    }
    b.len()
}

// ------------------------------------------------------------ visibility

/// What the scan of one rendered HTML found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Visible text, entities decoded (tags add nothing).
    pub visible_text: String,
    /// A visible link to the URL with visible content.
    found: bool,
    /// The first link to the URL that is hidden, and why.
    hidden: Option<String>,
    /// A visible link to the URL with nothing visible inside.
    empty: bool,
    in_comment: bool,
    /// `(attribute, element)` of the first other attribute holding the URL.
    in_attribute: Option<(String, String)>,
    in_text: bool,
}

impl Scan {
    /// Why the HTML has no visible unsubscribe link, or `None` when it has.
    pub fn link_problem(&self) -> Option<String> {
        if self.found {
            return None;
        }
        Some(if let Some(why) = &self.hidden {
            format!("the link is hidden ({why})")
        } else if self.empty {
            "the link has no visible text or image".into()
        } else if self.in_comment {
            "the link is only inside an HTML comment".into()
        } else if let Some((attr, element)) = &self.in_attribute {
            format!(
                "the URL is only in the `{attr}` attribute of a `<{element}>`, not in a link's `href`"
            )
        } else if self.in_text {
            "the URL is shown as text, not as a link".into()
        } else {
            "the rendered HTML has no link to `{{unsubscribe_url}}` (is it inside a block such as `{{#if}}` that this persona skips?)".into()
        })
    }
}

/// Why an element hides its content, if it does.
fn hides(name: &str, attrs: &[(String, &str)]) -> Option<String> {
    if matches!(name, "head" | "template" | "script" | "style" | "title") {
        return Some(format!("inside `<{name}>`"));
    }
    let attr = |n: &str| attrs.iter().find(|(a, _)| a == n).map(|(_, v)| *v);
    if attr("hidden").is_some() {
        return Some(format!("inside a `<{name}>` with the `hidden` attribute"));
    }
    if let Some(style) = attr("style") {
        let style = decode_entities(style).to_ascii_lowercase();
        for decl in style.split(';') {
            let Some((prop, value)) = decl.split_once(':') else {
                continue;
            };
            let value: String = value
                .replace("!important", "")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            match (prop.trim(), value.as_str()) {
                ("display", "none") => {
                    return Some(format!("inside a `<{name}>` with `display:none`"));
                }
                ("visibility", "hidden" | "collapse") => {
                    return Some(format!("inside a `<{name}>` with `visibility:{value}`"));
                }
                _ => {}
            }
        }
    }
    None
}

/// An open element: its name and why its content is hidden (by itself or
/// an ancestor: inherited, so that no walk over the stack is needed).
struct Open {
    name: String,
    hides: Option<String>,
    /// Inside `<svg>` or `<math>` (itself included).
    foreign: bool,
    /// For `<a>` to the URL: the visible-content count when it opened.
    link: Option<usize>,
}

/// Scans rendered HTML for the visible text and the links to `url`.
pub(crate) fn scan(html: &str, url: &str) -> Scan {
    let mut s = Scan::default();
    let finder = memchr::memmem::Finder::new(url.as_bytes());
    let mut stack: Vec<Open> = Vec::new();
    // How many elements of each name are open, so that an end tag with no
    // open element costs no walk over the stack.
    let mut open_names: std::collections::HashMap<String, usize> = Default::default();
    // Visible non-blank text runs and images seen so far.
    let mut visible = 0usize;
    let hidden_by = |stack: &[Open]| stack.last().and_then(|o| o.hides.clone());
    let close = |s: &mut Scan, o: Open, visible: usize| {
        if let Some(at_open) = o.link
            && !s.found
        {
            if visible > at_open {
                s.found = true;
            } else {
                s.empty = true;
            }
        }
    };
    for token in tokenize(html) {
        match token {
            Token::Text(t) => {
                let t = decode_entities(t);
                if hidden_by(&stack).is_none() {
                    if !t.trim().is_empty() {
                        visible += 1;
                    }
                    if !url.is_empty() && contains_url_in(&finder, &t) {
                        s.in_text = true;
                    }
                    s.visible_text.push_str(&t);
                }
            }
            Token::RawText(_) | Token::Declaration => {}
            Token::Comment(c) => {
                if !url.is_empty() && contains_url_in(&finder, &decode_entities(c)) {
                    s.in_comment = true;
                }
            }
            Token::Start {
                name,
                attrs,
                self_closing,
            } => {
                let outer = hidden_by(&stack);
                let own = hides(&name, &attrs);
                let mut link = None;
                for (attr, value) in &attrs {
                    if url.is_empty() {
                        break;
                    }
                    let value = decode_entities(value);
                    if name == "a" && attr == "href" && href_is(&value, url) {
                        match outer.clone().or(own.clone()) {
                            Some(why) => {
                                s.hidden.get_or_insert(why);
                            }
                            None => link = Some(visible),
                        }
                    } else if s.in_attribute.is_none() && contains_url_in(&finder, &value) {
                        s.in_attribute = Some((attr.clone(), name.clone()));
                    }
                }
                if name == "img" && outer.is_none() && own.is_none() {
                    visible += 1;
                }
                if name == "a" && open_names.get("a").is_some_and(|n| *n > 0) {
                    // An `<a>` closes an open one (HTML5's adoption rules, simplified).
                    if let Some(k) = stack.iter().rposition(|o| o.name == "a") {
                        for o in stack.drain(k..).rev().collect::<Vec<_>>() {
                            if let Some(n) = open_names.get_mut(&o.name) {
                                *n = n.saturating_sub(1);
                            }
                            close(&mut s, o, visible);
                        }
                    }
                }
                let void = VOID.contains(&name.as_str());
                // HTML5 ignores `/>` on non-void HTML elements, but honours
                // it inside SVG and MathML, where it is common.
                let parent_foreign = stack.last().is_some_and(|o| o.foreign);
                let closes_itself = void || (self_closing && parent_foreign);
                if !closes_itself {
                    *open_names.entry(name.clone()).or_default() += 1;
                    stack.push(Open {
                        foreign: parent_foreign || name == "svg" || name == "math",
                        hides: outer.or(own),
                        name,
                        link,
                    });
                } else if link.is_some() {
                    s.empty = true;
                }
            }
            Token::End { name } => {
                if open_names.get(&name).is_some_and(|n| *n > 0)
                    && let Some(k) = stack.iter().rposition(|o| o.name == name)
                {
                    for o in stack.drain(k..).rev().collect::<Vec<_>>() {
                        if let Some(n) = open_names.get_mut(&o.name) {
                            *n = n.saturating_sub(1);
                        }
                        close(&mut s, o, visible);
                    }
                }
            }
        }
    }
    for o in stack.drain(..).rev().collect::<Vec<_>>() {
        close(&mut s, o, visible);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.invalid/unsubscribe/anna";
    const ADDRESS: &str = "Acme SARL, 1 rue de la Paix, 69002 Lyon";

    fn link_problem(html: &str) -> Option<String> {
        scan(html, URL).link_problem()
    }

    #[test]
    fn a_plain_link_is_visible() {
        assert_eq!(
            link_problem(&format!("<p><a href=\"{URL}\">Unsubscribe</a></p>")),
            None
        );
        assert_eq!(
            link_problem(&format!("<a href='{URL}?src=footer'>x</a>")),
            None
        );
        assert_eq!(link_problem(&format!("<a class=x href={URL}>x</a>")), None);
        assert_eq!(
            link_problem(&format!("<A HREF=\"{URL}\"><IMG src=u.png alt=\"\"></A>")),
            None
        );
        // Entities in the attribute are decoded.
        assert_eq!(
            link_problem("<a href=\"https://example.invalid/unsubscribe/anna?a=1&amp;b=2\">x</a>"),
            None
        );
        // Unclosed: the link runs to the end.
        assert_eq!(
            link_problem(&format!("<a href=\"{URL}\">Unsubscribe")),
            None
        );
        // An outer hidden element that was closed does not hide it.
        assert_eq!(
            link_problem(&format!(
                "<div style=\"display:none\">preheader</div><a href=\"{URL}\">x</a>"
            )),
            None
        );
    }

    #[test]
    fn hidden_links_are_found() {
        for (html, why) in [
            (format!("<!-- <a href=\"{URL}\">x</a> -->"), "comment"),
            (
                format!(
                    "<div style=\"display: none !important\"><p><a href=\"{URL}\">x</a></p></div>"
                ),
                "display:none",
            ),
            (
                format!("<div style=\"color:red;DISPLAY:NONE\"><a href=\"{URL}\">x</a></div>"),
                "display:none",
            ),
            (
                format!("<span hidden><a href=\"{URL}\">x</a></span>"),
                "hidden",
            ),
            (format!("<a hidden href=\"{URL}\">x</a>"), "hidden"),
            (
                format!("<td style=\"visibility:hidden\"><a href=\"{URL}\">x</a></td>"),
                "visibility",
            ),
            (
                format!("<p data-unsubscribe=\"{URL}\">Unsubscribe</p>"),
                "data-unsubscribe",
            ),
            (
                format!("<head><link rel=x href=\"{URL}\"></head>"),
                "`href` attribute of a `<link>`",
            ),
            (format!("<a href=\"{URL}\"></a>"), "no visible text"),
            (
                format!("<a href=\"{URL}\"> <span style=\"display:none\">x</span> </a>"),
                "no visible text",
            ),
            (format!("<p>Unsubscribe: {URL}</p>"), "as text"),
            ("<p>Hello</p>".to_string(), "skips"),
            (
                format!("<script>var u = '<a href=\"{URL}\">x</a>';</script>"),
                "skips",
            ),
            (
                format!("<textarea><a href=\"{URL}\">x</a></textarea>"),
                "skips",
            ),
            (format!("<a href=\"{URL}x\">x</a>"), "skips"),
            (
                format!("<div style=\"display:none\"><p>unclosed <a href=\"{URL}\">x</a>"),
                "display:none",
            ),
        ] {
            let problem =
                link_problem(&html).unwrap_or_else(|| panic!("no problem found in {html}"));
            assert!(problem.contains(why), "{html}: {problem}");
        }
    }

    #[test]
    fn the_address_must_be_visible_in_html_and_text() {
        let html = format!(
            "<p>{}</p><a href=\"{URL}\">u</a>",
            ADDRESS.replace(", ", ",<br>\n")
        );
        let text = format!("Acme SARL, 1 rue de la Paix,\n69002 Lyon\nUnsubscribe: {URL}\n");
        assert_eq!(
            check_message(Some(&html), Some(&text), URL, ADDRESS),
            vec![]
        );
        let hidden =
            format!("<!-- {ADDRESS} --><div hidden>{ADDRESS}</div><a href=\"{URL}\">u</a>");
        assert_eq!(
            check_message(Some(&hidden), Some("nothing"), URL, ADDRESS),
            vec![
                Missing::AddressInHtml,
                Missing::AddressInText,
                Missing::LinkInText
            ]
        );
        // Escaped in the HTML: entities are decoded.
        let escaped = format!("<p>O&#x27;Hara &amp; Sons</p><a href=\"{URL}\">u</a>");
        assert_eq!(
            check_message(Some(&escaped), None, URL, "O'Hara & Sons"),
            vec![]
        );
        // A longer persona URL is not this one.
        assert_eq!(
            check_message(None, Some(&format!("{URL}bel")), URL, ""),
            vec![Missing::LinkInText]
        );
    }

    #[test]
    fn shapes_tell_bools_apart_not_names() {
        use crate::check::types::Type;
        let mut model = super::super::model::Model::default();
        for (name, ty) in [("vip", Type::Bool), ("first_name", Type::Text)] {
            model.fields.push(super::super::model::FieldInfo {
                name: name.into(),
                ty: Some(ty),
                optional: true,
            });
        }
        let ctx = |vip: bool, name: &str| {
            serde_json::json!({"vip": vip, "first_name": name, "id": name,
                "unsubscribe_url": format!("u/{name}"), "links": {"a": "https://x.example/?a=1&b=2"}})
        };
        let s = |v: serde_json::Value, i| shape(&v, None, &model, i);
        assert_eq!(s(ctx(true, "Anna"), 0), s(ctx(true, "Bruno"), 1));
        assert_ne!(s(ctx(true, "Anna"), 0), s(ctx(false, "Anna"), 1));
        assert_ne!(s(ctx(true, "Anna"), 0), s(ctx(true, ""), 1));
        // Markup in contact data: a shape of its own.
        assert_ne!(s(ctx(true, "<b>A</b>"), 0), s(ctx(true, "<b>A</b>"), 1));
    }

    #[test]
    fn tokens() {
        let t =
            tokenize("<!DOCTYPE html><p class=\"a b\" id=x>Hi &amp; <b>you</b><br/><!--c--></p><x");
        assert_eq!(
            t,
            vec![
                Token::Declaration,
                Token::Start {
                    name: "p".into(),
                    attrs: vec![("class".into(), "a b"), ("id".into(), "x")],
                    self_closing: false
                },
                Token::Text("Hi &amp; "),
                Token::Start {
                    name: "b".into(),
                    attrs: vec![],
                    self_closing: false
                },
                Token::Text("you"),
                Token::End { name: "b".into() },
                Token::Start {
                    name: "br".into(),
                    attrs: vec![],
                    self_closing: true
                },
                Token::Comment("c"),
                Token::End { name: "p".into() },
            ]
        );
        assert_eq!(
            tokenize("a < b"),
            vec![Token::Text("a "), Token::Text("<"), Token::Text(" b")]
        );
        assert_eq!(
            tokenize("<!-->x"),
            vec![Token::Comment(""), Token::Text("x")]
        );
        assert_eq!(
            tokenize("<style>p{}</p></style >x"),
            vec![
                Token::Start {
                    name: "style".into(),
                    attrs: vec![],
                    self_closing: false
                },
                Token::RawText("p{}</p>"),
                Token::End {
                    name: "style".into()
                },
                Token::Text("x"),
            ]
        );
    }

    #[test]
    fn hostile_html_never_panics() {
        let pieces = [
            "<",
            ">",
            "/",
            "!",
            "-",
            "=",
            "\"",
            "'",
            "a",
            "é",
            "😀",
            " ",
            "<!--",
            "-->",
            "<a",
            "href=",
            "style=\"display:none\"",
            "</a>",
            "<script>",
            "</",
            "&amp;",
            "&",
        ];
        // Every string of up to three pieces, then random longer ones.
        let mut stack = vec![(String::new(), 0)];
        while let Some((s, n)) = stack.pop() {
            let _ = check_message(Some(&s), Some(&s), URL, ADDRESS);
            if n < 3 {
                for p in pieces {
                    stack.push((format!("{s}{p}"), n + 1));
                }
            }
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..5_000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for k in 0..(seed % 40) {
                s.push_str(pieces[((seed >> (k % 50)) as usize + k as usize) % pieces.len()]);
            }
            let _ = check_message(Some(&s), Some(&s), URL, ADDRESS);
        }
        // Deep nesting is a loop, not a recursion, and costs linear time
        // (no walk over the open elements per token).
        let deep =
            "<div>".repeat(100_000) + &format!("<a href=\"{URL}\">x</a>") + &"</p>".repeat(100_000);
        assert_eq!(link_problem(&deep), None);
        let hidden = "<div style=display:none>".to_string()
            + &"<span>".repeat(100_000)
            + &format!("<a href=\"{URL}\">x</a>");
        assert!(link_problem(&hidden).is_some_and(|p| p.contains("display:none")));
    }
}
