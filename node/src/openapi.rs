//! The OpenAPI document, generated from the handlers' annotations and types.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::introspection::{BatchBody, IntrospectBody};
use crate::api::introspection::{BatchResult, IntrospectionResult};
use crate::api::public::end_users::{
    CredentialsBody, EndUserRef, PasswordBody, RefreshBody, StatusOk, TokenResponse,
};
use crate::api::public::sessions::{Revoked, SessionList, SessionView};
use crate::api::sql::{ExecuteBody, ExecuteResult, SqlWarning};

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
        crate::api::public::sessions::list_doc,
        crate::api::public::sessions::revoke_doc,
        crate::api::public::sessions::revoke_others_doc,
        crate::api::introspection::introspect,
        crate::api::introspection::introspect_batch,
        crate::api::sql::execute_public_doc,
        crate::api::sql::execute_secret_doc,
    ),
    components(schemas(
        TokenResponse,
        EndUserRef,
        StatusOk,
        IntrospectionResult,
        BatchResult,
        SessionView,
        SessionList,
        Revoked,
        CredentialsBody,
        RefreshBody,
        PasswordBody,
        IntrospectBody,
        BatchBody,
        ExecuteBody,
        ExecuteResult,
        SqlWarning
    )),
    modifiers(&Credentials)
)]
pub struct ApiDoc;

/// The two ways in (SPEC §2) plus end-user bearer tokens, as OpenAPI security schemes.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "public_client",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Client-Id",
                "public client id; also send X-Client-Key and Origin",
            ))),
        );
        components.add_security_scheme(
            "secret_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_lists_the_seed_endpoints_and_schemes() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).expect("valid json");
        for path in [
            "/{slug}/v1/public/end-users/login",
            "/{slug}/v1/sessions/introspect",
            "/{slug}/v1/sessions/introspect/batch",
            "/{slug}/v1/public/sql/execute",
            "/{slug}/v1/sql/execute",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} documented");
        }
        assert!(doc["components"]["securitySchemes"]["secret_key"].is_object());
    }
}
