//! One compute run at a time per device. Two tabs, or a comparison, never share the cores: each
//! run waits its turn in a first-come queue (and may be cancelled while it waits), so the speed
//! a run reports is its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::cancel::CancelToken;
use crate::error::{Result, WickError};

/// How often a waiting run looks at its cancel flag.
const POLL: Duration = Duration::from_millis(20);

/// The queues of every device, by device name (`cpu`, `cuda:0`).
#[derive(Debug, Default)]
pub struct DeviceQueue {
    lanes: Mutex<HashMap<String, Lane>>,
    turn_ended: Condvar,
}

#[derive(Debug, Default)]
struct Lane {
    /// The ticket of the run computing now.
    running: Option<u64>,
    /// Tickets waiting, first come first.
    waiting: VecDeque<u64>,
    next_ticket: u64,
}

/// A run's turn on a device; the next run in line starts when it is dropped.
#[derive(Debug)]
pub struct Turn {
    queue: Arc<DeviceQueue>,
    device: String,
    ticket: u64,
}

impl DeviceQueue {
    fn lanes(&self) -> MutexGuard<'_, HashMap<String, Lane>> {
        // A panic while holding the lock leaves only queue bookkeeping behind; keep using it.
        self.lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until it is this run's turn on `device`. `waiting` is told how many runs are
    /// ahead whenever that changes (not at all when the device is free). Returns
    /// `Err(Cancelled)` as soon as `cancel` is raised, leaving the queue as if it never came.
    pub fn acquire(
        self: &Arc<Self>,
        device: &str,
        cancel: &CancelToken,
        mut waiting: impl FnMut(usize),
    ) -> Result<Turn> {
        let mut lanes = self.lanes();
        let lane = lanes.entry(device.to_string()).or_default();
        let ticket = lane.next_ticket;
        lane.next_ticket += 1;
        lane.waiting.push_back(ticket);
        let mut last_ahead = None;
        loop {
            let lane = lanes.entry(device.to_string()).or_default();
            if cancel.is_cancelled() {
                lane.waiting.retain(|&t| t != ticket);
                drop(lanes);
                self.turn_ended.notify_all();
                return Err(WickError::Cancelled);
            }
            let position = lane.waiting.iter().position(|&t| t == ticket).unwrap_or(0);
            if lane.running.is_none() && position == 0 {
                lane.waiting.pop_front();
                lane.running = Some(ticket);
                return Ok(Turn {
                    queue: Arc::clone(self),
                    device: device.to_string(),
                    ticket,
                });
            }
            let ahead = position + usize::from(lane.running.is_some());
            if last_ahead != Some(ahead) {
                last_ahead = Some(ahead);
                waiting(ahead);
            }
            lanes = self
                .turn_ended
                .wait_timeout(lanes, POLL)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Runs computing or waiting on `device`.
    pub fn busy(&self, device: &str) -> usize {
        self.lanes()
            .get(device)
            .map_or(0, |l| l.waiting.len() + usize::from(l.running.is_some()))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut lanes = self.queue.lanes();
        if let Some(lane) = lanes.get_mut(&self.device) {
            if lane.running == Some(self.ticket) {
                lane.running = None;
            }
        }
        drop(lanes);
        self.queue.turn_ended.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    #[test]
    fn runs_take_turns_in_order_and_a_waiting_run_can_be_cancelled() {
        let queue = Arc::new(DeviceQueue::default());
        let first = queue
            .acquire("cpu", &CancelToken::new(), |_| {
                panic!("the device was free")
            })
            .unwrap();
        // Another device is not held up.
        let other = queue
            .acquire("cuda:0", &CancelToken::new(), |_| {
                panic!("a different device")
            })
            .unwrap();
        drop(other);

        let (tx, rx) = mpsc::channel();
        let second = {
            let (queue, tx) = (Arc::clone(&queue), tx.clone());
            std::thread::spawn(move || {
                let turn = queue
                    .acquire("cpu", &CancelToken::new(), |ahead| {
                        tx.send(("second waits", ahead)).unwrap()
                    })
                    .unwrap();
                tx.send(("second runs", 0)).unwrap();
                drop(turn);
            })
        };
        assert_eq!(rx.recv().unwrap(), ("second waits", 1));
        // A third run queues behind the second, then gives up.
        let cancel = CancelToken::new();
        let third = {
            let (queue, tx, cancel) = (Arc::clone(&queue), tx.clone(), cancel.clone());
            std::thread::spawn(move || {
                queue
                    .acquire("cpu", &cancel, |ahead| {
                        tx.send(("third waits", ahead)).unwrap()
                    })
                    .map(drop)
            })
        };
        assert_eq!(rx.recv().unwrap(), ("third waits", 2));
        let asked = Instant::now();
        cancel.cancel();
        let err = third.join().unwrap().unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Cancelled);
        assert!(asked.elapsed() < Duration::from_millis(200));
        assert_eq!(queue.busy("cpu"), 2, "the first runs, the second waits");
        drop(first);
        assert_eq!(rx.recv().unwrap(), ("second runs", 0));
        second.join().unwrap();
        assert_eq!(queue.busy("cpu"), 0);
    }
}
