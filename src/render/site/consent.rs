//! Consent in previews (LANGUAGE.md §12): a persona for which a marketing
//! template's consent rule fails gets no preview of it, and the index says
//! why (docs/preview.md).

use std::fmt::Write as _;

use crate::render::RenderedMessage;
use crate::render::model::{MessageKind, TemplateInfo};
use crate::render::preview::PersonaFacts;
use crate::render::text::escape_html;

/// The personas of `facts` that get no preview of `t`, each with the rule
/// that fails for it (as written), in persona order.
pub(crate) fn withheld<'f>(
    t: &TemplateInfo,
    facts: Option<&'f std::collections::BTreeMap<String, PersonaFacts>>,
) -> Vec<(&'f str, &'f str)> {
    if t.kind != MessageKind::Marketing {
        return Vec::new();
    }
    let Some(facts) = facts else {
        return Vec::new();
    };
    facts
        .iter()
        .filter_map(|(persona, f)| {
            f.no_consent
                .iter()
                .find(|(channel, _)| *channel == t.channel)
                .map(|(_, rule)| (persona.as_str(), rule.as_str()))
        })
        .collect()
}

/// Removes the messages of withheld personas.
pub(crate) fn drop_withheld(messages: &mut Vec<RenderedMessage>, withheld: &[(&str, &str)]) {
    if !withheld.is_empty() {
        messages.retain(|m| !withheld.iter().any(|(p, _)| *p == m.persona));
    }
}

/// A hash of what is withheld, folded into the preview cache's key: a
/// changed rule or persona re-renders the template's previews.
pub(crate) fn key(withheld: &[(&str, &str)]) -> u64 {
    use std::hash::{Hash, Hasher};
    if withheld.is_empty() {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    withheld.hash(&mut h);
    h.finish()
}

/// The index row saying which personas get no preview of `t` and why.
/// `first`: no other row of this template was written (it takes the id).
pub(crate) fn index_row(
    t: &TemplateInfo,
    withheld: &[(&str, &str)],
    first: bool,
    out: &mut String,
) {
    if withheld.is_empty() {
        return;
    }
    let name = escape_html(&t.name);
    let channel = escape_html(&t.channel);
    let kind = t.kind.as_str();
    let class = if first { "" } else { " class=\"more\"" };
    let id = if first {
        format!("id=\"template-{name}\" ")
    } else {
        String::new()
    };
    let personas: Vec<String> = withheld.iter().map(|(p, _)| escape_html(p)).collect();
    let mut why = String::new();
    // Personas failing the same rule share one sentence (one rule per
    // channel, so there is one sentence).
    let rule = withheld[0].1;
    let _ = write!(
        why,
        "no preview for {}: the <code>consent {channel}</code> rule (<code>{}</code>) does not hold for {}",
        personas.join(", "),
        escape_html(rule),
        if personas.len() == 1 {
            "this persona"
        } else {
            "these personas"
        },
    );
    let _ = writeln!(
        out,
        "<tr {id}class=\"message no-consent\" data-template=\"{name}\" data-channel=\"{channel}\" data-kind=\"{kind}\" data-personas=\"{}\" data-no-consent=\"{}\"><td{class}><code>{name}</code></td><td{class}>{channel}</td><td{class}>{kind}</td><td colspan=\"2\" class=\"muted\">{why}</td></tr>",
        personas.join(" "),
        personas.join(" "),
    );
}
