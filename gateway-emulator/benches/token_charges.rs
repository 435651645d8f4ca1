//! Token charges over loopback at concurrency 64, each with its own `X-Request-ID`.
//!
//! `cargo bench -p gateway-emulator --bench token_charges` (release build). Prints charges/s and
//! p50/p99 latency. Env: `BENCH_SECS` (default 10), `BENCH_CONCURRENCY` (default 64).

use bytes::Bytes;
use gateway_emulator::{cards, cryptogram, spawn, Settings, DEFAULT_API_SECRET, DEFAULT_PUBLIC_ID};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let concurrency: usize = std::env::var("BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let mut settings = Settings::for_tests();
    // The default limit (30 in flight) would answer 429 to a concurrency of 64.
    settings.max_concurrent_per_terminal = concurrency * 2;
    let emu = spawn(settings).await?;
    let base = emu.base_url();
    let http = reqwest::Client::new();
    let v: serde_json::Value = http
        .post(format!("{base}/payments/cards/charge"))
        .basic_auth(DEFAULT_PUBLIC_ID, Some(DEFAULT_API_SECRET))
        .json(&serde_json::json!({"Amount": 1, "IpAddress": "127.0.0.1", "AccountId": "bench",
            "CardCryptogramPacket": cryptogram::emu1(cards::NO_3DS_SUCCESS, 12, 2035, "123", None)}))
        .send()
        .await?
        .json()
        .await?;
    let token = v["Model"]["Token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token: {v}"))?
        .to_owned();
    use base64::Engine as _;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{DEFAULT_PUBLIC_ID}:{DEFAULT_API_SECRET}"))
    );
    let addr = emu.base_url().trim_start_matches("http://").to_owned();

    // Warm-up, then the measured run.
    for (phase, dur) in [
        ("warmup", Duration::from_secs(1)),
        ("run", Duration::from_secs(secs)),
    ] {
        let deadline = Instant::now() + dur;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..concurrency {
            let (addr, auth, token) = (addr.clone(), auth.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(&addr).await?;
                stream.set_nodelay(true)?;
                let (mut tx, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                let mut lat = Vec::with_capacity(100_000);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let body = format!(r#"{{"Amount":10.5,"Currency":"RUB","AccountId":"bench","Token":"{token}","InvoiceId":"bench-{w}-{n}","TrInitiatorCode":0}}"#);
                    let req = hyper::Request::post("/payments/tokens/charge")
                        .header("host", &addr)
                        .header("authorization", &auth)
                        .header("content-type", "application/json")
                        .header("x-request-id", format!("{phase}-{w}-{n}"))
                        .body(Full::new(Bytes::from(body)))?;
                    let t0 = Instant::now();
                    let resp = tx.send_request(req).await?;
                    let status = resp.status();
                    let bytes = resp.into_body().collect().await?.to_bytes();
                    lat.push(t0.elapsed());
                    anyhow::ensure!(status == 200 && bytes.starts_with(b"{\"Model\"") && bytes.windows(14).any(|w| w == b"\"Success\":true"), "bad answer {status}: {}", String::from_utf8_lossy(&bytes));
                }
                anyhow::Ok(lat)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        let elapsed = started.elapsed();
        if phase == "run" {
            let mut results = all;
            results.sort();
            let n = results.len();
            let p = |q: f64| results[((n as f64 * q) as usize).min(n - 1)];
            println!(
                "token charges: {n} in {:.2}s = {:.0} charges/s at concurrency {concurrency}; p50 {:.2} ms, p99 {:.2} ms",
                elapsed.as_secs_f64(),
                n as f64 / elapsed.as_secs_f64(),
                p(0.50).as_secs_f64() * 1e3,
                p(0.99).as_secs_f64() * 1e3
            );
        }
    }
    emu.stop().await;
    Ok(())
}
