//! The types of §3 and the schema model shared by every check.

use std::collections::HashMap;

use crate::diagnostics::Span;

/// A field type of the contact schema or of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    Text,
    Number,
    Bool,
    Date,
    Timestamp,
    Email,
    Phone,
    Device,
    Timezone,
    Enum(Vec<String>),
    SetText,
}

impl Type {
    pub const NAMES: &'static [&'static str] = &[
        "text",
        "number",
        "bool",
        "date",
        "timestamp",
        "email",
        "phone",
        "device",
        "timezone",
    ];

    pub fn from_name(name: &str) -> Option<Type> {
        Some(match name {
            "text" => Type::Text,
            "number" => Type::Number,
            "bool" => Type::Bool,
            "date" => Type::Date,
            "timestamp" => Type::Timestamp,
            "email" => Type::Email,
            "phone" => Type::Phone,
            "device" => Type::Device,
            "timezone" => Type::Timezone,
            _ => return None,
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Type::Text => "text".into(),
            Type::Number => "number".into(),
            Type::Bool => "bool".into(),
            Type::Date => "date".into(),
            Type::Timestamp => "timestamp".into(),
            Type::Email => "email".into(),
            Type::Phone => "phone".into(),
            Type::Device => "device".into(),
            Type::Timezone => "timezone".into(),
            Type::Enum(v) => format!("enum({})", v.join(", ")),
            Type::SetText => "set<text>".into(),
        }
    }
}

/// A declared field of the contact schema or of an event.
#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub ty: Type,
    pub optional: bool,
    pub span: Option<Span>,
}

/// An ordered set of fields with lookup by name.
#[derive(Clone, Debug, Default)]
pub struct Fields {
    pub list: Vec<Field>,
    index: HashMap<String, usize>,
}

impl Fields {
    pub fn push(&mut self, field: Field) -> Result<(), &Field> {
        if let Some(&i) = self.index.get(&field.name) {
            return Err(&self.list[i]);
        }
        self.index.insert(field.name.clone(), self.list.len());
        self.list.push(field);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Field> {
        self.index.get(name).map(|&i| &self.list[i])
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|f| f.name.as_str())
    }
}

/// The channels of §6 and the address type each one needs.
pub const CHANNELS: &[&str] = &["email", "sms", "push", "task", "webhook"];

pub fn address_type(channel: &str) -> Option<Type> {
    match channel {
        "email" => Some(Type::Email),
        "sms" => Some(Type::Phone),
        "push" => Some(Type::Device),
        _ => None,
    }
}

/// Built-in message events of §3 with their fields.
pub fn builtin_event(name: &str) -> Option<Fields> {
    // (field, required): a message event names its template, a click its
    // link, an unsubscribe its channel. A reply may come without one: a
    // reply logged by the CRM (a phone call, an email to a salesperson)
    // answers no particular message; `replied(any)` sees it, `replied(T)`
    // does not.
    let fields: &[(&str, bool)] = match name {
        "replied" => &[("template", false), ("channel", false)],
        "delivered" | "opened" | "bounced" => &[("template", true), ("channel", false)],
        "clicked" => &[("template", true), ("channel", false), ("link", true)],
        "unsubscribed" => &[("channel", true), ("template", false)],
        _ => return None,
    };
    let mut out = Fields::default();
    for (n, required) in fields {
        let _ = out.push(Field {
            name: n.to_string(),
            ty: Type::Text,
            optional: !required,
            span: None,
        });
    }
    Some(out)
}

pub const BUILTIN_EVENTS: &[&str] = &[
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "unsubscribed",
];

/// `a text`, `an email`: a type name with its article, for messages.
pub fn with_article(s: &str) -> String {
    match s.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {s}"),
        _ => format!("a {s}"),
    }
}

/// Whether `name` is a zone of the bundled IANA database.
pub fn is_time_zone(name: &str) -> bool {
    crate::tzdb::is_zone(name)
}

#[cfg(test)]
mod tests {
    use crate::diagnostics::{Problems, SourceFile, SourceMap};

    fn codes(text: &str) -> Vec<String> {
        let mut sources = SourceMap::new();
        sources.add(SourceFile::new("main.camp", text));
        let checked = crate::driver::check_sources(&sources, Problems::new(), 1);
        checked.diagnostics.iter().map(|d| d.to_string()).collect()
    }

    const PROJECT: &str = r#"
workspace { name = "x", timezone = "Europe/Paris", from = "A <a@b.example>", address = "1 rue" }
contact { email: email }
template intro : email { subject = "Hi", html = "<p>hi</p><p>{{workspace.address}}</p><a href=\"{{unsubscribe_url}}\">Unsubscribe</a>" }
segment talking = replied(any since 14d ago)
segment answered_intro = replied(intro)
"#;

    /// A reply logged by the CRM names no template: accepted, seen by
    /// `replied(any)` and not by `replied(T)`.
    #[test]
    fn a_reply_without_template_is_accepted_and_counts_for_any() {
        let persona = "persona phoned {\n  email = \"p@x.example\"\n  event replied at 2d ago\n  expect talking\n  expect not answered_intro\n}\n";
        let found = codes(&format!("{PROJECT}{persona}"));
        assert!(found.is_empty(), "{found:#?}");
    }

    /// Other message events still name their template.
    #[test]
    fn an_open_without_template_is_still_refused() {
        let persona = "persona p {\n  email = \"p@x.example\"\n  event opened at 2d ago\n}\n";
        let found = codes(&format!("{PROJECT}{persona}"));
        assert!(found.iter().any(|d| d.contains("E0402")), "{found:#?}");
    }
}
