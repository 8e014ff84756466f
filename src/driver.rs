//! The front end as one call: parse every file (in parallel) and check the
//! project. No I/O: the caller loads the files into a [`SourceMap`].

use std::collections::BTreeMap;
use std::thread;

use crate::check;
use crate::diagnostics::{Diagnostic, Problems, SourceMap};
use crate::render::{RenderCache, RenderProject};
use crate::syntax::{self, ast};

mod partial;

/// The result of checking a project: the ASTs and every diagnostic, sorted.
pub struct Checked {
    pub files: Vec<ast::File>,
    pub diagnostics: Vec<Diagnostic>,
    /// The plan, built for the persona checks when the project had no
    /// error before them; `relance build` writes this one.
    pub plan: Option<crate::plan::Plan>,
}

impl Checked {
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity() == crate::diagnostics::Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// Parses and checks all files of `sources`. `extra` holds problems found
/// while loading (unreadable files) so that they are reported in order.
///
/// Persona expectations are evaluated at the current time; use
/// [`check_parsed`] to choose the reference time.
pub fn check_sources(sources: &SourceMap, extra: Problems, threads: usize) -> Checked {
    let (files, mut problems) = parse_all(sources, threads);
    problems.extend(extra);
    check_parsed(
        sources,
        files,
        problems,
        &BTreeMap::new(),
        jiff::Timestamp::now().as_second(),
    )
}

const PARSER_STACK: usize = 256 * 1024 * 1024;

/// Checks files parsed earlier (the CLI parses, then loads the template
/// files the ASTs name, then checks).
///
/// When the static checks find no error, the persona checks that need
/// evaluation run too (`verify`), at reference time `now` (unix seconds).
pub fn check_parsed(
    sources: &SourceMap,
    files: Vec<ast::File>,
    problems: Problems,
    templates: &BTreeMap<String, String>,
    now: i64,
) -> Checked {
    let cache = &mut RenderCache::default();
    let none = None::<fn(&RenderProject, &mut RenderCache)>;
    check_parsed_cached(sources, files, problems, templates, now, cache, none).0
}

/// [`check_parsed`], reusing the template work of earlier builds kept in
/// `cache` (`relance watch`). When the templates check without error,
/// `then` runs on them (`relance watch` renders the previews) on another
/// core while the plan is built and the personas are checked; its result
/// is returned, to be used only if the whole check has no error.
pub fn check_parsed_cached<T: Send>(
    sources: &SourceMap,
    files: Vec<ast::File>,
    mut problems: Problems,
    templates: &BTreeMap<String, String>,
    now: i64,
    cache: &mut RenderCache,
    then: Option<impl FnOnce(&RenderProject, &mut RenderCache) -> T + Send>,
) -> (Checked, Option<T>) {
    check::check_project(sources, &files, &mut problems);
    if problems.has_errors() {
        // Templates and personas that no error touches are still checked,
        // on the part of the project the errors do not reach.
        let rest = partial::check_the_rest(sources, &files, &problems, templates, now);
        problems.extend(rest);
        let checked = Checked {
            files,
            diagnostics: problems.into_sorted(sources),
            plan: None,
        };
        return (checked, None);
    }
    // The names resolve: templates and personas are checked.
    let project =
        RenderProject::new_cached(sources, &files, &template_file_ids(sources), now, cache);
    for p in project.check_cached(cache) {
        problems.extend_one(p.into_diagnostic());
    }
    // The plan and the persona checks need a project whose names resolve,
    // not templates without errors (the plan does not render them).
    let templates_clean = !problems.has_errors();
    let mut plan = None;
    let mut after = None;
    let plan_and_personas = |problems: &mut Problems| {
        let built = crate::plan::build_plan(sources, &files, templates);
        crate::verify::personas(sources, &files, &built, now, problems);
        built
    };
    match then {
        Some(then) if templates_clean => thread::scope(|s| {
            let project = &project;
            let files = &files;
            let job = s.spawn(move || {
                project.init_facts(sources, files, now);
                then(project, cache)
            });
            plan = Some(plan_and_personas(&mut problems));
            after = Some(job.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }),
        _ => {
            // Nothing renders after the checks: the compiled templates and
            // render contexts are freed before the plan is built, so the
            // two never take memory at once.
            drop(project);
            plan = Some(plan_and_personas(&mut problems));
        }
    }
    // `relance build` writes the plan of a project without errors only.
    if problems.has_errors() {
        plan = None;
    }
    let checked = Checked {
        files,
        diagnostics: problems.into_sorted(sources),
        plan,
    };
    (checked, after)
}

/// The template files (`.hbs`) in `sources`, by project-relative path.
pub fn template_file_ids(sources: &SourceMap) -> BTreeMap<String, crate::diagnostics::FileId> {
    sources
        .files()
        .filter(|(_, f)| !f.camp && f.readable)
        .map(|(id, f)| (f.path.clone(), id))
        .collect()
}

/// Parses every file, spreading them over `threads` workers; the output is
/// in file order whatever the scheduling.
pub fn parse_all(sources: &SourceMap, threads: usize) -> (Vec<ast::File>, Problems) {
    let all: Vec<_> = sources.files().map(|(id, _)| id).collect();
    let mut problems = Problems::new();
    let mut files = Vec::with_capacity(all.len());
    for (ast, p) in parse_files(sources, &all, threads) {
        files.push(ast);
        problems.extend(p);
    }
    (files, problems)
}

/// Parses the files `which` of `sources` (`relance watch` parses only the
/// files that changed), on up to `threads` workers; one result per file,
/// in the order given.
pub fn parse_files(
    sources: &SourceMap,
    which: &[crate::diagnostics::FileId],
    threads: usize,
) -> Vec<(ast::File, Problems)> {
    let all: Vec<_> = which
        .iter()
        .filter(|id| (id.0 as usize) < sources.len())
        .map(|&id| (id, sources.get(id)))
        .collect();
    let threads = threads.clamp(1, 64).min(all.len().max(1));
    let parse_one = |(id, file): &(crate::diagnostics::FileId, &crate::diagnostics::SourceFile)| {
        let mut p = Problems::new();
        if !file.camp {
            let ast = ast::File {
                file: *id,
                ..ast::File::default()
            };
            return (ast, p);
        }
        if !file.readable {
            let ast = ast::File {
                file: *id,
                unreadable: true,
                ..ast::File::default()
            };
            return (ast, p);
        }
        let ast = syntax::parse_file(*id, &file.text, &mut p);
        (ast, p)
    };
    let results: Vec<(ast::File, Problems)> = {
        // Interleaved chunks balance files of uneven size.
        let mut out: Vec<Option<(ast::File, Problems)>> = (0..all.len()).map(|_| None).collect();
        thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let all = &all;
                    // pest descends recursively: give parsers a roomy stack
                    // (only the pages actually touched are committed).
                    thread::Builder::new()
                        .stack_size(PARSER_STACK)
                        .spawn_scoped(s, move || {
                            (t..all.len())
                                .step_by(threads)
                                .map(|i| (i, parse_one(&all[i])))
                                .collect::<Vec<_>>()
                        })
                })
                .collect();
            for h in handles {
                let h = match h {
                    Ok(h) => h,
                    // No thread could be started: parse on this one.
                    Err(_) => continue,
                };
                // A panicking worker is a bug; re-raise it rather than lose files.
                for (i, r) in h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                    out[i] = Some(r);
                }
            }
        });
        // Files a thread could not be started for are parsed here.
        out.into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|| parse_one(&all[i])))
            .collect()
    };
    results
}
