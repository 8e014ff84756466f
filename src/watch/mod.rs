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
/// names it) and `rendered` (the terminal's report of it, without colour).
pub fn status(outcome: &Outcome) -> Value {
    let data: Value = serde_json::from_str(&render::json(&outcome.diagnostics, &outcome.sources))
        .unwrap_or_else(|_| json!({ "diagnostics": [] }));
    let mut diagnostics = match data.get("diagnostics") {
        Some(Value::Array(list)) => list.clone(),
        _ => Vec::new(),
    };
    for (d, v) in outcome.diagnostics.iter().zip(diagnostics.iter_mut()) {
        let Some(o) = v.as_object_mut() else { continue };
        let path = o
            .get("file")
            .and_then(Value::as_str)
            .map(|f| render::display_path(&outcome.prefix, f));
        o.insert("path".into(), path.into());
        o.insert("rendered".into(), report(d, outcome).into());
    }
    json!({
        "ok": outcome.errors() == 0,
        "errors": outcome.errors(),
        "warnings": outcome.warnings(),
        "message": outcome.load_error,
        "duration_ms": outcome.elapsed.as_secs_f64() * 1000.0,
        "diagnostics": diagnostics,
    })
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
}

impl Session {
    pub fn new(builder: Builder, shared: Arc<Shared>) -> Session {
        Session { builder, shared }
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
        let status = status(&outcome);
        let changed = self.shared.publish(outcome.site.take(), status);
        (outcome, changed)
    }
}
