//! Locales (§12): `workspace { locales = [fr, en], locale = lang }` and the
//! per-locale variants of template attributes, `subject.en = "…"`.

use std::collections::HashMap;

use super::Project;
use super::types::Type;
use crate::diagnostics::{Code, Diagnostic, Problems, Span, suggest};
use crate::syntax::ast::*;

/// The attributes of a channel that may have per-locale variants: the
/// parts that are rendered into the message.
pub fn localizable(channel: &str) -> &'static [&'static str] {
    match channel {
        "email" => &["subject", "preheader", "html", "text"],
        "sms" | "task" | "webhook" => &["body"],
        "push" => &["title", "body"],
        _ => &[],
    }
}

/// The locales of the workspace (its first `locales` list), with the span
/// of the `locales` word; `None` without `locales`.
pub fn workspace_locales<'a>(p: &Project<'a>) -> Option<&'a LocalesSetting> {
    p.workspace.and_then(|w| w.locales.first())
}

/// The locale among `locales` that a contact's value picks: the same name;
/// else the name written in lower case with `_` for `-` (`pt-BR` picks
/// `pt_br`); else its primary language (`en-US` picks `en`). `None`: the
/// contact gets the unsuffixed attributes.
pub fn pick<S: AsRef<str>>(value: &str, locales: &[S]) -> Option<usize> {
    let find = |v: &str| locales.iter().position(|l| l.as_ref() == v);
    if let Some(i) = find(value) {
        return Some(i);
    }
    let normal = value.trim().to_ascii_lowercase().replace('-', "_");
    find(&normal).or_else(|| find(normal.split('_').next().unwrap_or_default()))
}

pub fn check_locales(p: &Project, problems: &mut Problems) {
    check_workspace_locales(p, problems);
    for t in &p.template_order {
        check_variants(p, t, problems);
    }
}

fn check_workspace_locales(p: &Project, problems: &mut Problems) {
    let Some(w) = p.workspace else { return };
    for a in w.attrs.iter().filter(|a| a.name.name == "locales") {
        problems.push(
            Diagnostic::new(Code::E0112, "`locales` takes a list of locales")
                .at(a.value.span, "expected a list like `[fr, en]`")
                .help("write `locales = [fr, en]`: the locales of the project, in brackets"),
        );
    }
    if let [first, rest @ ..] = w.locales.as_slice() {
        for again in rest {
            problems.push(super::items::given_twice(
                "`locales` is given twice".into(),
                again.keyword,
                first.keyword,
                "keep one list of locales",
            ));
        }
    }
    let locales = w.locales.first();
    if let Some(l) = locales {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for n in &l.names {
            if let Some(&before) = seen.get(n.name.as_str()) {
                problems.push(
                    Diagnostic::new(Code::E0104, format!("locale `{}` is listed twice", n.name))
                        .at(n.span, "listed again")
                        .also(before, "first listed here")
                        .help("list each locale once"),
                );
            } else {
                seen.insert(&n.name, n.span);
            }
        }
        if l.names.is_empty() {
            problems.push(
                Diagnostic::new(Code::E0112, "`locales` lists no locale")
                    .at(l.keyword, "empty list of locales")
                    .help("list the locales of the project, like `locales = [fr, en]`, or remove `locales`"),
            );
        }
    }
    let field = w.attrs.iter().find(|a| a.name.name == "locale");
    let misspelt = w.attrs.iter().any(|a| a.name.name == "locales");
    match (locales, field) {
        (None, Some(f)) if !misspelt => {
            problems.push(
                Diagnostic::new(
                    Code::E0191,
                    "the workspace names a `locale` field but no `locales`",
                )
                .at(f.name.span, "`locale` without `locales`")
                .help("list the locales too, like `locales = [fr, en]`, or remove `locale`"),
            );
        }
        (Some(l), None) if !l.names.is_empty() => {
            problems.push(
                Diagnostic::new(
                    Code::E0192,
                    "the workspace lists `locales` but names no `locale` field",
                )
                .at(l.keyword, "no field picks a contact's locale")
                .help("name the contact field that holds each contact's locale, like `locale = lang`, with `lang: enum(…)` or `lang: text` in `contact`"),
            );
        }
        (Some(l), Some(f)) => check_locale_field(p, l, f, problems),
        _ => {}
    }
}

/// `locale = lang`: a contact field, an `enum` over the locales or `text`.
fn check_locale_field(p: &Project, l: &LocalesSetting, f: &Attr, problems: &mut Problems) {
    let AttrValue::Word(name) = &f.value.node else {
        return;
    };
    let Some(field) = p.schema.get(name) else {
        if p.has_schema && !p.schema_incomplete() {
            let fields: Vec<&str> = p.schema.list.iter().map(|f| f.name.as_str()).collect();
            problems.push(
                Diagnostic::new(
                    Code::E0192,
                    format!("no contact field `{name}` for the locale"),
                )
                .at(f.value.span, "not a contact field")
                .help_opt(suggest(name, fields.iter().copied(), || {
                    Some(format!(
                        "declare it in `contact`, like `{name}: enum({})` or `{name}: text`",
                        l.names
                            .iter()
                            .map(|n| n.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })),
            );
        }
        return;
    };
    let declared = |d: Diagnostic| match field.span {
        Some(s) => d.also(s, "declared here"),
        None => d,
    };
    match &field.ty {
        Type::Text => {}
        Type::Enum(variants) => {
            let missing: Vec<&str> = l
                .names
                .iter()
                .map(|n| n.name.as_str())
                .filter(|n| !variants.iter().any(|v| v == n))
                .collect();
            let extra: Vec<&str> = variants
                .iter()
                .map(String::as_str)
                .filter(|v| !l.names.iter().any(|n| n.name == *v))
                .collect();
            if missing.is_empty() && extra.is_empty() {
                return;
            }
            let mut what = Vec::new();
            if !missing.is_empty() {
                what.push(format!("lacks {}", ticked(&missing)));
            }
            if !extra.is_empty() {
                what.push(format!(
                    "has {} that `locales` does not list",
                    ticked(&extra)
                ));
            }
            problems.push(declared(
                Diagnostic::new(
                    Code::E0194,
                    format!("the locale field `{name}` {}", what.join(" and ")),
                )
                .at(f.value.span, "its variants are not the locales")
                .also(l.keyword, "the locales")
                .help(format!(
                    "make the enum's variants the locales, `{name}: enum({})`, or add the missing names to `locales`",
                    l.names.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
                )),
            ));
        }
        other => {
            problems.push(declared(
                Diagnostic::new(
                    Code::E0193,
                    format!(
                        "the locale field `{name}` is `{}`, not an enum of the locales or text",
                        other.describe()
                    ),
                )
                .at(f.value.span, "not an enum or text")
                .help(format!(
                    "declare it as `{name}: enum({})` or `{name}: text`",
                    l.names
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ));
        }
    }
}

fn ticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_variants(p: &Project, t: &Template, problems: &mut Problems) {
    if t.variants.is_empty() {
        return;
    }
    let channel = t.channel.name.as_str();
    let locales = workspace_locales(p);
    let workspace_broken = p.broken_keywords.contains("workspace")
        || p.incomplete
        || p.workspace
            .is_some_and(|w| w.attrs.iter().any(|a| a.name.name == "locales"));
    let allowed = localizable(channel);
    // (attribute, locale) → the first variant's span.
    let mut seen: HashMap<(&str, &str), Span> = HashMap::new();
    // Locale → the attributes it has, in order, and its first variant.
    let mut by_locale: Vec<(&str, Vec<&str>, Span)> = Vec::new();
    for v in &t.variants {
        let (attr, locale) = (v.attr.name.name.as_str(), v.locale.name.as_str());
        let shown = format!("{attr}.{locale}");
        match locales {
            None if workspace_broken => {}
            None => {
                problems.push(
                    Diagnostic::new(
                        Code::E0191,
                        format!("`{shown}` is a per-locale variant, but the workspace lists no `locales`"),
                    )
                    .at(v.locale.span, "no locales declared")
                    .help(
                        "declare the locales and the contact field that picks one in the workspace, like `locales = [fr, en]` and `locale = lang`",
                    ),
                );
                continue;
            }
            Some(l) if !l.names.iter().any(|n| n.name == locale) => {
                let names: Vec<&str> = l.names.iter().map(|n| n.name.as_str()).collect();
                problems.push(
                    Diagnostic::new(
                        Code::E0190,
                        format!("unknown locale `{locale}` in `{shown}`"),
                    )
                    .at(v.locale.span, "not one of the workspace's `locales`")
                    .help_opt(suggest(locale, names.iter().copied(), || {
                        Some(format!(
                            "the locales are {}; add `{locale}` to `locales` to use it",
                            ticked(&names)
                        ))
                    })),
                );
                continue;
            }
            Some(_) => {}
        }
        if !allowed.contains(&attr) {
            let (_, known) = super::items::channel_attributes_of(channel);
            if known.contains(&attr) || matches!(attr, "url") {
                problems.push(
                    Diagnostic::new(
                        Code::E0195,
                        format!("`{attr}` has no per-locale variants"),
                    )
                    .at(v.attr.name.span, "the same for every locale")
                    .help(format!(
                        "only the rendered parts of {} `{channel}` template have variants: {}; write `{attr}` once, without `.{locale}`",
                        if channel == "email" { "an" } else { "a" },
                        allowed.join(", ")
                    )),
                );
            } else if !known.is_empty() {
                problems.push(
                    Diagnostic::new(
                        Code::E0106,
                        format!("a `{channel}` template has no attribute `{attr}`"),
                    )
                    .at(v.attr.name.span, "unknown attribute")
                    .help_opt(suggest(attr, allowed.iter().copied(), || {
                        Some(format!(
                            "the attributes with variants are: {}",
                            allowed.join(", ")
                        ))
                    })),
                );
            }
            continue;
        }
        if let Some(&first) = seen.get(&(attr, locale)) {
            problems.push(super::items::given_twice(
                format!("`{shown}` is given twice"),
                v.attr.name.span,
                first,
                "keep one of them",
            ));
            continue;
        }
        seen.insert((attr, locale), v.attr.name.span);
        match by_locale.iter_mut().find(|(l, _, _)| *l == locale) {
            Some((_, attrs, _)) => attrs.push(attr),
            None => by_locale.push((locale, vec![attr], v.locale.span)),
        }
        match &v.attr.value.node {
            AttrValue::Word(w) => {
                problems.push(
                    Diagnostic::new(
                        Code::E0112,
                        format!("`{shown}` takes a string or `file(\"…\")`, not `{w}`"),
                    )
                    .at(v.attr.value.span, "expected a string or a file")
                    .help(format!(
                        "write `{shown} = \"…\"` or `{shown} = file(\"templates/{}.{locale}.hbs\")`",
                        t.name.name
                    )),
                );
            }
            AttrValue::Str(s)
                if matches!(attr, "subject" | "preheader" | "title")
                    && s.contains(['\n', '\r']) =>
            {
                problems.push(
                    Diagnostic::new(Code::E0504, format!("the {shown} contains a line break"))
                        .at(v.attr.value.span, "line break in a header")
                        .help(format!("a {attr} is a single line: remove `\\n` and `\\r`")),
                );
            }
            _ => {}
        }
    }
    // A locale with some variants: every other rendered part the template
    // has should have one too, or that locale's contacts get a mix.
    let defaults: Vec<&str> = allowed
        .iter()
        .copied()
        .filter(|a| t.attrs.iter().any(|x| x.name.name == *a))
        .collect();
    for (locale, attrs, span) in by_locale {
        let missing: Vec<String> = defaults
            .iter()
            .filter(|a| !attrs.contains(a))
            .map(|a| format!("{a}.{locale}"))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let names: Vec<&str> = missing.iter().map(String::as_str).collect();
        let parts: Vec<&str> = defaults
            .iter()
            .copied()
            .filter(|a| !attrs.contains(a))
            .collect();
        problems.push(
            Diagnostic::new(
                Code::W0590,
                format!(
                    "template `{}` has `{locale}` variants but no {}",
                    t.name.name,
                    ticked(&names)
                ),
            )
            .at(span, format!("`{locale}` variants here"))
            .help(format!(
                "`{locale}` contacts get the unsuffixed {} with the `{locale}` {}: add {}, or remove the `{locale}` variants",
                parts.join(" and "),
                attrs.join(" and "),
                ticked(&names)
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn a_value_picks_its_locale() {
        let locales = ["fr", "en", "pt_br"];
        assert_eq!(pick("en", &locales), Some(1));
        assert_eq!(pick("EN", &locales), Some(1));
        assert_eq!(pick("en-US", &locales), Some(1));
        assert_eq!(pick("pt-BR", &locales), Some(2));
        assert_eq!(pick("pt", &locales), None);
        assert_eq!(pick("de", &locales), None);
        assert_eq!(pick("", &locales), None);
    }
}
