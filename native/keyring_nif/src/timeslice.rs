//! Charging a NIF's run time to the calling process.
//!
//! A NIF call counts as a single reduction, so a process that loops over a
//! NIF taking 100 µs (an Ed25519 verify) would keep its scheduler for the
//! ~4000 reductions of a whole timeslice: hundreds of milliseconds. Each
//! normal-scheduler NIF that can take more than a few microseconds creates a
//! [`Charge`]; when it ends, the elapsed time is reported with
//! `enif_consume_timeslice` (500 µs = 100%), so the BEAM preempts such loops as
//! it preempts Erlang code.

use std::time::Instant;

use rustler::Env;

pub(crate) struct Charge<'a> {
    env: Env<'a>,
    start: Instant,
}

impl<'a> Charge<'a> {
    pub(crate) fn start(env: Env<'a>) -> Self {
        Self {
            env,
            start: Instant::now(),
        }
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        // A full timeslice is counted as 500 µs: Erlang code runs its 4,000
        // reductions in well under a millisecond, and a high-priority process
        // woken meanwhile waits for the current one to yield.
        let micros = self.start.elapsed().as_micros();
        let percent = (micros / 5).clamp(1, 100) as i32;
        rustler::schedule::consume_timeslice(self.env, percent);
    }
}
