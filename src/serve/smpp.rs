//! The SMPP server side of `serve`: listeners from `[smpp_server]` (or a loopback one for the
//! demo), and the demo's SMPP account.

use std::net::SocketAddr;

use anyhow::Context;
use sairex_config::SmppServerConfig;
use sairex_http_api::ApiHandle;
use sairex_http_api::smpp_server::{SmppServer, SmppServerSettings, tls_acceptor_from_files};
use sairex_store::model::Id;
use sairex_store::{SmppAccount, Store};
use tokio::net::TcpListener;

/// The running server and where it listens.
pub struct Started {
    pub server: SmppServer,
    pub plain: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
}

fn settings(config: &SmppServerConfig) -> SmppServerSettings {
    SmppServerSettings {
        system_id: config.system_id.clone(),
        idle_timeout: config.idle_timeout,
        enquire_link_interval: config.enquire_link_interval,
        bind_timeout: config.bind_timeout,
        response_timeout: config.response_timeout,
        receipt_max_age: config.receipt_max_age,
        max_command_length: config.max_command_length,
        lockout_after: config.lockout_after,
        lockout_duration: config.lockout_duration,
        max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
        ..SmppServerSettings::default()
    }
}

/// Starts the SMPP server when configured (or for the demo, on an ephemeral loopback port).
pub async fn start(
    config: &SmppServerConfig,
    api: &ApiHandle,
    demo: bool,
) -> anyhow::Result<Option<Started>> {
    let plain_addr = match (config.listen, demo, config.enabled()) {
        (Some(addr), _, _) => Some(addr),
        (None, true, false) => Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        (None, _, _) => None,
    };
    if plain_addr.is_none() && config.tls_listen.is_none() {
        return Ok(None);
    }
    let plain = match plain_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} (SMPP)"))?,
        ),
        None => None,
    };
    let tls = match (config.tls_listen, &config.tls) {
        (Some(addr), Some(files)) => {
            let acceptor = tls_acceptor_from_files(&files.cert_file, &files.key_file)
                .context("the SMPP server's TLS certificate")?;
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} (SMPP over TLS)"))?;
            Some((listener, acceptor))
        }
        _ => None,
    };
    let plain_local = plain.as_ref().and_then(|l| l.local_addr().ok());
    let tls_local = tls.as_ref().and_then(|(l, _)| l.local_addr().ok());
    let server = SmppServer::start(api, settings(config), plain, tls);
    Ok(Some(Started {
        server,
        plain: plain_local,
        tls: tls_local,
    }))
}

/// The demo organization's SMPP account "demo" with a new password (returned, shown once).
pub async fn demo_account(store: &Store, org: Id) -> anyhow::Result<String> {
    let password = sairex_http_api::smpp_server::generate_password();
    let hash = sairex_http_api::smpp_server::hash_password(&password)
        .context("hashing the demo SMPP password")?;
    match store.smpp_account_by_system_id("demo")? {
        Some(existing) if existing.organization_id == org => {
            store
                .update_smpp_account(org, existing.id, move |a| {
                    a.password_hash = hash;
                    Ok(())
                })
                .await?;
        }
        Some(_) => anyhow::bail!("the SMPP system id \"demo\" belongs to another organization"),
        None => {
            store
                .create_smpp_account(SmppAccount {
                    organization_id: org,
                    system_id: "demo".into(),
                    password_hash: hash,
                    description: "serve --demo".into(),
                    ..SmppAccount::default()
                })
                .await?;
        }
    }
    Ok(password)
}
