//! Lenient deserializers for what real servers send: `null` or `""` where a value is expected, numbers as
//! strings, booleans as strings. Used by the generated types through `deserialize_with`.

use serde::de::{Deserialize, Deserializer};
use serde_json::Value;

/// A string; numbers and booleans are turned into their text, `null` into `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => Some(other.to_string()),
    })
}

/// A nested object; anything else (a `Status` answer's `"status": "Success"` where an object's status is expected)
/// is `None`.
pub fn opt_object<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        Some(v @ Value::Object(_)) => serde_json::from_value(v).map(Some).map_err(D::Error::custom),
        _ => Ok(None),
    }
}

/// A whole number; `"42"` is accepted, `""` and `null` are `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Some(i),
            None => n.as_f64().map(|f| f as i64),
        },
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().parse().map_err(|_| D::Error::custom(format!("expected a number, got {s:?}")))?),
        Some(other) => return Err(D::Error::custom(format!("expected a number, got {other}"))),
    })
}

/// A floating point number; `"1.5"` is accepted, `""` and `null` are `None`.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error;
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().parse().map_err(|_| D::Error::custom(format!("expected a number, got {s:?}")))?),
        Some(other) => return Err(D::Error::custom(format!("expected a number, got {other}"))),
    })
}

/// A boolean; `"true"`/`"false"` are accepted, `""` and `null` are `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    use serde::de::Error;
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => return Err(D::Error::custom(format!("expected true or false, got {s:?}"))),
        },
        Some(other) => return Err(D::Error::custom(format!("expected true or false, got {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use crate::types::{V3Token, V3User};
    use serde_json::json;

    #[test]
    fn tolerates_quirky_values() {
        let t: V3Token = serde_json::from_value(json!({
            "id": "token-abcde", "ttl": "7776000000", "expiresAt": "", "expired": "false",
            "userPrincipal": "map[displayName:Default Admin loginName:admin me:true principalType:user provider:local]",
            "createdTS": null, "someNewField": {"kept": true}
        }))
        .unwrap();
        assert_eq!(t.ttl, Some(7_776_000_000));
        assert_eq!(t.expires_at.as_deref(), Some(""));
        assert_eq!(t.expired, Some(false));
        assert!(t.user_principal.unwrap().as_str().unwrap().starts_with("map["));
        assert_eq!(t.created_ts, None);
        assert_eq!(t.extra["someNewField"], json!({"kept": true}));
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let wire = json!({"id": "u-abcde", "username": "alice", "futureField": [1, 2], "enabled": true});
        let u: V3User = serde_json::from_value(wire.clone()).unwrap();
        let back = serde_json::to_value(&u).unwrap();
        assert_eq!(back, wire);
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        assert!(serde_json::from_value::<V3Token>(json!({"ttl": "soon"})).is_err());
        assert!(serde_json::from_value::<V3Token>(json!({"expired": "maybe"})).is_err());
        assert!(serde_json::from_value::<V3Token>(json!({"ttl": [1]})).is_err());
    }
}
