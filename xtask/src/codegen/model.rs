//! The endpoint list as data: loading, merging the files of the folder, and validation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// One YAML file of the endpoint folder.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    params: BTreeMap<String, ParamDef>,
    #[serde(default)]
    resources: BTreeMap<String, ResourceDef>,
    #[serde(default)]
    types: indexmap_like::OrderedMap<TypeDef>,
    #[serde(default)]
    operations: Vec<OperationDef>,
}

/// A query or path parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    /// string | int | bool
    #[serde(rename = "type")]
    pub ty: String,
    /// One-line description.
    #[serde(default)]
    pub doc: String,
}

/// Presentation of a resource group (the handle name on the client).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDef {
    /// Rust method name of the handle, e.g. `global_role_bindings`.
    pub handle: String,
    /// One-line description of the resource.
    pub doc: String,
}

/// A named object type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeDef {
    /// One-line description.
    pub doc: String,
    /// `group/version Kind` for RK-API kinds.
    #[serde(default)]
    pub gvk: Option<String>,
    /// Types whose fields are copied in first.
    #[serde(default)]
    pub include: Vec<String>,
    /// The fields, in wire order.
    #[serde(default)]
    pub fields: Vec<FieldDef>,
}

/// A field of a type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Wire name.
    pub name: String,
    /// Type expression: string | int | float | bool | any | Name | [T] | {T}.
    #[serde(rename = "type")]
    pub ty: String,
    /// Required by the server on create.
    #[serde(default)]
    pub required: bool,
    /// Holds a secret: masked in Debug.
    #[serde(default)]
    pub secret: bool,
    /// One-line description.
    #[serde(default)]
    pub doc: Option<String>,
}

/// A query parameter reference: a name from the params table, or an inline definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum QueryRef {
    /// A name of the shared params table.
    Named(String),
    /// An inline parameter.
    Inline {
        /// Wire name.
        name: String,
        /// string | int | bool
        #[serde(rename = "type")]
        ty: String,
        /// One-line description.
        #[serde(default)]
        doc: String,
    },
}

/// One operation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationDef {
    /// Stable id `<surface>.<resource>.<action>`.
    pub id: String,
    /// rk | v3 | v1 | public
    pub surface: String,
    /// HTTP method.
    pub method: String,
    /// Path template (may end in a fixed `?action=` query).
    pub path: String,
    /// Path parameters, in template order.
    #[serde(default)]
    pub path_params: Vec<String>,
    /// Query parameters.
    #[serde(default)]
    pub query: Vec<QueryRef>,
    /// Request body type.
    #[serde(default)]
    pub body: Option<String>,
    /// The body may be left out.
    #[serde(default)]
    pub body_optional: bool,
    /// Content type of the body (default application/json).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Response type (`collection<T>`, `text`, `any` or a type name).
    #[serde(default)]
    pub response: Option<String>,
    /// k8s | norman
    #[serde(default)]
    pub paginated: Option<String>,
    /// Item type of a paginated list.
    #[serde(default)]
    pub item: Option<String>,
    /// Changes state on the server.
    pub mutating: bool,
    /// `none` when no token is needed.
    #[serde(default)]
    pub auth: Option<String>,
    /// First Rancher version serving it.
    pub since: String,
    /// First Rancher version no longer serving it.
    #[serde(default)]
    pub removed: Option<String>,
    /// One-line description.
    pub summary: String,
    /// Upstream swagger operation id, when there is one.
    #[serde(default)]
    pub operation_id: Option<String>,
}

/// A resolved parameter.
#[derive(Debug, Clone)]
pub struct Param {
    /// Wire name.
    pub name: String,
    /// string | int | bool
    pub ty: String,
    /// One-line description.
    pub doc: String,
}

/// The whole endpoint list, merged and validated.
#[derive(Debug, Default)]
pub struct Model {
    /// Shared params.
    pub params: BTreeMap<String, ParamDef>,
    /// Resource presentation, keyed by `<surface>.<resource>`.
    pub resources: BTreeMap<String, ResourceDef>,
    /// Types in file order, with includes expanded.
    pub types: Vec<(String, TypeDef)>,
    /// Operations in file order.
    pub operations: Vec<OperationDef>,
}

impl Model {
    /// Loads every `*.yaml` of `dir` (sorted by name) and validates the result.
    pub fn load(dir: &Path) -> Result<Model> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading the endpoint folder {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        names.sort();
        let mut files = Vec::new();
        for path in names {
            let text = std::fs::read_to_string(&path)?;
            files.push((path.display().to_string(), text));
        }
        Self::from_sources(&files)
    }

    /// Builds the model from `(file name, YAML text)` pairs.
    pub fn from_sources(files: &[(String, String)]) -> Result<Model> {
        let mut m = Model::default();
        let mut raw_types: Vec<(String, TypeDef)> = Vec::new();
        for (name, text) in files {
            let f: File = serde_norway::from_str(text).with_context(|| format!("parsing {name}"))?;
            for (k, v) in f.params {
                if m.params.insert(k.clone(), v).is_some() {
                    bail!("{name}: parameter `{k}` is defined twice");
                }
            }
            for (k, v) in f.resources {
                if m.resources.insert(k.clone(), v).is_some() {
                    bail!("{name}: resource `{k}` is defined twice");
                }
            }
            for (k, v) in f.types.0 {
                if raw_types.iter().any(|(n, _)| *n == k) {
                    bail!("{name}: type `{k}` is defined twice");
                }
                raw_types.push((k, v));
            }
            m.operations.extend(f.operations);
        }
        // Expand includes.
        let lookup: BTreeMap<String, TypeDef> = raw_types.iter().cloned().collect();
        for (name, t) in &raw_types {
            let mut fields = Vec::new();
            let mut seen = BTreeSet::new();
            expand(name, t, &lookup, &mut fields, &mut seen, 0)?;
            m.types.push((
                name.clone(),
                TypeDef {
                    fields,
                    include: Vec::new(),
                    ..t.clone()
                },
            ));
        }
        m.validate()?;
        Ok(m)
    }

    /// The query parameters of an operation, resolved.
    pub fn query_params(&self, op: &OperationDef) -> Vec<Param> {
        op.query
            .iter()
            .map(|q| match q {
                QueryRef::Named(n) => {
                    let d = &self.params[n];
                    Param {
                        name: n.clone(),
                        ty: d.ty.clone(),
                        doc: d.doc.clone(),
                    }
                }
                QueryRef::Inline { name, ty, doc } => Param {
                    name: name.clone(),
                    ty: ty.clone(),
                    doc: doc.clone(),
                },
            })
            .collect()
    }

    /// The path parameters of an operation, resolved.
    pub fn path_params(&self, op: &OperationDef) -> Vec<Param> {
        op.path_params
            .iter()
            .map(|n| {
                let d = &self.params[n];
                Param {
                    name: n.clone(),
                    ty: d.ty.clone(),
                    doc: d.doc.clone(),
                }
            })
            .collect()
    }

    /// Looks a type up by name.
    pub fn ty(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    fn validate(&self) -> Result<()> {
        let type_names: BTreeSet<&str> = self.types.iter().map(|(n, _)| n.as_str()).collect();
        for (name, t) in &self.types {
            if !is_type_name(name) {
                bail!("type `{name}`: names are UpperCamelCase");
            }
            let mut seen = BTreeSet::new();
            for f in &t.fields {
                if !seen.insert(&f.name) {
                    bail!("type `{name}`: field `{}` appears twice (check its includes)", f.name);
                }
                check_type_expr(&f.ty, &type_names).with_context(|| format!("type `{name}`, field `{}`", f.name))?;
            }
        }
        let mut ids = BTreeSet::new();
        for op in &self.operations {
            let ctx = || format!("operation `{}`", op.id);
            if !ids.insert(op.id.as_str()) {
                bail!("operation id `{}` is used twice", op.id);
            }
            let parts: Vec<&str> = op.id.split('.').collect();
            if parts.len() != 3 || parts[0] != op.surface {
                bail!(
                    "{}: ids are `<surface>.<resource>.<action>` and start with the surface `{}`",
                    ctx(),
                    op.surface
                );
            }
            if !matches!(op.surface.as_str(), "rk" | "v3" | "v1" | "public") {
                bail!("{}: surface must be rk, v3, v1 or public", ctx());
            }
            if !matches!(op.method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
                bail!("{}: unsupported method {}", ctx(), op.method);
            }
            if !op.path.starts_with('/') {
                bail!("{}: the path must start with /", ctx());
            }
            let in_template = template_params(&op.path);
            if in_template != op.path_params {
                bail!(
                    "{}: path_params {:?} do not match the template's {:?}",
                    ctx(),
                    op.path_params,
                    in_template
                );
            }
            for p in &op.path_params {
                if !self.params.contains_key(p) {
                    bail!("{}: path parameter `{p}` is not in the params table", ctx());
                }
            }
            let mut qnames = BTreeSet::new();
            for q in &op.query {
                let (n, ty) = match q {
                    QueryRef::Named(n) => {
                        let d = self
                            .params
                            .get(n)
                            .with_context(|| format!("{}: query parameter `{n}` is not in the params table", ctx()))?;
                        (n.clone(), d.ty.clone())
                    }
                    QueryRef::Inline { name, ty, .. } => (name.clone(), ty.clone()),
                };
                if !matches!(ty.as_str(), "string" | "int" | "bool") {
                    bail!(
                        "{}: parameter `{n}` has type {ty}; parameters are string, int or bool",
                        ctx()
                    );
                }
                if !qnames.insert(n.clone()) || op.path_params.contains(&n) {
                    bail!("{}: parameter `{n}` appears twice", ctx());
                }
            }
            if let Some(b) = &op.body {
                if b != "any" && !type_names.contains(b.as_str()) {
                    bail!("{}: body type `{b}` is not defined", ctx());
                }
            } else if op.body_optional {
                bail!("{}: body_optional without a body", ctx());
            }
            match op.response.as_deref() {
                None | Some("any") | Some("text") => {}
                Some(r) => {
                    let inner = r
                        .strip_prefix("collection<")
                        .and_then(|s| s.strip_suffix('>'))
                        .unwrap_or(r);
                    if !type_names.contains(inner) {
                        bail!("{}: response type `{r}` is not defined", ctx());
                    }
                }
            }
            match (op.paginated.as_deref(), &op.item) {
                (None, None) => {}
                (Some("k8s"), Some(item)) | (Some("norman"), Some(item)) => {
                    if !type_names.contains(item.as_str()) {
                        bail!("{}: item type `{item}` is not defined", ctx());
                    }
                    if op.method != "GET" {
                        bail!("{}: only GET operations page", ctx());
                    }
                }
                _ => bail!("{}: `paginated` (k8s | norman) and `item` go together", ctx()),
            }
            // Every non-GET writes, except a POST that only reads (e.g. a search action).
            let read_only_post = op.method == "POST" && !op.mutating;
            if op.mutating == (op.method == "GET") && !read_only_post {
                bail!(
                    "{}: a {} operation must {}be mutating",
                    ctx(),
                    op.method,
                    if op.mutating { "not " } else { "" }
                );
            }
            if !matches!(op.auth.as_deref(), None | Some("none")) {
                bail!("{}: auth is either absent (a token is needed) or `none`", ctx());
            }
            parse_version(&op.since).with_context(ctx)?;
            if let Some(r) = &op.removed {
                let (a, b) = (parse_version(&op.since)?, parse_version(r)?);
                if b <= a {
                    bail!("{}: removed ({r}) must come after since ({})", ctx(), op.since);
                }
            }
            if op.summary.trim().is_empty() {
                bail!("{}: a summary is required", ctx());
            }
        }
        for key in self.resources.keys() {
            if !self.operations.iter().any(|o| o.id.starts_with(&format!("{key}."))) {
                bail!("resource `{key}` has no operation");
            }
        }
        Ok(())
    }
}

fn expand(
    name: &str,
    t: &TypeDef,
    lookup: &BTreeMap<String, TypeDef>,
    out: &mut Vec<FieldDef>,
    seen: &mut BTreeSet<String>,
    depth: usize,
) -> Result<()> {
    if depth > 8 {
        bail!("type `{name}`: includes nest too deep (a cycle?)");
    }
    for inc in &t.include {
        let it = lookup
            .get(inc)
            .with_context(|| format!("type `{name}` includes `{inc}`, which is not defined"))?;
        expand(inc, it, lookup, out, seen, depth + 1)?;
    }
    for f in &t.fields {
        if let Some(pos) = out.iter().position(|x| x.name == f.name) {
            out[pos] = f.clone();
        } else {
            out.push(f.clone());
        }
        seen.insert(f.name.clone());
    }
    Ok(())
}

fn is_type_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Checks a field type expression.
pub fn check_type_expr(ty: &str, names: &BTreeSet<&str>) -> Result<()> {
    if let Some(inner) = ty.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return check_type_expr(inner, names);
    }
    if let Some(inner) = ty.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        return check_type_expr(inner, names);
    }
    match ty {
        "string" | "int" | "float" | "bool" | "any" => Ok(()),
        other if names.contains(other) => Ok(()),
        other => bail!("unknown type `{other}`"),
    }
}

/// The `{param}` names of a path template, in order.
pub fn template_params(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else { break };
        out.push(rest[start + 1..start + end].to_string());
        rest = &rest[start + end + 1..];
    }
    out
}

/// Parses `major.minor` into a pair.
pub fn parse_version(v: &str) -> Result<(u16, u16)> {
    let (a, b) = v
        .split_once('.')
        .with_context(|| format!("version `{v}` is not `major.minor`"))?;
    Ok((
        a.parse().with_context(|| format!("version `{v}`"))?,
        b.parse().with_context(|| format!("version `{v}`"))?,
    ))
}

/// An order-keeping map for the `types:` section (YAML maps are ordered; serde's BTreeMap is not).
mod indexmap_like {
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    /// Entries in file order.
    #[derive(Debug)]
    pub struct OrderedMap<V>(pub Vec<(String, V)>);

    impl<V> Default for OrderedMap<V> {
        fn default() -> Self {
            OrderedMap(Vec::new())
        }
    }

    impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V2<V>(PhantomData<V>);
            impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
                type Value = OrderedMap<V>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a map of type definitions")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                    let mut out = Vec::new();
                    while let Some((k, v)) = a.next_entry::<String, V>()? {
                        out.push((k, v));
                    }
                    Ok(OrderedMap(out))
                }
            }
            d.deserialize_map(V2(PhantomData))
        }
    }
}
