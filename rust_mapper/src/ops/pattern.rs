//! Regex steps: replace, match, extract (regex-lite: no look-around, ASCII classes).

use std::borrow::Cow;

use regex_lite::Regex;

use crate::value::{scalar_to_string, Value};

fn text<'a>(v: &Value<'a>) -> Result<Cow<'a, str>, String> {
    scalar_to_string(v).ok_or_else(|| format!("expected a string, got {}", v.kind()))
}

pub fn replace<'a>(v: Value<'a>, re: &Regex, with: &str) -> Result<Value<'a>, String> {
    let s = text(&v)?;
    Ok(Value::Str(Cow::Owned(re.replace_all(&s, with).into_owned())))
}

pub fn is_match(v: &Value<'_>, re: &Regex) -> Result<bool, String> {
    Ok(re.is_match(&text(v)?))
}

pub fn extract<'a>(v: Value<'a>, re: &Regex, group: usize) -> Result<Value<'a>, String> {
    let s = text(&v)?;
    Ok(match re.captures(&s).and_then(|c| c.get(group)) {
        Some(m) => Value::Str(Cow::Owned(m.as_str().to_owned())),
        None => Value::Null,
    })
}
