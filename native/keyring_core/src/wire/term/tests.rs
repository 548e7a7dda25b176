use super::*;

const MAX: usize = 1 << 20;
const LIMITS: Limits = Limits::new(MAX);

fn header(tag: u8, n: u32) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&n.to_be_bytes());
    out
}

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
    let bytes = encode(&v, LIMITS).unwrap();
    assert_eq!(decode(&bytes, LIMITS).unwrap(), v);
}

#[test]
fn deep_nesting_is_refused() {
    let mut bytes = vec![VERSION];
    for _ in 0..MAX_DEPTH {
        bytes.extend_from_slice(&header(LIST, 1));
    }
    bytes.extend_from_slice(&header(LIST, 0));
    assert_eq!(decode(&bytes, LIMITS), Err(TermError::TooDeep));
    let deep = (0..MAX_DEPTH).fold(Value::List(vec![]), |v, _| Value::List(vec![v]));
    assert_eq!(encode(&deep, LIMITS), Err(TermError::TooDeep));
}

#[test]
fn huge_counts_are_refused_at_their_header() {
    let bytes = [&[VERSION][..], &header(LIST, u32::MAX)].concat();
    assert!(matches!(
        decode(&bytes, LIMITS),
        Err(TermError::ClaimExceedsInput { room: 0, .. })
    ));
    let bytes = [&[VERSION][..], &header(MAP, u32::MAX), &[INT]].concat();
    assert!(matches!(
        decode(&bytes, LIMITS),
        Err(TermError::ClaimExceedsInput { .. })
    ));
    let bytes = [VERSION, BINARY, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(decode(&bytes, LIMITS), Err(TermError::Truncated));
}

/// The attack of issue 8 item 7: every level claims as many elements as the
/// bytes left could hold, so a decoder that reserves per claim multiplies the
/// input by the nesting depth. Here the first claim fits, and the second,
/// added to what the first still owes, cannot.
#[test]
fn nested_claims_share_one_budget_of_input_bytes() {
    let size = 1 << 16;
    let mut bytes = vec![VERSION];
    while bytes.len() < size {
        let room = (size - bytes.len() - 5) / MIN_VALUE_LEN;
        bytes.extend_from_slice(&header(LIST, room as u32));
    }
    bytes.truncate(size);
    match decode(&bytes, LIMITS) {
        Err(TermError::ClaimExceedsInput { claimed, room }) => assert!(claimed > room),
        other => panic!("expected a refused claim, got {other:?}"),
    }
    // A parent owing one more element leaves no room for a child's claim.
    let mut bytes = [&[VERSION][..], &header(LIST, 2), &header(LIST, 1)].concat();
    bytes.extend_from_slice(&[ATOM, 1, b'a']);
    assert_eq!(
        decode(&bytes, LIMITS),
        Err(TermError::ClaimExceedsInput {
            claimed: 2,
            room: 1
        })
    );
    bytes.extend_from_slice(&[ATOM, 1, b'b']);
    assert!(decode(&bytes, LIMITS).is_ok());
}

#[test]
fn the_value_budget_counts_every_value() {
    // [a, {b, c}, %{d => 1}]: 1 + 1 + 3 + 3 = 8 values.
    let v = Value::List(vec![
        Value::Atom("a"),
        Value::Tuple(vec![Value::Atom("b"), Value::Atom("c")]),
        Value::Map(vec![(Value::Atom("d"), Value::Int(1))]),
    ]);
    let bytes = encode(&v, LIMITS).unwrap();
    let limits = |max_values| Limits {
        max_values,
        ..LIMITS
    };
    assert_eq!(decode(&bytes, limits(8)).unwrap(), v);
    assert_eq!(decode(&bytes, limits(7)), Err(TermError::TooManyValues(7)));
    assert_eq!(encode(&v, limits(8)).unwrap(), bytes);
    assert_eq!(encode(&v, limits(7)), Err(TermError::TooManyValues(7)));
    // A claim beyond the budget is refused at its header.
    let list = Value::List(vec![Value::Int(0); 100]);
    let bytes = encode(&list, LIMITS).unwrap();
    assert_eq!(
        decode(&bytes, limits(50)),
        Err(TermError::TooManyValues(50))
    );
}

#[test]
fn a_document_makes_at_most_a_third_of_its_length_in_values() {
    let atoms = Value::List(vec![Value::Atom("a"); 1000]);
    let bytes = encode(&atoms, LIMITS).unwrap();
    assert_eq!(bytes.len(), 1 + 5 + 3 * 1000);
    assert!(decode(&bytes, LIMITS).is_ok());
    // Claim one more than is there.
    let mut lying = bytes.clone();
    lying[2..6].copy_from_slice(&1001u32.to_be_bytes());
    assert!(matches!(
        decode(&lying, LIMITS),
        Err(TermError::ClaimExceedsInput { .. })
    ));
}

#[test]
fn writer_respects_the_size_limit() {
    let mut w = Writer::new(16);
    assert_eq!(w.binary(&[0; 32]), Err(TermError::TooLarge(16)));
    assert_eq!(
        decode(&[0; 32], Limits::new(16)),
        Err(TermError::TooLarge(16))
    );
}

#[test]
fn a_document_written_in_pieces_equals_the_one_written_whole() {
    let big = vec![7u8; 10_000];
    let whole = encode(
        &Value::Tuple(vec![Value::Atom("put"), Value::Binary(&big), Value::Int(3)]),
        LIMITS,
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
    assert_eq!(w.values(), 4);
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
        LIMITS,
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
        assert!(decode(bytes, LIMITS).is_err(), "accepted {bytes:?}");
    }
    assert_eq!(
        Writer::new(MAX).float(f64::NAN),
        Err(TermError::NonFiniteFloat)
    );
}

#[test]
fn a_decoded_value_is_small() {
    // The memory bound in the module docs assumes 32 bytes per value.
    assert_eq!(std::mem::size_of::<Value<'_>>(), 32);
}
