//! The runner benchmark's input generator (`benches/synth/runbase.rs`,
//! driven by `examples/runbase.rs`): small bases checked line by line
//! against the plan that `relance build campaigns` writes.

#[path = "../benches/synth/runbase.rs"]
mod runbase;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use runbase::{Config, Stats};
use serde_json::Value;

// ---------------------------------------------------------------- helpers

/// The plan of `campaigns/`, built once by the release-independent binary
/// Cargo builds for the tests.
fn plan() -> &'static Value {
    static PLAN: OnceLock<Value> = OnceLock::new();
    PLAN.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("relance-runbase-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let campaigns = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
        let result = Command::new(env!("CARGO_BIN_EXE_relance"))
            .args([
                "build",
                "--color",
                "never",
                "--now",
                "2026-11-01T00:00:00Z",
                "--out",
            ])
            .arg(&out)
            .arg(&campaigns)
            .output()
            .expect("run relance build");
        assert!(
            result.status.success(),
            "relance build campaigns failed:\n{}",
            String::from_utf8_lossy(&result.stderr)
        );
        let text = std::fs::read_to_string(out.join("plan.json")).expect("plan.json");
        let _ = std::fs::remove_dir_all(&out);
        serde_json::from_str(&text).expect("plan.json is JSON")
    })
}

fn small(seed: u64) -> Config {
    Config {
        contacts: 200,
        events: 2_000,
        seed,
        ..Config::default()
    }
}

fn generate(cfg: &Config) -> (Vec<u8>, Vec<u8>, Stats) {
    let mut stats = Stats::default();
    let mut contacts = Vec::new();
    let mut state = runbase::write_contacts(cfg, &mut contacts, &mut stats).expect("contacts");
    let mut events = Vec::new();
    runbase::write_events(cfg, &mut state, &mut events, &mut stats).expect("events");
    (contacts, events, stats)
}

fn lines(bytes: &[u8]) -> Vec<&str> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'), "no final newline");
    text.lines().collect()
}

fn timestamp(v: &Value) -> Result<i64, String> {
    let s = v.as_str().ok_or("a timestamp must be a string")?;
    let t: jiff::Timestamp = s.parse().map_err(|e| format!("bad timestamp `{s}`: {e}"))?;
    Ok(t.as_second())
}

/// Checks `value` against a plan type (`text`, `number`, `enum`, …).
fn check_type(field: &Value, value: &Value) -> Result<(), String> {
    let ty = field["type"].as_str().expect("type");
    let name = field["name"].as_str().expect("name");
    let ok = match ty {
        "text" | "device" => value.is_string(),
        "email" => value.as_str().is_some_and(|s| {
            let (local, domain) = s.split_once('@').unwrap_or(("", ""));
            !local.is_empty() && domain.contains('.') && s.is_ascii()
        }),
        "phone" => value.as_str().is_some_and(|s| {
            s.len() >= 11 && s.starts_with('+') && s[1..].bytes().all(|b| b.is_ascii_digit())
        }),
        "number" => value.is_number(),
        "bool" => value.is_boolean(),
        "timestamp" => timestamp(value).is_ok(),
        "date" => value
            .as_str()
            .is_some_and(|s| s.len() == 10 && s.parse::<jiff::civil::Date>().is_ok()),
        "timezone" => value.as_str().is_some_and(relance::tzdb::is_zone),
        "enum" => value.as_str().is_some_and(|s| {
            field["variants"]
                .as_array()
                .expect("variants")
                .iter()
                .any(|v| v == s)
        }),
        "set<text>" => value.as_array().is_some_and(|a| {
            a.iter().all(Value::is_string)
                && a.iter()
                    .filter_map(Value::as_str)
                    .collect::<BTreeSet<_>>()
                    .len()
                    == a.len()
        }),
        other => panic!("type `{other}` of field `{name}` is new: teach this test"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("field `{name}`: {value} is not a valid {ty}"))
    }
}

/// One contact line: the schema's fields with their types, `lists` and
/// `tags` consistent with the lists' `on join` rules. Returns the id.
fn check_contact(line: &str) -> Result<(String, Value), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
    let obj = v.as_object().ok_or("not an object")?;
    let plan = plan();
    let fields = plan["schema"]["fields"].as_array().expect("fields");
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .ok_or("no string `id`")?
        .to_string();
    for field in fields {
        let name = field["name"].as_str().expect("name");
        match obj.get(name) {
            Some(value) => check_type(field, value)?,
            None if field["optional"] == true => {}
            None => return Err(format!("{id}: missing required field `{name}`")),
        }
    }
    for key in obj.keys() {
        let known = ["id", "lists", "tags"].contains(&key.as_str())
            || fields.iter().any(|f| f["name"] == key.as_str());
        if !known {
            return Err(format!("{id}: unknown key `{key}`"));
        }
    }
    let strings = |key: &str| -> Result<BTreeSet<String>, String> {
        let a = obj
            .get(key)
            .and_then(Value::as_array)
            .ok_or(format!("{id}: `{key}` is not an array"))?;
        a.iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or(format!("{id}: `{key}` holds a non-string"))
            })
            .collect()
    };
    let lists = strings("lists")?;
    let tags = strings("tags")?;
    for list in &lists {
        let Some(rules) = plan["lists"][list]["on_join"].as_array() else {
            return Err(format!("{id}: unknown list `{list}`"));
        };
        for rule in rules {
            let holds = match rule["op"].as_str().expect("op") {
                "join" => lists.contains(rule["list"].as_str().expect("list")),
                "leave" => !lists.contains(rule["list"].as_str().expect("list")),
                "tag" => tags.contains(rule["tag"].as_str().expect("tag")),
                "untag" => !tags.contains(rule["tag"].as_str().expect("tag")),
                op => panic!("on_join op `{op}` is new: teach this test"),
            };
            if !holds {
                return Err(format!("{id}: in `{list}` but {rule} does not hold"));
            }
        }
    }
    Ok((id, v))
}

/// One event line: known contact, declared or built-in event with its
/// fields, templates and links of the plan. Returns the contact and `at`.
fn check_event(line: &str, ids: &HashMap<String, Value>) -> Result<(String, i64, Value), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
    let obj = v.as_object().ok_or("not an object")?;
    let plan = plan();
    let contact = obj
        .get("contact")
        .and_then(Value::as_str)
        .ok_or("no string `contact`")?;
    if !ids.contains_key(contact) {
        return Err(format!("unknown contact `{contact}`"));
    }
    let at = timestamp(obj.get("at").ok_or("no `at`")?)?;
    let name = obj
        .get("event")
        .and_then(Value::as_str)
        .ok_or("no `event`")?;
    let mut expected: Vec<&str> = vec!["contact", "event", "at"];
    if name == "joined" || name == "left" {
        // List changes from outside (LANGUAGE.md §10).
        let list = obj.get("list").and_then(Value::as_str).ok_or("no `list`")?;
        if plan["lists"].get(list).is_none() {
            return Err(format!("unknown list `{list}`"));
        }
        expected.push("list");
    } else {
        let decl = plan["events"]
            .get(name)
            .ok_or(format!("event `{name}` is neither declared nor built in"))?;
        for field in decl["fields"].as_array().expect("fields") {
            let fname = field["name"].as_str().expect("name");
            expected.push(fname);
            match obj.get(fname) {
                Some(value) => check_type(field, value)?,
                None if field["optional"] == true => {}
                None => return Err(format!("`{name}` without `{fname}`")),
            }
        }
        if let Some(template) = obj.get("template").and_then(Value::as_str) {
            let t = plan["templates"]
                .get(template)
                .ok_or(format!("unknown template `{template}`"))?;
            if let Some(link) = obj.get("link").and_then(Value::as_str)
                && t["links"].get(link).is_none()
            {
                return Err(format!("template `{template}` has no link `{link}`"));
            }
            if name == "unsubscribed" {
                let channel = obj["channel"].as_str().unwrap_or_default();
                if t["channel"] != channel {
                    return Err(format!("unsubscribed from {channel} via {template}"));
                }
            }
        }
        if name == "unsubscribed"
            && !["email", "sms"].contains(&obj["channel"].as_str().unwrap_or_default())
        {
            return Err(format!("unsubscribed from channel {}", obj["channel"]));
        }
    }
    if let Some(key) = obj.keys().find(|k| !expected.contains(&k.as_str())) {
        return Err(format!("`{name}` with unexpected key `{key}`"));
    }
    Ok((contact.to_string(), at, v))
}

fn contacts_by_id(bytes: &[u8]) -> HashMap<String, Value> {
    let mut ids = HashMap::new();
    for (n, line) in lines(bytes).into_iter().enumerate() {
        let (id, v) =
            check_contact(line).unwrap_or_else(|e| panic!("contacts line {}: {e}\n{line}", n + 1));
        assert!(ids.insert(id.clone(), v).is_none(), "duplicate id {id}");
    }
    ids
}

// ---------------------------------------------------------------- tests

#[test]
fn tables_name_what_campaigns_declares() {
    let plan = plan();
    let lists: BTreeSet<&str> = plan["lists"]
        .as_object()
        .expect("lists")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        lists,
        runbase::LISTS.into_iter().collect(),
        "the lists of campaigns/ changed"
    );
    for (name, channel, links, ..) in runbase::TEMPLATES {
        let t = plan["templates"]
            .get(name)
            .unwrap_or_else(|| panic!("template `{name}` is not in campaigns/"));
        let declared: BTreeSet<&str> = t["links"]
            .as_object()
            .expect("links")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            declared,
            links.iter().copied().collect(),
            "links of `{name}`"
        );
        assert_eq!(t["channel"], channel, "channel of `{name}`");
    }
    for (name, _) in runbase::EVENT_MIX {
        assert!(
            plan["events"].get(name).is_some() || name == "joined" || name == "left",
            "event `{name}` is not in the plan"
        );
    }
    let shares: u32 = runbase::EVENT_MIX.iter().map(|e| e.1).sum();
    assert_eq!(shares, 10_000);
}

#[test]
fn contacts_follow_the_schema_and_events_are_valid_and_sorted() {
    let cfg = small(42);
    let (contacts, events, stats) = generate(&cfg);
    let ids = contacts_by_id(&contacts);
    assert_eq!(ids.len(), 200);
    assert_eq!(stats.contacts, 200);
    assert_eq!(stats.contacts_bytes, contacts.len() as u64);
    assert_eq!(stats.events_bytes, events.len() as u64);
    assert!(stats.bad_contacts.is_empty() && stats.bad_events.is_empty());

    let mut previous = i64::MIN;
    let mut names: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_contact: HashMap<String, u64> = HashMap::new();
    let lines = lines(&events);
    assert_eq!(lines.len(), 2_000);
    for (n, line) in lines.iter().enumerate() {
        let (contact, at, v) = check_event(line, &ids)
            .unwrap_or_else(|e| panic!("events line {}: {e}\n{line}", n + 1));
        assert!(at >= previous, "events line {}: not sorted by `at`", n + 1);
        assert!(
            cfg.from <= at && at < cfg.until(),
            "events line {}: outside the window",
            n + 1
        );
        previous = at;
        *names
            .entry(v["event"].as_str().unwrap().to_string())
            .or_default() += 1;
        *per_contact.entry(contact).or_default() += 1;
    }
    let counted: BTreeMap<String, u64> = stats
        .events_by_name
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(names, counted);
    assert_eq!(stats.window_events, 2_000);
    assert_eq!(stats.history_events, 0);

    // Every kind of event shows up, page views dominate, and some pages
    // are the ones `gps_hot_browsers` counts.
    for (name, _) in runbase::EVENT_MIX {
        assert!(names.contains_key(name), "no `{name}` event");
    }
    assert!(names["page_view"] > 1_200, "{names:?}");
    assert!(events.windows(4).any(|w| w == b"/gps"));

    // Activity is skewed: the busiest contact has many times the average.
    let max = per_contact.values().copied().max().unwrap();
    assert_eq!(max, stats.max_events_per_contact);
    assert!(max >= 50, "busiest contact has only {max} events");
    assert_eq!(
        stats.contacts_without_events,
        200 - per_contact.len() as u64
    );

    // The mix of the base.
    let share = |pred: &dyn Fn(&Value) -> bool| ids.values().filter(|c| pred(c)).count();
    let in_list =
        |l: &'static str| move |c: &Value| c["lists"].as_array().unwrap().iter().any(|x| x == l);
    assert!((60..140).contains(&share(&in_list("prospects"))));
    assert!((40..110).contains(&share(&in_list("customers"))));
    assert!((90..150).contains(&share(&in_list("newsletter"))));
    assert!((110..170).contains(&share(&|c| c.get("phone").is_some())));
    assert!(share(&|c| c["country"] != "FR") > 5);
    assert!(share(&|c| c["customer_type"] != "individual") > 5);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = generate(&small(42));
    let b = generate(&small(42));
    assert!(a.0 == b.0 && a.1 == b.1, "two runs with seed 42 differ");
    assert_eq!(a.2, b.2);
    let c = generate(&small(7));
    assert_ne!(a.0, c.0, "seed 7 gives the same contacts");
    assert_ne!(a.1, c.1, "seed 7 gives the same events");
    // The contacts do not depend on the number of events.
    let d = generate(&Config {
        events: 500,
        ..small(42)
    });
    assert_eq!(a.0, d.0);
}

#[test]
fn history_comes_first_and_agrees_with_the_lists_at_from() {
    let cfg = Config {
        history_days: 15,
        ..small(9)
    };
    let (contacts, events, stats) = generate(&cfg);
    let ids = contacts_by_id(&contacts);
    assert_eq!(stats.history_events, 1_000);
    assert_eq!(stats.window_events, 2_000);
    let history_start = cfg.from - 15 * 86_400;
    let mut previous = i64::MIN;
    let mut history = 0;
    for (n, line) in lines(&events).iter().enumerate() {
        let (contact, at, v) = check_event(line, &ids)
            .unwrap_or_else(|e| panic!("events line {}: {e}\n{line}", n + 1));
        assert!(at >= previous && at >= history_start && at < cfg.until());
        previous = at;
        if at >= cfg.from {
            continue;
        }
        history += 1;
        let c = &ids[&contact];
        assert!(
            timestamp(&c["signup_at"]).unwrap() <= at,
            "{contact} acts before signing up"
        );
        let list = v.get("list").and_then(Value::as_str);
        let member = |l: &str| c["lists"].as_array().unwrap().iter().any(|x| x == l);
        match v["event"].as_str().unwrap() {
            "joined" => assert!(member(list.unwrap()), "{line}: not in that list at `from`"),
            "left" => assert!(
                !member(list.unwrap()),
                "{line}: still in that list at `from`"
            ),
            _ => {}
        }
    }
    assert_eq!(history, 1_000);
}

#[test]
fn bad_lines_are_counted_and_fail_validation() {
    let cfg = Config {
        contacts: 6_000,
        events: 20_000,
        bad_lines: true,
        ..small(5)
    };
    let (contacts, events, stats) = generate(&cfg);
    let mut ids = HashMap::new();
    let mut bad_contacts = 0;
    for line in lines(&contacts) {
        match check_contact(line) {
            Ok((id, v)) => assert!(ids.insert(id, v).is_none()),
            Err(_) => bad_contacts += 1,
        }
    }
    assert_eq!(ids.len(), 6_000);
    assert_eq!(bad_contacts, stats.bad_contacts.values().sum::<u64>());
    assert!(bad_contacts > 0);

    let mut bad_events = 0;
    let mut good = 0;
    let mut previous = i64::MIN;
    for line in lines(&events) {
        match check_event(line, &ids) {
            Ok((_, at, _)) => {
                assert!(at >= previous, "good lines stay sorted");
                previous = at;
                good += 1;
            }
            Err(_) => bad_events += 1,
        }
    }
    assert_eq!(good, 20_000);
    assert_eq!(bad_events, stats.bad_events.values().sum::<u64>());
    assert!(
        (4..=30).contains(&bad_events),
        "{bad_events} bad lines for 20,000 events"
    );
    assert!(stats.bad_events.len() >= 4, "{:?}", stats.bad_events);
}

#[test]
fn write_dir_writes_three_files_and_the_window() {
    let dir: PathBuf = std::env::temp_dir().join(format!("relance-runbase-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = small(1);
    let stats = runbase::write_dir(&cfg, &dir).expect("write_dir");
    let (contacts, events, _) = generate(&cfg);
    assert_eq!(std::fs::read(dir.join("contacts.jsonl")).unwrap(), contacts);
    assert_eq!(std::fs::read(dir.join("events.jsonl")).unwrap(), events);
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.starts_with(&cfg.params_line()));
    assert!(readme.contains("from:  2026-11-01T00:00:00Z\nuntil: 2026-12-01T00:00:00Z\n"));
    assert!(readme.contains(&format!("{} bytes", stats.events_bytes)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hand_written_dates_agree_with_jiff() {
    for s in [
        "1970-01-01T00:00:00Z",
        "2024-02-29T23:59:59Z",
        "2026-11-01T00:00:00Z",
        "2100-03-01T12:34:56Z",
        "1969-12-31T23:59:59Z",
    ] {
        let ours = runbase::parse_timestamp(s).unwrap();
        assert_eq!(
            ours,
            s.parse::<jiff::Timestamp>().unwrap().as_second(),
            "{s}"
        );
        assert_eq!(runbase::format_timestamp(ours), s);
    }
    for bad in [
        "2026-02-30T00:00:00Z",
        "2026-11-01T24:00:00Z",
        "2026-11-01 00:00:00Z",
        "2026-11-01T00:00:00+01:00",
    ] {
        assert_eq!(runbase::parse_timestamp(bad), None, "{bad}");
    }
}
