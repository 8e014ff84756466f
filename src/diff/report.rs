//! The three outputs of `relance diff`: human, Markdown and JSON, each
//! ending with (or holding) the summary line.

use std::fmt::Write as _;

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
    match d.risks.len() {
        0 => format!("{changes}; no risks"),
        1 => format!("{changes}; 1 risk"),
        n => format!("{changes}; {n} risks"),
    }
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
    if !d.changes.is_empty() && !d.risks.is_empty() {
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
    /// The impact on data; empty for now (`docs/diff.md`).
    pub impact: std::collections::BTreeMap<String, serde_json::Value>,
    /// The summary line.
    pub summary: String,
}

/// `{"changes": […], "risks": […], "impact": {}, "summary": "…"}`.
pub fn json(d: &Diff) -> String {
    let report = JsonReport {
        changes: &d.changes,
        risks: &d.risks,
        impact: Default::default(),
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
