//! The runner (§10): executes a built plan against contacts and events as
//! a deterministic discrete-event simulation, and says what would be sent,
//! when and why.
//!
//! Stages: [`input`] types the contacts (column by column, dense ids) and
//! events (compact records, parsed on every core); `program` resolves the
//! plan to indices; [`sim`] simulates each contact on its own (contacts
//! never interact), spread over the cores, through [`journey`]'s step
//! function, which a durable host drives too; the outbox is then sorted by
//! (`at`, contact, scenario) so that neither the input order of contacts
//! nor the number of threads changes a byte of the output.

pub mod business;
pub mod calendar;
pub mod clock;
pub mod dates;
pub mod forecast;
pub mod input;
pub mod journey;
pub(crate) mod locale;
mod program;
pub(crate) mod senders;
pub mod sim;
mod stats;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value as J, json};

pub use forecast::Forecast;
pub use input::{Contacts, Events, Problem};
pub use journey::{ContactState, Effects, Input, Journey};
pub use program::Program;
pub use sim::Message;
pub use stats::{Ignored, IgnoredEvent, Stats};

use crate::plan::Plan;
use clock::rfc3339;
use program::CHANNELS;

/// What a run needs besides its inputs.
pub struct Options<'a> {
    /// The window `[from, until)`, unix seconds.
    pub from: i64,
    pub until: i64,
    pub threads: usize,
    /// A contact id whose journey to record step by step.
    pub trace: Option<String>,
    pub forecast: Option<&'a Forecast>,
}

/// The result of a run.
pub struct Outcome<'p> {
    program: Program<'p>,
    /// Sorted by (`at`, contact id, scenario), then generation order.
    pub outbox: Vec<Message>,
    pub stats: Stats,
    /// The traced contact's journey (`None`: no such contact).
    pub trace: Option<Vec<String>>,
    pub contacts: usize,
    from: i64,
    until: i64,
}

/// Runs `plan` over every contact. Fails only on a plan that does not pass
/// [`crate::plan::validate`] (a hand-edited one).
pub fn simulate<'p>(
    plan: &'p Plan,
    contacts: &Contacts,
    events: &Events,
    opts: &Options,
) -> Result<Outcome<'p>, String> {
    crate::plan::validate(plan).map_err(|e| format!("the plan is not valid: {e}"))?;
    simulate_valid(plan, contacts, events, opts, false)
}

/// [`simulate`], with every contact's state and history sent through JSON
/// and back between every input, as a host that stores them would: the
/// check that the state is the whole state (its outcome must be
/// `simulate`'s, byte for byte). Slow; for tests.
pub fn simulate_persisted<'p>(
    plan: &'p Plan,
    contacts: &Contacts,
    events: &Events,
    opts: &Options,
) -> Result<Outcome<'p>, String> {
    crate::plan::validate(plan).map_err(|e| format!("the plan is not valid: {e}"))?;
    simulate_valid(plan, contacts, events, opts, true)
}

/// [`simulate`] without validating the plan first; `persist`: see
/// [`simulate_persisted`].
fn simulate_valid<'p>(
    plan: &'p Plan,
    contacts: &Contacts,
    events: &Events,
    opts: &Options,
    persist: bool,
) -> Result<Outcome<'p>, String> {
    let program = Program::new(plan).map_err(|e| format!("the plan is inconsistent: {e}"))?;
    let journey = journey::Journey::new(&program, opts.from, opts.until, opts.forecast);
    let failed: Mutex<Option<String>> = Mutex::new(None);
    let n = contacts.len();
    let traced = opts
        .trace
        .as_ref()
        .and_then(|id| contacts.index.get(id).copied());
    const CHUNK: usize = 2048;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Vec<Message>)>> = Mutex::new(Vec::new());
    let trace: Mutex<Option<Vec<String>>> = Mutex::new(None);
    let threads = opts.threads.clamp(1, 64);
    let all_stats: Option<Vec<Stats>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (program, journey, next, results, trace, failed) =
                    (&program, &journey, &next, &results, &trace, &failed);
                s.spawn(move || {
                    let mut stats = Stats::new(program);
                    loop {
                        let chunk = next.fetch_add(1, Ordering::Relaxed);
                        let start = chunk * CHUNK;
                        if start >= n {
                            break;
                        }
                        let mut out = Vec::new();
                        for c in start..(start + CHUNK).min(n) {
                            let c = c as u32;
                            let mut traced_lines = Vec::new();
                            let tracing = traced == Some(c);
                            let mut fx = journey::Effects {
                                outbox: &mut out,
                                stats: &mut stats,
                                trace: tracing.then_some(&mut traced_lines),
                            };
                            if let Err(e) = journey.run_contact(
                                c,
                                contacts.contact(c),
                                events.events_and_lines_of(c),
                                &mut fx,
                                persist,
                            ) {
                                if let Ok(mut f) = failed.lock() {
                                    f.get_or_insert(e);
                                }
                                return stats;
                            }
                            if tracing && let Ok(mut t) = trace.lock() {
                                *t = Some(traced_lines);
                            }
                        }
                        if let Ok(mut r) = results.lock() {
                            r.push((chunk, out));
                        }
                    }
                    stats
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok())
            .collect::<Option<Vec<_>>>()
    });
    // A worker that panicked is a bug; a partial outbox would be worse.
    let all_stats = all_stats
        .ok_or_else(|| "internal error during the simulation: please report it".to_string())?;
    if let Some(e) = failed.into_inner().unwrap_or_default() {
        return Err(format!("internal error during the simulation: {e}"));
    }
    let mut stats = Stats::new(&program);
    for s in &all_stats {
        stats.merge(s);
    }
    let mut chunks = results.into_inner().unwrap_or_default();
    chunks.sort_by_key(|(c, _)| *c);
    let mut outbox: Vec<Message> = chunks.into_iter().flat_map(|(_, m)| m).collect();
    // Contacts ordered by id: rank[dense] is the position of its id.
    let mut by_id: Vec<u32> = (0..n as u32).collect();
    by_id.sort_by(|a, b| contacts.id(*a).cmp(contacts.id(*b)));
    let mut rank = vec![0u32; n];
    for (i, c) in by_id.into_iter().enumerate() {
        rank[c as usize] = i as u32;
    }
    outbox.sort_by_key(|m| {
        (
            m.at,
            rank[m.contact as usize],
            program.scenarios[m.scenario as usize].name,
        )
    });
    Ok(Outcome {
        program,
        outbox,
        stats,
        trace: trace.into_inner().unwrap_or_default(),
        contacts: n,
        from: opts.from,
        until: opts.until,
    })
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Writes outbox lines (§10's keys, in order) for one program: what
/// `relance run` writes, and what a durable host records in its ledger.
pub struct OutboxLines<'a, 'p> {
    program: &'a Program<'p>,
    senders: senders::Senders<'p>,
}

impl<'a, 'p> OutboxLines<'a, 'p> {
    pub fn new(program: &'a Program<'p>) -> Self {
        OutboxLines {
            program,
            senders: senders::Senders::new(program),
        }
    }

    /// Appends message `m`'s line, without the final `}` newline's `\n`
    /// (the object is closed); `id`: its contact's id; `contact`: the
    /// contact, asked for only when a sender depends on its fields.
    pub fn write(
        &self,
        line: &mut String,
        m: &Message,
        id: &str,
        contact: impl FnOnce() -> crate::eval::Contact,
    ) {
        let p = self.program;
        let t = &p.templates[m.template as usize];
        let _ = write!(
            line,
            "{{\"at\":\"{}\",\"contact\":{},\"scenario\":\"{}\",\"step\":\"{}\",\"template\":\"{}\",\"channel\":\"{}\"",
            rfc3339(m.at),
            json_str(id),
            p.scenarios[m.scenario as usize].name,
            p.labels[m.step as usize],
            t.name,
            CHANNELS[t.channel],
        );
        if let Some(d) = m.deferred_from {
            let _ = write!(line, ",\"deferred_from\":\"{}\"", rfc3339(d));
        }
        self.senders.write(line, m.template as usize, m.at, contact);
        if let Some(l) = locale::name(p.plan, m.locale) {
            let _ = write!(line, ",\"locale\":{}", json_str(l));
        }
        line.push('}');
    }
}

impl Outcome<'_> {
    /// The outbox as JSONL: one line per message, keys in the order of §10.
    pub fn write_outbox(
        &self,
        contacts: &Contacts,
        w: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        let mut line = String::with_capacity(256);
        let lines = OutboxLines::new(&self.program);
        for m in &self.outbox {
            line.clear();
            lines.write(&mut line, m, contacts.id(m.contact), || {
                contacts.contact(m.contact)
            });
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    /// The counts of time relative to a date for scenario `i` (LANGUAGE.md
    /// §12), only for a scenario that has a `wait until TIME` step or an
    /// `at`/`yearly` trigger, so other summaries keep their keys.
    fn date_counts(&self, i: usize) -> serde_json::Map<String, J> {
        let (p, s) = (&self.program, &self.stats);
        let sc = &p.scenarios[i];
        let mut out = serde_json::Map::new();
        let waits = p.plan.scenarios.get(sc.name).is_some_and(|x| {
            x.steps
                .values()
                .any(|st| matches!(st, crate::plan::Step::WaitUntilTime { .. }))
        });
        if waits {
            out.insert("wait_until_passed".into(), json!(s.wait_until_passed[i]));
            out.insert("wait_until_absent".into(), json!(s.wait_until_absent[i]));
            out.insert("wait_until_retimed".into(), json!(s.wait_until_retimed[i]));
        }
        if sc
            .triggers
            .iter()
            .any(|t| matches!(t, program::Trig::At(..) | program::Trig::Yearly(..)))
        {
            out.insert("trigger_rescheduled".into(), json!(s.date_rescheduled[i]));
        }
        out
    }

    /// Sends per UTC day and channel.
    fn per_day(&self) -> BTreeMap<String, [u64; 5]> {
        let mut days: BTreeMap<String, [u64; 5]> = BTreeMap::new();
        for m in &self.outbox {
            let day = rfc3339(m.at)[..10].to_string();
            days.entry(day).or_default()[self.program.templates[m.template as usize].channel] += 1;
        }
        days
    }

    /// The summary as JSON (sorted keys; the same inputs give the same
    /// bytes). `problems`: the bad input lines; `report`: add sends per
    /// day and channel.
    /// `events_file`: the events file's name, for the ignored events.
    /// `goal … value FIELD` (v1.1): one line per such goal, with its sum.
    fn goal_value_lines(&self, out: &mut String) {
        for (sc, values) in self.program.scenarios.iter().zip(&self.stats.goal_values) {
            for (g, v) in sc.goals.iter().zip(values) {
                if let Some(field) = g.value {
                    let _ = writeln!(
                        out,
                        "goal value: {} `{}`: {field} summed = {}",
                        sc.name,
                        g.key,
                        stats::from_micros(*v)
                    );
                }
            }
        }
    }

    /// The sum of every `value` goal, when the plan has one.
    fn goal_value_total(&self) -> Option<f64> {
        let mut any = false;
        let mut total = 0i128;
        for (sc, values) in self.program.scenarios.iter().zip(&self.stats.goal_values) {
            for (g, v) in sc.goals.iter().zip(values) {
                if g.value.is_some() {
                    any = true;
                    total += v;
                }
            }
        }
        any.then(|| stats::from_micros(total))
    }

    pub fn summary_json(
        &self,
        problems: usize,
        events_read: u64,
        events_file: &str,
        report: bool,
    ) -> J {
        let p = &self.program;
        let s = &self.stats;
        let consent = p.templates.iter().any(|t| t.consent.is_some());
        let mut scenarios = serde_json::Map::new();
        for (i, sc) in p.scenarios.iter().enumerate() {
            let dates = self.date_counts(i);
            let goals: serde_json::Map<String, J> = sc
                .goals
                .iter()
                .zip(&s.goals[i])
                .map(|(g, n)| (g.key.clone(), json!(n)))
                .collect();
            let values: serde_json::Map<String, J> = sc
                .goals
                .iter()
                .zip(&s.goal_values[i])
                .filter(|(g, _)| g.value.is_some())
                .map(|(g, v)| (g.key.clone(), json!(stats::from_micros(*v))))
                .collect();
            let mut row = json!({
                "entries": s.entries[i],
                "completed": s.completed[i],
                "exited": s.exited[i],
                "exit_steps": s.exit_steps[i],
                "active_at_end": s.active_at_end[i],
                "triggers_ignored": {
                    "active_run": s.ignored_active[i],
                    "reentry": s.ignored_reentry[i],
                    "audience": s.ignored_audience[i],
                    "same_instant": s.ignored_instant[i],
                },
                "goals": goals,
            });
            // `goal … value FIELD` (v1.1): only when the scenario has one.
            if !values.is_empty()
                && let Some(o) = row.as_object_mut()
            {
                o.insert("goal_values".into(), J::Object(values));
            }
            if let Some(o) = row.as_object_mut() {
                o.extend(dates);
            }
            scenarios.insert(sc.name.to_string(), row);
        }
        let mut templates = serde_json::Map::new();
        let mut channels: BTreeMap<&str, u64> = BTreeMap::new();
        for (i, t) in p.templates.iter().enumerate() {
            *channels.entry(CHANNELS[t.channel]).or_default() += s.sent[i];
            let mut counts = json!({
                "channel": CHANNELS[t.channel],
                "sent": s.sent[i],
                "skipped_no_address": s.skipped_no_address[i],
                "skipped_unsubscribed": s.skipped_unsubscribed[i],
                "deferred": s.deferred[i],
                "dropped": s.dropped[i],
            });
            // Only for a webhook whose secret was missing (v1.1).
            if s.skipped_env_missing[i] > 0
                && let Some(o) = counts.as_object_mut()
            {
                o.insert(
                    "skipped_env_missing".into(),
                    json!(s.skipped_env_missing[i]),
                );
            }
            // Only with consent rules: summaries of other plans keep their shape.
            if t.consent.is_some()
                && let Some(o) = counts.as_object_mut()
            {
                o.insert("skipped_no_consent".into(), json!(s.skipped_no_consent[i]));
            }
            templates.insert(t.name.to_string(), counts);
        }
        let cadences: serde_json::Map<String, J> = p
            .cadences
            .iter()
            .zip(&s.cadence_stops)
            .map(|(c, n)| (c.name.to_string(), json!({ "stopped": n })))
            .collect();
        let sum = |v: &[u64]| v.iter().sum::<u64>();
        let mut out = json!({
            "window": { "from": rfc3339(self.from), "until": rfc3339(self.until) },
            "tzdb": crate::tzdb::VERSION,
            "contacts": self.contacts,
            "events": {
                "read": events_read,
                "history": s.history_events,
                "applied": s.applied_events,
                "ignored": s.ignored_events,
                "ignored_by_reason": stats::Ignored::ALL
                    .iter()
                    .map(|r| (r.key().to_string(), json!(s.ignored_by_reason[*r as usize])))
                    .collect::<serde_json::Map<_, _>>(),
                "ignored_first": s.ignored_first
                    .iter()
                    .map(|e| json!({
                        "file": events_file,
                        "line": e.line,
                        "contact": e.contact,
                        "event": e.what,
                        "reason": e.reason.key(),
                    }))
                    .collect::<Vec<_>>(),
                "forecast": s.forecast_events,
                "forecast_not_drawn": {
                    "depth": s.forecast_depth_limited,
                    "contact_cap": s.forecast_capped,
                },
            },
            "bad_input_lines": problems,
            "messages": self.outbox.len(),
            "channels": channels,
            "skipped": {
                "no_address": sum(&s.skipped_no_address),
                "unsubscribed": sum(&s.skipped_unsubscribed),
            },
            "deferred": sum(&s.deferred),
            "dropped": sum(&s.dropped),
            "entries": sum(&s.entries),
            "exits": sum(&s.exited) + sum(&s.exit_steps),
            "goals_reached": s.goals.iter().map(|g| sum(g)).sum::<u64>(),
            "scenarios": scenarios,
            "templates": templates,
            "cadences": cadences,
            "pressure": {
                "under": s.pressure[0],
                "balanced": s.pressure[1],
                "over": s.pressure[2],
            },
        });
        if consent && let Some(o) = out.get_mut("skipped").and_then(J::as_object_mut) {
            o.insert("no_consent".into(), json!(sum(&s.skipped_no_consent)));
        }
        if let Some(total) = self.goal_value_total()
            && let Some(o) = out.as_object_mut()
        {
            o.insert("goal_value".into(), json!(total));
        }
        let env_missing = sum(&s.skipped_env_missing);
        if env_missing > 0
            && let Some(skipped) = out.get_mut("skipped").and_then(J::as_object_mut)
        {
            skipped.insert("env_missing".into(), json!(env_missing));
        }
        let locales = locale::counts(self.program.plan, &self.outbox);
        if !locales.is_empty()
            && let Some(o) = out.as_object_mut()
        {
            o.insert(
                "locales".into(),
                locales.iter().map(|(l, n)| (l.clone(), json!(n))).collect(),
            );
        }
        if report && let Some(o) = out.as_object_mut() {
            let days: Vec<J> = self
                .per_day()
                .into_iter()
                .map(|(day, n)| {
                    let mut d = serde_json::Map::new();
                    d.insert("day".into(), json!(day));
                    for (c, k) in CHANNELS.iter().zip(n) {
                        d.insert(c.to_string(), json!(k));
                    }
                    J::Object(d)
                })
                .collect();
            o.insert("sends_per_day".into(), J::Array(days));
        }
        self.summary_json_v11(&mut out);
        out
    }

    /// The counts of §12's expiry and conditional touches, present only when
    /// the plan uses them (so that other summaries keep their bytes).
    fn summary_json_v11(&self, out: &mut J) {
        let p = &self.program;
        let s = &self.stats;
        let Some(o) = out.as_object_mut() else { return };
        if p.templates.iter().any(|t| t.expires.is_some()) {
            o.insert("expired".into(), json!(s.expired.iter().sum::<u64>()));
            if let Some(J::Object(ts)) = o.get_mut("templates") {
                for (i, t) in p.templates.iter().enumerate() {
                    if let Some(J::Object(e)) = ts.get_mut(t.name) {
                        e.insert("expired".into(), json!(s.expired[i]));
                    }
                }
            }
        }
        if p.cadences
            .iter()
            .any(|c| c.touches.iter().any(|t| t.when.is_some()))
        {
            let total: u64 = s.touch_skipped_when.iter().sum();
            if let Some(J::Object(sk)) = o.get_mut("skipped") {
                sk.insert("when".into(), json!(total));
            }
            if let Some(J::Object(cs)) = o.get_mut("cadences") {
                for (i, c) in p.cadences.iter().enumerate() {
                    if let Some(J::Object(e)) = cs.get_mut(c.name) {
                        e.insert("skipped_when".into(), json!(s.touch_skipped_when[i]));
                    }
                }
            }
        }
    }

    fn summary_text_v11(&self, out: &mut String) {
        let p = &self.program;
        let s = &self.stats;
        if p.templates.iter().any(|t| t.expires.is_some()) {
            let _ = writeln!(
                out,
                "expired: {} (deferred past their template's `expires`, dropped)",
                s.expired.iter().sum::<u64>()
            );
        }
        if p.cadences
            .iter()
            .any(|c| c.touches.iter().any(|t| t.when.is_some()))
        {
            let _ = writeln!(
                out,
                "touches skipped by `when`: {}",
                s.touch_skipped_when.iter().sum::<u64>()
            );
        }
    }

    /// The summary for people (stderr).
    pub fn summary_text(&self, problems: usize, events_read: u64, events_file: &str) -> String {
        let p = &self.program;
        let s = &self.stats;
        let mut out = String::new();
        let sum = |v: &[u64]| v.iter().sum::<u64>();
        let _ = writeln!(
            out,
            "simulated {} contact(s) from {} to {} (tzdb {}): {} event(s) read, {} before the window, {} applied, {} ignored{}",
            self.contacts,
            rfc3339(self.from),
            rfc3339(self.until),
            crate::tzdb::VERSION,
            events_read,
            s.history_events,
            s.applied_events,
            s.ignored_events,
            if s.forecast_events > 0 {
                format!(", {} drawn by --engagement", s.forecast_events)
            } else {
                String::new()
            }
        );
        if s.ignored_events > 0 {
            let reasons: Vec<String> = stats::Ignored::ALL
                .iter()
                .filter(|r| s.ignored_by_reason[**r as usize] > 0)
                .map(|r| {
                    format!(
                        "{} {}",
                        s.ignored_by_reason[*r as usize],
                        r.key().replace('_', " ")
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "ignored event(s): {} ({}), changing nothing:",
                s.ignored_events,
                reasons.join(", ")
            );
            for e in &s.ignored_first {
                let _ = writeln!(
                    out,
                    "  {events_file}:{}: contact `{}`: {}: {}",
                    e.line,
                    e.contact,
                    e.what,
                    e.reason.text()
                );
            }
            let shown = s.ignored_first.len() as u64;
            if s.ignored_events > shown {
                let _ = writeln!(out, "  … and {} more", s.ignored_events - shown);
            }
        }
        if s.forecast_depth_limited > 0 {
            let _ = writeln!(
                out,
                "warning: --engagement: {} message(s) drew no reactions: {} drawn events in a row led to each (message, drawn event, run, message…); the rates make reactions trigger more messages without end, and a forecast stops such chains",
                s.forecast_depth_limited,
                sim::MAX_FORECAST_DEPTH
            );
        }
        if s.forecast_capped > 0 {
            let _ = writeln!(
                out,
                "warning: --engagement: {} message(s) drew no reactions: their contact already had {} drawn events",
                s.forecast_capped,
                sim::MAX_DRAWN_PER_CONTACT
            );
        }
        if problems > 0 {
            let _ = writeln!(out, "{problems} bad input line(s) reported above");
        }
        let built = &p.plan.tzdb;
        if !built.is_empty() && built != crate::tzdb::VERSION {
            let _ = writeln!(
                out,
                "note: the plan was built with tzdb {built}; this run used tzdb {} (local times follow the run's)",
                crate::tzdb::VERSION
            );
        }
        let mut by_channel = [0u64; 5];
        for (i, t) in p.templates.iter().enumerate() {
            by_channel[t.channel] += s.sent[i];
        }
        let channels: Vec<String> = CHANNELS
            .iter()
            .zip(by_channel)
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        let env_missing = sum(&s.skipped_env_missing);
        let _ = writeln!(
            out,
            "messages: {}{}; skipped {} (no address {}, unsubscribed {}{}); deferred {}; dropped {}",
            self.outbox.len(),
            if channels.is_empty() {
                String::new()
            } else {
                format!(" ({})", channels.join(", "))
            },
            sum(&s.skipped_no_address)
                + sum(&s.skipped_unsubscribed)
                + sum(&s.skipped_no_consent)
                + env_missing,
            sum(&s.skipped_no_address),
            sum(&s.skipped_unsubscribed),
            {
                let mut more = String::new();
                if sum(&s.skipped_no_consent) > 0 {
                    more.push_str(&format!(", no consent {}", sum(&s.skipped_no_consent)));
                }
                if env_missing > 0 {
                    more.push_str(&format!(", environment variable not set {env_missing}"));
                }
                more
            },
            sum(&s.deferred),
            sum(&s.dropped),
        );
        self.summary_text_v11(&mut out);
        let locales = locale::counts(self.program.plan, &self.outbox);
        if !locales.is_empty() {
            let shown: Vec<String> = locales.iter().map(|(l, n)| format!("{l} {n}")).collect();
            let _ = writeln!(out, "messages by locale variant: {}", shown.join(", "));
        }
        let width = p
            .scenarios
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let _ = writeln!(
            out,
            "{:<width$}  {:>8} {:>9} {:>6} {:>6} {:>8} {:>6}",
            "scenario", "entries", "completed", "exits", "active", "ignored", "goals"
        );
        for (i, sc) in p.scenarios.iter().enumerate() {
            let _ = writeln!(
                out,
                "{:<width$}  {:>8} {:>9} {:>6} {:>6} {:>8} {:>6}",
                sc.name,
                s.entries[i],
                s.completed[i],
                s.exited[i] + s.exit_steps[i],
                s.active_at_end[i],
                s.ignored_active[i]
                    + s.ignored_reentry[i]
                    + s.ignored_audience[i]
                    + s.ignored_instant[i],
                sum(&s.goals[i]),
            );
        }
        let (passed, absent, retimed, moved) = (
            sum(&s.wait_until_passed),
            sum(&s.wait_until_absent),
            sum(&s.wait_until_retimed),
            sum(&s.date_rescheduled),
        );
        if passed + absent + retimed + moved > 0 {
            let _ = writeln!(
                out,
                "dates: wait until went on at once {} (passed {passed}, absent {absent}); re-timed {retimed}; date triggers rescheduled {moved}",
                passed + absent
            );
        }
        self.goal_value_lines(&mut out);
        let width = p
            .templates
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let _ = writeln!(
            out,
            "{:<width$}  {:<7} {:>7} {:>8} {:>8} {:>7}",
            "template", "channel", "sent", "skipped", "deferred", "dropped"
        );
        let mut quiet = 0;
        for (i, t) in p.templates.iter().enumerate() {
            let skipped = s.skipped_no_address[i]
                + s.skipped_unsubscribed[i]
                + s.skipped_no_consent[i]
                + s.skipped_env_missing[i];
            if s.sent[i] + skipped + s.deferred[i] + s.dropped[i] == 0 {
                quiet += 1;
                continue;
            }
            let _ = writeln!(
                out,
                "{:<width$}  {:<7} {:>7} {:>8} {:>8} {:>7}",
                t.name, CHANNELS[t.channel], s.sent[i], skipped, s.deferred[i], s.dropped[i],
            );
        }
        if quiet > 0 {
            let _ = writeln!(
                out,
                "({quiet} template(s) with nothing sent, skipped, deferred or dropped not shown)"
            );
        }
        let _ = writeln!(
            out,
            "pressure: {} under, {} balanced, {} over",
            s.pressure[0], s.pressure[1], s.pressure[2]
        );
        out
    }

    /// `--report`: sends per day per channel and the pressure state.
    pub fn report_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<10}  {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "day", "email", "sms", "push", "task", "webhook", "total"
        );
        for (day, n) in self.per_day() {
            let _ = writeln!(
                out,
                "{:<10}  {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
                day,
                n[0],
                n[1],
                n[2],
                n[3],
                n[4],
                n.iter().sum::<u64>()
            );
        }
        let s = &self.stats;
        let total = (s.pressure.iter().sum::<u64>()).max(1) as f64;
        let _ = writeln!(out, "pressure over the window:");
        for (name, n) in ["under", "balanced", "over"].iter().zip(s.pressure) {
            let _ = writeln!(
                out,
                "  {name:<9} {n:>9}  {:>5.1}%",
                100.0 * n as f64 / total
            );
        }
        self.goal_value_lines(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan of one scenario: on `joined leads`, send `a`, wait until
    /// `opened(a)` at most `timeout` seconds, send `b`.
    pub(crate) fn plan(timeout: i64) -> Plan {
        let task = r#"{"channel": "task", "kind": "operational", "address_field": null,
            "parts": {}, "links": {}, "link_order": [], "headers": {}, "content_hash": ""}"#;
        let text = format!(
            r#"{{"plan_version": 1,
            "workspace": {{"name": null, "timezone": null, "from": null, "address": null}},
            "schema": {{"fields": [], "address_fields": {{}}, "timezone_field": null}},
            "events": {{}}, "lists": {{"leads": {{"on_join": []}}}}, "segments": {{}},
            "templates": {{"a": {task}, "b": {task}}},
            "scenarios": {{"r": {{"audience": null, "trigger": {{"kind": "joined", "list": "leads"}},
              "reentry": {{"policy": "always"}}, "exit_when": null, "goals": [], "entry": "r/0",
              "steps": {{
                "r/0": {{"kind": "send", "template": "a", "next": "r/1"}},
                "r/1": {{"kind": "wait_until", "until": {{"op": "engagement", "event": "opened",
                  "template": "a", "link": null, "since": null, "scope": "run"}},
                  "timeout_seconds": {timeout}, "next": "r/2"}},
                "r/2": {{"kind": "send", "template": "b", "next": null}}}}}}}},
            "cadences": {{}}, "pressure": null, "scenario_order": ["r"]}}"#
        );
        serde_json::from_str(&text).expect("test plan")
    }

    fn run_plan(plan: &Plan) -> Vec<(i64, String)> {
        let (contacts, problems) =
            input::contacts_from_jsonl("{\"id\": \"c\"}\n", plan, "c.jsonl").unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let (events, problems) = input::events_from_jsonl(
            "{\"contact\": \"c\", \"event\": \"joined\", \"list\": \"leads\", \"at\": \"2026-11-02T10:00:00Z\"}\n",
            plan,
            &contacts,
            "e.jsonl",
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let opts = Options {
            from: input::parse_timestamp("2026-11-01T00:00:00Z").unwrap(),
            until: input::parse_timestamp("2026-11-10T00:00:00Z").unwrap(),
            threads: 1,
            trace: None,
            forecast: None,
        };
        let out = simulate_valid(plan, &contacts, &events, &opts, false).unwrap();
        out.outbox
            .iter()
            .map(|m| {
                (
                    m.at,
                    out.program.templates[m.template as usize].name.to_string(),
                )
            })
            .collect()
    }

    /// A negative timeout (only a hand-made plan has one, and validation
    /// refuses it) never sends into the past: time only moves forward.
    #[test]
    fn a_wake_up_in_the_past_happens_now() {
        let joined = input::parse_timestamp("2026-11-02T10:00:00Z").unwrap();
        let sent = run_plan(&plan(-3600));
        assert_eq!(
            sent,
            vec![(joined, "a".to_string()), (joined, "b".to_string())]
        );
        let refused = crate::plan::validate(&plan(-3600)).unwrap_err();
        assert_eq!(refused.path, "$.scenarios.r.steps[\"r/1\"].timeout_seconds");
        let sent = run_plan(&plan(3600));
        assert_eq!(sent[1], (joined + 3600, "b".to_string()));
    }
}
