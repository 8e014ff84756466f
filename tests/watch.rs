//! `relance watch` as a user runs it: the real binary on a temporary
//! project, its HTTP server, its event stream and its terminal lines.
//! The server's safety rules (Host, paths), editors' ways of saving,
//! bursts of writes, new, removed and renamed files and folders, errors
//! and recovery.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{Events, TempDir, Watch, http, small_project};

const PAGE: &str = "/preview/hello/marie.html";

fn edit_greeting(t: &TempDir, text: &str) {
    t.write(
        "templates/hello.html.hbs",
        &format!(
            "<html><body>\n<p>Greeting: {text} {{{{default first_name \"friend\"}}}}</p>\n<div style=\"height:2000px\">tall</div>\n{{{{> footer}}}}\n</body></html>\n"
        ),
    );
}

#[test]
fn serves_the_previews_with_live_reload_and_safe_headers() {
    let t = small_project("serve");
    let w = Watch::start(t.path());
    assert!(w.url.starts_with("http://127.0.0.1:"));
    let root = w.get("/");
    assert_eq!(root.status, 302);
    assert_eq!(root.header("Location"), Some("/preview/index.html"));
    let page = w.get(PAGE);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("Cache-Control"), Some("no-store"));
    assert_eq!(page.header("X-Content-Type-Options"), Some("nosniff"));
    let html = page.text();
    assert!(html.contains("Greeting: Bonjour Marie"), "{html}");
    assert!(html.contains("<script src=\"/__relance/live.js\""));
    let index = w.get("/preview/index.html");
    assert_eq!(index.status, 200);
    assert!(index.text().contains("hello/marie.html"));
    let json = w.get("/preview/hello/marie.json");
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    assert!(!json.text().contains("live.js"));
    let js = w.get("/__relance/live.js");
    assert_eq!(js.status, 200);
    assert!(js.text().contains("EventSource"));
    let status = w.status();
    assert_eq!(status["errors"], 0);
    assert_eq!(status["ok"], true);
    assert_eq!(w.get("/preview/nothing.html").status, 404);
    let post = http(
        w.port,
        "POST",
        PAGE,
        &format!("127.0.0.1:{}", w.port),
        Some("{}"),
    );
    assert_eq!(post.status, 405);
}

#[test]
fn only_requests_for_the_loopback_host_are_answered() {
    let t = small_project("host");
    let w = Watch::start(t.path());
    let p = w.port;
    for host in [
        format!("localhost:{p}"),
        format!("127.0.0.1:{p}"),
        format!("[::1]:{p}"),
    ] {
        let r = http(p, "GET", PAGE, &host, None);
        assert_eq!(r.status, 200, "Host: {host}");
    }
    for host in [
        format!("evil.com:{p}"),
        "evil.com".to_string(),
        "localhost".to_string(),
        format!("localhost:{}", p.wrapping_add(1)),
        format!("127.0.0.1.evil.com:{p}"),
        format!("attacker.example:{p}"),
        String::new(),
    ] {
        for path in [PAGE, "/__relance/status", "/__relance/events", "/"] {
            let r = http(p, "GET", path, &host, None);
            assert_eq!(r.status, 403, "Host: {host:?} {path}");
            assert!(!r.text().contains("Greeting"));
        }
    }
}

#[test]
fn paths_outside_the_build_output_are_refused() {
    let t = small_project("paths");
    t.write("secret.txt", "TOP SECRET");
    // A link inside the project pointing outside it.
    #[cfg(unix)]
    let _ = std::os::unix::fs::symlink("/etc", t.path().join("etc_link"));
    let w = Watch::start(t.path());
    let host = format!("127.0.0.1:{}", w.port);
    let refused = [
        "/../Cargo.toml",
        "/preview/../../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/..%2fCargo.toml",
        "/preview/..%2f..%2fsecret.txt",
        "/..\\Cargo.toml",
        "/preview\\..\\..\\secret.txt",
        "/..%5cCargo.toml",
        "/%5c%5cetc%5cpasswd",
        "/preview/%00.html",
        "/preview/./index.html",
        "//etc/passwd",
        "/etc_link/passwd",
        "/secret.txt",
        "/project.camp",
        "/templates/hello.html.hbs",
        "/%252e%252e/Cargo.toml",
        "http://127.0.0.1/../Cargo.toml",
    ];
    for path in refused {
        let r = http(w.port, "GET", path, &host, None);
        assert!(
            r.status == 403 || r.status == 404 || r.status == 400,
            "{path} gave {}",
            r.status
        );
        let body = r.text();
        assert!(
            !body.contains("TOP SECRET") && !body.contains("[package]") && !body.contains("root:"),
            "{path} leaked: {body}"
        );
    }
    for traversal in [
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2fx",
        "/..\\x",
        "/..%5cx",
    ] {
        assert_eq!(
            http(w.port, "GET", traversal, &host, None).status,
            403,
            "{traversal}"
        );
    }
}

#[test]
fn an_edit_reaches_the_page_and_the_event_stream() {
    let t = small_project("edit");
    let w = Watch::start(t.path());
    let mut events = Events::connect(w.port);
    let first = events.next_build();
    let site = first["site"].as_u64().unwrap();
    edit_greeting(&t, "Salut");
    let next = events.next_build();
    assert!(next["site"].as_u64().unwrap() > site, "{next}");
    assert_eq!(next["errors"], 0);
    let page = w.get(PAGE);
    assert!(page.text().contains("Greeting: Salut Marie"));
    assert_eq!(
        page.header("X-Relance-Site")
            .and_then(|s| s.parse::<u64>().ok()),
        next["site"].as_u64()
    );
}

#[test]
fn editors_atomic_saves_are_seen() {
    let t = small_project("atomic");
    let w = Watch::start(t.path());
    let file = t.path().join("templates/hello.html.hbs");
    let text = fs::read_to_string(&file).unwrap();

    // vim: probe file 4913, backup by rename, write the new file, drop the backup.
    fs::write(t.path().join("templates/4913"), "").unwrap();
    fs::remove_file(t.path().join("templates/4913")).unwrap();
    fs::rename(&file, t.path().join("templates/hello.html.hbs~")).unwrap();
    fs::write(&file, text.replace("Bonjour", "Vim")).unwrap();
    fs::remove_file(t.path().join("templates/hello.html.hbs~")).unwrap();
    w.wait_for_text(PAGE, "Greeting: Vim Marie");

    // JetBrains: write a temporary file, move the original aside, rename.
    let tmp = t.path().join("templates/hello.html.hbs___jb_tmp___");
    let old = t.path().join("templates/hello.html.hbs___jb_old___");
    fs::write(&tmp, text.replace("Bonjour", "JetBrains")).unwrap();
    fs::rename(&file, &old).unwrap();
    fs::rename(&tmp, &file).unwrap();
    fs::remove_file(&old).unwrap();
    w.wait_for_text(PAGE, "Greeting: JetBrains Marie");

    // Write to a temporary name in the same folder, rename over the original.
    let tmp = t.path().join(".hello.tmp");
    fs::write(&tmp, text.replace("Bonjour", "Atomic")).unwrap();
    fs::rename(&tmp, &file).unwrap();
    w.wait_for_text(PAGE, "Greeting: Atomic Marie");

    // A .camp file saved the same way.
    let camp = t.path().join("project.camp");
    let src = fs::read_to_string(&camp).unwrap();
    let tmp = t.path().join("project.camp.tmp");
    fs::write(&tmp, src.replace("\"Marie\"", "\"Mariette\"")).unwrap();
    fs::rename(&tmp, &camp).unwrap();
    w.wait_for_text(PAGE, "Greeting: Atomic Mariette");
}

#[test]
fn a_burst_of_writes_is_one_rebuild_and_ends_with_the_last_state() {
    let t = small_project("burst");
    let w = Watch::start(t.path());
    let before = w.builds();
    let start = Instant::now();
    for i in 0..200 {
        edit_greeting(&t, &format!("Burst{i}"));
    }
    let burst = start.elapsed();
    w.wait_for_text(PAGE, "Greeting: Burst199 Marie");
    // Let any late rebuild show up before counting.
    std::thread::sleep(Duration::from_millis(400));
    let rebuilds = w.builds() - before;
    assert!(rebuilds >= 1);
    // One rebuild per quiet period: a burst written faster than the
    // debounce gives one; a slow machine may split it in a few.
    let allowed = 1 + (burst.as_millis() / 30) as usize;
    assert!(
        rebuilds <= allowed.min(5),
        "{rebuilds} rebuilds for a burst of 200 writes in {burst:?}:\n{}",
        w.lines().join("\n")
    );
    // Still watching.
    edit_greeting(&t, "After");
    w.wait_for_text(PAGE, "Greeting: After Marie");
}

#[test]
fn new_removed_and_renamed_files_and_folders() {
    let t = small_project("files");
    let w = Watch::start(t.path());
    // A new file in a new folder.
    t.write(
        "more/extra.camp",
        "template extra : sms { body = \"Extra one {{default first_name \\\"x\\\"}} STOP 36180\" }\n",
    );
    w.wait_for_text("/preview/extra/marie.json", "Extra one Marie");
    // The folder renamed: still watched under its new name.
    fs::rename(t.path().join("more"), t.path().join("renamed")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    t.write(
        "renamed/extra.camp",
        "template extra : sms { body = \"Extra two {{default first_name \\\"x\\\"}} STOP 36180\" }\n",
    );
    w.wait_for_text("/preview/extra/marie.json", "Extra two Marie");
    // A folder made inside the renamed one, then a file in it.
    t.write(
        "renamed/deeper/third.camp",
        "template third : sms { body = \"Third {{default first_name \\\"x\\\"}} STOP 36180\" }\n",
    );
    w.wait_for_text("/preview/third/marie.json", "Third Marie");
    // Removed: the previews go.
    fs::remove_dir_all(t.path().join("renamed")).unwrap();
    w.wait_for(
        Duration::from_secs(20),
        "the removed template's page to go",
        |w| w.get("/preview/extra/marie.json").status == 404,
    );
    assert_eq!(w.get(PAGE).status, 200);
}

#[test]
fn errors_keep_the_last_good_previews_and_recovery_follows() {
    let t = small_project("errors");
    let mut w = Watch::start(t.path());
    // A syntax error in the .camp file.
    let camp = t.path().join("project.camp");
    let good = fs::read_to_string(&camp).unwrap();
    fs::write(
        &camp,
        good.replace("template ping : sms {", "template ping : sms {{"),
    )
    .unwrap();
    w.wait_for(Duration::from_secs(20), "the syntax error", |w| {
        w.status()["errors"].as_u64().unwrap_or(0) > 0
    });
    let st = w.status();
    let d = &st["diagnostics"][0];
    assert_eq!(d["file"], "project.camp");
    assert!(d["line"].as_u64().unwrap() > 0);
    assert!(d["rendered"].as_str().unwrap().contains("project.camp:"));
    // The status can be served before the watcher's stderr line is read.
    w.wait_for(Duration::from_secs(20), "the rebuild line", |w| {
        w.lines()
            .iter()
            .any(|l| l.contains("rebuilt in") && l.contains("1 error"))
    });
    // The last good previews are still served.
    assert!(w.get(PAGE).text().contains("Greeting: Bonjour Marie"));
    // An unknown variable in the template file, on line 2.
    fs::write(&camp, &good).unwrap();
    t.write(
        "templates/hello.html.hbs",
        "<html><body>\n<p>Greeting: {{frist_name}}</p>\n{{> footer}}\n</body></html>\n",
    );
    w.wait_for(Duration::from_secs(20), "the template error", |w| {
        w.status()["diagnostics"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["code"] == "E0510"))
    });
    let st = w.status();
    let d = st["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "E0510")
        .unwrap()
        .clone();
    assert_eq!(d["file"], "templates/hello.html.hbs");
    assert_eq!(d["line"], 2);
    // Each diagnostic once, though two personas render the template.
    let same = |x: &serde_json::Value| {
        x["code"] == d["code"] && x["line"] == d["line"] && x["message"] == d["message"]
    };
    let copies = st["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| same(x))
        .count();
    assert_eq!(copies, 1, "{st}");
    // Fixed: no error, new previews.
    edit_greeting(&t, "Fixed");
    w.wait_for_text(PAGE, "Greeting: Fixed Marie");
    assert_eq!(w.status()["errors"], 0);
    assert!(w.alive());
}

#[test]
fn the_project_folder_may_disappear_for_a_while() {
    let t = small_project("gone");
    let mut w = Watch::start(t.path());
    let aside = t.path().with_extension("aside");
    let _ = fs::remove_dir_all(&aside);
    fs::rename(t.path(), &aside).unwrap();
    w.wait_for(
        Duration::from_secs(20),
        "the missing folder to be reported",
        |w| w.status()["message"].is_string(),
    );
    assert!(w.get(PAGE).text().contains("Greeting: Bonjour Marie"));
    fs::rename(&aside, t.path()).unwrap();
    w.wait_for(Duration::from_secs(20), "the folder to be back", |w| {
        w.status()["errors"] == 0
    });
    edit_greeting(&t, "Back");
    w.wait_for_text(PAGE, "Greeting: Back Marie");
    assert!(w.alive());
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let t = small_project("port");
    let out = std::process::Command::new(common::BIN)
        .args(["watch", t.path().to_str().unwrap(), "--port", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains("--port"),
        "{err}"
    );
    let missing = std::process::Command::new(common::BIN)
        .args(["watch", "/nonexistent/relance/project", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn a_single_file_project_is_watched_through_its_folder() {
    let t = small_project("onefile");
    let w = Watch::start(&t.path().join("project.camp"));
    assert!(w.get(PAGE).text().contains("Greeting: Bonjour Marie"));
    edit_greeting(&t, "Single");
    w.wait_for_text(PAGE, "Greeting: Single Marie");
    let camp = t.path().join("project.camp");
    let src = fs::read_to_string(&camp).unwrap();
    fs::write(&camp, src.replace("\"Marie\"", "\"Maria\"")).unwrap();
    w.wait_for_text(PAGE, "Greeting: Single Maria");
}

/// Opens `/__relance/events` and reads the response head; returns the
/// status and, for a 200, the stream positioned after the head.
fn open_events(port: u16) -> (u16, Option<std::io::BufReader<std::net::TcpStream>>) {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /__relance/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(s);
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .expect("the event stream's status line");
    let status = first
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut line = String::new();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .expect("the event stream's head");
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    (status, (status == 200).then_some(reader))
}

/// The data of the next `build` event on a stream.
fn next_build(reader: &mut std::io::BufReader<std::net::TcpStream>) -> serde_json::Value {
    use std::io::BufRead;
    let (mut event, mut data, mut line) = (String::new(), String::new(), String::new());
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read an event");
        assert!(n > 0, "the event stream closed");
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            if event == "build" {
                return serde_json::from_str(&data).expect("event data is JSON");
            }
            event.clear();
            data.clear();
        } else if let Some(e) = l.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = l.strip_prefix("data: ") {
            data.push_str(d);
        }
    }
}

/// `relance watch` serves at most this many event streams at once
/// (`src/watch/server.rs`).
const MAX_EVENT_CLIENTS: usize = 256;

#[test]
fn many_open_event_streams_neither_block_pages_nor_leak() {
    let t = small_project("load");
    let w = Watch::start(t.path());
    // 200 pages listening at once: each gets its stream and the status.
    let mut streams: Vec<_> = (0..200)
        .map(|i| {
            let (status, reader) = open_events(w.port);
            assert_eq!(status, 200, "event stream {i}");
            reader.unwrap()
        })
        .collect();
    let sites: Vec<u64> = streams
        .iter_mut()
        .map(|s| next_build(s)["site"].as_u64().expect("a site generation"))
        .collect();
    // A page is still answered, and every stream hears of the rebuild.
    let page = w.get(PAGE);
    assert_eq!(page.status, 200);
    edit_greeting(&t, "Crowd");
    for (s, site) in streams.iter_mut().zip(sites) {
        while next_build(s)["site"].as_u64().unwrap_or(0) <= site {}
    }
    w.wait_for_text(PAGE, "Greeting: Crowd Marie");
    // Closing them frees their places: as many streams as the server
    // allows can open again (a stream the server has not yet seen close
    // makes a 503; retry for a bounded time).
    drop(streams);
    let mut again = Vec::new();
    let start = Instant::now();
    while again.len() < MAX_EVENT_CLIENTS {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "closed event streams were not freed: {} of {MAX_EVENT_CLIENTS} could open again",
            again.len()
        );
        match open_events(w.port) {
            (200, Some(r)) => again.push(r),
            (503, _) => std::thread::sleep(Duration::from_millis(50)),
            (other, _) => panic!("event stream answered {other}"),
        }
    }
    // Beyond the limit, a clear 503; pages still load.
    assert_eq!(open_events(w.port).0, 503);
    assert_eq!(w.get(PAGE).status, 200);
    assert_eq!(w.get("/__relance/status").status, 200);
}

#[test]
fn a_burst_of_page_requests_is_answered() {
    let t = small_project("pageburst");
    let w = Watch::start(t.path());
    let _streams: Vec<_> = (0..8).map(|_| open_events(w.port)).collect();
    let port = w.port;
    let threads: Vec<_> = (0..32)
        .map(|_| {
            std::thread::spawn(move || {
                common::http(port, "GET", PAGE, &format!("127.0.0.1:{port}"), None).status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
}

/// How many inotify watches process `pid` holds (Linux: the `inotify wd:`
/// lines of its inotify descriptors' fdinfo).
#[cfg(target_os = "linux")]
fn inotify_watches(pid: u32) -> usize {
    let mut n = 0;
    for fd in fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        let is_inotify =
            fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().contains("inotify"));
        if !is_inotify {
            continue;
        }
        let info = fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        n += info
            .lines()
            .filter(|l| l.starts_with("inotify wd:"))
            .count();
    }
    n
}

#[cfg(target_os = "linux")]
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(target_os = "linux")]
#[test]
fn symbolic_links_to_folders_are_not_watched() {
    // A large folder outside the project, linked from inside it: the
    // loader does not follow the link, so neither does the watcher.
    let outside = common::TempDir::new("outside");
    for i in 0..60 {
        outside.write(&format!("d{i}/sub/x.txt"), "x");
    }
    let t = small_project("links");
    std::os::unix::fs::symlink(outside.path(), t.path().join("linked")).unwrap();
    std::os::unix::fs::symlink(outside.path(), t.path().join("templates/linked")).unwrap();
    let w = Watch::start(t.path());
    // The project's folders (root, templates, templates/partials) and the
    // project's parent: a handful, not the 121 folders behind the links.
    let watches = inotify_watches(w.pid());
    assert!(
        (1..=6).contains(&watches),
        "{watches} inotify watches for a project of 3 folders"
    );
    // Watching still works, and a new folder in the project is watched.
    edit_greeting(&t, "Linked");
    w.wait_for_text(PAGE, "Greeting: Linked Marie");
    t.write(
        "more/extra.camp",
        "template extra : sms { body = \"Extra one {{default first_name \\\"x\\\"}} STOP 36180\" }\n",
    );
    w.wait_for_text("/preview/extra/marie.json", "Extra one Marie");
    t.write(
        "more/extra.camp",
        "template extra : sms { body = \"Extra two {{default first_name \\\"x\\\"}} STOP 36180\" }\n",
    );
    w.wait_for_text("/preview/extra/marie.json", "Extra two Marie");
}

#[cfg(target_os = "linux")]
#[test]
fn an_unreadable_folder_is_a_warning_not_an_exit() {
    use std::os::unix::fs::PermissionsExt;
    if running_as_root() {
        eprintln!(
            "WARNING: skipping an_unreadable_folder_is_a_warning_not_an_exit: root reads every folder"
        );
        return;
    }
    let outside = common::TempDir::new("locked-outside");
    outside.write("locked/x.txt", "x");
    let t = small_project("unreadable");
    t.write("private/keep.txt", "x");
    std::os::unix::fs::symlink(outside.path(), t.path().join("linked")).unwrap();
    let lock = |p: &std::path::Path, mode| {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap()
    };
    lock(&outside.path().join("locked"), 0o000);
    lock(&t.path().join("private"), 0o000);
    let mut w = Watch::start(t.path());
    assert!(w.alive());
    assert!(
        w.lines()
            .iter()
            .any(|l| l.starts_with("warning: cannot watch") && l.contains("private")),
        "{}",
        w.lines().join("\n")
    );
    // Behind the link: not even looked at.
    assert!(!w.lines().iter().any(|l| l.contains("locked")));
    lock(&t.path().join("private"), 0o755);
    edit_greeting(&t, "Unlocked");
    w.wait_for_text(PAGE, "Greeting: Unlocked Marie");
    assert!(w.alive());
    lock(&outside.path().join("locked"), 0o755);
}

#[cfg(unix)]
#[test]
fn a_fifo_camp_file_does_not_stop_watch() {
    let t = small_project("fifo");
    let fifo = t.path().join("stuck.camp");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // The first build ends (with a diagnostic about the FIFO) instead of
    // waiting for a writer forever.
    let w = Watch::start(t.path());
    let st = w.status();
    assert!(st["errors"].as_u64().unwrap_or(0) > 0, "{st}");
    assert!(st.to_string().contains("stuck.camp"), "{st}");
    // Removed: the project builds again.
    fs::remove_file(&fifo).unwrap();
    edit_greeting(&t, "Unstuck");
    w.wait_for_text(PAGE, "Greeting: Unstuck Marie");
}

#[test]
fn the_error_panel_links_to_the_editor() {
    let t = small_project("editor");
    t.write(
        "templates/hello.html.hbs",
        "<html><body>\n<p>Greeting: {{frist_name}}</p>\n{{> footer}}\n</body></html>\n",
    );
    let w = Watch::start_with(
        t.path(),
        &["--editor", "idea://open?file={path}&line={line}"],
    );
    let st = w.status();
    assert_eq!(st["editor"], "idea://open?file={path}&line={line}");
    let d = st["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "E0510")
        .cloned()
        .unwrap_or_else(|| panic!("{st}"));
    let abs = d["abs_path"].as_str().unwrap();
    assert!(std::path::Path::new(abs).is_absolute(), "{abs}");
    assert!(abs.ends_with("templates/hello.html.hbs"), "{abs}");
    assert_eq!(
        fs::canonicalize(abs).unwrap(),
        fs::canonicalize(t.path().join("templates/hello.html.hbs")).unwrap()
    );
    // A link that would run code in the page is refused at the start.
    let out = std::process::Command::new(common::BIN)
        .args(["watch", t.path().to_str().unwrap(), "--port", "0"])
        .args(["--editor", "javascript:alert(1)//{path}"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("editor"));
}

/// Sends raw bytes and reads the answer until the server closes.
fn raw(port: u16, bytes: &[u8]) -> common::HttpResponse {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (and close) before taking all of a long head.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    common::parse_response(&out)
}

#[test]
fn malformed_requests_get_clear_answers() {
    let t = small_project("malformed");
    let w = Watch::start(t.path());
    let host = format!("127.0.0.1:{}", w.port);
    assert_eq!(raw(w.port, b"garbage\r\n\r\n").status, 400);
    assert_eq!(
        raw(
            w.port,
            format!("GET {PAGE} HTTP/1.1\r\nHost {host}\r\n\r\n").as_bytes()
        )
        .status,
        400
    );
    // Two Host headers: which one counts is unclear, so neither does.
    let two = format!("GET {PAGE} HTTP/1.1\r\nHost: {host}\r\nHost: evil.com\r\n\r\n");
    assert_eq!(raw(w.port, two.as_bytes()).status, 400);
    let huge = format!(
        "GET {PAGE} HTTP/1.1\r\nHost: {host}\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(raw(w.port, huge.as_bytes()).status, 431);
    // HEAD: the head of a GET, no body.
    let head = raw(
        w.port,
        format!("HEAD {PAGE} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    );
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(head.header("Content-Length").is_some_and(|n| n != "0"));
    // A client that connects and says nothing does not hold up others.
    let idle: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", w.port)).unwrap())
        .collect();
    assert_eq!(w.get(PAGE).status, 200);
    drop(idle);
}

#[test]
fn the_manifest_names_the_editor_and_the_flag_wins() {
    let t = small_project("editor_manifest");
    t.write(
        "relance.toml",
        "editor = \"idea://open?file={path}&line={line}\"\n",
    );
    let w = Watch::start(t.path());
    assert_eq!(w.status()["editor"], "idea://open?file={path}&line={line}");
    drop(w);
    let w = Watch::start_with(t.path(), &["--editor", "subl://open?url=file://{path}"]);
    assert_eq!(w.status()["editor"], "subl://open?url=file://{path}");
}
