//! Blob transfer: the downloader against honest and hand-built lying
//! providers (in memory, `downloader`), and the protocol over QUIC between
//! two meshes (`over_quic`).

#[path = "../support/mod.rs"]
mod support;

mod downloader;
mod over_quic;
