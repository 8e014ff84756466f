//! Contacts and events as rows of the canonical tables (for `relance
//! load` and the tests), and membership computed in process by `eval`
//! (the reference the SQL must agree with).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Dialect, audience_name, event_column, schema};
use crate::eval::{Contact, Context, Event, Value};
use crate::plan::{Expr, Plan};
use crate::run::input::{Contacts, Events};

/// Every segment (by name) and every scenario audience
/// (`audience:SCENARIO`, in scenario order): what `relance segments`
/// counts and the compiled SQL computes.
pub fn targets(plan: &Plan) -> Vec<(String, &Expr)> {
    let mut out: Vec<(String, &Expr)> = plan.segments.iter().map(|(n, e)| (n.clone(), e)).collect();
    for name in &plan.scenario_order {
        if let Some(a) = plan.scenarios.get(name).and_then(|s| s.audience.as_ref()) {
            out.push((audience_name(name), a));
        }
    }
    out
}

/// The members of every target as of `as_of` (unix seconds), by `eval`:
/// each contact with its events at or before `as_of`. Members sorted.
pub fn members_in_process(
    plan: &Plan,
    contacts: &Contacts,
    events: &Events,
    as_of: i64,
) -> BTreeMap<String, Vec<String>> {
    let targets = targets(plan);
    let mut out: BTreeMap<String, Vec<String>> = targets
        .iter()
        .map(|(n, _)| (n.clone(), Vec::new()))
        .collect();
    for i in 0..contacts.len() as u32 {
        let contact = contacts.contact(i);
        let mut evs = events.events_of(i);
        evs.retain(|e| e.at <= as_of);
        let cx = Context {
            plan,
            contact: &contact,
            events: &evs,
            now: as_of,
            run: None,
        };
        for (name, e) in &targets {
            if cx.eval(e)
                && let Some(m) = out.get_mut(name)
            {
                m.push(contact.id.clone());
            }
        }
    }
    for m in out.values_mut() {
        m.sort();
    }
    out
}

/// The values of a contact's row, in the columns of `contacts` after `id`.
pub fn contact_values<'c>(plan: &Plan, c: &'c Contact) -> Vec<Option<&'c Value>> {
    plan.schema
        .fields
        .iter()
        .map(|f| c.fields.get(&f.name))
        .collect()
}

/// The values of an event's row, in the columns of `events` after
/// `contact`, `event`, `at`.
pub fn event_values<'e>(
    plan: &Plan,
    columns: &[(String, String)],
    e: &'e Event,
) -> Vec<Option<&'e Value>> {
    let mut by_column: BTreeMap<String, &Value> = BTreeMap::new();
    for (f, v) in &e.fields {
        by_column.insert(event_column(plan, &e.name, f), v);
    }
    columns
        .iter()
        .map(|(c, _)| by_column.get(c).copied())
        .collect()
}

fn timestamp_text(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// A value as a SQL literal (NULL when absent).
pub fn literal(d: Dialect, v: Option<&Value>) -> String {
    let Some(v) = v else { return "NULL".into() };
    match v {
        Value::Text(s) => d.text(s),
        Value::Number(n) => match d {
            Dialect::Postgres => super::number(*n).unwrap_or_else(|| "NULL".into()),
            _ => format!("CAST('{n}' AS DOUBLE)"),
        },
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Value::Timestamp(t) => match d {
            Dialect::Postgres => format!("CAST('{}' AS timestamptz)", timestamp_text(*t)),
            Dialect::DuckDb => format!("CAST('{}' AS TIMESTAMPTZ)", timestamp_text(*t)),
            Dialect::ClickHouse => format!(
                "toDateTime64('{}', 3, 'UTC')",
                timestamp_text(*t).trim_end_matches('Z')
            ),
        },
        Value::Date(x) => d.date_literal(&x.to_string()),
        Value::Set(s) => {
            let items: Vec<String> = s.iter().map(|x| d.text(x)).collect();
            match d {
                Dialect::Postgres => format!("ARRAY[{}]::text[]", items.join(", ")),
                Dialect::DuckDb => format!("CAST([{}] AS VARCHAR[])", items.join(", ")),
                Dialect::ClickHouse => format!("CAST([{}] AS Array(String))", items.join(", ")),
            }
        }
    }
}

/// `INSERT` statements for the contacts and events given (small bases:
/// tests and samples; `relance load` uses COPY).
pub fn inserts(plan: &Plan, d: Dialect, contacts: &[(Contact, Vec<Event>)]) -> String {
    let mut sql = String::new();
    let columns = schema::event_columns(plan);
    let contact_cols: Vec<String> = std::iter::once("id".to_string())
        .chain(plan.schema.fields.iter().map(|f| d.ident(&f.name)))
        .collect();
    let event_cols: Vec<String> = ["contact", "event", "at"]
        .iter()
        .map(|s| d.ident(s))
        .chain(columns.iter().map(|(c, _)| d.ident(c)))
        .collect();
    for (c, events) in contacts {
        let mut row = vec![d.text(&c.id)];
        row.extend(contact_values(plan, c).into_iter().map(|v| literal(d, v)));
        let _ = writeln!(
            sql,
            "INSERT INTO contacts ({}) VALUES ({});",
            contact_cols.join(", "),
            row.join(", ")
        );
        for l in &c.lists {
            let _ = writeln!(
                sql,
                "INSERT INTO list_members (contact, \"list\") VALUES ({}, {});",
                d.text(&c.id),
                d.text(l)
            );
        }
        for t in &c.tags {
            let _ = writeln!(
                sql,
                "INSERT INTO tags (contact, tag) VALUES ({}, {});",
                d.text(&c.id),
                d.text(t)
            );
        }
        for e in events {
            let mut row = vec![
                d.text(&c.id),
                d.text(&e.name),
                literal(d, Some(&Value::Timestamp(e.at))),
            ];
            row.extend(
                event_values(plan, &columns, e)
                    .into_iter()
                    .map(|v| literal(d, v)),
            );
            let _ = writeln!(
                sql,
                "INSERT INTO events ({}) VALUES ({});",
                event_cols.join(", "),
                row.join(", ")
            );
        }
    }
    sql
}

/// A value in PostgreSQL's COPY text format (`\N` when absent).
pub fn copy_text(v: Option<&Value>, out: &mut String) {
    fn escape(s: &str, out: &mut String) {
        for ch in s.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
    }
    let Some(v) = v else {
        out.push_str("\\N");
        return;
    };
    match v {
        Value::Text(s) => escape(s, out),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Timestamp(t) => out.push_str(&timestamp_text(*t)),
        Value::Date(x) => {
            let _ = write!(out, "{x}");
        }
        Value::Set(s) => {
            // An array literal, `{"a","b"}`, then escaped for COPY.
            let mut arr = String::from("{");
            for (i, x) in s.iter().enumerate() {
                if i > 0 {
                    arr.push(',');
                }
                arr.push('"');
                for ch in x.chars() {
                    if ch == '"' || ch == '\\' {
                        arr.push('\\');
                    }
                    arr.push(ch);
                }
                arr.push('"');
            }
            arr.push('}');
            escape(&arr, out);
        }
    }
}
