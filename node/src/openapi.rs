//! The OpenAPI document, generated from the handlers' annotations and types.

use utoipa::OpenApi;

use crate::api::introspection::{BatchResult, IntrospectionResult};
use crate::api::public::end_users::{EndUserRef, StatusOk, TokenResponse};
use crate::api::public::sessions::{Revoked, SessionList, SessionView};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CommonRock API",
        description = "Authentication, sessions and a simple database as a service. Error bodies: docs/error-codes.md."
    ),
    paths(
        crate::api::public::end_users::signup,
        crate::api::public::end_users::login,
        crate::api::public::end_users::refresh,
        crate::api::public::end_users::logout,
        crate::api::public::end_users::me,
        crate::api::public::end_users::password,
        crate::api::introspection::introspect,
        crate::api::introspection::introspect_batch,
    ),
    components(schemas(
        TokenResponse,
        EndUserRef,
        StatusOk,
        IntrospectionResult,
        BatchResult,
        SessionView,
        SessionList,
        Revoked
    ))
)]
pub struct ApiDoc;

pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_string())
}
