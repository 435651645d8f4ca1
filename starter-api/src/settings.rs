//! Starter API settings: every flag and environment variable, defined once with clap
//! (`starter-api --help` lists them with their defaults); a bad value stops start-up naming the
//! variable. [`BillingConfigArgs`] are the durations and limits handed to each new subscription
//! workflow; the benches read them through the same definitions.

use crate::auth::{AuthSettings, JwksSource};
use billing_domain::messages::{BillingConfig, DunningPolicy};
use billing_platform::config::{millis, secs, Mode};
use billing_platform::temporal::TemporalSettings;
use clap::{ArgAction, Args, Parser};
use std::net::SocketAddr;
use std::time::Duration;

/// The durations and limits of the workflows this API starts.
#[derive(Clone, Debug, Args)]
pub struct BillingConfigArgs {
    /// Longest a single gateway call may take before the attempt is abandoned.
    #[arg(long = "charge-attempt-timeout-ms", env = "BILLING_CHARGE_ATTEMPT_TIMEOUT_MS", default_value = "30000", value_parser = millis)]
    pub charge_attempt_timeout: Duration,
    /// How long transient gateway failures are retried before a first payment answers
    /// "unavailable".
    #[arg(long = "charge-retry-window-ms", env = "BILLING_CHARGE_RETRY_WINDOW_MS", default_value = "60000", value_parser = millis)]
    pub charge_retry_window: Duration,
    /// First retry delay of a step; doubles up to BILLING_RETRY_MAX_MS.
    #[arg(long = "retry-initial-ms", env = "BILLING_RETRY_INITIAL_MS", default_value = "500", value_parser = millis)]
    pub retry_initial_interval: Duration,
    /// Longest retry delay of a step.
    #[arg(long = "retry-max-ms", env = "BILLING_RETRY_MAX_MS", default_value = "10000", value_parser = millis)]
    pub retry_max_interval: Duration,
    /// Timeout of one database / access / notification step attempt (they retry without limit).
    #[arg(long = "side-effect-timeout-ms", env = "BILLING_SIDE_EFFECT_TIMEOUT_MS", default_value = "15000", value_parser = millis)]
    pub side_effect_timeout: Duration,
    /// How long a 3-D Secure challenge waits for the bank's answer.
    #[arg(long = "three-ds-expiry-ms", env = "BILLING_3DS_EXPIRY_MS", default_value = "900000", value_parser = millis)]
    pub three_ds_expiry: Duration,
    /// Dunning: retries of a failed renewal, in seconds after its due date.
    #[arg(long = "dunning-retry-after-secs", env = "BILLING_DUNNING_RETRY_AFTER_SECS", default_value = "86400,259200,432000", value_delimiter = ',', num_args = 1.., value_parser = secs)]
    pub dunning_retry_after: Vec<Duration>,
    /// Dunning: access is kept this long after the due date, then suspended.
    #[arg(long = "dunning-grace-secs", env = "BILLING_DUNNING_GRACE_SECS", default_value = "604800", value_parser = secs)]
    pub dunning_grace: Duration,
    /// Dunning: cancelled for non-payment this long after the due date (at least the grace,
    /// after the last retry).
    #[arg(long = "dunning-cancel-after-secs", env = "BILLING_DUNNING_CANCEL_AFTER_SECS", default_value = "1209600", value_parser = secs)]
    pub dunning_cancel_after: Duration,
    /// After an unknown charge outcome: first wait before asking the gateway again (doubles).
    #[arg(long = "reconcile-interval-ms", env = "BILLING_RECONCILE_INTERVAL_MS", default_value = "10000", value_parser = millis)]
    pub reconcile_interval: Duration,
    /// Longest wait between two reconcile rounds.
    #[arg(long = "reconcile-max-interval-ms", env = "BILLING_RECONCILE_MAX_INTERVAL_MS", default_value = "900000", value_parser = millis)]
    pub reconcile_max_interval: Duration,
    /// How long an unknown outcome is reconciled before the subscription is parked in
    /// needs_attention for an operator.
    #[arg(long = "reconcile-window-secs", env = "BILLING_RECONCILE_WINDOW_SECS", default_value = "86400", value_parser = secs)]
    pub reconcile_window: Duration,
    /// Test mode only (with BILLING_TEST_CLOCK): after a charge answered, fail every workflow
    /// task for this long (the chaos run's "task that keeps failing after the charge"; 0: never).
    #[arg(long = "test-fail-tasks-after-charge-ms", env = "BILLING_TEST_FAIL_TASKS_AFTER_CHARGE_MS", default_value = "0", value_parser = millis)]
    pub test_fail_tasks_after_charge: Duration,
    /// Test mode only: the share of charges (per cent, 1–100) that BILLING_TEST_FAIL_TASKS_AFTER_CHARGE_MS applies to.
    #[arg(long, env = "BILLING_TEST_FAIL_TASKS_AFTER_CHARGE_PERCENT", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub test_fail_tasks_after_charge_percent: u32,
    /// Allow `AdvanceTestClock` (never in production).
    #[arg(long, env = "BILLING_TEST_CLOCK", default_value_t = false, action = ArgAction::Set)]
    pub test_clock: bool,
    /// Paid renewals per workflow run before continue-as-new (at least 1).
    #[arg(long, env = "BILLING_RENEWALS_PER_RUN", default_value_t = BillingConfig::default().renewals_per_run, value_parser = renewals_per_run)]
    pub renewals_per_run: u32,
}

fn renewals_per_run(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "BILLING_RENEWALS_PER_RUN must be an integer of at least 1, got `{v}`"
        )),
    }
}

impl BillingConfigArgs {
    /// The billing variables of the environment (the benches start workflows with them).
    pub fn from_env() -> Result<BillingConfig, String> {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            billing: BillingConfigArgs,
        }
        Only::try_parse_from(["starter-api"])
            .map_err(|e| e.to_string())?
            .billing
            .into_config()
    }

    /// The workflows' configuration, validated (the dunning phases in order, the test hooks only
    /// with the test clock); the message names what to fix.
    pub fn into_config(self) -> Result<BillingConfig, String> {
        let test_clock = self.test_clock;
        let config = BillingConfig::from(self);
        config.dunning.validate()?;
        if !config.test_fail_tasks_after_charge.is_zero() && !test_clock {
            return Err("BILLING_TEST_FAIL_TASKS_AFTER_CHARGE_MS needs BILLING_TEST_CLOCK=true (test mode only)".into());
        }
        if config.reconcile_max_interval < config.reconcile_interval {
            return Err(
                "BILLING_RECONCILE_MAX_INTERVAL_MS must be at least BILLING_RECONCILE_INTERVAL_MS"
                    .into(),
            );
        }
        Ok(config)
    }
}

impl From<BillingConfigArgs> for BillingConfig {
    fn from(a: BillingConfigArgs) -> Self {
        BillingConfig {
            charge_attempt_timeout: a.charge_attempt_timeout,
            charge_retry_window: a.charge_retry_window,
            retry_initial_interval: a.retry_initial_interval,
            retry_max_interval: a.retry_max_interval,
            side_effect_timeout: a.side_effect_timeout,
            three_ds_expiry: a.three_ds_expiry,
            dunning: DunningPolicy {
                retry_after: a.dunning_retry_after,
                grace: a.dunning_grace,
                cancel_after: Some(a.dunning_cancel_after),
            },
            test_clock: a.test_clock,
            renewals_per_run: a.renewals_per_run,
            reconcile_interval: a.reconcile_interval,
            reconcile_max_interval: a.reconcile_max_interval,
            reconcile_window: a.reconcile_window,
            test_fail_tasks_after_charge: a.test_fail_tasks_after_charge,
            test_fail_tasks_after_charge_percent: a.test_fail_tasks_after_charge_percent,
        }
    }
}

/// `starter-api`'s command line and environment.
#[derive(Debug, Parser)]
#[command(
    name = "starter-api",
    version,
    about = "The billing edge: gRPC BillingService and the REST API with OpenAPI docs"
)]
pub struct ApiArgs {
    /// `production` or `dev` (the local stack).
    #[arg(long, env = "BILLING_MODE", value_enum, default_value_t = Mode::Production)]
    pub mode: Mode,
    /// gRPC listen address.
    #[arg(long, env = "BILLING_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// REST listen address.
    #[arg(long, env = "BILLING_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    #[command(flatten)]
    pub temporal: TemporalSettings,
    /// PostgreSQL URL (`sslmode` in its query string is honoured).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Longest wait for a payment outcome before answering UNAVAILABLE (retry with the same
    /// request id).
    #[arg(long = "start-timeout-ms", env = "BILLING_START_TIMEOUT_MS", default_value = "30000", value_parser = millis)]
    pub start_timeout: Duration,
    /// Apply the database migrations at start.
    #[arg(long, env = "BILLING_MIGRATE", default_value_t = true, action = ArgAction::Set)]
    pub migrate: bool,
    /// Insert the demo tariffs at start (local stack).
    #[arg(long, env = "BILLING_SEED_DEMO", default_value_t = false, action = ArgAction::Set)]
    pub seed_demo: bool,
    /// This API's public base URL, for the 3-D Secure TermUrl (default: http://<BILLING_HTTP_ADDR>).
    #[arg(long, env = "BILLING_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Where the TermUrl sends the browser after a paid 3-D Secure payment (default: this API's
    /// /3ds/result page).
    #[arg(long = "three-ds-success-url", env = "BILLING_3DS_SUCCESS_URL")]
    pub three_ds_success_url: Option<String>,
    /// Same, after a declined or expired one.
    #[arg(long = "three-ds-failure-url", env = "BILLING_3DS_FAILURE_URL")]
    pub three_ds_failure_url: Option<String>,
    #[command(flatten)]
    pub billing: BillingConfigArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// Who may call: the auth service's JWTs (see `auth`).
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// `required` (default) or `disabled`: every caller acts as an admin, for a dev stack
    /// without tokens only (refused in production mode, warned at every start).
    #[arg(long = "auth", env = "BILLING_AUTH", value_enum, default_value_t = AuthToggle::Required)]
    pub toggle: AuthToggle,
    /// The auth service's public keys as a JWKS file (read at start; restart to rotate).
    #[arg(long = "auth-jwks-file", env = "BILLING_AUTH_JWKS_FILE")]
    pub jwks_file: Option<std::path::PathBuf>,
    /// The auth service's JWKS URL (fetched at start, refetched when a token names an unknown
    /// key id). Dev mode default: the dev issuer of the stand-ins.
    #[arg(long = "auth-jwks-url", env = "BILLING_AUTH_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// The `iss` tokens must carry. Dev mode default: the stand-ins' dev issuer.
    #[arg(long = "auth-issuer", env = "BILLING_AUTH_ISSUER")]
    pub issuer: Option<String>,
    /// The `aud` tokens must carry.
    #[arg(
        long = "auth-audience",
        env = "BILLING_AUTH_AUDIENCE",
        default_value = "billing"
    )]
    pub audience: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthToggle {
    Required,
    Disabled,
}

/// The dev issuer of the stand-ins (`billing-stand-ins`, `STAND_INS_AUTH_ADDR`).
pub const DEV_JWKS_URL: &str = "http://127.0.0.1:50063/.well-known/jwks.json";
pub const DEV_ISSUER: &str = "billing-dev-auth";

impl AuthArgs {
    /// `None`: auth disabled (dev only).
    pub fn into_settings(self, mode: Mode) -> Result<Option<AuthSettings>, String> {
        if self.toggle == AuthToggle::Disabled {
            if mode == Mode::Production {
                return Err("BILLING_AUTH=disabled is for a dev stack only (BILLING_MODE=dev); in production set BILLING_AUTH_JWKS_URL or BILLING_AUTH_JWKS_FILE and BILLING_AUTH_ISSUER".into());
            }
            return Ok(None);
        }
        let dev = mode == Mode::Dev;
        let jwks = match (self.jwks_file, self.jwks_url) {
            (Some(_), Some(_)) => {
                return Err(
                    "set one of BILLING_AUTH_JWKS_FILE and BILLING_AUTH_JWKS_URL, not both".into(),
                )
            }
            (Some(f), None) => JwksSource::File(f),
            (None, Some(u)) => {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return Err(format!(
                        "BILLING_AUTH_JWKS_URL must be an http(s) URL, got `{u}`"
                    ));
                }
                JwksSource::Url(u)
            }
            (None, None) if dev => JwksSource::Url(DEV_JWKS_URL.into()),
            (None, None) => {
                return Err("authentication is required: set BILLING_AUTH_JWKS_URL (or BILLING_AUTH_JWKS_FILE) and BILLING_AUTH_ISSUER to the auth service's, or BILLING_AUTH=disabled with BILLING_MODE=dev for a dev stack".into())
            }
        };
        let issuer = match self.issuer.filter(|i| !i.trim().is_empty()) {
            Some(i) => i,
            None if dev => DEV_ISSUER.into(),
            None => {
                return Err(
                    "BILLING_AUTH_ISSUER is required (the `iss` of the auth service's tokens)"
                        .into(),
                )
            }
        };
        if self.audience.trim().is_empty() {
            return Err("BILLING_AUTH_AUDIENCE must not be empty".into());
        }
        Ok(Some(AuthSettings {
            jwks,
            issuer,
            audience: self.audience,
        }))
    }
}

/// `Debug` never shows the database password.
#[derive(Clone)]
pub struct Settings {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub temporal: TemporalSettings,
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
    /// Who may call; `None`: auth disabled (dev only, warned at start).
    pub auth: Option<AuthSettings>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .field("temporal", &self.temporal)
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
            .field("auth", &self.auth)
            .finish()
    }
}

impl TryFrom<ApiArgs> for Settings {
    type Error = String;

    fn try_from(a: ApiArgs) -> Result<Self, String> {
        if a.billing.test_clock && a.mode == Mode::Production {
            return Err("BILLING_TEST_CLOCK=true is for tests and the dev stack only (BILLING_MODE=dev): it lets an admin move a subscription's time".into());
        }
        let auth = a.auth.into_settings(a.mode)?;
        Ok(Self {
            grpc_addr: a.grpc_addr,
            http_addr: a.http_addr,
            temporal: a.temporal,
            database_url: a.database_url,
            start_timeout: a.start_timeout,
            migrate: a.migrate,
            seed_demo: a.seed_demo,
            billing: a.billing.into_config()?,
            public_url: a.public_url,
            three_ds_success_url: a.three_ds_success_url,
            three_ds_failure_url: a.three_ds_failure_url,
            auth,
        })
    }
}

impl Settings {
    /// Both listeners on 127.0.0.1 port 0, schema already migrated by the caller, no demo seed,
    /// tokens verified against `auth` (`None`: auth off): what tests and benchmarks run
    /// in-process.
    pub fn local(
        temporal_address: String,
        database_url: String,
        task_queue: String,
        billing: BillingConfig,
        auth: Option<AuthSettings>,
    ) -> Self {
        Self {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            temporal: TemporalSettings::local(temporal_address, task_queue),
            database_url,
            start_timeout: Duration::from_secs(60),
            migrate: false,
            seed_demo: false,
            billing,
            public_url: None,
            three_ds_success_url: None,
            three_ds_failure_url: None,
            auth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<ApiArgs, clap::Error> {
        ApiArgs::try_parse_from(std::iter::once("starter-api").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::try_from(
            parse(&[
                "--database-url",
                "postgres://x/y",
                "--auth-jwks-url",
                "https://auth.example/jwks.json",
                "--auth-issuer",
                "https://auth.example",
            ])
            .unwrap(),
        )
        .unwrap();
        assert_eq!(s.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(s.billing, BillingConfig::default());
        assert!(s.migrate && !s.seed_demo && !s.billing.test_clock);
        assert_eq!(s.auth.unwrap().audience, "billing");
    }

    #[test]
    fn production_refuses_to_start_unsafe() {
        let settings = |args: &[&str]| {
            let mut all = vec!["--database-url", "x"];
            all.extend_from_slice(args);
            Settings::try_from(parse(&all).unwrap())
        };
        // No auth configured: refused, naming what to set.
        let e = settings(&[]).unwrap_err();
        assert!(
            e.contains("BILLING_AUTH_JWKS_URL") && e.contains("BILLING_AUTH=disabled"),
            "{e}"
        );
        assert!(settings(&["--auth", "disabled"])
            .unwrap_err()
            .contains("dev stack only"));
        let url = [
            "--auth-jwks-url",
            "https://a/jwks",
            "--auth-issuer",
            "https://a",
        ];
        let with = |more: &[&str]| {
            let mut v = url.to_vec();
            v.extend_from_slice(more);
            settings(&v)
        };
        assert!(with(&["--test-clock", "true"])
            .unwrap_err()
            .contains("BILLING_TEST_CLOCK"));
        assert!(with(&["--auth-jwks-file", "/k.json"])
            .unwrap_err()
            .contains("not both"));
        assert!(settings(&["--auth-jwks-url", "https://a/jwks"])
            .unwrap_err()
            .contains("BILLING_AUTH_ISSUER"));
        // Dev mode: the stand-ins' dev issuer unless told otherwise; disabled allowed.
        let dev = settings(&["--mode", "dev"]).unwrap().auth.unwrap();
        assert_eq!(dev.jwks, JwksSource::Url(DEV_JWKS_URL.into()));
        assert_eq!(dev.issuer, DEV_ISSUER);
        assert!(settings(&["--mode", "dev", "--auth", "disabled"])
            .unwrap()
            .auth
            .is_none());
        assert!(settings(&["--mode", "dev", "--test-clock", "true"]).is_ok());
    }

    #[test]
    fn bad_values_name_their_variable() {
        // (--mode dev: these cases are about other variables, not about auth.)
        for (flag, value, variable) in [
            ("--renewals-per-run", "0", "BILLING_RENEWALS_PER_RUN"),
            (
                "--dunning-retry-after-secs",
                "1,x",
                "whole number of seconds",
            ),
            ("--start-timeout-ms", "soon", "milliseconds"),
        ] {
            let e = parse(&["--database-url", "x", "--mode", "dev", flag, value])
                .unwrap_err()
                .to_string();
            assert!(e.contains(variable), "{flag} {value}: {e}");
        }
        assert!(parse(&["--database-url", "x", "--test-clock", "yes"]).is_err());
        // Validated as a whole: the phases in order, test hooks only in test mode.
        let bad = |args: &[&str]| {
            let mut all = vec!["--database-url", "x", "--mode", "dev"];
            all.extend_from_slice(args);
            Settings::try_from(parse(&all).unwrap()).unwrap_err()
        };
        assert!(bad(&["--dunning-grace-secs", "2000000"]).contains("BILLING_DUNNING_GRACE_SECS"));
        assert!(bad(&["--dunning-retry-after-secs", "3,1"]).contains("ascending"));
        assert!(bad(&["--test-fail-tasks-after-charge-ms", "2000"]).contains("BILLING_TEST_CLOCK"));
        assert!(parse(&[
            "--database-url",
            "x",
            "--test-fail-tasks-after-charge-percent",
            "0"
        ])
        .is_err());
    }

    #[test]
    fn help_lists_every_variable() {
        let help = ApiArgs::command().render_long_help().to_string();
        for v in [
            "BILLING_MODE",
            "BILLING_GRPC_ADDR",
            "BILLING_HTTP_ADDR",
            "TEMPORAL_ADDRESS",
            "BILLING_TASK_QUEUE",
            "DATABASE_URL",
            "BILLING_START_TIMEOUT_MS",
            "BILLING_MIGRATE",
            "BILLING_SEED_DEMO",
            "BILLING_PUBLIC_URL",
            "BILLING_3DS_SUCCESS_URL",
            "BILLING_3DS_FAILURE_URL",
            "BILLING_CHARGE_ATTEMPT_TIMEOUT_MS",
            "BILLING_CHARGE_RETRY_WINDOW_MS",
            "BILLING_RETRY_INITIAL_MS",
            "BILLING_RETRY_MAX_MS",
            "BILLING_SIDE_EFFECT_TIMEOUT_MS",
            "BILLING_3DS_EXPIRY_MS",
            "BILLING_DUNNING_RETRY_AFTER_SECS",
            "BILLING_DUNNING_GRACE_SECS",
            "BILLING_DUNNING_CANCEL_AFTER_SECS",
            "BILLING_RECONCILE_INTERVAL_MS",
            "BILLING_RECONCILE_MAX_INTERVAL_MS",
            "BILLING_RECONCILE_WINDOW_SECS",
            "BILLING_TEST_FAIL_TASKS_AFTER_CHARGE_MS",
            "BILLING_TEST_FAIL_TASKS_AFTER_CHARGE_PERCENT",
            "BILLING_TEST_CLOCK",
            "BILLING_RENEWALS_PER_RUN",
            "BILLING_AUTH",
            "BILLING_AUTH_JWKS_FILE",
            "BILLING_AUTH_JWKS_URL",
            "BILLING_AUTH_ISSUER",
            "BILLING_AUTH_AUDIENCE",
        ] {
            assert!(help.contains(v), "--help does not list {v}");
        }
    }
}
