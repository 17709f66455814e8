//! Reading a model folder's weights: `model.safetensors`, a sharded
//! `model.safetensors.index.json`, or (when nothing else exists) `pytorch_model.bin`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::error::{Result, WickError};
use crate::loading::Loading;

/// Every tensor of a checkpoint, by name.
#[derive(Debug)]
pub struct Weights {
    pub tensors: HashMap<String, Tensor>,
    /// The files they came from, for messages.
    pub files: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: HashMap<String, String>,
}

impl Weights {
    /// Reads the weights in `dir` into memory on `device`, telling `loading` how many bytes are
    /// read and stopping between chunks once it is cancelled.
    ///
    /// Files are read rather than memory-mapped: the engine has no unsafe code, and a corrupt or
    /// truncated file then fails here with a message instead of later with a fault.
    pub fn load(dir: &Path, device: &Device, loading: &Loading) -> Result<Self> {
        let files = weight_files(dir)?;
        let sizes: Vec<u64> = files
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| WickError::io(dir, e))?;
        loading.expect_bytes(sizes.iter().sum());
        let mut tensors = HashMap::new();
        for (file, &size) in files.iter().zip(&sizes) {
            let invalid = |e: candle_core::Error| {
                crate::cancel::from_candle(e, |e| WickError::InvalidModel {
                    path: file.clone(),
                    reason: format!("cannot read the weights: {e}"),
                })
            };
            if file.extension().is_some_and(|e| e == "bin") {
                check_pickle_sizes(file, size)?;
                for (name, t) in candle_core::pickle::read_all(file).map_err(invalid)? {
                    tensors.insert(name, t.to_device(device).map_err(invalid)?);
                }
                loading.read(size).map_err(invalid)?;
            } else {
                let bytes = read_watched(file, size, loading)?;
                tensors.extend(
                    candle_core::safetensors::load_buffer(&bytes, device).map_err(invalid)?,
                );
            }
        }
        // Old TensorFlow-era checkpoints name layer-norm parameters gamma/beta; transformers
        // renames them on load, and so do we.
        let tensors = tensors
            .into_iter()
            .map(|(name, t)| (renamed(name), t))
            .collect();
        Ok(Self { tensors, files })
    }

    /// Whether any tensor name starts with `prefix.` (e.g. `bert.`), i.e. the checkpoint was
    /// saved from a model with a head around the body.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        let dotted = format!("{prefix}.");
        self.tensors.keys().any(|k| k.starts_with(&dotted))
    }
}

/// Reads a whole file, reporting it to `loading` chunk by chunk (which may cancel the read).
fn read_watched(file: &Path, size: u64, loading: &Loading) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| WickError::io(file, e);
    let mut reader = std::fs::File::open(file).map_err(io)?;
    // The size comes from the file system; a file larger than memory is an error, not an abort.
    let mut bytes = Vec::new();
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    if bytes.try_reserve_exact(len).is_err() {
        return Err(WickError::DoesNotFit {
            what: file.display().to_string(),
            needed: size,
            available: crate::system::available_memory(),
        });
    }
    bytes.resize(len, 0);
    loading.read_exact(&mut reader, &mut bytes).map_err(|e| {
        crate::cancel::from_candle(e, |e| {
            WickError::io(file, std::io::Error::other(e.to_string()))
        })
    })?;
    Ok(bytes)
}

fn renamed(name: String) -> String {
    if let Some(stem) = name.strip_suffix("LayerNorm.gamma") {
        format!("{stem}LayerNorm.weight")
    } else if let Some(stem) = name.strip_suffix("LayerNorm.beta") {
        format!("{stem}LayerNorm.bias")
    } else {
        name
    }
}

/// The files holding a model's weights, preferring safetensors as transformers does.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| WickError::io(&index, e))?;
        let parsed: ShardIndex =
            serde_json::from_str(&text).map_err(|e| WickError::InvalidModel {
                path: index.clone(),
                reason: e.to_string(),
            })?;
        let shards: BTreeSet<&String> = parsed.weight_map.values().collect();
        return shards
            .into_iter()
            .map(|name| {
                let path = dir.join(name);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(WickError::InvalidModel {
                        path: index.clone(),
                        reason: format!("the shard {name} it lists is missing"),
                    })
                }
            })
            .collect();
    }
    let pickle = dir.join("pytorch_model.bin");
    if pickle.is_file() {
        return Ok(vec![pickle]);
    }
    Err(WickError::InvalidModel {
        path: dir.to_path_buf(),
        reason: "no weights: expected model.safetensors, model.safetensors.index.json or \
                 pytorch_model.bin"
            .into(),
    })
}

/// candle sizes each tensor of a pickle checkpoint from the shape the pickle states, before it
/// reads a byte: every tensor must fit in the file, counted with checked arithmetic, or a lying
/// shape asks for terabytes.
fn check_pickle_sizes(file: &Path, file_size: u64) -> Result<()> {
    let infos = candle_core::pickle::read_pth_tensor_info(file, false, None).map_err(|e| {
        WickError::InvalidModel {
            path: file.to_path_buf(),
            reason: format!("cannot read the weights: {e}"),
        }
    })?;
    for info in infos {
        let bytes = info
            .layout
            .shape()
            .dims()
            .iter()
            .try_fold(info.dtype.size_in_bytes() as u64, |acc, &d| {
                acc.checked_mul(d as u64)
            });
        if bytes.is_none_or(|b| b > file_size) {
            return Err(WickError::InvalidModel {
                path: file.to_path_buf(),
                reason: format!(
                    "tensor `{}` has shape {:?}, more than the {file_size}-byte file holds",
                    info.name,
                    info.layout.shape().dims()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensorflow_layer_norm_names_are_renamed() {
        assert_eq!(
            renamed("bert.embeddings.LayerNorm.gamma".into()),
            "bert.embeddings.LayerNorm.weight"
        );
        assert_eq!(renamed("cls.LayerNorm.beta".into()), "cls.LayerNorm.bias");
        assert_eq!(renamed("gamma".into()), "gamma");
    }

    #[test]
    fn missing_and_truncated_weights_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = Weights::load(dir.path(), &Device::Cpu, &Loading::quiet()).unwrap_err();
        assert!(err.to_string().contains("no weights"), "{err}");
        std::fs::write(
            dir.path().join("model.safetensors"),
            b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":",
        )
        .unwrap();
        let err = Weights::load(dir.path(), &Device::Cpu, &Loading::quiet()).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidModel);
        assert!(err.to_string().contains("cannot read the weights"), "{err}");
        std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            r#"{"weight_map":{"a":"model-00001-of-00002.safetensors"}}"#,
        )
        .unwrap();
        let err = Weights::load(dir.path(), &Device::Cpu, &Loading::quiet()).unwrap_err();
        assert!(err.to_string().contains("shard model-00001"), "{err}");
    }
}
