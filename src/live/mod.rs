//! The live mode: the only code with sockets and real clocks.
//!
//! - `clock`: scenario time on the wall clock (`--time-scale`).
//! - `pod`: a revision's pod as an HTTP server whose handler is the queue-proxy.
//! - `gateway`: the reverse proxy that routes with the shared data plane, with the activator.
//! - `load`: the open-loop load generator (also `splitlab load` against any endpoint).
//! - `client`: the load generator's connections: HTTP/1.1 or HTTP/2, over TCP or TLS.
//! - `h1`: the load generator's lean HTTP/1.1 client (request bytes built once, `httparse`).
//! - `relay`: the gateway's lean HTTP/1.1 upstream client for requests without a body.
//! - `tls`: the client's TLS configuration (roots, `--cacert`, `--insecure`, ALPN, SNI).
//! - `world`: `splitlab live`, the controllers on a wall clock around real requests.
//! - `metrics`: Knative's metrics at `/metrics` per component, and the Prometheus target list.
//! - `http`: the servers (HTTP/1.1 and HTTP/2 on one port), bodies, headers, Knative's error
//!   texts, upstream connections and streaming relay, the gRPC-aware error classification.
//! - `guard`: the servers' connection limits (header and idle timeouts, a cap, accept back-off).
//! - `tls_server`: the gateway's TLS listener settings (PEM certificate and key, ALPN).
//! - `workers`: `splitlab gateway --workers N`, one single-threaded event loop per thread, each
//!   with its own listening socket (`SO_REUSEPORT`).
//! - `prometheus`: a GET of Prometheus' `/api/v1/query_range` for `splitlab calibrate`.
//!
//! Uses `routing`, `model` and `report` (and the validated `scenario::spec`), never `sim`: the
//! simulator and the live mode share the route reconciler, the pickers, the breaker, the
//! throttler, the autoscaler and the record schema, and nothing else.
//!
//! Safety: everything binds 127.0.0.1 unless the user names another address, and every load
//! run stops by itself (duration or request count, then a bounded drain).

pub mod client;
pub mod clock;
pub mod gateway;
pub mod guard;
pub mod h1;
pub mod http;
pub mod load;
pub mod metrics;
pub mod pod;
pub mod prometheus;
pub mod relay;
pub mod tls;
pub mod tls_server;
pub mod workers;
pub mod world;
