//! Reading and validating a plan that may have been edited by hand: what
//! `docs/plan.schema.json` says (unknown or missing keys, closed sets of
//! words, clock times, minimums) and what it cannot say (every name
//! resolves, every `next` names a step of its own scenario, the steps and
//! the segments have no cycle, `scenario_order` lists each scenario once).
//! A runner executes only a plan that passes; the first problem is named
//! by its JSON path (`$.scenarios.welcome.steps["welcome/1"].seconds`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{
    AGGREGATES, CHANNELS, CLOCK_PATTERN, COMPARISONS, Cadence, DAYS, ENGAGEMENTS, Expr,
    FIELD_TYPES, ListAction, PLAN_VERSION, Plan, Reentry, Scenario, Step, Term, Trigger,
};

/// The first problem of a plan: where, and what.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanError {
    /// A JSON path such as `$.pressure.caps[0].max`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// `.name` for a plain key, `["a/0"]` for any other.
fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        format!(".{k}")
    } else {
        format!("[{}]", serde_json::to_string(k).unwrap_or_default())
    }
}

/// Parses `plan.json` text: a JSON or shape error names its path.
pub fn parse_plan(text: &str) -> Result<Plan, PlanError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Plan>(de) {
        Ok(p) => Ok(p),
        Err(e) => {
            let mut path = String::from("$");
            for seg in e.path().iter() {
                use serde_path_to_error::Segment as S;
                match seg {
                    S::Seq { index } => path.push_str(&format!("[{index}]")),
                    S::Map { key: k } => path.push_str(&key(k)),
                    S::Enum { variant } => path.push_str(&key(variant)),
                    S::Unknown => {}
                }
            }
            // serde_json's "at line 3 column 7" stays: it helps in an editor.
            let message = e.into_inner().to_string();
            Err(PlanError { path, message })
        }
    }
}

/// Whether `s` is a clock time `HH:MM` (the schema's pattern).
fn is_clock(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 5
        && b[2] == b':'
        && b[..2].iter().chain(&b[3..]).all(u8::is_ascii_digit)
        && (s[..2].parse::<u32>().is_ok_and(|h| h < 24))
        && (s[3..].parse::<u32>().is_ok_and(|m| m < 60))
}

/// Whether `s` is an RFC 3339 timestamp with an offset.
fn is_timestamp(s: &str) -> bool {
    s == s.trim()
        && s.contains('T')
        && s.parse::<jiff::Timestamp>().is_ok()
        && s.len() >= "2026-01-01T00:00:00Z".len()
}

struct V<'p> {
    plan: &'p Plan,
    /// Event names a plan may name: its own, and the built-in ones.
    events: BTreeSet<&'p str>,
}

type R = Result<(), PlanError>;

fn err(path: impl Into<String>, message: impl Into<String>) -> R {
    Err(PlanError {
        path: path.into(),
        message: message.into(),
    })
}

fn one_of(path: &str, what: &str, value: &str, allowed: &[&str]) -> R {
    if allowed.contains(&value) {
        Ok(())
    } else {
        err(
            path,
            format!(
                "`{value}` is not {what}: expected one of {}",
                allowed.join(", ")
            ),
        )
    }
}

fn at_least(path: &str, what: &str, value: i64, min: i64) -> R {
    if value >= min {
        Ok(())
    } else if min == 0 {
        err(path, format!("{what} must not be negative (found {value})"))
    } else {
        err(
            path,
            format!("{what} must be at least {min} (found {value})"),
        )
    }
}

/// Validates a parsed plan; `Err` names the first problem.
pub fn validate(plan: &Plan) -> R {
    let mut events: BTreeSet<&str> = plan.events.keys().map(String::as_str).collect();
    events.extend(ENGAGEMENTS);
    events.extend(["unsubscribed", "joined", "left"]);
    let v = V { plan, events };
    v.plan_top()
}

impl<'p> V<'p> {
    fn plan_top(&self) -> R {
        let p = self.plan;
        if !(super::OLDEST_PLAN_VERSION..=PLAN_VERSION).contains(&p.plan_version) {
            return err(
                "$.plan_version",
                format!(
                    "the plan has version {} but this relance reads versions {} to {PLAN_VERSION}: rebuild it with `relance build`",
                    p.plan_version,
                    super::OLDEST_PLAN_VERSION
                ),
            );
        }
        if let Some(z) = &p.workspace.timezone
            && !crate::tzdb::is_exact_name(z)
        {
            return err(
                "$.workspace.timezone",
                format!(
                    "`{z}` is not a zone of the IANA time-zone database (such as Europe/Paris)"
                ),
            );
        }
        self.schema()?;
        self.locales()?;
        for (name, e) in &p.events {
            for (i, f) in e.fields.iter().enumerate() {
                self.field(&format!("$.events{}.fields[{i}]", key(name)), f)?;
            }
        }
        for (name, l) in &p.lists {
            for (i, a) in l.on_join.iter().enumerate() {
                let path = format!("$.lists{}.on_join[{i}].list", key(name));
                if let ListAction::Join { list } | ListAction::Leave { list } = a {
                    self.list(&path, list)?;
                }
            }
        }
        for (name, e) in &p.segments {
            self.expr(&format!("$.segments{}", key(name)), e, None)?;
        }
        self.segment_cycles()?;
        for (name, t) in &p.templates {
            let path = format!("$.templates{}", key(name));
            one_of(
                &format!("{path}.channel"),
                "a channel",
                &t.channel,
                &CHANNELS,
            )?;
            one_of(
                &format!("{path}.kind"),
                "a template kind",
                &t.kind,
                &["marketing", "transactional", "operational"],
            )?;
            if let Some(e) = t.expires_seconds {
                at_least(&format!("{path}.expires_seconds"), "an expiry", e, 0)?;
            }
            if let Some(pr) = &t.priority {
                one_of(
                    &format!("{path}.priority"),
                    "a priority",
                    pr,
                    &["high", "normal", "low"],
                )?;
            }
            if let Some(a) = &t.address_field
                && !p.schema.fields.iter().any(|f| &f.name == a)
            {
                return err(
                    format!("{path}.address_field"),
                    format!("`{a}` is not a field of the contact schema"),
                );
            }
            for (part, x) in &t.parts {
                one_of(
                    &format!("{path}.parts{}.escape", key(part)),
                    "an escaping",
                    &x.escape,
                    &["html", "json", "url", "none"],
                )?;
            }
            if let Some(topic) = &t.topic
                && !p.topics.contains_key(topic)
            {
                return err(
                    format!("{path}.topic"),
                    format!(
                        "`{topic}` is not a topic of the plan (no `topics{}`)",
                        key(topic)
                    ),
                );
            }
            if let Err((at, why)) = super::senders::validate(&path, t) {
                return err(at, why);
            }
            // `link_order` names each link once, and only links.
            let mut order: Vec<&str> = t.link_order.iter().map(String::as_str).collect();
            order.sort_unstable();
            if !order.iter().copied().eq(t.links.keys().map(String::as_str)) {
                return err(
                    format!("{path}.link_order"),
                    "must name each link of `links` exactly once".to_string(),
                );
            }
        }
        // A partial is registered under its name, a body as `TEMPLATE#part`.
        for name in p.partials.keys() {
            if name.is_empty() || name.contains('#') {
                return err(
                    format!("$.partials{}", key(name)),
                    "must be a partial's name (`footer`, `blocks/cta`)".to_string(),
                );
            }
        }
        for (channel, e) in &p.consent {
            let path = format!("$.consent{}", key(channel));
            one_of(
                &path,
                "a channel with consent",
                channel,
                &["email", "sms", "push"],
            )?;
            self.expr(&path, e, None)?;
        }
        // Scenarios: each once in `scenario_order`.
        let mut seen = BTreeSet::new();
        for (i, name) in p.scenario_order.iter().enumerate() {
            let path = format!("$.scenario_order[{i}]");
            if !p.scenarios.contains_key(name) {
                return err(
                    path,
                    format!(
                        "`{name}` is not a scenario of the plan (no `scenarios{}`)",
                        key(name)
                    ),
                );
            }
            if !seen.insert(name.as_str()) {
                return err(
                    path,
                    format!(
                        "the scenario `{name}` is listed twice: each scenario starts once, in one place of the order"
                    ),
                );
            }
        }
        for name in p.scenarios.keys() {
            if !seen.contains(name.as_str()) {
                return err(
                    "$.scenario_order",
                    format!(
                        "the scenario `{name}` is missing: `scenario_order` lists every scenario once"
                    ),
                );
            }
        }
        let mut step_owner: HashMap<&str, &str> = HashMap::new();
        for (name, s) in &p.scenarios {
            for id in s.steps.keys() {
                if let Some(other) = step_owner.insert(id, name) {
                    return err(
                        format!("$.scenarios{}.steps{}", key(name), key(id)),
                        format!(
                            "the step id `{id}` is also a step of `{other}`: step ids are unique"
                        ),
                    );
                }
            }
        }
        for (name, s) in &p.scenarios {
            self.scenario(&format!("$.scenarios{}", key(name)), s)?;
        }
        let mut touch_ids: BTreeSet<&str> = BTreeSet::new();
        for (name, c) in &p.cadences {
            self.cadence(
                &format!("$.cadences{}", key(name)),
                c,
                &step_owner,
                &mut touch_ids,
            )?;
        }
        if let Some(pr) = &p.pressure {
            for (i, c) in pr.caps.iter().enumerate() {
                let path = format!("$.pressure.caps[{i}]");
                let mut scopes = CHANNELS.to_vec();
                scopes.push("all");
                one_of(&format!("{path}.scope"), "a cap scope", &c.scope, &scopes)?;
                if c.max == 0 {
                    return err(
                        format!("{path}.max"),
                        "a cap must allow at least 1 message (found 0): remove the cap to stop a channel instead",
                    );
                }
                at_least(
                    &format!("{path}.per_seconds"),
                    "a cap's period",
                    c.per_seconds,
                    1,
                )?;
            }
            if let Some(g) = pr.gap_seconds {
                at_least("$.pressure.gap_seconds", "a gap", g, 0)?;
            }
            if let Some(q) = &pr.quiet {
                for (k, t) in [("start", &q.start), ("end", &q.end)] {
                    if !is_clock(t) {
                        return err(
                            format!("$.pressure.quiet.{k}"),
                            format!("`{t}` is not a clock time `HH:MM` (pattern {CLOCK_PATTERN})"),
                        );
                    }
                }
            }
            for (i, q) in pr.quiet_rules.iter().enumerate() {
                let qp = format!("$.pressure.quiet_rules[{i}]");
                if let Some(c) = &q.channel {
                    one_of(&format!("{qp}.channel"), "a channel", c, &CHANNELS)?;
                }
                one_of(
                    &format!("{qp}.kind"),
                    "a quiet rule",
                    &q.kind,
                    &["hours", "weekends"],
                )?;
                if q.kind == "hours" {
                    for (k, t) in [("start", &q.start), ("end", &q.end)] {
                        match t {
                            Some(t) if is_clock(t) => {}
                            Some(t) => {
                                return err(
                                    format!("{qp}.{k}"),
                                    format!(
                                        "`{t}` is not a clock time `HH:MM` (pattern {CLOCK_PATTERN})"
                                    ),
                                );
                            }
                            None => {
                                return err(
                                    format!("{qp}.{k}"),
                                    "a quiet rule of kind `hours` needs `start` and `end`"
                                        .to_string(),
                                );
                            }
                        }
                    }
                }
            }
            one_of(
                "$.pressure.on_excess",
                "an excess policy",
                &pr.on_excess,
                &["defer", "drop"],
            )?;
            if let Some(u) = &pr.under_below {
                at_least(
                    "$.pressure.under_below.per_seconds",
                    "the period",
                    u.per_seconds,
                    1,
                )?;
            }
        }
        Ok(())
    }

    fn field(&self, path: &str, f: &super::Field) -> R {
        one_of(&format!("{path}.type"), "a field type", &f.ty, &FIELD_TYPES)?;
        if f.ty == "enum" && f.variants.as_ref().is_none_or(Vec::is_empty) {
            return err(
                format!("{path}.variants"),
                "an `enum` field needs its `variants`",
            );
        }
        Ok(())
    }

    /// §12: the locale field is a contact field, and every template's
    /// variants are for listed locales.
    fn locales(&self) -> R {
        let p = self.plan;
        let w = &p.workspace;
        if let Some(f) = &w.locale_field
            && !p.schema.fields.iter().any(|x| &x.name == f)
        {
            return err(
                "$.workspace.locale_field",
                format!("`{f}` is not a field of the contact schema"),
            );
        }
        for (name, t) in &p.templates {
            for locale in t.variants.keys() {
                if !w.locales.contains(locale) {
                    return err(
                        format!("$.templates{}.variants{}", key(name), key(locale)),
                        format!("`{locale}` is not one of the workspace's locales"),
                    );
                }
            }
        }
        Ok(())
    }

    fn schema(&self) -> R {
        let s = &self.plan.schema;
        let mut names = BTreeSet::new();
        for (i, f) in s.fields.iter().enumerate() {
            let path = format!("$.schema.fields[{i}]");
            self.field(&path, f)?;
            if matches!(f.name.as_str(), "id" | "lists" | "tags") || !names.insert(&f.name) {
                return err(
                    format!("{path}.name"),
                    format!("the field name `{}` is given twice or reserved", f.name),
                );
            }
        }
        for (ch, field) in &s.address_fields {
            let path = format!("$.schema.address_fields{}", key(ch));
            one_of(
                &path,
                "a channel with addresses",
                ch,
                &["email", "sms", "push"],
            )?;
            if !names.contains(field) {
                return err(
                    path,
                    format!("`{field}` is not a field of the contact schema"),
                );
            }
        }
        if let Some(tz) = &s.timezone_field
            && !s.fields.iter().any(|f| &f.name == tz && f.ty == "timezone")
        {
            return err(
                "$.schema.timezone_field",
                format!("`{tz}` is not a `timezone` field of the contact schema"),
            );
        }
        Ok(())
    }

    fn list(&self, path: &str, name: &str) -> R {
        if self.plan.lists.contains_key(name) {
            Ok(())
        } else {
            err(
                path,
                format!("the plan names a list `{name}` it does not define"),
            )
        }
    }

    fn template(&self, path: &str, name: &str) -> R {
        if self.plan.templates.contains_key(name) {
            Ok(())
        } else {
            err(
                path,
                format!("the plan names a template `{name}` it does not define"),
            )
        }
    }

    fn event(&self, path: &str, name: &str) -> R {
        if self.events.contains(name) {
            Ok(())
        } else {
            err(
                path,
                format!("the plan names an event `{name}` it does not define"),
            )
        }
    }

    fn segment(&self, path: &str, name: &str) -> R {
        if self.plan.segments.contains_key(name) {
            Ok(())
        } else {
            err(
                path,
                format!("the plan names a segment `{name}` it does not define"),
            )
        }
    }

    /// `event`: the event whose fields `event_field` terms read (inside
    /// an aggregate's `where`).
    fn expr(&self, path: &str, e: &Expr, event: Option<&str>) -> R {
        match e {
            Expr::Const { .. } => Ok(()),
            Expr::And { args } | Expr::Or { args } => {
                for (i, a) in args.iter().enumerate() {
                    self.expr(&format!("{path}.args[{i}]"), a, event)?;
                }
                Ok(())
            }
            Expr::Not { arg } => self.expr(&format!("{path}.arg"), arg, event),
            Expr::Segment { name } => self.segment(&format!("{path}.name"), name),
            Expr::List { name } => self.list(&format!("{path}.name"), name),
            Expr::Flag { value } => self.term(&format!("{path}.value"), value, event),
            Expr::Compare { cmp, left, right } => {
                one_of(&format!("{path}.cmp"), "a comparison", cmp, &COMPARISONS)?;
                self.term(&format!("{path}.left"), left, event)?;
                self.term(&format!("{path}.right"), right, event)
            }
            Expr::In { value, list } => {
                self.term(&format!("{path}.value"), value, event)?;
                for (i, t) in list.iter().enumerate() {
                    self.term(&format!("{path}.list[{i}]"), t, event)?;
                }
                Ok(())
            }
            Expr::Contains { haystack, needle } => {
                self.term(&format!("{path}.haystack"), haystack, event)?;
                self.term(&format!("{path}.needle"), needle, event)
            }
            Expr::IsSet { value } => self.term(&format!("{path}.value"), value, event),
            Expr::Engagement {
                event: ev,
                template,
                link,
                since,
                scope,
            } => {
                one_of(
                    &format!("{path}.event"),
                    "an engagement event",
                    ev,
                    &ENGAGEMENTS,
                )?;
                if let Some(t) = template {
                    self.template(&format!("{path}.template"), t)?;
                    if let Some(l) = link
                        && !self.plan.templates[t].links.contains_key(l)
                    {
                        return err(
                            format!("{path}.link"),
                            format!("the template `{t}` has no link `{l}`"),
                        );
                    }
                }
                if let Some(s) = since {
                    self.term(&format!("{path}.since"), s, event)?;
                }
                one_of(
                    &format!("{path}.scope"),
                    "an engagement scope",
                    scope,
                    &["run", "all"],
                )
            }
            Expr::Aggregate {
                function,
                event: ev,
                field,
                filter,
                since,
                cmp,
                value,
                distinct,
            } => {
                one_of(
                    &format!("{path}.function"),
                    "an aggregate function",
                    function,
                    &AGGREGATES,
                )?;
                if *distinct && (function != "count" || field.is_none()) {
                    return err(
                        format!("{path}.distinct"),
                        "`distinct` needs the function `count` and a `field`".to_string(),
                    );
                }
                self.event(&format!("{path}.event"), ev)?;
                if let Some(f) = field
                    && let Some(def) = self.plan.events.get(ev)
                    && !def.fields.iter().any(|x| &x.name == f)
                {
                    return err(
                        format!("{path}.field"),
                        format!("the event `{ev}` has no field `{f}`"),
                    );
                }
                if let Some(f) = filter {
                    self.expr(&format!("{path}.where"), f, Some(ev))?;
                }
                if let Some(s) = since {
                    self.term(&format!("{path}.since"), s, event)?;
                }
                one_of(&format!("{path}.cmp"), "a comparison", cmp, &COMPARISONS)?;
                self.term(&format!("{path}.value"), value, event)
            }
            Expr::StartsWith { value, prefix } => {
                self.term(&format!("{path}.value"), value, event)?;
                self.term(&format!("{path}.prefix"), prefix, event)
            }
            Expr::EndsWith { value, suffix } => {
                self.term(&format!("{path}.value"), value, event)?;
                self.term(&format!("{path}.suffix"), suffix, event)
            }
            Expr::Matches { value, pattern } => {
                if let Err(e) = crate::eval::text::compile(pattern) {
                    return err(
                        format!("{path}.pattern"),
                        format!("not a valid regular expression: {e}"),
                    );
                }
                self.term(&format!("{path}.value"), value, event)
            }
        }
    }

    fn term(&self, path: &str, t: &Term, event: Option<&str>) -> R {
        match t {
            Term::Field(f) => {
                if matches!(f.as_str(), "id" | "tags")
                    || self.plan.schema.fields.iter().any(|x| &x.name == f)
                {
                    Ok(())
                } else {
                    err(
                        format!("{path}.field"),
                        format!("`{f}` is not a field of the contact schema"),
                    )
                }
            }
            Term::EventField(f) => match event {
                None => err(
                    format!("{path}.event_field"),
                    "an event field is only read inside the `where` of an event",
                ),
                Some(e) => match self.plan.events.get(e) {
                    Some(def) if !def.fields.iter().any(|x| &x.name == f) => err(
                        format!("{path}.event_field"),
                        format!("the event `{e}` has no field `{f}`"),
                    ),
                    _ => Ok(()),
                },
            },
            Term::Timestamp(s) if !is_timestamp(s) => err(
                format!("{path}.timestamp"),
                format!("`{s}` is not an RFC 3339 timestamp such as 2026-01-15T09:00:00Z"),
            ),
            Term::Date(s) if s.parse::<jiff::civil::Date>().is_err() || s.len() != 10 => err(
                format!("{path}.date"),
                format!("`{s}` is not a date such as 2026-01-15"),
            ),
            Term::AgoSeconds(n) => at_least(&format!("{path}.ago_seconds"), "`ago_seconds`", *n, 0),
            Term::Number(n) if !n.is_finite() => {
                err(format!("{path}.number"), "a number must be finite")
            }
            Term::Offset { term, .. } => self.term(&format!("{path}.offset.term"), term, event),
            _ => Ok(()),
        }
    }

    fn trigger(&self, tp: &str, t: &Trigger) -> R {
        match t {
            Trigger::Joined { list } => self.list(&format!("{tp}.list"), list)?,
            Trigger::Event { event, filter } => {
                self.event(&format!("{tp}.event"), event)?;
                if let Some(f) = filter {
                    self.expr(&format!("{tp}.where"), f, Some(event))?;
                }
            }
            Trigger::Entered { segment } => self.segment(&format!("{tp}.segment"), segment)?,
            Trigger::Every { day, at } => {
                one_of(&format!("{tp}.day"), "a day", day, &DAYS)?;
                if !is_clock(at) {
                    return err(
                        format!("{tp}.at"),
                        format!("`{at}` is not a clock time `HH:MM` (pattern {CLOCK_PATTERN})"),
                    );
                }
            }
            Trigger::Once { at } => {
                if !is_timestamp(at) {
                    return err(
                        format!("{tp}.at"),
                        format!("`{at}` is not an RFC 3339 timestamp such as 2026-12-20T09:00:00Z"),
                    );
                }
            }
            Trigger::At { at, local_time } => {
                self.term(&format!("{tp}.at"), at, None)?;
                if let Some(c) = local_time
                    && !is_clock(c)
                {
                    return err(
                        format!("{tp}.local_time"),
                        format!("`{c}` is not a clock time `HH:MM` (pattern {CLOCK_PATTERN})"),
                    );
                }
            }
            Trigger::Yearly { field, at } => {
                if !self
                    .plan
                    .schema
                    .fields
                    .iter()
                    .any(|f| &f.name == field && matches!(f.ty.as_str(), "date" | "timestamp"))
                {
                    return err(
                        format!("{tp}.field"),
                        format!("`{field}` is not a date or timestamp field of the contact schema"),
                    );
                }
                if !is_clock(at) {
                    return err(
                        format!("{tp}.at"),
                        format!("`{at}` is not a clock time `HH:MM` (pattern {CLOCK_PATTERN})"),
                    );
                }
            }
            Trigger::Monthly { day, at } => {
                if day != "last" && !day.parse::<u8>().is_ok_and(|d| (1..=28).contains(&d)) {
                    return err(
                        format!("{tp}.day"),
                        format!("`{day}` is not a day of every month: `1` to `28`, or `last`"),
                    );
                }
                if !is_clock(at) {
                    return err(
                        format!("{tp}.at"),
                        format!("`{at}` is not a clock time `HH:MM` (pattern {CLOCK_PATTERN})"),
                    );
                }
            }
            Trigger::OnceLocal { date, at } => {
                if date.len() != 10 || date.parse::<jiff::civil::Date>().is_err() {
                    return err(
                        format!("{tp}.date"),
                        format!("`{date}` is not a date `YYYY-MM-DD`"),
                    );
                }
                if !is_clock(at) {
                    return err(
                        format!("{tp}.at"),
                        format!("`{at}` is not a clock time `HH:MM` (pattern {CLOCK_PATTERN})"),
                    );
                }
            }
        }
        Ok(())
    }

    /// A goal's `value`: a number field of its event.
    fn goal_value(&self, path: &str, event: &str, field: &str) -> R {
        let ty = self
            .plan
            .events
            .get(event)
            .and_then(|e| e.fields.iter().find(|f| f.name == field))
            .map(|f| f.ty.as_str());
        match ty {
            Some("number") => Ok(()),
            Some(t) => err(
                path,
                format!("`{field}` of event `{event}` is a `{t}`, not a number"),
            ),
            None => err(path, format!("the event `{event}` has no field `{field}`")),
        }
    }

    fn scenario(&self, path: &str, s: &Scenario) -> R {
        if let Some(a) = &s.audience {
            self.expr(&format!("{path}.audience"), a, None)?;
        }
        self.trigger(&format!("{path}.trigger"), &s.trigger)?;
        for (i, t) in s.more_triggers.iter().enumerate() {
            self.trigger(&format!("{path}.more_triggers[{i}]"), t)?;
        }
        if let Reentry::After { seconds } = s.reentry {
            at_least(
                &format!("{path}.reentry.seconds"),
                "a re-entry delay",
                seconds,
                0,
            )?;
        }
        if let Some(x) = &s.exit_when {
            self.expr(&format!("{path}.exit_when"), x, None)?;
        }
        for (i, g) in s.goals.iter().enumerate() {
            let gp = format!("{path}.goals[{i}]");
            match &g.joined {
                Some(list) if g.event.is_empty() => self.list(&format!("{gp}.joined"), list)?,
                Some(_) => {
                    return err(gp, "a goal has an `event` or a `joined` list, not both");
                }
                None => self.event(&format!("{gp}.event"), &g.event)?,
            }
            if let Some(f) = &g.filter {
                self.expr(&format!("{gp}.where"), f, Some(&g.event))?;
            }
            if let Some(v) = &g.value {
                self.goal_value(&format!("{gp}.value"), &g.event, v)?;
            }
            at_least(
                &format!("{path}.goals[{i}].within_seconds"),
                "a goal's window",
                g.within_seconds,
                0,
            )?;
        }
        let own = |p: String, id: &Option<String>| -> R {
            match id {
                Some(id) if !s.steps.contains_key(id) => err(
                    p,
                    format!(
                        "`{id}` is not a step of this scenario: `next` names a step of its own scenario, or is null"
                    ),
                ),
                _ => Ok(()),
            }
        };
        match (&s.entry, s.steps.is_empty()) {
            (None, false) => {
                return err(
                    format!("{path}.entry"),
                    "the scenario has steps but no `entry` (the first step's id)",
                );
            }
            (Some(_), true) => {
                return err(
                    format!("{path}.entry"),
                    "the scenario has no steps: `entry` must be null",
                );
            }
            _ => own(format!("{path}.entry"), &s.entry)?,
        }
        for (id, step) in &s.steps {
            let sp = format!("{path}.steps{}", key(id));
            match step {
                Step::Send { template, next } => {
                    self.template(&format!("{sp}.template"), template)?;
                    own(format!("{sp}.next"), next)?;
                }
                Step::Wait { seconds, next, .. } => {
                    if *seconds < 0 {
                        return err(
                            format!("{sp}.seconds"),
                            format!("a wait must not be negative (found {seconds})"),
                        );
                    }
                    own(format!("{sp}.next"), next)?;
                }
                Step::WaitUntilTime { until, next } => {
                    self.term(&format!("{sp}.until"), until, None)?;
                    own(format!("{sp}.next"), next)?;
                }
                Step::WaitUntil {
                    until,
                    timeout_seconds,
                    next,
                } => {
                    self.expr(&format!("{sp}.until"), until, None)?;
                    if *timeout_seconds < 0 {
                        return err(
                            format!("{sp}.timeout_seconds"),
                            format!(
                                "a `wait until` timeout must not be negative (found {timeout_seconds})"
                            ),
                        );
                    }
                    own(format!("{sp}.next"), next)?;
                }
                Step::Branch { arms, otherwise } => {
                    for (i, a) in arms.iter().enumerate() {
                        if let Some(w) = &a.when {
                            self.expr(&format!("{sp}.arms[{i}].when"), w, None)?;
                        }
                        own(format!("{sp}.arms[{i}].next"), &a.next)?;
                    }
                    own(format!("{sp}.otherwise"), otherwise)?;
                }
                Step::Split { arms } => {
                    let mut last = 0.0;
                    for (i, a) in arms.iter().enumerate() {
                        let ap = format!("{sp}.arms[{i}]");
                        if !(0.0..=100.0).contains(&a.share) {
                            return err(format!("{ap}.share"), "a share is a percentage, 0 to 100");
                        }
                        if !(0.0..=100.0).contains(&a.upto) || a.upto < last {
                            return err(
                                format!("{ap}.upto"),
                                "`upto` is the cumulative share: 0 to 100, never decreasing",
                            );
                        }
                        last = a.upto;
                        own(format!("{ap}.next"), &a.next)?;
                    }
                    if arms.is_empty() {
                        return err(format!("{sp}.arms"), "a split needs at least one arm");
                    }
                }
                Step::Join { list, next } | Step::Leave { list, next } => {
                    self.list(&format!("{sp}.list"), list)?;
                    own(format!("{sp}.next"), next)?;
                }
                Step::Tag { next, .. } | Step::Untag { next, .. } => {
                    own(format!("{sp}.next"), next)?;
                }
                Step::Start { cadence, next } => {
                    if !self.plan.cadences.contains_key(cadence) {
                        return err(
                            format!("{sp}.cadence"),
                            format!("the plan names a cadence `{cadence}` it does not define"),
                        );
                    }
                    own(format!("{sp}.next"), next)?;
                }
                Step::Exit => {}
            }
        }
        step_cycles(path, s)
    }

    fn cadence(
        &self,
        path: &str,
        c: &'p Cadence,
        steps: &HashMap<&str, &str>,
        touch_ids: &mut BTreeSet<&'p str>,
    ) -> R {
        if let Some(x) = &c.stop_when {
            self.expr(&format!("{path}.stop_when"), x, None)?;
        }
        at_least(
            &format!("{path}.spacing_seconds"),
            "the spacing",
            c.spacing_seconds,
            0,
        )?;
        for (i, t) in c.touches.iter().enumerate() {
            let tp = format!("{path}.touches[{i}]");
            if steps.contains_key(t.id.as_str()) || !touch_ids.insert(&t.id) {
                return err(
                    format!("{tp}.id"),
                    format!(
                        "the id `{}` is used twice: step and touch ids are unique",
                        t.id
                    ),
                );
            }
            self.template(&format!("{tp}.template"), &t.template)?;
            if let Some(w) = &t.when {
                self.expr(&format!("{tp}.when"), w, None)?;
            }
            at_least(
                &format!("{tp}.after_seconds"),
                "a touch's delay",
                t.after_seconds,
                0,
            )?;
        }
        Ok(())
    }

    /// Segments that name each other in a cycle would never finish.
    fn segment_cycles(&self) -> R {
        let refs: BTreeMap<&str, Vec<&str>> = self
            .plan
            .segments
            .iter()
            .map(|(n, e)| {
                let mut out = Vec::new();
                segment_refs(e, &mut out);
                (n.as_str(), out)
            })
            .collect();
        if let Some(n) = find_cycle(&refs) {
            return err(
                format!("$.segments{}", key(n)),
                format!("the segment `{n}` depends on itself through the segments it names"),
            );
        }
        Ok(())
    }
}

fn segment_refs<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::And { args } | Expr::Or { args } => stack.extend(args),
            Expr::Not { arg } => stack.push(arg),
            Expr::Segment { name } => out.push(name),
            Expr::Aggregate {
                filter: Some(f), ..
            } => stack.push(f),
            _ => {}
        }
    }
}

/// A node on a cycle of `graph`, if any (iterative depth-first search).
fn find_cycle<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<&'a str> {
    // 0: unseen, 1: on the stack, 2: done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    for &root in graph.keys() {
        if state.contains_key(root) {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(root, 0)];
        state.insert(root, 1);
        while let Some((node, i)) = stack.pop() {
            let next = graph.get(node).and_then(|v| v.get(i)).copied();
            match next {
                None => {
                    state.insert(node, 2);
                }
                Some(n) => {
                    stack.push((node, i + 1));
                    match state.get(n) {
                        Some(1) => return Some(n),
                        Some(_) => {}
                        None if graph.contains_key(n) => {
                            state.insert(n, 1);
                            stack.push((n, 0));
                        }
                        None => {}
                    }
                }
            }
        }
    }
    None
}

/// A step that leads back to itself would loop within one instant.
fn step_cycles(path: &str, s: &Scenario) -> R {
    let graph: BTreeMap<&str, Vec<&str>> = s
        .steps
        .iter()
        .map(|(id, st)| {
            let next: Vec<&str> = match st {
                Step::Send { next, .. }
                | Step::Wait { next, .. }
                | Step::WaitUntil { next, .. }
                | Step::WaitUntilTime { next, .. }
                | Step::Join { next, .. }
                | Step::Leave { next, .. }
                | Step::Tag { next, .. }
                | Step::Untag { next, .. }
                | Step::Start { next, .. } => next.iter().map(String::as_str).collect(),
                Step::Branch { arms, otherwise } => arms
                    .iter()
                    .filter_map(|a| a.next.as_deref())
                    .chain(otherwise.as_deref())
                    .collect(),
                Step::Split { arms } => arms.iter().filter_map(|a| a.next.as_deref()).collect(),
                Step::Exit => Vec::new(),
            };
            (id.as_str(), next)
        })
        .collect();
    match find_cycle(&graph) {
        Some(id) => err(
            format!("{path}.steps{}", key(id)),
            format!("the step `{id}` leads back to itself: a scenario's steps never loop"),
        ),
        None => Ok(()),
    }
}
