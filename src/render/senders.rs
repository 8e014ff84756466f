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

/// The `from`, `reply_to` and `assignee` parts of a plan's templates,
/// compiled once, rendered by the runner for each message (no escaping,
/// the helpers of previews). Parts that fail to compile are left out.
pub(crate) struct PlanParts {
    registry: handlebars::Handlebars<'static>,
}

/// The parts the runner renders into the outbox.
pub(crate) const RUN_PARTS: [&str; 3] = ["from", "reply_to", "assignee"];

impl PlanParts {
    pub(crate) fn new(plan: &crate::plan::Plan) -> PlanParts {
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
        let mut registry = helpers::registry(
            super::model::Mode::Plain,
            plan.schema.timezone_field.clone(),
            tz,
            std::sync::Arc::new(links),
        );
        for (name, t) in &plan.templates {
            for attr in RUN_PARTS {
                if let Some(part) = t.parts.get(attr)
                    && let Ok(mut c) = helpers::compile(&part.text)
                {
                    let key = body_key(name, attr);
                    c.name = Some(key.clone());
                    registry.register_template(&key, c);
                }
            }
        }
        PlanParts { registry }
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
}
