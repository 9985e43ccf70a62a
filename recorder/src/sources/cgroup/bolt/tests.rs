use std::{cell::RefCell, path::PathBuf};

use super::{
    testing::{self, *},
    *,
};

fn fixture() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/runtimes/containerd-1.6.20/io.containerd.metadata.v1.bolt/meta.db");
    std::fs::read(path).unwrap()
}

fn text(v: Option<Vec<u8>>) -> Option<String> {
    v.map(|b| String::from_utf8(b).unwrap())
}

/// A container's id, image and labels.
type Container = (String, Option<String>, Vec<(String, String)>);

/// Every container's image and labels, read the way containerd keeps them.
fn containers(tx: &Tx<[u8]>, namespace: &str) -> Vec<Container> {
    let Some(bucket) = tx.bucket_at(&[b"v1", namespace.as_bytes(), b"containers"]).unwrap() else {
        return Vec::new();
    };
    tx.entries(&bucket, 100)
        .unwrap()
        .into_iter()
        .map(|(id, value)| {
            let Value::Bucket(c) = value else { panic!("a container that is not a bucket") };
            let labels = match tx.bucket(&c, b"labels").unwrap() {
                Some(l) => tx
                    .entries(&l, 100)
                    .unwrap()
                    .into_iter()
                    .map(|(k, v)| match v {
                        Value::Bytes(v) => (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()),
                        Value::Bucket(_) => panic!("a label that is a bucket"),
                    })
                    .collect(),
                None => Vec::new(),
            };
            (String::from_utf8(id).unwrap(), text(tx.bytes(&c, b"image").unwrap()), labels)
        })
        .collect()
}

#[test]
fn reads_containerds_own_file_as_the_python_dump_decoded_it() {
    let bytes = fixture();
    let tx = Tx::begin(bytes.as_slice()).unwrap();
    // The two metas of the capture: txid 664 (page 0) and 663 (page 1).
    assert_eq!((tx.txid(), tx.meta.page_size), (664, 4096));
    let v1 = tx.bucket_at(&[b"v1"]).unwrap().unwrap();
    let namespaces: Vec<String> = tx
        .entries(&v1, 100)
        .unwrap()
        .into_iter()
        .filter(|(_, v)| matches!(v, Value::Bucket(_)))
        .map(|(k, _)| String::from_utf8(k).unwrap())
        .collect();
    assert_eq!(namespaces, ["default", "k8s.io", "moby"]);

    // meta.db.json is tests/runtimes/bolt-dump's reading of the same file.
    let dump: serde_json::Value = serde_json::from_slice(
        &std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
            "../tests/fixtures/runtimes/containerd-1.6.20/io.containerd.metadata.v1.bolt/meta.db.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let mut seen = 0;
    for ns in ["default", "k8s.io"] {
        let ours = containers(&tx, ns);
        let theirs = dump[ns]["containers"].as_object().cloned().unwrap_or_default();
        assert_eq!(ours.len(), theirs.len(), "{ns}");
        for (id, image, labels) in ours {
            let c = &theirs[&id];
            assert_eq!(image.as_deref(), c["image"].as_str(), "{ns}/{id}");
            let expected: Vec<(String, String)> = c["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            assert_eq!(labels, expected, "{ns}/{id}");
            seen += 1;
        }
    }
    assert_eq!(seen, 6, "two ctr containers in default, four Kubernetes-shaped ones in k8s.io");
    // Docker's own containerd containers (the dump leaves them out): the
    // surviving child container, with no image of containerd's.
    let moby = containers(&tx, "moby");
    assert_eq!(moby.len(), 1);
    assert_eq!(moby[0].0, "999230dce7f0e7524c0108e63a26a3159f6b774a44004b5442339c0464e53adf");
    assert_eq!(moby[0].1.as_deref(), Some(""));
    assert!(tx.still_current().unwrap());

    let c = tx.bucket_at(&[b"v1", b"default", b"containers", b"oomrt-ctr-pid1-02910c"]).unwrap().unwrap();
    assert_eq!(
        text(tx.bytes(&c, b"image").unwrap()).as_deref(),
        Some("docker.io/oomrecorder/bookworm:02910c")
    );
    assert_eq!(tx.bytes(&c, b"labels").unwrap(), None, "a bucket is not bytes");
    assert_eq!(tx.bytes(&c, b"nope").unwrap(), None);
    assert_eq!(tx.bucket_at(&[b"v1", b"nope", b"containers"]).unwrap(), None);
}

#[test]
fn a_damaged_meta_falls_back_to_the_other_and_two_are_no_file() {
    let mut bytes = fixture();
    // Page 0's checksum (header 16 + 56).
    bytes[16 + 56] ^= 0xff;
    let tx = Tx::begin(bytes.as_slice()).unwrap();
    assert_eq!(tx.txid(), 663, "the older meta, page 1");
    assert!(tx.bucket_at(&[b"v1", b"default", b"containers"]).unwrap().is_some());
    // Page 1's magic.
    bytes[4096 + 16] ^= 0xff;
    assert!(matches!(Tx::begin(bytes.as_slice()), Err(BoltError::NoMeta)));
    assert!(matches!(Tx::begin(&[][..]), Err(BoltError::NoMeta)));
    assert!(matches!(Tx::begin(&b"not a bolt file at all"[..]), Err(BoltError::NoMeta)));
}

#[test]
fn a_truncated_file_is_an_error_never_a_panic() {
    let bytes = fixture();
    for len in
        [0, 15, 80, 4096, 4096 + 80, 8192, 8192 + 100, 65536, 131072, bytes.len() - 4096, bytes.len() - 1]
    {
        let cut = &bytes[..len];
        let Ok(tx) = Tx::begin(cut) else { continue };
        // Whatever the cut leaves, a lookup answers or fails; it never panics.
        let found = tx.bucket_at(&[b"v1", b"k8s.io", b"containers"]).and_then(|b| match b {
            Some(b) => tx.entries(&b, 100).map(|e| e.len()),
            None => Ok(0),
        });
        if len < bytes.len() / 2 {
            assert!(found.is_err(), "cut at {len}: {found:?}");
        }
    }
}

#[test]
fn corrupting_any_byte_never_panics_or_loops() {
    let clean = fixture();
    // Every 37th byte of the whole file, each flipped on its own.
    for at in (0..clean.len()).step_by(37) {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x5a;
        let Ok(tx) = Tx::begin(bytes.as_slice()) else { continue };
        for ns in [&b"default"[..], b"k8s.io"] {
            if let Ok(Some(b)) = tx.bucket_at(&[b"v1", ns, b"containers"]) {
                if let Ok(entries) = tx.entries(&b, 100) {
                    for (_, v) in entries {
                        if let Value::Bucket(c) = v {
                            let _ = tx.bytes(&c, b"image");
                            let _ = tx.bytes(&c, b"spec");
                        }
                    }
                }
            }
        }
    }
}

// --- Files made here, for shapes the capture lacks ----------------------------

#[test]
fn inline_buckets_branches_and_overflow_pages() {
    let inline = leaf(0, &[(false, b"image", b"nginx:1.25".to_vec())]);
    let big = vec![b'x'; 3 * PS];
    // Spans 4 pages (4..=7): `file` sets its header's overflow.
    let overflow_leaf =
        leaf(4, &[(false, b"big", big.clone()), (true, b"in", bucket_value(0, Some(inline)))]);
    let pages = vec![
        // A branch element's key is its child's first key.
        branch(2, &[(b"a", 3), (b"big", 4)]),
        leaf(3, &[(false, b"a", b"1".to_vec()), (false, b"b", b"2".to_vec())]),
        overflow_leaf,
    ];
    let bytes = file(pages);
    let tx = Tx::begin(bytes.as_slice()).unwrap();
    assert_eq!(tx.txid(), 2);
    let root = tx.root();
    assert_eq!(tx.bytes(&root, b"b").unwrap(), Some(b"2".to_vec()));
    assert!(tx.bytes(&root, b"big").unwrap() == Some(big), "the value spanning overflow pages");
    assert_eq!(tx.bytes(&root, b"0").unwrap(), None, "below the first key");
    assert_eq!(tx.bytes(&root, b"zzz").unwrap(), None);
    let inner = tx.bucket(&root, b"in").unwrap().unwrap();
    assert!(matches!(inner, Bucket::Inline(_)));
    assert_eq!(tx.bytes(&inner, b"image").unwrap(), Some(b"nginx:1.25".to_vec()));
    let keys: Vec<Vec<u8>> = tx.entries(&root, 10).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [b"a".to_vec(), b"b".to_vec(), b"big".to_vec(), b"in".to_vec()]);
    assert_eq!(tx.entries(&root, 2).unwrap().len(), 2, "bounded");
}

#[test]
fn page_ids_beyond_the_file_loops_and_lying_headers_are_errors() {
    // A branch whose child is beyond the high-water mark.
    let beyond = file(vec![branch(2, &[(b"a", 99)])]);
    let tx = Tx::begin(beyond.as_slice()).unwrap();
    assert!(
        matches!(tx.get(&tx.root(), b"a"), Err(BoltError::Page { pgid: 99, .. })),
        "{:?}",
        tx.get(&tx.root(), b"a")
    );

    // A branch whose child is itself: a loop, cut by the depth cap.
    let looping = file(vec![branch(2, &[(b"a", 2)])]);
    let tx = Tx::begin(looping.as_slice()).unwrap();
    assert!(matches!(tx.get(&tx.root(), b"a"), Err(BoltError::TooDeep)));
    assert!(matches!(tx.entries(&tx.root(), 10), Err(BoltError::TooDeep)));

    // A child pointing at a meta page.
    let meta_child = file(vec![branch(2, &[(b"a", 1)])]);
    let tx = Tx::begin(meta_child.as_slice()).unwrap();
    assert!(matches!(tx.get(&tx.root(), b"a"), Err(BoltError::Page { pgid: 1, .. })));

    // A page whose header names another page (a torn or reused page).
    let lying = file(vec![leaf(7, &[(false, b"a", b"1".to_vec())])]);
    let tx = Tx::begin(lying.as_slice()).unwrap();
    assert!(matches!(tx.get(&tx.root(), b"a"), Err(BoltError::Page { pgid: 2, .. })));

    // An overflow that runs past the end of the file.
    let mut long = leaf(2, &[(false, b"a", b"1".to_vec())]);
    long[12..16].copy_from_slice(&1000u32.to_le_bytes());
    let long = file(vec![long]);
    let tx = Tx::begin(long.as_slice()).unwrap();
    assert!(matches!(tx.get(&tx.root(), b"a"), Err(BoltError::Page { pgid: 2, .. })));

    // A value whose size runs past its page.
    let mut wide = leaf(2, &[(false, b"a", b"1".to_vec())]);
    wide[PAGE_HEADER + 12..PAGE_HEADER + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    let wide = file(vec![wide]);
    let tx = Tx::begin(wide.as_slice()).unwrap();
    assert!(matches!(tx.get(&tx.root(), b"a"), Err(BoltError::Page { pgid: 2, .. })));

    // More elements than the page has room for.
    let mut crowded = leaf(2, &[(false, b"a", b"1".to_vec())]);
    crowded[10..12].copy_from_slice(&u16::MAX.to_le_bytes());
    let crowded = file(vec![crowded]);
    let tx = Tx::begin(crowded.as_slice()).unwrap();
    assert!(tx.get(&tx.root(), b"a").is_err());

    // An inline bucket cut short.
    let cut = file(vec![leaf(2, &[(true, b"in", vec![0u8; 20])])]);
    let tx = Tx::begin(cut.as_slice()).unwrap();
    let inner = tx.bucket(&tx.root(), b"in").unwrap().unwrap();
    assert!(matches!(tx.get(&inner, b"x"), Err(BoltError::Inline { .. })));
}

/// A file that a writer commits to while it is being read.
struct Moving {
    bytes: RefCell<Vec<u8>>,
    /// After this many reads, a new meta (txid 3) is written.
    commit_after: Cell<u32>,
}

impl ReadAt for Moving {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let left = self.commit_after.get();
        if left == 0 {
            let page = meta_page(1, 2, 3, 3);
            self.bytes.borrow_mut()[PS..2 * PS].copy_from_slice(&page);
        }
        self.commit_after.set(left.saturating_sub(1));
        self.bytes.borrow().as_slice().read_exact_at(buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.bytes.borrow().len() as u64)
    }
}

#[test]
fn a_commit_during_the_read_is_seen() {
    let moving = Moving {
        bytes: RefCell::new(file(vec![leaf(2, &[(false, b"a", b"1".to_vec())])])),
        commit_after: Cell::new(4),
    };
    let tx = Tx::begin(&moving).unwrap();
    assert_eq!(tx.txid(), 2);
    assert_eq!(tx.bytes(&tx.root(), b"a").unwrap(), Some(b"1".to_vec()));
    assert!(!tx.still_current().unwrap(), "txid 3 committed meanwhile");
    let again = Tx::begin(&moving).unwrap();
    assert_eq!(again.txid(), 3);
    assert!(again.still_current().unwrap());
}

#[test]
fn fnv1a64_is_go_hash_fnv_new64a() {
    // Go: fnv.New64a() of "" and of "a".
    assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
    assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
}

#[test]
fn buckets_nested_inline_as_containerd_nests_small_ones() {
    let bytes = tree(vec![(
        "v1",
        bucket(vec![(
            "default",
            bucket(vec![(
                "containers",
                bucket(vec![(
                    "web",
                    bucket(vec![
                        ("image", testing::bytes("nginx:1.25")),
                        ("labels", bucket(vec![("nerdctl/name", testing::bytes("web"))])),
                    ]),
                )]),
            )]),
        )]),
    )]);
    let tx = Tx::begin(bytes.as_slice()).unwrap();
    let web = tx.bucket_at(&[b"v1", b"default", b"containers", b"web"]).unwrap().unwrap();
    assert!(matches!(web, Bucket::Inline(_)));
    assert_eq!(tx.bytes(&web, b"image").unwrap(), Some(b"nginx:1.25".to_vec()));
    let labels = tx.bucket(&web, b"labels").unwrap().unwrap();
    assert_eq!(tx.entries(&labels, 10).unwrap(), [(b"nerdctl/name".to_vec(), Value::Bytes(b"web".to_vec()))]);
}
