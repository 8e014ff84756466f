//! Plan upgrades: a contact's state made with one program moved onto
//! another, by the names and stable ids both share.
//!
//! - Scenarios, templates, cadences are matched by name; steps by their
//!   stable step id; touches by touch id; watched segments by expression.
//! - A run waiting at a step, touch or scenario that no longer exists ends
//!   (`plan_changed`); every other run goes on where it waits.
//! - A scenario whose triggers did not change keeps its scheduled clock
//!   triggers and date memory; a new scenario, or one whose triggers
//!   changed, has its clock triggers scheduled from the present (after
//!   it: what was due at the present was done under the old plan).
//! - A segment newly watched by an `entered` trigger takes its value at
//!   the present as baseline, so the upgrade itself fires nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::super::calendar;
use super::super::program::{Program, Trig};
use super::{Block, ContactState, Cursor, Sim, Wake};

/// What [`ContactState::upgrade`] left for the simulation to finish.
pub(crate) struct Rebase {
    /// Runs ended because their place is gone: (scenario, step or touch
    /// id), names of the old program.
    pub ended: Vec<(String, String)>,
    /// Scenarios (new indices) whose clock triggers must be scheduled.
    pub triggers: Vec<usize>,
    /// Watched segments (new indices) that need a baseline.
    pub watched: Vec<usize>,
}

fn index_by<'p, T>(
    items: &[T],
    key: impl Fn(&T) -> &'p str,
) -> std::collections::HashMap<&'p str, usize> {
    items.iter().enumerate().map(|(i, x)| (key(x), i)).collect()
}

impl ContactState {
    /// Moves this state, made with `old`, onto `new` (see the module).
    pub(crate) fn upgrade(&mut self, old: &Program, new: &Program) -> Rebase {
        let mut rebase = Rebase {
            ended: Vec::new(),
            triggers: Vec::new(),
            watched: Vec::new(),
        };
        if !self.started {
            // Nothing happened yet: the state of the new program.
            *self = ContactState::new(new, self.dense, std::mem::take(&mut self.contact));
            return rebase;
        }
        let scen_by = index_by(&new.scenarios, |s| s.name);
        let step_by = index_by(&new.steps, |s| s.id);
        let cad_by = index_by(&new.cadences, |c| c.name);
        let tpl_by = index_by(&new.templates, |t| t.name);
        let scen: Vec<Option<usize>> = old
            .scenarios
            .iter()
            .map(|s| scen_by.get(s.name).copied())
            .collect();
        let step: Vec<Option<usize>> = old
            .steps
            .iter()
            .map(|s| step_by.get(s.id).copied())
            .collect();
        let tpl: Vec<Option<usize>> = old
            .templates
            .iter()
            .map(|t| tpl_by.get(t.name).copied())
            .collect();
        // Same triggers (as the plans write them): keep their schedule.
        let same_triggers = |o: usize, n: usize| {
            let (a, b) = (old.scenarios[o].name, new.scenarios[n].name);
            match (old.plan.scenarios.get(a), new.plan.scenarios.get(b)) {
                (Some(x), Some(y)) => x.trigger == y.trigger,
                _ => false,
            }
        };
        let keep_trig: Vec<bool> = scen
            .iter()
            .enumerate()
            .map(|(o, n)| n.is_some_and(|n| same_triggers(o, n)))
            .collect();
        let n_scen = new.scenarios.len();
        // Runs.
        for run in &mut self.runs {
            let o = run.scenario;
            let place = |run: &super::Run| -> String {
                match (run.block, run.cursor) {
                    (Block::Until(i, _) | Block::Sleep(i) | Block::UntilTime(i, _), _)
                    | (_, Cursor::Step(i)) => old.steps.get(i).map_or("", |s| s.id).to_string(),
                    (_, Cursor::Touch { cadence, index, .. }) => old
                        .cadences
                        .get(cadence)
                        .and_then(|c| c.touches.get(index))
                        .and_then(|t| old.labels.get(t.label))
                        .map_or("", |l| l)
                        .to_string(),
                    (_, Cursor::Done) => String::new(),
                }
            };
            let moved: Option<(usize, Cursor, Block)> = (|| {
                let n = scen.get(o).copied().flatten()?;
                let cursor = match run.cursor {
                    Cursor::Step(i) => Cursor::Step(step.get(i).copied().flatten()?),
                    Cursor::Touch {
                        cadence,
                        index,
                        resume,
                    } => {
                        let oc = old.cadences.get(cadence)?;
                        let nc = *cad_by.get(oc.name)?;
                        let label = old.labels.get(oc.touches.get(index)?.label)?;
                        let ni = new.cadences[nc]
                            .touches
                            .iter()
                            .position(|t| new.labels.get(t.label) == Some(label))?;
                        let resume = match resume {
                            Some(r) => Some(step.get(r).copied().flatten()?),
                            None => None,
                        };
                        Cursor::Touch {
                            cadence: nc,
                            index: ni,
                            resume,
                        }
                    }
                    Cursor::Done => Cursor::Done,
                };
                let block = match run.block {
                    Block::Until(i, d) => Block::Until(step.get(i).copied().flatten()?, d),
                    Block::Sleep(i) => Block::Sleep(step.get(i).copied().flatten()?),
                    Block::UntilTime(i, t) => Block::UntilTime(step.get(i).copied().flatten()?, t),
                    b => b,
                };
                Some((n, cursor, block))
            })();
            match moved {
                Some((n, cursor, block)) => {
                    let goals: Vec<bool> = new.scenarios[n]
                        .goals
                        .iter()
                        .map(|g| {
                            old.scenarios[o]
                                .goals
                                .iter()
                                .position(|og| og.key == g.key)
                                .and_then(|k| run.goals.get(k).copied())
                                .unwrap_or(false)
                        })
                        .collect();
                    run.scenario = n;
                    run.cursor = cursor;
                    run.block = block;
                    run.goals = goals;
                }
                None => {
                    if run.active {
                        let name = old.scenarios.get(o).map_or("", |s| s.name);
                        rebase.ended.push((name.to_string(), place(run)));
                    }
                    run.active = false;
                    run.generation += 1;
                    run.cursor = Cursor::Done;
                    run.block = Block::None;
                    let n = scen.get(o).copied().flatten().unwrap_or(0);
                    run.scenario = n;
                    run.goals = new
                        .scenarios
                        .get(n)
                        .map_or(Vec::new(), |s| vec![false; s.goals.len()]);
                }
            }
        }
        if n_scen == 0 {
            self.runs.clear();
        }
        // Per scenario.
        let per_scenario = |v: &[Option<u32>]| {
            let mut out = vec![None; n_scen];
            for (o, n) in scen.iter().enumerate() {
                if let Some(n) = n {
                    out[*n] = v.get(o).copied().flatten();
                }
            }
            out
        };
        let mut active = per_scenario(&self.active);
        for (i, a) in active.iter_mut().enumerate() {
            if let Some(r) = a
                && !self
                    .runs
                    .get(*r as usize)
                    .is_some_and(|run| run.active && run.scenario == i)
            {
                *a = None;
            }
        }
        self.active = active;
        let mut last_entry = vec![None; n_scen];
        let mut entered_at = vec![i64::MIN; n_scen];
        for (o, n) in scen.iter().enumerate() {
            if let Some(n) = *n {
                last_entry[n] = self.last_entry.get(o).copied().flatten();
                entered_at[n] = self.entered_at.get(o).copied().unwrap_or(i64::MIN);
            }
        }
        self.last_entry = last_entry;
        self.entered_at = entered_at;
        let mut date_next: Vec<Vec<Option<i64>>> = new
            .scenarios
            .iter()
            .map(|s| vec![None; s.triggers.len()])
            .collect();
        let mut date_fired: Vec<Vec<Vec<crate::syntax::ast::TimeValue>>> = new
            .scenarios
            .iter()
            .map(|s| vec![Vec::new(); s.triggers.len()])
            .collect();
        let mut date_last: Vec<Vec<Option<i64>>> = date_next.clone();
        for (o, n) in scen.iter().enumerate() {
            if let Some(n) = *n {
                if keep_trig[o] {
                    date_next[n] = self.date_next[o].clone();
                    date_fired[n] = std::mem::take(&mut self.date_fired[o]);
                    date_last[n] = self.date_last[o].clone();
                } else {
                    rebase.triggers.push(n);
                }
            }
        }
        for n in 0..n_scen {
            if !scen.contains(&Some(n)) {
                rebase.triggers.push(n);
            }
        }
        rebase.triggers.sort_unstable();
        rebase.triggers.dedup();
        self.date_next = date_next;
        self.date_fired = date_fired;
        self.date_last = date_last;
        // Watched segments, by expression.
        let mut watched = vec![false; new.watched.len()];
        let mut dirty = vec![true; new.watched.len()];
        let mut watch_next = vec![None; new.watched.len()];
        for (k, w) in new.watched.iter().enumerate() {
            match old.watched.iter().position(|ow| ow.expr == w.expr) {
                Some(o) => {
                    watched[k] = self.watched[o];
                    dirty[k] = self.dirty[o];
                    watch_next[k] = self.watch_next[o];
                }
                None => rebase.watched.push(k),
            }
        }
        self.watched = watched;
        self.dirty = dirty;
        self.watch_next = watch_next;
        // Wake-ups: clock triggers of kept scenarios, runs, rechecks.
        let runs = self.runs.len();
        let agenda = std::mem::take(&mut self.agenda);
        self.agenda = agenda
            .into_iter()
            .filter_map(|Reverse((t, order, w))| {
                let map = |s: u32| -> Option<u32> {
                    let o = s as usize;
                    if !keep_trig.get(o).copied().unwrap_or(false) {
                        return None;
                    }
                    scen.get(o).copied().flatten().map(|n| n as u32)
                };
                let w = match w {
                    Wake::Run(r, g) if (r as usize) < runs => Wake::Run(r, g),
                    Wake::Run(..) => return None,
                    Wake::Every(s, k) => Wake::Every(map(s)?, k),
                    Wake::Once(s, k) => Wake::Once(map(s)?, k),
                    Wake::Date(s, k) => Wake::Date(map(s)?, k),
                    w @ (Wake::Recheck | Wake::Flush) => w,
                };
                Some(Reverse((t, order, w)))
            })
            .collect::<BinaryHeap<_>>();
        self.fired = self
            .fired
            .iter()
            .filter_map(|s| scen.get(*s).copied().flatten())
            .collect();
        self.sends = self
            .sends
            .iter()
            .filter_map(|(t, at, run)| Some((tpl.get(*t).copied().flatten()?, *at, *run)))
            .collect();
        self.pending = self
            .pending
            .iter()
            .filter_map(|(p, o, r, g, t)| {
                let t = tpl.get(*t).copied().flatten()?;
                ((*r) < runs).then_some((*p, *o, *r, *g, t))
            })
            .collect();
        rebase
    }
}

impl Sim<'_, '_> {
    /// Finishes an upgrade at the present: baselines of newly watched
    /// segments, clock triggers of new or changed scenarios.
    pub(crate) fn rebase(&mut self, rebase: &Rebase) {
        if !self.st.started {
            return;
        }
        let now = self.st.now;
        for &k in &rebase.watched {
            let w = &self.prog.watched[k];
            self.st.watched[k] = self.holds(w.expr, now, None);
            self.st.watch_next[k] = self.cx(now, None).next_change(w.expr);
            self.st.dirty[k] = false;
        }
        for &i in &rebase.triggers {
            let s = &self.prog.scenarios[i];
            for (k, trig) in s.triggers.iter().enumerate() {
                let after = now.saturating_add(1);
                let wake = match *trig {
                    Trig::Every(days, clock) => calendar::next(days, clock, &self.tz, after)
                        .map(|t| (t, Wake::Every(i as u32, k as u32))),
                    Trig::Once(at) => Some((at, Wake::Once(i as u32, k as u32))),
                    Trig::OnceLocal(date, clock) => calendar::once_local(date, clock, &self.tz)
                        .map(|t| (t, Wake::Once(i as u32, k as u32))),
                    Trig::At(..) | Trig::Yearly(..) => {
                        self.schedule_date(i, k, after, false);
                        None
                    }
                    _ => None,
                };
                if let Some((t, w)) = wake
                    && t >= after
                {
                    self.schedule(t, w);
                }
            }
        }
        self.plan_recheck(now);
    }
}
