//! PostgreSQL persistence for billing.
//!
//! - [`MIGRATOR`]: the schema, from `migrations/` at the workspace root (applied ones never edited).
//! - [`Store`]: the repository. Every write is idempotent by a business key (invoice per
//!   subscription + period, transaction per gateway id), so activity retries are harmless.
//! - [`testdb`]: a fresh database per test.

mod store;
pub mod testdb;

pub use store::*;

/// The billing schema migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Demo tariffs for the local stack (idempotent SQL).
pub const DEMO_TARIFFS_SQL: &str = include_str!("../seed/demo_tariffs.sql");
