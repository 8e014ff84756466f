//! The preview site of `relance build` (`build/preview/`): standalone HTML
//! pages with inline CSS, no external assets and no script. Deterministic:
//! no timestamps, no absolute paths, fixed order.
//!
//! Pages and paths (relative to `preview/`). Template, persona, scenario
//! and cadence names are `[a-z_][a-z0-9_]*`; `persona`, `scenario` and
//! `cadence` are keywords, so their folders never collide with a
//! template's folder:
//!
//! | page | path |
//! |---|---|
//! | index | `index.html` |
//! | message | `TEMPLATE/PERSONA.html` (and `.json`, `.txt` for email) |
//! | persona | `persona/PERSONA.html` |
//! | flow | `scenario/NAME.html`, `cadence/NAME.html` (see `flow_page`) |
//!
//! Each NAME in a path or a link goes through `names::page_name`: long
//! and reserved names get file names that always work.
//!
//! Stable hooks for tests and browser tests (keep them when restyling):
//!
//! - every page: `<body data-page="index|message|persona|flow">`;
//! - index: `form#filters` (radio inputs `#f-channel-email`,
//!   `#f-kind-marketing`, `#f-persona-NAME`, each group with an `-all`);
//!   `ul#journeys` with one `li.journey[data-flow="scenario/NAME"]` per
//!   scenario and cadence, its messages in order
//!   (`li[data-template][data-channel][data-kind]`);
//!   `main#index`; `table#messages` with one `tr.message` per template and
//!   distinct summary (`data-template`, `data-channel`, `data-kind`,
//!   `data-personas="marie paul"`: the personas who get that text), its
//!   `td.summary` (subject, push title, or the body's first words) and one
//!   `a.preview` per persona; a template's first row has
//!   `id="template-NAME"`; personas whose consent rule fails get a
//!   `tr.message.no-consent` row instead (`data-no-consent="mallory"`,
//!   `render::consent`); `ul#personas`;
//! - message: `main#message` (`data-template`, `data-persona`,
//!   `data-channel`, `data-kind`); `nav#persona-switcher` (the current
//!   persona's link has `aria-current="page"`); `a#persona-link`;
//!   - email: `.inbox-row`, `#from` (the template's rendered `from`, else
//!     the workspace's), `#reply-to`, `#subject`, `#preheader`,
//!     `iframe.desktop` (640 px) and `iframe.mobile` (375 px), both
//!     `sandbox=""` with the HTML in `srcdoc`; `.overflow-warning`
//!     (`data-width`) on the mobile frame and `p.overflow-note` when the
//!     HTML sets a fixed width wider than 375 px; `pre#text-part`;
//!   - sms: `.phone`, `.sms-bubble`, `.sms-length`, `.sms-encoding`,
//!     `.sms-segments` (`data-segments="N"`);
//!   - push: `.push-card`, `.push-title`, `.push-body`;
//!   - task: `.task-card`, `.task-body`; `#assignee`, `#due` when set;
//!   - webhook: `.webhook-card`, `.webhook-url`, `.webhook-body`;
//!     `#method` and `code.webhook-header` rows when set (secrets shown
//!     as `env("NAME")`, never read);
//!   - every channel: `#priority` and `#expires` when the template sets
//!     `priority` or `expires`;
//! - persona: `main#persona` (`data-persona`, `data-negative`);
//!   `table#fields` (`tr[data-field]`), `#lists`, `#tags`, `table#events`,
//!   `#segments` (`[data-segment][data-in=true|false]`), `#expects`
//!   (`tr[data-held=true|false]`), `#scenarios`
//!   (`tr[data-scenario][data-enters]`), `table#persona-messages`;
//!   `nav#persona-switcher`;
//! - flow: `main#flow` (`data-flow="scenario/NAME"`), `svg.flow` with one
//!   `g.node` per box (`.entry`, `.audience`, `.send`, `.wait`, `.branch`,
//!   `.split`, `.arm`, `.action`, `.start`, `.exit`, `.end`, `.note`; steps
//!   carry `data-step="SCENARIO/ID"`, touches `data-step="CADENCE/N"`; a
//!   send's `text.small.consent` and `text.small.topic` lines);
//!   `nav#flow-switcher`; `ol#sends` (`li[data-template]`, in the order a
//!   contact gets them); `#actual-size` (unticked: the drawing fits the
//!   window).
//!
//! Everything from the project (persona values, rendered bodies, names) is
//! HTML-escaped; an email's HTML is shown only inside `sandbox=""` iframes
//! through `srcdoc`, so its scripts never run.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value as Json;

use crate::check::types::Type;
use crate::plan::{Plan, Step};
use crate::render::RenderedMessage;
use crate::render::flow::{FLOW_STYLE, duration_text, expr_text, reentry_text, triggers_text};
use crate::render::model::{Model, PersonaInfo, TemplateInfo};
use crate::render::names::page_name;
use crate::render::text::{escape_html, sms_length, sms_segments};

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f3f4f6;color:#111827}
header,main,footer{max-width:1120px;margin:0 auto;padding:16px 20px}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:24px 0 8px}
a{color:#1d4ed8}code{font-size:0.95em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:0}dt{color:#6b7280}dd{margin:0}
.box{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:12px 16px}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font:14px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace}
.muted{color:#6b7280;font-size:13px}table{border-collapse:collapse;width:100%;background:#fff}
td,th{border:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top}th{background:#f9fafb}
nav.switcher{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:8px 0}
nav.switcher a{padding:2px 8px;border:1px solid #d1d5db;border-radius:12px;background:#fff;text-decoration:none;font-size:13px}
nav.switcher a[aria-current=page]{background:#1e3a8a;border-color:#1e3a8a;color:#fff}
.negative{color:#b91c1c}.badge{font-size:12px;border:1px solid currentColor;border-radius:10px;padding:1px 8px;vertical-align:middle}
.doc{white-space:pre-line;margin:8px 0}
ul.chips{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:6px}ul.chips li{background:#e0e7ff;border-radius:10px;padding:1px 10px;font-size:13px}
.inbox-row{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:10px 14px;margin:12px 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.inbox-from{font-weight:600;margin-right:12px}.inbox-subject{font-weight:600}.inbox-preheader{color:#6b7280}
.viewports{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start}
.viewport{margin:0;max-width:100%;overflow-x:auto}.viewport figcaption{color:#6b7280;font-size:13px;margin-bottom:4px}
iframe{border:1px solid #d1d5db;border-radius:6px;background:#fff;display:block}
iframe.desktop{width:640px;height:800px}iframe.mobile{width:375px;height:740px}
.phone{width:340px;border:10px solid #111827;border-radius:32px;background:#e5e7eb;padding:24px 14px 32px;box-sizing:border-box}
.sms-to{text-align:center;color:#6b7280;font-size:12px;margin:0 0 12px}
.sms-bubble{background:#fff;border-radius:16px 16px 16px 4px;padding:8px 12px;white-space:pre-wrap;word-break:break-word;font-size:15px;line-height:1.35;max-width:85%}
.sms-stats{margin-top:12px}.warn{color:#b45309}.badge.warn{background:#fef3c7}.held{color:#047857}.failed{color:#b91c1c;font-weight:600}
.push-card{background:rgba(255,255,255,.92);border-radius:14px;padding:10px 12px;box-shadow:0 1px 3px rgba(0,0,0,.2)}
.push-app{font-size:12px;color:#6b7280;text-transform:uppercase;margin-bottom:2px}
.push-title{font-weight:600;white-space:pre-wrap;word-break:break-word}.push-body{white-space:pre-wrap;word-break:break-word}
.task-card,.webhook-card{background:#fff;border:1px solid #e5e7eb;border-left:4px solid #7c3aed;border-radius:6px;padding:12px 16px;max-width:720px}
.webhook-card{border-left-color:#475569}.task-card h2,.webhook-card h2{margin-top:0}
";

/// The page's start: doctype, title, style; `page` is the `data-page` of
/// the body.
fn head(out: &mut String, title: &str, page: &str, extra_style: &str) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", escape_html(title));
    let _ = write!(
        out,
        "<style>\n{STYLE}{extra_style}</style>\n</head>\n<body data-page=\"{page}\">\n"
    );
}

fn tail(out: &mut String) {
    out.push_str("</body>\n</html>\n");
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The doc comment on one line.
fn one_line(doc: &str) -> String {
    doc.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn persona_line(p: &PersonaInfo, href: &str) -> String {
    let name = escape_html(&p.name);
    let mut s = format!("<a href=\"{href}\"><code>{name}</code></a>");
    if p.negative {
        s.push_str(" <span class=\"badge negative\">negative persona</span>");
    }
    if let Some(doc) = &p.doc {
        let _ = write!(s, " — {}", escape_html(&one_line(doc)));
    }
    s
}

/// What the index shows of a message: the subject of an email, the title of
/// a push, the URL of a webhook, else the first words of the body.
fn summary(m: &RenderedMessage) -> String {
    let first = match m.channel.as_str() {
        "email" => m.subject.as_deref(),
        "push" => m.title.as_deref().or(m.body.as_deref()),
        "webhook" => m.url.as_deref(),
        _ => m.body.as_deref(),
    };
    const MAX: usize = 90;
    // The first words only: a webhook or task body can be long.
    let mut words = String::new();
    let mut count = 0;
    for w in first.unwrap_or("").split_whitespace() {
        if !words.is_empty() {
            words.push(' ');
            count += 1;
        }
        words.push_str(w);
        count += w.chars().count();
        if count > MAX {
            break;
        }
    }
    if words.chars().count() > MAX {
        let cut: String = words.chars().take(MAX).collect();
        format!("{}…", cut.trim_end())
    } else {
        words
    }
}

/// A persona value as text: strings as they are, lists joined.
fn value_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// `Name` of `Name <address>`, for the inbox row.
fn sender_name(from: &str) -> &str {
    match from.split_once('<') {
        Some((name, _)) if !name.trim().is_empty() => name.trim().trim_matches('"').trim(),
        _ => from.trim(),
    }
}

/// The value of the persona's first field of the channel's address type.
fn address<'a>(model: &Model, p: &'a PersonaInfo, channel: &str) -> Option<&'a str> {
    let ty = crate::check::types::address_type(channel)?;
    model
        .fields
        .iter()
        .filter(|f| f.ty.as_ref() == Some(&ty))
        .find_map(|f| p.base.get(&f.name).and_then(Json::as_str))
}

/// Pretty-prints JSON text keeping its key order and values byte for byte
/// (serde_json would sort the keys); `None` when it is not valid JSON.
fn pretty_json(text: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let mut out = String::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}' | ']')) {
                    // An empty object or array stays `{}` / `[]`.
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// Links to the same page for every persona; `current` is marked.
fn persona_switcher(out: &mut String, personas: &[&PersonaInfo], current: &str, prefix: &str) {
    out.push_str("<nav id=\"persona-switcher\" class=\"switcher\" aria-label=\"Personas\"><span class=\"muted\">Persona:</span>\n");
    for p in personas {
        let name = escape_html(&p.name);
        let file = escape_html(&page_name(&p.name));
        let _ = write!(out, "<a href=\"{prefix}{file}.html\"");
        if p.name == current {
            out.push_str(" aria-current=\"page\"");
        }
        if p.negative {
            out.push_str(" class=\"negative\" title=\"negative persona\"");
        }
        let _ = writeln!(out, ">{name}</a>");
    }
    out.push_str("</nav>\n");
}

/// The page of one rendered message. `personas`: every persona this
/// template was rendered for, in name order (the switcher).
pub(crate) fn page(
    m: &RenderedMessage,
    p: &PersonaInfo,
    model: &Model,
    personas: &[&PersonaInfo],
) -> String {
    let mut out = String::new();
    head(
        &mut out,
        &format!("{} · {}", m.template, m.persona),
        "message",
        "",
    );
    let (template, persona) = (escape_html(&m.template), escape_html(&m.persona));
    let _ = writeln!(
        out,
        "<header>\n<p class=\"muted\"><a href=\"../index.html\">All previews</a> · <a href=\"../index.html#template-{template}\">{template}</a></p>"
    );
    let _ = writeln!(
        out,
        "<h1><code>{template}</code> for <code>{persona}</code></h1>"
    );
    persona_switcher(&mut out, personas, &m.persona, "");
    out.push_str("<dl>\n");
    let mut row = |k: &str, id: &str, v: &str| {
        let id = if id.is_empty() {
            String::new()
        } else {
            format!(" id=\"{id}\"")
        };
        let _ = writeln!(out, "<dt>{k}</dt><dd{id}>{v}</dd>");
    };
    row("Channel", "", &escape_html(&m.channel));
    row("Kind", "", m.kind.as_str());
    let file = escape_html(&page_name(&m.persona));
    let mut who = format!(
        "<a id=\"persona-link\" href=\"../persona/{file}.html\"><code>{persona}</code></a>"
    );
    if p.negative {
        who.push_str(" <span class=\"badge negative\">negative persona</span>");
    }
    if let Some(doc) = &p.doc {
        let _ = write!(who, " — {}", escape_html(&one_line(doc)));
    }
    row("Persona", "", &who);
    if !model.locales.is_empty() {
        // The persona's locale, and whether it has variants here.
        let locale = match (&p.locale, &m.locale) {
            (_, Some(l)) => format!("<code>{}</code>", escape_html(l)),
            (Some(l), None) => format!(
                "<code>{}</code> <span class=\"muted\">(no variants for it: the unsuffixed parts)</span>",
                escape_html(l)
            ),
            (None, None) => "<span class=\"muted\">none (the unsuffixed parts)</span>".to_string(),
        };
        row("Locale", "locale", &locale);
    }
    let from = m.from.as_ref().or(model.workspace.get("from"));
    if m.channel == "email"
        && let Some(from) = from
    {
        row("From", "from", &escape_html(from));
    }
    if m.channel == "email"
        && let Some(reply_to) = &m.reply_to
    {
        row("Reply-To", "reply-to", &escape_html(reply_to));
    }
    if let Some(to) = address(model, p, &m.channel) {
        row("To", "to", &escape_html(to));
    }
    if let Some(assignee) = &m.assignee {
        row("Assignee", "assignee", &escape_html(assignee));
    }
    if let Some(d) = m.operational.due_seconds {
        row(
            "Due",
            "due",
            &format!(
                "{} after the send",
                escape_html(&crate::render::duration_text(d))
            ),
        );
    }
    if let Some(method) = &m.operational.method {
        row("Method", "method", &escape_html(method));
    }
    for (k, v) in &m.operational.headers {
        row(
            &format!("Header <code>{}</code>", escape_html(k)),
            "",
            &format!("<code class=\"webhook-header\">{}</code>", escape_html(v)),
        );
    }
    // §12's delivery settings, for every channel.
    if let Some(priority) = &m.operational.priority {
        row("Priority", "priority", &escape_html(priority));
    }
    if let Some(e) = m.operational.expires_seconds {
        row(
            "Expires",
            "expires",
            &format!(
                "{} after it is first due (dropped if pressure defers it longer)",
                escape_html(&crate::render::duration_text(e))
            ),
        );
    }
    for (k, id, v) in [
        ("Subject", "subject", &m.subject),
        ("Preheader", "preheader", &m.preheader),
        ("Title", "title", &m.title),
    ] {
        if let Some(v) = v {
            row(k, id, &escape_html(v));
        }
    }
    out.push_str("</dl>\n</header>\n");
    let _ = writeln!(
        out,
        "<main id=\"message\" data-template=\"{template}\" data-persona=\"{persona}\" data-channel=\"{}\" data-kind=\"{}\">",
        escape_html(&m.channel),
        m.kind.as_str()
    );
    match m.channel.as_str() {
        "email" => email_body(&mut out, m, from.map(String::as_str)),
        "sms" => sms_body(&mut out, m, address(model, p, "sms")),
        "push" => push_body(&mut out, m, model),
        "task" => task_body(&mut out, m),
        "webhook" => webhook_body(&mut out, m),
        _ => {}
    }
    out.push_str("</main>\n<footer class=\"muted\">\n<p>");
    if m.text.is_some() {
        let _ = write!(out, "<a href=\"{file}.txt\">Text part</a> · ");
    }
    let _ = write!(out, "<a href=\"{file}.json\">JSON</a>");
    out.push_str("</p>\n</footer>\n");
    tail(&mut out);
    out
}

fn email_body(out: &mut String, m: &RenderedMessage, from: Option<&str>) {
    out.push_str("<div class=\"inbox-row\" title=\"As an inbox lists it\">");
    let _ = write!(
        out,
        "<span class=\"inbox-from\">{}</span>",
        escape_html(from.map_or("(no sender)", sender_name))
    );
    let _ = write!(
        out,
        "<span class=\"inbox-subject\">{}</span>",
        escape_html(m.subject.as_deref().unwrap_or("(no subject)"))
    );
    if let Some(pre) = m.preheader.as_deref().filter(|p| !p.is_empty()) {
        let _ = write!(
            out,
            "<span class=\"inbox-preheader\"> — {}</span>",
            escape_html(pre)
        );
    }
    out.push_str("</div>\n");
    if let Some(html) = &m.html {
        // Sandboxed: scripts in the message (or in persona data) never run.
        let doc = escape_html(html);
        out.push_str("<h2>HTML</h2>\n<section class=\"viewports\" id=\"email-views\">\n");
        let wide = fixed_width_over(html, MOBILE_WIDTH);
        for (class, label, w, h) in [
            ("desktop", "Desktop", 640, 800),
            ("mobile", "Mobile", MOBILE_WIDTH, 740),
        ] {
            let badge = match &wide {
                Some(wide) if class == "mobile" => format!(
                    " <span class=\"badge warn overflow-warning\" data-width=\"{}\" title=\"{}\">wider than the screen: {} px</span>",
                    wide.width,
                    escape_html(&wide.why()),
                    wide.width
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "<figure class=\"viewport\"><figcaption>{label} · {w} px{badge}</figcaption><iframe class=\"{class}\" sandbox=\"\" width=\"{w}\" height=\"{h}\" title=\"HTML body, {label} width\" srcdoc=\"{doc}\"></iframe></figure>"
            );
        }
        out.push_str("</section>\n");
        if let Some(wide) = &wide {
            let _ = writeln!(
                out,
                "<p class=\"warn overflow-note\">On a {MOBILE_WIDTH} px screen this message scrolls sideways: {}. Let it shrink (<code>width=\"100%\"</code> with <code>max-width:{}px</code>), or narrow it in an <code>@media</code> rule.</p>",
                escape_html(&wide.why()),
                wide.width
            );
        }
    }
    if let Some(text) = &m.text {
        let _ = writeln!(
            out,
            "<h2>Text part{}</h2>\n<div class=\"box\"><pre id=\"text-part\">{}</pre></div>",
            if m.text_derived {
                " (derived from the HTML)"
            } else {
                ""
            },
            escape_html(text)
        );
    }
}

/// The mobile frame's width, in CSS pixels.
const MOBILE_WIDTH: u32 = 375;

/// A fixed width wider than the mobile screen, found in an email's HTML.
#[derive(Debug, PartialEq, Eq)]
struct FixedWidth {
    /// The widest, in pixels.
    width: u32,
    /// How it is written: `width="600"`, `width:600px`, `min-width:600px`.
    written: String,
    /// The HTML has an `@media` rule, which may narrow it on phones.
    media: bool,
}

impl FixedWidth {
    fn why(&self) -> String {
        let mut s = format!("the HTML sets {}", self.written);
        if self.media {
            s.push_str(" (an @media rule may narrow it on phones: check the mobile frame)");
        }
        s
    }
}

/// The widest fixed width above `limit` pixels that the HTML sets on an
/// element: a `width` attribute (`width="600"`) or a `width` or
/// `min-width` in a `style` attribute (`width:600px`). A static
/// heuristic (the frame is sandboxed, so the page cannot measure it):
/// `max-width`, percentages and other units never count, nor do rules in
/// `<style>` blocks; the note says when an `@media` rule may undo it.
fn fixed_width_over(html: &str, limit: u32) -> Option<FixedWidth> {
    let lower = html.to_ascii_lowercase();
    // Rules in <style> blocks are skipped: responsive emails narrow their
    // fixed widths there.
    let mut text = String::with_capacity(lower.len());
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("<style") {
        text.push_str(&rest[..at]);
        match rest[at..].find("</style") {
            Some(end) => rest = &rest[at + end..],
            None => {
                rest = "";
            }
        }
    }
    text.push_str(rest);
    let bytes = text.as_bytes();
    let mut best: Option<(u32, String)> = None;
    let mut from = 0;
    while let Some(i) = text[from..].find("width") {
        let at = from + i;
        from = at + 5;
        let before = at.checked_sub(1).map(|j| bytes[j]);
        let min = text[..at].ends_with("min-");
        let word_start = matches!(
            before,
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b';' | b'"' | b'\'')
        );
        if !(word_start || min) {
            // `max-width`, `device-width`, `data-width`, `border-width`…
            continue;
        }
        let mut j = from;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let sep = bytes.get(j).copied();
        if !matches!(sep, Some(b'=' | b':')) {
            continue;
        }
        j += 1;
        while j < bytes.len()
            && (bytes[j].is_ascii_whitespace() || bytes[j] == b'"' || bytes[j] == b'\'')
        {
            j += 1;
        }
        let digits = bytes[j..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 6 {
            continue;
        }
        let Ok(n) = text[j..j + digits].parse::<u32>() else {
            continue;
        };
        let unit = &text[j + digits..];
        let ok = if sep == Some(b'=') {
            // An attribute: pixels, with or without `px`.
            !unit.starts_with('%') && !unit.starts_with('.') && !unit.starts_with("em")
        } else {
            unit.starts_with("px")
        };
        if ok && n > limit && best.as_ref().is_none_or(|(w, _)| n > *w) {
            let name = if min { "min-width" } else { "width" };
            let written = if sep == Some(b'=') {
                format!("{name}=\"{n}\"")
            } else {
                format!("{name}:{n}px")
            };
            best = Some((n, written));
        }
    }
    best.map(|(width, written)| FixedWidth {
        width,
        written,
        media: lower.contains("@media"),
    })
}

fn sms_body(out: &mut String, m: &RenderedMessage, to: Option<&str>) {
    let body = m.body.as_deref().unwrap_or("");
    let (len, enc) = sms_length(body);
    let parts = sms_segments(len, enc);
    out.push_str("<div class=\"phone\">\n");
    if let Some(to) = to {
        let _ = writeln!(out, "<p class=\"sms-to\">To {}</p>", escape_html(to));
    }
    let _ = writeln!(
        out,
        "<div class=\"sms-bubble\">{}</div>\n</div>",
        escape_html(body)
    );
    out.push_str("<dl class=\"sms-stats\">\n");
    let _ = writeln!(
        out,
        "<dt>Length</dt><dd><span class=\"sms-length\">{len}</span> characters</dd>"
    );
    let _ = writeln!(
        out,
        "<dt>Encoding</dt><dd class=\"sms-encoding\">{}</dd>",
        enc.name()
    );
    let detail = if parts == 1 {
        format!("one SMS holds up to {} characters", enc.limit())
    } else {
        format!(
            "sent and billed as {parts} SMS: over {} characters, each part holds {}",
            enc.limit(),
            enc.part_limit()
        )
    };
    let _ = writeln!(
        out,
        "<dt>Segments</dt><dd><span class=\"sms-segments{}\" data-segments=\"{parts}\">{}</span> <span class=\"muted\">({detail})</span></dd>",
        if parts > 1 { " warn" } else { "" },
        plural(parts, "SMS", "SMS")
    );
    out.push_str("</dl>\n");
    if enc == crate::render::text::SmsEncoding::Ucs2 {
        out.push_str("<p class=\"muted\">A character outside the GSM-7 alphabet (an accent such as ê, an emoji) makes the whole message UCS-2, which holds 70 characters per SMS instead of 160.</p>\n");
    }
}

fn push_body(out: &mut String, m: &RenderedMessage, model: &Model) {
    let app = model.workspace.get("name").map_or("App", String::as_str);
    out.push_str("<div class=\"phone\">\n<div class=\"push-card\">\n");
    let _ = writeln!(
        out,
        "<div class=\"push-app\">{} · now</div>",
        escape_html(app)
    );
    if let Some(t) = &m.title {
        let _ = writeln!(out, "<div class=\"push-title\">{}</div>", escape_html(t));
    }
    if let Some(b) = &m.body {
        let _ = writeln!(out, "<div class=\"push-body\">{}</div>", escape_html(b));
    }
    out.push_str("</div>\n</div>\n");
}

fn task_body(out: &mut String, m: &RenderedMessage) {
    let _ = writeln!(
        out,
        "<article class=\"task-card\">\n<h2>Task for the team</h2>\n<pre class=\"task-body\">{}</pre>\n</article>",
        escape_html(m.body.as_deref().unwrap_or(""))
    );
}

fn webhook_body(out: &mut String, m: &RenderedMessage) {
    out.push_str("<article class=\"webhook-card\">\n<h2>Webhook</h2>\n");
    if let Some(url) = &m.url {
        let _ = writeln!(
            out,
            "<p>URL: <code class=\"webhook-url\">{}</code></p>",
            escape_html(url)
        );
    }
    let body = m.body.as_deref().unwrap_or("");
    match pretty_json(body) {
        Some(p) => {
            let _ = writeln!(out, "<pre class=\"webhook-body\">{}</pre>", escape_html(&p));
        }
        None => {
            let _ = writeln!(
                out,
                "<p class=\"warn\">The body is not valid JSON for this persona; shown as rendered.</p>\n<pre class=\"webhook-body\">{}</pre>",
                escape_html(body)
            );
        }
    }
    out.push_str("</article>\n");
}

/// The channels and kinds, in the order the index's filters show them.
const CHANNELS: [&str; 5] = ["email", "sms", "push", "task", "webhook"];
const KINDS: [&str; 3] = ["marketing", "transactional", "operational"];

/// The index's filters: radio buttons by channel, kind and persona, and
/// the CSS (`:has()`) that hides what they leave out. No script: without
/// `:has()` support the filters show everything.
fn filters(out: &mut String, model: &Model, personas: &[&PersonaInfo]) -> String {
    let mut channels: Vec<&str> = CHANNELS
        .iter()
        .copied()
        .filter(|c| model.templates.iter().any(|t| t.channel == *c))
        .collect();
    for t in &model.templates {
        if !channels.contains(&t.channel.as_str()) && css_safe(&t.channel) {
            channels.push(&t.channel);
        }
    }
    let kinds: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| model.templates.iter().any(|t| t.kind.as_str() == *k))
        .collect();
    let names: Vec<&str> = personas
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| css_safe(n))
        .collect();
    let mut css = String::new();
    out.push_str("<form id=\"filters\" class=\"filters\" aria-label=\"Filters\">\n");
    for (group, label, values, attr) in [
        (
            "channel",
            "Channel",
            &channels,
            "[data-channel]:not([data-channel=\"{}\"])",
        ),
        (
            "kind",
            "Kind",
            &kinds,
            "[data-kind]:not([data-kind=\"{}\"])",
        ),
        (
            "persona",
            "Persona",
            &names,
            "tr.message:not([data-personas~=\"{}\"])",
        ),
    ] {
        let _ = write!(
            out,
            "<fieldset data-filter=\"{group}\"><legend>{label}</legend><input type=\"radio\" name=\"{group}\" id=\"f-{group}-all\" value=\"\" checked><label for=\"f-{group}-all\">all</label>"
        );
        for v in values.iter() {
            let _ = write!(
                out,
                "<input type=\"radio\" name=\"{group}\" id=\"f-{group}-{v}\" value=\"{v}\"><label for=\"f-{group}-{v}\">{v}</label>"
            );
            let _ = writeln!(
                css,
                "body:has(#f-{group}-{v}:checked) :is(#journeys,#messages) {}{{display:none}}",
                attr.replace("{}", v)
            );
            // A journey with nothing left to show goes too.
            if group != "persona" {
                let _ = writeln!(
                    css,
                    "body:has(#f-{group}-{v}:checked) li.journey:not(:has([data-{group}=\"{v}\"])){{display:none}}"
                );
            }
        }
        out.push_str("</fieldset>\n");
    }
    out.push_str("</form>\n");
    css
}

/// Names that can go into a CSS selector and an id as they are.
fn css_safe(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

const INDEX_STYLE: &str = ".filters{display:flex;flex-wrap:wrap;gap:8px 20px;margin:8px 0 4px}
.filters fieldset{border:1px solid #e5e7eb;border-radius:6px;padding:4px 10px;display:flex;flex-wrap:wrap;gap:4px;align-items:center;background:#fff}
.filters legend{color:#6b7280;font-size:12px;padding:0 4px}
.filters input{position:absolute;opacity:0;width:1px;height:1px}
.filters label{font-size:13px;padding:1px 9px;border:1px solid #d1d5db;border-radius:12px;cursor:pointer}
.filters input:checked+label{background:#1e3a8a;border-color:#1e3a8a;color:#fff}
.filters input:focus-visible+label{outline:2px solid #1d4ed8;outline-offset:1px}
#journeys{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px;padding:0;list-style:none}
.journey h3{margin:0 0 4px;font-size:15px}.journey ol{margin:6px 0 0;padding-left:22px}.journey li{margin:2px 0}
td.personas a{margin-right:6px}td.more{color:#9ca3af;border-top-color:transparent}td.more code{opacity:.6}
";

/// `preview/index.html`: the journeys (each scenario and cadence with the
/// messages it sends, in order), then every message (templates × personas,
/// personas that get the same subject or text on one row) with its
/// channel, kind and summary, then the personas; filters by channel, kind
/// and persona. Each template's rows are written by `rows`
/// ([`index_rows`], kept with the template's previews so that a build
/// redoes only the changed templates' rows).
pub(crate) fn index_with(
    model: &Model,
    messages: usize,
    rows: &mut dyn FnMut(&TemplateInfo, &mut String),
) -> String {
    let mut templates: Vec<_> = model.templates.iter().collect();
    templates.sort_by(|a, b| a.name.cmp(&b.name));
    let mut personas: Vec<_> = model.personas.iter().collect();
    personas.sort_by(|a, b| a.name.cmp(&b.name));

    // About 170 bytes a message row: one allocation instead of doubling.
    let mut body = String::with_capacity(4096 + messages * 192);
    let title = match model.workspace.get("name") {
        Some(n) => format!("Previews — {n}"),
        None => "Previews".to_string(),
    };
    let _ = writeln!(body, "<header>\n<h1>{}</h1>", escape_html(&title));
    let scenarios = model.flows.iter().filter(|f| f.kind == "scenario").count();
    let _ = writeln!(
        body,
        "<p class=\"muted\">{} × {} · {} · {}</p>",
        plural(templates.len(), "template", "templates"),
        plural(personas.len(), "persona", "personas"),
        plural(scenarios, "scenario", "scenarios"),
        plural(model.flows.len() - scenarios, "cadence", "cadences"),
    );
    let filter_css = filters(&mut body, model, &personas);
    body.push_str("</header>\n<main id=\"index\">\n<h2>Journeys</h2>\n");
    if model.flows.is_empty() {
        body.push_str("<p id=\"journeys\" class=\"muted\">No scenario or cadence.</p>\n");
    } else {
        body.push_str("<ul id=\"journeys\">\n");
        for f in &model.flows {
            let name = escape_html(&f.name);
            let file = escape_html(&page_name(&f.name));
            let _ = write!(
                body,
                "<li class=\"journey box\" data-flow=\"{0}/{name}\"><h3>{0} <a href=\"{0}/{file}.html\" data-flow=\"{0}/{name}\"><code>{name}</code></a></h3>",
                f.kind
            );
            if let Some(doc) = &f.doc {
                let _ = write!(
                    body,
                    "<div class=\"muted\">{}</div>",
                    escape_html(&one_line(doc))
                );
            }
            if f.sends.is_empty() {
                body.push_str("<p class=\"muted\">sends no message</p>");
            } else {
                body.push_str("<ol>");
                for t in &f.sends {
                    let t_esc = escape_html(t);
                    match model.template(t) {
                        Some(info) => {
                            let _ = write!(
                                body,
                                "<li data-template=\"{t_esc}\" data-channel=\"{}\" data-kind=\"{}\"><a href=\"#template-{t_esc}\"><code>{t_esc}</code></a> <span class=\"muted\">{} · {}</span></li>",
                                escape_html(&info.channel),
                                info.kind.as_str(),
                                escape_html(&info.channel),
                                info.kind.as_str()
                            );
                        }
                        None => {
                            let _ = write!(body, "<li><code>{t_esc}</code></li>");
                        }
                    }
                }
                body.push_str("</ol>");
            }
            body.push_str("</li>\n");
        }
        body.push_str("</ul>\n");
    }
    body.push_str("<h2>Messages</h2>\n<table id=\"messages\">\n<thead><tr><th>Template</th><th>Channel</th><th>Kind</th><th>Personas</th><th>Subject, title or text</th></tr></thead>\n<tbody>\n");
    for t in templates {
        rows(t, &mut body);
    }
    body.push_str("</tbody>\n</table>\n");
    body.push_str("<h2>Personas</h2>\n<ul id=\"personas\">\n");
    for p in personas {
        let href = format!("persona/{}.html", escape_html(&page_name(&p.name)));
        let _ = writeln!(body, "<li>{}</li>", persona_line(p, &href));
    }
    body.push_str("</ul>\n</main>\n");
    let mut out = String::with_capacity(body.len() + 4096);
    head(
        &mut out,
        &title,
        "index",
        &format!("{INDEX_STYLE}{filter_css}"),
    );
    out.push_str(&body);
    tail(&mut out);
    out
}

/// One template's rows of the index table: one row per distinct summary
/// (and preheader), with the personas that get it.
pub(crate) fn index_rows(
    t: &TemplateInfo,
    list: &[&RenderedMessage],
    broken: bool,
    out: &mut String,
) {
    let name = escape_html(&t.name);
    let channel = escape_html(&t.channel);
    let kind = t.kind.as_str();
    // Every row names its template (a filter may hide the first one);
    // the rows after a template's first are marked `more` (dimmed).
    let cells = |more: bool| {
        let class = if more { " class=\"more\"" } else { "" };
        format!(
            "<td{class}><code>{name}</code></td><td{class}>{channel}</td><td{class}>{kind}</td>"
        )
    };
    let attrs = format!("data-template=\"{name}\" data-channel=\"{channel}\" data-kind=\"{kind}\"");
    if broken || list.is_empty() {
        let why = if broken {
            "not rendered: the template has errors"
        } else {
            "no persona to render it for"
        };
        let _ = writeln!(
            out,
            "<tr id=\"template-{name}\" class=\"message missing\" {attrs} data-personas=\"\">{}<td colspan=\"2\" class=\"muted\">{why}</td></tr>",
            cells(false)
        );
        return;
    }
    // Personas whose message reads the same in the list: one row.
    let mut groups: Vec<(String, Option<&str>, Vec<&RenderedMessage>)> = Vec::new();
    for m in list {
        let (text, pre) = (summary(m), m.preheader.as_deref());
        match groups.iter_mut().find(|(s, p, _)| *s == text && *p == pre) {
            Some((_, _, ms)) => ms.push(m),
            None => groups.push((text, pre, vec![m])),
        }
    }
    // A template with per-locale variants: rows show the variant they
    // render, and a variant no persona gets has a row of its own.
    let localized = !t.locales.is_empty();
    for (i, (text, _, ms)) in groups.iter().enumerate() {
        let id = if i == 0 {
            format!("id=\"template-{name}\" ")
        } else {
            String::new()
        };
        let locale = ms.first().and_then(|m| m.locale.as_deref());
        let badge = match locale {
            _ if !localized => String::new(),
            Some(l) => format!("<span class=\"badge locale\">{}</span> ", escape_html(l)),
            None => "<span class=\"badge locale\">unsuffixed</span> ".to_string(),
        };
        let id = if localized {
            format!("{id}data-locale=\"{}\" ", escape_html(locale.unwrap_or("")))
        } else {
            id
        };
        let names: Vec<String> = ms.iter().map(|m| escape_html(&m.persona)).collect();
        let _ = write!(
            out,
            "<tr {id}class=\"message\" {attrs} data-personas=\"{}\">{}<td class=\"personas\">{badge}",
            names.join(" "),
            cells(i > 0)
        );
        let folder = escape_html(&page_name(&t.name));
        for (p, m) in names.iter().zip(ms) {
            let file = escape_html(&page_name(&m.persona));
            let _ = write!(
                out,
                "<a class=\"preview\" href=\"{folder}/{file}.html\">{p}</a> "
            );
        }
        let _ = writeln!(
            out,
            "</td><td class=\"summary\">{}</td></tr>",
            escape_html(text)
        );
    }
    for l in &t.locales {
        if list.iter().any(|m| m.locale.as_deref() == Some(l.as_str())) {
            continue;
        }
        let l = escape_html(l);
        let _ = writeln!(
            out,
            "<tr class=\"message missing\" {attrs} data-locale=\"{l}\" data-personas=\"\">{}<td colspan=\"2\" class=\"muted\"><span class=\"badge locale\">{l}</span> no persona in this locale: add one with its `locale` field set to `{l}` to preview these variants</td></tr>",
            cells(true)
        );
    }
}

/// A message's row in its persona's messages table (kept with the
/// template's previews between builds).
pub(crate) fn persona_row(m: &RenderedMessage) -> String {
    let t = escape_html(&m.template);
    format!(
        "<tr><td><a href=\"../{}/{}.html\"><code>{t}</code></a></td><td>{} · {}</td><td>{}</td></tr>\n",
        escape_html(&page_name(&m.template)),
        escape_html(&page_name(&m.persona)),
        escape_html(&m.channel),
        m.kind.as_str(),
        escape_html(&summary(m))
    )
}

/// What a persona's page says of the persona in the plan, through the one
/// evaluator (`eval`), as `relance check` proves its `expect` lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PersonaFacts {
    /// Every segment, in declaration order, and whether the persona is in it.
    pub segments: Vec<(String, bool)>,
    /// Each `expect` line as written, and why it fails (`None`: it holds).
    pub expects: Vec<(String, Option<String>)>,
    /// Each scenario in declaration order: its trigger, and whether its
    /// audience admits the persona (it would enter when triggered).
    pub scenarios: Vec<(String, String, bool)>,
    /// The channels whose `consent` rule fails for the persona, with the
    /// rule as written: its marketing messages there get no preview.
    pub no_consent: Vec<(String, String)>,
}

/// [`PersonaFacts`] of every persona, at reference time `now`, on a
/// project whose names resolve.
pub(crate) fn persona_facts(
    sources: &crate::diagnostics::SourceMap,
    files: &[crate::syntax::ast::File],
    now: i64,
) -> std::collections::BTreeMap<String, PersonaFacts> {
    use crate::eval::Context;
    // Template bodies play no part in evaluation.
    let plan = crate::plan::build_plan(sources, files, &Default::default());
    let project = crate::check::Project::resolve(sources, files);
    let mut out = std::collections::BTreeMap::new();
    for persona in &project.personas {
        let (contact, events) = crate::verify::persona_contact(&project, persona, now);
        let cx = Context {
            plan: &plan,
            contact: &contact,
            events: &events,
            now,
            run: None,
        };
        let mut facts = PersonaFacts::default();
        for seg in &project.segments {
            if let Some(e) = plan.segments.get(&seg.name.name) {
                facts.segments.push((seg.name.name.clone(), cx.eval(e)));
            }
        }
        for expect in &persona.expects {
            let e = crate::plan::lower_expr(&project, expect);
            let text = one_line(sources.text(expect.span));
            facts.expects.push((text, cx.why_not(&e)));
        }
        for name in &plan.scenario_order {
            if let Some(s) = plan.scenarios.get(name) {
                let admitted = s.audience.as_ref().is_none_or(|a| cx.eval(a));
                facts
                    .scenarios
                    .push((name.clone(), triggers_text(s), admitted));
            }
        }
        for rule in &project.consents {
            if let Some(e) = plan.consent.get(&rule.channel.name)
                && !facts
                    .no_consent
                    .iter()
                    .any(|(c, _)| *c == rule.channel.name)
                && !cx.eval(e)
            {
                let text = one_line(sources.text(rule.expr.span));
                facts.no_consent.push((rule.channel.name.clone(), text));
            }
        }
        out.insert(persona.name.name.clone(), facts);
    }
    out
}

/// The persona page's part about the plan: segments, `expect` lines,
/// scenarios.
fn persona_facts_section(out: &mut String, facts: &PersonaFacts) {
    out.push_str("<h2>Segments</h2>\n");
    if facts.segments.is_empty() {
        out.push_str("<p id=\"segments\" class=\"muted\">The project has no segment.</p>\n");
    } else {
        let (inside, outside): (Vec<_>, Vec<_>) = facts.segments.iter().partition(|(_, i)| *i);
        out.push_str("<ul id=\"segments\" class=\"chips\">");
        for (name, _) in &inside {
            let _ = write!(
                out,
                "<li data-segment=\"{0}\" data-in=\"true\"><code>{0}</code></li>",
                escape_html(name)
            );
        }
        if inside.is_empty() {
            out.push_str("<li class=\"none\">in no segment</li>");
        }
        out.push_str("</ul>\n");
        if !outside.is_empty() {
            let names: Vec<String> = outside
                .iter()
                .map(|(n, _)| {
                    format!(
                        "<code data-segment=\"{0}\" data-in=\"false\">{0}</code>",
                        escape_html(n)
                    )
                })
                .collect();
            let _ = writeln!(out, "<p class=\"muted\">Not in: {}</p>", names.join(", "));
        }
    }
    out.push_str("<h2>Expectations</h2>\n");
    if facts.expects.is_empty() {
        out.push_str("<p id=\"expects\" class=\"muted\">none: this persona has no <code>expect</code> line</p>\n");
    } else {
        out.push_str("<table id=\"expects\">\n<thead><tr><th>Expect</th><th>Result</th></tr></thead>\n<tbody>\n");
        for (text, why) in &facts.expects {
            let result = match why {
                None => "<span class=\"held\">✓ holds</span>".to_string(),
                Some(why) => format!(
                    "<span class=\"failed\">✗ fails</span>: {}",
                    escape_html(why)
                ),
            };
            let _ = writeln!(
                out,
                "<tr data-held=\"{}\"><td><code>expect {}</code></td><td>{result}</td></tr>",
                why.is_none(),
                escape_html(text)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("<h2>Scenarios</h2>\n");
    if facts.scenarios.is_empty() {
        out.push_str("<p id=\"scenarios\" class=\"muted\">The project has no scenario.</p>\n");
    } else {
        out.push_str("<table id=\"scenarios\">\n<thead><tr><th>Scenario</th><th>Trigger</th><th>This persona</th></tr></thead>\n<tbody>\n");
        for (name, trigger, admitted) in &facts.scenarios {
            let n = escape_html(name);
            let file = escape_html(&page_name(name));
            let what = if *admitted {
                "<span class=\"held\">enters when triggered</span> (the audience admits it)"
            } else {
                "<span class=\"muted\">does not enter: not in the audience</span>"
            };
            let _ = writeln!(
                out,
                "<tr data-scenario=\"{n}\" data-enters=\"{admitted}\"><td><a href=\"../scenario/{file}.html\"><code>{n}</code></a></td><td><code>{}</code></td><td>{what}</td></tr>",
                escape_html(trigger)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    } // Only when a consent rule fails: pages of other personas keep their shape.
    if !facts.no_consent.is_empty() {
        out.push_str("<h2>Consent</h2>\n<ul id=\"no-consent\">");
        for (channel, rule) in &facts.no_consent {
            let _ = write!(
                out,
                "<li data-channel=\"{0}\">no marketing on {0}: <code>consent {0} = {1}</code> does not hold, so its marketing messages are not previewed</li>",
                escape_html(channel),
                escape_html(rule)
            );
        }
        out.push_str("</ul>\n");
    }
}

/// `preview/persona/NAME.html`: a persona's description and data, its
/// segments, `expect` lines and scenarios (`facts`), and links to its
/// messages. `rows` are the persona's rows of its messages table
/// ([`persona_row`]).
pub(crate) fn persona_page(
    p: &PersonaInfo,
    model: &Model,
    personas: &[&PersonaInfo],
    rows: &[&str],
    facts: Option<&PersonaFacts>,
) -> String {
    let mut out = String::new();
    let name = escape_html(&p.name);
    head(&mut out, &format!("Persona {}", p.name), "persona", "");
    out.push_str("<header>\n<p class=\"muted\"><a href=\"../index.html\">All previews</a></p>\n");
    let _ = write!(out, "<h1>Persona <code>{name}</code>");
    if p.negative {
        out.push_str(" <span class=\"badge negative\">negative persona</span>");
    }
    out.push_str("</h1>\n");
    persona_switcher(&mut out, personas, &p.name, "");
    if p.negative {
        out.push_str("<p class=\"negative\">A negative persona describes contacts the business does not want: it must match no audience of a scenario that sends marketing messages.</p>\n");
    }
    if let Some(doc) = &p.doc {
        let _ = writeln!(out, "<div class=\"doc\">{}</div>", escape_html(doc.trim()));
    }
    let _ = writeln!(
        out,
        "</header>\n<main id=\"persona\" data-persona=\"{name}\" data-negative=\"{}\">",
        p.negative
    );
    out.push_str("<h2>Fields</h2>\n<table id=\"fields\">\n<thead><tr><th>Field</th><th>Type</th><th>Value</th></tr></thead>\n<tbody>\n");
    let _ = writeln!(
        out,
        "<tr data-field=\"id\"><td><code>id</code></td><td>text</td><td>{}</td></tr>",
        escape_html(&p.base.get("id").map(value_text).unwrap_or_default())
    );
    for f in &model.fields {
        let ty = f.ty.as_ref().map_or("?".to_string(), Type::describe);
        let value = match p.base.get(&f.name) {
            Some(v) if !v.is_null() => escape_html(&value_text(v)),
            _ => "<span class=\"muted\">not set</span>".to_string(),
        };
        let _ = writeln!(
            out,
            "<tr data-field=\"{0}\"><td><code>{0}</code></td><td>{1}{2}</td><td>{value}</td></tr>",
            escape_html(&f.name),
            escape_html(&ty),
            if f.optional { "?" } else { "" }
        );
    }
    out.push_str("</tbody>\n</table>\n");
    for (title, id, key) in [("Lists", "lists", "lists"), ("Tags", "tags", "tags")] {
        let _ = writeln!(out, "<h2>{title}</h2>");
        let items: Vec<String> = match p.base.get(key) {
            Some(Json::Array(a)) => a.iter().map(value_text).collect(),
            _ => Vec::new(),
        };
        if items.is_empty() {
            let _ = writeln!(out, "<p id=\"{id}\" class=\"muted\">none</p>");
        } else {
            let _ = writeln!(out, "<ul id=\"{id}\" class=\"chips\">");
            for i in items {
                let _ = writeln!(out, "<li>{}</li>", escape_html(&i));
            }
            out.push_str("</ul>\n");
        }
    }
    out.push_str("<h2>Events</h2>\n");
    if p.events.is_empty() {
        out.push_str("<p id=\"events\" class=\"muted\">none: no engagement or event history</p>\n");
    } else {
        out.push_str("<table id=\"events\">\n<thead><tr><th>At</th><th>Event</th><th>Values</th></tr></thead>\n<tbody>\n");
        let mut events: Vec<_> = p.events.iter().enumerate().collect();
        events.sort_by_key(|(i, (_, at, _))| (*at, *i));
        for (_, (ty, _, fields)) in events {
            let at = fields.get("at").map(value_text).unwrap_or_default();
            let values: Vec<String> = fields
                .iter()
                .filter(|(k, _)| k.as_str() != "at")
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            let _ = writeln!(
                out,
                "<tr data-event=\"{0}\"><td>{1}</td><td><code>{0}</code></td><td>{2}</td></tr>",
                escape_html(ty),
                escape_html(&at),
                escape_html(&values.join(", "))
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if let Some(facts) = facts {
        persona_facts_section(&mut out, facts);
    }
    out.push_str("<h2>Messages</h2>\n");
    if rows.is_empty() {
        out.push_str("<p id=\"persona-messages\" class=\"muted\">none</p>\n");
    } else {
        out.push_str("<table id=\"persona-messages\">\n<thead><tr><th>Template</th><th>Channel</th><th>Subject, title or text</th></tr></thead>\n<tbody>\n");
        for row in rows {
            out.push_str(row);
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</main>\n");
    tail(&mut out);
    out
}

/// `preview/scenario/NAME.html` or `preview/cadence/NAME.html`: the flow's
/// settings and its drawing (`svg`, from `flow`).
pub(crate) fn flow_page(plan: &Plan, kind: &str, name: &str, svg: &str) -> String {
    let mut out = String::new();
    let title = format!("{kind} {name}");
    head(&mut out, &title, "flow", FLOW_STYLE);
    let esc = escape_html(name);
    out.push_str("<header>\n<p class=\"muted\"><a href=\"../index.html\">All previews</a></p>\n");
    out.push_str("<nav id=\"flow-switcher\" class=\"switcher\" aria-label=\"Flows\"><span class=\"muted\">Flows:</span>\n");
    let flows = plan
        .scenario_order
        .iter()
        .filter(|n| plan.scenarios.contains_key(*n))
        .map(|n| ("scenario", n))
        .chain(plan.cadences.keys().map(|n| ("cadence", n)));
    for (k, n) in flows {
        let n_esc = escape_html(n);
        let file = escape_html(&page_name(n));
        let current = if k == kind && n == name {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<a href=\"../{k}/{file}.html\"{current} title=\"{k}\">{n_esc}</a>"
        );
    }
    out.push_str("</nav>\n");
    let cap = if kind == "scenario" {
        "Scenario"
    } else {
        "Cadence"
    };
    let _ = writeln!(out, "<h1>{cap} <code>{esc}</code></h1>\n<dl>");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    let code = |s: String| format!("<code>{}</code>", escape_html(&s));
    // The templates sent, in the order a contact gets them: steps in
    // order (arms one after the other), a cadence's touches in order.
    let mut sends: Vec<&str> = Vec::new();
    if let Some(s) = plan.scenarios.get(name).filter(|_| kind == "scenario") {
        row("Trigger", code(triggers_text(s)));
        row(
            "Audience",
            s.audience
                .as_ref()
                .map_or("everyone".to_string(), |a| code(expr_text(a))),
        );
        row("Re-entry", escape_html(&reentry_text(&s.reentry)));
        if let Some(e) = &s.exit_when {
            row("Exit when", code(expr_text(e)));
        }
        for g in &s.goals {
            row(
                "Goal",
                code(format!(
                    "{} within {}",
                    g.event,
                    duration_text(g.within_seconds)
                )),
            );
        }
        let mut steps: Vec<(&String, &Step)> = s.steps.iter().collect();
        steps.sort_by_cached_key(|(id, _)| step_order(id));
        for (_, st) in steps {
            match st {
                Step::Send { template, .. } => sends.push(template),
                Step::Start { cadence, .. } => {
                    if let Some(c) = plan.cadences.get(cadence) {
                        sends.extend(c.touches.iter().map(|t| t.template.as_str()));
                    }
                }
                _ => {}
            }
        }
    } else if let Some(c) = plan.cadences.get(name) {
        row(
            "Spacing",
            escape_html(&match c.spacing_business_days {
                Some(n) => format!("{n} business day{}", if n == 1 { "" } else { "s" }),
                None => duration_text(c.spacing_seconds),
            }),
        );
        if let Some(e) = &c.stop_when {
            row("Stop when", code(expr_text(e)));
        }
        let starters: Vec<String> = crate::render::flow::starters(plan, name)
            .into_iter()
            .map(|n| {
                let file = escape_html(&page_name(n));
                let n = escape_html(n);
                format!("<a href=\"../scenario/{file}.html\"><code>{n}</code></a>")
            })
            .collect();
        row(
            "Started by",
            if starters.is_empty() {
                "no scenario".to_string()
            } else {
                starters.join(", ")
            },
        );
        sends.extend(c.touches.iter().map(|t| t.template.as_str()));
    }
    let mut seen = BTreeSet::new();
    sends.retain(|t| seen.insert(*t));
    if !sends.is_empty() {
        let links: Vec<String> = sends
            .iter()
            .map(|t| {
                let t_esc = escape_html(t);
                let channel = plan
                    .templates
                    .get(*t)
                    .map_or(String::new(), |t| format!(" ({})", escape_html(&t.channel)));
                let subject = crate::render::flow::send_subject(plan, t).map_or(String::new(), |s| {
                    format!(" <span class=\"send-subject\">“{}”</span>", escape_html(&s))
                });
                format!(
                    "<li data-template=\"{t_esc}\"><a href=\"../index.html#template-{t_esc}\"><code>{t_esc}</code></a>{channel}{subject}</li>"
                )
            })
            .collect();
        let starts = plan
            .scenarios
            .get(name)
            .filter(|_| kind == "scenario")
            .is_some_and(|s| s.steps.values().any(|st| matches!(st, Step::Start { .. })));
        let label = if starts {
            "Sends (with its cadences)"
        } else {
            "Sends"
        };
        row(label, format!("<ol id=\"sends\">{}</ol>", links.concat()));
    }
    out.push_str("</dl>\n</header>\n");
    let _ = writeln!(
        out,
        "<main id=\"flow\" data-flow=\"{kind}/{esc}\" style=\"max-width:none\">\n<input type=\"checkbox\" id=\"actual-size\"> <label for=\"actual-size\">Actual size (the drawing fits the window otherwise)</label>\n<div class=\"flow-scroll\">"
    );
    out.push_str(svg);
    out.push_str("</div>\n<p class=\"muted\">Boxes link to their template's previews and to the cadences a scenario starts.</p>\n</main>\n");
    tail(&mut out);
    out
}

/// A step id's place in the flow: `s/2.1.0` → `[2, 1, 0]` (ids compared
/// as text would put step 10 before step 2).
fn step_order(id: &str) -> Vec<u64> {
    let local = id.rsplit_once('/').map_or(id, |(_, l)| l);
    local
        .split('.')
        .map(|n| n.parse().unwrap_or(u64::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_ordered_by_number() {
        let mut ids = vec!["s/10", "s/2", "s/2.1.0", "s/2.0.3", "s/0"];
        ids.sort_by_cached_key(|id| step_order(id));
        assert_eq!(ids, ["s/0", "s/2", "s/2.0.3", "s/2.1.0", "s/10"]);
    }

    #[test]
    fn pretty_json_keeps_order_and_values() {
        assert_eq!(
            pretty_json(r#"{"b":1, "a" : [1,2,{}], "s":"x, {y}: \"z\"", "e": []}"#).as_deref(),
            Some(
                "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2,\n    {}\n  ],\n  \"s\": \"x, {y}: \\\"z\\\"\",\n  \"e\": []\n}"
            )
        );
        assert_eq!(pretty_json("not json"), None);
        assert_eq!(pretty_json("{\"a\": 1,}"), None);
        assert_eq!(pretty_json(" 12 ").as_deref(), Some("12"));
    }

    fn hostile() -> (Model, PersonaInfo, RenderedMessage) {
        let evil = "<script>alert(1)</script>\" onload=\"x";
        let mut model = Model::default();
        model.workspace.insert("name".into(), evil.into());
        model
            .workspace
            .insert("from".into(), format!("{evil} <a@b.example>"));
        model.fields.push(crate::render::model::FieldInfo {
            name: "phone".into(),
            ty: Some(Type::Phone),
            optional: false,
        });
        model.fields.push(crate::render::model::FieldInfo {
            name: "first_name".into(),
            ty: Some(Type::Text),
            optional: true,
        });
        let mut base = serde_json::Map::new();
        base.insert("id".into(), Json::from("p"));
        base.insert("phone".into(), Json::from(evil));
        base.insert("first_name".into(), Json::from(evil));
        base.insert("lists".into(), Json::from(vec![evil]));
        base.insert("tags".into(), Json::from(vec![evil]));
        let mut fields = serde_json::Map::new();
        fields.insert("sku".into(), Json::from(evil));
        fields.insert("at".into(), Json::from("2026-01-01T00:00:00Z"));
        let p = PersonaInfo {
            name: "p".into(),
            doc: Some(evil.into()),
            negative: true,
            base,
            events: vec![("purchase".into(), 0, fields)],
            locale: None,
        };
        let m = RenderedMessage {
            template: "t".into(),
            persona: "p".into(),
            channel: "sms".into(),
            kind: crate::render::MessageKind::Marketing,
            subject: Some(evil.into()),
            preheader: Some(evil.into()),
            html: Some(format!("<p>{evil}</p>")),
            text: Some(evil.into()),
            text_derived: false,
            title: Some(evil.into()),
            body: Some(evil.into()),
            url: Some(evil.into()),
            from: Some(evil.into()),
            reply_to: Some(evil.into()),
            assignee: Some(evil.into()),
            operational: crate::render::senders::Operational {
                due_seconds: Some(86_400),
                method: Some(evil.into()),
                headers: vec![(evil.into(), evil.into())],
                priority: Some(evil.into()),
                expires_seconds: Some(43_200),
            },
            locale: None,
        };
        (model, p, m)
    }

    #[test]
    fn hostile_values_are_escaped_on_every_page() {
        let (model, p, mut m) = hostile();
        let check = |page: &str| {
            assert!(!page.contains("<script"), "{page}");
            assert!(!page.contains("\" onload"), "{page}");
            assert!(page.contains("&lt;script&gt;"), "{page}");
        };
        for channel in ["email", "sms", "push", "task", "webhook"] {
            m.channel = channel.into();
            let page = page(&m, &p, &model, &[&p]);
            check(&page);
            if channel == "email" {
                // The HTML only inside sandboxed srcdoc attributes.
                assert_eq!(page.matches("sandbox=\"\" ").count(), 2, "{page}");
                assert!(page.contains("srcdoc=\"&lt;p&gt;&lt;script&gt;"), "{page}");
            }
        }
        let evil = "<script>alert(1)</script>\" onload=\"x";
        let facts = PersonaFacts {
            segments: vec![(evil.into(), true), (evil.into(), false)],
            expects: vec![(evil.into(), Some(evil.into())), (evil.into(), None)],
            scenarios: vec![(evil.into(), evil.into(), true)],
            no_consent: vec![(evil.into(), evil.into())],
        };
        check(&persona_page(
            &p,
            &model,
            &[&p],
            &[&persona_row(&m)],
            Some(&facts),
        ));
        check(&index_with(&model, 1, &mut |t, out| {
            let list: &[&RenderedMessage] = if t.name == m.template { &[&m] } else { &[] };
            index_rows(t, list, false, out)
        }));
    }

    #[test]
    fn fixed_widths_wider_than_a_phone_are_found() {
        let w = |h: &str| fixed_width_over(h, 375).map(|f| (f.width, f.written, f.media));
        assert_eq!(
            w("<table role=\"presentation\" width=\"600\" style=\"max-width:600px\">"),
            Some((600, "width=\"600\"".into(), false))
        );
        assert_eq!(
            w("<div style=\"color:red; width: 480px\">"),
            Some((480, "width:480px".into(), false))
        );
        assert_eq!(
            w("<td style='min-width:700px'>"),
            Some((700, "min-width:700px".into(), false))
        );
        assert_eq!(
            w("<img WIDTH=640><style>@media (max-width:600px){.x{width:100%}}</style>"),
            Some((640, "width=\"640\"".into(), true))
        );
        for fine in [
            "<table width=\"100%\" style=\"max-width:600px\">",
            "<meta name=\"viewport\" content=\"width=device-width\">",
            "<img width=\"320\" data-width=\"900\" style=\"border-width:900px\">",
            "<style>.wrap{width:600px}</style><div class=\"wrap\">",
            "<div style=\"width:40em\">",
        ] {
            assert_eq!(w(fine), None, "{fine}");
        }
    }

    #[test]
    fn summaries_are_short_and_on_one_line() {
        let m = RenderedMessage {
            template: "t".into(),
            persona: "p".into(),
            channel: "sms".into(),
            kind: crate::render::MessageKind::Marketing,
            subject: None,
            preheader: None,
            html: None,
            text: None,
            text_derived: false,
            title: None,
            body: Some(format!("Hello\n  there {}", "word ".repeat(40))),
            url: None,
            from: None,
            reply_to: None,
            assignee: None,
            operational: Default::default(),
            locale: None,
        };
        let s = summary(&m);
        assert!(s.starts_with("Hello there word"), "{s}");
        assert!(s.ends_with('…') && s.chars().count() <= 91, "{s}");
        assert_eq!(sender_name("\"Acme\" <a@b.example>"), "Acme");
        assert_eq!(sender_name("a@b.example"), "a@b.example");
    }
}
