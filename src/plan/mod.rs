//! The executable plan: what a runner executes, as versioned, deterministic
//! JSON. Built from a checked project ([`build_plan`]); documented in
//! `docs/plan.md` with a JSON Schema in `docs/plan.schema.json`.
//!
//! Every map is a `BTreeMap` and every list keeps source order, so the same
//! project always serialises to the same bytes.

mod build;
mod senders;
mod validate;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use build::{build_plan, lower_expr, resolve_in_dir, resolve_template_path};
pub use validate::{PlanError, parse_plan, validate};

/// Bumped whenever a runner would read an older plan differently: 2 adds
/// the v1.1 keys (LANGUAGE.md §12), which a version-1 runner would ignore.
/// A version-1 plan holds none of them and reads the same under version 2,
/// so both are accepted.
pub const PLAN_VERSION: u32 = 2;

/// The oldest plan version this relance reads.
pub const OLDEST_PLAN_VERSION: u32 = 1;

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
pub const DAYS: [&str; 9] = [
    "day",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "weekday",
];
/// `day` of a `monthly` trigger: `1` to `28`, or `last`.
pub const MONTH_DAY_PATTERN: &str = "^([1-9]|1[0-9]|2[0-8]|last)$";
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
    #[schemars(range(min = 1, max = 2))]
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
    /// Subscription topics by name (`topic NAME "label"`); absent when the
    /// project declares none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topics: BTreeMap<String, Topic>,
    /// Consent rules by channel (`consent sms = …`): a marketing message on
    /// that channel is sent only when the rule holds at send time. Absent
    /// when the project has none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "enum": ["email", "sms", "push"] }))]
    pub consent: BTreeMap<String, Expr>,
    /// The partials the templates' parts use (`{{> footer}}` is
    /// `templates/partials/footer.hbs`), directly or through other
    /// partials, by name: what a runner needs besides the parts to render a
    /// message. Absent when no template uses one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partials: BTreeMap<String, Partial>,
    /// The compiled `matches` patterns (built on first evaluation; never
    /// serialized).
    #[serde(skip)]
    #[schemars(skip)]
    pub patterns: crate::eval::text::Patterns,
}

/// A partial (`templates/partials/NAME.hbs`): rendered with the escaping
/// of the part that includes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Partial {
    /// The partial file's project-relative path.
    pub source: String,
    /// The Handlebars source text.
    pub text: String,
    #[schemars(regex(pattern = SHA256_PATTERN))]
    pub sha256: String,
}

/// `topic newsletter "The monthly newsletter"`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// What contacts see on the preferences page.
    pub label: String,
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
        /// `count distinct(EVENT.FIELD)`: the number of distinct present
        /// values of `field` among the matching events (v1.1).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        distinct: bool,
    },
    /// `value starts_with prefix` (v1.1): both texts; absent is false.
    StartsWith {
        value: Term,
        prefix: Term,
    },
    /// `value ends_with suffix` (v1.1): both texts; absent is false.
    EndsWith {
        value: Term,
        suffix: Term,
    },
    /// `value matches "pattern"` (v1.1): a regular expression in the syntax
    /// of the `regex-lite` crate, searched anywhere in the text (anchor it
    /// with `^` and `$`); linear time in the text's length.
    Matches {
        value: Term,
        pattern: String,
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
    /// A timestamp or date moved by a signed number of seconds
    /// (`trial_ends_at - 3d`, `now + 7d`). A date moved by whole days is a
    /// date; by anything else, the instant of its UTC midnight moved.
    Offset {
        term: Box<Term>,
        seconds: i64,
    },
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
    /// The subscription topic (`topic = NAME`), a key of the plan's
    /// `topics`; absent when the template names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// `expires = D`: a message deferred by pressure past its first due
    /// time plus this many seconds is dropped (counted `expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub expires_seconds: Option<i64>,
    /// `priority = high | normal | low` as written (absent: `normal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["high", "normal", "low"]))]
    pub priority: Option<String>,
    /// Tasks (v1.1): the task is due this long after it is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub due_seconds: Option<i64>,
    /// Webhooks (v1.1): the HTTP method when the template sets one;
    /// absent means `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["POST", "PUT", "PATCH"]))]
    pub method: Option<String>,
    /// Webhooks (v1.1): the `header` lines, in order. A value is literal
    /// text and names of environment variables that the runner reads at
    /// send time; their values are never in the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<RequestHeader>,
    /// Per-locale variants (§12): locale → the parts that replace those of
    /// `parts` for the contacts of that locale (`subject.en` is
    /// `variants.en.subject`). Absent when the template has none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variants: BTreeMap<String, BTreeMap<String, Part>>,
}

/// `header "Authorization" = "Bearer " + env("CRM_TOKEN")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestHeader {
    pub name: String,
    pub value: Vec<HeaderPiece>,
}

/// `{"text": "Bearer "}` or `{"env": "CRM_TOKEN"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum HeaderPiece {
    Text(String),
    /// The name of an environment variable of the runner.
    Env(String),
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
    /// The triggers after the first (`trigger`), in declaration order: any
    /// of them starts a run too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_triggers: Vec<Trigger>,
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
    /// When the point in time `at` (a term over the contact) arrives; with
    /// `local_time`, at that contact-local time on the local date of the
    /// instant. At most once per value of the instant.
    At {
        at: Term,
        #[serde(deserialize_with = "Option::deserialize")]
        #[schemars(regex(pattern = CLOCK_PATTERN))]
        local_time: Option<String>,
    },
    /// Every anniversary of the contact's date or timestamp `field`, at
    /// contact-local `at`; 29 February falls on 28 February in other years.
    Yearly {
        field: String,
        #[schemars(regex(pattern = CLOCK_PATTERN))]
        at: String,
    },
    /// `every month on 3 09:30`: contact-local; `day` is `1`–`28` or `last`.
    Monthly {
        #[schemars(regex(pattern = MONTH_DAY_PATTERN))]
        day: String,
        #[schemars(regex(pattern = CLOCK_PATTERN))]
        at: String,
    },
    /// `once at 2026-12-01 09:00 local`: that local date and time in each
    /// contact's zone.
    OnceLocal {
        #[schemars(regex(pattern = DATE_PATTERN))]
        date: String,
        #[schemars(regex(pattern = CLOCK_PATTERN))]
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
    /// The goal event; empty for a `joined` goal.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event: String,
    #[schemars(range(min = 0))]
    pub within_seconds: i64,
    /// `where EXPR`, in the event's scope.
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Expr>,
    /// `value FIELD`: a number field of the event, summed per scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `goal joined LIST within D`: the list (and no event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined: Option<String>,
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
    /// `wait D`; `wait N business days` has `business_days` and, as
    /// `seconds`, N days (its shortest length, for readers that ignore it).
    Wait {
        #[schemars(range(min = 0))]
        seconds: i64,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        business_days: Option<u32>,
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
    /// Waits until the point in time `until` (a term over the contact);
    /// goes on at once when it has passed or is absent, and is re-timed
    /// when the contact's fields change while the run waits.
    WaitUntilTime {
        until: Term,
        #[serde(deserialize_with = "Option::deserialize")]
        next: Option<String>,
    },
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
    /// `spacing = N business days` (then `spacing_seconds` is N days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spacing_business_days: Option<u32>,
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
    /// The delay in business days (`after 1 business day`, or the
    /// cadence's spacing in business days); `after_seconds` is then N days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_business_days: Option<u32>,
    /// `touch T when EXPR`: skipped when false as it comes due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expr>,
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
    /// The quiet rules beyond `quiet` (v1.1): `quiet weekends`, rules
    /// scoped to a channel, further intervals. A message obeys every rule
    /// that applies to it (`quiet` included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quiet_rules: Vec<QuietRule>,
}

/// One quiet rule of v1.1: `quiet sms 20:00 to 10:00`, `quiet weekends`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietRule {
    /// The channel the rule holds (every message of it, operational ones
    /// included); `None`: marketing messages of every channel.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schemars(extend("enum" = ["email", "sms", "push", "task", "webhook", null]))]
    pub channel: Option<String>,
    /// `hours` (`start`, `end` contact-local, `[start, end)`) or
    /// `weekends` (Saturday and Sunday, contact-local).
    #[schemars(extend("enum" = ["hours", "weekends"]))]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CLOCK_PATTERN))]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CLOCK_PATTERN))]
    pub end: Option<String>,
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
