//! nginx as a strict round-robin front for several hosts: one worker (so one
//! round-robin counter), a new upstream connection per request, no retry on the next
//! upstream, no upstream ever marked down, Host and X-Forwarded-* passed on.

use std::process::Command;
use std::time::Duration;

use crate::browser::Browser;
use crate::paths::TempDir;
use crate::process::ChildGuard;
use crate::wait::wait_for;

/// How to start nginx.
#[derive(Debug, Clone)]
pub struct NginxOptions {
    /// The port on 127.0.0.1; None picks a free one.
    pub port: Option<u16>,
    /// The upstreams, `IP:PORT` each, taken in turn.
    pub upstreams: Vec<String>,
    /// The `X-Forwarded-Proto` to send; None: the scheme of the request (`http`).
    pub forwarded_proto: Option<String>,
    pub startup_timeout: Duration,
}

impl NginxOptions {
    pub fn new<S: AsRef<str>>(upstreams: &[S]) -> NginxOptions {
        NginxOptions {
            port: None,
            upstreams: upstreams.iter().map(|s| s.as_ref().to_string()).collect(),
            forwarded_proto: None,
            startup_timeout: Duration::from_secs(60),
        }
    }
}

/// A running nginx.
pub struct Nginx {
    // Dropped first: nginx stops before its directory goes.
    guard: ChildGuard,
    port: u16,
    dir: TempDir,
    access_log: std::path::PathBuf,
}

impl Nginx {
    /// Starts nginx in front of `upstreams` (`IP:PORT` each) on a free port.
    pub fn start<S: AsRef<str>>(upstreams: &[S]) -> Nginx {
        Nginx::start_with(NginxOptions::new(upstreams))
    }

    /// Starts nginx with `opts` and waits until it answers HTTP (any status: the
    /// upstreams need not be up yet).
    pub fn start_with(opts: NginxOptions) -> Nginx {
        assert!(
            !opts.upstreams.is_empty(),
            "nginx needs at least one upstream"
        );
        let port = opts.port.unwrap_or_else(crate::net::free_port);
        let dir = TempDir::new("e2e-nginx");
        let logs = crate::paths::logs_dir();
        let access_log = (1..)
            .map(|n| {
                logs.join(if n == 1 {
                    "nginx.access.log".to_string()
                } else {
                    format!("nginx-{n}.access.log")
                })
            })
            .find(|p| !p.exists())
            .unwrap();
        let d = dir.path().display();
        let servers: String = opts
            .upstreams
            .iter()
            .map(|u| format!("        server {u} max_fails=0;\n"))
            .collect();
        // nginx refuses to switch its workers to a user when not started as root, and
        // when started as root, `nobody` may lack a matching group: stay root then.
        // SAFETY: geteuid has no preconditions.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;\n"
        } else {
            ""
        };
        let proto = match &opts.forwarded_proto {
            Some(p) => p.clone(),
            None => "$scheme".to_string(),
        };
        let config = format!(
            r#"{user}daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log stderr notice;

events {{
    worker_connections 1024;
}}

http {{
    log_format e2e '$request_method $request_uri $status upstream=$upstream_addr upstream_status=$upstream_status done=$msec took=$request_time';
    access_log {access} e2e;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;

    upstream app {{
{servers}    }}

    server {{
        listen 127.0.0.1:{port};
        server_name _;

        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "close";
            proxy_next_upstream off;
            proxy_redirect off;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto {proto};
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_connect_timeout 5s;
            proxy_read_timeout 60s;
        }}
    }}
}}
"#,
            access = access_log.display(),
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, &config).expect("write nginx.conf");
        std::fs::write(logs.join("nginx.conf"), &config).ok();

        let binary = std::env::var_os("NGINX").unwrap_or_else(|| {
            if std::path::Path::new("/usr/sbin/nginx").exists() {
                "/usr/sbin/nginx".into()
            } else {
                "nginx".into()
            }
        });
        let mut command = Command::new(binary);
        command
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config_path)
            .current_dir(dir.path());
        let mut guard = ChildGuard::spawn("nginx", command);
        let url = format!("http://127.0.0.1:{port}/");
        let mut browser = Browser::new();
        let answered = wait_for(opts.startup_timeout, "nginx answers HTTP", || {
            if !guard.is_running() {
                return Ok(false);
            }
            browser
                .try_get(&url)
                .map(|_| true)
                .map_err(|e| e.to_string())
        });
        let problem = match answered {
            Ok(true) => None,
            Ok(false) => Some("exited before answering".to_string()),
            Err(e) => Some(e),
        };
        if let Some(e) = problem {
            guard.fail(&format!(
                "{e} (is nginx installed? `apt-get install -y nginx`)"
            ));
        }
        Nginx {
            port,
            dir,
            access_log,
            guard,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `<base_url><path>`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The access log lines so far: `METHOD URI STATUS upstream=IP:PORT
    /// upstream_status=N done=SECS.MMM took=SECS.MMM` (when nginx logged the
    /// request, and how long after its first bytes).
    pub fn access_log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// When the request of an access log line began, in milliseconds since the
    /// Unix epoch: `done` less `took`, both as nginx writes them (3 decimals).
    pub fn started_ms(line: &str) -> Option<u64> {
        let ms = |prefix: &str| -> Option<u64> {
            let value = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix(prefix))?;
            let (secs, frac) = value.split_once('.')?;
            Some(secs.parse::<u64>().ok()? * 1000 + frac.parse::<u64>().ok()?)
        };
        ms("done=")?.checked_sub(ms("took=")?)
    }

    /// The upstream (`IP:PORT`) that served each request so far, in order.
    pub fn upstreams_served(&self) -> Vec<String> {
        self.access_log()
            .iter()
            .filter_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("upstream="))
                    .map(str::to_string)
            })
            .collect()
    }

    pub fn config_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops nginx.
    pub fn stop(&mut self) {
        self.guard.stop();
    }
}
