//! Keyword arguments of a pipeline call, read one by one in the types `transformers` takes them,
//! so that every task refuses the same way: a wrong type names the argument and what it must be,
//! and an argument nobody read is an error listing the ones the task takes.

use serde_json::{Map, Value};

use super::scores::TopK;
use crate::error::{Result, WickError};

/// The most alternatives a generated token records (`logprobs`).
pub const MAX_LOGPROBS: usize = 20;

/// Keyword arguments, taken one by one so that leftovers can be reported as unknown.
#[derive(Debug)]
pub struct Kwargs<'a> {
    map: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Kwargs<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            used: Vec::new(),
        }
    }

    fn take(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.push(key);
        self.map.get(key)
    }

    fn invalid(key: &str, want: &str, got: &Value) -> WickError {
        WickError::InvalidInput(format!("{key} must be {want}, got {got}"))
    }

    pub fn usize(&mut self, key: &'static str) -> Result<Option<usize>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| Self::invalid(key, "a whole number", v)),
        }
    }

    pub fn bool(&mut self, key: &'static str) -> Result<Option<bool>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| Self::invalid(key, "true or false", v)),
        }
    }

    pub fn string(&mut self, key: &'static str) -> Result<Option<String>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| Self::invalid(key, "text", v)),
        }
    }

    /// A list of strings, or one string of comma-separated items (as zero-shot accepts).
    pub fn strings(&mut self, key: &'static str) -> Result<Option<Vec<String>>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect(),
            )),
            Some(v @ Value::Array(items)) => items
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| Self::invalid(key, "a list of texts", v)),
            Some(v) => Err(Self::invalid(key, "a list of texts", v)),
        }
    }

    pub fn parsed<T: std::str::FromStr<Err = WickError>>(
        &mut self,
        key: &'static str,
    ) -> Result<Option<T>> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|e: WickError| WickError::InvalidInput(format!("{key}: {e}"))),
        }
    }

    /// `top_k`: absent (the pipeline default), `null` (every label) or a number.
    /// Wick's `logprobs`: how many alternatives to record per generated token, 0 to 20.
    pub fn logprobs(&mut self) -> Result<usize> {
        match self.take("logprobs") {
            None | Some(Value::Null) => Ok(0),
            Some(v) => match v.as_u64() {
                Some(n) if n <= MAX_LOGPROBS as u64 => Ok(n as usize),
                _ => Err(Self::invalid(
                    "logprobs",
                    &format!("a whole number from 0 to {MAX_LOGPROBS}"),
                    v,
                )),
            },
        }
    }

    pub fn top_k(&mut self, key: &'static str) -> Result<Option<TopK>> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(TopK::All)),
            Some(v) => match v.as_u64() {
                Some(k) if k > 0 => Ok(Some(TopK::K(k as usize))),
                _ => Err(Self::invalid(key, "a positive number or null", v)),
            },
        }
    }

    /// Fails on keyword arguments nobody took.
    pub fn finish(self, task: &str) -> Result<()> {
        self.finish_with(task, &[])
    }

    /// Fails on keyword arguments nobody took that are not in `passed_on` either (generate()'s,
    /// which the generation config reads).
    pub fn finish_with(self, task: &str, passed_on: &[&'static str]) -> Result<()> {
        let unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !self.used.contains(&k.as_str()) && !passed_on.contains(&k.as_str()))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut known: Vec<&str> = self.used.iter().chain(passed_on).copied().collect();
        if !passed_on.is_empty() {
            known.sort_unstable();
        }
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        Err(WickError::InvalidInput(format!(
            "{task} does not take {}; it takes: {known}",
            unknown
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn wrong_types_and_unknown_names_are_refused_alike() {
        let m = map(json!({"top_k": 3, "logprobs": 21, "temperature": 0.5, "topk": 1}));
        let mut args = Kwargs::new(&m);
        assert_eq!(args.usize("top_k").unwrap(), Some(3));
        let err = args.logprobs().unwrap_err().to_string();
        assert_eq!(err, "logprobs must be a whole number from 0 to 20, got 21");
        let err = args
            .finish_with("text-generation", &["temperature"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "text-generation does not take topk; it takes: logprobs, temperature, top_k"
        );
        let m = map(json!({"logprobs": 5}));
        let mut args = Kwargs::new(&m);
        assert_eq!(args.logprobs().unwrap(), 5);
        assert!(args.finish("summarization").is_ok());
    }
}
