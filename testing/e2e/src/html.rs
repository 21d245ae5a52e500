//! What the tests read from pages, with `scraper` (html5ever) doing the parsing:
//! forms as a browser submits them (also controls tied to a form by its `form="id"`
//! attribute), the text of elements found by id or class, links.

use scraper::{ElementRef, Html};
use url::Url;

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
    /// The successful controls: text, password, hidden, email, checked checkboxes and
    /// radios, textareas; those inside the form first, in document order, then those
    /// tied to it by `form="id"`.
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

/// Every element of the document, in document order.
fn elements(document: &Html) -> impl Iterator<Item = ElementRef<'_>> {
    document
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
}

fn is_control(element: &ElementRef<'_>) -> bool {
    matches!(
        element.value().name(),
        "input" | "button" | "textarea" | "select"
    )
}

/// Every form of `html`, with relative actions resolved against `base`.
pub fn forms(html: &str, base: &Url) -> Vec<Form> {
    let document = Html::parse_document(html);
    elements(&document)
        .filter(|e| e.value().name() == "form")
        .map(|form_element| {
            let tag = form_element.value();
            let action = match tag.attr("action") {
                Some(a) if !a.is_empty() => base.join(a).unwrap_or_else(|e| {
                    panic!("form action {a:?} does not resolve against {base}: {e}")
                }),
                _ => base.clone(),
            };
            let mut form = Form {
                id: tag.id().map(str::to_string),
                action,
                method: tag.attr("method").unwrap_or("get").to_ascii_uppercase(),
                fields: Vec::new(),
                buttons: Vec::new(),
                attributes: tag
                    .attrs()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            };
            // Inside the form: controls naming another form with form="..." belong there.
            let inside = form_element
                .descendants()
                .filter_map(ElementRef::wrap)
                .filter(|e| is_control(e) && e.value().attr("form").is_none());
            for control in inside {
                add_control(&mut form, &control);
            }
            if let Some(id) = form.id.clone() {
                let tied = elements(&document)
                    .filter(|e| is_control(e) && e.value().attr("form") == Some(id.as_str()));
                for control in tied {
                    add_control(&mut form, &control);
                }
            }
            form
        })
        .collect()
}

/// Adds what `control` contributes to a submission of `form`.
fn add_control(form: &mut Form, control: &ElementRef<'_>) {
    let tag = control.value();
    if tag.attr("disabled").is_some() {
        return;
    }
    let name = tag.attr("name").map(str::to_string);
    let value = tag.attr("value").unwrap_or("").to_string();
    let kind = tag.attr("type").map(str::to_ascii_lowercase);
    match tag.name() {
        "button" => {
            if kind.as_deref().unwrap_or("submit") == "submit" {
                form.buttons.push(Button {
                    name,
                    value,
                    text: text_of(control),
                });
            }
        }
        "textarea" => {
            if let Some(name) = name {
                form.fields.push((name, text_of(control)));
            }
        }
        "select" => {} // none in these pages
        _ => match kind.as_deref().unwrap_or("text") {
            "submit" | "image" => form.buttons.push(Button {
                name,
                text: value.clone(),
                value,
            }),
            "button" | "reset" | "file" => {}
            "checkbox" | "radio" => {
                if let (Some(name), Some(_)) = (name, tag.attr("checked")) {
                    let value = tag.attr("value").unwrap_or("on").to_string();
                    form.fields.push((name, value));
                }
            }
            _ => {
                if let Some(name) = name {
                    form.fields.push((name, value));
                }
            }
        },
    }
}

/// The text of an element (its text nodes joined, not trimmed).
fn text_of(element: &ElementRef<'_>) -> String {
    element.text().collect()
}

/// The text of the element with `id="<id>"`.
pub fn text_by_id(html: &str, id: &str) -> Option<String> {
    let document = Html::parse_document(html);
    elements(&document)
        .find(|e| e.value().id() == Some(id))
        .map(|e| text_of(&e))
}

/// The text of every element with class `class`, in document order.
pub fn texts_by_class(html: &str, class: &str) -> Vec<String> {
    let document = Html::parse_document(html);
    elements(&document)
        .filter(|e| e.value().classes().any(|c| c == class))
        .map(|e| text_of(&e))
        .collect()
}

/// The text of the first element with class `class`.
pub fn text_by_class(html: &str, class: &str) -> Option<String> {
    texts_by_class(html, class).into_iter().next()
}

/// The `<title>` text, trimmed.
pub fn title(html: &str) -> Option<String> {
    let document = Html::parse_document(html);
    elements(&document)
        .find(|e| e.value().name() == "title")
        .map(|e| text_of(&e).trim().to_string())
}

/// The `href` of every link (`<a href>`), as written (entities decoded).
pub fn hrefs(html: &str) -> Vec<String> {
    let document = Html::parse_document(html);
    elements(&document)
        .filter(|e| e.value().name() == "a")
        .filter_map(|e| e.value().attr("href").map(str::to_string))
        .collect()
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
<a href="/x/abort?a=1&amp;b=2">Cancel</a>
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
        assert_eq!(forms[0].buttons[0].text, "Sign-in");
        assert_eq!(forms[1].get("xsrf"), Some("a&b"));
        assert_eq!(forms[1].buttons[0].name.as_deref(), Some("logout"));
        assert_eq!(forms[1].fields_clicking("logout").last().unwrap().1, "yes");
        assert_eq!(text_by_class(html, "error").as_deref(), Some("Bad <thing>"));
        assert_eq!(text_by_id(html, "claims").as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(text_by_id(html, "username").as_deref(), Some("alice"));
        assert_eq!(title(html).as_deref(), Some("Sign-in"));
        assert_eq!(texts_by_class(html, "login"), vec!["Sign-in".to_string()]);
        assert_eq!(hrefs(html), vec!["/x/abort?a=1&b=2".to_string()]);
    }
}
