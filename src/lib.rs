#![doc = include_str!("../ARCHITECTURE.md")]
#![deny(unsafe_code)]

pub mod check;
pub mod cli;
pub mod deliver;
pub mod diagnostics;
pub mod diff;
pub mod driver;
pub mod eval;
pub mod fmt;
pub mod lsp;
pub mod mailbox;
pub mod plan;
pub mod render;
pub mod run;
pub mod serve;
pub mod sql;
pub mod syntax;
pub mod tzdb;
pub mod verify;
pub mod watch;
