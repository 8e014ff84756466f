//! handlebars.js semantics on top of the Rust `handlebars` crate.
//!
//! Users copy templates from the handlebars.js documentation, and a
//! JavaScript runner executing `plan.json` would render with handlebars.js,
//! so relance prints values and tests conditions as handlebars.js does:
//!
//! - a value prints as JavaScript's `String(value)`: an array as its items
//!   joined with `,` (`gps,kids`), an object as `[object Object]`, an
//!   absent value as nothing, a whole number without a decimal point;
//! - `if`, `unless` and `with` use JavaScript's truthiness: an empty array
//!   is false, an empty object is true, `0` is false for `if` (unless
//!   `includeZero=true`) and true for `with`;
//! - `{{#each}}` over an array sets `@key` to the index, as `@index`.
//!
//! The crate renders `{{x}}` with its own formatting (`[a, b]`,
//! `[object]`), so [`js_template`] rewrites every output tag of a compiled
//! template into a call of the internal helper [`STRINGIFY`]; the
//! crate's `if`, `unless`, `with` and `each` are replaced by the helpers
//! below. `tests/handlebars_js.rs` compares the results with handlebars.js.

use std::collections::HashMap;
use std::sync::Arc;

use handlebars::template::{Parameter, Subexpression, Template, TemplateElement};
use handlebars::{
    BlockContext, BlockParams, Context, Handlebars, Helper, HelperDef, HelperResult, Output,
    RenderContext, RenderError, RenderErrorReason, Renderable, ScopedJson,
};
use serde_json::Value as Json;

/// The internal helper every output tag is rewritten to call. Its name
/// cannot be written by users (the checks refuse unknown helpers).
pub(crate) const STRINGIFY: &str = "__relance_string";

/// JavaScript's `String(value)` for JSON values (as handlebars.js prints them).
pub(crate) fn js_string(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => js_number(n),
        Json::String(s) => s.clone(),
        Json::Array(items) => {
            // `Array.prototype.join`: null items are empty.
            let parts: Vec<String> = items.iter().map(js_string).collect();
            parts.join(",")
        }
        Json::Object(_) => "[object Object]".to_string(),
    }
}

/// A number as JavaScript prints it (`3` for `3.0`, `0.5`, `-0` as `0`).
pub(crate) fn js_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        "0".to_string()
    } else if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        // Shortest round-trip digits, like JavaScript between 1e-7 and 1e21.
        format!("{f}")
    }
}

/// JavaScript truthiness.
pub(crate) fn js_truthy(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Json::String(s) => !s.is_empty(),
        Json::Array(_) | Json::Object(_) => true,
    }
}

/// handlebars.js's `Utils.isEmpty`: falsy but not `0`, or an empty array.
pub(crate) fn js_empty(v: &Json) -> bool {
    match v {
        Json::Number(_) => false,
        Json::Array(a) => a.is_empty(),
        other => !js_truthy(other),
    }
}

/// What `{{#if v}}` tests in handlebars.js.
pub(crate) fn js_if(v: &Json, include_zero: bool) -> bool {
    let truthy = js_truthy(v) || (include_zero && v.is_number());
    truthy && !js_empty(v)
}

/// Rewrites every `{{x}}` / `{{{x}}}` / `{{helper …}}` output of `t` (and
/// of its blocks) into `{{__relance_string …}}`, so that values print as in
/// handlebars.js. `helpers` are the names that are helpers, not variables.
pub(crate) fn js_template(t: &mut Template, helpers: &[&str]) {
    for e in &mut t.elements {
        match e {
            TemplateElement::Expression(ht) | TemplateElement::HtmlExpression(ht) => {
                let name = match &ht.name {
                    Parameter::Name(n) => Some(n.as_str()),
                    Parameter::Path(
                        handlebars::Path::Relative((_, raw)) | handlebars::Path::Local((_, _, raw)),
                    ) => Some(raw.as_str()),
                    _ => None,
                };
                if name == Some(STRINGIFY) {
                    continue;
                }
                let is_helper = name.is_some_and(|n| helpers.contains(&n));
                let name_only = !ht.block && ht.params.is_empty() && ht.hash.is_empty();
                let param = if name_only && !is_helper {
                    ht.name.clone()
                } else {
                    Parameter::Subexpression(Subexpression::new(
                        ht.name.clone(),
                        ht.params.clone(),
                        ht.hash.clone(),
                    ))
                };
                ht.name = Parameter::Name(STRINGIFY.to_string());
                ht.params = vec![param];
                ht.hash = HashMap::new();
            }
            TemplateElement::HelperBlock(ht) => {
                if let Some(t) = &mut ht.template {
                    js_template(t, helpers);
                }
                if let Some(t) = &mut ht.inverse {
                    js_template(t, helpers);
                }
            }
            TemplateElement::PartialBlock(dt) | TemplateElement::DecoratorBlock(dt) => {
                if let Some(t) = &mut dt.template {
                    js_template(t, helpers);
                }
            }
            _ => {}
        }
    }
}

/// `{{__relance_string x}}`: `x` as handlebars.js prints it.
struct Stringify;

impl HelperDef for Stringify {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let v = h.param(0).map(|p| p.value()).unwrap_or(&Json::Null);
        Ok(ScopedJson::Derived(Json::String(js_string(v))))
    }
}

fn param<'a, 'rc>(h: &'a Helper<'rc>, name: &'static str) -> Result<&'a Json, RenderError> {
    h.param(0)
        .map(|p| p.value())
        .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex(name, 0).into())
}

fn render_branch<'reg: 'rc, 'rc>(
    t: Option<&'rc Template>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
) -> HelperResult {
    match t {
        Some(t) => t.render(r, ctx, rc, out),
        None => Ok(()),
    }
}

/// `{{#if}}` and `{{#unless}}` with handlebars.js's truthiness.
struct If {
    positive: bool,
}

impl HelperDef for If {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let name = if self.positive { "if" } else { "unless" };
        let v = param(h, name)?;
        let include_zero = h
            .hash_get("includeZero")
            .is_some_and(|z| js_truthy(z.value()));
        let holds = js_if(v, include_zero) == self.positive;
        let t = if holds { h.template() } else { h.inverse() };
        render_branch(t, r, ctx, rc, out)
    }
}

fn block_of<'rc>(value: &handlebars::PathAndJson<'rc>) -> BlockContext<'rc> {
    let mut block = BlockContext::new();
    match value.context_path() {
        Some(path) => *block.base_path_mut() = path.clone(),
        None => block.set_base_value(value.value().clone()),
    }
    block
}

/// `{{#with}}`: the inverse only for handlebars.js's empty values.
struct With;

impl HelperDef for With {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let p = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("with", 0))?;
        if js_empty(p.value()) {
            return render_branch(h.inverse(), r, ctx, rc, out);
        }
        let mut block = block_of(p);
        if let Some(parent) = rc.block() {
            block
                .local_variables_mut()
                .clone_from(parent.local_variables());
        }
        if let Some(name) = h.block_param() {
            let mut params = BlockParams::new();
            if p.context_path().is_some() {
                params.add_path(name, Vec::new())?;
            } else {
                params.add_value(name, p.value().clone())?;
            }
            block.set_block_params(params);
        }
        rc.push_block(block);
        let result = render_branch(h.template(), r, ctx, rc, out);
        rc.pop_block();
        result
    }
}

/// `{{#each}}`: `@key` is the index over an array, as in handlebars.js;
/// the links of a template (`{{#each links}}`) go in declaration order.
pub(crate) struct Each {
    /// Template name → its link names in declaration order.
    pub links: Arc<HashMap<String, Vec<String>>>,
}

impl Each {
    /// The keys of `obj` in the order handlebars.js would see them: the
    /// declaration order for the root `links` object.
    fn keys<'a>(
        &self,
        obj: &'a serde_json::Map<String, Json>,
        path: Option<&Vec<String>>,
        root: Option<&String>,
    ) -> Vec<&'a String> {
        let is_links = path.is_some_and(|p| p.len() == 1 && p[0] == "links");
        let order = root
            .filter(|_| is_links)
            .and_then(|name| self.links.get(name.split('#').next().unwrap_or("")));
        match order {
            Some(order) => {
                let mut keys: Vec<&String> = order
                    .iter()
                    .filter_map(|n| obj.get_key_value(n).map(|(k, _)| k))
                    .collect();
                keys.extend(obj.keys().filter(|k| !order.contains(k)));
                keys
            }
            None => obj.keys().collect(),
        }
    }
}

impl HelperDef for Each {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = h
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("each", 0))?;
        let Some(t) = h.template() else {
            return Ok(());
        };
        let base_path = value.context_path();
        // (key, item) pairs, in order.
        let items: Vec<(Json, &Json, String)> = match value.value() {
            Json::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| (Json::from(i), v, i.to_string()))
                .collect(),
            Json::Object(obj) => self
                .keys(obj, base_path, rc.get_root_template_name())
                .into_iter()
                .map(|k| (Json::String(k.clone()), &obj[k], k.clone()))
                .collect(),
            _ => Vec::new(),
        };
        if items.is_empty() {
            return render_branch(h.inverse(), r, ctx, rc, out);
        }
        rc.push_block(block_of(value));
        let len = items.len();
        for (i, (key, v, segment)) in items.into_iter().enumerate() {
            if let Err(e) = super::helpers::count_iteration() {
                rc.pop_block();
                return Err(e);
            }
            if let Some(block) = rc.block_mut() {
                block.set_local_var("first", Json::Bool(i == 0));
                block.set_local_var("last", Json::Bool(i + 1 == len));
                block.set_local_var("index", Json::from(i));
                block.set_local_var("key", key.clone());
                match base_path {
                    Some(p) => {
                        let mut path = p.clone();
                        path.push(segment);
                        *block.base_path_mut() = path;
                    }
                    None => block.set_base_value(v.clone()),
                }
                if let Some(name) = h.block_param() {
                    let mut params = BlockParams::new();
                    if base_path.is_some() {
                        params.add_path(name, Vec::new())?;
                    } else {
                        params.add_value(name, v.clone())?;
                    }
                    block.set_block_params(params);
                } else if let Some((name, key_name)) = h.block_param_pair() {
                    let mut params = BlockParams::new();
                    if base_path.is_some() {
                        params.add_path(name, Vec::new())?;
                    } else {
                        params.add_value(name, v.clone())?;
                    }
                    params.add_value(key_name, key)?;
                    block.set_block_params(params);
                }
            }
            if let Err(e) = t.render(r, ctx, rc, out) {
                rc.pop_block();
                return Err(e);
            }
        }
        rc.pop_block();
        Ok(())
    }
}

/// relance's own helpers that answer a value from their arguments:
/// `eq ne gt gte lt lte and or not len` (see docs/language.md). Inline
/// they print their answer; as a block (`{{#eq a b}}…{{else}}…{{/eq}}`)
/// they choose a branch as `{{#if}}` would.
struct Predicate(Answer);

/// What a predicate helper answers from its arguments.
type Answer = fn(&[&Json]) -> Json;

/// Two numbers by value, two texts by UTF-16 code units (JavaScript's `<`).
fn compare(a: &Json, b: &Json) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Json::String(x), Json::String(y)) => Some(x.encode_utf16().cmp(y.encode_utf16())),
        _ => None,
    }
}

/// The same value: numbers by value (`1` and `1.0`), lists and objects
/// item by item.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn arg<'a>(args: &[&'a Json], i: usize) -> &'a Json {
    static NULL: Json = Json::Null;
    args.get(i).copied().unwrap_or(&NULL)
}

const PREDICATES: &[(&str, Answer)] = &[
    ("eq", |a| Json::Bool(same(arg(a, 0), arg(a, 1)))),
    ("ne", |a| Json::Bool(!same(arg(a, 0), arg(a, 1)))),
    ("gt", |a| {
        Json::Bool(compare(arg(a, 0), arg(a, 1)) == Some(std::cmp::Ordering::Greater))
    }),
    ("gte", |a| {
        Json::Bool(compare(arg(a, 0), arg(a, 1)).is_some_and(|o| o.is_ge()))
    }),
    ("lt", |a| {
        Json::Bool(compare(arg(a, 0), arg(a, 1)) == Some(std::cmp::Ordering::Less))
    }),
    ("lte", |a| {
        Json::Bool(compare(arg(a, 0), arg(a, 1)).is_some_and(|o| o.is_le()))
    }),
    ("and", |a| Json::Bool(a.iter().all(|v| js_if(v, false)))),
    ("or", |a| Json::Bool(a.iter().any(|v| js_if(v, false)))),
    ("not", |a| Json::Bool(!js_if(arg(a, 0), false))),
    ("len", |a| {
        Json::from(match arg(a, 0) {
            Json::Array(x) => x.len(),
            Json::Object(x) => x.len(),
            Json::String(s) => s.chars().count(),
            _ => 0,
        })
    }),
];

impl Predicate {
    fn answer(&self, h: &Helper<'_>) -> Json {
        let args: Vec<&Json> = h.params().iter().map(|p| p.value()).collect();
        (self.0)(&args)
    }
}

impl HelperDef for Predicate {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        Ok(ScopedJson::Derived(self.answer(h)))
    }

    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let v = self.answer(h);
        if !h.is_block() {
            out.write(&js_string(&v))?;
            return Ok(());
        }
        let t = if js_if(&v, false) {
            h.template()
        } else {
            h.inverse()
        };
        render_branch(t, r, ctx, rc, out)
    }
}

/// Registers the handlebars.js behaviour on `r` (see the module doc).
pub(crate) fn register(r: &mut Handlebars<'static>, links: Arc<HashMap<String, Vec<String>>>) {
    r.register_helper(STRINGIFY, Box::new(Stringify));
    r.register_helper("if", Box::new(If { positive: true }));
    r.register_helper("unless", Box::new(If { positive: false }));
    r.register_helper("with", Box::new(With));
    r.register_helper("each", Box::new(Each { links }));
    for (name, f) in PREDICATES {
        r.register_helper(name, Box::new(Predicate(*f)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_like_javascript() {
        assert_eq!(js_string(&json!(["gps", "kids"])), "gps,kids");
        assert_eq!(js_string(&json!({"a": 1})), "[object Object]");
        assert_eq!(
            js_string(&json!([1, null, [2, 3], {"a": 1}])),
            "1,,2,3,[object Object]"
        );
        assert_eq!(js_string(&json!(3.0)), "3");
        assert_eq!(js_string(&json!(-0.0)), "0");
        assert_eq!(js_string(&json!(0.5)), "0.5");
        assert_eq!(js_string(&json!(false)), "false");
        assert_eq!(js_string(&json!(null)), "");
    }

    fn render(src: &str, data: Json) -> String {
        let links = HashMap::from([("t".to_string(), vec!["zeta".into(), "alpha".into()])]);
        let mut r = super::super::helpers::registry(
            super::super::model::Mode::Html,
            None,
            jiff::tz::TimeZone::UTC,
            Arc::new(links),
        );
        let parsed = super::super::hbs::parse(src);
        let fixed = super::super::hbs::with_this_for_dots(src, &parsed.nodes);
        let mut t =
            super::super::helpers::compile(fixed.as_deref().unwrap_or(src)).expect("compiles");
        t.name = Some("t#html".into());
        r.register_template("t#html", t);
        let ctx = Context::wraps(&data).expect("context");
        super::super::helpers::render(&r, "t#html", &ctx).expect("renders")
    }

    #[test]
    fn renders_like_handlebars_js() {
        let data = json!({
            "tags": ["gps", "kids"], "trigger": {}, "none": [], "n": 0,
            "links": {"alpha": "https://a", "zeta": "https://z"},
            "o": {"a": 1}
        });
        let cases = [
            (
                "{{tags}}|{{{tags}}}|{{o}}",
                "gps,kids|gps,kids|[object Object]",
            ),
            ("{{#if trigger}}y{{else}}n{{/if}}", "y"),
            ("{{#if none}}y{{else}}n{{/if}}", "n"),
            ("{{#unless none}}u{{/unless}}", "u"),
            (
                "{{#if n}}y{{else}}n{{/if}}{{#if n includeZero=true}}z{{/if}}",
                "nz",
            ),
            ("{{#with n}}w{{.}}{{else}}e{{/with}}", "w0"),
            ("{{#with none}}w{{else}}e{{/with}}", "e"),
            (
                "{{#each tags}}{{@key}}={{.}}/{{this}};{{/each}}",
                "0=gps/gps;1=kids/kids;",
            ),
            ("{{#each links}}{{@key}} {{/each}}", "zeta alpha "),
            ("{{#each tags as |t i|}}{{i}}{{t}}{{/each}}", "0gps1kids"),
            ("{{#each none}}x{{else}}empty{{/each}}", "empty"),
            ("{{lookup tags 1}}|{{default none \"x\"}}", "kids|x"),
            (
                "{{#if (and tags trigger)}}a{{/if}}{{#if (or none n)}}o{{/if}}",
                "a",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(render(src, data.clone()), want, "{src}");
        }
    }

    #[test]
    fn truthiness_like_handlebars_js() {
        assert!(!js_if(&json!([]), false));
        assert!(js_if(&json!({}), false));
        assert!(!js_if(&json!(0), false));
        assert!(js_if(&json!(0), true));
        assert!(!js_if(&json!(""), true));
        assert!(!js_empty(&json!(0)));
        assert!(js_empty(&json!([])));
        assert!(!js_empty(&json!({})));
    }
}
