//! keyring_net without the BEAM, for bench/mesh.exs: two meshes in this
//! process (one tokio worker each, like the NIF's; WORKERS=n to change), a
//! Rust echo handler, the same calls the Elixir benchmark makes. The gap
//! between this and plain
//! quinn is what keyring_net costs; the gap between this and the Elixir run
//! is what the BEAM side costs.
//!
//! Usage: mesh_baseline [rpc_count] [concurrency] [handshakes] [bulk_mib]
//! Prints `key=value` lines: rpc_per_s, rpc_concurrent_per_s,
//! rpc_concurrent_p50_us, rpc_concurrent_p99_us, handshakes_per_s, and with
//! bulk_mib > 0, bulk_mib_per_s and cpu_s_per_gib (1 MiB casts, 8 in
//! flight, as bench/mesh.exs sends them).

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use keyring_core::identity::KeyPair;
use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::Status;
use keyring_net::protocols::membership::{LogSink, LogUpdate, Membership};
use keyring_net::protocols::rpc::{Cast, Request, Rpc, RpcHandler};
use keyring_net::{Event, EventSink, Limits, Members, Mesh, MeshConfig, Protocols, Target};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEYRING: PublicKey = [42; 32];

struct Echo(
    OnceLock<Weak<Rpc>>,
    Mutex<Option<std::sync::mpsc::Sender<usize>>>,
);

impl RpcHandler for Echo {
    fn request(&self, r: Request) {
        if let Some(rpc) = self.0.get().and_then(Weak::upgrade) {
            rpc.respond(r.id, Status::Ok, r.body);
        }
    }
    fn cast(&self, c: Cast) {
        if let Some(tx) = self.1.lock().unwrap().as_ref() {
            let _ = tx.send(c.body.len());
        }
    }
}

struct Quiet;
impl EventSink for Quiet {
    fn deliver(&self, _: Event) {}
}
impl LogSink for Quiet {
    fn log_update(&self, _: LogUpdate) {}
}

fn node() -> (Mesh, Arc<Rpc>, Arc<Echo>) {
    let kp = KeyPair::generate().unwrap();
    let mut cfg = MeshConfig::new(*kp.seed());
    if let Some(w) = std::env::var("WORKERS").ok().and_then(|w| w.parse().ok()) {
        cfg.worker_threads = w;
    }
    let limits = Limits::default();
    let echo = Arc::new(Echo(OnceLock::new(), Mutex::new(None)));
    let rpc = Rpc::new(echo.clone(), &limits, cfg.max_payload);
    let _ = echo.0.set(Arc::downgrade(&rpc));
    let mut p = Protocols::new();
    p.add(rpc.clone()).unwrap();
    p.add(Membership::new(Arc::new(Quiet), &limits, cfg.max_payload))
        .unwrap();
    let mesh = Mesh::start(cfg, Arc::new(Members::default()), Arc::new(Quiet), p).unwrap();
    (mesh, rpc, echo)
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = *args.first().unwrap_or(&5000);
    let conc = *args.get(1).unwrap_or(&64);
    let handshakes = *args.get(2).unwrap_or(&200);
    let bulk_mib = *args.get(3).unwrap_or(&0);
    let ((a, a_rpc, _), (b, _b_rpc, b_echo)) = (node(), node());
    let keys = [(a.public_key(), 0), (b.public_key(), 0)];
    a.set_members(KEYRING, keys);
    b.set_members(KEYRING, keys);
    let to = Target {
        keyring: KEYRING,
        peer: b.public_key(),
        addr: Some(b.local_addr().unwrap()),
    };
    let opener = a.opener();
    let payload = Bytes::from(vec![7u8; 64]);
    let call = {
        let (rpc, opener, payload) = (a_rpc.clone(), opener.clone(), payload.clone());
        move || {
            let (rpc, opener, payload) = (rpc.clone(), opener.clone(), payload.clone());
            async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                rpc.call(&opener, to, "echo", vec![payload], deadline)
                    .await
                    .unwrap()
            }
        }
    };
    let rt = a.runtime().clone();
    rt.block_on(call());
    // A call started from outside the runtime as the NIF starts one.
    let start = {
        let (rpc, opener, payload) = (a_rpc.clone(), opener.clone(), payload.clone());
        move |tx: std::sync::mpsc::Sender<(Status, Bytes)>| {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            rpc.start_call(
                opener.clone(),
                to,
                "echo".into(),
                vec![payload.clone()],
                deadline,
                move |r| {
                    let _ = tx.send(r.unwrap());
                },
            );
        }
    };

    // Sequential calls, each started from outside the runtime as a NIF
    // starts them and awaited by a plain thread.
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    for _ in 0..n {
        let (tx, rx) = std::sync::mpsc::channel();
        start(tx);
        rx.recv().unwrap();
    }
    println!("rpc_per_s={:.1}", n as f64 / t.elapsed().as_secs_f64());
    println!("rpc_cpu_us={:.1}", (cpu_seconds() - cpu0) / n as f64 * 1e6);
    let cpu0 = cpu_seconds();

    // `conc` callers, each calling in a loop.
    let lat = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let t = Instant::now();
    let threads: Vec<_> = (0..conc)
        .map(|_| {
            let (start, lat) = (start.clone(), lat.clone());
            std::thread::spawn(move || {
                for _ in 0..n / conc {
                    let (tx, rx) = std::sync::mpsc::channel();
                    let t0 = Instant::now();
                    start(tx);
                    rx.recv().unwrap();
                    lat.lock().unwrap().push(t0.elapsed());
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let mut lat = lat.lock().unwrap().clone();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "rpc_concurrent_per_s={:.1}",
        (n / conc * conc) as f64 / secs
    );
    println!(
        "rpc_concurrent_cpu_us={:.1}",
        (cpu_seconds() - cpu0) / (n / conc * conc) as f64 * 1e6
    );
    println!("rpc_concurrent_p50_us={:.0}", pct(0.5).as_secs_f64() * 1e6);
    println!("rpc_concurrent_p99_us={:.0}", pct(0.99).as_secs_f64() * 1e6);

    if bulk_mib > 0 {
        let (tx, rx) = std::sync::mpsc::channel();
        *b_echo.1.lock().unwrap() = Some(tx);
        let msg = Bytes::from(vec![1u8; 1 << 20]);
        let cpu0 = cpu_seconds();
        let t = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(8));
        for _ in 0..bulk_mib {
            let permit = rt.block_on(sem.clone().acquire_owned()).unwrap();
            let (rpc, opener, msg) = (a_rpc.clone(), opener.clone(), msg.clone());
            rt.spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                rpc.cast(&opener, to, "sink", vec![msg], deadline)
                    .await
                    .unwrap();
                drop(permit);
            });
        }
        let mut got = 0;
        while got < bulk_mib << 20 {
            got += rx.recv().unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!("bulk_mib_per_s={:.1}", bulk_mib as f64 / secs);
        println!(
            "cpu_s_per_gib={:.2}",
            (cpu_seconds() - cpu0) / (bulk_mib as f64 / 1024.0)
        );
    }

    // Handshakes: drop the link, call again.
    let t = Instant::now();
    for _ in 0..handshakes {
        a.disconnect(&KEYRING, &b.public_key());
        rt.block_on(call());
    }
    println!(
        "handshakes_per_s={:.1}",
        handshakes as f64 / t.elapsed().as_secs_f64()
    );
}
