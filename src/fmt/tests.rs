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

#[test]
fn crlf_line_ends_become_lf() {
    let src = "/// An address.\r\nsegment a = bounced(any since 30d ago)\r\n\n/// Who.\r\nsegment r = n and not a\n";
    let mut p = Problems::new();
    let before = syntax::parse_file(FileId(0), src, &mut p);
    let out = print(src).unwrap();
    let after = syntax::parse_file(FileId(0), &out, &mut p);
    assert_eq!(
        strip_spans(&format!("{:?}", before.decls)),
        strip_spans(&format!("{:?}", after.decls)),
        "{out:?}"
    );
    assert_eq!(
        stable(src),
        "/// An address.\nsegment a = bounced(any since 30d ago)\n\n/// Who.\nsegment r = n and not a\n"
    );
}

#[test]
fn crlf_anywhere() {
    let base = "/// An address.\nsegment a = bounced(any since 30d ago)\n\n/// Who.\nsegment r = n and not a\n";
    let at: Vec<usize> = base.match_indices('\n').map(|(k, _)| k).collect();
    for mask in 0..(1u32 << at.len()) {
        let mut src = String::new();
        for (i, c) in base.char_indices() {
            match at.iter().position(|&k| k == i) {
                Some(n) if mask & (1 << n) != 0 => src.push_str("\r\n"),
                _ => src.push(c),
            }
        }
        let mut p = Problems::new();
        let before = syntax::parse_file(FileId(0), &src, &mut p);
        let out = print(&src).unwrap();
        let after = syntax::parse_file(FileId(0), &out, &mut p);
        assert_eq!(
            strip_spans(&format!("{:?}", before.decls)),
            strip_spans(&format!("{:?}", after.decls)),
            "{src:?} -> {out:?}"
        );
    }
}

#[test]
fn the_spanless_hash_ignores_spans_only() {
    let parse = |src: &str| {
        let mut p = Problems::new();
        syntax::parse_file(FileId(0), src, &mut p).decls
    };
    let a = parse("segment a = x and y\n");
    let b = parse("\n\nsegment   a =\n  x and\n    y\n");
    let c = parse("segment a = x and z\n");
    assert_eq!(spanless_hash(&a), spanless_hash(&b));
    assert_ne!(spanless_hash(&a), spanless_hash(&c));
    assert_eq!(
        strip_spans(&format!("{a:?}")),
        strip_spans(&format!("{b:?}"))
    );
    // A string `Span` is not a span.
    let s = parse("list l { on join { tag \"Span\" } }\n");
    let t = parse("list l { on join { tag \"Spam\" } }\n");
    assert_ne!(spanless_hash(&s), spanless_hash(&t));
}
