//! rpm package headers as rpm's `headerExport` writes them into its database, for the scan
//! tests here and the end-to-end tests (tests/e2e includes this file by path), so each makes
//! rpm databases the same way.

/// An rpm header blob as rpm's `headerExport` writes it: the immutable region tag first (its
/// trailer at the end of the data), then the entries sorted by tag, data aligned per type.
pub fn header_blob(strings: &[(u32, &str)], epoch: Option<u32>) -> Vec<u8> {
    const REGION: u32 = 63;
    let mut entries: Vec<(u32, u32, Vec<u8>)> = strings
        .iter()
        .map(|(tag, s)| (*tag, 6, format!("{s}\0").into_bytes()))
        .collect();
    if let Some(epoch) = epoch {
        entries.push((1003, 4, epoch.to_be_bytes().to_vec()));
    }
    entries.sort_by_key(|e| e.0);
    let il = entries.len() + 1;
    let (mut index, mut data) = (Vec::new(), Vec::new());
    for (tag, kind, bytes) in &entries {
        if *kind == 4 {
            data.resize(data.len().div_ceil(4) * 4, 0);
        }
        index.push((*tag, *kind, data.len() as u32, 1u32));
        data.extend_from_slice(bytes);
    }
    // The region trailer: tag, BIN, minus the index's size, 16.
    let trailer_at = data.len() as u32;
    data.extend_from_slice(&REGION.to_be_bytes());
    data.extend_from_slice(&7u32.to_be_bytes());
    data.extend_from_slice(&(-(il as i32 * 16)).to_be_bytes());
    data.extend_from_slice(&16u32.to_be_bytes());
    index.insert(0, (REGION, 7, trailer_at, 16));
    let mut blob = Vec::new();
    blob.extend_from_slice(&(il as u32).to_be_bytes());
    blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
    for (tag, kind, offset, count) in index {
        for n in [tag, kind, offset, count] {
            blob.extend_from_slice(&n.to_be_bytes());
        }
    }
    blob.extend_from_slice(&data);
    blob
}
