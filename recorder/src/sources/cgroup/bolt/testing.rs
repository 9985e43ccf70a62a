//! bbolt files made in tests, in the format the reader's module comment
//! describes, for shapes no capture has (a loop, a lying header, a
//! container made under the systemd driver).

use super::{fnv1a64, BRANCH, ELEMENT, LEAF, MAGIC, META, META_SUMMED, PAGE_HEADER, VERSION};

pub(crate) const PS: usize = 4096;

pub(crate) fn meta_page(id: u64, root: u64, high_water: u64, txid: u64) -> Vec<u8> {
    let mut p = vec![0u8; PS];
    p[0..8].copy_from_slice(&id.to_le_bytes());
    p[8..10].copy_from_slice(&META.to_le_bytes());
    let m = &mut p[PAGE_HEADER..];
    m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    m[4..8].copy_from_slice(&VERSION.to_le_bytes());
    m[8..12].copy_from_slice(&(PS as u32).to_le_bytes());
    m[16..24].copy_from_slice(&root.to_le_bytes());
    m[40..48].copy_from_slice(&high_water.to_le_bytes());
    m[48..56].copy_from_slice(&txid.to_le_bytes());
    let sum = fnv1a64(&m[..META_SUMMED]);
    m[56..64].copy_from_slice(&sum.to_le_bytes());
    p
}

/// A leaf page's bytes: header, elements, then each key and value.
pub(crate) fn leaf(id: u64, items: &[(bool, &[u8], Vec<u8>)]) -> Vec<u8> {
    let mut p = vec![0u8; PAGE_HEADER + items.len() * ELEMENT];
    p[0..8].copy_from_slice(&id.to_le_bytes());
    p[8..10].copy_from_slice(&LEAF.to_le_bytes());
    p[10..12].copy_from_slice(&(items.len() as u16).to_le_bytes());
    for (i, (bucket, key, value)) in items.iter().enumerate() {
        let at = PAGE_HEADER + i * ELEMENT;
        let pos = (p.len() - at) as u32;
        p[at..at + 4].copy_from_slice(&u32::from(*bucket).to_le_bytes());
        p[at + 4..at + 8].copy_from_slice(&pos.to_le_bytes());
        p[at + 8..at + 12].copy_from_slice(&(key.len() as u32).to_le_bytes());
        p[at + 12..at + 16].copy_from_slice(&(value.len() as u32).to_le_bytes());
        p.extend_from_slice(key);
        p.extend_from_slice(value);
    }
    p
}

pub(crate) fn branch(id: u64, items: &[(&[u8], u64)]) -> Vec<u8> {
    let mut p = vec![0u8; PAGE_HEADER + items.len() * ELEMENT];
    p[0..8].copy_from_slice(&id.to_le_bytes());
    p[8..10].copy_from_slice(&BRANCH.to_le_bytes());
    p[10..12].copy_from_slice(&(items.len() as u16).to_le_bytes());
    for (i, (key, child)) in items.iter().enumerate() {
        let at = PAGE_HEADER + i * ELEMENT;
        let pos = (p.len() - at) as u32;
        p[at..at + 4].copy_from_slice(&pos.to_le_bytes());
        p[at + 4..at + 8].copy_from_slice(&(key.len() as u32).to_le_bytes());
        p[at + 8..at + 16].copy_from_slice(&child.to_le_bytes());
        p.extend_from_slice(key);
    }
    p
}

/// A bucket value: `{root, sequence}`, then the inline page when root is 0.
pub(crate) fn bucket_value(root: u64, inline: Option<Vec<u8>>) -> Vec<u8> {
    let mut v = root.to_le_bytes().to_vec();
    v.extend_from_slice(&0u64.to_le_bytes());
    v.extend(inline.unwrap_or_default());
    v
}

/// A file of the two metas (txids 2 and 1, root page 2) and `pages` from 2
/// on; a page longer than one gets the overflow it needs.
pub(crate) fn file(pages: Vec<Vec<u8>>) -> Vec<u8> {
    let spans: Vec<usize> = pages.iter().map(|p| p.len().div_ceil(PS).max(1)).collect();
    let high_water = 2 + spans.iter().sum::<usize>() as u64;
    let mut f = meta_page(0, 2, high_water, 2);
    f.extend(meta_page(1, 2, high_water, 1));
    for (mut p, span) in pages.into_iter().zip(spans) {
        if span > 1 {
            p[12..16].copy_from_slice(&((span - 1) as u32).to_le_bytes());
        }
        p.resize(span * PS, 0);
        f.extend(p);
    }
    f
}

/// A key's value in [`tree`].
pub(crate) enum Node {
    Bytes(Vec<u8>),
    Bucket(Vec<(String, Node)>),
}

pub(crate) fn bytes(v: impl AsRef<[u8]>) -> Node {
    Node::Bytes(v.as_ref().to_vec())
}

pub(crate) fn bucket(entries: Vec<(&str, Node)>) -> Node {
    Node::Bucket(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// An inline bucket's leaf page (id 0), its keys sorted.
fn inline_page(mut entries: Vec<(String, Node)>) -> Vec<u8> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let items: Vec<(bool, Vec<u8>, Vec<u8>)> = entries
        .into_iter()
        .map(|(k, v)| match v {
            Node::Bytes(b) => (false, k.into_bytes(), b),
            Node::Bucket(e) => (true, k.into_bytes(), bucket_value(0, Some(inline_page(e)))),
        })
        .collect();
    let refs: Vec<(bool, &[u8], Vec<u8>)> =
        items.iter().map(|(b, k, v)| (*b, k.as_slice(), v.clone())).collect();
    leaf(0, &refs)
}

/// A whole file whose root bucket holds `root`, nested buckets inline.
pub(crate) fn tree(root: Vec<(&str, Node)>) -> Vec<u8> {
    let mut page = inline_page(root.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
    page[0..8].copy_from_slice(&2u64.to_le_bytes());
    file(vec![page])
}
