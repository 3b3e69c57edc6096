//! Lookup tables: string key -> value, with declared fallback and missing-key policy.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::value::{scalar_to_string, Value};

/// FNV-1a: table keys are short codes; SipHash's DoS resistance buys nothing for spec-defined keys.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

#[derive(Debug)]
pub struct Table {
    pub name: String,
    pub entries: FastMap<String, Value<'static>>,
    pub fallback: Option<Value<'static>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMissing {
    Error,
    Fallback,
    Passthrough,
    Omit,
}

/// Look `v` up in `table`; `field` selects a member of an object entry.
pub fn lookup<'t>(
    v: Value<'t>,
    table: &'t Table,
    field: Option<&str>,
    on_missing: OnMissing,
) -> Result<Value<'t>, String> {
    // Keys are mostly strings already: take them as they are (no copy of the Cow, no drop of `v`).
    let key = match v {
        Value::Str(s) => s,
        other => scalar_to_string(&other).ok_or_else(|| format!("cannot look up a {} value", other.kind()))?,
    };
    let hit = match table.entries.get(key.as_ref()) {
        Some(hit) => hit,
        None => match on_missing {
            OnMissing::Passthrough => return Ok(Value::Str(key)),
            OnMissing::Omit => return Ok(Value::Null),
            OnMissing::Fallback => match &table.fallback {
                Some(fb) => fb,
                None => return Err(format!("no entry for {key:?} in table {}", table.name)),
            },
            OnMissing::Error => return Err(format!("no entry for {key:?} in table {}", table.name)),
        },
    };
    let hit = match field {
        None => hit,
        Some(f) => hit.get_key(f).ok_or_else(|| format!("entry {key:?} of table {} has no field {f:?}", table.name))?,
    };
    Ok(crate::value::view(hit))
}
