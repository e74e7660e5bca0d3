//! `poortwachter serve`: run the public and internal listeners.

use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Public listener address [default: 0.0.0.0:8080]
    #[arg(long, env = "POORTWACHTER_PUBLIC_ADDR", value_name = "ADDR")]
    public_addr: Option<String>,
    /// Internal (admin) listener address; loopback only unless dangerous_allow_public_internal [default: 127.0.0.1:8081]
    #[arg(long, env = "POORTWACHTER_INTERNAL_ADDR", value_name = "ADDR")]
    internal_addr: Option<String>,
    /// Public URL of this instance, e.g. https://zorg.example.nl [default: http://localhost:8080]
    #[arg(long, env = "POORTWACHTER_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// The source system (FHIR server) behind the proxy
    #[arg(long, env = "POORTWACHTER_UPSTREAM", value_name = "URL")]
    upstream: Option<String>,
    /// TLS on the public listener: the certificate chain (PEM, leaf first) [config: [tls] cert]
    #[arg(long, env = "POORTWACHTER_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<String>,
    /// The certificate's private key (PKCS#8, SEC1 or PKCS#1 PEM; mode 0600) [config: [tls] key]
    #[arg(long, env = "POORTWACHTER_TLS_KEY", value_name = "FILE")]
    tls_key: Option<String>,
    /// Trust anchors for client certificates (PEM files, comma-separated) [config: [tls] client_ca]
    #[arg(long, env = "POORTWACHTER_TLS_CLIENT_CA", value_name = "FILES")]
    tls_client_ca: Option<String>,
    /// Client certificates: none, optional or required [config: [tls] client_auth]
    #[arg(long, env = "POORTWACHTER_TLS_CLIENT_AUTH", value_name = "MODE")]
    tls_client_auth: Option<String>,
}

pub(crate) async fn run(ctx: Context, _args: ServeArgs) -> anyhow::Result<i32> {
    crate::telemetry::init(ctx.config.log_format);
    crate::server::run(ctx.config).await?;
    Ok(0)
}
