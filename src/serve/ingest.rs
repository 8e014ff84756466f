//! `POST /v1/contacts` and `POST /v1/events`: JSONL in `relance run`'s
//! formats, read by `relance run`'s own readers (the same checks, the same
//! reasons for a rejected line), then stored in one transaction.
//!
//! - A contact not seen before joins at the runner's clock: its window
//!   starts there (events before it are its history), and its segments'
//!   values there are the baseline of `entered` triggers, as `--from` is
//!   for `relance run`. A contact posted before the clock first moves
//!   joins at the start (`--from`).
//! - A contact posted again is an update: the fields whose value changed
//!   become an `updated` event, and list memberships `joined`/`left`
//!   events, at the clock (applied once the clock passes that instant).
//! - An event is stored until the clock passes its `at`; one whose `at` is
//!   before the contact's present (it came late) is applied at once, at
//!   the present. With the system clock an event more than 5 minutes
//!   ahead is refused. An event with an `"id"` already received is a
//!   duplicate: counted, not stored.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value as J, json};

use super::db::{self, error};
use super::engine;
use super::{ClockMode, Shared};
use crate::eval::{Contact, Event};
use crate::run::{Contacts, Problem, input};

/// How far ahead of the system clock an event may be.
pub const MAX_AHEAD: i64 = 300;

/// A rejected line, as the API reports it.
fn rejected(p: &Problem) -> J {
    let mut o = json!({"line": p.line, "reason": p.message});
    if let Some(c) = &p.contact {
        o["contact"] = J::String(c.clone());
    }
    o
}

/// Splits problems into rejected lines and warnings (a field ignored).
fn report(problems: &[Problem]) -> (Vec<J>, Vec<J>) {
    let mut rejected_lines = Vec::new();
    let mut warnings = Vec::new();
    for p in problems {
        if p.skipped {
            rejected_lines.push(rejected(p));
        } else {
            warnings.push(rejected(p));
        }
    }
    (rejected_lines, warnings)
}

/// `POST /v1/contacts`.
pub fn contacts(shared: &Shared, body: &str) -> Result<J, String> {
    let loaded = shared.loaded();
    let plan = &loaded.plan;
    let (parsed, problems) = input::contacts_from_jsonl(body, plan, "request")?;
    let (rejected_lines, warnings) = report(&problems);
    let mut conn = shared.pool.get()?;
    let mut tx = conn.transaction().map_err(error)?;
    let clock = shared.now(&mut tx)?;
    let ids: Vec<String> = (0..parsed.len() as u32)
        .map(|i| parsed.id(i).to_string())
        .collect();
    // Per known id: its stored line, and whether its journey started.
    let mut existing: HashMap<String, (String, bool)> = HashMap::new();
    for r in tx
        .query(
            "SELECT id, contact, state IS NOT NULL FROM relance.contacts
             WHERE id = ANY($1) FOR UPDATE",
            &[&ids],
        )
        .map_err(error)?
    {
        existing.insert(r.get(0), (r.get(1), r.get(2)));
    }
    let (mut new_ids, mut new_contacts) = (Vec::new(), Vec::new());
    let (mut upd_ids, mut upd_contacts) = (Vec::new(), Vec::new());
    let mut events: Vec<(String, Event)> = Vec::new();
    for i in 0..parsed.len() as u32 {
        let c = parsed.contact(i);
        let text = serde_json::to_string(&c).map_err(|e| e.to_string())?;
        match existing.get(&c.id) {
            None => {
                new_ids.push(c.id.clone());
                new_contacts.push(text);
            }
            Some((old, started)) => {
                let old: Contact = serde_json::from_str(old).map_err(|e| {
                    format!("contact `{}`: the stored contact does not load: {e}", c.id)
                })?;
                if old == c {
                    continue;
                }
                if *started {
                    for e in engine::update_events(plan, &old, &c, clock) {
                        events.push((c.id.clone(), e));
                    }
                }
                upd_ids.push(c.id.clone());
                upd_contacts.push(text);
            }
        }
    }
    tx.execute(
        "INSERT INTO relance.contacts (id, contact, joined, due)
         SELECT u.id, u.contact, $3, $3 FROM unnest($1::text[], $2::text[]) AS u(id, contact)",
        &[&new_ids, &new_contacts, &clock],
    )
    .map_err(error)?;
    // A contact not started yet starts from the new line; a started one
    // gets the events above.
    tx.execute(
        "UPDATE relance.contacts c SET contact = u.contact
         FROM unnest($1::text[], $2::text[]) AS u(id, contact) WHERE c.id = u.id",
        &[&upd_ids, &upd_contacts],
    )
    .map_err(error)?;
    store_events(&mut tx, &events)?;
    db::count(&mut tx, "contacts_received", parsed.len() as i64)?;
    tx.commit().map_err(error)?;
    Ok(json!({
        "accepted": parsed.len(),
        "created": new_ids.len(),
        "updated": upd_ids.len(),
        "rejected": rejected_lines,
        "warnings": warnings,
    }))
}

/// Stores events in the inbox and moves their contacts' `due` so that the
/// engine takes them once the clock passes them.
pub fn store_events(
    tx: &mut postgres::Transaction,
    events: &[(String, Event)],
) -> Result<(), String> {
    if events.is_empty() {
        return Ok(());
    }
    let mut contacts = Vec::with_capacity(events.len());
    let mut ats = Vec::with_capacity(events.len());
    let mut texts = Vec::with_capacity(events.len());
    let mut first: BTreeMap<&str, i64> = BTreeMap::new();
    for (c, e) in events {
        contacts.push(c.as_str());
        ats.push(e.at);
        texts.push(serde_json::to_string(e).map_err(|e| e.to_string())?);
        let f = first.entry(c.as_str()).or_insert(e.at);
        *f = (*f).min(e.at);
    }
    tx.execute(
        "INSERT INTO relance.inbox (contact, at, event)
         SELECT u.contact, u.at, u.event
         FROM unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS u(contact, at, event, n)
         ORDER BY n",
        &[&contacts, &ats, &texts],
    )
    .map_err(error)?;
    let (ids, mins): (Vec<&str>, Vec<i64>) = first.into_iter().unzip();
    tx.execute(
        "UPDATE relance.contacts c SET due = least(coalesce(c.due, u.at), u.at)
         FROM unnest($1::text[], $2::bigint[]) AS u(id, at) WHERE c.id = u.id",
        &[&ids, &mins],
    )
    .map_err(error)?;
    Ok(())
}

/// `POST /v1/events`.
pub fn events(shared: &Shared, body: &str) -> Result<J, String> {
    let loaded = shared.loaded();
    let plan = &loaded.plan;
    // The optional `"id"` of each line is ours, not an event field: take
    // it out (keeping the line count, so that line numbers hold).
    let mut lines: Vec<std::borrow::Cow<str>> = Vec::new();
    let mut event_ids: Vec<Option<String>> = Vec::new();
    let mut contact_ids: HashSet<String> = HashSet::new();
    for l in body.split('\n') {
        let mut id = None;
        let mut text = std::borrow::Cow::Borrowed(l);
        if let Ok(J::Object(mut o)) = serde_json::from_str::<J>(l) {
            if let Some(J::String(c)) = o.get("contact") {
                contact_ids.insert(c.clone());
            }
            if let Some(v) = o.remove("id") {
                id = Some(match v {
                    J::String(s) => s,
                    other => other.to_string(),
                });
                text = std::borrow::Cow::Owned(J::Object(o).to_string());
            }
        }
        lines.push(text);
        event_ids.push(id);
    }
    let text = lines.join("\n");
    let mut conn = shared.pool.get()?;
    let mut tx = conn.transaction().map_err(error)?;
    let clock = shared.now(&mut tx)?;
    let wanted: Vec<String> = contact_ids.into_iter().collect();
    let known: Vec<String> = tx
        .query(
            "SELECT id FROM relance.contacts WHERE id = ANY($1)",
            &[&wanted],
        )
        .map_err(error)?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let contacts = Contacts::with_ids(plan, known.iter().map(String::as_str));
    let (parsed, problems) = input::events_from_jsonl(&text, plan, &contacts, "request")?;
    let (mut rejected_lines, warnings) = report(&problems);
    // Every accepted event with its line (1-based) and id.
    let mut accepted: Vec<(u32, String, Event)> = Vec::new();
    for c in 0..contacts.len() as u32 {
        let (evs, lns) = parsed.events_and_lines_of(c);
        for (e, l) in evs.into_iter().zip(lns) {
            accepted.push((l, contacts.id(c).to_string(), e));
        }
    }
    accepted.sort_by_key(|(l, ..)| *l);
    if shared.clock == ClockMode::System {
        accepted.retain(|(l, c, e)| {
            let ok = e.at <= clock + MAX_AHEAD;
            if !ok {
                rejected_lines.push(json!({
                    "line": l, "contact": c,
                    "reason": format!("`at` is more than {MAX_AHEAD} s ahead of the runner's clock: send it when it happens"),
                }));
            }
            ok
        });
    }
    // Duplicates: ids already received, in this request or before.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut fresh_ids: Vec<String> = Vec::new();
    let mut dup_in_body = 0usize;
    let mut keep = vec![true; accepted.len()];
    for (k, (l, ..)) in accepted.iter().enumerate() {
        if let Some(Some(id)) = event_ids.get(*l as usize - 1) {
            if seen.insert(id.as_str()) {
                fresh_ids.push(id.clone());
            } else {
                keep[k] = false;
                dup_in_body += 1;
            }
        }
    }
    let inserted: HashSet<String> = tx
        .query(
            "INSERT INTO relance.event_ids (id) SELECT unnest($1::text[])
             ON CONFLICT DO NOTHING RETURNING id",
            &[&fresh_ids],
        )
        .map_err(error)?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    let mut duplicates = dup_in_body;
    let mut store: Vec<(String, Event)> = Vec::new();
    for (k, (l, c, e)) in accepted.into_iter().enumerate() {
        if !keep[k] {
            continue;
        }
        if let Some(Some(id)) = event_ids.get(l as usize - 1)
            && !inserted.contains(id)
        {
            duplicates += 1;
            continue;
        }
        store.push((c, e));
    }
    store_events(&mut tx, &store)?;
    db::count(&mut tx, "events_received", store.len() as i64)?;
    db::count(&mut tx, "events_duplicate", duplicates as i64)?;
    tx.commit().map_err(error)?;
    rejected_lines.sort_by_key(|r| r["line"].as_u64());
    Ok(json!({
        "accepted": store.len(),
        "duplicates": duplicates,
        "rejected": rejected_lines,
        "warnings": warnings,
    }))
}
