//! Type conversion steps: string, integer, decimal (with scale and rounding), number, bool.

use std::borrow::Cow;

use crate::decimal::{Decimal, Rounding};
use crate::value::{scalar_to_string, Value};

pub fn to_string(v: Value<'_>) -> Result<Value<'_>, String> {
    match scalar_to_string(&v) {
        Some(s) => Ok(Value::Str(s)),
        None => Err(format!("expected a scalar, got {}", v.kind())),
    }
}

pub fn to_integer(v: Value<'_>) -> Result<Value<'_>, String> {
    match &v {
        Value::Int(_) => Ok(v),
        Value::Dec(d) | Value::Num(d) => {
            d.to_i64_exact().map(Value::Int).ok_or_else(|| format!("expected an integer, got {}", d.to_plain()))
        }
        Value::Str(s) => match Decimal::parse(s) {
            Some(Ok(d)) => d.to_i64_exact().map(Value::Int).ok_or_else(|| format!("expected an integer, got {s:?}")),
            _ => Err(format!("expected an integer, got {s:?}")),
        },
        other => Err(format!("expected an integer, got {}", other.kind())),
    }
}

pub fn as_decimal(v: &Value<'_>) -> Result<Decimal, String> {
    match v.as_decimal() {
        Some(Ok(d)) => Ok(d),
        Some(Err(_)) => Err("decimal out of range".into()),
        None => Err(match v {
            Value::Str(s) => format!("expected a decimal, got {s:?}"),
            other => format!("expected a decimal, got {}", other.kind()),
        }),
    }
}

pub fn to_decimal(v: Value<'_>, scale: Option<u32>, mode: Rounding) -> Result<Value<'_>, String> {
    let d = as_decimal(&v)?;
    let d = match scale {
        Some(s) => d.rescale(s, mode).map_err(|_| "decimal out of range".to_string())?,
        None => d,
    };
    Ok(Value::Dec(d))
}

pub fn to_number(v: Value<'_>) -> Result<Value<'_>, String> {
    match v {
        Value::Int(_) | Value::Num(_) => Ok(v),
        other => Ok(Value::Num(as_decimal(&other)?)),
    }
}

pub fn to_bool(v: Value<'_>) -> Result<Value<'_>, String> {
    match &v {
        Value::Bool(_) => Ok(v),
        Value::Int(0) => Ok(Value::Bool(false)),
        Value::Int(1) => Ok(Value::Bool(true)),
        Value::Str(s) => {
            let lower: Cow<'_, str> = if s.bytes().any(|c| c.is_ascii_uppercase()) {
                Cow::Owned(s.to_ascii_lowercase())
            } else {
                Cow::Borrowed(s)
            };
            match lower.as_ref() {
                "true" | "t" | "yes" | "y" | "1" | "x" => Ok(Value::Bool(true)),
                "false" | "f" | "no" | "n" | "0" | "" => Ok(Value::Bool(false)),
                _ => Err(format!("expected a bool, got {s:?}")),
            }
        }
        other => Err(format!("expected a bool, got {}", other.kind())),
    }
}
