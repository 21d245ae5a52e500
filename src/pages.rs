//! HTML pages. Every dynamic value goes through `escape`.

use crate::session::Session;

/// What every page shows in its header: "<title> (<pod> @ <UTC time>)".
pub struct Header<'a> {
    pub title: &'a str,
    pub pod: &'a str,
    pub now: i64,
}

pub const STYLE: &str = include_str!("style.css");

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(h: &Header, body: &str) -> String {
    let heading = format!(
        "{} ({} @ {})",
        escape(h.title),
        escape(h.pod),
        crate::timefmt::utc(h.now)
    );
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\n\
<body><header><h1 id=\"heading\">{heading}</h1></header>\n<main>\n{body}\n</main></body></html>\n",
        title = escape(h.title),
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
            escape(user)
        ),
        None => String::new(),
    };
    layout(
        h,
        &format!(
            "{session}<section><h2>Client</h2><dl><dt>Client ID</dt><dd id=\"client-id\">{}</dd>\
<dt>Issuer</dt><dd id=\"issuer\">{}</dd></dl></section>\n\
<section><h2>Log in</h2><form method=\"post\" action=\"/login\">\
<label for=\"scope\">Scopes</label><input type=\"text\" id=\"scope\" name=\"scope\" value=\"{}\">\
<button type=\"submit\">Log in</button></form></section>",
            escape(client_id),
            escape(issuer),
            escape(default_scope),
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
            escape(&pretty(u))
        ),
        None => String::new(),
    };
    let csrf = escape(s.csrf.expose());
    layout(
        h,
        &format!(
            "<section><h2>Logged in as <span id=\"username\">{user}</span></h2>\
<dl><dt>Subject</dt><dd id=\"sub\">{sub}</dd><dt>Session ends</dt><dd>{ends}</dd></dl>\
<form class=\"inline\" method=\"post\" action=\"/refresh\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button id=\"refresh\" type=\"submit\">Refresh</button></form>\
<form class=\"inline\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button id=\"logout\" class=\"secondary\" type=\"submit\">Logout</button></form></section>\n\
<section><h2>ID token</h2><pre id=\"id-token\">{id_token}</pre></section>\n\
<section><h2>ID token claims</h2><pre id=\"claims\">{claims}</pre></section>\n{userinfo}\
<section><h2>Access token</h2><pre id=\"access-token\">{access}</pre></section>\n\
<section><h2>Refresh token</h2><pre id=\"refresh-token\">{refresh}</pre></section>",
            user = escape(&s.identity.username),
            sub = escape(&s.identity.sub),
            ends = crate::timefmt::utc(s.expires_at),
            id_token = escape(s.tokens.id_token.expose()),
            claims = escape(&pretty(&s.identity.claims)),
            access = escape(s.tokens.access_token.expose()),
            refresh = escape(refresh),
        ),
    )
}

pub fn error(h: &Header, status: u16, message: &str) -> String {
    layout(
        h,
        &format!(
            "<section><h2>{status} {}</h2><p class=\"error\" id=\"error\">{}</p><p><a href=\"/\">Back to the start page</a></p></section>",
            crate::response::reason(status),
            escape(message)
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
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
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
