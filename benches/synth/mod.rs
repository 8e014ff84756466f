//! A deterministic generator of large, valid, realistic relance projects.
//!
//! Shared by `benches/check.rs` (in memory) and `examples/synth.rs` (writes
//! the project to disk). The output depends only on the seed and the file
//! count: a tiny xorshift replaces a `rand` dependency.
//!
//! The project is one `schema.camp` (workspace, contact schema, shared
//! events, lists and segments, the pressure policy) plus one module file per
//! product line and index (`b2c/gps_0017.camp`, …). Each module declares,
//! with names suffixed by its index so that they are unique, a mix of every
//! construct: events, lists with `on join`, segments (field tests,
//! aggregates, engagement, references to other modules' segments), personas
//! with `expect` lines (and a few negative personas), templates of all five
//! channels with inline bodies, scenarios (branches, splits, waits, `wait
//! until`, every trigger kind), cadences started by scenarios, and comments.
//!
//! Declarations are first built as a small IR, then written either as
//! `.camp` text or as JSON (`serde_json::Value`) with the same content, for
//! the parser-versus-serde_json comparison.
//!
//! Validity rules the generator follows (so that `relance check` reports
//! nothing, today and as the checker grows towards the spec): every
//! marketing scenario's audience starts with `marketable` (negative personas
//! are never marketable); engagement predicates in a scenario only name
//! templates sent earlier on the same path; no scenario path sends more than
//! the pressure caps allow within their windows; marketing emails contain
//! `{{unsubscribe_url}}`; optional fields in templates are guarded by
//! `default` or `{{#if}}`; SMS bodies stay under 160 characters; every
//! persona `expect` holds by construction; segments only reference segments
//! of the same module or of earlier modules (no cycles).

// The bench and the example each use part of this module; the IR is built
// once per run, so variant sizes do not matter.
#![allow(dead_code, clippy::large_enum_variant)]

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value, json};

/// The seed and size the bench and the example use by default.
pub const DEFAULT_SEED: u64 = 42;
pub const DEFAULT_FILES: usize = 1000;

// ---------------------------------------------------------------- rng

/// xorshift64: small, fast, good enough to vary synthetic content.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(z | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------- IR

#[derive(Clone, Debug)]
pub enum Term {
    Ago(String),
    Now,
    Ts(String),
    Date(String),
    Num(String),
    Str(String),
    Bool(bool),
    Name(String),
}

#[derive(Clone, Debug)]
pub enum Expr {
    /// An expression of LANGUAGE.md §12 written as is (`trial_ends_at - 3d <= now`).
    Raw(String),
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Term, &'static str, Term),
    In(Term, bool, Vec<Term>),
    Contains(Term, Term),
    IsSet(Term, bool),
    Name(String),
    /// `kind(any | T | T.link [since TERM])`
    Eng {
        kind: &'static str,
        target: Option<(String, Option<String>)>,
        since: Option<Term>,
    },
    /// `func(EVENT[.FIELD] [where EXPR] [since TERM]) OP RHS`
    Agg {
        func: &'static str,
        event: String,
        field: Option<String>,
        filter: Option<Box<Expr>>,
        since: Option<Term>,
        op: &'static str,
        rhs: Term,
    },
}

#[derive(Clone, Debug)]
pub enum Val {
    T(Term),
    List(Vec<Term>),
}

#[derive(Clone, Debug)]
pub enum Attr {
    Str(String),
    Word(String),
}

#[derive(Clone, Debug)]
pub enum Action {
    Join(String),
    Leave(String),
    Tag(String),
    Untag(String),
}

#[derive(Clone, Debug)]
pub enum Trigger {
    Joined(String),
    Event(String, Option<Expr>),
    Entered(String),
    Every(String, String),
    Once(String),
    /// A trigger of LANGUAGE.md §12 written as is (`yearly birthday 10:00`).
    Raw(String),
}

#[derive(Clone, Debug)]
pub enum Step {
    Comment(String),
    Send(String),
    Wait(String),
    WaitUntil(Expr, String),
    Branch(Vec<(Option<Expr>, Vec<Step>)>),
    Split(Vec<(u32, Vec<Step>)>),
    Join(String),
    Leave(String),
    Tag(String),
    Untag(String),
    Start(String),
    Exit,
    /// A step of LANGUAGE.md §12 written as is (`wait until signup_at + 30d`).
    Raw(String),
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub ty: String,
    pub optional: bool,
    pub comment: Option<String>,
}

#[derive(Clone, Debug)]
pub struct PEvent {
    pub name: String,
    pub values: Vec<(String, Val)>,
    pub at: Term,
}

#[derive(Clone, Debug)]
pub enum Decl {
    Workspace(Vec<(String, Attr)>),
    Contact(Vec<Field>),
    Event(String, Vec<Field>),
    List(String, Vec<Action>),
    Segment(String, Expr),
    Persona {
        negative: bool,
        name: String,
        values: Vec<(String, Val)>,
        events: Vec<PEvent>,
        expects: Vec<Expr>,
    },
    Template {
        name: String,
        channel: &'static str,
        attrs: Vec<(String, Attr)>,
        links: Vec<(String, String)>,
    },
    Scenario {
        name: String,
        audience: Option<Expr>,
        trigger: Trigger,
        reentry: Option<String>,
        exit_when: Option<Expr>,
        goal: Option<(String, String)>,
        /// Settings of LANGUAGE.md §12 written as is (a second trigger, a
        /// goal with a value), after `goal`.
        more: Vec<String>,
        steps: Vec<Step>,
    },
    Cadence {
        name: String,
        stop: Option<Expr>,
        spacing: Option<String>,
        /// `(template, after, comment, when)`
        touches: Vec<Touch>,
    },
    Pressure {
        caps: Vec<(String, u32, String)>,
        gap: String,
        quiet: (String, String),
        excess: String,
        under: (u32, String),
        /// More `quiet` rules of LANGUAGE.md §12 (`weekends`, `sms 20:00 to 10:00`).
        more_quiet: Vec<String>,
    },
    /// A declaration of LANGUAGE.md §12 written as is (`topic`, `consent`).
    Raw(String),
    /// `consent CHANNEL = EXPR` (v1.1)
    Consent(String, Expr),
}

/// A cadence touch: `(template, after, comment, when)`.
pub type Touch = (String, Option<String>, Option<String>, Option<Expr>);

#[derive(Clone, Debug)]
pub enum Item {
    /// A `//` comment block (camp only).
    Comment(Vec<String>),
    /// A declaration with its `///` doc lines.
    Decl(Vec<String>, Decl),
}

/// One generated file: its path relative to the project root and its items.
pub struct GenFile {
    pub path: String,
    pub items: Vec<Item>,
}

// ---------------------------------------------------------------- helpers

fn s(x: &str) -> Term {
    Term::Str(x.to_string())
}
fn nm(x: &str) -> Term {
    Term::Name(x.to_string())
}
fn num(x: impl ToString) -> Term {
    Term::Num(x.to_string())
}
fn ago(x: &str) -> Term {
    Term::Ago(x.to_string())
}
fn name(x: &str) -> Expr {
    Expr::Name(x.to_string())
}
fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}
fn cmp(l: Term, op: &'static str, r: Term) -> Expr {
    Expr::Cmp(l, op, r)
}
fn and(xs: Vec<Expr>) -> Expr {
    Expr::And(xs)
}
fn or(xs: Vec<Expr>) -> Expr {
    Expr::Or(xs)
}
fn eng(kind: &'static str, t: Option<(&str, Option<&str>)>, since: Option<Term>) -> Expr {
    Expr::Eng {
        kind,
        target: t.map(|(a, b)| (a.to_string(), b.map(str::to_string))),
        since,
    }
}
#[allow(clippy::too_many_arguments)]
fn agg(
    func: &'static str,
    event: &str,
    field: Option<&str>,
    filter: Option<Expr>,
    since: Option<Term>,
    op: &'static str,
    rhs: Term,
) -> Expr {
    Expr::Agg {
        func,
        event: event.to_string(),
        field: field.map(str::to_string),
        filter: filter.map(Box::new),
        since,
        op,
        rhs,
    }
}
fn field(n: &str, ty: &str, optional: bool, comment: Option<&str>) -> Field {
    Field {
        name: n.into(),
        ty: ty.into(),
        optional,
        comment: comment.map(str::to_string),
    }
}
fn attr_s(n: &str, v: impl Into<String>) -> (String, Attr) {
    (n.to_string(), Attr::Str(v.into()))
}
fn tv(n: &str, t: Term) -> (String, Val) {
    (n.to_string(), Val::T(t))
}

// ---------------------------------------------------------------- camp writer

fn quote(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn w_term(out: &mut String, t: &Term) {
    match t {
        Term::Ago(d) => {
            out.push_str(d);
            out.push_str(" ago");
        }
        Term::Now => out.push_str("now"),
        Term::Ts(x) | Term::Date(x) | Term::Num(x) | Term::Name(x) => out.push_str(x),
        Term::Str(x) => quote(out, x),
        Term::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
    }
}

fn w_terms(out: &mut String, ts: &[Term]) {
    out.push('[');
    for (i, t) in ts.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        w_term(out, t);
    }
    out.push(']');
}

/// Precedence: or = 1, and = 2, not/atom = 3.
fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Or(_) | Expr::Raw(_) => 1,
        Expr::And(_) => 2,
        _ => 3,
    }
}

fn w_expr(out: &mut String, e: &Expr) {
    w_expr_in(out, e, 0);
}

fn w_expr_in(out: &mut String, e: &Expr, min: u8) {
    let paren = prec(e) < min;
    if paren {
        out.push('(');
    }
    match e {
        Expr::Raw(x) => out.push_str(x),
        Expr::Or(xs) | Expr::And(xs) => {
            let (op, p) = if matches!(e, Expr::Or(_)) {
                (" or ", 1)
            } else {
                (" and ", 2)
            };
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push_str(op);
                }
                w_expr_in(out, x, p + 1);
            }
        }
        Expr::Not(x) => {
            out.push_str("not ");
            w_expr_in(out, x, 3);
        }
        Expr::Cmp(l, op, r) => {
            w_term(out, l);
            let _ = write!(out, " {op} ");
            w_term(out, r);
        }
        Expr::In(t, neg, items) => {
            w_term(out, t);
            out.push_str(if *neg { " not in " } else { " in " });
            w_terms(out, items);
        }
        Expr::Contains(l, r) => {
            w_term(out, l);
            out.push_str(" contains ");
            w_term(out, r);
        }
        Expr::IsSet(t, set) => {
            w_term(out, t);
            out.push_str(if *set { " is set" } else { " is not set" });
        }
        Expr::Name(n) => out.push_str(n),
        Expr::Eng {
            kind,
            target,
            since,
        } => {
            out.push_str(kind);
            out.push('(');
            match target {
                None => out.push_str("any"),
                Some((t, None)) => out.push_str(t),
                Some((t, Some(l))) => {
                    let _ = write!(out, "{t}.{l}");
                }
            }
            if let Some(since) = since {
                out.push_str(" since ");
                w_term(out, since);
            }
            out.push(')');
        }
        Expr::Agg {
            func,
            event,
            field,
            filter,
            since,
            op,
            rhs,
        } => {
            let _ = write!(out, "{func}({event}");
            if let Some(f) = field {
                let _ = write!(out, ".{f}");
            }
            if let Some(f) = filter {
                out.push_str(" where ");
                w_expr(out, f);
            }
            if let Some(since) = since {
                out.push_str(" since ");
                w_term(out, since);
            }
            let _ = write!(out, ") {op} ");
            w_term(out, rhs);
        }
    }
    if paren {
        out.push(')');
    }
}

/// An expression after `prefix` on one line, or wrapped after its top-level
/// `and`/`or` when the line would be long (as people write them).
fn w_expr_wrapped(out: &mut String, prefix_len: usize, e: &Expr, indent: &str) {
    let mut one = String::new();
    w_expr(&mut one, e);
    match e {
        Expr::Or(xs) | Expr::And(xs) if prefix_len + one.len() > 96 && xs.len() > 1 => {
            let op = if matches!(e, Expr::Or(_)) {
                "or"
            } else {
                "and"
            };
            let p = if op == "or" { 2 } else { 3 };
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    let _ = write!(out, " {op}\n{indent}");
                }
                w_expr_in(out, x, p);
            }
        }
        _ => out.push_str(&one),
    }
}

fn w_val(out: &mut String, v: &Val) {
    match v {
        Val::T(t) => w_term(out, t),
        Val::List(ts) => w_terms(out, ts),
    }
}

fn w_action(out: &mut String, a: &Action) {
    match a {
        Action::Join(l) => {
            let _ = write!(out, "join {l}");
        }
        Action::Leave(l) => {
            let _ = write!(out, "leave {l}");
        }
        Action::Tag(t) => {
            out.push_str("tag ");
            quote(out, t);
        }
        Action::Untag(t) => {
            out.push_str("untag ");
            quote(out, t);
        }
    }
}

fn is_simple(step: &Step) -> bool {
    !matches!(
        step,
        Step::Branch(_) | Step::Split(_) | Step::WaitUntil(..) | Step::Comment(_)
    )
}

fn w_steps(out: &mut String, steps: &[Step], depth: usize) {
    let ind = "  ".repeat(depth);
    for st in steps {
        out.push_str(&ind);
        w_step(out, st, depth);
        out.push('\n');
    }
}

/// A block `{ … }`: on one line with commas when short and flat.
fn w_block(out: &mut String, steps: &[Step], depth: usize) {
    if steps.len() <= 2 && steps.iter().all(is_simple) {
        out.push_str("{ ");
        for (i, st) in steps.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            w_step(out, st, depth);
        }
        out.push_str(" }");
    } else {
        out.push_str("{\n");
        w_steps(out, steps, depth + 1);
        out.push_str(&"  ".repeat(depth));
        out.push('}');
    }
}

fn w_step(out: &mut String, st: &Step, depth: usize) {
    match st {
        Step::Comment(c) => {
            let _ = write!(out, "// {c}");
        }
        Step::Send(t) => {
            let _ = write!(out, "send {t}");
        }
        Step::Wait(d) => {
            let _ = write!(out, "wait {d}");
        }
        Step::WaitUntil(e, d) => {
            out.push_str("wait until ");
            w_expr(out, e);
            let _ = write!(out, " for {d}");
        }
        Step::Branch(arms) => {
            out.push_str("branch {\n");
            let ind = "  ".repeat(depth + 1);
            for (cond, steps) in arms {
                out.push_str(&ind);
                match cond {
                    Some(c) => {
                        out.push_str("when ");
                        w_expr(out, c);
                        out.push(' ');
                    }
                    None => out.push_str("else "),
                }
                w_block(out, steps, depth + 1);
                out.push('\n');
            }
            out.push_str(&"  ".repeat(depth));
            out.push('}');
        }
        Step::Split(arms) => {
            out.push_str("split {\n");
            let ind = "  ".repeat(depth + 1);
            for (share, steps) in arms {
                let _ = write!(out, "{ind}{share}% ");
                w_block(out, steps, depth + 1);
                out.push('\n');
            }
            out.push_str(&"  ".repeat(depth));
            out.push('}');
        }
        Step::Join(l) => {
            let _ = write!(out, "join {l}");
        }
        Step::Leave(l) => {
            let _ = write!(out, "leave {l}");
        }
        Step::Tag(t) => {
            out.push_str("tag ");
            quote(out, t);
        }
        Step::Untag(t) => {
            out.push_str("untag ");
            quote(out, t);
        }
        Step::Start(c) => {
            let _ = write!(out, "start {c}");
        }
        Step::Exit => out.push_str("exit"),
        Step::Raw(x) => out.push_str(x),
    }
}

fn w_fields(out: &mut String, fields: &[Field], inline: bool) {
    if inline {
        out.push_str("{ ");
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(
                out,
                "{}: {}{}",
                f.name,
                f.ty,
                if f.optional { "?" } else { "" }
            );
        }
        out.push_str(" }");
        return;
    }
    let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0) + 1;
    out.push_str("{\n");
    for f in fields {
        let ty = format!("{}{}", f.ty, if f.optional { "?" } else { "" });
        let _ = write!(out, "  {:<width$} {}", format!("{}:", f.name), ty);
        if let Some(c) = &f.comment {
            let pad = 18usize.saturating_sub(ty.len());
            let _ = write!(out, "{:pad$} // {c}", "");
        }
        out.push('\n');
    }
    out.push('}');
}

fn w_decl(out: &mut String, d: &Decl) {
    match d {
        Decl::Workspace(attrs) => {
            out.push_str("workspace {\n");
            for (n, a) in attrs {
                let _ = write!(out, "  {n:<8} = ");
                w_attr(out, a);
                out.push('\n');
            }
            out.push('}');
        }
        Decl::Contact(fields) => {
            out.push_str("contact ");
            w_fields(out, fields, false);
        }
        Decl::Event(n, fields) => {
            let _ = write!(out, "event {n} ");
            w_fields(
                out,
                fields,
                fields.len() <= 2 && fields.iter().all(|f| f.comment.is_none()),
            );
        }
        Decl::List(n, actions) => {
            let _ = write!(out, "list {n}");
            if !actions.is_empty() {
                if actions.len() <= 2 {
                    out.push_str(" {\n  on join { ");
                    for (i, a) in actions.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        w_action(out, a);
                    }
                    out.push_str(" }\n}");
                } else {
                    out.push_str(" {\n  on join {\n");
                    for a in actions {
                        out.push_str("    ");
                        w_action(out, a);
                        out.push('\n');
                    }
                    out.push_str("  }\n}");
                }
            }
        }
        Decl::Segment(n, e) => {
            let prefix = format!("segment {n} = ");
            out.push_str(&prefix);
            w_expr_wrapped(out, prefix.len(), e, "  ");
        }
        Decl::Consent(c, e) => {
            let prefix = format!("consent {c} = ");
            out.push_str(&prefix);
            w_expr_wrapped(out, prefix.len(), e, "  ");
        }
        Decl::Persona {
            negative,
            name,
            values,
            events,
            expects,
        } => {
            if *negative {
                out.push_str("negative ");
            }
            let _ = writeln!(out, "persona {name} {{");
            let width = values.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (n, v) in values {
                let _ = write!(out, "  {n:<width$} = ");
                w_val(out, v);
                out.push('\n');
            }
            for ev in events {
                let _ = write!(out, "  event {} ", ev.name);
                if !ev.values.is_empty() {
                    out.push_str("{ ");
                    for (i, (n, v)) in ev.values.iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        let _ = write!(out, "{n} = ");
                        w_val(out, v);
                    }
                    out.push_str(" } ");
                }
                out.push_str("at ");
                w_term(out, &ev.at);
                out.push('\n');
            }
            for e in expects {
                out.push_str("  expect ");
                w_expr(out, e);
                out.push('\n');
            }
            out.push('}');
        }
        Decl::Template {
            name,
            channel,
            attrs,
            links,
        } => {
            let _ = write!(out, "template {name} : {channel} {{");
            let short = attrs.len() + links.len() <= 2
                && attrs.iter().all(|(_, a)| match a {
                    Attr::Str(x) => x.len() < 60,
                    Attr::Word(_) => true,
                });
            if short {
                out.push(' ');
                let mut first = true;
                for (n, a) in attrs {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    let _ = write!(out, "{n} = ");
                    w_attr(out, a);
                }
                for (n, u) in links {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    let _ = write!(out, "link {n} = ");
                    quote(out, u);
                }
                out.push_str(" }");
            } else {
                out.push('\n');
                let width = attrs
                    .iter()
                    .map(|(n, _)| n.len())
                    .chain(links.iter().map(|(n, _)| n.len() + 5))
                    .max()
                    .unwrap_or(0);
                for (n, a) in attrs {
                    let _ = write!(out, "  {n:<width$} = ");
                    w_attr(out, a);
                    out.push('\n');
                }
                for (n, u) in links {
                    let _ = write!(out, "  {:<width$} = ", format!("link {n}"));
                    quote(out, u);
                    out.push('\n');
                }
                out.push('}');
            }
        }
        Decl::Scenario {
            name,
            audience,
            trigger,
            reentry,
            exit_when,
            goal,
            more,
            steps,
        } => {
            let _ = writeln!(out, "scenario {name} {{");
            if let Some(a) = audience {
                out.push_str("  audience ");
                w_expr_wrapped(out, 11, a, "           ");
                out.push('\n');
            }
            out.push_str("  trigger  ");
            match trigger {
                Trigger::Joined(l) => {
                    let _ = write!(out, "joined {l}");
                }
                Trigger::Event(e, f) => {
                    let _ = write!(out, "event {e}");
                    if let Some(f) = f {
                        out.push_str(" where ");
                        w_expr(out, f);
                    }
                }
                Trigger::Entered(sg) => {
                    let _ = write!(out, "entered {sg}");
                }
                Trigger::Every(d, c) => {
                    let _ = write!(out, "every {d} {c}");
                }
                Trigger::Once(ts) => {
                    let _ = write!(out, "once at {ts}");
                }
                Trigger::Raw(x) => out.push_str(x),
            }
            out.push('\n');
            if let Some(r) = reentry {
                let _ = writeln!(out, "  reentry  {r}");
            }
            if let Some(e) = exit_when {
                out.push_str("  exit when ");
                w_expr(out, e);
                out.push('\n');
            }
            if let Some((e, d)) = goal {
                let _ = writeln!(out, "  goal     {e} within {d}");
            }
            for line in more {
                let _ = writeln!(out, "  {line}");
            }
            out.push('\n');
            w_steps(out, steps, 1);
            out.push('}');
        }
        Decl::Cadence {
            name,
            stop,
            spacing,
            touches,
        } => {
            let _ = writeln!(out, "cadence {name} {{");
            if let Some(e) = stop {
                out.push_str("  stop when ");
                w_expr(out, e);
                out.push('\n');
            }
            if let Some(sp) = spacing {
                let _ = writeln!(out, "  spacing = {sp}");
            }
            out.push('\n');
            for (t, after, comment, when) in touches {
                let mut line = format!("  touch {t}");
                if let Some(a) = after {
                    let _ = write!(line, " after {a}");
                }
                if let Some(w) = when {
                    line.push_str(" when ");
                    w_expr(&mut line, w);
                }
                if let Some(c) = comment {
                    let _ = write!(
                        line,
                        "{:pad$}// {c}",
                        "",
                        pad = 40usize.saturating_sub(line.len())
                    );
                }
                out.push_str(&line);
                out.push('\n');
            }
            out.push('}');
        }
        Decl::Pressure {
            caps,
            gap,
            quiet,
            excess,
            under,
            more_quiet,
        } => {
            out.push_str("pressure {\n");
            for (scope, n, w) in caps {
                let _ = writeln!(out, "  {scope:<5} max {n} per {w}");
            }
            let _ = writeln!(
                out,
                "  gap   {gap}                 // minimum time between two messages"
            );
            let _ = writeln!(
                out,
                "  quiet {} to {}      // contact-local",
                quiet.0, quiet.1
            );
            for q in more_quiet {
                let _ = writeln!(out, "  quiet {q}");
            }
            let _ = writeln!(out, "  on excess {excess}");
            let _ = writeln!(out, "  under below {} per {}", under.0, under.1);
            out.push('}');
        }
        Decl::Raw(x) => out.push_str(x),
    }
}

fn w_attr(out: &mut String, a: &Attr) {
    match a {
        Attr::Str(x) => quote(out, x),
        Attr::Word(w) => out.push_str(w),
    }
}

impl GenFile {
    /// The file as `.camp` source text.
    pub fn camp(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            match item {
                Item::Comment(lines) => {
                    for l in lines {
                        if l.is_empty() {
                            out.push_str("//\n");
                        } else {
                            let _ = writeln!(out, "// {l}");
                        }
                    }
                }
                Item::Decl(doc, d) => {
                    for l in doc {
                        let _ = writeln!(out, "/// {l}");
                    }
                    w_decl(&mut out, d);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// The same declarations as a JSON array of objects.
    pub fn json(&self) -> Value {
        Value::Array(
            self.items
                .iter()
                .filter_map(|it| match it {
                    Item::Decl(doc, d) => Some(j_decl(doc, d)),
                    Item::Comment(_) => None,
                })
                .collect(),
        )
    }
}

// ---------------------------------------------------------------- JSON writer

fn j_term(t: &Term) -> Value {
    match t {
        Term::Ago(d) => json!({ "ago": d }),
        Term::Now => json!({ "now": true }),
        Term::Ts(x) => json!({ "timestamp": x }),
        Term::Date(x) => json!({ "date": x }),
        Term::Num(x) => x
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(|n| {
                if x.contains('.') {
                    Value::Number(n)
                } else {
                    json!(x.parse::<i64>().unwrap_or_default())
                }
            })
            .unwrap_or(Value::Null),
        Term::Str(x) => Value::String(x.clone()),
        Term::Bool(b) => Value::Bool(*b),
        Term::Name(n) => json!({ "ref": n }),
    }
}

fn j_expr(e: &Expr) -> Value {
    match e {
        Expr::Raw(x) => json!({ "raw": x }),
        Expr::Or(xs) => json!({ "or": xs.iter().map(j_expr).collect::<Vec<_>>() }),
        Expr::And(xs) => json!({ "and": xs.iter().map(j_expr).collect::<Vec<_>>() }),
        Expr::Not(x) => json!({ "not": j_expr(x) }),
        Expr::Cmp(l, op, r) => json!({ "cmp": op, "left": j_term(l), "right": j_term(r) }),
        Expr::In(t, neg, items) => json!({
            "in": items.iter().map(j_term).collect::<Vec<_>>(),
            "term": j_term(t),
            "negated": neg,
        }),
        Expr::Contains(l, r) => json!({ "contains": j_term(r), "term": j_term(l) }),
        Expr::IsSet(t, set) => json!({ "is_set": set, "term": j_term(t) }),
        Expr::Name(n) => json!({ "ref": n }),
        Expr::Eng {
            kind,
            target,
            since,
        } => {
            let mut m = Map::new();
            m.insert("engagement".into(), json!(kind));
            match target {
                None => m.insert("template".into(), json!("any")),
                Some((t, l)) => {
                    if let Some(l) = l {
                        m.insert("link".into(), json!(l));
                    }
                    m.insert("template".into(), json!(t))
                }
            };
            if let Some(sn) = since {
                m.insert("since".into(), j_term(sn));
            }
            Value::Object(m)
        }
        Expr::Agg {
            func,
            event,
            field,
            filter,
            since,
            op,
            rhs,
        } => {
            let mut m = Map::new();
            m.insert("aggregate".into(), json!(func));
            m.insert("event".into(), json!(event));
            if let Some(f) = field {
                m.insert("field".into(), json!(f));
            }
            if let Some(f) = filter {
                m.insert("where".into(), j_expr(f));
            }
            if let Some(sn) = since {
                m.insert("since".into(), j_term(sn));
            }
            m.insert("cmp".into(), json!(op));
            m.insert("value".into(), j_term(rhs));
            Value::Object(m)
        }
    }
}

fn j_val(v: &Val) -> Value {
    match v {
        Val::T(t) => j_term(t),
        Val::List(ts) => Value::Array(ts.iter().map(j_term).collect()),
    }
}

fn j_steps(steps: &[Step]) -> Value {
    Value::Array(
        steps
            .iter()
            .filter_map(|st| {
                Some(match st {
                    Step::Comment(_) => return None,
                    Step::Send(t) => json!({ "send": t }),
                    Step::Wait(d) => json!({ "wait": d }),
                    Step::WaitUntil(e, d) => json!({ "wait_until": j_expr(e), "for": d }),
                    Step::Branch(arms) => json!({
                        "branch": arms.iter().map(|(c, s)| match c {
                            Some(c) => json!({ "when": j_expr(c), "steps": j_steps(s) }),
                            None => json!({ "else": true, "steps": j_steps(s) }),
                        }).collect::<Vec<_>>()
                    }),
                    Step::Split(arms) => json!({
                        "split": arms.iter().map(|(p, s)| json!({ "share": p, "steps": j_steps(s) })).collect::<Vec<_>>()
                    }),
                    Step::Join(l) => json!({ "join": l }),
                    Step::Leave(l) => json!({ "leave": l }),
                    Step::Tag(t) => json!({ "tag": t }),
                    Step::Untag(t) => json!({ "untag": t }),
                    Step::Start(c) => json!({ "start": c }),
                    Step::Exit => json!({ "exit": true }),
                    Step::Raw(x) => json!({ "raw": x }),
                })
            })
            .collect(),
    )
}

fn j_fields(fields: &[Field]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|f| json!({ "name": f.name, "type": f.ty, "optional": f.optional }))
            .collect(),
    )
}

fn j_attrs(attrs: &[(String, Attr)]) -> Map<String, Value> {
    attrs
        .iter()
        .map(|(n, a)| {
            (
                n.clone(),
                match a {
                    Attr::Str(x) | Attr::Word(x) => json!(x),
                },
            )
        })
        .collect()
}

fn j_decl(doc: &[String], d: &Decl) -> Value {
    let mut m = Map::new();
    if !doc.is_empty() {
        m.insert("doc".into(), json!(doc.join("\n")));
    }
    match d {
        Decl::Workspace(attrs) => {
            m.insert("kind".into(), json!("workspace"));
            m.extend(j_attrs(attrs));
        }
        Decl::Contact(fields) => {
            m.insert("kind".into(), json!("contact"));
            m.insert("fields".into(), j_fields(fields));
        }
        Decl::Event(n, fields) => {
            m.insert("kind".into(), json!("event"));
            m.insert("name".into(), json!(n));
            m.insert("fields".into(), j_fields(fields));
        }
        Decl::List(n, actions) => {
            m.insert("kind".into(), json!("list"));
            m.insert("name".into(), json!(n));
            let acts: Vec<Value> = actions
                .iter()
                .map(|a| match a {
                    Action::Join(l) => json!({ "join": l }),
                    Action::Leave(l) => json!({ "leave": l }),
                    Action::Tag(t) => json!({ "tag": t }),
                    Action::Untag(t) => json!({ "untag": t }),
                })
                .collect();
            if !acts.is_empty() {
                m.insert("on_join".into(), Value::Array(acts));
            }
        }
        Decl::Segment(n, e) => {
            m.insert("kind".into(), json!("segment"));
            m.insert("name".into(), json!(n));
            m.insert("expr".into(), j_expr(e));
        }
        Decl::Consent(c, e) => {
            m.insert("kind".into(), json!("consent"));
            m.insert("channel".into(), json!(c));
            m.insert("expr".into(), j_expr(e));
        }
        Decl::Persona {
            negative,
            name,
            values,
            events,
            expects,
        } => {
            m.insert("kind".into(), json!("persona"));
            m.insert("name".into(), json!(name));
            m.insert("negative".into(), json!(negative));
            let vals: Map<String, Value> =
                values.iter().map(|(n, v)| (n.clone(), j_val(v))).collect();
            m.insert("values".into(), Value::Object(vals));
            m.insert(
                "events".into(),
                Value::Array(
                    events
                        .iter()
                        .map(|e| {
                            let vals: Map<String, Value> = e
                                .values
                                .iter()
                                .map(|(n, v)| (n.clone(), j_val(v)))
                                .collect();
                            json!({ "event": e.name, "values": vals, "at": j_term(&e.at) })
                        })
                        .collect(),
                ),
            );
            m.insert(
                "expect".into(),
                Value::Array(expects.iter().map(j_expr).collect()),
            );
        }
        Decl::Template {
            name,
            channel,
            attrs,
            links,
        } => {
            m.insert("kind".into(), json!("template"));
            m.insert("name".into(), json!(name));
            m.insert("channel".into(), json!(channel));
            m.extend(j_attrs(attrs));
            if !links.is_empty() {
                let l: Map<String, Value> =
                    links.iter().map(|(n, u)| (n.clone(), json!(u))).collect();
                m.insert("links".into(), Value::Object(l));
            }
        }
        Decl::Scenario {
            name,
            audience,
            trigger,
            reentry,
            exit_when,
            goal,
            more,
            steps,
        } => {
            m.insert("kind".into(), json!("scenario"));
            m.insert("name".into(), json!(name));
            if let Some(a) = audience {
                m.insert("audience".into(), j_expr(a));
            }
            let t = match trigger {
                Trigger::Joined(l) => json!({ "joined": l }),
                Trigger::Event(e, f) => match f {
                    Some(f) => json!({ "event": e, "where": j_expr(f) }),
                    None => json!({ "event": e }),
                },
                Trigger::Entered(sg) => json!({ "entered": sg }),
                Trigger::Every(d, c) => json!({ "every": d, "at": c }),
                Trigger::Once(ts) => json!({ "once": ts }),
                Trigger::Raw(x) => json!({ "raw": x }),
            };
            m.insert("trigger".into(), t);
            if let Some(r) = reentry {
                m.insert("reentry".into(), json!(r));
            }
            if let Some(e) = exit_when {
                m.insert("exit_when".into(), j_expr(e));
            }
            if let Some((e, d)) = goal {
                m.insert("goal".into(), json!({ "event": e, "within": d }));
            }
            if !more.is_empty() {
                m.insert("more".into(), json!(more));
            }
            m.insert("steps".into(), j_steps(steps));
        }
        Decl::Cadence {
            name,
            stop,
            spacing,
            touches,
        } => {
            m.insert("kind".into(), json!("cadence"));
            m.insert("name".into(), json!(name));
            if let Some(e) = stop {
                m.insert("stop_when".into(), j_expr(e));
            }
            if let Some(sp) = spacing {
                m.insert("spacing".into(), json!(sp));
            }
            m.insert(
                "touches".into(),
                Value::Array(
                    touches
                        .iter()
                        .map(|(t, a, _, w)| {
                            let mut o = Map::new();
                            o.insert("template".into(), json!(t));
                            if let Some(a) = a {
                                o.insert("after".into(), json!(a));
                            }
                            if let Some(w) = w {
                                o.insert("when".into(), j_expr(w));
                            }
                            Value::Object(o)
                        })
                        .collect(),
                ),
            );
        }
        Decl::Pressure {
            caps,
            gap,
            quiet,
            excess,
            under,
            more_quiet,
        } => {
            m.insert("kind".into(), json!("pressure"));
            m.insert(
                "caps".into(),
                Value::Array(
                    caps.iter()
                        .map(|(sc, n, w)| json!({ "scope": sc, "max": n, "per": w }))
                        .collect(),
                ),
            );
            m.insert("gap".into(), json!(gap));
            m.insert("quiet".into(), json!({ "from": quiet.0, "to": quiet.1 }));
            if !more_quiet.is_empty() {
                m.insert("more_quiet".into(), json!(more_quiet));
            }
            m.insert("on_excess".into(), json!(excess));
            m.insert(
                "under_below".into(),
                json!({ "max": under.0, "per": under.1 }),
            );
        }
        Decl::Raw(x) => {
            m.insert("raw".into(), json!(x));
        }
    }
    Value::Object(m)
}

// ---------------------------------------------------------------- content

const THEMES: &[(&str, &str)] = &[
    ("gps", "GPS and navigation"),
    ("dashcam", "dash cameras"),
    ("seat", "child car seats"),
    ("tire", "tyres and wheels"),
    ("oil", "engine oil and fluids"),
    ("brake", "brake pads and discs"),
    ("wiper", "wiper blades"),
    ("battery", "batteries and chargers"),
    ("light", "bulbs and lighting"),
    ("audio", "car audio"),
    ("roofbox", "roof boxes"),
    ("charger", "EV charging cables"),
    ("tool", "garage tools"),
    ("cleaning", "cleaning products"),
    ("mat", "floor mats"),
    ("cover", "seat covers"),
    ("alarm", "alarms and immobilisers"),
    ("tracker", "fleet trackers"),
    ("camera", "reversing cameras"),
    ("rack", "bike racks"),
];

const AREAS: &[&str] = &[
    "b2c",
    "b2b",
    "lifecycle",
    "seasonal",
    "retention",
    "acquisition",
    "fleet",
    "stores",
];

const FIRST: &[&str] = &[
    "Marie", "Sophie", "Karim", "Jeanne", "Lucas", "Chloe", "Hugo", "Ines", "Paul", "Lea", "Nadia",
    "Louis", "Emma", "Yanis", "Camille", "Julien",
];
const LAST: &[&str] = &[
    "Girard", "Morel", "Benali", "Roux", "Martin", "Bernard", "Petit", "Durand", "Leroy", "Moreau",
    "Simon", "Laurent", "Michel", "Garcia", "Fournier", "Lambert",
];
const CITIES: &[&str] = &[
    "Lyon",
    "Villeurbanne",
    "Bron",
    "Venissieux",
    "Grenoble",
    "Saint-Etienne",
    "Annecy",
    "Macon",
    "Vienne",
    "Bourg-en-Bresse",
];
const WEEKDAYS: &[&str] = &["monday", "tuesday", "wednesday", "thursday", "friday"];

/// Generates the whole project: `schema.camp` and `files - 1` modules.
pub fn generate(seed: u64, files: usize) -> Vec<GenFile> {
    let mut out = Vec::with_capacity(files);
    out.push(schema_file());
    for i in 1..files {
        out.push(module_file(seed, i));
    }
    out
}

/// Writes the project below `dir` (created if needed). Returns the number
/// of bytes and lines written.
pub fn write_project(dir: &Path, files: &[GenFile]) -> std::io::Result<(usize, usize)> {
    let mut bytes = 0;
    let mut lines = 0;
    for f in files {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = f.camp();
        bytes += text.len();
        lines += text.lines().count();
        std::fs::write(path, text)?;
    }
    Ok((bytes, lines))
}

fn schema_file() -> GenFile {
    let mut items = vec![Item::Comment(vec![
        "Synthetic project generated by benches/synth (see docs/performance.md).".into(),
        "This file holds the contact schema, the workspace, the shared events,".into(),
        "lists and segments, and the marketing-pressure policy.".into(),
    ])];
    items.push(Item::Decl(
        vec!["Autoparts Lyon, car accessories for drivers, garages and fleets.".into()],
        Decl::Workspace(vec![
            attr_s("name", "Autoparts Lyon"),
            attr_s("timezone", "Europe/Paris"),
            attr_s("from", "Autoparts Lyon <hello@autoparts-lyon.example>"),
            attr_s(
                "address",
                "Autoparts Lyon SARL, 48 avenue Felix Faure, 69003 Lyon, France",
            ),
            ("locales".into(), Attr::Word("[fr, en]".into())),
            ("locale".into(), Attr::Word("lang".into())),
        ]),
    ));
    items.push(Item::Decl(
        vec!["One record per person: a private driver, a garage owner or a fleet manager.".into()],
        Decl::Contact(vec![
            field(
                "email",
                "email",
                false,
                Some("address of every email template"),
            ),
            field(
                "phone",
                "phone",
                true,
                Some("address of every sms template"),
            ),
            field(
                "device_token",
                "device",
                true,
                Some("push token of the mobile app"),
            ),
            field("first_name", "text", true, None),
            field("last_name", "text", true, None),
            field("company", "text", true, Some("garages and fleets only")),
            field("city", "text", true, None),
            field("country", "text", false, Some("ISO 3166 code")),
            field(
                "customer_type",
                "enum(individual, garage, fleet)",
                false,
                None,
            ),
            field(
                "plan",
                "enum(free, pro, team)",
                false,
                Some("loyalty programme level"),
            ),
            field("signup_at", "timestamp", false, None),
            field("ct_due_on", "date", true, Some("next roadworthiness test")),
            field("ltv", "number", false, Some("lifetime value, euros")),
            field("vehicles", "number", true, Some("fleet size, B2B contacts")),
            field("has_kids", "bool", true, Some("survey answer")),
            field("sms_opt_in", "bool", false, None),
            field("interests", "set<text>", false, Some("declared interests")),
            field(
                "tz",
                "timezone",
                true,
                Some("set when the contact lives abroad"),
            ),
            field(
                "lang",
                "enum(fr, en)",
                true,
                Some("language of the messages"),
            ),
            field("birthday", "date", true, None),
            field(
                "trial_ends_at",
                "timestamp",
                true,
                Some("pro trial accounts"),
            ),
            field("email_opt_out", "bool", true, None),
            field("owner_name", "text", true, Some("the account manager, B2B")),
            field(
                "owner_address",
                "text",
                true,
                Some("the account manager's email"),
            ),
        ]),
    ));
    items.push(Item::Decl(
        vec!["Subscription topics: a contact may stop one and keep the others.".into()],
        Decl::Raw("topic offers \"Offers and discounts\"".into()),
    ));
    items.push(Item::Decl(
        vec![],
        Decl::Raw("topic guides \"Buyer's guides and workshop tips\"".into()),
    ));
    items.push(Item::Decl(
        vec![],
        Decl::Raw("topic news   \"The weekly newsletter\"".into()),
    ));
    items.push(Item::Decl(
        vec!["Email is allowed unless refused.".into()],
        Decl::Raw("consent email = email_opt_out is not set or email_opt_out == false".into()),
    ));
    items.push(Item::Decl(
        vec!["An order paid on the site or in a shop. Refunds are negative amounts.".into()],
        Decl::Event(
            "purchase".into(),
            vec![
                field("amount", "number", false, None),
                field("sku", "text", false, None),
                field("category", "text", false, Some("the product line")),
            ],
        ),
    ));
    items.push(Item::Decl(
        vec!["A page seen on the site.".into()],
        Decl::Event("page_view".into(), vec![field("path", "text", false, None)]),
    ));
    items.push(Item::Decl(
        vec!["The contact form, the call-back button or a quote request.".into()],
        Decl::Event(
            "contact_request".into(),
            vec![
                field("subject", "text", false, None),
                field("vehicles", "number", false, None),
            ],
        ),
    ));
    let lists: Vec<(&str, &str, Vec<Action>)> = vec![
        (
            "prospects",
            "Everyone who left an address without ordering yet.",
            vec![Action::Tag("prospect".into())],
        ),
        (
            "customers",
            "Joining customers takes the contact out of prospects.",
            vec![
                Action::Leave("prospects".into()),
                Action::Untag("prospect".into()),
                Action::Tag("client".into()),
            ],
        ),
        (
            "newsletter",
            "Newsletter subscribers (double opt-in).",
            vec![],
        ),
        (
            "competitors",
            "Known competitors' addresses: never marketed to.",
            vec![
                Action::Leave("newsletter".into()),
                Action::Leave("prospects".into()),
                Action::Tag("concurrent".into()),
            ],
        ),
    ];
    for (n, doc, acts) in lists {
        items.push(Item::Decl(vec![doc.into()], Decl::List(n.into(), acts)));
    }
    let segs: Vec<(&str, &str, Expr)> = vec![
        (
            "undesirable",
            "People we do not want as customers.",
            or(vec![
                name("competitors"),
                Expr::Contains(nm("tags"), s("concurrent")),
            ]),
        ),
        (
            "hard_bounced",
            "An address that bounced in the last month.",
            eng("bounced", None, Some(ago("30d"))),
        ),
        (
            "marketable",
            "The marketable base: every marketing audience starts here.",
            and(vec![not(name("undesirable")), not(name("hard_bounced"))]),
        ),
        (
            "engaged",
            "Opened or clicked any message in the last 30 days.",
            or(vec![
                eng("opened", None, Some(ago("30d"))),
                eng("clicked", None, Some(ago("30d"))),
            ]),
        ),
        (
            "reachable_by_sms",
            "Can receive an SMS: a number and the opt-in.",
            and(vec![Expr::IsSet(nm("phone"), true), name("sms_opt_in")]),
        ),
        (
            "french_speaking",
            "French-speaking markets served from the Lyon warehouse.",
            Expr::In(
                nm("country"),
                false,
                vec![s("FR"), s("BE"), s("CH"), s("LU")],
            ),
        ),
        (
            "pros",
            "Professionals: garages and fleet managers.",
            Expr::In(nm("customer_type"), false, vec![nm("garage"), nm("fleet")]),
        ),
        (
            "talking_to_us",
            "Answered one of our messages in the last two weeks.",
            eng("replied", None, Some(ago("14d"))),
        ),
        (
            "trial_ending",
            "A pro trial that ends within three days.",
            Expr::Raw("trial_ends_at - 3d <= now and trial_ends_at > now".into()),
        ),
        (
            "webmail_users",
            "Addresses at the big webmail providers.",
            Expr::Raw(
                "email ends_with \"@gmail.example\" or email ends_with \"@outlook.example\"".into(),
            ),
        ),
        (
            "mobile_fr",
            "A French mobile number.",
            Expr::Raw("phone matches \"^\\\\+33 ?[67]\"".into()),
        ),
        (
            "broad_buyers",
            "Bought in three product lines or more this year.",
            Expr::Raw("count distinct(purchase.category since 365d ago) >= 3".into()),
        ),
    ];
    for (n, doc, e) in segs {
        items.push(Item::Decl(vec![doc.into()], Decl::Segment(n.into(), e)));
    }
    items.push(Item::Decl(
        vec!["Marketing SMS only to contacts who opted in.".into()],
        Decl::Consent("sms".into(), name("sms_opt_in")),
    ));
    items.push(Item::Decl(
        vec!["At most 3 emails, 1 SMS and 2 pushes a week.".into()],
        Decl::Pressure {
            caps: vec![
                ("email".into(), 3, "7d".into()),
                ("sms".into(), 1, "7d".into()),
                ("push".into(), 2, "7d".into()),
                ("all".into(), 5, "7d".into()),
            ],
            gap: "12h".into(),
            quiet: ("21:00".into(), "08:00".into()),
            excess: "defer".into(),
            under: (1, "14d".into()),
            more_quiet: vec!["sms 20:00 to 10:00".into(), "task weekends".into()],
        },
    ));
    GenFile {
        path: "schema.camp".into(),
        items,
    }
}

/// What a module contains, drawn from its own random stream.
struct Plan {
    /// `journey`, `library`, `messages` or `operations` (see `module_file`).
    archetype: &'static str,
    event: bool,
    offer: bool,
    guide: bool,
    reminder: bool,
    promo: bool,
    drip: bool,
    extras: (u64, u64),
    sms: bool,
    push: bool,
    orders: bool,
    leads: bool,
    weekly: bool,
    season: bool,
    browse: bool,
    persona: bool,
    negative: bool,
    vip_list: bool,
}

struct Module {
    i: usize,
    t: &'static str,
    label: &'static str,
    rng: Rng,
    items: Vec<Item>,
    segments: Vec<String>,
    /// Choices of the v1.1 additions, from a stream of their own so that
    /// the v1 content stays what it was.
    v11: Rng,
}

impl Module {
    fn n(&self, kind: &str) -> String {
        format!("{}_{}_{}", self.t, kind, self.i)
    }
    fn push(&mut self, doc: Vec<String>, d: Decl) {
        self.items.push(Item::Decl(doc, d));
    }
}

fn module_file(seed: u64, i: usize) -> GenFile {
    let (t, label) = THEMES[i % THEMES.len()];
    let area = AREAS[(i / THEMES.len()) % AREAS.len()];
    let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    // Modules follow the way teams split a large project: full journeys,
    // segment libraries, message packs with light journeys, and B2B
    // operations (orders, leads, cadences).
    let roll = rng.below(100);
    let plan = if roll < 26 {
        let season = rng.chance(20);
        Plan {
            archetype: "journey",
            event: rng.chance(20),
            offer: true,
            guide: true,
            reminder: true,
            promo: true,
            drip: true,
            extras: (1, 2),
            sms: rng.chance(70),
            push: rng.chance(50),
            orders: false,
            leads: false,
            weekly: false,
            season,
            browse: rng.chance(20),
            persona: rng.chance(12),
            negative: rng.chance(2),
            vip_list: rng.chance(20),
        }
    } else if roll < 56 {
        Plan {
            archetype: "library",
            event: rng.chance(30),
            offer: false,
            guide: false,
            reminder: false,
            promo: false,
            drip: false,
            extras: (4, 8),
            sms: false,
            push: false,
            orders: false,
            leads: false,
            weekly: false,
            season: false,
            browse: false,
            persona: rng.chance(25),
            negative: rng.chance(6),
            vip_list: rng.chance(40),
        }
    } else if roll < 80 {
        let season = rng.chance(35);
        Plan {
            archetype: "messages",
            event: false,
            offer: true,
            guide: true,
            reminder: false,
            promo: season,
            drip: false,
            extras: (0, 2),
            sms: rng.chance(60),
            push: rng.chance(60),
            orders: false,
            leads: false,
            weekly: rng.chance(50),
            season,
            browse: rng.chance(50),
            persona: rng.chance(10),
            negative: rng.chance(2),
            vip_list: rng.chance(20),
        }
    } else {
        let leads = rng.chance(70);
        Plan {
            archetype: "operations",
            event: rng.chance(70),
            offer: true,
            guide: true,
            reminder: rng.chance(50),
            promo: false,
            drip: false,
            extras: (1, 2),
            sms: rng.chance(50),
            push: rng.chance(40),
            orders: true,
            leads,
            weekly: false,
            season: false,
            browse: false,
            persona: rng.chance(10),
            negative: rng.chance(2),
            vip_list: rng.chance(20),
        }
    };
    let mut m = Module {
        i,
        t,
        label,
        rng,
        items: Vec::new(),
        segments: Vec::new(),
        v11: Rng::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x11),
    };
    m.items.push(Item::Comment(vec![
        format!(
            "{} ({area}), campaign module {i}: {}.",
            capitalize(label),
            plan.archetype
        ),
        "Lists and segments first, then the messages, then the journeys that send them.".into(),
    ]));
    if plan.event {
        gen_event(&mut m);
    }
    gen_lists(&mut m, &plan);
    gen_segments(&mut m, &plan);
    gen_templates(&mut m, &plan);
    gen_scenarios(&mut m, &plan);
    if plan.persona {
        gen_persona(&mut m, &plan);
    }
    if plan.negative {
        gen_negative(&mut m);
    }
    GenFile {
        path: format!("{area}/{t}_{i:04}.camp"),
        items: m.items,
    }
}

fn capitalize(x: &str) -> String {
    let mut c = x.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn gen_event(m: &mut Module) {
    let n = m.n("quote");
    let label = m.label;
    m.push(
        vec![format!(
            "A quote request for {label}, sent by the B2B form."
        )],
        Decl::Event(
            n,
            vec![
                field("subject", "text", false, Some("\"devis\", \"essai\", ...")),
                field("vehicles", "number", false, Some("0 when unknown")),
                field("budget", "number", false, Some("euros, excluding VAT")),
            ],
        ),
    );
}

fn gen_lists(m: &mut Module, plan: &Plan) {
    let (t, label) = (m.t, m.label);
    let interest = m.n("interest");
    let buyers = m.n("buyers");
    m.push(
        vec![format!("Declared or observed interest in {label}.")],
        Decl::List(
            interest.clone(),
            vec![
                Action::Tag(t.to_string()),
                Action::Join("newsletter".into()),
            ],
        ),
    );
    m.push(
        vec![format!(
            "Bought {label}: no more acquisition messages for this line."
        )],
        Decl::List(
            buyers,
            vec![
                Action::Leave(interest),
                Action::Untag("prospect".into()),
                Action::Tag(format!("{t}_client")),
            ],
        ),
    );
    if plan.vip_list {
        let vip = m.n("vip");
        m.push(
            vec![format!("Best {label} customers, hand-picked by the shop.")],
            Decl::List(vip, vec![]),
        );
    }
}

fn gen_segments(m: &mut Module, plan: &Plan) {
    let t = m.t;
    let i = m.i;
    let label = m.label;
    let fans = m.n("fans");
    let browsers = m.n("browsers");
    let target = m.n("target");
    let buyers = m.n("buyers");
    let interest = m.n("interest");
    m.items.push(Item::Comment(vec![
        "-----------------------------------------------------------------------".into(),
        "Segments".into(),
        "-----------------------------------------------------------------------".into(),
    ]));
    m.push(
        vec![format!(
            "People interested in {label}: declared or by joining the list."
        )],
        Decl::Segment(
            fans.clone(),
            or(vec![Expr::Contains(nm("interests"), s(t)), name(&interest)]),
        ),
    );
    let pages = m.rng.range(2, 4);
    m.push(
        vec![format!(
            "Read {pages} {t} pages in a week and not a customer yet."
        )],
        Decl::Segment(
            browsers.clone(),
            and(vec![
                agg(
                    "count",
                    "page_view",
                    None,
                    Some(Expr::Contains(nm("path"), s(&format!("/{t}")))),
                    Some(ago("7d")),
                    ">=",
                    num(pages),
                ),
                not(name("customers")),
            ]),
        ),
    );
    m.push(
        vec![format!("Who the {t} drip may talk to.")],
        Decl::Segment(
            target,
            and(vec![
                or(vec![name(&fans), name(&browsers)]),
                not(name(&buyers)),
            ]),
        ),
    );
    if plan.leads {
        let n = m.n("pros");
        let v = m.rng.range(3, 10);
        m.push(
            vec![format!(
                "Professionals with at least {v} vehicles or a high lifetime value."
            )],
            Decl::Segment(
                n,
                and(vec![
                    name("pros"),
                    or(vec![
                        cmp(nm("vehicles"), ">=", num(v)),
                        cmp(nm("ltv"), ">=", num(1000)),
                    ]),
                ]),
            ),
        );
    }
    if plan.season {
        let n = m.n("regional");
        m.push(
            vec!["Served from the Lyon warehouse, with a known city.".into()],
            Decl::Segment(
                n,
                and(vec![name("french_speaking"), Expr::IsSet(nm("city"), true)]),
            ),
        );
    }
    // The big-spender segment is always there: personas expect it.
    let big = m.n("big");
    let threshold = 100 * m.rng.range(2, 8);
    m.push(
        vec![format!("More than {threshold} EUR of {label} in a year.")],
        Decl::Segment(
            big,
            agg(
                "sum",
                "purchase",
                Some("amount"),
                Some(cmp(nm("category"), "==", s(t))),
                Some(ago("365d")),
                ">",
                num(threshold),
            ),
        ),
    );
    m.segments.push(format!("{threshold}"));
    let extras = m.rng.range(plan.extras.0, plan.extras.1);
    let mut used = Vec::new();
    for _ in 0..extras {
        let k = m.rng.below(18);
        if used.contains(&k) {
            continue;
        }
        used.push(k);
        let (kind, doc, e) = match k {
            0 => (
                "repeat",
                format!("At least two {t} orders in six months."),
                agg(
                    "count",
                    "purchase",
                    None,
                    Some(and(vec![
                        cmp(nm("category"), "==", s(t)),
                        cmp(nm("amount"), ">", num(0)),
                    ])),
                    Some(ago("180d")),
                    ">=",
                    num(2),
                ),
            ),
            1 => {
                let v = m.rng.range(60, 180);
                (
                    "basket",
                    format!("Average basket of {v} EUR or more outside consumables."),
                    agg(
                        "avg",
                        "purchase",
                        Some("amount"),
                        Some(cmp(nm("category"), "!=", s("consommables"))),
                        Some(ago("365d")),
                        ">=",
                        num(v),
                    ),
                )
            }
            2 => {
                let v = m.rng.range(20, 90);
                (
                    "cheap",
                    format!("Bought an entry-level {t} product: a good upgrade target."),
                    agg(
                        "min",
                        "purchase",
                        Some("amount"),
                        Some(cmp(nm("category"), "==", s(t))),
                        None,
                        "<",
                        Term::Num(format!("{v}.90")),
                    ),
                )
            }
            3 => (
                "top",
                "One large order this year.".into(),
                agg(
                    "max",
                    "purchase",
                    Some("amount"),
                    None,
                    Some(ago("365d")),
                    ">",
                    num(400),
                ),
            ),
            4 if plan.offer => (
                "clickers",
                format!("Clicked the {t} offer or opened the guide."),
                or(vec![
                    eng(
                        "clicked",
                        Some((&m.n("offer"), Some("shop"))),
                        Some(ago("60d")),
                    ),
                    eng("opened", Some((&m.n("guide"), None)), None),
                ]),
            ),
            5 if plan.offer => (
                "unopened",
                "The offer was delivered this week and not opened.".into(),
                and(vec![
                    eng("delivered", Some((&m.n("offer"), None)), Some(ago("7d"))),
                    not(eng("opened", Some((&m.n("offer"), None)), Some(ago("7d")))),
                ]),
            ),
            6 => (
                "newcomers",
                "Signed up in the last two weeks on the free plan.".into(),
                and(vec![
                    cmp(nm("signup_at"), ">=", ago("14d")),
                    cmp(nm("plan"), "==", nm("free")),
                ]),
            ),
            7 => (
                "early",
                "Signed up before the 2025 redesign.".into(),
                cmp(
                    nm("signup_at"),
                    "<",
                    Term::Ts("2025-01-01T00:00:00Z".into()),
                ),
            ),
            8 => (
                "ct_due",
                "Roadworthiness test due this year.".into(),
                and(vec![
                    Expr::IsSet(nm("ct_due_on"), true),
                    cmp(nm("ct_due_on"), ">=", Term::Date("2026-01-01".into())),
                    cmp(nm("ct_due_on"), "<=", Term::Date("2026-12-31".into())),
                ]),
            ),
            9 => (
                "abroad",
                "Lives abroad, in another time zone.".into(),
                and(vec![
                    Expr::IsSet(nm("tz"), true),
                    cmp(nm("tz"), "!=", s("Europe/Paris")),
                    Expr::In(nm("country"), true, vec![s("FR"), s("BE")]),
                ]),
            ),
            10 => (
                "parents",
                "Parents: said so in the survey, or declared the interest.".into(),
                or(vec![
                    cmp(nm("has_kids"), "==", Term::Bool(true)),
                    Expr::Contains(nm("interests"), s("kids")),
                ]),
            ),
            11 => (
                "anonymous",
                "No name and no company: copy must stay neutral.".into(),
                and(vec![
                    Expr::IsSet(nm("first_name"), false),
                    Expr::IsSet(nm("company"), false),
                ]),
            ),
            12 if i > 1 => {
                let j = 1 + m.rng.below(i as u64 - 1) as usize;
                let other = format!("{}_fans_{j}", THEMES[j % THEMES.len()].0);
                (
                    "cross",
                    format!("Fans of module {j}'s line who have not shown interest in {t} yet."),
                    and(vec![name(&other), not(name(&fans)), name("marketable")]),
                )
            }
            13 => (
                "lapsed",
                "Customers without an order for six months.".into(),
                and(vec![
                    name("customers"),
                    agg(
                        "count",
                        "purchase",
                        None,
                        None,
                        Some(ago("180d")),
                        "==",
                        num(0),
                    ),
                ]),
            ),
            14 => {
                let v = m.rng.range(5, 30);
                (
                    "quoters",
                    format!("Asked for a quote for {v} vehicles or more."),
                    agg(
                        "count",
                        "contact_request",
                        None,
                        Some(and(vec![
                            Expr::In(nm("subject"), false, vec![s(t), s("devis")]),
                            cmp(nm("vehicles"), ">=", num(v)),
                        ])),
                        Some(ago("90d")),
                        ">",
                        num(0),
                    ),
                )
            }
            15 if plan.event => (
                "budget",
                "A quote request with a real budget.".into(),
                agg(
                    "count",
                    &m.n("quote"),
                    None,
                    Some(cmp(nm("budget"), ">", num(1000))),
                    Some(ago("60d")),
                    ">",
                    num(0),
                ),
            ),
            16 => (
                "cold",
                "Prospects who ignore us.".into(),
                and(vec![
                    name("prospects"),
                    not(name("engaged")),
                    not(name(&fans)),
                ]),
            ),
            _ => (
                "company",
                "Transport companies, recognised by their name.".into(),
                or(vec![
                    Expr::Contains(nm("company"), s("Transport")),
                    Expr::Contains(nm("company"), s("Logistique")),
                ]),
            ),
        };
        let n = m.n(kind);
        if m.items
            .iter()
            .any(|it| matches!(it, Item::Decl(_, Decl::Segment(x, _)) if *x == n))
        {
            continue;
        }
        m.push(vec![doc], Decl::Segment(n, e));
    }
}

/// An email template: kind, doc line, subject, preheader, links.
type EmailSpec = (
    &'static str,
    String,
    String,
    String,
    Vec<(&'static str, String)>,
);

fn gen_templates(m: &mut Module, plan: &Plan) {
    let (t, i, label) = (m.t, m.i, m.label);
    let base = format!("https://www.autoparts-lyon.example/{t}");
    if !plan.offer {
        return;
    }
    m.items.push(Item::Comment(vec![
        "-----------------------------------------------------------------------".into(),
        "Messages".into(),
        "-----------------------------------------------------------------------".into(),
    ]));
    let footer = "<p style=\"color:#888\">{{workspace.name}} - {{workspace.address}}<br><a href=\"{{unsubscribe_url}}\">Unsubscribe</a></p>";
    let greet = "<p>{{#if first_name}}Hello {{capitalize first_name}},{{else}}Hello,{{/if}}</p>";
    let emails: [EmailSpec; 4] = [
        (
            "offer",
            format!("Our {label} selection of the month."),
            format!("{{{{default first_name \"Hello\"}}}}, two ideas for your {t} this month"),
            format!("Hand-picked {label}, tested on the roads around Lyon"),
            vec![
                ("shop", format!("{base}/selection")),
                ("guide", format!("{base}/guide")),
            ],
        ),
        (
            "reminder",
            "Same offer, new subject line, for non-openers.".into(),
            format!("You may have missed it: our {label} selection"),
            "We sorted the catalogue for you".into(),
            vec![("shop", format!("{base}/selection?r=1"))],
        ),
        (
            "guide",
            "Useful content first: the buyer's guide, no offer.".into(),
            format!("The free guide: choosing {label} without regrets"),
            "12 checks our mechanics make before every purchase".into(),
            vec![("guide", format!("{base}/guide-{i}.pdf"))],
        ),
        (
            "promo",
            "A time-limited code for readers of the guide.".into(),
            format!(
                "{{{{#if first_name}}}}{{{{first_name}}}}, your{{{{else}}}}Your{{{{/if}}}} code {}{i}: -10% for 7 days",
                t.to_uppercase()
            ),
            format!("Valid on all {label}, free returns"),
            vec![("shop", format!("{base}?code={}{i}", t.to_uppercase()))],
        ),
    ];
    for (kind, doc, subject, pre, links) in emails {
        let wanted = match kind {
            "offer" => plan.offer,
            "reminder" => plan.reminder,
            "guide" => plan.guide,
            _ => plan.promo,
        };
        if !wanted {
            continue;
        }
        let first_link = links[0].0;
        let mut html = format!(
            "<html><body>\n<h1>{}</h1>\n{greet}\n<p>{}</p>\n<p><a href=\"{{{{links.{first_link}}}}}\">See the selection</a></p>\n",
            capitalize(label),
            m.rng.pick(&[
                "Our team tested every product in the workshop before listing it.",
                "Prices include VAT; delivery in 48 hours from our Lyon warehouse.",
                "Garages and fleets get their professional price once logged in.",
                "Not sure what fits your car? Our advisers answer in the shop or by phone.",
            ])
        );
        if kind == "offer" {
            html.push_str(
                "{{#if company}}<p>Prices for {{company}} are shown excluding VAT.</p>{{/if}}\n",
            );
        }
        html.push_str(footer);
        html.push_str("\n</body></html>");
        let text = format!(
            "{{{{default first_name \"Hello\"}}}},\n\n{}: {{{{links.{first_link}}}}}\n\n-- \n{{{{workspace.name}}}}, {{{{workspace.address}}}}\nUnsubscribe: {{{{unsubscribe_url}}}}",
            capitalize(label)
        );
        let mut attrs = Vec::new();
        if kind == "offer" && m.rng.chance(50) {
            attrs.push(("kind".to_string(), Attr::Word("marketing".into())));
        }
        let topic = if kind == "guide" { "guides" } else { "offers" };
        attrs.push(("topic".to_string(), Attr::Word(topic.into())));
        if kind == "promo" {
            attrs.push(("priority".to_string(), Attr::Word("high".into())));
            attrs.push(("expires".to_string(), Attr::Word("2d".into())));
        }
        if kind == "offer" && plan.leads {
            attrs.push(attr_s(
                "from",
                "{{#if owner_address}}{{default owner_name \"Autoparts Lyon\"}} <{{owner_address}}>{{else}}Autoparts Lyon Pro <pro@autoparts-lyon.example>{{/if}}",
            ));
        }
        attrs.push(attr_s("subject", subject.clone()));
        attrs.push(attr_s("preheader", pre.clone()));
        attrs.push(attr_s("html", html.clone()));
        let has_text = kind != "promo" && m.rng.chance(60);
        if has_text {
            attrs.push(attr_s("text", text.clone()));
        }
        // English variants of every part for some messages (`lang = en`).
        if m.v11.chance(30) && std::env::var_os("SYNTH_NO_LOCALES").is_none() {
            attrs.push(attr_s("subject.en", format!("[EN] {subject}")));
            attrs.push(attr_s("preheader.en", format!("[EN] {pre}")));
            attrs.push(attr_s(
                "html.en",
                html.replace("<html>", "<html lang=\"en\">"),
            ));
            if has_text {
                attrs.push(attr_s("text.en", text.replace("Hello", "Hi")));
            }
        }
        let name = m.n(kind);
        m.push(
            vec![doc],
            Decl::Template {
                name,
                channel: "email",
                attrs,
                links: links.into_iter().map(|(a, b)| (a.to_string(), b)).collect(),
            },
        );
    }
    if plan.orders {
        let name = m.n("receipt");
        m.push(
            vec!["Order confirmation: transactional, exempt from the pressure caps.".into()],
            Decl::Template {
                name,
                channel: "email",
                attrs: vec![
                    ("kind".into(), Attr::Word("transactional".into())),
                    attr_s("subject", "Your order is confirmed"),
                    attr_s(
                        "html",
                        format!("<html><body>\n{greet}\n<p>Thank you for your order of {{{{trigger.amount}}}} EUR ({{{{trigger.sku}}}}).</p>\n<p>Our {label} ship within 48 hours.</p>\n<p>{{{{workspace.name}}}}, {{{{workspace.address}}}}</p>\n</body></html>"),
                    ),
                ],
                links: vec![],
            },
        );
    }
    if plan.sms {
        let name = m.n("sms");
        let url = format!("https://alp.example/{t}{i}");
        m.push(
            vec!["Short SMS with the promo link (under 160 characters).".into()],
            Decl::Template {
                name,
                channel: "sms",
                attrs: vec![attr_s(
                    "body",
                    format!("{{{{default first_name \"Hello\"}}}}: -10% on {t} with code {}{i}: {{{{links.offer}}}} STOP 36180", t.to_uppercase()),
                )],
                links: vec![("offer".into(), url)],
            },
        );
    }
    if plan.push {
        let name = m.n("push");
        m.push(
            vec!["An app notification.".into()],
            Decl::Template {
                name,
                channel: "push",
                attrs: vec![
                    attr_s("title", format!("New {t} picks")),
                    attr_s(
                        "body",
                        format!(
                            "{{{{default first_name \"Hi\"}}}}, our {label} selection is waiting"
                        ),
                    ),
                ],
                links: vec![],
            },
        );
    }
    if plan.leads {
        let name = m.n("call");
        m.push(
            vec!["A sales call, for the call centre.".into()],
            Decl::Template {
                name,
                channel: "task",
                attrs: vec![
                    attr_s("assignee", "{{default owner_name \"Sales desk\"}}"),
                    ("due".into(), Attr::Word("1d".into())),
                    attr_s(
                    "body",
                    format!("Call {{{{default first_name \"the contact\"}}}} {{{{#if company}}}}({{{{company}}}}){{{{/if}}}} on {{{{#if phone}}}}{{{{phone}}}}{{{{else}}}}their email {{{{email}}}}{{{{/if}}}} about {label}; plan {{{{plan}}}}, {{{{number ltv}}}} EUR so far."),
                    ),
                ],
                links: vec![],
            },
        );
    }
    if plan.orders || plan.leads {
        let name = m.n("crm");
        m.push(
            vec!["Pushes the contact to the CRM.".into()],
            Decl::Template {
                name,
                channel: "webhook",
                attrs: vec![
                    attr_s("url", format!("https://crm.autoparts-lyon.example/hooks/{t}")),
                    ("method".into(), Attr::Word("PUT".into())),
                    (
                        "header \"Authorization\"".into(),
                        Attr::Word("\"Bearer \" + env(\"CRM_TOKEN\")".into()),
                    ),
                    attr_s(
                        "body",
                        format!("{{\"email\": \"{{{{email}}}}\", \"plan\": \"{{{{plan}}}}\", \"line\": \"{t}\", \"module\": {i}}}"),
                    ),
                ],
                links: vec![],
            },
        );
    }
}

fn gen_scenarios(m: &mut Module, plan: &Plan) {
    let (t, i, label) = (m.t, m.i, m.label);
    let offer = m.n("offer");
    let reminder = m.n("reminder");
    let guide = m.n("guide");
    let promo = m.n("promo");
    let sms = m.n("sms");
    let push = m.n("push");
    if !(plan.drip || plan.orders || plan.leads || plan.weekly || plan.season || plan.browse) {
        return;
    }
    m.items.push(Item::Comment(vec![
        "-----------------------------------------------------------------------".into(),
        "Journeys".into(),
        "-----------------------------------------------------------------------".into(),
    ]));

    if plan.drip {
        gen_drip(m, plan);
    }

    if plan.orders {
        m.push(
            vec![format!(
                "Every paid {t} order: confirmation, CRM, buyers list."
            )],
            Decl::Scenario {
                name: m.n("orders"),
                audience: None,
                trigger: Trigger::Event(
                    "purchase".into(),
                    Some(and(vec![
                        cmp(nm("category"), "==", s(t)),
                        cmp(nm("amount"), ">", num(0)),
                    ])),
                ),
                reentry: Some("always".into()),
                exit_when: None,
                goal: None,
                more: vec![],
                steps: vec![
                    Step::Send(m.n("receipt")),
                    Step::Send(m.n("crm")),
                    Step::Join(m.n("buyers")),
                ],
            },
        );
    }

    if plan.leads {
        let trigger = if plan.event {
            Trigger::Event(
                m.n("quote"),
                Some(and(vec![
                    Expr::In(nm("subject"), false, vec![s("devis"), s("essai")]),
                    cmp(nm("vehicles"), ">=", num(3)),
                ])),
            )
        } else {
            Trigger::Event(
                "contact_request".into(),
                Some(and(vec![
                    cmp(nm("subject"), "==", s(t)),
                    cmp(nm("vehicles"), ">=", num(3)),
                ])),
            )
        };
        let cadence = m.n("followup");
        m.push(
            vec![format!(
                "A professional asks about {label}: CRM, then the sales cadence."
            )],
            Decl::Scenario {
                name: m.n("leads"),
                audience: Some(and(vec![name("marketable"), name(&m.n("pros"))])),
                trigger,
                reentry: Some("after 30d".into()),
                exit_when: Some(name("customers")),
                goal: None,
                more: vec!["goal     purchase where amount > 100 within 6w value amount".into()],
                steps: vec![
                    Step::Send(m.n("crm")),
                    Step::Tag(format!("lead_{t}")),
                    Step::Start(cadence.clone()),
                    Step::Branch(vec![
                        (
                            Some(eng("replied", None, None)),
                            vec![
                                Step::Untag(format!("lead_{t}")),
                                Step::Tag("hot_lead".into()),
                            ],
                        ),
                        (
                            None,
                            vec![Step::Tag("cold_lead".into()), Step::Send(m.n("crm"))],
                        ),
                    ]),
                ],
            },
        );
        let mut touches: Vec<Touch> = vec![
            (
                offer.clone(),
                None,
                Some("day 0: what we do for pros".into()),
                None,
            ),
            (
                m.n("call"),
                Some("1 business day".into()),
                Some("day 1: qualify the need".into()),
                None,
            ),
            (
                guide.clone(),
                None,
                Some("day 4: the buyer's guide".into()),
                None,
            ),
        ];
        if plan.sms {
            // Only to contacts with a number; `consent sms` applies too.
            touches.push((
                sms.clone(),
                Some("2d".into()),
                Some("day 6: short check-in".into()),
                Some(Expr::IsSet(nm("phone"), true)),
            ));
        }
        if plan.reminder {
            touches.push((
                reminder.clone(),
                None,
                None,
                Some(not(eng("opened", Some((&offer, None)), None))),
            ));
        }
        touches.push((
            m.n("call"),
            Some("2 business days".into()),
            Some("closing call".into()),
            None,
        ));
        if plan.push {
            touches.push((push.clone(), None, None, None));
        }
        m.push(
            vec![format!(
                "The {t} sales follow-up: email, calls and SMS over three weeks."
            )],
            Decl::Cadence {
                name: cadence,
                stop: Some(or(vec![
                    eng("replied", None, None),
                    agg(
                        "count",
                        "purchase",
                        None,
                        None,
                        Some(ago("30d")),
                        ">",
                        num(0),
                    ),
                ])),
                spacing: Some("2 business days".into()),
                touches,
            },
        );
    }

    if plan.weekly {
        let day = *m.rng.pick(WEEKDAYS);
        m.push(
            vec![format!("The weekly {t} tip for newsletter readers.")],
            Decl::Scenario {
                name: m.n("weekly"),
                audience: Some(and(vec![
                    name("marketable"),
                    name("newsletter"),
                    name(&m.n("fans")),
                    not(name("talking_to_us")),
                ])),
                trigger: Trigger::Every(day.into(), "09:00".into()),
                reentry: Some("always".into()),
                exit_when: Some(not(name("newsletter"))),
                goal: None,
                more: vec!["trigger  every month on last 10:00".into()],
                steps: vec![Step::Send(guide.clone())],
            },
        );
    }

    if plan.season {
        let month = 1 + (i % 12);
        let day = 1 + m.rng.below(27);
        let hold = *m.rng.pick(&[10u32, 20]);
        let local = m.v11.chance(50);
        let mut follow = vec![(
            Some(eng("clicked", Some((&promo, None)), None)),
            vec![Step::Tag(format!("{t}_season_interested"))],
        )];
        if plan.sms {
            follow.push((
                Some(and(vec![
                    not(eng("opened", Some((&promo, None)), None)),
                    name("reachable_by_sms"),
                ])),
                vec![Step::Send(sms.clone())],
            ));
        }
        m.push(
            vec![format!(
                "Seasonal {t} operation, with a hold-out group to measure the lift."
            )],
            Decl::Scenario {
                name: m.n("season"),
                audience: Some(and(vec![
                    name("marketable"),
                    or(vec![name("newsletter"), name("customers")]),
                    name(&m.n("regional")),
                ])),
                trigger: if local {
                    Trigger::Raw(format!("once at 2026-{month:02}-{day:02} 09:00 local"))
                } else {
                    Trigger::Once(format!("2026-{month:02}-{day:02}T09:00:00+01:00"))
                },
                reentry: None,
                exit_when: None,
                goal: Some(("purchase".into(), "3w".into())),
                more: vec![],
                steps: vec![Step::Split(vec![
                    (
                        100 - hold,
                        vec![
                            Step::Send(promo.clone()),
                            Step::Wait("1d12h".into()),
                            Step::Branch(follow),
                        ],
                    ),
                    (hold, vec![Step::Tag(format!("{t}_holdout_{i}"))]),
                ])],
            },
        );
    }

    if plan.browse {
        let (first, check) = if plan.push {
            (push.clone(), push.clone())
        } else {
            (offer.clone(), offer.clone())
        };
        m.push(
            vec![format!(
                "Reads {t} pages again and again: a nudge, then the guide."
            )],
            Decl::Scenario {
                name: m.n("browse"),
                audience: Some(and(vec![name("marketable"), not(name("customers"))])),
                trigger: Trigger::Entered(m.n("browsers")),
                reentry: Some("after 30d".into()),
                exit_when: Some(name("customers")),
                goal: None,
                more: vec![],
                steps: vec![
                    Step::Send(first),
                    Step::Wait("1d".into()),
                    Step::Branch(vec![(
                        Some(not(eng("opened", Some((&check, None)), None))),
                        vec![Step::Send(guide.clone())],
                    )]),
                ],
            },
        );
    }
    if plan.drip && m.v11.chance(25) {
        m.push(
            vec![format!(
                "Pro trial accounts: the {t} offer three days before the trial ends."
            )],
            Decl::Scenario {
                name: m.n("trial"),
                audience: Some(and(vec![name("marketable"), name("pros")])),
                trigger: Trigger::Raw("at trial_ends_at - 3d 09:00".into()),
                reentry: Some("never".into()),
                exit_when: Some(name("customers")),
                goal: None,
                more: vec!["goal     purchase where amount > 100 within 14d value amount".into()],
                steps: vec![
                    Step::Send(offer.clone()),
                    Step::Raw("wait until trial_ends_at".into()),
                    Step::Raw("wait 1 business day".into()),
                    Step::Send(promo.clone()),
                ],
            },
        );
    }
    if plan.season && plan.promo && m.v11.chance(30) {
        m.push(
            vec![format!("A birthday present: the {t} code.")],
            Decl::Scenario {
                name: m.n("birthday"),
                audience: Some(name("marketable")),
                trigger: Trigger::Raw("yearly birthday 10:00".into()),
                reentry: Some("always".into()),
                exit_when: None,
                goal: None,
                more: vec![],
                steps: vec![Step::Send(promo.clone())],
            },
        );
    }
}

/// The drip of a journey module: the offer, then a branch per behaviour.
fn gen_drip(m: &mut Module, plan: &Plan) {
    let t = m.t;
    let offer = m.n("offer");
    let reminder = m.n("reminder");
    let guide = m.n("guide");
    let promo = m.n("promo");
    let sms = m.n("sms");
    let push = m.n("push");
    let w1 = *m.rng.pick(&["3d", "4d", "3d12h"]);
    let w2 = *m.rng.pick(&["4d", "5d"]);
    let cat = || cmp(nm("category"), "==", s(t));
    let bought = agg(
        "count",
        "purchase",
        None,
        Some(cat()),
        Some(ago("5d")),
        ">",
        num(0),
    );
    let last_arm: Vec<Step> = if plan.sms {
        vec![
            Step::Send(promo.clone()),
            Step::Wait("2d".into()),
            Step::Branch(vec![(
                Some(and(vec![
                    name("reachable_by_sms"),
                    not(eng("clicked", Some((&promo, None)), None)),
                ])),
                vec![Step::Send(sms.clone())],
            )]),
        ]
    } else {
        vec![Step::Send(promo.clone())]
    };
    let other_arm: Vec<Step> = if plan.push {
        vec![Step::Send(push.clone())]
    } else {
        vec![Step::Tag(format!("{t}_no_incentive"))]
    };
    let mut arms = vec![
        (
            Some(not(eng("opened", Some((&offer, None)), None))),
            vec![
                Step::Comment(
                    "Not opened: resend with a new subject, then sort the openers.".into(),
                ),
                Step::Send(reminder.clone()),
                Step::Wait(w2.into()),
                Step::Branch(vec![
                    (
                        Some(eng("clicked", Some((&reminder, Some("shop"))), None)),
                        vec![
                            Step::Tag(format!("{t}_late_clicker")),
                            Step::Send(guide.clone()),
                        ],
                    ),
                    (
                        Some(eng("opened", Some((&reminder, None)), None)),
                        vec![Step::Send(guide.clone())],
                    ),
                    (None, vec![Step::Tag("non_opener".into()), Step::Exit]),
                ]),
            ],
        ),
        (
            Some(eng("clicked", Some((&offer, Some("shop"))), None)),
            vec![
                Step::Tag(format!("{t}_clicker")),
                Step::Send(guide.clone()),
                Step::WaitUntil(bought.clone(), "5d".into()),
                Step::Branch(vec![
                    (Some(bought), vec![Step::Tag(format!("{t}_converted"))]),
                    (
                        Some(eng("clicked", Some((&guide, Some("guide"))), None)),
                        vec![
                            Step::Comment(
                                "Read the guide, bought nothing: A/B test the incentive.".into(),
                            ),
                            Step::Wait("2d".into()),
                            Step::Split(vec![(50, last_arm), (50, other_arm)]),
                        ],
                    ),
                ]),
            ],
        ),
    ];
    if m.rng.chance(50) {
        arms.push((
            Some(eng("clicked", Some((&offer, Some("guide"))), None)),
            vec![Step::Tag(format!("{t}_reader")), Step::Send(guide.clone())],
        ));
    }
    arms.push((
        None,
        vec![
            Step::Send(guide.clone()),
            Step::Wait("7d".into()),
            Step::Branch(vec![(
                Some(eng("clicked", Some((&guide, Some("guide"))), None)),
                vec![Step::Tag(format!("{t}_reader"))],
            )]),
        ],
    ));
    let reentry = m.rng.pick(&["after 90d", "after 60d", "never"]).to_string();
    m.push(
        vec![
            format!("The {t} drip: the offer, then one follow-up per behaviour"),
            "(not opened, clicked the shop, read the guide, opened only).".into(),
        ],
        Decl::Scenario {
            name: m.n("drip"),
            audience: Some(and(vec![name("marketable"), name(&m.n("target"))])),
            trigger: Trigger::Joined(m.n("interest")),
            reentry: Some(reentry),
            exit_when: Some(name(&m.n("buyers"))),
            goal: Some(("purchase".into(), "14d".into())),
            more: vec![],
            steps: vec![
                Step::Send(offer.clone()),
                Step::Wait(w1.into()),
                Step::Branch(arms),
            ],
        },
    );
}

fn gen_persona(m: &mut Module, plan: &Plan) {
    let (t, i) = (m.t, m.i);
    let first = *m.rng.pick(FIRST);
    let last = *m.rng.pick(LAST);
    let city = *m.rng.pick(CITIES);
    let kind = *m.rng.pick(&["individual", "garage", "fleet"]);
    let threshold: u64 = m.segments[0].parse().unwrap_or(500);
    let pname = format!("{}_{}_{i}", t, first.to_lowercase());
    let mut values = vec![tv(
        "email",
        s(&format!(
            "{}.{}{i}@example.com",
            first.to_lowercase(),
            last.to_lowercase()
        )),
    )];
    let sms_ok = m.rng.chance(60);
    if sms_ok {
        values.push(tv(
            "phone",
            s(&format!("+336{:08}", m.rng.below(100_000_000))),
        ));
    }
    values.push(tv("first_name", s(first)));
    values.push(tv("last_name", s(last)));
    if kind != "individual" {
        values.push(tv(
            "company",
            s(&format!(
                "{} {}",
                *m.rng.pick(&["Garage", "Transports", "Taxis"]),
                last
            )),
        ));
        values.push(tv("vehicles", num(m.rng.range(2, 40))));
    }
    values.push(tv("city", s(city)));
    values.push(tv("country", s("FR")));
    values.push(tv("customer_type", nm(kind)));
    let level = *m.rng.pick(&["free", "pro", "team"]);
    values.push(tv("plan", nm(level)));
    values.push(tv("signup_at", ago(&format!("{}d", m.rng.range(30, 900)))));
    values.push(tv("ltv", num(threshold + 250)));
    values.push(tv("sms_opt_in", Term::Bool(sms_ok)));
    let other = *m.rng.pick(&["entretien", "securite", "kids"]);
    values.push(("interests".into(), Val::List(vec![s(t), s(other)])));
    values.push((
        "lists".into(),
        Val::List(vec![
            nm(&m.n("interest")),
            nm("newsletter"),
            nm("prospects"),
        ]),
    ));
    values.push(("tags".into(), Val::List(vec![s("prospect"), s(t)])));
    // Purchases: one recent, one older; together above the big threshold.
    let recent = threshold / 2 + 10;
    let older = threshold / 2 + 40;
    let mut events = vec![
        PEvent {
            name: "purchase".into(),
            values: vec![
                tv("amount", num(older)),
                tv("sku", s(&format!("{}-{i}-A", t.to_uppercase()))),
                tv("category", s(t)),
            ],
            at: ago(&format!("{}d", m.rng.range(60, 300))),
        },
        PEvent {
            name: "purchase".into(),
            values: vec![
                tv("amount", num(recent)),
                tv("sku", s(&format!("{}-{i}-B", t.to_uppercase()))),
                tv("category", s(t)),
            ],
            at: ago(&format!("{}d", m.rng.range(2, 25))),
        },
        PEvent {
            name: "page_view".into(),
            values: vec![tv("path", s(&format!("/{t}/comparatif")))],
            at: ago("2d"),
        },
    ];
    if plan.offer {
        events.push(PEvent {
            name: "opened".into(),
            values: vec![tv("template", s(&m.n("offer")))],
            at: ago("6d"),
        });
    }
    let mut expects = vec![
        name(&m.n("fans")),
        name(&m.n("target")),
        if plan.offer {
            and(vec![name("marketable"), name("engaged")])
        } else {
            and(vec![name("marketable"), not(name("engaged"))])
        },
        name(&m.n("big")),
        agg(
            "count",
            "purchase",
            None,
            Some(cmp(nm("category"), "==", s(t))),
            Some(ago("30d")),
            "==",
            num(1),
        ),
        not(name(&m.n("buyers"))),
    ];
    if sms_ok {
        expects.push(name("reachable_by_sms"));
    } else {
        expects.push(not(name("reachable_by_sms")));
    }
    let job = match kind {
        "garage" => "runs a garage",
        "fleet" => "manages a fleet of vans",
        _ => "drives to work every day",
    };
    m.push(
        vec![
            format!("{first} {last} {job} near {city}."),
            format!("Bought {t} products twice this year; reads the offers."),
        ],
        Decl::Persona {
            negative: false,
            name: pname,
            values,
            events,
            expects,
        },
    );
}

fn gen_negative(m: &mut Module) {
    let (t, i) = (m.t, m.i);
    m.push(
        vec!["A competitor's price-watch address: must never enter a marketing scenario.".into()],
        Decl::Persona {
            negative: true,
            name: format!("{t}_scout_{i}"),
            values: vec![
                tv("email", s(&format!("watch{i}@discount-parts.example"))),
                tv("company", s("Discount Parts")),
                tv("country", s("FR")),
                tv("customer_type", nm("garage")),
                tv("plan", nm("free")),
                tv("signup_at", ago("60d")),
                tv("ltv", num(0)),
                tv("sms_opt_in", Term::Bool(false)),
                ("interests".into(), Val::List(vec![s(t)])),
                (
                    "lists".into(),
                    Val::List(vec![nm("competitors"), nm("prospects")]),
                ),
                (
                    "tags".into(),
                    Val::List(vec![s("concurrent"), s("prospect")]),
                ),
            ],
            events: vec![PEvent {
                name: "contact_request".into(),
                values: vec![tv("subject", s("devis")), tv("vehicles", num(40))],
                at: ago("10d"),
            }],
            expects: vec![name("undesirable"), not(name("marketable"))],
        },
    );
}
