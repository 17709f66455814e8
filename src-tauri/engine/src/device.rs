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
            gpu => Err(WickError::DeviceUnavailable {
                device: gpu.name(),
                reason: format!("{}; use cpu", gpu_unusable(gpu)),
            }),
        }
    }
}

/// Why a GPU choice cannot run Wick's models: not in this build, not in this machine, or (present
/// and built) not yet supported by Wick's model code.
fn gpu_unusable(choice: DeviceChoice) -> &'static str {
    let (built, present) = match choice {
        DeviceChoice::Cuda(n) => (cfg!(feature = "cuda"), cuda_present(n)),
        DeviceChoice::Metal => (cfg!(feature = "metal"), metal_present()),
        DeviceChoice::Auto | DeviceChoice::Cpu => (true, true),
    };
    match (built, present) {
        (false, _) => match choice {
            DeviceChoice::Metal => {
                "this build of Wick has no Metal support (build with `--features metal`)"
            }
            _ => "this build of Wick has no CUDA support (build with `--features cuda`)",
        },
        (true, false) => "this machine has no such device",
        (true, true) => {
            "Wick's models run on the CPU only so far (GPU kernels are not written yet)"
        }
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

/// What the device picker offers: the CPU first, then the GPUs this kind of machine can have
/// (NVIDIA through CUDA; Apple's through Metal on macOS), each found one by ordinal. A GPU Wick
/// cannot use (this build lacks its back end, the machine lacks it, or the model code does not run
/// on it yet) is listed all the same, unusable, with the reason.
pub fn available_devices() -> Vec<DeviceInfo> {
    let mut devices = vec![DeviceInfo {
        id: "cpu".into(),
        name: "CPU".into(),
        usable: true,
        note: None,
    }];
    let gpu = |choice: DeviceChoice, name: String| DeviceInfo {
        id: choice.name(),
        name,
        usable: choice.resolve().is_ok(),
        note: choice
            .resolve()
            .err()
            .map(|_| gpu_unusable(choice).to_string()),
    };
    let found = (0..16).take_while(|&n| cuda_present(n)).count();
    if found == 0 && !cfg!(target_os = "macos") {
        devices.push(gpu(DeviceChoice::Cuda(0), "NVIDIA GPU (CUDA)".into()));
    }
    devices.extend((0..found).map(|n| gpu(DeviceChoice::Cuda(n), format!("NVIDIA GPU {n}"))));
    if cfg!(target_os = "macos") || metal_present() {
        devices.push(gpu(DeviceChoice::Metal, "Apple GPU (Metal)".into()));
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
        assert_eq!(err.code(), crate::ErrorCode::DeviceUnavailable);
        assert!(
            err.to_string()
                .starts_with("device cuda:0 is not available"),
            "{err}"
        );
        // The picker lists the GPU all the same, unusable, with the same reason.
        let devices = available_devices();
        assert_eq!((devices[0].id.as_str(), devices[0].usable), ("cpu", true));
        let gpu = &devices[1];
        assert!(!gpu.usable);
        let note = gpu.note.clone().unwrap_or_default();
        assert!(err.to_string().contains(&note), "{note} / {err}");
        assert_eq!(
            serde_json::to_string(&DeviceChoice::Cuda(1))
                .ok()
                .as_deref(),
            Some(r#"{"kind":"cuda","ordinal":1}"#)
        );
    }
}
