//! The restricted term codec for RPC arguments and replies.
//!
//! Only plain data crosses the wire: integers (signed 64-bit), finite floats,
//! binaries, atoms (by name; the BEAM side maps them to EXISTING atoms only and
//! refuses unknown names), lists (proper), tuples and maps. No pids, refs, funs,
//! ports, improper lists or compression. Decoding is bounded by the input size
//! and by [`MAX_DEPTH`].
//!
//! ```text
//! term = 0x01 i64                       integer
//!      | 0x02 f64                       float (IEEE bits; NaN/inf refused)
//!      | 0x03 len:u32 bytes             binary
//!      | 0x04 len:u8  utf8              atom name (1..=255 bytes)
//!      | 0x05 n:u32 term*n              list
//!      | 0x06 n:u32 term*n              tuple
//!      | 0x07 n:u32 (term term)*n       map
//! ```
//! A document is one `term` preceded by the version byte `0x01`.

use thiserror::Error;

use super::reader::Reader;

/// Codec version byte.
pub const VERSION: u8 = 1;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

const INT: u8 = 1;
const FLOAT: u8 = 2;
const BINARY: u8 = 3;
const ATOM: u8 = 4;
const LIST: u8 = 5;
const TUPLE: u8 = 6;
const MAP: u8 = 7;

/// A decoded term, borrowing binaries and atom names from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Integer.
    Int(i64),
    /// Finite float.
    Float(f64),
    /// Binary.
    Binary(&'a [u8]),
    /// Atom name (the receiver must only map it to an existing atom).
    Atom(&'a str),
    /// Proper list.
    List(Vec<Value<'a>>),
    /// Tuple.
    Tuple(Vec<Value<'a>>),
    /// Map, as key/value pairs in wire order.
    Map(Vec<(Value<'a>, Value<'a>)>),
}

/// Why a term could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TermError {
    /// The input ended early.
    #[error("truncated term")]
    Truncated,
    /// Unknown type tag or version.
    #[error("unknown tag {0}")]
    UnknownTag(u8),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("term nested too deeply")]
    TooDeep,
    /// The document is larger than allowed.
    #[error("term larger than {0} bytes")]
    TooLarge(usize),
    /// A float was NaN or infinite.
    #[error("non-finite float")]
    NonFiniteFloat,
    /// An atom name was empty, too long or not UTF-8.
    #[error("bad atom name")]
    BadAtom,
    /// Bytes after the term.
    #[error("trailing bytes after term")]
    Trailing,
    /// A value this codec does not carry (pid, ref, fun, big integer...).
    #[error("unsupported value: {0}")]
    Unsupported(&'static str),
}

/// Decodes one document of at most `max_len` bytes.
pub fn decode(bytes: &[u8], max_len: usize) -> Result<Value<'_>, TermError> {
    if bytes.len() > max_len {
        return Err(TermError::TooLarge(max_len));
    }
    let mut r = Reader::new(bytes);
    match r.u8().map_err(|_| TermError::Truncated)? {
        VERSION => {}
        other => return Err(TermError::UnknownTag(other)),
    }
    let v = decode_value(&mut r, 0)?;
    if r.remaining() != 0 {
        return Err(TermError::Trailing);
    }
    Ok(v)
}

fn decode_value<'a>(r: &mut Reader<'a>, depth: usize) -> Result<Value<'a>, TermError> {
    if depth >= MAX_DEPTH {
        return Err(TermError::TooDeep);
    }
    let t = |_| TermError::Truncated;
    Ok(match r.u8().map_err(t)? {
        INT => Value::Int(r.u64().map_err(t)? as i64),
        FLOAT => {
            let f = f64::from_bits(r.u64().map_err(t)?);
            if !f.is_finite() {
                return Err(TermError::NonFiniteFloat);
            }
            Value::Float(f)
        }
        BINARY => {
            let n = r.u32().map_err(t)? as usize;
            Value::Binary(r.take(n).map_err(t)?)
        }
        ATOM => {
            let n = r.u8().map_err(t)? as usize;
            if n == 0 {
                return Err(TermError::BadAtom);
            }
            let name =
                std::str::from_utf8(r.take(n).map_err(t)?).map_err(|_| TermError::BadAtom)?;
            Value::Atom(name)
        }
        tag @ (LIST | TUPLE) => {
            let n = r.u32().map_err(t)? as usize;
            // Every element takes at least one byte: never pre-allocate more.
            if n > r.remaining() {
                return Err(TermError::Truncated);
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(decode_value(r, depth + 1)?);
            }
            if tag == LIST {
                Value::List(items)
            } else {
                Value::Tuple(items)
            }
        }
        MAP => {
            let n = r.u32().map_err(t)? as usize;
            if n > r.remaining() / 2 {
                return Err(TermError::Truncated);
            }
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let k = decode_value(r, depth + 1)?;
                let v = decode_value(r, depth + 1)?;
                pairs.push((k, v));
            }
            Value::Map(pairs)
        }
        other => return Err(TermError::UnknownTag(other)),
    })
}

/// Writes a document incrementally (the NIF walks BEAM terms straight into it).
///
/// A document can also be produced in pieces, so large binaries need not be
/// copied into it: [`binary_header`](Self::binary_header) writes only a
/// binary's header, [`split`](Self::split) hands over what was written so far,
/// and the caller places the binary's own bytes between that piece and the
/// next.
#[derive(Debug)]
pub struct Writer {
    out: Vec<u8>,
    max_len: usize,
    /// Bytes handed over by `split` or promised by `binary_header`.
    elsewhere: usize,
}

impl Writer {
    /// A writer that refuses to grow past `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Self {
            out: vec![VERSION],
            max_len,
            elsewhere: 0,
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

    fn room(&self, extra: usize) -> Result<(), TermError> {
        if self.len() + extra > self.max_len {
            Err(TermError::TooLarge(self.max_len))
        } else {
            Ok(())
        }
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
        self.room(5 + v.len())?;
        let n = u32::try_from(v.len()).map_err(|_| TermError::TooLarge(self.max_len))?;
        self.out.push(BINARY);
        self.out.extend_from_slice(&n.to_be_bytes());
        self.out.extend_from_slice(v);
        Ok(())
    }

    /// The header of a binary of `len` bytes that the caller supplies: call
    /// [`split`](Self::split) next and put the bytes right after that piece.
    pub fn binary_header(&mut self, len: usize) -> Result<(), TermError> {
        self.room(5 + len)?;
        let n = u32::try_from(len).map_err(|_| TermError::TooLarge(self.max_len))?;
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
        self.room(5)?;
        let n = u32::try_from(n).map_err(|_| TermError::TooLarge(self.max_len))?;
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

    /// Writes a whole [`Value`].
    pub fn value(&mut self, v: &Value<'_>) -> Result<(), TermError> {
        match v {
            Value::Int(i) => self.int(*i),
            Value::Float(f) => self.float(*f),
            Value::Binary(b) => self.binary(b),
            Value::Atom(a) => self.atom(a),
            Value::List(items) => {
                self.list(items.len())?;
                items.iter().try_for_each(|i| self.value(i))
            }
            Value::Tuple(items) => {
                self.tuple(items.len())?;
                items.iter().try_for_each(|i| self.value(i))
            }
            Value::Map(pairs) => {
                self.map(pairs.len())?;
                pairs.iter().try_for_each(|(k, v)| {
                    self.value(k)?;
                    self.value(v)
                })
            }
        }
    }

    /// The encoded document (after a [`split`](Self::split): its last piece).
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Encodes one value (convenience over [`Writer`]).
pub fn encode(v: &Value<'_>, max_len: usize) -> Result<Vec<u8>, TermError> {
    let mut w = Writer::new(max_len);
    w.value(v)?;
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    #[test]
    fn plain_data_roundtrips() {
        let v = Value::Map(vec![
            (Value::Atom("ok"), Value::Int(-42)),
            (
                Value::Binary(b"k"),
                Value::List(vec![
                    Value::Float(1.5),
                    Value::Tuple(vec![Value::Binary(&[0, 255]), Value::Atom("nil")]),
                    Value::List(vec![]),
                ]),
            ),
            (Value::Int(i64::MIN), Value::Int(i64::MAX)),
        ]);
        let bytes = encode(&v, MAX).unwrap();
        assert_eq!(decode(&bytes, MAX).unwrap(), v);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = vec![VERSION];
        for _ in 0..MAX_DEPTH {
            bytes.extend_from_slice(&[LIST, 0, 0, 0, 1]);
        }
        bytes.extend_from_slice(&[LIST, 0, 0, 0, 0]);
        assert_eq!(decode(&bytes, MAX), Err(TermError::TooDeep));
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let bytes = [VERSION, LIST, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode(&bytes, MAX), Err(TermError::Truncated));
        let bytes = [VERSION, MAP, 0xff, 0xff, 0xff, 0xff, INT];
        assert_eq!(decode(&bytes, MAX), Err(TermError::Truncated));
        let bytes = [VERSION, BINARY, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(decode(&bytes, MAX), Err(TermError::Truncated));
    }

    #[test]
    fn writer_respects_the_size_limit() {
        let mut w = Writer::new(16);
        assert_eq!(w.binary(&[0; 32]), Err(TermError::TooLarge(16)));
        assert_eq!(decode(&[0; 32], 16), Err(TermError::TooLarge(16)));
    }

    #[test]
    fn a_document_written_in_pieces_equals_the_one_written_whole() {
        let big = vec![7u8; 10_000];
        let whole = encode(
            &Value::Tuple(vec![Value::Atom("put"), Value::Binary(&big), Value::Int(3)]),
            MAX,
        )
        .unwrap();
        let mut w = Writer::new(MAX);
        w.tuple(3).unwrap();
        w.atom("put").unwrap();
        w.binary_header(big.len()).unwrap();
        let mut pieces = w.split();
        pieces.extend_from_slice(&big);
        w.int(3).unwrap();
        assert_eq!(w.len(), whole.len());
        pieces.extend_from_slice(&w.finish());
        assert_eq!(pieces, whole);
    }

    #[test]
    fn supplied_binaries_count_toward_the_size_limit() {
        let mut w = Writer::new(100);
        w.binary_header(90).unwrap();
        let _ = w.split();
        assert_eq!(w.binary(&[0; 10]), Err(TermError::TooLarge(100)));
        assert_eq!(
            Writer::new(100).binary_header(100),
            Err(TermError::TooLarge(100))
        );
    }

    #[test]
    fn malformed_term_corpus_is_rejected() {
        let good = encode(
            &Value::Tuple(vec![
                Value::Atom("ok"),
                Value::Binary(b"abc"),
                Value::Float(2.0),
            ]),
            MAX,
        )
        .unwrap();
        let mut corpus: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
        corpus.push([good.clone(), vec![0]].concat());
        corpus.push(vec![2, INT, 0, 0, 0, 0, 0, 0, 0, 0]); // unknown version
        corpus.push(vec![VERSION, 99]); // unknown tag
        corpus.push(vec![VERSION, ATOM, 0]); // empty atom
        corpus.push(vec![VERSION, ATOM, 2, 0xc3, 0x28]); // invalid UTF-8
        let nan = f64::NAN.to_bits().to_be_bytes();
        corpus.push([vec![VERSION, FLOAT], nan.to_vec()].concat());
        let inf = f64::INFINITY.to_bits().to_be_bytes();
        corpus.push([vec![VERSION, FLOAT], inf.to_vec()].concat());
        for bytes in &corpus {
            assert!(decode(bytes, MAX).is_err(), "accepted {bytes:?}");
        }
        assert_eq!(
            Writer::new(MAX).float(f64::NAN),
            Err(TermError::NonFiniteFloat)
        );
    }
}
