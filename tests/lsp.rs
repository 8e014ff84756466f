//! `relance lsp` driven over standard input and output by a JSON-RPC
//! client (`tests/lsp/client.rs`), on copies of `campaigns/`: initialize,
//! open, change, diagnostics (the same as `relance check`), hover,
//! definition, references, rename, completion, formatting, symbols, code
//! actions, semantic tokens, folding, shutdown; and the edits of a
//! half-typed file (every UI case, every prefix of a campaign file) sent
//! through `didChange` without a crash.

#[path = "lsp/client.rs"]
mod client;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use client::{BIN, Client, apply, campaigns, pos_of, pos_of_last, repo, uri};
use serde_json::{Value, json};

/// `relance check --format json` of a folder: (file, line, code, message).
fn check(dir: &Path) -> BTreeSet<(String, u64, String, String)> {
    let out = Command::new(BIN)
        .args(["check", "--format", "json"])
        .arg(dir)
        .output()
        .expect("run relance check");
    let v: Value = serde_json::from_slice(&out.stdout).expect("check's JSON");
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap_or("").to_string(),
                d["line"].as_u64().unwrap_or(0),
                d["code"].as_str().unwrap().to_string(),
                d["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every diagnostic the client holds, in `check`'s terms.
fn published(c: &Client, root: &Path) -> BTreeSet<(String, u64, String, String)> {
    let prefix = format!("{}/", uri(root));
    let mut out = BTreeSet::new();
    for (u, list) in &c.diagnostics {
        let file = u.strip_prefix(&prefix).unwrap_or(u).to_string();
        for d in list {
            let message = d["message"].as_str().unwrap();
            out.insert((
                file.clone(),
                d["range"]["start"]["line"].as_u64().unwrap() + 1,
                d["code"].as_str().unwrap().to_string(),
                message.split('\n').next().unwrap().to_string(),
            ));
        }
    }
    out
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

#[test]
fn diagnostics_are_those_of_relance_check_and_go_away() {
    let t = campaigns("diag");
    let root = t.path();
    let mut c = Client::start(root);
    let seg_path = root.join("segments.camp");
    let text = read(&seg_path);
    let u = c.open(&seg_path, &text);
    // The sample project is clean: the open file gets no diagnostics.
    c.sync();
    assert!(
        c.diagnostics.get(&u).is_none_or(|d| d.is_empty()),
        "{:?}",
        c.diagnostics.get(&u)
    );

    // A typo in one file breaks a name used in another (personas.camp,
    // not open) and is reported in both, as `relance check` reports it.
    let broken = text.replace(
        "segment marketable = not undesirable",
        "segment marketable = not undesirabel",
    );
    assert_ne!(broken, text);
    let broken = broken.replace("segment engaged =", "segment engagedd =");
    c.change(&u, 2, &broken);
    let d = c.wait_diagnostics(&u, |d| !d.is_empty());
    let e = d
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("undesirabel"))
        .expect("the typo");
    assert_eq!(e["severity"], json!(1));
    assert_eq!(e["source"], json!("relance"));
    let code = e["code"].as_str().unwrap();
    // The code's explanation is linked, and the link opens it.
    let href = e["codeDescription"]["href"]
        .as_str()
        .expect("codeDescription");
    let path = href.strip_prefix("file://").expect("a file URL");
    assert!(read(Path::new(path)).contains(code), "{href}");
    // The help (did you mean) is part of the message.
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("help: did you mean `undesirable`?"),
        "{e}"
    );
    c.sync();

    // The same diagnostics as `relance check` on the same text on disk.
    let copy = campaigns("diag-copy");
    fs::write(copy.path().join("segments.camp"), &broken).unwrap();
    let expected = check(copy.path());
    assert!(!expected.is_empty());
    let scen = uri(&root.join("personas.camp"));
    c.settle(|c| published(c, root) == expected);
    assert_eq!(published(&c, root), expected);
    assert!(
        c.diagnostics.get(&scen).is_some_and(|d| !d.is_empty()),
        "personas.camp uses `engaged`: it gets diagnostics without being open"
    );

    // Fixed again: every file's diagnostics are cleared.
    c.change(&u, 3, &text);
    c.wait_diagnostics(&u, |d| d.is_empty());
    c.wait_diagnostics(&scen, |d| d.is_empty());
    c.settle(|c| published(c, root).is_empty());
    assert!(published(&c, root).is_empty(), "{:?}", published(&c, root));
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn template_files_get_their_diagnostics() {
    let t = campaigns("hbs");
    let root = t.path();
    let mut c = Client::start(root);
    let path = root.join("templates/offer.html.hbs");
    let text = read(&path);
    let u = c.open(&path, &text);
    c.sync();
    assert!(c.diagnostics.get(&u).is_none_or(|d| d.is_empty()));
    let broken = text.replacen("{{> greeting}}", "{{> greeting}} {{frist_name}}", 1);
    c.change(&u, 2, &broken);
    let d = c.wait_diagnostics(&u, |d| !d.is_empty());
    let first = &d[0];
    assert!(
        first["message"].as_str().unwrap().contains("frist_name"),
        "{first}"
    );
    assert!(
        first["message"].as_str().unwrap().contains("first_name"),
        "did you mean: {first}"
    );
    // The diagnostic points at the variable on its line.
    let (line, col) = pos_of(&broken, "frist_name", 0);
    assert_eq!(
        first["range"]["start"],
        json!({ "line": line, "character": col })
    );

    // The same as `relance check` with the file saved.
    let copy = campaigns("hbs-copy");
    fs::write(copy.path().join("templates/offer.html.hbs"), &broken).unwrap();
    let expected = check(copy.path());
    c.settle(|c| published(c, root) == expected);
    assert_eq!(published(&c, root), expected);
    // Nothing was written by the server.
    assert_eq!(read(&path), text);
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn hover_definition_references() {
    let t = campaigns("nav");
    let root = t.path();
    let mut c = Client::start(root);
    let scen_path = root.join("scenarios.camp");
    let scen = read(&scen_path);
    let u = c.open(&scen_path, &scen);

    // Hover on a segment: its definition and doc comment.
    let (l, ch) = pos_of(&scen, "audience marketable", 10);
    let h = c.request("textDocument/hover", Client::at(&u, l, ch));
    let v = h["contents"]["value"].as_str().unwrap();
    assert!(
        v.contains("segment marketable = not undesirable and not hard_bounced"),
        "{v}"
    );
    assert!(v.contains("The marketable base"), "{v}");

    // Hover on a template: channel, kind and subject.
    let (l, ch) = pos_of(&scen, "send offer\n", 6);
    let h = c.request("textDocument/hover", Client::at(&u, l, ch));
    let v = h["contents"]["value"].as_str().unwrap();
    assert!(v.contains("template offer : email"), "{v}");
    assert!(v.contains("**kind** marketing"), "{v}");
    assert!(v.contains("deux idées pour rouler plus serein"), "{v}");

    // Definition of `send offer`: the template's name in templates.camp.
    let d = c.request("textDocument/definition", Client::at(&u, l, ch));
    let tpl = read(&root.join("templates.camp"));
    let (tl, tc) = pos_of(&tpl, "template offer :", 9);
    assert_eq!(d["uri"], json!(uri(&root.join("templates.camp"))));
    assert_eq!(d["range"]["start"], json!({ "line": tl, "character": tc }));

    // References of `offer`: the declaration and every use.
    let mut params = Client::at(&u, l, ch);
    params["context"] = json!({ "includeDeclaration": true });
    let refs = c.request("textDocument/references", params.clone());
    let refs = refs.as_array().unwrap();
    let uses = scen.matches("send offer\n").count()
        + scen.matches("opened(offer)").count()
        + scen.matches("clicked(offer.").count()
        + scen.matches("opened(offer ").count()
        + scen.matches("clicked(offer)").count();
    assert!(
        refs.len() > uses,
        "{} references, {uses} uses in scenarios.camp",
        refs.len()
    );
    assert!(
        refs.iter()
            .any(|r| r["uri"] == json!(uri(&root.join("templates.camp"))))
    );
    params["context"] = json!({ "includeDeclaration": false });
    let without = c.request("textDocument/references", params);
    assert_eq!(without.as_array().unwrap().len(), refs.len() - 1);

    // Hover on a link, a contact field, an event field, an event, a cadence.
    let (l, ch) = pos_of(&scen, "clicked(offer.gps)", 15);
    let v = c.request("textDocument/hover", Client::at(&u, l, ch));
    assert!(
        v["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("selection/gps"),
        "{v}"
    );
    let (l, ch) = pos_of(&scen, "start fleet_followup", 7);
    let v = c.request("textDocument/hover", Client::at(&u, l, ch));
    let v = v["contents"]["value"].as_str().unwrap();
    assert!(v.contains("| day 0 | `fleet_intro` | email |"), "{v}");
    assert!(v.contains("| day 22 | `fleet_last_call` | email |"), "{v}");
    assert!(v.contains("| day 1 | `call_discovery` | task |"), "{v}");

    let seg_path = root.join("segments.camp");
    let seg = read(&seg_path);
    let su = c.open(&seg_path, &seg);
    let (l, ch) = pos_of(&seg, "sum(purchase.amount where amount < 0", 27);
    let v = c.request("textDocument/hover", Client::at(&su, l, ch));
    let v = v["contents"]["value"].as_str().unwrap();
    assert!(
        v.contains("amount: number") && v.contains("field of event `purchase`"),
        "{v}"
    );
    let (l, ch) = pos_of(&seg, "sum(purchase.amount", 5);
    let v = c.request("textDocument/hover", Client::at(&su, l, ch));
    let v = v["contents"]["value"].as_str().unwrap();
    assert!(
        v.contains("event purchase {") && v.contains("sku: text"),
        "{v}"
    );
    assert!(v.contains("An order paid on the site"), "{v}");
    let (l, ch) = pos_of(&seg, "first_name is not set", 2);
    let v = c.request("textDocument/hover", Client::at(&su, l, ch));
    let v = v["contents"]["value"].as_str().unwrap();
    assert!(
        v.contains("first_name: text?") && v.contains("contact field"),
        "{v}"
    );

    // A persona's description.
    let pers = read(&root.join("personas.camp"));
    let pu = c.open(&root.join("personas.camp"), &pers);
    let (l, ch) = pos_of(&pers, "persona marie", 10);
    let v = c.request("textDocument/hover", Client::at(&pu, l, ch));
    assert!(
        v["contents"]["value"]
            .as_str()
            .unwrap()
            .contains("Marie Girard runs a two-bay garage"),
        "{v}"
    );

    // Nothing under the cursor: null.
    let v = c.request("textDocument/hover", Client::at(&u, 0, 0));
    assert!(v.is_null(), "{v}");
    assert_eq!(c.shutdown(), 0);
}

/// Applies a workspace edit's changes to the files on disk.
fn apply_workspace_edit(edit: &Value) -> usize {
    let changes = edit["changes"].as_object().expect("changes");
    for (u, edits) in changes {
        let p = u.strip_prefix("file://").unwrap();
        let text = read(Path::new(p));
        fs::write(p, apply(&text, edits.as_array().unwrap())).unwrap();
    }
    changes.len()
}

#[test]
fn rename_keeps_the_project_clean() {
    let t = campaigns("rename");
    let root = t.path();
    let mut c = Client::start(root);
    let schema = read(&root.join("schema.camp"));
    let u = c.open(&root.join("schema.camp"), &schema);

    // A contact field: its uses in `.camp` files and in `.hbs` templates.
    let (l, ch) = pos_of(&schema, "first_name:", 3);
    let p = c.request("textDocument/prepareRename", Client::at(&u, l, ch));
    assert_eq!(p["placeholder"], json!("first_name"));
    assert_eq!(
        p["range"]["start"],
        json!({ "line": l, "character": ch - 3 })
    );
    let mut params = Client::at(&u, l, ch);
    params["newName"] = json!("given_name");
    let edit = c.request("textDocument/rename", params);
    let files = edit["changes"].as_object().unwrap();
    assert!(
        files.keys().any(|k| k.ends_with(".hbs")),
        "templates renamed too: {:?}",
        files.keys()
    );
    assert!(files.keys().any(|k| k.ends_with("personas.camp")));
    assert!(files.keys().any(|k| k.ends_with("templates.camp")));
    apply_workspace_edit(&edit);
    let left: Vec<String> = walk(root)
        .iter()
        .flat_map(|p| {
            let hbs = p.extension().is_some_and(|x| x == "hbs");
            read(p)
                .lines()
                // In a template, only `{{…}}` tags name fields (a JSON key
                // `"first_name":` is text).
                .filter(|l| {
                    if hbs {
                        l.split("{{")
                            .skip(1)
                            .any(|t| t.split("}}").next().unwrap().contains("first_name"))
                    } else {
                        l.contains("first_name")
                    }
                })
                .map(|l| format!("{}: {l}", p.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(left.is_empty(), "every use renamed: {left:#?}");
    assert_eq!(
        check(root),
        BTreeSet::new(),
        "the renamed project checks clean"
    );

    // A segment, from one of its uses.
    let scen = read(&root.join("scenarios.camp"));
    let su = c.open(&root.join("scenarios.camp"), &scen);
    let (l, ch) = pos_of(&scen, "audience marketable", 12);
    let mut params = Client::at(&su, l, ch);
    params["newName"] = json!("reachable_base");
    let edit = c.request("textDocument/rename", params);
    apply_workspace_edit(&edit);
    let seg = read(&root.join("segments.camp"));
    assert!(seg.contains("segment reachable_base = not undesirable"));
    assert_eq!(check(root), BTreeSet::new());

    // A name taken, or not a name: refused with a message.
    let scen = read(&root.join("scenarios.camp"));
    c.change(&su, 2, &scen);
    let (l, ch) = pos_of(&scen, "audience reachable_base", 12);
    for bad in ["engaged", "Not-a-name", "send"] {
        let mut params = Client::at(&su, l, ch);
        params["newName"] = json!(bad);
        let r = c.call("textDocument/rename", params);
        assert!(r.get("error").is_some(), "{bad}: {r}");
    }
    // A keyword cannot be renamed.
    let (l, ch) = pos_of(&scen, "audience reachable_base", 2);
    let r = c.call("textDocument/prepareRename", Client::at(&su, l, ch));
    assert!(r.get("error").is_some() || r["result"].is_null(), "{r}");
    assert_eq!(c.shutdown(), 0);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if e.file_name() != "data" {
                out.extend(walk(&p));
            }
        } else if p.extension().is_some_and(|x| x == "camp" || x == "hbs") {
            out.push(p);
        }
    }
    out
}

fn labels(v: &Value) -> Vec<String> {
    let items = if v.is_array() {
        v.clone()
    } else {
        v["items"].clone()
    };
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn completion_in_context() {
    let t = campaigns("complete");
    let root = t.path();
    let mut c = Client::start(root);
    let path = root.join("scenarios.camp");
    let scen = read(&path);
    let u = c.open(&path, &scen);

    let complete = |c: &mut Client, text: &str, marker: &str| -> Vec<String> {
        c.change(&u, 2, text);
        let (l, ch) = pos_of_last(text, marker, marker.len());
        labels(&c.request("textDocument/completion", Client::at(&u, l, ch)))
    };
    let add = |line: &str| format!("{scen}\nscenario zz {{\n  trigger joined prospects\n  {line}");

    let l = complete(&mut c, &add("send "), "send ");
    assert!(
        l.contains(&"offer".to_string()) && l.contains(&"advice".to_string()),
        "{l:?}"
    );
    assert!(!l.contains(&"marketable".to_string()), "{l:?}");
    let l = complete(
        &mut c,
        &add("branch {\n    when clicked(offer."),
        "clicked(offer.",
    );
    assert_eq!(l, ["gps", "kids"]);
    let l = complete(
        &mut c,
        &add("exit when count(purchase where "),
        "purchase where ",
    );
    assert!(
        l.contains(&"amount".to_string()) && l.contains(&"sku".to_string()),
        "{l:?}"
    );
    let l = complete(&mut c, &add("exit when count("), "count(");
    assert!(
        l.contains(&"purchase".to_string()) && l.contains(&"page_view".to_string()),
        "{l:?}"
    );
    let l = complete(&mut c, &add("join "), "join ");
    assert!(l.contains(&"customers".to_string()), "{l:?}");
    let l = complete(&mut c, &add("start "), "start ");
    assert_eq!(l, ["fleet_followup"]);
    let l = complete(&mut c, &add("au"), "\n  au");
    assert!(
        l.contains(&"audience".to_string()) && l.contains(&"marketable".to_string()),
        "{l:?}"
    );
    // Top level: the declarations.
    let l = complete(&mut c, &format!("{scen}\nseg"), "\nseg");
    assert!(
        l.contains(&"segment".to_string()) && l.contains(&"cadence".to_string()),
        "{l:?}"
    );

    // Inside a template's string and a `.hbs` file: helpers and variables.
    let tpl_path = root.join("templates.camp");
    let tpl = read(&tpl_path);
    let tu = c.open(&tpl_path, &tpl);
    let edited = tpl.replacen(
        "preheader = \"Deux guides",
        "preheader = \"{{links.gps_guide}} {{ Deux guides",
        1,
    );
    c.change(&tu, 2, &edited);
    let (l, ch) = pos_of(&edited, "{{ Deux", 3);
    let got = labels(&c.request("textDocument/completion", Client::at(&tu, l, ch)));
    for w in ["first_name", "capitalize", "unsubscribe_url", "links"] {
        assert!(got.contains(&w.to_string()), "{w}: {got:?}");
    }
    let (l, ch) = pos_of(&edited, "{{links.", 8);
    let got = labels(&c.request("textDocument/completion", Client::at(&tu, l, ch)));
    assert_eq!(got, ["gps_guide", "kids_guide", "stores"]);

    let hbs_path = root.join("templates/offer.html.hbs");
    let hbs = read(&hbs_path);
    let hu = c.open(&hbs_path, &hbs);
    let edited = format!("{hbs}{{{{links.");
    c.change(&hu, 2, &edited);
    let last = edited.lines().count() - 1;
    let got = labels(&c.request(
        "textDocument/completion",
        Client::at(&hu, last, edited.lines().last().unwrap().len()),
    ));
    assert_eq!(got, ["gps", "kids"]);
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn formatting_symbols_actions_tokens_folding() {
    let t = campaigns("misc");
    let root = t.path();
    let mut c = Client::start(root);
    let path = root.join("lists.camp");
    let text = read(&path);
    let messy = text
        .replace("list newsletter", "list    newsletter")
        .replace(
            "  on join { tag \"prospect\" }",
            "on join {tag \"prospect\"}",
        );
    assert_ne!(messy, text);
    let u = c.open(&path, &messy);
    let edits = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": u }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    let formatted = apply(&messy, edits.as_array().unwrap());
    // What `relance fmt -` gives.
    let out = Command::new(BIN)
        .args(["fmt", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(messy.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(formatted, String::from_utf8(out.stdout).unwrap());
    assert_eq!(formatted, text, "campaigns/ is formatted");

    // Document symbols: every list, with its range.
    let syms = c.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": u } }),
    );
    let names: Vec<&str> = syms
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "prospects",
            "customers",
            "newsletter",
            "gps_interest",
            "kids_interest",
            "fleet_accounts",
            "competitors"
        ]
    );
    let ws = c.request("workspace/symbol", json!({ "query": "fleet" }));
    let names: BTreeSet<&str> = ws
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains("fleet_followup") && names.contains("fleet_accounts"),
        "{names:?}"
    );

    // A "did you mean" fix through a code action.
    let broken = text.replace("leave prospects\n", "leave prospect\n");
    c.change(&u, 3, &broken);
    let d = c.wait_diagnostics(&u, |d| !d.is_empty());
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": u }, "range": d[0]["range"], "context": { "diagnostics": d } }),
    );
    let a = &actions.as_array().unwrap()[0];
    assert_eq!(a["title"], json!("Replace with `prospects`"));
    let fixed = apply(&broken, a["edit"]["changes"][&u].as_array().unwrap());
    assert_eq!(fixed, text);

    // Semantic tokens: the declared names, one token each.
    c.change(&u, 4, &text);
    let tokens = c.request(
        "textDocument/semanticTokens/full",
        json!({ "textDocument": { "uri": u } }),
    );
    let data = tokens["data"].as_array().unwrap();
    assert_eq!(data.len() % 5, 0);
    let (l, ch) = pos_of(&text, "list prospects", 5);
    assert_eq!(data[0].as_u64().unwrap() as usize, l);
    assert_eq!(data[1].as_u64().unwrap() as usize, ch);
    assert_eq!(data[2], json!(9), "`prospects` is 9 characters");
    // Folding: the multi-line blocks and comment runs.
    let folds = c.request(
        "textDocument/foldingRange",
        json!({ "textDocument": { "uri": u } }),
    );
    let (l, _) = pos_of(&text, "list customers {", 0);
    assert!(
        folds
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["startLine"] == json!(l)),
        "{folds}"
    );
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn unsubscribe_fix_adds_the_link() {
    let t = campaigns("unsub");
    let root = t.path();
    let mut c = Client::start(root);
    let path = root.join("templates/partials/footer.hbs");
    let footer = read(&path);
    assert!(footer.contains("{{unsubscribe_url}}"), "{footer}");
    let u = c.open(
        &path,
        &footer
            .replace("{{unsubscribe_url}}", "https://example.com/")
            .replace("{{preferences_url}}", "https://example.com/p"),
    );
    c.sync();
    // Every marketing email lost its link: E0515 on each HTML body, at
    // its `file("…")` in templates.camp.
    let tpl_path = root.join("templates.camp");
    let tpl = read(&tpl_path);
    let tu = uri(&tpl_path);
    let d = c.wait_diagnostics(&tu, |d| d.iter().any(|x| x["code"] == json!("E0515")));
    let (line, _) = pos_of(&tpl, "file(\"templates/offer.html.hbs\")", 0);
    let d: Vec<Value> = d
        .into_iter()
        .filter(|x| x["code"] == json!("E0515") && x["range"]["start"]["line"] == json!(line))
        .collect();
    assert_eq!(d.len(), 1, "{d:?}");
    let actions = c.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": tu }, "range": d[0]["range"], "context": { "diagnostics": d } }),
    );
    let a = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("unsubscribe_url"))
        .expect("an unsubscribe fix");
    let offer = uri(&root.join("templates/offer.html.hbs"));
    let edits = a["edit"]["changes"][&offer]
        .as_array()
        .expect("an edit of the HTML file");
    let html = read(&root.join("templates/offer.html.hbs"));
    let fixed = apply(&html, edits);
    assert!(
        fixed.contains("<a href=\"{{unsubscribe_url}}\">"),
        "{fixed}"
    );
    // Applied, the diagnostic of that template goes away.
    let hu = c.open(&root.join("templates/offer.html.hbs"), &fixed);
    c.wait_diagnostics(&tu, |d| {
        !d.iter()
            .any(|x| x["code"] == json!("E0515") && x["range"]["start"]["line"] == json!(line))
    });
    let _ = hu;
    let _ = u;
    assert_eq!(c.shutdown(), 0);
}

/// Every UI case (a file written to trigger one diagnostic), every prefix
/// of the sample's files at a stride and 300 mutants of them (the fuzz
/// test's edits), sent as the text of an open file: the server answers
/// after each, and exits cleanly at the end.
#[test]
fn half_typed_files_never_crash_the_server() {
    let t = campaigns("fuzz");
    let root = t.path();
    let mut c = Client::start(root);
    let path = root.join("scenarios.camp");
    let original = read(&path);
    let u = c.open(&path, &original);
    let mut texts: Vec<String> = Vec::new();
    for e in fs::read_dir(repo().join("tests/ui")).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "camp") {
            // Some cases are not UTF-8 on purpose; an editor would show
            // them decoded, replacement characters and all.
            texts.push(String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned());
        }
    }
    texts.sort();
    assert!(texts.len() > 100, "{} UI cases", texts.len());
    for name in [
        "scenarios.camp",
        "templates.camp",
        "segments.camp",
        "personas.camp",
    ] {
        let full = read(&repo().join("campaigns").join(name));
        let mut cut = 0;
        while cut < full.len() {
            while !full.is_char_boundary(cut) {
                cut += 1;
            }
            texts.push(full[..cut].to_string());
            cut += 97;
        }
    }
    // The fuzz test's kind of corpus (tests/fuzz.rs: characters inserted,
    // deleted or replaced, lines duplicated or dropped), replayed: 300
    // mutants of the sample's files, from a fixed seed.
    let mut seed: u64 = 0x5eed_1a7e;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n.max(1)
    };
    let pieces = [
        "{", "}", "(", "\"", "{{", "}}", " and ", " = ", "\n", "é", "→", "\0", "wait ", "send ",
    ];
    for k in 0..300 {
        let name = [
            "scenarios.camp",
            "templates.camp",
            "segments.camp",
            "personas.camp",
        ][k % 4];
        let mut text = read(&repo().join("campaigns").join(name));
        for _ in 0..1 + next(8) {
            let mut at = next(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match next(4) {
                0 => text.insert_str(at, pieces[next(pieces.len())]),
                1 => {
                    let mut end = (at + next(40)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, "");
                }
                2 => {
                    let lines: Vec<&str> = text.lines().collect();
                    let i = next(lines.len());
                    let mut l: Vec<&str> = lines.clone();
                    l.insert(i, lines.get(i).copied().unwrap_or(""));
                    text = l.join("\n");
                }
                _ => {
                    let lines: Vec<&str> = text.lines().collect();
                    let i = next(lines.len());
                    text = lines
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, l)| *l)
                        .collect::<Vec<_>>()
                        .join("\n");
                }
            }
        }
        texts.push(text);
    }
    // Odd bytes and deep nesting.
    texts.push("segment a = ((((((((((((((((((((((((((((((((((((((((((x".repeat(20));
    texts.push("\u{feff}\r\r\n\0template t : email { subject = \"{{#each}}\" }".into());
    texts.push("scenario s {\n  branch {\n    when clicked(offer.".into());
    let mut version = 1;
    for (i, text) in texts.iter().enumerate() {
        version += 1;
        c.change(&u, version, text);
        if i % 25 == 0 {
            // The server still answers, with whatever the text holds.
            let r = c.call("textDocument/hover", Client::at(&u, 1, 3));
            assert!(r.get("error").is_none(), "{r}");
            let r = c.call("textDocument/completion", Client::at(&u, 2, 2));
            assert!(r.get("error").is_none(), "{r}");
        }
    }
    c.change(&u, version + 1, &original);
    c.wait_diagnostics(&u, |d| d.is_empty());
    c.settle(|c| published(c, root).is_empty());
    assert_eq!(published(&c, root), BTreeSet::new());
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn utf8_positions_when_the_client_offers_them() {
    let t = campaigns("utf8");
    let root = t.path();
    let mut c = Client::start_with(
        root,
        json!({ "general": { "positionEncodings": ["utf-8", "utf-16"] } }),
    );
    let path = root.join("segments.camp");
    let text = read(&path).replace(
        "segment pros = customer_type",
        "/* éé */ segment pros = customer_typ",
    );
    let u = c.open(&path, &text);
    let d = c.wait_diagnostics(&u, |d| !d.is_empty());
    let at = text.find("customer_typ ").unwrap();
    let line_start = text[..at].rfind('\n').unwrap() + 1;
    assert_eq!(
        d[0]["range"]["start"]["character"],
        json!(at - line_start),
        "bytes: {d:?}"
    );
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn exit_without_shutdown_is_an_error() {
    let t = campaigns("exit");
    let mut c = Client::start(t.path());
    c.notify("exit", Value::Null);
    assert_eq!(c.wait_exit(), 1);
}

/// A workspace folder holding two projects: each file belongs to the
/// project of the nearest `relance.toml` above it, and an open file's
/// unsaved text is what gets checked, not the file on disk.
#[test]
fn projects_by_manifest_and_unsaved_buffers_first() {
    let t = client::Temp::new("mono");
    let mono = t.path();
    client::copy_dir(&repo().join("campaigns"), &mono.join("a"));
    client::copy_dir(&repo().join("campaigns"), &mono.join("b"));
    let good = read(&mono.join("b/segments.camp"));
    let bad = good.replace(
        "segment marketable = not undesirable",
        "segment marketable = not undesirabel",
    );
    assert_ne!(bad, good);
    // On disk, b is broken.
    fs::write(mono.join("b/segments.camp"), &bad).unwrap();
    assert!(!check(&mono.join("b")).is_empty());

    let mut c = Client::start(mono);
    // a is its own project (clean), not a part of the workspace folder.
    let ua = c.open(&mono.join("a/segments.camp"), &good);
    assert!(c.wait_version(&ua, 1).is_empty());
    c.sync();
    assert_eq!(published(&c, &mono.join("a")), BTreeSet::new());
    // b's open buffer holds the good text: it wins over the disk.
    let ub = c.open(&mono.join("b/segments.camp"), &good);
    let d = c.wait_version(&ub, 1);
    assert!(d.is_empty(), "the buffer, not the disk, is checked: {d:?}");
    // Broken in the buffer only: the error shows, in b and not in a.
    c.change(&ub, 2, &bad);
    let d = c.wait_version(&ub, 2);
    assert!(
        d.iter()
            .any(|x| x["message"].as_str().unwrap().contains("undesirabel")),
        "{d:?}"
    );
    c.sync();
    let in_a: Vec<_> = published(&c, &mono.join("a"))
        .into_iter()
        .filter(|d| !d.0.starts_with("file:"))
        .collect();
    assert!(in_a.is_empty(), "{in_a:?}");
    let in_b: Vec<_> = published(&c, &mono.join("b"))
        .into_iter()
        .filter(|d| !d.0.starts_with("file:"))
        .collect();
    assert!(in_b.iter().any(|d| d.0 == "segments.camp"), "{in_b:?}");
    assert_eq!(c.shutdown(), 0);
}
