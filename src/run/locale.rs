//! Locales at send time (§12): which variant of a template a contact gets.

use crate::eval::{Contact, Value};
use crate::plan::Plan;

/// The variant of `template` that `contact` gets, from its `locale` field
/// at send time: `0` for the unsuffixed parts, `k + 1` for the plan's
/// `k`-th locale when the template has variants for it. A project without
/// locales pays one `Option` test per send.
pub fn variant(plan: &Plan, template: &str, contact: &Contact) -> u16 {
    let Some(field) = &plan.workspace.locale_field else {
        return 0;
    };
    let Some(Value::Text(value)) = contact.fields.get(field) else {
        return 0;
    };
    let locales = &plan.workspace.locales;
    let Some(k) = crate::check::locales::pick(value, locales) else {
        return 0;
    };
    let has = plan
        .templates
        .get(template)
        .is_some_and(|t| t.variants.contains_key(&locales[k]));
    if has {
        u16::try_from(k + 1).unwrap_or(0)
    } else {
        0
    }
}

/// The locale of variant `v` (see [`variant`]); `None` for `0`.
pub fn name(plan: &Plan, v: u16) -> Option<&str> {
    let k = usize::from(v).checked_sub(1)?;
    plan.workspace.locales.get(k).map(String::as_str)
}

/// Messages sent per variant, for the summary: `(locale, count)` in the
/// order of `locales`, then the unsuffixed ones; empty without locales.
pub fn counts(plan: &Plan, outbox: &[super::sim::Message]) -> Vec<(String, u64)> {
    let locales = &plan.workspace.locales;
    if locales.is_empty() {
        return Vec::new();
    }
    let mut n = vec![0u64; locales.len() + 1];
    for m in outbox {
        if let Some(c) = n.get_mut(usize::from(m.locale)) {
            *c += 1;
        }
    }
    let mut out: Vec<(String, u64)> = locales
        .iter()
        .cloned()
        .zip(n[1..].iter().copied())
        .collect();
    out.push(("unsuffixed".to_string(), n[0]));
    out
}
