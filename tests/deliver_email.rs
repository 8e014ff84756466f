//! Email delivery against a real SMTP server that is not ours: PyPI's
//! `aiosmtpd` (tests/deliver/mailbox.py), with what it received read by
//! Python's own MIME parser (`email`, policy `default`). Messages are
//! composed from `campaigns/` and its sample contacts, as `relance serve`
//! composes them; `relance render --format eml` is checked end to end.
//!
//! The Python comes from `RELANCE_TEST_PYTHON` (`.ci/run` makes a venv with
//! `aiosmtpd`). Under `CI` a missing Python or `aiosmtpd` fails the tests;
//! elsewhere they are skipped with a warning.

#[path = "deliver/mailbox.rs"]
mod mailbox;

use std::path::{Path, PathBuf};
use std::process::Command;

use mailbox::{Mailbox, missing, parse, python, temp_dir};

use relance::deliver::compose::Composer;
use relance::deliver::email::{Smtp, message_id};
use relance::deliver::{Attempt, Composed};
use relance::plan::Plan;
use serde_json::{Map, Value};

const BIN: &str = env!("CARGO_BIN_EXE_relance");
const NOW: &str = "2026-11-01T00:00:00Z";
const NOW_S: i64 = 1_793_491_200;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn plan() -> Plan {
    let a = relance::cli::analyse(&root().join("campaigns"), NOW_S).expect("campaigns loads");
    a.checked.plan.expect("campaigns builds")
}

fn contact(id: &str) -> Map<String, Value> {
    let text = std::fs::read_to_string(root().join("campaigns/data/contacts.jsonl")).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Map<String, Value>>(l).ok())
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no contact {id}"))
}

fn header<'a>(parsed: &'a Value, name: &str) -> Option<&'a str> {
    parsed["headers"][name][0].as_str()
}

/// Line ends as the parser gives them (CRLF on the wire) made `\n`.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// The address inside `Name <addr>`, or the value itself.
fn addr(mailbox: &str) -> &str {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(a), Some(b)) if a < b => &mailbox[a + 1..b],
        _ => mailbox,
    }
}

fn compose(c: &Composer, template: &str, id: &str) -> Composed {
    let url = format!("https://relance.example/u/token-of-{id}");
    c.compose(
        template,
        &contact(id),
        NOW_S,
        None,
        &url,
        &format!("{id}.{template}.1"),
    )
    .unwrap_or_else(|e| panic!("{template} for {id}: {e}"))
}

/// What the mailbox got is what was composed: the MIME layout, the
/// decoded headers, the envelope.
fn check_received(c: &Composed, envelope: &Value, parsed: &Value) {
    let what = format!("{} for {:?}", c.template, c.to);
    assert_eq!(parsed["defects"], serde_json::json!([]), "{what}");
    let parts = parsed["parts"].as_array().expect("parts");
    match c.parts.get("html") {
        Some(html) => {
            assert_eq!(parsed["content_type"], "multipart/alternative", "{what}");
            assert_eq!(parts.len(), 2, "{what}");
            assert_eq!(parts[0]["type"], "text/plain", "{what}");
            assert_eq!(parts[1]["type"], "text/html", "{what}");
            assert_eq!(lf(parts[1]["text"].as_str().unwrap()), lf(html), "{what}");
        }
        None => {
            assert_eq!(parsed["content_type"], "text/plain", "{what}");
            assert_eq!(parts.len(), 1, "{what}");
        }
    }
    for p in parts {
        assert_eq!(p["charset"], "utf-8", "{what}");
    }
    assert_eq!(
        lf(parts[0]["text"].as_str().unwrap()),
        lf(&c.parts["text"]),
        "{what}"
    );
    assert_eq!(
        header(parsed, "Subject"),
        Some(c.parts["subject"].as_str()),
        "{what}"
    );
    let from = c.from.as_deref().expect("a sender");
    let domain = addr(from).rsplit('@').next().unwrap();
    assert_eq!(
        header(parsed, "Message-ID"),
        Some(message_id(&c.key, domain).as_str()),
        "{what}"
    );
    assert_eq!(header(parsed, "MIME-Version"), Some("1.0"), "{what}");
    assert_eq!(parsed["date_epoch"], c.at, "{what}");
    assert_eq!(header(parsed, "To").map(addr), c.to.as_deref(), "{what}");
    assert_eq!(header(parsed, "From"), Some(from), "{what}");
    assert_eq!(header(parsed, "Reply-To"), c.reply_to.as_deref(), "{what}");
    let unsubscribe = header(parsed, "List-Unsubscribe");
    let post = header(parsed, "List-Unsubscribe-Post");
    if c.kind == "marketing" {
        let url = "<https://relance.example/u/token-of-";
        assert!(
            unsubscribe.is_some_and(|u| u.starts_with(url) && u.ends_with('>')),
            "{what}: {unsubscribe:?}"
        );
        assert_eq!(post, Some("List-Unsubscribe=One-Click"), "{what}");
    } else {
        assert_eq!((unsubscribe, post), (None, None), "{what}");
    }
    // The envelope: from the sender's address to the contact's.
    assert_eq!(envelope["mail_from"], addr(from), "{what}");
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([c.to]), "{what}");
}

#[test]
fn campaign_emails_arrive_as_real_mime() {
    let Some(py) = python("aiosmtpd") else { return };
    let mailbox = Mailbox::start(&py, "campaigns");
    let plan = plan();
    let composer = Composer::new(&plan);
    let smtp = Smtp::new(&mailbox.url(), None, None).expect("the URL");
    // Marketing with HTML and text (Julien François: UTF-8 in the name),
    // marketing with HTML only (text derived), and the transactional
    // confirmation in French and in English (variants).
    let sends = [
        ("offer", "c0000003"),
        ("gps_promo", "c0000001"),
        ("order_confirmation", "c0000001"),
        ("order_confirmation", "c0000012"),
    ];
    let mut composed = Vec::new();
    for (template, id) in sends {
        let c = compose(&composer, template, id);
        let a = smtp.send(&c);
        assert!(
            matches!(a, Attempt::Delivered { .. }),
            "{template} {id}: {a:?}"
        );
        composed.push(c);
    }
    for (n, c) in composed.iter().enumerate() {
        let (envelope, parsed) = mailbox.received(n + 1);
        check_received(c, &envelope, &parsed);
    }
    // The English variant went to the English reader.
    assert!(composed[3].parts["subject"].starts_with("Your order"));
    assert!(composed[2].parts["subject"].starts_with("Votre commande"));
    assert_eq!(mailbox.count(), sends.len());
}

#[test]
fn smtp_answers_are_classified() {
    let Some(py) = python("aiosmtpd") else { return };
    let mailbox = Mailbox::start(&py, "answers");
    let plan = plan();
    let composer = Composer::new(&plan);
    let smtp = Smtp::new(&mailbox.url(), None, None).expect("the URL");
    let mut c = compose(&composer, "offer", "c0000001");
    c.to = Some("reject.me@example.com".into());
    assert!(matches!(smtp.send(&c), Attempt::Failed { error } if error.contains("550")));
    c.to = Some("later@example.com".into());
    assert!(matches!(smtp.send(&c), Attempt::Retry { error } if error.contains("451")));
    c.to = None;
    assert!(matches!(smtp.send(&c), Attempt::Failed { .. }));
    assert_eq!(mailbox.count(), 0, "nothing was accepted");
    c.to = Some("ok@example.com".into());
    assert!(matches!(smtp.send(&c), Attempt::Delivered { detail } if detail.starts_with("250")));
    // A server that is gone: retried.
    drop(mailbox);
    assert!(matches!(smtp.send(&c), Attempt::Retry { .. }));
}

fn render_eml(template: &str, persona: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["render", template, "--persona", persona, "--format", "eml"])
        .args(["--now", NOW, "--color", "never"])
        .arg(root().join("campaigns"))
        .output()
        .expect("run relance")
}

#[test]
fn render_format_eml_is_the_message_sent() {
    // Only Python's standard library is needed here: any Python 3 does.
    let py = std::env::var_os("RELANCE_TEST_PYTHON")
        .map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    let runs = Command::new(&py)
        .args(["-c", "import email.policy"])
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        missing(&format!(
            "no Python 3 to parse the message ({})",
            py.display()
        ));
        return;
    }
    let out = render_eml("offer", "marie");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        render_eml("offer", "marie").stdout,
        "deterministic"
    );
    assert!(
        out.stdout.windows(2).any(|w| w == b"\r\n"),
        "CRLF line ends"
    );
    let dir = temp_dir("eml");
    let file = dir.join("offer.eml");
    std::fs::write(&file, &out.stdout).unwrap();
    let parsed = parse(&py, &file);
    // The same message as composed for a contact with marie's values.
    let plan = plan();
    let a = relance::cli::analyse(&root().join("campaigns"), NOW_S).unwrap();
    let project = relance::render::RenderProject::new(
        &a.loaded.sources,
        &a.checked.files,
        &relance::driver::template_file_ids(&a.loaded.sources),
        NOW_S,
    );
    let shown = project.render_one("offer", "marie").expect("renders");
    assert_eq!(header(&parsed, "Subject"), shown.subject.as_deref());
    assert_eq!(parsed["content_type"], "multipart/alternative");
    assert_eq!(
        lf(parsed["parts"][1]["text"].as_str().unwrap()),
        lf(shown.html.as_deref().unwrap())
    );
    assert_eq!(parsed["date_epoch"], NOW_S);
    let from = plan.workspace.from.clone().unwrap();
    assert_eq!(header(&parsed, "From"), Some(from.as_str()));
    assert_eq!(
        header(&parsed, "Message-ID"),
        Some("<offer.marie@autoparts-lyon.example>")
    );
    assert_eq!(
        header(&parsed, "List-Unsubscribe"),
        Some("<https://example.invalid/unsubscribe/marie>")
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Not an email; not a persona.
    let sms = render_eml("gps_promo_sms", "marie");
    assert_eq!(sms.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&sms.stderr).contains("emails only"));
    let nobody = render_eml("offer", "nobody");
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no persona"));
}
