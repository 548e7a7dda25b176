//! Answers owed to a BEAM process by a Rust thread.
//!
//! A [`Reply`] sends `{:keyring_reply, ref, result}` to the waiting process
//! exactly once. If it is dropped unsent (the worker panicked, or its thread
//! was shut down) its `Drop` answers `{:error, :task_aborted}`, so a caller
//! never waits forever.

use rustler::env::SavedTerm;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Term};

use crate::atoms;

pub(crate) struct Reply {
    env: OwnedEnv,
    pid: LocalPid,
    reference: SavedTerm,
    sent: bool,
}

impl Reply {
    pub(crate) fn new<'a>(env: Env<'a>, reference: Term<'a>) -> Self {
        let owned = OwnedEnv::new();
        let reference = owned.save(reference);
        Self {
            env: owned,
            pid: env.pid(),
            reference,
            sent: false,
        }
    }

    /// Sends `{:keyring_reply, ref, build(env)}`. Must run on a non-BEAM thread.
    pub(crate) fn send<F>(mut self, build: F)
    where
        F: for<'b> FnOnce(Env<'b>) -> Term<'b>,
    {
        self.sent = true;
        let reference = self.reference.clone();
        let _ = self.env.send_and_clear(&self.pid, |env| {
            (atoms::keyring_reply(), reference.load(env), build(env)).encode(env)
        });
    }
}

impl Reply {
    /// Disarms the reply: the caller was answered synchronously instead.
    pub(crate) fn cancel(mut self) {
        self.sent = true;
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.sent {
            return;
        }
        let mut env = std::mem::take(&mut self.env);
        let (pid, reference) = (self.pid, self.reference.clone());
        let mut send = move || {
            let _ = env.send_and_clear(&pid, |env| {
                let reason = (atoms::error(), atoms::task_aborted());
                (atoms::keyring_reply(), reference.load(env), reason).encode(env)
            });
        };
        // send_and_clear panics on BEAM-managed threads; hop off them.
        if rustler::thread::is_scheduler_thread() {
            std::thread::spawn(send);
        } else {
            send();
        }
    }
}
