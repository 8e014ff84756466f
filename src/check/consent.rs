//! Consent and subscription topics (LANGUAGE.md §12): `topic NAME "label"`,
//! `consent CHANNEL = EXPR` and a template's `topic = NAME`.

use std::collections::HashMap;

use super::expr::{Scope, check_expr};
use super::types::{CHANNELS, Field, Type};
use super::{Kind, Project};
use crate::diagnostics::{Code, Diagnostic, Problems, Span, suggest};
use crate::syntax::ast::*;

/// Once a project declares topics, the built-in `unsubscribed` event may
/// name one (`"topic"`): a per-topic unsubscribe. Without topics the event
/// keeps its v1 fields, so plans of v1 projects do not change.
pub(super) fn add_topic_field(p: &mut Project) {
    if p.topics.is_empty() {
        return;
    }
    if let Some(fields) = p.events.get_mut("unsubscribed") {
        let _ = fields.push(Field {
            name: "topic".to_string(),
            ty: Type::Text,
            optional: true,
            span: None,
        });
    }
}

/// Whether template `t` is a marketing message (`kind` absent or
/// `marketing` on email, sms and push).
pub fn is_marketing(t: &Template) -> bool {
    matches!(t.channel.name.as_str(), "email" | "sms" | "push")
        && !t.attrs.iter().any(|a| {
            a.name.name == "kind" && a.value.node == AttrValue::Word("transactional".into())
        })
}

/// The topic a template names (`topic = newsletter`), if any.
pub fn template_topic(t: &Template) -> Option<(&str, Span)> {
    t.attrs
        .iter()
        .find(|a| a.name.name == "topic")
        .and_then(|a| match &a.value.node {
            AttrValue::Word(w) => Some((w.as_str(), a.value.span)),
            _ => None,
        })
}

pub fn check_consent(p: &Project, problems: &mut Problems) {
    check_topics(p, problems);
    let rules = check_rules(p, problems);
    check_template_topics(p, problems);
    check_sms_consent(p, &rules, problems);
}

fn check_topics(p: &Project, problems: &mut Problems) {
    for t in &p.topics {
        if t.label.node.trim().is_empty() {
            problems.push(
                Diagnostic::new(
                    Code::E0112,
                    format!("topic `{}` has an empty label", t.name.name),
                )
                .at(t.label.span, "empty label")
                .help(format!(
                    "the label is what contacts see on the preferences page: `topic {} \"…\"`",
                    t.name.name
                )),
            );
        }
    }
}

/// Checks every `consent` rule; returns the first rule of each channel.
fn check_rules<'a>(p: &Project<'a>, problems: &mut Problems) -> HashMap<&'a str, &'a ConsentRule> {
    let mut first: HashMap<&str, &ConsentRule> = HashMap::new();
    for rule in &p.consents {
        let channel = rule.channel.name.as_str();
        if !CHANNELS.contains(&channel) {
            problems.push(
                Diagnostic::new(Code::E0110, format!("unknown channel `{channel}`"))
                    .at(rule.channel.span, "not a channel")
                    .help_opt(suggest(channel, ["email", "sms", "push"], || {
                        Some("consent rules are for the channels email, sms and push".into())
                    })),
            );
        } else if matches!(channel, "task" | "webhook") {
            problems.push(
                Diagnostic::new(
                    Code::E0141,
                    format!("`{channel}` messages are operational and take no consent rule"),
                )
                .at(rule.channel.span, "operational channel")
                .help("consent rules apply to marketing messages, which only email, sms and push send; remove this rule"),
            );
        } else if let Some(other) = first.get(channel) {
            problems.push(
                Diagnostic::new(
                    Code::E0140,
                    format!("`consent {channel}` is given twice"),
                )
                .at(rule.channel.span, "second rule for this channel")
                .also(other.channel.span, "first rule here")
                .help(format!(
                    "a channel has one consent rule; join the conditions into one: `consent {channel} = A and B`"
                )),
            );
        } else {
            first.insert(channel, rule);
        }
        if !not_a_condition(p, rule, problems) {
            check_expr(p, &rule.expr, &Scope::default(), problems);
        }
    }
    first
}

/// E0340 for `consent sms = sms_consent_at` (a field that is not a bool);
/// true when reported, so the generic check does not report it again.
fn not_a_condition(p: &Project, rule: &ConsentRule, problems: &mut Problems) -> bool {
    let ExprKind::Name(ident) = &rule.expr.kind else {
        return false;
    };
    if matches!(p.kind_of(&ident.name), Some(Kind::Segment | Kind::List)) {
        return false;
    }
    let Some(field) = p.schema.get(&ident.name) else {
        return false;
    };
    if field.ty == Type::Bool {
        return false;
    }
    let name = &ident.name;
    let channel = &rule.channel.name;
    let example = match &field.ty {
        Type::Timestamp | Type::Date => format!("consent {channel} = {name} is set"),
        Type::SetText => format!("consent {channel} = {name} contains \"{channel}\""),
        Type::Enum(v) => format!(
            "consent {channel} = {name} == {}",
            v.first().map(String::as_str).unwrap_or("…")
        ),
        _ if field.optional => format!("consent {channel} = {name} is set"),
        _ => format!("consent {channel} = {name} == \"yes\""),
    };
    problems.push(
        Diagnostic::new(
            Code::E0340,
            format!(
                "the consent rule for `{channel}` is {} field, not a condition",
                super::types::with_article(&field.ty.describe())
            ),
        )
        .at(ident.span, "not a bool")
        .help(format!(
            "a consent rule says when a contact has agreed; write a condition such as `{example}`"
        )),
    );
    true
}

/// Unknown topics (E0240) and marketing emails without a topic once any
/// topic exists (W0540).
fn check_template_topics(p: &Project, problems: &mut Problems) {
    for t in &p.template_order {
        let Some(attr) = t.attrs.iter().find(|a| a.name.name == "topic") else {
            if !p.topics.is_empty() && t.channel.name == "email" && is_marketing(t) {
                let first = p.topics[0].name.name.as_str();
                problems.push(
                    Diagnostic::new(
                        Code::W0540,
                        format!("marketing email `{}` names no topic", t.name.name),
                    )
                    .at(t.name.span, "no `topic = …`")
                    .help(format!(
                        "the project has topics, so contacts can unsubscribe by topic; say which one this email belongs to, like `topic = {first}`"
                    )),
                );
            }
            continue;
        };
        // `topic` on a task or webhook is already an unknown attribute.
        if !matches!(t.channel.name.as_str(), "email" | "sms" | "push") {
            continue;
        }
        let AttrValue::Word(name) = &attr.value.node else {
            problems.push(
                Diagnostic::new(Code::E0112, "`topic` takes a topic name")
                    .at(attr.value.span, "expected a name, not a string or a file")
                    .help(
                        "write the name of a declared topic without quotes: `topic = newsletter`",
                    ),
            );
            continue;
        };
        let ident = Ident {
            name: name.clone(),
            span: attr.value.span,
        };
        p.expect_kind(&ident, Kind::Topic, Code::E0240, problems);
    }
}

/// E0540: marketing SMS needs prior consent, so a project that sends one
/// must say who gave it.
fn check_sms_consent(p: &Project, rules: &HashMap<&str, &ConsentRule>, problems: &mut Problems) {
    if rules.contains_key("sms")
        || p.consents.iter().any(|r| r.channel.name == "sms")
        || p.broken_keywords.contains("consent")
        || p.incomplete
    {
        return;
    }
    let mut sms = p
        .template_order
        .iter()
        .filter(|t| t.channel.name == "sms" && is_marketing(t));
    let Some(first) = sms.next() else {
        return;
    };
    let field = p
        .schema
        .list
        .iter()
        .find(|f| f.ty == Type::Bool && !f.optional && f.name.contains("sms"))
        .map(|f| f.name.as_str());
    let how = match field {
        Some(f) => format!("add `consent sms = {f}`"),
        None => "add a bool field such as `sms_opt_in: bool` to the contact schema and declare `consent sms = sms_opt_in`".to_string(),
    };
    let mut d = Diagnostic::new(
        Code::E0540,
        format!(
            "marketing SMS `{}` is sent, and the project has no `consent sms` rule",
            first.name.name
        ),
    )
    .at(first.name.span, "marketing SMS")
    .help(format!(
        "SMS marketing needs the contact's prior consent: {how} (any condition works, e.g. `consent sms = sms_opt_in_at is set`); a project written for relance 1.0 needs this line now. If the message is not marketing, declare `kind = transactional`"
    ));
    for other in sms.take(3) {
        d = d.also(other.name.span, "another marketing SMS");
    }
    problems.push(d);
}

#[cfg(test)]
mod tests {
    use crate::diagnostics::{Problems, SourceFile, SourceMap};

    fn codes(text: &str) -> Vec<String> {
        let mut sources = SourceMap::new();
        sources.add(SourceFile::new("main.camp", text));
        let checked = crate::driver::check_sources(&sources, Problems::new(), 1);
        checked.diagnostics.iter().map(|d| d.to_string()).collect()
    }

    const PROJECT: &str = r#"
workspace { name = "x", address = "1 rue" }
contact { email: email }
segment left_offers = count(unsubscribed where topic == "offers") > 0
persona ann {
  email = "a@example.com"
  event unsubscribed { channel = "email", topic = "offers" } at 3d ago
  expect left_offers
}
"#;

    /// Once topics exist, `unsubscribed` has a `topic` field: in personas
    /// and in conditions (`topic` is a keyword, read there as a field).
    #[test]
    fn the_unsubscribe_topic_is_a_field_once_topics_exist() {
        let found = codes(&format!("{PROJECT}topic offers \"Offers\"\n"));
        assert!(found.is_empty(), "{found:#?}");
    }

    /// Without topics, the built-in event keeps its v1 fields.
    #[test]
    fn without_topics_the_unsubscribe_has_no_topic_field() {
        let found = codes(PROJECT);
        assert!(found.iter().any(|d| d.contains("E0210")), "{found:#?}");
    }
}
