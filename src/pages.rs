//! HTML pages. Every dynamic value is escaped on its way in ([`Page`]).

use crate::session::Session;

/// What every page shows in its header: "<title> (<pod> @ <UTC time>)".
pub(crate) struct Header<'a> {
    pub(crate) title: &'a str,
    pub(crate) pod: &'a str,
    pub(crate) now: i64,
}

pub(crate) const STYLE: &str = include_str!("style.css");

/// A page under construction: literal markup goes in as is, every dynamic
/// value escaped, by [`Page::text`] in element content and by [`Page::attr`]
/// in attribute values. Writing with `push_str` rather than `format!`, and
/// leaving quotes alone where they cannot end anything, matters on `/user`:
/// most of it is tokens and JSON, and the claims are full of quotes.
struct Page(String);

impl Page {
    fn raw(&mut self, markup: &str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// Element content: `&`, `<` and `>` escaped.
    fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.0, text, Quotes::Keep);
        self
    }

    /// A double-quoted attribute value: quotes escaped too.
    fn attr(&mut self, value: &str) -> &mut Self {
        escape_into(&mut self.0, value, Quotes::Escape);
        self
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Quotes {
    Keep,
    Escape,
}

/// Appends `s` HTML-escaped, copying the runs between special characters whole.
fn escape_into(out: &mut String, s: &str, quotes: Quotes) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_special(bytes, start, quotes) {
        // Special characters are ASCII, so `i` is a character boundary.
        out.push_str(&s[start..i]);
        out.push_str(match bytes[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

fn is_special(b: u8, quotes: Quotes) -> bool {
    matches!(b, b'&' | b'<' | b'>') || (quotes == Quotes::Escape && matches!(b, b'"' | b'\''))
}

/// The index of the first special character at or after `from`. Skips eight
/// bytes at a time while none of them is special (tokens, most of `/user`,
/// never have one). A word holds byte `c` exactly when `word ^ splat(c)` has
/// a zero byte, and the zero-byte test is exact for the word as a whole, so
/// no special character is ever skipped.
fn next_special(bytes: &[u8], from: usize, quotes: Quotes) -> Option<usize> {
    const fn splat(b: u8) -> u64 {
        u64::from_ne_bytes([b; 8])
    }
    const ONES: u64 = splat(0x01);
    const HIGHS: u64 = splat(0x80);
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v;
    let mut i = from;
    while let Some(&[b0, b1, b2, b3, b4, b5, b6, b7]) = bytes.get(i..i + 8) {
        let w = u64::from_ne_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
        let mut found =
            zero_byte(w ^ splat(b'&')) | zero_byte(w ^ splat(b'<')) | zero_byte(w ^ splat(b'>'));
        if quotes == Quotes::Escape {
            found |= zero_byte(w ^ splat(b'"')) | zero_byte(w ^ splat(b'\''));
        }
        if found & HIGHS != 0 {
            break;
        }
        i += 8;
    }
    bytes
        .get(i..)?
        .iter()
        .position(|&b| is_special(b, quotes))
        .map(|p| i + p)
}

/// A whole page: the header and `body`, in one buffer sized for the body's
/// dynamic parts (`body_size`, roughly) and the markup around them.
fn page(h: &Header, body_size: usize, body: impl FnOnce(&mut Page)) -> String {
    let mut p = Page(String::with_capacity(body_size + 2048));
    p.raw("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>")
        .text(h.title)
        .raw("</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\n<body><header><h1 id=\"heading\">")
        .text(h.title)
        .raw(" (")
        .text(h.pod)
        .raw(" @ ")
        .raw(&crate::timefmt::utc(h.now))
        .raw(")</h1></header>\n<main>\n");
    body(&mut p);
    p.raw("\n</main></body></html>\n");
    p.0
}

/// The login page; a visitor who is logged in also gets a link to `/user`.
pub(crate) fn home(
    h: &Header,
    client_id: &str,
    issuer: &str,
    default_scope: &str,
    logged_in_as: Option<&str>,
) -> String {
    let size = client_id.len() + issuer.len() + default_scope.len();
    page(h, size + 512, |p| {
        if let Some(user) = logged_in_as {
            p.raw("<section><p>You are logged in as <strong>")
                .text(user)
                .raw("</strong>. <a id=\"user-link\" href=\"/user\">Show your tokens</a></p></section>\n");
        }
        p.raw("<section><h2>Client</h2><dl><dt>Client ID</dt><dd id=\"client-id\">")
            .text(client_id)
            .raw("</dd><dt>Issuer</dt><dd id=\"issuer\">")
            .text(issuer)
            .raw("</dd></dl></section>\n<section><h2>Log in</h2><form method=\"post\" action=\"/login\">\
<label for=\"scope\">Scopes</label><input type=\"text\" id=\"scope\" name=\"scope\" value=\"")
            .attr(default_scope)
            .raw("\"><button type=\"submit\">Log in</button></form></section>");
    })
}

/// The logged-in page: who, the raw tokens, the claims, Refresh and Logout.
/// `/user`: who is logged in, where the session lives (for the scaling
/// exercise), and every token with what can be read from it.
pub(crate) fn user(h: &Header, s: &Session, store_key: &str) -> String {
    let t = &s.tokens;
    let refresh = t
        .refresh_token
        .as_ref()
        .map(|t| t.expose())
        .unwrap_or("(none: ask for the offline_access scope)");
    let userinfo = s.identity.userinfo.as_ref().map(|u| u.text());
    let jwt = t.access_token_jwt.as_ref();
    let csrf = s.csrf.expose();
    let size = t.id_token.expose().len()
        + t.access_token.expose().len()
        + refresh.len()
        + s.identity.claims.text().len()
        + userinfo.map_or(0, str::len)
        + jwt.map_or(0, |j| j.header.text().len() + j.claims.text().len())
        + 2 * csrf.len();
    let when = |t: Option<i64>| t.map_or_else(|| "not said".to_owned(), crate::timefmt::utc);
    page(h, size + size / 8 + 2048, |p| {
        p.raw("<section><h2>Logged in as <span id=\"username\">")
            .text(&s.identity.username)
            .raw("</span></h2><dl><dt>Subject</dt><dd id=\"sub\">")
            .text(&s.identity.sub)
            .raw("</dd><dt>Session ends</dt><dd>")
            .raw(&crate::timefmt::utc(s.expires_at))
            .raw("</dd><dt>Access token expires</dt><dd id=\"access-expires\">")
            .raw(&when(t.access_token_expires_at))
            .raw("</dd><dt>ID token expires</dt><dd id=\"id-expires\">")
            .raw(&when(t.id_token_expires_at))
            .raw("</dd></dl><form class=\"inline\" method=\"post\" action=\"/refresh\"><input type=\"hidden\" name=\"csrf\" value=\"")
            .attr(csrf)
            .raw("\"><button id=\"refresh\" type=\"submit\">Refresh</button></form>\
<form class=\"inline\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"")
            .attr(csrf)
            .raw("\"><button id=\"logout\" class=\"secondary\" type=\"submit\">Logout</button></form></section>\n\
<section><h2>Where this session lives</h2><dl><dt>This page served by</dt><dd id=\"served-by\">")
            .text(h.pod)
            .raw("</dd><dt>Session created by</dt><dd id=\"created-by\">")
            .text(if s.origin.created_by.is_empty() { "not recorded" } else { &s.origin.created_by })
            .raw("</dd><dt>Session store</dt><dd id=\"store\">")
            .raw(s.origin.store.describe())
            .raw("</dd><dt>Store key</dt><dd><code id=\"store-key\">")
            .text(store_key)
            .raw("</code></dd></dl><p class=\"hint\">When another replica serves this page than the one that created the session, the replicas share their store. The key names the record without opening it: its tokens are sealed with the secret half of your cookie, which the store never sees.</p></section>\n\
<section><h2>ID token</h2><pre id=\"id-token\">")
            .text(t.id_token.expose())
            .raw("</pre></section>\n<section><h2>ID token claims</h2><pre id=\"claims\">")
            .text(s.identity.claims.text())
            .raw("</pre></section>\n");
        if let Some(userinfo) = userinfo {
            p.raw("<section><h2>UserInfo</h2><pre id=\"userinfo\">")
                .text(userinfo)
                .raw("</pre></section>\n");
        }
        p.raw("<section><h2>Access token</h2><pre id=\"access-token\">")
            .text(t.access_token.expose())
            .raw("</pre>");
        match jwt {
            Some(jwt) => p
                .raw("<p class=\"hint\" id=\"access-token-kind\">A JWT: its header and claims below are decoded as data only. Its signature is not checked here; the APIs it is for check it.</p><h3>Header</h3><pre id=\"access-token-header\">")
                .text(jwt.header.text())
                .raw("</pre><h3>Claims</h3><pre id=\"access-token-claims\">")
                .text(jwt.claims.text())
                .raw("</pre>"),
            None => p.raw("<p class=\"hint\" id=\"access-token-kind\">Opaque: not a JWT, so only the identity provider can tell what it grants.</p>"),
        };
        p.raw("</section>\n<section><h2>Refresh token</h2><pre id=\"refresh-token\">")
            .text(refresh)
            .raw("</pre></section>\n");
        protection(p, s);
    })
}

/// How this login was protected, one sentence per mechanism for trainees:
/// the client's credential, how the authorization request travelled, and
/// whether the access token is bound to a key (DPoP) or a bearer token.
fn protection(p: &mut Page, s: &Session) {
    let auth = s.origin.client_auth.as_str();
    let auth_said = match auth {
        "private_key_jwt" => {
            "The client proved who it is with a JWT signed by its own private key, fresh for every request; the IdP checks it with the public key at /jwks.json, so there is no shared secret to steal."
        }
        "client_secret_basic" | "client_secret_post" => {
            "The client proved who it is with a secret it shares with the IdP: whoever copies that secret can act as this client."
        }
        _ => "Not recorded for this session.",
    };
    let (request, request_said) = if s.origin.pushed {
        (
            "pushed (PAR)",
            "The login's parameters went to the IdP server to server first; the browser carried only a reference to them (request_uri), so nobody could read or change them on the way.",
        )
    } else {
        (
            "through the browser",
            "The login's parameters travelled to the IdP in the browser's address bar, where extensions, history and proxies can see them.",
        )
    };
    p.raw("<section id=\"protection\"><h2>How this login is protected</h2><dl><dt>Client authentication</dt><dd><code id=\"client-auth\">")
        .text(if auth.is_empty() { "unknown" } else { auth })
        .raw("</code> ")
        .text(auth_said)
        .raw("</dd><dt>Authorization request</dt><dd><span id=\"par\">")
        .raw(request)
        .raw("</span>: ")
        .raw(request_said)
        .raw("</dd><dt>Access token</dt><dd id=\"binding\">");
    match &s.tokens.dpop {
        Some(binding) => {
            p.raw("<strong id=\"token-type\">DPoP</strong>: bound to a key only this session holds (thumbprint <code id=\"dpop-jkt\">")
                .text(&binding.jkt)
                .raw("</code>). Every request that uses the token carries a fresh proof signed with that key, so a copied token is useless on its own.");
            if let Some(jkt) = s
                .tokens
                .access_token_jwt
                .as_ref()
                .and_then(|j| j.cnf_jkt.as_deref())
            {
                let agrees = if jkt == binding.jkt {
                    "the same key"
                } else {
                    "a different key"
                };
                p.raw(" The token itself names its key in <code>cnf.jkt</code>: <code id=\"cnf-jkt\">")
                    .text(jkt)
                    .raw("</code>, ")
                    .raw(agrees)
                    .raw(".");
            }
        }
        None => {
            p.raw("<strong id=\"token-type\">Bearer</strong>: whoever holds the token can use it, like cash. Setting the variable <code>dpop</code> to <code>on</code> binds it to a key of this session.");
        }
    }
    p.raw("</dd></dl></section>");
}

/// An error page: what happened, then what to do next, then the way back.
pub(crate) fn error(h: &Header, status: u16, message: &str, next: &str) -> String {
    page(h, message.len() + next.len() + 256, |p| {
        p.raw("<section><h2>")
            .raw(&status.to_string())
            .raw(" ")
            .raw(reason(status))
            .raw("</h2><p class=\"error\" id=\"error\">")
            .text(message)
            .raw("</p><p id=\"next\">")
            .text(next)
            .raw("</p><p><a href=\"/\">Back to the start page</a></p></section>");
    })
}

/// The status's reason phrase, as HTTP names it.
fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escape(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s, Quotes::Escape);
        out
    }

    fn escape_text(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s, Quotes::Keep);
        out
    }

    const H: Header = Header {
        title: "T<script>",
        pod: "pod-1\"",
        now: 0,
    };

    #[test]
    fn escapes_everything_dynamic() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(escape("é<ü>x&&"), "é&lt;ü&gt;x&amp;&amp;");
        assert_eq!(escape("plain token_-.~"), "plain token_-.~");
        assert_eq!(escape(""), "");
        assert_eq!(
            escape_text("{\"a\": \"<b>'&'\"}"),
            "{\"a\": \"&lt;b&gt;'&amp;'\"}",
            "quotes cannot end element content"
        );
    }

    /// The word-at-a-time scan against a byte-by-byte reference, at every
    /// offset and length around the 8-byte boundaries.
    #[test]
    fn escaping_finds_every_special_character() {
        let reference = |s: &str, quotes: bool| -> String {
            s.chars()
                .map(|c| match c {
                    '&' => "&amp;".to_string(),
                    '<' => "&lt;".to_string(),
                    '>' => "&gt;".to_string(),
                    '"' if quotes => "&quot;".to_string(),
                    '\'' if quotes => "&#39;".to_string(),
                    c => c.to_string(),
                })
                .collect()
        };
        for special in ['&', '<', '>', '"', '\''] {
            for len in 0..20 {
                for at in 0..len {
                    let s: String = (0..len)
                        .map(|i| {
                            if i == at {
                                special
                            } else {
                                ['a', 'é', '%', '\u{7f}'][i % 4]
                            }
                        })
                        .collect();
                    assert_eq!(escape(&s), reference(&s, true), "{s:?}");
                    assert_eq!(escape_text(&s), reference(&s, false), "{s:?}");
                }
            }
        }
        let mixed = format!("{}{}<", "x<&'\">yz".repeat(5), "token.part-_".repeat(9));
        assert_eq!(escape(&mixed), reference(&mixed, true));
        assert_eq!(escape_text(&mixed), reference(&mixed, false));
        let page = home(&H, "<c>", "<i>", "openid \"x\"", Some("<b>bob</b>"));
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<c>") && !page.contains("<i>") && !page.contains("<b>bob"));
        assert!(page.contains("T&lt;script&gt; (pod-1\" @ 1970-01-01 00:00:00 UTC)"));
        assert!(
            page.contains("value=\"openid &quot;x&quot;\""),
            "attributes escape quotes"
        );
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
        s.csrf = crate::secret::CsrfToken::new("x\" onclick=\"y");
        let page = user(&H, &s, "sess:abc");
        assert!(!page.contains("<script>alert"));
        assert!(!page.contains("<img"));
        assert!(page.contains("value=\"x&quot; onclick=&quot;y\""), "{page}");
        assert!(page.contains("name=\"csrf\""));
    }

    #[test]
    fn user_page_shows_a_jwt_access_token_decoded_and_escaped() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let mut s = crate::session::tests::session_with_claims(serde_json::json!({}));
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256","kid":"<k>"}"#),
            b64(r#"{"sub":"alice","cnf":"</pre>"}"#)
        );
        s.tokens.access_token_jwt = crate::jwt_view::JwtView::decode(&token);
        let page = user(&H, &s, "sess:abc");
        assert!(page.contains("id=\"access-token-header\">"), "{page}");
        assert!(
            page.contains("&quot;&lt;k&gt;&quot;") || page.contains("\"&lt;k&gt;\""),
            "{page}"
        );
        assert!(page.contains("&lt;/pre&gt;"), "{page}");
        assert!(page.contains("A JWT"));
    }

    #[test]
    fn error_page_shows_status_and_escaped_message() {
        let page = error(&H, 400, "bad <thing>", "do <that>");
        assert!(page.contains("400 Bad Request"));
        assert!(page.contains("bad &lt;thing&gt;"));
        assert!(page.contains("<p id=\"next\">do &lt;that&gt;</p>"));
        assert!(page.contains("<a href=\"/\">"));
    }
}
