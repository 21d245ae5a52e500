//! `spin-test-host`: runs a Spin HTTP app's component the way `spin up` does,
//! for tests on machines without the Spin CLI. Test infrastructure only;
//! production runs on Spin / SpinKube.
//!
//! Usage: spin-test-host --manifest spin.toml --listen 127.0.0.1:0
//!        [--runtime-config-file runtime-config.toml] [--state-dir DIR]
//!
//! `--state-dir` is `spin up`'s: the directory of the default key-value store
//! (`sqlite_key_value.db`); without it, the runtime config's `state_dir`, else
//! `.spin` beside the manifest; an empty value means none (the default store
//! is then in memory). See `kv::Stores::load`.
//!
//! When ready, prints exactly one line to stdout, `listening on http://IP:PORT`;
//! all logs go to stderr.

mod compile;
mod host;
mod kv;
mod manifest;
mod outbound;
mod response_order;
mod routes;
mod server;
mod variables;
mod wasi_keyvalue;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use wasmtime::component::Linker;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::host::ComponentConfig;
use crate::kv::{StateDirArg, StoreOptions, Stores};
use crate::manifest::Manifest;
use crate::outbound::{AllowedHosts, OutboundHttp};
use crate::routes::Router;
use crate::variables::{AppVariables, ComponentVariables};

const USAGE: &str = "usage: spin-test-host --manifest PATH/spin.toml --listen IP:PORT \
     [--runtime-config-file FILE] [--state-dir DIR]";

struct Args {
    manifest: PathBuf,
    listen: SocketAddr,
    runtime_config: Option<PathBuf>,
    state_dir: StateDirArg,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args> {
    let (mut manifest, mut listen, mut runtime_config) = (None, None, None);
    let mut state_dir = StateDirArg::Default;
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--manifest" => manifest = Some(PathBuf::from(value()?)),
            "--listen" => {
                let text = value()?;
                listen = Some(
                    text.parse()
                        .with_context(|| format!("--listen {text:?}: expected IP:PORT"))?,
                );
            }
            "--runtime-config-file" => runtime_config = Some(PathBuf::from(value()?)),
            "--state-dir" => state_dir = StateDirArg::from_flag(&value()?),
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(Args {
        manifest: manifest.context("--manifest is required")?,
        listen: listen.context("--listen is required")?,
        runtime_config,
        state_dir,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("spin-test-host: {e:#}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spin-test-host: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let app_dir = args.manifest.parent().unwrap_or(Path::new(".")).to_owned();
    // Shared with each component's allowed hosts, which render their
    // templates again for every request.
    let app_vars = Arc::new(AppVariables::resolve(
        &manifest.variables,
        variables::from_env,
    )?);
    // One set of pooled clients for the app, as in Spin.
    let outbound_http = OutboundHttp::new();
    let router = Router::new(&manifest.trigger.http)?;
    let failing_variables = variables::failing_from_env();
    let stores = Arc::new(Stores::load(&StoreOptions {
        runtime_config: args.runtime_config.clone(),
        // `spin up` gives the manifest's directory as written (`spin.toml`
        // alone: the empty path, so `.spin` relative to the working directory).
        app_dir: args.manifest.parent().map(Path::to_owned),
        state_dir: args.state_dir.clone(),
    })?);
    if let Some(place) = stores.place("default") {
        // Spin says this on stdout; here stdout carries only the ready line.
        eprintln!("storing default key-value data to {place}");
    }

    let engine = compile::engine()?;
    let mut linker = Linker::new(&engine);
    host::add_to_linker(&mut linker)?;
    let cache_dir = app_dir.join("target").join("spin-test-host-cache");

    let mut components = HashMap::new();
    for id in router.components() {
        let decl = &manifest.component[id];
        let context = || format!("component {id:?}");
        for label in &decl.key_value_stores {
            if !stores.contains(label) {
                eprintln!(
                    "warning: component {id:?} may use key-value store {label:?}, which is not configured"
                );
            }
        }
        let config = ComponentConfig {
            variables: ComponentVariables::resolve(&decl.variables, &app_vars)
                .with_context(context)?
                .with_failing_provider(&decl.variables, &failing_variables),
            allowed_stores: decl.key_value_stores.iter().cloned().collect(),
            stores: stores.clone(),
            allowed_hosts: Arc::new(
                AllowedHosts::load(
                    &decl.allowed_outbound_hosts,
                    // `spin up` checks templates with default values only.
                    &|name: &str| manifest.variables.get(name)?.default.clone(),
                    {
                        let app_vars = app_vars.clone();
                        Arc::new(move |template: &str| app_vars.render(template))
                    },
                )
                .with_context(context)?,
            ),
            outbound_http: outbound_http.clone(),
            environment: decl.environment.clone().into_iter().collect(),
        };
        let source = decl.source_path(&app_dir).with_context(context)?;
        let (component, _) = compile::load(&engine, &source, &cache_dir).with_context(context)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(context)?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("component {id:?} does not export wasi:http/incoming-handler")
            })?;
        components.insert(
            id.to_owned(),
            server::PreparedComponent {
                pre,
                config: Arc::new(config),
            },
        );
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);

    let server = Arc::new(server::Server { router, components });
    server.serve(listener, shutdown_signal()).await;
    eprintln!("shutting down");
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            eprintln!("cannot watch SIGTERM ({e}); only SIGINT stops the host");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_the_cli_contract() {
        let a = parse(&["--manifest", "app/spin.toml", "--listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(a.manifest, Path::new("app/spin.toml"));
        assert_eq!(a.listen.port(), 0);
        assert!(a.runtime_config.is_none());
        assert_eq!(a.state_dir, StateDirArg::Default);

        let a = parse(&[
            "--listen",
            "127.0.0.1:3000",
            "--runtime-config-file",
            "rc.toml",
            "--manifest",
            "spin.toml",
        ])
        .unwrap();
        assert_eq!(a.runtime_config.as_deref(), Some(Path::new("rc.toml")));

        let with = |dir: &str| {
            let base = ["--manifest", "m", "--listen", "127.0.0.1:0"];
            parse(&[&base[..], &["--state-dir", dir]].concat())
                .unwrap()
                .state_dir
        };
        assert_eq!(with("st"), StateDirArg::Provided("st".into()));
        assert_eq!(with(""), StateDirArg::Unset);
        assert!(parse(&["--manifest", "m", "--listen", "127.0.0.1:0", "--state-dir"]).is_err());

        assert!(parse(&["--manifest", "spin.toml"]).is_err());
        assert!(parse(&["--manifest", "spin.toml", "--listen", "localhost"]).is_err());
        assert!(parse(&["--manifest"]).is_err());
        assert!(parse(&["--manifest", "m", "--listen", "127.0.0.1:0", "--bogus"]).is_err());
    }
}
