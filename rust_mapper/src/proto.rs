//! Protobuf schema from a `FileDescriptorSet`, a descriptor-driven wire decoder into `Value`s, and encoding
//! helpers. No generated code: the engine works for any message type it is given descriptors for.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::decimal::Decimal;
use crate::value::Value;

/// Deepest message nesting accepted when decoding.
pub const MAX_DEPTH: usize = 64;

pub const TIMESTAMP: &str = "google.protobuf.Timestamp";

/// Full names of the host API's three messages for dynamically typed values: a value (oneof of scalars, list
/// and struct), a list of values and a string-keyed struct of values. The host names them; the engine does not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicTypes {
    pub value: String,
    pub list: String,
    pub map: String,
}

impl DynamicTypes {
    pub fn new(value: impl Into<String>, list: impl Into<String>, map: impl Into<String>) -> Self {
        DynamicTypes { value: value.into(), list: list.into(), map: map.into() }
    }

    fn special(&self, full_name: &str) -> Special {
        if full_name == TIMESTAMP {
            Special::Timestamp
        } else if full_name == self.value {
            Special::CustomValue
        } else if full_name == self.list {
            Special::CustomList
        } else if full_name == self.map {
            Special::CustomStruct
        } else {
            Special::None
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Double,
    Float,
    Int64,
    Uint64,
    Int32,
    Fixed64,
    Fixed32,
    Bool,
    String,
    Bytes,
    Uint32,
    Sfixed32,
    Sfixed64,
    Sint32,
    Sint64,
    Enum(usize),
    Message(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    Timestamp,
    CustomValue,
    CustomList,
    CustomStruct,
}

#[derive(Debug, Clone)]
pub struct FieldDesc {
    pub name: String,
    pub number: u32,
    pub ty: FieldType,
    pub repeated: bool,
    /// Set for `map<K, V>` fields: the map entry message.
    pub map_entry: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct MessageDesc {
    pub full_name: String,
    pub fields: Vec<FieldDesc>,
    pub by_number: HashMap<u32, usize>,
    /// Dense index for small field numbers: `dense[number] = slot + 1` (0 = unknown); avoids hashing when decoding.
    pub dense: Vec<u32>,
    pub by_name: HashMap<String, usize>,
    pub is_map_entry: bool,
    pub special: Special,
}

impl MessageDesc {
    /// Slot of a field number, `None` for unknown fields.
    #[inline]
    pub fn slot_of(&self, number: u32) -> Option<usize> {
        match self.dense.get(number as usize) {
            Some(0) => None,
            Some(i) => Some(*i as usize - 1),
            None => self.by_number.get(&number).copied(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EnumDesc {
    pub full_name: String,
    pub values: Vec<(String, i32)>,
}

impl EnumDesc {
    pub fn name_of(&self, n: i32) -> Option<&str> {
        self.values.iter().find(|(_, v)| *v == n).map(|(k, _)| k.as_str())
    }
    pub fn number_of(&self, name: &str) -> Option<i32> {
        self.values.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// All message and enum types of a descriptor set.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub messages: Vec<MessageDesc>,
    pub enums: Vec<EnumDesc>,
    /// Per message, which fields any compiled path reads. Unread fields are skipped when decoding (their wire
    /// framing is still checked); empty means "decode everything".
    pub used: Vec<Vec<bool>>,
    msg_index: HashMap<String, usize>,
    enum_index: HashMap<String, usize>,
}

// ---- wire reading -------------------------------------------------------------------------------------------

pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    pub fn varint(&mut self) -> Result<u64, String> {
        // Most tags and lengths fit in one byte.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64, String> {
        // Lengths of nested messages and tags of fields numbered 16 and up mostly take two bytes.
        if let Some(&[b0, b1]) = self.buf.get(self.pos..self.pos + 2) {
            if b0 >= 0x80 && b1 < 0x80 {
                self.pos += 2;
                return Ok(u64::from(b0 & 0x7f) | (u64::from(b1) << 7));
            }
        }
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err("varint overflows 64 bits".into());
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    pub fn fixed(&mut self, n: usize) -> Result<u64, String> {
        let end = self.pos.checked_add(n).ok_or("truncated fixed field")?;
        let bytes = self.buf.get(self.pos..end).ok_or("truncated fixed field")?;
        self.pos = end;
        let mut v = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            v |= (*b as u64) << (8 * i);
        }
        Ok(v)
    }

    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| "length too large")?;
        let end = self.pos.checked_add(len).ok_or("truncated length-delimited field")?;
        let out = self.buf.get(self.pos..end).ok_or("truncated length-delimited field")?;
        self.pos = end;
        Ok(out)
    }

    /// Next (field number, wire type).
    #[inline]
    pub fn tag(&mut self) -> Result<(u32, u8), String> {
        let t = self.varint()?;
        let number = t >> 3;
        if number == 0 || number > 536_870_911 {
            return Err(format!("invalid field number {number}"));
        }
        Ok((number as u32, (t & 7) as u8))
    }

    pub fn skip(&mut self, wire: u8) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.fixed(8).map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => self.fixed(4).map(|_| ()),
            _ => Err(format!("unsupported wire type {wire}")),
        }
    }
}

// ---- descriptor set parsing ---------------------------------------------------------------------------------

struct RawField {
    name: String,
    number: u32,
    label: u64,
    ty: u64,
    type_name: String,
}

struct RawMessage {
    full_name: String,
    fields: Vec<RawField>,
    map_entry: bool,
}

fn utf8(b: &[u8]) -> Result<String, String> {
    std::str::from_utf8(b).map(str::to_owned).map_err(|_| "descriptor string is not UTF-8".to_string())
}

fn parse_enum(buf: &[u8], prefix: &str, out: &mut Vec<EnumDesc>) -> Result<(), String> {
    let mut r = Reader::new(buf);
    let mut name = String::new();
    let mut values = Vec::new();
    while !r.done() {
        let (n, w) = r.tag()?;
        match (n, w) {
            (1, 2) => name = utf8(r.bytes()?)?,
            (2, 2) => {
                let mut vr = Reader::new(r.bytes()?);
                let (mut vname, mut vnum) = (String::new(), 0i32);
                while !vr.done() {
                    let (vn, vw) = vr.tag()?;
                    match (vn, vw) {
                        (1, 2) => vname = utf8(vr.bytes()?)?,
                        (2, 0) => vnum = vr.varint()? as i32,
                        _ => vr.skip(vw)?,
                    }
                }
                values.push((vname, vnum));
            }
            _ => r.skip(w)?,
        }
    }
    out.push(EnumDesc { full_name: format!("{prefix}{name}"), values });
    Ok(())
}

fn parse_message(
    buf: &[u8],
    prefix: &str,
    msgs: &mut Vec<RawMessage>,
    enums: &mut Vec<EnumDesc>,
) -> Result<(), String> {
    let mut r = Reader::new(buf);
    let mut name = String::new();
    let mut fields = Vec::new();
    let mut nested: Vec<&[u8]> = Vec::new();
    let mut nested_enums: Vec<&[u8]> = Vec::new();
    let mut map_entry = false;
    while !r.done() {
        let (n, w) = r.tag()?;
        match (n, w) {
            (1, 2) => name = utf8(r.bytes()?)?,
            (2, 2) => {
                let mut fr = Reader::new(r.bytes()?);
                let mut f = RawField { name: String::new(), number: 0, label: 1, ty: 0, type_name: String::new() };
                while !fr.done() {
                    let (fnum, fw) = fr.tag()?;
                    match (fnum, fw) {
                        (1, 2) => f.name = utf8(fr.bytes()?)?,
                        (3, 0) => f.number = fr.varint()? as u32,
                        (4, 0) => f.label = fr.varint()?,
                        (5, 0) => f.ty = fr.varint()?,
                        (6, 2) => f.type_name = utf8(fr.bytes()?)?,
                        _ => fr.skip(fw)?,
                    }
                }
                fields.push(f);
            }
            (3, 2) => nested.push(r.bytes()?),
            (4, 2) => nested_enums.push(r.bytes()?),
            (7, 2) => {
                let mut or = Reader::new(r.bytes()?);
                while !or.done() {
                    let (on, ow) = or.tag()?;
                    if (on, ow) == (7, 0) {
                        map_entry = or.varint()? != 0;
                    } else {
                        or.skip(ow)?;
                    }
                }
            }
            _ => r.skip(w)?,
        }
    }
    let full = format!("{prefix}{name}");
    let inner = format!("{full}.");
    for e in nested_enums {
        parse_enum(e, &inner, enums)?;
    }
    for m in nested {
        parse_message(m, &inner, msgs, enums)?;
    }
    msgs.push(RawMessage { full_name: full, fields, map_entry });
    Ok(())
}

impl Schema {
    /// Decode a serialized `google.protobuf.FileDescriptorSet`; ``dynamic`` names the dynamic-value messages.
    pub fn from_descriptor_set(buf: &[u8], dynamic: &DynamicTypes) -> Result<Schema, String> {
        let mut raw_msgs = Vec::new();
        let mut enums = Vec::new();
        let mut r = Reader::new(buf);
        while !r.done() {
            let (n, w) = r.tag()?;
            if (n, w) != (1, 2) {
                r.skip(w)?;
                continue;
            }
            let mut fr = Reader::new(r.bytes()?);
            let mut package = String::new();
            let mut messages: Vec<&[u8]> = Vec::new();
            let mut file_enums: Vec<&[u8]> = Vec::new();
            while !fr.done() {
                let (fnum, fw) = fr.tag()?;
                match (fnum, fw) {
                    (2, 2) => package = utf8(fr.bytes()?)?,
                    (4, 2) => messages.push(fr.bytes()?),
                    (5, 2) => file_enums.push(fr.bytes()?),
                    _ => fr.skip(fw)?,
                }
            }
            let prefix = if package.is_empty() { String::new() } else { format!("{package}.") };
            for e in file_enums {
                parse_enum(e, &prefix, &mut enums)?;
            }
            for m in messages {
                parse_message(m, &prefix, &mut raw_msgs, &mut enums)?;
            }
        }
        let msg_index: HashMap<String, usize> =
            raw_msgs.iter().enumerate().map(|(i, m)| (m.full_name.clone(), i)).collect();
        let enum_index: HashMap<String, usize> =
            enums.iter().enumerate().map(|(i, e)| (e.full_name.clone(), i)).collect();
        let mut messages = Vec::with_capacity(raw_msgs.len());
        for m in &raw_msgs {
            let mut fields = Vec::with_capacity(m.fields.len());
            for f in &m.fields {
                let tn = f.type_name.trim_start_matches('.');
                let ty = match f.ty {
                    1 => FieldType::Double,
                    2 => FieldType::Float,
                    3 => FieldType::Int64,
                    4 => FieldType::Uint64,
                    5 => FieldType::Int32,
                    6 => FieldType::Fixed64,
                    7 => FieldType::Fixed32,
                    8 => FieldType::Bool,
                    9 => FieldType::String,
                    11 => FieldType::Message(
                        *msg_index.get(tn).ok_or_else(|| format!("unknown message type {tn} in descriptors"))?,
                    ),
                    12 => FieldType::Bytes,
                    13 => FieldType::Uint32,
                    14 => FieldType::Enum(
                        *enum_index.get(tn).ok_or_else(|| format!("unknown enum type {tn} in descriptors"))?,
                    ),
                    15 => FieldType::Sfixed32,
                    16 => FieldType::Sfixed64,
                    17 => FieldType::Sint32,
                    18 => FieldType::Sint64,
                    other => return Err(format!("unsupported field type {other} ({}.{})", m.full_name, f.name)),
                };
                let map_entry = match ty {
                    FieldType::Message(i) if raw_msgs[i].map_entry && f.label == 3 => Some(i),
                    _ => None,
                };
                fields.push(FieldDesc {
                    name: f.name.clone(),
                    number: f.number,
                    ty,
                    repeated: f.label == 3,
                    map_entry,
                });
            }
            // Empty names match no message (full names are never empty).
            let special = dynamic.special(&m.full_name);
            let max = fields.iter().map(|f| f.number).filter(|n| *n < 1024).max().unwrap_or(0) as usize;
            let mut dense = vec![0u32; max + 1];
            for (i, f) in fields.iter().enumerate() {
                if (f.number as usize) < dense.len() {
                    dense[f.number as usize] = i as u32 + 1;
                }
            }
            messages.push(MessageDesc {
                dense,
                full_name: m.full_name.clone(),
                by_number: fields.iter().enumerate().map(|(i, f)| (f.number, i)).collect(),
                by_name: fields.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect(),
                fields,
                is_map_entry: m.map_entry,
                special,
            });
        }
        Ok(Schema { messages, enums, used: Vec::new(), msg_index, enum_index })
    }

    pub fn message(&self, full_name: &str) -> Option<usize> {
        self.msg_index.get(full_name).copied()
    }

    pub fn enum_type(&self, full_name: &str) -> Option<usize> {
        self.enum_index.get(full_name).copied()
    }

    /// Decode a message into a `Value::Msg` (or the special value of a well-known/custom type).
    pub fn decode<'a>(&'a self, msg: usize, buf: &'a [u8]) -> Result<Value<'a>, String> {
        self.decode_msg(msg, buf, 0)
    }

    fn decode_msg<'a>(&'a self, msg: usize, buf: &'a [u8], depth: usize) -> Result<Value<'a>, String> {
        if depth > MAX_DEPTH {
            return Err("message nested too deeply".into());
        }
        let desc = &self.messages[msg];
        match desc.special {
            Special::Timestamp => return self.decode_timestamp(buf),
            Special::CustomValue => return self.decode_custom(msg, buf, depth),
            _ => {}
        }
        let mut slots: Vec<Value<'a>> = desc
            .fields
            .iter()
            .map(|f| {
                if f.map_entry.is_some() {
                    Value::Map(Vec::new())
                } else if f.repeated {
                    Value::List(Vec::new())
                } else {
                    default_of(f.ty)
                }
            })
            .collect();
        let used = self.used.get(msg).map(Vec::as_slice);
        let mut r = Reader::new(buf);
        while !r.done() {
            let (number, wire) = r.tag()?;
            let Some(idx) = desc.slot_of(number) else {
                r.skip(wire)?;
                continue;
            };
            if !used.map_or(true, |u| u.get(idx).copied().unwrap_or(true)) {
                r.skip(wire)?;
                continue;
            }
            let f = &desc.fields[idx];
            if let Some(entry) = f.map_entry {
                let (k, v) = self.decode_map_entry(entry, &mut r, wire, depth)?;
                if let Value::Map(m) = &mut slots[idx] {
                    m.push((k, v));
                }
                continue;
            }
            if f.repeated && wire == 2 && is_packable(f.ty) {
                let mut pr = Reader::new(r.bytes()?);
                while !pr.done() {
                    let v = self.read_scalar_value(f, &mut pr, wire_of(f.ty), depth)?;
                    if let Value::List(l) = &mut slots[idx] {
                        l.push(v);
                    }
                }
                continue;
            }
            if wire != wire_of(f.ty) {
                return Err(format!("field {}.{}: wire type {wire} does not match its type", desc.full_name, f.name));
            }
            // Decode straight into the slot: returning 32-byte values through Result costs store-forwarding
            // stalls on this hot loop.
            if f.repeated {
                if let Value::List(l) = &mut slots[idx] {
                    l.push(Value::Null);
                    if let Some(last) = l.last_mut() {
                        self.read_scalar_into(f, &mut r, depth, last)?;
                    }
                }
            } else {
                self.read_scalar_into(f, &mut r, depth, &mut slots[idx])?;
            }
        }
        if desc.special == Special::CustomList {
            // CustomList is read as its list of values.
            return Ok(slots.into_iter().next().unwrap_or(Value::List(Vec::new())));
        }
        if desc.special == Special::CustomStruct {
            return Ok(slots.into_iter().next().unwrap_or(Value::Map(Vec::new())));
        }
        Ok(Value::Msg(slots))
    }

    fn decode_map_entry<'a>(
        &'a self,
        entry: usize,
        r: &mut Reader<'a>,
        wire: u8,
        depth: usize,
    ) -> Result<(Cow<'a, str>, Value<'a>), String> {
        if wire != 2 {
            return Err("map entry with wrong wire type".into());
        }
        let edesc = &self.messages[entry];
        let mut er = Reader::new(r.bytes()?);
        let mut key: Cow<'a, str> = Cow::Borrowed("");
        let mut val: Option<Value<'a>> = None;
        while !er.done() {
            let (n, w) = er.tag()?;
            let Some(&i) = edesc.by_number.get(&n) else {
                er.skip(w)?;
                continue;
            };
            let f = &edesc.fields[i];
            if w != wire_of(f.ty) {
                return Err(format!("map entry {}: wire type mismatch", edesc.full_name));
            }
            let v = self.read_scalar_value(f, &mut er, w, depth)?;
            if n == 1 {
                key = match v {
                    Value::Str(s) => s,
                    Value::Null => Cow::Borrowed(""),
                    other => {
                        Cow::Owned(crate::value::scalar_to_string(&other).map(Cow::into_owned).unwrap_or_default())
                    }
                };
            } else {
                val = Some(v);
            }
        }
        let val = match val {
            Some(v) => v,
            None => match edesc.fields.get(1) {
                Some(f) => match f.ty {
                    FieldType::Message(m) => self.decode_msg(m, &[], depth + 1)?,
                    ty => default_of(ty),
                },
                None => Value::Null,
            },
        };
        Ok((key, val))
    }

    #[inline]
    fn read_scalar_into<'a>(
        &'a self,
        f: &FieldDesc,
        r: &mut Reader<'a>,
        depth: usize,
        out: &mut Value<'a>,
    ) -> Result<(), String> {
        match f.ty {
            FieldType::String => {
                let b = r.bytes()?;
                let s = std::str::from_utf8(b).map_err(|_| format!("field {}: string is not UTF-8", f.name))?;
                set(out, if s.is_empty() { Value::Null } else { Value::Str(Cow::Borrowed(s)) });
            }
            FieldType::Int64 => set(out, Value::Int(r.varint()? as i64)),
            FieldType::Bool => set(out, Value::Bool(r.varint()? != 0)),
            FieldType::Message(m) => {
                let body = r.bytes()?;
                set(out, self.decode_msg(m, body, depth + 1)?);
            }
            _ => set(out, self.read_scalar_value(f, r, wire_of(f.ty), depth)?),
        }
        Ok(())
    }

    fn read_scalar_value<'a>(
        &'a self,
        f: &FieldDesc,
        r: &mut Reader<'a>,
        wire: u8,
        depth: usize,
    ) -> Result<Value<'a>, String> {
        let _ = wire;
        Ok(match f.ty {
            FieldType::Int64 => Value::Int(r.varint()? as i64),
            FieldType::Int32 => Value::Int(r.varint()? as i32 as i64),
            FieldType::Uint32 => Value::Int(r.varint()? as u32 as i64),
            FieldType::Uint64 => {
                let v = r.varint()?;
                match i64::try_from(v) {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Dec(Decimal::new(v as i128, 0).map_err(|_| "uint64 out of range")?),
                }
            }
            FieldType::Sint32 => {
                let v = r.varint()? as u32;
                Value::Int(((v >> 1) as i32 ^ -((v & 1) as i32)) as i64)
            }
            FieldType::Sint64 => {
                let v = r.varint()?;
                Value::Int((v >> 1) as i64 ^ -((v & 1) as i64))
            }
            FieldType::Bool => Value::Bool(r.varint()? != 0),
            FieldType::Enum(e) => {
                let n = r.varint()? as i32;
                if n == 0 {
                    Value::Null
                } else {
                    match self.enums[e].name_of(n) {
                        Some(name) => Value::Str(Cow::Borrowed(name)),
                        None => Value::Int(n as i64),
                    }
                }
            }
            FieldType::Fixed64 => Value::Dec(Decimal::new(r.fixed(8)? as i128, 0).map_err(|_| "fixed64 out of range")?),
            FieldType::Sfixed64 => Value::Int(r.fixed(8)? as i64),
            FieldType::Fixed32 => Value::Int(r.fixed(4)? as u32 as i64),
            FieldType::Sfixed32 => Value::Int(r.fixed(4)? as u32 as i32 as i64),
            // Floats are never read: money and quantities are decimal strings. Decoding only validates.
            FieldType::Double => {
                r.fixed(8)?;
                Value::Null
            }
            FieldType::Float => {
                r.fixed(4)?;
                Value::Null
            }
            FieldType::String => {
                let b = r.bytes()?;
                let s = std::str::from_utf8(b).map_err(|_| format!("field {}: string is not UTF-8", f.name))?;
                if s.is_empty() {
                    Value::Null
                } else {
                    Value::Str(Cow::Borrowed(s))
                }
            }
            FieldType::Bytes => {
                r.bytes()?;
                Value::Null
            }
            FieldType::Message(m) => self.decode_msg(m, r.bytes()?, depth + 1)?,
        })
    }

    fn decode_timestamp<'a>(&'a self, buf: &'a [u8]) -> Result<Value<'a>, String> {
        let mut r = Reader::new(buf);
        let (mut secs, mut nanos) = (0i64, 0i64);
        while !r.done() {
            let (n, w) = r.tag()?;
            match (n, w) {
                (1, 0) => secs = r.varint()? as i64,
                (2, 0) => nanos = r.varint()? as i32 as i64,
                (1, _) | (2, _) => return Err("timestamp: wire type mismatch".into()),
                _ => r.skip(w)?,
            }
        }
        let text = crate::ops::date::format_rfc3339(secs, nanos).ok_or("timestamp out of range")?;
        Ok(Value::Str(Cow::Owned(text)))
    }

    fn decode_custom<'a>(&'a self, msg: usize, buf: &'a [u8], depth: usize) -> Result<Value<'a>, String> {
        let desc = &self.messages[msg];
        let mut r = Reader::new(buf);
        let mut out = Value::Null;
        while !r.done() {
            let (n, w) = r.tag()?;
            let Some(&i) = desc.by_number.get(&n) else {
                r.skip(w)?;
                continue;
            };
            let f = &desc.fields[i];
            if w != wire_of(f.ty) {
                return Err("custom value: wire type mismatch".into());
            }
            let v = self.read_scalar_value(f, &mut r, w, depth)?;
            out = match (f.name.as_str(), v) {
                ("decimal_value", Value::Str(s)) => match Decimal::parse(&s) {
                    Some(Ok(d)) => Value::Dec(d),
                    _ => return Err(format!("custom field decimal_value {s:?} is not a decimal")),
                },
                ("decimal_value", Value::Null) => return Err("custom field decimal_value \"\" is not a decimal".into()),
                (_, v) => v,
            };
        }
        Ok(out)
    }
}

/// Store a decoded value into its slot. The slot almost always still holds its plain default, which needs no
/// drop: checking that inline avoids an out-of-line drop call per decoded field.
#[inline(always)]
fn set<'a>(slot: &mut Value<'a>, v: Value<'a>) {
    let old = std::mem::replace(slot, v);
    if matches!(old, Value::Null | Value::Bool(_) | Value::Int(_) | Value::Str(Cow::Borrowed(_))) {
        std::mem::forget(old);
    } else {
        drop(old);
    }
}

fn default_of(ty: FieldType) -> Value<'static> {
    match ty {
        FieldType::Bool => Value::Bool(false),
        FieldType::String | FieldType::Bytes | FieldType::Enum(_) | FieldType::Message(_) => Value::Null,
        FieldType::Double | FieldType::Float => Value::Null,
        _ => Value::Int(0),
    }
}

pub fn is_packable(ty: FieldType) -> bool {
    !matches!(ty, FieldType::String | FieldType::Bytes | FieldType::Message(_))
}

pub fn wire_of(ty: FieldType) -> u8 {
    match ty {
        FieldType::Double | FieldType::Fixed64 | FieldType::Sfixed64 => 1,
        FieldType::Float | FieldType::Fixed32 | FieldType::Sfixed32 => 5,
        FieldType::String | FieldType::Bytes | FieldType::Message(_) => 2,
        _ => 0,
    }
}

// ---- wire writing -------------------------------------------------------------------------------------------

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_tag(out: &mut Vec<u8>, number: u32, wire: u8) {
    put_varint(out, ((number as u64) << 3) | wire as u64);
}

pub fn put_len_delimited(out: &mut Vec<u8>, number: u32, body: &[u8]) {
    put_tag(out, number, 2);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_through_every_length() {
        let mut values: Vec<u64> = (0..40_000).collect();
        for shift in 0..64 {
            values.extend([1u64 << shift, (1u64 << shift) - 1, (1u64 << shift) + 1]);
        }
        values.push(u64::MAX);
        for v in values {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            buf.push(0x7f);
            let mut r = Reader::new(&buf);
            assert_eq!(r.varint(), Ok(v), "{v}");
            assert_eq!(r.pos, buf.len() - 1, "{v}");
            // Every proper prefix is truncated.
            for cut in 0..buf.len() - 1 {
                assert!(Reader::new(&buf[..cut]).varint().is_err(), "{v} cut at {cut}");
            }
        }
    }
}
