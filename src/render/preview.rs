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
//! - index: `main#index`; `table#messages` with one `tr.message` per
//!   message (`data-template`, `data-persona`, `data-channel`, `data-kind`),
//!   its `td.summary` (subject, push title, or the body's first words) and
//!   `a.preview`; a template's first row has `id="template-NAME"`;
//!   `ul#flows` (`a[data-flow="scenario/NAME"]`); `ul#personas`;
//! - message: `main#message` (`data-template`, `data-persona`,
//!   `data-channel`, `data-kind`); `nav#persona-switcher` (the current
//!   persona's link has `aria-current="page"`); `a#persona-link`;
//!   - email: `.inbox-row`, `#from`, `#subject`, `#preheader`,
//!     `iframe.desktop` (640 px) and `iframe.mobile` (375 px), both
//!     `sandbox=""` with the HTML in `srcdoc`; `pre#text-part`;
//!   - sms: `.phone`, `.sms-bubble`, `.sms-length`, `.sms-encoding`,
//!     `.sms-segments` (`data-segments="N"`);
//!   - push: `.push-card`, `.push-title`, `.push-body`;
//!   - task: `.task-card`, `.task-body`;
//!   - webhook: `.webhook-card`, `.webhook-url`, `.webhook-body`;
//! - persona: `main#persona` (`data-persona`, `data-negative`);
//!   `table#fields` (`tr[data-field]`), `#lists`, `#tags`, `table#events`,
//!   `table#persona-messages`; `nav#persona-switcher`;
//! - flow: `main#flow` (`data-flow="scenario/NAME"`), `svg.flow` with one
//!   `g.node` per box (`.entry`, `.audience`, `.send`, `.wait`, `.branch`,
//!   `.split`, `.arm`, `.action`, `.start`, `.exit`, `.end`, `.note`; steps
//!   carry `data-step="SCENARIO/ID"`, touches `data-step="CADENCE/N"`);
//!   `nav#flow-switcher`.
//!
//! Everything from the project (persona values, rendered bodies, names) is
//! HTML-escaped; an email's HTML is shown only inside `sandbox=""` iframes
//! through `srcdoc`, so its scripts never run.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value as Json;

use super::RenderedMessage;
use super::flow::{FLOW_STYLE, duration_text, expr_text, reentry_text, trigger_text};
use super::model::{Model, PersonaInfo, TemplateInfo};
use super::names::page_name;
use super::text::{escape_html, sms_length, sms_segments};
use crate::check::types::Type;
use crate::plan::{Plan, Step};

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
.sms-stats{margin-top:12px}.warn{color:#b45309}
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
    let from = model.workspace.get("from");
    if m.channel == "email"
        && let Some(from) = from
    {
        row("From", "from", &escape_html(from));
    }
    if let Some(to) = address(model, p, &m.channel) {
        row("To", "to", &escape_html(to));
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
        for (class, label, w, h) in [
            ("desktop", "Desktop", 640, 800),
            ("mobile", "Mobile", 375, 740),
        ] {
            let _ = writeln!(
                out,
                "<figure class=\"viewport\"><figcaption>{label} · {w} px</figcaption><iframe class=\"{class}\" sandbox=\"\" width=\"{w}\" height=\"{h}\" title=\"HTML body, {label} width\" srcdoc=\"{doc}\"></iframe></figure>"
            );
        }
        out.push_str("</section>\n");
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
    if enc == super::text::SmsEncoding::Ucs2 {
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

/// `preview/index.html`: every message (templates × personas) with its
/// channel, kind and summary; the flows; the personas. Each template's
/// rows are written by `rows` ([`index_rows`], kept with the template's
/// previews so that a build redoes only the changed templates' rows).
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
    let mut out = String::with_capacity(4096 + messages * 192);
    let title = match model.workspace.get("name") {
        Some(n) => format!("Previews — {n}"),
        None => "Previews".to_string(),
    };
    head(&mut out, &title, "index", "");
    let _ = writeln!(out, "<header>\n<h1>{}</h1>", escape_html(&title));
    let scenarios = model.flows.iter().filter(|f| f.kind == "scenario").count();
    let _ = writeln!(
        out,
        "<p class=\"muted\">{} × {} · {} · {}</p>\n</header>\n<main id=\"index\">",
        plural(templates.len(), "template", "templates"),
        plural(personas.len(), "persona", "personas"),
        plural(scenarios, "scenario", "scenarios"),
        plural(model.flows.len() - scenarios, "cadence", "cadences"),
    );
    out.push_str("<h2>Messages</h2>\n<table id=\"messages\">\n<thead><tr><th>Template</th><th>Channel</th><th>Kind</th><th>Persona</th><th>Subject, title or text</th><th>Files</th></tr></thead>\n<tbody>\n");
    for t in templates {
        rows(t, &mut out);
    }
    out.push_str("</tbody>\n</table>\n");
    out.push_str("<h2>Flows</h2>\n");
    if model.flows.is_empty() {
        out.push_str("<p id=\"flows\" class=\"muted\">No scenario or cadence.</p>\n");
    } else {
        out.push_str("<ul id=\"flows\">\n");
        for f in &model.flows {
            let name = escape_html(&f.name);
            let file = escape_html(&page_name(&f.name));
            let _ = write!(
                out,
                "<li>{} <a href=\"{}/{file}.html\" data-flow=\"{}/{name}\"><code>{name}</code></a>",
                f.kind, f.kind, f.kind
            );
            if let Some(doc) = &f.doc {
                let _ = write!(out, " — {}", escape_html(&one_line(doc)));
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Personas</h2>\n<ul id=\"personas\">\n");
    for p in personas {
        let href = format!("persona/{}.html", escape_html(&page_name(&p.name)));
        let _ = writeln!(out, "<li>{}</li>", persona_line(p, &href));
    }
    out.push_str("</ul>\n</main>\n");
    tail(&mut out);
    out
}

/// One template's rows of the index table.
pub(crate) fn index_rows(
    t: &TemplateInfo,
    list: &[&RenderedMessage],
    broken: bool,
    out: &mut String,
) {
    let name = escape_html(&t.name);
    let channel = escape_html(&t.channel);
    let kind = t.kind.as_str();
    let cells = |rows: usize| {
        let span = if rows > 1 {
            format!(" rowspan=\"{rows}\"")
        } else {
            String::new()
        };
        format!("<td{span}><code>{name}</code></td><td{span}>{channel}</td><td{span}>{kind}</td>")
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
            "<tr id=\"template-{name}\" class=\"message missing\" {attrs}>{}<td colspan=\"3\" class=\"muted\">{why}</td></tr>",
            cells(1)
        );
        return;
    }
    let folder = escape_html(&page_name(&t.name));
    for (i, m) in list.iter().enumerate() {
        let p = escape_html(&m.persona);
        let file = escape_html(&page_name(&m.persona));
        let id = if i == 0 {
            format!("id=\"template-{name}\" ")
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr {id}class=\"message\" {attrs} data-persona=\"{p}\">{}",
            if i == 0 {
                cells(list.len())
            } else {
                String::new()
            }
        );
        let _ = write!(
            out,
            "<td><a class=\"preview\" href=\"{folder}/{file}.html\">{p}</a></td><td class=\"summary\">{}</td><td>",
            escape_html(&summary(m))
        );
        if m.text.is_some() {
            let _ = write!(out, "<a href=\"{folder}/{file}.txt\">txt</a> · ");
        }
        let _ = writeln!(out, "<a href=\"{folder}/{file}.json\">json</a></td></tr>");
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

/// `preview/persona/NAME.html`: a persona's description and data, and
/// links to its messages.
/// `rows` are the persona's rows of its messages table ([`persona_row`]).
pub(crate) fn persona_page(
    p: &PersonaInfo,
    model: &Model,
    personas: &[&PersonaInfo],
    rows: &[&str],
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
    let mut sends: BTreeSet<&str> = BTreeSet::new();
    if let Some(s) = plan.scenarios.get(name).filter(|_| kind == "scenario") {
        row("Trigger", code(trigger_text(&s.trigger)));
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
        for st in s.steps.values() {
            match st {
                Step::Send { template, .. } => {
                    sends.insert(template);
                }
                Step::Start { cadence, .. } => {
                    if let Some(c) = plan.cadences.get(cadence) {
                        sends.extend(c.touches.iter().map(|t| t.template.as_str()));
                    }
                }
                _ => {}
            }
        }
    } else if let Some(c) = plan.cadences.get(name) {
        row("Spacing", escape_html(&duration_text(c.spacing_seconds)));
        if let Some(e) = &c.stop_when {
            row("Stop when", code(expr_text(e)));
        }
        let starters: Vec<String> = super::flow::starters(plan, name)
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
    if !sends.is_empty() {
        let links: Vec<String> = sends
            .iter()
            .map(|t| {
                let t_esc = escape_html(t);
                let channel = plan
                    .templates
                    .get(*t)
                    .map_or(String::new(), |t| format!(" ({})", escape_html(&t.channel)));
                format!(
                    "<a href=\"../index.html#template-{t_esc}\"><code>{t_esc}</code></a>{channel}"
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
        row(label, links.join(", "));
    }
    out.push_str("</dl>\n</header>\n");
    let _ = writeln!(
        out,
        "<main id=\"flow\" data-flow=\"{kind}/{esc}\" style=\"max-width:none\">\n<input type=\"checkbox\" id=\"fit-flow\"> <label for=\"fit-flow\">Fit the drawing to the window</label>\n<div class=\"flow-scroll\">"
    );
    out.push_str(svg);
    out.push_str("</div>\n<p class=\"muted\">Boxes link to their template's previews and to the cadences a scenario starts.</p>\n</main>\n");
    tail(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        model.fields.push(super::super::model::FieldInfo {
            name: "phone".into(),
            ty: Some(Type::Phone),
            optional: false,
        });
        model.fields.push(super::super::model::FieldInfo {
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
        };
        let m = RenderedMessage {
            template: "t".into(),
            persona: "p".into(),
            channel: "sms".into(),
            kind: super::super::MessageKind::Marketing,
            subject: Some(evil.into()),
            preheader: Some(evil.into()),
            html: Some(format!("<p>{evil}</p>")),
            text: Some(evil.into()),
            text_derived: false,
            title: Some(evil.into()),
            body: Some(evil.into()),
            url: Some(evil.into()),
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
        check(&persona_page(&p, &model, &[&p], &[&persona_row(&m)]));
        check(&index_with(&model, 1, &mut |t, out| {
            let list: &[&RenderedMessage] = if t.name == m.template { &[&m] } else { &[] };
            index_rows(t, list, false, out)
        }));
    }

    #[test]
    fn summaries_are_short_and_on_one_line() {
        let m = RenderedMessage {
            template: "t".into(),
            persona: "p".into(),
            channel: "sms".into(),
            kind: super::super::MessageKind::Marketing,
            subject: None,
            preheader: None,
            html: None,
            text: None,
            text_derived: false,
            title: None,
            body: Some(format!("Hello\n  there {}", "word ".repeat(40))),
            url: None,
        };
        let s = summary(&m);
        assert!(s.starts_with("Hello there word"), "{s}");
        assert!(s.ends_with('…') && s.chars().count() <= 91, "{s}");
        assert_eq!(sender_name("\"Acme\" <a@b.example>"), "Acme");
        assert_eq!(sender_name("a@b.example"), "a@b.example");
    }
}
