//! Application assembly: binds both listeners up front (port 0 works), then serves until the
//! shutdown future resolves.

use crate::service::BillingApi;
use crate::settings::Settings;
use billing_proto::billing::v1::billing_service_server::BillingServiceServer;
use billing_store::Store;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub struct App {
    api: BillingApi,
    grpc: TcpListener,
    http: TcpListener,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect(&settings.database_url, 20).await?;
        if settings.migrate {
            store.migrate().await?;
        }
        if settings.seed_demo {
            store.seed_demo_tariffs().await?;
        }
        let auth = match &settings.auth {
            Some(a) => Some(std::sync::Arc::new(
                crate::auth::Verifier::load(a.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("auth: {e}"))?,
            )),
            None => {
                tracing::warn!("BILLING_AUTH=disabled: every caller acts as an admin on any subscription; a dev stack only, never expose these ports");
                None
            }
        };
        let temporal = settings.temporal.connect().await?;
        let grpc = TcpListener::bind(settings.grpc_addr).await?;
        let http = TcpListener::bind(settings.http_addr).await?;
        let public = settings.public_url.clone().unwrap_or_else(|| {
            format!(
                "http://{}",
                http.local_addr().map(|a| a.to_string()).unwrap_or_default()
            )
        });
        let public = public.trim_end_matches('/').to_string();
        let api = BillingApi {
            store,
            auth,
            temporal,
            term_url: format!("{public}/api/v1/3ds/callback"),
            three_ds_success_url: settings
                .three_ds_success_url
                .clone()
                .unwrap_or_else(|| format!("{public}/3ds/result")),
            three_ds_failure_url: settings
                .three_ds_failure_url
                .clone()
                .unwrap_or_else(|| format!("{public}/3ds/result")),
            settings,
        };
        Ok(Self { api, grpc, http })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .unwrap_or(self.api.settings.grpc_addr)
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .unwrap_or(self.api.settings.http_addr)
    }

    pub fn api(&self) -> &BillingApi {
        &self.api
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<BillingServiceServer<crate::grpc::Grpc>>()
            .await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(billing_proto::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        let mut rx_grpc = rx.clone();
        let mut rx_http = rx;
        let grpc = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(BillingServiceServer::new(crate::grpc::Grpc(
                self.api.clone(),
            )))
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.grpc), async move {
                let _ = rx_grpc.wait_for(|v| *v).await;
            });
        let http = axum::serve(self.http, crate::rest::router(self.api)).with_graceful_shutdown(
            async move {
                let _ = rx_http.wait_for(|v| *v).await;
            },
        );
        let (g, h) = tokio::join!(grpc, http);
        g?;
        h?;
        Ok(())
    }
}
