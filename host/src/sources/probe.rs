//! Decoder of the Python probe's datagrams (wire format v1, `host/python/PROTOCOL.md`).
//!
//! Data enters as raw datagrams read from the probe's Unix datagram socket, one
//! [`ProbeDecoder::decode`] call each, and leaves as [`ProbeMessage`]s: the init
//! record ([`PythonInit`]), complete import profiles ([`ImportProfile`],
//! reassembled from their chunks), one [`ProbeInvocation`] per handler call,
//! HTTP request windows ([`ProbeHttp`], one per datagram: a window split over
//! several datagrams needs no reassembly, its parts add up), and the fork and
//! exit records.
//!
//! Every datagram is untrusted input. Anything malformed, oversized, cut short
//! or of an unknown version is rejected with a [`RejectReason`] and counted in
//! [`DecoderStats`]; decoding never panics and never allocates more than the
//! limits below allow (a reassembly buffer per incomplete profile, bounded in
//! count, chunks and modules). The header of every datagram also feeds loss
//! accounting: the sequence gaps the decoder sees and the drop counts the
//! senders report.

use std::collections::HashMap;

use crate::model::{
    ExecTimeSource, GcGeneration, ImportProfile, ImportedModule, Origin, PythonInit, PythonRuntime,
    ReadyReason, Status,
};

/// The wire format version this decoder reads.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest datagram accepted, bytes (the probe never sends more).
pub const MAX_DATAGRAM_BYTES: usize = 8192;
/// Incomplete import profiles kept at once; the oldest is abandoned beyond this.
pub const MAX_PENDING_PROFILES: usize = 16;
/// Chunks one import profile may have (about 2 MB of text).
pub const MAX_CHUNKS_PER_PROFILE: u64 = 256;
/// Modules one import profile may have.
pub const MAX_PROFILE_MODULES: u64 = 65_536;
/// Sending processes whose sequence numbers are tracked; the least recent is forgotten beyond this.
pub const MAX_TRACKED_SENDERS: usize = 1024;

const MAGIC: &str = "pyrometer-probe";
/// Route label of requests no route matched (the probe's `UNMATCHED_ROUTE`).
pub const UNMATCHED_ROUTE: &str = "<unmatched>";
/// Route label of requests beyond the probe's series cap (its `OTHER_ROUTE`).
pub const OTHER_ROUTE: &str = "<other>";

/// Why a datagram was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RejectReason {
    /// Zero bytes.
    #[error("empty datagram")]
    Empty,
    /// Larger than [`MAX_DATAGRAM_BYTES`].
    #[error("datagram larger than {MAX_DATAGRAM_BYTES} bytes")]
    Oversized,
    /// Not valid UTF-8.
    #[error("datagram is not UTF-8")]
    NotUtf8,
    /// Does not end with a newline, or has fewer module or series lines than it announces: cut short.
    #[error("datagram was cut short")]
    Truncated,
    /// The first field is not `pyrometer-probe`.
    #[error("not a pyrometer probe datagram")]
    BadMagic,
    /// A wire format version this decoder does not read.
    #[error("unsupported wire format version")]
    UnsupportedVersion,
    /// A record kind this version does not define.
    #[error("unknown record kind")]
    UnknownKind,
    /// A line has fewer fields than its kind requires.
    #[error("a required field is missing")]
    MissingField,
    /// A numeric field does not parse (or is `-` where a value is required).
    #[error("a numeric field does not parse")]
    BadNumber,
    /// A field's value is outside its vocabulary (status, origin, phase, …).
    #[error("a field has a value outside its vocabulary")]
    BadValue,
    /// An import chunk contradicts its profile (index out of range, duplicate,
    /// inconsistent header), or an HTTP window contradicts itself (more series
    /// than announced, bucket counts that do not match the bounds or the count).
    #[error("an import chunk or HTTP window is inconsistent")]
    BadChunk,
    /// An import profile beyond [`MAX_PROFILE_MODULES`] or [`MAX_CHUNKS_PER_PROFILE`].
    #[error("an import profile exceeds the decoder's limits")]
    ProfileTooLarge,
    /// A module's parent does not precede it.
    #[error("a module's parent does not precede it")]
    BadParent,
}

impl RejectReason {
    /// Every reason, in a stable order (the index of [`RejectCounts`]).
    pub const ALL: [RejectReason; 13] = [
        RejectReason::Empty,
        RejectReason::Oversized,
        RejectReason::NotUtf8,
        RejectReason::Truncated,
        RejectReason::BadMagic,
        RejectReason::UnsupportedVersion,
        RejectReason::UnknownKind,
        RejectReason::MissingField,
        RejectReason::BadNumber,
        RejectReason::BadValue,
        RejectReason::BadChunk,
        RejectReason::ProfileTooLarge,
        RejectReason::BadParent,
    ];

    /// A short, stable name for metric labels (`reason="oversized"`).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::Oversized => "oversized",
            RejectReason::NotUtf8 => "not-utf8",
            RejectReason::Truncated => "truncated",
            RejectReason::BadMagic => "bad-magic",
            RejectReason::UnsupportedVersion => "unsupported-version",
            RejectReason::UnknownKind => "unknown-kind",
            RejectReason::MissingField => "missing-field",
            RejectReason::BadNumber => "bad-number",
            RejectReason::BadValue => "bad-value",
            RejectReason::BadChunk => "bad-chunk",
            RejectReason::ProfileTooLarge => "profile-too-large",
            RejectReason::BadParent => "bad-parent",
        }
    }

    fn index(self) -> usize {
        // `ALL` lists the variants in declaration order.
        self as usize
    }
}

/// Rejected datagrams, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectCounts([u64; RejectReason::ALL.len()]);

impl RejectCounts {
    /// Datagrams rejected for `reason`.
    pub fn get(&self, reason: RejectReason) -> u64 {
        self.0[reason.index()]
    }

    /// Datagrams rejected for any reason.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` for every reason, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (RejectReason, u64)> + '_ {
        RejectReason::ALL
            .iter()
            .map(|reason| (*reason, self.get(*reason)))
    }

    fn add(&mut self, reason: RejectReason) {
        self.0[reason.index()] += 1;
    }
}

/// What the decoder has seen since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Datagrams accepted (chunks of incomplete profiles included).
    pub accepted: u64,
    /// Datagrams rejected, by reason.
    pub rejected: RejectCounts,
    /// Datagrams the senders say they dropped (full or missing socket), from
    /// the drop counts in their headers.
    pub sender_dropped: u64,
    /// Datagrams missing between sequence numbers the decoder saw.
    pub sequence_gaps: u64,
    /// Import profiles completed.
    pub profiles_completed: u64,
    /// Incomplete import profiles given up (evicted, or their sender exited).
    pub profiles_abandoned: u64,
}

/// Which phase an import profile covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportPhase {
    /// Interpreter start to ready: the cold start's imports.
    Init,
    /// Imports made during an invocation (lazy imports).
    Invoke,
    /// Imports made after the last invocation, sent at exit.
    Exit,
}

/// The init record: the cold start, from exec to a ready handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInit {
    /// What the probe measured.
    pub init: PythonInit,
    /// The import profile sent with it (same sender).
    pub profile_id: u64,
    /// Modules in that profile.
    pub profile_modules: u64,
}

/// One reassembled import profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeImports {
    /// Per-process profile number.
    pub profile_id: u64,
    /// The phase it covers.
    pub phase: ImportPhase,
    /// The invocation the imports followed (0 for init).
    pub invocation: u64,
    /// The process-wide import number of the profile's first module.
    pub base_index: u64,
    /// The modules, parents before children.
    pub profile: ImportProfile,
}

/// One call of the handler, as the probe's wrapper measured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInvocation {
    /// `context.aws_request_id`, when the handler had one.
    pub request_id: Option<String>,
    /// Invocation number in the process, from 1.
    pub number: u64,
    /// The first invocation of the process.
    pub cold_start: bool,
    /// A cold start more than 10 s after ready: Lambda initialised ahead of demand.
    pub proactive_init: bool,
    /// Handler start, µs since the Unix epoch.
    pub start_unix_us: u64,
    /// Handler duration, ns.
    pub duration_ns: u64,
    /// [`Status::Success`] or [`Status::Error`].
    pub status: Status,
    /// The exception type when the handler raised.
    pub error_type: Option<String>,
    /// Runtime figures over the call.
    pub runtime: PythonRuntime,
    /// The wrapper's own time for this record, ns (excluding the send).
    pub probe_ns: u64,
}

/// A forked child's first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeFork {
    /// The process it was forked from.
    pub parent_pid: u32,
    /// When, µs since the Unix epoch.
    pub fork_unix_us: u64,
}

/// A forked child became ready on its own (a pre-fork server's worker that
/// loaded the application).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeReady {
    /// When, µs since the Unix epoch.
    pub ready_unix_us: u64,
    /// What marked it ready.
    pub reason: ReadyReason,
}

/// A process's last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeExit {
    /// Invocations the process served.
    pub invocations: u64,
    /// When it exited, µs since the Unix epoch.
    pub exit_unix_us: u64,
    /// Init records that never found a receiver.
    pub unsent: u64,
}

/// One (method, route template, status) series of HTTP requests in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSeries {
    /// Request method (`GET`), upper case.
    pub method: String,
    /// The route template (`/users/<id>`), never a raw path: bounded cardinality.
    pub route: String,
    /// Response status code (0 when the app raised before a response started).
    pub status: u16,
    /// Requests completed in the window.
    pub count: u64,
    /// Their total duration, µs.
    pub sum_us: u64,
    /// The slowest of them, µs.
    pub max_us: u64,
    /// Requests per bucket of [`ProbeHttp::bounds_us`], not cumulative, with
    /// one more entry at the end for those above the last bound.
    pub buckets: Vec<u64>,
}

/// A process's HTTP requests over one flush window, aggregated in the process
/// by the probe's WSGI/ASGI middleware (one record per window, not per request).
///
/// One record is one datagram. A window with more series than one datagram
/// holds arrives as several records with the same `window_end_unix_us`, each
/// repeating the window's fields; their series add up (a series is in one of
/// them only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeHttp {
    /// The framework the middleware hooked: `flask`, `django`, `starlette`, …
    pub framework: String,
    /// End of the window, µs since the Unix epoch.
    pub window_end_unix_us: u64,
    /// When this process completed its first request, µs since the Unix epoch.
    pub first_response_unix_us: Option<u64>,
    /// Requests in progress at the end of the window.
    pub in_flight: u64,
    /// Worst asyncio event-loop lag in the window, µs, where a loop runs.
    pub loop_lag_max_us: Option<u64>,
    /// Pending asyncio tasks at the last check, where a loop runs.
    pub loop_pending_tasks: Option<u64>,
    /// Upper bounds of the duration buckets, µs, ascending.
    pub bounds_us: Vec<u64>,
    /// One entry per series that saw requests in the window.
    pub series: Vec<HttpSeries>,
}

/// What one accepted datagram (or a completed set of chunks) carried.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeRecord {
    /// The cold start of the sending process.
    Init(ProbeInit),
    /// A complete import profile.
    Imports(ProbeImports),
    /// One handler call.
    Invocation(ProbeInvocation),
    /// The sender was forked from another probed process.
    Fork(ProbeFork),
    /// The sender, a forked child, became ready.
    Ready(ProbeReady),
    /// The sender exited.
    Exit(ProbeExit),
    /// A window of HTTP requests.
    Http(ProbeHttp),
}

/// A decoded record and the header of the datagram that completed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeMessage {
    /// The sending process.
    pub pid: u32,
    /// The datagram's sequence number in that process.
    pub seq: u64,
    /// Datagrams the sender had dropped before this one.
    pub dropped: u64,
    /// The record.
    pub record: ProbeRecord,
}

#[derive(Debug)]
struct SenderState {
    last_seq: u64,
    dropped: u64,
    last_seen: u64,
    /// The last `allocated_blocks` the sender read (it skips the read on some
    /// invocations when it is slow; see PROTOCOL.md).
    allocated_blocks: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    index: u64,
    parent: Option<u64>,
    self_us: u64,
    cumulative_us: u64,
    origin: Origin,
    error: Option<String>,
    module: String,
}

#[derive(Debug)]
struct PendingProfile {
    chunk_count: u64,
    base_index: u64,
    rows_total: u64,
    phase: ImportPhase,
    invocation: u64,
    chunks: Vec<Option<Vec<Row>>>,
    received: u64,
    first_seen: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkHead {
    profile_id: u64,
    chunk_index: u64,
    chunk_count: u64,
    base_index: u64,
    rows_total: u64,
    rows_in_chunk: u64,
    phase: ImportPhase,
    invocation: u64,
}

/// Decodes probe datagrams, reassembles chunked profiles, counts what it rejects.
#[derive(Debug, Default)]
pub struct ProbeDecoder {
    stats: DecoderStats,
    senders: HashMap<u32, SenderState>,
    pending: HashMap<(u32, u64), PendingProfile>,
    clock: u64,
}

impl ProbeDecoder {
    /// A decoder that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the decoder has seen so far.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    /// Import profiles waiting for more chunks.
    pub fn pending_profiles(&self) -> usize {
        self.pending.len()
    }

    /// Decode one datagram.
    ///
    /// `Ok(None)` is an accepted chunk of a profile that is not complete yet.
    /// Every `Err` is also counted in [`DecoderStats::rejected`].
    pub fn decode(&mut self, datagram: &[u8]) -> Result<Option<ProbeMessage>, RejectReason> {
        self.clock += 1;
        let result = self.decode_inner(datagram);
        match &result {
            Ok(_) => self.stats.accepted += 1,
            Err(reason) => self.stats.rejected.add(*reason),
        }
        result
    }

    fn decode_inner(&mut self, datagram: &[u8]) -> Result<Option<ProbeMessage>, RejectReason> {
        if datagram.is_empty() {
            return Err(RejectReason::Empty);
        }
        if datagram.len() > MAX_DATAGRAM_BYTES {
            return Err(RejectReason::Oversized);
        }
        let text = std::str::from_utf8(datagram).map_err(|_| RejectReason::NotUtf8)?;
        let text = text.strip_suffix('\n').ok_or(RejectReason::Truncated)?;
        let mut lines = text.split('\n');
        let header = lines.next().ok_or(RejectReason::Truncated)?;
        let mut fields = Fields::new(header);
        if fields.next_field()? != MAGIC {
            return Err(RejectReason::BadMagic);
        }
        let version = fields.next_field()?;
        if version.parse::<u32>().ok() != Some(PROTOCOL_VERSION) {
            return Err(RejectReason::UnsupportedVersion);
        }
        let kind = fields.next_field()?;
        if !matches!(
            kind,
            "init" | "imports" | "invoke" | "fork" | "ready" | "exit" | "http"
        ) {
            return Err(RejectReason::UnknownKind);
        }
        let pid = u32::try_from(fields.number()?).map_err(|_| RejectReason::BadNumber)?;
        let seq = fields.number()?;
        let dropped = fields.number()?;
        self.track_sender(pid, seq, dropped);

        let record = match kind {
            "init" => ProbeRecord::Init(parse_init(first_line(&mut lines)?)?),
            "invoke" => {
                let (mut invocation, allocated_blocks) = parse_invocation(first_line(&mut lines)?)?;
                invocation.runtime.allocated_blocks =
                    self.carry_allocated_blocks(pid, allocated_blocks);
                ProbeRecord::Invocation(invocation)
            }
            "fork" => {
                let mut fields = Fields::new(first_line(&mut lines)?);
                ProbeRecord::Fork(ProbeFork {
                    parent_pid: u32::try_from(fields.number()?)
                        .map_err(|_| RejectReason::BadNumber)?,
                    fork_unix_us: fields.number()?,
                })
            }
            "http" => ProbeRecord::Http(parse_http(lines)?),
            "ready" => {
                let mut fields = Fields::new(first_line(&mut lines)?);
                ProbeRecord::Ready(ProbeReady {
                    ready_unix_us: fields.number()?,
                    reason: ReadyReason::parse(fields.next_field()?)
                        .ok_or(RejectReason::BadValue)?,
                })
            }
            "exit" => {
                let mut fields = Fields::new(first_line(&mut lines)?);
                let exit = ProbeExit {
                    invocations: fields.number()?,
                    exit_unix_us: fields.number()?,
                    unsent: fields.number()?,
                };
                self.forget_sender(pid);
                ProbeRecord::Exit(exit)
            }
            _ => match self.accept_chunk(pid, lines)? {
                Some(imports) => ProbeRecord::Imports(imports),
                None => return Ok(None),
            },
        };
        Ok(Some(ProbeMessage {
            pid,
            seq,
            dropped,
            record,
        }))
    }

    fn track_sender(&mut self, pid: u32, seq: u64, dropped: u64) {
        let now = self.clock;
        if !self.senders.contains_key(&pid) && self.senders.len() >= MAX_TRACKED_SENDERS {
            let oldest = self
                .senders
                .iter()
                .min_by_key(|(_, state)| state.last_seen)
                .map(|(pid, _)| *pid);
            if let Some(oldest) = oldest {
                self.senders.remove(&oldest);
            }
        }
        match self.senders.get_mut(&pid) {
            Some(state) if seq > state.last_seq && dropped >= state.dropped => {
                self.stats.sequence_gaps += seq - state.last_seq - 1;
                self.stats.sender_dropped += dropped - state.dropped;
                state.last_seq = seq;
                state.dropped = dropped;
                state.last_seen = now;
            }
            _ => {
                // A new sender, or counters that went back: a new process that
                // reuses the pid. Its earlier drops are still drops.
                self.stats.sender_dropped += dropped;
                self.senders.insert(
                    pid,
                    SenderState {
                        last_seq: seq,
                        dropped,
                        last_seen: now,
                        allocated_blocks: 0,
                    },
                );
            }
        }
    }

    /// The reading in this record, or the sender's last one when it skipped the read.
    fn carry_allocated_blocks(&mut self, pid: u32, read: Option<u64>) -> u64 {
        match (self.senders.get_mut(&pid), read) {
            (Some(state), Some(blocks)) => {
                state.allocated_blocks = blocks;
                blocks
            }
            (Some(state), None) => state.allocated_blocks,
            (None, read) => read.unwrap_or(0),
        }
    }

    fn forget_sender(&mut self, pid: u32) {
        self.senders.remove(&pid);
        let before = self.pending.len();
        self.pending.retain(|(sender, _), _| *sender != pid);
        self.stats.profiles_abandoned += (before - self.pending.len()) as u64;
    }

    fn accept_chunk<'a>(
        &mut self,
        pid: u32,
        mut lines: impl Iterator<Item = &'a str>,
    ) -> Result<Option<ProbeImports>, RejectReason> {
        let head = parse_chunk_head(first_line(&mut lines)?)?;
        let mut rows = Vec::new();
        let mut previous: Option<u64> = None;
        for line in lines {
            let row = parse_row(line)?;
            if row.index < head.base_index || previous.is_some_and(|p| row.index <= p) {
                return Err(RejectReason::BadChunk);
            }
            previous = Some(row.index);
            rows.push(row);
            if rows.len() as u64 > head.rows_in_chunk {
                return Err(RejectReason::BadChunk);
            }
        }
        if (rows.len() as u64) < head.rows_in_chunk {
            return Err(RejectReason::Truncated);
        }

        if head.chunk_count == 1 {
            self.stats.profiles_completed += 1;
            return assemble(&head, vec![rows]).map(Some);
        }
        let key = (pid, head.profile_id);
        if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING_PROFILES {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, profile)| profile.first_seen)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.pending.remove(&oldest);
                self.stats.profiles_abandoned += 1;
            }
        }
        let now = self.clock;
        let profile = self.pending.entry(key).or_insert_with(|| PendingProfile {
            chunk_count: head.chunk_count,
            base_index: head.base_index,
            rows_total: head.rows_total,
            phase: head.phase,
            invocation: head.invocation,
            chunks: vec![None; usize::try_from(head.chunk_count).unwrap_or(0)],
            received: 0,
            first_seen: now,
        });
        if profile.chunk_count != head.chunk_count
            || profile.base_index != head.base_index
            || profile.rows_total != head.rows_total
            || profile.phase != head.phase
            || profile.invocation != head.invocation
        {
            return Err(RejectReason::BadChunk);
        }
        let slot = usize::try_from(head.chunk_index)
            .ok()
            .and_then(|index| profile.chunks.get_mut(index))
            .ok_or(RejectReason::BadChunk)?;
        if slot.is_some() {
            return Err(RejectReason::BadChunk);
        }
        *slot = Some(rows);
        profile.received += 1;
        if profile.received < profile.chunk_count {
            return Ok(None);
        }
        let Some(profile) = self.pending.remove(&key) else {
            return Ok(None);
        };
        let chunks: Vec<Vec<Row>> = profile.chunks.into_iter().flatten().collect();
        self.stats.profiles_completed += 1;
        assemble(&head, chunks).map(Some)
    }
}

/// Join the chunks of one profile, checking their rows are numbered in
/// increasing order from `base_index` and are as many as announced.
///
/// Numbers need not be contiguous (the probe numbers its own imports but does
/// not send them); a parent is looked up by number, and one that is not in this
/// profile makes the module top level.
fn assemble(head: &ChunkHead, chunks: Vec<Vec<Row>>) -> Result<ProbeImports, RejectReason> {
    let capacity = usize::try_from(head.rows_total).unwrap_or(0);
    let mut modules = Vec::with_capacity(capacity);
    let mut positions: HashMap<u64, usize> = HashMap::with_capacity(capacity);
    let mut previous: Option<u64> = None;
    for row in chunks.into_iter().flatten() {
        if row.index < head.base_index || previous.is_some_and(|p| row.index <= p) {
            return Err(RejectReason::BadChunk);
        }
        previous = Some(row.index);
        let parent = row
            .parent
            .and_then(|parent| positions.get(&parent).copied());
        positions.insert(row.index, modules.len());
        modules.push(ImportedModule {
            module: row.module,
            parent,
            self_us: row.self_us,
            cumulative_us: row.cumulative_us,
            origin: row.origin,
            error: row.error,
        });
    }
    if modules.len() as u64 != head.rows_total {
        return Err(RejectReason::BadChunk);
    }
    Ok(ProbeImports {
        profile_id: head.profile_id,
        phase: head.phase,
        invocation: head.invocation,
        base_index: head.base_index,
        profile: ImportProfile { modules },
    })
}

fn first_line<'a>(lines: &mut impl Iterator<Item = &'a str>) -> Result<&'a str, RejectReason> {
    lines.next().ok_or(RejectReason::Truncated)
}

/// TAB-separated fields of one line, read in order.
struct Fields<'a> {
    inner: std::str::Split<'a, char>,
}

impl<'a> Fields<'a> {
    fn new(line: &'a str) -> Self {
        Self {
            inner: line.split('\t'),
        }
    }

    fn next_field(&mut self) -> Result<&'a str, RejectReason> {
        self.inner.next().ok_or(RejectReason::MissingField)
    }

    fn number(&mut self) -> Result<u64, RejectReason> {
        self.next_field()?
            .parse()
            .map_err(|_| RejectReason::BadNumber)
    }

    fn optional_number(&mut self) -> Result<Option<u64>, RejectReason> {
        match self.next_field()? {
            "-" => Ok(None),
            field => field.parse().map(Some).map_err(|_| RejectReason::BadNumber),
        }
    }

    /// A signed index where `-1` means none.
    fn index(&mut self) -> Result<Option<u64>, RejectReason> {
        match self.next_field()? {
            "-1" | "-" => Ok(None),
            field => field.parse().map(Some).map_err(|_| RejectReason::BadNumber),
        }
    }

    fn flag(&mut self) -> Result<bool, RejectReason> {
        match self.next_field()? {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(RejectReason::BadValue),
        }
    }

    fn text(&mut self) -> Result<Option<String>, RejectReason> {
        match self.next_field()? {
            "-" | "" => Ok(None),
            field => Ok(Some(field.to_owned())),
        }
    }
}

fn parse_init(line: &str) -> Result<ProbeInit, RejectReason> {
    let mut f = Fields::new(line);
    let python = f.text()?.unwrap_or_default();
    let exec_unix_us = f.optional_number()?;
    let exec_time_source = match f.next_field()? {
        "env" => Some(ExecTimeSource::Env),
        "proc" => Some(ExecTimeSource::Proc),
        "-" => None,
        _ => return Err(RejectReason::BadValue),
    };
    let probe_start_unix_us = f.number()?;
    let ready_unix_us = f.number()?;
    let ready_reason = ReadyReason::parse(f.next_field()?).ok_or(RejectReason::BadValue)?;
    let probe_init_us = f.number()?;
    let modules_before_probe = f.number()?;
    let modules_at_ready = f.number()?;
    let import_phase_us = f.number()?;
    let handler_load_us = f.optional_number()?;
    let handler = f.text()?;
    let handler_module = f.index()?.and_then(|index| usize::try_from(index).ok());
    let error = f.text()?;
    let profile_id = f.number()?;
    let profile_modules = f.number()?;
    let gc_collections = f.number()?;
    let gc_pause_us = f.number()?;
    Ok(ProbeInit {
        init: PythonInit {
            python,
            exec_unix_us,
            exec_time_source,
            probe_start_unix_us,
            ready_unix_us,
            ready_reason,
            probe_init_us,
            modules_before_probe,
            modules_at_ready,
            import_phase_us,
            handler_load_us,
            handler,
            handler_module,
            error,
            gc_collections,
            gc_pause_us,
        },
        profile_id,
        profile_modules,
    })
}

/// The invocation, and its `allocated_blocks` reading if it has one.
fn parse_invocation(line: &str) -> Result<(ProbeInvocation, Option<u64>), RejectReason> {
    let mut f = Fields::new(line);
    let request_id = f.text()?;
    let number = f.number()?;
    let cold_start = f.flag()?;
    let proactive_init = f.flag()?;
    let start_unix_us = f.number()?;
    let duration_ns = f.number()?;
    let status = match f.next_field()? {
        "ok" => Status::Success,
        "error" => Status::Error,
        _ => return Err(RejectReason::BadValue),
    };
    let error_type = f.text()?;
    let mut gc = [GcGeneration::default(); 3];
    for generation in &mut gc {
        *generation = GcGeneration {
            collections: f.number()?,
            pause_ns: f.number()?,
            collected: f.number()?,
            uncollectable: f.number()?,
        };
    }
    let allocated_blocks = f.optional_number()?;
    let runtime = PythonRuntime {
        gc,
        allocated_blocks: allocated_blocks.unwrap_or(0),
        modules: f.number()?,
        threads: f.number()?,
        rss_bytes: f.optional_number()?,
        max_rss_bytes: f.optional_number()?,
        cpu_user_us: f.optional_number()?,
        cpu_system_us: f.optional_number()?,
        loop_lag_max_us: f.optional_number()?,
        loop_pending_tasks: f.optional_number()?,
        imports: f.number()?,
    };
    let probe_ns = f.number()?;
    Ok((
        ProbeInvocation {
            request_id,
            number,
            cold_start,
            proactive_init,
            start_unix_us,
            duration_ns,
            status,
            error_type,
            runtime,
            probe_ns,
        },
        allocated_blocks,
    ))
}

/// Comma-separated unsigned integers (bucket bounds or counts).
fn number_list(field: &str) -> Result<Vec<u64>, RejectReason> {
    field
        .split(',')
        .map(|item| item.parse().map_err(|_| RejectReason::BadNumber))
        .collect()
}

/// One `http` datagram: the window line, then as many series lines as it announces.
fn parse_http<'a>(mut lines: impl Iterator<Item = &'a str>) -> Result<ProbeHttp, RejectReason> {
    let mut f = Fields::new(first_line(&mut lines)?);
    let framework = f.text()?.ok_or(RejectReason::MissingField)?;
    let window_end_unix_us = f.number()?;
    let first_response_unix_us = f.optional_number()?;
    let in_flight = f.number()?;
    let loop_lag_max_us = f.optional_number()?;
    let loop_pending_tasks = f.optional_number()?;
    let bounds_us = number_list(f.next_field()?)?;
    if bounds_us.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(RejectReason::BadValue);
    }
    let series_in_datagram = f.number()?;
    let mut series = Vec::new();
    for line in lines {
        if series.len() as u64 >= series_in_datagram {
            return Err(RejectReason::BadChunk);
        }
        series.push(parse_http_series(line, bounds_us.len())?);
    }
    if (series.len() as u64) < series_in_datagram {
        return Err(RejectReason::Truncated);
    }
    Ok(ProbeHttp {
        framework,
        window_end_unix_us,
        first_response_unix_us,
        in_flight,
        loop_lag_max_us,
        loop_pending_tasks,
        bounds_us,
        series,
    })
}

/// One series line of an `http` datagram, checked against its window's `bounds` count.
fn parse_http_series(line: &str, bounds: usize) -> Result<HttpSeries, RejectReason> {
    let mut f = Fields::new(line);
    let method = f.text()?.ok_or(RejectReason::MissingField)?;
    let status = u16::try_from(f.number()?).map_err(|_| RejectReason::BadNumber)?;
    if status > 999 {
        return Err(RejectReason::BadValue);
    }
    let count = f.number()?;
    let sum_us = f.number()?;
    let max_us = f.number()?;
    let buckets = number_list(f.next_field()?)?;
    let route = f.text()?.ok_or(RejectReason::MissingField)?;
    if buckets.len() != bounds + 1 {
        return Err(RejectReason::BadChunk);
    }
    let bucketed = buckets
        .iter()
        .try_fold(0u64, |total, n| total.checked_add(*n))
        .ok_or(RejectReason::BadNumber)?;
    if bucketed != count {
        return Err(RejectReason::BadChunk);
    }
    if max_us > sum_us {
        return Err(RejectReason::BadValue);
    }
    Ok(HttpSeries {
        method,
        route,
        status,
        count,
        sum_us,
        max_us,
        buckets,
    })
}

fn parse_chunk_head(line: &str) -> Result<ChunkHead, RejectReason> {
    let mut f = Fields::new(line);
    let head = ChunkHead {
        profile_id: f.number()?,
        chunk_index: f.number()?,
        chunk_count: f.number()?,
        base_index: f.number()?,
        rows_total: f.number()?,
        rows_in_chunk: f.number()?,
        phase: match f.next_field()? {
            "init" => ImportPhase::Init,
            "invoke" => ImportPhase::Invoke,
            "exit" => ImportPhase::Exit,
            _ => return Err(RejectReason::BadValue),
        },
        invocation: f.number()?,
    };
    if head.chunk_count > MAX_CHUNKS_PER_PROFILE || head.rows_total > MAX_PROFILE_MODULES {
        return Err(RejectReason::ProfileTooLarge);
    }
    if head.chunk_count == 0
        || head.chunk_index >= head.chunk_count
        || head.rows_in_chunk > head.rows_total
        || head.base_index.checked_add(head.rows_total).is_none()
    {
        return Err(RejectReason::BadChunk);
    }
    Ok(head)
}

fn parse_row(line: &str) -> Result<Row, RejectReason> {
    let mut f = Fields::new(line);
    let index = f.number()?;
    let parent = f.index()?;
    if parent.is_some_and(|parent| parent >= index) {
        return Err(RejectReason::BadParent);
    }
    let self_us = f.number()?;
    let cumulative_us = f.number()?;
    let origin = match f.next_field()? {
        "b" => Origin::Builtin,
        "s" => Origin::Stdlib,
        "p" => Origin::SitePackages,
        "l" => Origin::Layer,
        "f" => Origin::FunctionCode,
        // Unknown (the module left sys.modules): the model has no such origin.
        "u" => Origin::default(),
        _ => return Err(RejectReason::BadValue),
    };
    let error = f.text()?;
    let module = f.text()?.ok_or(RejectReason::MissingField)?;
    Ok(Row {
        index,
        parent,
        self_us,
        cumulative_us,
        origin,
        error,
        module,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(kind: &str, pid: u32, seq: u64, dropped: u64, body: &str) -> Vec<u8> {
        format!("{MAGIC}\t1\t{kind}\t{pid}\t{seq}\t{dropped}\n{body}").into_bytes()
    }

    const INVOKE: &str = "req-1\t3\t0\t0\t1700000000000000\t5000\terror\tbotocore.exceptions.ClientError\t\
        1\t2000\t10\t0\t0\t0\t0\t0\t1\t9000\t300\t1\t\
        70000\t180\t2\t23859200\t25000000\t120\t30\t-\t-\t0\t4100\n";

    const INIT: &str = "cpython-3.12.1\t1700000000000000\tenv\t1700000000020000\t1700000000180000\thandler\t900\t\
        41\t320\t150000\t90000\tapp.handler\t2\t-\t0\t3\t5\t1200\n";

    /// Real `http` datagrams of the Python probe (see `testdata/README.md`).
    const HTTP_FASTAPI: &[u8] = include_bytes!("testdata/probe/http-fastapi.txt");
    const HTTP_FLASK_CAPPED: [&[u8]; 3] = [
        include_bytes!("testdata/probe/http-flask-capped-0.txt"),
        include_bytes!("testdata/probe/http-flask-capped-1.txt"),
        include_bytes!("testdata/probe/http-flask-capped-2.txt"),
    ];

    /// The OpenTelemetry default bounds the probe uses, as on the wire.
    const BOUNDS: &str = "5000,10000,25000,50000,75000,100000,250000,500000,750000,1000000,\
        2500000,5000000,7500000,10000000";

    fn http(decoder: &mut ProbeDecoder, bytes: &[u8]) -> ProbeHttp {
        match decoder
            .decode(bytes)
            .expect("valid")
            .expect("complete")
            .record
        {
            ProbeRecord::Http(http) => http,
            other => panic!("not http: {other:?}"),
        }
    }

    fn rows(base: u64, count: u64) -> String {
        (base..base + count)
            .map(|i| {
                let parent = if i == base { -1 } else { base as i64 };
                format!(
                    "{i}\t{parent}\t{}\t{}\ts\t-\tmod{i}\n",
                    10,
                    10 * (base + count - i)
                )
            })
            .collect()
    }

    fn chunk(
        profile: u64,
        index: u64,
        count: u64,
        base: u64,
        total: u64,
        rows_text: &str,
    ) -> String {
        let in_chunk = rows_text.lines().count();
        format!("{profile}\t{index}\t{count}\t{base}\t{total}\t{in_chunk}\tinit\t0\n{rows_text}")
    }

    #[test]
    fn decodes_an_invocation() {
        let mut decoder = ProbeDecoder::new();
        let message = decoder
            .decode(&datagram("invoke", 42, 7, 0, INVOKE))
            .expect("valid")
            .expect("complete");
        assert_eq!((message.pid, message.seq, message.dropped), (42, 7, 0));
        let ProbeRecord::Invocation(invocation) = message.record else {
            panic!("not an invocation: {message:?}");
        };
        assert_eq!(invocation.request_id.as_deref(), Some("req-1"));
        assert_eq!(invocation.number, 3);
        assert!(!invocation.cold_start);
        assert_eq!(invocation.status, Status::Error);
        assert_eq!(
            invocation.error_type.as_deref(),
            Some("botocore.exceptions.ClientError")
        );
        assert_eq!(invocation.runtime.gc[0].collections, 1);
        assert_eq!(invocation.runtime.gc[2].pause_ns, 9000);
        assert_eq!(invocation.runtime.rss_bytes, Some(23_859_200));
        assert_eq!(invocation.runtime.loop_lag_max_us, None);
        assert_eq!(invocation.probe_ns, 4100);
        assert_eq!(decoder.stats().accepted, 1);
    }

    #[test]
    fn decodes_init_with_its_times() {
        let mut decoder = ProbeDecoder::new();
        let message = decoder
            .decode(&datagram("init", 1, 0, 0, INIT))
            .expect("valid")
            .expect("complete");
        let ProbeRecord::Init(init) = message.record else {
            panic!("not init");
        };
        assert_eq!(init.init.exec_time_source, Some(ExecTimeSource::Env));
        assert_eq!(init.init.ready_reason, ReadyReason::Handler);
        assert_eq!(init.init.start_to_ready_us(), Some(180_000));
        assert_eq!(init.init.handler.as_deref(), Some("app.handler"));
        assert_eq!(init.init.handler_module, Some(2));
        assert_eq!(init.init.error, None);
        assert_eq!((init.profile_id, init.profile_modules), (0, 3));
    }

    #[test]
    fn reassembles_chunks_in_any_order() {
        let mut decoder = ProbeDecoder::new();
        let first = chunk(4, 0, 3, 100, 9, &rows(100, 3));
        let second_rows: String = (103..106)
            .map(|i| format!("{i}\t100\t1\t1\tf\t-\tm{i}\n"))
            .collect();
        let third_rows: String = (106..109)
            .map(|i| format!("{i}\t105\t1\t1\tp\tModuleNotFoundError\tm{i}\n"))
            .collect();
        let second = chunk(4, 1, 3, 100, 9, &second_rows);
        let third = chunk(4, 2, 3, 100, 9, &third_rows);
        assert_eq!(
            decoder.decode(&datagram("imports", 9, 2, 0, &third)),
            Ok(None)
        );
        assert_eq!(
            decoder.decode(&datagram("imports", 9, 0, 0, &first)),
            Ok(None)
        );
        assert_eq!(decoder.pending_profiles(), 1);
        let message = decoder
            .decode(&datagram("imports", 9, 1, 0, &second))
            .expect("valid")
            .expect("complete");
        let ProbeRecord::Imports(imports) = message.record else {
            panic!("not imports");
        };
        assert_eq!(imports.profile_id, 4);
        assert_eq!(imports.base_index, 100);
        let modules = &imports.profile.modules;
        assert_eq!(modules.len(), 9);
        assert_eq!(modules[0].parent, None);
        assert_eq!(modules[1].parent, Some(0));
        assert_eq!(modules[6].parent, Some(5));
        assert_eq!(modules[6].origin, Origin::SitePackages);
        assert_eq!(modules[6].error.as_deref(), Some("ModuleNotFoundError"));
        assert_eq!(decoder.pending_profiles(), 0);
        assert_eq!(decoder.stats().profiles_completed, 1);
        assert_eq!(decoder.stats().accepted, 3);
    }

    #[test]
    fn numbers_may_skip_and_parents_are_found_by_number() {
        let mut decoder = ProbeDecoder::new();
        let body = chunk(
            2,
            0,
            1,
            3,
            3,
            "3\t-1\t5\t9\tf\t-\tapp\n7\t3\t4\t4\ts\t-\tjson\n9\t5\t1\t1\ts\t-\tdecimal\n",
        );
        let message = decoder
            .decode(&datagram("imports", 1, 0, 0, &body))
            .expect("valid")
            .expect("complete");
        let ProbeRecord::Imports(imports) = message.record else {
            panic!("not imports");
        };
        let parents: Vec<Option<usize>> =
            imports.profile.modules.iter().map(|m| m.parent).collect();
        // `decimal`'s parent (5) is one of the probe's own imports, not sent.
        assert_eq!(parents, vec![None, Some(0), None]);
    }

    #[test]
    fn a_parent_from_an_earlier_profile_becomes_top_level() {
        let mut decoder = ProbeDecoder::new();
        let body = chunk(1, 0, 1, 50, 1, "50\t12\t5\t5\ts\t-\tlate\n");
        let message = decoder
            .decode(&datagram("imports", 1, 0, 0, &body))
            .expect("valid")
            .expect("complete");
        let ProbeRecord::Imports(imports) = message.record else {
            panic!("not imports");
        };
        assert_eq!(imports.profile.modules[0].parent, None);
    }

    #[test]
    fn rejects_with_a_counted_reason() {
        let long = vec![b'x'; MAX_DATAGRAM_BYTES + 1];
        let cases: Vec<(Vec<u8>, RejectReason)> = vec![
            (Vec::new(), RejectReason::Empty),
            (long, RejectReason::Oversized),
            (vec![0xff, 0xfe, b'\n'], RejectReason::NotUtf8),
            (
                datagram("invoke", 1, 0, 0, INVOKE.trim_end_matches('\n')),
                RejectReason::Truncated,
            ),
            (b"hello\n".to_vec(), RejectReason::BadMagic),
            (
                b"pyrometer-probe\t2\tinvoke\t1\t0\t0\nx\n".to_vec(),
                RejectReason::UnsupportedVersion,
            ),
            (
                b"pyrometer-probe\tx\tinvoke\t1\t0\t0\nx\n".to_vec(),
                RejectReason::UnsupportedVersion,
            ),
            (
                datagram("metrics", 1, 0, 0, "x\n"),
                RejectReason::UnknownKind,
            ),
            (
                b"pyrometer-probe\t1\tinvoke\t1\n".to_vec(),
                RejectReason::MissingField,
            ),
            (
                datagram("invoke", 1, 0, 0, "req\t1\t1\n"),
                RejectReason::MissingField,
            ),
            (
                datagram("invoke", 1, 0, 0, &INVOKE.replace("\t5000\t", "\tfive\t")),
                RejectReason::BadNumber,
            ),
            (
                b"pyrometer-probe\t1\tinvoke\t99999999999\t0\t0\nx\n".to_vec(),
                RejectReason::BadNumber,
            ),
            (
                datagram("invoke", 1, 0, 0, &INVOKE.replace("\terror\t", "\tmaybe\t")),
                RejectReason::BadValue,
            ),
            (
                datagram(
                    "init",
                    1,
                    0,
                    0,
                    &INIT.replace("\thandler\t", "\twhenever\t"),
                ),
                RejectReason::BadValue,
            ),
            (
                datagram(
                    "imports",
                    1,
                    0,
                    0,
                    &chunk(0, 0, 1, 0, 1, "0\t-1\t1\t1\tz\t-\tm\n"),
                ),
                RejectReason::BadValue,
            ),
            (
                datagram(
                    "imports",
                    1,
                    0,
                    0,
                    "0\t0\t1\t0\t2\t2\tinit\t0\n0\t-1\t1\t1\ts\t-\tm\n",
                ),
                RejectReason::Truncated,
            ),
            (
                datagram(
                    "imports",
                    1,
                    0,
                    0,
                    &chunk(0, 0, 1, 0, 1, "0\t0\t1\t1\ts\t-\tm\n"),
                ),
                RejectReason::BadParent,
            ),
            (
                datagram(
                    "imports",
                    1,
                    0,
                    0,
                    &chunk(0, 0, 1, 0, 1, "0\t-1\t1\t1\ts\t-\t-\n"),
                ),
                RejectReason::MissingField,
            ),
            (
                datagram(
                    "imports",
                    1,
                    0,
                    0,
                    &chunk(0, 0, 1, 5, 1, "0\t-1\t1\t1\ts\t-\tm\n"),
                ),
                RejectReason::BadChunk,
            ),
            (
                datagram("imports", 1, 0, 0, "0\t3\t2\t0\t1\t0\tinit\t0\n"),
                RejectReason::BadChunk,
            ),
            (
                datagram("imports", 1, 0, 0, "0\t0\t0\t0\t1\t0\tinit\t0\n"),
                RejectReason::BadChunk,
            ),
            (
                datagram(
                    "imports",
                    1,
                    0,
                    0,
                    "0\t0\t1\t18446744073709551615\t1\t0\tinit\t0\n",
                ),
                RejectReason::BadChunk,
            ),
            (
                datagram("imports", 1, 0, 0, "0\t0\t9999\t0\t1\t0\tinit\t0\n"),
                RejectReason::ProfileTooLarge,
            ),
            (
                datagram("imports", 1, 0, 0, "0\t0\t1\t0\t99999999\t0\tinit\t0\n"),
                RejectReason::ProfileTooLarge,
            ),
        ];
        let mut decoder = ProbeDecoder::new();
        for (input, reason) in &cases {
            assert_eq!(
                decoder.decode(input),
                Err(*reason),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let stats = decoder.stats();
        assert_eq!(stats.rejected.total(), cases.len() as u64);
        assert_eq!(stats.accepted, 0);
        for reason in RejectReason::ALL {
            assert!(
                stats.rejected.get(reason) > 0,
                "no case for {}",
                reason.as_str()
            );
        }
    }

    #[test]
    fn duplicate_and_inconsistent_chunks_are_rejected() {
        let mut decoder = ProbeDecoder::new();
        let first = chunk(0, 0, 2, 0, 2, "0\t-1\t1\t1\ts\t-\ta\n");
        assert_eq!(
            decoder.decode(&datagram("imports", 1, 0, 0, &first)),
            Ok(None)
        );
        assert_eq!(
            decoder.decode(&datagram("imports", 1, 1, 0, &first)),
            Err(RejectReason::BadChunk)
        );
        let other_total = chunk(0, 1, 2, 0, 3, "1\t0\t1\t1\ts\t-\tb\n");
        assert_eq!(
            decoder.decode(&datagram("imports", 1, 2, 0, &other_total)),
            Err(RejectReason::BadChunk)
        );
        // A chunk whose rows do not follow the first one's.
        let gap = chunk(0, 1, 2, 0, 2, "0\t-1\t1\t1\ts\t-\tb\n");
        assert_eq!(
            decoder.decode(&datagram("imports", 1, 3, 0, &gap)),
            Err(RejectReason::BadChunk)
        );
        assert_eq!(decoder.pending_profiles(), 0);
    }

    #[test]
    fn pending_profiles_are_bounded_and_abandoned_at_exit() {
        let mut decoder = ProbeDecoder::new();
        for profile in 0..(MAX_PENDING_PROFILES as u64 + 5) {
            let body = chunk(profile, 0, 2, 0, 2, "0\t-1\t1\t1\ts\t-\ta\n");
            assert_eq!(
                decoder.decode(&datagram("imports", 7, profile, 0, &body)),
                Ok(None)
            );
        }
        assert_eq!(decoder.pending_profiles(), MAX_PENDING_PROFILES);
        assert_eq!(decoder.stats().profiles_abandoned, 5);
        let exit = datagram("exit", 7, 100, 0, "3\t1700000000000000\t0\n");
        let message = decoder.decode(&exit).expect("valid").expect("complete");
        assert!(matches!(
            message.record,
            ProbeRecord::Exit(ProbeExit { invocations: 3, .. })
        ));
        assert_eq!(decoder.pending_profiles(), 0);
        assert_eq!(
            decoder.stats().profiles_abandoned,
            5 + MAX_PENDING_PROFILES as u64
        );
    }

    #[test]
    fn a_skipped_allocated_blocks_reading_carries_the_last_one() {
        let mut decoder = ProbeDecoder::new();
        let skipped = INVOKE.replace("\t70000\t", "\t-\t");
        let blocks = |decoder: &mut ProbeDecoder, body: &str, seq: u64| match decoder
            .decode(&datagram("invoke", 3, seq, 0, body))
            .expect("valid")
            .expect("complete")
            .record
        {
            ProbeRecord::Invocation(invocation) => invocation.runtime.allocated_blocks,
            other => panic!("not an invocation: {other:?}"),
        };
        assert_eq!(blocks(&mut decoder, INVOKE, 0), 70_000);
        assert_eq!(blocks(&mut decoder, &skipped, 1), 70_000);
        assert_eq!(
            blocks(&mut decoder, &INVOKE.replace("\t70000\t", "\t71000\t"), 2),
            71_000
        );
    }

    #[test]
    fn losses_are_counted_from_sequence_gaps_and_sender_drops() {
        let mut decoder = ProbeDecoder::new();
        decoder
            .decode(&datagram("invoke", 5, 0, 0, INVOKE))
            .expect("valid");
        decoder
            .decode(&datagram("invoke", 5, 1, 0, INVOKE))
            .expect("valid");
        // Datagrams 2..=4 were dropped by the sender and it says so.
        decoder
            .decode(&datagram("invoke", 5, 5, 3, INVOKE))
            .expect("valid");
        assert_eq!(decoder.stats().sequence_gaps, 3);
        assert_eq!(decoder.stats().sender_dropped, 3);
        // A forked child: its own pid, its own counters.
        decoder
            .decode(&datagram("fork", 6, 0, 0, "5\t1700000000000000\n"))
            .expect("valid");
        decoder
            .decode(&datagram("invoke", 6, 1, 0, INVOKE))
            .expect("valid");
        assert_eq!(decoder.stats().sequence_gaps, 3);
        // A rejected body still has a valid header: its sequence number counts.
        assert!(
            decoder
                .decode(&datagram("invoke", 6, 2, 0, "broken\n"))
                .is_err()
        );
        decoder
            .decode(&datagram("invoke", 6, 3, 0, INVOKE))
            .expect("valid");
        assert_eq!(decoder.stats().sequence_gaps, 3);
    }

    #[test]
    fn a_ready_record_carries_its_time_and_reason() {
        let mut decoder = ProbeDecoder::new();
        let message = decoder
            .decode(&datagram("ready", 6, 0, 0, "1700000000000000\tserver\n"))
            .expect("valid")
            .expect("a record");
        assert_eq!(
            message.record,
            ProbeRecord::Ready(ProbeReady {
                ready_unix_us: 1_700_000_000_000_000,
                reason: ReadyReason::Server,
            })
        );
        assert_eq!(
            decoder.decode(&datagram("ready", 6, 1, 0, "1700000000000000\tsoon\n")),
            Err(RejectReason::BadValue),
            "a reason the decoder does not know"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut decoder = ProbeDecoder::new();
        let valid = datagram("invoke", 1, 0, 0, INVOKE);
        let valid_chunk = datagram("imports", 1, 0, 0, &chunk(0, 0, 2, 0, 4, &rows(0, 2)));
        let valid_http = HTTP_FASTAPI.to_vec();
        // Every prefix of valid datagrams (truncation at any byte).
        for sample in [&valid, &valid_chunk, &valid_http] {
            for end in 0..sample.len() {
                let _ = decoder.decode(&sample[..end]);
            }
        }
        // Deterministic pseudo-random bytes and byte flips.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 300) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
            let _ = decoder.decode(&bytes);
            let mut flipped = match next() % 3 {
                0 => valid.clone(),
                1 => valid_chunk.clone(),
                _ => valid_http.clone(),
            };
            let at = (next() as usize) % flipped.len();
            flipped[at] = b"\t\n-0123456789x\xff"[(next() % 15) as usize];
            let _ = decoder.decode(&flipped);
        }
        let stats = decoder.stats();
        assert!(stats.rejected.total() > 20_000);
        assert!(decoder.pending_profiles() <= MAX_PENDING_PROFILES);
    }

    #[test]
    fn decodes_a_real_http_window() {
        let mut decoder = ProbeDecoder::new();
        let window = http(&mut decoder, HTTP_FASTAPI);
        assert_eq!(window.framework, "fastapi");
        assert_eq!(window.bounds_us.len(), 14);
        assert_eq!(window.bounds_us[0], 5_000);
        assert_eq!(window.bounds_us[13], 10_000_000);
        assert_eq!(window.in_flight, 0);
        let first = window.first_response_unix_us.expect("a request completed");
        assert!(first <= window.window_end_unix_us);
        // The `async` route that blocked in time.sleep(0.2) stalled the loop.
        assert!(window.loop_lag_max_us.expect("an asyncio app") >= 150_000);
        assert!(window.loop_pending_tasks.is_some());
        let series = |route: &str, status: u16| {
            window
                .series
                .iter()
                .find(|s| s.route == route && s.status == status)
                .unwrap_or_else(|| panic!("no {route} {status} in {:?}", window.series))
        };
        let items = series("/items/{item_id}", 200);
        assert_eq!((items.method.as_str(), items.count), ("GET", 3));
        assert_eq!(items.buckets.len(), 15);
        let block = series("/block", 200);
        assert_eq!(block.count, 1);
        assert!(block.max_us >= 200_000 && block.max_us < 250_000);
        assert_eq!(block.buckets[6], 1, "200 ms lands in (100 ms, 250 ms]");
        assert_eq!(series("<unmatched>", 404).count, 1);
        assert_eq!(series("/boom", 500).count, 1);
        let slowest = window
            .series
            .iter()
            .max_by_key(|s| s.sum_us)
            .expect("series");
        assert_eq!(slowest.route, "/block");
    }

    #[test]
    fn a_window_split_over_datagrams_adds_up() {
        let mut decoder = ProbeDecoder::new();
        let parts: Vec<ProbeHttp> = HTTP_FLASK_CAPPED
            .iter()
            .map(|bytes| http(&mut decoder, bytes))
            .collect();
        assert!(
            HTTP_FLASK_CAPPED
                .iter()
                .all(|b| b.len() <= MAX_DATAGRAM_BYTES)
        );
        assert!(
            parts
                .iter()
                .all(|p| p.window_end_unix_us == parts[0].window_end_unix_us
                    && p.framework == "flask")
        );
        let series: Vec<&HttpSeries> = parts.iter().flat_map(|p| &p.series).collect();
        // 300 routes in one process: 256 series admitted, the rest under <other>.
        assert_eq!(series.len(), 257);
        assert_eq!(series.iter().map(|s| s.count).sum::<u64>(), 300);
        let other: Vec<&&HttpSeries> = series.iter().filter(|s| s.route == "<other>").collect();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].count, 44);
        assert!(
            series
                .iter()
                .filter(|s| s.route != "<other>")
                .all(|s| s.route.starts_with("/route-") && s.route.ends_with("/<int:id>"))
        );
        assert_eq!(decoder.stats().accepted, 3);
    }

    #[test]
    fn an_http_window_with_nothing_completed_carries_only_the_gauge() {
        let mut decoder = ProbeDecoder::new();
        let body = format!("django\t1700000000000000\t-\t3\t-\t-\t{BOUNDS}\t0\n");
        let window = http(&mut decoder, &datagram("http", 8, 0, 0, &body));
        assert_eq!(window.in_flight, 3);
        assert_eq!(window.first_response_unix_us, None);
        assert_eq!(window.loop_lag_max_us, None);
        assert!(window.series.is_empty());
    }

    #[test]
    fn inconsistent_http_windows_are_rejected() {
        let head = |bounds: &str, count: u64| {
            format!("flask\t1700000000000000\t1699999999000000\t0\t-\t-\t{bounds}\t{count}\n")
        };
        let buckets = "1,0,0,0,0,0,0,0,0,0,0,0,0,0,0";
        let line = |status: &str, count: &str, sum: &str, max: &str, buckets: &str, route: &str| {
            format!("GET\t{status}\t{count}\t{sum}\t{max}\t{buckets}\t{route}\n")
        };
        let good = line("200", "1", "900", "900", buckets, "/users/<int:id>");
        let mut decoder = ProbeDecoder::new();
        assert!(
            decoder
                .decode(&datagram("http", 1, 0, 0, &(head(BOUNDS, 1) + &good)))
                .is_ok()
        );
        let cases: Vec<(String, RejectReason)> = vec![
            (head("5000,5000,10000", 0), RejectReason::BadValue),
            (head("10000,5000", 0), RejectReason::BadValue),
            (head("5000,x", 0), RejectReason::BadNumber),
            (head("-", 0), RejectReason::BadNumber),
            (head(BOUNDS, 2) + &good, RejectReason::Truncated),
            (head(BOUNDS, 0) + &good, RejectReason::BadChunk),
            (
                head(BOUNDS, 1) + &line("200", "1", "900", "900", "1,0", "/a"),
                RejectReason::BadChunk,
            ),
            (
                head(BOUNDS, 1) + &line("200", "2", "900", "900", buckets, "/a"),
                RejectReason::BadChunk,
            ),
            (
                head(BOUNDS, 1) + &line("200", "1", "900", "901", buckets, "/a"),
                RejectReason::BadValue,
            ),
            (
                head(BOUNDS, 1) + &line("1000", "1", "900", "900", buckets, "/a"),
                RejectReason::BadValue,
            ),
            (
                head(BOUNDS, 1) + &line("70000", "1", "900", "900", buckets, "/a"),
                RejectReason::BadNumber,
            ),
            (
                head(BOUNDS, 1)
                    + &line(
                        "200",
                        "1",
                        "900",
                        "900",
                        "1,0,0,0,0,0,0,0,0,0,0,0,0,0,x",
                        "/a",
                    ),
                RejectReason::BadNumber,
            ),
            (
                head(BOUNDS, 1)
                    + &line(
                        "200",
                        "1",
                        "900",
                        "900",
                        "18446744073709551615,1,0,0,0,0,0,0,0,0,0,0,0,0,0",
                        "/a",
                    ),
                RejectReason::BadNumber,
            ),
            (
                head(BOUNDS, 1) + &line("200", "1", "900", "900", buckets, "-"),
                RejectReason::MissingField,
            ),
            (
                head(BOUNDS, 1) + "GET\t200\t1\t900\t900\n",
                RejectReason::MissingField,
            ),
            (
                format!("-\t1700000000000000\t-\t0\t-\t-\t{BOUNDS}\t0\n"),
                RejectReason::MissingField,
            ),
            (
                format!("flask\t1700000000000000\t-\tmany\t-\t-\t{BOUNDS}\t0\n"),
                RejectReason::BadNumber,
            ),
        ];
        for (body, reason) in &cases {
            assert_eq!(
                decoder.decode(&datagram("http", 1, 1, 0, body)),
                Err(*reason),
                "{body:?}"
            );
        }
        assert_eq!(decoder.stats().rejected.total(), cases.len() as u64);
    }

    #[test]
    fn ready_at_the_first_request() {
        let mut decoder = ProbeDecoder::new();
        let message = decoder
            .decode(&datagram(
                "init",
                1,
                0,
                0,
                &INIT.replace("\thandler\t", "\trequest\t"),
            ))
            .expect("valid")
            .expect("complete");
        let ProbeRecord::Init(init) = message.record else {
            panic!("not init");
        };
        assert_eq!(init.init.ready_reason, ReadyReason::Request);
    }
}
