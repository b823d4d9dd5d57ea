//! `sairex admin` and `sairex status`: a running gateway's superadmin endpoints from the
//! command line. The server is found by `--url`, `SAIREX_URL`, or the `server.listen` of
//! `--config`, else `http://127.0.0.1:8080`; the token by `--token`, `SAIREX_ADMIN_TOKEN`, or
//! the config file's `[admin] token`. Human-readable output by default, the API's JSON with
//! `--json`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Writes to stdout; a closed pipe (`sairex status | head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Exit code of `sairex status` when something is down (the server answered).
const EXIT_DOWN: u8 = 2;

/// Where the gateway is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The gateway's base URL, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "SAIREX_URL")]
    url: Option<String>,
    /// The superadmin token.
    #[arg(long, env = "SAIREX_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A configuration file to read the listen address and the token from.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sairex status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    connection: Connection,
}

/// Arguments of `sairex admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: AdminCommand,
}

/// What `sairex admin` does.
#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// List organizations.
    Orgs,
    /// Create an organization; prints its first admin key (shown once).
    OrgCreate {
        /// Its name.
        name: String,
        /// ISO 3166-1 alpha-2 country (numbers without a country code, default time zone).
        #[arg(long)]
        country: Option<String>,
        /// IANA time zone (default: the country's).
        #[arg(long)]
        timezone: Option<String>,
    },
    /// List an organization's API keys (masked).
    Keys {
        /// The organization's id.
        org: u64,
    },
    /// Create an API key for an organization; prints it (shown once).
    KeyCreate {
        /// The organization's id.
        org: u64,
        /// The key's name.
        #[arg(long, default_value = "admin")]
        name: String,
        /// Scopes, comma-separated (default: admin).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// Every provider with its state and binds.
    Providers,
    /// List an organization's webhooks.
    Webhooks {
        /// The organization's id.
        org: u64,
    },
}

/// A client of one gateway.
struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    fn new(c: &Connection) -> anyhow::Result<Self> {
        let config = match &c.config {
            Some(path) => {
                let env: HashMap<String, String> = sairex_config::ENV_VARS
                    .iter()
                    .filter_map(|&n| std::env::var(n).ok().map(|v| (n.to_owned(), v)))
                    .filter(|(_, v)| !v.is_empty())
                    .collect();
                Some(sairex_config::load(path, &env).map_err(|errors| {
                    anyhow::anyhow!(
                        "{}: {}",
                        path.display(),
                        errors.lines().collect::<Vec<_>>().join("; ")
                    )
                })?)
            }
            None => None,
        };
        let base = match (&c.url, &config) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(config)) => format!("http://{}", reachable(config.server.listen)),
            (None, None) => "http://127.0.0.1:8080".to_owned(),
        };
        let token = match (&c.token, &config) {
            (Some(t), _) if !t.is_empty() => t.clone(),
            (_, Some(config)) => match &config.admin.token {
                Some(t) => t.expose().to_owned(),
                None => bail!("no superadmin token: give --token or SAIREX_ADMIN_TOKEN"),
            },
            _ => bail!("no superadmin token: give --token, SAIREX_ADMIN_TOKEN or --config"),
        };
        let http = sairex_engine::http_client::builder()
            .context("TLS set-up")?
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .context("HTTP client")?;
        Ok(Self { base, token, http })
    }

    /// The `data` of an answer, or the API's error message.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{url}: HTTP {status}, not JSON: {text:.200}"))?;
        if value["success"] == json!(true) {
            return Ok(value["data"].clone());
        }
        let code = value["error"]["code"].as_str().unwrap_or("ERROR");
        let message = value["error"]["message"].as_str().unwrap_or(text.as_str());
        bail!("{url}: HTTP {status} {code}: {message}")
    }

    /// Every item of a list, following `nextCursor`.
    async fn all(&self, path: &str) -> anyhow::Result<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                Some(c) => format!("{path}?limit=1000&cursor={c}"),
                None => format!("{path}?limit=1000"),
            };
            let page = self.call(reqwest::Method::GET, &page_path, None).await?;
            if let Some(list) = page["items"].as_array() {
                items.extend(list.iter().cloned());
            }
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(Value::Array(items)),
            }
        }
    }
}

/// An address a client can connect to: a wildcard listen address is reached on loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// `sairex status`: 0 when everything is up, 2 when something is down, 1 when the gateway
/// could not be asked.
pub async fn status(args: StatusArgs) -> ExitCode {
    let result = async {
        let client = Client::new(&args.connection)?;
        client
            .call(reqwest::Method::GET, "/api/admin/status", None)
            .await
    }
    .await;
    match result {
        Ok(status) => {
            if args.connection.json {
                say!("{status:#}");
            } else {
                say!("{}", status_text(&status).trim_end());
            }
            if status["ok"] == json!(true) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_DOWN)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // display only
    let mut size = n as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{size:.1} {}", UNITS[unit])
    }
}

/// The status as an operator reads it.
fn status_text(s: &Value) -> String {
    let mut out = String::new();
    let problems = s["problems"].as_array().cloned().unwrap_or_default();
    if s["ok"] == json!(true) {
        out.push_str("Sairex: OK\n");
    } else {
        out.push_str(&format!("Sairex: DOWN ({} problems)\n", problems.len()));
        for p in &problems {
            out.push_str(&format!("  ! {}\n", text(p)));
        }
    }
    out.push_str("\nProviders\n");
    let providers = s["providers"].as_array().cloned().unwrap_or_default();
    if providers.is_empty() {
        out.push_str("  (none)\n");
    }
    for p in &providers {
        let binds = p["binds"].as_array().cloned().unwrap_or_default();
        let bound = binds.iter().filter(|b| b["state"] == "bound").count();
        let bind_summary = if binds.is_empty() {
            String::new()
        } else {
            format!("  binds {bound}/{} bound", binds.len())
        };
        out.push_str(&format!(
            "  #{} {} ({}, org {})  {}{}\n",
            text(&p["id"]),
            text(&p["displayName"]),
            text(&p["providerName"]),
            text(&p["organizationId"]),
            text(&p["state"]),
            bind_summary
        ));
        for b in &binds {
            let error = match b["lastError"].as_str() {
                Some(e) => format!("  last error {e}"),
                None => String::new(),
            };
            out.push_str(&format!(
                "      bind {}: {:<12} window {}/{}  reconnects {}{}\n",
                text(&b["index"]),
                text(&b["state"]),
                text(&b["windowInUse"]),
                text(&b["window"]),
                text(&b["reconnects"]),
                error
            ));
        }
    }
    out.push_str("\nQueues (ready messages)\n");
    let queues = s["queues"].as_array().cloned().unwrap_or_default();
    if queues.is_empty() {
        out.push_str("  (empty)\n");
    }
    for q in &queues {
        out.push_str(&format!(
            "  org {} {}: {} {}\n",
            text(&q["organizationId"]),
            text(&q["organization"]),
            text(&q["priorityName"]),
            text(&q["ready"])
        ));
    }
    let size = s["store"]["sizeBytes"].as_u64().unwrap_or(0);
    out.push_str(&format!("\nStore: {}\n", bytes(size)));
    out
}

/// `sairex admin …`.
pub async fn admin(args: AdminArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.connection)?;
    let json_out = args.connection.json;
    let print_rows = |items: &Value, columns: &[&str]| {
        if json_out {
            say!("{items:#}");
            return;
        }
        say!("{}", columns.join("\t"));
        for item in items.as_array().into_iter().flatten() {
            let row: Vec<String> = columns.iter().map(|c| text(&item[*c])).collect();
            say!("{}", row.join("\t"));
        }
    };
    match args.command {
        AdminCommand::Orgs => {
            let orgs = client.all("/api/admin/organizations").await?;
            print_rows(
                &orgs,
                &["id", "name", "defaultCountry", "timezone", "isActive"],
            );
        }
        AdminCommand::OrgCreate {
            name,
            country,
            timezone,
        } => {
            let mut body = json!({ "name": name });
            if let Some(c) = country {
                body["defaultCountry"] = json!(c);
            }
            if let Some(tz) = timezone {
                body["timezone"] = json!(tz);
            }
            let org = client
                .call(
                    reqwest::Method::POST,
                    "/api/admin/organizations",
                    Some(body),
                )
                .await?;
            if json_out {
                say!("{org:#}");
            } else {
                say!(
                    "organization {} \"{}\" ({}, {})",
                    text(&org["id"]),
                    text(&org["name"]),
                    text(&org["defaultCountry"]),
                    text(&org["timezone"])
                );
                say!("admin key (shown once): {}", text(&org["apiKey"]["key"]));
            }
        }
        AdminCommand::Keys { org } => {
            let keys = client
                .all(&format!("/api/admin/organizations/{org}/api-keys"))
                .await?;
            print_rows(
                &keys,
                &[
                    "id",
                    "name",
                    "keyPrefix",
                    "scopes",
                    "isActive",
                    "lastUsedAt",
                ],
            );
        }
        AdminCommand::KeyCreate { org, name, scopes } => {
            let mut body = json!({ "name": name });
            if !scopes.is_empty() {
                body["scopes"] = json!(scopes);
            }
            let key = client
                .call(
                    reqwest::Method::POST,
                    &format!("/api/admin/organizations/{org}/api-keys"),
                    Some(body),
                )
                .await?;
            if json_out {
                say!("{key:#}");
            } else {
                say!(
                    "key {} \"{}\" {}",
                    text(&key["id"]),
                    text(&key["name"]),
                    text(&key["scopes"])
                );
                say!("key (shown once): {}", text(&key["key"]));
            }
        }
        AdminCommand::Providers => {
            let status = client
                .call(reqwest::Method::GET, "/api/admin/status", None)
                .await?;
            if json_out {
                say!("{:#}", status["providers"]);
            } else {
                for p in status["providers"].as_array().into_iter().flatten() {
                    let binds = p["binds"].as_array().cloned().unwrap_or_default();
                    let states: Vec<String> = binds.iter().map(|b| text(&b["state"])).collect();
                    say!(
                        "{}\t{}\t{}\torg {}\t{}\thealth {}\tbinds [{}]",
                        text(&p["id"]),
                        text(&p["displayName"]),
                        text(&p["providerName"]),
                        text(&p["organizationId"]),
                        text(&p["state"]),
                        text(&p["healthStatus"]),
                        states.join(", ")
                    );
                }
            }
        }
        AdminCommand::Webhooks { org } => {
            let hooks = client
                .all(&format!("/api/admin/organizations/{org}/webhooks"))
                .await?;
            print_rows(&hooks, &["id", "url", "events", "isActive"]);
        }
    }
    Ok(())
}
