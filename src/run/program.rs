//! The plan in the shape the simulation walks: names resolved to indices
//! once, steps and touches numbered, triggers indexed by what fires them.

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::business::{QuietKind, QuietRule};
use super::calendar::Days;
use super::clock::{QuietHours, parse_clock};
use crate::plan::{Expr, ListAction, Plan, Reentry, Step};

pub(crate) const CHANNELS: [&str; 5] = ["email", "sms", "push", "task", "webhook"];

pub(crate) fn channel_index(name: &str) -> Option<usize> {
    CHANNELS.iter().position(|c| *c == name)
}

pub(crate) enum Trig<'p> {
    Joined,
    /// The event's name and the trigger's `where`.
    Event(&'p str, Option<&'p Expr>),
    Entered,
    /// `every day|WEEKDAY|weekday HH:MM`, `every month on N|last HH:MM`.
    Every(Days, i32),
    Once(i64),
    /// `at TIME [HH:MM]`: the term and the local clock (seconds).
    At(&'p crate::plan::Term, Option<i32>),
    /// `yearly FIELD HH:MM`.
    Yearly(&'p str, i32),
    /// `once at DATE HH:MM local`: the instant depends on the contact's zone.
    OnceLocal(Date, i32),
}

/// `goal EVENT [where …] within D [value FIELD]` or `goal joined LIST within D`.
pub(crate) struct Goal<'p> {
    /// The event, or the list of a `joined` goal.
    pub name: &'p str,
    pub joined: bool,
    pub within: i64,
    pub filter: Option<&'p Expr>,
    pub value: Option<&'p str>,
    /// As in the summary: the event (`joined LIST` for a list), or the goal
    /// as written when an earlier goal of the scenario has that key.
    pub key: String,
}

pub(crate) struct Scenario<'p> {
    pub name: &'p str,
    pub audience: Option<&'p Expr>,
    /// Every trigger, in declaration order: any of them starts a run.
    pub triggers: Vec<Trig<'p>>,
    pub reentry: &'p Reentry,
    pub exit_when: Option<&'p Expr>,
    pub goals: Vec<Goal<'p>>,
    pub entry: Option<usize>,
}

pub(crate) enum Op<'p> {
    Send(usize, Option<usize>),
    Wait(i64, Option<usize>),
    WaitUntil(&'p Expr, i64, Option<usize>),
    Branch(Vec<(Option<&'p Expr>, Option<usize>)>, Option<usize>),
    /// Arms as (cumulative share in percent, first step).
    Split(Vec<(f64, Option<usize>)>),
    Join(usize, Option<usize>),
    Leave(usize, Option<usize>),
    Tag(&'p str, Option<usize>),
    Untag(&'p str, Option<usize>),
    Start(usize, Option<usize>),
    Exit,
    /// `wait until TIME`.
    WaitUntilTime(&'p crate::plan::Term, Option<usize>),
    /// `wait N business days`.
    WaitBusiness(u32, Option<usize>),
}

pub(crate) struct StepInfo<'p> {
    pub id: &'p str,
    pub op: Op<'p>,
}

pub(crate) struct Template<'p> {
    pub name: &'p str,
    pub channel: usize,
    /// Counts for caps, gap and quiet hours.
    pub marketing: bool,
    pub address: Option<&'p str>,
    pub links: Vec<&'p str>,
    /// The channel's `consent` rule, for marketing messages only.
    pub consent: Option<&'p Expr>,
    /// The subscription topic (`topic = NAME`).
    pub topic: Option<&'p str>,
    /// `expires`: how long after its first due time a deferred message
    /// may still go out.
    pub expires: Option<i64>,
    /// 0 `high`, 1 `normal`, 2 `low`: who takes pressure slots first.
    pub priority: u8,
    /// A webhook header's `env("NAME")` whose variable is not set in the
    /// runner's environment (read once per run): its sends are skipped.
    pub missing_env: Option<&'p str>,
}

pub(crate) struct Touch<'p> {
    /// Index into [`Program::labels`].
    pub label: usize,
    pub template: usize,
    pub after: i64,
    /// The delay in business days (then `after` is only its shortest length).
    pub business: Option<u32>,
    /// `touch T when EXPR`.
    pub when: Option<&'p Expr>,
}

pub(crate) struct Cadence<'p> {
    pub name: &'p str,
    pub stop_when: Option<&'p Expr>,
    pub touches: Vec<Touch<'p>>,
}

pub(crate) enum Rule {
    Join(usize),
    Leave(usize),
    Tag(String),
    Untag(String),
}

pub(crate) struct Cap {
    /// `None`: every channel.
    pub channel: Option<usize>,
    pub max: usize,
    pub per: i64,
}

pub(crate) struct Pressure {
    pub caps: Vec<Cap>,
    pub gap: Option<i64>,
    pub quiet: Option<QuietHours>,
    pub drop: bool,
    pub under_below: Option<(u32, i64)>,
    /// The quiet rules of v1.1 (`quiet_rules` in the plan).
    pub rules: Vec<QuietRule>,
}

/// A segment an `entered` trigger watches.
pub(crate) struct Watched<'p> {
    pub expr: &'p Expr,
    pub scenarios: Vec<usize>,
    /// The events whose arrival can change its value (beyond list, tag
    /// and time changes).
    pub events: Vec<&'p str>,
}

/// The event names `e` reads (segments followed, each once: `seen`; the
/// plan's depth is checked in [`Program::new`]).
fn event_deps<'p>(
    plan: &'p Plan,
    e: &'p Expr,
    out: &mut Vec<&'p str>,
    seen: &mut std::collections::HashSet<&'p str>,
) {
    match e {
        Expr::And { args } | Expr::Or { args } => {
            for a in args {
                event_deps(plan, a, out, seen);
            }
        }
        Expr::Not { arg } => event_deps(plan, arg, out, seen),
        Expr::Segment { name } => {
            if let Some((name, s)) = plan.segments.get_key_value(name)
                && seen.insert(name)
            {
                event_deps(plan, s, out, seen);
            }
        }
        Expr::Engagement { event, .. } => {
            out.push(event);
            if event == "opened" {
                out.push("clicked");
            }
        }
        Expr::Aggregate { event, .. } => out.push(event),
        _ => {}
    }
}

pub struct Program<'p> {
    pub(crate) plan: &'p Plan,
    pub(crate) scenarios: Vec<Scenario<'p>>,
    pub(crate) steps: Vec<StepInfo<'p>>,
    /// Step ids, then touch ids: what the outbox's `step` says.
    pub(crate) labels: Vec<&'p str>,
    pub(crate) templates: Vec<Template<'p>>,
    pub(crate) cadences: Vec<Cadence<'p>>,
    pub(crate) lists: Vec<&'p str>,
    pub(crate) rules: Vec<Vec<Rule>>,
    /// Segments that `entered` triggers watch.
    pub(crate) watched: Vec<Watched<'p>>,
    pub(crate) joined: HashMap<&'p str, Vec<usize>>,
    pub(crate) on_event: HashMap<&'p str, Vec<usize>>,
    pub(crate) pressure: Option<Pressure>,
    pub(crate) default_tz: TimeZone,
    pub(crate) tz_field: Option<&'p str>,
    /// Some template has a `priority` other than `normal`: sends due at
    /// one instant are then queued and taken by priority.
    pub(crate) has_priority: bool,
}

impl<'p> Program<'p> {
    /// Compiles `plan` for [`super::Journey`]s: validates it (the error
    /// names the JSON path of the first problem), then resolves its names.
    pub fn compile(plan: &'p Plan) -> Result<Program<'p>, String> {
        crate::plan::validate(plan).map_err(|e| format!("the plan is not valid: {e}"))?;
        Program::new(plan).map_err(|e| format!("the plan is inconsistent: {e}"))
    }

    /// Compiles a plan that passed [`crate::plan::validate`] (which names
    /// the JSON path of a problem); an inconsistent plan is still an error
    /// here, never a panic.
    pub(crate) fn new(plan: &'p Plan) -> Result<Program<'p>, String> {
        crate::eval::check_depth(plan)?;
        let mut templates = Vec::new();
        let mut tpl_index = HashMap::new();
        for (name, t) in &plan.templates {
            let channel = channel_index(&t.channel).ok_or_else(|| {
                format!("template `{name}` has an unknown channel `{}`", t.channel)
            })?;
            tpl_index.insert(name.as_str(), templates.len());
            templates.push(Template {
                name,
                channel,
                marketing: t.kind == "marketing" && channel < 3,
                address: t.address_field.as_deref(),
                links: t.links.keys().map(String::as_str).collect(),
                consent: (t.kind == "marketing")
                    .then(|| plan.consent.get(&t.channel))
                    .flatten(),
                topic: t.topic.as_deref(),
                expires: t.expires_seconds,
                priority: match t.priority.as_deref() {
                    Some("high") => 0,
                    Some("low") => 2,
                    _ => 1,
                },
                missing_env: super::senders::missing_env(t),
            });
        }
        let tpl = |n: &str| {
            tpl_index
                .get(n)
                .copied()
                .ok_or_else(|| format!("the plan names a template `{n}` it does not define"))
        };
        let lists: Vec<&str> = plan.lists.keys().map(String::as_str).collect();
        let list = |n: &str| {
            lists
                .iter()
                .position(|l| *l == n)
                .ok_or_else(|| format!("the plan names a list `{n}` it does not define"))
        };
        let mut rules = Vec::new();
        for l in plan.lists.values() {
            let mut rs = Vec::new();
            for a in &l.on_join {
                rs.push(match a {
                    ListAction::Join { list: n } => Rule::Join(list(n)?),
                    ListAction::Leave { list: n } => Rule::Leave(list(n)?),
                    ListAction::Tag { tag } => Rule::Tag(tag.clone()),
                    ListAction::Untag { tag } => Rule::Untag(tag.clone()),
                });
            }
            rules.push(rs);
        }
        let cadence_names: Vec<&str> = plan.cadences.keys().map(String::as_str).collect();
        // Number every step of every scenario.
        let mut step_index: HashMap<&str, usize> = HashMap::new();
        let mut labels: Vec<&str> = Vec::new();
        for name in &plan.scenario_order {
            let s = plan
                .scenarios
                .get(name)
                .ok_or_else(|| format!("the plan orders a scenario `{name}` it does not define"))?;
            for id in s.steps.keys() {
                step_index.insert(id, labels.len());
                labels.push(id);
            }
        }
        let step = |id: &Option<String>| -> Result<Option<usize>, String> {
            match id {
                None => Ok(None),
                Some(id) => step_index
                    .get(id.as_str())
                    .copied()
                    .map(Some)
                    .ok_or_else(|| format!("the plan names a step `{id}` it does not define")),
            }
        };
        let mut steps: Vec<StepInfo> = Vec::with_capacity(labels.len());
        for name in &plan.scenario_order {
            let s = plan
                .scenarios
                .get(name)
                .ok_or_else(|| format!("the plan orders a scenario `{name}` it does not define"))?;
            for (id, st) in &s.steps {
                let op = match st {
                    Step::Send { template, next } => Op::Send(tpl(template)?, step(next)?),
                    Step::Wait {
                        business_days: Some(n),
                        next,
                        ..
                    } => Op::WaitBusiness(*n, step(next)?),
                    Step::Wait { seconds, next, .. } => Op::Wait(*seconds, step(next)?),
                    Step::WaitUntil {
                        until,
                        timeout_seconds,
                        next,
                    } => Op::WaitUntil(until, *timeout_seconds, step(next)?),
                    Step::Branch { arms, otherwise } => Op::Branch(
                        arms.iter()
                            .map(|a| Ok((a.when.as_ref(), step(&a.next)?)))
                            .collect::<Result<_, String>>()?,
                        step(otherwise)?,
                    ),
                    Step::Split { arms } => Op::Split(
                        arms.iter()
                            .map(|a| Ok((a.upto, step(&a.next)?)))
                            .collect::<Result<_, String>>()?,
                    ),
                    Step::Join { list: l, next } => Op::Join(list(l)?, step(next)?),
                    Step::Leave { list: l, next } => Op::Leave(list(l)?, step(next)?),
                    Step::Tag { tag, next } => Op::Tag(tag, step(next)?),
                    Step::Untag { tag, next } => Op::Untag(tag, step(next)?),
                    Step::Start { cadence, next } => Op::Start(
                        cadence_names
                            .iter()
                            .position(|c| c == cadence)
                            .ok_or_else(|| {
                                format!("the plan names a cadence `{cadence}` it does not define")
                            })?,
                        step(next)?,
                    ),
                    Step::Exit => Op::Exit,
                    Step::WaitUntilTime { until, next } => Op::WaitUntilTime(until, step(next)?),
                };
                steps.push(StepInfo { id, op });
            }
        }
        let mut cadences = Vec::new();
        for (name, c) in &plan.cadences {
            let mut touches = Vec::new();
            for t in &c.touches {
                touches.push(Touch {
                    label: labels.len(),
                    template: tpl(&t.template)?,
                    after: t.after_seconds,
                    business: t.after_business_days,
                    when: t.when.as_ref(),
                });
                labels.push(&t.id);
            }
            cadences.push(Cadence {
                name,
                stop_when: c.stop_when.as_ref(),
                touches,
            });
        }
        let mut scenarios = Vec::new();
        let mut watched: Vec<(&str, &Expr, Vec<usize>)> = Vec::new();
        let mut joined: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut on_event: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, name) in plan.scenario_order.iter().enumerate() {
            let s = plan
                .scenarios
                .get(name)
                .ok_or_else(|| format!("the plan orders a scenario `{name}` it does not define"))?;
            let mut triggers = Vec::new();
            for t in crate::render::flow::triggers(s) {
                triggers.push(match t {
                    crate::plan::Trigger::Joined { list: l } => {
                        list(l)?;
                        let v = joined.entry(l.as_str()).or_default();
                        if v.last() != Some(&i) {
                            v.push(i);
                        }
                        Trig::Joined
                    }
                    crate::plan::Trigger::Event { event, filter } => {
                        let v = on_event.entry(event.as_str()).or_default();
                        if v.last() != Some(&i) {
                            v.push(i);
                        }
                        Trig::Event(event, filter.as_ref())
                    }
                    crate::plan::Trigger::Entered { segment } => {
                        let e = plan.segments.get(segment).ok_or_else(|| {
                            format!("the plan names a segment `{segment}` it does not define")
                        })?;
                        match watched.iter_mut().find(|(n, ..)| *n == segment) {
                            Some(w) => {
                                if w.2.last() != Some(&i) {
                                    w.2.push(i);
                                }
                            }
                            None => watched.push((segment, e, vec![i])),
                        }
                        Trig::Entered
                    }
                    crate::plan::Trigger::Every { day, at } => Trig::Every(
                        Days::every(day).ok_or_else(|| format!("`{day}` is not a day"))?,
                        parse_clock(at).ok_or_else(|| format!("`{at}` is not a clock time"))?,
                    ),
                    crate::plan::Trigger::Once { at } => Trig::Once(
                        super::input::parse_timestamp(at)
                            .ok_or_else(|| format!("`{at}` is not a timestamp"))?,
                    ),
                    crate::plan::Trigger::Monthly { day, at } => Trig::Every(
                        Days::monthly(day)
                            .ok_or_else(|| format!("`{day}` is not a day of every month"))?,
                        parse_clock(at).ok_or_else(|| format!("`{at}` is not a clock time"))?,
                    ),
                    crate::plan::Trigger::OnceLocal { date, at } => Trig::OnceLocal(
                        date.parse()
                            .map_err(|_| format!("`{date}` is not a date"))?,
                        parse_clock(at).ok_or_else(|| format!("`{at}` is not a clock time"))?,
                    ),
                    crate::plan::Trigger::At { at, local_time } => Trig::At(
                        at,
                        match local_time {
                            Some(c) => Some(
                                parse_clock(c)
                                    .ok_or_else(|| format!("`{c}` is not a clock time"))?,
                            ),
                            None => None,
                        },
                    ),
                    crate::plan::Trigger::Yearly { field, at } => Trig::Yearly(
                        field,
                        parse_clock(at).ok_or_else(|| format!("`{at}` is not a clock time"))?,
                    ),
                });
            }
            let mut goals: Vec<Goal> = Vec::new();
            for g in &s.goals {
                let (name, joined) = match &g.joined {
                    Some(l) => {
                        list(l)?;
                        (l.as_str(), true)
                    }
                    None => (g.event.as_str(), false),
                };
                let mut key = if joined {
                    format!("joined {name}")
                } else {
                    name.to_string()
                };
                if goals.iter().any(|o| o.key == key) {
                    key = crate::render::flow::goal_text(g);
                }
                goals.push(Goal {
                    name,
                    joined,
                    within: g.within_seconds,
                    filter: g.filter.as_ref(),
                    value: g.value.as_deref(),
                    key,
                });
            }
            scenarios.push(Scenario {
                name,
                audience: s.audience.as_ref(),
                triggers,
                reentry: &s.reentry,
                exit_when: s.exit_when.as_ref(),
                goals,
                entry: step(&s.entry)?,
            });
        }
        let pressure = match &plan.pressure {
            None => None,
            Some(p) => {
                let mut caps = Vec::new();
                for c in &p.caps {
                    caps.push(Cap {
                        channel: if c.scope == "all" {
                            None
                        } else {
                            Some(channel_index(&c.scope).ok_or_else(|| {
                                format!("a cap names an unknown channel `{}`", c.scope)
                            })?)
                        },
                        max: c.max as usize,
                        per: c.per_seconds,
                    });
                }
                let quiet = match &p.quiet {
                    None => None,
                    Some(q) => Some(QuietHours {
                        start: parse_clock(&q.start)
                            .ok_or_else(|| format!("`{}` is not a clock time", q.start))?,
                        end: parse_clock(&q.end)
                            .ok_or_else(|| format!("`{}` is not a clock time", q.end))?,
                    }),
                };
                let mut rules = Vec::new();
                for q in &p.quiet_rules {
                    let channel = match &q.channel {
                        None => None,
                        Some(c) => Some(channel_index(c).ok_or_else(|| {
                            format!("a quiet rule names an unknown channel `{c}`")
                        })?),
                    };
                    let clock = |c: &Option<String>| {
                        c.as_deref().and_then(parse_clock).ok_or_else(|| {
                            "a quiet rule of kind `hours` needs `start` and `end` clock times"
                                .to_string()
                        })
                    };
                    let scope = q
                        .channel
                        .as_deref()
                        .map(|c| format!("{c} "))
                        .unwrap_or_default();
                    let (kind, label) = if q.kind == "weekends" {
                        (QuietKind::Weekends, format!("`quiet {scope}weekends`"))
                    } else {
                        let (start, end) = (clock(&q.start)?, clock(&q.end)?);
                        (
                            QuietKind::Hours(QuietHours { start, end }),
                            format!(
                                "`quiet {scope}{} to {}`",
                                q.start.as_deref().unwrap_or_default(),
                                q.end.as_deref().unwrap_or_default()
                            ),
                        )
                    };
                    rules.push(QuietRule {
                        channel,
                        kind,
                        label,
                    });
                }
                Some(Pressure {
                    caps,
                    gap: p.gap_seconds,
                    quiet,
                    drop: p.on_excess == "drop",
                    under_below: p.under_below.as_ref().map(|u| (u.count, u.per_seconds)),
                    rules,
                })
            }
        };
        let default_tz = match &plan.workspace.timezone {
            Some(z) => crate::tzdb::zone(z)
                .ok_or_else(|| format!("the workspace time zone `{z}` is not an IANA zone"))?,
            None => TimeZone::UTC,
        };
        let has_priority = templates.iter().any(|t| t.priority != 1);
        Ok(Program {
            plan,
            scenarios,
            steps,
            labels,
            templates,
            cadences,
            lists,
            rules,
            watched: watched
                .into_iter()
                .map(|(_, expr, scenarios)| {
                    let mut events = Vec::new();
                    event_deps(plan, expr, &mut events, &mut Default::default());
                    events.sort_unstable();
                    events.dedup();
                    Watched {
                        expr,
                        scenarios,
                        events,
                    }
                })
                .collect(),
            joined,
            on_event,
            pressure,
            default_tz,
            tz_field: plan.schema.timezone_field.as_deref(),
            has_priority,
        })
    }

    pub(crate) fn list(&self, name: &str) -> Option<usize> {
        self.lists.iter().position(|l| *l == name)
    }

    pub(crate) fn template(&self, name: &str) -> Option<usize> {
        self.templates.iter().position(|t| t.name == name)
    }
}
