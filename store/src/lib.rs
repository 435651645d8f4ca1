//! PostgreSQL persistence for billing.
//!
//! - [`MIGRATOR`]: the schema, from `migrations/` at the workspace root (applied ones never edited).
//! - [`Store`]: the repository. Every write is idempotent by a business key (invoice per
//!   subscription + period, transaction per gateway id), so activity retries are harmless.
//! - [`StoreError`]: what went wrong; a unique-constraint violation is
//!   [`StoreError::Conflict`] with the constraint's name (the edges answer ALREADY_EXISTS).
//!
//! Tests: `tests/store/` runs every write against real PostgreSQL (one fresh database per test,
//! from the `billing-test-support` dev-dependency; no test helper lives in this crate).

mod store;

pub use store::*;

/// The billing schema migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Demo tariffs for the local stack (idempotent SQL).
pub const DEMO_TARIFFS_SQL: &str = include_str!("../seed/demo_tariffs.sql");
