//! Senders and operational detail (LANGUAGE.md §12): what previews show of
//! a task's `due`, a webhook's `method` and headers, and the check that
//! every persona's rendered `from` and `reply_to` is one RFC 5322 mailbox
//! (E0580). Secrets (`env("NAME")` in a header) are shown by name only:
//! their values are read by the runner at send time, never here.

use handlebars::Context;

use super::model::{BodyValue, PersonaInfo, TemplateInfo};
use super::problem::{ProblemKind, TemplateProblem};
use super::{RenderProject, body_key, helpers};
use crate::syntax::ast;

/// A template's send settings as previews show them: a task's `due`, a
/// webhook's `method` and headers, and any template's `priority` and
/// `expires` (§12) when written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Operational {
    /// Seconds after the send.
    pub due_seconds: Option<i64>,
    /// `POST`, `PUT` or `PATCH` when the template sets it.
    pub method: Option<String>,
    /// Each header with its value as shown: `env("NAME")` pieces stay
    /// written as `env("NAME")`, never read.
    pub headers: Vec<(String, String)>,
    /// `high`, `normal` or `low` when the template sets `priority`.
    pub priority: Option<String>,
    /// The template's `expires`, in seconds.
    pub expires_seconds: Option<i64>,
}

impl Operational {
    /// The JSON form of the preview's `.json` file (keys only when used).
    pub fn insert_json(&self, m: &mut std::collections::BTreeMap<&str, serde_json::Value>) {
        if let Some(d) = self.due_seconds {
            m.insert("due", serde_json::Value::from(super::duration_text(d)));
        }
        if let Some(method) = &self.method {
            m.insert("method", serde_json::Value::from(method.as_str()));
        }
        if let Some(p) = &self.priority {
            m.insert("priority", serde_json::Value::from(p.as_str()));
        }
        if let Some(e) = self.expires_seconds {
            m.insert("expires", serde_json::Value::from(super::duration_text(e)));
        }
        if !self.headers.is_empty() {
            let mut h = serde_json::Map::new();
            for (k, v) in &self.headers {
                h.insert(k.clone(), serde_json::Value::from(v.as_str()));
            }
            m.insert("headers", serde_json::Value::Object(h));
        }
    }
}

/// The operational detail of a template declaration.
pub(crate) fn operational(t: &ast::Template) -> Operational {
    let attr = |name: &str| {
        t.attrs
            .iter()
            .find(|a| a.name.name == name)
            .map(|a| &a.value.node)
    };
    let channel = t.channel.name.as_str();
    Operational {
        due_seconds: match (channel, attr("due")) {
            ("task", Some(ast::AttrValue::Duration(d))) => Some(d.seconds()),
            _ => None,
        },
        method: match (channel, attr("method")) {
            // Shown when written (the default, POST, is not repeated).
            ("webhook", Some(ast::AttrValue::Word(w))) => Some(w.clone()),
            _ => None,
        },
        headers: if channel == "webhook" {
            t.headers
                .iter()
                .map(|h| (h.name.node.clone(), shown_value(&h.value)))
                .collect()
        } else {
            Vec::new()
        },
        priority: match attr("priority") {
            Some(ast::AttrValue::Word(w)) => Some(w.clone()),
            _ => None,
        },
        expires_seconds: match attr("expires") {
            Some(ast::AttrValue::Duration(d)) => Some(d.seconds()),
            _ => None,
        },
    }
}

/// A header value as previews show it: text as is, each secret as
/// `env("NAME")`.
fn shown_value(pieces: &[ast::HeaderPiece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            ast::HeaderPiece::Text(s) => s.node.clone(),
            ast::HeaderPiece::Env(e) => format!("env(\"{}\")", e.node),
        })
        .collect()
}

/// The sender attributes of an email that are templates (hold `{{`); a
/// literal one is checked once by the checker.
fn rendered_senders(t: &TemplateInfo) -> Vec<&'static str> {
    if t.channel != "email" {
        return Vec::new();
    }
    ["from", "reply_to"]
        .into_iter()
        .filter(|a| {
            t.body(a).is_some_and(|b| match &b.value {
                BodyValue::Inline { text, .. } => text.contains("{{"),
                BodyValue::File { .. } => true,
            })
        })
        .collect()
}

impl RenderProject {
    /// E0580 for each `from` or `reply_to` of `t` that does not render as
    /// one mailbox for some persona (every persona is rendered: a display
    /// name with a comma fails for one value and not another). One problem
    /// per attribute, naming the personas.
    pub(super) fn sender_problems(
        &self,
        t: &TemplateInfo,
        personas: &[&PersonaInfo],
        problems: &mut Vec<TemplateProblem>,
    ) {
        for attr in rendered_senders(t) {
            let Some(b) = t.body(attr) else { continue };
            let key = body_key(&t.name, attr);
            // (persona, rendered value, why)
            let mut bad: Vec<(&str, String, crate::mailbox::MailboxError)> = Vec::new();
            for p in personas {
                let Ok(ctx) = Context::wraps(p.context(t)) else {
                    continue;
                };
                // A rendering failure is reported with the other parts.
                let Ok(out) = helpers::render(&self.plain, &key, &ctx) else {
                    continue;
                };
                let out = out.trim_end_matches(['\n', '\r']).to_string();
                if let Err(e) = crate::mailbox::parse_mailbox(&out) {
                    bad.push((&p.name, out, e));
                }
            }
            let Some((first, value, why)) = bad.first() else {
                continue;
            };
            let names: Vec<String> = bad.iter().map(|(n, _, _)| format!("`{n}`")).collect();
            let (noun, plural) = if names.len() == 1 {
                ("persona", "")
            } else {
                ("personas", "s")
            };
            problems.push(
                TemplateProblem::new(
                    ProblemKind::RenderedSender,
                    b.value_span,
                    format!(
                        "the `{attr}` of `{}` is not one mailbox for {noun} {}: `{first}` gets `{}` ({})",
                        t.name,
                        names.join(", "),
                        super::hbs::shorten(value),
                        why.message
                    ),
                    format!("not one mailbox for {} persona{plural}", names.len()),
                )
                .help(format!(
                    "{}; quote an inserted display name in the template: `{attr} = \"\\\"{{{{owner_name}}}}\\\" <{{{{owner_email}}}}>\"`",
                    why.help
                )),
            );
        }
    }
}

/// A plan's templates compiled once, rendered by a runner for each
/// message with the helpers and escaping of previews: [`PlanParts::new`]
/// compiles only the `from`, `reply_to` and `assignee` parts (what `relance
/// run` writes into the outbox); [`PlanParts::all`] compiles every part,
/// variant, link URL and partial (what `relance serve` sends, through
/// `deliver::compose`). Parts that fail to compile are left out (a checked
/// plan has none).
pub(crate) struct PlanParts {
    /// Escape `none`.
    registry: handlebars::Handlebars<'static>,
    html: handlebars::Handlebars<'static>,
    json: handlebars::Handlebars<'static>,
    /// Link and webhook URLs: inserted values percent-encoded.
    url: handlebars::Handlebars<'static>,
    /// `TEMPLATE#attr` → why it did not compile.
    broken: std::collections::HashMap<String, String>,
}

/// The parts the runner renders into the outbox.
pub(crate) const RUN_PARTS: [&str; 3] = ["from", "reply_to", "assignee"];

impl PlanParts {
    pub(crate) fn new(plan: &crate::plan::Plan) -> PlanParts {
        PlanParts::compile(plan, Some(&RUN_PARTS))
    }

    /// Every part of every template, with the plan's partials.
    pub(crate) fn all(plan: &crate::plan::Plan) -> PlanParts {
        PlanParts::compile(plan, None)
    }

    fn compile(plan: &crate::plan::Plan, only: Option<&[&str]>) -> PlanParts {
        use super::model::Mode;
        let tz = plan
            .workspace
            .timezone
            .as_deref()
            .and_then(crate::tzdb::zone)
            .unwrap_or(jiff::tz::TimeZone::UTC);
        let links: std::collections::HashMap<String, Vec<String>> = plan
            .templates
            .iter()
            .map(|(n, t)| (n.clone(), t.link_order.clone()))
            .collect();
        let links = std::sync::Arc::new(links);
        let tz_field = &plan.schema.timezone_field;
        let registry = |mode| helpers::registry(mode, tz_field.clone(), tz.clone(), links.clone());
        let mut out = PlanParts {
            registry: registry(Mode::Plain),
            html: registry(Mode::Html),
            json: registry(Mode::Json),
            url: registry(Mode::Plain),
            broken: Default::default(),
        };
        out.url
            .register_escape_fn(super::text::escape_url_component);
        if only.is_none() {
            for (name, partial) in &plan.partials {
                let Ok(c) = super::compile_source(&partial.text) else {
                    continue;
                };
                // `{{> [my partial]}}` and `{{> 'my partial'}}` name it too.
                for alias in [name.clone(), format!("[{name}]"), format!("'{name}'")] {
                    for r in [
                        &mut out.registry,
                        &mut out.html,
                        &mut out.json,
                        &mut out.url,
                    ] {
                        r.register_template(&alias, c.clone());
                    }
                }
            }
        }
        for (name, t) in &plan.templates {
            let variants = t.variants.iter().flat_map(|(locale, parts)| {
                parts.iter().map(move |(attr, p)| (attr, Some(locale), p))
            });
            let parts = t.parts.iter().map(|(attr, p)| (attr, None, p));
            for (attr, locale, part) in parts.chain(variants) {
                if only.is_some_and(|o| locale.is_some() || !o.contains(&attr.as_str())) {
                    continue;
                }
                let key = match locale {
                    Some(l) => body_key(name, &format!("{attr}.{l}")),
                    None => body_key(name, attr),
                };
                // A file's final line break is not part of a one-line part.
                let text = if part.source != "inline" && super::single_line(&t.channel, attr) {
                    super::strip_final_newline(part.text.clone())
                } else {
                    part.text.clone()
                };
                let r = match part.escape.as_str() {
                    "html" => &mut out.html,
                    "json" => &mut out.json,
                    "url" => &mut out.url,
                    _ => &mut out.registry,
                };
                out.broken.remove(&key);
                match super::compile_source(&text) {
                    Ok(mut c) => {
                        c.name = Some(key.clone());
                        r.register_template(&key, c);
                    }
                    Err(why) => {
                        out.broken.insert(key, why);
                    }
                }
            }
            if only.is_some() {
                continue;
            }
            for (link, u) in t.links.iter().filter(|(_, u)| u.contains("{{")) {
                let key = body_key(name, &format!("link:{link}"));
                match super::compile_source(u) {
                    Ok(mut c) => {
                        c.name = Some(key.clone());
                        out.url.register_template(&key, c);
                    }
                    Err(why) => {
                        out.broken.insert(key, why);
                    }
                }
            }
        }
        out
    }

    /// `attr` of `template` rendered with `data`, on one line; `None` when
    /// it fails.
    pub(crate) fn render(
        &self,
        template: &str,
        attr: &str,
        data: serde_json::Value,
    ) -> Option<String> {
        let ctx = Context::wraps(data).ok()?;
        helpers::render(&self.registry, &body_key(template, attr), &ctx)
            .ok()
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
    }

    /// Every part of `template` (of [`PlanParts::all`]) for a contact who
    /// gets the variant `locale` (`None`: the unsuffixed parts), rendered
    /// with `data`, its render context with the template's declared links
    /// (`model::template_context`), as previews render a persona
    /// (`RenderProject::render_parts`): the link URLs that are templates
    /// first, values percent-encoded, then the parts, which see the
    /// rendered links as `links.NAME`; one-line parts without their final
    /// line break; an email without `text` gets one derived from its HTML.
    /// Part name → text, or the part that failed and why.
    pub(crate) fn render_message(
        &self,
        plan: &crate::plan::Plan,
        template: &str,
        locale: Option<&str>,
        mut data: serde_json::Value,
    ) -> Result<std::collections::BTreeMap<String, String>, (String, String)> {
        use serde_json::Value as J;
        let Some(t) = plan.templates.get(template) else {
            return Err((
                "template".into(),
                format!("no template `{template}` in the plan"),
            ));
        };
        let render = |r: &handlebars::Handlebars<'static>, key: &str, data: &J, attr: &str| {
            if let Some(why) = self.broken.get(key) {
                return Err((attr.to_string(), why.clone()));
            }
            let ctx = Context::wraps(data).map_err(|e| (attr.to_string(), e.to_string()))?;
            helpers::render(r, key, &ctx).map_err(|e| (attr.to_string(), e))
        };
        // The variant's parts replace the unsuffixed ones.
        let variant = locale.and_then(|l| Some((l, t.variants.get(l)?)));
        let mut parts: std::collections::BTreeMap<&str, String> = t
            .parts
            .keys()
            .map(|a| (a.as_str(), body_key(template, a)))
            .collect();
        if let Some((l, v)) = variant {
            for a in v.keys() {
                parts.insert(a.as_str(), body_key(template, &format!("{a}.{l}")));
            }
        }
        let mut out = std::collections::BTreeMap::new();
        // URLs first, with the declared links.
        let mut rendered_links = Vec::new();
        for (link, _) in t.links.iter().filter(|(_, u)| u.contains("{{")) {
            let attr = format!("link:{link}");
            let v = render(&self.url, &body_key(template, &attr), &data, &attr)?;
            rendered_links.push((link.clone(), v));
        }
        if let Some(key) = parts.remove("url") {
            out.insert("url".to_string(), render(&self.url, &key, &data, "url")?);
        }
        if let Some(links) = data.get_mut("links").and_then(J::as_object_mut) {
            for (n, v) in rendered_links {
                links.insert(n, J::String(v));
            }
        }
        for (attr, key) in parts {
            let part = variant
                .and_then(|(_, v)| v.get(attr))
                .or_else(|| t.parts.get(attr));
            let r = match part.map(|p| p.escape.as_str()) {
                Some("html") => &self.html,
                Some("json") => &self.json,
                Some("url") => &self.url,
                _ => &self.registry,
            };
            let text = render(r, &key, &data, attr)?;
            let text = if super::single_line(&t.channel, attr) && attr != "body" {
                text.trim_end_matches(['\n', '\r']).to_string()
            } else {
                text
            };
            out.insert(attr.to_string(), text);
        }
        if t.channel == "email"
            && !out.contains_key("text")
            && let Some(h) = out.get("html")
        {
            let text = super::html_to_text(h);
            out.insert("text".to_string(), text);
        }
        Ok(out)
    }
}
