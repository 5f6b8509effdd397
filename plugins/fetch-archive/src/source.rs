//! Where an image's files are: an OCI layout directory, or a tar file
//! (an OCI archive or a `docker save` tarball) indexed once by scanning its
//! headers (seeking over content, not reading it).

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;

use berth_sdk::error::PluginError;
use berth_sdk::path;
use berth_sdk::tar_read::{EntryKind, SeekSource, TarReader};

/// Where a file's bytes are: `size` bytes at `offset` of `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file on the (guest) filesystem.
    pub file: PathBuf,
    /// Offset of the bytes in it.
    pub offset: u64,
    /// How many bytes.
    pub size: u64,
}

/// Files of an image layout or archive, by their path inside it.
#[derive(Debug)]
pub enum Source {
    /// An OCI layout directory.
    Dir(PathBuf),
    /// A tar file and its regular entries.
    Tar(PathBuf, HashMap<String, (u64, u64)>),
}

/// The largest JSON document (index, manifest, config) read into memory.
pub const MAX_JSON: u64 = 16 << 20;

impl Source {
    /// A layout directory.
    pub fn dir(path: impl Into<PathBuf>) -> Self {
        Source::Dir(path.into())
    }

    /// Indexes the tar file at `path`.
    pub fn tar(path: impl Into<PathBuf>) -> Result<Self, PluginError> {
        let path = path.into();
        let what = format!("archive {}", path.display());
        let file = File::open(&path).map_err(|e| berth_sdk::error::context(e.into(), &what))?;
        let mut reader = TarReader::new(SeekSource(file));
        let mut files = HashMap::new();
        let mut links = Vec::new();
        while let Some(e) = reader
            .next_entry()
            .map_err(|e| berth_sdk::error::context(e.into(), &what))?
        {
            match e.kind {
                EntryKind::File => {
                    files.insert(e.path, (e.offset, e.size));
                }
                // `docker save` links identical layers to one copy.
                EntryKind::Symlink | EntryKind::HardLink => links.push(e),
                _ => {}
            }
        }
        for l in links {
            let target = if l.kind == EntryKind::HardLink || l.link.starts_with('/') {
                path::clean(&l.link)
            } else {
                path::clean(&path::join(path::parent(&l.path).unwrap_or(""), &l.link))
            };
            if let Some(loc) = target.ok().and_then(|t| files.get(&t).copied()) {
                files.insert(l.path, loc);
            }
        }
        Ok(Source::Tar(path, files))
    }

    /// Where `name` is.
    pub fn locate(&self, name: &str) -> Result<Location, PluginError> {
        let missing = || PluginError::NotFound(format!("{name} in {}", self.describe()));
        match self {
            Source::Dir(root) => {
                let file = root.join(name);
                let size = std::fs::metadata(&file).map_err(|_| missing())?.len();
                Ok(Location {
                    file,
                    offset: 0,
                    size,
                })
            }
            Source::Tar(file, files) => {
                let &(offset, size) = files.get(name).ok_or_else(missing)?;
                Ok(Location {
                    file: file.clone(),
                    offset,
                    size,
                })
            }
        }
    }

    /// Whether `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.locate(name).is_ok()
    }

    /// Reads a (small) file.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, PluginError> {
        use std::io::{Read, Seek, SeekFrom};
        let loc = self.locate(name)?;
        if loc.size > MAX_JSON {
            return Err(PluginError::Invalid(format!(
                "{name} in {} is too large",
                self.describe()
            )));
        }
        let mut f = File::open(&loc.file)?;
        f.seek(SeekFrom::Start(loc.offset))?;
        let mut buf = vec![0u8; loc.size as usize];
        f.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// The first bytes of a file (to sniff its compression).
    pub fn prefix(&self, name: &str, n: usize) -> Result<Vec<u8>, PluginError> {
        use std::io::{Read, Seek, SeekFrom};
        let loc = self.locate(name)?;
        let mut f = File::open(&loc.file)?;
        f.seek(SeekFrom::Start(loc.offset))?;
        let mut buf = vec![0u8; n.min(loc.size as usize)];
        f.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// The path of a blob in an OCI layout.
    pub fn blob_name(digest: &str) -> Result<String, PluginError> {
        let hex = berth_sdk::digest::validate(digest)?;
        Ok(format!("blobs/sha256/{hex}"))
    }

    fn describe(&self) -> String {
        match self {
            Source::Dir(p) | Source::Tar(p, _) => p.display().to_string(),
        }
    }
}
