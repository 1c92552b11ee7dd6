//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document and
//! the bundled interactive reference page.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use prometheus::Encoder;
use serde_json::json;

use super::AppState;
use crate::http::{Answer, ApiError, Code, Handled};

pub fn healthz() -> Answer {
    Answer::json(StatusCode::OK, &json!({"status": "ok"})).unwrap_or_else(Answer::from)
}

/// Green when the node accepts traffic and its store answers.
pub async fn readyz(state: &Arc<AppState>) -> Answer {
    let store = state.engine.store_kind();
    let store_ok = state.engine.ping_store().await.is_ok();
    let ready = state.is_ready() && store_ok;
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": {"kind": store, "reachable": store_ok},
        "ring": {"joined": state.membership.joined(), "epoch": state.membership.epoch()},
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Answer::json(status, &body).unwrap_or_else(Answer::from)
}

pub fn metrics(state: &AppState) -> Handled {
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&state.registry.gather(), &mut buf)
        .map_err(|e| ApiError::from(commonrock_actors::DomainError::Internal(e.to_string())))?;
    Ok(Answer {
        status: StatusCode::OK,
        body: Bytes::from(buf),
        headers: Default::default(),
        no_store: false,
    }
    .with_header(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    ))
}

pub fn openapi(state: &AppState) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: state.openapi_json.clone(),
        headers: Default::default(),
        no_store: false,
    }
}

pub fn docs_redirect() -> Answer {
    Answer::empty(StatusCode::MOVED_PERMANENTLY)
        .with_header(http::header::LOCATION, HeaderValue::from_static("/docs/"))
}

/// Swagger UI, embedded in the binary from a registry crate (no CDN, no download).
pub fn docs(tail: &str) -> Answer {
    let config = Arc::new(utoipa_swagger_ui::Config::from("/openapi.json"));
    match utoipa_swagger_ui::serve(tail, config) {
        Ok(Some(file)) => {
            let ct = HeaderValue::from_str(&file.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            Answer {
                status: StatusCode::OK,
                body: Bytes::from(file.bytes.into_owned()),
                headers: Default::default(),
                no_store: false,
            }
            .with_header(CONTENT_TYPE, ct)
        }
        Ok(None) => ApiError::code(Code::NotFound).into(),
        Err(e) => ApiError::from(commonrock_actors::DomainError::Internal(e.to_string())).into(),
    }
}
