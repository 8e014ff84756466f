//! One message of the plan rendered for one real contact: what `relance
//! serve` hands to a channel, and what `relance render --format eml`
//! prints.
//!
//! Nothing here is a second renderer. The contact line is read by the
//! runner's own reader (`run::input`, so values are typed and normalised as
//! `relance run` reads them), its render context is made by the function
//! that makes a persona's for previews (`render::recipient` and
//! `render::template_context`), the variant is the one the runner picks
//! (`run::locale`), and the parts are rendered by the plan renderer that
//! renders the outbox's senders (`render::PlanParts`), with the helpers,
//! escaping, partials and limits of previews. What is previewed for a
//! persona is what is sent to a contact with the same values.

use std::collections::BTreeMap;

use serde_json::{Map, Value as J};

use super::Composed;
use crate::plan::{HeaderPiece, Plan};
use crate::render::PlanParts;

/// The plan compiled once; [`Composer::compose`] renders a message.
pub struct Composer {
    plan: Plan,
    parts: PlanParts,
    /// The render context's `workspace`.
    workspace: Map<String, J>,
}

impl Composer {
    /// Compiles every part, link URL and partial of `plan`.
    pub fn new(plan: &Plan) -> Composer {
        let w = &plan.workspace;
        let mut workspace = Map::new();
        for name in crate::render::WORKSPACE_VARIABLES {
            let value = match *name {
                "name" => &w.name,
                "address" => &w.address,
                "from" => &w.from,
                "timezone" => &w.timezone,
                _ => &None,
            };
            if let Some(v) = value {
                workspace.insert(name.to_string(), J::String(v.clone()));
            }
        }
        Composer {
            parts: PlanParts::all(plan),
            plan: plan.clone(),
            workspace,
        }
    }

    /// The plan it composes from.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Renders `template` for `contact`, one line of `relance run`'s
    /// contacts JSONL (`id`, the schema's fields, `lists`, `tags`), made at
    /// `at` (unix seconds; the email's `Date`).
    ///
    /// - `locale`: the variant to send, as the ledger line recorded it;
    ///   `None` picks it from the contact as `relance run` does. A locale
    ///   the template has no variant for gets the unsuffixed parts.
    /// - `unsubscribe_url`: the contact's signed link
    ///   ([`super::unsubscribe`]); it is `{{unsubscribe_url}}` and
    ///   `{{preferences_url}}` in the parts, and the `List-Unsubscribe`
    ///   header's URL.
    /// - `key`: the message's idempotency key (`Message-ID`).
    ///
    /// The context has no `trigger` fields (see
    /// [`Composer::compose_triggered`]). Errors: an unknown template, a
    /// contact line `relance run` would skip (the reason as it reports
    /// it), a part that fails to render, a webhook header whose
    /// environment variable is not set.
    pub fn compose(
        &self,
        template: &str,
        contact: &Map<String, J>,
        at: i64,
        locale: Option<&str>,
        unsubscribe_url: &str,
        key: &str,
    ) -> Result<Composed, String> {
        self.compose_triggered(
            template,
            contact,
            &Map::new(),
            at,
            locale,
            unsubscribe_url,
            unsubscribe_url,
            key,
        )
    }

    /// [`Composer::compose`] with `{{trigger.FIELD}}`: `trigger` holds the
    /// fields of the event that started the run (as in the events JSONL,
    /// `at` included), as previews take them from a persona's events; and
    /// `{{preferences_url}}` apart from `{{unsubscribe_url}}` (a real send
    /// gives both the signed link; `render --format eml` gives the
    /// preview's two URLs, so that the file is the preview).
    #[allow(clippy::too_many_arguments)]
    pub fn compose_triggered(
        &self,
        template: &str,
        contact: &Map<String, J>,
        trigger: &Map<String, J>,
        at: i64,
        locale: Option<&str>,
        unsubscribe_url: &str,
        preferences_url: &str,
        key: &str,
    ) -> Result<Composed, String> {
        let plan = &self.plan;
        let Some(t) = plan.templates.get(template) else {
            return Err(format!("no template `{template}` in the plan"));
        };
        let c = read_contact(plan, contact)?;
        let locale = match locale {
            Some(l) => t.variants.contains_key(l).then_some(l),
            None => {
                let v = crate::run::locale::variant(plan, template, &c);
                crate::run::locale::name(plan, v)
            }
        };
        let mut values: Vec<(String, J)> = c
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), crate::run::senders::value_json(v)))
            .collect();
        for (k, set) in [("tags", &c.tags), ("lists", &c.lists)] {
            let names = set.iter().cloned().map(J::String).collect();
            values.push((k.to_string(), J::Array(names)));
        }
        let base = crate::render::recipient(
            &c.id,
            values,
            unsubscribe_url,
            preferences_url,
            self.workspace.clone(),
        );
        let data = crate::render::template_context(&base, &t.links, trigger.clone());
        let mut parts = self
            .parts
            .render_message(plan, template, locale, data)
            .map_err(|(attr, why)| {
                format!("the {attr} of template `{template}` fails to render: {why}")
            })?;
        let (from, reply_to) = if t.channel == "email" {
            let from = parts.remove("from").or_else(|| plan.workspace.from.clone());
            (from, parts.remove("reply_to"))
        } else {
            (None, None)
        };
        if let Some(d) = t.due_seconds {
            parts.insert(
                "due".into(),
                crate::run::clock::rfc3339(at.saturating_add(d)),
            );
        }
        let mut headers = BTreeMap::new();
        if t.channel == "webhook" {
            parts.insert(
                "method".into(),
                t.method.clone().unwrap_or_else(|| "POST".into()),
            );
            for h in &t.request_headers {
                headers.insert(h.name.clone(), header_value(&h.value)?);
            }
        } else {
            for (name, value) in &t.headers {
                let value = value.replace("{{unsubscribe_url}}", unsubscribe_url);
                headers.insert(name.clone(), value);
            }
        }
        let to = t
            .address_field
            .as_ref()
            .and_then(|f| match c.fields.get(f) {
                Some(crate::eval::Value::Text(s)) if !s.is_empty() => Some(s.clone()),
                _ => None,
            });
        Ok(Composed {
            template: template.to_string(),
            channel: t.channel.clone(),
            kind: t.kind.clone(),
            to,
            from,
            reply_to,
            parts,
            headers,
            key: key.to_string(),
            at,
        })
    }
}

/// The contact line read as `relance run` reads it; the reasons it would
/// skip the line otherwise.
fn read_contact(plan: &Plan, contact: &Map<String, J>) -> Result<crate::eval::Contact, String> {
    let line = J::Object(contact.clone()).to_string();
    let (contacts, problems) = crate::run::input::contacts_from_jsonl(&line, plan, "contact")?;
    if contacts.is_empty() {
        let why: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        return Err(if why.is_empty() {
            "the contact line is empty".to_string()
        } else {
            format!("the contact is refused: {}", why.join("; "))
        });
    }
    Ok(contacts.contact(0))
}

/// A webhook header's value: its text, and each `env("NAME")` read from
/// this process's environment now (never stored).
fn header_value(pieces: &[HeaderPiece]) -> Result<String, String> {
    let mut out = String::new();
    for p in pieces {
        match p {
            HeaderPiece::Text(s) => out.push_str(s),
            HeaderPiece::Env(name) => match std::env::var(name) {
                Ok(v) => out.push_str(&v),
                Err(_) => {
                    return Err(format!(
                        "the environment variable `{name}` of a webhook header is not set"
                    ));
                }
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Problems, SourceFile, SourceMap};

    const CAMP: &str = r#"
workspace {
  name     = "Shop"
  timezone = "Europe/Paris"
  from     = "Shop <hello@shop.example>"
  address  = "1 rue de la Paix, 75002 Paris"
  locales  = [fr, en]
  locale   = lang
}
contact { email: email, first_name: text?, lang: enum(fr, en)?, signup_at: timestamp, born: date?, ltv: number, interests: set<text>, tz: timezone?, phone: phone? }
list vip
template offer : email {
  subject    = "Bonjour {{first_name}}, {{number ltv 2}} € {{date signup_at \"%d/%m/%Y %H:%M\"}}"
  subject.en = "Hello {{first_name}}"
  html       = file("templates/offer.html.hbs")
  from       = "\"{{first_name}} at Shop\" <hello@shop.example>"
  reply_to   = "help@shop.example"
  link shop  = "https://shop.example/?e={{email}}&n={{first_name}}"
}
template receipt : email {
  kind    = transactional
  subject = "Reçu"
  html    = "<p>Merci {{first_name}}</p>{{> social}}"
  text    = "Merci {{first_name}}\n{{> social}}"
}
template ping : sms {
  kind = transactional
  body = "Hi {{first_name}}"
}
persona marie {
  email      = "marie@example.com"
  first_name = "Marie <3"
  signup_at  = 2025-03-04T10:22:00Z
  born       = 1990-05-01
  ltv        = 1850.5
  interests  = ["dashcam", "gps"]
  lists      = [vip]
  tags       = ["a", "b"]
  tz         = "America/New_York"
}
persona john {
  email      = "john@example.com"
  first_name = "John"
  lang       = en
  signup_at  = 2026-01-01T00:00:00Z
  ltv        = 3
  interests  = []
}
"#;

    const HTML: &str = "<html><head><title>Offer</title></head><body><p>{{> greeting}}</p>\n<p>{{born}} {{interests}} {{#each lists}}[{{this}}]{{/each}} {{tags}} {{id}}</p>\n<a href=\"{{links.shop}}\">Shop</a> <a href=\"{{unsubscribe_url}}\">Unsubscribe</a>\n{{> footer}}</body></html>\n";

    fn project() -> (
        SourceMap,
        Vec<crate::syntax::ast::File>,
        BTreeMap<String, String>,
    ) {
        let mut sources = SourceMap::new();
        sources.add(SourceFile::new("shop.camp", CAMP));
        let files = [
            ("templates/offer.html.hbs", HTML),
            (
                "templates/partials/greeting.hbs",
                "Bonjour {{default first_name \"vous\"}}\n",
            ),
            (
                "templates/partials/footer.hbs",
                "<footer>{{workspace.address}} {{> social}}</footer>\n",
            ),
            (
                "templates/partials/social.hbs",
                "<a href=\"https://x.example/shop\">x</a>",
            ),
            ("templates/partials/unused.hbs", "never used"),
        ];
        let mut templates = BTreeMap::new();
        for (path, text) in files {
            sources.add(SourceFile::template(path.to_string(), text.to_string()));
            templates.insert(path.to_string(), text.to_string());
        }
        let (parsed, problems) = crate::driver::parse_all(&sources, 1);
        assert!(!problems.has_errors());
        (sources, parsed, templates)
    }

    const NOW: i64 = 1_780_000_000;

    fn plan() -> Plan {
        let (sources, files, templates) = project();
        let checked =
            crate::driver::check_parsed(&sources, files, Problems::new(), &templates, NOW);
        assert_eq!(checked.errors(), 0, "{:#?}", checked.diagnostics);
        checked.plan.expect("a plan")
    }

    fn previews() -> crate::render::RenderProject {
        let (sources, files, templates) = project();
        let checked =
            crate::driver::check_parsed(&sources, files, Problems::new(), &templates, NOW);
        crate::render::RenderProject::new(
            &sources,
            &checked.files,
            &crate::driver::template_file_ids(&sources),
            NOW,
        )
    }

    fn contact(v: J) -> Map<String, J> {
        match v {
            J::Object(m) => m,
            _ => panic!("an object"),
        }
    }

    fn marie() -> Map<String, J> {
        // The persona's values as an export would write them: another
        // offset, sets in another order.
        contact(serde_json::json!({
            "id": "marie", "email": "marie@example.com", "first_name": "Marie <3",
            "signup_at": "2025-03-04T11:22:00+01:00", "born": "1990-05-01", "ltv": 1850.5,
            "interests": ["gps", "dashcam"], "lists": ["vip"], "tags": ["b", "a"],
            "tz": "America/New_York"
        }))
    }

    fn john() -> Map<String, J> {
        contact(serde_json::json!({
            "id": "john", "email": "john@example.com", "first_name": "John", "lang": "en",
            "signup_at": "2026-01-01T00:00:00Z", "ltv": 3, "interests": []
        }))
    }

    #[test]
    fn a_composer_is_shared_by_sender_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Composer>();
        shared::<crate::deliver::email::Smtp>();
        shared::<crate::deliver::unsubscribe::Signer>();
    }

    #[test]
    fn the_plan_carries_the_partials_its_templates_use() {
        let plan = plan();
        let names: Vec<&str> = plan.partials.keys().map(String::as_str).collect();
        assert_eq!(names, ["footer", "greeting", "social"]);
        let footer = &plan.partials["footer"];
        assert_eq!(footer.source, "templates/partials/footer.hbs");
        assert!(footer.text.ends_with("</footer>\n"));
        // And the plan reads back the same.
        let back: Plan = serde_json::from_str(&plan.to_json()).expect("reads back");
        assert_eq!(back.partials, plan.partials);
    }

    #[test]
    fn a_contact_gets_what_the_persona_with_the_same_values_previews() {
        let plan = plan();
        let composer = Composer::new(&plan);
        let project = previews();
        for (persona, line) in [("marie", marie()), ("john", john())] {
            for template in ["offer", "receipt", "ping"] {
                let shown = project.render_one(template, persona).expect("renders");
                let unsubscribe = crate::render::preview_unsubscribe_url(persona);
                let sent = composer
                    .compose(template, &line, NOW, None, &unsubscribe, "k1")
                    .expect("composes");
                let part = |n: &str| sent.parts.get(n).cloned();
                assert_eq!(part("subject"), shown.subject, "{template} {persona}");
                assert_eq!(part("html"), shown.html, "{template} {persona}");
                assert_eq!(part("text"), shown.text, "{template} {persona}");
                assert_eq!(part("body"), shown.body, "{template} {persona}");
                let from = shown.from.clone().or_else(|| plan.workspace.from.clone());
                if template != "ping" {
                    assert_eq!(sent.from, from, "{template} {persona}");
                    assert_eq!(sent.reply_to, shown.reply_to, "{template} {persona}");
                }
            }
        }
    }

    #[test]
    fn composed_fields_headers_and_locale() {
        let plan = plan();
        let composer = Composer::new(&plan);
        let url = "https://relance.example/u/TOKEN";
        let c = composer
            .compose("offer", &marie(), NOW, None, url, "run-1.offer")
            .expect("composes");
        assert_eq!(c.channel, "email");
        assert_eq!(c.kind, "marketing");
        assert_eq!(c.to.as_deref(), Some("marie@example.com"));
        assert_eq!(
            c.from.as_deref(),
            Some("\"Marie <3 at Shop\" <hello@shop.example>")
        );
        assert_eq!(c.reply_to.as_deref(), Some("help@shop.example"));
        assert_eq!(c.headers["List-Unsubscribe"], format!("<{url}>"));
        assert_eq!(
            c.headers["List-Unsubscribe-Post"],
            "List-Unsubscribe=One-Click"
        );
        assert!(!c.parts.contains_key("from"));
        let html = &c.parts["html"];
        // Values escaped, the link rendered and percent-encoded, partials
        // reached through partials, the contact's time zone for dates.
        assert!(html.contains("Bonjour Marie &lt;3"), "{html}");
        assert!(
            html.contains(
                "https://shop.example/?e&#x3D;marie%40example.com&amp;n&#x3D;Marie%20%3C3"
            ),
            "{html}"
        );
        assert!(html.contains("https://x.example/shop"), "{html}");
        assert!(html.contains(&format!("href=\"{url}\"")), "{html}");
        assert!(html.contains("dashcam,gps [vip] a,b marie"), "{html}");
        assert!(
            c.parts["subject"].ends_with("1850.50 € 04/03/2025 05:22"),
            "{}",
            c.parts["subject"]
        );
        // John reads English: the variant the runner picks, or the one asked for.
        let j = composer
            .compose("offer", &john(), NOW, None, url, "k")
            .unwrap();
        assert_eq!(j.parts["subject"], "Hello John");
        let j = composer
            .compose("offer", &john(), NOW, Some("fr"), url, "k")
            .unwrap();
        assert!(j.parts["subject"].starts_with("Bonjour John"));
        // No address: composed, without `to`.
        let sms = composer
            .compose("ping", &marie(), NOW, None, url, "k")
            .unwrap();
        assert_eq!(sms.to, None);
        assert!(sms.headers.is_empty());
    }

    #[test]
    fn bad_contacts_and_names_are_errors() {
        let plan = plan();
        let composer = Composer::new(&plan);
        let e = composer
            .compose("nope", &marie(), NOW, None, "u", "k")
            .unwrap_err();
        assert!(e.contains("no template `nope`"), "{e}");
        let mut m = marie();
        m.remove("ltv");
        let e = composer
            .compose("offer", &m, NOW, None, "u", "k")
            .unwrap_err();
        assert!(e.contains("ltv"), "{e}");
        let mut m = marie();
        m.insert("signup_at".into(), J::String("yesterday".into()));
        let e = composer
            .compose("offer", &m, NOW, None, "u", "k")
            .unwrap_err();
        assert!(e.contains("signup_at") || e.contains("RFC 3339"), "{e}");
    }
}
