//! Scenarios and cadences: references, the settings of §7, what each point
//! of a run may have sent (for engagement predicates), unreachable arms,
//! and the static pressure check of §9.

use std::collections::{BTreeSet, HashMap};

use super::expr::{Scope, always_holds, check_expr};
use super::items::given_twice;
use super::{Kind, Project};
use crate::diagnostics::{Code, Diagnostic, Problems, Span, Spanned};
use crate::syntax::ast::*;

pub fn check_scenarios(p: &Project, problems: &mut Problems) {
    for s in &p.scenarios {
        check_scenario(p, s, problems);
    }
}

fn check_scenario(p: &Project, s: &Scenario, problems: &mut Problems) {
    let run = format!("scenario `{}`", s.name.name);
    for (what, spans) in [
        (
            "`audience`",
            s.audience.iter().map(|e| e.span).collect::<Vec<_>>(),
        ),
        ("`reentry`", s.reentry.iter().map(|r| r.span).collect()),
        ("`exit when`", s.exit_when.iter().map(|e| e.span).collect()),
    ] {
        for span in spans.iter().skip(1) {
            let hint = "; combine conditions with `and` / `or`";
            problems.push(given_twice(
                format!("{what} is given twice in {run}"),
                *span,
                spans[0],
                format!("a scenario has one {what}{hint}"),
            ));
        }
    }
    if s.triggers.is_empty() {
        problems.push(
            Diagnostic::new(Code::E0107, format!("{run} has no trigger"))
                .at(s.name.span, "missing `trigger`")
                .help("say when contacts enter, e.g. `trigger joined prospects` or `trigger event purchase`"),
        );
    }
    for a in &s.audience {
        check_expr(p, a, &Scope::default(), problems);
    }
    for t in &s.triggers {
        check_trigger(p, s, t, problems);
    }
    // Several triggers (v1.1): any of them starts a run.
    super::calendar::check_coinciding_triggers(p, s, problems);
    super::calendar::check_goals(p, s, problems);
    // Every template the run can send, for `exit when`.
    let mut all_sent = BTreeSet::new();
    collect_sends(p, &s.steps, &mut all_sent);
    for e in &s.exit_when {
        check_expr(
            p,
            e,
            &Scope {
                event: None,
                sent: Some((&all_sent, &run)),
            },
            problems,
        );
    }
    let mut sent = BTreeSet::new();
    check_steps(p, &s.steps, &mut sent, &run, problems);
}

fn check_trigger(p: &Project, s: &Scenario, t: &Spanned<Trigger>, problems: &mut Problems) {
    match &t.node {
        Trigger::Joined(list) => {
            if p.expect_kind(list, Kind::List, Code::E0203, problems) {
                never_fires(p, s, list, t.span, "joins", problems);
            }
        }
        Trigger::Entered(seg) => {
            if p.expect_kind(seg, Kind::Segment, Code::E0207, problems) {
                never_fires(p, s, seg, t.span, "enters", problems);
            }
        }
        Trigger::Event { event, filter } => {
            let known = p.events.contains_key(event.name.as_str())
                || p.expect_kind(event, Kind::Event, Code::E0205, problems);
            if known && let Some(f) = filter {
                let scope = Scope {
                    event: p.event_fields(&event.name),
                    sent: None,
                };
                check_expr(p, f, &scope, problems);
            }
        }
        Trigger::At { time, .. } => super::dates::check_time(p, time, "at", problems),
        Trigger::Yearly { field, .. } => {
            super::dates::check_yearly(p, field, problems);
            recurring_once(s, t, problems);
        }
        Trigger::Every { .. } | Trigger::Monthly { .. } => recurring_once(s, t, problems),
        Trigger::Once(_) | Trigger::Invalid | Trigger::OnceLocal { .. } => {}
    }
}

/// W0603: a recurring trigger with `reentry never`.
fn recurring_once(s: &Scenario, t: &Spanned<Trigger>, problems: &mut Problems) {
    {
        {
            let never = s.reentry.first().is_none_or(|r| r.node == Reentry::Never);
            if never {
                let mut d = Diagnostic::new(
                    Code::W0603,
                    format!(
                        "scenario `{}` fires on a schedule but each contact enters it only once",
                        s.name.name
                    ),
                )
                .at(t.span, "recurring trigger")
                .help("add `reentry always` (or `reentry after 7d`) so contacts enter again at later occurrences");
                if let Some(r) = s.reentry.first() {
                    d = d.also(r.span, "reentry set here");
                }
                problems.push(d);
            }
        }
    }
}

/// `joined customers` with `audience not customers`: the contact is in the
/// list the moment the trigger fires, so the audience never admits them.
fn never_fires(
    p: &Project,
    s: &Scenario,
    name: &Ident,
    trigger: Span,
    verb: &str,
    problems: &mut Problems,
) {
    let Some(audience) = s.audience.first() else {
        return;
    };
    let mut conjuncts = Vec::new();
    flatten_and(audience, &mut conjuncts);
    for c in conjuncts {
        let ExprKind::Not(inner) = &c.kind else {
            continue;
        };
        // `not L` and `not (L or …)` both exclude L.
        let excluded = match &inner.kind {
            ExprKind::Name(n) => n.name == name.name,
            ExprKind::Or(xs) => xs
                .iter()
                .any(|x| matches!(&x.kind, ExprKind::Name(n) if n.name == name.name)),
            _ => false,
        };
        if excluded {
            let _ = p;
            problems.push(
                Diagnostic::new(
                    Code::W0602,
                    format!("scenario `{}` can never start: a contact who {verb} `{}` is excluded by the audience", s.name.name, name.name),
                )
                .at(trigger, "this trigger")
                .also(c.span, format!("the audience excludes `{}`", name.name))
                .help("change the trigger or remove the exclusion from the audience"),
            );
        }
    }
}

fn flatten_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::And(xs) => xs.iter().for_each(|x| flatten_and(x, out)),
        _ => out.push(e),
    }
}

/// Every template the steps can send, cadences included.
fn collect_sends(p: &Project, steps: &[Step], out: &mut BTreeSet<String>) {
    for step in steps {
        match &step.kind {
            StepKind::Send(t) => {
                out.insert(t.name.clone());
            }
            StepKind::Start(c) => {
                if let Some(c) = p.cadences.get(c.name.as_str()) {
                    out.extend(c.touches.iter().map(|t| t.template.name.clone()));
                }
            }
            StepKind::Branch(arms) => arms.iter().for_each(|a| collect_sends(p, &a.steps, out)),
            StepKind::Split(arms) => arms.iter().for_each(|a| collect_sends(p, &a.steps, out)),
            _ => {}
        }
    }
}

/// Walks the steps in order; `sent` holds the templates that may have been
/// sent before the current step on some path.
fn check_steps(
    p: &Project,
    steps: &[Step],
    sent: &mut BTreeSet<String>,
    run: &str,
    problems: &mut Problems,
) {
    if let Some(i) = steps.iter().position(|s| matches!(s.kind, StepKind::Exit))
        && let Some(next) = steps.get(i + 1)
    {
        let last = steps.last().map_or(next.span, |l| l.span);
        problems.push(
            Diagnostic::new(Code::W0604, "the steps after `exit` never run")
                .at(next.span.to(last), "never runs")
                .also(steps[i].span, "the run ends here")
                .help("remove these steps, or move `exit` into a branch arm"),
        );
    }
    for step in steps {
        match &step.kind {
            StepKind::Send(t) => {
                if p.expect_kind(t, Kind::Template, Code::E0202, problems) {
                    sent.insert(t.name.clone());
                }
            }
            StepKind::Wait(_)
            | StepKind::WaitBusiness(_)
            | StepKind::Tag(_)
            | StepKind::Untag(_)
            | StepKind::Exit => {}
            StepKind::WaitUntilTime(time) => {
                super::dates::check_time(p, time, "wait until", problems)
            }
            StepKind::WaitUntil { cond, .. } => {
                check_expr(
                    p,
                    cond,
                    &Scope {
                        event: None,
                        sent: Some((sent, run)),
                    },
                    problems,
                );
            }
            StepKind::Join(l) | StepKind::Leave(l) => {
                p.expect_kind(l, Kind::List, Code::E0203, problems);
            }
            StepKind::Start(c) => {
                if p.expect_kind(c, Kind::Cadence, Code::E0206, problems)
                    && let Some(c) = p.cadences.get(c.name.as_str())
                {
                    sent.extend(c.touches.iter().map(|t| t.template.name.clone()));
                }
            }
            StepKind::Branch(arms) => {
                let before = sent.clone();
                let mut after = before.clone();
                let mut dead: Option<Span> = None;
                for arm in arms {
                    if let Some(reason) = dead {
                        problems.push(
                            Diagnostic::new(Code::W0601, "this branch arm can never run")
                                .at(arm.keyword, "unreachable arm")
                                .also(reason, "an earlier arm always holds")
                                .help(
                                    "the first arm that holds wins: move this arm up or remove it",
                                ),
                        );
                    }
                    match &arm.cond {
                        Some(c) => {
                            check_expr(
                                p,
                                c,
                                &Scope {
                                    event: None,
                                    sent: Some((&before, run)),
                                },
                                problems,
                            );
                            if dead.is_none() && always_holds(p, c) {
                                dead = Some(arm.keyword.to(c.span));
                            }
                        }
                        None => {
                            if dead.is_none() {
                                dead = Some(arm.keyword);
                            }
                        }
                    }
                    let mut arm_sent = before.clone();
                    check_steps(p, &arm.steps, &mut arm_sent, run, problems);
                    after.extend(arm_sent);
                }
                *sent = after;
            }
            StepKind::Split(arms) => {
                if arms.is_empty() {
                    problems.push(
                        Diagnostic::new(Code::E0601, "this split has no arms")
                            .at(step.span, "empty split")
                            .help("give each arm a share and its steps: `split { 50% { … }, 50% { … } }`"),
                    );
                    continue;
                }
                let total: f64 = arms.iter().map(|a| a.share.node).sum::<f64>() + 0.0;
                // A NaN share was already reported as an invalid literal.
                if !total.is_nan() && (total - 100.0).abs() > 1e-9 {
                    let mut d = Diagnostic::new(
                        Code::E0601,
                        format!(
                            "the shares of this split sum to {}%, not 100%",
                            trim_float(total)
                        ),
                    )
                    .at(step.span, format!("shares sum to {}%", trim_float(total)))
                    .help("adjust the shares so that every contact lands in exactly one arm");
                    for a in arms {
                        d = d.also(a.share.span, format!("{}%", trim_float(a.share.node)));
                    }
                    problems.push(d);
                }
                let before = sent.clone();
                let mut after = before.clone();
                for arm in arms {
                    let mut arm_sent = before.clone();
                    check_steps(p, &arm.steps, &mut arm_sent, run, problems);
                    after.extend(arm_sent);
                }
                *sent = after;
            }
        }
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn check_cadences(p: &Project, problems: &mut Problems) {
    // Templates each cadence's run may have sent before it starts.
    let mut before_start: HashMap<&str, BTreeSet<String>> = HashMap::new();
    let mut started: BTreeSet<&str> = BTreeSet::new();
    for s in &p.scenarios {
        let mut sent = BTreeSet::new();
        starts(p, &s.steps, &mut sent, &mut before_start, &mut started);
    }
    // A misspelt `start` is already an unknown-cadence error: do not also
    // call the cadence it meant unused.
    let misspelt: Vec<&str> = started
        .iter()
        .copied()
        .filter(|n| !p.cadences.contains_key(n))
        .collect();
    for c in &p.cadence_order {
        let run = format!("cadence `{}`", c.name.name);
        for (what, spans) in [
            (
                "`stop when`",
                c.stop.iter().map(|e| e.span).collect::<Vec<_>>(),
            ),
            ("`spacing`", {
                // `spacing = 3d` and `spacing = 2 business days` are one setting.
                let mut spans: Vec<_> = c.spacing.iter().map(|s| s.span).collect();
                spans.extend(c.business_spacing.iter().map(|s| s.span));
                spans.sort_by_key(|s| s.start);
                spans
            }),
        ] {
            for span in spans.iter().skip(1) {
                problems.push(given_twice(
                    format!("{what} is given twice in {run}"),
                    *span,
                    spans[0],
                    "keep one of them",
                ));
            }
        }
        if c.touches.is_empty() {
            problems.push(
                Diagnostic::new(Code::E0701, format!("{run} has no touches"))
                    .at(c.name.span, "empty cadence")
                    .help("add touches in order: `touch followup_1`, `touch call_me after 2d`, …"),
            );
        }
        let mut sent = before_start
            .get(c.name.name.as_str())
            .cloned()
            .unwrap_or_default();
        for t in &c.touches {
            // `touch T when EXPR` sees the touches before it (and what the
            // run sent before the cadence started).
            if let Some(w) = &t.when {
                check_expr(
                    p,
                    w,
                    &Scope {
                        event: None,
                        sent: Some((&sent, &run)),
                    },
                    problems,
                );
            }
            if p.expect_kind(&t.template, Kind::Template, Code::E0202, problems) {
                sent.insert(t.template.name.clone());
            }
        }
        for e in &c.stop {
            check_expr(
                p,
                e,
                &Scope {
                    event: None,
                    sent: Some((&sent, &run)),
                },
                problems,
            );
        }
        let meant = misspelt
            .iter()
            .any(|m| crate::diagnostics::did_you_mean(m, [c.name.name.as_str()]).is_some());
        if !started.contains(c.name.name.as_str())
            && !meant
            && !p.incomplete
            && !p.broken_keywords.contains("scenario")
        {
            problems.push(
                Diagnostic::new(Code::W0701, format!("{run} is never started"))
                    .at(c.name.span, "unused cadence")
                    .help(format!(
                        "start it from a scenario with `start {}`, or remove it",
                        c.name.name
                    )),
            );
        }
    }
}

fn starts<'a>(
    p: &'a Project,
    steps: &'a [Step],
    sent: &mut BTreeSet<String>,
    before: &mut HashMap<&'a str, BTreeSet<String>>,
    started: &mut BTreeSet<&'a str>,
) {
    for step in steps {
        match &step.kind {
            StepKind::Send(t) => {
                sent.insert(t.name.clone());
            }
            StepKind::Start(c) => {
                started.insert(c.name.as_str());
                before
                    .entry(c.name.as_str())
                    .or_default()
                    .extend(sent.iter().cloned());
                if let Some(cad) = p.cadences.get(c.name.as_str()) {
                    sent.extend(cad.touches.iter().map(|t| t.template.name.clone()));
                }
            }
            StepKind::Branch(arms) => {
                let base = sent.clone();
                for a in arms {
                    let mut s = base.clone();
                    starts(p, &a.steps, &mut s, before, started);
                    sent.extend(s);
                }
            }
            StepKind::Split(arms) => {
                let base = sent.clone();
                for a in arms {
                    let mut s = base.clone();
                    starts(p, &a.steps, &mut s, before, started);
                    sent.extend(s);
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- pressure paths

/// At most this many paths per scenario are examined.
const MAX_PATHS: usize = 512;

#[derive(Clone, Default)]
struct Path {
    ended: bool,
    time: i64,
    sends: Vec<(i64, String)>,
    trail: Vec<String>,
    /// The `wait until` steps on the path, counted as no time: how many
    /// sends came before each, its span and why it may take no time.
    instant: Vec<(usize, Span, String)>,
}

/// §9's static check: a single path of a scenario that sends more marketing
/// messages inside a cap's window than the cap allows.
pub fn check_pressure_paths(p: &Project, problems: &mut Problems) {
    let Some(policy) = p.pressure else { return };
    for s in &p.scenarios {
        let mut paths = vec![Path::default()];
        walk(p, &s.steps, &mut paths);
        for cap in &policy.caps {
            let scope = cap.scope.name.as_str();
            let window = cap.per.node.seconds();
            if window <= 0 {
                continue;
            }
            for path in &paths {
                // (time, index among the path's sends): times never go
                // down along a path, so this is already in time order.
                let times: Vec<(i64, usize)> = path
                    .sends
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, t))| counts_for(p, t, scope))
                    .map(|(k, &(at, _))| (at, k))
                    .collect();
                let mut worst = 0usize;
                // The sends (first, last) of the fullest window.
                let mut fullest = (0, 0);
                let mut j = 0;
                for i in 0..times.len() {
                    while times[i].0 - times[j].0 >= window {
                        j += 1;
                    }
                    if i - j + 1 > worst {
                        worst = i - j + 1;
                        fullest = (times[j].1, times[i].1);
                    }
                }
                if worst > cap.max.node as usize {
                    let channel = if scope == "all" {
                        "marketing messages".to_string()
                    } else {
                        format!("marketing {scope} messages")
                    };
                    let mut d = Diagnostic::new(
                            Code::W0801,
                            format!(
                                "scenario `{}` alone sends {worst} {channel} within {} on one path; the cap allows {}",
                                s.name.name,
                                p.sources.text(cap.per.span),
                                cap.max.node
                            ),
                        )
                        .at(s.name.span, "this scenario")
                        .also(cap.span, "the cap")
                        .help(format!(
                            "the path: {}. Space the sends with longer waits, or expect the runner to defer them",
                            path.trail.join(" → ")
                        ));
                    // A `wait until` between two sends of that window is
                    // why they may fall in it: say so at the step.
                    let (first, last) = fullest;
                    for (before, span, why) in &path.instant {
                        if *before > first && *before <= last {
                            d = d.also(*span, why.clone());
                        }
                    }
                    problems.push(d);
                    break;
                }
            }
        }
    }
}

fn counts_for(p: &Project, template: &str, scope: &str) -> bool {
    let Some(t) = p.templates.get(template) else {
        return false;
    };
    let channel = t.channel.name.as_str();
    if !matches!(channel, "email" | "sms" | "push") {
        return false;
    }
    let transactional = t
        .attrs
        .iter()
        .any(|a| a.name.name == "kind" && a.value.node == AttrValue::Word("transactional".into()));
    !transactional && (scope == "all" || scope == channel)
}

/// Extends every path through `steps`, forking at branches and splits.
/// Waits count at their shortest (`wait until` may end at once).
fn walk(p: &Project, steps: &[Step], paths: &mut Vec<Path>) {
    for step in steps {
        match &step.kind {
            StepKind::Send(t) => {
                for path in paths.iter_mut().filter(|p| !p.ended) {
                    path.sends.push((path.time, t.name.clone()));
                    path.trail.push(format!("send {}", t.name));
                }
            }
            StepKind::Wait(d) => {
                for path in paths.iter_mut().filter(|p| !p.ended) {
                    path.time += d.node.seconds();
                    path.trail.push(format!("wait {}", p.sources.text(d.span)));
                }
            }
            // A business day counts as one day (it is at least one).
            StepKind::WaitBusiness(n) => {
                for path in paths.iter_mut().filter(|p| !p.ended) {
                    path.time += i64::from(n.node) * 86_400;
                    path.trail.push(format!("wait {}", p.sources.text(n.span)));
                }
            }
            StepKind::Start(c) => {
                let Some(c) = p.cadences.get(c.name.as_str()) else {
                    continue;
                };
                let spacing = c
                    .spacing
                    .first()
                    .map(|s| (s.span.start, s.node.seconds()))
                    .into_iter()
                    .chain(
                        c.business_spacing
                            .first()
                            .map(|s| (s.span.start, i64::from(s.node) * 86_400)),
                    )
                    .min()
                    .map_or(86_400, |(_, s)| s);
                for path in paths.iter_mut().filter(|p| !p.ended) {
                    // A conditional touch counts: it may send.
                    for (i, touch) in c.touches.iter().enumerate() {
                        let gap = touch
                            .after
                            .as_ref()
                            .map(|a| a.node.seconds())
                            .or(touch.after_business.map(|n| i64::from(n.node) * 86_400))
                            .unwrap_or(if i == 0 { 0 } else { spacing });
                        path.time += gap;
                        path.sends.push((path.time, touch.template.name.clone()));
                    }
                    path.trail.push(format!("start {}", c.name.name));
                }
            }
            StepKind::Exit => {
                // The run ends here: later steps add nothing to these paths.
                for path in paths.iter_mut() {
                    path.ended = true;
                }
            }
            StepKind::Branch(arms) => {
                let mut out = Vec::new();
                let has_else = arms.iter().any(|a| a.cond.is_none());
                for arm in arms {
                    let label = match &arm.cond {
                        Some(c) => format!("when {}", p.sources.text(c.span)),
                        None => "else".to_string(),
                    };
                    let mut forked: Vec<Path> = paths
                        .iter()
                        .cloned()
                        .map(|mut pa| {
                            pa.trail.push(label.clone());
                            pa
                        })
                        .collect();
                    walk(p, &arm.steps, &mut forked);
                    out.extend(forked);
                }
                if !has_else {
                    out.extend(paths.iter().cloned());
                }
                out.truncate(MAX_PATHS);
                *paths = out;
            }
            StepKind::Split(arms) => {
                let mut out = Vec::new();
                for arm in arms {
                    let mut forked: Vec<Path> = paths
                        .iter()
                        .cloned()
                        .map(|mut pa| {
                            pa.trail
                                .push(format!("{}% arm", trim_float(arm.share.node)));
                            pa
                        })
                        .collect();
                    walk(p, &arm.steps, &mut forked);
                    out.extend(forked);
                }
                out.truncate(MAX_PATHS);
                *paths = out;
            }
            // `wait until` may take no time at all: the worst case.
            StepKind::WaitUntil { cond, timeout } => {
                let what = p.sources.text(cond.span);
                let why = format!("counted as no time: it goes on at once when `{what}` holds");
                let trail = format!("wait until {what} for {}", p.sources.text(timeout.span));
                until_at_once(paths, step.span, trail, why);
            }
            StepKind::WaitUntilTime(time) => {
                let what = p.sources.text(time.span);
                let why = format!(
                    "counted as no time: it goes on at once when `{what}` has passed or is absent"
                );
                until_at_once(paths, step.span, format!("wait until {what}"), why);
            }
            StepKind::Join(_) | StepKind::Leave(_) | StepKind::Tag(_) | StepKind::Untag(_) => {}
        }
    }
}

/// Adds a `wait until` step, which takes no time, to the open paths.
fn until_at_once(paths: &mut [Path], span: Span, trail: String, why: String) {
    for path in paths.iter_mut().filter(|p| !p.ended) {
        path.trail.push(trail.clone());
        path.instant.push((path.sends.len(), span, why.clone()));
    }
}
