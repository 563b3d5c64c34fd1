//! The raw storage records of a legacy (pre-1.6) PyTorch stream.
//!
//! After its five pickles, `torch.save` writes, for each key of the storage-key list (the fifth
//! pickle), an 8-byte little-endian element count followed by `count × element size` raw bytes.
//! The element size comes from the storage type named in the model pickle's persistent ids
//! (`('storage', torch.FloatStorage, '0', 'cpu', 4)`). [`storages_end`] walks those records with
//! 8-byte reads only, so whatever follows them can be judged without reading the tensor data.

use std::collections::HashMap;

use rampart_formats::pickle::{Analysis, Arg};
use rampart_formats::source::Source;

/// Most storage keys walked.
const MAX_KEYS: usize = 1_000_000;
/// Largest storage-key list pickle read.
const MAX_KEYS_PICKLE: u64 = 16 << 20;

/// Where the storage records end, `Ok(None)` when the layout is not one this walker understands,
/// or `Err` when the records run past the end of the file.
pub(crate) fn storages_end(src: &dyn Source, analysis: &Analysis) -> Result<Option<u64>, String> {
    let Some(keys_pickle) = analysis.pickles.get(4).filter(|p| p.complete) else {
        return Ok(None);
    };
    let len = keys_pickle.end.saturating_sub(keys_pickle.start);
    let Ok(bytes) = src.read_vec(keys_pickle.start, len, MAX_KEYS_PICKLE) else {
        return Ok(None);
    };
    let Some(keys) = string_list(&bytes) else {
        return Ok(None);
    };
    let mut sizes: HashMap<&str, u64> = HashMap::new();
    for pid in &analysis.persistent_ids {
        if let [Arg::Str(kind), Arg::Global(ty), Arg::Str(key), ..] = pid.id.as_slice()
            && kind == "storage"
            && let Some(size) = element_size(ty)
        {
            sizes.insert(key.as_str(), size);
        }
    }
    let mut pos = keys_pickle.end;
    for key in &keys {
        let Some(&elem) = sizes.get(key.as_str()) else {
            return Ok(None);
        };
        let mut count = [0u8; 8];
        src.read_exact_at(pos, &mut count)
            .map_err(|_| format!("storage `{key}` record truncated at offset {pos}"))?;
        let bytes = u64::from_le_bytes(count)
            .checked_mul(elem)
            .and_then(|b| b.checked_add(8))
            .ok_or_else(|| format!("storage `{key}` size overflows at offset {pos}"))?;
        pos = pos
            .checked_add(bytes)
            .filter(|&end| end <= src.len())
            .ok_or_else(|| format!("storage `{key}` data runs past the end of the file"))?;
    }
    Ok(Some(pos))
}

/// The strings of a pickled list of strings (`]`, `(`, string opcodes, memo puts, `e`/`a`, `.`).
fn string_list(bytes: &[u8]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let s = bytes.get(*pos..pos.checked_add(n)?)?;
        *pos += n;
        Some(s)
    };
    loop {
        let op = *take(&mut pos, 1)?.first()?;
        match op {
            0x80 | b'q' => {
                take(&mut pos, 1)?;
            }
            b'r' => {
                take(&mut pos, 4)?;
            }
            b']' | b'(' | 0x94 | b'e' | b'a' => {}
            b'X' => {
                let n = take(&mut pos, 4)?;
                let n = u32::from_le_bytes([*n.first()?, *n.get(1)?, *n.get(2)?, *n.get(3)?]);
                let s = take(&mut pos, usize::try_from(n).ok()?)?;
                out.push(String::from_utf8_lossy(s).into_owned());
            }
            0x8c => {
                let n = usize::from(*take(&mut pos, 1)?.first()?);
                out.push(String::from_utf8_lossy(take(&mut pos, n)?).into_owned());
            }
            b'.' => return (pos == bytes.len() && out.len() <= MAX_KEYS).then_some(out),
            _ => return None,
        }
    }
}

fn element_size(ty: &str) -> Option<u64> {
    let name = ty.rsplit('.').next()?;
    Some(match name {
        "DoubleStorage" | "LongStorage" | "ComplexFloatStorage" => 8,
        "FloatStorage" | "IntStorage" => 4,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "CharStorage" | "ByteStorage" | "BoolStorage" | "QUInt8Storage" | "QInt8Storage" => 1,
        "ComplexDoubleStorage" => 16,
        "QInt32Storage" => 4,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lists() {
        assert_eq!(
            string_list(b"\x80\x02]q\x00(X\x01\x00\x00\x000q\x01X\x01\x00\x00\x001q\x02e."),
            Some(vec!["0".to_owned(), "1".to_owned()])
        );
        assert_eq!(string_list(b"\x80\x02]q\x00."), Some(vec![]));
        assert_eq!(string_list(b"\x80\x02]K\x01a."), None);
        assert_eq!(element_size("torch.FloatStorage"), Some(4));
        assert_eq!(element_size("torch.Nope"), None);
    }
}
