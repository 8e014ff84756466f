//! Time relative to a date (LANGUAGE.md §12): the point in time of
//! `wait until TIME` and of the trigger `at TIME [HH:MM]` (E0351, E0352)
//! and the date field of `yearly FIELD HH:MM` (E0353). Shifts on values
//! that are not times (E0350) are checked with the expressions.

use super::Project;
use super::expr::{Scope, check_shifts, check_term_name, time_term};
use super::types::Type;
use crate::diagnostics::{Code, Diagnostic, Problems};
use crate::syntax::ast::*;

/// `what`: the construct, for messages (`wait until`, `at`).
pub fn check_time(p: &Project, term: &Term, what: &str, problems: &mut Problems) {
    let scope = Scope::default();
    check_shifts(p, term, &scope, problems);
    check_term_name(p, term, &scope, problems);
    if term.is_relative() {
        let help = if what == "wait until" {
            "to wait for a duration, write `wait 3d`; `wait until` takes a date the contact carries, like `wait until trial_ends_at - 3d`"
        } else {
            "to fire on a schedule, write `every monday 09:00` or `once at TIMESTAMP`; `at` takes a date the contact carries, like `at trial_ends_at - 3d`"
        };
        problems.push(
            Diagnostic::new(
                Code::E0352,
                format!(
                    "`{what}` needs a date the contact carries; `now` and `ago` move with the clock"
                ),
            )
            .at(term.span, "moves with the clock")
            .help(help),
        );
        return;
    }
    if let Some(Err(ty)) = time_term(p, term, &scope) {
        let help = if what == "wait until" {
            "to wait for a condition, give a time limit: `wait until COND for 3d`; to wait for a date, write a timestamp or date field, maybe moved: `wait until trial_ends_at - 3d`"
        } else {
            "write a timestamp or date field, maybe moved by a duration: `at trial_ends_at - 3d 09:00`"
        };
        problems.push(
            Diagnostic::new(
                Code::E0351,
                format!(
                    "`{what}` needs a point in time (a timestamp or a date), not {}",
                    super::types::with_article(&ty)
                ),
            )
            .at(term.span, "not a point in time")
            .help(help),
        );
    }
}

/// `yearly FIELD HH:MM`: a `date` or `timestamp` field of the contact.
pub fn check_yearly(p: &Project, field: &Ident, problems: &mut Problems) {
    match p.schema.get(&field.name) {
        Some(f) if matches!(f.ty, Type::Date | Type::Timestamp) => {}
        Some(f) => problems.push(
            Diagnostic::new(
                Code::E0353,
                format!(
                    "`yearly` fires on the anniversaries of a date, and `{}` is {}",
                    field.name,
                    super::types::with_article(&f.ty.describe())
                ),
            )
            .at(field.span, "not a date or timestamp field")
            .help(
                "name a `date` or `timestamp` field of the contact, like `yearly birthday 09:00`",
            ),
        ),
        None if p.schema_incomplete() => {}
        None => {
            let dates: Vec<&str> = p
                .schema
                .list
                .iter()
                .filter(|f| matches!(f.ty, Type::Date | Type::Timestamp))
                .map(|f| f.name.as_str())
                .collect();
            problems.push(
                Diagnostic::new(
                    Code::E0353,
                    format!(
                        "`yearly` needs a date field of the contact, and there is no field `{}`",
                        field.name
                    ),
                )
                .at(field.span, "unknown field")
                .help_opt(crate::diagnostics::suggest(
                    &field.name,
                    dates.iter().copied(),
                    || {
                        Some(if dates.is_empty() {
                            "declare a `date` field in `contact { … }`, like `birthday: date?`"
                                .into()
                        } else {
                            format!("the date fields are: {}", dates.join(", "))
                        })
                    },
                )),
            );
        }
    }
}
