//! Runs in progress by id, so that a later command can cancel one. An id names one run only: a
//! second run asking for an id in use is refused, and a run that ends removes its own entry and
//! never another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cancel::CancelToken;
use crate::error::{Result, WickError};

#[derive(Debug, Default)]
pub struct RunRegistry {
    runs: Mutex<HashMap<String, CancelToken>>,
}

/// A run's place in the registry; dropping it removes the run (only this one).
#[derive(Debug)]
pub struct Registration {
    registry: Arc<RunRegistry>,
    id: String,
    cancel: CancelToken,
}

impl Registration {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }
}

impl RunRegistry {
    fn runs(&self) -> MutexGuard<'_, HashMap<String, CancelToken>> {
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers run `id` with a fresh cancel flag; an id already running is refused.
    pub fn register(self: &Arc<Self>, id: &str) -> Result<Registration> {
        let id = id.trim();
        if id.is_empty() {
            return Err(WickError::InvalidInput("a run needs an id".into()));
        }
        let mut runs = self.runs();
        if runs.contains_key(id) {
            return Err(WickError::InvalidInput(format!(
                "a run with the id `{id}` is already running; give each run its own id"
            )));
        }
        let cancel = CancelToken::new();
        runs.insert(id.to_string(), cancel.clone());
        Ok(Registration {
            registry: Arc::clone(self),
            id: id.to_string(),
            cancel,
        })
    }

    /// Cancels run `id`; returns whether such a run was in progress (it may have just ended).
    pub fn cancel(&self, id: &str) -> bool {
        match self.runs().get(id.trim()) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every run (the window is closing).
    pub fn cancel_all(&self) {
        for cancel in self.runs().values() {
            cancel.cancel();
        }
    }

    pub fn len(&self) -> usize {
        self.runs().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut runs = self.registry.runs();
        if runs.get(&self.id).is_some_and(|c| c.same(&self.cancel)) {
            runs.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_one_run_and_a_second_cannot_take_it_over() {
        let registry = Arc::new(RunRegistry::default());
        let first = registry.register("gen-1").unwrap();
        let err = registry.register("gen-1").unwrap_err();
        assert!(err.to_string().contains("already running"), "{err}");
        // The refused second run did not replace or remove the first one's flag.
        assert!(registry.cancel("gen-1"));
        assert!(first.cancel_token().is_cancelled());
        drop(first);
        assert!(registry.is_empty());
        assert!(!registry.cancel("gen-1"), "ended runs are gone");
        // Once ended, the id can be used again, with a new flag.
        let again = registry.register("gen-1").unwrap();
        assert!(!again.cancel_token().is_cancelled());
        assert!(registry.register(" ").is_err());
        let other = registry.register("gen-2").unwrap();
        registry.cancel_all();
        assert!(again.cancel_token().is_cancelled() && other.cancel_token().is_cancelled());
    }
}
