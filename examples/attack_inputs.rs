//! Writes the hostile projects of issue 9 ("Under attack") into a folder,
//! one sub-folder each, for measuring `relance check` on them
//! (`docs/performance.md`, "Hostile input"):
//!
//! ```text
//! cargo run --release --example attack_inputs -- /tmp/attack
//! for d in /tmp/attack/*/; do for f in json human; do
//!   /usr/bin/time -f "$d $f %e s %M KB" target/release/relance check --format $f $d >/dev/null 2>&1
//! done; done
//! ```
//!
//! - `unknown`: 324 KB, 21,000 unknown names (10,500 segments, two each).
//! - `longline`: one 1.1 MB line holding 100,000 unknown names.
//! - `chain300`, `chain40k`: segments each naming the previous one.
//! - `diamond60`: `d{i} = d{i-1} and d{i-1}`, 60 levels, with a persona.
//! - `cr`: the `unknown` project with lone CR line ends.

use std::fs;
use std::path::Path;

const HEAD: &str = "workspace {\n  name = \"W\"\n  timezone = \"Europe/Paris\"\n  from = \"W <a@b.example>\"\n  address = \"1 rue X, Paris\"\n}\ncontact { email: email, country: text }\n";

fn write(root: &Path, name: &str, text: &str) {
    let dir = root.join(name);
    fs::create_dir_all(&dir).expect("create the folder");
    fs::write(dir.join("a.camp"), text).expect("write the file");
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "attack".to_string());
    let root = Path::new(&root);

    let mut unknown = String::from(HEAD);
    for i in 0..10_500 {
        unknown.push_str(&format!("segment s{i} = u{i} or v{i}\n"));
    }
    write(root, "unknown", &unknown);
    write(root, "cr", &unknown.replace('\n', "\r"));

    let names: Vec<String> = (0..100_000).map(|i| format!("zz{i}")).collect();
    write(
        root,
        "longline",
        &format!("{HEAD}segment s = {}\n", names.join(" or ")),
    );

    for (name, n) in [("chain300", 300), ("chain40k", 40_000)] {
        let mut s = format!("{HEAD}segment a0 = country == \"FR\"\n");
        for i in 1..n {
            s.push_str(&format!("segment a{i} = a{}\n", i - 1));
        }
        s.push_str(&format!(
            "persona p {{\n  email = \"p@example.com\"\n  country = \"FR\"\n  expect a{}\n}}\n",
            n - 1
        ));
        write(root, name, &s);
    }

    let mut diamond = format!("{HEAD}segment d0 = country == \"FR\"\n");
    for i in 1..60 {
        let op = if i % 2 == 0 { "and" } else { "or" };
        diamond.push_str(&format!("segment d{i} = d{0} {op} d{0}\n", i - 1));
    }
    diamond.push_str(
        "persona p {\n  email = \"p@example.com\"\n  country = \"FR\"\n  expect d59\n}\n",
    );
    write(root, "diamond60", &diamond);
}
