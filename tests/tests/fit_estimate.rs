//! "Will it fit?" against what really happens: the estimate for each test model (f32 and
//! quantized) is within 15% of the peak memory `wick run` reaches on it.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::process::Command;

use wick_engine::facts::local_facts;
use wick_engine::quant::Quantization;
use wick_tests::{model_dir, target_binary};

/// Runs `wick run <args> --peak-memory` and reads the peak it reports.
fn measured_peak(args: &[&str]) -> u64 {
    let wick = target_binary("wick");
    assert!(
        wick.is_file(),
        "build the CLI first: cargo build -p wick-engine --bins"
    );
    let out = Command::new(wick)
        .arg("run")
        .args(args)
        .arg("--peak-memory")
        .output()
        .expect("wick runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "wick run {args:?} failed: {stderr}");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory line in: {stderr}"))
}

#[test]
fn estimates_are_within_15_percent_of_the_measured_peak() {
    const TEXT: &str = "Paris is the [MASK] of France, said John Smith.";
    // (model, task, quantization, tokens the run holds, extra flags)
    let cases: &[(&str, &str, Quantization, u64, &[&str])] = &[
        (
            "all-minilm-l6-v2",
            "feature-extraction",
            Quantization::AsStored,
            16,
            &[],
        ),
        ("splade-tiny", "fill-mask", Quantization::AsStored, 16, &[]),
        (
            "rampart-ner",
            "token-classification",
            Quantization::AsStored,
            16,
            &[],
        ),
        (
            "flan-t5-small-titles",
            "summarization",
            Quantization::AsStored,
            64,
            &[],
        ),
        (
            "smollm2-135m-instruct",
            "text-generation",
            Quantization::AsStored,
            40,
            &["--max-new-tokens", "32"],
        ),
        (
            "smollm2-135m-instruct",
            "text-generation",
            Quantization::F32,
            40,
            &["--max-new-tokens", "32", "--quantize", "f32"],
        ),
        (
            "gemma3-270m",
            "text-generation",
            Quantization::AsStored,
            40,
            &["--max-new-tokens", "32"],
        ),
    ];
    let mut report = Vec::new();
    for (name, task, quantization, context, flags) in cases {
        let dir = model_dir(name);
        let dir_str = dir.to_str().expect("utf-8 path");
        let mut args = vec![*task, "--model", dir_str];
        args.extend_from_slice(flags);
        args.push(TEXT);
        let measured = measured_peak(&args);
        let estimate = local_facts(&dir, *quantization, *context)
            .unwrap()
            .fit
            .total;
        let error = (estimate as f64 - measured as f64) / measured as f64;
        report.push(format!(
            "{name} {quantization:?}: estimate {} MiB, measured {} MiB ({:+.1}%)",
            estimate >> 20,
            measured >> 20,
            error * 100.0
        ));
    }
    println!("{}", report.join("\n"));
    for line in &report {
        let pct: f64 = line
            .rsplit('(')
            .next()
            .and_then(|p| p.trim_end_matches("%)").parse().ok())
            .unwrap_or(f64::MAX);
        assert!(pct.abs() <= 15.0, "{}", report.join("\n"));
    }
}
