//! The restricted term codec for RPC arguments and replies.
//!
//! Only plain data crosses the wire: integers (signed 64-bit), finite floats,
//! binaries, atoms (by name; the BEAM side maps them to EXISTING atoms only and
//! refuses unknown names), lists (proper), tuples and maps. No pids, refs, funs,
//! ports, improper lists or compression.
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
//!
//! Decoding is a pure function of the bytes and their [`Limits`]: the
//! document's size, its depth and the number of values it holds. A count
//! read from the input is never trusted: every element a container claims,
//! together with every element its enclosing containers still owe, must fit
//! in the bytes left ([`MIN_VALUE_LEN`] each), so the values a document can
//! make are bounded by its length, whatever its counts say, and memory is
//! reserved only for elements whose bytes are there (see [`decode`]).

mod decode;
mod write;

use thiserror::Error;

pub use decode::decode;
pub use write::{encode, Writer};

/// Codec version byte.
pub const VERSION: u8 = 1;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// Most values (every integer, float, binary, atom, list, tuple and map, map
/// keys and values included) in one document, unless [`Limits`] say fewer.
pub const MAX_VALUES: usize = 1 << 21;
/// The fewest bytes any value takes on the wire (a one-letter atom).
pub const MIN_VALUE_LEN: usize = 3;

const INT: u8 = 1;
const FLOAT: u8 = 2;
const BINARY: u8 = 3;
const ATOM: u8 = 4;
const LIST: u8 = 5;
const TUPLE: u8 = 6;
const MAP: u8 = 7;

/// What one document may hold. Decoding and encoding refuse a document that
/// exceeds any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting (a scalar at the top is depth 0).
    pub max_depth: usize,
    /// Most values in the document.
    pub max_values: usize,
}

impl Limits {
    /// Documents of at most `max_bytes` bytes, [`MAX_DEPTH`] deep, with at
    /// most [`MAX_VALUES`] values.
    pub const fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            max_depth: MAX_DEPTH,
            max_values: MAX_VALUES,
        }
    }
}

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
    /// Nested deeper than the limit.
    #[error("term nested too deeply")]
    TooDeep,
    /// The document is larger than allowed.
    #[error("term larger than {0} bytes")]
    TooLarge(usize),
    /// The document holds more values than allowed.
    #[error("term holds more than {0} values")]
    TooManyValues(usize),
    /// A container claims more elements than the rest of the input can hold.
    #[error("a container claims {claimed} elements but the input has room for at most {room}")]
    ClaimExceedsInput {
        /// Elements claimed (with those the enclosing containers still owe).
        claimed: u64,
        /// Elements the remaining bytes could hold at best.
        room: u64,
    },
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

#[cfg(test)]
mod tests;
