//! Plan upgrades: a new plan replaces the old one atomically.

use super::api::Answer;
use super::db::{self, error};
use super::{Loaded, Shared};

/// Makes `loaded` the database's plan (at start).
pub fn install(tx: &mut postgres::Transaction, loaded: &Loaded) -> Result<(), String> {
    let current = db::meta(tx, "plan")?;
    if current.as_deref() == Some(loaded.hash.as_str()) {
        return Ok(());
    }
    let started: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM relance.contacts WHERE state IS NOT NULL)",
            &[],
        )
        .map_err(error)?
        .get(0);
    if current.is_some() && started {
        return Err("the database runs another plan and upgrading a running plan is not supported yet".into());
    }
    let body = serde_json::to_string(&loaded.plan).map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO relance.plans (hash, body) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
        &[&loaded.hash, &body],
    )
    .map_err(error)?;
    db::set_meta(tx, "plan", &loaded.hash)
}

/// SIGHUP: reads the plan file again.
pub fn reload(_shared: &Shared) -> Result<String, String> {
    Err("plan upgrades are not supported yet".into())
}

/// `POST /v1/plan`.
pub fn post_plan(_shared: &Shared, _body: &str) -> Result<Answer, String> {
    Ok(Answer::error(501, "plan upgrades are not supported yet"))
}
