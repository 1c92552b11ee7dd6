//! One entry of the seed's 422 list (pydantic v1's shape): where (`loc`), what (`msg`), which
//! kind (`type`). Shared by the validators that find problems and the error that carries them.

use serde::Serialize;
use serde_json::{json, Value};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Issue {
    pub loc: Vec<Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx: Option<Value>,
}

impl Issue {
    pub fn at(loc: Vec<Value>, msg: impl Into<String>, kind: &str, ctx: Option<Value>) -> Self {
        Issue {
            loc,
            msg: msg.into(),
            kind: kind.to_string(),
            ctx,
        }
    }

    pub fn missing(loc: Vec<Value>) -> Self {
        Issue::at(loc, "field required", "value_error.missing", None)
    }

    /// A semantically invalid value of a body field (an unparseable CIDR, a bad slug, …).
    pub fn value_error(field: &str, msg: impl Into<String>) -> Self {
        Issue::at(body_loc(field), msg, "value_error", None)
    }

    /// A query parameter of the simple DB: `loc ["body","params",name]` (SPEC §5).
    pub fn param(name: &str, msg: impl Into<String>, kind: &str) -> Self {
        Issue::at(
            vec![json!("body"), json!("params"), json!(name)],
            msg,
            kind,
            None,
        )
    }

    /// A query-string flag that is not a boolean: `loc ["query",name]`.
    pub fn query_bool(name: &str) -> Self {
        Issue::at(
            vec![json!("query"), json!(name)],
            "value could not be parsed to a boolean",
            "type_error.bool",
            None,
        )
    }

    /// A value taken from a header: `loc ["header","x-device-id"]`.
    pub fn header_too_long(header: &str, max: usize) -> Self {
        Issue::at(
            vec![json!("header"), json!(header)],
            format!("ensure this value has at most {max} characters"),
            "value_error.any_str.max_length",
            Some(json!({ "limit_value": max })),
        )
    }
}

pub fn body_loc(field: &str) -> Vec<Value> {
    vec![json!("body"), json!(field)]
}
