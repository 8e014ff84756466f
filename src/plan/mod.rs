//! The executable plan: what a runner executes, as versioned, deterministic
//! JSON. Built from a checked project ([`build_plan`]); documented in
//! `docs/plan.md` with a JSON Schema in `docs/plan.schema.json`.
//!
//! Every map is a `BTreeMap` and every list keeps source order, so the same
//! project always serialises to the same bytes.

mod build;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use build::{build_plan, lower_expr, resolve_in_dir, resolve_template_path};

/// Bumped whenever a runner would read an older plan differently.
pub const PLAN_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
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
    pub pressure: Option<Pressure>,
    /// Scenario names in declaration order: scenarios triggered at the same
    /// instant start, and take pressure slots, in this order (§10).
    pub scenario_order: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Workspace {
    pub name: Option<String>,
    /// IANA zone; contacts without a zone of their own use it. `None`: UTC.
    pub timezone: Option<String>,
    pub from: Option<String>,
    pub address: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Schema {
    pub fields: Vec<Field>,
    /// The field each channel sends to (`email`, `sms`, `push`): the first
    /// field of the channel's address type.
    pub address_fields: BTreeMap<String, String>,
    /// The contact's `timezone` field, if the schema has one.
    pub timezone_field: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Field {
    pub name: String,
    /// `text`, `number`, `bool`, `date`, `timestamp`, `email`, `phone`,
    /// `device`, `timezone`, `enum` or `set<text>`.
    #[serde(rename = "type")]
    pub ty: String,
    pub optional: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variants: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventType {
    pub builtin: bool,
    pub fields: Vec<Field>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct List {
    pub on_join: Vec<ListAction>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
        event: String,
        template: Option<String>,
        link: Option<String>,
        since: Option<Term>,
        scope: String,
    },
    Aggregate {
        function: String,
        event: String,
        field: Option<String>,
        #[serde(rename = "where")]
        filter: Option<Box<Expr>>,
        since: Option<Term>,
        cmp: String,
        value: Term,
    },
}

/// A value in an expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    Timestamp(String),
    /// `YYYY-MM-DD`.
    Date(String),
    /// The reference time minus this many seconds (`14d ago`).
    AgoSeconds(i64),
    /// The reference time.
    Now(bool),
    /// An enum variant.
    Variant(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Template {
    pub channel: String,
    /// `marketing`, `transactional` or `operational` (task, webhook).
    pub kind: String,
    /// The contact field the message is addressed to (email, sms, push).
    pub address_field: Option<String>,
    /// Body parts by name (`subject`, `html`, `body`, …).
    pub parts: BTreeMap<String, Part>,
    pub links: BTreeMap<String, String>,
    /// Headers a runner must add to each send (RFC 8058 one-click
    /// unsubscribe for marketing email; the URL is the contact's
    /// `unsubscribe_url`).
    pub headers: BTreeMap<String, String>,
    /// SHA-256 over every part, for change detection.
    pub content_hash: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Part {
    /// `inline` or the template file's path relative to the project.
    pub source: String,
    /// The Handlebars source text.
    pub text: String,
    /// `html`, `json` (webhook bodies) or `none`.
    pub escape: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Scenario {
    pub audience: Option<Expr>,
    pub trigger: Trigger,
    pub reentry: Reentry,
    pub exit_when: Option<Expr>,
    pub goals: Vec<Goal>,
    /// The first step's id; `None` for a scenario without steps.
    pub entry: Option<String>,
    /// Steps by stable id: `SCENARIO/2` is the third top-level step,
    /// `SCENARIO/2.1.0` the first step of the second arm of that branch.
    pub steps: BTreeMap<String, Step>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    Joined {
        list: String,
    },
    Event {
        event: String,
        #[serde(rename = "where")]
        filter: Option<Expr>,
    },
    Entered {
        segment: String,
    },
    /// Contact-local time; `day` is `day` or a weekday.
    Every {
        day: String,
        at: String,
    },
    Once {
        at: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "policy", rename_all = "snake_case")]
pub enum Reentry {
    Never,
    Always,
    After { seconds: i64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Goal {
    pub event: String,
    pub within_seconds: i64,
}

/// One node of a run's state machine. `next` is the step that follows, or
/// `None` when the run ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    Send {
        template: String,
        next: Option<String>,
    },
    Wait {
        seconds: i64,
        next: Option<String>,
    },
    WaitUntil {
        until: Expr,
        timeout_seconds: i64,
        next: Option<String>,
    },
    /// The first arm whose `when` holds (no `when`: `else`) is taken;
    /// with none, `otherwise`.
    Branch {
        arms: Vec<BranchArm>,
        otherwise: Option<String>,
    },
    /// Arms by cumulative share: a contact whose bucket (SHA-256 of
    /// `scenario/contact-id` modulo 100) is below `upto` takes the arm.
    Split {
        arms: Vec<SplitArm>,
    },
    Join {
        list: String,
        next: Option<String>,
    },
    Leave {
        list: String,
        next: Option<String>,
    },
    Tag {
        tag: String,
        next: Option<String>,
    },
    Untag {
        tag: String,
        next: Option<String>,
    },
    /// Runs the cadence to its end, then goes on.
    Start {
        cadence: String,
        next: Option<String>,
    },
    Exit,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BranchArm {
    pub when: Option<Expr>,
    pub next: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SplitArm {
    pub share: f64,
    pub upto: f64,
    pub next: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cadence {
    pub stop_when: Option<Expr>,
    pub spacing_seconds: i64,
    pub touches: Vec<Touch>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Touch {
    /// Stable id: `CADENCE/INDEX`.
    pub id: String,
    pub template: String,
    /// Delay after the previous touch (after the start for the first).
    pub after_seconds: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Pressure {
    pub caps: Vec<Cap>,
    pub gap_seconds: Option<i64>,
    pub quiet: Option<Quiet>,
    /// `defer` or `drop`.
    pub on_excess: String,
    pub under_below: Option<UnderBelow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cap {
    /// A channel or `all`.
    pub scope: String,
    pub max: u32,
    pub per_seconds: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Quiet {
    /// `HH:MM`, contact-local; the interval is `[start, end)`.
    pub start: String,
    pub end: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UnderBelow {
    pub count: u32,
    pub per_seconds: i64,
}

impl Plan {
    /// The JSON Schema of `plan.json` (checked in as `docs/plan.schema.json`).
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Plan);
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
