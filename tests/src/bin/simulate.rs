//! Runs the simulation over many seeds and prints how many held, the time
//! taken, and each failing seed with what broke:
//!
//! ```sh
//! cargo run --release -p casebook-tests --bin simulate              # 10,000 seeds
//! cargo run --release -p casebook-tests --bin simulate -- --seeds 500 --from 7
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use casebook_tests::sim;

const STEPS: usize = 80;

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let seeds = arg("--seeds").unwrap_or(10_000);
    let from = arg("--from").unwrap_or(0xcafe_0000);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicU64::new(0);
    let passed = AtomicU64::new(0);
    let faults = Mutex::new((0u64, 0u64, 0u64, 0u64));
    let failed = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= seeds {
                        break;
                    }
                    match sim::run(from + i, STEPS) {
                        Ok(o) => {
                            let n = passed.fetch_add(1, Ordering::Relaxed) + 1;
                            let mut f = faults.lock().unwrap();
                            f.0 += o.lost_requests;
                            f.1 += o.lost_answers;
                            f.2 += o.repeated;
                            f.3 += o.power_cuts;
                            if n.is_multiple_of(500) {
                                eprintln!(
                                    "{n} seeds passed ({:.0} s)",
                                    start.elapsed().as_secs_f64()
                                );
                            }
                        }
                        Err(f) => {
                            eprintln!("{f}");
                            failed.lock().unwrap().push(f.seed);
                        }
                    }
                }
            });
        }
    });
    let took = start.elapsed().as_secs_f64();
    let failed = failed.into_inner().unwrap();
    let (lr, la, rp, pc) = faults.into_inner().unwrap();
    println!("| measure | result |");
    println!("|---|---|");
    println!("| seeds run ({STEPS} steps each, first {from}) | {seeds} |");
    println!("| passed | {} |", passed.load(Ordering::Relaxed));
    println!("| failed | {} {:?} |", failed.len(), failed);
    println!(
        "| time | {took:.0} s ({:.1} seeds/s on {workers} threads) |",
        seeds as f64 / took
    );
    println!(
        "| faults injected | {lr} requests lost, {la} answers lost, {rp} requests repeated, {pc} power cuts |"
    );
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
