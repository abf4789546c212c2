//! One delivered message → one [`Submission`] for the writer. Everything a
//! message can get wrong (undecodable, invalid, sent on another org's subject,
//! a `Nats-Msg-Id` that is not its event id) becomes a submission the writer
//! rejects, so it is quarantined with its reason and original bytes.

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use lotline_domain::Invalid;
use lotline_service::intake;
use lotline_store::Submission;

use crate::subject::parse_events_subject;

/// JetStream's de-duplication header; lotline's publishers set it to the event id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// `application/json` marks the proto3 JSON form; anything else is protobuf.
pub const CONTENT_TYPE: &str = "Content-Type";
pub const JSON: &str = "application/json";
/// A subject the publisher wants each node's outcome for this event sent to;
/// it must start with [`REPLY_PREFIX`] (a client's inbox), else it is ignored.
pub const REPLY_TO: &str = "Lotline-Reply-To";
pub const REPLY_PREFIX: &str = "_INBOX.";
/// Set on announcements and outcome replies: the node that sent them.
pub const NODE: &str = "Lotline-Node";

/// Where a submission came from, in the quarantine.
pub const SOURCE: &str = "nats";

/// The value of header `name`, if present.
pub fn header<'h>(headers: Option<&'h HeaderMap>, name: &str) -> Option<&'h str> {
    headers?.get(name).map(|v| v.as_str())
}

/// Decodes and checks one message.
pub fn submission(
    root: &str,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
    record_time: DateTime<Utc>,
) -> Submission {
    let msg_id = header(headers, MSG_ID).unwrap_or_default();
    let is_json = header(headers, CONTENT_TYPE)
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with(JSON));
    let subject_tokens = parse_events_subject(root, subject);
    let mut submission = if is_json {
        match std::str::from_utf8(payload) {
            Ok(text) => intake::from_json(text.trim(), SOURCE),
            Err(e) => intake::invalid(
                "payload",
                format!("JSON payload is not UTF-8: {e}"),
                payload,
                SOURCE,
            ),
        }
    } else {
        intake::from_protobuf(
            payload,
            SOURCE,
            &format!("; JSON events need header {CONTENT_TYPE}: {JSON}"),
        )
    };
    submission.payload = payload.to_vec();
    submission.record_time = Some(record_time);
    if submission.event_id.is_empty() {
        submission.event_id = msg_id.to_string();
    }
    if submission.org.is_empty()
        && let Some((_, org)) = subject_tokens
    {
        submission.org = org.to_string();
    }
    if let Ok(event) = &submission.event
        && let Err(why) = check_envelope(root, subject, subject_tokens, msg_id, event)
    {
        submission.event = Err(why);
    }
    submission
}

/// The subject and headers must agree with the event they carry.
fn check_envelope(
    root: &str,
    subject: &str,
    tokens: Option<(&str, &str)>,
    msg_id: &str,
    event: &lotline_domain::Event,
) -> Result<(), Invalid> {
    let Some((chain, org)) = tokens else {
        return Err(Invalid::new(
            "subject",
            format!("{subject:?} is not {root}.events.<chain>.<org>"),
        ));
    };
    if org != event.org {
        return Err(Invalid::new(
            "org",
            format!(
                "the event's org {:?} is not the org of subject {subject:?}: an org publishes only on its own subjects",
                event.org
            ),
        ));
    }
    if let Some(event_chain) = event.chain
        && event_chain.as_str() != chain
    {
        return Err(Invalid::new(
            "chain",
            format!(
                "the event's chain {:?} is not the chain of subject {subject:?}",
                event_chain.as_str()
            ),
        ));
    }
    if !msg_id.is_empty() && msg_id != event.id {
        return Err(Invalid::new(
            "event_id",
            format!(
                "header {MSG_ID} {msg_id:?} is not the event_id {:?} (re-sends must keep both equal)",
                event.id
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
