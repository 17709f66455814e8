//! A least-recently-used map of values loaded at most once at a time: a request for a key that is
//! loading waits for that load instead of starting its own, and a failed load is not remembered
//! (the user may fix the folder and retry). Eviction never drops a value still in use elsewhere
//! (dropping it would free nothing, and the next request would load a second copy beside it) or
//! one that is loading.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;

/// One key's value once loaded; its mutex is held while it loads.
type Slot<V> = Arc<Mutex<Option<Arc<V>>>>;

#[derive(Debug)]
pub struct Lru<K, V> {
    entries: HashMap<K, Entry<V>>,
    clock: u64,
    capacity: usize,
    next_id: u64,
}

#[derive(Debug)]
struct Entry<V> {
    /// Stable for the entry's life: how a front end names it (to unload it, say).
    id: u64,
    /// The clock at the last use.
    used: u64,
    slot: Slot<V>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while loading leaves an empty slot or a map behind; both stay usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<V> Entry<V> {
    /// Loaded and not used by anyone else: safe to drop.
    fn is_idle(&self) -> bool {
        match self.slot.try_lock() {
            Ok(value) => value.as_ref().is_some_and(|v| Arc::strong_count(v) == 1),
            Err(_) => false,
        }
    }

    fn value(&self) -> Option<Arc<V>> {
        self.slot.try_lock().ok().and_then(|v| v.clone())
    }
}

impl<K: Clone + Eq + Hash, V> Lru<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            clock: 0,
            capacity,
            next_id: 0,
        }
    }

    /// The slot for `key`, new if needed, marked as just used.
    fn slot(&mut self, key: &K) -> Slot<V> {
        self.clock += 1;
        let clock = self.clock;
        if let Some(entry) = self.entries.get_mut(key) {
            entry.used = clock;
            return Arc::clone(&entry.slot);
        }
        let slot = Slot::default();
        self.next_id += 1;
        self.entries.insert(
            key.clone(),
            Entry {
                id: self.next_id,
                used: clock,
                slot: Arc::clone(&slot),
            },
        );
        slot
    }

    /// Drops the least recently used idle entry other than `keep` and returns its key; `None`
    /// when every other entry is in use or loading.
    pub fn evict_one(&mut self, keep: Option<&K>) -> Option<K> {
        let oldest = self
            .entries
            .iter()
            .filter(|(k, e)| Some(*k) != keep && e.is_idle())
            .min_by_key(|(_, e)| e.used)
            .map(|(k, _)| k.clone())?;
        self.entries.remove(&oldest);
        Some(oldest)
    }

    /// Drops idle entries, oldest first, while there are more than the capacity.
    fn trim(&mut self, keep: &K) {
        while self.entries.len() > self.capacity {
            if self.evict_one(Some(keep)).is_none() {
                break;
            }
        }
    }

    /// Removes an entry whose load failed (if it is still the same, empty slot).
    fn forget(&mut self, key: &K, slot: &Slot<V>) {
        let same_and_empty = self
            .entries
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.slot, slot) && e.value().is_none());
        if same_and_empty {
            self.entries.remove(key);
        }
    }

    /// Removes the entry with `id` (`None`: all). Runs using a value keep it until they end.
    pub fn remove(&mut self, id: Option<u64>) {
        match id {
            Some(id) => self.entries.retain(|_, e| e.id != id),
            None => self.entries.clear(),
        }
    }

    /// The loaded values with their ids and last use, most recently used first.
    pub fn loaded(&self) -> Vec<(u64, K, Arc<V>)> {
        let mut out: Vec<(u64, u64, K, Arc<V>)> = self
            .entries
            .iter()
            .filter_map(|(k, e)| Some((e.used, e.id, k.clone(), e.value()?)))
            .collect();
        out.sort_by_key(|(used, ..)| std::cmp::Reverse(*used));
        out.into_iter().map(|(_, id, k, v)| (id, k, v)).collect()
    }

    /// The idle values other than `keep`'s (what unloading could free).
    pub fn idle(&self, keep: &K) -> Vec<Arc<V>> {
        self.entries
            .iter()
            .filter(|(k, e)| *k != keep && e.is_idle())
            .filter_map(|(_, e)| e.value())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Looks `key` up in `lru`, loading it with `load` on a miss. The map's lock is not held while
/// loading (one slow load does not hold up other keys); the key's own slot is, so a second request
/// for it waits and then shares the value.
pub fn get_or_load<K: Clone + Eq + Hash, V>(
    lru: &Mutex<Lru<K, V>>,
    key: &K,
    load: impl FnOnce() -> Result<V>,
) -> Result<Arc<V>> {
    let slot = lock(lru).slot(key);
    let mut value = lock(&slot);
    if let Some(v) = value.as_ref() {
        return Ok(Arc::clone(v));
    }
    match load() {
        Ok(v) => {
            let v = Arc::new(v);
            *value = Some(Arc::clone(&v));
            drop(value);
            lock(lru).trim(key);
            Ok(v)
        }
        Err(e) => {
            drop(value);
            lock(lru).forget(key, &slot);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WickError;

    fn load(lru: &Mutex<Lru<String, u32>>, key: &str, v: u32) -> Arc<u32> {
        get_or_load(lru, &key.to_string(), || Ok(v)).unwrap()
    }

    #[test]
    fn bounded_least_recently_used_and_failures_are_not_kept() {
        let lru = Mutex::new(Lru::new(2));
        load(&lru, "a", 1);
        load(&lru, "b", 2);
        assert_eq!(*load(&lru, "a", 99), 1, "a is loaded once and reused");
        load(&lru, "c", 3);
        let keys: Vec<String> = lock(&lru).loaded().into_iter().map(|(_, k, _)| k).collect();
        assert_eq!(keys, ["c", "a"], "b was the least recently used");
        let err = get_or_load(&lru, &"bad".to_string(), || {
            Err(WickError::InvalidInput("no".into()))
        });
        assert!(err.is_err());
        assert_eq!(lock(&lru).len(), 2, "a failure leaves nothing behind");
    }

    #[test]
    fn a_value_in_use_is_never_evicted() {
        let lru = Mutex::new(Lru::new(1));
        let in_use = load(&lru, "a", 1);
        load(&lru, "b", 2);
        let keys: Vec<String> = lock(&lru).loaded().into_iter().map(|(_, k, _)| k).collect();
        assert_eq!(keys, ["b", "a"], "over capacity, but a is in use");
        drop(in_use);
        assert_eq!(
            lock(&lru).evict_one(Some(&"b".to_string())).as_deref(),
            Some("a")
        );
        let id = lock(&lru).loaded()[0].0;
        lock(&lru).remove(Some(id));
        assert!(lock(&lru).is_empty());
    }

    #[test]
    fn a_second_request_waits_for_the_first_load() {
        let lru = Arc::new(Mutex::new(Lru::<String, u32>::new(4)));
        let loads = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (lru, loads) = (Arc::clone(&lru), Arc::clone(&loads));
                std::thread::spawn(move || {
                    get_or_load(&lru, &"m".to_string(), || {
                        loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Ok(7)
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(*t.join().unwrap(), 7);
        }
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
