//! `relance watch` rebuilds incrementally; this checks that after every
//! edit of a series (template files, partials, personas, the workspace,
//! scenarios, new, removed and moved files, errors and their fixes) the
//! incremental build equals a clean build of the same files byte for byte:
//! the same preview files and the same diagnostics.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use relance::diagnostics::render;
use relance::driver;
use relance::render::RenderProject;
use relance::watch::Builder;

const NOW: i64 = 1_795_420_800; // 2026-11-23T08:00:00Z

struct TempDir(PathBuf);

impl TempDir {
    fn copy_of(src: &Path, tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("relance-incr-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        copy_dir(src, &dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "build" {
                copy_dir(&src, &dst);
            }
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// What a build shows: its diagnostics as JSON, and its preview files.
#[derive(PartialEq)]
struct Shown {
    diagnostics: String,
    files: Option<BTreeMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} / {:?} files",
            self.diagnostics,
            self.files.as_ref().map(|f| f.len())
        )
    }
}

/// A build from scratch, as `relance build` makes it.
fn clean(dir: &Path) -> Shown {
    let a = relance::cli::analyse(dir, NOW).expect("load");
    let sources = &a.loaded.sources;
    let mut diagnostics = a.checked.diagnostics.clone();
    let mut files = None;
    if a.checked.errors() == 0 {
        let project = RenderProject::new(
            sources,
            &a.checked.files,
            &driver::template_file_ids(sources),
            NOW,
        );
        project.init_facts(sources, &a.checked.files, NOW);
        let (mut previews, problems) = project.previews();
        // As `relance build` does.
        if let Some(plan) = &a.checked.plan {
            previews.extend(relance::render::flow_pages(plan));
        }
        let mut failures = relance::diagnostics::Problems::new();
        for p in problems {
            failures.extend_one(p.into_diagnostic());
        }
        if failures.has_errors() {
            for d in diagnostics {
                failures.push(d);
            }
            diagnostics = failures.into_sorted(sources);
        } else {
            files = Some(previews);
        }
    }
    Shown {
        diagnostics: render::json(&diagnostics, sources),
        files,
    }
}

fn incremental(builder: &mut Builder) -> (Shown, relance::watch::Outcome) {
    let mut o = builder.build();
    assert!(o.load_error.is_none(), "{:?}", o.load_error);
    let files = o.site.take().map(|site| {
        site.iter()
            .map(|(k, v)| (k, v.as_ref().clone()))
            .collect::<BTreeMap<_, _>>()
    });
    let shown = Shown {
        diagnostics: render::json(&o.diagnostics, &o.sources),
        files,
    };
    (shown, o)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "`{from}` not in {}", path.display());
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn first_difference(a: &Shown, b: &Shown) -> String {
    if a.diagnostics != b.diagnostics {
        return format!(
            "diagnostics differ:\n{}\nvs clean:\n{}",
            a.diagnostics, b.diagnostics
        );
    }
    match (&a.files, &b.files) {
        (Some(x), Some(y)) => {
            for k in x.keys().chain(y.keys()) {
                if x.get(k) != y.get(k) {
                    return format!("file `{k}` differs");
                }
            }
            "no difference".into()
        }
        _ => format!(
            "one has files, the other not: {:?} {:?}",
            a.files.is_some(),
            b.files.is_some()
        ),
    }
}

#[test]
fn incremental_builds_equal_clean_builds_after_every_edit() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let t = TempDir::copy_of(&src, "series");
    let dir = &t.0;
    let mut builder = Builder::new(dir, NOW);

    let check = |builder: &mut Builder, step: &str| {
        let (inc, outcome) = incremental(builder);
        let full = clean(dir);
        assert!(
            inc == full,
            "after `{step}`: {}",
            first_difference(&inc, &full)
        );
        outcome
    };

    let first = check(&mut builder, "first build");
    assert_eq!(first.errors(), 0, "the sample project builds clean");
    assert!(first.cache.rendered > 10);

    // Nothing changed: nothing is parsed or rendered again.
    let o = check(&mut builder, "no change");
    assert_eq!((o.parsed, o.cache.rendered, o.cache.compiled), (0, 0, 0));

    // A template file: only the templates using it are rendered again.
    edit(
        &dir.join("templates/welcome.html.hbs"),
        "</p>",
        " Édité.</p>",
    );
    let o = check(&mut builder, "edit welcome.html.hbs");
    assert_eq!(o.parsed, 0);
    assert_eq!(o.cache.rendered, 1, "{:?}", o.cache);

    // A partial: the templates that include it.
    let partial = fs::read_dir(dir.join("templates/partials"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap() == "footer.hbs")
        .unwrap();
    let text = fs::read_to_string(&partial).unwrap();
    fs::write(&partial, format!("{text}<!-- partial edited -->\n")).unwrap();
    check(&mut builder, "edit a partial");

    // A persona, the workspace, a scenario.
    edit(&dir.join("personas.camp"), "\"Marie\"", "\"Marie-Anne\"");
    check(&mut builder, "edit a persona");
    edit(
        &dir.join("workspace.camp"),
        "name     = \"Autoparts Lyon\"",
        "name     = \"Autoparts Lyon & Co\"",
    );
    check(&mut builder, "edit the workspace");
    let scenarios = fs::read_to_string(dir.join("scenarios.camp")).unwrap();
    fs::write(
        dir.join("scenarios.camp"),
        format!("{scenarios}\n// a comment shifts nothing but offsets\n"),
    )
    .unwrap();
    check(&mut builder, "edit scenarios");

    // An inline subject, after which every offset of the file moves.
    edit(
        &dir.join("templates.camp"),
        "Bienvenue",
        "Bienvenue, bienvenue",
    );
    let o = check(&mut builder, "edit an inline subject");
    assert_eq!(o.parsed, 1);

    // A new file that sorts first: every file id moves by one.
    fs::write(
        dir.join("aaa_new.camp"),
        "template fresh : sms { body = \"{{default first_name \\\"Hi\\\"}}, new! STOP 36180\", kind = transactional }\n",
    )
    .unwrap();
    let o = check(&mut builder, "add aaa_new.camp");
    assert!(o.inputs.contains("aaa_new.camp"));

    // An error, then its fix: the last good previews are kept meanwhile.
    edit(&dir.join("aaa_new.camp"), "first_name", "frist_name");
    let o = check(&mut builder, "introduce an unknown variable");
    assert!(o.errors() > 0 && o.site.is_none());
    edit(&dir.join("aaa_new.camp"), "frist_name", "first_name");
    check(&mut builder, "fix it");

    // A syntax error in a .camp file, then its fix.
    edit(
        &dir.join("templates.camp"),
        "template offer :",
        "template offer ::",
    );
    let o = check(&mut builder, "syntax error");
    assert!(o.errors() > 0);
    edit(
        &dir.join("templates.camp"),
        "template offer ::",
        "template offer :",
    );
    check(&mut builder, "fix the syntax error");

    // A removed file, a template file removed then restored.
    fs::remove_file(dir.join("aaa_new.camp")).unwrap();
    check(&mut builder, "remove aaa_new.camp");
    let body = dir.join("templates/advice.html.hbs");
    let saved = fs::read(&body).unwrap();
    fs::remove_file(&body).unwrap();
    let o = check(&mut builder, "remove a template file");
    assert!(o.errors() > 0);
    fs::write(&body, saved).unwrap();
    check(&mut builder, "restore it");

    // A folder renamed: the templates it holds go missing, then come back.
    fs::rename(dir.join("templates"), dir.join("templates_moved")).unwrap();
    let o = check(&mut builder, "rename templates/");
    assert!(o.errors() > 0);
    fs::rename(dir.join("templates_moved"), dir.join("templates")).unwrap();
    let o = check(&mut builder, "rename it back");
    assert_eq!(o.errors(), 0);
}
