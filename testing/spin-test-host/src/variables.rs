//! Spin variables: `{{ name }}` templates over the application's `[variables]`,
//! with values from `SPIN_VARIABLE_<NAME>` like Spin's environment provider.
//! Everything is resolved once at start-up, so a missing required variable
//! stops the host before it serves anything. Values are never printed.
//!
//! Spin resolves a variable through its providers again on every `get`
//! (crates/expressions, `ProviderResolver::resolve`), and a provider that
//! fails then (Vault or Azure Key Vault unreachable, say) makes `get` return
//! `error::provider` (crates/factor-variables/src/host.rs,
//! `expressions_to_variables_err`). The environment provider this host
//! copies never fails, so such a failure is simulated on request: the
//! application variables named in `SPIN_TEST_HOST_FAILING_VARIABLES`
//! (comma-separated) resolve at start-up as usual, and every later `get` of
//! a component variable whose template uses one of them fails with
//! `error::provider`.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result, anyhow, bail};

use crate::manifest::VariableDecl;

/// One piece of a template: literal text or a variable reference.
#[derive(Debug, PartialEq)]
enum Part {
    Lit(String),
    Var(String),
}

/// A parsed `"text {{ name }} text"` template (Spin's syntax: no escapes).
#[derive(Debug, PartialEq)]
struct Template(Vec<Part>);

impl Template {
    fn parse(text: &str) -> Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("{{") {
                let (expr, tail) = after
                    .split_once("}}")
                    .ok_or_else(|| anyhow!("unmatched '{{{{' in template {text:?}"))?;
                parts.push(Part::Var(expr.trim().to_owned()));
                rest = tail;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(Part::Lit(rest[..end].to_owned()));
                rest = &rest[end..];
            }
        }
        Ok(Self(parts))
    }
}

/// Checks a variable name the way Spin does: lowercase ASCII letters, digits
/// and single underscores, starting with a letter and not ending with `_`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name
        .chars()
        .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    {
        "may contain only lower-case letters, numbers, and underscores"
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        "must start with a lowercase ASCII letter"
    } else if name.ends_with('_') {
        "must end with a lowercase ASCII letter or digit"
    } else if name.contains("__") {
        "must not contain multiple consecutive underscores"
    } else {
        return Ok(());
    };
    Err(format!("{name:?}: {reason}"))
}

/// The environment variable Spin's environment provider reads for `name`.
pub fn env_var_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Spin's environment provider.
pub fn from_env(name: &str) -> Option<String> {
    std::env::var(env_var_name(name)).ok()
}

/// The host-only variable naming the application variables whose provider
/// fails after start-up (see the module documentation).
pub const FAILING_VARIABLES_ENV: &str = "SPIN_TEST_HOST_FAILING_VARIABLES";

/// The application variables `SPIN_TEST_HOST_FAILING_VARIABLES` names.
pub fn failing_from_env() -> HashSet<String> {
    std::env::var(FAILING_VARIABLES_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every application variable with its value.
#[derive(Debug)]
pub struct AppVariables(HashMap<String, String>);

impl AppVariables {
    /// Resolves each declared variable from `lookup`, else its default.
    /// Fails naming every variable left without a value (as Spin does, this
    /// includes one declared with neither `required` nor `default`).
    pub fn resolve(
        decls: &BTreeMap<String, VariableDecl>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let mut values = HashMap::new();
        let mut missing = Vec::new();
        for (name, decl) in decls {
            validate_name(name).map_err(|e| anyhow!("invalid variable name {e}"))?;
            if decl.required && decl.default.is_some() {
                bail!("variable {name:?} cannot be both required and have a default");
            }
            match lookup(name).or_else(|| decl.default.clone()) {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None => missing.push(format!("{name} (set {})", env_var_name(name))),
            }
        }
        if !missing.is_empty() {
            bail!("required variable(s) not set: {}", missing.join(", "));
        }
        Ok(Self(values))
    }

    /// Renders a template; every referenced variable must be declared.
    pub fn render(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        for part in Template::parse(template)?.0 {
            match part {
                Part::Lit(text) => out.push_str(&text),
                Part::Var(name) => out.push_str(
                    self.0
                        .get(&name)
                        .ok_or_else(|| anyhow!("template refers to unknown variable {name:?}"))?,
                ),
            }
        }
        Ok(out)
    }
}

/// Why `fermyon:spin/variables.get` failed (mapped onto the WIT error).
#[derive(Debug, PartialEq)]
pub enum GetError {
    InvalidName(String),
    Undefined(String),
    /// A provider failed (simulated: `SPIN_TEST_HOST_FAILING_VARIABLES`).
    Provider(String),
}

/// A component's `[component.<id>.variables]`, rendered; what the guest reads.
#[derive(Debug, Default)]
pub struct ComponentVariables {
    values: HashMap<String, String>,
    /// Component variable -> a failing application variable its template uses.
    failing: HashMap<String, String>,
}

impl ComponentVariables {
    pub fn resolve(decls: &BTreeMap<String, String>, app: &AppVariables) -> Result<Self> {
        let mut values = HashMap::new();
        for (name, template) in decls {
            validate_name(name).map_err(|e| anyhow!("invalid component variable name {e}"))?;
            let value = app
                .render(template)
                .with_context(|| format!("component variable {name:?}"))?;
            values.insert(name.clone(), value);
        }
        Ok(Self {
            values,
            failing: HashMap::new(),
        })
    }

    /// Makes `get` fail with a provider error for every component variable
    /// whose template (in `decls`) uses one of the application variables
    /// `failing`.
    pub fn with_failing_provider(
        mut self,
        decls: &BTreeMap<String, String>,
        failing: &HashSet<String>,
    ) -> Self {
        for (name, template) in decls {
            let Ok(Template(parts)) = Template::parse(template) else {
                continue;
            };
            if let Some(Part::Var(var)) = parts
                .iter()
                .find(|p| matches!(p, Part::Var(v) if failing.contains(v)))
            {
                self.failing.insert(name.clone(), var.clone());
            }
        }
        self
    }

    pub fn get(&self, name: &str) -> Result<String, GetError> {
        validate_name(name).map_err(GetError::InvalidName)?;
        if let Some(var) = self.failing.get(name) {
            return Err(GetError::Provider(format!(
                "the provider of variable {var:?} failed ({FAILING_VARIABLES_ENV})"
            )));
        }
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| GetError::Undefined(format!("no variable {name:?} for this component")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decls() -> BTreeMap<String, VariableDecl> {
        let mut d = BTreeMap::new();
        d.insert(
            "token".into(),
            VariableDecl {
                required: true,
                ..Default::default()
            },
        );
        d.insert(
            "greeting".into(),
            VariableDecl {
                default: Some("hello".into()),
                ..Default::default()
            },
        );
        d
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn templates_parse_like_spin() {
        use Part::*;
        assert_eq!(Template::parse("").unwrap().0, vec![]);
        assert_eq!(
            Template::parse("a-{{ x }}-b{{y}}").unwrap().0,
            vec![
                Lit("a-".into()),
                Var("x".into()),
                Lit("-b".into()),
                Var("y".into())
            ]
        );
        assert!(Template::parse("{{ ok }} {{ broken").is_err());
    }

    #[test]
    fn missing_required_variable_is_named() {
        let err = AppVariables::resolve(&decls(), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("token") && err.contains("SPIN_VARIABLE_TOKEN"),
            "{err}"
        );
        assert!(!err.contains("greeting"), "{err}");
    }

    #[test]
    fn default_and_override() {
        let app = AppVariables::resolve(&decls(), env(&[("token", "t0k")])).unwrap();
        assert_eq!(
            app.render("{{ greeting }}, {{token}}!").unwrap(),
            "hello, t0k!"
        );

        let app =
            AppVariables::resolve(&decls(), env(&[("token", "t"), ("greeting", "hi")])).unwrap();
        assert_eq!(app.render("{{ greeting }}").unwrap(), "hi");
        assert!(app.render("{{ nope }}").is_err());
    }

    /// Reading the process environment is covered by tests/cli.rs, which
    /// runs the binary with `SPIN_VARIABLE_*` set.
    #[test]
    fn env_provider_uses_uppercase_name() {
        assert_eq!(
            env_var_name("oidc_issuer_url"),
            "SPIN_VARIABLE_OIDC_ISSUER_URL"
        );
    }

    #[test]
    fn declarations_are_checked() {
        let mut d = decls();
        d.get_mut("greeting").unwrap().required = true;
        assert!(AppVariables::resolve(&d, env(&[("token", "t")])).is_err());

        let mut d = decls();
        d.insert(
            "Bad".into(),
            VariableDecl {
                default: Some("x".into()),
                ..Default::default()
            },
        );
        assert!(AppVariables::resolve(&d, env(&[("token", "t")])).is_err());
    }

    #[test]
    fn names_are_validated_like_spin() {
        for good in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn component_get() {
        let app = AppVariables::resolve(&decls(), env(&[("token", "secret")])).unwrap();
        let mut tmpl = BTreeMap::new();
        tmpl.insert("api_token".to_string(), "Bearer {{ token }}".to_string());
        let vars = ComponentVariables::resolve(&tmpl, &app).unwrap();
        assert_eq!(vars.get("api_token").unwrap(), "Bearer secret");
        assert!(matches!(vars.get("greeting"), Err(GetError::Undefined(_))));
        assert!(matches!(
            vars.get("Api-Token"),
            Err(GetError::InvalidName(_))
        ));

        tmpl.insert("broken".to_string(), "{{ undeclared }}".to_string());
        assert!(ComponentVariables::resolve(&tmpl, &app).is_err());
    }

    /// Spin returns `error::provider` when a provider fails at `get` time;
    /// the host simulates it for the application variables named.
    #[test]
    fn a_failing_provider_fails_get_for_the_variables_that_use_it() {
        let app = AppVariables::resolve(&decls(), env(&[("token", "secret")])).unwrap();
        let mut tmpl = BTreeMap::new();
        tmpl.insert("api_token".to_string(), "Bearer {{ token }}".to_string());
        tmpl.insert("hello".to_string(), "{{ greeting }}".to_string());
        let failing = HashSet::from(["token".to_owned()]);
        let vars = ComponentVariables::resolve(&tmpl, &app)
            .unwrap()
            .with_failing_provider(&tmpl, &failing);
        assert!(
            matches!(vars.get("api_token"), Err(GetError::Provider(m)) if m.contains("token") && !m.contains("secret"))
        );
        assert_eq!(vars.get("hello").unwrap(), "hello");
        assert!(matches!(vars.get("Bad"), Err(GetError::InvalidName(_))));
    }
}
