//! The durable host of the journey step (`run::Journey::step`): contacts
//! whose next wake-up or next pending event lies before the clock are
//! taken in batches (`FOR UPDATE SKIP LOCKED`, so that several processes
//! share the work), stepped exactly as `relance run` steps them, and
//! written back with the messages they made, all in one transaction.
//!
//! Then the **sequencer** numbers the ledger: every line made before the
//! *watermark* (the clock, or the earliest `due` of a contact not yet
//! stepped, whichever is earlier) is final, and gets its `seq` in the
//! simulation's order (`at`, contact id, scenario, order made). The outbox
//! API and the sender read only numbered lines, so both see the ledger in
//! one order whatever the number of processes and the batches.

use std::collections::{BTreeSet, HashMap};

use postgres::GenericClient;
use sha2::{Digest, Sha256};

use super::db::{self, error};
use super::{Loaded, Shared};
use crate::eval::{Contact, Event, Value};
use crate::run::{ContactState, Effects, Input, Journey, Message, OutboxLines, Program};

/// How many contacts one transaction steps.
pub const BATCH: i64 = 256;

/// What a pass of [`step_due`] did.
#[derive(Default, Debug, Clone, Copy)]
pub struct Pass {
    pub contacts: usize,
    pub events: usize,
    pub messages: usize,
    /// Runs ended by a plan upgrade.
    pub ended: usize,
}

/// The idempotency key of a contact's `made`-th message: stable, since the
/// line is made once, in the transaction that stores its contact's state.
pub fn message_key(contact: &str, made: i64) -> String {
    let mut h = Sha256::new();
    h.update(contact.as_bytes());
    h.update([0]);
    h.update(made.to_string().as_bytes());
    crate::deliver::hex(&h.finalize()[..16])
}

/// Steps one batch of contacts due before `clock`; 0 contacts: none was
/// due (or every due one is being stepped by another process).
pub fn step_due(shared: &Shared, clock: i64) -> Result<Pass, String> {
    let mut conn = shared.pool.get()?;
    let mut tx = conn.transaction().map_err(error)?;
    // The plan cannot switch while this transaction runs (the switch
    // takes this row for update), and this process follows a switch.
    let hash: String = tx
        .query_one(
            "SELECT value FROM relance.meta WHERE key = 'plan' FOR SHARE",
            &[],
        )
        .map_err(error)?
        .get(0);
    let loaded = if hash == shared.loaded().hash {
        shared.loaded()
    } else {
        shared.current(&mut tx)?
    };
    let loaded: &Loaded = &loaded;
    let program = Program::compile(&loaded.plan)?;
    let rows = tx
        .query(
            "SELECT id, num, contact, joined, state, history, plan, made
             FROM relance.contacts WHERE due < $1
             ORDER BY due LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&clock, &BATCH],
        )
        .map_err(error)?;
    if rows.is_empty() {
        return Ok(Pass::default());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    // Pending events before the clock, in the order they are applied.
    let mut pending: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for r in tx
        .query(
            "SELECT contact, seq, event FROM relance.inbox
             WHERE contact = ANY($1) AND at < $2 ORDER BY contact, at, seq",
            &[&ids, &clock],
        )
        .map_err(error)?
    {
        pending
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2)));
    }
    // The next event each contact waits for.
    let mut later: HashMap<String, i64> = HashMap::new();
    for r in tx
        .query(
            "SELECT contact, min(at) FROM relance.inbox
             WHERE contact = ANY($1) AND at >= $2 GROUP BY contact",
            &[&ids, &clock],
        )
        .map_err(error)?
    {
        later.insert(r.get(0), r.get(1));
    }
    let lines = OutboxLines::new(&program);
    let mut stats = Journey::new(&program, 0, i64::MAX, None).stats();
    let mut pass = Pass::default();
    let mut up = Updates::default();
    let mut led = Ledger::default();
    let mut done_events: Vec<i64> = Vec::new();
    for r in &rows {
        let id: String = r.get(0);
        let num: i64 = r.get(1);
        let contact: String = r.get(2);
        let joined: i64 = r.get(3);
        let state: Option<String> = r.get(4);
        let history: String = r.get(5);
        let plan: Option<String> = r.get(6);
        let mut made: i64 = r.get(7);
        let journey = Journey::new(&program, joined, i64::MAX, None);
        let mut state = match state {
            None => {
                let c: Contact = serde_json::from_str(&contact).map_err(|e| {
                    format!("contact `{id}`: the stored contact does not load: {e}")
                })?;
                journey.start(num as u32, c)
            }
            Some(s) => {
                let s: ContactState = serde_json::from_str(&s)
                    .map_err(|e| format!("contact `{id}`: the stored state does not load: {e}"))?;
                s
            }
        };
        let mut history: Vec<Event> = serde_json::from_str(&history)
            .map_err(|e| format!("contact `{id}`: the stored history does not load: {e}"))?;
        let mut out: Vec<Message> = Vec::new();
        let mut fx = Effects {
            outbox: &mut out,
            stats: &mut stats,
            trace: None,
        };
        let mut ended: Vec<String> = Vec::new();
        if let Some(old) = plan.as_deref().filter(|h| *h != loaded.hash) {
            // Made with another plan: move it onto this one first.
            let old = shared.plan_by_hash(&mut tx, old)?;
            let old_program = Program::compile(&old.plan)?;
            Journey::new(&old_program, joined, i64::MAX, None)
                .check(&state)
                .map_err(|e| format!("contact `{id}`: {e}"))?;
            for (s, st) in journey.upgrade(&old_program, &mut state, &mut history, &mut fx) {
                ended.push(format!("{s}/{st}"));
            }
        }
        journey
            .check(&state)
            .map_err(|e| format!("contact `{id}`: {e}"))?;
        for (seq, ev) in pending.remove(&id).unwrap_or_default() {
            let event: Event = serde_json::from_str(&ev)
                .map_err(|e| format!("contact `{id}`: a stored event does not load: {e}"))?;
            journey.step(
                &mut state,
                &mut history,
                Input::Event { event, line: 0 },
                &mut fx,
            );
            done_events.push(seq);
            pass.events += 1;
        }
        let wake = journey.step(&mut state, &mut history, Input::Clock(clock), &mut fx);
        let due = match (wake, later.get(&id)) {
            (Some(a), Some(b)) => Some(a.min(*b)),
            (a, b) => a.or(b.copied()),
        };
        for m in &out {
            let mut line = String::with_capacity(256);
            lines.write(&mut line, m, &id, || state.contact().clone());
            let key = message_key(&id, made);
            let template = &program.templates[m.template as usize];
            led.contact.push(id.clone());
            led.made.push(made);
            led.at.push(m.at);
            led.scenario
                .push(program.scenarios[m.scenario as usize].name.to_string());
            led.template.push(template.name.to_string());
            led.channel
                .push(crate::plan::CHANNELS[template.channel].to_string());
            led.line.push(line);
            led.key.push(key);
            made += 1;
        }
        pass.messages += out.len();
        let waiting: Vec<String> = state
            .waiting(&program)
            .into_iter()
            .map(|(s, st)| format!("{s}/{st}"))
            .collect();
        up.id.push(id);
        up.state
            .push(serde_json::to_string(&state).map_err(|e| e.to_string())?);
        up.history
            .push(serde_json::to_string(&history).map_err(|e| e.to_string())?);
        up.due.push(due);
        up.made.push(made);
        up.waiting.push(waiting.join("\u{1f}"));
        pass.ended += ended.len();
        up.ended.push(ended.join("\u{1f}"));
        pass.contacts += 1;
    }
    tx.execute(
        "UPDATE relance.contacts c SET state = u.state, history = u.history, plan = $7,
             due = u.due, made = u.made,
             waiting = CASE WHEN u.waiting = '' THEN '{}'::text[] ELSE string_to_array(u.waiting, chr(31)) END,
             ended = CASE WHEN u.ended = '' THEN c.ended ELSE c.ended || string_to_array(u.ended, chr(31)) END
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $8::text[])
              AS u(id, state, history, due, made, waiting, ended)
         WHERE c.id = u.id",
        &[
            &up.id,
            &up.state,
            &up.history,
            &up.due,
            &up.made,
            &up.waiting,
            &loaded.hash,
            &up.ended,
        ],
    )
    .map_err(error)?;
    if !led.contact.is_empty() {
        // A dry run's lines are never delivered, not even by a later
        // process without `--dry-run`.
        let (status, dry_error) = if shared.dry_run {
            ("skipped", Some("dry run: not delivered"))
        } else {
            ("pending", None)
        };
        tx.execute(
            "INSERT INTO relance.ledger (contact, made, at, scenario, template, channel, line, key, plan,
                                         status, error)
             SELECT u.*, $9, $10, $11 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[],
                                        $5::text[], $6::text[], $7::text[], $8::text[])
                  AS u(contact, made, at, scenario, template, channel, line, key)",
            &[
                &led.contact,
                &led.made,
                &led.at,
                &led.scenario,
                &led.template,
                &led.channel,
                &led.line,
                &led.key,
                &loaded.hash,
                &status,
                &dry_error,
            ],
        )
        .map_err(error)?;
    }
    if !done_events.is_empty() {
        tx.execute(
            "DELETE FROM relance.inbox WHERE seq = ANY($1)",
            &[&done_events],
        )
        .map_err(error)?;
    }
    db::count(&mut tx, "messages_made", pass.messages as i64)?;
    db::count(&mut tx, "events_applied", pass.events as i64)?;
    db::count(&mut tx, "runs_ended_plan_changed", pass.ended as i64)?;
    tx.commit().map_err(error)?;
    Ok(pass)
}

#[derive(Default)]
struct Updates {
    id: Vec<String>,
    state: Vec<String>,
    history: Vec<String>,
    due: Vec<Option<i64>>,
    made: Vec<i64>,
    waiting: Vec<String>,
    ended: Vec<String>,
}

#[derive(Default)]
struct Ledger {
    contact: Vec<String>,
    made: Vec<i64>,
    at: Vec<i64>,
    scenario: Vec<String>,
    template: Vec<String>,
    channel: Vec<String>,
    line: Vec<String>,
    key: Vec<String>,
}

/// Numbers every ledger line made before the watermark (the earlier of
/// `clock` and the earliest `due`), in the simulation's order. Returns how
/// many lines it numbered.
pub fn sequence(c: &mut impl GenericClient, clock: i64) -> Result<u64, String> {
    let mut tx = c.transaction().map_err(error)?;
    tx.execute("SELECT pg_advisory_xact_lock(7205759403792794)", &[])
        .map_err(error)?;
    let due: Option<i64> = tx
        .query_one("SELECT min(due) FROM relance.contacts", &[])
        .map_err(error)?
        .get(0);
    let watermark = due.map_or(clock, |d| d.min(clock));
    let n = tx
        .execute(
            "UPDATE relance.ledger l SET seq = s.n
             FROM (SELECT contact, made,
                          (SELECT coalesce(max(seq), 0) FROM relance.ledger)
                          + row_number() OVER (ORDER BY at, contact, scenario, made) AS n
                   FROM relance.ledger WHERE seq IS NULL AND at < $1) s
             WHERE l.contact = s.contact AND l.made = s.made",
            &[&watermark],
        )
        .map_err(error)?;
    tx.commit().map_err(error)?;
    Ok(n)
}

/// Whether some contact is due before `clock` (stepped or not yet).
pub fn any_due(c: &mut impl GenericClient, clock: i64) -> Result<bool, String> {
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM relance.contacts WHERE due < $1)",
        &[&clock],
    )
    .map_err(error)?
    .get(0))
}

/// The events a contact line posted again stands for, at `at`: `updated`
/// with the fields whose value changed, `joined`/`left` for the lists.
/// (Tags are the journey's own: `tag`/`untag` rules change them.)
pub fn update_events(
    plan: &crate::plan::Plan,
    old: &Contact,
    new: &Contact,
    at: i64,
) -> Vec<Event> {
    let mut out = Vec::new();
    let changed: std::collections::BTreeMap<String, Value> = new
        .fields
        .iter()
        .filter(|(k, v)| old.fields.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !changed.is_empty() && !plan.events.contains_key("updated") {
        out.push(Event {
            name: "updated".into(),
            at,
            fields: changed,
            run: None,
        });
    }
    let (a, b): (&BTreeSet<String>, &BTreeSet<String>) = (&old.lists, &new.lists);
    for (name, lists) in [("joined", b.difference(a)), ("left", a.difference(b))] {
        for l in lists {
            out.push(Event {
                name: name.into(),
                at,
                fields: [("list".to_string(), Value::Text(l.clone()))].into(),
                run: None,
            });
        }
    }
    out
}
