//! The Temporal connection, configured the same way by the worker and the starter API:
//! address, namespace, task queue, and optional transport security: TLS with a CA of your own,
//! mutual TLS (client certificate and key), or an API key (Temporal Cloud; it implies TLS); and
//! optional payload encryption ([`crate::codec`]) applied by the client and every worker built
//! on it.

use crate::codec::{EncryptionCodec, PayloadKeys, PayloadKeysParser};
use crate::config::ConfigError;
use secrecy::{ExposeSecret, SecretString};
use std::path::PathBuf;
use temporalio_client::{
    Client, ClientOptions, ClientTlsOptions, Connection, ConnectionOptions, TlsOptions,
};

/// Where Temporal is and how to reach it. `Debug` never shows the API key nor payload key bytes
/// (only the key ids).
#[derive(Clone, clap::Args)]
pub struct TemporalSettings {
    /// Temporal frontend: `host:port`, or a URL (`https://` implies TLS).
    #[arg(
        long = "temporal-address",
        env = "TEMPORAL_ADDRESS",
        default_value = "127.0.0.1:7233"
    )]
    pub address: String,
    /// Temporal namespace.
    #[arg(
        long = "temporal-namespace",
        env = "TEMPORAL_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
    /// Task queue of the billing workflows (worker and API must agree).
    #[arg(
        long = "task-queue",
        env = "BILLING_TASK_QUEUE",
        default_value = "billing"
    )]
    pub task_queue: String,
    /// Connect with TLS (implied by a CA or client certificate file, an API key or `https://`).
    #[arg(long = "temporal-tls", env = "TEMPORAL_TLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub tls: bool,
    /// PEM file of the CA that signed the server's certificate (default: the system's roots).
    #[arg(long = "temporal-tls-ca-file", env = "TEMPORAL_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `TEMPORAL_TLS_KEY_FILE`).
    #[arg(long = "temporal-tls-cert-file", env = "TEMPORAL_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[arg(long = "temporal-tls-key-file", env = "TEMPORAL_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Name to verify the server's certificate against (default: the address's host).
    #[arg(long = "temporal-tls-server-name", env = "TEMPORAL_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
    /// API key (Temporal Cloud); sent as a bearer token over TLS.
    #[arg(
        long = "temporal-api-key",
        env = "TEMPORAL_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<SecretString>,
    /// Payload encryption keys, `key_id:base64key[,key_id:base64key...]`, newest first: the
    /// first encrypts, all decrypt (to rotate, prepend a new key and keep the old ones while
    /// histories hold payloads under them). Keys are 32 bytes (`openssl rand -base64 32`).
    /// Unset: payloads go to Temporal in plain JSON. Prefer the variable to the flag (argv is
    /// visible to other users of the host).
    #[arg(
        long = "payload-keys",
        env = "BILLING_PAYLOAD_KEYS",
        hide_env_values = true,
        value_parser = PayloadKeysParser
    )]
    pub payload_keys: Option<PayloadKeys>,
}

impl std::fmt::Debug for TemporalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporalSettings")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("task_queue", &self.task_queue)
            .field("tls", &self.uses_tls())
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_server_name", &self.tls_server_name)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("payload_keys", &self.payload_keys)
            .finish_non_exhaustive()
    }
}

impl TemporalSettings {
    /// A plain (no TLS) connection to `address`, namespace `default`: the local stack and tests.
    pub fn local(address: impl Into<String>, task_queue: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            namespace: "default".into(),
            task_queue: task_queue.into(),
            tls: false,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_server_name: None,
            api_key: None,
            payload_keys: None,
        }
    }

    /// The same settings with payloads encrypted under `keys`.
    pub fn with_payload_keys(mut self, keys: PayloadKeys) -> Self {
        self.payload_keys = Some(keys);
        self
    }

    /// The payload codec, if payload keys are set (the codec-server endpoint uses it).
    pub fn codec(&self) -> Option<EncryptionCodec> {
        self.payload_keys.clone().map(EncryptionCodec::new)
    }

    /// Whether the connection uses TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls
            || self.address.starts_with("https://")
            || self.tls_ca_file.is_some()
            || self.tls_cert_file.is_some()
            || self.api_key.is_some()
    }

    fn target(&self) -> Result<url::Url, ConfigError> {
        let url = if self.address.contains("://") {
            self.address.clone()
        } else if self.uses_tls() {
            format!("https://{}", self.address)
        } else {
            format!("http://{}", self.address)
        };
        url::Url::parse(&url)
            .map_err(|e| ConfigError(format!("TEMPORAL_ADDRESS `{}`: {e}", self.address)))
    }

    fn tls_options(&self) -> Result<Option<TlsOptions>, ConfigError> {
        if !self.uses_tls() {
            return Ok(None);
        }
        let read = |path: &PathBuf, variable: &str| {
            std::fs::read(path)
                .map_err(|e| ConfigError(format!("{variable} `{}`: {e}", path.display())))
        };
        let ca = self
            .tls_ca_file
            .as_ref()
            .map(|p| read(p, "TEMPORAL_TLS_CA_FILE"))
            .transpose()?;
        let client = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some(
                ClientTlsOptions::builder()
                    .client_cert(read(cert, "TEMPORAL_TLS_CERT_FILE")?)
                    .client_private_key(read(key, "TEMPORAL_TLS_KEY_FILE")?)
                    .build(),
            ),
            (None, None) => None,
            _ => {
                return Err(ConfigError(
                    "TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE go together (mutual TLS)"
                        .into(),
                ))
            }
        };
        Ok(Some(
            TlsOptions::builder()
                .maybe_server_root_ca_cert(ca)
                .maybe_domain(self.tls_server_name.clone())
                .maybe_client_tls_options(client)
                .build(),
        ))
    }

    /// Connects a client. Every failure names what to check. With payload keys, the client (and
    /// every worker built on it, which inherits its data converter) encrypts payloads.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        let options = ConnectionOptions::new(self.target()?)
            .identity(format!("billing@{}", std::process::id()))
            .maybe_tls_options(self.tls_options()?)
            .maybe_api_key(self.api_key.as_ref().map(|k| k.expose_secret().to_string()))
            .build();
        let connection = Connection::connect(options).await.map_err(|e| {
            ConnectError::Unreachable(format!(
                "connecting to Temporal at {} (TEMPORAL_ADDRESS{}): {e}",
                self.address,
                if self.uses_tls() { ", TLS" } else { "" }
            ))
        })?;
        let options = ClientOptions::new(self.namespace.clone())
            .maybe_data_converter(self.codec().map(|c| c.data_converter()))
            .build();
        Client::new(connection, options).map_err(|e| ConnectError::Unreachable(e.to_string()))
    }
}

/// Connects a plain client (no TLS, no payload encryption) to `address` in `namespace` (tests
/// and tools).
pub async fn connect_to(address: &str, namespace: &str) -> Result<Client, ConnectError> {
    let mut s = TemporalSettings::local(address, "unused");
    s.namespace = namespace.to_string();
    s.connect().await
}

/// Why a Temporal client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A setting is wrong (the message names it).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Temporal could not be reached: check TEMPORAL_ADDRESS and the TLS settings.
    #[error("temporal: {0}")]
    Unreachable(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        temporal: TemporalSettings,
    }

    #[test]
    fn tls_is_implied_by_what_needs_it() {
        let mut s = TemporalSettings::local("temporal.example:7233", "billing");
        assert!(!s.uses_tls());
        assert_eq!(
            s.target().unwrap().as_str(),
            "http://temporal.example:7233/"
        );
        s.api_key = Some(SecretString::from("k".to_string()));
        assert!(s.uses_tls());
        assert_eq!(
            s.target().unwrap().as_str(),
            "https://temporal.example:7233/"
        );
        assert!(!format!("{s:?}").contains("\"k\""));
    }

    #[test]
    fn half_a_client_certificate_is_refused() {
        let mut s = TemporalSettings::local("127.0.0.1:7233", "billing");
        s.tls_cert_file = Some("/nonexistent/cert.pem".into());
        let e = s.tls_options().unwrap_err().to_string();
        assert!(e.contains("TEMPORAL_TLS_CERT_FILE"), "{e}");
    }

    #[test]
    fn flags_parse_with_defaults() {
        let c = Cli::try_parse_from(["x", "--temporal-address", "t:1", "--temporal-tls", "true"])
            .unwrap();
        assert_eq!(c.temporal.address, "t:1");
        assert!(c.temporal.tls);
        assert!(Cli::try_parse_from(["x", "--temporal-tls", "yes"]).is_err());
    }

    #[test]
    fn payload_keys_parse_from_the_flag_and_show_only_their_ids() {
        let new = PayloadKeys::generate_entry("2025-06");
        let old = PayloadKeys::generate_entry("2024-01");
        let c = Cli::try_parse_from(["x", "--payload-keys", &format!("{new},{old}")]).unwrap();
        let shown = format!("{:?}", c.temporal);
        assert!(
            shown.contains("2025-06") && shown.contains("2024-01"),
            "{shown}"
        );
        for entry in [&new, &old] {
            assert!(!shown.contains(entry.split_once(':').unwrap().1), "{shown}");
        }
        let codec = c.temporal.codec().unwrap();
        assert_eq!(codec.keys().encrypting_key_id(), "2025-06");

        let local = TemporalSettings::local("127.0.0.1:7233", "billing");
        assert!(local.payload_keys.is_none() && local.codec().is_none());
        let keyed = local.with_payload_keys(new.parse().unwrap());
        assert_eq!(keyed.codec().unwrap().keys().encrypting_key_id(), "2025-06");
    }

    #[test]
    fn a_bad_payload_key_stops_start_up_without_printing_it() {
        let key = new_key_part();
        let e = Cli::try_parse_from(["x", "--payload-keys", &format!("k1:{key}zz")])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("BILLING_PAYLOAD_KEYS"), "{e}");
        assert!(!e.contains(&key), "{e}");
    }

    fn new_key_part() -> String {
        let entry = PayloadKeys::generate_entry("k");
        entry
            .split_once(':')
            .unwrap()
            .1
            .trim_end_matches('=')
            .to_string()
    }
}
