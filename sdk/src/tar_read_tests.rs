//! Tests of the tar reader against archives made with the `tar` crate's Builder.

use super::*;

fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_uid(1000);
    h.set_gid(100);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h.set_cksum();
    h
}

/// A header whose name field holds `raw` bytes verbatim (e.g. a leading `/`).
fn raw_name(raw: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = header("x", kind, size);
    let name = &mut h.as_old_mut().name;
    name.fill(0);
    name[..raw.len()].copy_from_slice(raw.as_bytes());
    h.set_cksum();
    h
}

fn pax(b: &mut tar::Builder<Vec<u8>>, records: &[(&str, &[u8])]) {
    let mut data = Vec::new();
    for (k, v) in records {
        let body = [k.as_bytes(), b"=", v].concat();
        data.extend(crate::tar_write::pax_record(&body));
    }
    b.append(
        &header("PaxHeaders/x", tar::EntryType::XHeader, data.len() as u64),
        &data[..],
    )
    .unwrap();
}

fn sample() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append(&header("./", tar::EntryType::Directory, 0), &[][..])
        .unwrap();
    b.append(&header("./etc/", tar::EntryType::Directory, 0), &[][..])
        .unwrap();
    b.append(
        &header("./etc/hosts", tar::EntryType::Regular, 9),
        &b"127.0.0.1"[..],
    )
    .unwrap();
    b.append(
        &raw_name("/etc/umoci", tar::EntryType::Regular, 3),
        &b"abc"[..],
    )
    .unwrap();
    let long = format!("usr/share/{}/doc.txt", "long".repeat(40));
    let mut h = header("placeholder", tar::EntryType::Regular, 2);
    b.append_data(&mut h, &long, &b"hi"[..]).unwrap(); // GNU 'L' long name
    let mut sl = header("bin/sh", tar::EntryType::Symlink, 0);
    sl.set_link_name("/bin/busybox").unwrap();
    sl.set_cksum();
    b.append(&sl, &[][..]).unwrap();
    let mut hl = header("bin/ls", tar::EntryType::Link, 0);
    hl.set_link_name("./etc/hosts").unwrap();
    hl.set_cksum();
    b.append(&hl, &[][..]).unwrap();
    let mut dev = header("dev/null", tar::EntryType::Char, 0);
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    dev.set_mode(0o666);
    dev.set_cksum();
    b.append(&dev, &[][..]).unwrap();
    b.append(&header("run/fifo", tar::EntryType::Fifo, 0), &[][..])
        .unwrap();
    let pax_path = format!("opt/{}/ping", "p".repeat(120));
    pax(
        &mut b,
        &[
            ("path", pax_path.as_bytes()),
            ("uid", b"70000"),
            ("mtime", b"1700000001.5"),
            ("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02"),
            ("SCHILY.xattr.user.note", b"a=b"),
        ],
    );
    let mut setuid = header("truncated", tar::EntryType::Regular, 4);
    setuid.set_mode(0o4755);
    setuid.set_cksum();
    b.append(&setuid, &b"ping"[..]).unwrap();
    b.append(&header("etc/.wh.motd", tar::EntryType::Regular, 0), &[][..])
        .unwrap();
    b.into_inner().unwrap()
}

#[test]
fn reads_every_kind_of_entry() {
    let bytes = sample();
    let mut r = TarReader::new(ReadSource(&bytes[..]));
    let mut got = Vec::new();
    while let Some(e) = r.next_entry().unwrap() {
        let content = r.read_content_to_vec(1 << 20).unwrap();
        got.push((e, content));
    }
    let paths: Vec<&str> = got.iter().map(|(e, _)| e.path.as_str()).collect();
    assert_eq!(paths[..4], ["", "etc", "etc/hosts", "etc/umoci"]);
    assert!(paths[4].starts_with("usr/share/longlong") && paths[4].ends_with("/doc.txt"));
    assert_eq!(got[2].1, b"127.0.0.1");
    assert_eq!(got[2].0.uid, 1000);
    assert_eq!(got[2].0.gid, 100);
    assert_eq!(got[2].0.mtime, 1_700_000_000);
    assert_eq!(got[3].1, b"abc");
    assert_eq!(got[4].1, b"hi");

    let (sh, _) = &got[5];
    assert_eq!(
        (sh.kind, sh.link.as_str()),
        (EntryKind::Symlink, "/bin/busybox")
    );
    let (ls, _) = &got[6];
    assert_eq!(
        (ls.kind, ls.link.as_str()),
        (EntryKind::HardLink, "etc/hosts")
    );
    let (null, _) = &got[7];
    assert_eq!(
        (null.kind, null.major, null.minor, null.mode),
        (EntryKind::CharDevice, 1, 3, 0o666)
    );
    assert_eq!(got[8].0.kind, EntryKind::Fifo);

    let (ping, content) = &got[9];
    assert!(ping.path.starts_with("opt/pppp") && ping.path.ends_with("/ping"));
    assert_eq!(
        (ping.uid, ping.gid, ping.mtime, ping.mode),
        (70000, 100, 1_700_000_001, 0o4755)
    );
    assert_eq!(content, b"ping");
    assert_eq!(
        ping.xattrs,
        [
            (
                "security.capability".to_string(),
                b"\x01\x00\x00\x02".to_vec()
            ),
            ("user.note".to_string(), b"a=b".to_vec())
        ]
    );
    assert_eq!(got[10].0.path, "etc/.wh.motd");
    assert_eq!(got.len(), 11);
}

#[test]
fn external_consumption_and_offsets() {
    let bytes = sample();
    let mut r = TarReader::new(ReadSource(&bytes[..]));
    while let Some(e) = r.next_entry().unwrap() {
        if e.path == "etc/hosts" {
            assert_eq!(&bytes[e.offset as usize..][..9], b"127.0.0.1");
            // Someone else (the host) reads the content straight from the source.
            let mut buf = [0u8; 9];
            r.source_mut().0.read_exact(&mut buf).unwrap();
            r.consumed_externally(9);
            assert_eq!(&buf, b"127.0.0.1");
        }
    }
    // Skipping by seeking gives the same entries.
    let mut r = TarReader::new(SeekSource(io::Cursor::new(&bytes)));
    let mut n = 0;
    while r.next_entry().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 11);
}

#[test]
fn rejects_escapes_garbage_and_truncation() {
    let mut b = tar::Builder::new(Vec::new());
    b.append(
        &raw_name("../../etc/passwd", tar::EntryType::Regular, 0),
        &[][..],
    )
    .unwrap();
    let bytes = b.into_inner().unwrap();
    let err = TarReader::new(ReadSource(&bytes[..]))
        .next_entry()
        .unwrap_err();
    assert!(matches!(err, SdkError::PathEscape(_)), "{err}");

    let mut b = tar::Builder::new(Vec::new());
    let mut hl = header("x", tar::EntryType::Link, 0);
    hl.set_link_name("a/../../../etc/shadow").unwrap_or(());
    let name = &mut hl.as_old_mut().linkname;
    name.fill(0);
    name[..13].copy_from_slice(b"../etc/shadow");
    hl.set_cksum();
    b.append(&hl, &[][..]).unwrap();
    let bytes = b.into_inner().unwrap();
    assert!(TarReader::new(ReadSource(&bytes[..])).next_entry().is_err());

    let garbage = vec![7u8; 1024];
    assert!(TarReader::new(ReadSource(&garbage[..]))
        .next_entry()
        .is_err());

    let bytes = sample();
    let cut = &bytes[..1024 + 100];
    let mut r = TarReader::new(ReadSource(cut));
    let mut result = Ok(Some(Entry::new("", EntryKind::File, 0)));
    while let Ok(Some(_)) = result {
        result = r.next_entry();
    }
    assert!(
        matches!(result, Err(SdkError::TarTruncated(_))),
        "{result:?}"
    );
}

#[test]
fn empty_stream_is_an_empty_archive() {
    assert!(TarReader::new(ReadSource(&[][..]))
        .next_entry()
        .unwrap()
        .is_none());
}
