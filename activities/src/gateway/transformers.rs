//! Domain ↔ wire, in one place: billing's requests become CloudPayments requests (amounts as
//! exact decimals of the currency), and the gateway's answers become billing's results or typed
//! [`GatewayError`]s, by the response shapes of docs §2.1.
//!
//! Anything in a 2xx answer that billing cannot take at face value (an unknown status on an
//! approval, an amount it cannot represent, a shape that fits no case) is an unknown outcome
//! ([`GatewayError::Unavailable`]): the workflow retries with the same `X-Request-ID` and then
//! asks `/payments/find`, instead of guessing.

use super::wire::{
    Amount, CardsChargeRequest, Envelope, PaymentModel, PaymentsFindRequest, PaymentsFindResponse,
    PaymentsGetResponse, Post3dsRequest, TokensChargeRequest, Transaction, TransactionStatus,
};
use super::GatewayError;
use billing_domain::messages::{
    ChargeResult, CryptogramCharge, FoundPayment, GatewayTransaction, Post3ds, TokenCharge,
};
use billing_domain::money::{decimal_from_minor, minor_from_decimal};
use billing_domain::{Currency, GatewayTransactionId, InvoiceId, Money};

impl<'a> From<&'a CryptogramCharge> for CardsChargeRequest<'a> {
    fn from(c: &'a CryptogramCharge) -> Self {
        Self {
            amount: amount(c.amount),
            currency: c.amount.currency.code(),
            ip_address: &c.payment.payer_ip,
            name: &c.payment.cardholder_name,
            card_cryptogram_packet: c.payment.cryptogram.expose(),
            invoice_id: c.invoice_id.to_string(),
            description: &c.description,
            account_id: c.account_id.to_string(),
            email: &c.payment.email,
            save_card: true,
        }
    }
}

impl<'a> From<&'a TokenCharge> for TokensChargeRequest<'a> {
    /// A scheduled, merchant-initiated renewal.
    fn from(c: &'a TokenCharge) -> Self {
        Self {
            amount: amount(c.amount),
            currency: c.amount.currency.code(),
            account_id: c.account_id.to_string(),
            token: c.token.expose(),
            tr_initiator_code: 0,
            payment_scheduled: 1,
            invoice_id: c.invoice_id.to_string(),
            description: &c.description,
            email: &c.email,
        }
    }
}

impl<'a> From<&'a Post3ds> for Post3dsRequest<'a> {
    fn from(p: &'a Post3ds) -> Self {
        Self {
            transaction_id: p.answer.gateway_transaction_id.0,
            pa_res: p.answer.pa_res.expose(),
        }
    }
}

impl From<InvoiceId> for PaymentsFindRequest {
    fn from(invoice: InvoiceId) -> Self {
        Self {
            invoice_id: invoice.to_string(),
        }
    }
}

/// Minor units → the gateway's decimal major units (`29900` RUB → `299.00`), exactly.
fn amount(m: Money) -> Amount {
    Amount(decimal_from_minor(m.minor, m.currency))
}

fn unknown(path: &str, what: impl std::fmt::Display) -> GatewayError {
    GatewayError::Unavailable(format!("{path}: {what}"))
}

/// The answer of a cryptogram charge: approved, 3-D Secure, declined or rejected.
pub(crate) fn charge_result(
    path: &str,
    env: Envelope<PaymentModel>,
    currency: Currency,
) -> Result<ChargeResult, GatewayError> {
    // The Model decides when there is one: a decline carries its Transaction even if a
    // Message came along. A bare Message is a request the gateway refused to process.
    match (
        env.success,
        env.model,
        env.message.filter(|m| !m.is_empty()),
    ) {
        (true, Some(PaymentModel::Transaction(t)), _) => match &t.status {
            // Only one-stage calls are made, so an approval is `Completed`; `Authorized`
            // (a two-stage hold) or anything else would be misread as paid.
            TransactionStatus::Completed => Ok(ChargeResult::Approved {
                transaction: transaction(path, t, currency)?,
            }),
            other => Err(unknown(
                path,
                format_args!("Success:true with Status `{}`", other.as_str()),
            )),
        },
        (false, Some(PaymentModel::Transaction(t)), _) => match &t.status {
            TransactionStatus::Declined => Err(GatewayError::Declined(Box::new(transaction(
                path, t, currency,
            )?))),
            other => Err(unknown(
                path,
                format_args!("Success:false with Status `{}`", other.as_str()),
            )),
        },
        (false, Some(PaymentModel::ThreeDs(m)), _) => Ok(ChargeResult::ThreeDsRequired {
            gateway_transaction_id: GatewayTransactionId(m.transaction_id),
            acs_url: m.acs_url,
            pa_req: m.pa_req,
        }),
        (true, Some(PaymentModel::ThreeDs(_)), _) => {
            Err(unknown(path, "Success:true with a 3-D Secure challenge"))
        }
        (_, None, Some(message)) => Err(GatewayError::Rejected(message)),
        (success, None, None) => Err(unknown(
            path,
            format_args!("Success:{success} with neither a Model nor a Message"),
        )),
    }
}

/// The answer of a call that cannot ask for 3-D Secure (token charge, post3ds): the final
/// transaction, or declined or rejected.
pub(crate) fn final_transaction(
    path: &str,
    env: Envelope<PaymentModel>,
    currency: Currency,
) -> Result<GatewayTransaction, GatewayError> {
    match charge_result(path, env, currency)? {
        ChargeResult::Approved { transaction } => Ok(transaction),
        // Definitive: the gateway will not finish this payment without a cardholder.
        ChargeResult::ThreeDsRequired { .. } => Err(GatewayError::Rejected(format!(
            "{path} answered with a 3-D Secure challenge"
        ))),
    }
}

/// The answer of `/payments/find`: the latest transaction of `invoice` in any state, or `None`
/// for the documented `Not found`. Find is how an unknown outcome is settled, and `None` lets
/// the workflow void the invoice, so only that exact answer means "nothing charged". Any other
/// refusal is an unknown outcome too (asked again, visibly, until someone looks): not
/// `Rejected`, which would fail the reconciliation for what may be a reworded `Not found`.
pub(crate) fn found(
    path: &str,
    env: PaymentsFindResponse,
    invoice: InvoiceId,
    currency: Currency,
) -> Result<Option<GatewayTransaction>, GatewayError> {
    match (env.model, env.message.filter(|m| !m.is_empty())) {
        (Some(t), _) => {
            let asked = invoice.to_string();
            if let Some(got) = t
                .invoice_id
                .as_deref()
                .filter(|got| !got.eq_ignore_ascii_case(&asked))
            {
                return Err(unknown(
                    path,
                    format_args!("asked for invoice {asked}, got {got}"),
                ));
            }
            transaction(path, t, currency).map(Some)
        }
        (None, Some(m)) if !env.success && m.trim().eq_ignore_ascii_case("not found") => Ok(None),
        (None, message) => Err(unknown(
            path,
            format_args!(
                "Success:{} without a transaction (Message: {message:?})",
                env.success
            ),
        )),
    }
}

/// `/payments/get`: the transaction with the invoice and account it carries; `None` when the
/// terminal has no such transaction.
pub(crate) fn got(
    path: &str,
    env: PaymentsGetResponse,
    currency: Currency,
) -> Result<Option<FoundPayment>, GatewayError> {
    match env.model {
        Some(t) => {
            let invoice_id = t.invoice_id.clone();
            let account_id = t.account_id.clone();
            Ok(Some(FoundPayment {
                transaction: transaction(path, t, currency)?,
                invoice_id,
                account_id,
            }))
        }
        None if !env.success => Ok(None),
        None => Err(unknown(path, "Success:true without a transaction")),
    }
}

/// A wire Transaction as billing records it. The amount is read in the transaction's own
/// currency (the request's if the gateway leaves it out).
fn transaction(
    path: &str,
    t: Transaction,
    fallback: Currency,
) -> Result<GatewayTransaction, GatewayError> {
    let currency = match t.currency.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(code) => Currency::parse(code).map_err(|e| unknown(path, e))?,
        None => fallback,
    };
    let minor = minor_from_decimal(&t.amount.0, currency).map_err(|e| unknown(path, e))?;
    Ok(GatewayTransaction {
        gateway_transaction_id: GatewayTransactionId(t.transaction_id),
        status: t.status.as_str().to_string(),
        reason_code: t.reason_code.unwrap_or(0),
        reason: t.reason.unwrap_or_default(),
        amount: Money { minor, currency },
        token: t.token.filter(|token| !token.expose().is_empty()),
        card_mask: card_mask(t.card_first_six.as_deref(), t.card_last_four.as_deref()),
        card_exp: t.card_exp_date,
        card_type: t.card_type,
    })
}

/// `"4000 00** **** 3055"` from the first six and last four digits the gateway reports. Works
/// on characters, not bytes: the values come from the network and may be anything.
fn card_mask(first6: Option<&str>, last4: Option<&str>) -> Option<String> {
    match (first6, last4) {
        (Some(f), Some(l)) => {
            let head: String = f.chars().take(4).collect();
            let rest: String = f.chars().skip(4).collect();
            Some(format!("{head} {rest}** **** {l}"))
        }
        (None, Some(l)) => Some(format!("**** {l}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::json::from_body;
    use super::super::wire::{Call, CardsChargeResponse};
    use super::*;

    const PATH: &str = CardsChargeRequest::PATH;

    fn charge(body: &str) -> Result<ChargeResult, GatewayError> {
        charge_result(
            PATH,
            from_body::<CardsChargeResponse>(body.as_bytes()).unwrap(),
            Currency::Rub,
        )
    }

    fn approved(amount: &str) -> String {
        format!(
            r#"{{"Success":true,"Message":null,"Model":{{"TransactionId":5,"Amount":{amount},"Currency":"RUB","Status":"Completed","ReasonCode":0,"Reason":"Approved","Token":"tk_x","CardFirstSix":"400000","CardLastFour":"3055"}}}}"#
        )
    }

    #[test]
    fn approved_amounts_become_exact_minor_units() {
        for (json, minor) in [
            ("299", 29900),
            ("299.00", 29900),
            ("0.01", 1),
            ("1000000.50", 100_000_050),
            ("90071992547409.93", 9_007_199_254_740_993),
        ] {
            match charge(&approved(json)).unwrap() {
                ChargeResult::Approved { transaction } => {
                    assert_eq!(
                        transaction.amount,
                        Money {
                            minor,
                            currency: Currency::Rub
                        }
                    );
                    assert_eq!(
                        transaction.card_mask.as_deref(),
                        Some("4000 00** **** 3055")
                    );
                    assert_eq!(transaction.token.as_ref().map(|t| t.expose()), Some("tk_x"));
                }
                other => panic!("{other:?}"),
            }
        }
        for m in [29900, 1, 100_000_050] {
            let text = amount(Money {
                minor: m,
                currency: Currency::Kzt,
            })
            .0;
            assert_eq!(minor_from_decimal(&text, Currency::Kzt), Ok(m));
        }
        assert_eq!(
            amount(Money {
                minor: 100_000_050,
                currency: Currency::Rub
            })
            .0,
            "1000000.50"
        );
        assert_eq!(
            amount(Money {
                minor: 1,
                currency: Currency::Usd
            })
            .0,
            "0.01"
        );
    }

    #[test]
    fn unrepresentable_amounts_are_unknown_outcomes_not_roundings() {
        for json in ["299.001", "-299", "92233720368547758.08", "1e30"] {
            match charge(&approved(json)) {
                Err(GatewayError::Unavailable(m)) => assert!(m.contains(json), "{m}"),
                other => panic!("{json}: {other:?}"),
            }
        }
        assert!(matches!(
            charge(&approved("1").replace("RUB", "XYZ")),
            Err(GatewayError::Unavailable(m)) if m.contains("XYZ")
        ));
    }

    #[test]
    fn the_four_shapes() {
        let declined = r#"{"Success":false,"Message":null,"Model":{"TransactionId":6,"Amount":10,"Status":"Declined","ReasonCode":5051,"Reason":"InsufficientFunds"}}"#;
        match charge(declined) {
            Err(GatewayError::Declined(t)) => {
                assert_eq!(
                    (t.reason_code, t.reason.as_str(), t.amount.minor),
                    (5051, "InsufficientFunds", 1000)
                );
                assert_eq!(t.gateway_transaction_id, GatewayTransactionId(6));
            }
            other => panic!("{other:?}"),
        }
        let three_ds = r#"{"Success":false,"Message":null,"Model":{"TransactionId":7,"PaReq":"x","AcsUrl":"http://acs"}}"#;
        assert!(matches!(
            charge(three_ds),
            Ok(ChargeResult::ThreeDsRequired { gateway_transaction_id: GatewayTransactionId(7), ref acs_url, ref pa_req })
                if acs_url == "http://acs" && pa_req == "x"
        ));
        assert!(matches!(
            charge(r#"{"Success":false,"Message":"Amount is required"}"#),
            Err(GatewayError::Rejected(m)) if m == "Amount is required"
        ));
        assert!(matches!(
            final_transaction(PATH, from_body(three_ds.as_bytes()).unwrap(), Currency::Rub),
            Err(GatewayError::Rejected(m)) if m.contains("3-D Secure")
        ));
    }

    #[test]
    fn statuses_that_contradict_success_are_unknown_outcomes() {
        for (body, status) in [
            (approved("1").replace("Completed", "Refunding"), "Refunding"),
            (
                approved("1").replace("Completed", "Authorized"),
                "Authorized",
            ),
            (
                approved("1").replace("\"Success\":true", "\"Success\":false"),
                "Completed",
            ),
        ] {
            match charge(&body) {
                Err(GatewayError::Unavailable(m)) => assert!(m.contains(status), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            charge(r#"{"Success":true}"#),
            Err(GatewayError::Unavailable(_))
        ));
        assert!(matches!(
            charge(r#"{"Success":false,"Message":""}"#),
            Err(GatewayError::Unavailable(_))
        ));
    }

    #[test]
    fn find_keeps_any_status_and_tells_not_found_from_refusals() {
        let invoice = InvoiceId(uuid::Uuid::from_u128(1));
        let find = |body: &str| {
            found(
                "/payments/find",
                from_body(body.as_bytes()).unwrap(),
                invoice,
                Currency::Rub,
            )
        };
        let body = format!(
            r#"{{"Success":false,"Message":null,"Model":{{"TransactionId":8,"Amount":5.5,"Status":"Refunding","ReasonCode":0,"InvoiceId":"{invoice}"}}}}"#
        );
        let t = find(&body).unwrap().unwrap();
        assert_eq!((t.status.as_str(), t.amount.minor), ("Refunding", 550));
        assert!(find(r#"{"Success":false,"Message":"Not found"}"#)
            .unwrap()
            .is_none());
        assert!(matches!(
            find(r#"{"Success":false,"Message":"InvoiceId is required"}"#),
            Err(GatewayError::Unavailable(m)) if m.contains("InvoiceId is required")
        ));
        assert!(matches!(
            find(&body.replace(&invoice.to_string(), "another")),
            Err(GatewayError::Unavailable(m)) if m.contains("another")
        ));
        assert!(matches!(
            find(r#"{"Success":true}"#),
            Err(GatewayError::Unavailable(_))
        ));
    }
}
