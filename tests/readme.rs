//! The README's tour of the language must check clean.

use relance::diagnostics::{Problems, SourceFile, SourceMap};

#[test]
fn readme_tour_checks_clean() {
    let readme = include_str!("../README.md");
    let start = readme.find("```camp\n").expect("README has a camp block") + "```camp\n".len();
    let end = start + readme[start..].find("```").expect("camp block is closed");
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new("readme.camp", &readme[start..end]));
    let checked = relance::driver::check_sources(&sources, Problems::new(), 1);
    let shown: Vec<String> = checked.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(shown.is_empty(), "README tour has problems: {shown:#?}");
}
