//! The compiled program: output tree of rules, expressions, conditions, and its execution.

use std::borrow::Cow;

use regex_lite::Regex;

use crate::decimal::{Decimal, Rounding};
use crate::error::TranslateError;
use crate::json;
use crate::ops::lookup::Table;
use crate::ops::{convert, date, lookup, money, pattern, text, Step};
use crate::proto::{self, FieldType, Schema, Special};
use crate::value::{view, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Current,
    Root,
    Up(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    Item,
    Index,
    Number,
}

#[derive(Debug, Clone)]
pub enum Seg {
    Slot(usize, String),
    Key(String),
    Index(usize),
    All,
}

/// A compiled path: where to start, then field slots / keys / indices.
#[derive(Debug, Clone)]
pub struct CPath {
    pub text: String,
    /// Error-path label of each iteration level (`each` paths): e.g. `lines`, `serial_numbers`.
    pub labels: Vec<String>,
    pub base: Base,
    pub marker: Marker,
    pub segs: Vec<Seg>,
}

#[derive(Debug)]
pub enum TPart {
    Lit(String),
    Path(CPath),
}

#[derive(Debug)]
pub enum Expr {
    Path(CPath),
    Const(Value<'static>),
    Template(Vec<TPart>),
    Concat(Vec<Expr>, String),
    Coalesce(Vec<Expr>),
    Add(Vec<Expr>),
    Mul(Vec<Expr>),
    Sub(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>, u32, Rounding),
    Neg(Box<Expr>),
    Abs(Box<Expr>),
    Round(Box<Expr>, u32, Rounding),
    Sum { each: CPath, value: Box<Expr>, filter: Option<Box<Cond>> },
    Count { each: CPath, filter: Option<Box<Cond>> },
    If(Box<Cond>, Box<Expr>, Option<Box<Expr>>),
    Pipe(Vec<Step>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    In,
    NotIn,
    Exists,
    Gt,
    Ge,
    Lt,
    Le,
    Matches,
}

#[derive(Debug)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Cmp { subject: Expr, op: CmpOp, args: Vec<Value<'static>>, re: Option<Regex> },
}

/// Where a value lands in the protobuf output (inbound).
#[derive(Debug, Clone)]
pub enum Slot {
    Json,
    Field {
        number: u32,
        ty: FieldType,
        special: Special,
    },
    /// A `map<string, V>` field written key by key (its children are `MapKey` slots).
    Map {
        number: u32,
    },
    /// A key of a `map<string, V>` field: `number` is the map field, `value_ty` the entry value type.
    MapKey {
        number: u32,
        value_ty: FieldType,
        special: Special,
    },
}

#[derive(Debug)]
pub struct FieldRule {
    pub id: String,
    pub value: Expr,
    pub pipe: Vec<Step>,
    pub when: Option<Cond>,
    pub otherwise: Option<Expr>,
    pub default: Option<Value<'static>>,
    pub required: bool,
    pub emit_null: bool,
    pub custom_date: bool,
}

#[derive(Debug)]
pub enum EachBody {
    Objects(Vec<Node>),
    Scalars(Box<FieldRule>),
}

#[derive(Debug)]
pub struct EachRule {
    pub id: String,
    pub each: CPath,
    pub filter: Option<Cond>,
    pub keep_empty: bool,
    pub required: bool,
    pub body: EachBody,
}

#[derive(Debug)]
pub enum NodeKind {
    Object(Vec<Node>),
    Field(Box<FieldRule>),
    List(Box<EachRule>),
}

#[derive(Debug)]
pub struct Node {
    pub key: String,
    /// `"key":` already escaped, written as is (JSON output).
    pub key_json: Vec<u8>,
    pub slot: Slot,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Outbound,
    Inbound,
}

/// A compiled mapping spec.
#[derive(Debug)]
pub struct Program {
    pub id: String,
    pub direction: Direction,
    pub schema: Schema,
    pub input_msg: Option<usize>,
    pub output_msg: Option<usize>,
    pub output_name: String,
    pub tables: Vec<Table>,
    pub root: Vec<Node>,
}

/// One output field and the rule and input path that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainEntry {
    pub output_path: String,
    pub rule: String,
    pub input_path: String,
}

struct Scope<'t> {
    value: &'t Value<'t>,
    out_index: usize,
    src_index: usize,
    label: &'t str,
    base: usize,
}

type R<T> = Result<T, String>;

/// Error before the rule is known: message plus an optional path override. Boxed so `Result<Value, Fail>`
/// stays small on the hot path.
struct Fail(Box<FailInner>);

struct FailInner {
    message: String,
    path: Option<String>,
}

impl From<String> for Fail {
    fn from(message: String) -> Self {
        Fail(Box::new(FailInner { message, path: None }))
    }
}

struct Run<'t> {
    prog: &'t Program,
    scopes: Vec<Scope<'t>>,
    explain: Option<Vec<ExplainEntry>>,
    out_path: Vec<String>,
}

impl Program {
    /// Translate one document. Outbound: protobuf in, JSON out. Inbound: JSON in, protobuf out.
    pub fn translate(&self, input: &[u8]) -> Result<Vec<u8>, TranslateError> {
        self.run(input, false).map(|(out, _)| out)
    }

    /// Translate and report which rule produced each output field.
    pub fn explain(&self, input: &[u8]) -> Result<(Vec<u8>, Vec<ExplainEntry>), TranslateError> {
        self.run(input, true)
    }

    fn run(&self, input: &[u8], explain: bool) -> Result<(Vec<u8>, Vec<ExplainEntry>), TranslateError> {
        let doc_err = |message: String| TranslateError { rule: String::new(), path: String::new(), message };
        let tree = match self.input_msg {
            Some(m) => self.schema.decode(m, input).map_err(|e| doc_err(format!("invalid protobuf input: {e}")))?,
            None => {
                let v = json::parse(input).map_err(doc_err)?;
                if !matches!(v, Value::Map(_)) {
                    return Err(doc_err(format!("expected a JSON object, got {}", v.kind())));
                }
                v
            }
        };
        let mut run = Run {
            prog: self,
            scopes: vec![Scope { value: &tree, out_index: 0, src_index: 0, label: "", base: 0 }],
            explain: explain.then(Vec::new),
            out_path: Vec::new(),
        };
        let mut out = Vec::with_capacity(1024);
        if self.direction == Direction::Outbound {
            out.push(b'{');
            run.write_members(&self.root, &mut out)?;
            out.push(b'}');
        } else {
            run.encode_members(&self.root, &mut out)?;
        }
        Ok((out, run.explain.unwrap_or_default()))
    }
}

impl<'t> Run<'t> {
    // ---- paths ----------------------------------------------------------------------------------------------

    fn base_scope(&self, base: Base) -> R<usize> {
        let cur = self.scopes.len() - 1;
        match base {
            Base::Current => Ok(cur),
            Base::Root => Ok(0),
            Base::Up(n) => cur
                .checked_sub(n)
                .filter(|i| *i > 0 || n <= cur)
                .ok_or_else(|| "'^' goes above the document root".to_string()),
        }
    }

    fn resolve(&self, p: &'t CPath) -> R<Value<'t>> {
        let si = self.base_scope(p.base)?;
        let scope = &self.scopes[si];
        match p.marker {
            Marker::Index => return Ok(Value::Int(scope.out_index as i64)),
            Marker::Number => return Ok(Value::Int(scope.out_index as i64 + 1)),
            Marker::Item | Marker::None => {}
        }
        let mut cur: &'t Value<'t> = scope.value;
        for seg in &p.segs {
            cur = match step_into(cur, seg) {
                Some(v) => v,
                None => return Ok(Value::Null),
            };
        }
        Ok(view(cur))
    }

    fn scope_path(&self, i: usize) -> String {
        if i == 0 {
            return String::new();
        }
        let s = &self.scopes[i];
        let parent = self.scope_path(s.base);
        let sep = if parent.is_empty() { "" } else { "." };
        format!("{parent}{sep}{}[{}]", s.label, s.src_index)
    }

    fn path_of(&self, p: &CPath) -> String {
        let Ok(si) = self.base_scope(p.base) else {
            return p.text.clone();
        };
        let mut s = self.scope_path(si);
        match p.marker {
            Marker::Index => return join_path(&s, "@index"),
            Marker::Number => return join_path(&s, "@number"),
            _ => {}
        }
        for seg in &p.segs {
            match seg {
                Seg::Slot(_, name) | Seg::Key(name) => s = join_path(&s, name),
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
                Seg::All => s.push_str("[*]"),
            }
        }
        s
    }

    fn here(&self) -> String {
        self.scope_path(self.scopes.len() - 1)
    }

    /// Items of an `each` path with the intermediate scopes of flattened (`[*]`) levels.
    fn items(&self, p: &'t CPath) -> R<Vec<(Chain<'t>, &'t Value<'t>)>> {
        let si = self.base_scope(p.base)?;
        let start: &'t Value<'t> = self.scopes[si].value;
        let mut out = Vec::new();
        collect_items(start, &p.segs, &p.labels, &mut Chain::new(), &mut out, &p.text)?;
        Ok(out)
    }

    // ---- expressions ----------------------------------------------------------------------------------------

    fn eval(&mut self, e: &'t Expr) -> Result<Value<'t>, Fail> {
        Ok(match e {
            Expr::Path(p) => self.resolve(p)?,
            Expr::Const(c) => view(c),
            Expr::Template(parts) => {
                let mut s = String::new();
                for part in parts {
                    match part {
                        TPart::Lit(l) => s.push_str(l),
                        TPart::Path(p) => {
                            let v = self.resolve(p)?;
                            if !v.is_null() {
                                let t = crate::value::scalar_to_string(&v)
                                    .ok_or_else(|| format!("template placeholder {{{}}} is a {}", p.text, v.kind()))?;
                                s.push_str(&t);
                            }
                        }
                    }
                }
                Value::Str(Cow::Owned(s))
            }
            Expr::Concat(parts, sep) => {
                let mut s = String::new();
                let mut first = true;
                for part in parts {
                    let v = self.eval(part)?;
                    if v.is_null() {
                        continue;
                    }
                    let t =
                        crate::value::scalar_to_string(&v).ok_or_else(|| format!("cannot concat a {}", v.kind()))?;
                    if !first {
                        s.push_str(sep);
                    }
                    first = false;
                    s.push_str(&t);
                }
                Value::Str(Cow::Owned(s))
            }
            Expr::Coalesce(parts) => {
                for part in parts {
                    let v = self.eval(part)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Value::Null
            }
            Expr::Add(parts) | Expr::Mul(parts) => {
                let is_add = matches!(e, Expr::Add(_));
                let mut acc: Option<Value<'t>> = None;
                for part in parts {
                    let v = self.eval(part)?;
                    if v.is_null() {
                        return Ok(Value::Null);
                    }
                    acc = Some(match acc {
                        None => numeric(v)?,
                        Some(a) => arith(a, v, is_add)?,
                    });
                }
                acc.unwrap_or(Value::Null)
            }
            Expr::Sub(a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                if a.is_null() || b.is_null() {
                    return Ok(Value::Null);
                }
                arith(numeric(a)?, money::negate(numeric(b)?)?, true)?
            }
            Expr::Div(a, b, scale, mode) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                if a.is_null() || b.is_null() {
                    return Ok(Value::Null);
                }
                let (a, b) = (convert::as_decimal(&a)?, convert::as_decimal(&b)?);
                match a.div(&b, *scale, *mode) {
                    None => return Err("division by zero".to_string().into()),
                    Some(Err(_)) => return Err("decimal out of range".to_string().into()),
                    Some(Ok(d)) => Value::Dec(d),
                }
            }
            Expr::Neg(a) => {
                let v = self.eval(a)?;
                if v.is_null() {
                    return Ok(v);
                }
                money::negate(numeric(v)?)?
            }
            Expr::Abs(a) => {
                let v = self.eval(a)?;
                if v.is_null() {
                    return Ok(v);
                }
                money::abs(numeric(v)?)?
            }
            Expr::Round(a, scale, mode) => {
                let v = self.eval(a)?;
                if v.is_null() {
                    return Ok(v);
                }
                convert::to_decimal(v, Some(*scale), *mode)?
            }
            Expr::Sum { each, value, filter } => {
                let mut acc = Value::Int(0);
                let items = self.items(each)?;
                let mut n = 0usize;
                for (chain, item) in items {
                    let _ = item;
                    let pushed = self.push_chain(chain.as_slice(), n, each.base);
                    let res = (|| -> Result<Option<Value<'t>>, Fail> {
                        if let Some(c) = filter {
                            if !self.test(c)? {
                                return Ok(None);
                            }
                        }
                        let v = self.eval(value)?;
                        Ok(if v.is_null() { None } else { Some(numeric(v)?) })
                    })();
                    self.pop(pushed);
                    if let Some(v) = res? {
                        acc = arith(acc, v, true)?;
                        n += 1;
                    }
                }
                acc
            }
            Expr::Count { each, filter } => {
                let items = self.items(each)?;
                let mut n = 0i64;
                for (chain, item) in items {
                    let _ = item;
                    let pushed = self.push_chain(chain.as_slice(), n as usize, each.base);
                    let ok = match filter {
                        Some(c) => self.test(c),
                        None => Ok(true),
                    };
                    self.pop(pushed);
                    if ok? {
                        n += 1;
                    }
                }
                Value::Int(n)
            }
            Expr::If(c, then, otherwise) => {
                if self.test(c)? {
                    self.eval(then)?
                } else {
                    match otherwise {
                        Some(o) => self.eval(o)?,
                        None => Value::Null,
                    }
                }
            }
            Expr::Pipe(steps, inner) => {
                let v = self.eval(inner)?;
                self.apply(steps, v)?
            }
        })
    }

    /// Push the scopes of one item (intermediate flattened levels, then the item); returns how many.
    fn push_chain(&mut self, chain: &[(&'t Value<'t>, usize, &'t str)], out_index: usize, base: Base) -> usize {
        let mut base = self.base_scope(base).unwrap_or(0);
        for (v, src, label) in chain {
            self.scopes.push(Scope { value: v, out_index: *src, src_index: *src, label, base });
            base = self.scopes.len() - 1;
        }
        if let Some(s) = self.scopes.last_mut() {
            s.out_index = out_index;
        }
        chain.len()
    }

    fn pop(&mut self, n: usize) {
        for _ in 0..n {
            self.scopes.pop();
        }
    }

    // ---- conditions -----------------------------------------------------------------------------------------

    fn test(&mut self, c: &'t Cond) -> Result<bool, Fail> {
        Ok(match c {
            Cond::All(cs) => {
                for c in cs {
                    if !self.test(c)? {
                        return Ok(false);
                    }
                }
                true
            }
            Cond::Any(cs) => {
                for c in cs {
                    if self.test(c)? {
                        return Ok(true);
                    }
                }
                false
            }
            Cond::Not(c) => !self.test(c)?,
            Cond::Cmp { subject, op, args, re } => {
                let v = self.eval(subject)?;
                if let Value::Null = v {
                    return Ok(match op {
                        CmpOp::Ne | CmpOp::NotIn => true,
                        CmpOp::Exists => matches!(args.first(), Some(Value::Bool(false))),
                        _ => false,
                    });
                }
                match op {
                    CmpOp::Exists => {
                        let present = !matches!(&v, Value::List(l) if l.is_empty());
                        present == matches!(args.first(), Some(Value::Bool(true)))
                    }
                    CmpOp::Eq => args.first().is_some_and(|a| values_equal(&v, a)),
                    CmpOp::Ne => !args.first().is_some_and(|a| values_equal(&v, a)),
                    CmpOp::In => args.iter().any(|a| values_equal(&v, a)),
                    CmpOp::NotIn => !args.iter().any(|a| values_equal(&v, a)),
                    CmpOp::Matches => match re {
                        Some(re) => pattern::is_match(&v, re)?,
                        None => false,
                    },
                    CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => {
                        let a = convert::as_decimal(&v).map_err(|_| match &v {
                            Value::Str(s) => format!("expected a number to compare, got {s:?}"),
                            other => format!("expected a number to compare, got {}", other.kind()),
                        })?;
                        let b = match args.first().map(|a| a.as_decimal()) {
                            Some(Some(Ok(b))) => b,
                            _ => return Err("comparison needs a number".to_string().into()),
                        };
                        let ord = a.cmp_value(&b);
                        match op {
                            CmpOp::Gt => ord.is_gt(),
                            CmpOp::Ge => ord.is_ge(),
                            CmpOp::Lt => ord.is_lt(),
                            _ => ord.is_le(),
                        }
                    }
                }
            }
        })
    }

    // ---- pipe -----------------------------------------------------------------------------------------------

    fn apply(&mut self, steps: &'t [Step], mut v: Value<'t>) -> Result<Value<'t>, Fail> {
        for step in steps {
            if v.is_null() {
                match step {
                    Step::Default(d) => {
                        v = view(d);
                        continue;
                    }
                    Step::Required => return Err("required value missing".to_string().into()),
                    _ => continue,
                }
            }
            v = match step {
                Step::String => convert::to_string(v)?,
                Step::Integer => convert::to_integer(v)?,
                Step::Decimal { scale, rounding } => convert::to_decimal(v, *scale, *rounding)?,
                Step::Number => convert::to_number(v)?,
                Step::Bool => convert::to_bool(v)?,
                Step::Date { from, to } => date::convert(v, *from, *to)?,
                Step::MinorUnits { exponent, currency, inverse } => {
                    let exp = match (exponent, currency) {
                        (Some(e), _) => *e,
                        (None, Some(p)) => match self.resolve(p)? {
                            Value::Str(code) => money::currency_exponent(&code)?,
                            Value::Null => {
                                return Err(Fail(Box::new(FailInner {
                                    message: "currency is missing".into(),
                                    path: Some(self.path_of(p)),
                                })))
                            }
                            other => return Err(format!("expected a currency code, got {}", other.kind()).into()),
                        },
                        (None, None) => 2,
                    };
                    if *inverse {
                        money::from_minor(v, exp)?
                    } else {
                        money::to_minor(v, exp)?
                    }
                }
                Step::Trim => text::trim(v)?,
                Step::Upper => text::upper(v)?,
                Step::Lower => text::lower(v)?,
                Step::Pad { width, fill, left } => text::pad(v, *width, *fill, *left)?,
                Step::MaxLength { length, truncate, label } => text::max_length(v, *length, *truncate, label)?,
                Step::Affix { text: t, prefix } => text::affix(v, t, *prefix)?,
                Step::Split { separator, index } => text::split(v, separator, *index)?,
                Step::Join { separator } => text::join(v, separator)?,
                Step::Replace { re, with } => pattern::replace(v, re, with)?,
                Step::Match { re, reject } => {
                    if pattern::is_match(&v, re)? {
                        v
                    } else if *reject {
                        let shown = crate::value::scalar_to_string(&v).unwrap_or_default();
                        return Err(format!("{shown:?} does not match {}", re.as_str()).into());
                    } else {
                        Value::Null
                    }
                }
                Step::Extract { re, group } => pattern::extract(v, re, *group)?,
                Step::Lookup { table, field, on_missing } => {
                    lookup::lookup(v, &self.prog.tables[*table], field.as_deref(), *on_missing)?
                }
                Step::Negate => money::negate(v)?,
                Step::Abs => money::abs(v)?,
                Step::Default(_) | Step::Required => v,
            };
        }
        Ok(v)
    }

    // ---- rules ----------------------------------------------------------------------------------------------

    fn fail(&self, rule: &str, value: &Expr, f: Fail) -> TranslateError {
        let FailInner { message, path } = *f.0;
        let path = path.unwrap_or_else(|| match value {
            Expr::Path(p) => self.path_of(p),
            Expr::Pipe(_, inner) => match inner.as_ref() {
                Expr::Path(p) => self.path_of(p),
                _ => self.here(),
            },
            _ => self.here(),
        });
        TranslateError { rule: rule.to_owned(), path, message }
    }

    fn input_path(&self, value: &Expr) -> String {
        match value {
            Expr::Path(p) => self.path_of(p),
            _ => String::new(),
        }
    }

    /// Value of a field rule, `None` when nothing should be written.
    fn field_value(&mut self, r: &'t FieldRule) -> Result<Option<Value<'t>>, TranslateError> {
        let expr = match &r.when {
            Some(c) => match self.test(c) {
                Ok(true) => &r.value,
                Ok(false) => match &r.otherwise {
                    Some(o) => o,
                    None => return Ok(None),
                },
                Err(f) => return Err(self.fail(&r.id, &r.value, f)),
            },
            None => &r.value,
        };
        let v = match self.eval(expr).and_then(|v| self.apply(&r.pipe, v)) {
            Ok(v) => v,
            Err(f) => return Err(self.fail(&r.id, expr, f)),
        };
        let v = match (v, &r.default) {
            (Value::Null, Some(d)) => view(d),
            (v, _) => v,
        };
        if v.is_null() {
            if r.required {
                return Err(self.fail(&r.id, expr, "required value missing".to_string().into()));
            }
            return Ok(if r.emit_null { Some(Value::Null) } else { None });
        }
        if self.explain.is_some() {
            let entry = ExplainEntry {
                output_path: self.out_path.concat(),
                rule: r.id.clone(),
                input_path: self.input_path(expr),
            };
            if let Some(ex) = self.explain.as_mut() {
                ex.push(entry);
            }
        }
        Ok(Some(v))
    }

    fn push_out(&mut self, key: &str, index: Option<usize>) {
        if self.explain.is_some() {
            let mut s = String::new();
            if !key.is_empty() {
                if !self.out_path.is_empty() {
                    s.push('.');
                }
                s.push_str(key);
            }
            if let Some(i) = index {
                s.push_str(&format!("[{i}]"));
            }
            self.out_path.push(s);
        }
    }

    fn pop_out(&mut self) {
        if self.explain.is_some() {
            self.out_path.pop();
        }
    }

    /// Run `f` once per item of an each rule that passes its filter, with the item scope pushed.
    fn for_each_item(
        &mut self,
        r: &'t EachRule,
        mut f: impl FnMut(&mut Self, usize) -> Result<bool, TranslateError>,
    ) -> Result<usize, TranslateError> {
        let items =
            self.items(&r.each).map_err(|m| TranslateError { rule: r.id.clone(), path: self.here(), message: m })?;
        let mut emitted = 0usize;
        for (chain, _item) in items {
            let pushed = self.push_chain(chain.as_slice(), emitted, r.each.base);
            let pass = match &r.filter {
                Some(c) => self.test(c).map_err(|f| self.fail(&r.id, &Expr::Const(Value::Null), f)),
                None => Ok(true),
            };
            let res = match pass {
                Ok(true) => {
                    // The innermost scope's position is its index in the output array.
                    if let Some(s) = self.scopes.last_mut() {
                        s.out_index = emitted;
                    }
                    f(self, emitted)
                }
                Ok(false) => Ok(false),
                Err(e) => Err(e),
            };
            self.pop(pushed);
            if res? {
                emitted += 1;
            }
        }
        if r.required && emitted == 0 {
            return Err(TranslateError {
                rule: r.id.clone(),
                path: self.path_of(&r.each),
                message: "required list is empty".into(),
            });
        }
        Ok(emitted)
    }

    // ---- JSON output ----------------------------------------------------------------------------------------

    fn write_members(&mut self, nodes: &'t [Node], out: &mut Vec<u8>) -> Result<bool, TranslateError> {
        let mut wrote = false;
        for n in nodes {
            let mark = out.len();
            if wrote {
                out.push(b',');
            }
            out.extend_from_slice(&n.key_json);
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

    fn write_node(&mut self, n: &'t Node, out: &mut Vec<u8>) -> Result<bool, TranslateError> {
        match &n.kind {
            NodeKind::Object(children) => {
                out.push(b'{');
                let wrote = self.write_members(children, out)?;
                out.push(b'}');
                Ok(wrote)
            }
            NodeKind::Field(r) => match self.field_value(r)? {
                Some(v) => {
                    json::write_value(out, &v).map_err(|m| TranslateError {
                        rule: r.id.clone(),
                        path: self.here(),
                        message: m,
                    })?;
                    Ok(true)
                }
                None => Ok(false),
            },
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

    // ---- protobuf output ------------------------------------------------------------------------------------

    fn encode_members(&mut self, nodes: &'t [Node], out: &mut Vec<u8>) -> Result<(), TranslateError> {
        for n in nodes {
            self.push_out(&n.key, None);
            let res = self.encode_node(n, out);
            self.pop_out();
            res?;
        }
        Ok(())
    }

    fn encode_node(&mut self, n: &'t Node, out: &mut Vec<u8>) -> Result<(), TranslateError> {
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

    fn input_path_or_here(&self, e: &Expr) -> String {
        match e {
            Expr::Path(p) => self.path_of(p),
            _ => self.here(),
        }
    }

    /// Encode one value into a field (or map entry). `in_list` keeps defaults (repeated elements always count).
    fn encode_value(&self, slot: &Slot, v: &Value<'_>, custom_date: bool, out: &mut Vec<u8>, in_list: bool) -> R<()> {
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

fn join_path(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}.{name}")
    }
}

fn step_into<'t>(v: &'t Value<'t>, seg: &Seg) -> Option<&'t Value<'t>> {
    match (v, seg) {
        (Value::Msg(slots), Seg::Slot(i, _)) => slots.get(*i),
        (Value::Map(_), Seg::Key(k)) | (Value::Map(_), Seg::Slot(_, k)) => v.get_key(k),
        (Value::List(items), Seg::Index(i)) => items.get(*i),
        _ => None,
    }
    .filter(|v| !v.is_null())
}

/// Deepest `[*]` flattening plus the item itself.
pub const MAX_LEVELS: usize = 4;

static ABSENT: Value<'static> = Value::Null;

/// The scopes one `each` item pushes (flattened levels, then the item), without heap allocation.
#[derive(Clone, Copy)]
struct Chain<'t> {
    len: usize,
    levels: [(&'t Value<'t>, usize, &'t str); MAX_LEVELS],
}

impl<'t> Chain<'t> {
    fn new() -> Self {
        Chain { len: 0, levels: [(&ABSENT, 0, ""); MAX_LEVELS] }
    }

    fn as_slice(&self) -> &[(&'t Value<'t>, usize, &'t str)] {
        &self.levels[..self.len]
    }
}

fn collect_items<'t>(
    start: &'t Value<'t>,
    segs: &'t [Seg],
    labels: &'t [String],
    chain: &mut Chain<'t>,
    out: &mut Vec<(Chain<'t>, &'t Value<'t>)>,
    text: &'t str,
) -> R<()> {
    // Split at the first [*]: walk the prefix, iterate, recurse into the rest.
    let split = segs.iter().position(|s| matches!(s, Seg::All));
    let (prefix, rest) = match split {
        Some(i) => (&segs[..i], &segs[i + 1..]),
        None => (segs, &segs[segs.len()..]),
    };
    let mut cur = start;
    for seg in prefix {
        match step_into(cur, seg) {
            Some(v) => cur = v,
            None => return Ok(()),
        }
    }
    let label = labels.first().map(String::as_str).unwrap_or("");
    let Value::List(items) = cur else {
        return Err(format!("{text} is not a list (got {})", cur.kind()));
    };
    if chain.len >= MAX_LEVELS {
        return Err(format!("{text} nests more than {} levels", MAX_LEVELS - 1));
    }
    for (i, item) in items.iter().enumerate() {
        chain.levels[chain.len] = (item, i, label);
        chain.len += 1;
        if split.is_some() {
            collect_items(item, rest, labels.get(1..).unwrap_or(&[]), chain, out, text)?;
        } else {
            out.push((*chain, item));
        }
        chain.len -= 1;
    }
    Ok(())
}

fn numeric(v: Value<'_>) -> R<Value<'_>> {
    match v {
        Value::Int(_) | Value::Dec(_) => Ok(v),
        Value::Num(d) => Ok(Value::Dec(d)),
        other => Ok(Value::Dec(convert::as_decimal(&other)?)),
    }
}

fn arith<'t>(a: Value<'t>, b: Value<'t>, add: bool) -> R<Value<'t>> {
    let b = numeric(b)?;
    if let (Value::Int(x), Value::Int(y)) = (&a, &b) {
        let r = if add { x.checked_add(*y) } else { x.checked_mul(*y) };
        return r.map(Value::Int).ok_or_else(|| "integer out of range".to_string());
    }
    let (x, y) = (convert::as_decimal(&a)?, convert::as_decimal(&b)?);
    let r = if add { x.add(&y) } else { x.mul(&y) };
    r.map(Value::Dec).map_err(|_| "decimal out of range".to_string())
}

/// `eq`/`in` semantics: strings exactly, numbers by value (numeric strings too), bools with bools.
pub fn values_equal(v: &Value<'_>, arg: &Value<'_>) -> bool {
    match (v, arg) {
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Str(a), Value::Str(b)) => a == b,
        (_, Value::Int(_) | Value::Dec(_) | Value::Num(_)) => match (v.as_decimal(), arg.as_decimal()) {
            (Some(Ok(a)), Some(Ok(b))) => a.cmp_value(&b).is_eq(),
            _ => false,
        },
        _ => false,
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
