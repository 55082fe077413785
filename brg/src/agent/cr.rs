//! The Connection Request server (TR-069 3.2.2): the ACS GETs
//! `http://<cpe>:<port>/<random path>`, authenticates with HTTP Digest against
//! `ManagementServer.ConnectionRequestUsername/Password`, and the CPE opens a session with
//! `6 CONNECTION REQUEST`.
//!
//! | request                                    | answer |
//! |--------------------------------------------|--------|
//! | other path                                 | 404    |
//! | not GET (or HEAD)                          | 405    |
//! | a body (CR requests have none)             | 413 when over 1 KiB, else ignored |
//! | no, wrong or stale credentials             | 401 with fresh `Digest` challenges (SHA-256 and MD5, `qop=auth`) |
//! | a nonce already used once (a replay)       | 401, `stale=true`                      |
//! | authenticated, outside the rate-limit window | 200, and the agent is told at once |
//! | authenticated, within the window           | 200, and the agent is told when the window ends (one session for all the requests of a window: none is lost) |
//! | authenticated, too many used nonces        | 503 (`Retry-After`)                    |
//!
//! # Rate limit
//! Sessions opened by connection requests are at least `min_interval` apart
//! (`--cr-min-interval`). TR-069 3.2.2 lets a CPE refuse requests over its limit with 503,
//! but an ACS takes a 503 for "device offline" and leaves its task to the next periodic
//! Inform, minutes later. So a request inside the window is remembered instead: it is
//! answered 200 and one session opens when the window ends (TR-069 allows one session for
//! several requests). Only authenticated requests get that far, so the limit still bounds
//! what anyone without the password can cause.
//!
//! # Challenges
//! A 401 carries two `WWW-Authenticate` headers, SHA-256 first and MD5 last (RFC 7616
//! section 3.7: the preferred algorithm first; many ACSes know MD5 only, as RFC 2617 and
//! the TR-069 Amendment 6 minimum, which they find last when they keep the last challenge).
//! An answer is checked by the length of its `response` (64 hex digits: SHA-256, 32: MD5),
//! whatever `algorithm=` it names: an ACS that joins the headers and keeps the first
//! `algorithm=` answers with an MD5 hash labelled SHA-256, and is let in (the hash still
//! proves the password; nothing weaker than MD5 is accepted).
//!
//! At most [`MAX_CONNECTIONS`] connections are served at once (more are closed when
//! accepted); a client has 5 s to send its request headers and 30 s for the connection.
//!
//! # Nonces
//! A challenge costs no memory: its nonce carries when it was issued and a random salt,
//! authenticated with HMAC-SHA-256 under a key drawn at random when brgd starts
//! ([`NonceKey`]). An answer is checked by recomputing the HMAC: a nonce is accepted for
//! [`NONCE_LIFETIME`] after it was issued, once. Only nonces that authenticated a request
//! are remembered (to refuse a replay), until they expire, at most [`MAX_USED_NONCES`]:
//! nobody without the password can add one, so a flood of unauthenticated requests cannot
//! push the ACS's nonce out (it could with the table of 64 issued nonces this replaced).
//!
//! ```text
//!  nonce = hex( issued: u64 BE seconds since start | salt: 8 random bytes |
//!               HMAC-SHA-256(key, issued | salt)[..16] )                      64 hex digits
//! ```
//!
//! The nonce is not bound to the client's address: an ACS cluster may send the challenged
//! request and its answer from different addresses (one per node behind its NAT).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::RngExt as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use super::digest::{self, Algorithm, DigestCredentials};

/// How long a nonce we issued is accepted (an ACS answers its challenge at once; a few WAN
/// round trips at most).
pub const NONCE_LIFETIME: Duration = Duration::from_secs(60);
/// Most used nonces remembered (each until it expires). Only authenticated requests add
/// one, and they are rate limited; past this, requests are answered 503 until some expire.
pub const MAX_USED_NONCES: usize = 256;
/// Least time between two warnings about wrong credentials (the others are counted).
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// Most connections served at once. A connection request is two short requests, one
/// connection at a time; past this, new connections are closed as soon as they are
/// accepted, so idle connections (a slowloris) cost brgd at most this many descriptors and
/// tasks, and its sessions and storage still find descriptors.
pub const MAX_CONNECTIONS: usize = 64;
/// The realm of our challenges.
pub const REALM: &str = "nerg-brgd";
/// Largest request body read (and ignored).
const MAX_BODY: usize = 1024;
/// The algorithms of a 401's `WWW-Authenticate` headers, in order (see the module docs).
pub const CHALLENGE_ORDER: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];
/// Time allowed for a client to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server checks requests against; the agent updates it when the model changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrSettings {
    /// `ConnectionRequestUsername`.
    pub username: String,
    /// `ConnectionRequestPassword`.
    pub password: String,
}

/// What a nonce is worth, by [`NonceKey::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Issued by this key, within its lifetime; it expires at the given time.
    Valid {
        /// When it stops being accepted.
        expires: Instant,
    },
    /// Issued by this key, but more than [`NONCE_LIFETIME`] ago.
    Expired,
    /// Not a nonce of this key (another process's, forged, or malformed).
    Invalid,
}

/// Issues and checks stateless nonces (see the module docs).
#[derive(Clone)]
pub struct NonceKey {
    mac: Hmac<Sha256>,
    /// Time zero of the nonces' timestamps: a monotonic clock, so wall-clock jumps neither
    /// revive nor expire nonces.
    epoch: Instant,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey").finish_non_exhaustive()
    }
}

impl NonceKey {
    /// A key of 32 random bytes, time zero now.
    pub fn random() -> Self {
        Self::new(rand::rng().random::<[u8; 32]>(), Instant::now())
    }

    /// A key from `secret`, with time zero `epoch`.
    pub fn new(secret: [u8; 32], epoch: Instant) -> Self {
        // HMAC takes keys of any length: `new_from_slice` cannot fail here.
        let mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(&secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts a 32-byte key"));
        Self { mac, epoch }
    }

    fn tag(&self, issued: u64, salt: &[u8]) -> [u8; 16] {
        let mut mac = self.mac.clone();
        mac.update(&issued.to_be_bytes());
        mac.update(salt);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    /// A nonce issued at `now`, with `salt` (random, so that two challenges in the same
    /// second differ).
    pub fn issue(&self, now: Instant, salt: [u8; 8]) -> String {
        let issued = now.saturating_duration_since(self.epoch).as_secs();
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(&issued.to_be_bytes());
        bytes.extend_from_slice(&salt);
        bytes.extend_from_slice(&self.tag(issued, &salt));
        digest::hex(&bytes)
    }

    /// What `nonce` is worth at `now`.
    pub fn check(&self, nonce: &str, now: Instant) -> NonceState {
        let Some(bytes) = unhex::<32>(nonce) else {
            return NonceState::Invalid;
        };
        let (head, tag) = bytes.split_at(16);
        let (issued, salt) = head.split_at(8);
        let issued = u64::from_be_bytes(issued.try_into().unwrap_or_default());
        if !digest::constant_time_eq(&self.tag(issued, salt), tag) {
            return NonceState::Invalid;
        }
        let age = now
            .saturating_duration_since(self.epoch)
            .as_secs()
            .checked_sub(issued);
        let expires = self.epoch + Duration::from_secs(issued) + NONCE_LIFETIME;
        match age {
            // From the future: only a forged one could be (the tag matched: it is not).
            None => NonceState::Invalid,
            Some(age) if age >= NONCE_LIFETIME.as_secs() => NonceState::Expired,
            Some(_) => NonceState::Valid { expires },
        }
    }
}

/// Lower-case or upper-case hex of exactly `N` bytes.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The nonces that authenticated a request, until they expire: a replay is refused.
#[derive(Debug, Default)]
pub struct UsedNonces {
    /// `(nonce, expires)`, oldest first.
    entries: VecDeque<(String, Instant)>,
}

/// What [`UsedNonces::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// First use: remembered.
    Fresh,
    /// Used before: a replay.
    Replayed,
    /// [`MAX_USED_NONCES`] unexpired nonces are remembered already.
    Full,
}

impl UsedNonces {
    /// Records the first use of a valid nonce (expiring at `expires`) at `now`.
    pub fn admit(&mut self, nonce: &str, expires: Instant, now: Instant) -> Admission {
        self.entries.retain(|(_, e)| *e > now);
        if self.entries.iter().any(|(n, _)| n == nonce) {
            return Admission::Replayed;
        }
        if self.entries.len() >= MAX_USED_NONCES {
            return Admission::Full;
        }
        self.entries.push_back((nonce.to_owned(), expires));
        Admission::Fresh
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[derive(Debug)]
struct Shared {
    settings: CrSettings,
    used: UsedNonces,
    last_accepted: Option<Instant>,
    /// A request was deferred to this time (the end of the rate-limit window).
    deferred: Option<Instant>,
    /// Wrong-credential warnings: when the last was logged, how many since were not.
    warned: Option<Instant>,
    unlogged: u64,
}

/// A running Connection Request server.
#[derive(Debug, Clone)]
pub struct CrServer {
    shared: Arc<Mutex<Shared>>,
    key: NonceKey,
    addr: SocketAddr,
    path: String,
}

impl CrServer {
    /// Serves on `listener` at `/<path>` until `cancel`; each accepted request sends `()` on
    /// `notify`. `min_interval` is the rate limit between accepted requests.
    pub fn spawn(
        listener: TcpListener,
        path: String,
        min_interval: Duration,
        notify: mpsc::Sender<()>,
        cancel: CancellationToken,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared {
            settings: CrSettings::default(),
            used: UsedNonces::default(),
            last_accepted: None,
            deferred: None,
            warned: None,
            unlogged: 0,
        }));
        let server = Self {
            shared,
            key: NonceKey::random(),
            addr,
            path,
        };
        let this = server.clone();
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        tokio::spawn(async move {
            let mut refused = 0u64;
            loop {
                let (stream, peer) = tokio::select! {
                    () = cancel.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!("connection request accept: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    // Closed at once (dropped); reported once per 1,000.
                    if refused.is_multiple_of(1000) {
                        tracing::warn!(
                            %peer,
                            refused = refused + 1,
                            "connection request server: {MAX_CONNECTIONS} connections open, closing new ones"
                        );
                    }
                    refused += 1;
                    continue;
                };
                let this = this.clone();
                let notify = notify.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let service = hyper::service::service_fn(move |req| {
                        let this = this.clone();
                        let notify = notify.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                this.handle(req, peer, min_interval, &notify).await,
                            )
                        }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(REQUEST_TIMEOUT)
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service);
                    // Bound the whole connection: a CR exchange is two short requests.
                    let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
                });
            }
        });
        Ok(server)
    }

    /// The address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The request path (`/` and the random part).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Replaces the credentials requests are checked against.
    pub fn set_settings(&self, settings: CrSettings) {
        if let Ok(mut s) = self.shared.lock() {
            s.settings = settings;
        }
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        min_interval: Duration,
        notify: &mpsc::Sender<()>,
    ) -> Response<Full<Bytes>> {
        if req.uri().path() != self.path {
            return plain(StatusCode::NOT_FOUND);
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            return r;
        }
        let method = req.method().as_str().to_owned();
        let uri = req
            .uri()
            .path_and_query()
            .map_or_else(|| self.path.clone(), |p| p.as_str().to_owned());
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Read (and discard) a body, bounded in size and time; a declared length over the
        // bound is refused before reading anything.
        if hyper::body::Body::size_hint(req.body()).lower() > MAX_BODY as u64 {
            return plain(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let body = tokio::time::timeout(
            REQUEST_TIMEOUT,
            http_body_util::Limited::new(req.into_body(), MAX_BODY).collect(),
        )
        .await;
        match body {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return plain(StatusCode::PAYLOAD_TOO_LARGE),
            Err(_) => return plain(StatusCode::REQUEST_TIMEOUT),
        }
        let verdict = self.check(authorization.as_deref(), &method, &uri, min_interval);
        match verdict {
            Verdict::Accepted => {
                tracing::info!(%peer, "connection request accepted");
                // A full channel already holds a pending request: several CRs, one session.
                let _ = notify.try_send(());
                plain(StatusCode::OK)
            }
            Verdict::Deferred { at } => {
                tracing::info!(%peer, "connection request accepted: its session opens when the rate-limit window ends");
                if let Some(at) = at {
                    let this = self.clone();
                    let notify = notify.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep_until(at.into()).await;
                        if let Ok(mut shared) = this.shared.lock() {
                            shared.deferred = None;
                            shared.last_accepted = Some(Instant::now());
                        }
                        let _ = notify.try_send(());
                    });
                }
                plain(StatusCode::OK)
            }
            Verdict::RateLimited => {
                tracing::info!(%peer, "connection request rate-limited");
                let mut r = plain(StatusCode::SERVICE_UNAVAILABLE);
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(min_interval.as_secs().max(1)),
                );
                r
            }
            Verdict::Challenge { stale } => {
                if authorization.is_some() && !stale {
                    self.warn_wrong_credentials(peer);
                }
                self.challenge(stale)
            }
        }
    }

    /// Logs a request with wrong credentials, at most once per [`WARN_INTERVAL`] (with
    /// how many were not logged): a flood of them does not flood the log.
    fn warn_wrong_credentials(&self, peer: SocketAddr) {
        let Ok(mut shared) = self.shared.lock() else {
            return;
        };
        let now = Instant::now();
        if shared
            .warned
            .is_some_and(|t| now.duration_since(t) < WARN_INTERVAL)
        {
            shared.unlogged += 1;
            return;
        }
        let unlogged = std::mem::take(&mut shared.unlogged);
        shared.warned = Some(now);
        tracing::warn!(%peer, unlogged, "connection request with wrong credentials");
    }

    fn check(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
        min_interval: Duration,
    ) -> Verdict {
        let challenge = Verdict::Challenge { stale: false };
        // No lock and no state for what is not an authentication attempt (a flood).
        let Some(creds) = authorization.and_then(DigestCredentials::parse) else {
            return challenge;
        };
        let now = Instant::now();
        let expires = match self.key.check(&creds.nonce, now) {
            NonceState::Valid { expires } => Some(expires),
            // Another run's nonce (brgd restarted), or a forged one.
            NonceState::Expired | NonceState::Invalid => None,
        };
        let Ok(mut shared) = self.shared.lock() else {
            return challenge;
        };
        if shared.settings.username.is_empty() {
            // TR-069 requires authentication; without configured credentials nobody can pass.
            tracing::warn!("connection request refused: ConnectionRequestUsername is empty");
            return challenge;
        }
        let right_user = digest::constant_time_eq(
            creds.username.as_bytes(),
            shared.settings.username.as_bytes(),
        );
        if !right_user
            || creds.realm != REALM
            || creds.uri != uri
            || !creds.verify(&shared.settings.password, method)
        {
            return challenge;
        }
        // Right password: a nonce expired, unknown or used is stale (RFC 7616 3.3): the
        // client answers the fresh challenge without asking anyone for the password.
        let Some(expires) = expires else {
            return Verdict::Challenge { stale: true };
        };
        match shared.used.admit(&creds.nonce, expires, now) {
            Admission::Fresh => {}
            Admission::Replayed => return Verdict::Challenge { stale: true },
            Admission::Full => return Verdict::RateLimited,
        }
        if shared.deferred.is_some() {
            // Already remembered: the session due at the end of the window serves it too.
            return Verdict::Deferred { at: None };
        }
        if let Some(last) = shared.last_accepted
            && now.duration_since(last) < min_interval
        {
            let at = last + min_interval;
            shared.deferred = Some(at);
            return Verdict::Deferred { at: Some(at) };
        }
        shared.last_accepted = Some(now);
        Verdict::Accepted
    }

    fn challenge(&self, stale: bool) -> Response<Full<Bytes>> {
        let mut rng = rand::rng();
        let nonce = self.key.issue(Instant::now(), rng.random());
        let opaque = digest::hex(&rng.random::<[u8; 8]>());
        let mut r = plain(StatusCode::UNAUTHORIZED);
        // Order matters to ACSes that join the headers: see the module docs.
        for alg in CHALLENGE_ORDER {
            let value = format!(
                "Digest realm=\"{REALM}\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\", opaque=\"{opaque}\"{}",
                alg.as_str(),
                if stale { ", stale=true" } else { "" }
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().append(header::WWW_AUTHENTICATE, v);
            }
        }
        r
    }
}

enum Verdict {
    Accepted,
    /// Authenticated within the rate-limit window: served by a session at `at` (`None`:
    /// by the one already due).
    Deferred {
        at: Option<Instant>,
    },
    RateLimited,
    Challenge {
        stale: bool,
    },
}

fn plain(status: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// A fresh random path for the Connection Request URL (128 bits, hex).
pub fn random_path() -> String {
    format!("/{}", digest::hex(&rand::rng().random::<[u8; 16]>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_checked_without_state() {
        let t0 = Instant::now();
        let key = NonceKey::new([7; 32], t0);
        let nonce = key.issue(t0 + Duration::from_secs(5), [1; 8]);
        assert_eq!(nonce.len(), 64);
        assert_ne!(
            nonce,
            key.issue(t0 + Duration::from_secs(5), [2; 8]),
            "salted"
        );
        let expires = t0 + Duration::from_secs(5) + NONCE_LIFETIME;
        for at in [5, 6, 64] {
            assert_eq!(
                key.check(&nonce, t0 + Duration::from_secs(at)),
                NonceState::Valid { expires },
                "{at} s"
            );
        }
        assert_eq!(
            key.check(&nonce, t0 + Duration::from_secs(65)),
            NonceState::Expired
        );
        // Issued "in the future" of the checking clock: not ours.
        assert_eq!(key.check(&nonce, t0), NonceState::Invalid);
        let other = NonceKey::new([8; 32], t0);
        assert_eq!(
            other.check(&nonce, t0 + Duration::from_secs(6)),
            NonceState::Invalid,
            "another process's key"
        );
        // Any change to the time, the salt or the tag is caught.
        for i in 0..64 {
            let mut forged = nonce.clone().into_bytes();
            forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
            let forged = String::from_utf8(forged).expect("hex");
            assert_eq!(
                key.check(&forged, t0 + Duration::from_secs(6)),
                NonceState::Invalid,
                "digit {i}"
            );
        }
        for junk in [
            "",
            "zz",
            &nonce[..62],
            &format!("{nonce}00"),
            &"g".repeat(64),
        ] {
            assert_eq!(key.check(junk, t0), NonceState::Invalid, "{junk:?}");
        }
        assert_eq!(
            key.check(&nonce.to_ascii_uppercase(), t0 + Duration::from_secs(6)),
            NonceState::Valid { expires }
        );
    }

    fn server(key: NonceKey) -> CrServer {
        CrServer {
            shared: Arc::new(Mutex::new(Shared {
                settings: CrSettings {
                    username: "acs".into(),
                    password: "secret".into(),
                },
                used: UsedNonces::default(),
                last_accepted: None,
                deferred: None,
                warned: None,
                unlogged: 0,
            })),
            key,
            addr: SocketAddr::from(([127, 0, 0, 1], 7547)),
            path: "/cr".into(),
        }
    }

    fn answer(nonce: &str, password: &str, cnonce: &str) -> String {
        let challenge = digest::DigestChallenge {
            realm: REALM.into(),
            nonce: nonce.into(),
            opaque: None,
            algorithm: Algorithm::Sha256,
            qop_auth: true,
        };
        digest::digest_authorization(&challenge, "acs", password, "GET", "/cr", 1, cnonce)
    }

    /// The verdicts of the server's check, from the nonce it issued to a replay.
    #[test]
    fn verdicts() {
        let key = NonceKey::random();
        let cr = server(key.clone());
        let check = |auth: Option<&str>| cr.check(auth, "GET", "/cr", Duration::ZERO);
        let stale = |v: Verdict| matches!(v, Verdict::Challenge { stale: true });
        let fresh = |v: Verdict| matches!(v, Verdict::Challenge { stale: false });
        assert!(fresh(check(None)));
        assert!(fresh(check(Some("Digest garbage"))));
        let nonce = key.issue(Instant::now(), [1; 8]);
        assert!(fresh(check(Some(&answer(&nonce, "wrong", "c1")))));
        assert!(matches!(
            check(Some(&answer(&nonce, "secret", "c1"))),
            Verdict::Accepted
        ));
        assert!(
            stale(check(Some(&answer(&nonce, "secret", "c2")))),
            "a nonce is used once"
        );
        let other = NonceKey::random().issue(Instant::now(), [1; 8]);
        assert!(
            stale(check(Some(&answer(&other, "secret", "c3")))),
            "another run's nonce with the right password: stale"
        );
        assert!(fresh(check(Some(&answer(&other, "wrong", "c3")))));
        // Rate limited: authenticated, but too soon after the last accepted: remembered
        // for the end of the window, once.
        let within = |cnonce: &str, salt: u8| {
            let nonce = key.issue(Instant::now(), [salt; 8]);
            cr.check(
                Some(&answer(&nonce, "secret", cnonce)),
                "GET",
                "/cr",
                Duration::from_secs(60),
            )
        };
        let Verdict::Deferred { at: Some(at) } = within("c4", 2) else {
            panic!("a request within the window is deferred");
        };
        assert!(at > Instant::now() + Duration::from_secs(50));
        assert!(
            matches!(within("c6", 4), Verdict::Deferred { at: None }),
            "a second one rides on the session already due"
        );
        // No user name configured: nobody passes.
        cr.set_settings(CrSettings::default());
        let nonce = key.issue(Instant::now(), [3; 8]);
        assert!(fresh(check(Some(&answer(&nonce, "", "c5")))));
    }

    #[test]
    fn used_nonces_refuse_replays_and_stay_bounded() {
        let t0 = Instant::now();
        let mut used = UsedNonces::default();
        let expires = t0 + NONCE_LIFETIME;
        assert_eq!(used.admit("a", expires, t0), Admission::Fresh);
        assert_eq!(used.admit("a", expires, t0), Admission::Replayed);
        for i in 1..MAX_USED_NONCES {
            assert_eq!(used.admit(&i.to_string(), expires, t0), Admission::Fresh);
        }
        assert_eq!(used.len(), MAX_USED_NONCES);
        assert_eq!(used.admit("one more", expires, t0), Admission::Full);
        assert_eq!(used.admit("a", expires, t0), Admission::Replayed);
        // Expired entries go: a nonce past its lifetime is refused by its key anyway.
        assert_eq!(
            used.admit("later", t0 + 2 * NONCE_LIFETIME, expires),
            Admission::Fresh
        );
        assert_eq!(used.len(), 1);
    }
}
