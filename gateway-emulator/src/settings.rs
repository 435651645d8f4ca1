//! Typed settings of the emulator (terminals, listen address, persistence, 3-DS behaviour).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Public ID of the terminal the emulator serves when none is configured.
pub const DEFAULT_PUBLIC_ID: &str = "pk_test_emulator";
/// API secret of the default terminal.
pub const DEFAULT_API_SECRET: &str = "emulator_secret";

/// One CloudPayments site ("terminal"): HTTP Basic user = `public_id`, password = `api_secret`.
///
/// `Debug` masks the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Terminal {
    /// Public ID (`pk_…`); unique among the configured terminals.
    pub public_id: String,
    /// API secret; also the HMAC key of this terminal's webhooks.
    pub api_secret: String,
}

impl Terminal {
    /// Builds a terminal from its two credentials.
    pub fn new(public_id: impl Into<String>, api_secret: impl Into<String>) -> Self {
        Self {
            public_id: public_id.into(),
            api_secret: api_secret.into(),
        }
    }

    /// The documented default test terminal (`pk_test_emulator` / `emulator_secret`).
    pub fn default_terminal() -> Self {
        Self::new(DEFAULT_PUBLIC_ID, DEFAULT_API_SECRET)
    }

    /// Parses `PUBLIC_ID:API_SECRET`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        match spec.split_once(':') {
            Some((id, secret)) if !id.trim().is_empty() && !secret.is_empty() => {
                Ok(Self::new(id.trim(), secret))
            }
            _ => Err("terminal must look like PUBLIC_ID:API_SECRET".to_owned()),
        }
    }

    /// Parses a comma-separated list of `PUBLIC_ID:API_SECRET` (the `EMULATOR_TERMINALS` format).
    pub fn parse_list(spec: &str) -> Result<Vec<Self>, String> {
        spec.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Self::parse)
            .collect()
    }
}

impl fmt::Debug for Terminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Terminal")
            .field("public_id", &self.public_id)
            .field("api_secret", &"***")
            .finish()
    }
}

/// Everything the emulator needs to start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Terminals served; empty means the default terminal.
    pub terminals: Vec<Terminal>,
    /// Where state is persisted (snapshot every second when dirty and on shutdown); `None` = in memory.
    pub state_file: Option<PathBuf>,
    /// The ACS page answers at once (posts the confirming `PaRes` to `TermUrl` itself), for automated tests.
    pub acs_auto_submit: bool,
    /// In-flight requests allowed per terminal before the emulator answers 429.
    pub max_concurrent_per_terminal: usize,
    /// How long a transaction may stay `AwaitingAuthentication` before it is declined (5206).
    pub three_ds_ttl: Duration,
    /// Base URL used to build `AcsUrl`; default `http://<bound address>`.
    pub public_base_url: Option<String>,
    /// How long an `X-Request-ID` answer is replayed (the real gateway: an hour). Tests shorten
    /// it to cross the window in seconds.
    pub idempotency_ttl: Duration,
    /// Seed of the dice of `probability` fault rules (reproducible chaos runs); `None`: random.
    pub fault_seed: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            terminals: vec![Terminal::default_terminal()],
            state_file: None,
            acs_auto_submit: false,
            max_concurrent_per_terminal: 30,
            three_ds_ttl: Duration::from_secs(20 * 60),
            public_base_url: None,
            idempotency_ttl: Duration::from_secs(3600),
            fault_seed: None,
        }
    }
}

impl Settings {
    /// Loopback, port 0, the default terminal, in memory.
    pub fn for_tests() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_secret() {
        let t = Terminal::new("pk_x", "very-secret-value");
        let s = format!(
            "{:?}",
            Settings {
                terminals: vec![t],
                ..Settings::for_tests()
            }
        );
        assert!(!s.contains("very-secret-value"), "{s}");
        assert!(s.contains("pk_x"));
    }

    #[test]
    fn parses_terminal_lists() {
        let l = Terminal::parse_list("a:b, c:d:e").unwrap();
        assert_eq!(l[1], Terminal::new("c", "d:e"));
        assert!(Terminal::parse("nocolon").is_err());
        assert!(Terminal::parse(":x").is_err());
    }
}
