//! The command line: the only place that touches files and the terminal.

mod load;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::diagnostics::render::{self, Format, HumanStyle};
use crate::diagnostics::{Code, Severity};
use crate::driver;

pub use load::{LoadError, Loaded, load_project};

#[derive(Parser, Debug)]
#[command(
    name = "relance",
    version,
    about = "Campaign-as-code compiler: check, build and run marketing automation"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check every `*.camp` file of a project and report all problems.
    Check {
        /// The project folder (or one `.camp` file).
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
        /// Exit with status 1 when there are warnings, too.
        #[arg(long)]
        deny_warnings: bool,
        /// Colours in human output: auto (when the output is a terminal), always or never.
        #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
        color: ColorArg,
    },
    /// Explain a diagnostic code, with a wrong and a right example.
    Explain {
        /// A code such as `E0201` or `W0601`; `--list` shows them all.
        code: Option<String>,
        /// List every code with its title.
        #[arg(long)]
        list: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Human,
    Json,
    Github,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

/// Runs the command line; returns the process exit code (0, 1 or 2 as in §11).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Check {
            path,
            format,
            deny_warnings,
            color,
        } => check(path, format, deny_warnings, color),
        Command::Explain { code, list } => explain(code, list),
    }
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn check(path: PathBuf, format: FormatArg, deny_warnings: bool, color: ColorArg) -> ExitCode {
    let loaded = match load_project(&path) {
        Ok(l) => l,
        Err(LoadError(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let checked = driver::check_sources(&loaded.sources, loaded.problems, threads());
    let prefix = path.to_string_lossy().replace('\\', "/");
    let prefix = if path.is_dir() {
        prefix
    } else {
        loaded.root.to_string_lossy().replace('\\', "/")
    };
    let format = match format {
        FormatArg::Human => Format::Human,
        FormatArg::Json => Format::Json,
        FormatArg::Github => Format::Github,
    };
    let out = match format {
        Format::Human => {
            let is_tty = std::io::stderr().is_terminal();
            let style = HumanStyle {
                color: match color {
                    ColorArg::Always => true,
                    ColorArg::Never => false,
                    ColorArg::Auto => is_tty && std::env::var_os("NO_COLOR").is_none(),
                },
                unicode: true,
                width: 100,
            };
            render::human(&checked.diagnostics, &loaded.sources, &prefix, style)
        }
        Format::Json => render::json(&checked.diagnostics, &loaded.sources),
        Format::Github => render::github(&checked.diagnostics, &loaded.sources, &prefix),
    };
    // Human reports go to stderr like a compiler's; machine formats to stdout.
    let written = match format {
        Format::Human => std::io::stderr().write_all(out.as_bytes()),
        _ => std::io::stdout().write_all(out.as_bytes()),
    };
    if written.is_err() {
        return ExitCode::from(2);
    }
    let failed = checked
        .diagnostics
        .iter()
        .any(|d| d.severity() == Severity::Error || deny_warnings);
    ExitCode::from(if failed { 1 } else { 0 })
}

fn explain(code: Option<String>, list: bool) -> ExitCode {
    if list || code.is_none() {
        for c in Code::ALL {
            println!("{}  {}", c, c.title());
        }
        return ExitCode::SUCCESS;
    }
    let code = code.unwrap_or_default();
    match Code::parse(&code) {
        Some(c) => {
            print!("{}", c.explanation());
            ExitCode::SUCCESS
        }
        None => {
            let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
            let hint = crate::diagnostics::did_you_mean(&code.to_ascii_uppercase(), all)
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            eprintln!(
                "error: `{code}` is not a relance diagnostic code{hint}; `relance explain --list` shows them all"
            );
            ExitCode::from(2)
        }
    }
}
