//! Meshes on loopback in one process, by theme. The attacks on each fence
//! are the `attack_*` modules (the memory attack, which measures this
//! process's RSS, runs alone in `tests/attack_stream_memory.rs`).

#[path = "../support/mod.rs"]
mod support;

mod attack_handshake_flood;
mod attack_heads_flood;
mod attack_join_lockout;
mod attack_log_flood;
mod attack_malformed_frames;
mod attack_refusal_oracle;
mod authorization;
mod dag_sync;
mod feeds;
mod joins;
mod links;
mod module_graph;
mod protocols;
mod reconcile;
