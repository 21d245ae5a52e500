//! Just enough HTML scraping for the tests: forms (action, method, fields, submit
//! buttons, also controls tied to a form by its `form="id"` attribute) and the text of
//! elements found by id or class. Not a parser: it expects well-formed, simple pages.

use std::sync::LazyLock;

use regex::Regex;
use url::Url;

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<([a-z][a-z0-9-]*)\b((?:[^>\x22']|\x22[^\x22]*\x22|'[^']*')*)>").unwrap()
});
static FORM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<form\b((?:[^>\x22']|\x22[^\x22]*\x22|'[^']*')*)>(.*?)</form\s*>").unwrap()
});
static CONTROL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)<(input|button|textarea|select)\b((?:[^>\x22']|\x22[^\x22]*\x22|'[^']*')*)>")
        .unwrap()
});
static ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"([A-Za-z_:@][-A-Za-z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"#)
        .unwrap()
});
static ANY_TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").unwrap());

/// The attributes of a tag's inside (`name="x" value='y' checked`), names lowercased,
/// values with entities decoded.
pub fn attributes(inside: &str) -> Vec<(String, String)> {
    ATTR.captures_iter(inside)
        .map(|c| {
            let name = c[1].to_ascii_lowercase();
            let value = c
                .get(2)
                .or(c.get(3))
                .or(c.get(4))
                .map(|m| m.as_str())
                .unwrap_or("");
            (name, decode_entities(value))
        })
        .collect()
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Decodes the common character references: named `&amp; &lt; &gt; &quot; &apos;
/// &#39; &nbsp;` and numeric `&#NN;` / `&#xNN;`.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
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

/// A submit button of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub name: Option<String>,
    pub value: String,
    pub text: String,
}

/// A form as a browser would submit it.
#[derive(Debug, Clone)]
pub struct Form {
    pub id: Option<String>,
    /// The absolute action URL (the page URL when the form has no action).
    pub action: Url,
    /// "GET" or "POST".
    pub method: String,
    /// The successful controls, in document order: text, password, hidden, email,
    /// checked checkboxes and radios, textareas.
    pub fields: Vec<(String, String)>,
    pub buttons: Vec<Button>,
    /// The attributes of the `<form>` tag.
    pub attributes: Vec<(String, String)>,
}

impl Form {
    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the form has a field `name`.
    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(n, _)| n == name)
    }

    /// Sets field `name` (replacing every existing value, adding it when missing).
    pub fn set(&mut self, name: &str, value: &str) -> &mut Form {
        self.fields.retain(|(n, _)| n != name);
        self.fields.push((name.to_string(), value.to_string()));
        self
    }

    /// Removes field `name`.
    pub fn remove(&mut self, name: &str) -> &mut Form {
        self.fields.retain(|(n, _)| n != name);
        self
    }

    /// The fields to submit when the button named `name` is clicked (its name and
    /// value are added, as a browser does).
    pub fn fields_clicking(&self, name: &str) -> Vec<(String, String)> {
        let button = self
            .buttons
            .iter()
            .find(|b| b.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("the form has no button named {name:?}: {self:?}"));
        let mut fields = self.fields.clone();
        fields.push((name.to_string(), button.value.clone()));
        fields
    }
}

/// Every form of `html`, with relative actions resolved against `base`. Controls outside
/// a form that name it in a `form="id"` attribute are included in it.
pub fn forms(html: &str, base: &Url) -> Vec<Form> {
    let mut result: Vec<Form> = FORM
        .captures_iter(html)
        .map(|c| {
            let attributes = attributes(&c[1]);
            let action = match attr(&attributes, "action") {
                Some(a) if !a.is_empty() => base.join(a).unwrap_or_else(|e| {
                    panic!("form action {a:?} does not resolve against {base}: {e}")
                }),
                _ => base.clone(),
            };
            let method = attr(&attributes, "method")
                .unwrap_or("get")
                .to_ascii_uppercase();
            let mut form = Form {
                id: attr(&attributes, "id").map(str::to_string),
                action,
                method,
                fields: Vec::new(),
                buttons: Vec::new(),
                attributes,
            };
            let inner = c.get(2).unwrap();
            collect_controls(html, inner.start(), inner.end(), None, &mut form);
            form
        })
        .collect();
    // Controls tied to a form by id from anywhere in the page.
    for form in &mut result {
        if let Some(id) = form.id.clone() {
            collect_controls(html, 0, html.len(), Some(&id), form);
        }
    }
    result
}

fn collect_controls(html: &str, start: usize, end: usize, owner: Option<&str>, form: &mut Form) {
    let region = &html[start..end];
    for c in CONTROL.captures_iter(region) {
        let kind = c[1].to_ascii_lowercase();
        let attrs = attributes(&c[2]);
        let form_attr = attr(&attrs, "form");
        match owner {
            // Looking for controls bound by form="id": only those.
            Some(id) => {
                if form_attr != Some(id) {
                    continue;
                }
            }
            // Inside the form: controls with a form="..." attribute belong to the
            // form they name (collected by that form's pass).
            None => {
                if form_attr.is_some() {
                    continue;
                }
            }
        }
        let name = attr(&attrs, "name").map(str::to_string);
        if attr(&attrs, "disabled").is_some() {
            continue;
        }
        let after = start + c.get(0).unwrap().end();
        match kind.as_str() {
            "button" => {
                let ty = attr(&attrs, "type")
                    .unwrap_or("submit")
                    .to_ascii_lowercase();
                if ty == "submit" {
                    let close = html[after..]
                        .find("</button")
                        .map(|i| after + i)
                        .unwrap_or(after);
                    form.buttons.push(Button {
                        name,
                        value: attr(&attrs, "value").unwrap_or("").to_string(),
                        text: text_content(&html[after..close]),
                    });
                }
            }
            "textarea" => {
                if let Some(name) = name {
                    let close = html[after..]
                        .find("</textarea")
                        .map(|i| after + i)
                        .unwrap_or(after);
                    form.fields
                        .push((name, decode_entities(&html[after..close])));
                }
            }
            "select" => {} // none in these pages
            _ => {
                let ty = attr(&attrs, "type").unwrap_or("text").to_ascii_lowercase();
                match ty.as_str() {
                    "submit" | "image" => form.buttons.push(Button {
                        name,
                        value: attr(&attrs, "value").unwrap_or("").to_string(),
                        text: attr(&attrs, "value").unwrap_or("").to_string(),
                    }),
                    "button" | "reset" | "file" => {}
                    "checkbox" | "radio" => {
                        if let (Some(name), Some(_)) = (name, attr(&attrs, "checked")) {
                            form.fields
                                .push((name, attr(&attrs, "value").unwrap_or("on").to_string()));
                        }
                    }
                    _ => {
                        if let Some(name) = name {
                            form.fields
                                .push((name, attr(&attrs, "value").unwrap_or("").to_string()));
                        }
                    }
                }
            }
        }
    }
}

/// The text of markup: tags removed, entities decoded, not trimmed.
pub fn text_content(markup: &str) -> String {
    decode_entities(&ANY_TAG.replace_all(markup, ""))
}

/// The inner markup of the first element whose attributes satisfy `pred`.
fn inner_html_where(
    html: &str,
    mut pred: impl FnMut(&str, &[(String, String)]) -> bool,
) -> Option<String> {
    for c in TAG.captures_iter(html) {
        let tag = c[1].to_ascii_lowercase();
        let attrs = attributes(&c[2]);
        if pred(&tag, &attrs) {
            let after = c.get(0).unwrap().end();
            let close = format!("</{tag}");
            let end = html[after..].to_ascii_lowercase().find(&close)? + after;
            return Some(html[after..end].to_string());
        }
    }
    None
}

/// The inner markup of the element with `id="<id>"`.
pub fn inner_html_by_id(html: &str, id: &str) -> Option<String> {
    inner_html_where(html, |_, attrs| attr(attrs, "id") == Some(id))
}

/// The text of the element with `id="<id>"` (tags removed, entities decoded).
pub fn text_by_id(html: &str, id: &str) -> Option<String> {
    inner_html_by_id(html, id).map(|m| text_content(&m))
}

/// The text of the first element with class `class`.
pub fn text_by_class(html: &str, class: &str) -> Option<String> {
    inner_html_where(html, |_, attrs| {
        attr(attrs, "class").is_some_and(|c| c.split_ascii_whitespace().any(|c| c == class))
    })
    .map(|m| text_content(&m))
}

/// The text of every element with class `class`.
pub fn texts_by_class(html: &str, class: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = 0;
    while let Some(found) = {
        let rest = &html[offset..];
        TAG.captures_iter(rest).find_map(|c| {
            let attrs = attributes(&c[2]);
            attr(&attrs, "class")
                .is_some_and(|cl| cl.split_ascii_whitespace().any(|x| x == class))
                .then(|| (c[1].to_ascii_lowercase(), c.get(0).unwrap().end()))
        })
    } {
        let (tag, after) = found;
        let start = offset + after;
        let Some(end) = html[start..].to_ascii_lowercase().find(&format!("</{tag}")) else {
            break;
        };
        out.push(text_content(&html[start..start + end]));
        offset = start + end;
    }
    out
}

/// The `<title>` text.
pub fn title(html: &str) -> Option<String> {
    inner_html_where(html, |tag, _| tag == "title").map(|m| text_content(&m).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_text() {
        let base = Url::parse("http://127.0.0.1:1/realms/demo/interaction/abc").unwrap();
        let html = r#"<html><head><title>Sign-in</title></head><body>
<form autocomplete="off" action="/realms/demo/interaction/abc" method="post">
  <input type="hidden" name="prompt" value="login"/>
  <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
  <input required type="password" name="password" placeholder="and password" >
  <input type="checkbox" name="remember" value="yes">
  <button type="submit" class="login login-submit">Sign-in</button>
</form>
<form id="op.logoutForm" method="post" action="http://127.0.0.1:1/x/confirm"><input type="hidden" name="xsrf" value="a&amp;b"/></form>
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<p class="error big">Bad &lt;thing&gt;</p><pre id="claims">{&quot;a&quot;:1}</pre><span id="username">alice</span>
</body></html>"#;
        let forms = forms(html, &base);
        assert_eq!(forms.len(), 2);
        assert_eq!(
            forms[0].action.as_str(),
            "http://127.0.0.1:1/realms/demo/interaction/abc"
        );
        assert_eq!(forms[0].method, "POST");
        assert_eq!(
            forms[0].fields,
            vec![
                ("prompt".into(), "login".into()),
                ("login".into(), "".into()),
                ("password".into(), "".into())
            ]
        );
        assert_eq!(forms[1].get("xsrf"), Some("a&b"));
        assert_eq!(forms[1].buttons[0].name.as_deref(), Some("logout"));
        assert_eq!(forms[1].fields_clicking("logout").last().unwrap().1, "yes");
        assert_eq!(text_by_class(html, "error").as_deref(), Some("Bad <thing>"));
        assert_eq!(text_by_id(html, "claims").as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(text_by_id(html, "username").as_deref(), Some("alice"));
        assert_eq!(title(html).as_deref(), Some("Sign-in"));
        assert_eq!(texts_by_class(html, "login"), vec!["Sign-in".to_string()]);
    }
}
