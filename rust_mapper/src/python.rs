//! The only PyO3 code: a thin layer over the pure-Rust core. Bytes in, bytes out.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::program::{Direction, Program};

create_exception!(_mapper, SpecCompileError, PyValueError, "A spec failed to compile: args (rule, message).");
create_exception!(
    _mapper,
    TranslateFailure,
    PyValueError,
    "A document failed to translate: args (rule, path, message)."
);

/// (output_path, rule, input_path) as Python sees an explain entry.
type ExplainRow = (String, String, String);

/// One compiled mapping spec. Immutable and thread-safe.
#[pyclass(frozen, module = "returnbridge._mapper")]
struct Mapper {
    prog: Program,
}

fn failure(e: crate::TranslateError) -> PyErr {
    TranslateFailure::new_err((e.rule, e.path, e.message))
}

#[pymethods]
impl Mapper {
    #[new]
    fn new(
        py: Python<'_>,
        spec_json: &[u8],
        descriptors: &[u8],
        dynamic_types: (String, String, String),
    ) -> PyResult<Self> {
        let (value, list, map) = dynamic_types;
        let dynamic = crate::DynamicTypes::new(value, list, map);
        let prog = py
            .detach(|| crate::compile(spec_json, descriptors, &dynamic))
            .map_err(|e| SpecCompileError::new_err((e.rule, e.message)))?;
        Ok(Mapper { prog })
    }

    #[getter]
    fn id(&self) -> &str {
        &self.prog.id
    }

    #[getter]
    fn direction(&self) -> &'static str {
        match self.prog.direction {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }

    /// Full name of the output message ("" for JSON output).
    #[getter]
    fn output_message(&self) -> &str {
        if self.prog.direction == Direction::Inbound {
            &self.prog.output_name
        } else {
            ""
        }
    }

    fn translate<'py>(&self, py: Python<'py>, document: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.prog.translate(document).map_err(failure)?;
        Ok(PyBytes::new(py, &out))
    }

    /// Translate many documents in one call with the GIL released (large batches use all cores). Each result is
    /// the output bytes or a `(rule, path, message)` tuple.
    fn translate_batch<'py>(
        &self,
        py: Python<'py>,
        documents: Vec<Bound<'py, PyBytes>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let inputs: Vec<&[u8]> = documents.iter().map(|d| d.as_bytes()).collect();
        let prog = &self.prog;
        let results = py.detach(|| prog.translate_many(&inputs));
        let list = PyList::empty(py);
        for r in results {
            match r {
                Ok(out) => list.append(PyBytes::new(py, &out))?,
                Err(e) => list.append((e.rule, e.path, e.message))?,
            }
        }
        Ok(list)
    }

    /// Translate and report (output_path, rule, input_path) for every written field.
    fn explain<'py>(&self, py: Python<'py>, document: &[u8]) -> PyResult<(Bound<'py, PyBytes>, Vec<ExplainRow>)> {
        let (out, entries) = self.prog.explain(document).map_err(failure)?;
        Ok((PyBytes::new(py, &out), entries.into_iter().map(|e| (e.output_path, e.rule, e.input_path)).collect()))
    }
}

#[pymodule]
fn _mapper(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("build_profile", crate::BUILD_PROFILE)?;
    m.add_class::<Mapper>()?;
    m.add("SpecCompileError", m.py().get_type::<SpecCompileError>())?;
    m.add("TranslateFailure", m.py().get_type::<TranslateFailure>())?;
    Ok(())
}
