//! Download progress as data: what the CLI prints and the app's download manager draws.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use ts_rs::TS;

use crate::error::ErrorPayload;

/// At most this many progress events a second (the UI redraws on each).
const EVENTS_PER_SECOND: u32 = 10;

/// One file of a download, as planned before it starts.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct PlannedFile {
    pub name: String,
    #[ts(type = "number")]
    pub size: u64,
    /// Already complete in the cache.
    pub cached: bool,
    /// Bytes of an earlier, interrupted download that will be resumed from.
    #[ts(type = "number")]
    pub partial: u64,
}

/// What a download reports, in order: `started`, any number of `progress` and `fileDone`, then
/// exactly one of `done`, `failed`, `cancelled`.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "event", content = "data", rename_all = "camelCase")]
#[ts(export)]
pub enum DownloadEvent {
    #[serde(rename_all = "camelCase")]
    Started {
        repo: String,
        revision: String,
        commit: String,
        files: Vec<PlannedFile>,
        /// Bytes still to fetch (what is cached or partial is not counted).
        #[ts(type = "number")]
        to_fetch: u64,
    },
    #[serde(rename_all = "camelCase")]
    Progress {
        /// The file that moved last.
        file: String,
        #[ts(type = "number")]
        file_bytes: u64,
        #[ts(type = "number")]
        file_size: u64,
        /// Bytes fetched in this run, all files together.
        #[ts(type = "number")]
        fetched: u64,
        #[ts(type = "number")]
        to_fetch: u64,
        bytes_per_second: f64,
        eta_seconds: Option<f64>,
    },
    #[serde(rename_all = "camelCase")]
    FileDone {
        file: String,
        /// The bytes were checked against the Hub's hash (sha256 for LFS files, the git blob id
        /// for the others).
        verified: bool,
        /// Nothing was fetched: the cache had it.
        from_cache: bool,
        /// Where an interrupted download was resumed from (0 when it was not).
        #[ts(type = "number")]
        resumed_from: u64,
    },
    #[serde(rename_all = "camelCase")]
    Done {
        commit: String,
        /// The snapshot folder the model loads from.
        path: String,
        #[ts(type = "number")]
        fetched: u64,
        seconds: f64,
    },
    Failed {
        error: ErrorPayload,
    },
    Cancelled,
}

/// Counts bytes across the files of one download and turns them into throttled events.
pub(crate) struct Tracker<'a> {
    sink: &'a (dyn Fn(DownloadEvent) + Sync),
    started: Instant,
    to_fetch: u64,
    state: Mutex<TrackerState>,
}

struct TrackerState {
    fetched: u64,
    per_file: HashMap<String, u64>,
    last_emit: Option<Instant>,
}

impl<'a> Tracker<'a> {
    pub(crate) fn new(sink: &'a (dyn Fn(DownloadEvent) + Sync), to_fetch: u64) -> Self {
        Self {
            sink,
            started: Instant::now(),
            to_fetch,
            state: Mutex::new(TrackerState {
                fetched: 0,
                per_file: HashMap::new(),
                last_emit: None,
            }),
        }
    }

    pub(crate) fn emit(&self, event: DownloadEvent) {
        (self.sink)(event);
    }

    /// Records `delta` new bytes of `file` (now `file_bytes` of `file_size` long on disk).
    pub(crate) fn advance(&self, file: &str, delta: u64, file_bytes: u64, file_size: u64) {
        let event = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.fetched += delta;
            state.per_file.insert(file.to_string(), file_bytes);
            let now = Instant::now();
            let due = state.last_emit.is_none_or(|t| {
                now - t >= Duration::from_secs(1) / EVENTS_PER_SECOND || file_bytes == file_size
            });
            if !due {
                return;
            }
            state.last_emit = Some(now);
            let seconds = self.started.elapsed().as_secs_f64();
            let rate = if seconds > 0.0 {
                state.fetched as f64 / seconds
            } else {
                0.0
            };
            let left = self.to_fetch.saturating_sub(state.fetched);
            DownloadEvent::Progress {
                file: file.to_string(),
                file_bytes,
                file_size,
                fetched: state.fetched,
                to_fetch: self.to_fetch,
                bytes_per_second: rate,
                eta_seconds: (rate > 0.0).then(|| left as f64 / rate),
            }
        };
        (self.sink)(event);
    }

    pub(crate) fn fetched(&self) -> u64 {
        self.state.lock().map_or(0, |s| s.fetched)
    }

    pub(crate) fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_throttled_but_the_end_of_a_file_always_shows() {
        let events = Mutex::new(Vec::new());
        let sink = |e: DownloadEvent| events.lock().unwrap().push(e);
        let tracker = Tracker::new(&sink, 1000);
        for i in 1..=100 {
            tracker.advance("a", 10, i * 10, 1000);
        }
        let events = events.into_inner().unwrap();
        // The first and the last (file complete); the rest fall inside the 100 ms window.
        assert!(events.len() >= 2 && events.len() < 10, "{}", events.len());
        match events.last() {
            Some(DownloadEvent::Progress {
                fetched,
                file_bytes,
                ..
            }) => assert_eq!((*fetched, *file_bytes), (1000, 1000)),
            other => panic!("{other:?}"),
        }
        let json = serde_json::to_value(DownloadEvent::Cancelled).unwrap();
        assert_eq!(json, serde_json::json!({"event": "cancelled"}));
    }
}
