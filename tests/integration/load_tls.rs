//! `splitlab load` over TLS and HTTP/2, on loopback: a TLS backend with a self-signed
//! certificate (rcgen) that answers HTTP/1.1 or h2 as ALPN decides, and an h2c backend (HTTP/2
//! only, prior knowledge). `--cacert` is accepted; an untrusted certificate is refused (from
//! `--cacert` and from the system's roots) unless `--insecure`, which warns; `--http2`
//! negotiates h2 and `--h2c` speaks cleartext HTTP/2, each recorded in summary.json; SNI comes
//! from the Host; protocol flags that do not fit the URL's scheme are refused; and the https
//! and h2c commands of docs/load.md and README.md run as written.
//! Every server binds 127.0.0.1; every run is bounded in time.

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::common::{assert_balanced, assert_clear_error, splitlab, temp_dir, text};
use crate::live::{count, one_live_run_at_a_time, summary};

/// What a backend saw: per request, `VERSION AUTHORITY SNI` (`HTTP/2.0 127.0.0.1:4000 -`).
type Seen = Arc<Mutex<Vec<String>>>;

/// A self-signed certificate for `names` (DNS names or IP addresses): (certificate PEM, key PEM).
fn certificate(names: &[&str]) -> (String, String) {
    certificate_of("splitlab test", names)
}

/// A self-signed certificate whose subject (and issuer) is `CN=common_name`: a client that
/// trusts another subject's certificate does not know its issuer.
fn certificate_of(common_name: &str, names: &[&str]) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Answers 200 with `knative-serving-revision: h1` or `h2` (the request's HTTP version) and
/// `x-sni` (the TLS server name the client sent, `-` for none), and notes the request.
async fn answer(
    req: Request<hyper::body::Incoming>,
    sni: String,
    seen: Seen,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let version = req.version();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            req.headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    seen.lock()
        .unwrap()
        .push(format!("{version:?} {authority} {sni}"));
    let label = if version == hyper::Version::HTTP_2 {
        "h2"
    } else {
        "h1"
    };
    Ok(Response::builder()
        .header("knative-serving-revision", label)
        .header("x-sni", sni)
        .body(Full::new(Bytes::from_static(b"Hello!\n")))
        .unwrap())
}

/// Runs `serve` on a runtime of its own, on a background thread, for the test's lifetime.
fn background<F>(serve: impl FnOnce(tokio::net::TcpListener) -> F + Send + 'static) -> u16
where
    F: std::future::Future<Output = ()>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            serve(listener).await;
        });
    });
    port
}

/// A TLS backend with the certificate `cert_pem`/`key_pem`, serving HTTP/2 when the client
/// offers `h2` by ALPN and HTTP/1.1 otherwise.
fn start_tls_backend(cert_pem: &str, key_pem: &str) -> (u16, Seen) {
    start_tls_backend_with_alpn(cert_pem, key_pem, &["h2", "http/1.1"])
}

/// A TLS backend that accepts the ALPN protocols `alpn` (in its order of preference).
fn start_tls_backend_with_alpn(cert_pem: &str, key_pem: &str, alpn: &[&str]) -> (u16, Seen) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let seen = Seen::default();
    let seen_by_server = seen.clone();
    let port = background(move |listener| async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let seen = seen_by_server.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (_, conn) = tls.get_ref();
                let h2 = conn.alpn_protocol() == Some(b"h2".as_slice());
                let sni = conn.server_name().unwrap_or("-").to_string();
                let service =
                    hyper::service::service_fn(move |req| answer(req, sni.clone(), seen.clone()));
                let io = TokioIo::new(tls);
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    (port, seen)
}

/// A cleartext backend that speaks HTTP/2 only (prior knowledge), as an h2c revision does.
fn start_h2c_backend() -> (u16, Seen) {
    let seen = Seen::default();
    let seen_by_server = seen.clone();
    let port = background(move |listener| async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen_by_server.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| answer(req, "-".into(), seen.clone()));
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (port, seen)
}

fn load(args: &[&str]) -> std::process::Output {
    let mut all = vec!["load"];
    all.extend(args);
    splitlab(&all)
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

/// The backend's notes, each once with its count (`["HTTP/2.0 127.0.0.1:4000 - × 50"]`).
fn tally(seen: &Seen) -> Vec<String> {
    let mut counts = std::collections::BTreeMap::new();
    for s in seen.lock().unwrap().drain(..) {
        *counts.entry(s).or_insert(0) += 1;
    }
    counts.iter().map(|(s, n)| format!("{s} × {n}")).collect()
}

fn load_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("load.json")).unwrap()).unwrap()
}

#[test]
fn cacert_is_trusted_and_http2_negotiates_h2_with_sni_from_the_host() {
    let _live = one_live_run_at_a_time();
    let (cert, key) = certificate(&["localhost", "127.0.0.1"]);
    let (port, seen) = start_tls_backend(&cert, &key);
    let dir = temp_dir("load-tls-cacert");
    let ca = write(&dir, "ca.pem", &cert);
    let url = format!("https://127.0.0.1:{port}/");
    let here = format!("127.0.0.1:{port}");
    let out_dir = dir.join("out");
    let out_s = out_dir.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec![
            "--target",
            &url,
            "--cacert",
            &ca,
            "--rate",
            "200",
            "--max-requests",
            "50",
            "--connections",
            "4",
            "--labels",
            "h1,h2",
            "--out",
            out_s,
        ];
        a.extend(extra);
        load(&a)
    };
    // HTTP/1.1 over TLS; an IP address sends no SNI.
    let out = run(&["--check", "h1.served==50"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("check PASS h1.served==50: 50"), "{stdout}");
    let s = summary(&out_dir);
    assert_eq!(s["protocol"], "http/1.1", "{s}");
    assert_balanced(&s);
    assert_eq!(tally(&seen), [format!("HTTP/1.1 {here} - × 50")]);
    // --http2: ALPN h2, one h2 connection per --connections at most, :authority = the Host.
    let out = run(&["--http2", "--check", "h2.served==50"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("check PASS h2.served==50: 50"), "{stdout}");
    assert_eq!(summary(&out_dir)["protocol"], "h2");
    let opened = load_json(&out_dir)["connections"]["h2"].as_u64().unwrap();
    assert!((1..=4).contains(&opened), "{opened} h2 connections");
    assert_eq!(tally(&seen), [format!("HTTP/2.0 {here} - × 50")]);
    // --host names the server: the SNI and the :authority are the Host's.
    let out = run(&["--http2", "--host", "localhost", "--check", "h2.served==50"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(tally(&seen), ["HTTP/2.0 localhost localhost × 50"]);
    // The closed loop over HTTP/2: each of the --connections workers owns one h2 connection.
    let out = load(&[
        "--target",
        &url,
        "--cacert",
        &ca,
        "--http2",
        "--rate",
        "max",
        "--connections",
        "3",
        "--duration",
        "500ms",
        "--out",
        out_s,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        load_json(&out_dir)["connections"],
        serde_json::json!({"h2": 3})
    );
    let sent = count(&summary(&out_dir), "served");
    assert_eq!(tally(&seen), [format!("HTTP/2.0 {here} - × {sent}")]);
    // A server that does not speak h2 answers over HTTP/1.1: recorded, and a warning.
    let (h1_port, h1_seen) = start_tls_backend_with_alpn(&cert, &key, &["http/1.1"]);
    let h1_url = format!("https://127.0.0.1:{h1_port}/");
    let out = load(&[
        "--target",
        &h1_url,
        "--cacert",
        &ca,
        "--http2",
        "--rate",
        "200",
        "--max-requests",
        "20",
        "--connections",
        "1",
        "--out",
        out_s,
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: --http2: the server chose HTTP/1.1 (ALPN) on 1 of 1 connections"),
        "{stderr}"
    );
    assert_eq!(summary(&out_dir)["protocol"], "http/1.1");
    assert_eq!(
        tally(&h1_seen),
        [format!("HTTP/1.1 127.0.0.1:{h1_port} - × 20")]
    );
    // A targets file with https URLs: each target's own Host header is its SNI.
    let targets = write(
        &dir,
        "targets.yaml",
        &format!(
            "targets:\n  - name: named\n    url: {url}\n    headers: {{Host: localhost}}\n  - name: bare\n    url: {url}\n"
        ),
    );
    let out = load(&[
        "--targets",
        &targets,
        "--cacert",
        &ca,
        "--rate",
        "200",
        "--max-requests",
        "50",
        "--out",
        out_s,
        "--check",
        "named.served==25",
        "--check",
        "bare.served==25",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        tally(&seen),
        [
            format!("HTTP/1.1 {here} - × 25"),
            "HTTP/1.1 localhost localhost × 25".to_string()
        ]
    );
}

#[test]
fn an_untrusted_certificate_is_refused_unless_insecure_which_warns() {
    let _live = one_live_run_at_a_time();
    let (cert, key) = certificate(&["localhost", "127.0.0.1"]);
    let (other, _) = certificate_of("another CA", &["localhost", "127.0.0.1"]);
    let (port, seen) = start_tls_backend(&cert, &key);
    let dir = temp_dir("load-tls-untrusted");
    let other_ca = write(&dir, "other.pem", &other);
    let url = format!("https://127.0.0.1:{port}/");
    let out_dir = dir.join("out");
    let base = [
        "load",
        "--target",
        &url,
        "--rate",
        "200",
        "--max-requests",
        "20",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let refused = "failures: 20 of 20 requests (20 × tls: invalid peer certificate: UnknownIssuer)";
    // Another CA's certificate in --cacert.
    let out = load(&[&base[1..], &["--cacert", &other_ca]].concat());
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains(refused), "{stdout}");
    assert!(
        stderr.contains("error: no request succeeded (20 requests)"),
        "{stderr}"
    );
    assert_eq!(
        load_json(&out_dir)["error_causes"]["tls: invalid peer certificate: UnknownIssuer"],
        20
    );
    assert!(
        summary(&out_dir).get("protocol").is_none(),
        "no connection, no protocol"
    );
    // The system's roots (here: SSL_CERT_FILE, which rustls-native-certs reads instead of the
    // platform's store) do not hold the self-signed certificate either.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
        .args(base)
        .env("SSL_CERT_FILE", &other_ca)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(refused), "{stdout}");
    // The right CA for another name: the name is the cause.
    let (local_only, local_key) = certificate(&["localhost"]);
    let (port2, _) = start_tls_backend(&local_only, &local_key);
    let ca2 = write(&dir, "local.pem", &local_only);
    let url2 = format!("https://127.0.0.1:{port2}/");
    let out = load(&[
        "--target",
        &url2,
        "--cacert",
        &ca2,
        "--rate",
        "200",
        "--max-requests",
        "20",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("20 × tls: invalid peer certificate: certificate not valid for name \"127.0.0.1\"; certificate is only valid for DnsName(\"localhost\")"),
        "{stdout}"
    );
    assert!(tally(&seen).is_empty(), "no request got through");
    // --insecure: served, with a loud warning.
    let out = load(
        &[
            &base[1..],
            &["--insecure", "--labels", "h1", "--check", "h1.served==20"],
        ]
        .concat(),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains("WARNING: --insecure: certificates of https:// targets are NOT verified; anyone on the path can read and change this traffic"),
        "{stderr}"
    );
    assert_eq!(tally(&seen), [format!("HTTP/1.1 127.0.0.1:{port} - × 20")]);
}

#[test]
fn h2c_speaks_http2_in_cleartext_and_protocol_flags_must_fit_the_scheme() {
    let _live = one_live_run_at_a_time();
    let (port, seen) = start_h2c_backend();
    let dir = temp_dir("load-tls-h2c");
    let out_dir = dir.join("out");
    let url = format!("http://127.0.0.1:{port}/x?y=1");
    let out = load(&[
        "--target",
        &url,
        "--h2c",
        "--host",
        "hello.default.example.com",
        "--rate",
        "200",
        "--max-requests",
        "50",
        "--labels",
        "h1,h2",
        "--check",
        "h2.served==50",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(summary(&out_dir)["protocol"], "h2c");
    assert_eq!(tally(&seen), ["HTTP/2.0 hello.default.example.com - × 50"]);
    // Flags that do not fit the URL are refused before anything is sent.
    let https = format!("https://127.0.0.1:{port}/");
    let missing = dir.join("no-such-ca.pem");
    // (arguments, the message)
    let cases: [(Vec<&str>, String); 3] = [
        (
            vec!["--target", &url, "--http2"],
            "--http2 is HTTP/2 over TLS (ALPN), for https:// targets; for HTTP/2 over cleartext http:// use --h2c".into(),
        ),
        (
            vec!["--target", &https, "--h2c"],
            "--h2c is HTTP/2 over cleartext, for http:// targets; for HTTP/2 over https:// use --http2".into(),
        ),
        (
            vec!["--target", &https, "--cacert", missing.to_str().unwrap()],
            format!(
                "--cacert {}: cannot read the file: No such file or directory (os error 2)",
                missing.display()
            ),
        ),
    ];
    for (args, message) in cases {
        let mut all = args.clone();
        all.extend(["--rate", "10", "--duration", "1s", "--out"]);
        all.push(out_dir.to_str().unwrap());
        let out = load(&all);
        assert_clear_error(&out, &message, &args.join(" "));
        assert!(!text(&out.stdout).contains("sent "), "nothing was sent");
    }
    assert!(tally(&seen).is_empty());
}

/// The https and HTTP/2 `splitlab load` commands of docs/load.md and README.md, run as written
/// (the TLS backend's port in place of 8443, the h2c backend's in place of 8081, ca.pem the
/// backend's certificate for hello.default.example.com): every check they make passes.
#[test]
fn the_tls_and_http2_commands_in_the_docs_run_as_written() {
    let _live = one_live_run_at_a_time();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/load.md")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let commands: Vec<&str> = docs
        .lines()
        .chain(readme.lines())
        .filter(|l| l.starts_with("splitlab load ") && crate::load::speaks_tls_or_h2(l))
        .collect();
    assert_eq!(commands.len(), 2, "two in docs/load.md, none in README.md");
    let (cert, key) = certificate(&["hello.default.example.com"]);
    let (tls_port, tls_seen) = start_tls_backend(&cert, &key);
    let (h2c_port, h2c_seen) = start_h2c_backend();
    let dir = temp_dir("load-tls-docs");
    write(&dir, "ca.pem", &cert);
    for command in &commands {
        let line = command
            .replace("127.0.0.1:8443", &format!("127.0.0.1:{tls_port}"))
            .replace("127.0.0.1:8081", &format!("127.0.0.1:{h2c_port}"));
        let words = crate::load::shell_words(&line);
        assert_eq!(words[0], "splitlab");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_splitlab"))
            .args(&words[1..])
            .current_dir(&dir)
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{command}\n{stdout}{}",
            text(&out.stderr)
        );
        let checks = command.matches("--check").count();
        let passed = stdout
            .lines()
            .filter(|l| l.starts_with("check PASS"))
            .count();
        assert!(checks > 0, "{command}");
        assert_eq!(passed, checks, "{command}\n{stdout}");
    }
    // Each reached its backend, over HTTP/2 where it asked for it.
    let tls = tally(&tls_seen);
    assert!(
        tls.iter()
            .all(|l| l
                .starts_with("HTTP/2.0 hello.default.example.com hello.default.example.com × ")),
        "{tls:?}"
    );
    let h2c = tally(&h2c_seen);
    assert!(
        h2c.iter()
            .all(|l| l.starts_with("HTTP/2.0 hello.default.example.com - × ")),
        "{h2c:?}"
    );
    assert!(!tls.is_empty() && !h2c.is_empty());
}

/// An h2c backend answering as a gRPC server does: 200, `content-type: application/grpc`, one
/// message, then the status in the trailers: `grpc-status 13` (INTERNAL) for every odd request
/// it sees, 0 (OK) for the others.
fn start_grpc_like_backend() -> u16 {
    use hyper::body::Frame;
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    background(move |listener| async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        async move {
                            let mut trailers = hyper::HeaderMap::new();
                            let status = if n % 2 == 1 { "13" } else { "0" };
                            trailers.insert("grpc-status", status.parse().unwrap());
                            let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                                Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\x02hi"))),
                                Ok(Frame::trailers(trailers)),
                            ];
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/grpc")
                                    .body(Frames(frames.into_iter().rev().collect()))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    })
}

/// Body frames handed out one by one (reversed: the next is the last).
struct Frames<T>(Vec<T>);

impl hyper::body::Body for Frames<Result<hyper::body::Frame<Bytes>, Infallible>> {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop())
    }
}

#[test]
fn a_grpc_status_other_than_0_in_the_trailers_is_an_error_not_a_success() {
    let _live = one_live_run_at_a_time();
    let port = start_grpc_like_backend();
    let dir = temp_dir("load-tls-grpc");
    let out_dir = dir.join("out");
    let url = format!("http://127.0.0.1:{port}/echo.Echo/Say");
    let out = load(&[
        "--target",
        &url,
        "--h2c",
        "--method",
        "POST",
        "--header",
        "content-type: application/grpc",
        "--header",
        "te: trailers",
        "--rate",
        "100",
        "--max-requests",
        "20",
        "--connections",
        "1",
        "--check",
        "error_rate==0.5",
        "--check",
        "served==10",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("10 × grpc-status 13"), "{stdout}");
    assert_balanced(&summary(&out_dir));
}
