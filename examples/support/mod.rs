//! What the load generators share: one tally per connection, the run that
//! keeps N connections busy until a deadline and merges their tallies, and
//! the exit on a bad argument. Each generator keeps only what it sends.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// What one connection saw: latencies of the accepted requests, counts,
/// and the first refusal (a status or a reply line), to tell overload from
/// misconfiguration.
pub struct Tally<E> {
    /// Latencies in microseconds.
    pub hist: hdrhistogram::Histogram<u64>,
    /// Requests accepted.
    pub ok: u64,
    /// Requests refused, and connections that failed.
    pub errors: u64,
    /// The first refusal seen.
    pub first_error: Option<E>,
}

impl<E> Tally<E> {
    /// Nothing seen yet; latencies from 1 µs to 60 s.
    pub fn new() -> Self {
        Tally {
            hist: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("histogram bounds"),
            ok: 0,
            errors: 0,
            first_error: None,
        }
    }
}

impl<E> Tally<E> {
    /// The figures both generators print, as JSON members: `ok`, `errors`,
    /// `rps` over `elapsed` seconds, and the `p50_ms`, `p99_ms` and `max_ms`
    /// latencies.
    pub fn figures(&self, elapsed: f64) -> String {
        let ms = |micros: u64| micros as f64 / 1000.0;
        format!(
            "\"ok\":{},\"errors\":{},\"rps\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}",
            self.ok,
            self.errors,
            self.ok as f64 / elapsed,
            ms(self.hist.value_at_quantile(0.50)),
            ms(self.hist.value_at_quantile(0.99)),
            ms(self.hist.max()),
        )
    }
}

/// The options of a run, or the program's exit with status 2 and the reason.
pub fn options_or_exit<T>(program: &str, options: Result<T, String>) -> T {
    options.unwrap_or_else(|e| {
        eprintln!("{program}: {e}");
        std::process::exit(2)
    })
}

/// Runs `connections` workers until `seconds` have passed, each handed the
/// shared request counter, the run's id (for ids unique to it) and the
/// deadline; returns their merged tally and the seconds the run took.
pub async fn run<E, W, F>(connections: usize, seconds: u64, worker: W) -> (Tally<E>, f64)
where
    E: Send + 'static,
    W: Fn(Arc<AtomicU64>, Arc<String>, Instant) -> F,
    F: Future<Output = Tally<E>> + Send + 'static,
{
    let run = Arc::new(format!("{}", std::process::id()));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(worker(counter.clone(), run.clone(), deadline)))
        .collect();
    let mut total = Tally::new();
    for task in tasks {
        if let Ok(tally) = task.await {
            let _ = total.hist.add(&tally.hist);
            total.ok += tally.ok;
            total.errors += tally.errors;
            total.first_error = total.first_error.or(tally.first_error);
        }
    }
    (total, started.elapsed().as_secs_f64())
}
