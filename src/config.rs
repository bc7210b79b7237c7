//! Typed settings, loaded in layers: the TOML file, then `ADUAN__SECTION__KEY`
//! environment overrides. Secrets inside instances are `env:`/`file:` references.
//!
//! Loading never stops at the first problem: every section and every instance
//! is checked, and all problems come back together with their location, which
//! is what `aduan check-config` prints.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aduan_adapter::{Adapter, Poller};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::instances;

/// The gateway's whole configuration, validated.
pub struct Config {
    pub server: ServerConfig,
    pub redis: RedisConfig,
    pub log: LogConfig,
    pub smtp: crate::smtp::SmtpListenerConfig,
    pub blobs: crate::blobs::BlobsConfig,
    pub spool: crate::spool::SpoolConfig,
    pub limits: crate::limits::LimitsConfig,
    /// `[language]`, built: which languages complaint texts are detected among.
    pub language: crate::pipeline::LanguageDetector,
    pub instances: Vec<Instance>,
}

/// `[server]`: the HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the HTTP listener binds. Default `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes, unless an adapter sets its own. Default 1 MiB.
    pub body_limit_bytes: usize,
    /// How long one request may take, including reading a slow client's body. Default 15 s
    /// (Twilio gives up after 15 s, Meta and X sooner).
    pub request_timeout_seconds: u64,
    /// How long shutdown waits for in-flight requests. Default 20 s.
    pub shutdown_grace_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            body_limit_bytes: 1024 * 1024,
            request_timeout_seconds: 15,
            shutdown_grace_seconds: 20,
        }
    }
}

/// `[redis]`: the sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// Redis URL. Default `redis://127.0.0.1:6379`. May be an `env:`/`file:` reference.
    pub url: String,
    /// The complaints stream key. Default `aduan:complaints`.
    pub stream: String,
    /// Prefix of every other key the gateway writes (dedup keys, leases, cursors). Default `aduan`.
    pub key_prefix: String,
    /// How long a delivery is remembered for deduplication. Default 8 days, longer than any
    /// provider's retry horizon (WhatsApp: 7 days).
    pub dedup_window_seconds: u64,
    /// How long one Redis command may take before it counts as a failure. Default 2000 ms.
    pub command_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            stream: "aduan:complaints".into(),
            key_prefix: "aduan".into(),
            dedup_window_seconds: 8 * 24 * 3600,
            command_timeout_ms: 2000,
        }
    }
}

/// `[log]`: logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`. Default `human`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `aduan=debug`. `RUST_LOG` overrides it. Default `info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// A configured channel instance, built and ready to serve.
pub struct Instance {
    /// Unique name, `[a-z0-9-]+`.
    pub name: String,
    /// The adapter kind, e.g. `transcript`, `whatsapp`.
    pub kind: String,
    /// Keep the exact bytes received in `raw`. Default true.
    pub keep_raw: bool,
    pub route: Option<&'static str>,
    pub adapter: Option<Arc<dyn Adapter>>,
    /// Taken by the server when it starts the instance's poller.
    pub poller: std::sync::Mutex<Option<Box<dyn Poller>>>,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: `server.listen`, `instances[2] "wa-jabar"` (with the file's line when known).
    pub location: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found, in file order.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The default configuration file, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/aduan.toml";

impl Config {
    /// Reads `path`, applies environment overrides, validates everything.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                location: path.display().to_string(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::from_toml(&text, &env, &path.display().to_string())
    }

    /// Parses `text` with `env` overrides; `origin` names the file in locations.
    pub fn from_toml(
        text: &str,
        env: &[(String, String)],
        origin: &str,
    ) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let mut root: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| format!(":{}", line_of(text, s.start)))
                    .unwrap_or_default();
                return Err(ConfigErrors(vec![ConfigError {
                    location: format!("{origin}{line}"),
                    message: e.message().to_string(),
                }]));
            }
        };
        apply_env_overrides(&mut root, env, &mut errors);

        let server = section::<ServerConfig>(&mut root, "server", &mut errors);
        let mut redis = section::<RedisConfig>(&mut root, "redis", &mut errors);
        let log = section::<LogConfig>(&mut root, "log", &mut errors);
        let smtp = section::<crate::smtp::SmtpListenerConfig>(&mut root, "smtp", &mut errors);
        let blobs = section::<crate::blobs::BlobsConfig>(&mut root, "blobs", &mut errors);
        let spool = section::<crate::spool::SpoolConfig>(&mut root, "spool", &mut errors);
        for (location, message) in spool.problems() {
            errors.push(ConfigError {
                location: location.into(),
                message: message.into(),
            });
        }
        let limits = section::<crate::limits::LimitsConfig>(&mut root, "limits", &mut errors);
        let language_cfg =
            section::<crate::pipeline::LanguageConfig>(&mut root, "language", &mut errors);
        let language =
            crate::pipeline::LanguageDetector::new(&language_cfg).unwrap_or_else(|message| {
                errors.push(ConfigError {
                    location: "language.candidates".into(),
                    message,
                });
                crate::pipeline::LanguageDetector::default()
            });
        if redis.url.starts_with("env:") || redis.url.starts_with("file:") {
            match aduan_adapter::Secret::resolve(&redis.url) {
                Ok(s) => redis.url = s.expose().to_string(),
                Err(e) => errors.push(ConfigError {
                    location: "redis.url".into(),
                    message: e.to_string(),
                }),
            }
        }
        if redis.stream.is_empty() {
            errors.push(ConfigError {
                location: "redis.stream".into(),
                message: "must not be empty".into(),
            });
        }
        if redis.dedup_window_seconds == 0 {
            errors.push(ConfigError {
                location: "redis.dedup_window_seconds".into(),
                message: "must be positive".into(),
            });
        }

        let instance_tables = match root.remove("instances") {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items,
            Some(_) => {
                errors.push(ConfigError {
                    location: "instances".into(),
                    message: "must be an array of tables ([[instances]])".into(),
                });
                Vec::new()
            }
        };
        for key in root.keys() {
            errors.push(ConfigError {
                location: key.clone(),
                message: format!(
                    "unknown section `{key}`, expected one of: server, redis, log, smtp, blobs, limits, spool, language, instances"
                ),
            });
        }

        let header_lines = instance_header_lines(text);
        let mut names = HashSet::new();
        let mut instances = Vec::new();
        for (i, value) in instance_tables.into_iter().enumerate() {
            let line = header_lines
                .get(i)
                .map(|l| format!(" ({origin}:{l})"))
                .unwrap_or_default();
            let mut location = format!("instances[{i}]{line}");
            let toml::Value::Table(mut table) = value else {
                errors.push(ConfigError {
                    location,
                    message: "must be a table".into(),
                });
                continue;
            };
            let name = match table.remove("name") {
                Some(toml::Value::String(n)) => n,
                Some(_) => {
                    errors.push(ConfigError {
                        location: location.clone(),
                        message: "`name` must be a string".into(),
                    });
                    continue;
                }
                None => {
                    errors.push(ConfigError {
                        location: location.clone(),
                        message: "missing `name`".into(),
                    });
                    continue;
                }
            };
            location = format!("instances[{i}] \"{name}\"{line}");
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                errors.push(ConfigError {
                    location: location.clone(),
                    message: "`name` must match [a-z0-9-]+".into(),
                });
            }
            if !names.insert(name.clone()) {
                errors.push(ConfigError {
                    location: location.clone(),
                    message: format!("duplicate instance name `{name}`"),
                });
            }
            let kind = match table.remove("kind") {
                Some(toml::Value::String(k)) => k,
                _ => {
                    errors.push(ConfigError {
                        location,
                        message: "missing or non-string `kind`".into(),
                    });
                    continue;
                }
            };
            let keep_raw = match table.remove("keep_raw") {
                None => true,
                Some(toml::Value::Boolean(b)) => b,
                Some(_) => {
                    errors.push(ConfigError {
                        location: location.clone(),
                        message: "`keep_raw` must be true or false".into(),
                    });
                    true
                }
            };
            match instances::build(&kind, &name, keep_raw, table) {
                Ok(built) => instances.push(Instance {
                    name,
                    kind,
                    keep_raw,
                    route: built.route,
                    adapter: built.adapter,
                    poller: std::sync::Mutex::new(built.poller),
                }),
                Err(message) => errors.push(ConfigError {
                    location: format!("{location} kind `{kind}`"),
                    message,
                }),
            }
        }
        errors.extend(limits.check(&names));

        if errors.is_empty() {
            Ok(Config {
                server,
                redis,
                log,
                smtp,
                blobs,
                spool,
                limits,
                language,
                instances,
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// The configuration file to use: the argument, else `ADUAN_CONFIG`, else the default.
    pub fn path_from(arg: Option<PathBuf>) -> PathBuf {
        arg.or_else(|| std::env::var_os("ADUAN_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
    }
}

/// Takes `[name]` out of the root and deserializes it, recording any error and
/// falling back to defaults so that later sections are still checked.
fn section<T: DeserializeOwned + Default>(
    root: &mut toml::Table,
    name: &str,
    errors: &mut Vec<ConfigError>,
) -> T {
    match root.remove(name) {
        None => T::default(),
        Some(value) => match T::deserialize(value) {
            Ok(v) => v,
            Err(e) => {
                errors.push(ConfigError {
                    location: name.to_string(),
                    message: e.message().to_string(),
                });
                T::default()
            }
        },
    }
}

/// `ADUAN__REDIS__URL=redis://…` sets `redis.url`. Values that parse as TOML
/// scalars (numbers, booleans) keep their type; anything else is a string.
fn apply_env_overrides(
    root: &mut toml::Table,
    env: &[(String, String)],
    errors: &mut Vec<ConfigError>,
) {
    for (key, value) in env {
        let Some(path) = key.strip_prefix("ADUAN__") else {
            continue;
        };
        let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
            errors.push(ConfigError {
                location: format!("environment {key}"),
                message: "expected ADUAN__<SECTION>__<KEY>".into(),
            });
            continue;
        }
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !matches!(v, toml::Value::Table(_) | toml::Value::Array(_)))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let entry = root
            .entry(parts[0].clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => {
                t.insert(parts[1].clone(), parsed);
            }
            _ => errors.push(ConfigError {
                location: format!("environment {key}"),
                message: format!("`{}` is not a section", parts[0]),
            }),
        }
    }
}

/// 1-based line of byte offset `pos` in `text`.
fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Line numbers of each `[[instances]]` header, in order.
fn instance_header_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[instances]]"))
        .map(|(i, _)| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match Config::from_toml(text, &[], "t.toml") {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn empty_file_gives_defaults() {
        let cfg = Config::from_toml("", &[], "t.toml").expect("valid");
        assert_eq!(cfg.server.listen.port(), 8080);
        assert_eq!(cfg.redis.stream, "aduan:complaints");
        assert_eq!(cfg.redis.dedup_window_seconds, 691_200);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errs = errors(
            r#"
[server]
listen = "not an address"

[redis]
strem = "x"

[bogus]

[[instances]]
name = "Bad Name"
kind = "nope"

[[instances]]
kind = "nope"
"#,
        );
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert!(errs[0].starts_with("server:"), "{errs:#?}");
        assert!(errs[1].contains("strem"), "{errs:#?}");
        assert!(errs[2].contains("unknown section `bogus`"), "{errs:#?}");
        assert!(
            errs[3].contains("t.toml:10") && errs[3].contains("[a-z0-9-]+"),
            "{errs:#?}"
        );
        assert!(errs[4].contains("unknown kind `nope`"));
        assert!(errs[5].contains("missing `name`") && errs[5].contains("t.toml:14"));
    }

    #[test]
    fn environment_overrides_apply_with_types() {
        let env = vec![
            (
                "ADUAN__REDIS__STREAM".to_string(),
                "other:stream".to_string(),
            ),
            (
                "ADUAN__SERVER__BODY_LIMIT_BYTES".to_string(),
                "2048".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let cfg = Config::from_toml("", &env, "t.toml").expect("valid");
        assert_eq!(cfg.redis.stream, "other:stream");
        assert_eq!(cfg.server.body_limit_bytes, 2048);
    }

    #[test]
    fn unresolvable_redis_url_secret_is_reported() {
        let errs = errors("[redis]\nurl = \"env:ADUAN_TEST_SURELY_UNSET_VAR\"\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("ADUAN_TEST_SURELY_UNSET_VAR"));
    }

    #[test]
    fn toml_syntax_errors_carry_the_line() {
        let errs = errors("[server]\nlisten = \n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("t.toml:2"), "{errs:?}");
    }
}
