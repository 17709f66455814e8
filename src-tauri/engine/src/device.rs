//! Which device a model runs on: what the user asked for, resolved against what this build and this
//! machine really have. Nothing falls back silently: a device that is not there is an error that
//! says why, and every result reports the device that was used.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{Result, WickError};

/// What the user picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", tag = "kind", content = "ordinal")]
#[ts(export)]
pub enum DeviceChoice {
    /// The best device Wick can run the model on.
    #[default]
    Auto,
    Cpu,
    /// An NVIDIA GPU by ordinal (`cuda:1`).
    Cuda(usize),
    Metal,
}

impl DeviceChoice {
    /// Reads `auto`, `cpu`, `cuda`, `cuda:N`, `metal` (as `--device` takes them).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim().to_ascii_lowercase();
        Ok(match text.as_str() {
            "auto" | "" => Self::Auto,
            "cpu" => Self::Cpu,
            "cuda" | "gpu" => Self::Cuda(0),
            "metal" | "mps" => Self::Metal,
            other => match other.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => Self::Cuda(n),
                _ => {
                    return Err(WickError::InvalidInput(format!(
                        "unknown device `{text}`: use auto, cpu, cuda, cuda:N or metal"
                    )))
                }
            },
        })
    }

    /// The name runs and results use: `cpu`, `cuda:N`, `metal`. `auto` is the CPU while Wick's
    /// models run there only ([`Self::resolve`]).
    pub fn name(self) -> String {
        match self {
            Self::Auto | Self::Cpu => "cpu".into(),
            Self::Cuda(n) => format!("cuda:{n}"),
            Self::Metal => "metal".into(),
        }
    }

    /// The device this choice means on this machine and build, or why it cannot be had.
    ///
    /// Wick's model code (the quantized kernels in particular) runs on the CPU today. A GPU that
    /// is present is listed by [`available_devices`], but choosing it is refused with that reason
    /// rather than quietly running on the CPU.
    pub fn resolve(self) -> Result<candle_core::Device> {
        match self {
            Self::Auto | Self::Cpu => Ok(candle_core::Device::Cpu),
            Self::Cuda(n) => Err(gpu_refusal(&format!("cuda:{n}"), cuda_present(n))),
            Self::Metal => Err(gpu_refusal("metal", metal_present())),
        }
    }
}

fn gpu_refusal(name: &str, present: bool) -> WickError {
    let why = if present {
        "Wick's models run on the CPU only so far (GPU kernels are not written yet)"
    } else if cfg!(any(feature = "cuda", feature = "metal")) {
        "this machine has no such device"
    } else {
        "this build of Wick has no GPU support (build with `--features cuda` or `--features metal`)"
    };
    WickError::DeviceUnavailable {
        device: name.to_string(),
        reason: format!("{why}; use cpu"),
    }
}

/// One device as the device picker lists it.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct DeviceInfo {
    /// `cpu`, `cuda:0`, `metal`: what `--device` takes.
    pub id: String,
    pub name: String,
    /// Whether Wick can run models on it now (see [`DeviceChoice::resolve`]).
    pub usable: bool,
    /// Why it cannot be used, when it cannot.
    pub note: Option<String>,
}

/// Every device this build can see, the CPU first.
pub fn available_devices() -> Vec<DeviceInfo> {
    let mut devices = vec![DeviceInfo {
        id: "cpu".into(),
        name: "CPU".into(),
        usable: true,
        note: None,
    }];
    let gpu_note = "Wick's models run on the CPU only so far".to_string();
    devices.extend(
        (0..16)
            .take_while(|&n| cuda_present(n))
            .map(|n| DeviceInfo {
                id: format!("cuda:{n}"),
                name: format!("NVIDIA GPU {n}"),
                usable: false,
                note: Some(gpu_note.clone()),
            }),
    );
    if metal_present() {
        devices.push(DeviceInfo {
            id: "metal".into(),
            name: "Apple GPU (Metal)".into(),
            usable: false,
            note: Some(gpu_note),
        });
    }
    devices
}

fn cuda_present(ordinal: usize) -> bool {
    cfg!(feature = "cuda") && candle_core::Device::new_cuda(ordinal).is_ok()
}

fn metal_present() -> bool {
    cfg!(feature = "metal") && candle_core::Device::new_metal(0).is_ok()
}

/// The name a result reports for the device it ran on.
pub fn device_label(device: &candle_core::Device) -> String {
    match device {
        candle_core::Device::Cpu => "cpu".into(),
        candle_core::Device::Cuda(_) => "cuda".into(),
        candle_core::Device::Metal(_) => "metal".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_never_falls_back() {
        assert_eq!(
            DeviceChoice::parse("cuda:1").ok(),
            Some(DeviceChoice::Cuda(1))
        );
        assert_eq!(DeviceChoice::parse("CPU").ok(), Some(DeviceChoice::Cpu));
        assert!(DeviceChoice::parse("tpu").is_err());
        assert!(DeviceChoice::Auto.resolve().is_ok_and(|d| d.is_cpu()));
        let err = DeviceChoice::Cuda(0).resolve().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("device cuda:0 is not available"),
            "{err}"
        );
        assert_eq!(
            serde_json::to_string(&DeviceChoice::Cuda(1))
                .ok()
                .as_deref(),
            Some(r#"{"kind":"cuda","ordinal":1}"#)
        );
    }
}
