//! A tokio runtime of its own for the simulator, with a meter of the CPU time its threads
//! used.
//!
//! A benchmark that starts the simulator in the same process as the server needs to
//! tell the two costs apart: the server's CPU per check is the number that matters, and
//! the simulator's load would otherwise be counted in it. Each worker thread registers
//! itself when it starts, and the meter reads every live thread's CPU clock
//! (`pthread_getcpuclockid`, nanosecond resolution) plus what exited threads used.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct CpuMeter {
    live: Mutex<Vec<libc::pthread_t>>,
    exited_ns: AtomicU64,
}

fn clock_ns(clock: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// A multi-thread runtime whose threads' CPU time can be read. Dropping it shuts the
/// runtime down in the background, which is allowed from async code too.
pub struct SimRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    meter: Arc<CpuMeter>,
}

impl SimRuntime {
    /// `worker_threads` workers named `prophasis-sim` (blocking threads, used only for
    /// reading pushed packages, are metered too).
    pub fn new(worker_threads: usize) -> io::Result<SimRuntime> {
        let meter = Arc::new(CpuMeter::default());
        let (on_start, on_stop) = (meter.clone(), meter.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("prophasis-sim")
            .enable_all()
            .on_thread_start(move || {
                // SAFETY: pthread_self has no preconditions.
                let me = unsafe { libc::pthread_self() };
                on_start.live.lock().expect("meter lock").push(me);
            })
            .on_thread_stop(move || {
                // SAFETY: pthread_self has no preconditions.
                let me = unsafe { libc::pthread_self() };
                let mut live = on_stop.live.lock().expect("meter lock");
                if let Some(ns) = clock_ns(libc::CLOCK_THREAD_CPUTIME_ID) {
                    on_stop.exited_ns.fetch_add(ns, Relaxed);
                }
                // SAFETY: comparing pthread_t values has no preconditions.
                live.retain(|t| unsafe { libc::pthread_equal(*t, me) } == 0);
            })
            .build()?;
        Ok(SimRuntime {
            runtime: Some(runtime),
            meter,
        })
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.as_ref().expect("runtime present").handle()
    }

    /// Runs a future to completion on this runtime, from synchronous code.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.as_ref().expect("runtime present").block_on(f)
    }

    /// CPU time (user + system) used so far by this runtime's threads.
    pub fn cpu_time(&self) -> Duration {
        // Held while reading, so no registered thread can finish exiting meanwhile: its
        // stop hook waits for this lock before the thread goes away.
        let live = self.meter.live.lock().expect("meter lock");
        let mut ns = self.meter.exited_ns.load(Relaxed);
        for t in live.iter() {
            let mut clock: libc::clockid_t = 0;
            // SAFETY: `t` is a live thread (see above) and `clock` a valid out-pointer.
            if unsafe { libc::pthread_getcpuclockid(*t, &mut clock) } == 0 {
                ns += clock_ns(clock).unwrap_or(0);
            }
        }
        Duration::from_nanos(ns)
    }
}

impl Drop for SimRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
