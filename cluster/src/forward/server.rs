//! The receiving side: the cluster listener. It answers only authenticated owner calls, as
//! owner or with "not owner at my epoch"; it never forwards again. It is never served on the
//! public or admin listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use commonrock_actors::owner::{OwnerError, REQUEST_ID};
use commonrock_actors::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::auth::{ClusterKey, MAX_SKEW_MS};
use super::{wall_ms, Answer, Envelope, MAC_HEADER, MAX_BODY, OWNER_PATH};

fn plain(status: http::StatusCode, text: &'static str) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r
}

async fn handle(
    engine: Arc<Engine>,
    key: ClusterKey,
    peer: SocketAddr,
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    if request.method() != http::Method::POST || request.uri().path() != OWNER_PATH {
        return Ok(plain(http::StatusCode::NOT_FOUND, "not found"));
    }
    let Some(mac) = request
        .headers()
        .get(MAC_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        tracing::warn!(%peer, "refused a cluster call without a key");
        return Ok(plain(http::StatusCode::UNAUTHORIZED, "unauthenticated"));
    };
    let Ok(body) = Limited::new(request.into_body(), MAX_BODY).collect().await else {
        return Ok(plain(http::StatusCode::PAYLOAD_TOO_LARGE, "too large"));
    };
    let body = body.to_bytes();
    if !key.verify(&body, &mac) {
        tracing::error!(
            %peer,
            "refused a cluster call signed with another key: every node must use the same --secret-file"
        );
        return Ok(plain(http::StatusCode::UNAUTHORIZED, "unauthenticated"));
    }
    let envelope: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(%peer, error = %e, "an authenticated cluster call does not parse");
            return Ok(plain(http::StatusCode::BAD_REQUEST, "bad call"));
        }
    };
    if (wall_ms() - envelope.sent_ms).abs() > MAX_SKEW_MS {
        tracing::error!(%peer, from = %envelope.from, "refused a cluster call sent minutes away from this node's clock (a replay, or clocks far apart)");
        return Ok(plain(http::StatusCode::UNAUTHORIZED, "stale"));
    }
    let request_id: Arc<str> = envelope.request_id.as_deref().unwrap_or("-").into();
    let answer: Answer = REQUEST_ID
        .scope(
            request_id,
            engine.serve_forwarded(envelope.call, envelope.epoch),
        )
        .await;
    if let Err(OwnerError::NotOwner { epoch }) = &answer {
        tracing::debug!(from = %envelope.from, epoch, "not owner");
    }
    let out = serde_json::to_vec(&answer).unwrap_or_default();
    let answer_mac = key.sign_answer(&mac, &out);
    let mut response = http::Response::new(Full::new(Bytes::from(out)));
    if let Ok(v) = http::HeaderValue::from_str(&answer_mac) {
        response.headers_mut().insert(MAC_HEADER, v);
    }
    Ok(response)
}

/// Serves owner calls on `listener` until `stop` turns true; connections in progress finish
/// their current call.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    key: ClusterKey,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cluster listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let engine = engine.clone();
        let key = key.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(engine.clone(), key.clone(), peer, req));
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "cluster connection ended");
                    }
                }
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
