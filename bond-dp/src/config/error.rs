//! Configuration errors: each names what was wrong and what would be right.

use thiserror::Error;

/// A bad option: names the option, the value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OptionError {
    #[error("unknown option \"{name}\"{}", did_you_mean(.suggestion))]
    Unknown {
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("option {name}: invalid value \"{value}\" (allowed: {allowed})")]
    InvalidValue {
        name: &'static str,
        value: String,
        allowed: String,
    },
    #[error("option {name}={value}: not supported in mode {mode} (allowed in: {allowed})")]
    UnsupportedInMode {
        name: &'static str,
        value: String,
        mode: &'static str,
        allowed: String,
    },
    #[error("option {name}={value}: {reason}")]
    Conflict {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("expected key=value, got \"{0}\"")]
    Syntax(String),
}

fn did_you_mean(s: &Option<&'static str>) -> String {
    match s {
        Some(name) => format!(" (did you mean \"{name}\"?)"),
        None => String::new(),
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(transparent)]
    Option(#[from] OptionError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("bond {bond}: {message}")]
    Bond { bond: String, message: String },
    #[error("engine setting {name}: invalid value \"{value}\" (allowed: {allowed})")]
    Engine {
        name: String,
        value: String,
        allowed: String,
    },
}
