//! Lenient deserializers for what real servers send: `null` or `""` where a value is expected, numbers as
//! strings, booleans as strings; and the map visitor behind every generated type's `Deserialize`.
//!
//! Everything here reads straight from the deserializer through visitors: no `serde_json::Value` is built for a
//! field the types name, and a known key is matched without being copied. Only unknown fields (kept in `extra`)
//! and the rare shapes that must be echoed as JSON text (an array where a string is expected) build a `Value`.
//!
//! Duplicate keys: the last one wins, for named fields and for unknown ones alike (as Go's `encoding/json`, which
//! Rancher is written in, reads them).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A string; numbers and booleans are turned into their text, `null` into `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Lenient::<String>::deserialize(d).map(|l| l.0)
}

/// A nested object; anything else (a `Status` answer's `"status": "Success"` where an object's status is expected)
/// is `None`.
pub fn opt_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    OptObject::<T>::deserialize(d).map(|o| o.0)
}

/// A whole number; `"42"` is accepted, `""` and `null` are `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Lenient::<i64>::deserialize(d).map(|l| l.0)
}

/// A floating point number; `"1.5"` is accepted, `""` and `null` are `None`.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Lenient::<f64>::deserialize(d).map(|l| l.0)
}

/// A boolean; `"true"`/`"false"` are accepted, `""` and `null` are `None`.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Lenient::<bool>::deserialize(d).map(|l| l.0)
}

/// An optional scalar read leniently (see `opt_string`, `opt_i64`, `opt_f64`, `opt_bool`); the generated types
/// read their scalar fields with `map.next_value::<Lenient<T>>()`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Lenient<T>(pub Option<T>);

/// How one scalar type takes each JSON shape. `Err` carries the message of the error to raise.
trait Scalar: Sized {
    const EXPECTING: &'static str;
    fn from_text(s: &str) -> Result<Option<Self>, String>;
    fn from_owned(s: String) -> Result<Option<Self>, String> {
        Self::from_text(&s)
    }
    fn from_bool(b: bool) -> Result<Option<Self>, String>;
    fn from_i64(i: i64) -> Result<Option<Self>, String>;
    fn from_u64(u: u64) -> Result<Option<Self>, String>;
    /// Only called with a finite number (a non-finite one is JSON `null`).
    fn from_f64(f: f64) -> Result<Option<Self>, String>;
    /// An array or an object, as JSON `Value`.
    fn from_other(v: Value) -> Result<Option<Self>, String>;
}

impl Scalar for String {
    const EXPECTING: &'static str = "a string, a number, a boolean or null";
    fn from_text(s: &str) -> Result<Option<Self>, String> {
        Ok(Some(s.to_owned()))
    }
    fn from_owned(s: String) -> Result<Option<Self>, String> {
        Ok(Some(s))
    }
    fn from_bool(b: bool) -> Result<Option<Self>, String> {
        Ok(Some(b.to_string()))
    }
    fn from_i64(i: i64) -> Result<Option<Self>, String> {
        Ok(Some(i.to_string()))
    }
    fn from_u64(u: u64) -> Result<Option<Self>, String> {
        Ok(Some(u.to_string()))
    }
    fn from_f64(f: f64) -> Result<Option<Self>, String> {
        Ok(Some(Value::from(f).to_string()))
    }
    fn from_other(v: Value) -> Result<Option<Self>, String> {
        Ok(Some(v.to_string()))
    }
}

/// A number written as text (`"42"`, `" 1.5 "`); blank is absent.
fn number_text<T: std::str::FromStr>(s: &str) -> Result<Option<T>, String> {
    match s.trim() {
        "" => Ok(None),
        t => t.parse().map(Some).map_err(|_| format!("expected a number, got {s:?}")),
    }
}

impl Scalar for i64 {
    const EXPECTING: &'static str = "a number, a numeric string or null";
    fn from_text(s: &str) -> Result<Option<Self>, String> {
        number_text(s)
    }
    fn from_bool(b: bool) -> Result<Option<Self>, String> {
        Err(format!("expected a number, got {b}"))
    }
    fn from_i64(i: i64) -> Result<Option<Self>, String> {
        Ok(Some(i))
    }
    fn from_u64(u: u64) -> Result<Option<Self>, String> {
        // As `serde_json::Number::as_i64`, then `as_f64() as i64` (which saturates).
        Ok(Some(i64::try_from(u).unwrap_or(u as f64 as i64)))
    }
    fn from_f64(f: f64) -> Result<Option<Self>, String> {
        Ok(Some(f as i64))
    }
    fn from_other(v: Value) -> Result<Option<Self>, String> {
        Err(format!("expected a number, got {v}"))
    }
}

impl Scalar for f64 {
    const EXPECTING: &'static str = "a number, a numeric string or null";
    fn from_text(s: &str) -> Result<Option<Self>, String> {
        number_text(s)
    }
    fn from_bool(b: bool) -> Result<Option<Self>, String> {
        Err(format!("expected a number, got {b}"))
    }
    fn from_i64(i: i64) -> Result<Option<Self>, String> {
        Ok(Some(i as f64))
    }
    fn from_u64(u: u64) -> Result<Option<Self>, String> {
        Ok(Some(u as f64))
    }
    fn from_f64(f: f64) -> Result<Option<Self>, String> {
        Ok(Some(f))
    }
    fn from_other(v: Value) -> Result<Option<Self>, String> {
        Err(format!("expected a number, got {v}"))
    }
}

impl Scalar for bool {
    const EXPECTING: &'static str = "a boolean, \"true\", \"false\" or null";
    fn from_text(s: &str) -> Result<Option<Self>, String> {
        let t = s.trim();
        if t.is_empty() {
            Ok(None)
        } else if t.eq_ignore_ascii_case("true") {
            Ok(Some(true))
        } else if t.eq_ignore_ascii_case("false") {
            Ok(Some(false))
        } else {
            Err(format!("expected true or false, got {s:?}"))
        }
    }
    fn from_bool(b: bool) -> Result<Option<Self>, String> {
        Ok(Some(b))
    }
    fn from_i64(i: i64) -> Result<Option<Self>, String> {
        Err(format!("expected true or false, got {i}"))
    }
    fn from_u64(u: u64) -> Result<Option<Self>, String> {
        Err(format!("expected true or false, got {u}"))
    }
    fn from_f64(f: f64) -> Result<Option<Self>, String> {
        Err(format!("expected true or false, got {}", Value::from(f)))
    }
    fn from_other(v: Value) -> Result<Option<Self>, String> {
        Err(format!("expected true or false, got {v}"))
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Scalar> Visitor<'de> for LenientVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_none<E: Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_unit<E: Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_str<E: Error>(self, v: &str) -> Result<Option<T>, E> {
        T::from_text(v).map_err(E::custom)
    }
    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Option<T>, E> {
        T::from_text(v).map_err(E::custom)
    }
    fn visit_string<E: Error>(self, v: String) -> Result<Option<T>, E> {
        T::from_owned(v).map_err(E::custom)
    }
    fn visit_bool<E: Error>(self, v: bool) -> Result<Option<T>, E> {
        T::from_bool(v).map_err(E::custom)
    }
    fn visit_i64<E: Error>(self, v: i64) -> Result<Option<T>, E> {
        T::from_i64(v).map_err(E::custom)
    }
    fn visit_u64<E: Error>(self, v: u64) -> Result<Option<T>, E> {
        T::from_u64(v).map_err(E::custom)
    }
    fn visit_f64<E: Error>(self, v: f64) -> Result<Option<T>, E> {
        // `serde_json::Value` holds a non-finite number as `null`.
        if v.is_finite() {
            T::from_f64(v).map_err(E::custom)
        } else {
            Ok(None)
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
        let v = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        T::from_other(v).map_err(A::Error::custom)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        let v = Value::deserialize(MapAccessDeserializer::new(map))?;
        T::from_other(v).map_err(A::Error::custom)
    }
}

impl<'de, T: Scalar> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(LenientVisitor(PhantomData)).map(Lenient)
    }
}

/// A nested object read as `T`; any other shape (a `Status` answer's `"status": "Success"`, `null`, an array) is
/// `None`. See `opt_object`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptObject<T>(pub Option<T>);

struct OptObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OptObjectVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object, or anything else as none")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<T>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_none<E: Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_unit<E: Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_bool<E: Error>(self, _: bool) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_i64<E: Error>(self, _: i64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_u64<E: Error>(self, _: u64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_f64<E: Error>(self, _: f64) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_str<E: Error>(self, _: &str) -> Result<Option<T>, E> {
        Ok(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OptObject<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(OptObjectVisitor(PhantomData)).map(OptObject)
    }
}

/// A generated type read field by field from a JSON object (see `deserialize_struct`).
pub(crate) trait Fields: Default {
    /// The type's name, for "expected struct X" errors.
    const NAME: &'static str;
    /// Reads the value of the field whose wire name is `key` into `self`; `Ok(false)` when the type has no such
    /// field (the value is then still unread).
    fn field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
    /// Where unknown fields go.
    fn extra(&mut self) -> &mut BTreeMap<String, Value>;
}

/// A map key, borrowed from the input when it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The body of every generated type's `Deserialize`: a JSON object whose named fields are read by `T::field`
/// and whose other fields are kept in `T::extra` (the last of duplicate keys wins). Missing fields keep their
/// `Default`. Any other shape is an error, as it was with `#[derive(Deserialize)]` and a flattened map.
pub(crate) fn deserialize_struct<'de, T: Fields, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    struct StructVisitor<T>(PhantomData<T>);
    impl<'de, T: Fields> Visitor<'de> for StructVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "struct {}", T::NAME)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            let mut this = T::default();
            while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                if !this.field(&key, &mut map)? {
                    let value: Value = map.next_value()?;
                    this.extra().insert(key.into_owned(), value);
                }
            }
            Ok(this)
        }
    }
    d.deserialize_map(StructVisitor(PhantomData))
}

#[cfg(test)]
mod tests {
    use crate::types::{User, UserList, V3Token, V3User};
    use serde::Deserialize;
    use serde_json::{json, Value};

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

    /// Decodes `text` as `T` the four ways the crate does: from bytes (borrowed strings), from a reader (transient
    /// strings), from an owned `Value` and from a borrowed `Value` (the generic request's body check); all four
    /// must agree, and the error text (without the position) is returned.
    fn all_ways<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) -> Result<T, String> {
        let from_slice = serde_json::from_slice::<T>(text.as_bytes());
        let from_reader = serde_json::from_reader::<_, T>(text.as_bytes());
        let value: Value = serde_json::from_str(text).unwrap();
        let from_ref = T::deserialize(&value);
        let from_value = serde_json::from_value::<T>(value);
        let strip = |e: serde_json::Error| {
            let s = e.to_string();
            match s.find(" at line ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        };
        let outs = [
            from_slice.map_err(strip),
            from_reader.map_err(strip),
            from_ref.map_err(strip),
            from_value.map_err(strip),
        ];
        for o in &outs[1..] {
            assert_eq!(o, &outs[0], "decoding {text} differs between paths");
        }
        outs.into_iter().next().unwrap()
    }

    fn token(text: &str) -> V3Token {
        all_ways::<V3Token>(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn numbers_as_strings_and_empty_values() {
        assert_eq!(token(r#"{"ttl": "42"}"#).ttl, Some(42));
        assert_eq!(token(r#"{"ttl": " 42 "}"#).ttl, Some(42));
        assert_eq!(token(r#"{"ttl": 42}"#).ttl, Some(42));
        assert_eq!(token(r#"{"ttl": -7}"#).ttl, Some(-7));
        assert_eq!(token(r#"{"ttl": 2.9}"#).ttl, Some(2));
        assert_eq!(token(r#"{"ttl": 18446744073709551615}"#).ttl, Some(i64::MAX));
        assert_eq!(token(r#"{"ttl": ""}"#).ttl, None);
        assert_eq!(token(r#"{"ttl": "   "}"#).ttl, None);
        assert_eq!(token(r#"{"ttl": null}"#).ttl, None);
        assert_eq!(token(r#"{}"#).ttl, None);
    }

    #[test]
    fn booleans_as_strings() {
        assert_eq!(token(r#"{"expired": "true"}"#).expired, Some(true));
        assert_eq!(token(r#"{"expired": " FALSE "}"#).expired, Some(false));
        assert_eq!(token(r#"{"expired": "True"}"#).expired, Some(true));
        assert_eq!(token(r#"{"expired": true}"#).expired, Some(true));
        assert_eq!(token(r#"{"expired": ""}"#).expired, None);
        assert_eq!(token(r#"{"expired": null}"#).expired, None);
    }

    #[test]
    fn strings_take_numbers_booleans_and_json_text() {
        let id = |v: &str| token(&format!(r#"{{"id": {v}}}"#)).id;
        assert_eq!(id(r#""token-abc""#).as_deref(), Some("token-abc"));
        assert_eq!(id(r#""tab\tand \"quotes\"""#).as_deref(), Some("tab\tand \"quotes\""));
        assert_eq!(id(r#""""#).as_deref(), Some(""));
        assert_eq!(id("null"), None);
        assert_eq!(id("42").as_deref(), Some("42"));
        assert_eq!(id("-42").as_deref(), Some("-42"));
        assert_eq!(id("1.5").as_deref(), Some("1.5"));
        assert_eq!(id("1e3").as_deref(), Some("1000.0"));
        assert_eq!(id("true").as_deref(), Some("true"));
        assert_eq!(id("[1, \"a\"]").as_deref(), Some(r#"[1,"a"]"#));
        assert_eq!(
            id(r#"{"b": 1, "a": {"c": null}}"#).as_deref(),
            Some(r#"{"b":1,"a":{"c":null}}"#)
        );
    }

    #[test]
    fn error_texts_are_kept() {
        let err = |text: &str| all_ways::<V3Token>(text).unwrap_err();
        assert_eq!(err(r#"{"ttl": "soon"}"#), r#"expected a number, got "soon""#);
        assert_eq!(err(r#"{"ttl": " 4 2 "}"#), r#"expected a number, got " 4 2 ""#);
        assert_eq!(err(r#"{"ttl": true}"#), "expected a number, got true");
        assert_eq!(err(r#"{"ttl": [1]}"#), "expected a number, got [1]");
        assert_eq!(err(r#"{"ttl": {"a": 1}}"#), r#"expected a number, got {"a":1}"#);
        assert_eq!(err(r#"{"expired": "maybe"}"#), r#"expected true or false, got "maybe""#);
        assert_eq!(err(r#"{"expired": 1}"#), "expected true or false, got 1");
        assert_eq!(err(r#"{"expired": 1.5}"#), "expected true or false, got 1.5");
        assert_eq!(err(r#"{"expired": [true]}"#), "expected true or false, got [true]");
        // Not an object at all, as with the derived impl.
        assert_eq!(err(r#"[1, 2]"#), "invalid type: sequence, expected struct V3Token");
        assert_eq!(
            err(r#""token""#),
            r#"invalid type: string "token", expected struct V3Token"#
        );
        assert_eq!(err("null"), "invalid type: null, expected struct V3Token");
        // A named field of a nested type with the wrong shape.
        assert!(err(r#"{"labels": {"a": 1}}"#).starts_with("invalid type: integer `1`, expected a string"));
    }

    #[test]
    fn floats_are_lenient() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct F {
            #[serde(default, deserialize_with = "crate::de::opt_f64")]
            x: Option<f64>,
        }
        let x = |v: &str| all_ways::<F>(&format!(r#"{{"x": {v}}}"#)).map(|f| f.x);
        assert_eq!(x("1.5"), Ok(Some(1.5)));
        assert_eq!(x("2"), Ok(Some(2.0)));
        assert_eq!(x(r#"" 1.5 ""#), Ok(Some(1.5)));
        assert_eq!(x(r#""""#), Ok(None));
        assert_eq!(x("null"), Ok(None));
        assert_eq!(x(r#""fast""#), Err(r#"expected a number, got "fast""#.to_string()));
        assert_eq!(x("false"), Err("expected a number, got false".to_string()));
    }

    #[test]
    fn a_status_answer_where_an_object_is_expected_is_none() {
        let user = |text: &str| all_ways::<User>(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(user(r#"{"status": "Success"}"#).status, None);
        assert_eq!(user(r#"{"status": null}"#).status, None);
        assert_eq!(user(r#"{"status": 3}"#).status, None);
        assert_eq!(user(r#"{"status": true}"#).status, None);
        assert_eq!(user(r#"{"status": [{"a": [1]}, 2], "username": "x"}"#).status, None);
        assert_eq!(
            user(r#"{"status": [{"a": [1]}, 2], "username": "x"}"#)
                .username
                .as_deref(),
            Some("x")
        );
        let s = user(r#"{"status": {"conditions": [{"type": "Ready", "status": "True"}], "phase": "on"}}"#)
            .status
            .unwrap();
        assert_eq!(s.conditions.unwrap()[0].type_.as_deref(), Some("Ready"));
        assert_eq!(s.extra["phase"], json!("on"));
        // An object of the wrong shape is still an error.
        assert!(all_ways::<User>(r#"{"status": {"conditions": 5}}"#).is_err());
    }

    #[test]
    fn unknown_fields_are_kept_at_every_depth() {
        let text = r#"{"metadata": {"name": "u-1", "newMeta": {"deep": [1, {"x": null}]}},
            "status": {"conditions": [{"type": "Ready", "extraCond": "c"}], "extraStatus": 1},
            "futureObject": {"a": {"b": "c"}}, "futureList": [1, "two"], "futureNull": null,
            "escaped\u0041key": "e"}"#;
        let u = all_ways::<User>(text).unwrap();
        assert_eq!(u.extra["futureObject"], json!({"a": {"b": "c"}}));
        assert_eq!(u.extra["futureList"], json!([1, "two"]));
        assert_eq!(u.extra["futureNull"], Value::Null);
        assert_eq!(u.extra["escapedAkey"], json!("e"));
        let m = u.metadata.as_ref().unwrap();
        assert_eq!(m.extra["newMeta"], json!({"deep": [1, {"x": null}]}));
        let s = u.status.as_ref().unwrap();
        assert_eq!(s.extra["extraStatus"], json!(1));
        assert_eq!(s.conditions.as_ref().unwrap()[0].extra["extraCond"], json!("c"));
        // And they are written back.
        let wire: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_value(&u).unwrap(), wire);
    }

    #[test]
    fn escaped_keys_match_named_fields() {
        // `\u006e` is `n`: the key is not borrowed from the input but still names the field.
        let u = all_ways::<User>(r#"{"user\u006eame": "alice"}"#).unwrap();
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert!(u.extra.is_empty());
    }

    #[test]
    fn the_last_of_duplicate_keys_wins() {
        let u = all_ways::<User>(
            r#"{"username": "a", "username": "b", "x": 1, "x": 2, "enabled": "true", "enabled": null}"#,
        )
        .unwrap();
        assert_eq!(u.username.as_deref(), Some("b"));
        assert_eq!(u.extra["x"], json!(2));
        assert_eq!(u.enabled, None);
    }

    #[test]
    fn a_page_of_users_decodes_as_before() {
        let text = r#"{"apiVersion": "management.cattle.io/v3", "kind": "UserList",
            "metadata": {"continue": "abc", "resourceVersion": "12"},
            "items": [{"apiVersion": "management.cattle.io/v3", "kind": "User", "metadata": {"name": "u-1", "labels": {"a": "b"}},
                       "username": "alice", "principalIds": ["local://u-1"], "enabled": true}]}"#;
        let page = all_ways::<UserList>(text).unwrap();
        let user = &page.items.as_ref().unwrap()[0];
        assert_eq!(user.username.as_deref(), Some("alice"));
        assert_eq!(user.principal_ids.as_deref(), Some(&["local://u-1".to_string()][..]));
        assert_eq!(page.metadata.as_ref().unwrap().continue_.as_deref(), Some("abc"));
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    /// The helpers as they were before they became visitors (through a `Value`): the new ones must agree on
    /// every input, result and error text alike.
    mod before {
        use serde::de::{Deserialize, Deserializer, Error};
        use serde_json::Value;

        pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
            Ok(match Option::<Value>::deserialize(d)? {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(other) => Some(other.to_string()),
            })
        }
        pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            Ok(match Option::<Value>::deserialize(d)? {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => match n.as_i64() {
                    Some(i) => Some(i),
                    None => n.as_f64().map(|f| f as i64),
                },
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(
                    s.trim()
                        .parse()
                        .map_err(|_| D::Error::custom(format!("expected a number, got {s:?}")))?,
                ),
                Some(other) => return Err(D::Error::custom(format!("expected a number, got {other}"))),
            })
        }
        pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
            Ok(match Option::<Value>::deserialize(d)? {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => Some(
                    s.trim()
                        .parse()
                        .map_err(|_| D::Error::custom(format!("expected a number, got {s:?}")))?,
                ),
                Some(other) => return Err(D::Error::custom(format!("expected a number, got {other}"))),
            })
        }
        pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
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
    }

    #[test]
    fn the_visitors_agree_with_the_value_based_helpers() {
        macro_rules! both {
            ($new:path, $old:path, $t:ty, $input:expr) => {{
                let v: Value = serde_json::from_str($input).unwrap();
                let mut de = serde_json::Deserializer::from_str($input);
                let new: Result<Option<$t>, String> = $new(&mut de).map_err(|e| e.to_string());
                let old: Result<Option<$t>, String> = $old(&v).map_err(|e| e.to_string());
                let new_ref: Result<Option<$t>, String> = $new(&v).map_err(|e| e.to_string());
                let new = new.map_err(|e| e.split(" at line ").next().unwrap().to_string());
                assert_eq!(new, old, "{} on {}", stringify!($new), $input);
                assert_eq!(new_ref, old, "{} on {} (from a Value)", stringify!($new), $input);
            }};
        }
        let inputs = [
            "null",
            "true",
            "false",
            "0",
            "42",
            "-42",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "-9223372036854775808",
            "1.5",
            "-0.0",
            "1e300",
            "2.5e-3",
            "\"\"",
            "\"  \"",
            "\"42\"",
            "\" 42 \"",
            "\"-3\"",
            "\"1.5\"",
            "\"true\"",
            "\" TRUE \"",
            "\"False\"",
            "\"yes\"",
            "\"x\\ny\"",
            "[]",
            "[1, 2]",
            "[\"a\", {\"b\": null}]",
            "{}",
            "{\"z\": 1, \"a\": [true]}",
        ];
        for input in inputs {
            both!(super::opt_string, before::opt_string, String, input);
            both!(super::opt_i64, before::opt_i64, i64, input);
            both!(super::opt_f64, before::opt_f64, f64, input);
            both!(super::opt_bool, before::opt_bool, bool, input);
        }
    }
}
