//! Reading the gateway's JSON by the gateway's rules, without floating point.
//!
//! serde_json (without the workspace-wide `arbitrary_precision` feature) hands a number with a
//! fraction such as `299.00` to serde only as an `f64`, so an exact amount cannot be read from
//! it. [`from_body`] therefore first turns every number token of the body into a string holding
//! its exact text ([`numbers_as_text`]), then deserializes through [`Lenient`], which
//! - reads integer fields (`TransactionId`, `ReasonCode` …) from that text, exactly;
//! - matches object keys to the struct's PascalCase field names ignoring ASCII case, as the
//!   gateway (ASP.NET) binds them, so `transactionId` or `TRANSACTIONID` read as `TransactionId`.
//!
//! Decimal fields keep the text ([`super::wire::Amount`]) and become minor units in
//! `transformers`.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// Why a 2xx body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("malformed JSON number at byte {0}")]
    Number(usize),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// Parses a gateway response body into `T` (see the module doc).
pub(crate) fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    let value: Value = serde_json::from_slice(&numbers_as_text(body)?)?;
    Ok(T::deserialize(Lenient(value))?)
}

/// Rewrites each JSON number token outside strings as a string of the same text: `{"A":2.50}` →
/// `{"A":"2.50"}`. Checks each token against the JSON number grammar, since serde_json no
/// longer sees it as a number. Everything else is copied as is and validated by serde_json.
pub(crate) fn numbers_as_text(body: &[u8]) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let end = string_end(body, i);
                out.extend_from_slice(&body[i..end]);
                i = end;
            }
            b'-' | b'0'..=b'9' => {
                let end = body[i..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(body.len(), |n| i + n);
                if !is_json_number(&body[i..end]) {
                    return Err(BodyError::Number(i));
                }
                out.push(b'"');
                out.extend_from_slice(&body[i..end]);
                out.push(b'"');
                i = end;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Index just past the string starting at `start` (a `"`), or the end of the body if it is
/// unterminated (serde_json then reports it). Multi-byte UTF-8 never contains `"` or `\`.
fn string_end(body: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    body.len()
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_json_number(t: &[u8]) -> bool {
    fn digits(t: &[u8]) -> usize {
        t.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut i = usize::from(t.first() == Some(&b'-'));
    match digits(&t[i..]) {
        0 => return false,
        n if n > 1 && t[i] == b'0' => return false,
        n => i += n,
    }
    if t.get(i) == Some(&b'.') {
        match digits(&t[i + 1..]) {
            0 => return false,
            n => i += 1 + n,
        }
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        match digits(&t[i..]) {
            0 => return false,
            n => i += n,
        }
    }
    i == t.len()
}

/// A [`Value`] (after [`numbers_as_text`]) deserialized by the gateway's rules: integers from
/// their text, struct keys matched ignoring ASCII case.
pub(crate) struct Lenient(pub(crate) Value);

/// Every integer width reads like `i64` ([`integer`]); the visitor checks the range.
macro_rules! integers_from_text {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.deserialize_i64(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Lenient {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map, &[])),
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map, fields)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Lenient(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::String(text) => integer(&text, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    integers_from_text! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_u8 deserialize_u16
        deserialize_u32 deserialize_u64
    }

    forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map identifier
    }
}

/// An integer field from the text of its number: visited as `u64` or `i64`, so the field's own
/// type checks the range. A fraction (`5.0`) or an exponent is not an integer.
fn integer<'de, V: Visitor<'de>>(text: &str, visitor: V) -> Result<V::Value, serde_json::Error> {
    if let Ok(n) = text.parse::<u64>() {
        visitor.visit_u64(n)
    } else if let Ok(n) = text.parse::<i64>() {
        visitor.visit_i64(n)
    } else {
        Err(de::Error::invalid_value(
            de::Unexpected::Str(text),
            &"an integer",
        ))
    }
}

/// An object's entries, keys renamed to the matching field name (ignoring ASCII case).
struct Fields {
    entries: serde_json::map::IntoIter,
    fields: &'static [&'static str],
    value: Option<Value>,
}

impl Fields {
    fn new(map: Map<String, Value>, fields: &'static [&'static str]) -> Self {
        Self {
            entries: map.into_iter(),
            fields,
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for Fields {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let key = match self.fields.iter().find(|f| f.eq_ignore_ascii_case(&key)) {
            Some(field) => (*field).to_string(),
            None => key,
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a map value was asked for before its key"))?;
        seed.deserialize(Lenient(value))
    }
}

/// An array's items, each read by the same rules.
struct Items(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for Items {
    type Error = serde_json::Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(Lenient(item)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn text(body: &str) -> String {
        String::from_utf8(numbers_as_text(body.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn numbers_become_their_exact_text_and_strings_are_untouched() {
        assert_eq!(
            text(r#"{"A":299.00,"B":[-1,0,2.5e-3],"C":"x\"1.5\\","D":true,"E":null}"#),
            r#"{"A":"299.00","B":["-1","0","2.5e-3"],"C":"x\"1.5\\","D":true,"E":null}"#
        );
        assert_eq!(text(" { \"Ы\" : 1 } "), " { \"Ы\" : \"1\" } ");
        for bad in ["01", "1.", "-", "1e", "1.e3", "--1", "1.2.3", "1e+-2"] {
            let body = format!(r#"{{"A":{bad}}}"#);
            assert!(numbers_as_text(body.as_bytes()).is_err(), "{bad}");
        }
        // Not a number token at all: left for serde_json to refuse.
        for bad in [".5", "+1", "NaN", "0x1"] {
            let body = format!(r#"{{"A":{bad}}}"#);
            assert!(from_body::<Value>(body.as_bytes()).is_err(), "{bad}");
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Outer {
        transaction_id: i64,
        reason_code: Option<i32>,
        inner: Option<Inner>,
        #[serde(default)]
        list: Vec<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Inner {
        card_last_four: String,
    }

    #[test]
    fn keys_match_ignoring_case_at_every_level_and_integers_are_exact() {
        let o: Outer = from_body(
            br#"{"transactionId":9007199254740993,"REASONCODE":-5,"inner":{"cardlastfour":"3055"},
                 "List":[{"CARDLASTFOUR":4242}],"Unknown":{"Deep":[1.5]}}"#,
        )
        .unwrap();
        assert_eq!(
            o,
            Outer {
                transaction_id: 9_007_199_254_740_993,
                reason_code: Some(-5),
                inner: Some(Inner {
                    card_last_four: "3055".into()
                }),
                list: vec![Inner {
                    card_last_four: "4242".into()
                }],
            }
        );
        let o: Outer = from_body(br#"{"TransactionId":1,"ReasonCode":null,"Inner":null}"#).unwrap();
        assert_eq!((o.reason_code, o.inner), (None, None));
    }

    #[test]
    fn a_fraction_or_out_of_range_number_is_not_an_integer() {
        assert!(from_body::<Outer>(br#"{"TransactionId":5.0}"#).is_err());
        assert!(from_body::<Outer>(br#"{"TransactionId":1,"ReasonCode":3000000000}"#).is_err());
        assert!(from_body::<Outer>(br#"{"TransactionId":"#).is_err());
    }
}
