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
//! | authenticated, within the rate limit       | 200, and the agent is told             |
//! | authenticated, again within the rate limit | 503 (`Retry-After`)                    |
//!
//! Nonces are random, live [`NONCE_LIFETIME`] and are remembered only in a bounded table.

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

use super::digest::{self, Algorithm, DigestCredentials};

/// How long a nonce we issued is accepted.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// How many outstanding nonces are remembered (oldest forgotten first).
const MAX_NONCES: usize = 64;
/// The realm of our challenges.
pub const REALM: &str = "nerg-brgd";
/// Largest request body read (and ignored).
const MAX_BODY: usize = 1024;
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

#[derive(Debug)]
struct Shared {
    settings: CrSettings,
    nonces: VecDeque<(String, Instant)>,
    last_accepted: Option<Instant>,
}

/// A running Connection Request server.
#[derive(Debug, Clone)]
pub struct CrServer {
    shared: Arc<Mutex<Shared>>,
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
            nonces: VecDeque::new(),
            last_accepted: None,
        }));
        let server = Self { shared, addr, path };
        let this = server.clone();
        tokio::spawn(async move {
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
                let this = this.clone();
                let notify = notify.clone();
                tokio::spawn(async move {
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
                if authorization.is_some() {
                    tracing::warn!(%peer, stale, "connection request with wrong credentials");
                }
                self.challenge(stale)
            }
        }
    }

    fn check(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
        min_interval: Duration,
    ) -> Verdict {
        let Ok(mut shared) = self.shared.lock() else {
            return Verdict::Challenge { stale: false };
        };
        let now = Instant::now();
        shared
            .nonces
            .retain(|(_, issued)| now.duration_since(*issued) < NONCE_LIFETIME);
        let Some(creds) = authorization.and_then(DigestCredentials::parse) else {
            return Verdict::Challenge { stale: false };
        };
        if shared.settings.username.is_empty() {
            // TR-069 requires authentication; without configured credentials nobody can pass.
            tracing::warn!("connection request refused: ConnectionRequestUsername is empty");
            return Verdict::Challenge { stale: false };
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
            return Verdict::Challenge { stale: false };
        }
        if !shared.nonces.iter().any(|(n, _)| *n == creds.nonce) {
            // Right password, unknown or expired nonce.
            return Verdict::Challenge { stale: true };
        }
        // One use per nonce: a replayed request gets a new challenge.
        shared.nonces.retain(|(n, _)| *n != creds.nonce);
        if shared
            .last_accepted
            .is_some_and(|t| now.duration_since(t) < min_interval)
        {
            return Verdict::RateLimited;
        }
        shared.last_accepted = Some(now);
        Verdict::Accepted
    }

    fn challenge(&self, stale: bool) -> Response<Full<Bytes>> {
        let nonce = digest::hex(&rand::rng().random::<[u8; 16]>());
        let opaque = digest::hex(&rand::rng().random::<[u8; 8]>());
        if let Ok(mut shared) = self.shared.lock() {
            if shared.nonces.len() >= MAX_NONCES {
                shared.nonces.pop_front();
            }
            shared.nonces.push_back((nonce.clone(), Instant::now()));
        }
        let mut r = plain(StatusCode::UNAUTHORIZED);
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
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
    RateLimited,
    Challenge { stale: bool },
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
