//! Settings of a mesh node and the numbers of every fence it keeps.
//!
//! Each limit below bounds what one peer (or one source address) can make
//! this node hold or do; the module that enforces it says how. The defaults
//! are what the attack tests (`tests/mesh/attack_*.rs`,
//! `tests/attack_stream_memory.rs`) run against.
//!
//! | fence | default | bounds | costs honest peers | enforced in |
//! |---|---|---|---|---|
//! | streams per connection | 64 bidi, 32 uni | calls / casts+pushes in flight per link | the 65th concurrent call waits for a stream | QUIC (`max_bidi_streams`) |
//! | QUIC windows | 2 MiB per stream, 8 MiB per connection | bytes quinn buffers unread | a throughput cap on long fat links | QUIC |
//! | frame budget | 24 MiB per connection, 32 MiB per peer key | memory claimed by incomplete frames and unanswered requests; a frame waits ≤ 10 s for room, then is stopped | a third 16 MiB frame in flight waits for one of the first two | `budget`, `stream` |
//! | frame buffers | 16 KiB up front, then 4× what arrived | memory of a stalled frame | a large frame is copied about a third again | `keyring_core::wire::assembler` |
//! | stream deadline | header within 2 s, then 2 s + 1 s per 64 KiB | stalled or trickling frames | a sender slower than 64 KiB/s is cut off | `stream` |
//! | handshakes | 128 in progress (16 per source), ≤ 3 s each; Retry above 16; 512 burst, 2000/s | CPU spent on handshakes | one more round trip for new links while > 16 handshakes run | `admit`, `fence` |
//! | failing sources | 32 failures burst, 8/s per /32 or /64 | non-member handshakes, no/refused Hello | none (members do not fail) | `admit` |
//! | Hello | within 2 s of the handshake | connections stalled before Hello | none | `admit` |
//! | connections per key | 4 | what one member can open | none (a pair keeps one link) | `admit`, `peers` |
//! | join connections | 128 open (8 per source); 16 burst, 4/s per source; 64 burst, 50/s in all | strangers on the join endpoint | a joiner behind a flood retries (backoff) within its deadline | `join::server` |
//! | join deadlines | request within 2 s, answer within 10 s | stalled joiners | none | `join::server` |
//! | joins awaiting the owner | 32, only with a signed, unexpired invite from a member; freed on answering | owner work per join | none | `join::server` |
//! | log pushes | 16 burst, 2/s per (keyring, peer) | membership merges per peer | a burst of > 16 changes reaches a peer over seconds | `protocols::membership` |
//! | pushes of known entries | dropped in Rust against the verified ring (a decode and a hash lookup per entry) | owner work per stale or empty push | none | `protocols::membership` |
//! | head exchanges (anti-entropy) | 8 burst, 4/s per (keyring, peer), beyond: reset unread; ≤ 1024 hashes (~33 KiB); answer within 5 s; one in flight per link; one push of missing entries per (keyring, peer), written within 10 s or reset | work and answers per exchange (matching heads: no answer, O(1)) | an `anti_entropy_ms` below 250 ms loses exchanges | `protocols::membership` |
//! | casts | 1024 burst, 8192/s per peer | handler processes per peer | a faster sender is slowed down | `protocols::rpc` |
//! | rate-limiter memory | 4096 tracked sources/peers per table | the limiters themselves | none | `rate` |
//!
//! One member's worst stream pattern holds at most `peer_budget` (32 MiB) of
//! frames plus what quinn buffers (8 MiB per connection, at most 4
//! connections): the attack test measures +19 to +23 MiB RSS on one
//! connection.

use std::net::SocketAddr;
use std::time::Duration;

use keyring_core::wire::frame;

/// Mesh settings.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Member endpoint address (port 0 = any).
    pub bind: SocketAddr,
    /// Join endpoint address (port 0 = any).
    pub join_bind: SocketAddr,
    /// The node's Ed25519 secret seed (the TLS identity).
    pub seed: [u8; 32],
    /// Largest frame payload accepted from a peer.
    pub max_payload: usize,
    /// QUIC keep-alive (liveness ping) interval.
    pub keep_alive: Duration,
    /// A connection silent for this long is dead.
    pub idle_timeout: Duration,
    /// tokio worker threads. One is the default: on the 2-core benchmark
    /// machine one thread per mesh gave more sequential calls and less CPU
    /// per call than two (fewer hand-offs between the runtime's threads),
    /// and as many concurrent calls and as much bulk throughput.
    pub worker_threads: usize,
    /// The fences.
    pub limits: Limits,
}

impl MeshConfig {
    /// Defaults: loopback, any port, 16 MiB frames, 2 s pings, 10 s idle
    /// timeout, one worker thread, the default [`Limits`].
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            join_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed,
            max_payload: frame::DEFAULT_MAX_PAYLOAD,
            keep_alive: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            worker_threads: 1,
            limits: Limits::default(),
        }
    }
}

/// What one peer or one source address may make this node hold or do.
#[derive(Debug, Clone)]
pub struct Limits {
    // --- streams on an admitted connection (see `stream`, `budget`) ---
    /// Bidirectional streams a peer may have open at once per connection
    /// (one per RPC call in flight).
    pub max_bidi_streams: u32,
    /// Unidirectional streams a peer may have open at once per connection
    /// (casts, log pushes).
    pub max_uni_streams: u32,
    /// Bytes quinn buffers for one stream that we have not read yet.
    pub stream_receive_window: u32,
    /// Bytes quinn buffers for one connection that we have not read yet.
    pub receive_window: u32,
    /// Bytes one connection's incomplete frames (and unanswered requests)
    /// may claim. A frame is charged its announced size when its header
    /// arrives and waits (holding nothing) until the budget has room.
    pub link_budget: usize,
    /// The same, summed over all connections of one peer key.
    pub peer_budget: usize,
    /// Longest a frame waits for budget before its stream is reset.
    pub budget_wait: Duration,
    /// Time a stream gets for its frame header, and on top of what its byte
    /// rate earns for the rest.
    pub stream_grace: Duration,
    /// Slowest a peer may send a frame (bytes per second, after the grace).
    pub min_stream_rate: u32,

    // --- the member endpoint's handshakes (see `admit`) ---
    /// Time from a completed handshake to a complete Hello.
    pub hello_deadline: Duration,
    /// Connections one key may hold to this node (admitted or awaiting Hello).
    pub max_connections_per_key: usize,
    /// Longest a handshake may take (it holds a place until then).
    pub handshake_deadline: Duration,
    /// Handshakes in progress at once; more are refused before any crypto.
    pub max_handshakes: usize,
    /// Handshakes in progress at once from one source (/32 or /64).
    pub max_handshakes_per_source: usize,
    /// Above this many handshakes in progress, an unvalidated source
    /// address is sent a QUIC Retry first (proves it is not spoofed).
    pub retry_above: usize,
    /// New handshakes admitted at once (token bucket burst), all sources.
    pub handshake_burst: u32,
    /// New handshakes admitted per second on average, all sources.
    pub handshakes_per_second: u32,
    /// Failed handshakes (not a member, no Hello, refused Hello) a source
    /// may cause at once before it is refused up front (per /32 or /64).
    pub failure_burst: u32,
    /// Failed handshakes a source may cause per second on average.
    pub failures_per_second: u32,

    // --- the join endpoint (see `join::server`) ---
    /// Time from a completed handshake to a complete JoinRequest.
    pub join_request_deadline: Duration,
    /// Time from a completed handshake to the answer being sent.
    pub join_deadline: Duration,
    /// Join connections open at once, any stage; more are refused.
    pub max_join_connections: usize,
    /// Join connections open at once from one source (/32 or /64).
    pub max_joins_per_source: usize,
    /// Joins with a verified invite awaiting the node's answer at once.
    pub max_joins_in_flight: usize,
    /// New join connections admitted at once from one source.
    pub join_source_burst: u32,
    /// New join connections admitted per second from one source.
    pub joins_per_source_per_second: u32,
    /// New join connections admitted at once, all sources.
    pub join_burst: u32,
    /// New join connections admitted per second, all sources.
    pub joins_per_second: u32,

    // --- protocols (see `protocols`) ---
    /// Membership log pushes one peer may deliver at once (per keyring).
    pub log_update_burst: u32,
    /// Membership log pushes one peer may deliver per second (per keyring).
    pub log_updates_per_second: u32,
    /// Anti-entropy head exchanges one peer may start at once (per
    /// keyring); beyond that (and `heads_per_second`) its exchanges are
    /// refused unread.
    pub heads_burst: u32,
    /// Anti-entropy head exchanges one peer may start per second (per keyring).
    pub heads_per_second: u32,
    /// Casts one peer may deliver at once.
    pub cast_burst: u32,
    /// Casts one peer may deliver per second.
    pub casts_per_second: u32,
    /// Source addresses and peers tracked by the rate limiters (the oldest
    /// idle ones are forgotten first).
    pub tracked_sources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bidi_streams: 64,
            max_uni_streams: 32,
            stream_receive_window: 2 << 20,
            receive_window: 8 << 20,
            link_budget: 24 << 20,
            peer_budget: 32 << 20,
            budget_wait: Duration::from_secs(10),
            stream_grace: Duration::from_secs(2),
            min_stream_rate: 64 << 10,
            hello_deadline: Duration::from_secs(2),
            max_connections_per_key: 4,
            handshake_deadline: Duration::from_secs(3),
            max_handshakes: 128,
            max_handshakes_per_source: 16,
            retry_above: 16,
            handshake_burst: 512,
            handshakes_per_second: 2000,
            failure_burst: 32,
            failures_per_second: 8,
            join_request_deadline: Duration::from_secs(2),
            join_deadline: Duration::from_secs(10),
            max_join_connections: 128,
            max_joins_per_source: 8,
            max_joins_in_flight: 32,
            join_source_burst: 16,
            joins_per_source_per_second: 4,
            join_burst: 64,
            joins_per_second: 50,
            log_update_burst: 16,
            log_updates_per_second: 2,
            heads_burst: 8,
            heads_per_second: 4,
            cast_burst: 1024,
            casts_per_second: 8192,
            tracked_sources: 4096,
        }
    }
}

impl Limits {
    /// The limits made consistent with `max_payload`: a budget always fits
    /// one largest frame (a frame that never fits would wait forever).
    pub(crate) fn fitted(mut self, max_payload: usize) -> Self {
        let frame = max_payload.saturating_add(frame::HEADER_LEN);
        self.link_budget = self.link_budget.max(frame);
        self.peer_budget = self.peer_budget.max(self.link_budget);
        self.max_connections_per_key = self.max_connections_per_key.max(1);
        self.max_joins_per_source = self.max_joins_per_source.max(1);
        self.min_stream_rate = self.min_stream_rate.max(1);
        self
    }
}
