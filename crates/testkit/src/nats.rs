//! A real `nats-server -js` per test: its own free port on 127.0.0.1 and its own
//! store directory, stopped on drop. It can be stopped and started again on the
//! same port with the same store, as a NATS restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// A running (or stopped) `nats-server` with JetStream.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: TempDir,
    /// Extra command-line arguments (TLS), kept for restarts.
    extra: Vec<String>,
}

impl NatsServer {
    /// Starts `nats-server -js -a 127.0.0.1 -p -1` with a temp store dir and
    /// reads the port it chose back from its log.
    pub fn start() -> NatsServer {
        NatsServer::start_with(&[])
    }

    /// Like [`NatsServer::start`], with extra `nats-server` arguments (e.g. `--tls`,
    /// `--tlscert FILE`, `--tlskey FILE`).
    pub fn start_with(extra: &[&str]) -> NatsServer {
        let store = tempfile::tempdir().expect("nats store dir");
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let (child, port) = spawn(store.path(), None, &extra);
        NatsServer {
            child: Some(child),
            port,
            store,
            extra,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server: SIGKILL (a crash) or SIGTERM (a clean stop).
    pub fn stop(&mut self, crash: bool) {
        if let Some(mut child) = self.child.take() {
            if crash {
                let _ = child.kill();
            } else if let Ok(pid) = i32::try_from(child.id()) {
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop(false);
        let (child, _) = spawn(self.store.path(), Some(self.port), &self.extra);
        self.child = Some(child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(store: &Path, port: Option<u16>, extra: &[String]) -> (Child, u16) {
    let port_arg = port.map_or("-1".to_string(), |p| p.to_string());
    // A port just released can take a moment to be free again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port_arg, "-sd"])
            .arg(store)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start nats-server ({e}): install it (Debian: apt-get install nats-server), see README"
                )
            });
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Keep draining after the receiver is gone so the pipe never fills.
                let _ = tx.send(line);
            }
        });
        let mut found = None;
        let mut ready = false;
        let mut said = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    said.push(line.clone());
                    if let Some(rest) = line.split("Listening for client connections on ").nth(1)
                        && let Some(p) = rest.trim().rsplit(':').next()
                    {
                        found = p.parse::<u16>().ok();
                    }
                    if line.contains("Server is ready") {
                        ready = true;
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if let (Some(p), true) = (found, ready) {
            return (child, p);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            port.is_some() && Instant::now() < deadline,
            "nats-server did not report its port and readiness; it said:\n{}",
            said.join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
