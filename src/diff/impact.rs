//! The impact of a diff on data: both plans over the same contacts, events
//! and window. Audience sizes come from the evaluator (members at the
//! start of the window, as `relance segments --as-of FROM` counts them);
//! messages and pressure states from the runner itself (`run::simulate`,
//! read back through the summary `relance run` prints), so the figures are
//! those of two separate `relance run`s. The runs waiting at removed steps
//! come from a `relance serve` database, read by the CLI.
//!
//! No I/O here: the CLI reads the inputs once per side (each typed by its
//! own plan) and queries the database.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value as J;

use super::Change;
use crate::eval::Context;
use crate::plan::{Expr, Plan};
use crate::run::{Contacts, Events};

/// What the diff does to data; empty without data and without a database.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Impact {
    /// Both plans simulated over the same inputs and window (with
    /// `--contacts`/`--events` or the `[run]` data of `relance.toml`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataImpact>,
    /// The runs of a `relance serve` deployment waiting at each step the
    /// new plan removes (with `--database`), by step id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Vec<Waiting>>,
}

impl Impact {
    pub fn is_empty(&self) -> bool {
        self.data.is_none() && self.waiting.is_none()
    }
}

/// A count before and after (`null` where the declaration does not exist
/// on that side).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Counts {
    pub before: Option<u64>,
    pub after: Option<u64>,
}

impl Counts {
    fn both(before: u64, after: u64) -> Counts {
        Counts {
            before: Some(before),
            after: Some(after),
        }
    }

    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

/// Contacts by pressure state over the window (`relance run --report`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PressureStates {
    pub under: u64,
    pub balanced: u64,
    pub over: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataImpact {
    /// `sample base` (the `[run]` data of `relance.toml`) or `base given`
    /// (`--contacts`).
    pub base: String,
    /// The contacts file, as given (relative to the project for the sample
    /// base).
    pub contacts_file: String,
    pub events_file: Option<String>,
    /// The window `[from, until)`, RFC 3339.
    pub from: String,
    pub until: String,
    /// Contacts read by each side (the inputs are typed by each side's
    /// schema).
    pub contacts: Counts,
    /// Members at `from` of every segment added, removed or changed, or
    /// whose membership count differs; by name.
    pub segments: Vec<NamedCounts>,
    /// Every scenario added, removed or changed, or whose audience or
    /// entries differ: its audience at `from` (contacts it admits;
    /// everyone without `audience`) and its entries over the window.
    pub scenarios: Vec<ScenarioImpact>,
    /// Messages sent over the window.
    pub messages: Counts,
    /// Messages sent per channel (channels that send on either side).
    pub channels: Vec<ChannelCounts>,
    /// Messages sent per template (templates that send on either side),
    /// by name.
    pub templates: Vec<TemplateCounts>,
    /// Contacts by pressure state over the window.
    pub pressure_before: PressureStates,
    pub pressure_after: PressureStates,
    /// The window in unix seconds, for the summary line.
    #[serde(skip)]
    pub window: (i64, i64),
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct NamedCounts {
    pub name: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioImpact {
    pub name: String,
    pub audience: Counts,
    pub entries: Counts,
    /// Contacts the new audience admits at `from` and the old one refused
    /// (`R0102` on data); `null` unless the scenario is on both sides with
    /// a different audience, and both sides read as many contacts.
    pub admitted: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct ChannelCounts {
    #[schemars(extend("enum" = ["email", "sms", "push", "task", "webhook"]))]
    pub channel: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct TemplateCounts {
    pub template: String,
    /// The template's channel (the new side's when both have it).
    pub channel: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Runs waiting at a removed step right now.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Waiting {
    /// The step id (`drip/2.1.0`) or cadence touch id (`fleet/3`).
    pub step: String,
    /// `scenario` or `cadence`.
    #[schemars(extend("enum" = ["scenario", "cadence"]))]
    pub kind: &'static str,
    /// The scenario or cadence.
    pub name: String,
    pub runs: u64,
}

/// One side's inputs, typed by its plan.
pub struct Inputs<'a> {
    pub contacts: &'a Contacts,
    pub events: &'a Events,
}

/// Where the inputs came from, for the report.
pub struct Origin {
    pub base: String,
    pub contacts_file: String,
    pub events_file: Option<String>,
}

/// Members of `targets` (`None`: everyone) at `as_of`, one pass over the
/// contacts.
fn members(
    plan: &Plan,
    inputs: &Inputs,
    as_of: i64,
    targets: &[(String, Option<&Expr>)],
) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = targets.iter().map(|(n, _)| (n.clone(), 0)).collect();
    if targets.is_empty() {
        return out;
    }
    for i in 0..inputs.contacts.len() as u32 {
        let contact = inputs.contacts.contact(i);
        let mut events = inputs.events.events_of(i);
        events.retain(|e| e.at <= as_of);
        let cx = Context {
            plan,
            contact: &contact,
            events: &events,
            now: as_of,
            run: None,
        };
        for (name, e) in targets {
            if e.is_none_or(|e| cx.eval(e))
                && let Some(n) = out.get_mut(name)
            {
                *n += 1;
            }
        }
    }
    out
}

/// Per scenario on both sides whose audience differs: the contacts the new
/// audience admits at `as_of` and the old one refused. Contact `i` is the
/// same line on both sides, so both must have read as many contacts.
fn newly_admitted(
    old: &Plan,
    new: &Plan,
    old_inputs: &Inputs,
    new_inputs: &Inputs,
    as_of: i64,
) -> BTreeMap<String, u64> {
    let pairs: Vec<(&String, Option<&Expr>, Option<&Expr>)> = old
        .scenarios
        .iter()
        .filter_map(|(n, o)| {
            let s = new.scenarios.get(n)?;
            (o.audience != s.audience).then_some((n, o.audience.as_ref(), s.audience.as_ref()))
        })
        .collect();
    let mut out: BTreeMap<String, u64> = pairs.iter().map(|(n, ..)| ((*n).clone(), 0)).collect();
    if pairs.is_empty() || old_inputs.contacts.len() != new_inputs.contacts.len() {
        return BTreeMap::new();
    }
    for i in 0..old_inputs.contacts.len() as u32 {
        let (oc, nc) = (
            old_inputs.contacts.contact(i),
            new_inputs.contacts.contact(i),
        );
        let mut oe = old_inputs.events.events_of(i);
        oe.retain(|e| e.at <= as_of);
        let mut ne = new_inputs.events.events_of(i);
        ne.retain(|e| e.at <= as_of);
        let ocx = Context {
            plan: old,
            contact: &oc,
            events: &oe,
            now: as_of,
            run: None,
        };
        let ncx = Context {
            plan: new,
            contact: &nc,
            events: &ne,
            now: as_of,
            run: None,
        };
        for (name, o, n) in &pairs {
            if n.is_none_or(|e| ncx.eval(e))
                && !o.is_none_or(|e| ocx.eval(e))
                && let Some(c) = out.get_mut(*name)
            {
                *c += 1;
            }
        }
    }
    out
}

/// The summary `relance run` prints, for one side.
fn simulate(
    plan: &Plan,
    inputs: &Inputs,
    from: i64,
    until: i64,
    threads: usize,
) -> Result<J, String> {
    let opts = crate::run::Options {
        from,
        until,
        threads,
        trace: None,
        forecast: None,
    };
    let outcome = crate::run::simulate(plan, inputs.contacts, inputs.events, &opts)?;
    Ok(outcome.summary_json(0, inputs.events.lines, "", false))
}

fn count(v: &J) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn pressure_of(summary: &J) -> PressureStates {
    let p = &summary["pressure"];
    PressureStates {
        under: count(&p["under"]),
        balanced: count(&p["balanced"]),
        over: count(&p["over"]),
    }
}

/// Declarations of `kind` added, removed or changed by the diff.
fn changed_names(changes: &[Change], kind: &str) -> BTreeSet<String> {
    changes
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| c.name.clone())
        .collect()
}

/// Both plans over the same inputs and window.
#[allow(clippy::too_many_arguments)]
pub fn data_impact(
    old: &Plan,
    new: &Plan,
    old_inputs: &Inputs,
    new_inputs: &Inputs,
    from: i64,
    until: i64,
    threads: usize,
    changes: &[Change],
    origin: Origin,
) -> Result<DataImpact, String> {
    // Audiences: segments and scenario audiences of each side at `from`.
    fn targets(plan: &Plan) -> Vec<(String, Option<&Expr>)> {
        let mut t: Vec<(String, Option<&Expr>)> = plan
            .segments
            .iter()
            .map(|(n, e)| (format!("segment {n}"), Some(e)))
            .collect();
        for (n, s) in &plan.scenarios {
            t.push((format!("scenario {n}"), s.audience.as_ref()));
        }
        t
    }
    let (before, after) = std::thread::scope(|s| {
        let job = s.spawn(|| members(old, old_inputs, from, &targets(old)));
        let after = members(new, new_inputs, from, &targets(new));
        (job.join().unwrap_or_default(), after)
    });
    let admitted = newly_admitted(old, new, old_inputs, new_inputs, from);
    let pair = |key: &str| Counts {
        before: before.get(key).copied(),
        after: after.get(key).copied(),
    };
    let old_summary = simulate(old, old_inputs, from, until, threads)?;
    let new_summary = simulate(new, new_inputs, from, until, threads)?;

    let changed = changed_names(changes, "segment");
    let names: BTreeSet<&String> = old.segments.keys().chain(new.segments.keys()).collect();
    let segments = names
        .into_iter()
        .map(|n| NamedCounts {
            name: n.clone(),
            counts: pair(&format!("segment {n}")),
        })
        .filter(|s| changed.contains(&s.name) || s.counts.changed())
        .collect();

    let changed = changed_names(changes, "scenario");
    let entries = |summary: &J, plan: &Plan, n: &str| {
        plan.scenarios
            .contains_key(n)
            .then(|| count(&summary["scenarios"][n]["entries"]))
    };
    let names: BTreeSet<&String> = old.scenarios.keys().chain(new.scenarios.keys()).collect();
    let scenarios = names
        .into_iter()
        .map(|n| ScenarioImpact {
            name: n.clone(),
            audience: pair(&format!("scenario {n}")),
            entries: Counts {
                before: entries(&old_summary, old, n),
                after: entries(&new_summary, new, n),
            },
            admitted: admitted.get(n).copied(),
        })
        .filter(|s| changed.contains(&s.name) || s.audience.changed() || s.entries.changed())
        .collect();

    let mut channels = Vec::new();
    for c in ["email", "sms", "push", "task", "webhook"] {
        let (b, a) = (
            count(&old_summary["channels"][c]),
            count(&new_summary["channels"][c]),
        );
        if b + a > 0 {
            channels.push(ChannelCounts {
                channel: c.to_string(),
                counts: Counts::both(b, a),
            });
        }
    }
    let mut templates = Vec::new();
    let names: BTreeSet<&String> = old.templates.keys().chain(new.templates.keys()).collect();
    for n in names {
        let sent = |summary: &J, plan: &Plan| {
            plan.templates
                .contains_key(n)
                .then(|| count(&summary["templates"][n]["sent"]))
        };
        let counts = Counts {
            before: sent(&old_summary, old),
            after: sent(&new_summary, new),
        };
        if counts.before.unwrap_or(0) + counts.after.unwrap_or(0) == 0 {
            continue;
        }
        let channel = new
            .templates
            .get(n)
            .or(old.templates.get(n))
            .map(|t| t.channel.clone())
            .unwrap_or_default();
        templates.push(TemplateCounts {
            template: n.clone(),
            channel,
            counts,
        });
    }
    let stamp = |t: i64| {
        jiff::Timestamp::from_second(t)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    Ok(DataImpact {
        base: origin.base,
        contacts_file: origin.contacts_file,
        events_file: origin.events_file,
        from: stamp(from),
        until: stamp(until),
        contacts: Counts::both(
            old_inputs.contacts.len() as u64,
            new_inputs.contacts.len() as u64,
        ),
        segments,
        scenarios,
        messages: Counts::both(
            count(&old_summary["messages"]),
            count(&new_summary["messages"]),
        ),
        channels,
        templates,
        pressure_before: pressure_of(&old_summary),
        pressure_after: pressure_of(&new_summary),
        window: (from, until),
    })
}

/// The step and touch ids of the old plan that the new one lacks, with the
/// scenario or cadence each belongs to (every step of a removed scenario
/// or cadence).
pub fn removed_steps(old: &Plan, new: &Plan) -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    for (name, s) in &old.scenarios {
        let kept = new.scenarios.get(name);
        for id in s.steps.keys() {
            if kept.is_none_or(|t| !t.steps.contains_key(id)) {
                out.push((id.clone(), "scenario", name.clone()));
            }
        }
    }
    for (name, c) in &old.cadences {
        let kept: BTreeSet<&str> = new
            .cadences
            .get(name)
            .map(|d| d.touches.iter().map(|t| t.id.as_str()).collect())
            .unwrap_or_default();
        for t in &c.touches {
            if !kept.contains(t.id.as_str()) {
                out.push((t.id.clone(), "cadence", name.clone()));
            }
        }
    }
    out
}

/// `1,240`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `37 days`, `12 hours`, or the duration as the language writes it.
pub fn window_text(from: i64, until: i64) -> String {
    let s = until.saturating_sub(from);
    let plural = |n: i64, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    if s % 86_400 == 0 {
        plural(s / 86_400, "day")
    } else if s % 3_600 == 0 {
        plural(s / 3_600, "hour")
    } else {
        crate::render::duration_text(s)
    }
}

/// `emails`, `SMS`…: what a channel's messages are called.
fn channel_plural(channel: &str, n: u64) -> &'static str {
    match (channel, n) {
        ("email", 1) => "email",
        ("email", _) => "emails",
        ("sms", _) => "SMS",
        ("push", 1) => "push notification",
        ("push", _) => "push notifications",
        ("task", 1) => "task",
        ("task", _) => "tasks",
        ("webhook", 1) => "webhook call",
        ("webhook", _) => "webhook calls",
        _ => "messages",
    }
}

/// The summary's part on data: `1,240 more emails, 3 fewer SMS over 30
/// days on the sample base`, or `no change in messages over …`; then the
/// runs waiting at removed steps.
pub fn summary(impact: &Impact) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(d) = &impact.data {
        let (from, until) = d.window;
        let mut moves = Vec::new();
        for c in &d.channels {
            let (b, a) = (c.counts.before.unwrap_or(0), c.counts.after.unwrap_or(0));
            if a > b {
                moves.push(format!(
                    "{} more {}",
                    thousands(a - b),
                    channel_plural(&c.channel, a - b)
                ));
            } else if b > a {
                moves.push(format!(
                    "{} fewer {}",
                    thousands(b - a),
                    channel_plural(&c.channel, b - a)
                ));
            }
        }
        let what = if moves.is_empty() {
            "no change in messages".to_string()
        } else {
            moves.join(", ")
        };
        parts.push(format!(
            "{what} over {} on the {}",
            window_text(from, until),
            d.base
        ));
    }
    if let Some(w) = &impact.waiting {
        let total: u64 = w.iter().map(|w| w.runs).sum();
        parts.push(match total {
            1 => "1 run waiting at a removed step".to_string(),
            n => format!("{} waiting at removed steps", runs(n)),
        });
    }
    parts
}

fn runs(n: u64) -> String {
    match n {
        1 => "1 run".to_string(),
        n => format!("{} runs", thousands(n)),
    }
}

/// What an `R0101` message adds with a database: the runs waiting now at
/// `steps`, in all and at each step that has some.
pub fn waiting_note(steps: &[&str], waiting: &BTreeMap<String, u64>) -> String {
    let at: Vec<(u64, &str)> = steps
        .iter()
        .map(|s| (waiting.get(*s).copied().unwrap_or(0), *s))
        .filter(|(n, _)| *n > 0)
        .collect();
    let total: u64 = at.iter().map(|(n, _)| n).sum();
    if total == 0 {
        return "; no run waits there now".to_string();
    }
    let each: Vec<String> = at
        .iter()
        .map(|(n, s)| format!("{} at {s}", thousands(*n)))
        .collect();
    format!("; {} waiting there now ({})", runs(total), each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_240), "1,240");
        assert_eq!(thousands(12_345_678), "12,345,678");
    }

    #[test]
    fn windows_in_days_or_hours() {
        assert_eq!(window_text(0, 30 * 86_400), "30 days");
        assert_eq!(window_text(0, 86_400), "1 day");
        assert_eq!(window_text(0, 7_200), "2 hours");
    }

    #[test]
    fn the_summary_counts_channels_up_and_down() {
        let counts = |b, a| Counts {
            before: Some(b),
            after: Some(a),
        };
        let d = DataImpact {
            base: "sample base".into(),
            contacts_file: "c".into(),
            events_file: None,
            from: String::new(),
            until: String::new(),
            contacts: counts(1, 1),
            segments: vec![],
            scenarios: vec![],
            messages: counts(10, 1_250),
            channels: vec![
                ChannelCounts {
                    channel: "email".into(),
                    counts: counts(0, 1_240),
                },
                ChannelCounts {
                    channel: "sms".into(),
                    counts: counts(10, 9),
                },
                ChannelCounts {
                    channel: "task".into(),
                    counts: counts(3, 3),
                },
            ],
            templates: vec![],
            pressure_before: PressureStates::default(),
            pressure_after: PressureStates::default(),
            window: (0, 30 * 86_400),
        };
        let impact = Impact {
            data: Some(d),
            waiting: Some(vec![Waiting {
                step: "x/1".into(),
                kind: "scenario",
                name: "x".into(),
                runs: 2,
            }]),
        };
        assert_eq!(
            summary(&impact),
            [
                "1,240 more emails, 1 fewer SMS over 30 days on the sample base",
                "2 runs waiting at removed steps"
            ]
        );
    }

    /// `R0102` on data: added to the persona risk of the scenario, or a
    /// risk of its own (before the `R0103`s) when no persona showed it.
    #[test]
    fn contacts_newly_admitted_are_r0102_risks() {
        use crate::diff::{Diff, Risk, RiskCode};
        let counts = |b, a| Counts {
            before: Some(b),
            after: Some(a),
        };
        let scenario = |name: &str, admitted| ScenarioImpact {
            name: name.into(),
            audience: counts(2, 5),
            entries: counts(2, 5),
            admitted,
        };
        let risk = |code, name: &str, message: &str| Risk {
            code,
            severity: "warning",
            kind: "scenario",
            name: name.into(),
            message: message.into(),
        };
        let mut d = Diff {
            risks: vec![
                risk(RiskCode::R0101, "a", "a step"),
                risk(RiskCode::R0102, "b", "personas of b"),
                risk(RiskCode::R0103, "pressure", "a cap"),
            ],
            ..Diff::default()
        };
        d.impact.data = Some(DataImpact {
            base: "sample base".into(),
            contacts_file: "c".into(),
            events_file: None,
            from: "2026-11-01T00:00:00Z".into(),
            until: String::new(),
            contacts: counts(9, 9),
            segments: vec![],
            scenarios: vec![
                scenario("b", Some(3)),
                scenario("c", Some(1)),
                scenario("d", Some(0)),
                scenario("e", None),
            ],
            messages: counts(0, 0),
            channels: vec![],
            templates: vec![],
            pressure_before: PressureStates::default(),
            pressure_after: PressureStates::default(),
            window: (0, 86_400),
        });
        d.add_admitted();
        let got: Vec<(&str, &str, &str)> = d
            .risks
            .iter()
            .map(|r| (r.code.as_str(), r.name.as_str(), r.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("R0101", "a", "a step"),
                (
                    "R0102",
                    "b",
                    "personas of b; on the sample base, 3 contacts it refused at 2026-11-01T00:00:00Z are admitted now"
                ),
                (
                    "R0102",
                    "c",
                    "the audience of scenario `c` now admits 1 contact of the sample base that it refused at 2026-11-01T00:00:00Z"
                ),
                ("R0103", "pressure", "a cap"),
            ]
        );
    }
}
