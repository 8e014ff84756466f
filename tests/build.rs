//! `relance build`: the plan is complete, valid against its JSON Schema,
//! byte-identical across builds, and refused for a project with errors.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_relance")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relance-build-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn build(project: &Path, out: &Path) -> std::process::Output {
    Command::new(bin())
        .args([
            "build",
            "--color",
            "never",
            "--now",
            "2026-11-23T09:00:00Z",
            "--out",
        ])
        .arg(out)
        .arg(project)
        .output()
        .expect("run relance")
}

fn campaigns() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns")
}

#[test]
fn two_builds_are_byte_identical() {
    let (a, b) = (temp_dir("a"), temp_dir("b"));
    let ra = build(&campaigns(), &a);
    let rb = build(&campaigns(), &b);
    assert!(
        ra.status.success(),
        "{}",
        String::from_utf8_lossy(&ra.stderr)
    );
    assert!(rb.status.success());
    let pa = std::fs::read(a.join("plan.json")).expect("plan a");
    let pb = std::fs::read(b.join("plan.json")).expect("plan b");
    assert!(!pa.is_empty());
    assert_eq!(pa, pb, "plan.json differs between two builds");
    let text = String::from_utf8(pa).expect("utf-8");
    assert!(
        !text.contains(env!("CARGO_MANIFEST_DIR")),
        "absolute path in plan.json"
    );
}

#[test]
fn the_schema_file_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/plan.schema.json");
    let generated = relance::plan::Plan::json_schema();
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/plan.schema.json is out of date with src/plan: run `BLESS=1 cargo test --test build` and document the change in docs/plan.md"
    );
}

#[test]
fn every_plan_validates_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&relance::plan::Plan::json_schema()).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let mut projects = vec![campaigns()];
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    if let Ok(entries) = std::fs::read_dir(&examples) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                projects.push(e.path());
            }
        }
    }
    for (i, project) in projects.iter().enumerate() {
        let out = temp_dir(&format!("schema{i}"));
        let r = build(project, &out);
        assert!(
            r.status.success(),
            "{}: {}",
            project.display(),
            String::from_utf8_lossy(&r.stderr)
        );
        let plan: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("plan.json")).expect("plan"))
                .expect("plan is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&plan)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{}: plan.json does not match the schema:\n{}",
            project.display(),
            errors.join("\n")
        );
    }
}

#[test]
fn every_step_link_points_at_a_step() {
    let out = temp_dir("links");
    assert!(build(&campaigns(), &out).status.success());
    let plan: relance::plan::Plan =
        serde_json::from_slice(&std::fs::read(out.join("plan.json")).expect("plan"))
            .expect("plan parses back");
    assert_eq!(plan.plan_version, relance::plan::PLAN_VERSION);
    assert!(!plan.scenarios.is_empty());
    for (name, s) in &plan.scenarios {
        let mut targets: Vec<&Option<String>> = vec![&s.entry];
        for step in s.steps.values() {
            use relance::plan::Step::*;
            match step {
                Send { next, .. }
                | Wait { next, .. }
                | WaitUntil { next, .. }
                | WaitUntilTime { next, .. }
                | Join { next, .. }
                | Leave { next, .. }
                | Tag { next, .. }
                | Untag { next, .. }
                | Start { next, .. } => targets.push(next),
                Branch { arms, otherwise } => {
                    targets.extend(arms.iter().map(|a| &a.next));
                    targets.push(otherwise);
                }
                Split { arms } => targets.extend(arms.iter().map(|a| &a.next)),
                Exit => {}
            }
        }
        for t in targets.into_iter().flatten() {
            assert!(
                s.steps.contains_key(t),
                "scenario {name}: `{t}` is not a step"
            );
            assert!(
                t.starts_with(&format!("{name}/")),
                "scenario {name}: foreign step id {t}"
            );
        }
    }
}

#[test]
fn a_project_with_errors_is_not_built() {
    let project = temp_dir("errors");
    std::fs::write(
        project.join("a.camp"),
        "contact { email: email }\nsegment s = contry == \"FR\"\n",
    )
    .expect("write");
    let out = project.join("out");
    let r = build(&project, &out);
    assert_eq!(r.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("E0201"), "{stderr}");
    assert!(
        !out.join("plan.json").exists(),
        "a plan was written despite errors"
    );
}

#[test]
fn a_bad_now_is_a_usage_error() {
    let out = temp_dir("now");
    let r = Command::new(bin())
        .args(["build", "--now", "yesterday", "--out"])
        .arg(&out)
        .arg(campaigns())
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--now"));
}

#[test]
fn template_files_must_stay_inside_the_project() {
    let project = temp_dir("symlink");
    let outside = temp_dir("outside");
    std::fs::write(outside.join("secret.hbs"), "secret").expect("write");
    std::fs::create_dir_all(project.join("templates")).expect("mkdir");
    #[cfg(unix)]
    std::os::unix::fs::symlink(
        outside.join("secret.hbs"),
        project.join("templates/linked.hbs"),
    )
    .expect("symlink");
    std::fs::write(
        project.join("a.camp"),
        "contact { email: email }\ntemplate t : task { body = file(\"templates/linked.hbs\") }\n",
    )
    .expect("write");
    let r = Command::new(bin())
        .args(["check", "--format", "json"])
        .arg(&project)
        .output()
        .expect("run");
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(r.status.code(), Some(1), "{out}");
    assert!(out.contains("E0507"), "{out}");
}

/// Every file under `dir`, relative path → bytes.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn previews_cover_every_template_and_persona_and_are_deterministic() {
    let (a, b) = (temp_dir("pa"), temp_dir("pb"));
    assert!(build(&campaigns(), &a).status.success());
    assert!(build(&campaigns(), &b).status.success());
    let (ta, tb) = (tree(&a), tree(&b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (k, v) in &ta {
        assert!(tb[k] == *v, "{k} differs between two builds");
    }
    let plan: relance::plan::Plan = serde_json::from_slice(&ta["plan.json"]).expect("plan");
    assert!(ta.contains_key("preview/index.html"));
    let index = String::from_utf8_lossy(&ta["preview/index.html"]).into_owned();
    let personas: Vec<String> = ta
        .keys()
        .filter_map(|k| {
            k.strip_prefix("preview/offer/")
                .and_then(|f| f.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect();
    assert!(personas.len() >= 3, "{personas:?}");
    for (t, tpl) in &plan.templates {
        for p in &personas {
            // A persona without SMS consent gets no preview of a marketing
            // SMS (§12); the index says so in a `no-consent` row.
            if tpl.kind == "marketing"
                && plan.consent.contains_key(&tpl.channel)
                && index.contains(&format!(
                    "data-template=\"{t}\" data-channel=\"{}\" data-kind=\"marketing\" data-personas=\"",
                    tpl.channel
                ))
                && index
                    .split(&format!("data-template=\"{t}\""))
                    .any(|row| {
                        row.split('>').next().is_some_and(|attrs| {
                            attrs.contains("data-no-consent=\"")
                                && attrs
                                    .split("data-no-consent=\"")
                                    .nth(1)
                                    .and_then(|v| v.split('"').next())
                                    .is_some_and(|v| v.split(' ').any(|n| n == p))
                        })
                    })
            {
                assert!(!ta.contains_key(&format!("preview/{t}/{p}.json")), "{t}/{p}");
                continue;
            }
            assert!(
                ta.contains_key(&format!("preview/{t}/{p}.json")),
                "no preview of {t} for {p}"
            );
            assert!(
                ta.contains_key(&format!("preview/{t}/{p}.html")),
                "no html preview of {t} for {p}"
            );
        }
        assert!(index.contains(&format!("{t}/")), "index does not link {t}");
    }
}

#[test]
fn a_rebuild_removes_stale_previews_and_keeps_the_users_files() {
    let project = temp_dir("stale-project");
    clean_project(&project);
    std::fs::write(
        project.join("b.camp"),
        "template old_note : task { body = \"Old {{email}}\" }\n",
    )
    .expect("write");
    let out = temp_dir("stale").join("out");
    let r = build(&project, &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(out.join("preview/old_note/marie.html").exists());
    assert!(out.join(".relance-build.json").exists());
    // The user's own files, beside and inside the previews.
    std::fs::write(out.join("notes.md"), "mine").expect("write");
    std::fs::write(out.join("preview/review.txt"), "mine").expect("write");
    std::fs::write(out.join("preview/old_note/comments.txt"), "mine").expect("write");
    std::fs::remove_file(project.join("b.camp")).expect("rm");
    let r = build(&project, &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(
        !out.join("preview/old_note/marie.html").exists(),
        "stale preview kept"
    );
    assert!(out.join("preview/note/marie.html").exists());
    for mine in [
        "notes.md",
        "preview/review.txt",
        "preview/old_note/comments.txt",
    ] {
        assert_eq!(
            std::fs::read_to_string(out.join(mine)).ok().as_deref(),
            Some("mine"),
            "{mine} was not kept"
        );
    }
    let manifest = std::fs::read_to_string(out.join(".relance-build.json")).expect("manifest");
    assert!(!manifest.contains("old_note"), "{manifest}");
    assert!(manifest.contains("preview/note/marie.html"), "{manifest}");
}

#[test]
fn a_folder_that_is_not_a_build_folder_is_refused() {
    let project = temp_dir("foreign-project");
    clean_project(&project);
    let out = temp_dir("foreign");
    std::fs::create_dir_all(out.join("preview/old_template")).expect("mkdir");
    std::fs::write(out.join("preview/old_template/x.html"), "mine").expect("write");
    let r = build(&project, &out);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains(&out.display().to_string()), "{err}");
    assert!(
        err.contains("not a build folder") && err.contains("--out"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("preview/old_template/x.html"))
            .ok()
            .as_deref(),
        Some("mine")
    );
    assert!(!out.join("plan.json").exists());
}

/// A hand-edited manifest cannot make a build delete outside its folder.
#[test]
fn a_manifest_cannot_reach_outside_the_folder() {
    let project = temp_dir("reach-project");
    clean_project(&project);
    let base = temp_dir("reach");
    let out = base.join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(base.join("precious.txt"), "mine").expect("write");
    std::fs::write(
        out.join(".relance-build.json"),
        format!(
            "{{\"written_by\": \"relance build\", \"files\": [\"../precious.txt\", {:?}]}}",
            base.join("precious.txt").display().to_string()
        ),
    )
    .expect("write");
    let r = build(&project, &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(base.join("precious.txt").exists());
}

#[test]
fn render_prints_one_message() {
    let r = Command::new(bin())
        .args([
            "render",
            "offer",
            "--persona",
            "marie",
            "--now",
            "2026-11-23T09:00:00Z",
        ])
        .arg(campaigns())
        .output()
        .expect("run");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("Subject:") && out.contains("Marie"), "{out}");
    let r = Command::new(bin())
        .args([
            "render",
            "offer",
            "--persona",
            "marie",
            "--format",
            "json",
            "--now",
            "2026-11-23T09:00:00Z",
        ])
        .arg(campaigns())
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("json");
    assert_eq!(v["channel"], "email");
    let r = Command::new(bin())
        .args(["render", "ofer", "--persona", "marie"])
        .arg(campaigns())
        .output()
        .expect("run");
    assert_eq!(r.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("offer"),
        "suggests the close name"
    );
}

// ---- Files that are not files ----------------------------------------

/// Runs relance with `args`; a run that does not end within a minute is
/// killed and fails the test (a regression must not hang the suite).
fn run_bounded(args: &[&std::ffi::OsStr]) -> std::process::Output {
    use std::process::Stdio;
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run relance");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "relance {args:?} still running after a minute (killed); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A copy of the small clean project below, into `dir`.
fn clean_project(dir: &Path) {
    std::fs::write(
        dir.join("a.camp"),
        "workspace {\n  name = \"Shop\"\n  from = \"Shop <hi@shop.example>\"\n  address = \"1 rue de la Paix, Lyon\"\n}\n\
         contact {\n  email: email\n}\n\
         persona marie { email = \"marie@example.com\" }\n\
         template note : task { body = file(\"templates/note.hbs\") }\n",
    )
    .expect("write");
    std::fs::create_dir_all(dir.join("templates/partials")).expect("mkdir");
    std::fs::write(dir.join("templates/note.hbs"), "Call {{email}}\n").expect("write");
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn check_json(project: &Path) -> (Option<i32>, String) {
    let r = run_bounded(&[
        "check".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        project.as_os_str(),
    ]);
    (
        r.status.code(),
        String::from_utf8_lossy(&r.stdout).into_owned(),
    )
}

#[cfg(unix)]
#[test]
fn a_fifo_among_the_campaign_files_is_reported_not_waited_for() {
    let project = temp_dir("fifo");
    clean_project(&project);
    mkfifo(&project.join("feed.camp"));
    let (code, out) = check_json(&project);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("E0910") && out.contains("feed.camp"), "{out}");
    assert!(out.contains("named pipe"), "{out}");
}

#[cfg(unix)]
#[test]
fn a_fifo_as_a_template_or_a_partial_is_reported() {
    let project = temp_dir("fifo-template");
    clean_project(&project);
    std::fs::remove_file(project.join("templates/note.hbs")).expect("rm");
    mkfifo(&project.join("templates/note.hbs"));
    mkfifo(&project.join("templates/partials/footer.hbs"));
    let (code, out) = check_json(&project);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("template file `templates/note.hbs`"), "{out}");
    assert!(
        out.contains("partial file `templates/partials/footer.hbs`"),
        "{out}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_link_to_dev_zero_is_refused_without_reading_it() {
    let project = temp_dir("zero");
    clean_project(&project);
    std::os::unix::fs::symlink("/dev/zero", project.join("zero.camp")).expect("symlink");
    let (code, out) = check_json(&project);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("zero.camp") && out.contains("character device"),
        "{out}"
    );
}

#[test]
fn a_huge_sparse_file_is_refused_before_reading() {
    let project = temp_dir("sparse");
    clean_project(&project);
    // 5 GB that take no disk space: reading them would take the memory.
    let f = std::fs::File::create(project.join("huge.camp")).expect("create");
    f.set_len(5 << 30).expect("set_len");
    let f = std::fs::File::create(project.join("templates/huge.hbs")).expect("create");
    f.set_len(5 << 30).expect("set_len");
    std::fs::write(
        project.join("b.camp"),
        "template big : task { body = file(\"templates/huge.hbs\") }\n",
    )
    .expect("write");
    let (code, out) = check_json(&project);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("E0003"), "{out}");
    assert!(out.contains("`huge.camp` is 5368709120 bytes"), "{out}");
    assert!(
        out.contains("`templates/huge.hbs` is 5368709120 bytes"),
        "{out}"
    );
}

/// `relance watch` builds with the loader: after a FIFO appears (reported)
/// and disappears, the next build succeeds.
#[cfg(unix)]
#[test]
fn watch_builds_again_after_a_fifo_comes_and_goes() {
    let project = temp_dir("watch-fifo");
    clean_project(&project);
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = project.clone();
    std::thread::spawn(move || {
        let mut builder = relance::watch::Builder::new(&dir, 1_800_000_000);
        let before = builder.build().errors();
        mkfifo(&dir.join("feed.camp"));
        let during = builder.build();
        let reported = during
            .diagnostics
            .iter()
            .any(|d| d.code == relance::diagnostics::Code::E0910);
        std::fs::remove_file(dir.join("feed.camp")).expect("rm");
        let after = builder.build();
        let _ = tx.send((before, reported, after.errors(), after.site.is_some()));
    });
    let (before, reported, after, site) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the builds did not end within a minute");
    assert_eq!(before, 0);
    assert!(reported, "the FIFO was not reported");
    assert_eq!(after, 0);
    assert!(site, "no preview site after the FIFO went away");
}

#[cfg(unix)]
#[test]
fn run_reads_contacts_from_a_pipe_and_refuses_a_device() {
    let project = temp_dir("run-pipe");
    clean_project(&project);
    let out = project.join("out");
    let r = build(&project, &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let fifo = project.join("contacts.jsonl");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::fs::write(&fifo, "{\"id\":\"c1\",\"email\":\"a@example.com\"}\n")
                .expect("write fifo")
        })
    };
    let plan = out.join("plan.json");
    let args = |contacts: &Path| -> Vec<std::ffi::OsString> {
        vec![
            "run".into(),
            "--plan".into(),
            plan.clone().into(),
            "--contacts".into(),
            contacts.into(),
            "--from".into(),
            "2026-11-01T00:00:00Z".into(),
            "--until".into(),
            "2026-11-02T00:00:00Z".into(),
            "--out".into(),
            project.join("outbox.jsonl").into(),
        ]
    };
    let a = args(&fifo);
    let r = run_bounded(&a.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    writer.join().expect("writer");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    #[cfg(target_os = "linux")]
    {
        let a = args(Path::new("/dev/zero"));
        let r = run_bounded(&a.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{err}");
        assert!(err.contains("character device"), "{err}");
    }
}

// ---- Report everything at once -----------------------------------------

/// A typo in one segment does not hide an unknown variable in an unrelated
/// template: `check` reports both (and `build` refuses the project).
#[test]
fn an_error_in_a_segment_does_not_hide_an_unrelated_template_error() {
    let project = temp_dir("everything");
    clean_project(&project);
    std::fs::write(
        project.join("b.camp"),
        "segment french = contry == \"FR\"\n\
         template offer : task { body = \"Hello {{frist_name}}\" }\n\
         persona paul {\n  email = \"paul@example.com\"\n  expect french\n}\n",
    )
    .expect("write");
    let (code, out) = check_json(&project);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("E0201") && out.contains("contry"), "{out}");
    assert!(out.contains("E0510") && out.contains("frist_name"), "{out}");
    assert!(
        out.contains("persona checks for `paul` skipped: segment `french` has errors"),
        "{out}"
    );
    let r = build(&project, &project.join("out"));
    assert_eq!(r.status.code(), Some(1));
}

/// A dangling symbolic link among the files is reported with the rest of
/// the project's problems (it used to stop the command).
#[cfg(unix)]
#[test]
fn a_dangling_link_is_one_problem_among_others() {
    let project = temp_dir("dangling");
    clean_project(&project);
    std::os::unix::fs::symlink("nowhere.camp", project.join("b.camp")).expect("symlink");
    std::fs::write(
        project.join("c.camp"),
        "template probe : task { body = \"{{nope}}\" }\n",
    )
    .expect("write");
    let (code, out) = check_json(&project);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("E0910") && out.contains("b.camp"), "{out}");
    assert!(out.contains("leads nowhere"), "{out}");
    assert!(out.contains("E0510") && out.contains("nope"), "{out}");
}
