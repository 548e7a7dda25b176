//! The protocols Keyring's mesh serves, each a [`crate::Protocol`]:
//! [`rpc`] (calls and casts), [`membership`] (log pushes), [`blobs`]
//! (verified blob transfer), [`dag`] (DAG
//! sync), [`feeds`] (feed and ref replication) and [`reconcile`] (set
//! reconciliation).

pub(crate) mod batch;
pub mod blobs;
pub mod dag;
pub mod feeds;
pub mod membership;
pub mod reconcile;
pub mod rpc;

use std::sync::Mutex;

use crate::rate::KeyedBuckets;

/// Waits until `key` may deliver one more message.
pub(crate) async fn turn<K: std::hash::Hash + Eq + Clone>(rate: &Mutex<KeyedBuckets<K>>, key: &K) {
    loop {
        let wait = {
            let mut rate = rate.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            if rate.take(key, now) {
                return;
            }
            rate.wait(key, now)
        };
        tokio::time::sleep(wait).await;
    }
}
