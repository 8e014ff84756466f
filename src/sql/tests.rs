use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::diagnostics::{Problems, SourceFile, SourceMap};

fn plan(src: &str) -> Plan {
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new("t.camp", src));
    let checked = crate::driver::check_sources(&sources, Problems::new(), 1);
    assert_eq!(checked.errors(), 0, "{:?}", checked.diagnostics);
    crate::plan::build_plan(&sources, &checked.files, &BTreeMap::new())
}

const SRC: &str = r#"
contact { email: email, phone: phone?, ltv: number?, plan: enum(free, pro), opted_out: bool, seen: timestamp?, born: date?, interests: set<text> }
event purchase { amount: number, sku: text }
list vip
template offer : task { body = "call" }
segment rich = ltv > 100.5
segment pros = plan == pro and vip
segment opened_offer = opened(offer since 7d ago)
segment big = sum(purchase.amount since 30d ago) > 500
segment avg_high = avg(purchase.amount) > 10
segment few = count(purchase where amount > 100) < 2
segment mailable = not opted_out
segment gps = interests contains "gps" and not rich
segment recent = seen >= 14d ago or born - 3d < 2026-01-01
segment tagged = tags contains "x"
"#;

fn sql(d: Dialect) -> String {
    compile(&plan(SRC), d, None, &BTreeMap::new()).unwrap().sql
}

#[test]
fn one_cte_per_segment_with_its_source() {
    let p = plan(SRC);
    let mut sources = BTreeMap::new();
    sources.insert("rich".to_string(), "segment rich = ltv > 100.5".to_string());
    let c = compile(&p, Dialect::Postgres, None, &sources).unwrap();
    assert!(
        c.sql
            .contains("\"seg_rich\" AS (\n  -- segment rich = ltv > 100.5\n"),
        "{}",
        c.sql
    );
    assert_eq!(c.targets.len(), p.segments.len());
    assert!(
        c.sql.contains("COALESCE(c.\"ltv\" > 100.5, FALSE)"),
        "{}",
        c.sql
    );
    // `gps` reuses `rich`'s CTE rather than compiling it twice.
    assert_eq!(c.sql.matches("\"seg_rich\" AS (").count(), 1);
}

#[test]
fn negations_stay_two_valued() {
    let s = sql(Dialect::Postgres);
    assert!(s.contains("NOT COALESCE(c.\"opted_out\", FALSE)"), "{s}");
    assert!(s.contains("NOT (s"), "{s}");
}

#[test]
fn aggregates_count_absent_contacts_as_zero_and_avg_is_exact() {
    let s = sql(Dialect::DuckDb);
    assert!(s.contains("COALESCE(a1.v, 0) > 500"), "{s}");
    assert!(
        s.contains("sum(CAST(e.\"purchase__amount\" AS DECIMAL(38, 10))) AS total"),
        "{s}"
    );
    assert!(s.contains("(a1.n > 0 AND a1.total > 10 * a1.n)"), "{s}");
    assert!(s.contains("e.event IN ('opened', 'clicked')"), "{s}");
}

#[test]
fn dates_shift_by_days_and_times_compare_in_seconds() {
    let s = sql(Dialect::Postgres);
    assert!(s.contains("(c.\"born\" + -3)"), "{s}");
    assert!(s.contains("floor(extract(epoch from c.\"seen\"))::bigint >= ((SELECT now_s FROM params) - 1209600)"), "{s}");
    let ch = sql(Dialect::ClickHouse);
    assert!(ch.contains("addDays(c.\"born\", -3)"), "{ch}");
    assert!(ch.ends_with("SETTINGS join_use_nulls = 1\n"), "{ch}");
}

#[test]
fn text_order_ignores_the_collation_in_postgres() {
    // The checker refuses to order texts; a plan written by another tool
    // may still hold such a comparison.
    let mut p = plan("contact { email: email, name: text? }\n");
    p.segments.insert(
        "late".into(),
        Expr::Compare {
            cmp: ">".into(),
            left: Term::Field("name".into()),
            right: Term::Text("M".into()),
        },
    );
    let c = compile(&p, Dialect::Postgres, None, &BTreeMap::new()).unwrap();
    assert!(
        c.sql.contains("(c.\"name\" COLLATE \"C\") > 'M'"),
        "{}",
        c.sql
    );
}

#[test]
fn one_segment_brings_what_it_needs_and_an_unknown_one_is_named() {
    let p = plan(SRC);
    let c = compile(&p, Dialect::Postgres, Some("gps"), &BTreeMap::new()).unwrap();
    assert_eq!(c.targets, vec!["gps".to_string()]);
    assert!(c.sql.contains("\"seg_rich\""));
    assert!(!c.sql.contains("\"seg_big\""));
    let e = compile(&p, Dialect::Postgres, Some("nope"), &BTreeMap::new()).unwrap_err();
    assert!(e.message.contains("known: avg_high"), "{e}");
}

#[test]
fn patterns_the_engines_read_differently_are_refused() {
    let p = plan(
        "contact { email: email, name: text? }\nsegment a = name matches \"^[A-Z]\\\\d+$\"\nsegment b = name matches \"(?i)x\"\n",
    );
    let e = compile(&p, Dialect::Postgres, None, &BTreeMap::new()).unwrap_err();
    assert_eq!(e.target, "b");
    assert!(e.message.contains("(?i)"), "{e}");
    let c = compile(&p, Dialect::DuckDb, Some("a"), &BTreeMap::new()).unwrap();
    assert!(
        c.sql
            .contains("regexp_matches(c.\"name\", '^[A-Z][0-9]+$')"),
        "{}",
        c.sql
    );
}

#[test]
fn the_schema_has_a_typed_column_per_field() {
    let p = plan(SRC);
    let pg = schema::ddl(&p, Dialect::Postgres);
    assert!(pg.contains("\"ltv\" numeric"), "{pg}");
    assert!(pg.contains("\"interests\" text[] COLLATE \"C\""), "{pg}");
    assert!(pg.contains("\"purchase__amount\" numeric"), "{pg}");
    let duck = schema::ddl(&p, Dialect::DuckDb);
    assert!(duck.contains("\"seen\" TIMESTAMPTZ"), "{duck}");
    let ch = schema::ddl(&p, Dialect::ClickHouse);
    assert!(ch.contains("ENGINE = MergeTree ORDER BY (id)"), "{ch}");
}

#[test]
fn mapped_tables_become_ctes_of_the_canonical_names() {
    let p = plan(SRC);
    let mut m = Mapping {
        contacts: Some(TableMap {
            table: "crm.customers".into(),
            columns: [("id".to_string(), "customer_id".to_string())].into(),
        }),
        ..Mapping::default()
    };
    m.event_tables.insert(
        "purchase".into(),
        TableMap {
            table: "shop.orders".into(),
            columns: [("amount".to_string(), "total".to_string())].into(),
        },
    );
    let c = compile_mapped(&p, Dialect::Postgres, Some("big"), &BTreeMap::new(), &m).unwrap();
    assert!(
        c.sql.contains("WITH contacts AS (\n  -- crm.customers"),
        "{}",
        c.sql
    );
    assert!(c.sql.contains("\"customer_id\" AS \"id\""), "{}", c.sql);
    assert!(
        c.sql.contains("\"total\" AS \"purchase__amount\"")
            && c.sql.contains("NULL AS \"template\""),
        "{}",
        c.sql
    );
    assert!(!table_name_ok("x; DROP TABLE y") && table_name_ok("crm.customers"));
}

/// Which keys re-evaluate which target (`incremental::dirty_sql`): the
/// events a target reads, `opened` reading the clicks too, its time
/// windows, and all of that of the segments it reads.
#[test]
fn incremental_keys_follow_what_each_target_reads() {
    let p = plan(SRC);
    let t0 = 1_767_225_600; // 2026-01-01
    let dirty = incremental::dirty_sql(&p, &Mapping::default(), t0, t0 + 86_400)
        .unwrap()
        .expect("no constant flips");
    let keys = |target: &str| -> Vec<&str> {
        dirty
            .targets
            .iter()
            .filter(|(t, _)| t == target)
            .map(|(_, k)| k.as_str())
            .collect()
    };
    let opened = keys("opened_offer");
    assert!(
        opened.contains(&"e:opened") && opened.contains(&"e:clicked"),
        "{opened:?}"
    );
    assert!(opened.iter().any(|k| k.starts_with("v:")), "{opened:?}");
    assert_eq!(keys("few"), ["e:purchase"]);
    assert!(keys("rich").is_empty(), "{:?}", keys("rich"));
    // `gps` reads `rich`, which reads no event: nothing but its rows.
    assert!(keys("gps").is_empty());
    let recent = keys("recent");
    assert!(recent.iter().all(|k| k.starts_with("c:")) && !recent.is_empty());
    assert!(dirty.keys.contains("'e:' || e.event"), "{}", dirty.keys);
}

#[test]
fn incremental_keys_of_a_segment_include_the_segments_it_reads() {
    let p = plan(
        r#"
contact { email: email, seen: timestamp? }
event purchase { amount: number }
segment buyer = count(purchase since 30d ago) > 0
segment warm = seen >= 7d ago
segment both = buyer and not warm
"#,
    );
    let t0 = 1_767_225_600;
    let dirty = incremental::dirty_sql(&p, &Mapping::default(), t0, t0 + 86_400)
        .unwrap()
        .unwrap();
    let keys = |target: &str| -> BTreeSet<&str> {
        dirty
            .targets
            .iter()
            .filter(|(t, _)| t == target)
            .map(|(_, k)| k.as_str())
            .collect()
    };
    let union: BTreeSet<&str> = keys("buyer").union(&keys("warm")).copied().collect();
    assert_eq!(keys("both"), union);
    assert!(keys("both").contains("e:purchase"));
}

#[test]
fn kept_aggregates_are_named_alike_in_every_compilation_and_read_through_segments() {
    let p = plan(SRC);
    let full = compile(&p, Dialect::Postgres, None, &BTreeMap::new()).unwrap();
    let a = &full.aggregates;
    assert!(a.complete());
    let kinds: Vec<(String, state::Kind)> =
        a.list.iter().map(|x| (x.name.clone(), x.kind)).collect();
    assert!(kinds.iter().any(|(_, k)| *k == state::Kind::Exists));
    assert!(kinds.iter().any(|(_, k)| *k == state::Kind::Sum));
    assert!(kinds.iter().any(|(_, k)| *k == state::Kind::Avg));
    assert!(kinds.iter().any(|(_, k)| *k == state::Kind::Count));
    // The state is keyed by CTE name: the incremental and the full
    // queries read it under the same names.
    let restrict = Restrict {
        prefix: "r_",
        dirty: "d",
        members: "m",
    };
    let inc = incremental::restricted(&p, &BTreeMap::new(), &restrict, Some(state::TABLE)).unwrap();
    let kinds2: Vec<(String, state::Kind)> = inc
        .aggregates
        .list
        .iter()
        .map(|x| (x.name.clone(), x.kind))
        .collect();
    assert_eq!(kinds, kinds2);
    for (name, _) in &kinds {
        assert!(
            inc.sql.contains(&format!(
                "\"{name}\" AS NOT MATERIALIZED (\n  SELECT contact, "
            )),
            "{name}: {}",
            inc.sql
        );
    }
    let st = incremental::with_state(&p, &BTreeMap::new(), state::TABLE).unwrap();
    assert!(!st.sql.contains("FROM ev e"), "{}", st.sql);
    // `gps` reads `rich` (no aggregate); `few`'s count is compared with 2.
    assert!(a.reads["gps"].is_empty());
    let few = &a.reads["few"];
    assert_eq!(few.len(), 1);
    let agg = a.list.iter().find(|x| few.contains(&x.name)).unwrap();
    let tests = agg.tests.as_ref().unwrap();
    assert_eq!(
        tests
            .iter()
            .map(|t| (t.op.as_str(), t.value.as_str()))
            .collect::<Vec<_>>(),
        [("<", "2")]
    );
}

#[test]
fn an_aggregate_reading_a_list_is_not_kept_and_a_segment_reads_its_segments_aggregates() {
    let p = plan(
        r#"
contact { email: email, ltv: number? }
event purchase { amount: number }
list vip
segment buyers = count(purchase where vip) > 0
segment big = sum(purchase.amount) > ltv
segment both = big and not buyers
"#,
    );
    let c = compile(&p, Dialect::Postgres, None, &BTreeMap::new()).unwrap();
    assert!(!c.aggregates.complete());
    assert_eq!(c.aggregates.reads["both"].len(), 2);
    // Compared with the contact's `ltv`: every move counts.
    let big = c
        .aggregates
        .list
        .iter()
        .find(|x| x.kind == state::Kind::Sum)
        .unwrap();
    assert!(big.tests.is_none());
}
