//! `billing-stand-ins`: the local access and notification services (they log every call) and a
//! dev auth issuer (JWKS + dev tokens).

use clap::Parser;
use std::net::SocketAddr;

/// Local stand-ins for the access (auth) and notification services, for the dev stack.
#[derive(Debug, Parser)]
#[command(name = "billing-stand-ins", version)]
struct Args {
    /// Listen address of the access stand-in (gRPC `access.v1`).
    #[arg(long, env = "STAND_INS_ACCESS_ADDR", default_value = "127.0.0.1:50061")]
    access: SocketAddr,
    /// Listen address of the notification stand-in (gRPC `notification.v1`).
    #[arg(
        long,
        env = "STAND_INS_NOTIFICATION_ADDR",
        default_value = "127.0.0.1:50062"
    )]
    notification: SocketAddr,
    /// Listen address of the dev auth issuer (HTTP: JWKS at `/.well-known/jwks.json`, dev tokens
    /// at `/dev/token?sub=<uuid>&roles=admin`).
    #[arg(long, env = "STAND_INS_AUTH_ADDR", default_value = "127.0.0.1:50063")]
    auth: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    billing_platform::telemetry::init("info");
    let args = Args::parse();
    let a = tokio::net::TcpListener::bind(args.access).await?;
    let n = tokio::net::TcpListener::bind(args.notification).await?;
    let t = tokio::net::TcpListener::bind(args.auth).await?;
    let running = billing_stand_ins::serve(a, n, t)?;
    println!("access stand-in on http://{}", running.access_addr);
    println!(
        "notification stand-in on http://{}",
        running.notification_addr
    );
    println!("dev auth issuer on http://{}", running.auth_addr);
    tokio::signal::ctrl_c().await?;
    running.stop();
    Ok(())
}
