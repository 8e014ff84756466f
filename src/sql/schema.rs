//! The canonical warehouse tables of a plan, as DDL per dialect:
//! `contacts` (`id` and one typed column per schema field, sets as
//! arrays), `events` (`contact`, `event`, `at`, the built-in message
//! columns and one typed column per declared event field, named
//! `EVENT__FIELD`), `list_members` and `tags`.

use std::fmt::Write as _;

use super::{Dialect, MESSAGE_COLUMNS, event_column};
use crate::plan::Plan;

/// The SQL type of a field type.
pub fn column_type(d: Dialect, ty: &str) -> String {
    let base = match (d, ty) {
        (Dialect::Postgres, "number") => "numeric",
        (Dialect::Postgres, "bool") => "boolean",
        (Dialect::Postgres, "date") => "date",
        (Dialect::Postgres, "timestamp") => "timestamptz",
        (Dialect::Postgres, "set<text>") => "text[] COLLATE \"C\"",
        (Dialect::Postgres, _) => "text COLLATE \"C\"",
        (Dialect::DuckDb, "number") => "DOUBLE",
        (Dialect::DuckDb, "bool") => "BOOLEAN",
        (Dialect::DuckDb, "date") => "DATE",
        (Dialect::DuckDb, "timestamp") => "TIMESTAMPTZ",
        (Dialect::DuckDb, "set<text>") => "VARCHAR[]",
        (Dialect::DuckDb, _) => "VARCHAR",
        (Dialect::ClickHouse, "number") => "Nullable(Float64)",
        (Dialect::ClickHouse, "bool") => "Nullable(Bool)",
        (Dialect::ClickHouse, "date") => "Nullable(Date32)",
        (Dialect::ClickHouse, "timestamp") => "Nullable(DateTime64(3, 'UTC'))",
        // Arrays cannot be Nullable: an absent set is an empty one.
        (Dialect::ClickHouse, "set<text>") => "Array(String)",
        (Dialect::ClickHouse, _) => "Nullable(String)",
    };
    base.to_string()
}

/// The columns of the events table beyond `contact`, `event`, `at`:
/// `(column, field type)`, sorted and unique.
pub fn event_columns(plan: &Plan) -> Vec<(String, String)> {
    let mut cols: Vec<(String, String)> = MESSAGE_COLUMNS
        .iter()
        .map(|c| (c.to_string(), "text".to_string()))
        .collect();
    for (name, ty) in &plan.events {
        if ty.builtin {
            continue;
        }
        for f in &ty.fields {
            cols.push((event_column(plan, name, &f.name), f.ty.clone()));
        }
    }
    cols
}

/// `CREATE TABLE` statements of the canonical tables, then their indexes.
pub fn ddl(plan: &Plan, d: Dialect) -> String {
    format!("{}{}", tables(plan, d), indexes(plan, d))
}

/// The secondary indexes of the canonical tables (PostgreSQL): created
/// after a bulk load rather than maintained row by row during it.
/// The contacts' dates and times too: `segments --write` looks up the
/// contacts whose `signup_at >= 14d ago` may have flipped in a day.
pub fn indexes(plan: &Plan, d: Dialect) -> String {
    if d != Dialect::Postgres {
        return String::new();
    }
    let mut sql = "CREATE INDEX events_by_event ON events (event, \"at\");\nCREATE INDEX events_by_at ON events (\"at\");\n".to_string();
    for f in &plan.schema.fields {
        if f.ty == "date" || f.ty == "timestamp" {
            let name: String = f
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let _ = writeln!(
                sql,
                "CREATE INDEX {} ON contacts ({});",
                d.ident(&format!("contacts_by_{name}")),
                d.ident(&f.name)
            );
        }
    }
    sql
}

/// `CREATE TABLE` statements of the canonical tables (with their keys).
pub fn tables(plan: &Plan, d: Dialect) -> String {
    let id = match d {
        Dialect::Postgres => "text COLLATE \"C\" NOT NULL",
        Dialect::DuckDb => "VARCHAR NOT NULL",
        Dialect::ClickHouse => "String",
    };
    let at = match d {
        Dialect::Postgres => "timestamptz NOT NULL",
        Dialect::DuckDb => "TIMESTAMPTZ NOT NULL",
        Dialect::ClickHouse => "DateTime64(3, 'UTC')",
    };
    let engine = |order: &str| match d {
        Dialect::ClickHouse => format!(" ENGINE = MergeTree ORDER BY ({order})"),
        _ => String::new(),
    };
    let mut sql = String::new();
    let _ = writeln!(
        sql,
        "-- The canonical tables of relance's segments ({}), generated from the project's schema.",
        d.name()
    );
    let mut cols = vec![format!("  id {id}")];
    for f in &plan.schema.fields {
        cols.push(format!("  {} {}", d.ident(&f.name), column_type(d, &f.ty)));
    }
    if d != Dialect::ClickHouse {
        cols.push("  PRIMARY KEY (id)".into());
    }
    let _ = writeln!(
        sql,
        "CREATE TABLE contacts (\n{}\n){};",
        cols.join(",\n"),
        engine("id")
    );
    let mut cols = vec![
        format!("  contact {id}"),
        format!("  event {id}"),
        format!("  \"at\" {at}"),
    ];
    for (c, ty) in event_columns(plan) {
        cols.push(format!("  {} {}", d.ident(&c), column_type(d, &ty)));
    }
    let _ = writeln!(
        sql,
        "CREATE TABLE events (\n{}\n){};",
        cols.join(",\n"),
        engine("contact, event, \"at\"")
    );
    let key = |a: &str, b: &str| match d {
        Dialect::ClickHouse => engine(&format!("{a}, {b}")),
        _ => String::new(),
    };
    let pk = |a: &str, b: &str| match d {
        Dialect::ClickHouse => String::new(),
        _ => format!(",\n  PRIMARY KEY ({a}, {b})"),
    };
    let _ = writeln!(
        sql,
        "CREATE TABLE list_members (\n  contact {id},\n  \"list\" {id}{}\n){};",
        pk("\"list\"", "contact"),
        key("\"list\"", "contact")
    );
    let _ = writeln!(
        sql,
        "CREATE TABLE tags (\n  contact {id},\n  tag {id}{}\n){};",
        pk("contact", "tag"),
        key("contact", "tag")
    );
    sql
}
