//! What-if engagement (`relance run --engagement rates.toml --seed N`):
//! when no real events exist yet, each sent message draws its opens,
//! clicks per link, replies and goal events from the given rates. The
//! draws come from a pseudo-random stream seeded by (seed, contact,
//! step, send time), so the same seed gives the same outbox, whatever the
//! order of contacts or the number of threads.
//!
//! ```toml
//! delay = "1d"            # reactions come within this delay of the send
//! [default]
//! open  = 0.30            # email and push
//! click = 0.05            # each link of the template (a click is an open)
//! reply = 0.01            # email and sms
//! [templates.welcome]
//! open  = 0.55
//! click = { gps = 0.20, kids = 0.08 }
//! [events.purchase]       # any event of the plan, per message sent
//! rate   = 0.02
//! fields = { amount = 80, sku = "GPS-1", category = "gps" }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use super::program::{CHANNELS, Template};
use crate::eval::{Event, Value};
use crate::plan::Plan;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    delay: Option<String>,
    #[serde(default)]
    default: Rates,
    #[serde(default)]
    templates: BTreeMap<String, Rates>,
    #[serde(default)]
    events: BTreeMap<String, EventRate>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rates {
    open: Option<f64>,
    click: Option<Click>,
    reply: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Click {
    All(f64),
    PerLink(BTreeMap<String, f64>),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventRate {
    rate: f64,
    #[serde(default)]
    fields: BTreeMap<String, toml::Value>,
}

/// Parsed and checked engagement rates.
#[derive(Debug)]
pub struct Forecast {
    seed: u64,
    delay: i64,
    default: Rates,
    templates: BTreeMap<String, Rates>,
    events: Vec<(String, f64, BTreeMap<String, Value>)>,
}

fn probability(what: &str, p: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!(
            "{what} is {p}: a rate is a probability between 0 and 1"
        ))
    }
}

fn parse_duration(s: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut num = String::new();
    for ch in s.trim().chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        total += n * match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
    }
    (num.is_empty() && total > 0).then_some(total)
}

impl Forecast {
    /// Reads a rates file; errors name the file and what to fix.
    pub fn parse(text: &str, name: &str, plan: &Plan, seed: u64) -> Result<Forecast, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
        let delay = match &file.delay {
            None => 86_400,
            Some(d) => parse_duration(d).ok_or_else(|| {
                format!("{name}: `delay = \"{d}\"` is not a duration like \"6h\" or \"1d\"")
            })?,
        };
        let check = |r: &Rates, at: &str| -> Result<(), String> {
            if let Some(p) = r.open {
                probability(&format!("{name}: {at}.open"), p)?;
            }
            if let Some(p) = r.reply {
                probability(&format!("{name}: {at}.reply"), p)?;
            }
            match &r.click {
                Some(Click::All(p)) => {
                    probability(&format!("{name}: {at}.click"), *p)?;
                }
                Some(Click::PerLink(m)) => {
                    for (l, p) in m {
                        probability(&format!("{name}: {at}.click.{l}"), *p)?;
                    }
                }
                None => {}
            }
            Ok(())
        };
        check(&file.default, "default")?;
        for (t, r) in &file.templates {
            let Some(tpl) = plan.templates.get(t) else {
                return Err(format!(
                    "{name}: [templates.{t}] names no template of the plan"
                ));
            };
            check(r, &format!("templates.{t}"))?;
            if let Some(Click::PerLink(m)) = &r.click {
                for l in m.keys() {
                    if !tpl.links.contains_key(l) {
                        return Err(format!(
                            "{name}: templates.{t}.click.{l}: template `{t}` has no link `{l}`"
                        ));
                    }
                }
            }
        }
        let mut events = Vec::new();
        for (e, r) in &file.events {
            let Some(ty) = plan.events.get(e) else {
                return Err(format!("{name}: [events.{e}] names no event of the plan"));
            };
            probability(&format!("{name}: events.{e}.rate"), r.rate)?;
            let mut fields = BTreeMap::new();
            for (k, v) in &r.fields {
                let Some(f) = ty.fields.iter().find(|f| f.name == *k) else {
                    return Err(format!(
                        "{name}: events.{e}.fields.{k}: event `{e}` has no field `{k}`"
                    ));
                };
                let value = match (f.ty.as_str(), v) {
                    ("number", toml::Value::Integer(n)) => Value::Number(*n as f64),
                    ("number", toml::Value::Float(n)) => Value::Number(*n),
                    ("bool", toml::Value::Boolean(b)) => Value::Bool(*b),
                    ("set<text>", toml::Value::Array(xs)) => Value::Set(
                        xs.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect(),
                    ),
                    (_, toml::Value::String(s)) => Value::Text(s.clone()),
                    _ => {
                        return Err(format!(
                            "{name}: events.{e}.fields.{k}: expected a value of type {}",
                            f.ty
                        ));
                    }
                };
                fields.insert(k.clone(), value);
            }
            events.push((e.clone(), r.rate, fields));
        }
        Ok(Forecast {
            seed,
            delay,
            default: file.default,
            templates: file.templates,
            events,
        })
    }

    fn rates(&self, template: &str) -> Rates {
        let t = self.templates.get(template);
        Rates {
            open: t.and_then(|r| r.open).or(self.default.open),
            click: t
                .and_then(|r| r.click.clone())
                .or_else(|| self.default.click.clone()),
            reply: t.and_then(|r| r.reply).or(self.default.reply),
        }
    }

    /// The events a message sent at `at` draws, in time order.
    pub(crate) fn reactions(
        &self,
        contact: &str,
        step: &str,
        template: &Template,
        at: i64,
        _run: u64,
    ) -> Vec<Event> {
        let mut rng = Stream::new(self.seed, &[contact, step, &at.to_string()]);
        let rates = self.rates(template.name);
        let channel = CHANNELS[template.channel];
        let mut out = Vec::new();
        let event = |name: &str, at: i64, extra: &[(&str, &str)]| {
            let mut fields = BTreeMap::new();
            fields.insert("template".into(), Value::Text(template.name.to_string()));
            fields.insert("channel".into(), Value::Text(channel.to_string()));
            for (k, v) in extra {
                fields.insert(k.to_string(), Value::Text(v.to_string()));
            }
            Event {
                name: name.to_string(),
                at,
                fields,
                run: None,
            }
        };
        let opens = matches!(channel, "email" | "push");
        let mut opened_at = None;
        if opens && rng.chance(rates.open.unwrap_or(0.0)) {
            let t = at + rng.below(self.delay);
            opened_at = Some(t);
            out.push(event("opened", t, &[]));
        }
        for link in &template.links {
            let p = match &rates.click {
                Some(Click::All(p)) => *p,
                Some(Click::PerLink(m)) => m.get(*link).copied().unwrap_or(0.0),
                None => 0.0,
            };
            if rng.chance(p) {
                let base = opened_at.unwrap_or(at);
                let t = base + rng.below((self.delay / 4).max(1));
                out.push(event("clicked", t, &[("link", link)]));
            }
        }
        if matches!(channel, "email" | "sms") && rng.chance(rates.reply.unwrap_or(0.0)) {
            let t = at + rng.below(self.delay);
            out.push(event("replied", t, &[]));
        }
        for (name, rate, fields) in &self.events {
            if rng.chance(*rate) {
                out.push(Event {
                    name: name.clone(),
                    at: at + rng.below(self.delay),
                    fields: fields.clone(),
                    run: None,
                });
            }
        }
        out.sort_by_key(|e| e.at);
        out
    }
}

/// splitmix64 over an FNV-1a hash of the key: stable on every platform.
struct Stream(u64);

impl Stream {
    fn new(seed: u64, parts: &[&str]) -> Stream {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
        for p in parts {
            for b in p.bytes().chain([0xff]) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        Stream(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        u < p
    }

    fn below(&mut self, n: i64) -> i64 {
        if n <= 0 {
            0
        } else {
            (self.next() % n as u64) as i64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_stable_and_keyed() {
        let a: Vec<u64> = {
            let mut s = Stream::new(7, &["c1", "s/0", "100"]);
            (0..3).map(|_| s.next()).collect()
        };
        let b: Vec<u64> = {
            let mut s = Stream::new(7, &["c1", "s/0", "100"]);
            (0..3).map(|_| s.next()).collect()
        };
        let c: Vec<u64> = {
            let mut s = Stream::new(8, &["c1", "s/0", "100"]);
            (0..3).map(|_| s.next()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn chances_follow_the_rate() {
        let mut s = Stream::new(1, &["x"]);
        let hits = (0..100_000).filter(|_| s.chance(0.3)).count();
        assert!((29_000..31_000).contains(&hits), "{hits}");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("6h"), Some(21_600));
        assert_eq!(parse_duration("1d12h"), Some(129_600));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("12"), None);
    }
}
