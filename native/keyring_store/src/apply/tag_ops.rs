//! Tags in the index: set, remove, and the protection they give.

use keyring_core::hash::Digest;
use redb::ReadableTable;

use super::Tables;
use crate::tags::{self, Tag};
use crate::StoreError;

impl Tables<'_> {
    pub(super) fn set_tag(
        &mut self,
        tag: &Tag,
        cid: &Digest,
    ) -> Result<Option<Digest>, StoreError> {
        let key = tag.key();
        let previous = self
            .tags
            .insert(key.as_slice(), cid.as_slice())?
            .and_then(|old| Digest::try_from(old.value()).ok());
        self.changed = true;
        if previous.as_ref() == Some(cid) {
            return Ok(previous);
        }
        match previous {
            Some(old) => tags::count(&mut self.protect, &tag.protect_key(&old), false)?,
            None if tag.is_share() => self.shares += 1,
            None => self.pins += 1,
        }
        tags::count(&mut self.protect, &tag.protect_key(cid), true)?;
        Ok(previous)
    }

    pub(super) fn delete_tag(
        &mut self,
        tag: &Tag,
        only: Option<&Digest>,
    ) -> Result<bool, StoreError> {
        let key = tag.key();
        let current = self
            .tags
            .get(key.as_slice())?
            .and_then(|v| Digest::try_from(v.value()).ok());
        let Some(cid) = current else {
            return Ok(false);
        };
        if only.is_some_and(|o| *o != cid) {
            return Ok(false);
        }
        self.tags.remove(key.as_slice())?;
        tags::count(&mut self.protect, &tag.protect_key(&cid), false)?;
        self.changed = true;
        if tag.is_share() {
            self.shares = self.shares.saturating_sub(1);
        } else {
            self.pins = self.pins.saturating_sub(1);
        }
        Ok(true)
    }

    /// Whether anything keeps `cid` from GC: a tag, or a holder in this process.
    pub(crate) fn protected(&self, cid: &Digest) -> Result<bool, StoreError> {
        if self.live.contains(cid) {
            return Ok(true);
        }
        let (lo, hi) = tags::protect_range(cid);
        Ok(self
            .protect
            .range::<&[u8]>(lo.as_slice()..=hi.as_slice())?
            .next()
            .is_some())
    }
}
