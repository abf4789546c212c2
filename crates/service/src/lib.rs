//! lotline's use cases: the one place where "what does this caller get for this question" is
//! decided, for every door (gRPC today, HTTP next).
//!
//! Each question or command is one method of [`Service`]: it takes the [`Caller`] and the request
//! in domain terms ([`args`] parses callers' strings into them), reads one snapshot of the log on
//! a blocking thread, calls the domain and returns a complete domain answer, with the caller's
//! view applied ([`views`]). The doors translate requests and answers and map [`ServiceError`]
//! once; they hold no rules of their own.
//!
//! - [`intake`]: events as sent (protobuf, proto3 JSON) → submissions; the [`Recorder`] that
//!   takes them to the log (the store's writer, or the NATS stream) and its [`WriteError`].
//! - [`queries`]: lots, lineage, events, audit answers, master data, the log's proofs.
//! - [`access`]: who the caller is (its credential, checked by [`Service::authenticate`]) and
//!   what it may record and read; [`tokens`]: the signed access tokens that say so.
//! - [`views`]: the full, partner and public views, applied to answers in one place.

pub mod access;
pub mod args;
pub mod capture;
mod error;
pub mod intake;
mod pool;
pub mod queries;
pub mod standing;
pub mod tokens;
pub mod views;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::Utc;
use lotline_domain::audit::rules::Rules;
use lotline_domain::{Outcome, RevokeToken};
use lotline_merkle::Signer;
use lotline_store::{Snapshot, Store, Submission};
use tracing::{info, warn};

pub use access::{Caller, Credential, Identity, Role, Scope, Who};
pub use error::ServiceError;
pub use intake::{BoxFuture, QueuedOutcomes, Recorder, WriteError};
pub use pool::ReadLimits;
pub use views::{Level, PublicGeometry, View};

/// The extension an event written by one org for another carries: who wrote it.
pub const EXT_RECORDED_BY: &str = "lotline:recordedBy";

/// The most events one batch may carry.
pub const MAX_BATCH: usize = 10_000;

/// What the use cases need once the store is open.
#[derive(Clone)]
pub struct Ready {
    pub store: Store,
    /// Where writes go: the writer itself, or the NATS stream it consumes.
    pub recorder: Arc<dyn Recorder>,
    /// Signs checkpoints; its name is the log's origin.
    pub signer: Arc<Signer>,
    /// Why writes are refused (the store failed its integrity check), if they are.
    pub writes_refused: Option<String>,
    /// Conversion bands and reference prices the audit answers apply.
    pub rules: Arc<Rules>,
    /// Where the maintained audit state is kept across restarts ([`queries::kept`]); `None`
    /// keeps it in memory only.
    pub audit_state: Option<std::path::PathBuf>,
}

/// Set once, when the store is open (or has failed to open, with the reason); shared by every
/// door.
pub type ReadyCell = Arc<OnceLock<Result<Ready, String>>>;

/// How a server decides who its callers are (`serve --auth`, `--public-reads`,
/// `--public-geometry`).
#[derive(Debug, Default)]
pub struct Access {
    /// Checks bearer tokens; `None`: no access control (everyone may do everything).
    pub verifier: Option<tokens::Verifier>,
    /// Callers without a credential get the public view of lots, traces, EUDR and proofs.
    pub public_reads: bool,
    /// How the public view shows plot geometry.
    pub public_geometry: PublicGeometry,
}

/// What a door found on a request that says who sent it.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The bearer token of `authorization: Bearer …`.
    pub bearer: Option<String>,
    /// The subject of a client certificate the TLS handshake verified against `--client-ca`.
    pub certificate: Option<CertificateSubject>,
}

/// A client certificate's subject as lotline reads it: the common name is the org, each
/// organisational unit a role (`member` when there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSubject {
    pub org: String,
    pub units: Vec<String>,
}

impl CertificateSubject {
    /// The subject of a client certificate (DER) the TLS handshake verified; every door reads
    /// certificates this way.
    pub fn from_der(der: &[u8]) -> Result<CertificateSubject, ServiceError> {
        let unauthenticated =
            |m: String| ServiceError::Unauthenticated(format!("client certificate: {m}"));
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| unauthenticated(format!("unreadable: {e}")))?;
        let subject = cert.subject();
        let text = |attr: &x509_parser::x509::AttributeTypeAndValue<'_>| {
            attr.as_str()
                .map(str::to_string)
                .map_err(|_| unauthenticated("a subject attribute is not text".into()))
        };
        let org = match subject.iter_common_name().next() {
            Some(cn) => text(cn)?,
            None => {
                return Err(unauthenticated(
                    "the subject has no common name (CN = the org)".into(),
                ));
            }
        };
        let units = subject
            .iter_organizational_unit()
            .map(text)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CertificateSubject { org, units })
    }
}

/// The use cases, shared by every door. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    cell: ReadyCell,
    /// The last anomaly listing and the log size it was computed at.
    listing: Arc<queries::audit::ListingCache>,
    access: Arc<Access>,
    /// Requests refused for a bad or missing credential or a missing right.
    refusals: Arc<AtomicU64>,
    /// The most lots one trace or recall walks (`serve --max-walk`).
    max_walk: usize,
    /// Where questions run, and how many one caller may ask at once.
    reads: Arc<pool::ReadPool>,
    /// EPCIS capture jobs.
    captures: Arc<capture::Captures>,
    /// Named queries and subscriptions.
    standing: Arc<standing::Standing>,
    /// Where webhook subscriptions may deliver.
    webhooks: Arc<standing::WebhookAllow>,
}

/// The default [`Service::with_max_walk`].
pub const DEFAULT_MAX_WALK: usize = 100_000;

impl Service {
    /// The use cases without access control.
    pub fn new(cell: ReadyCell) -> Self {
        Service::with_access(cell, Access::default())
    }

    /// The use cases, deciding callers as `access` says.
    pub fn with_access(cell: ReadyCell, access: Access) -> Self {
        Service {
            cell,
            listing: Arc::default(),
            access: Arc::new(access),
            refusals: Arc::default(),
            max_walk: DEFAULT_MAX_WALK,
            reads: Arc::new(pool::ReadPool::new(ReadLimits::default())),
            captures: Arc::default(),
            standing: Arc::default(),
            webhooks: Arc::default(),
        }
    }

    /// Lets webhook subscriptions deliver to URLs that start with one of `prefixes`.
    pub fn with_webhook_allow(mut self, prefixes: Vec<String>) -> Self {
        self.webhooks = Arc::new(standing::WebhookAllow(prefixes));
        self
    }

    /// Runs questions on `limits.workers` workers, at most `limits.per_caller` of one caller
    /// at once.
    pub fn with_read_limits(mut self, limits: ReadLimits) -> Self {
        self.reads = Arc::new(pool::ReadPool::new(limits));
        self
    }

    /// How questions are limited.
    pub fn read_limits(&self) -> ReadLimits {
        self.reads.limits()
    }

    /// Limits every trace and recall to `lots` lots walked (an answer that reaches the limit
    /// says it is partial and where it stopped).
    pub fn with_max_walk(mut self, lots: usize) -> Self {
        self.max_walk = lots.max(1);
        self
    }

    /// What one walk for `caller` may do: the lot limit, and nothing after its deadline.
    pub(crate) fn budget(&self, caller: &Caller) -> lotline_domain::lineage::Budget {
        lotline_domain::lineage::Budget {
            max_lots: self.max_walk,
            stop: caller.answer_by.map(|deadline| {
                Arc::new(move || std::time::Instant::now() >= deadline)
                    as Arc<dyn Fn() -> bool + Send + Sync>
            }),
        }
    }

    /// Whether callers need credentials.
    pub fn enforces_access(&self) -> bool {
        self.access.verifier.is_some()
    }

    /// How many requests were refused for a credential or a right.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Counts and logs a refusal, with the caller's identity, and returns it.
    pub fn refuse(&self, caller: &str, error: ServiceError) -> ServiceError {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        warn!(target: "lotline::access", caller, reason = %error, "refused");
        error
    }

    /// Logs an auditor's read (the access log: who read what, when).
    pub(crate) fn log_read(&self, caller: &Caller, what: &str, about: &str) {
        if let Some(id) = caller.identity()
            && id.has(Role::Auditor)
        {
            info!(target: "lotline::access", caller = %caller.describe(), what, about, "audit read");
        }
    }

    /// Who sent a request, from its credentials; `public`: it asked for the public view.
    pub fn authenticate(
        &self,
        credentials: &Credentials,
        public: bool,
    ) -> Result<Caller, ServiceError> {
        let geometry = self.access.public_geometry;
        let Some(verifier) = &self.access.verifier else {
            let mut caller = Caller::open(public);
            caller.public_geometry = geometry;
            return Ok(caller);
        };
        if let Some(token) = &credentials.bearer {
            let unauthenticated =
                |reason: String| self.refuse("bearer token", ServiceError::Unauthenticated(reason));
            let verified = verifier
                .verify(token)
                .map_err(|e| unauthenticated(e.to_string()))?;
            let identity = verified
                .valid_at(Utc::now())
                .map_err(|e| unauthenticated(e.to_string()))?
                .clone();
            if let Some(id) = &identity.token_id
                && self.revoked(id)?
            {
                return Err(unauthenticated(format!("the token {id} was revoked")));
            }
            return Ok(Caller::party(identity, public, geometry));
        }
        if let Some(subject) = &credentials.certificate {
            let roles = if subject.units.is_empty() {
                [Role::Member].into_iter().collect()
            } else {
                subject
                    .units
                    .iter()
                    .map(|u| {
                        Role::parse(u).ok_or_else(|| {
                            self.refuse(
                                &subject.org,
                                ServiceError::Unauthenticated(format!(
                                    "the client certificate's OU {u:?} is not a role (member, certifier, auditor, admin)"
                                )),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?
            };
            let identity = Identity {
                org: subject.org.clone(),
                roles,
                scope: Scope::default(),
                on_behalf_of: Default::default(),
                token_id: None,
                expires: None,
                credential: Credential::Certificate,
            };
            return Ok(Caller::party(Arc::new(identity), public, geometry));
        }
        if self.access.public_reads {
            return Ok(Caller::anonymous(geometry));
        }
        Err(self.refuse(
            "anonymous",
            ServiceError::Unauthenticated(
                "no credential: send `authorization: Bearer <token>` (lotline token issue) or a client certificate".into(),
            ),
        ))
    }

    /// Whether the log holds a revocation of token `id`.
    fn revoked(&self, id: &str) -> Result<bool, ServiceError> {
        let store = &self.ready()?.store;
        Ok(store.seq_of(&RevokeToken::event_id(id))?.is_some())
    }

    /// Refuses the whole request unless its caller may record every event in it; an event
    /// written by one org for another is marked with who wrote it, and input that cannot be
    /// read is quarantined under the caller's org, not the org it names.
    fn authorize_writes(
        &self,
        caller: &Caller,
        submissions: &mut [Submission],
    ) -> Result<(), ServiceError> {
        let identity = match &caller.who {
            Who::Open => return Ok(()),
            Who::Anonymous => {
                return Err(self.refuse(
                    "anonymous",
                    ServiceError::Unauthenticated("recording events needs a credential".into()),
                ));
            }
            Who::Party(identity) => identity,
        };
        for (n, submission) in submissions.iter_mut().enumerate() {
            match &mut submission.event {
                Ok(event) => {
                    if let Some(reason) = identity.may_not_record(event) {
                        return Err(self.refuse(
                            &caller.describe(),
                            ServiceError::PermissionDenied(format!(
                                "event {} ({:?}): {reason}; nothing in this request was recorded",
                                n + 1,
                                event.id
                            )),
                        ));
                    }
                    if event.org != identity.org {
                        event
                            .extensions
                            .insert(EXT_RECORDED_BY.into(), identity.org.clone());
                    }
                }
                Err(_) => submission.org = identity.org.clone(),
            }
        }
        Ok(())
    }

    /// The open store, or why there is none yet.
    fn ready(&self) -> Result<&Ready, ServiceError> {
        match self.cell.get() {
            None => Err(ServiceError::NotReady(
                "lotline is starting: the store is not open yet".into(),
            )),
            Some(Err(reason)) => Err(ServiceError::NotReady(format!(
                "the store could not be opened: {reason}"
            ))),
            Some(Ok(ready)) => Ok(ready),
        }
    }

    /// Runs a question for `reading`'s caller on a read worker, against one snapshot of the
    /// log (sled reads are synchronous and never wait on the writer). The caller's limit is
    /// checked first; the work stops (DEADLINE_EXCEEDED) once the caller's deadline passes,
    /// while it waits for a worker or while it reads.
    async fn read<T, F>(&self, reading: access::Reading, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Snapshot<'_>, &Ready) -> Result<T, ServiceError> + Send + 'static,
    {
        let ready = self.ready()?.clone();
        let deadline = reading.deadline;
        self.reads
            .run(&reading.key, deadline, move || {
                let view = ready.store.snapshot()?.until(deadline);
                f(&view, &ready)
            })
            .await
            .map_err(|e| match e {
                ServiceError::Store(e) => ServiceError::from_store(e),
                e => e,
            })
    }

    /// Runs a question about `lot`: NOT_FOUND unless some event in the snapshot mentions it.
    async fn read_lot<T, F>(
        &self,
        reading: access::Reading,
        lot: String,
        f: F,
    ) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Snapshot<'_>, &str) -> Result<T, ServiceError> + Send + 'static,
    {
        self.read(reading, move |store, _| {
            queries::provenance::ensure_lot(store, &lot)?;
            f(store, &lot)
        })
        .await
    }

    /// The recorder, unless writes are refused now.
    fn writable(&self) -> Result<&Ready, ServiceError> {
        let ready = self.ready()?;
        if let Some(reason) = &ready.writes_refused {
            return Err(ServiceError::WritesRefused(reason.clone()));
        }
        if let Some(reason) = ready.recorder.refusal() {
            return Err(WriteError::Unavailable(reason).into());
        }
        Ok(ready)
    }

    /// Records a batch of events (each already decoded by [`intake`]) and answers each one's
    /// outcome, in order.
    pub async fn record(
        &self,
        caller: &Caller,
        submissions: Vec<Submission>,
    ) -> Result<Vec<Outcome>, ServiceError> {
        self.queue(caller, submissions).await?.await
    }

    /// Takes a batch for recording behind every batch taken before it and returns once it has
    /// its place, with what waits for its outcomes: a stream of batches keeps its order while
    /// the next batch is decoded. (In NATS mode its place is once the stream has confirmed it.)
    pub async fn queue(
        &self,
        caller: &Caller,
        mut submissions: Vec<Submission>,
    ) -> Result<BoxFuture<'static, Result<Vec<Outcome>, ServiceError>>, ServiceError> {
        self.check_batch(submissions.len())?;
        self.authorize_writes(caller, &mut submissions)?;
        let by = caller.identity_arc();
        let queued = self.ready()?.recorder.queue(submissions, by).await?;
        Ok(Box::pin(async move { Ok(queued.await?) }))
    }

    /// Records one event; a rejection is an error.
    pub async fn record_one(
        &self,
        caller: &Caller,
        submission: Submission,
    ) -> Result<Outcome, ServiceError> {
        let outcome = self
            .record(caller, vec![submission])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ServiceError::Internal("the writer returned no outcome".into()))?;
        match outcome {
            Outcome::Rejected { kind, reason } => Err(ServiceError::Rejected { kind, reason }),
            accepted => Ok(accepted),
        }
    }

    /// Refuses a batch over the limit (before any of it is decoded), or while writes are
    /// refused.
    pub fn check_batch(&self, events: usize) -> Result<(), ServiceError> {
        self.writable()?;
        if events > MAX_BATCH {
            return Err(ServiceError::LimitExceeded {
                field: "events",
                limit: MAX_BATCH,
                message: format!("events: a batch holds at most {MAX_BATCH} events, got {events}"),
            });
        }
        Ok(())
    }
}
