//! A read-only bbolt reader that takes no lock, for containerd's `meta.db`.
//!
//! containerd opens its database read-write, and bbolt then holds an
//! exclusive `flock` on it for as long as containerd runs (etcd-io/bbolt
//! `db.go`, `flock(db, !db.readOnly, …)`); a read-only bbolt open asks for a
//! shared lock and so waits until containerd stops. This reader reads the
//! file with `pread` and never locks it (docs/runtimes.md, "Reading
//! meta.db").
//!
//! The format (etcd-io/bbolt `internal/common/page.go`, `meta.go`,
//! `bucket.go`, `inode.go`; integers little-endian, as on every node this
//! runs on):
//! - a page is at `pgid * page_size` and starts with a 16-byte header
//!   `{id u64, flags u16, count u16, overflow u32}`; it spans
//!   `1 + overflow` pages. Flags: branch `0x01`, leaf `0x02`, meta `0x04`.
//! - pages 0 and 1 are meta pages: after the header, `{magic u32
//!   0xED0CDAED, version u32 2, page_size u32, flags u32, root bucket {pgid
//!   u64, sequence u64}, freelist u64, pgid u64 (the high-water mark), txid
//!   u64, checksum u64}`, the checksum being FNV-1a 64 of the 56 bytes before
//!   it. The valid one with the larger txid is the current one (`db.meta()`).
//! - a branch page holds `count` elements `{pos u32, ksize u32, pgid u64}`,
//!   a leaf page `count` elements `{flags u32, pos u32, ksize u32, vsize
//!   u32}`; an element's key is at its own address + `pos`, a leaf's value
//!   right after the key. Keys are in bytewise order. Leaf flag `0x01`: the
//!   value is a bucket.
//! - a bucket value is `{root pgid u64, sequence u64}`; root 0 is an inline
//!   bucket, whose leaf page follows those 16 bytes inside the value.
//!
//! Consistency without the lock: a bbolt commit writes its pages
//! copy-on-write into pages the current meta does not reach, syncs, and
//! writes the meta page last (`tx.go`, `Commit`: `tx.write()` then
//! `tx.writeMeta()`). Pages reachable from txid T are reused only by a
//! transaction after T+1. So a reader that takes the current meta (T), reads
//! what it needs, and then finds T still current ([`Tx::still_current`]) read
//! one consistent tree; otherwise it reads again.
//!
//! The file is root's, but it is parsed as untrusted input: every page id is
//! checked against the file's length and the meta's high-water mark, every
//! element and key against its page, page spans, tree depth and the pages
//! one transaction may read are capped, and damage gives an error, never a
//! panic or a loop.

use std::{cell::Cell, fs::File, io, os::unix::fs::FileExt};

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
/// The meta's fields before its checksum (`Meta.Sum64` hashes them).
const META_SUMMED: usize = 56;
const META_LEN: usize = META_SUMMED + 8;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const BUCKET_LEAF: u32 = 0x01;
/// `{root u64, sequence u64}` before an inline bucket's page.
const BUCKET_HEADER: usize = 16;
/// bbolt takes the OS page size: 4 KiB on x86, up to 64 KiB on arm64 and
/// ppc64 kernels.
const PAGE_SIZES: [u32; 8] = [4096, 8192, 16384, 32768, 65536, 512, 1024, 2048];
/// The most one page (with its overflow) may span: a container's spec is a
/// few KiB, a busy node's largest values well under a MiB.
const MAX_SPAN: u64 = 16 << 20;
/// bbolt's trees are a handful of levels deep; more is a loop.
const MAX_DEPTH: usize = 32;
/// Pages one transaction may read: a lookup reads a few dozen.
const MAX_PAGE_READS: u32 = 4096;

/// A file read at offsets (tests read bytes in memory).
pub trait ReadAt {
    /// Fills `buf` from `offset`; a short file is `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    fn size(&self) -> io::Result<u64>;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        self.metadata().map(|m| m.len())
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).ok().filter(|s| *s <= self.len());
        match start.and_then(|s| self.get(s..s.checked_add(buf.len())?)) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BoltError {
    #[error("read at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
    #[error("no valid meta page: not a bbolt file, or both meta pages damaged")]
    NoMeta,
    #[error("page {pgid}: {problem}")]
    Page { pgid: u64, problem: &'static str },
    #[error("an inline bucket: {problem}")]
    Inline { problem: &'static str },
    #[error("a tree deeper than {MAX_DEPTH} levels (a loop?)")]
    TooDeep,
    #[error("more than {MAX_PAGE_READS} pages read in one lookup")]
    TooManyPages,
}

/// The fields of a meta page this reader uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub page_size: u32,
    /// The root bucket's page.
    pub root: u64,
    /// One past the last page in use.
    pub high_water: u64,
    pub txid: u64,
}

/// FNV-1a, 64 bits (bbolt's meta checksum, Go's `hash/fnv` `New64a`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// The meta page at `offset`, or `None` when it is not a valid one (short
/// file, wrong magic or version, bad checksum, impossible page size).
fn meta_at<R: ReadAt + ?Sized>(src: &R, offset: u64) -> Result<Option<Meta>, BoltError> {
    let mut page = [0u8; PAGE_HEADER + META_LEN];
    match src.read_exact_at(&mut page, offset) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(source) => return Err(BoltError::Io { offset, source }),
    }
    let m = &page[PAGE_HEADER..];
    let field32 = |at| u32_at(m, at).unwrap_or_default();
    let field64 = |at| u64_at(m, at).unwrap_or_default();
    let page_size = field32(8);
    let valid = u16_at(&page, 8).is_some_and(|flags| flags & META != 0)
        && field32(0) == MAGIC
        && field32(4) == VERSION
        && field64(META_SUMMED) == fnv1a64(&m[..META_SUMMED])
        && PAGE_SIZES.contains(&page_size);
    // Fields: root bucket {pgid 16, sequence 24}, freelist 32, pgid 40, txid 48.
    Ok(valid.then(|| Meta { page_size, root: field64(16), high_water: field64(40), txid: field64(48) }))
}

/// The current meta: the valid one of the two with the larger txid.
pub fn current_meta<R: ReadAt + ?Sized>(src: &R) -> Result<Meta, BoltError> {
    let first = meta_at(src, 0)?;
    // The second meta page is one page in; its size is the first's, or, when
    // the first is damaged, whichever size the second meta itself claims.
    let second = match first {
        Some(m) => meta_at(src, u64::from(m.page_size))?.filter(|s| s.page_size == m.page_size),
        None => {
            let mut found = None;
            for size in PAGE_SIZES {
                if let Some(m) = meta_at(src, u64::from(size))?.filter(|m| m.page_size == size) {
                    found = Some(m);
                    break;
                }
            }
            found
        }
    };
    [first, second].into_iter().flatten().max_by_key(|m| m.txid).ok_or(BoltError::NoMeta)
}

/// A bucket: its root page, or the leaf page held inline in its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bucket {
    Page(u64),
    Inline(Vec<u8>),
}

impl Bucket {
    fn from_value(value: &[u8]) -> Result<Bucket, BoltError> {
        match u64_at(value, 0) {
            None => Err(BoltError::Inline { problem: "a bucket value shorter than its header" }),
            Some(0) => Ok(Bucket::Inline(value.get(BUCKET_HEADER..).unwrap_or_default().to_vec())),
            Some(root) => Ok(Bucket::Page(root)),
        }
    }
}

/// What a key holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Bytes(Vec<u8>),
    Bucket(Bucket),
}

/// One branch or leaf page, read whole.
struct Page {
    /// 0 for an inline bucket's page.
    pgid: u64,
    flags: u16,
    count: usize,
    bytes: Vec<u8>,
}

impl Page {
    fn parse(pgid: u64, bytes: Vec<u8>) -> Result<Page, BoltError> {
        let bad = |problem| {
            if pgid == 0 {
                BoltError::Inline { problem }
            } else {
                BoltError::Page { pgid, problem }
            }
        };
        let flags = u16_at(&bytes, 8).ok_or_else(|| bad("shorter than a page header"))?;
        let count = usize::from(u16_at(&bytes, 10).ok_or_else(|| bad("shorter than a page header"))?);
        if flags & (BRANCH | LEAF) == 0 || flags & BRANCH != 0 && flags & LEAF != 0 {
            return Err(bad("neither a branch nor a leaf page"));
        }
        if pgid == 0 && flags & LEAF == 0 {
            return Err(bad("an inline bucket's page is not a leaf"));
        }
        if PAGE_HEADER + count * ELEMENT > bytes.len() {
            return Err(bad("more elements than the page holds"));
        }
        Ok(Page { pgid, flags, count, bytes })
    }

    fn bad(&self, problem: &'static str) -> BoltError {
        if self.pgid == 0 {
            BoltError::Inline { problem }
        } else {
            BoltError::Page { pgid: self.pgid, problem }
        }
    }

    fn is_leaf(&self) -> bool {
        self.flags & LEAF != 0
    }

    /// The bytes at element `i`'s address + `pos`, `len` long.
    fn slice(&self, i: usize, pos: u32, len: u32) -> Result<&[u8], BoltError> {
        let at = PAGE_HEADER + i * ELEMENT;
        at.checked_add(pos as usize)
            .and_then(|start| self.bytes.get(start..start.checked_add(len as usize)?))
            .ok_or_else(|| self.bad("a key or value beyond its page"))
    }

    /// Branch element `i`: its key and child page.
    fn branch(&self, i: usize) -> Result<(&[u8], u64), BoltError> {
        let at = PAGE_HEADER + i * ELEMENT;
        let (pos, ksize, child) =
            match (u32_at(&self.bytes, at), u32_at(&self.bytes, at + 4), u64_at(&self.bytes, at + 8)) {
                (Some(p), Some(k), Some(c)) => (p, k, c),
                _ => return Err(self.bad("an element beyond its page")),
            };
        Ok((self.slice(i, pos, ksize)?, child))
    }

    /// Leaf element `i`: whether it is a bucket, its key and value.
    fn leaf(&self, i: usize) -> Result<(bool, &[u8], &[u8]), BoltError> {
        let at = PAGE_HEADER + i * ELEMENT;
        let field = |off| u32_at(&self.bytes, at + off).ok_or_else(|| self.bad("an element beyond its page"));
        let (flags, pos, ksize, vsize) = (field(0)?, field(4)?, field(8)?, field(12)?);
        let key = self.slice(i, pos, ksize)?;
        let value =
            self.slice(i, pos.checked_add(ksize).ok_or_else(|| self.bad("a key beyond its page"))?, vsize)?;
        Ok((flags & BUCKET_LEAF != 0, key, value))
    }

    fn key(&self, i: usize) -> Result<&[u8], BoltError> {
        if self.is_leaf() {
            self.leaf(i).map(|(_, k, _)| k)
        } else {
            self.branch(i).map(|(k, _)| k)
        }
    }

    /// The first element whose key is not below `key` (bbolt's cursor
    /// search, `sort.Search` over the elements), and whether it is `key`.
    fn search(&self, key: &[u8]) -> Result<(usize, bool), BoltError> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid)? < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let exact = lo < self.count && self.key(lo)? == key;
        Ok((lo, exact))
    }
}

/// One read of the tree as of the current meta. Check
/// [`Tx::still_current`] after the reads: only then are they consistent.
pub struct Tx<'a, R: ReadAt + ?Sized> {
    src: &'a R,
    meta: Meta,
    /// Bytes that may hold pages: the file, up to the high-water mark.
    end: u64,
    reads: Cell<u32>,
}

impl<'a, R: ReadAt + ?Sized> Tx<'a, R> {
    pub fn begin(src: &'a R) -> Result<Tx<'a, R>, BoltError> {
        let meta = current_meta(src)?;
        let size = src.size().map_err(|source| BoltError::Io { offset: 0, source })?;
        let end = meta.high_water.saturating_mul(u64::from(meta.page_size)).min(size);
        Ok(Tx { src, meta, end, reads: Cell::new(0) })
    }

    pub fn txid(&self) -> u64 {
        self.meta.txid
    }

    /// Whether the meta this read began with is still the current one, so
    /// no transaction committed meanwhile and every page read was its own.
    pub fn still_current(&self) -> Result<bool, BoltError> {
        match current_meta(self.src) {
            Ok(now) => Ok(now == self.meta),
            // Both metas invalid now: a torn write; read again.
            Err(BoltError::NoMeta) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn root(&self) -> Bucket {
        Bucket::Page(self.meta.root)
    }

    fn page(&self, pgid: u64) -> Result<Page, BoltError> {
        let bad = |problem| BoltError::Page { pgid, problem };
        let reads = self.reads.get() + 1;
        if reads > MAX_PAGE_READS {
            return Err(BoltError::TooManyPages);
        }
        self.reads.set(reads);
        if pgid < 2 {
            return Err(bad("a meta page where a tree page belongs"));
        }
        if pgid >= self.meta.high_water {
            return Err(bad("beyond the meta's high-water mark"));
        }
        let page_size = u64::from(self.meta.page_size);
        let offset = pgid.checked_mul(page_size).ok_or_else(|| bad("beyond the file"))?;
        let mut header = [0u8; PAGE_HEADER];
        if offset.saturating_add(page_size) > self.end {
            return Err(bad("beyond the end of the file"));
        }
        self.src.read_exact_at(&mut header, offset).map_err(|source| BoltError::Io { offset, source })?;
        if u64_at(&header, 0) != Some(pgid) {
            return Err(bad("its header names another page"));
        }
        let overflow = u64::from(u32_at(&header, 12).unwrap_or_default());
        let span = (overflow + 1).saturating_mul(page_size);
        if span > MAX_SPAN {
            return Err(bad("spans more than 16 MiB"));
        }
        if offset.saturating_add(span) > self.end {
            return Err(bad("its overflow runs past the end of the file"));
        }
        let mut bytes = vec![0u8; span as usize];
        self.src.read_exact_at(&mut bytes, offset).map_err(|source| BoltError::Io { offset, source })?;
        Page::parse(pgid, bytes)
    }

    fn bucket_page(&self, bucket: &Bucket) -> Result<Page, BoltError> {
        match bucket {
            Bucket::Page(pgid) => self.page(*pgid),
            Bucket::Inline(bytes) => Page::parse(0, bytes.clone()),
        }
    }

    /// What `key` holds in `bucket`, if anything.
    pub fn get(&self, bucket: &Bucket, key: &[u8]) -> Result<Option<Value>, BoltError> {
        let mut page = self.bucket_page(bucket)?;
        for _ in 0..MAX_DEPTH {
            let (i, exact) = page.search(key)?;
            if page.is_leaf() {
                if !exact {
                    return Ok(None);
                }
                let (is_bucket, _, value) = page.leaf(i)?;
                return Ok(Some(if is_bucket {
                    Value::Bucket(Bucket::from_value(value)?)
                } else {
                    Value::Bytes(value.to_vec())
                }));
            }
            if page.count == 0 {
                return Err(page.bad("an empty branch page"));
            }
            // The child whose first key is the last one not above `key`.
            let child = if exact { i } else { i.saturating_sub(1) };
            page = self.page(page.branch(child)?.1)?;
        }
        Err(BoltError::TooDeep)
    }

    /// The bucket `key` names in `bucket`; `None` when absent or not a bucket.
    pub fn bucket(&self, bucket: &Bucket, key: &[u8]) -> Result<Option<Bucket>, BoltError> {
        Ok(match self.get(bucket, key)? {
            Some(Value::Bucket(b)) => Some(b),
            _ => None,
        })
    }

    /// The bucket at `path` of nested buckets from the root.
    pub fn bucket_at(&self, path: &[&[u8]]) -> Result<Option<Bucket>, BoltError> {
        let mut bucket = self.root();
        for key in path {
            match self.bucket(&bucket, key)? {
                Some(b) => bucket = b,
                None => return Ok(None),
            }
        }
        Ok(Some(bucket))
    }

    /// The bytes `key` holds in `bucket`; `None` when absent or a bucket.
    pub fn bytes(&self, bucket: &Bucket, key: &[u8]) -> Result<Option<Vec<u8>>, BoltError> {
        Ok(match self.get(bucket, key)? {
            Some(Value::Bytes(b)) => Some(b),
            _ => None,
        })
    }

    /// The first `max` entries of `bucket`, in key order.
    pub fn entries(&self, bucket: &Bucket, max: usize) -> Result<Vec<(Vec<u8>, Value)>, BoltError> {
        let mut out = Vec::new();
        self.collect(self.bucket_page(bucket)?, max, 0, &mut out)?;
        Ok(out)
    }

    fn collect(
        &self,
        page: Page,
        max: usize,
        depth: usize,
        out: &mut Vec<(Vec<u8>, Value)>,
    ) -> Result<(), BoltError> {
        if depth >= MAX_DEPTH {
            return Err(BoltError::TooDeep);
        }
        for i in 0..page.count {
            if out.len() >= max {
                return Ok(());
            }
            if page.is_leaf() {
                let (is_bucket, key, value) = page.leaf(i)?;
                let value = if is_bucket {
                    Value::Bucket(Bucket::from_value(value)?)
                } else {
                    Value::Bytes(value.to_vec())
                };
                out.push((key.to_vec(), value));
            } else {
                self.collect(self.page(page.branch(i)?.1)?, max, depth + 1, out)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
