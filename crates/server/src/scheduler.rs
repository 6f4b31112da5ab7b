//! The scheduler: a timer queue of interval slots.
//!
//! Each interval fires at `start + k·period`. The queue holds the next slot of every
//! interval in a min-heap, so the server sleeps until the earliest slot instead of polling
//! the database. A slot found later than the maximum lateness is *skipped*, and the next
//! slot is still computed — the original system stopped scheduling for good when it did not.
//!
//! Next-run times are handed to the caller to persist *before* the slot is fired, so a
//! restart never fires a slot twice (at most once: a crash between persisting and
//! dispatching loses that one slot, which is what the lateness rule would do anyway).
//!
//! The queue knows nothing about checks, hosts or alerting: it turns time into
//! `(schedule, interval, slot)` events for whoever consumes them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use prophasis_model::{Interval, IntervalId, Millis, ScheduleId};

/// One interval slot that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub schedule_id: ScheduleId,
    pub interval_id: IntervalId,
    /// When the slot was meant to fire.
    pub at: Millis,
}

/// What became of the due slots in one [`SlotQueue::pop_due`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Slots to run now.
    pub fire: Vec<Slot>,
    /// Slots found later than the maximum lateness; not run.
    pub skipped: Vec<Slot>,
    /// New next-run time of every interval that moved: persist these before running `fire`.
    pub next_runs: Vec<(IntervalId, Millis)>,
}

#[derive(Debug, Clone)]
struct Entry {
    schedule_id: ScheduleId,
    interval: Interval,
    next: Millis,
}

/// Min-heap of the next slot of every interval.
#[derive(Debug, Default)]
pub struct SlotQueue {
    entries: HashMap<IntervalId, Entry>,
    /// `(next, interval)`; stale heap items (interval removed or moved) are skipped on pop.
    heap: BinaryHeap<Reverse<(Millis, IntervalId)>>,
}

impl SlotQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds or replaces an interval. `persisted_next` is the next run saved before a
    /// restart; without it (a new interval) the first slot at or after `now` is used. A
    /// changed start or period recomputes the next slot.
    pub fn upsert(
        &mut self,
        schedule_id: ScheduleId,
        interval: Interval,
        persisted_next: Option<Millis>,
        now: Millis,
    ) {
        let next = match (self.entries.get(&interval.id), persisted_next) {
            (Some(old), _) if old.interval == interval => old.next,
            (None, Some(p)) if is_slot_of(&interval, p) => p,
            _ => interval.next_slot_at_or_after(now),
        };
        self.heap.push(Reverse((next, interval.id)));
        self.entries.insert(
            interval.id,
            Entry {
                schedule_id,
                interval,
                next,
            },
        );
    }

    /// Removes an interval (its schedule was deleted or edited).
    pub fn remove(&mut self, interval_id: IntervalId) {
        self.entries.remove(&interval_id);
    }

    /// Interval ids currently scheduled for a schedule.
    pub fn intervals_of(&self, schedule_id: ScheduleId) -> Vec<IntervalId> {
        let mut ids: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| e.schedule_id == schedule_id)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// When the earliest slot is due, if any interval exists.
    pub fn next_wakeup(&mut self) -> Option<Millis> {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            match self.entries.get(&id) {
                Some(e) if e.next == at => return Some(at),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Takes every slot due at `now`: fires those at most `max_lateness` late, skips the
    /// rest, and advances each interval past `now - max_lateness` so a long pause (or a
    /// restart after downtime) resumes at the next slot that can still be on time.
    pub fn pop_due(&mut self, now: Millis, max_lateness: Millis) -> Due {
        let mut due = Due::default();
        while let Some(at) = self.next_wakeup() {
            if at > now {
                break;
            }
            let Reverse((_, id)) = self.heap.pop().expect("peeked");
            let entry = self.entries.get_mut(&id).expect("live entry");
            let slot = Slot {
                schedule_id: entry.schedule_id,
                interval_id: id,
                at,
            };
            if now - at > max_lateness {
                due.skipped.push(slot);
            } else {
                due.fire.push(slot);
            }
            let period = entry.interval.period_seconds.max(1) * 1000;
            let next = (at + period).max(entry.interval.next_slot_at_or_after(now - max_lateness));
            // Slots between `at` and `next` that were also too late are skipped silently:
            // one skipped entry per interval per wake-up is enough to report the gap.
            entry.next = next;
            self.heap.push(Reverse((next, id)));
            due.next_runs.push((id, next));
        }
        due
    }
}

fn is_slot_of(interval: &Interval, t: Millis) -> bool {
    let period = interval.period_seconds.max(1) * 1000;
    t >= interval.start && (t - interval.start) % period == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Millis = 1000;

    fn iv(id: IntervalId, start: Millis, period_seconds: i64) -> Interval {
        Interval {
            id,
            start,
            period_seconds,
        }
    }

    fn fired(d: &Due) -> Vec<(IntervalId, Millis)> {
        d.fire.iter().map(|s| (s.interval_id, s.at)).collect()
    }

    #[test]
    fn fires_each_slot_once_in_order() {
        let mut q = SlotQueue::new();
        q.upsert(1, iv(10, 0, 30), None, 0);
        q.upsert(1, iv(11, 5 * S, 60), None, 0);
        assert_eq!(q.next_wakeup(), Some(0));
        let d = q.pop_due(0, 10 * S);
        assert_eq!(fired(&d), vec![(10, 0)]);
        assert_eq!(d.next_runs, vec![(10, 30 * S)]);
        assert_eq!(q.next_wakeup(), Some(5 * S));
        assert!(
            q.pop_due(4 * S, 10 * S).fire.is_empty(),
            "nothing due before the slot"
        );
        let d = q.pop_due(31 * S, 30 * S);
        assert_eq!(fired(&d), vec![(11, 5 * S), (10, 30 * S)]);
        let d = q.pop_due(31 * S, 30 * S);
        assert!(d.fire.is_empty(), "a slot never fires twice");
    }

    #[test]
    fn late_slot_is_skipped_and_the_next_one_still_computed() {
        let mut q = SlotQueue::new();
        q.upsert(1, iv(1, 0, 60), None, 0);
        q.pop_due(0, 5 * S);
        // Wake up 20 s after the 60 s slot: too late by the 5 s rule.
        let d = q.pop_due(80 * S, 5 * S);
        assert!(d.fire.is_empty());
        assert_eq!(
            d.skipped,
            vec![Slot {
                schedule_id: 1,
                interval_id: 1,
                at: 60 * S
            }]
        );
        assert_eq!(d.next_runs, vec![(1, 120 * S)]);
        let d = q.pop_due(121 * S, 5 * S);
        assert_eq!(
            fired(&d),
            vec![(1, 120 * S)],
            "scheduling goes on after a skip"
        );
    }

    #[test]
    fn long_pause_resumes_at_the_next_slot_that_can_be_on_time() {
        let mut q = SlotQueue::new();
        q.upsert(1, iv(1, 0, 10), None, 0);
        q.pop_due(0, 3 * S);
        // Paused for 10 minutes: 60 slots missed; one skip reported, then the queue resumes.
        let d = q.pop_due(600 * S + 2 * S, 3 * S);
        assert_eq!(d.skipped.len(), 1);
        // 600 s is within 3 s of now: it can still be on time, so it fires in the same call.
        assert_eq!(fired(&d), vec![(1, 600 * S)]);
        assert_eq!(d.next_runs, vec![(1, 600 * S), (1, 610 * S)]);
    }

    #[test]
    fn restart_resumes_from_persisted_next_run_without_firing_twice() {
        let mut q = SlotQueue::new();
        q.upsert(1, iv(1, 0, 30), None, 0);
        let d = q.pop_due(0, 5 * S);
        let persisted = d.next_runs[0].1;
        // A new process, 31 s later, with the persisted next run.
        let mut q2 = SlotQueue::new();
        q2.upsert(1, iv(1, 0, 30), Some(persisted), 31 * S);
        let d = q2.pop_due(31 * S, 5 * S);
        assert_eq!(
            fired(&d),
            vec![(1, 30 * S)],
            "the slot due during the restart is not lost"
        );
        // A persisted value that is not a slot of the interval (its period changed) is ignored.
        let mut q3 = SlotQueue::new();
        q3.upsert(1, iv(1, 0, 30), Some(7 * S), 31 * S);
        assert_eq!(q3.next_wakeup(), Some(60 * S));
    }

    #[test]
    fn editing_and_removing_intervals() {
        let mut q = SlotQueue::new();
        q.upsert(1, iv(1, 0, 30), None, 0);
        q.upsert(1, iv(2, 0, 30), None, 0);
        assert_eq!(q.intervals_of(1), vec![1, 2]);
        q.remove(1);
        q.upsert(1, iv(2, 0, 45), None, 10 * S);
        assert_eq!(q.len(), 1);
        assert_eq!(
            q.next_wakeup(),
            Some(45 * S),
            "a changed period recomputes the next slot"
        );
        q.remove(2);
        assert_eq!(q.next_wakeup(), None);
        assert!(q.pop_due(1000 * S, S).fire.is_empty());
    }

    #[test]
    fn many_intervals_only_due_ones_pop() {
        let mut q = SlotQueue::new();
        for id in 0..100_000 {
            q.upsert(1, iv(id, id * 10, 3600), None, 0);
        }
        let d = q.pop_due(999, 60 * S);
        assert_eq!(d.fire.len(), 100, "slots 0, 10, …, 990 ms");
        assert_eq!(q.next_wakeup(), Some(1000));
    }
}
