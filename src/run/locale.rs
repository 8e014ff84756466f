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
