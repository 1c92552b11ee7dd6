//! The receiving side: the cluster listener. It answers only authenticated owner calls, as
//! owner or with "not owner at my epoch"; it never forwards again. It is never served on the
//! public or admin listener. With cluster TLS it speaks only TLS and requires a client
//! certificate of the cluster CA before any HTTP is read.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use commonrock_actors::owner::{OwnerError, RequestContext, REQUEST};
use commonrock_actors::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::auth::{ClusterKey, MAX_SKEW_MS};
use super::tls::{tls_error, Throttle};
use super::{wall_ms, Answer, Envelope, MAC_HEADER, MAX_BODY, OWNER_PATH};

/// How long a connecting peer may take over its TLS handshake: a silent client must not hold
/// a task and a socket for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    let context = RequestContext {
        id: envelope.request_id.as_deref().unwrap_or("-").into(),
        route: "forwarded",
    };
    let answer: Answer = REQUEST
        .scope(
            context,
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
/// their current call. With `tls` (`ClusterTls::server`) every connection is a mutual-TLS one.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    key: ClusterKey,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let handshake_log = Arc::new(Throttle::new(Duration::from_secs(10)));
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
        let stop = stop.clone();
        let Some(acceptor) = acceptor.clone() else {
            tokio::spawn(serve_connection(stream, engine, key, peer, stop));
            continue;
        };
        let handshake_log = handshake_log.clone();
        // The handshake runs in the connection's task so a slow peer never delays the others.
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve_connection(tls, engine, key, peer, stop).await,
                Ok(Err(e)) => {
                    // A TLS error is a peer (or a stray client) without a certificate of the
                    // cluster CA; a bare I/O error is a peer that went away mid-handshake.
                    match tls_error(&e) {
                        Some(t) if handshake_log.allow() => tracing::error!(
                            %peer,
                            error = %t,
                            "refused a cluster connection at the TLS handshake: every node needs a certificate (--cluster-tls-cert) signed by the same --cluster-tls-ca"
                        ),
                        Some(_) => {}
                        None => tracing::debug!(%peer, error = %e, "cluster TLS handshake ended"),
                    }
                }
                Err(_) => tracing::debug!(%peer, "cluster TLS handshake timed out"),
            }
        });
    }
}

/// One keep-alive HTTP/1.1 connection, plain or TLS.
async fn serve_connection<I>(
    io: I,
    engine: Arc<Engine>,
    key: ClusterKey,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(engine.clone(), key.clone(), peer, req));
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
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
}
