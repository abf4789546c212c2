//! What an import knows of parties, locations, orgs and product classes: the master data of the
//! document being imported, and through a [`Registry`] what earlier imports and events
//! registered (lotline's `MasterDataService.Resolve`, for the command line's import).
//!
//! Both are held in bounded caches, so that memory stays flat whatever the number of
//! master-data elements: the document's own master data is recorded (and so known to the
//! registry) before any of its events is mapped, and an entry that no longer fits is asked for
//! again.

use std::collections::HashMap;
use std::hash::Hash;

use lotline_domain::{Chain, OrgRole};

/// An org as master data describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownOrg {
    pub org: String,
    pub role: Option<OrgRole>,
    pub chain: Option<Chain>,
    pub country: Option<String>,
}

/// A location: its owner (the org of events there) and whether it is a farm plot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownLocation {
    pub owner: Option<KnownOrg>,
    pub plot: bool,
}

/// A product class: the product and chain of its lots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownClass {
    pub product: Option<String>,
    pub chain: Option<Chain>,
}

/// Names to look up, each in lotline's canonical form (see `canon_id`): party ids, location ids,
/// org ids, product class keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ask {
    pub parties: Vec<String>,
    pub locations: Vec<String>,
    pub orgs: Vec<String>,
    pub classes: Vec<String>,
}

impl Ask {
    pub fn is_empty(&self) -> bool {
        self.parties.is_empty()
            && self.locations.is_empty()
            && self.orgs.is_empty()
            && self.classes.is_empty()
    }

    /// The same names in parts of at most `size` of each kind (a registry answers a bounded
    /// number of names per request).
    pub fn parts(&self, size: usize) -> Vec<Ask> {
        let size = size.max(1);
        let slice = |names: &[String], n: usize| -> Vec<String> {
            names.iter().skip(n * size).take(size).cloned().collect()
        };
        (0..)
            .map(|n| Ask {
                parties: slice(&self.parties, n),
                locations: slice(&self.locations, n),
                orgs: slice(&self.orgs, n),
                classes: slice(&self.classes, n),
            })
            .take_while(|part| !part.is_empty())
            .collect()
    }
}

/// What a registry knows of each name asked (`None`: nothing registered it).
#[derive(Debug, Clone, Default)]
pub struct Answers {
    pub parties: Vec<(String, Option<KnownOrg>)>,
    pub locations: Vec<(String, Option<KnownLocation>)>,
    pub orgs: Vec<(String, Option<KnownOrg>)>,
    pub classes: Vec<(String, Option<KnownClass>)>,
}

/// Master data registered before this document: the lotline server's, for the command line.
/// A registry that cannot answer (the server is gone) answers nothing and says why in
/// [`Registry::failure`]; the import then stops rather than reject events for want of an org.
pub trait Registry: Send {
    fn resolve(&mut self, ask: &Ask) -> Answers;
    /// Why the registry could not answer, once it could not.
    fn failure(&self) -> Option<String> {
        None
    }
}

/// No master data beyond the document's own (tests, and documents read offline).
#[derive(Debug, Default)]
pub struct NoRegistry;

impl Registry for NoRegistry {
    fn resolve(&mut self, _: &Ask) -> Answers {
        Answers::default()
    }
}

/// A map of at most `2 × cap` entries in two generations: when the newer is full it becomes the
/// older and the older is dropped, and an entry found in the older is moved to the newer. What
/// was used lately stays; memory does not grow with the document.
#[derive(Debug)]
struct Bounded<K, V> {
    newer: HashMap<K, V>,
    older: HashMap<K, V>,
    cap: usize,
}

impl<K: Eq + Hash + Clone, V> Bounded<K, V> {
    fn new(cap: usize) -> Self {
        Bounded {
            newer: HashMap::new(),
            older: HashMap::new(),
            cap,
        }
    }

    fn get(&mut self, k: &K) -> Option<&V> {
        if !self.newer.contains_key(k) {
            let v = self.older.remove(k)?;
            self.insert(k.clone(), v);
        }
        self.newer.get(k)
    }

    fn insert(&mut self, k: K, v: V) {
        if self.newer.len() >= self.cap && !self.newer.contains_key(&k) {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(k, v);
    }
}

/// Entries kept of each kind, per generation (about 170 bytes each: at most about 35 MiB in all).
pub const CACHE_ENTRIES: usize = 25_000;

/// The document's master data and the registry's answers, cached.
pub(crate) struct Known {
    registry: Box<dyn Registry>,
    parties: Bounded<String, Option<KnownOrg>>,
    locations: Bounded<String, Option<KnownLocation>>,
    orgs: Bounded<String, Option<KnownOrg>>,
    classes: Bounded<String, Option<KnownClass>>,
}

impl Known {
    pub(crate) fn new(registry: Box<dyn Registry>) -> Known {
        Known {
            registry,
            parties: Bounded::new(CACHE_ENTRIES),
            locations: Bounded::new(CACHE_ENTRIES),
            orgs: Bounded::new(CACHE_ENTRIES),
            classes: Bounded::new(CACHE_ENTRIES),
        }
    }

    pub(crate) fn failure(&self) -> Option<String> {
        self.registry.failure()
    }

    /// The document says what a party is.
    pub(crate) fn learn_party(&mut self, id: String, org: KnownOrg) {
        self.orgs.insert(org.org.clone(), Some(org.clone()));
        self.parties.insert(id, Some(org));
    }

    pub(crate) fn learn_location(&mut self, id: String, location: KnownLocation) {
        self.locations.insert(id, Some(location));
    }

    pub(crate) fn learn_class(&mut self, key: String, class: KnownClass) {
        self.classes.insert(key, Some(class));
    }

    /// Asks the registry, in one request, for every name of `ask` not cached yet.
    pub(crate) fn prefetch(&mut self, ask: Ask) {
        let missing = Ask {
            parties: unique(ask.parties, |p| self.parties.get(p).is_none()),
            locations: unique(ask.locations, |l| {
                location_candidates(l)
                    .iter()
                    .all(|c| self.locations.get(c).is_none())
            }),
            orgs: unique(ask.orgs, |o| self.orgs.get(o).is_none()),
            classes: unique(ask.classes, |c| self.classes.get(c).is_none()),
        };
        if missing.is_empty() {
            return;
        }
        let answers = self.registry.resolve(&missing);
        // What an answer says of an org is known of that org too.
        for org in answers
            .parties
            .iter()
            .filter_map(|(_, o)| o.as_ref())
            .chain(
                answers
                    .locations
                    .iter()
                    .filter_map(|(_, l)| l.as_ref()?.owner.as_ref()),
            )
        {
            self.orgs.insert(org.org.clone(), Some(org.clone()));
        }
        // What the registry did not answer is not known (cached as such, so that it is asked
        // once), unless the registry failed: then nothing is cached and the import stops.
        let failed = self.registry.failure().is_some();
        learn(&mut self.parties, missing.parties, answers.parties, failed);
        learn(
            &mut self.locations,
            missing.locations,
            answers.locations,
            failed,
        );
        learn(&mut self.orgs, missing.orgs, answers.orgs, failed);
        learn(&mut self.classes, missing.classes, answers.classes, failed);
    }

    pub(crate) fn party(&mut self, id: &str) -> Option<KnownOrg> {
        if let Some(known) = self.parties.get(&id.to_string()) {
            return known.clone();
        }
        self.prefetch(Ask {
            parties: vec![id.to_string()],
            ..Ask::default()
        });
        self.parties.get(&id.to_string()).cloned().flatten()
    }

    pub(crate) fn org(&mut self, org: &str) -> Option<KnownOrg> {
        if let Some(known) = self.orgs.get(&org.to_string()) {
            return known.clone();
        }
        self.prefetch(Ask {
            orgs: vec![org.to_string()],
            ..Ask::default()
        });
        self.orgs.get(&org.to_string()).cloned().flatten()
    }

    /// A location: as the document or registry named it, else the location without its
    /// extension (an SGLN extension or a Digital Link's `/254/`).
    pub(crate) fn location(&mut self, id: &str) -> Option<KnownLocation> {
        let candidates = location_candidates(id);
        if candidates.iter().all(|c| self.locations.get(c).is_none()) {
            self.prefetch(Ask {
                locations: vec![id.to_string()],
                ..Ask::default()
            });
        }
        candidates
            .iter()
            .find_map(|c| self.locations.get(c).cloned().flatten())
    }

    pub(crate) fn class(&mut self, key: &str) -> Option<KnownClass> {
        if let Some(known) = self.classes.get(&key.to_string()) {
            return known.clone();
        }
        self.prefetch(Ask {
            classes: vec![key.to_string()],
            ..Ask::default()
        });
        self.classes.get(&key.to_string()).cloned().flatten()
    }
}

/// Caches a registry's answers, and (unless it failed) that the names it did not answer are
/// not known.
fn learn<V>(
    cache: &mut Bounded<String, Option<V>>,
    asked: Vec<String>,
    answers: Vec<(String, Option<V>)>,
    failed: bool,
) {
    let answered: std::collections::HashSet<String> =
        answers.iter().map(|(id, _)| id.clone()).collect();
    for (id, value) in answers {
        cache.insert(id, value);
    }
    if !failed {
        for id in asked {
            if !answered.contains(&id) {
                cache.insert(id, None);
            }
        }
    }
}

fn unique(mut ids: Vec<String>, mut keep: impl FnMut(&String) -> bool) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids.retain(|id| keep(id));
    ids
}

/// The ids a location may be registered under: itself, then without its extension (a GS1
/// location's `/254/` component, which an SGLN URN's extension becomes).
pub fn location_candidates(id: &str) -> Vec<String> {
    let mut out = vec![id.to_string()];
    if id.starts_with("https://id.gs1.org/414/")
        && let Some(at) = id.find("/254/")
    {
        out.push(id[..at].to_string());
    }
    out
}
