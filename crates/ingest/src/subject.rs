//! lotline's subjects: `lotline.events.<chain>.<org>` for events an org publishes itself,
//! `lotline.relay.<chain>.<org>` for events a node relays for an authenticated gRPC caller
//! (only node users may publish there), and `lotline.rejected.<org>` for rejections. The org
//! token lets NATS permissions confine each org to its own subjects.

/// The chain token of events that belong to no chain (master data, certificates).
pub const NO_CHAIN: &str = "none";

/// Whether `token` can be one token of a subject or a consumer name: not empty,
/// no '.', no wildcard, no whitespace or control characters.
pub fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 255
        && token
            .chars()
            .all(|c| !(c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control()))
}

/// Whether `subject` is a literal subject to publish on: dot-separated tokens.
pub fn is_subject(subject: &str) -> bool {
    subject.split('.').all(is_token)
}

/// The chain token an event is published under: `none` for master data (registrations,
/// certificates, memberships, revocations: [`lotline_domain::KindName::is_master_data`]) so
/// that an edge can source all of it with one filter, else the event's chain.
pub fn chain_token(kind: lotline_domain::KindName, chain: Option<&str>) -> Option<&str> {
    if kind.is_master_data() { None } else { chain }
}

/// The subject an org publishes an event on.
pub fn events_subject(root: &str, chain: Option<&str>, org: &str) -> Result<String, String> {
    let chain = chain.unwrap_or(NO_CHAIN);
    if !is_token(org) {
        return Err(format!(
            "org {org:?} cannot be a NATS subject token (no '.', '*', '>' or spaces)"
        ));
    }
    Ok(format!("{root}.events.{chain}.{org}"))
}

/// The subject a node relays an authenticated caller's event on.
pub fn relay_subject(root: &str, chain: Option<&str>, org: &str) -> Result<String, String> {
    let events = events_subject(root, chain, org)?;
    Ok(events.replacen(".events.", ".relay.", 1))
}

/// The chain and org tokens of an events subject, if it has that shape.
pub fn parse_events_subject<'s>(root: &str, subject: &'s str) -> Option<(&'s str, &'s str)> {
    parse_kind_subject(root, "events", subject)
}

/// The chain and org tokens of a relay subject, if it has that shape.
pub fn parse_relay_subject<'s>(root: &str, subject: &'s str) -> Option<(&'s str, &'s str)> {
    parse_kind_subject(root, "relay", subject)
}

fn parse_kind_subject<'s>(root: &str, kind: &str, subject: &'s str) -> Option<(&'s str, &'s str)> {
    let rest = subject
        .strip_prefix(root)?
        .strip_prefix('.')?
        .strip_prefix(kind)?
        .strip_prefix('.')?;
    let (chain, org) = rest.split_once('.')?;
    (is_token(chain) && is_token(org)).then_some((chain, org))
}

/// Whether `subject` is one of those `filter` names (`*` one token, a final `>` one or more).
pub fn matches(filter: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for want in filter.split('.') {
        match (want, tokens.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (want, Some(token)) if want == token => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// Where rejections of an org's events are announced. An org that cannot be a
/// token (the event named none, or an impossible one) is announced under `_`.
pub fn rejected_subject(root: &str, org: &str) -> String {
    let org = if is_token(org) { org } else { "_" };
    format!("{root}.rejected.{org}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_nats_matches_them() {
        assert!(matches(
            "lotline.events.*.coop",
            "lotline.events.cocoa.coop"
        ));
        assert!(!matches(
            "lotline.events.*.coop",
            "lotline.events.cocoa.other"
        ));
        assert!(!matches(
            "lotline.events.*.coop",
            "lotline.events.cocoa.coop.x"
        ));
        assert!(!matches("lotline.events.*.coop", "lotline.events.coop"));
        assert!(matches("lotline.*.none.>", "lotline.relay.none.brand"));
        assert!(!matches("lotline.*.none.>", "lotline.relay.none"));
        assert!(matches(">", "anything.at.all"));
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
    }

    #[test]
    fn relay_subjects_round_trip() {
        let s = relay_subject("lotline", Some("cocoa"), "coop-a").expect("subject");
        assert_eq!(s, "lotline.relay.cocoa.coop-a");
        assert_eq!(
            parse_relay_subject("lotline", &s),
            Some(("cocoa", "coop-a"))
        );
        assert_eq!(parse_events_subject("lotline", &s), None);
        assert_eq!(
            parse_relay_subject("lotline", "lotline.events.cocoa.coop-a"),
            None
        );
    }

    #[test]
    fn subjects_round_trip_and_refuse_bad_tokens() {
        let s = events_subject("lotline", Some("cocoa"), "coop-a").expect("subject");
        assert_eq!(s, "lotline.events.cocoa.coop-a");
        assert_eq!(
            parse_events_subject("lotline", &s),
            Some(("cocoa", "coop-a"))
        );
        assert_eq!(
            events_subject("lotline", None, "brand").expect("subject"),
            "lotline.events.none.brand"
        );
        assert!(events_subject("lotline", Some("cocoa"), "a.b").is_err());
        assert!(events_subject("lotline", Some("cocoa"), "a b").is_err());
        assert!(events_subject("lotline", Some("cocoa"), "").is_err());
        assert_eq!(
            parse_events_subject("lotline", "lotline.events.cocoa"),
            None
        );
        assert_eq!(
            parse_events_subject("lotline", "lotline.events.cocoa.a.b"),
            None
        );
        assert_eq!(
            parse_events_subject("lotline", "other.events.cocoa.a"),
            None
        );
        assert_eq!(
            rejected_subject("lotline", "coop-a"),
            "lotline.rejected.coop-a"
        );
        assert_eq!(rejected_subject("lotline", ""), "lotline.rejected._");
        assert_eq!(rejected_subject("lotline", "x.y"), "lotline.rejected._");
    }
}
