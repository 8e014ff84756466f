//! The test mailbox (`tests/deliver/mailbox.py`: PyPI's `aiosmtpd`, and
//! Python's MIME parser to read what it got), driven from a test. Include
//! it with `#[path = "deliver/mailbox.rs"] mod mailbox;`.
//!
//! The Python comes from `RELANCE_TEST_PYTHON` (`.ci/run` makes a venv with
//! `aiosmtpd`). Under `CI` a missing Python or `aiosmtpd` fails the test;
//! elsewhere [`python`] warns and returns `None` (the test returns early).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deliver/mailbox.py")
}

pub fn missing(what: &str) -> Option<PathBuf> {
    let message = format!("{what} (.ci/run sets it up)");
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("\n!!!!! SKIPPED email delivery test: {message} !!!!!\n");
    None
}

/// A Python that has `module`, or `None` (after the warning) outside CI.
pub fn python(module: &str) -> Option<PathBuf> {
    let Some(py) = std::env::var_os("RELANCE_TEST_PYTHON").map(PathBuf::from) else {
        return missing("RELANCE_TEST_PYTHON is not set (a Python with PyPI's `aiosmtpd`)");
    };
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return missing(&format!(
            "RELANCE_TEST_PYTHON ({}) cannot import `{module}`",
            py.display()
        ));
    }
    Some(py)
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relance-mail-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The aiosmtpd server, stopped when dropped.
pub struct Mailbox {
    child: Child,
    pub port: u16,
    pub folder: PathBuf,
    python: PathBuf,
}

impl Mailbox {
    pub fn start(python: &Path, tag: &str) -> Mailbox {
        Mailbox::start_on(python, tag, None)
    }

    /// [`Mailbox::start`] on a given port (a server that comes back).
    pub fn start_on(python: &Path, tag: &str, port: Option<u16>) -> Mailbox {
        let folder = temp_dir(tag);
        let mut child = Command::new(python)
            .arg(script())
            .arg("serve")
            .arg(&folder)
            .args(port.map(|p| p.to_string()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the mailbox");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the mailbox prints its port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the mailbox did not start: {line:?}")
        });
        Mailbox {
            child,
            port,
            folder,
            python: python.to_path_buf(),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The `n`-th message received (1-based): its envelope and parse.
    pub fn received(&self, n: usize) -> (Value, Value) {
        let eml = self.folder.join(format!("{n:04}.eml"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !eml.exists() {
            assert!(Instant::now() < deadline, "message {n} never arrived");
            std::thread::sleep(Duration::from_millis(20));
        }
        let envelope = std::fs::read_to_string(self.folder.join(format!("{n:04}.json")))
            .expect("the envelope");
        (
            serde_json::from_str(&envelope).expect("JSON"),
            parse(&self.python, &eml),
        )
    }

    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.folder)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Python's reading of one message (see `mailbox.py parse`).
pub fn parse(python: &Path, eml: &Path) -> Value {
    let out = Command::new(python)
        .arg(script())
        .arg("parse")
        .arg(eml)
        .output()
        .expect("run the parser");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}
