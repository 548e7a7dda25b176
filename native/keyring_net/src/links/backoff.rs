//! When to dial a lost link again: pure schedules and decisions, so the
//! redial loop only carries them out.

use std::time::Duration;

use crate::error::CallError;

/// First background redial delay.
pub const REDIAL_FIRST: Duration = Duration::from_millis(100);
/// Longest background redial delay.
pub const REDIAL_MAX: Duration = Duration::from_secs(30);
/// First pause between dial attempts inside one call's deadline.
pub(crate) const DIAL_FIRST: Duration = Duration::from_millis(50);
/// Longest pause between dial attempts inside one call's deadline.
pub(crate) const DIAL_MAX: Duration = Duration::from_secs(2);

/// The delay after `delay`: doubled, at most `max`.
pub(crate) fn next(delay: Duration, max: Duration) -> Duration {
    (delay * 2).min(max)
}

/// `d` scaled by a factor in [0.5, 1.5) chosen by `r`, so two sides that
/// lost the same link do not dial each other in lockstep.
pub(crate) fn jitter(d: Duration, r: u16) -> Duration {
    d.mul_f64(0.5 + f64::from(r) / 65536.0)
}

/// A random `r` for [`jitter`].
pub(crate) fn random() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).map_or(0x8000, |()| u16::from_le_bytes(b))
}

/// What the background redial loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redial {
    /// Stop: the link is up, or can never come up this way.
    Stop,
    /// Try again after the next delay.
    Again,
}

/// Before an attempt: stop once the peer is no longer a member or a link
/// came up by other means (the peer dialled us).
pub(crate) fn before_attempt(is_member: bool, has_live_link: bool) -> Redial {
    if is_member && !has_live_link {
        Redial::Again
    } else {
        Redial::Stop
    }
}

/// After an attempt that ended with `outcome` (`None`: it timed out).
pub(crate) fn after_attempt(outcome: Option<&Result<(), CallError>>) -> Redial {
    match outcome {
        Some(Ok(())) => Redial::Stop,
        Some(Err(
            CallError::Closed | CallError::NotMember | CallError::NoAddress | CallError::Revoked,
        )) => Redial::Stop,
        Some(Err(_)) | None => Redial::Again,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring_core::wire::frame::Refusal;

    #[test]
    fn delays_double_up_to_the_maximum() {
        let mut d = REDIAL_FIRST;
        let mut seen = vec![];
        for _ in 0..12 {
            seen.push(d);
            d = next(d, REDIAL_MAX);
        }
        assert_eq!(seen[1], Duration::from_millis(200));
        assert_eq!(*seen.last().unwrap(), REDIAL_MAX);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        let d = Duration::from_millis(1000);
        assert_eq!(jitter(d, 0), Duration::from_millis(500));
        assert!(jitter(d, u16::MAX) < Duration::from_millis(1500));
        for _ in 0..1000 {
            let j = jitter(d, random());
            assert!(j >= Duration::from_millis(500) && j < Duration::from_millis(1500));
        }
    }

    #[test]
    fn redialling_stops_when_the_link_is_back_or_the_peer_is_gone() {
        assert_eq!(before_attempt(true, false), Redial::Again);
        assert_eq!(before_attempt(false, false), Redial::Stop);
        assert_eq!(before_attempt(true, true), Redial::Stop);
    }

    #[test]
    fn transient_failures_are_retried_final_ones_are_not() {
        assert_eq!(after_attempt(Some(&Ok(()))), Redial::Stop);
        for final_ in [
            CallError::Closed,
            CallError::NotMember,
            CallError::NoAddress,
            CallError::Revoked,
        ] {
            assert_eq!(after_attempt(Some(&Err(final_))), Redial::Stop);
        }
        for transient in [
            CallError::Timeout,
            CallError::Busy,
            CallError::Unreachable("x".into()),
            CallError::HandshakeRejected("x".into()),
            CallError::Refused(Refusal::NotMember),
        ] {
            assert_eq!(after_attempt(Some(&Err(transient))), Redial::Again);
        }
        assert_eq!(after_attempt(None), Redial::Again);
    }
}
