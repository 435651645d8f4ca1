//! `starter-api`: loads settings, starts telemetry, serves gRPC + REST until Ctrl-C / SIGTERM.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    billing_platform::telemetry::init("info");
    let settings =
        billing_starter_api::Settings::try_from(billing_starter_api::settings::ApiArgs::parse())
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    tracing::info!(?settings, "starting the billing API");
    let app = billing_starter_api::App::build(settings).await?;
    println!("grpc listening on {}", app.grpc_addr());
    println!("http listening on http://{}", app.http_addr());
    app.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
