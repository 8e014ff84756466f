//! Plan upgrades: a new plan (the `--plan` file at start, the same file
//! again on SIGHUP, or `POST /v1/plan`) replaces the old one in one
//! transaction. The switch takes the `plan` row of `relance.meta` for
//! update, which every engine transaction holds for share: no contact is
//! stepped half under one plan and half under the other. After it, each
//! process notices the new hash at its next engine transaction and loads
//! the plan from `relance.plans`.
//!
//! States are moved onto the new plan contact by contact, by the engine
//! (`run::Journey::upgrade`): the switch makes every started contact due,
//! so the move happens at once, at the clock. Runs waiting at a step that
//! still exists go on; runs at a removed step end with reason
//! `plan_changed`, counted and listed on the contact.

use std::sync::Arc;

use serde_json::json;

use super::api::Answer;
use super::db::{self, error};
use super::{Loaded, Shared};

/// Makes `loaded` the database's plan, in `tx`. Returns whether it changed.
/// `clock`: the runner's clock now.
pub fn install(
    tx: &mut postgres::Transaction,
    loaded: &Loaded,
    clock: i64,
) -> Result<bool, String> {
    let current: Option<String> = tx
        .query_opt(
            "SELECT value FROM relance.meta WHERE key = 'plan' FOR UPDATE",
            &[],
        )
        .map_err(error)?
        .map(|r| r.get(0));
    if current.as_deref() == Some(loaded.hash.as_str()) {
        return Ok(false);
    }
    let body = serde_json::to_string(&loaded.plan).map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO relance.plans (hash, body) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
        &[&loaded.hash, &body],
    )
    .map_err(error)?;
    db::set_meta(tx, "plan", &loaded.hash)?;
    if current.is_some() {
        // Every started contact moves onto the new plan at its next step:
        // make it due now (a step at the clock changes nothing else).
        tx.execute(
            "UPDATE relance.contacts SET due = least(coalesce(due, $1), $1)
             WHERE state IS NOT NULL AND plan IS DISTINCT FROM $2",
            &[&(clock - 1), &loaded.hash],
        )
        .map_err(error)?;
        db::count(tx, "plan_upgrades", 1)?;
    }
    Ok(true)
}

/// Switches the running server to `loaded`.
pub fn switch(shared: &Shared, loaded: Loaded) -> Result<bool, String> {
    let mut c = shared.pool.get()?;
    let mut tx = c.transaction().map_err(error)?;
    let clock = shared.now(&mut tx)?;
    let changed = install(&mut tx, &loaded, clock)?;
    tx.commit().map_err(error)?;
    let loaded = Arc::new(loaded);
    shared.remember(Arc::clone(&loaded));
    if let Ok(mut p) = shared.plan.write() {
        *p = loaded;
    }
    Ok(changed)
}

/// SIGHUP: reads the plan file again and switches to it.
pub fn reload(shared: &Shared) -> Result<String, String> {
    let loaded = Loaded::read(&shared.plan_path)?;
    let hash = loaded.hash.clone();
    Ok(if switch(shared, loaded)? {
        format!("plan {} installed", &hash[..12])
    } else {
        format!("plan {} unchanged", &hash[..12])
    })
}

/// `POST /v1/plan`: the body is a plan as `relance build` writes it.
pub fn post_plan(shared: &Shared, body: &str) -> Result<Answer, String> {
    let loaded = match Loaded::parse(body, "the posted plan") {
        Ok(l) => l,
        Err(e) => return Ok(Answer::error(400, e)),
    };
    let hash = loaded.hash.clone();
    let changed = switch(shared, loaded)?;
    Ok(Answer::json(
        200,
        &json!({"plan": hash, "changed": changed}),
    ))
}
