//! The simulation of one contact (§10): a discrete-event loop over the
//! contact's input events and its own wake-ups. Contacts never interact
//! (pressure, runs and triggers are per contact), so the runner simulates
//! them independently and in parallel; the result does not depend on the
//! order or the grouping of contacts.
//!
//! The contact's state is a value, [`ContactState`]; a [`Sim`] borrows it
//! for one input (an event, or the clock reaching an instant) and is the
//! body of [`super::journey::Journey::step`], which every host calls.
//!
//! At one instant: input events in input order, then wake-ups in the order
//! they were scheduled. After each, the contact "settles": `exit when` of
//! active runs, `wait until` conditions and `entered` segments are
//! re-evaluated until nothing changes. Every expression goes through the
//! one evaluator, [`crate::eval`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::business::{add_business_days, local_text};
use super::calendar::{self, Days};
use super::clock::rfc3339;
use super::dates;
use super::forecast::Forecast;
use super::program::{CHANNELS, Op, Program, Rule, Trig};
use super::stats::{Ignored, Stats};
use crate::eval::{Contact, Context, Event, Value};
use crate::plan::{Expr, Reentry, Term};
use crate::render::{duration_text as duration, expr_text, term_text, trigger_text};
use crate::syntax::ast::TimeValue;

mod consent;
mod upgrade;

/// `--engagement`: a message sent by a run that this many drawn events led
/// to (message → drawn event → run → message …) draws no reactions, so
/// that rates under which every message draws an event that sends more
/// messages stay bounded.
pub const MAX_FORECAST_DEPTH: usize = 3;

/// `--engagement`: at most this many drawn events per contact over the
/// window (a bound on the work, whatever the rates and the project).
pub const MAX_DRAWN_PER_CONTACT: usize = 2_000;

/// One outbox line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub at: i64,
    pub contact: u32,
    pub scenario: u16,
    /// Index into the program's labels (step or touch id).
    pub step: u32,
    pub template: u16,
    pub deferred_from: Option<i64>,
    /// The variant sent (`run::locale::variant`): 0 for the unsuffixed parts.
    pub locale: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Wake {
    Run(u32, u32),
    Recheck,
    /// Scenario, trigger.
    Every(u32, u32),
    Once(u32, u32),
    /// An `at` or `yearly` trigger: scenario, trigger (stale unless
    /// `date_next` still says this instant).
    Date(u32, u32),
    /// Sends queued at this instant go out by priority (`priority`).
    Flush,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Cursor {
    Step(usize),
    Touch {
        cadence: usize,
        index: usize,
        resume: Option<usize>,
    },
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Block {
    None,
    /// `wait until`: continues when the condition holds or at the deadline.
    Until(usize, i64),
    /// A send deferred by pressure, first due at this time.
    Deferred(i64),
    /// `wait D` (the step), until its wake-up.
    Sleep(usize),
    /// `wait until TIME` (the step), until this instant.
    UntilTime(usize, i64),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Run {
    scenario: usize,
    /// How many drawn (`--engagement`) events led to this run: 0 when an
    /// input event or the clock started it.
    depth: u8,
    id: u64,
    entered: i64,
    generation: u32,
    active: bool,
    cursor: Cursor,
    block: Block,
    goals: Vec<bool>,
}

#[derive(Clone, Copy, PartialEq)]
enum End {
    Completed,
    ExitWhen,
    ExitStep,
}

enum Outcome {
    Sent(i64),
    Skipped,
    Dropped,
    Deferred(i64),
}

/// One contact's whole runner state between two inputs: everything the
/// simulation of the contact remembers, and nothing it can recompute from
/// the program. A host keeps it (in memory for `relance run`, serialised
/// for a durable runner) and hands it back to [`super::journey::Journey::step`]
/// with the next input; see `ARCHITECTURE.md` ("One semantics, two hosts").
///
/// Indices (scenarios, steps, templates, cadences, watched segments) are
/// those of the program the state was made with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContactState {
    /// The host's number for the contact: what [`Message::contact`] says.
    dense: u32,
    /// The contact as its journey made it: its lists, tags and fields
    /// after `join`, `leave`, `tag`, `untag`, `on join` rules and
    /// `updated` events.
    contact: Contact,
    /// The zone of the contact's local times (`None`: the workspace's).
    tz_name: Option<String>,
    /// `tz_name` resolved (not persisted: resolved again after loading).
    #[serde(skip)]
    tz: Option<TimeZone>,
    /// The window has begun: the segments' baseline for `entered` and the
    /// clock triggers were taken at `from`.
    started: bool,
    /// The present: the instant of the last input or wake-up handled.
    now: i64,
    /// Events drawn by `--engagement`, not yet applied, by (at, order):
    /// indices into `slots`.
    incoming: BinaryHeap<Reverse<(i64, u64, usize)>>,
    slots: Vec<Option<Event>>,
    /// Per slot, the event's line in the events file (0: drawn by
    /// `--engagement`).
    slot_lines: Vec<u32>,
    /// Per slot, how many drawn events led to the event (0: input).
    slot_depth: Vec<u8>,
    /// The depth of what is happening now: the event being applied or the
    /// run being advanced. Runs started now take it.
    depth: u8,
    /// The depth of the triggers in `fired`.
    fired_depth: u8,
    /// Events drawn by `--engagement` for this contact so far.
    drawn: usize,
    /// Wake-ups: (at, order of scheduling, what).
    agenda: BinaryHeap<Reverse<(i64, u64, Wake)>>,
    seq: u64,
    recheck_at: Option<i64>,
    runs: Vec<Run>,
    /// Per scenario, its active run.
    active: Vec<Option<u32>>,
    last_entry: Vec<Option<i64>>,
    entered_at: Vec<i64>,
    /// Per watched segment (`entered` triggers), its last value.
    watched: Vec<bool>,
    /// Watched segments whose value may have changed since last evaluated.
    dirty: Vec<bool>,
    /// When each watched segment may next change with no event.
    watch_next: Vec<Option<i64>>,
    fired: Vec<usize>,
    /// Marketing sends: (time, channel): the pressure history.
    ledger: Vec<(i64, usize)>,
    unsubscribed: [bool; 5],
    /// Every send: (template, time, run id), for engagement attribution.
    sends: Vec<(usize, i64, u64)>,
    pressured: bool,
    /// Engagement events waiting for the wake-ups of their instant:
    /// (event, line, depth).
    late: Vec<(Event, u32, u8)>,
    /// Templates that history events show were sent before `--from`.
    sent_before: Vec<String>,
    /// Per-topic unsubscribes: (channel, topic).
    unsubscribed_topics: Vec<(usize, String)>,
    /// Date triggers (`at`, `yearly`), per scenario: the instant of the
    /// next firing, the values an `at` trigger already fired for, and the
    /// last firing of a `yearly` one.
    date_next: Vec<Vec<Option<i64>>>,
    date_fired: Vec<Vec<Vec<TimeValue>>>,
    date_last: Vec<Vec<Option<i64>>>,
    /// Sends queued at `flush_at` when some template has a priority:
    /// (priority, order, run, generation, template).
    pending: Vec<(u8, u64, usize, u32, usize)>,
    flush_at: Option<i64>,
    /// The run the flush lets send now (its next send is not queued).
    releasing: Option<usize>,
}

impl ContactState {
    /// The state of contact `contact` (number `dense` for the host) before
    /// any input.
    pub(crate) fn new(prog: &Program, dense: u32, contact: Contact) -> ContactState {
        let tz_name = prog.tz_field.and_then(|f| match contact.fields.get(f) {
            Some(Value::Text(z)) if crate::tzdb::zone(z).is_some() => Some(z.clone()),
            _ => None,
        });
        let n = prog.scenarios.len();
        let per_trigger = |v| -> Vec<_> {
            prog.scenarios
                .iter()
                .map(|s| vec![v; s.triggers.len()])
                .collect()
        };
        ContactState {
            dense,
            contact,
            tz_name,
            tz: None,
            started: false,
            now: i64::MIN,
            incoming: BinaryHeap::new(),
            slots: Vec::new(),
            slot_lines: Vec::new(),
            slot_depth: Vec::new(),
            depth: 0,
            fired_depth: 0,
            drawn: 0,
            agenda: BinaryHeap::new(),
            seq: 0,
            recheck_at: None,
            runs: Vec::new(),
            active: vec![None; n],
            last_entry: vec![None; n],
            entered_at: vec![i64::MIN; n],
            watched: vec![false; prog.watched.len()],
            dirty: vec![true; prog.watched.len()],
            watch_next: vec![None; prog.watched.len()],
            fired: Vec::new(),
            ledger: Vec::new(),
            unsubscribed: [false; 5],
            sends: Vec::new(),
            pressured: false,
            late: Vec::new(),
            sent_before: Vec::new(),
            unsubscribed_topics: Vec::new(),
            date_next: per_trigger(None),
            date_fired: prog
                .scenarios
                .iter()
                .map(|s| vec![Vec::new(); s.triggers.len()])
                .collect(),
            date_last: per_trigger(None),
            pending: Vec::new(),
            flush_at: None,
            releasing: None,
        }
    }

    /// The contact as its journey made it.
    pub fn contact(&self) -> &Contact {
        &self.contact
    }

    /// Whether the contact unsubscribed from `channel` (an index of
    /// `plan::CHANNELS`), or from `topic` on it: what a host checks again
    /// before delivering a marketing message made earlier.
    pub fn unsubscribed_from(&self, channel: usize, topic: Option<&str>) -> bool {
        self.unsubscribed.get(channel).copied().unwrap_or(false)
            || topic.is_some_and(|t| {
                self.unsubscribed_topics
                    .iter()
                    .any(|(c, x)| *c == channel && x == t)
            })
    }

    /// Where each active run waits, as `(scenario, step or touch id)`:
    /// what a host shows of a contact and counts per step.
    pub fn waiting<'p>(&self, prog: &Program<'p>) -> Vec<(&'p str, &'p str)> {
        self.runs
            .iter()
            .filter(|r| r.active)
            .filter_map(|r| {
                let scenario = prog.scenarios.get(r.scenario)?.name;
                let step = match (r.block, r.cursor) {
                    // Waiting: the wait step, not the one after it.
                    (Block::Until(i, _) | Block::Sleep(i) | Block::UntilTime(i, _), _) => {
                        prog.steps.get(i)?.id
                    }
                    (_, Cursor::Step(i)) => prog.steps.get(i)?.id,
                    (_, Cursor::Touch { cadence, index, .. }) => {
                        let t = prog.cadences.get(cadence)?.touches.get(index)?;
                        prog.labels.get(t.label)?
                    }
                    (_, Cursor::Done) => return None,
                };
                Some((scenario, step))
            })
            .collect()
    }

    /// Whether the state fits `prog`: every index it holds (scenarios,
    /// triggers, steps, cadences, templates, watched segments, runs,
    /// drawn events, channels) is one of the program's. A state loaded
    /// from storage is checked before any step, so that a damaged one or
    /// one made with another plan is an error, not a panic.
    pub(crate) fn fits(&self, prog: &Program) -> Result<(), String> {
        let bad = |what: &str| Err(format!("the stored state does not fit the plan: {what}"));
        let (scenarios, steps, runs) = (prog.scenarios.len(), prog.steps.len(), self.runs.len());
        let step_ok = |i: usize| i < steps;
        let next_ok = |n: Option<usize>| n.is_none_or(step_ok);
        let per_trigger_ok = |v: &[usize]| {
            v.len() == scenarios
                && v.iter()
                    .zip(&prog.scenarios)
                    .all(|(n, s)| *n == s.triggers.len())
        };
        let lens = |v: &Vec<Vec<Option<i64>>>| v.iter().map(Vec::len).collect::<Vec<_>>();
        if self.active.len() != scenarios
            || self.last_entry.len() != scenarios
            || self.entered_at.len() != scenarios
        {
            return bad("the number of scenarios");
        }
        if !per_trigger_ok(&lens(&self.date_next))
            || !per_trigger_ok(&lens(&self.date_last))
            || !per_trigger_ok(&self.date_fired.iter().map(Vec::len).collect::<Vec<_>>())
        {
            return bad("the number of triggers");
        }
        let w = prog.watched.len();
        if self.watched.len() != w || self.dirty.len() != w || self.watch_next.len() != w {
            return bad("the number of watched segments");
        }
        let slots = self.slots.len();
        if self.slot_lines.len() != slots
            || self.slot_depth.len() != slots
            || self.incoming.iter().any(|Reverse((_, _, i))| *i >= slots)
        {
            return bad("a drawn event");
        }
        for run in &self.runs {
            let Some(sc) = prog.scenarios.get(run.scenario) else {
                return bad("a run's scenario");
            };
            let cursor_ok = match run.cursor {
                Cursor::Step(i) => step_ok(i),
                Cursor::Touch {
                    cadence, resume, ..
                } => cadence < prog.cadences.len() && next_ok(resume),
                Cursor::Done => true,
            };
            let block_ok = match run.block {
                Block::Until(i, _) | Block::Sleep(i) | Block::UntilTime(i, _) => step_ok(i),
                Block::None | Block::Deferred(_) => true,
            };
            if !cursor_ok || !block_ok || run.goals.len() != sc.goals.len() {
                return bad("where a run waits");
            }
        }
        let trigger_ok = |s: u32, k: u32| {
            prog.scenarios
                .get(s as usize)
                .is_some_and(|sc| (k as usize) < sc.triggers.len())
        };
        let templates = prog.templates.len();
        if self.active.iter().flatten().any(|r| *r as usize >= runs)
            || self.fired.iter().any(|s| *s >= scenarios)
            || self.ledger.iter().any(|(_, ch)| *ch >= CHANNELS.len())
            || self
                .unsubscribed_topics
                .iter()
                .any(|(ch, _)| *ch >= CHANNELS.len())
            || self.sends.iter().any(|(tpl, ..)| *tpl >= templates)
            || self.pending.iter().any(|p| p.2 >= runs || p.4 >= templates)
            || self.releasing.is_some_and(|r| r >= runs)
            || self.agenda.iter().any(|Reverse((_, _, wake))| match *wake {
                Wake::Run(r, _) => r as usize >= runs,
                Wake::Every(s, k) | Wake::Once(s, k) | Wake::Date(s, k) => !trigger_ok(s, k),
                Wake::Recheck | Wake::Flush => false,
            })
        {
            return bad("an index out of range");
        }
        Ok(())
    }

    /// The earliest instant at which the state has work of its own
    /// (a wake-up, a drawn event, engagement held for the wake-ups of the
    /// present instant), `None` when it has none. A wake-up may have lapsed
    /// (a run that moved on): handling it then does nothing.
    pub(crate) fn next_wake(&self, from: i64) -> Option<i64> {
        if !self.started {
            return Some(from);
        }
        if !self.late.is_empty() {
            return Some(self.now);
        }
        let te = self.incoming.peek().map(|Reverse((t, ..))| *t);
        let ta = self.agenda.peek().map(|Reverse((t, ..))| *t);
        match (te, ta) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What one contact's simulation needs besides the program.
#[derive(Clone, Copy)]
pub(crate) struct Window {
    pub from: i64,
    pub until: i64,
}

/// One input being handled: the program, the contact's state and history,
/// and where the effects go. It lives for one input only.
pub(crate) struct Sim<'a, 'p> {
    prog: &'a Program<'p>,
    from: i64,
    until: i64,
    forecast: Option<&'a Forecast>,
    tz: TimeZone,
    /// The line of the event being applied.
    line: u32,
    st: &'a mut ContactState,
    /// Applied events: what the evaluator sees (the host's history).
    applied: &'a mut Vec<Event>,
    out: &'a mut Vec<Message>,
    stats: &'a mut Stats,
    trace: Option<&'a mut Vec<String>>,
}

/// A contact's bucket for `split`: SHA-256 of `scenario/contact-id`, read
/// as a big-endian number, modulo 100.
pub fn split_bucket(scenario: &str, contact: &str) -> u32 {
    let digest = Sha256::digest(format!("{scenario}/{contact}").as_bytes());
    digest
        .iter()
        .fold(0u32, |acc, b| (acc * 256 + u32::from(*b)) % 100)
}

impl<'a, 'p> Sim<'a, 'p> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        prog: &'a Program<'p>,
        window: Window,
        forecast: Option<&'a Forecast>,
        st: &'a mut ContactState,
        applied: &'a mut Vec<Event>,
        out: &'a mut Vec<Message>,
        stats: &'a mut Stats,
        trace: Option<&'a mut Vec<String>>,
    ) -> Self {
        let tz = match &st.tz {
            Some(tz) => tz.clone(),
            None => {
                let tz = st
                    .tz_name
                    .as_deref()
                    .and_then(crate::tzdb::zone)
                    .unwrap_or_else(|| prog.default_tz.clone());
                st.tz = Some(tz.clone());
                tz
            }
        };
        Sim {
            prog,
            from: window.from,
            until: window.until,
            forecast,
            tz,
            line: 0,
            st,
            applied,
            out,
            stats,
            trace,
        }
    }

    /// An input event (`line`: its line in the events file). One before
    /// `from` is history; any other comes after everything due before it
    /// (`advance_to`) and is applied at its instant, or at the present
    /// when it lies in the past.
    pub(crate) fn input(&mut self, ev: Event, line: u32) {
        if ev.at < self.from {
            self.history(ev);
            return;
        }
        self.start();
        self.advance_to(ev.at);
        let t = ev.at.max(self.st.now);
        self.st.now = t;
        self.line = line;
        self.st.depth = 0;
        self.event(ev, t, false);
        self.settle(t);
    }

    fn push_event(&mut self, ev: Event, line: u32, depth: u8) {
        // Drawn events come after the input events of their instant, in
        // the order they were drawn.
        let order = self.st.slots.len() as u64;
        self.st
            .incoming
            .push(Reverse((ev.at, order, self.st.slots.len())));
        self.st.slots.push(Some(ev));
        self.st.slot_lines.push(line);
        self.st.slot_depth.push(depth);
    }

    fn note(&mut self, at: i64, text: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{}  {}", rfc3339(at), text()));
        }
    }

    /// An event before `--from`: it feeds aggregates and engagement and
    /// holds an unsubscribe, but fires nothing and changes no list.
    fn history(&mut self, ev: Event) {
        self.stats.history_events += 1;
        if let Some(Value::Text(tpl)) = ev.fields.get("template")
            && !self.st.sent_before.contains(tpl)
        {
            self.st.sent_before.push(tpl.clone());
        }
        if ev.name == "unsubscribed" {
            self.unsubscribe(&ev);
        }
        self.applied.push(ev);
    }

    fn event_channel(&self, ev: &Event) -> Option<usize> {
        match ev.fields.get("channel") {
            Some(Value::Text(c)) => super::program::channel_index(c),
            _ => match ev.fields.get("template") {
                Some(Value::Text(t)) => self
                    .prog
                    .template(t)
                    .map(|i| self.prog.templates[i].channel),
                _ => None,
            },
        }
    }

    fn cx(&self, now: i64, run: Option<u64>) -> Context<'_> {
        Context {
            plan: self.prog.plan,
            contact: &self.st.contact,
            events: self.applied,
            now,
            run,
        }
    }

    fn holds(&self, e: &Expr, now: i64, run: Option<u64>) -> bool {
        self.cx(now, run).eval(e)
    }

    fn schedule(&mut self, at: i64, wake: Wake) {
        self.st.seq += 1;
        self.st.agenda.push(Reverse((at, self.st.seq, wake)));
    }

    /// Schedules run `r` to go on at `at`; older wake-ups of the run lapse.
    fn schedule_run(&mut self, r: usize, at: i64) {
        self.st.runs[r].generation += 1;
        let g = self.st.runs[r].generation;
        self.schedule(at, Wake::Run(r as u32, g));
    }

    /// Begins the window at `from` (once): the baseline of the watched
    /// segments and the clock triggers.
    fn start(&mut self) {
        if self.st.started {
            return;
        }
        self.st.started = true;
        let from = self.from;
        self.st.now = from;
        for (k, w) in self.prog.watched.iter().enumerate() {
            self.st.watched[k] = self.holds(w.expr, from, None);
            self.st.watch_next[k] = self.cx(from, None).next_change(w.expr);
            self.st.dirty[k] = false;
        }
        for (i, s) in self.prog.scenarios.iter().enumerate() {
            for (k, trig) in s.triggers.iter().enumerate() {
                let wake = match *trig {
                    Trig::Every(days, clock) => calendar::next(days, clock, &self.tz, from)
                        .map(|t| (t, Wake::Every(i as u32, k as u32))),
                    Trig::Once(at) => Some((at, Wake::Once(i as u32, k as u32))),
                    Trig::OnceLocal(date, clock) => calendar::once_local(date, clock, &self.tz)
                        .map(|t| (t, Wake::Once(i as u32, k as u32))),
                    Trig::At(..) | Trig::Yearly(..) => {
                        self.schedule_date(i, k, from, false);
                        None
                    }
                    _ => None,
                };
                if let Some((t, w)) = wake
                    && t >= from
                {
                    self.schedule(t, w);
                }
            }
        }
        self.plan_recheck(from);
    }

    /// The clock reached `limit`: no input before it will come. Does
    /// everything due before `limit` (and before the window's end): at one
    /// instant, drawn events, then wake-ups in the order they were
    /// scheduled, then engagement held for those wake-ups.
    pub(crate) fn advance_to(&mut self, limit: i64) {
        self.start();
        let limit = limit.min(self.until);
        loop {
            let now = self.st.now;
            let te = self.st.incoming.peek().map(|Reverse((t, ..))| *t);
            let ta = self.st.agenda.peek().map(|Reverse((t, ..))| *t);
            let next = match (te, ta) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (Some(a), None) | (None, Some(a)) => Some(a),
                (None, None) => None,
            };
            // Engagement that came in the same second as its send (made by
            // a wake-up of that instant) is applied once the instant's
            // wake-ups are done (and its input events: the clock is past it).
            if !self.st.late.is_empty() && limit > now && next.is_none_or(|n| n > now) {
                for (ev, line, depth) in std::mem::take(&mut self.st.late) {
                    self.line = line;
                    self.st.depth = depth;
                    self.event(ev, now, true);
                }
                self.settle(now);
                continue;
            }
            let Some(due) = next else { break };
            if due >= limit {
                break;
            }
            // Time never goes back: a wake-up due before the present (a
            // hand-made plan's negative delay) happens now.
            let t = due.max(now);
            self.st.now = t;
            if te == Some(due) {
                if let Some(Reverse((_, _, slot))) = self.st.incoming.pop()
                    && let Some(ev) = self.st.slots[slot].take()
                {
                    self.line = self.st.slot_lines[slot];
                    self.st.depth = self.st.slot_depth[slot];
                    self.event(ev, t, false);
                }
            } else if let Some(Reverse((_, _, wake))) = self.st.agenda.pop() {
                self.st.depth = 0;
                self.wake(wake, t);
                // Triggers due at this instant fire together, so that their
                // scenarios start in declaration order.
                if matches!(wake, Wake::Every(..) | Wake::Once(..) | Wake::Date(..)) {
                    while let Some(Reverse((at, _, w))) = self.st.agenda.peek().copied()
                        && at == t
                        && matches!(w, Wake::Every(..) | Wake::Once(..) | Wake::Date(..))
                    {
                        self.st.agenda.pop();
                        self.wake(w, t);
                    }
                }
            }
            self.settle(t);
        }
    }

    /// The end of the window: the counts of runs still active and of the
    /// pressure state. It changes no state.
    pub(crate) fn finish(&mut self) {
        for r in &self.st.runs {
            if r.active {
                self.stats.active_at_end[r.scenario] += 1;
            }
        }
        self.stats.pressure_state(
            self.prog,
            &self.st.ledger,
            self.st.pressured,
            self.from,
            self.until,
        );
    }
    /// Applies an input (or forecast) event; `retry`: a late engagement
    /// event, after the wake-ups of its instant.
    fn event(&mut self, mut ev: Event, t: i64, retry: bool) {
        let name = ev.name.clone();
        match name.as_str() {
            "joined" | "left" => {
                let list = match ev.fields.get("list") {
                    Some(Value::Text(l)) => self.prog.list(l),
                    _ => None,
                };
                let Some(list) = list else {
                    let what = match ev.fields.get("list") {
                        Some(Value::Text(l)) => format!("event `{name}` list `{l}`"),
                        _ => format!("event `{name}`"),
                    };
                    self.stats
                        .ignore(Ignored::UnknownList, self.line, &self.st.contact.id, &what);
                    self.note(t, || {
                        format!("event `{name}` names no list of the plan: ignored")
                    });
                    return;
                };
                self.note(t, || format!("event `{name}` {}", self.prog.lists[list]));
                if name == "joined" {
                    self.join(list, 0, t);
                } else {
                    self.st.contact.lists.remove(self.prog.lists[list]);
                    self.touch_state();
                }
            }
            "updated" if !self.prog.plan.events.contains_key("updated") => {
                self.update(&ev, t);
            }
            "unsubscribed" => match self.unsubscribe(&ev) {
                Some((ch, None)) => self.note(t, || format!("unsubscribed from {}", CHANNELS[ch])),
                Some((ch, Some(topic))) => self.note(t, || {
                    format!("unsubscribed from topic `{topic}` on {}", CHANNELS[ch])
                }),
                None => {}
            },
            "delivered" | "opened" | "clicked" | "replied" | "bounced" => {
                if let Some(Value::Text(tpl)) = ev.fields.get("template") {
                    let sent = self.prog.template(tpl).and_then(|ti| {
                        self.st
                            .sends
                            .iter()
                            .rev()
                            .find(|(st, at, _)| *st == ti && *at <= t)
                            .map(|(.., run)| *run)
                    });
                    let before = self.st.sent_before.iter().any(|s| s == tpl);
                    let pending = !retry
                        && self
                            .st
                            .agenda
                            .peek()
                            .is_some_and(|Reverse((at, ..))| *at == t);
                    match sent {
                        Some(run) => ev.run = Some(run),
                        // Sent before the window: it belongs to no run.
                        None if before => {}
                        // A wake-up of this instant may send it.
                        None if pending => {
                            self.st.late.push((ev, self.line, self.st.depth));
                            return;
                        }
                        None => {
                            self.stats.ignore(
                                Ignored::NeverSent,
                                self.line,
                                &self.st.contact.id,
                                &format!("event `{name}` on `{tpl}`"),
                            );
                            let tpl = tpl.clone();
                            self.note(t, || {
                                format!("event `{name}` for `{tpl}`, never sent to this contact: ignored")
                            });
                            return;
                        }
                    }
                }
                self.note(t, || match ev.fields.get("template") {
                    Some(Value::Text(tpl)) => format!("event `{name}` on `{tpl}`"),
                    _ => format!("event `{name}`"),
                });
            }
            _ => self.note(t, || format!("event `{name}`")),
        }
        self.stats.applied_events += 1;
        // Goals: counted once per run, for runs entered within the window.
        self.reach_goals(t, &name, false, Some(&ev));
        if let Some(ss) = self.prog.on_event.get(name.as_str()) {
            for &s in ss {
                for trig in &self.prog.scenarios[s].triggers {
                    let Trig::Event(event, filter) = *trig else {
                        continue;
                    };
                    if event != name {
                        continue;
                    }
                    let ok = filter.is_none_or(|f| self.cx(t, None).eval_for_event(f, &ev));
                    if ok {
                        self.fire(s);
                    } else {
                        let sc = self.prog.scenarios[s].name;
                        self.note(t, || {
                            let cond = filter.map(expr_text).unwrap_or_default();
                            format!("{sc}: trigger `event {name} where {cond}` is false")
                        });
                    }
                }
            }
        }
        for (k, w) in self.prog.watched.iter().enumerate() {
            if w.events.contains(&name.as_str()) {
                self.st.dirty[k] = true;
            }
        }
        self.applied.push(ev);
        // The scenarios start in `settle`, with those whose `entered`
        // segment this event made true: together, in declaration order.
    }

    /// Lists or tags changed: every watched segment may have changed.
    fn touch_state(&mut self) {
        self.st.dirty.iter_mut().for_each(|d| *d = true);
    }

    /// The goals that event `name` (or joining list `name`, when `joined`)
    /// reaches at `t`: once per run, for runs entered at most the goal's
    /// window before, when the goal's `where` holds for the event. A goal
    /// with `value` adds the event's field (absent: nothing) to its sum.
    fn reach_goals(&mut self, t: i64, name: &str, joined: bool, ev: Option<&Event>) {
        for r in 0..self.st.runs.len() {
            let s = self.st.runs[r].scenario;
            let sc = &self.prog.scenarios[s];
            for (g, goal) in sc.goals.iter().enumerate() {
                let run = &self.st.runs[r];
                if goal.joined != joined
                    || goal.name != name
                    || run.goals[g]
                    || t < run.entered
                    || t - run.entered > goal.within
                {
                    continue;
                }
                if let (Some(f), Some(ev)) = (goal.filter, ev)
                    && !self.cx(t, None).eval_for_event(f, ev)
                {
                    let id = run.id;
                    self.note(t, || {
                        format!(
                            "{}: goal `{}` not reached by run {id}: `where {}` is false",
                            sc.name,
                            goal.key,
                            expr_text(f)
                        )
                    });
                    continue;
                }
                self.st.runs[r].goals[g] = true;
                self.stats.goals[s][g] += 1;
                let value = match (goal.value, ev) {
                    (Some(field), Some(ev)) => match ev.fields.get(field) {
                        Some(Value::Number(n)) => Some(*n),
                        _ => Some(0.0),
                    },
                    _ => None,
                };
                if let Some(v) = value {
                    self.stats.goal_values[s][g] += super::stats::micros(v);
                }
                self.note(t, || match (goal.value, value) {
                    (Some(field), Some(v)) => format!(
                        "{}: goal `{}` reached (value {field} = {})",
                        sc.name,
                        goal.key,
                        crate::render::flow::term_text(&crate::plan::Term::Number(v))
                    ),
                    _ => format!("{}: goal `{}` reached", sc.name, goal.key),
                });
            }
        }
    }

    /// Joins `list` (nothing when already in it): its `on join` rules run
    /// and its `joined` triggers fire.
    fn join(&mut self, list: usize, depth: usize, t: i64) {
        let name = self.prog.lists[list];
        if depth > 64 || self.st.contact.lists.contains(name) {
            return;
        }
        self.st.contact.lists.insert(name.to_string());
        self.touch_state();
        self.reach_goals(t, name, true, None);
        if let Some(ss) = self.prog.joined.get(name) {
            for &s in ss {
                self.fire(s);
            }
        }
        for rule in &self.prog.rules[list] {
            match rule {
                Rule::Join(l) => self.join(*l, depth + 1, t),
                Rule::Leave(l) => {
                    self.st.contact.lists.remove(self.prog.lists[*l]);
                }
                Rule::Tag(tag) => {
                    self.st.contact.tags.insert(tag.clone());
                }
                Rule::Untag(tag) => {
                    self.st.contact.tags.remove(tag);
                }
            }
        }
    }

    /// Scenario `s`'s trigger fired; it starts with the depth of what
    /// fired it (the deepest, when several things fire at once).
    fn fire(&mut self, s: usize) {
        self.st.fired.push(s);
        self.st.fired_depth = self.st.fired_depth.max(self.st.depth);
    }

    /// Starts the scenarios whose triggers fired, in declaration order.
    fn start_fired(&mut self, t: i64) {
        for _ in 0..64 {
            if self.st.fired.is_empty() {
                return;
            }
            let outer =
                std::mem::replace(&mut self.st.depth, std::mem::take(&mut self.st.fired_depth));
            let mut fired = std::mem::take(&mut self.st.fired);
            fired.sort_unstable();
            fired.dedup();
            for s in fired {
                self.enter(s, t);
            }
            self.st.depth = outer;
        }
    }

    fn enter(&mut self, s: usize, t: i64) {
        let sc = &self.prog.scenarios[s];
        let name = sc.name;
        if self.st.entered_at[s] == t {
            self.stats.ignored_instant[s] += 1;
            self.note(t, || {
                format!("{name}: triggered again at the same instant: ignored")
            });
            return;
        }
        if self.st.active[s].is_some() {
            self.stats.ignored_active[s] += 1;
            self.note(t, || {
                format!("{name}: triggered while a run is active: ignored")
            });
            return;
        }
        let reentry_ok = match (sc.reentry, self.st.last_entry[s]) {
            (_, None) | (Reentry::Always, _) => true,
            (Reentry::Never, Some(_)) => false,
            (Reentry::After { seconds }, Some(last)) => t >= last.saturating_add(*seconds),
        };
        if !reentry_ok {
            self.stats.ignored_reentry[s] += 1;
            self.note(t, || {
                format!("{name}: triggered, but reentry does not allow it yet")
            });
            return;
        }
        if let Some(a) = sc.audience
            && !self.holds(a, t, None)
        {
            self.stats.ignored_audience[s] += 1;
            // Explaining costs a second evaluation: only when tracing.
            if self.trace.is_some() {
                // `why_not` speaks of personas; here it is a contact.
                let why = self
                    .cx(t, None)
                    .why_not(a)
                    .unwrap_or_default()
                    .replace("the persona ", "the contact ");
                self.note(t, || {
                    format!("{name}: triggered, but not in the audience: {why}")
                });
            }
            return;
        }
        let id = self.st.runs.len() as u64 + 1;
        self.st.runs.push(Run {
            scenario: s,
            depth: self.st.depth,
            id,
            entered: t,
            generation: 0,
            active: true,
            cursor: sc.entry.map_or(Cursor::Done, Cursor::Step),
            block: Block::None,
            goals: vec![false; sc.goals.len()],
        });
        let r = self.st.runs.len() - 1;
        self.st.active[s] = Some(r as u32);
        self.st.last_entry[s] = Some(t);
        self.st.entered_at[s] = t;
        self.stats.entries[s] += 1;
        self.note(t, || format!("{name}: entered (run {id})"));
        self.advance(r, t);
    }

    fn end(&mut self, r: usize, t: i64, how: End) {
        let run = &mut self.st.runs[r];
        if !run.active {
            return;
        }
        run.active = false;
        run.generation += 1;
        let s = run.scenario;
        self.st.active[s] = None;
        let name = self.prog.scenarios[s].name;
        match how {
            End::Completed => {
                self.stats.completed[s] += 1;
                self.note(t, || format!("{name}: run completed"));
            }
            End::ExitWhen => {
                self.stats.exited[s] += 1;
                let prog = self.prog;
                self.note(t, || {
                    let cond = prog.scenarios[s].exit_when.map(expr_text);
                    format!(
                        "{name}: `exit when {}` holds: run ended",
                        cond.unwrap_or_default()
                    )
                });
            }
            End::ExitStep => {
                self.stats.exit_steps[s] += 1;
                self.note(t, || format!("{name}: `exit` step: run ended"));
            }
        }
    }

    fn next_cursor(next: Option<usize>) -> Cursor {
        next.map_or(Cursor::Done, Cursor::Step)
    }

    /// Executes run `r` from its cursor until it waits or ends; runs it
    /// starts (a `join` step) take its depth.
    fn advance(&mut self, r: usize, t: i64) {
        let outer = std::mem::replace(&mut self.st.depth, self.st.runs[r].depth);
        self.advance_run(r, t);
        self.st.depth = outer;
    }

    fn advance_run(&mut self, r: usize, t: i64) {
        let prog = self.prog;
        let s = self.st.runs[r].scenario;
        let sc = &prog.scenarios[s];
        let run_id = self.st.runs[r].id;
        for _ in 0..10_000 {
            if !self.st.runs[r].active {
                return;
            }
            if let Some(x) = sc.exit_when
                && self.holds(x, t, Some(run_id))
            {
                return self.end(r, t, End::ExitWhen);
            }
            match self.st.runs[r].cursor {
                Cursor::Done => return self.end(r, t, End::Completed),
                Cursor::Step(i) => {
                    let step = &prog.steps[i];
                    match &step.op {
                        Op::Send(tpl, _) if self.queue(r, *tpl, t) => return,
                        Op::Send(tpl, next) => match self.send(r, *tpl, i, t) {
                            Outcome::Deferred(at) => return self.schedule_run(r, at),
                            _ => self.st.runs[r].cursor = Self::next_cursor(*next),
                        },
                        Op::Wait(secs, next) => {
                            self.st.runs[r].cursor = Self::next_cursor(*next);
                            if *secs > 0 {
                                self.note(t, || format!("{}: wait {}", step.id, duration(*secs)));
                                self.st.runs[r].block = Block::Sleep(i);
                                return self.schedule_run(r, t.saturating_add(*secs));
                            }
                        }
                        Op::WaitUntil(until, timeout, next) => {
                            self.st.runs[r].cursor = Self::next_cursor(*next);
                            if self.holds(until, t, Some(run_id)) {
                                self.note(t, || {
                                    format!(
                                        "{}: wait until `{}`: already holds",
                                        step.id,
                                        expr_text(until)
                                    )
                                });
                            } else {
                                let deadline = t.saturating_add((*timeout).max(0));
                                self.st.runs[r].block = Block::Until(i, deadline);
                                self.note(t, || {
                                    format!(
                                        "{}: wait until `{}`, at most until {}",
                                        step.id,
                                        expr_text(until),
                                        rfc3339(deadline)
                                    )
                                });
                                return self.schedule_run(r, deadline);
                            }
                        }
                        Op::Branch(arms, otherwise) => {
                            let mut chosen = None;
                            for (k, (when, first)) in arms.iter().enumerate() {
                                let ok = when.is_none_or(|w| self.holds(w, t, Some(run_id)));
                                self.note(t, || match when {
                                    Some(w) => format!(
                                        "{}: arm {k} `when {}` is {ok}",
                                        step.id,
                                        expr_text(w)
                                    ),
                                    None => format!("{}: arm {k} `else` is taken", step.id),
                                });
                                if ok {
                                    chosen = Some(*first);
                                    break;
                                }
                            }
                            self.st.runs[r].cursor =
                                Self::next_cursor(chosen.unwrap_or(*otherwise));
                        }
                        Op::Split(arms) => {
                            let bucket = split_bucket(sc.name, &self.st.contact.id);
                            let arm = arms
                                .iter()
                                .position(|(upto, _)| f64::from(bucket) < *upto)
                                .unwrap_or(arms.len().saturating_sub(1));
                            self.note(t, || {
                                format!("{}: split bucket {bucket}: arm {arm}", step.id)
                            });
                            self.st.runs[r].cursor =
                                Self::next_cursor(arms.get(arm).and_then(|a| a.1));
                        }
                        Op::Join(l, next) => {
                            self.note(t, || format!("{}: join {}", step.id, prog.lists[*l]));
                            self.join(*l, 0, t);
                            self.st.runs[r].cursor = Self::next_cursor(*next);
                        }
                        Op::Leave(l, next) => {
                            self.note(t, || format!("{}: leave {}", step.id, prog.lists[*l]));
                            self.st.contact.lists.remove(prog.lists[*l]);
                            self.touch_state();
                            self.st.runs[r].cursor = Self::next_cursor(*next);
                        }
                        Op::Tag(tag, next) => {
                            self.note(t, || format!("{}: tag {tag:?}", step.id));
                            self.st.contact.tags.insert(tag.to_string());
                            self.touch_state();
                            self.st.runs[r].cursor = Self::next_cursor(*next);
                        }
                        Op::Untag(tag, next) => {
                            self.note(t, || format!("{}: untag {tag:?}", step.id));
                            self.st.contact.tags.remove(*tag);
                            self.touch_state();
                            self.st.runs[r].cursor = Self::next_cursor(*next);
                        }
                        Op::Start(c, next) => {
                            let cad = &prog.cadences[*c];
                            self.note(t, || format!("{}: start cadence {}", step.id, cad.name));
                            self.st.runs[r].cursor = Cursor::Touch {
                                cadence: *c,
                                index: 0,
                                resume: *next,
                            };
                            if let Some(first) = cad.touches.first() {
                                let due = self.touch_due(first, t);
                                if due > t {
                                    return self.schedule_run(r, due);
                                }
                            }
                        }
                        Op::Exit => return self.end(r, t, End::ExitStep),
                        Op::WaitUntilTime(until, next) => {
                            self.st.runs[r].cursor = Self::next_cursor(*next);
                            let what = term_text(until);
                            match self.until_instant(until, t) {
                                None => {
                                    self.stats.wait_until_absent[s] += 1;
                                    self.note(t, || {
                                        format!(
                                            "{}: wait until `{what}`: absent, goes on at once",
                                            step.id
                                        )
                                    });
                                }
                                Some(x) if x <= t => {
                                    self.stats.wait_until_passed[s] += 1;
                                    self.note(t, || {
                                        format!(
                                            "{}: wait until `{what}`: {} has passed, goes on at once",
                                            step.id,
                                            rfc3339(x)
                                        )
                                    });
                                }
                                Some(x) => {
                                    self.st.runs[r].block = Block::UntilTime(i, x);
                                    self.note(t, || {
                                        format!(
                                            "{}: wait until `{what}`: waiting until {}",
                                            step.id,
                                            rfc3339(x)
                                        )
                                    });
                                    return self.schedule_run(r, x);
                                }
                            }
                        }
                        Op::WaitBusiness(n, next) => {
                            self.st.runs[r].cursor = Self::next_cursor(*next);
                            let due = add_business_days(t, *n, &self.tz);
                            if due > t {
                                self.note(t, || {
                                    format!(
                                        "{}: wait {n} business day{} (until {})",
                                        step.id,
                                        if *n == 1 { "" } else { "s" },
                                        rfc3339(due)
                                    )
                                });
                                self.st.runs[r].block = Block::Sleep(i);
                                return self.schedule_run(r, due);
                            }
                        }
                    }
                }
                Cursor::Touch {
                    cadence,
                    index,
                    resume,
                } => {
                    let cad = &prog.cadences[cadence];
                    let Some(touch) = cad.touches.get(index) else {
                        self.st.runs[r].cursor = Self::next_cursor(resume);
                        continue;
                    };
                    // Also when a deferred touch comes due: it has not
                    // gone out yet.
                    if let Some(stop) = cad.stop_when
                        && self.holds(stop, t, Some(run_id))
                    {
                        self.st.runs[r].block = Block::None;
                        self.stats.cadence_stops[cadence] += 1;
                        self.note(t, || {
                            format!(
                                "cadence {}: `stop when {}` holds",
                                cad.name,
                                expr_text(stop)
                            )
                        });
                        self.st.runs[r].cursor = Self::next_cursor(resume);
                        continue;
                    }
                    let base = if let Some(w) = touch.when
                        && !self.holds(w, t, Some(run_id))
                    {
                        // Skipped: still the previous touch for timing.
                        self.st.runs[r].block = Block::None;
                        self.stats.touch_skipped_when[cadence] += 1;
                        let id = prog.labels[touch.label];
                        self.note(t, || {
                            format!(
                                "{id}: touch {}: skipped, `when {}` is false",
                                prog.templates[touch.template].name,
                                expr_text(w)
                            )
                        });
                        t
                    } else if self.queue(r, touch.template, t) {
                        return;
                    } else {
                        match self.send(r, touch.template, touch.label, t) {
                            Outcome::Deferred(at) => return self.schedule_run(r, at),
                            Outcome::Sent(at) => at,
                            Outcome::Skipped | Outcome::Dropped => t,
                        }
                    };
                    match cad.touches.get(index + 1) {
                        Some(next) => {
                            self.st.runs[r].cursor = Cursor::Touch {
                                cadence,
                                index: index + 1,
                                resume,
                            };
                            let due = self.touch_due(next, base);
                            if due > t {
                                return self.schedule_run(r, due);
                            }
                        }
                        None => self.st.runs[r].cursor = Self::next_cursor(resume),
                    }
                }
            }
        }
        // A plan's steps form a tree; this bound only guards hand-made plans.
        self.end(r, t, End::Completed);
    }

    /// With priorities in the plan, a send that comes due is queued until
    /// every send due at this instant is known (`Wake::Flush`); returns
    /// whether run `r` was queued (it then stops here).
    fn queue(&mut self, r: usize, tpl: usize, t: i64) -> bool {
        if !self.prog.has_priority {
            return false;
        }
        if self.st.releasing == Some(r) {
            self.st.releasing = None;
            return false;
        }
        self.st.seq += 1;
        let g = self.st.runs[r].generation;
        self.st
            .pending
            .push((self.prog.templates[tpl].priority, self.st.seq, r, g, tpl));
        if self.st.flush_at != Some(t) {
            self.st.flush_at = Some(t);
            self.schedule(t, Wake::Flush);
        }
        true
    }

    /// When touch `touch` comes due after the previous one at `base`.
    fn touch_due(&self, touch: &super::program::Touch, base: i64) -> i64 {
        match touch.business {
            Some(n) => add_business_days(base, n, &self.tz),
            None => base.saturating_add(touch.after),
        }
    }

    /// Sends template `tpl` for run `r` at `t` (the `label`'s step), or
    /// skips, drops or defers it.
    fn send(&mut self, r: usize, tpl: usize, label: usize, t: i64) -> Outcome {
        let prog = self.prog;
        let template = &prog.templates[tpl];
        let due = match self.st.runs[r].block {
            Block::Deferred(d) => d,
            _ => t,
        };
        self.st.runs[r].block = Block::None;
        let id = prog.labels[label];
        let channel = CHANNELS[template.channel];
        if let Some(field) = template.address
            && !self.st.contact.fields.contains_key(field)
        {
            self.stats.skipped_no_address[tpl] += 1;
            self.note(t, || {
                format!(
                    "{id}: send {} ({channel}): skipped, no `{field}`",
                    template.name
                )
            });
            return Outcome::Skipped;
        }
        // A webhook whose header secret is not in the environment cannot
        // be sent: skipped and counted (docs/runner.md).
        if let Some(var) = template.missing_env {
            self.stats.skipped_env_missing[tpl] += 1;
            self.note(t, || {
                format!(
                    "{id}: send {} ({channel}): skipped, environment variable `{var}` is not set",
                    template.name
                )
            });
            return Outcome::Skipped;
        }
        // An unsubscribe stops marketing on that channel; transactional
        // messages (an order confirmation) still go (docs/runner.md).
        if self.st.unsubscribed[template.channel] && template.marketing {
            self.stats.skipped_unsubscribed[tpl] += 1;
            self.note(t, || {
                format!(
                    "{id}: send {} ({channel}): skipped, unsubscribed from {channel}",
                    template.name
                )
            });
            return Outcome::Skipped;
        }
        if let Some(skip) = self.consent_skip(tpl, t) {
            self.note(t, || {
                format!("{id}: send {} ({channel}): {skip}", template.name)
            });
            return Outcome::Skipped;
        }
        // Marketing messages obey the whole policy; any message obeys the
        // quiet rules scoped to its channel (§12).
        if let Some(p) = &prog.pressure
            && (template.marketing
                || p.rules
                    .iter()
                    .any(|q| q.applies(template.channel, template.marketing)))
        {
            if template.marketing
                && p.drop
                && let Some(reason) = self.breaks_cap_or_gap(p, template.channel, t)
            {
                self.stats.dropped[tpl] += 1;
                self.st.pressured = true;
                self.note(t, || {
                    format!(
                        "{id}: send {} ({channel}): dropped, {reason}",
                        template.name
                    )
                });
                return Outcome::Dropped;
            }
            let (at, reason) = self.earliest(p, template.channel, template.marketing, t);
            if at > t
                && let Some(e) = template.expires
                && at > due.saturating_add(e)
            {
                self.stats.expired[tpl] += 1;
                // The pressure report is about marketing pressure: a task
                // held by `quiet task …` does not make a contact "over".
                self.st.pressured |= template.marketing;
                self.note(t, || {
                    format!(
                        "{id}: send {} ({channel}): expired, {reason} would defer it to {}, past its due time {} + expires {}",
                        template.name,
                        rfc3339(at),
                        rfc3339(due),
                        duration(e)
                    )
                });
                return Outcome::Dropped;
            }
            if at > t {
                if due == t {
                    self.stats.deferred[tpl] += 1;
                }
                self.st.pressured |= template.marketing;
                self.st.runs[r].block = Block::Deferred(due);
                self.note(t, || {
                    format!(
                        "{id}: send {} ({channel}): deferred to {}, {reason}",
                        template.name,
                        rfc3339(at)
                    )
                });
                return Outcome::Deferred(at);
            }
        }
        if template.marketing {
            self.st.ledger.push((t, template.channel));
        }
        let (run_id, scenario) = (self.st.runs[r].id, self.st.runs[r].scenario);
        self.st.sends.push((tpl, t, run_id));
        self.stats.sent[tpl] += 1;
        let locale = super::locale::variant(prog.plan, template.name, &self.st.contact);
        self.out.push(Message {
            at: t,
            contact: self.st.dense,
            scenario: scenario as u16,
            step: label as u32,
            template: tpl as u16,
            deferred_from: (due != t).then_some(due),
            locale,
        });
        self.note(t, || {
            let sent = match super::locale::name(prog.plan, locale) {
                Some(l) => format!("sent in `{l}`"),
                None => "sent".to_string(),
            };
            if due != t {
                format!(
                    "{id}: send {} ({channel}): {sent} (due {})",
                    template.name,
                    rfc3339(due)
                )
            } else {
                format!("{id}: send {} ({channel}): {sent}", template.name)
            }
        });
        if let Some(f) = self.forecast {
            let depth = self.st.runs[r].depth;
            if usize::from(depth) >= MAX_FORECAST_DEPTH {
                self.stats.forecast_depth_limited += 1;
                self.note(t, || {
                    format!("{id}: --engagement draws no reactions: {depth} drawn events led to this send")
                });
            } else if self.st.drawn >= MAX_DRAWN_PER_CONTACT {
                self.stats.forecast_capped += 1;
            } else {
                for ev in f.reactions(&self.st.contact.id, id, template, t, run_id) {
                    if ev.at < self.until && self.st.drawn < MAX_DRAWN_PER_CONTACT {
                        self.st.drawn += 1;
                        self.stats.forecast_events += 1;
                        self.push_event(ev, 0, depth + 1);
                    }
                }
            }
        }
        Outcome::Sent(t)
    }

    /// The cap or gap a marketing send on `channel` at `t` would break.
    fn breaks_cap_or_gap(
        &self,
        p: &super::program::Pressure,
        channel: usize,
        t: i64,
    ) -> Option<String> {
        if let Some(g) = p.gap
            && let Some(last) = self.st.ledger.iter().map(|(at, _)| *at).max()
            && t < last.saturating_add(g)
        {
            return Some(format!("gap {} since the last message", duration(g)));
        }
        for cap in &p.caps {
            if cap.channel.is_some_and(|c| c != channel) {
                continue;
            }
            let n = self
                .st
                .ledger
                .iter()
                .filter(|(at, ch)| cap.channel.is_none_or(|c| c == *ch) && *at > t - cap.per)
                .count();
            if n >= cap.max {
                return Some(format!(
                    "cap {} max {} per {}",
                    cap.channel.map_or("all", |c| CHANNELS[c]),
                    cap.max,
                    duration(cap.per)
                ));
            }
        }
        None
    }

    /// The earliest instant at or after `t` at which a marketing send on
    /// `channel` keeps every cap, the gap and quiet hours, with the reason
    /// of the last move.
    fn earliest(
        &self,
        p: &super::program::Pressure,
        channel: usize,
        marketing: bool,
        t: i64,
    ) -> (i64, String) {
        let mut x = t;
        let mut reason = String::new();
        // With §12's quiet rules, every rule that moved the send is named
        // (`quiet weekends`, then quiet hours); else the last one, as in v1.
        let mut chain: Vec<String> = Vec::new();
        let mut by_rule = false;
        for _ in 0..1000 {
            let mut moved = false;
            for rule in p.rules.iter().filter(|q| q.applies(channel, marketing)) {
                let y = rule.first_allowed(x, &self.tz);
                if y > x {
                    x = y;
                    reason = rule.label.clone();
                    chain.push(reason.clone());
                    by_rule = true;
                    moved = true;
                }
            }
            if !marketing {
                if !moved {
                    break;
                }
                continue;
            }
            if let Some(g) = p.gap
                && let Some(last) = self.st.ledger.iter().map(|(at, _)| *at).max()
                && x < last.saturating_add(g)
            {
                x = last.saturating_add(g);
                reason = format!("gap {} since the last message", duration(g));
                moved = true;
            }
            for cap in &p.caps {
                if cap.channel.is_some_and(|c| c != channel) || cap.max == 0 {
                    continue;
                }
                let mut inside: Vec<i64> = self
                    .st
                    .ledger
                    .iter()
                    .filter(|(at, ch)| cap.channel.is_none_or(|c| c == *ch) && *at > x - cap.per)
                    .map(|(at, _)| *at)
                    .collect();
                if inside.len() >= cap.max {
                    inside.sort_unstable();
                    // The send must wait until enough of them leave the window.
                    x = inside[inside.len() - cap.max].saturating_add(cap.per);
                    reason = format!(
                        "cap {} max {} per {}",
                        cap.channel.map_or("all", |c| CHANNELS[c]),
                        cap.max,
                        duration(cap.per)
                    );
                    moved = true;
                }
            }
            if let Some(q) = &p.quiet {
                let y = q.first_allowed(x, &self.tz);
                if y > x {
                    x = y;
                    reason = "quiet hours".to_string();
                    moved = true;
                }
            }
            if moved && chain.last() != Some(&reason) {
                chain.push(reason.clone());
            }
            if !moved {
                break;
            }
        }
        if by_rule && x > t {
            let mut named: Vec<&str> = Vec::new();
            for r in &chain {
                if !named.contains(&r.as_str()) {
                    named.push(r);
                }
            }
            reason = format!(
                "{} ({} local)",
                named.join(", then "),
                local_text(x, &self.tz)
            );
        }
        (x, reason)
    }

    fn wake(&mut self, wake: Wake, t: i64) {
        match wake {
            Wake::Run(r, g) => {
                let r = r as usize;
                let run = &self.st.runs[r];
                if !run.active || run.generation != g {
                    return;
                }
                match run.block {
                    Block::Until(i, _) => {
                        let step = &self.prog.steps[i];
                        let id = step.id;
                        self.note(t, || match &step.op {
                            Op::WaitUntil(until, ..) => {
                                format!("{id}: wait until `{}`: timed out", expr_text(until))
                            }
                            _ => format!("{id}: wait until: timed out"),
                        });
                        self.st.runs[r].block = Block::None;
                    }
                    Block::Sleep(i) => {
                        let id = self.prog.steps[i].id;
                        self.note(t, || format!("{id}: wait ended"));
                        self.st.runs[r].block = Block::None;
                    }
                    Block::UntilTime(i, _) => {
                        let step = &self.prog.steps[i];
                        let id = step.id;
                        self.note(t, || match &step.op {
                            Op::WaitUntilTime(until, _) => {
                                format!(
                                    "{id}: wait until `{}`: the time has come",
                                    term_text(until)
                                )
                            }
                            _ => format!("{id}: wait until: the time has come"),
                        });
                        self.st.runs[r].block = Block::None;
                    }
                    Block::None | Block::Deferred(_) => {}
                }
                self.advance(r, t);
            }
            Wake::Recheck => {
                if self.st.recheck_at == Some(t) {
                    self.st.recheck_at = None;
                }
            }
            Wake::Every(s, k) => {
                let s = s as usize;
                if let Some(&Trig::Every(days, clock)) =
                    self.prog.scenarios[s].triggers.get(k as usize)
                {
                    let name = self.prog.scenarios[s].name;
                    self.note(t, || match days {
                        Days::Month(_) | Days::MonthLast => {
                            format!("{name}: `every month` trigger fired")
                        }
                        _ => format!("{name}: `every` trigger fired"),
                    });
                    self.fire(s);
                    if let Some(next) = calendar::next(days, clock, &self.tz, t + 1) {
                        self.schedule(next, Wake::Every(s as u32, k));
                    }
                }
            }
            Wake::Once(s, k) => {
                let sc = &self.prog.scenarios[s as usize];
                let name = sc.name;
                let local = matches!(sc.triggers.get(k as usize), Some(Trig::OnceLocal(..)));
                self.note(t, || {
                    if local {
                        format!("{name}: `once at … local` trigger fired")
                    } else {
                        format!("{name}: `once at` trigger fired")
                    }
                });
                self.fire(s as usize);
            }
            Wake::Flush => {
                self.st.flush_at = None;
                let mut pending = std::mem::take(&mut self.st.pending);
                // Higher priority first; equal priorities in the order
                // they came due (declaration order for runs started
                // together).
                let arrived: Option<Vec<u64>> = self
                    .trace
                    .is_some()
                    .then(|| pending.iter().map(|p| p.1).collect());
                pending.sort_by_key(|&(priority, order, ..)| (priority, order));
                if let Some(arrived) = arrived
                    && pending.iter().map(|p| p.1).ne(arrived)
                {
                    let prog = self.prog;
                    let order: Vec<String> = pending
                        .iter()
                        .map(|&(priority, _, _, _, tpl)| {
                            let name = prog.templates[tpl].name;
                            match priority {
                                0 => format!("{name} (high)"),
                                2 => format!("{name} (low)"),
                                _ => name.to_string(),
                            }
                        })
                        .collect();
                    self.note(t, || {
                        format!("sends due now go out by priority: {}", order.join(", "))
                    });
                }
                for (_, _, r, g, _) in pending {
                    if !self.st.runs[r].active || self.st.runs[r].generation != g {
                        continue;
                    }
                    self.st.releasing = Some(r);
                    self.advance(r, t);
                    self.st.releasing = None;
                }
            }
            Wake::Date(s, k) => self.date_wake(s as usize, k as usize, t),
        }
    }

    /// The instant `wait until TIME` waits for; `None` when absent.
    fn until_instant(&self, until: &Term, t: i64) -> Option<i64> {
        let v = self.cx(t, None).time_value(until)?;
        dates::instant_of(v, &self.tz)
    }

    /// An `updated` event: the contact's fields it gives take their new
    /// values; waits and date triggers that read them are re-timed.
    fn update(&mut self, ev: &Event, t: i64) {
        let mut names: Vec<&str> = ev.fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        self.note(t, || format!("event `updated`: {}", names.join(", ")));
        for (k, v) in &ev.fields {
            self.st.contact.fields.insert(k.clone(), v.clone());
        }
        if let Some(f) = self.prog.tz_field
            && let Some(Value::Text(z)) = ev.fields.get(f)
            && let Some(tz) = crate::tzdb::zone(z)
        {
            self.st.tz_name = Some(z.clone());
            self.st.tz = Some(tz.clone());
            self.tz = tz;
        }
        self.touch_state();
        for r in 0..self.st.runs.len() {
            let Block::UntilTime(i, old) = self.st.runs[r].block else {
                continue;
            };
            if !self.st.runs[r].active {
                continue;
            }
            let Op::WaitUntilTime(until, _) = &self.prog.steps[i].op else {
                continue;
            };
            let id = self.prog.steps[i].id;
            let what = term_text(until);
            let new = self.until_instant(until, t);
            if new == Some(old) {
                continue;
            }
            self.stats.wait_until_retimed[self.st.runs[r].scenario] += 1;
            match new {
                Some(x) if x > t => {
                    self.st.runs[r].block = Block::UntilTime(i, x);
                    self.note(t, || {
                        format!(
                            "{id}: wait until `{what}`: re-timed to {} because the date changed",
                            rfc3339(x)
                        )
                    });
                    self.schedule_run(r, x);
                }
                _ => {
                    self.note(t, || match new {
                        Some(x) => format!(
                            "{id}: wait until `{what}`: the date changed to {}, which has passed: goes on at once",
                            rfc3339(x)
                        ),
                        None => format!("{id}: wait until `{what}`: the date is now absent: goes on at once"),
                    });
                    self.st.runs[r].block = Block::None;
                    self.st.runs[r].generation += 1;
                    self.advance(r, t);
                }
            }
        }
        let prog = self.prog;
        for (s, sc) in prog.scenarios.iter().enumerate() {
            for (k, trig) in sc.triggers.iter().enumerate() {
                if matches!(trig, Trig::At(..) | Trig::Yearly(..)) {
                    self.schedule_date(s, k, t, true);
                }
            }
        }
    }

    /// Schedules the next firing of scenario `s`'s `at` or `yearly`
    /// trigger from `now`; `changed`: a field changed (the trace says why
    /// when the firing moves).
    fn schedule_date(&mut self, s: usize, k: usize, now: i64, changed: bool) {
        let next = match self.prog.scenarios[s].triggers[k] {
            Trig::At(term, clock) => match self.cx(now, None).time_value(term) {
                // At most once per value of the instant.
                Some(v) if !self.st.date_fired[s][k].contains(&v) => {
                    dates::at_fire(v, clock, &self.tz).filter(|f| *f >= now)
                }
                _ => None,
            },
            Trig::Yearly(field, clock) => {
                let v = match self.st.contact.fields.get(field) {
                    Some(Value::Timestamp(x)) => Some(TimeValue::Instant(*x)),
                    Some(Value::Date(d)) => Some(TimeValue::Date(*d)),
                    _ => None,
                };
                let after = self.st.date_last[s][k].map_or(now, |l| now.max(l + 1));
                v.and_then(|v| dates::next_yearly(v, clock, &self.tz, after))
            }
            _ => return,
        };
        if next == self.st.date_next[s][k] {
            if changed
                && next.is_none()
                && let Trig::At(term, _) = self.prog.scenarios[s].triggers[k]
                && let Some(v) = self.cx(now, None).time_value(term)
                && self.st.date_fired[s][k].contains(&v)
            {
                let name = self.prog.scenarios[s].name;
                let trig = self
                    .prog
                    .plan
                    .scenarios
                    .get(name)
                    .and_then(|sc| crate::render::flow::triggers(sc).nth(k).map(trigger_text));
                self.note(now, || {
                    format!(
                        "{name}: trigger `{}` already fired for this date: not scheduled again",
                        trig.unwrap_or_default()
                    )
                });
            }
            return;
        }
        self.st.date_next[s][k] = next;
        if let Some(at) = next {
            self.schedule(at, Wake::Date(s as u32, k as u32));
        }
        if changed {
            self.stats.date_rescheduled[s] += 1;
            let name = self.prog.scenarios[s].name;
            let trig = self
                .prog
                .plan
                .scenarios
                .get(name)
                .and_then(|sc| crate::render::flow::triggers(sc).nth(k).map(trigger_text));
            self.note(now, || match next {
                Some(at) => format!(
                    "{name}: trigger `{}` rescheduled to {} because the date changed",
                    trig.unwrap_or_default(),
                    rfc3339(at)
                ),
                None => format!(
                    "{name}: trigger `{}` no longer scheduled: the date changed (absent, passed or already fired for)",
                    trig.unwrap_or_default()
                ),
            });
        }
    }

    /// An `at` or `yearly` trigger's wake-up: fires when still current.
    fn date_wake(&mut self, s: usize, k: usize, t: i64) {
        if self.st.date_next[s][k] != Some(t) {
            return;
        }
        self.st.date_next[s][k] = None;
        let name = self.prog.scenarios[s].name;
        match self.prog.scenarios[s].triggers[k] {
            Trig::At(term, _) => {
                if let Some(v) = self.cx(t, None).time_value(term) {
                    self.st.date_fired[s][k].push(v);
                }
                self.note(t, || format!("{name}: `at` trigger fired"));
                self.fire(s);
            }
            Trig::Yearly(field, _) => {
                self.st.date_last[s][k] = Some(t);
                self.note(t, || format!("{name}: `yearly {field}` trigger fired"));
                self.fire(s);
                self.schedule_date(s, k, t + 1, false);
            }
            _ => {}
        }
    }

    /// Re-evaluates what may have changed at `t` until nothing does.
    fn settle(&mut self, t: i64) {
        for _ in 0..64 {
            let mut changed = false;
            for r in 0..self.st.runs.len() {
                if !self.st.runs[r].active {
                    continue;
                }
                let s = self.st.runs[r].scenario;
                let id = self.st.runs[r].id;
                if let Some(x) = self.prog.scenarios[s].exit_when
                    && self.holds(x, t, Some(id))
                {
                    self.end(r, t, End::ExitWhen);
                    changed = true;
                    continue;
                }
                if let Block::Until(i, _) = self.st.runs[r].block
                    && let Op::WaitUntil(until, ..) = &self.prog.steps[i].op
                    && self.holds(until, t, Some(id))
                {
                    let sid = self.prog.steps[i].id;
                    self.note(t, || {
                        format!(
                            "{sid}: wait until `{}`: the condition holds",
                            expr_text(until)
                        )
                    });
                    self.st.runs[r].block = Block::None;
                    self.st.runs[r].generation += 1;
                    self.advance(r, t);
                    changed = true;
                }
            }
            for k in 0..self.prog.watched.len() {
                if self.st.watch_next[k].is_some_and(|x| x <= t) {
                    self.st.dirty[k] = true;
                }
                if !self.st.dirty[k] {
                    continue;
                }
                self.st.dirty[k] = false;
                let w = &self.prog.watched[k];
                let now = self.holds(w.expr, t, None);
                self.st.watch_next[k] = self.cx(t, None).next_change(w.expr);
                if now && !self.st.watched[k] {
                    for &s in &w.scenarios {
                        let name = self.prog.scenarios[s].name;
                        self.note(t, || {
                            format!("{name}: trigger `entered` fired (the segment became true)")
                        });
                        self.fire(s);
                    }
                    changed = true;
                }
                self.st.watched[k] = now;
            }
            // Starting scenarios can change lists, tags and runs: look again.
            changed |= !self.st.fired.is_empty();
            self.start_fired(t);
            if !changed {
                break;
            }
        }
        self.plan_recheck(t);
    }

    /// Schedules a wake-up for when a time bound may change a watched
    /// condition with no event.
    fn plan_recheck(&mut self, t: i64) {
        let mut best: Option<i64> = None;
        let mut consider = |x: Option<i64>| {
            if let Some(x) = x
                && best.is_none_or(|b| x < b)
            {
                best = Some(x);
            }
        };
        for x in &self.st.watch_next {
            consider(*x);
        }
        for run in &self.st.runs {
            if !run.active {
                continue;
            }
            if let Some(x) = self.prog.scenarios[run.scenario].exit_when {
                consider(self.cx(t, Some(run.id)).next_change(x));
            }
            if let Block::Until(i, _) = run.block
                && let Op::WaitUntil(until, ..) = &self.prog.steps[i].op
            {
                consider(self.cx(t, Some(run.id)).next_change(until));
            }
        }
        if let Some(at) = best
            && at < self.until
            && self.st.recheck_at.is_none_or(|r| at < r || r <= t)
        {
            self.st.recheck_at = Some(at);
            self.schedule(at, Wake::Recheck);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_buckets_are_stable_and_spread() {
        assert_eq!(
            split_bucket("nav_offer", "c1"),
            split_bucket("nav_offer", "c1")
        );
        let mut seen = [0u32; 100];
        for i in 0..10_000 {
            seen[split_bucket("s", &format!("c{i}")) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (50..=150).contains(n)), "{seen:?}");
    }
}
