//! Template rendering: golden previews, hostile persona data, every static
//! check of `relance::render`, and determinism.
//!
//! `BLESS=1 cargo test --test render` rewrites the golden files under
//! `tests/render/` from the current output. Review the diff before
//! committing: a change in escaping after a dependency upgrade must be a
//! deliberate one.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use relance::diagnostics::{FileId, Problems, SourceFile, SourceMap};
use relance::driver::check_sources;
use relance::render::{ProblemKind, RenderProject, TemplateProblem};
use relance::syntax::ast;

/// The reference time of every test: 2026-03-02T10:00:00Z.
const NOW: i64 = 1_772_445_600;

struct Project {
    sources: SourceMap,
    files: Vec<ast::File>,
    templates: BTreeMap<String, FileId>,
    check_errors: Vec<String>,
    plan: Option<relance::plan::Plan>,
}

impl Project {
    /// A project from `(path, text)` pairs: `.camp` files are checked, the
    /// others are template files.
    fn new(files: &[(&str, &str)]) -> Project {
        let mut sources = SourceMap::new();
        for (path, text) in files.iter().filter(|(p, _)| p.ends_with(".camp")) {
            sources.add(SourceFile::new(*path, *text));
        }
        let checked = check_sources(&sources, Problems::new(), 1);
        let mut templates = BTreeMap::new();
        for (path, text) in files.iter().filter(|(p, _)| !p.ends_with(".camp")) {
            let id = sources.add(SourceFile::new(*path, *text));
            templates.insert(path.to_string(), id);
        }
        Project {
            check_errors: checked
                .diagnostics
                .iter()
                .filter(|d| d.severity() == relance::diagnostics::Severity::Error)
                // Template diagnostics (E051x) are what these tests look at,
                // through `RenderProject` itself.
                .filter(|d| {
                    !d.code.as_str().starts_with("E051") && !d.code.as_str().starts_with("E052")
                })
                .map(|d| format!("{d}"))
                .collect(),
            sources,
            plan: checked.plan,
            files: checked.files,
            templates,
        }
    }

    /// Every file below `dir` (skipping `build/` and hidden folders).
    fn load(dir: &Path) -> Project {
        let mut found = Vec::new();
        walk(dir, dir, &mut found);
        found.sort();
        let owned: Vec<(String, String)> = found;
        let refs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        Project::new(&refs)
    }

    /// The project as `relance build` renders it (persona facts included).
    fn render(&self) -> RenderProject {
        let r = RenderProject::new(&self.sources, &self.files, &self.templates, NOW);
        r.init_facts(&self.sources, &self.files, NOW);
        r
    }

    /// The source text a problem points at.
    fn text(&self, p: &TemplateProblem) -> &str {
        self.sources.text(p.span)
    }

    fn path(&self, p: &TemplateProblem) -> &str {
        &self.sources.get(p.span.file).path
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "build" || name == "target" {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, out);
        } else if name.ends_with(".camp") || name.ends_with(".hbs") {
            let rel = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            out.push((rel, fs::read_to_string(&path).unwrap_or_default()));
        }
    }
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn blessing() -> bool {
    std::env::var_os("BLESS").is_some_and(|v| !v.is_empty() && v != "0")
}

fn problems(p: &Project) -> Vec<TemplateProblem> {
    p.render().check()
}

fn of_kind(ps: &[TemplateProblem], kind: ProblemKind) -> Vec<&TemplateProblem> {
    ps.iter().filter(|p| p.kind == kind).collect()
}

/// Shows problems for assertion messages.
fn show(p: &Project, ps: &[TemplateProblem]) -> String {
    ps.iter()
        .map(|pr| {
            format!(
                "{} {}:{}..{} `{}`: {}\n",
                pr.kind.code(),
                p.path(pr),
                pr.span.start,
                pr.span.end,
                p.text(pr),
                pr.message
            )
        })
        .collect()
}

// ------------------------------------------------------------ golden files

fn shop() -> Project {
    Project::load(&manifest().join("tests/render/shop"))
}

#[test]
fn golden_previews() {
    let p = shop();
    assert!(p.check_errors.is_empty(), "{:?}", p.check_errors);
    let (mut files, problems) = p.render().previews();
    assert!(
        problems.iter().all(|pr| !pr.is_error()),
        "{}",
        show(&p, &problems)
    );
    // As `relance build` writes them: with the flow pages.
    files.extend(relance::render::flow_pages(
        p.plan.as_ref().expect("a plan"),
    ));
    let expected_dir = manifest().join("tests/render/shop.expected");
    if blessing() {
        let _ = fs::remove_dir_all(&expected_dir);
        for (path, bytes) in &files {
            let full = expected_dir.join(path);
            fs::create_dir_all(full.parent().expect("parent")).expect("create dir");
            fs::write(&full, bytes).expect("write golden file");
        }
        return;
    }
    let mut on_disk = Vec::new();
    walk_all(&expected_dir, &expected_dir, &mut on_disk);
    on_disk.sort();
    let produced: Vec<&String> = files.keys().collect();
    assert_eq!(
        on_disk.iter().collect::<Vec<_>>(),
        produced,
        "the set of preview files changed; run `BLESS=1 cargo test --test render` and review the diff"
    );
    let mut changed = Vec::new();
    for (path, bytes) in &files {
        let want = fs::read(expected_dir.join(path)).unwrap_or_default();
        if &want != bytes {
            changed.push(path.clone());
        }
    }
    assert!(
        changed.is_empty(),
        "previews differ from tests/render/shop.expected: {changed:?}\n\
         (an escaping change after a dependency upgrade shows up here; \
         if the change is intended, run `BLESS=1 cargo test --test render` and review the diff)"
    );
}

fn walk_all(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            walk_all(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn hostile_data_is_escaped_in_html_and_untouched_elsewhere() {
    let p = shop();
    let r = p.render();
    let m = r.render_one("welcome", "mallory").expect("renders");
    let html = m.html.as_deref().unwrap_or("");
    assert!(
        html.contains("Hello &lt;script&gt;alert(1)&lt;/script&gt;,"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("<strong>&quot; onmouseover&#x3D;&quot;alert(1)</strong>"),
        "{html}"
    );
    assert!(!html.contains("\" onmouseover"), "{html}");
    // A `javascript:` value cannot become a live link.
    assert!(
        html.contains("<a href=\"unsafe:javascript:alert(1)\">unsafe:javascript:alert(1)</a>"),
        "{html}"
    );
    assert!(!html.contains("\"javascript:"), "{html}");
    assert!(
        html.contains("<li>0: &lt;b&gt;bold&lt;/b&gt;</li>"),
        "{html}"
    );
    assert!(html.contains("<li>1: A &amp; b</li>"), "{html}");
    // Subjects are not escaped: they are not HTML.
    assert_eq!(
        m.subject.as_deref(),
        Some("Welcome, <script>alert(1)</script>!")
    );
    // The derived text part shows the text as typed.
    let text = m.text.as_deref().unwrap_or("");
    assert!(text.contains("Hello <script>alert(1)</script>,"), "{text}");

    let sms = r.render_one("promo_sms", "mallory").expect("renders");
    assert_eq!(
        sms.body.as_deref(),
        Some("<script>alert(1)</script>, -10% today only: https://shop.example/o STOP 36180")
    );
    let push = r.render_one("cart", "mallory").expect("renders");
    assert_eq!(
        push.body.as_deref(),
        Some("<script>alert(1)</script>, your cart is waiting")
    );
    let task = r.render_one("call_me", "mallory").expect("renders");
    assert!(
        task.body
            .as_deref()
            .is_some_and(|b| b.starts_with("Call <script>"))
    );

    let hook = r.render_one("crm", "mallory").expect("renders");
    let body = hook.body.as_deref().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).expect("webhook body is valid JSON");
    assert_eq!(v["first_name"], "<script>alert(1)</script>");
    assert_eq!(v["company"], "\" onmouseover=\"alert(1)");
    assert_eq!(v["sku"], "\"}, \"admin\": true, \"x\": \"");
    assert!(v.get("admin").is_none());

    // The preview page never runs the message's scripts.
    let (files, _) = r.previews();
    let page = String::from_utf8(files["preview/welcome/mallory.html"].clone()).expect("utf-8");
    for class in ["desktop", "mobile"] {
        assert!(
            page.contains(&format!("<iframe class=\"{class}\" sandbox=\"\"")),
            "{page}"
        );
    }
    assert_eq!(
        page.matches("<iframe").count(),
        page.matches("sandbox=\"\"").count()
    );
    // The HTML is only in `srcdoc`, escaped; the subject too.
    assert!(page.contains("srcdoc=\"<!DOCTYPE") || page.contains("srcdoc=\"&lt;"));
    assert!(page.contains("Welcome, &lt;script&gt;alert(1)&lt;/script&gt;!"));
    // No page of the site carries a script: not the message's, not the
    // persona's data.
    for (path, bytes) in &files {
        if path.ends_with(".html") {
            let page = String::from_utf8_lossy(bytes);
            assert!(!page.contains("<script"), "{path}: {page}");
            assert!(!page.contains("\" onmouseover"), "{path}: {page}");
        }
    }
    let persona = String::from_utf8_lossy(&files["preview/persona/mallory.html"]).into_owned();
    assert!(
        persona.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{persona}"
    );
    // The doc comment too, on the persona page and wherever it is quoted.
    assert!(
        persona.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{persona}"
    );
    for (path, bytes) in &files {
        assert!(
            !String::from_utf8_lossy(bytes).contains("<img src=x"),
            "{path}"
        );
    }
    let sms = String::from_utf8_lossy(&files["preview/promo_sms/mallory.html"]).into_owned();
    assert!(
        sms.contains("<div class=\"sms-bubble\">&lt;script&gt;alert(1)&lt;/script&gt;, -10%"),
        "{sms}"
    );
}

#[test]
fn previews_are_deterministic() {
    let a = shop().render().previews();
    let b = shop().render().previews();
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    let r = shop().render();
    assert_eq!(r.previews().0, r.previews().0);
    for (path, bytes) in &a.0 {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(&*manifest().to_string_lossy()),
            "{path} holds an absolute path"
        );
    }
}

#[test]
fn every_template_for_every_persona() {
    let (files, _) = shop().render().previews();
    for t in ["welcome", "receipt", "promo_sms", "cart", "call_me", "crm"] {
        for p in ["marie", "mallory"] {
            if (t, p) == ("cart", "mallory") {
                continue;
            }
            assert!(
                files.contains_key(&format!("preview/{t}/{p}.html")),
                "{t}/{p}"
            );
            assert!(
                files.contains_key(&format!("preview/{t}/{p}.json")),
                "{t}/{p}"
            );
        }
    }
    assert!(files.contains_key("preview/welcome/marie.txt"));
    assert!(!files.contains_key("preview/promo_sms/marie.txt"));
    let index = String::from_utf8_lossy(&files["preview/index.html"]).into_owned();
    assert!(
        index.contains("Marie runs a garage in Lyon and buys every month."),
        "{index}"
    );
    assert!(index.contains("href=\"welcome/marie.html\""), "{index}");
    // `consent push = plan == pro` fails for Mallory (free): no preview of
    // the marketing push `cart`, and the index says why (§12).
    assert!(!files.contains_key("preview/cart/mallory.html"));
    assert!(!files.contains_key("preview/cart/mallory.json"));
    assert!(files.contains_key("preview/cart/marie.html"));
    assert!(
        index.contains("data-personas=\"mallory\" data-no-consent=\"mallory\"")
            && index.contains("no preview for mallory: the <code>consent push</code> rule (<code>plan == pro</code>) does not hold"),
        "{index}"
    );
    // Transactional and operational messages need no consent.
    assert!(files.contains_key("preview/receipt/mallory.html"));
    let mallory = String::from_utf8_lossy(&files["preview/persona/mallory.html"]).into_owned();
    assert!(
        mallory.contains("<li data-channel=\"push\">no marketing on push: <code>consent push = plan == pro</code>"),
        "{mallory}"
    );
    let marie = String::from_utf8_lossy(&files["preview/persona/marie.html"]).into_owned();
    assert!(!marie.contains("no-consent"), "{marie}");
}

#[test]
fn render_one_reports_unknown_names() {
    let r = shop().render();
    let e = r.render_one("welcom", "marie").expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "no template is named `welcom`; did you mean `welcome`?"
    );
    let e = r.render_one("welcome", "mari").expect_err("unknown");
    assert_eq!(
        e.to_string(),
        "no persona is named `mari`; did you mean `marie`?"
    );
    let m = r.render_one("receipt", "marie").expect("renders");
    // The latest purchase feeds `trigger`.
    assert_eq!(m.subject.as_deref(), Some("Receipt for CABLE-2"));
    assert!(m.to_string().contains("Subject: Receipt for CABLE-2"));
}

#[test]
fn campaigns_render_cleanly() {
    let p = Project::load(&manifest().join("campaigns"));
    assert!(p.check_errors.is_empty(), "{:?}", p.check_errors);
    let r = p.render();
    let (files, problems) = r.previews();
    assert!(problems.is_empty(), "{}", show(&p, &problems));
    let html = files.keys().filter(|k| k.ends_with(".html")).count();
    // Personas for whom a consent rule fails get no page of that message
    // (`consent sms = sms_opt_in`); the index names them.
    let index = String::from_utf8_lossy(&files["preview/index.html"]).into_owned();
    let withheld: usize = index
        .split("data-no-consent=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or("").split(' ').count())
        .sum();
    assert!(
        withheld > 0,
        "the sample project has personas without SMS consent"
    );
    // A page per message, per persona, and the index.
    assert_eq!(
        html + withheld,
        r.templates().count() * r.personas().count() + r.personas().count() + 1
    );
}

// ---------------------------------------------------------- static checks

const BASE: &str = r#"
workspace { name = "Shop", address = "1 rue de la Paix, Paris" }
contact {
  email: email
  phone: phone?
  device: device?
  first_name: text?
  plan: enum(free, pro)
  interests: set<text>
}
event purchase { amount: number, sku: text }
persona marie { email = "marie@example.com", phone = "+33612345678", first_name = "Marie", plan = pro, interests = ["gps"] }
consent sms = true
"#;

/// A project made of BASE, `decls` and template files.
fn with(decls: &str, files: &[(&str, &str)]) -> Project {
    let camp = format!("{BASE}{decls}");
    let mut all: Vec<(&str, &str)> = vec![("shop.camp", camp.as_str())];
    all.extend_from_slice(files);
    let p = Project::new(&all);
    assert!(p.check_errors.is_empty(), "{:?}", p.check_errors);
    p
}

/// A marketing email whose HTML is `html` (a file) with a footer partial.
fn email(html: &str) -> Project {
    with(
        r#"template t : email { subject = "S", html = file("t.html.hbs") }"#,
        &[
            ("t.html.hbs", html),
            (
                "templates/partials/footer.hbs",
                "<a href=\"{{unsubscribe_url}}\">x</a>",
            ),
        ],
    )
}

#[test]
fn e0510_unknown_variable_in_a_file() {
    let p = email("<p>Hi {{frist_name}}</p>\n{{> footer}}");
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::UnknownVariable);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert_eq!(p.path(found[0]), "t.html.hbs");
    assert_eq!(p.text(found[0]), "frist_name");
    assert_eq!(found[0].help.as_deref(), Some("did you mean `first_name`?"));
    assert_eq!(ProblemKind::UnknownVariable.code(), "E0510");
}

#[test]
fn e0510_unknown_variable_inline_with_escapes() {
    let p = with(
        r#"template s : sms { body = "\"Hi\"\t\u{e9} {{frist_name}} {{links.nope}}", link offer = "https://a.example" }"#,
        &[],
    );
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::UnknownVariable);
    assert_eq!(found.len(), 2, "{}", show(&p, &ps));
    assert_eq!(p.path(found[0]), "shop.camp");
    assert_eq!(p.text(found[0]), "frist_name");
    assert_eq!(p.text(found[1]), "links.nope");
    assert_eq!(found[1].message, "template `s` has no link `nope`");
}

#[test]
fn e0510_variables_in_blocks() {
    let p = email(
        "{{#each interests}}{{this}} {{@index}} {{first_name}} {{@root.plan}}{{/each}}\
         {{@index}} {{workspace.nme}} {{trigger.sku}} {{trigger.nope}} {{> footer}}",
    );
    let ps = problems(&p);
    let found: Vec<&str> = of_kind(&ps, ProblemKind::UnknownVariable)
        .iter()
        .map(|pr| p.text(pr))
        .collect();
    assert_eq!(
        found,
        ["first_name", "@index", "workspace.nme", "trigger.nope"],
        "{}",
        show(&p, &ps)
    );
    let inner = &of_kind(&ps, ProblemKind::UnknownVariable)[0];
    assert!(
        inner
            .help
            .as_deref()
            .is_some_and(|h| h.contains("@root.first_name"))
    );
}

#[test]
fn e0510_trigger_fields_follow_the_sending_scenarios() {
    let p = with(
        r#"
        template r : email { kind = transactional, subject = "{{trigger.sku}} {{trigger.at}} {{trigger.path}}", html = "x" }
        scenario s { trigger event purchase, send r }
        "#,
        &[],
    );
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::UnknownVariable);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert_eq!(p.text(found[0]), "trigger.path");
    assert!(
        found[0]
            .message
            .contains("every event that triggers a scenario sending `r`")
    );
}

#[test]
fn e0511_unknown_helper() {
    let p = email("{{shout first_name}} {{#first_name}}x{{/first_name}} {{> footer}}");
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::UnknownHelper);
    assert_eq!(found.len(), 2, "{}", show(&p, &ps));
    assert_eq!(p.text(found[0]), "shout");
    assert_eq!(p.text(found[1]), "first_name");
    assert!(
        found[1]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("{{#if first_name}}"))
    );
    // A template with an unknown helper is not rendered.
    assert!(p.render().render_one("t", "marie").is_err());
}

#[test]
fn e0512_unknown_partial() {
    let p = email("{{> foter}} {{> footer}}");
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::UnknownPartial);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert_eq!(p.text(found[0]), "foter");
    assert_eq!(found[0].help.as_deref(), Some("did you mean `footer`?"));
}

#[test]
fn e0513_partial_cycle() {
    let p = with(
        r#"template t : email { subject = "S", html = "{{> a}} {{unsubscribe_url}}" }"#,
        &[
            ("templates/partials/a.hbs", "A {{> b}}"),
            ("templates/partials/b.hbs", "B {{> a}}"),
            ("templates/partials/c.hbs", "C {{> c}}"),
        ],
    );
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::PartialCycle);
    assert_eq!(found.len(), 2, "{}", show(&p, &ps));
    assert_eq!(found[0].message, "partials include each other: a → b → a");
    assert_eq!(p.path(found[0]), "templates/partials/b.hbs");
    assert_eq!(p.text(found[0]), "a");
    assert_eq!(found[1].message, "partial `c` includes itself");
    // Rendering refuses instead of recursing forever.
    let r = p.render();
    assert!(r.render_one("t", "marie").is_err());
    let (files, _) = r.previews();
    assert!(!files.contains_key("preview/t/marie.html"));
}

#[test]
fn e0514_syntax_errors_point_into_the_file() {
    for (src, at) in [
        ("<p>{{#if first_name}}Hi</p>", "{{#if first_name}}"),
        ("<p>{{#if first_name}}Hi{{/each}}</p>", "{{/each}}"),
        ("line one\n<p>{{first_name</p>", "{{"),
    ] {
        let p = email(src);
        let ps = problems(&p);
        let found = of_kind(&ps, ProblemKind::SyntaxError);
        assert_eq!(found.len(), 1, "{src}: {}", show(&p, &ps));
        assert_eq!(p.path(found[0]), "t.html.hbs");
        assert_eq!(p.text(found[0]), at, "{src}");
    }
    // Deep nesting is refused before it reaches Handlebars' parser.
    let deep = "{{#if first_name}}".repeat(10_000);
    let p = email(&deep);
    let ps = problems(&p);
    assert_eq!(
        of_kind(&ps, ProblemKind::SyntaxError).len(),
        1,
        "{}",
        show(&p, &ps)
    );
}

#[test]
fn e0515_marketing_email_without_unsubscribe() {
    let p = with(
        r#"
        template m : email { subject = "S", html = "<p>Hi</p>" }
        template t : email { kind = transactional, subject = "S", html = "<p>Hi</p>" }
        template f : email { subject = "S", html = "<p>Hi</p>{{> footer}}" }
        "#,
        &[(
            "templates/partials/footer.hbs",
            "<a href=\"{{unsubscribe_url}}\">x</a>",
        )],
    );
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::MissingUnsubscribe);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert_eq!(
        found[0].message,
        "marketing email `m` has no unsubscribe link"
    );
    assert_eq!(p.text(found[0]), "\"<p>Hi</p>\"");
}

#[test]
fn e0516_line_break_in_a_rendered_header() {
    let p = with(
        r#"
        persona bob { email = "bob@example.com", first_name = "Bob\nBcc: x@evil.example", plan = free, interests = [] }
        template t : email { kind = transactional, subject = "Hi {{first_name}}", html = "x" }
        template f : email { kind = transactional, subject = file("subject.hbs"), html = "x" }
        template g : push { title = file("title.hbs"), body = "b" }
        "#,
        &[("subject.hbs", "Hello\n"), ("title.hbs", "Line\nbreak\n")],
    );
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::HeaderLineBreak);
    assert_eq!(found.len(), 2, "{}", show(&p, &ps));
    assert_eq!(
        found[0].message,
        "the subject of `t` contains a line break when rendered for persona `bob`"
    );
    assert_eq!(p.text(found[0]), "\"Hi {{first_name}}\"");
    assert!(
        found[1].message.starts_with("the title of `g`"),
        "{}",
        found[1].message
    );
    // A subject file's final line break is not part of the subject.
    let m = p.render().render_one("f", "marie").expect("renders");
    assert_eq!(m.subject.as_deref(), Some("Hello"));
}

#[test]
fn e0517_invalid_helper_calls() {
    let p = email(
        "{{date first_name \"%K\"}} {{default first_name}} {{number 3 \"x\"}} {{#if first_name}}{{upper first_name first_name}}{{/if}} {{> footer}}",
    );
    let ps = problems(&p);
    let found: Vec<&str> = of_kind(&ps, ProblemKind::InvalidHelperCall)
        .iter()
        .map(|pr| p.text(pr))
        .collect();
    assert_eq!(
        found,
        [
            "\"%K\"",
            "{{default first_name}}",
            "\"x\"",
            "{{upper first_name first_name}}"
        ],
        "{}",
        show(&p, &ps)
    );
}

#[test]
fn e0518_template_files_missing_or_outside() {
    let p = with(
        r#"
        template a : email { subject = "S", html = file("nope.hbs") }
        template b : email { subject = "S", html = file("../outside.hbs") }
        "#,
        &[],
    );
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::MissingTemplateFile);
    assert_eq!(found.len(), 2, "{}", show(&p, &ps));
    assert_eq!(found[0].message, "template file `nope.hbs` not found");
    assert_eq!(p.text(found[0]), "\"nope.hbs\"");
    assert_eq!(
        found[1].message,
        "`../outside.hbs` is outside the project folder"
    );
}

#[test]
fn w0510_optional_field_without_default_or_guard() {
    let p = email(
        "{{first_name}} {{upper first_name}}\
         {{default first_name \"you\"}} {{#if first_name}}{{first_name}}{{/if}}\
         {{#unless first_name}}x{{else}}{{first_name}}{{/unless}}\
         {{#if (eq first_name \"x\")}}y{{/if}} {{#with first_name}}{{this}}{{/with}}\
         {{#if first_name}}{{> greet}}{{/if}} {{> footer}}",
    );
    let p2 = Project::new(&[
        (
            "shop.camp",
            &*format!(
                "{BASE}template t : email {{ subject = \"S\", html = file(\"t.html.hbs\") }}"
            ),
        ),
        (
            "t.html.hbs",
            p.sources.get(p.templates["t.html.hbs"]).text.as_ref(),
        ),
        (
            "templates/partials/footer.hbs",
            "<a href=\"{{unsubscribe_url}}\">x</a>",
        ),
        ("templates/partials/greet.hbs", "Hi {{first_name}}"),
    ]);
    let ps = problems(&p2);
    let found = of_kind(&ps, ProblemKind::OptionalWithoutDefault);
    assert_eq!(found.len(), 2, "{}", show(&p2, &ps));
    assert!(found.iter().all(|pr| p2.text(pr) == "first_name"));
    assert_eq!(found[0].span.start, 2);
    assert_eq!(
        found[0].message,
        "optional field `first_name` is used without a default"
    );
    assert!(!found[0].is_error());
}

#[test]
fn w0511_triple_stash_on_contact_data() {
    let p = with(
        r#"
        template t : email { subject = "{{{first_name}}}", html = "{{{plan}}} {{{workspace.address}}} {{& first_name}} <a href='{{unsubscribe_url}}'>x</a>" }
        template w : webhook { url = "https://crm.example/h", body = "{\"p\": \"{{{plan}}}\"}" }
        "#,
        &[],
    );
    let ps = problems(&p);
    let found: Vec<&str> = of_kind(&ps, ProblemKind::TripleStash)
        .iter()
        .map(|pr| p.text(pr))
        .collect();
    assert_eq!(
        found,
        ["{{{plan}}}", "{{& first_name}}", "{{{plan}}}"],
        "{}",
        show(&p, &ps)
    );
}

#[test]
fn w0512_sms_too_long() {
    let long = "x".repeat(150);
    let p = with(
        &format!(
            r#"
            persona anna {{ email = "a@example.com", phone = "+33611111111", first_name = "Anna-Maria-Magdalena", plan = free, interests = [] }}
            template s : sms {{ body = "{long} {{{{default first_name \"\"}}}}" }}
            template u : sms {{ body = "Fête des pères : {long_ucs}" }}
            template ok : sms {{ body = "Hi {{{{default first_name \"\"}}}}" }}
            "#,
            long_ucs = "y".repeat(60)
        ),
        &[],
    );
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::SmsTooLong);
    assert_eq!(found.len(), 2, "{}", show(&p, &ps));
    assert_eq!(
        found[0].message,
        "SMS `s` is 171 GSM-7 characters long for persona `anna`, more than the 160 of one message; also too long for `marie` (157)"
            .replace("; also too long for `marie` (157)", "")
    );
    assert_eq!(
        found[1].message,
        "SMS `u` is 77 UCS-2 characters long for persona `anna`, more than the 70 of one message; also too long for `marie` (77)"
    );
}

#[test]
fn problems_become_diagnostics_once_registered() {
    let p = email("{{frist_name}} {{> footer}}");
    for pr in problems(&p) {
        // `None` until the codes are in the registry; then a diagnostic
        // with the same code, span and message.
        if let Some(d) = pr.clone().into_diagnostic() {
            assert_eq!(d.code.as_str(), pr.kind.code());
            assert_eq!(d.primary.map(|l| l.span), Some(pr.span));
        }
    }
}

#[test]
fn odd_templates_never_panic() {
    let inputs = [
        "{{",
        "}}",
        "{{{",
        "{{{{",
        "{{{{raw}}}}",
        "{{#if}}",
        "{{/if}}",
        "{{else}}",
        "{{> }}",
        "{{> (lookup this \"x\")}}",
        "{{#> layout}}fallback{{/layout}}",
        "{{#*inline \"p\"}}{{> p}}{{/inline}}{{> p}}",
        "{{lookup links \"x\"}}",
        "{{../../../x}}",
        "{{@root}}",
        "{{this.[a b]}}",
        "{{[weird name]}}",
        "{{x.[0].y}}",
        "{{interests.[0]}}",
        "\\{{first_name}}",
        "\\\\{{first_name}}",
        "{{!-- {{x}} --}}",
        "{{date}}",
        "{{number}}",
        "{{date first_name}}",
        "{{number first_name 99}}",
        "{{#each}}{{/each}}",
        "{{#with}}{{/with}}",
        "{{#each interests as |i n|}}{{i}}{{n}}{{/each}}",
        "{{x (y (z))}}",
        "{{x [1, [2]]}}",
        "{{x {\"a\": 1}}}",
        "{{~x~}}",
        "{{'a'}}",
        "{{-1}}",
        "{{true}}",
        "\u{0}{{\u{0}}}",
        "é{{é}}",
        "{{#if a}}{{else if b}}{{else}}{{/if}}",
        "{{^}}",
        "{{#unless}}{{^}}{{/unless}}",
    ];
    for src in inputs {
        let p = Project::new(&[
            (
                "shop.camp",
                &*format!(
                    "{BASE}template t : email {{ subject = \"S\", html = file(\"t.hbs\") }}\ntemplate u : sms {{ body = file(\"t.hbs\") }}"
                ),
            ),
            ("t.hbs", src),
        ]);
        let r = p.render();
        let _ = r.previews();
        let _ = r.render_one("t", "marie");
    }
}

/// Handlebars fragments glued together: whatever comes out, nothing panics
/// and every span lies inside its file on character boundaries.
#[test]
fn token_soup_never_panics() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed, TestRunner};

    const FRAGMENTS: &[&str] = &[
        "{{",
        "}}",
        "{{{",
        "}}}",
        "{",
        "}",
        "#if ",
        "/if",
        "#each ",
        "/each",
        "#with ",
        "else",
        "^",
        "first_name",
        "plan",
        "interests",
        "links.x",
        "trigger.sku",
        "@index",
        "@root.",
        "../",
        "this",
        " ",
        "\"",
        "'",
        "(",
        ")",
        "> ",
        "footer",
        "~",
        "\\",
        "!",
        "--",
        "&",
        "[",
        "]",
        "=",
        "|",
        " as |a b|",
        "é",
        "🚗",
        "\n",
        "\r",
        "*inline \"p\"",
        "default",
        "date",
        "number",
        "upper",
        "2",
        "\"%d\"",
        "<a href=\"",
        "javascript:",
        "<p>",
    ];
    let camp = format!(
        "{BASE}template t : email {{ subject = file(\"s.hbs\"), html = file(\"t.hbs\") }}\n\
         template u : sms {{ body = file(\"t.hbs\") }}\n\
         template w : webhook {{ url = \"https://x.example\", body = file(\"t.hbs\") }}"
    );
    let mut runner = TestRunner::new(Config {
        // `RELANCE_FUZZ_CASES=20000 cargo test --release --test render` for a long run.
        cases: std::env::var("RELANCE_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
        rng_seed: RngSeed::Fixed(0x5eed_0006),
        failure_persistence: None,
        ..Config::default()
    });
    let soup = proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40)
        .prop_map(|v| v.concat());
    let result = runner.run(&(soup.clone(), soup), |(body, partial)| {
        let p = Project::new(&[
            ("shop.camp", camp.as_str()),
            ("t.hbs", body.as_str()),
            ("s.hbs", body.as_str()),
            ("templates/partials/footer.hbs", partial.as_str()),
        ]);
        let r = p.render();
        let (_, problems) = r.previews();
        for pr in &problems {
            let file = p.sources.get(pr.span.file);
            let (s, e) = (pr.span.start as usize, pr.span.end as usize);
            prop_assert!(s <= e && e <= file.text.len(), "{pr:?}");
            prop_assert!(
                file.text.is_char_boundary(s) && file.text.is_char_boundary(e),
                "{pr:?}"
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn a_broken_schema_silences_unknown_variables() {
    // The contact block has a syntax error: its fields are unknown, so a
    // template using them reports nothing more than the syntax error.
    let camp = r#"
workspace { name = "Shop", address = "1 rue de la Paix, Paris" }
contact { email: email, first_name text? }
template t : sms { body = "Hi {{first_name}} {{links.nope}}" }
"#;
    let p = Project::new(&[("shop.camp", camp)]);
    assert!(!p.check_errors.is_empty());
    let ps = problems(&p);
    let found: Vec<&str> = ps.iter().map(|pr| p.text(pr)).collect();
    assert_eq!(found, ["links.nope"], "{}", show(&p, &ps));
}

#[test]
fn e0514_partials_nesting_too_deep() {
    // A chain of 100 partials, each including the next: no cycle, but
    // rendering it would recurse 100 levels deep.
    let bodies: Vec<(String, String)> = (0..100)
        .map(|i| {
            (
                format!("templates/partials/p{i}.hbs"),
                format!("{{{{#if first_name}}}}{{{{> p{}}}}}{{{{/if}}}}", i + 1),
            )
        })
        .collect();
    let mut files: Vec<(&str, &str)> = bodies
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    files.push(("templates/partials/p100.hbs", "end"));
    let p = with(r#"template t : sms { body = "{{> p0}}" }"#, &files);
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::SyntaxError);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert!(
        found[0].message.contains("nest more than 64 levels"),
        "{}",
        found[0].message
    );
    assert!(p.render().render_one("t", "marie").is_err());
}

/// The body of task `t` (`body`) rendered for `marie`.
fn task_body(body: &str) -> String {
    let p = with(
        &format!(
            "template t : task {{ body = \"{}\" }}\n",
            body.replace('\\', "\\\\").replace('"', "\\\"")
        ),
        &[],
    );
    let ps = problems(&p);
    let errors: Vec<_> = ps
        .iter()
        .filter(|x| x.kind.severity() == relance::diagnostics::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{body}: {}", show(&p, &ps));
    let m = p.render().render_one("t", "marie").expect("renders");
    m.body.unwrap_or_default()
}

#[test]
fn templates_behave_like_handlebars_js() {
    // Arrays print joined with `,`, objects as `[object Object]`.
    assert_eq!(
        task_body("{{interests}}|{{tags}}|{{workspace}}"),
        "gps||[object Object]"
    );
    // An empty array is false, an empty object true (marie has no events).
    assert_eq!(
        task_body("{{#if tags}}t{{else}}f{{/if}}{{#if trigger}}T{{/if}}"),
        "fT"
    );
    // `{{.}}` and `{{this}}`; `@key` over an array is the index.
    assert_eq!(
        task_body("{{#each interests}}{{@key}}:{{.}}/{{this}}{{/each}}"),
        "0:gps/gps"
    );
    // Half away from zero.
    assert_eq!(task_body("{{number 2.5 0}} {{number 0.125 2}}"), "3 0.13");
}

#[test]
fn each_over_links_follows_declaration_order() {
    let p = with(
        r#"template t : sms { body = "{{#each links}}{{@key}}={{this}} {{/each}}", link zeta = "https://z.example", link alpha = "https://a.example" }"#,
        &[],
    );
    let m = p.render().render_one("t", "marie").expect("renders");
    assert_eq!(
        m.body.as_deref(),
        Some("zeta=https://z.example alpha=https://a.example ")
    );
}

#[test]
fn e0510_length_of_a_list_points_to_len() {
    let p = with(
        r#"template t : task { body = "{{interests.length}}" }"#,
        &[],
    );
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::UnknownVariable);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert!(
        found[0]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("{{len interests}}")),
        "{}",
        show(&p, &ps)
    );
}

#[test]
fn e0514_lists_each_expectation_once() {
    let p = with(r#"template t : task { body = "{{}}" }"#, &[]);
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::SyntaxError);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert_eq!(
        found[0].message.matches("a name").count(),
        1,
        "{}",
        show(&p, &ps)
    );
    assert!(!found[0].message.contains("_item"), "{}", show(&p, &ps));
}

#[test]
fn link_and_webhook_urls_are_rendered_and_encoded() {
    let p = with(
        r#"template t : sms { body = "{{links.me}}", link me = "https://a.example/u/{{first_name}}?plan={{plan}}&e={{email}}" }
template w : webhook { url = "https://hook.example/{{email}}", body = "{}" }"#,
        &[],
    );
    let ps = problems(&p);
    assert!(
        of_kind(&ps, ProblemKind::RenderedUrl).is_empty(),
        "{}",
        show(&p, &ps)
    );
    let r = p.render();
    let m = r.render_one("t", "marie").expect("renders");
    assert_eq!(
        m.body.as_deref(),
        Some("https://a.example/u/Marie?plan=pro&e=marie%40example.com")
    );
    let m = r.render_one("w", "marie").expect("renders");
    assert_eq!(
        m.url.as_deref(),
        Some("https://hook.example/marie%40example.com")
    );
}

#[test]
fn e0520_url_without_host_once_rendered() {
    let p = with(
        r#"template t : sms { body = "{{links.me}}", link me = "https://{{#if device}}{{device}}{{/if}}/x" }"#,
        &[],
    );
    let ps = p.render().check();
    let found = of_kind(&ps, ProblemKind::RenderedUrl);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert!(
        found[0].message.contains("link `me`"),
        "{}",
        found[0].message
    );
    assert!(
        found[0].message.contains("persona `marie`"),
        "{}",
        found[0].message
    );
    assert_eq!(ProblemKind::RenderedUrl.code(), "E0520");
}

#[test]
fn check_reports_a_body_that_fails_to_render() {
    // The format comes from the contact: only rendering finds it invalid.
    let p = with(
        r#"persona odd { email = "o@example.com", first_name = "%K", plan = free, interests = [] }
template t : email { kind = transactional, subject = "S", html = "<p>{{date \"2026-01-01T00:00:00Z\" first_name}}</p>" }"#,
        &[],
    );
    let ps = p.render().check();
    let found = of_kind(&ps, ProblemKind::InvalidHelperCall);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert!(
        found[0].message.contains("persona `odd`"),
        "{}",
        show(&p, &ps)
    );
}

#[test]
fn lookup_needs_a_key_and_bracketed_partials_render() {
    let p = with(
        r#"template a : task { body = "{{lookup this}}" }
template b : task { body = "{{> [my partial]}}|{{> 'my partial'}}" }"#,
        &[("templates/partials/my partial.hbs", "P{{plan}}")],
    );
    let ps = p.render().check();
    let found = of_kind(&ps, ProblemKind::InvalidHelperCall);
    assert_eq!(found.len(), 1, "{}", show(&p, &ps));
    assert_eq!(p.text(found[0]), "{{lookup this}}");
    let m = p.render().render_one("b", "marie").expect("renders");
    assert_eq!(m.body.as_deref(), Some("Ppro|Ppro"));
}

#[test]
fn w0511_triple_stash_through_lookup() {
    let p = email(
        r#"<p>{{{lookup this "first_name"}}} {{{lookup @root "plan"}}} {{{lookup this "unsubscribe_url"}}}</p>{{> footer}}"#,
    );
    let ps = problems(&p);
    let found = of_kind(&ps, ProblemKind::TripleStash);
    assert_eq!(found.len(), 2, "{}", show(&p, &ps));
}

#[test]
fn e0521_rendering_is_bounded_in_size_and_work() {
    let long = "x".repeat(60_000);
    let items: Vec<String> = (0..20).map(|i| format!("\"i{i}\"")).collect();
    let decls = format!(
        r#"persona big {{ email = "b@example.com", first_name = "{long}", plan = free, interests = [{}] }}
template size : task {{ body = "{{{{#each interests}}}}{{{{@root.first_name}}}}{{{{/each}}}}" }}
template work : task {{ body = "{{{{#each interests}}}}{{{{#each @root.interests}}}}{{{{#each @root.interests}}}}{{{{#each @root.interests}}}}{{{{/each}}}}{{{{/each}}}}{{{{/each}}}}{{{{/each}}}}" }}"#,
        items.join(", ")
    );
    let p = with(&decls, &[]);
    let ps = p.render().check();
    let found = of_kind(&ps, ProblemKind::RenderTooLarge);
    assert_eq!(found.len(), 2, "{}", show(&p, &ps));
    assert!(
        found.iter().all(|f| f.message.contains("persona `big`")),
        "{}",
        show(&p, &ps)
    );
    assert!(
        found.iter().any(|f| f.message.contains("KiB")),
        "{}",
        show(&p, &ps)
    );
    assert!(
        found.iter().any(|f| f.message.contains("iterations")),
        "{}",
        show(&p, &ps)
    );
}

/// §12: a persona renders in its locale (`en-GB` picks `en`); `relance
/// check` renders every variant, so a variant no persona reads (`de`) is
/// still checked; the preview index shows every locale of a template.
#[test]
fn locales_render_each_persona_in_its_locale_and_check_every_variant() {
    let long = "Ihr Bestätigungscode ist unterwegs. ".repeat(6);
    let camp = format!(
        r#"
workspace {{ name = "Shop", address = "1 rue X", locales = [fr, en, de], locale = lang }}
contact {{ email: email, phone: phone?, lang: text? }}
persona marie {{ email = "m@example.com", phone = "+33611111111", lang = "fr" }}
persona john {{ email = "j@example.com", phone = "+33622222222", lang = "en-GB" }}
template code : sms {{
  kind    = transactional
  body    = "Votre code arrive"
  body.en = "Your code is on its way"
  body.de = "{long}"
}}
"#
    );
    let p = Project::new(&[("shop.camp", camp.as_str())]);
    assert!(p.check_errors.is_empty(), "{:?}", p.check_errors);
    let r = p.render();

    let john = r.render_one("code", "john").expect("renders");
    assert_eq!(john.locale.as_deref(), Some("en"));
    assert_eq!(john.body.as_deref(), Some("Your code is on its way"));
    let marie = r.render_one("code", "marie").expect("renders");
    assert_eq!(marie.locale, None);
    assert_eq!(marie.body.as_deref(), Some("Votre code arrive"));

    // Nobody reads German, yet its body is checked, at its own span.
    let ps = r.check();
    let long_sms = of_kind(&ps, ProblemKind::SmsTooLong);
    assert_eq!(long_sms.len(), 1, "{}", show(&p, &ps));
    assert_eq!(p.text(long_sms[0]), format!("\"{long}\""));

    let (files, _) = r.previews();
    let page = |path: &str| preview_page(&files, path);
    let index = page("index.html");
    assert!(index.contains("data-locale=\"en\""), "{index}");
    assert!(
        index.contains("data-locale=\"de\" data-personas=\"\""),
        "the German variant has its own row: {index}"
    );
    assert!(page("code/john.html").contains("<dd id=\"locale\"><code>en</code></dd>"));
    assert!(page("code/john.html").contains("Your code is on its way"));
    assert!(page("code/marie.html").contains("Votre code arrive"));
}

#[test]
fn message_pages_show_priority_and_expires() {
    let p = with(
        r#"
template reminder : sms { body = "Votre essai se termine demain", priority = high, expires = 12h }
template plain : email { subject = "S", html = "<p>{{workspace.address}}</p><a href=\"{{unsubscribe_url}}\">x</a>" }
"#,
        &[],
    );
    let (files, _) = p.render().previews();
    let page = |path: &str| preview_page(&files, path);
    let html = page("reminder/marie.html");
    assert!(html.contains("<dd id=\"priority\">high</dd>"), "{html}");
    assert!(
        html.contains("<dd id=\"expires\">12h after it is first due"),
        "{html}"
    );
    let json: serde_json::Value = serde_json::from_str(&page("reminder/marie.json")).unwrap();
    assert_eq!(json["priority"], "high");
    assert_eq!(json["expires"], "12h");
    // Not written, not shown.
    let plain = page("plain/marie.html");
    assert!(!plain.contains("id=\"priority\"") && !plain.contains("id=\"expires\""));
    let json: serde_json::Value = serde_json::from_str(&page("plain/marie.json")).unwrap();
    assert!(json.get("priority").is_none() && json.get("expires").is_none());
}

/// The preview file `preview/PATH` as text.
fn preview_page(files: &BTreeMap<String, Vec<u8>>, path: &str) -> String {
    String::from_utf8(files[&format!("preview/{path}")].clone()).expect("utf-8")
}
