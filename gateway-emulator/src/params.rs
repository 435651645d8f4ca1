//! Request parameters: JSON or form bodies, keys matched case-insensitively (as ASP.NET binds them).

use crate::money::{AmountError, Minor};
use serde_json::Value;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A request that could not be read; the message names the problem or the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

impl ParamError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Which body encoding the `Content-Type` header announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json` (or `text/json`, `*+json`).
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// No header: sniffed from the body.
    Missing,
    /// Anything else: rejected unless the body is empty.
    Other,
}

impl BodyKind {
    /// Classifies a `Content-Type` header value.
    pub fn from_header(ct: Option<&str>) -> Self {
        let Some(ct) = ct else { return Self::Missing };
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime.is_empty() {
            Self::Missing
        } else if mime == "application/json" || mime == "text/json" || mime.ends_with("+json") {
            Self::Json
        } else if mime == "application/x-www-form-urlencoded" {
            Self::Form
        } else {
            Self::Other
        }
    }
}

/// Parsed request fields; keys are stored lower-cased.
#[derive(Debug, Clone, Default)]
pub struct Params {
    fields: Vec<(String, Value)>,
}

impl Params {
    /// Parses a body of the given kind.
    pub fn parse(kind: BodyKind, body: &[u8]) -> Result<Self, ParamError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(ParamError::new("Request body is too large"));
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| ParamError::new("Request body is not valid UTF-8"))?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Ok(Self::default());
        }
        match kind {
            BodyKind::Json => Self::from_json(trimmed),
            BodyKind::Form => Self::from_form(trimmed),
            BodyKind::Missing if trimmed.starts_with('{') => Self::from_json(trimmed),
            BodyKind::Missing if trimmed.contains('=') => Self::from_form(trimmed),
            BodyKind::Missing | BodyKind::Other => Err(ParamError::new(
                "Unsupported Content-Type: send application/json or application/x-www-form-urlencoded",
            )),
        }
    }

    fn from_json(text: &str) -> Result<Self, ParamError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| ParamError::new(format!("Malformed JSON body: {e}")))?;
        match v {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (k, v) in map {
                    let lk = k.to_ascii_lowercase();
                    if !fields.iter().any(|(f, _)| *f == lk) {
                        fields.push((lk, v));
                    }
                }
                Ok(Self { fields })
            }
            _ => Err(ParamError::new("JSON body must be an object")),
        }
    }

    fn from_form(text: &str) -> Result<Self, ParamError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text)
            .map_err(|e| ParamError::new(format!("Malformed form body: {e}")))?;
        let mut fields: Vec<(String, Value)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let lk = k.to_ascii_lowercase();
            if !fields.iter().any(|(f, _)| *f == lk) {
                fields.push((lk, Value::String(v)));
            }
        }
        Ok(Self { fields })
    }

    /// Builds parameters from `(key, value)` pairs (tests and internal calls).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        Self {
            fields: pairs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        }
    }

    /// Raw value of a key, any casing; JSON `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// Optional text field; numbers are accepted and turned into text; empty text counts as absent.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ParamError::new(format!("Invalid {key} value"))),
        }
    }

    /// Required text field.
    pub fn req_str(&self, key: &str) -> Result<String, ParamError> {
        self.opt_str(key)?
            .ok_or_else(|| ParamError::new(format!("{key} is required")))
    }

    /// Optional integer; a fraction is truncated as the real API rounds it silently.
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, ParamError> {
        let bad = || ParamError::new(format!("Invalid {key} value"));
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => n
                    .as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e15)
                    .map(|f| Some(f as i64))
                    .ok_or_else(bad),
            },
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => {
                let t = s.trim();
                if let Ok(i) = t.parse::<i64>() {
                    return Ok(Some(i));
                }
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && f.abs() < 9.0e15)
                    .map(|f| Some(f as i64))
                    .ok_or_else(bad)
            }
            Some(_) => Err(bad()),
        }
    }

    /// Required integer.
    pub fn req_i64(&self, key: &str) -> Result<i64, ParamError> {
        self.opt_i64(key)?
            .ok_or_else(|| ParamError::new(format!("{key} is required")))
    }

    /// Optional boolean: `true`/`false`, `1`/`0`, any casing.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::Number(n)) => Ok(Some(n.as_f64().is_some_and(|f| f != 0.0))),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "true" | "1" | "yes" | "on" => Ok(Some(true)),
                "false" | "0" | "no" | "off" => Ok(Some(false)),
                _ => Err(ParamError::new(format!("Invalid {key} value"))),
            },
            Some(_) => Err(ParamError::new(format!("Invalid {key} value"))),
        }
    }

    /// Optional amount in roubles (number or text, ≤ 2 decimals, > 0).
    pub fn opt_amount(&self, key: &str) -> Result<Option<Minor>, ParamError> {
        let res = match self.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => Minor::parse_decimal(s),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => i
                    .checked_mul(100)
                    .ok_or(AmountError::TooLarge)
                    .and_then(|m| {
                        if m <= 0 {
                            Err(AmountError::NotPositive)
                        } else if m > crate::money::MAX_MINOR {
                            Err(AmountError::TooLarge)
                        } else {
                            Ok(Minor(m))
                        }
                    }),
                None => n
                    .as_f64()
                    .ok_or(AmountError::NotANumber)
                    .and_then(Minor::from_f64),
            },
            Some(_) => Err(AmountError::NotANumber),
        };
        res.map(Some).map_err(|e| {
            ParamError::new(match e {
                AmountError::TooManyDecimals => {
                    format!("Invalid {key} value: at most 2 decimals are allowed")
                }
                AmountError::NotPositive => format!("Invalid {key} value: must be greater than 0"),
                AmountError::TooLarge => format!("Invalid {key} value: too large"),
                AmountError::NotANumber => format!("Invalid {key} value"),
            })
        })
    }

    /// Required amount.
    pub fn req_amount(&self, key: &str) -> Result<Minor, ParamError> {
        self.opt_amount(key)?
            .ok_or_else(|| ParamError::new(format!("{key} is required")))
    }

    /// `JsonData`: an object is serialised, text is kept as sent.
    pub fn json_data(&self) -> Result<Option<String>, ParamError> {
        self.opt_json("JsonData")
    }

    /// Optional JSON field: an object or array is serialised, text is kept as sent.
    pub fn opt_json(&self, key: &str) -> Result<Option<String>, ParamError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v @ (Value::Object(_) | Value::Array(_))) => Ok(Some(v.to_string())),
            Some(_) => Err(ParamError::new(format!("Invalid {key} value"))),
        }
    }
}

/// A request body type whose fields are read from [`Params`] and shown in the OpenAPI schema
/// from one declaration, so the document names exactly the keys the operation reads:
///
/// ```ignore
/// request! {
///     /// Body of `/payments/void`.
///     pub struct Void {
///         /// The payment.
///         transaction_id: i64 = req_i64("TransactionId"),
///     }
/// }
/// ```
///
/// makes `Void` (with `ToSchema`, the field documented as `TransactionId`) and `Void::parse`,
/// which reads the fields in declaration order with the [`Params`] method named, so the first
/// bad field is the one reported.
macro_rules! request {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident: $ty:ty = $read:ident($key:literal),
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, utoipa::ToSchema)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                #[serde(rename = $key)]
                pub $field: $ty,
            )*
        }

        impl $name {
            /// Reads the fields in declaration order.
            pub fn parse(p: &$crate::params::Params) -> Result<Self, $crate::params::ParamError> {
                Ok(Self {
                    $($field: p.$read($key)?,)*
                })
            }
        }
    };
}
pub(crate) use request;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_in_json_and_form() {
        let j = Params::parse(
            BodyKind::Json,
            br#"{"amount": 10.5, "INVOICEID": 42, "accountId":"u1"}"#,
        )
        .unwrap();
        assert_eq!(j.req_amount("Amount").unwrap(), Minor(1050));
        assert_eq!(j.req_str("InvoiceId").unwrap(), "42");
        assert_eq!(j.req_str("AccountId").unwrap(), "u1");
        let f = Params::parse(
            BodyKind::Form,
            b"Amount=10.50&invoiceid=a%20b&SaveCard=true",
        )
        .unwrap();
        assert_eq!(f.req_amount("amount").unwrap(), Minor(1050));
        assert_eq!(f.req_str("InvoiceId").unwrap(), "a b");
        assert_eq!(f.opt_bool("savecard").unwrap(), Some(true));
    }

    #[test]
    fn rejects_bad_bodies() {
        assert!(Params::parse(BodyKind::Json, b"[1]").is_err());
        assert!(Params::parse(BodyKind::Json, b"{").is_err());
        assert!(Params::parse(BodyKind::Json, &[0xff, 0xfe]).is_err());
        assert!(Params::parse(BodyKind::Other, b"Amount=1").is_err());
        assert!(Params::parse(BodyKind::Other, b"").is_ok());
        let p = Params::parse(BodyKind::Json, br#"{"Amount": 1.234}"#).unwrap();
        assert!(p.req_amount("Amount").unwrap_err().0.contains("Amount"));
        let p = Params::parse(BodyKind::Json, br#"{"Amount": -3}"#).unwrap();
        assert!(p.req_amount("Amount").is_err());
        let p = Params::parse(BodyKind::Json, br#"{}"#).unwrap();
        assert_eq!(p.req_amount("Amount").unwrap_err().0, "Amount is required");
    }

    #[test]
    fn json_data_becomes_text() {
        let p = Params::parse(BodyKind::Json, br#"{"JsonData": {"a": 1}}"#).unwrap();
        assert_eq!(p.json_data().unwrap().as_deref(), Some(r#"{"a":1}"#));
    }
}
