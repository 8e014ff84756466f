//! The static checks of §6 over the scanned template: every name is
//! resolved against the render context (contact fields, `links`,
//! `workspace`, `trigger`, block scopes), every helper and partial looked up,
//! and optional fields traced to a `default` or an `{{#if}}` guard.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::check::types::Type;
use crate::diagnostics::suggest;

use super::hbs::{self, Arm, Call, Node, Operand, Parsed, PartialTarget, PathRef};
use super::helpers::{CONDITION_HELPERS, HELPERS, MAX_DECIMALS, date_format_error};
use super::model::{
    BUILTIN_VARIABLES, Mode, Model, TemplateInfo, TriggerFields, WORKSPACE_VARIABLES,
};
use super::problem::{ProblemKind, TemplateProblem};
use super::source::Source;

/// One scanned and compiled template source (a body or a partial).
pub(crate) struct Unit {
    pub source: Source,
    pub parsed: Parsed,
    /// Handlebars' compiled template; `None` after a syntax error.
    pub compiled: Option<handlebars::Template>,
}

/// The largest template handed to Handlebars, in bytes and in tags: its
/// parser computes a line and column from the start of the text for every
/// token, so its time grows with their product.
pub(crate) const MAX_TEMPLATE_BYTES: usize = 128 * 1024;
pub(crate) const MAX_TEMPLATE_TAGS: usize = 2_000;

impl Unit {
    /// Scans and compiles `source`, reporting a syntax error.
    pub fn new(source: Source, problems: &mut Vec<TemplateProblem>) -> Unit {
        let mut unit = Unit {
            parsed: Parsed::default(),
            compiled: None,
            source,
        };
        let text = &unit.source.text;
        if text.len() > MAX_TEMPLATE_BYTES {
            problems.push(
                TemplateProblem::new(
                    ProblemKind::SyntaxError,
                    unit.source.span(0..0),
                    format!(
                        "this template is {} KiB, more than the {} KiB relance renders",
                        text.len() / 1024,
                        MAX_TEMPLATE_BYTES / 1024
                    ),
                    "template too large",
                )
                .help("move repeated parts into partials, or shorten the template"),
            );
            return unit;
        }
        unit.parsed = hbs::parse(text);
        if unit.parsed.tags > MAX_TEMPLATE_TAGS {
            problems.push(
                TemplateProblem::new(
                    ProblemKind::SyntaxError,
                    unit.source.span(0..0),
                    format!(
                        "this template has {} `{{{{…}}}}` tags, more than the {MAX_TEMPLATE_TAGS} relance renders",
                        unit.parsed.tags
                    ),
                    "template too complex",
                )
                .help("move repeated parts into partials, or use `{{#each}}` over a list"),
            );
            unit.parsed = Parsed::default();
            return unit;
        }
        if let Some(deep) = &unit.parsed.too_deep {
            problems.push(
                TemplateProblem::new(
                    ProblemKind::SyntaxError,
                    unit.source.span(deep.range.clone()),
                    deep.message.clone(),
                    deep.label.clone(),
                )
                .help(deep.help.clone()),
            );
            return unit;
        }
        if let Some(at) = stray_triple_close(text) {
            problems.push(
                TemplateProblem::new(
                    ProblemKind::SyntaxError,
                    unit.source.span(at..at + 3),
                    "template syntax error: `}}}` closes a `{{…}}` tag".to_string(),
                    "one `}` too many for this tag",
                )
                .help("handlebars.js reads `}}}` as the end of a `{{{…}}}` tag and refuses the template: put a space before a literal `}` (`{{n}} }`), or write `{{{n}}}` for unescaped output"),
            );
            return unit;
        }
        // handlebars.js reads `{{.}}` as `{{this}}`; the crate needs `this`.
        let fixed = hbs::with_this_for_dots(text, &unit.parsed.nodes);
        match super::helpers::compile(fixed.as_deref().unwrap_or(text)) {
            Ok(t) => unit.compiled = Some(t),
            Err((reason, pos)) => {
                let p = match unit.parsed.issues.first() {
                    Some(issue) => {
                        let mut p = TemplateProblem::new(
                            ProblemKind::SyntaxError,
                            unit.source.span(issue.range.clone()),
                            format!("template syntax error: {}", issue.message),
                            issue.label.clone(),
                        );
                        if let Some((r, l)) = &issue.related {
                            p = p.also(unit.source.span(r.clone()), l.clone());
                        }
                        p.help(issue.help.clone())
                    }
                    None => {
                        let at = pos.map(|(l, c)| unit.source.offset_of(l, c)).unwrap_or(0);
                        let end = unit.source.text[at..]
                            .chars()
                            .next()
                            .map(|c| at + c.len_utf8())
                            .unwrap_or(at);
                        TemplateProblem::new(
                            ProblemKind::SyntaxError,
                            unit.source.span(at..end),
                            format!("template syntax error: {reason}"),
                            "Handlebars cannot parse this",
                        )
                        .help("tags are written `{{name}}`, `{{helper arg \"text\"}}`, `{{#if name}} … {{/if}}` and `{{> partial}}`")
                    }
                };
                problems.push(p);
            }
        }
        unit
    }

    pub fn ok(&self) -> bool {
        self.compiled.is_some()
    }
}

/// What the walk of one body found.
#[derive(Default, Debug)]
pub(crate) struct Outcome {
    /// `unsubscribe_url` is used, directly or through a partial.
    pub unsubscribe: bool,
    /// The body cannot be rendered safely (syntax, unknown partial or
    /// helper, partial cycle).
    pub broken: bool,
    /// The names it reads at the root of the render context, through
    /// partials too; meaningless when `reads_root` is set.
    pub roots: BTreeSet<String>,
    /// It can read any name of the root (the root itself is a value:
    /// `{{json this}}`, `{{#each @root}}`, `{{lookup this key}}`).
    pub reads_root: bool,
}

/// The type of a value in the render context.
#[derive(Clone, Debug, PartialEq)]
enum Ty {
    Root,
    Scalar,
    List(Box<Ty>),
    Links,
    Workspace,
    Trigger,
    Any,
}

#[derive(Clone, Debug)]
struct Val {
    ty: Ty,
    /// Comes from the contact or its events (not from the workspace).
    contact: bool,
    /// The contact field this is, when the path names one directly.
    field: Option<String>,
}

impl Val {
    fn of(ty: Ty, contact: bool) -> Val {
        Val {
            ty,
            contact,
            field: None,
        }
    }
}

#[derive(Clone, Debug)]
struct Scope {
    this: Val,
    parents: Vec<Val>,
    locals: Vec<(String, Val)>,
    /// Inside `{{#each}}`: `@index` and friends are defined.
    each: bool,
    /// Optional fields known to be set here.
    guards: Vec<String>,
}

impl Scope {
    fn root() -> Scope {
        Scope {
            this: Val::of(Ty::Root, false),
            parents: Vec::new(),
            locals: Vec::new(),
            each: false,
            guards: Vec::new(),
        }
    }

    fn guarded(&self, field: Option<&String>) -> Scope {
        let mut s = self.clone();
        if let Some(f) = field {
            s.guards.push(f.clone());
        }
        s
    }

    /// A scope whose `this` is `v` (inside `#each`, `#with` or a partial).
    fn enter(&self, v: Val) -> Scope {
        let mut s = self.clone();
        s.parents.push(std::mem::replace(&mut s.this, v));
        s
    }
}

pub(crate) struct Env<'a> {
    pub model: &'a Model,
    /// `None` when a partial is checked on its own.
    pub template: Option<&'a TemplateInfo>,
    pub partials: &'a BTreeMap<String, std::sync::Arc<Unit>>,
}

/// Checks one body. `problems` receives what is found.
pub(crate) fn check(
    env: &Env<'_>,
    unit: &Unit,
    mode: Mode,
    problems: &mut Vec<TemplateProblem>,
) -> Outcome {
    let mut w = Walker {
        env,
        mode,
        problems,
        out: Outcome::default(),
        stack: Vec::new(),
        inline: BTreeMap::new(),
        depth: 0,
    };
    if !unit.ok() {
        w.out.broken = true;
        return w.out;
    }
    w.collect_inline(&unit.parsed.nodes, &unit.source);
    w.nodes(&unit.parsed.nodes, &Scope::root(), &unit.source);
    w.out
}

/// Checks a partial on its own (when no template uses it).
pub(crate) fn check_partial(
    env: &Env<'_>,
    name: &str,
    unit: &Unit,
    problems: &mut Vec<TemplateProblem>,
) {
    let mut w = Walker {
        env,
        mode: Mode::Plain,
        problems,
        out: Outcome::default(),
        stack: vec![name.to_string()],
        inline: BTreeMap::new(),
        depth: 0,
    };
    if unit.ok() {
        w.collect_inline(&unit.parsed.nodes, &unit.source);
        w.nodes(&unit.parsed.nodes, &Scope::root(), &unit.source);
    }
}

struct Walker<'a, 'p> {
    env: &'a Env<'a>,
    mode: Mode,
    problems: &'p mut Vec<TemplateProblem>,
    out: Outcome,
    /// Partials being expanded, outermost first.
    stack: Vec<String>,
    /// Inline partials (`{{#*inline "name"}}`) seen so far.
    inline: BTreeMap<String, (&'a [Node], &'a Source)>,
    /// Blocks and partials entered, across partials: Handlebars renders
    /// them recursively, so the total is bounded.
    depth: usize,
}

/// The deepest nesting of blocks and partials together that is rendered.
const MAX_RENDER_DEPTH: usize = 64;

impl<'a> Walker<'a, '_> {
    /// Enters a block or a partial; false (reported once) when that nests
    /// too deeply. Always pair with `self.depth -= 1`.
    fn deeper(&mut self, range: std::ops::Range<usize>, src: &Source) -> bool {
        self.depth += 1;
        if self.depth <= MAX_RENDER_DEPTH {
            return true;
        }
        if !self.out.broken {
            self.report(
                TemplateProblem::new(
                    ProblemKind::SyntaxError,
                    src.span(range),
                    format!(
                        "blocks and partials nest more than {MAX_RENDER_DEPTH} levels deep here"
                    ),
                    "too deep",
                )
                .help("flatten the nesting of blocks and partials"),
            );
        }
        self.out.broken = true;
        false
    }

    fn report(&mut self, p: TemplateProblem) {
        if matches!(
            p.kind,
            ProblemKind::UnknownHelper | ProblemKind::UnknownPartial | ProblemKind::PartialCycle
        ) {
            self.out.broken = true;
        }
        self.problems.push(p);
    }

    fn collect_inline(&mut self, nodes: &'a [Node], src: &'a Source) {
        for n in nodes {
            match n {
                Node::Inline {
                    name: Some(name),
                    body,
                } => {
                    self.inline.entry(name.clone()).or_insert((body, src));
                    self.collect_inline(body, src);
                }
                Node::Inline { body, .. } => self.collect_inline(body, src),
                Node::Block { body, arms, .. } => {
                    self.collect_inline(body, src);
                    for a in arms {
                        self.collect_inline(&a.body, src);
                    }
                }
                Node::Partial { block: Some(b), .. } => self.collect_inline(b, src),
                _ => {}
            }
        }
    }

    fn nodes(&mut self, nodes: &'a [Node], scope: &Scope, src: &'a Source) {
        for n in nodes {
            self.node(n, scope, src);
        }
    }

    fn node(&mut self, node: &'a Node, scope: &Scope, src: &'a Source) {
        match node {
            Node::Skip | Node::Inline { .. } => {}
            Node::Output { call, raw } => {
                let v = self.call(call, scope, src, false);
                if *raw && self.mode.escapes() && v.contact {
                    let shown = src.text.get(call.range.clone()).unwrap_or("");
                    let plain = shown
                        .replacen("{{{", "{{", 1)
                        .replacen("}}}", "}}", 1)
                        .replacen("{{&", "{{", 1);
                    let what = if self.mode == Mode::Html {
                        "HTML"
                    } else {
                        "JSON"
                    };
                    self.report(
                        TemplateProblem::new(
                            ProblemKind::TripleStash,
                            src.span(call.range.clone()),
                            format!(
                                "`{}` inserts contact data without {what} escaping",
                                hbs::shorten(shown)
                            ),
                            "not escaped",
                        )
                        .help(format!(
                            "contact data can contain `<`, `\"` or `&`: write `{}` so that it is escaped",
                            hbs::shorten(&plain)
                        )),
                    );
                }
            }
            Node::Block { call, body, arms } => {
                if self.deeper(call.range.clone(), src) {
                    self.block(call, body, arms, scope, src);
                }
                self.depth -= 1;
            }
            Node::Partial {
                target,
                params,
                hash,
                block,
                ..
            } => {
                let mut inner = scope.clone();
                if let Some(p) = params.first() {
                    let v = self.operand(p, scope, src, true);
                    inner = scope.enter(Val { field: None, ..v });
                }
                for p in params.iter().skip(1) {
                    self.operand(p, scope, src, true);
                }
                for h in hash {
                    let v = self.operand(&h.value, scope, src, true);
                    inner.locals.push((h.key.clone(), Val { field: None, ..v }));
                }
                self.partial(target, block.is_some(), &inner, src);
                if let Some(b) = block {
                    self.nodes(b, scope, src);
                }
            }
        }
    }

    fn partial(&mut self, target: &PartialTarget, has_block: bool, scope: &Scope, src: &'a Source) {
        let (name, name_range) = match target {
            PartialTarget::Dynamic(r) => {
                self.report(
                    TemplateProblem::new(
                        ProblemKind::UnknownPartial,
                        src.span(r.clone()),
                        "the partial's name is computed when rendering",
                        "dynamic partial",
                    )
                    .help("write the partial's name, like `{{> footer}}`, so that relance can check it"),
                );
                return;
            }
            PartialTarget::Name(n, r) => (n.as_str(), r.clone()),
        };
        if name == "@partial-block" {
            if self.stack.is_empty() {
                self.report(
                    TemplateProblem::new(
                        ProblemKind::UnknownPartial,
                        src.span(name_range),
                        "`@partial-block` is only defined inside a partial",
                        "not inside a partial",
                    )
                    .help("use `{{> @partial-block}}` in a partial called as `{{#> name}} … {{/name}}`"),
                );
            }
            return;
        }
        if let Some(&(body, body_src)) = self.inline.get(name) {
            if self.stack.iter().any(|s| s == name) {
                let cycle = self.cycle_text(name);
                self.report(
                    TemplateProblem::new(
                        ProblemKind::PartialCycle,
                        src.span(name_range),
                        format!("inline partial `{name}` includes itself: {cycle}"),
                        "includes itself",
                    )
                    .help("a partial cannot include itself, directly or through others"),
                );
                return;
            }
            if self.deeper(name_range, src) {
                self.stack.push(name.to_string());
                self.nodes(body, scope, body_src);
                self.stack.pop();
            }
            self.depth -= 1;
            return;
        }
        let partials = self.env.partials;
        match partials.get(name) {
            Some(unit) => {
                if !unit.ok() || self.stack.iter().any(|s| s == name) {
                    // Reported on its own (syntax error, cycle).
                    self.out.broken = true;
                    return;
                }
                if self.deeper(name_range, src) {
                    self.collect_inline(&unit.parsed.nodes, &unit.source);
                    self.stack.push(name.to_string());
                    self.nodes(&unit.parsed.nodes, scope, &unit.source);
                    self.stack.pop();
                }
                self.depth -= 1;
            }
            None if has_block => {}
            None => {
                let names: Vec<&str> = partials.keys().map(String::as_str).collect();
                self.report(
                    TemplateProblem::new(
                        ProblemKind::UnknownPartial,
                        src.span(name_range),
                        format!("unknown partial `{name}`"),
                        format!("no `templates/partials/{name}.hbs`"),
                    )
                    .help_opt(suggest(name, names.iter().copied(), || {
                        Some(format!(
                            "create `templates/partials/{name}.hbs` in the project folder"
                        ))
                    })),
                );
            }
        }
    }

    fn cycle_text(&self, name: &str) -> String {
        let from = self.stack.iter().position(|s| s == name).unwrap_or(0);
        let mut parts: Vec<&str> = self.stack[from..].iter().map(String::as_str).collect();
        parts.push(name);
        parts.join(" → ")
    }

    fn block(
        &mut self,
        call: &'a Call,
        body: &'a [Node],
        arms: &'a [Arm],
        scope: &Scope,
        src: &'a Source,
    ) {
        let name = call.simple_name().unwrap_or("");
        match name {
            "if" | "unless" => {
                self.arity(name, call, src);
                let guard = self.condition(call, scope, src);
                let inner = if name == "if" {
                    scope.guarded(guard.as_ref())
                } else {
                    scope.clone()
                };
                self.nodes(body, &inner, src);
                self.arms(
                    arms,
                    scope,
                    src,
                    if name == "unless" { guard } else { None },
                );
            }
            "each" | "with" => {
                self.arity(name, call, src);
                let v = match call.params.first() {
                    Some(p) => self.operand(p, scope, src, true),
                    None => Val::of(Ty::Any, false),
                };
                for p in call.params.iter().skip(1) {
                    self.operand(p, scope, src, true);
                }
                let guard = v.field.clone();
                let item = if name == "each" {
                    let ty = match &v.ty {
                        Ty::List(elem) => (**elem).clone(),
                        Ty::Links | Ty::Workspace | Ty::Trigger => Ty::Scalar,
                        _ => Ty::Any,
                    };
                    Val::of(ty, v.contact)
                } else {
                    Val { field: None, ..v }
                };
                let mut inner = scope.guarded(guard.as_ref()).enter(item.clone());
                if name == "each" {
                    inner.each = true;
                }
                if let Some((n, _)) = call.block_params.first() {
                    inner.locals.push((n.clone(), item));
                }
                if let Some((n, _)) = call.block_params.get(1) {
                    inner.locals.push((n.clone(), Val::of(Ty::Scalar, false)));
                }
                self.nodes(body, &inner, src);
                self.arms(arms, scope, src, None);
            }
            n if HELPERS.contains(&n) => {
                self.arity(n, call, src);
                for p in &call.params {
                    self.operand(p, scope, src, false);
                }
                for h in &call.hash {
                    self.operand(&h.value, scope, src, false);
                }
                self.nodes(body, scope, src);
                self.arms(arms, scope, src, None);
            }
            _ => {
                let shown = match &call.name {
                    Operand::Path(p) => p.raw.clone(),
                    _ => String::new(),
                };
                let is_variable = call
                    .simple_name()
                    .is_some_and(|n| self.root_lookup(n).is_some());
                let help = if is_variable {
                    Some(format!(
                        "`{shown}` is a variable, not a block helper: write `{{{{#if {shown}}}}} … {{{{/if}}}}` or `{{{{#with {shown}}}}} … {{{{/with}}}}`"
                    ))
                } else {
                    suggest(&shown, HELPERS.iter().copied(), || {
                        Some("relance's helpers are default, upper, lower, capitalize, date, number, eq, ne, gt, gte, lt, lte, and, or, not and len; Handlebars' built-ins are if, unless, each, with, lookup and log".into())
                    })
                };
                self.report(
                    TemplateProblem::new(
                        ProblemKind::UnknownHelper,
                        src.span(call.name.range()),
                        format!("unknown block helper `{shown}`"),
                        "not a helper",
                    )
                    .help_opt(help),
                );
                for p in &call.params {
                    self.operand(p, scope, src, true);
                }
                self.nodes(body, scope, src);
                self.arms(arms, scope, src, None);
            }
        }
    }

    /// The `{{else}}` and `{{else if …}}` arms; `else_guard` holds in a plain
    /// `{{else}}` (after `{{#unless field}}`).
    fn arms(
        &mut self,
        arms: &'a [Arm],
        scope: &Scope,
        src: &'a Source,
        else_guard: Option<String>,
    ) {
        let mut else_guard = else_guard;
        for arm in arms {
            match &arm.chain {
                Some(c) => match c.simple_name() {
                    Some(n @ ("if" | "unless")) => {
                        let guard = self.condition(c, scope, src);
                        let inner = if n == "if" {
                            scope.guarded(guard.as_ref())
                        } else {
                            scope.clone()
                        };
                        self.nodes(&arm.body, &inner, src);
                        else_guard = if n == "unless" { guard } else { None };
                    }
                    _ => {
                        self.call(c, scope, src, true);
                        self.nodes(&arm.body, scope, src);
                        else_guard = None;
                    }
                },
                None => {
                    let inner = scope.guarded(else_guard.as_ref());
                    self.nodes(&arm.body, &inner, src);
                }
            }
        }
    }

    /// Checks the condition of `#if`/`#unless`; returns the optional field
    /// it guards when it is a bare field.
    fn condition(&mut self, call: &'a Call, scope: &Scope, src: &'a Source) -> Option<String> {
        let mut guard = None;
        for (i, p) in call.params.iter().enumerate() {
            let v = self.operand(p, scope, src, true);
            if i == 0 {
                guard = v.field;
            }
        }
        for h in &call.hash {
            self.operand(&h.value, scope, src, true);
        }
        guard
    }

    /// A tag's expression: a helper call or a variable.
    fn call(&mut self, call: &'a Call, scope: &Scope, src: &'a Source, quiet: bool) -> Val {
        let name = call.simple_name();
        let helper = match name {
            Some(n) if HELPERS.contains(&n) => Some(n),
            Some(n) if call.has_args() && !self.is_local(n, scope) => Some(n),
            _ => None,
        };
        let Some(helper) = helper else {
            if call.has_args() {
                let mut contact = false;
                for p in &call.params {
                    contact |= self.operand(p, scope, src, quiet).contact;
                }
                return Val::of(Ty::Any, contact);
            }
            return self.operand(&call.name, scope, src, quiet);
        };
        if !HELPERS.contains(&helper) {
            let help = if self.root_lookup(helper).is_some() {
                Some(format!(
                    "`{helper}` is a variable and takes no arguments; to give a fallback write `{{{{default {helper} \"…\"}}}}`"
                ))
            } else {
                suggest(helper, HELPERS.iter().copied(), || {
                    Some("relance's helpers are default, upper, lower, capitalize, date, number, eq, ne, gt, gte, lt, lte, and, or, not and len; Handlebars' built-ins are if, unless, each, with, lookup and log".into())
                })
            };
            self.report(
                TemplateProblem::new(
                    ProblemKind::UnknownHelper,
                    src.span(call.name.range()),
                    format!("unknown helper `{helper}`"),
                    "not a helper",
                )
                .help_opt(help),
            );
            for p in &call.params {
                self.operand(p, scope, src, true);
            }
            return Val::of(Ty::Any, false);
        }
        self.arity(helper, call, src);
        let condition = CONDITION_HELPERS.contains(&helper);
        let mut contact = false;
        let mut collection = None;
        for (i, p) in call.params.iter().enumerate() {
            let q = quiet
                || condition
                || (helper == "default" && i == 0)
                || matches!(helper, "lookup" | "log" | "each" | "with");
            let v = self.operand(p, scope, src, q);
            contact |= v.contact;
            if i == 0 {
                collection = Some(v);
            }
        }
        if helper == "lookup"
            && let Some(c) = &collection
        {
            contact |= self.lookup_reads_contact(c, call.params.get(1));
        }
        for h in &call.hash {
            contact |= self.operand(&h.value, scope, src, quiet).contact;
        }
        Val::of(
            if helper == "lookup" {
                Ty::Any
            } else {
                Ty::Scalar
            },
            contact && !condition,
        )
    }

    /// Whether `{{lookup C KEY}}` may give contact data: `C` is the contact
    /// (`this` at the top, `@root`), the trigger, a list or unknown, unless
    /// a literal `KEY` names a variable that is not contact data.
    fn lookup_reads_contact(&self, collection: &Val, key: Option<&Operand>) -> bool {
        match &collection.ty {
            Ty::Root => match key {
                Some(Operand::Literal(Json::String(k), _)) => {
                    self.root_lookup(k).is_none_or(|v| v.contact)
                }
                _ => true,
            },
            Ty::Trigger | Ty::List(_) | Ty::Any => true,
            Ty::Links | Ty::Workspace | Ty::Scalar => false,
        }
    }

    fn is_local(&self, name: &str, scope: &Scope) -> bool {
        scope.locals.iter().any(|(n, _)| n == name)
    }

    fn operand(&mut self, op: &'a Operand, scope: &Scope, src: &'a Source, quiet: bool) -> Val {
        match op {
            Operand::Literal(..) => Val::of(Ty::Scalar, false),
            Operand::Sub(call) => self.call(call, scope, src, quiet),
            Operand::Path(p) => self.path(p, scope, src, quiet),
        }
    }

    /// Checks the arguments of the helpers of §6 and of `eq` and friends.
    fn arity(&mut self, helper: &str, call: &Call, src: &Source) {
        let n = call.params.len();
        let (ok, usage) = match helper {
            "default" => (
                n == 2,
                "a value and a fallback: `{{default first_name \"there\"}}`",
            ),
            "upper" | "lower" | "capitalize" => (n == 1, "one value: `{{upper first_name}}`"),
            "date" => (
                (1..=2).contains(&n),
                "a value and a format: `{{date signup_at \"%d/%m/%Y\"}}`",
            ),
            "number" => (
                (1..=2).contains(&n),
                "a value and a number of decimals: `{{number ltv 2}}`",
            ),
            "eq" | "ne" | "gt" | "gte" | "lt" | "lte" => {
                (n == 2, "two values: `(eq plan \"pro\")`")
            }
            "not" | "len" => (n == 1, "one value: `(not kids)`"),
            "if" | "unless" => (n == 1, "one value: `{{#if first_name}}`"),
            "each" => (n == 1, "one list: `{{#each interests}}`"),
            "with" => (n == 1, "one value: `{{#with workspace}}`"),
            "lookup" => (
                n == 2,
                "a value and a key: `{{lookup links plan}}` or `{{lookup interests 0}}`",
            ),
            _ => (true, ""),
        };
        if !ok {
            let shadowed = n == 0 && self.env.model.field(helper).is_some();
            let given = match n {
                0 => "no argument".to_string(),
                1 => "1 argument".to_string(),
                n => format!("{n} arguments"),
            };
            self.report(
                TemplateProblem::new(
                    ProblemKind::InvalidHelperCall,
                    src.span(call.range.clone()),
                    format!("`{helper}` is given {given}"),
                    "wrong number of arguments",
                )
                .help(if shadowed {
                    format!(
                        "`{helper}` is a helper; to insert the contact field `{helper}`, write `{{{{this.{helper}}}}}`"
                    )
                } else {
                    format!("`{helper}` takes {usage}")
                }),
            );
            return;
        }
        match helper {
            "date" => {
                if let Some(Operand::Literal(v, r)) = call.params.get(1) {
                    let problem = match v {
                        Json::String(f) => date_format_error(f)
                            .map(|e| format!("`{f}` is not a valid date format: {e}")),
                        _ => Some("the format of `date` is a string".to_string()),
                    };
                    if let Some(message) = problem {
                        self.report(
                            TemplateProblem::new(
                                ProblemKind::InvalidHelperCall,
                                src.span(r.clone()),
                                message,
                                "invalid format",
                            )
                            .help("use strftime directives such as `%d/%m/%Y`, `%Y-%m-%d %H:%M` or `%A %e %B`"),
                        );
                    }
                }
            }
            "number" => {
                if let Some(Operand::Literal(v, r)) = call.params.get(1)
                    && v.as_u64().is_none_or(|d| d > MAX_DECIMALS)
                {
                    self.report(
                        TemplateProblem::new(
                            ProblemKind::InvalidHelperCall,
                            src.span(r.clone()),
                            format!("`number` takes a number of decimals from 0 to {MAX_DECIMALS}"),
                            "not a number of decimals",
                        )
                        .help("write `{{number ltv 2}}` for two decimals"),
                    );
                }
                for h in &call.hash {
                    if !matches!(h.key.as_str(), "sep" | "point") {
                        self.report(
                            TemplateProblem::new(
                                ProblemKind::InvalidHelperCall,
                                src.span(h.value.range()),
                                format!("`number` has no option `{}`", h.key),
                                "unknown option",
                            )
                            .help("the options are `sep=\" \"` (thousands) and `point=\",\"` (decimal point)"),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    /// What a top-level name is.
    fn root_lookup(&self, name: &str) -> Option<Val> {
        if let Some(f) = self.env.model.field(name) {
            let ty = if f.ty == Some(Type::SetText) {
                Ty::List(Box::new(Ty::Scalar))
            } else {
                Ty::Scalar
            };
            return Some(Val {
                ty,
                contact: true,
                field: Some(f.name.clone()),
            });
        }
        Some(match name {
            "id" => Val::of(Ty::Scalar, true),
            "tags" | "lists" => Val::of(Ty::List(Box::new(Ty::Scalar)), true),
            "links" => Val::of(Ty::Links, false),
            "unsubscribe_url" | "preferences_url" => Val::of(Ty::Scalar, false),
            "workspace" => Val::of(Ty::Workspace, false),
            "trigger" => Val::of(Ty::Trigger, true),
            // A field may be declared in the part that did not parse.
            _ if !self.env.model.schema_complete => Val::of(Ty::Any, true),
            _ => return None,
        })
    }

    fn lookup(&mut self, cur: &Val, seg: &str) -> Option<Val> {
        match &cur.ty {
            Ty::Root => {
                self.out.roots.insert(seg.to_string());
                let v = self.root_lookup(seg)?;
                // Either link lets the contact unsubscribe (§12).
                if seg == "unsubscribe_url" || seg == "preferences_url" {
                    self.out.unsubscribe = true;
                }
                Some(v)
            }
            Ty::Links => match self.env.template {
                None => Some(Val::of(Ty::Any, false)),
                Some(t) => t
                    .links
                    .iter()
                    .any(|(n, _)| n == seg)
                    .then(|| Val::of(Ty::Scalar, false)),
            },
            Ty::Workspace => WORKSPACE_VARIABLES
                .contains(&seg)
                .then(|| Val::of(Ty::Scalar, false)),
            Ty::Trigger => match self.env.template {
                _ if !self.env.model.flows_complete => Some(Val::of(Ty::Any, true)),
                None => Some(Val::of(Ty::Any, true)),
                Some(t) => t.trigger.allows(seg).then(|| Val::of(Ty::Scalar, true)),
            },
            Ty::List(elem) => seg
                .chars()
                .all(|c| c.is_ascii_digit())
                .then(|| Val::of((**elem).clone(), cur.contact)),
            Ty::Scalar => None,
            Ty::Any => Some(Val::of(Ty::Any, cur.contact)),
        }
    }

    fn path(&mut self, p: &PathRef, scope: &Scope, src: &Source, quiet: bool) -> Val {
        let raw = p.raw.as_str();
        if raw.starts_with('@') && !raw.starts_with("@root") {
            let name = raw.trim_start_matches('@').trim_start_matches("../");
            let known = matches!(name, "index" | "key" | "first" | "last");
            if !(known && scope.each) {
                let (message, help) = if known {
                    (
                        format!("`{raw}` is only defined inside `{{{{#each}}}}`"),
                        "use it between `{{#each …}}` and `{{/each}}`".to_string(),
                    )
                } else {
                    (
                        format!("unknown data variable `{raw}`"),
                        "the data variables are `@index`, `@key`, `@first` and `@last` inside `{{#each}}`, and `@root`".to_string(),
                    )
                };
                self.report(
                    TemplateProblem::new(
                        ProblemKind::UnknownVariable,
                        src.span(p.range.clone()),
                        message,
                        "not defined here",
                    )
                    .help(help),
                );
            }
            return Val::of(Ty::Scalar, false);
        }
        let explicit_this = raw == "this"
            || raw == "."
            || raw.starts_with("this.")
            || raw.starts_with("this/")
            || raw.starts_with("./");
        let segs: Vec<String> = split_path(raw)
            .into_iter()
            .filter(|s| s != "this")
            .collect();
        let mut i = 0;
        let mut from_root = scope.this.ty == Ty::Root;
        let mut cur = if segs.first().map(String::as_str) == Some("@root") {
            i = 1;
            from_root = true;
            Val::of(Ty::Root, false)
        } else {
            let mut ups = 0;
            while segs.get(i).map(String::as_str) == Some("..") {
                ups += 1;
                i += 1;
            }
            if ups > 0 {
                let v = scope
                    .parents
                    .len()
                    .checked_sub(ups)
                    .and_then(|k| scope.parents.get(k))
                    .cloned()
                    .unwrap_or_else(|| Val::of(Ty::Root, false));
                from_root = v.ty == Ty::Root;
                v
            } else if let (false, Some(local)) = (
                explicit_this,
                segs.first()
                    .and_then(|s| scope.locals.iter().rev().find(|(n, _)| n == s)),
            ) {
                i = 1;
                from_root = false;
                local.1.clone()
            } else {
                scope.this.clone()
            }
        };
        let mut walked: Vec<&str> = Vec::new();
        for seg in &segs[i..] {
            match self.lookup(&cur, seg) {
                Some(next) => {
                    let field = if cur.ty == Ty::Root {
                        next.field.clone()
                    } else {
                        None
                    };
                    cur = Val { field, ..next };
                    walked.push(seg);
                }
                None => {
                    let problem = self.unknown(p, src, &cur, seg, &walked, from_root, scope);
                    self.report(problem);
                    return Val::of(Ty::Any, cur.contact);
                }
            }
        }
        if cur.ty == Ty::Root {
            self.out.reads_root = true;
        }
        if let Some(f) = &cur.field
            && !quiet
            && !scope.guards.contains(f)
            && self.env.model.field(f).is_some_and(|fi| fi.optional)
        {
            self.report(
                TemplateProblem::new(
                    ProblemKind::OptionalWithoutDefault,
                    src.span(p.range.clone()),
                    format!("optional field `{f}` is used without a default"),
                    "may be absent",
                )
                .help(format!(
                    "write `{{{{default {f} \"…\"}}}}`, or wrap it in `{{{{#if {f}}}}} … {{{{/if}}}}`"
                )),
            );
        }
        cur
    }

    #[allow(clippy::too_many_arguments)]
    fn unknown(
        &self,
        p: &PathRef,
        src: &Source,
        cur: &Val,
        seg: &str,
        walked: &[&str],
        from_root: bool,
        scope: &Scope,
    ) -> TemplateProblem {
        let span = src.span(p.range.clone());
        let template = self.env.template.map(|t| t.name.as_str()).unwrap_or("");
        let prefix = walked.join(".");
        let root_names = || -> Vec<&str> {
            self.env
                .model
                .fields
                .iter()
                .map(|f| f.name.as_str())
                .chain(BUILTIN_VARIABLES.iter().copied())
                .collect()
        };
        match &cur.ty {
            Ty::Root => {
                let names = root_names();
                TemplateProblem::new(
                    ProblemKind::UnknownVariable,
                    span,
                    format!("unknown variable `{seg}`"),
                    "not a contact field or template variable",
                )
                .help_opt(suggest(seg, names.iter().copied(), || {
                    Some("the variables are the contact fields, `id`, `tags`, `lists`, `links.NAME`, `unsubscribe_url`, `preferences_url`, `workspace.name`, `workspace.address`, `workspace.from` and `trigger.FIELD`".into())
                }))
            }
            Ty::Links => {
                let links: Vec<&str> = self
                    .env
                    .template
                    .map(|t| t.links.iter().map(|(n, _)| n.as_str()).collect())
                    .unwrap_or_default();
                TemplateProblem::new(
                    ProblemKind::UnknownVariable,
                    span,
                    format!("template `{template}` has no link `{seg}`"),
                    "unknown link",
                )
                .help_opt(suggest(seg, links.iter().copied(), || {
                    Some(format!(
                        "declare it in template `{template}`: `link {seg} = \"https://…\"`"
                    ))
                }))
            }
            Ty::Workspace => TemplateProblem::new(
                ProblemKind::UnknownVariable,
                span,
                format!("unknown variable `workspace.{seg}`"),
                "not a workspace setting",
            )
            .help_opt(suggest(seg, WORKSPACE_VARIABLES.iter().copied(), || {
                Some("the workspace variables are `workspace.name`, `workspace.address`, `workspace.from` and `workspace.timezone`".into())
            })),
            Ty::Trigger => {
                let trigger = self.env.template.map(|t| &t.trigger);
                let available: Vec<&str> = trigger.map(|t| t.names().collect()).unwrap_or_default();
                match trigger {
                    Some(TriggerFields::Sent { scenarios, .. }) => {
                        let list = scenarios
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let help = if available.is_empty() {
                            format!(
                                "`{template}` is sent by {list}, not every one of which is triggered by an event: use contact fields instead"
                            )
                        } else {
                            suggest(seg, available.iter().copied(), || None).unwrap_or_else(|| {
                                format!(
                                    "`{template}` is sent by {list}; the trigger fields every one of them has are: {}",
                                    available.join(", ")
                                )
                            })
                        };
                        TemplateProblem::new(
                            ProblemKind::UnknownVariable,
                            span,
                            format!(
                                "`trigger.{seg}` is not a field of every event that triggers a scenario sending `{template}`"
                            ),
                            "not available here",
                        )
                        .help(help)
                    }
                    _ => TemplateProblem::new(
                        ProblemKind::UnknownVariable,
                        span,
                        format!("no event has a field `{seg}`"),
                        "unknown trigger field",
                    )
                    .help_opt(suggest(seg, available.iter().copied(), || {
                        Some("`trigger.FIELD` reads a field of the event that triggered the scenario".into())
                    })),
                }
            }
            Ty::Scalar | Ty::List(_) | Ty::Any if walked.is_empty() && !from_root => {
                let is_root_name = self.root_lookup(seg).is_some();
                let (where_, label) = if scope.each {
                    ("inside this `{{#each}}`", "the loop's item has no such field")
                } else {
                    ("here", "not a field of the current context")
                };
                let help = if is_root_name {
                    format!(
                        "the block changes `this`; write `@root.{seg}` for the contact's `{seg}`"
                    )
                } else {
                    "write `this` for the current item, or `@root.NAME` for a contact field".to_string()
                };
                TemplateProblem::new(
                    ProblemKind::UnknownVariable,
                    span,
                    format!("`{seg}` is not defined {where_}"),
                    label,
                )
                .help(help)
            }
            Ty::List(_) if seg == "length" => TemplateProblem::new(
                ProblemKind::UnknownVariable,
                span,
                format!("`{prefix}.length` is not available: `{prefix}` is a list"),
                "use the `len` helper",
            )
            .help(format!(
                "write `{{{{len {prefix}}}}}` for the number of items (relance's `len` helper), or `{{{{#if {prefix}}}}}` to test that it is not empty"
            )),
            Ty::List(_) => TemplateProblem::new(
                ProblemKind::UnknownVariable,
                span,
                format!("`{prefix}` is a list and has no field `{seg}`"),
                "not a field",
            )
            .help(format!(
                "loop over it with `{{{{#each {prefix}}}}}{{{{this}}}}{{{{/each}}}}`"
            )),
            _ => TemplateProblem::new(
                ProblemKind::UnknownVariable,
                span,
                format!("`{prefix}` is a single value and has no field `{seg}`"),
                "not a field",
            )
            .help(format!("write `{{{{{prefix}}}}}`")),
        }
    }
}

/// Splits a Handlebars path into segments: `a.b`, `a/b`, `../a`, `a.[b c]`.
fn split_path(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '.' if cur.is_empty() && chars.peek() == Some(&'.') => {
                chars.next();
                out.push("..".to_string());
            }
            '.' | '/' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The static partial graph: partial name → (called partial, range in the
/// caller) for every `{{> name}}` written in it.
fn partial_calls(nodes: &[Node], out: &mut Vec<(String, std::ops::Range<usize>)>) {
    for n in nodes {
        match n {
            Node::Partial { target, block, .. } => {
                if let PartialTarget::Name(name, r) = target {
                    out.push((name.clone(), r.clone()));
                }
                if let Some(b) = block {
                    partial_calls(b, out);
                }
            }
            Node::Block { body, arms, .. } => {
                partial_calls(body, out);
                for a in arms {
                    partial_calls(&a.body, out);
                }
            }
            Node::Inline { body, .. } => partial_calls(body, out),
            _ => {}
        }
    }
}

/// Finds cycles among partial files, reports each once (at the call that
/// closes it, starting from the alphabetically first partial), and returns
/// the partials that are part of a cycle.
pub(crate) fn partial_cycles(
    partials: &BTreeMap<String, std::sync::Arc<Unit>>,
    problems: &mut Vec<TemplateProblem>,
) -> BTreeSet<String> {
    let graph: BTreeMap<&str, Vec<(String, std::ops::Range<usize>)>> = partials
        .iter()
        .map(|(name, unit)| {
            let mut calls = Vec::new();
            partial_calls(&unit.parsed.nodes, &mut calls);
            calls.retain(|(n, _)| partials.contains_key(n));
            (name.as_str(), calls)
        })
        .collect();
    let mut cyclic = BTreeSet::new();
    let mut reported = BTreeSet::new();
    // Iterative DFS from every partial; paths are bounded by the number of
    // partials, so the stack stays small.
    for start in graph.keys() {
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        let mut on_path: BTreeSet<&str> = [*start].into_iter().collect();
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while let Some(&(node, next)) = path.last() {
            let calls = graph.get(node).map(Vec::as_slice).unwrap_or(&[]);
            let Some((callee, range)) = calls.get(next) else {
                on_path.remove(node);
                done.insert(node);
                path.pop();
                continue;
            };
            if let Some(top) = path.last_mut() {
                top.1 += 1;
            }
            let callee = callee.as_str();
            if on_path.contains(callee) {
                let from = path.iter().position(|(n, _)| *n == callee).unwrap_or(0);
                let members: Vec<&str> = path[from..].iter().map(|(n, _)| *n).collect();
                for m in &members {
                    cyclic.insert(m.to_string());
                }
                // Canonical form: rotated to start at the smallest name.
                let min = members
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, n)| **n)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                let mut rotated: Vec<&str> = members[min..].to_vec();
                rotated.extend_from_slice(&members[..min]);
                if !reported.insert(rotated.clone()) {
                    continue;
                }
                // Report at the call that closes the canonical cycle: from
                // the last member back to the first.
                let last = rotated.last().copied().unwrap_or(node);
                let first = rotated.first().copied().unwrap_or(callee);
                let closing = graph
                    .get(last)
                    .and_then(|c| c.iter().find(|(n, _)| n == first))
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| range.clone());
                let Some(unit) = partials.get(last) else {
                    continue;
                };
                let mut shown = rotated.clone();
                shown.push(first);
                let message = if rotated.len() == 1 {
                    format!("partial `{first}` includes itself")
                } else {
                    format!("partials include each other: {}", shown.join(" → "))
                };
                problems.push(
                    TemplateProblem::new(
                        ProblemKind::PartialCycle,
                        unit.source.span(closing),
                        message,
                        format!("`{last}` includes `{first}` here"),
                    )
                    .help("a partial cannot include itself, directly or through others: remove one of these `{{> …}}`"),
                );
                continue;
            }
            if done.contains(callee) {
                continue;
            }
            on_path.insert(callee);
            path.push((callee, 0));
        }
    }
    cyclic
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split() {
        assert_eq!(split_path("a.b/c"), ["a", "b", "c"]);
        assert_eq!(split_path("../../x"), ["..", "..", "x"]);
        assert_eq!(split_path("@root.x"), ["@root", "x"]);
        assert_eq!(split_path("a.[b c]"), ["a", "b c"]);
        assert_eq!(split_path("this"), ["this"]);
        assert_eq!(split_path("./x"), ["x"]);
    }

    /// What `check` finds a body reads of the context's root.
    fn reads(body: &str, partial: Option<&str>) -> (Vec<String>, bool) {
        let mut model = Model::default();
        for (name, ty) in [
            ("first_name", Type::Text),
            ("company", Type::Text),
            ("vip", Type::Bool),
            ("items", Type::SetText),
        ] {
            model.fields.push(super::super::model::FieldInfo {
                name: name.into(),
                ty: Some(ty),
                optional: false,
            });
        }
        let mut problems = Vec::new();
        let unit = |text: &str, problems: &mut Vec<TemplateProblem>| {
            Unit::new(
                Source::file(crate::diagnostics::FileId(0), text.into()),
                problems,
            )
        };
        let mut partials = BTreeMap::new();
        if let Some(text) = partial {
            partials.insert(
                "footer".to_string(),
                std::sync::Arc::new(unit(text, &mut problems)),
            );
        }
        let env = Env {
            model: &model,
            template: None,
            partials: &partials,
        };
        let body = unit(body, &mut problems);
        let out = check(&env, &body, Mode::Plain, &mut problems);
        (out.roots.into_iter().collect(), out.reads_root)
    }

    #[test]
    fn the_names_a_body_reads_at_the_root_are_collected() {
        assert_eq!(
            reads("Hi {{first_name}}{{#if vip}}!{{/if}}", None),
            (vec!["first_name".into(), "vip".into()], false)
        );
        // Inside `each`, a bare name is the element's; `../` is the root's.
        assert_eq!(
            reads("{{#each items}}{{this}}{{../company}}{{/each}}", None),
            (vec!["company".into(), "items".into()], false)
        );
        // Through a partial.
        assert_eq!(
            reads("{{> footer}}", Some("{{company}}")),
            (vec!["company".into()], false)
        );
    }

    #[test]
    fn the_root_as_a_value_can_read_any_name() {
        for body in [
            "{{#with this}}{{first_name}}{{/with}}",
            "{{lookup @root \"company\"}}",
            "{{#each items}}{{lookup ../this \"vip\"}}{{/each}}",
            "{{> footer this}}",
        ] {
            assert!(reads(body, Some("{{company}}")).1, "{body}");
        }
    }
}

/// The offset of a `}}}` that closes a tag opened with two braces
/// (`{{n}}}`): the Rust crate renders it as the tag and a `}`, but
/// handlebars.js refuses the template, so relance refuses it too. Comments
/// and escaped `\{{` are skipped; one pass over the text.
fn stray_triple_close(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(k) = memchr::memmem::find(&b[i..], b"{{") {
        let open = i + k;
        if open > 0 && b[open - 1] == b'\\' {
            i = open + 2;
            continue;
        }
        let braces = b[open..].iter().take_while(|&&c| c == b'{').count();
        let inner = open + braces;
        let close: &[u8] = if braces == 2 && b[inner..].starts_with(b"!--") {
            b"--}}"
        } else if braces >= 3 {
            b"}}}"
        } else {
            b"}}"
        };
        let end = memchr::memmem::find(&b[inner..], close).map(|e| inner + e)?;
        if braces == 2
            && close == b"}}"
            && !b[inner..].starts_with(b"!")
            && b[end..].starts_with(b"}}}")
        {
            return Some(end);
        }
        i = end + close.len();
    }
    None
}

#[cfg(test)]
mod triple_close_tests {
    use super::stray_triple_close;

    #[test]
    fn a_tag_closed_by_three_braces_is_found() {
        assert_eq!(stray_triple_close("{\"n\": {{n}}}"), Some(9));
        assert_eq!(stray_triple_close("a {{#if x}}{{y}}}{{/if}}"), Some(14));
    }

    #[test]
    fn valid_forms_are_not() {
        for ok in [
            "{\"n\": {{n}} }",
            "{{{raw}}}",
            "{{{{raw}}}} x {{{{/raw}}}}",
            "{{!-- }}} --}}",
            "{{! }}}",
            "\\{{n}}}",
            "{{n}}",
            "}}} {{",
            "",
        ] {
            assert_eq!(stray_triple_close(ok), None, "{ok}");
        }
    }
}
