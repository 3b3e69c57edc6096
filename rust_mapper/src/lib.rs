//! Declarative mapping engine (placeholder until the mapper issue lands).

#[cfg(feature = "python")]
mod python;

/// Build profile, exported so benchmarks can refuse a debug build.
pub const BUILD_PROFILE: &str = if cfg!(debug_assertions) { "debug" } else { "release" };
