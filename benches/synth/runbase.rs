//! A deterministic generator of a synthetic contact base and event stream
//! for `campaigns/` (the Autoparts Lyon sample project), the input of the
//! runner benchmark (`benches/run.rs`) and of `examples/runbase.rs`.
//!
//! Two JSONL files, in the formats of LANGUAGE.md §10:
//!
//! - `contacts.jsonl`: one contact per line with `id`, the fields of the
//!   `contact` schema of `campaigns/schema.camp` (optional fields left out
//!   when absent), `lists` and `tags` consistent with the `on join` rules of
//!   `campaigns/lists.camp` (the state at `--from`).
//! - `events.jsonl`: `{"contact", "event", "at", …fields}` in nondecreasing
//!   `at` order: optional history over `[from − history_days, from)`, then
//!   exactly `events` events over `[from, from + days)`.
//!
//! The output depends only on the [`Config`]: a splitmix64 generator replaces
//! a `rand` dependency, and the contacts and the events use separate streams,
//! so the contacts file does not change with the event count. Nothing is
//! held in memory but a few bytes per contact (lists, traits, signup time)
//! and the counters of one hour: events are generated hour by hour, their
//! seconds counted first, so that they come out sorted by construction.
//!
//! The tables below name the lists, templates, links, events and fields of
//! `campaigns/`; `tests/runbase.rs` checks them against the plan that
//! `relance build campaigns` writes, so a renamed template or list fails a
//! test instead of silently producing ignored events.

// The example, the test and the bench each use part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

// ---------------------------------------------------------------- defaults

pub const DEFAULT_CONTACTS: u64 = 1_000_000;
pub const DEFAULT_EVENTS: u64 = 10_000_000;
pub const DEFAULT_DAYS: u32 = 30;
pub const DEFAULT_FROM: &str = "2026-11-01T00:00:00Z";
pub const DEFAULT_SEED: u64 = 42;

/// Roughly 0.05 % bad lines with `--bad-lines`: one in 2,000.
const BAD_LINE_EVERY: u64 = 2_000;

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub contacts: u64,
    /// Events in the window `[from, from + days)`; history comes on top.
    pub events: u64,
    pub days: u32,
    /// Start of the simulated window, unix seconds.
    pub from: i64,
    pub seed: u64,
    /// Days of history before `from`, at the window's daily rate.
    pub history_days: u32,
    /// Mix about 0.05 % of deliberately bad lines into both files.
    pub bad_lines: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            contacts: DEFAULT_CONTACTS,
            events: DEFAULT_EVENTS,
            days: DEFAULT_DAYS,
            from: parse_timestamp(DEFAULT_FROM).expect("default from"),
            seed: DEFAULT_SEED,
            history_days: 0,
            bad_lines: false,
        }
    }
}

impl Config {
    /// End of the window (exclusive), unix seconds.
    pub fn until(&self) -> i64 {
        self.from + i64::from(self.days) * DAY
    }

    /// Events written before `from`: the window's daily rate times the
    /// history days.
    pub fn history_events(&self) -> u64 {
        if self.days == 0 {
            return 0;
        }
        (u128::from(self.events) * u128::from(self.history_days) / u128::from(self.days)) as u64
    }

    /// Signups are spread over this many days before `from`: two years, or
    /// longer than the history so that history events can follow a signup.
    fn signup_days(&self) -> i64 {
        730.max(i64::from(self.history_days) + 365)
    }

    /// The one-line summary of the parameters that `README.txt` starts
    /// with; the bench compares it to decide whether a cached base fits.
    pub fn params_line(&self) -> String {
        format!(
            "params: contacts={} events={} days={} from={} seed={} history_days={} bad_lines={}",
            self.contacts,
            self.events,
            self.days,
            format_timestamp(self.from),
            self.seed,
            self.history_days,
            self.bad_lines
        )
    }

    /// The command line that regenerates this base into `dir`.
    pub fn command(&self, dir: &str) -> String {
        let mut c = format!(
            "cargo run --release --example runbase -- --contacts {} --events {} --days {} --from {} --seed {}",
            self.contacts,
            self.events,
            self.days,
            format_timestamp(self.from),
            self.seed
        );
        if self.history_days > 0 {
            c += &format!(" --history-days {}", self.history_days);
        }
        if self.bad_lines {
            c += " --bad-lines";
        }
        c + " --out " + dir
    }
}

// ---------------------------------------------------------------- rng

/// splitmix64: one add and three xor-shift-multiplies per number, passes
/// BigCrush, and any seed (zero included) is fine.
pub struct Rng(u64);

impl Rng {
    /// Independent streams for the same seed (contacts, events, …).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (Lemire's multiply-shift; `n = 0` gives 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An item of a `(item, weight)` table, with probability proportional
    /// to its weight.
    pub fn weighted<'a, T>(&mut self, table: &'a [(T, u32)]) -> &'a T {
        let total: u64 = table.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut x = self.below(total);
        for (item, w) in table {
            if x < u64::from(*w) {
                return item;
            }
            x -= u64::from(*w);
        }
        &table[table.len() - 1].0
    }
}

// ---------------------------------------------------------------- time

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (the only form this generator writes and
/// reads; `--from` must be a whole second in UTC).
pub fn parse_timestamp(s: &str) -> Option<i64> {
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
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    // Reject 2026-02-30 and the like.
    if civil_from_days(days) != (y, mo as u32, d as u32) {
        return None;
    }
    Some(days * DAY + h * HOUR + mi * 60 + se)
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_timestamp(secs: i64) -> String {
    let mut f = TimestampFormat::default();
    let mut out = Vec::new();
    f.write(&mut out, secs);
    String::from_utf8(out).expect("ascii")
}

/// `YYYY-MM-DD`.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Formats timestamps by hand, computing the date part once per day.
#[derive(Default)]
struct TimestampFormat {
    day: Option<i64>,
    prefix: [u8; 11],
}

impl TimestampFormat {
    fn write(&mut self, out: &mut Vec<u8>, secs: i64) {
        let day = secs.div_euclid(DAY);
        if self.day != Some(day) {
            let (y, m, d) = civil_from_days(day);
            let text = format!("{y:04}-{m:02}-{d:02}T");
            self.prefix.copy_from_slice(text.as_bytes());
            self.day = Some(day);
        }
        out.extend_from_slice(&self.prefix);
        let s = secs.rem_euclid(DAY);
        two_digits(out, (s / HOUR) as u32);
        out.push(b':');
        two_digits(out, ((s % HOUR) / 60) as u32);
        out.push(b':');
        two_digits(out, (s % 60) as u32);
        out.push(b'Z');
    }
}

fn two_digits(out: &mut Vec<u8>, n: u32) {
    out.push(b'0' + (n / 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Euros from cents, as a JSON number: `249.90`, `-19.99`, `0`.
fn push_cents(out: &mut Vec<u8>, cents: i64) {
    if cents == 0 {
        out.push(b'0');
        return;
    }
    if cents < 0 {
        out.push(b'-');
    }
    let c = cents.unsigned_abs();
    push_u64(out, c / 100);
    out.push(b'.');
    two_digits(out, (c % 100) as u32);
}

/// A JSON string whose text needs no escaping (every generated string).
fn push_str(out: &mut Vec<u8>, s: &str) {
    debug_assert!(!s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// `,"key":`
fn push_key(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

// ---------------------------------------------------------------- ids

/// Contact ids: `c` and the 1-based index, zero-padded to 7 digits (more
/// when the base is larger), so that they sort like the file.
pub struct Ids {
    width: usize,
}

impl Ids {
    pub fn new(contacts: u64) -> Self {
        Ids {
            width: 7.max(contacts.to_string().len()),
        }
    }

    /// The id of contact `index` (0-based).
    pub fn id(&self, index: u64) -> String {
        format!("c{:0w$}", index + 1, w = self.width)
    }

    fn push(&self, out: &mut Vec<u8>, index: u64) {
        out.push(b'"');
        out.push(b'c');
        let n = index + 1;
        let digits = n.to_string().len();
        out.extend(std::iter::repeat_n(b'0', self.width.saturating_sub(digits)));
        push_u64(out, n);
        out.push(b'"');
    }
}

// ---------------------------------------------------------------- campaigns/

/// The lists of `campaigns/lists.camp`, as bits of a contact's state.
pub const LISTS: [&str; 7] = [
    "prospects",
    "customers",
    "newsletter",
    "gps_interest",
    "kids_interest",
    "fleet_accounts",
    "competitors",
];
const PROSPECTS: u8 = 1 << 0;
const CUSTOMERS: u8 = 1 << 1;
const NEWSLETTER: u8 = 1 << 2;
const GPS_INTEREST: u8 = 1 << 3;
const KIDS_INTEREST: u8 = 1 << 4;
const FLEET_ACCOUNTS: u8 = 1 << 5;
const COMPETITORS: u8 = 1 << 6;

/// The tag each list's `on join` adds, in `LISTS` order.
const LIST_TAGS: [&str; 7] = [
    "prospect",
    "client",
    "",
    "gps",
    "siege_auto",
    "compte_flotte",
    "concurrent",
];

/// A contact's list state after joining `list` (the `on join` rules).
fn join(state: u8, list: u8) -> u8 {
    match list {
        CUSTOMERS => (state | CUSTOMERS) & !PROSPECTS,
        FLEET_ACCOUNTS => (state | FLEET_ACCOUNTS | CUSTOMERS) & !PROSPECTS,
        COMPETITORS => (state | COMPETITORS) & !(NEWSLETTER | PROSPECTS),
        _ => state | list,
    }
}

/// The values of the `interests` field (a `set<text>`).
pub const INTERESTS: [(&str, u64); 6] = [
    // (value, per mille of contacts who declare it)
    ("gps", 250),
    ("dashcam", 100),
    ("siege_auto", 150),
    ("securite", 150),
    ("pneus", 150),
    ("entretien", 200),
];

/// Every event name this generator writes, with its share of the window's
/// events (per 10,000). `joined` and `left` are the list changes of §10;
/// the others are declared in `schema.camp` or built in.
pub const EVENT_MIX: [(&str, u32); 11] = [
    ("page_view", 7000),
    ("purchase", 500),
    ("contact_request", 100),
    ("joined", 800),
    ("left", 100),
    ("opened", 900),
    ("clicked", 300),
    ("delivered", 200),
    ("unsubscribed", 50),
    ("bounced", 30),
    ("replied", 20),
];

/// Templates of `campaigns/templates.camp` that contacts engage with: name,
/// channel, links, and weights for private (B2C) and professional (B2B)
/// contacts.
pub type Engaging = (
    &'static str,
    &'static str,
    &'static [&'static str],
    u32,
    u32,
);

pub const TEMPLATES: [Engaging; 24] = [
    ("weekly_tips", "email", &["blog"], 300, 150),
    ("offer", "email", &["gps", "kids"], 120, 20),
    ("offer_reminder", "email", &["gps", "kids"], 60, 10),
    (
        "welcome",
        "email",
        &["gps_guide", "kids_guide", "stores"],
        100,
        30,
    ),
    ("advice", "email", &["guide"], 50, 10),
    ("gps_followup", "email", &["guide", "shop"], 50, 40),
    ("kids_followup", "email", &["guide", "shop"], 40, 0),
    ("gps_promo", "email", &["shop"], 20, 10),
    ("gps_free_shipping", "email", &["shop"], 20, 10),
    ("kids_promo", "email", &["shop"], 20, 0),
    ("xmas_offer", "email", &["gifts"], 60, 20),
    ("winback", "email", &["shop"], 30, 20),
    ("winback_offer", "email", &["shop"], 10, 10),
    ("order_confirmation", "email", &["orders"], 50, 60),
    ("fleet_intro", "email", &["quote", "reply"], 0, 150),
    (
        "fleet_case_study",
        "email",
        &["case_study", "quote"],
        0,
        100,
    ),
    ("fleet_buyers_guide", "email", &["guide"], 0, 80),
    ("fleet_quote_reminder", "email", &["quote", "reply"], 0, 80),
    ("fleet_last_call", "email", &["reply"], 0, 40),
    ("gps_promo_sms", "sms", &["shop"], 10, 5),
    ("kids_promo_sms", "sms", &["shop"], 10, 0),
    ("xmas_sms", "sms", &["gifts"], 10, 5),
    ("fleet_sms_quote", "sms", &["quote"], 0, 30),
    ("gps_push", "push", &[], 20, 5),
];

/// Topics of `contact_request` (the comment in `schema.camp`).
pub const TOPICS: [&str; 5] = ["gps", "siege_auto", "flotte", "devis", "sav"];

/// Categories of `purchase` with a few SKUs and their prices in cents.
const CATALOGUE: [(&str, &[(&str, i64)]); 4] = [
    (
        "gps",
        &[
            ("GPS-TT-GO-PRO", 34_900),
            ("GPS-GAR-DS66", 24_900),
            ("GPS-SUP-MAG", 1_990),
            ("GPS-CARTE-EU26", 5_990),
            ("DASH-V3", 12_900),
            ("DASH-DUO-4K", 19_900),
        ],
    ),
    (
        "sieges",
        &[
            ("SIE-ISIZE-0", 24_990),
            ("SIE-ISIZE-1", 18_990),
            ("SIE-REH-15", 4_990),
            ("SIE-BASIC-G1", 6_990),
            ("SIE-PIVOT-360", 32_900),
        ],
    ),
    (
        "flotte",
        &[
            ("FLT-KIT-GPS-5", 149_000),
            ("FLT-DASH-10", 189_000),
            ("FLT-POSE-SITE", 45_000),
            ("FLT-TRACK-20", 390_000),
        ],
    ),
    (
        "consommables",
        &[
            ("CON-ESSUIE-GL", 1_990),
            ("CON-AMPOULE-H7", 1_290),
            ("CON-LAVE-GLACE", 590),
            ("CON-HUILE-5W30", 4_490),
            ("CON-DEGIVR", 790),
        ],
    ),
];

/// Site sections and pages. Only the `gps` section's paths contain `/gps`
/// (the `gps_hot_browsers` segment counts them).
const PAGES: [(&str, &[&str]); 6] = [
    (
        "gps",
        &[
            "/gps",
            "/gps/supports-magnetiques",
            "/gps/comparatif-2026",
            "/gps/cartes-europe-2026",
            "/gps/garmin-drivesmart-66",
            "/gps/tomtom-go-superior",
            "/gps/dashcams",
        ],
    ),
    (
        "sieges",
        &[
            "/sieges-auto",
            "/sieges-auto/isofix-i-size",
            "/sieges-auto/rehausseurs",
            "/sieges-auto/pivotants-360",
            "/sieges-auto/groupe-0-1",
        ],
    ),
    (
        "pneus",
        &[
            "/pneus/hiver",
            "/pneus/chaines-neige",
            "/pneus/205-55-r16",
            "/pneus/toutes-saisons",
        ],
    ),
    (
        "flotte",
        &[
            "/flotte",
            "/flotte/devis",
            "/flotte/pose-sur-site",
            "/flotte/references",
        ],
    ),
    (
        "blog",
        &[
            "/blog/preparer-sa-voiture-pour-l-hiver",
            "/blog/bien-choisir-son-navigateur",
            "/blog/siege-auto-les-bons-reflexes",
            "/blog/controle-technique-2026",
            "/blog/12-verifications-long-trajet",
        ],
    ),
    (
        "other",
        &[
            "/",
            "/panier",
            "/compte",
            "/compte/commandes",
            "/magasin",
            "/recherche?q=support+telephone",
        ],
    ),
];

const FIRST_NAMES: [&str; 40] = [
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Emma",
    "Inès",
    "Sarah",
    "Julie",
    "Marie",
    "Sophie",
    "Lucas",
    "Hugo",
    "Louis",
    "Thomas",
    "Nicolas",
    "Julien",
    "Maxime",
    "Antoine",
    "Alexandre",
    "Kévin",
    "Nathalie",
    "Isabelle",
    "Sandrine",
    "Céline",
    "Philippe",
    "Pierre",
    "Jean",
    "Michel",
    "Karim",
    "Mehdi",
    "Yasmine",
    "Fatima",
    "Luca",
    "Élodie",
    "Baptiste",
    "Mathilde",
    "Quentin",
    "Romain",
    "Aurélie",
    "Valérie",
];

const LAST_NAMES: [&str; 40] = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Legrand",
    "Garnier",
    "Faure",
    "Rousseau",
    "Blanc",
    "Guérin",
    "Muller",
    "Henry",
    "Roussel",
    "Nicolas",
    "Perrin",
];

const MAIL_DOMAINS: [&str; 6] = [
    "gmail.example",
    "orange.example",
    "free.example",
    "laposte.example",
    "outlook.example",
    "sfr.example",
];

/// Countries (per mille), their cities, phone prefix and time zone.
struct Country {
    code: &'static str,
    per_mille: u32,
    cities: &'static [&'static str],
    /// E.164 prefix of a mobile number, then how many digits follow.
    mobile: (&'static str, u32),
    tz: &'static str,
}

const COUNTRIES: [Country; 5] = [
    Country {
        code: "FR",
        per_mille: 880,
        cities: &[
            "Lyon",
            "Villeurbanne",
            "Vénissieux",
            "Bron",
            "Caluire-et-Cuire",
            "Saint-Étienne",
            "Grenoble",
            "Vienne",
            "Villefranche-sur-Saône",
            "Bourg-en-Bresse",
            "Annecy",
            "Chambéry",
            "Mâcon",
            "Valence",
            "Paris",
            "Clermont-Ferrand",
        ],
        mobile: ("+336", 8),
        tz: "Europe/Paris",
    },
    Country {
        code: "BE",
        per_mille: 50,
        cities: &["Bruxelles", "Liège", "Namur", "Charleroi"],
        mobile: ("+3247", 7),
        tz: "Europe/Brussels",
    },
    Country {
        code: "CH",
        per_mille: 30,
        cities: &["Genève", "Lausanne", "Zürich", "Neuchâtel"],
        mobile: ("+4179", 7),
        tz: "Europe/Zurich",
    },
    Country {
        code: "DE",
        per_mille: 20,
        cities: &["Freiburg", "München", "Stuttgart"],
        mobile: ("+49151", 8),
        tz: "Europe/Berlin",
    },
    Country {
        code: "ES",
        per_mille: 20,
        cities: &["Barcelona", "Madrid", "Valencia"],
        mobile: ("+346", 8),
        tz: "Europe/Madrid",
    },
];

/// Zones of French contacts who live elsewhere (overseas, Québec).
const FAR_ZONES: [&str; 4] = [
    "America/Montreal",
    "Indian/Reunion",
    "America/Martinique",
    "Europe/Paris",
];

/// Lower-case ASCII for e-mail local parts.
fn ascii_lower(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'É' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

// ---------------------------------------------------------------- contacts

/// Customer type, as stored in [`Contacts::traits`].
const INDIVIDUAL: u8 = 0;
const GARAGE: u8 = 1;
const FLEET: u8 = 2;
const TYPE_MASK: u8 = 0b11;
const HAS_PHONE: u8 = 1 << 2;
const LIKES_GPS: u8 = 1 << 3;
const LIKES_SEATS: u8 = 1 << 4;

/// What the event generator needs to know of each contact: 6 bytes each.
pub struct Contacts {
    /// Lists at `from` (bits of [`LISTS`]).
    lists: Vec<u8>,
    /// Customer type and a few traits (bits above).
    traits: Vec<u8>,
    /// Seconds between signup and `from`.
    signed_up_before: Vec<u32>,
}

/// Counts of what was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub contacts: u64,
    pub contacts_bytes: u64,
    /// Bad lines in `contacts.jsonl`, by kind.
    pub bad_contacts: BTreeMap<&'static str, u64>,
    /// Good events by name, history and window together.
    pub events_by_name: BTreeMap<&'static str, u64>,
    pub history_events: u64,
    pub window_events: u64,
    pub events_bytes: u64,
    /// Bad lines in `events.jsonl`, by kind.
    pub bad_events: BTreeMap<&'static str, u64>,
    /// Good events per contact: the largest count, and how many contacts
    /// had none.
    pub max_events_per_contact: u64,
    pub contacts_without_events: u64,
}

/// Writes `contacts.jsonl` to `w`; returns what the events need.
pub fn write_contacts(cfg: &Config, w: &mut impl Write, stats: &mut Stats) -> io::Result<Contacts> {
    let mut rng = Rng::new(cfg.seed, 1);
    let ids = Ids::new(cfg.contacts);
    let first_ascii: Vec<String> = FIRST_NAMES.iter().map(|n| ascii_lower(n)).collect();
    let last_ascii: Vec<String> = LAST_NAMES.iter().map(|n| ascii_lower(n)).collect();
    let country_table: Vec<(usize, u32)> = COUNTRIES
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.per_mille))
        .collect();
    let signup_span = cfg.signup_days() * DAY;

    let n = cfg.contacts as usize;
    let mut out = Contacts {
        lists: Vec::with_capacity(n),
        traits: Vec::with_capacity(n),
        signed_up_before: Vec::with_capacity(n),
    };
    let mut line = Vec::with_capacity(1024);
    let mut ts = TimestampFormat::default();
    let mut bad_rng = Rng::new(cfg.seed, 3);
    let mut bad_seq = 0u64;

    for i in 0..cfg.contacts {
        if cfg.bad_lines && bad_rng.below(BAD_LINE_EVERY) == 0 {
            bad_seq += 1;
            let kind = bad_contact_line(&mut line, &mut bad_rng, bad_seq);
            *stats.bad_contacts.entry(kind).or_default() += 1;
            w.write_all(&line)?;
            stats.contacts_bytes += line.len() as u64;
        }
        line.clear();
        let ctype = *rng.weighted(&[(INDIVIDUAL, 900), (GARAGE, 70), (FLEET, 30)]);
        let country = &COUNTRIES[*rng.weighted(&country_table)];
        let has_first = rng.chance(if ctype == INDIVIDUAL { 850 } else { 950 });
        let has_last = rng.chance(if ctype == INDIVIDUAL { 750 } else { 950 });
        let fi = rng.below(FIRST_NAMES.len() as u64) as usize;
        let li = rng.below(LAST_NAMES.len() as u64) as usize;

        line.extend_from_slice(b"{\"id\":");
        ids.push(&mut line, i);

        // email: unique (it holds the index), ASCII.
        push_key(&mut line, "email");
        line.push(b'"');
        if has_first {
            line.extend_from_slice(first_ascii[fi].as_bytes());
            line.push(b'.');
        }
        line.extend_from_slice(last_ascii[li].as_bytes());
        push_u64(&mut line, i + 1);
        line.push(b'@');
        if ctype == INDIVIDUAL {
            line.extend_from_slice(rng.pick(&MAIL_DOMAINS).as_bytes());
        } else {
            line.extend_from_slice(if ctype == GARAGE {
                b"garage-"
            } else {
                b"flotte-"
            });
            line.extend_from_slice(last_ascii[li].as_bytes());
            line.extend_from_slice(b".example");
        }
        line.push(b'"');

        let mut traits = ctype;
        if rng.chance(700) {
            traits |= HAS_PHONE;
            push_key(&mut line, "phone");
            line.push(b'"');
            line.extend_from_slice(country.mobile.0.as_bytes());
            for _ in 0..country.mobile.1 {
                line.push(b'0' + rng.below(10) as u8);
            }
            line.push(b'"');
        }
        if rng.chance(200) {
            push_key(&mut line, "device_token");
            line.extend_from_slice(b"\"fcm:");
            for _ in 0..22 {
                let c = rng.below(64) as u8;
                line.push(match c {
                    0..=25 => b'A' + c,
                    26..=51 => b'a' + c - 26,
                    52..=61 => b'0' + c - 52,
                    62 => b'-',
                    _ => b'_',
                });
            }
            line.push(b'"');
        }
        if has_first {
            push_key(&mut line, "first_name");
            push_str(&mut line, FIRST_NAMES[fi]);
        }
        if has_last {
            push_key(&mut line, "last_name");
            push_str(&mut line, LAST_NAMES[li]);
        }
        let city = rng.pick(country.cities);
        if ctype != INDIVIDUAL && rng.chance(900) {
            push_key(&mut line, "company");
            let last = LAST_NAMES[li];
            let company = if ctype == GARAGE {
                match rng.below(4) {
                    0 => format!("Garage {last}"),
                    1 => format!("Carrosserie {last}"),
                    2 => format!("Auto Services {last}"),
                    _ => format!(
                        "Garage du {}",
                        rng.pick(&["Centre", "Parc", "Rhône", "Lac"])
                    ),
                }
            } else {
                match rng.below(5) {
                    0 => format!("Transports {last}"),
                    1 => format!("{last} Logistique"),
                    2 => format!("Taxis {city}"),
                    3 => format!("Ambulances {last}"),
                    _ => format!("{last} BTP"),
                }
            };
            push_str(&mut line, &company);
        }
        if rng.chance(750) {
            push_key(&mut line, "city");
            push_str(&mut line, city);
        }
        push_key(&mut line, "country");
        push_str(&mut line, country.code);
        push_key(&mut line, "customer_type");
        push_str(&mut line, ["individual", "garage", "fleet"][ctype as usize]);

        let before = 1 + rng.below(signup_span as u64 - 1) as i64;
        push_key(&mut line, "signup_at");
        line.push(b'"');
        ts.write(&mut line, cfg.from - before);
        line.push(b'"');

        if rng.chance(400) {
            // Next contrôle technique: a few overdue, most in the coming year.
            let day = cfg.from.div_euclid(DAY) - 60 + rng.below(425) as i64;
            push_key(&mut line, "ct_due_on");
            push_str(&mut line, &format_date(day));
        }

        // Lists first: ltv and tags depend on them.
        let mut lists = 0u8;
        let competitor = rng.below(2000) == 0;
        let customer_per_mille = [330, 500, 550][ctype as usize];
        if competitor {
            lists = COMPETITORS;
        } else if rng.chance(customer_per_mille) {
            lists |= CUSTOMERS;
            if ctype == FLEET && rng.chance(500) {
                lists |= FLEET_ACCOUNTS;
            }
        } else if rng.chance(770) {
            lists |= PROSPECTS;
        }
        if !competitor && rng.chance(600) {
            lists |= NEWSLETTER;
        }

        let ltv = if lists & CUSTOMERS == 0 {
            0
        } else {
            let cap = [150_000.0, 800_000.0, 4_000_000.0][ctype as usize];
            1_500 + (rng.unit() * rng.unit() * cap) as i64
        };
        push_key(&mut line, "ltv");
        push_cents(&mut line, ltv);

        if (ctype != INDIVIDUAL && rng.chance(900)) || (ctype == INDIVIDUAL && rng.chance(150)) {
            let v = match ctype {
                INDIVIDUAL => rng.range(1, 3),
                GARAGE => rng.range(1, 8),
                _ => 3 + (rng.unit() * rng.unit() * 120.0) as u64,
            };
            push_key(&mut line, "vehicles");
            push_u64(&mut line, v);
        }
        let mut kids = false;
        if rng.chance(500) {
            kids = rng.chance(400);
            push_key(&mut line, "has_kids");
            line.extend_from_slice(if kids { b"true" } else { b"false" });
        }
        push_key(&mut line, "sms_opt_in");
        let opt_in = if traits & HAS_PHONE != 0 {
            rng.chance(550)
        } else {
            rng.chance(30)
        };
        line.extend_from_slice(if opt_in { b"true" } else { b"false" });

        push_key(&mut line, "interests");
        line.push(b'[');
        let mut first = true;
        for (value, per_mille) in INTERESTS {
            let p = if value == "siege_auto" && kids {
                600
            } else {
                per_mille
            };
            if rng.chance(p) {
                if !first {
                    line.push(b',');
                }
                first = false;
                push_str(&mut line, value);
                match value {
                    "gps" => traits |= LIKES_GPS,
                    "siege_auto" => traits |= LIKES_SEATS,
                    _ => {}
                }
            }
        }
        line.push(b']');

        // ~5 %: most foreign contacts, a few French ones abroad.
        let tz = if country.code != "FR" {
            rng.chance(350).then_some(country.tz)
        } else {
            rng.chance(10).then(|| *rng.pick(&FAR_ZONES))
        };
        if let Some(tz) = tz {
            push_key(&mut line, "tz");
            push_str(&mut line, tz);
        }

        if !competitor {
            if rng.chance(if traits & LIKES_GPS != 0 { 500 } else { 50 }) {
                lists |= GPS_INTEREST;
            }
            if rng.chance(if traits & LIKES_SEATS != 0 { 500 } else { 30 }) {
                lists |= KIDS_INTEREST;
            }
        }
        push_key(&mut line, "lists");
        line.push(b'[');
        let mut first = true;
        for (bit, name) in LISTS.iter().enumerate() {
            if lists & (1 << bit) != 0 {
                if !first {
                    line.push(b',');
                }
                first = false;
                push_str(&mut line, name);
            }
        }
        line.push(b']');

        // Tags: those of the lists' `on join`, then a few set by scenarios.
        push_key(&mut line, "tags");
        line.push(b'[');
        let mut tags: Vec<&str> = Vec::new();
        for (bit, tag) in LIST_TAGS.iter().enumerate() {
            if lists & (1 << bit) != 0 && !tag.is_empty() {
                tags.push(tag);
            }
        }
        if ctype != INDIVIDUAL {
            tags.push("pro");
        }
        if lists & PROSPECTS != 0 && rng.chance(30) {
            tags.push("non_ouvreur");
        }
        if lists & CUSTOMERS != 0 && rng.chance(20) {
            tags.push("dormant");
        }
        if rng.chance(20) {
            tags.push("lecteur_guides");
        }
        for (k, tag) in tags.iter().enumerate() {
            if k > 0 {
                line.push(b',');
            }
            push_str(&mut line, tag);
        }
        line.extend_from_slice(b"]}\n");

        w.write_all(&line)?;
        stats.contacts_bytes += line.len() as u64;
        stats.contacts += 1;
        out.lists.push(lists);
        out.traits.push(traits);
        out.signed_up_before.push(before as u32);
    }
    Ok(out)
}

/// One bad contact line in `line`; returns its kind.
fn bad_contact_line(line: &mut Vec<u8>, rng: &mut Rng, seq: u64) -> &'static str {
    line.clear();
    // Ids of bad lines start with `x`: no event names them.
    let id = format!("x{seq:06}");
    let (kind, text) = match rng.below(5) {
        0 => (
            "bad_json",
            format!(r#"{{"id":"{id}","email":"broken{seq}@example.com","country":"FR","#),
        ),
        1 => (
            "missing_required_field",
            format!(
                r#"{{"id":"{id}","country":"FR","customer_type":"individual","signup_at":"2025-06-01T10:00:00Z","ltv":0,"sms_opt_in":false,"interests":[],"lists":["newsletter"],"tags":[]}}"#
            ),
        ),
        2 => (
            "wrong_type",
            format!(
                r#"{{"id":"{id}","email":"ltv{seq}@example.com","country":"FR","customer_type":"individual","signup_at":"2025-06-01T10:00:00Z","ltv":"1 200,50","sms_opt_in":"oui","interests":"gps","lists":[],"tags":[]}}"#
            ),
        ),
        3 => (
            "unknown_enum_variant",
            format!(
                r#"{{"id":"{id}","email":"variant{seq}@example.com","country":"FR","customer_type":"particulier","signup_at":"2025-06-01T10:00:00Z","ltv":0,"sms_opt_in":false,"interests":[],"lists":[],"tags":[]}}"#
            ),
        ),
        _ => (
            "missing_id",
            format!(
                r#"{{"email":"noid{seq}@example.com","country":"FR","customer_type":"individual","signup_at":"2025-06-01T10:00:00Z","ltv":0,"sms_opt_in":false,"interests":[],"lists":[],"tags":[]}}"#
            ),
        ),
    };
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    kind
}

// ---------------------------------------------------------------- activity

/// How active contacts are: classes by share of the base and relative event
/// rate. With 10 events per contact on average, a dormant contact gets
/// about 1 event, a normal one 4.5, an active one 22, a very active one 90
/// and a heavy one 450 (15 a day over 30 days).
const ACTIVITY: [(u64, f64); 5] = [
    // (per 10,000 contacts, weight)
    (10, 100.0),
    (490, 20.0),
    (1_500, 5.0),
    (3_000, 1.0),
    (5_000, 0.2),
];

/// Picks contacts with the skew of [`ACTIVITY`]. Classes are ranges of a
/// permuted position, so activity does not follow the id order.
struct Activity {
    n: u64,
    /// (first position, positions, cumulative weight mass)
    classes: Vec<(u64, u64, f64)>,
    multiplier: u64,
    offset: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Activity {
    fn new(n: u64, rng: &mut Rng) -> Self {
        let mut classes = Vec::new();
        let mut lo = 0;
        let mut mass = 0.0;
        let mut cumulative = 0;
        for (share, weight) in ACTIVITY {
            cumulative += share;
            let hi = n * cumulative / 10_000;
            if hi > lo {
                mass += (hi - lo) as f64 * weight;
                classes.push((lo, hi - lo, mass));
            }
            lo = hi;
        }
        // position -> contact: p * multiplier + offset (mod n), a bijection
        // because the multiplier is coprime with n.
        let mut multiplier = (n / 2 + rng.below(n.max(1))).max(1) | 1;
        while n > 1 && gcd(multiplier, n) != 1 {
            multiplier += 2;
        }
        Activity {
            n,
            classes,
            multiplier,
            offset: rng.below(n),
        }
    }

    fn pick(&self, rng: &mut Rng) -> u64 {
        let total = self.classes.last().map_or(0.0, |c| c.2);
        let x = rng.unit() * total;
        let class = self
            .classes
            .iter()
            .find(|c| x < c.2)
            .unwrap_or(&self.classes[self.classes.len() - 1]);
        let p = class.0 + rng.below(class.1);
        ((u128::from(p) * u128::from(self.multiplier) + u128::from(self.offset))
            % u128::from(self.n)) as u64
    }
}

// ---------------------------------------------------------------- events

/// Writes `events.jsonl` to `w`: history then window, sorted by `at`.
pub fn write_events(
    cfg: &Config,
    contacts: &mut Contacts,
    w: &mut impl Write,
    stats: &mut Stats,
) -> io::Result<()> {
    if cfg.contacts == 0 {
        return Ok(());
    }
    let mut g = EventGen {
        cfg,
        rng: Rng::new(cfg.seed, 2),
        bad_rng: Rng::new(cfg.seed, 4),
        ids: Ids::new(cfg.contacts),
        activity: Activity::new(cfg.contacts, &mut Rng::new(cfg.seed, 5)),
        ts: TimestampFormat::default(),
        line: Vec::with_capacity(256),
        per_contact: vec![0u16; cfg.contacts as usize],
        bad_seq: 0,
    };
    let history_hours = u64::from(cfg.history_days) * 24;
    let window_hours = u64::from(cfg.days) * 24;
    let history_start = cfg.from - history_hours as i64 * HOUR;
    g.span(
        contacts,
        w,
        stats,
        history_start,
        history_hours,
        cfg.history_events(),
        true,
    )?;
    g.span(
        contacts,
        w,
        stats,
        cfg.from,
        window_hours,
        cfg.events,
        false,
    )?;
    stats.max_events_per_contact = g
        .per_contact
        .iter()
        .map(|&c| u64::from(c))
        .max()
        .unwrap_or(0);
    stats.contacts_without_events = g.per_contact.iter().filter(|&&c| c == 0).count() as u64;
    Ok(())
}

struct EventGen<'a> {
    cfg: &'a Config,
    rng: Rng,
    bad_rng: Rng,
    ids: Ids,
    activity: Activity,
    ts: TimestampFormat,
    line: Vec<u8>,
    /// Good events per contact (saturating), for the statistics.
    per_contact: Vec<u16>,
    bad_seq: u64,
}

impl EventGen<'_> {
    /// `total` events over `hours` hours from `start`, spread evenly over
    /// the hours and uniformly within each hour.
    #[allow(clippy::too_many_arguments)]
    fn span(
        &mut self,
        contacts: &mut Contacts,
        w: &mut impl Write,
        stats: &mut Stats,
        start: i64,
        hours: u64,
        total: u64,
        history: bool,
    ) -> io::Result<()> {
        let mut per_second = vec![0u32; HOUR as usize];
        for h in 0..hours {
            let count = ((u128::from(total) * u128::from(h + 1) / u128::from(hours))
                - (u128::from(total) * u128::from(h) / u128::from(hours)))
                as u64;
            per_second.iter_mut().for_each(|c| *c = 0);
            for _ in 0..count {
                per_second[self.rng.below(HOUR as u64) as usize] += 1;
            }
            let hour_start = start + h as i64 * HOUR;
            for (s, &k) in per_second.iter().enumerate() {
                let at = hour_start + s as i64;
                for _ in 0..k {
                    if self.cfg.bad_lines && self.bad_rng.below(BAD_LINE_EVERY) == 0 {
                        let kind = self.bad_event_line(at);
                        *stats.bad_events.entry(kind).or_default() += 1;
                        w.write_all(&self.line)?;
                        stats.events_bytes += self.line.len() as u64;
                    }
                    let name = self.event(contacts, at, history);
                    *stats.events_by_name.entry(name).or_default() += 1;
                    if history {
                        stats.history_events += 1;
                    } else {
                        stats.window_events += 1;
                    }
                    w.write_all(&self.line)?;
                    stats.events_bytes += self.line.len() as u64;
                }
            }
        }
        Ok(())
    }

    /// One good event at `at` in `self.line`; returns its name.
    fn event(&mut self, contacts: &mut Contacts, at: i64, history: bool) -> &'static str {
        let rng = &mut self.rng;
        let mut c = self.activity.pick(rng);
        if history {
            // Nobody acts before signing up.
            let before = (self.cfg.from - at) as u32;
            let mut tries = 0;
            while contacts.signed_up_before[c as usize] < before && tries < 64 {
                c = self.activity.pick(rng);
                tries += 1;
            }
        }
        let ci = c as usize;
        self.per_contact[ci] = self.per_contact[ci].saturating_add(1);
        let traits = contacts.traits[ci];
        let pro = traits & TYPE_MASK != INDIVIDUAL;
        let mut name = *rng.weighted(&EVENT_MIX);
        // The list of a `joined` / `left`, decided first: in history the
        // name may change to keep the history consistent with `from`.
        let mut list = 0u8;
        if name == "joined" || name == "left" {
            let state = contacts.lists[ci];
            if history {
                (name, list) = history_list(rng, state, name == "joined", traits);
            } else if name == "joined" {
                list = pick_join(rng, state, traits);
                contacts.lists[ci] = join(state, list);
            } else {
                list = pick_leave(rng, state);
                contacts.lists[ci] = state & !list;
            }
        }

        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"contact\":");
        self.ids.push(line, c);
        line.extend_from_slice(b",\"event\":\"");
        line.extend_from_slice(name.as_bytes());
        line.extend_from_slice(b"\",\"at\":\"");
        self.ts.write(line, at);
        line.push(b'"');

        match name {
            "page_view" => {
                let gps = if traits & LIKES_GPS != 0 { 54 } else { 18 };
                let seats = if traits & LIKES_SEATS != 0 { 42 } else { 14 };
                let fleet = if pro { 30 } else { 2 };
                let section = *rng.weighted(&[
                    (0usize, gps),
                    (1, seats),
                    (2, 14),
                    (3, fleet),
                    (4, 15),
                    (5, 35),
                ]);
                push_key(line, "path");
                push_str(line, rng.pick::<&str>(PAGES[section].1));
            }
            "purchase" => {
                let category = if pro {
                    *rng.weighted(&[(0usize, 30), (1, 5), (2, 40), (3, 25)])
                } else {
                    *rng.weighted(&[(0usize, 35), (1, 25), (2, 0), (3, 40)])
                };
                let (cat, skus) = CATALOGUE[category];
                let (sku, price) = *rng.pick(skus);
                let quantity = if cat == "consommables" {
                    rng.range(1, 3) as i64
                } else {
                    1
                };
                // About 4 % are refunds (negative amounts).
                let amount = if rng.chance(40) {
                    -price
                } else {
                    price * quantity
                };
                push_key(line, "amount");
                push_cents(line, amount);
                push_key(line, "sku");
                push_str(line, sku);
                push_key(line, "category");
                push_str(line, cat);
            }
            "contact_request" => {
                let (topic, vehicles) = match traits & TYPE_MASK {
                    INDIVIDUAL => (
                        *rng.weighted(&[(0usize, 30), (1, 30), (2, 0), (3, 10), (4, 30)]),
                        if rng.chance(800) { 0 } else { rng.range(1, 2) },
                    ),
                    GARAGE => (
                        *rng.weighted(&[(0usize, 15), (1, 10), (2, 25), (3, 30), (4, 20)]),
                        rng.range(0, 8),
                    ),
                    _ => (
                        *rng.weighted(&[(0usize, 10), (1, 5), (2, 45), (3, 30), (4, 10)]),
                        if rng.chance(100) {
                            0
                        } else {
                            3 + (rng.unit() * rng.unit() * 80.0) as u64
                        },
                    ),
                };
                push_key(line, "subject");
                push_str(line, TOPICS[topic]);
                push_key(line, "vehicles");
                push_u64(line, vehicles);
            }
            "joined" | "left" => {
                push_key(line, "list");
                push_str(line, LISTS[list.trailing_zeros() as usize]);
            }
            "unsubscribed" => {
                let sms = traits & HAS_PHONE != 0 && rng.chance(150);
                push_key(line, "channel");
                push_str(line, if sms { "sms" } else { "email" });
                if rng.chance(if sms { 300 } else { 600 }) {
                    let channel = if sms { "sms" } else { "email" };
                    let t = pick_template(rng, pro, |t| t.1 == channel);
                    push_key(line, "template");
                    push_str(line, TEMPLATES[t].0);
                }
            }
            _ => {
                // opened, clicked, delivered, bounced, replied
                let t = match name {
                    "clicked" => pick_template(rng, pro, |t| !t.2.is_empty()),
                    "replied" => pick_template(rng, pro, |t| t.1 != "push"),
                    _ => pick_template(rng, pro, |_| true),
                };
                push_key(line, "template");
                push_str(line, TEMPLATES[t].0);
                if name == "clicked" {
                    push_key(line, "link");
                    push_str(line, rng.pick::<&str>(TEMPLATES[t].2));
                }
            }
        }
        line.extend_from_slice(b"}\n");
        name
    }

    /// One bad event line at `at` in `self.line`; returns its kind.
    fn bad_event_line(&mut self, at: i64) -> &'static str {
        self.bad_seq += 1;
        let rng = &mut self.bad_rng;
        let c = rng.below(self.cfg.contacts);
        let id = self.ids.id(c);
        let at = format_timestamp(at);
        let (kind, text) = match rng.below(8) {
            0 => (
                "bad_json",
                format!(r#"{{"contact":"{id}","event":"page_view","at":"{at}","path":"/gps/sup"#),
            ),
            1 => (
                "not_an_object",
                format!(r#"["{id}","page_view","{at}","/gps"]"#),
            ),
            2 => (
                "unknown_contact",
                format!(
                    r#"{{"contact":"{}","event":"page_view","at":"{at}","path":"/gps"}}"#,
                    self.ids.id(self.cfg.contacts + self.bad_seq)
                ),
            ),
            3 => (
                "wrong_type",
                format!(
                    r#"{{"contact":"{id}","event":"purchase","at":"{at}","amount":"49,90","sku":"GPS-SUP-MAG","category":"gps"}}"#
                ),
            ),
            4 => (
                "missing_required_field",
                format!(
                    r#"{{"contact":"{id}","event":"purchase","at":"{at}","amount":49.90,"category":"gps"}}"#
                ),
            ),
            5 => (
                "missing_at",
                format!(r#"{{"contact":"{id}","event":"page_view","path":"/pneus/hiver"}}"#),
            ),
            6 => (
                "bad_timestamp",
                format!(
                    r#"{{"contact":"{id}","event":"page_view","at":"{}T25:61:00Z","path":"/pneus/hiver"}}"#,
                    &at[..10]
                ),
            ),
            _ => (
                "unknown_event",
                format!(r#"{{"contact":"{id}","event":"pageview","at":"{at}","path":"/gps"}}"#),
            ),
        };
        self.line.clear();
        self.line.extend_from_slice(text.as_bytes());
        self.line.push(b'\n');
        kind
    }
}

/// A template index for a B2C or B2B contact among those `keep` accepts.
fn pick_template(rng: &mut Rng, pro: bool, keep: impl Fn(&Engaging) -> bool) -> usize {
    let weight = |t: &Engaging| if pro { t.4 } else { t.3 };
    let total: u64 = TEMPLATES
        .iter()
        .filter(|t| keep(t))
        .map(|t| u64::from(weight(t)))
        .sum();
    let mut x = rng.below(total);
    for (i, t) in TEMPLATES.iter().enumerate() {
        if !keep(t) {
            continue;
        }
        let w = u64::from(weight(t));
        if x < w {
            return i;
        }
        x -= w;
    }
    0
}

/// The list a window `joined` names: mostly one the contact is not in yet
/// (a few re-joins stay, as real feeds repeat themselves).
fn pick_join(rng: &mut Rng, state: u8, traits: u8) -> u8 {
    let fleet = if traits & TYPE_MASK == FLEET { 40 } else { 0 };
    let table = [
        (NEWSLETTER, 350),
        (PROSPECTS, 300),
        (CUSTOMERS, 80),
        (GPS_INTEREST, 120),
        (KIDS_INTEREST, 100),
        (FLEET_ACCOUNTS, fleet),
        (COMPETITORS, 1),
    ];
    let mut list = *rng.weighted(&table);
    for _ in 0..3 {
        if state & list == 0 {
            break;
        }
        list = *rng.weighted(&table);
    }
    list
}

/// The list a window `left` names: one the contact is in when possible.
fn pick_leave(rng: &mut Rng, state: u8) -> u8 {
    let list = *rng.weighted(&[
        (NEWSLETTER, 60),
        (PROSPECTS, 20),
        (GPS_INTEREST, 10),
        (KIDS_INTEREST, 10),
    ]);
    if state & list != 0 {
        return list;
    }
    [NEWSLETTER, PROSPECTS, GPS_INTEREST, KIDS_INTEREST]
        .into_iter()
        .find(|l| state & l != 0)
        .unwrap_or(list)
}

/// History agrees with the lists at `from`: a history `joined` names a list
/// the contact is in, a history `left` one it is not in. A contact in no
/// list gets a `left` instead of a `joined` (and the reverse).
fn history_list(rng: &mut Rng, state: u8, joined: bool, traits: u8) -> (&'static str, u8) {
    let candidates = |joined: bool| -> Vec<u8> {
        (0..LISTS.len())
            .map(|b| 1u8 << b)
            .filter(|&l| (state & l != 0) == joined)
            .filter(|&l| l != COMPETITORS && (l != FLEET_ACCOUNTS || traits & TYPE_MASK == FLEET))
            .collect()
    };
    let mut joined = joined;
    let mut lists = candidates(joined);
    if lists.is_empty() {
        joined = !joined;
        lists = candidates(joined);
    }
    let name = if joined { "joined" } else { "left" };
    // Every contact is either in `newsletter` or not.
    let list = if lists.is_empty() {
        NEWSLETTER
    } else {
        *rng.pick(&lists)
    };
    (name, list)
}

// ---------------------------------------------------------------- files

/// Writes `contacts.jsonl`, `events.jsonl` and `README.txt` into `dir`
/// (created if needed; existing files are replaced). `README.txt` is
/// written last, so a folder with one holds a complete base.
pub fn write_dir(cfg: &Config, dir: &Path) -> io::Result<Stats> {
    std::fs::create_dir_all(dir)?;
    let readme = dir.join("README.txt");
    match std::fs::remove_file(&readme) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut stats = Stats::default();
    let contacts_path = dir.join("contacts.jsonl");
    let events_path = dir.join("events.jsonl");

    let tmp = dir.join("contacts.jsonl.tmp");
    let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let mut contacts = write_contacts(cfg, &mut w, &mut stats)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &contacts_path)?;

    let tmp = dir.join("events.jsonl.tmp");
    let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    write_events(cfg, &mut contacts, &mut w, &mut stats)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &events_path)?;

    std::fs::write(
        &readme,
        readme_text(cfg, &stats, &dir.display().to_string()),
    )?;
    Ok(stats)
}

/// The contents of `README.txt`: parameters, counts and the commands.
pub fn readme_text(cfg: &Config, stats: &Stats, dir: &str) -> String {
    let from = format_timestamp(cfg.from);
    let until = format_timestamp(cfg.until());
    let mut t = String::new();
    t += &cfg.params_line();
    t += "\n\nSynthetic contact base and event stream for campaigns/ (relance run benchmark).\n";
    t += &format!("Generated by: {}\n\n", cfg.command(dir));
    t += &format!("from:  {from}\nuntil: {until}\n");
    if cfg.history_days > 0 {
        t += &format!(
            "history: {} events from {} (before `from`: they feed aggregates, fire no trigger)\n",
            stats.history_events,
            format_timestamp(cfg.from - i64::from(cfg.history_days) * DAY)
        );
    }
    t += &format!(
        "contacts.jsonl: {} contacts, {} bytes\n",
        stats.contacts, stats.contacts_bytes
    );
    t += &format!(
        "events.jsonl:   {} events in the window, {} in history, {} bytes\n",
        stats.window_events, stats.history_events, stats.events_bytes
    );
    t += &format!(
        "events per contact: max {}, contacts with none {}\n",
        stats.max_events_per_contact, stats.contacts_without_events
    );
    t += "events by name:";
    for (name, n) in &stats.events_by_name {
        t += &format!(" {name} {n},");
    }
    t.pop();
    t += "\n";
    for (file, bad) in [
        ("contacts.jsonl", &stats.bad_contacts),
        ("events.jsonl", &stats.bad_events),
    ] {
        if cfg.bad_lines {
            let total: u64 = bad.values().sum();
            t += &format!("bad lines in {file}: {total}");
            for (kind, n) in bad {
                t += &format!(", {kind} {n}");
            }
            t += "\n";
        }
    }
    t += &format!(
        "\nTo run it:\n  relance build campaigns --out build --now {from}\n  relance run --plan build/plan.json --contacts {dir}/contacts.jsonl --events {dir}/events.jsonl --from {from} --until {until} --out outbox.jsonl --summary summary.json --timings\n"
    );
    t
}
