use billing_domain::messages::{
    CloseUnpaid, OpenInvoice, RecordTransaction, SubscriptionStatus, TariffSnapshot,
};
use billing_domain::{
    AccountId, BillingPeriod, Currency, InvoiceId, Money, PeriodUnit, SubscriptionId, TariffCode,
    TransactionUuid,
};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use std::time::Duration;

/// Repository errors. Each variant says what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist: report NOT_FOUND to the caller.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique constraint was violated by a conflicting (not identical) write: a domain
    /// conflict, reported as ALREADY_EXISTS; never retried blindly.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// Stored data does not fit the domain (bad currency, period...): fix the data.
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    /// Connection or server trouble (SQLSTATE classes 08 connection, 40 transaction rollback,
    /// 53 insufficient resources, 57 operator intervention, 58 system error; I/O, pool and TLS
    /// errors): retryable, the same call may succeed later.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// The database refused the data itself (SQLSTATE class 22 data exception, 23 integrity
    /// violation other than a unique key, 42 and the rest): retrying cannot help; a bug or bad
    /// data an operator must look at.
    #[error("database refused the write (SQLSTATE {sqlstate}): {message}")]
    Refused { sqlstate: String, message: String },
}

/// SQLSTATE classes after which the same statement may succeed: connection exception,
/// transaction rollback (serialization failure, deadlock), insufficient resources, operator
/// intervention (shutdown, cannot connect now), system error.
const TRANSIENT_SQLSTATE_CLASSES: [&str; 5] = ["08", "40", "53", "57", "58"];

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                constraint: db.constraint().unwrap_or("unknown").to_string(),
            },
            sqlx::Error::Database(db) => {
                let sqlstate = db.code().map(|c| c.to_string()).unwrap_or_default();
                if TRANSIENT_SQLSTATE_CLASSES
                    .iter()
                    .any(|class| sqlstate.starts_with(class))
                {
                    StoreError::Database(e)
                } else {
                    StoreError::Refused {
                        message: db.message().to_string(),
                        sqlstate,
                    }
                }
            }
            sqlx::Error::RowNotFound => StoreError::NotFound("row"),
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreError::Corrupt(e.to_string()),
            // I/O, TLS, protocol, pool timeouts and closed pools, migrations, workers: the
            // connection or the server, not the data.
            _ => StoreError::Database(e),
        }
    }
}

impl StoreError {
    /// Whether retrying the same call may succeed (connection trouble, not a logic error).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Database(_))
    }
}

/// A tariff row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tariff {
    pub snapshot: TariffSnapshot,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRow {
    pub id: InvoiceId,
    pub subscription_id: SubscriptionId,
    pub status: String,
    pub amount: Money,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    pub id: TransactionUuid,
    pub gateway_transaction_id: i64,
    pub invoice_id: InvoiceId,
    pub status: String,
    pub reason_code: i32,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub id: SubscriptionId,
    pub account_id: AccountId,
    pub tariff_code: String,
    pub status: String,
    pub workflow_id: String,
    pub current_period_end: Option<DateTime<Utc>>,
    pub card_mask: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

fn tariff_from_row(row: &sqlx::postgres::PgRow) -> Result<Tariff, StoreError> {
    let code: String = row.try_get("code")?;
    let currency: String = row.try_get("currency")?;
    let unit: String = row.try_get("period_unit")?;
    let count: i32 = row.try_get("period_count")?;
    let amount: i64 = row.try_get("amount_minor")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("tariff {code}: {what}"));
    Ok(Tariff {
        snapshot: TariffSnapshot {
            code: TariffCode::parse(&code).map_err(|e| corrupt(&e.to_string()))?,
            name: row.try_get("name")?,
            price: Money::new(
                amount,
                Currency::parse(&currency).map_err(|e| corrupt(&e.to_string()))?,
            )
            .map_err(|e| corrupt(&e.to_string()))?,
            period: BillingPeriod {
                unit: PeriodUnit::parse(&unit).ok_or_else(|| corrupt("period unit"))?,
                count: u32::try_from(count).map_err(|_| corrupt("period count"))?,
            },
        },
        active: row.try_get("active")?,
    })
}

impl Store {
    /// Connects a pool (lazy: the first query opens the first connection).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Database(e.into()))
    }

    pub async fn seed_demo_tariffs(&self) -> Result<(), StoreError> {
        sqlx::raw_sql(crate::DEMO_TARIFFS_SQL)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Inserts or replaces a tariff (admin and tests).
    pub async fn upsert_tariff(&self, t: &TariffSnapshot, active: bool) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tariffs (code, name, amount_minor, currency, period_unit, period_count, active)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, amount_minor = EXCLUDED.amount_minor,
               currency = EXCLUDED.currency, period_unit = EXCLUDED.period_unit,
               period_count = EXCLUDED.period_count, active = EXCLUDED.active",
        )
        .bind(t.code.as_str())
        .bind(&t.name)
        .bind(t.price.minor)
        .bind(t.price.currency.code())
        .bind(t.period.unit.as_str())
        .bind(i32::try_from(t.period.count).unwrap_or(i32::MAX))
        .bind(active)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_active_tariffs(&self) -> Result<Vec<Tariff>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tariffs WHERE active ORDER BY amount_minor, code")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tariff_from_row).collect()
    }

    pub async fn tariff(&self, code: &TariffCode) -> Result<Tariff, StoreError> {
        let row = sqlx::query("SELECT * FROM tariffs WHERE code = $1")
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("tariff"))?;
        tariff_from_row(&row)
    }

    /// Registers the account (first payment), the subscription row and the period's invoice.
    /// Idempotent: a repeat returns the existing invoice. A `void` invoice of the same period
    /// (an earlier start that never reached the gateway) is reopened.
    pub async fn open_invoice(&self, req: &OpenInvoice) -> Result<InvoiceRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO accounts (id, email) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(req.account_id.0)
            .bind(&req.email)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO subscriptions (id, account_id, tariff_code, amount_minor, currency, period_unit,
               period_count, status, workflow_id, anchor_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)
             ON CONFLICT (id) DO UPDATE SET status = 'pending', updated_at = now()
               WHERE subscriptions.status IN ('ended', 'pending')",
        )
        .bind(req.subscription_id.0)
        .bind(req.account_id.0)
        .bind(req.tariff.code.as_str())
        .bind(req.tariff.price.minor)
        .bind(req.tariff.price.currency.code())
        .bind(req.tariff.period.unit.as_str())
        .bind(i32::try_from(req.tariff.period.count).unwrap_or(i32::MAX))
        .bind(req.account_id.workflow_id())
        .bind(req.period_start)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO invoices (id, subscription_id, account_id, period_start, period_end, amount_minor, currency, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open')
             ON CONFLICT (id) DO UPDATE SET status = 'open', updated_at = now() WHERE invoices.status = 'void'",
        )
        .bind(req.invoice_id.0)
        .bind(req.subscription_id.0)
        .bind(req.account_id.0)
        .bind(req.period_start)
        .bind(req.period_end)
        .bind(req.tariff.price.minor)
        .bind(req.tariff.price.currency.code())
        .execute(&mut *tx)
        .await?;
        // Repeats are no-ops only when they say the same: the subscription belongs to this
        // account, the invoice to this subscription, account and amount. Anything else is a
        // conflict and the SQL transaction is rolled back.
        let owner: uuid::Uuid =
            sqlx::query_scalar("SELECT account_id FROM subscriptions WHERE id = $1")
                .bind(req.subscription_id.0)
                .fetch_one(&mut *tx)
                .await?;
        if owner != req.account_id.0 {
            return Err(StoreError::Conflict {
                constraint: "subscriptions_pkey".into(),
            });
        }
        let same: bool = sqlx::query_scalar(
            "SELECT subscription_id = $2 AND account_id = $3 AND amount_minor = $4 AND currency = $5
               FROM invoices WHERE id = $1",
        )
        .bind(req.invoice_id.0)
        .bind(req.subscription_id.0)
        .bind(req.account_id.0)
        .bind(req.tariff.price.minor)
        .bind(req.tariff.price.currency.code())
        .fetch_one(&mut *tx)
        .await?;
        if !same {
            return Err(StoreError::Conflict {
                constraint: "invoices_pkey".into(),
            });
        }
        tx.commit().await?;
        self.invoice(req.invoice_id).await
    }

    pub async fn invoice(&self, id: InvoiceId) -> Result<InvoiceRow, StoreError> {
        let row = sqlx::query("SELECT * FROM invoices WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("invoice"))?;
        let currency: String = row.try_get("currency")?;
        Ok(InvoiceRow {
            id: InvoiceId(row.try_get("id")?),
            subscription_id: SubscriptionId(row.try_get("subscription_id")?),
            status: row.try_get("status")?,
            amount: Money {
                minor: row.try_get("amount_minor")?,
                currency: Currency::parse(&currency)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            },
            period_start: row.try_get("period_start")?,
            period_end: row.try_get("period_end")?,
        })
    }

    /// Records a gateway transaction once (by gateway id). If it is a completed payment, in the
    /// same SQL transaction: saves the card token, marks the invoice paid and the subscription
    /// active until `period_end`. Never a paid invoice without its transaction.
    pub async fn record_transaction(
        &self,
        req: &RecordTransaction,
    ) -> Result<TransactionUuid, StoreError> {
        let t = &req.transaction;
        let id = TransactionUuid::from_gateway(t.gateway_transaction_id.0);
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO transactions (id, gateway_transaction_id, invoice_id, account_id, status, reason_code,
               reason, amount_minor, currency, card_mask)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (gateway_transaction_id) DO NOTHING",
        )
        .bind(id.0)
        .bind(t.gateway_transaction_id.0)
        .bind(req.invoice_id.0)
        .bind(req.account_id.0)
        .bind(&t.status)
        .bind(t.reason_code)
        .bind(&t.reason)
        .bind(t.amount.minor)
        .bind(t.amount.currency.code())
        .bind(&t.card_mask)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // A repeat of this gateway id: a no-op if it is the same payment, a conflict if it
            // says anything else (another invoice, amount or status): never paper over it.
            let (invoice, minor, currency, status): (uuid::Uuid, i64, String, String) =
                sqlx::query_as(
                    "SELECT invoice_id, amount_minor, currency, status FROM transactions
                     WHERE gateway_transaction_id = $1",
                )
                .bind(t.gateway_transaction_id.0)
                .fetch_one(&mut *tx)
                .await?;
            if invoice != req.invoice_id.0
                || minor != t.amount.minor
                || currency.trim() != t.amount.currency.code()
                || status != t.status
            {
                return Err(StoreError::Conflict {
                    constraint: "transactions_gateway_transaction_id_key".into(),
                });
            }
        }
        if t.is_completed() {
            let mut pm_id: Option<uuid::Uuid> = None;
            if let Some(token) = &t.token {
                let row = sqlx::query(
                    "INSERT INTO payment_methods (account_id, gateway_token, card_mask, card_exp, card_type)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (gateway_token) DO UPDATE SET card_mask = EXCLUDED.card_mask
                     RETURNING id, account_id",
                )
                .bind(req.account_id.0)
                .bind(token.expose())
                .bind(t.card_mask.as_deref().unwrap_or(""))
                .bind(&t.card_exp)
                .bind(&t.card_type)
                .fetch_one(&mut *tx)
                .await?;
                let owner: uuid::Uuid = row.try_get("account_id")?;
                if owner != req.account_id.0 {
                    return Err(StoreError::Conflict {
                        constraint: "payment_methods_gateway_token_key".into(),
                    });
                }
                pm_id = Some(row.try_get("id")?);
            }
            sqlx::query(
                "UPDATE invoices SET status = 'paid', paid_at = COALESCE(paid_at, now()), updated_at = now()
                 WHERE id = $1",
            )
            .bind(req.invoice_id.0)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE subscriptions SET status = 'active', updated_at = now(),
                   payment_method_id = COALESCE($2, payment_method_id),
                   current_period_start = (SELECT period_start FROM invoices WHERE id = $3),
                   current_period_end = $4
                 WHERE id = $1",
            )
            .bind(req.subscription_id.0)
            .bind(pm_id)
            .bind(req.invoice_id.0)
            .bind(req.period_end)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Sets a subscription's status (and tariff, when a change took effect).
    pub async fn sync_subscription(
        &self,
        req: &billing_domain::messages::SyncSubscription,
    ) -> Result<(), StoreError> {
        match &req.tariff {
            Some(t) => {
                sqlx::query(
                    "UPDATE subscriptions SET status = $2, tariff_code = $3, amount_minor = $4, currency = $5,
                       period_unit = $6, period_count = $7, updated_at = now() WHERE id = $1",
                )
                .bind(req.subscription_id.0)
                .bind(req.status.as_str())
                .bind(t.code.as_str())
                .bind(t.price.minor)
                .bind(t.price.currency.code())
                .bind(t.period.unit.as_str())
                .bind(i32::try_from(t.period.count).unwrap_or(i32::MAX))
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE subscriptions SET status = $2, updated_at = now() WHERE id = $1",
                )
                .bind(req.subscription_id.0)
                .bind(req.status.as_str())
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Invoices of a subscription, oldest period first.
    pub async fn invoices_of(
        &self,
        subscription: SubscriptionId,
    ) -> Result<Vec<InvoiceRow>, StoreError> {
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT id FROM invoices WHERE subscription_id = $1 ORDER BY period_start",
        )
        .bind(subscription.0)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.invoice(InvoiceId(id)).await?);
        }
        Ok(out)
    }

    /// Closes an unpaid invoice (`void` / `uncollectible`) and sets the subscription status.
    /// Never touches a paid invoice.
    pub async fn close_unpaid(&self, req: &CloseUnpaid) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE invoices SET status = $2, updated_at = now() WHERE id = $1 AND status = 'open'",
        )
        .bind(req.invoice_id.0)
        .bind(&req.invoice_status)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE subscriptions SET status = $2, updated_at = now() WHERE id = $1")
            .bind(req.subscription_id.0)
            .bind(status_str(req.subscription_status))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn transactions_for_invoice(
        &self,
        id: InvoiceId,
    ) -> Result<Vec<TransactionRow>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM transactions WHERE invoice_id = $1 ORDER BY created_at")
                .bind(id.0)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(TransactionRow {
                    id: TransactionUuid(r.try_get("id")?),
                    gateway_transaction_id: r.try_get("gateway_transaction_id")?,
                    invoice_id: InvoiceId(r.try_get("invoice_id")?),
                    status: r.try_get("status")?,
                    reason_code: r.try_get("reason_code")?,
                    amount_minor: r.try_get("amount_minor")?,
                })
            })
            .collect()
    }

    pub async fn subscription(&self, id: SubscriptionId) -> Result<SubscriptionRow, StoreError> {
        let r = sqlx::query(
            "SELECT s.*, pm.card_mask FROM subscriptions s
             LEFT JOIN payment_methods pm ON pm.id = s.payment_method_id WHERE s.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("subscription"))?;
        Ok(SubscriptionRow {
            id: SubscriptionId(r.try_get("id")?),
            account_id: AccountId(r.try_get("account_id")?),
            tariff_code: r.try_get("tariff_code")?,
            status: r.try_get("status")?,
            workflow_id: r.try_get("workflow_id")?,
            current_period_end: r.try_get("current_period_end")?,
            card_mask: r.try_get("card_mask")?,
        })
    }

    /// Count of rows in a table (tests and the stack's smoke check).
    pub async fn count(&self, table: &'static str) -> Result<i64, StoreError> {
        let sql = match table {
            "invoices" => "SELECT count(*) FROM invoices",
            "transactions" => "SELECT count(*) FROM transactions",
            "subscriptions" => "SELECT count(*) FROM subscriptions",
            "accounts" => "SELECT count(*) FROM accounts",
            "payment_methods" => "SELECT count(*) FROM payment_methods",
            _ => return Err(StoreError::NotFound("table")),
        };
        Ok(sqlx::query_scalar(sql).fetch_one(&self.pool).await?)
    }
}

impl Store {
    /// Stores the final answer of a start request (idempotent; the first answer wins).
    pub async fn save_start_outcome(
        &self,
        account: AccountId,
        request_id: &str,
        subscription: SubscriptionId,
        outcome: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO start_requests (account_id, request_id, subscription_id, outcome)
             VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, request_id) DO NOTHING",
        )
        .bind(account.0)
        .bind(request_id)
        .bind(subscription.0)
        .bind(outcome)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            // Saved before: the same answer again is a no-op; another one is refused (the first
            // answer is what the caller was told).
            let same: bool = sqlx::query_scalar(
                "SELECT subscription_id = $3 AND outcome = $4 FROM start_requests
                 WHERE account_id = $1 AND request_id = $2",
            )
            .bind(account.0)
            .bind(request_id)
            .bind(subscription.0)
            .bind(outcome)
            .fetch_one(&self.pool)
            .await?;
            if !same {
                return Err(StoreError::Conflict {
                    constraint: "start_requests_pkey".into(),
                });
            }
        }
        Ok(())
    }

    /// The stored final answer of a subscription's first payment, if any.
    pub async fn start_outcome_by_subscription(
        &self,
        subscription: SubscriptionId,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT outcome FROM start_requests WHERE subscription_id = $1")
                .bind(subscription.0)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The stored final answer of a start request, if any.
    pub async fn start_outcome(
        &self,
        account: AccountId,
        request_id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT outcome FROM start_requests WHERE account_id = $1 AND request_id = $2",
        )
        .bind(account.0)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}

impl Store {
    /// Records a pending 3-D Secure challenge (idempotent by gateway transaction id).
    pub async fn record_3ds_challenge(
        &self,
        c: &billing_domain::messages::ThreeDsChallenge,
    ) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO three_ds_challenges (gateway_transaction_id, subscription_id, account_id, invoice_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT (gateway_transaction_id) DO NOTHING",
        )
        .bind(c.gateway_transaction_id.0)
        .bind(c.subscription_id.0)
        .bind(c.account_id.0)
        .bind(c.invoice_id.0)
        .execute(&self.pool)
        .await?;
        if inserted.rows_affected() == 0 {
            // A repeat for the same invoice is a no-op; for another one it is refused, or the
            // bank's answer would reach the wrong subscription.
            let same: bool = sqlx::query_scalar(
                "SELECT subscription_id = $2 AND account_id = $3 AND invoice_id = $4
                   FROM three_ds_challenges WHERE gateway_transaction_id = $1",
            )
            .bind(c.gateway_transaction_id.0)
            .bind(c.subscription_id.0)
            .bind(c.account_id.0)
            .bind(c.invoice_id.0)
            .fetch_one(&self.pool)
            .await?;
            if !same {
                return Err(StoreError::Conflict {
                    constraint: "three_ds_challenges_pkey".into(),
                });
            }
        }
        Ok(())
    }

    /// The challenge of gateway transaction `id` (the MD the ACS posts back).
    pub async fn three_ds_challenge(
        &self,
        id: i64,
    ) -> Result<billing_domain::messages::ThreeDsChallenge, StoreError> {
        let r = sqlx::query("SELECT * FROM three_ds_challenges WHERE gateway_transaction_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("3-D Secure transaction"))?;
        Ok(billing_domain::messages::ThreeDsChallenge {
            gateway_transaction_id: billing_domain::GatewayTransactionId(
                r.try_get("gateway_transaction_id")?,
            ),
            subscription_id: SubscriptionId(r.try_get("subscription_id")?),
            account_id: AccountId(r.try_get("account_id")?),
            invoice_id: InvoiceId(r.try_get("invoice_id")?),
        })
    }
}

fn status_str(s: SubscriptionStatus) -> &'static str {
    s.as_str()
}
