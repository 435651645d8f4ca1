//! The worker's settings: every flag and environment variable, defined once with clap
//! (`billing-worker --help` lists them with their defaults). A bad value stops start-up naming
//! the variable. The gateway, access and notification addresses and the terminal credentials
//! must be given, except with `BILLING_MODE=dev` (the local stack), where they default to the
//! gateway emulator and the stand-ins.

use billing_activities::gateway::GatewaySettings;
use billing_platform::config::{millis, secs, ConfigError, Mode};
use billing_platform::temporal::TemporalSettings;
use clap::{ArgAction, Args, Parser};
use secrecy::SecretString;
use std::time::Duration;

/// Default sticky-cache size (`BILLING_MAX_CACHED_WORKFLOWS`). It bounds the worker's memory:
/// a cached subscription costs ≈ 145 KiB after its first payment plus ≈ 50 KiB per renewal in its
/// current run (the SDK keeps every state machine of a run), so with `renewals_per_run` 12 a
/// cached workflow can reach ≈ 750 KiB and 150 of them ≈ 110 MiB. Evicted subscriptions cost
/// nothing while they sleep; a renewal of one replays its run's history (BENCHMARKS.md).
pub const DEFAULT_MAX_CACHED_WORKFLOWS: usize = 150;

/// Default number of concurrent workflow-task polls (`BILLING_WORKFLOW_TASK_POLLERS`), half of
/// them on the normal queue ([`DEFAULT_NONSTICKY_POLL_RATIO`]). The SDK's 5 (one on the normal
/// queue) caps a burst of renewals well below what the server can serve: each poll waits for the
/// server to record the task as started and to read the subscription's history, so the renewal
/// rate is about pollers / that time (BENCHMARKS.md, "Renewals": 79 renewals/s with 5, 116 with
/// 16, 125 with 32 at N = 2,000 on 2 vCPUs). An idle poll is one open request on the worker's
/// connection.
pub const DEFAULT_WORKFLOW_TASK_POLLERS: usize = 32;

/// Default share of workflow-task polls on the normal (non-sticky) queue. The SDK's 0.2 suits
/// workers whose workflows stay cached; a billing worker's tasks mostly arrive on the normal
/// queue (new subscriptions, and renewals of evicted ones once their sticky queue is released).
pub const DEFAULT_NONSTICKY_POLL_RATIO: f32 = 0.5;

/// Default deadline of one workflow activation (`BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS`). A
/// billing activation takes about a millisecond; 2 s is the Python SDK's deadlock timeout.
pub const DEFAULT_ACTIVATION_DEADLINE: Duration = Duration::from_secs(2);

/// Default quarantine of a run that ran past the deadline (`BILLING_RUNAWAY_QUARANTINE_SECS`).
pub const DEFAULT_RUNAWAY_QUARANTINE: Duration = Duration::from_secs(300);

/// The local gateway emulator and its terminal (`BILLING_MODE=dev` only).
const DEV_GATEWAY_URL: &str = "http://127.0.0.1:8090";
const DEV_GATEWAY_PUBLIC_ID: &str = "pk_test_emulator";
const DEV_GATEWAY_API_SECRET: &str = "emulator_secret";
const DEV_ACCESS_URL: &str = "http://127.0.0.1:50061";
const DEV_NOTIFICATION_URL: &str = "http://127.0.0.1:50062";

/// The worker's tuning: sticky cache, pollers, the runaway detector. The benches read the same
/// definitions ([`Tuning::from_env`]) and give them to their bare-workflow workers too.
#[derive(Clone, Debug, Args)]
pub struct Tuning {
    /// Sticky cache size: bounds worker memory (≈ 145 KiB per cached subscription + ≈ 50 KiB per
    /// renewal in its run).
    #[arg(long, env = "BILLING_MAX_CACHED_WORKFLOWS", default_value_t = DEFAULT_MAX_CACHED_WORKFLOWS)]
    pub max_cached_workflows: usize,
    /// Concurrent workflow-task polls (at least 2).
    #[arg(long, env = "BILLING_WORKFLOW_TASK_POLLERS", default_value_t = DEFAULT_WORKFLOW_TASK_POLLERS, value_parser = pollers)]
    pub workflow_task_pollers: usize,
    /// Share of those polls on the normal queue, in (0, 1].
    #[arg(long, env = "BILLING_NONSTICKY_POLL_RATIO", default_value_t = DEFAULT_NONSTICKY_POLL_RATIO, value_parser = ratio)]
    pub nonsticky_poll_ratio: f32,
    /// Tell Temporal when a subscription leaves the cache (`ResetStickyTaskQueue`), so its next
    /// task goes to the normal queue in one dispatch.
    #[arg(long, env = "BILLING_STICKY_RELEASE", default_value_t = true, action = ArgAction::Set)]
    pub sticky_release: bool,
    /// How long a workflow task waits on this worker's sticky queue before any worker may take
    /// it (at least 1000; default: the SDK's 10 s).
    #[arg(long = "sticky-timeout-ms", env = "BILLING_STICKY_TIMEOUT_MS", value_parser = sticky_timeout)]
    pub sticky_schedule_to_start: Option<Duration>,
    /// Runaway / deadlock detector: longest workflow activation (0 = off, else at least 100).
    #[arg(long = "workflow-activation-deadline-ms", env = "BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS", default_value = "2000", value_parser = activation_deadline)]
    pub activation_deadline: Duration,
    /// How long a run that ran past the deadline is not run again by this worker (doubling on
    /// repeats, at most a day).
    #[arg(long = "runaway-quarantine-secs", env = "BILLING_RUNAWAY_QUARANTINE_SECS", default_value = "300", value_parser = quarantine)]
    pub runaway_quarantine: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            max_cached_workflows: DEFAULT_MAX_CACHED_WORKFLOWS,
            workflow_task_pollers: DEFAULT_WORKFLOW_TASK_POLLERS,
            nonsticky_poll_ratio: DEFAULT_NONSTICKY_POLL_RATIO,
            sticky_release: true,
            sticky_schedule_to_start: None,
            activation_deadline: DEFAULT_ACTIVATION_DEADLINE,
            runaway_quarantine: DEFAULT_RUNAWAY_QUARANTINE,
        }
    }
}

impl Tuning {
    /// The tuning variables of the environment, read by the same definitions as the worker's.
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            tuning: Tuning,
        }
        Only::try_parse_from(["billing-worker"]).map(|o| o.tuning)
    }
}

fn pollers(v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(n) if n >= 2 => Ok(n),
        _ => Err(format!(
            "BILLING_WORKFLOW_TASK_POLLERS must be an integer of at least 2, got `{v}`"
        )),
    }
}

fn ratio(v: &str) -> Result<f32, String> {
    match v.trim().parse::<f32>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!(
            "BILLING_NONSTICKY_POLL_RATIO must be a number above 0 and at most 1, got `{v}`"
        )),
    }
}

fn sticky_timeout(v: &str) -> Result<Duration, String> {
    match millis(v) {
        Ok(d) if d >= Duration::from_secs(1) => Ok(d),
        _ => Err(format!(
            "BILLING_STICKY_TIMEOUT_MS must be at least 1000, got `{v}`"
        )),
    }
}

fn activation_deadline(v: &str) -> Result<Duration, String> {
    match millis(v) {
        Ok(d) if d.is_zero() || d >= Duration::from_millis(100) => Ok(d),
        _ => Err(format!(
            "BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS must be 0 (off) or at least 100, got `{v}`"
        )),
    }
}

fn quarantine(v: &str) -> Result<Duration, String> {
    match secs(v) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "BILLING_RUNAWAY_QUARANTINE_SECS must be at least 1, got `{v}`"
        )),
    }
}

/// `billing-worker`'s command line and environment.
#[derive(Debug, Parser)]
#[command(
    name = "billing-worker",
    version,
    about = "Runs the billing workflows and their steps (gateway charges, ledger, access, notifications)"
)]
pub struct WorkerArgs {
    /// `production`: every address and credential must be given. `dev`: the local stack;
    /// missing gateway, access and notification settings default to the emulator and stand-ins.
    #[arg(long, env = "BILLING_MODE", value_enum, default_value_t = Mode::Production)]
    pub mode: Mode,
    #[command(flatten)]
    pub temporal: TemporalSettings,
    /// PostgreSQL URL (`sslmode` in its query string is honoured).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// CloudPayments API base URL.
    #[arg(long, env = "GATEWAY_URL")]
    pub gateway_url: Option<String>,
    /// Terminal public id (HTTP Basic user).
    #[arg(long, env = "GATEWAY_PUBLIC_ID")]
    pub gateway_public_id: Option<String>,
    /// Terminal API secret (HTTP Basic password; never logged).
    #[arg(long, env = "GATEWAY_API_SECRET", hide_env_values = true)]
    pub gateway_api_secret: Option<SecretString>,
    /// Per-request timeout of gateway calls.
    #[arg(long = "gateway-timeout-ms", env = "GATEWAY_TIMEOUT_MS", default_value = "20000", value_parser = millis)]
    pub gateway_timeout: Duration,
    /// Access service (gRPC).
    #[arg(long, env = "ACCESS_URL")]
    pub access_url: Option<String>,
    /// Notification service (gRPC).
    #[arg(long, env = "NOTIFICATION_URL")]
    pub notification_url: Option<String>,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// Worker settings. `Debug` never shows the gateway secret or the database password.
#[derive(Clone)]
pub struct WorkerSettings {
    pub temporal: TemporalSettings,
    pub database_url: String,
    pub gateway: GatewaySettings,
    pub access_url: String,
    pub notification_url: String,
    pub tuning: Tuning,
}

impl std::fmt::Debug for WorkerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSettings")
            .field("temporal", &self.temporal)
            .field(
                "database_url",
                &billing_domain::mask::redact_url(&self.database_url),
            )
            .field("gateway", &self.gateway)
            .field("access_url", &self.access_url)
            .field("notification_url", &self.notification_url)
            .field("tuning", &self.tuning)
            .finish()
    }
}

impl WorkerArgs {
    /// Resolves what the mode may default.
    pub fn into_settings(self) -> Result<WorkerSettings, ConfigError> {
        let m = self.mode;
        Ok(WorkerSettings {
            temporal: self.temporal,
            database_url: self.database_url,
            gateway: GatewaySettings {
                base_url: m.or_dev_default(self.gateway_url, "GATEWAY_URL", DEV_GATEWAY_URL)?,
                public_id: m.or_dev_default(
                    self.gateway_public_id,
                    "GATEWAY_PUBLIC_ID",
                    DEV_GATEWAY_PUBLIC_ID,
                )?,
                api_secret: match self.gateway_api_secret {
                    Some(s) => s,
                    None => SecretString::from(m.or_dev_default(
                        None,
                        "GATEWAY_API_SECRET",
                        DEV_GATEWAY_API_SECRET,
                    )?),
                },
                timeout: self.gateway_timeout,
            },
            access_url: m.or_dev_default(self.access_url, "ACCESS_URL", DEV_ACCESS_URL)?,
            notification_url: m.or_dev_default(
                self.notification_url,
                "NOTIFICATION_URL",
                DEV_NOTIFICATION_URL,
            )?,
            tuning: self.tuning,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<WorkerArgs, clap::Error> {
        WorkerArgs::try_parse_from(std::iter::once("billing-worker").chain(args.iter().copied()))
    }

    #[test]
    fn production_needs_the_gateway_and_peers() {
        let a = parse(&["--database-url", "postgres://x/y"]).unwrap();
        let e = a.into_settings().unwrap_err().to_string();
        assert!(e.contains("GATEWAY_URL is required"), "{e}");
        let a = parse(&[
            "--database-url",
            "postgres://x/y",
            "--gateway-url",
            "https://api.cloudpayments.ru",
            "--gateway-public-id",
            "pk_live",
            "--gateway-api-secret",
            "s",
            "--access-url",
            "http://auth:50061",
            "--notification-url",
            "http://notify:50062",
        ])
        .unwrap();
        let s = a.into_settings().unwrap();
        assert_eq!(s.gateway.base_url, "https://api.cloudpayments.ru");
        assert!(!format!("{s:?}").contains("\"s\""));
    }

    #[test]
    fn dev_mode_points_at_the_local_stack() {
        let s = parse(&["--mode", "dev", "--database-url", "postgres://x/y"])
            .unwrap()
            .into_settings()
            .unwrap();
        assert_eq!(s.gateway.base_url, DEV_GATEWAY_URL);
        assert_eq!(s.gateway.public_id, DEV_GATEWAY_PUBLIC_ID);
        assert_eq!(s.access_url, DEV_ACCESS_URL);
        assert_eq!(
            s.tuning.workflow_task_pollers,
            DEFAULT_WORKFLOW_TASK_POLLERS
        );
        assert_eq!(s.tuning.activation_deadline, DEFAULT_ACTIVATION_DEADLINE);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (flag, value, variable) in [
            (
                "--workflow-task-pollers",
                "1",
                "BILLING_WORKFLOW_TASK_POLLERS",
            ),
            (
                "--nonsticky-poll-ratio",
                "0",
                "BILLING_NONSTICKY_POLL_RATIO",
            ),
            ("--sticky-timeout-ms", "10", "BILLING_STICKY_TIMEOUT_MS"),
            (
                "--workflow-activation-deadline-ms",
                "50",
                "BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS",
            ),
            (
                "--runaway-quarantine-secs",
                "0",
                "BILLING_RUNAWAY_QUARANTINE_SECS",
            ),
        ] {
            let e = parse(&["--database-url", "postgres://x/y", flag, value])
                .unwrap_err()
                .to_string();
            assert!(e.contains(variable), "{flag} {value}: {e}");
        }
        let e = parse(&["--database-url", "x", "--sticky-release", "1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("true") && e.contains("false"), "{e}");
    }

    #[test]
    fn help_lists_every_variable() {
        let help = {
            use clap::CommandFactory;
            WorkerArgs::command().render_long_help().to_string()
        };
        for v in [
            "BILLING_MODE",
            "TEMPORAL_ADDRESS",
            "TEMPORAL_NAMESPACE",
            "BILLING_TASK_QUEUE",
            "TEMPORAL_TLS_CA_FILE",
            "TEMPORAL_API_KEY",
            "DATABASE_URL",
            "GATEWAY_URL",
            "GATEWAY_PUBLIC_ID",
            "GATEWAY_API_SECRET",
            "GATEWAY_TIMEOUT_MS",
            "ACCESS_URL",
            "NOTIFICATION_URL",
            "BILLING_MAX_CACHED_WORKFLOWS",
            "BILLING_WORKFLOW_TASK_POLLERS",
            "BILLING_NONSTICKY_POLL_RATIO",
            "BILLING_STICKY_RELEASE",
            "BILLING_STICKY_TIMEOUT_MS",
            "BILLING_WORKFLOW_ACTIVATION_DEADLINE_MS",
            "BILLING_RUNAWAY_QUARANTINE_SECS",
        ] {
            assert!(help.contains(v), "--help does not list {v}");
        }
    }
}
