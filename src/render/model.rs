//! What rendering needs from the checked ASTs: the schema, the workspace,
//! the templates with their bodies, the personas as render contexts, and
//! which scenario triggers send each template.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::{Map, Value as Json};

use crate::check::types::{BUILTIN_EVENTS, Type, builtin_event};
use crate::diagnostics::{SourceMap, Span};
use crate::syntax::ast::{self, AttrValue, DeclKind, StepKind, TermKind, TypeExpr, Value};

use super::source::{parent_dir, resolve_path};

/// How a body's inserted values are escaped (§6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// HTML bodies: HTML-escaped.
    Html,
    /// Subjects, preheaders, text parts, SMS, push and task bodies: as is.
    Plain,
    /// Webhook bodies: JSON string escaping.
    Json,
}

impl Mode {
    /// Whether `{{…}}` escapes here (so that `{{{…}}}` makes a difference).
    pub fn escapes(self) -> bool {
        self != Mode::Plain
    }
}

/// Marketing, transactional, or operational (tasks and webhooks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageKind {
    Marketing,
    Transactional,
    Operational,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Marketing => "marketing",
            MessageKind::Transactional => "transactional",
            MessageKind::Operational => "operational",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct FieldInfo {
    pub name: String,
    pub ty: Option<Type>,
    pub optional: bool,
}

/// Where a body's text comes from.
#[derive(Clone, Debug, Hash)]
pub(crate) enum BodyValue {
    /// An inline string: its decoded value and the literal's span.
    Inline { text: String, span: Span },
    /// `file("…")`: the path resolved against the project root (`None` when
    /// it leaves the project), as written, and the span of the path literal.
    File {
        resolved: Option<String>,
        written: String,
        span: Span,
    },
}

#[derive(Clone, Debug, Hash)]
pub(crate) struct BodyInfo {
    /// `subject`, `preheader`, `html`, `text`, `title` or `body`.
    pub attr: String,
    pub mode: Mode,
    pub value: BodyValue,
    /// The span of the attribute value in the `.camp` file.
    pub value_span: Span,
    /// The locale of a per-locale variant (`subject.en`); `None` for the
    /// unsuffixed attribute.
    pub locale: Option<String>,
}

impl BodyInfo {
    /// Its name among the template's bodies: `subject` or `subject.en`.
    pub fn key(&self) -> String {
        match &self.locale {
            Some(l) => format!("{}.{l}", self.attr),
            None => self.attr.clone(),
        }
    }
}

#[derive(Clone, Debug, Hash)]
pub(crate) struct TemplateInfo {
    pub name: String,
    pub name_span: Span,
    pub channel: String,
    pub kind: MessageKind,
    pub links: Vec<(String, String)>,
    pub bodies: Vec<BodyInfo>,
    pub url: Option<String>,
    /// The URLs that are templates (hold `{{`): the link name (`None` for
    /// the webhook `url`), the text and the span of its string literal.
    pub url_templates: Vec<UrlTemplate>,
    /// `trigger.FIELD` names allowed in this template.
    pub trigger: TriggerFields,
    /// The event types that trigger the scenarios sending this template
    /// (used to pick the persona's event for previews); empty when none.
    pub trigger_events: BTreeSet<String>,
    /// A task's `due`, a webhook's `method` and headers (v1.1), as shown.
    pub operational: super::senders::Operational,
    /// The locales it has variants for, in the workspace's order.
    pub locales: Vec<String>,
}

impl TemplateInfo {
    /// The unsuffixed body `attr`.
    pub fn body(&self, attr: &str) -> Option<&BodyInfo> {
        self.bodies
            .iter()
            .find(|b| b.attr == attr && b.locale.is_none())
    }

    /// The bodies a contact of `locale` gets: each part's variant for that
    /// locale, or else its unsuffixed body.
    pub fn bodies_for<'a>(&'a self, locale: Option<&'a str>) -> impl Iterator<Item = &'a BodyInfo> {
        self.bodies
            .iter()
            .filter(move |b| match (b.locale.as_deref(), locale) {
                (None, None) => true,
                (None, Some(l)) => !self
                    .bodies
                    .iter()
                    .any(|v| v.attr == b.attr && v.locale.as_deref() == Some(l)),
                (Some(v), Some(l)) => v == l,
                (Some(_), None) => false,
            })
    }

    /// The variant locale a contact of `locale` gets: `locale` when the
    /// template has variants for it, else `None` (the unsuffixed bodies).
    pub fn variant_for<'a>(&'a self, locale: Option<&str>) -> Option<&'a str> {
        let l = locale?;
        self.locales.iter().find(|x| *x == l).map(String::as_str)
    }
}

#[derive(Clone, Debug, Hash)]
pub(crate) struct UrlTemplate {
    pub link: Option<String>,
    pub text: String,
    pub span: Span,
}

impl UrlTemplate {
    /// How diagnostics name it: "link `offer`" or "the webhook URL".
    pub fn what(&self) -> String {
        match &self.link {
            Some(n) => format!("link `{n}`"),
            None => "the webhook URL".to_string(),
        }
    }

    /// Its key among a template's bodies.
    pub fn attr(&self) -> String {
        match &self.link {
            Some(n) => format!("link:{n}"),
            None => "url".to_string(),
        }
    }
}

#[derive(Clone, Debug, Hash)]
pub(crate) enum TriggerFields {
    /// No scenario sends the template: any field some event has.
    Unsent(BTreeSet<String>),
    /// The fields common to the trigger events of every sending scenario.
    Sent {
        fields: BTreeSet<String>,
        scenarios: Vec<String>,
    },
}

impl TriggerFields {
    pub fn allows(&self, field: &str) -> bool {
        match self {
            TriggerFields::Unsent(f) | TriggerFields::Sent { fields: f, .. } => f.contains(field),
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        match self {
            TriggerFields::Unsent(f) | TriggerFields::Sent { fields: f, .. } => {
                f.iter().map(String::as_str)
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct PersonaInfo {
    pub name: String,
    pub doc: Option<String>,
    pub negative: bool,
    /// Contact fields, `id`, `tags`, `lists`, `unsubscribe_url`, `workspace`.
    pub base: Map<String, Json>,
    /// The persona's events: type, time (unix seconds), field values.
    pub events: Vec<(String, i64, Map<String, Json>)>,
    /// Its locale: the value of the workspace's `locale` field, matched
    /// against `locales` (`check::locales::pick`); `None` without one.
    pub locale: Option<String>,
}

/// The project as rendering sees it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    pub fields: Vec<FieldInfo>,
    pub workspace: BTreeMap<String, String>,
    pub templates: Vec<TemplateInfo>,
    pub personas: Vec<PersonaInfo>,
    /// The first `timezone` field of the schema, for the `date` helper.
    pub tz_field: Option<String>,
    /// The schema is known in full: no file was unreadable and the
    /// `contact` declaration parsed. Otherwise unknown names are not
    /// reported (they would only echo the syntax error).
    pub schema_complete: bool,
    /// Every event, scenario and cadence parsed (for `trigger.FIELD`).
    pub flows_complete: bool,
    /// Scenarios, then cadences, in declaration order, for the preview
    /// index's links to the flow pages.
    pub flows: Vec<FlowInfo>,
    /// The workspace's `locales` (empty without) and `locale` field.
    pub locales: Vec<String>,
    pub locale_field: Option<String>,
}

/// A scenario or a cadence, as the preview index lists it.
#[derive(Clone, Debug)]
pub(crate) struct FlowInfo {
    /// `scenario` or `cadence`: also the folder of its page.
    pub kind: &'static str,
    pub name: String,
    pub doc: Option<String>,
    /// The templates it sends, in the order a contact gets them (a
    /// scenario's steps in order, arms one after the other, with the
    /// touches of the cadences it starts; a cadence's touches), each once.
    pub sends: Vec<String>,
}

/// What `steps` send, in order: templates, and `Err(cadence)` for a
/// cadence started (its touches are known only once every cadence is read).
fn step_sends(steps: &[ast::Step], out: &mut Vec<Result<String, String>>) {
    // Depth is bounded by the parser's nesting limit.
    for st in steps {
        match &st.kind {
            ast::StepKind::Send(t) => out.push(Ok(t.name.clone())),
            ast::StepKind::Start(c) => out.push(Err(c.name.clone())),
            ast::StepKind::Branch(arms) => {
                for a in arms {
                    step_sends(&a.steps, out);
                }
            }
            ast::StepKind::Split(arms) => {
                for a in arms {
                    step_sends(&a.steps, out);
                }
            }
            _ => {}
        }
    }
}

impl Model {
    pub fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn template(&self, name: &str) -> Option<&TemplateInfo> {
        self.templates.iter().find(|t| t.name == name)
    }

    pub fn persona(&self, name: &str) -> Option<&PersonaInfo> {
        self.personas.iter().find(|p| p.name == name)
    }
}

/// The top-level variables besides contact fields.
pub(crate) const BUILTIN_VARIABLES: &[&str] = &[
    "id",
    "tags",
    "lists",
    "links",
    "unsubscribe_url",
    "preferences_url",
    "workspace",
    "trigger",
];

pub(crate) const WORKSPACE_VARIABLES: &[&str] = &["name", "address", "from", "timezone"];

/// The preview preferences-page URL of a persona (`{{preferences_url}}`):
/// where a contact chooses its topics or unsubscribes.
pub(crate) fn preferences_url(persona: &str) -> String {
    format!("https://example.invalid/preferences/{persona}")
}

/// The preview unsubscribe URL of a persona.
pub(crate) fn unsubscribe_url(persona: &str) -> String {
    format!("https://example.invalid/unsubscribe/{persona}")
}

fn type_of(ty: &TypeExpr) -> Option<Type> {
    match ty {
        TypeExpr::Named(n) => Type::from_name(n),
        TypeExpr::Enum(v) => Some(Type::Enum(v.iter().map(|i| i.name.clone()).collect())),
        TypeExpr::Set(_) => Some(Type::SetText),
    }
}

fn rfc3339(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.to_string(),
        Err(_) => String::new(),
    }
}

fn term_time(t: &TermKind, now: i64) -> Option<i64> {
    match t {
        TermKind::Now => Some(now),
        TermKind::Ago(d) => Some(now.saturating_sub(d.seconds())),
        TermKind::Timestamp(s) => Some(*s),
        TermKind::Date(d) => d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_second()),
        _ => None,
    }
}

fn number(f: f64) -> Json {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Json::from(f as i64)
    } else {
        serde_json::Number::from_f64(f)
            .map(Json::Number)
            .unwrap_or(Json::Null)
    }
}

/// A persona or event value as template data.
fn value_json(value: &Value, ty: Option<&Type>, now: i64) -> Json {
    match value {
        Value::List(items) => Json::Array(
            items
                .node
                .iter()
                .map(|t| term_json(&t.kind, None, now))
                .collect(),
        ),
        Value::Term(t) => term_json(&t.kind, ty, now),
    }
}

fn term_json(t: &TermKind, ty: Option<&Type>, now: i64) -> Json {
    match t {
        TermKind::Str(s) | TermKind::Name(s) => Json::String(s.clone()),
        TermKind::Number(n) => number(*n),
        TermKind::Bool(b) => Json::Bool(*b),
        TermKind::Date(d) if ty == Some(&Type::Timestamp) => Json::String(
            term_time(t, now)
                .map(rfc3339)
                .unwrap_or_else(|| d.to_string()),
        ),
        TermKind::Date(d) => Json::String(d.to_string()),
        TermKind::Now | TermKind::Ago(_) | TermKind::Timestamp(_) => {
            Json::String(term_time(t, now).map(rfc3339).unwrap_or_default())
        }
        TermKind::Clock(c) => Json::String(format!("{:02}:{:02}", c.0 / 60, c.0 % 60)),
        TermKind::Duration(d) => Json::from(d.seconds()),
        TermKind::Percent(p) => number(*p),
        TermKind::Shifted { base, seconds } => {
            match base.literal_time(now).and_then(|v| v.shifted(*seconds)) {
                Some(ast::TimeValue::Date(d)) if ty != Some(&Type::Timestamp) => {
                    Json::String(d.to_string())
                }
                Some(ast::TimeValue::Date(d)) => {
                    Json::String(crate::eval::date_start(d).map(rfc3339).unwrap_or_default())
                }
                Some(ast::TimeValue::Instant(t)) => Json::String(rfc3339(t)),
                None => Json::Null,
            }
        }
    }
}

fn attr_str(attrs: &[ast::Attr], name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.name.name == name)
        .and_then(|a| match &a.value.node {
            AttrValue::Str(s) => Some(s.clone()),
            _ => None,
        })
}

/// The attributes of each channel that are templates, with their mode.
fn body_attrs(channel: &str) -> &'static [(&'static str, Mode)] {
    match channel {
        "email" => &[
            ("subject", Mode::Plain),
            ("preheader", Mode::Plain),
            ("html", Mode::Html),
            ("text", Mode::Plain),
            ("from", Mode::Plain),
            ("reply_to", Mode::Plain),
        ],
        "sms" => &[("body", Mode::Plain)],
        "push" => &[("title", Mode::Plain), ("body", Mode::Plain)],
        "task" => &[("body", Mode::Plain), ("assignee", Mode::Plain)],
        "webhook" => &[("body", Mode::Json)],
        _ => &[],
    }
}

/// Collects the model from every file's AST.
pub(crate) fn build(sources: &SourceMap, files: &[ast::File], now: i64) -> Model {
    let mut m = Model::default();
    let mut events: BTreeMap<String, Vec<(String, Option<Type>)>> = BTreeMap::new();
    for name in BUILTIN_EVENTS {
        if let Some(f) = builtin_event(name) {
            events.insert(
                name.to_string(),
                f.list
                    .iter()
                    .map(|f| (f.name.clone(), Some(f.ty.clone())))
                    .collect(),
            );
        }
    }
    let decls: Vec<&ast::Decl> = files.iter().flat_map(|f| &f.decls).collect();
    let mut schema_seen = false;
    let mut workspace_seen = false;
    let mut scenarios: Vec<&ast::Scenario> = Vec::new();
    let mut cadences: BTreeMap<&str, &ast::Cadence> = BTreeMap::new();
    let (mut flows, mut cadence_flows) = (Vec::new(), Vec::new());
    for d in &decls {
        match &d.kind {
            DeclKind::Contact(s) if !schema_seen => {
                schema_seen = true;
                let mut seen = HashSet::new();
                for f in &s.fields {
                    if seen.insert(f.name.name.clone()) {
                        m.fields.push(FieldInfo {
                            name: f.name.name.clone(),
                            ty: type_of(&f.ty.node),
                            optional: f.optional,
                        });
                    }
                }
            }
            DeclKind::Workspace(w) if !workspace_seen => {
                workspace_seen = true;
                for a in WORKSPACE_VARIABLES {
                    if let Some(v) = attr_str(&w.attrs, a) {
                        m.workspace.insert(a.to_string(), v);
                    }
                }
                if let Some(l) = w.locales.first() {
                    m.locales = l.names.iter().map(|n| n.name.clone()).collect();
                }
                m.locale_field = w
                    .attrs
                    .iter()
                    .find(|a| a.name.name == "locale")
                    .and_then(|a| match &a.value.node {
                        AttrValue::Word(f) => Some(f.clone()),
                        _ => None,
                    });
            }
            DeclKind::Event(e) if !events.contains_key(&e.name.name) => {
                events.insert(
                    e.name.name.clone(),
                    e.fields
                        .iter()
                        .map(|f| (f.name.name.clone(), type_of(&f.ty.node)))
                        .collect(),
                );
            }
            DeclKind::Scenario(s) => {
                scenarios.push(s);
                flows.push(FlowInfo {
                    kind: "scenario",
                    name: s.name.name.clone(),
                    doc: d.doc.clone(),
                    sends: Vec::new(),
                });
            }
            DeclKind::Cadence(c) => {
                cadences.entry(c.name.name.as_str()).or_insert(c);
                cadence_flows.push(FlowInfo {
                    kind: "cadence",
                    name: c.name.name.clone(),
                    doc: d.doc.clone(),
                    sends: c.touches.iter().map(|t| t.template.name.clone()).collect(),
                });
            }
            _ => {}
        }
    }
    for (f, s) in flows.iter_mut().zip(&scenarios) {
        let mut sends = Vec::new();
        step_sends(&s.steps, &mut sends);
        let mut seen = HashSet::new();
        for x in sends {
            let names: Vec<String> = match x {
                Ok(t) => vec![t],
                Err(c) => cadences.get(c.as_str()).map_or(Vec::new(), |c| {
                    c.touches.iter().map(|t| t.template.name.clone()).collect()
                }),
            };
            for n in names {
                if seen.insert(n.clone()) {
                    f.sends.push(n);
                }
            }
        }
    }
    for f in &mut cadence_flows {
        let mut seen = HashSet::new();
        f.sends.retain(|t| seen.insert(t.clone()));
    }
    flows.append(&mut cadence_flows);
    m.flows = flows;
    let unreadable = files.iter().any(|f| f.unreadable);
    // A declaration that did not parse, of one of these kinds or of a kind
    // that cannot be told (a misspelt keyword).
    let broken = |kw: &[&str]| {
        const KNOWN: &[&str] = &[
            "workspace",
            "contact",
            "event",
            "list",
            "segment",
            "persona",
            "template",
            "scenario",
            "cadence",
            "pressure",
        ];
        files
            .iter()
            .flat_map(|f| &f.broken)
            .any(|b| kw.contains(&b.keyword.as_str()) || !KNOWN.contains(&b.keyword.as_str()))
    };
    m.schema_complete = schema_seen && !unreadable && !broken(&["contact"]);
    m.flows_complete = !unreadable && !broken(&["event", "scenario", "cadence"]);
    m.tz_field = m
        .fields
        .iter()
        .find(|f| f.ty == Some(Type::Timezone))
        .map(|f| f.name.clone());

    // Which scenarios send each template, and their trigger events.
    // Template → (scenario, the event of each of its triggers, if any).
    type Senders = BTreeMap<String, Vec<(String, Vec<Option<String>>)>>;
    let mut senders: Senders = BTreeMap::new();
    for s in &scenarios {
        let mut sent = BTreeSet::new();
        collect_sends(&s.steps, &cadences, &mut sent, 0);
        let triggers: Vec<Option<String>> = s
            .triggers
            .iter()
            .map(|t| match &t.node {
                ast::Trigger::Event { event, .. } => Some(event.name.clone()),
                _ => None,
            })
            .collect();
        for t in sent {
            senders
                .entry(t)
                .or_default()
                .push((s.name.name.clone(), triggers.clone()));
        }
    }
    let all_event_fields: BTreeSet<String> = events
        .values()
        .flat_map(|f| f.iter().map(|(n, _)| n.clone()))
        .chain(["at".to_string()])
        .collect();

    let mut template_names = HashSet::new();
    for d in &decls {
        let DeclKind::Template(t) = &d.kind else {
            continue;
        };
        if !template_names.insert(t.name.name.clone()) {
            continue;
        }
        let channel = t.channel.name.clone();
        let dir = if (t.name.span.file.0 as usize) < sources.len() {
            parent_dir(&sources.get(t.name.span.file).path).to_string()
        } else {
            String::new()
        };
        let kind = match channel.as_str() {
            "task" | "webhook" => MessageKind::Operational,
            _ => {
                let transactional = t.attrs.iter().any(|a| {
                    a.name.name == "kind"
                        && matches!(&a.value.node, AttrValue::Word(w) if w == "transactional")
                });
                if transactional {
                    MessageKind::Transactional
                } else {
                    MessageKind::Marketing
                }
            }
        };
        let mut bodies = Vec::new();
        for (attr, mode) in body_attrs(&channel) {
            let Some(a) = t.attrs.iter().find(|a| a.name.name == *attr) else {
                continue;
            };
            let Some(value) = body_value(&dir, &a.value) else {
                continue;
            };
            bodies.push(BodyInfo {
                attr: attr.to_string(),
                mode: *mode,
                value,
                value_span: a.value.span,
                locale: None,
            });
        }
        // Per-locale variants, after the unsuffixed bodies, for the
        // workspace's locales only (others are errors of the checker).
        let mut locales = Vec::new();
        for l in &m.locales {
            for (attr, mode) in body_attrs(&channel) {
                let Some(v) = t
                    .variants
                    .iter()
                    .find(|v| v.locale.name == *l && v.attr.name.name == *attr)
                else {
                    continue;
                };
                let Some(value) = body_value(&dir, &v.attr.value) else {
                    continue;
                };
                bodies.push(BodyInfo {
                    attr: attr.to_string(),
                    mode: *mode,
                    value,
                    value_span: v.attr.value.span,
                    locale: Some(l.clone()),
                });
                if !locales.contains(l) {
                    locales.push(l.clone());
                }
            }
        }
        let mut links = Vec::new();
        let mut url_templates = Vec::new();
        for l in &t.links {
            if !links
                .iter()
                .any(|(n, _): &(String, String)| *n == l.name.name)
            {
                links.push((l.name.name.clone(), l.url.node.clone()));
                if l.url.node.contains("{{") {
                    url_templates.push(UrlTemplate {
                        link: Some(l.name.name.clone()),
                        text: l.url.node.clone(),
                        span: l.url.span,
                    });
                }
            }
        }
        if channel == "webhook"
            && let Some(a) = t.attrs.iter().find(|a| a.name.name == "url")
            && let AttrValue::Str(u) = &a.value.node
            && u.contains("{{")
        {
            url_templates.push(UrlTemplate {
                link: None,
                text: u.clone(),
                span: a.value.span,
            });
        }
        let (trigger, trigger_events) = match senders.get(&t.name.name) {
            None => (
                TriggerFields::Unsent(all_event_fields.clone()),
                BTreeSet::new(),
            ),
            Some(list) => {
                let mut fields: Option<BTreeSet<String>> = None;
                let mut evs = BTreeSet::new();
                for (_, triggers) in list {
                    for tr in triggers {
                        let these: BTreeSet<String> = match tr {
                            Some(e) => {
                                evs.insert(e.clone());
                                events
                                    .get(e)
                                    .map(|f| f.iter().map(|(n, _)| n.clone()).collect())
                                    .unwrap_or_default()
                            }
                            None => BTreeSet::new(),
                        };
                        let mut these = these;
                        if tr.is_some() {
                            these.insert("at".to_string());
                        }
                        fields = Some(match fields {
                            None => these,
                            Some(f) => f.intersection(&these).cloned().collect(),
                        });
                    }
                    if triggers.is_empty() {
                        fields = Some(BTreeSet::new());
                    }
                }
                let mut scenarios: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
                scenarios.dedup();
                (
                    TriggerFields::Sent {
                        fields: fields.unwrap_or_default(),
                        scenarios,
                    },
                    evs,
                )
            }
        };
        m.templates.push(TemplateInfo {
            name: t.name.name.clone(),
            name_span: t.name.span,
            url: if channel == "webhook" {
                attr_str(&t.attrs, "url")
            } else {
                None
            },
            channel,
            kind,
            links,
            url_templates,
            bodies,
            trigger,
            trigger_events,
            operational: super::senders::operational(t),
            locales,
        });
    }

    let workspace_json: Map<String, Json> = m
        .workspace
        .iter()
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    let mut persona_names = HashSet::new();
    for d in &decls {
        let DeclKind::Persona(p) = &d.kind else {
            continue;
        };
        if !persona_names.insert(p.name.name.clone()) {
            continue;
        }
        let mut seen = HashSet::new();
        let values = p.values.iter().filter_map(|v| {
            if !seen.insert(v.name.name.as_str()) {
                return None;
            }
            let ty = m.field(&v.name.name).and_then(|f| f.ty.as_ref());
            let mut value = value_json(&v.value, ty, now);
            // Sets, lists and tags as the runner holds them (sorted, once
            // each), so that a persona previews what a contact is sent.
            let set =
                ty == Some(&Type::SetText) || ["tags", "lists"].contains(&v.name.name.as_str());
            if let (true, Json::Array(items)) = (set, &mut value) {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                items.dedup();
            }
            Some((v.name.name.clone(), value))
        });
        let base = recipient(
            &p.name.name,
            values,
            &unsubscribe_url(&p.name.name),
            &preferences_url(&p.name.name),
            workspace_json.clone(),
        );
        let mut evs = Vec::new();
        for e in &p.events {
            let types = events.get(&e.name.name);
            let mut fields = Map::new();
            for v in &e.values {
                let ty = types
                    .and_then(|f| f.iter().find(|(n, _)| *n == v.name.name))
                    .and_then(|(_, t)| t.as_ref());
                fields.insert(v.name.name.clone(), value_json(&v.value, ty, now));
            }
            let at = term_time(&e.at.kind, now).unwrap_or(now);
            fields.insert("at".into(), Json::String(rfc3339(at)));
            evs.push((e.name.name.clone(), at, fields));
        }
        let locale = m
            .locale_field
            .as_ref()
            .and_then(|f| base.get(f))
            .and_then(|v| v.as_str())
            .and_then(|v| crate::check::locales::pick(v, &m.locales))
            .map(|i| m.locales[i].clone());
        m.personas.push(PersonaInfo {
            name: p.name.name.clone(),
            doc: d.doc.clone(),
            negative: p.negative,
            base,
            events: evs,
            locale,
        });
    }
    m
}

fn collect_sends(
    steps: &[ast::Step],
    cadences: &BTreeMap<&str, &ast::Cadence>,
    out: &mut BTreeSet<String>,
    depth: usize,
) {
    if depth > 256 {
        return;
    }
    for s in steps {
        match &s.kind {
            StepKind::Send(t) => {
                out.insert(t.name.clone());
            }
            StepKind::Start(c) => {
                if let Some(c) = cadences.get(c.name.as_str()) {
                    for t in &c.touches {
                        out.insert(t.template.name.clone());
                    }
                }
            }
            StepKind::Branch(arms) => {
                for a in arms {
                    collect_sends(&a.steps, cadences, out, depth + 1);
                }
            }
            StepKind::Split(arms) => {
                for a in arms {
                    collect_sends(&a.steps, cadences, out, depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// The root of the render context of one recipient, before `links` and
/// `trigger`: `id`, `tags` and `lists` (empty unless `values` holds them),
/// the recipient's field `values`, `unsubscribe_url`, `preferences_url` and
/// `workspace`. A persona's in previews and a contact's when `relance
/// serve` sends (`deliver::compose`) are made here, so that what is
/// previewed is what is sent.
pub(crate) fn recipient(
    id: &str,
    values: impl IntoIterator<Item = (String, Json)>,
    unsubscribe_url: &str,
    preferences_url: &str,
    workspace: Map<String, Json>,
) -> Map<String, Json> {
    let mut base = Map::new();
    base.insert("id".into(), Json::String(id.to_string()));
    base.insert("tags".into(), Json::Array(Vec::new()));
    base.insert("lists".into(), Json::Array(Vec::new()));
    for (k, v) in values {
        base.insert(k, v);
    }
    base.insert(
        "unsubscribe_url".into(),
        Json::String(unsubscribe_url.to_string()),
    );
    base.insert(
        "preferences_url".into(),
        Json::String(preferences_url.to_string()),
    );
    base.insert("workspace".into(), Json::Object(workspace));
    base
}

/// A recipient's render context for one template: `base` (see
/// [`recipient`]) plus the template's declared `links` (name → URL) and the
/// fields of its `trigger` event.
pub(crate) fn template_context<'a>(
    base: &Map<String, Json>,
    links: impl IntoIterator<Item = (&'a String, &'a String)>,
    trigger: Map<String, Json>,
) -> Json {
    let mut data = base.clone();
    let links: Map<String, Json> = links
        .into_iter()
        .map(|(n, u)| (n.clone(), Json::String(u.clone())))
        .collect();
    data.insert("links".into(), Json::Object(links));
    data.insert("trigger".into(), Json::Object(trigger));
    Json::Object(data)
}

impl PersonaInfo {
    /// The render context of this persona for one template: the base plus
    /// `links` and `trigger`.
    pub fn context(&self, t: &TemplateInfo) -> Json {
        let links = t.links.iter().map(|(n, u)| (n, u));
        template_context(&self.base, links, self.trigger(t))
    }

    /// For each field, the value in the latest event that has it, among the
    /// events of the template's trigger types (all events when none).
    pub fn trigger(&self, t: &TemplateInfo) -> Map<String, Json> {
        let mut latest: BTreeMap<&str, (i64, usize, &Json)> = BTreeMap::new();
        for (i, (ty, at, fields)) in self.events.iter().enumerate() {
            if !t.trigger_events.is_empty() && !t.trigger_events.contains(ty) {
                continue;
            }
            for (k, v) in fields {
                let newer = latest
                    .get(k.as_str())
                    .is_none_or(|&(a, j, _)| (*at, i) >= (a, j));
                if newer {
                    latest.insert(k, (*at, i, v));
                }
            }
        }
        latest
            .into_iter()
            .map(|(k, (_, _, v))| (k.to_string(), v.clone()))
            .collect()
    }
}

/// A body attribute's value (an inline string or a file relative to `dir`);
/// `None` for a word or a duration, which are not bodies.
fn body_value(dir: &str, value: &crate::diagnostics::Spanned<AttrValue>) -> Option<BodyValue> {
    match &value.node {
        AttrValue::Str(s) => Some(BodyValue::Inline {
            text: s.clone(),
            span: value.span,
        }),
        AttrValue::File(p) => Some(BodyValue::File {
            resolved: resolve_path(dir, &p.node),
            written: p.node.clone(),
            span: p.span,
        }),
        AttrValue::Word(_) | AttrValue::Duration(_) => None,
    }
}
