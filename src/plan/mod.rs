//! The executable plan: what a runner executes, as versioned, deterministic
//! JSON. Built from a checked project ([`build_plan`]); documented in
//! `docs/plan.md` with a JSON Schema in `docs/plan.schema.json`.
//!
//! Every map is a `BTreeMap` and every list keeps source order, so the same
//! project always serialises to the same bytes.

mod build;
mod validate;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use build::{build_plan, lower_expr, resolve_in_dir, resolve_template_path};
pub use validate::{PlanError, parse_plan, validate};

/// Bumped whenever a runner would read an older plan differently.
pub const PLAN_VERSION: u32 = 1;

/// The channels a template sends on, in the runner's order.
pub const CHANNELS: [&str; 5] = ["email", "sms", "push", "task", "webhook"];
/// Contact and event field types.
pub const FIELD_TYPES: [&str; 11] = [
    "text",
    "number",
    "bool",
    "date",
    "timestamp",
    "email",
    "phone",
    "device",
    "timezone",
    "enum",
    "set<text>",
];
/// Comparison operators of `compare` and `aggregate`.
pub const COMPARISONS: [&str; 6] = ["==", "!=", "<", "<=", ">", ">="];
/// Engagement events an `engagement` expression counts.
pub const ENGAGEMENTS: [&str; 5] = ["opened", "clicked", "delivered", "replied", "bounced"];
/// Aggregate functions.
pub const AGGREGATES: [&str; 5] = ["count", "sum", "min", "max", "avg"];
/// `day` of an `every` trigger.
pub const DAYS: [&str; 8] = [
    "day",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
/// A contact-local clock time, `HH:MM`.
pub const CLOCK_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
/// An RFC 3339 timestamp with an offset.
pub const TIMESTAMP_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";
/// A calendar date, `YYYY-MM-DD`.
pub const DATE_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";
/// A SHA-256 in lower-case hex.
pub const SHA256_PATTERN: &str = "^[0-9a-f]{64}$";

/// The schema of a time-zone name: a zone of the IANA database bundled in
/// relance, or `null`.
fn time_zone_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut names: Vec<serde_json::Value> = crate::tzdb::names()
        .into_iter()
        .map(serde_json::Value::String)
        .collect();
    names.push(serde_json::Value::Null);
    schemars::json_schema!({
        "description": "IANA zone of the bundled database; contacts without a zone of their own use it. `null`: UTC.",
        "enum": names,
    })
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    #[schemars(range(min = 1, max = 1))]
    pub plan_version: u32,
    /// The release of the IANA time-zone database bundled in the relance
    /// that built the plan (such as `2025b`); the runner uses its own
    /// bundled database and says so when the two differ.
    #[serde(default)]
    pub tzdb: String,
    pub workspace: Workspace,
    pub schema: Schema,
    pub events: BTreeMap<String, EventType>,
    pub lists: BTreeMap<String, List>,
    pub segments: BTreeMap<String, Expr>,
    pub templates: BTreeMap<String, Template>,
    pub scenarios: BTreeMap<String, Scenario>,
    pub cadences: BTreeMap<String, Cadence>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub pressure: Option<Pressure>,
    /// Scenario names in declaration order: scenarios triggered at the same
    /// instant start, and take pressure slots, in this order (§10).
    pub scenario_order: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    #[serde(deserialize_with = "Option::deserialize")]
    pub name: Option<String>,
    /// IANA zone; contacts without a zone of their own use it. `None`: UTC.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schemars(schema_with = "time_zone_schema")]
    pub timezone: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub from: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub address: Option<String>,
    /// The locales of the project (§12), `[fr, en]`; absent without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locales: Vec<String>,
    /// The contact field whose value picks a contact's locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale_field: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub fields: Vec<Field>,
    /// The field each channel sends to (`email`, `sms`, `push`): the first
    /// field of the channel's address type.
    #[schemars(extend("propertyNames" = { "enum": ["email", "sms", "push"] }))]
    pub address_fields: BTreeMap<String, String>,
    /// The contact's `timezone` field, if the schema has one.
    #[serde(deserialize_with = "Option::deserialize")]
    pub timezone_field: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    /// `text`, `number`, `bool`, `date`, `timestamp`, `email`, `phone`,
    /// `device`, `timezone`, `enum` or `set<text>`.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = FIELD_TYPES))]
    pub ty: String,
    pub optional: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variants: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventType {
    pub builtin: bool,
    pub fields: Vec<Field>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct List {
    pub on_join: Vec<ListAction>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ListAction {
    Join { list: String },
    Leave { list: String },
    Tag { tag: String },
    Untag { tag: String },
}

/// A normalised predicate: names resolved, `and`/`or` flattened, `not in`
/// and `is not set` written as `not`, variants on the right.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Expr {
    Const {
        value: bool,
    },
    And {
        args: Vec<Expr>,
    },
    Or {
        args: Vec<Expr>,
    },
    Not {
        arg: Box<Expr>,
    },
    /// Membership of a segment (evaluated by its own tree).
    Segment {
        name: String,
    },
    /// Membership of a list.
    List {
        name: String,
    },
    /// A bool field (of the contact, or of the event inside `where`).
    Flag {
        value: Term,
    },
    Compare {
        #[schemars(extend("enum" = COMPARISONS))]
        cmp: String,
        left: Term,
        right: Term,
    },
    In {
        value: Term,
        list: Vec<Term>,
    },
    Contains {
        haystack: Term,
        needle: Term,
    },
    IsSet {
        value: Term,
    },
    /// `opened(T)`, `clicked(T.link)`, `replied(any)`…; `scope` is `run`
    /// inside a scenario or cadence (only the current run's messages), else
    /// `all`.
    Engagement {
        #[schemars(extend("enum" = ENGAGEMENTS))]
        event: String,
        #[serde(deserialize_with = "Option::deserialize")]
        template: Option<String>,
        #[serde(deserialize_with = "Option::deserialize")]
        link: Option<String>,
        #[serde(deserialize_with = "Option::deserialize")]
        since: Option<Term>,
        #[schemars(extend("enum" = ["run", "all"]))]
        scope: String,
    },
    Aggregate {
        #[schemars(extend("enum" = AGGREGATES))]
        function: String,
        event: String,
        #[serde(deserialize_with = "Option::deserialize")]
        field: Option<String>,
        #[serde(rename = "where")]
        #[serde(deserialize_with = "Option::deserialize")]
        filter: Option<Box<Expr>>,
        #[serde(deserialize_with = "Option::deserialize")]
        since: Option<Term>,
        #[schemars(extend("enum" = COMPARISONS))]
        cmp: String,
        value: Term,
    },
}

/// A value in an expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    /// A contact field (`id` and `tags` included).
    Field(String),
    /// A field of the event inside `where`.
    EventField(String),
    Text(String),
    Number(f64),
    Bool(bool),
    /// RFC 3339, UTC.
    Timestamp(#[schemars(regex(pattern = TIMESTAMP_PATTERN))] String),
    /// `YYYY-MM-DD`.
    Date(#[schemars(regex(pattern = DATE_PATTERN))] String),
    /// The reference time minus this many seconds (`14d ago`).
    AgoSeconds(#[schemars(range(min = 0))] i64),
    /// The reference time.
    Now(bool),
    /// An enum variant.
    Variant(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    #[schemars(extend("enum" = CHANNELS))]
    pub channel: String,
    /// `marketing`, `transactional` or `operational` (task, webhook).
    #[schemars(extend("enum" = ["marketing", "transactional", "operational"]))]
    pub kind: String,
    /// The contact field the message is addressed to (email, sms, push).
    #[serde(deserialize_with = "Option::deserialize")]
    pub address_field: Option<String>,
    /// Body parts by name (`subject`, `html`, `body`, …).
    pub parts: BTreeMap<String, Part>,
    /// Tracked links by name; each URL is a template (escape `url`).
    pub links: BTreeMap<String, String>,
    /// The names of `links` in declaration order: the order in which
    /// `{{#each links}}` visits them (a JSON object's order is not kept by
    /// every reader).
    pub link_order: Vec<String>,
    /// Headers a runner must add to each send (RFC 8058 one-click
    /// unsubscribe for marketing email; the URL is the contact's
    /// `unsubscribe_url`).
    pub headers: BTreeMap<String, String>,
    /// SHA-256 over every part, for change detection.
    #[schemars(regex(pattern = SHA256_PATTERN))]
    pub content_hash: String,
    /// Per-locale variants (§12): locale → the parts that replace those of
    /// `parts` for the contacts of that locale (`subject.en` is
    /// `variants.en.subject`). Absent when the template has none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, BTreeMap<String, Part>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// `inline` or the template file's path relative to the project.
    pub source: String,
    /// The Handlebars source text.
    pub text: String,
    /// `html`, `json` (webhook bodies), `url` (webhook URLs: inserted
    /// values percent-encoded) or `none`.
    #[schemars(extend("enum" = ["html", "json", "url", "none"]))]
    pub escape: String,
    #[schemars(regex(pattern = SHA256_PATTERN))]
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(deserialize_with = "Option::deserialize")]
    pub audience: Option<Expr>,
    pub trigger: Trigger,
    pub reentry: Reentry,
    #[serde(deserialize_with = "Option::deserialize")]
    pub exit_when: Option<Expr>,
    pub goals: Vec<Goal>,
    /// The first step's id; `None` for a scenario without steps.
    #[serde(deserialize_with = "Option::deserialize")]
    pub entry: Option<String>,
    /// Steps by stable id: `SCENARIO/2` is the third top-level step,
    /// `SCENARIO/2.1.0` the first step of the second arm of that branch.
    pub steps: BTreeMap<String, Step>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    Joined {
        list: String,
    },
    Event {
        event: String,
        #[serde(rename = "where")]
        #[serde(deserialize_with = "Option::deserialize")]
        filter: Option<Expr>,
    },
    Entered {
        segment: String,
    },
    /// Contact-local time; `day` is `day` or a weekday.
    Every {
        #[schemars(extend("enum" = DAYS))]
        day: String,
        #[schemars(regex(pattern = CLOCK_PATTERN))]
        at: String,
    },
    Once {
        #[schemars(regex(pattern = TIMESTAMP_PATTERN))]
        at: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Reentry {
    Never,
    Always,
    After {
        #[schemars(range(min = 0))]
        seconds: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    pub event: String,
    #[schemars(range(min = 0))]
    pub within_seconds: i64,
}

/// One node of a run's state machine. `next` is the step that follows, or
/// `None` when the run ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    Send {
        template: String,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
    },
    Wait {
        #[schemars(range(min = 0))]
        seconds: i64,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
    },
    WaitUntil {
        until: Expr,
        #[schemars(range(min = 0))]
        timeout_seconds: i64,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
    },
    /// The first arm whose `when` holds (no `when`: `else`) is taken;
    /// with none, `otherwise`.
    Branch {
        arms: Vec<BranchArm>,
        #[serde(deserialize_with = "Option::deserialize")]
        otherwise: Option<String>,
    },
    /// Arms by cumulative share: a contact whose bucket (SHA-256 of
    /// `scenario/contact-id` modulo 100) is below `upto` takes the arm.
    Split {
        arms: Vec<SplitArm>,
    },
    Join {
        list: String,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
    },
    Leave {
        list: String,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
    },
    Tag {
        tag: String,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
    },
    Untag {
        tag: String,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
    },
    /// Runs the cadence to its end, then goes on.
    Start {
        cadence: String,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
    },
    Exit,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchArm {
    #[serde(deserialize_with = "Option::deserialize")]
    pub when: Option<Expr>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub next: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitArm {
    #[schemars(range(min = 0, max = 100))]
    pub share: f64,
    #[schemars(range(min = 0, max = 100))]
    pub upto: f64,
    #[serde(deserialize_with = "Option::deserialize")]
    pub next: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cadence {
    #[serde(deserialize_with = "Option::deserialize")]
    pub stop_when: Option<Expr>,
    #[schemars(range(min = 0))]
    pub spacing_seconds: i64,
    pub touches: Vec<Touch>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Touch {
    /// Stable id: `CADENCE/INDEX`.
    pub id: String,
    pub template: String,
    /// Delay after the previous touch (after the start for the first).
    #[schemars(range(min = 0))]
    pub after_seconds: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pressure {
    pub caps: Vec<Cap>,
    #[serde(deserialize_with = "Option::deserialize")]
    #[schemars(range(min = 0))]
    pub gap_seconds: Option<i64>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub quiet: Option<Quiet>,
    /// `defer` or `drop`.
    #[schemars(extend("enum" = ["defer", "drop"]))]
    pub on_excess: String,
    #[serde(deserialize_with = "Option::deserialize")]
    pub under_below: Option<UnderBelow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// A channel or `all`.
    #[schemars(extend("enum" = ["email", "sms", "push", "task", "webhook", "all"]))]
    pub scope: String,
    #[schemars(range(min = 1))]
    pub max: u32,
    #[schemars(range(min = 1))]
    pub per_seconds: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quiet {
    /// `HH:MM`, contact-local; the interval is `[start, end)`.
    #[schemars(regex(pattern = CLOCK_PATTERN))]
    pub start: String,
    #[schemars(regex(pattern = CLOCK_PATTERN))]
    pub end: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnderBelow {
    pub count: u32,
    #[schemars(range(min = 1))]
    pub per_seconds: i64,
}

impl Plan {
    /// The JSON Schema of `plan.json` (checked in as `docs/plan.schema.json`).
    pub fn json_schema() -> String {
        // The serialising contract: every key `relance build` writes is
        // required (`null` when empty), as the runner requires it.
        let schema = schemars::generate::SchemaSettings::default()
            .for_serialize()
            .into_generator()
            .into_root_schema_for::<Plan>();
        let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The plan as pretty JSON with a final newline: the bytes of `plan.json`.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}
