//! The typed syntax tree of one `.camp` file. Every node carries its span;
//! doc comments show the syntax each node stands for.

use crate::diagnostics::{FileId, Span, Spanned};

/// A name as written, with its place: `marie`, `welcome`, `country`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A length of time in seconds: `30m`, `2h`, `3d`, `2w`, `1d12h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

impl Duration {
    pub fn seconds(self) -> i64 {
        self.0
    }
}

/// A time of day in minutes after midnight: `09:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Clock(pub u16);

/// One parsed file.
#[derive(Clone, Debug, Default)]
pub struct File {
    pub file: FileId,
    pub decls: Vec<Decl>,
    /// Declarations that had a syntax error: the checker treats their names
    /// as declared, so one typo does not cascade into "unknown name" errors.
    pub broken: Vec<BrokenDecl>,
    /// The file could not be read or parsed at all (not UTF-8, too large, …).
    pub unreadable: bool,
}

/// The head of a declaration that failed to parse: `segment vip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenDecl {
    pub keyword: String,
    pub name: Option<String>,
}

/// A top-level declaration with its `///` documentation.
#[derive(Clone, Debug)]
pub struct Decl {
    pub kind: DeclKind,
    pub span: Span,
    pub doc: Option<String>,
}

#[derive(Clone, Debug)]
pub enum DeclKind {
    Workspace(Workspace),
    Contact(Schema),
    Event(EventDecl),
    List(ListDecl),
    Segment(Segment),
    Persona(Persona),
    Template(Template),
    Scenario(Scenario),
    Cadence(Cadence),
    Pressure(PressurePolicy),
    Topic(TopicDecl),
    Consent(ConsentRule),
}

impl DeclKind {
    /// What users call this kind of declaration.
    pub fn noun(&self) -> &'static str {
        match self {
            DeclKind::Workspace(_) => "workspace",
            DeclKind::Contact(_) => "contact schema",
            DeclKind::Event(_) => "event",
            DeclKind::List(_) => "list",
            DeclKind::Segment(_) => "segment",
            DeclKind::Persona(p) if p.negative => "negative persona",
            DeclKind::Persona(_) => "persona",
            DeclKind::Template(_) => "template",
            DeclKind::Scenario(_) => "scenario",
            DeclKind::Cadence(_) => "cadence",
            DeclKind::Pressure(_) => "pressure policy",
            DeclKind::Topic(_) => "topic",
            DeclKind::Consent(_) => "consent rule",
        }
    }

    /// The declared name, for declarations that have one.
    pub fn name(&self) -> Option<&Ident> {
        match self {
            DeclKind::Event(d) => Some(&d.name),
            DeclKind::List(d) => Some(&d.name),
            DeclKind::Segment(d) => Some(&d.name),
            DeclKind::Persona(d) => Some(&d.name),
            DeclKind::Template(d) => Some(&d.name),
            DeclKind::Scenario(d) => Some(&d.name),
            DeclKind::Cadence(d) => Some(&d.name),
            DeclKind::Topic(d) => Some(&d.name),
            DeclKind::Workspace(_)
            | DeclKind::Contact(_)
            | DeclKind::Pressure(_)
            | DeclKind::Consent(_) => None,
        }
    }
}

/// `name = "…"` or `html = file("…")` or `kind = marketing`.
#[derive(Clone, Debug)]
pub struct Attr {
    pub name: Ident,
    pub value: Spanned<AttrValue>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// `"…"`, escapes already decoded.
    Str(String),
    /// `file("templates/welcome.html.hbs")`: the path and its span.
    File(Spanned<String>),
    /// A bare word such as `marketing`.
    Word(String),
    /// A duration such as `1d` (`due = 1d` on a task, v1.1).
    Duration(Duration),
}

/// `workspace { name = "…", timezone = "…", from = "…", address = "…" }`
#[derive(Clone, Debug)]
pub struct Workspace {
    pub keyword: Span,
    /// The attributes; `locale = lang` is one of them (`locale` is a
    /// keyword, so it is written here with the keyword's span as its name).
    pub attrs: Vec<Attr>,
    /// Every `locales = [fr, en]` given (a list, to point at a duplicate).
    pub locales: Vec<LocalesSetting>,
}

/// `locales = [fr, en]`: the locales of the project, the first one the
/// language of the unsuffixed attributes (by convention, not by rule).
#[derive(Clone, Debug)]
pub struct LocalesSetting {
    /// The span of the word `locales`.
    pub keyword: Span,
    pub names: Vec<Ident>,
}

/// `contact { email: email, phone: phone? }`
#[derive(Clone, Debug)]
pub struct Schema {
    pub keyword: Span,
    pub fields: Vec<FieldDecl>,
}

/// `country: text`, `plan: enum(free, pro)`, `tz: timezone?`
#[derive(Clone, Debug)]
pub struct FieldDecl {
    pub name: Ident,
    pub ty: Spanned<TypeExpr>,
    pub optional: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    /// `text`, `number`, … (checked against the known types later).
    Named(String),
    /// `enum(free, pro, team)`
    Enum(Vec<Ident>),
    /// `set<text>`: the element type as written.
    Set(Ident),
}

/// `event purchase { amount: number, sku: text }`
#[derive(Clone, Debug)]
pub struct EventDecl {
    pub name: Ident,
    pub fields: Vec<FieldDecl>,
}

/// `list customers { on join { leave prospects, tag "customer" } }`
#[derive(Clone, Debug)]
pub struct ListDecl {
    pub name: Ident,
    /// The steps of every `on join` block, in order (`join`, `leave`, `tag`, `untag`).
    pub on_join: Vec<Step>,
}

/// `segment french = country in ["FR", "BE"]`
#[derive(Clone, Debug)]
pub struct Segment {
    pub name: Ident,
    pub expr: Expr,
}

/// `topic newsletter "The monthly newsletter"`: a subscription topic.
#[derive(Clone, Debug)]
pub struct TopicDecl {
    pub name: Ident,
    pub label: Spanned<String>,
}

/// `consent sms = sms_opt_in`: marketing on `channel` goes only to
/// contacts for whom `expr` holds at send time.
#[derive(Clone, Debug)]
pub struct ConsentRule {
    pub keyword: Span,
    pub channel: Ident,
    pub expr: Expr,
}

/// `persona marie { … }` / `negative persona tire_kicker { … }`
#[derive(Clone, Debug)]
pub struct Persona {
    pub name: Ident,
    pub negative: bool,
    pub values: Vec<FieldValue>,
    pub events: Vec<PersonaEvent>,
    pub expects: Vec<Expr>,
}

/// `country = "FR"`, `interests = ["gps"]`, `signup_at = 40d ago`
#[derive(Clone, Debug)]
pub struct FieldValue {
    pub name: Ident,
    pub value: Value,
}

#[derive(Clone, Debug)]
pub enum Value {
    Term(Term),
    List(Spanned<Vec<Term>>),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Term(t) => t.span,
            Value::List(l) => l.span,
        }
    }
}

/// `event purchase { amount = 600, sku = "gps" } at 20d ago`
#[derive(Clone, Debug)]
pub struct PersonaEvent {
    pub name: Ident,
    pub values: Vec<FieldValue>,
    pub at: Term,
    pub span: Span,
}

/// `template welcome : email { subject = "…", link gps = "https://…" }`
#[derive(Clone, Debug)]
pub struct Template {
    pub name: Ident,
    pub channel: Ident,
    pub attrs: Vec<Attr>,
    pub links: Vec<Link>,
    /// `header "X-Name" = …` lines (webhooks, v1.1), in order.
    pub headers: Vec<Header>,
    /// Per-locale attributes, `subject.en = "…"`, in source order.
    pub variants: Vec<Variant>,
}

/// `header "Authorization" = "Bearer " + env("CRM_TOKEN")`
#[derive(Clone, Debug)]
pub struct Header {
    pub name: Spanned<String>,
    pub value: Vec<HeaderPiece>,
    /// The whole value, for diagnostics.
    pub value_span: Span,
}

/// One piece of a header value: literal text or an environment variable
/// read by the runner at send time.
#[derive(Clone, Debug, PartialEq)]
pub enum HeaderPiece {
    Text(Spanned<String>),
    /// `env("NAME")`: the variable's name and the span of the call.
    Env(Spanned<String>),
}

/// `subject.en = "…"`, `html.en = file("templates/welcome.en.html.hbs")`:
/// an attribute for the contacts of one locale.
#[derive(Clone, Debug)]
pub struct Variant {
    pub locale: Ident,
    /// The attribute as if written without its suffix (`subject = "…"`).
    pub attr: Attr,
}

/// `link gps = "https://acme.example/gps"`
#[derive(Clone, Debug)]
pub struct Link {
    pub name: Ident,
    pub url: Spanned<String>,
}

/// `scenario nav_offer { audience …, trigger …, send welcome, … }`.
/// Settings are kept as lists so that the checker can point at duplicates.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: Ident,
    pub audience: Vec<Expr>,
    pub triggers: Vec<Spanned<Trigger>>,
    pub reentry: Vec<Spanned<Reentry>>,
    pub exit_when: Vec<Expr>,
    pub goals: Vec<Goal>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug)]
pub enum Trigger {
    /// `joined prospects`
    Joined(Ident),
    /// `event purchase where amount > 100`
    Event {
        event: Ident,
        filter: Option<Box<Expr>>,
    },
    /// `entered big_spender`
    Entered(Ident),
    /// `every monday 09:00` (`day` for every day)
    Every {
        day: Spanned<Weekday>,
        time: Spanned<Clock>,
    },
    /// `once at 2026-12-01T09:00:00Z` (unix seconds)
    Once(Spanned<i64>),
    /// A trigger whose parts were invalid (already reported).
    Invalid,
    /// `at trial_ends_at - 3d` or `at renewal_on 09:00` (contact-local
    /// time on the local date of the instant)
    At {
        time: Term,
        clock: Option<Spanned<Clock>>,
    },
    /// `yearly birthday 09:00`: every anniversary of a date field.
    Yearly { field: Ident, clock: Spanned<Clock> },
    /// `every month on 3 09:30` (`day` 1–28), `every month on last 09:30` (`None`)
    Monthly {
        day: Spanned<Option<u8>>,
        time: Spanned<Clock>,
    },
    /// `once at 2026-12-01 09:00 local`: that local time in each contact's zone.
    OnceLocal {
        date: Spanned<jiff::civil::Date>,
        time: Spanned<Clock>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weekday {
    Day,
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
    /// `every weekday 09:00`: Monday to Friday.
    Weekday,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reentry {
    Never,
    Always,
    After(Duration),
}

/// `goal purchase within 14d`, `goal invoice_paid where amount > 100 within
/// 30d value amount`, `goal joined customers within 30d` (then `event` is
/// the list and `joined` is true).
#[derive(Clone, Debug)]
pub struct Goal {
    pub event: Ident,
    pub within: Spanned<Duration>,
    pub span: Span,
    pub filter: Option<Box<Expr>>,
    pub value: Option<Ident>,
    pub joined: bool,
}

#[derive(Clone, Debug)]
pub struct Step {
    pub kind: StepKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum StepKind {
    /// `send welcome`
    Send(Ident),
    /// `wait 2d`
    Wait(Spanned<Duration>),
    /// `wait until opened(welcome) for 3d`
    WaitUntil {
        cond: Box<Expr>,
        timeout: Spanned<Duration>,
    },
    /// `branch { when … { … } else { … } }`
    Branch(Vec<Arm>),
    /// `split { 50% { … } 50% { … } }`
    Split(Vec<SplitArm>),
    /// `join customers`
    Join(Ident),
    /// `leave prospects`
    Leave(Ident),
    /// `tag "vip"`
    Tag(Spanned<String>),
    /// `untag "vip"`
    Untag(Spanned<String>),
    /// `start sales_followup`
    Start(Ident),
    /// `exit`
    Exit,
    /// `wait until trial_ends_at - 3d`: until a point in time.
    WaitUntilTime(Term),
    /// `wait 3 business days`
    WaitBusiness(Spanned<u32>),
}

/// `when EXPR { … }`, or `else { … }` when `cond` is `None`.
#[derive(Clone, Debug)]
pub struct Arm {
    pub cond: Option<Expr>,
    pub steps: Vec<Step>,
    /// The `when` or `else` keyword.
    pub keyword: Span,
    pub span: Span,
}

/// `50% { … }`
#[derive(Clone, Debug)]
pub struct SplitArm {
    pub share: Spanned<f64>,
    pub steps: Vec<Step>,
    pub span: Span,
}

/// `cadence sales_followup { stop when …, spacing = 3d, touch … }`
#[derive(Clone, Debug)]
pub struct Cadence {
    pub name: Ident,
    pub stop: Vec<Expr>,
    pub spacing: Vec<Spanned<Duration>>,
    pub touches: Vec<Touch>,
    /// `spacing = 2 business days` (a duplicate of `spacing` either way).
    pub business_spacing: Vec<Spanned<u32>>,
}

/// `touch nudge after 2d`, `touch call_me after 1 business day when …`
#[derive(Clone, Debug)]
pub struct Touch {
    pub template: Ident,
    pub after: Option<Spanned<Duration>>,
    pub span: Span,
    /// `after 1 business day` (then `after` is `None`).
    pub after_business: Option<Spanned<u32>>,
    /// `when EXPR`: a touch whose condition is false when due is skipped.
    pub when: Option<Expr>,
}

/// `pressure { email max 3 per 7d, gap 12h, quiet 21:00 to 08:00, … }`
#[derive(Clone, Debug)]
pub struct PressurePolicy {
    pub keyword: Span,
    pub caps: Vec<Cap>,
    pub gaps: Vec<Spanned<Duration>>,
    pub quiet: Vec<Quiet>,
    pub on_excess: Vec<Spanned<Excess>>,
    pub under: Vec<UnderBelow>,
}

/// `email max 3 per 7d` (`all` for every channel together)
#[derive(Clone, Debug)]
pub struct Cap {
    pub scope: Ident,
    pub max: Spanned<u32>,
    pub per: Spanned<Duration>,
    pub span: Span,
}

/// `quiet 21:00 to 08:00`, `quiet sms 20:00 to 10:00`, `quiet weekends`,
/// `quiet task weekends`. For `weekends`, `start` and `end` are both
/// 00:00 and unused.
#[derive(Clone, Debug)]
pub struct Quiet {
    pub start: Spanned<Clock>,
    pub end: Spanned<Clock>,
    pub span: Span,
    /// `quiet sms …`: the rule holds every message of that channel;
    /// `None`: marketing messages only.
    pub channel: Option<Ident>,
    /// `quiet weekends`: Saturday and Sunday, contact-local.
    pub weekends: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Excess {
    Defer,
    Drop,
}

/// `under below 1 per 14d`
#[derive(Clone, Debug)]
pub struct UnderBelow {
    pub count: Spanned<u32>,
    pub per: Spanned<Duration>,
    pub span: Span,
}

/// A predicate over one contact.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `a or b or c`
    Or(Vec<Expr>),
    /// `a and b`
    And(Vec<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `country == "FR"`
    Compare {
        lhs: Term,
        op: Spanned<CmpOp>,
        rhs: Term,
    },
    /// `country in ["FR", "BE"]`, `plan not in [free]`
    In {
        term: Term,
        list: Spanned<Vec<Term>>,
        negated: bool,
    },
    /// `interests contains "gps"`
    Contains { haystack: Term, needle: Term },
    /// `phone is set`, `phone is not set`
    IsSet { term: Term, negated: bool },
    /// A segment, a list (membership) or a bool field: `customers`
    Name(Ident),
    /// `true`, `false`
    Bool(bool),
    /// `opened(welcome since 7d ago)`, `clicked(welcome.gps)`, `replied(any)`
    Engagement {
        kind: Spanned<EngagementKind>,
        target: EngagementTarget,
        since: Option<Term>,
    },
    /// `count(purchase where amount > 10 since 30d ago) >= 2`
    Aggregate {
        agg: Aggregate,
        op: Spanned<CmpOp>,
        rhs: Term,
    },
    /// `name starts_with "Dr"`, `email ends_with "@acme.example"`,
    /// `phone matches "^\\+33"` (for `matches`, `arg` is a string literal).
    TextTest {
        term: Term,
        op: Spanned<TextOp>,
        arg: Term,
    },
}

/// The text tests of v1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextOp {
    StartsWith,
    EndsWith,
    Matches,
}

impl TextOp {
    pub fn as_str(self) -> &'static str {
        match self {
            TextOp::StartsWith => "starts_with",
            TextOp::EndsWith => "ends_with",
            TextOp::Matches => "matches",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngagementKind {
    Opened,
    Clicked,
    Delivered,
    Replied,
    Bounced,
}

impl EngagementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngagementKind::Opened => "opened",
            EngagementKind::Clicked => "clicked",
            EngagementKind::Delivered => "delivered",
            EngagementKind::Replied => "replied",
            EngagementKind::Bounced => "bounced",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum EngagementTarget {
    /// `any`
    Any(Span),
    /// `welcome` or `welcome.gps`
    Template {
        template: Ident,
        link: Option<Ident>,
    },
}

/// `sum(purchase.amount where sku == "gps" since 90d ago)`
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub func: Spanned<AggregateFn>,
    pub event: Ident,
    pub field: Option<Ident>,
    pub filter: Option<Box<Expr>>,
    pub since: Option<Term>,
    pub span: Span,
    /// `count distinct(EVENT.FIELD …)`: the span of `distinct`.
    pub distinct: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateFn {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

impl AggregateFn {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateFn::Count => "count",
            AggregateFn::Sum => "sum",
            AggregateFn::Min => "min",
            AggregateFn::Max => "max",
            AggregateFn::Avg => "avg",
        }
    }
}

/// A value inside an expression or a persona.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    pub kind: TermKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TermKind {
    /// `now`
    Now,
    /// `14d ago`
    Ago(Duration),
    /// `2026-01-15T09:00:00Z` as unix seconds.
    Timestamp(i64),
    /// `2026-01-15`
    Date(jiff::civil::Date),
    /// `09:00`
    Clock(Clock),
    /// `3d`
    Duration(Duration),
    /// `50%`
    Percent(f64),
    /// `12.50`
    Number(f64),
    /// `"FR"`, escapes decoded.
    Str(String),
    /// `true`
    Bool(bool),
    /// A field, an enum variant or a list name, resolved by the checker.
    Name(String),
    /// `trial_ends_at - 3d`, `now + 7d`: a term moved by a signed number
    /// of seconds (several shifts are added up).
    Shifted { base: Box<Term>, seconds: i64 },
}

impl Term {
    /// The term without its shifts, and the sum of the shifts.
    pub fn unshifted(&self) -> (&Term, i64) {
        match &self.kind {
            TermKind::Shifted { base, seconds } => {
                let (b, s) = base.unshifted();
                (b, s.saturating_add(*seconds))
            }
            _ => (self, 0),
        }
    }

    /// Whether the term reads the reference time (`now`, `3d ago`).
    pub fn is_relative(&self) -> bool {
        matches!(self.unshifted().0.kind, TermKind::Now | TermKind::Ago(_))
    }

    /// A time that needs no contact: a literal, `now` or `3d ago` with
    /// their shifts, at reference time `now` (unix seconds). A date moved
    /// by whole days stays a date; by anything else it becomes the
    /// instant of its UTC midnight moved by the shift (as dates compare).
    pub fn literal_time(&self, now: i64) -> Option<TimeValue> {
        let (base, shift) = self.unshifted();
        let v = match &base.kind {
            TermKind::Now => TimeValue::Instant(now),
            TermKind::Ago(d) => TimeValue::Instant(now.saturating_sub(d.seconds())),
            TermKind::Timestamp(s) => TimeValue::Instant(*s),
            TermKind::Date(d) => TimeValue::Date(*d),
            _ => return None,
        };
        v.shifted(shift)
    }
}

/// A point in time as a term gives it: an instant, or a calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeValue {
    /// Unix seconds.
    Instant(i64),
    Date(jiff::civil::Date),
}

impl TimeValue {
    /// Moved by `seconds`: whole days keep a date a date.
    pub fn shifted(self, seconds: i64) -> Option<TimeValue> {
        if seconds == 0 {
            return Some(self);
        }
        Some(match self {
            TimeValue::Instant(t) => TimeValue::Instant(t.checked_add(seconds)?),
            TimeValue::Date(d) if seconds % 86_400 == 0 => {
                let days = seconds / 86_400;
                TimeValue::Date(d.checked_add(jiff::Span::new().try_days(days).ok()?).ok()?)
            }
            TimeValue::Date(d) => {
                TimeValue::Instant(crate::eval::date_start(d)?.checked_add(seconds)?)
            }
        })
    }
}
