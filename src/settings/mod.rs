//! Typed settings, loaded in layers: the TOML file, then `ADUAN__SECTION__KEY`
//! environment overrides. Secrets are `env:`/`file:` references.
//!
//! This module is data only: it imports nothing else of the crate. Parsing
//! checks every section and every instance's name and kind, and reports all
//! problems together with their location; building the instances from their
//! settings is the job of `instances::build_all`, at start or in
//! `aduan check-config`, which prints both kinds of problem at once.

mod instance;
mod limits;
mod media;
mod outbound;
mod sections;
mod status;
mod web;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use instance::{InstanceKind, InstanceSettings};
pub use limits::{InstanceLimits, LimitsConfig};
pub use media::{MediaConfig, MediaPolicy};
pub use outbound::{OutboundConfig, ReplyPolicy, TrackingConfig};
pub use sections::{
    BlobBackend, BlobsConfig, LanguageConfig, LogConfig, LogFormat, RedisConfig, SPOOL_FILE_NAME,
    ServerConfig, SmtpListenerConfig, SpoolConfig,
};
pub use status::{NoticeTemplate, StatusConfig, StatusNoticeSettings};
pub use web::WebConfig;

/// The gateway's whole configuration, as data.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub redis: RedisConfig,
    pub log: LogConfig,
    pub smtp: SmtpListenerConfig,
    pub blobs: BlobsConfig,
    pub spool: SpoolConfig,
    pub limits: LimitsConfig,
    pub language: LanguageConfig,
    pub outbound: OutboundConfig,
    pub tracking: TrackingConfig,
    pub media: MediaConfig,
    pub web: WebConfig,
    pub status: StatusConfig,
    /// `[[instances]]`, in file order.
    pub instances: Vec<InstanceSettings>,
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
        let (config, errors) = Config::read(path);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Like [`Config::load`], but returns what could be read together with
    /// every problem, so that a later check (building the instances) can add
    /// its own.
    pub fn read(path: &Path) -> (Config, Vec<ConfigError>) {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let env: Vec<(String, String)> = std::env::vars().collect();
                Config::parse(&text, &env, &path.display().to_string())
            }
            Err(e) => (
                Config::default(),
                vec![ConfigError {
                    location: path.display().to_string(),
                    message: format!("cannot read: {e}"),
                }],
            ),
        }
    }

    /// Parses `text` with `env` overrides; `origin` names the file in locations.
    pub fn from_toml(
        text: &str,
        env: &[(String, String)],
        origin: &str,
    ) -> Result<Config, ConfigErrors> {
        let (config, errors) = Config::parse(text, env, origin);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Everything that could be read (defaults where a section is broken) and
    /// every problem found, in file order.
    pub fn parse(text: &str, env: &[(String, String)], origin: &str) -> (Config, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let mut root: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| format!(":{}", line_of(text, s.start)))
                    .unwrap_or_default();
                errors.push(ConfigError {
                    location: format!("{origin}{line}"),
                    message: e.message().to_string(),
                });
                return (Config::default(), errors);
            }
        };
        apply_env_overrides(&mut root, env, &mut errors);

        let server = section::<ServerConfig>(&mut root, "server", &mut errors);
        let redis = section::<RedisConfig>(&mut root, "redis", &mut errors);
        let log = section::<LogConfig>(&mut root, "log", &mut errors);
        let smtp = section::<SmtpListenerConfig>(&mut root, "smtp", &mut errors);
        for (location, message) in smtp.problems() {
            errors.push(ConfigError {
                location: location.into(),
                message: message.into(),
            });
        }
        let blobs = section::<BlobsConfig>(&mut root, "blobs", &mut errors);
        for (location, message) in blobs.problems() {
            errors.push(ConfigError {
                location: location.into(),
                message: message.into(),
            });
        }
        let spool = section::<SpoolConfig>(&mut root, "spool", &mut errors);
        for (location, message) in spool.problems() {
            errors.push(ConfigError {
                location: location.into(),
                message: message.into(),
            });
        }
        let limits = section::<LimitsConfig>(&mut root, "limits", &mut errors);
        let language = section::<LanguageConfig>(&mut root, "language", &mut errors);
        let outbound = section::<OutboundConfig>(&mut root, "outbound", &mut errors);
        let tracking = section::<TrackingConfig>(&mut root, "tracking", &mut errors);
        let media = section::<MediaConfig>(&mut root, "media", &mut errors);
        let web = section::<WebConfig>(&mut root, "web", &mut errors);
        let status = section::<StatusConfig>(&mut root, "status", &mut errors);
        for (location, message) in media
            .problems()
            .into_iter()
            .chain(web.problems())
            .chain(status.problems())
        {
            errors.push(ConfigError {
                location: location.into(),
                message: message.into(),
            });
        }
        let prefix_ok = tracking.prefix.len() <= 8
            && tracking
                .prefix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !prefix_ok {
            errors.push(ConfigError {
                location: "tracking.prefix".into(),
                message: "must be at most 8 capital letters or digits".into(),
            });
        }
        for (location, message) in outbound.problems() {
            errors.push(ConfigError {
                location: location.into(),
                message: message.into(),
            });
        }
        if redis.stream.is_empty() {
            errors.push(ConfigError {
                location: "redis.stream".into(),
                message: "must not be empty".into(),
            });
        }
        if redis.partitions == 0 || redis.partitions > 1024 {
            errors.push(ConfigError {
                location: "redis.partitions".into(),
                message: "must be between 1 and 1024".into(),
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
                    "unknown section `{key}`, expected one of: server, redis, log, smtp, blobs, limits, spool, language, outbound, tracking, media, web, status, instances"
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
            if let Some(inst) = InstanceSettings::parse(i, &line, value, &mut names, &mut errors) {
                instances.push(inst);
            }
        }
        let config = Config {
            server,
            redis,
            log,
            smtp,
            blobs,
            spool,
            limits,
            language,
            outbound,
            tracking,
            media,
            web,
            status,
            instances,
        };
        (config, errors)
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
        assert_eq!(cfg.redis.url.expose(), "redis://127.0.0.1:6379");
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
    fn smtp_tls_defaults_and_contradictions() {
        let cfg = Config::from_toml("", &[], "t.toml").expect("valid");
        assert!(cfg.smtp.starttls);
        assert_eq!(cfg.smtp.tls_dir, std::path::Path::new("data/smtp-tls"));
        let errs = errors("[smtp]\ntls_cert = \"/etc/aduan/smtp.crt\"\n");
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].contains("smtp.tls_cert"), "{errs:#?}");
        let errs =
            errors("[smtp]\nstarttls = false\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n");
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].contains("smtp.starttls"), "{errs:#?}");
        assert!(errors("[smtp]\ntls_dir = \"\"\n")[0].contains("smtp.tls_dir"));
        assert!(errors("[smtp]\nstarttls = false\n").is_empty());
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
    fn the_redis_url_is_never_printed() {
        let cfg = Config::from_toml(
            "[redis]\nurl = \"redis://:kata-sandi-rahasia@10.0.0.5:6379/0\"\n",
            &[],
            "t.toml",
        )
        .expect("valid");
        assert_eq!(
            cfg.redis.url.expose(),
            "redis://:kata-sandi-rahasia@10.0.0.5:6379/0"
        );
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("kata-sandi"), "{printed}");
    }

    #[test]
    fn toml_syntax_errors_carry_the_line() {
        let errs = errors("[server]\nlisten = \n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("t.toml:2"), "{errs:?}");
    }
}
