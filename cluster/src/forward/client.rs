//! The sending side: one pooled HTTP/1.1 client per node, keep-alive connections to each peer
//! (TCP_NODELAY), a deadline per forward. A timeout is an unknown outcome and answers 503.
//! With cluster TLS the same pool dials `https://` and presents this node's certificate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use commonrock_actors::owner::{request_id, Forwarder, OwnerCall, OwnerError, OwnerReply};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::auth::ClusterKey;
use super::tls::{tls_error, Throttle};
use super::{wall_ms, Answer, Envelope, MAC_HEADER, MAX_BODY, OWNER_PATH};
use crate::membership::Membership;

/// The pool, plain or TLS: two client types, since hyper's pool is typed by its connector.
enum Pool {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

impl Pool {
    fn new(connect_timeout: Duration, tls: Option<Arc<rustls::ClientConfig>>) -> Pool {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256);
        match tls {
            None => Pool::Plain(builder.build(connector)),
            Some(config) => {
                // The HTTPS connector hands `https://` URIs to the TCP connector it wraps.
                connector.enforce_http(false);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config((*config).clone())
                    .https_only()
                    .enable_http1()
                    .wrap_connector(connector);
                Pool::Tls(builder.build(https))
            }
        }
    }

    fn scheme(&self) -> &'static str {
        match self {
            Pool::Plain(_) => "http",
            Pool::Tls(_) => "https",
        }
    }

    async fn request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>, hyper_util::client::legacy::Error> {
        match self {
            Pool::Plain(c) => c.request(request).await,
            Pool::Tls(c) => c.request(request).await,
        }
    }
}

pub struct HttpForwarder {
    pool: Pool,
    membership: Arc<Membership>,
    key: ClusterKey,
    timeout: Duration,
    refusal_log: Throttle,
    tls_log: Throttle,
}

impl HttpForwarder {
    /// `tls`: the cluster TLS client side (`ClusterTls::client`), or None for plain HTTP.
    pub fn new(
        membership: Arc<Membership>,
        key: ClusterKey,
        timeout: Duration,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        HttpForwarder {
            pool: Pool::new(timeout, tls),
            membership,
            key,
            timeout,
            refusal_log: Throttle::new(Duration::from_secs(10)),
            tls_log: Throttle::new(Duration::from_secs(10)),
        }
    }

    fn log_refusal(&self, node: &str, addr: &str) {
        if self.refusal_log.allow() {
            tracing::error!(
                peer = node,
                addr,
                "a peer refused this node's cluster key, or answered without it: every node must use the same --secret-file"
            );
        }
    }

    /// A failed request: a TLS failure is a configuration error worth an error line (rate
    /// limited); anything else (a peer going away) is ordinary and stays at debug.
    fn log_failure(&self, node: &str, addr: &str, error: &hyper_util::client::legacy::Error) {
        match tls_error(error) {
            Some(tls) => {
                if self.tls_log.allow() {
                    tracing::error!(
                        peer = node,
                        addr,
                        error = %tls,
                        "TLS handshake with a peer failed: every node needs a certificate (--cluster-tls-cert) signed by the same --cluster-tls-ca, valid for the host it advertises"
                    );
                }
            }
            // A plain node dialling a TLS listener reads a TLS alert where an HTTP answer
            // should be: the usual half-rolled-out configuration, so say so.
            None if matches!(self.pool, Pool::Plain(_)) && not_http(error) => {
                if self.tls_log.allow() {
                    tracing::error!(
                        peer = node,
                        addr,
                        error = %error,
                        "a peer answered something other than HTTP, as a TLS-only cluster listener does: give every node the same --cluster-tls-cert/-key/-ca settings, or none"
                    );
                }
            }
            None => tracing::debug!(peer = node, addr, error = %error, "forward failed"),
        }
    }

    async fn exchange(&self, node: &str, addr: &str, body: Vec<u8>) -> Answer {
        let mac = self.key.sign(&body);
        let scheme = self.pool.scheme();
        let request = http::Request::post(format!("{scheme}://{addr}{OWNER_PATH}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(MAC_HEADER, &mac)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| OwnerError::Internal)?;
        let response = self.pool.request(request).await.map_err(|e| {
            self.log_failure(node, addr, &e);
            OwnerError::Unavailable
        })?;
        let status = response.status();
        let answer_mac = response
            .headers()
            .get(MAC_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| OwnerError::Unavailable)?
            .to_bytes();
        if status == http::StatusCode::UNAUTHORIZED {
            self.log_refusal(node, addr);
            return Err(OwnerError::Unavailable);
        }
        let authentic = answer_mac.is_some_and(|m| self.key.verify_answer(&mac, &bytes, &m));
        if status != http::StatusCode::OK || !authentic {
            self.log_refusal(node, addr);
            return Err(OwnerError::Unavailable);
        }
        serde_json::from_slice::<Answer>(&bytes).map_err(|e| {
            tracing::error!(peer = node, error = %e, "a peer's answer does not parse");
            OwnerError::Internal
        })?
    }
}

#[async_trait]
impl Forwarder for HttpForwarder {
    async fn forward(
        &self,
        node: &str,
        epoch: u64,
        call: &OwnerCall,
    ) -> Result<OwnerReply, OwnerError> {
        let Some(addr) = self.membership.address(node) else {
            // An owner in the ring without a live heartbeat: dead, about to be taken over.
            tracing::debug!(peer = node, "no address for the owner");
            return Err(OwnerError::Unavailable);
        };
        let envelope = Envelope {
            epoch,
            from: self.membership.local().to_string(),
            sent_ms: wall_ms(),
            request_id: request_id().map(|id| id.to_string()),
            call: call.clone(),
        };
        let body = serde_json::to_vec(&envelope).map_err(|_| OwnerError::Internal)?;
        match tokio::time::timeout(self.timeout, self.exchange(node, &addr, body)).await {
            Ok(answer) => answer,
            Err(_) => {
                tracing::warn!(peer = node, addr, "forward timed out");
                Err(OwnerError::Unavailable)
            }
        }
    }
}

/// Whether the peer's answer did not parse as HTTP.
fn not_http(error: &hyper_util::client::legacy::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_parse)
        {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::tls::test_pki::{ca, node, Dir};
    use crate::forward::tls::ClusterTls;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn tls_pair() -> (ClusterTls, Dir) {
        let dir = Dir::new();
        let ca = ca("cluster ca");
        let (cert, key) = node(&ca, &["127.0.0.1"]);
        let tls = ClusterTls::load(&dir.files("n1", &ca, &cert, &key), "127.0.0.1:1").expect("tls");
        (tls, dir)
    }

    async fn post(
        pool: &Pool,
        addr: std::net::SocketAddr,
    ) -> Result<http::StatusCode, hyper_util::client::legacy::Error> {
        let request = http::Request::post(format!("{}://{addr}{OWNER_PATH}", pool.scheme()))
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("request");
        pool.request(request).await.map(|r| r.status())
    }

    #[tokio::test]
    async fn the_tls_pool_speaks_http1_to_a_tls_listener() {
        let (tls, _dir) = tls_pair();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let stream = acceptor.accept(tcp).await.expect("handshake");
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
        let pool = Pool::new(Duration::from_secs(5), Some(tls.client.clone()));
        assert_eq!(
            post(&pool, addr).await.expect("answer"),
            http::StatusCode::OK
        );
    }

    #[tokio::test]
    async fn mixed_configurations_are_told_apart_from_a_peer_going_away() {
        // A TLS node dialling a plain listener reads HTTP where a TLS record should be.
        let (tls, _dir) = tls_pair();
        let plain = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let plain_addr = plain.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut tcp, _) = plain.accept().await.expect("accept");
            let mut buf = [0u8; 512];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        });
        let pool = Pool::new(Duration::from_secs(5), Some(tls.client.clone()));
        let e = post(&pool, plain_addr).await.expect_err("no TLS there");
        assert!(tls_error(&e).is_some(), "{e:?}");

        // A plain node dialling a TLS listener reads a TLS alert where HTTP should be.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let tls_addr = listener.local_addr().expect("addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let _ = acceptor.accept(tcp).await;
        });
        let pool = Pool::new(Duration::from_secs(5), None);
        let e = post(&pool, tls_addr).await.expect_err("no HTTP there");
        assert!(not_http(&e), "{e:?}");
        assert!(tls_error(&e).is_none(), "{e:?}");

        // A peer that is simply not there is neither.
        let gone = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let gone_addr = gone.local_addr().expect("addr");
        drop(gone);
        let e = post(&pool, gone_addr).await.expect_err("refused");
        assert!(!not_http(&e) && tls_error(&e).is_none(), "{e:?}");
    }
}
