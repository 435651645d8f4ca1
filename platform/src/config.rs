//! Configuration conventions shared by every binary. Each binary reads its flags and environment
//! through clap (`#[arg(long, env = ...)]`): one definition per variable, `--help` lists every
//! variable with its default, a bad value stops start-up naming the variable. Booleans are
//! `true` / `false`; durations are integers with their unit in the variable's name (`_MS`,
//! `_SECS`).

use std::time::Duration;

/// How a binary may fill in what is not configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Every external address and credential must be given; nothing points at the local
    /// emulator or stand-ins by default.
    #[default]
    Production,
    /// The local stack and the tests: missing gateway, access and notification settings default
    /// to the gateway emulator and the stand-ins on their usual local ports.
    Dev,
}

impl Mode {
    /// `value` if set; otherwise `dev_default` in dev mode, an error naming `variable` in
    /// production.
    pub fn or_dev_default(
        self,
        value: Option<String>,
        variable: &str,
        dev_default: &str,
    ) -> Result<String, ConfigError> {
        match (value.filter(|v| !v.trim().is_empty()), self) {
            (Some(v), _) => Ok(v),
            (None, Mode::Dev) => Ok(dev_default.to_string()),
            (None, Mode::Production) => Err(ConfigError(format!(
                "{variable} is required (only BILLING_MODE=dev defaults it to {dev_default})"
            ))),
        }
    }
}

/// A setting is missing or malformed; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// clap value parser: a whole number of milliseconds.
pub fn millis(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("`{value}` is not a whole number of milliseconds"))
}

/// clap value parser: a whole number of seconds.
pub fn secs(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("`{value}` is not a whole number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers_say_what_is_wrong() {
        assert_eq!(millis("1500"), Ok(Duration::from_millis(1500)));
        assert!(millis("1.5s").unwrap_err().contains("milliseconds"));
        assert_eq!(secs(" 86400"), Ok(Duration::from_secs(86_400)));
        assert!(secs("-1").unwrap_err().contains("seconds"));
    }

    #[test]
    fn only_dev_mode_fills_in_local_defaults() {
        assert_eq!(
            Mode::Dev
                .or_dev_default(None, "GATEWAY_URL", "http://127.0.0.1:8090")
                .unwrap(),
            "http://127.0.0.1:8090"
        );
        let e = Mode::Production
            .or_dev_default(Some(" ".into()), "GATEWAY_URL", "http://127.0.0.1:8090")
            .unwrap_err();
        assert!(e.to_string().contains("GATEWAY_URL is required"), "{e}");
        assert_eq!(
            Mode::Production
                .or_dev_default(
                    Some("https://api.cloudpayments.ru".into()),
                    "GATEWAY_URL",
                    "x"
                )
                .unwrap(),
            "https://api.cloudpayments.ru"
        );
    }
}
