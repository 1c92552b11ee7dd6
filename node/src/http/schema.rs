//! What the handlers share with the OpenAPI document (`crate::openapi`): request bodies parsed
//! into the very types the document describes, and the schemas of the three error shapes. It
//! sits below both, so the handlers never import the document that lists them.

use serde_json::{json, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::http::validation::{validated, Fields};
use crate::http::{ApiError, Code, Request};

/// A JSON request body: the one type its OpenAPI schema is derived from and the handler
/// receives. `read` takes every field through the validating `Fields` (pydantic v1's 422
/// shape, every problem reported); a unit test checks that the fields it reads are exactly the
/// schema's properties, so neither can gain a field the other lacks.
pub trait JsonBody: ToSchema + Sized {
    /// Reads and checks every field; None when any is invalid (the problems are in `f`).
    fn read(f: &mut Fields<'_>, req: &Request) -> Option<Self>;

    /// The request's body (415 when not JSON, 422 when malformed or invalid).
    fn parse(req: &Request) -> Result<Self, ApiError> {
        let value = req.json()?;
        Self::from_json(&value, req)
    }

    fn from_json(value: &Value, req: &Request) -> Result<Self, ApiError> {
        let mut f = Fields::of(value)?;
        let body = Self::read(&mut f, req);
        f.finish()?;
        validated(body)
    }
}

fn schema(value: Value) -> RefOr<Schema> {
    // The literals below are valid schema objects; a mistake shows as an empty schema and
    // fails the unit tests.
    serde_json::from_value(value).unwrap_or_default()
}

/// `{"detail":{"code":…,"message":…}}`; `code` is one of `Code::ALL`.
pub enum CodedError {}

impl PartialSchema for CodedError {
    fn schema() -> RefOr<Schema> {
        let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        schema(json!({
            "type": "object",
            "description": "A coded error (docs/error-codes.md).",
            "required": ["detail"],
            "properties": {"detail": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string", "description": "The code's fixed sentence, for some codes followed by `: ` and a reason."}
                }
            }}
        }))
    }
}
impl ToSchema for CodedError {}

/// The seed's plain shape of the end-user endpoints' outcomes: `{"detail":"Invalid session"}`.
pub enum PlainError {}

impl PartialSchema for PlainError {
    fn schema() -> RefOr<Schema> {
        schema(json!({
            "type": "object",
            "required": ["detail"],
            "properties": {"detail": {"type": "string", "enum": [
                "Invalid credentials",
                "External ID already registered",
                "Invalid refresh token",
                "Invalid session"
            ]}}
        }))
    }
}
impl ToSchema for PlainError {}

/// pydantic v1's validation list (docs/error-codes.md, "Validation errors").
pub enum ValidationError {}

impl PartialSchema for ValidationError {
    fn schema() -> RefOr<Schema> {
        schema(json!({
            "type": "object",
            "required": ["detail"],
            "properties": {"detail": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["loc", "msg", "type"],
                    "properties": {
                        "loc": {
                            "type": "array",
                            "description": "`[\"body\", field, …]`, `[\"body\", offset]` for malformed JSON, `[\"header\", \"x-device-id\"]` or `[\"query\", name]`.",
                            "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}
                        },
                        "msg": {"type": "string"},
                        "type": {"type": "string", "examples": ["value_error.missing"]},
                        "ctx": {"type": "object"}
                    }
                }
            }}
        }))
    }
}
impl ToSchema for ValidationError {}
