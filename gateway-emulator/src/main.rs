//! `gateway-emulator`: serve the CloudPayments emulator, or print a test cryptogram.
//!
//! Every setting is one clap argument: a flag, its `EMULATOR_*` variable (the flag wins) and its
//! default, all listed by `--help`. A value that does not parse stops start-up with clap's
//! message, plus the name of the variable the flag is read from.

use anyhow::Context as _;
use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use gateway_emulator::cryptogram::{self, Scenario};
use gateway_emulator::webhooks::{Kind, WebhookConfig};
use gateway_emulator::{App, Settings, Terminal, DEFAULT_API_SECRET};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "gateway-emulator",
    version,
    about = "CloudPayments-compatible gateway emulator"
)]
struct Cli {
    /// Address to listen on (port 0 = any free port).
    #[arg(long, env = "EMULATOR_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Terminals served, PUBLIC_ID:API_SECRET (repeatable, or comma-separated).
    #[arg(
        long = "terminal",
        env = "EMULATOR_TERMINALS",
        hide_env_values = true,
        value_name = "PUBLIC_ID:API_SECRET",
        value_parser = terminals,
        default_values_t = [TerminalList(vec![Terminal::default_terminal()])],
    )]
    terminals: Vec<TerminalList>,
    /// Persist state here (snapshot every second when changed, and on shutdown)
    /// [default: in memory].
    #[arg(long, env = "EMULATOR_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// The ACS page submits the confirming answer at once (for automated browser tests); the
    /// variable takes true or false [default: false].
    #[arg(long, env = "EMULATOR_ACS_AUTO_SUBMIT")]
    acs_auto_submit: bool,
    /// In-flight requests per terminal before answering 429 (at least 1).
    #[arg(
        long,
        env = "EMULATOR_MAX_CONCURRENT",
        default_value_t = 30,
        value_parser = at_least_one,
    )]
    max_concurrent: usize,
    /// Seconds a 3-DS transaction may wait before it is declined (5206).
    #[arg(long, env = "EMULATOR_THREE_DS_TTL_SECS", default_value_t = 1200)]
    three_ds_ttl_secs: u64,
    /// Seconds an `X-Request-ID` answer is replayed (the real gateway: 3600; shorter lets a test
    /// cross the window quickly; at least 1).
    #[arg(long, env = "EMULATOR_IDEMPOTENCY_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    idempotency_ttl_secs: u64,
    /// Seed of the dice of fault rules with a `probability` (reproducible chaos runs)
    /// [default: random].
    #[arg(long, env = "EMULATOR_FAULT_SEED")]
    fault_seed: Option<u64>,
    /// Base URL the emulator is reached at, for AcsUrl and TerminalUrl
    /// [default: http://<bound address>].
    #[arg(long, env = "EMULATOR_PUBLIC_BASE_URL", value_parser = base_url)]
    public_base_url: Option<String>,
    /// Webhook target `KIND=URL` or `PUBLIC_ID:KIND=URL` (repeatable),
    /// KIND = Check|Pay|Fail|Confirm|Refund|Cancel.
    #[arg(long = "webhook", value_name = "[PUBLIC_ID:]KIND=URL", value_parser = webhook)]
    webhooks: Vec<WebhookSpec>,
    /// Log filter (tracing `EnvFilter` syntax); logs go to stderr.
    #[arg(long, env = "EMULATOR_LOG", default_value = "info", value_parser = log_filter)]
    log: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a test cryptogram packet.
    Cryptogram {
        /// Card number.
        #[arg(long, default_value = "4242424242424242")]
        card: String,
        /// Expiry MM/YY (default: December, three years ahead).
        #[arg(long)]
        exp: Option<String>,
        /// CVV (EMU1 only).
        #[arg(long, default_value = "123")]
        cvv: String,
        /// Scenario (EMU1 only): approve, 3ds, 3ds-fail, decline-<code>, timeout, 5xx.
        #[arg(long)]
        scenario: Option<String>,
        /// Packet layout.
        #[arg(long, value_enum, default_value_t = Format::Emu1)]
        format: Format,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Format {
    Emu1,
    Legacy,
    Sdk,
}

/// The terminals of one `--terminal` value (a comma-separated list, as `EMULATOR_TERMINALS`).
#[derive(Clone, Debug)]
struct TerminalList(Vec<Terminal>);

impl std::fmt::Display for TerminalList {
    /// For `--help`'s default: the documented test terminal in full, any other secret masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<String> = self
            .0
            .iter()
            .map(|t| {
                let secret = if *t == Terminal::default_terminal() {
                    DEFAULT_API_SECRET
                } else {
                    "***"
                };
                format!("{}:{secret}", t.public_id)
            })
            .collect();
        f.write_str(&list.join(","))
    }
}

fn terminals(spec: &str) -> Result<TerminalList, String> {
    Terminal::parse_list(spec).map(TerminalList)
}

fn at_least_one(n: &str) -> Result<usize, String> {
    match n.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number, at least 1".to_owned()),
    }
}

fn base_url(url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_owned())
    } else {
        Err("must start with http:// or https://".to_owned())
    }
}

fn log_filter(filter: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(|_| filter.to_owned())
        .map_err(|e| e.to_string())
}

/// A `--webhook` value; the terminal defaults to the first one served.
#[derive(Clone, Debug)]
struct WebhookSpec {
    public_id: Option<String>,
    kind: Kind,
    url: String,
}

fn webhook(spec: &str) -> Result<WebhookSpec, String> {
    let (lhs, url) = spec
        .split_once('=')
        .ok_or("must be KIND=URL or PUBLIC_ID:KIND=URL")?;
    let (public_id, kind) = match lhs.rsplit_once(':') {
        Some((p, k)) => (Some(p.to_owned()), k),
        None => (None, lhs),
    };
    let kind = Kind::parse(kind).ok_or_else(|| format!("unknown webhook kind {kind}"))?;
    Ok(WebhookSpec {
        public_id,
        kind,
        url: url.to_owned(),
    })
}

/// Parses the command line and the environment, or exits with clap's message. A bad value of a
/// flag that also has a variable gets a tip naming the variable, since the value may have come
/// from there; a secret's value is not repeated.
fn parse_cli() -> Cli {
    Cli::try_parse().unwrap_or_else(|mut e| {
        let bad_value = matches!(
            e.kind(),
            ErrorKind::ValueValidation | ErrorKind::InvalidValue
        );
        let flag = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) if bad_value => {
                arg.split([' ', '=']).next().unwrap_or("").to_owned()
            }
            _ => e.exit(),
        };
        let cmd = Cli::command();
        let Some(arg) = cmd
            .get_arguments()
            .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == flag))
        else {
            e.exit()
        };
        if arg.is_hide_env_values_set() {
            e.insert(
                ContextKind::InvalidValue,
                ContextValue::String("***".into()),
            );
        }
        if let Some(env) = arg.get_env() {
            let tip = format!(
                "{flag} is read from {} when the flag is not given",
                env.to_string_lossy()
            );
            e.insert(
                ContextKind::Suggested,
                ContextValue::StyledStrs(vec![StyledStr::from(tip)]),
            );
        }
        e.exit()
    })
}

fn cryptogram_cmd(
    card: &str,
    exp: Option<&str>,
    cvv: &str,
    scenario: Option<&str>,
    format: Format,
) -> anyhow::Result<String> {
    let (mm, yy) = match exp {
        Some(e) => {
            let (m, y) = e.split_once('/').context("--exp must be MM/YY")?;
            (
                m.parse::<u32>().context("bad month")?,
                y.parse::<u32>().context("bad year")?,
            )
        }
        None => {
            use chrono::Datelike as _;
            (12, (chrono::Utc::now().year() as u32 + 3) % 100)
        }
    };
    let scenario = scenario
        .map(|s| Scenario::parse(s).with_context(|| format!("unknown scenario {s}")))
        .transpose()?;
    Ok(match format {
        Format::Emu1 => cryptogram::emu1(card, mm, yy, cvv, scenario),
        Format::Legacy => cryptogram::legacy(card, mm, yy),
        Format::Sdk => cryptogram::sdk_json(card, mm, yy),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = parse_cli();
    if let Some(Command::Cryptogram {
        card,
        exp,
        cvv,
        scenario,
        format,
    }) = &cli.command
    {
        println!(
            "{}",
            cryptogram_cmd(card, exp.as_deref(), cvv, scenario.as_deref(), *format)?
        );
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    let mut terminals: Vec<Terminal> = cli.terminals.iter().flat_map(|l| l.0.clone()).collect();
    if terminals.is_empty() {
        terminals.push(Terminal::default_terminal());
    }
    let default_pid = terminals[0].public_id.clone();
    let settings = Settings {
        listen: cli.listen,
        terminals,
        state_file: cli.state_file.clone(),
        acs_auto_submit: cli.acs_auto_submit,
        max_concurrent_per_terminal: cli.max_concurrent,
        three_ds_ttl: Duration::from_secs(cli.three_ds_ttl_secs),
        public_base_url: cli.public_base_url.clone(),
        idempotency_ttl: Duration::from_secs(cli.idempotency_ttl_secs),
        fault_seed: cli.fault_seed,
    };
    tracing::info!(?settings, "starting");
    let app = App::build(settings).await?;
    for w in &cli.webhooks {
        app.add_webhook(WebhookConfig {
            public_id: w.public_id.clone().unwrap_or_else(|| default_pid.clone()),
            kind: w.kind,
            url: w.url.clone(),
            retry_delays_ms: None,
            max_attempts: None,
        });
    }
    println!("listening on {}", app.base_url());
    std::io::stdout().flush().context("stdout")?;
    app.run_until_stopped(async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
    })
    .await?;
    tracing::info!("stopped");
    Ok(())
}
