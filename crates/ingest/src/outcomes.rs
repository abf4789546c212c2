//! Outcomes on request. A publisher that asked for outcome replies (`Lotline-Reply-To`) gets
//! none for the events whose replies were sent while its own connection was down: replies are
//! plain NATS messages, kept nowhere. It then asks any node, by event id, on
//! `lotline.outcomes.<org>` (request/reply; the nodes form the queue group
//! [`QUEUE`], so one answers). A node answers for the subject's org only (NATS permissions let
//! an org publish on its own subject alone, so no org learns of another's events), from its
//! store: each id in its log under that org, with its sequence, and the stream position it had
//! applied through before it looked. An event the stream confirmed at or before that position
//! and not in the log was rejected (the node's quarantine, `lotline rejected`, says why).

use std::sync::Arc;

use async_nats::Client;
use futures::StreamExt;
use lotline_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::applied::Applied;
use crate::config::NatsConfig;
use crate::subject::is_token;

/// The queue group of the nodes answering outcome requests.
pub const QUEUE: &str = "lotline-outcomes";
/// Most event ids one request may ask about.
pub const MAX_IDS: usize = 1_000;

/// The subject an org asks for its events' outcomes on.
pub fn outcomes_subject(root: &str, org: &str) -> String {
    format!("{root}.outcomes.{org}")
}

/// An outcome request: the ids of events the asker published.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeRequest {
    pub event_ids: Vec<String>,
}

/// A node's answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeAnswer {
    /// The node that answered.
    pub node: String,
    /// The stream position the node had applied through before it looked up the ids.
    pub applied_through: u64,
    /// The asked ids that are in the node's log under the asker's org, with their sequence.
    pub stored: Vec<StoredId>,
    /// Why the request could not be answered, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StoredId {
    pub event_id: String,
    pub sequence: u64,
}

/// What a node told of an event its asker published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Told {
    /// In the node's log at this sequence.
    Stored(u64),
    /// Not in the log of `node`, which had applied the stream past the event's message: it
    /// was rejected (the node's quarantine says why).
    Rejected { node: String },
}

impl Told {
    /// The outcome as a reply would have given it (an acceptance without its record time).
    pub fn into_result(self) -> lotline_proto::v1::outcome::Result {
        use lotline_proto::v1;
        match self {
            Told::Stored(sequence) => v1::outcome::Result::Accepted(v1::Accepted {
                sequence,
                record_time: String::new(),
            }),
            Told::Rejected { node } => v1::outcome::Result::Rejected(v1::Rejected {
                kind: "rejected".into(),
                reason: format!(
                    "not in the log of node {node}, which has applied the stream past it (`lotline rejected` there says why)"
                ),
            }),
        }
    }
}

/// Asks one node (whichever of the queue group answers first) about `ids` of `org`, whose
/// messages the stream confirmed at sequences up to `confirmed_through`. Ids the node cannot
/// tell of yet (not in its log, and not applied that far) are left out.
pub async fn ask(
    client: &Client,
    root: &str,
    org: &str,
    ids: &[String],
    confirmed_through: u64,
    timeout: std::time::Duration,
) -> Result<Vec<(String, Told)>, String> {
    let mut told = Vec::new();
    for chunk in ids.chunks(MAX_IDS) {
        let request = OutcomeRequest {
            event_ids: chunk.to_vec(),
        };
        let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        let reply = tokio::time::timeout(
            timeout,
            client.request(outcomes_subject(root, org), body.into()),
        )
        .await
        .map_err(|_| format!("no node answered within {timeout:?}"))?
        .map_err(|e| format!("no node answered: {e}"))?;
        let answer: OutcomeAnswer = serde_json::from_slice(&reply.payload)
            .map_err(|e| format!("the node's answer is not an outcome answer: {e}"))?;
        if let Some(error) = answer.error {
            return Err(format!("node {}: {error}", answer.node));
        }
        let mut stored = std::collections::HashSet::new();
        for id in answer.stored {
            stored.insert(id.event_id.clone());
            told.push((id.event_id, Told::Stored(id.sequence)));
        }
        if answer.applied_through >= confirmed_through {
            for id in chunk.iter().filter(|id| !stored.contains(*id)) {
                told.push((
                    id.clone(),
                    Told::Rejected {
                        node: answer.node.clone(),
                    },
                ));
            }
        }
    }
    Ok(told)
}

/// Answers outcome requests until `stop` turns true. Runs beside the consumer; a lost
/// connection is the client's to restore (the subscription comes back with it).
pub(crate) async fn serve(
    client: Client,
    config: NatsConfig,
    store: Store,
    applied: Arc<Applied>,
    mut stop: watch::Receiver<bool>,
) {
    let filter = outcomes_subject(&config.subject_root, "*");
    let mut requests = match client.queue_subscribe(filter.clone(), QUEUE.into()).await {
        Ok(requests) => requests,
        Err(e) => {
            warn!(cause = %e, subject = %filter, "outcome requests will not be answered");
            return;
        }
    };
    let prefix = format!("{}.outcomes.", config.subject_root);
    loop {
        let request = tokio::select! {
            _ = stop.changed() => return,
            request = requests.next() => match request {
                Some(request) => request,
                None => return,
            },
        };
        let Some(reply) = request.reply.clone() else {
            continue;
        };
        let org = request
            .subject
            .as_str()
            .strip_prefix(&prefix)
            .filter(|org| is_token(org))
            .unwrap_or_default();
        let answer = answer(&config.node_id, &store, &applied, org, &request.payload);
        let body = match serde_json::to_vec(&answer) {
            Ok(body) => body,
            Err(e) => {
                warn!(cause = %e, "outcome answer not encodable");
                continue;
            }
        };
        if let Err(e) = client.publish(reply, body.into()).await {
            debug!(cause = %e, "outcome answer not sent");
        }
    }
}

/// The answer to one request from `org`.
pub fn answer(
    node: &str,
    store: &Store,
    applied: &Applied,
    org: &str,
    payload: &[u8],
) -> OutcomeAnswer {
    let mut answer = OutcomeAnswer {
        node: node.to_string(),
        // Read first: everything at or before it is in the store when the ids are looked up.
        applied_through: applied.through(),
        ..OutcomeAnswer::default()
    };
    let request: OutcomeRequest = match serde_json::from_slice(payload) {
        Ok(request) => request,
        Err(e) => {
            answer.error = Some(format!(
                "not an outcome request (JSON {{\"eventIds\": [...]}}): {e}"
            ));
            return answer;
        }
    };
    if org.is_empty() {
        answer.error = Some("ask on lotline.outcomes.<your org>".into());
        return answer;
    }
    if request.event_ids.len() > MAX_IDS {
        answer.error = Some(format!(
            "{} event ids: ask about at most {MAX_IDS} at once",
            request.event_ids.len()
        ));
        return answer;
    }
    for id in request.event_ids {
        let found = store
            .seq_of(&id)
            .and_then(|seq| Ok(seq.map(|seq| store.event_at(seq)).transpose()?.flatten()));
        match found {
            Ok(Some(stored)) if stored.event.org == org => answer.stored.push(StoredId {
                event_id: id,
                sequence: stored.seq,
            }),
            Ok(_) => {}
            Err(e) => {
                answer.error = Some(format!("the store failed: {e}"));
                answer.stored.clear();
                return answer;
            }
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_tells_an_org_of_its_own_events_only() {
        let store = Store::in_memory();
        let applied = Applied::new(7);
        let ask = |org: &str, body: &str| answer("n1", &store, &applied, org, body.as_bytes());
        let nothing = ask("coop", r#"{"eventIds": ["h1", "h2"]}"#);
        assert_eq!(nothing.applied_through, 7);
        assert!(nothing.stored.is_empty() && nothing.error.is_none());
        assert!(ask("coop", "not json").error.is_some());
        assert!(ask("", r#"{"eventIds": []}"#).error.is_some());
        let many = serde_json::json!({ "eventIds": vec!["x"; MAX_IDS + 1] }).to_string();
        assert!(ask("coop", &many).error.unwrap().contains("at most"));
    }
}
