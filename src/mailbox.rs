//! One RFC 5322 mailbox (§3.4): `Name <local@domain>` (name-addr) or a bare
//! `local@domain` (addr-spec), as a `From:` or `Reply-To:` header holds it.
//!
//! The grammar followed: display names are phrases of atoms and quoted
//! strings (a `.` between words is accepted, as RFC 5322's obsolete phrase
//! syntax requires of readers: `J. Smith`); comments `( … )` and spaces may
//! surround every token; UTF-8 is allowed in atoms and quoted strings (RFC
//! 6532). A local part is a dot-atom or a quoted string; a domain is a
//! dot-atom or a `[…]` literal. Line breaks are refused outright (a header
//! value is one line). Anything that reads as a list of mailboxes
//! (`Sam Whitaker, Fleetline <sam@…>` is two: `Sam Whitaker` and
//! `Fleetline <sam@…>`) is an error that says to quote the display name.
//!
//! No recursion (comments nest through a counter) and no panics: every
//! slice is cut at an ASCII byte.

use std::fmt;

/// A parsed mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, unquoted, words joined by one space.
    pub display_name: Option<String>,
    /// The local part as written (a quoted local part keeps its quotes).
    pub local: String,
    pub domain: String,
}

impl Mailbox {
    /// `local@domain`.
    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// Why a value is not one mailbox: a message, the byte offset in the value
/// where the problem is seen, and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxError {
    pub offset: usize,
    pub message: String,
    pub help: String,
}

impl fmt::Display for MailboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

const EXAMPLE: &str = "write one mailbox, like `Acme <hello@acme.example>` or `hello@acme.example`";

/// Parses `s` as exactly one mailbox.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, MailboxError> {
    let mut p = Parser {
        s,
        b: s.as_bytes(),
        i: 0,
    };
    if let Some(at) = s.find(['\r', '\n']) {
        return Err(p.err_at(
            at,
            "a mailbox is one line: this one holds a line break",
            "remove the line break",
        ));
    }
    p.cfws()?;
    if p.i >= p.b.len() {
        return Err(p.err("the mailbox is empty", EXAMPLE));
    }
    let mailbox = if p.peek() == Some(b'<') {
        p.angle_addr(None)?
    } else {
        let start = p.i;
        let words = p.phrase()?;
        match p.peek() {
            Some(b'<') => {
                if words.is_empty() {
                    return Err(p.err("expected a display name", EXAMPLE));
                }
                let name = display_name(s, &words);
                p.angle_addr(Some(name))?
            }
            Some(b'@') => {
                let local = local_part(s, &words, start).map_err(|(at, m)| {
                    p.err_at(at, m, "an address has no spaces or comments outside quotes")
                })?;
                p.i += 1;
                p.cfws()?;
                let domain = p.domain()?;
                Mailbox {
                    display_name: None,
                    local,
                    domain,
                }
            }
            Some(b',') => return Err(p.several()),
            None if words.is_empty() => return Err(p.err("the mailbox is empty", EXAMPLE)),
            None => {
                return Err(p.err("no address: a mailbox needs `local@domain`", EXAMPLE));
            }
            Some(c) => return Err(p.unexpected(c)),
        }
    };
    p.cfws()?;
    match p.peek() {
        None => Ok(mailbox),
        Some(b',') => Err(p.several()),
        Some(c) => Err(p.unexpected(c)),
    }
}

/// A word of a phrase.
#[derive(Debug)]
enum Word {
    /// An atom: its bytes `start..end` in the value.
    Atom { start: usize, end: usize },
    /// A quoted string, unescaped, and where it starts.
    Quoted { text: String, start: usize },
    /// An obsolete-phrase `.`, at that offset.
    Dot(usize),
}

fn display_name(s: &str, words: &[(Word, bool)]) -> String {
    let mut out = String::new();
    for (w, spaced) in words {
        if *spaced && !out.is_empty() {
            out.push(' ');
        }
        match w {
            Word::Dot(_) => out.push('.'),
            Word::Atom { start, end } => out.push_str(&s[*start..*end]),
            Word::Quoted { text, .. } => out.push_str(text),
        }
    }
    out
}

/// The local part before `@`: a dot-atom (atoms and dots, nothing between
/// them) or one quoted string.
fn local_part(s: &str, words: &[(Word, bool)], start: usize) -> Result<String, (usize, String)> {
    match words {
        [] => Err((start, "the address has no local part before `@`".into())),
        [(Word::Quoted { text, .. }, _)] => Ok(format!("\"{}\"", quote(text))),
        _ => {
            let mut out = String::new();
            let mut want_atom = true;
            for (w, spaced) in words {
                if *spaced && !out.is_empty() {
                    let at = match w {
                        Word::Atom { start, .. }
                        | Word::Quoted { start, .. }
                        | Word::Dot(start) => *start,
                    };
                    return Err((at, "an address cannot contain a space".into()));
                }
                match (w, want_atom) {
                    (Word::Atom { start, end }, true) => {
                        out.push_str(&s[*start..*end]);
                        want_atom = false;
                    }
                    (Word::Dot(_), false) => {
                        out.push('.');
                        want_atom = true;
                    }
                    (Word::Dot(at), true) => {
                        return Err((
                            *at,
                            "a dot cannot start or follow a dot in an address".into(),
                        ));
                    }
                    (Word::Atom { start, .. }, false) => {
                        return Err((*start, "an address cannot contain a space".into()));
                    }
                    (Word::Quoted { start, .. }, _) => {
                        return Err((
                            *start,
                            "a quoted local part must be the whole local part".into(),
                        ));
                    }
                }
            }
            if want_atom {
                return Err((start, "the local part cannot end with a dot".into()));
            }
            Ok(out)
        }
    }
}

fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn is_atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c) || c >= 0x80
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn err(&self, message: impl Into<String>, help: impl Into<String>) -> MailboxError {
        self.err_at(self.i, message, help)
    }

    fn err_at(
        &self,
        offset: usize,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> MailboxError {
        MailboxError {
            offset,
            message: message.into(),
            help: help.into(),
        }
    }

    fn several(&self) -> MailboxError {
        self.err(
            "a comma outside quotes separates two mailboxes",
            "a display name with a comma must be quoted, as in `\"Sam Whitaker, Fleetline\" <sam@fleetline.example>`",
        )
    }

    fn unexpected(&self, c: u8) -> MailboxError {
        let ch = self
            .s
            .get(self.i..)
            .and_then(|r| r.chars().next())
            .unwrap_or(c as char);
        let help = match c {
            b'"' => "a quoted string is not closed: add the closing `\"`".to_string(),
            b'>' => "a `>` must close an address opened by `<`".to_string(),
            b':' | b';' => "a group (`name: a@b, c@d;`) is not one mailbox".to_string(),
            _ => format!(
                "characters like `{ch}` are allowed in a display name only inside double quotes: `\"…\" <local@domain>`"
            ),
        };
        self.err(format!("unexpected `{ch}` in the mailbox"), help)
    }

    /// Skips spaces, tabs and comments (nested, with `\` escapes).
    fn cfws(&mut self) -> Result<(), MailboxError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.i += 1,
                Some(b'(') => {
                    let open = self.i;
                    let mut depth = 0usize;
                    loop {
                        match self.peek() {
                            None => {
                                return Err(self.err_at(
                                    open,
                                    "a comment `(` is not closed",
                                    "close it with `)`, or quote the display name",
                                ));
                            }
                            Some(b'\\') => self.i += 2,
                            Some(b'(') => {
                                depth += 1;
                                self.i += 1;
                            }
                            Some(b')') => {
                                depth -= 1;
                                self.i += 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            Some(_) => self.i += 1,
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Words and dots up to something else; each with whether space or a
    /// comment came before it.
    fn phrase(&mut self) -> Result<Vec<(Word, bool)>, MailboxError> {
        let mut words = Vec::new();
        let mut spaced = false;
        loop {
            match self.peek() {
                Some(b'"') => {
                    let start = self.i;
                    let text = self.quoted()?;
                    words.push((Word::Quoted { text, start }, spaced));
                }
                Some(b'.') => {
                    words.push((Word::Dot(self.i), spaced));
                    self.i += 1;
                }
                Some(c) if is_atext(c) => {
                    let start = self.i;
                    while self.peek().is_some_and(is_atext) {
                        self.i += 1;
                    }
                    words.push((Word::Atom { start, end: self.i }, spaced));
                }
                _ => return Ok(words),
            }
            let before = self.i;
            self.cfws()?;
            spaced = self.i > before;
        }
    }

    /// A quoted string at `"`, unescaped.
    fn quoted(&mut self) -> Result<String, MailboxError> {
        let open = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.err_at(
                        open,
                        "a quoted string is not closed",
                        "add the closing `\"`",
                    ));
                }
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    match self.b.get(self.i + 1) {
                        Some(&c) => out.push(c),
                        None => {
                            return Err(self.err_at(
                                open,
                                "a quoted string is not closed",
                                "add the closing `\"`",
                            ));
                        }
                    }
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// `<local@domain>` at `<`.
    fn angle_addr(&mut self, display_name: Option<String>) -> Result<Mailbox, MailboxError> {
        let open = self.i;
        self.i += 1;
        self.cfws()?;
        let start = self.i;
        let words = self.phrase()?;
        if self.peek() != Some(b'@') {
            return Err(match self.peek() {
                Some(b'>') | None if words.is_empty() => {
                    self.err_at(open, "the address between `<` and `>` is empty", EXAMPLE)
                }
                Some(b'>') => self.err("the address has no `@domain`", EXAMPLE),
                None => self.err_at(
                    open,
                    "`<` is not closed by `>`",
                    "close the address with `>`",
                ),
                Some(b',') => self.several(),
                Some(c) => self.unexpected(c),
            });
        }
        let local = local_part(self.s, &words, start).map_err(|(at, m)| {
            self.err_at(at, m, "an address has no spaces or comments outside quotes")
        })?;
        self.i += 1;
        self.cfws()?;
        let domain = self.domain()?;
        self.cfws()?;
        match self.peek() {
            Some(b'>') => self.i += 1,
            None => {
                return Err(self.err_at(
                    open,
                    "`<` is not closed by `>`",
                    "close the address with `>`",
                ));
            }
            Some(b',') => return Err(self.several()),
            Some(c) => return Err(self.unexpected(c)),
        }
        Ok(Mailbox {
            display_name,
            local,
            domain,
        })
    }

    /// The domain after `@`: a dot-atom or a `[…]` literal.
    fn domain(&mut self) -> Result<String, MailboxError> {
        if self.peek() == Some(b'[') {
            let start = self.i;
            while let Some(c) = self.peek() {
                self.i += 1;
                match c {
                    b']' => return Ok(self.s[start..self.i].to_string()),
                    b'[' | b'\\' if self.i - 1 > start => {
                        return Err(self.err_at(
                            self.i - 1,
                            "unexpected character in a domain literal",
                            "write the domain literal as `[192.0.2.1]`",
                        ));
                    }
                    _ => {}
                }
            }
            return Err(self.err_at(
                start,
                "`[` is not closed by `]`",
                "close the domain literal with `]`",
            ));
        }
        let start = self.i;
        let mut want_atom = true;
        loop {
            match self.peek() {
                Some(c) if is_atext(c) => {
                    while self.peek().is_some_and(is_atext) {
                        self.i += 1;
                    }
                    want_atom = false;
                }
                Some(b'.') if !want_atom => {
                    self.i += 1;
                    want_atom = true;
                }
                Some(b'.') => {
                    return Err(self.err("a dot cannot start or follow a dot in a domain", EXAMPLE));
                }
                _ => break,
            }
        }
        if self.i == start {
            return Err(self.err("the address has no domain after `@`", EXAMPLE));
        }
        if want_atom {
            return Err(self.err_at(self.i - 1, "the domain cannot end with a dot", EXAMPLE));
        }
        Ok(self.s[start..self.i].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (Option<String>, String) {
        let m = parse_mailbox(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        (m.display_name.clone(), m.address())
    }

    fn bad(s: &str) -> MailboxError {
        match parse_mailbox(s) {
            Ok(m) => panic!("{s:?} parsed as {m:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn name_addr_and_addr_spec() {
        assert_eq!(
            ok("Acme <hello@acme.example>"),
            (Some("Acme".into()), "hello@acme.example".into())
        );
        assert_eq!(
            ok("hello@acme.example"),
            (None, "hello@acme.example".into())
        );
        assert_eq!(
            ok("<hello@acme.example>"),
            (None, "hello@acme.example".into())
        );
        assert_eq!(
            ok("  Autoparts Lyon   <bonjour@autoparts-lyon.example>  "),
            (
                Some("Autoparts Lyon".into()),
                "bonjour@autoparts-lyon.example".into()
            )
        );
        assert_eq!(
            ok("first.last+tag@sub.acme.example"),
            (None, "first.last+tag@sub.acme.example".into())
        );
    }

    #[test]
    fn quoted_display_names() {
        assert_eq!(
            ok("\"Sam Whitaker, Fleetline\" <sam.whitaker@fleetline.example>"),
            (
                Some("Sam Whitaker, Fleetline".into()),
                "sam.whitaker@fleetline.example".into()
            )
        );
        assert_eq!(
            ok("\"O\\\"Brien \\\\ co\" <o@x.example>").0,
            Some("O\"Brien \\ co".into())
        );
        // A quoted word next to atoms, and obsolete dots.
        assert_eq!(
            ok("Dr. \"J\" Smith <j@x.example>").0,
            Some("Dr. J Smith".into())
        );
    }

    #[test]
    fn utf8_comments_and_literals() {
        assert_eq!(
            ok("Félix Café <félix@café.example>"),
            (Some("Félix Café".into()), "félix@café.example".into())
        );
        assert_eq!(
            ok("Acme (the shop) <hello@acme.example> (sales)").1,
            "hello@acme.example"
        );
        assert_eq!(ok("\"a b\"@acme.example").1, "\"a b\"@acme.example");
        assert_eq!(ok("root@[192.0.2.1]").1, "root@[192.0.2.1]");
        assert_eq!(ok("Acme (a (nested) comment) <a@b>").1, "a@b");
    }

    #[test]
    fn an_unquoted_comma_is_two_mailboxes() {
        let e = bad("Sam Whitaker, Fleetline <sam.whitaker@fleetline.example>");
        assert!(e.message.contains("separates two mailboxes"), "{e:?}");
        assert!(e.help.contains("quoted"), "{e:?}");
        assert_eq!(e.offset, 12);
        assert!(
            bad("a@b.example, c@d.example")
                .message
                .contains("two mailboxes")
        );
        assert!(
            bad("A <a@b.example>, C <c@d.example>")
                .message
                .contains("two mailboxes")
        );
    }

    #[test]
    fn refusals() {
        for s in [
            "",
            "   ",
            "Acme",
            "Acme <>",
            "Acme <hello>",
            "Acme <hello@acme.example",
            "Acme hello@acme.example>",
            "hello@",
            "@acme.example",
            "a..b@acme.example",
            ".a@acme.example",
            "a.@acme.example",
            "a@acme..example",
            "a@acme.example.",
            "a b@acme.example",
            "Acme <a@b.example> extra",
            "\"unclosed <a@b.example>",
            "Acme (unclosed <a@b.example>",
            "Acme: a@b.example;",
            "Acme <a@[1.2.3.4>",
            "Acme\r\nBcc: x@y.example <a@b.example>",
            "Acme <a@b.example>\n",
            "A@B <a@b.example>",
            "Acme [Shop] <a@b.example>",
        ] {
            let e = bad(s);
            assert!(!e.message.is_empty() && !e.help.is_empty(), "{s:?}");
            assert!(e.offset <= s.len(), "{s:?}: {e:?}");
        }
        assert!(bad("Acme\n<a@b>").message.contains("line break"));
        assert!(
            bad("Acme [Shop] <a@b.example>")
                .help
                .contains("double quotes")
        );
    }

    #[test]
    fn hostile_input_never_panics() {
        let pieces = [
            "\"", "\\", "(", ")", "<", ">", "@", ".", ",", "[", "]", " ", "é", "a", ":", ";",
            "\\é", "😀",
        ];
        // Every string of up to four pieces.
        let mut stack = vec![String::new()];
        while let Some(s) = stack.pop() {
            let _ = parse_mailbox(&s);
            if s.chars().count() < 4 {
                for p in pieces {
                    stack.push(format!("{s}{p}"));
                }
            }
        }
    }
}
