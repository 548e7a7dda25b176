//! Baselines for the ingest part of `bench/sync.exs`: what one large blob's
//! ingest costs with and without its outboard, what computing the outboard
//! later costs (the latency a lazy design adds to the first serve), and our
//! outboard builder against bao-tree's.
//!
//! `ingest_baseline <source file> <scratch dir> <rounds>` prints one line per
//! figure: `<name> <MB/s> <ms>` (medians of the rounds).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

use bao_tree::io::outboard::PostOrderMemOutboard;
use bao_tree::BlockSize;
use keyring_core::verified::OutboardBuilder;
use keyring_store::BlobWriter;

const BUF: usize = 1 << 20;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Read → hash (plain BLAKE3, no outboard) → write, writeback started
/// behind, one fsync: the ingest pass without the outboard.
fn copy_without_outboard(src: &Path, dst: &Path) -> std::io::Result<[u8; 32]> {
    let mut input = File::open(src)?;
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dst)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; BUF];
    let (mut written, mut kicked) = (0u64, 0u64);
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        written += n as u64;
        if written - kicked >= 8 << 20 {
            // The same write-behind the store uses.
            // SAFETY: integer arguments only; `out` is open.
            unsafe {
                libc::sync_file_range(
                    std::os::fd::AsRawFd::as_raw_fd(&out),
                    kicked as i64,
                    (written - kicked) as i64,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            kicked = written;
        }
    }
    out.sync_data()?;
    Ok(*hasher.finalize().as_bytes())
}

fn outboard_of_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut input = File::open(path)?;
    let mut builder = OutboardBuilder::new();
    let mut buf = vec![0u8; BUF];
    let mut pairs = 0usize;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        builder.update(&buf[..n]);
        pairs += builder.take_pairs().len();
    }
    let (root, rest) = builder.finalize();
    std::hint::black_box(pairs + rest.len());
    Ok(root)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (src, scratch) = (Path::new(&args[1]), Path::new(&args[2]));
    let rounds: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(3);
    let size = std::fs::metadata(src).expect("source").len() as f64;
    std::fs::create_dir_all(scratch).expect("scratch dir");
    let mbps = |secs: f64| size / secs / 1e6;
    let mut figures: Vec<(&str, Vec<f64>)> = vec![
        ("ingest_without_outboard", vec![]),
        ("ingest_with_outboard", vec![]),
        ("outboard_later_from_file", vec![]),
    ];
    let dst = scratch.join("plain");
    for _ in 0..rounds {
        let t = Instant::now();
        copy_without_outboard(src, &dst).expect("copy");
        figures[0].1.push(t.elapsed().as_secs_f64());
        std::fs::remove_file(&dst).ok();

        let t = Instant::now();
        let mut buf = Vec::new();
        let staged = BlobWriter::import(scratch, src, &mut buf).expect("import");
        figures[1].1.push(t.elapsed().as_secs_f64());
        let cid = staged.cid();
        drop(staged);

        // The lazy design: the file is on disk (here: in the page cache, the
        // best case) and the outboard is computed when first asked for.
        let t = Instant::now();
        assert_eq!(outboard_of_file(src).expect("outboard"), cid);
        figures[2].1.push(t.elapsed().as_secs_f64());
    }
    for (name, secs) in figures {
        let s = median(secs);
        println!("{name} {:.0} {:.1}", mbps(s), s * 1e3);
    }

    // Outboard builders in memory, 64 MiB: ours vs bao-tree (same output).
    let data: Vec<u8> = (0..64usize << 20).map(|i| (i * 31 % 251) as u8).collect();
    let mut ours = vec![];
    let mut theirs = vec![];
    for _ in 0..rounds.max(3) {
        let t = Instant::now();
        let mut b = OutboardBuilder::new();
        b.update(&data);
        let (root, ob) = b.finalize();
        ours.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let bao = PostOrderMemOutboard::create(&data, BlockSize::from_chunk_log(4));
        theirs.push(t.elapsed().as_secs_f64());
        assert_eq!((root, &ob), (*bao.root.as_bytes(), &bao.data));
    }
    let mem = |s: f64| (64 << 20) as f64 / s / 1e6;
    let t = Instant::now();
    std::hint::black_box(blake3::hash(&data));
    let plain = t.elapsed().as_secs_f64();
    println!(
        "outboard_in_memory_ours {:.0} {:.1}",
        mem(median(ours.clone())),
        median(ours) * 1e3
    );
    println!(
        "outboard_in_memory_bao_tree {:.0} {:.1}",
        mem(median(theirs.clone())),
        median(theirs) * 1e3
    );
    println!("blake3_in_memory {:.0} {:.1}", mem(plain), plain * 1e3);
}
