//! The preview site that `relance build` writes (`build/preview/`): flow
//! pages with each scenario's sends, an index with subjects, SMS pages
//! with segment counts, links that all resolve, and byte-identical builds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use relance::plan::{Plan, Step};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relance-site-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Every file under `dir`, relative path (with `/`) → bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).expect("prefix");
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.insert(rel.join("/"), std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Builds `project` into a fresh folder and returns every file written.
fn build(project: &Path, name: &str) -> BTreeMap<String, Vec<u8>> {
    let out = temp_dir(name);
    let r = Command::new(env!("CARGO_BIN_EXE_relance"))
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
        "{}: {}",
        project.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    let files = tree(&out);
    let _ = std::fs::remove_dir_all(&out);
    // No absolute path in what the site shows.
    let out = out.to_string_lossy().into_owned();
    for (path, bytes) in &files {
        let s = String::from_utf8_lossy(bytes);
        assert!(!s.contains(&out), "{path} holds the output path");
        assert!(
            !s.contains(env!("CARGO_MANIFEST_DIR")),
            "{path} holds a path"
        );
    }
    files
}

fn campaigns() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns")
}

fn text(files: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    let bytes = files.get(path).unwrap_or_else(|| panic!("no file {path}"));
    String::from_utf8(bytes.clone()).expect("utf-8")
}

fn escape(s: &str) -> String {
    relance::render::escape_html(s)
}

/// The templates a scenario sends, directly or through the cadences it starts.
fn sends(plan: &Plan, scenario: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for step in plan.scenarios[scenario].steps.values() {
        match step {
            Step::Send { template, .. } => {
                out.insert(template.clone());
            }
            Step::Start { cadence, .. } => {
                out.extend(
                    plan.cadences[cadence]
                        .touches
                        .iter()
                        .map(|t| t.template.clone()),
                );
            }
            _ => {}
        }
    }
    out
}

/// The part of `page` between `<svg` and `</svg>`, checked to be
/// well-formed: every tag closed in order, no stray `<` in text.
fn svg_of(page: &str, path: &str) -> String {
    let start = page
        .find("<svg")
        .unwrap_or_else(|| panic!("{path}: no <svg"));
    let end = page[start..].find("</svg>").expect("svg closed") + start + "</svg>".len();
    let svg = &page[start..end];
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let close = rest.find('>').expect("tag closed");
        let tag = &rest[..close];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name), "{path}: </{name}> out of order");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap_or("");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric()),
                "{path}: odd tag <{tag}>"
            );
            stack.push(name);
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "{path}: unclosed {stack:?}");
    svg.to_string()
}

/// The boxes of a drawing (`x`, `y`, `width`, `height` of each `<rect`),
/// checked to lie inside the drawing and not to overlap.
fn assert_boxes_apart(svg: &str, path: &str) {
    let attr = |tag: &str, name: &str| -> i64 {
        let key = format!(" {name}=\"");
        let start = tag
            .find(&key)
            .unwrap_or_else(|| panic!("{path}: no {name}"))
            + key.len();
        let end = start + tag[start..].find('"').expect("closed");
        tag[start..end].parse().expect("number")
    };
    let head = &svg[..svg.find('>').expect("svg tag")];
    let (w, h) = (attr(head, "width"), attr(head, "height"));
    let rects: Vec<(i64, i64, i64, i64)> = svg
        .split("<rect")
        .skip(1)
        .map(|t| {
            let t = &t[..t.find("/>").expect("rect closed")];
            (
                attr(t, "x"),
                attr(t, "y"),
                attr(t, "width"),
                attr(t, "height"),
            )
        })
        .collect();
    assert!(!rects.is_empty(), "{path}");
    for (i, a) in rects.iter().enumerate() {
        assert!(
            a.0 >= 0 && a.1 >= 0 && a.0 + a.2 <= w && a.1 + a.3 <= h,
            "{path}: {a:?} outside"
        );
        for b in &rects[i + 1..] {
            let apart =
                a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0 || a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1;
            assert!(apart, "{path}: {a:?} overlaps {b:?}");
        }
    }
}

#[test]
fn flow_pages_draw_every_scenario_and_cadence_with_their_sends() {
    let files = build(&campaigns(), "flows");
    let plan: Plan = serde_json::from_slice(&files["plan.json"]).expect("plan");
    let index = text(&files, "preview/index.html");
    assert!(!plan.scenarios.is_empty() && !plan.cadences.is_empty());
    for name in plan.scenarios.keys() {
        let path = format!("preview/scenario/{name}.html");
        let page = text(&files, &path);
        assert!(
            page.contains(&format!("<main id=\"flow\" data-flow=\"scenario/{name}\"")),
            "{path}"
        );
        let svg = svg_of(&page, &path);
        assert!(svg.starts_with("<svg class=\"flow\""), "{path}");
        for t in sends(&plan, name) {
            // Drawn directly, or through the cadence the scenario starts.
            let direct = plan.scenarios[name]
                .steps
                .values()
                .any(|s| matches!(s, Step::Send { template, .. } if *template == t));
            if direct {
                assert!(svg.contains(&format!(">{t}</text>")), "{path}: no send {t}");
                assert!(
                    svg.contains(&format!("href=\"../index.html#template-{t}\"")),
                    "{path}: {t} not linked"
                );
            }
            assert!(page.contains(&format!("#template-{t}\"")), "{path}: {t}");
        }
        for id in plan.scenarios[name].steps.keys() {
            assert!(
                svg.contains(&format!("data-step=\"{id}\"")),
                "{path}: step {id} not drawn"
            );
        }
        assert!(
            index.contains(&format!("href=\"scenario/{name}.html\"")),
            "index does not link {path}"
        );
    }
    for (name, c) in &plan.cadences {
        let path = format!("preview/cadence/{name}.html");
        let page = text(&files, &path);
        let svg = svg_of(&page, &path);
        for t in &c.touches {
            assert!(svg.contains(&format!(">{}</text>", t.template)), "{path}");
            assert!(svg.contains(&format!("data-step=\"{}\"", t.id)), "{path}");
        }
        assert!(index.contains(&format!("href=\"cadence/{name}.html\"")));
    }
    // The sample's branches read as written.
    let drip = text(&files, "preview/scenario/drip_offers.html");
    for cond in [
        "not opened(offer)",
        "clicked(offer.gps)",
        "clicked(offer_reminder.kids)",
        "marketable and prospects and not customers",
        "joined prospects",
        "purchase within 14d",
    ] {
        assert!(drip.contains(&escape(cond)), "drip_offers: no {cond}");
    }
    // The page lists the sends in the order a contact gets them; a
    // cadence's in touch order; each email send shows its subject.
    for (name, c) in &plan.cadences {
        let page = text(&files, &format!("preview/cadence/{name}.html"));
        let listed: Vec<&str> = page
            .split("<li data-template=\"")
            .skip(1)
            .filter_map(|r| r.split('"').next())
            .collect();
        let mut touches: Vec<&str> = Vec::new();
        for t in &c.touches {
            if !touches.contains(&t.template.as_str()) {
                touches.push(&t.template);
            }
        }
        assert_eq!(listed, touches, "cadence {name}");
        // Fits the window unless asked for the actual size.
        assert!(page.contains("<input type=\"checkbox\" id=\"actual-size\">"));
        assert!(page.contains(".flow-scroll svg.flow{width:100%;height:auto}"));
    }
    for t in ["offer", "offer_reminder"] {
        let subject = plan.templates[t].parts["subject"].text.clone();
        let first = subject.split_whitespace().next().unwrap_or("").to_string();
        assert!(
            drip.contains(&format!("“{}", escape(&first))),
            "{t}: {subject}"
        );
    }
    let xmas = text(&files, "preview/scenario/xmas_2026.html");
    assert!(xmas.contains(">90%</text>") && xmas.contains(">10%</text>"));
    let fleet = text(&files, "preview/scenario/fleet_leads.html");
    assert!(fleet.contains("href=\"../cadence/fleet_followup.html\""));
}

#[test]
fn the_index_lists_every_message_with_its_subject() {
    let files = build(&campaigns(), "index");
    let index = text(&files, "preview/index.html");
    let mut emails = 0;
    for (path, bytes) in &files {
        let Some(rest) = path.strip_prefix("preview/") else {
            continue;
        };
        let Some(base) = rest.strip_suffix(".json") else {
            continue;
        };
        let m: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        let (template, persona) = (
            m["template"].as_str().expect("t"),
            m["persona"].as_str().expect("p"),
        );
        assert_eq!(base, format!("{template}/{persona}"));
        // The persona's row: its template, channel and kind, the persona
        // among those who get the same text, and the text.
        let head = format!(
            "data-template=\"{template}\" data-channel=\"{}\" data-kind=\"{}\" data-personas=\"",
            m["channel"].as_str().expect("channel"),
            m["kind"].as_str().expect("kind"),
        );
        let row = index
            .lines()
            .find(|l| {
                l.split_once(&head).is_some_and(|(_, rest)| {
                    rest.split('"')
                        .next()
                        .is_some_and(|ps| ps.split(' ').any(|p| p == persona))
                })
            })
            .unwrap_or_else(|| panic!("index has no row for {base}"));
        assert!(row.contains(&format!("href=\"{base}.html\"")), "{base}");
        if let Some(subject) = m["subject"].as_str() {
            emails += 1;
            assert!(
                row.contains(&format!("<td class=\"summary\">{}</td>", escape(subject))),
                "index lacks the subject of {base}: {subject}"
            );
        }
        if let Some(title) = m["title"].as_str() {
            assert!(index.contains(&escape(title)), "{base}");
        }
    }
    assert!(emails > 20, "{emails}");
    // No two rows of a template show the same text: personas who get the
    // same subject share a row.
    let mut seen = BTreeSet::new();
    for row in index.lines().filter(|l| l.contains("class=\"message\"")) {
        let template = row
            .split("data-template=\"")
            .nth(1)
            .and_then(|r| r.split('"').next());
        let summary = row.split("<td class=\"summary\">").nth(1);
        assert!(seen.insert((template, summary)), "repeated row: {row}");
    }
    assert!(
        index
            .lines()
            .filter(|l| l.contains("data-personas=\"") && l.contains(' '))
            .count()
            > 0
    );
    // The journeys come first, then the messages; filters by channel,
    // kind and persona, without a script.
    let journeys = index.find("<ul id=\"journeys\">").expect("journeys");
    assert!(journeys < index.find("<table id=\"messages\">").expect("messages"));
    assert!(!index.contains("<script"));
    for f in ["f-channel-email", "f-kind-marketing", "f-persona-marie"] {
        assert!(index.contains(&format!("id=\"{f}\"")), "{f}");
        assert!(index.contains(&format!("body:has(#{f}:checked)")), "{f}");
    }
    for p in ["marie", "sophie", "karim", "jeanne", "competitor_scout"] {
        assert!(index.contains(&format!("href=\"persona/{p}.html\"")), "{p}");
        assert!(files.contains_key(&format!("preview/persona/{p}.html")));
    }
}

#[test]
fn message_pages_show_each_channel_as_it_arrives() {
    let files = build(&campaigns(), "messages");
    let mut sms = 0;
    let mut overflowing = 0;
    for (path, bytes) in &files {
        let Some(base) = path
            .strip_suffix(".json")
            .filter(|p| p.starts_with("preview/"))
        else {
            continue;
        };
        let m: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        let (template, persona) = (
            m["template"].as_str().expect("t"),
            m["persona"].as_str().expect("p"),
        );
        let page = text(&files, &format!("{base}.html"));
        assert!(
            page.contains(&format!(
                "<main id=\"message\" data-template=\"{template}\" data-persona=\"{persona}\""
            )),
            "{base}"
        );
        assert!(page.contains(&format!(
            "<a id=\"persona-link\" href=\"../persona/{persona}.html\">"
        )));
        assert!(page.contains(&format!("<a href=\"{persona}.html\" aria-current=\"page\"")));
        assert!(page.contains("<nav id=\"persona-switcher\""));
        match m["channel"].as_str().expect("channel") {
            "email" => {
                assert!(
                    page.contains("<iframe class=\"desktop\" sandbox=\"\""),
                    "{base}"
                );
                assert!(
                    page.contains("<iframe class=\"mobile\" sandbox=\"\""),
                    "{base}"
                );
                let subject = m["subject"].as_str().expect("subject");
                assert!(page.contains(&format!("<dd id=\"subject\">{}</dd>", escape(subject))));
                assert!(page.contains("<pre id=\"text-part\">"), "{base}");
                // The sample's emails are a 600 px table: too wide for a
                // phone, and the mobile frame says so.
                let html = m["html"].as_str().unwrap_or("");
                if html.contains("width=\"600\"") {
                    assert!(
                        page.contains("class=\"badge warn overflow-warning\" data-width=\"600\""),
                        "{base}: no overflow warning"
                    );
                    overflowing += 1;
                }
            }
            "sms" => {
                sms += 1;
                let body = m["body"].as_str().expect("body");
                let (len, enc) = relance::render::sms_length(body);
                let parts = relance::render::sms_segments(len, enc);
                assert_eq!(m["sms"]["segments"], parts, "{base}");
                assert!(
                    page.contains(&format!("<div class=\"sms-bubble\">{}</div>", escape(body))),
                    "{base}"
                );
                assert!(
                    page.contains(&format!(
                        "<span class=\"sms-segments\" data-segments=\"{parts}\">{parts} SMS</span>"
                    )) || page.contains(&format!(
                        "<span class=\"sms-segments warn\" data-segments=\"{parts}\">{parts} SMS</span>"
                    )),
                    "{base}: no segment count"
                );
                assert!(page.contains(&format!("<span class=\"sms-length\">{len}</span>")));
            }
            "push" => {
                assert!(page.contains("<div class=\"push-card\">"), "{base}");
                let title = m["title"].as_str().expect("title");
                assert!(page.contains(&format!(
                    "<div class=\"push-title\">{}</div>",
                    escape(title)
                )));
            }
            "task" => assert!(page.contains("<article class=\"task-card\">"), "{base}"),
            "webhook" => {
                assert!(page.contains("<code class=\"webhook-url\">"), "{base}");
                assert!(
                    page.contains("<pre class=\"webhook-body\">{\n  &quot;"),
                    "{base}"
                );
            }
            other => panic!("{base}: channel {other}"),
        }
    }
    assert!(sms >= 5, "{sms}");
    assert!(overflowing > 0);
}

/// Every `href="…"` of every page points at a file of the build (and an
/// `#id` at an id of that page); nothing leaves the site.
fn check_links(files: &BTreeMap<String, Vec<u8>>, project: &str) {
    let mut pages = 0;
    for (path, bytes) in files.iter().filter(|(p, _)| p.ends_with(".html")) {
        pages += 1;
        let page = String::from_utf8_lossy(bytes);
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        for piece in page.split("href=\"").skip(1) {
            let href = &piece[..piece.find('"').expect("closed")];
            let (file, anchor) = href.split_once('#').unwrap_or((href, ""));
            assert!(
                !file.contains(':') && !file.starts_with('/'),
                "{project}/{path}: {href}"
            );
            let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
            for seg in file.split('/') {
                match seg {
                    ".." => {
                        parts.pop();
                    }
                    "" | "." => {}
                    s => parts.push(s),
                }
            }
            let target = if file.is_empty() {
                path.clone()
            } else {
                parts.join("/")
            };
            let Some(t) = files.get(&target) else {
                panic!("{project}/{path}: broken link {href}");
            };
            if !anchor.is_empty() {
                assert!(
                    String::from_utf8_lossy(t).contains(&format!("id=\"{anchor}\"")),
                    "{project}/{path}: no #{anchor} in {target}"
                );
            }
        }
    }
    assert!(pages > 0);
}

#[test]
fn every_link_resolves_in_the_sample_and_the_examples() {
    let mut projects = vec![campaigns()];
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&examples)
        .expect("examples")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    projects.extend(dirs);
    for (i, project) in projects.iter().enumerate() {
        let files = build(project, &format!("links{i}"));
        let name = project.display().to_string();
        check_links(&files, &name);
        let plan: Plan = serde_json::from_slice(&files["plan.json"]).expect("plan");
        for s in plan.scenarios.keys() {
            let svg = svg_of(&text(&files, &format!("preview/scenario/{s}.html")), s);
            assert_boxes_apart(&svg, s);
        }
        for c in plan.cadences.keys() {
            let svg = svg_of(&text(&files, &format!("preview/cadence/{c}.html")), c);
            assert_boxes_apart(&svg, c);
        }
    }
}

#[test]
fn two_builds_of_the_site_are_byte_identical() {
    let a = build(&campaigns(), "same-a");
    let b = build(&campaigns(), "same-b");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        assert!(b[k] == *v, "{k} differs between two builds");
    }
    assert!(a.keys().any(|k| k.starts_with("preview/scenario/")));
    assert!(a.keys().any(|k| k.starts_with("preview/cadence/")));
    assert!(a.keys().any(|k| k.starts_with("preview/persona/")));
}

/// Names that cannot be file names as they are (300 characters; names
/// Windows reserves) still give a site whose every link works, with
/// distinct, short file names.
#[test]
fn names_that_cannot_be_files_get_file_names_that_work() {
    let long = |c: char| format!("{c}{}", "_long".repeat(60));
    let (t_long, p_long, c_long, s_long) = (long('t'), long('p'), long('c'), long('s'));
    let project = temp_dir("names-project");
    std::fs::write(
        project.join("a.camp"),
        format!(
            "contact {{\n  email: email\n}}\n\
             list leads\n\
             persona con {{ email = \"con@example.com\" }}\n\
             persona {p_long} {{ email = \"long@example.com\" }}\n\
             persona lpt1 {{ email = \"lpt@example.com\" }}\n\
             template nul : task {{ body = \"Call {{{{email}}}}\" }}\n\
             template index : task {{ body = \"Index {{{{email}}}}\" }}\n\
             template com1 : task {{ body = \"Com {{{{email}}}}\" }}\n\
             template {t_long} : task {{ body = \"Long {{{{email}}}}\" }}\n\
             cadence {c_long} {{\n  touch {t_long}\n}}\n\
             cadence aux {{\n  touch nul\n}}\n\
             scenario {s_long} {{\n  trigger joined leads\n  start {c_long}\n}}\n\
             scenario prn {{\n  trigger joined leads\n  start aux\n}}\n"
        ),
    )
    .expect("write");
    let files = build(&project, "names");
    check_links(&files, "names");
    let reserved = ["con", "nul", "aux", "prn", "com1", "lpt1"];
    for path in files.keys() {
        for part in path.split('/') {
            assert!(part.len() <= 80, "{path}: `{part}` is too long");
            let stem = part.split('.').next().unwrap_or("");
            assert!(!reserved.contains(&stem), "{path}: `{part}` is reserved");
        }
    }
    // Short, usual names stay readable.
    assert!(files.contains_key("preview/index/lpt1-.html"));
    assert!(files.contains_key("preview/nul-/con-.html"));
    // Long names keep their start, readable, and stay distinct.
    let long_pages: BTreeSet<&String> = files
        .keys()
        .filter(|k| k.starts_with("preview/t_long_long") && k.ends_with(".html"))
        .collect();
    assert_eq!(long_pages.len(), 3, "{long_pages:?}");
}

#[test]
fn persona_pages_show_segments_expectations_and_scenarios() {
    let files = build(&campaigns(), "personas");
    let plan: Plan = serde_json::from_slice(&files["plan.json"]).expect("plan");
    let segments_of = |page: &str, inside: bool| -> BTreeSet<String> {
        let attr = format!("data-in=\"{inside}\"");
        page.split("data-segment=\"")
            .skip(1)
            .filter(|r| r.split('>').next().is_some_and(|tag| tag.contains(&attr)))
            .filter_map(|r| r.split('"').next().map(str::to_string))
            .collect()
    };
    let mut expects = 0;
    for (path, bytes) in &files {
        if !path.starts_with("preview/persona/") {
            continue;
        }
        let page = String::from_utf8_lossy(bytes);
        // Every segment once: in or out.
        let (inside, outside) = (segments_of(&page, true), segments_of(&page, false));
        assert!(inside.is_disjoint(&outside), "{path}");
        let all: BTreeSet<String> = inside.union(&outside).cloned().collect();
        let declared: BTreeSet<String> = plan.segments.keys().cloned().collect();
        assert_eq!(all, declared, "{path}");
        // The project builds, so every `expect` line holds.
        expects += page.matches("<tr data-held=\"true\">").count();
        assert!(!page.contains("data-held=\"false\""), "{path}");
        // Every scenario, entered or not.
        for name in &plan.scenario_order {
            assert!(
                page.contains(&format!("<tr data-scenario=\"{name}\" data-enters=\"")),
                "{path}: {name}"
            );
        }
    }
    assert!(expects >= 8, "{expects}");
    // Marie's expectations, as written in personas.camp, and her segments.
    let marie = text(&files, "preview/persona/marie.html");
    assert!(marie.contains("<code>expect marketable and not cold</code>"));
    assert!(marie.contains("data-segment=\"pros\" data-in=\"true\""));
    // The negative persona enters no scenario that sends marketing.
    let scout = text(&files, "preview/persona/competitor_scout.html");
    assert!(scout.contains("data-segment=\"undesirable\" data-in=\"true\""));
    assert!(scout.contains("<tr data-scenario=\"drip_offers\" data-enters=\"false\">"));
}
