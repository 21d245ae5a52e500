//! Walking the component's pages as a browser, per its contract: GET / shows a form
//! posting `scope` to /login; POST /login answers 303 to the IdP; GET /callback answers
//! 303 to /user; /user shows the user and forms posting to /refresh and /logout with a
//! hidden `csrf` field; POST /logout answers 303 to the IdP's end-session endpoint.

use crate::browser::{Browser, Response};
use crate::idp::{Idp, LoginOptions};

/// Every step of a sign-in through the app.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// GET / (the login page).
    pub login_page: Response,
    /// POST /login (303 to the IdP).
    pub to_idp: Response,
    /// The IdP's redirect back to /callback.
    pub to_callback: Response,
    /// GET /callback (303 to /user).
    pub callback: Response,
    /// GET /user.
    pub user_page: Response,
}

/// Signs `opts.login` in through the app at `app_base` (no trailing slash): submits the
/// login form of `/` (with `scope` replaced when given), lets the driver pass the IdP,
/// and follows the redirects back to /user. Asserts the statuses of the contract.
pub fn sign_in(
    browser: &mut Browser,
    app_base: &str,
    idp: &Idp,
    opts: &LoginOptions,
    scope: Option<&str>,
) -> SignIn {
    let app_base = app_base.trim_end_matches('/');
    let login_page = browser.get(&format!("{app_base}/"));
    login_page.assert_status(200);
    let mut form = login_page.form_with_action_path("/login");
    if let Some(scope) = scope {
        form.set("scope", scope);
    }
    let to_idp = browser.submit(&login_page, &form);
    to_idp.assert_redirect(303, idp.issuer());
    let (to_callback, _) = idp.login_with(browser, &to_idp, opts);
    to_callback.assert_redirect(303, &format!("{app_base}/callback"));
    let callback = browser.follow(&to_callback);
    callback.assert_redirect(303, &format!("{app_base}/user"));
    let user_page = browser.follow(&callback);
    user_page.assert_status(200);
    SignIn {
        login_page,
        to_idp,
        to_callback,
        callback,
        user_page,
    }
}

/// What the /user page shows.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub username: Option<String>,
    pub id_token: Option<String>,
    pub claims: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    /// The `csrf` field of the logout form.
    pub csrf: Option<String>,
}

impl UserPage {
    pub fn parse(page: &Response) -> UserPage {
        let text = |id: &str| page.text_by_id(id).map(|t| t.trim().to_string());
        let csrf = page
            .forms()
            .into_iter()
            .find(|f| f.action.path() == "/logout")
            .and_then(|f| f.get("csrf").map(str::to_string));
        UserPage {
            username: text("username"),
            id_token: text("id-token"),
            claims: text("claims"),
            access_token: text("access-token"),
            refresh_token: text("refresh-token"),
            csrf,
        }
    }

    /// The claims `<pre>` as JSON.
    pub fn claims_json(&self) -> serde_json::Value {
        let claims = self.claims.as_deref().expect("the page shows claims");
        serde_json::from_str(claims)
            .unwrap_or_else(|e| panic!("the claims are not JSON ({e}): {claims}"))
    }
}

/// The /user page of a complete sign-in of `login` with `openid profile email
/// offline_access`: it names the user, shows what userinfo said (the test IdP's
/// `<login>@example.test`) and holds a refresh token.
pub fn assert_full_user_page(user_page: &Response, login: &str) -> UserPage {
    let page = UserPage::parse(user_page);
    assert_eq!(page.username.as_deref(), Some(login), "the username");
    let userinfo = user_page
        .text_by_id("userinfo")
        .expect("the page shows what userinfo said");
    assert!(
        userinfo.contains(&format!("{login}@example.test")),
        "{userinfo}"
    );
    assert!(
        page.refresh_token.is_some(),
        "offline_access gave a refresh token"
    );
    page
}

/// Submits the /user page's logout form, lets the driver confirm at the IdP, and
/// returns the IdP's redirect to the post-logout URI (not yet followed).
pub fn sign_out(browser: &mut Browser, user_page: &Response, idp: &Idp) -> Response {
    let form = user_page.form_with_action_path("/logout");
    let to_idp = browser.submit(user_page, &form);
    to_idp.assert_redirect(303, idp.issuer());
    idp.logout(browser, &to_idp)
}

/// Submits the /user page's refresh form and follows it back to /user (303,
/// then 200); the new page, whose access token must differ from the old one's.
pub fn refresh(browser: &mut Browser, user_page: &Response, app_base: &str) -> Response {
    let app_base = app_base.trim_end_matches('/');
    let refreshed = browser.submit(user_page, &user_page.form_with_action_path("/refresh"));
    refreshed.assert_redirect(303, &format!("{app_base}/user"));
    let after = browser.follow(&refreshed);
    after.assert_status(200);
    assert_ne!(
        UserPage::parse(&after).access_token,
        UserPage::parse(user_page).access_token,
        "a refresh brings a new access token"
    );
    after
}

/// [`sign_out`], followed to its end: back at the app's `/`, and `/user` then
/// sends the browser to `/` (the session is gone).
pub fn sign_out_completely(browser: &mut Browser, user_page: &Response, idp: &Idp, app_base: &str) {
    let app_base = app_base.trim_end_matches('/');
    let back = sign_out(browser, user_page, idp);
    let end = browser.follow_to_end(back);
    assert_eq!(end.url.as_str(), format!("{app_base}/"));
    browser
        .get(&format!("{app_base}/user"))
        .assert_redirect(303, &format!("{app_base}/"));
}
