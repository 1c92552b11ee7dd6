//! The sending side: one pooled HTTP/1.1 client per node, keep-alive connections to each peer
//! (TCP_NODELAY), a deadline per forward. A timeout is an unknown outcome and answers 503.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use commonrock_actors::owner::{request_id, Forwarder, OwnerCall, OwnerError, OwnerReply};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::auth::ClusterKey;
use super::{wall_ms, Answer, Envelope, MAC_HEADER, MAX_BODY, OWNER_PATH};
use crate::membership::Membership;

pub struct HttpForwarder {
    client: Client<HttpConnector, Full<Bytes>>,
    membership: Arc<Membership>,
    key: ClusterKey,
    timeout: Duration,
    last_refusal_log: std::sync::Mutex<Option<Instant>>,
}

impl HttpForwarder {
    pub fn new(membership: Arc<Membership>, key: ClusterKey, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(connector);
        HttpForwarder {
            client,
            membership,
            key,
            timeout,
            last_refusal_log: std::sync::Mutex::new(None),
        }
    }

    fn log_refusal(&self, node: &str, addr: &str) {
        let mut last = self
            .last_refusal_log
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) > Duration::from_secs(10)) {
            *last = Some(now);
            tracing::error!(
                peer = node,
                addr,
                "a peer refused this node's cluster key, or answered without it: every node must use the same --secret-file"
            );
        }
    }

    async fn exchange(&self, node: &str, addr: &str, body: Vec<u8>) -> Answer {
        let mac = self.key.sign(&body);
        let request = http::Request::post(format!("http://{addr}{OWNER_PATH}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(MAC_HEADER, &mac)
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| OwnerError::Internal)?;
        let response = self.client.request(request).await.map_err(|e| {
            tracing::debug!(peer = node, addr, error = %e, "forward failed");
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
