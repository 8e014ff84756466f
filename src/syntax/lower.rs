//! pest pairs → typed AST, one `lower_<rule>` function per rule. Literals
//! are decoded and validated here (escapes, dates, clock times), and words
//! with a fixed meaning in their place (weekdays, `never`/`always`,
//! `defer`/`drop`) are checked, so the checker sees only well-formed values.

use pest::iterators::Pair;

use super::Rule;
use super::ast::*;
use crate::diagnostics::{Code, Diagnostic, FileId, Problems, Span, Spanned, suggest};

type P<'i> = Pair<'i, Rule>;

/// Lowers a parse of `src[base..]` (a whole file when `base` is 0, one
/// declaration when recovering from a syntax error).
pub fn lower_decls(
    file: FileId,
    src: &str,
    base: usize,
    root: P<'_>,
    problems: &mut Problems,
) -> Vec<Decl> {
    let mut cx = Lower {
        file,
        base,
        problems,
    };
    let mut decls = Vec::new();
    for pair in root.into_inner() {
        if pair.as_rule() == Rule::EOI {
            continue;
        }
        let span = cx.span(&pair);
        let doc = doc_comment(src, span.start as usize);
        let kind = match pair.as_rule() {
            Rule::workspace_decl => DeclKind::Workspace(cx.lower_workspace(pair)),
            Rule::contact_decl => DeclKind::Contact(cx.lower_contact(pair)),
            Rule::event_decl => DeclKind::Event(cx.lower_event_decl(pair)),
            Rule::list_decl => DeclKind::List(cx.lower_list(pair)),
            Rule::segment_decl => DeclKind::Segment(cx.lower_segment(pair)),
            Rule::persona_decl => DeclKind::Persona(cx.lower_persona(pair)),
            Rule::template_decl => DeclKind::Template(cx.lower_template(pair)),
            Rule::scenario_decl => DeclKind::Scenario(cx.lower_scenario(pair)),
            Rule::cadence_decl => DeclKind::Cadence(cx.lower_cadence(pair)),
            Rule::pressure_decl => DeclKind::Pressure(cx.lower_pressure(pair)),
            Rule::topic_decl => DeclKind::Topic(cx.lower_topic(pair)),
            Rule::consent_decl => DeclKind::Consent(cx.lower_consent(pair)),
            r => unreachable!("lower_file: unexpected rule {r:?}"),
        };
        decls.push(Decl { kind, span, doc });
    }
    decls
}

/// The `///` lines directly above byte offset `start`, joined.
fn doc_comment(src: &str, start: usize) -> Option<String> {
    let before = &src[..start];
    let mut lines: Vec<&str> = Vec::new();
    // Skip the rest of the declaration's own line (there is none: `start` is
    // at the keyword), then walk up line by line.
    let mut rest = before.trim_end_matches([' ', '\t']);
    rest = rest.strip_suffix('\n').unwrap_or(rest);
    rest = rest.strip_suffix('\r').unwrap_or(rest);
    loop {
        let line_start = rest.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line = rest[line_start..].trim();
        match line.strip_prefix("///") {
            Some(text) if !text.starts_with('/') => {
                lines.push(text.strip_prefix(' ').unwrap_or(text).trim_end())
            }
            _ => break,
        }
        if line_start == 0 {
            break;
        }
        rest = &rest[..line_start - 1];
        rest = rest.strip_suffix('\r').unwrap_or(rest);
    }
    if lines.is_empty() {
        return None;
    }
    lines.reverse();
    Some(lines.join("\n"))
}

struct Lower<'p> {
    file: FileId,
    /// Offset of the parsed text in the file.
    base: usize,
    problems: &'p mut Problems,
}

impl Lower<'_> {
    fn span(&self, pair: &P<'_>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, self.base + s.start(), self.base + s.end())
    }

    fn ident(&self, pair: P<'_>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.problems.push(d);
    }

    // ------------------------------------------------------------ schema

    fn lower_workspace(&mut self, pair: P<'_>) -> Workspace {
        let mut keyword = Span::default();
        let mut attrs = Vec::new();
        let mut locales = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_workspace => keyword = self.span(&p),
                Rule::attr => attrs.push(self.lower_attr(p)),
                Rule::locales_attr => {
                    let mut inner = p.into_inner();
                    let kw = inner.next().expect("lower_workspace: locales");
                    let list = inner.next().expect("lower_workspace: locale list");
                    locales.push(LocalesSetting {
                        keyword: self.span(&kw),
                        names: list.into_inner().map(|w| self.ident(w)).collect(),
                    });
                }
                Rule::locale_attr => {
                    let mut inner = p.into_inner();
                    let kw = inner.next().expect("lower_workspace: locale");
                    let field = inner.next().expect("lower_workspace: locale field");
                    let span = self.span(&field);
                    attrs.push(Attr {
                        name: Ident {
                            name: "locale".to_string(),
                            span: self.span(&kw),
                        },
                        value: Spanned::new(AttrValue::Word(field.as_str().to_string()), span),
                    });
                }
                _ => {}
            }
        }
        Workspace {
            keyword,
            attrs,
            locales,
        }
    }

    fn lower_attr(&mut self, pair: P<'_>) -> Attr {
        let mut inner = pair.into_inner();
        let name = self.ident(inner.next().expect("lower_attr: name"));
        let value = self.lower_attr_value(inner.next().expect("lower_attr: value"));
        Attr { name, value }
    }

    fn lower_attr_value(&mut self, value_pair: P<'_>) -> Spanned<AttrValue> {
        let span = self.span(&value_pair);
        let v = value_pair
            .into_inner()
            .next()
            .expect("lower_attr_value: inner");
        let value = match v.as_rule() {
            Rule::string => AttrValue::Str(self.lower_string(v)),
            Rule::word | Rule::upper_word => AttrValue::Word(v.as_str().to_string()),
            Rule::duration => AttrValue::Duration(self.lower_duration(v).node),
            Rule::file_ref => {
                let s = v
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::string)
                    .expect("lower_attr_value: file path");
                let sspan = self.span(&s);
                AttrValue::File(Spanned::new(self.lower_string(s), sspan))
            }
            r => unreachable!("lower_attr_value: {r:?}"),
        };
        Spanned::new(value, span)
    }

    fn lower_contact(&mut self, pair: P<'_>) -> Schema {
        let mut keyword = Span::default();
        let mut fields = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_contact => keyword = self.span(&p),
                Rule::field_block => fields = self.lower_field_block(p),
                _ => {}
            }
        }
        Schema { keyword, fields }
    }

    fn lower_event_decl(&mut self, pair: P<'_>) -> EventDecl {
        let mut name = None;
        let mut fields = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::name => name = Some(self.ident(p)),
                Rule::field_block => fields = self.lower_field_block(p),
                _ => {}
            }
        }
        EventDecl {
            name: name.expect("lower_event_decl: name"),
            fields,
        }
    }

    fn lower_field_block(&mut self, pair: P<'_>) -> Vec<FieldDecl> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::field_decl)
            .map(|p| self.lower_field_decl(p))
            .collect()
    }

    fn lower_field_decl(&mut self, pair: P<'_>) -> FieldDecl {
        let mut inner = pair.into_inner();
        let name = self.ident(inner.next().expect("lower_field_decl: name"));
        let ty_pair = inner.next().expect("lower_field_decl: type");
        let mut optional = false;
        let mut ty = None;
        for p in ty_pair.into_inner() {
            let span = self.span(&p);
            match p.as_rule() {
                Rule::optional => optional = true,
                Rule::type_name => {
                    ty = Some(Spanned::new(TypeExpr::Named(p.as_str().to_string()), span))
                }
                Rule::enum_type => {
                    let variants = p
                        .into_inner()
                        .filter(|v| v.as_rule() == Rule::name)
                        .map(|v| self.ident(v))
                        .collect();
                    ty = Some(Spanned::new(TypeExpr::Enum(variants), span));
                }
                Rule::set_type => {
                    let elem = p
                        .into_inner()
                        .find(|v| v.as_rule() == Rule::type_name)
                        .expect("lower_field_decl: set element");
                    ty = Some(Spanned::new(TypeExpr::Set(self.ident(elem)), span));
                }
                r => unreachable!("lower_field_decl: {r:?}"),
            }
        }
        FieldDecl {
            name,
            ty: ty.expect("lower_field_decl: type"),
            optional,
        }
    }

    fn lower_list(&mut self, pair: P<'_>) -> ListDecl {
        let mut name = None;
        let mut on_join = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::name => name = Some(self.ident(p)),
                Rule::list_block => {
                    for rule in p.into_inner().filter(|r| r.as_rule() == Rule::on_join) {
                        for step in rule.into_inner() {
                            if let Some(s) = self.lower_step_opt(step) {
                                on_join.push(s);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        ListDecl {
            name: name.expect("lower_list: name"),
            on_join,
        }
    }

    fn lower_segment(&mut self, pair: P<'_>) -> Segment {
        let mut name = None;
        let mut expr = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::name => name = Some(self.ident(p)),
                Rule::expr => expr = Some(self.lower_expr(p)),
                _ => {}
            }
        }
        Segment {
            name: name.expect("lower_segment: name"),
            expr: expr.expect("lower_segment: expr"),
        }
    }

    // ------------------------------------------------------------ personas

    fn lower_persona(&mut self, pair: P<'_>) -> Persona {
        let mut persona = Persona {
            name: Ident {
                name: String::new(),
                span: Span::default(),
            },
            negative: false,
            values: Vec::new(),
            events: Vec::new(),
            expects: Vec::new(),
        };
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_negative => persona.negative = true,
                Rule::name => persona.name = self.ident(p),
                Rule::persona_value => persona.values.push(self.lower_field_value(p)),
                Rule::persona_event => {
                    let span = self.span(&p);
                    let mut name = None;
                    let mut values = Vec::new();
                    let mut at = None;
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::name => name = Some(self.ident(q)),
                            Rule::event_values => {
                                values = q.into_inner().map(|v| self.lower_field_value(v)).collect()
                            }
                            Rule::term => at = Some(self.lower_term(q)),
                            _ => {}
                        }
                    }
                    persona.events.push(PersonaEvent {
                        name: name.expect("lower_persona: event name"),
                        values,
                        at: at.expect("lower_persona: event time"),
                        span,
                    });
                }
                Rule::persona_expect => {
                    let e = p
                        .into_inner()
                        .find(|q| q.as_rule() == Rule::expr)
                        .expect("lower_persona: expect expr");
                    persona.expects.push(self.lower_expr(e));
                }
                _ => {}
            }
        }
        persona
    }

    fn lower_field_value(&mut self, pair: P<'_>) -> FieldValue {
        let mut inner = pair.into_inner();
        let name = self.ident(inner.next().expect("lower_field_value: name"));
        let v = inner.next().expect("lower_field_value: value");
        let value = match v.as_rule() {
            Rule::list_lit => Value::List(self.lower_list_lit(v)),
            Rule::term => Value::Term(self.lower_term(v)),
            r => unreachable!("lower_field_value: {r:?}"),
        };
        FieldValue { name, value }
    }

    fn lower_list_lit(&mut self, pair: P<'_>) -> Spanned<Vec<Term>> {
        let span = self.span(&pair);
        let items = pair.into_inner().map(|t| self.lower_term(t)).collect();
        Spanned::new(items, span)
    }

    // ------------------------------------------------------------ templates

    fn lower_template(&mut self, pair: P<'_>) -> Template {
        let mut name = None;
        let mut channel = None;
        let mut attrs = Vec::new();
        let mut links = Vec::new();
        let mut headers = Vec::new();
        let mut variants = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::name => name = Some(self.ident(p)),
                Rule::channel => channel = Some(self.ident(p)),
                Rule::attr | Rule::delivery_attr => attrs.push(self.lower_attr(p)),
                Rule::template_topic => attrs.push(self.lower_template_topic(p)),
                Rule::variant_attr => variants.push(self.lower_variant(p)),
                Rule::link_decl => {
                    let mut inner = p.into_inner().filter(|q| q.as_rule() != Rule::kw_link);
                    let lname = self.ident(inner.next().expect("lower_template: link name"));
                    let url = inner.next().expect("lower_template: link url");
                    let uspan = self.span(&url);
                    links.push(Link {
                        name: lname,
                        url: Spanned::new(self.lower_string(url), uspan),
                    });
                }
                Rule::header_decl => headers.push(self.lower_header(p)),
                _ => {}
            }
        }
        Template {
            name: name.expect("lower_template: name"),
            channel: channel.expect("lower_template: channel"),
            attrs,
            links,
            headers,
            variants,
        }
    }

    /// `subject.en = "…"`: lowered as the attribute `subject = "…"` and its
    /// locale.
    fn lower_variant(&mut self, pair: P<'_>) -> Variant {
        let mut inner = pair.into_inner();
        let name = self.ident(inner.next().expect("lower_variant: name"));
        let locale = self.ident(inner.next().expect("lower_variant: locale"));
        let value = self.lower_attr_value(inner.next().expect("lower_variant: value"));
        Variant {
            locale,
            attr: Attr { name, value },
        }
    }

    fn lower_header(&mut self, pair: P<'_>) -> Header {
        let mut inner = pair
            .into_inner()
            .filter(|q| q.as_rule() != Rule::header_word);
        let n = inner.next().expect("lower_header: name");
        let nspan = self.span(&n);
        let name = Spanned::new(self.lower_string(n), nspan);
        let v = inner.next().expect("lower_header: value");
        let value_span = self.span(&v);
        let mut value = Vec::new();
        for q in v.into_inner() {
            let qspan = self.span(&q);
            match q.as_rule() {
                Rule::string => {
                    value.push(HeaderPiece::Text(Spanned::new(self.lower_string(q), qspan)))
                }
                Rule::env_ref => {
                    let s = q
                        .into_inner()
                        .find(|r| r.as_rule() == Rule::string)
                        .expect("lower_header: env name");
                    value.push(HeaderPiece::Env(Spanned::new(self.lower_string(s), qspan)));
                }
                _ => {}
            }
        }
        Header {
            name,
            value,
            value_span,
        }
    }

    /// `topic = newsletter` → the attribute `topic` with the word as value
    /// (`topic` is a keyword, so the `attr` rule cannot read it).
    fn lower_template_topic(&mut self, pair: P<'_>) -> Attr {
        let mut name = None;
        let mut value = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_topic => {
                    name = Some(Ident {
                        name: "topic".to_string(),
                        span: self.span(&p),
                    })
                }
                Rule::attr_value => value = Some(self.lower_attr_value(p)),
                _ => {}
            }
        }
        Attr {
            name: name.expect("lower_template_topic: keyword"),
            value: value.expect("lower_template_topic: value"),
        }
    }

    // ------------------------------------------------------------ consent

    fn lower_topic(&mut self, pair: P<'_>) -> TopicDecl {
        let mut name = None;
        let mut label = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::name => name = Some(self.ident(p)),
                Rule::string => {
                    let span = self.span(&p);
                    label = Some(Spanned::new(self.lower_string(p), span));
                }
                _ => {}
            }
        }
        TopicDecl {
            name: name.expect("lower_topic: name"),
            label: label.expect("lower_topic: label"),
        }
    }

    fn lower_consent(&mut self, pair: P<'_>) -> ConsentRule {
        let mut keyword = None;
        let mut channel = None;
        let mut expr = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_consent => keyword = Some(self.span(&p)),
                Rule::channel => channel = Some(self.ident(p)),
                Rule::expr => expr = Some(self.lower_expr(p)),
                _ => {}
            }
        }
        ConsentRule {
            keyword: keyword.expect("lower_consent: keyword"),
            channel: channel.expect("lower_consent: channel"),
            expr: expr.expect("lower_consent: expr"),
        }
    }

    // ------------------------------------------------------------ scenarios

    fn lower_scenario(&mut self, pair: P<'_>) -> Scenario {
        let mut s = Scenario {
            name: Ident {
                name: String::new(),
                span: Span::default(),
            },
            audience: Vec::new(),
            triggers: Vec::new(),
            reentry: Vec::new(),
            exit_when: Vec::new(),
            goals: Vec::new(),
            steps: Vec::new(),
        };
        for p in pair.into_inner() {
            let span = self.span(&p);
            match p.as_rule() {
                Rule::name => s.name = self.ident(p),
                Rule::audience => s.audience.push(self.lower_expr_child(p)),
                Rule::exit_when => s.exit_when.push(self.lower_expr_child(p)),
                Rule::trigger => {
                    // An invalid trigger was reported; keep its place so the
                    // scenario is not also reported as having none.
                    let t = self.lower_trigger(p).unwrap_or(Trigger::Invalid);
                    s.triggers.push(Spanned::new(t, span));
                }
                Rule::reentry => {
                    if let Some(r) = self.lower_reentry(p) {
                        s.reentry.push(Spanned::new(r, span));
                    }
                }
                Rule::goal => s.goals.push(self.lower_goal(p, span)),
                _ => {
                    if let Some(step) = self.lower_step_opt(p) {
                        s.steps.push(step);
                    }
                }
            }
        }
        s
    }

    fn lower_goal(&mut self, pair: P<'_>, span: Span) -> Goal {
        let g = pair
            .into_inner()
            .find(|q| q.as_rule() != Rule::kw_goal)
            .expect("lower_goal: kind");
        let joined = g.as_rule() == Rule::goal_joined;
        let mut event = None;
        let mut within = None;
        let mut filter = None;
        let mut value = None;
        for q in g.into_inner() {
            match q.as_rule() {
                Rule::name => event = Some(self.ident(q)),
                Rule::duration => within = Some(self.lower_duration(q)),
                Rule::expr => filter = Some(Box::new(self.lower_expr(q))),
                Rule::goal_value_field => value = Some(self.ident(q)),
                _ => {}
            }
        }
        Goal {
            event: event.expect("lower_goal: goal event"),
            within: within.expect("lower_goal: goal duration"),
            span,
            filter,
            value,
            joined,
        }
    }

    fn lower_expr_child(&mut self, pair: P<'_>) -> Expr {
        let e = pair
            .into_inner()
            .find(|q| q.as_rule() == Rule::expr)
            .expect("lower_expr_child: expr");
        self.lower_expr(e)
    }

    fn lower_trigger(&mut self, pair: P<'_>) -> Option<Trigger> {
        let t = pair
            .into_inner()
            .find(|q| q.as_rule() != Rule::kw_trigger)
            .expect("lower_trigger: kind");
        let rule = t.as_rule();
        let mut inner = t.into_inner().filter(|q| {
            !is_keyword(q.as_rule()) && !matches!(q.as_rule(), Rule::kw_month | Rule::kw_local)
        });
        Some(match rule {
            Rule::trigger_joined => Trigger::Joined(self.ident(inner.next()?)),
            Rule::trigger_entered => Trigger::Entered(self.ident(inner.next()?)),
            Rule::trigger_event => {
                let event = self.ident(inner.next()?);
                let filter = inner.next().map(|e| Box::new(self.lower_expr(e)));
                Trigger::Event { event, filter }
            }
            Rule::trigger_every => {
                let day_pair = inner.next()?;
                let day_span = self.span(&day_pair);
                let day = match day_pair.as_str() {
                    "day" => Weekday::Day,
                    "monday" => Weekday::Monday,
                    "tuesday" => Weekday::Tuesday,
                    "wednesday" => Weekday::Wednesday,
                    "thursday" => Weekday::Thursday,
                    "friday" => Weekday::Friday,
                    "saturday" => Weekday::Saturday,
                    "sunday" => Weekday::Sunday,
                    "weekday" => Weekday::Weekday,
                    other => {
                        const DAYS: [&str; 9] = [
                            "day",
                            "weekday",
                            "monday",
                            "tuesday",
                            "wednesday",
                            "thursday",
                            "friday",
                            "saturday",
                            "sunday",
                        ];
                        let help = suggest(other, DAYS, || {
                            Some(
                                "write a weekday (`monday` … `sunday`), `weekday` for Monday to Friday or `day` for every day"
                                    .into(),
                            )
                        });
                        self.error(
                            Diagnostic::new(
                                Code::E0112,
                                format!("`{other}` is not a day of the week"),
                            )
                            .at(day_span, "expected a weekday or `day`")
                            .help_opt(help),
                        );
                        return None;
                    }
                };
                let time = self.lower_clock(inner.next()?)?;
                Trigger::Every {
                    day: Spanned::new(day, day_span),
                    time,
                }
            }
            Rule::trigger_once => {
                let ts = inner.next()?;
                let span = self.span(&ts);
                let secs = self.lower_timestamp(&ts)?;
                Trigger::Once(Spanned::new(secs, span))
            }
            Rule::trigger_at => {
                let time = self.lower_term(inner.next()?);
                let clock = match inner.next() {
                    Some(c) => Some(self.lower_clock(c)?),
                    None => None,
                };
                Trigger::At { time, clock }
            }
            Rule::trigger_yearly => {
                let field = self.ident(inner.next()?);
                let clock = self.lower_clock(inner.next()?)?;
                Trigger::Yearly { field, clock }
            }
            Rule::trigger_monthly => {
                let d = inner.next()?;
                let day_span = self.span(&d);
                let day = match (d.as_rule(), d.as_str()) {
                    (Rule::month_day, "last") => None,
                    (Rule::integer, n) if n.parse::<u8>().is_ok_and(|n| (1..=28).contains(&n)) => {
                        n.parse::<u8>().ok()
                    }
                    (_, other) => {
                        let help = if d.as_rule() == Rule::integer {
                            "a month has at least 28 days: write a day from 1 to 28, or `every month on last HH:MM` for the last day of every month".to_string()
                        } else {
                            format!(
                                "write a day of the month from 1 to 28, or `last`, as in `every month on last 09:00` (not `{other}`)"
                            )
                        };
                        self.error(
                            Diagnostic::new(
                                Code::E0160,
                                format!("`{other}` is not a day that every month has"),
                            )
                            .at(day_span, "expected a day from 1 to 28, or `last`")
                            .help(help),
                        );
                        return None;
                    }
                };
                let time = self.lower_clock(inner.next()?)?;
                Trigger::Monthly {
                    day: Spanned::new(day, day_span),
                    time,
                }
            }
            Rule::trigger_once_local => {
                let d = inner.next()?;
                let date_span = self.span(&d);
                let Ok(date) = d.as_str().parse::<jiff::civil::Date>() else {
                    self.invalid_literal(
                        date_span,
                        format!("`{}` is not a valid date", d.as_str()),
                        "write a real date like `2026-12-01`",
                    );
                    return None;
                };
                let time = self.lower_clock(inner.next()?)?;
                Trigger::OnceLocal {
                    date: Spanned::new(date, date_span),
                    time,
                }
            }
            r => unreachable!("lower_trigger: {r:?}"),
        })
    }

    fn lower_reentry(&mut self, pair: P<'_>) -> Option<Reentry> {
        for q in pair.into_inner() {
            match q.as_rule() {
                Rule::duration => return Some(Reentry::After(self.lower_duration(q).node)),
                Rule::reentry_word => {
                    return match q.as_str() {
                        "never" => Some(Reentry::Never),
                        "always" => Some(Reentry::Always),
                        other => {
                            let span = self.span(&q);
                            let help = suggest(other, ["never", "always"], || {
                                Some("write `reentry never`, `reentry always` or `reentry after 30d`".into())
                            });
                            self.error(
                                Diagnostic::new(
                                    Code::E0112,
                                    format!("`{other}` is not a reentry policy"),
                                )
                                .at(span, "expected `never`, `always` or `after DURATION`")
                                .help_opt(help),
                            );
                            None
                        }
                    };
                }
                _ => {}
            }
        }
        None
    }

    /// Lowers a step rule; `None` for keyword pairs and steps whose parts
    /// could not be read (already reported).
    fn lower_step_opt(&mut self, pair: P<'_>) -> Option<Step> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        if is_keyword(rule) {
            return None;
        }
        let pair_text = pair.as_str();
        let mut inner = pair.into_inner().filter(|q| !is_keyword(q.as_rule()));
        let kind = match rule {
            Rule::send_step => StepKind::Send(self.ident(inner.next()?)),
            Rule::wait_step => {
                let d = inner.next()?;
                if d.as_rule() == Rule::business_days {
                    StepKind::WaitBusiness(self.lower_business_days(d)?)
                } else {
                    StepKind::Wait(self.lower_duration(d))
                }
            }
            Rule::wait_until_step => {
                let e = inner.next()?;
                // `wait until trial_ends_at - 3d for 2d`: a time takes no limit.
                let time_like = lone_term(e.clone()).filter(|t| {
                    t.clone().into_inner().any(|q| {
                        matches!(
                            q.as_rule(),
                            Rule::shift | Rule::timestamp | Rule::date | Rule::ago | Rule::kw_now
                        )
                    })
                });
                if let Some(t) = time_like {
                    let espan = self.span(&t);
                    let time = t.as_str().trim();
                    self.error(
                        Diagnostic::new(Code::E0306, "a value alone is not a condition")
                            .at(espan, "not a condition")
                            .help(format!(
                                "to wait until this point in time, write `wait until {time}` without `for`; to wait for a condition, compare it, like `{time} <= now`"
                            )),
                    );
                    return None;
                }
                let cond = Box::new(self.lower_expr(e));
                let timeout = self.lower_duration(inner.next()?);
                StepKind::WaitUntil { cond, timeout }
            }
            Rule::branch_step => {
                let mut arms = Vec::new();
                for arm in inner {
                    let arm_span = self.span(&arm);
                    let arm_rule = arm.as_rule();
                    let mut parts = arm.into_inner();
                    let keyword = self.span(&parts.next()?);
                    let mut cond = None;
                    let mut steps = Vec::new();
                    for q in parts {
                        match q.as_rule() {
                            Rule::expr => cond = Some(self.lower_expr(q)),
                            Rule::step_block => steps = self.lower_step_block(q),
                            _ => {}
                        }
                    }
                    if arm_rule == Rule::when_arm && cond.is_none() {
                        return None;
                    }
                    arms.push(Arm {
                        cond,
                        steps,
                        keyword,
                        span: arm_span,
                    });
                }
                StepKind::Branch(arms)
            }
            Rule::split_step => {
                let mut arms = Vec::new();
                for arm in inner {
                    let arm_span = self.span(&arm);
                    let mut parts = arm.into_inner();
                    let pct = parts.next()?;
                    let share = self.lower_percent(&pct);
                    let steps = self.lower_step_block(parts.next()?);
                    arms.push(SplitArm {
                        share,
                        steps,
                        span: arm_span,
                    });
                }
                StepKind::Split(arms)
            }
            Rule::join_step => StepKind::Join(self.ident(inner.next()?)),
            Rule::leave_step => StepKind::Leave(self.ident(inner.next()?)),
            Rule::tag_step => {
                let s = inner.next()?;
                let sspan = self.span(&s);
                StepKind::Tag(Spanned::new(self.lower_string(s), sspan))
            }
            Rule::untag_step => {
                let s = inner.next()?;
                let sspan = self.span(&s);
                StepKind::Untag(Spanned::new(self.lower_string(s), sspan))
            }
            Rule::start_step => StepKind::Start(self.ident(inner.next()?)),
            Rule::exit_step => StepKind::Exit,
            Rule::wait_until_time_step => {
                let e = inner.next()?;
                if let Some(t) = lone_term(e.clone()) {
                    StepKind::WaitUntilTime(self.lower_term(t))
                } else {
                    let espan = self.span(&e);
                    self.wait_until_condition(espan, span, pair_text);
                    return None;
                }
            }
            r => unreachable!("lower_step_opt: {r:?}"),
        };
        Some(Step { kind, span })
    }

    /// `wait until CONDITION` without `for` (E0351), or `… or 3d`, the
    /// known mistake of writing the time limit with `or`.
    fn wait_until_condition(&mut self, espan: Span, span: Span, text: &str) {
        if let Some(i) = text.rfind(" or ")
            && crate::syntax::errors::is_duration(text[i + 4..].trim())
        {
            let duration = text[i + 4..].trim();
            let from = span.start as usize + i + 1;
            let cond = text[..i].trim();
            self.error(
                Diagnostic::new(
                    Code::E0001,
                    "a `wait until` ends with `for DURATION`, not `or DURATION`",
                )
                .at(Span::new(span.file, from, span.end as usize), "the time limit")
                .help(format!(
                    "write `{cond} for {duration}`: the run waits until the condition holds or {duration} have passed, whichever comes first"
                )),
            );
            return;
        }
        let cond = text
            .trim_start_matches("wait")
            .trim_start()
            .trim_start_matches("until")
            .trim();
        self.error(
            Diagnostic::new(
                Code::E0351,
                "`wait until` without `for` waits for a point in time, not for a condition",
            )
            .at(espan, "a condition, not a time")
            .help(format!(
                "to wait for the condition, give a time limit: `wait until {cond} for 3d`; to wait for a date, write a timestamp or date like `wait until trial_ends_at - 3d`"
            )),
        );
    }

    fn lower_step_block(&mut self, pair: P<'_>) -> Vec<Step> {
        pair.into_inner()
            .filter_map(|p| self.lower_step_opt(p))
            .collect()
    }

    // ------------------------------------------------------------ cadences

    fn lower_cadence(&mut self, pair: P<'_>) -> Cadence {
        let mut c = Cadence {
            name: Ident {
                name: String::new(),
                span: Span::default(),
            },
            stop: Vec::new(),
            spacing: Vec::new(),
            touches: Vec::new(),
            business_spacing: Vec::new(),
        };
        for p in pair.into_inner() {
            let span = self.span(&p);
            match p.as_rule() {
                Rule::name => c.name = self.ident(p),
                Rule::stop_when => c.stop.push(self.lower_expr_child(p)),
                Rule::spacing => {
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::duration => c.spacing.push(self.lower_duration(q)),
                            Rule::business_days => {
                                if let Some(n) = self.lower_business_days(q) {
                                    c.business_spacing.push(n);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                Rule::touch => {
                    let mut template = None;
                    let mut after = None;
                    let mut after_business = None;
                    let mut when = None;
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::name => template = Some(self.ident(q)),
                            Rule::duration => after = Some(self.lower_duration(q)),
                            Rule::business_days => after_business = self.lower_business_days(q),
                            Rule::expr => when = Some(self.lower_expr(q)),
                            _ => {}
                        }
                    }
                    c.touches.push(Touch {
                        template: template.expect("lower_cadence: touch template"),
                        after,
                        span,
                        after_business,
                        when,
                    });
                }
                _ => {}
            }
        }
        c
    }

    // ------------------------------------------------------------ pressure

    fn lower_pressure(&mut self, pair: P<'_>) -> PressurePolicy {
        let mut policy = PressurePolicy {
            keyword: Span::default(),
            caps: Vec::new(),
            gaps: Vec::new(),
            quiet: Vec::new(),
            on_excess: Vec::new(),
            under: Vec::new(),
        };
        for p in pair.into_inner() {
            let span = self.span(&p);
            let rule = p.as_rule();
            if rule == Rule::kw_pressure {
                policy.keyword = span;
                continue;
            }
            let parts: Vec<P<'_>> = p
                .into_inner()
                .filter(|q| !is_keyword(q.as_rule()))
                .collect();
            match rule {
                Rule::cap => {
                    let [scope, max, per] = &parts[..] else {
                        unreachable!("lower_pressure: cap")
                    };
                    // An invalid number was reported; the cap is dropped.
                    if let Some(max) = self.lower_integer(max) {
                        policy.caps.push(Cap {
                            scope: self.ident(scope.clone()),
                            max,
                            per: self.lower_duration(per.clone()),
                            span,
                        });
                    }
                }
                Rule::gap => policy.gaps.push(self.lower_duration(parts[0].clone())),
                Rule::quiet => {
                    let mut parts = parts.as_slice();
                    let mut channel = None;
                    if let Some((first, rest)) = parts.split_first()
                        && first.as_rule() == Rule::quiet_channel
                    {
                        let word = first
                            .clone()
                            .into_inner()
                            .next()
                            .expect("lower_pressure: quiet channel");
                        channel = Some(self.ident(word));
                        parts = rest;
                    }
                    if let [w] = parts
                        && w.as_rule() == Rule::quiet_weekends
                    {
                        let wspan = self.span(w);
                        let midnight = Spanned::new(Clock(0), wspan);
                        policy.quiet.push(Quiet {
                            start: midnight,
                            end: midnight,
                            span,
                            channel,
                            weekends: true,
                        });
                    } else if let [start, end] = parts {
                        let start = self.lower_clock(start.clone());
                        let end = self.lower_clock(end.clone());
                        if let (Some(start), Some(end)) = (start, end) {
                            policy.quiet.push(Quiet {
                                start,
                                end,
                                span,
                                channel,
                                weekends: false,
                            });
                        }
                    }
                }
                Rule::on_excess => {
                    let w = &parts[0];
                    let wspan = self.span(w);
                    match w.as_str() {
                        "defer" => policy.on_excess.push(Spanned::new(Excess::Defer, wspan)),
                        "drop" => policy.on_excess.push(Spanned::new(Excess::Drop, wspan)),
                        other => {
                            let help = suggest(other, ["defer", "drop"], || {
                                Some("write `on excess defer` or `on excess drop`".into())
                            });
                            self.error(
                                Diagnostic::new(
                                    Code::E0112,
                                    format!("`{other}` is not an excess policy"),
                                )
                                .at(wspan, "expected `defer` or `drop`")
                                .help_opt(help),
                            );
                        }
                    }
                }
                Rule::under_below => {
                    if let Some(count) = self.lower_integer(&parts[0]) {
                        policy.under.push(UnderBelow {
                            count,
                            per: self.lower_duration(parts[1].clone()),
                            span,
                        });
                    }
                }
                r => unreachable!("lower_pressure: {r:?}"),
            }
        }
        policy
    }

    // ------------------------------------------------------------ expressions

    fn lower_expr(&mut self, pair: P<'_>) -> Expr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::expr | Rule::and_expr => {
                let is_or = pair.as_rule() == Rule::expr;
                let mut parts: Vec<Expr> = pair
                    .into_inner()
                    .filter(|q| !is_keyword(q.as_rule()))
                    .map(|q| self.lower_expr(q))
                    .collect();
                if parts.len() == 1 {
                    return parts.pop().expect("lower_expr: one part");
                }
                let kind = if is_or {
                    ExprKind::Or(parts)
                } else {
                    ExprKind::And(parts)
                };
                Expr { kind, span }
            }
            Rule::not_expr => {
                let mut inner = pair.into_inner();
                let first = inner.next().expect("lower_expr: not_expr");
                if first.as_rule() == Rule::kw_not {
                    let operand = self.lower_expr(inner.next().expect("lower_expr: not operand"));
                    Expr {
                        kind: ExprKind::Not(Box::new(operand)),
                        span,
                    }
                } else {
                    self.lower_expr(first)
                }
            }
            Rule::paren => {
                let e = pair.into_inner().next().expect("lower_expr: paren");
                let mut inner = self.lower_expr(e);
                inner.span = span;
                inner
            }
            Rule::term_test => {
                let mut inner = pair.into_inner();
                let term = self.lower_term(inner.next().expect("lower_expr: test term"));
                let Some(tail) = inner.next() else {
                    return self.bare_term(term);
                };
                let tail_rule = tail.as_rule();
                let mut parts = tail.into_inner();
                let kind = match tail_rule {
                    Rule::cmp_tail => {
                        let op = self.lower_cmp_op(parts.next().expect("lower_expr: op"));
                        let rhs = self.lower_term(parts.next().expect("lower_expr: rhs"));
                        ExprKind::Compare { lhs: term, op, rhs }
                    }
                    Rule::in_tail => {
                        let mut negated = false;
                        let mut list = None;
                        for q in parts {
                            match q.as_rule() {
                                Rule::kw_not => negated = true,
                                Rule::list_lit => list = Some(self.lower_list_lit(q)),
                                _ => {}
                            }
                        }
                        ExprKind::In {
                            term,
                            list: list.expect("lower_expr: in list"),
                            negated,
                        }
                    }
                    Rule::contains_tail => {
                        let needle = parts
                            .find(|q| q.as_rule() == Rule::term)
                            .expect("lower_expr: contains term");
                        ExprKind::Contains {
                            haystack: term,
                            needle: self.lower_term(needle),
                        }
                    }
                    Rule::is_set_tail => ExprKind::IsSet {
                        term,
                        negated: parts.any(|q| q.as_rule() == Rule::kw_not),
                    },
                    Rule::affix_tail | Rule::matches_tail => {
                        let kw = parts.next().expect("lower_expr: text test keyword");
                        let op = match kw.as_rule() {
                            Rule::kw_starts_with => TextOp::StartsWith,
                            Rule::kw_ends_with => TextOp::EndsWith,
                            _ => TextOp::Matches,
                        };
                        let op = Spanned::new(op, self.span(&kw));
                        let arg = parts.next().expect("lower_expr: text test argument");
                        let arg = if arg.as_rule() == Rule::string {
                            let span = self.span(&arg);
                            Term {
                                kind: TermKind::Str(self.lower_string(arg)),
                                span,
                            }
                        } else {
                            self.lower_term(arg)
                        };
                        ExprKind::TextTest { term, op, arg }
                    }
                    r => unreachable!("lower_expr: tail {r:?}"),
                };
                Expr { kind, span }
            }
            Rule::engagement => {
                let mut inner = pair.into_inner();
                let kind_pair = inner.next().expect("lower_expr: engagement kind");
                let kind_span = self.span(&kind_pair);
                let kind = match kind_pair.as_str() {
                    "opened" => EngagementKind::Opened,
                    "clicked" => EngagementKind::Clicked,
                    "delivered" => EngagementKind::Delivered,
                    "replied" => EngagementKind::Replied,
                    _ => EngagementKind::Bounced,
                };
                let mut target = None;
                let mut since = None;
                for q in inner {
                    match q.as_rule() {
                        Rule::kw_any => target = Some(EngagementTarget::Any(self.span(&q))),
                        Rule::template_ref => {
                            let mut names = q.into_inner();
                            let template = self.ident(names.next().expect("lower_expr: template"));
                            let link = names.next().map(|l| self.ident(l));
                            target = Some(EngagementTarget::Template { template, link });
                        }
                        Rule::term => since = Some(self.lower_term(q)),
                        _ => {}
                    }
                }
                Expr {
                    kind: ExprKind::Engagement {
                        kind: Spanned::new(kind, kind_span),
                        target: target.expect("lower_expr: engagement target"),
                        since,
                    },
                    span,
                }
            }
            Rule::aggregate_cmp => {
                let mut inner = pair.into_inner();
                let agg = self.lower_aggregate(inner.next().expect("lower_expr: aggregate"));
                let op = self.lower_cmp_op(inner.next().expect("lower_expr: aggregate op"));
                let rhs = self.lower_term(inner.next().expect("lower_expr: aggregate rhs"));
                Expr {
                    kind: ExprKind::Aggregate { agg, op, rhs },
                    span,
                }
            }
            r => unreachable!("lower_expr: {r:?}"),
        }
    }

    /// A term used alone as a condition: a name (segment, list or bool
    /// field) or `true` / `false`. Any other value is not a condition.
    fn bare_term(&mut self, term: Term) -> Expr {
        let span = term.span;
        let kind = match term.kind {
            TermKind::Name(name) => ExprKind::Name(Ident { name, span }),
            TermKind::Bool(b) => ExprKind::Bool(b),
            _ => {
                self.error(
                    Diagnostic::new(Code::E0306, "a value alone is not a condition")
                        .at(span, "not a condition")
                        .help("compare it with a field, like `country == \"FR\"`, or name a segment, a list or a bool field"),
                );
                ExprKind::Bool(false)
            }
        };
        Expr { kind, span }
    }

    fn lower_aggregate(&mut self, pair: P<'_>) -> Aggregate {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let f = inner.next().expect("lower_aggregate: fn");
        let fspan = self.span(&f);
        let func = match f.as_str() {
            "count" => AggregateFn::Count,
            "sum" => AggregateFn::Sum,
            "min" => AggregateFn::Min,
            "max" => AggregateFn::Max,
            _ => AggregateFn::Avg,
        };
        let mut event = None;
        let mut field = None;
        let mut filter = None;
        let mut since = None;
        let mut distinct = None;
        for q in inner {
            match q.as_rule() {
                Rule::kw_distinct => distinct = Some(self.span(&q)),
                Rule::event_ref => {
                    let mut names = q.into_inner();
                    event = Some(self.ident(names.next().expect("lower_aggregate: event")));
                    field = names.next().map(|n| self.ident(n));
                }
                Rule::expr => filter = Some(Box::new(self.lower_expr(q))),
                Rule::term => since = Some(self.lower_term(q)),
                _ => {}
            }
        }
        Aggregate {
            func: Spanned::new(func, fspan),
            event: event.expect("lower_aggregate: event"),
            field,
            filter,
            since,
            span,
            distinct,
        }
    }

    fn lower_cmp_op(&mut self, pair: P<'_>) -> Spanned<CmpOp> {
        let span = self.span(&pair);
        let op = match pair.as_str() {
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            ">" => CmpOp::Gt,
            _ => CmpOp::Ge,
        };
        Spanned::new(op, span)
    }

    fn lower_term(&mut self, pair: P<'_>) -> Term {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let p = inner.next().expect("lower_term: inner");
        let base_span = self.span(&p);
        let mut term = self.lower_term_base(p, base_span);
        // `trial_ends_at - 3d + 12h`: the shifts add up.
        let mut seconds: Option<i64> = None;
        for shift in inner {
            let mut parts = shift.into_inner();
            let sign = parts.next().expect("lower_term: shift sign").as_str();
            let d = self
                .lower_duration(parts.next().expect("lower_term: shift duration"))
                .node
                .seconds();
            let d = if sign == "-" { -d } else { d };
            seconds = Some(seconds.unwrap_or(0).saturating_add(d));
        }
        if let Some(seconds) = seconds {
            term = Term {
                kind: TermKind::Shifted {
                    base: Box::new(term),
                    seconds,
                },
                span,
            };
        }
        term
    }

    fn lower_term_base(&mut self, p: P<'_>, span: Span) -> Term {
        let kind = match p.as_rule() {
            Rule::kw_now => TermKind::Now,
            Rule::ago => {
                let d = p.into_inner().next().expect("lower_term: ago duration");
                TermKind::Ago(self.lower_duration(d).node)
            }
            Rule::timestamp => match self.lower_timestamp(&p) {
                Some(s) => TermKind::Timestamp(s),
                None => TermKind::Timestamp(0),
            },
            Rule::date => match p.as_str().parse::<jiff::civil::Date>() {
                Ok(d) => TermKind::Date(d),
                Err(_) => {
                    self.invalid_literal(
                        span,
                        format!("`{}` is not a valid date", p.as_str()),
                        "write a real calendar date as YYYY-MM-DD, like `2026-01-15`",
                    );
                    TermKind::Date(jiff::civil::Date::constant(1970, 1, 1))
                }
            },
            Rule::clock => match self.lower_clock(p) {
                Some(c) => TermKind::Clock(c.node),
                None => TermKind::Clock(Clock(0)),
            },
            Rule::duration => TermKind::Duration(self.lower_duration(p).node),
            Rule::percent => TermKind::Percent(self.lower_percent(&p).node),
            Rule::number => match p.as_str().parse::<f64>() {
                Ok(n) if n.is_finite() => TermKind::Number(n),
                _ => {
                    self.invalid_literal(
                        span,
                        format!("`{}` is not a valid number", p.as_str()),
                        "write a number like `12` or `12.50`",
                    );
                    TermKind::Number(0.0)
                }
            },
            Rule::string => TermKind::Str(self.lower_string(p)),
            Rule::boolean => TermKind::Bool(p.as_str() == "true"),
            Rule::name | Rule::builtin_field => TermKind::Name(p.as_str().to_string()),
            r => unreachable!("lower_term: {r:?}"),
        };
        Term { kind, span }
    }

    // ------------------------------------------------------------ literals

    fn invalid_literal(&mut self, span: Span, message: String, help: &str) {
        self.error(
            Diagnostic::new(Code::E0009, message)
                .at(span, "invalid literal")
                .help(help),
        );
    }

    /// Decodes `"…"` with `\"` `\\` `\n` `\t` `\u{…}` escapes.
    fn lower_string(&mut self, pair: P<'_>) -> String {
        let raw_pair = pair
            .into_inner()
            .find(|q| q.as_rule() == Rule::string_raw)
            .expect("lower_string: raw");
        let raw = raw_pair.as_str();
        if !raw.contains('\\') {
            return raw.to_string();
        }
        let base = raw_pair.as_span().start();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some((_, e)) = chars.next() else { break };
            match e {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let rest = &raw[i + 2..];
                    let decoded = rest
                        .strip_prefix('{')
                        .and_then(|r| r.find('}').map(|end| &r[..end]))
                        .filter(|hex| !hex.is_empty() && hex.len() <= 6)
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok().map(|v| (hex.len(), v)));
                    match decoded.and_then(|(len, v)| char::from_u32(v).map(|c| (len, c))) {
                        Some((len, ch)) => {
                            out.push(ch);
                            // Skip `{hex}`.
                            for _ in 0..len + 2 {
                                chars.next();
                            }
                        }
                        None => {
                            let end = i + 2 + rest.find('}').map(|e| e + 1).unwrap_or(0);
                            let span = Span::new(
                                self.file,
                                self.base + base + i,
                                self.base + base + end.min(raw.len()),
                            );
                            self.error(
                                Diagnostic::new(Code::E0008, "invalid unicode escape")
                                    .at(span, "not a valid `\\u{…}` escape")
                                    .help("write `\\u{` followed by 1 to 6 hex digits of a Unicode scalar value and `}`, like `\\u{e9}`"),
                            );
                        }
                    }
                }
                other => {
                    let span = Span::new(
                        self.file,
                        self.base + base + i,
                        self.base + base + i + 1 + other.len_utf8(),
                    );
                    self.error(
                        Diagnostic::new(Code::E0008, format!("unknown escape `\\{other}`"))
                            .at(span, "unknown escape")
                            .help("the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\u{…}`; write `\\\\` for a backslash"),
                    );
                }
            }
        }
        out
    }

    fn lower_duration(&mut self, pair: P<'_>) -> Spanned<Duration> {
        let span = self.span(&pair);
        let mut total: i64 = 0;
        let mut n: i64 = 0;
        let mut overflow = false;
        for c in pair.as_str().chars() {
            if let Some(d) = c.to_digit(10) {
                n = match n.checked_mul(10).and_then(|n| n.checked_add(d as i64)) {
                    Some(v) => v,
                    None => {
                        overflow = true;
                        0
                    }
                };
                continue;
            }
            let unit = match c {
                'w' => 7 * 86_400,
                'd' => 86_400,
                'h' => 3_600,
                _ => 60,
            };
            match n.checked_mul(unit).and_then(|v| total.checked_add(v)) {
                Some(v) => total = v,
                None => overflow = true,
            }
            n = 0;
        }
        // Ten thousand years is beyond any campaign and any date library.
        if overflow || total > 10_000 * 366 * 86_400 {
            self.invalid_literal(
                span,
                format!("`{}` is too long a duration", pair.as_str()),
                "durations are limited to 10,000 years",
            );
            total = 0;
        }
        Spanned::new(Duration(total), span)
    }

    fn lower_clock(&mut self, pair: P<'_>) -> Option<Spanned<Clock>> {
        let span = self.span(&pair);
        let s = pair.as_str();
        let h: u16 = s[0..2].parse().ok()?;
        let m: u16 = s[3..5].parse().ok()?;
        if h > 23 || m > 59 {
            self.invalid_literal(
                span,
                format!("`{s}` is not a time of day"),
                "write a time between `00:00` and `23:59`",
            );
            return None;
        }
        Some(Spanned::new(Clock(h * 60 + m), span))
    }

    fn lower_timestamp(&mut self, pair: &P<'_>) -> Option<i64> {
        let s = pair.as_str();
        match s.parse::<jiff::Timestamp>() {
            Ok(t) => Some(t.as_second()),
            Err(_) => {
                let span = self.span(pair);
                self.invalid_literal(
                    span,
                    format!("`{s}` is not a valid timestamp"),
                    "write a real date and time with a zone, like `2026-01-15T09:00:00Z` or `2026-01-15T09:00:00+01:00`",
                );
                None
            }
        }
    }

    fn lower_percent(&mut self, pair: &P<'_>) -> Spanned<f64> {
        let span = self.span(pair);
        let s = pair.as_str().trim_end_matches('%');
        let v = s.parse::<f64>().unwrap_or(f64::NAN);
        if !v.is_finite() || v > 100.0 {
            self.invalid_literal(
                span,
                format!("`{}` is not a share between 0% and 100%", pair.as_str()),
                "write a percentage like `50%`",
            );
            return Spanned::new(f64::NAN, span); // NaN: already reported
        }
        Spanned::new(v, span)
    }

    /// `3 business days`: the count, spanning the whole phrase.
    fn lower_business_days(&mut self, pair: P<'_>) -> Option<Spanned<u32>> {
        let span = self.span(&pair);
        let digits: String = pair
            .as_str()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        match digits.parse::<u32>() {
            Ok(n) => Some(Spanned::new(n, span)),
            Err(_) => {
                self.invalid_literal(
                    span,
                    format!("`{digits}` business days is too many"),
                    "write a whole number below 4,294,967,296",
                );
                None
            }
        }
    }

    fn lower_integer(&mut self, pair: &P<'_>) -> Option<Spanned<u32>> {
        let span = self.span(pair);
        match pair.as_str().parse::<u32>() {
            Ok(v) => Some(Spanned::new(v, span)),
            Err(_) => {
                self.invalid_literal(
                    span,
                    format!("`{}` is too large", pair.as_str()),
                    "write a whole number below 4,294,967,296",
                );
                None
            }
        }
    }
}

fn is_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_workspace
            | Rule::kw_contact
            | Rule::kw_event
            | Rule::kw_list
            | Rule::kw_segment
            | Rule::kw_persona
            | Rule::kw_negative
            | Rule::kw_template
            | Rule::kw_scenario
            | Rule::kw_cadence
            | Rule::kw_pressure
            | Rule::kw_and
            | Rule::kw_or
            | Rule::kw_not
            | Rule::kw_in
            | Rule::kw_contains
            | Rule::kw_is
            | Rule::kw_set
            | Rule::kw_ago
            | Rule::kw_now
            | Rule::kw_any
            | Rule::kw_where
            | Rule::kw_since
            | Rule::kw_within
            | Rule::kw_send
            | Rule::kw_wait
            | Rule::kw_until
            | Rule::kw_for
            | Rule::kw_branch
            | Rule::kw_when
            | Rule::kw_else
            | Rule::kw_split
            | Rule::kw_join
            | Rule::kw_leave
            | Rule::kw_tag
            | Rule::kw_untag
            | Rule::kw_start
            | Rule::kw_exit
            | Rule::kw_audience
            | Rule::kw_trigger
            | Rule::kw_reentry
            | Rule::kw_goal
            | Rule::kw_joined
            | Rule::kw_entered
            | Rule::kw_every
            | Rule::kw_once
            | Rule::kw_at
            | Rule::kw_expect
            | Rule::kw_touch
            | Rule::kw_after
            | Rule::kw_stop
            | Rule::kw_spacing
            | Rule::kw_link
            | Rule::kw_file
            | Rule::kw_max
            | Rule::kw_per
            | Rule::kw_gap
            | Rule::kw_quiet
            | Rule::kw_to
            | Rule::kw_on
            | Rule::kw_under
            | Rule::kw_below
            | Rule::kw_excess
            | Rule::kw_yearly
            | Rule::kw_business
            | Rule::kw_days
            | Rule::kw_day
    )
}

/// The term of an expression that is a term alone (`trial_ends_at - 3d`),
/// as pest parsed it; `None` for a condition.
fn lone_term(pair: P<'_>) -> Option<P<'_>> {
    let mut p = pair;
    loop {
        let mut inner = p.clone().into_inner();
        let only = inner.next()?;
        if inner.next().is_some() {
            return None;
        }
        match p.as_rule() {
            Rule::expr | Rule::and_expr | Rule::not_expr => p = only,
            Rule::term_test => return (only.as_rule() == Rule::term).then_some(only),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::doc_comment;
    use crate::diagnostics::{FileId, Problems};
    use crate::syntax::ast::{DeclKind, ExprKind, TermKind};

    /// The right-hand term of `segment s = …` comparisons, as lowered.
    fn rhs_and_lhs(expr: &str) -> (TermKind, TermKind) {
        let mut problems = Problems::new();
        let f = crate::syntax::parse_file(FileId(0), &format!("segment s = {expr}"), &mut problems);
        assert!(problems.is_empty(), "{expr}: {problems:?}");
        let DeclKind::Segment(s) = &f.decls[0].kind else {
            panic!("a segment")
        };
        let ExprKind::Compare { lhs, rhs, .. } = &s.expr.kind else {
            panic!("{expr}: a comparison")
        };
        (lhs.kind.clone(), rhs.kind.clone())
    }

    /// A shift needs a sign and a duration; a negative number keeps its
    /// sign; several shifts add up, with or without spaces.
    #[test]
    fn shifts_and_negative_numbers_are_told_apart() {
        let (_, r) = rhs_and_lhs("ltv > -3");
        assert_eq!(r, TermKind::Number(-3.0));
        for text in ["t - 3d", "t -3d", "t-3d", "t - 4d + 1d", "t - 2d - 1d"] {
            let (l, _) = rhs_and_lhs(&format!("{text} <= now"));
            let TermKind::Shifted { base, seconds } = l else {
                panic!("{text}: {l:?}")
            };
            assert_eq!(base.kind, TermKind::Name("t".into()), "{text}");
            assert_eq!(seconds, -3 * 86_400, "{text}");
        }
        let (_, r) = rhs_and_lhs("t < now + 1w");
        assert!(
            matches!(
                r,
                TermKind::Shifted {
                    seconds: 604_800,
                    ..
                }
            ),
            "{r:?}"
        );
        let mut problems = Problems::new();
        crate::syntax::parse_file(FileId(0), "segment s = ltv - 3 > 0", &mut problems);
        assert!(!problems.is_empty(), "`ltv - 3` is not a shift");
    }

    #[test]
    fn doc_comments_attach_to_the_next_line() {
        let src = "// plain\n/// First.\n/// Second.\npersona x {}";
        let start = src.find("persona").unwrap();
        assert_eq!(doc_comment(src, start).as_deref(), Some("First.\nSecond."));
        let src = "/// Lost.\n\npersona x {}";
        assert_eq!(doc_comment(src, src.find("persona").unwrap()), None);
    }
}
