//! `billing-stand-ins --access ADDR --notification ADDR`: the local access and notification
//! services; they log every call.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut access = "127.0.0.1:50061".to_string();
    let mut notification = "127.0.0.1:50062".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--access" => access = args.next().ok_or_else(|| anyhow::anyhow!("--access needs ADDR"))?,
            "--notification" => notification = args.next().ok_or_else(|| anyhow::anyhow!("--notification needs ADDR"))?,
            other => anyhow::bail!("unknown argument `{other}`; usage: billing-stand-ins --access ADDR --notification ADDR"),
        }
    }
    let a = tokio::net::TcpListener::bind(&access).await?;
    let n = tokio::net::TcpListener::bind(&notification).await?;
    let running = billing_stand_ins::serve(a, n)?;
    println!("access stand-in on http://{}", running.access_addr);
    println!(
        "notification stand-in on http://{}",
        running.notification_addr
    );
    tokio::signal::ctrl_c().await?;
    running.stop();
    Ok(())
}
