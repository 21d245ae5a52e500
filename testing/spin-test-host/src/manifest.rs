//! Reads the subset of a Spin manifest (v2) that an HTTP app needs, so the
//! test host runs the app from the very same `spin.toml` that `spin up` uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The parts of `spin.toml` the host acts on. Unknown keys are ignored, as
/// they only matter to Spin's tooling (build, watch, descriptions...).
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDecl>,
}

/// An application variable from `[variables]`. Unknown keys are refused so a
/// typo such as `requried` cannot silently make a variable optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Accepted for Spin compatibility; no variable value is ever printed.
    #[serde(default)]
    #[allow(dead_code)]
    pub secret: bool,
    #[allow(dead_code)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Deserialize)]
pub struct HttpTrigger {
    pub route: String,
    pub component: String,
}

/// One `[component.<id>]` table.
#[derive(Debug, Deserialize)]
pub struct ComponentDecl {
    /// A path relative to the manifest's directory; Spin's `{ url, digest }`
    /// form is kept as a raw value only to reject it with a clear message.
    pub source: toml::Value,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    /// Component variable name -> template over application variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Environment variables for the guest (WASI environment), as in Spin.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid manifest {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = toml::from_str(text)?;
        if manifest.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version {} is not supported (only 2)",
                manifest.spin_manifest_version
            );
        }
        if manifest.trigger.http.is_empty() {
            bail!("the manifest has no [[trigger.http]]");
        }
        for trigger in &manifest.trigger.http {
            if !manifest.component.contains_key(&trigger.component) {
                bail!(
                    "trigger route {:?} names component {:?}, which is not defined",
                    trigger.route,
                    trigger.component
                );
            }
        }
        Ok(manifest)
    }
}

impl ComponentDecl {
    /// The component's wasm file, resolved against the manifest's directory.
    pub fn source_path(&self, manifest_dir: &Path) -> Result<PathBuf> {
        match &self.source {
            toml::Value::String(path) => Ok(manifest_dir.join(path)),
            _ => bail!("only a local file path is supported as component `source`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
spin_manifest_version = 2

[application]
name = "demo"

[variables]
token = { required = true, secret = true }
greeting = { default = "hello" }

[[trigger.http]]
route = "/..."
component = "web"

[component.web]
source = "target/app.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["{{ idp }}"]
environment = { RUST_LOG = "info" }

[component.web.variables]
token = "{{ token }}"

[component.web.build]
command = "cargo build"
"#;

    #[test]
    fn parses_an_http_app() {
        let m = Manifest::parse(APP).unwrap();
        assert_eq!(m.trigger.http.len(), 1);
        assert_eq!(m.trigger.http[0].route, "/...");
        assert!(m.variables["token"].required && m.variables["token"].secret);
        assert_eq!(m.variables["greeting"].default.as_deref(), Some("hello"));
        let web = &m.component["web"];
        assert_eq!(web.key_value_stores, ["default"]);
        assert_eq!(web.allowed_outbound_hosts, ["{{ idp }}"]);
        assert_eq!(web.variables["token"], "{{ token }}");
        assert_eq!(web.environment["RUST_LOG"], "info");
        assert_eq!(
            web.source_path(Path::new("/app")).unwrap(),
            Path::new("/app/target/app.wasm")
        );
    }

    #[test]
    fn parses_the_project_manifest() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
        let m = Manifest::load(&path).unwrap();
        assert!(m.trigger.http.iter().any(|t| t.route == "/..."));
    }

    #[test]
    fn rejects_unknown_component_and_version() {
        let bad = APP.replace("component = \"web\"", "component = \"nope\"");
        let err = format!("{:#}", Manifest::parse(&bad).unwrap_err());
        assert!(err.contains("\"nope\""), "{err}");

        let v1 = APP.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(Manifest::parse(&v1).is_err());
    }

    #[test]
    fn rejects_remote_source() {
        let remote = APP.replace(
            "source = \"target/app.wasm\"",
            "source = { url = \"https://x/y.wasm\", digest = \"sha256:00\" }",
        );
        let m = Manifest::parse(&remote).unwrap();
        assert!(m.component["web"].source_path(Path::new("/")).is_err());
    }
}
