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
        for (i, b) in s.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            // Special characters are ASCII, so `i` is a character boundary.
            f.write_str(&s[start..i])?;
            f.write_str(entity)?;
            start = i + 1;
        }
        f.write_str(&s[start..])
    }
}

fn layout(h: &Header, body: std::fmt::Arguments) -> String {
    let heading = format!(
        "{} ({} @ {})",
        Html(h.title),
        Html(h.pod),
        crate::timefmt::utc(h.now)
    );
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\n\
<body><header><h1 id=\"heading\">{heading}</h1></header>\n<main>\n{body}\n</main></body></html>\n",
        title = Html(h.title),
    )
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

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
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
            Html(&pretty(u))
        ),
        None => String::new(),
    };
    let csrf = Html(s.csrf.expose());
    layout(
        h,
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
            claims = Html(&pretty(&s.identity.claims)),
            access = Html(s.tokens.access_token.expose()),
            refresh = Html(refresh),
        ),
    )
}

pub fn error(h: &Header, status: u16, message: &str) -> String {
    layout(
        h,
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
