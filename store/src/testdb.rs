//! A fresh, migrated database per test on the server named by `DATABASE_URL`
//! (the test script starts one; see README).

use crate::{Store, StoreError};
use sqlx::Connection;

/// Creates database `billing_test_<random>` next to `DATABASE_URL`'s, migrates it and returns
/// its URL and a store. Databases are left behind for inspection; `scripts/test.sh` drops them
/// at the start of its next run.
pub async fn fresh() -> Result<(String, Store), StoreError> {
    let base = std::env::var("DATABASE_URL").map_err(|_| {
        StoreError::Corrupt(
            "DATABASE_URL is not set: run tests with scripts/test.sh (it starts PostgreSQL)".into(),
        )
    })?;
    let name = format!("billing_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let url = match base.rfind('/') {
        Some(i) if !base[i + 1..].contains('@') => {
            let (head, tail) = base.split_at(i + 1);
            match tail.find('?') {
                Some(q) => format!("{head}{name}{}", &tail[q..]),
                None => format!("{head}{name}"),
            }
        }
        _ => format!("{base}/{name}"),
    };
    let store = Store::connect(&url, 10).await?;
    store.migrate().await?;
    Ok((url, store))
}
