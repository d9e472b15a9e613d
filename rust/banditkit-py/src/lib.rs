//! PyO3 bindings for banditkit-core. This crate only converts types, releases the GIL around
//! kernels and maps [`banditkit_core::BanditError`] to `ValueError`; the maths lives in the core.
use pyo3::prelude::*;

mod arms;
mod contextual;
mod convert;
mod ensemble;
mod exact;
mod kernels;
mod learners;
mod linear;
mod locked;
mod logistic;
mod ope;
mod persist;
mod tspar;
mod winprop;

#[pymodule]
fn _banditkit_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    contextual::register(m)?;
    ensemble::register(m)?;
    exact::register(m)?;
    kernels::register(m)?;
    m.add_class::<learners::doubly_robust::DoublyRobust>()?;
    learners::offset_tree::register(m)?;
    learners::context_tree::register(m)?;
    linear::register(m)?;
    logistic::register(m)?;
    ope::register(m)?;
    tspar::register(m)?;
    m.add_function(wrap_pyfunction!(persist::_format_reencode, m)?)?;
    Ok(())
}
