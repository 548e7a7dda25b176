//! Admission: whether an invite lets a key join now, judged against the log
//! (uses and revocations recorded there) and the admitting node's budget.

use super::entry::{Op, PublicKey};
use super::invite::Invite;
use super::ring::Ring;
use super::rules::View;
use super::MembershipError;

/// The window of the per-issuer join budget.
pub const JOIN_BUDGET_WINDOW_MS: u64 = 60 * 60 * 1000;

impl Ring {
    /// Checks `invite` for `joiner` at `now_ms` and answers the [`Op::Join`]
    /// to append, or the rule that refuses it: the invite's signature and
    /// expiry, its keyring, its issuer (an admin in good standing now), its
    /// key binding, the joiner (never a key the log knows: an invite does not
    /// renew or change a member), its uses and revocation as recorded in the
    /// log, and the issuer's joins in the last hour against `joins_per_hour`.
    pub fn admit(
        &self,
        invite: &Invite,
        joiner: PublicKey,
        now_ms: u64,
        joins_per_hour: u32,
    ) -> Result<Op, MembershipError> {
        invite.verify(now_ms)?;
        if invite.keyring_id != self.keyring_id {
            return Err(MembershipError::WrongKeyring { seq: 0 });
        }
        let head = self.index.at(self.head().body.seq);
        let seq = self.head().body.seq + 1;
        let refused = self.refusals();
        let issuer = invite.issuer;
        if !head.admin_valid(&issuer, now_ms) || refused.contains(&issuer) {
            return Err(MembershipError::IssuerNotAdmin);
        }
        if invite.bound_key.is_some_and(|k| k != joiner) {
            return Err(MembershipError::InviteBoundToOtherKey);
        }
        if head.is_revoked(&joiner) || refused.contains(&joiner) {
            return Err(MembershipError::Revoked { seq });
        }
        if head.knows(&joiner) {
            return Err(MembershipError::AlreadyMember { seq });
        }
        match head.invite(&issuer, &invite.token) {
            Some((_, _, true)) => return Err(MembershipError::InviteRevoked { seq }),
            Some((_, cap, _)) if cap != invite.max_uses => {
                return Err(MembershipError::InvalidOperation {
                    seq,
                    why: "max_uses differs from the invite's earlier joins",
                })
            }
            Some((uses, max_uses, _)) if max_uses != 0 && uses >= u32::from(max_uses) => {
                return Err(MembershipError::InviteSpent {
                    seq,
                    uses,
                    max_uses,
                })
            }
            _ => {}
        }
        let from = now_ms.saturating_sub(JOIN_BUDGET_WINDOW_MS);
        let joins = u32::try_from(self.index.joins_since(&issuer, from)).unwrap_or(u32::MAX);
        if joins >= joins_per_hour {
            return Err(MembershipError::JoinBudgetExhausted {
                joins,
                budget: joins_per_hour,
            });
        }
        Ok(Op::Join {
            key: joiner,
            roles: invite.roles.clone(),
            issuer,
            token: invite.token,
            max_uses: invite.max_uses,
        })
    }
}
