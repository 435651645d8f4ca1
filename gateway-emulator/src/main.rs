//! `gateway-emulator`: serve the CloudPayments emulator, or print a test cryptogram.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use gateway_emulator::cryptogram::{self, Scenario};
use gateway_emulator::webhooks::{Kind, WebhookConfig};
use gateway_emulator::{App, Settings, Terminal};
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
    /// Terminal PUBLIC_ID:API_SECRET (repeatable). Default: pk_test_emulator:emulator_secret.
    #[arg(long = "terminal", value_parser = Terminal::parse)]
    terminals: Vec<Terminal>,
    /// Comma-separated PUBLIC_ID:API_SECRET list, used when no --terminal is given.
    #[arg(long, env = "EMULATOR_TERMINALS", hide_env_values = true)]
    terminals_env: Option<String>,
    /// Persist state here (snapshot every second when changed, and on shutdown).
    #[arg(long, env = "EMULATOR_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// The ACS page submits the confirming answer at once (for automated browser tests).
    #[arg(long, env = "EMULATOR_ACS_AUTO_SUBMIT")]
    acs_auto_submit: bool,
    /// In-flight requests per terminal before answering 429.
    #[arg(long, env = "EMULATOR_MAX_CONCURRENT", default_value_t = 30)]
    max_concurrent: usize,
    /// Seconds a 3-DS transaction may wait before it is declined (5206).
    #[arg(long, env = "EMULATOR_THREE_DS_TTL_SECS", default_value_t = 1200)]
    three_ds_ttl_secs: u64,
    /// Base URL the emulator is reached at (for AcsUrl); default http://<bound address>.
    #[arg(long, env = "EMULATOR_PUBLIC_BASE_URL")]
    public_base_url: Option<String>,
    /// Webhook target `KIND=URL` or `PUBLIC_ID:KIND=URL` (repeatable), KIND = Check|Pay|Fail|Confirm|Refund|Cancel.
    #[arg(long = "webhook")]
    webhooks: Vec<String>,
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

fn parse_webhook(spec: &str, default_pid: &str) -> anyhow::Result<WebhookConfig> {
    let (lhs, url) = spec
        .split_once('=')
        .context("--webhook must be KIND=URL or PUBLIC_ID:KIND=URL")?;
    let (pid, kind) = match lhs.rsplit_once(':') {
        Some((p, k)) => (p.to_owned(), k),
        None => (default_pid.to_owned(), lhs),
    };
    let kind = Kind::parse(kind).with_context(|| format!("unknown webhook kind {kind}"))?;
    Ok(WebhookConfig {
        public_id: pid,
        kind,
        url: url.to_owned(),
        retry_delays_ms: None,
        max_attempts: None,
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
    let cli = Cli::parse();
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
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EMULATOR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut terminals = cli.terminals.clone();
    if terminals.is_empty() {
        if let Some(list) = &cli.terminals_env {
            terminals = Terminal::parse_list(list).map_err(anyhow::Error::msg)?;
        }
    }
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
    };
    tracing::info!(?settings, "starting");
    let app = App::build(settings).await?;
    for w in &cli.webhooks {
        app.add_webhook(parse_webhook(w, &default_pid)?);
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
