use super::*;

fn fmt(src: &str) -> String {
    match format_text(FileId(0), src) {
        Ok(s) => s,
        Err(e) => panic!("{e:?}\n{src}"),
    }
}

/// Formats, checks the result is stable, returns it.
fn stable(src: &str) -> String {
    let once = fmt(src);
    let twice = fmt(&once);
    assert_eq!(once, twice, "not idempotent:\n{once}");
    once
}

#[test]
fn aligns_attributes_and_fields() {
    let src = "workspace { name = \"A\", timezone = \"UTC\" }\ncontact {\nemail: email\n  customer_type :enum( a,b )?\n}\n";
    assert_eq!(
        stable(src),
        "workspace { name = \"A\", timezone = \"UTC\" }\n\ncontact {\n  email:         email\n  customer_type: enum(a, b)?\n}\n"
    );
}

#[test]
fn keeps_comments_where_they_were() {
    let src = "// head\n\n\n/// Doc.\nsegment a = x and // why\n  y\nlist l { // brace\n  on join {\n    tag \"a\" /* t */\n    // own\n  }\n}\n";
    let out = stable(src);
    assert_eq!(
        out,
        "// head\n\n/// Doc.\nsegment a = x and // why\n  y\n\nlist l { // brace\n  on join {\n    tag \"a\"  /* t */\n    // own\n  }\n}\n"
    );
}
