//! `relance watch` in a real browser: headless Chromium driven through
//! chromedriver's WebDriver HTTP API (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs).
//!
//! The page must show an edit without a reload (a marker set on `window`
//! survives, the scroll position stays), show an overlay with the error's
//! file and line when the project breaks, and hide it once fixed.
//!
//! Without Chromium the test fails when `CI` is set, and is skipped with a
//! loud message otherwise.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{TempDir, Watch, http, small_project};

fn find(candidates: &[&str], name: &str) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` after saying why (panics on CI).
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = find(
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        "chromium",
    );
    let driver = find(&["/usr/bin/chromedriver"], "chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let message = "Chromium or chromedriver is missing: install them with \
                 `apt-get install -y chromium chromium-driver` (.ci/run does it)";
            if std::env::var_os("CI").is_some() {
                panic!("{message}");
            }
            eprintln!("\n!!!!! SKIPPED the browser test: {message} !!!!!\n");
            None
        }
    }
}

struct Driver {
    child: Child,
    port: u16,
    session: String,
    _profile: TempDir,
}

impl Driver {
    fn start(chromium: &Path, chromedriver: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut driver = Driver {
            child,
            port,
            session: String::new(),
            _profile: TempDir::new("chromium-profile"),
        };
        let start = Instant::now();
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && driver.call("GET", "/status", None)["value"]["ready"] == true;
            if ready {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = driver._profile.path().to_string_lossy().into_owned();
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.to_string_lossy(),
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage", "--window-size=1000,700",
                        format!("--user-data-dir={profile}"),
                    ]
                }
            }}
        });
        let r = driver.call("POST", "/session", Some(&caps));
        driver.session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        driver
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let r = http(
            self.port,
            method,
            path,
            &format!("127.0.0.1:{}", self.port),
            body.as_deref(),
        );
        serde_json::from_slice(&r.body).unwrap_or(Value::Null)
    }

    fn go(&self, url: &str) {
        let path = format!("/session/{}/url", self.session);
        self.call("POST", &path, Some(&json!({ "url": url })));
    }

    fn js(&self, script: &str) -> Value {
        let path = format!("/session/{}/execute/sync", self.session);
        let r = self.call(
            "POST",
            &path,
            Some(&json!({ "script": script, "args": [] })),
        );
        r["value"].clone()
    }

    /// Runs `script` every 50 ms until it returns `true`.
    fn wait_until(&self, what: &str, script: &str, watch: &Watch) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if self.js(script) == Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out waiting for {what}\npage: {}\nrelance watch said:\n{}",
            self.js("return document.documentElement.outerHTML.slice(0, 3000)"),
            watch.lines().join("\n")
        );
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let path = format!("/session/{}", self.session);
            self.call("DELETE", &path, None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const OVERLAY_SHOWN: &str = "var o = document.getElementById('__relance_overlay'); \
     return !!o && !o.hidden && o.getAttribute('data-state') === 'errors';";

#[test]
fn the_page_follows_edits_errors_and_fixes_without_reloading() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let t = small_project("browser");
    let watch = Watch::start(t.path());
    let driver = Driver::start(&chromium, &chromedriver);
    driver.go(&format!("{}preview/hello/marie.html", watch.url));
    driver.wait_until(
        "the live script to connect",
        "return !!(window.__relanceLive && window.__relanceLive.connected);",
        &watch,
    );
    // The page is taller than the window: scroll, and mark this page.
    driver.js("window.__marker = 42; window.scrollTo(0, 150); return true;");
    let scrolled = driver.js("return window.scrollY;");
    assert!(
        scrolled.as_f64().unwrap_or(0.0) > 0.0,
        "the page should scroll"
    );

    // An edit shows up in the page without a reload.
    t.write(
        "templates/hello.html.hbs",
        "<html><body>\n<p>Greeting: Coucou {{default first_name \"friend\"}}</p>\n<div style=\"height:2000px\">tall</div>\n{{> footer}}\n</body></html>\n",
    );
    driver.wait_until(
        "the edit in the page",
        "var f = document.querySelector('iframe'); \
         return !!f && (f.getAttribute('srcdoc') || '').indexOf('Greeting: Coucou Marie') >= 0;",
        &watch,
    );
    assert_eq!(
        driver.js("return window.__marker;"),
        json!(42),
        "the page was reloaded"
    );
    assert_eq!(
        driver.js("return window.scrollY;"),
        scrolled,
        "the scroll position moved"
    );
    assert_eq!(
        driver.js("return window.__relanceLive.swaps >= 1;"),
        json!(true)
    );

    // An error: the overlay names the file and line; the previews stay.
    t.write(
        "templates/hello.html.hbs",
        "<html><body>\n<p>Greeting: {{frist_name}}</p>\n<div style=\"height:2000px\">tall</div>\n{{> footer}}\n</body></html>\n",
    );
    driver.wait_until("the error overlay", OVERLAY_SHOWN, &watch);
    let text = driver
        .js("return document.getElementById('__relance_overlay').textContent;")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("E0510"), "{text}");
    assert!(text.contains("unknown variable `frist_name`"), "{text}");
    assert!(text.contains("templates/hello.html.hbs:2:"), "{text}");
    let line = driver.js(
        "var d = document.querySelector('#__relance_overlay [data-code=E0510]'); \
         return d && [d.getAttribute('data-file'), d.getAttribute('data-line')];",
    );
    assert_eq!(line, json!(["templates/hello.html.hbs", "2"]));
    assert_eq!(
        driver.js(
            "return (document.querySelector('iframe').getAttribute('srcdoc') || '').indexOf('Coucou') >= 0;"
        ),
        json!(true),
        "the last good preview stays beneath the overlay"
    );

    // Fixed: the overlay goes, the new text comes.
    t.write(
        "templates/hello.html.hbs",
        "<html><body>\n<p>Greeting: Re-bonjour {{default first_name \"friend\"}}</p>\n<div style=\"height:2000px\">tall</div>\n{{> footer}}\n</body></html>\n",
    );
    driver.wait_until(
        "the overlay to go",
        "var o = document.getElementById('__relance_overlay'); return !!o && o.hidden;",
        &watch,
    );
    driver.wait_until(
        "the fixed text",
        "return (document.querySelector('iframe').getAttribute('srcdoc') || '').indexOf('Greeting: Re-bonjour Marie') >= 0;",
        &watch,
    );
    assert_eq!(
        driver.js("return window.__marker;"),
        json!(42),
        "the page was reloaded"
    );

    // An error in a .camp file: the overlay names it too.
    let camp = t.path().join("project.camp");
    let good = std::fs::read_to_string(&camp).unwrap();
    std::fs::write(&camp, good.replace("persona paul {", "persona paul {{")).unwrap();
    driver.wait_until("the .camp error overlay", OVERLAY_SHOWN, &watch);
    let text = driver
        .js("return document.getElementById('__relance_overlay').textContent;")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("project.camp:"), "{text}");
    std::fs::write(&camp, good).unwrap();
    driver.wait_until(
        "the overlay to go after the .camp fix",
        "var o = document.getElementById('__relance_overlay'); return !!o && o.hidden;",
        &watch,
    );
}
