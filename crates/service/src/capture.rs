//! EPCIS capture (the REST binding's `POST /capture`): a whole document recorded as a job that
//! runs after the request is answered, with its state and per-event errors kept for the caller.
//!
//! The document is imported as `lotline import` imports it (`epcis::import::document`, master
//! data recorded before the events are mapped against it), with the service as its registry
//! and its recorder, so every event passes the same checks and access rules as any other write.
//! `rollback` (the binding's default) first maps the whole document and records nothing if any
//! part of it fails; `proceed` records what it can. What neither can promise: an event the
//! writer refuses in the recording pass (a conflict with an event recorded meanwhile, an org
//! the log does not know) is a failure of a job whose other events are recorded. The log has no
//! delete, in embedded and NATS mode alike.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use lotline_domain::{Chain, Outcome, RejectKind};
use lotline_epcis::import::document::{DocumentError, Pass, Sink, Stopped, import_document};
use lotline_epcis::import::{
    Answers, Ask, KnownClass, KnownLocation, KnownOrg, Mapped, Options, Registry,
};
use lotline_proto::convert::event_to_wire;
use lotline_store::Submission;
use tokio::runtime::Handle;
use tracing::{info, warn};

use crate::queries::masterdata::{MAX_RESOLVE, Names};
use crate::{Caller, Service, ServiceError, intake};

/// Jobs kept (the oldest finished ones go first).
const KEPT_JOBS: usize = 1_000;
/// Errors kept per job; the count goes on.
const KEPT_ERRORS: usize = 1_000;
/// Events recorded per batch.
const BATCH: usize = 500;
/// Jobs running at once; more are refused until one ends (each holds a blocking thread).
pub const MAX_RUNNING: usize = 4;

/// What to do when part of a document fails (`GS1-Capture-Error-Behaviour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// All or nothing: nothing is recorded if any part fails.
    Rollback,
    /// Record every part that can be.
    Proceed,
}

impl Behaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Rollback => "rollback",
            Behaviour::Proceed => "proceed",
        }
    }
}

/// One part of a document that was not captured, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    /// Where in the document (`event #3`, `master data …`, or `document`).
    pub source: String,
    /// The event's id, when it has one.
    pub event_id: String,
    pub reason: String,
}

/// A capture job as its caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureJob {
    pub id: String,
    /// The org of the caller that captured (`None` on a server without access control).
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub running: bool,
    pub behaviour: Behaviour,
    /// Events and master-data elements recorded, and already in the log.
    pub accepted: u64,
    pub duplicates: u64,
    /// Parts not captured: all of them are counted, the first [`KEPT_ERRORS`] kept.
    pub failed: u64,
    pub errors: Vec<CaptureError>,
}

impl CaptureJob {
    /// No part failed (so far).
    pub fn success(&self) -> bool {
        self.failed == 0
    }
}

/// The jobs of this process.
#[derive(Debug, Default)]
pub struct Captures {
    jobs: Mutex<VecDeque<CaptureJob>>,
    next: AtomicU64,
}

impl Captures {
    fn update(&self, id: &str, f: impl FnOnce(&mut CaptureJob)) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = jobs.iter_mut().find(|j| j.id == id) {
            f(job);
        }
    }

    fn fail(&self, id: &str, error: CaptureError) {
        self.update(id, |job| {
            job.failed += 1;
            if job.errors.len() < KEPT_ERRORS {
                job.errors.push(error);
            }
        });
    }

    /// Adds `job`, unless [`MAX_RUNNING`] jobs are running.
    fn add(&self, job: CaptureJob) -> Result<(), ServiceError> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.iter().filter(|j| j.running).count() >= MAX_RUNNING {
            return Err(ServiceError::Busy(format!(
                "{MAX_RUNNING} capture jobs are running; send the document again once one has finished"
            )));
        }
        if jobs.len() >= KEPT_JOBS
            && let Some(done) = jobs.iter().position(|j| !j.running)
        {
            jobs.remove(done);
        }
        jobs.push_back(job);
        Ok(())
    }

    fn get(&self, id: &str) -> Option<CaptureJob> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().find(|j| j.id == id).cloned()
    }

    fn list(&self, caller: &Caller) -> Vec<CaptureJob> {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().filter(|j| sees(caller, j)).cloned().collect()
    }
}

/// Whether `caller` may see `job`: its own org's, or every job for whoever reads every book.
fn sees(caller: &Caller, job: &CaptureJob) -> bool {
    match (&job.owner, caller.identity()) {
        (Some(owner), Some(id)) => &id.org == owner || caller.reads_books_of(owner),
        (None, _) => true,
        (Some(owner), None) => caller.reads_books_of(owner),
    }
}

/// The service as an import's registry: what earlier documents registered, asked as the caller.
struct ServiceRegistry {
    service: Service,
    caller: Caller,
    runtime: Handle,
    failure: Option<String>,
}

impl Registry for ServiceRegistry {
    fn resolve(&mut self, ask: &Ask) -> Answers {
        let mut all = Answers::default();
        for part in ask.parts(MAX_RESOLVE / 4) {
            let names = Names {
                parties: part.parties,
                locations: part.locations,
                orgs: part.orgs,
                classes: part.classes,
            };
            if self.failure.is_some() {
                break;
            }
            let service = self.service.clone();
            let caller = self.caller.clone();
            let resolved = self
                .runtime
                .block_on(async move { service.resolve(&caller, names).await });
            let resolved = match resolved {
                Ok(r) => r,
                Err(e) => {
                    self.failure = Some(e.to_string());
                    break;
                }
            };
            let org = |o: crate::queries::masterdata::KnownOrg| KnownOrg {
                org: o.org,
                role: o.role,
                chain: o.chain.as_deref().and_then(Chain::parse),
                country: Some(o.country).filter(|c| !c.is_empty()),
            };
            all.parties
                .extend(resolved.parties.into_iter().map(|(id, o)| (id, o.map(org))));
            all.locations
                .extend(resolved.locations.into_iter().map(|l| {
                    let plot = l.plot;
                    let found = l.owner.map(|o| KnownLocation {
                        owner: Some(org(o)),
                        plot,
                    });
                    (l.id, found)
                }));
            all.orgs.extend(
                resolved
                    .orgs
                    .into_iter()
                    .map(|o| (o.org.clone(), Some(org(o)))),
            );
            all.classes.extend(resolved.classes.into_iter().map(|c| {
                let found = c.found.then(|| KnownClass {
                    product: c.product.filter(|p| !p.is_empty()),
                    chain: c.chain.as_deref().and_then(Chain::parse),
                });
                (c.id, found)
            }));
        }
        all
    }

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }
}

/// A dry run's sink: every part that fails to map is an error; nothing is recorded.
struct Checking<'a> {
    captures: &'a Captures,
    job: &'a str,
}

impl Sink for Checking<'_> {
    fn send(&mut self, mapped: Mapped) -> Result<(), Stopped> {
        if let Err(reason) = mapped.result {
            self.captures.fail(
                self.job,
                CaptureError {
                    source: mapped.source.to_string(),
                    event_id: String::new(),
                    reason,
                },
            );
        }
        Ok(())
    }

    fn barrier(&mut self) -> Result<(), Stopped> {
        Ok(())
    }
}

/// The recording pass's sink: batches queued through the service while the next ones are
/// mapped ([`IN_FLIGHT`] at most waiting for their outcomes), outcomes counted as they come.
struct Recording<'a> {
    service: &'a Service,
    caller: &'a Caller,
    runtime: &'a Handle,
    job: &'a str,
    batch: Vec<(String, Submission)>,
    /// Batches queued whose outcomes are still being counted, oldest first; each answers
    /// whether it was recorded.
    pending: VecDeque<tokio::task::JoinHandle<bool>>,
}

/// Batches queued for recording and not yet answered, per capture.
const IN_FLIGHT: usize = 2;

/// Counts a batch's outcomes into the job.
fn tally(captures: &Captures, job: &str, batch: Vec<(String, String)>, outcomes: Vec<Outcome>) {
    for ((source, event_id), outcome) in batch.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Accepted { .. } => captures.update(job, |j| j.accepted += 1),
            Outcome::Duplicate { .. } => captures.update(job, |j| j.duplicates += 1),
            Outcome::Rejected { kind, reason } => captures.fail(
                job,
                CaptureError {
                    source,
                    event_id,
                    reason: match kind {
                        RejectKind::Invalid => reason,
                        other => format!("{other:?}: {reason}"),
                    },
                },
            ),
        }
    }
}

/// Fails every event of a batch that was not recorded.
fn not_recorded(captures: &Captures, job: &str, batch: Vec<(String, String)>, why: &ServiceError) {
    for (source, event_id) in batch {
        captures.fail(
            job,
            CaptureError {
                source,
                event_id,
                reason: format!("not recorded: {why}"),
            },
        );
    }
}

impl Recording<'_> {
    /// Queues the batch behind those before it; waits only while [`IN_FLIGHT`] batches are
    /// still unanswered.
    fn flush(&mut self) -> Result<(), Stopped> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let (names, submissions): (Vec<(String, String)>, Vec<Submission>) =
            std::mem::take(&mut self.batch)
                .into_iter()
                .map(|(source, s)| ((source, s.event_id.clone()), s))
                .unzip();
        let service = self.service.clone();
        let caller = self.caller.clone();
        let queued = self
            .runtime
            .block_on(async move { service.queue(&caller, submissions).await });
        let outcomes = match queued {
            Ok(outcomes) => outcomes,
            Err(e) => {
                not_recorded(&self.service.captures, self.job, names, &e);
                return Err(Stopped);
            }
        };
        let captures = self.service.captures.clone();
        let job = self.job.to_string();
        self.pending.push_back(self.runtime.spawn(async move {
            match outcomes.await {
                Ok(outcomes) => {
                    tally(&captures, &job, names, outcomes);
                    true
                }
                Err(e) => {
                    not_recorded(&captures, &job, names, &e);
                    false
                }
            }
        }));
        while self.pending.len() > IN_FLIGHT {
            self.wait_oldest()?;
        }
        Ok(())
    }

    /// Waits for the oldest queued batch's outcomes.
    fn wait_oldest(&mut self) -> Result<(), Stopped> {
        let Some(oldest) = self.pending.pop_front() else {
            return Ok(());
        };
        match self.runtime.block_on(oldest) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Stopped),
            Err(e) => {
                warn!(job = self.job, cause = %e, "capture: counting a batch's outcomes stopped");
                Err(Stopped)
            }
        }
    }

    /// Queues what is left and waits for every batch's outcomes.
    fn finish(&mut self) -> Result<(), Stopped> {
        let flushed = self.flush();
        while !self.pending.is_empty() {
            self.wait_oldest()?;
        }
        flushed
    }
}

impl Sink for Recording<'_> {
    fn send(&mut self, mapped: Mapped) -> Result<(), Stopped> {
        let source = mapped.source.to_string();
        match mapped.result {
            Ok(event) => {
                let submission = intake::from_wire(&event_to_wire(&event), "capture");
                self.batch.push((source, submission));
                if self.batch.len() >= BATCH {
                    self.flush()?;
                }
            }
            Err(reason) => self.service.captures.fail(
                self.job,
                CaptureError {
                    source,
                    event_id: String::new(),
                    reason,
                },
            ),
        }
        Ok(())
    }

    fn barrier(&mut self) -> Result<(), Stopped> {
        self.finish()
    }

    fn stage(&mut self, pass: Pass) {
        if pass == Pass::Events {
            info!(job = self.job, "capture: recording the events");
        }
    }
}

impl Service {
    /// Starts capturing the EPCIS document at `document` (kept until the job ends) and answers
    /// the job at once.
    pub fn capture<D: AsRef<Path> + Send + 'static>(
        &self,
        caller: &Caller,
        document: D,
        behaviour: Behaviour,
    ) -> Result<CaptureJob, ServiceError> {
        Ok(self.start_capture(caller, document, behaviour)?.0)
    }

    fn start_capture<D: AsRef<Path> + Send + 'static>(
        &self,
        caller: &Caller,
        document: D,
        behaviour: Behaviour,
    ) -> Result<(CaptureJob, tokio::task::JoinHandle<()>), ServiceError> {
        caller.party_only("capturing events")?;
        self.check_batch(0)?;
        let n = self.captures.next.fetch_add(1, Ordering::Relaxed);
        let mut id_bytes = [0u8; 6];
        getrandom::getrandom(&mut id_bytes)
            .map_err(|e| ServiceError::Internal(format!("no random id: {e}")))?;
        let job = CaptureJob {
            id: format!("c{n}-{}", hex::encode(id_bytes)),
            owner: caller.identity().map(|i| i.org.clone()),
            created_at: Utc::now(),
            finished_at: None,
            running: true,
            behaviour,
            accepted: 0,
            duplicates: 0,
            failed: 0,
            errors: Vec::new(),
        };
        self.captures.add(job.clone())?;
        let service = self.clone();
        // The job outlives the request: no deadline of the request's.
        let caller = caller.clone().until(None);
        let runtime = Handle::current();
        let id = job.id.clone();
        let running = tokio::task::spawn_blocking(move || {
            service.run_capture(&caller, document.as_ref(), behaviour, &id, &runtime);
            service.captures.update(&id, |j| {
                j.running = false;
                j.finished_at = Some(Utc::now());
            });
        });
        Ok((job, running))
    }

    /// Captures the EPCIS document at `document` and answers the job once it has finished
    /// (the binding's synchronous `POST /events`).
    pub async fn capture_now<D: AsRef<Path> + Send + 'static>(
        &self,
        caller: &Caller,
        document: D,
        behaviour: Behaviour,
    ) -> Result<CaptureJob, ServiceError> {
        let (job, running) = self.start_capture(caller, document, behaviour)?;
        running
            .await
            .map_err(|e| ServiceError::Internal(format!("the capture stopped: {e}")))?;
        self.captures
            .get(&job.id)
            .ok_or_else(|| ServiceError::Internal("the capture job is gone".into()))
    }

    fn run_capture(
        &self,
        caller: &Caller,
        document: &Path,
        behaviour: Behaviour,
        job: &str,
        runtime: &Handle,
    ) {
        let options = |check_only| Options {
            org: caller.identity().map(|i| i.org.clone()),
            chain: None,
            check_only,
        };
        let registry = || -> Box<dyn Registry> {
            Box::new(ServiceRegistry {
                service: self.clone(),
                caller: caller.clone(),
                runtime: runtime.clone(),
                failure: None,
            })
        };
        let open = |_: Pass| -> std::io::Result<Box<dyn std::io::Read>> {
            Ok(Box::new(std::fs::File::open(document)?))
        };
        let name = "the captured document";
        let failed = |e: DocumentError| CaptureError {
            source: "document".into(),
            event_id: String::new(),
            reason: e.to_string(),
        };
        if behaviour == Behaviour::Rollback {
            let mut checking = Checking {
                captures: &self.captures,
                job,
            };
            if let Err(e) = import_document(name, &open, options(true), registry(), &mut checking) {
                self.captures.fail(job, failed(e));
            }
            let clean = self.captures.get(job).is_some_and(|j| j.success());
            if !clean {
                info!(job, "capture rolled back: part of the document fails");
                return;
            }
        }
        let mut recording = Recording {
            service: self,
            caller,
            runtime,
            job,
            batch: Vec::new(),
            pending: VecDeque::new(),
        };
        let result = import_document(name, &open, options(false), registry(), &mut recording);
        // Whatever stopped the import, the batches queued before it are counted.
        let finished = recording.finish();
        let result = result.and_then(|_| finished.map_err(|Stopped| DocumentError::Stopped));
        if let Err(e) = result {
            warn!(job, cause = %e, "capture stopped");
            self.captures.fail(job, failed(e));
        }
    }

    /// The capture jobs the caller may see, oldest first.
    pub fn capture_jobs(&self, caller: &Caller) -> Result<Vec<CaptureJob>, ServiceError> {
        caller.party_only("capture jobs")?;
        Ok(self.captures.list(caller))
    }

    /// One capture job.
    pub fn capture_job(&self, caller: &Caller, id: &str) -> Result<CaptureJob, ServiceError> {
        caller.party_only("capture jobs")?;
        self.captures
            .list(caller)
            .into_iter()
            .find(|j| j.id == id)
            .ok_or_else(|| ServiceError::NotFound(format!("capture job {id:?}: no such job")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: usize, running: bool) -> CaptureJob {
        CaptureJob {
            id: format!("c{id}"),
            owner: Some("coop-a".into()),
            created_at: Utc::now(),
            finished_at: None,
            running,
            behaviour: Behaviour::Rollback,
            accepted: 0,
            duplicates: 0,
            failed: 0,
            errors: Vec::new(),
        }
    }

    #[test]
    fn jobs_at_once_are_bounded_and_old_finished_ones_go() {
        let captures = Captures::default();
        for n in 0..MAX_RUNNING {
            captures.add(job(n, true)).unwrap();
        }
        assert!(matches!(
            captures.add(job(99, true)),
            Err(ServiceError::Busy(_))
        ));
        captures.update("c0", |j| j.running = false);
        captures.add(job(100, true)).unwrap();
        // Finished jobs are kept up to the bound, the oldest leaving first.
        captures.update("c100", |j| j.running = false);
        for n in 1..MAX_RUNNING {
            captures.update(&format!("c{n}"), |j| j.running = false);
        }
        for n in 0..KEPT_JOBS + 10 {
            captures.add(job(1_000 + n, false)).unwrap();
        }
        let jobs = captures.jobs.lock().unwrap();
        assert_eq!(jobs.len(), KEPT_JOBS);
        assert!(jobs.iter().all(|j| j.id != "c0"));
        assert_eq!(
            jobs.back().unwrap().id,
            format!("c{}", 1_000 + KEPT_JOBS + 9)
        );
    }

    #[test]
    fn errors_are_counted_beyond_those_kept() {
        let captures = Captures::default();
        captures.add(job(1, true)).unwrap();
        for n in 0..KEPT_ERRORS + 5 {
            captures.fail(
                "c1",
                CaptureError {
                    source: format!("event #{n}"),
                    event_id: String::new(),
                    reason: "bad".into(),
                },
            );
        }
        let j = captures.get("c1").unwrap();
        assert_eq!(j.failed, (KEPT_ERRORS + 5) as u64);
        assert_eq!(j.errors.len(), KEPT_ERRORS);
        assert!(!j.success());
    }
}
