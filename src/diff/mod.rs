//! `relance diff`: what will behave differently between two checked
//! projects. The comparison is made on the two [`Plan`]s (names resolved,
//! expressions normalised), so a declaration that only moved or was
//! reformatted is not a change; expressions are printed back in the
//! language's syntax by the printer of `render::flow`. Personas are not in
//! the plan: each side's personas are read as contacts (as `verify` does)
//! and compared by their data. `docs/diff.md` documents the output.

pub mod impact;
mod report;
pub mod risk;

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::Serialize;

use crate::eval::{Contact, Context, Event};
use crate::plan::{Cadence, Expr, Plan, Pressure, Scenario, Step, Template};
use crate::render::flow::{goal_text, reentry_text, triggers_text};
use crate::render::{duration_text, expr_text, term_text};

pub use impact::Impact;
pub use report::{JsonReport, human, json, json_schema, markdown, summary};
pub use risk::RiskCode;

/// One side of a diff: a checked project's plan and its personas.
pub struct Side {
    pub plan: Plan,
    pub personas: BTreeMap<String, Persona>,
    /// The reference time the personas' relative times count from.
    pub now: i64,
    /// Rendered messages as text (subject, preheader, text, the HTML as
    /// text…) by template and persona, for the templates [`render`] was
    /// asked for.
    pub rendered: BTreeMap<(String, String), String>,
    /// The partials (`templates/partials/NAME.hbs`) by name, with their
    /// text: the plan does not hold them.
    pub partials: BTreeMap<String, String>,
}

/// A persona as the evaluator sees it.
#[derive(Debug)]
pub struct Persona {
    pub name: String,
    pub negative: bool,
    pub contact: Contact,
    pub events: Vec<Event>,
    /// `expect` lines, printed back.
    pub expects: Vec<String>,
}

impl Side {
    /// The side of a checked project without errors.
    pub fn new(
        sources: &crate::diagnostics::SourceMap,
        files: &[crate::syntax::ast::File],
        plan: Plan,
        now: i64,
    ) -> Side {
        let p = crate::check::Project::resolve(sources, files);
        let personas = p
            .personas
            .iter()
            .map(|persona| {
                let (contact, events) = crate::verify::persona_contact(&p, persona, now);
                let expects = persona
                    .expects
                    .iter()
                    .map(|e| expr_text(&crate::plan::lower_expr(&p, e)))
                    .collect();
                (
                    persona.name.name.clone(),
                    Persona {
                        name: persona.name.name.clone(),
                        negative: persona.negative,
                        contact,
                        events,
                        expects,
                    },
                )
            })
            .collect();
        let prefix = format!("{}/", crate::render::PARTIALS_DIR);
        let partials = crate::driver::template_file_ids(sources)
            .into_iter()
            .filter_map(|(path, id)| {
                let name = path.strip_prefix(&prefix)?.strip_suffix(".hbs")?;
                (!name.is_empty()).then(|| (name.to_string(), sources.get(id).text.to_string()))
            })
            .collect();
        Side {
            plan,
            personas,
            now,
            rendered: BTreeMap::new(),
            partials,
        }
    }

    /// Renders `templates` for every persona of the side (a persona the
    /// template cannot render for is left out).
    /// `cache`: the render cache of the side's check, so that templates
    /// are not compiled again.
    pub fn render(
        &mut self,
        sources: &crate::diagnostics::SourceMap,
        files: &[crate::syntax::ast::File],
        templates: &BTreeSet<String>,
        cache: &mut crate::render::RenderCache,
    ) {
        if templates.is_empty() {
            return;
        }
        let project = crate::render::RenderProject::new_cached(
            sources,
            files,
            &crate::driver::template_file_ids(sources),
            self.now,
            cache,
        );
        for t in templates {
            for p in self.personas.keys() {
                if let Ok(m) = project.render_one(t, p) {
                    self.rendered
                        .insert((t.clone(), p.clone()), rendered_text(&m));
                }
            }
        }
    }
}

/// The templates both sides have and that differ, in the plan or through
/// a partial they reach: those whose rendered messages `diff` compares.
pub fn changed_templates(old: &Side, new: &Side) -> BTreeSet<String> {
    let partials = changed_partials(old, new);
    old.plan
        .templates
        .iter()
        .filter(|(name, t)| {
            new.plan.templates.get(*name).is_some_and(|u| {
                u != *t || !changed_partials_of(old, new, &partials, name).is_empty()
            })
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The partials whose text differs between the sides (or that one side
/// lacks).
fn changed_partials(old: &Side, new: &Side) -> BTreeSet<String> {
    let names: BTreeSet<&String> = old.partials.keys().chain(new.partials.keys()).collect();
    names
        .into_iter()
        .filter(|n| old.partials.get(*n) != new.partials.get(*n))
        .cloned()
        .collect()
}

/// The `changed` partials that template `name` reaches on either side.
fn changed_partials_of(
    old: &Side,
    new: &Side,
    changed: &BTreeSet<String>,
    name: &str,
) -> BTreeSet<String> {
    if changed.is_empty() {
        return BTreeSet::new();
    }
    let mut reached = BTreeSet::new();
    for side in [old, new] {
        if let Some(t) = side.plan.templates.get(name) {
            reached.extend(reached_partials(side, t));
        }
    }
    changed
        .iter()
        .filter(|p| reached.contains(*p) || reached.contains(ANY_PARTIAL))
        .cloned()
        .collect()
}

/// Stands for every partial: a dynamic partial (`{{> (lookup …)}}`).
const ANY_PARTIAL: &str = "(any)";

/// The partials a template's parts reach on `side`, transitively.
fn reached_partials(side: &Side, t: &Template) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<&str> = t
        .parts
        .values()
        .chain(t.variants.values().flat_map(|v| v.values()))
        .map(|p| p.text.as_str())
        .collect();
    while let Some(text) = todo.pop() {
        for name in partial_names(text) {
            if let Some(body) = side.partials.get(&name)
                && !out.contains(&name)
            {
                todo.push(body);
            }
            out.insert(name);
        }
    }
    out
}

/// The partials a Handlebars text names: `{{> name}}`, `{{#> name}}…`,
/// `{{> [a name]}}`, `{{> 'name'}}`; a dynamic one (`{{> (expr)}}`) as
/// [`ANY_PARTIAL`]. Comments are skipped.
fn partial_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let mut tag = &rest[i + 2..];
        tag = tag.strip_prefix('~').unwrap_or(tag);
        if let Some(comment) = tag.strip_prefix('!') {
            let end = if comment.starts_with("--") {
                comment.find("--}}").map(|e| e + 4)
            } else {
                comment.find("}}").map(|e| e + 2)
            };
            rest = end.map_or("", |e| &comment[e..]);
            continue;
        }
        rest = tag;
        let Some(after) = tag.strip_prefix('>').or_else(|| tag.strip_prefix("#>")) else {
            continue;
        };
        let after = after.trim_start();
        let name = if after.starts_with('(') {
            Some(ANY_PARTIAL.to_string())
        } else if let Some(b) = after.strip_prefix('[') {
            b.find(']').map(|e| b[..e].to_string())
        } else if let Some(q) = after.chars().next().filter(|c| *c == '\'' || *c == '"') {
            let b = &after[1..];
            b.find(q).map(|e| b[..e].to_string())
        } else {
            let end = after
                .find(|c: char| c.is_whitespace() || c == '}' || c == '~')
                .unwrap_or(after.len());
            Some(after[..end].to_string())
        };
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            out.push(n);
        }
    }
    out
}

/// What a reader of the message sees: the headers, the text, the HTML as
/// text, the body.
fn rendered_text(m: &crate::render::RenderedMessage) -> String {
    let mut out = String::new();
    for (k, v) in [
        ("Subject", &m.subject),
        ("Preheader", &m.preheader),
        ("Title", &m.title),
        ("URL", &m.url),
    ] {
        if let Some(v) = v {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    if let Some(t) = &m.text
        && !m.text_derived
    {
        out.push_str("--- text ---\n");
        out.push_str(t);
        out.push('\n');
    }
    if let Some(h) = &m.html {
        out.push_str("--- html (as text) ---\n");
        out.push_str(&crate::render::html_to_text(h));
        out.push('\n');
    }
    if let Some(b) = &m.body {
        out.push_str("--- body ---\n");
        out.push_str(b);
        out.push('\n');
    }
    out
}

/// `added`, `removed` or `changed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }
}

/// A declaration added, removed or changed, with what changed in it, each
/// detail one line in the language's syntax.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Change {
    /// `segment`, `list`, `persona`, `template`, `scenario`, `cadence`,
    /// `topic`, `consent`, `pressure`, `workspace`, `schema`, `event`.
    #[schemars(extend("enum" = ["workspace", "schema", "event", "list", "segment", "topic", "consent", "pressure", "persona", "template", "scenario", "cadence"]))]
    pub kind: &'static str,
    pub name: String,
    pub change: ChangeKind,
    pub details: Vec<String>,
}

/// A change that may hurt contacts or runs in flight.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Risk {
    #[schemars(with = "String", extend("enum" = ["R0101", "R0102", "R0103", "R0104", "R0105"]))]
    pub code: RiskCode,
    /// Always `warning`.
    #[schemars(extend("enum" = ["warning"]))]
    pub severity: &'static str,
    /// The kind of the declaration, as in a change.
    pub kind: &'static str,
    pub name: String,
    pub message: String,
}

impl Serialize for RiskCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Everything `relance diff` reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub risks: Vec<Risk>,
    /// On data and on a deployment, when given ([`impact`]).
    pub impact: Impact,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.risks.is_empty()
    }

    /// Records the runs waiting at each removed step (`waiting`, by step
    /// id, from a `relance serve` database) in the impact and in the
    /// `R0101` risks.
    /// `R0102` on data: the contacts a scenario's new audience admits and
    /// the old one refused (`impact.data`'s `admitted`), added to the
    /// persona-based risk of that scenario, or as a risk of its own when
    /// no persona shows the widening.
    pub fn add_admitted(&mut self) {
        let Some(data) = &self.impact.data else {
            return;
        };
        for s in &data.scenarios {
            let Some(n) = s.admitted.filter(|n| *n > 0) else {
                continue;
            };
            let contacts = if n == 1 {
                "1 contact".to_string()
            } else {
                format!("{} contacts", impact::thousands(n))
            };
            let existing = self
                .risks
                .iter_mut()
                .find(|r| r.code == RiskCode::R0102 && r.kind == "scenario" && r.name == s.name);
            match existing {
                Some(r) => r.message.push_str(&format!(
                    "; on the {}, {contacts} it refused at {} {} admitted now",
                    data.base,
                    data.from,
                    if n == 1 { "is" } else { "are" }
                )),
                None => {
                    let at = self
                        .risks
                        .iter()
                        .position(|r| r.code.as_str() > RiskCode::R0102.as_str())
                        .unwrap_or(self.risks.len());
                    self.risks.insert(
                        at,
                        risk(
                            RiskCode::R0102,
                            "scenario",
                            &s.name,
                            format!(
                                "the audience of scenario `{}` now admits {contacts} of the {} that it refused at {}",
                                s.name, data.base, data.from
                            ),
                        ),
                    );
                }
            }
        }
    }

    pub fn add_waiting(&mut self, old: &Plan, new: &Plan, waiting: &BTreeMap<String, u64>) {
        let removed = impact::removed_steps(old, new);
        for r in &mut self.risks {
            if r.code != RiskCode::R0101 {
                continue;
            }
            let steps: Vec<&str> = removed
                .iter()
                .filter(|(_, kind, name)| *kind == r.kind && *name == r.name)
                .map(|(id, ..)| id.as_str())
                .collect();
            r.message.push_str(&impact::waiting_note(&steps, waiting));
        }
        self.impact.waiting = Some(
            removed
                .into_iter()
                .map(|(step, kind, name)| impact::Waiting {
                    runs: waiting.get(&step).copied().unwrap_or(0),
                    step,
                    kind,
                    name,
                })
                .collect(),
        );
    }
}

/// Compares two sides: changes in declaration-kind order, then by name.
pub fn diff(old: &Side, new: &Side) -> Diff {
    let mut d = Diff::default();
    let (o, n) = (&old.plan, &new.plan);
    d.changes.extend(single(
        "workspace",
        "workspace",
        &o.workspace,
        &n.workspace,
        fields_of,
    ));
    d.changes
        .extend(single("schema", "contact", &o.schema, &n.schema, |s| {
            s.fields
                .iter()
                .map(|f| (f.name.clone(), field_text(f)))
                .collect()
        }));
    d.changes.extend(keyed("event", &o.events, &n.events, |e| {
        e.fields
            .iter()
            .map(|f| (f.name.clone(), field_text(f)))
            .collect()
    }));
    d.changes.extend(keyed("list", &o.lists, &n.lists, |l| {
        let actions: Vec<String> = l.on_join.iter().map(list_action_text).collect();
        if actions.is_empty() {
            return BTreeMap::new();
        }
        BTreeMap::from([(
            "on join".to_string(),
            format!("`on join {{ {} }}`", actions.join(", ")),
        )])
    }));
    d.changes
        .extend(keyed_expr("segment", &o.segments, &n.segments));
    d.changes.extend(keyed("topic", &o.topics, &n.topics, |t| {
        BTreeMap::from([("label".to_string(), format!("{:?}", t.label))])
    }));
    d.changes
        .extend(keyed_expr("consent", &o.consent, &n.consent));
    d.changes.extend(single_opt(
        "pressure",
        "pressure",
        o.pressure.as_ref(),
        n.pressure.as_ref(),
        pressure_fields,
    ));
    d.changes.extend(personas(old, new));
    d.changes.extend(templates(old, new));
    d.changes.extend(scenarios(o, n));
    d.changes.extend(cadences(o, n));

    removed_steps(o, n, &mut d.risks);
    widened_audiences(old, new, &mut d.risks);
    raised_caps(o.pressure.as_ref(), n.pressure.as_ref(), &mut d.risks);
    shortened_quiet(o.pressure.as_ref(), n.pressure.as_ref(), &mut d.risks);
    loosened_consent(old, new, &mut d.risks);
    d
}

// ------------------------------------------------------------- changes

/// Details of two field maps: `~ key: old → new`, `+ key: new`, `- key: old`.
fn field_details(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in old {
        match new.get(k) {
            None => out.push(format!("- {k}: {v}")),
            Some(w) if w != v => out.push(format!("~ {k}: {v} → {w}")),
            Some(_) => {}
        }
    }
    for (k, w) in new {
        if !old.contains_key(k) {
            out.push(format!("+ {k}: {w}"));
        }
    }
    out
}

fn single<T: PartialEq>(
    kind: &'static str,
    name: &str,
    old: &T,
    new: &T,
    fields: impl Fn(&T) -> BTreeMap<String, String>,
) -> Option<Change> {
    let details = field_details(&fields(old), &fields(new));
    (!details.is_empty()).then(|| Change {
        kind,
        name: name.to_string(),
        change: ChangeKind::Changed,
        details,
    })
}

fn single_opt<T: PartialEq>(
    kind: &'static str,
    name: &str,
    old: Option<&T>,
    new: Option<&T>,
    fields: impl Fn(&T) -> BTreeMap<String, String>,
) -> Option<Change> {
    let (change, details) = match (old, new) {
        (None, None) => return None,
        // Most declarations are the same on both sides: not printed.
        (Some(o), Some(n)) if o == n => return None,
        (Some(o), None) => (
            ChangeKind::Removed,
            field_details(&fields(o), &BTreeMap::new()),
        ),
        (None, Some(n)) => (
            ChangeKind::Added,
            field_details(&BTreeMap::new(), &fields(n)),
        ),
        (Some(o), Some(n)) => {
            let details = field_details(&fields(o), &fields(n));
            if details.is_empty() {
                return None;
            }
            (ChangeKind::Changed, details)
        }
    };
    Some(Change {
        kind,
        name: name.to_string(),
        change,
        details,
    })
}

fn keyed<T: PartialEq>(
    kind: &'static str,
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
    fields: impl Fn(&T) -> BTreeMap<String, String>,
) -> Vec<Change> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| single_opt(kind, name, old.get(name), new.get(name), &fields))
        .collect()
}

fn keyed_expr(
    kind: &'static str,
    old: &BTreeMap<String, Expr>,
    new: &BTreeMap<String, Expr>,
) -> Vec<Change> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        let (change, details) = match (old.get(name), new.get(name)) {
            (Some(o), Some(n)) if o == n => continue,
            (Some(o), Some(n)) => (
                ChangeKind::Changed,
                vec![format!("~ `{}` → `{}`", expr_text(o), expr_text(n))],
            ),
            (Some(o), None) => (ChangeKind::Removed, vec![format!("- `{}`", expr_text(o))]),
            (None, Some(n)) => (ChangeKind::Added, vec![format!("+ `{}`", expr_text(n))]),
            (None, None) => continue,
        };
        out.push(Change {
            kind,
            name: name.clone(),
            change,
            details,
        });
    }
    out
}

/// Any serializable value's top-level keys as compact JSON (the fallback
/// for settings with no syntax of their own in the plan).
fn fields_of<T: Serialize>(v: &T) -> BTreeMap<String, String> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn field_text(f: &crate::plan::Field) -> String {
    let mut out = f.ty.clone();
    if let Some(v) = &f.variants {
        out = format!("enum[{}]", v.join(", "));
    }
    if f.optional {
        out.push('?');
    }
    out
}

fn list_action_text(a: &crate::plan::ListAction) -> String {
    use crate::plan::ListAction::*;
    match a {
        Join { list } => format!("join {list}"),
        Leave { list } => format!("leave {list}"),
        Tag { tag } => format!("tag {tag:?}"),
        Untag { tag } => format!("untag {tag:?}"),
    }
}

fn cap_text(c: &crate::plan::Cap) -> String {
    format!(
        "{} max {} per {}",
        c.scope,
        c.max,
        duration_text(c.per_seconds)
    )
}

fn quiet_rule_text(q: &crate::plan::QuietRule) -> String {
    let channel = q
        .channel
        .as_deref()
        .map(|c| format!("{c} "))
        .unwrap_or_default();
    match (q.kind.as_str(), &q.start, &q.end) {
        ("hours", Some(s), Some(e)) => format!("quiet {channel}{s} to {e}"),
        _ => format!("quiet {channel}{}", q.kind),
    }
}

fn pressure_fields(p: &Pressure) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for c in &p.caps {
        m.insert(format!("cap {}", c.scope), format!("`{}`", cap_text(c)));
    }
    if let Some(g) = p.gap_seconds {
        m.insert("gap".into(), format!("`gap {}`", duration_text(g)));
    }
    if let Some(q) = &p.quiet {
        m.insert("quiet".into(), format!("`quiet {} to {}`", q.start, q.end));
    }
    for (i, q) in p.quiet_rules.iter().enumerate() {
        m.insert(
            format!("quiet rule {}", i + 1),
            format!("`{}`", quiet_rule_text(q)),
        );
    }
    m.insert("on excess".into(), format!("`on excess {}`", p.on_excess));
    if let Some(u) = &p.under_below {
        m.insert(
            "under below".into(),
            format!(
                "`under below {} per {}`",
                u.count,
                duration_text(u.per_seconds)
            ),
        );
    }
    m
}

/// A part's text on one line when short, else its size and hash (its
/// lines are compared by `templates`).
fn part_text(p: &crate::plan::Part) -> String {
    let lines = p.text.lines().count();
    if lines <= 1 && p.text.chars().count() <= 120 {
        format!("{:?}", p.text)
    } else {
        let sha: String = p.sha256.chars().take(12).collect();
        format!("{lines} lines, {} bytes, sha256 {sha}…", p.text.len())
    }
}

fn template_fields(t: &Template) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("channel".into(), t.channel.clone());
    m.insert("kind".into(), t.kind.clone());
    for (name, p) in &t.parts {
        m.insert(format!("part {name}"), part_text(p));
    }
    for (locale, parts) in &t.variants {
        for (name, p) in parts {
            m.insert(format!("part {name}.{locale}"), part_text(p));
        }
    }
    for (name, url) in &t.links {
        m.insert(format!("link {name}"), format!("{url:?}"));
    }
    let opt = |m: &mut BTreeMap<String, String>, k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    opt(&mut m, "topic", t.topic.clone());
    opt(&mut m, "expires", t.expires_seconds.map(duration_text));
    opt(&mut m, "priority", t.priority.clone());
    opt(&mut m, "due", t.due_seconds.map(duration_text));
    opt(&mut m, "method", t.method.clone());
    for h in &t.request_headers {
        let value: Vec<String> = h
            .value
            .iter()
            .map(|p| match p {
                crate::plan::HeaderPiece::Text(s) => format!("{s:?}"),
                crate::plan::HeaderPiece::Env(e) => format!("env({e:?})"),
            })
            .collect();
        m.insert(format!("header {:?}", h.name), value.join(" + "));
    }
    m
}

fn templates(old: &Side, new: &Side) -> Vec<Change> {
    let (o, n) = (&old.plan, &new.plan);
    let mut out = keyed("template", &o.templates, &n.templates, template_fields);
    // Templates changed only through a partial they reach.
    let partials = changed_partials(old, new);
    if !partials.is_empty() {
        for (name, t) in &o.templates {
            if n.templates.get(name) == Some(t)
                && !changed_partials_of(old, new, &partials, name).is_empty()
            {
                out.push(Change {
                    kind: "template",
                    name: name.clone(),
                    change: ChangeKind::Changed,
                    details: Vec::new(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
    }
    for c in &mut out {
        let (Some(a), Some(b)) = (o.templates.get(&c.name), n.templates.get(&c.name)) else {
            continue;
        };
        for p in changed_partials_of(old, new, &partials, &c.name) {
            let (before, after) = (old.partials.get(&p), new.partials.get(&p));
            let path = crate::render::partial_path(&p);
            match (before, after) {
                (Some(x), Some(y)) => {
                    c.details.push(format!("~ partial {p} ({path}), lines:"));
                    c.details.extend(line_diff(x, y));
                }
                (None, Some(_)) => c.details.push(format!("+ partial {p} ({path})")),
                (Some(_), None) => c.details.push(format!("- partial {p} ({path})")),
                (None, None) => {}
            }
        }
        let mut parts: Vec<(String, &crate::plan::Part, &crate::plan::Part)> = Vec::new();
        for (name, p) in &a.parts {
            if let Some(q) = b.parts.get(name) {
                parts.push((name.clone(), p, q));
            }
        }
        for (locale, ps) in &a.variants {
            for (name, p) in ps {
                if let Some(q) = b.variants.get(locale).and_then(|v| v.get(name)) {
                    parts.push((format!("{name}.{locale}"), p, q));
                }
            }
        }
        for (name, p, q) in parts {
            if p.text != q.text && (p.text.contains('\n') || q.text.contains('\n')) {
                c.details.push(format!("part {name}, lines:"));
                c.details.extend(line_diff(&p.text, &q.text));
            }
        }
        // Personas whose rendered messages change the same way share one
        // block.
        let mut groups: Vec<(Vec<String>, Vec<&str>)> = Vec::new();
        for ((t, persona), before) in &old.rendered {
            if t != &c.name {
                continue;
            }
            let Some(after) = new.rendered.get(&(t.clone(), persona.clone())) else {
                continue;
            };
            if before == after {
                continue;
            }
            let lines = line_diff(before, after);
            match groups.iter_mut().find(|(l, _)| *l == lines) {
                Some((_, personas)) => personas.push(persona),
                None => groups.push((lines, vec![persona])),
            }
        }
        for (lines, personas) in groups {
            let word = if personas.len() == 1 {
                "persona"
            } else {
                "personas"
            };
            c.details
                .push(format!("rendered for {word} {}:", personas.join(", ")));
            c.details.extend(lines);
        }
    }
    out
}

/// The lines removed (`  - `) and added (`  + `) from `a` to `b`, by a
/// longest common subsequence; texts over 2,000 lines are compared as a
/// whole.
fn line_diff(a: &str, b: &str) -> Vec<String> {
    let (x, y): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    if x.len() > 2000 || y.len() > 2000 {
        return vec![format!("  ({} lines → {} lines)", x.len(), y.len())];
    }
    // lcs[i][j]: the longest common subsequence of x[i..] and y[j..].
    let mut lcs = vec![vec![0u32; y.len() + 1]; x.len() + 1];
    for i in (0..x.len()).rev() {
        for j in (0..y.len()).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < x.len() || j < y.len() {
        if i < x.len() && j < y.len() && x[i] == y[j] {
            i += 1;
            j += 1;
        } else if i < x.len() && (j == y.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("  - {}", x[i]));
            i += 1;
        } else {
            out.push(format!("  + {}", y[j]));
            j += 1;
        }
    }
    out
}

/// Personas are compared by what the diff prints of them.
impl PartialEq for Persona {
    fn eq(&self, other: &Persona) -> bool {
        persona_fields(self) == persona_fields(other)
    }
}

fn persona_fields(p: &Persona) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if p.negative {
        m.insert("negative".into(), "yes".into());
    }
    if p.contact.id != p.name {
        m.insert("id".into(), format!("{:?}", p.contact.id));
    }
    for (k, v) in &p.contact.fields {
        m.insert(k.clone(), v.show());
    }
    if !p.contact.lists.is_empty() {
        let l: Vec<&str> = p.contact.lists.iter().map(String::as_str).collect();
        m.insert("lists".into(), format!("[{}]", l.join(", ")));
    }
    if !p.contact.tags.is_empty() {
        let t: Vec<String> = p.contact.tags.iter().map(|t| format!("{t:?}")).collect();
        m.insert("tags".into(), format!("[{}]", t.join(", ")));
    }
    for (i, e) in p.events.iter().enumerate() {
        let fields: Vec<String> = e
            .fields
            .iter()
            .map(|(k, v)| format!("{k} = {}", v.show()))
            .collect();
        let at = jiff::Timestamp::from_second(e.at)
            .map(|t| t.to_string())
            .unwrap_or_default();
        m.insert(
            format!("event {}", i + 1),
            format!("{} {{ {} }} at {at}", e.name, fields.join(", ")),
        );
    }
    for (i, x) in p.expects.iter().enumerate() {
        m.insert(format!("expect {}", i + 1), format!("`{x}`"));
    }
    m
}

fn personas(old: &Side, new: &Side) -> Vec<Change> {
    keyed("persona", &old.personas, &new.personas, persona_fields)
}

/// A step as written, without where it goes next.
fn step_text(s: &Step) -> String {
    match s {
        Step::Send { template, .. } => format!("send {template}"),
        Step::Wait {
            seconds,
            business_days,
            ..
        } => match business_days {
            Some(n) => format!("wait {n} business days"),
            None => format!("wait {}", duration_text(*seconds)),
        },
        Step::WaitUntil {
            until,
            timeout_seconds,
            ..
        } => format!(
            "wait until {} for {}",
            expr_text(until),
            duration_text(*timeout_seconds)
        ),
        Step::Branch { arms, .. } => {
            let arms: Vec<String> = arms
                .iter()
                .map(|a| match &a.when {
                    Some(w) => format!("when {}", expr_text(w)),
                    None => "else".to_string(),
                })
                .collect();
            format!("branch {{ {} }}", arms.join("; "))
        }
        Step::Split { arms } => {
            let arms: Vec<String> = arms.iter().map(|a| format!("{}%", a.share)).collect();
            format!("split {{ {} }}", arms.join(", "))
        }
        Step::Join { list, .. } => format!("join {list}"),
        Step::Leave { list, .. } => format!("leave {list}"),
        Step::Tag { tag, .. } => format!("tag {tag:?}"),
        Step::Untag { tag, .. } => format!("untag {tag:?}"),
        Step::Start { cadence, .. } => format!("start {cadence}"),
        Step::Exit => "exit".to_string(),
        Step::WaitUntilTime { until, .. } => format!("wait until {}", term_text(until)),
    }
}

fn scenario_fields(s: &Scenario) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert(
        "audience".into(),
        format!(
            "`{}`",
            s.audience
                .as_ref()
                .map(expr_text)
                .unwrap_or("everyone".into())
        ),
    );
    m.insert("trigger".into(), format!("`{}`", triggers_text(s)));
    m.insert("reentry".into(), format!("`{}`", reentry_text(&s.reentry)));
    if let Some(e) = &s.exit_when {
        m.insert("exit when".into(), format!("`{}`", expr_text(e)));
    }
    for (i, g) in s.goals.iter().enumerate() {
        m.insert(format!("goal {}", i + 1), format!("`{}`", goal_text(g)));
    }
    for (id, step) in &s.steps {
        m.insert(format!("step {id}"), format!("`{}`", step_text(step)));
    }
    m
}

fn scenarios(o: &Plan, n: &Plan) -> Vec<Change> {
    keyed("scenario", &o.scenarios, &n.scenarios, scenario_fields)
}

/// `day 0 fleet_intro, day 1 call_discovery, …`.
fn timeline(c: &Cadence) -> String {
    let mut at = 0i64;
    let mut out = Vec::new();
    for t in &c.touches {
        at = at.saturating_add(t.after_seconds);
        let day = if at % 86_400 == 0 {
            format!("day {}", at / 86_400)
        } else {
            format!("+{}", duration_text(at))
        };
        out.push(format!("{day} {}", t.template));
    }
    out.join(", ")
}

fn cadence_fields(c: &Cadence) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(s) = &c.stop_when {
        m.insert("stop when".into(), format!("`{}`", expr_text(s)));
    }
    m.insert(
        "spacing".into(),
        match c.spacing_business_days {
            Some(n) => format!("`{n} business days`"),
            None => format!("`{}`", duration_text(c.spacing_seconds)),
        },
    );
    for t in &c.touches {
        let mut text = format!("touch {}", t.template);
        match t.after_business_days {
            Some(n) => text.push_str(&format!(" after {n} business days")),
            None => text.push_str(&format!(" after {}", duration_text(t.after_seconds))),
        }
        if let Some(w) = &t.when {
            text.push_str(&format!(" when {}", expr_text(w)));
        }
        m.insert(format!("touch {}", t.id), format!("`{text}`"));
    }
    m
}

fn cadences(o: &Plan, n: &Plan) -> Vec<Change> {
    let mut out = keyed("cadence", &o.cadences, &n.cadences, cadence_fields);
    for c in &mut out {
        if c.change != ChangeKind::Changed {
            continue;
        }
        let (Some(a), Some(b)) = (o.cadences.get(&c.name), n.cadences.get(&c.name)) else {
            continue;
        };
        let (ta, tb) = (timeline(a), timeline(b));
        if ta != tb {
            c.details.push(format!("timeline before: {ta}"));
            c.details.push(format!("timeline after:  {tb}"));
        }
    }
    out
}

// --------------------------------------------------------------- risks

#[cfg(test)]
mod tests;

fn risk(code: RiskCode, kind: &'static str, name: &str, message: String) -> Risk {
    Risk {
        code,
        severity: "warning",
        kind,
        name: name.to_string(),
        message,
    }
}

fn removed_steps(o: &Plan, n: &Plan, risks: &mut Vec<Risk>) {
    for (name, s) in &o.scenarios {
        let Some(t) = n.scenarios.get(name) else {
            if !s.steps.is_empty() {
                risks.push(risk(
                    RiskCode::R0101,
                    "scenario",
                    name,
                    format!(
                        "scenario `{name}` is removed with its {} step(s): runs waiting in it cannot resume under the new plan and must be ended or moved",
                        s.steps.len()
                    ),
                ));
            }
            continue;
        };
        let gone: Vec<&str> = s
            .steps
            .keys()
            .filter(|id| !t.steps.contains_key(*id))
            .map(String::as_str)
            .collect();
        if !gone.is_empty() {
            risks.push(risk(
                RiskCode::R0101,
                "scenario",
                name,
                format!(
                    "scenario `{name}` loses step(s) {}: runs waiting there cannot resume under the new plan and must be ended or moved",
                    gone.join(", ")
                ),
            ));
        }
    }
    for (name, c) in &o.cadences {
        let Some(d) = n.cadences.get(name) else {
            if !c.touches.is_empty() {
                risks.push(risk(
                    RiskCode::R0101,
                    "cadence",
                    name,
                    format!(
                        "cadence `{name}` is removed with its {} touch(es): runs waiting in it cannot resume under the new plan and must be ended or moved",
                        c.touches.len()
                    ),
                ));
            }
            continue;
        };
        let kept: BTreeSet<&str> = d.touches.iter().map(|t| t.id.as_str()).collect();
        let gone: Vec<&str> = c
            .touches
            .iter()
            .map(|t| t.id.as_str())
            .filter(|id| !kept.contains(id))
            .collect();
        if !gone.is_empty() {
            risks.push(risk(
                RiskCode::R0101,
                "cadence",
                name,
                format!(
                    "cadence `{name}` loses touch(es) {}: runs waiting there cannot resume under the new plan and must be ended or moved",
                    gone.join(", ")
                ),
            ));
        }
    }
}

/// The personas of both sides, each with its newest data.
fn all_personas<'s>(old: &'s Side, new: &'s Side) -> BTreeMap<&'s str, &'s Persona> {
    let mut m: BTreeMap<&str, &Persona> =
        old.personas.iter().map(|(k, v)| (k.as_str(), v)).collect();
    m.extend(new.personas.iter().map(|(k, v)| (k.as_str(), v)));
    m
}

/// The personas that `new` admits (on the new plan) and `old` refused (on
/// the old plan); `None` stands for "everyone".
fn newly_admitted(old: &Side, new: &Side, a: Option<&Expr>, b: Option<&Expr>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, p) in all_personas(old, new) {
        let eval = |side: &Side, e: Option<&Expr>| {
            e.is_none_or(|e| {
                Context {
                    plan: &side.plan,
                    contact: &p.contact,
                    events: &p.events,
                    now: new.now,
                    run: None,
                }
                .eval(e)
            })
        };
        if eval(new, b) && !eval(old, a) {
            out.push(format!("`{name}`"));
        }
    }
    out
}

fn widened_audiences(old: &Side, new: &Side, risks: &mut Vec<Risk>) {
    for (name, s) in &old.plan.scenarios {
        let Some(t) = new.plan.scenarios.get(name) else {
            continue;
        };
        let admitted = newly_admitted(old, new, s.audience.as_ref(), t.audience.as_ref());
        if !admitted.is_empty() {
            risks.push(risk(
                RiskCode::R0102,
                "scenario",
                name,
                format!(
                    "the audience of scenario `{name}` now admits persona(s) {} that it refused",
                    admitted.join(", ")
                ),
            ));
        }
    }
}

fn raised_caps(o: Option<&Pressure>, n: Option<&Pressure>, risks: &mut Vec<Risk>) {
    let Some(o) = o else { return };
    let caps = n.map(|n| n.caps.as_slice()).unwrap_or_default();
    for c in &o.caps {
        let same: Vec<_> = caps.iter().filter(|d| d.scope == c.scope).collect();
        let message = if same.is_empty() {
            Some(format!("cap `{}` is removed", cap_text(c)))
        } else {
            // Raised when every new cap of the scope allows more per
            // second than the old one.
            let raised = same.iter().all(|d| {
                (d.max as i128) * (c.per_seconds as i128)
                    > (c.max as i128) * (d.per_seconds as i128)
            });
            raised.then(|| {
                let now: Vec<String> = same.iter().map(|d| format!("`{}`", cap_text(d))).collect();
                format!("cap `{}` is raised to {}", cap_text(c), now.join(", "))
            })
        };
        if let Some(m) = message {
            risks.push(risk(RiskCode::R0103, "pressure", "pressure", m));
        }
    }
}

fn minute(clock: &str) -> Option<usize> {
    let (h, m) = clock.split_once(':')?;
    Some(h.parse::<usize>().ok()? * 60 + m.parse::<usize>().ok()?)
}

/// Quiet minutes of a day and the weekends flag, per channel (`None`:
/// marketing messages of every channel).
type Quiet = BTreeMap<Option<String>, (Vec<bool>, bool)>;

fn quiet_of(p: Option<&Pressure>) -> Quiet {
    let mut m: Quiet = BTreeMap::new();
    let Some(p) = p else { return m };
    let mut mark = |channel: Option<String>, start: &str, end: &str| {
        let entry = m
            .entry(channel)
            .or_insert_with(|| (vec![false; 1440], false));
        if let (Some(s), Some(e)) = (minute(start), minute(end)) {
            let mut i = s;
            while i != e {
                if let Some(x) = entry.0.get_mut(i) {
                    *x = true;
                }
                i = (i + 1) % 1440;
            }
        }
    };
    if let Some(q) = &p.quiet {
        mark(None, &q.start, &q.end);
    }
    for r in &p.quiet_rules {
        if let (Some(s), Some(e)) = (&r.start, &r.end) {
            mark(r.channel.clone(), s, e);
        }
    }
    for r in &p.quiet_rules {
        if r.kind == "weekends" {
            m.entry(r.channel.clone())
                .or_insert_with(|| (vec![false; 1440], false))
                .1 = true;
        }
    }
    m
}

fn clock(m: usize) -> String {
    format!("{:02}:{:02}", (m / 60) % 24, m % 60)
}

fn shortened_quiet(o: Option<&Pressure>, n: Option<&Pressure>, risks: &mut Vec<Risk>) {
    let (qo, qn) = (quiet_of(o), quiet_of(n));
    for (channel, (minutes, weekends)) in &qo {
        let scope = channel
            .as_deref()
            .map(|c| format!("for {c}"))
            .unwrap_or_else(|| "for marketing messages".to_string());
        let empty = (vec![false; 1440], false);
        let (new_minutes, new_weekends) = qn.get(channel).unwrap_or(&empty);
        // Contiguous runs of minutes quiet before and not now.
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut start = None;
        for i in 0..=1440 {
            let gone = i < 1440 && minutes[i] && !new_minutes[i];
            match (gone, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    runs.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        // A run through midnight is one interval (`21:00–08:00`).
        if runs.len() > 1
            && runs.first().is_some_and(|r| r.0 == 0)
            && runs.last().is_some_and(|r| r.1 == 1440)
        {
            let (first, last) = (runs.remove(0), runs.pop());
            if let Some(last) = last {
                runs.push((last.0, first.1));
            }
        }
        let lost: Vec<String> = runs
            .iter()
            .map(|(s, e)| format!("{}–{}", clock(*s), clock(*e)))
            .collect();
        if !lost.is_empty() {
            risks.push(risk(
                RiskCode::R0104,
                "pressure",
                "pressure",
                format!("{} no longer quiet {scope}", lost.join(", ")),
            ));
        }
        if *weekends && !new_weekends {
            risks.push(risk(
                RiskCode::R0104,
                "pressure",
                "pressure",
                format!("weekends are no longer quiet {scope}"),
            ));
        }
    }
}

fn loosened_consent(old: &Side, new: &Side, risks: &mut Vec<Risk>) {
    for (channel, rule) in &old.plan.consent {
        let name = channel.to_string();
        match new.plan.consent.get(channel) {
            None => risks.push(risk(
                RiskCode::R0105,
                "consent",
                &name,
                format!(
                    "the consent rule of {channel} (`{}`) is removed: marketing {channel} goes to contacts who never consented",
                    expr_text(rule)
                ),
            )),
            Some(r) if r != rule => {
                let admitted = newly_admitted(old, new, Some(rule), Some(r));
                if !admitted.is_empty() {
                    risks.push(risk(
                        RiskCode::R0105,
                        "consent",
                        &name,
                        format!(
                            "the consent rule of {channel} (`{}` → `{}`) now holds for persona(s) {} and did not before",
                            expr_text(rule),
                            expr_text(r),
                            admitted.join(", ")
                        ),
                    ));
                }
            }
            Some(_) => {}
        }
    }
    for (name, t) in &old.plan.templates {
        let Some(u) = new.plan.templates.get(name) else {
            continue;
        };
        if let (Some(topic), None) = (&t.topic, &u.topic)
            && u.kind == "marketing"
        {
            risks.push(risk(
                RiskCode::R0105,
                "template",
                name,
                format!(
                    "template `{name}` leaves topic `{topic}`: contacts who unsubscribed from `{topic}` will receive it"
                ),
            ));
        }
    }
}
