//! Checks of the workspace, lists, personas, templates and the pressure
//! policy: attributes, values and their types.

use std::collections::HashMap;

use super::expr::{Scope, check_expr};
use super::types::{self, CHANNELS, Fields, Type, address_type, is_time_zone};
use super::{Kind, Project};
use crate::diagnostics::{Code, Diagnostic, Problems, Span, suggest};
use crate::syntax::ast::*;

/// E0105 for a setting given again at `again`, first given at `first`.
pub(super) fn given_twice(
    message: String,
    again: Span,
    first: Span,
    help: impl Into<String>,
) -> Diagnostic {
    Diagnostic::new(Code::E0105, message)
        .at(again, "given again here")
        .also(first, "first given here")
        .help(help)
}

/// Reports a setting given twice; returns false for the second one.
fn first_time<'a>(
    seen: &mut HashMap<&'a str, Span>,
    key: &'a str,
    span: Span,
    what: &str,
    problems: &mut Problems,
) -> bool {
    if let Some(&first) = seen.get(key) {
        problems.push(given_twice(
            format!("{what} is given twice"),
            span,
            first,
            "keep one of them",
        ));
        return false;
    }
    seen.insert(key, span);
    true
}

/// Checks `name = value` attributes against the allowed names; returns the
/// attributes by name (first occurrence).
fn attributes<'a>(
    attrs: &'a [Attr],
    allowed: &[&str],
    owner: &str,
    problems: &mut Problems,
) -> HashMap<&'a str, &'a Attr> {
    attributes_listing(attrs, allowed, allowed, owner, problems)
}

/// Like `attributes`, with the help listing only `listed`: an attribute
/// accepted only to get its own error (`kind` on a task) is not advertised.
fn attributes_listing<'a>(
    attrs: &'a [Attr],
    allowed: &[&str],
    listed: &[&str],
    owner: &str,
    problems: &mut Problems,
) -> HashMap<&'a str, &'a Attr> {
    let mut seen = HashMap::new();
    let mut out = HashMap::new();
    for a in attrs {
        let name = a.name.name.as_str();
        if !allowed.contains(&name) {
            problems.push(
                Diagnostic::new(Code::E0106, format!("{owner} has no attribute `{name}`"))
                    .at(a.name.span, "unknown attribute")
                    .help_opt(suggest(name, listed.iter().copied(), || {
                        Some(format!("the attributes are: {}", listed.join(", ")))
                    })),
            );
            continue;
        }
        if first_time(&mut seen, name, a.name.span, &format!("`{name}`"), problems) {
            out.insert(name, a);
        }
    }
    out
}

fn expect_string<'a>(a: &'a Attr, problems: &mut Problems) -> Option<&'a str> {
    match &a.value.node {
        AttrValue::Str(s) => Some(s),
        _ => {
            problems.push(
                Diagnostic::new(Code::E0112, format!("`{}` takes a string", a.name.name))
                    .at(a.value.span, "expected a string in double quotes")
                    .help(format!("write `{} = \"…\"`", a.name.name)),
            );
            None
        }
    }
}

pub fn check_workspace(p: &Project, problems: &mut Problems) {
    let Some(w) = p.workspace else { return };
    let attrs = attributes(
        &w.attrs,
        &["name", "timezone", "from", "address", "locales", "locale"],
        "`workspace`",
        problems,
    );
    for a in attrs.values() {
        // `locales` and `locale` are checked with the locales (`check::locales`).
        if matches!(a.name.name.as_str(), "locales" | "locale") {
            continue;
        }
        let Some(value) = expect_string(a, problems) else {
            continue;
        };
        if a.name.name == "from"
            && let Err(e) = crate::mailbox::parse_mailbox(value)
        {
            problems.push(
                Diagnostic::new(
                    Code::E0533,
                    format!("the workspace `from` is not one mailbox: {}", e.message),
                )
                .at(a.value.span, "not one RFC 5322 mailbox")
                .help(e.help),
            );
        }
        if a.name.name == "timezone" && !is_time_zone(value) {
            problems.push(
                Diagnostic::new(Code::E0111, format!("`{value}` is not an IANA time zone"))
                    .at(a.value.span, "unknown time zone")
                    .help("write a zone of the tz database, like \"Europe/Paris\" or \"America/New_York\""),
            );
        }
    }
}

/// The steps allowed in an `on join` rule reference lists.
pub fn check_lists(p: &Project, problems: &mut Problems) {
    for l in &p.lists {
        for step in &l.on_join {
            if let StepKind::Join(x) | StepKind::Leave(x) = &step.kind {
                p.expect_kind(x, Kind::List, Code::E0203, problems);
            }
        }
    }
}

// ---------------------------------------------------------------- personas

pub fn check_personas(p: &Project, problems: &mut Problems) {
    for persona in &p.personas {
        let mut seen = HashMap::new();
        for v in &persona.values {
            let name = v.name.name.as_str();
            if !first_time(&mut seen, name, v.name.span, &format!("`{name}`"), problems) {
                continue;
            }
            match name {
                "lists" => check_persona_lists(p, v, problems),
                "tags" => check_value(p, "tags", &Type::SetText, &v.value, problems),
                "id" => check_value(p, "id", &Type::Text, &v.value, problems),
                _ => match p.schema.get(name) {
                    Some(f) => check_value(p, name, &f.ty, &v.value, problems),
                    None if p.has_schema && !p.schema_incomplete() => problems.push(
                        Diagnostic::new(Code::E0201, format!("unknown field `{name}`"))
                            .at(v.name.span, "no contact field has this name")
                            .help_opt(suggest(name, p.schema.names().chain(["lists", "tags", "id"]), || {
                                Some("declare the field in `contact { … }` or check the spelling".into())
                            })),
                    ),
                    None => {}
                },
            }
        }
        let written: Vec<&FieldValue> = persona.values.iter().collect();
        let missing = missing_required(&p.schema, &seen, &written);
        if !missing.is_empty() {
            problems.push(
                Diagnostic::new(
                    Code::E0402,
                    format!(
                        "persona `{}` does not set the required field{} {}",
                        persona.name.name,
                        plural(missing.len()),
                        quoted(&missing)
                    ),
                )
                .at(persona.name.span, "missing required fields")
                .help(format!(
                    "set {} in the persona, or mark the field{} optional with `?` in the contact schema",
                    and_list(&missing), plural(missing.len())
                )),
            );
        }
        for ev in &persona.events {
            check_persona_event(p, ev, problems);
        }
        for e in &persona.expects {
            check_expr(p, e, &Scope::default(), problems);
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn and_list(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        n => format!("{} and {}", q[..n - 1].join(", "), q[n - 1]),
    }
}

/// Required fields not set, leaving out those an unknown (misspelt) name
/// already points at.
fn missing_required<'f>(
    fields: &'f Fields,
    set: &HashMap<&str, Span>,
    written: &[&FieldValue],
) -> Vec<&'f str> {
    fields
        .list
        .iter()
        .filter(|f| !f.optional && !set.contains_key(f.name.as_str()))
        .filter(|f| {
            !written.iter().any(|v| {
                fields.get(&v.name.name).is_none()
                    && crate::diagnostics::did_you_mean(&v.name.name, [f.name.as_str()]).is_some()
            })
        })
        .map(|f| f.name.as_str())
        .collect()
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_persona_lists(p: &Project, v: &FieldValue, problems: &mut Problems) {
    let Value::List(items) = &v.value else {
        problems.push(
            Diagnostic::new(Code::E0401, "`lists` takes a list of list names")
                .at(v.value.span(), "not a list")
                .help("write `lists = [prospects, newsletter]`"),
        );
        return;
    };
    for item in &items.node {
        match &item.kind {
            TermKind::Name(n) => {
                let ident = Ident {
                    name: n.clone(),
                    span: item.span,
                };
                p.expect_kind(&ident, Kind::List, Code::E0203, problems);
            }
            _ => problems.push(
                Diagnostic::new(Code::E0401, "`lists` holds list names, not values")
                    .at(item.span, "not a list name")
                    .help("write the names without quotes: `lists = [prospects]`"),
            ),
        }
    }
}

fn check_persona_event(p: &Project, ev: &PersonaEvent, problems: &mut Problems) {
    if !p.events.contains_key(ev.name.name.as_str()) {
        p.expect_kind(&ev.name, Kind::Event, Code::E0205, problems);
    }
    if ev.at.literal_time(0).is_none() {
        problems.push(
            Diagnostic::new(Code::E0401, "an event happens at a point in time")
                .at(ev.at.span, "not a time")
                .help("write `at 2d ago`, `at now` or a timestamp"),
        );
    }
    let Some(fields) = p.event_fields(&ev.name.name) else {
        return;
    };
    let builtin = super::types::BUILTIN_EVENTS.contains(&ev.name.name.as_str());
    let mut seen = HashMap::new();
    for v in &ev.values {
        let name = v.name.name.as_str();
        if !first_time(&mut seen, name, v.name.span, &format!("`{name}`"), problems) {
            continue;
        }
        match fields.get(name) {
            Some(f) => {
                check_value(p, name, &f.ty, &v.value, problems);
                if builtin && name == "template" {
                    check_template_ref(p, &v.value, problems);
                }
            }
            None => problems.push(
                Diagnostic::new(
                    Code::E0210,
                    format!("event `{}` has no field `{name}`", ev.name.name),
                )
                .at(v.name.span, "unknown event field")
                .help_opt(suggest(name, fields.names(), || {
                    Some(format!(
                        "the fields of `{}` are: {}",
                        ev.name.name,
                        fields.names().collect::<Vec<_>>().join(", ")
                    ))
                })),
            ),
        }
    }
    if ev.name.name == "clicked" {
        check_clicked_link(p, ev, problems);
    }
    let written: Vec<&FieldValue> = ev.values.iter().collect();
    let missing = missing_required(fields, &seen, &written);
    if !missing.is_empty() {
        problems.push(
            Diagnostic::new(
                Code::E0402,
                format!(
                    "this `{}` event does not set the required field{} {}",
                    ev.name.name,
                    plural(missing.len()),
                    quoted(&missing)
                ),
            )
            .at(ev.name.span, "missing required fields")
            .help(format!("set {} in `{{ … }}`", quoted(&missing))),
        );
    }
}

/// `event clicked { template = "offer", link = "gps" }`: the link must be
/// one of the template's.
fn check_clicked_link(p: &Project, ev: &PersonaEvent, problems: &mut Problems) {
    let text_of = |field: &str| {
        ev.values
            .iter()
            .find(|v| v.name.name == field)
            .and_then(|v| match &v.value {
                Value::Term(Term {
                    kind: TermKind::Str(s),
                    span,
                }) => Some((s.as_str(), *span)),
                _ => None,
            })
    };
    let (Some((template, _)), Some((link, link_span))) = (text_of("template"), text_of("link"))
    else {
        return;
    };
    let Some(t) = p.templates.get(template) else {
        return;
    };
    if !t.links.iter().any(|l| l.name.name == link) {
        let names: Vec<&str> = t.links.iter().map(|l| l.name.name.as_str()).collect();
        problems.push(
            Diagnostic::new(
                Code::E0204,
                format!("template `{template}` has no link `{link}`"),
            )
            .at(link_span, "unknown link")
            .also(t.name.span, "template declared here")
            .help_opt(suggest(link, names.iter().copied(), || {
                Some(if names.is_empty() {
                    format!("`{template}` declares no links")
                } else {
                    format!("the links of `{template}` are: {}", names.join(", "))
                })
            })),
        );
    }
}

/// `event opened { template = "welcome" }` must name a real template.
fn check_template_ref(p: &Project, value: &Value, problems: &mut Problems) {
    if let Value::Term(Term {
        kind: TermKind::Str(s),
        span,
    }) = value
    {
        let ident = Ident {
            name: s.clone(),
            span: *span,
        };
        p.expect_kind(&ident, Kind::Template, Code::E0202, problems);
    }
}

/// A persona value against a field type.
fn check_value(p: &Project, name: &str, ty: &Type, value: &Value, problems: &mut Problems) {
    let wrong = |what: &str, problems: &mut Problems| {
        problems.push(
            Diagnostic::new(
                Code::E0401,
                format!(
                    "`{name}` is {} but this value is {what}",
                    types::with_article(&ty.describe())
                ),
            )
            .at(value.span(), format!("expected {}", ty.describe()))
            .help(example_for(ty)),
        );
    };
    let term = match value {
        Value::List(items) => {
            if *ty != Type::SetText {
                wrong("a list", problems);
                return;
            }
            for item in &items.node {
                if !matches!(item.kind, TermKind::Str(_)) {
                    problems.push(
                        Diagnostic::new(Code::E0401, format!("`{name}` holds text values"))
                            .at(item.span, "expected a string")
                            .help("write each value in double quotes: `[\"gps\", \"kids\"]`"),
                    );
                }
            }
            return;
        }
        Value::Term(t) => t,
    };
    if let TermKind::Shifted { base, .. } = &term.kind
        && base.unshifted().0.literal_time(0).is_none()
    {
        problems.push(
            Diagnostic::new(
                Code::E0350,
                "only a timestamp or a date can add or subtract a duration",
            )
            .at(term.span, "a duration added to a value that is not a time")
            .help("write a time and move it, like `now + 10d` or `2026-01-15 + 30d`"),
        );
        return;
    }
    let ok = match (ty, &term.kind) {
        (Type::Text | Type::Device, TermKind::Str(_)) => true,
        (Type::Email, TermKind::Str(s)) => {
            if !looks_like_email(s) {
                problems.push(
                    Diagnostic::new(Code::E0401, format!("`{s}` is not an email address"))
                        .at(term.span, "invalid email address")
                        .help("write an address like \"marie@example.com\""),
                );
            }
            true
        }
        (Type::Phone, TermKind::Str(s)) => {
            if !looks_like_phone(s) {
                problems.push(
                    Diagnostic::new(Code::E0401, format!("`{s}` is not a phone number"))
                        .at(term.span, "invalid phone number")
                        .help("write an international number like \"+33612345678\""),
                );
            }
            true
        }
        (Type::Timezone, TermKind::Str(s)) => {
            if !is_time_zone(s) {
                problems.push(
                    Diagnostic::new(Code::E0111, format!("`{s}` is not an IANA time zone"))
                        .at(term.span, "unknown time zone")
                        .help("write a zone of the tz database, like \"Europe/Paris\""),
                );
            }
            true
        }
        (Type::Number, TermKind::Number(_)) => true,
        (Type::Bool, TermKind::Bool(_)) => true,
        (Type::Date, TermKind::Date(_)) => true,
        (
            Type::Timestamp,
            TermKind::Timestamp(_) | TermKind::Ago(_) | TermKind::Now | TermKind::Date(_),
        ) => true,
        // `now + 10d`, `2026-01-15 + 30d`: a date moved by whole days
        // stays a date.
        (Type::Timestamp, TermKind::Shifted { .. }) => term.literal_time(0).is_some(),
        (Type::Date, TermKind::Shifted { .. }) => {
            matches!(term.literal_time(0), Some(TimeValue::Date(_)))
        }
        (Type::Enum(variants), TermKind::Name(v)) => {
            if !variants.contains(v) {
                problems.push(
                    Diagnostic::new(Code::E0209, format!("`{v}` is not a variant of `{name}`"))
                        .at(term.span, "unknown variant")
                        .help_opt(suggest(v, variants.iter().map(String::as_str), || {
                            Some(format!("the variants are: {}", variants.join(", ")))
                        })),
                );
            }
            true
        }
        (Type::SetText, _) => false,
        _ => false,
    };
    if !ok {
        let what = match &term.kind {
            TermKind::Str(_) => "text",
            TermKind::Number(_) => "a number",
            TermKind::Bool(_) => "a bool",
            TermKind::Date(_) => "a date",
            TermKind::Timestamp(_) | TermKind::Ago(_) | TermKind::Now => "a timestamp",
            TermKind::Duration(_) => "a duration",
            TermKind::Percent(_) => "a percentage",
            TermKind::Clock(_) => "a time of day",
            TermKind::Name(_) => "a bare name",
            TermKind::Shifted { .. } => match term.literal_time(0) {
                Some(TimeValue::Date(_)) => "a date",
                Some(TimeValue::Instant(_)) => "a timestamp",
                None => "not a point in time",
            },
        };
        let _ = p;
        wrong(what, problems);
    }
}

fn example_for(ty: &Type) -> String {
    match ty {
        Type::Text => "write text in double quotes: \"Lyon\"".into(),
        Type::Email => "write an address in double quotes: \"marie@example.com\"".into(),
        Type::Phone => "write a number in double quotes: \"+33612345678\"".into(),
        Type::Device => "write the push token in double quotes".into(),
        Type::Timezone => "write a zone in double quotes: \"Europe/Paris\"".into(),
        Type::Number => "write a number: `1200` or `12.50`".into(),
        Type::Bool => "write `true` or `false`".into(),
        Type::Date => "write a date: `2026-01-15`".into(),
        Type::Timestamp => {
            "write a timestamp (`2026-01-15T09:00:00Z`), `now` or a time ago (`40d ago`)".into()
        }
        Type::Enum(v) => format!("write one of the variants without quotes: {}", v.join(", ")),
        Type::SetText => "write a list of strings: `[\"gps\", \"kids\"]`".into(),
    }
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

fn looks_like_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    let rest = s.strip_prefix('+').unwrap_or(s);
    (6..=15).contains(&digits)
        && rest
            .chars()
            .all(|c| c.is_ascii_digit() || " .-()".contains(c))
}

// ---------------------------------------------------------------- templates

/// The attributes of `channel`: the required ones, then every one.
pub(super) fn channel_attributes_of(
    channel: &str,
) -> (&'static [&'static str], &'static [&'static str]) {
    channel_attributes(channel)
}

/// The attributes of each channel, the required ones first.
fn channel_attributes(channel: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match channel {
        "email" => (
            &["subject", "html"],
            &[
                "kind",
                "subject",
                "preheader",
                "html",
                "text",
                "from",
                "reply_to",
                "topic",
            ],
        ),
        "sms" => (&["body"], &["kind", "body", "topic"]),
        "push" => (&["title", "body"], &["kind", "title", "body", "topic"]),
        // `kind` is accepted here only to be reported as E0503.
        "task" => (&["body"], &["kind", "body", "assignee", "due"]),
        "webhook" => (&["url", "body"], &["kind", "url", "body", "method"]),
        _ => (&[], &[]),
    }
}

pub fn check_templates(p: &Project, problems: &mut Problems) {
    let mut first_marketing_email: Option<&Template> = None;
    for t in &p.template_order {
        let channel = t.channel.name.as_str();
        if !CHANNELS.contains(&channel) {
            problems.push(
                Diagnostic::new(Code::E0110, format!("unknown channel `{channel}`"))
                    .at(t.channel.span, "not a channel")
                    .help_opt(suggest(channel, CHANNELS.iter().copied(), || {
                        Some("the channels are email, sms, push, task and webhook".into())
                    })),
            );
            continue;
        }
        let (required, allowed) = channel_attributes(channel);
        let allowed: &[&str] = &[allowed, &super::delivery::TEMPLATE_ATTRS[..]].concat();
        let owner = format!(
            "{} `{channel}` template",
            if channel == "email" { "an" } else { "a" }
        );
        // `kind` on a task or webhook is E0503: not offered in the help.
        let listed: Vec<&str> = allowed
            .iter()
            .copied()
            .filter(|a| *a != "kind" || !matches!(channel, "task" | "webhook"))
            .collect();
        let attrs = attributes_listing(&t.attrs, allowed, &listed, &owner, problems);
        for r in required {
            // `subjet = …` is already an unknown-attribute error that suggests `subject`.
            let misspelt = t.attrs.iter().any(|a| {
                !allowed.contains(&a.name.name.as_str())
                    && crate::diagnostics::did_you_mean(&a.name.name, [*r]).is_some()
            });
            if !attrs.contains_key(r) && !misspelt {
                problems.push(
                    Diagnostic::new(
                        Code::E0107,
                        format!("template `{}` has no `{r}`", t.name.name),
                    )
                    .at(t.name.span, format!("missing `{r}`"))
                    .help(format!("{owner} needs {}", and_list(required))),
                );
            }
        }
        let mut marketing = matches!(channel, "email" | "sms" | "push");
        for (name, a) in &attrs {
            match *name {
                "kind" if matches!(channel, "task" | "webhook") => {}
                // Checked with the topics (`check::consent`).
                "topic" => {}
                "kind" => match &a.value.node {
                    AttrValue::Word(w) if w == "marketing" => {}
                    AttrValue::Word(w) if w == "transactional" => marketing = false,
                    other => {
                        let d;
                        let shown = match other {
                            AttrValue::Word(w) | AttrValue::Str(w) => w.as_str(),
                            AttrValue::File(f) => f.node.as_str(),
                            AttrValue::Duration(x) => {
                                d = crate::render::duration_text(x.seconds());
                                d.as_str()
                            }
                        };
                        problems.push(
                            Diagnostic::new(
                                Code::E0112,
                                format!("`{shown}` is not a message kind"),
                            )
                            .at(a.value.span, "expected `marketing` or `transactional`")
                            .help_opt(suggest(
                                shown,
                                ["marketing", "transactional"],
                                || {
                                    Some(
                                        "write `kind = marketing` or `kind = transactional`".into(),
                                    )
                                },
                            )),
                        );
                    }
                },
                "expires" | "priority" => super::delivery::check_template_attr(p, a, problems),
                "url" => {
                    if let Some(url) = expect_string(a, problems) {
                        if url.to_ascii_lowercase().starts_with("mailto:") {
                            problems.push(
                                Diagnostic::new(Code::E0502, format!("a webhook is called over https, not `{url}`"))
                                    .at(a.value.span, "not an https URL")
                                    .help("write the endpoint's https URL, like \"https://crm.example/hook\""),
                            );
                        } else {
                            check_url(url, a.value.span, problems);
                        }
                    }
                }
                "due" | "method" | "from" | "reply_to" => {
                    super::senders::check_attr(p, t, name, a, problems)
                }
                _ => {
                    if let AttrValue::Duration(d) = &a.value.node {
                        let d = crate::render::duration_text(d.seconds());
                        problems.push(
                            Diagnostic::new(
                                Code::E0112,
                                format!("`{name}` takes a string or `file(\"…\")`, not the duration `{d}`"),
                            )
                            .at(a.value.span, "expected a string or a file")
                            .help(format!("write `{name} = \"…\"`")),
                        );
                    }
                    if let AttrValue::Word(w) = &a.value.node {
                        problems.push(
                            Diagnostic::new(
                                Code::E0112,
                                format!("`{name}` takes a string or `file(\"…\")`, not `{w}`"),
                            )
                            .at(a.value.span, "expected a string or a file")
                            .help(format!(
                                "write `{name} = \"…\"` or `{name} = file(\"templates/{}.hbs\")`",
                                t.name.name
                            )),
                        );
                    }
                    if matches!(*name, "subject" | "preheader" | "title")
                        && let AttrValue::Str(s) = &a.value.node
                        && s.contains(['\n', '\r'])
                    {
                        problems.push(
                            Diagnostic::new(
                                Code::E0504,
                                format!("the {name} contains a line break"),
                            )
                            .at(a.value.span, "line break in a header")
                            .help(format!("a {name} is a single line: remove `\\n` and `\\r`")),
                        );
                    }
                }
            }
        }
        if let Some(kind) = t.attrs.iter().find(|a| a.name.name == "kind")
            && matches!(channel, "task" | "webhook")
        {
            problems.push(
                Diagnostic::new(
                    Code::E0503,
                    format!("`{channel}` templates are operational and have no kind"),
                )
                .at(kind.name.span, "not allowed here")
                .help("remove `kind`: tasks and webhooks never count as marketing messages"),
            );
        }
        super::senders::check_headers(t, problems);
        let mut links = HashMap::new();
        for l in &t.links {
            if let Some(&first) = links.get(l.name.name.as_str()) {
                problems.push(
                    Diagnostic::new(
                        Code::E0104,
                        format!("link `{}` is declared twice", l.name.name),
                    )
                    .at(l.name.span, "duplicate link")
                    .also(first, "first declared here")
                    .help("give each link its own name"),
                );
                continue;
            }
            links.insert(l.name.name.as_str(), l.name.span);
            check_url(&l.url.node, l.url.span, problems);
        }
        if let Some(want) = address_type(channel)
            && p.has_schema
            && !p.schema_incomplete()
            && !p.schema.list.iter().any(|f| f.ty == want)
        {
            problems.push(
                Diagnostic::new(
                    Code::E0501,
                    format!("`{channel}` messages need a contact field of type `{}`, and the schema has none", want.describe()),
                )
                .at(t.channel.span, format!("no `{}` field to send to", want.describe()))
                .help(format!("add a field to the contact schema, like `{}: {}?`", want.describe(), want.describe())),
            );
        }
        if channel == "email" && marketing && first_marketing_email.is_none() {
            first_marketing_email = Some(t);
        }
    }
    // Several fields of a channel's address type: the first one is used.
    for channel in ["email", "sms", "push"] {
        let Some(want) = address_type(channel) else {
            continue;
        };
        let used = p.template_order.iter().any(|t| t.channel.name == channel);
        let fields: Vec<&super::types::Field> =
            p.schema.list.iter().filter(|f| f.ty == want).collect();
        if let (true, [first, rest @ ..]) = (used, fields.as_slice()) {
            for other in rest {
                let (Some(span), Some(first_span)) = (other.span, first.span) else {
                    continue;
                };
                problems.push(
                    Diagnostic::new(
                        Code::W0501,
                        format!(
                            "`{channel}` messages go to `{}`, the first `{}` field; `{}` never receives them",
                            first.name,
                            want.describe(),
                            other.name
                        ),
                    )
                    .at(span, "never used as an address")
                    .also(first_span, "messages go here")
                    .help(format!("if `{}` is only stored, declare it as `text`", other.name)),
                );
            }
        }
    }
    let has_address = p.workspace.is_some_and(|w| {
        w.attrs.iter().any(|a| {
            a.name.name == "address"
                && matches!(&a.value.node, AttrValue::Str(s) if !s.trim().is_empty())
        })
    });
    if let Some(t) = first_marketing_email
        && !has_address
        && !p.broken_keywords.contains("workspace")
        && !p.incomplete
    {
        let mut d = Diagnostic::new(
            Code::E0505,
            format!("marketing email `{}` needs the sender's postal address, and the workspace has none", t.name.name),
        )
        .at(t.name.span, "marketing email")
        .help(if p.workspace.is_some() {
            "add `address = \"…\"` to the `workspace` block: marketing emails must show a postal address"
        } else {
            "declare `workspace { name = \"…\", address = \"…\" }`: marketing emails must show a postal address"
        });
        if let Some(w) = p.workspace {
            d = d.also(w.keyword, "workspace declared here");
        }
        problems.push(d);
    }
}

fn check_url(url: &str, span: Span, problems: &mut Problems) {
    let lower = url.to_ascii_lowercase();
    let ok = (lower.starts_with("https://") && url.len() > "https://".len())
        || (lower.starts_with("mailto:") && url.len() > "mailto:".len());
    if !ok {
        let help = if lower.starts_with("http://") {
            format!("use https: \"https://{}\"", &url["http://".len()..])
        } else {
            "write a full https URL like \"https://acme.example/offer\" or a \"mailto:\" address"
                .to_string()
        };
        problems.push(
            Diagnostic::new(
                Code::E0502,
                format!("`{url}` is not an https or mailto URL"),
            )
            .at(span, "insecure or invalid URL")
            .help(help),
        );
    }
}

// ---------------------------------------------------------------- pressure

pub fn check_pressure(p: &Project, problems: &mut Problems) {
    let Some(policy) = p.pressure else { return };
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for cap in &policy.caps {
        let scope = cap.scope.name.as_str();
        if scope != "all" && !CHANNELS.contains(&scope) {
            let mut candidates: Vec<&str> = CHANNELS.to_vec();
            candidates.push("all");
            problems.push(
                Diagnostic::new(Code::E0110, format!("unknown channel `{scope}`"))
                    .at(cap.scope.span, "not a channel")
                    .help_opt(suggest(scope, candidates, || {
                        Some("caps are per channel (email, sms, push) or for `all` channels".into())
                    })),
            );
            continue;
        }
        if matches!(scope, "task" | "webhook") {
            problems.push(
                Diagnostic::new(
                    Code::E0803,
                    format!("`{scope}` messages are operational and never count against pressure caps"),
                )
                .at(cap.scope.span, "this cap would never apply")
                .help("cap `email`, `sms`, `push` or `all`; tasks and webhooks are exempt from caps, gap and quiet hours"),
            );
            continue;
        }
        first_time(
            &mut seen,
            scope,
            cap.scope.span,
            &format!("a cap for `{scope}`"),
            problems,
        );
        if cap.per.node.seconds() == 0 {
            problems.push(
                Diagnostic::new(Code::E0801, "a cap's window must be longer than zero")
                    .at(cap.per.span, "empty window")
                    .help("write a window like `per 7d`"),
            );
        }
        if cap.max.node == 0 {
            problems.push(
                Diagnostic::new(Code::E0801, format!("`max 0` forbids every `{scope}` marketing message"))
                    .at(cap.max.span, "zero cap")
                    .help("allow at least one message per window, or remove the templates of that channel"),
            );
        }
    }
    // Several `quiet` rules combine (§12): `delivery::check_quiet`.
    let rest: [(&str, Vec<Span>); 3] = [
        ("`gap`", policy.gaps.iter().map(|g| g.span).collect()),
        (
            "`on excess`",
            policy.on_excess.iter().map(|o| o.span).collect(),
        ),
        (
            "`under below`",
            policy.under.iter().map(|u| u.span).collect(),
        ),
    ];
    for (what, spans) in rest {
        for span in spans.iter().skip(1) {
            problems.push(given_twice(
                format!("{what} is given twice"),
                *span,
                spans[0],
                "keep one of them",
            ));
        }
    }
    super::delivery::check_quiet(policy, problems);
    for u in &policy.under {
        if u.count.node == 0 {
            problems.push(
                Diagnostic::new(
                    Code::E0801,
                    "`under below 0` can never hold: no contact receives fewer than 0 messages",
                )
                .at(u.count.span, "zero threshold")
                .help(
                    "write the smallest healthy number of messages, like `under below 1 per 14d`",
                ),
            );
        }
        if u.per.node.seconds() == 0 {
            problems.push(
                Diagnostic::new(
                    Code::E0801,
                    "the `under below` window must be longer than zero",
                )
                .at(u.per.span, "empty window")
                .help("write a window like `per 14d`"),
            );
        }
    }
}
