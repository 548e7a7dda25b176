//! Writing a document under its [`Limits`] (the NIF walks BEAM terms straight
//! into a [`Writer`]).

use super::{Limits, TermError, Value, ATOM, BINARY, FLOAT, INT, LIST, MAP, TUPLE, VERSION};

/// Writes a document incrementally, refusing to pass its [`Limits`]: bytes
/// and values. (Depth is the caller's to count: the writer only sees a flat
/// sequence of values; [`Writer::value`] counts it for whole [`Value`]s.)
///
/// A document can also be produced in pieces, so large binaries need not be
/// copied into it: [`binary_header`](Self::binary_header) writes only a
/// binary's header, [`split`](Self::split) hands over what was written so far,
/// and the caller places the binary's own bytes between that piece and the
/// next.
#[derive(Debug)]
pub struct Writer {
    out: Vec<u8>,
    limits: Limits,
    /// Bytes handed over by `split` or promised by `binary_header`.
    elsewhere: usize,
    values: usize,
}

impl Writer {
    /// A writer that refuses to grow past `max_len` bytes (other limits at
    /// their defaults, see [`Limits::new`]).
    pub fn new(max_len: usize) -> Self {
        Self::with_limits(Limits::new(max_len))
    }

    /// A writer that refuses to pass `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            out: vec![VERSION],
            limits,
            elsewhere: 0,
            values: 0,
        }
    }

    /// Bytes in the document so far, wherever they are.
    pub fn len(&self) -> usize {
        self.elsewhere + self.out.len()
    }

    /// Whether nothing at all has been written (never: the version byte is).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values written so far.
    pub fn values(&self) -> usize {
        self.values
    }

    /// Values that may still be written.
    pub fn values_left(&self) -> usize {
        self.limits.max_values - self.values
    }

    /// The limits this writer keeps.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Checks that one more value of `extra` bytes fits, and counts it.
    fn room(&mut self, extra: usize) -> Result<(), TermError> {
        if self.len() + extra > self.limits.max_bytes {
            return Err(TermError::TooLarge(self.limits.max_bytes));
        }
        if self.values >= self.limits.max_values {
            return Err(TermError::TooManyValues(self.limits.max_values));
        }
        self.values += 1;
        Ok(())
    }

    /// An integer.
    pub fn int(&mut self, v: i64) -> Result<(), TermError> {
        self.room(9)?;
        self.out.push(INT);
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }

    /// A finite float.
    pub fn float(&mut self, v: f64) -> Result<(), TermError> {
        if !v.is_finite() {
            return Err(TermError::NonFiniteFloat);
        }
        self.room(9)?;
        self.out.push(FLOAT);
        self.out.extend_from_slice(&v.to_bits().to_be_bytes());
        Ok(())
    }

    /// A binary.
    pub fn binary(&mut self, v: &[u8]) -> Result<(), TermError> {
        let n = u32::try_from(v.len()).map_err(|_| TermError::TooLarge(self.limits.max_bytes))?;
        self.room(5 + v.len())?;
        self.out.push(BINARY);
        self.out.extend_from_slice(&n.to_be_bytes());
        self.out.extend_from_slice(v);
        Ok(())
    }

    /// The header of a binary of `len` bytes that the caller supplies: call
    /// [`split`](Self::split) next and put the bytes right after that piece.
    pub fn binary_header(&mut self, len: usize) -> Result<(), TermError> {
        let n = u32::try_from(len).map_err(|_| TermError::TooLarge(self.limits.max_bytes))?;
        self.room(5 + len)?;
        self.out.push(BINARY);
        self.out.extend_from_slice(&n.to_be_bytes());
        self.elsewhere += len;
        Ok(())
    }

    /// What was written since the last split; writing goes on after it.
    pub fn split(&mut self) -> Vec<u8> {
        self.elsewhere += self.out.len();
        std::mem::take(&mut self.out)
    }

    /// An atom, by name.
    pub fn atom(&mut self, name: &str) -> Result<(), TermError> {
        if name.is_empty() || name.len() > 255 {
            return Err(TermError::BadAtom);
        }
        self.room(2 + name.len())?;
        self.out.push(ATOM);
        self.out.push(name.len() as u8);
        self.out.extend_from_slice(name.as_bytes());
        Ok(())
    }

    fn header(&mut self, tag: u8, n: usize) -> Result<(), TermError> {
        let n = u32::try_from(n).map_err(|_| TermError::TooLarge(self.limits.max_bytes))?;
        self.room(5)?;
        self.out.push(tag);
        self.out.extend_from_slice(&n.to_be_bytes());
        Ok(())
    }

    /// Starts a list of `n` elements (write them next).
    pub fn list(&mut self, n: usize) -> Result<(), TermError> {
        self.header(LIST, n)
    }

    /// Starts a tuple of `n` elements (write them next).
    pub fn tuple(&mut self, n: usize) -> Result<(), TermError> {
        self.header(TUPLE, n)
    }

    /// Starts a map of `n` pairs (write key, value, key, value...).
    pub fn map(&mut self, n: usize) -> Result<(), TermError> {
        self.header(MAP, n)
    }

    /// Writes a whole [`Value`] (refusing one nested deeper than the limit).
    pub fn value(&mut self, v: &Value<'_>) -> Result<(), TermError> {
        self.value_at(v, 0)
    }

    fn value_at(&mut self, v: &Value<'_>, depth: usize) -> Result<(), TermError> {
        if depth >= self.limits.max_depth {
            return Err(TermError::TooDeep);
        }
        match v {
            Value::Int(i) => self.int(*i),
            Value::Float(f) => self.float(*f),
            Value::Binary(b) => self.binary(b),
            Value::Atom(a) => self.atom(a),
            Value::List(items) => {
                self.list(items.len())?;
                items.iter().try_for_each(|i| self.value_at(i, depth + 1))
            }
            Value::Tuple(items) => {
                self.tuple(items.len())?;
                items.iter().try_for_each(|i| self.value_at(i, depth + 1))
            }
            Value::Map(pairs) => {
                self.map(pairs.len())?;
                pairs.iter().try_for_each(|(k, v)| {
                    self.value_at(k, depth + 1)?;
                    self.value_at(v, depth + 1)
                })
            }
        }
    }

    /// The encoded document (after a [`split`](Self::split): its last piece).
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Encodes one value under `limits` (convenience over [`Writer`]).
pub fn encode(v: &Value<'_>, limits: Limits) -> Result<Vec<u8>, TermError> {
    let mut w = Writer::with_limits(limits);
    w.value(v)?;
    Ok(w.finish())
}
