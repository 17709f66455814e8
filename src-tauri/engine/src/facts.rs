//! What a model is, without loading it: format, architecture, tasks, parameters, files with
//! sizes, and whether it fits in memory. For a folder on disk, or for a Hub repo before anything
//! but its `config.json` (or the header of its GGUF file) is downloaded.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use ts_rs::TS;

use crate::error::{Result, WickError};
use crate::families::causal::gguf;
use crate::families::registry::{self, Described};
use crate::fit::{estimate, FitEstimate, FitRequest, ModelShape, Stored};
use crate::hub::{self, GgufVariant, HubClient, RepoFile};
use crate::quant::Quantization;

/// How much of a GGUF file is fetched to read its header before downloading it.
const GGUF_HEADER_BYTES: u64 = 24 << 20;

/// Everything `wick info` prints and the model picker shows.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ModelFacts {
    /// What the user named (`org/name`, a folder).
    pub source: String,
    /// The commit of a Hub repo.
    pub commit: Option<String>,
    /// Format, architecture and tasks; absent when the architecture is not supported.
    pub described: Option<Described>,
    /// Why it is not supported, when it is not.
    pub unsupported: Option<String>,
    pub shape: Option<ModelShape>,
    /// Every file of the model, with sizes.
    pub files: Vec<RepoFile>,
    /// The files a download fetches (Hub repos).
    pub to_fetch: Vec<String>,
    #[ts(type = "number")]
    pub download_bytes: u64,
    /// GGUF quantizations to pick from.
    pub gguf_variants: Vec<GgufVariant>,
    pub fit: FitEstimate,
}

/// Facts of a model folder or GGUF file on disk.
pub fn local_facts(path: &Path, quantization: Quantization, context: u64) -> Result<ModelFacts> {
    if !path.exists() {
        return Err(WickError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let files = local_files(path);
    let gguf_file = crate::families::registry::gguf_file(path);
    let (described, inputs) = match &gguf_file {
        Some(file) => {
            // One read of the header serves the description and the sizes.
            let reader = std::io::BufReader::new(
                std::fs::File::open(file).map_err(|e| WickError::io(file, e))?,
            );
            let content = crate::gguf_header::read(reader, file)?;
            let described =
                registry::describe_gguf(gguf::architecture_in(&content).unwrap_or_default());
            (described, gguf_fit_inputs(&content, &files))
        }
        None => {
            let config = read_json(&path.join("config.json"));
            (
                registry::describe(path),
                folder_fit_inputs(path, config.as_ref(), &files),
            )
        }
    };
    let FitInputs {
        stored,
        shape,
        tokenizer_bytes,
    } = inputs;
    let (described, unsupported) = split(described)?;
    let weight_bytes = weight_bytes(
        &files,
        gguf_file.as_deref().and_then(|f| f.file_name()?.to_str()),
    );
    let fit = fit_now(FitRequest {
        weight_bytes,
        stored,
        tokenizer_bytes,
        shape: shape.clone(),
        quantization,
        context,
    });
    Ok(ModelFacts {
        source: path.display().to_string(),
        commit: None,
        described,
        unsupported,
        shape,
        gguf_variants: hub::gguf_variants(&files),
        files,
        to_fetch: Vec::new(),
        download_bytes: 0,
        fit,
    })
}

/// What the fit estimate needs besides the weights' size and the request.
struct FitInputs {
    stored: Stored,
    shape: Option<ModelShape>,
    tokenizer_bytes: u64,
}

fn gguf_fit_inputs(
    content: &candle_core::quantized::gguf_file::Content,
    files: &[RepoFile],
) -> FitInputs {
    let (stored, shape, vocab_bytes) = gguf_facts(content);
    // A tokenizer.json beside the GGUF file is the one used.
    let json = file_size(files, "tokenizer.json");
    FitInputs {
        stored,
        shape,
        tokenizer_bytes: if json > 0 { json } else { vocab_bytes },
    }
}

fn folder_fit_inputs(
    dir: &Path,
    config: Option<&serde_json::Value>,
    files: &[RepoFile],
) -> FitInputs {
    let bytes = safetensors_bytes_per_param(dir)
        .or_else(|| config.and_then(config_bytes_per_param))
        .unwrap_or(4);
    FitInputs {
        stored: Stored::Dense {
            bytes_per_param: bytes,
        },
        shape: config.and_then(ModelShape::from_config),
        tokenizer_bytes: file_size(files, "tokenizer.json"),
    }
}

/// The fit estimate of a model already read by [`registry::detect`] (its config or GGUF header
/// is not read again): what a load checks before it starts.
pub fn fit_of(
    detected: &registry::Detected,
    quantization: Quantization,
    context: u64,
) -> FitEstimate {
    let files = local_files(&detected.path);
    let (inputs, gguf_name) = match &detected.stored {
        registry::Stored::Gguf { file, header } => (
            gguf_fit_inputs(header, &files),
            file.file_name().and_then(|n| n.to_str()),
        ),
        _ => (
            folder_fit_inputs(&detected.dir, Some(&detected.config), &files),
            None,
        ),
    };
    fit_now(FitRequest {
        weight_bytes: weight_bytes(&files, gguf_name),
        stored: inputs.stored,
        tokenizer_bytes: inputs.tokenizer_bytes,
        shape: inputs.shape,
        quantization,
        context,
    })
}

/// Facts of a Hub repo, from its file list, its `config.json` (fetched into the cache) or the
/// header of the chosen GGUF file (fetched into memory).
pub fn hub_facts(
    client: &HubClient,
    repo: &str,
    revision: &str,
    gguf_pick: Option<&str>,
    quantization: Quantization,
    context: u64,
) -> Result<ModelFacts> {
    let info = client.model_info(repo, revision)?;
    let commit = info.sha.clone().unwrap_or_else(|| revision.to_string());
    let variants = hub::gguf_variants(&info.files);
    // Facts are wanted even before a GGUF file is picked: the smallest stands in.
    let pick = gguf_pick.map(str::to_string).or_else(|| {
        let dense = info
            .files
            .iter()
            .any(|f| f.name.ends_with(".safetensors") || f.name == "pytorch_model.bin");
        (!dense && variants.len() > 1).then(|| variants[0].file.clone())
    });
    let to_fetch = hub::files_to_fetch(repo, &info.files, pick.as_deref())?;
    let download_bytes = to_fetch
        .iter()
        .map(|f| file_size(&info.files, f))
        .fold(0u64, u64::saturating_add);
    let gguf_name = to_fetch
        .iter()
        .find(|f| f.to_ascii_lowercase().ends_with(".gguf"));

    let (described, stored, shape, tokenizer_bytes) = match gguf_name {
        Some(name) => {
            let head = client.fetch_prefix(repo, &commit, name, GGUF_HEADER_BYTES)?;
            let content = crate::gguf_header::read(std::io::Cursor::new(head), Path::new(name))?;
            let described =
                registry::describe_gguf(gguf::architecture_in(&content).unwrap_or_default());
            let (stored, shape, vocab_bytes) = gguf_facts(&content);
            let json = if to_fetch.iter().any(|f| f == "tokenizer.json") {
                file_size(&info.files, "tokenizer.json")
            } else {
                0
            };
            (
                described,
                stored,
                shape,
                if json > 0 { json } else { vocab_bytes },
            )
        }
        None => {
            let config_dir = if to_fetch.iter().any(|f| f == "config.json") {
                let quiet = |_: hub::DownloadEvent| {};
                let never = std::sync::atomic::AtomicBool::new(false);
                Some(
                    client
                        .download(repo, &commit, &["config.json".to_string()], &quiet, &never)?
                        .snapshot,
                )
            } else {
                None
            };
            let config = config_dir
                .as_ref()
                .and_then(|d| read_json(&d.join("config.json")));
            let described = match &config_dir {
                Some(dir) => registry::describe(dir),
                None => Err(WickError::InvalidModel {
                    path: repo.into(),
                    reason: "the repo has no config.json".into(),
                }),
            }
            .map(|mut d| {
                if to_fetch.iter().any(|f| f.ends_with(".safetensors")) {
                    d.format = "safetensors".into();
                }
                d
            });
            let bytes = config
                .as_ref()
                .and_then(config_bytes_per_param)
                .unwrap_or(4);
            let shape = config.as_ref().and_then(ModelShape::from_config);
            (
                described,
                Stored::Dense {
                    bytes_per_param: bytes,
                },
                shape,
                file_size(&info.files, "tokenizer.json"),
            )
        }
    };
    let (described, unsupported) = split(described)?;
    let weight_bytes = weight_bytes(
        &info
            .files
            .iter()
            .filter(|f| to_fetch.contains(&f.name))
            .cloned()
            .collect::<Vec<_>>(),
        gguf_name.map(String::as_str),
    );
    let fit = fit_now(FitRequest {
        weight_bytes,
        stored,
        tokenizer_bytes,
        shape: shape.clone(),
        quantization,
        context,
    });
    Ok(ModelFacts {
        source: format!("{repo}@{revision}"),
        commit: info.sha,
        described,
        unsupported,
        shape,
        files: info.files,
        to_fetch,
        download_bytes,
        gguf_variants: variants,
        fit,
    })
}

/// The estimate against the memory free now.
fn fit_now(request: FitRequest) -> FitEstimate {
    estimate(&request, crate::system::available_memory())
}

/// An unsupported architecture is a fact to show, not a failure; other errors are.
fn split(described: Result<Described>) -> Result<(Option<Described>, Option<String>)> {
    match described {
        Ok(d) => Ok((Some(d), None)),
        Err(e @ WickError::UnsupportedArchitecture { .. }) => Ok((None, Some(e.to_string()))),
        Err(e) => Err(e),
    }
}

/// Parameters, shape and vocabulary size (as tokenizer bytes) from a GGUF header.
fn gguf_facts(
    content: &candle_core::quantized::gguf_file::Content,
) -> (Stored, Option<ModelShape>, u64) {
    let parameters: u64 = content
        .tensor_infos
        .values()
        .map(|t| t.shape.elem_count() as u64)
        .fold(0u64, u64::saturating_add);
    let vocab_bytes: u64 = content
        .metadata
        .get("tokenizer.ggml.tokens")
        .and_then(|t| t.to_vec().ok())
        .map_or(0, |tokens| {
            tokens
                .iter()
                .filter_map(|t| t.to_string().ok())
                // A token in tokenizer.json costs its text plus quotes, an id and punctuation.
                .map(|t| t.len() as u64 + 12)
                .sum()
        });
    (
        Stored::Gguf {
            parameters: Some(parameters),
        },
        ModelShape::from_gguf(content),
        vocab_bytes,
    )
}

/// Bytes per parameter of the first safetensors tensor (its header's `dtype`).
fn safetensors_bytes_per_param(dir: &Path) -> Option<u64> {
    let file = ["model.safetensors"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .or_else(|| {
            std::fs::read_dir(dir)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|e| e == "safetensors"))
        })?;
    let mut f = std::fs::File::open(file).ok()?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    // Read what is there, up to the length the file states (at most 100 MiB), rather than
    // allocating the stated length first.
    let len = u64::from_le_bytes(len).min(100 << 20);
    let mut header = Vec::new();
    f.take(len).read_to_end(&mut header).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    let dtype = header
        .as_object()?
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .find_map(|(_, v)| v.get("dtype")?.as_str().map(str::to_string))?;
    dtype_bytes(&dtype)
}

fn config_bytes_per_param(config: &serde_json::Value) -> Option<u64> {
    let dtype = config
        .get("torch_dtype")
        .or_else(|| config.get("dtype"))?
        .as_str()?;
    dtype_bytes(dtype)
}

fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype.to_ascii_lowercase().as_str() {
        "f32" | "float32" => 4,
        "f16" | "float16" | "bf16" | "bfloat16" => 2,
        "f64" | "float64" => 8,
        "i8" | "u8" | "int8" | "uint8" | "f8_e4m3" | "f8_e5m2" => 1,
        _ => return None,
    })
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn local_files(path: &Path) -> Vec<RepoFile> {
    let file = |name: String, p: &Path| RepoFile {
        name,
        size: p.metadata().ok().map(|m| m.len()),
        lfs_sha256: None,
    };
    if path.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return vec![file(name, path)];
    }
    // Hidden entries (`.git/`, Wick's `.wick-complete`) are not the model's.
    crate::hub::cache::files_under(path)
        .into_iter()
        .filter(|(name, _)| !name.starts_with('.'))
        .map(|(name, p)| file(name, &p))
        .collect()
}

fn file_size(files: &[RepoFile], name: &str) -> u64 {
    files
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.size)
        .unwrap_or(0)
}

/// Bytes of the weight files: the GGUF file when there is one, else the safetensors, else
/// `pytorch_model.bin`.
fn weight_bytes(files: &[RepoFile], gguf_name: Option<&str>) -> u64 {
    if let Some(name) = gguf_name {
        return file_size(files, name);
    }
    let top_level = |f: &&RepoFile| !f.name.contains('/');
    let safetensors: u64 = files
        .iter()
        .filter(top_level)
        .filter(|f| f.name.ends_with(".safetensors"))
        .filter_map(|f| f.size)
        .fold(0u64, u64::saturating_add);
    if safetensors > 0 {
        safetensors
    } else {
        file_size(files, "pytorch_model.bin")
    }
}

impl HubClient {
    /// The first `len` bytes of a file (a GGUF header), without saving it.
    pub fn fetch_prefix(
        &self,
        repo: &str,
        revision: &str,
        file: &str,
        len: u64,
    ) -> Result<Vec<u8>> {
        let meta = self.file_meta(repo, revision, file)?;
        self.with_retries(|| {
            let response = self.send("GET", &meta.location, 0)?;
            let response = self.check_status(response, repo, &format!("`{file}`"))?;
            let mut bytes = Vec::new();
            response
                .into_body()
                .into_reader()
                .take(len.min(meta.size))
                .read_to_end(&mut bytes)
                .map_err(|e| self.unavailable(format!("reading the start of {file}: {e}")))?;
            Ok(bytes)
        })
    }
}
