//! The traits every generated request implements, and the paging model shared by both list styles.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::spec::OperationSpec;

/// One operation with its parameters and body, ready to send.
pub trait Request {
    /// The typed answer.
    type Response: DeserializeOwned + Send + 'static;
    /// The operation this request belongs to.
    fn spec(&self) -> &'static OperationSpec;
    /// Path parameter values, in template order.
    fn path_values(&self) -> Vec<&str>;
    /// Query parameters that are set.
    fn query_pairs(&self) -> Vec<(&'static str, String)>;
    /// The JSON body, if the operation has one and it is set.
    fn body_bytes(&self) -> Option<Result<Vec<u8>, serde_json::Error>>;
}

/// A list request that can be followed page by page.
pub trait Paginated: Request + Clone + Send + Sync + 'static
where
    Self::Response: Page<Item = Self::Item>,
{
    /// One element of the list.
    type Item: Send + 'static;
    /// Sets (or clears) the Kubernetes continue token.
    fn set_continue(&mut self, token: Option<String>);
    /// Sets the page size unless the caller chose one.
    fn set_page_size(&mut self, size: i64);
    /// The page size asked for.
    fn page_size(&self) -> Option<i64>;
}

/// Where the next page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageLink {
    /// Kubernetes: send the same request with this `continue` token.
    Continue(String),
    /// Norman: fetch this URL.
    Next(String),
    /// This was the last page.
    End,
}

impl PageLink {
    /// `Continue` for a non-empty token, `End` otherwise.
    pub fn from_continue(token: Option<String>) -> Self {
        match token {
            Some(t) if !t.is_empty() => PageLink::Continue(t),
            _ => PageLink::End,
        }
    }
}

/// A page of a list: its items and the link to the next page.
pub trait Page {
    /// One element.
    type Item;
    /// Splits the page.
    fn into_parts(self) -> (Vec<Self::Item>, PageLink);
}

/// The key that orders a list (Kubernetes `namespace/name`, norman `id`), used to resume a restarted list
/// without yielding an item twice.
pub trait ListItem {
    /// The item's key, if it has one.
    fn list_key(&self) -> Option<String>;
}

impl ListItem for serde_json::Value {
    fn list_key(&self) -> Option<String> {
        if let Some(meta) = self.get("metadata") {
            let name = meta.get("name")?.as_str()?;
            return Some(match meta.get("namespace").and_then(|n| n.as_str()) {
                Some(ns) => format!("{ns}/{name}"),
                None => name.to_string(),
            });
        }
        self.get("id")?.as_str().map(str::to_string)
    }
}

/// The `pagination` member of a norman collection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NormanPagination {
    /// Page size in force.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::opt_i64"
    )]
    pub limit: Option<i64>,
    /// Items after filtering (absent on `/v3/tokens`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::opt_i64"
    )]
    pub total: Option<i64>,
    /// URL of the next page, when this one is partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// URL of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// True when more pages exist.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::de::opt_bool"
    )]
    pub partial: Option<bool>,
    /// Anything else the server sent.
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A norman (and legacy 1.x) collection: `{type: "collection", data: [...], pagination: {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: serde::de::DeserializeOwned", serialize = "T: Serialize"))]
pub struct NormanCollection<T> {
    /// Always `collection`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Schema id of the items.
    #[serde(rename = "resourceType", default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// The items of this page.
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub data: Vec<T>,
    /// Paging state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<NormanPagination>,
    /// Links, actions, sort, filters, createTypes and anything else.
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}

impl<T> Default for NormanCollection<T> {
    fn default() -> Self {
        NormanCollection {
            type_: None,
            resource_type: None,
            data: Vec::new(),
            pagination: None,
            extra: Default::default(),
        }
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl<T> Page for NormanCollection<T> {
    type Item = T;
    fn into_parts(self) -> (Vec<T>, PageLink) {
        let link = match self.pagination.and_then(|p| p.next) {
            Some(n) if !n.is_empty() => PageLink::Next(n),
            _ => PageLink::End,
        };
        (self.data, link)
    }
}

/// A list page read as plain JSON (for the generic request): Kubernetes `items` + `metadata.continue`, or norman
/// `data` + `pagination.next`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonPage(pub serde_json::Value);

impl Page for JsonPage {
    type Item = serde_json::Value;
    fn into_parts(self) -> (Vec<serde_json::Value>, PageLink) {
        let mut v = self.0;
        if let Some(items) = v.get_mut("items").map(serde_json::Value::take) {
            let token = v
                .pointer("/metadata/continue")
                .and_then(|c| c.as_str())
                .map(str::to_string);
            return (into_vec(items), PageLink::from_continue(token));
        }
        let next = v
            .pointer("/pagination/next")
            .and_then(|c| c.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let data = v.get_mut("data").map(serde_json::Value::take).unwrap_or_default();
        (into_vec(data), next.map(PageLink::Next).unwrap_or(PageLink::End))
    }
}

fn into_vec(v: serde_json::Value) -> Vec<serde_json::Value> {
    match v {
        serde_json::Value::Array(a) => a,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn norman_next_link_and_end() {
        let c: NormanCollection<serde_json::Value> = serde_json::from_value(json!({
            "type": "collection", "data": [{"id": "u-1"}], "pagination": {"limit": 1, "total": 2, "partial": true,
            "next": "https://r.example/v3/users?limit=1&marker=u-2"}
        }))
        .unwrap();
        let (items, link) = c.into_parts();
        assert_eq!(items.len(), 1);
        assert_eq!(
            link,
            PageLink::Next("https://r.example/v3/users?limit=1&marker=u-2".into())
        );
        let last: NormanCollection<serde_json::Value> =
            serde_json::from_value(json!({"data": null, "pagination": {"limit": "1000"}})).unwrap();
        assert_eq!(last.into_parts(), (vec![], PageLink::End));
    }

    #[test]
    fn json_pages_of_both_styles() {
        let (items, link) =
            JsonPage(json!({"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "tok"}})).into_parts();
        assert_eq!(items[0].list_key().as_deref(), Some("a"));
        assert_eq!(link, PageLink::Continue("tok".into()));
        let (_, link) = JsonPage(json!({"items": [], "metadata": {"continue": ""}})).into_parts();
        assert_eq!(link, PageLink::End);
        let (items, link) =
            JsonPage(json!({"data": [{"id": "c-x:p-y"}], "pagination": {"next": "https://h/v3/projects?marker=z"}}))
                .into_parts();
        assert_eq!(items[0].list_key().as_deref(), Some("c-x:p-y"));
        assert!(matches!(link, PageLink::Next(_)));
    }
}
