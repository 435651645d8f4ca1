//! Secrets that travel in workflow payloads: the single-use card cryptogram, the saved-card token
//! and the bank's 3-D Secure answer (PaRes).
//!
//! Each is a type of its own whose `Debug` and `Display` print only a masked form
//! ([`crate::mask::mask`]), so printing a request, a state or an error can never leak one; the
//! value itself is reached only through [`expose`](CardToken::expose), at the gateway edge. On
//! the wire (serde) each is its plain string, so recorded workflow histories keep replaying.
//! (Keeping them out of the history altogether is the identity issue's payload codec.)

use serde::{Deserialize, Serialize};

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself: only for the request that needs it (the gateway call).
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), crate::mask::mask(&self.0))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&crate::mask::mask(&self.0))
            }
        }
    };
}

secret_string!(
    /// The gateway's single-use card packet made by its checkout script in the browser. Never
    /// stored in SQL.
    Cryptogram
);
secret_string!(
    /// A saved card at the gateway (`Token` of an approved cryptogram payment): whoever has it
    /// and the terminal's credentials can charge the card.
    CardToken
);
secret_string!(
    /// The bank's answer to a 3-D Secure challenge, posted by its ACS page.
    PaRes
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printing_never_shows_the_secret() {
        let t = CardToken::new("tk_0123456789abcdef0123");
        assert_eq!(format!("{t:?}"), "CardToken(tk_0…23)");
        assert_eq!(t.to_string(), "tk_0…23");
        assert_eq!(
            format!("{:?}", Some(Cryptogram::new("short"))),
            "Some(Cryptogram(***))"
        );
        assert_eq!(t.expose(), "tk_0123456789abcdef0123");
    }

    #[test]
    fn the_wire_form_is_the_plain_string() {
        let p = PaRes::new("eJxVUl1vgjAU");
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"eJxVUl1vgjAU\"");
        let back: PaRes = serde_json::from_str("\"eJxVUl1vgjAU\"").unwrap();
        assert_eq!(back, p);
    }
}
