//! Rendering throughput of a typical marketing email, templates compiled
//! once and the context reused, side by side with the same template in
//! minijinja. Prints figures; asserts nothing about time.
//!
//!     cargo bench --bench render

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use relance::diagnostics::{Problems, SourceFile, SourceMap};

/// The email in relance's Handlebars, inline in a one-file project.
const PROJECT: &str = r#"
workspace { name = "Autoparts Lyon", address = "48 avenue Félix Faure, 69003 Lyon", from = "Autoparts <bonjour@autoparts.example>" }
contact { email: email, first_name: text?, city: text?, ltv: number, interests: set<text> }
persona marie { email = "marie@example.com", first_name = "Marie", city = "Lyon", ltv = 1200, interests = ["gps", "kids"] }
template offer : email {
  subject   = "{{default first_name \"Bonjour\"}}, deux idées pour rouler plus serein"
  html      = "<html><body><h1>Bonjour {{default first_name \"à vous\"}},</h1>\n<p>Ce mois-ci, nos conseillers de {{default city \"votre magasin\"}} ont sélectionné deux équipements.</p>\n{{#if first_name}}<p>Merci pour votre fidélité, {{upper first_name}} : {{ltv}} € d'achats.</p>{{/if}}\n<ul>{{#each interests}}<li>Rayon {{this}}</li>{{/each}}</ul>\n<p><a href=\"{{links.gps}}\">Voir les GPS</a> · <a href=\"{{links.kids}}\">Voir les sièges auto</a></p>\n<p style=\"font-size:12px\">{{workspace.name}} · {{workspace.address}} · <a href=\"{{unsubscribe_url}}\">Se désinscrire</a></p></body></html>"
  link gps  = "https://autoparts.example/gps"
  link kids = "https://autoparts.example/sieges-auto"
}
"#;

/// The same email in Jinja syntax.
const JINJA: &str = "<html><body><h1>Bonjour {{ first_name | default('à vous') }},</h1>\n<p>Ce mois-ci, nos conseillers de {{ city | default('votre magasin') }} ont sélectionné deux équipements.</p>\n{% if first_name %}<p>Merci pour votre fidélité, {{ first_name | upper }} : {{ ltv }} € d'achats.</p>{% endif %}\n<ul>{% for i in interests %}<li>Rayon {{ i }}</li>{% endfor %}</ul>\n<p><a href=\"{{ links.gps }}\">Voir les GPS</a> · <a href=\"{{ links.kids }}\">Voir les sièges auto</a></p>\n<p style=\"font-size:12px\">{{ workspace.name }} · {{ workspace.address }} · <a href=\"{{ unsubscribe_url }}\">Se désinscrire</a></p></body></html>";

fn per_second(n: usize, f: impl FnMut() -> usize) -> (f64, usize) {
    let mut f = f;
    let mut bytes = 0;
    for _ in 0..n / 10 {
        bytes = f(); // warm-up
    }
    let start = Instant::now();
    for _ in 0..n {
        bytes = black_box(f());
    }
    (n as f64 / start.elapsed().as_secs_f64(), bytes)
}

fn main() {
    let mut sources = SourceMap::new();
    sources.add(SourceFile::new("offer.camp", PROJECT));
    let checked = relance::driver::check_sources(&sources, Problems::new(), 1);
    assert_eq!(checked.errors(), 0, "{:?}", checked.diagnostics);
    let project = relance::render::RenderProject::new(
        &sources,
        &checked.files,
        &BTreeMap::new(),
        1_795_424_400,
    );
    let prepared = project
        .prepare("offer", "marie", "html")
        .expect("offer html for marie");
    let ours_text = prepared.render().expect("renders");

    let mut env = minijinja::Environment::new();
    env.add_template("offer", JINJA).expect("jinja template");
    let tmpl = env.get_template("offer").expect("template");
    let ctx = minijinja::context! {
        first_name => "Marie", city => "Lyon", ltv => 1200, interests => vec!["gps", "kids"],
        links => minijinja::context! { gps => "https://autoparts.example/gps", kids => "https://autoparts.example/sieges-auto" },
        workspace => minijinja::context! { name => "Autoparts Lyon", address => "48 avenue Félix Faure, 69003 Lyon" },
        unsubscribe_url => "https://example.invalid/unsubscribe/marie",
    };
    let jinja_text = tmpl.render(&ctx).expect("jinja renders");

    let n = 200_000;
    let (ours, ours_bytes) = per_second(n, || prepared.render().map(|s| s.len()).unwrap_or(0));
    let (jinja, jinja_bytes) = per_second(n, || tmpl.render(&ctx).map(|s| s.len()).unwrap_or(0));
    println!("relance rendering benchmark (benches/render.rs), one core, {n} renders each");
    println!("  output: relance {ours_bytes} bytes, minijinja {jinja_bytes} bytes (same email)");
    println!(
        "  relance (handlebars): {ours:>10.0} renders/s   target >= 100,000   {}",
        if ours >= 100_000.0 { "PASS" } else { "FAIL" }
    );
    println!("  minijinja:            {jinja:>10.0} renders/s");
    let ratio = jinja / ours;
    println!(
        "  minijinja is {ratio:.2}x as fast as relance   aim <= 1.5x   {}",
        if ratio <= 1.5 { "PASS" } else { "not reached" }
    );
    if std::env::var_os("RELANCE_BENCH_SHOW").is_some() {
        println!("{ours_text}\n---\n{jinja_text}");
    }
}
