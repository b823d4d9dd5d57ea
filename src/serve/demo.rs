//! `serve --demo`: the in-process SMSC simulator as a system provider, and the "demo"
//! organization with its admin key (printed once; kept across restarts), the superadmin token
//! (kept beside the data), webhooks to loopback targets allowed, and a console login (a new
//! password each start).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use sairex_config::{
    BindMode, Concatenation, Config, DataCoding, Gsm7Packing, InDoubt, ProviderConfig,
    ProviderConnection, ProviderKind, Secret, SmppConfig,
};
use sairex_loadtest::sim::{SimConfig, SimHandle, SimServer};
use sairex_store::Store;

use super::api::DemoKey;

/// The provider entry's name.
const PROVIDER: &str = "demo-smsc";
/// The organization's name.
pub const ORGANIZATION: &str = "demo";
/// How long after a submit the simulator sends its receipt: DELIVERED within a second.
const RECEIPT_DELAY: Duration = Duration::from_millis(300);

/// The demo console user's email.
pub const DEMO_EMAIL: &str = "admin@demo.sairex";

/// Makes sure the demo organization has an admin console user, with a new random password
/// each start (printed once, like the key).
async fn demo_login(store: &Store, org: sairex_store::model::Id) -> anyhow::Result<String> {
    let password = sairex_http_api::generate_api_key()["sk_live_".len()..][..16].to_owned();
    let hash = sairex_http_api::console::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    match store.console_user_by_email(DEMO_EMAIL)? {
        Some(user) => {
            store
                .update_console_user(user.organization_id, user.id, move |u| {
                    u.password_hash = hash;
                    u.is_active = true;
                    Ok(())
                })
                .await?;
        }
        None => {
            sairex_http_api::console::create_user(
                store,
                org,
                DEMO_EMAIL,
                "Demo admin",
                sairex_store::model::ConsoleRole::Admin,
                &password,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        }
    }
    Ok(password)
}

/// Starts the simulator on an ephemeral loopback port and adds it to the config as an SMPP
/// provider for everyone.
pub async fn start_simulator(config: &mut Config) -> anyhow::Result<SimHandle> {
    let sim_config = SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        receipt_delay: RECEIPT_DELAY,
        ..SimConfig::default()
    };
    let (system_id, password) = (sim_config.system_id.clone(), sim_config.password.clone());
    let sim = SimServer::start(sim_config)
        .await
        .context("starting the demo SMSC simulator")?;
    let addr = sim.addr();
    tracing::info!(%addr, "demo SMSC simulator");
    config.providers.retain(|p| p.name != PROVIDER);
    let smpp = SmppConfig {
        host: addr.ip().to_string(),
        port: addr.port(),
        system_id,
        password: Secret::new(password),
        system_type: String::new(),
        bind_mode: BindMode::Transceiver,
        binds: 2,
        window: 64,
        response_timeout: Duration::from_secs(10),
        enquire_link_interval: Duration::from_secs(30),
        reconnect_min: Duration::from_millis(500),
        reconnect_max: Duration::from_secs(10),
        source_ton: None,
        source_npi: None,
        dest_ton: 1,
        dest_npi: 1,
        data_coding: DataCoding::Auto,
        gsm7_packing: Gsm7Packing::Unpacked,
        concatenation: Concatenation::Udh8,
        registered_delivery: 1,
        in_doubt: InDoubt::Resubmit,
        tls: None,
    };
    config.providers.push(ProviderConfig {
        name: PROVIDER.into(),
        kind: ProviderKind::Smpp,
        priority: 0,
        active: true,
        organizations: Vec::new(),
        tps: None,
        cost_per_segment: None,
        connection: ProviderConnection::Smpp(Box::new(smpp)),
    });
    Ok(sim)
}

/// Makes sure the "demo" organization exists and prints what a user needs: the URL, the
/// superadmin token, the organization's admin key (in full when created now; its prefix and
/// how to make another on a restart, since only its hash is kept), a ready-to-paste curl, and
/// how to bind over SMPP when the SMPP server runs.
pub async fn announce(
    store: &Store,
    api: SocketAddr,
    admin_token: &str,
    smpp: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let (org, key) = super::api::demo_organization(store, ORGANIZATION)
        .await
        .context("creating the demo organization")?;
    let url = format!("http://{api}");
    let password = demo_login(store, org)
        .await
        .context("creating the demo console login")?;
    println!();
    println!("Sairex SMS demo is running: {url}");
    println!("Web console: {url}/console/  (sign in as {DEMO_EMAIL}, password {password})");
    println!("Superadmin token (for /api/admin/*, /metrics and `sairex admin`): {admin_token}");
    println!(
        "Webhooks may target loopback and private addresses in the demo \
         ([webhooks] allow_private_targets = true)."
    );
    let shown = match &key {
        DemoKey::New(raw) => {
            println!("Organization \"{ORGANIZATION}\" (id {org}); its admin API key (shown once):");
            println!();
            println!("  {raw}");
            println!();
            raw.clone()
        }
        DemoKey::Existing(prefix) => {
            println!(
                "Organization \"{ORGANIZATION}\" (id {org}) and its admin API key {prefix}… are kept \
                 from the last run (only the key's hash is stored). To make a new key:"
            );
            println!();
            println!(
                "  curl -s -X POST {url}/api/admin/organizations/{org}/api-keys -H 'Authorization: Bearer {admin_token}' -H 'Content-Type: application/json' -d '{{\"name\": \"demo admin 2\"}}'"
            );
            println!();
            "<your key>".to_owned()
        }
    };
    println!("Send a message (it reaches DELIVERED through the built-in SMSC simulator):");
    println!();
    println!(
        "  curl -s -X POST {url}/api/sms/send -H 'Authorization: Bearer {shown}' -H 'Content-Type: application/json' -d '{{\"to\": \"+923001234567\", \"body\": \"Hello from Sairex\"}}'"
    );
    println!();
    println!(
        "Then follow it: curl -s {url}/api/sms/status/<messageId> -H 'Authorization: Bearer {shown}'"
    );
    if let Some(smpp) = smpp {
        let password = super::smpp::demo_account(store, org)
            .await
            .context("creating the demo SMPP account")?;
        println!();
        println!(
            "Or bind over SMPP 3.4 (transmitter, receiver or transceiver): host {} port {}, system_id demo, password {password}",
            smpp.ip(),
            smpp.port()
        );
    }
    println!("Stop with Ctrl-C.");
    Ok(())
}
