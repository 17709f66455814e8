//! What the app keeps between commands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wick_engine::{Result, WickTokenizer};

/// How many tokenizers stay loaded. Building one from a large GGUF takes seconds, and the
/// inspector re-tokenizes on every keystroke, so recent ones are kept.
const TOKENIZER_CACHE_SIZE: usize = 4;

/// Cheap to clone: commands move a clone onto the blocking thread that does the work.
#[derive(Debug, Default, Clone)]
pub struct AppState {
    tokenizers: Arc<Mutex<TokenizerCache>>,
}

#[derive(Debug, Default)]
struct TokenizerCache {
    /// Loaded tokenizers by the model name the UI sent, with a use counter for eviction.
    entries: HashMap<String, (u64, Arc<WickTokenizer>)>,
    clock: u64,
}

impl AppState {
    /// Returns the tokenizer for `model`, loading it on a miss. Runs on a blocking thread.
    pub fn tokenizer(&self, model: &str) -> Result<Arc<WickTokenizer>> {
        if let Some(tok) = self.lock().touch(model) {
            return Ok(tok);
        }
        // Load outside the lock so one slow load does not block other models.
        let tok = Arc::new(WickTokenizer::from_model(model)?);
        self.lock().insert(model.to_string(), Arc::clone(&tok));
        Ok(tok)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenizerCache> {
        // A panic while holding the lock leaves only a cache behind; keep using it.
        self.tokenizers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TokenizerCache {
    fn touch(&mut self, model: &str) -> Option<Arc<WickTokenizer>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(model).map(|(used, tok)| {
            *used = clock;
            Arc::clone(tok)
        })
    }

    fn insert(&mut self, model: String, tok: Arc<WickTokenizer>) {
        self.clock += 1;
        self.entries.insert(model, (self.clock, tok));
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
    }
}
