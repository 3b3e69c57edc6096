//! Pipe steps, one file per kind of transform; `Step` is the compiled form of one spec step.

pub mod convert;
pub mod date;
pub mod lookup;
pub mod money;
pub mod pattern;
pub mod text;

use regex_lite::Regex;

use crate::decimal::Rounding;
use crate::program::CPath;
use crate::value::Value;

/// One compiled pipe step.
#[derive(Debug)]
pub enum Step {
    String,
    Integer,
    Decimal { scale: Option<u32>, rounding: Rounding },
    Number,
    Bool,
    Date { from: date::Format, to: date::Format },
    MinorUnits { exponent: Option<u32>, currency: Option<CPath>, inverse: bool },
    RoundMinor { exponent: Option<u32>, currency: Option<CPath>, rounding: Rounding },
    Trim,
    Upper,
    Lower,
    Pad { width: usize, fill: char, left: bool },
    MaxLength { length: usize, truncate: bool, label: String },
    Affix { text: String, prefix: bool },
    Split { separator: String, index: Option<usize> },
    Join { separator: String },
    Replace { re: Regex, with: String },
    Match { re: Regex, reject: bool },
    Extract { re: Regex, group: usize },
    Lookup { table: usize, field: Option<String>, on_missing: lookup::OnMissing },
    Negate,
    Abs,
    Default(Value<'static>),
    Required,
}
