//! What a handler is given: the checked configuration, the platform, and the
//! services built from them (sessions, upkeep, the IdP's metadata and keys).

use crate::config::Config;
use crate::cookies;
use crate::log::log_line;
use crate::oidc::OidcError;
use crate::oidc::discovery::{self, ProviderMetadata};
use crate::oidc::id_token::{self, Expectations, ValidIdToken};
use crate::oidc::jwks::KeySet;
use crate::oidc::token;
use crate::pages::Header;
use crate::ports::{Clock, HttpClient, KeyValue, Random, StoreError};
use crate::request::Request;
use crate::session::{Lifetimes, Session, Sessions};
use crate::ticket::Ticket;
use crate::upkeep::Upkeep;

/// Everything a handler needs: the checked configuration and the platform.
pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) kv: &'a dyn KeyValue,
    pub(crate) http: &'a dyn HttpClient,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) rng: &'a dyn Random,
}

impl Ctx<'_> {
    pub(crate) fn sessions(&self) -> Sessions<'_> {
        Sessions {
            kv: self.kv,
            clock: self.clock,
            rng: self.rng,
            lifetimes: Lifetimes {
                idle: self.cfg.session_idle_secs,
                absolute: self.cfg.session_absolute_secs,
            },
            lock_hold: self.lock_hold(),
        }
    }

    /// Seconds a refresh may hold its session's lock: the token call and a
    /// key fetch, each bounded by `idp_timeout`, and a margin for clock skew.
    pub(crate) fn lock_hold(&self) -> i64 {
        2 * self.cfg.idp_timeout_secs as i64 + 5
    }

    pub(crate) fn upkeep(&self) -> Upkeep<'_> {
        Upkeep {
            kv: self.kv,
            clock: self.clock,
        }
    }

    pub(crate) fn cookie_name(&self, base: &str) -> String {
        cookies::name(base, self.cfg.https())
    }

    pub(crate) fn clear_cookie(&self, base: &str) -> String {
        cookies::clear(&self.cookie_name(base), self.cfg.https())
    }

    /// The session ticket from the cookie, if it is well-formed (no store access).
    pub(crate) fn session_ticket(&self, req: &Request) -> Option<Ticket> {
        cookies::read(
            req.headers_named("cookie"),
            &self.cookie_name(cookies::SESSION),
        )
    }

    /// The caller's live session: at most one store read.
    pub(crate) fn current_session(
        &self,
        req: &Request,
    ) -> Result<Option<(Ticket, Session)>, StoreError> {
        let Some(ticket) = self.session_ticket(req) else {
            return Ok(None);
        };
        Ok(self.sessions().load(&ticket)?.map(|s| (ticket, s)))
    }

    /// The caller's live session for a page view: [`Ctx::current_session`],
    /// then the visit is recorded when due ([`Sessions::touch`]). A failure to
    /// record it is logged, not shown: the page can still be served.
    pub(crate) fn visit_session(
        &self,
        req: &Request,
    ) -> Result<Option<(Ticket, Session)>, StoreError> {
        let Some((id, mut session)) = self.current_session(req)? else {
            return Ok(None);
        };
        if let Err(e) = self.sessions().touch(&id, &mut session) {
            log_line!("session: cannot record activity: {e}");
        }
        Ok(Some((id, session)))
    }

    pub(crate) fn header(&self) -> Header<'_> {
        Header {
            title: &self.cfg.client_title,
            pod: &self.cfg.pod_name,
            now: self.clock.now(),
        }
    }

    /// What a token, refresh or revocation request needs of the platform.
    pub(crate) fn token_caller(&self) -> token::Caller<'_> {
        token::Caller {
            http: self.http,
            clock: self.clock,
            rng: self.rng,
        }
    }

    pub(crate) fn discovery(&self) -> Result<ProviderMetadata, OidcError> {
        discovery::load(self.kv, self.http, self.clock, self.cfg)
    }

    pub(crate) fn keys(&self) -> KeySet<'_> {
        KeySet {
            kv: self.kv,
            http: self.http,
            clock: self.clock,
            ttl: self.cfg.discovery_ttl_secs,
            backchannel: false,
        }
    }

    /// The keys for back-channel logout, with its own refetch budget.
    pub(crate) fn backchannel_keys(&self) -> KeySet<'_> {
        KeySet {
            backchannel: true,
            ..self.keys()
        }
    }

    /// Validates an ID token against the IdP's keys (refetched once on an
    /// unknown key): at login with the transaction's nonce, at refresh without.
    pub(crate) fn validate_id_token(
        &self,
        meta: &ProviderMetadata,
        raw: &str,
        nonce: Option<&str>,
    ) -> Result<ValidIdToken, OidcError> {
        let expect = Expectations {
            issuer: &self.cfg.issuer,
            client_id: &self.cfg.client_id,
            nonce,
            now: self.clock.now(),
        };
        self.keys().verify_with(&meta.jwks_uri, |keys| {
            id_token::validate(raw, keys, &expect)
        })
    }
}
