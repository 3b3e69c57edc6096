//! Writing a program's output: compact JSON straight into one buffer, or deterministic protobuf.

use std::borrow::Cow;

use crate::decimal::Decimal;
use crate::error::TranslateError;
use crate::exec::{step_into, Run, R};
use crate::json;
use crate::ops::{date, Step};
use crate::program::{EachBody, Expr, FieldRule, Node, NodeKind, Slot};
use crate::proto::{self, FieldType, Schema, Special};
use crate::value::{view, Value};

impl<'t> Run<'t> {
    // ---- JSON output ----------------------------------------------------------------------------------------

    pub(crate) fn write_members(&mut self, nodes: &'t [Node], out: &mut Vec<u8>) -> Result<bool, TranslateError> {
        let mut wrote = false;
        for n in nodes {
            let mark = out.len();
            out.extend_from_slice(if wrote { &n.key_json } else { &n.key_json[1..] });
            self.push_out(&n.key, None);
            let ok = self.write_node(n, out);
            self.pop_out();
            if ok? {
                wrote = true;
            } else {
                out.truncate(mark);
            }
        }
        Ok(wrote)
    }

    pub(crate) fn write_node(&mut self, n: &'t Node, out: &mut Vec<u8>) -> Result<bool, TranslateError> {
        match &n.kind {
            NodeKind::Object(children) => {
                out.push(b'{');
                let wrote = self.write_members(children, out)?;
                out.push(b'}');
                Ok(wrote)
            }
            NodeKind::Field(r) if r.plain && self.explain.is_none() => match self.write_plain(r, out) {
                Some(wrote) => Ok(wrote),
                None => self.write_field(r, out),
            },
            NodeKind::Field(r) => self.write_field(r, out),
            NodeKind::List(r) => {
                out.push(b'[');
                let start = out.len();
                let count = self.for_each_item(r, |run, i| {
                    let mark = out.len();
                    if out.len() > start {
                        out.push(b',');
                    }
                    run.push_out("", Some(i));
                    let res = match &r.body {
                        EachBody::Objects(children) => {
                            out.push(b'{');
                            let r2 = run.write_members(children, out);
                            out.push(b'}');
                            r2.map(|_| true)
                        }
                        EachBody::Scalars(fr) => match run.field_value(fr) {
                            Ok(Some(v)) => json::write_value(out, &v).map(|_| true).map_err(|m| TranslateError {
                                rule: fr.id.clone(),
                                path: run.here(),
                                message: m,
                            }),
                            Ok(None) => Ok(false),
                            Err(e) => Err(e),
                        },
                    };
                    run.pop_out();
                    if !matches!(res, Ok(true)) {
                        out.truncate(mark);
                    }
                    res
                })?;
                out.push(b']');
                Ok(count > 0 || r.keep_empty)
            }
        }
    }

    fn write_field(&mut self, r: &'t FieldRule, out: &mut Vec<u8>) -> Result<bool, TranslateError> {
        match self.field_value(r)? {
            Some(v) => {
                json::write_value(out, &v).map_err(|m| TranslateError {
                    rule: r.id.clone(),
                    path: self.here(),
                    message: m,
                })?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A `plain` rule written straight from the input (or its constant), through its pipe if any: `Some(wrote)`,
    /// or `None` when the general path must run (a failure, a missing required value, a list or object value)
    /// to produce the same result and error. Pipe steps are pure, so running them again there is harmless.
    #[inline]
    fn write_plain(&mut self, r: &'t FieldRule, out: &mut Vec<u8>) -> Option<bool> {
        let v: &'t Value<'t> = match &r.value {
            Expr::Path(p) => {
                let mut cur: &'t Value<'t> = self.scopes.last()?.value;
                for seg in &p.segs {
                    match step_into(cur, seg) {
                        Some(next) => cur = next,
                        None => {
                            cur = &ABSENT;
                            break;
                        }
                    }
                }
                cur
            }
            Expr::Const(c) => c,
            _ => return None,
        };
        if r.pipe.is_empty() {
            return write_scalar(v, r.required, out);
        }
        if let Some((Step::String, head)) = r.pipe.split_last() {
            // A trailing `string` step on a number: its digits go straight into the output, quoted, instead of
            // into a temporary String (what `string` makes of a number never needs JSON escaping).
            let piped = self.apply(head, view(v)).ok()?;
            match &piped {
                Value::Dec(d) | Value::Num(d) => {
                    out.push(b'"');
                    d.write_bytes(out);
                    out.push(b'"');
                    return Some(true);
                }
                Value::Int(i) => {
                    out.push(b'"');
                    json::write_int(out, i128::from(*i));
                    out.push(b'"');
                    return Some(true);
                }
                _ => {
                    let piped = self.apply(&r.pipe[head.len()..], piped).ok()?;
                    return write_scalar(&piped, r.required, out);
                }
            }
        }
        let piped = self.apply(&r.pipe, view(v)).ok()?;
        write_scalar(&piped, r.required, out)
    }

    // ---- protobuf output ------------------------------------------------------------------------------------

    pub(crate) fn encode_members(&mut self, nodes: &'t [Node], out: &mut Vec<u8>) -> Result<(), TranslateError> {
        for n in nodes {
            self.push_out(&n.key, None);
            let res = self.encode_node(n, out);
            self.pop_out();
            res?;
        }
        Ok(())
    }

    pub(crate) fn encode_node(&mut self, n: &'t Node, out: &mut Vec<u8>) -> Result<(), TranslateError> {
        match &n.kind {
            NodeKind::Object(children) if matches!(n.slot, Slot::Map { .. }) => self.encode_members(children, out),
            NodeKind::Object(children) => {
                let mut body = Vec::new();
                self.encode_members(children, &mut body)?;
                if !body.is_empty() {
                    if let Slot::Field { number, .. } = n.slot {
                        proto::put_len_delimited(out, number, &body);
                    }
                }
                Ok(())
            }
            NodeKind::Field(r) => {
                let Some(v) = self.field_value(r)? else {
                    return Ok(());
                };
                if v.is_null() {
                    return Ok(());
                }
                let res = match &n.slot {
                    Slot::MapKey { number, value_ty, special } => encode_map_entry(
                        &self.prog.schema,
                        *number,
                        &n.key,
                        *value_ty,
                        *special,
                        &v,
                        r.custom_date,
                        out,
                    ),
                    slot => self.encode_value(slot, &v, r.custom_date, out, false),
                };
                res.map_err(|m| TranslateError {
                    rule: r.id.clone(),
                    path: self.input_path_or_here(&r.value),
                    message: m,
                })
            }
            NodeKind::List(r) => {
                let Slot::Field { number, ty, special } = n.slot.clone() else {
                    return Ok(());
                };
                let packed = proto::is_packable(ty);
                let mut packed_body = Vec::new();
                self.for_each_item(r, |run, i| {
                    run.push_out("", Some(i));
                    let res = match &r.body {
                        EachBody::Objects(children) => {
                            let mut body = Vec::new();
                            let res = run.encode_members(children, &mut body);
                            if res.is_ok() {
                                proto::put_len_delimited(out, number, &body);
                            }
                            res.map(|_| true)
                        }
                        EachBody::Scalars(fr) => match run.field_value(fr) {
                            Ok(Some(v)) if !v.is_null() => {
                                let slot = Slot::Field { number, ty, special };
                                let target = if packed { &mut packed_body } else { &mut *out };
                                run.encode_value(&slot, &v, fr.custom_date, target, true)
                                    .map(|_| true)
                                    .map_err(|m| TranslateError { rule: fr.id.clone(), path: run.here(), message: m })
                            }
                            Ok(_) => Ok(false),
                            Err(e) => Err(e),
                        },
                    };
                    run.pop_out();
                    res
                })?;
                if packed && !packed_body.is_empty() {
                    proto::put_len_delimited(out, number, &packed_body);
                }
                Ok(())
            }
        }
    }

    pub(crate) fn input_path_or_here(&self, e: &Expr) -> String {
        match e {
            Expr::Path(p) => self.path_of(p),
            _ => self.here(),
        }
    }

    /// Encode one value into a field (or map entry). `in_list` keeps defaults (repeated elements always count).
    pub(crate) fn encode_value(
        &self,
        slot: &Slot,
        v: &Value<'_>,
        custom_date: bool,
        out: &mut Vec<u8>,
        in_list: bool,
    ) -> R<()> {
        match slot {
            Slot::Json => Ok(()),
            Slot::Field { number, ty, special } => {
                let packed_elem = in_list && proto::is_packable(*ty);
                encode_typed(&self.prog.schema, *number, *ty, *special, v, custom_date, out, in_list, packed_elem)
            }
            Slot::MapKey { .. } | Slot::Map { .. } => Err("internal: map slot used as a field".into()),
        }
    }
}

fn int_of(v: &Value<'_>) -> R<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Dec(d) | Value::Num(d) => {
            d.to_i64_exact().ok_or_else(|| format!("expected an integer, got {}", d.to_plain()))
        }
        Value::Str(s) => match Decimal::parse(s) {
            Some(Ok(d)) => d.to_i64_exact().ok_or_else(|| format!("expected an integer, got {s:?}")),
            _ => Err(format!("expected an integer, got {s:?}")),
        },
        other => Err(format!("expected an integer, got {}", other.kind())),
    }
}

#[allow(clippy::too_many_arguments)]
fn encode_typed(
    schema: &Schema,
    number: u32,
    ty: FieldType,
    special: Special,
    v: &Value<'_>,
    custom_date: bool,
    out: &mut Vec<u8>,
    keep_default: bool,
    packed_elem: bool,
) -> R<()> {
    let tag = |out: &mut Vec<u8>, wire: u8| {
        if !packed_elem {
            proto::put_tag(out, number, wire);
        }
    };
    match ty {
        FieldType::String => {
            let s = match v {
                Value::Str(s) => s.clone(),
                Value::Int(_) | Value::Dec(_) | Value::Num(_) => crate::value::scalar_to_string(v).unwrap_or_default(),
                other => return Err(format!("expected a string, got {}", other.kind())),
            };
            if s.is_empty() && !keep_default {
                return Ok(());
            }
            proto::put_len_delimited(out, number, s.as_bytes());
        }
        FieldType::Bool => {
            let Value::Bool(b) = v else {
                return Err(format!("expected a bool, got {}", v.kind()));
            };
            if *b || keep_default {
                tag(out, 0);
                proto::put_varint(out, u64::from(*b));
            }
        }
        FieldType::Enum(e) => {
            let desc = &schema.enums[e];
            let n: i32 = match v {
                Value::Str(s) => {
                    desc.number_of(s).ok_or_else(|| format!("unknown enum value {s:?} for {}", desc.full_name))?
                }
                other => {
                    let i = int_of(other)?;
                    i32::try_from(i).map_err(|_| format!("enum number {i} out of range"))?
                }
            };
            if n != 0 || keep_default {
                tag(out, 0);
                proto::put_varint(out, n as i64 as u64);
            }
        }
        FieldType::Int32
        | FieldType::Int64
        | FieldType::Uint32
        | FieldType::Uint64
        | FieldType::Sint32
        | FieldType::Sint64 => {
            let i = int_of(v)?;
            let ok = match ty {
                FieldType::Int32 | FieldType::Sint32 => i32::try_from(i).is_ok(),
                FieldType::Uint32 => u32::try_from(i).is_ok(),
                FieldType::Uint64 => i >= 0,
                _ => true,
            };
            if !ok {
                return Err(format!("integer {i} out of range for the field"));
            }
            if i != 0 || keep_default {
                tag(out, 0);
                let raw = match ty {
                    FieldType::Sint32 | FieldType::Sint64 => ((i << 1) ^ (i >> 63)) as u64,
                    _ => i as u64,
                };
                proto::put_varint(out, raw);
            }
        }
        FieldType::Message(m) => match special {
            Special::Timestamp => {
                let Value::Str(s) = v else {
                    return Err(format!("expected a timestamp string, got {}", v.kind()));
                };
                let (secs, nanos) = date::parse_timestamp(s).ok_or_else(|| format!("not a valid timestamp: {s:?}"))?;
                let mut body = Vec::new();
                if secs != 0 {
                    proto::put_tag(&mut body, 1, 0);
                    proto::put_varint(&mut body, secs as u64);
                }
                if nanos != 0 {
                    proto::put_tag(&mut body, 2, 0);
                    proto::put_varint(&mut body, nanos as u64);
                }
                proto::put_len_delimited(out, number, &body);
            }
            Special::CustomValue => {
                let body = encode_custom(v, custom_date)?;
                proto::put_len_delimited(out, number, &body);
            }
            _ => {
                let _ = m;
                return Err("target is a message: map its fields one by one".into());
            }
        },
        _ => return Err("floating point and bytes fields are not supported".into()),
    }
    Ok(())
}

fn encode_custom(v: &Value<'_>, custom_date: bool) -> R<Vec<u8>> {
    let mut body = Vec::new();
    match v {
        Value::Str(s) if custom_date => {
            if date::convert(Value::Str(Cow::Borrowed(s)), date::Format::Date, date::Format::Date).is_err() {
                return Err(format!("expected a date YYYY-MM-DD, got {s:?}"));
            }
            proto::put_len_delimited(&mut body, 5, s.as_bytes());
        }
        Value::Str(s) => proto::put_len_delimited(&mut body, 1, s.as_bytes()),
        Value::Dec(d) | Value::Num(d) => proto::put_len_delimited(&mut body, 2, d.to_plain().as_bytes()),
        Value::Int(i) => {
            proto::put_tag(&mut body, 3, 0);
            proto::put_varint(&mut body, *i as u64);
        }
        Value::Bool(b) => {
            proto::put_tag(&mut body, 4, 0);
            proto::put_varint(&mut body, u64::from(*b));
        }
        other => return Err(format!("cannot store a {} in a custom field", other.kind())),
    }
    Ok(body)
}

/// Encode a map entry `key -> value` of a `map<string, V>` field.
#[allow(clippy::too_many_arguments)]
pub fn encode_map_entry(
    schema: &Schema,
    number: u32,
    key: &str,
    value_ty: FieldType,
    special: Special,
    v: &Value<'_>,
    custom_date: bool,
    out: &mut Vec<u8>,
) -> R<()> {
    let mut entry = Vec::new();
    proto::put_len_delimited(&mut entry, 1, key.as_bytes());
    encode_typed(schema, 2, value_ty, special, v, custom_date, &mut entry, true, false)?;
    proto::put_len_delimited(out, number, &entry);
    Ok(())
}

static ABSENT: Value<'static> = Value::Null;

/// Write a scalar field value as JSON: `Some(true)`, `Some(false)` for an absent optional value, `None` when the
/// general path must decide (absent but required; lists and objects).
#[inline]
fn write_scalar(v: &Value<'_>, required: bool, out: &mut Vec<u8>) -> Option<bool> {
    match v {
        Value::Str(s) => json::write_str(out, s),
        Value::Int(i) => json::write_int(out, i128::from(*i)),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Dec(d) => {
            out.push(b'"');
            d.write_bytes(out);
            out.push(b'"');
        }
        Value::Num(d) => d.write_bytes(out),
        Value::Null => return if required { None } else { Some(false) },
        Value::List(_) | Value::Msg(_) | Value::Map(_) => return None,
    }
    Some(true)
}
