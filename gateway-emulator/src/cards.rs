//! The 15 official CloudPayments test cards and how each behaves.
//!
//! Any other card number is approved without 3-D Secure (unless a cryptogram scenario or a fault
//! says otherwise); an EMU1 card number that fails the Luhn check is declined with 5014.

/// Visa, 3-DS, approved after 3-DS; later token charges approved.
pub const VISA_3DS_SUCCESS: &str = "4242424242424242";
/// MasterCard, 3-DS, approved after 3-DS; later token charges approved.
pub const MC_3DS_SUCCESS: &str = "5555555555554444";
/// МИР, 3-DS, approved after 3-DS; later token charges approved.
pub const MIR_3DS_SUCCESS: &str = "2200000000000004";
/// Visa, 3-DS, then declined 5051 (insufficient funds).
pub const VISA_3DS_INSUFFICIENT: &str = "4012888888881881";
/// MasterCard, 3-DS, then declined 5051.
pub const MC_3DS_INSUFFICIENT: &str = "5105105105105100";
/// МИР, 3-DS, then declined 5051.
pub const MIR_3DS_INSUFFICIENT: &str = "2202202202202200";
/// Visa, no 3-DS, approved; token charges approved.
pub const NO_3DS_SUCCESS: &str = "4000000000003055";
/// Alias of [`NO_3DS_SUCCESS`].
pub const VISA_NO_3DS_SUCCESS: &str = NO_3DS_SUCCESS;
/// MasterCard, no 3-DS, approved; token charges approved.
pub const MC_NO_3DS_SUCCESS: &str = "5205000000003055";
/// МИР, no 3-DS, approved; token charges approved.
pub const MIR_NO_3DS_SUCCESS: &str = "2202000000003055";
/// Visa, no 3-DS, approved by cryptogram; every token charge declined 5051.
pub const SUCCESS_THEN_TOKEN_DECLINE: &str = "4111111111111111";
/// Alias of [`SUCCESS_THEN_TOKEN_DECLINE`].
pub const VISA_SUCCESS_THEN_TOKEN_DECLINE: &str = SUCCESS_THEN_TOKEN_DECLINE;
/// MasterCard, no 3-DS, approved by cryptogram; token charges declined 5051.
pub const MC_SUCCESS_THEN_TOKEN_DECLINE: &str = "5200828282828210";
/// МИР, no 3-DS, approved by cryptogram; token charges declined 5051.
pub const MIR_SUCCESS_THEN_TOKEN_DECLINE: &str = "2200000022222222";
/// Visa, no 3-DS, declined 5051.
pub const DECLINE_INSUFFICIENT: &str = "4000056655665556";
/// Alias of [`DECLINE_INSUFFICIENT`].
pub const VISA_DECLINE_INSUFFICIENT: &str = DECLINE_INSUFFICIENT;
/// MasterCard, no 3-DS, declined 5051.
pub const MC_DECLINE_INSUFFICIENT: &str = "5404000000000043";
/// МИР, no 3-DS, declined 5051.
pub const MIR_DECLINE_INSUFFICIENT: &str = "2203000000000043";

/// Result of a payment by a card, before faults and scenario overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Approved.
    Approve,
    /// Declined with this `ReasonCode`.
    Decline(u32),
}

/// How one test card behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    /// Full card number.
    pub pan: &'static str,
    /// `CardType` in responses.
    pub card_type: CardType,
    /// Whether a cryptogram payment asks for 3-D Secure.
    pub three_ds: bool,
    /// Outcome of a cryptogram payment (after 3-DS when `three_ds`).
    pub cryptogram: Outcome,
    /// Outcome of later token payments.
    pub token: Outcome,
}

/// Card scheme, as reported in `CardType` / `CardTypeCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CardType {
    /// Visa (`CardTypeCode` 0).
    Visa,
    /// MasterCard (1).
    MasterCard,
    /// Maestro (2).
    Maestro,
    /// МИР (7, unconfirmed).
    Mir,
    /// Anything else (`Unknown`, 99).
    Unknown,
}

impl CardType {
    /// Scheme from the first digits of a card number.
    pub fn from_bin(first: &str) -> Self {
        let b = first.as_bytes();
        match b.first() {
            Some(b'4') => Self::Visa,
            Some(b'5') => Self::MasterCard,
            Some(b'6') => Self::Maestro,
            Some(b'2') if first.starts_with("220") => Self::Mir,
            Some(b'2') => Self::MasterCard,
            _ => Self::Unknown,
        }
    }

    /// Wire name (`Visa`, `MasterCard`, `Maestro`, `Mir`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Visa => "Visa",
            Self::MasterCard => "MasterCard",
            Self::Maestro => "Maestro",
            Self::Mir => "Mir",
            Self::Unknown => "Unknown",
        }
    }

    /// Wire code (`CardTypeCode`).
    pub fn code(self) -> u32 {
        match self {
            Self::Visa => 0,
            Self::MasterCard => 1,
            Self::Maestro => 2,
            Self::Mir => 7,
            Self::Unknown => 99,
        }
    }
}

const fn card(
    pan: &'static str,
    card_type: CardType,
    three_ds: bool,
    cryptogram: Outcome,
    token: Outcome,
) -> TestCard {
    TestCard {
        pan,
        card_type,
        three_ds,
        cryptogram,
        token,
    }
}

const OK: Outcome = Outcome::Approve;
const NSF: Outcome = Outcome::Decline(5051);

/// All 15 official test cards.
pub const ALL: [TestCard; 15] = [
    card(VISA_3DS_SUCCESS, CardType::Visa, true, OK, OK),
    card(MC_3DS_SUCCESS, CardType::MasterCard, true, OK, OK),
    card(MIR_3DS_SUCCESS, CardType::Mir, true, OK, OK),
    card(VISA_3DS_INSUFFICIENT, CardType::Visa, true, NSF, NSF),
    card(MC_3DS_INSUFFICIENT, CardType::MasterCard, true, NSF, NSF),
    card(MIR_3DS_INSUFFICIENT, CardType::Mir, true, NSF, NSF),
    card(NO_3DS_SUCCESS, CardType::Visa, false, OK, OK),
    card(MC_NO_3DS_SUCCESS, CardType::MasterCard, false, OK, OK),
    card(MIR_NO_3DS_SUCCESS, CardType::Mir, false, OK, OK),
    card(SUCCESS_THEN_TOKEN_DECLINE, CardType::Visa, false, OK, NSF),
    card(
        MC_SUCCESS_THEN_TOKEN_DECLINE,
        CardType::MasterCard,
        false,
        OK,
        NSF,
    ),
    card(
        MIR_SUCCESS_THEN_TOKEN_DECLINE,
        CardType::Mir,
        false,
        OK,
        NSF,
    ),
    card(DECLINE_INSUFFICIENT, CardType::Visa, false, NSF, NSF),
    card(
        MC_DECLINE_INSUFFICIENT,
        CardType::MasterCard,
        false,
        NSF,
        NSF,
    ),
    card(MIR_DECLINE_INSUFFICIENT, CardType::Mir, false, NSF, NSF),
];

/// The test card with this first six and last four digits (the pair is unique among the 15).
pub fn lookup(first_six: &str, last_four: &str) -> Option<&'static TestCard> {
    ALL.iter()
        .find(|c| c.pan.starts_with(first_six) && c.pan.ends_with(last_four))
}

/// Behaviour of any card: a test card's row, or "approve without 3-DS" for other numbers.
pub fn behaviour(first_six: &str, last_four: &str) -> TestCard {
    lookup(first_six, last_four).copied().unwrap_or(TestCard {
        pan: "",
        card_type: CardType::from_bin(first_six),
        three_ds: false,
        cryptogram: OK,
        token: OK,
    })
}

/// Luhn checksum of a digit string.
pub fn luhn_valid(pan: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in pan.bytes().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !pan.is_empty() && sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_six_last_four_pairs_are_unique() {
        for a in &ALL {
            let hits = ALL
                .iter()
                .filter(|b| b.pan[..6] == a.pan[..6] && b.pan[12..] == a.pan[12..])
                .count();
            assert_eq!(hits, 1, "{}", a.pan);
            assert_eq!(
                lookup(&a.pan[..6], &a.pan[12..]).map(|c| c.pan),
                Some(a.pan)
            );
        }
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("4242424242424242"));
        assert!(!luhn_valid("4242424242424241"));
    }
}
