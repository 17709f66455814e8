//! What the loaded models and running generations really hold, against the memory budget.
//!
//! A loaded model is charged when it is loaded and uncharged when its last user drops it: a
//! model unloaded (or evicted) while a run still uses it stays counted until that run ends. A
//! generation's key/value cache is metered as it grows, step by step, and uncharged when the run
//! ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use ts_rs::TS;

/// The bytes held, by kind.
#[derive(Debug, Default)]
pub struct Ledger {
    models: AtomicU64,
    caches: Mutex<HashMap<u64, u64>>,
    next_meter: AtomicU64,
}

/// Memory held now, as the system panel shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct MemoryUse {
    /// Weights of loaded models, those still in use after an unload included.
    #[ts(type = "number")]
    pub models: u64,
    /// Key/value caches of the generations running now.
    #[ts(type = "number")]
    pub caches: u64,
    /// Beyond `models + caches` > budget, idle models are unloaded, least recently used first.
    #[ts(type = "number")]
    pub budget: u64,
}

impl Ledger {
    fn caches(&self) -> MutexGuard<'_, HashMap<u64, u64>> {
        self.caches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Weights of loaded models held now.
    pub fn models(&self) -> u64 {
        self.models.load(Ordering::Relaxed)
    }

    /// Everything held.
    pub fn total(&self) -> u64 {
        self.models.load(Ordering::Relaxed) + self.caches().values().sum::<u64>()
    }

    pub fn usage(&self, budget: u64) -> MemoryUse {
        MemoryUse {
            models: self.models.load(Ordering::Relaxed),
            caches: self.caches().values().sum(),
            budget,
        }
    }

    /// Charges a loaded model's `bytes` until the returned charge is dropped.
    pub fn charge_model(self: &Arc<Self>, bytes: u64) -> Charge {
        self.models.fetch_add(bytes, Ordering::Relaxed);
        Charge {
            ledger: Arc::clone(self),
            bytes,
        }
    }

    /// A meter for one run's caches, at zero until it is told otherwise.
    pub fn meter(self: &Arc<Self>) -> Meter {
        let id = self.next_meter.fetch_add(1, Ordering::Relaxed);
        self.caches().insert(id, 0);
        Meter {
            ledger: Arc::clone(self),
            id,
        }
    }
}

/// A loaded model's share of the ledger; uncharged when dropped (with the model).
#[derive(Debug)]
pub struct Charge {
    ledger: Arc<Ledger>,
    bytes: u64,
}

impl Charge {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.ledger.models.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// One run's key/value caches in the ledger; uncharged when dropped (the run ended).
#[derive(Debug)]
pub struct Meter {
    ledger: Arc<Ledger>,
    id: u64,
}

impl Meter {
    /// The run's caches hold `bytes` now.
    pub fn set(&self, bytes: u64) {
        self.ledger.caches().insert(self.id, bytes);
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.ledger.caches().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_and_caches_are_counted_while_held() {
        let ledger = Arc::new(Ledger::default());
        let model = ledger.charge_model(100);
        let meter = ledger.meter();
        meter.set(30);
        meter.set(45);
        assert_eq!(ledger.total(), 145);
        assert_eq!(
            ledger.usage(1000),
            MemoryUse {
                models: 100,
                caches: 45,
                budget: 1000
            }
        );
        drop(meter);
        assert_eq!(ledger.total(), 100);
        drop(model);
        assert_eq!(ledger.total(), 0);
    }
}
