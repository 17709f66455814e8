//! The engine's runtime on real models, as the app and the CLI use it: one run at a time per
//! device, cancels that take effect while a model loads and while a prompt is read, load
//! progress, the memory budget counting a running generation's cache, and run ids that name one
//! run only.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use wick_engine::device::DeviceChoice;
use wick_engine::quant::Quantization;
use wick_engine::runtime::{LoadedPipeline, Run, RunEvent, Runtime};
use wick_engine::tasks::Task;
use wick_engine::ErrorCode;
use wick_tests::model_dir;

/// How soon after a cancel a run must give the device back.
const CANCEL_WITHIN: Duration = Duration::from_millis(200);

/// The timing cases run one at a time: a second test computing beside them would slow the layer
/// they wait on, and measure the machine rather than the runtime.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn model(name: &str) -> String {
    model_dir(name).display().to_string()
}

/// SmolLM2 (GGUF Q4_1) as `run` loads it.
fn smollm2(run: &Run) -> Arc<LoadedPipeline> {
    run.pipeline(
        Task::TextGeneration,
        &model("smollm2-135m-instruct"),
        Quantization::AsStored,
    )
    .expect("SmolLM2 loads")
}

fn kwargs(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Events a run sent, to look at afterwards.
fn recorder() -> (
    Arc<Mutex<Vec<RunEvent>>>,
    impl Fn(RunEvent) + Send + Sync + 'static,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    (events, move |e| sink.lock().expect("events").push(e))
}

#[test]
fn a_load_reports_bytes_and_layers_and_stops_within_200_ms_of_a_cancel() {
    let _serial = serial();
    let runtime = Runtime::new(u64::MAX);
    let (events, sink) = recorder();
    let run = runtime.begin("load", DeviceChoice::Cpu, sink).unwrap();
    run.pipeline(
        Task::TextGeneration,
        &model("smollm2-135m-instruct"),
        Quantization::AsStored,
    )
    .unwrap();
    drop(run);
    let progress: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            RunEvent::Loading { progress, .. } => Some(*progress),
            _ => None,
        })
        .collect();
    assert!(progress.len() > 30, "{} progress events", progress.len());
    assert!(progress
        .windows(2)
        .all(|w| w[1].bytes_read >= w[0].bytes_read && w[1].layers_built >= w[0].layers_built));
    let last = progress.last().copied().unwrap();
    assert_eq!(last.layers_built, last.layers_total);
    assert_eq!(last.layers_total, 30, "SmolLM2-135M has 30 layers");
    assert!(
        last.bytes_read > 0 && last.bytes_read == last.bytes_total,
        "{last:?}"
    );

    // Gemma 3's load, cancelled once it is under way.
    let runtime = Runtime::new(u64::MAX);
    let (tx, rx) = mpsc::channel();
    let run = runtime
        .begin("load-gemma", DeviceChoice::Cpu, move |e| {
            if let RunEvent::Loading { progress, .. } = e {
                let _ = tx.send(progress);
            }
        })
        .unwrap();
    let canceller = runtime.clone();
    let cancelled = std::thread::spawn(move || {
        let seen = rx.recv().expect("progress before the load ends");
        let asked = Instant::now();
        assert!(canceller.cancel("load-gemma"));
        (seen, asked)
    });
    let result = run.pipeline(
        Task::TextGeneration,
        &model("gemma3-270m"),
        Quantization::AsStored,
    );
    let returned = Instant::now();
    let (seen, asked) = cancelled.join().unwrap();
    eprintln!(
        "load: returned {:?} after the cancel",
        returned.duration_since(asked)
    );
    let err = result.expect_err("the load was cancelled");
    assert_eq!(err.code(), ErrorCode::Cancelled, "{err}");
    assert!(
        returned.duration_since(asked) < CANCEL_WITHIN,
        "returned {:?} after the cancel",
        returned.duration_since(asked)
    );
    assert!(seen.bytes_read < seen.bytes_total.max(1));
    drop(run);
    assert!(
        runtime.loaded().is_empty(),
        "a cancelled load leaves nothing"
    );
}

#[test]
fn a_long_prompt_stops_within_200_ms_of_a_cancel() {
    let _serial = serial();
    let runtime = Runtime::new(u64::MAX);
    let run = runtime.begin("prefill", DeviceChoice::Cpu, |_| ()).unwrap();
    let loaded = smollm2(&run);
    // About 900 tokens: its prefill takes seconds, the cancel comes 300 ms in.
    let prompt = "The quick brown fox jumps over the lazy dog. ".repeat(90);
    let canceller = runtime.clone();
    let asked = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        canceller.cancel("prefill");
        Instant::now()
    });
    let started = Instant::now();
    let mut tokens = 0;
    let result = loaded.stream(
        &json!(prompt),
        &kwargs(json!({"do_sample": false, "max_new_tokens": 4})),
        &mut |_, _| {
            tokens += 1;
            true
        },
        &run.control(),
    );
    let returned = Instant::now();
    let asked = asked.join().unwrap();
    eprintln!(
        "prefill: returned {:?} after the cancel",
        returned.duration_since(asked)
    );
    let err = result.expect_err("the prefill was cancelled");
    assert_eq!(err.code(), ErrorCode::Cancelled, "{err}");
    assert_eq!(tokens, 0, "no token came before the cancel");
    assert!(
        returned.duration_since(asked) < CANCEL_WITHIN,
        "returned {:?} after the cancel ({:?} after the start)",
        returned.duration_since(asked),
        returned.duration_since(started)
    );
}

#[test]
fn a_cancel_during_decoding_keeps_the_tokens_so_far() {
    let _serial = serial();
    let runtime = Runtime::new(u64::MAX);
    let run = runtime.begin("decode", DeviceChoice::Cpu, |_| ()).unwrap();
    let loaded = smollm2(&run);
    let mut tokens = 0;
    let (_, results, _) = loaded
        .stream(
            &json!("Once upon a time"),
            &kwargs(json!({"do_sample": false, "max_new_tokens": 64})),
            &mut |_, _| {
                tokens += 1;
                if tokens == 5 {
                    runtime.cancel("decode");
                }
                true
            },
            &run.control(),
        )
        .unwrap();
    let sequence = &results[0].sequences[0];
    // The step under way when the cancel came finishes; its token is kept, and no more follow.
    assert_eq!(sequence.tokens.len(), 6);
    assert_eq!(
        serde_json::to_value(sequence.stop).unwrap(),
        json!("cancelled")
    );
}

#[test]
fn one_run_at_a_time_on_a_device_in_order_and_a_waiting_run_can_be_cancelled() {
    let runtime = Runtime::new(u64::MAX);
    let first = runtime.begin("first", DeviceChoice::Cpu, |_| ()).unwrap();
    let (tx, rx) = mpsc::channel();
    let second = {
        let (runtime, tx) = (runtime.clone(), tx.clone());
        std::thread::spawn(move || {
            let run = runtime
                .begin("second", DeviceChoice::Cpu, move |e| {
                    if let RunEvent::Queued { ahead } = e {
                        let _ = tx.send(format!("queued {ahead}"));
                    }
                })
                .unwrap();
            run.id().to_string()
        })
    };
    assert_eq!(rx.recv().unwrap(), "queued 1");
    let third = {
        let (runtime, tx) = (runtime.clone(), tx.clone());
        std::thread::spawn(move || {
            runtime
                .begin("third", DeviceChoice::Cpu, move |e| {
                    if let RunEvent::Queued { ahead } = e {
                        let _ = tx.send(format!("queued {ahead}"));
                    }
                })
                .map(|run| run.id().to_string())
        })
    };
    assert_eq!(rx.recv().unwrap(), "queued 2");
    assert!(runtime.cancel("third"));
    let err = third.join().unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    // The second starts only once the first is over.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!second.is_finished());
    drop(first);
    assert_eq!(second.join().unwrap(), "second");
}

#[test]
fn a_run_id_names_one_run_only() {
    let runtime = Runtime::new(u64::MAX);
    let run = runtime.begin("same", DeviceChoice::Cpu, |_| ()).unwrap();
    // A second run with the id is refused at once (it does not queue behind the first, take its
    // flag over, or remove it when it ends).
    let err = runtime
        .begin("same", DeviceChoice::Cpu, |_| ())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(runtime.cancel("same"));
    assert!(run.cancel_token().is_cancelled());
    drop(run);
    assert!(!runtime.cancel("same"), "an ended run is gone");
    let again = runtime.begin("same", DeviceChoice::Cpu, |_| ()).unwrap();
    assert!(
        !again.cancel_token().is_cancelled(),
        "a new run, a new flag"
    );
}

#[test]
fn a_gpu_this_build_lacks_is_refused_by_name() {
    let runtime = Runtime::new(u64::MAX);
    let err = runtime
        .begin("gpu", DeviceChoice::Cuda(0), |_| ())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::DeviceUnavailable);
    assert!(err
        .to_string()
        .starts_with("device cuda:0 is not available"));
    let run = runtime.begin("gpu", DeviceChoice::Auto, |_| ()).unwrap();
    assert_eq!(run.device_name(), "cpu");
}

#[test]
fn the_memory_budget_counts_a_running_generation_and_unloads_idle_models_for_it() {
    let _serial = serial();
    let minilm = model("all-minilm-l6-v2");
    // First, what the two models weigh in this runtime's accounting.
    let probe = Runtime::new(u64::MAX);
    let run = probe.begin("probe", DeviceChoice::Cpu, |_| ()).unwrap();
    run.pipeline(Task::FeatureExtraction, &minilm, Quantization::AsStored)
        .unwrap();
    run.pipeline(
        Task::TextGeneration,
        &model("smollm2-135m-instruct"),
        Quantization::AsStored,
    )
    .unwrap();
    let models = probe.memory().models;
    drop(run);

    // A budget both models fit in, with less than a megabyte to spare: the generation's cache
    // (SmolLM2: 30 layers x 2 x 3 heads x 64 x 4 bytes = 90 KiB a token) outgrows it.
    let runtime = Runtime::new(models + (512 << 10));
    let run = runtime.begin("embed", DeviceChoice::Cpu, |_| ()).unwrap();
    run.pipeline(Task::FeatureExtraction, &minilm, Quantization::AsStored)
        .unwrap();
    drop(run);
    let run = runtime.begin("chat", DeviceChoice::Cpu, |_| ()).unwrap();
    let generator = run
        .pipeline(
            Task::TextGeneration,
            &model("smollm2-135m-instruct"),
            Quantization::AsStored,
        )
        .unwrap();
    assert_eq!(runtime.loaded().len(), 2, "both fit before generating");
    let mut peak_cache = 0;
    let mut in_use_seen = false;
    generator
        .stream(
            &json!("Once upon a time"),
            &kwargs(json!({"do_sample": false, "max_new_tokens": 16})),
            &mut |_, _| {
                peak_cache = peak_cache.max(runtime.memory().caches);
                in_use_seen |= runtime.loaded().iter().any(|m| m.in_use);
                true
            },
            &run.control(),
        )
        .unwrap();
    assert!(
        peak_cache > 512 << 10,
        "the cache was counted: {peak_cache} bytes"
    );
    assert!(in_use_seen, "the generating model is marked in use");
    let loaded = runtime.loaded();
    assert_eq!(loaded.len(), 1, "the idle embedder made room: {loaded:?}");
    assert_eq!(loaded[0].task, Task::TextGeneration);
    // Unloading the model in use frees nothing until the run ends: it stays counted.
    runtime.unload(None);
    assert!(runtime.loaded().is_empty());
    assert!(runtime.memory().models > 0, "still held by the run");
    drop(generator);
    drop(run);
    assert_eq!(runtime.memory().models, 0);
    assert_eq!(runtime.memory().caches, 0);
}
