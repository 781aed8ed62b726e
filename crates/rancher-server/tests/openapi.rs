//! The committed OpenAPI document (`openapi.json`) matches the code; `UPDATE_OPENAPI=1 cargo test -p
//! rancher-server --test openapi` rewrites it.

#[test]
fn committed_openapi_document_is_fresh() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let fresh = rancher_server::openapi_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &fresh).expect("openapi.json written");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == fresh,
        "crates/rancher-server/openapi.json is stale; regenerate it with `UPDATE_OPENAPI=1 cargo test -p rancher-server --test openapi`"
    );
}
