//! What keeps idle or slow clients from exhausting the kiosk: a cap on open connections (each one holds a permit
//! for as long as it lives, upgraded WebSockets included), the timeouts the listener applies (TLS handshake,
//! request head, which also closes a kept-alive connection that sends nothing), and the process's open-files limit
//! raised to what the system allows at start.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a client may take for its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may take to send a request's head once it has started one.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may send nothing at all before it is closed: one that finished its TLS handshake and never
/// sends a request (hyper-util's protocol detection has no timer), a kept-alive one between requests. Longer than the
/// signaling socket's own silence limit (45 s; browsers answer its pings every 15 s), so that rule closes a silent
/// socket first, with its reason.
pub const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// An acceptor that admits at most `max` connections at once; one over the cap is closed at once (a client then
/// retries), rather than queued where it would hold a file descriptor anyway.
#[derive(Clone)]
pub struct ConnectionCap<A> {
    inner: A,
    permits: Arc<Semaphore>,
}

impl<A> ConnectionCap<A> {
    pub fn new(inner: A, max: usize) -> Self {
        Self { inner, permits: Arc::new(Semaphore::new(max.max(1))) }
    }
}

impl<A, I, S> Accept<I, S> for ConnectionCap<A>
where
    A: Accept<I, S> + Clone + Send + 'static,
    A::Future: Send,
    I: Send + 'static,
    S: Send + 'static,
{
    type Stream = Permitted<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let permit = self.permits.clone().try_acquire_owned();
        let inner = self.inner.clone();
        Box::pin(async move {
            let Ok(permit) = permit else {
                tracing::debug!("connection refused: at the connection cap");
                return Err(io::Error::other("at the connection cap"));
            };
            let (stream, service) = inner.accept(stream, service).await?;
            let idle = Box::pin(tokio::time::sleep(READ_IDLE_TIMEOUT));
            Ok((Permitted { inner: stream, _permit: permit, idle }, service))
        })
    }
}

/// A connection's stream with its place under the cap, given back when the stream is dropped, and a deadline for
/// the client's next byte ([`READ_IDLE_TIMEOUT`]).
pub struct Permitted<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Permitted<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.idle.as_mut().reset(tokio::time::Instant::now() + READ_IDLE_TIMEOUT);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.idle.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client sent nothing for too long")))
                }
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Permitted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Raises the soft limit on open files to the hard limit (systemd's default soft limit is 1024, which ~1,000
/// idle connections used up); returns the limit now in force, or `None` when it cannot be read.
pub fn raise_open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim = raised;
        }
    }
    Some(lim.rlim_cur)
}

/// The longest a connection's TCP waits before it sends unacknowledged data again. Linux's own cap is 120 s: after
/// a 10 s network cut the kiosk's messages to the doctor (the call's state, a new session's offer) waited for the
/// next resend of an exponential backoff, 3–6 s after the network was back (the network bench's first call after
/// its cut took 5.8 s to set up, against 0.5 s for the others). Capped, the next resend is at most 1 s away.
/// Needs Linux 6.15 (`TCP_RTO_MAX_MS`); older kernels keep their backoff (said once in the log).
pub const MAX_RETRANSMISSION_WAIT: Duration = Duration::from_secs(1);

/// How long data may stay unacknowledged before the connection is given up. Set along with the cap: the kernel
/// otherwise counts its 15 resends at the capped wait, and a doctor's connection died after ~15 s of outage instead
/// of ~15 min. One minute, the idle limit: the signaling socket's own silence rule (45 s) decides first.
pub const UNACKNOWLEDGED_LIMIT: Duration = READ_IDLE_TIMEOUT;

/// `TCP_RTO_MAX_MS` of `linux/tcp.h` (6.15), not yet in the libc crate.
const TCP_RTO_MAX_MS: libc::c_int = 44;

/// Applies [`MAX_RETRANSMISSION_WAIT`] and [`UNACKNOWLEDGED_LIMIT`] to a connected TCP socket.
pub fn shorten_retransmission_backoff(socket: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    let set = |option: libc::c_int, value: Duration| -> io::Result<()> {
        let ms = libc::c_uint::try_from(value.as_millis()).unwrap_or(libc::c_uint::MAX);
        // SAFETY: setsockopt reads `size_of::<c_uint>()` bytes from a live value; the descriptor is the caller's.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                option,
                (&ms as *const libc::c_uint).cast(),
                std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
            )
        };
        if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    };
    set(TCP_RTO_MAX_MS, MAX_RETRANSMISSION_WAIT)?;
    set(libc::TCP_USER_TIMEOUT, UNACKNOWLEDGED_LIMIT)
}

/// An acceptor that shortens each accepted connection's retransmission backoff
/// ([`shorten_retransmission_backoff`]) before handing it on.
#[derive(Clone)]
pub struct ShortBackoff<A>(pub A);

impl<A, S> Accept<tokio::net::TcpStream, S> for ShortBackoff<A>
where
    A: Accept<tokio::net::TcpStream, S>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = A::Future;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if let Err(e) = shorten_retransmission_backoff(&stream)
            && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::info!(error = %e, "connections keep the kernel's retransmission backoff (needs Linux 6.15)");
        }
        self.0.accept(stream, service)
    }
}
