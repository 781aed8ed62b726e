//! Maintainer tasks behind `cargo xtask`: code generation from the endpoint list and the benchmarks.
pub mod codegen;
