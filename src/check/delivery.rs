//! Checks of the v1.1 delivery controls (LANGUAGE.md §12): the template
//! attributes `expires` and `priority`, and the `quiet` rules of the
//! pressure policy (`quiet weekends`, channel-scoped rules, several rules).

use std::collections::HashMap;

use super::Project;
use super::types::CHANNELS;
use crate::diagnostics::{Code, Diagnostic, Problems, Span, suggest};
use crate::syntax::ast::*;

/// Template attributes of every channel added by this module.
pub const TEMPLATE_ATTRS: [&str; 2] = ["expires", "priority"];

/// The values of `priority`, highest first.
pub const PRIORITIES: [&str; 3] = ["high", "normal", "low"];

/// Checks the value of `expires` or `priority` on a template.
pub fn check_template_attr(p: &Project, a: &Attr, problems: &mut Problems) {
    let name = a.name.name.as_str();
    let shown = match &a.value.node {
        AttrValue::Duration(_) if name == "expires" => return,
        AttrValue::Word(w) if name == "priority" && PRIORITIES.contains(&w.as_str()) => return,
        AttrValue::Word(w) | AttrValue::Str(w) => w.clone(),
        AttrValue::File(_) | AttrValue::Duration(_) => p.sources.text(a.value.span).to_string(),
    };
    let d = if name == "expires" {
        Diagnostic::new(Code::E0112, format!("`expires` takes a duration, not `{shown}`"))
            .at(a.value.span, "expected a duration like `12h`")
            .help("write how long after its first due time a deferred message may still go out, like `expires = 12h`")
    } else {
        Diagnostic::new(Code::E0112, format!("`{shown}` is not a priority"))
            .at(a.value.span, "expected `high`, `normal` or `low`")
            .help_opt(suggest(&shown, PRIORITIES, || {
                Some("write `priority = high`, `priority = normal` or `priority = low`".into())
            }))
    };
    problems.push(d);
}

/// Whether pressure can move a message of template `t`: a marketing message
/// under a policy with any cap, gap or unscoped quiet rule, or any message of
/// a channel that a channel-scoped quiet rule holds.
fn pressure_can_defer(t: &Template, policy: Option<&PressurePolicy>) -> bool {
    let Some(policy) = policy else { return false };
    let channel = t.channel.name.as_str();
    let transactional = t
        .attrs
        .iter()
        .any(|a| a.name.name == "kind" && a.value.node == AttrValue::Word("transactional".into()));
    let marketing = matches!(channel, "email" | "sms" | "push") && !transactional;
    let scoped = policy
        .quiet
        .iter()
        .any(|q| q.channel.as_ref().is_some_and(|c| c.name == channel));
    let general = !policy.caps.is_empty()
        || !policy.gaps.is_empty()
        || policy.quiet.iter().any(|q| q.channel.is_none());
    scoped || (marketing && general)
}

/// W0570: `expires` on a template that pressure never defers.
pub fn check_expiry(p: &Project, problems: &mut Problems) {
    for t in &p.template_order {
        let Some(a) = t.attrs.iter().find(|a| a.name.name == "expires") else {
            continue;
        };
        if !matches!(a.value.node, AttrValue::Duration(_))
            || !CHANNELS.contains(&t.channel.name.as_str())
            || pressure_can_defer(t, p.pressure)
            || p.maybe_declared("pressure")
            || p.broken_keywords.contains("pressure")
        {
            continue;
        }
        let why = if p.pressure.is_none() {
            "the project has no `pressure` policy".to_string()
        } else {
            format!(
                "`{}` messages of this kind are exempt from caps, gap and quiet hours, and no `quiet {}` rule holds them",
                t.channel.name, t.channel.name
            )
        };
        problems.push(
            Diagnostic::new(
                Code::W0570,
                format!(
                    "`expires` on template `{}` never applies: {why}",
                    t.name.name
                ),
            )
            .at(a.name.span, "this message is never deferred")
            .help("remove `expires`, or add the pressure rule that should defer this message"),
        );
    }
}

/// The `quiet` rules: known channels, non-empty intervals, no rule twice.
pub fn check_quiet(policy: &PressurePolicy, problems: &mut Problems) {
    let mut seen: HashMap<(Option<&str>, bool, Clock, Clock), Span> = HashMap::new();
    for q in &policy.quiet {
        if let Some(c) = &q.channel
            && !CHANNELS.contains(&c.name.as_str())
        {
            problems.push(
                Diagnostic::new(Code::E0110, format!("unknown channel `{}`", c.name))
                    .at(c.span, "not a channel")
                    .help_opt(suggest(&c.name, CHANNELS.iter().copied(), || {
                        Some(
                            "a quiet rule may name one channel: email, sms, push, task or webhook"
                                .into(),
                        )
                    })),
            );
            continue;
        }
        if !q.weekends && q.start.node == q.end.node {
            problems.push(
                Diagnostic::new(
                    Code::E0802,
                    "quiet hours that start and end at the same time are empty",
                )
                .at(q.span, "empty interval")
                .help("write an interval like `quiet 21:00 to 08:00`, or remove the line"),
            );
            continue;
        }
        let key = (
            q.channel.as_ref().map(|c| c.name.as_str()),
            q.weekends,
            q.start.node,
            q.end.node,
        );
        if let Some(&first) = seen.get(&key) {
            problems.push(
                Diagnostic::new(Code::E0104, "this quiet rule is given twice")
                    .at(q.span, "duplicate rule")
                    .also(first, "first given here")
                    .help("keep one of them"),
            );
            continue;
        }
        seen.insert(key, q.span);
    }
    check_always_quiet(policy, problems);
}

/// Whether the intervals together cover every minute of the day.
fn covers_the_day(rules: &[&Quiet]) -> bool {
    (0..24 * 60u16).all(|m| {
        rules.iter().any(|q| {
            let (s, e) = (q.start.node.0, q.end.node.0);
            if s < e {
                s <= m && m < e
            } else {
                s > e && (m >= s || m < e)
            }
        })
    })
}

/// E0870: quiet rules that together hold every minute of the day leave no
/// time to send (for marketing messages, or for one channel).
fn check_always_quiet(policy: &PressurePolicy, problems: &mut Problems) {
    let hours = |scope: Option<&str>, with_unscoped: bool| -> Vec<&Quiet> {
        policy
            .quiet
            .iter()
            .filter(|q| !q.weekends && q.start.node != q.end.node)
            .filter(|q| match &q.channel {
                None => with_unscoped,
                Some(c) => Some(c.name.as_str()) == scope,
            })
            .collect()
    };
    let mut scopes: Vec<(String, Vec<&Quiet>)> =
        vec![("marketing messages".into(), hours(None, true))];
    for &c in CHANNELS.iter() {
        let marketing = matches!(c, "email" | "sms" | "push");
        if policy
            .quiet
            .iter()
            .any(|q| q.channel.as_ref().is_some_and(|x| x.name == c))
        {
            let who = if marketing {
                format!("marketing `{c}` messages")
            } else {
                format!("`{c}` messages (operational)")
            };
            scopes.push((who, hours(Some(c), marketing)));
        }
    }
    for (who, rules) in scopes {
        if rules.len() < 2 || !covers_the_day(&rules) {
            continue;
        }
        let (last, rest) = rules.split_last().expect("two rules at least");
        let mut d = Diagnostic::new(
            Code::E0870,
            format!(
                "these quiet rules together hold every minute of the day: {who} could never be sent"
            ),
        )
        .at(last.span, "with the rules above, no time is left");
        for r in rest {
            d = d.also(r.span, "quiet rule");
        }
        problems.push(d.help("shorten an interval so that some hours of the day stay open"));
        return;
    }
}
