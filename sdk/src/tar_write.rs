//! Writing OCI layer tars (for `diff`): ustar headers, PAX records for long
//! names, big sizes and xattrs. Content is written by the caller, directly or
//! by splicing into the same stream, followed by [`TarWriter::pad`].

use std::io::{self, Write};

use crate::tar_read::{Entry, EntryKind};

const BLOCK: usize = 512;

/// Writes a tar stream entry by entry.
#[derive(Debug)]
pub struct TarWriter<W> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// The underlying writer, for writing an entry's content.
    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes the header(s) of `e`. For a file, exactly `e.size` content bytes
    /// must follow, then [`TarWriter::pad`].
    pub fn append_header(&mut self, e: &Entry) -> io::Result<()> {
        let mut name = e.path.clone();
        if e.kind == EntryKind::Directory && !name.ends_with('/') {
            name.push('/');
        }
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut header = tar::Header::new_ustar();
        if name.len() > 100 || !name.is_ascii() || header.set_path(&name).is_err() {
            pax.push(("path", name.clone().into_bytes()));
            header
                .set_path(truncate(&name, 100))
                .map_err(invalid(&name))?;
        }
        if !e.link.is_empty() {
            if e.link.len() > 100 || !e.link.is_ascii() {
                pax.push(("linkpath", e.link.clone().into_bytes()));
                header.set_link_name_literal(truncate(&e.link, 100))
            } else {
                header.set_link_name_literal(&e.link)
            }
            .map_err(invalid(&e.link))?;
        }
        let size = if e.kind == EntryKind::File { e.size } else { 0 };
        if size >= 0o77777777777 {
            pax.push(("size", size.to_string().into_bytes()));
        }
        for (key, value) in &e.xattrs {
            pax.push((
                "",
                [b"SCHILY.xattr.".as_slice(), key.as_bytes(), b"=", value].concat(),
            ));
        }
        if !pax.is_empty() {
            self.write_pax(&name, &pax)?;
        }
        header.set_entry_type(match e.kind {
            EntryKind::File => tar::EntryType::Regular,
            EntryKind::Directory => tar::EntryType::Directory,
            EntryKind::Symlink => tar::EntryType::Symlink,
            EntryKind::HardLink => tar::EntryType::Link,
            EntryKind::CharDevice => tar::EntryType::Char,
            EntryKind::BlockDevice => tar::EntryType::Block,
            EntryKind::Fifo => tar::EntryType::Fifo,
        });
        header.set_mode(e.mode & 0o7777);
        header.set_uid(u64::from(e.uid));
        header.set_gid(u64::from(e.gid));
        header.set_mtime(u64::try_from(e.mtime).unwrap_or(0));
        header.set_size(size.min(0o77777777777));
        header.set_device_major(e.major)?;
        header.set_device_minor(e.minor)?;
        header.set_cksum();
        self.out.write_all(header.as_bytes())
    }

    /// Writes the zero padding after `size` content bytes.
    pub fn pad(&mut self, size: u64) -> io::Result<()> {
        let pad = (BLOCK - (size % BLOCK as u64) as usize) % BLOCK;
        self.out.write_all(&[0u8; BLOCK][..pad])
    }

    /// Writes an entry whose content is in memory.
    pub fn append(&mut self, e: &Entry, content: &[u8]) -> io::Result<()> {
        let mut e = e.clone();
        e.size = content.len() as u64;
        self.append_header(&e)?;
        self.out.write_all(content)?;
        self.pad(e.size)
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn write_pax(&mut self, name: &str, records: &[(&str, Vec<u8>)]) -> io::Result<()> {
        let mut data = Vec::new();
        for (key, value) in records {
            // A key "" means `value` is already `key=value`.
            let body = if key.is_empty() {
                value.clone()
            } else {
                [key.as_bytes(), b"=", value].concat()
            };
            data.extend_from_slice(&pax_record(&body));
        }
        let mut h = tar::Header::new_ustar();
        let pax_name = format!("PaxHeaders/{}", truncate(crate::path::file_name(name), 80));
        h.set_path(&pax_name).map_err(invalid(name))?;
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.out.write_all(h.as_bytes())?;
        self.out.write_all(&data)?;
        self.pad(data.len() as u64)
    }
}

/// `"<len> <body>\n"` where len counts the whole record including itself.
pub(crate) fn pax_record(body: &[u8]) -> Vec<u8> {
    let mut len = body.len() + 3;
    loop {
        let total = len.to_string().len() + 1 + body.len() + 1;
        if total == len {
            break;
        }
        len = total;
    }
    [format!("{len} ").as_bytes(), body, b"\n"].concat()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end]
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect()
}

fn invalid(what: &str) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(io::ErrorKind::InvalidInput, format!("{what:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar_read::{ReadSource, TarReader};

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record(b"path=a"), b"9 path=a\n");
        for n in 90..110 {
            let r = pax_record(&vec![b'x'; n]);
            let len: usize = std::str::from_utf8(&r[..r.iter().position(|&b| b == b' ').unwrap()])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(r.len(), len);
        }
    }

    #[test]
    fn round_trips_through_reader_and_tar_crate() {
        let long = format!("usr/{}/file", "d".repeat(150));
        let mut w = TarWriter::new(Vec::new());
        w.append_header(&Entry::new("etc", EntryKind::Directory, 0o755))
            .unwrap();
        w.append(&Entry::new("etc/motd", EntryKind::File, 0o4755), b"hello")
            .unwrap();
        w.append(&Entry::new(long.clone(), EntryKind::File, 0o644), b"x")
            .unwrap();
        let mut link = Entry::new("bin/sh", EntryKind::Symlink, 0o777);
        link.link = "/bin/busybox".into();
        link.xattrs = vec![("user.k".into(), b"v\0w".to_vec())];
        w.append_header(&link).unwrap();
        w.append(&Entry::new(".wh.gone", EntryKind::File, 0), b"")
            .unwrap();
        let bytes = w.finish().unwrap();

        let names: Vec<String> = tar::Archive::new(&bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["etc/", "etc/motd", long.as_str(), "bin/sh", ".wh.gone"]
        );

        let mut r = TarReader::new(ReadSource(&bytes[..]));
        let d = r.next_entry().unwrap().unwrap();
        assert_eq!((d.path.as_str(), d.kind), ("etc", EntryKind::Directory));
        let f = r.next_entry().unwrap().unwrap();
        assert_eq!(f.mode, 0o4755);
        assert_eq!(r.read_content_to_vec(100).unwrap(), b"hello");
        assert_eq!(r.next_entry().unwrap().unwrap().path, long);
        let s = r.next_entry().unwrap().unwrap();
        assert_eq!(s.link, "/bin/busybox");
        assert_eq!(s.xattrs, link.xattrs);
        assert_eq!(r.next_entry().unwrap().unwrap().path, ".wh.gone");
        assert!(r.next_entry().unwrap().is_none());
    }
}
