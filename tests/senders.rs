//! Webhook header secrets (`env("NAME")`, LANGUAGE.md §12) never reach the
//! plan, the previews, the outbox, the trace or the summary, even when the
//! variable is set while building and running.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::project::{Built, ran};
use common::{BIN, TempDir};

const SECRET: &str = "s3cr3t-token-4f9a";

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn header_secrets_stay_out_of_plan_previews_and_outbox() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run/senders_outbox");
    let env = fs::read_to_string(case.join("env")).unwrap();
    let (name, value) = env.trim().split_once('=').unwrap();
    assert_eq!(value, SECRET);
    let built = Built::new(&case, Some("2026-03-01T00:00:00Z"), &[(name, SECRET)]);
    let tmp = built.out.path();
    let run = ran(built
        .run()
        .args(["--contacts", "contacts.jsonl", "--events", "events.jsonl"])
        .args([
            "--from",
            "2026-03-01T00:00:00Z",
            "--until",
            "2026-03-10T00:00:00Z",
        ])
        .args(["--trace", "a", "--summary"])
        .arg(tmp.join("summary.json"))
        .arg("--out")
        .arg(tmp.join("outbox.jsonl"))
        .env(name, SECRET));
    assert!(run.success(), "{}", run.stderr);
    let outbox = fs::read_to_string(tmp.join("outbox.jsonl")).unwrap();
    // The secret was set: the webhooks went out, with the header redacted.
    assert_eq!(
        outbox.matches("\"template\":\"crm\"").count(),
        2,
        "{outbox}"
    );
    assert!(outbox.contains(&format!("Bearer [env:{name}]")), "{outbox}");
    let plan = fs::read_to_string(tmp.join("plan.json")).unwrap();
    assert!(
        plan.contains(&format!("{{\"env\":\"{name}\"}}"))
            || plan.contains(&format!("\"env\": \"{name}\"")),
        "the plan names the variable"
    );
    let mut all = Vec::new();
    files(tmp, &mut all);
    assert!(
        all.iter().any(|p| p.to_string_lossy().contains("preview")),
        "no previews built"
    );
    for p in &all {
        let bytes = fs::read(p).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SECRET),
            "{} holds the secret",
            p.display()
        );
    }
    for out in [
        &built.build.stdout,
        &built.build.stderr,
        &run.stdout,
        &run.stderr,
    ] {
        assert!(!out.contains(SECRET));
    }
}

/// A project of one file in a fresh folder.
fn project(camp: &str) -> TempDir {
    let dir = TempDir::new("senders");
    dir.write("main.camp", camp);
    dir
}

const URLS: &str = r#"
contact { email: email, website: text? }
persona ana { email = "a+b@example.com", website = "http://ana.example" }
template call : task {
  body      = "Book: {{links.book}}"
  link book = "https://acme.example/book?email={{email}}"
}
template crm : webhook {
  url  = "https://crm.example/c/{{email}}"
  body = "{\"site\": \"{{links.site}}\"}"
  link site = "https://acme.example/go?to={{website}}"
}
"#;

/// Link and webhook URLs are rendered with the contact's values in tasks
/// and webhooks too (issue 9), each value percent-encoded.
#[test]
fn task_and_webhook_urls_are_rendered_with_encoded_values() {
    let dir = project(URLS);
    let render = |t: &str| {
        let out = Command::new(BIN)
            .args([
                "render",
                t,
                "--persona",
                "ana",
                "--now",
                "2026-03-01T00:00:00Z",
                ".",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let task = render("call");
    assert!(
        task.contains("Book: https://acme.example/book?email=a%2Bb%40example.com"),
        "{task}"
    );
    let hook = render("crm");
    assert!(
        hook.contains("URL: https://crm.example/c/a%2Bb%40example.com"),
        "{hook}"
    );
    assert!(
        hook.contains("https://acme.example/go?to=http%3A%2F%2Fana.example"),
        "{hook}"
    );
}

/// A task link that is no longer an https URL with a host once rendered
/// for a persona is refused (E0520), naming the persona.
#[test]
fn a_task_link_that_renders_insecure_is_an_error() {
    let dir = project(
        r#"
contact { email: email, website: text? }
persona ana { email = "a@example.com" }
template call : task {
  body      = "See {{links.site}}"
  link site = "https://{{default website \"\"}}"
}
"#,
    );
    let out = Command::new(BIN)
        .args([
            "check",
            ".",
            "--color",
            "never",
            "--now",
            "2026-03-01T00:00:00Z",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("E0520") && err.contains("ana"), "{err}");
}
