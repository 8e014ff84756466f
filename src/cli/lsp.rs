//! `relance lsp`: the language server on standard input and output
//! (`crate::lsp`, `docs/editors.md`).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct LspArgs {
    /// Accepted for editors that pass it (VS Code's client does); the
    /// server always speaks over standard input and output.
    #[arg(long)]
    stdio: bool,
}

pub fn lsp(args: LspArgs) -> ExitCode {
    let _ = args.stdio;
    match crate::lsp::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // Standard output is the protocol's: messages go to stderr.
            eprintln!("relance lsp: {message}");
            ExitCode::from(1)
        }
    }
}
