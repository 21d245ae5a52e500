//! Compiles a component once and caches the machine code on disk, so that
//! starting several replicas (or re-running tests) skips Cranelift.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The engine, configured as `spin up` configures its own. With
/// `SPIN_TEST_HOST_PERFMAP` set, it also writes `/tmp/perf-<pid>.map` so that
/// `perf report` names the component's functions (bench/PROFILE.md).
pub fn engine() -> Result<Engine> {
    let mut config = Config::new();
    if std::env::var_os("SPIN_TEST_HOST_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config.consume_fuel(metering_fuel());
    let pooling = match std::env::var("SPIN_WASMTIME_POOLING").as_deref() {
        Ok("0") => false,
        Ok("1") | Err(_) => true,
        Ok(other) => anyhow::bail!("SPIN_WASMTIME_POOLING={other:?}: only 1 or 0"),
    };
    if pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(spin_pool()));
        match Engine::new(&config) {
            Ok(engine) => return Ok(engine),
            // Like Spin: where the address space is too small for the pool.
            Err(e) => eprintln!("pooling allocator unavailable ({e}); allocating on demand"),
        }
        config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    }
    Ok(Engine::new(&config)?)
}

/// With `SPIN_TEST_HOST_FUEL` set, every request logs `fuel <path> <n>`: the
/// wasm instructions the component executed for it (Wasmtime's fuel), a cost
/// that, unlike time, does not vary from run to run (bench/PROFILE.md).
pub fn metering_fuel() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SPIN_TEST_HOST_FUEL").is_some())
}

/// Spin's default pool (spin-core's `Config::default`), for the default of
/// 1,000 instances: requests reuse pre-mapped slots instead of mapping and
/// unmapping memory each time, which is most of a request's cost otherwise.
fn spin_pool() -> PoolingAllocationConfig {
    const MB: usize = 1 << 20;
    const INSTANCES: u32 = 1_000;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(INSTANCES)
        .total_memories(INSTANCES)
        .total_tables(2 * INSTANCES)
        .total_stacks(INSTANCES)
        .total_core_instances(4 * INSTANCES)
        .table_elements(100_000)
        .max_component_instance_size(10 * MB)
        .max_core_instance_size(10 * MB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(2 * MB)
        .table_keep_resident(MB / 2);
    pool
}

/// Where the compiled form of `wasm` lives: keyed by the bytes and by the
/// engine's compatibility hash (Wasmtime version, target, settings).
fn cache_file(engine: &Engine, wasm: &[u8], cache_dir: &Path) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    wasm.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    cache_dir.join(format!("{:016x}-{}.cwasm", hasher.finish(), wasm.len()))
}

/// Loads the component at `path`, from the cache when possible; the flag
/// tells whether the cache was used. Hosts started side by side on a cold
/// cache take turns on a lock file, so one compiles and the others load its
/// result instead of all running Cranelift at once and starving the machine.
pub fn load(engine: &Engine, path: &Path, cache_dir: &Path) -> Result<(Component, bool)> {
    let started = Instant::now();
    let wasm =
        std::fs::read(path).with_context(|| format!("cannot read component {}", path.display()))?;
    let cached = cache_file(engine, &wasm, cache_dir);

    if let Some(component) = load_cached(engine, &cached, started) {
        return Ok((component, true));
    }
    let _turn = take_turn(cache_dir);
    if let Some(component) = load_cached(engine, &cached, started) {
        return Ok((component, true));
    }

    let compiled = engine
        .precompile_component(&wasm)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot compile component {}", path.display()))?;
    eprintln!(
        "compiled component {} in {} ms",
        path.display(),
        started.elapsed().as_millis()
    );
    if let Err(e) = store_atomically(&cached, &compiled) {
        eprintln!("cannot write compile cache {}: {e:#}", cached.display());
    }
    // SAFETY: these bytes were just produced by this engine.
    let component = unsafe { Component::deserialize(engine, &compiled) }?;
    Ok((component, false))
}

fn load_cached(engine: &Engine, cached: &Path, started: Instant) -> Option<Component> {
    if !cached.exists() {
        return None;
    }
    // SAFETY: the file was written by `store_atomically` below, into a
    // directory only this tool writes; Wasmtime still checks that it was
    // produced by a compatible engine before using it.
    match unsafe { Component::deserialize_file(engine, cached) } {
        Ok(component) => {
            eprintln!(
                "loaded cached compiled component {} in {} ms",
                cached.display(),
                started.elapsed().as_millis()
            );
            Some(component)
        }
        Err(e) => {
            eprintln!("ignoring unusable cache file {}: {e}", cached.display());
            None
        }
    }
}

/// An exclusive lock on `<cache_dir>/.compile.lock`, released when dropped
/// (or when the process dies). None when locking is impossible: then this
/// host simply compiles on its own, as before.
fn take_turn(cache_dir: &Path) -> Option<std::fs::File> {
    std::fs::create_dir_all(cache_dir).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache_dir.join(".compile.lock"))
        .ok()?;
    file.lock().ok()?;
    Some(file)
}

/// Writes via a temporary file and a rename, so a concurrent reader sees
/// either no file or a complete one.
fn store_atomically(target: &Path, bytes: &[u8]) -> Result<()> {
    let dir = target.parent().context("cache path has no directory")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), unique_suffix()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, target).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: compiles, caches, and loads back.
    #[test]
    fn caches_compiled_component() {
        let dir = std::env::temp_dir().join(format!("spin-test-host-cache-{}", unique_suffix()));
        let wasm_path = dir.join("empty.wasm");
        std::fs::create_dir_all(&dir).unwrap();
        // `(component)` in binary form: magic, component version and layer.
        std::fs::write(&wasm_path, b"\0asm\x0d\0\x01\0").unwrap();
        let engine = engine().unwrap();

        let (_, from_cache) = load(&engine, &wasm_path, &dir.join("cache")).unwrap();
        assert!(!from_cache);
        let files: Vec<_> = std::fs::read_dir(dir.join("cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != ".compile.lock")
            .collect();
        assert_eq!(
            files.len(),
            1,
            "one cache file, no temporary left over: {files:?}"
        );
        let (_, from_cache) = load(&engine, &wasm_path, &dir.join("cache")).unwrap();
        assert!(from_cache);

        std::fs::write(&wasm_path, b"not wasm").unwrap();
        assert!(load(&engine, &wasm_path, &dir.join("cache")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Four loads at once on a cold cache: exactly one compiles, the rest wait
    /// for its result.
    #[test]
    fn concurrent_loads_on_a_cold_cache_compile_once() {
        let dir = std::env::temp_dir().join(format!("spin-test-host-race-{}", unique_suffix()));
        let wasm_path = dir.join("empty.wasm");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&wasm_path, b"\0asm\x0d\0\x01\0").unwrap();
        let engine = engine().unwrap();
        let cache = dir.join("cache");

        let from_cache: Vec<bool> = std::thread::scope(|s| {
            let loads: Vec<_> = (0..4)
                .map(|_| s.spawn(|| load(&engine, &wasm_path, &cache).unwrap().1))
                .collect();
            loads.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            from_cache.iter().filter(|cached| !**cached).count(),
            1,
            "{from_cache:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
