//! placeholder
pub async fn run(_c: &crate::context::Context) -> anyhow::Result<crate::error::Exit> { Ok(crate::error::Exit::Done) }
