//! The downloader's fences: every lie is caught within one 16 KiB group,
//! nothing unverified is stored, the liar is dropped and the transfer goes
//! on from another provider; no provider left is `Stalled`, not a hang.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyring_core::hash::Digest;
use keyring_core::membership::PublicKey;
use keyring_core::verified::{GroupRanges, GROUP_SIZE};
use keyring_net::protocols::blobs::download::{
    download, BlobSink, DownloadError, Options, Progress, Provider,
};
use keyring_net::protocols::blobs::memory::{Behaviour, LocalProvider, MemoryStore};

const RING: PublicKey = [5; 32];

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + i / 251) as u8) ^ seed).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn opts() -> Options {
    Options {
        slice_groups: 16,
        stall: Duration::from_millis(400),
        ..Options::default()
    }
}

/// A source store holding `blobs`, shared into RING.
fn source(blobs: &[Vec<u8>]) -> (MemoryStore, Vec<Digest>) {
    let store = MemoryStore::new();
    let cids = blobs
        .iter()
        .map(|b| {
            let cid = store.insert(b.clone());
            store.share(RING, cid);
            cid
        })
        .collect();
    (store, cids)
}

fn provider(key: u8, store: &MemoryStore, b: Behaviour) -> Arc<LocalProvider> {
    LocalProvider::new([key; 32], RING, store.clone(), b)
}

type Reports = Arc<Mutex<Vec<Progress>>>;

fn fetch(
    cids: Vec<Digest>,
    providers: Vec<Arc<dyn Provider>>,
    sink: &MemoryStore,
    opts: Options,
) -> (Result<Progress, DownloadError>, Reports) {
    let reports: Reports = Arc::default();
    let r = reports.clone();
    let sink: Arc<dyn BlobSink> = Arc::new(sink.clone());
    let out = runtime().block_on(download(
        cids,
        providers,
        sink,
        opts,
        Box::new(move |p| r.lock().unwrap().push(p.clone())),
    ));
    if let Some(last) = reports.lock().unwrap().last() {
        eprintln!("errors: {:?}", last.errors);
    }
    (out, reports)
}

fn bytes_from(p: &Progress, key: u8) -> u64 {
    p.providers
        .iter()
        .find(|(k, _)| k == &[key; 32])
        .map_or(0, |(_, n)| *n)
}

#[test]
fn a_large_blob_arrives_whole_from_one_honest_provider() {
    let blob = data(3 << 20, 1);
    let (src, cids) = source(std::slice::from_ref(&blob));
    let sink = MemoryStore::new();
    let honest = provider(1, &src, Behaviour::Honest);
    let (out, reports) = fetch(cids.clone(), vec![honest], &sink, opts());
    let p = out.unwrap();
    assert_eq!(sink.get(&cids[0]).unwrap(), blob);
    assert_eq!((p.blobs_done, p.blobs_total), (1, 1));
    assert_eq!(p.bytes_done, blob.len() as u64);
    assert_eq!(p.bytes_total, blob.len() as u64);
    assert!(reports.lock().unwrap().last().unwrap().finished);
}

#[test]
fn many_small_blobs_come_in_one_round_trip() {
    let blobs: Vec<Vec<u8>> = (0..500).map(|i| data(4096, i as u8)).collect();
    let (src, cids) = source(&blobs);
    let sink = MemoryStore::new();
    let honest = provider(1, &src, Behaviour::Honest);
    let (out, _) = fetch(cids.clone(), vec![honest.clone()], &sink, opts());
    assert_eq!(out.unwrap().blobs_done, 500);
    for (cid, blob) in cids.iter().zip(&blobs) {
        assert_eq!(&sink.get(cid).unwrap(), blob);
    }
    // One answer: 500 x (status + proof header + 4 KiB + data header).
    assert_eq!(honest.bytes_sent(), 500 * (1 + 8 + 4096 + 8));
}

/// Runs `liar` first and an honest provider second on a 2 MiB blob: the
/// blob arrives whole, nothing the liar sent after its lie was stored, and
/// the liar is named in the errors.
fn liar_then_honest(liar: Behaviour) -> Progress {
    let blob = data(2 << 20, 9);
    let (src, cids) = source(std::slice::from_ref(&blob));
    let sink = MemoryStore::new();
    let bad = provider(66, &src, liar);
    // The honest provider is throttled a little so that the liar surely
    // gets slices (in memory, an unthrottled one could take them all first).
    let good = provider(1, &src, Behaviour::Throttled(8 << 20));
    let (out, _) = fetch(cids.clone(), vec![bad, good], &sink, opts());
    let p = out.unwrap();
    assert_eq!(sink.get(&cids[0]).unwrap(), blob, "the blob is exact");
    assert!(
        p.errors.iter().any(|(k, _)| k == &[66; 32]),
        "{:?}",
        p.errors
    );
    // Every group written was verified, each exactly once.
    assert!(sink.groups_written() <= 128, "{}", sink.groups_written());
    p
}

#[test]
fn wrong_bytes_are_caught_within_one_group_and_the_rest_comes_from_another() {
    // The first answer (the size proof) is honest; in every later one a
    // byte 20 KiB in is flipped: in the slice's first or second group.
    let p = liar_then_honest(Behaviour::After(1, Box::new(Behaviour::FlipByte(20_000))));
    // What the liar got credited: its honest first answer (the proof and
    // groups 0..64) and, on each of its two streams, at most the one group
    // before its lie; all verified.
    assert!(
        bytes_from(&p, 66) <= (65 + 2) * GROUP_SIZE,
        "{:?}",
        p.providers
    );
}

#[test]
fn a_lying_size_is_refused_and_the_honest_provider_serves() {
    let p = liar_then_honest(Behaviour::LyingSize(5 << 20));
    assert_eq!(bytes_from(&p, 66), 0);
}

#[test]
fn a_truncated_stream_is_dropped_and_its_ranges_move() {
    let p = liar_then_honest(Behaviour::After(1, Box::new(Behaviour::Truncate(40_000))));
    assert!(
        bytes_from(&p, 66) <= (65 + 2 * 3) * GROUP_SIZE,
        "{:?}",
        p.providers
    );
}

#[test]
fn a_stream_that_stops_is_given_up_after_the_stall_deadline() {
    let started = std::time::Instant::now();
    let p = liar_then_honest(Behaviour::After(1, Box::new(Behaviour::StopAfter(20_000))));
    assert!(p.errors.iter().any(|(_, why)| why.contains("stalled")));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn an_answer_with_another_blobs_bytes_is_refused_at_its_first_group() {
    let other = data(2 << 20, 77);
    let blob = data(2 << 20, 9);
    let (src, cids) = source(&[blob.clone(), other]);
    let sink = MemoryStore::new();
    let bad = provider(66, &src, Behaviour::OtherBlob(cids[1]));
    let good = provider(1, &src, Behaviour::Honest);
    let (out, _) = fetch(vec![cids[0]], vec![bad, good], &sink, opts());
    let p = out.unwrap();
    assert_eq!(sink.get(&cids[0]).unwrap(), blob);
    assert_eq!(bytes_from(&p, 66), 0);
}

#[test]
fn no_honest_provider_left_is_stalled_not_a_hang() {
    let blob = data(2 << 20, 3);
    let (src, cids) = source(&[blob]);
    let sink = MemoryStore::new();
    let a = provider(
        1,
        &src,
        Behaviour::After(1, Box::new(Behaviour::StopAfter(10))),
    );
    let b = provider(
        2,
        &src,
        Behaviour::After(1, Box::new(Behaviour::FlipByte(30))),
    );
    let started = std::time::Instant::now();
    let (out, reports) = fetch(cids.clone(), vec![a, b], &sink, opts());
    assert_eq!(out.unwrap_err(), DownloadError::Stalled);
    assert!(reports.lock().unwrap().last().unwrap().stalled);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing unverified is complete; the partial holds only verified groups
    // (the proof's last group, at least).
    assert!(sink.get(&cids[0]).is_none());
    assert!(sink.partial_have(&cids[0]).unwrap().contains(127));
}

#[test]
fn a_resumed_download_asks_only_for_the_missing_groups() {
    let blob = data(4 << 20, 4);
    let (src, cids) = source(std::slice::from_ref(&blob));
    let sink = MemoryStore::new();
    // First attempt: the only provider stops after ~1 MiB of its slices.
    // The first request (proof and groups 0..64) and one slice, then nothing.
    let flaky = provider(
        1,
        &src,
        Behaviour::After(2, Box::new(Behaviour::StopAfter(0))),
    );
    let first = Options {
        slice_groups: 4,
        ..opts()
    };
    let (out, _) = fetch(cids.clone(), vec![flaky], &sink, first);
    assert_eq!(out.unwrap_err(), DownloadError::Stalled);
    let have = sink.partial_have(&cids[0]).unwrap();
    let had = have.count_below(u64::MAX);
    assert!(had > 10 && had < 256, "{had}");
    let written_before = sink.groups_written();
    // Second attempt: only the missing groups are sent.
    let honest = provider(2, &src, Behaviour::Honest);
    let (out, _) = fetch(cids.clone(), vec![honest.clone()], &sink, opts());
    out.unwrap();
    assert_eq!(sink.get(&cids[0]).unwrap(), blob);
    assert_eq!(sink.groups_written() - written_before, 256 - had);
    let missing_bytes = (256 - had) * GROUP_SIZE;
    assert!(honest.bytes_sent() < missing_bytes + missing_bytes / 50 + 4096);
    let _ = GroupRanges::empty();
}

#[test]
fn three_providers_share_the_work_by_their_rate_and_a_slow_one_does_not_hold_the_tail() {
    let blob = data(8 << 20, 5);
    let (src, cids) = source(std::slice::from_ref(&blob));
    let sink = MemoryStore::new();
    let fast1 = provider(1, &src, Behaviour::Honest);
    let fast2 = provider(2, &src, Behaviour::Honest);
    let slow = provider(3, &src, Behaviour::Throttled(256 * 1024));
    let started = std::time::Instant::now();
    let (out, _) = fetch(
        cids.clone(),
        vec![slow, fast1, fast2],
        &sink,
        Options {
            stall: Duration::from_secs(10),
            ..opts()
        },
    );
    let p = out.unwrap();
    assert_eq!(sink.get(&cids[0]).unwrap(), blob);
    // At 256 KiB/s alone the blob would take 32 s.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(bytes_from(&p, 3) < bytes_from(&p, 1) + bytes_from(&p, 2));
    assert!(
        bytes_from(&p, 1) > 0 && bytes_from(&p, 2) > 0,
        "{:?}",
        p.providers
    );
}

#[test]
fn a_blob_nobody_shares_is_not_found() {
    let (src, _) = source(&[data(100, 1)]);
    let sink = MemoryStore::new();
    let unshared = src.insert(data(50_000, 2));
    let honest = provider(1, &src, Behaviour::Honest);
    let (out, _) = fetch(vec![unshared], vec![honest], &sink, opts());
    assert_eq!(out.unwrap_err(), DownloadError::NotFound(vec![unshared]));
    assert!(sink.partial_size(&unshared).is_none());
}
