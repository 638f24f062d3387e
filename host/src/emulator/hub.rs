//! The telemetry hub: every event the emulator emits enters here, once, and
//! is fanned out to the subscribers whose types it matches, retained for the
//! caller ([`super::Emulator::events`]), and kept as this environment's
//! backlog so that an extension subscribing during init still receives
//! `platform.initStart`, as it does in Lambda.
//!
//! Everything is bounded: each subscriber's queue (a full queue drops the
//! event and counts it; an HTTP subscriber is then sent a
//! `platform.logsDropped`), the retained log (oldest first out) and the backlog.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::delivery::FlushSignal;
use crate::sources::telemetry::TelemetryEvent;

/// Ended subscriptions remembered for [`TelemetryHub::reports`].
const MAX_ENDED_SUBSCRIPTIONS: usize = 1_000;
/// Events of one environment kept for late subscribers.
const MAX_BACKLOG_EVENTS: usize = 10_000;

/// A class of telemetry a subscriber asks for (the Telemetry API's `types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TelemetryType {
    /// `platform.*` events.
    Platform,
    /// `function`: the runtime's output lines.
    Function,
    /// `extension`: the extensions' output lines.
    Extension,
}

impl TelemetryType {
    /// The name in a subscription request.
    pub fn as_str(self) -> &'static str {
        match self {
            TelemetryType::Platform => "platform",
            TelemetryType::Function => "function",
            TelemetryType::Extension => "extension",
        }
    }

    /// Reads a name of a subscription request.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "platform" => Some(TelemetryType::Platform),
            "function" => Some(TelemetryType::Function),
            "extension" => Some(TelemetryType::Extension),
            _ => None,
        }
    }

    fn of(event: &TelemetryEvent) -> Self {
        match event.event_type() {
            "function" => TelemetryType::Function,
            "extension" => TelemetryType::Extension,
            _ => TelemetryType::Platform,
        }
    }
}

/// An event serialised once, shared by every subscriber.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) json: Bytes,
}

/// Delivery counts of one subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Events accepted into the subscriber's queue.
    pub events_queued: u64,
    /// Events dropped because the queue was full.
    pub events_dropped: u64,
    /// Batches the subscriber answered with 2xx (HTTP only).
    pub batches_sent: u64,
    /// Events in those batches (HTTP only).
    pub events_sent: u64,
    /// Answers other than 2xx, re-deliveries included (HTTP only).
    pub batches_rejected: u64,
    /// Batches given up on: no connection, no answer, or rejected every time (HTTP only).
    pub batches_failed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct DeliveryCounters {
    pub(crate) events_queued: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) bytes_dropped: AtomicU64,
    /// Dropped since the last `platform.logsDropped` was sent.
    pub(crate) unreported_drops: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
    pub(crate) events_sent: AtomicU64,
    pub(crate) batches_rejected: AtomicU64,
    pub(crate) batches_failed: AtomicU64,
}

impl DeliveryCounters {
    fn snapshot(&self) -> DeliveryStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DeliveryStats {
            events_queued: get(&self.events_queued),
            events_dropped: get(&self.events_dropped),
            batches_sent: get(&self.batches_sent),
            events_sent: get(&self.events_sent),
            batches_rejected: get(&self.batches_rejected),
            batches_failed: get(&self.batches_failed),
        }
    }
}

/// One subscription and how its deliveries went.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionReport {
    /// The subscribing extension's name, or `pyrometer` for the caller's own.
    pub name: String,
    /// Where events go: the URI, or `channel` for an in-process subscriber.
    pub destination: String,
    /// Types subscribed to.
    pub types: Vec<TelemetryType>,
    /// Still receiving events (its environment is alive, its receiver not dropped).
    pub active: bool,
    /// Counts.
    pub stats: DeliveryStats,
}

/// Who a subscription belongs to, and so when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    /// An extension of one environment: ends with that environment.
    Extension { generation: u64, id: String },
    /// The emulator's caller: lasts as long as its receiver.
    Caller,
}

pub(crate) enum Sink {
    Http {
        tx: mpsc::Sender<Arc<Encoded>>,
        flush: Arc<FlushSignal>,
    },
    Channel(std::sync::mpsc::SyncSender<TelemetryEvent>),
}

pub(crate) struct Subscriber {
    pub(crate) name: String,
    pub(crate) destination: String,
    pub(crate) owner: Owner,
    pub(crate) types: Vec<TelemetryType>,
    pub(crate) sink: Sink,
    pub(crate) counters: Arc<DeliveryCounters>,
}

/// A subscription that no longer receives events; its dispatcher may still
/// be sending what it held, so its counters stay live.
struct Ended {
    name: String,
    destination: String,
    types: Vec<TelemetryType>,
    counters: Arc<DeliveryCounters>,
}

impl Ended {
    fn report(&self) -> SubscriptionReport {
        SubscriptionReport {
            name: self.name.clone(),
            destination: self.destination.clone(),
            types: self.types.clone(),
            active: false,
            stats: self.counters.snapshot(),
        }
    }
}

impl Subscriber {
    fn report(&self) -> SubscriptionReport {
        SubscriptionReport {
            name: self.name.clone(),
            destination: self.destination.clone(),
            types: self.types.clone(),
            active: true,
            stats: self.counters.snapshot(),
        }
    }

    fn end(self) -> Ended {
        Ended {
            name: self.name,
            destination: self.destination,
            types: self.types,
            counters: self.counters,
        }
    }

    /// Queues one event; false if the subscriber is gone for good.
    fn offer(&self, event: &TelemetryEvent, encoded: &Arc<Encoded>) -> bool {
        let full = match &self.sink {
            Sink::Http { tx, .. } => match tx.try_send(encoded.clone()) {
                Ok(()) => false,
                Err(mpsc::error::TrySendError::Full(_)) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            },
            Sink::Channel(tx) => match tx.try_send(event.clone()) {
                Ok(()) => false,
                Err(std::sync::mpsc::TrySendError::Full(_)) => true,
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return false,
            },
        };
        if full {
            self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
            self.counters
                .unreported_drops
                .fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes_dropped
                .fetch_add(encoded.json.len() as u64, Ordering::Relaxed);
        } else {
            self.counters.events_queued.fetch_add(1, Ordering::Relaxed);
        }
        true
    }
}

struct HubInner {
    retained: VecDeque<TelemetryEvent>,
    max_retained: usize,
    retained_dropped: u64,
    emitted: u64,
    backlog: VecDeque<(TelemetryEvent, Arc<Encoded>)>,
    subscribers: Vec<Subscriber>,
    finished: Vec<Ended>,
}

impl HubInner {
    /// Keeps the history of ended subscriptions bounded.
    fn forget_oldest_ended(&mut self) {
        let excess = self.finished.len().saturating_sub(MAX_ENDED_SUBSCRIPTIONS);
        self.finished.drain(..excess);
    }
}

/// Fan-out, retention and backlog of the emulator's telemetry.
pub(crate) struct TelemetryHub {
    inner: Mutex<HubInner>,
}

impl TelemetryHub {
    pub(crate) fn new(max_retained: usize) -> Self {
        TelemetryHub {
            inner: Mutex::new(HubInner {
                retained: VecDeque::new(),
                max_retained,
                retained_dropped: 0,
                emitted: 0,
                backlog: VecDeque::new(),
                subscribers: Vec::new(),
                finished: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Emits one event to everyone who wants it.
    pub(crate) fn emit(&self, event: TelemetryEvent) {
        let json = match serde_json::to_vec(&event) {
            Ok(json) => Bytes::from(json),
            // Serialising our own types into a Vec cannot fail; if it ever
            // did, subscribers would get nothing rather than a broken batch.
            Err(_) => return,
        };
        let encoded = Arc::new(Encoded { json });
        let class = TelemetryType::of(&event);
        let mut inner = self.lock();
        inner.emitted += 1;
        let mut gone = Vec::new();
        for (i, sub) in inner.subscribers.iter().enumerate() {
            if sub.types.contains(&class) && !sub.offer(&event, &encoded) {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            let sub = inner.subscribers.remove(i);
            inner.finished.push(sub.end());
            inner.forget_oldest_ended();
        }
        if inner.backlog.len() >= MAX_BACKLOG_EVENTS {
            inner.backlog.pop_front();
        }
        inner.backlog.push_back((event.clone(), encoded));
        if inner.max_retained > 0 {
            if inner.retained.len() >= inner.max_retained {
                inner.retained.pop_front();
                inner.retained_dropped += 1;
            }
            inner.retained.push_back(event);
        }
    }

    /// A new environment starts: its backlog starts empty.
    pub(crate) fn begin_environment(&self) {
        self.lock().backlog.clear();
    }

    /// Adds a subscriber; with `replay`, it first gets this environment's
    /// events so far (of its types).
    pub(crate) fn subscribe(&self, sub: Subscriber, replay: bool) {
        let mut inner = self.lock();
        // A second subscription by the same extension replaces the first.
        if let Owner::Extension { .. } = sub.owner
            && let Some(i) = inner.subscribers.iter().position(|s| s.owner == sub.owner)
        {
            let old = inner.subscribers.remove(i);
            inner.finished.push(old.end());
            inner.forget_oldest_ended();
        }
        if replay {
            for (event, encoded) in &inner.backlog {
                if sub.types.contains(&TelemetryType::of(event)) {
                    sub.offer(event, encoded);
                }
            }
        }
        inner.subscribers.push(sub);
    }

    /// Asks every HTTP subscriber to send what it holds now, and from now on
    /// without waiting out its buffering (the environment is shutting down).
    pub(crate) fn flush_all(&self) {
        for sub in &self.lock().subscribers {
            if let Sink::Http { flush, .. } = &sub.sink {
                flush.drain();
            }
        }
    }

    /// Ends the subscriptions of an environment's extensions. Their queues
    /// close, so their dispatchers send what they hold and stop.
    pub(crate) fn end_environment(&self, generation: u64) {
        let mut inner = self.lock();
        let (ended, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut inner.subscribers)
            .into_iter()
            .partition(
                |s| matches!(&s.owner, Owner::Extension { generation: g, .. } if *g == generation),
            );
        inner.subscribers = kept;
        inner
            .finished
            .extend(ended.into_iter().map(Subscriber::end));
        inner.forget_oldest_ended();
    }

    /// Every subscription so far, active ones first.
    pub(crate) fn reports(&self) -> Vec<SubscriptionReport> {
        let inner = self.lock();
        let mut out: Vec<_> = inner.subscribers.iter().map(Subscriber::report).collect();
        out.extend(inner.finished.iter().map(Ended::report));
        out
    }

    pub(crate) fn events(&self) -> Vec<TelemetryEvent> {
        self.lock().retained.iter().cloned().collect()
    }

    pub(crate) fn drain_events(&self) -> Vec<TelemetryEvent> {
        self.lock().retained.drain(..).collect()
    }

    /// (events emitted, events pushed out of the retained log).
    pub(crate) fn counts(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.emitted, inner.retained_dropped)
    }
}
