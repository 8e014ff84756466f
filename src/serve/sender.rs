//! The sender: delivers numbered `pending` ledger lines, one transaction
//! per message, and records the outcome.

use super::Shared;
use super::api::Answer;

/// A recipient's unsubscribe link.
pub fn unsubscribe(_shared: &Shared, _post: bool, _token: &str) -> Result<Answer, String> {
    Ok(Answer::error(404, "unsubscribe links are not served yet"))
}

/// A sender worker.
pub fn sender_loop(shared: &Shared) {
    while !shared.stopping() {
        super::nap(shared, std::time::Duration::from_millis(200));
    }
}
