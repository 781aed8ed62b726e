//! rancher-bench: the measurements behind `cargo xtask bench` (internal, not published).
