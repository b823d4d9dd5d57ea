//! `sairex user add`: a web console user from the command line, so a fresh install has a first
//! login without curl. The password is read from stdin (one line), never from the arguments,
//! which other users of the host can see.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sairex_store::{MasterKey, Store, StoreOptions};

/// `sairex user …`.
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a console user to an organization; reads the password from stdin (one line). Run
    /// it while `sairex serve` is stopped: the store is opened directly.
    Add(AddArgs),
}

#[derive(Debug, Args)]
struct AddArgs {
    /// The store directory (`[store] path` of the config; `./sairex-data` for `serve --demo`).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// The organization's name (or id).
    #[arg(long, value_name = "NAME")]
    org: String,
    /// The login email.
    #[arg(long)]
    email: String,
    /// Display name (default: the email).
    #[arg(long, default_value = "")]
    name: String,
    /// `admin` or `member`.
    #[arg(long, default_value = "member")]
    role: String,
}

/// The store's master key: `SAIREX_MASTER_KEY`, else the demo's `master.key` beside the data.
fn master_key(dir: &std::path::Path) -> anyhow::Result<Option<MasterKey>> {
    if let Ok(text) = std::env::var(sairex_config::ENV_MASTER_KEY) {
        return Ok(Some(
            MasterKey::parse(text.trim()).context("SAIREX_MASTER_KEY")?,
        ));
    }
    let path = dir.join("master.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            MasterKey::parse(text.trim()).with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(_) => Ok(None),
    }
}

pub async fn run(args: UserArgs) -> anyhow::Result<()> {
    let UserCommand::Add(args) = args.command;
    let Some(role) = sairex_http_api::console::parse_role(&args.role) else {
        bail!("--role: admin or member");
    };
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if !args.data_dir.is_dir() {
        bail!("--data-dir {}: no such directory", args.data_dir.display());
    }
    let mut options = StoreOptions::new(&args.data_dir);
    if let Some(key) = master_key(&args.data_dir)? {
        options = options.with_master_key(key);
    }
    let store = Store::open(options)
        .with_context(|| format!("opening the store at {}", args.data_dir.display()))?;
    let orgs = store.all_organizations().context("listing organizations")?;
    let Some(org) = orgs
        .iter()
        .find(|o| o.name == args.org || o.id.to_string() == args.org)
    else {
        bail!("no organization named {:?} in this store", args.org);
    };
    let user = sairex_http_api::console::create_user(
        &store,
        org.id,
        &args.email,
        &args.name,
        role,
        password,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    store.flush().await.context("writing the store")?;
    println!(
        "user {} ({}) added to organization {:?} (id {}) as {:?}",
        user.email, user.id, org.name, org.id, user.role
    );
    Ok(())
}
