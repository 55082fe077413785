//! vgd's HTTP server (`/metrics`, `/health`, `/ready` and the REST API): hyper, with the
//! bounds an operator needs when the listener is reachable by something hostile.
//!
//! - **Connections**: at most [`Limits::max_connections`] open at once, and at most
//!   [`Limits::max_per_client`] from one client address; a connection beyond either is
//!   closed as soon as it is accepted (`vg_http_connections_refused_total{reason}`).
//! - **Headers**: a request's headers must arrive within [`Limits::header_timeout`] (a client
//!   that drips them a line at a time is closed).
//! - **Idleness**: a connection on which nothing is read or written for
//!   [`Limits::idle_timeout`] is closed (a kept-alive connection nobody uses, a client that
//!   stops reading its answer).
//! - **Requests**: a request (its body read included) must be answered within
//!   [`Limits::request_timeout`], else 408.
//! - **Memory**: once a burst of connections has gone, the allocator is asked to give the
//!   freed memory back to the system, so resident memory returns near where it was.

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    extract::Request,
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpListener,
    sync::Semaphore,
    time::{Instant, Sleep},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The bounds of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_client: usize,
    /// Time for a request's headers to arrive.
    pub header_timeout: Duration,
    /// Time a connection may stay without reading or writing anything.
    pub idle_timeout: Duration,
    /// Time to answer a request, its body read included.
    pub request_timeout: Duration,
}

impl Limits {
    /// The defaults: 1,024 connections, 64 per client address, 10 s for headers, 60 s
    /// idle, 30 s per request. A Prometheus server and an operator's tools need a handful
    /// of connections; provisioning systems a few dozen.
    pub const DEFAULT: Limits = Limits {
        max_connections: 1024,
        max_per_client: 64,
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(30),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Where a listener reports what it refused and how many connections it holds.
#[derive(Clone)]
pub struct Stats {
    /// The listener's name in the labels (`main`, `api`).
    pub listener: &'static str,
    /// Connections refused, by `listener` and `reason` (`max_connections`,
    /// `max_per_client`).
    pub refused: prometheus::IntCounterVec,
    /// Connections open, by `listener`.
    pub open: prometheus::IntGaugeVec,
}

impl Stats {
    fn refuse(&self, reason: &str) {
        self.refused
            .with_label_values(&[self.listener, reason])
            .inc();
    }

    fn open(&self) -> prometheus::IntGauge {
        self.open.with_label_values(&[self.listener])
    }
}

/// How many connections each client address holds.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerClient`], given back on drop.
struct ClientSlot {
    clients: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self
            .clients
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`, then lets the requests in
/// progress finish (for at most `limits.request_timeout`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Stats,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let request_timeout = limits.request_timeout;
    let router = router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            match tokio::time::timeout(request_timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => timed_out(),
            }
        },
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(PerClient::default());
    let memory = Arc::new(MemoryWatch::default());
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors or memory for a moment: do not spin on it.
                    tracing::warn!(error = %err, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            stats.refuse("max_connections");
            continue;
        };
        let Some(client) = clients.take(peer.ip(), limits.max_per_client) else {
            stats.refuse("max_per_client");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let (shutdown, memory) = (shutdown.clone(), Arc::clone(&memory));
        let open = stats.open();
        open.inc();
        memory.opened();
        tracker.spawn(async move {
            let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = builder.serve_connection(io, service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(limits.request_timeout, connection).await;
                }
            }
            drop((slot, client));
            open.dec();
            memory.closed();
        });
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

fn timed_out() -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        "the request took too long (its body, or its answer)\n",
    )
        .into_response()
}

/// Gives memory freed by a burst of connections back to the system once most of them have
/// gone: glibc keeps freed heap for reuse, so without this the resident memory of a vgd
/// that once held a thousand connections would stay at its peak.
#[derive(Default)]
struct MemoryWatch(Mutex<(usize, usize)>);

/// Connections below which a burst is not worth a trim.
const TRIM_AFTER_PEAK: usize = 128;

impl MemoryWatch {
    fn opened(&self) {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (open, peak) = &mut *guard;
        *open += 1;
        *peak = (*peak).max(*open);
    }

    fn closed(&self) {
        let trim = {
            let mut guard = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (open, peak) = &mut *guard;
            *open = open.saturating_sub(1);
            let trim = *peak >= TRIM_AFTER_PEAK && *open <= *peak / 8;
            if trim {
                *peak = *open;
            }
            trim
        };
        if trim {
            release_free_memory();
        }
    }
}

/// Asks the allocator to return its free memory to the system.
#[expect(unsafe_code, reason = "malloc_trim is a libc call")]
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own heap structures; it takes no pointers.
    unsafe { libc::malloc_trim(0) };
}

/// A connection's I/O that fails with `TimedOut` once nothing has been read or written for
/// its timeout: the idle bound of every connection, whatever hyper is waiting for.
struct IdleTimeout<S> {
    inner: S,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> IdleTimeout<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn active(&mut self) {
        let next = Instant::now() + self.timeout;
        self.deadline.as_mut().reset(next);
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }
}

fn idle() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle")
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.active();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle())),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn stats() -> Stats {
        Stats {
            listener: "test",
            refused: prometheus::IntCounterVec::new(
                prometheus::Opts::new("refused", "refused"),
                &["listener", "reason"],
            )
            .unwrap(),
            open: prometheus::IntGaugeVec::new(
                prometheus::Opts::new("open", "open"),
                &["listener"],
            )
            .unwrap(),
        }
    }

    async fn server(limits: Limits) -> (std::net::SocketAddr, Stats, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stats, stop) = (stats(), CancellationToken::new());
        tokio::spawn(serve(listener, router, limits, stats.clone(), stop.clone()));
        (addr, stats, stop)
    }

    /// Reads until the peer closes (Ok(bytes)) or `within` passes (Err).
    async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> Result<Vec<u8>, ()> {
        let mut all = Vec::new();
        tokio::time::timeout(within, async {
            let mut buf = [0u8; 1024];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
        .map_err(|_| ())?;
        Ok(all)
    }

    #[tokio::test]
    async fn a_client_dripping_headers_is_closed_and_a_genuine_one_is_served() {
        let limits = Limits {
            header_timeout: Duration::from_millis(300),
            ..Limits::DEFAULT
        };
        let (addr, _, stop) = server(limits).await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let _ = slow.write_all(b"X-Drip: 1\r\n").await;
        }
        assert!(
            closed_within(&mut slow, Duration::from_secs(3))
                .await
                .is_ok(),
            "a client dripping its headers is closed after the header timeout"
        );
        let mut good = tokio::net::TcpStream::connect(addr).await.unwrap();
        good.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = closed_within(&mut good, Duration::from_secs(3))
            .await
            .unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        stop.cancel();
    }

    #[tokio::test]
    async fn an_idle_kept_alive_connection_is_closed() {
        let limits = Limits {
            idle_timeout: Duration::from_millis(300),
            ..Limits::DEFAULT
        };
        let (addr, _, stop) = server(limits).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        // Kept alive, then nothing: closed once idle.
        assert!(closed_within(&mut s, Duration::from_secs(3)).await.is_ok());
        stop.cancel();
    }

    #[tokio::test]
    async fn connections_beyond_the_limits_are_refused_and_counted() {
        let limits = Limits {
            max_connections: 8,
            max_per_client: 3,
            ..Limits::DEFAULT
        };
        let (addr, stats, stop) = server(limits).await;
        // Three held from 127.0.0.1; a fourth from it is closed at once.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
            held.push(s);
        }
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = extra.write_all(b"GET / HTTP/1.1\r\n").await;
        assert!(
            closed_within(&mut extra, Duration::from_secs(3))
                .await
                .is_ok_and(|b| b.is_empty()),
            "the fourth connection of one client is closed unanswered"
        );
        assert_eq!(
            stats
                .refused
                .with_label_values(&["test", "max_per_client"])
                .get(),
            1
        );
        // Another client address (all of 127/8 is local) still gets in, and is served.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut other = socket.connect(addr).await.unwrap();
        other
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = closed_within(&mut other, Duration::from_secs(3))
            .await
            .unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        // Closing a held connection gives its place back.
        drop(held.pop());
        tokio::time::timeout(Duration::from_secs(3), async {
            while stats.open().get() > 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        let mut again = tokio::net::TcpStream::connect(addr).await.unwrap();
        again
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = closed_within(&mut again, Duration::from_secs(3))
            .await
            .unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        stop.cancel();
    }
}
