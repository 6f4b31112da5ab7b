//! Per-host FIFO queues with at most one job in flight per host and a global bound.
//!
//! Agents run plugins one at a time by design (two checks on one host could disturb each
//! other and the measurements), so the invariant "one check in flight per host" is kept
//! here, structurally: a host's next job starts only when its previous job has finished.
//! The global bound caps how many hosts are worked on at once.
//!
//! The queue does not know what a job does: the caller's [`Runner`] talks to the agent and
//! forwards the outcome.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;

use prophasis_model::HostId;
use tokio::sync::{mpsc, Semaphore};

/// Runs one job; called with at most one job per host at a time.
pub trait Runner<J>: Send + Sync + 'static {
    fn run(&self, job: J) -> impl Future<Output = ()> + Send;
}

/// Handle to submit jobs; cheap to clone.
#[derive(Clone)]
pub struct DispatchQueue<J> {
    tx: mpsc::UnboundedSender<Msg<J>>,
}

enum Msg<J> {
    Submit(HostId, J),
    Done(HostId),
    Depth(tokio::sync::oneshot::Sender<HashMap<HostId, usize>>),
}

#[derive(Default)]
struct HostQueue<J> {
    jobs: VecDeque<J>,
    busy: bool,
}

impl<J: Send + 'static> DispatchQueue<J> {
    /// Starts the coordinator task. `max_in_flight` bounds concurrent jobs over all hosts.
    pub fn start<R: Runner<J>>(runner: R, max_in_flight: usize) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg<J>>();
        let runner = Arc::new(runner);
        let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
        let done_tx = tx.clone();
        tokio::spawn(async move {
            let mut hosts: HashMap<HostId, HostQueue<J>> = HashMap::new();
            while let Some(msg) = rx.recv().await {
                let host = match msg {
                    Msg::Submit(host, job) => {
                        hosts
                            .entry(host)
                            .or_insert_with(|| HostQueue {
                                jobs: VecDeque::new(),
                                busy: false,
                            })
                            .jobs
                            .push_back(job);
                        host
                    }
                    Msg::Done(host) => {
                        if let Some(q) = hosts.get_mut(&host) {
                            q.busy = false;
                        }
                        host
                    }
                    Msg::Depth(reply) => {
                        let depth = hosts
                            .iter()
                            .map(|(&h, q)| (h, q.jobs.len() + usize::from(q.busy)))
                            .collect();
                        let _ = reply.send(depth);
                        continue;
                    }
                };
                let Some(q) = hosts.get_mut(&host) else {
                    continue;
                };
                if q.busy {
                    continue;
                }
                let Some(job) = q.jobs.pop_front() else {
                    hosts.remove(&host);
                    continue;
                };
                q.busy = true;
                let runner = runner.clone();
                let permits = permits.clone();
                let done_tx = done_tx.clone();
                tokio::spawn(async move {
                    // The semaphore is never closed, so acquiring cannot fail.
                    let _permit = permits.acquire_owned().await.expect("dispatch semaphore");
                    runner.run(job).await;
                    let _ = done_tx.send(Msg::Done(host));
                });
            }
        });
        DispatchQueue { tx }
    }

    /// Queues a job behind the host's other jobs.
    pub fn submit(&self, host: HostId, job: J) {
        let _ = self.tx.send(Msg::Submit(host, job));
    }

    /// Jobs queued or running, per host with any.
    pub async fn depth(&self) -> HashMap<HostId, usize> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let _ = self.tx.send(Msg::Depth(reply));
        rx.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    struct Probe {
        in_flight_per_host: Mutex<HashMap<HostId, usize>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        overlaps: AtomicUsize,
        order: Mutex<Vec<(HostId, u32)>>,
        finished: AtomicUsize,
    }

    struct ProbeRunner(Arc<Probe>);

    impl Runner<(HostId, u32)> for ProbeRunner {
        async fn run(&self, (host, n): (HostId, u32)) {
            let p = &self.0;
            {
                let mut m = p.in_flight_per_host.lock().unwrap();
                let c = m.entry(host).or_default();
                *c += 1;
                if *c > 1 {
                    p.overlaps.fetch_add(1, Ordering::SeqCst);
                }
            }
            let now = p.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            p.max_in_flight.fetch_max(now, Ordering::SeqCst);
            p.order.lock().unwrap().push((host, n));
            tokio::time::sleep(Duration::from_millis(2)).await;
            p.in_flight.fetch_sub(1, Ordering::SeqCst);
            *p.in_flight_per_host.lock().unwrap().get_mut(&host).unwrap() -= 1;
            p.finished.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_job_per_host_fifo_and_global_bound() {
        let probe = Arc::new(Probe::default());
        let q = DispatchQueue::start(ProbeRunner(probe.clone()), 3);
        for n in 0..10u32 {
            for host in 1..=8 {
                q.submit(host, (host, n));
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while probe.finished.load(Ordering::SeqCst) < 80 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "jobs did not finish"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            probe.overlaps.load(Ordering::SeqCst),
            0,
            "two jobs overlapped on one host"
        );
        assert!(
            probe.max_in_flight.load(Ordering::SeqCst) <= 3,
            "global bound exceeded"
        );
        assert!(
            probe.max_in_flight.load(Ordering::SeqCst) >= 2,
            "hosts should run in parallel"
        );
        let order = probe.order.lock().unwrap().clone();
        for host in 1..=8 {
            let ns: Vec<u32> = order
                .iter()
                .filter(|(h, _)| *h == host)
                .map(|(_, n)| *n)
                .collect();
            assert_eq!(ns, (0..10).collect::<Vec<_>>(), "host {host} not FIFO");
        }
        assert!(q.depth().await.is_empty(), "queues drained");
    }
}
