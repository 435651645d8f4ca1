//! Stored transactions and tokens, and their CloudPayments wire rendering (PascalCase, `/Date(ms)/`).

use crate::cards::{CardType, Outcome, TestCard};
use crate::cryptogram::CardData;
use crate::money::{currency_code, Minor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Transaction state (`Status` / `StatusCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Waiting for 3-D Secure (code 1, unconfirmed).
    AwaitingAuthentication,
    /// Funds held; may be confirmed or voided (2).
    Authorized,
    /// Captured (3).
    Completed,
    /// Voided (4, unconfirmed).
    Cancelled,
    /// Declined (5).
    Declined,
}

impl Status {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::AwaitingAuthentication => "AwaitingAuthentication",
            Self::Authorized => "Authorized",
            Self::Completed => "Completed",
            Self::Cancelled => "Cancelled",
            Self::Declined => "Declined",
        }
    }

    /// Wire code.
    pub fn code(self) -> u32 {
        match self {
            Self::AwaitingAuthentication => 1,
            Self::Authorized => 2,
            Self::Completed => 3,
            Self::Cancelled => 4,
            Self::Declined => 5,
        }
    }

    /// Parses a wire name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::AwaitingAuthentication,
            Self::Authorized,
            Self::Completed,
            Self::Cancelled,
            Self::Declined,
        ]
        .into_iter()
        .find(|st| st.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// Operation type (`Type` in the API, `OperationType` in webhooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpType {
    /// A payment (`Type` 0).
    Payment,
    /// A refund of a payment (`Type` 2, unconfirmed).
    Refund,
}

impl OpType {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Payment => "Payment",
            Self::Refund => "Refund",
        }
    }
    /// Wire code.
    pub fn code(self) -> u32 {
        match self {
            Self::Payment => 0,
            Self::Refund => 2,
        }
    }
}

/// Card fields kept on a transaction or token (never the full number or CVV).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardInfo {
    /// First six digits.
    pub first_six: String,
    /// Last four digits.
    pub last_four: String,
    /// Expiry month.
    pub exp_month: u32,
    /// Expiry year (four digits).
    pub exp_year: u32,
    /// Scheme.
    pub card_type: CardType,
    /// Outcome of later token charges on this card.
    pub token_outcome: Outcome,
}

impl CardInfo {
    /// What is kept of a card a packet named, with how its test card behaves.
    pub fn new(card: &CardData, behaviour: &TestCard) -> Self {
        Self {
            first_six: card.first_six.clone(),
            last_four: card.last_four.clone(),
            exp_month: card.exp_month,
            exp_year: card.exp_year,
            card_type: behaviour.card_type,
            token_outcome: behaviour.token,
        }
    }

    /// `MM/YY`.
    pub fn exp_text(&self) -> String {
        format!("{:02}/{:02}", self.exp_month, self.exp_year % 100)
    }
    /// `4242 42****** 4242`.
    pub fn mask(&self) -> String {
        format!(
            "{} {}****** {}",
            &self.first_six[..4.min(self.first_six.len())],
            self.first_six.get(4..).unwrap_or(""),
            self.last_four
        )
    }
}

/// Pending 3-D Secure data of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreeDs {
    /// The `PaReq` handed out.
    pub pa_req: String,
    /// `ThreeDsCallbackId` (32 hex).
    pub callback_id: String,
    /// Final outcome once 3-DS is passed.
    pub outcome: Outcome,
    /// Decline with 5206 whatever the ACS answer (`3ds-fail` scenario).
    pub force_fail: bool,
    /// Whether the payment was `auth` (two-stage).
    pub two_stage: bool,
    /// Deadline (ms since epoch) after which the transaction is declined.
    pub expires_ms: i64,
    /// Whether a token should be issued on approval.
    pub issue_token: bool,
}

/// One stored transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// `TransactionId`.
    pub id: i64,
    /// Owning terminal.
    pub public_id: String,
    /// Payment or refund.
    pub op_type: OpType,
    /// Amount in minor units (after a partial confirm: the confirmed amount).
    pub amount_minor: i64,
    /// ISO currency.
    pub currency: String,
    /// State.
    pub status: Status,
    /// 0 or the decline code.
    pub reason_code: u32,
    /// `InvoiceId`.
    pub invoice_id: Option<String>,
    /// `AccountId`.
    pub account_id: Option<String>,
    /// `Email`.
    pub email: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `IpAddress`.
    pub ip_address: Option<String>,
    /// Cardholder `Name`.
    pub name: Option<String>,
    /// `JsonData` as text.
    pub json_data: Option<String>,
    /// `CultureName`.
    pub culture_name: Option<String>,
    /// Card.
    pub card: CardInfo,
    /// Created, ms since epoch.
    pub created_ms: i64,
    /// Authorised, ms since epoch.
    pub auth_ms: Option<i64>,
    /// Captured, ms since epoch.
    pub confirm_ms: Option<i64>,
    /// Token issued by (or used for) this payment.
    pub token: Option<String>,
    /// Sum of refunds, minor units.
    pub refunded_minor: i64,
    /// For refunds: the payment refunded.
    pub original_transaction_id: Option<i64>,
    /// Token payments: `TrInitiatorCode`.
    pub tr_initiator_code: Option<i64>,
    /// Token payments: `PaymentScheduled`.
    pub payment_scheduled: Option<i64>,
    /// Pending or finished 3-DS data.
    pub three_ds: Option<ThreeDs>,
    /// `AuthCode` when approved.
    pub auth_code: Option<String>,
    /// `Rrn` when approved.
    pub rrn: Option<String>,
    /// Fault `pending_in_find`: until then (ms since epoch) `find` / `get` show the payment as
    /// `Authorized`, not final, although it is committed.
    #[serde(default)]
    pub pending_until_ms: Option<i64>,
}

/// `Reason` name and cardholder messages (ru, en) of a reason code.
pub fn reason(code: u32) -> (&'static str, &'static str, &'static str) {
    match code {
        0 => ("Approved", "Оплата успешно проведена", "Payment successful"),
        3001 => (
            "InvalidInvoiceId",
            "Неверный номер заказа",
            "Invalid order number",
        ),
        3002 => (
            "InvalidAccountId",
            "Неверный номер счета",
            "Invalid account number",
        ),
        3003 => ("InvalidAmount", "Неверная сумма", "Invalid amount"),
        3004 => ("PaymentExpired", "Истек срок оплаты", "Payment expired"),
        3005 => ("CheckUnexpectedCode", "Платеж отклонен", "Payment rejected"),
        3006 => ("CheckUnavailable", "Платеж отклонен", "Payment rejected"),
        3007 => ("CheckNoResponse", "Платеж отклонен", "Payment rejected"),
        3008 => ("PaymentRejected", "Платеж отклонен", "Payment rejected"),
        5001 => (
            "ReferToCardIssuer",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5003 => (
            "InvalidMerchant",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5004 | 5007 => (
            "PickUpCard",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5005 => (
            "DoNotHonor",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5006 => ("Error", "Повторите попытку позже", "Try again later"),
        5012 => (
            "InvalidTransaction",
            "Воспользуйтесь другой картой",
            "Use another card",
        ),
        5013 => (
            "AmountError",
            "Проверьте корректность суммы",
            "Check the amount",
        ),
        5014 => (
            "InvalidCardNumber",
            "Проверьте правильность введенных данных карты",
            "Check the card details",
        ),
        5015 => (
            "NoSuchIssuer",
            "Проверьте правильность введенных данных карты",
            "Check the card details",
        ),
        5017 => (
            "CustomerCancellation",
            "Платеж отменен",
            "Payment cancelled",
        ),
        5019 => (
            "TransactionError",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5030 => ("FormatError", "Повторите попытку позже", "Try again later"),
        5031 => (
            "BankNotSupportedBySwitch",
            "Воспользуйтесь другой картой",
            "Use another card",
        ),
        5033 => (
            "ExpiredCardPickup",
            "Карта просрочена или неверно указан срок действия",
            "Card expired",
        ),
        5034 => (
            "SuspectedFraud",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5036 => (
            "RestrictedCard",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5041 => (
            "LostCard",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5043 => (
            "StolenCard",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5051 => (
            "InsufficientFunds",
            "Недостаточно средств на карте",
            "Insufficient funds on account",
        ),
        5054 => (
            "ExpiredCard",
            "Карта просрочена или неверно указан срок действия",
            "Card expired or wrong expiry date",
        ),
        5055 => ("InvalidPin", "Неверный PIN-код", "Invalid PIN"),
        5057 => (
            "TransactionNotPermitted",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5058 => (
            "NotPermittedToCard",
            "Воспользуйтесь другой картой",
            "Use another card",
        ),
        5059 => (
            "SuspectedFraud",
            "Свяжитесь с вашим банком или воспользуйтесь другой картой",
            "Contact your bank or use another card",
        ),
        5061 => (
            "ExceedWithdrawalLimit",
            "Превышен лимит операций по карте",
            "Card limit exceeded",
        ),
        5062 => (
            "RestrictedCard2",
            "Воспользуйтесь другой картой",
            "Use another card",
        ),
        5063 => (
            "SecurityViolation",
            "Воспользуйтесь другой картой",
            "Use another card",
        ),
        5065 => (
            "ExceedWithdrawalFrequency",
            "Превышен лимит операций по карте",
            "Card limit exceeded",
        ),
        5082 => ("IncorrectCVV", "Неверно указан код CVV", "Incorrect CVV"),
        5091 => ("Timeout", "Повторите попытку позже", "Try again later"),
        5092 => (
            "CannotReachNetwork",
            "Повторите попытку позже",
            "Try again later",
        ),
        5096 => ("SystemError", "Повторите попытку позже", "Try again later"),
        5204 => (
            "UnableToProcess",
            "Операция не может быть обработана",
            "Unable to process",
        ),
        5206 => (
            "AuthenticationFailed",
            "Не удалось пройти 3-D Secure авторизацию",
            "3-D Secure authentication failed",
        ),
        5207 => (
            "AuthenticationUnavailable",
            "3-D Secure авторизация недоступна",
            "3-D Secure authentication unavailable",
        ),
        5300 => (
            "AntiFraud",
            "Лимиты эквайера на проведение операций",
            "Acquirer limits",
        ),
        5303 => (
            "AcquirerLimitsExceeded",
            "Лимиты эквайера на проведение операций",
            "Acquirer limits",
        ),
        _ => ("Declined", "Операция отклонена", "Transaction declined"),
    }
}

/// `/Date(ms)/`.
pub fn ms_date(ms: i64) -> String {
    format!("/Date({ms})/")
}

/// UTC, no zone suffix, whole seconds.
pub fn iso_date(ms: i64) -> String {
    use chrono::{Datelike as _, Timelike as _};
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                d.year(),
                d.month(),
                d.day(),
                d.hour(),
                d.minute(),
                d.second()
            )
        })
        .unwrap_or_default()
}

/// `yyyy-MM-dd HH:mm:ss` UTC (webhooks).
pub fn webhook_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

impl Transaction {
    /// Whether this state counts as `Success:true` on reads.
    pub fn is_success(&self) -> bool {
        matches!(self.status, Status::Authorized | Status::Completed)
    }

    /// Amount as [`Minor`].
    pub fn amount(&self) -> Minor {
        Minor(self.amount_minor)
    }

    /// Declines a payment whose 3-DS was abandoned past its deadline (5206); true if it changed.
    pub fn expire_if_abandoned(&mut self, now: i64) -> bool {
        if self.status == Status::AwaitingAuthentication
            && self.three_ds.as_ref().is_some_and(|x| x.expires_ms <= now)
        {
            self.status = Status::Declined;
            self.reason_code = 5206;
            return true;
        }
        false
    }

    /// Whether the cardholder texts should be English.
    fn english(&self) -> bool {
        self.culture_name
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().starts_with("en"))
    }

    /// The full `Model` of the API, as a JSON value.
    pub fn to_wire(&self, terminal_url: &str) -> Value {
        serde_json::to_value(self.wire(terminal_url)).unwrap_or(Value::Null)
    }

    /// The full `Model` of the API, borrowing from `self` (serialised directly on the hot path).
    pub fn wire<'a>(&'a self, terminal_url: &'a str) -> WireTransaction<'a> {
        let (reason_name, ru, en) = reason(self.reason_code);
        let amount = self.amount().as_f64();
        let code = currency_code(&self.currency).map_or(0, |c| c.1);
        let date = |ms: Option<i64>| ms.map(ms_date);
        let iso = |ms: Option<i64>| ms.map(iso_date);
        WireTransaction {
            reason_code: self.reason_code,
            public_id: &self.public_id,
            terminal_url,
            transaction_id: self.id,
            amount,
            currency: &self.currency,
            currency_code: code,
            payment_amount: amount,
            payment_currency: &self.currency,
            payment_currency_code: code,
            invoice_id: self.invoice_id.as_deref(),
            account_id: self.account_id.as_deref(),
            email: self.email.as_deref(),
            description: self.description.as_deref(),
            json_data: self.json_data.as_deref(),
            created_date: ms_date(self.created_ms),
            payout_date: None,
            payout_date_iso: None,
            payout_amount: (self.status == Status::Completed).then_some(amount),
            created_date_iso: iso_date(self.created_ms),
            auth_date: date(self.auth_ms),
            auth_date_iso: iso(self.auth_ms),
            confirm_date: date(self.confirm_ms),
            confirm_date_iso: iso(self.confirm_ms),
            auth_code: self.auth_code.as_deref(),
            test_mode: true,
            rrn: self.rrn.as_deref(),
            original_transaction_id: self.original_transaction_id,
            fall_back_scenario_declined_transaction_id: None,
            ip_address: self.ip_address.as_deref(),
            ip_country: "",
            ip_city: None,
            ip_region: None,
            ip_district: None,
            ip_latitude: None,
            ip_longitude: None,
            card_first_six: &self.card.first_six,
            card_last_four: &self.card.last_four,
            card_exp_date: self.card.exp_text(),
            card_type: self.card.card_type.name(),
            card_product: None,
            card_category: None,
            escrow_accumulation_id: None,
            issuer_bank_country: "RU",
            issuer: "CloudPayments",
            card_type_code: self.card.card_type.code(),
            status: self.status.name(),
            status_code: self.status.code(),
            culture_name: self.culture_name.as_deref().unwrap_or("ru-RU"),
            reason: reason_name,
            card_holder_message: if self.english() { en } else { ru },
            r#type: self.op_type.code(),
            refunded: self.refunded_minor > 0,
            name: self.name.as_deref(),
            token: self.token.as_deref(),
            subscription_id: None,
            gateway_name: "Test",
            android_pay: false,
            wallet_type: "",
            total_fee: 0,
            vat_above_total_fee: 0,
            processor_and_partner_fee: 0,
            vat_within_processor_fee: 0,
            tr_initiator_code: self.tr_initiator_code,
            payment_scheduled: self.payment_scheduled,
        }
    }
}

/// The wire form of a transaction (`Model`), field order as in the API examples.
///
/// `Success` of the envelope around it is true for `Authorized` and `Completed` only; a decline
/// has a non-zero `ReasonCode`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = Transaction)]
#[allow(missing_docs)]
pub struct WireTransaction<'a> {
    pub reason_code: u32,
    pub public_id: &'a str,
    pub terminal_url: &'a str,
    pub transaction_id: i64,
    pub amount: f64,
    pub currency: &'a str,
    pub currency_code: u32,
    pub payment_amount: f64,
    pub payment_currency: &'a str,
    pub payment_currency_code: u32,
    pub invoice_id: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub email: Option<&'a str>,
    pub description: Option<&'a str>,
    pub json_data: Option<&'a str>,
    pub created_date: String,
    pub payout_date: Option<String>,
    pub payout_date_iso: Option<String>,
    pub payout_amount: Option<f64>,
    pub created_date_iso: String,
    pub auth_date: Option<String>,
    pub auth_date_iso: Option<String>,
    pub confirm_date: Option<String>,
    pub confirm_date_iso: Option<String>,
    pub auth_code: Option<&'a str>,
    pub test_mode: bool,
    pub rrn: Option<&'a str>,
    pub original_transaction_id: Option<i64>,
    pub fall_back_scenario_declined_transaction_id: Option<i64>,
    pub ip_address: Option<&'a str>,
    pub ip_country: &'a str,
    pub ip_city: Option<&'a str>,
    pub ip_region: Option<&'a str>,
    pub ip_district: Option<&'a str>,
    pub ip_latitude: Option<f64>,
    pub ip_longitude: Option<f64>,
    pub card_first_six: &'a str,
    pub card_last_four: &'a str,
    pub card_exp_date: String,
    pub card_type: &'a str,
    pub card_product: Option<&'a str>,
    pub card_category: Option<&'a str>,
    pub escrow_accumulation_id: Option<&'a str>,
    pub issuer_bank_country: &'a str,
    pub issuer: &'a str,
    pub card_type_code: u32,
    pub status: &'a str,
    pub status_code: u32,
    pub culture_name: &'a str,
    pub reason: &'a str,
    pub card_holder_message: &'a str,
    pub r#type: u32,
    pub refunded: bool,
    pub name: Option<&'a str>,
    pub token: Option<&'a str>,
    pub subscription_id: Option<&'a str>,
    pub gateway_name: &'a str,
    pub android_pay: bool,
    pub wallet_type: &'a str,
    pub total_fee: u32,
    pub vat_above_total_fee: u32,
    pub processor_and_partner_fee: u32,
    pub vat_within_processor_fee: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tr_initiator_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_scheduled: Option<i64>,
}

/// A saved card (`tk_` + 29 hex), usable only on its terminal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The token.
    pub token: String,
    /// Owning terminal.
    pub public_id: String,
    /// `AccountId` it was issued for.
    pub account_id: String,
    /// Card.
    pub card: CardInfo,
    /// Issued, ms since epoch.
    pub created_ms: i64,
}

impl TokenRecord {
    /// Item of `/payments/tokens/list`.
    pub fn wire(&self) -> WireToken<'_> {
        WireToken {
            token: &self.token,
            account_id: &self.account_id,
            card_mask: self.card.mask(),
            expiration_date_month: self.card.exp_month,
            expiration_date_year: self.card.exp_year,
        }
    }

    /// [`TokenRecord::wire`] as a JSON value.
    pub fn to_wire(&self) -> Value {
        serde_json::to_value(self.wire()).unwrap_or(Value::Null)
    }
}

/// A saved card as `/payments/tokens/list` shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = Token)]
pub struct WireToken<'a> {
    /// `tk_` + 29 hex.
    pub token: &'a str,
    /// The `AccountId` it was issued for; a token charge must repeat it.
    pub account_id: &'a str,
    /// `4242 42****** 4242`.
    pub card_mask: String,
    /// Expiry month.
    pub expiration_date_month: u32,
    /// Expiry year (four digits).
    pub expiration_date_year: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_render_like_the_api() {
        assert_eq!(ms_date(1_700_000_000_123), "/Date(1700000000123)/");
        assert_eq!(iso_date(1_700_000_000_999), "2023-11-14T22:13:20");
        assert_eq!(webhook_date(1_700_000_000_999), "2023-11-14 22:13:20");
    }

    #[test]
    fn card_mask() {
        let c = CardInfo {
            first_six: "424242".into(),
            last_four: "4242".into(),
            exp_month: 1,
            exp_year: 2030,
            card_type: CardType::Visa,
            token_outcome: Outcome::Approve,
        };
        assert_eq!(c.mask(), "4242 42****** 4242");
        assert_eq!(c.exp_text(), "01/30");
    }
}
