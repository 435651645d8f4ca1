//! Start-up and shutdown errors of the emulator (request errors are CloudPayments-shaped bodies, see `api`).

use std::path::PathBuf;

/// What can stop the emulator from starting or from shutting down cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound; pick another address or free the port.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// Address that was asked for.
        addr: std::net::SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The state file exists but cannot be read or parsed; fix or delete it.
    #[error("cannot load state file {path}: {reason}")]
    LoadState {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The state file could not be written; check the directory and free space.
    #[error("cannot write state file {path}: {source}")]
    SaveState {
        /// The state file.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The settings are inconsistent (for example two terminals with one Public ID).
    #[error("invalid settings: {0}")]
    Settings(String),
    /// Accepting connections failed in a way the server cannot recover from.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}
