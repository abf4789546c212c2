//! Who may do what (DESIGN §5a). A caller is whoever its credential says: a token's org, roles
//! and scope, or a client certificate's subject; never what its events say. Every use case asks
//! the [`Caller`] here, and the view of every answer is decided here from the caller.
//!
//! | role        | records                                              | reads                                                  |
//! |-------------|------------------------------------------------------|--------------------------------------------------------|
//! | `member`    | events of its own org (and of `on_behalf_of` orgs)   | its own events in full; lots it handled in the partner view; the rest public; its own ledgers, anomalies, quarantine |
//! | `certifier` | as a member, and Certify events about other orgs     | as a member                                            |
//! | `auditor`   | nothing                                              | everything in its scope in full (reads are logged)     |
//! | `admin`     | org registrations and token revocations              | as a member                                            |
//! | anonymous   | nothing                                              | the public view of lots, traces, EUDR, proofs (only with `--public-reads`) |

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use lotline_domain::{Chain, Event, EventKind};

use crate::ServiceError;
use crate::tokens::ScopeClaim;
use crate::views::{Level, PublicGeometry, View};

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Records its own org's events; reads what it handled.
    Member,
    /// A member that may also certify other orgs.
    Certifier,
    /// Reads everything in its scope; records nothing.
    Auditor,
    /// Registers orgs and revokes tokens; records nothing else.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Member, Role::Certifier, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Certifier => "certifier",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        let text = text.trim().to_ascii_lowercase();
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// What an auditor may read in full: orgs, chains and a period (each unrestricted when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub orgs: BTreeSet<String>,
    pub chains: BTreeSet<Chain>,
    pub from: Option<DateTime<FixedOffset>>,
    pub to: Option<DateTime<FixedOffset>>,
}

impl Scope {
    pub fn from_claim(claim: &ScopeClaim) -> Result<Scope, String> {
        let time = |field: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| {
                    DateTime::parse_from_rfc3339(t)
                        .map_err(|_| format!("scope {field}: {t:?} is not an RFC 3339 time"))
                })
                .transpose()
        };
        let chains = claim
            .chains
            .iter()
            .map(|c| Chain::parse(c).ok_or_else(|| format!("scope chain {c:?} is not a chain")))
            .collect::<Result<_, _>>()?;
        Ok(Scope {
            orgs: claim.orgs.iter().cloned().collect(),
            chains,
            from: time("from", &claim.from)?,
            to: time("to", &claim.to)?,
        })
    }

    /// Whether the scope is unrestricted.
    pub fn is_everything(&self) -> bool {
        self == &Scope::default()
    }

    pub fn covers_org(&self, org: &str) -> bool {
        self.orgs.is_empty() || self.orgs.contains(org)
    }

    /// Whether an event is inside the scope: its org, its chain (events of no chain, master
    /// data, are in every chain) and its time.
    pub fn covers(&self, event: &Event) -> bool {
        self.covers_org(&event.org)
            && (self.chains.is_empty() || event.chain.is_none_or(|c| self.chains.contains(&c)))
            && self.from.is_none_or(|f| event.time >= f)
            && self.to.is_none_or(|t| event.time < t)
    }
}

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Token,
    Certificate,
}

/// A party: an org, its roles, and what it may read and write for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub org: String,
    pub roles: BTreeSet<Role>,
    /// What an auditor reads in full.
    pub scope: Scope,
    /// Orgs this party may write for, besides its own (integrators).
    pub on_behalf_of: BTreeSet<String>,
    /// The token's id (none for a certificate).
    pub token_id: Option<String>,
    /// When the token expires (none for a certificate, whose validity TLS checked).
    pub expires: Option<DateTime<Utc>>,
    pub credential: Credential,
}

impl Identity {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether this party records events as `org`.
    fn writes_for(&self, org: &str) -> bool {
        (self.has(Role::Member) || self.has(Role::Certifier))
            && (org == self.org || self.on_behalf_of.contains(org))
    }

    /// Whether this party reads `org`'s ledgers, anomalies and quarantine.
    pub fn reads_books_of(&self, org: &str) -> bool {
        org == self.org || (self.has(Role::Auditor) && self.scope.covers_org(org))
    }

    /// Why this party may not record `event`, if it may not.
    pub fn may_not_record(&self, event: &Event) -> Option<String> {
        let roles = || {
            self.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &event.kind {
            EventKind::RevokeToken(_) if !self.has(Role::Admin) => Some(format!(
                "only an admin revokes tokens; {} is {}",
                self.org,
                roles()
            )),
            EventKind::RevokeToken(_) => (event.org != self.org).then(|| {
                format!(
                    "a revocation is recorded as the admin's own org {:?}, not {:?}",
                    self.org, event.org
                )
            }),
            EventKind::Review(_) if !self.has(Role::Auditor) => Some(format!(
                "only an auditor reviews anomalies; {} is {}",
                self.org,
                roles()
            )),
            EventKind::Review(_) => (event.org != self.org).then(|| {
                format!(
                    "a review is recorded as the auditor's own org {:?}, not {:?}",
                    self.org, event.org
                )
            }),
            EventKind::RegisterOrg(_) => {
                let integrator =
                    self.on_behalf_of.contains(&event.org) && self.writes_for(&event.org);
                (!(self.has(Role::Admin) || integrator)).then(|| {
                format!(
                    "only an admin (or an integrator writing for {:?}) registers orgs; {} is {}",
                    event.org,
                    self.org,
                    roles()
                )
                })
            }
            kind => {
                if !self.writes_for(&event.org) {
                    return Some(if self.has(Role::Member) || self.has(Role::Certifier) {
                        format!(
                            "the event's org is {:?}, but this credential speaks for {:?}{}",
                            event.org,
                            self.org,
                            if self.on_behalf_of.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    " (and writes for {})",
                                    self.on_behalf_of
                                        .iter()
                                        .cloned()
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        )
                    } else {
                        format!(
                            "{} is {}, which records no {} events",
                            self.org,
                            roles(),
                            event.kind_name()
                        )
                    });
                }
                match kind {
                    EventKind::Certify(c)
                        if c.subject_org.as_ref().is_some_and(|s| *s != event.org)
                            && !self.has(Role::Certifier) =>
                    {
                        Some(format!(
                            "only a certifier certifies another org ({:?}); {} is {}",
                            c.subject_org.as_deref().unwrap_or_default(),
                            self.org,
                            roles()
                        ))
                    }
                    _ => None,
                }
            }
        }
    }
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A server without access control (`serve` without `--auth`, on loopback): everyone may do
    /// everything, as before access control.
    Open,
    /// No credential, on a server with `--public-reads`: the public view of a few questions.
    Anonymous,
    /// A credential's holder.
    Party(Arc<Identity>),
}

/// Who asks, and which view it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub who: Who,
    /// The caller asked for the public view (it never gets more than it asked for).
    pub asked_public: bool,
    /// How the public view shows plot geometry (`serve --public-geometry`).
    pub public_geometry: PublicGeometry,
    /// When the caller stops waiting (its gRPC deadline): work for it stops there.
    pub deadline: Option<std::time::Instant>,
    /// When walks stop and answer partly, so the answer reaches the caller before its
    /// deadline (nine tenths of the way there).
    pub answer_by: Option<std::time::Instant>,
    /// The connection the request came on (`ip:port`), which counts as the caller for the
    /// limit on questions at once when it has no credential.
    pub peer: Option<String>,
}

/// Who a question is for, as the read pool counts callers, and when it stops.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    pub key: String,
    pub deadline: Option<std::time::Instant>,
}

impl Default for Caller {
    fn default() -> Self {
        Caller::open(false)
    }
}

impl Caller {
    /// A caller on a server without access control, asking for the full view or the public one.
    pub fn open(public: bool) -> Self {
        Caller {
            who: Who::Open,
            asked_public: public,
            public_geometry: PublicGeometry::default(),
            deadline: None,
            answer_by: None,
            peer: None,
        }
    }

    /// A caller on a server without access control (the name it had before access control).
    pub fn with_view(public: bool) -> Self {
        Caller::open(public)
    }

    /// A caller with no credential.
    pub fn anonymous(public_geometry: PublicGeometry) -> Self {
        Caller {
            who: Who::Anonymous,
            asked_public: true,
            public_geometry,
            deadline: None,
            answer_by: None,
            peer: None,
        }
    }

    /// A credential's holder.
    pub fn party(identity: Arc<Identity>, public: bool, public_geometry: PublicGeometry) -> Self {
        Caller {
            who: Who::Party(identity),
            asked_public: public,
            public_geometry,
            deadline: None,
            answer_by: None,
            peer: None,
        }
    }

    /// The same caller, who stops waiting at `deadline`.
    pub fn until(mut self, deadline: Option<std::time::Instant>) -> Self {
        let now = std::time::Instant::now();
        self.deadline = deadline;
        self.answer_by = deadline.map(|d| now + d.saturating_duration_since(now) * 9 / 10);
        self
    }

    /// The same caller, on the connection from `peer`.
    pub fn from_peer(mut self, peer: Option<String>) -> Self {
        self.peer = peer;
        self
    }

    /// Who the caller is for the limit on questions at once: its org when it has a credential,
    /// else its connection.
    pub fn limit_key(&self) -> String {
        match (&self.who, &self.peer) {
            (Who::Party(id), _) => format!("org {}", id.org),
            (_, Some(peer)) => format!("connection {peer}"),
            (Who::Anonymous, None) => "anonymous".into(),
            (Who::Open, None) => "local".into(),
        }
    }

    /// What the read pool needs of this caller.
    pub(crate) fn reading(&self) -> Reading {
        Reading {
            key: self.limit_key(),
            deadline: self.deadline,
        }
    }

    /// The caller's identity, shared (for a recorder that relays it).
    pub fn identity_arc(&self) -> Option<Arc<Identity>> {
        match &self.who {
            Who::Party(id) => Some(id.clone()),
            _ => None,
        }
    }

    pub fn identity(&self) -> Option<&Identity> {
        match &self.who {
            Who::Party(id) => Some(id),
            _ => None,
        }
    }

    /// Who the caller is, for logs.
    pub fn describe(&self) -> String {
        match &self.who {
            Who::Open => "open".into(),
            Who::Anonymous => "anonymous".into(),
            Who::Party(id) => format!(
                "{} ({}; {})",
                id.org,
                id.roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                id.token_id
                    .as_deref()
                    .map_or("certificate".to_string(), |t| format!("token {t}"))
            ),
        }
    }

    /// Refuses an anonymous caller: the question needs a credential.
    pub fn party_only(&self, what: &str) -> Result<(), ServiceError> {
        match self.who {
            Who::Anonymous => Err(ServiceError::Unauthenticated(format!(
                "{what} needs a credential (a bearer token or a client certificate); anonymous callers get only the public view of lots, traces, EUDR verdicts and proofs"
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the caller is entitled to the whole log as it is (leaf bytes, log entries).
    pub fn sees_everything(&self) -> bool {
        match &self.who {
            Who::Open => !self.asked_public,
            Who::Anonymous => false,
            Who::Party(id) => {
                !self.asked_public && id.has(Role::Auditor) && id.scope.is_everything()
            }
        }
    }

    /// Refuses a caller that may not read `org`'s books (ledgers, anomalies, quarantine).
    pub fn books_of(&self, org: &str, what: &str) -> Result<(), ServiceError> {
        self.party_only(what)?;
        match &self.who {
            Who::Party(id) if !id.reads_books_of(org) => {
                Err(ServiceError::PermissionDenied(format!(
                    "{what} of {org:?}: {} may read only its own{}",
                    id.org,
                    if id.has(Role::Auditor) {
                        " and those in its audit scope"
                    } else {
                        ""
                    }
                )))
            }
            _ => Ok(()),
        }
    }

    /// Whether the caller reads `org`'s books (for filtering listings).
    pub fn reads_books_of(&self, org: &str) -> bool {
        match &self.who {
            Who::Open => true,
            Who::Anonymous => false,
            Who::Party(id) => id.reads_books_of(org),
        }
    }

    /// The view of an answer. `handled`: the caller's org created, held or received the lot
    /// the question is about (its partner view, with plots at full precision, for due
    /// diligence).
    pub fn view(&self, handled: bool) -> View {
        let public = |own: Option<String>| View {
            level: Level::Public,
            own,
            full_scope: None,
            geometry: self.public_geometry,
        };
        match &self.who {
            Who::Open if self.asked_public => public(None),
            Who::Open => View::full(),
            Who::Anonymous => public(None),
            Who::Party(_) if self.asked_public => public(None),
            Who::Party(id) => {
                let auditor = id.has(Role::Auditor);
                let level = if auditor && id.scope.is_everything() {
                    Level::Full
                } else if handled || auditor {
                    Level::Partner
                } else {
                    Level::Public
                };
                View {
                    level,
                    own: Some(id.org.clone()),
                    full_scope: auditor.then(|| id.scope.clone()),
                    geometry: self.public_geometry,
                }
            }
        }
    }

    /// The org whose involvement in a lot raises the view, if any.
    pub fn org(&self) -> Option<&str> {
        self.identity().map(|id| id.org.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use lotline_domain::{Certify, OrgRole, RegisterOrg, RevokeToken};

    use super::*;

    fn party(org: &str, roles: &[Role]) -> Identity {
        Identity {
            org: org.into(),
            roles: roles.iter().copied().collect(),
            scope: Scope::default(),
            on_behalf_of: BTreeSet::new(),
            token_id: Some("t1".into()),
            expires: None,
            credential: Credential::Token,
        }
    }

    fn event(org: &str, kind: EventKind) -> Event {
        Event {
            id: "e1".into(),
            time: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap(),
            org: org.into(),
            chain: None,
            site: None,
            extensions: BTreeMap::new(),
            kind,
        }
    }

    fn register() -> EventKind {
        EventKind::RegisterOrg(RegisterOrg {
            name: "A".into(),
            role: OrgRole::Cooperative,
            country: "GH".into(),
            gln: None,
            member_of: None,
            party: None,
        })
    }

    fn certify(subject: &str) -> EventKind {
        EventKind::Certify(Certify {
            standard: "fairtrade".into(),
            certificate_id: "c1".into(),
            products: Vec::new(),
            valid_from: None,
            valid_to: None,
            outcome: "certified".into(),
            lot: None,
            subject_org: Some(subject.into()),
        })
    }

    #[test]
    fn roles_record_what_the_table_says() {
        let member = party("a", &[Role::Member]);
        let certifier = party("cert", &[Role::Certifier]);
        let auditor = party("aud", &[Role::Auditor]);
        let admin = party("adm", &[Role::Admin]);
        let revoke = EventKind::RevokeToken(RevokeToken {
            token_id: "t".into(),
            reason: String::new(),
        });
        let review = EventKind::Review(lotline_domain::Review {
            anomaly: lotline_domain::anomaly::anomaly_id(
                lotline_domain::AnomalyKind::UnknownOrigin,
                "e1",
                "LOT-1",
            ),
            verdict: lotline_domain::Verdict::Disputed,
            note: "a pallet".into(),
        });
        let cases: Vec<(&Identity, Event, bool)> = vec![
            (&auditor, event("aud", review.clone()), true),
            (&auditor, event("a", review.clone()), false),
            (&member, event("a", review.clone()), false),
            (&admin, event("adm", review), false),
            (&member, event("a", certify("a")), true),
            (&member, event("b", certify("b")), false),
            (&member, event("a", certify("b")), false),
            (&certifier, event("cert", certify("b")), true),
            (&certifier, event("b", certify("b")), false),
            (&auditor, event("aud", certify("aud")), false),
            (&admin, event("new-org", register()), true),
            (&admin, event("adm", certify("adm")), false),
            (&admin, event("adm", revoke.clone()), true),
            (&admin, event("a", revoke.clone()), false),
            (&member, event("a", register()), false),
            (&member, event("a", revoke), false),
        ];
        for (who, e, allowed) in cases {
            assert_eq!(
                who.may_not_record(&e).is_none(),
                allowed,
                "{} {:?} recording {} as {}",
                who.org,
                who.roles,
                e.kind_name(),
                e.org
            );
        }
    }

    #[test]
    fn an_integrator_writes_for_its_listed_orgs_only() {
        let mut coop = party("coop", &[Role::Member]);
        coop.on_behalf_of.insert("farm-1".into());
        assert!(coop.may_not_record(&event("farm-1", register())).is_none());
        assert!(
            coop.may_not_record(&event("farm-1", certify("farm-1")))
                .is_none()
        );
        assert!(
            coop.may_not_record(&event("farm-2", certify("farm-2")))
                .is_some()
        );
    }

    #[test]
    fn the_server_decides_the_view() {
        let member = Arc::new(party("a", &[Role::Member]));
        let caller = Caller::party(member.clone(), false, PublicGeometry::Exact);
        assert_eq!(caller.view(false).level, Level::Public);
        assert_eq!(caller.view(true).level, Level::Partner);
        let auditor = Arc::new(party("aud", &[Role::Auditor]));
        let caller = Caller::party(auditor, false, PublicGeometry::Exact);
        assert_eq!(caller.view(false).level, Level::Full);
        let asked_public = Caller::party(member, true, PublicGeometry::Exact);
        assert_eq!(asked_public.view(true).level, Level::Public);
        assert_eq!(
            Caller::anonymous(PublicGeometry::Exact).view(true).level,
            Level::Public
        );
        assert_eq!(Caller::open(false).view(false).level, Level::Full);
    }
}
