//! What a workflow is: the [`Workflow`] trait the runner drives, the [`Inputs`] it is given, the [`Report`] it
//! answers, and [`TypedWorkflow`], the same contract over a typed input struct that is parsed once, at the
//! boundary, by the [`Typed`] adapter.
//!
//! This module sits just above the executor ([`crate::exec`]); the workflows themselves sit above it, and the
//! [`crate::Registry`] that maps ids to them sits on top.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{InputKind, ListKind, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::{Exec, RunOutput, Table};
use crate::session::Session;

/// A run's inputs as JSON: what a person gave (`--input name=value`), and what an approval request stores. The
/// stored form is the contract with requests filed before an upgrade, so it stays JSON; a built-in workflow
/// parses it into its own input struct once (see [`Inputs::parse`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Inputs(Value);

impl Inputs {
    /// The inputs as JSON.
    pub fn into_value(self) -> Value {
        self.0
    }

    /// The inputs as JSON, borrowed.
    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// Parses the inputs of `def` into `T`. Text inputs are trimmed and an empty one counts as absent; a text
    /// input given as something else, and a required field that is absent, are refused with the same words the
    /// runner has always used (`must be text, got 5`, `is required (e.g. --input user=...)`).
    pub fn parse<T: DeserializeOwned>(&self, def: &WorkflowDef) -> Result<T> {
        let mut normal = serde_json::Map::new();
        if let Some(given) = self.0.as_object() {
            for (name, value) in given {
                let text = def.inputs.iter().any(|i| i.name == name && i.kind == InputKind::String);
                if !text {
                    if !value.is_null() {
                        normal.insert(name.clone(), value.clone());
                    }
                    continue;
                }
                match value {
                    Value::Null => {}
                    Value::String(s) if s.trim().is_empty() => {}
                    Value::String(s) => {
                        normal.insert(name.clone(), Value::String(s.trim().to_string()));
                    }
                    other => {
                        return Err(Error::Input {
                            workflow: def.id.into(),
                            input: name.clone(),
                            message: format!("must be text, got {other}"),
                        })
                    }
                }
            }
        }
        serde_json::from_value(Value::Object(normal)).map_err(|e| {
            let said = e.to_string();
            match said
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
            {
                Some((name, _)) => Error::Input {
                    workflow: def.id.into(),
                    input: name.into(),
                    message: format!("is required (e.g. --input {name}=...)"),
                },
                None => Error::Input {
                    workflow: def.id.into(),
                    input: "*".into(),
                    message: said,
                },
            }
        })
    }
}

impl From<Value> for Inputs {
    fn from(v: Value) -> Self {
        Inputs(v)
    }
}

impl From<&Value> for Inputs {
    fn from(v: &Value) -> Self {
        Inputs(v.clone())
    }
}

impl From<Inputs> for Value {
    fn from(i: Inputs) -> Self {
        i.0
    }
}

impl std::ops::Deref for Inputs {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

impl std::ops::DerefMut for Inputs {
    fn deref_mut(&mut self) -> &mut Value {
        &mut self.0
    }
}

/// Builds a run's inputs from `key=value` pairs (values that parse as JSON objects stay objects).
pub fn inputs_from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Inputs {
    let mut m = serde_json::Map::new();
    for (k, v) in pairs {
        let value = if v.trim_start().starts_with('{') {
            serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into()))
        } else {
            Value::String(v.into())
        };
        m.insert(k.into(), value);
    }
    Value::Object(m).into()
}

/// Checks that only known inputs are given.
pub fn check_inputs(def: &WorkflowDef, inputs: &Inputs) -> Result<()> {
    let Some(map) = inputs.as_object() else {
        return Err(Error::Input {
            workflow: def.id.into(),
            input: "*".into(),
            message: "inputs must be a JSON object".into(),
        });
    };
    for key in map.keys() {
        if !def.inputs.iter().any(|i| i.name == key) {
            // Inputs the runner sets itself are not offered to people.
            let known: Vec<&str> = def.inputs.iter().filter(|i| !i.is_internal()).map(|i| i.name).collect();
            let hint = rancher_api::spec::closest(key, known.iter().copied())
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            return Err(Error::Input {
                workflow: def.id.into(),
                input: key.clone(),
                message: if known.is_empty() {
                    "this workflow takes no inputs".into()
                } else {
                    format!("unknown input; {hint}this workflow takes {}", known.join(", "))
                },
            });
        }
    }
    Ok(())
}

/// A request's inputs with names replaced by the ids they mean now, and its targets as `(id, label)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pinned {
    /// The inputs to store and execute.
    pub inputs: Inputs,
    /// Principal ids the request acts on, with what people call them.
    pub targets: Vec<(String, String)>,
}

/// What one run of a workflow produced, before the runner adds the id, the dry-run flag and the planned writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One line for people.
    pub summary: String,
    /// The result as JSON (for lists, the array of resources as the server sent them).
    pub result: Value,
    /// A table for people, when the result is a list.
    pub table: Option<Table>,
    /// A time-bound grant this run made or extended; the runner records it with the outcome.
    pub grant: Option<rancher_approval::GrantChange>,
}

impl Report {
    /// A report without a table.
    pub fn new(summary: impl Into<String>, result: Value) -> Self {
        Report {
            summary: summary.into(),
            result,
            table: None,
            grant: None,
        }
    }

    /// Adds the time-bound grant this run made or extended.
    pub fn with_grant(mut self, grant: Option<rancher_approval::GrantChange>) -> Self {
        self.grant = grant;
        self
    }

    /// Adds a table for people.
    pub fn with_table(mut self, table: Table) -> Self {
        self.table = Some(table);
        self
    }
}

/// A workflow the runner can install, submit, approve, execute once and reconcile.
///
/// Only [`Workflow::def`] and [`Workflow::run`] are required. A workflow that writes should also implement
/// [`Workflow::prepare`] (check the inputs against the server and pin names to ids at submit, so approvers review
/// what will run) and [`Workflow::applied`] (after a crash, tell from the server whether the change is there, so
/// it is completed exactly once instead of being failed as unknown). A workflow with an input struct implements
/// [`TypedWorkflow`] instead and is registered through [`Typed`].
#[async_trait]
pub trait Workflow: Send + Sync + 'static {
    /// Id, title, inputs, output and default approval.
    fn def(&self) -> &'static WorkflowDef;

    /// Checks the inputs beyond their declared kinds, without the server (the runner has already checked names,
    /// kinds and required inputs). Runs before anything else at submit, dry runs included. Default: nothing more.
    fn check(&self, inputs: &Inputs) -> Result<()> {
        let _ = inputs;
        Ok(())
    }

    /// At submit of a run that will be stored (every write): checks the inputs against the server and returns
    /// the inputs to store, with names replaced by the ids they mean now, and the principals the run acts on (who
    /// then may not approve it). The default stores the inputs as given, with no targets.
    async fn prepare(&self, session: &Session, inputs: Inputs) -> Result<Pinned> {
        let _ = session;
        Ok(Pinned {
            inputs,
            targets: Vec::new(),
        })
    }

    /// Does the work. Writes go through [`Exec::write`] (or the typed helpers), so a dry run records them instead
    /// of sending them.
    async fn run(&self, exec: &mut Exec<'_>, inputs: &Inputs) -> Result<Report>;

    /// After a crash between the claim and the recorded outcome: `Some(true)` when the server shows the change,
    /// `Some(false)` when it does not (it then runs once now), `None` when it cannot tell (the run is failed with
    /// the outcome unknown). The default cannot tell.
    async fn applied(&self, session: &Session, inputs: &Inputs) -> Result<Option<bool>> {
        let _ = (session, inputs);
        Ok(None)
    }

    /// Paths of secret values in `inputs` (a request holding one is never filed for approval).
    fn secret_fields(&self, inputs: &Inputs) -> Vec<String> {
        let _ = inputs;
        Vec::new()
    }

    /// Parses `inputs` the way the workflow reads them (into its input struct), running nothing: a request stored
    /// by any earlier version must still parse. Default (a workflow that reads its JSON itself): nothing to parse.
    fn parses(&self, inputs: &Inputs) -> Result<()> {
        let _ = inputs;
        Ok(())
    }

    /// True when this run cannot write (it then runs at once, without a stored request).
    fn reads_only(&self, inputs: &Inputs) -> bool {
        let _ = inputs;
        !self.def().writes
    }

    /// True when a dry run of a write must run at once on the inputs as given, without [`Workflow::prepare`]
    /// (for a workflow whose prepare holds something that only a filed request may hold). Default: false.
    fn dry_run_unprepared(&self) -> bool {
        false
    }

    /// The list this workflow streams item by item, when it is one of the built-in lists.
    fn list(&self) -> Option<ListKind> {
        None
    }

    /// True when the result of a run that writes nothing is a report meant to be printed as the whole document
    /// (`-o json` prints the report itself, not the run's wrapper around it). A list's items print bare anyway.
    /// Default: false.
    fn report_document(&self) -> bool {
        false
    }
}

/// A workflow whose inputs are a struct: the same contract as [`Workflow`], with the JSON parsed once, at the
/// boundary, by [`Typed`]. Stored requests keep their JSON; it is parsed again, the same way, when they run.
#[async_trait]
pub trait TypedWorkflow: Send + Sync + 'static {
    /// The parsed inputs.
    type Inputs: DeserializeOwned + Send + Sync;

    /// Id, title, inputs, output and default approval.
    fn def(&self) -> &'static WorkflowDef;

    /// See [`Workflow::check`].
    fn check(&self, inputs: &Self::Inputs) -> Result<()> {
        let _ = inputs;
        Ok(())
    }

    /// See [`Workflow::prepare`]; `raw` is the JSON that `inputs` was parsed from, which the returned
    /// [`Pinned`] usually extends.
    async fn prepare(&self, session: &Session, inputs: Self::Inputs, raw: Inputs) -> Result<Pinned> {
        let _ = (session, inputs);
        Ok(Pinned {
            inputs: raw,
            targets: Vec::new(),
        })
    }

    /// See [`Workflow::run`].
    async fn run(&self, exec: &mut Exec<'_>, inputs: Self::Inputs, raw: &Inputs) -> Result<Report>;

    /// See [`Workflow::applied`].
    async fn applied(&self, session: &Session, inputs: Self::Inputs, raw: &Inputs) -> Result<Option<bool>> {
        let _ = (session, inputs, raw);
        Ok(None)
    }

    /// See [`Workflow::secret_fields`].
    fn secret_fields(&self, inputs: &Self::Inputs) -> Vec<String> {
        let _ = inputs;
        Vec::new()
    }

    /// See [`Workflow::reads_only`].
    fn reads_only(&self, inputs: &Self::Inputs) -> bool {
        let _ = inputs;
        !self.def().writes
    }

    /// See [`Workflow::report_document`].
    fn report_document(&self) -> bool {
        false
    }
}

/// The object-safe [`Workflow`] over a [`TypedWorkflow`]: parses the JSON inputs once per call into the
/// workflow's struct, with the runner's words for bad input.
pub struct Typed<W>(pub W);

#[async_trait]
impl<W: TypedWorkflow> Workflow for Typed<W> {
    fn def(&self) -> &'static WorkflowDef {
        self.0.def()
    }

    fn check(&self, inputs: &Inputs) -> Result<()> {
        self.0.check(&inputs.parse(self.0.def())?)
    }

    async fn prepare(&self, session: &Session, inputs: Inputs) -> Result<Pinned> {
        let parsed = inputs.parse(self.0.def())?;
        self.0.prepare(session, parsed, inputs).await
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: &Inputs) -> Result<Report> {
        let parsed = inputs.parse(self.0.def())?;
        self.0.run(exec, parsed, inputs).await
    }

    async fn applied(&self, session: &Session, inputs: &Inputs) -> Result<Option<bool>> {
        let parsed = inputs.parse(self.0.def())?;
        self.0.applied(session, parsed, inputs).await
    }

    fn parses(&self, inputs: &Inputs) -> Result<()> {
        inputs.parse::<W::Inputs>(self.0.def()).map(drop)
    }

    fn secret_fields(&self, inputs: &Inputs) -> Vec<String> {
        // Inputs that do not parse never run; they hold no secret this workflow knows of.
        inputs
            .parse(self.0.def())
            .map(|i| self.0.secret_fields(&i))
            .unwrap_or_default()
    }

    fn reads_only(&self, inputs: &Inputs) -> bool {
        match inputs.parse(self.0.def()) {
            Ok(i) => self.0.reads_only(&i),
            Err(_) => !self.0.def().writes,
        }
    }

    fn report_document(&self) -> bool {
        self.0.report_document()
    }
}

impl Exec<'_> {
    /// Runs any workflow: checks its inputs against its definition, runs it, and adds the planned writes of a dry
    /// run.
    pub async fn run_workflow(mut self, workflow: &dyn Workflow, inputs: &Inputs) -> Result<RunOutput> {
        let def = workflow.def();
        check_inputs(def, inputs)?;
        let report = workflow.run(&mut self, inputs).await;
        self.progress().finish();
        let Report {
            summary,
            result,
            table,
            grant,
        } = report?;
        Ok(self.output(def, summary, result, table, grant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_from_pairs_keeps_json_objects() {
        let v = inputs_from_pairs([
            ("operation", "rk.users.get"),
            ("params", r#"{"name":"u-1"}"#),
            ("note", "{not json"),
        ]);
        assert_eq!(v["params"]["name"], json!("u-1"));
        assert_eq!(v["note"], json!("{not json"));
    }
}
