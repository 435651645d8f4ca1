//! Payload encryption: every payload the billing binaries hand to Temporal (workflow, activity
//! and local-activity inputs and results, signals, updates, query answers, memos, heartbeat and
//! failure details) is sealed with AES-256-GCM before it leaves the process, so the Temporal
//! server, its database and whoever reads a history see ciphertext, not card cryptograms or
//! e-mail addresses.
//!
//! ## Format
//! An encrypted payload has the metadata `encoding: binary/encrypted`,
//! `encryption-key-id: <key id>` and `encryption-cipher: AES-256-GCM`, and the data
//! `nonce (12 random bytes) || AES-256-GCM(protobuf of the original Payload) || tag (16 bytes)`,
//! with the key id as associated data. The whole original payload is sealed, its metadata
//! (`encoding: json/plain` …) included, so decoding restores it exactly; relabelling a payload
//! with another key id fails authentication.
//!
//! ## What stays readable
//! - Payloads written before encryption was switched on: decoding passes every payload that is
//!   not `binary/encrypted` through unchanged, so old histories still replay and read.
//! - Search attributes: the SDK never encodes them. Keep personal data out of them.
//! - Failure messages and stack traces: [`EncryptionCodec::data_converter`] uses
//!   `DefaultFailureConverter::new(false)` because callers match on message prefixes. Failure
//!   *details* are encrypted; never put a secret in an error message.
//! - The bookkeeping core writes into a local-activity marker itself (`data`: sequence number,
//!   attempt, activity id and type, times). The marker's `result` (and `input`) is what the SDK
//!   encoded, hence encrypted.
//!
//! ## Keys and rotation
//! `BILLING_PAYLOAD_KEYS=key_id:base64key[,key_id:base64key…]`, newest first. The first key
//! encrypts; every key decrypts, chosen by the key id the payload carries. To rotate: generate a
//! key (`openssl rand -base64 32`, or [`PayloadKeys::generate_entry`]), *prepend* it on every
//! worker and API instance (any of them may read what another wrote), and keep the old entry
//! until no history still holds payloads under it (no open workflow started before the
//! rotation, and the namespace's retention period has passed). A key dropped too early makes
//! those histories unreadable: their workflow tasks fail with "unknown key id".
//!
//! ## Replaying histories
//! The workflow replayer does not take a client, so it does not inherit its converter: give it
//! the same one (`WorkflowReplayerOptions::builder().data_converter(codec.data_converter())`)
//! to replay encrypted histories. Plain recorded histories replay with or without it.
//!
//! ## Codec server
//! [`EncryptionCodec::encode_json`] and [`EncryptionCodec::decode_json`] are the bodies of a
//! Temporal remote codec (`POST /encode`, `POST /decode`, used by the Web UI and
//! `temporal --codec-endpoint`). Whoever may call `/decode` reads every payload: mount it
//! behind admin authentication only.

use base64::alphabet;
use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use prost::Message as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretSlice};
use std::{fmt, future::Future, pin::Pin, str::FromStr, sync::Arc};
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadCodec, PayloadConversionError, PayloadConverter,
    SerializationContextData,
};
use temporalio_common::protos::temporal::api::common::v1::{Payload, Payloads};

/// The environment variable that holds the keys.
pub const PAYLOAD_KEYS_VAR: &str = "BILLING_PAYLOAD_KEYS";
/// `encoding` metadata of an encrypted payload.
pub const ENCRYPTED_ENCODING: &str = "binary/encrypted";
/// Metadata naming the key an encrypted payload was sealed with.
pub const KEY_ID_METADATA: &str = "encryption-key-id";
/// Metadata naming the cipher of an encrypted payload.
pub const CIPHER_METADATA: &str = "encryption-cipher";
/// The only cipher: AES-256-GCM, 96-bit random nonce, 128-bit tag.
pub const CIPHER: &str = "AES-256-GCM";

const ENCODING_METADATA: &str = "encoding";
const KEY_LEN: usize = 32;
const MAX_KEY_ID_LEN: usize = 64;

const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The payload keys from `BILLING_PAYLOAD_KEYS`: at least one, ids unique, the first encrypts.
/// `Debug` shows the key ids only; the key bytes live inside ring's key schedule and are never
/// printed.
#[derive(Clone)]
pub struct PayloadKeys {
    /// Non-empty, unique ids, newest (encrypting) first.
    keys: Arc<[PayloadKey]>,
}

struct PayloadKey {
    id: String,
    key: LessSafeKey,
}

impl PayloadKeys {
    /// Parses `key_id:base64key[,key_id:base64key…]`, newest first. A key is 32 bytes in base64
    /// (standard or URL-safe alphabet, padding optional); a key id is 1 to 64 characters of
    /// `A-Z a-z 0-9 . _ -`. Errors name the variable and the entry, never the key.
    pub fn parse(value: &str) -> Result<Self, PayloadKeysError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(PayloadKeysError::Empty);
        }
        let mut keys: Vec<PayloadKey> = Vec::new();
        for (index, raw) in value.split(',').enumerate() {
            let entry = index + 1;
            let raw = raw.trim();
            if raw.is_empty() {
                return Err(PayloadKeysError::EmptyEntry { entry });
            }
            let Some((id, encoded)) = raw.split_once(':') else {
                return Err(PayloadKeysError::MissingSeparator { entry });
            };
            let id = id.trim();
            if !is_valid_key_id(id) {
                return Err(PayloadKeysError::BadKeyId { entry });
            }
            let key_id = id.to_owned();
            let bytes = decode_key(encoded.trim()).ok_or_else(|| PayloadKeysError::BadBase64 {
                entry,
                key_id: key_id.clone(),
            })?;
            let len = bytes.expose_secret().len();
            if len != KEY_LEN {
                return Err(PayloadKeysError::WrongLength { entry, key_id, len });
            }
            if let Some(first) = keys.iter().position(|k| k.id == key_id) {
                return Err(PayloadKeysError::DuplicateKeyId {
                    key_id,
                    first: first + 1,
                    entry,
                });
            }
            let key = UnboundKey::new(&AES_256_GCM, bytes.expose_secret()).map_err(|_| {
                PayloadKeysError::WrongLength {
                    entry,
                    key_id: key_id.clone(),
                    len,
                }
            })?;
            keys.push(PayloadKey {
                id: key_id,
                key: LessSafeKey::new(key),
            });
        }
        Ok(Self { keys: keys.into() })
    }

    /// A fresh `key_id:base64key` entry (32 random bytes, standard base64) for scripts, docs
    /// and tests. Prepend it to `BILLING_PAYLOAD_KEYS` to rotate.
    ///
    /// # Panics
    /// If `key_id` is not 1 to 64 characters of `A-Z a-z 0-9 . _ -`, or the system random
    /// generator fails.
    pub fn generate_entry(key_id: &str) -> String {
        assert!(
            is_valid_key_id(key_id),
            "a key id is 1 to 64 characters of A-Z a-z 0-9 . _ -"
        );
        let mut key = SecretBox::new(Box::new([0u8; KEY_LEN]));
        SystemRandom::new()
            .fill(key.expose_secret_mut())
            .expect("the system random generator failed");
        format!(
            "{key_id}:{}",
            general_purpose::STANDARD.encode(key.expose_secret())
        )
    }

    /// The key ids, newest (encrypting) first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// The id of the key new payloads are encrypted with (the first entry).
    pub fn encrypting_key_id(&self) -> &str {
        &self.encrypting().id
    }

    fn encrypting(&self) -> &PayloadKey {
        // The parser never builds an empty list.
        &self.keys[0]
    }

    fn get(&self, key_id: &str) -> Option<&PayloadKey> {
        self.keys.iter().find(|k| k.id == key_id)
    }
}

impl FromStr for PayloadKeys {
    type Err = PayloadKeysError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::parse(value)
    }
}

impl fmt::Debug for PayloadKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadKeys")
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn is_valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Standard alphabet first; URL-safe when the value uses `-` or `_`. The decoded bytes are
/// zeroed when dropped.
fn decode_key(encoded: &str) -> Option<SecretSlice<u8>> {
    STANDARD_ANY_PADDING
        .decode(encoded)
        .or_else(|_| URL_SAFE_ANY_PADDING.decode(encoded))
        .ok()
        .map(SecretSlice::from)
}

/// What is wrong with `BILLING_PAYLOAD_KEYS`. Messages name the variable and the entry (counted
/// from 1) and say what to fix; they never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadKeysError {
    /// Nothing given: set one or more entries.
    #[error(
        "BILLING_PAYLOAD_KEYS is empty: give one or more `key_id:base64key` entries, newest \
         first (a key is 32 random bytes in base64: `openssl rand -base64 32`)"
    )]
    Empty,
    /// Two commas in a row, or a comma at either end.
    #[error(
        "BILLING_PAYLOAD_KEYS entry {entry} is empty: entries are `key_id:base64key` separated \
         by single commas"
    )]
    EmptyEntry {
        /// The entry's position, from 1.
        entry: usize,
    },
    /// An entry without `:` between key id and key.
    #[error("BILLING_PAYLOAD_KEYS entry {entry} is not `key_id:base64key` (no `:`)")]
    MissingSeparator {
        /// The entry's position, from 1.
        entry: usize,
    },
    /// The key id is empty, too long or has other characters.
    #[error(
        "BILLING_PAYLOAD_KEYS entry {entry}: the key id (before `:`) must be 1 to 64 characters \
         of A-Z a-z 0-9 . _ -"
    )]
    BadKeyId {
        /// The entry's position, from 1.
        entry: usize,
    },
    /// The key is not base64.
    #[error(
        "BILLING_PAYLOAD_KEYS entry {entry} (key id `{key_id}`): the key is not base64 (standard \
         or URL-safe alphabet)"
    )]
    BadBase64 {
        /// The entry's position, from 1.
        entry: usize,
        /// Its key id.
        key_id: String,
    },
    /// The key does not decode to 32 bytes.
    #[error(
        "BILLING_PAYLOAD_KEYS entry {entry} (key id `{key_id}`): the key is {len} bytes, \
         AES-256 needs exactly 32 (`openssl rand -base64 32`)"
    )]
    WrongLength {
        /// The entry's position, from 1.
        entry: usize,
        /// Its key id.
        key_id: String,
        /// How many bytes the key decoded to.
        len: usize,
    },
    /// Two entries share a key id: payloads could not say which key sealed them.
    #[error(
        "BILLING_PAYLOAD_KEYS: key id `{key_id}` is used by entries {first} and {entry}; every \
         key needs an id of its own"
    )]
    DuplicateKeyId {
        /// The repeated key id.
        key_id: String,
        /// The first entry with it, from 1.
        first: usize,
        /// The repeating entry, from 1.
        entry: usize,
    },
}

/// clap value parser for [`PayloadKeys`]. Unlike a `FromStr`-based parser, its errors do not
/// quote the rejected value (clap would print the keys on a typo).
#[derive(Clone, Copy, Debug, Default)]
pub struct PayloadKeysParser;

impl clap::builder::TypedValueParser for PayloadKeysParser {
    type Value = PayloadKeys;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<PayloadKeys, clap::Error> {
        let invalid = |message: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{message}\n"),
            )
            .with_cmd(cmd)
        };
        let value = value
            .to_str()
            .ok_or_else(|| invalid(format!("{PAYLOAD_KEYS_VAR} is not valid UTF-8")))?;
        PayloadKeys::parse(value).map_err(|e| invalid(e.to_string()))
    }
}

/// Why a payload could not be encrypted or decrypted, or a codec-server request answered.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The codec-server request body is not `{"payloads":[{"metadata":{..},"data":".."}]}`
    /// (proto3 JSON, bytes in base64). The caller's fault: answer 400. The message says where,
    /// never what the body held.
    #[error("malformed codec request: {0}")]
    MalformedRequest(String),
    /// The payload was sealed with a key `BILLING_PAYLOAD_KEYS` does not hold (retired too
    /// early, or not yet rolled out here): add the key back. Not the caller's fault.
    #[error(
        "payload encrypted with key id `{key_id}`, which BILLING_PAYLOAD_KEYS does not hold: add \
         that key back (keep retired keys until no history holds payloads under them)"
    )]
    UnknownKeyId {
        /// The key id the payload names.
        key_id: String,
    },
    /// The payload fails authentication under the key of its id: its data or key id was
    /// altered or truncated, or the key bytes under that id are not the ones it was sealed
    /// with. Check `BILLING_PAYLOAD_KEYS` on every instance; otherwise treat it as tampering.
    #[error(
        "payload encrypted with key id `{key_id}` fails authentication: it was altered, or the \
         key under that id in BILLING_PAYLOAD_KEYS is not the one it was encrypted with"
    )]
    Undecryptable {
        /// The key id the payload names.
        key_id: String,
    },
    /// Marked `binary/encrypted` but not in this codec's format (no or bad key id, another
    /// cipher, or not a payload inside): written by something else, or corrupted.
    #[error("encrypted payload not in the AES-256-GCM codec format: {0}")]
    UnsupportedFormat(&'static str),
    /// The system random generator (or AES-GCM itself, for a payload beyond its size limit)
    /// failed: retry; check the host's entropy source.
    #[error("encrypting a payload failed: {0}")]
    Sealing(&'static str),
    /// The codec-server response could not be written (a bug): answer 500.
    #[error("writing the codec response: {0}")]
    Response(#[source] serde_json::Error),
}

/// The [`PayloadCodec`] that seals payloads with the newest of [`PayloadKeys`] and opens them
/// with whichever key they name; plain payloads pass decoding unchanged. `Debug` shows key ids
/// only.
#[derive(Clone)]
pub struct EncryptionCodec {
    keys: PayloadKeys,
    rng: SystemRandom,
}

impl fmt::Debug for EncryptionCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionCodec")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl EncryptionCodec {
    /// A codec over `keys`.
    pub fn new(keys: PayloadKeys) -> Self {
        Self {
            keys,
            rng: SystemRandom::new(),
        }
    }

    /// Its keys.
    pub fn keys(&self) -> &PayloadKeys {
        &self.keys
    }

    /// The data converter for clients, workers and replayers: the default (JSON) payload
    /// converter, failure messages left readable (callers match on their prefixes), and this
    /// codec.
    pub fn data_converter(&self) -> DataConverter {
        DataConverter::new(
            PayloadConverter::default(),
            DefaultFailureConverter::new(false),
            self.clone(),
        )
    }

    /// Encrypts each payload with the newest key; already encrypted ones stay as they are.
    pub fn encode_payloads(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads
            .into_iter()
            .map(|p| self.encode_payload(p))
            .collect()
    }

    /// Decrypts each `binary/encrypted` payload; every other payload passes unchanged.
    pub fn decode_payloads(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads
            .into_iter()
            .map(|p| self.decode_payload(p))
            .collect()
    }

    /// Encrypts one payload with the newest key, unless it is encrypted already.
    pub fn encode_payload(&self, payload: Payload) -> Result<Payload, CodecError> {
        if is_encrypted(&payload) {
            return Ok(payload);
        }
        let key = self.keys.encrypting();
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| CodecError::Sealing("the system random generator failed"))?;
        let mut sealed = payload.encode_to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| CodecError::Sealing("AES-256-GCM refused the payload (too large)"))?;
        let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        Ok(Payload {
            metadata: [
                (ENCODING_METADATA, ENCRYPTED_ENCODING),
                (KEY_ID_METADATA, key.id.as_str()),
                (CIPHER_METADATA, CIPHER),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
            .collect(),
            data,
            ..Default::default()
        })
    }

    /// Decrypts one payload if it is `binary/encrypted`; returns any other payload unchanged.
    pub fn decode_payload(&self, mut payload: Payload) -> Result<Payload, CodecError> {
        if !is_encrypted(&payload) {
            return Ok(payload);
        }
        let key_id = payload
            .metadata
            .get(KEY_ID_METADATA)
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|id| is_valid_key_id(id))
            .ok_or(CodecError::UnsupportedFormat(
                "no valid `encryption-key-id` metadata",
            ))?;
        if payload
            .metadata
            .get(CIPHER_METADATA)
            .is_some_and(|c| c.as_slice() != CIPHER.as_bytes())
        {
            return Err(CodecError::UnsupportedFormat(
                "`encryption-cipher` is not AES-256-GCM",
            ));
        }
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| CodecError::UnknownKeyId {
                key_id: key_id.to_owned(),
            })?;
        let undecryptable = || CodecError::Undecryptable {
            key_id: key_id.to_owned(),
        };
        if payload.data.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(undecryptable());
        }
        let (nonce, sealed) = payload.data.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| undecryptable())?;
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(key_id.as_bytes()), sealed)
            .map_err(|_| undecryptable())?;
        Payload::decode(&*plain).map_err(|_| {
            CodecError::UnsupportedFormat("the decrypted data is not a Temporal payload")
        })
    }

    /// Codec server `POST /encode`: `{"payloads":[…]}` in, the same shape out, encrypted.
    pub async fn encode_json(&self, body: &[u8]) -> Result<Vec<u8>, CodecError> {
        let payloads = parse_codec_request(body)?;
        codec_response(&self.encode_payloads(payloads)?)
    }

    /// Codec server `POST /decode`: `{"payloads":[…]}` in, the same shape out, decrypted
    /// (plain payloads unchanged).
    pub async fn decode_json(&self, body: &[u8]) -> Result<Vec<u8>, CodecError> {
        let payloads = parse_codec_request(body)?;
        codec_response(&self.decode_payloads(payloads)?)
    }
}

type CodecFuture =
    Pin<Box<dyn Future<Output = Result<Vec<Payload>, PayloadConversionError>> + Send>>;

/// The work is a few microseconds of CPU per payload, done before the future is returned.
impl PayloadCodec for EncryptionCodec {
    fn encode(&self, _: &SerializationContextData, payloads: Vec<Payload>) -> CodecFuture {
        let result = self.encode_payloads(payloads).map_err(conversion_error);
        Box::pin(std::future::ready(result))
    }

    fn decode(&self, _: &SerializationContextData, payloads: Vec<Payload>) -> CodecFuture {
        let result = self.decode_payloads(payloads).map_err(conversion_error);
        Box::pin(std::future::ready(result))
    }
}

fn conversion_error(e: CodecError) -> PayloadConversionError {
    PayloadConversionError::EncodingError(Box::new(e))
}

/// Whether `payload` is marked as encrypted by this codec's format (`encoding:
/// binary/encrypted`).
pub fn is_encrypted(payload: &Payload) -> bool {
    payload
        .metadata
        .get(ENCODING_METADATA)
        .is_some_and(|e| e.as_slice() == ENCRYPTED_ENCODING.as_bytes())
}

fn parse_codec_request(body: &[u8]) -> Result<Vec<Payload>, CodecError> {
    serde_json::from_slice::<Payloads>(body)
        .map(|p| p.payloads)
        .map_err(|e| {
            use serde_json::error::Category;
            // serde's own message may quote the body; say only what kind of problem and where.
            let what = match e.classify() {
                Category::Syntax => "not JSON",
                Category::Eof => "truncated JSON",
                Category::Data => {
                    "not {\"payloads\":[{\"metadata\":{..},\"data\":\"..\"}]} with bytes in base64"
                }
                Category::Io => "unreadable",
            };
            CodecError::MalformedRequest(format!(
                "body is {what} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
}

fn codec_response(payloads: &[Payload]) -> Result<Vec<u8>, CodecError> {
    // Not `Payloads` itself: proto3 JSON would drop an empty list, and clients expect the key.
    #[derive(serde::Serialize)]
    struct Body<'a> {
        payloads: &'a [Payload],
    }
    serde_json::to_vec(&Body { payloads }).map_err(CodecError::Response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CRYPTOGRAM: &str =
        "eyJUeXBlIjoiQ2xvdWRDYXJkIiwiY3J5cHRvZ3JhbSI6IjQxMTExMTExMTExMTExMTEifQ";
    const EMAIL: &str = "anna.karenina@example.com";

    fn json_payload(json: &str) -> Payload {
        Payload {
            metadata: HashMap::from([("encoding".to_owned(), b"json/plain".to_vec())]),
            data: json.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    fn secret_payload() -> Payload {
        json_payload(&format!(
            r#"{{"card_cryptogram":"{CRYPTOGRAM}","email":"{EMAIL}","amount_minor":99900}}"#
        ))
    }

    fn codec(value: &str) -> EncryptionCodec {
        EncryptionCodec::new(value.parse().unwrap())
    }

    fn key_part(entry: &str) -> &str {
        entry.split_once(':').unwrap().1
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    fn meta<'a>(p: &'a Payload, key: &str) -> &'a [u8] {
        p.metadata.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    #[test]
    fn round_trip_restores_the_whole_payload() {
        let c = codec(&PayloadKeys::generate_entry("k1"));
        let original = secret_payload();
        let encrypted = c.encode_payload(original.clone()).unwrap();
        assert_eq!(meta(&encrypted, "encoding"), b"binary/encrypted");
        assert_eq!(meta(&encrypted, "encryption-key-id"), b"k1");
        assert_eq!(meta(&encrypted, "encryption-cipher"), b"AES-256-GCM");
        assert_eq!(encrypted.metadata.len(), 3);
        assert_eq!(c.decode_payload(encrypted).unwrap(), original);
    }

    #[test]
    fn ciphertext_shows_neither_cryptogram_nor_email() {
        let c = codec(&PayloadKeys::generate_entry("k1"));
        let encrypted = c.encode_payload(secret_payload()).unwrap();
        let wire = encrypted.encode_to_vec();
        for secret in [CRYPTOGRAM, EMAIL, "json/plain", "99900"] {
            assert!(!contains(&wire, secret), "{secret} leaked");
        }
        // A fresh nonce each time: the same payload never encrypts to the same bytes.
        let again = c.encode_payload(secret_payload()).unwrap();
        assert_ne!(encrypted.data, again.data);
        assert_eq!(
            encrypted.data.len(),
            NONCE_LEN + secret_payload().encoded_len() + 16
        );
    }

    #[test]
    fn plain_payloads_pass_decode_unchanged_and_encrypted_ones_are_not_sealed_twice() {
        let c = codec(&PayloadKeys::generate_entry("k1"));
        let plain = vec![
            secret_payload(),
            Payload::default(),
            Payload {
                metadata: HashMap::from([("encoding".to_owned(), b"binary/null".to_vec())]),
                ..Default::default()
            },
        ];
        assert_eq!(c.decode_payloads(plain.clone()).unwrap(), plain);
        let once = c.encode_payload(secret_payload()).unwrap();
        assert_eq!(c.encode_payload(once.clone()).unwrap(), once);
    }

    #[test]
    fn rotation_reads_old_payloads_and_writes_with_the_new_key() {
        let old_entry = PayloadKeys::generate_entry("2024-01");
        let new_entry = PayloadKeys::generate_entry("2025-06");
        let before = codec(&old_entry);
        let written_before = before.encode_payload(secret_payload()).unwrap();

        let after = codec(&format!("{new_entry}, {old_entry}"));
        assert_eq!(after.keys().encrypting_key_id(), "2025-06");
        assert_eq!(
            after.decode_payload(written_before).unwrap(),
            secret_payload()
        );
        let written_after = after.encode_payload(secret_payload()).unwrap();
        assert_eq!(meta(&written_after, "encryption-key-id"), b"2025-06");

        // An instance not yet given the new key cannot read it, and says which key is missing.
        let e = before.decode_payload(written_after).unwrap_err();
        assert!(matches!(&e, CodecError::UnknownKeyId { key_id } if key_id == "2025-06"));
        let message = e.to_string();
        assert!(message.contains("2025-06") && message.contains("BILLING_PAYLOAD_KEYS"));
    }

    #[test]
    fn tampered_or_relabelled_payloads_are_refused() {
        let (e1, e2) = (
            PayloadKeys::generate_entry("k1"),
            PayloadKeys::generate_entry("k2"),
        );
        let c = codec(&format!("{e1},{e2}"));
        let good = c.encode_payload(secret_payload()).unwrap();

        let mut flipped = good.clone();
        let last = flipped.data.len() - 20;
        flipped.data[last] ^= 0x01;
        let e = c.decode_payload(flipped).unwrap_err();
        assert!(
            matches!(&e, CodecError::Undecryptable { key_id } if key_id == "k1"),
            "{e}"
        );

        let mut relabelled = good.clone();
        relabelled
            .metadata
            .insert("encryption-key-id".into(), b"k2".to_vec());
        assert!(matches!(
            c.decode_payload(relabelled),
            Err(CodecError::Undecryptable { .. })
        ));

        let mut truncated = good.clone();
        truncated.data.truncate(NONCE_LEN + 3);
        assert!(matches!(
            c.decode_payload(truncated),
            Err(CodecError::Undecryptable { .. })
        ));

        // Same id, other key bytes (a botched rotation): refused, not garbage.
        let impostor = codec(&PayloadKeys::generate_entry("k1"));
        assert!(matches!(
            impostor.decode_payload(good.clone()),
            Err(CodecError::Undecryptable { .. })
        ));

        let mut no_id = good;
        no_id.metadata.remove("encryption-key-id");
        assert!(matches!(
            c.decode_payload(no_id),
            Err(CodecError::UnsupportedFormat(_))
        ));
    }

    #[test]
    fn key_list_errors_name_the_variable_and_never_echo_the_key() {
        let short = general_purpose::STANDARD.encode([7u8; 16]);
        let good = PayloadKeys::generate_entry("k1");
        let good_key = key_part(&good).to_owned();
        let cases = [
            ("", "empty"),
            ("  ", "empty"),
            (&format!("k2:{short}") as &str, "16 bytes"),
            (&format!("k2:{good_key}!!"), "not base64"),
            (&format!("{good},k1:{good_key}"), "used by entries 1 and 2"),
            (&format!("{good},"), "entry 2 is empty"),
            (&good_key, "no `:`"),
            (&format!("bad id:{good_key}"), "key id"),
            (&format!(":{good_key}"), "key id"),
            (&format!("{}:{good_key}", "k".repeat(65)), "key id"),
        ];
        for (value, expected) in cases {
            let message = PayloadKeys::parse(value).unwrap_err().to_string();
            assert!(message.contains("BILLING_PAYLOAD_KEYS"), "{message}");
            assert!(message.contains(expected), "{value:?}: {message}");
            assert!(!message.contains(&good_key), "key echoed: {message}");
            assert!(!message.contains(&short), "key echoed: {message}");
        }
    }

    #[test]
    fn keys_parse_in_either_base64_alphabet_with_or_without_padding() {
        let bytes = [0xfbu8; 32]; // encodes with `+`/`/` in standard, `-`/`_` in URL-safe
        let standard = general_purpose::STANDARD.encode(bytes);
        let url_safe_unpadded = general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        assert_ne!(standard.trim_end_matches('='), url_safe_unpadded);
        let keys =
            PayloadKeys::parse(&format!(" a.b_c-1:{standard} , old:{url_safe_unpadded} ")).unwrap();
        assert_eq!(keys.key_ids().collect::<Vec<_>>(), ["a.b_c-1", "old"]);
        // Same bytes under both ids: a payload sealed by one id opens only under that id.
        let c = EncryptionCodec::new(keys);
        let p = c.encode_payload(secret_payload()).unwrap();
        assert_eq!(c.decode_payload(p).unwrap(), secret_payload());
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let e1 = PayloadKeys::generate_entry("current");
        let e2 = PayloadKeys::generate_entry("retired");
        let keys = PayloadKeys::parse(&format!("{e1},{e2}")).unwrap();
        let c = EncryptionCodec::new(keys.clone());
        for shown in [
            format!("{keys:?}"),
            format!("{keys:#?}"),
            format!("{c:?}"),
            format!("{:?}", c.data_converter()),
        ] {
            assert!(
                !shown.contains(key_part(&e1)) && !shown.contains(key_part(&e2)),
                "{shown}"
            );
        }
        assert_eq!(
            format!("{keys:?}"),
            r#"PayloadKeys { key_ids: ["current", "retired"], .. }"#
        );
    }

    #[test]
    fn generated_entries_are_fresh_32_byte_keys() {
        let a = PayloadKeys::generate_entry("k");
        let b = PayloadKeys::generate_entry("k");
        assert_ne!(a, b);
        assert_eq!(
            general_purpose::STANDARD
                .decode(key_part(&a))
                .unwrap()
                .len(),
            32
        );
        assert!(PayloadKeys::parse(&a).is_ok());
    }

    #[tokio::test]
    async fn the_data_converter_encrypts_what_workflows_send() {
        let dc = codec(&PayloadKeys::generate_entry("k1")).data_converter();
        let ctx = SerializationContextData::None;
        let value = serde_json::json!({ "email": EMAIL, "cryptogram": CRYPTOGRAM });
        let payload = dc.to_payload(&ctx, &value).await.unwrap();
        assert!(is_encrypted(&payload));
        assert!(!contains(&payload.data, EMAIL));
        let back: serde_json::Value = dc.from_payload(&ctx, payload).await.unwrap();
        assert_eq!(back, value);
        // A history recorded before encryption still reads.
        let plain = DataConverter::default()
            .to_payload(&ctx, &value)
            .await
            .unwrap();
        let read: serde_json::Value = dc.from_payload(&ctx, plain).await.unwrap();
        assert_eq!(read, value);
    }

    #[tokio::test]
    async fn codec_server_json_round_trips() {
        let c = codec(&PayloadKeys::generate_entry("k1"));
        let b64 = |s: &str| general_purpose::STANDARD.encode(s);
        let data = format!(r#"{{"email":"{EMAIL}"}}"#);
        let request = format!(
            r#"{{"payloads":[{{"metadata":{{"encoding":"{}"}},"data":"{}"}},{{"metadata":{{"encoding":"{}"}},"data":"{}"}}]}}"#,
            b64("json/plain"),
            b64(&data),
            b64("json/plain"),
            b64("\"second\""),
        );

        let encoded = c.encode_json(request.as_bytes()).await.unwrap();
        assert!(!contains(&encoded, EMAIL) && !contains(&encoded, &b64(&data)));
        let shape: serde_json::Value = serde_json::from_slice(&encoded).unwrap();
        let list = shape["payloads"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["metadata"]["encoding"], b64("binary/encrypted"));
        assert_eq!(list[0]["metadata"]["encryption-key-id"], b64("k1"));

        let decoded = c.decode_json(&encoded).await.unwrap();
        let expected: serde_json::Value = serde_json::from_str(&request).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&decoded).unwrap(),
            expected
        );
        // Plain payloads pass /decode unchanged, too.
        let passed = c.decode_json(request.as_bytes()).await.unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&passed).unwrap(),
            expected
        );
        // An empty list keeps its key.
        assert_eq!(
            c.encode_json(br#"{"payloads":[]}"#).await.unwrap(),
            br#"{"payloads":[]}"#
        );
    }

    #[tokio::test]
    async fn malformed_codec_requests_are_the_callers_fault() {
        let c = codec(&PayloadKeys::generate_entry("k1"));
        for body in [
            &b"payloads=1"[..],
            br#"{"payloads":[{"data":"#,
            br#"{"payloads":[{"data":5}]}"#,
            br#"{"payloads":[{"data":"not base64 at all: anna.karenina@example.com"}]}"#,
            br#"{"payloads":"anna.karenina@example.com"}"#,
        ] {
            let e = c.decode_json(body).await.unwrap_err();
            assert!(matches!(e, CodecError::MalformedRequest(_)), "{e}");
            assert!(!e.to_string().contains(EMAIL), "body echoed: {e}");
        }

        // A well-formed request for a key this instance lacks is a key problem, not a 400.
        let other = codec(&PayloadKeys::generate_entry("elsewhere"));
        let foreign = other
            .encode_json(br#"{"payloads":[{"data":"AQID"}]}"#)
            .await
            .unwrap();
        assert!(matches!(
            c.decode_json(&foreign).await,
            Err(CodecError::UnknownKeyId { .. })
        ));
    }
}
