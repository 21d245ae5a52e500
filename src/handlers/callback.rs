//! `GET /callback`: the IdP sends the browser back with a code (or an error).
//!
//! Checks run before anything is consumed, so a tampered or replayed callback
//! leaves the store as it was. After the code exchange the ID token is fully
//! validated, userinfo cross-checked, and a brand-new session created.

use super::context::Ctx;
use super::username::username;
use crate::cookies;
use crate::jwt_view::JwtView;
use crate::oidc::discovery::ProviderMetadata;
use crate::oidc::transaction::{PendingLogin, StateError, VerifiedCallback};
use crate::oidc::{OidcError, token, userinfo};
use crate::ports::StoreError;
use crate::request::{Params, Request};
use crate::response::{AppError, AppResult, Response};
use crate::secret::{AuthorizationCode, IdToken};
use crate::session::{Identity, Origin, PrettyJson, Tokens};
use crate::session_index;
use crate::truncate::truncate;

const UNKNOWN_STATE: &str =
    "Unknown login state: this login was not started here, has expired, or was already completed.";

/// Checks the callback, exchanges its code and starts the session: each
/// step below either passes or ends the request with its page.
pub(crate) fn finish(req: &Request, ctx: &Ctx) -> AppResult {
    let params = req.query_params()?;
    let login_cookie = ctx.clear_cookie(cookies::LOGIN);
    let pending = pending_login(req, ctx, &params, &login_cookie)?;
    let meta = ctx.discovery()?;
    check_issuer(ctx, &meta, &params)?;
    if let Some(error) = params.get("error") {
        pending.abandon(ctx.kv)?;
        return Err(idp_refused(error, &params).with_cookie(login_cookie));
    }
    let verified = consume(ctx, pending, &params, &login_cookie)?;
    // From here on the transaction is consumed; every failure also clears its cookie.
    let fail = |e: AppError| e.with_cookie(login_cookie.clone());
    let (identity, tokens) = sign_in(ctx, &meta, &verified).map_err(fail)?;
    let origin = Origin {
        created_by: ctx.cfg.pod_name.clone(),
        store: verified.store,
        client_auth: meta
            .client_auth(ctx.cfg.client_auth.chosen())
            .map_or_else(|_| String::new(), |m| m.name().to_owned()),
        pushed: verified.txn.pushed,
    };
    let session_cookie =
        start_session(req, ctx, identity, tokens, origin).map_err(|e| fail(e.into()))?;
    Ok(Response::redirect("/user")
        .with_cookie(session_cookie)
        .with_cookie(login_cookie))
}

/// The login this browser started, if its cookie names one and `state` is its state.
fn pending_login(
    req: &Request,
    ctx: &Ctx,
    params: &Params,
    login_cookie: &str,
) -> Result<PendingLogin, AppError> {
    let unknown = |log: &str| {
        AppError::bad_request(UNKNOWN_STATE)
            .with_cookie(login_cookie.to_owned())
            .logged(log)
    };
    let Some(login_ticket) = cookies::read(
        req.headers_named("cookie"),
        &ctx.cookie_name(cookies::LOGIN),
    ) else {
        return Err(unknown("callback: no login cookie"));
    };
    let Some(pending) = PendingLogin::find(ctx.kv, ctx.clock, &login_ticket)? else {
        return Err(unknown("callback: unknown login state"));
    };
    match pending.check_state(params.get("state").map(String::as_str)) {
        Ok(()) => Ok(pending),
        Err(StateError::Missing) => Err(AppError::bad_request(
            "The callback has no state parameter.",
        )),
        Err(StateError::Mismatch | StateError::Used) => Err(AppError::bad_request(
            "The state parameter does not match this login.",
        )
        .logged("callback: state mismatch")),
    }
}

/// RFC 9207: the authorization response must come from our issuer.
fn check_issuer(ctx: &Ctx, meta: &ProviderMetadata, params: &Params) -> Result<(), AppError> {
    match params.get("iss") {
        Some(iss) if *iss != ctx.cfg.issuer => Err(AppError::bad_request(
            "The response comes from a different issuer (iss) than the configured one.",
        )
        .logged("callback: iss mismatch")),
        None if meta.authorization_response_iss_parameter_supported == Some(true) => {
            Err(AppError::bad_request(
                "The response lacks the iss parameter its issuer promises (RFC 9207).",
            ))
        }
        _ => Ok(()),
    }
}

/// The page for an `error` the IdP sent back instead of a code.
fn idp_refused(error: &str, params: &Params) -> AppError {
    let description = params
        .get("error_description")
        .map(|d| format!(": {}", truncate(d, 300)))
        .unwrap_or_default();
    let status = if error == "access_denied" { 403 } else { 400 };
    let refused = AppError::new(
        status,
        format!(
            "The identity provider reported `{}`{description}",
            truncate(error, 60)
        ),
    );
    match error {
        // RFC 9126: the pushed request lives a minute or so at the IdP.
        "invalid_request_uri" => refused.with_next(
            "The sign-in request expired at the identity provider before the browser got there; log in again to start a fresh one.",
        ),
        _ => refused,
    }
}

/// Takes the code and consumes the login: at most one callback gets this far.
fn consume(
    ctx: &Ctx,
    pending: PendingLogin,
    params: &Params,
    login_cookie: &str,
) -> Result<VerifiedCallback, AppError> {
    let Some(code) = params
        .get("code")
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return Err(AppError::bad_request(
            "The callback has no authorization code.",
        ));
    };
    match pending.verify(
        ctx.kv,
        ctx.clock,
        params.get("state").map(String::as_str),
        AuthorizationCode::new(code.clone()),
    )? {
        Ok(verified) => Ok(verified),
        Err(StateError::Used) => Err(AppError::bad_request(UNKNOWN_STATE)
            .with_cookie(login_cookie.to_owned())
            .logged("callback: login already completed")),
        Err(_) => Err(AppError::bad_request(
            "The state parameter does not match this login.",
        )),
    }
}

/// Exchanges the code, validates the ID token and cross-checks userinfo:
/// who logged in, and their tokens.
fn sign_in(
    ctx: &Ctx,
    meta: &ProviderMetadata,
    verified: &VerifiedCallback,
) -> Result<(Identity, Tokens), AppError> {
    let binding = verified.txn.dpop.clone();
    let key = binding.as_ref().map(|b| b.signing_key()).transpose()?;
    let caller = ctx.token_caller();
    let tokens = token::exchange_code(&caller, ctx.cfg, meta, verified, key.as_ref())?;
    let Some(raw_id_token) = tokens.id_token.clone() else {
        return Err(OidcError::BadResponse("the token response has no id_token".into()).into());
    };
    let valid = ctx.validate_id_token(meta, &raw_id_token, Some(verified.txn.nonce.expose()))?;
    let info = match &meta.userinfo_endpoint {
        Some(endpoint) => Some(userinfo::fetch(
            &caller,
            endpoint,
            tokens.access_token.expose(),
            &valid.sub,
            key.as_ref(),
        )?),
        None => None,
    };
    let id_token_expires_at = valid.claims.get("exp").and_then(serde_json::Value::as_i64);
    let identity = Identity {
        username: username(&valid.claims, info.as_ref(), &valid.sub),
        iss: valid.iss,
        sub: valid.sub,
        sid: valid.sid,
        claims: PrettyJson::new(&valid.claims),
        userinfo: info.as_ref().map(PrettyJson::new),
    };
    let tokens = Tokens {
        id_token: IdToken::new(raw_id_token),
        access_token_jwt: JwtView::decode(tokens.access_token.expose()),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        token_type: if binding.is_some() { "DPoP" } else { "Bearer" }.into(),
        access_token_expires_at: tokens.expires_in.map(|s| ctx.clock.now().saturating_add(s)),
        id_token_expires_at,
        scope: tokens.scope.or(Some(verified.txn.scope.clone())),
        dpop: binding,
    };
    Ok((identity, tokens))
}

/// Stores a brand-new session, listed in the back-channel index; returns its cookie.
fn start_session(
    req: &Request,
    ctx: &Ctx,
    identity: Identity,
    tokens: Tokens,
    origin: Origin,
) -> Result<String, StoreError> {
    // A session cookie from before the login is never reused (no fixation).
    let sessions = ctx.sessions();
    if let Some(old) = ctx.session_ticket(req)
        && let Some(previous) = sessions.load(&old)?
    {
        sessions.end(old.id(), previous.created_at)?;
    }
    let (ticket, session) = sessions.create(identity, tokens, origin)?;
    // Without its index entries a back-channel logout could not find the session:
    // better no session than one that cannot be ended.
    let index = session.identity.index_keys();
    if let Err(e) = session_index::add(ctx.kv, &index, ticket.id()) {
        let _ = sessions.end(ticket.id(), session.created_at);
        return Err(e);
    }
    Ok(cookies::set(
        &ctx.cookie_name(cookies::SESSION),
        &ticket.cookie_value(),
        sessions.cookie_max_age(&session),
        ctx.cfg.https(),
    ))
}
