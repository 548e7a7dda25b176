//! Joining a keyring: the join endpoint (accepts any key; the invite
//! decides) and the joiner's side.

pub(crate) mod client;
pub(crate) mod server;
