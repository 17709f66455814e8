//! 16-bit weights (`--quantize f16|bf16`, transformers' `torch_dtype`): the same model at half
//! the weight memory, with next-token distributions close to f32's on every causal family.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use wick_engine::loading::LoadSpec;
use wick_engine::quant::Quantization;
use wick_engine::tasks::compare::compare;
use wick_engine::tasks::text_generation::{Prompt, TextGenerator};
use wick_engine::tasks::RunControl;
use wick_tests::fixture;

#[test]
fn f16_and_bf16_halve_the_weights_and_track_f32() {
    for family in ["gpt2", "llama", "qwen2", "gemma3"] {
        let dir = fixture(&format!("tiny/{family}-causal-lm"));
        let load =
            |q| TextGenerator::load(&LoadSpec::new(&dir).unwrap().with_quantization(q)).unwrap();
        let f32 = load(Quantization::AsStored);
        let options = f32.options(&serde_json::Map::new()).unwrap();
        let prompt = Prompt::Text("Hello world, this is a test".into());
        for (q, label, max_kl) in [
            (Quantization::F16, "f16", 1e-3),
            (Quantization::Bf16, "bf16", 2e-2),
        ] {
            let half = load(q);
            assert_eq!(half.dtype_label(), label);
            let c = compare(&f32, &half, &prompt, &options, 12, &RunControl::default()).unwrap();
            let ratio = c.b.weight_bytes as f64 / c.a.weight_bytes as f64;
            assert!(
                (0.45..=0.55).contains(&ratio),
                "{family} {label}: weights {ratio:.2}x of f32"
            );
            assert!(
                c.mean_kl < max_kl,
                "{family} {label}: mean KL {} from f32",
                c.mean_kl
            );
            assert!(
                c.agreement >= 0.75,
                "{family} {label}: top-1 agreement {}",
                c.agreement
            );
            println!(
                "{family} {label}: agreement {:.2}, mean KL {:.2e}, weights {ratio:.2}x",
                c.agreement, c.mean_kl
            );
        }
    }
}

#[test]
fn gguf_files_refuse_16_bit_conversion() {
    let dir = wick_tests::model_dir("smollm2-135m-instruct");
    let err = TextGenerator::load(
        &LoadSpec::new(&dir)
            .unwrap()
            .with_quantization(Quantization::Bf16),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("choose `as stored` or `f32` for GGUF files"),
        "{err}"
    );
}
