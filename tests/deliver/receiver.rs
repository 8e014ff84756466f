//! The test receiver of webhook, task, SMS and push requests
//! (`tests/deliver/receiver.py`, Python's standard library only), driven
//! from a test. Include it with
//! `#[path = "deliver/receiver.rs"] mod receiver;`.
//!
//! Python is `RELANCE_TEST_PYTHON` (exported by `.ci/run`) or `python3`.
//! Under `CI` a missing Python fails the test; elsewhere [`Receiver::start`]
//! warns on stderr and returns `None` (the test returns early).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deliver/receiver.py");

/// A running receiver: killed, and its folder removed, when dropped.
pub struct Receiver {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

/// The Python to run the receiver with, or `None` after a warning (a
/// panic under `CI`).
pub fn python() -> Option<PathBuf> {
    let py = std::env::var_os("RELANCE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&py)
        .args(["-c", "import http.server, json, base64"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    let message = format!(
        "no Python 3 at {} (RELANCE_TEST_PYTHON or python3; .ci/run sets it up) for the HTTP receiver",
        py.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("\n!!!!! SKIPPED: {message} !!!!!\n");
    None
}

impl Receiver {
    /// Starts the receiver with `args` (its options: `--fail 500 --times
    /// 2`, …; `--log` is added) and waits for its port.
    pub fn start(args: &[&str]) -> Option<Receiver> {
        let py = python()?;
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "relance-receiver-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the receiver's folder");
        let log = dir.join("requests.jsonl");
        let mut child = Command::new(&py)
            .arg(SCRIPT)
            .arg("--log")
            .arg(&log)
            .args(["--max-seconds", "300"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tests/deliver/receiver.py");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let port = match (read, line.trim().parse::<u16>()) {
            (Ok(_), Ok(port)) => port,
            _ => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let _ = child.wait();
                panic!("the receiver did not print its port (got {line:?}): {err}");
            }
        };
        Some(Receiver { child, port, dir })
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests received so far, in order (one JSON object each:
    /// `n`, `method`, `path`, `headers` (lower-case names), `body`,
    /// `body_base64`, `answer`).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join("requests.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line from the receiver"))
            .collect()
    }

    /// `POST /_control` with `settings` (`{"fail": "500", "times": 2}`);
    /// returns the settings in force.
    pub fn control(&self, settings: serde_json::Value) -> serde_json::Value {
        let mut answer = ureq::post(self.url("/_control"))
            .send(settings.to_string())
            .expect("the receiver's control path");
        serde_json::from_str(&answer.body_mut().read_to_string().unwrap()).unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
