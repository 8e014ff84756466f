//! `matches` patterns (the syntax of the `regex-lite` crate) rewritten
//! into a subset that PostgreSQL's regular expressions (ARE) and RE2
//! (DuckDB, ClickHouse) read with exactly regex-lite's meaning: literal
//! characters, `.` (any character but a line feed), `^` and `$` (the
//! text's ends), groups, alternation, the quantifiers `* + ? {n} {n,}
//! {n,m}` (at most 255), bracket classes of literal characters and ASCII
//! ranges, and the ASCII classes `\d \w \s` (and their negations), which
//! are spelled out as bracket classes. Anything else (flags such as
//! `(?i)`, word boundaries, Unicode classes) is refused with the reason:
//! the engines differ there.

/// The pattern in the common subset, or why it cannot be.
pub fn translate(pattern: &str) -> Result<String, String> {
    crate::eval::text::compile(pattern).map_err(|e| format!("invalid pattern: {e}"))?;
    let chars: Vec<char> = pattern.chars().collect();
    let mut p = Parser {
        chars: &chars,
        at: 0,
        out: String::new(),
        depth: 0,
    };
    p.alternation()?;
    if p.at != chars.len() {
        return Err(format!("unexpected `{}`", chars[p.at]));
    }
    Ok(p.out)
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
    out: String,
    depth: usize,
}

const DIGIT: &str = "0-9";
const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = "\\t\\n\\v\\f\\r ";

/// Characters that are literal in every engine without an escape.
fn plain(c: char) -> bool {
    !matches!(
        c,
        '.' | '[' | ']' | '(' | ')' | '*' | '+' | '?' | '{' | '}' | '|' | '^' | '$' | '\\'
    ) && !c.is_control()
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn alternation(&mut self) -> Result<(), String> {
        loop {
            self.sequence()?;
            if self.peek() == Some('|') {
                self.at += 1;
                self.out.push('|');
            } else {
                return Ok(());
            }
        }
    }

    fn sequence(&mut self) -> Result<(), String> {
        while let Some(c) = self.peek() {
            match c {
                '|' | ')' => return Ok(()),
                '^' | '$' => {
                    self.at += 1;
                    self.out.push(c);
                    if matches!(self.peek(), Some('*' | '+' | '?' | '{')) {
                        return Err("a quantifier after an anchor".into());
                    }
                }
                _ => {
                    self.atom()?;
                    self.quantifier()?;
                }
            }
        }
        Ok(())
    }

    fn atom(&mut self) -> Result<(), String> {
        let c = self.chars[self.at];
        self.at += 1;
        match c {
            '.' => self.out.push_str("[^\\n]"),
            '(' => {
                self.depth += 1;
                if self.peek() == Some('?') {
                    let rest: String = self.chars[self.at..].iter().take(3).collect();
                    if rest.starts_with("?:") {
                        self.at += 2;
                    } else if rest.starts_with("?P<") || rest.starts_with("?<") {
                        // A named group: the name does not change a match.
                        while let Some(c) = self.peek() {
                            self.at += 1;
                            if c == '>' {
                                break;
                            }
                        }
                    } else {
                        return Err("flags such as `(?i)` differ between the engines".into());
                    }
                }
                self.out.push_str("(?:");
                self.alternation()?;
                if self.peek() != Some(')') {
                    return Err("an unclosed group".into());
                }
                self.at += 1;
                self.out.push(')');
                self.depth -= 1;
            }
            '[' => self.class()?,
            '\\' => {
                let e = self.peek().ok_or("a pattern ending in `\\`")?;
                self.at += 1;
                match e {
                    'd' => self.out.push_str(&format!("[{DIGIT}]")),
                    'D' => self.out.push_str(&format!("[^{DIGIT}]")),
                    'w' => self.out.push_str(&format!("[{WORD}]")),
                    'W' => self.out.push_str(&format!("[^{WORD}]")),
                    's' => self.out.push_str(&format!("[{SPACE}]")),
                    'S' => self.out.push_str(&format!("[^{SPACE}]")),
                    'n' | 't' | 'r' | 'f' | 'v' => {
                        self.out.push('\\');
                        self.out.push(e);
                    }
                    c if c.is_ascii_punctuation() => {
                        self.out.push('\\');
                        self.out.push(c);
                    }
                    c => {
                        return Err(format!("`\\{c}` means different things in the engines"));
                    }
                }
            }
            c if plain(c) => self.out.push(c),
            c => return Err(format!("`{}` is not supported", c.escape_default())),
        }
        Ok(())
    }

    fn class(&mut self) -> Result<(), String> {
        self.out.push('[');
        if self.peek() == Some('^') {
            self.at += 1;
            self.out.push('^');
        }
        let mut first = true;
        loop {
            let c = self.peek().ok_or("an unclosed class")?;
            self.at += 1;
            match c {
                ']' if !first => break,
                '\\' => {
                    let e = self.peek().ok_or("an unclosed class")?;
                    self.at += 1;
                    match e {
                        'd' => self.out.push_str(DIGIT),
                        'w' => self.out.push_str(WORD),
                        's' => self.out.push_str(SPACE),
                        'n' | 't' | 'r' | 'f' | 'v' => {
                            self.out.push('\\');
                            self.out.push(e);
                        }
                        c if c.is_ascii_punctuation() => {
                            self.out.push('\\');
                            self.out.push(c);
                        }
                        c => {
                            return Err(format!(
                                "`\\{c}` inside a class means different things in the engines"
                            ));
                        }
                    }
                }
                c if c.is_ascii_alphanumeric() && self.peek() == Some('-') => {
                    let end = self.chars.get(self.at + 1).copied();
                    match end {
                        Some(e)
                            if e.is_ascii_alphanumeric()
                                && (c.is_ascii_digit() == e.is_ascii_digit())
                                && (c.is_ascii_lowercase() == e.is_ascii_lowercase())
                                && c <= e =>
                        {
                            self.at += 2;
                            self.out.push(c);
                            self.out.push('-');
                            self.out.push(e);
                        }
                        Some(']') => {
                            self.out.push(c);
                        }
                        _ => return Err("a range other than within 0-9, a-z or A-Z".into()),
                    }
                }
                '-' if self.peek() == Some(']') => self.out.push_str("\\-"),
                c if c.is_ascii_alphanumeric() || c == ' ' || c == '_' || !c.is_ascii() => {
                    if c.is_control() {
                        return Err("a control character".into());
                    }
                    self.out.push(c);
                }
                c if c.is_ascii_punctuation()
                    && !matches!(c, '[' | ']' | '-' | '^' | '&' | '~') =>
                {
                    self.out.push('\\');
                    self.out.push(c);
                }
                c => {
                    return Err(format!(
                        "`{c}` inside a class is read differently by the engines"
                    ));
                }
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }

    fn quantifier(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(q @ ('*' | '+' | '?')) => {
                self.at += 1;
                self.out.push(q);
            }
            Some('{') => {
                let close = self.chars[self.at..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or("an unclosed `{`")?;
                let inner: String = self.chars[self.at + 1..self.at + close].iter().collect();
                let ok = inner
                    .split(',')
                    .all(|n| n.is_empty() || n.parse::<u32>().is_ok_and(|n| n <= 255));
                if !ok || inner.is_empty() || inner.split(',').count() > 2 || inner.starts_with(',')
                {
                    return Err(format!(
                        "the repetition `{{{inner}}}` (at most 255 in every engine)"
                    ));
                }
                self.at += close + 1;
                self.out.push('{');
                self.out.push_str(&inner);
                self.out.push('}');
            }
            _ => return Ok(()),
        }
        // A lazy quantifier matches the same texts.
        if self.peek() == Some('?') {
            self.at += 1;
        }
        if matches!(self.peek(), Some('*' | '+' | '?' | '{')) {
            return Err("a quantifier of a quantifier".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn the_common_subset_is_spelled_out() {
        assert_eq!(translate("^a.c$").unwrap(), "^a[^\\n]c$");
        assert_eq!(translate(r"\d{3}-\w+").unwrap(), "[0-9]{3}-[0-9A-Za-z_]+");
        assert_eq!(translate(r"(?:ab|c)*?x").unwrap(), "(?:ab|c)*x");
        assert_eq!(translate("[a-z0-9_.]").unwrap(), "[a-z0-9_\\.]");
        assert_eq!(translate(r"\.com$").unwrap(), "\\.com$");
    }

    #[test]
    fn what_the_engines_read_differently_is_refused() {
        for p in [
            "(?i)abc",
            r"\bword",
            r"\pL",
            "[a-Z]",
            "a{300}",
            "[[:alpha:]]",
            "[a&&b]",
        ] {
            assert!(translate(p).is_err(), "{p}");
        }
    }
}
