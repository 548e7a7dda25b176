//! Partial blobs: assembled from verified ranges of several providers,
//! resumed after restarts and `kill -9`, refusing anything unverified.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use keyring_core::verified::{outboard, DecodeError, Encoder, GroupRanges, GROUP_SIZE};
use keyring_store::{PartialOpen, PartialWriter, StoreError, WriteOp, WriteOutcome};
use proptest::prelude::*;
use support::{blob, pin, Node};

fn writer(node: &Node, cid: [u8; 32], size: u64) -> PartialWriter {
    match node.store.partial(cid, size, true).unwrap() {
        PartialOpen::Writer(w) => w,
        PartialOpen::Complete => panic!("blob unexpectedly complete"),
    }
}

/// The verified stream of `ranges` of `data`, served by a provider store.
fn served(provider: &Node, cid: &[u8; 32], ranges: &GroupRanges) -> Vec<u8> {
    let open = provider.blobs().open_blob(cid, false).unwrap().unwrap();
    let mut out = Vec::new();
    open.write_verified(ranges, &mut out).unwrap();
    out
}

#[test]
fn a_blob_assembled_from_two_providers_completes_and_reads_like_any_other() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b, me) = (
        Node::open(dirs[0].path()),
        Node::open(dirs[1].path()),
        Node::open(dirs[2].path()),
    );
    let data = blob(5 * 1024 * 1024 + 777, 1);
    let cid = a.put(&data);
    b.put(&data);
    let mut w = writer(&me, cid, data.len() as u64);
    let groups = w.tree().groups();
    assert!(
        !me.blobs().has(&cid).unwrap(),
        "a partial blob is invisible"
    );
    let first = GroupRanges::from(0..groups / 3);
    let rest = GroupRanges::from(groups / 3..groups);
    assert_eq!(
        w.write_stream(first.clone(), &served(&a, &cid, &first))
            .unwrap(),
        groups / 3
    );
    w.save().unwrap();
    assert_eq!(w.missing(), rest);
    // The download moves to provider B for what is missing.
    assert_eq!(
        w.write_stream(rest.clone(), &served(&b, &cid, &rest))
            .unwrap(),
        groups - groups / 3
    );
    assert_eq!(w.complete().unwrap(), cid);
    assert_eq!(me.blobs().get(&cid, true).unwrap().unwrap(), data);
    assert_eq!(me.blobs().verify(&cid).unwrap(), Some(true));
    assert!(me.blobs().partial(&cid).unwrap().is_none());
    let stats = me.blobs().stats().unwrap();
    assert_eq!((stats.blobs, stats.partials), (1, 0));
    // And it serves others in turn.
    let again = served(&me, &cid, &GroupRanges::from(3..4));
    assert_eq!(again, served(&a, &cid, &GroupRanges::from(3..4)));
}

#[test]
fn a_resumed_download_asks_only_for_what_is_missing_and_unsaved_groups_are_not_claimed() {
    let provider_dir = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let provider = Node::open(provider_dir.path());
    let data = blob(40 * GROUP_SIZE as usize + 5, 2);
    let cid = provider.put(&data);
    {
        let me = Node::open(dir.path());
        let mut w = writer(&me, cid, data.len() as u64);
        let saved = GroupRanges::from(0..10).union(&GroupRanges::from(30..35));
        w.write_stream(saved.clone(), &served(&provider, &cid, &saved))
            .unwrap();
        w.save().unwrap();
        let unsaved = GroupRanges::from(12..14);
        w.write_stream(unsaved.clone(), &served(&provider, &cid, &unsaved))
            .unwrap();
        // Dropped without saving: the store closes, the process "dies".
    }
    let me = Node::open(dir.path());
    let info = me.blobs().partial(&cid).unwrap().unwrap();
    assert_eq!(
        info.have,
        GroupRanges::from(0..10).union(&GroupRanges::from(30..35))
    );
    assert_eq!(
        info.missing,
        GroupRanges::from(10..30).union(&GroupRanges::from(35..41))
    );
    let mut w = writer(&me, cid, data.len() as u64);
    assert_eq!(w.missing(), info.missing);
    let missing = w.missing();
    let n = w
        .write_stream(missing.clone(), &served(&provider, &cid, &missing))
        .unwrap();
    assert_eq!(n, 26, "only the missing groups were sent");
    w.complete().unwrap();
    assert_eq!(me.blobs().get(&cid, true).unwrap().unwrap(), data);
}

#[test]
fn a_lying_provider_is_caught_within_one_group_and_nothing_unverified_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let me = Node::open(dir.path());
    let data = blob(10 * GROUP_SIZE as usize, 3);
    let (cid, ob) = outboard(&data);
    let all = GroupRanges::all();
    let mut stream = Encoder::new(cid, data.len() as u64, &all)
        .encode_all(&data, &ob)
        .unwrap();
    // Corrupt one byte inside group 6's bytes (the stream has the size, the
    // 9 pairs, then the groups in order, pairs interleaved: find it by
    // content).
    let g6 = &data[6 * 16384..7 * 16384];
    let at = stream.windows(64).position(|w| w == &g6[..64]).unwrap() + 100;
    stream[at] ^= 1;
    let mut w = writer(&me, cid, data.len() as u64);
    assert_eq!(
        w.write_stream(all, &stream),
        Err(StoreError::BadStream(DecodeError::GroupMismatch {
            group: 6
        }))
    );
    assert_eq!(w.have(), GroupRanges::from(0..6));
    w.save().unwrap();
    drop(w);
    // The bad group's bytes never reached the file.
    let file = dir.path().join("partial");
    let data_file = std::fs::read_dir(&file)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "data"))
        .unwrap();
    let on_disk = std::fs::read(data_file).unwrap();
    assert_eq!(&on_disk[..6 * 16384], &data[..6 * 16384]);
    assert!(on_disk[6 * 16384..].iter().all(|&b| b == 0));

    // A stream of another blob is refused at its first item.
    let other = blob(10 * GROUP_SIZE as usize, 4);
    let (other_cid, other_ob) = outboard(&other);
    let wrong = Encoder::new(other_cid, other.len() as u64, &GroupRanges::from(6..10))
        .encode_all(&other, &other_ob)
        .unwrap();
    let mut w = writer(&me, cid, data.len() as u64);
    assert!(matches!(
        w.write_stream(GroupRanges::from(6..10), &wrong),
        Err(StoreError::BadStream(DecodeError::ParentMismatch { .. }))
    ));
    assert_eq!(w.have(), GroupRanges::from(0..6));
    // A stream claiming another size is refused before anything is read.
    let mut lying = Encoder::new(cid, data.len() as u64, &GroupRanges::from(6..10))
        .encode_all(&data, &ob)
        .unwrap();
    lying[..8].copy_from_slice(&(data.len() as u64 * 2).to_le_bytes());
    assert!(matches!(
        w.write_stream(GroupRanges::from(6..10), &lying),
        Err(StoreError::SizeMismatch { .. })
    ));
    assert!(matches!(
        w.complete(),
        Err(StoreError::Incomplete { missing: 4 })
    ));
}

#[test]
fn a_proven_size_wins_over_an_unproven_claim() {
    let dir = tempfile::tempdir().unwrap();
    let me = Node::open(dir.path());
    let data = blob(5 * GROUP_SIZE as usize, 5);
    let cid = keyring_core::hash::digest(&data);
    // A provider claimed a wrong size; nothing proven yet.
    let PartialOpen::Writer(w) = me.store.partial(cid, 99_999, false).unwrap() else {
        panic!()
    };
    drop(w);
    // An unproven different claim cannot replace it...
    assert!(matches!(
        me.store.partial(cid, 70_000, false),
        Err(StoreError::SizeMismatch {
            known: 99_999,
            claimed: 70_000
        })
    ));
    // ...a proven size starts over,
    let w = writer(&me, cid, data.len() as u64);
    assert_eq!(w.tree().size(), data.len() as u64);
    drop(w);
    // and a proven size is final.
    assert!(matches!(
        me.store.partial(cid, 99_999, true),
        Err(StoreError::SizeMismatch { .. })
    ));
    assert_eq!(me.blobs().stats().unwrap().partials, 1);
}

#[test]
fn small_and_complete_blobs_are_not_partial() {
    let dir = tempfile::tempdir().unwrap();
    let me = Node::open(dir.path());
    assert_eq!(
        me.store.partial([1; 32], 16_384, true).err(),
        Some(StoreError::TooSmallForPartial(16_384))
    );
    let data = blob(100_000, 6);
    let cid = me.put(&data);
    assert!(matches!(
        me.store.partial(cid, 100_000, true).unwrap(),
        PartialOpen::Complete
    ));
    // A partial blob whose blob arrives by other means just goes away on completion.
    let data = blob(100_000, 7);
    let (cid, ob) = outboard(&data);
    let mut w = writer(&me, cid, data.len() as u64);
    let stream = Encoder::new(cid, data.len() as u64, &GroupRanges::all())
        .encode_all(&data, &ob)
        .unwrap();
    w.write_stream(GroupRanges::all(), &stream).unwrap();
    me.put(&data);
    assert_eq!(w.complete().unwrap(), cid);
    assert_eq!(me.blobs().stats().unwrap().partials, 0);
    assert_eq!(me.blobs().verify(&cid).unwrap(), Some(true));
}

#[test]
fn an_unprotected_partial_blob_is_collected_once_its_writer_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let me = Node::open(dir.path());
    let data = blob(100_000, 8);
    let (cid, ob) = outboard(&data);
    let (kept_data, kept_cid) = (
        blob(100_000, 9),
        keyring_core::hash::digest(&blob(100_000, 9)),
    );
    let _ = kept_data;
    me.tag(pin("wanted"), kept_cid);
    let mut w = writer(&me, cid, data.len() as u64);
    let mut kept = writer(&me, kept_cid, 100_000);
    let ranges = GroupRanges::from(0..2);
    w.write_stream(
        ranges.clone(),
        &Encoder::new(cid, 100_000, &ranges)
            .encode_all(&data, &ob)
            .unwrap(),
    )
    .unwrap();
    w.save().unwrap();
    kept.save().unwrap();
    let gc = |me: &Node| {
        let mut cursor = keyring_store::GcCursor::Start;
        while cursor != keyring_store::GcCursor::Done {
            let WriteOutcome::Gc(p) = me
                .write(WriteOp::GcStep {
                    cursor,
                    budget: 100,
                })
                .unwrap()
            else {
                panic!()
            };
            cursor = p.next;
        }
    };
    gc(&me);
    assert!(
        me.blobs().partial(&cid).unwrap().is_some(),
        "held by its writer"
    );
    drop(w);
    drop(kept);
    gc(&me);
    assert!(me.blobs().partial(&cid).unwrap().is_none());
    assert!(
        me.blobs().partial(&kept_cid).unwrap().is_some(),
        "a pinned partial blob stays"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("partial"))
        .unwrap()
        .collect();
    assert_eq!(left.len(), 2, "only the pinned partial's two files remain");
}

const CHILD: &str = "KEYRING_PARTIAL_CHILD_DIR";
const SIZE: usize = 8 << 20;
const STEP: u64 = 8;

/// The writing half of the kill -9 test: runs in a child process (this
/// test binary, re-executed), writes groups in order and prints how many
/// are saved after each save, until it is killed.
fn child(dir: &str) {
    let me = Node::open(std::path::Path::new(dir));
    let data = blob(SIZE, 77);
    let (cid, ob) = outboard(&data);
    let mut w = writer(&me, cid, SIZE as u64);
    let mut next = w.have().iter().next().map_or(0, |r| r.end);
    loop {
        let ranges = GroupRanges::from(next..next + STEP);
        let stream = Encoder::new(cid, SIZE as u64, &ranges)
            .encode_all(&data, &ob)
            .unwrap();
        w.write_stream(ranges, &stream).unwrap();
        w.save().unwrap();
        next += STEP;
        println!("SAVED {next}");
        if next >= w.tree().groups() {
            next = 0;
        }
    }
}

#[test]
fn a_partial_blob_survives_kill_9_with_every_saved_group() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = blob(SIZE, 77);
    let cid = keyring_core::hash::digest(&data);
    let mut saved = 0;
    for round in 0..3 {
        let mut proc = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_partial_blob_survives_kill_9_with_every_saved_group",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < 5 + round * 3 {
            let line = lines.next().expect("child wrote nothing").unwrap();
            if let Some(n) = line.strip_prefix("SAVED ") {
                saved = n.parse::<u64>().unwrap().max(saved);
                seen += 1;
            }
        }
        proc.kill().unwrap(); // SIGKILL
        proc.wait().unwrap();
        // Lines the child printed before it died were saved too.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("SAVED ") {
                saved = n.parse::<u64>().unwrap().max(saved);
            }
        }
        let me = Node::open(dir.path());
        let info = me.blobs().partial(&cid).unwrap().unwrap();
        assert!(
            info.have.covers(0, saved),
            "round {round}: saved 0..{saved}, store has {:?}",
            info.have
        );
        // Every group the store claims is the real data on disk.
        let file = std::fs::read_dir(dir.path().join("partial"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "data"))
            .unwrap();
        let on_disk = std::fs::read(file).unwrap();
        for r in info.have.iter() {
            let (s, e) = (r.start as usize * 16384, (r.end as usize * 16384).min(SIZE));
            assert_eq!(&on_disk[s..e], &data[s..e], "round {round}");
        }
    }
    // Finish the download in this process: only the missing groups.
    let me = Node::open(dir.path());
    let mut w = writer(&me, cid, SIZE as u64);
    let missing = w.missing();
    let (_, ob) = outboard(&data);
    let stream = Encoder::new(cid, SIZE as u64, &missing)
        .encode_all(&data, &ob)
        .unwrap();
    let sent = w.write_stream(missing, &stream).unwrap();
    assert!(sent <= 512 - saved, "resumed with {sent} groups");
    w.complete().unwrap();
    assert_eq!(me.blobs().verify(&cid).unwrap(), Some(true));
}

#[derive(Debug, Clone)]
enum Action {
    Write(u64, u64),
    Save,
    Reopen,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0u64..24, 1u64..6).prop_map(|(s, n)| Action::Write(s, n)),
        1 => Just(Action::Save),
        1 => Just(Action::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// The groups a partial blob holds after any sequence of writes, saves
    /// and restarts are exactly the groups written before the last save
    /// (the model), and "missing" is their complement.
    #[test]
    fn partial_bookkeeping_matches_a_model(actions in prop::collection::vec(action(), 1..20)) {
        let dir = tempfile::tempdir().unwrap();
        let data = blob(24 * GROUP_SIZE as usize - 100, 11);
        let (cid, ob) = outboard(&data);
        let mut node = Some(Node::open(dir.path()));
        let mut w = Some(writer(node.as_ref().unwrap(), cid, data.len() as u64));
        let (mut saved, mut written) = (GroupRanges::empty(), GroupRanges::empty());
        for a in actions {
            match a {
                Action::Write(s, n) => {
                    let ranges = GroupRanges::from(s..(s + n).min(24));
                    let stream = Encoder::new(cid, data.len() as u64, &ranges).encode_all(&data, &ob).unwrap();
                    w.as_mut().unwrap().write_stream(ranges.clone(), &stream).unwrap();
                    written = written.union(&ranges);
                }
                Action::Save => {
                    w.as_mut().unwrap().save().unwrap();
                    saved = saved.union(&written);
                }
                Action::Reopen => {
                    drop(w.take());
                    drop(node.take());
                    node = Some(Node::open(dir.path()));
                    w = Some(writer(node.as_ref().unwrap(), cid, data.len() as u64));
                    written = saved.clone();
                }
            }
            let w = w.as_ref().unwrap();
            prop_assert_eq!(w.have(), written.clone());
            prop_assert_eq!(w.missing(), GroupRanges::from(0..24).difference(&written));
            let info = node.as_ref().unwrap().blobs().partial(&cid).unwrap().unwrap();
            prop_assert_eq!(info.have, saved.clone());
        }
    }
}
