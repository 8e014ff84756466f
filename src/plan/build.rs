//! Checked AST → [`Plan`]. Runs only on a project without errors: names
//! resolve and types agree, so every lookup here succeeds.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::*;
use crate::check::types::{self, Type};
use crate::check::{Kind, Project};
use crate::diagnostics::SourceMap;
use crate::syntax::ast;

/// A template file path as written in `file("…")`, resolved against the
/// folder of the `.camp` file that names it: project-relative with `/`
/// separators, or `None` when it is absolute or climbs out of the project.
pub fn resolve_template_path(camp_path: &str, written: &str) -> Option<String> {
    let dir = camp_path.rfind('/').map_or("", |i| &camp_path[..i]);
    resolve_in_dir(dir, written)
}

/// `written` resolved against the project-relative folder `dir`. The one
/// resolver of template paths: the loader reads what it returns and the
/// renderer looks up the same keys.
pub fn resolve_in_dir(dir: &str, written: &str) -> Option<String> {
    if written.starts_with('/') || written.contains('\\') || written.contains(':') {
        return None;
    }
    let mut parts: Vec<&str> = dir
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for piece in written.split('/') {
        match piece {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// A part's `source` (`inline`, or the resolved template file) and text;
/// `None` for a word or a duration, which are settings, not parts.
fn part_source(
    camp_path: &str,
    value: &ast::AttrValue,
    files: &BTreeMap<String, String>,
) -> Option<(String, String)> {
    match value {
        ast::AttrValue::Str(s) => Some(("inline".to_string(), s.clone())),
        ast::AttrValue::File(path) => {
            let resolved = resolve_template_path(camp_path, &path.node).unwrap_or_default();
            let text = files.get(&resolved).cloned().unwrap_or_default();
            Some((resolved, text))
        }
        ast::AttrValue::Word(_) | ast::AttrValue::Duration(_) => None,
    }
}

/// How a part's inserted values are escaped.
fn part_escape(channel: &str, name: &str) -> &'static str {
    match (channel, name) {
        ("email", "html") => "html",
        ("webhook", "body") => "json",
        _ => "none",
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex, without a `format!` per byte (the plan hashes every
/// template part, and `relance watch` builds the plan on every change).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Builds the plan. `template_files` maps resolved template paths (see
/// [`resolve_template_path`]) to their contents.
pub fn build_plan(
    sources: &SourceMap,
    files: &[ast::File],
    template_files: &BTreeMap<String, String>,
) -> Plan {
    let p = Project::resolve(sources, files);
    let cx = Cx { p: &p };
    let workspace = p
        .workspace
        .map(|w| {
            let get = |n: &str| {
                w.attrs
                    .iter()
                    .find(|a| a.name.name == n)
                    .and_then(|a| match &a.value.node {
                        ast::AttrValue::Str(s) => Some(s.clone()),
                        _ => None,
                    })
            };
            Workspace {
                name: get("name"),
                // As the bundled database spells it (`europe/paris` is
                // accepted): a runner may match names exactly.
                timezone: get("timezone").map(|z| crate::tzdb::canonical_name(&z).unwrap_or(z)),
                from: get("from"),
                address: get("address"),
                locales: w
                    .locales
                    .first()
                    .map(|l| l.names.iter().map(|n| n.name.clone()).collect())
                    .unwrap_or_default(),
                locale_field: w.attrs.iter().find(|a| a.name.name == "locale").and_then(
                    |a| match &a.value.node {
                        ast::AttrValue::Word(f) => Some(f.clone()),
                        _ => None,
                    },
                ),
            }
        })
        .unwrap_or_default();

    let mut address_fields = BTreeMap::new();
    for channel in ["email", "sms", "push"] {
        if let Some(want) = types::address_type(channel)
            && let Some(f) = p.schema.list.iter().find(|f| f.ty == want)
        {
            address_fields.insert(channel.to_string(), f.name.clone());
        }
    }
    let schema = Schema {
        fields: p.schema.list.iter().map(field).collect(),
        address_fields: address_fields.clone(),
        timezone_field: p
            .schema
            .list
            .iter()
            .find(|f| f.ty == Type::Timezone)
            .map(|f| f.name.clone()),
    };

    let events = p
        .events
        .iter()
        .map(|(name, fields)| {
            (
                name.to_string(),
                EventType {
                    builtin: types::BUILTIN_EVENTS.contains(name),
                    fields: fields.list.iter().map(field).collect(),
                },
            )
        })
        .collect();

    let lists = p
        .lists
        .iter()
        .map(|l| {
            let on_join = l
                .on_join
                .iter()
                .filter_map(|s| match &s.kind {
                    ast::StepKind::Join(x) => Some(ListAction::Join {
                        list: x.name.clone(),
                    }),
                    ast::StepKind::Leave(x) => Some(ListAction::Leave {
                        list: x.name.clone(),
                    }),
                    ast::StepKind::Tag(t) => Some(ListAction::Tag {
                        tag: t.node.clone(),
                    }),
                    ast::StepKind::Untag(t) => Some(ListAction::Untag {
                        tag: t.node.clone(),
                    }),
                    _ => None,
                })
                .collect();
            (l.name.name.clone(), List { on_join })
        })
        .collect();

    let segments = p
        .segments
        .iter()
        .map(|s| (s.name.name.clone(), cx.expr(&s.expr, None, false)))
        .collect();

    let templates: BTreeMap<String, Template> = p
        .template_order
        .iter()
        .map(|t| {
            (
                t.name.name.clone(),
                cx.template(t, template_files, &address_fields),
            )
        })
        .collect();

    let partials = partials(&templates, template_files);

    let scenarios = p
        .scenarios
        .iter()
        .map(|s| (s.name.name.clone(), cx.scenario(s)))
        .collect();
    let cadences = p
        .cadence_order
        .iter()
        .map(|c| (c.name.name.clone(), cx.cadence(c)))
        .collect();
    let pressure = p.pressure.map(|pp| Pressure {
        caps: pp
            .caps
            .iter()
            .map(|c| Cap {
                scope: c.scope.name.clone(),
                max: c.max.node,
                per_seconds: c.per.node.seconds(),
            })
            .collect(),
        gap_seconds: pp.gaps.first().map(|g| g.node.seconds()),
        // v1's one `quiet`: the first unscoped interval; every other rule
        // goes to `quiet_rules`.
        quiet: quiet_v1(pp).map(|q| Quiet {
            start: clock(q.start.node),
            end: clock(q.end.node),
        }),
        quiet_rules: pp
            .quiet
            .iter()
            .filter(|q| !quiet_v1(pp).is_some_and(|v1| std::ptr::eq(*q, v1)))
            .map(|q| QuietRule {
                channel: q.channel.as_ref().map(|c| c.name.clone()),
                kind: if q.weekends { "weekends" } else { "hours" }.to_string(),
                start: (!q.weekends).then(|| clock(q.start.node)),
                end: (!q.weekends).then(|| clock(q.end.node)),
            })
            .collect(),
        on_excess: match pp.on_excess.first().map(|e| e.node) {
            Some(ast::Excess::Drop) => "drop".to_string(),
            _ => "defer".to_string(),
        },
        under_below: pp.under.first().map(|u| UnderBelow {
            count: u.count.node,
            per_seconds: u.per.node.seconds(),
        }),
    });

    Plan {
        plan_version: PLAN_VERSION,
        tzdb: crate::tzdb::VERSION.to_string(),
        workspace,
        schema,
        events,
        lists,
        segments,
        templates,
        scenarios,
        cadences,
        pressure,
        scenario_order: p.scenarios.iter().map(|s| s.name.name.clone()).collect(),
        topics: p
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.name.clone(),
                    Topic {
                        label: t.label.node.clone(),
                    },
                )
            })
            .collect(),
        // The first rule of each channel (a second one is an error).
        consent: p.consents.iter().rev().fold(BTreeMap::new(), |mut m, r| {
            m.insert(r.channel.name.clone(), cx.expr(&r.expr, None, false));
            m
        }),
        partials,
        patterns: Default::default(),
    }
}

/// The partials the parts and links of `templates` use, transitively
/// (the renderer's own walk, `render::partials_used`), with their texts.
fn partials(
    templates: &BTreeMap<String, Template>,
    files: &BTreeMap<String, String>,
) -> BTreeMap<String, Partial> {
    let texts = templates.values().flat_map(|t| {
        t.parts
            .values()
            .chain(t.variants.values().flat_map(|v| v.values()))
            .map(|p| p.text.as_str())
            .chain(t.links.values().map(String::as_str))
    });
    crate::render::partials_used(texts, files)
        .into_iter()
        .filter_map(|(name, path)| {
            let text = files.get(&path)?.clone();
            Some((
                name,
                Partial {
                    source: path,
                    sha256: sha256_hex(text.as_bytes()),
                    text,
                },
            ))
        })
        .collect()
}

/// An expression written outside scenarios (a segment, a persona's
/// `expect`) in its plan form.
pub fn lower_expr(p: &Project, e: &ast::Expr) -> Expr {
    Cx { p }.expr(e, None, false)
}

fn field(f: &types::Field) -> Field {
    let (ty, variants) = match &f.ty {
        Type::Enum(v) => ("enum".to_string(), Some(v.clone())),
        other => (other.describe(), None),
    };
    Field {
        name: f.name.clone(),
        ty,
        optional: f.optional,
        variants,
    }
}

/// The rule that goes to the plan's `quiet`: the first unscoped interval.
fn quiet_v1(pp: &ast::PressurePolicy) -> Option<&ast::Quiet> {
    pp.quiet.iter().find(|q| q.channel.is_none() && !q.weekends)
}

fn clock(c: ast::Clock) -> String {
    format!("{:02}:{:02}", c.0 / 60, c.0 % 60)
}

fn timestamp(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

struct Cx<'p, 'a> {
    p: &'p Project<'a>,
}

impl Cx<'_, '_> {
    // ------------------------------------------------------------ templates

    fn template(
        &self,
        t: &ast::Template,
        files: &BTreeMap<String, String>,
        address_fields: &BTreeMap<String, String>,
    ) -> Template {
        let channel = t.channel.name.clone();
        let transactional = t.attrs.iter().any(|a| {
            a.name.name == "kind" && a.value.node == ast::AttrValue::Word("transactional".into())
        });
        let kind = match channel.as_str() {
            "task" | "webhook" => "operational",
            _ if transactional => "transactional",
            _ => "marketing",
        };
        let camp_path = &self.p.sources.get(t.name.span.file).path;
        let mut parts = BTreeMap::new();
        let mut whole = Sha256::new();
        for a in &t.attrs {
            let name = a.name.name.as_str();
            if name == "kind" || name == "url" {
                continue;
            }
            let Some((source, text)) = part_source(camp_path, &a.value.node, files) else {
                continue;
            };
            let escape = part_escape(&channel, name);
            whole.update(name.as_bytes());
            whole.update([0]);
            whole.update(text.as_bytes());
            whole.update([0]);
            parts.insert(
                name.to_string(),
                Part {
                    source,
                    sha256: sha256_hex(text.as_bytes()),
                    text,
                    escape: escape.to_string(),
                },
            );
        }
        if let Some(url) = t.attrs.iter().find(|a| a.name.name == "url")
            && let ast::AttrValue::Str(u) = &url.value.node
        {
            whole.update(b"url\0");
            whole.update(u.as_bytes());
            parts.insert(
                "url".to_string(),
                Part {
                    source: "inline".to_string(),
                    sha256: sha256_hex(u.as_bytes()),
                    text: u.clone(),
                    // Inserted values are percent-encoded (RFC 3986).
                    escape: "url".to_string(),
                },
            );
        }
        let link_order: Vec<String> = t.links.iter().map(|l| l.name.name.clone()).collect();
        let links: BTreeMap<String, String> = t
            .links
            .iter()
            .map(|l| (l.name.name.clone(), l.url.node.clone()))
            .collect();
        for (n, u) in &links {
            whole.update(n.as_bytes());
            whole.update([0]);
            whole.update(u.as_bytes());
            whole.update([0]);
        }
        let mut headers = BTreeMap::new();
        if channel == "email" && kind == "marketing" {
            headers.insert(
                "List-Unsubscribe".to_string(),
                "<{{unsubscribe_url}}>".to_string(),
            );
            headers.insert(
                "List-Unsubscribe-Post".to_string(),
                "List-Unsubscribe=One-Click".to_string(),
            );
        }
        let (due_seconds, method, request_headers) = super::senders::operational(t, &mut whole);
        let variants = self.variants(t, &channel, files, &mut whole);
        Template {
            address_field: address_fields.get(&channel).cloned(),
            channel,
            kind: kind.to_string(),
            parts,
            links,
            link_order,
            headers,
            content_hash: hex(&whole.finalize()),
            topic: crate::check::consent::template_topic(t).map(|(n, _)| n.to_string()),
            expires_seconds: t.attrs.iter().find_map(|a| match a.value.node {
                ast::AttrValue::Duration(d) if a.name.name == "expires" => Some(d.seconds()),
                _ => None,
            }),
            priority: t.attrs.iter().find_map(|a| match &a.value.node {
                ast::AttrValue::Word(w) if a.name.name == "priority" => Some(w.clone()),
                _ => None,
            }),
            due_seconds,
            method,
            request_headers,
            variants,
        }
    }

    /// The per-locale variants of `t`, by locale then part, added to the
    /// content hash (after every other part, so that a template without
    /// variants hashes as before).
    fn variants(
        &self,
        t: &ast::Template,
        channel: &str,
        files: &BTreeMap<String, String>,
        whole: &mut Sha256,
    ) -> BTreeMap<String, BTreeMap<String, Part>> {
        let camp_path = &self.p.sources.get(t.name.span.file).path;
        let locales = crate::check::locales::workspace_locales(self.p);
        let mut out: BTreeMap<String, BTreeMap<String, Part>> = BTreeMap::new();
        for v in &t.variants {
            let (name, locale) = (v.attr.name.name.as_str(), &v.locale.name);
            if !locales.is_some_and(|l| l.names.iter().any(|n| n.name == *locale))
                || !crate::check::locales::localizable(channel).contains(&name)
            {
                continue;
            }
            let Some((source, text)) = part_source(camp_path, &v.attr.value.node, files) else {
                continue;
            };
            let escape = part_escape(channel, name);
            out.entry(locale.clone())
                .or_default()
                .entry(name.to_string())
                .or_insert(Part {
                    source,
                    sha256: sha256_hex(text.as_bytes()),
                    text,
                    escape: escape.to_string(),
                });
        }
        for (locale, parts) in &out {
            for (name, part) in parts {
                whole.update(format!("{name}.{locale}").as_bytes());
                whole.update([0]);
                whole.update(part.text.as_bytes());
                whole.update([0]);
            }
        }
        out
    }

    // ------------------------------------------------------------ scenarios

    /// One trigger of a scenario.
    fn trigger(&self, t: &ast::Trigger) -> Trigger {
        match t {
            ast::Trigger::Joined(l) => Trigger::Joined {
                list: l.name.clone(),
            },
            ast::Trigger::Entered(seg) => Trigger::Entered {
                segment: seg.name.clone(),
            },
            ast::Trigger::Event { event, filter } => Trigger::Event {
                event: event.name.clone(),
                filter: filter
                    .as_ref()
                    .map(|f| self.expr(f, Some(&event.name), false)),
            },
            ast::Trigger::Every { day, time } => Trigger::Every {
                day: format!("{:?}", day.node).to_lowercase(),
                at: clock(time.node),
            },
            ast::Trigger::At { time, clock: c } => Trigger::At {
                at: self.term(time, None, time),
                local_time: c.map(|c| clock(c.node)),
            },
            ast::Trigger::Yearly { field, clock: c } => Trigger::Yearly {
                field: field.name.clone(),
                at: clock(c.node),
            },
            ast::Trigger::Once(at) => Trigger::Once {
                at: timestamp(at.node),
            },
            // Unreachable for a checked project: a scenario has a valid trigger.
            ast::Trigger::Invalid => Trigger::Once { at: timestamp(0) },
            ast::Trigger::Monthly { day, time } => Trigger::Monthly {
                day: day.node.map_or("last".to_string(), |d| d.to_string()),
                at: clock(time.node),
            },
            ast::Trigger::OnceLocal { date, time } => Trigger::OnceLocal {
                date: date.node.to_string(),
                at: clock(time.node),
            },
        }
    }

    fn scenario(&self, s: &ast::Scenario) -> Scenario {
        let name = &s.name.name;
        let mut triggers = s.triggers.iter().map(|t| self.trigger(&t.node));
        let trigger = triggers
            .next()
            .unwrap_or(Trigger::Once { at: timestamp(0) });
        let more_triggers = triggers.collect();
        let reentry = match s.reentry.first().map(|r| r.node) {
            Some(ast::Reentry::Always) => Reentry::Always,
            Some(ast::Reentry::After(d)) => Reentry::After {
                seconds: d.seconds(),
            },
            _ => Reentry::Never,
        };
        let mut steps = BTreeMap::new();
        let entry = self.steps(name, &s.steps, "", None, &mut steps);
        Scenario {
            audience: s.audience.first().map(|e| self.expr(e, None, false)),
            trigger,
            reentry,
            exit_when: s.exit_when.first().map(|e| self.expr(e, None, true)),
            goals: s
                .goals
                .iter()
                .map(|g| Goal {
                    event: if g.joined {
                        String::new()
                    } else {
                        g.event.name.clone()
                    },
                    within_seconds: g.within.node.seconds(),
                    filter: g
                        .filter
                        .as_ref()
                        .map(|f| self.expr(f, Some(&g.event.name), false)),
                    value: g.value.as_ref().map(|v| v.name.clone()),
                    joined: g.joined.then(|| g.event.name.clone()),
                })
                .collect(),
            entry,
            steps,
            more_triggers,
        }
    }

    /// Lowers a block of steps; returns the id of its first step (or
    /// `after` for an empty block). `after` is where the block continues.
    fn steps(
        &self,
        scenario: &str,
        block: &[ast::Step],
        prefix: &str,
        after: Option<String>,
        out: &mut BTreeMap<String, Step>,
    ) -> Option<String> {
        let id = |i: usize| format!("{scenario}/{prefix}{i}");
        // Steps after `exit` never run (W0604): leave them out.
        let len = block
            .iter()
            .position(|s| matches!(s.kind, ast::StepKind::Exit))
            .map_or(block.len(), |i| i + 1);
        for (i, step) in block[..len].iter().enumerate() {
            let next = if i + 1 < len {
                Some(id(i + 1))
            } else {
                after.clone()
            };
            let node = match &step.kind {
                ast::StepKind::Send(t) => Step::Send {
                    template: t.name.clone(),
                    next,
                },
                ast::StepKind::Wait(d) => Step::Wait {
                    seconds: d.node.seconds(),
                    next,
                    business_days: None,
                },
                ast::StepKind::WaitBusiness(n) => Step::Wait {
                    seconds: i64::from(n.node) * 86_400,
                    next,
                    business_days: Some(n.node),
                },
                ast::StepKind::WaitUntil { cond, timeout } => Step::WaitUntil {
                    until: self.expr(cond, None, true),
                    timeout_seconds: timeout.node.seconds(),
                    next,
                },
                ast::StepKind::Join(l) => Step::Join {
                    list: l.name.clone(),
                    next,
                },
                ast::StepKind::Leave(l) => Step::Leave {
                    list: l.name.clone(),
                    next,
                },
                ast::StepKind::Tag(t) => Step::Tag {
                    tag: t.node.clone(),
                    next,
                },
                ast::StepKind::Untag(t) => Step::Untag {
                    tag: t.node.clone(),
                    next,
                },
                ast::StepKind::Start(c) => Step::Start {
                    cadence: c.name.clone(),
                    next,
                },
                ast::StepKind::Exit => Step::Exit,
                ast::StepKind::WaitUntilTime(t) => Step::WaitUntilTime {
                    until: self.term(t, None, t),
                    next,
                },
                ast::StepKind::Branch(arms) => {
                    let mut out_arms = Vec::new();
                    let mut has_else = false;
                    for (a, arm) in arms.iter().enumerate() {
                        if has_else {
                            break; // unreachable (W0601)
                        }
                        let first = self.steps(
                            scenario,
                            &arm.steps,
                            &format!("{prefix}{i}.{a}."),
                            next.clone(),
                            out,
                        );
                        has_else |= arm.cond.is_none();
                        out_arms.push(BranchArm {
                            when: arm.cond.as_ref().map(|c| self.expr(c, None, true)),
                            next: first,
                        });
                    }
                    Step::Branch {
                        arms: out_arms,
                        otherwise: if has_else { None } else { next },
                    }
                }
                ast::StepKind::Split(arms) => {
                    let mut upto = 0.0;
                    let out_arms = arms
                        .iter()
                        .enumerate()
                        .map(|(a, arm)| {
                            upto += arm.share.node;
                            SplitArm {
                                share: arm.share.node,
                                upto,
                                next: self.steps(
                                    scenario,
                                    &arm.steps,
                                    &format!("{prefix}{i}.{a}."),
                                    next.clone(),
                                    out,
                                ),
                            }
                        })
                        .collect();
                    Step::Split { arms: out_arms }
                }
            };
            out.insert(id(i), node);
        }
        if len == 0 { after } else { Some(id(0)) }
    }

    fn cadence(&self, c: &ast::Cadence) -> Cadence {
        // The first `spacing` written, in seconds or in business days.
        let business = c
            .business_spacing
            .first()
            .filter(|b| {
                c.spacing
                    .first()
                    .is_none_or(|s| b.span.start < s.span.start)
            })
            .map(|b| b.node);
        let spacing = match business {
            Some(n) => i64::from(n) * 86_400,
            None => c
                .spacing
                .first()
                .map(|s| s.node.seconds())
                .unwrap_or(86_400),
        };
        Cadence {
            stop_when: c.stop.first().map(|e| self.expr(e, None, true)),
            spacing_seconds: spacing,
            touches: c
                .touches
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let (after_seconds, after_business_days) = match (t.after, t.after_business) {
                        (Some(a), _) => (a.node.seconds(), None),
                        (None, Some(n)) => (i64::from(n.node) * 86_400, Some(n.node)),
                        (None, None) if i == 0 => (0, None),
                        (None, None) => (spacing, business),
                    };
                    Touch {
                        id: format!("{}/{i}", c.name.name),
                        template: t.template.name.clone(),
                        after_seconds,
                        after_business_days,
                        when: t.when.as_ref().map(|e| self.expr(e, None, true)),
                    }
                })
                .collect(),
            spacing_business_days: business,
        }
    }

    // ------------------------------------------------------------ expressions

    /// `event`: inside `where` of that event. `in_run`: written in a
    /// scenario or cadence, where engagement sees only the run's messages.
    fn expr(&self, e: &ast::Expr, event: Option<&str>, in_run: bool) -> Expr {
        use ast::ExprKind as K;
        match &e.kind {
            K::Or(xs) => flatten(xs.iter().map(|x| self.expr(x, event, in_run)), true),
            K::And(xs) => flatten(xs.iter().map(|x| self.expr(x, event, in_run)), false),
            K::Not(x) => not(self.expr(x, event, in_run)),
            K::Bool(b) => Expr::Const { value: *b },
            K::Name(i) => {
                let event_field = event
                    .and_then(|ev| self.p.event_fields(ev))
                    .is_some_and(|f| f.get(&i.name).is_some());
                if event_field {
                    Expr::Flag {
                        value: Term::EventField(i.name.clone()),
                    }
                } else {
                    match self.p.kind_of(&i.name) {
                        Some(Kind::Segment) => Expr::Segment {
                            name: i.name.clone(),
                        },
                        Some(Kind::List) => Expr::List {
                            name: i.name.clone(),
                        },
                        _ => Expr::Flag {
                            value: Term::Field(i.name.clone()),
                        },
                    }
                }
            }
            K::Compare { lhs, op, rhs } => {
                let (l, r) = (self.term(lhs, event, rhs), self.term(rhs, event, lhs));
                // Variants go on the right.
                if matches!(l, Term::Variant(_)) {
                    Expr::Compare {
                        cmp: flip(op.node).to_string(),
                        left: r,
                        right: l,
                    }
                } else {
                    Expr::Compare {
                        cmp: op.node.as_str().to_string(),
                        left: l,
                        right: r,
                    }
                }
            }
            K::In {
                term,
                list,
                negated,
            } => {
                let e = Expr::In {
                    value: self.term(term, event, term),
                    list: list
                        .node
                        .iter()
                        .map(|t| self.term(t, event, term))
                        .collect(),
                };
                if *negated { not(e) } else { e }
            }
            K::Contains { haystack, needle } => Expr::Contains {
                haystack: self.term(haystack, event, needle),
                needle: self.term(needle, event, haystack),
            },
            K::IsSet { term, negated } => {
                let e = Expr::IsSet {
                    value: self.term(term, event, term),
                };
                if *negated { not(e) } else { e }
            }
            K::Engagement {
                kind,
                target,
                since,
            } => {
                let (template, link) = match target {
                    ast::EngagementTarget::Any(_) => (None, None),
                    ast::EngagementTarget::Template { template, link } => (
                        Some(template.name.clone()),
                        link.as_ref().map(|l| l.name.clone()),
                    ),
                };
                Expr::Engagement {
                    event: kind.node.as_str().to_string(),
                    scope: if in_run && template.is_some() {
                        "run"
                    } else {
                        "all"
                    }
                    .to_string(),
                    template,
                    link,
                    since: since.as_ref().map(|t| self.term(t, None, t)),
                }
            }
            K::Aggregate { agg, op, rhs } => Expr::Aggregate {
                function: agg.func.node.as_str().to_string(),
                event: agg.event.name.clone(),
                field: agg.field.as_ref().map(|f| f.name.clone()),
                filter: agg
                    .filter
                    .as_ref()
                    .map(|f| Box::new(self.expr(f, Some(&agg.event.name), false))),
                since: agg.since.as_ref().map(|t| self.term(t, None, t)),
                cmp: op.node.as_str().to_string(),
                value: self.term(rhs, event, rhs),
                distinct: agg.distinct.is_some(),
            },
            K::TextTest { term, op, arg } => {
                let value = self.term(term, event, arg);
                match op.node {
                    ast::TextOp::StartsWith => Expr::StartsWith {
                        value,
                        prefix: self.term(arg, event, term),
                    },
                    ast::TextOp::EndsWith => Expr::EndsWith {
                        value,
                        suffix: self.term(arg, event, term),
                    },
                    ast::TextOp::Matches => Expr::Matches {
                        value,
                        pattern: match &arg.kind {
                            ast::TermKind::Str(s) => s.clone(),
                            _ => String::new(),
                        },
                    },
                }
            }
        }
    }

    /// A term; `other` is the term it is compared with, which tells a bare
    /// name that is an enum variant from a field.
    fn term(&self, t: &ast::Term, event: Option<&str>, other: &ast::Term) -> Term {
        use ast::TermKind as T;
        match &t.kind {
            T::Now => Term::Now(true),
            T::Ago(d) => Term::AgoSeconds(d.seconds()),
            T::Timestamp(s) => Term::Timestamp(timestamp(*s)),
            T::Date(d) => Term::Date(d.to_string()),
            T::Clock(c) => Term::Text(clock(*c)),
            T::Duration(d) => Term::Number(d.seconds() as f64),
            T::Percent(p) => Term::Number(*p),
            T::Number(n) => Term::Number(*n),
            T::Str(s) => Term::Text(s.clone()),
            T::Bool(b) => Term::Bool(*b),
            T::Shifted { base, seconds } => Term::Offset {
                term: Box::new(self.term(base, event, other)),
                seconds: *seconds,
            },
            T::Name(n) => {
                let is_field = |name: &str| {
                    event
                        .and_then(|ev| self.p.event_fields(ev))
                        .is_some_and(|f| f.get(name).is_some())
                        || self.p.schema.get(name).is_some()
                        || name == "id"
                        || name == "tags"
                };
                let other_is_enum = match &other.kind {
                    T::Name(o) if o != n => self
                        .p
                        .schema
                        .get(o)
                        .is_some_and(|f| matches!(f.ty, Type::Enum(_))),
                    _ => false,
                };
                let self_is_enum = self
                    .p
                    .schema
                    .get(n)
                    .is_some_and(|f| matches!(f.ty, Type::Enum(_)));
                if event
                    .and_then(|ev| self.p.event_fields(ev))
                    .is_some_and(|f| f.get(n).is_some())
                {
                    Term::EventField(n.clone())
                } else if (other_is_enum && !self_is_enum) || !is_field(n) {
                    Term::Variant(n.clone())
                } else {
                    Term::Field(n.clone())
                }
            }
        }
    }
}

fn flip(op: ast::CmpOp) -> &'static str {
    use ast::CmpOp::*;
    match op {
        Eq => "==",
        Ne => "!=",
        Lt => ">",
        Le => ">=",
        Gt => "<",
        Ge => "<=",
    }
}

fn not(e: Expr) -> Expr {
    match e {
        Expr::Not { arg } => *arg,
        Expr::Const { value } => Expr::Const { value: !value },
        other => Expr::Not {
            arg: Box::new(other),
        },
    }
}

/// `or`/`and` with nested ones of the same kind merged.
fn flatten(args: impl Iterator<Item = Expr>, or: bool) -> Expr {
    let mut out = Vec::new();
    for a in args {
        match (a, or) {
            (Expr::Or { args }, true) | (Expr::And { args }, false) => out.extend(args),
            (a, _) => out.push(a),
        }
    }
    if or {
        Expr::Or { args: out }
    } else {
        Expr::And { args: out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_paths_resolve_inside_the_project_only() {
        assert_eq!(
            resolve_template_path("a.camp", "templates/x.hbs").as_deref(),
            Some("templates/x.hbs")
        );
        assert_eq!(
            resolve_template_path("sub/a.camp", "../t/x.hbs").as_deref(),
            Some("t/x.hbs")
        );
        assert_eq!(
            resolve_template_path("sub/a.camp", "./x.hbs").as_deref(),
            Some("sub/x.hbs")
        );
        assert_eq!(resolve_template_path("a.camp", "../x.hbs"), None);
        assert_eq!(resolve_template_path("a.camp", "/etc/passwd"), None);
    }
}
