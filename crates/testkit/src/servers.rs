//! Real lotline servers for tests: in-process, or the real binary as a child.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use lotline_proto::v1::audit_service_client::AuditServiceClient;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::log_service_client::LogServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use lotline_server::{Listeners, ServeConfig, ServerError, run_on};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Waits until `url` reports SERVING, or panics after `timeout`.
pub async fn wait_serving(url: &str, timeout: Duration) {
    wait_service(url, "", timeout).await
}

/// Waits until `url` reports `service` (`""` for the whole server) SERVING, by
/// following the health Watch stream (no polling), or panics after `timeout`.
/// The server's listener must already be bound.
pub async fn wait_service(url: &str, service: &str, timeout: Duration) {
    let channel = Channel::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect to a bound listener");
    wait_service_on(channel, url, service, timeout).await
}

/// A TLS channel to `url` (https://HOST:PORT) trusting the CA `ca_pem`, presenting
/// `identity` (certificate and key PEM) if given.
pub async fn tls_channel(
    url: &str,
    ca_pem: &[u8],
    identity: Option<(&[u8], &[u8])>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem));
    if let Some((cert, key)) = identity {
        tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    Channel::from_shared(url.to_string())
        .expect("url")
        .tls_config(tls)?
        .connect()
        .await
}

/// Like [`wait_service`], on a channel already connected.
pub async fn wait_service_on(channel: Channel, url: &str, service: &str, timeout: Duration) {
    let watch = async {
        let mut updates = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .expect("health watch")
            .into_inner();
        while let Some(update) = updates.message().await.expect("health update") {
            if update.status == ServingStatus::Serving as i32 {
                return;
            }
        }
        panic!("{url} closed the health stream before {service:?} was SERVING");
    };
    tokio::time::timeout(timeout, watch)
        .await
        .unwrap_or_else(|_| panic!("{url} did not report {service:?} SERVING within {timeout:?}"));
}

/// The real server, in-process, on `127.0.0.1:0` with a temp data dir.
pub struct TestServer {
    pub address: SocketAddr,
    /// The HTTP door's address, when its config gave `http` (any address: tests bind
    /// `127.0.0.1:0`).
    pub http_address: Option<SocketAddr>,
    /// The listener speaks TLS (the URL is https://127.0.0.1:PORT).
    tls: bool,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts on a fresh temp dir and waits until it is serving.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        TestServer::start_in(&path).await.owning(dir)
    }

    /// This server, removing `dir` (its data dir's temp dir) when it is dropped.
    pub fn owning(mut self, dir: tempfile::TempDir) -> TestServer {
        self._dir = Some(dir);
        self
    }

    /// Starts on `data_dir` (kept after stop) and waits until it is serving.
    pub async fn start_in(data_dir: &Path) -> TestServer {
        TestServer::start_with(ServeConfig::new(data_dir)).await
    }

    /// Starts with `config` (its data dir is kept after stop) and waits until it
    /// is serving (in NATS mode: until its consumer runs).
    pub async fn start_with(config: ServeConfig) -> TestServer {
        assert!(config.tls.is_none(), "TLS servers start with start_tls");
        let server = TestServer::spawn(config).await;
        wait_serving(&server.url(), Duration::from_secs(30)).await;
        server
    }

    /// Starts with `config` without waiting for it to serve (for a node that should refuse to).
    pub async fn start_unready(config: ServeConfig) -> TestServer {
        TestServer::spawn(config).await
    }

    /// Starts with `config` (which has TLS) and waits until it is serving, trusting `ca_pem`.
    pub async fn start_tls(config: ServeConfig, ca_pem: &[u8]) -> TestServer {
        let server = TestServer::spawn(config).await;
        let url = server.url();
        let channel = tls_channel(&url, ca_pem, None)
            .await
            .expect("TLS connection to a bound listener");
        wait_service_on(channel, &url, "", Duration::from_secs(30)).await;
        server
    }

    async fn spawn(config: ServeConfig) -> TestServer {
        let tls = config.tls.is_some();
        let data_dir = config.data_dir.clone();
        let data_dir = data_dir.as_path();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("address");
        // The HTTP door, when the config asks for one, on a port of its own.
        let http = match config.http {
            Some(_) => Some(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind loopback"),
            ),
            None => None,
        };
        let http_address = http.as_ref().map(|l| l.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = Listeners {
            grpc: listener,
            http,
            metrics: None,
        };
        let task = tokio::spawn(run_on(config, listeners, async {
            let _ = stopped.await;
        }));
        TestServer {
            address,
            http_address,
            tls,
            data_dir: data_dir.to_path_buf(),
            stop: Some(stop),
            task: Some(task),
            _dir: None,
        }
    }

    pub fn url(&self) -> String {
        if self.tls {
            format!("https://{}", self.address)
        } else {
            format!("http://{}", self.address)
        }
    }

    /// The HTTP door's base URL (plaintext); panics if the server has none.
    pub fn http_url(&self) -> String {
        let address = self
            .http_address
            .expect("the server was started without http");
        format!("http://{address}")
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    pub async fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel().await).max_decoding_message_size(256 << 20)
    }

    pub async fn log(&self) -> LogServiceClient<Channel> {
        LogServiceClient::new(self.channel().await)
    }

    pub async fn provenance(&self) -> ProvenanceServiceClient<Channel> {
        ProvenanceServiceClient::new(self.channel().await).max_decoding_message_size(256 << 20)
    }

    pub async fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel().await).max_decoding_message_size(256 << 20)
    }

    /// Records `events` in batches of 5 000 over gRPC and asserts each was accepted.
    pub async fn record_all(&self, events: &[lotline_proto::v1::Event]) {
        use lotline_proto::v1::{RecordBatchRequest, outcome};
        let mut client = self.events().await;
        for chunk in events.chunks(5_000) {
            let outcomes = client
                .record_batch(RecordBatchRequest {
                    events: chunk.to_vec(),
                })
                .await
                .expect("record batch")
                .into_inner()
                .outcomes;
            if let Some(refused) = outcomes
                .iter()
                .find(|o| !matches!(o.result, Some(outcome::Result::Accepted(_))))
            {
                panic!("an event was not accepted: {refused:?}");
            }
        }
    }

    /// Stops gracefully and returns the server's result.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The signed checkpoint of the server at `url`, or `None` if it does not answer (within 2 s
/// to connect, 5 s to answer): for polling a node that may be down.
pub async fn checkpoint(url: &str) -> Option<lotline_proto::v1::Checkpoint> {
    let channel = Channel::from_shared(url.to_string())
        .ok()?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .ok()?;
    let answer = LogServiceClient::new(channel)
        .get_checkpoint(lotline_proto::v1::GetCheckpointRequest::default())
        .await
        .ok()?;
    Some(answer.into_inner())
}

/// The size of the log of the server at `url`; 0 if it does not answer.
pub async fn log_size(url: &str) -> u64 {
    checkpoint(url).await.map_or(0, |c| c.tree_size)
}

/// The path of the `lotline` binary, built (once per test process) from the
/// current sources in the profile the tests run under, so a stale binary is never
/// tested.
pub fn lotline_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        // target/<profile>/deps/<test> → target/<profile>/lotline
        let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut build = Command::new(env!("CARGO"));
        // With the store's test hooks and OpenTelemetry, as the test process has them, so that
        // cargo reuses the workspace's artifacts instead of building the store and everything
        // above it again.
        // (The hooks are never called by the binary; a release build has none.)
        build.args([
            "build",
            "--quiet",
            "-p",
            "lotline-server",
            "--bin",
            "lotline",
            "--features",
            "lotline-store/test-util,lotline-server/otel",
        ]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("cargo build");
        assert!(status.success(), "building the lotline binary failed");
        profile_dir.join(format!("lotline{}", std::env::consts::EXE_SUFFIX))
    })
    .clone()
}

/// The real `lotline serve` binary as a child process on `127.0.0.1:0`.
pub struct BinaryServer {
    pub address: SocketAddr,
    child: Child,
    /// What the server logged up to its gRPC listening line.
    pub startup: Vec<String>,
    /// Everything the server logged after that, line by line.
    pub log: mpsc::Receiver<String>,
}

impl BinaryServer {
    /// Spawns `lotline serve --data-dir DIR --listen 127.0.0.1:0` and waits until it
    /// logs its address and reports SERVING.
    pub async fn spawn(data_dir: &Path) -> BinaryServer {
        BinaryServer::spawn_until(data_dir, "").await
    }

    /// Like [`BinaryServer::spawn`], but waits only until `service` is SERVING (a
    /// store that failed its integrity check serves reads, not writes).
    pub async fn spawn_until(data_dir: &Path, service: &str) -> BinaryServer {
        BinaryServer::spawn_with(data_dir, service, &[]).await
    }

    /// Like [`BinaryServer::spawn_until`], with extra `serve` arguments.
    pub async fn spawn_with(data_dir: &Path, service: &str, extra: &[&str]) -> BinaryServer {
        let mut command = Command::new(lotline_bin());
        clear_lotline_env(&mut command);
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lotline");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut startup = Vec::new();
        let address = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("lotline logged no listening address in time");
            let found = if line.contains("listening") {
                log_field(&line, "address")
            } else {
                None
            };
            startup.push(line);
            if let Some(addr) = found {
                break addr.parse::<SocketAddr>().expect("address");
            }
        };
        let server = BinaryServer {
            address,
            child,
            startup,
            log: rx,
        };
        wait_service(&server.url(), service, Duration::from_secs(60)).await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no draining, no flush beyond what was already acknowledged.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the exit status.
    pub fn terminate(mut self, timeout: Duration) -> std::process::ExitStatus {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        signal::kill(pid, Signal::SIGTERM).expect("send SIGTERM to lotline");
        // Wait for the exit on a thread, and for that thread with a deadline.
        let mut child = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("spawn true"),
        );
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(timeout) {
            Ok(status) => status.expect("wait for lotline"),
            Err(_) => {
                let _ = signal::kill(pid, Signal::SIGKILL);
                panic!("lotline did not exit within {timeout:?} of SIGTERM")
            }
        }
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes every `LOTLINE_*` variable from a child's environment, so tests never
/// inherit a developer's settings.
pub fn clear_lotline_env(command: &mut Command) {
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("LOTLINE_")) {
        command.env_remove(key);
    }
}

/// The value of the field `name` in a log line: `name=value` in text, or `"name":"value"` in a
/// JSON line (`serve --log-output json`).
pub fn log_field(line: &str, name: &str) -> Option<String> {
    if line.starts_with('{') {
        let object: serde_json::Value = serde_json::from_str(line).ok()?;
        return match object.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
    }
    let marker = format!("{name}=");
    let start = line.find(&marker)? + marker.len();
    line[start..].split_whitespace().next().map(str::to_string)
}
