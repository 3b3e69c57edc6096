//! The only PyO3 code: a thin layer over the pure-Rust core.

use pyo3::prelude::*;

#[pymodule]
fn _mapper(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("build_profile", crate::BUILD_PROFILE)?;
    Ok(())
}
