//! `Keyring.Native`: the BEAM's door into `keyring_core`.
//!
//! Every function here decodes terms, calls the core and encodes the answer as
//! `{:ok, _}` / `{:error, reason}`. Work that can exceed ~1 ms runs on a dirty
//! scheduler or on a Rust thread that answers with a message.

mod atoms;
mod dag;
mod feed;
mod gateway;
mod gossip;
mod hash;
mod identity;
mod json;
mod lent;
mod membership;
mod mesh;
mod mesh_dag;
mod mesh_feeds;
mod mesh_reconcile;
mod refs;
mod reply;
mod store;
mod sync;
mod term_codec;
mod timeslice;

rustler::init!("Elixir.Keyring.Native", load = load);

fn load(_env: rustler::Env<'_>, _info: rustler::Term<'_>) -> bool {
    true
}

// Rust-side allocations (QUIC buffers, frames, store batches) go to mimalloc:
// glibc's malloc maps and unmaps every ~1 MiB buffer, and the page faults cost
// the mesh ~25% of its bulk throughput (bench/mesh.exs). BEAM terms still use
// the BEAM's allocators.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
