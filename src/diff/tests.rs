//! The risk rules on hand-made pressure policies (no project, no UI).

use super::*;
use crate::plan::{Cap, Quiet, QuietRule};

fn policy(caps: &[(&str, u32, i64)], quiet: Option<(&str, &str)>, weekends: bool) -> Pressure {
    Pressure {
        caps: caps
            .iter()
            .map(|(scope, max, per)| Cap {
                scope: scope.to_string(),
                max: *max,
                per_seconds: *per,
            })
            .collect(),
        gap_seconds: None,
        quiet: quiet.map(|(s, e)| Quiet {
            start: s.into(),
            end: e.into(),
        }),
        on_excess: "defer".into(),
        under_below: None,
        quiet_rules: if weekends {
            vec![QuietRule {
                channel: Some("sms".into()),
                kind: "weekends".into(),
                start: None,
                end: None,
            }]
        } else {
            Vec::new()
        },
    }
}

fn codes_and_messages(risks: &[Risk]) -> Vec<String> {
    risks
        .iter()
        .map(|r| format!("{} {}", r.code, r.message))
        .collect()
}

const WEEK: i64 = 7 * 86_400;

#[test]
fn caps_raised_removed_or_kept() {
    let old = policy(&[("email", 3, WEEK), ("sms", 1, WEEK)], None, false);
    // email: 3 per 7d -> 1 per 2d is a higher rate; sms gone.
    let new = policy(&[("email", 1, 2 * 86_400)], None, false);
    let mut risks = Vec::new();
    raised_caps(Some(&old), Some(&new), &mut risks);
    assert_eq!(
        codes_and_messages(&risks),
        [
            "R0103 cap `email max 3 per 7d` is raised to `email max 1 per 2d`",
            "R0103 cap `sms max 1 per 7d` is removed",
        ]
    );
    // A lower rate, an equal one written otherwise, or a new cap: no risk.
    let new = policy(
        &[
            ("email", 6, 2 * WEEK),
            ("sms", 1, 2 * WEEK),
            ("push", 1, WEEK),
        ],
        None,
        false,
    );
    let mut risks = Vec::new();
    raised_caps(Some(&old), Some(&new), &mut risks);
    assert!(risks.is_empty(), "{risks:?}");
    // The whole policy removed: every cap.
    let mut risks = Vec::new();
    raised_caps(Some(&old), None, &mut risks);
    assert_eq!(risks.len(), 2);
}

#[test]
fn quiet_hours_shortened_moved_or_removed() {
    let old = policy(&[], Some(("21:00", "08:00")), true);
    let mut risks = Vec::new();
    // Longer on both ends: no risk.
    let longer = policy(&[], Some(("20:00", "09:00")), true);
    shortened_quiet(Some(&old), Some(&longer), &mut risks);
    assert!(risks.is_empty(), "{risks:?}");
    // Moved an hour later, and the weekends rule gone.
    let moved = policy(&[], Some(("22:00", "09:00")), false);
    shortened_quiet(Some(&old), Some(&moved), &mut risks);
    assert_eq!(
        codes_and_messages(&risks),
        [
            "R0104 21:00–22:00 no longer quiet for marketing messages",
            "R0104 weekends are no longer quiet for sms",
        ]
    );
    let mut risks = Vec::new();
    shortened_quiet(Some(&old), None, &mut risks);
    assert_eq!(
        codes_and_messages(&risks)[0],
        "R0104 21:00–08:00 no longer quiet for marketing messages"
    );
}

#[test]
fn the_json_schema_names_every_risk_code() {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
    let codes = &schema["$defs"]["Risk"]["properties"]["code"]["enum"];
    let want: Vec<&str> = RiskCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(codes, &serde_json::json!(want), "{schema}");
}

#[test]
fn partial_names_are_found_in_every_form() {
    let text = "{{> header}} {{~> footer ~}} {{#> layout title=\"x\"}}b{{/layout}} \
                {{> [my partial]}} {{> 'quoted'}} {{> (lookup . \"p\")}} \
                {{!-- {{> commented}} --}} {{! {{> short}} }} {{name}} {{#if x}}{{>inner}}{{/if}}";
    assert_eq!(
        partial_names(text),
        [
            "header",
            "footer",
            "layout",
            "my partial",
            "quoted",
            ANY_PARTIAL,
            "inner"
        ]
    );
}

/// A side with the given partials and one template whose html is `html`.
fn side_with(partials: &[(&str, &str)], html: &str) -> Side {
    let plan: Plan = serde_json::from_str(&format!(
        r#"{{"plan_version": 1,
        "workspace": {{"name": null, "timezone": null, "from": null, "address": null}},
        "schema": {{"fields": [], "address_fields": {{}}, "timezone_field": null}},
        "events": {{}}, "lists": {{}}, "segments": {{}},
        "templates": {{"t": {{"channel": "task", "kind": "operational", "address_field": null,
            "parts": {{"body": {{"source": "inline", "text": {html:?}, "escape": "none",
              "sha256": "0000000000000000000000000000000000000000000000000000000000000000"}}}},
            "links": {{}}, "link_order": [], "headers": {{}}, "content_hash": ""}}}},
        "scenarios": {{}}, "cadences": {{}}, "pressure": null, "scenario_order": []}}"#
    ))
    .expect("test plan");
    Side {
        plan,
        personas: BTreeMap::new(),
        now: 0,
        rendered: BTreeMap::new(),
        partials: partials
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect(),
    }
}

#[test]
fn a_template_changes_through_a_partial_it_reaches_transitively() {
    let html = "{{> footer}}";
    let old = side_with(
        &[
            ("footer", "a {{> social}}"),
            ("social", "x"),
            ("other", "1"),
        ],
        html,
    );
    // `social` is reached through `footer`; `other` by nothing.
    let new = side_with(
        &[
            ("footer", "a {{> social}}"),
            ("social", "y"),
            ("other", "2"),
        ],
        html,
    );
    assert_eq!(
        changed_templates(&old, &new),
        BTreeSet::from(["t".to_string()])
    );
    let changes = templates(&old, &new);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].change, ChangeKind::Changed);
    assert_eq!(
        changes[0].details,
        [
            "~ partial social (templates/partials/social.hbs), lines:",
            "  - x",
            "  + y"
        ]
    );
    // Only `other` changed: no template reaches it.
    let new = side_with(
        &[
            ("footer", "a {{> social}}"),
            ("social", "x"),
            ("other", "2"),
        ],
        html,
    );
    assert!(changed_templates(&old, &new).is_empty());
    assert!(templates(&old, &new).is_empty());
}
