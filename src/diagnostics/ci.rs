//! Diagnostics for CI systems: SARIF 2.1.0 (what GitHub code scanning and
//! most CI dashboards read) and the extras of `--format github` (a job
//! summary table, and a note on annotations GitHub does not show).
//!
//! Paths are written as the other formats write them: relative to the
//! folder relance runs in when the project was given as a relative path
//! (`campaigns/templates.camp` for `relance check campaigns`), which is
//! what GitHub resolves against the repository root; run from the project
//! folder itself, they are relative to the project.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::render::display_path;
use super::{Code, Diagnostic, Label, Severity, SourceMap};

/// How many annotations of one severity GitHub shows for a step.
pub const GITHUB_ANNOTATION_LIMIT: usize = 10;

/// The first paragraph of a code's explanation (after its title line),
/// as one line.
pub fn first_paragraph(code: Code) -> String {
    let mut words = Vec::new();
    for line in code
        .explanation()
        .lines()
        .skip_while(|l| l.starts_with('#') || l.trim().is_empty())
    {
        if line.trim().is_empty() || line.starts_with('#') {
            break;
        }
        words.push(line.trim());
    }
    words.join(" ")
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn physical_location(label: &Label, sources: &SourceMap, prefix: &str) -> Value {
    let file = sources.get(label.span.file);
    let (line, column) = file.line_col(label.span.start);
    let (end_line, end_column) = file.line_col(label.span.end);
    json!({
        "artifactLocation": { "uri": uri(&display_path(prefix, &file.path)) },
        "region": {
            "startLine": line,
            "startColumn": column,
            "endLine": end_line,
            "endColumn": end_column,
        },
    })
}

/// A path as a URI reference: `/` separators, and characters that are not
/// allowed in a URI percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::new();
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The SARIF 2.1.0 log of one `relance check` run: one run, the tool with a
/// rule for each code used (in code order), one result per diagnostic (in
/// the diagnostics' order). Keys are sorted, so the output is byte-stable.
pub fn sarif(diagnostics: &[Diagnostic], sources: &SourceMap, prefix: &str) -> String {
    let codes: BTreeMap<Code, usize> = {
        let mut used: Vec<Code> = diagnostics.iter().map(|d| d.code).collect();
        used.sort();
        used.dedup();
        used.into_iter().enumerate().map(|(i, c)| (c, i)).collect()
    };
    let rules: Vec<Value> = codes
        .keys()
        .map(|&code| {
            let text = first_paragraph(code);
            json!({
                "id": code.as_str(),
                "name": rule_name(code.title()),
                "shortDescription": { "text": code.title() },
                "fullDescription": { "text": text },
                "help": {
                    "text": format!("{text} Run `relance explain {code}` for an example."),
                },
                "defaultConfiguration": { "level": level(code.severity()) },
            })
        })
        .collect();
    let results: Vec<Value> = diagnostics
        .iter()
        .map(|d| {
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(help);
            }
            let mut r = json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": codes.get(&d.code).copied().unwrap_or_default(),
                "level": level(d.severity()),
                "message": { "text": message },
            });
            if let Some(primary) = &d.primary {
                let mut location = json!({
                    "physicalLocation": physical_location(primary, sources, prefix),
                });
                if !primary.message.is_empty() {
                    location["message"] = json!({ "text": primary.message });
                }
                r["locations"] = json!([location]);
            }
            if !d.secondary.is_empty() {
                r["relatedLocations"] = d
                    .secondary
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        json!({
                            "id": i,
                            "physicalLocation": physical_location(l, sources, prefix),
                            "message": { "text": l.message },
                        })
                    })
                    .collect();
            }
            r
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "relance",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                },
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&log).unwrap_or_else(|_| "{}".to_string());
    s.push('\n');
    s
}

/// `unknown template variable` → `UnknownTemplateVariable` (SARIF's
/// `name` is an identifier-like form of the rule).
fn rule_name(title: &str) -> String {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|f| f.to_uppercase().chain(cs).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The annotations of `--format github` (`github`'s output), with a note on
/// the last one GitHub shows of each severity when more follow:
/// `… and 14 more errors: see the job summary` (`summary`: a job summary
/// was written) or `… run relance check to see them`.
pub fn github_annotations(github_lines: &str, diagnostics: &[Diagnostic], summary: bool) -> String {
    let count = |s: Severity| diagnostics.iter().filter(|d| d.severity() == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let mut seen = (0usize, 0usize);
    let mut out = String::with_capacity(github_lines.len() + 200);
    let lines: Vec<&str> = github_lines.lines().collect();
    // One line per diagnostic, in order; anything else is passed through.
    let aligned = lines.len() == diagnostics.len();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        if aligned {
            let (n, total, noun) = match diagnostics[i].severity() {
                Severity::Error => {
                    seen.0 += 1;
                    (seen.0, errors, "error")
                }
                Severity::Warning => {
                    seen.1 += 1;
                    (seen.1, warnings, "warning")
                }
            };
            if n == GITHUB_ANNOTATION_LIMIT && total > n {
                let more = total - n;
                let plural = if more == 1 { "" } else { "s" };
                let tail = if summary {
                    "see the job summary"
                } else {
                    "run `relance check` to see them all"
                };
                out.push_str(&format!("%0A… and {more} more {noun}{plural}: {tail}"));
            }
        }
        out.push('\n');
    }
    out
}

/// A Markdown table of every diagnostic, for `$GITHUB_STEP_SUMMARY`.
pub fn github_summary(diagnostics: &[Diagnostic], sources: &SourceMap, prefix: &str) -> String {
    let count = |s: Severity| diagnostics.iter().filter(|d| d.severity() == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut out = format!(
        "### relance check: {errors} error{}, {warnings} warning{}\n\n",
        plural(errors),
        plural(warnings)
    );
    if diagnostics.is_empty() {
        out.push_str("No problems found.\n\n");
        return out;
    }
    out.push_str("| severity | code | place | message |\n|---|---|---|---|\n");
    for d in diagnostics {
        let place = match &d.primary {
            Some(l) => {
                let file = sources.get(l.span.file);
                let (line, column) = file.line_col(l.span.start);
                format!(
                    "`{}:{line}:{column}`",
                    display_path(prefix, &file.path).replace('`', "'")
                )
            }
            None => String::new(),
        };
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            level(d.severity()),
            d.code,
            cell(&place),
            cell(&d.message)
        ));
    }
    out.push('\n');
    out
}

/// A Markdown table cell: no line breaks, `|` escaped, HTML neutralised.
fn cell(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{SourceFile, Span};

    fn one(n: usize, code: Code) -> (SourceMap, Vec<Diagnostic>) {
        let mut sources = SourceMap::new();
        let f = sources.add(SourceFile::new("a b.camp", "segment x = y\n"));
        let ds = (0..n)
            .map(|i| {
                Diagnostic::new(code, format!("problem {i} | a")).at(Span::new(f, 12, 13), "here")
            })
            .collect();
        (sources, ds)
    }

    #[test]
    fn first_paragraphs_are_one_line() {
        for &c in Code::ALL {
            let p = first_paragraph(c);
            assert!(!p.is_empty() && !p.contains('\n'), "{c}: {p:?}");
        }
    }

    #[test]
    fn sarif_paths_and_regions() {
        let (sources, ds) = one(1, Code::E0208);
        let v: Value = serde_json::from_str(&sarif(&ds, &sources, "campaigns")).unwrap_or_default();
        let loc = &v["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "campaigns/a%20b.camp");
        assert_eq!(loc["region"]["startColumn"], 13);
        assert_eq!(v["runs"][0]["tool"]["driver"]["rules"][0]["id"], "E0208");
        assert_eq!(
            v["runs"][0]["tool"]["driver"]["rules"][0]["name"],
            "UnknownName"
        );
    }

    #[test]
    fn the_tenth_annotation_counts_the_rest() {
        let (sources, ds) = one(24, Code::E0208);
        let lines = super::super::render::github(&ds, &sources, "");
        let out = github_annotations(&lines, &ds, true);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 24);
        assert!(
            lines[9].ends_with("%0A… and 14 more errors: see the job summary"),
            "{}",
            lines[9]
        );
        assert!(!lines[8].contains("more errors") && !lines[10].contains("more errors"));
        let (sources, ds) = one(10, Code::E0208);
        let lines = super::super::render::github(&ds, &sources, "");
        assert_eq!(github_annotations(&lines, &ds, true), lines);
    }

    #[test]
    fn summary_cells_are_escaped() {
        let (sources, ds) = one(1, Code::E0208);
        let s = github_summary(&ds, &sources, "p");
        assert!(
            s.contains("| error | `E0208` | `p/a b.camp:1:13` | problem 0 \\| a |"),
            "{s}"
        );
    }
}
