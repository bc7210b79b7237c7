//! Secrets in configuration: `env:VAR`, `file:/path`, or (for local use only)
//! a literal. The value never appears in `Debug` output or logs.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A resolved secret. `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from: `env`, `file` or `literal`.
    source: SecretSource,
}

/// How a secret was given in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSource {
    Env,
    File,
    Literal,
}

/// Why a secret reference could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("cannot read secret file {0}: {1}")]
    File(String, String),
    #[error("secret is empty")]
    Empty,
}

impl Secret {
    /// Resolves a reference: `env:NAME` reads the environment, `file:PATH`
    /// reads a file (one trailing newline trimmed), anything else is literal.
    pub fn resolve(reference: &str) -> Result<Self, SecretError> {
        let (value, source) = if let Some(var) = reference.strip_prefix("env:") {
            let v = std::env::var(var).map_err(|_| SecretError::MissingEnv(var.to_string()))?;
            (v, SecretSource::Env)
        } else if let Some(path) = reference.strip_prefix("file:") {
            let v = std::fs::read_to_string(path)
                .map_err(|e| SecretError::File(path.to_string(), e.kind().to_string()))?;
            let v = v
                .strip_suffix("\r\n")
                .or_else(|| v.strip_suffix('\n'))
                .unwrap_or(&v)
                .to_string();
            (v, SecretSource::File)
        } else {
            (reference.to_string(), SecretSource::Literal)
        };
        if value.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret { value, source })
    }

    /// A literal secret, for tests and programmatic construction.
    pub fn literal(value: impl Into<String>) -> Self {
        Secret {
            value: value.into(),
            source: SecretSource::Literal,
        }
    }

    /// The secret's value. Never log it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The secret's bytes. Never log them.
    pub fn expose_bytes(&self) -> &[u8] {
        self.value.as_bytes()
    }

    /// How it was given.
    pub fn source(&self) -> SecretSource {
        self.source
    }

    /// Compares with `candidate` in constant time.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        crate::verify::constant_time_eq(self.value.as_bytes(), candidate)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let reference = String::deserialize(d)?;
        Secret::resolve(&reference).map_err(|e| serde::de::Error::custom(format!("secret: {e}")))
    }
}
