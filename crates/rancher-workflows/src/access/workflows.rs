//! The access-control workflows of the catalog as [`Workflow`]s: one object per flow, mapped to its id once by the
//! [`crate::Registry`].

use async_trait::async_trait;

use super::flows::{self, AccessFlow};
use crate::catalog::WorkflowDef;
use crate::error::Result;
use crate::exec::{input, Exec};
use crate::session::Session;
use crate::workflow::{Inputs, Pinned, Report, Workflow};

/// An access-control workflow.
#[derive(Debug, Clone, Copy)]
pub struct AccessControl(pub AccessFlow);

#[async_trait]
impl Workflow for AccessControl {
    fn def(&self) -> &'static WorkflowDef {
        self.0.def()
    }

    async fn prepare(&self, session: &Session, inputs: Inputs) -> Result<Pinned> {
        let inputs = Inputs::from(flows::prepare(session, self.0, inputs.into_value()).await?);
        let targets = match self.0 {
            AccessFlow::Allow | AccessFlow::Disallow => input(self.def(), &inputs, "identities")?
                .map(crate::targets::identity_targets)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(Pinned { inputs, targets })
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: &Inputs) -> Result<Report> {
        let (summary, result, table) = flows::run(exec, self.0, inputs).await?;
        Ok(Report {
            summary,
            result,
            table,
            grant: None,
        })
    }

    async fn applied(&self, session: &Session, inputs: &Inputs) -> Result<Option<bool>> {
        flows::applied(session, self.0, inputs).await
    }

    fn dry_run_unprepared(&self) -> bool {
        // Filing it holds inline secrets in memory for the request, which a dry run must not do; its run checks
        // the same things itself.
        self.0 == AccessFlow::Enable
    }
}
