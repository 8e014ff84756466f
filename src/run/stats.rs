//! Counters of a run, kept per worker and merged: the summary (§10) and the
//! pressure report (§9) are built from them.

use super::program::Program;

/// Why an input event inside the window changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// An engagement event (`opened`, `clicked`, …) naming a template never
    /// sent to the contact.
    NeverSent,
    /// `joined`/`left` naming a list the plan does not have.
    UnknownList,
}

impl Ignored {
    pub const ALL: [Ignored; 2] = [Ignored::NeverSent, Ignored::UnknownList];

    /// The key in the summary JSON.
    pub fn key(self) -> &'static str {
        match self {
            Ignored::NeverSent => "never_sent",
            Ignored::UnknownList => "unknown_list",
        }
    }

    /// What it means, for people.
    pub fn text(self) -> &'static str {
        match self {
            Ignored::NeverSent => "the template was never sent to this contact",
            Ignored::UnknownList => "the plan has no such list",
        }
    }
}

/// One ignored input event, to show where it is.
#[derive(Clone, Debug)]
pub struct IgnoredEvent {
    pub line: u32,
    pub contact: String,
    pub reason: Ignored,
    /// The event and what it names (``event `opened` on `welcome` ``).
    pub what: String,
}

/// How many ignored events are shown one by one.
pub const IGNORED_SHOWN: usize = 5;

#[derive(Clone, Debug, Default)]
pub struct Stats {
    // Per scenario.
    pub entries: Vec<u64>,
    pub completed: Vec<u64>,
    pub exited: Vec<u64>,
    pub exit_steps: Vec<u64>,
    pub active_at_end: Vec<u64>,
    pub ignored_active: Vec<u64>,
    pub ignored_reentry: Vec<u64>,
    pub ignored_audience: Vec<u64>,
    pub ignored_instant: Vec<u64>,
    /// Per scenario, per goal.
    pub goals: Vec<Vec<u64>>,
    /// Per scenario: `wait until TIME` steps that went on at once because
    /// the time had passed, or was absent; waits re-timed because the date
    /// changed; `at`/`yearly` triggers rescheduled because the date changed.
    pub wait_until_passed: Vec<u64>,
    pub wait_until_absent: Vec<u64>,
    pub wait_until_retimed: Vec<u64>,
    pub date_rescheduled: Vec<u64>,
    // Per template.
    pub sent: Vec<u64>,
    pub skipped_no_address: Vec<u64>,
    pub skipped_unsubscribed: Vec<u64>,
    pub deferred: Vec<u64>,
    pub dropped: Vec<u64>,
    /// Webhook sends skipped: a header's environment variable is not set.
    pub skipped_env_missing: Vec<u64>,
    // Per cadence.
    pub cadence_stops: Vec<u64>,
    /// Input events applied inside the window.
    pub applied_events: u64,
    /// Input events before `--from`.
    pub history_events: u64,
    /// Input events that name something this contact never got (an
    /// engagement on a template never sent, a list of no plan).
    pub ignored_events: u64,
    /// Ignored events per [`Ignored`] reason.
    pub ignored_by_reason: [u64; Ignored::ALL.len()],
    /// The first ignored events in the events file (by line), at most
    /// [`IGNORED_SHOWN`].
    pub ignored_first: Vec<IgnoredEvent>,
    /// Events drawn by `--engagement`.
    pub forecast_events: u64,
    /// Messages that drew no reactions: sent by a run that
    /// `MAX_FORECAST_DEPTH` drawn events led to.
    pub forecast_depth_limited: u64,
    /// Messages that drew no reactions: the contact had its
    /// `MAX_DRAWN_PER_CONTACT` drawn events.
    pub forecast_capped: u64,
    /// Contacts under, balanced and over pressure (§9).
    pub pressure: [u64; 3],
    /// Per template: marketing sends skipped because the channel's
    /// `consent` rule did not hold.
    pub skipped_no_consent: Vec<u64>,
    /// Per scenario, per goal: the sum of a `value` goal's field over the
    /// goal events reached, in millionths (exact, so that the sum does not
    /// depend on the order of the contacts or the threads).
    pub goal_values: Vec<Vec<i128>>,
    /// Per template: deferred past `expires`, dropped.
    pub expired: Vec<u64>,
    /// Per cadence: touches skipped because their `when` was false.
    pub touch_skipped_when: Vec<u64>,
}

/// A goal value in millionths of a unit.
pub(crate) fn micros(v: f64) -> i128 {
    (v * 1e6).round() as i128
}

/// Millionths back to a number for the summary.
pub fn from_micros(v: i128) -> f64 {
    v as f64 / 1e6
}

impl Stats {
    pub(crate) fn new(prog: &Program) -> Stats {
        let s = prog.scenarios.len();
        let t = prog.templates.len();
        Stats {
            entries: vec![0; s],
            completed: vec![0; s],
            exited: vec![0; s],
            exit_steps: vec![0; s],
            active_at_end: vec![0; s],
            ignored_active: vec![0; s],
            ignored_reentry: vec![0; s],
            ignored_audience: vec![0; s],
            ignored_instant: vec![0; s],
            goals: prog
                .scenarios
                .iter()
                .map(|sc| vec![0; sc.goals.len()])
                .collect(),
            wait_until_passed: vec![0; s],
            wait_until_absent: vec![0; s],
            wait_until_retimed: vec![0; s],
            date_rescheduled: vec![0; s],
            sent: vec![0; t],
            skipped_no_address: vec![0; t],
            skipped_unsubscribed: vec![0; t],
            deferred: vec![0; t],
            dropped: vec![0; t],
            skipped_env_missing: vec![0; t],
            cadence_stops: vec![0; prog.cadences.len()],
            skipped_no_consent: vec![0; t],
            goal_values: prog
                .scenarios
                .iter()
                .map(|sc| vec![0; sc.goals.len()])
                .collect(),
            expired: vec![0; t],
            touch_skipped_when: vec![0; prog.cadences.len()],
            ..Stats::default()
        }
    }

    pub(crate) fn merge(&mut self, o: &Stats) {
        fn add(a: &mut [u64], b: &[u64]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        add(&mut self.entries, &o.entries);
        add(&mut self.skipped_no_consent, &o.skipped_no_consent);
        add(&mut self.completed, &o.completed);
        add(&mut self.exited, &o.exited);
        add(&mut self.exit_steps, &o.exit_steps);
        add(&mut self.active_at_end, &o.active_at_end);
        add(&mut self.ignored_active, &o.ignored_active);
        add(&mut self.ignored_reentry, &o.ignored_reentry);
        add(&mut self.ignored_audience, &o.ignored_audience);
        add(&mut self.ignored_instant, &o.ignored_instant);
        for (a, b) in self.goals.iter_mut().zip(&o.goals) {
            add(a, b);
        }
        add(&mut self.wait_until_passed, &o.wait_until_passed);
        add(&mut self.wait_until_absent, &o.wait_until_absent);
        add(&mut self.wait_until_retimed, &o.wait_until_retimed);
        add(&mut self.date_rescheduled, &o.date_rescheduled);
        for (a, b) in self.goal_values.iter_mut().zip(&o.goal_values) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        add(&mut self.sent, &o.sent);
        add(&mut self.skipped_no_address, &o.skipped_no_address);
        add(&mut self.skipped_unsubscribed, &o.skipped_unsubscribed);
        add(&mut self.deferred, &o.deferred);
        add(&mut self.dropped, &o.dropped);
        add(&mut self.skipped_env_missing, &o.skipped_env_missing);
        add(&mut self.cadence_stops, &o.cadence_stops);
        self.applied_events += o.applied_events;
        self.history_events += o.history_events;
        self.ignored_events += o.ignored_events;
        add(&mut self.ignored_by_reason, &o.ignored_by_reason);
        self.ignored_first.extend(o.ignored_first.iter().cloned());
        self.ignored_first.sort_by_key(|e| e.line);
        self.ignored_first.truncate(IGNORED_SHOWN);
        self.forecast_events += o.forecast_events;
        self.forecast_depth_limited += o.forecast_depth_limited;
        self.forecast_capped += o.forecast_capped;
        add(&mut self.pressure, &o.pressure);
        add(&mut self.expired, &o.expired);
        add(&mut self.touch_skipped_when, &o.touch_skipped_when);
    }

    /// Counts an ignored input event at `line` of the events file (0: not
    /// from the file), keeping the first few by line.
    pub(crate) fn ignore(&mut self, reason: Ignored, line: u32, contact: &str, what: &str) {
        self.ignored_events += 1;
        self.ignored_by_reason[reason as usize] += 1;
        let full = self.ignored_first.len() >= IGNORED_SHOWN;
        if line == 0 || (full && self.ignored_first.last().is_some_and(|e| e.line < line)) {
            return;
        }
        let at = self.ignored_first.partition_point(|e| e.line < line);
        self.ignored_first.insert(
            at,
            IgnoredEvent {
                line,
                contact: contact.to_string(),
                reason,
                what: what.to_string(),
            },
        );
        self.ignored_first.truncate(IGNORED_SHOWN);
    }

    /// Classifies one contact (§9): **over** when a send was deferred or
    /// dropped; **under** when it got fewer marketing messages than `under
    /// below N per W` allows over the window (N × window / W); else
    /// **balanced**.
    pub(crate) fn pressure_state(
        &mut self,
        prog: &Program,
        ledger: &[(i64, usize)],
        pressured: bool,
        from: i64,
        until: i64,
    ) {
        let state = if pressured {
            2
        } else {
            match prog.pressure.as_ref().and_then(|p| p.under_below) {
                Some((n, per)) if per > 0 => {
                    let expected = f64::from(n) * (until - from) as f64 / per as f64;
                    if (ledger.len() as f64) < expected {
                        0
                    } else {
                        1
                    }
                }
                _ => 1,
            }
        };
        self.pressure[state] += 1;
    }
}
