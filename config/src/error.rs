//! Problems found in a configuration: each with its dotted key and its line.

use std::fmt;
use std::path::PathBuf;

/// What is wrong with one key (or with the file as a whole).
///
/// Messages never contain a secret's value: for secrets only the type or length is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file is not valid TOML. Returned for each syntax error; when there is one, the
    /// settings are not checked (a half-parsed document would only add noise).
    #[error("invalid TOML: {0}")]
    Syntax(String),
    /// A key this version does not know (a typo, or a setting from another version).
    #[error("unknown key{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownKey {
        /// The closest known key, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },
    /// The value has the wrong TOML type (a string where an integer belongs, ...). Unlike
    /// [`Problem::InvalidValue`], the value was not even looked at.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the key takes, with its range when it has one ("an integer 1..=65535").
        expected: String,
        /// What was there ("\"abc\"", "a table"; only the type for a secret).
        found: String,
    },
    /// The type is right but the value is not usable: out of range, not an address, not a
    /// duration, not one of the allowed words, ...
    #[error("expected {expected}, found {found}")]
    InvalidValue {
        /// What the key takes.
        expected: String,
        /// What was there (never a secret's value).
        found: String,
    },
    /// A required key, section or secret is absent.
    #[error("missing {what}")]
    Missing {
        /// What is missing and how to provide it.
        what: String,
    },
    /// A name or number that must be unique appears twice.
    #[error("duplicate {what}{}", first_line.map(|l| format!(" (first on line {l})")).unwrap_or_default())]
    Duplicate {
        /// What is duplicated ("provider name \"jazz\"").
        what: String,
        /// Where it first appeared.
        first_line: Option<usize>,
    },
    /// Keys that are each valid but do not go together.
    #[error("{0}")]
    Conflict(String),
    /// A file the configuration names cannot be used (checked by [`crate::load`] only).
    #[error("cannot use {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why (the I/O error, or what is wrong with its content; never the content).
        reason: String,
    },
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, with 0-based indexes into arrays: `providers[1].smpp.port`. Empty for a
    /// syntax error; `env SAIREX_MASTER_KEY` for an environment variable.
    pub key: String,
    /// 1-based line in the file, when the problem has a place in it (a missing section or an
    /// environment variable has none).
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "{}: {}", self.key, self.problem)
        }
    }
}

/// Every problem found in one configuration, in file order. Never empty.
///
/// Its `Display` writes one line per problem, prefixed by the origin (the file name) and the
/// line: `sairex.toml:12: providers[1].smpp.port: expected an integer 1..=65535, found "abc"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    origin: String,
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Problems found in `origin` (a file name, or a label for text parsed from memory).
    pub(crate) fn new(origin: impl Into<String>, mut errors: Vec<ConfigError>) -> Self {
        // File order, problems without a line (missing sections, the environment) last; the
        // sort is stable so problems on one line keep the order they were found in.
        errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        Self {
            origin: origin.into(),
            errors,
        }
    }

    /// Where the configuration came from (the file name given to [`crate::load`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The same problems, reported against another origin (a file name).
    #[must_use]
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = origin.into();
        self
    }

    /// The problems, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false (there is at least one problem); present for the `len` convention.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// One formatted line per problem (the lines of the `Display` form).
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.errors.iter().map(|e| match e.line {
            Some(line) => format!("{}:{line}: {e}", self.origin),
            None => format!("{}: {e}", self.origin),
        })
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, line) in self.lines().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&line)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
