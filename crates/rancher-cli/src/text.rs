//! Text written by a requester or a server, made safe to show: the helpers live in [`rancher_workflows::text`],
//! shared with the approvals service's web page, so the terminal and the page neutralise the same characters.

pub use rancher_workflows::text::*;
