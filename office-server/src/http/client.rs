//! Who the client is: the TCP peer, or — when the peer is a trusted proxy — the address the
//! proxy says it forwarded for. The throttles and the per-client limits count this address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use ipnet::IpNet;

use crate::app::AppState;

/// The client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client behind `peer`: the peer itself unless it is a trusted proxy; then the rightmost
/// `X-Forwarded-For` entry that is not a trusted proxy (each proxy appends the address it saw,
/// so entries further left were written by the client and prove nothing).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for entry in entries.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => continue,
            Ok(ip) => return ip,
            // Junk the proxy passed along: nothing to the left of it can be believed.
            Err(_) => return peer,
        }
    }
    peer
}

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(Self(client_address(peer, &parts.headers, &state.proxies)))
    }
}

/// Requests in progress per client.
#[derive(Debug, Default)]
pub struct RequestCounts {
    in_progress: Mutex<HashMap<IpAddr, u32>>,
}

impl RequestCounts {
    fn enter(self: &Arc<Self>, client: IpAddr, limit: u32) -> Option<InProgress> {
        let mut counts = self
            .in_progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(client).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(InProgress {
            counts: Arc::clone(self),
            client,
        })
    }
}

/// One request in progress; counted until dropped.
struct InProgress {
    counts: Arc<RequestCounts>,
    client: IpAddr,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let mut counts = self
            .counts
            .in_progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = counts.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

/// Refuses a request with 503 when its client already has `network.max_requests_per_client`
/// in progress. The count lasts as long as the response body (a live-update stream counts
/// until it ends).
pub async fn limit_requests_per_client(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    request: Request,
    next: Next,
) -> Response {
    let Some(in_progress) = state
        .request_counts
        .enter(client, state.config.network.max_requests_per_client)
    else {
        tracing::warn!(%client, "too many requests in progress for one client");
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in progress from this address",
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return response;
    };
    let response = next.run(request).await;
    // The count is held by the body, so it lasts until the last byte is sent.
    response.map(|body| {
        axum::body::Body::new(body.map_frame(move |frame| {
            let _held = &in_progress;
            frame
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_client_is_the_first_untrusted_address_from_the_right() {
        let proxies: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            client_address(proxy, &forwarded(&["203.0.113.7"]), &proxies),
            ip("203.0.113.7")
        );
        // A client-written entry to the left is ignored.
        assert_eq!(
            client_address(proxy, &forwarded(&["198.51.100.1, 203.0.113.7"]), &proxies),
            ip("203.0.113.7")
        );
        // A chain of trusted proxies is walked through.
        assert_eq!(
            client_address(proxy, &forwarded(&["203.0.113.7", "10.1.2.3"]), &proxies),
            ip("203.0.113.7")
        );
        // A peer that is not a proxy is the client, whatever it claims.
        assert_eq!(
            client_address(stranger, &forwarded(&["203.0.113.7"]), &proxies),
            stranger
        );
        // No header, or junk in it: the proxy itself.
        assert_eq!(client_address(proxy, &HeaderMap::new(), &proxies), proxy);
        assert_eq!(
            client_address(proxy, &forwarded(&["junk"]), &proxies),
            proxy
        );
    }
}
