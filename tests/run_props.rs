//! Properties of the runner over random contacts and events: caps are never
//! exceeded in any window, no marketing message is sent in quiet hours or
//! inside the gap, and the outbox is the same across runs, thread counts
//! and orders of the contacts file. Also: a persona read through the
//! runner's input is the contact the compiler checks (`expect`), so the
//! runner and the persona checks evaluate the same thing with the one
//! evaluator. And: a host that stores each contact's journey state as
//! JSON between inputs (`run::Journey::step`) sends what the in-memory
//! run sends.

use std::collections::BTreeMap;

use proptest::prelude::*;
use relance::diagnostics::{Problems, SourceFile, SourceMap};
use relance::eval::{Context, Value};
use relance::plan::Plan;
use relance::run::{self, Options, input};

const SRC: &str = r#"
workspace {
  name     = "Props"
  timezone = "Europe/Paris"
  from     = "P <p@example.com>"
  address  = "1 rue X"
}
contact { email: email, phone: phone?, tz: timezone?, due: timestamp?, born: date? }
event ping { n: number }
list l1
list l2
list l3 { on join { join l1 } }
template m1 : email { subject = "1", html = "<p>1</p><p>{{workspace.address}} <a href='{{unsubscribe_url}}'>u</a></p>" }
template m2 : email { subject = "2", html = "<p>2</p><p>{{workspace.address}} <a href='{{unsubscribe_url}}'>u</a></p>", expires = 2d, priority = low }
template m3 : email { subject = "3", html = "<p>3</p><p>{{workspace.address}} <a href='{{unsubscribe_url}}'>u</a></p>", priority = high }
template s1 : sms   { body = "S STOP 36180" }
consent sms = not l3
template tr : email { kind = transactional, subject = "T", html = "<p>T</p>" }
template tk : task  { body = "call" }
scenario a {
  trigger joined l1
  reentry always
  send m1
  wait 2h
  send s1
  send m2
}
scenario b {
  trigger joined l2
  trigger once at 2026-10-25 02:30 local
  reentry always
  send m2
  send tr
  send tk
  send m3
  start f
}
cadence f {
  spacing = 1 business day
  touch m1
  touch tk when phone is set
  touch s1 after 2 business days when not opened(m1)
  touch m2 after 3h
}
scenario c {
  trigger event ping where n > 0
  trigger every weekday 09:00
  trigger every month on last 20:00
  goal ping where n > 1 within 3d value n
  goal joined l3 within 1d
  reentry always
  send m3
  wait 1d
  send m1
  wait 1 business day
  send s1
}
segment soon = due - 2d <= now and due + 1h > now
scenario d {
  trigger at due - 1d 10:00
  reentry always
  send m2
  wait until due + 6h
  send m3
}
scenario e {
  trigger yearly born 09:00
  reentry always
  send m1
}
scenario h {
  trigger entered soon
  reentry always
  send s1
}
pressure {
  email max 2 per 3d
  sms   max 1 per 2d
  all   max 3 per 3d
  gap   6h
  quiet 21:00 to 08:00
  quiet weekends
  quiet sms 20:00 to 10:00
  quiet task 18:00 to 09:00
  on excess POLICY
}
"#;

/// The plan for `on excess POLICY`, compiled once per test binary.
fn plan(policy: &str) -> &'static Plan {
    static DEFER: std::sync::OnceLock<Plan> = std::sync::OnceLock::new();
    static DROP: std::sync::OnceLock<Plan> = std::sync::OnceLock::new();
    let cell = if policy == "drop" { &DROP } else { &DEFER };
    cell.get_or_init(|| compile(policy))
}

fn compile(policy: &str) -> Plan {
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new("p.camp", SRC.replace("POLICY", policy)));
    let checked = relance::driver::check_sources(&sources, Problems::new(), 1);
    assert_eq!(checked.errors(), 0, "{:?}", checked.diagnostics);
    checked.plan.expect("a plan")
}

const FROM: &str = "2026-10-20T00:00:00Z";
const UNTIL: &str = "2026-11-09T00:00:00Z";
const ZONES: [Option<&str>; 5] = [
    None,
    Some("America/New_York"),
    Some("Australia/Lord_Howe"),
    Some("America/Santiago"),
    Some("Asia/Tokyo"),
];

fn ts(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// Runs and returns the outbox bytes.
fn outbox(plan: &Plan, contacts: &str, events: &str, threads: usize) -> String {
    let (c, cp) = input::contacts_from_jsonl(contacts, plan, "contacts.jsonl").unwrap();
    assert!(cp.is_empty(), "{cp:?}");
    let (e, ep) = input::events_from_jsonl(events, plan, &c, "events.jsonl").unwrap();
    assert!(ep.is_empty(), "{ep:?}");
    let opts = Options {
        from: ts(FROM),
        until: ts(UNTIL),
        threads,
        trace: None,
        forecast: None,
    };
    let out = run::simulate(plan, &c, &e, &opts).unwrap();
    let mut bytes = Vec::new();
    out.write_outbox(&c, &mut bytes).unwrap();
    String::from_utf8(bytes).unwrap()
}

#[derive(Debug, Clone)]
struct Input {
    zones: Vec<usize>,
    phones: Vec<bool>,
    /// (contact, kind, minutes after FROM); kind 6 is an `updated` event
    /// that moves `due` to the minutes of the next item.
    events: Vec<(usize, usize, i64)>,
    /// Per contact: `due` in minutes after FROM (from 2 days before), and
    /// `born` as a day of the window in 1990 (29 February 2000 for 0).
    dues: Vec<Option<i64>>,
    borns: Vec<Option<i64>>,
}

fn inputs() -> impl Strategy<Value = Input> {
    (1usize..6).prop_flat_map(|n| {
        (
            proptest::collection::vec(0..ZONES.len(), n),
            proptest::collection::vec(any::<bool>(), n),
            proptest::collection::vec((0..n, 0usize..7, 0i64..(19 * 24 * 60)), 0..40),
            proptest::collection::vec(proptest::option::of(-2880i64..(22 * 24 * 60)), n),
            proptest::collection::vec(proptest::option::of(0i64..20), n),
        )
            .prop_map(|(zones, phones, mut events, dues, borns)| {
                events.sort_by_key(|e| e.2);
                Input {
                    zones,
                    phones,
                    events,
                    dues,
                    borns,
                }
            })
    })
}

fn minutes_after_from(m: i64) -> String {
    jiff::Timestamp::from_second(ts(FROM) + m * 60)
        .unwrap()
        .to_string()
}

/// A birthday: 29 February 2000 for 0, else a day of the window in 1990.
fn born_date(day: i64) -> String {
    if day == 0 {
        return "2000-02-29".to_string();
    }
    let d = jiff::civil::date(1990, 10, 20)
        .checked_add(jiff::Span::new().days(day))
        .unwrap();
    d.to_string()
}

/// The date triggers fire at most once per value of their date: an `at`
/// run per distinct `due` a contact had, a `yearly` run per contact in a
/// window shorter than a year.
fn check_dates(input: &Input, outbox: &str) -> Result<(), TestCaseError> {
    for i in 0..input.zones.len() {
        let id = format!("c{i}");
        let steps: Vec<String> = outbox
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["contact"] == id.as_str())
            .map(|v| v["step"].as_str().unwrap().to_string())
            .collect();
        let updates = input
            .events
            .iter()
            .filter(|(c, kind, _)| *c == i && *kind == 6)
            .count();
        let at_runs = steps.iter().filter(|s| *s == "d/0").count();
        prop_assert!(
            at_runs <= usize::from(input.dues[i].is_some()) + updates,
            "{id}: {at_runs} `at` runs for {updates} update(s)"
        );
        prop_assert!(
            steps.iter().filter(|s| *s == "e/0").count() <= 1,
            "{id}: yearly twice"
        );
    }
    Ok(())
}

fn files(input: &Input) -> (Vec<String>, String) {
    let contacts: Vec<String> = input
        .zones
        .iter()
        .zip(&input.phones)
        .enumerate()
        .map(|(i, (z, phone))| {
            let mut o =
                serde_json::json!({ "id": format!("c{i}"), "email": format!("c{i}@example.com") });
            if *phone {
                o["phone"] = format!("+3360000000{i}").into();
            }
            if let Some(zone) = ZONES[*z] {
                o["tz"] = zone.into();
            }
            if let Some(m) = input.dues[i] {
                o["due"] = minutes_after_from(m).into();
            }
            if let Some(day) = input.borns[i] {
                o["born"] = born_date(day).into();
            }
            o.to_string()
        })
        .collect();
    let from = ts(FROM);
    let mut events = String::new();
    for (c, kind, minutes) in &input.events {
        let at = jiff::Timestamp::from_second(from + minutes * 60).unwrap();
        let mut o = serde_json::json!({ "contact": format!("c{c}"), "at": at.to_string() });
        match kind {
            0..=2 => {
                o["event"] = "joined".into();
                o["list"] = format!("l{}", kind + 1).into();
            }
            3 => {
                o["event"] = "left".into();
                o["list"] = "l1".into();
            }
            4 => {
                o["event"] = "ping".into();
                o["n"] = 1.into();
            }
            6 => {
                // A new `due`, a few days around the event's own time.
                o["event"] = "updated".into();
                o["due"] =
                    minutes_after_from(minutes + (minutes * 7919) % (6 * 24 * 60) - 2 * 24 * 60)
                        .into();
            }
            _ => {
                o["event"] = "opened".into();
                o["template"] = "m1".into();
            }
        }
        events.push_str(&o.to_string());
        events.push('\n');
    }
    (contacts, events)
}

struct Line {
    at: i64,
    contact: String,
    template: String,
}

fn parse(outbox: &str) -> Vec<Line> {
    outbox
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Line {
                at: ts(v["at"].as_str().unwrap()),
                contact: v["contact"].as_str().unwrap().to_string(),
                template: v["template"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

fn check_pressure(input: &Input, lines: &[Line]) -> Result<(), TestCaseError> {
    let marketing = ["m1", "m2", "m3", "s1"];
    for (i, z) in input.zones.iter().enumerate() {
        let id = format!("c{i}");
        let tz = relance::tzdb::zone(ZONES[*z].unwrap_or("Europe/Paris")).unwrap();
        // Channel-scoped quiet rules hold every message of their channel:
        // SMS outside [20:00, 10:00), tasks outside [18:00, 09:00) and
        // weekends.
        for l in lines.iter().filter(|l| l.contact == id) {
            let local = jiff::Timestamp::from_second(l.at)
                .unwrap()
                .to_zoned(tz.clone());
            let weekend = matches!(
                local.weekday(),
                jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
            );
            match l.template.as_str() {
                "s1" => prop_assert!(
                    (10..20).contains(&local.hour()),
                    "{id}: sms at {local} in `quiet sms 20:00 to 10:00`"
                ),
                "tk" => prop_assert!(
                    (9..18).contains(&local.hour()),
                    "{id}: task at {local} in `quiet task 18:00 to 09:00`"
                ),
                _ => {}
            }
            if marketing.contains(&l.template.as_str()) {
                prop_assert!(
                    !weekend,
                    "{id}: {} sent at {local} on a weekend",
                    l.template
                );
            }
        }
        let mine: Vec<&Line> = lines
            .iter()
            .filter(|l| l.contact == id && marketing.contains(&l.template.as_str()))
            .collect();
        for (k, l) in mine.iter().enumerate() {
            // Quiet hours, contact-local, [21:00, 08:00).
            let local = jiff::Timestamp::from_second(l.at)
                .unwrap()
                .to_zoned(tz.clone());
            prop_assert!(
                (8..21).contains(&local.hour()),
                "{id}: {} sent at {local} in quiet hours",
                l.template
            );
            // Gap: 6h between two marketing messages.
            if k > 0 {
                prop_assert!(
                    l.at - mine[k - 1].at >= 6 * 3600,
                    "{id}: gap broken at {}",
                    l.at
                );
            }
            // Caps over every window [l.at, l.at + W).
            for (scope, max, per) in [
                ("email", 2, 3 * 86_400),
                ("sms", 1, 2 * 86_400),
                ("all", 3, 3 * 86_400),
            ] {
                let n = mine
                    .iter()
                    .filter(|m| m.at >= l.at && m.at < l.at + per)
                    .filter(|m| match scope {
                        "email" => m.template.starts_with('m'),
                        "sms" => m.template.starts_with('s'),
                        _ => true,
                    })
                    .count();
                prop_assert!(
                    n <= max,
                    "{id}: cap {scope} broken: {n} in the window from {}",
                    l.at
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn pressure_holds_and_runs_are_deterministic(input in inputs(), drop in any::<bool>()) {
        let plan = plan(if drop { "drop" } else { "defer" });
        let (contacts, events) = files(&input);
        let text = contacts.join("\n");
        let a = outbox(plan, &text, &events, 1);
        check_pressure(&input, &parse(&a))?;
        check_dates(&input, &a)?;
        // Same inputs, same bytes; any thread count.
        prop_assert_eq!(&a, &outbox(plan, &text, &events, 1));
        prop_assert_eq!(&a, &outbox(plan, &text, &events, 3));
        // The order of the contacts file changes nothing.
        let reversed: Vec<String> = contacts.iter().rev().cloned().collect();
        prop_assert_eq!(&a, &outbox(plan, &reversed.join("\n"), &events, 2));
    }
}

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Text(s) => s.clone().into(),
        Value::Number(n) => serde_json::json!(n),
        Value::Bool(b) => (*b).into(),
        Value::Timestamp(t) => jiff::Timestamp::from_second(*t).unwrap().to_string().into(),
        Value::Date(d) => d.to_string().into(),
        Value::Set(s) => s.iter().cloned().collect::<Vec<_>>().into(),
    }
}

/// The sample project's personas, written as runner input and read back,
/// are the contacts (and events) the compiler checks `expect` lines on, and
/// every segment has the same value for both.
#[test]
fn personas_through_the_runner_input_agree_with_the_compiler() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
    let now = ts("2026-11-01T00:00:00Z");
    let a = relance::cli::analyse(&root, now).unwrap();
    let plan = a.checked.plan.clone().expect("campaigns builds");
    let project = relance::check::Project::resolve(&a.loaded.sources, &a.checked.files);
    assert!(project.personas.len() >= 4);
    for persona in &project.personas {
        let (contact, events) = relance::verify::persona_contact(&project, persona, now);
        let mut line = serde_json::Map::new();
        line.insert("id".into(), contact.id.clone().into());
        for (k, v) in &contact.fields {
            line.insert(k.clone(), to_json(v));
        }
        line.insert(
            "lists".into(),
            contact.lists.iter().cloned().collect::<Vec<_>>().into(),
        );
        line.insert(
            "tags".into(),
            contact.tags.iter().cloned().collect::<Vec<_>>().into(),
        );
        let contacts_text = serde_json::Value::Object(line).to_string();
        let mut events_text = String::new();
        for e in &events {
            let mut o = serde_json::Map::new();
            o.insert("contact".into(), contact.id.clone().into());
            o.insert("event".into(), e.name.clone().into());
            o.insert(
                "at".into(),
                jiff::Timestamp::from_second(e.at)
                    .unwrap()
                    .to_string()
                    .into(),
            );
            for (k, v) in &e.fields {
                o.insert(k.clone(), to_json(v));
            }
            events_text.push_str(&serde_json::Value::Object(o).to_string());
            events_text.push('\n');
        }
        let (cs, p1) = input::contacts_from_jsonl(&contacts_text, &plan, "c").unwrap();
        assert!(p1.is_empty(), "{}: {p1:?}", contact.id);
        let (es, p2) = input::events_from_jsonl(&events_text, &plan, &cs, "e").unwrap();
        assert!(p2.is_empty(), "{}: {p2:?}", contact.id);
        let read = cs.contact(0);
        assert_eq!(read.fields, contact.fields, "{}", contact.id);
        assert_eq!(read.lists, contact.lists);
        assert_eq!(read.tags, contact.tags);
        let read_events = es.events_of(0);
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| e.at);
        assert_eq!(read_events.len(), sorted.len());
        for (x, y) in read_events.iter().zip(&sorted) {
            assert_eq!((&x.name, x.at, &x.fields), (&y.name, y.at, &y.fields));
        }
        let mut verdicts = BTreeMap::new();
        for (name, seg) in &plan.segments {
            let compiler = Context {
                plan: &plan,
                contact: &contact,
                events: &sorted,
                now,
                run: None,
            }
            .eval(seg);
            let runner = Context {
                plan: &plan,
                contact: &read,
                events: &read_events,
                now,
                run: None,
            }
            .eval(seg);
            assert_eq!(compiler, runner, "{}: segment {name}", contact.id);
            verdicts.insert(name.clone(), runner);
        }
        // Not a vacuous comparison: the personas differ in what holds.
        assert!(verdicts.values().any(|v| *v), "{}", contact.id);
    }
}

/// Lines built from JSON-ish pieces: valid objects, wrong types, garbage.
fn line() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(r#""id": "c1""#.to_string()),
        Just(r#""id": 7"#.to_string()),
        Just(r#""email": "a@example.com""#.to_string()),
        Just(r#""email": 3"#.to_string()),
        Just(r#""tz": "Mars/Olympus""#.to_string()),
        Just(r#""tz": "Asia/Tokyo""#.to_string()),
        Just(r#""lists": ["l1", "nope"]"#.to_string()),
        Just(r#""tags": "x""#.to_string()),
        Just(r#""contact": "c1""#.to_string()),
        Just(r#""event": "ping""#.to_string()),
        Just(r#""event": "joined""#.to_string()),
        Just(r#""list": "l2""#.to_string()),
        Just(r#""n": "1e999""#.to_string()),
        Just(r#""n": 1e999"#.to_string()),
        Just(r#""at": "2026-10-21T10:00:00Z""#.to_string()),
        Just(r#""at": "2026-13-45T99:00:00Z""#.to_string()),
        "[a-z\"{}:,\\\\ é\u{0}]{0,12}",
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|ps| format!("{{{}}}", ps.join(", ")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No input line panics the readers, and every line is either taken or
    /// reported as skipped: nothing is dropped silently.
    #[test]
    fn every_input_line_is_taken_or_reported(
        contacts in proptest::collection::vec(line(), 0..8),
        events in proptest::collection::vec(line(), 0..8),
    ) {
        let plan = plan("defer");
        let text = contacts.join("\n");
        let (c, problems) = input::contacts_from_jsonl(&text, plan, "c").unwrap();
        let nonblank = contacts.iter().filter(|l| !l.trim().is_empty()).count();
        let skipped = problems.iter().filter(|p| p.skipped).count();
        prop_assert_eq!(c.len() + skipped, nonblank, "{:?}", problems);
        let text = events.join("\n");
        let (e, problems) = input::events_from_jsonl(&text, plan, &c, "e").unwrap();
        let nonblank = events.iter().filter(|l| !l.trim().is_empty()).count();
        let skipped = problems.iter().filter(|p| p.skipped).count();
        prop_assert_eq!(e.len() + skipped, nonblank, "{:?}", problems);
        // And the run itself goes through.
        let opts = Options { from: ts(FROM), until: ts(UNTIL), threads: 1, trace: None, forecast: None };
        prop_assert!(run::simulate(plan, &c, &e, &opts).is_ok());
    }
}

// ---------------------------------------------------------------------------
// Local time against brute force: quiet hours and `every … HH:MM` over the
// DST transitions of 2026 and 2027 in zones with every kind of change.

/// Zones with a gap and a fold (northern and southern hemisphere, changes
/// at midnight, 30- and 45-minute offsets and shifts, a +2h change), and a
/// few without.
const DST_ZONES: &[&str] = &[
    "Europe/Paris",
    "Europe/London",
    "Europe/Dublin",
    "America/New_York",
    "America/St_Johns",
    "America/Santiago",
    "America/Havana",
    "America/Nuuk",
    "America/Scoresbysund",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Antarctica/Troll",
    "Asia/Gaza",
    "Asia/Beirut",
    "Africa/Cairo",
    "Africa/Casablanca",
    "Europe/Chisinau",
    "Pacific/Easter",
    "Asia/Tokyo",
    "UTC",
];

fn tz_of(name: &str) -> jiff::tz::TimeZone {
    relance::tzdb::zone(name).unwrap()
}

/// The offset in seconds at `t`.
fn offset_at(tz: &jiff::tz::TimeZone, t: i64) -> i64 {
    i64::from(
        tz.to_offset(jiff::Timestamp::from_second(t).unwrap())
            .seconds(),
    )
}

/// Local seconds since the epoch at `t`: `t` plus its offset.
fn local_secs(tz: &jiff::tz::TimeZone, t: i64) -> i64 {
    t + offset_at(tz, t)
}

/// The zone's transitions in 2026 and 2027 (unix seconds); for a zone with
/// none, two instants of those years.
fn transitions(tz: &jiff::tz::TimeZone) -> Vec<i64> {
    let start = ts("2026-01-01T00:00:00Z");
    let end = ts("2028-01-01T00:00:00Z");
    let found: Vec<i64> = tz
        .following(jiff::Timestamp::from_second(start).unwrap())
        .map(|t| t.timestamp().as_second())
        .take_while(|t| *t < end)
        .collect();
    if found.is_empty() {
        vec![ts("2026-03-29T01:00:00Z"), ts("2027-10-31T01:00:00Z")]
    } else {
        found
    }
}

fn in_window(start: i64, end: i64, clock: i64) -> bool {
    if start < end {
        start <= clock && clock < end
    } else if start > end {
        clock >= start || clock < end
    } else {
        false
    }
}

/// Brute force: the first instant at or after `at` whose local clock time
/// is outside `[start, end)`, stepping minute by minute (every boundary
/// of 2026–2027 is on a minute).
fn brute_first_allowed(tz: &jiff::tz::TimeZone, start: i64, end: i64, at: i64) -> i64 {
    let quiet = |t: i64| in_window(start, end, local_secs(tz, t).rem_euclid(86_400));
    if !quiet(at) {
        return at;
    }
    let mut t = at - at.rem_euclid(60) + 60;
    while quiet(t) {
        t += 60;
        assert!(t - at < 4 * 86_400, "quiet for ever");
    }
    t
}

/// A clock time near the transition's local times (the gap or fold and
/// around it), or anywhere in the day.
fn clock_near(tz: &jiff::tz::TimeZone, tr: i64, pick: (bool, bool, i64)) -> i64 {
    let (near, after, delta) = pick;
    if !near {
        return (delta.rem_euclid(1440)) * 60;
    }
    let base = if after {
        local_secs(tz, tr)
    } else {
        tr + offset_at(tz, tr - 1)
    };
    (base + (delta % 91) * 60).rem_euclid(86_400) / 60 * 60
}

fn clock_pick() -> impl Strategy<Value = (bool, bool, i64)> {
    (any::<bool>(), any::<bool>(), 0i64..100_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// `QuietHours::contains` and `first_allowed` agree with brute force
    /// for windows whose start or end falls in a gap, a fold or anywhere,
    /// windows crossing midnight included, around every transition.
    #[test]
    fn quiet_hours_agree_with_brute_force(
        zone in 0..DST_ZONES.len(),
        which in any::<prop::sample::Index>(),
        start in clock_pick(),
        end in clock_pick(),
        minutes in -36i64 * 60..36 * 60,
        second in 0i64..60,
    ) {
        let tz = tz_of(DST_ZONES[zone]);
        let trs = transitions(&tz);
        let tr = trs[which.index(trs.len())];
        let start = clock_near(&tz, tr, start);
        let end = clock_near(&tz, tr, end);
        let q = run::clock::QuietHours { start: start as i32, end: end as i32 };
        let at = tr + minutes * 60 + second;
        let quiet = in_window(start, end, local_secs(&tz, at).rem_euclid(86_400));
        prop_assert_eq!(q.contains(at, &tz), quiet);
        let got = q.first_allowed(at, &tz);
        let want = brute_first_allowed(&tz, start, end, at);
        prop_assert!(
            got == want,
            "{} quiet {:02}:{:02}-{:02}:{:02}, due {}: runner {}, brute force {}",
            DST_ZONES[zone], start / 3600, start / 60 % 60, end / 3600, end / 60 % 60,
            run::clock::rfc3339(at), run::clock::rfc3339(got), run::clock::rfc3339(want)
        );
    }
}

/// Brute force of `every DAY HH:MM` after `at` (minute-aligned): the
/// occurrence on a local date is the first instant whose local time
/// reaches it; a time the clock jumps over is read with the offset before
/// the jump (it moves forward by the gap). The first occurrence at or
/// after `at` of any local date.
fn brute_next_every(
    tz: &jiff::tz::TimeZone,
    day: Option<jiff::civil::Weekday>,
    clock: i64,
    at: i64,
) -> Option<i64> {
    brute_next_on(
        tz,
        |date| day.is_none_or(|d| date.weekday() == d),
        clock,
        at,
    )
}

/// Brute force of a calendar trigger at `clock` on the local dates where
/// `on` holds (as [`brute_next_every`]), looking up to ten days ahead.
fn brute_next_on(
    tz: &jiff::tz::TimeZone,
    on: impl Fn(jiff::civil::Date) -> bool,
    clock: i64,
    at: i64,
) -> Option<i64> {
    let begin = at - 2 * 86_400;
    let mut next_day = local_secs(tz, begin).div_euclid(86_400) + 1;
    let mut best: Option<i64> = None;
    let mut t = begin;
    while t < at + 10 * 86_400 {
        let local = local_secs(tz, t);
        while local >= next_day * 86_400 + clock {
            let target = next_day * 86_400 + clock;
            let occurrence = if local == target {
                t
            } else {
                target - offset_at(tz, t - 1)
            };
            let date = jiff::civil::date(1970, 1, 1)
                .checked_add(jiff::Span::new().days(next_day))
                .unwrap();
            if on(date) && occurrence >= at {
                best = Some(best.map_or(occurrence, |b: i64| b.min(occurrence)));
            }
            next_day += 1;
        }
        if best.is_some_and(|b| b + 86_400 < t) {
            break;
        }
        t += 60;
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// `next_every` agrees with brute force around every transition.
    #[test]
    fn every_occurrences_agree_with_brute_force(
        zone in 0..DST_ZONES.len(),
        which in any::<prop::sample::Index>(),
        clock in clock_pick(),
        weekday in 0usize..8,
        minutes in -36i64 * 60..36 * 60,
    ) {
        let tz = tz_of(DST_ZONES[zone]);
        let trs = transitions(&tz);
        let tr = trs[which.index(trs.len())];
        let clock = clock_near(&tz, tr, clock);
        let day = [
            None,
            Some(jiff::civil::Weekday::Monday),
            Some(jiff::civil::Weekday::Tuesday),
            Some(jiff::civil::Weekday::Wednesday),
            Some(jiff::civil::Weekday::Thursday),
            Some(jiff::civil::Weekday::Friday),
            Some(jiff::civil::Weekday::Saturday),
            Some(jiff::civil::Weekday::Sunday),
        ][weekday];
        let at = tr + minutes * 60;
        let got = run::clock::next_every(day, clock as i32, &tz, at);
        let want = brute_next_every(&tz, day, clock, at);
        prop_assert!(
            got == want,
            "{} every {:?} {:02}:{:02} from {}: runner {:?}, brute force {:?}",
            DST_ZONES[zone], day, clock / 3600, clock / 60 % 60, run::clock::rfc3339(at),
            got.map(run::clock::rfc3339), want.map(run::clock::rfc3339)
        );
    }
}

/// The calendar triggers of v1.1 around each transition: `every weekday`,
/// `every month on N` (N near the transition's date) and `every month on
/// last`, with `every day` and a weekday for comparison.
fn calendar_days(tz: &jiff::tz::TimeZone, tr: i64, pick: usize, shift: i8) -> run::calendar::Days {
    use run::calendar::Days;
    let date = jiff::Timestamp::from_second(tr)
        .unwrap()
        .to_zoned(tz.clone())
        .date();
    match pick {
        0 => Days::Daily,
        1 => Days::On(date.weekday()),
        2 => Days::Weekdays,
        3 => Days::MonthLast,
        _ => Days::Month((date.day() + shift).clamp(1, 28)),
    }
}

/// Brute force of several quiet rules together: the first instant at or
/// after `at` that no rule holds, stepping minute by minute. `hours`:
/// `[start, end)` windows; `weekends`: local Saturday and Sunday.
fn brute_first_allowed_by_all(
    tz: &jiff::tz::TimeZone,
    hours: &[(i64, i64)],
    weekends: bool,
    at: i64,
) -> i64 {
    let quiet = |t: i64| {
        let local = local_secs(tz, t);
        // 1970-01-01 was a Thursday: Monday is 0, Saturday 5, Sunday 6.
        let weekday = (local.div_euclid(86_400) + 3).rem_euclid(7);
        (weekends && weekday >= 5)
            || hours
                .iter()
                .any(|(s, e)| in_window(*s, *e, local.rem_euclid(86_400)))
    };
    if !quiet(at) {
        return at;
    }
    let mut t = at - at.rem_euclid(60) + 60;
    while quiet(t) {
        t += 60;
        assert!(t - at < 6 * 86_400, "quiet for ever");
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Several quiet rules (`quiet weekends` and up to two intervals) give
    /// the earliest instant that satisfies them all, as brute force finds
    /// it, around every transition (most fall on a weekend).
    #[test]
    fn combined_quiet_rules_agree_with_brute_force(
        zone in 0..DST_ZONES.len(),
        which in any::<prop::sample::Index>(),
        first in clock_pick(),
        first_end in clock_pick(),
        second in proptest::option::of((clock_pick(), clock_pick())),
        weekends in any::<bool>(),
        minutes in -72i64 * 60..72 * 60,
        sec in 0i64..60,
    ) {
        use relance::run::business::{QuietKind, QuietRule, first_allowed_by_all};
        let tz = tz_of(DST_ZONES[zone]);
        let trs = transitions(&tz);
        let tr = trs[which.index(trs.len())];
        let mut hours = vec![(clock_near(&tz, tr, first), clock_near(&tz, tr, first_end))];
        if let Some((s, e)) = second {
            hours.push((clock_near(&tz, tr, s), clock_near(&tz, tr, e)));
        }
        let mut rules: Vec<QuietRule> = hours
            .iter()
            .map(|(s, e)| QuietRule {
                channel: None,
                kind: QuietKind::Hours(run::clock::QuietHours { start: *s as i32, end: *e as i32 }),
                label: String::new(),
            })
            .collect();
        if weekends {
            rules.push(QuietRule { channel: None, kind: QuietKind::Weekends, label: String::new() });
        }
        // Intervals that cover the whole day are refused by the checker
        // (E0870): no instant would ever be allowed.
        prop_assume!((0..1440i64).any(|m| !hours.iter().any(|(s, e)| in_window(*s, *e, m * 60))));
        let at = tr + minutes * 60 + sec;
        let got = first_allowed_by_all(rules.iter(), at, &tz).0;
        let want = brute_first_allowed_by_all(&tz, &hours, weekends, at);
        prop_assert!(
            got == want,
            "{} hours {:?} weekends {}, due {}: runner {}, brute force {}",
            DST_ZONES[zone], hours, weekends,
            run::clock::rfc3339(at), run::clock::rfc3339(got), run::clock::rfc3339(want)
        );
        // Every rule allows the instant found.
        for r in &rules {
            prop_assert!(!r.contains(got, &tz));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// `calendar::next` agrees with brute force around every transition.
    #[test]
    fn calendar_occurrences_agree_with_brute_force(
        zone in 0..DST_ZONES.len(),
        which in any::<prop::sample::Index>(),
        clock in clock_pick(),
        pick in 0usize..6,
        shift in -2i8..=2,
        minutes in -36i64 * 60..36 * 60,
    ) {
        let tz = tz_of(DST_ZONES[zone]);
        let trs = transitions(&tz);
        let tr = trs[which.index(trs.len())];
        let clock = clock_near(&tz, tr, clock);
        let days = calendar_days(&tz, tr, pick, shift);
        let at = tr + minutes * 60;
        let got = run::calendar::next(days, clock as i32, &tz, at);
        // The dates written out again, independently of `Days::contains`.
        let on = |d: jiff::civil::Date| match days {
            run::calendar::Days::Daily => true,
            run::calendar::Days::On(w) => d.weekday() == w,
            run::calendar::Days::Weekdays => d.weekday().to_monday_one_offset() <= 5,
            run::calendar::Days::Month(n) => d.day() == n,
            run::calendar::Days::MonthLast => d.tomorrow().unwrap().day() == 1,
        };
        let want = brute_next_on(&tz, on, clock, at);
        // Brute force looks ten days ahead: a monthly occurrence may be later.
        let agree = match want {
            Some(_) => got == want,
            None => got.is_some_and(|g| g > at + 8 * 86_400),
        };
        prop_assert!(
            agree,
            "{} {:?} {:02}:{:02} from {}: runner {:?}, brute force {:?}",
            DST_ZONES[zone], days, clock / 3600, clock / 60 % 60, run::clock::rfc3339(at),
            got.map(run::clock::rfc3339), want.map(run::clock::rfc3339)
        );
    }

    /// `once at DATE HH:MM local` is brute force's occurrence on that date.
    #[test]
    fn once_local_agrees_with_brute_force(
        zone in 0..DST_ZONES.len(),
        which in any::<prop::sample::Index>(),
        clock in clock_pick(),
        shift in -1i64..=1,
    ) {
        let tz = tz_of(DST_ZONES[zone]);
        let trs = transitions(&tz);
        let tr = trs[which.index(trs.len())];
        let clock = clock_near(&tz, tr, clock);
        let date = jiff::Timestamp::from_second(tr + shift * 86_400)
            .unwrap()
            .to_zoned(tz.clone())
            .date();
        let got = run::calendar::once_local(date, clock as i32, &tz);
        let want = brute_next_on(&tz, |d| d == date, clock, tr - 3 * 86_400);
        prop_assert!(
            got == want,
            "{} once at {} {:02}:{:02} local: runner {:?}, brute force {:?}",
            DST_ZONES[zone], date, clock / 3600, clock / 60 % 60,
            got.map(run::clock::rfc3339), want.map(run::clock::rfc3339)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// `N business days` around every transition: the landing's local
    /// date is a weekday and exactly N weekdays after the start's local
    /// date (counted one by one); its local time is the start's, unless
    /// that time does not exist on that date (then the clocks jumped over
    /// it, and it is moved forward by the length of the jump); it never
    /// comes before the start.
    #[test]
    fn business_days_agree_with_counting_weekdays(
        zone in 0..DST_ZONES.len(),
        which in any::<prop::sample::Index>(),
        minutes in -96i64 * 60..96 * 60,
        n in 0u32..12,
    ) {
        use jiff::civil::Weekday;
        let tz = tz_of(DST_ZONES[zone]);
        let trs = transitions(&tz);
        let tr = trs[which.index(trs.len())];
        let at = tr + minutes * 60;
        let got = relance::run::business::add_business_days(at, n, &tz);
        prop_assert!(got >= at);
        let zoned = |t: i64| jiff::Timestamp::from_second(t).unwrap().to_zoned(tz.clone());
        let (start, landed) = (zoned(at), zoned(got));
        let weekend = |d: jiff::civil::Date| matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday);
        prop_assert!(!weekend(landed.date()), "landed on {landed}");
        // Weekdays strictly after the start date, up to the landing date.
        let mut d = start.date();
        let mut count = 0;
        while d < landed.date() {
            d = d.tomorrow().unwrap();
            if !weekend(d) {
                count += 1;
            }
        }
        // `0 business days` leaves a weekday as it is and moves a weekend
        // to the Monday after.
        let want = match n {
            0 if weekend(start.date()) => 1,
            n => n,
        };
        prop_assert_eq!(count, want, "{} + {} business days = {}", start, n, landed);
        if landed.time() != start.time() {
            // The start's local time does not exist on the landing date:
            // it is moved forward by the length of the jump, as every local
            // time the clocks skip (`run::clock`), which is what jiff's
            // compatible disambiguation does.
            let moved = landed
                .date()
                .to_datetime(start.time())
                .to_zoned(tz.clone())
                .unwrap()
                .timestamp()
                .as_second();
            prop_assert_eq!(
                moved, got,
                "{} + {} business days = {}, not {}", start, n, landed, zoned(moved)
            );
        }
    }
}

/// Everything a run says: the outbox, the summary (JSON and text) and the
/// traced contact's journey.
fn everything(
    plan: &Plan,
    contacts: &str,
    events: &str,
    trace: &str,
    forecast: Option<&run::Forecast>,
    persisted: bool,
) -> (String, String, String, Option<Vec<String>>) {
    let (c, _) = input::contacts_from_jsonl(contacts, plan, "contacts.jsonl").unwrap();
    let (e, _) = input::events_from_jsonl(events, plan, &c, "events.jsonl").unwrap();
    let opts = Options {
        from: ts(FROM),
        until: ts(UNTIL),
        threads: 2,
        trace: Some(trace.to_string()),
        forecast,
    };
    let out = if persisted {
        run::simulate_persisted(plan, &c, &e, &opts).unwrap()
    } else {
        run::simulate(plan, &c, &e, &opts).unwrap()
    };
    let mut bytes = Vec::new();
    out.write_outbox(&c, &mut bytes).unwrap();
    let read = events.lines().count() as u64;
    (
        String::from_utf8(bytes).unwrap(),
        out.summary_json(0, read, "events.jsonl", true).to_string(),
        out.summary_text(0, read, "events.jsonl") + &out.report_text(),
        out.trace.clone(),
    )
}

/// Drawn reactions, some in the second of their send, and `ping` events
/// that start scenario `c` again (chains of drawn events).
const RATES: &str = r#"
delay = "3h"
[default]
open  = 0.5
click = 0.2
[events.ping]
rate   = 0.3
fields = { n = 2 }
"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// One semantics, two hosts: a host that stores each contact's state
    /// and history as JSON between every input, and moves the clock one
    /// wake-up at a time (`run::simulate_persisted`), gives the in-memory
    /// run's outbox, summary and trace byte for byte, with and without
    /// drawn engagement. (It also fails when a state does not come back
    /// from JSON exactly.)
    #[test]
    fn a_persisted_journey_is_the_in_memory_one(
        input in inputs(),
        drop in any::<bool>(),
        engage in any::<bool>(),
        traced in 0usize..6,
        seed in 0u64..1000,
    ) {
        let plan = plan(if drop { "drop" } else { "defer" });
        let (contacts, events) = files(&input);
        let text = contacts.join("\n");
        let forecast = engage
            .then(|| run::Forecast::parse(RATES, "rates.toml", plan, seed).unwrap());
        let trace = format!("c{}", traced % contacts.len());
        let memory = everything(plan, &text, &events, &trace, forecast.as_ref(), false);
        let stored = everything(plan, &text, &events, &trace, forecast.as_ref(), true);
        prop_assert!(memory.3.is_some());
        prop_assert_eq!(memory, stored);
    }
}

/// A host written against the public API only, as a durable runner would
/// be: the clock moves on a grid of `tick` seconds whatever the events
/// (a tick never passes the next event), the state and the history are
/// stored as JSON between inputs, and the contacts go one by one.
fn grid_host(plan: &Plan, contacts: &str, events: &str, tick: i64) -> (Vec<run::Message>, String) {
    let (c, _) = input::contacts_from_jsonl(contacts, plan, "contacts.jsonl").unwrap();
    let (e, _) = input::events_from_jsonl(events, plan, &c, "events.jsonl").unwrap();
    let program = run::Program::compile(plan).unwrap();
    let (from, until) = (ts(FROM), ts(UNTIL));
    let journey = run::Journey::new(&program, from, until, None);
    let mut stats = journey.stats();
    let mut outbox = Vec::new();
    for i in 0..c.len() as u32 {
        let mut stored = serde_json::to_string(&(
            journey.start(i, c.contact(i)),
            Vec::<relance::eval::Event>::new(),
        ))
        .unwrap();
        let mut clock = from;
        let mut feed = |input: run::Input, finish: bool| {
            let (mut state, mut history): (run::ContactState, Vec<relance::eval::Event>) =
                serde_json::from_str(&stored).unwrap();
            journey.check(&state).unwrap();
            let mut fx = run::Effects {
                outbox: &mut outbox,
                stats: &mut stats,
                trace: None,
            };
            journey.step(&mut state, &mut history, input, &mut fx);
            if finish {
                journey.finish(&mut state, &mut history, &mut fx);
            }
            stored = serde_json::to_string(&(&state, &history)).unwrap();
        };
        let (events, lines) = e.events_and_lines_of(i);
        for (event, line) in events.into_iter().zip(lines) {
            if event.at >= until {
                break;
            }
            while clock + tick <= event.at {
                clock += tick;
                feed(run::Input::Clock(clock), false);
            }
            feed(run::Input::Event { event, line }, false);
        }
        while clock + tick < until {
            clock += tick;
            feed(run::Input::Clock(clock), false);
        }
        feed(run::Input::Clock(until), true);
    }
    (outbox, format!("{stats:?}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The public step function, driven on a clock grid that ignores the
    /// events, makes the messages and counts of `relance run`.
    #[test]
    fn a_host_on_a_clock_grid_sends_what_the_run_sends(
        input in inputs(),
        drop in any::<bool>(),
        tick in prop_oneof![Just(3599i64), Just(6 * 3600 + 7), Just(86_400)],
    ) {
        let plan = plan(if drop { "drop" } else { "defer" });
        let (contacts, events) = files(&input);
        let text = contacts.join("\n");
        let (c, _) = input::contacts_from_jsonl(&text, plan, "contacts.jsonl").unwrap();
        let (e, _) = input::events_from_jsonl(&events, plan, &c, "events.jsonl").unwrap();
        let opts = Options { from: ts(FROM), until: ts(UNTIL), threads: 1, trace: None, forecast: None };
        let run = run::simulate(plan, &c, &e, &opts).unwrap();
        let (mut got, stats) = grid_host(plan, &text, &events, tick);
        let key = |m: &run::Message| (m.at, m.contact, m.scenario, m.step, m.template);
        got.sort_by_key(key);
        let mut want = run.outbox.clone();
        want.sort_by_key(key);
        prop_assert_eq!(got, want);
        prop_assert_eq!(stats, format!("{:?}", run.stats));
    }
}
