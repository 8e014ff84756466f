//! `relance watch`: the terminal side. Builds once, serves the previews on
//! 127.0.0.1, prints the URL (the first line on stdout), then one line per
//! build on stderr, with the diagnostics as `relance check` shows them.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::{ColorArg, human_style, project_now};
use crate::diagnostics::render;
use crate::watch::{BindError, Builder, Changes, Outcome, Server, Session, Shared};

#[derive(Args, Debug)]
pub(super) struct WatchArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The port on 127.0.0.1; `0` picks a free one.
    #[arg(long, default_value_t = 4000)]
    port: u16,
    /// Open the previews in the default browser.
    #[arg(long)]
    open: bool,
    /// Reference time for personas' relative times (`40d ago`), as RFC 3339
    /// (`2026-01-15T09:00:00Z`); default: the time `relance watch` started.
    #[arg(long)]
    now: Option<String>,
    /// Colours in the diagnostics: auto, always or never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
    /// The link of `file:line` in the browser's error panel, with `{path}`
    /// (absolute), `{line}` and `{column}` replaced; default:
    /// `vscode://file/{path}:{line}:{column}`.
    #[arg(long, value_name = "URL")]
    editor: Option<String>,
}

pub(super) fn watch(args: WatchArgs) -> ExitCode {
    let Some(now) = project_now(&args.path, args.now.as_deref()) else {
        return ExitCode::from(2);
    };
    // The project's root is watched: the nearest `relance.toml` at or above
    // the path, or the folder given; a lone `.camp` file through its folder.
    let located = match super::manifest::locate(&args.path) {
        Ok(l) => l,
        Err(_) => {
            eprintln!(
                "error: cannot read `{}`: no such file or folder; give the project folder, e.g. `relance watch campaigns`",
                args.path.display()
            );
            return ExitCode::from(2);
        }
    };
    // `--editor` wins over the manifest's `editor`; both are checked alike.
    let editor = args.editor.clone().or_else(|| {
        let (settings, _) = located.settings(&mut crate::diagnostics::SourceMap::new());
        settings.editor
    });
    if let Some(e) = &editor
        && let Err(why) = crate::watch::editor_template_ok(e)
    {
        eprintln!("error: {why}");
        return ExitCode::from(2);
    }
    let single = located.single.is_some();
    let folder = if located.root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        located.root.clone()
    };
    let shared = Arc::new(Shared::default());
    let server = match Server::start(args.port, shared.clone()) {
        Ok(s) => s,
        Err(BindError::InUse(port)) => {
            eprintln!(
                "error: port {port} on 127.0.0.1 is already in use (another `relance watch`?); choose another with `--port N`, or `--port 0` for any free port"
            );
            return ExitCode::from(2);
        }
        Err(BindError::Other(e)) => {
            eprintln!(
                "error: cannot listen on 127.0.0.1:{}: {e}; try another port with `--port N`",
                args.port
            );
            return ExitCode::from(2);
        }
    };
    // Watching starts before the first build, so no change is missed.
    let mut changes = match Changes::new(&folder, single) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let url = server.url();
    println!("Serving previews at {url}");
    for w in changes.take_warnings() {
        eprintln!("warning: {w}");
    }
    let _ = std::io::stdout().flush();
    let style = human_style(args.color);
    let mut session = Session::new(Builder::new(&args.path, now), shared).with_editor(editor);
    let (outcome, _) = session.rebuild();
    print_outcome(&outcome, "built", false, style);
    changes.set_inputs(outcome.inputs);
    eprintln!("watching {} for changes (Ctrl-C stops)", folder.display());
    if args.open {
        open_browser(&url);
    }
    loop {
        let Some(_events) = changes.wait() else {
            eprintln!("error: the file watcher stopped; start `relance watch` again");
            return ExitCode::from(2);
        };
        for w in changes.take_warnings() {
            eprintln!("warning: {w}");
        }
        let (outcome, changed) = session.rebuild();
        print_outcome(&outcome, "rebuilt", changed, style);
        changes.set_inputs(outcome.inputs);
    }
}

/// The diagnostics (as `relance check` prints them, without its summary),
/// then one line: time, duration, counts, and what was redone.
fn print_outcome(o: &Outcome, verb: &str, changed: bool, style: render::HumanStyle) {
    let mut err = std::io::stderr().lock();
    if let Some(message) = &o.load_error {
        let _ = writeln!(
            err,
            "error: {message}; the last good previews stay served, and the project is built again when it is back"
        );
    }
    if !o.diagnostics.is_empty() {
        let text = render::human(&o.diagnostics, &o.sources, &o.prefix, style);
        let summary = format!("{}\n", render::summary(&o.diagnostics));
        let _ = err.write_all(text.strip_suffix(&summary).unwrap_or(&text).as_bytes());
    }
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let clock = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
    let ms = o.elapsed.as_secs_f64() * 1000.0;
    let detail = if verb == "built" {
        String::new()
    } else if o.errors() > 0 {
        " (previews: last good build)".to_string()
    } else if changed {
        format!(
            " ({} parsed, {} rendered)",
            plural(o.parsed, "file"),
            plural(o.cache.rendered, "template")
        )
    } else {
        " (previews unchanged)".to_string()
    };
    let _ = writeln!(
        err,
        "[{clock}] {verb} in {ms:.0} ms: {}, {}{detail}",
        plural(o.errors(), "error"),
        plural(o.warnings(), "warning"),
    );
}

/// Best effort: the previews in the default browser.
fn open_browser(url: &str) {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match command.spawn() {
        Ok(mut child) => {
            // Reap it without waiting here.
            std::thread::spawn(move || child.wait());
        }
        Err(e) => eprintln!("note: could not open a browser ({e}); open {url} yourself"),
    }
}
