//! Card cryptogram packets: builders for tests and the parser the payment endpoints use.
//!
//! Accepted layouts:
//! * legacy `01`/`02` packets: `<fmt><first6><last4><YYMM><key version 2><base64 body>`; the
//!   ciphertext is ignored, the header picks the card;
//! * the mobile SDK packet: base64 of `{"Type":"CloudCard","CardInfo":{"FirstSixDigits",..}}`;
//! * the emulator-only plaintext `EMU1:<pan>:<MM>/<YY>:<cvv>[:scenario]`, where scenario is one
//!   of `approve`, `3ds`, `3ds-fail`, `decline-<code>`, `timeout`, `5xx`, optionally followed by
//!   `:n=<nonce>`.
//!
//! Single use: legacy and SDK packets (random bodies, like real ones) and EMU1 packets with a
//! nonce are refused the second time (decline 5012). A plain EMU1 packet is a deterministic test
//! input and may be reused, so tests can charge the same test card many times.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore as _;

/// A per-cryptogram override of the card's documented behaviour (EMU1 packets only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scenario {
    /// Approve without 3-D Secure.
    Approve,
    /// Ask for 3-D Secure, then approve (unless the ACS "Fail" button is used).
    ThreeDs,
    /// Ask for 3-D Secure, then decline with 5206 whatever the ACS answer.
    ThreeDsFail,
    /// Decline with this `ReasonCode` (non-zero).
    Decline(u32),
    /// Never answer (the request is held, nothing is charged).
    Timeout,
    /// Answer HTTP 500 (nothing is charged).
    ServerError,
}

impl Scenario {
    /// The token used in EMU1 packets (`approve`, `3ds`, `3ds-fail`, `decline-5051`, `timeout`, `5xx`).
    pub fn as_token(&self) -> String {
        match self {
            Self::Approve => "approve".into(),
            Self::ThreeDs => "3ds".into(),
            Self::ThreeDsFail => "3ds-fail".into(),
            Self::Decline(c) => format!("decline-{c}"),
            Self::Timeout => "timeout".into(),
            Self::ServerError => "5xx".into(),
        }
    }

    /// Parses the EMU1 scenario token (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let l = s.trim().to_ascii_lowercase();
        match l.as_str() {
            "approve" => Some(Self::Approve),
            "3ds" => Some(Self::ThreeDs),
            "3ds-fail" => Some(Self::ThreeDsFail),
            "timeout" => Some(Self::Timeout),
            "5xx" | "500" => Some(Self::ServerError),
            _ => {
                let code: u32 = l.strip_prefix("decline-")?.parse().ok()?;
                (1..=99_999).contains(&code).then_some(Self::Decline(code))
            }
        }
    }
}

fn yy(year: u32) -> u32 {
    year % 100
}

/// Builds `EMU1:<pan>:<MM>/<YY>:<cvv>[:scenario]`; `exp_year` may have 2 or 4 digits.
pub fn emu1(
    pan: &str,
    exp_month: u32,
    exp_year: u32,
    cvv: &str,
    scenario: Option<Scenario>,
) -> String {
    let mut s = format!("EMU1:{pan}:{exp_month:02}/{:02}:{cvv}", yy(exp_year));
    if let Some(sc) = scenario {
        s.push(':');
        s.push_str(&sc.as_token());
    }
    s
}

fn random_b64(len: usize) -> String {
    let mut buf = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut buf);
    B64.encode(buf)
}

/// Like [`emu1`] with a random `:n=<nonce>` suffix, making the packet single-use.
pub fn emu1_once(
    pan: &str,
    exp_month: u32,
    exp_year: u32,
    cvv: &str,
    scenario: Option<Scenario>,
) -> String {
    let mut nonce = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut nonce);
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:n={hex}", emu1(pan, exp_month, exp_year, cvv, scenario))
}

/// Builds a legacy-shaped packet: `01` + first6 + last4 + YYMM + `04` + random base64 body.
pub fn legacy(pan: &str, exp_month: u32, exp_year: u32) -> String {
    let first6 = pan.get(..6).unwrap_or(pan);
    let last4 = pan.get(pan.len().saturating_sub(4)..).unwrap_or(pan);
    format!(
        "01{first6}{last4}{:02}{exp_month:02}04{}",
        yy(exp_year),
        random_b64(256)
    )
}

/// Builds a mobile-SDK-shaped packet: base64 of the `CloudCard` JSON with a random `Value`.
pub fn sdk_json(pan: &str, exp_month: u32, exp_year: u32) -> String {
    let first6 = pan.get(..6).unwrap_or(pan);
    let last4 = pan.get(pan.len().saturating_sub(4)..).unwrap_or(pan);
    let packet = serde_json::json!({
        "Type": "CloudCard",
        "BrowserInfoBase64": "",
        "CardInfo": {
            "FirstSixDigits": first6,
            "LastFourDigits": last4,
            "ExpDateYear": format!("{:02}", yy(exp_year)),
            "ExpDateMonth": format!("{exp_month:02}"),
        },
        "KeyVersion": "04",
        "Format": 1,
        "Value": random_b64(256),
    });
    B64.encode(packet.to_string())
}

/// What a packet says about the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardData {
    /// First six digits.
    pub first_six: String,
    /// Last four digits.
    pub last_four: String,
    /// Full number when the packet carries it (EMU1 only).
    pub pan: Option<String>,
    /// Expiry month 1–12.
    pub exp_month: u32,
    /// Expiry year, four digits.
    pub exp_year: u32,
    /// Scenario override (EMU1 only).
    pub scenario: Option<Scenario>,
    /// Whether a second use of the same packet is refused.
    pub single_use: bool,
}

impl CardData {
    /// `MM/YY`, as in `CardExpDate`.
    pub fn exp_text(&self) -> String {
        format!("{:02}/{:02}", self.exp_month, self.exp_year % 100)
    }

    /// Whether the card has expired at `(year, month)` (a card is valid through its expiry month).
    pub fn expired_at(&self, year: i32, month: u32) -> bool {
        (self.exp_year as i32, self.exp_month) < (year, month)
    }
}

/// Why a packet was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptogramError {
    /// The packet matches none of the accepted layouts.
    #[error("unrecognised packet format")]
    Format,
    /// The layout is known but a field is wrong (named in the message).
    #[error("{0}")]
    Field(&'static str),
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn year4(yy_or_yyyy: u32) -> u32 {
    if yy_or_yyyy < 100 {
        2000 + yy_or_yyyy
    } else {
        yy_or_yyyy
    }
}

fn month(m: u32) -> Result<u32, CryptogramError> {
    if (1..=12).contains(&m) {
        Ok(m)
    } else {
        Err(CryptogramError::Field("invalid expiry month"))
    }
}

/// Parses any accepted packet layout.
pub fn parse(packet: &str) -> Result<CardData, CryptogramError> {
    let p = packet.trim();
    if p.get(..5).is_some_and(|h| h.eq_ignore_ascii_case("EMU1:")) {
        return parse_emu1(p.get(5..).unwrap_or(""));
    }
    if (p.starts_with("01") || p.starts_with("02")) && p.len() > 18 && p.is_char_boundary(18) {
        let head = &p[2..18];
        if head.bytes().all(|b| b.is_ascii_digit()) {
            let yy: u32 = head[10..12].parse().map_err(|_| CryptogramError::Format)?;
            let mm: u32 = head[12..14].parse().map_err(|_| CryptogramError::Format)?;
            return Ok(CardData {
                first_six: head[..6].to_owned(),
                last_four: head[6..10].to_owned(),
                pan: None,
                exp_month: month(mm)?,
                exp_year: year4(yy),
                scenario: None,
                single_use: true,
            });
        }
    }
    parse_sdk(p)
}

fn parse_emu1(rest: &str) -> Result<CardData, CryptogramError> {
    let mut parts: Vec<&str> = rest.split(':').collect();
    let nonce = match parts.last() {
        Some(last) if last.starts_with("n=") && parts.len() > 3 => parts.pop(),
        _ => None,
    };
    if parts.len() < 3 || parts.len() > 4 {
        return Err(CryptogramError::Field(
            "EMU1 packet must be EMU1:<pan>:<MM>/<YY>:<cvv>[:scenario]",
        ));
    }
    let pan = parts[0].trim();
    if pan.len() < 12 || pan.len() > 19 || !pan.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptogramError::Field("invalid card number in EMU1 packet"));
    }
    let (mm, yy) = parts[1].split_once('/').ok_or(CryptogramError::Field(
        "invalid expiry date in EMU1 packet, expected MM/YY",
    ))?;
    let mm: u32 = if digits(mm, 2) || digits(mm, 1) {
        mm.parse()
            .map_err(|_| CryptogramError::Field("invalid expiry month"))?
    } else {
        return Err(CryptogramError::Field("invalid expiry month"));
    };
    let yy: u32 = if digits(yy, 2) || digits(yy, 4) {
        yy.parse()
            .map_err(|_| CryptogramError::Field("invalid expiry year"))?
    } else {
        return Err(CryptogramError::Field("invalid expiry year"));
    };
    let cvv = parts[2];
    if !(digits(cvv, 3) || digits(cvv, 4)) {
        return Err(CryptogramError::Field("invalid CVV in EMU1 packet"));
    }
    let scenario = match parts.get(3) {
        Some(s) => Some(Scenario::parse(s).ok_or(CryptogramError::Field(
            "unknown EMU1 scenario (approve, 3ds, 3ds-fail, decline-<code>, timeout, 5xx)",
        ))?),
        None => None,
    };
    Ok(CardData {
        first_six: pan[..6].to_owned(),
        last_four: pan[pan.len() - 4..].to_owned(),
        pan: Some(pan.to_owned()),
        exp_month: month(mm)?,
        exp_year: year4(yy),
        scenario,
        single_use: nonce.is_some(),
    })
}

fn json_u32(v: &serde_json::Value) -> Option<u32> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_sdk(p: &str) -> Result<CardData, CryptogramError> {
    let raw = B64
        .decode(p.as_bytes())
        .map_err(|_| CryptogramError::Format)?;
    let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|_| CryptogramError::Format)?;
    let info = v
        .get("CardInfo")
        .or_else(|| v.get("cardInfo"))
        .ok_or(CryptogramError::Format)?;
    let s = |k: &str| info.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let first_six =
        s("FirstSixDigits").ok_or(CryptogramError::Field("CardInfo.FirstSixDigits is missing"))?;
    let last_four =
        s("LastFourDigits").ok_or(CryptogramError::Field("CardInfo.LastFourDigits is missing"))?;
    if !digits(&first_six, 6) || !digits(&last_four, 4) {
        return Err(CryptogramError::Field("invalid card digits in CardInfo"));
    }
    let mm = info
        .get("ExpDateMonth")
        .and_then(json_u32)
        .ok_or(CryptogramError::Field("CardInfo.ExpDateMonth is invalid"))?;
    let yy = info
        .get("ExpDateYear")
        .and_then(json_u32)
        .filter(|y| *y < 10_000)
        .ok_or(CryptogramError::Field("CardInfo.ExpDateYear is invalid"))?;
    Ok(CardData {
        first_six,
        last_four,
        pan: None,
        exp_month: month(mm)?,
        exp_year: year4(yy),
        scenario: None,
        single_use: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_layouts() {
        let e = emu1(
            "4242424242424242",
            3,
            2031,
            "123",
            Some(Scenario::Decline(5005)),
        );
        assert_eq!(e, "EMU1:4242424242424242:03/31:123:decline-5005");
        let d = parse(&e).unwrap();
        assert_eq!(
            (
                d.first_six.as_str(),
                d.last_four.as_str(),
                d.exp_month,
                d.exp_year
            ),
            ("424242", "4242", 3, 2031)
        );
        assert_eq!(d.scenario, Some(Scenario::Decline(5005)));

        let l = legacy("4000056655665556", 12, 30);
        assert!(l.starts_with("0140000555563012") && l.len() > 100, "{l}");
        let d = parse(&l).unwrap();
        assert_eq!(
            (
                d.first_six.as_str(),
                d.last_four.as_str(),
                d.exp_month,
                d.exp_year
            ),
            ("400005", "5556", 12, 2030)
        );
        assert_ne!(legacy("4000056655665556", 12, 30), l, "random body");

        let s = sdk_json("5555555555554444", 1, 2029);
        let d = parse(&s).unwrap();
        assert_eq!(
            (
                d.first_six.as_str(),
                d.last_four.as_str(),
                d.exp_month,
                d.exp_year
            ),
            ("555555", "4444", 1, 2029)
        );
    }

    #[test]
    fn nonce_makes_emu1_single_use() {
        let a = emu1_once("4242424242424242", 3, 31, "123", Some(Scenario::ThreeDs));
        assert_ne!(
            a,
            emu1_once("4242424242424242", 3, 31, "123", Some(Scenario::ThreeDs))
        );
        let d = parse(&a).unwrap();
        assert!(d.single_use);
        assert_eq!(d.scenario, Some(Scenario::ThreeDs));
        assert!(
            !parse(&emu1("4242424242424242", 3, 31, "123", None))
                .unwrap()
                .single_use
        );
        assert!(
            parse(&legacy("4242424242424242", 3, 31))
                .unwrap()
                .single_use
        );
        assert!(
            parse("EMU1:4242424242424242:03/31:123:n=1")
                .unwrap()
                .single_use
        );
    }

    #[test]
    fn doc_sample_header_parses() {
        let d = parse("01492500008719030128SM").unwrap();
        assert_eq!(
            (
                d.first_six.as_str(),
                d.last_four.as_str(),
                d.exp_year,
                d.exp_month
            ),
            ("492500", "0087", 2019, 3)
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "EMU1:",
            "EMU1:42:12/30:123",
            "EMU1:4242424242424242:13/30:123",
            "EMU1:4242424242424242:12/30:12",
            "EMU1:4242424242424242:12/30:123:bogus",
            "03xyz",
            "hello",
            "0142424242421330",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
