use super::*;

fn id(b: u8) -> Id {
    [b; 32]
}

fn items(list: &[(u64, u8)]) -> Items {
    Items::new(
        list.iter()
            .map(|&(timestamp, b)| Item {
                timestamp,
                id: id(b),
            })
            .collect(),
    )
    .unwrap()
}

/// Runs a whole reconciliation; returns (have, need, round trips, bytes up, bytes down).
fn run(client: &Items, server: &Items, config: Config) -> (Vec<Id>, Vec<Id>, usize, usize, usize) {
    let mut initiator = Initiator::new(client, config).unwrap();
    let responder = Responder::new(server, config).unwrap();
    let (mut have, mut need) = (vec![], vec![]);
    let mut msg = initiator.initiate().unwrap();
    let (mut rounds, mut up, mut down) = (0, 0, 0);
    loop {
        rounds += 1;
        up += msg.len();
        let answer = responder.respond(&msg).unwrap();
        down += answer.len();
        match initiator.reconcile(&answer, &mut have, &mut need).unwrap() {
            Some(next) => msg = next,
            None => break,
        }
        assert!(rounds < 1000, "no progress");
    }
    have.sort_unstable();
    need.sort_unstable();
    (have, need, rounds, up, down)
}

#[test]
fn the_reference_example_finds_what_each_side_lacks() {
    let client = items(&[(0, 0xaa), (1, 0xbb)]);
    let server = items(&[(0, 0xaa), (2, 0xcc), (3, 0x11), (5, 0x22), (10, 0x33)]);
    let (have, need, rounds, _, _) = run(&client, &server, Config::default());
    assert_eq!(have, vec![id(0xbb)]);
    assert_eq!(need, vec![id(0x11), id(0x22), id(0x33), id(0xcc)]);
    assert_eq!(rounds, 1);
}

#[test]
fn equal_sets_agree_in_one_round_trip() {
    let list: Vec<(u64, u8)> = (0..200u64).map(|i| (i, i as u8)).collect();
    let (a, b) = (items(&list), items(&list));
    let (have, need, rounds, up, down) = run(&a, &b, Config::default());
    assert!(have.is_empty() && need.is_empty());
    assert_eq!(rounds, 1);
    assert!(up < 400 && down == 1, "{up} {down}");
}

#[test]
fn a_small_frame_limit_takes_more_rounds_but_finds_every_difference() {
    let mk = |skip: u64| {
        Items::new(
            (0..5_000u64)
                .filter(|i| i % 7 != skip)
                .map(|i| Item {
                    timestamp: i,
                    id: *blake3::hash(&i.to_be_bytes()).as_bytes(),
                })
                .collect(),
        )
        .unwrap()
    };
    let (a, b) = (mk(0), mk(1));
    let config = Config {
        frame_limit: MIN_FRAME_LIMIT,
        ..Config::default()
    };
    let (have, need, rounds, _, _) = run(&a, &b, config);
    assert_eq!(have.len(), 5_000 / 7 + 1);
    assert_eq!(need.len(), 5_000 / 7 + 1);
    assert!(rounds > 3, "{rounds}");
    let (have2, need2, rounds2, _, _) = run(&a, &b, Config::default());
    assert_eq!((have2, need2), (have, need));
    assert!(rounds2 <= 3);
}

#[test]
fn a_frame_limit_under_the_protocol_minimum_is_refused() {
    let a = items(&[]);
    let config = Config {
        frame_limit: 4095,
        ..Config::default()
    };
    assert_eq!(
        Responder::new(&a, config).unwrap_err(),
        ReconcileError::FrameLimitTooSmall
    );
}

#[test]
fn another_protocol_version_is_answered_with_ours() {
    let a = items(&[(1, 1)]);
    let r = Responder::new(&a, Config::default()).unwrap();
    assert_eq!(r.respond(&[0x62]).unwrap(), vec![PROTOCOL_VERSION]);
    let mut i = Initiator::new(&a, Config::default()).unwrap();
    i.initiate().unwrap();
    assert_eq!(
        i.reconcile(&[0x62], &mut vec![], &mut vec![]),
        Err(ReconcileError::UnsupportedVersion(0x62))
    );
    assert_eq!(i.initiate(), Err(ReconcileError::AlreadyInitiated));
}

#[test]
fn malformed_messages_are_refused_with_the_rule_they_break() {
    let a = items(&[(1, 1), (2, 2)]);
    let r = Responder::new(
        &a,
        Config {
            max_message: 64,
            ..Config::default()
        },
    )
    .unwrap();
    let cases: &[(&[u8], ReconcileError)] = &[
        (&[], ReconcileError::Malformed("empty message")),
        (
            &[0x10],
            ReconcileError::Malformed("not a negentropy message"),
        ),
        (
            &[0x61, 0x80, 0x01],
            ReconcileError::Malformed("varint with a leading zero digit"),
        ),
        (
            &[0x61, 0x01, 0x21],
            ReconcileError::Malformed("id prefix longer than 32 bytes"),
        ),
        (
            &[0x61, 0x01, 0x00, 0x03],
            ReconcileError::Malformed("unknown mode"),
        ),
        (
            &[0x61, 0x01, 0x00, 0x01, 0xaa],
            ReconcileError::Malformed("truncated"),
        ),
        (
            &[0x61, 0x01, 0x00, 0x02, 0x02],
            ReconcileError::Malformed("id list longer than the message"),
        ),
        (
            &[0x61, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00],
            ReconcileError::Malformed("a range after the infinity bound"),
        ),
        (
            &[0x61, 0x05, 0x01, 0x09, 0x00, 0x01, 0x01, 0x01, 0x00],
            ReconcileError::Malformed("ranges out of order"),
        ),
        (
            &[
                0x61, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
            ReconcileError::Malformed("varint overflows 64 bits"),
        ),
        (&[0x61; 65], ReconcileError::TooLarge { len: 65, max: 64 }),
    ];
    for (bytes, err) in cases {
        assert_eq!(r.respond(bytes).as_ref(), Err(err), "{bytes:x?}");
    }
    // A timestamp delta that overflows u64.
    let mut overflow = vec![0x61, 0x06, 0x00, 0x00];
    varint::put(&mut overflow, u64::MAX);
    overflow.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(
        r.respond(&overflow),
        Err(ReconcileError::Malformed("timestamp overflows"))
    );
}

#[test]
fn an_empty_message_body_means_everything_is_settled() {
    let a = items(&[(1, 1)]);
    let r = Responder::new(&a, Config::default()).unwrap();
    assert_eq!(
        r.respond(&[PROTOCOL_VERSION]).unwrap(),
        vec![PROTOCOL_VERSION]
    );
}
