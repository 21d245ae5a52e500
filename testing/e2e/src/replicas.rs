//! Several replicas of the app behind one front, as SpinKube runs the pods of a SpinApp
//! behind a Service: N test hosts, each with its own `pod_name` (`replica-1` ...
//! `replica-N`), all with `client_base_url` set to the front, and nginx in front of
//! them taking them strictly in turn.
//!
//! Which replica answered a request is read from nginx's access log (it names the
//! upstream of every request), so tests can reason about the rotation instead of
//! hoping for luck.

use std::time::Duration;

use crate::host::{Host, HostOptions};
use crate::idp::Idp;
use crate::nginx::{Nginx, NginxOptions};
use crate::wait::wait_until;

/// The pod name of replica `i` (1-based).
pub fn pod_name(i: usize) -> String {
    format!("replica-{i}")
}

/// How to start the replicas.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    pub replicas: usize,
    /// The front's port on 127.0.0.1: the IdP must know the redirect URI before the
    /// replicas start, so the caller picks it (see [`front_url`]).
    pub front_port: u16,
    /// The runtime config every host gets (the same content); None: each host has its
    /// own local store (SQLite in a state directory of its own, `--state-dir`), as a
    /// pod without runtime config. (Replicas started by `spin up` on one app
    /// directory without `--state-dir` would all use `.spin/` beside spin.toml and
    /// share one store: not separate pods.)
    pub runtime_config: Option<String>,
    /// More variables for every host (e.g. `client_title`).
    pub variables: Vec<(String, String)>,
    /// The manifest; None: the repository's spin.toml.
    pub manifest: Option<std::path::PathBuf>,
}

impl ReplicaOptions {
    /// `replicas` hosts behind a front on `front_port`, each with its own local store.
    pub fn new(replicas: usize, front_port: u16) -> ReplicaOptions {
        ReplicaOptions {
            replicas,
            front_port,
            runtime_config: None,
            variables: Vec::new(),
            manifest: None,
        }
    }

    /// Every host gets this runtime config.
    pub fn runtime_config(mut self, config: String) -> ReplicaOptions {
        self.runtime_config = Some(config);
        self
    }
}

/// `http://127.0.0.1:PORT` for a front on `port`.
pub fn front_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// N hosts behind nginx.
pub struct Replicas {
    // Dropped first: the front stops before the hosts.
    nginx: Nginx,
    hosts: Vec<Host>,
    /// (upstream `IP:PORT`, pod name), in the front's rotation order.
    pods: Vec<(String, String)>,
}

impl Replicas {
    /// Starts the hosts (in parallel) for client1 at `idp`, then the front.
    pub fn start(idp: &Idp, opts: ReplicaOptions) -> Replicas {
        assert!(opts.replicas >= 1, "at least one replica");
        let front = front_url(opts.front_port);
        let host_opts: Vec<HostOptions> = (1..=opts.replicas)
            .map(|i| {
                let mut o = HostOptions::for_idp(idp, &front)
                    .variable("pod_name", &pod_name(i))
                    .name(&format!("host-{}", pod_name(i)));
                for (k, v) in &opts.variables {
                    o = o.variable(k, v);
                }
                o.runtime_config = opts.runtime_config.clone();
                // Each replica its own state directory (the default; said here
                // because v2 depends on it): stores as separate as separate pods'.
                o.state_dir = crate::host::StateDir::Own;
                o.manifest = opts.manifest.clone();
                o
            })
            .collect();
        // The log directory is named after the test's thread: create it on this thread
        // and give the starter threads the same name, so their logs land there too.
        crate::paths::logs_dir();
        let test_name = crate::paths::current_test_name();
        // The first host compiles the component (when the host's compile cache is cold)
        // and the others load the cached code: start it alone, then the rest at once.
        let mut host_opts = host_opts.into_iter();
        let first = Host::start(host_opts.next().expect("one replica"));
        let rest: Vec<Host> = std::thread::scope(|s| {
            let handles: Vec<_> = host_opts
                .map(|o| {
                    std::thread::Builder::new()
                        .name(test_name.clone())
                        .spawn_scoped(s, move || Host::start(o))
                        .expect("spawn a thread to start a host")
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let hosts: Vec<Host> = std::iter::once(first).chain(rest).collect();
        let pods: Vec<(String, String)> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("127.0.0.1:{}", h.port()), pod_name(i + 1)))
            .collect();
        let upstreams: Vec<&str> = pods.iter().map(|(u, _)| u.as_str()).collect();
        let nginx = Nginx::start_with(NginxOptions {
            port: Some(opts.front_port),
            ..NginxOptions::new(&upstreams)
        });
        // nginx's readiness probe got its answer before nginx logged it: wait for that
        // line, so that every later request's line is the next one.
        wait_until(
            Duration::from_secs(10),
            "nginx logs its readiness probe",
            || (!nginx.access_log().is_empty()).then_some(()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Replicas { nginx, hosts, pods }
    }

    /// `http://127.0.0.1:PORT` of the front.
    pub fn front_url(&self) -> String {
        self.nginx.base_url()
    }

    /// `<front><path>`
    pub fn url(&self, path: &str) -> String {
        self.nginx.url(path)
    }

    pub fn nginx(&self) -> &Nginx {
        &self.nginx
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn hosts_mut(&mut self) -> &mut [Host] {
        &mut self.hosts
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// The pod names, in the front's rotation order.
    pub fn pod_names(&self) -> Vec<String> {
        self.pods.iter().map(|(_, p)| p.clone()).collect()
    }

    /// The host whose pod name is `pod`.
    pub fn host(&self, pod: &str) -> &Host {
        let i = self.index_of(pod);
        &self.hosts[i]
    }

    fn index_of(&self, pod: &str) -> usize {
        self.pods
            .iter()
            .position(|(_, p)| p == pod)
            .unwrap_or_else(|| panic!("no replica named {pod}"))
    }

    /// The pod behind upstream `IP:PORT`.
    pub fn pod_of_upstream(&self, upstream: &str) -> String {
        self.pods
            .iter()
            .find(|(u, _)| u == upstream)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("nginx used an upstream that is no replica: {upstream}"))
    }

    /// The pod that comes `steps` turns after `pod` in the rotation.
    pub fn pod_after(&self, pod: &str, steps: usize) -> String {
        let i = self.index_of(pod);
        self.pods[(i + steps) % self.pods.len()].1.clone()
    }

    /// The pods that served the requests so far, from the access log, in order.
    pub fn pods_served(&self) -> Vec<String> {
        self.nginx
            .upstreams_served()
            .iter()
            .map(|u| self.pod_of_upstream(u))
            .collect()
    }

    /// Runs `request`, which must send exactly one request through the front, and
    /// returns its result with the pod that answered it (nginx writes the access log
    /// line after the response, so this waits for it).
    ///
    /// nginx may log an earlier request (sent without `via`) after its client
    /// had the answer; such a line began before this call and is not counted.
    pub fn via<T>(&self, request: impl FnOnce() -> T) -> (T, String) {
        let before = self.nginx.access_log().len();
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_millis() as u64;
        let result = request();
        let ours = |lines: &[String]| -> Vec<String> {
            lines[before..]
                .iter()
                .filter(|l| Nginx::started_ms(l).is_none_or(|start| start >= since))
                .cloned()
                .collect()
        };
        let lines = wait_until(Duration::from_secs(10), "nginx logs the request", || {
            let lines = self.nginx.access_log();
            (!ours(&lines).is_empty()).then_some(lines)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let mine = ours(&lines);
        assert_eq!(
            mine.len(),
            1,
            "expected exactly one request through the front, the access log grew by: {:?}",
            &lines[before..]
        );
        let upstream = mine[0]
            .split_whitespace()
            .find_map(|w| w.strip_prefix("upstream="))
            .unwrap_or_else(|| panic!("no upstream in access log line {:?}", mine[0]))
            .to_string();
        (result, self.pod_of_upstream(&upstream))
    }

    /// The pod the next request through the front goes to (strict rotation: the one
    /// after the last that served).
    pub fn next_pod(&self) -> String {
        let served = self.pods_served();
        match served.last() {
            Some(last) => self.pod_after(last, 1),
            None => self.pods[0].1.clone(),
        }
    }

    /// Sends requests from an unrelated client (other users' traffic) until the next
    /// request through the front goes to `pod`; returns how many it sent.
    pub fn advance_to(&self, pod: &str) -> usize {
        let mut other = crate::browser::Browser::new();
        let mut sent = 0;
        while self.next_pod() != pod {
            assert!(sent < self.len(), "the rotation never reaches {pod}");
            let (r, _) = self.via(|| other.get(&self.url("/healthz")));
            r.assert_status(200);
            sent += 1;
        }
        sent
    }
}
