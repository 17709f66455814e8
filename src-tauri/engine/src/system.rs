//! What this machine has: memory, processor, disks and compute devices. The fit estimate, the
//! download space check and the app's system panel all read it from here.

use std::path::Path;

use serde::Serialize;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
use ts_rs::TS;

use crate::device::{available_devices, DeviceInfo};

/// A snapshot of the machine, as the system panel shows it.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct SystemInfo {
    /// Installed memory, bytes.
    #[ts(type = "number")]
    pub total_memory: u64,
    /// Memory the OS can give a new allocation now without swapping (MemAvailable), bytes.
    #[ts(type = "number")]
    pub available_memory: u64,
    /// The processor's marketing name.
    pub cpu: String,
    pub physical_cores: Option<usize>,
    pub logical_cores: usize,
    /// SIMD extensions Wick's kernels use when present.
    pub cpu_features: Vec<String>,
    /// Every device Wick can run on in this build, the CPU first.
    pub devices: Vec<DeviceInfo>,
    /// Free space where models are downloaded, bytes.
    #[ts(type = "number | null")]
    pub cache_free_disk: Option<u64>,
    pub cache_dir: String,
    pub os: String,
}

impl SystemInfo {
    /// Reads the machine now (takes a few milliseconds).
    pub fn read() -> Self {
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_memory(MemoryRefreshKind::nothing().with_ram())
                .with_cpu(CpuRefreshKind::nothing()),
        );
        let cpu = sys
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_string())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(System::cpu_arch);
        let cache_dir = crate::hub::cache::hub_cache_dir();
        Self {
            total_memory: sys.total_memory(),
            available_memory: available_memory_in(&sys),
            cpu,
            physical_cores: System::physical_core_count(),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_features: cpu_features(),
            devices: available_devices(),
            cache_free_disk: free_disk(&cache_dir),
            cache_dir: cache_dir.display().to_string(),
            os: System::long_os_version().unwrap_or_else(|| std::env::consts::OS.to_string()),
        }
    }
}

/// Memory available to a new allocation, bytes, honouring a cgroup (container) limit.
pub fn available_memory() -> u64 {
    let sys = System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
    );
    available_memory_in(&sys)
}

fn available_memory_in(sys: &System) -> u64 {
    let host = sys.available_memory();
    match sys.cgroup_limits() {
        Some(limits) if limits.total_memory > 0 => host.min(limits.free_memory),
        _ => host,
    }
}

/// Settles the process's threads before any exist (unless the user set these variables):
/// - `RAYON_NUM_THREADS`, to the count candle and rayon would pick themselves. candle 0.11 asks
///   for it on every matmul and, without the variable, re-reads `/proc/cpuinfo` each time
///   (`num_cpus::get_physical`): 4,111 reads for one 64-token SmolLM2 run, 5% of its decode
///   time in `perf`.
/// - `CANDLE_NUM_THREADS=1`: candle's quantized products get no pool of their own (its threads
///   spin between calls, a quarter of Gemma 3's decode time); Wick runs them on rayon's pool
///   in row slices instead (`families::row_split`).
///
/// Call it first thing in `main`: changing the environment is only sound while no other
/// thread can be reading it.
pub fn fix_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// The highest memory use of this process so far (VmHWM), bytes; `None` off Linux.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Free bytes on the disk that holds `path` (or its nearest existing parent), as a user without
/// special rights can use them (statvfs `f_bavail`).
pub fn free_disk(path: &Path) -> Option<u64> {
    let mut probe = path.to_path_buf();
    while !probe.exists() {
        probe = probe.parent()?.to_path_buf();
    }
    fs4::available_space(&probe).ok()
}

fn cpu_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut found: Vec<String> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        let checks = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("f16c", std::arch::is_x86_feature_detected!("f16c")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            (
                "avx512vnni",
                std::arch::is_x86_feature_detected!("avx512vnni"),
            ),
        ];
        found.extend(checks.iter().filter(|c| c.1).map(|c| c.0.to_string()));
    }
    #[cfg(target_arch = "aarch64")]
    found.push("neon".to_string());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let info = SystemInfo::read();
        assert!(info.total_memory > 0);
        assert!(info.available_memory <= info.total_memory);
        assert!(info.logical_cores >= 1);
        assert_eq!(info.devices.first().map(|d| d.id.as_str()), Some("cpu"));
        assert!(free_disk(Path::new("/definitely/not/here")).is_some());
        if cfg!(target_os = "linux") {
            assert!(peak_rss().is_some_and(|b| b > 1 << 20));
        }
    }
}
