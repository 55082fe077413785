//! The HTTP/1.1 client brgd talks to the ACS (and to file servers) with: one connection kept
//! alive for a whole CWMP session, HTTP or HTTPS (rustls), the session's cookies, Basic or
//! Digest answers to a `401`, a timeout on every step and bounded response bodies.
//!
//! ```text
//!  HttpSession::new(url) -> request(POST, Inform) --401--> challenge -> request again with
//!                           Authorization (Digest nc=1) -> 200 InformResponse (Set-Cookie)
//!                        -> request(POST, empty) with Cookie, Authorization (nc=2) -> ...
//! ```
//!
//! A connection the server closed (`Connection: close`, idle timeout) is reopened for the
//! next request; cookies and the Digest nonce carry over.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rand::RngExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::digest::{self, Challenge, DigestChallenge};

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not an absolute `http://` or `https://` URL with a host.
    #[error("invalid URL {0:?}: an absolute http:// or https:// URL is needed")]
    InvalidUrl(String),
    /// TCP connect failed.
    #[error("connecting to {addr}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (certificate not trusted, name mismatch, ...).
    #[error("TLS handshake with {host}")]
    Tls {
        /// The server name.
        host: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A step took longer than its timeout.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// HTTP protocol error.
    #[error("HTTP exchange failed")]
    Http(#[from] hyper::Error),
    /// The response body exceeded the limit.
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The server refused our credentials (or asked for some we do not have).
    #[error("authentication refused by the server (HTTP 401)")]
    Unauthorized,
    /// Writing a downloaded file failed.
    #[error("writing {path}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Settings shared by every HTTP session.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Trust anchors for HTTPS.
    pub tls: Arc<rustls::ClientConfig>,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// One request: sending it and receiving the whole response.
    pub request_timeout: Duration,
    /// Largest response body accepted by [`HttpSession::request`].
    pub max_body: usize,
}

impl ClientConfig {
    /// A configuration trusting `ca_pem` (a PEM file of CA certificates) if given, else the
    /// system's roots.
    pub fn new(ca_pem: Option<&Path>, max_body: usize) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        match ca_pem {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .with_context(|| format!("reading the CA file {}", path.display()))?;
                for cert in certs {
                    let cert = cert.with_context(|| format!("parsing {}", path.display()))?;
                    roots.add(cert).with_context(|| {
                        format!("a certificate in {} is unusable", path.display())
                    })?;
                }
                anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", path.display());
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                for err in &native.errors {
                    tracing::warn!("loading system CA certificates: {err}");
                }
                let (added, ignored) = roots.add_parsable_certificates(native.certs);
                tracing::debug!(added, ignored, "system CA certificates");
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            tls: Arc::new(tls),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body,
        })
    }
}

/// User name and password for a server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

#[derive(Debug, Clone)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    /// `host[:port]` for the Host header.
    authority: String,
    /// Path and query: the request target and the Digest `uri`.
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = || HttpError::InvalidUrl(url.chars().take(256).collect());
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad()),
        };
        let authority = uri.authority().ok_or_else(bad)?;
        if authority.as_str().contains('@') {
            return Err(bad());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            https,
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// A response whose body has been read.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The body: at most [`ClientConfig::max_body`] bytes, or the first `max_body + 1` when
    /// it is longer (`truncated`), so the caller can tell the sender it was too large.
    pub body: Bytes,
    /// The body was longer than [`ClientConfig::max_body`]: the rest was not read, and the
    /// connection is closed (the next request opens another).
    pub truncated: bool,
}

/// How requests authenticate once the server has challenged us.
#[derive(Debug, Clone)]
enum Auth {
    Basic,
    Digest { challenge: DigestChallenge, nc: u32 },
}

/// One HTTP conversation with a server (a CWMP session, or a file download).
pub struct HttpSession {
    config: ClientConfig,
    target: Target,
    credentials: Option<Credentials>,
    sender: Option<SendRequest<Full<Bytes>>>,
    local_addr: Option<SocketAddr>,
    cookies: Vec<(String, String)>,
    auth: Option<Auth>,
}

impl std::fmt::Debug for HttpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSession")
            .field("target", &self.target)
            .field("connected", &self.sender.is_some())
            .field("cookies", &self.cookies.len())
            .finish_non_exhaustive()
    }
}

impl HttpSession {
    /// A session with `url`; nothing is connected yet.
    pub fn new(
        url: &str,
        credentials: Option<Credentials>,
        config: ClientConfig,
    ) -> Result<Self, HttpError> {
        Ok(Self {
            config,
            target: Target::parse(url)?,
            credentials,
            sender: None,
            local_addr: None,
            cookies: Vec::new(),
            auth: None,
        })
    }

    /// The credentials this session answers challenges with.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Resolves a `Location` against this session's URL: absolute URLs as they are, paths
    /// (`/x`) on the same scheme and authority.
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with('/') {
            let scheme = if self.target.https { "https" } else { "http" };
            format!("{scheme}://{}{location}", self.target.authority)
        } else {
            location.to_owned()
        }
    }

    /// Opens the connection now (if not open) and returns our local address on it: the
    /// address the server sees, which brgd advertises in its ConnectionRequestURL.
    pub async fn connect(&mut self) -> Result<SocketAddr, HttpError> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.open().await?;
        }
        self.local_addr.ok_or(HttpError::Timeout("connecting"))
    }

    async fn open(&mut self) -> Result<(), HttpError> {
        let addr = format!("{}:{}", self.target.host, self.target.port);
        let timeout = self.config.connect_timeout;
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| HttpError::Timeout("connecting"))?
            .map_err(|source| HttpError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        self.local_addr = tcp.local_addr().ok();
        let sender = if self.target.https {
            let name = rustls::pki_types::ServerName::try_from(self.target.host.clone())
                .map_err(|_| HttpError::InvalidUrl(self.target.host.clone()))?;
            let connector = tokio_rustls::TlsConnector::from(self.config.tls.clone());
            let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| HttpError::Timeout("in the TLS handshake"))?
                .map_err(|source| HttpError::Tls {
                    host: self.target.host.clone(),
                    source,
                })?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("HTTPS connection ended: {e}");
                }
            });
            sender
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("HTTP connection ended: {e}");
                }
            });
            sender
        };
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends a request with `body` (empty: no body, `Content-Length: 0`) and reads the
    /// response, its body up to one byte over [`ClientConfig::max_body`] (see
    /// [`Response::truncated`]). A `401` is answered once with our credentials; a second
    /// `401` is [`HttpError::Unauthorized`].
    pub async fn request(
        &mut self,
        method: Method,
        body: Vec<u8>,
        content_type: Option<&'static str>,
    ) -> Result<Response, HttpError> {
        let max = self.config.max_body;
        let timeout = self.config.request_timeout;
        let body = Bytes::from(body);
        let response = self.send(&method, &body, content_type).await?;
        let (parts, mut incoming) = response.into_parts();
        let mut collected = Vec::new();
        let read = tokio::time::timeout(timeout, async {
            while let Some(frame) = incoming.frame().await {
                if let Ok(data) = frame?.into_data() {
                    let room = (max + 1).saturating_sub(collected.len());
                    collected.extend_from_slice(&data[..data.len().min(room)]);
                    if collected.len() > max {
                        return Ok(true);
                    }
                }
            }
            Ok::<_, hyper::Error>(false)
        })
        .await;
        let truncated = match read {
            Ok(Ok(truncated)) => truncated,
            Ok(Err(e)) => {
                self.sender = None;
                return Err(HttpError::Http(e));
            }
            Err(_) => {
                self.sender = None;
                return Err(HttpError::Timeout("reading the response"));
            }
        };
        if truncated {
            // The connection is mid-body: it cannot carry another request.
            self.sender = None;
        }
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body: Bytes::from(collected),
            truncated,
        })
    }

    /// GETs the URL into `file`, refusing more than `max` bytes; returns the status and the
    /// number of bytes written (nothing is written unless the status is 2xx).
    pub async fn download(
        &mut self,
        file: &Path,
        max: u64,
    ) -> Result<(StatusCode, u64), HttpError> {
        let response = self.send(&Method::GET, &Bytes::new(), None).await?;
        let status = response.status();
        if !status.is_success() {
            return Ok((status, 0));
        }
        let file_err = |source| HttpError::File {
            path: file.display().to_string(),
            source,
        };
        let mut out = tokio::fs::File::create(file).await.map_err(file_err)?;
        let mut body = response.into_body();
        let mut written = 0u64;
        loop {
            let frame = tokio::time::timeout(self.config.request_timeout, body.frame())
                .await
                .map_err(|_| HttpError::Timeout("downloading"))?;
            let Some(frame) = frame else { break };
            let frame = frame?;
            if let Ok(data) = frame.into_data() {
                written += data.len() as u64;
                if written > max {
                    self.sender = None;
                    return Err(HttpError::BodyTooLarge(
                        usize::try_from(max).unwrap_or(usize::MAX),
                    ));
                }
                out.write_all(&data).await.map_err(file_err)?;
            }
        }
        out.sync_all().await.map_err(file_err)?;
        Ok((status, written))
    }

    /// Sends one request (answering one `401`), returning the response with its body unread.
    async fn send(
        &mut self,
        method: &Method,
        body: &Bytes,
        content_type: Option<&'static str>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, HttpError> {
        let mut attempts = 0;
        loop {
            let response = self.send_once(method, body, content_type).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let headers: Vec<String> = response
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            // Drain the (small) 401 body so the connection can carry the retry.
            let drained = tokio::time::timeout(
                self.config.request_timeout,
                http_body_util::Limited::new(response.into_body(), 64 * 1024).collect(),
            )
            .await;
            if !matches!(drained, Ok(Ok(_))) {
                self.sender = None;
            }
            attempts += 1;
            // One answer to a challenge; one more when the server only rotated its nonce
            // (`stale=true`).
            let stale = headers.iter().any(|h| {
                h.to_ascii_lowercase()
                    .replace([' ', '"'], "")
                    .contains("stale=true")
            });
            if self.credentials.is_none() || !(attempts == 1 || (attempts == 2 && stale)) {
                return Err(HttpError::Unauthorized);
            }
            self.auth = match digest::pick_challenge(headers.iter().map(String::as_str)) {
                Some(Challenge::Basic) => Some(Auth::Basic),
                Some(Challenge::Digest(challenge)) => Some(Auth::Digest { challenge, nc: 0 }),
                None => return Err(HttpError::Unauthorized),
            };
        }
    }

    async fn send_once(
        &mut self,
        method: &Method,
        body: &Bytes,
        content_type: Option<&'static str>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, HttpError> {
        self.connect().await?;
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(self.target.path.as_str())
            .header(header::HOST, self.target.authority.as_str())
            .header(
                header::USER_AGENT,
                concat!("nerg-brgd/", env!("CARGO_PKG_VERSION")),
            );
        if method == Method::POST {
            builder = builder.header(header::CONTENT_LENGTH, body.len());
        }
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                builder = builder.header(header::COOKIE, v);
            }
        }
        if let Some(auth) = self.authorization(method.as_str())
            && let Ok(v) = HeaderValue::from_str(&auth)
        {
            builder = builder.header(header::AUTHORIZATION, v);
        }
        let request = builder
            .body(Full::new(body.clone()))
            .map_err(|_| HttpError::InvalidUrl(self.target.path.clone()))?;
        let Some(sender) = self.sender.as_mut() else {
            return Err(HttpError::Timeout("connecting"));
        };
        let timeout = self.config.request_timeout;
        let sent = tokio::time::timeout(timeout, async {
            sender.ready().await?;
            sender.send_request(request).await
        })
        .await;
        let response = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.sender = None;
                return Err(HttpError::Http(e));
            }
            Err(_) => {
                self.sender = None;
                return Err(HttpError::Timeout("waiting for the response"));
            }
        };
        self.store_cookies(response.headers());
        Ok(response)
    }

    fn authorization(&mut self, method: &str) -> Option<String> {
        let creds = self.credentials.as_ref()?;
        match self.auth.as_mut()? {
            Auth::Basic => Some(digest::basic_authorization(
                &creds.username,
                &creds.password,
            )),
            Auth::Digest { challenge, nc } => {
                *nc += 1;
                let cnonce = digest::hex(&rand::rng().random::<[u8; 16]>());
                Some(digest::digest_authorization(
                    challenge,
                    &creds.username,
                    &creds.password,
                    method,
                    &self.target.path,
                    *nc,
                    &cnonce,
                ))
            }
        }
    }

    /// Keeps `name=value` of every `Set-Cookie` (attributes ignored: the cookies live for
    /// this one session with this one server).
    fn store_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            if name.is_empty() || self.cookies.len() >= 32 {
                continue;
            }
            self.cookies.retain(|(n, _)| *n != name);
            self.cookies.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("https://acs.example:7548/cwmp?x=1").expect("valid");
        assert!(t.https);
        assert_eq!((t.host.as_str(), t.port), ("acs.example", 7548));
        assert_eq!(t.path, "/cwmp?x=1");
        let t = Target::parse("http://[::1]/").expect("valid");
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("::1", 80, "[::1]")
        );
        for bad in [
            "",
            "ftp://x/",
            "/relative",
            "http://",
            "http://user:pw@host/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?}");
        }
    }
}
