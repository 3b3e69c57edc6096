//! Errors: spec compilation problems (rule + reason) and translation failures (rule + document path).

use std::fmt;

/// A spec failed to compile. `rule` is empty for spec-level problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub rule: String,
    pub message: String,
}

impl SpecError {
    pub fn new(rule: &str, message: impl Into<String>) -> Self {
        SpecError { rule: rule.to_owned(), message: message.into() }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rule.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "rule {:?}: {}", self.rule, self.message)
        }
    }
}

impl std::error::Error for SpecError {}

/// A document failed to translate: which rule, where in the input document, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    pub rule: String,
    pub path: String,
    pub message: String,
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for TranslateError {}
