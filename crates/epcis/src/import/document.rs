//! A whole document imported: every pass over it, for any door (`lotline import` over gRPC or
//! NATS, the REST binding's `POST /capture`).
//!
//! The document is read three times, streaming (twice when only checked): the vocabulary the
//! reference event hash needs from the whole document; the parties of its master data (up to its first event); the rest of
//! its master data and its events. Results go to a [`Sink`] in document order, with a barrier
//! after each part of the master data, so that whoever records them has the master data before
//! events are mapped against it. The events' reference hashes are computed on a thread of their
//! own, a batch ahead of the mapping. Memory stays bounded by three batches of [`ELEMENTS`] parts
//! (one being read, one being hashed, one being mapped) and the importer's bounded caches,
//! whatever the document's size.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::mpsc;

use super::{Importer, Mapped, Options, Registry, event_hashes, is_party_vocabulary};
use crate::hash::Context;
use crate::json::Json;
use crate::stream::{Flow, Part, StreamError, hash_context, read_document};

/// Master-data elements or events mapped at once (one registry request).
pub const ELEMENTS: usize = 256;

/// The passes over a document, for whoever opens it (a progress bar may wrap some).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The vocabulary the reference event hash needs.
    Vocabulary,
    /// The parties of the master data.
    Parties,
    /// The rest of the master data, and the events.
    Events,
}

/// The sink stopped taking results (it knows why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Where a document's results go.
pub trait Sink {
    /// Takes one result, in document order.
    fn send(&mut self, mapped: Mapped) -> Result<(), Stopped>;
    /// Returns once everything sent so far is recorded.
    fn barrier(&mut self) -> Result<(), Stopped>;
    /// The pass starting now, for progress.
    fn stage(&mut self, _pass: Pass) {}
}

/// Why a document's import stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The document could not be read (not JSON, not a document, cannot be opened).
    #[error("{0}")]
    Unreadable(String),
    /// The sink stopped.
    #[error("the recorder stopped taking events")]
    Stopped,
    /// The registry could not answer.
    #[error("{0}")]
    Registry(String),
}

/// What the reading saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Product classes with a product or chain but no owner to register them.
    pub unowned_classes: u64,
    /// Events in the document's event list.
    pub events: usize,
}

/// Maps a whole document onto `sink`. `open` gives a new reader of the document for each pass;
/// `name` is how errors name the document.
pub fn import_document(
    name: &str,
    open: &dyn Fn(Pass) -> std::io::Result<Box<dyn Read>>,
    options: Options,
    registry: Box<dyn Registry>,
    sink: &mut dyn Sink,
) -> Result<Summary, DocumentError> {
    let reader = |pass| {
        open(pass).map_err(|e| DocumentError::Unreadable(format!("cannot read {name}: {e}")))
    };
    let broken = |e: StreamError| DocumentError::Unreadable(format!("{name}: {e}"));
    // A checking pass hashes nothing, so it needs no pass for the hash's vocabulary.
    let check_only = options.check_only;
    let hashing = if check_only {
        crate::hash::Context::epcis()
    } else {
        sink.stage(Pass::Vocabulary);
        hash_context(reader(Pass::Vocabulary)?).map_err(broken)?
    };
    let mut importer = Importer::with_registry(options, registry);
    let mut context_seen = false;
    let send = |sink: &mut dyn Sink, items: Vec<Mapped>| -> Result<usize, DocumentError> {
        let n = items.len();
        for item in items {
            sink.send(item).map_err(|Stopped| DocumentError::Stopped)?;
        }
        Ok(n)
    };
    let registry_failure = |importer: &Importer| match importer.registry_failure() {
        Some(reason) => Err(DocumentError::Registry(reason)),
        None => Ok(()),
    };

    // The parties, which every location, certificate and event may name.
    sink.stage(Pass::Parties);
    let mut header_seen = false;
    let mut sent = 0;
    let mut stopped: Option<DocumentError> = None;
    let mut elements: Vec<(String, Json)> = Vec::new();
    let parties = read_document(reader(Pass::Parties)?, &mut |part| {
        let step = (|| -> Result<Flow, DocumentError> {
            match part {
                Part::Context(context) => {
                    context_seen = true;
                    importer.context(&context, hashing.clone());
                }
                Part::Vocabulary { kind, element } => {
                    header_seen = true;
                    if !context_seen {
                        importer.context(&Json::Null, hashing.clone());
                        context_seen = true;
                    }
                    if is_party_vocabulary(&kind) {
                        elements.push((kind, element));
                        if elements.len() >= ELEMENTS {
                            let mapped = importer.vocabularies(&std::mem::take(&mut elements));
                            sent += send(sink, mapped)?;
                        }
                    }
                }
                Part::Header(_) => header_seen = true,
                Part::Event(..) => return Ok(Flow::Stop),
            }
            registry_failure(&importer)?;
            Ok(Flow::Continue)
        })();
        step.map_err(|e| {
            let reason = e.to_string();
            stopped = Some(e);
            reason
        })
    });
    if let Some(e) = stopped.take() {
        return Err(e);
    }
    parties.map_err(broken)?;
    sent += send(sink, importer.vocabularies(&std::mem::take(&mut elements)))?;
    if sent > 0 {
        sink.barrier().map_err(|Stopped| DocumentError::Stopped)?;
    }

    // The rest of the master data, then the events. The reference hash is about a third of the
    // reading thread's work and reads nothing but the event, so a thread of its own hashes each
    // chunk of events while this one maps the chunk before it and reads the next.
    sink.stage(Pass::Events);
    std::thread::scope(|scope| {
        let mut hasher = Hasher::start(scope, &hashing, !check_only);
        let mut sent = 0;
        let mut events_begun = false;
        let mut count = 0usize;
        let mut events: Vec<(usize, Json)> = Vec::new();
        let info = read_document(reader(Pass::Events)?, &mut |part| {
            let step = (|| -> Result<(), DocumentError> {
                match part {
                    Part::Context(context) => {
                        context_seen = true;
                        importer.context(&context, hashing.clone());
                    }
                    Part::Header(_) => {}
                    Part::Vocabulary { kind, element } => {
                        if !context_seen {
                            importer.context(&Json::Null, hashing.clone());
                            context_seen = true;
                        }
                        // A header after the body: the first pass did not see its parties.
                        if !is_party_vocabulary(&kind) || !header_seen {
                            elements.push((kind, element));
                            if elements.len() >= ELEMENTS {
                                let mapped = importer.vocabularies(&std::mem::take(&mut elements));
                                sent += send(sink, mapped)?;
                            }
                        }
                    }
                    Part::Event(index, event) => {
                        if !context_seen {
                            importer.context(&Json::Null, hashing.clone());
                            context_seen = true;
                        }
                        if !events_begun {
                            events_begun = true;
                            let mapped = importer.vocabularies(&std::mem::take(&mut elements));
                            sent += send(sink, mapped)?;
                            if sent > 0 {
                                sink.barrier().map_err(|Stopped| DocumentError::Stopped)?;
                            }
                        }
                        count += 1;
                        events.push((index, event));
                        if events.len() >= ELEMENTS {
                            hasher.submit(std::mem::take(&mut events));
                            // One chunk stays with the hasher while this thread maps the one
                            // before it.
                            if hasher.waiting() > 1 {
                                let (chunk, hashes) = hasher.next()?;
                                send(sink, importer.events_hashed(&chunk, hashes))?;
                            }
                        }
                    }
                }
                registry_failure(&importer)
            })();
            match step {
                Ok(()) => Ok(Flow::Continue),
                Err(e) => {
                    let reason = e.to_string();
                    stopped = Some(e);
                    Err(reason)
                }
            }
        });
        if let Some(e) = stopped.take() {
            return Err(e);
        }
        let info = info.map_err(broken)?;
        send(sink, importer.vocabularies(&std::mem::take(&mut elements)))?;
        hasher.submit(std::mem::take(&mut events));
        while hasher.waiting() > 0 {
            let (chunk, hashes) = hasher.next()?;
            send(sink, importer.events_hashed(&chunk, hashes))?;
        }
        send(sink, importer.finish())?;
        registry_failure(&importer)?;
        if info.header_after_body {
            return Err(DocumentError::Unreadable(format!(
                "{name}: the epcisHeader comes after the epcisBody; its master data was registered after the events (write the header first)"
            )));
        }
        Ok(Summary {
            unowned_classes: importer.unowned_classes(),
            events: count,
        })
    })
}

/// A chunk of events, in document order.
type Chunk = Vec<(usize, Json)>;

/// Hashes chunks of events in the order they are submitted, on a thread of the scope it was
/// started in; for a checking pass, which hashes nothing, it only queues them. Its memory is the
/// chunks submitted and not yet taken: the events pass keeps at most two.
struct Hasher {
    /// To the hashing thread and back; `None` when nothing is hashed.
    thread: Option<(mpsc::Sender<Chunk>, mpsc::Receiver<Hashed>)>,
    /// The chunks submitted when nothing is hashed.
    unhashed: VecDeque<Chunk>,
    waiting: usize,
}

/// A chunk and each of its events' reference hashes.
type Hashed = (Chunk, Vec<Option<String>>);

impl Hasher {
    fn start<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        hashing: &'scope Context,
        hash: bool,
    ) -> Hasher {
        let thread = hash.then(|| {
            let (chunks, to_hash) = mpsc::channel::<Chunk>();
            let (done, hashed) = mpsc::channel();
            scope.spawn(move || {
                for chunk in to_hash {
                    let hashes = event_hashes(&chunk, hashing);
                    if done.send((chunk, hashes)).is_err() {
                        return;
                    }
                }
            });
            (chunks, hashed)
        });
        Hasher {
            thread,
            unhashed: VecDeque::new(),
            waiting: 0,
        }
    }

    /// Queues a chunk (an empty one is not).
    fn submit(&mut self, chunk: Chunk) {
        if chunk.is_empty() {
            return;
        }
        self.waiting += 1;
        match &self.thread {
            // A send fails only once the hashing thread has ended, which `next` reports.
            Some((chunks, _)) => drop(chunks.send(chunk)),
            None => self.unhashed.push_back(chunk),
        }
    }

    /// Chunks submitted and not yet taken.
    fn waiting(&self) -> usize {
        self.waiting
    }

    /// The oldest chunk submitted and not yet taken, with its events' hashes.
    fn next(&mut self) -> Result<Hashed, DocumentError> {
        self.waiting = self.waiting.saturating_sub(1);
        match &self.thread {
            Some((_, hashed)) => hashed.recv().map_err(|_| {
                DocumentError::Unreadable("the thread hashing the events stopped".to_string())
            }),
            None => {
                let chunk = self.unhashed.pop_front().unwrap_or_default();
                let none = vec![None; chunk.len()];
                Ok((chunk, none))
            }
        }
    }
}
