//! The CloudPayments wire model: one request type and one response type per call the client
//! makes, the `{Success, Message, Model}` envelope, the Transaction and the 3-D Secure models.
//!
//! Only shapes live here (keys PascalCase as the docs write them; read through
//! [`super::json`], which also matches them ignoring case, as the gateway does). What the shapes
//! mean for billing, and the conversions to and from domain types, are in `transformers`; how
//! they travel, in `client`. Requests are JSON, as the docs write them; an amount is written as
//! the exact decimal number (`"Amount":299.00`, through serde_json's `RawValue`), never through
//! binary floating point.
//!
//! Request types borrow their secrets (cryptogram, token, PaRes) and derive no `Debug`, so a
//! request can be sent but not printed.

use billing_domain::CardToken;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A CloudPayments call: its path and the type its answer is read into.
pub(crate) trait Call: Serialize {
    const PATH: &'static str;
    type Response: DeserializeOwned;
}

macro_rules! calls {
    ($($(#[$doc:meta])* $path:literal: $request:ty => $response:ident = $model:ty;)*) => {$(
        impl Call for $request {
            const PATH: &'static str = $path;
            type Response = $response;
        }
        $(#[$doc])*
        pub(crate) type $response = Envelope<$model>;
    )*};
}

calls! {
    /// Approved or declined Transaction, a 3-D Secure challenge, or a bare `Message`.
    "/payments/cards/charge": CardsChargeRequest<'_> => CardsChargeResponse = PaymentModel;
    /// The approved or declined shape; a second challenge would be a [`PaymentModel::ThreeDs`].
    "/payments/cards/post3ds": Post3dsRequest<'_> => Post3dsResponse = PaymentModel;
    /// Approved or declined Transaction (no 3-D Secure branch), or a bare `Message`.
    "/payments/tokens/charge": TokensChargeRequest<'_> => TokensChargeResponse = PaymentModel;
    /// A Transaction in any state (`Success` false for non-success states), or
    /// `{"Success":false,"Message":"Not found"}`.
    "/payments/find": PaymentsFindRequest => PaymentsFindResponse = Transaction;
    /// One transaction by id (any state), or a `Message` when the terminal has none.
    "/payments/get": PaymentsGetRequest => PaymentsGetResponse = Transaction;
}

/// `/payments/cards/charge`: one-stage payment by card cryptogram (docs §2.1).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CardsChargeRequest<'a> {
    pub amount: Amount,
    pub currency: &'static str,
    pub ip_address: &'a str,
    pub name: &'a str,
    pub card_cryptogram_packet: &'a str,
    pub invoice_id: String,
    pub description: &'a str,
    pub account_id: String,
    pub email: &'a str,
    pub save_card: bool,
}

/// `/payments/cards/post3ds`: finishes a 3-D Secure payment (docs §2.2).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Post3dsRequest<'a> {
    pub transaction_id: i64,
    pub pa_res: &'a str,
}

/// `/payments/tokens/charge`: one-stage payment by saved-card token (docs §2.3).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TokensChargeRequest<'a> {
    pub amount: Amount,
    pub currency: &'static str,
    pub account_id: String,
    pub token: &'a str,
    /// 0 = merchant-initiated.
    pub tr_initiator_code: u8,
    /// 1 = scheduled (sent with `TrInitiatorCode` 0).
    pub payment_scheduled: u8,
    pub invoice_id: String,
    pub description: &'a str,
    pub email: &'a str,
}

/// `/payments/find`: the latest transaction with this `InvoiceId` (docs §2.5).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PaymentsFindRequest {
    pub invoice_id: String,
}

/// `/payments/get`: one transaction of this terminal by its id (docs §2.5).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PaymentsGetRequest {
    pub transaction_id: i64,
}

/// Every answer: `Success` says whether the API request worked, not whether money moved (a
/// decline is `Success:false` with a Transaction). `Model` is absent when there is nothing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Envelope<M> {
    pub success: bool,
    pub message: Option<String>,
    pub model: Option<M>,
}

/// The `Model` of a payment call, told apart by shape as the docs' clients do (§2.1): a
/// 3-D Secure challenge has an `AcsUrl` and **no `ReasonCode` key**; anything else is read as a
/// Transaction.
/// One per answer, read and dropped at once: boxing the larger variant would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum PaymentModel {
    Transaction(Transaction),
    ThreeDs(ThreeDsModel),
}

impl<'de> Deserialize<'de> for PaymentModel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let has = |key: &str| {
            value
                .as_object()
                .is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(key)))
        };
        let three_ds = has("AcsUrl") && !has("ReasonCode");
        let lenient = super::json::Lenient(value);
        let model = if three_ds {
            ThreeDsModel::deserialize(lenient).map(PaymentModel::ThreeDs)
        } else {
            Transaction::deserialize(lenient).map(PaymentModel::Transaction)
        };
        model.map_err(de::Error::custom)
    }
}

/// A payment as the gateway reports it (docs §4); only the fields billing reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Transaction {
    pub transaction_id: i64,
    pub amount: Amount,
    pub currency: Option<String>,
    pub status: TransactionStatus,
    pub reason_code: Option<i32>,
    pub reason: Option<String>,
    pub invoice_id: Option<String>,
    pub account_id: Option<String>,
    /// Masked in `Debug` by its type.
    pub token: Option<CardToken>,
    pub card_first_six: Option<String>,
    pub card_last_four: Option<String>,
    pub card_exp_date: Option<String>,
    pub card_type: Option<String>,
}

/// The 3-D Secure challenge of a charge (docs §3): post `MD` = `TransactionId` and `PaReq` to
/// `AcsUrl`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ThreeDsModel {
    pub transaction_id: i64,
    pub pa_req: String,
    pub acs_url: String,
}

/// `Status` of a Transaction (docs §4). The gateway may add states: those are kept, with their
/// text, as [`TransactionStatus::Other`] and handled explicitly by the callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransactionStatus {
    AwaitingAuthentication,
    Authorized,
    Completed,
    Cancelled,
    Declined,
    Other(String),
}

impl TransactionStatus {
    const KNOWN: [(&'static str, Self); 5] = [
        ("AwaitingAuthentication", Self::AwaitingAuthentication),
        ("Authorized", Self::Authorized),
        ("Completed", Self::Completed),
        ("Cancelled", Self::Cancelled),
        ("Declined", Self::Declined),
    ];

    /// Case-insensitive, like the rest of the gateway's vocabulary.
    pub fn parse(text: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map_or_else(|| Self::Other(text.to_string()), |(_, status)| status)
    }

    /// The docs' spelling; billing stores and compares it (`"Completed"`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::AwaitingAuthentication => "AwaitingAuthentication",
            Self::Authorized => "Authorized",
            Self::Completed => "Completed",
            Self::Cancelled => "Cancelled",
            Self::Declined => "Declined",
            Self::Other(text) => text,
        }
    }
}

impl<'de> Deserialize<'de> for TransactionStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self::parse(&s))
    }
}

/// A decimal amount in major units, kept as the exact text of the JSON number (`299`,
/// `299.00`); `transformers` turns it into minor units of the transaction's currency. Written as
/// that number, unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Amount(pub String);

impl Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The text comes from `decimal_from_minor` (digits and one dot): a valid JSON number.
        serde_json::value::RawValue::from_string(self.0.clone())
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal amount as the text of its number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
        Ok(Amount(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
        Ok(Amount(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
        Ok(Amount(v.to_string()))
    }

    /// Reached only when a body is read by plain serde_json instead of `json::from_body`: the
    /// number has already been rounded to binary, so refuse rather than guess.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
        Err(E::custom(format!(
            "amount {v} arrived as binary floating point; read gateway bodies with \
             gateway::json::from_body, which keeps numbers as their decimal text"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::from_body;
    use super::*;

    const APPROVED: &str = r#"{"Success":true,"Message":null,"Model":{"TransactionId":5,"Amount":299.00,"Currency":"RUB","Status":"Completed","StatusCode":3,"ReasonCode":0,"Reason":"Approved","Token":"tk_0123456789abcdef0123456789abc","CardFirstSix":"400000","CardLastFour":"3055","CardExpDate":"12/30","CardType":"Visa","IpLatitude":55.75,"JsonData":"{\"a\": 1.5}"}}"#;

    fn transaction(body: &str) -> Transaction {
        match from_body::<CardsChargeResponse>(body.as_bytes())
            .unwrap()
            .model
        {
            Some(PaymentModel::Transaction(t)) => t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_approved_shape_reads_with_the_amount_as_written() {
        let t = transaction(APPROVED);
        assert_eq!(t.transaction_id, 5);
        assert_eq!(t.amount, Amount("299.00".into()));
        assert_eq!(t.status, TransactionStatus::Completed);
        assert_eq!(t.reason_code, Some(0));
        assert_eq!(t.token.as_ref().map(|t| t.expose().len()), Some(32));
        assert!(!format!("{t:?}").contains("0123456789abcdef"), "{t:?}");
        for (json, text) in [
            ("299", "299"),
            ("299.00", "299.00"),
            ("0.01", "0.01"),
            ("1000000.50", "1000000.50"),
            ("90071992547409.93", "90071992547409.93"),
        ] {
            let body = APPROVED.replace("299.00", json);
            assert_eq!(transaction(&body).amount, Amount(text.into()));
        }
    }

    #[test]
    fn case_variant_keys_and_statuses_read_the_same() {
        let body = r#"{"success":false,"MESSAGE":"","model":{"transactionid":6,"AMOUNT":10,"status":"declined","reasonCode":5051,"reason":"InsufficientFunds"}}"#;
        let env = from_body::<CardsChargeResponse>(body.as_bytes()).unwrap();
        assert!(!env.success);
        assert_eq!(env.message.as_deref(), Some(""));
        let Some(PaymentModel::Transaction(t)) = env.model else {
            panic!("{:?}", env.model)
        };
        assert_eq!(
            (
                t.transaction_id,
                t.amount.0.as_str(),
                t.status,
                t.reason_code
            ),
            (6, "10", TransactionStatus::Declined, Some(5051))
        );
    }

    #[test]
    fn a_three_ds_challenge_is_told_apart_by_shape() {
        let body = r#"{"Success":false,"Message":null,"Model":{"TransactionId":7,"PaReq":"+/eyJ9","GoReq":null,"AcsUrl":"http://emu/acs","ThreeDsCallbackId":"ab","IFrameIsAllowed":true,"FrameWidth":500}}"#;
        match from_body::<CardsChargeResponse>(body.as_bytes())
            .unwrap()
            .model
        {
            Some(PaymentModel::ThreeDs(m)) => {
                assert_eq!(
                    (m.transaction_id, m.pa_req.as_str(), m.acs_url.as_str()),
                    (7, "+/eyJ9", "http://emu/acs")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_status_is_kept_with_its_text() {
        let t = transaction(&APPROVED.replace("\"Completed\"", "\"Refunding\""));
        assert_eq!(t.status, TransactionStatus::Other("Refunding".into()));
        assert_eq!(t.status.as_str(), "Refunding");
        assert_eq!(
            TransactionStatus::parse("AWAITINGAUTHENTICATION").as_str(),
            "AwaitingAuthentication"
        );
    }

    #[test]
    fn envelopes_without_a_model_and_not_found() {
        let env = from_body::<PaymentsFindResponse>(br#"{"Success":false,"Message":"Not found"}"#)
            .unwrap();
        assert!(!env.success && env.model.is_none());
        assert_eq!(env.message.as_deref(), Some("Not found"));
        assert!(from_body::<PaymentsFindResponse>(br#"{"Message":"x"}"#).is_err());
    }

    #[test]
    fn plain_serde_json_cannot_sneak_a_float_into_an_amount() {
        let err = serde_json::from_str::<Amount>("299.5").unwrap_err();
        assert!(err.to_string().contains("binary floating point"), "{err}");
        assert_eq!(serde_json::from_str::<Amount>("299").unwrap().0, "299");
    }

    #[test]
    fn requests_are_pascal_case_json_with_the_exact_decimal() {
        let body = serde_json::to_string(&TokensChargeRequest {
            amount: Amount("1000000.50".into()),
            currency: "RUB",
            account_id: "acc".into(),
            token: "tk_1",
            tr_initiator_code: 0,
            payment_scheduled: 1,
            invoice_id: "inv".into(),
            description: "Подписка",
            email: "a@b.c",
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"Amount":1000000.50,"Currency":"RUB","AccountId":"acc","Token":"tk_1","TrInitiatorCode":0,"PaymentScheduled":1,"InvoiceId":"inv","Description":"Подписка","Email":"a@b.c"}"#
        );
        let body = serde_json::to_string(&Post3dsRequest {
            transaction_id: 7,
            pa_res: "a+b/c=",
        })
        .unwrap();
        assert_eq!(body, r#"{"TransactionId":7,"PaRes":"a+b/c="}"#);
    }
}
