//! Runner input through the real binary: files as spreadsheets and
//! editors write them (a byte-order mark, CRLF, a multi-line address), and
//! the mistakes they contain (a quote left open, a key given twice, a byte
//! that is not UTF-8) are read or reported line by line; no contact is
//! lost without a report.

mod common;

use std::fs;

use common::project::{Built, ran};

const PROJECT: &str = r#"workspace { name = "T", from = "T <t@example.com>", address = "1 rue X" }
contact { email: email, score: number?, interests: set<text>?, notes: text? }
list trial
template hi : task { body = "Hi" }
scenario onboarding {
  trigger joined trial
  send hi
}
"#;

/// A built project in a fresh folder.
fn project(tag: &str) -> Built {
    Built::from_files(
        &format!("run-input-{tag}"),
        &[("main.camp", PROJECT)],
        "2026-11-01T00:00:00Z",
    )
}

const WINDOW: [&str; 4] = [
    "--from",
    "2026-11-01T00:00:00Z",
    "--until",
    "2026-11-05T00:00:00Z",
];

fn run(p: &Built, contacts: &str, events: Option<&str>) -> (i32, String, String) {
    let mut cmd = p.run();
    cmd.args(["--contacts", contacts]).args(WINDOW);
    if let Some(e) = events {
        cmd.args(["--events", e]);
    }
    let out = ran(&mut cmd);
    (out.code, out.stdout, out.stderr)
}

#[test]
fn a_stray_quote_in_a_csv_loses_no_contact() {
    let p = project("quote");
    let dir = &p.project;
    fs::write(
        dir.join("contacts.csv"),
        "\u{feff}id,email,score,interests,notes\r\n\
         a,a@example.com,1,gps,\"1 rue X\r\n69003 Lyon\"\r\n\
         b,b@example.com,2,\"kids,\r\n\
         c,c@example.com,3,,\r\n\
         d,d@example.com,4,,\r\n",
    )
    .unwrap();
    fs::write(
        dir.join("events.jsonl"),
        ["a", "b", "c", "d"]
            .iter()
            .map(|c| {
                format!(
                    "{{\"contact\": \"{c}\", \"event\": \"joined\", \"list\": \"trial\", \"at\": \"2026-11-02T10:00:00Z\"}}\n"
                )
            })
            .collect::<String>(),
    )
    .unwrap();
    let (code, outbox, err) = run(&p, "contacts.csv", Some("events.jsonl"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("error: contacts.csv:4: the quote that opens the `interests` cell on this line is never closed; lines 5 to 6 are read on their own (line skipped)"),
        "{err}"
    );
    assert!(err.contains("simulated 3 contact(s)"), "{err}");
    assert!(
        err.contains("events.jsonl:2: contact `b`: no contact has this id"),
        "{err}"
    );
    for c in ["a", "c", "d"] {
        assert!(outbox.contains(&format!("\"contact\":\"{c}\"")), "{outbox}");
    }
}

#[test]
fn byte_order_marks_duplicate_keys_and_bad_bytes_in_jsonl() {
    let p = project("jsonl");
    let dir = &p.project;
    fs::write(
        dir.join("contacts.jsonl"),
        "\u{feff}{\"id\": \"a\", \"email\": \"a@example.com\"}\n\
         {\"id\": \"b\", \"email\": \"b@example.com\", \"email\": \"c@example.com\"}\n",
    )
    .unwrap();
    let mut events = b"\xef\xbb\xbf{\"contact\": \"a\", \"event\": \"joined\", \"list\": \"trial\", \"at\": \"2026-11-02T10:00:00Z\"}\n".to_vec();
    events.extend(b"{\"contact\": \"a\", \"event\": \"joined\", \"list\": \"tr\xffal\", \"at\": \"2026-11-02T10:00:00Z\"}\n");
    fs::write(dir.join("events.jsonl"), events).unwrap();
    let (code, outbox, err) = run(&p, "contacts.jsonl", Some("events.jsonl"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("error: contacts.jsonl:2: bad JSON: the key `email` is given twice"),
        "{err}"
    );
    assert!(
        err.contains("error: events.jsonl:2: the line is not UTF-8 (byte 0xff at column 48)"),
        "{err}"
    );
    assert!(!err.contains(":1:"), "the first lines are good:\n{err}");
    assert!(err.contains("simulated 1 contact(s)"), "{err}");
    assert!(outbox.contains("\"contact\":\"a\""), "{outbox}");
}

/// An endless line from a pipe (no line break) must not take unbounded
/// memory: the run stops at 16 MiB with an error naming the line. Before,
/// the whole stream was buffered as one line (here 40 MiB, then "bad JSON").
#[test]
fn an_endless_line_from_a_pipe_stops_the_run() {
    use std::io::Write;
    let p = project("endless");
    let mut child = p
        .run()
        .args(["--contacts", "/dev/stdin"])
        .args(WINDOW)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let block = vec![b'x'; 1 << 20];
        let mut written = 0usize;
        let _ = stdin.write_all(b"{\"id\": \"a\", \"email\": \"a@example.com\"}\n");
        // The runner stops reading (a broken pipe ends the loop).
        while written < 40 << 20 && stdin.write_all(&block).is_ok() {
            written += block.len();
        }
        written
    });
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`/dev/stdin` line 2: a line longer than 16 MiB (no line break): a JSONL file holds one contact per line; check that it is the right file"),
        "{err}"
    );
    assert!(written < 40 << 20, "the runner read all {written} bytes");
}
