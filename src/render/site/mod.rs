//! What rendering gives people to look at, apart from compiling and
//! checking templates (the rest of `render`): the preview site of `relance
//! build` and `relance watch` ([`preview`], its file names in [`names`],
//! consent withheld per persona in [`consent`]) and the flow diagrams of
//! scenarios and cadences with the printer of the language's expressions
//! ([`flow`], also used by `diff`, `run`'s trace and `explain`).
//!
//! These modules read the render model and rendered messages; nothing in
//! template compilation or checking depends on them, except the cache
//! keys `render` computes over their inputs.

pub(crate) mod consent;
pub(crate) mod flow;
pub(crate) mod names;
pub(crate) mod preview;
