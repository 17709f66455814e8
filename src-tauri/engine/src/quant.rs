//! How a model's weights are held in memory: as stored, or converted at load (the desktop
//! counterpart of transformers' `load_in_8bit` / `load_in_4bit` and `torch_dtype`).

use candle_core::DType;

use crate::error::{Result, WickError};

/// How to hold the weights in memory: as stored, or converted at load (the desktop
/// counterpart of transformers' `load_in_8bit` / `load_in_4bit`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
    ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Quantization {
    /// safetensors in f32, GGUF in its own quantization.
    #[default]
    AsStored,
    /// Everything dequantized to f32 (a GGUF file's exact weights, at full precision speed).
    F32,
    /// Projections quantized to 8 bits at load (candle's Q8_0, blocks of 32).
    Q8_0,
    /// Projections quantized to 4 bits at load (candle's Q4_K, blocks of 256).
    Q4K,
    /// Every weight and activation in IEEE half precision: half f32's memory
    /// (`torch_dtype=torch.float16`). safetensors only.
    F16,
    /// bfloat16: f32's range in 16 bits (`torch_dtype=torch.bfloat16`). safetensors only.
    Bf16,
}

impl std::str::FromStr for Quantization {
    type Err = WickError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "as-stored" | "as_stored" | "none" | "auto" => Ok(Self::AsStored),
            "f32" => Ok(Self::F32),
            "q8_0" | "q8" | "8bit" => Ok(Self::Q8_0),
            "q4_k" | "q4k" | "4bit" => Ok(Self::Q4K),
            "f16" | "float16" | "half" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(WickError::InvalidInput(format!(
                "unknown quantization `{other}` (as-stored, f32, f16, bf16, q8_0, q4_k)"
            ))),
        }
    }
}

impl Quantization {
    /// The float type the model computes in, for the 16-bit choices.
    pub fn float_dtype(self) -> Option<DType> {
        match self {
            Self::F16 => Some(DType::F16),
            Self::Bf16 => Some(DType::BF16),
            _ => None,
        }
    }

    /// The GGUF type the projections are quantized to at load, if any.
    pub fn ggml(self) -> Option<candle_core::quantized::GgmlDType> {
        match self {
            Self::Q8_0 => Some(candle_core::quantized::GgmlDType::Q8_0),
            Self::Q4K => Some(candle_core::quantized::GgmlDType::Q4K),
            _ => None,
        }
    }

    /// The name the UI and the CLI use (`as_stored`, `q4_k`).
    pub fn name(self) -> &'static str {
        match self {
            Self::AsStored => "as_stored",
            Self::F32 => "f32",
            Self::Q8_0 => "q8_0",
            Self::Q4K => "q4_k",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_match_serde() {
        for q in [
            Quantization::AsStored,
            Quantization::F32,
            Quantization::Q8_0,
            Quantization::Q4K,
            Quantization::F16,
            Quantization::Bf16,
        ] {
            assert_eq!(q.name().parse::<Quantization>().ok(), Some(q));
            assert_eq!(
                serde_json::to_value(q).ok(),
                Some(serde_json::json!(q.name()))
            );
        }
        let err = "q3".parse::<Quantization>().unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidInput);
    }
}
