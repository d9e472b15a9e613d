//! The banditkit file container (docs/format.md), the twin of `python/banditkit/python/_format.py`:
//! the same document gives the same bytes on both sides.
//!
//! ```text
//! magic "BKIT" | u16 version | u16 reserved (0) | u32 metadata length      (little-endian)
//! metadata: one msgpack map {"format", "class", <fields...>, "arrays": [[name, dtype, shape]]}
//! zero padding to a multiple of 8 bytes
//! the arrays in table order, raw little-endian float64 ("f8") / int64 ("i8"), C order
//! CRC-32 (IEEE) of every byte before it, u32
//! ```
//!
//! Only the container lives here; what each class stores is the bindings' business. Arrays are
//! written straight into a caller's buffer ([`Encoder::write_into`]) and read as byte views of
//! the input ([`ArrayView`]), so a model costs one copy each way plus the CRC.
use rmpv::Value;
use std::fmt;

pub const MAGIC: [u8; 4] = *b"BKIT";
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 12;
const CRC_LEN: usize = 4;
/// Far above any real model, far below what would let a forged length allocate memory.
const MAX_METADATA: usize = 1 << 24;
/// Metadata is a few levels deep; a forged file cannot recurse further.
const MAX_DEPTH: usize = 16;

/// A file that cannot be loaded; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

fn fail<T>(msg: impl Into<String>) -> Result<T, FormatError> {
    Err(FormatError(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F8,
    I8,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F8 => "f8",
            DType::I8 => "i8",
        }
    }
}

/// Where an array's numbers come from when writing.
#[derive(Debug, Clone)]
pub enum Source<'a> {
    F8(&'a [f64]),
    I8(&'a [i64]),
    /// Counters, written as int64 (values above `i64::MAX` are refused by [`Encoder::new`]).
    U64(&'a [u64]),
    /// A full `d x d` symmetric matrix, from its packed upper triangle (row by row, as
    /// `contextual::kernels`) times `scale`.
    PackedSym {
        packed: &'a [f64],
        d: usize,
        scale: f64,
    },
    /// Several sources one after the other (e.g. one matrix per arm), all of one dtype.
    Concat(Vec<Source<'a>>),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::F8(v) => v.len(),
            Source::I8(v) => v.len(),
            Source::U64(v) => v.len(),
            Source::PackedSym { d, .. } => d * d,
            Source::Concat(parts) => parts.iter().map(Source::len).sum(),
        }
    }

    fn dtype(&self) -> Option<DType> {
        match self {
            Source::F8(_) | Source::PackedSym { .. } => Some(DType::F8),
            Source::I8(_) | Source::U64(_) => Some(DType::I8),
            Source::Concat(parts) => {
                let mut kinds = parts.iter().map(Source::dtype);
                let first = kinds.next().unwrap_or(Some(DType::F8))?;
                kinds.all(|k| k == Some(first)).then_some(first)
            }
        }
    }

    fn check(&self) -> Result<(), FormatError> {
        match self {
            Source::U64(v) if v.iter().any(|&x| x > i64::MAX as u64) => {
                fail("a counter is too large to save")
            }
            Source::PackedSym { packed, d, .. } if packed.len() != d * (d + 1) / 2 => {
                fail("packed matrix of the wrong length")
            }
            Source::Concat(parts) => parts.iter().try_for_each(Source::check),
            _ => Ok(()),
        }
    }

    /// Writes the numbers as little-endian bytes; `out.len() == 8 * self.len()`.
    fn write(&self, out: &mut [u8]) {
        match self {
            Source::F8(v) => write_f64s(out, v),
            Source::I8(v) => put(out, v.iter().map(|x| x.to_le_bytes())),
            Source::U64(v) => put(out, v.iter().map(|&x| (x as i64).to_le_bytes())),
            Source::PackedSym { packed, d, scale } => write_packed_sym(out, packed, *d, *scale),
            Source::Concat(parts) => {
                let mut rest = out;
                for p in parts {
                    let (head, tail) = rest.split_at_mut(8 * p.len());
                    p.write(head);
                    rest = tail;
                }
            }
        }
    }
}

fn put(out: &mut [u8], words: impl Iterator<Item = [u8; 8]>) {
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&w);
    }
}

/// Side of the square tiles in which a triangle is mirrored (both tiles stay in cache).
const TILE: usize = 32;

/// `v` as little-endian bytes into `out` (`out.len() == 8 * v.len()`): one memcpy on
/// little-endian machines.
fn write_f64s(out: &mut [u8], v: &[f64]) {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: any f64 is 8 initialised bytes, the slice covers exactly `v`'s memory, and
        // u8 has no alignment requirement; on a little-endian machine they are the LE bytes.
        let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), 8 * v.len()) };
        out.copy_from_slice(bytes);
    }
    #[cfg(not(target_endian = "little"))]
    put(out, v.iter().map(|x| x.to_le_bytes()));
}

/// The full matrix from its packed upper triangle (times `scale`): each packed row is copied
/// into place, then the lower triangle is filled tile by tile: a tile of the upper triangle is
/// read from contiguous packed segments into a small buffer and written back transposed as
/// contiguous row segments, so both sides stream.
fn write_packed_sym(out: &mut [u8], packed: &[f64], d: usize, scale: f64) {
    let start = |i: usize| i * (2 * d - i + 1) / 2;
    let mut scaled = Vec::new();
    for i in 0..d {
        let own = &packed[start(i)..start(i) + d - i];
        let dst = &mut out[8 * (i * d + i)..8 * (i + 1) * d];
        if scale == 1.0 {
            write_f64s(dst, own);
        } else {
            scaled.clear();
            scaled.extend(own.iter().map(|x| scale * x));
            write_f64s(dst, &scaled);
        }
    }
    let mut tile = [[0.0f64; TILE]; TILE]; // tile[j - bj][i - bi] = entry (j, i), j < i
    let mut row = [0.0f64; TILE];
    for bi in (0..d).step_by(TILE) {
        let ie = (bi + TILE).min(d);
        for bj in (0..=bi).step_by(TILE) {
            let je = (bj + TILE).min(ie);
            for j in bj..je {
                let lo = bi.max(j + 1);
                if lo < ie {
                    let seg = &packed[start(j) + lo - j..start(j) + ie - j];
                    tile[j - bj][lo - bi..ie - bi].copy_from_slice(seg);
                }
            }
            for i in bi..ie {
                let hi = je.min(i);
                if hi <= bj {
                    continue;
                }
                for j in bj..hi {
                    row[j - bj] = scale * tile[j - bj][i - bi];
                }
                write_f64s(
                    &mut out[8 * (i * d + bj)..8 * (i * d + hi)],
                    &row[..hi - bj],
                );
            }
        }
    }
}

/// CRC-32 of `data`, in two halves on two threads for big inputs (combined exactly).
fn crc32(data: &[u8]) -> u32 {
    if data.len() < PARALLEL_CRC_MIN {
        return crc32fast::hash(data);
    }
    let (a, b) = data.split_at(data.len() / 2);
    let (mut ha, hb) = rayon::join(
        || {
            let mut h = crc32fast::Hasher::new();
            h.update(a);
            h
        },
        || {
            let mut h = crc32fast::Hasher::new();
            h.update(b);
            h
        },
    );
    ha.combine(&hb);
    ha.finalize()
}

/// Inputs from this size are checksummed on two threads.
const PARALLEL_CRC_MIN: usize = 1 << 20;

/// One array to write: its name, shape and numbers.
#[derive(Debug, Clone)]
pub struct Array<'a> {
    pub name: &'a str,
    pub shape: Vec<usize>,
    pub data: Source<'a>,
}

fn padded(n: usize) -> usize {
    (n + 7) & !7
}

/// A file ready to be written: header and metadata encoded, arrays borrowed.
#[derive(Debug)]
pub struct Encoder<'a> {
    head: Vec<u8>,
    arrays: Vec<Array<'a>>,
    len: usize,
}

impl<'a> Encoder<'a> {
    /// `fields` are the class's metadata entries, in order (after "format" and "class").
    pub fn new(
        class: &str,
        fields: Vec<(&str, Value)>,
        arrays: Vec<Array<'a>>,
    ) -> Result<Self, FormatError> {
        let mut table = Vec::with_capacity(arrays.len());
        let mut body = 0usize;
        for a in &arrays {
            let Some(dtype) = a.data.dtype() else {
                return fail(format!("array {} mixes dtypes", a.name));
            };
            if a.shape.iter().product::<usize>() != a.data.len() {
                return fail(format!("array {} does not fill its shape", a.name));
            }
            a.data.check()?;
            let shape = a.shape.iter().map(|&n| Value::from(n as u64)).collect();
            table.push(Value::Array(vec![
                Value::from(a.name),
                Value::from(dtype.name()),
                Value::Array(shape),
            ]));
            body += 8 * a.data.len();
        }
        let mut map = Vec::with_capacity(fields.len() + 3);
        map.push((Value::from("format"), Value::from(FORMAT_VERSION)));
        map.push((Value::from("class"), Value::from(class)));
        map.extend(fields.into_iter().map(|(k, v)| (Value::from(k), v)));
        map.push((Value::from("arrays"), Value::Array(table)));
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&[0; 4]);
        rmpv::encode::write_value(&mut head, &Value::Map(map))
            .map_err(|e| FormatError(format!("cannot encode metadata: {e}")))?;
        let meta_len = head.len() - HEADER_LEN;
        if meta_len > MAX_METADATA {
            return fail("metadata too large");
        }
        head[8..12].copy_from_slice(&(meta_len as u32).to_le_bytes());
        head.resize(padded(head.len()), 0);
        let len = head.len() + body + CRC_LEN;
        Ok(Encoder { head, arrays, len })
    }

    /// The file's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the whole file into `out` (exactly [`Encoder::len`] bytes).
    pub fn write_into(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.len, "output buffer of the wrong length");
        let (head, mut rest) = out.split_at_mut(self.head.len());
        head.copy_from_slice(&self.head);
        // Every leaf source with its block of the output: big files write them in parallel.
        let mut leaves: Vec<(&Source<'_>, &mut [u8])> = Vec::new();
        fn collect<'s, 'o>(
            src: &'s Source<'_>,
            rest: &mut &'o mut [u8],
            leaves: &mut Vec<(&'s Source<'s>, &'o mut [u8])>,
        ) {
            if let Source::Concat(parts) = src {
                parts.iter().for_each(|p| collect(p, rest, leaves));
            } else {
                let (block, tail) = std::mem::take(rest).split_at_mut(8 * src.len());
                leaves.push((src, block));
                *rest = tail;
            }
        }
        for a in &self.arrays {
            collect(&a.data, &mut rest, &mut leaves);
        }
        if self.len >= PARALLEL_CRC_MIN {
            use rayon::prelude::*;
            leaves.into_par_iter().for_each(|(s, block)| s.write(block));
        } else {
            leaves.into_iter().for_each(|(s, block)| s.write(block));
        }
        let body = self.len - CRC_LEN;
        let crc = crc32(&out[..body]);
        out[body..].copy_from_slice(&crc.to_le_bytes());
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.len];
        self.write_into(&mut out);
        out
    }
}

/// One array of a decoded file: a view of its bytes in the input.
#[derive(Debug, Clone)]
pub struct ArrayView<'a> {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: &'a [u8],
}

impl ArrayView<'_> {
    pub fn f64s(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        self.bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
    }

    pub fn i64s(&self) -> impl ExactSizeIterator<Item = i64> + '_ {
        self.bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
    }
}

impl ArrayView<'_> {
    /// The `k` blocks of a `(k, d, d)` float64 array, each an exactly symmetric matrix of finite
    /// numbers, as packed upper triangles (rows of the triangle one after the other; the
    /// layout of `contextual::kernels`). `None` names no culprit: a non-finite number or an
    /// asymmetry (the caller says which array). Blocks are read in parallel.
    pub fn packed_symmetric(&self, k: usize, d: usize) -> Option<Vec<Vec<f64>>> {
        use rayon::prelude::*;
        if self.dtype != DType::F8 || self.shape != [k, d, d] {
            return None;
        }
        if k == 0 || d == 0 {
            return Some(vec![Vec::new(); k]);
        }
        self.bytes
            .par_chunks_exact(8 * d * d)
            .map(|block| read_packed_sym(block, d))
            .collect()
    }
}

/// Appends the little-endian float64s of `bytes` to `dst`: one memcpy on little-endian
/// machines.
pub fn extend_f64s(dst: &mut Vec<f64>, bytes: &[u8]) {
    let n = bytes.len() / 8;
    #[cfg(target_endian = "little")]
    {
        dst.reserve(n);
        // SAFETY: the spare capacity holds at least `n` f64s (reserved just above); copying
        // bytes needs no alignment; every bit pattern is a valid f64, and on a little-endian
        // machine these bytes are the values; `set_len` covers exactly what was written.
        unsafe {
            let end = dst.as_mut_ptr().add(dst.len()).cast::<u8>();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), end, 8 * n);
            dst.set_len(dst.len() + n);
        }
    }
    #[cfg(not(target_endian = "little"))]
    dst.extend(
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))),
    );
}

fn read_f64(bytes: &[u8], i: usize) -> f64 {
    f64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

/// One `d x d` block: its upper triangle packed, if it is finite and exactly (bitwise)
/// symmetric. The lower triangle is compared tile by tile, like [`write_packed_sym`].
fn read_packed_sym(block: &[u8], d: usize) -> Option<Vec<f64>> {
    let start = |i: usize| i * (2 * d - i + 1) / 2;
    let mut packed = Vec::with_capacity(d * (d + 1) / 2);
    for i in 0..d {
        let row = &block[8 * (i * d + i)..8 * (i + 1) * d];
        extend_f64s(&mut packed, row);
    }
    if !packed.iter().all(|v| v.is_finite()) {
        return None;
    }
    for bi in (0..d).step_by(TILE) {
        let ie = (bi + TILE).min(d);
        for bj in (0..=bi).step_by(TILE) {
            for j in bj..(bj + TILE).min(ie) {
                for i in bi.max(j + 1)..ie {
                    let lower = read_f64(block, i * d + j);
                    if lower.to_bits() != packed[start(j) + i - j].to_bits() {
                        return None;
                    }
                }
            }
        }
    }
    Some(packed)
}

/// A decoded file: class name, the class's metadata fields (in file order, without "format",
/// "class" and "arrays") and the arrays in table order.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    pub class: String,
    pub fields: Vec<(String, Value)>,
    pub arrays: Vec<ArrayView<'a>>,
}

impl<'a> Document<'a> {
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn array(&self, name: &str) -> Option<&ArrayView<'a>> {
        self.arrays.iter().find(|a| a.name == name)
    }
}

/// (version, metadata length), refusing what is not a banditkit file of a known version.
fn header(data: &[u8]) -> Result<(u16, usize), FormatError> {
    if data.len() < HEADER_LEN + CRC_LEN || data[..4] != MAGIC {
        return fail("not a banditkit file (no BKIT header)");
    }
    let version = u16::from_le_bytes([data[4], data[5]]);
    let reserved = u16::from_le_bytes([data[6], data[7]]);
    let meta_len = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes")) as usize;
    if version > FORMAT_VERSION {
        return fail(format!(
            "format version {version} is newer than this banditkit reads (up to {FORMAT_VERSION}); \
             upgrade banditkit to load this file"
        ));
    }
    if version == 0 || reserved != 0 {
        return fail(format!(
            "corrupted banditkit file (bad header: version {version})"
        ));
    }
    if meta_len > MAX_METADATA || HEADER_LEN + meta_len > data.len() - CRC_LEN {
        return fail("corrupted or truncated banditkit file (metadata length)");
    }
    Ok((version, meta_len))
}

/// The metadata map's entries and the class name.
fn metadata(
    data: &[u8],
    version: u16,
    meta_len: usize,
) -> Result<(Vec<(Value, Value)>, String), FormatError> {
    let mut rd = &data[HEADER_LEN..HEADER_LEN + meta_len];
    let meta = rmpv::decode::read_value_with_max_depth(&mut rd, MAX_DEPTH)
        .map_err(|e| FormatError(format!("corrupted banditkit file (metadata: {e})")))?;
    if !rd.is_empty() {
        return fail("corrupted banditkit file (metadata: extra data)");
    }
    let Value::Map(entries) = meta else {
        return fail("corrupted banditkit file (metadata is not a map)");
    };
    let get = |k: &str| entries.iter().find(|(key, _)| key.as_str() == Some(k));
    if get("format").and_then(|(_, v)| v.as_u64()) != Some(version as u64) {
        return fail("corrupted banditkit file (format version mismatch)");
    }
    let Some(class) = get("class").and_then(|(_, v)| v.as_str()) else {
        return fail("corrupted banditkit file (no class name)");
    };
    let class = class.to_string();
    if entries.iter().any(|(k, _)| k.as_str().is_none()) {
        return fail("corrupted banditkit file (metadata keys must be strings)");
    }
    Ok((entries, class))
}

/// The class a file names (header and metadata only; [`decode`] checks the rest).
pub fn class_name(data: &[u8]) -> Result<String, FormatError> {
    let (version, meta_len) = header(data)?;
    Ok(metadata(data, version, meta_len)?.1)
}

/// The document in `data`, after every check the container can make: magic, version, CRC,
/// metadata, the array table against the file's length.
pub fn decode(data: &[u8]) -> Result<Document<'_>, FormatError> {
    let (version, meta_len) = header(data)?;
    let body = &data[..data.len() - CRC_LEN];
    let crc = u32::from_le_bytes(data[body.len()..].try_into().expect("4 bytes"));
    if crc32(body) != crc {
        return fail("corrupted or truncated banditkit file (checksum mismatch)");
    }
    let (entries, class) = metadata(data, version, meta_len)?;
    let mut offset = padded(HEADER_LEN + meta_len);
    if offset > body.len() || body[HEADER_LEN + meta_len..offset].iter().any(|&b| b != 0) {
        return fail("corrupted banditkit file (padding)");
    }
    let mut fields = Vec::with_capacity(entries.len());
    let mut table = None;
    for (k, v) in entries {
        match k.as_str().expect("checked") {
            "format" | "class" => {}
            "arrays" => table = Some(v),
            key => fields.push((key.to_string(), v)),
        }
    }
    let Some(Value::Array(table)) = table else {
        return fail("corrupted banditkit file (no array table)");
    };
    let mut arrays: Vec<ArrayView<'_>> = Vec::with_capacity(table.len());
    for entry in &table {
        let (name, dtype, shape) = table_entry(entry)?;
        if arrays.iter().any(|a| a.name == name) {
            return fail(format!(
                "corrupted banditkit file (array table entry {entry})"
            ));
        }
        let count = shape
            .iter()
            .try_fold(1usize, |n, &s| n.checked_mul(s))
            .and_then(|n| n.checked_mul(8));
        let end = count.and_then(|c| offset.checked_add(c));
        let Some(end) = end.filter(|&e| e <= body.len()) else {
            return fail(format!("truncated banditkit file (array '{name}')"));
        };
        arrays.push(ArrayView {
            name,
            dtype,
            shape,
            bytes: &body[offset..end],
        });
        offset = end;
    }
    if offset != body.len() {
        return fail("corrupted banditkit file (trailing bytes)");
    }
    Ok(Document {
        class,
        fields,
        arrays,
    })
}

fn table_entry(entry: &Value) -> Result<(String, DType, Vec<usize>), FormatError> {
    let bad = || {
        FormatError(format!(
            "corrupted banditkit file (array table entry {entry})"
        ))
    };
    let Value::Array(parts) = entry else {
        return Err(bad());
    };
    let [name, dtype, Value::Array(dims)] = parts.as_slice() else {
        return Err(bad());
    };
    let name = name.as_str().ok_or_else(bad)?.to_string();
    let dtype = match dtype.as_str() {
        Some("f8") => DType::F8,
        Some("i8") => DType::I8,
        _ => return Err(bad()),
    };
    let shape = dims
        .iter()
        .map(|d| d.as_u64().and_then(|n| usize::try_from(n).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(bad)?;
    Ok((name, dtype, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let packed = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 3 x 3
        let arrays = vec![
            Array {
                name: "m",
                shape: vec![3, 3],
                data: Source::PackedSym {
                    packed: &packed,
                    d: 3,
                    scale: 2.0,
                },
            },
            Array {
                name: "n",
                shape: vec![2],
                data: Source::U64(&[7, 9]),
            },
        ];
        let fields = vec![(
            "arms",
            Value::Array(vec![Value::from("a"), Value::from(-3)]),
        )];
        Encoder::new("Test", fields, arrays).unwrap().to_vec()
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        assert_eq!(&bytes[..4], b"BKIT");
        assert_eq!(bytes.len() % 4, 0);
        let doc = decode(&bytes).unwrap();
        assert_eq!(doc.class, "Test");
        assert_eq!(doc.fields.len(), 1);
        let m: Vec<f64> = doc.array("m").unwrap().f64s().collect();
        assert_eq!(m, [2.0, 4.0, 6.0, 4.0, 8.0, 10.0, 6.0, 10.0, 12.0]);
        let n: Vec<i64> = doc.array("n").unwrap().i64s().collect();
        assert_eq!(n, [7, 9]);
        assert_eq!(class_name(&bytes).unwrap(), "Test");
    }

    #[test]
    fn every_truncation_and_byte_flip_is_refused() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err());
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(decode(&b).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn symmetric_blocks_round_trip_across_tiles() {
        for d in [1, 2, 31, 32, 33, 70] {
            let p = d * (d + 1) / 2;
            let packed: Vec<f64> = (0..p).map(|i| (i as f64).sin() * 1e3).collect();
            let mut out = vec![0u8; 8 * d * d];
            write_packed_sym(&mut out, &packed, d, 0.5);
            let full: Vec<f64> = out
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let expect = crate::contextual::kernels::unpack(&packed, d);
            let halves: Vec<f64> = expect.iter().map(|v| 0.5 * v).collect();
            assert_eq!(full, halves, "d = {d}");
            let back = read_packed_sym(&out, d).unwrap();
            assert_eq!(back, crate::contextual::kernels::pack(&halves, d));
            if d > 1 {
                let mut bad = out.clone();
                bad[8 * d] ^= 1; // entry (1, 0): the lower triangle
                assert!(read_packed_sym(&bad, d).is_none(), "d = {d}");
            }
        }
    }

    #[test]
    fn newer_version_is_refused_by_name() {
        let mut bytes = sample();
        bytes[4] = 2;
        let n = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
        let err = decode(&bytes).unwrap_err();
        assert!(err.0.contains("format version 2 is newer"), "{err}");
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// The fastest of `n` runs (a loaded machine only ever adds time).
    fn fastest(n: usize, mut f: impl FnMut()) -> std::time::Duration {
        (0..n)
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap()
    }

    /// `cargo test --profile dev-release -p banditkit-core --lib timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn breakdown() {
        let d = 387;
        let packed: Vec<f64> = (0..d * (d + 1) / 2).map(|i| i as f64).collect();
        let sources = || {
            (0..6)
                .map(|_| Source::PackedSym {
                    packed: &packed,
                    d,
                    scale: 1.0,
                })
                .collect()
        };
        let arrays = vec![Array {
            name: "m",
            shape: vec![6, d, d],
            data: Source::Concat(sources()),
        }];
        let enc = Encoder::new("T", vec![], arrays).unwrap();
        let mut file = vec![0u8; enc.len()];
        let src = vec![1u8; enc.len()];
        let mut out = vec![0u8; enc.len()];
        println!("memcpy {:?}", fastest(30, || out.copy_from_slice(&src)));
        println!("crc {:?}", fastest(30, || assert!(crc32(&out) != 1)));
        let mut blocks = vec![0u8; 8 * 6 * d * d];
        let unpack = fastest(30, || {
            for m in blocks.chunks_exact_mut(8 * d * d) {
                write_packed_sym(m, &packed, d, 1.0);
            }
        });
        println!("unpack x6 {unpack:?}");
        println!("encode {:?}", fastest(30, || enc.write_into(&mut file)));
        let decode_time = fastest(30, || {
            let doc = decode(&file).unwrap();
            assert!(doc.arrays[0].packed_symmetric(6, d).is_some());
        });
        println!("decode {decode_time:?}");
        println!(
            "decode container only {:?}",
            fastest(30, || assert!(decode(&file).is_ok()))
        );
        let alloc = fastest(30, || {
            let v: Vec<Vec<f64>> = (0..6)
                .map(|i| vec![i as f64 + 1.0; d * (d + 1) / 2])
                .collect();
            assert!(v[5][7] > 0.0);
        });
        println!("allocate and fill the packed arrays {alloc:?}");
        let doc = decode(&file).unwrap();
        println!(
            "packed_symmetric {:?}",
            fastest(30, || assert!(doc.arrays[0]
                .packed_symmetric(6, d)
                .is_some()))
        );
    }
}
