//! The one way Wick reads a GGUF header. candle's reader bounds its counts and lengths by the
//! file, but still divides by `general.alignment` (a file may say 0) and leaves each tensor's
//! element count and byte size to be multiplied later, where a lying shape overflows. So the
//! alignment is checked first, by a scan of the metadata that allocates nothing, and every
//! tensor's size and end offset is computed checked before anyone uses them.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, TensorInfo};

use crate::error::{Result, WickError};

/// Metadata values nest (arrays of arrays); candle reads this deep, so the scan does too.
const MAX_DEPTH: u32 = 64;

/// Reads a GGUF header: metadata and tensor infos, not the tensors. Any value that would make a
/// later step divide by zero or overflow is an [`WickError::InvalidGguf`] here.
pub fn read(mut reader: impl Read + Seek, path: &Path) -> Result<Content> {
    let invalid = |reason: String| WickError::InvalidGguf {
        path: path.to_path_buf(),
        reason,
    };
    let start = reader
        .stream_position()
        .map_err(|e| WickError::io(path, e))?;
    // The scan walks the metadata the way candle will: a header it cannot walk is refused here,
    // so that candle never reads one whose alignment was not seen.
    match alignment(&mut reader) {
        Ok(Some(0)) => return Err(invalid("general.alignment is 0".into())),
        Ok(Some(a)) if !a.is_power_of_two() => {
            return Err(invalid(format!(
                "general.alignment is {a}, not a power of two"
            )))
        }
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(invalid("its header is truncated".into()))
        }
        Err(err) => return Err(invalid(format!("its header is corrupt ({err})"))),
    }
    reader
        .seek(SeekFrom::Start(start))
        .map_err(|e| WickError::io(path, e))?;
    // candle appends a backtrace to its message when RUST_BACKTRACE is set: the first line is
    // the message.
    let content = Content::read(&mut reader)
        .map_err(|e| invalid(e.to_string().lines().next().unwrap_or_default().to_string()))?;
    for (name, info) in &content.tensor_infos {
        tensor_end(&content, info)
            .ok_or_else(|| invalid(format!("tensor `{name}` has an impossible size or offset")))?;
    }
    Ok(content)
}

/// The bytes a tensor's data takes, or `None` when its shape overflows or does not fill whole
/// blocks of its type.
pub fn tensor_bytes(info: &TensorInfo) -> Option<u64> {
    let elems = info
        .shape
        .dims()
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))?;
    let dtype = info.ggml_dtype;
    let block = dtype.block_size() as u64;
    if block == 0 || elems % block != 0 {
        return None;
    }
    (elems / block).checked_mul(dtype.type_size() as u64)
}

/// Where a tensor's data ends in the file.
pub fn tensor_end(content: &Content, info: &TensorInfo) -> Option<u64> {
    tensor_bytes(info)?
        .checked_add(info.offset)?
        .checked_add(content.tensor_data_offset)
}

/// Checks that every tensor lies inside a file of `file_len` bytes (a truncated download).
pub fn check_tensors_within(content: &Content, file_len: u64, path: &Path) -> Result<()> {
    let needed = content
        .tensor_infos
        .values()
        .filter_map(|info| tensor_end(content, info))
        .max()
        .unwrap_or(0);
    if needed > file_len {
        return Err(WickError::InvalidGguf {
            path: path.to_path_buf(),
            reason: format!(
                "the file is truncated: {file_len} bytes, but its tensors need {needed}"
            ),
        });
    }
    Ok(())
}

/// `general.alignment` as the file gives it, found by walking the metadata without keeping it.
/// `Ok(None)` when the file does not set it; `Err` for a header too broken to walk.
fn alignment(reader: &mut impl Read) -> std::io::Result<Option<u64>> {
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic)?;
    // candle takes the magic in either byte order.
    if &magic != b"GGUF" && &magic != b"FUGG" {
        return Err(std::io::Error::other("not a GGUF file"));
    }
    let version = read_u32(reader)?;
    // Version 1 counted with 32-bit lengths; 2 and 3 with 64-bit ones.
    let wide = version >= 2;
    let _tensors = read_len(reader, wide)?;
    let kv_count = read_len(reader, wide)?;
    // A key may repeat; candle keeps the last value, so the scan does too.
    let mut found = None;
    for _ in 0..kv_count {
        const KEY: &[u8] = b"general.alignment";
        let key_len = read_len(reader, wide)?;
        // candle drops trailing NULs from a key: "general.alignment\0" is the same key.
        let is_alignment = if key_len <= 256 {
            let mut key = Vec::new();
            reader.take(key_len).read_to_end(&mut key)?;
            if key.len() as u64 != key_len {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            while key.last() == Some(&0) {
                key.pop();
            }
            key == KEY
        } else {
            skip(reader, key_len)?;
            false
        };
        let value_type = read_u32(reader)?;
        if is_alignment {
            found = match value_type {
                0 | 1 => Some(u64::from(read_u8(reader)?)),
                2 | 3 => Some(u64::from(u16::from_le_bytes(read_array(reader)?))),
                4 | 5 => Some(u64::from(read_u32(reader)?)),
                // Any other type: candle falls back to its default alignment.
                _ => {
                    skip_value(reader, value_type, wide, 0)?;
                    None
                }
            };
            continue;
        }
        skip_value(reader, value_type, wide, 0)?;
    }
    Ok(found)
}

/// Skips one metadata value of `value_type` (GGUF's numbering).
fn skip_value(
    reader: &mut impl Read,
    value_type: u32,
    wide: bool,
    depth: u32,
) -> std::io::Result<()> {
    match value_type {
        0 | 1 | 7 => skip(reader, 1),
        2 | 3 => skip(reader, 2),
        4..=6 => skip(reader, 4),
        10..=12 => skip(reader, 8),
        8 => {
            let len = read_len(reader, wide)?;
            skip(reader, len)
        }
        9 if depth < MAX_DEPTH => {
            let item_type = read_u32(reader)?;
            let len = read_len(reader, wide)?;
            let fixed = match item_type {
                0 | 1 | 7 => Some(1),
                2 | 3 => Some(2),
                4..=6 => Some(4),
                10..=12 => Some(8),
                _ => None,
            };
            match fixed {
                Some(size) => skip(
                    reader,
                    len.checked_mul(size)
                        .ok_or_else(|| std::io::Error::other("array too long"))?,
                ),
                None => {
                    // Strings or arrays: one at a time, each bounded by the file's end.
                    for _ in 0..len {
                        skip_value(reader, item_type, wide, depth + 1)?;
                    }
                    Ok(())
                }
            }
        }
        _ => Err(std::io::Error::other("unknown metadata type")),
    }
}

/// Skips `n` bytes; an error when the file ends first.
fn skip(reader: &mut impl Read, n: u64) -> std::io::Result<()> {
    let skipped = std::io::copy(&mut reader.take(n), &mut std::io::sink())?;
    if skipped < n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn read_len(reader: &mut impl Read, wide: bool) -> std::io::Result<u64> {
    if wide {
        Ok(u64::from_le_bytes(read_array(reader)?))
    } else {
        Ok(u64::from(read_u32(reader)?))
    }
}

fn read_u8(reader: &mut impl Read) -> std::io::Result<u8> {
    Ok(read_array::<1>(reader)?[0])
}

fn read_u32(reader: &mut impl Read) -> std::io::Result<u32> {
    Ok(u32::from_le_bytes(read_array(reader)?))
}

fn read_array<const N: usize>(reader: &mut impl Read) -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 header with the given metadata (already encoded) and no tensors.
    fn header(kvs: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend((kvs.len() as u64).to_le_bytes());
        for (key, value_type, value) in kvs {
            out.extend((key.len() as u64).to_le_bytes());
            out.extend(key.as_bytes());
            out.extend(value_type.to_le_bytes());
            out.extend(value);
        }
        out
    }

    fn string(text: &str) -> Vec<u8> {
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend(text.as_bytes());
        out
    }

    #[test]
    fn a_zero_alignment_is_an_error_not_a_division() {
        let path = Path::new("x.gguf");
        let strings: Vec<u8> = 8u32
            .to_le_bytes()
            .into_iter()
            .chain(2u64.to_le_bytes())
            .chain(string("a"))
            .chain(string("bc"))
            .collect();
        for (value_type, value, ok) in [
            (4u32, 0u32.to_le_bytes().to_vec(), false),
            (4, 3u32.to_le_bytes().to_vec(), false),
            (4, 32u32.to_le_bytes().to_vec(), true),
            (0, vec![0u8], false),
            (10, 0u64.to_le_bytes().to_vec(), true),
        ] {
            let bytes = header(&[
                ("general.architecture", 8, string("llama")),
                ("tokenizer.ggml.tokens", 9, strings.clone()),
                ("general.alignment", value_type, value.clone()),
            ]);
            let read = read(std::io::Cursor::new(bytes), path);
            assert_eq!(read.is_ok(), ok, "{value_type} {value:?}: {:?}", read.err());
            if let Err(err) = read {
                assert!(err.to_string().contains("alignment"), "{err}");
            }
        }
        // A truncated header is an error too, never a panic.
        let bytes = header(&[("general.alignment", 4, 0u32.to_le_bytes().to_vec())]);
        for cut in 0..bytes.len() {
            assert!(read(std::io::Cursor::new(&bytes[..cut]), path).is_err());
        }
    }
}
