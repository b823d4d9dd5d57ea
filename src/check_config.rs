//! `sairex check-config FILE`: validates a configuration file the way `serve` loads it
//! (including the files it names and the environment overrides) and lists every problem.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use sairex_config::{Config, ProviderConnection, SyncMode};

use crate::EXIT_USAGE;

/// Arguments of `sairex check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// The configuration file (TOML), e.g. /etc/sairex/sairex.toml.
    file: PathBuf,
}

/// Prints `FILE: OK` and a summary on stdout (exit 0), or every problem on stderr, one per
/// line as `FILE:LINE: KEY: PROBLEM` (exit 64).
pub fn run(args: &CheckConfigArgs) -> ExitCode {
    let env: HashMap<String, String> = sairex_config::ENV_VARS
        .iter()
        .filter_map(|&name| std::env::var(name).ok().map(|v| (name.to_owned(), v)))
        // Empty counts as unset, as in the configuration crate.
        .filter(|(_, value)| !value.is_empty())
        .collect();
    match sairex_config::load(&args.file, &env) {
        Ok(config) => {
            println!("{}: OK", args.file.display());
            for line in summary(&config, &env) {
                println!("  {line}");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for line in errors.lines() {
                eprintln!("{line}");
            }
            let count = errors.len();
            let plural = if count == 1 { "" } else { "s" };
            eprintln!("{}: {count} problem{plural}", args.file.display());
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// What the configuration amounts to, in a few lines (no secret, only where they come from).
fn summary(config: &Config, env: &HashMap<String, String>) -> Vec<String> {
    let server = &config.server;
    let mut listen = format!("listen {}", server.listen);
    if let Some(metrics) = server.metrics_listen {
        listen.push_str(&format!(", metrics {metrics}"));
    }
    let store = &config.store;
    let sync = match store.sync {
        SyncMode::Always => "always",
        SyncMode::Batch => "batch",
        SyncMode::None => "none",
    };
    let key_source = if env.contains_key(sairex_config::ENV_MASTER_KEY) {
        format!("master key from {}", sairex_config::ENV_MASTER_KEY)
    } else if let Some(file) = &store.master_key_file {
        format!("master key from {}", file.display())
    } else {
        "no master key".to_owned()
    };
    let token_source = if env.contains_key(sairex_config::ENV_ADMIN_TOKEN) {
        sairex_config::ENV_ADMIN_TOKEN
    } else {
        "the file"
    };
    let providers: Vec<String> = config
        .providers
        .iter()
        .map(|p| {
            let mut text = format!("{} ({}", p.name, p.kind.as_str());
            if let ProviderConnection::Smpp(smpp) = &p.connection {
                text.push_str(&format!(" {}:{}", smpp.host, smpp.port));
            }
            if !p.active {
                text.push_str(", inactive");
            }
            text.push(')');
            text
        })
        .collect();
    let count = providers.len();
    let mut provider_line = format!("{count} provider{}", if count == 1 { "" } else { "s" });
    if count > 0 {
        provider_line.push_str(&format!(": {}", providers.join(", ")));
    }
    let routes = config.inbound_routes.len();
    let smpp = &config.smpp_server;
    let smpp_line = match (smpp.listen, smpp.tls_listen) {
        (None, None) => "SMPP server off".to_owned(),
        (plain, tls) => {
            let mut parts = Vec::new();
            if let Some(addr) = plain {
                parts.push(format!("listen {addr}"));
            }
            if let Some(addr) = tls {
                parts.push(format!("TLS {addr}"));
            }
            format!("SMPP server {}", parts.join(", "))
        }
    };
    vec![
        listen,
        format!("store {} (sync {sync}, {key_source})", store.path.display()),
        format!("admin token from {token_source}"),
        provider_line,
        format!(
            "{routes} inbound route{}",
            if routes == 1 { "" } else { "s" }
        ),
        smpp_line,
    ]
}
