//! Entry functions for rancher-api's wire parsers: the three error shapes and the two list envelopes.

use rancher_api::error::parse_server_error as parse_error;
use rancher_api::types::{GlobalRoleBindingList, Status, UserList, V3User};
use rancher_api::{Error, JsonPage, ListItem, NormanCollection, NormanError, Page, Surface};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The longest one-line error accepted: the server's words are kept, but bounded.
const MAX_ERROR_LINE: usize = 1024;

/// The content types a server error arrives with; the first input byte picks one.
const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("text/html; charset=utf-8"),
    Some("text/plain"),
];

fn split(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, data),
    }
}

/// Parses, writes and parses again: the second read equals the first (nothing the server sent is lost on a
/// read-modify-write, quirky values settle to one form).
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(body: &[u8]) -> Option<T> {
    let first: T = serde_json::from_slice(body).ok()?;
    let written = serde_json::to_vec(&first).expect("a parsed value serialises");
    let second: T = serde_json::from_slice(&written)
        .unwrap_or_else(|e| panic!("a written value reads back: {e}: {}", String::from_utf8_lossy(&written)));
    if first != second {
        // serde_json parses floats best-effort (without its `float_roundtrip` feature): a long float may move by
        // its last bit. Anything else is a real change.
        let (a, b) = (
            serde_json::to_value(&first).expect("to JSON"),
            serde_json::to_value(&second).expect("to JSON"),
        );
        assert!(
            same_but_float_bits(&a, &b),
            "a round trip changed the value:\n{first:?}\n{second:?}"
        );
    }
    Some(first)
}

fn same_but_float_bits(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || ((x - y).abs() <= x.abs().max(y.abs()) * 1e-15),
            _ => x == y,
        },
        (V::Array(x), V::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_but_float_bits(x, y)),
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_but_float_bits(v, w)))
        }
        _ => a == b,
    }
}

/// The Kubernetes `Status`, norman and 1.x error bodies: whatever the body, the error is one of the known shapes
/// or a bounded snippet, and the client's error `Display` stays one bounded line.
pub fn error_shapes(data: &[u8]) {
    let (pick, body) = split(data);
    let content_type = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    for surface in [Surface::Rk, Surface::V3, Surface::V1, Surface::Public] {
        let server = parse_error(surface, content_type, body);
        let _ = (server.reason(), server.message());
        let err = Error::Api {
            operation: "fuzz.op".into(),
            status: 400 + u16::from(pick),
            server,
            retry_after: None,
        };
        let line = err.to_string();
        assert!(
            !line.contains(char::is_control),
            "an error is one printable line: {line:?}"
        );
        assert!(
            line.chars().count() <= MAX_ERROR_LINE,
            "an error line is bounded: {} chars",
            line.chars().count()
        );
        let _ = (
            err.is_not_found(),
            err.is_conflict(),
            err.is_already_exists(),
            err.is_forbidden(),
            err.is_unauthorized(),
        );
    }
    let _ = round_trip::<Status>(body);
    let _ = round_trip::<NormanError>(body);
}

/// The Kubernetes list (`items` + `metadata.continue`) and the norman collection (`data` + `pagination.next`),
/// typed and as plain JSON: splitting a page never panics, and typed pages survive a round trip.
pub fn list_envelopes(data: &[u8]) {
    let (_, body) = split(data);
    if let Some(page) = round_trip::<UserList>(body) {
        let (items, _) = page.into_parts();
        items.iter().for_each(|i| drop(i.list_key()));
    }
    if let Some(page) = round_trip::<GlobalRoleBindingList>(body) {
        let (items, _) = page.into_parts();
        items.iter().for_each(|i| drop(i.list_key()));
    }
    if let Some(page) = round_trip::<NormanCollection<V3User>>(body) {
        let _ = page.into_parts();
    }
    if let Some(page) = round_trip::<NormanCollection<serde_json::Value>>(body) {
        let (items, _) = page.into_parts();
        items.iter().for_each(|i| drop(i.list_key()));
    }
    if let Ok(page) = serde_json::from_slice::<JsonPage>(body) {
        let (items, link) = page.into_parts();
        items.iter().for_each(|i| drop(i.list_key()));
        let _ = link;
    }
}

/// Path values of any operation (the first byte picks the operation, the rest is the value): a value is either
/// refused before sending, or it stays exactly one segment of the path that is sent. No value can drop a segment
/// (`.`, `..`) or add one (`/`), so a request for one object never reaches a collection or a parent.
pub fn request_target(data: &[u8]) {
    let (pick, rest) = split(data);
    let with_params: Vec<&rancher_api::OperationSpec> = rancher_api::OPERATIONS
        .iter()
        .filter(|o| !o.path_params.is_empty())
        .collect();
    let spec = with_params[usize::from(pick) % with_params.len()];
    let value = String::from_utf8_lossy(rest);
    let fuzzed = spec.path_params[0].name;
    let params: Vec<(&str, &str)> = spec
        .path_params
        .iter()
        .map(|p| (p.name, if p.name == fuzzed { value.as_ref() } else { "x" }))
        .collect();
    let Ok(request) = rancher_api::GenericRequest::new(spec.id, &params, None) else {
        return;
    };
    let target = request
        .target()
        .unwrap_or_else(|e| panic!("accepted at construction but refused when rendered: {e}"));
    let rendered = target.split_once('?').map_or(target.as_str(), |(p, _)| p);
    // What goes on the wire: the path as a URL normalises it.
    let mut url = url::Url::parse("https://rancher.invalid/").expect("a valid base");
    url.set_path(rendered);
    let path = url.path();
    let template = spec.path.split_once('?').map_or(spec.path, |(p, _)| p);
    let sent: Vec<&str> = path.split('/').collect();
    let promised: Vec<&str> = template.split('/').collect();
    assert_eq!(
        sent.len(),
        promised.len(),
        "{} with {value:?} was rendered as {path}",
        spec.id
    );
    let at = promised
        .iter()
        .position(|s| *s == format!("{{{fuzzed}}}"))
        .expect("the template names its parameter");
    let decoded = percent_encoding::percent_decode_str(sent[at])
        .decode_utf8()
        .expect("encoded from UTF-8");
    assert_eq!(
        decoded, value,
        "{} with {value:?}: the segment does not decode to the value",
        spec.id
    );
    for (s, p) in sent.iter().zip(&promised) {
        if !p.starts_with('{') {
            assert_eq!(s, p, "{} with {value:?}: a fixed segment changed", spec.id);
        }
    }
}
