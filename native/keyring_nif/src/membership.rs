//! Keyrings: membership rings, the strict linear logs the mesh process still
//! uses, and invites. Thin adapters over `keyring_core::membership`.
//!
//! A ring is a `ResourceArc` holding a verified `Ring` behind a mutex: entries
//! are verified once, when they are added, never replayed per call. NIFs that
//! take the ring's lock or may verify many entries run on dirty CPU
//! schedulers; `ring_heads` reads a published snapshot on the caller's
//! scheduler. Every answer is `{:ok, _}` or `{:error, reason}`, where reason
//! names the rule (`{:not_an_admin, seq}`, `{:invite_spent, seq, uses, max}`, ...).

mod invite;
mod legacy;
pub(crate) mod ring;
mod terms;
