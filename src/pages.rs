//! HTML pages. Every dynamic value goes through [`Html`].

use crate::session::Session;

/// What every page shows in its header: "<title> (<pod> @ <UTC time>)".
pub struct Header<'a> {
    pub title: &'a str,
    pub pod: &'a str,
    pub now: i64,
}

pub const STYLE: &str = include_str!("style.css");

/// A text, HTML-escaped when formatted. It writes the runs between special
/// characters whole, straight into the page: the tokens that make up most of
/// `/user` have none, so they are copied once, without a temporary string.
pub struct Html<'a>(pub &'a str);

impl std::fmt::Display for Html<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        let mut start = 0;
        while let Some(i) = next_special(s.as_bytes(), start) {
            // Special characters are ASCII, so `i` is a character boundary.
            f.write_str(&s[start..i])?;
            f.write_str(match s.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            start = i + 1;
        }
        f.write_str(&s[start..])
    }
}

fn is_special(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'')
}

/// The index of the first special character at or after `from`. Skips eight
/// bytes at a time while none of them is special (tokens, most of `/user`,
/// never have one); the test per word is exact, so no byte is missed.
fn next_special(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let has_byte = |word: u64, b: u8| {
        let v = word ^ (ONES * u64::from(b));
        v.wrapping_sub(ONES) & !v & HIGHS != 0
    };
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_ne_bytes(chunk.try_into().ok()?);
        if [b'&', b'<', b'>', b'"', b'\''].iter().any(|&b| has_byte(word, b)) {
            break;
        }
        i += 8;
    }
    bytes.get(i..)?.iter().position(|&b| is_special(b)).map(|p| i + p)
}

/// The page around `body`, written once into a buffer of about the right
/// size (`body_size`: roughly how long the body's dynamic parts are).
fn layout(h: &Header, body_size: usize, body: std::fmt::Arguments) -> String {
    use std::fmt::Write;
    let mut page = String::with_capacity(body_size + 2048);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\n\
<body><header><h1 id=\"heading\">{title} ({pod} @ {now})</h1></header>\n<main>\n{body}\n</main></body></html>\n",
        title = Html(h.title),
        pod = Html(h.pod),
        now = crate::timefmt::utc(h.now),
    );
    page
}

/// The login page; a visitor who is logged in also gets a link to `/user`.
pub fn home(
    h: &Header,
    client_id: &str,
    issuer: &str,
    default_scope: &str,
    logged_in_as: Option<&str>,
) -> String {
    let session = match logged_in_as {
        Some(user) => format!(
            "<section><p>You are logged in as <strong>{}</strong>. <a id=\"user-link\" href=\"/user\">Show your tokens</a></p></section>\n",
            Html(user)
        ),
        None => String::new(),
    };
    layout(
        h,
        session.len() + client_id.len() + issuer.len() + default_scope.len(),
        format_args!(
            "{session}<section><h2>Client</h2><dl><dt>Client ID</dt><dd id=\"client-id\">{}</dd>\
<dt>Issuer</dt><dd id=\"issuer\">{}</dd></dl></section>\n\
<section><h2>Log in</h2><form method=\"post\" action=\"/login\">\
<label for=\"scope\">Scopes</label><input type=\"text\" id=\"scope\" name=\"scope\" value=\"{}\">\
<button type=\"submit\">Log in</button></form></section>",
            Html(client_id),
            Html(issuer),
            Html(default_scope),
        ),
    )
}

/// The logged-in page: who, the raw tokens, the claims, Refresh and Logout.
pub fn user(h: &Header, s: &Session) -> String {
    let refresh = s
        .tokens
        .refresh_token
        .as_ref()
        .map(|t| t.expose())
        .unwrap_or("(none: ask for the offline_access scope)");
    let userinfo = match &s.identity.userinfo {
        Some(u) => format!(
            "<section><h2>UserInfo</h2><pre id=\"userinfo\">{}</pre></section>\n",
            Html(u.text())
        ),
        None => String::new(),
    };
    let csrf = Html(s.csrf.expose());
    let t = &s.tokens;
    let size = t.id_token.expose().len()
        + t.access_token.expose().len()
        + refresh.len()
        + s.identity.claims.text().len()
        + userinfo.len()
        + 2 * s.csrf.expose().len();
    layout(
        h,
        size + size / 8,
        format_args!(
            "<section><h2>Logged in as <span id=\"username\">{user}</span></h2>\
<dl><dt>Subject</dt><dd id=\"sub\">{sub}</dd><dt>Session ends</dt><dd>{ends}</dd></dl>\
<form class=\"inline\" method=\"post\" action=\"/refresh\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button id=\"refresh\" type=\"submit\">Refresh</button></form>\
<form class=\"inline\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button id=\"logout\" class=\"secondary\" type=\"submit\">Logout</button></form></section>\n\
<section><h2>ID token</h2><pre id=\"id-token\">{id_token}</pre></section>\n\
<section><h2>ID token claims</h2><pre id=\"claims\">{claims}</pre></section>\n{userinfo}\
<section><h2>Access token</h2><pre id=\"access-token\">{access}</pre></section>\n\
<section><h2>Refresh token</h2><pre id=\"refresh-token\">{refresh}</pre></section>",
            user = Html(&s.identity.username),
            sub = Html(&s.identity.sub),
            ends = crate::timefmt::utc(s.expires_at),
            id_token = Html(s.tokens.id_token.expose()),
            claims = Html(s.identity.claims.text()),
            access = Html(s.tokens.access_token.expose()),
            refresh = Html(refresh),
        ),
    )
}

pub fn error(h: &Header, status: u16, message: &str) -> String {
    layout(
        h,
        message.len(),
        format_args!(
            "<section><h2>{status} {}</h2><p class=\"error\" id=\"error\">{}</p><p><a href=\"/\">Back to the start page</a></p></section>",
            crate::response::reason(status),
            Html(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Header = Header {
        title: "T<script>",
        pod: "pod-1\"",
        now: 0,
    };

    #[test]
    fn escapes_everything_dynamic() {
        assert_eq!(
            Html("<a href='x'>&\"</a>").to_string(),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(Html("é<ü>x&&").to_string(), "é&lt;ü&gt;x&amp;&amp;");
        assert_eq!(Html("plain token_-.~").to_string(), "plain token_-.~");
        assert_eq!(Html("").to_string(), "");
    }

    /// The word-at-a-time scan against a byte-by-byte reference, at every
    /// offset and length around the 8-byte boundaries.
    #[test]
    fn escaping_finds_every_special_character() {
        let reference = |s: &str| -> String {
            s.chars()
                .map(|c| match c {
                    '&' => "&amp;".to_string(),
                    '<' => "&lt;".to_string(),
                    '>' => "&gt;".to_string(),
                    '"' => "&quot;".to_string(),
                    '\'' => "&#39;".to_string(),
                    c => c.to_string(),
                })
                .collect()
        };
        for special in ['&', '<', '>', '"', '\''] {
            for len in 0..20 {
                for at in 0..len {
                    let s: String = (0..len)
                        .map(|i| if i == at { special } else { ['a', 'é', '%', '\u{7f}'][i % 4] })
                        .collect();
                    assert_eq!(Html(&s).to_string(), reference(&s), "{s:?}");
                }
            }
        }
        let mixed = format!("{}{}<", "x<&'\">yz".repeat(5), "token.part-_".repeat(9));
        assert_eq!(Html(&mixed).to_string(), reference(&mixed));
        let page = home(&H, "<c>", "<i>", "openid \"x\"", Some("<b>bob</b>"));
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<c>") && !page.contains("<i>") && !page.contains("<b>bob"));
        assert!(page.contains("T&lt;script&gt; (pod-1&quot; @ 1970-01-01 00:00:00 UTC)"));
    }

    #[test]
    fn home_links_to_user_only_when_logged_in() {
        assert!(!home(&H, "c", "i", "openid", None).contains("href=\"/user\""));
        assert!(home(&H, "c", "i", "openid", Some("bob")).contains("href=\"/user\""));
    }

    #[test]
    fn user_page_escapes_claims_and_tokens() {
        let mut s = crate::session::tests::session_with_claims(
            serde_json::json!({"name": "</pre><script>alert(1)</script>"}),
        );
        s.identity.username = "<img src=x>".into();
        let page = user(&H, &s);
        assert!(!page.contains("<script>alert"));
        assert!(!page.contains("<img"));
        assert!(page.contains("name=\"csrf\""));
    }

    #[test]
    fn error_page_shows_status_and_escaped_message() {
        let page = error(&H, 400, "bad <thing>");
        assert!(page.contains("400 Bad Request"));
        assert!(page.contains("bad &lt;thing&gt;"));
    }
}
