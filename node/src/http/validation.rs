//! Request-body validation with the seed's 422 shape. The seed's shape is pydantic v1's, so
//! the vocabulary (`field required`, `value_error.missing`, …) is pydantic v1's, verbatim.
//! Every problem of a body is reported, one entry each; unknown fields are ignored.

use serde_json::{json, Map, Value};

use super::errors::ApiError;
pub use super::issue::{body_loc, Issue};

/// Parses a JSON body; an empty body counts as a missing one.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::validation(vec![Issue::missing(vec![json!(
            "body"
        )])]));
    }
    serde_json::from_slice(body).map_err(|e| {
        // Python reports a truncated document at its end; serde at its last character.
        let pos = if e.is_eof() {
            String::from_utf8_lossy(body).chars().count()
        } else {
            char_offset(body, e.line(), e.column())
        };
        // serde's message without its " at line L column C" tail; the body itself is never
        // echoed (it may hold a password).
        let text = e.to_string();
        let msg = text
            .split(" at line ")
            .next()
            .unwrap_or("invalid JSON")
            .to_string();
        ApiError::validation(vec![Issue::at(
            vec![json!("body"), json!(pos)],
            msg.clone(),
            "value_error.jsondecode",
            Some(json!({"msg": msg, "pos": pos, "lineno": e.line(), "colno": e.column()})),
        )])
    })
}

/// Character offset of a 1-based (line, byte column) position, as Python's `JSONDecodeError.pos`.
fn char_offset(body: &[u8], line: usize, column: usize) -> usize {
    let text = String::from_utf8_lossy(body);
    let mut offset = 0;
    for (i, l) in text.split('\n').enumerate() {
        if i + 1 == line {
            let col = column.saturating_sub(1).min(l.len());
            let prefix = l.get(..col).unwrap_or(l);
            return offset + prefix.chars().count();
        }
        offset += l.chars().count() + 1;
    }
    offset
}

/// Typed access to the fields of a JSON object body, collecting every problem.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    issues: Vec<Issue>,
    /// Every field name looked at, so a test can tie a body type's OpenAPI schema to what
    /// its `read` accepts (`openapi::JsonBody`).
    #[cfg(test)]
    seen: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl<'a> Fields<'a> {
    pub fn of(value: &'a Value) -> Result<Self, ApiError> {
        match value {
            Value::Object(obj) => Ok(Fields {
                obj,
                issues: Vec::new(),
                #[cfg(test)]
                seen: Default::default(),
            }),
            _ => Err(ApiError::validation(vec![Issue::at(
                vec![json!("body")],
                "value is not a valid dict",
                "type_error.dict",
                None,
            )])),
        }
    }

    pub fn push(&mut self, issue: Issue) {
        self.issues.push(issue);
    }

    /// The names of the fields looked at so far.
    #[cfg(test)]
    pub fn seen(&self) -> std::collections::BTreeSet<String> {
        self.seen.borrow().clone()
    }

    fn present(&mut self, name: &str, required: bool) -> Option<&'a Value> {
        #[cfg(test)]
        self.seen.borrow_mut().insert(name.to_string());
        match self.obj.get(name) {
            None if required => {
                self.issues.push(Issue::missing(body_loc(name)));
                None
            }
            Some(Value::Null) if required => {
                self.issues.push(Issue::at(
                    body_loc(name),
                    "none is not an allowed value",
                    "type_error.none.not_allowed",
                    None,
                ));
                None
            }
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn check_str(&mut self, loc: Vec<Value>, v: &Value, min: usize, max: usize) -> Option<String> {
        let Value::String(s) = v else {
            self.issues
                .push(Issue::at(loc, "str type expected", "type_error.str", None));
            return None;
        };
        let n = s.chars().count();
        if n < min {
            self.issues.push(Issue::at(
                loc,
                format!("ensure this value has at least {min} characters"),
                "value_error.any_str.min_length",
                Some(json!({ "limit_value": min })),
            ));
            None
        } else if n > max {
            self.issues.push(Issue::at(
                loc,
                format!("ensure this value has at most {max} characters"),
                "value_error.any_str.max_length",
                Some(json!({ "limit_value": max })),
            ));
            None
        } else {
            Some(s.clone())
        }
    }

    /// A required string of `min..=max` characters.
    pub fn string(&mut self, name: &str, min: usize, max: usize) -> Option<String> {
        let v = self.present(name, true)?;
        self.check_str(body_loc(name), v, min, max)
    }

    /// An optional string (absent or null → None) of at most `max` characters.
    pub fn opt_string(&mut self, name: &str, max: usize) -> Option<String> {
        let v = self.present(name, false)?;
        self.check_str(body_loc(name), v, 0, max)
    }

    /// True when the field exists (even as null); for PATCH-style bodies.
    pub fn has(&self, name: &str) -> bool {
        #[cfg(test)]
        self.seen.borrow_mut().insert(name.to_string());
        self.obj.contains_key(name)
    }

    pub fn bool(&mut self, name: &str, required: bool) -> Option<bool> {
        let v = self.present(name, required)?;
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.issues.push(Issue::at(
                    body_loc(name),
                    "value could not be parsed to a boolean",
                    "type_error.bool",
                    None,
                ));
                None
            }
        }
    }

    /// A list of strings: at most `max_items`, each at most `max_len` characters.
    pub fn string_list(
        &mut self,
        name: &str,
        required: bool,
        max_items: usize,
        max_len: usize,
    ) -> Option<Vec<String>> {
        let v = self.present(name, required)?;
        let Value::Array(items) = v else {
            self.issues.push(Issue::at(
                body_loc(name),
                "value is not a valid list",
                "type_error.list",
                None,
            ));
            return None;
        };
        if items.len() > max_items {
            self.issues.push(Issue::at(
                body_loc(name),
                format!("ensure this value has at most {max_items} items"),
                "value_error.list.max_items",
                Some(json!({ "limit_value": max_items })),
            ));
            return None;
        }
        let before = self.issues.len();
        let out: Vec<String> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                self.check_str(vec![json!("body"), json!(name), json!(i)], item, 0, max_len)
            })
            .collect();
        (self.issues.len() == before).then_some(out)
    }

    /// An optional integer in `min..=max` (absent or null → None), with pydantic v1's
    /// `type_error.integer`, `value_error.number.not_ge` and `value_error.number.not_le`.
    pub fn opt_int(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.present(name, false)?;
        let n = match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            _ => None,
        };
        let Some(n) = n else {
            self.issues.push(Issue::at(
                body_loc(name),
                "value is not a valid integer",
                "type_error.integer",
                None,
            ));
            return None;
        };
        if n < min {
            self.issues.push(Issue::at(
                body_loc(name),
                format!("ensure this value is greater than or equal to {min}"),
                "value_error.number.not_ge",
                Some(json!({ "limit_value": min })),
            ));
            None
        } else if n > max {
            self.issues.push(Issue::at(
                body_loc(name),
                format!("ensure this value is less than or equal to {max}"),
                "value_error.number.not_le",
                Some(json!({ "limit_value": max })),
            ));
            None
        } else {
            Some(n)
        }
    }

    /// A required UUID given as a string (`type_error.uuid` otherwise, as pydantic v1).
    pub fn uuid(&mut self, name: &str) -> Option<uuid::Uuid> {
        let v = self.present(name, true)?;
        let s = self.check_str(body_loc(name), v, 0, usize::MAX)?;
        match uuid::Uuid::parse_str(&s) {
            Ok(id) => Some(id),
            Err(_) => {
                self.issues.push(Issue::at(
                    body_loc(name),
                    "value is not a valid uuid",
                    "type_error.uuid",
                    None,
                ));
                None
            }
        }
    }

    /// An optional JSON object (absent or null → an empty one).
    pub fn opt_object(&mut self, name: &str) -> Option<Map<String, Value>> {
        match self.present(name, false) {
            None => Some(Map::new()),
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => {
                self.issues.push(Issue::at(
                    body_loc(name),
                    "value is not a valid dict",
                    "type_error.dict",
                    None,
                ));
                None
            }
        }
    }

    /// An optional string that must be one of `allowed` (pydantic v1's enum error otherwise).
    pub fn opt_enum(&mut self, name: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let v = self.present(name, false)?;
        if let Some(found) = v.as_str().and_then(|s| allowed.iter().find(|a| **a == s)) {
            return Some(found);
        }
        let permitted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
        self.issues.push(Issue::at(
            body_loc(name),
            format!(
                "value is not a valid enumeration member; permitted: {}",
                permitted.join(", ")
            ),
            "type_error.enum",
            Some(json!({ "enum_values": allowed })),
        ));
        None
    }

    /// The raw value of a field for endpoint-specific checks (absent or null → None).
    pub fn raw(&mut self, name: &str) -> Option<&'a Value> {
        self.present(name, false)
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.issues))
        }
    }
}

/// A field that `Fields::finish` accepted: always present. The error arm is unreachable
/// unless a handler skips `finish`, and then it is a bug answered as a 500, not a panic.
pub fn validated<T>(value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        ApiError::from(commonrock_actors::DomainError::Internal(
            "field read before validation finished".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(e: ApiError) -> Value {
        e.body["detail"].clone()
    }

    #[test]
    fn every_problem_is_reported() {
        let v = json!({"external_id": 5, "password": "short"});
        let mut f = Fields::of(&v).expect("object");
        f.string("external_id", 1, 128);
        f.string("password", 8, 1024);
        f.string("device_id", 1, 128);
        let d = issues(f.finish().expect_err("three problems"));
        assert_eq!(
            d,
            json!([
                {"loc":["body","external_id"],"msg":"str type expected","type":"type_error.str"},
                {"loc":["body","password"],"msg":"ensure this value has at least 8 characters",
                 "type":"value_error.any_str.min_length","ctx":{"limit_value":8}},
                {"loc":["body","device_id"],"msg":"field required","type":"value_error.missing"}
            ])
        );
    }

    #[test]
    fn bad_json_reports_the_character_offset() {
        let e = parse_json("{\"a\": \"é\", }".as_bytes()).expect_err("trailing comma");
        let d = issues(e);
        assert_eq!(d[0]["type"], "value_error.jsondecode");
        assert_eq!(d[0]["loc"], json!(["body", 11]));
        // At the end of a truncated document Python reports its length, as we do.
        let e = parse_json(br#"{"external_id":"user-1","#).expect_err("truncated");
        assert_eq!(issues(e)[0]["loc"], json!(["body", 24]));
        let e = parse_json(b"").expect_err("empty");
        assert_eq!(issues(e)[0]["loc"], json!(["body"]));
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let v = json!({"x": "é".repeat(128)});
        let mut f = Fields::of(&v).expect("object");
        assert!(f.string("x", 1, 128).is_some());
        assert!(f.finish().is_ok());
    }
}
