//! The shipped projects (`campaigns/` and every example) send email HTML
//! that is a whole, valid document: a doctype, and a `<head>` with a
//! `<title>` (the Nu Html Checker's error on every example before), checked
//! on the HTML rendered for every persona by the real `relance build`; and
//! they pass the compliance lint (`relance check` is clean).

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_relance");

fn projects() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![root.join("campaigns")];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    examples.sort();
    assert!(examples.len() >= 4, "examples missing: {examples:?}");
    out.extend(examples);
    out
}

fn rendered_html(project: &Path) -> Vec<(String, String)> {
    let name = project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out =
        std::env::temp_dir().join(format!("relance-compliance-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let r = Command::new(BIN)
        .args([
            "build",
            "--color",
            "never",
            "--now",
            "2026-11-23T09:00:00Z",
            "--out",
        ])
        .arg(&out)
        .arg(project)
        .output()
        .expect("run relance");
    assert!(
        r.status.success(),
        "relance build {} failed:\n{}",
        project.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    let mut found = Vec::new();
    let preview = out.join("preview");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&preview)
        .expect("preview/")
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            let text = std::fs::read_to_string(&f).expect("read json");
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if v["channel"] == "email"
                && let Some(html) = v["html"].as_str()
            {
                found.push((
                    f.strip_prefix(&out).unwrap_or(&f).display().to_string(),
                    html.to_string(),
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    found
}

/// The content of the first `<tag …>…</tag>` in `html` (ASCII case ignored).
fn element<'h>(html: &'h str, tag: &str) -> Option<&'h str> {
    let lower = html.to_ascii_lowercase();
    let open = lower.find(&format!("<{tag}"))?;
    let after = open + lower[open..].find('>')? + 1;
    let close = after + lower[after..].find(&format!("</{tag}>"))?;
    Some(&html[after..close])
}

#[test]
fn shipped_email_html_is_a_document_with_a_title() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for project in projects() {
        for (file, html) in rendered_html(&project) {
            checked += 1;
            let trimmed = html.trim_start().to_ascii_lowercase();
            if !trimmed.starts_with("<!doctype html>") {
                failures.push(format!(
                    "{}: {file}: no `<!doctype html>` first",
                    project.display()
                ));
            }
            match element(&html, "head") {
                None => failures.push(format!("{}: {file}: no <head>", project.display())),
                Some(head) => match element(head, "title") {
                    Some(title) if !title.trim().is_empty() => {}
                    _ => failures.push(format!(
                        "{}: {file}: <head> without a non-empty <title>",
                        project.display()
                    )),
                },
            }
        }
    }
    assert!(checked > 20, "only {checked} email renderings found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn shipped_projects_pass_the_compliance_lint() {
    for project in projects() {
        let r = Command::new(BIN)
            .args(["check", "--color", "never", "--deny-warnings"])
            .arg(&project)
            .output()
            .expect("run relance");
        assert!(
            r.status.success(),
            "relance check {} is not clean:\n{}",
            project.display(),
            String::from_utf8_lossy(&r.stderr)
        );
    }
}
