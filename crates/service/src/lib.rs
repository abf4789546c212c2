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
//! - [`views`]: the public view, applied to answers in one place.

pub mod args;
mod error;
pub mod intake;
pub mod queries;
pub mod views;

use std::sync::{Arc, OnceLock};

use lotline_domain::Outcome;
use lotline_domain::audit::rules::Rules;
use lotline_merkle::Signer;
use lotline_store::{Snapshot, Store, Submission};

pub use error::ServiceError;
pub use intake::{BoxFuture, Recorder, WriteError};
pub use views::View;

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
}

/// Set once, when the store is open (or has failed to open, with the reason); shared by every
/// door.
pub type ReadyCell = Arc<OnceLock<Result<Ready, String>>>;

/// Who asks. Today a caller is anonymous and names the view it wants; credentials, orgs, roles
/// and scopes arrive with access control, and are decided here, not in the doors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caller {
    pub view: View,
}

impl Caller {
    /// A caller asking for the full view, or the public one.
    pub fn with_view(public: bool) -> Self {
        Caller {
            view: if public { View::Public } else { View::Full },
        }
    }
}

/// The use cases, shared by every door. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    cell: ReadyCell,
    /// The last anomaly listing and the log size it was computed at.
    listing: Arc<queries::audit::ListingCache>,
}

impl Service {
    pub fn new(cell: ReadyCell) -> Self {
        Service {
            cell,
            listing: Arc::default(),
        }
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

    /// Runs a read on a blocking thread, against one snapshot of the log (sled reads are
    /// synchronous and never wait on the writer).
    async fn read<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Snapshot<'_>, &Ready) -> Result<T, ServiceError> + Send + 'static,
    {
        let ready = self.ready()?.clone();
        tokio::task::spawn_blocking(move || {
            let view = ready.store.snapshot()?;
            f(&view, &ready)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("query task failed: {e}")))?
    }

    /// Runs a read about `lot`: NOT_FOUND unless some event in the snapshot mentions it.
    async fn read_lot<T, F>(&self, lot: String, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&Snapshot<'_>, &str) -> Result<T, ServiceError> + Send + 'static,
    {
        self.read(move |store, _| {
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
        _caller: &Caller,
        submissions: Vec<Submission>,
    ) -> Result<Vec<Outcome>, ServiceError> {
        self.check_batch(submissions.len())?;
        Ok(self.ready()?.recorder.record(submissions).await?)
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
