//! String steps: trim, case, padding, length limits, affixes, split and join.

use std::borrow::Cow;

use crate::value::{scalar_to_string, Value};

fn text<'a>(v: Value<'a>) -> Result<Cow<'a, str>, String> {
    match v {
        Value::Str(s) => Ok(s),
        other => scalar_to_string(&other)
            .map(|s| Cow::Owned(s.into_owned()))
            .ok_or_else(|| format!("expected a string, got {}", other.kind())),
    }
}

pub fn trim(v: Value<'_>) -> Result<Value<'_>, String> {
    Ok(match text(v)? {
        Cow::Borrowed(s) => Value::Str(Cow::Borrowed(s.trim())),
        Cow::Owned(s) => Value::Str(Cow::Owned(s.trim().to_owned())),
    })
}

pub fn upper(v: Value<'_>) -> Result<Value<'_>, String> {
    let s = text(v)?;
    Ok(Value::Str(if s.chars().any(|c| c.is_lowercase() || !c.is_ascii()) { Cow::Owned(s.to_uppercase()) } else { s }))
}

pub fn lower(v: Value<'_>) -> Result<Value<'_>, String> {
    let s = text(v)?;
    Ok(Value::Str(if s.chars().any(|c| c.is_uppercase() || !c.is_ascii()) { Cow::Owned(s.to_lowercase()) } else { s }))
}

pub fn pad(v: Value<'_>, width: usize, fill: char, left: bool) -> Result<Value<'_>, String> {
    let s = text(v)?;
    let n = s.chars().count();
    if n >= width {
        return Ok(Value::Str(s));
    }
    let fill: String = std::iter::repeat(fill).take(width - n).collect();
    Ok(Value::Str(Cow::Owned(if left { fill + &s } else { s.into_owned() + &fill })))
}

pub fn max_length<'a>(v: Value<'a>, length: usize, truncate: bool, label: &str) -> Result<Value<'a>, String> {
    let s = text(v)?;
    // At most `length` bytes means at most `length` characters: skip counting.
    if s.len() <= length {
        return Ok(Value::Str(s));
    }
    match s.char_indices().nth(length) {
        None => Ok(Value::Str(s)),
        Some((cut, _)) if truncate => Ok(Value::Str(match s {
            Cow::Borrowed(b) => Cow::Borrowed(&b[..cut]),
            Cow::Owned(o) => Cow::Owned(o[..cut].to_owned()),
        })),
        Some(_) => Err(if label.is_empty() {
            format!("longer than {length} characters")
        } else {
            format!("longer than {length} characters ({label})")
        }),
    }
}

pub fn affix<'a>(v: Value<'a>, affix: &str, prefix: bool) -> Result<Value<'a>, String> {
    let s = text(v)?;
    Ok(Value::Str(Cow::Owned(if prefix { format!("{affix}{s}") } else { format!("{s}{affix}") })))
}

pub fn split<'a>(v: Value<'a>, sep: &str, index: Option<usize>) -> Result<Value<'a>, String> {
    let s = text(v)?;
    let owned = |p: &str| -> Value<'a> { Value::Str(Cow::Owned(p.to_owned())) };
    match (index, &s) {
        (Some(i), Cow::Borrowed(b)) => {
            Ok(b.split(sep).nth(i).map(|p| Value::Str(Cow::Borrowed(p))).unwrap_or(Value::Null))
        }
        (Some(i), Cow::Owned(o)) => Ok(o.split(sep).nth(i).map(owned).unwrap_or(Value::Null)),
        (None, _) => Ok(Value::List(s.split(sep).map(owned).collect())),
    }
}

pub fn join<'a>(v: Value<'a>, sep: &str) -> Result<Value<'a>, String> {
    let Value::List(items) = v else {
        return Err(format!("expected a list, got {}", v.kind()));
    };
    let mut out = String::new();
    let mut first = true;
    for item in items.iter().filter(|i| !i.is_null()) {
        let s = scalar_to_string(item).ok_or_else(|| format!("cannot join a list containing {}", item.kind()))?;
        if !first {
            out.push_str(sep);
        }
        first = false;
        out.push_str(&s);
    }
    Ok(Value::Str(Cow::Owned(out)))
}
