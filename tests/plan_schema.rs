//! Broken plans: each case is one small mutation of the real plan built
//! from `campaigns/`. The JSON Schema (`docs/plan.schema.json`) must
//! reject every case it can express, and `relance run` must refuse every
//! case (exit 2) naming the JSON path of the problem, before running, and
//! never hang. The real plans of `campaigns/` and `examples/` pass both.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_relance")
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relance-plan-schema-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Builds `project` and returns its plan's text.
fn build(project: &Path, tag: &str) -> String {
    let out = temp_dir(tag);
    let r = Command::new(bin())
        .args(["build", "--color", "never", "--now", "2026-11-01T00:00:00Z"])
        .arg(project)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        r.status.success(),
        "{}: {}",
        project.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    let text = std::fs::read_to_string(out.join("plan.json")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    text
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("docs/plan.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

/// Runs `relance run` on `plan` (one day of the sample contacts), with a
/// guard: a run that has not ended after two minutes is killed and the
/// test fails (a hang must not block the suite).
fn run(plan: &Path) -> (i32, String) {
    let mut child = Command::new(bin())
        .args(["run", "--plan"])
        .arg(plan)
        .args([
            "--contacts",
            "campaigns/data/contacts.jsonl",
            "--from",
            "2026-11-01T00:00:00Z",
            "--until",
            "2026-11-02T00:00:00Z",
        ])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("`relance run --plan {}` hangs", plan.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
    Push(&'static str, Value),
}

struct Case {
    name: &'static str,
    edit: Edit,
    /// The JSON path `relance run` names, and words of its message.
    path: &'static str,
    says: &'static str,
    /// The JSON Schema can express the rule (else only the runner's
    /// semantic checks can: names that resolve, cycles, the order).
    schema: bool,
}

fn case(
    name: &'static str,
    edit: Edit,
    path: &'static str,
    says: &'static str,
    schema: bool,
) -> Case {
    Case {
        name,
        edit,
        path,
        says,
        schema,
    }
}

fn cases() -> Vec<Case> {
    use Edit::*;
    vec![
        // Consent and topics (§12).
        case(
            "consent on an operational channel",
            Set("/consent/task", json!({"op": "const", "value": true})),
            "$.consent.task",
            "not a channel with consent",
            true,
        ),
        case(
            "unknown template topic",
            Set("/templates/offer/topic", json!("gossip")),
            "$.templates.offer.topic",
            "is not a topic of the plan",
            false,
        ),
        // What the schema rejects.
        case(
            "template kind",
            Set("/templates/offer/kind", json!("promotional")),
            "$.templates.offer.kind",
            "not a template kind",
            true,
        ),
        case(
            "channel",
            Set("/templates/offer/channel", json!("fax")),
            "$.templates.offer.channel",
            "not a channel",
            true,
        ),
        case(
            "escape",
            Set("/templates/offer/parts/html/escape", json!("xml")),
            "$.templates.offer.parts.html.escape",
            "not an escaping",
            true,
        ),
        case(
            "every at",
            Set("/scenarios/weekly_digest/trigger/at", json!("25:99")),
            "$.scenarios.weekly_digest.trigger.at",
            "not a clock time",
            true,
        ),
        case(
            "every day",
            Set("/scenarios/weekly_digest/trigger/day", json!("funday")),
            "$.scenarios.weekly_digest.trigger.day",
            "not a day",
            true,
        ),
        case(
            "negative wait",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~11/seconds",
                json!(-60),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/1\"].seconds",
            "a wait must not be negative",
            true,
        ),
        case(
            "missing entry",
            Remove("/scenarios/drip_offers/entry"),
            "$.scenarios.drip_offers",
            "missing field `entry`",
            true,
        ),
        case(
            "quiet",
            Set("/pressure/quiet/start", json!("25:99")),
            "$.pressure.quiet.start",
            "not a clock time",
            true,
        ),
        case(
            "cap scope",
            Set("/pressure/caps/0/scope", json!("fax")),
            "$.pressure.caps[0].scope",
            "not a cap scope",
            true,
        ),
        case(
            "on excess",
            Set("/pressure/on_excess", json!("explode")),
            "$.pressure.on_excess",
            "not an excess policy",
            true,
        ),
        case(
            "comparison",
            Set("/segments/big_spender/args/1/cmp", json!("=~")),
            "$.segments.big_spender.args[1].cmp",
            "not a comparison",
            true,
        ),
        case(
            "time zone",
            Set("/workspace/timezone", json!("Europe/Atlantis")),
            "$.workspace.timezone",
            "not a zone",
            true,
        ),
        case(
            "unknown top-level key",
            Set("/colour", json!("blue")),
            "$.colour",
            "unknown field `colour`",
            true,
        ),
        case(
            "cap of 0",
            Set("/pressure/caps/0/max", json!(0)),
            "$.pressure.caps[0].max",
            "at least 1 message",
            true,
        ),
        case(
            "cap period 0",
            Set("/pressure/caps/1/per_seconds", json!(0)),
            "$.pressure.caps[1].per_seconds",
            "at least 1",
            true,
        ),
        case(
            "negative wait until timeout",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~12.1.2/timeout_seconds",
                json!(-3600),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/2.1.2\"].timeout_seconds",
            "must not be negative",
            true,
        ),
        case(
            "unknown key in a step",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~10/delay",
                json!(5),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/0\"]",
            "unknown field `delay`",
            true,
        ),
        case(
            "engagement event",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~12/arms/0/when/arg/event",
                json!("viewed"),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/2\"].arms[0].when.arg.event",
            "not an engagement event",
            true,
        ),
        case(
            "engagement scope",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~12/arms/0/when/arg/scope",
                json!("everywhere"),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/2\"].arms[0].when.arg.scope",
            "not an engagement scope",
            true,
        ),
        case(
            "aggregate function",
            Set("/segments/big_spender/args/0/function", json!("median")),
            "$.segments.big_spender.args[0].function",
            "not an aggregate function",
            true,
        ),
        case(
            "negative ago",
            Set("/segments/big_spender/args/0/since/ago_seconds", json!(-5)),
            "$.segments.big_spender.args[0].since.ago_seconds",
            "must not be negative",
            true,
        ),
        case(
            "once at",
            Set("/scenarios/xmas_2026/trigger/at", json!("next christmas")),
            "$.scenarios.xmas_2026.trigger.at",
            "not an RFC 3339 timestamp",
            true,
        ),
        case(
            "plan version",
            Set("/plan_version", json!(3)),
            "$.plan_version",
            "rebuild it",
            true,
        ),
        case(
            "split share",
            Set(
                "/scenarios/xmas_2026/steps/xmas_2026~10/arms/0/share",
                json!(150.0),
            ),
            "$.scenarios.xmas_2026.steps[\"xmas_2026/0\"].arms[0].share",
            "0 to 100",
            true,
        ),
        case(
            "negative reentry",
            Set("/scenarios/drip_offers/reentry/seconds", json!(-1)),
            "$.scenarios.drip_offers.reentry.seconds",
            "must not be negative",
            true,
        ),
        case(
            "negative gap",
            Set("/pressure/gap_seconds", json!(-1)),
            "$.pressure.gap_seconds",
            "must not be negative",
            true,
        ),
        case(
            "field type",
            Set("/schema/fields/0/type", json!("money")),
            "$.schema.fields[0].type",
            "not a field type",
            true,
        ),
        case(
            "address channel",
            Set("/schema/address_fields/fax", json!("email")),
            "$.schema.address_fields.fax",
            "not a channel with addresses",
            true,
        ),
        case(
            "negative touch delay",
            Set(
                "/cadences/fleet_followup/touches/1/after_seconds",
                json!(-1),
            ),
            "$.cadences.fleet_followup.touches[1].after_seconds",
            "must not be negative",
            true,
        ),
        case(
            "unknown expression",
            Set("/segments/cold/op", json!("xor")),
            "$.segments.cold.op",
            "unknown variant `xor`",
            true,
        ),
        // What only the runner's semantic checks catch.
        case(
            "dangling entered segment",
            Set(
                "/scenarios/gps_browse_abandon/trigger/segment",
                json!("ghost"),
            ),
            "$.scenarios.gps_browse_abandon.trigger.segment",
            "segment `ghost` it does not define",
            false,
        ),
        case(
            "dangling segment in a segment",
            Set("/segments/cold/args/1/arg/name", json!("ghost")),
            "$.segments.cold.args[1].arg.name",
            "segment `ghost` it does not define",
            false,
        ),
        case(
            "segment cycle",
            Set("/segments/cold/args/1/arg/name", json!("cold")),
            "$.segments.cold",
            "depends on itself",
            false,
        ),
        case(
            "duplicate scenario order",
            Push("/scenario_order", json!("drip_offers")),
            "$.scenario_order[8]",
            "listed twice",
            false,
        ),
        case(
            "scenario left out of the order",
            Set("/scenario_order", json!(["drip_offers"])),
            "$.scenario_order",
            "is missing",
            false,
        ),
        case(
            "next to no step",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~10/next",
                json!("drip_offers/99"),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/0\"].next",
            "not a step of this scenario",
            false,
        ),
        case(
            "next to another scenario",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~10/next",
                json!("weekly_digest/0"),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/0\"].next",
            "not a step of this scenario",
            false,
        ),
        case(
            "step cycle",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~11/next",
                json!("drip_offers/0"),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/0\"]",
            "leads back to itself",
            false,
        ),
        case(
            "null entry with steps",
            Set("/scenarios/drip_offers/entry", Value::Null),
            "$.scenarios.drip_offers.entry",
            "no `entry`",
            false,
        ),
        case(
            "dangling template",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~10/template",
                json!("ghost"),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/0\"].template",
            "template `ghost`",
            false,
        ),
        case(
            "dangling list",
            Set("/scenarios/drip_offers/trigger/list", json!("ghost")),
            "$.scenarios.drip_offers.trigger.list",
            "list `ghost`",
            false,
        ),
        case(
            "dangling cadence",
            Set(
                "/scenarios/fleet_leads/steps/fleet_leads~13/cadence",
                json!("ghost"),
            ),
            "$.scenarios.fleet_leads.steps[\"fleet_leads/3\"].cadence",
            "cadence `ghost`",
            false,
        ),
        case(
            "dangling event",
            Set("/scenarios/fleet_leads/trigger/event", json!("ghost")),
            "$.scenarios.fleet_leads.trigger.event",
            "event `ghost`",
            false,
        ),
        case(
            "dangling link",
            Set(
                "/scenarios/drip_offers/steps/drip_offers~12/arms/1/when/link",
                json!("ghost"),
            ),
            "$.scenarios.drip_offers.steps[\"drip_offers/2\"].arms[1].when.link",
            "no link `ghost`",
            false,
        ),
        case(
            "at local time",
            Set(
                "/scenarios/weekly_digest/trigger",
                json!({"kind": "at", "at": {"offset": {"term": {"field": "signup_at"}, "seconds": -259200}}, "local_time": "25:00"}),
            ),
            "$.scenarios.weekly_digest.trigger.local_time",
            "not a clock time",
            true,
        ),
        case(
            "at unknown field",
            Set(
                "/scenarios/weekly_digest/trigger",
                json!({"kind": "at", "at": {"offset": {"term": {"field": "ghost"}, "seconds": 60}}, "local_time": null}),
            ),
            "$.scenarios.weekly_digest.trigger.at.offset.term.field",
            "not a field of the contact schema",
            false,
        ),
        case(
            "yearly field not a date",
            Set(
                "/scenarios/weekly_digest/trigger",
                json!({"kind": "yearly", "field": "email", "at": "09:00"}),
            ),
            "$.scenarios.weekly_digest.trigger.field",
            "not a date or timestamp field",
            false,
        ),
        case(
            "split upto decreasing",
            Set(
                "/scenarios/xmas_2026/steps/xmas_2026~10/arms/1/upto",
                json!(10.0),
            ),
            "$.scenarios.xmas_2026.steps[\"xmas_2026/0\"].arms[1].upto",
            "never decreasing",
            false,
        ),
    ]
}

fn apply(plan: &Value, edit: &Edit) -> Value {
    let mut v = plan.clone();
    let p = match edit {
        Edit::Set(p, _) | Edit::Remove(p) | Edit::Push(p, _) => *p,
    };
    let (parent, last) = p.rsplit_once('/').unwrap();
    let (parent, last) = (
        parent.to_string(),
        last.replace("~1", "/").replace("~0", "~"),
    );
    match edit {
        Edit::Set(p, x) => {
            let target = v
                .pointer_mut(&parent)
                .unwrap_or_else(|| panic!("no {parent} in the plan (for {p})"));
            let obj = target.as_object_mut();
            match obj {
                Some(o) => {
                    o.insert(last, x.clone());
                }
                None => {
                    let i: usize = last.parse().unwrap();
                    target[i] = x.clone();
                }
            }
        }
        Edit::Remove(p) => {
            let removed = v
                .pointer_mut(&parent)
                .and_then(Value::as_object_mut)
                .and_then(|o| o.remove(&last));
            assert!(removed.is_some(), "no {p} in the plan");
        }
        Edit::Push(p, x) => {
            v.pointer_mut(p)
                .and_then(Value::as_array_mut)
                .unwrap_or_else(|| panic!("no array {p}"))
                .push(x.clone());
        }
    }
    v
}

#[test]
fn the_schema_and_the_runner_reject_every_broken_plan() {
    let text = build(&root().join("campaigns"), "campaigns");
    let plan: Value = serde_json::from_str(&text).unwrap();
    let schema = validator();
    assert!(schema.is_valid(&plan), "the real plan must pass");
    let cases = cases();
    assert!(cases.iter().filter(|c| c.schema).count() >= 20);
    let dir = temp_dir("broken");
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let broken = apply(&plan, &c.edit);
        assert_ne!(broken, plan, "{}: the edit changed nothing", c.name);
        if c.schema && schema.is_valid(&broken) {
            failures.push(format!("{}: the schema accepts it", c.name));
        }
        let path = dir.join(format!("plan{i}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&broken).unwrap()).unwrap();
        let (code, err) = run(&path);
        let want = format!("plan{i}.json: {}: ", c.path);
        if code != 2 || !err.contains(&want) || !err.contains(c.says) {
            failures.push(format!(
                "{}: exit {code}, expected 2 with `{want}…{}`:\n{err}",
                c.name, c.says
            ));
        }
        if err.contains("simulated") {
            failures.push(format!("{}: the broken plan was run:\n{err}", c.name));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_real_plans_pass_the_schema_and_the_runner() {
    let schema = validator();
    let mut projects = vec![root().join("campaigns")];
    for e in std::fs::read_dir(root().join("examples"))
        .unwrap()
        .flatten()
    {
        if e.path().is_dir() {
            projects.push(e.path());
        }
    }
    assert!(projects.len() >= 3);
    let dir = temp_dir("real");
    for (i, p) in projects.iter().enumerate() {
        let text = build(p, &format!("real{i}"));
        let plan: Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = schema
            .iter_errors(&plan)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {}", p.display(), errors.join("\n"));
        let path = dir.join(format!("plan{i}.json"));
        std::fs::write(&path, &text).unwrap();
        let (code, err) = run(&path);
        assert_eq!(code, 0, "{}: {err}", p.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `check` accepts a zone name in any case (`europe/paris`); the plan
/// spells it as the database does, so that the schema's enum and a runner
/// matching names exactly accept it.
#[test]
fn the_plan_spells_the_workspace_zone_as_the_database_does() {
    let dir = temp_dir("zone");
    std::fs::write(
        dir.join("main.camp"),
        "workspace { name = \"T\", timezone = \"europe/paris\", from = \"T <t@example.com>\", address = \"1 rue X\" }\n\
         contact { email: email }\n",
    )
    .unwrap();
    let text = build(&dir, "zone-out");
    let plan: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(plan["workspace"]["timezone"], "Europe/Paris");
    assert!(validator().is_valid(&plan));
    let _ = std::fs::remove_dir_all(&dir);
}
