//! Caps on open connections: in all, and per client address. A connection over a cap is
//! closed as soon as it is accepted, before it costs a task or a TLS handshake. A trusted
//! proxy carries many clients on its connections and is held only by the total; its clients
//! are held per request (`client::limit_requests_per_client`).

use std::collections::HashMap;
use std::future::{Ready, ready};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How many connections are open, and the caps.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: u32,
    max_per_address: u32,
    trusted: Vec<IpNet>,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: u32,
    per_address: HashMap<IpAddr, u32>,
}

impl ConnectionLimits {
    pub fn new(max_total: u32, max_per_address: u32, trusted: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_address,
            trusted,
            open: Mutex::new(Open::default()),
        })
    }

    fn open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a new connection from `peer`, or `None` when a cap is reached.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let per_address = !self.trusted.iter().any(|net| net.contains(&peer));
        let mut open = self.open();
        if open.total >= self.max_total {
            return None;
        }
        if per_address {
            let count = open.per_address.entry(peer).or_default();
            if *count >= self.max_per_address {
                return None;
            }
            *count += 1;
        }
        open.total += 1;
        Some(Slot {
            limits: Arc::clone(self),
            peer: per_address.then_some(peer),
        })
    }

    /// Connections open now.
    pub fn total(&self) -> u32 {
        self.open().total
    }
}

/// One open connection, counted until it is dropped.
#[derive(Debug)]
struct Slot {
    limits: Arc<ConnectionLimits>,
    /// The address it counts against, unless it came from a trusted proxy.
    peer: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.open();
        open.total = open.total.saturating_sub(1);
        if let Some(peer) = self.peer
            && let Some(count) = open.per_address.get_mut(&peer)
        {
            *count -= 1;
            if *count == 0 {
                open.per_address.remove(&peer);
            }
        }
    }
}

/// An acceptor that admits a connection only within the caps.
#[derive(Debug, Clone)]
pub struct LimitAcceptor {
    limits: Arc<ConnectionLimits>,
}

impl LimitAcceptor {
    pub fn new(limits: Arc<ConnectionLimits>) -> Self {
        Self { limits }
    }
}

/// Why a connection was closed at once.
#[derive(Debug, thiserror::Error)]
#[error("connection refused: too many connections open (from {0})")]
struct OverCap(IpAddr);

impl<S> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = match stream.peer_addr() {
            Ok(peer) => peer.ip(),
            Err(error) => return ready(Err(error)),
        };
        ready(match self.limits.admit(peer) {
            Some(slot) => Ok((
                Counted {
                    inner: stream,
                    _slot: slot,
                },
                service,
            )),
            None => Err(io::Error::other(OverCap(peer))),
        })
    }
}

/// A stream that holds its connection's place in the counts.
#[derive(Debug)]
pub struct Counted<T> {
    inner: T,
    _slot: Slot,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_in_all_and_per_address_and_free_on_drop() {
        let limits = ConnectionLimits::new(3, 2, vec!["10.0.0.1/32".parse().unwrap()]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let first = limits.admit(a).unwrap();
        let _second = limits.admit(a).unwrap();
        assert!(limits.admit(a).is_none(), "two per address");
        let _third = limits.admit(b).unwrap();
        assert!(limits.admit(b).is_none(), "three in all");
        drop(first);
        let _fourth = limits.admit(proxy).expect("a place was freed");
        assert_eq!(limits.total(), 3);
    }

    #[test]
    fn a_trusted_proxy_is_held_only_by_the_total() {
        let limits = ConnectionLimits::new(5, 1, vec!["10.0.0.1/32".parse().unwrap()]);
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| limits.admit(proxy).unwrap()).collect();
        assert!(limits.admit(proxy).is_none());
        drop(held);
        assert_eq!(limits.total(), 0);
    }
}
