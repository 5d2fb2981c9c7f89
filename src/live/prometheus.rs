//! A minimal Prometheus HTTP API client for `splitlab calibrate --prometheus URL`:
//! `GET {URL}/api/v1/query_range?query=...&start=...&end=...&step=...` (prometheus
//! docs/querying/api.md "Range queries") over plain HTTP/1.1, with a timeout.
//!
//! Owns: parsing the base URL (`http://host:port[/prefix]`; `https` is refused with a message,
//! since splitlab carries no TLS stack), encoding the query string, one request per query on a
//! fresh connection, and the body as text. It does not read the JSON (that is
//! `calibrate::promjson`, which also turns Prometheus' `{"status":"error"}` into a message).
//!
//! Must not: retry, follow redirects, or send anything but GET.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{ACCEPT, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The largest answer read (a week of 15 s samples of a few dozen series is far less).
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A base URL: where the API lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrometheusUrl {
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash (`""`, or `/prometheus` behind a proxy).
    pub prefix: String,
}

/// Why a query got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("{0:?} is not an http URL; allowed: http://HOST[:PORT][/PATH] (https is not supported: use `kubectl port-forward` or an http endpoint)")]
    BadUrl(String),
    #[error("GET {url}: {message}")]
    Request { url: String, message: String },
    #[error("GET {url}: timed out after {secs}s")]
    Timeout { url: String, secs: u64 },
}

impl PrometheusUrl {
    pub fn parse(text: &str) -> Result<Self, PrometheusError> {
        let bad = || PrometheusError::BadUrl(text.to_string());
        let rest = text.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(bad)?;
            let port = match &v6[end + 1..] {
                "" => 80,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
            };
            (v6[..end].to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(PrometheusUrl {
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// `host:port` as a Host header and for display (IPv6 in brackets).
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The request target of a range query.
    pub fn query_range_target(&self, promql: &str, start: f64, end: f64, step_s: f64) -> String {
        format!(
            "{}/api/v1/query_range?query={}&start={}&end={}&step={}",
            self.prefix,
            encode(promql),
            number(start),
            number(end),
            number(step_s)
        )
    }

    /// The full URL of a request target, for messages and comments.
    pub fn url_of(&self, target: &str) -> String {
        format!("http://{}{target}", self.authority())
    }
}

/// Runs one range query and returns the status code and body (whatever the status:
/// Prometheus explains a bad query in a JSON body with a 400).
pub fn query_range(
    url: &PrometheusUrl,
    promql: &str,
    start: f64,
    end: f64,
    step_s: f64,
    timeout: Duration,
) -> Result<(u16, String), PrometheusError> {
    let target = url.query_range_target(promql, start, end, step_s);
    let full = url.url_of(&target);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PrometheusError::Request {
            url: full.clone(),
            message: format!("cannot start the I/O runtime: {e}"),
        })?;
    runtime.block_on(async {
        match tokio::time::timeout(timeout, get(url, &target)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(message)) => Err(PrometheusError::Request { url: full, message }),
            Err(_) => Err(PrometheusError::Timeout {
                url: full,
                secs: timeout.as_secs(),
            }),
        }
    })
}

async fn get(url: &PrometheusUrl, target: &str) -> Result<(u16, String), String> {
    let stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("connect {}: {e}", url.authority()))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // The connection ends when the answer is read and the sender dropped.
        let _ = conn.await;
    });
    let req = hyper::Request::get(target)
        .header(HOST, url.authority())
        .header(ACCEPT, "application/json")
        .header(USER_AGENT, concat!("splitlab/", env!("CARGO_PKG_VERSION")))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    let text =
        String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8".to_string())?;
    Ok((status, text))
}

/// The wall clock as unix seconds: `calibrate --prometheus`'s default `--to`.
pub fn now_unix_s() -> f64 {
    // The live module is where the wall clock is read (clippy.toml).
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A number as the API takes it (unix seconds, step seconds): no exponent, no trailing zeros.
fn number(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        // (text, host, port, prefix)
        let cases = [
            ("http://127.0.0.1:9090", "127.0.0.1", 9090, ""),
            ("http://localhost:9090/", "localhost", 9090, ""),
            // behind a path prefix (--web.route-prefix or a proxy)
            (
                "http://prom.example:8080/prometheus/",
                "prom.example",
                8080,
                "/prometheus",
            ),
            ("http://prom", "prom", 80, ""),
            ("http://[::1]:9090", "::1", 9090, ""),
        ];
        for (text, host, port, prefix) in cases {
            let u = PrometheusUrl::parse(text).expect(text);
            assert_eq!(
                (u.host.as_str(), u.port, u.prefix.as_str()),
                (host, port, prefix),
                "{text}"
            );
        }
        // refused: TLS, no scheme, a bad port, credentials, a query string
        for text in [
            "https://prom:9090",
            "prom:9090",
            "http://prom:x",
            "http://u:p@prom",
            "http://prom/?a=b",
            "http://",
        ] {
            let e = PrometheusUrl::parse(text).expect_err(text).to_string();
            assert!(e.contains("allowed: http://HOST[:PORT][/PATH]"), "{e}");
        }
    }

    #[test]
    fn query_strings_are_encoded() {
        let u = PrometheusUrl::parse("http://127.0.0.1:9090/p").expect("valid");
        let t = u.query_range_target(
            r#"sum by (le) (rate(x{a="b c"}[1m]))"#,
            1_796_205_600.0,
            1_796_206_200.5,
            15.0,
        );
        assert_eq!(
            t,
            "/p/api/v1/query_range?query=sum%20by%20%28le%29%20%28rate%28x%7Ba%3D%22b%20c%22%7D%5B1m%5D%29%29&start=1796205600&end=1796206200.5&step=15"
        );
        assert_eq!(u.url_of("/x"), "http://127.0.0.1:9090/x");
    }
}
