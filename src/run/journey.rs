//! One semantics, two hosts: a contact's journey as a value advanced by
//! one function.
//!
//! A contact's whole runner state is one [`ContactState`] (serde
//! `Serialize` + `Deserialize`). [`Journey::step`] advances it by one
//! [`Input`], an event of the contact or "the clock reached T", and
//! returns the instant of the state's next wake-up; what the input caused
//! goes to [`Effects`] (outbox messages, trace lines, counters). The step
//! does no I/O and touches no global state: the host owns the loop, the
//! clock, the persistence and the order of contacts. `relance run` is the
//! in-memory host ([`super::simulate`]); a durable runner keeps the state
//! and the history in a database and calls the same function, so there is
//! no second implementation of the semantics. `ARCHITECTURE.md` ("One
//! semantics, two hosts") says who owns what.
//!
//! What the host gives each step, besides the state:
//! - the program ([`Journey::new`]: the compiled plan, the window
//!   `[from, until)`, the `--engagement` forecast if any);
//! - the contact's **history**: the events the step applied so far, in the
//!   order it applied them (what the evaluator reads: aggregates,
//!   engagement, `scope: run`). The step appends to it every event it
//!   applies (history events before `from`, input events with the run
//!   they belong to, drawn events); the host stores the vector as it
//!   leaves it and gives it back unchanged;
//! - the inputs in time order: the contact's events sorted by `at` (ties
//!   in the order they were received), each also a clock tick (everything
//!   due before it is done first), and `Clock(T)` when no event before `T`
//!   will come. Events before `from` are history (they fire nothing);
//!   events at or after `until` are not inputs. An event whose `at` lies
//!   before the state's present (it came late) is applied at the present:
//!   time never goes back for a contact.
//!
//! A state loaded from storage goes through [`Journey::check`] first: one
//! that does not fit the program (damaged, or made with another plan) is
//! an error, not a panic.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::forecast::Forecast;
use super::program::Program;
use super::sim::{Sim, Window};
use super::stats::Stats;
use crate::eval::{Contact, Event, Value};
use crate::syntax::ast::TimeValue;

pub use super::sim::{ContactState, Message};

/// One input of a contact's journey.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Input {
    /// An event of the contact; `line`: where the host read it (its line
    /// in the events file, for the report of ignored events; 0: none).
    Event { event: Event, line: u32 },
    /// The clock reached this instant: no input before it will come, and
    /// everything due before it is done.
    Clock(i64),
}

/// Where a step's effects go: the host's outbox, trace and counters
/// (added to, so that a host sums them over contacts and steps).
pub struct Effects<'a> {
    /// Messages made, in the order they were made.
    pub outbox: &'a mut Vec<Message>,
    /// Counters for the summary.
    pub stats: &'a mut Stats,
    /// The contact's journey step by step, when the host traces it.
    pub trace: Option<&'a mut Vec<String>>,
}

/// What every contact's journey shares: the program and the window.
#[derive(Clone, Copy)]
pub struct Journey<'a, 'p> {
    prog: &'a Program<'p>,
    window: Window,
    forecast: Option<&'a Forecast>,
}

impl<'a, 'p> Journey<'a, 'p> {
    /// Journeys of `program` over `[from, until)` (a host without an end
    /// passes `i64::MAX`), with drawn reactions when `forecast` is given.
    pub fn new(
        program: &'a Program<'p>,
        from: i64,
        until: i64,
        forecast: Option<&'a Forecast>,
    ) -> Self {
        Journey {
            prog: program,
            window: Window { from, until },
            forecast,
        }
    }

    /// The state of a contact before any input; `dense`: the host's number
    /// for it (what its messages' `contact` says).
    pub fn start(&self, dense: u32, contact: Contact) -> ContactState {
        ContactState::new(self.prog, dense, contact)
    }

    /// Checks that a state loaded from storage fits this journey's
    /// program (every index it holds is one of the program's): a host
    /// calls it before stepping a state it did not make in this process.
    pub fn check(&self, state: &ContactState) -> Result<(), String> {
        state.fits(self.prog)
    }

    /// Empty counters for this program's [`Effects`].
    pub fn stats(&self) -> Stats {
        Stats::new(self.prog)
    }

    /// Advances `state` by `input`; `history`: the contact's applied
    /// events (see the module's documentation). Returns the instant of the
    /// state's next wake-up: the host hands it `Input::Clock(T)` with
    /// `T` past that instant (or an event at or after it) to have it done.
    pub fn step(
        &self,
        state: &mut ContactState,
        history: &mut Vec<Event>,
        input: Input,
        fx: &mut Effects,
    ) -> Option<i64> {
        let mut sim = self.sim(state, history, fx);
        match input {
            Input::Event { event, line } => sim.input(event, line),
            Input::Clock(t) => sim.advance_to(t),
        }
        state.next_wake(self.window.from)
    }

    /// Moves `state`, made with program `old`, onto this journey's
    /// program at the state's present (a plan upgrade; see
    /// `run::sim::upgrade` for the rules). Returns the runs that ended
    /// because their scenario, step or touch is gone, as (scenario, step
    /// id) of the old plan.
    pub fn upgrade(
        &self,
        old: &Program,
        state: &mut ContactState,
        history: &mut Vec<Event>,
        fx: &mut Effects,
    ) -> Vec<(String, String)> {
        let rebase = state.upgrade(old, self.prog);
        self.sim(state, history, fx).rebase(&rebase);
        rebase.ended
    }

    /// The end of the window, once the clock reached `until`: counts the
    /// runs still active and the contact's pressure state. Changes nothing.
    pub fn finish(&self, state: &mut ContactState, history: &mut Vec<Event>, fx: &mut Effects) {
        self.sim(state, history, fx).finish();
    }

    fn sim<'s>(
        &'s self,
        state: &'s mut ContactState,
        history: &'s mut Vec<Event>,
        fx: &'s mut Effects,
    ) -> Sim<'s, 'p> {
        Sim::new(
            self.prog,
            self.window,
            self.forecast,
            state,
            history,
            &mut *fx.outbox,
            &mut *fx.stats,
            fx.trace.as_deref_mut(),
        )
    }

    /// `relance run`'s host for one contact: its events in order (sorted
    /// by `at`, then line), then the window's end.
    ///
    /// `persist`: the host a durable runner is, instead: the state and the
    /// history go through JSON and back before every input (`Err` when
    /// they do not come back exactly), and the clock moves one wake-up at
    /// a time, as `next_wake` asks, up to each event. The outcome must be
    /// the same.
    pub(crate) fn run_contact(
        &self,
        dense: u32,
        contact: Contact,
        (events, lines): (Vec<Event>, Vec<u32>),
        fx: &mut Effects,
        persist: bool,
    ) -> Result<(), String> {
        let mut state = self.start(dense, contact);
        let mut history = Vec::with_capacity(events.len());
        let (from, until) = (self.window.from, self.window.until);
        let end = until.max(from);
        let mut wake = Some(from);
        for (event, line) in events.into_iter().zip(lines) {
            if event.at >= end {
                break;
            }
            if persist {
                // Every wake-up before the event, one instant at a time
                // (not at the event's instant: its events come first).
                while let Some(w) = wake
                    && w < event.at.min(until)
                {
                    reload(self, &mut state, &mut history)?;
                    wake = self.step(&mut state, &mut history, Input::Clock(w + 1), fx);
                }
                reload(self, &mut state, &mut history)?;
            }
            wake = self.step(&mut state, &mut history, Input::Event { event, line }, fx);
        }
        if persist {
            while let Some(w) = wake
                && w < until
            {
                reload(self, &mut state, &mut history)?;
                wake = self.step(&mut state, &mut history, Input::Clock(w + 1), fx);
            }
            reload(self, &mut state, &mut history)?;
        }
        self.step(&mut state, &mut history, Input::Clock(until), fx);
        if persist {
            reload(self, &mut state, &mut history)?;
        }
        self.finish(&mut state, &mut history, fx);
        Ok(())
    }
}

/// Sends the state and the history through JSON and back, and checks that
/// they come back exactly (the same JSON once serialised again) and fit
/// the program.
fn reload(
    journey: &Journey,
    state: &mut ContactState,
    history: &mut Vec<Event>,
) -> Result<(), String> {
    let text = serde_json::to_string(&(&*state, &*history)).map_err(|e| e.to_string())?;
    let (s, h): (ContactState, Vec<Event>) =
        serde_json::from_str(&text).map_err(|e| format!("the state does not load: {e}"))?;
    let again = serde_json::to_string(&(&s, &h)).map_err(|e| e.to_string())?;
    if again != text {
        return Err(format!(
            "the state did not come back exactly:\n{text}\n{again}"
        ));
    }
    journey.check(&s)?;
    *state = s;
    *history = h;
    Ok(())
}

// The serde form of the evaluator's values, which only a journey's state
// persists. Numbers are written as Rust's shortest round-trip text, so
// that they load back to the same bits (JSON numbers may not); dates as
// `YYYY-MM-DD`.

#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum ValueOut<'a> {
    Text(&'a str),
    Number(String),
    Bool(bool),
    Timestamp(i64),
    Date(String),
    Set(&'a BTreeSet<String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ValueIn {
    Text(String),
    Number(String),
    Bool(bool),
    Timestamp(i64),
    Date(String),
    Set(BTreeSet<String>),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Text(t) => ValueOut::Text(t),
            Value::Number(n) => ValueOut::Number(format!("{n:?}")),
            Value::Bool(b) => ValueOut::Bool(*b),
            Value::Timestamp(t) => ValueOut::Timestamp(*t),
            Value::Date(d) => ValueOut::Date(d.to_string()),
            Value::Set(x) => ValueOut::Set(x),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        Ok(match ValueIn::deserialize(d)? {
            ValueIn::Text(t) => Value::Text(t),
            ValueIn::Number(n) => Value::Number(n.parse().map_err(D::Error::custom)?),
            ValueIn::Bool(b) => Value::Bool(b),
            ValueIn::Timestamp(t) => Value::Timestamp(t),
            ValueIn::Date(x) => Value::Date(x.parse().map_err(D::Error::custom)?),
            ValueIn::Set(x) => Value::Set(x),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TimeValueRepr {
    Instant(i64),
    Date(String),
}

impl Serialize for TimeValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TimeValue::Instant(t) => TimeValueRepr::Instant(*t),
            TimeValue::Date(d) => TimeValueRepr::Date(d.to_string()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for TimeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        Ok(match TimeValueRepr::deserialize(d)? {
            TimeValueRepr::Instant(t) => TimeValue::Instant(t),
            TimeValueRepr::Date(x) => TimeValue::Date(x.parse().map_err(D::Error::custom)?),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Contact")]
struct ContactDef {
    id: String,
    fields: BTreeMap<String, Value>,
    lists: BTreeSet<String>,
    tags: BTreeSet<String>,
}

impl Serialize for Contact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ContactDef::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Contact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ContactDef::deserialize(d)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Event")]
struct EventDef {
    name: String,
    at: i64,
    fields: BTreeMap<String, Value>,
    run: Option<u64>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        EventDef::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        EventDef::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_bits(v: &Value) -> String {
        match v {
            Value::Number(n) => format!("number {:x}", n.to_bits()),
            other => format!("{other:?}"),
        }
    }

    /// A contact's state, with values of every kind (and numbers JSON
    /// would not give back exactly), goes through JSON and comes back the
    /// same, down to the bits of its numbers; and the loaded state goes on
    /// as the original does.
    #[test]
    fn a_state_round_trips_through_serde_exactly() {
        let plan = super::super::tests::plan(3600);
        let program = Program::new(&plan).unwrap();
        let from = 1_793_000_000;
        let journey = Journey::new(&program, from, from + 10 * 86_400, None);
        let numbers = [
            0.1 + 0.2,
            1e300,
            -0.0,
            5e-324,
            f64::NAN,
            f64::INFINITY,
            12.0,
        ];
        let mut fields: BTreeMap<String, Value> = numbers
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("n{i}"), Value::Number(*n)))
            .collect();
        fields.insert("t".into(), Value::Text("é \"q\"\n".into()));
        fields.insert("b".into(), Value::Bool(true));
        fields.insert("at".into(), Value::Timestamp(-1));
        fields.insert("d".into(), Value::Date(jiff::civil::date(2000, 2, 29)));
        fields.insert(
            "s".into(),
            Value::Set(["x".to_string(), "y".to_string()].into()),
        );
        let contact = Contact {
            id: "c".into(),
            fields: fields.clone(),
            lists: ["leads".to_string()].into(),
            tags: ["vip".to_string()].into(),
        };
        let mut state = journey.start(0, contact);
        let mut history = Vec::new();
        let mut stats = journey.stats();
        let mut outbox = Vec::new();
        let mut fx = Effects {
            outbox: &mut outbox,
            stats: &mut stats,
            trace: None,
        };
        let event = |name: &str, at: i64| Event {
            name: name.into(),
            at,
            fields: fields.clone(),
            run: None,
        };
        journey.step(
            &mut state,
            &mut history,
            Input::Event {
                event: event("old", from - 5),
                line: 1,
            },
            &mut fx,
        );
        let mut joined = event("joined", from + 60);
        joined
            .fields
            .insert("list".into(), Value::Text("leads".into()));
        let mut left = joined.clone();
        left.name = "left".into();
        journey.step(
            &mut state,
            &mut history,
            Input::Event {
                event: left,
                line: 2,
            },
            &mut fx,
        );
        let wake = journey.step(
            &mut state,
            &mut history,
            Input::Event {
                event: joined,
                line: 3,
            },
            &mut fx,
        );
        // Run `r` waits for `opened(a)` until an hour after it joined.
        assert_eq!(wake, Some(from + 60 + 3600));
        let text = serde_json::to_string(&(&state, &history)).unwrap();
        let (mut back, mut back_history): (ContactState, Vec<Event>) =
            serde_json::from_str(&text).unwrap();
        assert_eq!(
            serde_json::to_string(&(&back, &back_history)).unwrap(),
            text
        );
        for (k, v) in &fields {
            assert_eq!(value_bits(&back.contact().fields[k]), value_bits(v), "{k}");
            assert_eq!(value_bits(&back_history[0].fields[k]), value_bits(v), "{k}");
        }
        // Both go on alike: the timeout sends `b` an hour after `a`.
        let mut other = Vec::new();
        let mut fx2 = Effects {
            outbox: &mut other,
            stats: &mut stats,
            trace: None,
        };
        journey.step(
            &mut back,
            &mut back_history,
            Input::Clock(from + 86_400),
            &mut fx2,
        );
        let mut fx = Effects {
            outbox: &mut outbox,
            stats: &mut stats,
            trace: None,
        };
        journey.step(
            &mut state,
            &mut history,
            Input::Clock(from + 86_400),
            &mut fx,
        );
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox[1..], other[..]);
        assert_eq!(other[0].at, from + 60 + 3600);
    }

    /// A stored state that does not fit the program (damaged, or made
    /// with another plan) is an error before any step, never a panic.
    #[test]
    fn a_state_that_does_not_fit_the_plan_is_refused() {
        let plan = super::super::tests::plan(3600);
        let program = Program::new(&plan).unwrap();
        let from = 1_793_000_000;
        let journey = Journey::new(&program, from, from + 10 * 86_400, None);
        let mut state = journey.start(0, Contact::default());
        let mut history = Vec::new();
        let mut stats = journey.stats();
        let mut outbox = Vec::new();
        let mut fx = Effects {
            outbox: &mut outbox,
            stats: &mut stats,
            trace: None,
        };
        let mut joined = Event {
            name: "joined".into(),
            at: from + 60,
            fields: BTreeMap::new(),
            run: None,
        };
        joined
            .fields
            .insert("list".into(), Value::Text("leads".into()));
        journey.step(
            &mut state,
            &mut history,
            Input::Event {
                event: joined,
                line: 1,
            },
            &mut fx,
        );
        assert_eq!(journey.check(&state), Ok(()));
        let text = serde_json::to_string(&state).unwrap();
        for (from_text, to_text, what) in [
            ("\"scenario\":0", "\"scenario\":7", "a run's scenario"),
            (
                "\"active\":[0]",
                "\"active\":[0,null]",
                "the number of scenarios",
            ),
            ("\"active\":[0]", "\"active\":[5]", "an index out of range"),
            ("\"Until\":[1,", "\"Until\":[9,", "where a run waits"),
        ] {
            assert!(text.contains(from_text), "{from_text} in {text}");
            let damaged: ContactState =
                serde_json::from_str(&text.replacen(from_text, to_text, 1)).unwrap();
            let err = journey.check(&damaged).unwrap_err();
            assert!(err.ends_with(what), "{err}");
        }
    }
}
