//! A test ACS: a real HTTP(S) server speaking CWMP to the CPE under test.
//!
//! Each session starts with the CPE's Inform (answered with InformResponse and a session
//! cookie), then the ACS answers the CPE's own requests (TransferComplete), then runs the
//! next *script* the test queued with [`Acs::script`], one RPC per HTTP response, recording
//! every answer, and ends the session with `204 No Content`. Everything is recorded in
//! [`SessionLog`]s the test reads with [`Acs::sessions`] / [`Acs::wait_sessions`].
//!
//! It also demands Basic or Digest authentication when configured (challenging every new
//! connection; Digest nonces are single-session), rejects session POSTs without the session
//! cookie (counted, answered 400), serves static files for Download tests ([`Acs::serve_file`]),
//! and sends connection requests to the CPE with Digest ([`connection_request`]).
//!
//! Encoding and decoding use the `cwmp::soap` codec (it is symmetric); a script can also send
//! raw bytes ([`AcsRequest::Raw`]) for hostile-input tests.

use std::collections::{HashMap, VecDeque};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brg::agent::digest::{self, Algorithm, Challenge, DigestCredentials};
use bytes::Bytes;
use cwmp::soap::{self, Body, CwmpVersion, Envelope, Inform, InformResponse, Limits};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// How the ACS authenticates the CPE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AcsAuth {
    /// No authentication.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// Expected user name.
        username: String,
        /// Expected password.
        password: String,
    },
    /// HTTP Digest (`qop=auth`) with one algorithm.
    Digest {
        /// Expected user name.
        username: String,
        /// Expected password.
        password: String,
        /// The algorithm offered.
        algorithm: Algorithm,
    },
}

/// The ACS's settings.
#[derive(Debug, Clone, Default)]
pub struct AcsConfig {
    /// Authentication demanded from the CPE.
    pub auth: AcsAuth,
    /// Serve HTTPS with this certificate chain and key (PEM); plain HTTP when `None`.
    pub tls: Option<(String, String)>,
    /// Namespace of the ACS's requests; `None`: the one of the CPE's Inform.
    pub request_ns: Option<CwmpVersion>,
    /// Answer every Inform with `307 Temporary Redirect` to this URL (a load balancer).
    pub redirect: Option<String>,
    /// Answer every Inform with these bytes (200, `text/xml`) instead of an InformResponse:
    /// a broken or hostile ACS. The session is recorded, and never ends.
    pub inform_response: Option<Vec<u8>>,
    /// Wait this long before ending a session with 204 (a slow ACS): the CPE's answers are
    /// recorded, the session is not over yet.
    pub end_delay: Option<Duration>,
}

/// One item of a session script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcsRequest {
    /// An RPC, encoded with `cwmp::soap` in the session's namespace with a fresh `cwmp:ID`.
    Rpc(Body),
    /// Bytes sent as they are (hostile input).
    Raw(Vec<u8>),
}

impl From<Body> for AcsRequest {
    fn from(body: Body) -> Self {
        Self::Rpc(body)
    }
}

/// What happened in one session.
#[derive(Debug, Clone)]
pub struct SessionLog {
    /// The Inform.
    pub inform: Inform,
    /// The namespace the CPE used in its Inform.
    pub ns: CwmpVersion,
    /// The CPE's own requests (TransferComplete, ...).
    pub cpe_requests: Vec<Body>,
    /// The CPE's answer to each script item sent, in order (with its `cwmp:ID` and namespace).
    pub answers: Vec<Envelope>,
    /// Whether the ACS ended the session with 204.
    pub ended: bool,
    /// When the Inform arrived.
    pub started: std::time::Instant,
    /// When the ACS answered 204.
    pub ended_at: Option<std::time::Instant>,
}

impl SessionLog {
    /// Whether the CPE answered any of the ACS's requests with a SOAP fault.
    pub fn faulted(&self) -> bool {
        self.answers
            .iter()
            .any(|a| matches!(a.body, Body::Fault(_)))
    }

    /// The Inform's event codes.
    pub fn event_codes(&self) -> Vec<String> {
        self.inform
            .events
            .iter()
            .map(|e| e.code.as_str().to_owned())
            .collect()
    }

    /// Whether the Inform carries `code` (with `command_key`, when given).
    pub fn has_event(&self, code: &str, command_key: Option<&str>) -> bool {
        self.inform
            .events
            .iter()
            .any(|e| e.code.as_str() == code && command_key.is_none_or(|k| e.command_key == k))
    }

    /// A parameter of the Inform's ParameterList.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.inform
            .parameter_list
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

#[derive(Debug)]
struct Active {
    log: usize,
    script: VecDeque<AcsRequest>,
    next_id: u32,
}

#[derive(Debug, Default)]
struct State {
    scripts: VecDeque<Vec<AcsRequest>>,
    /// Scripts for one device (by DeviceId.SerialNumber), taken before the shared ones.
    device_scripts: HashMap<String, VecDeque<Vec<AcsRequest>>>,
    sessions: Vec<SessionLog>,
    active: HashMap<String, Active>,
    files: HashMap<String, Vec<u8>>,
    nonces: Vec<String>,
    next_cookie: u64,
    auth_rejections: u32,
    missing_cookie: u32,
    connections: u32,
    redirected: u32,
    undecodable: u32,
}

/// A running test ACS (on its own tokio runtime); stops when dropped.
pub struct Acs {
    /// Owns the server's tasks: dropping it stops them.
    _rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    https: bool,
    state: Arc<Mutex<State>>,
    stop: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for Acs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acs")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Acs {
    /// Starts an ACS on `127.0.0.1` at a free port.
    pub fn start(config: AcsConfig) -> Self {
        Self::start_at("127.0.0.1:0".parse().expect("address"), config)
    }

    /// Starts an ACS at `addr` (to bring one back on the port a CPE already knows).
    pub fn start_at(addr: SocketAddr, config: AcsConfig) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime for the test ACS");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("binding the test ACS to {addr}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let tls = config
            .tls
            .as_ref()
            .map(|(cert, key)| tls_acceptor(cert, key));
        let https = tls.is_some();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = tokio_util::sync::CancellationToken::new();
        let config = Arc::new(config);
        {
            let state = state.clone();
            let stop = stop.clone();
            rt.spawn(async move {
                loop {
                    let stream = tokio::select! {
                        () = stop.cancelled() => break,
                        accepted = listener.accept() => match accepted {
                            Ok((s, _)) => s,
                            Err(_) => continue,
                        },
                    };
                    state.lock().unwrap_or_else(|e| e.into_inner()).connections += 1;
                    let state = state.clone();
                    let config = config.clone();
                    let tls = tls.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            let config = config.clone();
                            async move {
                                Ok::<_, std::convert::Infallible>(
                                    handle(req, &state, &config).await,
                                )
                            }
                        });
                        let builder = hyper::server::conn::http1::Builder::new();
                        match tls {
                            Some(acceptor) => {
                                let Ok(stream) = acceptor.accept(stream).await else {
                                    return;
                                };
                                let conn = builder.serve_connection(TokioIo::new(stream), service);
                                tokio::select! { _ = conn => {}, () = stop.cancelled() => {} }
                            }
                            None => {
                                let conn = builder.serve_connection(TokioIo::new(stream), service);
                                tokio::select! { _ = conn => {}, () = stop.cancelled() => {} }
                            }
                        }
                    });
                }
            });
        }
        Self {
            _rt: rt,
            addr,
            https,
            state,
            stop,
        }
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL a CPE is given (`http://127.0.0.1:port/acs`).
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/acs", self.addr)
    }

    /// Queues a script: the RPCs of the next session that has no script yet.
    pub fn script(&self, requests: Vec<AcsRequest>) {
        self.lock().scripts.push_back(requests);
    }

    /// Queues a script for the next session of the device with this serial number (what an
    /// ACS keyed by DeviceId does: provisioning per device, zero touch).
    pub fn script_for(&self, serial_number: &str, requests: Vec<AcsRequest>) {
        self.lock()
            .device_scripts
            .entry(serial_number.to_owned())
            .or_default()
            .push_back(requests);
    }

    /// The sessions of the device with this serial number, so far.
    pub fn sessions_of(&self, serial_number: &str) -> Vec<SessionLog> {
        self.lock()
            .sessions
            .iter()
            .filter(|s| s.inform.device_id.serial_number == serial_number)
            .cloned()
            .collect()
    }

    /// Serves `bytes` at `path` to GET requests (for Download).
    pub fn serve_file(&self, path: &str, bytes: Vec<u8>) {
        self.lock().files.insert(path.to_owned(), bytes);
    }

    /// Every session so far (ended or not), oldest first.
    pub fn sessions(&self) -> Vec<SessionLog> {
        self.lock().sessions.clone()
    }

    /// Waits until `n` sessions have ended with 204; returns all sessions.
    pub fn wait_sessions(&self, n: usize, timeout: Duration) -> Vec<SessionLog> {
        crate::wait_until(&format!("{n} ended CWMP sessions"), timeout, || {
            self.lock().sessions.iter().filter(|s| s.ended).count() >= n
        });
        self.sessions()
    }

    /// POSTs answered 401 so far.
    pub fn auth_rejections(&self) -> u32 {
        self.lock().auth_rejections
    }

    /// TCP connections accepted so far (a keep-alive CPE uses one per session).
    pub fn connections(&self) -> u32 {
        self.lock().connections
    }

    /// Informs answered with a redirect.
    pub fn redirected(&self) -> u32 {
        self.lock().redirected
    }

    /// Session POSTs that came without the session cookie.
    pub fn missing_cookies(&self) -> u32 {
        self.lock().missing_cookie
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops serving (also on drop).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Acs {
    fn drop(&mut self) {
        // Dropping the runtime right after aborts every task: the listener and the open
        // connections close, so the CPE sees the ACS go away.
        self.stop.cancel();
    }
}

fn tls_acceptor(cert_pem: &str, key_pem: &str) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("TLS server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

fn xml(body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = reply(StatusCode::OK, body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=\"utf-8\""),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    state: &Mutex<State>,
    config: &AcsConfig,
) -> Response<Full<Bytes>> {
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    if req.method() == Method::GET {
        let file = lock().files.get(req.uri().path()).cloned();
        return match file {
            Some(bytes) => reply(StatusCode::OK, bytes),
            None => reply(StatusCode::NOT_FOUND, Vec::new()),
        };
    }
    if req.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, Vec::new());
    }
    if let Some(challenge) = check_auth(&req, state, config) {
        lock().auth_rejections += 1;
        return challenge;
    }
    let cookie = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == "acs-session")
                .map(|(_, v)| v.to_owned())
        });
    let Ok(body) = http_body_util::Limited::new(req.into_body(), 4 << 20)
        .collect()
        .await
    else {
        return reply(StatusCode::PAYLOAD_TOO_LARGE, Vec::new());
    };
    let body = body.to_bytes();
    let env = if soap::is_empty_post(&body) {
        None
    } else {
        match soap::decode(&body, &Limits::default()) {
            Ok(env) => Some(env),
            Err(_) => {
                lock().undecodable += 1;
                return reply(StatusCode::BAD_REQUEST, Vec::new());
            }
        }
    };
    let step = session_post(&mut lock(), config, env, cookie);
    let NextMessage { cookie, next, ns } = match step {
        Ok(step) => step,
        Err(response) => return *response,
    };
    if next.is_none()
        && let Some(delay) = config.end_delay
    {
        tokio::time::sleep(delay).await;
    }
    next_message(&mut lock(), &cookie, next, ns)
}

/// Where a session is after the CPE's POST: its cookie, the script's next item (`None`: the
/// end) and the namespace to send it in.
struct NextMessage {
    cookie: String,
    next: Option<AcsRequest>,
    ns: CwmpVersion,
}

/// A session POST, with the state locked: a new session (Inform), or the CPE's message in a
/// running one. `Err`: the response to send at once (boxed: it is large).
fn session_post(
    st: &mut State,
    config: &AcsConfig,
    env: Option<Envelope>,
    cookie: Option<String>,
) -> Result<NextMessage, Box<Response<Full<Bytes>>>> {
    if let (
        Some(to),
        Some(Envelope {
            body: Body::Inform(_),
            ..
        }),
    ) = (&config.redirect, &env)
    {
        st.redirected += 1;
        let mut r = reply(StatusCode::TEMPORARY_REDIRECT, Vec::new());
        r.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(to).expect("Location"),
        );
        return Err(Box::new(r));
    }
    // A new session.
    if let Some(Envelope {
        body: Body::Inform(inform),
        ns,
        id,
        ..
    }) = env.as_ref().map(|e| (*e).clone())
    {
        st.next_cookie += 1;
        let cookie = format!("s{}", st.next_cookie);
        let serial = inform.device_id.serial_number.clone();
        let script = st
            .device_scripts
            .get_mut(&serial)
            .and_then(VecDeque::pop_front)
            .or_else(|| st.scripts.pop_front())
            .unwrap_or_default();
        st.sessions.push(SessionLog {
            inform,
            ns,
            cpe_requests: Vec::new(),
            answers: Vec::new(),
            ended: false,
            started: std::time::Instant::now(),
            ended_at: None,
        });
        let log = st.sessions.len() - 1;
        if let Some(bytes) = &config.inform_response {
            return Err(Box::new(xml(bytes.clone())));
        }
        st.active.insert(
            cookie.clone(),
            Active {
                log,
                script: script.into(),
                next_id: 1,
            },
        );
        let response = Envelope {
            id,
            ..Envelope::new(
                ns,
                Body::InformResponse(InformResponse { max_envelopes: 1 }),
            )
        };
        let mut r = xml(response.encode());
        r.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&format!("acs-session={cookie}; Path=/; HttpOnly"))
                .expect("cookie"),
        );
        return Err(Box::new(r));
    }
    let Some(cookie) = cookie.filter(|c| st.active.contains_key(c)) else {
        st.missing_cookie += 1;
        return Err(Box::new(reply(
            StatusCode::BAD_REQUEST,
            b"no session cookie".to_vec(),
        )));
    };
    {
        let st = &mut *st;
        let Some(active) = st.active.get_mut(&cookie) else {
            return Err(Box::new(reply(StatusCode::BAD_REQUEST, Vec::new())));
        };
        let log = &mut st.sessions[active.log];
        let ns = config.request_ns.unwrap_or(log.ns);
        if let Some(env) = env {
            if let Body::TransferComplete(_) = &env.body {
                log.cpe_requests.push(env.body.clone());
                let response = Envelope {
                    id: env.id.clone(),
                    ..Envelope::new(env.ns, Body::TransferCompleteResponse)
                };
                return Err(Box::new(xml(response.encode())));
            }
            log.answers.push(env);
        }
        Ok(NextMessage {
            cookie,
            next: active.script.pop_front(),
            ns,
        })
    }
}

/// The ACS's next message in a session: the script's next item, or the 204 that ends it.
fn next_message(
    st: &mut State,
    cookie: &str,
    next: Option<AcsRequest>,
    ns: CwmpVersion,
) -> Response<Full<Bytes>> {
    let Some(active) = st.active.get_mut(cookie) else {
        return reply(StatusCode::BAD_REQUEST, Vec::new());
    };
    let log = &mut st.sessions[active.log];
    match next {
        Some(AcsRequest::Rpc(body)) => {
            let id = format!("acs-{}", active.next_id);
            active.next_id += 1;
            xml(Envelope::new(ns, body).with_id(id).encode())
        }
        Some(AcsRequest::Raw(bytes)) => xml(bytes),
        None => {
            log.ended = true;
            log.ended_at = Some(std::time::Instant::now());
            st.active.remove(cookie);
            reply(StatusCode::NO_CONTENT, Vec::new())
        }
    }
}

/// `None` when the request may pass; else the 401 to send.
fn check_auth(
    req: &Request<Incoming>,
    state: &Mutex<State>,
    config: &AcsConfig,
) -> Option<Response<Full<Bytes>>> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match &config.auth {
        AcsAuth::None => None,
        AcsAuth::Basic { username, password } => {
            let expected = digest::basic_authorization(username, password);
            if header == Some(expected.as_str()) {
                return None;
            }
            let mut r = reply(StatusCode::UNAUTHORIZED, Vec::new());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"test-acs\""),
            );
            Some(r)
        }
        AcsAuth::Digest {
            username,
            password,
            algorithm,
        } => {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(creds) = header.and_then(DigestCredentials::parse)
                && creds.username == *username
                && creds.algorithm == *algorithm
                && creds.qop.is_some()
                && st.nonces.contains(&creds.nonce)
                && Some(creds.uri.as_str()) == req.uri().path_and_query().map(|p| p.as_str())
                && creds.verify(password, "POST")
            {
                return None;
            }
            let nonce = format!("nonce{}x{}", st.nonces.len(), std::process::id());
            st.nonces.push(nonce.clone());
            let mut r = reply(StatusCode::UNAUTHORIZED, Vec::new());
            let value = format!(
                "Digest realm=\"test-acs\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\", opaque=\"o1\"",
                algorithm.as_str()
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_str(&value).expect("header"),
            );
            Some(r)
        }
    }
}

/// The outcome of one HTTP GET of a connection request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrResponse {
    /// Status code.
    pub status: u16,
    /// The `WWW-Authenticate` values.
    pub challenges: Vec<String>,
}

/// One GET to `url` with an optional `Authorization` value (blocking, `Connection: close`).
pub fn http_get(url: &str, authorization: Option<&str>) -> std::io::Result<CrResponse> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// URLs"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = authority
        .parse()
        .map_err(|_| std::io::Error::other(format!("not ip:port: {authority}")))?;
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(auth) = authorization {
        request.push_str(&format!("Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {head:?}")))?;
    let challenges = lines
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    Ok(CrResponse { status, challenges })
}

/// A connection request as an ACS sends it: GET, and on a 401 GET again answering the
/// strongest Digest challenge with `username`/`password`. Returns the final status.
pub fn connection_request(url: &str, username: &str, password: &str) -> u16 {
    connection_request_after(url, username, password, Duration::ZERO)
}

/// [`connection_request`] with `think` between the challenge and the answer (what a real
/// ACS's round trip and work take).
pub fn connection_request_after(url: &str, username: &str, password: &str, think: Duration) -> u16 {
    let first = http_get(url, None).unwrap_or_else(|e| panic!("connection request to {url}: {e}"));
    if first.status != 401 {
        return first.status;
    }
    std::thread::sleep(think);
    let Some(Challenge::Digest(challenge)) =
        digest::pick_challenge(first.challenges.iter().map(String::as_str))
    else {
        panic!(
            "the CPE's 401 carries no Digest challenge: {:?}",
            first.challenges
        );
    };
    let path = url
        .strip_prefix("http://")
        .and_then(|r| r.find('/').map(|i| &r[i..]))
        .unwrap_or("/");
    let auth =
        digest::digest_authorization(&challenge, username, password, "GET", path, 1, "testcnonce");
    http_get(url, Some(&auth))
        .unwrap_or_else(|e| panic!("connection request to {url}: {e}"))
        .status
}
