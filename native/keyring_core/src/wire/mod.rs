//! Wire codecs for bytes that come from peers: typed, versioned,
//! length-limited frames ([`frame`], collected from a stream by
//! [`assembler`]) and the restricted term codec for RPC
//! arguments and replies ([`term`]). Nothing here ever produces Erlang
//! external term format, and nothing decodes it.

pub mod assembler;
pub mod frame;
pub(crate) mod reader;
pub mod term;
