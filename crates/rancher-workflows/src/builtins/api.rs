//! `rancher-api-request`: any operation of the endpoint list, by id, with its parameters and body checked against
//! the list before anything is sent or filed.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use crate::catalog::{self, WorkflowDef};
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::session::Session;
use crate::workflow::{Inputs, Pinned, Report, TypedWorkflow};

/// The inputs of `rancher-api-request`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiInputs {
    /// The operation id (`rk.users.list`).
    pub operation: String,
    /// Path and query parameters: a JSON object of text, numbers or booleans.
    #[serde(default)]
    params: Option<Value>,
    /// The JSON body, for operations that take one (typed `any` by the endpoint list).
    #[serde(default)]
    pub body: Option<Value>,
    /// What an edit of a role changes (set when it is filed, shown to approvers): read by the targets, not by
    /// the run.
    #[serde(default, rename = "role-change")]
    role_change: Option<serde::de::IgnoredAny>,
}

impl ApiInputs {
    /// The request these inputs describe, checked against the endpoint list (operation, parameters, body) and
    /// rendered once, so a request that could not be sent as promised is refused before anything is filed.
    fn request(&self, def: &WorkflowDef) -> Result<rancher_api::GenericRequest> {
        let params = self.params(def)?;
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let req = rancher_api::GenericRequest::new(&self.operation, &pairs, self.body.clone())?;
        req.target()?;
        Ok(req)
    }

    /// The parameters as text pairs.
    fn params(&self, def: &WorkflowDef) -> Result<Vec<(String, String)>> {
        api_params(def, self.params.as_ref())
    }
}

/// `rancher-api-request`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiRequest;

#[async_trait]
impl TypedWorkflow for ApiRequest {
    type Inputs = ApiInputs;

    fn def(&self) -> &'static WorkflowDef {
        &catalog::RANCHER_API_REQUEST
    }

    fn check(&self, inputs: &ApiInputs) -> Result<()> {
        inputs.request(self.def()).map(drop)
    }

    async fn prepare(&self, session: &Session, inputs: ApiInputs, raw: Inputs) -> Result<Pinned> {
        let req = inputs.request(self.def())?;
        crate::targets::pin_api_request(session, req.spec().id, raw).await
    }

    async fn run(&self, exec: &mut Exec<'_>, inputs: ApiInputs, _: &Inputs) -> Result<Report> {
        let def = self.def();
        let op = inputs.operation.as_str();
        let params = inputs.params(def)?;
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let req = inputs.request(def)?;
        let spec = req.spec();
        let body = inputs.body;
        if spec.mutating {
            let mut out = exec.write(op, &pairs, body).await?;
            // Outcomes of approved runs are stored: a fresh token or kubeconfig in the answer never is.
            spec.redact_answer(&mut out);
            Ok(Report::new(format!("{} {} done", spec.method, spec.id), out))
        } else {
            let out = exec.session().client.call(op, &pairs, body).await?;
            Ok(Report::new(format!("{} {} answered", spec.method, spec.id), out))
        }
    }

    fn secret_fields(&self, inputs: &ApiInputs) -> Vec<String> {
        let mut raw = serde_json::Map::new();
        raw.insert("operation".into(), Value::String(inputs.operation.clone()));
        if let Some(b) = &inputs.body {
            raw.insert("body".into(), b.clone());
        }
        crate::targets::secret_fields(&Value::Object(raw))
    }

    fn reads_only(&self, inputs: &ApiInputs) -> bool {
        match rancher_api::find_operation(&inputs.operation) {
            Some(op) => !op.mutating,
            None => !self.def().writes,
        }
    }
}

/// The `params` input of the API request workflow, as string pairs.
fn api_params(def: &WorkflowDef, params: Option<&Value>) -> Result<Vec<(String, String)>> {
    match params {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                other => Err(Error::Input {
                    workflow: def.id.into(),
                    input: "params".into(),
                    message: format!("`{k}` must be text, a number or a boolean, not {other}"),
                }),
            })
            .collect(),
        Some(other) => Err(Error::Input {
            workflow: def.id.into(),
            input: "params".into(),
            message: format!("must be a JSON object such as {{\"name\":\"admin\"}}, not {other}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_params_accept_scalars_only() {
        let def = ApiRequest.def();
        let p = api_params(def, Some(&json!({"name": "x", "limit": 5, "me": true}))).unwrap();
        assert!(p.contains(&("limit".into(), "5".into())) && p.contains(&("me".into(), "true".into())));
        assert!(api_params(def, Some(&json!({"a": [1]}))).is_err());
        assert!(api_params(def, Some(&json!("name=x"))).is_err());
    }
}
