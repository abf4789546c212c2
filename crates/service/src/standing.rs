//! Standing queries: EPCIS queries kept under a name (the REST binding's `/queries`), and
//! subscriptions that deliver their new results as the log grows (webhooks) or on a schedule.
//!
//! A named query belongs to the org that created it (each org has its own names); it answers in
//! the view of whoever asks it. A subscription belongs to its creator and delivers in the view
//! of the credential that created it, which it keeps (never the token itself): when that token
//! is revoked or expires, delivery stops and the subscription says why. Both are kept beside the
//! log in the store (this node's state, not events). Delivering is the HTTP door's job; this
//! module decides what each delivery holds and where each subscription stands:
//! [`Service::next_delivery`] reads the results after its position, [`Service::delivered`]
//! moves the position once the receiver has them (so a delivery is at least once).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, DurationRound, SecondsFormat, Timelike, Utc};
use lotline_epcis::query::Query;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::access::{Credential, Identity, Role, Scope, Who};
use crate::queries::epcis::{Cursor, EpcisPage};
use crate::{Caller, Service, ServiceError};

/// The longest query name.
pub const MAX_NAME: usize = 128;
/// The most named queries one org keeps, and the most subscriptions one org holds.
pub const MAX_PER_ORG: usize = 1_000;
/// The most events one delivery carries.
pub const DELIVERY_EVENTS: usize = 500;

const QUERIES: &str = "query";
const SUBSCRIPTIONS: &str = "subscription";

/// A query kept under a name.
#[derive(Debug, Clone)]
pub struct NamedQuery {
    pub name: String,
    /// The org that created it ("" on a server without access control).
    pub owner: String,
    pub query: Query,
    pub created_at: DateTime<Utc>,
}

/// When a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// As soon as new events match.
    Stream,
    /// At the times the schedule matches, with the events recorded since the last delivery.
    Schedule(Box<Schedule>),
}

/// What a caller asks for when it subscribes.
#[derive(Debug, Clone)]
pub struct SubscriptionRequest {
    /// Where results go (a webhook URL the operator allows).
    pub dest: String,
    /// The secret the deliveries are signed with.
    pub signature_token: Option<String>,
    pub trigger: Trigger,
    /// Deliver a scheduled result even when it is empty.
    pub report_if_empty: bool,
    /// Deliver events recorded from this time on (default: from now).
    pub initial_record_time: Option<DateTime<Utc>>,
}

/// A subscription and where its delivery stands.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub owner: String,
    pub query_name: String,
    pub dest: String,
    pub signature_token: Option<String>,
    pub trigger: Trigger,
    pub report_if_empty: bool,
    pub initial_record_time: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When the receiver last took a delivery.
    pub last_notified_at: Option<DateTime<Utc>>,
    /// The log position delivered through: the next delivery holds results after it.
    pub after: u64,
    /// Deliveries that failed since the last one that succeeded.
    pub failures: u32,
    pub last_error: Option<String>,
    /// Set when delivery stopped for good (the credential that created it is gone).
    pub stopped: Option<String>,
    /// Who it delivers for (`None`: a server without access control).
    identity: Option<Identity>,
}

impl Subscription {
    /// The subscription as the binding shows it (never the secret).
    pub fn to_json(&self) -> Value {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut v = json!({
            "subscriptionID": self.id,
            "queryName": self.query_name,
            "dest": self.dest,
            "createdAt": time(&self.created_at),
            "reportIfEmpty": self.report_if_empty,
            "signed": self.signature_token.is_some(),
            "deliveredThroughSequence": self.after,
            "failures": self.failures,
        });
        match &self.trigger {
            Trigger::Stream => v["stream"] = json!(true),
            Trigger::Schedule(s) => v["schedule"] = s.to_json(),
        }
        if let Some(t) = &self.initial_record_time {
            v["initialRecordTime"] = json!(time(t));
        }
        if let Some(t) = &self.last_notified_at {
            v["lastNotifiedAt"] = json!(time(t));
            v["minRecordTime"] = json!(time(t));
        }
        if let Some(e) = &self.last_error {
            v["lastError"] = json!(e);
        }
        if let Some(e) = &self.stopped {
            v["stopped"] = json!(e);
        }
        v
    }

    fn store_form(&self) -> Value {
        let mut v = self.to_json();
        v["owner"] = json!(self.owner);
        v["after"] = json!(self.after);
        v["signatureToken"] = json!(self.signature_token);
        v["identity"] = self.identity.as_ref().map_or(Value::Null, identity_json);
        v
    }

    fn from_store(v: &Value) -> Option<Subscription> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let time = |k: &str| {
            text(k)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let trigger = match v.get("schedule") {
            Some(s) => Trigger::Schedule(Box::new(Schedule::from_json(s).ok()?)),
            None => Trigger::Stream,
        };
        let identity = match v.get("identity") {
            Some(Value::Null) | None => None,
            Some(i) => Some(identity_from_json(i)?),
        };
        Some(Subscription {
            id: text("subscriptionID")?,
            owner: text("owner")?,
            query_name: text("queryName")?,
            dest: text("dest")?,
            signature_token: text("signatureToken"),
            trigger,
            report_if_empty: v.get("reportIfEmpty")?.as_bool()?,
            initial_record_time: time("initialRecordTime"),
            created_at: time("createdAt")?,
            last_notified_at: time("lastNotifiedAt"),
            after: v.get("after")?.as_u64()?,
            failures: v.get("failures")?.as_u64()? as u32,
            last_error: text("lastError"),
            stopped: text("stopped"),
            identity,
        })
    }
}

fn identity_json(id: &Identity) -> Value {
    let time = |t: &Option<DateTime<chrono::FixedOffset>>| t.map(|t| t.to_rfc3339());
    json!({
        "org": id.org,
        "roles": id.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "scope": {
            "orgs": id.scope.orgs,
            "chains": id.scope.chains.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
            "from": time(&id.scope.from),
            "to": time(&id.scope.to),
        },
        "onBehalfOf": id.on_behalf_of,
        "tokenID": id.token_id,
        "expires": id.expires.map(|t| t.to_rfc3339()),
        "certificate": id.credential == Credential::Certificate,
    })
}

fn identity_from_json(v: &Value) -> Option<Identity> {
    let strings = |v: &Value| -> Option<BTreeSet<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let time = |v: &Value| match v {
        Value::Null => Some(None),
        v => DateTime::parse_from_rfc3339(v.as_str()?).ok().map(Some),
    };
    let scope = &v["scope"];
    Some(Identity {
        org: v["org"].as_str()?.to_string(),
        roles: strings(&v["roles"])?
            .iter()
            .map(|r| Role::parse(r))
            .collect::<Option<_>>()?,
        scope: Scope {
            orgs: strings(&scope["orgs"])?,
            chains: strings(&scope["chains"])?
                .iter()
                .map(|c| lotline_domain::Chain::parse(c))
                .collect::<Option<_>>()?,
            from: time(&scope["from"])?,
            to: time(&scope["to"])?,
        },
        on_behalf_of: strings(&v["onBehalfOf"])?,
        token_id: v["tokenID"].as_str().map(str::to_string),
        expires: time(&v["expires"])?.map(|t| t.with_timezone(&Utc)),
        credential: if v["certificate"].as_bool()? {
            Credential::Certificate
        } else {
            Credential::Token
        },
    })
}

/// A delivery's results and the position it takes the subscription to.
#[derive(Debug)]
pub struct Delivery {
    pub page: EpcisPage,
    pub through: u64,
    /// Whether more results wait beyond this delivery.
    pub more: bool,
}

/// Named queries and subscriptions: what is kept, and who waits for changes to it.
pub(crate) struct Standing {
    /// Bumped whenever subscriptions change (created, deleted, stopped).
    changed: watch::Sender<u64>,
    /// Serialises changes to the kept records (their counts and names).
    lock: tokio::sync::Mutex<()>,
}

impl Default for Standing {
    fn default() -> Self {
        Standing {
            changed: watch::channel(0).0,
            lock: tokio::sync::Mutex::new(()),
        }
    }
}

/// The webhook destinations the operator allows (`serve --webhook-allow PREFIX`): a URL must
/// start with one of them. None: no webhook subscriptions.
#[derive(Debug, Clone, Default)]
pub struct WebhookAllow(pub Vec<String>);

impl WebhookAllow {
    pub fn check(&self, dest: &str) -> Result<(), ServiceError> {
        let lower = dest.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(ServiceError::invalid(
                "dest",
                format!("{dest:?} is not an http:// or https:// URL"),
            ));
        }
        if dest.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ServiceError::invalid(
                "dest",
                "the URL holds spaces or control characters",
            ));
        }
        // A prefix must end where a host, port or path segment ends, so `https://a.example`
        // does not allow `https://a.example.evil.net`.
        let allowed = self.0.iter().any(|prefix| {
            dest.starts_with(prefix.as_str())
                && (prefix.ends_with('/')
                    || dest[prefix.len()..].is_empty()
                    || dest[prefix.len()..].starts_with(['/', '?']))
        });
        if !allowed {
            return Err(ServiceError::PermissionDenied(if self.0.is_empty() {
                "dest: this server delivers to no webhooks (the operator allows destinations with `serve --webhook-allow URL-PREFIX`)".into()
            } else {
                format!(
                    "dest: {dest:?} is not a destination the operator allows (allowed: {})",
                    self.0.join(", ")
                )
            }));
        }
        Ok(())
    }
}

fn owner_of(caller: &Caller) -> Result<String, ServiceError> {
    match &caller.who {
        Who::Open => Ok(String::new()),
        Who::Anonymous => Err(ServiceError::Unauthenticated(
            "named queries and subscriptions need a credential".into(),
        )),
        Who::Party(id) => Ok(id.org.clone()),
    }
}

fn query_key(owner: &str, name: &str) -> String {
    format!("{owner}\u{0}{name}")
}

/// Checks a query name as the binding's paths carry it.
pub fn check_name(name: &str) -> Result<(), ServiceError> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ServiceError::invalid(
            "name",
            format!("a query name has 1 to {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "a query name holds no control characters",
        ));
    }
    Ok(())
}

fn query_json(q: &NamedQuery) -> Value {
    json!({
        "name": q.name,
        "owner": q.owner,
        "params": q.query.params(),
        "createdAt": q.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

fn query_from_json(v: &Value) -> Option<NamedQuery> {
    let params: Vec<(String, String)> = serde_json::from_value(v["params"].clone()).ok()?;
    Some(NamedQuery {
        name: v["name"].as_str()?.to_string(),
        owner: v["owner"].as_str()?.to_string(),
        query: Query::parse(params.iter().map(|(n, v)| (n.as_str(), v.as_str()))).ok()?,
        created_at: DateTime::parse_from_rfc3339(v["createdAt"].as_str()?)
            .ok()?
            .with_timezone(&Utc),
    })
}

fn new_id() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| ServiceError::Internal(format!("no randomness for an id: {e}")))?;
    Ok(hex::encode(bytes))
}

fn corrupt(what: &str, name: &str) -> ServiceError {
    ServiceError::Internal(format!("the kept {what} {name:?} cannot be read"))
}

impl Service {
    fn kept_queries(&self) -> Result<Vec<NamedQuery>, ServiceError> {
        let store = &self.ready()?.store;
        store
            .kept(QUERIES)?
            .into_iter()
            .map(|(name, bytes)| {
                serde_json::from_slice(&bytes)
                    .ok()
                    .as_ref()
                    .and_then(query_from_json)
                    .ok_or_else(|| corrupt("query", &name))
            })
            .collect()
    }

    fn kept_subscriptions(&self) -> Result<Vec<Subscription>, ServiceError> {
        let store = &self.ready()?.store;
        store
            .kept(SUBSCRIPTIONS)?
            .into_iter()
            .map(|(id, bytes)| {
                serde_json::from_slice(&bytes)
                    .ok()
                    .as_ref()
                    .and_then(Subscription::from_store)
                    .ok_or_else(|| corrupt("subscription", &id))
            })
            .collect()
    }

    /// The kept subscription `id`, if there is one.
    fn kept_subscription(&self, id: &str) -> Result<Option<Subscription>, ServiceError> {
        match self.ready()?.store.kept_one(SUBSCRIPTIONS, id)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .ok()
                .as_ref()
                .and_then(Subscription::from_store)
                .map(Some)
                .ok_or_else(|| corrupt("subscription", id)),
        }
    }

    fn keep_subscription(&self, s: &Subscription) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec(&s.store_form())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(self
            .ready()?
            .store
            .keep(SUBSCRIPTIONS, &s.id, Some(bytes))?)
    }

    /// Keeps `query` under `name` for the caller's org.
    pub async fn create_query(
        &self,
        caller: &Caller,
        name: &str,
        query: Query,
    ) -> Result<NamedQuery, ServiceError> {
        let owner = owner_of(caller)?;
        check_name(name)?;
        let _changing = self.standing.lock.lock().await;
        let mine = self
            .kept_queries()?
            .into_iter()
            .filter(|q| q.owner == owner)
            .collect::<Vec<_>>();
        if mine.iter().any(|q| q.name == name) {
            return Err(ServiceError::AlreadyExists(format!(
                "query {name:?}: a query with this name exists (delete it first to define it again)"
            )));
        }
        if mine.len() >= MAX_PER_ORG {
            return Err(ServiceError::LimitExceeded {
                field: "queries",
                limit: MAX_PER_ORG,
                message: format!("an org keeps at most {MAX_PER_ORG} named queries"),
            });
        }
        let named = NamedQuery {
            name: name.to_string(),
            owner: owner.clone(),
            query,
            created_at: Utc::now(),
        };
        let bytes = serde_json::to_vec(&query_json(&named))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.ready()?
            .store
            .keep(QUERIES, &query_key(&owner, name), Some(bytes))?;
        Ok(named)
    }

    /// The caller's org's named queries, by name.
    pub fn named_queries(&self, caller: &Caller) -> Result<Vec<NamedQuery>, ServiceError> {
        let owner = owner_of(caller)?;
        let mut mine: Vec<NamedQuery> = self
            .kept_queries()?
            .into_iter()
            .filter(|q| q.owner == owner)
            .collect();
        mine.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(mine)
    }

    /// The caller's org's query `name`.
    pub fn named_query(&self, caller: &Caller, name: &str) -> Result<NamedQuery, ServiceError> {
        let owner = owner_of(caller)?;
        match self
            .ready()?
            .store
            .kept_one(QUERIES, &query_key(&owner, name))?
        {
            None => Err(ServiceError::NotFound(format!(
                "query {name:?}: your org has no query with this name"
            ))),
            Some(bytes) => serde_json::from_slice(&bytes)
                .ok()
                .as_ref()
                .and_then(query_from_json)
                .ok_or_else(|| corrupt("query", name)),
        }
    }

    /// Removes the caller's org's query `name` and every subscription to it.
    pub async fn delete_query(&self, caller: &Caller, name: &str) -> Result<(), ServiceError> {
        let named = self.named_query(caller, name)?;
        let _changing = self.standing.lock.lock().await;
        let store = &self.ready()?.store;
        for s in self.kept_subscriptions()? {
            if s.owner == named.owner && s.query_name == named.name {
                store.keep(SUBSCRIPTIONS, &s.id, None)?;
            }
        }
        store.keep(QUERIES, &query_key(&named.owner, name), None)?;
        self.standing.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Subscribes the caller to its org's query `name`.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        name: &str,
        request: SubscriptionRequest,
    ) -> Result<Subscription, ServiceError> {
        let named = self.named_query(caller, name)?;
        self.webhooks.check(&request.dest)?;
        if let Some(token) = &request.signature_token
            && (token.is_empty() || token.len() > 1024)
        {
            return Err(ServiceError::invalid(
                "signatureToken",
                "a signature token has 1 to 1024 bytes",
            ));
        }
        if let Trigger::Schedule(schedule) = &request.trigger
            && schedule.next_after(Utc::now()).is_none()
        {
            return Err(ServiceError::invalid(
                "schedule",
                "the schedule never fires (no such date in the next four years)",
            ));
        }
        let _changing = self.standing.lock.lock().await;
        let held = self
            .kept_subscriptions()?
            .iter()
            .filter(|s| s.owner == named.owner)
            .count();
        if held >= MAX_PER_ORG {
            return Err(ServiceError::LimitExceeded {
                field: "subscriptions",
                limit: MAX_PER_ORG,
                message: format!("an org holds at most {MAX_PER_ORG} subscriptions"),
            });
        }
        let after = self
            .position_at(caller, request.initial_record_time)
            .await?;
        let subscription = Subscription {
            id: new_id()?,
            owner: named.owner,
            query_name: named.name,
            dest: request.dest,
            signature_token: request.signature_token,
            trigger: request.trigger,
            report_if_empty: request.report_if_empty,
            initial_record_time: request.initial_record_time,
            created_at: Utc::now(),
            last_notified_at: None,
            after,
            failures: 0,
            last_error: None,
            stopped: None,
            identity: caller.identity().cloned(),
        };
        self.keep_subscription(&subscription)?;
        self.standing.changed.send_modify(|n| *n += 1);
        Ok(subscription)
    }

    /// The caller's org's subscriptions to its query `name`.
    pub fn subscriptions(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Vec<Subscription>, ServiceError> {
        let named = self.named_query(caller, name)?;
        Ok(self
            .kept_subscriptions()?
            .into_iter()
            .filter(|s| s.owner == named.owner && s.query_name == named.name)
            .collect())
    }

    /// One of the caller's org's subscriptions to its query `name`.
    pub fn subscription(
        &self,
        caller: &Caller,
        name: &str,
        id: &str,
    ) -> Result<Subscription, ServiceError> {
        self.subscriptions(caller, name)?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "subscription {id:?}: query {name:?} has no subscription with this id"
                ))
            })
    }

    /// Ends a subscription.
    pub async fn unsubscribe(
        &self,
        caller: &Caller,
        name: &str,
        id: &str,
    ) -> Result<(), ServiceError> {
        let s = self.subscription(caller, name, id)?;
        let _changing = self.standing.lock.lock().await;
        self.ready()?.store.keep(SUBSCRIPTIONS, &s.id, None)?;
        self.standing.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Every subscription kept on this node (for the door that delivers them).
    pub fn all_subscriptions(&self) -> Result<Vec<Subscription>, ServiceError> {
        self.kept_subscriptions()
    }

    /// Changes whenever a subscription is created, deleted or stopped.
    pub fn subscriptions_changed(&self) -> watch::Receiver<u64> {
        self.standing.changed.subscribe()
    }

    /// Why `identity`'s credential no longer holds, if it does not (expired, revoked).
    fn lapsed(&self, identity: &Identity) -> Option<String> {
        if let Some(expires) = identity.expires
            && expires <= Utc::now()
        {
            return Some(format!("the token expired at {}", expires.to_rfc3339()));
        }
        let token = identity.token_id.as_ref()?;
        match self.revoked(token) {
            Ok(true) => Some(format!("the token {token} was revoked")),
            Ok(false) => None,
            Err(e) => Some(format!("cannot check the token {token}: {e}")),
        }
    }

    /// Refuses a long-lived caller (a WebSocket subscriber, a gRPC watch) whose credential has
    /// expired or been revoked since it connected.
    pub fn still_valid(&self, caller: &Caller) -> Result<(), ServiceError> {
        match caller.identity().and_then(|id| self.lapsed(id)) {
            None => Ok(()),
            Some(reason) => {
                Err(self.refuse(&caller.describe(), ServiceError::Unauthenticated(reason)))
            }
        }
    }

    /// The caller a subscription delivers for, or why it no longer can.
    fn subscriber(&self, s: &Subscription) -> Result<Caller, String> {
        let Some(identity) = &s.identity else {
            return Ok(Caller::open(false));
        };
        if let Some(reason) = self.lapsed(identity) {
            return Err(format!("the credential that created it lapsed: {reason}"));
        }
        Ok(Caller::party(
            Arc::new(identity.clone()),
            false,
            self.access.public_geometry,
        ))
    }

    /// The results a subscription delivers next: those after its position, at most
    /// [`DELIVERY_EVENTS`]. `None`: the subscription is gone (deleted, or stopped for good,
    /// which it records).
    pub async fn next_delivery(&self, id: &str) -> Result<Option<Delivery>, ServiceError> {
        let Some(s) = self.kept_subscription(id)? else {
            return Ok(None);
        };
        if s.stopped.is_some() {
            return Ok(None);
        }
        let caller = match self.subscriber(&s) {
            Ok(c) => c.until(std::time::Instant::now().checked_add(DELIVERY_READ)),
            Err(reason) => {
                self.stop_subscription(s, reason).await?;
                return Ok(None);
            }
        };
        let Ok(named) = self.named_query(&caller, &s.query_name) else {
            return Ok(None);
        };
        let page = self
            .epcis_events(
                &caller,
                named.query,
                Cursor::After(s.after),
                DELIVERY_EVENTS,
            )
            .await?;
        let more = page.next.is_some();
        let through = page.through;
        Ok(Some(Delivery {
            page,
            through,
            more,
        }))
    }

    async fn stop_subscription(
        &self,
        mut s: Subscription,
        reason: String,
    ) -> Result<(), ServiceError> {
        let _changing = self.standing.lock.lock().await;
        if self.kept_subscription(&s.id)?.is_none() {
            return Ok(());
        }
        tracing::warn!(subscription = %s.id, %reason, "a subscription stopped");
        s.stopped = Some(reason);
        self.keep_subscription(&s)?;
        self.standing.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Records a delivery's outcome: on success the position moves to `through`; on failure
    /// it stays and the error is kept. Answers the failures since the last success.
    pub async fn delivered(
        &self,
        id: &str,
        outcome: Result<u64, String>,
    ) -> Result<u32, ServiceError> {
        let _changing = self.standing.lock.lock().await;
        let Some(mut s) = self.kept_subscription(id)? else {
            return Ok(0);
        };
        match outcome {
            Ok(through) => {
                s.after = s.after.max(through);
                s.failures = 0;
                s.last_error = None;
                s.last_notified_at = Some(Utc::now());
            }
            Err(e) => {
                s.failures = s.failures.saturating_add(1);
                s.last_error = Some(e);
            }
        }
        self.keep_subscription(&s)?;
        Ok(s.failures)
    }

    /// The log position just before the first event recorded at or after `time` (the end of
    /// the log when `time` is `None`): where a subscription or a watch that starts then
    /// stands.
    pub async fn position_at(
        &self,
        caller: &Caller,
        time: Option<DateTime<Utc>>,
    ) -> Result<u64, ServiceError> {
        self.read(caller.reading(), move |store, _| {
            let Some(time) = time else {
                return Ok(store.upto());
            };
            // Record times never go back in the log: the first at or after `time` is found by
            // halving.
            let (mut low, mut high) = (1, store.upto() + 1);
            while low < high {
                let mid = low + (high - low) / 2;
                match store.event_at(mid)? {
                    Some(e) if e.record_time < time => low = mid + 1,
                    _ => high = mid,
                }
            }
            Ok(low - 1)
        })
        .await
    }

    /// Waits until readers see the log beyond `after`; answers where it ends then.
    pub async fn log_beyond(&self, after: u64) -> Result<u64, ServiceError> {
        let mut changes = self.ready()?.store.durable_changes();
        let end = *changes
            .wait_for(|end| *end > after)
            .await
            .map_err(|_| ServiceError::NotReady("the store closed".into()))?;
        Ok(end)
    }
}

/// How long one delivery's query may read.
const DELIVERY_READ: std::time::Duration = std::time::Duration::from_secs(60);

/// When a scheduled subscription delivers: like a cron line, each field a set of values
/// (`"5"`, `"1,3,5"`, `"[1-5]"`, `"1-5"`, `"*/15"`); a field left out matches every value, and
/// the fields below the largest one given default to their first value (`{"hour": "1"}` is
/// 01:00:00 every day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    fields: [Option<BTreeSet<u32>>; 6],
    texts: [Option<String>; 6],
}

const FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("dayOfMonth", 1, 31),
    ("month", 1, 12),
    ("dayOfWeek", 1, 7),
];

impl Schedule {
    /// A schedule from its fields (the binding's names), each a value set.
    pub fn parse<'a>(
        given: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Schedule, ServiceError> {
        let mut fields: [Option<BTreeSet<u32>>; 6] = Default::default();
        let mut texts: [Option<String>; 6] = Default::default();
        for (name, text) in given {
            let Some(n) = FIELDS.iter().position(|(f, _, _)| *f == name) else {
                return Err(ServiceError::invalid(
                    "schedule",
                    format!(
                        "{name:?} is not a schedule field (second, minute, hour, dayOfMonth, month, dayOfWeek)"
                    ),
                ));
            };
            let (_, min, max) = FIELDS[n];
            fields[n] = Some(parse_field(name, text, min, max)?);
            texts[n] = Some(text.to_string());
        }
        let Some(largest) = (0..6).rev().find(|&n| fields[n].is_some()) else {
            return Err(ServiceError::invalid(
                "schedule",
                "a schedule gives at least one of second, minute, hour, dayOfMonth, month, dayOfWeek",
            ));
        };
        // Below the largest field given, a field left out is its first value (once an hour,
        // not every second of it), except the days, which are each other's alternatives.
        for n in 0..largest.min(3) {
            if fields[n].is_none() {
                fields[n] = Some([FIELDS[n].1].into_iter().collect());
            }
        }
        Ok(Schedule { fields, texts })
    }

    fn from_json(v: &Value) -> Result<Schedule, ServiceError> {
        let Some(object) = v.as_object() else {
            return Err(ServiceError::invalid("schedule", "a schedule is an object"));
        };
        let mut given = Vec::new();
        for (name, value) in object {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ServiceError::invalid(
                        "schedule",
                        format!("{name}: a schedule value is a string such as \"5\" or \"1,3\""),
                    ));
                }
            };
            given.push((name.clone(), text));
        }
        Schedule::parse(given.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    }

    /// The schedule as it was given.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::Map::new();
        for (n, text) in self.texts.iter().enumerate() {
            if let Some(t) = text {
                v.insert(FIELDS[n].0.into(), json!(t));
            }
        }
        Value::Object(v)
    }

    fn matches(&self, t: DateTime<Utc>) -> bool {
        let value = [
            t.second(),
            t.minute(),
            t.hour(),
            t.day(),
            t.month(),
            t.weekday().number_from_monday(),
        ];
        (0..6).all(|n| {
            self.fields[n]
                .as_ref()
                .is_none_or(|s| s.contains(&value[n]))
        })
    }

    /// The first time after `t` (whole seconds) the schedule matches, within about four years.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut at = t.duration_trunc(Duration::seconds(1)).ok()? + Duration::seconds(1);
        let end = at + Duration::days(366 * 4 + 1);
        while at < end {
            let day_ok = (3..6).all(|n| {
                let v = [at.day(), at.month(), at.weekday().number_from_monday()][n - 3];
                self.fields[n].as_ref().is_none_or(|s| s.contains(&v))
            });
            if !day_ok {
                at = (at + Duration::days(1))
                    .duration_trunc(Duration::days(1))
                    .ok()?;
                continue;
            }
            if self.fields[2]
                .as_ref()
                .is_some_and(|s| !s.contains(&at.hour()))
            {
                at = (at + Duration::hours(1))
                    .duration_trunc(Duration::hours(1))
                    .ok()?;
                continue;
            }
            if self.fields[1]
                .as_ref()
                .is_some_and(|s| !s.contains(&at.minute()))
            {
                at = (at + Duration::minutes(1))
                    .duration_trunc(Duration::minutes(1))
                    .ok()?;
                continue;
            }
            if self.matches(at) {
                return Some(at);
            }
            at += Duration::seconds(1);
        }
        None
    }
}

fn parse_field(name: &str, text: &str, min: u32, max: u32) -> Result<BTreeSet<u32>, ServiceError> {
    let bad = || {
        ServiceError::invalid(
            "schedule",
            format!(
                "{name}: {text:?} is not a value set from {min} to {max} (\"5\", \"1,3\", \"[1-5]\", \"*/15\")"
            ),
        )
    };
    let number = |s: &str| -> Result<u32, ServiceError> {
        let n: u32 = s.trim().parse().map_err(|_| bad())?;
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    let mut set = BTreeSet::new();
    for part in text.split(',') {
        let part = part.trim();
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.trim().parse::<u32>().map_err(|_| bad())?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(bad());
        }
        let range = range.trim().trim_start_matches('[').trim_end_matches(']');
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (number(a)?, number(b)?)
        } else {
            let n = number(range)?;
            (n, if part.contains('/') { max } else { n })
        };
        if from > to {
            return Err(bad());
        }
        set.extend((from..=to).step_by(step as usize));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn schedules_fire_when_their_fields_match() {
        let daily = Schedule::parse([("hour", "1"), ("minute", "5")]).unwrap();
        assert_eq!(
            daily.next_after(at("2026-12-05T08:00:00Z")),
            Some(at("2026-12-06T01:05:00Z"))
        );
        assert_eq!(
            daily.next_after(at("2026-12-06T01:04:59Z")),
            Some(at("2026-12-06T01:05:00Z"))
        );
        let every_30s = Schedule::parse([("second", "0/30")]).unwrap();
        assert_eq!(
            every_30s.next_after(at("2026-12-05T08:00:10Z")),
            Some(at("2026-12-05T08:00:30Z"))
        );
        // Mondays (1) at midnight.
        let mondays = Schedule::parse([("dayOfWeek", "1")]).unwrap();
        assert_eq!(
            mondays.next_after(at("2026-12-05T08:00:00Z")),
            Some(at("2026-12-07T00:00:00Z"))
        );
        let ranges = Schedule::parse([("minute", "[10-12],40"), ("hour", "*")]).unwrap();
        assert_eq!(
            ranges.next_after(at("2026-12-05T08:12:00Z")),
            Some(at("2026-12-05T08:40:00Z"))
        );
        assert_eq!(
            ranges.to_json(),
            json!({"minute": "[10-12],40", "hour": "*"})
        );
        // 31 February never comes.
        let never = Schedule::parse([("dayOfMonth", "31"), ("month", "2")]).unwrap();
        assert_eq!(never.next_after(at("2026-12-05T08:00:00Z")), None);
        for bad in [
            vec![("minute", "60")],
            vec![("hour", "x")],
            vec![("weekday", "1")],
            vec![("second", "5-1")],
            vec![],
        ] {
            assert!(Schedule::parse(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn webhook_destinations_must_be_allowed_prefixes() {
        let allow = WebhookAllow(vec![
            "https://client.example.com".into(),
            "http://127.0.0.1:9000/hooks/".into(),
        ]);
        allow.check("https://client.example.com/cb").unwrap();
        allow.check("https://client.example.com").unwrap();
        allow.check("http://127.0.0.1:9000/hooks/a").unwrap();
        for refused in [
            "https://client.example.com.evil.net/cb",
            "https://client.example.comx/cb",
            "http://127.0.0.1:9000/other",
            "ftp://client.example.com/cb",
            "https://client.example.com/a b",
        ] {
            assert!(allow.check(refused).is_err(), "{refused}");
        }
        assert!(matches!(
            WebhookAllow::default().check("https://client.example.com/cb"),
            Err(ServiceError::PermissionDenied(_))
        ));
    }

    #[test]
    fn a_subscription_and_its_identity_survive_the_store() {
        let identity = Identity {
            org: "brand".into(),
            roles: [Role::Member, Role::Auditor].into_iter().collect(),
            scope: Scope {
                orgs: ["coop".to_string()].into_iter().collect(),
                chains: [lotline_domain::Chain::Cocoa].into_iter().collect(),
                from: Some(DateTime::parse_from_rfc3339("2026-01-01T00:00:00+02:00").unwrap()),
                to: None,
            },
            on_behalf_of: Default::default(),
            token_id: Some("t1".into()),
            expires: Some(at("2027-01-01T00:00:00Z")),
            credential: Credential::Token,
        };
        let s = Subscription {
            id: "abc".into(),
            owner: "brand".into(),
            query_name: "q".into(),
            dest: "https://x/cb".into(),
            signature_token: Some("secret".into()),
            trigger: Trigger::Schedule(Box::new(Schedule::parse([("minute", "5")]).unwrap())),
            report_if_empty: true,
            initial_record_time: Some(at("2026-12-01T00:00:00Z")),
            created_at: at("2026-12-05T00:00:00Z"),
            last_notified_at: None,
            after: 42,
            failures: 2,
            last_error: Some("503".into()),
            stopped: None,
            identity: Some(identity.clone()),
        };
        let back = Subscription::from_store(&s.store_form()).unwrap();
        assert_eq!(back.identity, Some(identity));
        assert_eq!(back.trigger, s.trigger);
        assert_eq!(
            (back.after, back.failures, back.signature_token.as_deref()),
            (42, 2, Some("secret"))
        );
        // The binding's form never shows the secret.
        assert!(!s.to_json().to_string().contains("secret"));
    }
}
