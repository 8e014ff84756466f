//! Flow diagrams: every scenario and cadence of a [`Plan`] drawn as an
//! inline SVG, for the preview site (`preview/scenario/NAME.html`,
//! `preview/cadence/NAME.html`).
//!
//! Steps form a tree (§7: no goto), and the plan's path-based step ids
//! (`s/2.1.0` is the first step of the second arm of the branch `s/2`)
//! give that tree back without following `next` pointers. The layout is a
//! structured flowchart: a block's steps go down one column; a branch or a
//! split opens one column per arm, side by side, and the arms that do not
//! end in `exit` meet again below the widest one. Each shape knows its
//! size before it is placed, so placing is one pass and nothing overlaps.
//!
//! Text is measured as monospace (the SVG draws it so), so sizes depend
//! only on the characters: the same plan gives the same bytes.

use std::fmt::Write as _;

use crate::plan::{Cadence, Expr, Plan, Reentry, Scenario, Step, Term, Trigger};

use crate::render::text::escape_html;

// ------------------------------------------------------------------ text

/// An expression as it would be written in a `.camp` file:
/// `not opened(welcome)`, `clicked(welcome.gps)`, `country in ["FR", "BE"]`,
/// `count(purchase where amount > 0 since 30d ago) >= 2`.
///
/// The plan has flattened `and`/`or` and written `not in` and `is not set`
/// as `not`; this gives the readable forms back, with parentheses only
/// where precedence needs them (`not` > `and` > `or`).
pub fn expr_text(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(e, &mut out);
    out
}

/// Binding strength: `or` 1, `and` 2, `not` 3, an atom 4.
fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Or { args } if args.len() > 1 => 1,
        Expr::And { args } if args.len() > 1 => 2,
        Expr::Not { arg } if !matches!(**arg, Expr::In { .. } | Expr::IsSet { .. }) => 3,
        _ => 4,
    }
}

fn write_operand(e: &Expr, min: u8, out: &mut String) {
    if precedence(e) < min {
        out.push('(');
        write_expr(e, out);
        out.push(')');
    } else {
        write_expr(e, out);
    }
}

fn write_expr(e: &Expr, out: &mut String) {
    match e {
        Expr::Const { value } => out.push_str(if *value { "true" } else { "false" }),
        Expr::And { args } | Expr::Or { args } => {
            let (word, min, empty) = match e {
                Expr::And { .. } => (" and ", 3, "true"),
                _ => (" or ", 2, "false"),
            };
            if args.is_empty() {
                out.push_str(empty);
            }
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push_str(word);
                }
                write_operand(a, if args.len() == 1 { 0 } else { min }, out);
            }
        }
        Expr::Not { arg } => match &**arg {
            Expr::In { value, list } => {
                let _ = write!(out, "{} not in {}", term_text(value), list_text(list));
            }
            Expr::IsSet { value } => {
                let _ = write!(out, "{} is not set", term_text(value));
            }
            other => {
                out.push_str("not ");
                write_operand(other, 3, out);
            }
        },
        Expr::Segment { name } | Expr::List { name } => out.push_str(name),
        Expr::Flag { value } => out.push_str(&term_text(value)),
        Expr::Compare { cmp, left, right } => {
            let _ = write!(out, "{} {cmp} {}", term_text(left), term_text(right));
        }
        Expr::In { value, list } => {
            let _ = write!(out, "{} in {}", term_text(value), list_text(list));
        }
        Expr::Contains { haystack, needle } => {
            let _ = write!(
                out,
                "{} contains {}",
                term_text(haystack),
                term_text(needle)
            );
        }
        Expr::IsSet { value } => {
            let _ = write!(out, "{} is set", term_text(value));
        }
        Expr::Engagement {
            event,
            template,
            link,
            since,
            ..
        } => {
            let _ = write!(out, "{event}({}", template.as_deref().unwrap_or("any"));
            if let Some(l) = link {
                let _ = write!(out, ".{l}");
            }
            if let Some(s) = since {
                let _ = write!(out, " since {}", term_text(s));
            }
            out.push(')');
        }
        Expr::Aggregate {
            function,
            event,
            field,
            filter,
            since,
            cmp,
            value,
            distinct,
        } => {
            let _ = write!(out, "{function}");
            if *distinct {
                out.push_str(" distinct");
            }
            let _ = write!(out, "({event}");
            if let Some(f) = field {
                let _ = write!(out, ".{f}");
            }
            if let Some(f) = filter {
                out.push_str(" where ");
                write_expr(f, out);
            }
            if let Some(s) = since {
                let _ = write!(out, " since {}", term_text(s));
            }
            let _ = write!(out, ") {cmp} {}", term_text(value));
        }
        Expr::StartsWith { value, prefix } => {
            let _ = write!(
                out,
                "{} starts_with {}",
                term_text(value),
                term_text(prefix)
            );
        }
        Expr::EndsWith { value, suffix } => {
            let _ = write!(out, "{} ends_with {}", term_text(value), term_text(suffix));
        }
        Expr::Matches { value, pattern } => {
            let _ = write!(
                out,
                "{} matches {}",
                term_text(value),
                term_text(&Term::Text(pattern.clone()))
            );
        }
    }
}

fn list_text(list: &[Term]) -> String {
    let items: Vec<String> = list.iter().map(term_text).collect();
    format!("[{}]", items.join(", "))
}

/// A term as written: fields and variants bare, text quoted (with `\"`,
/// `\\`, `\n` escapes), `14d ago`, `now`.
pub fn term_text(t: &Term) -> String {
    match t {
        Term::Field(n) | Term::EventField(n) | Term::Variant(n) => n.clone(),
        Term::Text(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{{{:x}}}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Term::Number(n) => number_text(*n),
        Term::Bool(b) => b.to_string(),
        Term::Timestamp(s) | Term::Date(s) => s.clone(),
        Term::AgoSeconds(s) => format!("{} ago", duration_text(*s)),
        Term::Now(_) => "now".to_string(),
        Term::Offset { term, seconds } if *seconds < 0 => format!(
            "{} - {}",
            term_text(term),
            duration_text(seconds.saturating_neg())
        ),
        Term::Offset { term, seconds } => {
            format!("{} + {}", term_text(term), duration_text(*seconds))
        }
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A duration in the language's units: `30m`, `2d`, `1d12h`.
pub fn duration_text(seconds: i64) -> String {
    if seconds == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if seconds < 0 {
        out.push('-');
    }
    let mut rest = seconds.unsigned_abs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

/// A scenario trigger as written: `joined prospects`,
/// `event purchase where amount > 0`, `every monday 09:00`.
pub fn trigger_text(t: &Trigger) -> String {
    match t {
        Trigger::Joined { list } => format!("joined {list}"),
        Trigger::Event { event, filter } => match filter {
            Some(f) => format!("event {event} where {}", expr_text(f)),
            None => format!("event {event}"),
        },
        Trigger::Entered { segment } => format!("entered {segment}"),
        Trigger::Every { day, at } => format!("every {day} {at}"),
        Trigger::Once { at } => format!("once at {at}"),
        Trigger::At { at, local_time } => match local_time {
            Some(c) => format!("at {} {c}", term_text(at)),
            None => format!("at {}", term_text(at)),
        },
        Trigger::Yearly { field, at } => format!("yearly {field} {at}"),
        Trigger::Monthly { day, at } => format!("every month on {day} {at}"),
        Trigger::OnceLocal { date, at } => format!("once at {date} {at} local"),
    }
}

/// Every trigger of a scenario, as written, in declaration order.
pub fn triggers(s: &Scenario) -> impl Iterator<Item = &Trigger> {
    std::iter::once(&s.trigger).chain(&s.more_triggers)
}

/// Every trigger of a scenario as written, separated by `; `.
pub fn triggers_text(s: &Scenario) -> String {
    triggers(s).map(trigger_text).collect::<Vec<_>>().join("; ")
}

/// A goal as written: `purchase within 14d`, `invoice_paid where amount >
/// 100 within 30d value amount`, `joined customers within 30d`.
pub fn goal_text(g: &crate::plan::Goal) -> String {
    let mut out = match &g.joined {
        Some(list) => format!("joined {list}"),
        None => g.event.clone(),
    };
    if let Some(f) = &g.filter {
        let _ = write!(out, " where {}", expr_text(f));
    }
    let _ = write!(out, " within {}", duration_text(g.within_seconds));
    if let Some(v) = &g.value {
        let _ = write!(out, " value {v}");
    }
    out
}

/// `never`, `always` or `after 30d`.
pub fn reentry_text(r: &Reentry) -> String {
    match r {
        Reentry::Never => "never".to_string(),
        Reentry::Always => "always".to_string(),
        Reentry::After { seconds } => format!("after {}", duration_text(*seconds)),
    }
}

/// Lines of at most `width` characters, broken at spaces (a longer word is
/// cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    // Whether the last break cut a word (rather than fell at a space).
    let mut cut = false;
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        if len > 0 && len + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
            len = 0;
            cut = false;
        }
        while word.len() > width {
            if len > 0 {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            let rest = word.split_off(width);
            lines.push(word.into_iter().collect());
            word = rest;
            cut = true;
        }
        if word.is_empty() {
            continue;
        }
        if len > 0 {
            line.push(' ');
            len += 1;
        }
        len += word.len();
        line.extend(word);
    }
    if len > 0 || lines.is_empty() {
        lines.push(line);
    }
    // A last word of a few characters (`0` of `… > 0`) joins the line
    // above, a little over the width, rather than stand alone.
    if let [.., above, last] = lines.as_slice() {
        let (a, l) = (above.chars().count(), last.chars().count());
        if !cut && l <= 3 && a + 1 + l <= width + 3 {
            let last = lines.pop().unwrap_or_default();
            if let Some(above) = lines.last_mut() {
                above.push(' ');
                above.push_str(&last);
            }
        }
    }
    lines
}

// ---------------------------------------------------------------- shapes

/// Widest text line, in characters.
const WRAP: usize = 30;
/// Monospace advance at 12px (DejaVu Sans Mono: 0.602em), rounded up, in
/// hundredths of a pixel; 10px for the kicker.
const CHAR_W: i32 = 725;
const KICK_W: i32 = 610;
const PAD_X: i32 = 10;
const PAD_Y: i32 = 7;
const LINE_H: i32 = 16;
const KICK_H: i32 = 14;
const MIN_W: i32 = 88;
/// Between two steps of a column, and between two columns.
const GAP_Y: i32 = 30;
const GAP_X: i32 = 20;
/// Around the whole drawing; between the flow and its notes.
const MARGIN: i32 = 16;
const NOTES_GAP: i32 = 40;

/// One box of the drawing.
#[derive(Clone, Debug)]
struct Card {
    /// CSS classes: the kind first (`send`, `wait`, `arm`, …).
    class: String,
    /// Small upper-case line above the text (`send · email`).
    kicker: String,
    lines: Vec<String>,
    href: Option<String>,
    /// `data-step` (scenario step id or cadence touch id).
    step: Option<String>,
    /// Small lines below the text, drawn like the kicker: (class, the line
    /// as drawn, the whole line for the tooltip).
    small: Vec<(&'static str, String, String)>,
    w: i32,
    h: i32,
}

impl Card {
    fn new(class: impl Into<String>, kicker: impl Into<String>, text: &str) -> Card {
        let lines = if text.is_empty() {
            Vec::new()
        } else {
            wrap(text, WRAP)
        };
        Card::with_lines(class, kicker, lines)
    }

    fn with_lines(class: impl Into<String>, kicker: impl Into<String>, lines: Vec<String>) -> Card {
        let kicker = kicker.into();
        let chars = |s: &str| s.chars().count() as i32;
        let text_w = lines.iter().map(|l| chars(l)).max().unwrap_or(0) * CHAR_W;
        let kick_w = chars(&kicker) * KICK_W;
        let w = (text_w.max(kick_w) + 99) / 100 + 2 * PAD_X;
        let h =
            2 * PAD_Y + if kicker.is_empty() { 0 } else { KICK_H } + lines.len() as i32 * LINE_H;
        Card {
            class: class.into(),
            kicker,
            lines,
            href: None,
            step: None,
            small: Vec::new(),
            w: w.max(MIN_W),
            h,
        }
    }

    /// Adds a small line (`consent sms: sms_opt_in`) below the text, cut
    /// to the width of a text line; the box grows to hold it.
    fn small(mut self, class: &'static str, line: String) -> Card {
        let max = (WRAP as i32 * CHAR_W / KICK_W) as usize;
        let shown = if line.chars().count() > max {
            let kept: String = line.chars().take(max - 1).collect();
            format!("{}…", kept.trim_end())
        } else {
            line.clone()
        };
        let w = (shown.chars().count() as i32 * KICK_W + 99) / 100 + 2 * PAD_X;
        self.w = self.w.max(w);
        self.h += KICK_H;
        self.small.push((class, shown, line));
        self
    }

    fn href(mut self, href: String) -> Card {
        self.href = Some(href);
        self
    }

    fn step(mut self, id: &str) -> Card {
        self.step = Some(id.to_string());
        self
    }

    /// Whether a run goes on below this box.
    fn falls_through(&self) -> bool {
        !(self.class.starts_with("exit") || self.class.starts_with("end"))
    }
}

/// One arm of a fork: its label box and its steps (none for an empty arm).
#[derive(Debug)]
struct Arm {
    label: Card,
    body: Option<Shape>,
}

impl Arm {
    fn width(&self) -> i32 {
        self.label.w.max(self.body.as_ref().map_or(0, |b| b.w))
    }

    fn height(&self) -> i32 {
        self.label.h + self.body.as_ref().map_or(0, |b| GAP_Y + b.h)
    }

    fn falls_through(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.falls)
    }
}

#[derive(Debug)]
enum ShapeKind {
    Card(Card),
    /// Steps one below the other.
    Column(Vec<Shape>),
    /// A branch or split: the head, then one column per arm.
    Fork {
        head: Card,
        arms: Vec<Arm>,
    },
}

/// A shape with its size, known before it is placed.
#[derive(Debug)]
struct Shape {
    kind: ShapeKind,
    w: i32,
    h: i32,
    /// Whether a run can leave it at the bottom.
    falls: bool,
}

impl Shape {
    fn card(c: Card) -> Shape {
        Shape {
            w: c.w,
            h: c.h,
            falls: c.falls_through(),
            kind: ShapeKind::Card(c),
        }
    }

    fn column(items: Vec<Shape>) -> Shape {
        let w = items.iter().map(|s| s.w).max().unwrap_or(0);
        let h =
            items.iter().map(|s| s.h).sum::<i32>() + GAP_Y * (items.len().saturating_sub(1) as i32);
        let falls = items.last().is_none_or(|s| s.falls);
        Shape {
            kind: ShapeKind::Column(items),
            w,
            h,
            falls,
        }
    }

    fn fork(head: Card, arms: Vec<Arm>) -> Shape {
        let arms_w = arms.iter().map(Arm::width).sum::<i32>()
            + GAP_X * (arms.len().saturating_sub(1) as i32);
        let arms_h = arms.iter().map(Arm::height).max().unwrap_or(0);
        let falls = arms.iter().any(Arm::falls_through);
        Shape {
            w: head.w.max(arms_w),
            h: head.h + GAP_Y + arms_h + if falls { GAP_Y } else { 0 },
            falls,
            kind: ShapeKind::Fork { head, arms },
        }
    }
}

// ------------------------------------------------------------- placement

/// A box at its place (top-left corner).
#[derive(Debug)]
struct Placed {
    card: Card,
    x: i32,
    y: i32,
}

#[derive(Debug)]
struct Edge {
    points: Vec<(i32, i32)>,
    arrow: bool,
}

/// Everything to draw, in absolute coordinates.
#[derive(Debug, Default)]
struct Drawing {
    nodes: Vec<Placed>,
    edges: Vec<Edge>,
    /// Where the arms of a fork meet again.
    joins: Vec<(i32, i32)>,
}

impl Drawing {
    fn edge(&mut self, points: Vec<(i32, i32)>, arrow: bool) {
        self.edges.push(Edge { points, arrow });
    }
}

/// Places `s` with its top-left corner at (`left`, `top`).
fn place(s: Shape, left: i32, top: i32, d: &mut Drawing) {
    let cx = left + s.w / 2;
    match s.kind {
        ShapeKind::Card(card) => d.nodes.push(Placed {
            x: cx - card.w / 2,
            y: top,
            card,
        }),
        ShapeKind::Column(items) => {
            let mut y = top;
            let mut above: Option<(i32, bool)> = None;
            for item in items {
                if let Some((bottom, true)) = above {
                    d.edge(vec![(cx, bottom), (cx, y)], true);
                }
                let (w, h, falls) = (item.w, item.h, item.falls);
                place(item, cx - w / 2, y, d);
                above = Some((y + h, falls));
                y += h + GAP_Y;
            }
        }
        ShapeKind::Fork { head, arms } => {
            let head_bottom = top + head.h;
            d.nodes.push(Placed {
                x: cx - head.w / 2,
                y: top,
                card: head,
            });
            let bar = head_bottom + GAP_Y / 2;
            let arms_top = head_bottom + GAP_Y;
            let arms_w = arms.iter().map(Arm::width).sum::<i32>()
                + GAP_X * (arms.len().saturating_sub(1) as i32);
            let arms_h = arms.iter().map(Arm::height).max().unwrap_or(0);
            let merge = arms_top + arms_h + GAP_Y / 2;
            let bottom = arms_top + arms_h + GAP_Y;
            let mut x = cx - arms_w / 2;
            let mut merging = false;
            for arm in arms {
                let w = arm.width();
                let acx = x + w / 2;
                let falls = arm.falls_through();
                let arm_bottom = arms_top + arm.height();
                d.edge(
                    vec![(cx, head_bottom), (cx, bar), (acx, bar), (acx, arms_top)],
                    true,
                );
                let label_bottom = arms_top + arm.label.h;
                d.nodes.push(Placed {
                    x: acx - arm.label.w / 2,
                    y: arms_top,
                    card: arm.label,
                });
                if let Some(body) = arm.body {
                    let body_top = label_bottom + GAP_Y;
                    d.edge(vec![(acx, label_bottom), (acx, body_top)], true);
                    let bw = body.w;
                    place(body, acx - bw / 2, body_top, d);
                }
                if falls {
                    merging = true;
                    d.edge(
                        vec![(acx, arm_bottom), (acx, merge), (cx, merge), (cx, bottom)],
                        false,
                    );
                }
                x += w + GAP_X;
            }
            if merging {
                d.joins.push((cx, bottom));
            }
        }
    }
}

// ------------------------------------------------------------- scenarios

/// The shape of one block of a scenario: the steps `NAME/PREFIX0`,
/// `NAME/PREFIX1`, … until one is missing.
fn block(plan: &Plan, scenario: &str, s: &Scenario, prefix: &str, depth: usize) -> Shape {
    let mut items = Vec::new();
    // Step ids nest one level per branch; the checker caps nesting far
    // below this.
    if depth > 200 {
        return Shape::column(items);
    }
    for i in 0.. {
        let id = format!("{scenario}/{prefix}{i}");
        let Some(step) = s.steps.get(&id) else {
            break;
        };
        items.push(step_shape(
            plan,
            scenario,
            s,
            step,
            &id,
            &format!("{prefix}{i}."),
            depth,
        ));
    }
    Shape::column(items)
}

/// The shape of an arm's steps, or `None` for an empty arm.
fn arm_body(
    plan: &Plan,
    scenario: &str,
    s: &Scenario,
    prefix: &str,
    depth: usize,
) -> Option<Shape> {
    let body = block(plan, scenario, s, prefix, depth + 1);
    match &body.kind {
        ShapeKind::Column(items) if items.is_empty() => None,
        _ => Some(body),
    }
}

fn send_card(plan: &Plan, template: &str, kicker: &str) -> Card {
    let (channel, kind) = plan
        .templates
        .get(template)
        .map_or(("unknown", "marketing"), |t| {
            (t.channel.as_str(), t.kind.as_str())
        });
    let mut k = format!("{kicker} · {channel}");
    if kind == "transactional" {
        k.push_str(" · transactional");
    }
    if let Some(t) = plan.templates.get(template) {
        k.push_str(&delivery_kicker(t));
    }
    let mut lines = wrap(template, WRAP);
    if let Some(subject) = send_subject(plan, template) {
        lines.extend(subject_lines(&subject));
    }
    let mut card = Card::with_lines(format!("send channel-{}", css_word(channel)), k, lines)
        .href(format!("../index.html#template-{template}"));
    // §12: the consent rule a marketing send obeys, and its topic.
    if kind == "marketing"
        && let Some(rule) = plan.consent.get(channel)
    {
        card = card.small("consent", format!("consent {channel}: {}", expr_text(rule)));
    }
    if let Some(topic) = plan.templates.get(template).and_then(|t| t.topic.as_ref()) {
        card = card.small("topic", format!("topic: {topic}"));
    }
    card
}

/// ` · priority high`, ` · expires 12h`: a template's §12 delivery
/// attributes, when set, for the kicker of its sends.
fn delivery_kicker(t: &crate::plan::Template) -> String {
    let mut k = String::new();
    if let Some(p) = t.priority.as_deref().filter(|p| *p != "normal") {
        k.push_str(&format!(" · priority {p}"));
    }
    if let Some(e) = t.expires_seconds {
        k.push_str(&format!(" · expires {}", duration_text(e)));
    }
    k
}

/// `3 business days`, `1 business day`.
fn business_days_text(n: u32) -> String {
    format!("{n} business day{}", if n == 1 { "" } else { "s" })
}

/// What a send says first, as written in the template: an email's
/// subject, a push's title; `None` for other channels.
pub(crate) fn send_subject(plan: &Plan, template: &str) -> Option<String> {
    let t = plan.templates.get(template)?;
    let part = match t.channel.as_str() {
        "email" => "subject",
        "push" => "title",
        _ => return None,
    };
    let text = t
        .parts
        .get(part)?
        .text
        .split_whitespace()
        .collect::<Vec<_>>();
    (!text.is_empty()).then(|| text.join(" "))
}

/// A subject in quotes on at most two lines of the card (cut with `…`).
fn subject_lines(subject: &str) -> Vec<String> {
    let mut lines = wrap(&format!("“{subject}”"), WRAP);
    if lines.len() > 2 {
        lines.truncate(2);
        if let Some(last) = lines.last_mut() {
            let kept: String = last.chars().take(WRAP - 1).collect();
            *last = format!("{}…", kept.trim_end());
        }
    }
    lines
}

fn step_shape(
    plan: &Plan,
    scenario: &str,
    s: &Scenario,
    step: &Step,
    id: &str,
    arm_prefix: &str,
    depth: usize,
) -> Shape {
    let card = match step {
        Step::Send { template, .. } => send_card(plan, template, "send"),
        Step::Wait {
            business_days: Some(n),
            ..
        } => Card::new("wait", "wait", &business_days_text(*n)),
        Step::Wait { seconds, .. } => Card::new("wait", "wait", &duration_text(*seconds)),
        Step::WaitUntil {
            until,
            timeout_seconds,
            ..
        } => {
            let mut lines = wrap(&expr_text(until), WRAP);
            lines.push(format!("or after {}", duration_text(*timeout_seconds)));
            Card::with_lines("wait", "wait until", lines)
        }
        Step::WaitUntilTime { until, .. } => {
            let mut lines = wrap(&term_text(until), WRAP);
            lines.push("at once if passed or absent".to_string());
            Card::with_lines("wait", "wait until", lines)
        }
        Step::Join { list, .. } => Card::new("action", "join list", list),
        Step::Leave { list, .. } => Card::new("action", "leave list", list),
        Step::Tag { tag, .. } => Card::new("action", "tag", &term_text(&Term::Text(tag.clone()))),
        Step::Untag { tag, .. } => {
            Card::new("action", "untag", &term_text(&Term::Text(tag.clone())))
        }
        Step::Start { cadence, .. } => Card::new("start", "start cadence", cadence).href(format!(
            "../cadence/{}.html",
            crate::render::names::page_name(cadence)
        )),
        Step::Exit => Card::new("exit terminal", "", "exit"),
        Step::Branch { arms, .. } => {
            let head = Card::new("branch", "branch", "first arm that holds").step(id);
            let mut out = Vec::new();
            for (a, arm) in arms.iter().enumerate() {
                let label = match &arm.when {
                    Some(e) => Card::new("arm", "when", &expr_text(e)),
                    None => Card::new("arm else", "", "else"),
                };
                out.push(Arm {
                    label,
                    body: arm_body(plan, scenario, s, &format!("{arm_prefix}{a}."), depth),
                });
            }
            // No arm holds and there is no `else`: the run goes on.
            if arms.iter().all(|a| a.when.is_some()) {
                out.push(Arm {
                    label: Card::new("arm otherwise", "no arm holds", "go on"),
                    body: None,
                });
            }
            return Shape::fork(head, out);
        }
        Step::Split { arms } => {
            let head = Card::new("split", "split", "A/B by contact").step(id);
            let out = arms
                .iter()
                .enumerate()
                .map(|(a, arm)| Arm {
                    label: Card::new("arm share", "", &format!("{}%", number_text(arm.share))),
                    body: arm_body(plan, scenario, s, &format!("{arm_prefix}{a}."), depth),
                })
                .collect();
            return Shape::fork(head, out);
        }
    };
    Shape::card(card.step(id))
}

/// Notes beside the drawing: settings that apply to the whole flow.
fn notes_shape(notes: Vec<Card>) -> Option<Shape> {
    if notes.is_empty() {
        None
    } else {
        Some(Shape::column(notes.into_iter().map(Shape::card).collect()))
    }
}

fn scenario_shapes(plan: &Plan, name: &str, s: &Scenario) -> (Shape, Option<Shape>) {
    let title = if s.more_triggers.is_empty() {
        "trigger"
    } else {
        "triggers (any one)"
    };
    let mut items = vec![Shape::card(Card::with_lines("entry", title, {
        let mut l: Vec<String> = triggers(s)
            .flat_map(|t| wrap(&trigger_text(t), WRAP))
            .collect();
        l.push(format!("reentry {}", reentry_text(&s.reentry)));
        l
    }))];
    items.push(Shape::card(match &s.audience {
        Some(a) => Card::new("audience", "audience", &expr_text(a)),
        None => Card::new("audience", "audience", "everyone"),
    }));
    let body = block(plan, name, s, "", 0);
    let falls = body.falls;
    if let ShapeKind::Column(steps) = body.kind {
        items.extend(steps);
    }
    if falls {
        items.push(Shape::card(Card::new("end terminal", "", "end of run")));
    }
    let mut notes = Vec::new();
    if let Some(e) = &s.exit_when {
        let mut lines = wrap(&expr_text(e), WRAP);
        lines.push("(checked before every step)".to_string());
        notes.push(Card::with_lines("note exit-when", "exit when", lines));
    }
    for g in &s.goals {
        notes.push(Card::new("note goal", "goal", &goal_text(g)));
    }
    (Shape::column(items), notes_shape(notes))
}

/// The scenarios that start cadence `name`, in name order.
pub(crate) fn starters<'p>(plan: &'p Plan, name: &str) -> Vec<&'p str> {
    plan.scenarios
        .iter()
        .filter(|(_, s)| {
            s.steps
                .values()
                .any(|st| matches!(st, Step::Start { cadence, .. } if cadence == name))
        })
        .map(|(n, _)| n.as_str())
        .collect()
}

fn cadence_shapes(plan: &Plan, name: &str, c: &Cadence) -> (Shape, Option<Shape>) {
    let starters = starters(plan, name);
    let mut lines = if starters.is_empty() {
        vec!["started by no scenario".to_string()]
    } else {
        wrap(&format!("started by {}", starters.join(", ")), WRAP)
    };
    lines.push(match c.spacing_business_days {
        Some(n) => format!("spacing {}", business_days_text(n)),
        None => format!("spacing {}", duration_text(c.spacing_seconds)),
    });
    let mut items = vec![Shape::card(Card::with_lines("entry", "cadence", lines))];
    // When each touch is due, counted from the start (pressure may defer
    // it); business days are counted apart (their length depends on the
    // weekday).
    let mut at = 0i64;
    let mut business = 0u64;
    for (i, t) in c.touches.iter().enumerate() {
        match t.after_business_days {
            Some(n) => business += u64::from(n),
            None => at = at.saturating_add(t.after_seconds),
        }
        let calendar = if at % 86_400 == 0 {
            format!("day {}", at / 86_400)
        } else {
            format!("+{}", duration_text(at))
        };
        let when = match (business, at) {
            (0, _) => calendar,
            (b, 0) => format!("business day {b}"),
            (b, _) => format!("{calendar} + {b} business days"),
        };
        match t.after_business_days {
            Some(n) => items.push(Shape::card(Card::new(
                "wait",
                "wait",
                &business_days_text(n),
            ))),
            None if t.after_seconds > 0 => items.push(Shape::card(Card::new(
                "wait",
                "wait",
                &duration_text(t.after_seconds),
            ))),
            None => {}
        }
        if let Some(w) = &t.when {
            let mut lines = wrap(&expr_text(w), WRAP);
            lines.push("(else skipped)".to_string());
            items.push(Shape::card(Card::with_lines(
                "wait touch-when",
                "only when",
                lines,
            )));
        }
        items.push(Shape::card(
            send_card(plan, &t.template, &format!("touch {} · {when}", i + 1)).step(&t.id),
        ));
    }
    items.push(Shape::card(Card::new("end terminal", "", "end of cadence")));
    let notes = c
        .stop_when
        .iter()
        .map(|e| {
            let mut lines = wrap(&expr_text(e), WRAP);
            lines.push("(checked before every touch)".to_string());
            Card::with_lines("note stop-when", "stop when", lines)
        })
        .collect();
    (Shape::column(items), notes_shape(notes))
}

// ------------------------------------------------------------------- SVG

/// The drawing of a flow and its notes, placed.
fn draw(flow: Shape, notes: Option<Shape>) -> (Drawing, i32, i32) {
    let mut d = Drawing::default();
    let (fw, fh) = (flow.w, flow.h);
    place(flow, MARGIN, MARGIN, &mut d);
    let (mut w, mut h) = (fw, fh);
    if let Some(n) = notes {
        let (nw, nh) = (n.w, n.h);
        // Notes are independent boxes: no edges between them.
        let mut notes = Drawing::default();
        place(n, MARGIN + fw + NOTES_GAP, MARGIN, &mut notes);
        d.nodes.extend(notes.nodes);
        w += NOTES_GAP + nw;
        h = h.max(nh);
    }
    (d, w + 2 * MARGIN, h + 2 * MARGIN)
}

fn css_word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn svg(d: &Drawing, width: i32, height: i32, title: &str) -> String {
    let mut out = String::new();
    // Fits the window (width 100%, never wider than its own size) unless
    // the page's *actual size* box is ticked (`FLOW_STYLE`).
    let _ = writeln!(
        out,
        "<svg class=\"flow\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" preserveAspectRatio=\"xMidYMin meet\" style=\"max-width:{width}px\" role=\"img\" aria-label=\"{}\">",
        escape_html(title)
    );
    let _ = writeln!(out, "<title>{}</title>", escape_html(title));
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" class=\"arrowhead\"/></marker></defs>\n");
    out.push_str("<g class=\"edges\">\n");
    for e in &d.edges {
        let mut path = String::new();
        for (i, (x, y)) in e.points.iter().enumerate() {
            let _ = write!(path, "{}{x},{y}", if i == 0 { "M" } else { " L" });
        }
        let _ = writeln!(
            out,
            "<path d=\"{path}\"{}/>",
            if e.arrow {
                " marker-end=\"url(#arrow)\""
            } else {
                ""
            }
        );
    }
    for (x, y) in &d.joins {
        let _ = writeln!(
            out,
            "<circle class=\"join\" cx=\"{x}\" cy=\"{y}\" r=\"4\"/>"
        );
    }
    out.push_str("</g>\n<g class=\"nodes\">\n");
    for n in &d.nodes {
        let c = &n.card;
        let _ = write!(out, "<g class=\"node {}\"", escape_html(&c.class));
        if let Some(step) = &c.step {
            let _ = write!(out, " data-step=\"{}\"", escape_html(step));
        }
        out.push('>');
        if let Some(href) = &c.href {
            let _ = write!(out, "<a href=\"{}\">", escape_html(href));
        }
        let mut tip: Vec<String> = Vec::new();
        if !c.kicker.is_empty() {
            tip.push(c.kicker.clone());
        }
        tip.push(c.lines.join(" "));
        let mut tip = tip.join(": ");
        for (_, _, line) in &c.small {
            tip.push_str(" · ");
            tip.push_str(line);
        }
        let _ = write!(out, "<title>{}</title>", escape_html(&tip));
        let radius = if c.class.contains("terminal") {
            c.h / 2
        } else {
            6
        };
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{radius}\"/>",
            n.x, n.y, c.w, c.h
        );
        let cx = n.x + c.w / 2;
        let mut y = n.y + PAD_Y;
        if !c.kicker.is_empty() {
            let _ = write!(
                out,
                "<text class=\"kicker\" x=\"{cx}\" y=\"{}\">{}</text>",
                y + 10,
                escape_html(&c.kicker)
            );
            y += KICK_H;
        }
        for l in &c.lines {
            let _ = write!(
                out,
                "<text x=\"{cx}\" y=\"{}\">{}</text>",
                y + 12,
                escape_html(l)
            );
            y += LINE_H;
        }
        for (class, line, _) in &c.small {
            let _ = write!(
                out,
                "<text class=\"small {class}\" x=\"{cx}\" y=\"{}\">{}</text>",
                y + 10,
                escape_html(line)
            );
            y += KICK_H;
        }
        if c.href.is_some() {
            out.push_str("</a>");
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n</svg>\n");
    out
}

/// The SVG of one scenario.
pub fn scenario_svg(plan: &Plan, name: &str) -> Option<String> {
    let s = plan.scenarios.get(name)?;
    let (flow, notes) = scenario_shapes(plan, name, s);
    let (d, w, h) = draw(flow, notes);
    Some(svg(&d, w, h, &format!("Flow of scenario {name}")))
}

/// The SVG of one cadence.
pub fn cadence_svg(plan: &Plan, name: &str) -> Option<String> {
    let c = plan.cadences.get(name)?;
    let (flow, notes) = cadence_shapes(plan, name, c);
    let (d, w, h) = draw(flow, notes);
    Some(svg(&d, w, h, &format!("Flow of cadence {name}")))
}

/// The CSS of the drawings (the page's `<style>` holds it).
pub(crate) const FLOW_STYLE: &str = "svg.flow{display:block;font:12px ui-monospace,DejaVu Sans Mono,Menlo,Consolas,monospace}
svg.flow text{text-anchor:middle;fill:#111827}svg.flow text.kicker{font-size:10px;fill:#6b7280;text-transform:uppercase}svg.flow text.small{font-size:10px;fill:#4b5563}
svg.flow .edges path{fill:none;stroke:#6b7280;stroke-width:1.5}svg.flow .arrowhead{fill:#6b7280}svg.flow circle.join{fill:#6b7280}
svg.flow .node rect{fill:#fff;stroke:#9ca3af;stroke-width:1.5}svg.flow a:hover rect{stroke:#111827;stroke-width:2}
svg.flow .entry rect{fill:#1e3a8a;stroke:#1e3a8a}svg.flow .entry text,svg.flow .entry text.kicker{fill:#fff}
svg.flow .audience rect{fill:#eef2ff;stroke:#6366f1}
svg.flow .send rect{fill:#ecfdf5;stroke:#059669}svg.flow .channel-sms rect{fill:#f0fdfa;stroke:#0d9488}
svg.flow .channel-push rect{fill:#fff7ed;stroke:#ea580c}svg.flow .channel-task rect{fill:#faf5ff;stroke:#9333ea}
svg.flow .channel-webhook rect{fill:#f8fafc;stroke:#475569}
svg.flow .wait rect{fill:#fffbeb;stroke:#d97706}
svg.flow .branch rect,svg.flow .split rect{fill:#f5f3ff;stroke:#7c3aed}
svg.flow .arm rect{fill:#f9fafb;stroke:#9ca3af;stroke-dasharray:4 3}
svg.flow .action rect{fill:#f0f9ff;stroke:#0284c7}svg.flow .start rect{fill:#fdf2f8;stroke:#db2777}
svg.flow .exit rect{fill:#fee2e2;stroke:#dc2626}svg.flow .end rect{fill:#e5e7eb;stroke:#6b7280}
svg.flow .note rect{fill:#fefce8;stroke:#ca8a04}
.flow-scroll{overflow:auto;background:#fff;border:1px solid #e5e7eb;border-radius:6px;margin-top:8px}
.flow-scroll svg.flow{width:100%;height:auto}
#actual-size:checked~.flow-scroll svg.flow{width:auto;height:auto;max-width:none!important}
ol#sends{margin:0;padding-left:20px}.send-subject{color:#6b7280}
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Problems, SourceFile, SourceMap};

    fn plan(src: &str) -> Plan {
        let mut sources = SourceMap::new();
        sources.add(SourceFile::new("t.camp", src));
        let checked = crate::driver::check_sources(&sources, Problems::new(), 1);
        let errors: Vec<String> = checked
            .diagnostics
            .iter()
            .filter(|d| d.severity() == crate::diagnostics::Severity::Error)
            .map(|d| d.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        checked.plan.expect("a plan")
    }

    const PROJECT: &str = r#"
workspace { address = "1 rue X" }
contact {
  email: email
  phone: phone?
  country: text
  plan: enum(free, pro, team)
  interests: set<text>
  first_name: text?
}
event purchase { amount: number, sku: text }
list prospects
list customers
segment french = country in ["FR", "BE"]
template welcome : email { subject = "Hi", html = "<p>{{workspace.address}}</p><a href=\"{{unsubscribe_url}}\">u</a> {{links.gps}}", link gps = "https://a.example/gps" }
template nudge : sms { body = "Hi" }
consent sms = true
template receipt : email { kind = transactional, subject = "R", html = "x" }
template call : task { body = "Call" }
scenario s {
  audience prospects and not customers
  trigger joined prospects
  exit when customers
  goal purchase within 14d
  send welcome
  wait 2d
  branch {
    when not opened(welcome) { send welcome, wait 3d }
    when clicked(welcome.gps) { send nudge }
    when country in ["FR", "BE"] and (plan == pro or plan == team) {
      split {
        50% { tag "a" }
        50% { tag "b", exit }
      }
    }
    else { wait until count(purchase where sku == "x" since 30d ago) > 0 for 3d }
  }
  branch { when first_name is not set { untag "named" } }
  start follow
}
cadence follow {
  stop when replied(any)
  spacing = 3d
  touch welcome
  touch call after 1d
  touch receipt
}
"#;

    #[test]
    fn business_days_conditional_touches_and_delivery_attributes_are_drawn() {
        let p = plan(
            r#"
contact { email: email, phone: phone?, hot: bool }
template a : email { kind = transactional, subject = "A", html = "x", priority = high, expires = 12h }
template call : task { body = "Call" }
scenario s {
  trigger every monday 09:00
  reentry always
  send a
  wait 3 business days
  start f
}
cadence f {
  spacing = 2 business days
  touch a
  touch call when hot
  touch a after 1 business day
  touch a after 1d
}
pressure { quiet weekends, quiet task 18:00 to 09:00 }
"#,
        );
        let svg = scenario_svg(&p, "s").expect("svg");
        assert!(svg.contains("3 business days"), "{svg}");
        assert!(svg.contains("priority high"), "{svg}");
        assert!(svg.contains("expires 12h"), "{svg}");
        let svg = cadence_svg(&p, "f").expect("svg");
        for want in [
            "spacing 2 business days",
            "only when",
            "hot",
            "(else skipped)",
            "business day 2",
            "business day 3",
            "day 1 + 3 business days",
        ] {
            assert!(svg.contains(want), "{want}: {svg}");
        }
    }

    #[test]
    fn consent_and_topic_are_drawn_in_send_boxes() {
        let p = plan(
            r#"
workspace { address = "1 rue X" }
contact { email: email, phone: phone?, sms_opt_in: bool, newsletter_and_product_updates_opt_in: bool }
list prospects
topic newsletter "The monthly newsletter"
consent sms = sms_opt_in
consent email = newsletter_and_product_updates_opt_in and sms_opt_in
template news : email { topic = newsletter, subject = "News", html = "<p>{{workspace.address}}</p><a href=\"{{preferences_url}}\">u</a>" }
template nudge : sms { body = "Hi" }
template code : sms { kind = transactional, body = "Code" }
scenario s {
  trigger joined prospects
  send news
  send nudge
  send code
  start f
}
cadence f { touch nudge }
"#,
        );
        let svg = scenario_svg(&p, "s").expect("svg");
        assert!(
            svg.contains("<text class=\"small topic\"") && svg.contains(">topic: newsletter<"),
            "{svg}"
        );
        assert!(svg.contains(">consent sms: sms_opt_in<"), "{svg}");
        // A long rule is cut to the box; the tooltip has it whole.
        assert!(
            svg.contains("consent email: newsletter_and_prod…<"),
            "{svg}"
        );
        assert!(svg.contains("newsletter_and_product_updates_opt_in and sms_opt_in"));
        let (d, w, h) = drawing(&p, "s");
        assert_no_overlap(&d, w, h);
        let card = |name: &str| {
            d.nodes
                .iter()
                .find(|n| n.card.lines.first().map(String::as_str) == Some(name))
                .map(|n| &n.card)
                .expect(name)
        };
        // Consent and topic lines, each inside the box it grows.
        assert_eq!(card("news").small.len(), 2);
        assert_eq!(card("nudge").small.len(), 1);
        // A transactional message asks no consent.
        assert!(card("code").small.is_empty());
        assert_eq!(card("nudge").h, card("code").h + KICK_H);
        for n in &d.nodes {
            for (_, line, _) in &n.card.small {
                let width = (line.chars().count() as i32 * KICK_W + 99) / 100 + 2 * PAD_X;
                assert!(width <= n.card.w, "{line} in {:?}", n.card);
            }
        }
        // Cadence touches too.
        let svg = cadence_svg(&p, "f").expect("svg");
        assert!(svg.contains(">consent sms: sms_opt_in<"), "{svg}");
    }

    #[test]
    fn expressions_read_as_written() {
        let p = plan(PROJECT);
        let s = &p.scenarios["s"];
        assert_eq!(
            expr_text(s.audience.as_ref().expect("audience")),
            "prospects and not customers"
        );
        assert_eq!(
            expr_text(&p.segments["french"]),
            "country in [\"FR\", \"BE\"]"
        );
        let Step::Branch { arms, .. } = &s.steps["s/2"] else {
            panic!("a branch")
        };
        let when: Vec<String> = arms
            .iter()
            .map(|a| a.when.as_ref().map_or("else".to_string(), expr_text))
            .collect();
        assert_eq!(
            when,
            [
                "not opened(welcome)",
                "clicked(welcome.gps)",
                "country in [\"FR\", \"BE\"] and (plan == pro or plan == team)",
                "else"
            ]
        );
        let Step::WaitUntil { until, .. } = &s.steps["s/2.3.0"] else {
            panic!("wait until")
        };
        assert_eq!(
            expr_text(until),
            "count(purchase where sku == \"x\" since 30d ago) > 0"
        );
        let Step::Branch { arms, .. } = &s.steps["s/3"] else {
            panic!("a branch")
        };
        assert_eq!(
            expr_text(arms[0].when.as_ref().expect("when")),
            "first_name is not set"
        );
        assert_eq!(
            expr_text(p.cadences["follow"].stop_when.as_ref().expect("stop")),
            "replied(any)"
        );
    }

    #[test]
    fn expression_corner_cases() {
        let f = |n: &str| Term::Field(n.to_string());
        let not = |e: Expr| Expr::Not { arg: Box::new(e) };
        let seg = |n: &str| Expr::Segment {
            name: n.to_string(),
        };
        let or = Expr::Or {
            args: vec![seg("a"), seg("b")],
        };
        assert_eq!(expr_text(&not(or.clone())), "not (a or b)");
        assert_eq!(
            expr_text(&Expr::And {
                args: vec![or.clone(), not(seg("c"))]
            }),
            "(a or b) and not c"
        );
        assert_eq!(
            expr_text(&Expr::Or {
                args: vec![
                    Expr::And {
                        args: vec![seg("a"), seg("b")]
                    },
                    seg("c")
                ]
            }),
            "a and b or c"
        );
        assert_eq!(expr_text(&not(not(seg("a")))), "not not a");
        assert_eq!(
            expr_text(&not(Expr::In {
                value: f("country"),
                list: vec![Term::Text("F\"R".into()), Term::Variant("pro".into())],
            })),
            "country not in [\"F\\\"R\", pro]"
        );
        assert_eq!(
            expr_text(&Expr::Aggregate {
                function: "sum".into(),
                event: "purchase".into(),
                field: Some("amount".into()),
                filter: None,
                since: Some(Term::AgoSeconds(90 * 86_400)),
                cmp: ">".into(),
                value: Term::Number(500.5),
                distinct: false,
            }),
            "sum(purchase.amount since 90d ago) > 500.5"
        );
        assert_eq!(
            expr_text(&Expr::Aggregate {
                function: "count".into(),
                event: "page_view".into(),
                field: Some("path".into()),
                filter: None,
                since: None,
                cmp: ">=".into(),
                value: Term::Number(3.0),
                distinct: true,
            }),
            "count distinct(page_view.path) >= 3"
        );
        assert_eq!(
            expr_text(&Expr::Matches {
                value: f("phone"),
                pattern: "^\\+33".into(),
            }),
            "phone matches \"^\\\\+33\""
        );
        assert_eq!(
            expr_text(&Expr::Engagement {
                event: "opened".into(),
                template: None,
                link: None,
                since: Some(Term::AgoSeconds(30 * 86_400)),
                scope: "all".into(),
            }),
            "opened(any since 30d ago)"
        );
        assert_eq!(
            expr_text(&Expr::Contains {
                haystack: f("interests"),
                needle: Term::Text("gps".into())
            }),
            "interests contains \"gps\""
        );
        assert_eq!(expr_text(&Expr::Const { value: false }), "false");
        assert_eq!(duration_text(129_600), "1d12h");
        assert_eq!(duration_text(1_800), "30m");
        assert_eq!(duration_text(0), "0s");
    }

    #[test]
    fn wrapping_keeps_words_and_cuts_long_ones() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("x abcdefghij", 4), ["x", "abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("count(x) > 0", 10), ["count(x) > 0"]);
        assert_eq!(wrap("count(x) > 0", 8), ["count(x)", "> 0"]);
        assert!(
            wrap(&"é".repeat(100), WRAP)
                .iter()
                .all(|l| l.chars().count() <= WRAP)
        );
    }

    fn drawing(p: &Plan, name: &str) -> (Drawing, i32, i32) {
        let (flow, notes) = match p.scenarios.get(name) {
            Some(s) => scenario_shapes(p, name, s),
            None => cadence_shapes(p, name, &p.cadences[name]),
        };
        draw(flow, notes)
    }

    fn assert_no_overlap(d: &Drawing, w: i32, h: i32) {
        for (i, a) in d.nodes.iter().enumerate() {
            assert!(a.x >= 0 && a.y >= 0, "{a:?} outside");
            assert!(
                a.x + a.card.w <= w && a.y + a.card.h <= h,
                "{a:?} outside {w}×{h}"
            );
            for b in &d.nodes[i + 1..] {
                let apart = a.x + a.card.w <= b.x
                    || b.x + b.card.w <= a.x
                    || a.y + a.card.h <= b.y
                    || b.y + b.card.h <= a.y;
                assert!(apart, "{:?} overlaps {:?}", a.card.lines, b.card.lines);
            }
        }
    }

    #[test]
    fn layout_has_no_overlapping_nodes() {
        let p = plan(PROJECT);
        for name in ["s", "follow"] {
            let (d, w, h) = drawing(&p, name);
            assert_no_overlap(&d, w, h);
        }
        let (d, _, _) = drawing(&p, "s");
        // Every step is drawn once.
        for id in p.scenarios["s"].steps.keys() {
            let n = d
                .nodes
                .iter()
                .filter(|n| n.card.step.as_deref() == Some(id))
                .count();
            assert_eq!(n, 1, "{id}");
        }
        // Four explicit arms; the second branch has an implicit one.
        let arms = d
            .nodes
            .iter()
            .filter(|n| n.card.class.starts_with("arm"))
            .count();
        assert_eq!(arms, 4 + 2 + 2);
        // Edges start and end inside the drawing.
        for e in &d.edges {
            assert!(e.points.len() >= 2);
        }
    }

    #[test]
    fn arms_sit_side_by_side_below_their_branch() {
        let p = plan(PROJECT);
        let (d, _, _) = drawing(&p, "s");
        let find = |text: &str| {
            d.nodes
                .iter()
                .find(|n| n.card.lines.join(" ") == text)
                .unwrap_or_else(|| panic!("no node {text}"))
        };
        let branch = d
            .nodes
            .iter()
            .find(|n| n.card.step.as_deref() == Some("s/2"))
            .expect("branch");
        let first = find("not opened(welcome)");
        let second = find("clicked(welcome.gps)");
        assert_eq!(first.y, second.y);
        assert!(first.x + first.card.w < second.x);
        assert!(first.y > branch.y + branch.card.h);
        // The exit arm of the split does not rejoin: the branch after the
        // split still has its own merge point.
        assert!(!d.joins.is_empty());
        let end = find("end of run");
        assert!(d.nodes.iter().all(|n| n.y <= end.y));
    }

    #[test]
    fn the_svg_escapes_text_and_is_deterministic() {
        let src = PROJECT.replace("tag \"a\"", "tag \"<script>&\\\"\"");
        let p = plan(&src);
        let a = scenario_svg(&p, "s").expect("svg");
        assert_eq!(a, scenario_svg(&p, "s").expect("svg"));
        assert!(!a.contains("<script>"), "{a}");
        assert!(a.contains("&quot;&lt;script&gt;&amp;\\&quot;&quot;"), "{a}");
        assert!(a.starts_with("<svg class=\"flow\""));
        assert!(a.contains("data-step=\"s/2.2.0\""));
        assert!(a.contains("href=\"../cadence/follow.html\""));
        assert!(a.contains("href=\"../index.html#template-nudge\""));
        let c = cadence_svg(&p, "follow").expect("svg");
        assert!(c.contains("started by s"), "{c}");
        assert!(c.contains("touch 1 · day 0 · email"), "{c}");
        assert!(c.contains("touch 2 · day 1 · task"), "{c}");
        assert!(c.contains("touch 3 · day 4 · email · transactional"), "{c}");
        assert!(scenario_svg(&p, "nope").is_none());
    }

    #[test]
    fn dates_are_drawn_with_their_text() {
        let src = r#"
contact { email: email, trial_ends_at: timestamp?, birthday: date?, renewal_on: date }
template hi : email { kind = transactional, subject = "Hi", html = "x" }
segment ending = trial_ends_at - 3d <= now and renewal_on + 1d > now + 12h
scenario at_time {
  trigger at trial_ends_at - 3d 09:00
  reentry always
  wait until renewal_on - 1w
  send hi
}
scenario yearly_one {
  trigger yearly birthday 09:00
  reentry always
  send hi
}
"#;
        let p = plan(src);
        assert_eq!(
            expr_text(&p.segments["ending"]),
            "trial_ends_at - 3d <= now and renewal_on + 1d > now + 12h"
        );
        assert_eq!(
            trigger_text(&p.scenarios["at_time"].trigger),
            "at trial_ends_at - 3d 09:00"
        );
        assert_eq!(
            trigger_text(&p.scenarios["yearly_one"].trigger),
            "yearly birthday 09:00"
        );
        let svg = scenario_svg(&p, "at_time").expect("svg");
        assert!(svg.contains("at trial_ends_at - 3d 09:00"), "{svg}");
        assert!(svg.contains("wait until"), "{svg}");
        assert!(svg.contains("renewal_on - 7d"), "{svg}");
        assert!(svg.contains("at once if passed or absent"), "{svg}");
        let svg = scenario_svg(&p, "yearly_one").expect("svg");
        assert!(svg.contains("yearly birthday 09:00"), "{svg}");
    }

    #[test]
    fn every_trigger_and_goal_is_drawn() {
        let src = format!(
            "{PROJECT}\n{}",
            r#"
scenario multi {
  trigger joined customers
  trigger every weekday 09:00
  trigger every month on last 18:00
  trigger once at 2026-12-01 08:00 local
  reentry always
  goal purchase where amount > 100 within 30d value amount
  goal joined prospects within 7d
  send call
}"#
        );
        let p = plan(&src);
        let s = &p.scenarios["multi"];
        assert_eq!(
            triggers_text(s),
            "joined customers; every weekday 09:00; every month on last 18:00; once at 2026-12-01 08:00 local"
        );
        let goals: Vec<String> = s.goals.iter().map(goal_text).collect();
        assert_eq!(
            goals,
            [
                "purchase where amount > 100 within 30d value amount",
                "joined prospects within 7d"
            ]
        );
        let svg = scenario_svg(&p, "multi").expect("svg");
        for text in [
            "triggers (any one)",
            "joined customers",
            "every weekday 09:00",
            "every month on last 18:00",
            "once at 2026-12-01 08:00 local",
            "joined prospects within 7d",
        ] {
            assert!(svg.contains(text), "{text}: {svg}");
        }
        // One trigger: the card keeps its v1 title.
        let one = scenario_svg(&p, "s").expect("svg");
        assert!(!one.contains("triggers (any one)"), "{one}");
    }
}
