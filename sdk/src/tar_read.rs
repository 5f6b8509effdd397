//! A streaming reader of OCI layer tars over a blocking source.
//!
//! Headers are parsed with the `tar` crate's header types (its unpack code does
//! not work on wasm32). File content is left in the source: the caller either
//! reads it ([`TarReader::read_content`]) or hands the source to the host, which
//! copies it without passing it through the guest, and then reports it as
//! consumed ([`TarReader::consumed_externally`]). Readers must therefore never
//! read ahead of what they are asked for.

use std::io::{self, Read, Seek, SeekFrom};

use crate::error::SdkError;
use crate::path;

const BLOCK: u64 = 512;
/// The largest PAX or GNU long-name record the reader accepts.
const MAX_META: u64 = 1 << 20;

/// A blocking byte source that can skip forward.
pub trait TarSource {
    /// Reads up to `buf.len()` bytes; 0 means the end of the stream.
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Skips `n` bytes.
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let want = scratch.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = self.read_some(&mut scratch[..want])?;
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            n -= got as u64;
        }
        Ok(())
    }
}

/// A [`TarSource`] over any reader; skipping reads and discards.
#[derive(Debug)]
pub struct ReadSource<R>(pub R);

impl<R: Read> TarSource for ReadSource<R> {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

/// A [`TarSource`] over a seekable reader (an archive file); skipping seeks.
#[derive(Debug)]
pub struct SeekSource<R>(pub R);

impl<R: Read + Seek> TarSource for SeekSource<R> {
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n = i64::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.0.seek(SeekFrom::Current(n)).map(drop)
    }
}

/// The kind of a tar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file; its content follows the header.
    File,
    /// A directory.
    Directory,
    /// A symbolic link to [`Entry::link`] (stored as is, may be absolute).
    Symlink,
    /// A hard link to the earlier entry [`Entry::link`] (a cleaned path).
    HardLink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
}

/// One entry of a layer tar, with PAX and GNU extensions applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The cleaned path (`""` is the layer root).
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Content bytes following the header (regular files only, else 0).
    pub size: u64,
    /// Symlink target (raw) or hard-link target (cleaned); empty otherwise.
    pub link: String,
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
    /// Extended attributes from PAX `SCHILY.xattr.*` records.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Offset of the content in the stream (for random access into archives).
    pub offset: u64,
}

impl Entry {
    /// A new entry with root ownership and no content.
    pub fn new(path: impl Into<String>, kind: EntryKind, mode: u32) -> Self {
        Entry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            link: String::new(),
            major: 0,
            minor: 0,
            xattrs: Vec::new(),
            offset: 0,
        }
    }
}

/// Extensions collected from PAX and GNU headers for the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<i64>,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Reads entries from a tar stream one at a time.
#[derive(Debug)]
pub struct TarReader<S> {
    src: S,
    pos: u64,
    remaining: u64,
    padding: u64,
    done: bool,
}

impl<S: TarSource> TarReader<S> {
    /// A reader at the start of a tar stream.
    pub fn new(src: S) -> Self {
        TarReader {
            src,
            pos: 0,
            remaining: 0,
            padding: 0,
            done: false,
        }
    }

    /// The underlying source, positioned at the current entry's unread content.
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.src
    }

    /// Content bytes of the current entry not yet consumed.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Records that `n` content bytes were read directly from the source.
    pub fn consumed_externally(&mut self, n: u64) {
        let n = n.min(self.remaining);
        self.remaining -= n;
        self.pos += n;
    }

    /// Reads content of the current entry; 0 at its end.
    pub fn read_content(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let got = self.src.read_some(&mut buf[..want])?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.consumed_externally(got as u64);
        Ok(got)
    }

    /// Reads the rest of the current entry's content into memory (at most `max` bytes).
    pub fn read_content_to_vec(&mut self, max: u64) -> Result<Vec<u8>, SdkError> {
        if self.remaining > max {
            return Err(SdkError::TarHeader {
                offset: self.pos,
                reason: format!("entry of {} bytes is larger than {max}", self.remaining),
            });
        }
        let mut out = vec![0u8; self.remaining as usize];
        let mut filled = 0;
        while filled < out.len() {
            match self.read_content(&mut out[filled..])? {
                0 => return Err(SdkError::TarTruncated(self.pos)),
                n => filled += n,
            }
        }
        Ok(out)
    }

    /// The next entry, or `None` at the end of the archive. Unread content of
    /// the previous entry is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, SdkError> {
        let mut pending = Pending::default();
        loop {
            self.skip_rest()?;
            if self.done {
                return Ok(None);
            }
            let offset = self.pos;
            let Some(block) = self.read_block()? else {
                self.done = true;
                return Ok(None);
            };
            if block.iter().all(|&b| b == 0) {
                self.done = true;
                return Ok(None);
            }
            let header = tar::Header::from_byte_slice(&block);
            check_sum(header, &block, offset)?;
            let bad = |reason: String| SdkError::TarHeader { offset, reason };
            let flag = header.entry_type().as_byte();
            let size = match pending.size.take() {
                Some(size) if !matches!(flag, b'x' | b'g' | b'L' | b'K') => size,
                _ => header.entry_size().map_err(|e| bad(format!("size: {e}")))?,
            };
            self.begin_content(size);
            match flag {
                b'x' => {
                    parse_pax(&self.read_content_to_vec(MAX_META)?, &mut pending).map_err(bad)?
                }
                b'g' => {} // global PAX defaults: nothing an OCI layer relies on
                b'L' => pending.path = Some(trim_nul(self.read_content_to_vec(MAX_META)?)),
                b'K' => pending.link = Some(trim_nul(self.read_content_to_vec(MAX_META)?)),
                _ => return self.entry(header, flag, size, offset, pending).map(Some),
            }
        }
    }

    fn entry(
        &mut self,
        header: &tar::Header,
        flag: u8,
        size: u64,
        offset: u64,
        p: Pending,
    ) -> Result<Entry, SdkError> {
        let bad = |reason: String| SdkError::TarHeader { offset, reason };
        let raw_path = p.path.unwrap_or_else(|| header.path_bytes().into_owned());
        let raw_path = String::from_utf8(raw_path).map_err(|_| bad("path is not UTF-8".into()))?;
        let kind = match flag {
            b'0' | 0 | b'7' if raw_path.ends_with('/') => EntryKind::Directory,
            b'0' | 0 | b'7' => EntryKind::File,
            b'1' => EntryKind::HardLink,
            b'2' => EntryKind::Symlink,
            b'3' => EntryKind::CharDevice,
            b'4' => EntryKind::BlockDevice,
            b'5' => EntryKind::Directory,
            b'6' => EntryKind::Fifo,
            other => {
                return Err(SdkError::TarUnsupported {
                    path: raw_path,
                    kind: other as char,
                })
            }
        };
        if kind != EntryKind::File {
            // Header-only types carry no content whatever their size field says.
            self.begin_content(0);
        }
        let raw_link = p
            .link
            .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        let raw_link = String::from_utf8(raw_link.unwrap_or_default())
            .map_err(|_| bad("link name is not UTF-8".into()))?;
        let link = match kind {
            EntryKind::HardLink => path::clean(&raw_link)?,
            EntryKind::Symlink => raw_link,
            _ => String::new(),
        };
        // An empty numeric field (some writers leave them blank) reads as 0.
        let num = |r: io::Result<u64>, field: &[u8], what: &str| {
            if r.is_err() && field.iter().all(|&b| b == 0 || b == b' ') {
                return Ok(0);
            }
            r.ok()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| bad(format!("bad {what}")))
        };
        let old = header.as_old();
        let dev = |r: io::Result<Option<u32>>| r.ok().flatten().unwrap_or(0);
        let is_dev = matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice);
        Ok(Entry {
            path: path::clean(&raw_path)?,
            kind,
            mode: num(header.mode().map(u64::from), &old.mode, "mode")? & 0o7777,
            uid: p
                .uid
                .map_or_else(|| num(header.uid(), &old.uid, "uid"), Ok)?,
            gid: p
                .gid
                .map_or_else(|| num(header.gid(), &old.gid, "gid"), Ok)?,
            mtime: p
                .mtime
                .unwrap_or_else(|| header.mtime().map_or(0, |m| m as i64)),
            size: if kind == EntryKind::File { size } else { 0 },
            link,
            major: if is_dev {
                dev(header.device_major())
            } else {
                0
            },
            minor: if is_dev {
                dev(header.device_minor())
            } else {
                0
            },
            xattrs: p.xattrs,
            offset: self.pos,
        })
    }

    fn begin_content(&mut self, size: u64) {
        self.remaining = size;
        self.padding = (BLOCK - size % BLOCK) % BLOCK;
    }

    fn skip_rest(&mut self) -> Result<(), SdkError> {
        let n = self.remaining + self.padding;
        if n > 0 {
            self.src.skip(n).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => SdkError::TarTruncated(self.pos),
                _ => SdkError::Io(e),
            })?;
            self.pos += n;
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    /// Reads one header block; `None` at a clean end of stream.
    fn read_block(&mut self) -> Result<Option<[u8; 512]>, SdkError> {
        let mut block = [0u8; 512];
        let mut filled = 0;
        while filled < block.len() {
            match self.src.read_some(&mut block[filled..])? {
                0 if filled == 0 => return Ok(None),
                0 => return Err(SdkError::TarTruncated(self.pos + filled as u64)),
                n => filled += n,
            }
        }
        self.pos += BLOCK;
        Ok(Some(block))
    }
}

fn check_sum(header: &tar::Header, block: &[u8; 512], offset: u64) -> Result<(), SdkError> {
    let want = header.cksum().map_err(|e| SdkError::TarHeader {
        offset,
        reason: format!("checksum field: {e}"),
    })?;
    let (mut unsigned, mut signed) = (0u32, 0i32);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u32::from(b);
        signed += i32::from(b as i8);
    }
    if want == unsigned || want as i32 == signed {
        Ok(())
    } else {
        Err(SdkError::TarHeader {
            offset,
            reason: "checksum mismatch (not a tar stream?)".into(),
        })
    }
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

/// Parses PAX records (`"<len> <key>=<value>\n"`) into `p`.
fn parse_pax(mut data: &[u8], p: &mut Pending) -> Result<(), String> {
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("PAX record without length")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record length is not a number")?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("PAX record length out of range".into());
        }
        let record = &data[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without '='")?;
        let key = std::str::from_utf8(&record[..eq]).map_err(|_| "PAX key is not UTF-8")?;
        let value = &record[eq + 1..];
        let text = || std::str::from_utf8(value).map_err(|_| format!("PAX {key} is not UTF-8"));
        let number = |what: &str| -> Result<u64, String> {
            text()?
                .parse()
                .map_err(|_| format!("PAX {what} is not a number"))
        };
        match key {
            "path" => p.path = Some(value.to_vec()),
            "linkpath" => p.link = Some(value.to_vec()),
            "size" => p.size = Some(number("size")?),
            "uid" => p.uid = Some(u32::try_from(number("uid")?).map_err(|_| "PAX uid too big")?),
            "gid" => p.gid = Some(u32::try_from(number("gid")?).map_err(|_| "PAX gid too big")?),
            "mtime" => {
                let t = text()?;
                let secs = t.split('.').next().unwrap_or(t);
                p.mtime = Some(secs.parse().map_err(|_| "PAX mtime is not a number")?);
            }
            _ => {
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    p.xattrs.push((name.to_string(), value.to_vec()));
                }
            }
        }
        data = &data[len..];
    }
    Ok(())
}

#[cfg(test)]
#[path = "tar_read_tests.rs"]
mod tests;
