//! The access-control workflows of the catalog as [`Workflow`]s: one object per flow, mapped to its id once by the
//! [`crate::Registry`].

use async_trait::async_trait;

use super::flows::{self, AccessFlow};
use super::inputs::{EnableInputs, FlowInputs, NoInputs};
use crate::catalog::WorkflowDef;
use crate::error::Result;
use crate::exec::Exec;
use crate::session::Session;
use crate::workflow::{Inputs, Pinned, Report, Workflow};

impl FlowInputs {
    /// Parses `raw` as the inputs of `flow`, with the runner's words for bad input.
    pub(crate) fn parse(flow: AccessFlow, raw: &Inputs) -> Result<FlowInputs> {
        let def = flow.def();
        Ok(match flow {
            AccessFlow::Status => {
                raw.parse::<NoInputs>(def)?;
                FlowInputs::Status
            }
            AccessFlow::Enable => FlowInputs::Enable(Box::new(EnableInputs::parse(raw)?)),
            AccessFlow::Allow | AccessFlow::Disallow => FlowInputs::ChangeAllowed(raw.parse(def)?),
            AccessFlow::Disable => FlowInputs::Disable(raw.parse(def)?),
            AccessFlow::SwitchPlan => FlowInputs::SwitchPlan(raw.parse(def)?),
            AccessFlow::Search => FlowInputs::Search(raw.parse(def)?),
        })
    }
}

/// An access-control workflow.
#[derive(Debug, Clone, Copy)]
pub struct AccessControl(pub AccessFlow);

#[async_trait]
impl Workflow for AccessControl {
    fn def(&self) -> &'static WorkflowDef {
        self.0.def()
    }

    async fn prepare(&self, session: &Session, inputs: Inputs) -> Result<Pinned> {
        let inputs = flows::prepare(session, self.0, inputs).await?;
        let targets = match FlowInputs::parse(self.0, &inputs)? {
            FlowInputs::ChangeAllowed(i) => i
                .identities
                .as_deref()
                .map(crate::targets::identity_targets)
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(Pinned { inputs, targets })
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: &Inputs) -> Result<Report> {
        let parsed = FlowInputs::parse(self.0, inputs)?;
        let (summary, result, table) = flows::run(exec, self.0, &parsed, inputs).await?;
        Ok(Report {
            summary,
            result,
            table,
            grant: None,
        })
    }

    async fn applied(&self, session: &Session, inputs: &Inputs) -> Result<Option<bool>> {
        flows::applied(session, self.0, &FlowInputs::parse(self.0, inputs)?).await
    }

    fn parses(&self, inputs: &Inputs) -> Result<()> {
        FlowInputs::parse(self.0, inputs).map(drop)
    }

    fn dry_run_unprepared(&self) -> bool {
        // Filing it holds inline secrets in memory for the request, which a dry run must not do; its run checks
        // the same things itself.
        self.0 == AccessFlow::Enable
    }
}
