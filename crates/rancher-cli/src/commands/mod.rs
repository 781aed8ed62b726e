//! One module per command group.

pub mod access;
pub mod api;
pub mod approvals;
pub mod audit_export;
pub mod backend;
pub mod completions;
pub mod connect;
pub mod grants;
pub mod install;
pub mod policies;
pub mod printer;
pub mod review_stream;
pub mod run;
pub mod serve;
pub mod sim;
pub mod workflows;
