//! Declarative mapping engine: canonical protobuf <-> ERP JSON, compiled once from a normalized spec.
//!
//! Generic by design: no ERP names here. ERP knowledge lives in the YAML mapping packs.

pub mod decimal;
pub mod error;
mod exec;
pub mod json;
pub mod ops;
pub mod program;
pub mod proto;
pub mod spec;
pub mod value;
mod write;

#[cfg(feature = "python")]
mod python;

pub use error::{SpecError, TranslateError};
pub use program::{ExplainEntry, Program};
pub use proto::DynamicTypes;

/// Build profile, exported so benchmarks can refuse a debug build.
pub const BUILD_PROFILE: &str = if cfg!(debug_assertions) { "debug" } else { "release" };

/// Compile a normalized spec (JSON) against a serialized `FileDescriptorSet`; ``dynamic`` names the host API's
/// dynamic-value messages (see [`DynamicTypes`]).
pub fn compile(spec_json: &[u8], descriptors: &[u8], dynamic: &DynamicTypes) -> Result<Program, SpecError> {
    spec::compile(spec_json, descriptors, dynamic)
}
