//! `relance sql`: the SQL that computes segment membership
//! (`src/sql`), or the DDL of the canonical tables (`--schema`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::diagnostics::render;
use crate::plan::Plan;
use crate::sql::{self, Dialect};
use crate::syntax::ast::DeclKind;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DialectArg {
    Postgres,
    Duckdb,
    Clickhouse,
}

impl From<DialectArg> for Dialect {
    fn from(d: DialectArg) -> Dialect {
        match d {
            DialectArg::Postgres => Dialect::Postgres,
            DialectArg::Duckdb => Dialect::DuckDb,
            DialectArg::Clickhouse => Dialect::ClickHouse,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct SqlArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// The SQL engine: postgres, duckdb or clickhouse.
    #[arg(long, value_enum)]
    pub dialect: DialectArg,
    /// Only this segment (or `audience:SCENARIO`) and what it needs.
    #[arg(long, value_name = "NAME")]
    pub segment: Option<String>,
    /// Print the DDL of the canonical tables instead.
    #[arg(long, conflicts_with = "segment")]
    pub schema: bool,
}

/// The checked project's plan and each segment's source text; on errors,
/// the diagnostics are printed and the exit code returned.
pub fn project_plan(
    path: &Path,
) -> Result<(Plan, BTreeMap<String, String>, sql::Mapping), ExitCode> {
    let Some(now) = super::project_now(path, None) else {
        return Err(ExitCode::from(2));
    };
    let a = super::analyse(path, now).map_err(|super::LoadError(message)| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    })?;
    if a.checked.errors() > 0 {
        eprint!(
            "{}",
            render::human(
                &a.checked.diagnostics,
                &a.loaded.sources,
                &a.prefix,
                super::human_style(super::ColorArg::Auto)
            )
        );
        eprintln!("refused: fix the errors above first (`relance check`)");
        return Err(ExitCode::from(1));
    }
    let Some(plan) = a.checked.plan else {
        return Err(ExitCode::from(1));
    };
    let mut sources = BTreeMap::new();
    for file in &a.checked.files {
        for decl in &file.decls {
            if let DeclKind::Segment(s) = &decl.kind {
                sources.insert(
                    s.name.name.clone(),
                    a.loaded.sources.text(decl.span).to_string(),
                );
            }
        }
    }
    Ok((plan, sources, a.loaded.manifest.warehouse))
}

pub fn sql(args: SqlArgs) -> ExitCode {
    let (plan, sources, mapping) = match project_plan(&args.path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let d = Dialect::from(args.dialect);
    if args.schema {
        print!("{}", sql::schema::ddl(&plan, d));
        return ExitCode::SUCCESS;
    }
    match sql::compile_mapped(&plan, d, args.segment.as_deref(), &sources, &mapping) {
        Ok(c) => {
            print!("{}", c.sql);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
