//! rancher-api: see the crate README. (Scaffold; filled in by its issue.)
