//! Order-preserving key bytes for primary keys and index entries, bucket placement, and the
//! conversions between GlueSQL values, stored row JSON and API JSON.

use chrono::{DateTime, NaiveDateTime};
use gluesql_core::data::Value;
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::store::rows::{ColumnType, TableRecord};

const NULL_TAG: u8 = 0x00;
/// The key of NULL: below every other key.
pub const NULL_KEY: [u8; 1] = [NULL_TAG];
const VALUE_TAG: u8 = 0x01;
const STORED_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6f";
/// The API's time format (SPEC: `2026-02-04T13:00:00Z`).
const API_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Partition of a row: deterministic across nodes and releases (xxh3, no seed).
pub fn bucket_of(pk: &[u8], buckets: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(pk) % u64::from(buckets.max(1))) as u32
}

/// Coerces an engine value to a column's type, as the engine would compare it. `None` when it
/// cannot be represented (then it can equal no stored value).
pub fn coerce(ty: ColumnType, value: &Value) -> Option<Value> {
    let v = match (ty, value) {
        (_, Value::Null) => Value::Null,
        (ColumnType::Integer, v) => Value::I64(as_i64(v)?),
        (ColumnType::Float, v) => Value::F64(as_f64(v)?),
        (ColumnType::Text | ColumnType::Json, Value::Str(s)) => Value::Str(s.clone()),
        (ColumnType::Boolean, Value::Bool(b)) => Value::Bool(*b),
        (ColumnType::Uuid, Value::Uuid(u)) => Value::Uuid(*u),
        (ColumnType::Uuid, Value::Str(s)) => Value::Uuid(Uuid::parse_str(s).ok()?.as_u128()),
        (ColumnType::Timestamp, Value::Timestamp(t)) => Value::Timestamp(*t),
        (ColumnType::Timestamp, Value::Str(s)) => Value::Timestamp(parse_time(s)?),
        _ => return None,
    };
    Some(v)
}

fn as_i64(v: &Value) -> Option<i64> {
    Some(match v {
        Value::I8(n) => i64::from(*n),
        Value::I16(n) => i64::from(*n),
        Value::I32(n) => i64::from(*n),
        Value::I64(n) => *n,
        Value::I128(n) => i64::try_from(*n).ok()?,
        Value::U8(n) => i64::from(*n),
        Value::U16(n) => i64::from(*n),
        Value::U32(n) => i64::from(*n),
        Value::U64(n) => i64::try_from(*n).ok()?,
        Value::U128(n) => i64::try_from(*n).ok()?,
        _ => return None,
    })
}

fn as_f64(v: &Value) -> Option<f64> {
    Some(match v {
        Value::F32(f) => f64::from(*f),
        Value::F64(f) => *f,
        other => as_i64(other)? as f64,
    })
}

/// Key bytes whose bytewise order is the column type's order; NULL sorts first.
pub fn encode_key(ty: ColumnType, value: &Value) -> Option<Vec<u8>> {
    let value = coerce(ty, value)?;
    let mut out = Vec::with_capacity(17);
    match value {
        Value::Null => out.push(NULL_TAG),
        Value::I64(n) => {
            out.push(VALUE_TAG);
            out.extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::F64(f) => {
            out.push(VALUE_TAG);
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits ^ (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::Bool(b) => out.extend_from_slice(&[VALUE_TAG, u8::from(b)]),
        Value::Uuid(u) => {
            out.push(VALUE_TAG);
            out.extend_from_slice(&u.to_be_bytes());
        }
        Value::Timestamp(t) => {
            out.push(VALUE_TAG);
            let micros = t.and_utc().timestamp_micros();
            out.extend_from_slice(&((micros as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Str(s) => {
            out.push(VALUE_TAG);
            out.extend_from_slice(s.as_bytes());
        }
        _ => return None,
    }
    Some(out)
}

pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.naive_utc());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

/// A stored cell (row JSON) as an engine value.
pub fn stored_to_value(ty: ColumnType, cell: &Json) -> Result<Value, String> {
    if cell.is_null() {
        return Ok(Value::Null);
    }
    let bad = || format!("stored {} cell does not decode", ty.name());
    Ok(match ty {
        ColumnType::Text => Value::Str(cell.as_str().ok_or_else(bad)?.to_owned()),
        ColumnType::Integer => Value::I64(cell.as_i64().ok_or_else(bad)?),
        ColumnType::Float => Value::F64(cell.as_f64().ok_or_else(bad)?),
        ColumnType::Boolean => Value::Bool(cell.as_bool().ok_or_else(bad)?),
        ColumnType::Uuid => Value::Uuid(
            Uuid::parse_str(cell.as_str().ok_or_else(bad)?)
                .map_err(|_| bad())?
                .as_u128(),
        ),
        ColumnType::Timestamp => Value::Timestamp(
            NaiveDateTime::parse_from_str(cell.as_str().ok_or_else(bad)?, STORED_TIME_FORMAT)
                .map_err(|_| bad())?,
        ),
        // The engine sees JSON as its text; it is parsed back on output.
        ColumnType::Json => Value::Str(cell.to_string()),
    })
}

/// An engine value as a stored cell; `Err` names what is wrong for the caller.
pub fn value_to_stored(ty: ColumnType, value: &Value) -> Result<Json, String> {
    let Some(value) = coerce(ty, value) else {
        return Err(format!("value is not a valid {}", ty.name()));
    };
    Ok(match value {
        Value::Null => Json::Null,
        Value::I64(n) => Json::from(n),
        Value::F64(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| "NaN and infinite floats cannot be stored".to_owned())?,
        Value::Bool(b) => Json::Bool(b),
        Value::Uuid(u) => Json::String(Uuid::from_u128(u).hyphenated().to_string()),
        Value::Timestamp(t) => Json::String(t.format(STORED_TIME_FORMAT).to_string()),
        Value::Str(s) if ty == ColumnType::Json => {
            serde_json::from_str(&s).map_err(|_| "value is not valid JSON".to_owned())?
        }
        Value::Str(s) => Json::String(s),
        _ => return Err(format!("value is not a valid {}", ty.name())),
    })
}

/// Decodes a stored row into the engine's values, in column order; columns added after the
/// row was written take their default.
pub fn decode_row(table: &TableRecord, bytes: &[u8]) -> Result<Vec<Value>, String> {
    let map: Map<String, Json> =
        serde_json::from_slice(bytes).map_err(|_| "stored row does not decode".to_owned())?;
    table
        .columns
        .iter()
        .map(|c| match map.get(&c.name) {
            Some(cell) => stored_to_value(c.ty, cell),
            None => match &c.default {
                Some(d) => stored_to_value(c.ty, d),
                None => Ok(Value::Null),
            },
        })
        .collect()
}

pub fn encode_row(table: &TableRecord, values: &[Value]) -> Result<Vec<u8>, String> {
    let mut map = Map::new();
    for (c, v) in table.columns.iter().zip(values) {
        let cell = value_to_stored(c.ty, v).map_err(|e| format!("column {}: {e}", c.name))?;
        map.insert(c.name.clone(), cell);
    }
    serde_json::to_vec(&map).map_err(|e| format!("row does not encode: {e}"))
}

/// An output value as API JSON (SPEC §5).
pub fn value_to_api(value: &Value, json_column: bool) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::I8(n) => Json::from(*n),
        Value::I16(n) => Json::from(*n),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::I128(n) => {
            i64::try_from(*n).map_or_else(|_| Json::String(n.to_string()), Json::from)
        }
        Value::U8(n) => Json::from(*n),
        Value::U16(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::U128(n) => {
            u64::try_from(*n).map_or_else(|_| Json::String(n.to_string()), Json::from)
        }
        Value::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Json::Null, Json::Number)
        }
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) if json_column => {
            serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone()))
        }
        Value::Str(s) => Json::String(s.clone()),
        Value::Uuid(u) => Json::String(Uuid::from_u128(*u).hyphenated().to_string()),
        Value::Timestamp(t) => Json::String(t.format(API_TIME_FORMAT).to_string()),
        Value::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
        Value::Time(t) => Json::String(t.format("%H:%M:%S").to_string()),
        Value::Decimal(d) => Json::String(d.to_string()),
        other => serde_json::to_value(other).unwrap_or(Json::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_and_float_keys_sort_numerically() {
        let ints = [-5_i64, -1, 0, 3, 1_000_000];
        let keys: Vec<_> = ints
            .iter()
            .map(|n| encode_key(ColumnType::Integer, &Value::I64(*n)).unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let floats = [-2.5_f64, -0.1, 0.0, 0.1, 7.0];
        let keys: Vec<_> = floats
            .iter()
            .map(|f| encode_key(ColumnType::Float, &Value::F64(*f)).unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn null_sorts_first_and_text_is_bytewise() {
        let null = encode_key(ColumnType::Text, &Value::Null).unwrap();
        let a = encode_key(ColumnType::Text, &Value::Str("a".into())).unwrap();
        let b = encode_key(ColumnType::Text, &Value::Str("b".into())).unwrap();
        assert!(null < a && a < b);
    }
}
