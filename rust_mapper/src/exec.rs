//! Running a program: scopes and paths, expressions, conditions, pipe steps, field and list rules.

use std::borrow::Cow;

use crate::error::TranslateError;
use crate::ops::{convert, date, lookup, money, pattern, text, Step};
use crate::program::{Base, CPath, CmpOp, Cond, EachRule, ExplainEntry, Expr, FieldRule, Marker, Program, Seg, TPart};
use crate::value::{view, Value};

pub(crate) struct Scope<'t> {
    pub(crate) value: &'t Value<'t>,
    pub(crate) out_index: usize,
    pub(crate) src_index: usize,
    pub(crate) label: &'t str,
    pub(crate) base: usize,
}

pub(crate) type R<T> = Result<T, String>;

/// Error before the rule is known: message plus an optional path override. Boxed so `Result<Value, Fail>`
/// stays small on the hot path.
pub(crate) struct Fail(pub(crate) Box<FailInner>);

pub(crate) struct FailInner {
    pub(crate) message: String,
    pub(crate) path: Option<String>,
}

impl From<String> for Fail {
    fn from(message: String) -> Self {
        Fail(Box::new(FailInner { message, path: None }))
    }
}

pub(crate) struct Run<'t> {
    pub(crate) prog: &'t Program,
    pub(crate) scopes: Vec<Scope<'t>>,
    pub(crate) explain: Option<Vec<ExplainEntry>>,
    pub(crate) out_path: Vec<String>,
}

impl<'t> Run<'t> {
    // ---- paths ----------------------------------------------------------------------------------------------

    pub(crate) fn base_scope(&self, base: Base) -> R<usize> {
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

    pub(crate) fn resolve(&self, p: &'t CPath) -> R<Value<'t>> {
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

    pub(crate) fn scope_path(&self, i: usize) -> String {
        if i == 0 {
            return String::new();
        }
        let s = &self.scopes[i];
        let parent = self.scope_path(s.base);
        if s.label.is_empty() {
            // An `each: "@"` scope is the same document node as its parent.
            return parent;
        }
        let sep = if parent.is_empty() { "" } else { "." };
        format!("{parent}{sep}{}[{}]", s.label, s.src_index)
    }

    /// A fixed exponent, the ISO 4217 exponent of the currency at `currency`, else 2.
    fn minor_exponent(&self, exponent: Option<u32>, currency: Option<&'t CPath>) -> Result<u32, Fail> {
        Ok(match (exponent, currency) {
            (Some(e), _) => e,
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
        })
    }

    pub(crate) fn path_of(&self, p: &CPath) -> String {
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

    pub(crate) fn here(&self) -> String {
        self.scope_path(self.scopes.len() - 1)
    }

    /// Items of an `each` path with the intermediate scopes of flattened (`[*]`) levels.
    pub(crate) fn items(&self, p: &'t CPath) -> R<Vec<(Chain<'t>, &'t Value<'t>)>> {
        let si = self.base_scope(p.base)?;
        let start: &'t Value<'t> = self.scopes[si].value;
        let mut out = Vec::new();
        if p.marker == Marker::Item {
            if !start.is_null() {
                let mut chain = Chain::new();
                chain.levels[0] = (start, 0, "");
                chain.len = 1;
                out.push((chain, start));
            }
            return Ok(out);
        }
        collect_items(start, &p.segs, &p.labels, &mut Chain::new(), &mut out, &p.text)?;
        Ok(out)
    }

    // ---- expressions ----------------------------------------------------------------------------------------

    pub(crate) fn eval(&mut self, e: &'t Expr) -> Result<Value<'t>, Fail> {
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
    pub(crate) fn push_chain(
        &mut self,
        chain: &[(&'t Value<'t>, usize, &'t str)],
        out_index: usize,
        base: Base,
    ) -> usize {
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

    pub(crate) fn pop(&mut self, n: usize) {
        for _ in 0..n {
            self.scopes.pop();
        }
    }

    // ---- conditions -----------------------------------------------------------------------------------------

    pub(crate) fn test(&mut self, c: &'t Cond) -> Result<bool, Fail> {
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

    pub(crate) fn apply(&mut self, steps: &'t [Step], mut v: Value<'t>) -> Result<Value<'t>, Fail> {
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
                    let exp = self.minor_exponent(*exponent, currency.as_ref())?;
                    if *inverse {
                        money::from_minor(v, exp)?
                    } else {
                        money::to_minor(v, exp)?
                    }
                }
                Step::RoundMinor { exponent, currency, rounding } => {
                    let exp = self.minor_exponent(*exponent, currency.as_ref())?;
                    money::round_minor(v, exp, *rounding)?
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

    pub(crate) fn fail(&self, rule: &str, value: &Expr, f: Fail) -> TranslateError {
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

    pub(crate) fn input_path(&self, value: &Expr) -> String {
        match value {
            Expr::Path(p) => self.path_of(p),
            _ => String::new(),
        }
    }

    /// Value of a field rule, `None` when nothing should be written.
    pub(crate) fn field_value(&mut self, r: &'t FieldRule) -> Result<Option<Value<'t>>, TranslateError> {
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

    #[inline]
    pub(crate) fn push_out(&mut self, key: &str, index: Option<usize>) {
        if self.explain.is_some() {
            self.push_out_slow(key, index);
        }
    }

    #[cold]
    fn push_out_slow(&mut self, key: &str, index: Option<usize>) {
        {
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

    #[inline]
    pub(crate) fn pop_out(&mut self) {
        if self.explain.is_some() {
            self.out_path.pop();
        }
    }

    /// The list a `[*]`-free each path names (empty when absent), as `collect_items` would iterate it.
    fn plain_list(&self, p: &'t CPath) -> R<&'t [Value<'t>]> {
        let si = self.base_scope(p.base)?;
        let mut cur: &'t Value<'t> = self.scopes[si].value;
        for seg in &p.segs {
            match step_into(cur, seg) {
                Some(v) => cur = v,
                None => return Ok(&[]),
            }
        }
        match cur {
            Value::List(items) => Ok(items),
            _ => Err(format!("{} is not a list (got {})", p.text, cur.kind())),
        }
    }

    /// One item of an each rule: push its scopes, apply the filter, run `f`; `Ok(true)` when it was emitted.
    fn each_item(
        &mut self,
        r: &'t EachRule,
        chain: &[(&'t Value<'t>, usize, &'t str)],
        emitted: usize,
        f: &mut impl FnMut(&mut Self, usize) -> Result<bool, TranslateError>,
    ) -> Result<bool, TranslateError> {
        let pushed = self.push_chain(chain, emitted, r.each.base);
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
        res
    }

    /// Run `f` once per item of an each rule that passes its filter, with the item scope pushed.
    pub(crate) fn for_each_item(
        &mut self,
        r: &'t EachRule,
        mut f: impl FnMut(&mut Self, usize) -> Result<bool, TranslateError>,
    ) -> Result<usize, TranslateError> {
        let mut emitted = 0usize;
        let each = &r.each;
        if each.marker == Marker::None && !each.segs.iter().any(|s| matches!(s, Seg::All)) {
            // A plain list path (no `[*]` flattening): iterate the list in place, one scope per item.
            let list = self.plain_list(each).map_err(|m| TranslateError {
                rule: r.id.clone(),
                path: self.here(),
                message: m,
            })?;
            let label = each.labels.first().map(String::as_str).unwrap_or("");
            for (i, item) in list.iter().enumerate() {
                if self.each_item(r, &[(item, i, label)], emitted, &mut f)? {
                    emitted += 1;
                }
            }
        } else {
            let items =
                self.items(each).map_err(|m| TranslateError { rule: r.id.clone(), path: self.here(), message: m })?;
            for (chain, _item) in items {
                if self.each_item(r, chain.as_slice(), emitted, &mut f)? {
                    emitted += 1;
                }
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
}

pub(crate) fn join_path(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}.{name}")
    }
}

pub(crate) fn step_into<'t>(v: &'t Value<'t>, seg: &Seg) -> Option<&'t Value<'t>> {
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
pub(crate) struct Chain<'t> {
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

pub(crate) fn numeric(v: Value<'_>) -> R<Value<'_>> {
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
