//! Uncompressed joblib pickles with inline array data.
//!
//! `joblib.dump` pickles each non-object numpy array as a `NumpyArrayWrapper` object (class,
//! `NEWOBJ`, state dict, `BUILD`) and then writes the array's raw bytes straight into the file:
//! one byte giving the alignment padding length `p`, `p` bytes of `0xff` (so the data starts on a
//! 16-byte boundary), then `prod(shape) × itemsize` bytes. `NumpyUnpickler` reads those bytes
//! right after the `BUILD` and carries on unpickling. A plain pickle VM stumbles into the raw bytes.
//!
//! [`splice`] finds each such `BUILD`, reads `shape` from the state dict's bytes and the itemsize
//! from the `numpy.dtype(...)` call the VM resolved, and removes the padding and raw bytes, so the
//! rest of the stream (where a payload may hide) is analysed as the unpickler would see it. If any
//! step does not match, it gives up and the caller keeps its `error` verdict.

use rampart_formats::pickle::{self as fmt_pickle, Arg, Limits};

/// Most arrays skipped in one stream.
const MAX_ARRAYS: usize = 4096;
/// How far before a `BUILD` the wrapper's `shape` key is looked for.
const SHAPE_WINDOW: usize = 4096;
/// Most candidate `BUILD`s tried (each costs one VM pass over the prefix).
const MAX_ATTEMPTS: usize = 256;
/// Most prefix bytes analysed over all attempts.
const MAX_ANALYSED: u64 = 256 << 20;
/// joblib's alignment.
const ALIGN: usize = 16;

/// The result of a successful splice.
#[derive(Debug)]
pub(crate) struct Spliced {
    /// The stream without the inline array bytes.
    pub(crate) stream: Vec<u8>,
    /// How many arrays were removed.
    pub(crate) arrays: usize,
    /// How many bytes were removed.
    pub(crate) bytes: u64,
}

/// Removes inline array data from a joblib stream; `None` when nothing could be matched.
pub(crate) fn splice(data: &[u8], limits: &Limits) -> Option<Spliced> {
    let mut out: Vec<u8> = Vec::new();
    let mut last = 0usize;
    let mut arrays = 0usize;
    let mut removed = 0u64;
    let mut x = last;
    let mut attempts = 0usize;
    let mut analysed = 0u64;
    while x < data.len() && arrays < MAX_ARRAYS {
        let Some(pad) = candidate(data, x) else {
            x += 1;
            continue;
        };
        attempts += 1;
        analysed = analysed.saturating_add(out.len() as u64 + (x - last) as u64);
        if attempts > MAX_ATTEMPTS || analysed > MAX_ANALYSED {
            break;
        }
        // The raw bytes start after the padding and hold `prod(shape) × itemsize` bytes.
        let start = x + 2 + pad;
        let mut prefix = out.clone();
        prefix.extend_from_slice(data.get(last..=x)?);
        let Some(bytes) = array_bytes(data, x, &prefix, limits) else {
            x += 1;
            continue;
        };
        let end = start.checked_add(usize::try_from(bytes).ok()?)?;
        if end > data.len() {
            x += 1;
            continue;
        }
        out = prefix;
        removed = removed.saturating_add((end - x - 1) as u64);
        arrays += 1;
        last = end;
        x = end;
    }
    if arrays == 0 {
        return None;
    }
    out.extend_from_slice(data.get(last..)?);
    Some(Spliced {
        stream: out,
        arrays,
        bytes: removed,
    })
}

/// At `x`: a `BUILD` followed by the padding-length byte `p` (1..=16) and `p` bytes of `0xff`.
/// Returns `p`.
fn candidate(data: &[u8], x: usize) -> Option<usize> {
    if *data.get(x)? != b'b' {
        return None;
    }
    let p = usize::from(*data.get(x + 1)?);
    // joblib pads so the data starts on a 16-byte boundary of the file; a stream that was
    // re-wrapped (or hand-made) may not keep that alignment, so only the padding shape is checked.
    if p == 0 || p > ALIGN {
        return None;
    }
    data.get(x + 2..x + 2 + p)?
        .iter()
        .all(|&b| b == 0xff)
        .then_some(p)
}

/// `prod(shape) × itemsize` for the wrapper whose `BUILD` is at `x`.
fn array_bytes(data: &[u8], x: usize, prefix: &[u8], limits: &Limits) -> Option<u64> {
    let window_start = x.saturating_sub(SHAPE_WINDOW);
    let window = data.get(window_start..x)?;
    // The last `shape` key, as SHORT_BINUNICODE / BINUNICODE.
    let key = window.windows(5).rposition(|w| w == b"shape")?;
    let mut pos = window_start + key + 5;
    let shape = parse_shape(data, &mut pos)?;
    let count = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
    // The itemsize: the last `numpy.dtype(str, ...)` call the VM saw before this BUILD.
    let analysis = fmt_pickle::analyze(prefix, limits);
    let code = analysis.calls.iter().rev().find_map(|c| {
        let name = c.callable.as_deref()?;
        if !name.ends_with(".dtype") {
            return None;
        }
        match c.args.first()? {
            Arg::Str(s) => Some(s.clone()),
            _ => None,
        }
    })?;
    count.checked_mul(itemsize(&code)?)
}

/// Reads the shape tuple after the `shape` key: optional memo put, then `K`/`M`/`J`/`LONG1`
/// integers closed by `TUPLE1/2/3`, or `MARK ... TUPLE`, or `EMPTY_TUPLE`.
fn parse_shape(data: &[u8], pos: &mut usize) -> Option<Vec<u64>> {
    let mut next = |n: usize| -> Option<&[u8]> {
        let s = data.get(*pos..*pos + n)?;
        *pos += n;
        Some(s)
    };
    let mut dims = Vec::new();
    let mut marked = false;
    loop {
        let op = *next(1)?.first()?;
        match op {
            b'q' => {
                next(1)?;
            }
            b'r' => {
                next(4)?;
            }
            0x94 => {}
            b'(' => marked = true,
            b')' => return Some(Vec::new()),
            b'K' => dims.push(u64::from(*next(1)?.first()?)),
            b'M' => {
                let b = next(2)?;
                dims.push(u64::from(u16::from_le_bytes([*b.first()?, *b.get(1)?])));
            }
            b'J' => {
                let b = next(4)?;
                let v = i32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?]);
                dims.push(u64::try_from(v).ok()?);
            }
            0x8a => {
                let n = usize::from(*next(1)?.first()?);
                if n > 8 {
                    return None;
                }
                let b = next(n)?;
                let mut buf = [0u8; 8];
                buf.get_mut(..n)?.copy_from_slice(b);
                dims.push(u64::from_le_bytes(buf));
            }
            0x85 if dims.len() == 1 && !marked => return Some(dims),
            0x86 if dims.len() == 2 && !marked => return Some(dims),
            0x87 if dims.len() == 3 && !marked => return Some(dims),
            b't' if marked => return Some(dims),
            _ => return None,
        }
        if dims.len() > 64 {
            return None;
        }
    }
}

/// Itemsize of a numpy dtype constructor string such as `f8`, `<i4`, `U5`, `V16`, `b1`, `M8`.
fn itemsize(code: &str) -> Option<u64> {
    let code = code.trim_start_matches(['<', '>', '|', '=']);
    let code = code.split('[').next()?;
    let mut chars = code.chars();
    let kind = chars.next()?;
    let n: u64 = chars.as_str().parse().ok()?;
    match kind {
        'U' => n.checked_mul(4),
        'b' | 'i' | 'u' | 'f' | 'c' | 'S' | 'a' | 'V' | 'm' | 'M' | '?' => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn itemsizes_and_shapes() {
        assert_eq!(itemsize("f8"), Some(8));
        assert_eq!(itemsize("<U5"), Some(20));
        assert_eq!(itemsize("O8"), None);
        let mut pos = 0;
        assert_eq!(
            parse_shape(b"q\x03K\x02K\x03\x86", &mut pos),
            Some(vec![2, 3])
        );
        let mut pos = 0;
        assert_eq!(
            parse_shape(b"(K\x01M\x00\x01J\x02\x00\x00\x00t", &mut pos),
            Some(vec![1, 256, 2])
        );
        let mut pos = 0;
        assert_eq!(parse_shape(b"h\x03", &mut pos), None);
    }
}
