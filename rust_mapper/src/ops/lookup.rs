//! Lookup tables: string key -> value, with declared fallback and missing-key policy.

use std::collections::HashMap;

use crate::value::{scalar_to_string, Value};

#[derive(Debug)]
pub struct Table {
    pub name: String,
    pub entries: HashMap<String, Value<'static>>,
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
    let key = scalar_to_string(&v).ok_or_else(|| format!("cannot look up a {} value", v.kind()))?;
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
