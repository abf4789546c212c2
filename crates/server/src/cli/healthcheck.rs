//! `lotline healthcheck`: asks a node's operations listener (`serve --metrics`) whether it is
//! ready, for a container's HEALTHCHECK or a script: the image holds no HTTP client.

use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::CliError;

#[derive(Debug, Args)]
pub(crate) struct HealthcheckArgs {
    /// What to ask: a plain http:// URL on the node's --metrics listener. /readyz/reads
    /// answers 200 while the node serves reads; /readyz while it also takes writes.
    #[arg(
        long,
        env = "LOTLINE_HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:9464/readyz/reads"
    )]
    url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout_secs: u64,
}

/// Exit 0 on a 200, 1 with the node's reason on any other answer, 2 if nothing answers.
pub(crate) async fn run(args: HealthcheckArgs) -> Result<(), CliError> {
    let rest = args.url.strip_prefix("http://").ok_or_else(|| {
        CliError::Usage(format!(
            "--url {:?}: only plain http:// (the --metrics listener) is asked",
            args.url
        ))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let asked = async {
        let mut stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|e| CliError::Connect(format!("{}: {e}", args.url)))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| CliError::Connect(format!("{}: {e}", args.url)))?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| CliError::Connect(format!("{}: {e}", args.url)))?;
        Ok::<_, CliError>(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(Duration::from_secs(args.timeout_secs), asked)
        .await
        .map_err(|_| {
            CliError::Connect(format!(
                "{}: no answer within {} s",
                args.url, args.timeout_secs
            ))
        })??;
    let status = answer
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim())
        .unwrap_or("");
    if status == "200" {
        println!("{body}");
        Ok(())
    } else {
        Err(CliError::Refused(format!("{}: {status} {body}", args.url)))
    }
}
