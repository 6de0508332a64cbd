//! Where a store keeps content: one append-only file, each blob a range of it. One file, not a
//! file per blob, because the baseline keeps every file of the workspace: ten thousand small
//! files cost ten thousand file creations as separate objects, and one sequential file here.

use fs_err::os::unix::fs::FileExt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A kept content: `len` bytes at `at` in the pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub at: u64,
    pub len: u64,
}

pub struct Pack {
    path: PathBuf,
    file: fs_err::File,
    len: u64,
}

impl Pack {
    pub fn open(path: &Path) -> std::io::Result<Pack> {
        let file = fs_err::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(Pack {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes kept (a kill mid-write may leave a tail no blob names: only space).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn put(&mut self, bytes: &[u8]) -> std::io::Result<Blob> {
        self.file.write_all(bytes)?;
        let blob = Blob {
            at: self.len,
            len: bytes.len() as u64,
        };
        self.len += blob.len;
        Ok(blob)
    }

    pub fn get(&self, blob: Blob) -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0; blob.len as usize];
        self.file.read_exact_at(&mut bytes, blob.at)?;
        Ok(bytes)
    }

    /// Whether the file at `path` holds exactly `blob` (false when either cannot be read).
    pub fn same_as_file(&self, blob: Blob, path: &Path) -> bool {
        match (self.get(blob), fs_err::read(path)) {
            (Ok(kept), Ok(now)) => kept == now,
            _ => false,
        }
    }

    pub fn same(&self, a: Blob, b: Blob) -> bool {
        a == b || (a.len == b.len && matches!((self.get(a), self.get(b)), (Ok(x), Ok(y)) if x == y))
    }
}
