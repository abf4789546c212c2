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
