//! One delivered message → one [`Submission`] for the writer. Everything a
//! message can get wrong (undecodable, invalid, sent on another org's subject,
//! a `Nats-Msg-Id` that is not its event id) becomes a submission the writer
//! rejects, so it is quarantined with its reason and original bytes.

use std::collections::BTreeSet;

use async_nats::HeaderMap;
use chrono::{DateTime, TimeZone as _, Utc};
use lotline_domain::Invalid;
use lotline_service::{Credential, Identity, Role, Scope, intake};
use lotline_store::Submission;

use crate::subject::{NO_CHAIN, parse_events_subject, parse_relay_subject};

/// JetStream's de-duplication header; lotline's publishers set it to the event id.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// The `Nats-Msg-Id` of an org's event: `<org>.<event_id>`. An org is a subject token (no '.'),
/// so the org part ends at the first '.', and two orgs' messages never share an id: the stream's
/// duplicate window drops an org's own re-sends, never another org's event that re-uses an id
/// (which reaches the store and is rejected there, with a reply naming the conflict).
pub fn msg_id_of(org: &str, event_id: &str) -> String {
    format!("{org}.{event_id}")
}
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

/// On a relayed event (`lotline.relay.<chain>.<org>`), set by the node that checked the
/// caller: the caller's org, roles (comma-separated), the orgs it writes for, its token's id
/// and expiry (Unix seconds). Never the token itself.
pub const CALLER_ORG: &str = "Lotline-Caller-Org";
pub const CALLER_ROLES: &str = "Lotline-Caller-Roles";
pub const CALLER_FOR: &str = "Lotline-Caller-For";
pub const TOKEN_ID: &str = "Lotline-Token-Id";
pub const TOKEN_EXPIRES: &str = "Lotline-Token-Expires";

/// Set by JetStream on a message one stream copied from another (the hub's from a co-op
/// edge's, see [`crate::edge`]): the source's internal name, the sequence there, the source's
/// subject filters (separated by form feeds), their transforms, and the subject.
pub const STREAM_SOURCE: &str = "Nats-Stream-Source";

/// Every header lotline reads from a stream message (what fuzzing varies).
pub const READ_HEADERS: [&str; 9] = [
    STREAM_SOURCE,
    MSG_ID,
    CONTENT_TYPE,
    REPLY_TO,
    CALLER_ORG,
    CALLER_ROLES,
    CALLER_FOR,
    TOKEN_ID,
    TOKEN_EXPIRES,
];

/// Adds the caller's headers to a relayed event.
pub fn add_caller(headers: &mut HeaderMap, caller: &Identity) {
    headers.insert(CALLER_ORG, caller.org.as_str());
    let roles: Vec<&str> = caller.roles.iter().map(|r| r.as_str()).collect();
    headers.insert(CALLER_ROLES, roles.join(",").as_str());
    if !caller.on_behalf_of.is_empty() {
        let orgs: Vec<&str> = caller.on_behalf_of.iter().map(String::as_str).collect();
        headers.insert(CALLER_FOR, orgs.join(",").as_str());
    }
    if let Some(id) = &caller.token_id {
        headers.insert(TOKEN_ID, id.as_str());
    }
    if let Some(expires) = caller.expires {
        headers.insert(TOKEN_EXPIRES, expires.timestamp().to_string().as_str());
    }
}

/// The caller a relayed event names in its headers.
fn caller_of(headers: Option<&HeaderMap>) -> Result<Identity, Invalid> {
    let bad = |reason: String| Invalid::new("relay", reason);
    let org = header(headers, CALLER_ORG)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| bad(format!("a relayed event needs header {CALLER_ORG}")))?;
    let list = |name: &str| -> Vec<String> {
        header(headers, name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let roles = list(CALLER_ROLES)
        .iter()
        .map(|r| Role::parse(r).ok_or_else(|| bad(format!("{CALLER_ROLES}: {r:?} is not a role"))))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let expires = header(headers, TOKEN_EXPIRES)
        .map(|t| {
            t.trim()
                .parse::<i64>()
                .ok()
                .and_then(|s| Utc.timestamp_opt(s, 0).single())
                .ok_or_else(|| bad(format!("{TOKEN_EXPIRES}: {t:?} is not Unix seconds")))
        })
        .transpose()?;
    let token_id = header(headers, TOKEN_ID).map(str::to_string);
    Ok(Identity {
        org: org.to_string(),
        roles,
        scope: Scope::default(),
        on_behalf_of: list(CALLER_FOR).into_iter().collect(),
        credential: if token_id.is_some() {
            Credential::Token
        } else {
            Credential::Certificate
        },
        token_id,
        expires,
    })
}

/// The token id a relayed message names, if it is one.
pub fn relayed_token<'h>(
    root: &str,
    subject: &str,
    headers: Option<&'h HeaderMap>,
) -> Option<&'h str> {
    parse_relay_subject(root, subject)?;
    header(headers, TOKEN_ID)
}

/// The value of header `name`, if present.
pub fn header<'h>(headers: Option<&'h HeaderMap>, name: &str) -> Option<&'h str> {
    headers?.get(name).map(|v| v.as_str())
}

/// Decodes and checks one message. `enforce_roles`: an org publishing on its own subject may
/// record what a member may, and relayed events what their caller may (`serve --auth`).
///
/// A relayed event is decided from the stream alone: its caller's rights as its headers
/// name them, its token's expiry against the stream's timestamp `record_time` (never this
/// node's clock); revocations are checked by the consumer, which knows the log before it.
pub fn submission(
    root: &str,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: &[u8],
    record_time: DateTime<Utc>,
    enforce_roles: bool,
) -> Submission {
    let msg_id = header(headers, MSG_ID).unwrap_or_default();
    let is_json = header(headers, CONTENT_TYPE)
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with(JSON));
    let relayed = parse_relay_subject(root, subject);
    let subject_tokens = parse_events_subject(root, subject).or(relayed);
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
        let org = subject_tokens.map(|(_, org)| org).unwrap_or_default();
        let id = msg_id
            .strip_prefix(org)
            .and_then(|rest| rest.strip_prefix('.'));
        submission.event_id = id.unwrap_or(msg_id).to_string();
    }
    if submission.org.is_empty()
        && let Some((_, org)) = subject_tokens
    {
        submission.org = org.to_string();
    }
    if let Ok(event) = &submission.event
        && let Err(why) = check_envelope(root, subject, subject_tokens, msg_id, event)
            .and_then(|()| check_source(subject, header(headers, STREAM_SOURCE)))
    {
        submission.event = Err(why);
    }
    let caller = if relayed.is_some() {
        caller_of(headers)
    } else {
        // An org's own publish: the org of its subject, as a member.
        Ok(Identity {
            org: subject_tokens
                .map(|(_, org)| org)
                .unwrap_or_default()
                .to_string(),
            roles: [Role::Member].into_iter().collect(),
            scope: Scope::default(),
            on_behalf_of: BTreeSet::new(),
            token_id: None,
            expires: None,
            credential: Credential::Certificate,
        })
    };
    if relayed.is_some() || enforce_roles {
        match &caller {
            // Whatever goes wrong is quarantined under the caller, not the org it names.
            Ok(caller) => submission.org = caller.org.clone(),
            Err(why) => submission.event = Err(why.clone()),
        }
    }
    if let (Ok(event), Ok(caller)) = (&submission.event, &caller) {
        if relayed.is_some()
            && let Some(expires) = caller.expires
            && expires <= record_time
        {
            submission.event = Err(Invalid::new(
                "token",
                format!(
                    "the caller's token expired at {expires} before the stream took the event ({record_time})"
                ),
            ));
        } else if (relayed.is_some() || enforce_roles)
            && let Some(reason) = caller.may_not_record(event)
        {
            submission.event = Err(Invalid::new("caller", reason));
        }
    }
    submission
}

/// A copied message must be on a subject its source copies. The receiving server writes the
/// filters from its own configuration of the source (`lotline edge link`: the co-op's own
/// subjects), while the subject comes from the other side, whose server a co-op controls: a
/// doctored edge server could otherwise hand the hub an event on another org's subject.
fn check_source(subject: &str, source: Option<&str>) -> Result<(), Invalid> {
    let Some(source) = source else {
        return Ok(());
    };
    // Servers before 2.10 write only the source's name and sequence: no filters to hold to.
    let Some(filters) = source.split(' ').nth(2).filter(|f| !f.is_empty()) else {
        return Ok(());
    };
    if filters
        .split('\u{c}')
        .any(|filter| crate::subject::matches(filter, subject))
    {
        return Ok(());
    }
    Err(Invalid::new(
        "subject",
        format!(
            "{subject:?} came from a stream source that copies only {:?}",
            filters.split('\u{c}').collect::<Vec<_>>()
        ),
    ))
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
            format!(
                "{subject:?} is not {root}.events.<chain>.<org> (or a node's {root}.relay.<chain>.<org>)"
            ),
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
    // Master data travels on the `none` chain subject whatever chain it names (subject::chain_token).
    if let Some(event_chain) = event.chain
        && event_chain.as_str() != chain
        && !(chain == NO_CHAIN && event.kind_name().is_master_data())
    {
        return Err(Invalid::new(
            "chain",
            format!(
                "the event's chain {:?} is not the chain of subject {subject:?}",
                event_chain.as_str()
            ),
        ));
    }
    // The bare event id is what earlier releases published: still read, so that a stream they
    // wrote replays alike on every node, but it leaves the sender's events to the window.
    if !msg_id.is_empty() && msg_id != event.id && msg_id != msg_id_of(&event.org, &event.id) {
        return Err(Invalid::new(
            "event_id",
            format!(
                "header {MSG_ID} {msg_id:?} is not {:?}, the org and event_id (re-sends must keep both)",
                msg_id_of(&event.org, &event.id)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
