//! Checks: name resolution in one namespace, the type rules of §4, and the
//! lints of §3–§9 that need no template rendering. No I/O.
//!
//! Every check writes into one [`Problems`] sink and goes on: a later check
//! skips only what an earlier error made meaningless (an unknown field has
//! no type to compare).

mod calendar;
pub mod consent;
mod dates;
mod delivery;
mod expr;
mod flow;
mod items;
pub mod locales;
mod senders;
mod text;
pub mod types;

use std::collections::{HashMap, HashSet};

use crate::diagnostics::{Code, Diagnostic, Problems, SourceMap, Span, suggest};
use crate::syntax::ast::*;
use types::{Field, Fields, Type};

/// What a name in the shared namespace refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Event,
    List,
    Segment,
    Persona,
    Template,
    Scenario,
    Cadence,
    Topic,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Event => "an event",
            Kind::List => "a list",
            Kind::Segment => "a segment",
            Kind::Persona => "a persona",
            Kind::Template => "a template",
            Kind::Scenario => "a scenario",
            Kind::Cadence => "a cadence",
            Kind::Topic => "a topic",
        }
    }
}

/// The declarations of a whole project, indexed for the checks.
pub struct Project<'a> {
    pub sources: &'a SourceMap,
    pub workspace: Option<&'a Workspace>,
    pub schema: Fields,
    pub has_schema: bool,
    pub events: HashMap<&'a str, Fields>,
    pub names: HashMap<&'a str, (Kind, Span)>,
    pub lists: Vec<&'a ListDecl>,
    pub segments: Vec<&'a Segment>,
    pub personas: Vec<&'a Persona>,
    pub templates: HashMap<&'a str, &'a Template>,
    pub template_order: Vec<&'a Template>,
    pub scenarios: Vec<&'a Scenario>,
    pub cadences: HashMap<&'a str, &'a Cadence>,
    pub cadence_order: Vec<&'a Cadence>,
    pub pressure: Option<&'a PressurePolicy>,
    /// Some file could not be read or parsed at all: any name may be
    /// declared there, so "unknown" diagnostics would be guesses.
    pub incomplete: bool,
    /// Names and keywords of declarations that had a syntax error.
    pub broken_names: HashSet<&'a str>,
    pub broken_keywords: HashSet<&'a str>,
    /// `topic NAME "label"` declarations, in order.
    pub topics: Vec<&'a TopicDecl>,
    /// `consent CHANNEL = EXPR` rules, in order (duplicates included).
    pub consents: Vec<&'a ConsentRule>,
}

impl<'a> Project<'a> {
    /// Whether the contact schema may be missing fields because of an
    /// earlier error: unknown-field diagnostics are then skipped.
    pub fn schema_incomplete(&self) -> bool {
        self.incomplete || self.broken_keywords.contains("contact")
    }

    /// Whether `name` may be declared in a part that could not be parsed.
    pub fn maybe_declared(&self, name: &str) -> bool {
        self.incomplete || self.broken_names.contains(name)
    }

    pub fn kind_of(&self, name: &str) -> Option<Kind> {
        self.names.get(name).map(|&(k, _)| k)
    }

    pub fn names_of(&self, kind: Kind) -> impl Iterator<Item = &'a str> + '_ {
        self.names
            .iter()
            .filter(move |(_, (k, _))| *k == kind)
            .map(|(n, _)| *n)
    }

    /// Reports a name that should be of `want` kind, returns whether it is.
    pub fn expect_kind(
        &self,
        ident: &Ident,
        want: Kind,
        unknown: Code,
        problems: &mut Problems,
    ) -> bool {
        match self.kind_of(&ident.name) {
            Some(k) if k == want => true,
            Some(k) => {
                problems.push(
                    Diagnostic::new(
                        Code::E0211,
                        format!("`{}` is {}, not {}", ident.name, k.noun(), want.noun()),
                    )
                    .at(ident.span, format!("expected {}", want.noun()))
                    .help_opt(suggest(
                        &ident.name,
                        self.names_of(want),
                        || None,
                    )),
                );
                false
            }
            None if self.maybe_declared(&ident.name) => false,
            None => {
                let mut candidates: Vec<&str> = Vec::new();
                if crate::diagnostics::suggestions_left() {
                    candidates.extend(self.names_of(want));
                    if want == Kind::Event {
                        candidates.extend(types::BUILTIN_EVENTS);
                    }
                }
                let noun = want
                    .noun()
                    .trim_start_matches("a ")
                    .trim_start_matches("an ");
                problems.push(
                    Diagnostic::new(unknown, format!("unknown {noun} `{}`", ident.name))
                        .at(ident.span, format!("no {noun} has this name"))
                        .help_opt(suggest(&ident.name, candidates.iter().copied(), || {
                            Some(format!(
                                "declare it with `{}` or check the spelling",
                                declare_hint(want)
                            ))
                        })),
                );
                false
            }
        }
    }

    pub fn event_fields(&self, name: &str) -> Option<&Fields> {
        self.events.get(name)
    }
}

fn declare_hint(kind: Kind) -> &'static str {
    match kind {
        Kind::Event => "event NAME { … }",
        Kind::List => "list NAME",
        Kind::Segment => "segment NAME = …",
        Kind::Persona => "persona NAME { … }",
        Kind::Template => "template NAME : CHANNEL { … }",
        Kind::Scenario => "scenario NAME { … }",
        Kind::Cadence => "cadence NAME { … }",
        Kind::Topic => "topic NAME \"label\"",
    }
}

impl<'a> Project<'a> {
    /// The resolved declarations of a project, for later stages (plan,
    /// render). Problems are not reported here: run [`check_project`] first.
    pub fn resolve(sources: &'a SourceMap, files: &'a [File]) -> Project<'a> {
        collect(sources, files, &mut Problems::new())
    }
}

/// Checks a parsed project. `files` are the ASTs of every file in `sources`.
/// The "did you mean" search shares one budget
/// ([`crate::diagnostics::SUGGESTION_BUDGET_PER_CHECK`]): past it, help
/// texts give their general advice.
pub fn check_project(sources: &SourceMap, files: &[File], problems: &mut Problems) {
    crate::diagnostics::with_suggestion_budget(
        crate::diagnostics::SUGGESTION_BUDGET_PER_CHECK,
        || check_all(sources, files, problems),
    );
}

fn check_all(sources: &SourceMap, files: &[File], problems: &mut Problems) {
    let project = collect(sources, files, problems);
    check_declarations(&project, problems);
}

/// The language checks of the declarations of some files only, against
/// the names, schema and events of the whole project, for `relance lsp`
/// (re-checking what an edit can affect). `scope[i]` says whether the
/// declarations of the file of id `i` are checked; the segments they use,
/// transitively, are checked too (cycles and depths run through them).
/// Problems of the project as a whole (duplicate names, the schema, the
/// events) go to `collected`, always for every file; those of the
/// declarations to `problems`, which the caller keeps for the files in
/// `scope`. With every file in scope, `collected` and `problems` together
/// are what [`check_project`] reports.
pub fn check_files(
    sources: &SourceMap,
    files: &[File],
    scope: &[bool],
    collected: &mut Problems,
    problems: &mut Problems,
) {
    crate::diagnostics::with_suggestion_budget(
        crate::diagnostics::SUGGESTION_BUDGET_PER_CHECK,
        || {
            let mut project = collect(sources, files, collected);
            if !scope.iter().all(|&b| b) {
                restrict(&mut project, scope);
            }
            check_declarations(&project, problems);
        },
    );
}

/// Keeps the declarations of the files in `scope` (and the segments they
/// use, transitively) in the lists the checks walk; topics, consent rules
/// and the names stay whole.
fn restrict(p: &mut Project<'_>, scope: &[bool]) {
    let inside = |i: &Ident| scope.get(i.span.file.0 as usize).copied().unwrap_or(false);
    p.lists.retain(|l| inside(&l.name));
    p.personas.retain(|x| inside(&x.name));
    p.template_order.retain(|t| inside(&t.name));
    p.scenarios.retain(|s| inside(&s.name));
    p.cadence_order.retain(|c| inside(&c.name));
    // Level by level: the segments named by the last level's, found in
    // one pass over all segments (no index of them all).
    let mut keep: Vec<bool> = p.segments.iter().map(|s| inside(&s.name)).collect();
    let mut level: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
    // Names looked for already (a name declared twice is looked for in
    // every file: the checks resolve it to the last one).
    let mut seen: HashSet<&str> = HashSet::new();
    while !level.is_empty() {
        let mut wanted: HashSet<&str> = HashSet::new();
        for &i in &level {
            let mut refs = Vec::new();
            expr::segment_refs(p, &p.segments[i].expr, &mut refs);
            wanted.extend(
                refs.into_iter()
                    .map(|r| r.name.as_str())
                    .filter(|n| !seen.contains(n)),
            );
        }
        level.clear();
        if wanted.is_empty() {
            break;
        }
        for (j, s) in p.segments.iter().enumerate() {
            if !keep[j] && wanted.contains(s.name.name.as_str()) {
                keep[j] = true;
                level.push(j);
            }
        }
        seen.extend(wanted);
    }
    let mut k = keep.into_iter();
    p.segments.retain(|_| k.next().unwrap_or(false));
}

fn check_declarations(project: &Project<'_>, problems: &mut Problems) {
    items::check_workspace(project, problems);
    items::check_lists(project, problems);
    expr::check_segments(project, problems);
    items::check_personas(project, problems);
    items::check_templates(project, problems);
    consent::check_consent(project, problems);
    locales::check_locales(project, problems);
    flow::check_scenarios(project, problems);
    flow::check_cadences(project, problems);
    items::check_pressure(project, problems);
    delivery::check_expiry(project, problems);
    flow::check_pressure_paths(project, problems);
}

/// Builds the namespace and the schema, reporting duplicates.
fn collect<'a>(sources: &'a SourceMap, files: &'a [File], problems: &mut Problems) -> Project<'a> {
    let decls: usize = files.iter().map(|f| f.decls.len()).sum();
    let mut p = Project {
        sources,
        workspace: None,
        schema: Fields::default(),
        has_schema: false,
        events: HashMap::new(),
        names: HashMap::with_capacity(decls),
        lists: Vec::new(),
        segments: Vec::new(),
        personas: Vec::new(),
        templates: HashMap::with_capacity(decls / 2),
        template_order: Vec::new(),
        scenarios: Vec::new(),
        cadences: HashMap::new(),
        cadence_order: Vec::new(),
        pressure: None,
        incomplete: false,
        broken_names: HashSet::new(),
        broken_keywords: HashSet::new(),
        topics: Vec::new(),
        consents: Vec::new(),
    };
    for f in files {
        p.incomplete |= f.unreadable;
        for b in &f.broken {
            p.broken_keywords.insert(b.keyword.as_str());
            match &b.name {
                Some(n) => {
                    p.broken_names.insert(n.as_str());
                }
                None if !matches!(b.keyword.as_str(), "workspace" | "contact" | "pressure") => {
                    p.incomplete = true
                }
                None => {}
            }
        }
    }
    for name in types::BUILTIN_EVENTS {
        if let Some(f) = types::builtin_event(name) {
            p.events.insert(name, f);
        }
    }
    let mut singletons: HashMap<&str, Span> = HashMap::new();
    let mut schemas = Vec::new();
    for decl in files.iter().flat_map(|f| &f.decls) {
        if let Some(name) = decl.kind.name() {
            let kind = match &decl.kind {
                DeclKind::Event(_) => Kind::Event,
                DeclKind::List(_) => Kind::List,
                DeclKind::Segment(_) => Kind::Segment,
                DeclKind::Persona(_) => Kind::Persona,
                DeclKind::Template(_) => Kind::Template,
                DeclKind::Scenario(_) => Kind::Scenario,
                DeclKind::Cadence(_) => Kind::Cadence,
                DeclKind::Topic(_) => Kind::Topic,
                _ => unreachable!("collect: named declaration"),
            };
            if kind == Kind::Event && types::BUILTIN_EVENTS.contains(&name.name.as_str()) {
                problems.push(
                    Diagnostic::new(Code::E0101, format!("`{}` is a built-in event", name.name))
                        .at(name.span, "already declared by relance")
                        .help("built-in message events are never declared; rename this event"),
                );
                continue;
            }
            if let Some(&(other_kind, other_span)) = p.names.get(name.name.as_str()) {
                problems.push(
                    Diagnostic::new(
                        Code::E0101,
                        format!("the name `{}` is declared twice", name.name),
                    )
                    .at(
                        name.span,
                        format!("{} named `{}` here", kind.noun(), name.name),
                    )
                    .also(
                        other_span,
                        format!(
                            "{} with the same name first declared here",
                            other_kind.noun()
                        ),
                    )
                    .help("all declarations share one namespace; rename one of them"),
                );
                // The body is still checked below; references resolve to the first.
            } else {
                p.names.insert(name.name.as_str(), (kind, name.span));
            }
        }
        match &decl.kind {
            DeclKind::Workspace(w) => {
                if once(&mut singletons, "workspace", w.keyword, problems) {
                    p.workspace = Some(w);
                }
            }
            DeclKind::Contact(s) => {
                if once(&mut singletons, "contact", s.keyword, problems) {
                    schemas.push(s);
                }
            }
            DeclKind::Pressure(pp) => {
                if once(&mut singletons, "pressure", pp.keyword, problems) {
                    p.pressure = Some(pp);
                }
            }
            DeclKind::Event(e) => {
                let fields = resolve_fields(&e.fields, false, problems);
                p.events.entry(e.name.name.as_str()).or_insert(fields);
            }
            DeclKind::List(l) => p.lists.push(l),
            DeclKind::Segment(s) => p.segments.push(s),
            DeclKind::Persona(x) => p.personas.push(x),
            DeclKind::Template(t) => {
                p.templates.entry(t.name.name.as_str()).or_insert(t);
                p.template_order.push(t);
            }
            DeclKind::Scenario(s) => p.scenarios.push(s),
            DeclKind::Cadence(c) => {
                p.cadences.entry(c.name.name.as_str()).or_insert(c);
                p.cadence_order.push(c);
            }
            DeclKind::Topic(t) => p.topics.push(t),
            DeclKind::Consent(c) => p.consents.push(c),
        }
    }
    consent::add_topic_field(&mut p);
    match schemas.first() {
        Some(s) => {
            p.schema = resolve_fields(&s.fields, true, problems);
            p.has_schema = true;
        }
        None if !files.is_empty() && !p.schema_incomplete() => {
            let first = files.iter().find(|f| !f.decls.is_empty()).or(files.first());
            let span = first.map(|f| Span::new(f.file, 0, 0)).unwrap_or_default();
            problems.push(
                Diagnostic::new(Code::E0103, "the project has no contact schema")
                    .at(span, "no `contact { … }` in any file")
                    .help("declare the contact fields once, e.g. `contact { email: email, first_name: text? }`"),
            );
        }
        None => {}
    }
    p
}

/// Records a declaration that may appear once; reports the second.
fn once(
    seen: &mut HashMap<&str, Span>,
    what: &'static str,
    span: Span,
    problems: &mut Problems,
) -> bool {
    match seen.get(what) {
        Some(&first) => {
            problems.push(
                Diagnostic::new(
                    Code::E0102,
                    format!("a project has at most one `{what}` declaration"),
                )
                .at(span, "second declaration")
                .also(first, "first declared here")
                .help(format!("merge the two `{what}` blocks into one")),
            );
            false
        }
        None => {
            seen.insert(what, span);
            true
        }
    }
}

/// Field declarations → typed fields, reporting unknown types, duplicate
/// fields and reserved names.
fn resolve_fields(decls: &[FieldDecl], contact: bool, problems: &mut Problems) -> Fields {
    let mut fields = Fields::default();
    for f in decls {
        if contact && matches!(f.name.name.as_str(), "id" | "tags" | "lists") {
            problems.push(
                Diagnostic::new(Code::E0108, format!("`{}` is a built-in contact field", f.name.name))
                    .at(f.name.span, "reserved name")
                    .help("every contact already has `id: text`, `tags: set<text>` and its list memberships; choose another name"),
            );
            continue;
        }
        let ty = match &f.ty.node {
            TypeExpr::Named(n) => match Type::from_name(n) {
                Some(t) => t,
                None => {
                    let mut candidates: Vec<&str> = Type::NAMES.to_vec();
                    candidates.push("set");
                    candidates.push("enum");
                    problems.push(
                        Diagnostic::new(Code::E0109, format!("unknown type `{n}`"))
                            .at(f.ty.span, "not a type")
                            .help_opt(suggest(n, candidates, || {
                                Some("the types are text, number, bool, date, timestamp, email, phone, device, timezone, enum(…) and set<text>".into())
                            })),
                    );
                    continue;
                }
            },
            TypeExpr::Set(elem) => {
                if elem.name != "text" {
                    problems.push(
                        Diagnostic::new(
                            Code::E0109,
                            format!("`set<{}>` is not supported", elem.name),
                        )
                        .at(elem.span, "only `text` sets exist")
                        .help("use `set<text>`"),
                    );
                    continue;
                }
                Type::SetText
            }
            TypeExpr::Enum(variants) => {
                let mut names: Vec<String> = Vec::new();
                for v in variants {
                    if names.contains(&v.name) {
                        problems.push(
                            Diagnostic::new(
                                Code::E0104,
                                format!("enum variant `{}` is listed twice", v.name),
                            )
                            .at(v.span, "duplicate variant")
                            .help("remove one of them"),
                        );
                    } else {
                        names.push(v.name.clone());
                    }
                }
                Type::Enum(names)
            }
        };
        let field = Field {
            name: f.name.name.clone(),
            ty,
            optional: f.optional,
            span: Some(f.name.span),
        };
        if let Err(first) = fields.push(field) {
            let mut d = Diagnostic::new(
                Code::E0104,
                format!("field `{}` is declared twice", f.name.name),
            )
            .at(f.name.span, "duplicate field")
            .help("remove or rename one of them");
            if let Some(s) = first.span {
                d = d.also(s, "first declared here");
            }
            problems.push(d);
        }
    }
    fields
}
