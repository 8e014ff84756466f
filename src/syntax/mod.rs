//! Syntax: source text → [`ast::File`]. No I/O.
//!
//! Before pest sees a file, `guard` enforces the size and nesting limits
//! and finds NUL bytes and unterminated comments; pest runs under a call
//! limit; parse failures become diagnostics in words (`errors`); the pest
//! tree is lowered to the typed AST (`lower`), which also validates
//! literals (dates, escapes, durations).

pub mod ast;
mod errors;
mod guard;
mod lower;

use std::num::NonZeroUsize;
use std::sync::Once;

use pest::Parser;

use crate::diagnostics::{FileId, Problems};

pub use errors::KEYWORDS;
pub use guard::{MAX_DEPTH, MAX_FILE_BYTES};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/relance.pest"]
pub(crate) struct CampParser;

/// Upper bound on pest rule calls per file: generous for any real file
/// (a 4 MiB file needs far fewer), small enough to stop pathological
/// backtracking in well under a second.
const CALL_LIMIT: usize = 50_000_000;

fn init_pest() {
    static INIT: Once = Once::new();
    INIT.call_once(|| pest::set_call_limit(NonZeroUsize::new(CALL_LIMIT)));
}

/// Parses one file. Problems go into `problems`; the returned AST holds
/// every declaration that could be read.
///
/// When the file has a syntax error, it is cut at the start of each
/// top-level declaration and every piece is parsed on its own: each broken
/// declaration gets its own error, and the others are still checked.
pub fn parse_file(file: FileId, text: &str, problems: &mut Problems) -> ast::File {
    init_pest();
    let mut out = ast::File {
        file,
        ..ast::File::default()
    };
    if !guard::check(file, text, problems) {
        out.unreadable = true;
        return out;
    }
    let err = match CampParser::parse(Rule::file, text) {
        Ok(mut pairs) => {
            if let Some(root) = pairs.next() {
                out.decls = lower::lower_decls(file, text, 0, root, problems);
            }
            return out;
        }
        Err(err) => err,
    };
    let starts = guard::declaration_starts(text);
    if starts.len() <= 1 {
        problems.push(errors::describe(file, text, 0, true, err));
        out.broken
            .extend(starts.first().map(|&s| guard::declaration_head(&text[s..])));
        if starts.is_empty() {
            out.unreadable = true;
        }
        return out;
    }
    let mut bounds: Vec<usize> = starts.clone();
    bounds[0] = 0;
    bounds.push(text.len());
    for (i, w) in bounds.windows(2).enumerate() {
        let (start, end) = (w[0], w[1]);
        let piece = &text[start..end];
        match CampParser::parse(Rule::file, piece) {
            Ok(mut pairs) => {
                if let Some(root) = pairs.next() {
                    out.decls
                        .extend(lower::lower_decls(file, text, start, root, problems));
                }
            }
            Err(err) => {
                problems.push(errors::describe(file, piece, start, end == text.len(), err));
                out.broken
                    .push(guard::declaration_head(&text[starts[i]..end]));
            }
        }
    }
    out
}

/// For `relance fmt`: the AST and the pest tree of a file from one parse,
/// so that formatting does not parse twice. Files with errors take
/// [`parse_file`]'s path (its diagnostics) and have no tree.
pub(crate) fn parse_file_with_tree<'i>(
    file: FileId,
    text: &'i str,
    problems: &mut Problems,
) -> (ast::File, Option<pest::iterators::Pair<'i, Rule>>) {
    init_pest();
    let mut guarded = Problems::new();
    if guard::check(file, text, &mut guarded)
        && let Ok(Some(root)) = CampParser::parse(Rule::file, text).map(|mut p| p.next())
    {
        problems.extend(guarded);
        let decls = lower::lower_decls(file, text, 0, root.clone(), problems);
        let out = ast::File {
            file,
            decls,
            ..ast::File::default()
        };
        return (out, Some(root));
    }
    (parse_file(file, text, problems), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Code;

    fn parse(src: &str) -> (ast::File, Vec<Code>) {
        let mut problems = Problems::new();
        let f = parse_file(FileId(0), src, &mut problems);
        (f, problems.iter().map(|d| d.code).collect())
    }

    #[test]
    fn parses_every_declaration_kind() {
        let src = r#"
workspace { name = "Acme", timezone = "Europe/Paris" }
contact {
  email: email
  plan: enum(free, pro)
  interests: set<text>
  phone: phone?
}
event purchase { amount: number, sku: text }
list prospects
list customers { on join { leave prospects, tag "customer" } }
segment big = sum(purchase.amount since 90d ago) > 500 and not customers
/// Marie.
persona marie {
  email = "m@example.com"
  plan = pro
  event purchase { amount = 600, sku = "gps" } at 20d ago
  expect big
}
template welcome : email { subject = "Hi", html = file("w.hbs"), link gps = "https://a.example/gps" }
scenario s {
  trigger joined prospects
  send welcome
  wait 2d
  branch {
    when not opened(welcome) { send welcome, wait 3d }
    else { exit }
  }
  split { 50% { tag "a" }, 50% { untag "a" } }
  start c
}
cadence c { spacing = 3d
  touch welcome after 2d }
pressure { email max 3 per 7d, gap 12h, quiet 21:00 to 08:00, on excess defer, under below 1 per 14d }
"#;
        let (f, codes) = parse(src);
        assert_eq!(codes, vec![]);
        assert_eq!(f.decls.len(), 11);
        assert_eq!(f.decls[6].doc.as_deref(), Some("Marie."));
    }

    #[test]
    fn syntax_error_is_a_diagnostic() {
        let (_, codes) = parse("scenario s {\n  wait\n}\n");
        assert_eq!(codes, vec![Code::E0001]);
    }

    #[test]
    fn one_broken_declaration_does_not_hide_the_others() {
        let src = "contact { email: email }\nsegment a = \nsegment b = x ==\nlist l\n";
        let (f, codes) = parse(src);
        assert_eq!(codes, vec![Code::E0001, Code::E0001]);
        assert_eq!(f.decls.len(), 2);
        let broken: Vec<_> = f.broken.iter().map(|b| b.name.clone()).collect();
        assert_eq!(broken, vec![Some("a".to_string()), Some("b".to_string())]);
    }

    #[test]
    fn keyword_as_name_has_its_own_code() {
        let (_, codes) = parse("segment exit = true\n");
        assert_eq!(codes, vec![Code::E0011]);
    }

    #[test]
    fn items_on_one_line_need_a_comma() {
        let (_, codes) = parse("scenario s { send a wait 2d }\n");
        assert_eq!(codes, vec![Code::E0001]);
        let (_, codes) = parse("scenario s { send a, wait 2d }\n");
        assert_eq!(codes, vec![]);
    }
}
