//! Currency minor units and sign steps.

use crate::decimal::{Decimal, OutOfRange, Rounding};
use crate::ops::convert::as_decimal;
use crate::value::Value;

/// ISO 4217 minor-unit exponent; codes not listed use 2.
pub fn currency_exponent(code: &str) -> Result<u32, String> {
    if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_uppercase()) {
        return Err(format!("not an ISO 4217 currency code: {code:?}"));
    }
    Ok(match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
        | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    })
}

pub fn to_minor(v: Value<'_>, exponent: u32) -> Result<Value<'_>, String> {
    let d = as_decimal(&v)?;
    let scaled = Decimal::new(d.coef(), d.scale())
        .and_then(|d| d.mul(&Decimal::new(10i128.checked_pow(exponent).ok_or(OutOfRange)?, 0)?))
        .map_err(|_| "decimal out of range".to_string())?;
    scaled
        .to_i64_exact()
        .map(Value::Int)
        .ok_or_else(|| format!("{} has more than {exponent} decimal places", d.to_plain()))
}

/// The amount at exactly `exponent` fraction digits, rounded by `mode`.
pub fn round_minor(v: Value<'_>, exponent: u32, mode: Rounding) -> Result<Value<'_>, String> {
    let d = as_decimal(&v)?;
    d.rescale(exponent, mode).map(Value::Dec).map_err(|_| "decimal out of range".to_string())
}

pub fn from_minor(v: Value<'_>, exponent: u32) -> Result<Value<'_>, String> {
    let d = as_decimal(&v)?;
    let Some(i) = d.to_i64_exact() else {
        return Err(format!("expected integer minor units, got {}", d.to_plain()));
    };
    let p = Decimal::new(10i128.checked_pow(exponent).unwrap_or(i128::MAX), 0)
        .map_err(|_| "decimal out of range".to_string())?;
    let out = Decimal::from_i64(i)
        .div(&p, exponent, Rounding::HalfEven)
        .ok_or("division by zero")?
        .map_err(|_| "decimal out of range".to_string())?;
    Ok(Value::Dec(out))
}

pub fn negate(v: Value<'_>) -> Result<Value<'_>, String> {
    match v {
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(|| "integer out of range".into()),
        Value::Num(d) => Ok(Value::Num(d.neg())),
        other => Ok(Value::Dec(as_decimal(&other)?.neg())),
    }
}

pub fn abs(v: Value<'_>) -> Result<Value<'_>, String> {
    match v {
        Value::Int(i) => i.checked_abs().map(Value::Int).ok_or_else(|| "integer out of range".into()),
        Value::Num(d) => Ok(Value::Num(d.abs())),
        other => Ok(Value::Dec(as_decimal(&other)?.abs())),
    }
}
