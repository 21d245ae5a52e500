//! The login transaction: state, nonce and PKCE verifier kept server-side
//! between `POST /login` and `GET /callback`. The short-lived login cookie
//! holds a [`Ticket`]; the record lives under `login:<id>`, sealed with the
//! ticket's secret like a session (see `ticket`), with only its creation time
//! readable.
//!
//! The flow is typed so that misuse does not compile: only a callback whose
//! `state` matched and that consumed the transaction (`PendingLogin::verify`)
//! yields a `VerifiedCallback`, and only that can be exchanged for tokens.
//!
//! Used once, even by two callbacks at the same moment on two replicas: a
//! callback consumes the transaction by incrementing `login-used:<id>`, and
//! only the increment that returns 1 goes on. The counter is kept until the
//! transaction's lifetime has passed (upkeep removes both then), and the
//! callback checks the lifetime again after its increment, so an increment
//! that comes after the counter was removed finds the transaction expired.

use super::dpop::DpopBinding;
use crate::log::log_line;
use crate::keys;
use crate::ports::{Clock, Random};
use crate::ports::{KeyValue, StoreError};
use crate::secret::random_token;
use crate::secret::{AuthorizationCode, LoginState, Nonce, PkceVerifier, constant_time_eq};
use crate::ticket::Ticket;
use crate::store_backend::StoreBackend;
use crate::upkeep::Upkeep;
use serde::{Deserialize, Serialize};

/// How long a user may take at the IdP, in seconds.
pub const LIFETIME: i64 = 600;

/// A login in progress: what the callback must match, sealed in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginTransaction {
    /// Ties the callback to this browser's login.
    pub state: LoginState,
    /// Ties the ID token to this login.
    pub nonce: Nonce,
    /// Proves to the token endpoint that we started this login.
    pub pkce_verifier: PkceVerifier,
    /// The scope asked for.
    pub scope: String,
    /// When the login started; it lasts [`LIFETIME`].
    pub created_at: i64,
    /// With `dpop = on`: the key the session's tokens will be bound to,
    /// made now so the code is bound to it too (`dpop_jkt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<DpopBinding>,
    /// Whether the parameters were pushed (RFC 9126), for `/user` to say.
    #[serde(default)]
    pub pushed: bool,
}

/// The record as stored.
#[derive(Serialize, Deserialize)]
struct Envelope {
    created_at: i64,
    check: String,
    sealed: String,
}

/// A new transaction: the ticket for the cookie and what to send to the IdP,
/// with a fresh DPoP key when `dpop`. Nothing is stored until `save`, so a
/// failure before the redirect (a refused push, say) leaves no trace.
pub fn new(
    rng: &dyn Random,
    clock: &dyn Clock,
    scope: String,
    dpop: bool,
) -> (Ticket, LoginTransaction) {
    let ticket = Ticket::generate(rng);
    let txn = LoginTransaction {
        state: LoginState::new(random_token(rng, 32)),
        nonce: Nonce::new(random_token(rng, 32)),
        pkce_verifier: PkceVerifier::new(random_token(rng, 32)),
        scope,
        created_at: clock.now(),
        dpop: dpop.then(|| DpopBinding::generate(rng)),
        pushed: false,
    };
    (ticket, txn)
}

/// Stores the transaction, registered with upkeep (with its one-use counter)
/// for when its lifetime has passed.
pub fn save(
    kv: &dyn KeyValue,
    clock: &dyn Clock,
    rng: &dyn Random,
    ticket: &Ticket,
    txn: &LoginTransaction,
) -> Result<(), StoreError> {
    let key = keys::login(ticket.id());
    let used = keys::login_used(ticket.id());
    Upkeep { kv, clock }.register(txn.created_at + LIFETIME, [key.as_str(), used.as_str()])?;
    let plain = serde_json::to_vec(txn).map_err(|e| StoreError(format!("encode: {e}")))?;
    let envelope = Envelope {
        created_at: txn.created_at,
        check: ticket.verifier(),
        sealed: ticket.seal(rng, &key, &plain),
    };
    let bytes = serde_json::to_vec(&envelope).map_err(|e| StoreError(format!("encode: {e}")))?;
    kv.set(&key, &bytes)
}

/// A transaction found for this browser, not yet checked against the callback.
pub struct PendingLogin {
    ticket: Ticket,
    txn: LoginTransaction,
}

/// A callback whose `state` matched its transaction; the transaction is consumed.
pub struct VerifiedCallback {
    /// The code from the callback.
    pub code: AuthorizationCode,
    /// The login it finishes.
    pub txn: LoginTransaction,
    /// The store's backend, as the consumed counter showed it.
    pub store: StoreBackend,
}

/// Why a callback does not belong to its login.
#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    /// No `state` parameter.
    Missing,
    /// Another login's `state`.
    Mismatch,
    /// Another callback consumed this transaction first.
    Used,
}

fn live(clock: &dyn Clock, created_at: i64) -> bool {
    (0..LIFETIME).contains(&(clock.now() - created_at))
}

impl PendingLogin {
    /// Finds the transaction for a cookie's ticket. Unknown, expired, unreadable
    /// and foreign transactions are all `None`; expired and damaged ones are deleted.
    pub fn find(
        kv: &dyn KeyValue,
        clock: &dyn Clock,
        ticket: &Ticket,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let key = keys::login(ticket.id());
        let Some(bytes) = kv.get(&key)? else {
            return Ok(None);
        };
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&bytes) else {
            kv.delete(&key)?;
            return Ok(None);
        };
        if !ticket.matches(&envelope.check) {
            return Ok(None);
        }
        let txn = ticket
            .open(&key, &envelope.sealed)
            .ok()
            .and_then(|plain| serde_json::from_slice::<LoginTransaction>(&plain).ok());
        match txn {
            Some(txn) if live(clock, txn.created_at) => Ok(Some(PendingLogin {
                ticket: ticket.clone(),
                txn,
            })),
            _ => {
                kv.delete(&key)?;
                Ok(None)
            }
        }
    }

    /// Checks `state` without consuming anything: a mismatch leaves the store as it was.
    pub fn check_state(&self, state: Option<&str>) -> Result<(), StateError> {
        match state {
            None => Err(StateError::Missing),
            Some(s) if constant_time_eq(s.as_bytes(), self.txn.state.expose().as_bytes()) => Ok(()),
            Some(_) => Err(StateError::Mismatch),
        }
    }

    /// Ends the transaction without a code (the IdP reported an error).
    pub fn abandon(self, kv: &dyn KeyValue) -> Result<(), StoreError> {
        kv.delete(&keys::login(self.ticket.id()))
    }

    /// Consumes the transaction (one use only, see the module's note) and
    /// pairs it with the code.
    pub fn verify(
        self,
        kv: &dyn KeyValue,
        clock: &dyn Clock,
        state: Option<&str>,
        code: AuthorizationCode,
    ) -> Result<Result<VerifiedCallback, StateError>, StoreError> {
        if let Err(e) = self.check_state(state) {
            return Ok(Err(e));
        }
        let used = keys::login_used(self.ticket.id());
        if kv.increment(&used, 1)? != 1 || !live(clock, self.txn.created_at) {
            return Ok(Err(StateError::Used));
        }
        // Read back once per login: its stored form names the store's backend.
        let store = match kv.get(&used) {
            Ok(value) => StoreBackend::of_counter(value.as_deref().unwrap_or_default()),
            Err(e) => {
                log_line!("callback: cannot read the login counter back: {e}");
                StoreBackend::Unknown
            }
        };
        // The counter alone keeps the transaction from a second use; this
        // only frees the space early.
        if let Err(e) = kv.delete(&keys::login(self.ticket.id())) {
            log_line!("callback: cannot delete a used login transaction: {e}");
        }
        Ok(Ok(VerifiedCallback {
            code,
            txn: self.txn,
            store,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryStore;
    use crate::testing::{CountingRandom, FixedClock};

    fn setup() -> (MemoryStore, FixedClock, Ticket, LoginTransaction) {
        let kv = MemoryStore::new();
        let clock = FixedClock::at(1000);
        let rng = CountingRandom::default();
        let (ticket, txn) = new(&rng, &clock, "openid".into(), false);
        save(&kv, &clock, &rng, &ticket, &txn).unwrap();
        (kv, clock, ticket, txn)
    }

    fn logins(kv: &MemoryStore) -> Vec<String> {
        kv.keys_with_prefix(keys::LOGIN_PREFIX)
    }

    #[test]
    fn values_are_fresh_and_distinct() {
        let (_, _, ticket, txn) = setup();
        let cookie = ticket.cookie_value();
        let values = [
            cookie.as_str(),
            txn.state.expose(),
            txn.nonce.expose(),
            txn.pkce_verifier.expose(),
        ];
        for (i, a) in values.iter().enumerate() {
            for b in &values[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn the_store_holds_no_flow_value_and_no_cookie() {
        let (kv, _, ticket, txn) = setup();
        let dump = format!("{:?}", kv.snapshot());
        let stored: String = kv
            .snapshot()
            .values()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        for secret in [
            ticket.cookie_value().split_once('.').unwrap().1,
            txn.state.expose(),
            txn.nonce.expose(),
            txn.pkce_verifier.expose(),
        ] {
            assert!(!stored.contains(secret) && !dump.contains(secret));
        }
        assert_eq!(logins(&kv), vec![keys::login(ticket.id())]);
    }

    #[test]
    fn verify_consumes_once() {
        let (kv, clock, ticket, txn) = setup();
        let p = PendingLogin::find(&kv, &clock, &ticket).unwrap().unwrap();
        let v = p
            .verify(
                &kv,
                &clock,
                Some(txn.state.expose()),
                AuthorizationCode::new("code"),
            )
            .unwrap()
            .unwrap();
        assert_eq!(v.txn, txn);
        assert!(
            PendingLogin::find(&kv, &clock, &ticket).unwrap().is_none(),
            "replay must fail"
        );
    }

    #[test]
    fn two_callbacks_that_both_found_the_transaction_consume_it_once() {
        let (kv, clock, ticket, txn) = setup();
        let first = PendingLogin::find(&kv, &clock, &ticket).unwrap().unwrap();
        let second = PendingLogin::find(&kv, &clock, &ticket).unwrap().unwrap();
        let state = Some(txn.state.expose());
        assert!(
            first
                .verify(&kv, &clock, state, AuthorizationCode::new("c"))
                .unwrap()
                .is_ok()
        );
        assert!(matches!(
            second
                .verify(&kv, &clock, state, AuthorizationCode::new("c"))
                .unwrap(),
            Err(StateError::Used)
        ));
    }

    #[test]
    fn a_consumption_after_the_lifetime_is_refused_even_without_its_counter() {
        let (kv, clock, ticket, txn) = setup();
        let late = PendingLogin::find(&kv, &clock, &ticket).unwrap().unwrap();
        clock.advance(LIFETIME);
        kv.delete(&keys::login_used(ticket.id())).unwrap();
        assert!(matches!(
            late.verify(
                &kv,
                &clock,
                Some(txn.state.expose()),
                AuthorizationCode::new("c")
            )
            .unwrap(),
            Err(StateError::Used)
        ));
    }

    #[test]
    fn wrong_or_missing_state_consumes_nothing() {
        let (kv, clock, ticket, _) = setup();
        let before = kv.snapshot();
        let p = PendingLogin::find(&kv, &clock, &ticket).unwrap().unwrap();
        assert_eq!(p.check_state(None), Err(StateError::Missing));
        let r = p
            .verify(
                &kv,
                &clock,
                Some("tampered"),
                AuthorizationCode::new("code"),
            )
            .unwrap();
        assert!(matches!(r, Err(StateError::Mismatch)));
        assert_eq!(kv.snapshot(), before);
    }

    #[test]
    fn another_secret_finds_nothing_and_removes_nothing() {
        let (kv, clock, ticket, _) = setup();
        let forged = format!(
            "{}.{}",
            ticket.id().as_str(),
            Ticket::generate(&CountingRandom(std::cell::Cell::new(99)))
                .cookie_value()
                .split_once('.')
                .unwrap()
                .1
        );
        let before = kv.snapshot();
        let forged = Ticket::parse(&forged).unwrap();
        assert!(PendingLogin::find(&kv, &clock, &forged).unwrap().is_none());
        assert_eq!(kv.snapshot(), before);
    }

    #[test]
    fn expires() {
        let (kv, clock, ticket, _) = setup();
        clock.advance(LIFETIME);
        assert!(PendingLogin::find(&kv, &clock, &ticket).unwrap().is_none());
        assert!(logins(&kv).is_empty());
    }

    #[test]
    fn debug_does_not_leak() {
        let (_, _, _, txn) = setup();
        let shown = format!("{txn:?}");
        assert!(!shown.contains(txn.state.expose()));
        assert!(!shown.contains(txn.pkce_verifier.expose()));
    }
}
