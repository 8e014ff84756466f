//! The Handlebars side: the helpers of §6, one registry per escaping mode,
//! and rendering that never panics.

use std::panic::{AssertUnwindSafe, catch_unwind};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason,
    ScopedJson, Template,
};
use serde_json::Value as Json;

use super::model::Mode;
use super::text::{escape_html_value, escape_json};

/// The helpers of §6 and Handlebars' built-ins, for the static checks.
pub(crate) const HELPERS: &[&str] = &[
    // §6
    "default",
    "upper",
    "lower",
    "capitalize",
    "date",
    "number",
    "eq",
    // Handlebars built-ins.
    "if",
    "unless",
    "each",
    "with",
    "lookup",
    "raw",
    "log",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "and",
    "or",
    "not",
    "len",
];

/// Helpers whose result is a boolean or a count: an absent argument is fine.
pub(crate) const CONDITION_HELPERS: &[&str] = &[
    "if", "unless", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not", "len",
];

/// The largest `number` precision.
pub(crate) const MAX_DECIMALS: u64 = 10;

/// The default `date` format.
pub(crate) const DEFAULT_DATE_FORMAT: &str = "%Y-%m-%d";

/// Whether a `date` format is valid, by formatting a sample time.
pub(crate) fn date_format_error(format: &str) -> Option<String> {
    let sample = jiff::Timestamp::UNIX_EPOCH.to_zoned(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(format, &sample)
        .err()
        .map(|e| e.to_string())
}

fn is_empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::String(s) => s.is_empty(),
        Json::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn param<'a>(h: &'a Helper<'_>, i: usize) -> &'a Json {
    static NULL: Json = Json::Null;
    h.param(i).map(|p| p.value()).unwrap_or(&NULL)
}

fn text_of(v: &Json) -> String {
    use handlebars::JsonRender;
    v.render()
}

/// `{{default first_name "there"}}`: the value, or the fallback when the
/// value is absent or empty.
struct Default;

impl HelperDef for Default {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let v = param(h, 0);
        let out = if is_empty(v) { param(h, 1) } else { v };
        Ok(ScopedJson::Derived(out.clone()))
    }
}

#[derive(Clone, Copy)]
enum Case {
    Upper,
    Lower,
    Capitalize,
}

struct CaseHelper(Case);

impl HelperDef for CaseHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let s = text_of(param(h, 0));
        let out = match self.0 {
            Case::Upper => s.to_uppercase(),
            Case::Lower => s.to_lowercase(),
            Case::Capitalize => {
                let mut c = s.chars();
                match c.next() {
                    Some(first) => first.to_uppercase().chain(c).collect(),
                    None => String::new(),
                }
            }
        };
        Ok(ScopedJson::Derived(Json::String(out)))
    }
}

/// `{{date signup_at "%d/%m/%Y"}}`: a timestamp in the contact's time zone
/// (its `timezone` field, else the workspace's, else UTC), or a date.
pub(crate) struct DateHelper {
    pub tz_field: Option<String>,
    pub default_tz: jiff::tz::TimeZone,
}

impl DateHelper {
    fn zone(&self, ctx: &Context) -> jiff::tz::TimeZone {
        self.tz_field
            .as_ref()
            .and_then(|f| ctx.data().get(f))
            .and_then(Json::as_str)
            .and_then(crate::tzdb::zone)
            .unwrap_or_else(|| self.default_tz.clone())
    }
}

impl HelperDef for DateHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let format = match param(h, 1) {
            Json::Null => DEFAULT_DATE_FORMAT.to_string(),
            v => text_of(v),
        };
        let value = param(h, 0);
        let zoned = match value {
            Json::String(s) if s.is_empty() => None,
            Json::String(s) => match s.parse::<jiff::Timestamp>() {
                Ok(t) => Some(t.to_zoned(self.zone(ctx))),
                Err(_) => match s.parse::<jiff::civil::Date>() {
                    // A date has no time zone: midnight, formatted as is.
                    Ok(d) => d.to_zoned(jiff::tz::TimeZone::UTC).ok(),
                    Err(_) => return Ok(ScopedJson::Derived(value.clone())),
                },
            },
            Json::Number(n) => n
                .as_i64()
                .and_then(|s| jiff::Timestamp::from_second(s).ok())
                .map(|t| t.to_zoned(self.zone(ctx))),
            Json::Null => None,
            other => return Ok(ScopedJson::Derived(other.clone())),
        };
        let Some(zoned) = zoned else {
            return Ok(ScopedJson::Derived(Json::String(String::new())));
        };
        match jiff::fmt::strtime::format(format.as_str(), &zoned) {
            Ok(s) => Ok(ScopedJson::Derived(Json::String(s))),
            Err(e) => Err(RenderErrorReason::Other(format!(
                "`date` cannot use the format \"{format}\": {e}"
            ))
            .into()),
        }
    }
}

/// `{{number ltv 2}}`: fixed decimals; `sep=" "` groups thousands and
/// `point=","` changes the decimal point.
struct NumberHelper;

impl HelperDef for NumberHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let value = param(h, 0);
        let n = match value {
            Json::Number(n) => n.as_f64(),
            Json::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let Some(n) = n.filter(|n| n.is_finite()) else {
            return Ok(ScopedJson::Derived(Json::String(text_of(value))));
        };
        let decimals = match param(h, 1) {
            Json::Number(d) => d.as_u64().map(|d| d.min(MAX_DECIMALS) as usize),
            _ => None,
        };
        let sep = h
            .hash_get("sep")
            .map(|v| text_of(v.value()))
            .unwrap_or_default();
        let point = h
            .hash_get("point")
            .map(|v| text_of(v.value()))
            .unwrap_or_else(|| ".".to_string());
        Ok(ScopedJson::Derived(Json::String(format_number(
            n, decimals, &sep, &point,
        ))))
    }
}

pub(crate) fn format_number(n: f64, decimals: Option<usize>, sep: &str, point: &str) -> String {
    let s = match decimals {
        Some(d) => format!("{n:.d$}"),
        None if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", n as i64),
        None => format!("{n}"),
    };
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", s.as_str()),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push_str(sep);
        }
        grouped.push(c);
    }
    // `-0.00` reads oddly.
    let sign = if sign == "-"
        && s.trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
    {
        ""
    } else {
        sign
    };
    match frac {
        Some(f) => format!("{sign}{grouped}{point}{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A registry with the helpers and the escaping of `mode`.
pub(crate) fn registry(
    mode: Mode,
    tz_field: Option<String>,
    tz: jiff::tz::TimeZone,
) -> Handlebars<'static> {
    let mut r = Handlebars::new();
    r.set_strict_mode(false);
    match mode {
        Mode::Html => r.register_escape_fn(escape_html_value),
        Mode::Plain => r.register_escape_fn(handlebars::no_escape),
        Mode::Json => r.register_escape_fn(escape_json),
    }
    r.register_helper("default", Box::new(Default));
    r.register_helper("upper", Box::new(CaseHelper(Case::Upper)));
    r.register_helper("lower", Box::new(CaseHelper(Case::Lower)));
    r.register_helper("capitalize", Box::new(CaseHelper(Case::Capitalize)));
    r.register_helper(
        "date",
        Box::new(DateHelper {
            tz_field,
            default_tz: tz,
        }),
    );
    r.register_helper("number", Box::new(NumberHelper));
    r
}

/// Compiles a template with Handlebars; a panic inside it becomes an error.
pub(crate) fn compile(text: &str) -> Result<Template, (String, Option<(usize, usize)>)> {
    match catch_unwind(|| Template::compile(text)) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err((syntax_reason(&e), e.pos())),
        Err(_) => Err(("Handlebars could not parse this template".into(), None)),
    }
}

/// Handlebars' message without its position (shown by the span), with
/// its grammar's rule names in words.
fn syntax_reason(e: &handlebars::TemplateError) -> String {
    let full = e.reason().to_string();
    let first = full.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return "invalid Handlebars syntax".into();
    }
    let mut s = first.to_string();
    for (rule, words) in [
        ("trailing_tilde_to_omit_whitespace", "`~`"),
        ("leading_tilde_to_omit_whitespace", "`~`"),
        ("helper_parameter", "an argument"),
        ("partial_identifier", "a partial name"),
        ("opt_identifier", "a name"),
        ("identifier", "a name"),
        ("subexpression", "`(…)`"),
        ("reference", "a name"),
        ("path_inline", "a name"),
        ("literal", "a value"),
        ("raw_text", "text"),
        ("raw_block_text", "text"),
        ("hbs_comment_compact", "a comment"),
        ("hbs_comment", "a comment"),
        ("helper_block_end", "a block end `{{/…}}`"),
        ("partial_block_end", "a block end `{{/…}}`"),
        ("raw_block_end", "a raw block end"),
        ("invert_tag", "`{{else}}`"),
        ("expression", "a tag"),
        ("EOI", "the end of the template"),
    ] {
        s = s.replace(rule, words);
    }
    s.replace("invalid handlebars syntax: ", "")
}

/// Renders a registered template; a panic inside Handlebars becomes an error.
pub(crate) fn render(r: &Handlebars<'static>, name: &str, ctx: &Context) -> Result<String, String> {
    match catch_unwind(AssertUnwindSafe(|| r.render_with_context(name, ctx))) {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(render_reason(&e)),
        Err(_) => Err("Handlebars failed while rendering".into()),
    }
}

fn render_reason(e: &RenderError) -> String {
    e.reason().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(
            format_number(1234567.891, Some(2), " ", ","),
            "1 234 567,89"
        );
        assert_eq!(format_number(1200.0, None, "", "."), "1200");
        assert_eq!(format_number(-1234.5, Some(0), ",", "."), "-1,234");
        assert_eq!(format_number(-0.001, Some(2), "", "."), "0.00");
        assert_eq!(format_number(189.8, None, "", "."), "189.8");
    }

    #[test]
    fn date_formats() {
        assert!(date_format_error("%d/%m/%Y").is_none());
        assert!(date_format_error("%K").is_some());
    }

    #[test]
    fn helpers_render() {
        let mut r = registry(Mode::Html, Some("tz".into()), jiff::tz::TimeZone::UTC);
        let src = r#"{{default a "x"}}|{{default b "x"}}|{{upper b}}|{{capitalize "élan"}}|{{date t "%d/%m/%Y %H:%M"}}|{{date d "%d/%m/%Y"}}|{{number n 2 sep=" "}}|{{#if (eq p "pro")}}pro{{/if}}"#;
        let t = compile(src).expect("compiles");
        r.register_template("t", t);
        let data = serde_json::json!({
            "b": "<b>", "t": "2026-01-15T23:30:00Z", "tz": "Europe/Paris",
            "d": "2026-02-03", "n": 1234.5, "p": "pro"
        });
        let ctx = Context::wraps(&data).expect("context");
        assert_eq!(
            render(&r, "t", &ctx).as_deref(),
            Ok("x|&lt;b&gt;|&lt;B&gt;|Élan|16/01/2026 00:30|03/02/2026|1 234.50|pro")
        );
    }
}
