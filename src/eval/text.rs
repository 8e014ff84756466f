//! The text tests of v1.1 (`starts_with`, `ends_with`, `matches`) and the
//! regular expressions of a plan, compiled once per plan.
//!
//! Patterns use the syntax of the `regex-lite` crate: a Thompson-NFA
//! engine whose search time is linear in the text's length (no
//! backtracking), ASCII classes (`\d`, `\w`, `\s` are ASCII), no Unicode
//! property classes, no look-around and no back-references.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex_lite::{Regex, RegexBuilder};

use crate::plan::Plan;

/// The most bytes a compiled pattern may take: patterns are short, and a
/// counted repetition (`a{1000}{1000}`) must not take unbounded memory.
const SIZE_LIMIT: usize = 1 << 20;
/// The deepest nesting of groups and repetitions in a pattern.
const NEST_LIMIT: u32 = 64;

/// Compiles one pattern with relance's limits; the error in words.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .nest_limit(NEST_LIMIT)
        .build()
        .map_err(|e| {
            // regex-lite's messages span several lines (the pattern, a
            // caret, the reason): keep the reason.
            let text = e.to_string();
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid pattern")
                .trim()
                .trim_start_matches("error: ")
                .to_string()
        })
}

/// The compiled patterns of one plan, built on first use from every
/// `matches` in it (wherever it appears). Never serialized; two plans
/// compare equal whatever their caches hold.
#[derive(Default)]
pub struct Patterns(OnceLock<HashMap<String, Regex>>);

impl Clone for Patterns {
    fn clone(&self) -> Self {
        Patterns(self.0.clone())
    }
}

impl PartialEq for Patterns {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Patterns")
    }
}

impl Patterns {
    /// Whether `text` matches `pattern` (`false` for an invalid pattern,
    /// which a validated plan never holds).
    pub fn is_match(&self, plan: &Plan, pattern: &str, text: &str) -> bool {
        let map = self.0.get_or_init(|| collect(plan));
        match map.get(pattern) {
            Some(re) => re.is_match(text),
            // A pattern added to the plan after its first evaluation (a
            // plan edited in memory): compiled for this call only.
            None => compile(pattern).is_ok_and(|re| re.is_match(text)),
        }
    }
}

/// Every `matches` pattern of the plan, compiled. The plan is walked as
/// JSON so that expressions in any place (segments, steps, triggers,
/// settings added later) are found without listing the places.
fn collect(plan: &Plan) -> HashMap<String, Regex> {
    let mut out = HashMap::new();
    let Ok(json) = serde_json::to_value(plan) else {
        return out;
    };
    let mut stack = vec![&json];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("op").and_then(|o| o.as_str()) == Some("matches")
                    && let Some(p) = m.get("pattern").and_then(|p| p.as_str())
                    && !out.contains_key(p)
                    && let Ok(re) = compile(p)
                {
                    out.insert(p.to_string(), re);
                }
                stack.extend(m.values());
            }
            serde_json::Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Problems, SourceFile, SourceMap};
    use crate::eval::{Contact, Context, Event, Value};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn plan(src: &str) -> Plan {
        let mut sources = SourceMap::new();
        sources.add(SourceFile::new("t.camp", src));
        let checked = crate::driver::check_sources(&sources, Problems::new(), 1);
        assert_eq!(checked.errors(), 0, "{:?}", checked.diagnostics);
        crate::plan::build_plan(&sources, &checked.files, &BTreeMap::new())
    }

    const NOW: i64 = 1_800_000_000;

    fn holds(plan: &Plan, segment: &str, contact: &Contact, events: &[Event]) -> bool {
        Context {
            plan,
            contact,
            events,
            now: NOW,
            run: None,
        }
        .eval(&plan.segments[segment])
    }

    fn contact(name: Option<&str>, email: &str) -> Contact {
        let mut c = Contact::default();
        if let Some(n) = name {
            c.fields.insert("name".into(), Value::Text(n.into()));
        }
        c.fields.insert("email".into(), Value::Text(email.into()));
        c
    }

    const SRC: &str = r#"
contact { email: email, name: text?, phone: phone? }
event visit { path: text?, n: number }
segment dr = name starts_with "Dr"
segment staff = email ends_with "@acme.example"
segment self_named = email starts_with name
segment mobile = phone matches "^\\+33[67][0-9]{8}$"
segment anywhere = name matches "b+"
segment paths = count distinct(visit.path) >= 2
segment paths_where = count distinct(visit.path where n > 1 since 10d ago) >= 2
segment numbers = count distinct(visit.n) >= 3
"#;

    #[test]
    fn text_tests_on_present_and_absent_values() {
        let p = plan(SRC);
        let marie = contact(Some("Dr Marie"), "marie@acme.example");
        assert!(holds(&p, "dr", &marie, &[]));
        assert!(holds(&p, "staff", &marie, &[]));
        let nobody = contact(None, "x@other.example");
        assert!(!holds(&p, "dr", &nobody, &[]));
        assert!(!holds(&p, "staff", &nobody, &[]));
        // An absent right-hand side makes the test false too.
        assert!(!holds(&p, "self_named", &nobody, &[]));
        let me = contact(Some("x@"), "x@other.example");
        assert!(holds(&p, "self_named", &me, &[]));
        // Case matters; the pattern is searched anywhere unless anchored.
        assert!(!holds(&p, "dr", &contact(Some("dr who"), "a@b.c"), &[]));
        assert!(holds(&p, "anywhere", &contact(Some("abba"), "a@b.c"), &[]));
        let mut c = Contact::default();
        c.fields
            .insert("phone".into(), Value::Text("+33612345678".into()));
        assert!(holds(&p, "mobile", &c, &[]));
        c.fields
            .insert("phone".into(), Value::Text("+336123456789".into()));
        assert!(!holds(&p, "mobile", &c, &[]));
        assert!(!holds(&p, "mobile", &Contact::default(), &[]));
        // Compiled once, when the plan is first evaluated.
        assert!(p.patterns.0.get().is_some_and(|m| m.len() == 2));
    }

    fn visit(at: i64, path: Option<&str>, n: f64) -> Event {
        let mut fields = BTreeMap::new();
        if let Some(path) = path {
            fields.insert("path".to_string(), Value::Text(path.into()));
        }
        fields.insert("n".to_string(), Value::Number(n));
        Event {
            name: "visit".into(),
            at,
            fields,
            run: None,
        }
    }

    #[test]
    fn count_distinct_skips_absent_values_and_obeys_where_and_since() {
        let p = plan(SRC);
        let c = Contact::default();
        let day = 86_400;
        let same = [
            visit(NOW - day, Some("/a"), 1.0),
            visit(NOW - day, Some("/a"), 2.0),
        ];
        assert!(!holds(&p, "paths", &c, &same));
        let two = [
            visit(NOW - 20 * day, Some("/b"), 5.0),
            visit(NOW - day, Some("/a"), 1.0),
            visit(NOW - day, None, 2.0),
        ];
        assert!(holds(&p, "paths", &c, &two));
        // `/b` is too old, `/a` has n = 1: one distinct path at most.
        assert!(!holds(&p, "paths_where", &c, &two));
        let zeros = [
            visit(NOW - 3, Some("/a"), 0.0),
            visit(NOW - 2, Some("/a"), -0.0),
            visit(NOW - 1, Some("/a"), 1.0),
        ];
        // 0 and -0 are one value: two distinct numbers.
        assert!(!holds(&p, "numbers", &c, &zeros));
    }

    /// Kernighan and Pike's matcher for `c`, `.`, `c*`, `^` and `$`: the
    /// naive reference for `matches` on those patterns.
    fn naive_match(re: &[char], text: &[char]) -> bool {
        if let Some(('^', rest)) = re.split_first() {
            return naive_here(rest, text);
        }
        (0..=text.len()).any(|i| naive_here(re, &text[i..]))
    }

    fn naive_here(re: &[char], text: &[char]) -> bool {
        match re {
            [] => true,
            ['$'] => text.is_empty(),
            [c, '*', rest @ ..] => {
                let mut i = 0;
                loop {
                    if naive_here(rest, &text[i..]) {
                        return true;
                    }
                    if i < text.len() && (*c == '.' || text[i] == *c) {
                        i += 1;
                    } else {
                        return false;
                    }
                }
            }
            [c, rest @ ..] => {
                !text.is_empty() && (*c == '.' || text[0] == *c) && naive_here(rest, &text[1..])
            }
        }
    }

    fn pattern() -> impl Strategy<Value = String> {
        (
            any::<bool>(),
            prop::collection::vec(
                (prop::sample::select(vec!['a', 'b', '.']), any::<bool>()),
                0..5,
            ),
            any::<bool>(),
        )
            .prop_map(|(start, atoms, end)| {
                let mut s = String::new();
                if start {
                    s.push('^');
                }
                for (c, star) in atoms {
                    s.push(c);
                    if star {
                        s.push('*');
                    }
                }
                if end {
                    s.push('$');
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn affixes_agree_with_a_naive_implementation(
            value in "[abé]{0,6}",
            affix in "[abé]{0,3}",
        ) {
            let src = format!(
                "contact {{ email: email, name: text? }}\nsegment s = name starts_with {affix:?}\nsegment e = name ends_with {affix:?}\n"
            );
            let p = plan(&src);
            let c = contact(Some(&value), "a@b.c");
            let (v, a): (Vec<char>, Vec<char>) = (value.chars().collect(), affix.chars().collect());
            let naive_start = a.len() <= v.len() && v[..a.len()] == a[..];
            let naive_end = a.len() <= v.len() && v[v.len() - a.len()..] == a[..];
            prop_assert_eq!(holds(&p, "s", &c, &[]), naive_start);
            prop_assert_eq!(holds(&p, "e", &c, &[]), naive_end);
        }

        #[test]
        fn matches_agrees_with_a_naive_matcher(re in pattern(), text in "[ab]{0,6}") {
            let src = format!("contact {{ email: email, name: text? }}\nsegment m = name matches {re:?}\n");
            let p = plan(&src);
            let c = contact(Some(&text), "a@b.c");
            let re_chars: Vec<char> = re.chars().collect();
            let t: Vec<char> = text.chars().collect();
            prop_assert_eq!(holds(&p, "m", &c, &[]), naive_match(&re_chars, &t), "{} on {:?}", re, text);
        }

        #[test]
        fn count_distinct_agrees_with_a_naive_count(
            paths in prop::collection::vec(prop::option::of("[ab]{0,2}"), 0..8),
            at_least in 0usize..5,
        ) {
            let src = format!(
                "contact {{ email: email }}\nevent visit {{ path: text?, n: number }}\nsegment d = count distinct(visit.path) >= {at_least}\n"
            );
            let p = plan(&src);
            let events: Vec<Event> = paths
                .iter()
                .enumerate()
                .map(|(i, path)| visit(NOW - 100 + i as i64, path.as_deref(), 0.0))
                .collect();
            let mut distinct: Vec<&String> = Vec::new();
            for path in paths.iter().flatten() {
                if !distinct.contains(&path) {
                    distinct.push(path);
                }
            }
            prop_assert_eq!(holds(&p, "d", &Contact::default(), &events), distinct.len() >= at_least);
        }
    }

    #[test]
    fn invalid_patterns_say_why_in_one_line() {
        let e = compile("(unclosed").unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        assert!(!e.is_empty());
        assert!(compile("a{2,1}").is_err());
        assert!(compile("^\\+33[0-9]{9}$").is_ok());
    }

    #[test]
    fn a_huge_repetition_is_refused_not_built() {
        assert!(compile("(a{1000}){1000}").is_err());
    }
}
