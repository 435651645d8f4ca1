//! Helpers that tests of several crates share, kept out of the production crates: a binary that
//! depends on `billing-store` should not carry code that creates databases. Every crate takes this
//! one as a `[dev-dependencies]` entry only, so nothing here reaches a release build.
//!
//! - [`fresh_db`]: a fresh, migrated database per test on the server named by `DATABASE_URL`
//!   (`scripts/test.sh` starts one; see README), so tests run in parallel with no fixed names.

use billing_store::{Store, StoreError};
use sqlx::Connection;

/// Why a test database could not be made. Tests `expect` it: each variant names the fix.
#[derive(Debug, thiserror::Error)]
pub enum TestDbError {
    /// No server to create the database on: run tests with `scripts/test.sh` (it starts
    /// PostgreSQL) or export `DATABASE_URL` of a server you started.
    #[error("DATABASE_URL is not set: run tests with scripts/test.sh (it starts PostgreSQL)")]
    NoDatabaseUrl,
    /// The server refused the `CREATE DATABASE` (down, wrong URL, no CREATEDB right).
    #[error("cannot create the test database: {0}")]
    Create(#[from] sqlx::Error),
    /// Connecting to or migrating the new database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates database `billing_test_<random>` next to `DATABASE_URL`'s, migrates it and returns
/// its URL and a store. Databases are left behind for inspection; `scripts/test.sh` drops them
/// at the start of its next run (it matches the `billing_test_` prefix).
pub async fn fresh_db() -> Result<(String, Store), TestDbError> {
    let base = std::env::var("DATABASE_URL").map_err(|_| TestDbError::NoDatabaseUrl)?;
    let name = format!("billing_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let url = sibling_url(&base, &name);
    let store = Store::connect(&url, 10).await?;
    store.migrate().await?;
    Ok((url, store))
}

/// `base` with its database name replaced by `name` (query parameters kept); `base` without a
/// database path gets `/name` appended.
fn sibling_url(base: &str, name: &str) -> String {
    match base.rfind('/') {
        Some(i) if !base[i + 1..].contains('@') => {
            let (head, tail) = base.split_at(i + 1);
            match tail.find('?') {
                Some(q) => format!("{head}{name}{}", &tail[q..]),
                None => format!("{head}{name}"),
            }
        }
        _ => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_url_replaces_the_database_and_keeps_parameters() {
        assert_eq!(
            sibling_url("postgres://u@h:5432/billing", "t1"),
            "postgres://u@h:5432/t1"
        );
        assert_eq!(
            sibling_url("postgres://u@h:5432/billing?sslmode=disable", "t1"),
            "postgres://u@h:5432/t1?sslmode=disable"
        );
    }

    #[test]
    fn sibling_url_appends_when_base_names_no_database() {
        assert_eq!(sibling_url("postgres://u:p@h", "t1"), "postgres://u:p@h/t1");
    }

    #[tokio::test]
    async fn fresh_db_gives_each_caller_its_own_migrated_database() {
        let (url_a, a) = fresh_db().await.expect("first database");
        let (url_b, b) = fresh_db().await.expect("second database");
        assert_ne!(url_a, url_b);
        let name = |url: &str| url.rsplit('/').next().unwrap_or_default().to_string();
        assert!(name(&url_a).starts_with("billing_test_"), "{url_a}");
        for store in [&a, &b] {
            let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
                .fetch_one(store.pool())
                .await
                .expect("migrations table");
            assert_eq!(applied as usize, billing_store::MIGRATOR.iter().count());
            assert_eq!(store.count("invoices").await.expect("count"), 0);
        }
    }
}
