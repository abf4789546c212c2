//! Dev-only helpers for lotline's tests and benchmarks.
//!
//! - [`TestServer`]: the real gRPC server in-process on `127.0.0.1:0` with a temp
//!   sled directory, stopped through its shutdown future.
//! - [`BinaryServer`]: the real `lotline` binary as a child process, for tests that
//!   kill it (SIGKILL) or signal it (SIGTERM).
//! - [`NatsServer`]: a real `nats-server -js` per test on a free loopback port
//!   with its own store dir, restartable on the same port; [`NatsCluster`]: three
//!   of them in one JetStream cluster on loopback, each restartable.
//! - [`events`]: builders for wire events, and [`chains`]: generated supply chains
//!   with their ground truth computed independently of lotline.
//! - [`scenario`]: a generated multi-chain audit scenario (co-ops, farms, traders,
//!   brands, textile garments) that is clean, plus planted problems with the
//!   anomaly each must cause.

pub mod bench;
pub mod chains;
pub mod epcis;
pub mod events;
mod nats;
pub mod rest;
pub mod scenario;
mod servers;

pub use nats::{LinkCutter, NatsCluster, NatsServer, current_nats_server, free_ports, pip_tool};
pub use servers::{
    BinaryServer, TestServer, checkpoint, clear_lotline_env, log_field, log_size, lotline_bin,
    tls_channel, wait_service, wait_service_on, wait_serving,
};

/// `text` percent-encoded for a URL query value or path segment (everything but unreserved
/// characters), as an HTTP client sends an identifier with `/` or `:` in it.
pub fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
