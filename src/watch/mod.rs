//! `relance watch`: build a project, serve its previews on the loopback,
//! and build again on every change, with live reload in the browser.
//!
//! ```text
//! fswatch::Changes ── debounced batch ──▶ build::Builder (incremental)
//!                                               │ Outcome
//!                         terminal line ◀───────┤
//!                                               ▼
//!                  server::Shared (last good site + status JSON)
//!                                               │
//!       HTTP: build output, /__relance/status, /__relance/events (SSE)
//!                                               ▼
//!                live.js: overlay + body swap in the page
//! ```
//!
//! Like `cli`, this module touches files, the terminal and the network;
//! the compiler stages it drives do not.

mod build;
mod fswatch;
mod server;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::diagnostics::render::{self, HumanStyle};

pub use build::{Builder, Outcome, Site};
pub use fswatch::{Changes, MAX_WAIT, QUIET};
pub use server::{BindError, LIVE_JS, RESERVED, Server, Shared, Target, host_allowed, resolve};

/// The status of a build, as the overlay and `/__relance/status` show it:
/// counts, the load failure if any, and every diagnostic in the JSON shape
/// of `relance check --format json` plus `path` (the file as the terminal
/// names it), `abs_path` (the file's absolute path, for editor links) and
/// `rendered` (the terminal's report of it, without colour). A diagnostic
/// that says exactly what another says at the same place (the same code,
/// message, file, line and column) is listed once, and counted once.
pub fn status(outcome: &Outcome) -> Value {
    let data: Value = serde_json::from_str(&render::json(&outcome.diagnostics, &outcome.sources))
        .unwrap_or_else(|_| json!({ "diagnostics": [] }));
    let all = match data.get("diagnostics") {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    let mut diagnostics = Vec::with_capacity(all.len());
    let (mut errors, mut warnings) = (usize::from(outcome.load_error.is_some()), 0);
    for (d, mut v) in outcome.diagnostics.iter().zip(all) {
        let key = ["code", "message", "file", "line", "column"].map(|k| v.get(k).cloned());
        if !seen.insert(format!("{key:?}")) {
            continue;
        }
        match d.severity() {
            crate::diagnostics::Severity::Error => errors += 1,
            crate::diagnostics::Severity::Warning => warnings += 1,
        }
        let Some(o) = v.as_object_mut() else { continue };
        let file = o.get("file").and_then(Value::as_str).map(str::to_string);
        let path = file
            .as_deref()
            .map(|f| render::display_path(&outcome.prefix, f));
        let abs = file.map(|f| outcome.root.join(f).to_string_lossy().replace('\\', "/"));
        o.insert("path".into(), path.into());
        o.insert("abs_path".into(), abs.into());
        o.insert("rendered".into(), report(d, outcome).into());
        diagnostics.push(v);
    }
    json!({
        "ok": errors == 0,
        "errors": errors,
        "warnings": warnings,
        "message": outcome.load_error,
        "duration_ms": outcome.elapsed.as_secs_f64() * 1000.0,
        "diagnostics": diagnostics,
    })
}

/// Whether `template` may be used as the editor link of the error panel:
/// a URL with a scheme (`vscode://file/{path}:{line}:{column}`,
/// `idea://open?file={path}&line={line}`), not one that runs code in the
/// page (`javascript:`, `data:`, `vbscript:`).
pub fn editor_template_ok(template: &str) -> Result<(), String> {
    let scheme = template.split_once(':').map(|(s, _)| s).unwrap_or("");
    let valid = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !valid {
        return Err(format!(
            "the editor link `{template}` is not a URL; write one like `vscode://file/{{path}}:{{line}}:{{column}}`"
        ));
    }
    if ["javascript", "data", "vbscript"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return Err(format!(
            "the editor link `{template}` would run code in the preview page; use your editor's URL scheme, like `vscode://file/{{path}}:{{line}}:{{column}}`"
        ));
    }
    if !template.contains("{path}") {
        return Err(format!(
            "the editor link `{template}` has no `{{path}}`; it is replaced by the file's absolute path (and `{{line}}`, `{{column}}` by the place)"
        ));
    }
    Ok(())
}

/// One diagnostic as the terminal shows it, without colour or summary.
fn report(d: &crate::diagnostics::Diagnostic, outcome: &Outcome) -> String {
    let one = std::slice::from_ref(d);
    let text = render::human(one, &outcome.sources, &outcome.prefix, HumanStyle::plain());
    let summary = format!("{}\n", render::summary(one));
    text.strip_suffix(&summary)
        .unwrap_or(&text)
        .trim_end()
        .to_string()
}

/// A project being watched: its builder and what the server shows.
pub struct Session {
    builder: Builder,
    shared: Arc<Shared>,
    editor: Option<String>,
}

impl Session {
    pub fn new(builder: Builder, shared: Arc<Shared>) -> Session {
        Session {
            builder,
            shared,
            editor: None,
        }
    }

    /// The error panel links `file:line:column` with this URL template
    /// (`{path}`, `{line}`, `{column}` replaced; see
    /// [`editor_template_ok`]) instead of `vscode://file/{path}:{line}:{column}`.
    /// The caller checks the template first.
    pub fn with_editor(mut self, template: Option<String>) -> Session {
        self.editor = template;
        self
    }

    /// Builds from disk and publishes the result: the new site when the
    /// build had no error, the status always. Returns the outcome and
    /// whether the site changed.
    pub fn rebuild(&mut self) -> (Outcome, bool) {
        let start = std::time::Instant::now();
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.builder.build()));
        let mut outcome = match built {
            Ok(o) => o,
            Err(_) => {
                // A bug, reported by the panic message above. Whatever the
                // caches held may be half-updated: start them afresh, and
                // keep watching and serving the last good previews.
                self.builder = self.builder.fresh();
                self.builder.failed(
                    "internal error: relance failed while building this project (a bug; please report it with the files you just changed); the next change builds it again from scratch".to_string(),
                    start.elapsed(),
                )
            }
        };
        let mut status = status(&outcome);
        if let (Some(e), Some(o)) = (&self.editor, status.as_object_mut()) {
            o.insert("editor".into(), e.clone().into());
        }
        let changed = self.shared.publish(outcome.site.take(), status);
        (outcome, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Code, Diagnostic, SourceFile, SourceMap, Span};

    #[test]
    fn the_status_lists_a_diagnostic_once_with_its_absolute_path() {
        let mut sources = SourceMap::new();
        let id = sources.add(SourceFile::new(
            "a.camp".to_string(),
            "segment x = y\n".to_string(),
        ));
        let d =
            || Diagnostic::new(Code::E0101, "unknown name `y`").at(Span::new(id, 12, 13), "here");
        let outcome = Outcome {
            diagnostics: vec![d(), d()],
            sources,
            prefix: "proj".into(),
            root: std::path::PathBuf::from("/home/me/proj"),
            load_error: None,
            site: None,
            inputs: Default::default(),
            parsed: 0,
            cache: Default::default(),
            elapsed: Default::default(),
        };
        let st = status(&outcome);
        assert_eq!(st["errors"], 1, "{st}");
        let list = st["diagnostics"].as_array().unwrap();
        assert_eq!(list.len(), 1, "{st}");
        assert_eq!(list[0]["abs_path"], "/home/me/proj/a.camp");
        assert_eq!(list[0]["path"], "proj/a.camp");
    }

    #[test]
    fn editor_links_are_urls_that_run_no_code() {
        assert!(editor_template_ok("vscode://file/{path}:{line}:{column}").is_ok());
        assert!(editor_template_ok("idea://open?file={path}&line={line}").is_ok());
        for bad in [
            "javascript:alert(1)//{path}",
            "JavaScript:x{path}",
            "data:text/html,{path}",
            "{path}:{line}",
            "vscode://file/",
            "",
        ] {
            assert!(editor_template_ok(bad).is_err(), "{bad}");
        }
    }
}
