//! What the outbox says of senders and operational detail (LANGUAGE.md
//! §12): an email's rendered `from` and `reply_to`, a task's rendered
//! `assignee` and its `due` instant, a webhook's `method` and headers.
//! Header secrets (`env("NAME")`) are read from the environment only to
//! know whether they are set: the outbox shows `[env:NAME]` in their
//! place, never a value (docs/runner.md).

use std::fmt::Write as _;

use serde_json::{Map, Value as J};

use super::clock::rfc3339;
use super::program::Program;
use crate::eval::{Contact, Value};
use crate::plan::{HeaderPiece, Template};
use crate::render::{PlanParts, RUN_PARTS};

/// The first `env("NAME")` of a webhook's headers whose variable is not
/// set (or not UTF-8) in this process's environment.
pub(crate) fn missing_env(t: &Template) -> Option<&str> {
    t.request_headers
        .iter()
        .flat_map(|h| &h.value)
        .find_map(|p| match p {
            HeaderPiece::Env(name) if std::env::var(name).is_err() => Some(name.as_str()),
            _ => None,
        })
}

/// A header value as the outbox shows it: each secret as `[env:NAME]`.
fn shown(pieces: &[HeaderPiece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            HeaderPiece::Text(s) => s.clone(),
            HeaderPiece::Env(name) => format!("[env:{name}]"),
        })
        .collect()
}

struct Extra<'p> {
    name: &'p str,
    /// The parts of [`RUN_PARTS`] the template has.
    parts: Vec<&'static str>,
    due: Option<i64>,
    method: Option<&'p str>,
    /// The `headers` object, written once.
    headers: Option<String>,
}

/// The extra outbox keys of each template (none for most).
pub(crate) struct Senders<'p> {
    extras: Vec<Option<Extra<'p>>>,
    parts: Option<PlanParts>,
    workspace: J,
}

impl<'p> Senders<'p> {
    pub(crate) fn new(prog: &Program<'p>) -> Senders<'p> {
        let plan = prog.plan;
        let extras: Vec<Option<Extra<'p>>> = prog
            .templates
            .iter()
            .map(|t| {
                let pt = plan.templates.get(t.name)?;
                let parts: Vec<&'static str> = RUN_PARTS
                    .into_iter()
                    .filter(|a| pt.parts.contains_key(*a))
                    .collect();
                let headers = (!pt.request_headers.is_empty()).then(|| {
                    let mut m = Map::new();
                    for h in &pt.request_headers {
                        m.insert(h.name.clone(), J::String(shown(&h.value)));
                    }
                    J::Object(m).to_string()
                });
                let e = Extra {
                    name: t.name,
                    parts,
                    due: pt.due_seconds,
                    method: pt.method.as_deref(),
                    headers,
                };
                let used = !e.parts.is_empty()
                    || e.due.is_some()
                    || e.method.is_some()
                    || e.headers.is_some();
                used.then_some(e)
            })
            .collect();
        let any_parts = extras.iter().flatten().any(|e| !e.parts.is_empty());
        let mut workspace = Map::new();
        for (k, v) in [
            ("name", &plan.workspace.name),
            ("address", &plan.workspace.address),
            ("from", &plan.workspace.from),
        ] {
            if let Some(v) = v {
                workspace.insert(k.to_string(), J::String(v.clone()));
            }
        }
        Senders {
            extras,
            parts: any_parts.then(|| PlanParts::new(plan)),
            workspace: J::Object(workspace),
        }
    }

    /// Appends the extra keys of template `tpl` sent at `at` to `line`;
    /// `contact` is called only when a part must be rendered.
    pub(crate) fn write(
        &self,
        line: &mut String,
        tpl: usize,
        at: i64,
        contact: impl FnOnce() -> Contact,
    ) {
        let Some(Some(e)) = self.extras.get(tpl) else {
            return;
        };
        if let (false, Some(parts)) = (e.parts.is_empty(), &self.parts) {
            let data = self.context(&contact());
            for attr in &e.parts {
                if let Some(v) = parts.render(e.name, attr, data.clone()) {
                    let _ = write!(line, ",\"{attr}\":{}", J::String(v));
                }
            }
        }
        if let Some(d) = e.due {
            let _ = write!(line, ",\"due\":\"{}\"", rfc3339(at.saturating_add(d)));
        }
        if let Some(m) = e.method {
            let _ = write!(line, ",\"method\":\"{m}\"");
        }
        if let Some(h) = &e.headers {
            let _ = write!(line, ",\"headers\":{h}");
        }
    }

    /// The render data of a contact: its fields, `id`, `tags`, `lists`
    /// and `workspace` (as in previews; `trigger` and `links` are empty).
    fn context(&self, c: &Contact) -> J {
        let mut data = Map::new();
        for (k, v) in &c.fields {
            data.insert(k.clone(), value_json(v));
        }
        data.insert("id".into(), J::String(c.id.clone()));
        data.insert(
            "tags".into(),
            J::Array(c.tags.iter().cloned().map(J::String).collect()),
        );
        data.insert(
            "lists".into(),
            J::Array(c.lists.iter().cloned().map(J::String).collect()),
        );
        data.insert("workspace".into(), self.workspace.clone());
        data.insert("links".into(), J::Object(Map::new()));
        data.insert("trigger".into(), J::Object(Map::new()));
        J::Object(data)
    }
}

pub(crate) fn value_json(v: &Value) -> J {
    match v {
        Value::Text(s) => J::String(s.clone()),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => J::from(*n as i64),
        Value::Number(n) => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
        Value::Bool(b) => J::Bool(*b),
        Value::Timestamp(t) => J::String(rfc3339(*t)),
        Value::Date(d) => J::String(d.to_string()),
        Value::Set(s) => J::Array(s.iter().cloned().map(J::String).collect()),
    }
}
