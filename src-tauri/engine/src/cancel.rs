//! Cancelling work in progress: a flag the runtime raises and the engine checks at every stage
//! of a run (reading weights, building layers, each layer of a forward pass, each generated
//! token, each batch), so a cancel takes effect within one layer's work, not at the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Result, WickError};

/// A cancellation flag shared by whoever may cancel a run and the code doing it. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

/// The message of a candle error that stands for a cancellation raised inside candle-level code
/// (a forward pass, a weight read), so it can be told apart from a real failure on the way out.
const CANCELLED_IN_CANDLE: &str = "wick: the run was cancelled";

impl CancelToken {
    /// A flag nobody has raised.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(WickError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// [`Self::check`] for code that returns candle's errors; [`from_candle`] turns the error
    /// back into [`WickError::Cancelled`].
    pub fn check_candle(&self) -> candle_core::Result<()> {
        if self.is_cancelled() {
            Err(candle_core::Error::Msg(CANCELLED_IN_CANDLE.into()))
        } else {
            Ok(())
        }
    }

    /// The flag itself, for code that takes a plain `AtomicBool` (downloads).
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }

    /// Whether two tokens are the same flag.
    pub fn same(&self, other: &CancelToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Whether a candle error is a cancellation raised by [`CancelToken::check_candle`].
pub fn is_cancellation(err: &candle_core::Error) -> bool {
    match err {
        candle_core::Error::Msg(m) => m == CANCELLED_IN_CANDLE,
        candle_core::Error::WithBacktrace { inner, .. }
        | candle_core::Error::Context { inner, .. } => is_cancellation(inner),
        _ => false,
    }
}

/// A candle error as an engine error: [`WickError::Cancelled`] for a cancellation, else what
/// `otherwise` makes of it.
pub fn from_candle(
    err: candle_core::Error,
    otherwise: impl FnOnce(candle_core::Error) -> WickError,
) -> WickError {
    if is_cancellation(&err) {
        WickError::Cancelled
    } else {
        otherwise(without_backtrace(err))
    }
}

/// A candle error as [`WickError::ModelFailed`] (or [`WickError::Cancelled`]).
pub fn model_failed(err: candle_core::Error) -> WickError {
    from_candle(err, |e| WickError::ModelFailed(e.to_string()))
}

/// candle attaches a backtrace to its errors when `RUST_BACKTRACE` is set, and prints it as
/// part of the message: a user's error stays one line (the backtrace is for `tracing`).
fn without_backtrace(err: candle_core::Error) -> candle_core::Error {
    match err {
        candle_core::Error::WithBacktrace { inner, backtrace } => {
            tracing::debug!("candle error backtrace:\n{backtrace}");
            without_backtrace(*inner)
        }
        candle_core::Error::Context { inner, context } => candle_core::Error::Context {
            inner: Box::new(without_backtrace(*inner)),
            context,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancellation_survives_candle_and_comes_back_as_cancelled() {
        let token = CancelToken::new();
        assert!(token.check().is_ok() && token.check_candle().is_ok());
        let other = token.clone();
        other.cancel();
        assert!(token.is_cancelled() && token.same(&other));
        assert!(!token.same(&CancelToken::new()));
        let err = token.check_candle().unwrap_err();
        let err = err.context("layer 3");
        let wick = from_candle(err, |e| WickError::ModelFailed(e.to_string()));
        assert_eq!(wick.code(), crate::ErrorCode::Cancelled);
        let real = candle_core::Error::Msg("shape mismatch".into());
        let wick = from_candle(real, |e| WickError::ModelFailed(e.to_string()));
        assert_eq!(wick.code(), crate::ErrorCode::ModelFailed);
    }
}
