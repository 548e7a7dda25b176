//! Decoding a document under its [`Limits`].
//!
//! Counts come from the peer, so none is trusted. The decoder keeps how many
//! elements the open containers still owe; a new container's count is added
//! to it, and the sum must fit in the bytes left at [`MIN_VALUE_LEN`] bytes
//! per value, and in the value budget. A claim that cannot be met is refused
//! when its header is read, before anything is reserved for it, and memory is
//! reserved for at most [`PREALLOCATE_MAX`] elements of a container before
//! they arrive. So a document of `n` bytes makes at most `n / 3` values, and
//! nesting cannot multiply what a count reserves.

use super::{
    Limits, TermError, Value, ATOM, BINARY, FLOAT, INT, LIST, MAP, MIN_VALUE_LEN, TUPLE, VERSION,
};
use crate::wire::reader::Reader;

/// Most elements reserved for one container before they are read; a longer
/// container grows as its elements arrive.
const PREALLOCATE_MAX: usize = 1024;

/// Decodes one document under `limits`.
pub fn decode(bytes: &[u8], limits: Limits) -> Result<Value<'_>, TermError> {
    if bytes.len() > limits.max_bytes {
        return Err(TermError::TooLarge(limits.max_bytes));
    }
    let mut d = Decoder {
        r: Reader::new(bytes),
        limits,
        values: 0,
        owed: 0,
    };
    match d.r.u8().map_err(|_| TermError::Truncated)? {
        VERSION => {}
        other => return Err(TermError::UnknownTag(other)),
    }
    let v = d.value(0)?;
    if d.r.remaining() != 0 {
        return Err(TermError::Trailing);
    }
    Ok(v)
}

struct Decoder<'a> {
    r: Reader<'a>,
    limits: Limits,
    /// Values read so far, the one being read included.
    values: usize,
    /// Elements the open containers still expect after the one being read.
    owed: u64,
}

impl<'a> Decoder<'a> {
    fn value(&mut self, depth: usize) -> Result<Value<'a>, TermError> {
        match self.begin(depth)? {
            tag @ (LIST | TUPLE | MAP) => self.container(tag, depth),
            tag => self.scalar(tag),
        }
    }

    /// Counts a value at `depth` against the limits and reads its tag.
    #[inline(always)]
    fn begin(&mut self, depth: usize) -> Result<u8, TermError> {
        if depth >= self.limits.max_depth {
            return Err(TermError::TooDeep);
        }
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(TermError::TooManyValues(self.limits.max_values));
        }
        self.r.u8().map_err(|_| TermError::Truncated)
    }

    #[inline(always)]
    fn scalar(&mut self, tag: u8) -> Result<Value<'a>, TermError> {
        let t = |_| TermError::Truncated;
        Ok(match tag {
            INT => Value::Int(self.r.u64().map_err(t)? as i64),
            FLOAT => {
                let f = f64::from_bits(self.r.u64().map_err(t)?);
                if !f.is_finite() {
                    return Err(TermError::NonFiniteFloat);
                }
                Value::Float(f)
            }
            BINARY => {
                let n = self.r.u32().map_err(t)? as usize;
                Value::Binary(self.r.take(n).map_err(t)?)
            }
            ATOM => {
                let n = self.r.u8().map_err(t)? as usize;
                if n == 0 {
                    return Err(TermError::BadAtom);
                }
                let name = self.r.take(n).map_err(t)?;
                Value::Atom(std::str::from_utf8(name).map_err(|_| TermError::BadAtom)?)
            }
            other => return Err(TermError::UnknownTag(other)),
        })
    }

    fn container(&mut self, tag: u8, depth: usize) -> Result<Value<'a>, TermError> {
        let n = self.r.u32().map_err(|_| TermError::Truncated)?;
        if tag == MAP {
            self.claim(2 * u64::from(n))?;
            let mut pairs = Vec::with_capacity((n as usize).min(PREALLOCATE_MAX));
            for _ in 0..n {
                let k = self.element(depth)?;
                let v = self.element(depth)?;
                pairs.push((k, v));
            }
            return Ok(Value::Map(pairs));
        }
        self.claim(u64::from(n))?;
        let mut items = Vec::with_capacity((n as usize).min(PREALLOCATE_MAX));
        for _ in 0..n {
            items.push(self.element(depth)?);
        }
        Ok(if tag == LIST {
            Value::List(items)
        } else {
            Value::Tuple(items)
        })
    }

    /// The next element of a container at `depth`: it stops being owed.
    #[inline(always)]
    fn element(&mut self, depth: usize) -> Result<Value<'a>, TermError> {
        self.owed -= 1;
        match self.begin(depth + 1)? {
            tag @ (LIST | TUPLE | MAP) => self.container(tag, depth + 1),
            tag => self.scalar(tag),
        }
    }

    /// Accepts a container's claim of `n` elements only if they, with those
    /// still owed, fit in what is left of the input and of the value budget.
    fn claim(&mut self, n: u64) -> Result<(), TermError> {
        let claimed = self.owed + n;
        let room = (self.r.remaining() / MIN_VALUE_LEN) as u64;
        if claimed > room {
            return Err(TermError::ClaimExceedsInput { claimed, room });
        }
        if self.values as u64 + claimed > self.limits.max_values as u64 {
            return Err(TermError::TooManyValues(self.limits.max_values));
        }
        self.owed = claimed;
        Ok(())
    }
}
