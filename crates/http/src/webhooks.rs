//! Webhook delivery: each subscription kept on this node gets a task that posts its query's
//! new results to its `dest` as `EPCISQueryDocument`s, at least once, in log order.
//!
//! A delivery is signed when the subscription gave a `signatureToken`: the `GS1-Signature`
//! header is `sha256=` and the hex HMAC-SHA256 of the body under that token, so the receiver
//! can tell lotline's posts from anyone else's. A receiver answers 2xx to take a delivery; any
//! other answer, or none within [`POST_TIMEOUT`], is retried after a back-off that doubles from
//! one second to [`MAX_BACKOFF`], for as long as the subscription exists (its `failures` and
//! `lastError` say how it goes). The subscription's position moves only once a delivery is
//! taken, so after a failure or a restart the same events come again: receivers drop repeats by
//! `eventID`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use lotline_service::Service;
use lotline_service::standing::{Subscription, Trigger};
use sha2::Sha256;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::routes::document_text;

/// How long a receiver may take to answer a delivery.
pub const POST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait between two attempts at a delivery.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Delivers every webhook subscription of `service` until `shutdown` resolves: starts a task
/// for each subscription and stops it when the subscription goes.
pub async fn deliver(service: Service, shutdown: impl Future<Output = ()>) {
    let client = match reqwest::Client::builder()
        .timeout(POST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("lotline/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(cause = %e, "no HTTP client: webhook subscriptions are not delivered");
            return;
        }
    };
    let mut changed = service.subscriptions_changed();
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Before the store is open there is nothing to deliver yet.
        match service.all_subscriptions() {
            Ok(all) => {
                let live: Vec<&Subscription> = all.iter().filter(|s| s.stopped.is_none()).collect();
                running.retain(|id, task| {
                    let keep = live.iter().any(|s| &s.id == id) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for s in live {
                    if !running.contains_key(&s.id) {
                        debug!(subscription = %s.id, dest = %s.dest, "delivering");
                        let task = tokio::spawn(run(service.clone(), client.clone(), s.clone()));
                        running.insert(s.id.clone(), task);
                    }
                }
            }
            Err(e) => debug!(cause = %e, "subscriptions not read yet"),
        }
        tokio::select! {
            () = &mut shutdown => break,
            _ = changed.changed() => {}
            // Retries the store while it opens, and restarts a task that ended.
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
    for (_, task) in running {
        task.abort();
    }
}

/// One subscription's deliveries.
async fn run(service: Service, client: reqwest::Client, s: Subscription) {
    let mut after = s.after;
    loop {
        let scheduled = match &s.trigger {
            Trigger::Stream => false,
            Trigger::Schedule(schedule) => {
                let now = Utc::now();
                let Some(at) = schedule.next_after(now) else {
                    return;
                };
                tokio::time::sleep((at - now).to_std().unwrap_or_default()).await;
                true
            }
        };
        let mut sent_any = false;
        let mut backoff = Duration::from_secs(1);
        loop {
            let delivery = match service.next_delivery(&s.id).await {
                Ok(Some(d)) => d,
                Ok(None) => return,
                Err(e) => {
                    warn!(subscription = %s.id, cause = %e, "a delivery could not be read");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            let due = !delivery.page.events.is_empty()
                || (scheduled && s.report_if_empty && !sent_any && !delivery.more);
            if due {
                let body = document_text(&delivery.page, &s.query_name, Some(&s.id));
                let outcome = post(&client, &s, body).await;
                let failed = outcome.is_err();
                let outcome = outcome.map(|()| delivery.through);
                match service.delivered(&s.id, outcome.clone()).await {
                    Ok(failures) if failed => {
                        warn!(subscription = %s.id, dest = %s.dest, failures, cause = ?outcome.err(), ?backoff, "a delivery failed; it is retried");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                    Ok(_) => {
                        sent_any = true;
                        backoff = Duration::from_secs(1);
                    }
                    Err(e) => {
                        warn!(subscription = %s.id, cause = %e, "a delivery's outcome could not be kept");
                        tokio::time::sleep(backoff).await;
                        continue;
                    }
                }
            } else if delivery.through > after
                && let Err(e) = service.delivered(&s.id, Ok(delivery.through)).await
            {
                warn!(subscription = %s.id, cause = %e, "a subscription's position could not be kept");
            }
            after = after.max(delivery.through);
            if !delivery.more {
                break;
            }
        }
        if s.trigger == Trigger::Stream
            && let Err(e) = service.log_beyond(after).await
        {
            info!(subscription = %s.id, cause = %e, "delivery stops");
            return;
        }
    }
}

/// Posts one delivery; `Err` says why the receiver did not take it.
async fn post(client: &reqwest::Client, s: &Subscription, body: String) -> Result<(), String> {
    let mut request = client
        .post(&s.dest)
        .header("content-type", "application/json")
        .header("gs1-epcis-version", "2.0.0");
    if let Some(token) = &s.signature_token {
        request = request.header("gs1-signature", signature(token, body.as_bytes()));
    }
    match request.body(body).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("{} answered {}", s.dest, response.status())),
        Err(e) => Err(format!("{}: {e}", s.dest)),
    }
}

/// The `GS1-Signature` of `body` under `token`: `sha256=` and the hex HMAC-SHA256.
pub fn signature(token: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token.as_bytes()) else {
        // HMAC takes a key of any length.
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
