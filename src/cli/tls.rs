//! `poortwachter tls dev-ca`: a development CA, server and client certificates, and the curl
//! line that uses them.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::Context;
use crate::tls::devca;

#[derive(Debug, Subcommand)]
pub(crate) enum TlsCommand {
    /// Write a DEVELOPMENT CA with a server and client certificates (never for production)
    #[command(
        after_help = "Example:\n  poortwachter tls dev-ca --out certs --client huisarts\n  \
                      # then put the printed [tls] section in config.toml, run `poortwachter serve`\n  \
                      # and call it with the printed curl line"
    )]
    DevCa(DevCaArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DevCaArgs {
    /// Directory to write into (created with mode 0700 if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// DNS name or IP address of the server certificate (127.0.0.1 and ::1 are always added)
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    server_name: String,
    /// A client certificate to make, by name (repeatable) [default: one named "client"]
    #[arg(long = "client", value_name = "NAME")]
    clients: Vec<String>,
    /// Replace files that exist (a new CA: certificates made before no longer verify)
    #[arg(long)]
    force: bool,
    /// JSON output
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(ctx: &Context, cmd: TlsCommand) -> anyhow::Result<i32> {
    let TlsCommand::DevCa(args) = cmd;
    let clients = if args.clients.is_empty() {
        vec!["client".to_owned()]
    } else {
        args.clients
    };
    let files = devca::write(&args.out, &args.server_name, &clients, args.force)?;
    let curl = files.curl_command(ctx.config.public_addr.port());
    if args.json {
        let out = json!({
            "dir": files.dir,
            "ca_cert": files.ca_cert,
            "ca_key": files.ca_key,
            "server_name": files.server_name,
            "server_cert": files.server_cert,
            "server_key": files.server_key,
            "clients": files.clients.iter().map(|c| json!({
                "name": c.name, "cert": c.cert, "key": c.key,
            })).collect::<Vec<_>>(),
            "curl": curl,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    println!(
        "DEVELOPMENT certificates (not for production) written to {}:",
        files.dir.display()
    );
    println!(
        "  CA:     {} (key {})",
        files.ca_cert.display(),
        files.ca_key.display()
    );
    println!(
        "  server: {} (key {}) for {}, 127.0.0.1, ::1",
        files.server_cert.display(),
        files.server_key.display(),
        files.server_name
    );
    for c in &files.clients {
        println!(
            "  client: {} (key {}) CN={}",
            c.cert.display(),
            c.key.display(),
            c.name
        );
    }
    println!("\nconfig.toml:\n\n{}", files.config_snippet());
    println!("Then, with `poortwachter serve` running:\n\n  {curl}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::{Cli, Command};
    use super::TlsCommand;

    #[test]
    fn dev_ca_arguments() {
        let cli = Cli::try_parse_from([
            "poortwachter",
            "tls",
            "dev-ca",
            "--out",
            "certs",
            "--server-name",
            "zorg.example.nl",
            "--client",
            "huisarts",
            "--client",
            "apotheek",
        ])
        .expect("parses");
        let Command::Tls(TlsCommand::DevCa(args)) = cli.command else {
            panic!("not tls dev-ca");
        };
        assert_eq!(args.out, std::path::PathBuf::from("certs"));
        assert_eq!(args.server_name, "zorg.example.nl");
        assert_eq!(args.clients, ["huisarts", "apotheek"]);
        assert!(!args.force && !args.json);
        assert!(Cli::try_parse_from(["poortwachter", "tls", "dev-ca"]).is_err());
    }
}
