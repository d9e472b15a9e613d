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
use std::mem::MaybeUninit;

pub const MAGIC: [u8; 4] = *b"BKIT";
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 12;
const CRC_LEN: usize = 4;
/// Far above any real model, far below what would let a forged length allocate memory.
const MAX_METADATA: usize = 1 << 24;
/// Metadata is a few levels deep; a forged file cannot recurse further.
const MAX_DEPTH: usize = 16;

/// The running CRC-32 of part of a file (see [`ArrayView::copy_blocks`]).
pub type Crc = crc32fast::Hasher;

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
    /// Several sources one after the other (e.g. one matrix per arm), all of one dtype.
    Concat(Vec<Source<'a>>),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::F8(v) => v.len(),
            Source::I8(v) => v.len(),
            Source::U64(v) => v.len(),
            Source::Concat(parts) => parts.iter().map(Source::len).sum(),
        }
    }

    fn dtype(&self) -> Option<DType> {
        match self {
            Source::F8(_) => Some(DType::F8),
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
            Source::Concat(parts) => parts.iter().try_for_each(Source::check),
            _ => Ok(()),
        }
    }

    /// Writes the numbers `from .. from + out.len() / 8` of a leaf (not `Concat`) as
    /// little-endian bytes.
    fn write_leaf(&self, out: &mut [MaybeUninit<u8>], from: usize) {
        let range = from..from + out.len() / 8;
        match self {
            Source::F8(v) => write_f64s(out, &v[range]),
            Source::I8(v) => put(out, v[range].iter().map(|x| x.to_le_bytes())),
            Source::U64(v) => put(out, v[range].iter().map(|&x| (x as i64).to_le_bytes())),
            Source::Concat(_) => unreachable!("leaves only"),
        }
    }
}

fn put(out: &mut [MaybeUninit<u8>], words: impl Iterator<Item = [u8; 8]>) {
    for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
        for (dst, b) in chunk.iter_mut().zip(w) {
            dst.write(b);
        }
    }
}

/// `src` into `out` (same length); afterwards `out` is initialised.
fn put_bytes(out: &mut [MaybeUninit<u8>], src: &[u8]) {
    assert_eq!(out.len(), src.len());
    // SAFETY: both slices are valid for `src.len()` bytes and cannot overlap (`out` is a
    // unique borrow); MaybeUninit<u8> has the layout of u8.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), out.as_mut_ptr().cast::<u8>(), src.len()) }
}

/// `out` as bytes, once every byte of it has been written.
///
/// # Safety
/// Every element of `out` must be initialised.
unsafe fn written(out: &[MaybeUninit<u8>]) -> &[u8] {
    // SAFETY: initialised per the caller; MaybeUninit<u8> has the layout of u8.
    unsafe { std::slice::from_raw_parts(out.as_ptr().cast::<u8>(), out.len()) }
}

/// `v` as little-endian bytes into `out` (`out.len() == 8 * v.len()`): one memcpy on
/// little-endian machines.
fn write_f64s(out: &mut [MaybeUninit<u8>], v: &[f64]) {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: any f64 is 8 initialised bytes, the slice covers exactly `v`'s memory, and
        // u8 has no alignment requirement; on a little-endian machine they are the LE bytes.
        let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), 8 * v.len()) };
        put_bytes(out, bytes);
    }
    #[cfg(not(target_endian = "little"))]
    put(out, v.iter().map(|x| x.to_le_bytes()));
}

/// Pieces of this size are checksummed while still in cache (right after being written or
/// copied), and are the unit of parallel work.
const PIECE: usize = 1 << 16;

/// Inputs from this size are written/checksummed on several threads.
const PARALLEL_MIN: usize = 1 << 20;

fn hasher_of(data: &[u8]) -> crc32fast::Hasher {
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    h
}

/// CRC-32 of `data` (the value of `zlib.crc32`): big inputs in pieces on several threads,
/// combined exactly.
fn crc32(data: &[u8]) -> u32 {
    if data.len() < PARALLEL_MIN {
        return crc32fast::hash(data);
    }
    use rayon::prelude::*;
    let parts: Vec<crc32fast::Hasher> = data.par_chunks(4 * PIECE).map(hasher_of).collect();
    combine(crc32fast::Hasher::new(), parts)
}

fn combine(mut h: crc32fast::Hasher, parts: Vec<crc32fast::Hasher>) -> u32 {
    for p in &parts {
        h.combine(p);
    }
    h.finalize()
}

/// One array to write: its name, shape and numbers.
#[derive(Debug, Clone)]
pub struct Array<'a> {
    pub name: &'a str,
    pub shape: Vec<usize>,
    pub data: Source<'a>,
}

impl<'a> Array<'a> {
    pub fn new(name: &'a str, shape: Vec<usize>, data: Source<'a>) -> Self {
        Array { name, shape, data }
    }
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

    /// Writes the whole file into `out` (exactly [`Encoder::len`] bytes). The CRC is computed
    /// piece by piece right after each piece is written (still in cache), the pieces in
    /// parallel for big files, and the pieces' CRCs combined in file order.
    pub fn write_into(&self, out: &mut [u8]) {
        // SAFETY: &mut [u8] -> &mut [MaybeUninit<u8>] (same layout), and only initialised
        // bytes are written through it.
        let uninit = unsafe {
            std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<MaybeUninit<u8>>(), out.len())
        };
        self.write_into_uninit(uninit);
    }

    /// [`Encoder::write_into`] into memory that need not be initialised (a new Python `bytes`
    /// object): every byte of `out` is written, so nothing has to be zeroed first.
    pub fn write_into_uninit(&self, out: &mut [MaybeUninit<u8>]) {
        assert_eq!(out.len(), self.len, "output buffer of the wrong length");
        let body = self.len - CRC_LEN;
        let (head, mut rest) = out[..body].split_at_mut(self.head.len());
        put_bytes(head, &self.head);
        // SAFETY: `head` was written just above.
        let head_crc = hasher_of(unsafe { written(head) });
        // Every leaf source cut into pieces, each with its block of the output.
        type Piece<'s, 'o> = (&'s Source<'s>, usize, &'o mut [MaybeUninit<u8>]);
        let mut pieces: Vec<Piece<'_, '_>> = Vec::new();
        fn collect<'s, 'o>(
            src: &'s Source<'_>,
            rest: &mut &'o mut [MaybeUninit<u8>],
            pieces: &mut Vec<Piece<'s, 'o>>,
        ) {
            if let Source::Concat(parts) = src {
                parts.iter().for_each(|p| collect(p, rest, pieces));
                return;
            }
            let (block, tail) = std::mem::take(rest).split_at_mut(8 * src.len());
            *rest = tail;
            for (i, piece) in block.chunks_mut(PIECE).enumerate() {
                pieces.push((src, i * PIECE / 8, piece));
            }
        }
        for a in &self.arrays {
            collect(&a.data, &mut rest, &mut pieces);
        }
        // The arrays fill the body exactly (their lengths were summed into `self.len`), so
        // no byte is left unwritten.
        assert!(rest.is_empty());
        let write = |(s, from, block): Piece<'_, '_>| {
            s.write_leaf(block, from);
            // SAFETY: write_leaf writes every byte of its block.
            hasher_of(unsafe { written(block) })
        };
        let parts: Vec<crc32fast::Hasher> = if self.len >= PARALLEL_MIN {
            use rayon::prelude::*;
            pieces.into_par_iter().map(write).collect()
        } else {
            pieces.into_iter().map(write).collect()
        };
        let crc = combine(head_crc, parts);
        put_bytes(&mut out[body..], &crc.to_le_bytes());
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
    /// The array cut into `k` equal blocks (e.g. one packed matrix per arm) as float64
    /// vectors, with the array's CRC state for [`Document::verify`]: each piece is checked
    /// finite and checksummed right after being copied, while in cache; big arrays in
    /// parallel. `None` if it is not float64, does not split into `k` blocks or holds a
    /// non-finite number (the caller names the array).
    pub fn copy_blocks(&self, k: usize) -> Option<(Vec<Vec<f64>>, crc32fast::Hasher)> {
        use rayon::prelude::*;
        if self.dtype != DType::F8 {
            return None;
        }
        if k == 0 || self.bytes.is_empty() {
            let ok = k > 0 || self.bytes.is_empty();
            return ok.then(|| (vec![Vec::new(); k], crc32fast::Hasher::new()));
        }
        if self.bytes.len() % (8 * k) != 0 {
            return None;
        }
        let read = |bytes: &[u8]| {
            let mut v = Vec::with_capacity(bytes.len() / 8);
            let mut h = crc32fast::Hasher::new();
            for piece in bytes.chunks(PIECE) {
                let at = v.len();
                extend_f64s(&mut v, piece);
                if !crate::contextual::kernels::all_finite(&v[at..]) {
                    return None;
                }
                h.update(piece);
            }
            Some((v, h))
        };
        let block = self.bytes.len() / k;
        let parts: Option<Vec<(Vec<f64>, crc32fast::Hasher)>> = if self.bytes.len() >= PARALLEL_MIN
        {
            self.bytes.par_chunks_exact(block).map(read).collect()
        } else {
            self.bytes.chunks_exact(block).map(read).collect()
        };
        let mut h = crc32fast::Hasher::new();
        let blocks = parts?
            .into_iter()
            .map(|(v, part)| {
                h.combine(&part);
                v
            })
            .collect();
        Some((blocks, h))
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

/// A decoded file: class name, the class's metadata fields (in file order, without "format",
/// "class" and "arrays") and the arrays in table order.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    pub class: String,
    pub fields: Vec<(String, Value)>,
    pub arrays: Vec<ArrayView<'a>>,
    /// Header, metadata and padding: the bytes before the arrays.
    head: &'a [u8],
    /// The CRC the file ends with.
    crc: u32,
}

impl<'a> Document<'a> {
    /// Checks the file's CRC, for a document from [`decode_unverified`]. `hashed` holds the
    /// CRC state of arrays already checksummed while being read ([`ArrayView::copy_blocks`]),
    /// by name; the other bytes are checksummed here.
    pub fn verify(&self, hashed: &[(&str, crc32fast::Hasher)]) -> Result<(), FormatError> {
        let mut h = hasher_of(self.head);
        for a in &self.arrays {
            match hashed.iter().find(|(name, _)| *name == a.name) {
                Some((_, part)) => h.combine(part),
                None if a.bytes.len() >= PARALLEL_MIN => h.combine(
                    &crc32fast::Hasher::new_with_initial_len(crc32(a.bytes), a.bytes.len() as u64),
                ),
                None => h.update(a.bytes),
            }
        }
        if h.finalize() != self.crc {
            return fail("corrupted or truncated banditkit file (checksum mismatch)");
        }
        Ok(())
    }

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
    header(data)?;
    let body = &data[..data.len() - CRC_LEN];
    let crc = u32::from_le_bytes(data[body.len()..].try_into().expect("4 bytes"));
    if crc32(body) != crc {
        return fail("corrupted or truncated banditkit file (checksum mismatch)");
    }
    decode_unverified(data)
}

/// [`decode`] without the CRC check, which the caller must make with [`Document::verify`]
/// before using anything it built from the document (reading the arrays can checksum them
/// on the way, while they are in cache). Every structural check is made; a failure is
/// reported as a checksum mismatch if the CRC does not match (the likelier cause).
pub fn decode_unverified(data: &[u8]) -> Result<Document<'_>, FormatError> {
    structure(data).map_err(|e| {
        let body = &data[..data.len().saturating_sub(CRC_LEN)];
        let crc = data
            .get(body.len()..)
            .and_then(|c| c.try_into().ok())
            .map(u32::from_le_bytes);
        if data.len() >= HEADER_LEN + CRC_LEN && crc != Some(crc32(body)) {
            FormatError("corrupted or truncated banditkit file (checksum mismatch)".into())
        } else {
            e
        }
    })
}

fn structure(data: &[u8]) -> Result<Document<'_>, FormatError> {
    let (version, meta_len) = header(data)?;
    let body = &data[..data.len() - CRC_LEN];
    let crc = u32::from_le_bytes(data[body.len()..].try_into().expect("4 bytes"));
    let (entries, class) = metadata(data, version, meta_len)?;
    let mut offset = padded(HEADER_LEN + meta_len);
    if offset > body.len() || body[HEADER_LEN + meta_len..offset].iter().any(|&b| b != 0) {
        return fail("corrupted banditkit file (padding)");
    }
    let head = &body[..offset];
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
        head,
        crc,
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
        let packed = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let arrays = vec![
            Array {
                name: "m",
                shape: vec![3, 3],
                data: Source::Concat(vec![Source::F8(&packed[..4]), Source::F8(&packed[4..])]),
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
        assert_eq!(m, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let (blocks, h) = doc.array("m").unwrap().copy_blocks(3).unwrap();
        assert_eq!(blocks, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
        let doc = decode_unverified(&bytes).unwrap();
        doc.verify(&[("m", h)]).unwrap();
        doc.verify(&[]).unwrap();
        let n: Vec<i64> = doc.array("n").unwrap().i64s().collect();
        assert_eq!(n, [7, 9]);
        assert_eq!(class_name(&bytes).unwrap(), "Test");
    }

    #[test]
    fn every_truncation_and_byte_flip_is_refused() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err());
            let deferred = decode_unverified(&bytes[..cut]).and_then(|doc| doc.verify(&[]));
            assert!(deferred.is_err());
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(decode(&b).is_err(), "flip at {i}");
            let deferred = decode_unverified(&b).and_then(|doc| doc.verify(&[]));
            assert!(deferred.is_err(), "flip at {i}");
        }
    }

    #[test]
    fn big_files_checksum_and_read_in_pieces() {
        // Several pieces per leaf, leaves of odd lengths, parallel paths: the CRC is the one of
        // the whole file, and a non-finite number in any piece is found.
        let a: Vec<f64> = (0..300_001).map(|i| (i as f64).sin()).collect();
        let b: Vec<u64> = (0..12_345).collect();
        let arrays = vec![
            Array {
                name: "a",
                shape: vec![3, 100_000],
                data: Source::Concat(vec![
                    Source::F8(&a[..150_000]),
                    Source::F8(&a[150_000..300_000]),
                ]),
            },
            Array {
                name: "b",
                shape: vec![12_345],
                data: Source::U64(&b),
            },
        ];
        let bytes = Encoder::new("Big", vec![], arrays).unwrap().to_vec();
        let n = bytes.len() - 4;
        assert_eq!(bytes[n..], crc32fast::hash(&bytes[..n]).to_le_bytes());
        assert_eq!(crc32(&bytes[..n]), crc32fast::hash(&bytes[..n]));
        let doc = decode(&bytes).unwrap();
        let (blocks, h) = doc.array("a").unwrap().copy_blocks(3).unwrap();
        assert_eq!(blocks.concat(), a[..300_000]);
        assert!(doc.array("a").unwrap().copy_blocks(7).is_none());
        doc.verify(&[("a", h.clone())]).unwrap();
        let mut bad = bytes.clone();
        bad[n - 100] ^= 1; // in "b", checksummed by verify itself
        let doc = decode_unverified(&bad).unwrap();
        let (_, h) = doc.array("a").unwrap().copy_blocks(3).unwrap();
        assert!(doc.verify(&[("a", h)]).is_err());
        bad[n - 100] ^= 1;
        let at = 8 * 250_007 + (bytes.len() - 8 * (300_000 + 12_345) - 4); // a[250_007]
        bad[at..at + 8].copy_from_slice(&f64::NAN.to_le_bytes());
        assert!(decode_unverified(&bad).unwrap().arrays[0]
            .copy_blocks(3)
            .is_none());
        bad[at..at + 8].copy_from_slice(&bytes[at..at + 8]);
        bad[n / 2] ^= 1; // in "a", checksummed while copied
        let doc = decode_unverified(&bad).unwrap();
        let (_, h) = doc.array("a").unwrap().copy_blocks(3).unwrap();
        assert!(doc.verify(&[("a", h)]).is_err());
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

    /// "median (fastest)" of `n` runs (a loaded machine only ever adds time).
    fn fastest(n: usize, mut f: impl FnMut()) -> String {
        let mut t: Vec<_> = (0..n)
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed()
            })
            .collect();
        t.sort();
        format!("{:?} ({:?})", t[n / 2], t[0])
    }

    /// `cargo test --profile dev-release -p banditkit-core --lib timing -- --ignored --nocapture`
    /// LinUCB d = 387, 3 arms as saved: six packed 387 x 387 matrices (3.6 MB).
    #[test]
    #[ignore]
    fn breakdown() {
        let d = 387;
        let packed: Vec<f64> = (0..d * (d + 1) / 2).map(|i| i as f64).collect();
        let arrays = vec![Array {
            name: "m",
            shape: vec![6, d * (d + 1) / 2],
            data: Source::Concat((0..6).map(|_| Source::F8(&packed)).collect()),
        }];
        let enc = Encoder::new("T", vec![], arrays).unwrap();
        let mut file = vec![0u8; enc.len()];
        let src = vec![1u8; enc.len()];
        let mut out = vec![0u8; enc.len()];
        println!("file {} bytes", enc.len());
        println!("memcpy {}", fastest(101, || out.copy_from_slice(&src)));
        // Into new memory, as loading must: allocation and first touch (page faults) included.
        println!(
            "memcpy into a new Vec {}",
            fastest(101, || assert!(src.to_vec()[7] == 1))
        );
        let sixths =
            |f: &[u8]| -> Vec<Vec<u8>> { f.chunks(f.len() / 6).map(<[u8]>::to_vec).collect() };
        println!(
            "memcpy into 6 new Vecs {}",
            fastest(101, || assert!(sixths(&src).len() > 5))
        );
        println!(
            "crc one thread {}",
            fastest(101, || assert!(crc32fast::hash(&out) != 1))
        );
        println!("crc {}", fastest(101, || assert!(crc32(&out) != 1)));
        println!("encode {}", fastest(101, || enc.write_into(&mut file)));
        println!(
            "decode container only {}",
            fastest(101, || assert!(decode(&file).is_ok()))
        );
        let decode_time = fastest(101, || {
            let doc = decode_unverified(&file).unwrap();
            let (_, h) = doc.arrays[0].copy_blocks(6).unwrap();
            doc.verify(&[("m", h)]).unwrap();
        });
        println!("decode, copy out and verify {decode_time}");
        let doc = decode(&file).unwrap();
        println!(
            "copy_blocks {}",
            fastest(101, || assert!(doc.arrays[0].copy_blocks(6).is_some()))
        );
    }
}
