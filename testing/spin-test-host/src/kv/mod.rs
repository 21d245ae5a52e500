//! Key-value backends behind one trait, and the stores configured for the
//! app, placed by Spin's rules: `default` is Spin's SQLite store in a file in
//! the app's state directory unless Spin's runtime config file
//! (`[key_value_store.<label>]`) says otherwise (see [`Stores::load`]).

mod backend;
pub mod handles;
pub mod redis;
pub mod sqlite;

pub use backend::{IncrementError, KvBackend, KvError};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Spin's runtime config file; only key-value stores and the state directory
/// are supported, and any other section is refused rather than silently
/// ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeConfig {
    #[serde(default)]
    key_value_store: HashMap<String, StoreConfig>,
    /// spin-operator always renders an `env` provider; variables already come from
    /// `SPIN_VARIABLE_*` here, so it is accepted and changes nothing.
    #[serde(default)]
    config_provider: Vec<ConfigProvider>,
    /// Read by [`resolve_state_dir`] when `--state-dir` is not given.
    #[serde(default)]
    state_dir: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ConfigProvider {
    Env {
        #[allow(dead_code)]
        #[serde(default)]
        prefix: Option<String>,
        #[allow(dead_code)]
        #[serde(default)]
        dotenv_path: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum StoreConfig {
    Redis {
        url: String,
    },
    /// Spin's SQLite store, placed by [`sqlite::Location::resolve`].
    Spin {
        #[serde(default)]
        path: Option<PathBuf>,
    },
}

/// The state directory as the command line gives it: Spin's
/// `UserProvidedPath` (crates/trigger/src/cli.rs: `spin up --state-dir`, where
/// an empty value unsets it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StateDirArg {
    /// No `--state-dir`: the runtime config's `state_dir`, else `.spin` in
    /// the app's directory.
    #[default]
    Default,
    /// `--state-dir ""`: no state directory.
    Unset,
    Provided(PathBuf),
}

impl StateDirArg {
    /// The value of `--state-dir`.
    pub fn from_flag(value: &str) -> Self {
        if value.is_empty() {
            Self::Unset
        } else {
            Self::Provided(PathBuf::from(value))
        }
    }
}

/// The name of the default store's file in the state directory (Spin:
/// `DEFAULT_SPIN_STORE_FILENAME` in crates/runtime-config/src/lib.rs).
pub const DEFAULT_STORE_FILE: &str = "sqlite_key_value.db";

/// The app's state directory, by Spin's rules (crates/runtime-config/src/lib.rs,
/// `TomlResolver::state_dir`): `--state-dir` when given (empty: none); else the
/// runtime config's `state_dir` (empty: none); a given path is made absolute
/// against the working directory; with neither, `.spin` in the local app's
/// directory (`spin up` passes the manifest's directory, as written on its
/// command line: src/commands/up/app_source.rs, `local_app_dir`); and none
/// when there is no local app directory.
pub fn resolve_state_dir(
    arg: &StateDirArg,
    from_runtime_config: Option<&str>,
    app_dir: Option<&Path>,
) -> Result<Option<PathBuf>> {
    let chosen = match (arg, from_runtime_config) {
        (StateDirArg::Default, Some("")) => StateDirArg::Unset,
        (StateDirArg::Default, Some(path)) => StateDirArg::Provided(PathBuf::from(path)),
        (arg, _) => arg.clone(),
    };
    Ok(match (chosen, app_dir) {
        (StateDirArg::Provided(path), _) => Some(
            std::path::absolute(&path)
                .with_context(|| format!("state directory {}", path.display()))?,
        ),
        (StateDirArg::Default, Some(app_dir)) => Some(app_dir.join(".spin")),
        (StateDirArg::Default | StateDirArg::Unset, _) => None,
    })
}

/// What decides where the stores live.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// `--runtime-config-file`.
    pub runtime_config: Option<PathBuf>,
    /// The local app's directory: the manifest's directory.
    pub app_dir: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: StateDirArg,
}

/// The configured stores by label, with where each one lives.
pub struct Stores {
    backends: HashMap<String, Arc<dyn KvBackend>>,
    places: HashMap<String, String>,
}

impl Stores {
    /// The stores `spin up` would give the app, placed by Spin's rules:
    ///
    /// - each `[key_value_store.<label>]` of the runtime config: `redis`, or
    ///   `spin` (SQLite) with its `path` relative to the runtime config file's
    ///   directory (no `path`: in memory);
    /// - `default`, when the runtime config does not name it: SQLite in
    ///   `<state dir>/sqlite_key_value.db`, or in memory when there is no state
    ///   directory (crates/runtime-config/src/lib.rs,
    ///   `key_value_config_resolver`, and crates/factor-key-value/src/
    ///   runtime_config/spin.rs, `RuntimeConfigResolver::resolve`, which adds
    ///   the default only for a label the file leaves out);
    /// - a database file's directory is created now when missing; the file is
    ///   created by the first open.
    ///
    /// Must run inside the Tokio runtime.
    pub fn load(options: &StoreOptions) -> Result<Self> {
        let text = match &options.runtime_config {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read runtime config {}", path.display()))?,
            None => String::new(),
        };
        // Spin resolves relative store paths against the runtime config
        // file's directory (`runtime_config_path.and_then(Path::parent)`).
        let base = options.runtime_config.as_deref().and_then(Path::parent);
        Self::build(&text, base, options.app_dir.as_deref(), &options.state_dir).with_context(
            || match &options.runtime_config {
                Some(path) => format!("invalid runtime config {}", path.display()),
                None => "cannot set up the key-value stores".to_owned(),
            },
        )
    }

    fn build(
        text: &str,
        base: Option<&Path>,
        app_dir: Option<&Path>,
        state_dir: &StateDirArg,
    ) -> Result<Self> {
        let table: toml::Table = toml::from_str(text)?;
        // Checked by hand first to name an unknown type clearly.
        if let Some(stores) = table.get("key_value_store").and_then(|v| v.as_table()) {
            for (label, store) in stores {
                match store.get("type").and_then(|t| t.as_str()) {
                    Some("redis" | "spin") => {}
                    Some(other) => bail!(
                        "key_value_store.{label}: unsupported type {other:?} (supported: \"redis\", \"spin\")"
                    ),
                    None => bail!("key_value_store.{label}: missing `type`"),
                }
            }
        }
        let config: RuntimeConfig = table.try_into()?;
        let _ = &config.config_provider;
        let mut stores = Self {
            backends: HashMap::new(),
            places: HashMap::new(),
        };
        for (label, store) in config.key_value_store {
            match store {
                StoreConfig::Redis { url } => {
                    let backend = redis::RedisBackend::new(&url)
                        .with_context(|| format!("key_value_store.{label}"))?;
                    stores.places.insert(label.clone(), "Redis".to_owned());
                    stores.backends.insert(label, Arc::new(backend));
                }
                StoreConfig::Spin { path } => {
                    let location = sqlite::Location::resolve(base, path.as_deref());
                    stores.add_sqlite(&label, location)?;
                }
            }
        }
        if !stores.contains("default") {
            let state_dir = resolve_state_dir(state_dir, config.state_dir.as_deref(), app_dir)?;
            let file = state_dir.map(|dir| dir.join(DEFAULT_STORE_FILE));
            stores.add_sqlite("default", sqlite::Location::resolve(base, file.as_deref()))?;
        }
        Ok(stores)
    }

    fn add_sqlite(&mut self, label: &str, location: sqlite::Location) -> Result<()> {
        location
            .prepare()
            .with_context(|| format!("key_value_store.{label}"))?;
        self.places.insert(label.to_owned(), location.to_string());
        let backend = sqlite::SqliteBackend::new(label, location);
        self.backends.insert(label.to_owned(), Arc::new(backend));
        Ok(())
    }

    /// A runtime config's stores, with no runtime config file, no app
    /// directory and no state directory (so `default` is in memory).
    #[cfg(test)]
    pub fn parse(text: &str) -> Result<Self> {
        Self::build(text, None, None, &StateDirArg::Unset)
    }

    /// Only `default`, in memory (Spin with `--state-dir ""`).
    #[cfg(test)]
    pub fn in_memory_default() -> Self {
        Self::parse("").expect("an empty runtime config")
    }

    pub fn get(&self, label: &str) -> Option<Arc<dyn KvBackend>> {
        self.backends.get(label).cloned()
    }

    pub fn contains(&self, label: &str) -> bool {
        self.backends.contains_key(label)
    }

    /// Where the store `label` lives, for the start-up log: a quoted file
    /// path, "a temporary in-memory store" or "Redis".
    pub fn place(&self, label: &str) -> Option<&str> {
        self.places.get(label).map(String::as_str)
    }
}

#[cfg(test)]
mod tests;
