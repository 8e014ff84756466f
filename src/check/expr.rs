//! The type rules of §4 for expressions, segment cycles and depth.

use std::collections::{BTreeSet, HashMap};

use super::types::{Fields, Type, is_time_zone};
use super::{Kind, Project};
use crate::diagnostics::{Code, Diagnostic, Problems, Span, Spanned, suggest, suggestions_left};
use crate::syntax::ast::*;

/// Where an expression is written, which decides what its names mean.
#[derive(Clone, Copy, Default)]
pub struct Scope<'s> {
    /// Inside `where`: the event's fields, which shadow contact fields.
    pub event: Option<&'s Fields>,
    /// Inside a scenario or cadence: the templates that may have been sent
    /// by this point of the run, and what to call the run in messages.
    pub sent: Option<(&'s BTreeSet<String>, &'s str)>,
}

/// The type of a term inside an expression.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ty {
    Field(Type),
    /// A string literal.
    Str,
    Duration,
    Percent,
    Clock,
    /// A bare name that is not a field: maybe an enum variant.
    Unresolved(String),
}

impl Ty {
    pub(super) fn describe(&self) -> String {
        match self {
            Ty::Field(t) => t.describe(),
            Ty::Str => "text".into(),
            Ty::Duration => "duration".into(),
            Ty::Percent => "percentage".into(),
            Ty::Clock => "time of day".into(),
            Ty::Unresolved(_) => "unknown".into(),
        }
    }

    fn is_textlike(&self) -> bool {
        matches!(
            self,
            Ty::Str | Ty::Field(Type::Text | Type::Email | Type::Phone | Type::Device)
        )
    }

    fn is_time(&self) -> bool {
        matches!(self, Ty::Field(Type::Timestamp | Type::Date))
    }
}

pub(super) fn term_ty(p: &Project, term: &Term, scope: &Scope) -> Ty {
    match &term.kind {
        TermKind::Now | TermKind::Ago(_) | TermKind::Timestamp(_) => Ty::Field(Type::Timestamp),
        TermKind::Date(_) => Ty::Field(Type::Date),
        TermKind::Clock(_) => Ty::Clock,
        TermKind::Duration(_) => Ty::Duration,
        TermKind::Percent(_) => Ty::Percent,
        TermKind::Number(_) => Ty::Field(Type::Number),
        TermKind::Str(_) => Ty::Str,
        TermKind::Bool(_) => Ty::Field(Type::Bool),
        TermKind::Name(n) => match field_type(p, n, scope) {
            Some(t) => Ty::Field(t),
            None => Ty::Unresolved(n.clone()),
        },
        // A shift on anything but a time is E0350 (`check_shifts`); the
        // base's type is kept so that no second error follows.
        TermKind::Shifted { base, seconds } => match term_ty(p, base, scope) {
            Ty::Field(Type::Date) if seconds % 86_400 != 0 => Ty::Field(Type::Timestamp),
            other => other,
        },
    }
}

/// Whether `term` is a point in time (a timestamp or date, maybe shifted),
/// with its type's description when it is not; `None` for an unknown name.
pub fn time_term(p: &Project, term: &Term, scope: &Scope) -> Option<Result<(), String>> {
    match term_ty(p, term, scope) {
        Ty::Unresolved(_) => None,
        t if t.is_time() => Some(Ok(())),
        t => Some(Err(t.describe())),
    }
}

/// Reports an unknown field named by `term` (after its shifts).
pub fn check_term_name(p: &Project, term: &Term, scope: &Scope, problems: &mut Problems) {
    let base = term.unshifted().0;
    if let Ty::Unresolved(n) = term_ty(p, base, scope) {
        unknown_field(p, &n, base.span, scope, problems);
    }
}

/// E0350: `x + 3d` where `x` is not a timestamp or a date.
pub fn check_shifts(p: &Project, term: &Term, scope: &Scope, problems: &mut Problems) {
    let TermKind::Shifted { base, .. } = &term.kind else {
        return;
    };
    let (base, _) = base.unshifted();
    let ty = term_ty(p, base, scope);
    if ty.is_time() || matches!(ty, Ty::Unresolved(_)) {
        return;
    }
    let mut shift = Span::new(
        base.span.file,
        base.span.end as usize,
        term.span.end as usize,
    );
    let text = p.sources.text(shift);
    shift.start += (text.len() - text.trim_start().len()) as u32;
    let what = super::types::with_article(&ty.describe());
    problems.push(
        Diagnostic::new(
            Code::E0350,
            format!("only a timestamp or a date can add or subtract a duration, and this is {what}"),
        )
        .at(shift, "a duration added here")
        .also(base.span, what)
        .help("move a timestamp or date field by a duration, like `trial_ends_at - 3d` or `now + 7d`; a negative number is written `-3`, without a space"),
    );
}

/// The terms written directly in `e` (not in its sub-conditions).
fn direct_terms(e: &Expr) -> Vec<&Term> {
    match &e.kind {
        ExprKind::Compare { lhs, rhs, .. } => vec![lhs, rhs],
        ExprKind::In { term, list, .. } => std::iter::once(term).chain(&list.node).collect(),
        ExprKind::Contains { haystack, needle } => vec![haystack, needle],
        ExprKind::IsSet { term, .. } => vec![term],
        ExprKind::Engagement { since, .. } => since.iter().collect(),
        ExprKind::Aggregate { agg, rhs, .. } => agg.since.iter().chain([rhs]).collect(),
        _ => Vec::new(),
    }
}

/// The type of a field name: the event's fields first, then the contact's.
fn field_type(p: &Project, name: &str, scope: &Scope) -> Option<Type> {
    if let Some(f) = scope.event.and_then(|e| e.get(name)) {
        return Some(f.ty.clone());
    }
    if let Some(f) = p.schema.get(name) {
        return Some(f.ty.clone());
    }
    match name {
        "id" => Some(Type::Text),
        "tags" => Some(Type::SetText),
        _ => None,
    }
}

fn field_candidates<'p>(p: &'p Project, scope: &Scope<'p>) -> Vec<&'p str> {
    let mut c: Vec<&str> = p.schema.names().collect();
    if let Some(e) = scope.event {
        c.extend(e.names());
    }
    c.extend(["id", "tags"]);
    c
}

pub(super) fn unknown_field(
    p: &Project,
    name: &str,
    span: Span,
    scope: &Scope,
    problems: &mut Problems,
) {
    if p.schema_incomplete() {
        return;
    }
    let candidates = if suggestions_left() {
        field_candidates(p, scope)
    } else {
        Vec::new()
    };
    let in_event = scope.event.is_some();
    let (code, what) = if in_event && p.schema.get(name).is_none() {
        (Code::E0210, "field of this event or the contact")
    } else {
        (Code::E0201, "contact field")
    };
    problems.push(
        Diagnostic::new(code, format!("unknown field `{name}`"))
            .at(span, format!("no {what} has this name"))
            .help_opt(suggest(name, candidates, || {
                Some(
                    "declare the field in `contact { … }` (or in the event), or check the spelling"
                        .into(),
                )
            })),
    );
}

pub fn check_expr(p: &Project, e: &Expr, scope: &Scope, problems: &mut Problems) {
    for t in direct_terms(e) {
        check_shifts(p, t, scope, problems);
    }
    match &e.kind {
        ExprKind::Or(xs) | ExprKind::And(xs) => {
            for x in xs {
                check_expr(p, x, scope, problems);
            }
        }
        ExprKind::Not(x) => check_expr(p, x, scope, problems),
        ExprKind::Bool(_) => {}
        ExprKind::Name(ident) => check_bare_name(p, ident, scope, problems),
        ExprKind::Compare { lhs, op, rhs } => {
            check_compare(p, e.span, lhs, *op, rhs, scope, problems)
        }
        ExprKind::In { term, list, .. } => {
            let t = term_ty(p, term, scope);
            match &t {
                Ty::Unresolved(n) => unknown_field(p, n, term.span, scope, problems),
                Ty::Field(Type::SetText) => problems.push(set_compared(p, term)),
                _ => {
                    for item in &list.node {
                        check_operands(p, e.span, term, &t, item, CmpOp::Eq, "in", scope, problems);
                    }
                }
            }
        }
        ExprKind::Contains { haystack, needle } => {
            let h = term_ty(p, haystack, scope);
            let n = term_ty(p, needle, scope);
            if let Ty::Unresolved(name) = &h {
                unknown_field(p, name, haystack.span, scope, problems);
                return;
            }
            if let Ty::Unresolved(name) = &n {
                unknown_field(p, name, needle.span, scope, problems);
                return;
            }
            let ok = (matches!(h, Ty::Field(Type::SetText)) || h.is_textlike()) && n.is_textlike();
            if !ok {
                problems.push(
                    Diagnostic::new(
                        Code::E0303,
                        format!(
                            "`contains` needs a set<text> or a text on the left and a text on the right, not {} and {}",
                            h.describe(),
                            n.describe()
                        ),
                    )
                    .at(e.span, "invalid `contains`")
                    .also(haystack.span, h.describe())
                    .also(needle.span, n.describe())
                    .help("write `interests contains \"gps\"` or `path contains \"/gps\"`"),
                );
            }
        }
        ExprKind::IsSet { term, .. } => match &term.kind {
            TermKind::Name(n) => {
                if field_type(p, n, scope).is_some() {
                } else if let Some(k) = p.kind_of(n) {
                    problems.push(
                        Diagnostic::new(
                            Code::E0211,
                            format!("`{n}` is {}; `is set` tests a field", k.noun()),
                        )
                        .at(term.span, "not a field")
                        .help_opt(
                            matches!(k, Kind::Segment | Kind::List).then(|| {
                                format!("to test membership, write `{n}` alone (or `not {n}`)")
                            }),
                        ),
                    );
                } else {
                    unknown_field(p, n, term.span, scope, problems);
                }
            }
            _ => problems.push(
                Diagnostic::new(Code::E0301, "`is set` applies to a field, not to a literal")
                    .at(term.span, "not a field")
                    .help("write a field name before `is set`, like `phone is set`"),
            ),
        },
        ExprKind::Engagement {
            kind,
            target,
            since,
        } => {
            if let EngagementTarget::Template { template, link } = target
                && p.expect_kind(template, Kind::Template, Code::E0202, problems)
            {
                {
                    if let Some(link) = link {
                        check_link(p, kind, template, link, problems);
                    }
                    if let Some((sent, run)) = scope.sent
                        && !sent.contains(&template.name)
                    {
                        problems.push(
                            Diagnostic::new(
                                Code::E0602,
                                format!(
                                    "`{}` can never hold here: {run} cannot have sent `{}` before this point",
                                    p.sources.text(e.span),
                                    template.name
                                ),
                            )
                            .at(template.span, "not sent earlier in this run")
                            .help(format!(
                                "send `{}` earlier in the run, or use `{}(any)` or a segment, which see every message",
                                template.name,
                                kind.node.as_str()
                            )),
                        );
                    }
                }
            }
            if let Some(t) = since {
                check_since(p, t, scope, problems);
            }
        }
        ExprKind::TextTest { term, op, arg } => {
            super::text::check_text_test(p, e.span, term, *op, arg, scope, problems)
        }
        ExprKind::Aggregate { agg, op, rhs } => {
            check_aggregate(p, agg, problems);
            let r = term_ty(p, rhs, scope);
            match r {
                Ty::Field(Type::Number) => {}
                Ty::Unresolved(n) => unknown_field(p, &n, rhs.span, scope, problems),
                other => problems.push(
                    Diagnostic::new(
                        Code::E0301,
                        format!(
                            "`{}(…)` is a number and cannot be compared with {} using `{}`",
                            agg.func.node.as_str(),
                            other.describe(),
                            op.node.as_str()
                        ),
                    )
                    .at(rhs.span, format!("this is {}", other.describe()))
                    .help("compare an aggregate with a number, like `count(purchase since 30d ago) >= 2`"),
                ),
            }
        }
    }
}

fn check_link(
    p: &Project,
    kind: &Spanned<EngagementKind>,
    template: &Ident,
    link: &Ident,
    problems: &mut Problems,
) {
    let Some(t) = p.templates.get(template.name.as_str()) else {
        return;
    };
    if kind.node != EngagementKind::Clicked {
        problems.push(
            Diagnostic::new(
                Code::E0204,
                format!(
                    "only `clicked` names a link; `{}` counts the whole message",
                    kind.node.as_str()
                ),
            )
            .at(link.span, "a link here needs `clicked`")
            .help(format!(
                "write `clicked({}.{})` or `{}({})`",
                template.name,
                link.name,
                kind.node.as_str(),
                template.name
            )),
        );
        return;
    }
    if !t.links.iter().any(|l| l.name.name == link.name) {
        let names: Vec<&str> = t.links.iter().map(|l| l.name.name.as_str()).collect();
        problems.push(
            Diagnostic::new(
                Code::E0204,
                format!("template `{}` has no link `{}`", template.name, link.name),
            )
            .at(link.span, "unknown link")
            .also(t.name.span, "template declared here")
            .help_opt(suggest(&link.name, names.iter().copied(), || {
                Some(if names.is_empty() {
                    format!(
                        "declare it in the template: `link {} = \"https://…\"`",
                        link.name
                    )
                } else {
                    format!("the links of `{}` are: {}", template.name, names.join(", "))
                })
            })),
        );
    }
}

fn check_since(p: &Project, t: &Term, scope: &Scope, problems: &mut Problems) {
    match term_ty(p, t, scope) {
        ty if ty.is_time() => {}
        Ty::Unresolved(n) => unknown_field(p, &n, t.span, scope, problems),
        Ty::Duration => problems.push(
            Diagnostic::new(Code::E0309, "`since` needs a point in time, not a duration")
                .at(t.span, "a duration")
                .help("add `ago`: `since 30d ago`"),
        ),
        other => problems.push(
            Diagnostic::new(
                Code::E0309,
                format!(
                    "`since` needs a point in time, not {}",
                    super::types::with_article(&other.describe())
                ),
            )
            .at(t.span, "not a time")
            .help("write a timestamp, a date, `now` or `30d ago`"),
        ),
    }
}

fn check_aggregate(p: &Project, agg: &Aggregate, problems: &mut Problems) {
    // Built-in events are not in the namespace: look them up first.
    if !p.events.contains_key(agg.event.name.as_str())
        && !p.expect_kind(&agg.event, Kind::Event, Code::E0205, problems)
    {
        return;
    }
    let Some(fields) = p.event_fields(&agg.event.name) else {
        return;
    };
    let func = agg.func.node;
    if let Some(distinct) = agg.distinct {
        super::text::check_distinct(p, agg, distinct, fields, problems);
    }
    match (func, &agg.field) {
        // `count distinct(EVENT.FIELD)`: checked above.
        (AggregateFn::Count, Some(_)) if agg.distinct.is_some() => {}
        (AggregateFn::Count, Some(f)) => problems.push(
            Diagnostic::new(Code::E0310, "`count` counts events; it takes no field")
                .at(f.span, "remove this field")
                .help(format!("write `count({})`", agg.event.name)),
        ),
        (AggregateFn::Count, None) => {}
        (_, None) => problems.push(
            Diagnostic::new(
                Code::E0310,
                format!("`{}` needs a numeric field of the event", func.as_str()),
            )
            .at(agg.event.span, "no field given")
            .help_opt({
                let numeric: Vec<&str> = fields
                    .list
                    .iter()
                    .filter(|f| f.ty == Type::Number)
                    .map(|f| f.name.as_str())
                    .collect();
                Some(match numeric.first() {
                    Some(n) => format!("write `{}({}.{n})`", func.as_str(), agg.event.name),
                    None => format!(
                        "`{}` has no number field; use `count({})`",
                        agg.event.name, agg.event.name
                    ),
                })
            }),
        ),
        (_, Some(f)) => match fields.get(&f.name) {
            None => problems.push(
                Diagnostic::new(
                    Code::E0210,
                    format!("event `{}` has no field `{}`", agg.event.name, f.name),
                )
                .at(f.span, "unknown event field")
                .help_opt(suggest(&f.name, fields.names(), || {
                    Some(format!(
                        "the fields of `{}` are: {}",
                        agg.event.name,
                        fields.names().collect::<Vec<_>>().join(", ")
                    ))
                })),
            ),
            Some(field) if field.ty != Type::Number => problems.push(
                Diagnostic::new(
                    Code::E0308,
                    format!(
                        "`{}` needs a number, but `{}.{}` is {}",
                        func.as_str(),
                        agg.event.name,
                        f.name,
                        field.ty.describe()
                    ),
                )
                .at(f.span, "not a number")
                .help(format!(
                    "use `count({} where …)` to count events instead",
                    agg.event.name
                )),
            ),
            Some(_) => {}
        },
    }
    let inner = Scope {
        event: Some(fields),
        sent: None,
    };
    if let Some(filter) = &agg.filter {
        check_expr(p, filter, &inner, problems);
    }
    if let Some(since) = &agg.since {
        check_since(p, since, &Scope::default(), problems);
    }
}

fn check_bare_name(p: &Project, ident: &Ident, scope: &Scope, problems: &mut Problems) {
    let name = ident.name.as_str();
    // An event field shadows everything inside `where`.
    let event_field = scope.event.and_then(|e| e.get(name));
    if event_field.is_none() {
        match p.kind_of(name) {
            Some(Kind::Segment | Kind::List) => return,
            Some(k) => {
                problems.push(
                    Diagnostic::new(
                        Code::E0211,
                        format!("`{name}` is {} and cannot be used as a condition", k.noun()),
                    )
                    .at(ident.span, "not a condition")
                    .help(if k == Kind::Template {
                        format!("to test engagement with this message, write `opened({name})` or `clicked({name})`")
                    } else {
                        "a bare name in a condition is a segment, a list or a bool field".to_string()
                    }),
                );
                return;
            }
            None => {}
        }
    }
    let field = event_field.or_else(|| p.schema.get(name));
    match field {
        Some(f) if f.ty == Type::Bool && f.optional => problems.push(
            Diagnostic::new(Code::E0305, format!("`{name}` is an optional bool and may be absent"))
                .at(ident.span, "optional bool used as a condition")
                .help(format!("say what an absent value means: `{name} == true`, or `{name} is set and {name} == true`")),
        ),
        Some(f) if f.ty == Type::Bool => {}
        Some(f) => problems.push(
            Diagnostic::new(
                Code::E0306,
                format!("`{name}` is a {} field, not a condition", f.ty.describe()),
            )
            .at(ident.span, "not a bool")
            .help(format!("compare it with a value, like `{name} == …`, or test `{name} is set`")),
        ),
        None if p.maybe_declared(name) || p.schema_incomplete() => {}
        None => {
            // Built only while suggestions are looked for: a flood of
            // unknown names must not cost a scan of every name each.
            let mut candidates: Vec<&str> = Vec::new();
            if suggestions_left() {
                candidates.extend(p.names_of(Kind::Segment).chain(p.names_of(Kind::List)));
                candidates.extend(p.schema.list.iter().filter(|f| f.ty == Type::Bool).map(|f| f.name.as_str()));
            }
            problems.push(
                Diagnostic::new(Code::E0208, format!("unknown name `{name}`"))
                    .at(ident.span, "not a segment, a list or a bool field")
                    .help_opt(suggest(name, candidates, || {
                        Some("declare it as a segment or a list, or add a bool field to the contact".into())
                    })),
            );
        }
    }
}

fn set_compared(p: &Project, term: &Term) -> Diagnostic {
    let name = p.sources.text(term.span).to_string();
    Diagnostic::new(
        Code::E0304,
        format!("`{name}` is a set<text>; sets are only tested with `contains`"),
    )
    .at(term.span, "a set")
    .help(format!("write `{name} contains \"value\"`"))
}

#[allow(clippy::too_many_arguments)]
fn check_compare(
    p: &Project,
    span: Span,
    lhs: &Term,
    op: Spanned<CmpOp>,
    rhs: &Term,
    scope: &Scope,
    problems: &mut Problems,
) {
    let l = term_ty(p, lhs, scope);
    if let Ty::Unresolved(n) = &l {
        // `pro == plan`: a variant on the left is fine when the right is an enum.
        let r = term_ty(p, rhs, scope);
        if let Ty::Field(Type::Enum(_)) = r {
            check_operands(
                p,
                span,
                rhs,
                &r,
                lhs,
                op.node,
                op.node.as_str(),
                scope,
                problems,
            );
        } else {
            unknown_field(p, n, lhs.span, scope, problems);
        }
        return;
    }
    if matches!(l, Ty::Field(Type::SetText)) {
        problems.push(set_compared(p, lhs));
        return;
    }
    check_operands(
        p,
        span,
        lhs,
        &l,
        rhs,
        op.node,
        op.node.as_str(),
        scope,
        problems,
    );
}

/// Checks `lhs OP rhs` where `lhs` has type `l` (already resolved).
#[allow(clippy::too_many_arguments)]
fn check_operands(
    p: &Project,
    span: Span,
    lhs: &Term,
    l: &Ty,
    rhs: &Term,
    op: CmpOp,
    op_text: &str,
    scope: &Scope,
    problems: &mut Problems,
) {
    let r = term_ty(p, rhs, scope);
    // Enum variants are bare names.
    if let Ty::Field(Type::Enum(variants)) = l {
        let variant = match &rhs.kind {
            TermKind::Name(n) if !matches!(r, Ty::Field(Type::Enum(_))) => Some(n),
            _ => None,
        };
        if let Some(v) = variant {
            if !variants.contains(v) {
                problems.push(
                    Diagnostic::new(
                        Code::E0209,
                        format!(
                            "`{v}` is not a variant of {}",
                            Ty::Field(Type::Enum(variants.clone())).describe()
                        ),
                    )
                    .at(rhs.span, "unknown variant")
                    .also(lhs.span, "this is the enum")
                    .help_opt(suggest(
                        v,
                        variants.iter().map(String::as_str),
                        || Some(format!("the variants are: {}", variants.join(", "))),
                    )),
                );
            } else if op.is_ordering() {
                problems.push(unordered(span, op_text, l));
            }
            return;
        }
    }
    if let Ty::Unresolved(n) = &r {
        unknown_field(p, n, rhs.span, scope, problems);
        return;
    }
    if matches!(r, Ty::Field(Type::SetText)) {
        problems.push(set_compared(p, rhs));
        return;
    }
    let compatible = match (l, &r) {
        (Ty::Field(Type::Number), Ty::Field(Type::Number)) => true,
        (Ty::Field(Type::Bool), Ty::Field(Type::Bool)) => true,
        (Ty::Field(Type::Timezone), Ty::Field(Type::Timezone)) => true,
        (Ty::Field(Type::Timezone), t) | (t, Ty::Field(Type::Timezone)) if t.is_textlike() => {
            // A literal must name a real zone.
            for term in [lhs, rhs] {
                if let TermKind::Str(s) = &term.kind
                    && !is_time_zone(s)
                {
                    problems.push(
                        Diagnostic::new(Code::E0111, format!("`{s}` is not an IANA time zone"))
                            .at(term.span, "unknown time zone")
                            .help("write a zone of the tz database, like \"Europe/Paris\" or \"America/New_York\""),
                    );
                }
            }
            true
        }
        (Ty::Field(Type::Enum(a)), Ty::Field(Type::Enum(b))) => a == b,
        (a, b) if a.is_textlike() && b.is_textlike() => true,
        (a, b) if a.is_time() && b.is_time() => true,
        _ => false,
    };
    if !compatible {
        let help = if matches!(r, Ty::Duration) && l.is_time() {
            "a duration is not a point in time: add `ago`, like `signup_at >= 14d ago`".to_string()
        } else {
            "compare values of the same type: number with number, text with text, timestamp with timestamp or date".to_string()
        };
        problems.push(
            Diagnostic::new(
                Code::E0301,
                format!(
                    "cannot compare {} with {} using `{op_text}`",
                    l.describe(),
                    r.describe()
                ),
            )
            .at(rhs.span, format!("this is {}", r.describe()))
            .also(lhs.span, format!("this is {}", l.describe()))
            .help(help),
        );
        return;
    }
    if op.is_ordering() && !(matches!(l, Ty::Field(Type::Number)) || l.is_time()) {
        problems.push(unordered(span, op_text, l));
    }
}

fn unordered(span: Span, op: &str, l: &Ty) -> Diagnostic {
    Diagnostic::new(
        Code::E0302,
        format!(
            "values of type {} have no order; `{op}` cannot compare them",
            l.describe()
        ),
    )
    .at(span, "ordering comparison")
    .help("use `==`, `!=` or `in [...]`; only numbers, dates and timestamps are ordered")
}

/// True when the expression holds for every contact (`true`, a required
/// field `is set`, …): a branch arm after it is unreachable.
pub fn always_holds(p: &Project, e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Bool(b) => *b,
        ExprKind::Not(x) => matches!(x.kind, ExprKind::Bool(false)),
        ExprKind::Or(xs) => xs.iter().any(|x| always_holds(p, x)),
        ExprKind::And(xs) => xs.iter().all(|x| always_holds(p, x)),
        ExprKind::IsSet {
            term,
            negated: false,
        } => match &term.kind {
            TermKind::Name(n) => p.schema.get(n).is_some_and(|f| !f.optional) || n == "id",
            _ => false,
        },
        ExprKind::Aggregate { agg, op, rhs } => {
            agg.func.node == AggregateFn::Count
                && op.node == CmpOp::Ge
                && matches!(rhs.kind, TermKind::Number(n) if n <= 0.0)
        }
        _ => false,
    }
}

/// Segment names referenced by an expression (directly, not through lists).
pub(super) fn segment_refs<'e>(p: &Project, e: &'e Expr, out: &mut Vec<&'e Ident>) {
    match &e.kind {
        ExprKind::Or(xs) | ExprKind::And(xs) => xs.iter().for_each(|x| segment_refs(p, x, out)),
        ExprKind::Not(x) => segment_refs(p, x, out),
        ExprKind::Name(i) if p.kind_of(&i.name) == Some(Kind::Segment) => out.push(i),
        // Inside `where`, a name that is not a field of the event is the
        // contact's: a segment there is a dependency too.
        ExprKind::Aggregate { agg, .. } => {
            if let Some(filter) = &agg.filter {
                let fields = p.event_fields(&agg.event.name);
                let mut inner = Vec::new();
                segment_refs(p, filter, &mut inner);
                out.extend(
                    inner
                        .into_iter()
                        .filter(|i| fields.is_none_or(|f| f.get(&i.name).is_none())),
                );
            }
        }
        _ => {}
    }
}

/// Type-checks every segment and reports each reference cycle once.
pub fn check_segments(p: &Project, problems: &mut Problems) {
    for s in &p.segments {
        check_expr(p, &s.expr, &Scope::default(), problems);
    }
    let index: HashMap<&str, usize> = p
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.name.as_str(), i))
        .collect();
    let edges: Vec<Vec<(usize, &Ident)>> = p
        .segments
        .iter()
        .map(|s| {
            let mut refs = Vec::new();
            segment_refs(p, &s.expr, &mut refs);
            refs.into_iter()
                .filter_map(|i| index.get(i.name.as_str()).map(|&j| (j, i)))
                .collect()
        })
        .collect();
    // Iterative DFS with colours; a back edge closes a cycle.
    let n = p.segments.len();
    let mut colour = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    // Filled in post-order: a segment's depth after those it uses.
    let mut depth = vec![0usize; n];
    let mut reported: BTreeSet<Vec<usize>> = BTreeSet::new();
    for root in 0..n {
        if colour[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        colour[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if *next < edges[node].len() {
                let (to, ident) = edges[node][*next];
                *next += 1;
                match colour[to] {
                    0 => {
                        colour[to] = 1;
                        stack.push((to, 0));
                    }
                    1 => {
                        let start = stack.iter().position(|&(s, _)| s == to).unwrap_or(0);
                        let cycle: Vec<usize> = stack[start..].iter().map(|&(s, _)| s).collect();
                        let mut key = cycle.clone();
                        key.sort_unstable();
                        if reported.insert(key) {
                            let names: Vec<&str> = cycle
                                .iter()
                                .chain(std::iter::once(&to))
                                .map(|&i| p.segments[i].name.name.as_str())
                                .collect();
                            let message = if cycle.len() == 1 {
                                format!("segment `{}` refers to itself", names[0])
                            } else {
                                format!(
                                    "segments refer to each other in a cycle: {}",
                                    names.join(" → ")
                                )
                            };
                            let mut d = Diagnostic::new(Code::E0307, message)
                            .at(ident.span, format!("`{}` refers back to `{}` here", p.segments[node].name.name, ident.name))
                            .help("a segment cannot depend on itself; break the cycle by inlining one condition");
                            for &i in &cycle {
                                d = d.also(
                                    p.segments[i].name.span,
                                    format!("`{}` is part of the cycle", p.segments[i].name.name),
                                );
                            }
                            problems.push(d);
                        }
                    }
                    _ => {}
                }
            } else {
                colour[node] = 2;
                stack.pop();
                depth[node] = expr_depth(p, &p.segments[node].expr, None, &|name| {
                    index.get(name).map_or(0, |&j| depth[j])
                });
            }
        }
    }
    if reported.is_empty() {
        report_too_deep(p, &edges, &depth, problems);
    }
}

/// E0020 for each segment that crosses the evaluator's depth limit while
/// every segment it uses stays within it (the ones above it are echoes).
fn report_too_deep(
    p: &Project,
    edges: &[Vec<(usize, &Ident)>],
    depth: &[usize],
    problems: &mut Problems,
) {
    let limit = crate::eval::MAX_CONDITION_DEPTH;
    for (i, s) in p.segments.iter().enumerate() {
        if depth[i] <= limit || edges[i].iter().any(|&(j, _)| depth[j] > limit) {
            continue;
        }
        let mut d = Diagnostic::new(
            Code::E0020,
            format!(
                "segment `{}` nests {} levels of conditions through the segments it uses; the limit is {limit}",
                s.name.name, depth[i]
            ),
        )
        .at(s.name.span, "too deep");
        if let Some(&(j, ident)) = edges[i].iter().max_by_key(|&&(j, _)| depth[j]) {
            d = d.also(
                ident.span,
                format!("`{}` alone is {} levels deep", ident.name, depth[j]),
            );
        }
        problems.push(d.help(
            "write some of the conditions out in full instead of naming a segment that names another, down a long chain",
        ));
    }
}

/// The nesting of `e` as the evaluator walks it: each `and`, `or`, `not`
/// (a negated `in` or `is set` included), `where` and segment reference is
/// one level, and a segment adds its own depth (`segment`). An upper bound
/// of the depth of the plan's expression (`eval::MAX_CONDITION_DEPTH`).
/// `event`: inside `where`, that event's fields, which are not segments.
fn expr_depth(
    p: &Project,
    e: &Expr,
    event: Option<&Fields>,
    segment: &dyn Fn(&str) -> usize,
) -> usize {
    let max = |xs: &[Expr]| {
        xs.iter()
            .map(|x| expr_depth(p, x, event, segment))
            .max()
            .unwrap_or(0)
    };
    match &e.kind {
        ExprKind::Or(xs) | ExprKind::And(xs) => 1 + max(xs),
        ExprKind::Not(x) => 1 + expr_depth(p, x, event, segment),
        ExprKind::In { negated: true, .. } | ExprKind::IsSet { negated: true, .. } => 2,
        ExprKind::Name(i)
            if p.kind_of(&i.name) == Some(Kind::Segment)
                && event.is_none_or(|f| f.get(&i.name).is_none()) =>
        {
            1 + segment(&i.name)
        }
        ExprKind::Aggregate { agg, .. } => match &agg.filter {
            Some(f) => 1 + expr_depth(p, f, p.event_fields(&agg.event.name), segment),
            None => 1,
        },
        _ => 1,
    }
}
