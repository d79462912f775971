//! Runs the gate's independent runs `--jobs` at a time on as many threads, each run on a
//! single-threaded runtime of its own: within a run the engine and the mock org take
//! turns exactly as with `--jobs 1` (every run has its own virtual clock, org and store),
//! so the report does not depend on how many run at once, only the wall time does.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Runs at once when `--jobs` is not given: the cores this process may use (1 if unknown).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `run(0)`, …, `run(count - 1)` on up to `jobs` threads and returns the results in
/// index order.
pub fn run_all<T, F, Fut>(count: usize, jobs: usize, run: F) -> std::io::Result<Vec<T>>
where
    T: Send,
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = T>,
{
    let threads = jobs.clamp(1, count.max(1));
    let runtimes = (0..threads)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<T>>> = (0..count).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for rt in runtimes {
            let (next, slots, run) = (&next, &slots, &run);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break;
                }
                let out = rt.block_on(run(i));
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
            });
        }
    });
    Ok(slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                // Every index below `count` is taken by exactly one thread, and a thread
                // that panicked took the scope (and this call) down with it.
                .expect("every run ran")
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_whatever_the_threads() {
        for jobs in [1, 3, 16] {
            let out = run_all(10, jobs, |i| async move {
                tokio::task::yield_now().await;
                i * i
            })
            .unwrap();
            assert_eq!(out, (0..10).map(|i| i * i).collect::<Vec<_>>());
        }
        assert!(run_all(0, 4, |i| async move { i }).unwrap().is_empty());
    }

    #[test]
    fn runs_overlap_in_time() {
        // Two runs that each wait for the other: only possible when both run at once.
        let barrier = std::sync::Barrier::new(2);
        let out = run_all(2, 2, |i| {
            let barrier = &barrier;
            async move {
                barrier.wait();
                i
            }
        })
        .unwrap();
        assert_eq!(out, vec![0, 1]);
    }
}
