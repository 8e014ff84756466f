//! Checks of the v1.1 text tests (`starts_with`, `ends_with`, `matches`)
//! and of `count distinct(EVENT.FIELD)`.

use super::Project;
use super::expr::{Scope, Ty, term_ty, unknown_field};
use super::types::{Fields, Type};
use crate::diagnostics::{Code, Diagnostic, Problems, Span, Spanned};
use crate::syntax::ast::*;

/// The values a text test applies to: text, email and phone (§12).
fn is_text(t: &Ty) -> bool {
    matches!(
        t,
        Ty::Str | Ty::Field(Type::Text | Type::Email | Type::Phone)
    )
}

pub(super) fn check_text_test(
    p: &Project,
    span: Span,
    term: &Term,
    op: Spanned<TextOp>,
    arg: &Term,
    scope: &Scope,
    problems: &mut Problems,
) {
    let word = op.node.as_str();
    let left = term_ty(p, term, scope);
    if let Ty::Unresolved(name) = &left {
        unknown_field(p, name, term.span, scope, problems);
    } else if !is_text(&left) {
        problems.push(
            Diagnostic::new(
                Code::E0380,
                format!(
                    "`{word}` tests a text, an email or a phone, not {}",
                    left.describe()
                ),
            )
            .at(term.span, format!("this is {}", left.describe()))
            .also(op.span, "a text test")
            .help(match &left {
                Ty::Field(Type::SetText) => {
                    "to test a member of a set, write `interests contains \"gps\"`".to_string()
                }
                _ => format!(
                    "apply `{word}` to a `text`, `email` or `phone` field, like `email {word} \"@acme.example\"`"
                ),
            }),
        );
    }
    if op.node == TextOp::Matches {
        if let TermKind::Str(pattern) = &arg.kind
            && let Err(reason) = crate::eval::text::compile(pattern)
        {
            problems.push(
                Diagnostic::new(
                    Code::E0381,
                    format!("`{pattern}` is not a valid regular expression: {reason}"),
                )
                .at(arg.span, "invalid pattern")
                .help("patterns use the syntax of the regex-lite crate: no look-around or back-references; escape a special character with `\\\\` (`\"^\\\\+33\"`)"),
            );
        }
        let _ = span;
        return;
    }
    let right = term_ty(p, arg, scope);
    if let Ty::Unresolved(name) = &right {
        unknown_field(p, name, arg.span, scope, problems);
    } else if !is_text(&right) {
        problems.push(
            Diagnostic::new(
                Code::E0380,
                format!("`{word}` needs a text after it, not {}", right.describe()),
            )
            .at(arg.span, format!("this is {}", right.describe()))
            .also(op.span, "a text test")
            .help(format!(
                "write a text in double quotes, like `first_name {word} \"Ma\"`"
            )),
        );
    }
}

/// `count distinct(EVENT.FIELD …)`: only `count`, and a field of the event.
pub(super) fn check_distinct(
    p: &Project,
    agg: &Aggregate,
    distinct: Span,
    fields: &Fields,
    problems: &mut Problems,
) {
    let _ = p;
    let func = agg.func.node;
    if func != AggregateFn::Count {
        problems.push(
            Diagnostic::new(
                Code::E0382,
                format!("`distinct` goes with `count`, not `{}`", func.as_str()),
            )
            .at(distinct, "only `count distinct`")
            .also(agg.func.span, "not `count`")
            .help(format!(
                "remove `distinct`, or count the distinct values: `count distinct({}.FIELD)`",
                agg.event.name
            )),
        );
        return;
    }
    if agg.field.is_none() {
        let first = fields.names().next();
        problems.push(
            Diagnostic::new(
                Code::E0382,
                "`count distinct` counts the distinct values of a field, and none is given",
            )
            .at(agg.event.span, "no field given")
            .also(distinct, "distinct values of what?")
            .help(match first {
                Some(f) => format!(
                    "name a field of the event: `count distinct({}.{f})`",
                    agg.event.name
                ),
                None => format!(
                    "`{}` has no fields: write `count({})` to count its events",
                    agg.event.name, agg.event.name
                ),
            }),
        );
    } else if let Some(f) = &agg.field
        && fields.get(&f.name).is_none()
    {
        problems.push(
            Diagnostic::new(
                Code::E0210,
                format!("event `{}` has no field `{}`", agg.event.name, f.name),
            )
            .at(f.span, "unknown event field")
            .help_opt(crate::diagnostics::suggest(&f.name, fields.names(), || {
                Some(format!(
                    "the fields of `{}` are: {}",
                    agg.event.name,
                    fields.names().collect::<Vec<_>>().join(", ")
                ))
            })),
        );
    }
}
