//! Text utilities: the plain-text part derived from HTML, escaping for
//! previews and webhooks, and SMS length in GSM-7 or UCS-2 units.

/// Escapes text for HTML content and attribute values (previews).
pub fn escape_html(s: &str) -> String {
    let special = |b: &u8| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'');
    // Most texts hold nothing to escape: copy them in one go.
    let Some(first) = s.bytes().position(|b| special(&b)) else {
        return s.to_string();
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    let mut rest = &s[first..];
    // Escapes are ASCII, so byte positions are character boundaries.
    while let Some(i) = rest.bytes().position(|b| special(&b)) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out
}

/// The escaping of HTML bodies: Handlebars' HTML escaping, and a value
/// that is a `javascript:` or `vbscript:` URL is defused with an `unsafe:`
/// prefix, so that `<a href="{{website}}">` cannot run a script whatever the
/// contact typed. Entities would not help there: the browser decodes them
/// before it reads the URL.
pub fn escape_html_value(s: &str) -> String {
    let escaped = handlebars::html_escape(s);
    if script_url(s) {
        format!("unsafe:{escaped}")
    } else {
        escaped
    }
}

/// Whether `s` is read as a script URL: browsers ignore leading spaces and
/// control characters and tabs or line breaks inside the scheme.
fn script_url(s: &str) -> bool {
    let scheme: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(11)
        .collect::<String>()
        .to_ascii_lowercase();
    scheme.starts_with("javascript:") || scheme.starts_with("vbscript:")
}

/// Percent-encodes a value inserted in a link or webhook URL (RFC 3986):
/// every byte but the unreserved characters `A-Z a-z 0-9 - . _ ~`, so that
/// it stays one query value or one path segment.
pub fn escape_url_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a rendered link or webhook URL is one relance sends: `https://`
/// (any letter case) and a host, or `mailto:` and an address.
pub fn is_sendable_url(u: &str) -> bool {
    let scheme = |p: &str| {
        u.get(..p.len())
            .filter(|s| s.eq_ignore_ascii_case(p))
            .map(|_| &u[p.len()..])
    };
    if let Some(rest) = scheme("https://") {
        return rest
            .chars()
            .next()
            .is_some_and(|c| !matches!(c, '/' | '?' | '#'));
    }
    scheme("mailto:").is_some_and(|rest| !rest.is_empty())
}

/// Escapes text as the inside of a JSON string (webhook bodies): the
/// template writes the quotes, the value cannot break out of them.
pub fn escape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            // Valid JSON either way, but these break JavaScript string literals.
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

// ------------------------------------------------------------------- SMS

/// How an SMS is encoded: GSM-7 when every character is in the GSM 03.38
/// alphabet (extension characters count twice), else UCS-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsEncoding {
    Gsm7,
    Ucs2,
}

impl SmsEncoding {
    /// Characters in one single-part message.
    pub fn limit(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => 160,
            SmsEncoding::Ucs2 => 70,
        }
    }

    /// Characters in each part of a concatenated (multi-part) message: the
    /// User Data Header that links the parts takes 7 GSM-7 characters (6
    /// bytes), or 3 UCS-2 characters.
    pub fn part_limit(self) -> usize {
        match self {
            SmsEncoding::Gsm7 => 153,
            SmsEncoding::Ucs2 => 67,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "GSM-7",
            SmsEncoding::Ucs2 => "UCS-2",
        }
    }
}

/// How many SMS a message of `len` units (as [`sms_length`] counts them)
/// is sent and billed as: one up to [`SmsEncoding::limit`], else
/// `len / part_limit` rounded up. An empty message is still one SMS.
///
/// Carriers do not split a GSM-7 extension character (`€`, `[`…) or a UCS-2
/// surrogate pair (an emoji) across two parts; a message that would need
/// such a split may take one part more than this count at a part boundary.
pub fn sms_segments(len: usize, encoding: SmsEncoding) -> usize {
    if len <= encoding.limit() {
        1
    } else {
        len.div_ceil(encoding.part_limit())
    }
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// The length of an SMS in its encoding's units, and the encoding.
pub fn sms_length(s: &str) -> (usize, SmsEncoding) {
    let mut gsm = 0usize;
    for c in s.chars() {
        if GSM7_BASIC.contains(c) {
            gsm += 1;
        } else if GSM7_EXTENSION.contains(c) {
            gsm += 2;
        } else {
            return (s.encode_utf16().count(), SmsEncoding::Ucs2);
        }
    }
    (gsm, SmsEncoding::Gsm7)
}

// ------------------------------------------------------------ HTML → text

/// Elements that end a paragraph (a blank line around them).
const PARAGRAPH: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "table",
    "blockquote",
    "pre",
    "hr",
    "dl",
    "address",
    "figure",
];

/// Elements that end a line.
const LINE: &[&str] = &[
    "br", "div", "li", "tr", "td", "th", "section", "article", "header", "footer", "main", "nav",
    "aside", "dt", "dd", "center", "tbody", "thead", "tfoot", "caption", "form", "fieldset",
];

/// Elements whose content is never shown.
const HIDDEN: &[&str] = &["head", "style", "script", "title", "template", "noscript"];

/// The readable plain text of an HTML body: block elements become line
/// breaks, `<a href=U>label</a>` becomes `label (U)`, entities are decoded
/// and whitespace collapsed. Invisible parts (`<head>`, `<style>`,
/// `display:none`) are left out.
pub fn html_to_text(html: &str) -> String {
    let mut w = TextWriter::default();
    // (tag name, depth of same-named elements) of the element being skipped.
    let mut skipping: Option<(String, usize)> = None;
    // Open links: href and the output length where their label starts.
    let mut links: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < html.len() {
        let rest = &html[i..];
        if bytes[i] != b'<' {
            let next = rest.find('<').map(|n| i + n).unwrap_or(html.len());
            if skipping.is_none() {
                w.text(&decode_entities(&html[i..next]));
            }
            i = next;
            continue;
        }
        if let Some(body) = rest.strip_prefix("<!--") {
            i += 4 + body.find("-->").map(|e| e + 3).unwrap_or(body.len());
            continue;
        }
        let Some(tag) = parse_tag(rest) else {
            // A lone `<`: text.
            if skipping.is_none() {
                w.text("<");
            }
            i += 1;
            continue;
        };
        i += tag.len;
        if let Some((name, depth)) = &mut skipping {
            if tag.name == *name {
                if tag.closing {
                    if *depth == 0 {
                        skipping = None;
                    } else {
                        *depth -= 1;
                    }
                } else if !tag.self_closing && !is_void(&tag.name) {
                    *depth += 1;
                }
            }
            continue;
        }
        let name = tag.name.as_str();
        if !tag.closing {
            let hidden = HIDDEN.contains(&name)
                || tag.attr("style").is_some_and(|s| {
                    s.replace(' ', "")
                        .to_ascii_lowercase()
                        .contains("display:none")
                });
            if hidden {
                if !tag.self_closing && !is_void(name) {
                    skipping = Some((tag.name.clone(), 0));
                }
                continue;
            }
        }
        match (name, tag.closing) {
            ("br", _) => w.line_break(),
            ("a", false) => {
                let href = tag
                    .attr("href")
                    .map(|h| decode_entities(h.trim()))
                    .unwrap_or_default();
                links.push((href, w.out.len()));
            }
            ("a", true) => {
                if let Some((href, start)) = links.pop() {
                    w.end_link(&href, start);
                }
            }
            ("img", false) => {
                if let Some(alt) = tag.attr("alt") {
                    w.text(&decode_entities(alt));
                }
            }
            ("li", false) => {
                w.line_break();
                w.text("- ");
            }
            (n, _) if PARAGRAPH.contains(&n) => w.paragraph(),
            (n, _) if LINE.contains(&n) => w.line_break(),
            _ => {}
        }
    }
    w.finish()
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

struct Tag<'h> {
    name: String,
    closing: bool,
    self_closing: bool,
    attrs: Vec<(String, &'h str)>,
    /// Bytes taken by the tag, `<` to `>`.
    len: usize,
}

impl Tag<'_> {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// Parses a tag at the start of `s` (which begins with `<`).
fn parse_tag(s: &str) -> Option<Tag<'_>> {
    let b = s.as_bytes();
    let mut i = 1;
    let closing = b.get(1) == Some(&b'/');
    if closing {
        i += 1;
    }
    if b.get(i) == Some(&b'!') || b.get(i) == Some(&b'?') {
        // Doctype, CDATA or processing instruction.
        let end = s.find('>')?;
        return Some(Tag {
            name: String::from("!"),
            closing: false,
            self_closing: true,
            attrs: Vec::new(),
            len: end + 1,
        });
    }
    let name_len = s[i..]
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b':')
        .count();
    if name_len == 0 {
        return None;
    }
    let name = s[i..i + name_len].to_ascii_lowercase();
    i += name_len;
    let mut attrs = Vec::new();
    let mut self_closing = false;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        match b.get(i) {
            None => return None,
            Some(b'>') => {
                i += 1;
                break;
            }
            Some(b'/') => {
                self_closing = true;
                i += 1;
                continue;
            }
            _ => {}
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let attr_name = s[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = "";
        if b.get(i) == Some(&b'=') {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            match b.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let end = s[i + 1..].find(q as char).map(|e| i + 1 + e)?;
                    value = &s[i + 1..end];
                    i = end + 1;
                }
                _ => {
                    let start = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = &s[start..i];
                }
            }
        }
        if attr_name.is_empty() {
            // Skip one character (not one byte: the next slice must start
            // on a character boundary).
            i += s
                .get(i..)
                .and_then(|r| r.chars().next())
                .map_or(1, char::len_utf8);
        } else {
            attrs.push((attr_name, value));
        }
    }
    Some(Tag {
        name,
        closing,
        self_closing,
        attrs,
        len: i,
    })
}

/// Builds text line by line, collapsing whitespace.
#[derive(Default)]
struct TextWriter {
    out: String,
    /// A space is owed before the next word.
    space: bool,
    /// Line breaks owed before the next word (2 for a paragraph).
    breaks: usize,
}

impl TextWriter {
    fn text(&mut self, s: &str) {
        for (n, word) in s.split(is_collapsible).enumerate() {
            if n > 0 {
                self.space = true;
            }
            if word.is_empty() {
                continue;
            }
            self.flush();
            self.out.push_str(word);
        }
    }

    fn flush(&mut self) {
        if self.out.is_empty() {
            self.breaks = 0;
            self.space = false;
            return;
        }
        if self.breaks > 0 {
            for _ in 0..self.breaks.min(2) {
                self.out.push('\n');
            }
        } else if self.space {
            self.out.push(' ');
        }
        self.breaks = 0;
        self.space = false;
    }

    fn line_break(&mut self) {
        self.breaks = self.breaks.max(1);
        self.space = false;
    }

    fn paragraph(&mut self) {
        self.breaks = 2;
        self.space = false;
    }

    fn end_link(&mut self, href: &str, start: usize) {
        let label = self.out.get(start..).unwrap_or("").trim().to_string();
        let shown = href.strip_prefix("mailto:").unwrap_or(href);
        if href.is_empty() || href.starts_with('#') || label == href || label == shown {
            return;
        }
        if label.is_empty() {
            self.text(href);
        } else {
            self.flush_space_only();
            self.out.push_str(" (");
            self.out.push_str(href);
            self.out.push(')');
        }
    }

    /// After a link label: the URL follows on the same line.
    fn flush_space_only(&mut self) {
        self.space = false;
    }

    fn finish(self) -> String {
        let mut lines: Vec<&str> = self.out.lines().map(str::trim_end).collect();
        while lines.first().is_some_and(|l| l.is_empty()) {
            lines.remove(0);
        }
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut out = String::new();
        let mut blank = false;
        for l in lines {
            let l = l.trim_start();
            if l.is_empty() {
                if blank {
                    continue;
                }
                blank = true;
            } else {
                blank = false;
            }
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

/// HTML whitespace, plus the invisible characters of preheader tricks.
fn is_collapsible(c: char) -> bool {
    c.is_whitespace() || c == '\u{a0}'
}

/// Decodes character references: named ones of everyday email HTML and
/// numeric ones. Unknown references are kept as written.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|e| e + 1)
            .unwrap_or(rest.len());
        let name = &rest[1..end];
        let decoded = entity(name);
        match decoded {
            Some(d) => {
                out.push_str(d.as_str());
                rest = &rest[end..];
                rest = rest.strip_prefix(';').unwrap_or(rest);
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<String> {
    if let Some(num) = name.strip_prefix('#') {
        let value = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        let c = char::from_u32(value).unwrap_or('\u{FFFD}');
        return Some(match c {
            '\u{a0}' => " ".to_string(),
            '\u{200b}'..='\u{200d}' | '\u{ad}' | '\u{feff}' | '\u{34f}' => String::new(),
            c => c.to_string(),
        });
    }
    let s = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "nbsp" | "ensp" | "emsp" | "thinsp" => " ",
        "zwnj" | "zwj" | "shy" => "",
        "copy" => "©",
        "reg" => "®",
        "trade" => "™",
        "hellip" => "…",
        "mdash" => "—",
        "ndash" => "–",
        "lsquo" => "‘",
        "rsquo" => "’",
        "ldquo" => "“",
        "rdquo" => "”",
        "laquo" => "«",
        "raquo" => "»",
        "euro" => "€",
        "pound" => "£",
        "middot" => "·",
        "bull" => "•",
        "deg" => "°",
        "times" => "×",
        "eacute" => "é",
        "egrave" => "è",
        "ecirc" => "ê",
        "agrave" => "à",
        "acirc" => "â",
        "ccedil" => "ç",
        "ocirc" => "ô",
        "ucirc" => "û",
        "ugrave" => "ù",
        "icirc" => "î",
        "iuml" => "ï",
        "Eacute" => "É",
        "oelig" => "œ",
        _ => return None,
    };
    Some(s.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_nameless_attribute_before_a_multibyte_character_does_not_panic() {
        assert_eq!(super::html_to_text("<a =\"x\"é>y</a>").trim_end(), "y");
    }

    use super::*;

    #[test]
    fn html_to_text_keeps_links_and_blocks() {
        let html = r#"<!doctype html><html><head><title>T</title><style>p{color:red}</style></head>
<body><div style="display: none">preheader &zwnj;&nbsp;</div>
<h1>Hello&nbsp;Marie</h1><p>Our   <b>offer</b>:
<a href="https://a.example/x?a=1&amp;b=2">see it</a>.</p>
<ul><li>one</li><li>two</li></ul>
<p><a href="https://a.example/u">https://a.example/u</a><br>caf&eacute; &#233; &#x27;q&#x27; &unknown;</p>
</body></html>"#;
        assert_eq!(
            html_to_text(html),
            "Hello Marie\n\nOur offer: see it (https://a.example/x?a=1&b=2).\n\n- one\n- two\n\nhttps://a.example/u\ncafé é 'q' &unknown;\n"
        );
    }

    #[test]
    fn html_to_text_odd_input() {
        for s in [
            "<",
            "<a",
            "<a href='x",
            "a < b",
            "<!--",
            "<p/>",
            "</a>",
            "&#xFFFFFFFF;",
            "&#;",
            "<div style=display:none><div></div>x</div>y",
        ] {
            let _ = html_to_text(s);
        }
        assert_eq!(html_to_text("a < b"), "a < b\n");
        assert_eq!(
            html_to_text("<div style=display:none><div></div>x</div>y"),
            "y\n"
        );
        assert_eq!(
            html_to_text("<a href=\"mailto:x@y.example\">x@y.example</a>"),
            "x@y.example\n"
        );
    }

    #[test]
    fn sms_units() {
        assert_eq!(sms_length("Hello"), (5, SmsEncoding::Gsm7));
        assert_eq!(sms_length("€10 [x]"), (10, SmsEncoding::Gsm7));
        assert_eq!(sms_length("Noël"), (4, SmsEncoding::Ucs2));
        assert_eq!(sms_length("🚗"), (2, SmsEncoding::Ucs2));
        assert_eq!(sms_length("à bientôt").1, SmsEncoding::Ucs2);
    }

    #[test]
    fn sms_segment_counts() {
        use SmsEncoding::{Gsm7, Ucs2};
        for (len, enc, parts) in [
            (0, Gsm7, 1),
            (1, Gsm7, 1),
            (160, Gsm7, 1),
            (161, Gsm7, 2),
            (306, Gsm7, 2),
            (307, Gsm7, 3),
            (459, Gsm7, 3),
            (460, Gsm7, 4),
            (70, Ucs2, 1),
            (71, Ucs2, 2),
            (134, Ucs2, 2),
            (135, Ucs2, 3),
            (201, Ucs2, 3),
            (202, Ucs2, 4),
        ] {
            assert_eq!(sms_segments(len, enc), parts, "{len} {}", enc.name());
        }
        // From text: 160 `a` fit one SMS; one `€` more makes 162 units.
        let (len, enc) = sms_length(&format!("{}€", "a".repeat(160)));
        assert_eq!((len, sms_segments(len, enc)), (162, 2));
        // One accent switches the whole message to UCS-2.
        let (len, enc) = sms_length(&format!("{}é", "a".repeat(70)));
        assert_eq!((len, enc), (71, Gsm7));
        let (len, enc) = sms_length(&format!("{}ê", "a".repeat(70)));
        assert_eq!((len, enc, sms_segments(len, enc)), (71, Ucs2, 2));
    }

    #[test]
    fn script_urls_are_defused() {
        assert_eq!(
            escape_html_value("javascript:alert(1)"),
            "unsafe:javascript:alert(1)"
        );
        assert_eq!(
            escape_html_value(" \tJava\nScript:x"),
            "unsafe: \tJava\nScript:x"
        );
        assert_eq!(escape_html_value("VBScript:x"), "unsafe:VBScript:x");
        assert_eq!(
            escape_html_value("https://a.example/?a=1"),
            "https://a.example/?a&#x3D;1"
        );
        assert_eq!(
            escape_html_value("see javascript: docs"),
            "see javascript: docs"
        );
    }

    #[test]
    fn html_escaping_keeps_text_and_escapes_the_five() {
        assert_eq!(escape_html("plain é text"), "plain é text");
        assert_eq!(
            escape_html("é<b a='x'>\"&\"</b>ü"),
            "é&lt;b a=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/b&gt;ü"
        );
        assert_eq!(escape_html(""), "");
        assert_eq!(escape_html(">"), "&gt;");
    }

    #[test]
    fn json_escape_is_valid_json() {
        let hostile = "\"}, \"admin\": true, \"x\": \"\\\n\u{1}\u{2028}";
        let doc = format!("{{\"a\": \"{}\"}}", escape_json(hostile));
        let v: serde_json::Value = serde_json::from_str(&doc).expect("valid json");
        assert_eq!(v["a"], hostile);
    }
}
