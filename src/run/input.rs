//! Reading the runner's inputs: contacts (JSONL or CSV) into a columnar
//! store with dense ids, and events (JSONL) into compact records grouped by
//! contact. Values are typed against the plan's schema once, here; a bad
//! line becomes a [`Problem`] with its file and line, never a panic.
//!
//! Memory: a contact is one cell per schema field (16 bytes) plus its text
//! in a shared arena; an event is a 24-byte record plus its fields. Event
//! JSON is parsed block by block on every core and never kept as objects.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Read};
use std::path::Path;

use jiff::civil::Date;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use crate::eval::{Contact, Event, Value};
use crate::plan::{Field, Plan};

/// A bad input line: reported with file, line and contact, then skipped
/// (or the run fails with `--strict`).
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub file: String,
    pub line: u64,
    pub contact: Option<String>,
    pub message: String,
    /// The whole line was skipped (else only a field was ignored).
    pub skipped: bool,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(c) = &self.contact {
            write!(f, "contact `{c}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if self.skipped {
            write!(f, " (line skipped)")?;
        }
        Ok(())
    }
}

/// One typed value, 16 bytes; text lives in a [`Pool`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Cell {
    Absent,
    Text(u32, u32),
    Number(f64),
    Bool(bool),
    Timestamp(i64),
    Date(Date),
    /// A range of [`Pool::sets`].
    Set(u32, u32),
}

/// Text and set storage shared by many cells.
#[derive(Default)]
pub(crate) struct Pool {
    text: String,
    sets: Vec<(u32, u32)>,
    /// Events repeat their texts (paths, templates, lists): each distinct
    /// one is stored once.
    intern: Option<FastMap<Box<str>, (u32, u32)>>,
}

impl Pool {
    fn interning() -> Pool {
        Pool {
            intern: Some(FastMap::default()),
            ..Pool::default()
        }
    }

    fn text(&mut self, s: &str) -> Result<(u32, u32), String> {
        if let Some(r) = self.intern.as_ref().and_then(|m| m.get(s)) {
            return Ok(*r);
        }
        let r = self.push_text(s)?;
        if let Some(m) = &mut self.intern {
            m.insert(s.into(), r);
        }
        Ok(r)
    }

    fn push_text(&mut self, s: &str) -> Result<(u32, u32), String> {
        let start = u32::try_from(self.text.len())
            .map_err(|_| "the input holds more than 4 GiB of text".to_string())?;
        let len = u32::try_from(s.len()).map_err(|_| "a value is too long".to_string())?;
        self.text.push_str(s);
        Ok((start, len))
    }

    pub(crate) fn str(&self, (start, len): (u32, u32)) -> &str {
        self.text
            .get(start as usize..start as usize + len as usize)
            .unwrap_or("")
    }

    pub(crate) fn value(&self, c: Cell) -> Option<Value> {
        Some(match c {
            Cell::Absent => return None,
            Cell::Text(s, l) => Value::Text(self.str((s, l)).to_string()),
            Cell::Number(n) => Value::Number(n),
            Cell::Bool(b) => Value::Bool(b),
            Cell::Timestamp(t) => Value::Timestamp(t),
            Cell::Date(d) => Value::Date(d),
            Cell::Set(s, l) => Value::Set(
                self.sets
                    .get(s as usize..s as usize + l as usize)
                    .unwrap_or(&[])
                    .iter()
                    .map(|r| self.str(*r).to_string())
                    .collect(),
            ),
        })
    }
}

/// How a schema type reads from input.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Text,
    Number,
    Bool,
    Date,
    Timestamp,
    Timezone,
    Enum(Vec<String>),
    Set,
}

impl Kind {
    pub(crate) fn of(f: &Field) -> Kind {
        match f.ty.as_str() {
            "number" => Kind::Number,
            "bool" => Kind::Bool,
            "date" => Kind::Date,
            "timestamp" => Kind::Timestamp,
            "timezone" => Kind::Timezone,
            "enum" => Kind::Enum(f.variants.clone().unwrap_or_default()),
            "set<text>" => Kind::Set,
            _ => Kind::Text,
        }
    }

    fn name(&self) -> String {
        match self {
            Kind::Text => "a string".into(),
            Kind::Number => "a number".into(),
            Kind::Bool => "`true` or `false`".into(),
            Kind::Date => "a date like \"2026-01-15\"".into(),
            Kind::Timestamp => "an RFC 3339 timestamp like \"2026-01-15T09:00:00Z\"".into(),
            Kind::Timezone => "an IANA time zone like \"Europe/Paris\"".into(),
            Kind::Enum(vs) => format!("one of {}", vs.join(", ")),
            Kind::Set => "a list of strings".into(),
        }
    }

    /// A value given as text (CSV cells, JSON strings).
    fn parse_text(&self, s: &str, pool: &mut Pool) -> Result<Cell, String> {
        let bad = || Err(format!("expected {}, found {s:?}", self.name()));
        Ok(match self {
            Kind::Text => {
                let (a, b) = pool.text(s)?;
                Cell::Text(a, b)
            }
            Kind::Number => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Cell::Number(n),
                _ => return bad(),
            },
            Kind::Bool => match s.trim() {
                "true" => Cell::Bool(true),
                "false" => Cell::Bool(false),
                _ => return bad(),
            },
            Kind::Date => match s.trim().parse::<Date>() {
                Ok(d) => Cell::Date(d),
                Err(_) => return bad(),
            },
            Kind::Timestamp => match parse_timestamp(s) {
                Some(t) => Cell::Timestamp(t),
                None => return bad(),
            },
            Kind::Timezone => {
                if !crate::tzdb::is_zone(s) {
                    return bad();
                }
                let (a, b) = pool.text(s)?;
                Cell::Text(a, b)
            }
            Kind::Enum(vs) => {
                if !vs.iter().any(|v| v == s) {
                    return bad();
                }
                let (a, b) = pool.text(s)?;
                Cell::Text(a, b)
            }
            Kind::Set => {
                let items: Vec<&str> = if s.is_empty() {
                    Vec::new()
                } else {
                    s.split('|').collect()
                };
                set_cell(&items, pool)?
            }
        })
    }

    /// A value from raw JSON text: strings of text kinds are read in
    /// place, anything else through [`Kind::parse_json`].
    fn parse_raw(&self, v: &serde_json::value::RawValue, pool: &mut Pool) -> Result<Cell, String> {
        let text_kind = !matches!(self, Kind::Number | Kind::Bool | Kind::Set);
        if text_kind && let Some(s) = raw_str(v) {
            return self.parse_text(&s, pool);
        }
        // The usual values without a `serde_json::Value`; anything else
        // (null, a wrong type) goes the general way, for its message.
        match self {
            Kind::Number => {
                if let Ok(n) = serde_json::from_str::<f64>(v.get())
                    && n.is_finite()
                {
                    return Ok(Cell::Number(n));
                }
            }
            Kind::Bool => match v.get() {
                "true" => return Ok(Cell::Bool(true)),
                "false" => return Ok(Cell::Bool(false)),
                _ => {}
            },
            Kind::Set => {
                if let Ok(items) = serde_json::from_str::<Vec<Key>>(v.get()) {
                    let items: Vec<&str> = items.iter().map(|k| k.0.as_ref()).collect();
                    return set_cell(&items, pool);
                }
            }
            _ => {}
        }
        match serde_json::from_str::<serde_json::Value>(v.get()) {
            Ok(value) => self.parse_json(&value, pool),
            Err(e) => Err(json_error(e)),
        }
    }

    fn parse_json(&self, v: &serde_json::Value, pool: &mut Pool) -> Result<Cell, String> {
        use serde_json::Value as J;
        match (self, v) {
            (_, J::Null) => Ok(Cell::Absent),
            (Kind::Number, J::Number(n)) => n
                .as_f64()
                .filter(|n| n.is_finite())
                .map(Cell::Number)
                .ok_or_else(|| format!("expected {}, found {v}", self.name())),
            (Kind::Bool, J::Bool(b)) => Ok(Cell::Bool(*b)),
            (Kind::Set, J::Array(xs)) => {
                let mut items = Vec::with_capacity(xs.len());
                for x in xs {
                    match x {
                        J::String(s) => items.push(s.as_str()),
                        _ => return Err(format!("expected {}, found {v}", self.name())),
                    }
                }
                set_cell(&items, pool)
            }
            (Kind::Number | Kind::Bool | Kind::Set, _) => {
                Err(format!("expected {}, found {}", self.name(), short_json(v)))
            }
            (_, J::String(s)) => self.parse_text(s, pool),
            _ => Err(format!("expected {}, found {}", self.name(), short_json(v))),
        }
    }
}

fn short_json(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn set_cell(items: &[&str], pool: &mut Pool) -> Result<Cell, String> {
    let sorted: BTreeSet<&str> = items.iter().copied().collect();
    let start = pool.sets.len() as u32;
    for s in &sorted {
        let r = pool.text(s)?;
        pool.sets.push(r);
    }
    Ok(Cell::Set(start, sorted.len() as u32))
}

/// RFC 3339 with an offset (`Z` or `+01:00`), to the second.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(t) = utc_timestamp(s) {
        return Some(t);
    }
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// The common spelling, `2026-11-01T09:30:00Z`, read without a general
/// parser; anything else (offsets, fractions, a leap second, years far
/// from ours, an impossible date) is left to jiff, so both agree.
fn utc_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, se) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1000..=9000).contains(&y) || d < 1 || d > month_days || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    // Days from 1970-01-01 in the proleptic Gregorian calendar (Howard
    // Hinnant's days_from_civil).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3_600 + mi * 60 + se)
}

/// Names of lists and tags, interned.
#[derive(Default)]
pub(crate) struct Names {
    pub names: Vec<String>,
    index: FastMap<String, u32>,
}

impl Names {
    fn get_or_add(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// A seeded hash for the readers' maps: a folded multiply per 8 bytes,
/// several times cheaper than the standard library's SipHash on the short
/// texts of contacts and events. The seed is drawn per map, so input made
/// to collide on one run does not collide on another.
#[derive(Clone, Copy)]
pub(crate) struct Seeded {
    seed: u64,
    mul: u64,
}

impl Default for Seeded {
    fn default() -> Seeded {
        use std::hash::BuildHasher;
        let r = std::hash::RandomState::new();
        Seeded {
            seed: r.hash_one(0x5eed_u64),
            mul: r.hash_one(0x006d_756c_u64) | 1,
        }
    }
}

/// The high and low halves of the 128-bit product, folded.
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Seeded {
    fn hash_bytes(&self, s: &[u8]) -> u64 {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut h = self.seed ^ (s.len() as u64).wrapping_mul(K);
        let mut words = s.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            h = fold(h ^ u64::from_le_bytes(b), self.mul);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            h = fold(h ^ u64::from_le_bytes(b), self.mul);
        }
        fold(h ^ K, self.mul ^ K)
    }
}

impl std::hash::BuildHasher for Seeded {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher {
            state: *self,
            h: self.seed,
        }
    }
}

pub(crate) struct SeededHasher {
    state: Seeded,
    h: u64,
}

impl std::hash::Hasher for SeededHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.h = fold(self.h ^ self.state.hash_bytes(bytes), self.state.mul);
    }
    fn write_u8(&mut self, i: u8) {
        self.h = fold(self.h ^ u64::from(i), self.state.mul);
    }
    fn write_u64(&mut self, i: u64) {
        self.h = fold(self.h ^ i, self.state.mul);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.h
    }
}

type FastMap<K, V> = HashMap<K, V, Seeded>;

/// Contact ids and their dense numbers (input order): the ids' text in one
/// string, and an open-addressing table of 16-byte [`Slot`]s probed
/// linearly. Events look their contact up once a line, at random places
/// of a table larger than the caches: a look-up of an id of up to 8 bytes
/// touches one slot and nothing else, a longer one also its text, where a
/// `HashMap<String, u32>` touches its control bytes, a bucket and the id's
/// own allocation.
pub(crate) struct IdIndex {
    text: String,
    /// Per dense number, its id's range of `text`.
    spans: Vec<(u32, u32)>,
    slots: Vec<Slot>,
    hash: Seeded,
}

#[derive(Clone, Copy)]
struct Slot {
    /// Bits of the hash, and the id's length (15: 15 or more) in the low
    /// four bits.
    tag: u32,
    /// `IdIndex::EMPTY`: a free slot.
    dense: u32,
    /// The id's first 8 bytes, padded with zeros: for an id of up to 8
    /// bytes, with the length, the whole id.
    head: u64,
}

impl Slot {
    fn of(h: u64, id: &[u8]) -> Slot {
        let mut head = [0u8; 8];
        let n = id.len().min(8);
        head[..n].copy_from_slice(&id[..n]);
        Slot {
            tag: (h as u32 & !0xf) | id.len().min(15) as u32,
            dense: IdIndex::EMPTY,
            head: u64::from_le_bytes(head),
        }
    }
}

impl IdIndex {
    const EMPTY: u32 = u32::MAX;

    fn new() -> IdIndex {
        IdIndex {
            text: String::new(),
            spans: Vec::new(),
            slots: Vec::new(),
            hash: Seeded::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// The id of dense number `i`.
    pub(crate) fn id(&self, i: u32) -> &str {
        let (start, len) = self.spans[i as usize];
        &self.text[start as usize..start as usize + len as usize]
    }

    /// The first slot to probe for `id`, and what its slot holds.
    fn start(&self, id: &str) -> (usize, Slot) {
        let h = self.hash.hash_bytes(id.as_bytes());
        let bits = self.slots.len().trailing_zeros();
        ((h >> (64 - bits)) as usize, Slot::of(h, id.as_bytes()))
    }

    /// The dense number of `id`.
    pub(crate) fn get(&self, id: &str) -> Option<&u32> {
        if self.slots.is_empty() {
            return None;
        }
        let (mut i, want) = self.start(id);
        let mask = self.slots.len() - 1;
        loop {
            let slot = &self.slots[i];
            if slot.dense == Self::EMPTY {
                return None;
            }
            if slot.tag == want.tag
                && slot.head == want.head
                && (id.len() <= 8 || self.id(slot.dense) == id)
            {
                return Some(&slot.dense);
            }
            i = (i + 1) & mask;
        }
    }

    pub(crate) fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Adds `id` (not in the index yet) as the next dense number.
    fn push(&mut self, id: &str) -> Result<u32, String> {
        let dense = u32::try_from(self.spans.len())
            .ok()
            .filter(|d| *d < Self::EMPTY)
            .ok_or_else(|| "the input holds too many contacts".to_string())?;
        let start = u32::try_from(self.text.len())
            .map_err(|_| "the input holds more than 4 GiB of ids".to_string())?;
        let len = u32::try_from(id.len()).map_err(|_| "an id is too long".to_string())?;
        self.text.push_str(id);
        self.spans.push((start, len));
        // At most half full: short probe runs.
        if self.spans.len() * 2 > self.slots.len() {
            let size = (self.slots.len() * 2).max(1024);
            self.slots = vec![
                Slot {
                    tag: 0,
                    dense: Self::EMPTY,
                    head: 0
                };
                size
            ];
            for d in 0..self.spans.len() as u32 {
                self.place(d);
            }
        } else {
            self.place(dense);
        }
        Ok(dense)
    }

    fn place(&mut self, d: u32) {
        let (mut i, slot) = self.start(self.id(d));
        let mask = self.slots.len() - 1;
        while self.slots[i].dense != Self::EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot { dense: d, ..slot };
    }
}

/// Every contact, column by column, with dense ids in input order.
pub struct Contacts {
    /// The ids, by dense number, and the way back.
    pub(crate) index: IdIndex,
    /// One column per schema field, in schema order.
    pub(crate) columns: Vec<Vec<Cell>>,
    /// List memberships as bits, `words` `u64`s per contact.
    pub(crate) lists: Vec<u64>,
    pub(crate) words: usize,
    pub(crate) list_names: Vec<String>,
    /// Tags: a range of `tag_ids` per contact.
    pub(crate) tags: Vec<(u32, u32)>,
    pub(crate) tag_ids: Vec<u32>,
    pub(crate) tag_names: Names,
    pub(crate) pool: Pool,
    fields: Vec<String>,
}

impl Contacts {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    pub fn id(&self, i: u32) -> &str {
        self.index.id(i)
    }

    /// Contact `i` as the evaluator sees it.
    pub fn contact(&self, i: u32) -> Contact {
        let i = i as usize;
        let mut c = Contact {
            id: self.index.id(i as u32).to_string(),
            ..Contact::default()
        };
        for (f, col) in self.fields.iter().zip(&self.columns) {
            if let Some(v) = self.pool.value(col[i]) {
                c.fields.insert(f.clone(), v);
            }
        }
        for (w, word) in self.lists[i * self.words..(i + 1) * self.words]
            .iter()
            .enumerate()
        {
            let mut bits = *word;
            while bits != 0 {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(name) = self.list_names.get(w * 64 + b) {
                    c.lists.insert(name.clone());
                }
            }
        }
        let (s, l) = self.tags[i];
        for t in &self.tag_ids[s as usize..(s + l) as usize] {
            c.tags.insert(self.tag_names.names[*t as usize].clone());
        }
        c
    }

    /// Contacts that have only ids (every field absent, no list, no tag):
    /// what a host that keeps its contacts elsewhere resolves a batch of
    /// events against ([`events_from_jsonl`] needs only the ids). Repeated
    /// ids are kept once; the dense numbers follow the first occurrences.
    pub fn with_ids<'a>(plan: &Plan, ids: impl IntoIterator<Item = &'a str>) -> Contacts {
        let mut c = Contacts::new(plan);
        for id in ids {
            if c.index.get(id).is_some() || c.index.push(id).is_err() {
                continue;
            }
            for col in &mut c.columns {
                col.push(Cell::Absent);
            }
            let base = c.lists.len();
            c.lists.resize(base + c.words, 0);
            let start = c.tag_ids.len() as u32;
            c.tags.push((start, 0));
        }
        c
    }

    /// The dense number of the contact with this id.
    pub fn dense(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    fn new(plan: &Plan) -> Contacts {
        let list_names: Vec<String> = plan.lists.keys().cloned().collect();
        Contacts {
            index: IdIndex::new(),
            columns: vec![Vec::new(); plan.schema.fields.len()],
            words: list_names.len().div_ceil(64).max(1),
            lists: Vec::new(),
            list_names,
            tags: Vec::new(),
            tag_ids: Vec::new(),
            tag_names: Names::default(),
            pool: Pool::default(),
            fields: plan.schema.fields.iter().map(|f| f.name.clone()).collect(),
        }
    }
}

/// A JSON string, borrowed when it holds no escape.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object with its keys in input order, whose values stay raw JSON
/// text until their type is known: parsing a line allocates nothing but
/// what it keeps.
struct RawObject<'a>(Vec<(Cow<'a, str>, &'a serde_json::value::RawValue)>);

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<RawObject<'de>, M::Error> {
                let mut out: Vec<(Cow<'de, str>, &'de serde_json::value::RawValue)> =
                    Vec::with_capacity(8);
                // Past a few keys, a set keeps the duplicate check linear.
                let mut seen: Option<std::collections::HashSet<Cow<'de, str>, Seeded>> = None;
                while let Some(Key(k)) = m.next_key::<Key<'de>>()? {
                    let twice = match &mut seen {
                        Some(set) => !set.insert(k.clone()),
                        None => out.iter().any(|(o, _)| *o == k),
                    };
                    if twice {
                        // A JSON parser keeps the first or the last value;
                        // which one the sender meant is unknown.
                        return Err(serde::de::Error::custom(format_args!(
                            "the key `{k}` is given twice"
                        )));
                    }
                    if seen.is_none() && out.len() >= 16 {
                        seen = Some(
                            out.iter()
                                .map(|(o, _)| o.clone())
                                .chain([k.clone()])
                                .collect(),
                        );
                    }
                    out.push((k, m.next_value()?));
                }
                Ok(RawObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A raw JSON string's text (borrowed unless it holds escapes).
fn raw_str(v: &serde_json::value::RawValue) -> Option<Cow<'_, str>> {
    let raw = v.get();
    if !raw.starts_with('"') {
        return None;
    }
    // A raw value is valid JSON: a string without a backslash is its text
    // between the quotes.
    if let Some(text) = raw
        .get(1..raw.len().saturating_sub(1))
        .filter(|t| raw.len() >= 2 && !t.as_bytes().contains(&b'\\'))
    {
        return Some(Cow::Borrowed(text));
    }
    serde_json::from_str::<Key>(raw).ok().map(|k| k.0)
}

fn parse_raw_object(line: &str) -> Result<RawObject<'_>, String> {
    serde_json::from_str::<RawObject>(line).map_err(json_error)
}

fn json_error(e: serde_json::Error) -> String {
    let msg = e.to_string();
    // serde_json says "at line 1 column 17": keep the column only.
    match msg.rsplit_once(" at line ") {
        Some((m, pos)) => match pos.split_once(" column ") {
            Some((_, col)) => format!("bad JSON: {m} at column {col}"),
            None => format!("bad JSON: {m}"),
        },
        None => format!("bad JSON: {msg}"),
    }
}

/// The UTF-8 byte-order mark that some editors and spreadsheet exports
/// put at the start of a file.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// `bytes` without a leading byte-order mark.
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// Says where a line stops being UTF-8.
fn not_utf8(line: &[u8], e: std::str::Utf8Error) -> String {
    let at = e.valid_up_to();
    let byte = line.get(at).copied().unwrap_or(0);
    format!(
        "the line is not UTF-8 (byte 0x{byte:02x} at column {}): save the file as UTF-8",
        at + 1
    )
}

/// The longest input line the readers take: far more than any contact or
/// event, and a bound on the memory one line can take (a file with no
/// line break, or an endless line from a pipe, is refused there).
pub const MAX_LINE: usize = 16 << 20;

/// The error for a line longer than [`MAX_LINE`].
fn long_line(file: &str, line: u64, holds: &str) -> String {
    format!(
        "`{file}` line {line}: a line longer than {} MiB (no line break): {holds}; check that it is the right file",
        MAX_LINE >> 20
    )
}

/// How [`next_line`] ended.
enum LineEnd {
    Line,
    End,
    TooLong,
}

/// Reads the next line, without its `\n`, into `line` (cleared first); at
/// most [`MAX_LINE`] bytes are kept. Lines are what `split(b'\n')` gives:
/// a last line without a line break counts, an empty end does not.
fn next_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<LineEnd> {
    line.clear();
    let mut any = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(if any { LineEnd::Line } else { LineEnd::End });
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        if line.len() + take > MAX_LINE {
            return Ok(LineEnd::TooLong);
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(take + usize::from(done));
        if done {
            return Ok(LineEnd::Line);
        }
    }
}

/// Problems of one reader, kept in order.
#[derive(Default)]
pub(crate) struct Report {
    pub problems: Vec<Problem>,
    /// Field names already reported as unknown (reported once each).
    unknown: BTreeSet<String>,
}

/// Reads contacts from JSONL, or CSV when the file name ends in `.csv`.
pub fn read_contacts(path: &Path, plan: &Plan) -> Result<(Contacts, Vec<Problem>), String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read contacts `{}`: {e}", path.display()))?;
    let name = path.display().to_string();
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut b = ContactBuilder::new(plan, &name);
    if csv {
        b.read_csv(reader)?;
    } else {
        b.read_jsonl(reader)?;
    }
    Ok((b.contacts, b.report.problems))
}

/// Contacts from JSONL text (tests and tools).
pub fn contacts_from_jsonl(
    text: &str,
    plan: &Plan,
    name: &str,
) -> Result<(Contacts, Vec<Problem>), String> {
    let mut b = ContactBuilder::new(plan, name);
    b.read_jsonl(text.as_bytes())?;
    Ok((b.contacts, b.report.problems))
}

struct ContactBuilder<'p> {
    plan: &'p Plan,
    file: String,
    contacts: Contacts,
    kinds: Vec<Kind>,
    by_name: FastMap<&'p str, usize>,
    report: Report,
}

/// One contact's values before it is accepted.
struct Row {
    cells: Vec<Cell>,
    /// Fields given with a wrong value (not reported missing too).
    bad: Vec<usize>,
    lists: Vec<u32>,
    tags: Vec<u32>,
}

impl<'p> ContactBuilder<'p> {
    fn new(plan: &'p Plan, file: &str) -> Self {
        ContactBuilder {
            plan,
            file: file.to_string(),
            contacts: Contacts::new(plan),
            kinds: plan.schema.fields.iter().map(Kind::of).collect(),
            by_name: plan
                .schema
                .fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name.as_str(), i))
                .collect(),
            report: Report::default(),
        }
    }

    fn problem(&mut self, line: u64, contact: Option<&str>, message: String, skipped: bool) {
        self.report.problems.push(Problem {
            file: self.file.clone(),
            line,
            contact: contact.map(str::to_string),
            message,
            skipped,
        });
    }

    fn read_jsonl(&mut self, mut reader: impl BufRead) -> Result<(), String> {
        let mut line = Vec::new();
        for n in 0u64.. {
            let line_no = n + 1;
            match next_line(&mut reader, &mut line)
                .map_err(|e| format!("cannot read `{}`: {e}", self.file))?
            {
                LineEnd::Line => {}
                LineEnd::End => break,
                LineEnd::TooLong => {
                    return Err(long_line(
                        &self.file,
                        line_no,
                        "a JSONL file holds one contact per line",
                    ));
                }
            }
            let bytes = if n == 0 { strip_bom(&line) } else { &line };
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    self.problem(line_no, None, not_utf8(bytes, e), true);
                    continue;
                }
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let obj = match parse_raw_object(text) {
                Ok(o) => o,
                Err(m) => {
                    self.problem(line_no, None, m, true);
                    continue;
                }
            };
            self.json_row(line_no, obj);
        }
        Ok(())
    }

    fn json_row(&mut self, line: u64, obj: RawObject) {
        let id = obj.0.iter().find(|(k, _)| k == "id").map(|(_, v)| *v);
        let id = match id {
            Some(v) => match raw_str(v) {
                Some(s) if !s.is_empty() => s.into_owned(),
                None if v.get().starts_with(|c: char| c.is_ascii_digit()) => v.get().to_string(),
                _ => {
                    return self.problem(
                        line,
                        None,
                        "`id` must be a non-empty string".into(),
                        true,
                    );
                }
            },
            None => return self.problem(line, None, "the contact has no `id`".into(), true),
        };
        let mut row = Row {
            cells: vec![Cell::Absent; self.kinds.len()],
            bad: Vec::new(),
            lists: Vec::new(),
            tags: Vec::new(),
        };
        let mut pool = std::mem::take(&mut self.contacts.pool);
        let mut errors = Vec::new();
        for (k, v) in &obj.0 {
            match k.as_ref() {
                "id" => {}
                "lists" | "tags" => match serde_json::from_str::<Option<Vec<Key>>>(v.get()) {
                    Ok(names) => {
                        let names = names.unwrap_or_default();
                        let names: Vec<&str> = names.iter().map(|k| k.0.as_ref()).collect();
                        self.memberships(k, &names, &mut row, &mut errors);
                    }
                    Err(_) => errors.push(format!("`{k}` must be a list of strings")),
                },
                name => match self.by_name.get(name) {
                    Some(i) => match self.kinds[*i].parse_raw(v, &mut pool) {
                        Ok(c) => row.cells[*i] = c,
                        Err(m) => {
                            row.bad.push(*i);
                            errors.push(format!("field `{name}`: {m}"))
                        }
                    },
                    None => self.unknown_field(line, &id, name),
                },
            }
        }
        self.contacts.pool = pool;
        self.finish_row(line, id, row, errors);
    }

    fn unknown_field(&mut self, line: u64, id: &str, name: &str) {
        if self.report.unknown.insert(name.to_string()) {
            let hint = crate::diagnostics::did_you_mean(
                name,
                self.plan.schema.fields.iter().map(|f| f.name.as_str()),
            )
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
            self.problem(
                line,
                Some(id),
                format!(
                    "`{name}` is not a field of the contact schema{hint}; it is ignored on every line"
                ),
                false,
            );
        }
    }

    fn memberships(&mut self, key: &str, names: &[&str], row: &mut Row, errors: &mut Vec<String>) {
        for n in names {
            if key == "lists" {
                match self.contacts.list_names.iter().position(|l| l == n) {
                    Some(i) => row.lists.push(i as u32),
                    None => {
                        let hint = crate::diagnostics::did_you_mean(
                            n,
                            self.contacts.list_names.iter().map(String::as_str),
                        )
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                        errors.push(format!("`{n}` is not a list of the plan{hint}"));
                    }
                }
            } else {
                let t = self.contacts.tag_names.get_or_add(n);
                row.tags.push(t);
            }
        }
    }

    fn finish_row(&mut self, line: u64, id: String, mut row: Row, mut errors: Vec<String>) {
        for (i, f) in self.plan.schema.fields.iter().enumerate() {
            if !f.optional && row.cells[i] == Cell::Absent && !row.bad.contains(&i) {
                errors.push(format!("the required field `{}` is missing", f.name));
            }
        }
        if self.contacts.index.contains_key(&id) {
            errors.push("this id was already given on an earlier line".into());
        }
        if !errors.is_empty() {
            let message = errors.join("; ");
            return self.problem(line, Some(&id), message, true);
        }
        let c = &mut self.contacts;
        if c.index.push(&id).is_err() {
            return self.problem(line, Some(&id), "the input is too large".into(), true);
        }
        for (col, cell) in c.columns.iter_mut().zip(row.cells) {
            col.push(cell);
        }
        let base = c.lists.len();
        c.lists.resize(base + c.words, 0);
        for l in row.lists {
            c.lists[base + l as usize / 64] |= 1 << (l % 64);
        }
        row.tags.sort_unstable();
        row.tags.dedup();
        let start = c.tag_ids.len() as u32;
        c.tags.push((start, row.tags.len() as u32));
        c.tag_ids.extend(row.tags);
    }

    fn read_csv(&mut self, reader: impl BufRead) -> Result<(), String> {
        let mut rdr = CsvReader::new(reader, &self.file);
        let header = match rdr.next_item()? {
            None => {
                return Err(format!(
                    "`{}` is empty: a CSV of contacts starts with a header row naming `id` and the schema's fields",
                    self.file
                ));
            }
            Some(CsvItem::Record { cells, spans, .. }) if spans.is_empty() => cells,
            Some(CsvItem::Record { line, .. }) | Some(CsvItem::Bad { line, .. }) => {
                return Err(format!(
                    "cannot read the header row of `{}` (line {line}): it must be one line of column names such as `id,email,lists`",
                    self.file
                ));
            }
        };
        let cols: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        rdr.columns = cols.clone();
        let Some(id_col) = cols.iter().position(|c| c == "id") else {
            return Err(format!(
                "`{}` has no `id` column: the header row must name `id` and the schema's fields",
                self.file
            ));
        };
        for c in &cols {
            if c != "id" && c != "lists" && c != "tags" && !self.by_name.contains_key(c.as_str()) {
                self.unknown_field(1, "", c);
            }
        }
        // A line break inside quotes is kept only in a `text` cell.
        let multiline_ok: Vec<bool> = cols
            .iter()
            .map(|c| {
                self.by_name
                    .get(c.as_str())
                    .is_some_and(|i| self.plan.schema.fields[*i].ty == "text")
            })
            .collect();
        while let Some(item) = rdr.next_item()? {
            let (line, cells, spans, lines) = match item {
                CsvItem::Bad {
                    line,
                    message,
                    lines,
                } => {
                    let message = match lines.len() {
                        0 | 1 => message,
                        _ => format!("{message}; {}", rereading(&lines)),
                    };
                    // Given back in order: the lines after the first, then
                    // (already queued) a line that is not UTF-8.
                    self.problem(line, None, message, true);
                    rdr.replay(lines);
                    continue;
                }
                CsvItem::Record {
                    line,
                    cells,
                    spans,
                    lines,
                } => (line, cells, spans, lines),
            };
            if let Some(&(col, open, close)) = spans
                .iter()
                .find(|(col, ..)| cells.len() != cols.len() || !multiline_ok[*col])
            {
                let name = cols.get(col).map_or("?", String::as_str);
                let why = if cells.len() != cols.len() {
                    format!(
                        "the record it makes has {} cells but the header has {}",
                        cells.len(),
                        cols.len()
                    )
                } else {
                    format!("`{name}` is not a `text` field, where a line break may be quoted")
                };
                let message = format!(
                    "the quote that opens the `{name}` cell on this line closes only on line {close}: {why}, so the quote was probably left open; {}",
                    rereading(&lines)
                );
                self.problem(open, cells.get(id_col).map(String::as_str), message, true);
                rdr.replay(lines);
                continue;
            }
            if let Some(&(col, open, close)) = spans.first() {
                // A legitimate multi-line cell (an address, a note) — unless
                // a quote was left open and closed by chance further down:
                // say so when a swallowed line reads like a record.
                let commas = cols.len() - 1;
                if let Some((n, _)) = lines[1..lines.len() - 1]
                    .iter()
                    .find(|(_, l)| l.matches(',').count() >= commas && commas > 0)
                {
                    self.problem(
                        open,
                        cells.get(id_col).map(String::as_str),
                        format!(
                            "the quoted `{}` cell runs from line {open} to line {close}, and line {n} inside it reads like a contact of its own: if a quote was left open, close it",
                            cols[col]
                        ),
                        false,
                    );
                }
            }
            if cells.len() != cols.len() {
                self.problem(
                    line,
                    cells.get(id_col).map(String::as_str),
                    format!(
                        "the row has {} cells but the header has {}",
                        cells.len(),
                        cols.len()
                    ),
                    true,
                );
                continue;
            }
            let id = cells[id_col].trim().to_string();
            if id.is_empty() {
                self.problem(line, None, "the contact has no `id`".into(), true);
                continue;
            }
            let mut row = Row {
                cells: vec![Cell::Absent; self.kinds.len()],
                bad: Vec::new(),
                lists: Vec::new(),
                tags: Vec::new(),
            };
            let mut errors = Vec::new();
            let mut pool = std::mem::take(&mut self.contacts.pool);
            for (c, value) in cols.iter().zip(cells.iter()) {
                match c.as_str() {
                    "id" => {}
                    "lists" | "tags" => {
                        let names: Vec<&str> = value
                            .split('|')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .collect();
                        self.memberships(c, &names, &mut row, &mut errors);
                    }
                    name => {
                        // An empty cell is an absent value, or an empty set.
                        if let Some(i) = self.by_name.get(name)
                            && (!value.is_empty() || matches!(self.kinds[*i], Kind::Set))
                        {
                            match self.kinds[*i].parse_text(value, &mut pool) {
                                Ok(cell) => row.cells[*i] = cell,
                                Err(m) => {
                                    row.bad.push(*i);
                                    errors.push(format!("field `{name}`: {m}"))
                                }
                            }
                        }
                    }
                }
            }
            self.contacts.pool = pool;
            self.finish_row(line, id, row, errors);
        }
        Ok(())
    }
}

/// "lines 4 to 6 are read on their own": what a bad record gives back.
fn rereading(lines: &[(u64, String)]) -> String {
    match lines {
        [_, (a, _)] => format!("line {a} is read on its own"),
        [_, (a, _), .., (b, _)] => format!("lines {a} to {b} are read on their own"),
        _ => String::new(),
    }
}

/// How far a quoted CSV cell may run over lines before it is taken as a
/// quote left open.
const MAX_CELL_LINES: usize = 100;
const MAX_CELL_BYTES: usize = 64 << 10;

/// A record of a contacts CSV file (RFC 4180), with the lines it took.
enum CsvItem {
    Record {
        /// The line it starts on.
        line: u64,
        cells: Vec<String>,
        /// Quoted cells that span lines: (cell, line the quote opens on,
        /// line it closes on).
        spans: Vec<(usize, u64, u64)>,
        lines: Vec<(u64, String)>,
    },
    /// A record that cannot be read; the lines after its first are read
    /// again on their own ([`CsvReader::replay`]).
    Bad {
        line: u64,
        message: String,
        lines: Vec<(u64, String)>,
    },
}

/// Reads CSV records line by line, so that every problem has its own line
/// number and a record that swallowed the lines after it (a quote left
/// open) can give them back.
struct CsvReader<R> {
    reader: R,
    file: String,
    next_no: u64,
    /// Lines given back, read before the file's next ones.
    replayed: std::collections::VecDeque<Line>,
    /// The header's names, for messages.
    columns: Vec<String>,
}

/// What [`CsvReader::line`] gives.
enum Line {
    Text(u64, String),
    NotUtf8(u64, String),
}

impl<R: BufRead> CsvReader<R> {
    fn new(reader: R, file: &str) -> Self {
        CsvReader {
            reader,
            file: file.to_string(),
            next_no: 1,
            replayed: std::collections::VecDeque::new(),
            columns: Vec::new(),
        }
    }

    /// "`email` cell", or "cell 7" past the header.
    fn cell_name(&self, i: usize) -> String {
        match self.columns.get(i) {
            Some(c) => format!("`{c}` cell"),
            None => format!("cell {}", i + 1),
        }
    }

    fn replay(&mut self, lines: Vec<(u64, String)>) {
        for (n, l) in lines.into_iter().skip(1).rev() {
            self.replayed.push_front(Line::Text(n, l));
        }
    }

    fn line(&mut self) -> Result<Option<Line>, String> {
        if let Some(l) = self.replayed.pop_front() {
            return Ok(Some(l));
        }
        let mut bytes = Vec::new();
        match next_line(&mut self.reader, &mut bytes)
            .map_err(|e| format!("cannot read `{}`: {e}", self.file))?
        {
            LineEnd::Line => {}
            LineEnd::End => return Ok(None),
            LineEnd::TooLong => {
                return Err(long_line(
                    &self.file,
                    self.next_no,
                    "a CSV file holds one contact per line",
                ));
            }
        }
        let n = self.next_no;
        self.next_no += 1;
        if n == 1 && bytes.starts_with(BOM) {
            bytes.drain(..BOM.len());
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        Ok(Some(match String::from_utf8(bytes) {
            Ok(s) => Line::Text(n, s),
            Err(e) => Line::NotUtf8(n, not_utf8(e.as_bytes(), e.utf8_error())),
        }))
    }

    fn next_item(&mut self) -> Result<Option<CsvItem>, String> {
        // The first line that is not blank.
        let (first, text) = loop {
            match self.line()? {
                None => return Ok(None),
                Some(Line::NotUtf8(line, message)) => {
                    return Ok(Some(CsvItem::Bad {
                        line,
                        message,
                        lines: Vec::new(),
                    }));
                }
                Some(Line::Text(n, t)) if !t.is_empty() => break (n, t),
                Some(Line::Text(..)) => {}
            }
        };
        let mut lines = vec![(first, text)];
        let mut cells = Vec::new();
        let mut spans = Vec::new();
        let mut cell = String::new();
        // The line a quoted cell opened on, while it is open.
        let mut open: Option<u64> = None;
        let mut quoted_cell = false;
        let mut after_quote = false;
        let mut k = 0;
        loop {
            let (no, text) = &lines[k];
            let no = *no;
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                if open.is_some() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            cell.push('"');
                        } else {
                            if let Some(o) = open.take()
                                && o != no
                            {
                                spans.push((cells.len(), o, no));
                            }
                            after_quote = true;
                        }
                    } else {
                        cell.push(c);
                    }
                } else if after_quote {
                    if c == ',' {
                        cells.push(std::mem::take(&mut cell));
                        after_quote = false;
                        quoted_cell = false;
                    } else {
                        let name = self.cell_name(cells.len());
                        let (line, message) = match spans.last() {
                            // The cell spans lines: its quote was left open.
                            Some(&(cell, o, _)) if cell == cells.len() => (
                                o,
                                format!(
                                    "the quote that opens the {name} on this line closes only on line {no}, where `{c}` follows it: the quote was probably left open"
                                ),
                            ),
                            _ => (
                                no,
                                format!(
                                    "bad CSV: `{c}` follows the closing quote of the {name}: a quote inside a quoted cell is written twice (`\"\"`)"
                                ),
                            ),
                        };
                        return Ok(Some(CsvItem::Bad {
                            line,
                            message,
                            lines,
                        }));
                    }
                } else if c == ',' {
                    cells.push(std::mem::take(&mut cell));
                    quoted_cell = false;
                } else if c == '"' && cell.is_empty() && !quoted_cell {
                    open = Some(no);
                    quoted_cell = true;
                } else {
                    // A quote inside an unquoted cell is kept as it is.
                    cell.push(c);
                }
            }
            let Some(o) = open else { break };
            // The quoted cell goes on: take the next line, within bounds
            // (a note or an address is not that long; a quote left open
            // must not take the whole file).
            if lines.len() >= MAX_CELL_LINES || cell.len() >= MAX_CELL_BYTES {
                let name = self.cell_name(cells.len());
                return Ok(Some(CsvItem::Bad {
                    line: o,
                    message: format!(
                        "the quote that opens the {name} on this line is not closed within {MAX_CELL_LINES} lines: it was probably left open"
                    ),
                    lines,
                }));
            }
            match self.line()? {
                Some(Line::Text(n, t)) => {
                    cell.push('\n');
                    lines.push((n, t));
                    k += 1;
                }
                end => {
                    let not_utf8 = matches!(end, Some(Line::NotUtf8(..)));
                    if let Some(l) = end {
                        // Reported on its own, after the lines given back.
                        self.replayed.push_front(l);
                    }
                    let name = self.cell_name(cells.len());
                    let message = format!(
                        "the quote that opens the {name} on this line is never closed{}",
                        if not_utf8 {
                            " (up to a line that is not UTF-8)"
                        } else {
                            ""
                        }
                    );
                    return Ok(Some(CsvItem::Bad {
                        line: o,
                        message,
                        lines,
                    }));
                }
            }
        }
        cells.push(cell);
        Ok(Some(CsvItem::Record {
            line: first,
            cells,
            spans,
            lines,
        }))
    }
}

/// One event, compact: its fields are a range of its chunk's `fields`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub contact: u32,
    pub line: u32,
    pub at: i64,
    pub name: u16,
    pub nfields: u16,
    pub fields: u32,
}

pub(crate) struct Chunk {
    pub records: Vec<Record>,
    pub fields: Vec<(u16, Cell)>,
    pub pool: Pool,
}

impl Default for Chunk {
    fn default() -> Chunk {
        Chunk {
            records: Vec::new(),
            fields: Vec::new(),
            pool: Pool::interning(),
        }
    }
}

/// The kinds of event the runner reads: the plan's events, then `joined`
/// and `left` (list changes from outside, with a `list` field).
pub(crate) struct EventKinds {
    pub names: Vec<String>,
    pub index: FastMap<String, u16>,
    /// Per kind: (field name, kind, optional).
    pub fields: Vec<Vec<(String, Kind, bool)>>,
    /// The plan's lists, for `joined` and `left`.
    pub lists: Vec<String>,
}

impl EventKinds {
    pub(crate) fn new(plan: &Plan) -> EventKinds {
        let mut names = Vec::new();
        let mut fields = Vec::new();
        for (name, ty) in &plan.events {
            names.push(name.clone());
            fields.push(
                ty.fields
                    .iter()
                    .map(|f| (f.name.clone(), Kind::of(f), f.optional))
                    .collect(),
            );
        }
        // `updated`: new values of the contact's fields (LANGUAGE.md §12:
        // waits and date triggers are re-timed), unless the project has
        // an event of that name.
        if !plan.events.contains_key("updated") {
            names.push("updated".to_string());
            fields.push(
                plan.schema
                    .fields
                    .iter()
                    .map(|f| (f.name.clone(), Kind::of(f), true))
                    .collect(),
            );
        }
        // Built-in message events that a project may never mention.
        for (name, fs) in [
            ("delivered", &[("template", false), ("channel", true)][..]),
            ("opened", &[("template", false), ("channel", true)][..]),
            // A reply logged by the CRM names no template.
            ("replied", &[("template", true), ("channel", true)][..]),
            ("bounced", &[("template", false), ("channel", true)][..]),
            (
                "clicked",
                &[("template", false), ("channel", true), ("link", false)][..],
            ),
            (
                "unsubscribed",
                &[("channel", false), ("template", true)][..],
            ),
            ("joined", &[("list", false)][..]),
            ("left", &[("list", false)][..]),
        ] {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
                fields.push(
                    fs.iter()
                        .map(|(f, opt)| (f.to_string(), Kind::Text, *opt))
                        .collect(),
                );
            }
        }
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u16))
            .collect();
        EventKinds {
            names,
            index,
            fields,
            lists: plan.lists.keys().cloned().collect(),
        }
    }
}

/// Every event, in compact records grouped by contact.
pub struct Events {
    pub(crate) chunks: Vec<Chunk>,
    pub(crate) kinds: EventKinds,
    /// Per contact, a range of `order`.
    pub(crate) starts: Vec<u32>,
    /// `(chunk << 32) | index`, grouped by contact, in input order.
    pub(crate) order: Vec<u64>,
    /// Lines read (blank lines excluded), for the summary.
    pub lines: u64,
}

impl Events {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Contact `c`'s events as the evaluator sees them, sorted by time
    /// (ties: input order).
    pub fn events_of(&self, c: u32) -> Vec<Event> {
        self.events_and_lines_of(c).0
    }

    /// [`Events::events_of`], with the line of each event in its file.
    pub fn events_and_lines_of(&self, c: u32) -> (Vec<Event>, Vec<u32>) {
        let c = c as usize;
        let range = self.starts[c] as usize..self.starts[c + 1] as usize;
        let mut recs: Vec<(i64, u32, &Chunk, &Record)> = self.order[range]
            .iter()
            .map(|packed| {
                let chunk = &self.chunks[(packed >> 32) as usize];
                let r = &chunk.records[(packed & 0xffff_ffff) as usize];
                (r.at, r.line, chunk, r)
            })
            .collect();
        recs.sort_by_key(|(at, line, ..)| (*at, *line));
        let lines = recs.iter().map(|(_, line, ..)| *line).collect();
        let events = recs
            .into_iter()
            .map(|(_, _, chunk, r)| self.event(chunk, r))
            .collect();
        (events, lines)
    }

    /// Every event with its contact's index, in the order of the input
    /// (`relance load` writes them so: a file exported in time order
    /// gives a table in time order, where a day of events is a few pages).
    pub fn in_input_order(&self) -> impl Iterator<Item = (u32, Event)> + '_ {
        self.chunks.iter().flat_map(move |chunk| {
            chunk
                .records
                .iter()
                .map(move |r| (r.contact, self.event(chunk, r)))
        })
    }

    fn event(&self, chunk: &Chunk, r: &Record) -> Event {
        let specs = &self.kinds.fields[r.name as usize];
        let fields = chunk.fields[r.fields as usize..r.fields as usize + r.nfields as usize]
            .iter()
            .filter_map(|(f, cell)| {
                Some((specs.get(*f as usize)?.0.clone(), chunk.pool.value(*cell)?))
            })
            .collect();
        Event {
            name: self.kinds.names[r.name as usize].clone(),
            at: r.at,
            fields,
            run: None,
        }
    }
}

/// Reads the events file on `threads` workers, block by block.
pub fn read_events(
    path: &Path,
    plan: &Plan,
    contacts: &Contacts,
    threads: usize,
) -> Result<(Events, Vec<Problem>), String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read events `{}`: {e}", path.display()))?;
    events_from_reader(file, &path.display().to_string(), plan, contacts, threads)
}

/// Events from JSONL text (tests and tools).
pub fn events_from_jsonl(
    text: &str,
    plan: &Plan,
    contacts: &Contacts,
    name: &str,
) -> Result<(Events, Vec<Problem>), String> {
    events_from_reader(text.as_bytes(), name, plan, contacts, 1)
}

const BLOCK: usize = 8 << 20;

fn events_from_reader(
    mut reader: impl Read,
    name: &str,
    plan: &Plan,
    contacts: &Contacts,
    threads: usize,
) -> Result<(Events, Vec<Problem>), String> {
    let kinds = EventKinds::new(plan);
    let threads = threads.clamp(1, 16);
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut problems = Vec::new();
    let mut unknown: BTreeSet<(u16, String)> = BTreeSet::new();
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK * 2);
    let mut first_line: u64 = 1;
    let mut lines = 0u64;
    let mut eof = false;
    let mut start_of_file = true;
    while !eof {
        // Fill up to BLOCK bytes, then cut after the last newline. A line
        // longer than the block makes it grow, up to one byte past
        // MAX_LINE (where that line is refused).
        let mut filled = buf.len();
        buf.resize(BLOCK.max((filled * 2).min(MAX_LINE + 1)), 0);
        while filled < buf.len() {
            let n = reader
                .read(&mut buf[filled..])
                .map_err(|e| format!("cannot read `{name}`: {e}"))?;
            if n == 0 {
                eof = true;
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        if start_of_file && (buf.len() >= BOM.len() || eof) {
            start_of_file = false;
            if buf.starts_with(BOM) {
                buf.drain(..BOM.len());
            }
        }
        let cut = match memchr::memrchr(b'\n', &buf) {
            None if buf.len() > MAX_LINE => {
                return Err(long_line(
                    name,
                    first_line,
                    "a JSONL file holds one event per line",
                ));
            }
            _ if eof => buf.len(),
            Some(p) => p + 1,
            None => continue, // a line longer than the block: read more
        };
        let block = &buf[..cut];
        // Split the block into parts on line boundaries, one per worker.
        let mut parts = Vec::new();
        let mut start = 0;
        for k in 1..=threads {
            let mut end = if k == threads {
                block.len()
            } else {
                (block.len() * k / threads).max(start)
            };
            while end < block.len() && end > 0 && block[end - 1] != b'\n' {
                end += 1;
            }
            parts.push(&block[start..end]);
            start = end;
        }
        let mut line_starts = Vec::new();
        let mut l = first_line;
        for p in &parts {
            line_starts.push(l);
            l += p.iter().filter(|b| **b == b'\n').count() as u64;
        }
        let results: Option<Vec<PartResult>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .iter()
                .zip(&line_starts)
                .map(|(p, l)| {
                    let kinds = &kinds;
                    s.spawn(move || parse_part(p, *l, name, kinds, contacts))
                })
                .collect();
            handles.into_iter().map(|h| h.join().ok()).collect()
        });
        // A worker that panicked is a bug; losing its lines silently would
        // be worse.
        let results = results.ok_or_else(|| {
            format!(
                "internal error while reading `{name}` near line {first_line}: please report it"
            )
        })?;
        for (chunk, ps, unk, n) in results {
            lines += n;
            problems.extend(ps);
            for (kind, field, line) in unk {
                if unknown.insert((kind, field.clone())) {
                    problems.push(Problem {
                        file: name.to_string(),
                        line,
                        contact: None,
                        message: format!(
                            "`{field}` is not a field of event `{}`; it is ignored on every line",
                            kinds.names[kind as usize]
                        ),
                        skipped: false,
                    });
                }
            }
            if !chunk.records.is_empty() {
                chunks.push(chunk);
            }
        }
        first_line = l;
        buf.drain(..cut);
    }
    problems.sort_by_key(|p| p.line);
    // Group by contact: a counting sort keeps input order within a contact.
    let n = contacts.len();
    let mut starts = vec![0u32; n + 1];
    for c in &chunks {
        for r in &c.records {
            starts[r.contact as usize + 1] += 1;
        }
    }
    for i in 0..n {
        starts[i + 1] += starts[i];
    }
    let total = starts[n] as usize;
    let mut order = vec![0u64; total];
    let mut next = starts.clone();
    for (ci, c) in chunks.iter().enumerate() {
        for (ri, r) in c.records.iter().enumerate() {
            let slot = &mut next[r.contact as usize];
            order[*slot as usize] = ((ci as u64) << 32) | ri as u64;
            *slot += 1;
        }
    }
    Ok((
        Events {
            chunks,
            kinds,
            starts,
            order,
            lines,
        },
        problems,
    ))
}

type PartResult = (Chunk, Vec<Problem>, Vec<(u16, String, u64)>, u64);

fn parse_part(
    part: &[u8],
    first_line: u64,
    file: &str,
    kinds: &EventKinds,
    contacts: &Contacts,
) -> PartResult {
    let mut chunk = Chunk::default();
    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    let mut count = 0;
    let mut given: Vec<bool> = Vec::new();
    let mut problem = |line: u64, contact: Option<&str>, message: String| {
        problems.push(Problem {
            file: file.to_string(),
            line,
            contact: contact.map(str::to_string),
            message,
            skipped: true,
        })
    };
    for (k, bytes) in part.split(|b| *b == b'\n').enumerate() {
        let line = first_line + k as u64;
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                problem(line, None, not_utf8(bytes, e));
                continue;
            }
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        count += 1;
        let obj = match parse_raw_object(text) {
            Ok(o) => o,
            Err(m) => {
                problem(line, None, m);
                continue;
            }
        };
        let get = |key: &str| obj.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        let contact: Cow<str> = match get("contact") {
            Some(v) => match raw_str(v) {
                Some(s) => s,
                None if v.get().starts_with(|c: char| c.is_ascii_digit()) => Cow::Borrowed(v.get()),
                None => {
                    problem(line, None, "`contact` must be a contact id".into());
                    continue;
                }
            },
            _ => {
                problem(
                    line,
                    None,
                    "the event has no `contact` (a contact id)".into(),
                );
                continue;
            }
        };
        let Some(&dense) = contacts.index.get(contact.as_ref()) else {
            problem(
                line,
                Some(&contact),
                "no contact has this id in the contacts file".into(),
            );
            continue;
        };
        let kind = match get("event").and_then(raw_str) {
            Some(s) => match kinds.index.get(s.as_ref()) {
                Some(k) => *k,
                None => {
                    let hint = crate::diagnostics::did_you_mean(
                        &s,
                        kinds.names.iter().map(String::as_str),
                    )
                    .map(|x| format!(" (did you mean `{x}`?)"))
                    .unwrap_or_default();
                    problem(
                        line,
                        Some(&contact),
                        format!("`{s}` is not an event of the plan{hint}"),
                    );
                    continue;
                }
            },
            _ => {
                problem(line, Some(&contact), "the event has no `event` name".into());
                continue;
            }
        };
        let at = get("at")
            .and_then(raw_str)
            .and_then(|s| parse_timestamp(&s));
        let Some(at) = at else {
            problem(
                line,
                Some(&contact),
                "`at` must be an RFC 3339 timestamp like \"2026-01-15T09:00:00Z\"".into(),
            );
            continue;
        };
        let specs = &kinds.fields[kind as usize];
        // The cells go straight to the chunk, taken back if the line is bad.
        let start = chunk.fields.len();
        let mut errors = Vec::new();
        given.clear();
        given.resize(specs.len(), false);
        for (key, v) in &obj.0 {
            if matches!(key.as_ref(), "contact" | "event" | "at") {
                continue;
            }
            match specs.iter().position(|(n, ..)| n == key) {
                Some(i) => match specs[i].1.parse_raw(v, &mut chunk.pool) {
                    Ok(Cell::Absent) => {}
                    Ok(c) => {
                        given[i] = true;
                        chunk.fields.push((i as u16, c));
                    }
                    Err(m) => {
                        given[i] = true;
                        errors.push(format!("field `{key}`: {m}"))
                    }
                },
                None => unknown.push((kind, key.to_string(), line)),
            }
        }
        for (i, (n, _, optional)) in specs.iter().enumerate() {
            if !optional && !given[i] {
                errors.push(format!(
                    "the field `{n}` of event `{}` is missing",
                    kinds.names[kind as usize]
                ));
            }
        }
        if matches!(kinds.names[kind as usize].as_str(), "joined" | "left") {
            for (_, c) in &chunk.fields[start..] {
                if let Cell::Text(a, b) = c {
                    let list = chunk.pool.str((*a, *b));
                    if !kinds.lists.iter().any(|l| l == list) {
                        let hint = crate::diagnostics::did_you_mean(
                            list,
                            kinds.lists.iter().map(String::as_str),
                        )
                        .map(|x| format!(" (did you mean `{x}`?)"))
                        .unwrap_or_default();
                        errors.push(format!("`{list}` is not a list of the plan{hint}"));
                    }
                }
            }
        }
        if !errors.is_empty() {
            chunk.fields.truncate(start);
            problem(line, Some(&contact), errors.join("; "));
            continue;
        }
        let n = (chunk.fields.len() - start) as u16;
        chunk.records.push(Record {
            contact: dense,
            line: line.min(u32::MAX as u64) as u32,
            at,
            name: kind,
            nfields: n,
            fields: start as u32,
        });
    }
    (chunk, problems, unknown, count)
}

const _: () = assert!(std::mem::size_of::<Cell>() == 16);
const _: () = assert!(std::mem::size_of::<Record>() == 24);

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let text = r#"{"plan_version": 1,
            "workspace": {"name": null, "timezone": null, "from": null, "address": null},
            "schema": {"fields": [
                {"name": "email", "type": "email", "optional": false},
                {"name": "score", "type": "number", "optional": true},
                {"name": "interests", "type": "set<text>", "optional": true},
                {"name": "notes", "type": "text", "optional": true}],
              "address_fields": {"email": "email"}, "timezone_field": null},
            "events": {"purchase": {"builtin": false, "fields": [
                {"name": "amount", "type": "number", "optional": false}]}},
            "lists": {}, "segments": {}, "templates": {}, "scenarios": {},
            "cadences": {}, "pressure": null, "scenario_order": []}"#;
        serde_json::from_str(text).expect("test plan")
    }

    fn csv(text: &[u8]) -> (Vec<String>, Vec<(u64, String, bool)>, Contacts) {
        let plan = plan();
        let mut b = ContactBuilder::new(&plan, "c.csv");
        b.read_csv(text).expect("readable");
        let ids = (0..b.contacts.len() as u32)
            .map(|i| b.contacts.id(i).to_string())
            .collect();
        let problems = b
            .report
            .problems
            .iter()
            .map(|p| (p.line, p.message.clone(), p.skipped))
            .collect();
        (ids, problems, b.contacts)
    }

    const HEADER: &str = "id,email,score,interests,notes\n";

    fn lines_of(problems: &[(u64, String, bool)]) -> Vec<u64> {
        problems.iter().map(|p| p.0).collect()
    }

    #[test]
    fn a_byte_order_mark_starts_a_file_and_is_skipped() {
        let plan = plan();
        let (c, problems) = contacts_from_jsonl(
            "\u{feff}{\"id\": \"a\", \"email\": \"a@example.com\"}\n",
            &plan,
            "c.jsonl",
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.len(), 1);
        let (events, problems) = events_from_jsonl(
            "\u{feff}{\"contact\": \"a\", \"event\": \"purchase\", \"amount\": 3, \"at\": \"2026-11-02T10:00:00Z\"}\n",
            &plan,
            &c,
            "e.jsonl",
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(events.len(), 1);
        let (ids, problems, _) = csv(format!("\u{feff}{HEADER}a,a@example.com,1,,\n").as_bytes());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(ids, ["a"]);
    }

    #[test]
    fn a_key_given_twice_is_a_bad_line() {
        let plan = plan();
        let (c, problems) = contacts_from_jsonl(
            "{\"id\": \"a\", \"email\": \"a@example.com\"}\n{\"id\": \"b\", \"email\": \"b@example.com\", \"email\": \"c@example.com\"}\n",
            &plan,
            "c.jsonl",
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].skipped), (2, true));
        assert!(
            problems[0]
                .message
                .contains("the key `email` is given twice")
        );
        let (events, problems) = events_from_jsonl(
            "\n{\"contact\": \"a\", \"event\": \"purchase\", \"amount\": 3, \"amount\": 4, \"at\": \"2026-11-02T10:00:00Z\"}\n",
            &plan,
            &c,
            "e.jsonl",
        )
        .unwrap();
        assert_eq!(events.len(), 0);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 2);
        assert!(
            problems[0]
                .message
                .contains("the key `amount` is given twice")
        );
        // Many keys (the set that checks them) and one repeated at the end.
        let mut line = String::from("{\"id\": \"z\", \"email\": \"z@example.com\"");
        for i in 0..40 {
            line.push_str(&format!(", \"x{i}\": 1"));
        }
        line.push_str(", \"x3\": 2}\n");
        let (_, problems) = contacts_from_jsonl(&line, &plan, "c.jsonl").unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("`x3` is given twice")),
            "{problems:?}"
        );
    }

    /// The bug of issue 9: a stray quote at the start of the last cell ran
    /// to the end of the file, and the run reported one contact, no problem.
    #[test]
    fn a_stray_quote_swallows_no_contact() {
        let text = format!(
            "{HEADER}a,a@example.com,1,gps,\nb,b@example.com,2,\"kids,\nc,c@example.com,3,,\nd,d@example.com,4,,\n"
        );
        let (ids, problems, _) = csv(text.as_bytes());
        assert_eq!(ids, ["a", "c", "d"], "{problems:?}");
        assert_eq!(lines_of(&problems), [3], "{problems:?}");
        assert!(problems[0].1.contains("never closed"), "{problems:?}");
        assert!(problems[0].1.contains("lines 4 to 5 are read on their own"));
        // The quote closes further down, on a quoted cell of another line.
        let text = format!(
            "{HEADER}b,\"b@example.com,2,kids,x\nc,c@example.com,3,,y\nd,d@example.com,4,gps,\"z\"\ne,e@example.com,5,,w\n"
        );
        let (ids, problems, _) = csv(text.as_bytes());
        assert_eq!(ids, ["c", "d", "e"], "{problems:?}");
        assert_eq!(lines_of(&problems), [2], "{problems:?}");
        assert!(problems[0].1.contains("`email` cell"), "{problems:?}");
        // A quote closed on a later line at a cell boundary, in a column
        // that may not hold a line break.
        let text = format!(
            "{HEADER}b,b@example.com,2,\"kids\nc,c@example.com,3,gps\",\ne,e@example.com,5,,w\n"
        );
        let (ids, problems, _) = csv(text.as_bytes());
        assert_eq!(lines_of(&problems), [2], "{problems:?}");
        assert!(problems[0].1.contains("not a `text` field"), "{problems:?}");
        // Line 3 on its own: a quote inside an unquoted cell is kept.
        assert_eq!(ids, ["c", "e"], "{problems:?}");
    }

    #[test]
    fn a_quoted_line_break_in_a_text_cell_is_kept() {
        let text = format!(
            "{HEADER}a,a@example.com,1,gps,\"1 rue X\r\n69003 Lyon\"\nb,b@example.com,2,,\n"
        );
        let (ids, problems, contacts) = csv(text.as_bytes());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            contacts.contact(0).fields.get("notes"),
            Some(&Value::Text("1 rue X\n69003 Lyon".into()))
        );
        // A note that swallowed a line that reads like a contact: kept,
        // with a warning.
        let text = format!("{HEADER}a,a@example.com,1,gps,\"oops\nb,b@example.com,2,,\nend\"\n");
        let (ids, problems, _) = csv(text.as_bytes());
        assert_eq!(ids, ["a"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].0, problems[0].2), (2, false));
        assert!(
            problems[0]
                .1
                .contains("line 3 inside it reads like a contact")
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_is_reported_on_its_own_line() {
        let mut text = HEADER.as_bytes().to_vec();
        text.extend(b"a,a@example.com,1,,\nb,b@ex\xffample.com,2,,\nc,c@example.com,3,,\n");
        let (ids, problems, _) = csv(&text);
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(lines_of(&problems), [3], "{problems:?}");
        assert!(problems[0].1.contains("not UTF-8 (byte 0xff at column 7)"));
        // Inside a quoted cell that is still open.
        let mut text = HEADER.as_bytes().to_vec();
        text.extend(b"a,a@example.com,1,,\"x\nb,b@ex\xffample.com,2,,\nc,c@example.com,3,,\n");
        let (ids, problems, _) = csv(&text);
        assert_eq!(ids, ["c"]);
        assert_eq!(lines_of(&problems), [2, 3], "{problems:?}");
        let plan = plan();
        let mut text = b"{\"id\": \"a\", \"email\": \"a@example.com\"}\n".to_vec();
        text.extend(b"{\"id\": \"b\", \"email\": \"\xff\"}\n");
        let mut b = ContactBuilder::new(&plan, "c.jsonl");
        b.read_jsonl(&text[..]).unwrap();
        assert_eq!(b.report.problems.len(), 1);
        assert_eq!(b.report.problems[0].line, 2);
    }

    /// Gives `limit` bytes of `x` and no line break, counting them.
    struct Endless {
        given: usize,
        limit: usize,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.limit - self.given);
            buf[..n].fill(b'x');
            self.given += n;
            Ok(n)
        }
    }

    #[test]
    fn an_endless_line_is_refused_after_a_bounded_read() {
        let plan = plan();
        let limit = 4 * MAX_LINE;
        let good = "{\"id\": \"a\", \"email\": \"a@example.com\"}\n";
        // Contacts, JSONL: a good line, then no line break.
        let mut input = Endless { given: 0, limit };
        let mut b = ContactBuilder::new(&plan, "c.jsonl");
        let err = b
            .read_jsonl(std::io::BufReader::new(good.as_bytes().chain(&mut input)))
            .unwrap_err();
        assert!(
            err.contains("`c.jsonl` line 2: a line longer than 16 MiB (no line break)"),
            "{err}"
        );
        assert!(input.given <= MAX_LINE + (64 << 10), "{}", input.given);
        // Contacts, CSV.
        let mut input = Endless { given: 0, limit };
        let mut b = ContactBuilder::new(&plan, "c.csv");
        let err = b
            .read_csv(std::io::BufReader::new(HEADER.as_bytes().chain(&mut input)))
            .unwrap_err();
        assert!(
            err.contains("`c.csv` line 2: a line longer than 16 MiB"),
            "{err}"
        );
        assert!(input.given <= MAX_LINE + (64 << 10), "{}", input.given);
        // Events, after a good line.
        let (contacts, _) = contacts_from_jsonl(good, &plan, "c.jsonl").unwrap();
        let first = "{\"contact\": \"a\", \"event\": \"purchase\", \"amount\": 3, \"at\": \"2026-11-02T10:00:00Z\"}\n";
        let mut input = Endless { given: 0, limit };
        let err = events_from_reader(
            first.as_bytes().chain(&mut input),
            "e.jsonl",
            &plan,
            &contacts,
            2,
        )
        .err()
        .expect("refused");
        assert!(
            err.contains("`e.jsonl` line 2: a line longer than 16 MiB"),
            "{err}"
        );
        assert!(input.given <= MAX_LINE + 1, "{}", input.given);
        // A long line that ends is read (one byte short of the bound).
        let mut long = first.trim_end().to_string();
        long.insert_str(1, &" ".repeat(MAX_LINE - long.len()));
        let (events, problems) = events_from_jsonl(
            &format!("{first}{long}\n{first}"),
            &plan,
            &contacts,
            "e.jsonl",
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn the_common_timestamps_read_as_jiff_reads_them() {
        let jiff = |s: &str| s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second());
        let mut day = jiff::civil::date(1969, 12, 25);
        let mut k = 0u32;
        while day < jiff::civil::date(2101, 1, 3) {
            k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let s = format!(
                "{day}T{:02}:{:02}:{:02}Z",
                k % 24,
                (k >> 8) % 60,
                (k >> 16) % 60
            );
            assert_eq!(utc_timestamp(&s), jiff(&s), "{s}");
            day = day.tomorrow().unwrap();
        }
        for s in [
            "2024-02-29T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:60:00Z",
            "2026-01-01T23:59:60Z",
            "2026-01-01t10:00:00Z",
            "2026-01-01T10:00:00z",
            "2026-01-01 10:00:00Z",
            "2026-01-01T10:00:00+01:00",
            "2026-01-01T10:00:00.5Z",
            "0999-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "-2026-01-01T00:00:0Z",
            "2026-1-01T00:00:00Z",
            "+026-01-01T00:00:00Z",
            " 2026-01-01T10:00:00Z",
        ] {
            assert_eq!(parse_timestamp(s), jiff(s.trim()), "{s}");
        }
    }

    #[test]
    fn the_id_index_finds_every_id_and_no_other() {
        let mut index = IdIndex::new();
        let ids: Vec<String> = (0..5000)
            .map(|i| match i % 3 {
                0 => format!("c{i:07}"),
                1 => format!("{i}"),
                _ => format!("contact-{i}-with-a-longer-id-\u{e9}"),
            })
            .collect();
        for (i, id) in ids.iter().enumerate() {
            assert!(!index.contains_key(id));
            assert_eq!(index.push(id), Ok(i as u32));
        }
        assert_eq!(index.len(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id), Some(&(i as u32)), "{id}");
            assert_eq!(index.id(i as u32), id);
        }
        for (i, id) in ["a\0", "a", "12345678", "1234567", "123456789"]
            .iter()
            .enumerate()
        {
            assert_eq!(index.push(id), Ok((ids.len() + i) as u32));
        }
        assert_eq!(index.get("a"), Some(&5001));
        assert_eq!(index.get("a\0"), Some(&5000));
        assert_eq!(index.get("123456789"), Some(&5004));
        for absent in [
            "",
            "c",
            "c00000001",
            "5000",
            "contact-2-with-a-longer-id-",
            "a\0\0",
        ] {
            assert_eq!(index.get(absent), None, "{absent}");
        }
    }

    #[test]
    fn a_quote_left_open_takes_a_bounded_number_of_lines() {
        let mut text = format!("{HEADER}a,a@example.com,1,,\"open\n");
        for i in 0..300 {
            text.push_str(&format!("c{i},c{i}@example.com,{i}\n"));
        }
        let (ids, problems, _) = csv(text.as_bytes());
        assert_eq!(problems[0].0, 2, "{problems:?}");
        assert!(problems[0].1.contains("not closed within 100 lines"));
        // Every other line is reported (3 cells, not 5) on its own line.
        assert_eq!(problems.len(), 301);
        assert!(ids.is_empty());
    }
}
