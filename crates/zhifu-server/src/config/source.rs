//! Where configuration values come from (the environment over an optional
//! TOML file) and how a value is read: each problem is a [`ConfigError`]
//! naming the variable, never its value when it may be secret.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The variable (or file) at fault.
    pub var: String,
    /// What is wrong, without the value when it may be secret.
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(var: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            var: var.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Where configuration values come from.
#[derive(Debug, Default)]
pub struct Source {
    env: HashMap<String, String>,
    file: HashMap<String, String>,
}

impl Source {
    /// The process environment plus the TOML file `ZHIFU_CONFIG` names.
    ///
    /// # Errors
    /// When the file cannot be read or is not a flat TOML table.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(std::env::vars().collect())
    }

    /// A given environment (tests), plus the TOML file it names.
    ///
    /// # Errors
    /// As [`Source::from_env`].
    pub fn from_map(env: HashMap<String, String>) -> Result<Self, ConfigError> {
        let file = match env.get("ZHIFU_CONFIG").filter(|p| !p.is_empty()) {
            Some(path) => read_toml(Path::new(path))?,
            None => HashMap::new(),
        };
        Ok(Source { env, file })
    }

    /// The value of `var`: the environment first, then the file; empty means unset.
    pub fn get(&self, var: &str) -> Option<String> {
        self.env
            .get(var)
            .or_else(|| self.file.get(&var.to_ascii_lowercase()))
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }

    pub(crate) fn required(&self, var: &str) -> Result<String, ConfigError> {
        self.get(var)
            .ok_or_else(|| ConfigError::new(var, "must be set"))
    }

    /// `VAR`, or the contents of the file `VAR_FILE` names.
    pub(crate) fn secret(&self, var: &str) -> Result<Option<String>, ConfigError> {
        if let Some(v) = self.get(var) {
            return Ok(Some(v));
        }
        let file_var = format!("{var}_FILE");
        match self.get(&file_var) {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(&path)
                .map(Some)
                .map_err(|e| ConfigError::new(&file_var, format!("cannot read {path}: {e}"))),
        }
    }
}

fn read_toml(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "ZHIFU_CONFIG",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError::new(
            "ZHIFU_CONFIG",
            format!("{} is not valid TOML: {}", path.display(), e.message()),
        )
    })?;
    let mut out = HashMap::new();
    for (k, v) in table {
        let v = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(ConfigError::new(
                    "ZHIFU_CONFIG",
                    format!("key `{k}` must be a string, integer or boolean"),
                ));
            }
        };
        out.insert(k.to_ascii_lowercase(), v);
    }
    Ok(out)
}

pub(crate) fn parse_bool(var: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            var,
            format!("expected true or false, got {v:?}"),
        )),
    }
}

pub(crate) fn parse_num<T>(var: &str, v: &str, range: (T, T)) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    let n: T = v
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(var, format!("expected a number, got {v:?}")))?;
    if n < range.0 || n > range.1 {
        return Err(ConfigError::new(
            var,
            format!("must be between {} and {}", range.0, range.1),
        ));
    }
    Ok(n)
}

/// Checks an absolute http(s) URL and strips its trailing slash.
pub fn check_base_url(var: &str, v: &str) -> Result<String, ConfigError> {
    let parsed =
        url::Url::parse(v).map_err(|e| ConfigError::new(var, format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::new(var, "must be an http(s) URL with a host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(ConfigError::new(var, "must not have a query or fragment"));
    }
    Ok(v.trim_end_matches('/').to_owned())
}
