//! Differential test: relance's templates rendered by relance and by
//! handlebars.js (npm `handlebars`, pinned in `tests/handlebars-js/`) give
//! the same text, for every template × persona of `campaigns/`, of each
//! project under `examples/` and of the corpus `tests/handlebars-js/corpus/`
//! (small templates covering the Handlebars features users copy from the
//! handlebars.js documentation).
//!
//! Both sides get the same render context, built by relance
//! (`RenderProject::handlebars_inputs`); relance's own helpers are written
//! on the JavaScript side from `docs/language.md` (`render.js`). The
//! divergences listed in `docs/language.md` are kept out of the inputs.
//!
//! Needs `node` and `npm ci --prefix tests/handlebars-js` (`.ci/run` does
//! both). Without them the test fails when `CI` is set, and is skipped with
//! a loud warning otherwise.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use relance::diagnostics::{Problems, SourceFile, SourceMap};
use relance::driver::check_sources;
use relance::render::{Mode, RenderProject};

/// The reference time of every rendering: 2026-03-02T10:00:00Z.
const NOW: i64 = 1_772_445_600;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn harness() -> PathBuf {
    manifest().join("tests/handlebars-js")
}

/// Whether node and handlebars.js are there; panics on CI when not.
fn ready() -> bool {
    let node = Command::new("node").arg("--version").output();
    let problem = match node {
        Ok(o) if o.status.success() => {
            if harness()
                .join("node_modules/handlebars/package.json")
                .is_file()
            {
                return true;
            }
            "handlebars.js is not installed: run `npm ci --prefix tests/handlebars-js` (.ci/run does it)"
        }
        _ => "node is missing: install it (`apt-get install -y nodejs npm`, .ci/run does it)",
    };
    if std::env::var_os("CI").is_some() {
        panic!("{problem}");
    }
    eprintln!("\n!!!!! SKIPPED the handlebars.js differential test: {problem} !!!!!\n");
    false
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "build" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out);
        } else if name.ends_with(".camp") || name.ends_with(".hbs") {
            let rel = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            out.push((rel, fs::read_to_string(&path).unwrap_or_default()));
        }
    }
}

/// The project in `dir`, ready to render.
fn load(dir: &Path) -> RenderProject {
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found.sort();
    let mut sources = SourceMap::new();
    for (path, text) in found.iter().filter(|(p, _)| p.ends_with(".camp")) {
        sources.add(SourceFile::new(path.as_str(), text.as_str()));
    }
    let checked = check_sources(&sources, Problems::new(), 1);
    let mut templates = BTreeMap::new();
    for (path, text) in found.iter().filter(|(p, _)| !p.ends_with(".camp")) {
        let id = sources.add(SourceFile::new(path.as_str(), text.as_str()));
        templates.insert(path.clone(), id);
    }
    RenderProject::new(&sources, &checked.files, &templates, NOW)
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Html => "html",
        Mode::Plain => "plain",
        Mode::Json => "json",
    }
}

/// One body to render on both sides.
struct Case {
    label: String,
    relance: Result<String, String>,
}

/// Compares relance with handlebars.js on every template × persona of the
/// projects in `dirs`; returns the number of bodies compared.
fn compare(dirs: &[PathBuf]) -> usize {
    let mut jobs = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    for dir in dirs {
        let project = load(dir);
        let templates: Vec<String> = project.templates().map(str::to_string).collect();
        let personas: Vec<String> = project.personas().map(str::to_string).collect();
        assert!(
            !templates.is_empty() && !personas.is_empty(),
            "{}: no template or no persona",
            dir.display()
        );
        for t in &templates {
            for p in &personas {
                let inputs = project
                    .handlebars_inputs(t, p)
                    .unwrap_or_else(|| panic!("{}: template `{t}` has errors", dir.display()));
                let partials: serde_json::Map<String, serde_json::Value> = inputs
                    .partials
                    .iter()
                    .map(|(n, s)| (n.clone(), serde_json::Value::String(s.clone())))
                    .collect();
                // URL templates, as the bodies see them rendered.
                let context: serde_json::Value =
                    serde_json::from_str(&inputs.context).expect("context JSON");
                let webhook_url = project.render_one(t, p).ok().and_then(|m| m.url);
                for (attr, source) in &inputs.urls {
                    let relance = match attr.strip_prefix("link:") {
                        Some(name) => context["links"][name]
                            .as_str()
                            .map(str::to_string)
                            .ok_or_else(|| "no link".to_string()),
                        None => webhook_url.clone().ok_or_else(|| "no url".to_string()),
                    };
                    let id = cases.len();
                    jobs.push(format!(
                        "{{\"id\":{id},\"mode\":\"url\",\"source\":{},\"partials\":{},\"context\":{},\"timezone_field\":{},\"timezone\":{}}}",
                        serde_json::Value::String(source.clone()),
                        serde_json::Value::Object(partials.clone()),
                        inputs.url_context,
                        serde_json::to_string(&inputs.timezone_field).unwrap_or_default(),
                        serde_json::Value::String(inputs.timezone.clone()),
                    ));
                    cases.push(Case {
                        label: format!("{} — template `{t}`, {attr}, persona `{p}`", dir.display()),
                        relance,
                    });
                }
                for (attr, mode, source) in &inputs.bodies {
                    let relance = project
                        .prepare(t, p, attr)
                        .map(|prepared| prepared.render())
                        .unwrap_or_else(|| Err("not prepared".into()));
                    let id = cases.len();
                    // The context goes in as relance wrote it (key order).
                    jobs.push(format!(
                        "{{\"id\":{id},\"mode\":\"{}\",\"source\":{},\"partials\":{},\"context\":{},\"timezone_field\":{},\"timezone\":{}}}",
                        mode_name(*mode),
                        serde_json::Value::String(source.clone()),
                        serde_json::Value::Object(partials.clone()),
                        inputs.context,
                        serde_json::to_string(&inputs.timezone_field).unwrap_or_default(),
                        serde_json::Value::String(inputs.timezone.clone()),
                    ));
                    cases.push(Case {
                        label: format!("{} — template `{t}`, {attr}, persona `{p}`", dir.display()),
                        relance,
                    });
                }
            }
        }
    }
    // One folder per call: the tests run in parallel.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("relance-hbs-js-{}-{call}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join("jobs.json");
    fs::write(&input, format!("{{\"jobs\":[{}]}}", jobs.join(","))).expect("write jobs");
    let out = Command::new("node")
        .arg(harness().join("render.js"))
        .arg(&input)
        .output()
        .expect("run node");
    let _ = fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "render.js failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).expect("render.js output");
    let mut differences = Vec::new();
    let mut both_failed = 0;
    for (id, case) in cases.iter().enumerate() {
        let js = &results[id.to_string()];
        let js: Result<String, String> = match js.get("ok").and_then(|v| v.as_str()) {
            Some(s) => Ok(s.to_string()),
            None => Err(js
                .get("error")
                .and_then(|v| v.as_str())
                .unwrap_or("no result")
                .to_string()),
        };
        match (&case.relance, &js) {
            (Ok(a), Ok(b)) if a == b => {}
            // Both refuse (a helper given a value it cannot use).
            (Err(_), Err(_)) => both_failed += 1,
            _ => differences.push(format!(
                "{}\n  relance:       {:?}\n  handlebars.js: {:?}",
                case.label, case.relance, js
            )),
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} renderings differ from handlebars.js:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
    // A comparison of errors only would prove nothing.
    assert!(
        both_failed * 20 <= cases.len(),
        "{both_failed} of {} renderings fail on both sides",
        cases.len()
    );
    cases.len()
}

#[test]
fn campaigns_and_examples_render_as_in_handlebars_js() {
    if !ready() {
        return;
    }
    let mut dirs = vec![manifest().join("campaigns")];
    let mut examples: Vec<PathBuf> = fs::read_dir(manifest().join("examples"))
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    assert!(examples.len() >= 4, "{examples:?}");
    dirs.extend(examples);
    let n = compare(&dirs);
    assert!(n >= 100, "only {n} renderings compared");
}

#[test]
fn corpus_renders_as_in_handlebars_js() {
    if !ready() {
        return;
    }
    let corpus = harness().join("corpus");
    let text = fs::read_to_string(corpus.join("corpus.camp")).expect("corpus.camp");
    let templates = text.matches("\ntemplate ").count();
    assert!(templates >= 50, "the corpus has {templates} templates");
    compare(&[corpus]);
}
