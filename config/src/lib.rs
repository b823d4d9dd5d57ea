//! Sairex SMS configuration: the TOML file (`sairex.toml`), its defaults, and a validation that
//! reports every problem at once, each with its dotted key and its line.
//!
//! ```
//! use std::collections::HashMap;
//!
//! let env = HashMap::from([(
//!     "SAIREX_ADMIN_TOKEN".to_owned(),
//!     "a-long-random-admin-token".to_owned(),
//! )]);
//! let config = sairex_config::parse("[server]\nlisten = \"127.0.0.1:9000\"\n", &env)?;
//! assert_eq!(config.server.listen.port(), 9000);
//!
//! let errors = sairex_config::parse("[server]\nlisten = 8080\nlisen = 1\n", &env).unwrap_err();
//! assert_eq!(errors.to_string(), "config:2: server.listen: expected an IP address and port \
//!     such as \"127.0.0.1:8080\" or \"[::]:8080\", found 8080\n\
//!     config:3: server.lisen: unknown key (did you mean `listen`?)");
//! # Ok::<(), sairex_config::ConfigErrors>(())
//! ```
//!
//! The library reads no environment variable itself: the binary passes the ones that matter
//! ([`ENV_ADMIN_TOKEN`], [`ENV_MASTER_KEY`]) as a map, so tests never touch the process
//! environment.
//!
//! # Layout
//! - [`model`]: the validated [`Config`] and its sections; values are checked once, here.
//! - [`error`]: [`ConfigErrors`], [`ConfigError`] and [`Problem`].
//! - `secret`: [`Secret`] and [`MasterKey`], whose `Debug` never shows them.
//! - `walk`: the document walk (spans, lines, unknown keys, suggestions).
//! - `values`: conversions of single values (sizes, durations, addresses, amounts...).
//! - `validate`: the schema: keys, defaults, ranges, and the checks across keys.
//! - `notify`: `sd_notify` readiness for systemd ([`notify_ready`], [`notify_stopping`]).
#![warn(missing_docs)]

use std::collections::HashMap;
use std::path::Path;

pub mod error;
pub mod model;
mod notify;
mod secret;
mod validate;
mod values;
mod walk;

pub use error::{ConfigError, ConfigErrors, Problem};
pub use model::*;
pub use notify::{notify_ready, notify_stopping};
pub use secret::{MASTER_KEY_LEN, MasterKey, MasterKeyError, Secret};

/// Environment variable that overrides `[admin] token`.
pub const ENV_ADMIN_TOKEN: &str = "SAIREX_ADMIN_TOKEN";
/// Environment variable that overrides `[store] master_key_file` (hex or base64, 32 bytes).
pub const ENV_MASTER_KEY: &str = "SAIREX_MASTER_KEY";
/// The environment variables the configuration reads (what the binary should pass).
pub const ENV_VARS: [&str; 2] = [ENV_ADMIN_TOKEN, ENV_MASTER_KEY];

/// Shortest admin token accepted, in characters.
pub const ADMIN_TOKEN_MIN_CHARS: usize = validate::ADMIN_TOKEN_MIN_CHARS;

/// Problems in text parsed by [`parse`] are reported against this origin (see
/// [`ConfigErrors::with_origin`]).
pub const TEXT_ORIGIN: &str = "config";

/// Parses and validates a configuration from text, with the environment overrides in `env`.
/// Reads no file: `master_key_file` and TLS files are only checked to be paths (see
/// [`load`]).
///
/// # Errors
/// Every problem found ([`ConfigErrors`], origin [`TEXT_ORIGIN`]): syntax errors alone when the
/// text is not valid TOML, else every unknown key, wrong type, bad value, missing key or
/// secret, duplicate and conflict.
pub fn parse(text: &str, env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
    check(TEXT_ORIGIN, text, env, false)
}

/// Reads, parses and validates the configuration file at `path`, with the environment
/// overrides in `env`. Unlike [`parse`] it also reads the files the configuration names: the
/// master key (into [`StoreConfig::master_key`], unless the environment has one) and the TLS
/// certificates and keys (checked to be readable).
///
/// # Errors
/// Every problem found, reported against `path` as given; a file that cannot be read (or is
/// not UTF-8) is a single [`Problem::File`].
pub fn load(path: &Path, env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::new(
            origin.clone(),
            vec![ConfigError {
                key: String::new(),
                line: None,
                problem: Problem::File {
                    path: path.to_owned(),
                    reason: e.to_string(),
                },
            }],
        )
    })?;
    check(&origin, &text, env, true)
}

fn check(
    origin: &str,
    text: &str,
    env: &HashMap<String, String>,
    check_files: bool,
) -> Result<Config, ConfigErrors> {
    let mut cx = walk::Ctx::new(text, check_files);
    let (document, syntax_errors) = toml::de::DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let span = error.span();
            cx.error(
                "",
                span.as_ref(),
                Problem::Syntax(error.message().trim().to_owned()),
            );
        }
        return Err(ConfigErrors::new(origin, cx.errors));
    }
    let config = validate::config(&mut cx, document.get_ref(), env);
    if cx.errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors::new(origin, cx.errors))
    }
}
