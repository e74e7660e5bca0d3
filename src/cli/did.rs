//! `poortwachter did show | did resolve <DID>`.

use clap::Subcommand;

use super::Context;

#[derive(Debug, Subcommand)]
pub(crate) enum DidCommand {
    /// Print our DID document (the did.json to publish for did:web)
    #[command(after_help = "Example:\n  poortwachter --data-dir ./data did show > did.json")]
    Show,
    /// Resolve a DID and print its document
    #[command(
        after_help = "Example:\n  poortwachter did resolve did:key:zDnaepZUQNAT7p3JXZKNiEP5yFRbG8PRcADYMrFaGwmBBxsF2"
    )]
    Resolve {
        /// The DID
        did: String,
    },
}

pub(crate) async fn run(ctx: &Context, cmd: DidCommand) -> anyhow::Result<i32> {
    match cmd {
        DidCommand::Show => {
            let identity = ctx.identity()?;
            println!("{}", serde_json::to_string_pretty(&identity.document)?);
        }
        DidCommand::Resolve { did } => {
            let doc = ctx.resolver()?.resolve(&did).await?;
            println!("{}", serde_json::to_string_pretty(&*doc)?);
        }
    }
    Ok(0)
}
