//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document and
//! the bundled interactive reference page.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use prometheus::Encoder;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::http::schema::CodedError;
use crate::http::{Answer, ApiError, Code, Handled};

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /healthz`: the process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Alive", body = Health)))]
pub fn healthz() -> Answer {
    Answer::json(StatusCode::OK, &Health { status: "ok" }).unwrap_or_else(Answer::from)
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    store: StoreState,
    ring: RingState,
}

#[derive(Serialize, ToSchema)]
pub struct StoreState {
    /// `embedded` or `scylla`.
    kind: &'static str,
    reachable: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RingState {
    joined: bool,
    epoch: u64,
}

/// `GET /readyz`: green when the node accepts traffic, its store answers and it has joined the
/// ring.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready (starting, shutting down, store unreachable or not joined)", body = Readiness)))]
pub async fn readyz(state: &Arc<AppState>) -> Answer {
    let store = state.engine.store_kind();
    let store_ok = state.engine.ping_store().await.is_ok();
    let ready = state.is_ready() && store_ok;
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        store: StoreState {
            kind: store,
            reachable: store_ok,
        },
        ring: RingState {
            joined: state.membership.joined(),
            epoch: state.membership.epoch(),
        },
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Answer::json(status, &body).unwrap_or_else(Answer::from)
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 403, description = "`ip_denied`: caller outside `--admin-cidrs`", body = CodedError),
        (status = 404, description = "`not_found`: with `--admin-listen`, served on the admin listener only", body = CodedError)))]
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

/// `GET /openapi.json`: this document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub fn openapi(state: &AppState) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: state.openapi_json.clone(),
        headers: Default::default(),
        no_store: false,
    }
}

/// `GET /docs`: to `/docs/`, so the page's relative asset paths resolve.
#[utoipa::path(get, path = "/docs", tag = "ops",
    responses((status = 301, description = "To `/docs/`", headers(("Location" = String, description = "`/docs/`")))))]
pub fn docs_redirect() -> Answer {
    Answer::empty(StatusCode::MOVED_PERMANENTLY)
        .with_header(http::header::LOCATION, HeaderValue::from_static("/docs/"))
}

/// `GET /docs/`
#[utoipa::path(get, path = "/docs/", tag = "ops",
    responses((status = 200, description = "The interactive reference page", content_type = "text/html", body = String)))]
pub fn docs_index_doc() {}

/// Swagger UI, embedded in the binary from a registry crate (no CDN, no download).
#[utoipa::path(get, path = "/docs/{file}", tag = "ops", params(("file" = String, Path)),
    responses(
        (status = 200, description = "An asset of the page (HTML, CSS, JavaScript, PNG)", content_type = "application/octet-stream", body = String),
        (status = 404, description = "`not_found`: no such asset", body = CodedError)))]
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
