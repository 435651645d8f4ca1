//! Starter API settings. Defaults fit the local stack; see README for every variable.

use billing_domain::messages::BillingConfig;
use std::net::SocketAddr;
use std::time::Duration;

/// `Debug` never shows the database password.
#[derive(Clone)]
pub struct Settings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub temporal_address: String,
    pub namespace: String,
    pub task_queue: String,
    pub database_url: String,
    /// Longest a StartSubscription call waits for the payment outcome before answering
    /// UNAVAILABLE (the payment goes on; a retry with the same request id picks it up).
    pub start_timeout: Duration,
    /// Apply migrations at start.
    pub migrate: bool,
    /// Insert the demo tariffs at start (local stack).
    pub seed_demo: bool,
    /// Durations handed to each new subscription workflow.
    pub billing: BillingConfig,
    /// This API's public base URL, used to build the 3-D Secure TermUrl
    /// (`{public_url}/api/v1/3ds/callback`). Default: `http://<bound HTTP address>`.
    pub public_url: Option<String>,
    /// Where the TermUrl sends the browser after a paid 3-D Secure payment (query string gets
    /// `subscription_id` and `status`). Default: this API's `/3ds/result` page.
    pub three_ds_success_url: Option<String>,
    /// Same, after a declined or expired one.
    pub three_ds_failure_url: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("temporal_address", &self.temporal_address)
            .field("namespace", &self.namespace)
            .field("task_queue", &self.task_queue)
            .field(
                "database_url",
                &billing_domain::mask::redact_url(&self.database_url),
            )
            .field("start_timeout", &self.start_timeout)
            .field("migrate", &self.migrate)
            .field("seed_demo", &self.seed_demo)
            .field("billing", &self.billing)
            .field("public_url", &self.public_url)
            .field("three_ds_success_url", &self.three_ds_success_url)
            .field("three_ds_failure_url", &self.three_ds_failure_url)
            .finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}=`{v}` is not valid")),
    }
}

fn millis(name: &str, default: Duration) -> anyhow::Result<Duration> {
    Ok(Duration::from_millis(parse(
        name,
        default.as_millis() as u64,
    )?))
}

impl Settings {
    /// Both listeners on 127.0.0.1 port 0, schema already migrated by the caller, no demo seed:
    /// what tests and benchmarks run in-process.
    pub fn local(
        temporal_address: String,
        database_url: String,
        task_queue: String,
        billing: BillingConfig,
    ) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            temporal_address,
            namespace: "default".into(),
            task_queue,
            database_url,
            start_timeout: Duration::from_secs(60),
            migrate: false,
            seed_demo: false,
            billing,
            public_url: None,
            three_ds_success_url: None,
            three_ds_failure_url: None,
        }
    }

    pub fn from_env() -> anyhow::Result<Self> {
        let d = BillingConfig::default();
        Ok(Self {
            grpc_addr: parse("BILLING_GRPC_ADDR", SocketAddr::from(([127, 0, 0, 1], 50051)))?,
            http_addr: parse("BILLING_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            temporal_address: var("TEMPORAL_ADDRESS").unwrap_or_else(|| "127.0.0.1:7233".into()),
            namespace: var("TEMPORAL_NAMESPACE").unwrap_or_else(|| "default".into()),
            task_queue: var("BILLING_TASK_QUEUE").unwrap_or_else(|| billing_workflows::TASK_QUEUE.into()),
            database_url: var("DATABASE_URL").ok_or_else(|| anyhow::anyhow!("DATABASE_URL is required"))?,
            start_timeout: millis("BILLING_START_TIMEOUT_MS", Duration::from_secs(30))?,
            migrate: parse("BILLING_MIGRATE", true)?,
            seed_demo: parse("BILLING_SEED_DEMO", false)?,
            billing: BillingConfig {
                charge_attempt_timeout: millis("BILLING_CHARGE_ATTEMPT_TIMEOUT_MS", d.charge_attempt_timeout)?,
                charge_retry_window: millis("BILLING_CHARGE_RETRY_WINDOW_MS", d.charge_retry_window)?,
                retry_initial_interval: millis("BILLING_RETRY_INITIAL_MS", d.retry_initial_interval)?,
                retry_max_interval: millis("BILLING_RETRY_MAX_MS", d.retry_max_interval)?,
                side_effect_timeout: millis("BILLING_SIDE_EFFECT_TIMEOUT_MS", d.side_effect_timeout)?,
                three_ds_expiry: millis("BILLING_3DS_EXPIRY_MS", d.three_ds_expiry)?,
                dunning: billing_domain::messages::DunningPolicy {
                    retry_after: match var("BILLING_DUNNING_RETRY_AFTER_SECS") {
                        None => d.dunning.retry_after.clone(),
                        Some(v) => v
                            .split(',')
                            .map(|x| x.trim().parse::<u64>().map(Duration::from_secs))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|_| anyhow::anyhow!("BILLING_DUNNING_RETRY_AFTER_SECS must be comma-separated seconds, e.g. 86400,259200,432000"))?,
                    },
                    grace: Duration::from_secs(parse("BILLING_DUNNING_GRACE_SECS", d.dunning.grace.as_secs())?),
                },
                test_clock: parse("BILLING_TEST_CLOCK", false)?,
                renewals_per_run: renewals_per_run_from_env()?,
            },
            public_url: var("BILLING_PUBLIC_URL"),
            three_ds_success_url: var("BILLING_3DS_SUCCESS_URL"),
            three_ds_failure_url: var("BILLING_3DS_FAILURE_URL"),
        })
    }
}

/// `BILLING_RENEWALS_PER_RUN` (at least 1), default [`BillingConfig::default`]'s (12). The
/// benches read it here too, so they start subscriptions exactly as the API would.
pub fn renewals_per_run_from_env() -> anyhow::Result<u32> {
    match parse(
        "BILLING_RENEWALS_PER_RUN",
        BillingConfig::default().renewals_per_run,
    )? {
        0 => anyhow::bail!("BILLING_RENEWALS_PER_RUN must be at least 1"),
        n => Ok(n),
    }
}
