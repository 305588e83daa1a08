//! `rose-ash idp`: operator commands for the identity provider's store.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct IdpArgs {
    #[command(subcommand)]
    command: IdpCommand,
}

#[derive(Subcommand, Debug)]
enum IdpCommand {
    /// Register (or replace) an OAuth client and print its secret.
    AddClient(AddClientArgs),
}

#[derive(Args, Debug)]
struct AddClientArgs {
    /// The identity provider's data directory (as given to `serve --domain id`).
    #[arg(long, env = "ROSE_ASH_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// PostgreSQL URL, if the provider uses one.
    #[arg(long, env = "ROSE_ASH_DATABASE_URL")]
    database_url: Option<String>,
    /// The provider's issuer URL (its public base URL).
    #[arg(
        long,
        env = "ROSE_ASH_PUBLIC_URL",
        default_value = "http://127.0.0.1:8084"
    )]
    issuer: String,
    /// The client id.
    #[arg(long)]
    id: String,
    /// A display name for the consent screen (default: the id).
    #[arg(long)]
    name: Option<String>,
    /// A redirect URI, matched exactly (repeat for several).
    #[arg(long = "redirect-uri", required = true)]
    redirect_uris: Vec<String>,
    /// Where the provider may send the browser after logout (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// Where the provider POSTs logout tokens.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// A public client (no secret; PKCE only), such as a mobile app.
    #[arg(long)]
    public: bool,
    /// One of the cooperative's own apps: no consent screen.
    #[arg(long)]
    first_party: bool,
    /// Use this secret (at least 32 characters) instead of a fresh one.
    #[arg(
        long,
        env = "ROSE_ASH_CLIENT_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    secret: Option<String>,
}

pub fn run(args: IdpArgs) -> std::process::ExitCode {
    match args.command {
        IdpCommand::AddClient(a) => match add_client(a) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eoutln!("rose-ash idp add-client: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn add_client(a: AddClientArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("creating {}", a.data_dir.display()))?;
    let store = store::Store::open(a.database_url.as_deref(), &a.data_dir)
        .context("opening the provider's store")?;
    let provider = fed::oauth::Provider::open(store, &a.issuer)?;
    let client = fed::oauth::Client {
        name: a.name.unwrap_or_else(|| a.id.clone()),
        id: a.id,
        secret_hash: None,
        redirect_uris: a.redirect_uris,
        post_logout_redirect_uris: a.post_logout_redirect_uris,
        first_party: a.first_party,
        backchannel_logout_uri: a.backchannel_logout_uri,
    };
    let id = client.id.clone();
    match provider.register_client(client, !a.public, a.secret.as_deref())? {
        Some(secret) => {
            outln!("client_id={id}");
            outln!("client_secret={secret}");
        }
        None => outln!("client_id={id} (public: no secret)"),
    }
    Ok(())
}
