//! Graph snapshots (docs/spec.md §17; the layout and its reasons are decision 0015).
//!
//! A snapshot is one little-endian file: a 64-byte header (magic, format version, byte-order mark,
//! section count, file length, checksums of the header and of the section table), a table of
//! sections (kind, flags, offset, length, xxh3-64 checksum), then the sections, each 64-byte aligned:
//! metadata, tiers, the forward CSR, the three reverse CSRs, labels and embeddings. Loading maps the
//! file and uses the arrays in place after checking every checksum and the structure (ids in range,
//! offsets monotone, weights valid), so a bad file is an error naming what is wrong — never a crash,
//! never a silently different graph. Saving writes a temporary file beside the target, syncs it,
//! renames it over the target and syncs the directory: a crash leaves the old file or the new one.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use xxhash_rust::xxh3::xxh3_64;

use super::array::Plain;
use super::{Array, Csr, Embeddings, Graph, Labels, Tier};
use crate::error::{Error, Result};

/// The first eight bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"AXONALSN";
/// The format version this library writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Written as a native `u32`; read back as this value only with the byte order it was written in.
const BYTE_ORDER_MARK: u32 = 0x0A0B_0C0D;
const HEADER_LEN: usize = 64;
/// The header's checksum covers its bytes before this offset and is stored from it on.
const HEADER_SUM: usize = 56;
const ENTRY_LEN: usize = 32;
const ALIGN: u64 = 64;
const MAX_SECTIONS: u32 = 64;
/// Flag of a section entry: a reader that does not know its kind may skip it.
const OPTIONAL: u32 = 1;

/// What a section holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Kind {
    Meta = 1,
    Tiers = 2,
    ForwardOffsets = 3,
    ForwardTargets = 4,
    ForwardWeights = 5,
    // Reverse CSRs: 6 + 3 · tier + (0 offsets, 1 sources, 2 weights).
    LabelPresent = 15,
    LabelOffsets = 16,
    LabelText = 17,
    EmbeddingValues = 18,
    EmbeddingNorms = 19,
    // Optional: the embedding index (docs/spec.md §18) — its shape, then usearch's serialization.
    SimilarityMeta = 20,
    SimilarityIndex = 21,
}

/// The highest kind this library reads.
const LAST_KIND: u32 = Kind::SimilarityIndex as u32;

fn kind_name(kind: u32) -> String {
    const REVERSE: [&str; 3] = ["OFFSETS", "SOURCES", "WEIGHTS"];
    match kind {
        1 => "META".into(),
        2 => "TIERS".into(),
        3 => "FORWARD_OFFSETS".into(),
        4 => "FORWARD_TARGETS".into(),
        5 => "FORWARD_WEIGHTS".into(),
        6..=14 => {
            let (tier, part) = ((kind - 6) / 3, (kind - 6) % 3);
            format!("REVERSE_{}_{}", Tier::ALL[tier as usize].as_str().to_uppercase(), REVERSE[part as usize])
        }
        15 => "LABEL_PRESENT".into(),
        16 => "LABEL_OFFSETS".into(),
        17 => "LABEL_TEXT".into(),
        18 => "EMBEDDING_VALUES".into(),
        19 => "EMBEDDING_NORMS".into(),
        20 => "SIMILARITY_META".into(),
        21 => "SIMILARITY_INDEX".into(),
        other => format!("section kind {other}"),
    }
}

fn reverse_kind(tier: usize, part: u32) -> u32 {
    6 + 3 * tier as u32 + part
}

/// What a save wrote and how long it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SaveStats {
    /// Bytes written.
    pub bytes: u64,
    /// Time from opening the temporary file to the synced rename.
    pub elapsed: Duration,
    /// Of `elapsed`, the time spent waiting for the storage: syncing the file and the directory.
    pub synced: Duration,
}

fn error(path: &Path, message: impl Into<String>) -> Error {
    Error::Snapshot { path: path.to_path_buf(), message: message.into() }
}

/// The bytes of a slice of plain values.
fn bytes_of<T: Plain>(values: &[T]) -> &[u8] {
    // SAFETY: `Plain` values have no padding, so every byte is initialised.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), std::mem::size_of_val(values)) }
}

/// Save `graph` as version `version` to `path` atomically (temporary file, fsync, rename,
/// directory fsync).
pub(crate) fn save(
    graph: &Graph,
    version: u64,
    index: Option<&SavedIndex>,
    path: &Path,
) -> Result<SaveStats> {
    if cfg!(target_endian = "big") {
        return Err(error(path, "snapshots are little-endian; this host is big-endian"));
    }
    let started = std::time::Instant::now();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| error(path, "the path names no file"))?;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{}.tmp-{}-{unique}", name.to_string_lossy(), std::process::id()));
    let io = |what: &str, e: std::io::Error| error(path, format!("{what}: {e}"));
    let result = (|| {
        let file = File::create(&temp).map_err(|e| io(&format!("creating {}", temp.display()), e))?;
        let (bytes, file) = write(graph, version, index, file).map_err(|e| io("writing", e))?;
        let syncing = std::time::Instant::now();
        file.sync_all().map_err(|e| io("syncing", e))?;
        std::fs::rename(&temp, path).map_err(|e| io(&format!("renaming {} over it", temp.display()), e))?;
        // The rename is durable once the directory is.
        if let Ok(dir) = File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok((bytes, syncing.elapsed()))
    })();
    match result {
        Ok((bytes, synced)) => Ok(SaveStats { bytes, elapsed: started.elapsed(), synced }),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// The metadata section of `graph` saved as version `version`: node count, edge count, version,
/// embedding dimension (0: none), whether labels follow, and three reserved zeros.
fn meta(graph: &Graph, version: u64) -> [u64; 8] {
    [
        graph.node_count() as u64,
        graph.edge_count() as u64,
        version,
        graph.embedding_dim().map_or(0, |d| d as u64),
        graph.labels.is_some() as u64,
        0,
        0,
        0,
    ]
}

/// A serialized embedding index saved beside the graph (an optional section pair).
#[derive(Debug)]
pub(crate) struct SavedIndex {
    /// Neighbours per node it was built with.
    pub(crate) connectivity: usize,
    /// Vectors it holds.
    pub(crate) vectors: usize,
    /// Node ids below this may be in it (the saved graph's node count).
    pub(crate) covered: usize,
    /// usearch's serialization.
    pub(crate) bytes: Vec<u8>,
}

/// A saved index as loaded: its shape and its bytes, mapped (read in place by the engine).
#[derive(Debug, Clone)]
pub(crate) struct IndexImage {
    pub(crate) connectivity: usize,
    pub(crate) vectors: usize,
    pub(crate) covered: usize,
    pub(crate) bytes: Array<u8>,
}

/// The sections of `graph` after its metadata, in file order, with their flags.
fn sections<'g>(
    graph: &'g Graph,
    meta: &'g [u64; 8],
    index: Option<(&'g [u64; 8], &'g [u8])>,
) -> Vec<(u32, &'g [u8])> {
    let mut out: Vec<(u32, &[u8])> = vec![
        (Kind::Meta as u32, bytes_of(meta)),
        (Kind::Tiers as u32, bytes_of_tiers(&graph.tiers)),
        (Kind::ForwardOffsets as u32, bytes_of(&graph.forward.offsets)),
        (Kind::ForwardTargets as u32, bytes_of(&graph.forward.neighbours)),
        (Kind::ForwardWeights as u32, bytes_of(&graph.forward.weights)),
    ];
    for (t, csr) in graph.reverse.iter().enumerate() {
        out.push((reverse_kind(t, 0), bytes_of(&csr.offsets)));
        out.push((reverse_kind(t, 1), bytes_of(&csr.neighbours)));
        out.push((reverse_kind(t, 2), bytes_of(&csr.weights)));
    }
    if let Some(labels) = &graph.labels {
        out.push((Kind::LabelPresent as u32, bytes_of(&labels.present)));
        out.push((Kind::LabelOffsets as u32, bytes_of(&labels.offsets)));
        out.push((Kind::LabelText as u32, &labels.text));
    }
    if let Some(e) = &graph.embeddings {
        out.push((Kind::EmbeddingValues as u32, bytes_of(&e.values)));
        out.push((Kind::EmbeddingNorms as u32, bytes_of(&e.norms)));
    }
    if let Some((meta, bytes)) = index {
        out.push((Kind::SimilarityMeta as u32, bytes_of(meta)));
        out.push((Kind::SimilarityIndex as u32, bytes));
    }
    out
}

/// Sections an older reader may skip.
fn flags_of(kind: u32) -> u32 {
    if kind == Kind::SimilarityMeta as u32 || kind == Kind::SimilarityIndex as u32 { OPTIONAL } else { 0 }
}

fn bytes_of_tiers(tiers: &[Tier]) -> &[u8] {
    // SAFETY: `Tier` is `repr(u8)` with values 0, 1, 2: each is one initialised byte.
    unsafe { std::slice::from_raw_parts(tiers.as_ptr().cast(), tiers.len()) }
}

/// Write the whole file to `file` (not yet synced); returns its length and the file.
fn write(
    graph: &Graph,
    version: u64,
    index: Option<&SavedIndex>,
    file: File,
) -> std::io::Result<(u64, File)> {
    let meta = meta(graph, version);
    let index_meta =
        index.map(|i| [i.connectivity as u64, i.vectors as u64, i.covered as u64, 0, 0, 0, 0, 0]);
    let index = index_meta.as_ref().zip(index).map(|(m, i)| (m, i.bytes.as_slice()));
    let sections = sections(graph, &meta, index);
    let count = sections.len();
    let table_end = (HEADER_LEN + count * ENTRY_LEN) as u64;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    // Placeholders for the header and the table: written once the checksums are known.
    out.write_all(&vec![0u8; table_end as usize])?;
    let mut position = table_end;
    let mut table = Vec::with_capacity(count * ENTRY_LEN);
    for &(kind, bytes) in &sections {
        let aligned = position.div_ceil(ALIGN) * ALIGN;
        out.write_all(&[0u8; ALIGN as usize][..(aligned - position) as usize])?;
        position = aligned;
        out.write_all(bytes)?;
        let length = bytes.len() as u64;
        table.extend_from_slice(&kind.to_le_bytes());
        table.extend_from_slice(&flags_of(kind).to_le_bytes());
        table.extend_from_slice(&position.to_le_bytes());
        table.extend_from_slice(&length.to_le_bytes());
        table.extend_from_slice(&xxh3_64(bytes).to_le_bytes());
        position += length;
    }
    let mut header = [0u8; HEADER_LEN];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&BYTE_ORDER_MARK.to_le_bytes());
    header[16..20].copy_from_slice(&(count as u32).to_le_bytes());
    header[24..32].copy_from_slice(&position.to_le_bytes());
    header[32..40].copy_from_slice(&xxh3_64(&table).to_le_bytes());
    let header_checksum = xxh3_64(&header[..HEADER_SUM]);
    header[HEADER_SUM..].copy_from_slice(&header_checksum.to_le_bytes());
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header)?;
    file.write_all(&table)?;
    Ok((position, file))
}

/// One section as the table describes it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: u32,
    offset: u64,
    length: u64,
}

/// Load a snapshot: map, verify, and build a graph over the mapped arrays.
pub(crate) fn load(path: &Path) -> Result<Graph> {
    if cfg!(target_endian = "big") {
        return Err(error(path, "snapshots are little-endian; this host is big-endian"));
    }
    let file = File::open(path).map_err(|e| error(path, format!("opening: {e}")))?;
    let len = file.metadata().map_err(|e| error(path, format!("reading its size: {e}")))?.len();
    if len < HEADER_LEN as u64 {
        return Err(error(path, format!("truncated: {len} bytes, the header alone is {HEADER_LEN}")));
    }
    // SAFETY: the map is read-only. Snapshots are replaced by rename, never rewritten in place, so
    // the mapped file does not change under the graph; a host that truncates a live snapshot by
    // hand can fault, as with any mapped file.
    let map =
        Arc::new(unsafe { memmap2::Mmap::map(&file) }.map_err(|e| error(path, format!("mapping: {e}")))?);
    let bytes: &[u8] = &map;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    if bytes[0..8] != MAGIC {
        return Err(error(
            path,
            format!("not an Axonal snapshot: magic {:02x?}, expected {:02x?}", &bytes[0..8], MAGIC),
        ));
    }
    let version = u32_at(8);
    if version > FORMAT_VERSION {
        return Err(error(
            path,
            format!("format version {version} is newer than this library reads ({FORMAT_VERSION})"),
        ));
    }
    if version == 0 {
        return Err(error(path, "format version 0 does not exist"));
    }
    if u32_at(12) != BYTE_ORDER_MARK {
        return Err(error(
            path,
            format!("byte-order mark {:#010x}, expected {BYTE_ORDER_MARK:#010x}", u32_at(12)),
        ));
    }
    let header_checksum = xxh3_64(&bytes[..HEADER_SUM]);
    if header_checksum != u64_at(HEADER_SUM) {
        return Err(error(
            path,
            format!("header checksum {header_checksum:#018x}, expected {:#018x}", u64_at(HEADER_SUM)),
        ));
    }
    let stated = u64_at(24);
    if stated != len {
        return Err(error(
            path,
            format!("truncated or extended: the header says {stated} bytes, the file has {len}"),
        ));
    }
    let count = u32_at(16);
    if count > MAX_SECTIONS {
        return Err(error(
            path,
            format!("{count} sections, more than the {MAX_SECTIONS} a snapshot may have"),
        ));
    }
    let table_end = HEADER_LEN + count as usize * ENTRY_LEN;
    if table_end as u64 > len {
        return Err(error(path, format!("section table ends at byte {table_end}, past the file's {len}")));
    }
    let table = &bytes[HEADER_LEN..table_end];
    if xxh3_64(table) != u64_at(32) {
        return Err(error(
            path,
            format!("section table checksum {:#018x}, expected {:#018x}", xxh3_64(table), u64_at(32)),
        ));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(count as usize);
    let mut extents: Vec<(u64, u64)> = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        let at = HEADER_LEN + i * ENTRY_LEN;
        let (kind, flags, offset, length, checksum) =
            (u32_at(at), u32_at(at + 4), u64_at(at + 8), u64_at(at + 16), u64_at(at + 24));
        let name = kind_name(kind);
        let known = (1..=LAST_KIND).contains(&kind);
        if !known && flags & OPTIONAL == 0 {
            return Err(error(
                path,
                format!("section {i}: unknown kind {kind}, not marked optional (a newer writer?)"),
            ));
        }
        let end = offset.checked_add(length).filter(|&e| e <= len).ok_or_else(|| {
            error(
                path,
                format!(
                    "section {name} at offset {offset}, {length} bytes: runs past the file's {len} bytes"
                ),
            )
        })?;
        if offset < table_end as u64 || !offset.is_multiple_of(8) {
            return Err(error(
                path,
                format!("section {name}: offset {offset} is inside the header or not 8-byte aligned"),
            ));
        }
        let found = xxh3_64(&bytes[offset as usize..end as usize]);
        if found != checksum {
            return Err(error(
                path,
                format!(
                    "section {name} at offset {offset}, {length} bytes: checksum {found:#018x}, expected {checksum:#018x}"
                ),
            ));
        }
        if entries.iter().any(|e| e.kind == kind) {
            return Err(error(path, format!("section {name} appears twice")));
        }
        if known {
            entries.push(Entry { kind, offset, length });
        }
        extents.push((offset, end));
    }
    // Sections do not overlap, and every byte outside them (alignment padding) is zero: no byte of
    // the file goes unchecked.
    extents.sort_unstable();
    let mut covered = table_end as u64;
    for &(offset, end) in &extents {
        if offset < covered {
            return Err(error(path, format!("the section at offset {offset} overlaps the one before it")));
        }
        if let Some(i) = bytes[covered as usize..offset as usize].iter().position(|&b| b != 0) {
            return Err(error(
                path,
                format!(
                    "padding byte at offset {} is {:#04x}, expected 0",
                    covered as usize + i,
                    bytes[covered as usize + i]
                ),
            ));
        }
        covered = end;
    }
    if let Some(i) = bytes[covered as usize..].iter().position(|&b| b != 0) {
        return Err(error(
            path,
            format!("byte at offset {} past the last section is not 0", covered as usize + i),
        ));
    }
    Reader { path, map: &map, entries }.graph()
}

/// Reads a verified file's sections into a graph.
struct Reader<'a> {
    path: &'a Path,
    map: &'a Arc<memmap2::Mmap>,
    entries: Vec<Entry>,
}

impl Reader<'_> {
    fn entry(&self, kind: u32) -> Option<Entry> {
        self.entries.iter().copied().find(|e| e.kind == kind)
    }

    /// Section `kind` as `count` values of `T` (its length must be exactly that).
    fn array<T: Plain>(&self, kind: u32, count: u64, what: &str) -> Result<Array<T>> {
        let name = kind_name(kind);
        let entry = self.entry(kind).ok_or_else(|| error(self.path, format!("section {name} is missing")))?;
        let expected = count.checked_mul(std::mem::size_of::<T>() as u64);
        if expected != Some(entry.length) {
            return Err(error(
                self.path,
                format!(
                    "section {name} at offset {}: {} bytes, expected {} for {what}",
                    entry.offset,
                    entry.length,
                    expected.map_or_else(|| "more than fit".to_owned(), |e| e.to_string())
                ),
            ));
        }
        Array::mapped(self.map, entry.offset as usize, count as usize)
            .ok_or_else(|| error(self.path, format!("section {name} at offset {}: misaligned", entry.offset)))
    }

    fn invalid(&self, kind: u32, message: String) -> Error {
        error(self.path, format!("section {}: {message}", kind_name(kind)))
    }

    fn graph(&self) -> Result<Graph> {
        let meta: Array<u64> = self.array(Kind::Meta as u32, 8, "the metadata")?;
        let (n, m, origin_version, dim, has_labels) = (meta[0], meta[1], meta[2], meta[3], meta[4] != 0);
        if n >= u32::MAX as u64 {
            return Err(self.invalid(Kind::Meta as u32, format!("node count {n} exceeds {}", u32::MAX - 1)));
        }
        if m > u32::MAX as u64 {
            return Err(self.invalid(Kind::Meta as u32, format!("edge count {m} exceeds {}", u32::MAX)));
        }
        // Versions count batches from here on; this bound keeps the count far from overflowing.
        if origin_version > i64::MAX as u64 {
            return Err(
                self.invalid(Kind::Meta as u32, format!("version {origin_version} exceeds {}", i64::MAX))
            );
        }
        let what_n = format!("{n} nodes");
        let what_m = format!("{m} edges");
        let tier_bytes: Array<u8> = self.array(Kind::Tiers as u32, n, &what_n)?;
        let mut tiers = Vec::new();
        crate::memory::reserve(&mut tiers, n as usize, || format!("the tiers of {n} nodes"))?;
        let mut tier_counts = [0u32; 3];
        for (v, &b) in tier_bytes.iter().enumerate() {
            let tier = Tier::from_index(b as u32).ok_or_else(|| {
                self.invalid(Kind::Tiers as u32, format!("node {v} has tier {b}, expected 0, 1 or 2"))
            })?;
            tier_counts[tier.index()] += 1;
            tiers.push(tier);
        }
        let forward = Csr {
            offsets: self.array(Kind::ForwardOffsets as u32, n + 1, &what_n)?,
            neighbours: self.array(Kind::ForwardTargets as u32, m, &what_m)?,
            weights: self.array(Kind::ForwardWeights as u32, m, &what_m)?,
        };
        self.check_csr(&forward, n, m, Kind::ForwardOffsets as u32)?;
        let mut reverse: [Csr; 3] = Default::default();
        let mut reverse_edges = 0u64;
        for (t, slot) in reverse.iter_mut().enumerate() {
            let offsets_entry = self.entry(reverse_kind(t, 0));
            let edges = self.entry(reverse_kind(t, 1)).map_or(0, |e| e.length / 4);
            let offsets_count = match offsets_entry {
                Some(e) if e.length > 0 => n + 1,
                _ => 0,
            };
            let csr = Csr {
                offsets: self.array(reverse_kind(t, 0), offsets_count, &what_n)?,
                neighbours: self.array(reverse_kind(t, 1), edges, "its sources")?,
                weights: self.array(reverse_kind(t, 2), edges, "its sources")?,
            };
            if offsets_count == 0 && edges > 0 {
                return Err(self.invalid(reverse_kind(t, 0), format!("empty, yet {edges} in-edges follow")));
            }
            if offsets_count > 0 {
                self.check_csr(&csr, n, edges, reverse_kind(t, 0))?;
            }
            reverse_edges += edges;
            *slot = csr;
        }
        if reverse_edges != m {
            return Err(error(
                self.path,
                format!("the reverse CSRs hold {reverse_edges} edges, the forward CSR {m}"),
            ));
        }
        let labels = if has_labels {
            let words = n.div_ceil(64);
            let labels = Labels {
                present: self.array(Kind::LabelPresent as u32, words, &what_n)?,
                offsets: self.array(Kind::LabelOffsets as u32, n + 1, &what_n)?,
                text: {
                    let length = self.entry(Kind::LabelText as u32).map_or(0, |e| e.length);
                    self.array(Kind::LabelText as u32, length, "the label text")?
                },
            };
            let text_len = labels.text.len() as u64;
            if labels.offsets.first() != Some(&0)
                || labels.offsets.windows(2).any(|w| w[0] > w[1])
                || labels.offsets.last() != Some(&text_len)
            {
                return Err(self.invalid(
                    Kind::LabelOffsets as u32,
                    format!("offsets are not non-decreasing from 0 to the text's {text_len} bytes"),
                ));
            }
            for v in 0..n as usize {
                let (start, end) = (labels.offsets[v] as usize, labels.offsets[v + 1] as usize);
                let present = labels.present[v / 64] & (1 << (v % 64)) != 0;
                if present && let Err(e) = std::str::from_utf8(&labels.text[start..end]) {
                    return Err(self.invalid(
                        Kind::LabelText as u32,
                        format!("node {v}'s label is not UTF-8 (byte {} of it: {e})", e.valid_up_to()),
                    ));
                }
            }
            Some(labels)
        } else {
            None
        };
        let embeddings = if dim > 0 {
            let values = n
                .checked_mul(dim)
                .ok_or_else(|| self.invalid(Kind::Meta as u32, format!("{n} × {dim} overflows")))?;
            let e = Embeddings {
                dim: dim as usize,
                values: self.array(
                    Kind::EmbeddingValues as u32,
                    values,
                    &format!("{n} nodes of dimension {dim}"),
                )?,
                norms: self.array(Kind::EmbeddingNorms as u32, n, &what_n)?,
            };
            if let Some(i) = e.values.iter().position(|x| !x.is_finite()) {
                return Err(self.invalid(Kind::EmbeddingValues as u32, format!("value {i} is not finite")));
            }
            if let Some(v) = e.norms.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
                return Err(self.invalid(
                    Kind::EmbeddingNorms as u32,
                    format!("node {v}'s norm is not finite and >= 0"),
                ));
            }
            Some(e)
        } else {
            None
        };
        let mut graph = Graph {
            id: Graph::next_id(),
            node_count: n as u32,
            forward,
            reverse,
            tiers,
            tier_counts,
            labels,
            embeddings,
            origin_version,
            label_index: Default::default(),
            index_image: None,
            embedded: Default::default(),
        };
        graph.index_image = self.index_image(&graph)?;
        Ok(graph)
    }

    /// The saved embedding index, if the file has one: both sections or neither, of a `graph` with
    /// embeddings, covering exactly its nodes. Its bytes are usearch's; the engine loads them (and
    /// rebuilds the index if they do not load).
    fn index_image(&self, graph: &Graph) -> Result<Option<IndexImage>> {
        let n = graph.node_count() as u64;
        let (meta_kind, index_kind) = (Kind::SimilarityMeta as u32, Kind::SimilarityIndex as u32);
        let (meta, index) = match (self.entry(meta_kind), self.entry(index_kind)) {
            (None, None) => return Ok(None),
            (Some(_), Some(index)) => (self.array::<u64>(meta_kind, 8, "the index's shape")?, index),
            (Some(_), None) => {
                return Err(error(
                    self.path,
                    "section SIMILARITY_INDEX is missing (SIMILARITY_META is present)",
                ));
            }
            (None, Some(_)) => {
                return Err(error(
                    self.path,
                    "section SIMILARITY_META is missing (SIMILARITY_INDEX is present)",
                ));
            }
        };
        if graph.embedding_dim().is_none() {
            return Err(self.invalid(meta_kind, "an embedding index in a graph without embeddings".into()));
        }
        let (connectivity, vectors, covered) = (meta[0], meta[1], meta[2]);
        if covered != n {
            return Err(
                self.invalid(meta_kind, format!("the index covers {covered} nodes, the graph has {n}"))
            );
        }
        // Counted once here; the engine's `auto` threshold reads the same cached count.
        let embedded = graph.embedded_count() as u64;
        if vectors != embedded {
            return Err(self.invalid(
                meta_kind,
                format!("the index holds {vectors} vectors, the graph has {embedded} embeddings"),
            ));
        }
        if !(4..=128).contains(&connectivity) {
            return Err(self.invalid(meta_kind, format!("connectivity {connectivity} is not in 4..=128")));
        }
        let bytes = self.array::<u8>(index_kind, index.length, "the index")?;
        Ok(Some(IndexImage {
            connectivity: connectivity as usize,
            vectors: vectors as usize,
            covered: n as usize,
            bytes,
        }))
    }

    /// Offsets start at 0, never decrease and end at the edge count; ids are below `n`; weights are
    /// finite and in (0, 1].
    fn check_csr(&self, csr: &Csr, n: u64, m: u64, kind: u32) -> Result<()> {
        if csr.offsets.first() != Some(&0) || csr.offsets.last().map(|&x| x as u64) != Some(m) {
            return Err(self.invalid(kind, format!("offsets do not run from 0 to the edge count {m}")));
        }
        if let Some(i) = csr.offsets.windows(2).position(|w| w[0] > w[1]) {
            return Err(self.invalid(kind, format!("offsets decrease at node {i}")));
        }
        let highest = csr.neighbours.iter().copied().max().unwrap_or(0);
        if m > 0 && highest as u64 >= n {
            return Err(self.invalid(kind + 1, format!("node id {highest} out of range ({n} nodes)")));
        }
        if let Some(i) = csr.weights.iter().position(|&w| !(w > 0.0 && w <= 1.0)) {
            return Err(
                self.invalid(kind + 2, format!("edge {i}: weight {} is not in (0, 1]", csr.weights[i]))
            );
        }
        Ok(())
    }
}
