//! The three outputs of `relance diff`: human, Markdown and JSON, each
//! ending with (or holding) the summary line.

use std::fmt::Write as _;

use super::impact::Counts;
use super::{ChangeKind, Diff};

/// Declaration kinds in the order `diff` reports them.
const KINDS: [&str; 12] = [
    "workspace",
    "schema",
    "event",
    "list",
    "segment",
    "topic",
    "consent",
    "pressure",
    "persona",
    "template",
    "scenario",
    "cadence",
];

/// The plural of a declaration kind, for the summary.
fn plural(kind: &str, n: usize) -> String {
    let word = match (kind, n) {
        ("consent", 1) => "consent rule",
        ("consent", _) => "consent rules",
        ("pressure", _) => "pressure policy",
        ("schema", _) => "contact schema",
        ("event", 1) => "event type",
        ("event", _) => "event types",
        ("workspace", _) => "workspace",
        ("cadence", 1) => "cadence",
        ("cadence", _) => "cadences",
        (k, 1) => return format!("{n} {k}"),
        (k, _) => return format!("{n} {k}s"),
    };
    format!("{n} {word}")
}

/// `3 scenarios changed, 1 segment added; 4 risks`, or `no changes`.
pub fn summary(d: &Diff) -> String {
    let mut parts: Vec<String> = Vec::new();
    for kind in KINDS {
        let mut first = true;
        for change in [ChangeKind::Changed, ChangeKind::Added, ChangeKind::Removed] {
            let n = d
                .changes
                .iter()
                .filter(|c| c.kind == kind && c.change == change)
                .count();
            if n == 0 {
                continue;
            }
            if first {
                parts.push(format!("{} {}", plural(kind, n), change.as_str()));
                first = false;
            } else {
                parts.push(format!("{n} {}", change.as_str()));
            }
        }
    }
    let changes = if parts.is_empty() {
        "no changes".to_string()
    } else {
        parts.join(", ")
    };
    let mut out = match d.risks.len() {
        0 => format!("{changes}; no risks"),
        1 => format!("{changes}; 1 risk"),
        n => format!("{changes}; {n} risks"),
    };
    for part in super::impact::summary(&d.impact) {
        out.push_str("; ");
        out.push_str(&part);
    }
    out
}

/// `12`, or `-` for a declaration a side does not have.
fn opt(n: Option<u64>) -> String {
    n.map_or("-".to_string(), super::impact::thousands)
}

/// `12 → 14`, or `12` when equal.
fn before_after(c: &Counts) -> String {
    if c.changed() {
        format!("{} → {}", opt(c.before), opt(c.after))
    } else {
        opt(c.after)
    }
}

/// `~ ` for a count that changed, else two spaces.
fn mark(changed: bool) -> &'static str {
    if changed { "~ " } else { "  " }
}

fn pressure_text(p: &super::impact::PressureStates) -> String {
    format!(
        "{} under, {} balanced, {} over",
        super::impact::thousands(p.under),
        super::impact::thousands(p.balanced),
        super::impact::thousands(p.over)
    )
}

/// The lines of the impact on data, each a figure before and after.
fn data_lines(d: &super::impact::DataImpact) -> (String, Vec<String>) {
    let events = d
        .events_file
        .as_deref()
        .map(|e| format!(", {e}"))
        .unwrap_or_default();
    let head = format!(
        "impact on the {} ({}{events}) from {} to {}",
        d.base, d.contacts_file, d.from, d.until
    );
    let mut lines = Vec::new();
    lines.push(format!(
        "{}contacts: {}",
        mark(d.contacts.changed()),
        before_after(&d.contacts)
    ));
    for s in &d.segments {
        lines.push(format!(
            "{}segment {}: {} member(s) at the start",
            mark(s.counts.changed()),
            s.name,
            before_after(&s.counts)
        ));
    }
    for s in &d.scenarios {
        lines.push(format!(
            "{}scenario {}: audience {} at the start, entries {}",
            mark(s.audience.changed() || s.entries.changed()),
            s.name,
            before_after(&s.audience),
            before_after(&s.entries)
        ));
    }
    lines.push(format!(
        "{}messages: {}",
        mark(d.messages.changed()),
        before_after(&d.messages)
    ));
    for c in &d.channels {
        lines.push(format!(
            "{}  {}: {}",
            mark(c.counts.changed()),
            c.channel,
            before_after(&c.counts)
        ));
    }
    let mut same = 0;
    for t in &d.templates {
        if !t.counts.changed() {
            same += 1;
            continue;
        }
        lines.push(format!(
            "~   template {} ({}): {}",
            t.template,
            t.channel,
            before_after(&t.counts)
        ));
    }
    if same > 0 {
        lines.push(format!(
            "    ({same} other template(s) send as many messages as before)"
        ));
    }
    let changed = d.pressure_before != d.pressure_after;
    lines.push(if changed {
        format!(
            "~ pressure: {} → {}",
            pressure_text(&d.pressure_before),
            pressure_text(&d.pressure_after)
        )
    } else {
        format!("  pressure: {}", pressure_text(&d.pressure_after))
    });
    (head, lines)
}

/// The impact as rows of a table: what, before, after (templates only
/// when their count changed).
fn impact_rows(d: &super::impact::DataImpact) -> Vec<(String, Counts)> {
    let mut rows = vec![("contacts".to_string(), d.contacts)];
    for s in &d.segments {
        rows.push((
            format!("segment `{}`, members at the start", s.name),
            s.counts,
        ));
    }
    for s in &d.scenarios {
        rows.push((
            format!("scenario `{}`, audience at the start", s.name),
            s.audience,
        ));
        rows.push((format!("scenario `{}`, entries", s.name), s.entries));
    }
    rows.push(("messages".to_string(), d.messages));
    for c in &d.channels {
        rows.push((format!("{} messages", c.channel), c.counts));
    }
    for t in d.templates.iter().filter(|t| t.counts.changed()) {
        rows.push((
            format!("template `{}` ({})", t.template, t.channel),
            t.counts,
        ));
    }
    let (b, a) = (&d.pressure_before, &d.pressure_after);
    for (name, x, y) in [
        ("under", b.under, a.under),
        ("balanced", b.balanced, a.balanced),
        ("over", b.over, a.over),
    ] {
        rows.push((
            format!("contacts in pressure state `{name}`"),
            Counts {
                before: Some(x),
                after: Some(y),
            },
        ));
    }
    rows
}

/// Removed steps with runs waiting at them, then the total.
fn waiting_lines(w: &[super::impact::Waiting]) -> Vec<String> {
    let mut lines: Vec<String> = w
        .iter()
        .filter(|w| w.runs > 0)
        .map(|w| {
            format!(
                "~ {} ({} {}): {}",
                w.step,
                w.kind,
                w.name,
                super::impact::thousands(w.runs)
            )
        })
        .collect();
    let total: u64 = w.iter().map(|w| w.runs).sum();
    let empty = w.len() - lines.len();
    if empty > 0 {
        lines.push(format!(
            "  ({empty} removed step(s){} with no run waiting)",
            if total > 0 { " more" } else { "" }
        ));
    }
    lines
}

fn sign(c: ChangeKind) -> char {
    match c {
        ChangeKind::Added => '+',
        ChangeKind::Removed => '-',
        ChangeKind::Changed => '~',
    }
}

/// Plain text, one block per declaration, risks after, the summary last.
pub fn human(d: &Diff) -> String {
    let mut out = String::new();
    for c in &d.changes {
        let _ = writeln!(
            out,
            "{} {} {} {}",
            sign(c.change),
            c.kind,
            c.name,
            c.change.as_str()
        );
        for line in &c.details {
            let _ = writeln!(out, "    {line}");
        }
    }
    if let Some(data) = &d.impact.data {
        if !out.is_empty() {
            out.push('\n');
        }
        let (head, lines) = data_lines(data);
        let _ = writeln!(out, "{head}:");
        for l in lines {
            let _ = writeln!(out, "    {l}");
        }
    }
    if let Some(w) = &d.impact.waiting {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "runs waiting now at the steps the new plan removes:");
        for l in waiting_lines(w) {
            let _ = writeln!(out, "    {l}");
        }
    }
    if !out.is_empty() && !d.risks.is_empty() {
        out.push('\n');
    }
    for r in &d.risks {
        let _ = writeln!(out, "warning[{}]: {}", r.code, r.message);
        let _ = writeln!(out, "  = help: `relance explain {}`", r.code);
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary(d));
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A pull-request comment: the summary, the risks first, then a table of
/// the changes with their details folded in `<details>`.
pub fn markdown(d: &Diff) -> String {
    let mut out = String::from("## relance diff\n\n");
    let _ = writeln!(out, "**{}**\n", summary(d));
    if !d.risks.is_empty() {
        out.push_str("### Risks\n\n| code | declaration | risk |\n|---|---|---|\n");
        for r in &d.risks {
            let _ = writeln!(
                out,
                "| {} | {} `{}` | {} |",
                r.code,
                r.kind,
                cell(&r.name),
                cell(&r.message)
            );
        }
        out.push('\n');
    }
    if let Some(data) = &d.impact.data {
        let (head, _) = data_lines(data);
        let _ = writeln!(out, "### Impact on data\n\n{}\n", cell(&head));
        out.push_str("| | before | after |\n|---|--:|--:|\n");
        for (what, c) in impact_rows(data) {
            let bold = |s: String| if c.changed() { format!("**{s}**") } else { s };
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&what),
                opt(c.before),
                bold(opt(c.after))
            );
        }
        let same = data
            .templates
            .iter()
            .filter(|t| !t.counts.changed())
            .count();
        if same > 0 {
            let _ = writeln!(
                out,
                "\n{same} other template(s) send as many messages as before."
            );
        }
        out.push('\n');
    }
    if let Some(w) = &d.impact.waiting {
        out.push_str("### Runs waiting at removed steps\n\n| step | in | runs |\n|---|---|---|\n");
        for x in w.iter().filter(|w| w.runs > 0) {
            let _ = writeln!(
                out,
                "| `{}` | {} `{}` | {} |",
                cell(&x.step),
                x.kind,
                cell(&x.name),
                super::impact::thousands(x.runs)
            );
        }
        let empty = w.iter().filter(|w| w.runs == 0).count();
        if empty > 0 {
            let _ = writeln!(out, "| {empty} other removed step(s) | | 0 |");
        }
        out.push('\n');
    }
    if !d.changes.is_empty() {
        out.push_str("### Changes\n\n| declaration | change |\n|---|---|\n");
        for c in &d.changes {
            let _ = writeln!(
                out,
                "| {} `{}` | {} |",
                c.kind,
                cell(&c.name),
                c.change.as_str()
            );
        }
        out.push('\n');
        for c in &d.changes {
            let _ = writeln!(
                out,
                "<details><summary>{} <code>{}</code> {}</summary>\n\n```diff",
                c.kind,
                c.name,
                c.change.as_str()
            );
            for line in &c.details {
                // `~` lines as a removed and an added line, for colouring.
                match line.strip_prefix("~ ").and_then(|l| l.split_once(" → ")) {
                    Some((before, after)) => {
                        let key = before.split_once(": ").map(|(k, _)| k);
                        let _ = writeln!(out, "- {before}");
                        match key {
                            Some(k) => {
                                let _ = writeln!(out, "+ {k}: {after}");
                            }
                            None => {
                                let _ = writeln!(out, "+ {after}");
                            }
                        }
                    }
                    None => {
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
            out.push_str("```\n\n</details>\n\n");
        }
    }
    out
}

/// The JSON output of `relance diff --format json`.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonReport<'d> {
    /// Declarations added, removed or changed, by kind then name.
    pub changes: &'d [super::Change],
    /// Risky changes, warnings with stable codes (`relance explain CODE`).
    pub risks: &'d [super::Risk],
    /// The impact on data (`--contacts`/`--events` or the sample data of
    /// `relance.toml`) and on a deployment (`--database`); `{}` without
    /// either.
    pub impact: &'d super::Impact,
    /// The summary line.
    pub summary: String,
}

/// `{"changes": […], "risks": […], "impact": {}, "summary": "…"}`.
pub fn json(d: &Diff) -> String {
    let report = JsonReport {
        changes: &d.changes,
        risks: &d.risks,
        impact: &d.impact,
        summary: summary(d),
    };
    let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
    s.push('\n');
    s
}

/// The JSON Schema of the JSON output (checked in as
/// `docs/diff.schema.json`).
pub fn json_schema() -> String {
    let schema = schemars::generate::SchemaSettings::default()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<JsonReport<'static>>();
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
