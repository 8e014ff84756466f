//! Checks that need evaluation (§5): every persona's `expect` lines hold at
//! the reference time, and no negative persona falls in the audience of a
//! scenario that sends marketing messages. They run on a project without
//! errors, through the plan and the one evaluator (`eval`) the runner uses.

use std::collections::BTreeSet;

use crate::check::Project;
use crate::check::types::Type;
use crate::diagnostics::{Code, Diagnostic, Problems, SourceMap};
use crate::eval::{Contact, Context, Event, Value};
use crate::plan::{Plan, Step};
use crate::syntax::ast;

/// Runs the persona checks; `now` is the reference time (unix seconds).
pub fn personas(
    sources: &SourceMap,
    files: &[ast::File],
    plan: &Plan,
    now: i64,
    problems: &mut Problems,
) {
    let p = Project::resolve(sources, files);
    let marketing_scenarios: Vec<(&ast::Scenario, bool)> = p
        .scenarios
        .iter()
        .map(|s| {
            (
                *s,
                plan.scenarios
                    .get(&s.name.name)
                    .is_some_and(|ps| sends_marketing(plan, ps)),
            )
        })
        .collect();
    for persona in &p.personas {
        let (contact, events) = persona_contact(&p, persona, now);
        let cx = Context {
            plan,
            contact: &contact,
            events: &events,
            now,
            run: None,
        };
        for expect in &persona.expects {
            let expr = crate::plan::lower_expr(&p, expect);
            if let Some(why) = cx.why_not(&expr) {
                problems.push(
                    Diagnostic::new(
                        Code::E0403,
                        format!(
                            "persona `{}` does not meet `expect {}`: {why}",
                            persona.name.name,
                            sources.text(expect.span)
                        ),
                    )
                    .at(expect.span, "does not hold for this persona")
                    .help("fix the persona's data or the expectation; relative times count from `--now` (default: the current time)"),
                );
            }
        }
        if persona.negative {
            for (s, marketing) in &marketing_scenarios {
                if !marketing {
                    continue;
                }
                let Some(ps) = plan.scenarios.get(&s.name.name) else {
                    continue;
                };
                let admitted = ps.audience.as_ref().is_none_or(|a| cx.eval(a));
                if admitted {
                    let mut d = Diagnostic::new(
                        Code::E0404,
                        format!(
                            "negative persona `{}` is in the audience of scenario `{}`, which sends marketing messages",
                            persona.name.name, s.name.name
                        ),
                    )
                    .at(persona.name.span, "a contact the business does not want")
                    .also(s.name.span, "this scenario would message them");
                    d = match s.audience.first() {
                        Some(a) => d
                            .also(a.span, "this audience admits the persona")
                            .help("narrow the audience, e.g. with `and not SEGMENT` for a segment that describes these contacts"),
                        None => d.help("a scenario without `audience` admits everyone: add an audience that excludes these contacts"),
                    };
                    problems.push(d);
                }
            }
        }
    }
}

fn sends_marketing(plan: &Plan, s: &crate::plan::Scenario) -> bool {
    let marketing = |t: &str| plan.templates.get(t).is_some_and(|t| t.kind == "marketing");
    s.steps.values().any(|step| match step {
        Step::Send { template, .. } => marketing(template),
        Step::Start { cadence, .. } => plan
            .cadences
            .get(cadence)
            .is_some_and(|c| c.touches.iter().any(|t| marketing(&t.template))),
        _ => false,
    })
}

/// A persona as a contact with its events, relative times taken from `now`.
pub fn persona_contact(p: &Project, persona: &ast::Persona, now: i64) -> (Contact, Vec<Event>) {
    let mut contact = Contact {
        id: persona.name.name.clone(),
        ..Contact::default()
    };
    for v in &persona.values {
        let name = v.name.name.as_str();
        match name {
            "lists" => contact.lists = names(&v.value),
            "tags" => contact.tags = texts(&v.value),
            "id" => {
                if let ast::Value::Term(ast::Term {
                    kind: ast::TermKind::Str(s),
                    ..
                }) = &v.value
                {
                    contact.id = s.clone();
                }
            }
            _ => {
                let ty = p.schema.get(name).map(|f| f.ty.clone());
                if let Some(value) = value_of(&v.value, ty.as_ref(), now) {
                    contact.fields.insert(name.to_string(), value);
                }
            }
        }
    }
    let mut events: Vec<Event> = persona
        .events
        .iter()
        .map(|ev| {
            let fields = p.event_fields(&ev.name.name);
            Event {
                name: ev.name.name.clone(),
                at: time_of(&ev.at, now).unwrap_or(now),
                fields: ev
                    .values
                    .iter()
                    .filter_map(|v| {
                        let ty = fields
                            .and_then(|f| f.get(&v.name.name))
                            .map(|f| f.ty.clone());
                        value_of(&v.value, ty.as_ref(), now).map(|val| (v.name.name.clone(), val))
                    })
                    .collect(),
                run: None,
            }
        })
        .collect();
    events.sort_by_key(|e| e.at);
    (contact, events)
}

fn names(v: &ast::Value) -> BTreeSet<String> {
    match v {
        ast::Value::List(items) => items
            .node
            .iter()
            .filter_map(|t| match &t.kind {
                ast::TermKind::Name(n) => Some(n.clone()),
                _ => None,
            })
            .collect(),
        ast::Value::Term(_) => BTreeSet::new(),
    }
}

fn texts(v: &ast::Value) -> BTreeSet<String> {
    match v {
        ast::Value::List(items) => items
            .node
            .iter()
            .filter_map(|t| match &t.kind {
                ast::TermKind::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        ast::Value::Term(_) => BTreeSet::new(),
    }
}

fn time_of(t: &ast::Term, now: i64) -> Option<i64> {
    match t.literal_time(now)? {
        ast::TimeValue::Instant(x) => Some(x),
        ast::TimeValue::Date(d) => crate::eval::date_start(d),
    }
}

/// A persona value as the evaluator's value, guided by the field's type.
fn value_of(v: &ast::Value, ty: Option<&Type>, now: i64) -> Option<Value> {
    let term = match v {
        ast::Value::List(_) => return Some(Value::Set(texts(v))),
        ast::Value::Term(t) => t,
    };
    Some(match (&term.kind, ty) {
        (ast::TermKind::Date(_), Some(Type::Timestamp))
        | (ast::TermKind::Now | ast::TermKind::Ago(_) | ast::TermKind::Timestamp(_), _) => {
            Value::Timestamp(time_of(term, now)?)
        }
        (ast::TermKind::Date(d), _) => Value::Date(*d),
        // `now - 25d`, `1990-02-28 + 1d`: a date moved by whole days stays
        // a date (unless the field is a timestamp).
        (ast::TermKind::Shifted { .. }, Some(Type::Timestamp)) => {
            Value::Timestamp(time_of(term, now)?)
        }
        (ast::TermKind::Shifted { .. }, _) => match term.literal_time(now)? {
            ast::TimeValue::Instant(x) => Value::Timestamp(x),
            ast::TimeValue::Date(d) => Value::Date(d),
        },
        (ast::TermKind::Str(s) | ast::TermKind::Name(s), _) => Value::Text(s.clone()),
        (ast::TermKind::Number(n), _) => Value::Number(*n),
        (ast::TermKind::Bool(b), _) => Value::Bool(*b),
        _ => return None,
    })
}
