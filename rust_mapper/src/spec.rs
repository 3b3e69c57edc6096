//! Compile a normalized spec (JSON written by `returnbridge.mapping.spec`) into a `Program`.
//! Paths become field slots, regexes are compiled, tables hashed, targets checked against the output schema.

use std::collections::HashMap;

use regex_lite::Regex;

use crate::decimal::Rounding;
use crate::error::SpecError;
use crate::json;
use crate::ops::lookup::{OnMissing, Table};
use crate::ops::{date, Step};
use crate::program::{
    Base, CPath, CmpOp, Cond, Direction, EachBody, EachRule, Expr, FieldRule, Marker, Node, NodeKind, Program, Seg,
    Slot, TPart,
};
use crate::proto::{DynamicTypes, FieldType, Schema, Special};
use crate::value::Value;

type V<'a> = Value<'a>;
type Res<T> = Result<T, SpecError>;

/// Static type of a value at compile time, used to check paths against the input schema.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Msg(usize),
    Dyn,
    Scalar,
    List(Box<Ty>),
    Map(Box<Ty>),
}

/// Where targets resolve (inbound: against the output message).
#[derive(Debug, Clone)]
enum OutCtx {
    Json,
    Msg(usize),
    Map { number: u32, value_ty: FieldType, special: Special },
}

struct Compiler<'s> {
    schema: &'s Schema,
    used: std::cell::RefCell<Vec<Vec<bool>>>,
    tables: HashMap<String, usize>,
    rule: String,
}

fn get<'v, 'a>(v: &'v V<'a>, key: &str) -> Option<&'v V<'a>> {
    v.get_key(key).filter(|x| !x.is_null())
}

fn get_str<'v>(v: &'v V<'_>, key: &str) -> Option<&'v str> {
    match get(v, key) {
        Some(Value::Str(s)) => Some(s.as_ref()),
        _ => None,
    }
}

fn get_bool(v: &V<'_>, key: &str) -> bool {
    matches!(get(v, key), Some(Value::Bool(true)))
}

fn get_u32(v: &V<'_>, key: &str) -> Option<u32> {
    match get(v, key) {
        Some(Value::Int(i)) => u32::try_from(*i).ok(),
        _ => None,
    }
}

fn list<'v, 'a>(v: Option<&'v V<'a>>) -> &'v [V<'a>] {
    match v {
        Some(Value::List(items)) => items,
        _ => &[],
    }
}

/// Compile a normalized spec against the descriptor set.
pub fn compile(spec_json: &[u8], descriptors: &[u8], dynamic: &DynamicTypes) -> Res<Program> {
    let schema = Schema::from_descriptor_set(descriptors, dynamic)
        .map_err(|e| SpecError::new("", format!("bad descriptors: {e}")))?;
    let spec = json::parse(spec_json).map_err(|e| SpecError::new("", format!("bad spec JSON: {e}")))?;
    let id = get_str(&spec, "id").unwrap_or("").to_owned();
    let direction = match get_str(&spec, "direction") {
        Some("outbound") => Direction::Outbound,
        Some("inbound") => Direction::Inbound,
        other => return Err(SpecError::new("", format!("direction must be outbound or inbound, got {other:?}"))),
    };
    let input = get_str(&spec, "input").unwrap_or("");
    let output = get_str(&spec, "output").unwrap_or("");
    let (input_msg, output_msg, root_ty, out_ctx) = match direction {
        Direction::Outbound => {
            let m = schema
                .message(input)
                .ok_or_else(|| SpecError::new("", format!("unknown input message type {input:?}")))?;
            if output != "json" {
                return Err(SpecError::new("", "an outbound spec writes json"));
            }
            (Some(m), None, Ty::Msg(m), OutCtx::Json)
        }
        Direction::Inbound => {
            let m = schema
                .message(output)
                .ok_or_else(|| SpecError::new("", format!("unknown output message type {output:?}")))?;
            if input != "json" {
                return Err(SpecError::new("", "an inbound spec reads json"));
            }
            (None, Some(m), Ty::Dyn, OutCtx::Msg(m))
        }
    };
    let mut tables = Vec::new();
    let mut table_index = HashMap::new();
    if let Some(Value::Map(entries)) = get(&spec, "tables") {
        for (name, t) in entries {
            let mut map = crate::ops::lookup::FastMap::default();
            if let Some(Value::Map(es)) = get(t, "entries") {
                for (k, v) in es {
                    map.insert(k.to_string(), v.clone().into_static());
                }
            }
            let fallback = get(t, "fallback").map(|f| f.get_key("value").cloned().unwrap_or(Value::Null).into_static());
            table_index.insert(name.to_string(), tables.len());
            tables.push(Table { name: name.to_string(), entries: map, fallback });
        }
    }
    let used = schema.messages.iter().map(|m| vec![m.special != Special::None; m.fields.len()]).collect();
    let mut c =
        Compiler { schema: &schema, used: std::cell::RefCell::new(used), tables: table_index, rule: String::new() };
    let mut root = Vec::new();
    let mut scopes = vec![root_ty];
    for r in list(get(&spec, "rules")) {
        c.rule_into(r, &mut root, &out_ctx, &mut scopes)?;
    }
    if direction == Direction::Inbound {
        sort_nodes(&mut root);
    }
    let used = c.used.into_inner();
    let mut schema = schema;
    schema.used = used;
    Ok(Program {
        id,
        direction,
        input_msg,
        output_msg,
        output_name: output.to_owned(),
        tables,
        root,
        schema,
        out_hint: Default::default(),
    })
}

fn sort_nodes(nodes: &mut [Node]) {
    nodes
        .sort_by(|a, b| slot_key(&a.slot).cmp(&slot_key(&b.slot)).then_with(|| a.key.as_bytes().cmp(b.key.as_bytes())));
    for n in nodes.iter_mut() {
        match &mut n.kind {
            NodeKind::Object(children) => sort_nodes(children),
            NodeKind::List(r) => {
                if let EachBody::Objects(children) = &mut r.body {
                    sort_nodes(children);
                }
            }
            NodeKind::Field(_) => {}
        }
    }
}

fn slot_key(s: &Slot) -> u32 {
    match s {
        Slot::Json => 0,
        Slot::Field { number, .. } | Slot::Map { number } | Slot::MapKey { number, .. } => *number,
    }
}

impl Compiler<'_> {
    fn err(&self, message: impl Into<String>) -> SpecError {
        SpecError::new(&self.rule, message)
    }

    fn field_ty(&self, ty: FieldType, repeated: bool, map_entry: Option<usize>) -> Ty {
        if let Some(entry) = map_entry {
            let value = self.schema.messages[entry].fields.get(1).map(|f| self.field_ty(f.ty, false, f.map_entry));
            return Ty::Map(Box::new(value.unwrap_or(Ty::Dyn)));
        }
        let single = match ty {
            FieldType::Message(m) => match self.schema.messages[m].special {
                Special::Timestamp => Ty::Scalar,
                Special::CustomValue => Ty::Dyn,
                Special::CustomList => Ty::List(Box::new(Ty::Dyn)),
                Special::CustomStruct => Ty::Map(Box::new(Ty::Dyn)),
                Special::None => Ty::Msg(m),
            },
            _ => Ty::Scalar,
        };
        if repeated {
            Ty::List(Box::new(single))
        } else {
            single
        }
    }

    /// Compile a path read in the scope stack `scopes`. Returns the path and the type it yields
    /// (for `each` paths with `[*]`, also the item type of every level).
    fn path(&self, p: &V<'_>, scopes: &[Ty]) -> Res<(CPath, Ty, Vec<Ty>)> {
        let text = get_str(p, "text").unwrap_or("").to_owned();
        let up = get_u32(p, "up").unwrap_or(0) as usize;
        let base = if get_bool(p, "root") {
            Base::Root
        } else if up > 0 {
            Base::Up(up)
        } else {
            Base::Current
        };
        let start = match base {
            Base::Root => 0,
            Base::Up(n) => scopes
                .len()
                .checked_sub(n + 1)
                .ok_or_else(|| self.err(format!("path {text:?}: '^' goes above the document root")))?,
            Base::Current => scopes.len() - 1,
        };
        let marker = match get_str(p, "special") {
            None => Marker::None,
            Some("item") => Marker::Item,
            Some("index") => Marker::Index,
            Some("number") => Marker::Number,
            Some(other) => return Err(self.err(format!("unknown path marker {other:?}"))),
        };
        if matches!(marker, Marker::Index | Marker::Number) && start == 0 {
            return Err(self.err(format!("path {text:?}: @index/@number only exist inside `each`")));
        }
        let mut ty = scopes[start].clone();
        let mut segs = Vec::new();
        let mut levels = Vec::new();
        let mut labels = Vec::new();
        let mut label = String::new();
        for s in list(get(p, "segs")) {
            if let Some(name) = get_str(s, "f") {
                let (seg, next) = match &ty {
                    Ty::Msg(m) => {
                        let desc = &self.schema.messages[*m];
                        let i = *desc.by_name.get(name).ok_or_else(|| {
                            self.err(format!("path {text:?}: {} has no field {name:?}", desc.full_name))
                        })?;
                        let f = &desc.fields[i];
                        if matches!(f.ty, FieldType::Double | FieldType::Float | FieldType::Bytes) {
                            return Err(self.err(format!(
                                "path {text:?}: field {name:?} is a float/bytes field, which mappings cannot read"
                            )));
                        }
                        if let Some(u) = self.used.borrow_mut().get_mut(*m).and_then(|u| u.get_mut(i)) {
                            *u = true;
                        }
                        (Seg::Slot(i, name.to_owned()), self.field_ty(f.ty, f.repeated, f.map_entry))
                    }
                    Ty::Map(v) => (Seg::Key(name.to_owned()), (**v).clone()),
                    Ty::Dyn => (Seg::Key(name.to_owned()), Ty::Dyn),
                    Ty::List(_) => {
                        return Err(self.err(format!(
                            "path {text:?}: {name:?} is read from a list; use an index, each, sum or count"
                        )))
                    }
                    Ty::Scalar => return Err(self.err(format!("path {text:?}: cannot read {name:?} from a scalar"))),
                };
                if !label.is_empty() {
                    label.push('.');
                }
                label.push_str(name);
                segs.push(seg);
                ty = next;
            } else if let Some(Value::Int(i)) = get(s, "i") {
                ty = match ty {
                    Ty::List(e) => *e,
                    Ty::Dyn => Ty::Dyn,
                    _ => return Err(self.err(format!("path {text:?}: index on something that is not a list"))),
                };
                label.push_str(&format!("[{i}]"));
                segs.push(Seg::Index(usize::try_from(*i).map_err(|_| self.err("bad index"))?));
            } else if get_bool(s, "all") {
                ty = match ty {
                    Ty::List(e) => *e,
                    Ty::Dyn => Ty::Dyn,
                    _ => return Err(self.err(format!("path {text:?}: [*] on something that is not a list"))),
                };
                levels.push(ty.clone());
                labels.push(std::mem::take(&mut label));
                segs.push(Seg::All);
            } else {
                return Err(self.err(format!("path {text:?}: bad segment")));
            }
        }
        labels.push(label);
        if marker == Marker::Index || marker == Marker::Number {
            ty = Ty::Scalar;
        }
        Ok((CPath { text, labels, base, marker, segs }, ty, levels))
    }

    /// An `each` path: returns the path and the scope types pushed per item (flattened levels + item).
    fn each_path(&self, p: &V<'_>, scopes: &[Ty]) -> Res<(CPath, Vec<Ty>)> {
        let (path, ty, mut levels) = self.path(p, scopes)?;
        if path.marker == Marker::Item && path.segs.is_empty() {
            // `each: "@"`: the current item as a one-element list (e.g. one nested object per line).
            return Ok((path, vec![ty]));
        }
        if path.marker != Marker::None {
            return Err(self.err(format!("each {:?}: iterate a list field, not a marker", path.text)));
        }
        let item = match ty {
            Ty::List(e) => *e,
            Ty::Dyn => Ty::Dyn,
            _ => return Err(self.err(format!("each {:?} is not a list", path.text))),
        };
        levels.push(item);
        if levels.len() > crate::program::MAX_LEVELS {
            return Err(self.err(format!(
                "each {:?} flattens more than {} levels",
                path.text,
                crate::program::MAX_LEVELS - 1
            )));
        }
        Ok((path, levels))
    }

    fn expr(&self, e: &V<'_>, scopes: &mut Vec<Ty>) -> Res<Expr> {
        let Value::Map(entries) = e else {
            return Err(self.err("expression must be an object"));
        };
        let Some((head, arg)) = entries.first() else {
            return Err(self.err("empty expression"));
        };
        let many = |s: &Self, scopes: &mut Vec<Ty>| -> Res<Vec<Expr>> {
            list(Some(arg)).iter().map(|x| s.expr(x, scopes)).collect()
        };
        Ok(match head.as_ref() {
            "path" => Expr::Path(self.path(arg, scopes)?.0),
            "const" => Expr::Const(arg.clone().into_static()),
            "template" => {
                let mut parts = Vec::new();
                for part in list(Some(arg)) {
                    if let Some(l) = get_str(part, "lit") {
                        parts.push(TPart::Lit(l.to_owned()));
                    } else if let Some(p) = get(part, "path") {
                        parts.push(TPart::Path(self.path(p, scopes)?.0));
                    }
                }
                Expr::Template(parts)
            }
            "concat" => Expr::Concat(many(self, scopes)?, get_str(e, "separator").unwrap_or("").to_owned()),
            "coalesce" => Expr::Coalesce(many(self, scopes)?),
            "add" => Expr::Add(many(self, scopes)?),
            "mul" => Expr::Mul(many(self, scopes)?),
            "sub" | "div" => {
                let mut ops = many(self, scopes)?;
                if ops.len() != 2 {
                    return Err(self.err(format!("{head} takes two operands")));
                }
                let b = Box::new(ops.pop().ok_or_else(|| self.err("missing operand"))?);
                let a = Box::new(ops.pop().ok_or_else(|| self.err("missing operand"))?);
                if head == "sub" {
                    Expr::Sub(a, b)
                } else {
                    Expr::Div(a, b, self.scale(e)?, self.rounding(e)?)
                }
            }
            "neg" => Expr::Neg(Box::new(self.expr(arg, scopes)?)),
            "abs" => Expr::Abs(Box::new(self.expr(arg, scopes)?)),
            "round" => Expr::Round(Box::new(self.expr(arg, scopes)?), self.scale(e)?, self.rounding(e)?),
            "sum" | "count" => {
                let (each, levels) =
                    self.each_path(get(arg, "each").ok_or_else(|| self.err("sum/count needs each"))?, scopes)?;
                let n = levels.len();
                scopes.extend(levels);
                let filter = match get(arg, "where") {
                    Some(c) => Some(Box::new(self.cond(c, scopes)?)),
                    None => None,
                };
                let value = match (head.as_ref(), get(arg, "value")) {
                    ("sum", Some(v)) => Some(self.expr(v, scopes)?),
                    ("sum", None) => return Err(self.err("sum needs value")),
                    _ => None,
                };
                scopes.truncate(scopes.len() - n);
                match value {
                    Some(v) => Expr::Sum { each, value: Box::new(v), filter },
                    None => Expr::Count { each, filter },
                }
            }
            "if" => {
                let c = self.cond(arg, scopes)?;
                let then = self.expr(get(e, "then").ok_or_else(|| self.err("if needs then"))?, scopes)?;
                let otherwise = match get(e, "else") {
                    Some(x) => Some(Box::new(self.expr(x, scopes)?)),
                    None => None,
                };
                Expr::If(Box::new(c), Box::new(then), otherwise)
            }
            "pipe" => {
                let steps = self.pipe(arg, scopes)?;
                let value =
                    self.expr(get(e, "value").ok_or_else(|| self.err("pipe expression needs value"))?, scopes)?;
                Expr::Pipe(steps, Box::new(value))
            }
            other => return Err(self.err(format!("unknown expression {other:?}"))),
        })
    }

    fn scale(&self, e: &V<'_>) -> Res<u32> {
        get_u32(e, "scale").filter(|s| *s <= 38).ok_or_else(|| self.err("scale must be 0..38"))
    }

    fn rounding(&self, e: &V<'_>) -> Res<Rounding> {
        let name = get_str(e, "rounding").unwrap_or("half_even");
        Rounding::parse(name).ok_or_else(|| self.err(format!("unknown rounding mode {name:?}")))
    }

    fn regex(&self, pattern: &str) -> Res<Regex> {
        Regex::new(pattern).map_err(|e| self.err(format!("invalid regex {pattern:?}: {e}")))
    }

    fn cond(&self, c: &V<'_>, scopes: &mut Vec<Ty>) -> Res<Cond> {
        if let Some(items) = get(c, "all") {
            return Ok(Cond::All(list(Some(items)).iter().map(|x| self.cond(x, scopes)).collect::<Res<_>>()?));
        }
        if let Some(items) = get(c, "any") {
            return Ok(Cond::Any(list(Some(items)).iter().map(|x| self.cond(x, scopes)).collect::<Res<_>>()?));
        }
        if let Some(inner) = get(c, "not") {
            return Ok(Cond::Not(Box::new(self.cond(inner, scopes)?)));
        }
        let subject = self.expr(get(c, "subject").ok_or_else(|| self.err("condition needs a subject"))?, scopes)?;
        let op = match get_str(c, "op") {
            Some("eq") => CmpOp::Eq,
            Some("ne") => CmpOp::Ne,
            Some("in") => CmpOp::In,
            Some("not_in") => CmpOp::NotIn,
            Some("exists") => CmpOp::Exists,
            Some("gt") => CmpOp::Gt,
            Some("ge") => CmpOp::Ge,
            Some("lt") => CmpOp::Lt,
            Some("le") => CmpOp::Le,
            Some("matches") => CmpOp::Matches,
            other => return Err(self.err(format!("unknown condition operator {other:?}"))),
        };
        let arg = c.get_key("arg").cloned().unwrap_or(Value::Null).into_static();
        let mut re = None;
        if op == CmpOp::Matches {
            match &arg {
                Value::Str(p) => re = Some(self.regex(p)?),
                _ => return Err(self.err("matches takes a regex string")),
            }
        }
        let args = match arg {
            Value::List(items) if matches!(op, CmpOp::In | CmpOp::NotIn) => items,
            other => vec![other],
        };
        Ok(Cond::Cmp { subject, op, args, re })
    }

    fn pipe(&self, steps: &V<'_>, scopes: &mut [Ty]) -> Res<Vec<Step>> {
        list(Some(steps)).iter().map(|s| self.step(s, scopes)).collect()
    }

    fn step(&self, s: &V<'_>, scopes: &mut [Ty]) -> Res<Step> {
        let op = get_str(s, "op").unwrap_or("");
        let text = |k: &str| get_str(s, k).unwrap_or("").to_owned();
        Ok(match op {
            "string" => Step::String,
            "integer" => Step::Integer,
            "decimal" => Step::Decimal { scale: get_u32(s, "scale"), rounding: self.rounding(s)? },
            "number" => Step::Number,
            "bool" => Step::Bool,
            "date" => {
                let f = |k: &str, d: &str| {
                    let name = get_str(s, k).unwrap_or(d);
                    date::Format::parse(name).ok_or_else(|| self.err(format!("unknown date format {name:?}")))
                };
                Step::Date { from: f("from", "auto")?, to: f("to", "datetime")? }
            }
            "minor_units" | "from_minor_units" => {
                let currency = match get(s, "currency") {
                    Some(p) => Some(self.path(p, scopes)?.0),
                    None => None,
                };
                let exponent = get_u32(s, "exponent");
                if exponent.is_some_and(|e| e > 18) {
                    return Err(self.err("minor unit exponent must be 0..18"));
                }
                Step::MinorUnits { exponent, currency, inverse: op == "from_minor_units" }
            }
            "trim" => Step::Trim,
            "upper" => Step::Upper,
            "lower" => Step::Lower,
            "pad_left" | "pad_right" if get_u32(s, "width").map_or(true, |w| w == 0 || w > 1000) => {
                return Err(self.err("pad width must be 1..1000"));
            }
            "pad_left" | "pad_right" => Step::Pad {
                width: get_u32(s, "width").unwrap_or(0) as usize,
                fill: text("char").chars().next().unwrap_or(' '),
                left: op == "pad_left",
            },
            "max_length" => Step::MaxLength {
                length: get_u32(s, "length").unwrap_or(0) as usize,
                truncate: get_str(s, "on_overflow") == Some("truncate"),
                label: text("label"),
            },
            "prefix" | "suffix" => Step::Affix { text: text("text"), prefix: op == "prefix" },
            "split" => Step::Split { separator: text("separator"), index: get_u32(s, "index").map(|i| i as usize) },
            "join" => Step::Join { separator: text("separator") },
            "replace" => Step::Replace { re: self.regex(&text("pattern"))?, with: text("with") },
            "match" => {
                Step::Match { re: self.regex(&text("pattern"))?, reject: get_str(s, "on_mismatch") != Some("omit") }
            }
            "extract" => {
                let re = self.regex(&text("pattern"))?;
                let group = get_u32(s, "group").unwrap_or(0) as usize;
                if group >= re.captures_len() {
                    return Err(self.err(format!("extract group {group} does not exist")));
                }
                Step::Extract { re, group }
            }
            "lookup" => {
                let name = text("table");
                let table = *self.tables.get(&name).ok_or_else(|| self.err(format!("unknown table {name:?}")))?;
                let on_missing = match get_str(s, "on_missing") {
                    None => OnMissing::Fallback,
                    Some("error") => OnMissing::Error,
                    Some("fallback") => OnMissing::Fallback,
                    Some("passthrough") => OnMissing::Passthrough,
                    Some("omit") => OnMissing::Omit,
                    Some(other) => return Err(self.err(format!("unknown on_missing {other:?}"))),
                };
                Step::Lookup { table, field: get_str(s, "field").map(str::to_owned), on_missing }
            }
            "negate" => Step::Negate,
            "abs" => Step::Abs,
            "default" => Step::Default(s.get_key("value").cloned().unwrap_or(Value::Null).into_static()),
            "required" => Step::Required,
            other => return Err(self.err(format!("unknown pipe step {other:?}"))),
        })
    }

    fn field_rule(&self, r: &V<'_>, scopes: &mut Vec<Ty>) -> Res<FieldRule> {
        let value = match get(r, "value") {
            Some(v) => self.expr(v, scopes)?,
            None => return Err(self.err("rule has no value")),
        };
        let mut rule = FieldRule {
            id: self.rule.clone(),
            value,
            pipe: match get(r, "pipe") {
                Some(p) => self.pipe(p, scopes)?,
                None => Vec::new(),
            },
            when: match get(r, "when") {
                Some(c) => Some(self.cond(c, scopes)?),
                None => None,
            },
            otherwise: match get(r, "otherwise") {
                Some(e) => Some(self.expr(e, scopes)?),
                None => None,
            },
            default: get(r, "default").map(|d| d.clone().into_static()),
            required: get_bool(r, "required"),
            emit_null: get_bool(r, "emit_null"),
            custom_date: get_str(r, "custom_type") == Some("date"),
            plain: false,
        };
        rule.plain = rule.when.is_none()
            && rule.otherwise.is_none()
            && rule.default.is_none()
            && !rule.emit_null
            && match &rule.value {
                Expr::Path(p) => p.base == Base::Current && matches!(p.marker, Marker::None | Marker::Item),
                Expr::Const(c) => !c.is_null(),
                _ => false,
            };
        Ok(rule)
    }

    /// Resolve the slots of a target path in `ctx`: (key, slot, context for children) per segment.
    fn target_slots(&self, target: &[String], ctx: &OutCtx) -> Res<Vec<TargetSlot>> {
        let mut out = Vec::new();
        let mut ctx = ctx.clone();
        for key in target {
            let (slot, next, info) = match &ctx {
                OutCtx::Json => (Slot::Json, OutCtx::Json, None),
                OutCtx::Msg(m) => {
                    let desc = &self.schema.messages[*m];
                    let i = *desc
                        .by_name
                        .get(key.as_str())
                        .ok_or_else(|| self.err(format!("target: {} has no field {key:?}", desc.full_name)))?;
                    let f = &desc.fields[i];
                    let special = match f.ty {
                        FieldType::Message(mm) => self.schema.messages[mm].special,
                        _ => Special::None,
                    };
                    if let Some(entry) = f.map_entry {
                        let vf = self.schema.messages[entry].fields.get(1).ok_or_else(|| self.err("bad map entry"))?;
                        let vspecial = match vf.ty {
                            FieldType::Message(mm) => self.schema.messages[mm].special,
                            _ => Special::None,
                        };
                        (
                            Slot::Map { number: f.number },
                            OutCtx::Map { number: f.number, value_ty: vf.ty, special: vspecial },
                            Some(FieldInfo { repeated: false, is_map: true, ty: f.ty, special }),
                        )
                    } else {
                        let next = match f.ty {
                            FieldType::Message(mm) if special == Special::None => OutCtx::Msg(mm),
                            _ => OutCtx::Json,
                        };
                        (
                            Slot::Field { number: f.number, ty: f.ty, special },
                            next,
                            Some(FieldInfo { repeated: f.repeated, is_map: false, ty: f.ty, special }),
                        )
                    }
                }
                OutCtx::Map { number, value_ty, special } => (
                    Slot::MapKey { number: *number, value_ty: *value_ty, special: *special },
                    OutCtx::Json,
                    Some(FieldInfo { repeated: false, is_map: false, ty: *value_ty, special: *special }),
                ),
            };
            out.push((key.clone(), slot, next.clone(), info));
            ctx = next;
        }
        Ok(out)
    }

    fn rule_into(&mut self, r: &V<'_>, nodes: &mut Vec<Node>, ctx: &OutCtx, scopes: &mut Vec<Ty>) -> Res<()> {
        self.rule = get_str(r, "id").unwrap_or("").to_owned();
        let target: Vec<String> = list(get(r, "target"))
            .iter()
            .filter_map(|t| match t {
                Value::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect();
        if target.is_empty() {
            return Err(self.err("empty target"));
        }
        let slots = self.target_slots(&target, ctx)?;
        let inbound = !matches!(ctx, OutCtx::Json);
        // Intermediate segments must be plain (non-repeated) messages or maps.
        for (key, _, _, info) in &slots[..slots.len() - 1] {
            if let Some(info) = info {
                let plain_msg =
                    matches!(info.ty, FieldType::Message(_)) && info.special == Special::None && !info.repeated;
                if !(plain_msg || info.is_map) {
                    return Err(self.err(format!(
                        "target: {key:?} is not a message field, so it cannot hold {:?}",
                        target.join(".")
                    )));
                }
            }
        }
        let (last_key, last_slot, last_ctx, last_info) =
            slots.last().cloned().ok_or_else(|| self.err("empty target"))?;
        let kind = if let Some(each) = get(r, "each") {
            let (each_path, levels) = self.each_path(each, scopes)?;
            let n = levels.len();
            scopes.extend(levels);
            let result = (|| -> Res<NodeKind> {
                let filter = match get(r, "where") {
                    Some(c) => Some(self.cond(c, scopes)?),
                    None => None,
                };
                let id = self.rule.clone();
                let body = if let Some(children) = get(r, "rules") {
                    if inbound {
                        let ok = matches!(&last_info, Some(i) if i.repeated && matches!(i.ty, FieldType::Message(_)) && i.special == Special::None);
                        if !ok {
                            return Err(
                                self.err(format!("target {:?} must be a repeated message field", target.join(".")))
                            );
                        }
                    }
                    let mut kids = Vec::new();
                    for child in list(Some(children)) {
                        self.rule_into(child, &mut kids, &last_ctx, scopes)?;
                    }
                    self.rule = id.clone();
                    EachBody::Objects(kids)
                } else {
                    if inbound {
                        let ok = matches!(&last_info, Some(i) if i.repeated && (!matches!(i.ty, FieldType::Message(_)) || i.special != Special::None));
                        if !ok {
                            return Err(
                                self.err(format!("target {:?} must be a repeated scalar field", target.join(".")))
                            );
                        }
                    }
                    EachBody::Scalars(Box::new(self.field_rule(r, scopes)?))
                };
                Ok(NodeKind::List(Box::new(EachRule {
                    id,
                    each: each_path,
                    filter,
                    keep_empty: get_bool(r, "keep_empty"),
                    required: get_bool(r, "required"),
                    body,
                })))
            })();
            scopes.truncate(scopes.len() - n);
            result?
        } else {
            if let Some(info) = &last_info {
                if info.repeated || info.is_map {
                    return Err(self.err(format!("target {:?} is a repeated/map field: use `each`", target.join("."))));
                }
                if matches!(info.ty, FieldType::Message(_)) && info.special == Special::None {
                    return Err(self.err(format!("target {:?} is a message: map its fields", target.join("."))));
                }
                if matches!(info.ty, FieldType::Double | FieldType::Float | FieldType::Bytes) {
                    return Err(
                        self.err(format!("target {:?}: float/bytes fields are not supported", target.join(".")))
                    );
                }
            }
            NodeKind::Field(Box::new(self.field_rule(r, scopes)?))
        };
        // Insert into the tree, creating intermediate objects.
        let mut level = nodes;
        for (key, slot, _, _) in &slots[..slots.len() - 1] {
            let pos = level.iter().position(|n| &n.key == key);
            let idx = match pos {
                Some(i) => {
                    if !matches!(level[i].kind, NodeKind::Object(_)) {
                        return Err(self.err(format!(
                            "target {:?} conflicts with another rule writing {key:?}",
                            target.join(".")
                        )));
                    }
                    i
                }
                None => {
                    level.push(Node {
                        key_json: key_json(key),
                        key: key.clone(),
                        slot: slot.clone(),
                        kind: NodeKind::Object(Vec::new()),
                    });
                    level.len() - 1
                }
            };
            level = match &mut level[idx].kind {
                NodeKind::Object(children) => children,
                _ => return Err(self.err("internal: not an object")),
            };
        }
        if level.iter().any(|n| n.key == last_key) {
            return Err(self.err(format!("target {:?} is written by another rule too", target.join("."))));
        }
        level.push(Node { key_json: key_json(&last_key), key: last_key, slot: last_slot, kind });
        Ok(())
    }
}

type TargetSlot = (String, Slot, OutCtx, Option<FieldInfo>);

#[derive(Debug, Clone)]
struct FieldInfo {
    repeated: bool,
    is_map: bool,
    ty: FieldType,
    special: Special,
}

fn key_json(key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 4);
    out.push(b',');
    json::write_str(&mut out, key);
    out.push(b':');
    out
}
