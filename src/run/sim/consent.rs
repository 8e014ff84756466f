//! Consent rules and per-topic unsubscribes at send time (LANGUAGE.md §12,
//! docs/runner.md "Consent and topics").

use super::{CHANNELS, Event, Sim, Value};

impl Sim<'_, '_> {
    /// Records an `unsubscribed` event: from a topic on a channel when it
    /// names one (`"topic"`), else from the whole channel. Returns what it
    /// recorded, or `None` when the event names no channel of the plan.
    pub(super) fn unsubscribe(&mut self, ev: &Event) -> Option<(usize, Option<String>)> {
        let ch = self.event_channel(ev)?;
        match ev.fields.get("topic") {
            Some(Value::Text(topic)) => {
                if !self
                    .st
                    .unsubscribed_topics
                    .iter()
                    .any(|(c, t)| *c == ch && t == topic)
                {
                    self.st.unsubscribed_topics.push((ch, topic.clone()));
                }
                Some((ch, Some(topic.clone())))
            }
            _ => {
                self.st.unsubscribed[ch] = true;
                Some((ch, None))
            }
        }
    }

    /// Why a marketing send of template `tpl` at `t` is skipped for its
    /// topic or its channel's consent rule (counted here), or `None` when
    /// it may go.
    pub(super) fn consent_skip(&mut self, tpl: usize, t: i64) -> Option<String> {
        let template = &self.prog.templates[tpl];
        if !template.marketing {
            return None;
        }
        let channel = template.channel;
        if let Some(topic) = template.topic
            && self
                .st
                .unsubscribed_topics
                .iter()
                .any(|(c, x)| *c == channel && x == topic)
        {
            self.stats.skipped_unsubscribed[tpl] += 1;
            return Some(format!(
                "skipped, unsubscribed from topic `{topic}` on {}",
                CHANNELS[channel]
            ));
        }
        if let Some(rule) = template.consent
            && !self.holds(rule, t, None)
        {
            self.stats.skipped_no_consent[tpl] += 1;
            return Some(format!(
                "skipped, no consent (the `consent {}` rule does not hold)",
                CHANNELS[channel]
            ));
        }
        None
    }
}
