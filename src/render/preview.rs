//! Preview pages: one standalone HTML page per message and an index.
//! Deterministic: no timestamps, no absolute paths, fixed order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::RenderedMessage;
use super::model::{Model, PersonaInfo};
use super::text::{escape_html, sms_length};

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f3f4f6;color:#111827}
header,main,footer{max-width:760px;margin:0 auto;padding:16px 20px}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:24px 0 8px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:0}dt{color:#6b7280}dd{margin:0}
.box{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:12px 16px}
iframe{width:100%;height:70vh;border:1px solid #e5e7eb;border-radius:6px;background:#fff}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font:14px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace}
.muted{color:#6b7280;font-size:13px}table{border-collapse:collapse;width:100%;background:#fff}
td,th{border:1px solid #e5e7eb;padding:6px 8px;text-align:left;vertical-align:top}
";

fn head(out: &mut String, title: &str) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", escape_html(title));
    let _ = write!(out, "<style>\n{STYLE}</style>\n</head>\n<body>\n");
}

fn persona_line(p: &PersonaInfo) -> String {
    let mut s = format!("<code>{}</code>", escape_html(&p.name));
    if p.negative {
        s.push_str(" (negative persona)");
    }
    if let Some(doc) = &p.doc {
        let _ = write!(s, " — {}", escape_html(doc.trim()));
    }
    s
}

/// The page of one rendered message.
pub(crate) fn page(m: &RenderedMessage, p: &PersonaInfo, model: &Model) -> String {
    let mut out = String::new();
    head(&mut out, &format!("{} · {}", m.template, m.persona));
    out.push_str("<header>\n<p class=\"muted\"><a href=\"../index.html\">All previews</a></p>\n");
    let _ = writeln!(
        out,
        "<h1><code>{}</code> for <code>{}</code></h1>",
        escape_html(&m.template),
        escape_html(&m.persona)
    );
    out.push_str("<dl>\n");
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    };
    row("Channel", &escape_html(&m.channel));
    row("Kind", m.kind.as_str());
    row("Persona", &persona_line(p));
    if m.channel == "email"
        && let Some(from) = model.workspace.get("from")
    {
        row("From", &escape_html(from));
    }
    for (k, v) in [
        ("URL", &m.url),
        ("Subject", &m.subject),
        ("Preheader", &m.preheader),
        ("Title", &m.title),
    ] {
        if let Some(v) = v {
            row(k, &escape_html(v));
        }
    }
    if m.channel == "sms"
        && let Some(body) = &m.body
    {
        let (len, enc) = sms_length(body);
        row(
            "Length",
            &format!(
                "{len} {} characters (one SMS holds {})",
                enc.name(),
                enc.limit()
            ),
        );
    }
    out.push_str("</dl>\n</header>\n<main>\n");
    if let Some(html) = &m.html {
        // Sandboxed: scripts in the message (or in persona data) never run.
        let _ = writeln!(
            out,
            "<iframe sandbox=\"\" title=\"HTML body\" srcdoc=\"{}\"></iframe>",
            escape_html(html)
        );
    }
    if let Some(body) = &m.body {
        let _ = writeln!(
            out,
            "<h2>Body</h2>\n<div class=\"box\"><pre>{}</pre></div>",
            escape_html(body)
        );
    }
    if let Some(text) = &m.text {
        let _ = writeln!(
            out,
            "<h2>Text part{}</h2>\n<div class=\"box\"><pre>{}</pre></div>",
            if m.text_derived {
                " (derived from the HTML)"
            } else {
                ""
            },
            escape_html(text)
        );
    }
    out.push_str("</main>\n<footer class=\"muted\">\n<p>");
    let persona = escape_html(&m.persona);
    if m.text.is_some() {
        let _ = write!(out, "<a href=\"{persona}.txt\">Text part</a> · ");
    }
    let _ = write!(out, "<a href=\"{persona}.json\">JSON</a>");
    out.push_str("</p>\n</footer>\n</body>\n</html>\n");
    out
}

/// `preview/index.html`: every template with a link per persona, and the
/// personas with their descriptions.
pub(crate) fn index(
    model: &Model,
    messages: &[RenderedMessage],
    broken: &BTreeSet<String>,
) -> String {
    let mut by_template: BTreeMap<&str, Vec<&RenderedMessage>> = BTreeMap::new();
    for m in messages {
        by_template.entry(&m.template).or_default().push(m);
    }
    let mut templates: Vec<_> = model.templates.iter().collect();
    templates.sort_by(|a, b| a.name.cmp(&b.name));
    let mut personas: Vec<_> = model.personas.iter().collect();
    personas.sort_by(|a, b| a.name.cmp(&b.name));

    let mut out = String::new();
    let title = match model.workspace.get("name") {
        Some(n) => format!("Previews — {n}"),
        None => "Previews".to_string(),
    };
    head(&mut out, &title);
    let _ = writeln!(out, "<header>\n<h1>{}</h1>", escape_html(&title));
    let _ = writeln!(
        out,
        "<p class=\"muted\">{} template{} × {} persona{}</p>\n</header>\n<main>",
        templates.len(),
        if templates.len() == 1 { "" } else { "s" },
        personas.len(),
        if personas.len() == 1 { "" } else { "s" }
    );
    out.push_str("<h2>Templates</h2>\n<table>\n<tr><th>Template</th><th>Channel</th><th>Previews</th></tr>\n");
    for t in templates {
        let name = escape_html(&t.name);
        let _ = write!(
            out,
            "<tr><td><code>{name}</code></td><td>{} · {}</td><td>",
            escape_html(&t.channel),
            t.kind.as_str()
        );
        if broken.contains(&t.name) {
            out.push_str("not rendered: the template has errors");
        } else {
            let list = by_template
                .get(t.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let links: Vec<String> = list
                .iter()
                .map(|m| {
                    let p = escape_html(&m.persona);
                    let mut s = format!("<a href=\"{name}/{p}.html\">{p}</a>");
                    if m.text.is_some() {
                        let _ = write!(s, " (<a href=\"{name}/{p}.txt\">txt</a>, <a href=\"{name}/{p}.json\">json</a>)");
                    } else {
                        let _ = write!(s, " (<a href=\"{name}/{p}.json\">json</a>)");
                    }
                    s
                })
                .collect();
            if links.is_empty() {
                out.push_str("no persona");
            } else {
                out.push_str(&links.join("<br>\n"));
            }
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n<h2>Personas</h2>\n<ul>\n");
    for p in personas {
        let _ = writeln!(out, "<li>{}</li>", persona_line(p));
    }
    out.push_str("</ul>\n</main>\n</body>\n</html>\n");
    out
}
