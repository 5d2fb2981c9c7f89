//! `splitlab gateway` under hostile clients and HTTP details (issue 17 items 4 and 6): slowloris
//! heads closed at the header timeout (408), idle keep-alive connections closed, the connection
//! cap, the open-files limit (no spinning, serving again), and the answers to oversized
//! headers, broken chunked bodies and transfer codings, none naming a backend's address.
//! Raw `TcpStream` clients on 127.0.0.1; every gateway stops by itself (`--duration`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use splitlab::live::clock::Clock;

use crate::common::text;
use crate::live::{
    dead_port, one_live_run_at_a_time, start_backend, start_gateway_with, write_gateway_config,
};

const HOST: &str = "Host: hello.default.example.com\r\n";

/// A gateway config sending everything to `port`.
fn config(label: &str, port: u16) -> std::path::PathBuf {
    write_gateway_config(
        label,
        &format!(
            "service: {{name: hello, namespace: default, domain: example.com}}\n\
             traffic:\n  - {{revisionName: v1, percent: 100}}\n\
             backends:\n  v1: [http://127.0.0.1:{port}]\n"
        ),
    )
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One request on a fresh connection (`Connection: close`); the whole answer.
fn exchange(port: u16, request: &[u8]) -> String {
    let mut s = connect(port);
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn get_close() -> Vec<u8> {
    format!("GET / HTTP/1.1\r\n{HOST}Connection: close\r\n\r\n").into_bytes()
}

/// One keep-alive request on `s`; the response head and body (the backend's fixed
/// `Hello v1!\n`, so the response ends with it).
fn request_on(s: &mut TcpStream) -> String {
    s.write_all(format!("GET / HTTP/1.1\r\n{HOST}\r\n").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"Hello v1!\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the peer closes; what it sent and how long after `since` it closed.
fn until_closed(s: &mut TcpStream, since: Instant) -> (String, Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is a close too.
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => break,
            Err(_) => panic!("not closed within the read timeout"),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), since.elapsed())
}

/// The process's CPU time (user + system) from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the command.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Stops the gateway with SIGTERM (it prints its final lines); its stdout and stderr.
fn terminate(gw: Child) -> (String, String) {
    let status = Command::new("kill")
        .args(["-TERM", &gw.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = gw.wait_with_output().unwrap();
    (text(&out.stdout), text(&out.stderr))
}

fn stop(mut gw: Child) -> (String, String) {
    let _ = gw.kill();
    let out = gw.wait_with_output().unwrap();
    (text(&out.stdout), text(&out.stderr))
}

#[test]
fn slowloris_heads_are_closed_at_the_header_timeout_while_requests_keep_being_served() {
    let _live = one_live_run_at_a_time();
    let config = config("hostile-slowloris", start_backend());
    let (gw, port) = start_gateway_with(
        &config,
        &[],
        &[
            "--header-timeout",
            "1s",
            "--idle-timeout",
            "30s",
            "--duration",
            "30s",
        ],
    );
    let start = Clock::wall_now();
    // 20 clients trickle a head one byte every 100 ms (it would take 5 s); 5 send half a head
    // and stop; 5 send nothing.
    let trickle: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = connect(port);
                let head = format!("GET / HTTP/1.1\r\n{HOST}X-Slow: {}\r\n\r\n", "a".repeat(50));
                for b in head.as_bytes() {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                until_closed(&mut s, start)
            })
        })
        .collect();
    let mut half: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = connect(port);
            s.write_all(format!("GET / HTTP/1.1\r\n{HOST}").as_bytes())
                .unwrap();
            s
        })
        .collect();
    let mut silent: Vec<TcpStream> = (0..5).map(|_| connect(port)).collect();
    // Meanwhile, normal requests are served.
    let mut served = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        let ok = exchange(port, &get_close());
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok:?}");
        served += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(served >= 10, "{served}");
    let closed_in = |d: Duration| d >= Duration::from_millis(900) && d < Duration::from_secs(3);
    for s in &mut half {
        let (got, after) = until_closed(s, start);
        // A head that stopped arriving: 408, then the close.
        assert!(got.starts_with("HTTP/1.1 408 Request Timeout"), "{got:?}");
        assert!(closed_in(after), "{after:?}");
    }
    for s in &mut silent {
        // Nothing sent: closed without an answer.
        let (got, after) = until_closed(s, start);
        assert_eq!(got, "");
        assert!(closed_in(after), "{after:?}");
    }
    for t in trickle {
        let (got, after) = t.join().unwrap();
        // Closed at about 1 s, long before its head was complete (5 s); the 408 is there unless
        // the close raced a byte still on its way (then the kernel resets the connection).
        assert!(closed_in(after), "{after:?} {got:?}");
        assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got:?}");
    }
    // The gateway says what its limits did: 30 connections closed at the header timeout.
    let (stdout, _) = terminate(gw);
    assert!(
        stdout.contains("gateway: connections: header timeouts 30"),
        "{stdout}"
    );
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_idle_timeout_busy_ones_are_not() {
    let _live = one_live_run_at_a_time();
    let config = config("hostile-idle", start_backend());
    let (gw, port) = start_gateway_with(
        &config,
        &[],
        &[
            "--header-timeout",
            "5s",
            "--idle-timeout",
            "1s",
            "--duration",
            "30s",
        ],
    );
    // A connection used every 400 ms for 2.4 s stays open: idle never lasts 1 s.
    let mut busy = connect(port);
    for _ in 0..6 {
        let resp = request_on(&mut busy);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
        std::thread::sleep(Duration::from_millis(400));
    }
    // Then it idles: closed about 1 s after its last response.
    let resp = request_on(&mut busy);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    let since = Clock::wall_now();
    let (got, after) = until_closed(&mut busy, since);
    assert_eq!(got, "");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "{after:?}"
    );
    stop(gw);
}

/// `cap` keep-alive connections to the gateway on `port`, each answered 200 once.
fn served_up_to_the_cap(port: u16, cap: usize) -> Vec<TcpStream> {
    let mut served: Vec<TcpStream> = (0..cap).map(|_| connect(port)).collect();
    still_served(&mut served);
    served
}

/// Each connection gets a 200 for one more request.
fn still_served(served: &mut [TcpStream]) {
    for s in served {
        let resp = request_on(s);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    }
}

/// `n` connections beyond the cap, one after another: each is closed without a byte of
/// answer to its request; returns how long each took to close.
fn extras_closed_unanswered(port: u16, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let mut extra = connect(port);
            let _ = extra.write_all(format!("GET / HTTP/1.1\r\n{HOST}\r\n").as_bytes());
            let (got, after) = until_closed(&mut extra, Clock::wall_now());
            assert_eq!(got, "");
            after
        })
        .collect()
}

#[test]
fn at_the_connection_cap_extra_connections_are_closed_and_served_ones_keep_working() {
    let _live = one_live_run_at_a_time();
    let config = config("hostile-cap", start_backend());
    let (gw, port) = start_gateway_with(
        &config,
        &[],
        &["--max-connections", "4", "--duration", "30s"],
    );
    let mut served = served_up_to_the_cap(port, 4);
    // Four connections open: a fifth is closed at once, without an answer.
    for after in extras_closed_unanswered(port, 10) {
        assert!(after < Duration::from_secs(2), "{after:?}");
    }
    // The four still work.
    still_served(&mut served);
    // One closes: its slot serves a new connection.
    drop(served.pop());
    std::thread::sleep(Duration::from_millis(200));
    let resp = exchange(port, &get_close());
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    let (stdout, _) = terminate(gw);
    assert!(
        stdout.contains("gateway: connections: refused at the connection cap 10"),
        "{stdout}"
    );
}

#[test]
fn the_gateway_connection_cap_counts_every_workers_connections() {
    let _live = one_live_run_at_a_time();
    let config = config("hostile-cap-workers", start_backend());
    let (gw, port) = start_gateway_with(
        &config,
        &[],
        &[
            "--workers",
            "2",
            "--max-connections",
            "2",
            "--duration",
            "30s",
        ],
    );
    let mut served = served_up_to_the_cap(port, 2);
    // Two connections open, on one worker or both: every further one is closed at once,
    // whichever worker accepts it (a cap per worker would serve some of them).
    extras_closed_unanswered(port, 8);
    still_served(&mut served);
    let (stdout, _) = terminate(gw);
    assert!(
        stdout.contains("gateway: connections: refused at the connection cap 8"),
        "{stdout}"
    );
}

#[test]
fn at_the_open_files_limit_the_gateway_backs_off_instead_of_spinning_and_serves_again() {
    let _live = one_live_run_at_a_time();
    let config = config("hostile-nofile", start_backend());
    // 64 descriptors, and a cap far above them, so `accept` itself hits the limit.
    let (gw, port) = start_gateway_with(
        &config,
        &["prlimit", "--nofile=64:64"],
        &[
            "--max-connections",
            "1000",
            "--header-timeout",
            "30s",
            "--duration",
            "60s",
        ],
    );
    // A keep-alive client served before the limit is hit (its upstream connection is pooled).
    let mut early = connect(port);
    let resp = request_on(&mut early);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    // 100 silent connections: the gateway accepts what its descriptors allow, the rest wait
    // in the backlog while every accept fails with EMFILE.
    let hogs: Vec<TcpStream> = (0..100).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_time(gw.id());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time(gw.id()) - before;
    // A spinning accept loop burns the whole second; the back-off a few milliseconds.
    assert!(used < Duration::from_millis(200), "{used:?} of CPU in 1 s");
    // The connection it already had is still served at the limit.
    let resp = request_on(&mut early);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    // The hogs leave: new connections are served again within the back-off's 1 s.
    drop(hogs);
    drop(early);
    let since = Clock::wall_now();
    let mut resp = String::new();
    while since.elapsed() < Duration::from_secs(5) {
        resp = exchange(port, &get_close());
        if resp.starts_with("HTTP/1.1 200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp:?}");
    let (_, stderr) = stop(gw);
    // Logged once per burst, not once per failed accept.
    let logged = stderr.matches("cannot accept connections on").count();
    assert!((1..=3).contains(&logged), "{stderr}");
    assert!(stderr.contains("Too many open files"), "{stderr}");
}

#[test]
fn http_details_431_400_501_and_no_backend_address_in_any_answer() {
    let _live = one_live_run_at_a_time();
    let backend = start_body_backend();
    let dead = dead_port();
    let (gw, port) = start_gateway_with(
        &config("hostile-http", backend),
        &[],
        &["--duration", "30s"],
    );
    // A dead backend behind a second gateway: its 502.
    let dead_config = config("hostile-http-dead", dead);
    let (dead_gw, dead_gw_port) = start_gateway_with(&dead_config, &[], &["--duration", "30s"]);
    let big = format!(
        "GET / HTTP/1.1\r\n{HOST}X-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(100_000)
    );
    let bad_chunk = format!(
        "POST / HTTP/1.1\r\n{HOST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         ZZZ\r\nhello\r\n0\r\n\r\n"
    );
    let gzip_chunked = format!(
        "POST / HTTP/1.1\r\n{HOST}Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n\
         5\r\nhello\r\n0\r\n\r\n"
    );
    // (gateway port, request, status line it must start with)
    let cases: [(u16, &str, &str); 4] = [
        // A 100 KB header in one write: above the 64 KiB limit.
        (port, &big, "HTTP/1.1 431"),
        // The client's chunked framing is broken: its fault, not the backend's.
        (port, &bad_chunk, "HTTP/1.1 400"),
        // A transfer coding beyond chunked is refused, as Envoy does.
        (port, &gzip_chunked, "HTTP/1.1 501"),
        // The backend is down.
        (
            dead_gw_port,
            &format!("GET / HTTP/1.1\r\n{HOST}Connection: close\r\n\r\n"),
            "HTTP/1.1 502",
        ),
    ];
    for (p, request, status) in cases {
        let mut s = connect(p);
        // No half-close: hyper drops a request whose client shuts its side before the answer.
        let _ = s.write_all(request.as_bytes());
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let got = String::from_utf8_lossy(&buf);
        assert!(got.starts_with(status), "{status}: {got:?}");
        for addr in [format!("127.0.0.1:{backend}"), format!("127.0.0.1:{dead}")] {
            assert!(!got.contains(&addr), "{addr} named in {got:?}");
        }
        assert!(!got.contains("127.0.0.1"), "an address in {got:?}");
    }
    // A well-formed chunked POST is still relayed.
    let ok = exchange(
        port,
        format!(
            "POST / HTTP/1.1\r\n{HOST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok:?}");
    stop(gw);
    stop(dead_gw);
}

/// A backend that reads each request's body (by `Content-Length` or chunked) before it
/// answers `Hello v1!`, so a relayed body never reads as a second request.
fn start_body_backend() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve_bodies(stream));
        }
    });
    port
}

fn serve_bodies(stream: TcpStream) -> Option<()> {
    let mut write = stream.try_clone().ok()?;
    let mut r = BufReader::new(stream);
    loop {
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().ok()?;
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
            if line == "\r\n" {
                break;
            }
        }
        if chunked {
            loop {
                let mut size = String::new();
                r.read_line(&mut size).ok()?;
                let n = usize::from_str_radix(size.trim(), 16).ok()?;
                let mut chunk = vec![0u8; n + 2];
                r.read_exact(&mut chunk).ok()?;
                if n == 0 {
                    break;
                }
            }
        } else {
            let mut body = vec![0u8; length];
            r.read_exact(&mut body).ok()?;
        }
        write
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nHello v1!\n")
            .ok()?;
    }
}

#[test]
fn an_idle_http2_connection_outlives_the_header_timeout_and_ends_with_goaway() {
    let _live = one_live_run_at_a_time();
    let config = config("hostile-h2-idle", start_backend());
    let (gw, port) = start_gateway_with(
        &config,
        &[],
        &[
            "--header-timeout",
            "300ms",
            "--idle-timeout",
            "1500ms",
            "--duration",
            "30s",
        ],
    );
    // An h2c client (prior knowledge): the preface and an empty SETTINGS frame, then nothing,
    // as a gRPC channel between calls.
    let mut s = connect(port);
    let start = Clock::wall_now();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    // Binary frames: read as bytes.
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let after = start.elapsed();
    // Not closed at the header timeout (an HTTP/2 connection has no head phase), but at the
    // idle timeout (plus at most the 1 s it has to say goodbye).
    assert!(
        after >= Duration::from_millis(1400) && after < Duration::from_secs(4),
        "{after:?}"
    );
    // Its frames: the server's SETTINGS first, a GOAWAY (type 7) among them.
    let mut types = Vec::new();
    let mut at = 0;
    while at + 9 <= got.len() {
        let len = (usize::from(got[at]) << 16)
            | (usize::from(got[at + 1]) << 8)
            | usize::from(got[at + 2]);
        types.push(got[at + 3]);
        at += 9 + len;
    }
    assert_eq!(types.first(), Some(&4), "{types:?}");
    assert!(types.contains(&7), "no GOAWAY in {types:?}");
    stop(gw);
}

#[test]
fn bad_limit_flags_are_refused_with_the_flag_and_what_is_allowed() {
    let config = config("hostile-flags", dead_port());
    let config = config.to_str().unwrap();
    // (flag, value, what the error says)
    let cases = [
        ("--header-timeout", "ten", "--header-timeout \"ten\": "),
        (
            "--header-timeout",
            "-1s",
            "--header-timeout \"-1s\": must not be negative",
        ),
        ("--idle-timeout", "1x", "--idle-timeout \"1x\": "),
        (
            "--max-connections",
            "0",
            "--max-connections 0: allowed: 1 to 1000000",
        ),
        (
            "--max-connections",
            "2000000",
            "--max-connections 2000000: allowed: 1 to 1000000",
        ),
        ("--workers", "0", "--workers 0: allowed: 1 to 1024"),
        ("--workers", "5000", "--workers 5000: allowed: 1 to 1024"),
    ];
    for (flag, value, want) in cases {
        let out = crate::common::splitlab(&[
            "gateway",
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "1s",
            // `--flag=value`, so a negative value is not read as a flag.
            &format!("{flag}={value}"),
        ]);
        crate::common::assert_clear_error(&out, want, &format!("{flag} {value}"));
    }
}
