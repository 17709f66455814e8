//! What the app keeps between commands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use wick_engine::{ErrorPayload, WickTokenizer};

/// How many tokenizers stay loaded. Building one from a large GGUF takes a second, and the
/// inspector re-tokenizes on every keystroke, so recent ones are kept.
const TOKENIZER_CACHE_SIZE: usize = 4;

/// One tokenizer, loaded at most once: requests that arrive while it loads wait for that load
/// instead of starting their own.
type Slot = Arc<OnceLock<Result<Arc<WickTokenizer>, ErrorPayload>>>;

/// Cheap to clone: commands move a clone onto the blocking thread that does the work.
#[derive(Debug, Default, Clone)]
pub struct AppState {
    tokenizers: Arc<Mutex<TokenizerCache>>,
}

#[derive(Debug, Default)]
struct TokenizerCache {
    /// Tokenizers by the model name the UI sent, with a use counter for eviction.
    entries: HashMap<String, (u64, Slot)>,
    clock: u64,
}

impl AppState {
    /// Returns the tokenizer for `model`, loading it on a miss. Runs on a blocking thread.
    pub fn tokenizer(&self, model: &str) -> Result<Arc<WickTokenizer>, ErrorPayload> {
        let slot = self.lock().slot(model);
        // Loads outside the cache lock, so one slow load does not hold up other models.
        let result = slot
            .get_or_init(|| {
                WickTokenizer::from_model(model)
                    .map(Arc::new)
                    .map_err(ErrorPayload::from)
            })
            .clone();
        if result.is_err() {
            // A failure is not remembered: the user may fix the folder and try again.
            self.lock().forget(model, &slot);
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenizerCache> {
        // A panic while holding the lock leaves only a cache behind; keep using it.
        self.tokenizers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TokenizerCache {
    /// The slot for `model`, new if needed, marked as just used; evicts the least recently
    /// used beyond the cache size.
    fn slot(&mut self, model: &str) -> Slot {
        self.clock += 1;
        let clock = self.clock;
        let slot = match self.entries.get_mut(model) {
            Some((used, slot)) => {
                *used = clock;
                Arc::clone(slot)
            }
            None => {
                let slot = Slot::default();
                self.entries
                    .insert(model.to_string(), (clock, Arc::clone(&slot)));
                slot
            }
        };
        while self.entries.len() > TOKENIZER_CACHE_SIZE {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(key) => self.entries.remove(&key),
                None => break,
            };
        }
        slot
    }

    fn forget(&mut self, model: &str, slot: &Slot) {
        if self
            .entries
            .get(model)
            .is_some_and(|(_, s)| Arc::ptr_eq(s, slot))
        {
            self.entries.remove(model);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_not_cached_and_the_cache_is_bounded() {
        let state = AppState::default();
        let err = state.tokenizer("/nonexistent/model").unwrap_err();
        assert_eq!(err.code, wick_engine::ErrorCode::NotFound);
        assert!(state.lock().entries.is_empty());

        let mut cache = TokenizerCache::default();
        for i in 0..10 {
            cache.slot(&format!("m{i}"));
        }
        assert_eq!(cache.entries.len(), TOKENIZER_CACHE_SIZE);
        assert!(cache.entries.contains_key("m9"));
        assert!(!cache.entries.contains_key("m0"));
    }
}
