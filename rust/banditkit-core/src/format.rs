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
            Source::F8(v) => put(out, v.iter().map(|x| x.to_le_bytes())),
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

/// Row i of the full matrix: columns j < i from the packed rows above (entry (j, i)), columns
/// j >= i from packed row i. Row by row keeps the writes sequential.
fn write_packed_sym(out: &mut [u8], packed: &[f64], d: usize, scale: f64) {
    let start = |i: usize| i * (2 * d - i + 1) / 2;
    for (i, row) in out.chunks_exact_mut(8 * d).enumerate() {
        let (below, rest) = row.split_at_mut(8 * i);
        put(
            below,
            (0..i).map(|j| (scale * packed[start(j) + i - j]).to_le_bytes()),
        );
        let own = &packed[start(i)..start(i) + d - i];
        if scale == 1.0 {
            put(rest, own.iter().map(|x| x.to_le_bytes()));
        } else {
            put(rest, own.iter().map(|x| (scale * x).to_le_bytes()));
        }
    }
}

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
        for a in &self.arrays {
            let (block, tail) = rest.split_at_mut(8 * a.data.len());
            a.data.write(block);
            rest = tail;
        }
        let body = self.len - CRC_LEN;
        let crc = crc32fast::hash(&out[..body]);
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
    if crc32fast::hash(body) != crc {
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
