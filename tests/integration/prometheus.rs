//! A real Prometheus on 127.0.0.1 for the calibrate loop test: started with a file_sd scrape
//! config, stopped when dropped. Absent binary: `start` says so and returns `None`.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    addr: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Prometheus binary, if this machine has one.
fn binary() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    })
}

/// A port free on 127.0.0.1 now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Starts Prometheus in `dir`, scraping the targets listed in `sd_file` every `scrape`;
/// waits until it is ready. `None` (after printing why) when Prometheus is not installed.
pub fn start(dir: &Path, sd_file: &Path, scrape: &str) -> Option<Prometheus> {
    let Some(bin) = binary() else {
        println!("skipped: prometheus is not installed (apt-get install prometheus)");
        return None;
    };
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: {scrape}, evaluation_interval: {scrape}}}\n\
             scrape_configs:\n  - job_name: splitlab\n    scrape_interval: {scrape}\n    \
             file_sd_configs: [{{files: [{sd}], refresh_interval: 1s}}]\n",
            sd = sd_file.display()
        ),
    )
    .expect("write prometheus.yml");
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).expect("log file"))
        .spawn()
        .expect("prometheus starts");
    let prometheus = Prometheus {
        child,
        url: format!("http://{addr}"),
        addr,
    };
    // A test waiting for a real server reads the wall clock.
    #[allow(clippy::disallowed_methods)]
    let deadline = Instant::now() + Duration::from_secs(30);
    #[allow(clippy::disallowed_methods)]
    while Instant::now() < deadline {
        if prometheus
            .get("/-/ready")
            .is_some_and(|(status, _)| status == 200)
        {
            return Some(prometheus);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "prometheus did not become ready in 30 s (see {})",
        dir.join("prometheus.log").display()
    );
}

impl Prometheus {
    /// A plain HTTP/1.1 GET of `path` (already URL-encoded): the status and the body.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(&self.addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let status = response.split(' ').nth(1)?.parse().ok()?;
        let body = response.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    }
}
