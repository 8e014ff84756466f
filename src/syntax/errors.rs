//! pest errors → diagnostics in a marketing engineer's words.
//!
//! pest reports the rules (and, with error detail on, the literal tokens)
//! it expected at the furthest position it reached. Each is described in
//! words; the word before the error gives context ("after `wait`").
//! Error detail costs time on every parse, so it is switched on only to
//! re-parse a file that already failed, under a lock so that the global
//! switch never changes what another thread's failing parse reports.

use std::collections::BTreeSet;
use std::sync::Mutex;

use pest::Parser;
use pest::error::{Error, ErrorVariant, InputLocation};
use pest::set_error_detail;

use super::{CampParser, Rule};
use crate::diagnostics::{Code, Diagnostic, FileId, Span};

static DETAIL: Mutex<()> = Mutex::new(());

/// Describes a failed parse of `text`, which starts at byte `base` of the
/// file; `last` says whether `text` runs to the end of the file.
pub fn describe(
    file: FileId,
    text: &str,
    base: usize,
    last: bool,
    first: Error<Rule>,
) -> Diagnostic {
    if let ErrorVariant::CustomError { message } = &first.variant {
        return limit_reached(file, text, base, &first, &message.clone());
    }
    let detailed = {
        let _guard = DETAIL.lock().unwrap_or_else(|e| e.into_inner());
        set_error_detail(true);
        let result = CampParser::parse(Rule::file, text);
        set_error_detail(false);
        result.err()
    };
    let err = detailed.unwrap_or(first);
    let classic_pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
    .min(text.len());
    let positives: &[Rule] = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        ErrorVariant::CustomError { .. } => &[],
    };

    // A keyword where a name was expected: say so plainly.
    if positives.contains(&Rule::name)
        && let Found::Word(w) = found_at(text, classic_pos)
        && is_keyword(&w)
    {
        let span = Span::new(file, base + classic_pos, base + classic_pos + w.len());
        return Diagnostic::new(
            Code::E0011,
            format!("`{w}` is a keyword and cannot be used as a name"),
        )
        .at(span, "keyword used as a name")
        .help(format!("choose another name, such as `{w}_1` or `my_{w}`"));
    }

    // Prefer the detailed attempts: they reach the true furthest position
    // and know the punctuation pest expected there.
    let mut expected: BTreeSet<(u8, String)> = BTreeSet::new();
    let mut pos = classic_pos;
    if let Some(attempts) = err.parse_attempts() {
        let mut wants_punctuation = false;
        // Right after a word, a word rule "expects" more letters: noise.
        let at = attempts.max_position.min(text.len());
        let after_word = text.is_char_boundary(at)
            && text[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && !text[at..].starts_with(|c: char| c.is_alphanumeric());
        for stack in attempts.call_stacks() {
            match rule_named(&format!("{:?}", stack.deepest)) {
                Some(r) if after_word && WORDS.contains(&r) => wants_punctuation = true,
                Some(r) if PUNCTUATED.contains(&r) => wants_punctuation = true,
                Some(r) => expected.extend(describe_rule(r)),
                None => wants_punctuation = true,
            }
        }
        if wants_punctuation {
            for token in attempts.expected_tokens() {
                // pest does not export its token type; its Display is the token.
                expected.extend(describe_token(&token.to_string()));
            }
        }
        if !expected.is_empty() {
            pos = attempts.max_position.min(text.len());
        }
    }
    if expected.is_empty() || pos == classic_pos {
        expected.extend(collapse(positives).into_iter().filter_map(describe_rule));
    }
    // A new line only matters where items or declarations are separated.
    if !expected
        .iter()
        .any(|(_, d)| d == "`,`" || d == "the end of the file")
    {
        expected.retain(|(_, d)| d != "a new line");
    }
    // A shift (`trial_ends_at - 3d`) may follow any term, which is rarely
    // what was meant: name it only when nothing else fits.
    const SHIFT: &str = SHIFT_TEXT;
    if expected.iter().any(|(_, d)| d != SHIFT) {
        expected.retain(|(_, d)| d != SHIFT);
    }
    // Inside an item, say what the item's keyword wants next.
    let follows = match previous_word(text, pos) {
        Some("trigger") => Some(
            "a trigger (`joined LIST`, `event EVENT`, `entered SEGMENT`, `every monday 09:00`, `once at TIMESTAMP`)",
        ),
        Some("reentry") => Some("`never`, `always` or `after DURATION`"),
        _ => None,
    };
    if let Some(f) = follows {
        expected.clear();
        expected.insert((1, f.to_string()));
    }
    if expected.iter().any(|(_, d)| {
        d.starts_with("a step")
            || d.starts_with("a declaration")
            || d.starts_with("a scenario setting")
    }) {
        expected.retain(|(g, _)| *g != 2);
    }
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    // Point at the next token, not at the blanks before it, and at the
    // start of a word that went wrong in its middle (`3days`).
    pos += text[pos..].len() - text[pos..].trim_start_matches([' ', '\t']).len();
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    if text[pos..].starts_with(is_word) {
        pos = text[..pos].trim_end_matches(is_word).len();
    }

    let found = found_at(text, pos);
    // Mistakes with a rule of their own: say the rule and the fix.
    if let Some(d) = known_mistake(file, text, base, pos, &found) {
        return d;
    }
    let (found_desc, found_len) = match &found {
        Found::End if last => ("the end of the file".to_string(), 0),
        Found::End => ("the next declaration".to_string(), 0),
        Found::LineEnd => ("the end of the line".to_string(), 0),
        Found::Word(w) => (format!("`{w}`"), w.len()),
        Found::Char(c) => (format!("`{c}`"), c.len_utf8()),
    };
    let span = Span::new(file, base + pos, base + pos + found_len);

    // At the end of the text, an unclosed `{` is the likely cause.
    let unclosed = if matches!(found, Found::End) {
        unclosed_brace(text)
    } else {
        None
    };
    if unclosed.is_some() {
        expected.insert((0, "`}`".to_string()));
    }

    // An attribute value is described once, not also as its parts.
    if expected
        .iter()
        .any(|(_, d)| d.starts_with("a string, `file("))
    {
        expected.retain(|(_, d)| d != "a word like `marketing`" && d != "`file`");
    }
    // After an attribute's name, `.` starts a per-locale variant
    // (`subject.en`): a missing `=` is the likely mistake, not that.
    if expected.iter().any(|(_, d)| d == "`=`") {
        expected.retain(|(_, d)| d != "`.`");
    }
    let alternatives: Vec<String> = expected.into_iter().map(|(_, d)| d).collect();
    let wanted = match alternatives.len() {
        0 => "something else".to_string(),
        1 => alternatives[0].clone(),
        n => format!(
            "{} or {}",
            alternatives[..n - 1].join(", "),
            alternatives[n - 1]
        ),
    };
    let context = previous_word(text, pos)
        .map(|w| format!(" after `{w}`"))
        .unwrap_or_default();
    let mut d = Diagnostic::new(
        Code::E0001,
        format!("expected {wanted}{context}, found {found_desc}"),
    )
    .at(span, format!("expected {}", short(&alternatives)));
    if let Some(open) = unclosed {
        d = d
            .also(
                Span::new(file, base + open, base + open + 1),
                "this `{` is never closed",
            )
            .help("add the missing `}`");
    } else if let Some(h) = hint(&found, &alternatives) {
        d = d.help(h);
    }
    d
}

/// The line of `text` around byte `pos`: its start and its text.
fn line_at(text: &str, pos: usize) -> (usize, &str) {
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    (start, text[start..end].trim_end_matches('\r'))
}

/// The last non-blank line before the line starting at `line_start`.
fn previous_line(text: &str, line_start: usize) -> Option<&str> {
    text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//"))
}

/// How the grammar's `shift` (`- 3d` after a term) is named in errors.
const SHIFT_TEXT: &str = "`+` or `-` and a duration";

const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "avg"];

/// Syntax errors that are a known mistake with a rule of its own: triggers
/// are not combined with `or`, `every WEEKDAY|day|weekday HH:MM`, `every
/// month on N HH:MM`, `once at DATE HH:MM local`, the
/// aggregate on the left of its comparison, `//` comments, attribute
/// values in quotes and `wait until … for DURATION`. Each message says
/// the rule and how to write it; `None` for every other error.
fn known_mistake(
    file: FileId,
    text: &str,
    base: usize,
    pos: usize,
    found: &Found,
) -> Option<Diagnostic> {
    let (line_start, line) = line_at(text, pos);
    let trimmed = line.trim_start();
    let found_len = match found {
        Found::Word(w) => w.len(),
        Found::Char(c) => c.len_utf8(),
        _ => 0,
    };
    let span = |from: usize, len: usize| Span::new(file, base + from, base + from + len);
    let here = span(pos, found_len);

    // `# comment`: comments are `//`.
    if let Found::Char('#') = found {
        let comment = line[pos - line_start..].trim_start_matches('#').trim();
        return Some(
            Diagnostic::new(Code::E0001, "`#` does not start a comment in a `.camp` file")
                .at(here, "not a comment")
                .help(format!(
                    "comments start with `//` (to the end of the line) or are written `/* … */`: write `// {comment}`"
                )),
        );
    }

    // Two triggers combined on a line, or continued on the next one.
    let joiner = match found {
        Found::Word(w) if w == "or" || w == "and" => Some(w.as_str()),
        Found::Char(',') => Some(","),
        _ => None,
    };
    if let Some(j) = joiner {
        // (A condition after `where` may go on with `or` on the next line:
        // that is the generic message's case.)
        let in_trigger = (trimmed.starts_with("trigger ") && !trimmed.contains(" where "))
            || (trimmed.starts_with(j)
                && previous_line(text, line_start)
                    .is_some_and(|l| l.starts_with("trigger ") && !l.contains(" where ")));
        if in_trigger {
            return Some(
                Diagnostic::new(Code::E0001, format!("`{j}` cannot combine triggers on one line"))
                    .at(here, "a second trigger starts here")
                    .help("write each trigger on its own `trigger` line (any of them starts a run); to narrow one trigger, use `audience` or `event NAME where …`"),
            );
        }
    }

    // `once at 2026-12-01 09:00` without `local` (v1.1): say what each
    // spelling means.
    if let Some(rest) = trimmed
        .strip_prefix("trigger once at ")
        .or_else(|| trimmed.strip_prefix("once at "))
    {
        let mut words = rest.split_whitespace();
        let date = words.next().unwrap_or("");
        let clock = words.next().unwrap_or("09:00");
        if date.len() == 10 && !date.contains('T') && !rest.contains(" local") {
            let once = line_start + line.find("once").unwrap_or(0);
            let len = line.trim_end().len() - (once - line_start);
            return Some(
                Diagnostic::new(Code::E0001, "a date and a time of day after `once at` need `local`")
                    .at(span(once, len), "neither a local broadcast nor a timestamp")
                    .help(format!(
                        "write `once at {date} {clock} local` for {clock} in each contact's own zone, or a timestamp with its zone like `once at {date}T{clock}:00+01:00` for one instant for everyone"
                    )),
            );
        }
    }

    // `every month 3 09:30`, `every 2 days 09:00`: only weekly and daily.
    if let Some(rest) = trimmed
        .strip_prefix("trigger every ")
        .or_else(|| trimmed.strip_prefix("every "))
    {
        let mut words = rest.split_whitespace();
        let first = words.next().unwrap_or("");
        let days = [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
            "day",
            "weekday",
        ];
        let wrong_order = days.contains(&first) && words.next().is_some_and(|w| !w.contains(':'));
        if first == "month" {
            let every = line_start + line.find("every").unwrap_or(0);
            let len = line.len() - (every - line_start);
            let mut words = rest.split_whitespace().skip(1).filter(|w| *w != "on");
            let day = words
                .next()
                .filter(|w| *w == "last" || w.bytes().all(|b| b.is_ascii_digit()))
                .unwrap_or("1");
            let clock = rest
                .split_whitespace()
                .find(|w| w.len() == 5 && w.as_bytes()[2] == b':')
                .unwrap_or("09:00");
            return Some(
                Diagnostic::new(Code::E0001, "a monthly trigger is written `every month on DAY HH:MM`")
                    .at(span(every, len), "not `every month on DAY HH:MM`")
                    .help(format!(
                        "write `every month on {day} {clock}` (the day from 1 to 28, or `last` for the last day of the month)"
                    )),
            );
        }
        if !days.contains(&first) || wrong_order {
            let every = line_start + line.find("every").unwrap_or(0);
            let len = line.len() - (every - line_start);
            let clock = rest
                .split_whitespace()
                .find(|w| w.len() == 5 && w.as_bytes()[2] == b':')
                .unwrap_or("09:00");
            return Some(
                Diagnostic::new(Code::E0001, "`every` takes a day of the week (or `day`) and a time of day, nothing else")
                    .at(span(every, len), "not `every WEEKDAY HH:MM` or `every day HH:MM`")
                    .help(format!(
                        "write `every monday {clock}` (weekly), `every weekday {clock}` (Monday to Friday), `every day {clock}` (daily) or `every month on 3 {clock}` (monthly)"
                    )),
            );
        }
    }

    // `5 < count(x)`: the aggregate goes on the left.
    if let (Found::Char('('), Some(agg)) = (found, previous_word(text, pos))
        && AGGREGATES.contains(&agg)
    {
        // `count (` too: the name ends where the blanks before `(` start.
        let agg_start = text[..pos].trim_end().len() - agg.len();
        let before = text[line_start..agg_start].trim_end();
        let op = ["<=", ">=", "==", "!=", "<", ">"]
            .into_iter()
            .find(|o| before.ends_with(o));
        if let Some(op) = op {
            let left = before[..before.len() - op.len()].trim_end();
            let value_start = left
                .rfind(|c: char| c.is_whitespace() || c == '=' || c == '(')
                .map_or(0, |i| i + 1);
            let value = &left[value_start..];
            let close = text[pos..].find(')').map(|i| pos + i + 1);
            let call = close.map_or(format!("{agg}(…)"), |c| text[agg_start..c].to_string());
            let flipped = match op {
                "<" => ">",
                ">" => "<",
                "<=" => ">=",
                ">=" => "<=",
                o => o,
            };
            let from = line_start + value_start;
            let to = close.unwrap_or(pos + 1);
            return Some(
                Diagnostic::new(
                    Code::E0001,
                    format!("`{agg}(…)` must be on the left of its comparison"),
                )
                .at(span(from, to - from), "aggregate on the right")
                .help(format!("write `{call} {flipped} {value}`")),
            );
        }
    }

    // `due = 1 day` in a template: attribute values are strings, files,
    // words or durations (`due = 1d` on a task parses, v1.1).
    if previous_word(text, pos) == Some("=")
        && enclosing_declaration(text, line_start) == Some("template")
        && let Found::Word(w) = found
        && w.starts_with(|c: char| c.is_ascii_digit())
        && let Some(attr) = trimmed.split('=').next().map(str::trim)
        && !attr.is_empty()
        && attr
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        let help = if attr == "due" {
            "`due` takes a duration written in one word, like `due = 1d` or `due = 1d12h` (on `task` templates: the task is due that long after it is sent); on other channels, `wait` before the `send` in the scenario".to_string()
        } else {
            format!(
                "a template attribute is a string in double quotes, `file(\"…\")` or a word such as `marketing`: write `{attr} = \"{w}\"`"
            )
        };
        return Some(
            Diagnostic::new(
                Code::E0001,
                format!("`{w}` is not a template attribute value"),
            )
            .at(
                here,
                "a string, `file(\"…\")`, a word or a duration goes here",
            )
            .help(help),
        );
    }

    // `wait until COND or 3d`: the time limit is `for DURATION`. Since
    // `wait until TIME` exists, such a line parses (a condition `… or 3d`)
    // and lowering gives this message (`Lower::wait_until_condition`); it
    // stays here for the lines that still fail to parse.
    if trimmed.starts_with("wait until ")
        && let Some(i) = line.rfind(" or ")
        && is_duration(line[i + 4..].trim())
    {
        let from = line_start + i + 1;
        let duration = line[i + 4..].trim();
        return Some(
            Diagnostic::new(Code::E0001, "a `wait until` ends with `for DURATION`, not `or DURATION`")
                .at(span(from, line.len() - i - 1), "the time limit")
                .help(format!(
                    "write `{} for {duration}`: the run waits until the condition holds or {duration} have passed, whichever comes first",
                    line[..i].trim()
                )),
        );
    }
    None
}

/// The keyword of the top-level declaration the line at `line_start` is in.
fn enclosing_declaration(text: &str, line_start: usize) -> Option<&str> {
    let upto = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    text[..upto]
        .lines()
        .rev()
        .find(|l| l.starts_with(|c: char| c.is_ascii_lowercase()))
        .and_then(|l| l.split_whitespace().next())
}

pub(crate) fn is_duration(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_digit() || "smhdw".contains(c))
        && s.ends_with(|c: char| "mhdw".contains(c))
}

/// The last `{` left open at the end of `text`, outside strings and comments.
fn unclosed_brace(text: &str) -> Option<usize> {
    use super::guard::{CodeScan, Token};
    let mut open: Vec<usize> = Vec::new();
    for token in CodeScan::new(text) {
        match token {
            Token::Open(i, b'{') => open.push(i),
            Token::Close(_, b'}') => {
                open.pop();
            }
            _ => {}
        }
    }
    open.last().copied()
}

fn limit_reached(
    file: FileId,
    text: &str,
    base: usize,
    err: &Error<Rule>,
    message: &str,
) -> Diagnostic {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
    .min(text.len());
    let mut start = pos;
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    Diagnostic::new(
        Code::E0005,
        format!("this file is too complex to parse ({message})"),
    )
    .at(
        Span::new(file, base + start, base + start),
        "the parser gave up here",
    )
    .help("split long expressions into named segments and long files into several files")
}

const NAME: &str = "a name";

/// pest does not export `ParseAttempt`; its Debug form is `Rule(name)` or
/// `Token`.
fn rule_named(debug: &str) -> Option<Rule> {
    let name = debug.strip_prefix("Rule(")?.strip_suffix(')')?;
    Rule::all_rules()
        .iter()
        .copied()
        .find(|r| format!("{r:?}") == name)
}

/// Rules that contain punctuation of their own: when one of them is the
/// deepest failure, the missing piece is its punctuation, not the rule.
const PUNCTUATED: &[Rule] = &[
    Rule::file,
    Rule::workspace_decl,
    Rule::contact_decl,
    Rule::event_decl,
    Rule::list_decl,
    Rule::segment_decl,
    Rule::persona_decl,
    Rule::template_decl,
    Rule::scenario_decl,
    Rule::cadence_decl,
    Rule::pressure_decl,
    Rule::topic_decl,
    Rule::consent_decl,
    Rule::template_topic,
    Rule::attr,
    Rule::file_ref,
    Rule::field_block,
    Rule::field_decl,
    Rule::enum_type,
    Rule::set_type,
    Rule::list_block,
    Rule::on_join,
    Rule::list_lit,
    Rule::paren,
    Rule::engagement,
    Rule::template_ref,
    Rule::aggregate,
    Rule::event_ref,
    Rule::persona_value,
    Rule::event_values,
    Rule::event_value,
    Rule::link_decl,
    Rule::step_block,
    Rule::branch_step,
    Rule::split_step,
    Rule::spacing,
    Rule::string,
];

/// Rules that match one word: right after a word they only ask for more letters.
const WORDS: &[Rule] = &[
    Rule::name,
    Rule::word,
    Rule::type_name,
    Rule::channel,
    Rule::weekday,
    Rule::month_day,
    Rule::goal_value_field,
    Rule::reentry_word,
    Rule::excess_action,
    Rule::cap_scope,
    Rule::keyword,
    Rule::builtin_field,
    Rule::engagement_kind,
    Rule::aggregate_fn,
    Rule::boolean,
];

/// Many keywords that all start one kind of item read better as that item.
fn collapse(positives: &[Rule]) -> Vec<Rule> {
    const STEP: &[Rule] = &[
        Rule::kw_send,
        Rule::kw_wait,
        Rule::kw_branch,
        Rule::kw_split,
        Rule::kw_join,
        Rule::kw_leave,
        Rule::kw_tag,
        Rule::kw_untag,
        Rule::kw_start,
        Rule::kw_exit,
    ];
    const SETTING: &[Rule] = &[
        Rule::kw_audience,
        Rule::kw_trigger,
        Rule::kw_reentry,
        Rule::kw_goal,
    ];
    const DECL: &[Rule] = &[
        Rule::kw_workspace,
        Rule::kw_contact,
        Rule::kw_event,
        Rule::kw_list,
        Rule::kw_segment,
        Rule::kw_template,
        Rule::kw_scenario,
        Rule::kw_cadence,
        Rule::kw_pressure,
        Rule::persona_decl,
    ];
    let mut out = Vec::new();
    for (group, stands_for) in [
        (STEP, Rule::send_step),
        (SETTING, Rule::audience),
        (DECL, Rule::scenario_decl),
    ] {
        if group.iter().filter(|r| positives.contains(r)).count() >= 3 {
            out.push(stands_for);
        }
    }
    for r in positives {
        let grouped = [STEP, SETTING, DECL].iter().any(|g| {
            g.contains(r)
                && out
                    .iter()
                    .any(|o| describe_rule(*o) == describe_rule(group_rule(g)))
        });
        if !grouped {
            out.push(*r);
        }
    }
    out
}

fn group_rule(group: &[Rule]) -> Rule {
    match group.first() {
        Some(Rule::kw_send) => Rule::send_step,
        Some(Rule::kw_audience) => Rule::audience,
        _ => Rule::scenario_decl,
    }
}

/// (sort group, words). Groups keep the most useful alternatives first.
fn describe_rule(rule: Rule) -> Option<(u8, String)> {
    let s = |g: u8, t: &str| Some((g, t.to_string()));
    match rule {
        Rule::name => s(1, NAME),
        Rule::word => s(1, "a word like `marketing`"),
        Rule::type_name => s(
            1,
            "a type (`text`, `number`, `bool`, `date`, `timestamp`, `email`, `phone`, `device`, `timezone`, `enum(…)`, `set<text>`)",
        ),
        Rule::channel => s(1, "a channel (`email`, `sms`, `push`, `task`, `webhook`)"),
        Rule::weekday => s(1, "a weekday like `monday`, or `day`"),
        Rule::reentry_word => s(1, "`never`, `always` or `after DURATION`"),
        Rule::excess_action => s(1, "`defer` or `drop`"),
        Rule::cap_scope => s(
            1,
            "a pressure setting (`email max 3 per 7d`, `gap 12h`, `quiet 21:00 to 08:00`, `on excess defer`, `under below 1 per 14d`)",
        ),
        Rule::duration => s(1, "a duration like `3d`"),
        Rule::business_days => s(1, "business days like `2 business days`"),
        Rule::quiet_channel => s(1, "a channel (`email`, `sms`, `push`, `task`, `webhook`)"),
        Rule::quiet_weekends => s(2, "`weekends`"),
        Rule::timestamp => s(1, "a timestamp like `2026-01-15T09:00:00Z`"),
        Rule::date => s(1, "a date like `2026-01-15`"),
        Rule::clock => s(1, "a time of day like `09:00`"),
        Rule::percent => s(1, "a share like `50%`"),
        Rule::number => s(1, "a number"),
        Rule::integer => s(1, "a whole number"),
        Rule::string => s(1, "a string in double quotes"),
        Rule::string_end => s(0, "a closing `\"` (strings end on the line they start)"),
        Rule::term | Rule::ago | Rule::boolean | Rule::builtin_field => {
            s(1, "a value (a field, a literal, `now` or `14d ago`)")
        }
        Rule::list_lit => s(1, "a list like `[\"FR\", \"BE\"]`"),
        Rule::expr
        | Rule::and_expr
        | Rule::not_expr
        | Rule::paren
        | Rule::term_test
        | Rule::aggregate_cmp
        | Rule::engagement
        | Rule::aggregate => s(1, "a condition"),
        Rule::engagement_kind => s(
            2,
            "`opened(…)`, `clicked(…)`, `delivered(…)`, `replied(…)` or `bounced(…)`",
        ),
        Rule::aggregate_fn => s(2, "`count(…)`, `sum(…)`, `min(…)`, `max(…)` or `avg(…)`"),
        Rule::template_ref => s(1, "a template name or `any`"),
        Rule::event_ref => s(1, "an event name"),
        Rule::cmp_op | Rule::cmp_tail => s(2, "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)"),
        Rule::in_tail => s(3, "`in [...]`"),
        Rule::contains_tail => s(3, "`contains`"),
        Rule::is_set_tail => s(3, "`is set`"),
        Rule::workspace_decl
        | Rule::contact_decl
        | Rule::event_decl
        | Rule::list_decl
        | Rule::segment_decl
        | Rule::persona_decl
        | Rule::template_decl
        | Rule::scenario_decl
        | Rule::cadence_decl
        | Rule::pressure_decl
        | Rule::topic_decl
        | Rule::consent_decl => s(
            1,
            "a declaration (`workspace`, `contact`, `event`, `list`, `segment`, `persona`, `template`, `scenario`, `cadence`, `pressure`, `topic` or `consent`)",
        ),
        Rule::template_topic => s(1, "`topic = NAME`"),
        Rule::attr => s(1, "an attribute like `subject = \"…\"`"),
        Rule::delivery_attr => s(1, "`priority = high` or `expires = 12h`"),
        Rule::attr_value => s(1, "a string, `file(\"…\")`, a word or a duration"),
        Rule::file_ref => s(1, "`file(\"path\")`"),
        Rule::link_decl => s(1, "`link NAME = \"https://…\"`"),
        Rule::field_block => s(1, "`{` and a list of fields"),
        Rule::field_decl => s(1, "a field like `country: text`"),
        Rule::type_expr | Rule::enum_type | Rule::set_type => s(1, "a type"),
        Rule::optional => s(4, "`?`"),
        Rule::list_block => s(2, "`{`"),
        Rule::on_join => s(1, "`on join { … }`"),
        Rule::persona_value | Rule::event_value => s(1, "a value like `country = \"FR\"`"),
        Rule::persona_event => s(1, "`event NAME { … } at TIME`"),
        Rule::persona_expect => s(1, "`expect CONDITION`"),
        Rule::event_values => s(3, "`{ field = value, … }`"),
        Rule::audience | Rule::trigger | Rule::reentry | Rule::exit_when | Rule::goal => s(
            1,
            "a scenario setting (`audience`, `trigger`, `reentry`, `exit when`, `goal`)",
        ),
        Rule::trigger_joined
        | Rule::trigger_event
        | Rule::trigger_entered
        | Rule::trigger_every
        | Rule::trigger_once
        | Rule::trigger_at
        | Rule::trigger_yearly => s(
            1,
            "a trigger (`joined LIST`, `event EVENT`, `entered SEGMENT`, `every monday 09:00`, `once at TIMESTAMP`)",
        ),
        Rule::send_step
        | Rule::wait_until_step
        | Rule::wait_step
        | Rule::branch_step
        | Rule::split_step
        | Rule::join_step
        | Rule::leave_step
        | Rule::tag_step
        | Rule::untag_step
        | Rule::start_step
        | Rule::exit_step
        | Rule::wait_until_time_step => s(
            1,
            "a step (`send`, `wait`, `branch`, `split`, `join`, `leave`, `tag`, `untag`, `start`, `exit`)",
        ),
        Rule::step_block => s(1, "`{` and a list of steps"),
        Rule::when_arm | Rule::else_arm => s(1, "`when CONDITION { … }` or `else { … }`"),
        Rule::split_arm => s(1, "a share and its steps, like `50% { … }`"),
        Rule::stop_when | Rule::spacing | Rule::touch => s(
            1,
            "a cadence item (`touch TEMPLATE`, `spacing = 3d`, `stop when …`)",
        ),
        Rule::cap | Rule::gap | Rule::quiet | Rule::on_excess | Rule::under_below => s(
            1,
            "a pressure setting (`email max 3 per 7d`, `gap 12h`, `quiet 21:00 to 08:00`, `on excess defer`, `under below 1 per 14d`)",
        ),
        Rule::shift | Rule::shift_op => s(4, SHIFT_TEXT),
        Rule::EOI => s(5, "the end of the file"),
        Rule::kw_workspace => s(2, "`workspace`"),
        Rule::kw_contact => s(2, "`contact`"),
        Rule::kw_event => s(2, "`event`"),
        Rule::kw_list => s(2, "`list`"),
        Rule::kw_segment => s(2, "`segment`"),
        Rule::kw_persona => s(2, "`persona`"),
        Rule::kw_negative => s(2, "`negative`"),
        Rule::kw_template => s(2, "`template`"),
        Rule::kw_scenario => s(2, "`scenario`"),
        Rule::kw_cadence => s(2, "`cadence`"),
        Rule::kw_pressure => s(2, "`pressure`"),
        Rule::kw_and => s(3, "`and`"),
        Rule::kw_or => s(3, "`or`"),
        Rule::kw_not => s(2, "`not`"),
        Rule::kw_in => s(3, "`in`"),
        Rule::kw_contains => s(3, "`contains`"),
        Rule::kw_is => s(3, "`is`"),
        Rule::kw_set => s(2, "`set`"),
        Rule::kw_ago => s(2, "`ago`"),
        Rule::kw_now => s(2, "`now`"),
        Rule::kw_any => s(2, "`any`"),
        Rule::kw_where => s(3, "`where`"),
        Rule::kw_since => s(3, "`since`"),
        Rule::kw_within => s(2, "`within`"),
        Rule::kw_send => s(2, "`send`"),
        Rule::kw_wait => s(2, "`wait`"),
        Rule::kw_until => s(2, "`until`"),
        Rule::kw_for => s(2, "`for`"),
        Rule::kw_branch => s(2, "`branch`"),
        Rule::kw_when => s(2, "`when`"),
        Rule::kw_else => s(2, "`else`"),
        Rule::kw_split => s(2, "`split`"),
        Rule::kw_join => s(2, "`join`"),
        Rule::kw_leave => s(2, "`leave`"),
        Rule::kw_tag => s(2, "`tag`"),
        Rule::kw_untag => s(2, "`untag`"),
        Rule::kw_start => s(2, "`start`"),
        Rule::kw_exit => s(2, "`exit`"),
        Rule::kw_audience => s(2, "`audience`"),
        Rule::kw_trigger => s(2, "`trigger`"),
        Rule::kw_reentry => s(2, "`reentry`"),
        Rule::kw_goal => s(2, "`goal`"),
        Rule::kw_joined => s(2, "`joined`"),
        Rule::kw_entered => s(2, "`entered`"),
        Rule::kw_every => s(2, "`every`"),
        Rule::kw_once => s(2, "`once`"),
        Rule::kw_at => s(2, "`at`"),
        Rule::kw_expect => s(2, "`expect`"),
        Rule::kw_touch => s(2, "`touch`"),
        Rule::kw_after => s(3, "`after`"),
        Rule::kw_stop => s(2, "`stop`"),
        Rule::kw_spacing => s(2, "`spacing`"),
        Rule::kw_link => s(2, "`link`"),
        Rule::kw_file => s(2, "`file`"),
        Rule::kw_max => s(2, "`max`"),
        Rule::kw_per => s(2, "`per`"),
        Rule::kw_gap => s(2, "`gap`"),
        Rule::kw_quiet => s(2, "`quiet`"),
        Rule::kw_to => s(2, "`to`"),
        Rule::kw_on => s(2, "`on`"),
        Rule::kw_under => s(2, "`under`"),
        Rule::kw_below => s(2, "`below`"),
        Rule::kw_excess => s(2, "`excess`"),
        Rule::trigger_monthly => s(1, "a monthly trigger like `every month on 3 09:00`"),
        Rule::trigger_once_local => s(1, "a local broadcast like `once at 2026-12-01 09:00 local`"),
        Rule::month_day => s(1, "a day of the month from 1 to 28, or `last`"),
        Rule::goal_value_field => s(1, "a number field of the goal event (like `amount`)"),
        Rule::goal_event | Rule::goal_joined => s(
            1,
            "a goal like `goal purchase within 14d` or `goal joined customers within 30d`",
        ),
        Rule::kw_month => s(2, "`month`"),
        Rule::kw_local => s(2, "`local`"),
        Rule::kw_value => s(2, "`value`"),
        Rule::kw_business => s(2, "`business`"),
        Rule::kw_days => s(2, "`days`"),
        Rule::locale_list => s(1, "a list of locales like `[fr, en]`"),
        // Described by the `attr` they stand beside.
        Rule::locales_attr | Rule::locale_attr | Rule::variant_attr => None,
        Rule::kw_locales => s(2, "`locales`"),
        Rule::file | Rule::keyword | Rule::string_raw => None,
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn describe_token(token: &str) -> Option<(u8, String)> {
    match token {
        "{" | "}" | "(" | ")" | "[" | "]" | "=" | ":" | "," | "." | "<" | ">" | "?" | "%" => {
            Some((2, format!("`{token}`")))
        }
        "\r\n" | "\n" | "\r" => Some((4, "a new line".to_string())),
        _ => None,
    }
}

enum Found {
    End,
    LineEnd,
    Word(String),
    Char(char),
}

fn found_at(text: &str, pos: usize) -> Found {
    let rest = &text[pos..];
    let Some(c) = rest.chars().next() else {
        return Found::End;
    };
    if c == '\n' || c == '\r' {
        return Found::LineEnd;
    }
    if c.is_alphanumeric() || c == '_' {
        let w: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == ':' || *c == '.')
            .collect();
        // Keep punctuation only inside literals like dates and times.
        let w = if w.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            w
        } else {
            w.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        return Found::Word(w);
    }
    Found::Char(c)
}

/// The word just before `pos` on the same line, for "after `wait`".
fn previous_word(text: &str, pos: usize) -> Option<&str> {
    let before = &text[..pos];
    let line = &before[before.rfind('\n').map(|i| i + 1).unwrap_or(0)..];
    let line = line.trim_end();
    let start = line
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map(|i| i + line[i..].chars().next().map_or(1, char::len_utf8))
        .unwrap_or(0);
    let w = &line[start..];
    if w.is_empty() {
        // A symbol such as `=`, `==` or `{`.
        let start = line
            .rfind(|c: char| !"=!<>{(:,".contains(c))
            .map(|i| i + line[i..].chars().next().map_or(1, char::len_utf8))
            .unwrap_or(0);
        let sym = &line[start..];
        return if sym.is_empty() || sym.len() > 2 {
            None
        } else {
            Some(sym)
        };
    }
    Some(w)
}

fn short(alternatives: &[String]) -> String {
    match alternatives.first() {
        Some(first) if alternatives.len() == 1 => first.clone(),
        Some(first) => format!("{first} or …"),
        None => "something else".to_string(),
    }
}

fn hint(found: &Found, alternatives: &[String]) -> Option<String> {
    let wants = |s: &str| alternatives.iter().any(|a| a.contains(s));
    match found {
        Found::Word(w) if w.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && wants(NAME) => Some(format!(
            "names are lowercase letters, digits and `_`: write `{}`",
            w.to_lowercase()
        )),
        Found::Word(w) if wants(NAME) && !w.is_ascii() => {
            Some("names use only lowercase ASCII letters, digits and `_`, like `interets_gps`".into())
        }
        Found::Word(w) if (w == "and" || w == "or") => Some(format!(
            "a condition continues on the next line only when the previous line ends with `and` or `or`: move `{w}` up"
        )),
        Found::LineEnd if wants("`{`") => Some("write `{` on the same line as what it opens".into()),
        Found::Word(w) if !is_keyword(w) && (wants("a step") || wants("a declaration") || wants("a scenario setting") || wants("a cadence item") || wants("a pressure setting"))
            && crate::diagnostics::did_you_mean(w, KEYWORDS.iter().copied()).is_some() =>
        {
            crate::diagnostics::did_you_mean(w, KEYWORDS.iter().copied()).map(|k| format!("did you mean `{k}`?"))
        }
        Found::Word(_) if wants("a new line") || wants("`,`") => {
            Some("put each item on its own line, or separate items with `,`".into())
        }
        Found::LineEnd if wants("a condition") => Some(
            "write the condition on the same line; a long condition may break after `and`, `or` or `(`".into(),
        ),
        Found::Char('\'') => Some("strings use double quotes: \"…\"".into()),
        Found::Char('=') if wants("a comparison") => Some("to compare, write `==`; `=` only sets values".into()),
        _ if wants("a duration") => Some("durations are a number and a unit: `30m`, `2h`, `3d`, `2w`, or a sum like `1d12h`".into()),
        _ => None,
    }
}

/// The reserved words of §1: never a name.
pub const KEYWORDS: &[&str] = &[
    "workspace",
    "contact",
    "event",
    "list",
    "segment",
    "persona",
    "negative",
    "template",
    "scenario",
    "cadence",
    "pressure",
    "and",
    "or",
    "not",
    "in",
    "contains",
    "is",
    "set",
    "ago",
    "now",
    "any",
    "true",
    "false",
    "where",
    "since",
    "within",
    "send",
    "wait",
    "until",
    "for",
    "branch",
    "when",
    "else",
    "split",
    "join",
    "leave",
    "tag",
    "untag",
    "start",
    "exit",
    "audience",
    "trigger",
    "reentry",
    "goal",
    "joined",
    "entered",
    "every",
    "once",
    "at",
    "expect",
    "touch",
    "after",
    "stop",
    "spacing",
    "link",
    "file",
    "max",
    "per",
    "gap",
    "quiet",
    "to",
    "on",
    "under",
    "below",
    "topic",
    "consent",
    "locale",
    "business",
    "days",
    "day",
    "yearly",
    "month",
    "weekday",
    "local",
    "distinct",
    "starts_with",
    "ends_with",
    "matches",
    "priority",
    "expires",
];

pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}
