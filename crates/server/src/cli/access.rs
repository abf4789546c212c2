//! `lotline token issue | revoke | public-key` and `lotline whoami`: credentials for a server
//! with `serve --auth`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use lotline_domain::RevokeToken;
use lotline_proto::build;
use lotline_proto::v1;
use lotline_proto::v1::access_service_client::AccessServiceClient;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_service::Role;
use lotline_service::tokens::{ScopeClaim, TokenRequest, parse_lifetime};
use serde_json::json;

use super::client::{connect, status_error};
use super::{CliError, ClientArgs, print_json};

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Sign a token for an org (offline, with the issuer's key in the data dir).
    Issue(IssueArgs),
    /// Revoke a token by its id: records a revocation in the log (needs an admin's token).
    Revoke(RevokeArgs),
    /// Print the issuer's public key (what `serve --issuer-public-key` takes on other nodes).
    PublicKey(IssuerArgs),
}

#[derive(Debug, Args)]
struct IssuerArgs {
    /// The data dir whose issuer key (token-issuer.key) signs; created there if missing.
    #[arg(long, env = "LOTLINE_DATA_DIR", default_value = "./lotline-data")]
    data_dir: PathBuf,
    /// The issuer key file instead of <data-dir>/token-issuer.key.
    #[arg(long, env = "LOTLINE_ISSUER_KEY")]
    issuer_key: Option<PathBuf>,
}

impl IssuerArgs {
    fn path(&self) -> PathBuf {
        self.issuer_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join(crate::DEFAULT_ISSUER_KEY_FILE))
    }
}

#[derive(Debug, Args)]
struct IssueArgs {
    #[command(flatten)]
    issuer: IssuerArgs,
    /// The org the token speaks for.
    #[arg(long)]
    org: String,
    /// member, certifier, auditor or admin (repeat for several).
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    /// What an auditor reads in full: org=ORG, chain=CHAIN, from=TIME, to=TIME (RFC 3339);
    /// repeat. Without any: everything.
    #[arg(long = "scope")]
    scope: Vec<String>,
    /// An org this token may also write for (an integrator); repeat.
    #[arg(long = "on-behalf-of")]
    on_behalf_of: Vec<String>,
    /// How long the token is valid: a number and s, m, h or d.
    #[arg(long, default_value = "30d")]
    expires: String,
    /// Print {"token", "id", "expires", "issuer_public_key"}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RevokeArgs {
    /// The token's id (`id` of `lotline token issue --json`; `token_id` of `lotline whoami`).
    id: String,
    /// Why (kept in the log).
    #[arg(long, default_value = "")]
    reason: String,
    /// The org recording the revocation; default: the org of the caller's own token.
    #[arg(long)]
    org: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct WhoamiArgs {
    #[command(flatten)]
    client: ClientArgs,
}

pub(crate) async fn token(args: TokenArgs) -> Result<(), CliError> {
    match args.command {
        TokenCommand::Issue(a) => issue(a),
        TokenCommand::PublicKey(a) => {
            let issuer =
                crate::load_issuer(&a.path()).map_err(|e| CliError::Usage(e.to_string()))?;
            outln!("{}", issuer.public_key());
            Ok(())
        }
        TokenCommand::Revoke(a) => revoke(a).await,
    }
}

fn scope(items: &[String]) -> Result<ScopeClaim, CliError> {
    let mut scope = ScopeClaim::default();
    for item in items {
        let (key, value) = item.split_once('=').ok_or_else(|| {
            CliError::Usage(format!(
                "--scope {item:?}: expected org=ORG, chain=CHAIN, from=TIME or to=TIME"
            ))
        })?;
        let value = value.trim().to_string();
        match key.trim() {
            "org" => scope.orgs.push(value),
            "chain" => scope.chains.push(value),
            "from" => scope.from = Some(value),
            "to" => scope.to = Some(value),
            other => {
                return Err(CliError::Usage(format!(
                    "--scope {item:?}: {other:?} is not org, chain, from or to"
                )));
            }
        }
    }
    Ok(scope)
}

fn issue(args: IssueArgs) -> Result<(), CliError> {
    let roles = args
        .roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                CliError::Usage(format!(
                    "--role {r:?}: expected member, certifier, auditor or admin"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let request = TokenRequest {
        org: args.org.trim().to_string(),
        roles,
        scope: scope(&args.scope)?,
        on_behalf_of: args.on_behalf_of.clone(),
        lifetime_secs: parse_lifetime(&args.expires)
            .map_err(|e| CliError::Usage(format!("--expires: {e}")))?,
    };
    let issuer =
        crate::load_issuer(&args.issuer.path()).map_err(|e| CliError::Usage(e.to_string()))?;
    let issued = issuer
        .issue(&request, chrono::Utc::now())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if args.json {
        print_json(&json!({
            "token": issued.token,
            "id": issued.id,
            "expires": issued.expires,
            "issuer_public_key": issuer.public_key(),
        }))
    } else {
        eprintln!(
            "token {} for {} ({}), expires {}; issuer public key {}",
            issued.id,
            request.org,
            args.roles.join(", "),
            issued.expires,
            issuer.public_key()
        );
        outln!("{}", issued.token);
        Ok(())
    }
}

async fn who(client: &ClientArgs) -> Result<v1::WhoAmIResponse, CliError> {
    Ok(AccessServiceClient::new(connect(client).await?)
        .who_am_i(v1::WhoAmIRequest {})
        .await
        .map_err(status_error)?
        .into_inner())
}

async fn revoke(args: RevokeArgs) -> Result<(), CliError> {
    let org = match &args.org {
        Some(org) => org.clone(),
        None => {
            let me = who(&args.client).await?;
            if me.org.is_empty() {
                return Err(CliError::Usage(
                    "--org: the server does not know who you are (no --auth, or no token); name the org recording the revocation".into(),
                ));
            }
            me.org
        }
    };
    let event = build::event(
        RevokeToken::event_id(&args.id),
        &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        org,
        "",
        v1::event::Kind::RevokeToken(v1::RevokeToken {
            token_id: args.id.clone(),
            reason: args.reason.clone(),
        }),
    );
    let outcome = EventServiceClient::new(connect(&args.client).await?)
        .record(v1::RecordRequest { event: Some(event) })
        .await
        .map_err(status_error)?
        .into_inner()
        .outcome
        .and_then(|o| o.result);
    let text = match outcome {
        Some(v1::outcome::Result::Accepted(a)) => {
            format!("token {} revoked (log sequence {})", args.id, a.sequence)
        }
        Some(v1::outcome::Result::Duplicate(d)) => format!(
            "token {} was already revoked (log sequence {})",
            args.id, d.sequence
        ),
        Some(v1::outcome::Result::Rejected(r)) => {
            return Err(CliError::Refused(format!(
                "the revocation was rejected: {}",
                r.reason
            )));
        }
        None => return Err(CliError::Refused("the server gave no outcome".into())),
    };
    if args.client.json {
        print_json(&json!({"revoked": args.id, "message": text}))
    } else {
        outln!("{text}");
        Ok(())
    }
}

pub(crate) async fn whoami(args: WhoamiArgs) -> Result<(), CliError> {
    let me = who(&args.client).await?;
    if args.client.json {
        return print_json(&json!({
            "access": me.access,
            "org": me.org,
            "roles": me.roles,
            "credential": me.credential,
            "token_id": me.token_id,
            "on_behalf_of": me.on_behalf_of,
            "scope": {
                "orgs": me.scope_orgs,
                "chains": me.scope_chains,
                "from": me.scope_from,
                "to": me.scope_to,
            },
        }));
    }
    match me.access.as_str() {
        "open" => outln!(
            "the server has no access control (serve without --auth): every caller may record and read everything"
        ),
        "anonymous" => {
            outln!("anonymous: the public view of lots, traces, EUDR verdicts and proofs")
        }
        _ => {
            outln!("org:         {}", me.org);
            outln!("roles:       {}", me.roles.join(", "));
            outln!(
                "credential:  {}{}",
                me.credential,
                if me.token_id.is_empty() {
                    String::new()
                } else {
                    format!(" {}", me.token_id)
                }
            );
            if !me.on_behalf_of.is_empty() {
                outln!("writes for:  {}", me.on_behalf_of.join(", "));
            }
            if !me.scope_orgs.is_empty() || !me.scope_chains.is_empty() {
                outln!(
                    "scope:       orgs {}; chains {}",
                    me.scope_orgs.join(", "),
                    me.scope_chains.join(", ")
                );
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct AccessBenchArgs {
    /// Requests per measurement.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Measurements of each server, alternating (the median is reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// A server of the benchmark: in-process on loopback, on the benchmark's data dir.
pub(crate) struct BenchServer {
    pub(crate) url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), crate::ServerError>>,
}

impl BenchServer {
    pub(crate) async fn start(config: crate::ServeConfig) -> Result<BenchServer, CliError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| CliError::Usage(format!("cannot listen on loopback: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| CliError::Usage(format!("listener has no address: {e}")))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crate::run(config, listener, async {
            let _ = stopped.await;
        }));
        let url = format!("http://{address}");
        super::demo::wait_serving(&url).await?;
        Ok(BenchServer { url, stop, task })
    }

    pub(crate) async fn stop(self) -> Result<(), CliError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CliError::Refused(format!("the server failed: {e}"))),
            Err(e) => Err(CliError::Refused(format!("the server task failed: {e}"))),
        }
    }
}

/// `lotline bench access`: requests per second of a small query (one event by id) on the
/// sample data, on a server without access control and on the same store with `--auth` and a
/// member's token, alternating, in one run.
pub(crate) async fn bench_access(args: AccessBenchArgs) -> Result<(), CliError> {
    if args.requests == 0 || args.concurrency == 0 || args.rounds == 0 {
        return Err(CliError::Usage(
            "--requests, --concurrency and --rounds must be at least 1".into(),
        ));
    }
    let dir = tempfile::Builder::new()
        .prefix("lotline-bench-access-")
        .tempdir()
        .map_err(|e| CliError::Usage(format!("cannot create a temporary data dir: {e}")))?;
    let open = crate::ServeConfig::new(dir.path());
    let mut enforced = open.clone();
    enforced.auth = Some(crate::AuthSettings::default());
    let issuer = crate::load_issuer(&enforced.issuer_key_path())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let token = issuer
        .issue(
            &TokenRequest {
                org: "vn-coop-eahleo".into(),
                roles: vec![Role::Member],
                lifetime_secs: 3_600,
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .map_err(|e| CliError::Usage(e.to_string()))?
        .token;

    let server = BenchServer::start(open.clone()).await?;
    let events = crate::sample::sample_events();
    let asked = events
        .iter()
        .find(|e| e.org == "vn-coop-eahleo")
        .map(|e| e.event_id.clone())
        .ok_or_else(|| CliError::Refused("the sample has no event of vn-coop-eahleo".into()))?;
    EventServiceClient::new(connect(&ClientArgs::local(&server.url)).await?)
        .record_batch(v1::RecordBatchRequest { events })
        .await
        .map_err(status_error)?;
    server.stop().await?;
    outln!(
        "{} ListEvents requests (one event by id) per measurement, {} in flight, {} rounds",
        args.requests,
        args.concurrency,
        args.rounds
    );

    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=args.rounds {
        for (i, auth) in [false, true].into_iter().enumerate() {
            let config = if auth { enforced.clone() } else { open.clone() };
            let server = BenchServer::start(config).await?;
            let mut client = ClientArgs::local(&server.url);
            if auth {
                client.credentials.token = Some(token.clone());
            }
            // Warm up (connection, caches, the token's one signature check), then measure.
            measure(&client, &asked, args.requests / 10 + 1, args.concurrency).await?;
            let rate = measure(&client, &asked, args.requests, args.concurrency).await?;
            server.stop().await?;
            outln!(
                "round {round}: {:<32} {:>9.0} requests/s",
                if auth {
                    "--auth, a member's bearer token"
                } else {
                    "no access control"
                },
                rate
            );
            rates[i].push(rate);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (open_rate, auth_rate) = (median(&mut rates[0]), median(&mut rates[1]));
    outln!(
        "median: {open_rate:.0} requests/s without access control, {auth_rate:.0} with --auth: {:.3} of it (auth costs {:.1} %)",
        auth_rate / open_rate,
        (1.0 - auth_rate / open_rate) * 100.0
    );
    Ok(())
}

/// Requests per second of `requests` one-event queries, `concurrency` at a time.
async fn measure(
    client: &ClientArgs,
    event_id: &str,
    requests: usize,
    concurrency: usize,
) -> Result<f64, CliError> {
    let conn = connect(client).await?;
    let started = std::time::Instant::now();
    let per_task = requests.div_ceil(concurrency);
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut provenance =
            lotline_proto::v1::provenance_service_client::ProvenanceServiceClient::new(
                conn.clone(),
            );
        let event_id = event_id.to_string();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                let page = provenance
                    .list_events(v1::ListEventsRequest {
                        event_id: event_id.clone(),
                        limit: 1,
                        ..Default::default()
                    })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                if page.events.len() != 1 {
                    return Err(CliError::Refused(format!(
                        "the query answered {} events, not 1",
                        page.events.len()
                    )));
                }
            }
            Ok::<_, CliError>(())
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| CliError::Refused(format!("a request task failed: {e}")))??;
    }
    Ok((per_task * concurrency) as f64 / started.elapsed().as_secs_f64())
}
