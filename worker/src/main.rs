//! `billing-worker`: loads settings, starts telemetry, runs the worker until Ctrl-C / SIGTERM.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    billing_platform::telemetry::init("info,temporalio_sdk_core=warn");
    let settings = billing_worker::WorkerArgs::parse().into_settings()?;
    tracing::info!(?settings, "starting billing worker");
    billing_worker::run_worker(settings, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
