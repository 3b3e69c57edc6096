//! The compiled program: output tree of rules, expressions and conditions; `translate` runs it.

use std::sync::atomic::{AtomicUsize, Ordering};

use regex_lite::Regex;

use crate::decimal::Rounding;
use crate::error::TranslateError;
use crate::exec::{Run, Scope};
use crate::json;
use crate::ops::lookup::Table;
use crate::ops::Step;
use crate::proto::{FieldType, Schema, Special};
use crate::value::Value;

pub use crate::exec::{values_equal, MAX_LEVELS};

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
    /// A current-scope path or a constant through the pipe, no condition, default or emit_null. JSON output
    /// writes it without the general expression machinery (the same bytes as the general path).
    pub plain: bool,
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
    /// `,"key":` already escaped, written as is (JSON output); the first member of an object skips the comma.
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
    /// Size of the last output: the next output buffer starts a quarter above it, so a typical document is
    /// written without regrowing (and copying) the buffer. Only a capacity hint: any value is correct.
    pub out_hint: AtomicUsize,
}

/// One output field and the rule and input path that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainEntry {
    pub output_path: String,
    pub rule: String,
    pub input_path: String,
}

impl Program {
    /// Translate one document. Outbound: protobuf in, JSON out. Inbound: JSON in, protobuf out.
    pub fn translate(&self, input: &[u8]) -> Result<Vec<u8>, TranslateError> {
        self.run(input, false).map(|(out, _)| out)
    }

    /// Translate many documents, splitting large batches over the available cores (results keep input order).
    pub fn translate_many(&self, inputs: &[&[u8]]) -> Vec<Result<Vec<u8>, TranslateError>> {
        // Below this, thread start-up costs more than it saves.
        const PER_THREAD: usize = 64;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let threads = cores.min(inputs.len() / PER_THREAD).max(1);
        if threads == 1 {
            return inputs.iter().map(|d| self.translate(d)).collect();
        }
        let chunk = inputs.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = inputs
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(|d| self.translate(d)).collect::<Vec<_>>()))
                .collect();
            // A translation never panics; if a thread did, fall back to translating its part here.
            handles
                .into_iter()
                .zip(inputs.chunks(chunk))
                .flat_map(|(h, part)| h.join().unwrap_or_else(|_| part.iter().map(|d| self.translate(d)).collect()))
                .collect()
        })
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
        let hint = self.out_hint.load(Ordering::Relaxed);
        let mut out = Vec::with_capacity((hint + hint / 4).clamp(1024, 1 << 20));
        if self.direction == Direction::Outbound {
            out.push(b'{');
            run.write_members(&self.root, &mut out)?;
            out.push(b'}');
        } else {
            run.encode_members(&self.root, &mut out)?;
        }
        self.out_hint.store(out.len(), Ordering::Relaxed);
        Ok((out, run.explain.unwrap_or_default()))
    }
}
