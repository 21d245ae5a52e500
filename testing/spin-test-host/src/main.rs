//! `spin-test-host`: runs a Spin HTTP app's component the way `spin up` does,
//! for tests on machines without the Spin CLI. Test infrastructure only;
//! production runs on Spin / SpinKube.
//!
//! Usage: spin-test-host --manifest spin.toml --listen 127.0.0.1:0
//!        [--runtime-config-file runtime-config.toml]
//!
//! When ready, prints exactly one line to stdout, `listening on http://IP:PORT`;
//! all logs go to stderr.

mod compile;
mod host;
mod kv;
mod manifest;
mod outbound;
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
use crate::kv::Stores;
use crate::manifest::Manifest;
use crate::outbound::AllowedHosts;
use crate::routes::Router;
use crate::variables::{AppVariables, ComponentVariables};

const USAGE: &str =
    "usage: spin-test-host --manifest PATH/spin.toml --listen IP:PORT [--runtime-config-file FILE]";

struct Args {
    manifest: PathBuf,
    listen: SocketAddr,
    runtime_config: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args> {
    let (mut manifest, mut listen, mut runtime_config) = (None, None, None);
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
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(Args {
        manifest: manifest.context("--manifest is required")?,
        listen: listen.context("--listen is required")?,
        runtime_config,
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
    let app_vars = AppVariables::resolve(&manifest.variables, variables::from_env)?;
    let router = Router::new(&manifest.trigger.http)?;
    let stores = Arc::new(match &args.runtime_config {
        Some(path) => Stores::from_runtime_config(path)?,
        None => Stores::in_memory_default(),
    });

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
                .with_context(context)?,
            allowed_stores: decl.key_value_stores.iter().cloned().collect(),
            stores: stores.clone(),
            allowed_hosts: Arc::new(
                AllowedHosts::resolve(&decl.allowed_outbound_hosts, &app_vars)
                    .with_context(context)?,
            ),
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

        assert!(parse(&["--manifest", "spin.toml"]).is_err());
        assert!(parse(&["--manifest", "spin.toml", "--listen", "localhost"]).is_err());
        assert!(parse(&["--manifest"]).is_err());
        assert!(parse(&["--manifest", "m", "--listen", "127.0.0.1:0", "--bogus"]).is_err());
    }
}
