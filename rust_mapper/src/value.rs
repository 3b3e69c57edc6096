//! The engine's value model: what paths read, expressions compute and writers emit.

use std::borrow::Cow;

use crate::decimal::Decimal;

/// A value during translation. Strings borrow from the input document or the compiled program.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// Absent: missing field, proto3 default string/enum, JSON null.
    Null,
    Bool(bool),
    Int(i64),
    /// Exact decimal, written to JSON as a string.
    Dec(Decimal),
    /// Exact decimal (or integer) written to JSON as a number.
    Num(Decimal),
    Str(Cow<'a, str>),
    List(Vec<Value<'a>>),
    /// A protobuf message: one slot per field of its descriptor, in descriptor order.
    Msg(Vec<Value<'a>>),
    /// A JSON object, a protobuf map or a CustomStruct, in input order (lookups take the last duplicate).
    Map(Vec<(Cow<'a, str>, Value<'a>)>),
}

impl<'a> Value<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Short type name for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "absent",
            Value::Bool(_) => "bool",
            Value::Int(_) => "integer",
            Value::Dec(_) | Value::Num(_) => "decimal",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Msg(_) | Value::Map(_) => "object",
        }
    }

    /// Look up a map key (last duplicate wins, as in JSON parsers that keep the last value).
    pub fn get_key(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Map(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A numeric view: integers, decimals and numeric strings. `None` if not numeric.
    pub fn as_decimal(&self) -> Option<Result<Decimal, crate::decimal::OutOfRange>> {
        match self {
            Value::Int(i) => Some(Ok(Decimal::from_i64(*i))),
            Value::Dec(d) | Value::Num(d) => Some(Ok(*d)),
            Value::Str(s) => Decimal::parse(s),
            _ => None,
        }
    }

    /// Detach from any borrowed data.
    pub fn into_static(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Dec(d) => Value::Dec(d),
            Value::Num(d) => Value::Num(d),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::List(items) => Value::List(items.into_iter().map(Value::into_static).collect()),
            Value::Msg(items) => Value::Msg(items.into_iter().map(Value::into_static).collect()),
            Value::Map(entries) => {
                Value::Map(entries.into_iter().map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_static())).collect())
            }
        }
    }
}

/// Render a scalar as a string the way the `string` step does; `None` for lists and objects.
pub fn scalar_to_string<'a>(v: &Value<'a>) -> Option<Cow<'a, str>> {
    match v {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(Cow::Owned(i.to_string())),
        Value::Dec(d) | Value::Num(d) => Some(Cow::Owned(d.to_plain())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// A borrowed view of a value: scalars and strings are copied by pointer, containers are cloned.
pub fn view<'t>(v: &'t Value<'_>) -> Value<'t> {
    match v {
        Value::Null => Value::Null,
        Value::Bool(b) => Value::Bool(*b),
        Value::Int(i) => Value::Int(*i),
        Value::Dec(d) => Value::Dec(*d),
        Value::Num(d) => Value::Num(*d),
        Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
        Value::List(items) => Value::List(items.iter().map(view).collect()),
        Value::Msg(items) => Value::Msg(items.iter().map(view).collect()),
        Value::Map(entries) => Value::Map(entries.iter().map(|(k, v)| (Cow::Borrowed(k.as_ref()), view(v))).collect()),
    }
}
