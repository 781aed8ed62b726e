//! Extending a grant: a new approval request under the grant's own workflow (and so its policy), for the same
//! binding, with a new duration.

use rancher_approval::{format_duration, parse_duration, Store};
use serde_json::json;

use crate::error::{Error, Result};
use crate::workflow::Inputs;

/// The workflow and inputs of a request that extends grant `id` by `by` (`30m`, `8h`, `7d`): the granting
/// request's own inputs, with `extends` naming the grant and `duration` the extension. Refused for a grant that
/// already ended (grant it again instead).
pub async fn extension(store: &dyn Store, id: &str, by: &str) -> Result<(String, Inputs)> {
    let secs = parse_duration(by).map_err(|e| Error::Input {
        workflow: "grants extend".into(),
        input: "by".into(),
        message: format!("{e} (e.g. 2h)"),
    })?;
    let grant = store.get_grant(id).await?;
    if let Some(r) = &grant.revocation {
        return Err(Error::Refused(format!(
            "grant {id} already ended at {}; grant it again with a new run",
            r.at.to_rfc3339()
        )));
    }
    let request = store.get_request(&id.parse()?).await?;
    let mut inputs = request.inputs;
    inputs["extends"] = json!(id);
    inputs["duration"] = json!(format_duration(secs.as_secs()));
    Ok((grant.workflow_id, inputs.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rancher_approval::MemoryStore;

    #[tokio::test]
    async fn a_bad_duration_or_an_unknown_grant_is_refused_with_the_cause() {
        let store = MemoryStore::new();
        let err = extension(&store, "req-x", "soon").await.unwrap_err().to_string();
        assert!(err.contains("input `by`") && err.contains("2h"), "{err}");
        let err = extension(&store, "req-0123456789abcdef", "2h")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("req-0123456789abcdef"), "{err}");
    }
}
