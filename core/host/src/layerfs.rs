//! The host side of `berth:plugin/layer-fs` and `berth:plugin/log`.
//!
//! A path leaving the root is a policy violation: the call traps and fails
//! with [`crate::HostError::Denied`]. Refusals the grants decide (device
//! nodes, xattr names) and OS errors go back to the plugin as WIT errors.

use std::io::{self, Write};

use wasmtime::component::Resource;
use wasmtime_wasi_io::streams::{DynInputStream, StreamError};

use crate::beneath::FsError;
use crate::bindings::storage::berth::plugin::layer_fs::{
    self, EntryKind, FileKind, Meta, NodeKind, StatInfo, Usage,
};
use crate::bindings::storage::berth::plugin::log::{self, Level};
use crate::bindings::storage::berth::plugin::types::Error as WitError;
use crate::error::Refusal;
use crate::fsops;
use crate::state::State;
use crate::streams::{copy_exact, lock};

type Ret<T> = wasmtime::Result<Result<T, WitError>>;

impl State {
    /// Turns a primitive's outcome into a WIT result, or a trap for an escape.
    fn outcome<T>(&mut self, op: &str, r: Result<T, FsError>) -> Ret<T> {
        match r {
            Ok(v) => Ok(Ok(v)),
            Err(FsError::Escape { path, why }) => Err(self.violation(Refusal::Path {
                op: op.to_owned(),
                path,
                why: why.to_string(),
            })),
            Err(FsError::Denied(m)) => Ok(Err(WitError::Denied(m))),
            Err(FsError::Invalid(m)) => Ok(Err(WitError::Invalid(m))),
            Err(FsError::Os { path, err }) => {
                let m = format!("{op} {path}: {err}");
                Ok(Err(match err.kind() {
                    io::ErrorKind::NotFound => WitError::NotFound(m),
                    io::ErrorKind::AlreadyExists => WitError::AlreadyExists(m),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData => {
                        WitError::Invalid(m)
                    }
                    _ => WitError::Other(m),
                }))
            }
        }
    }

    /// Copies `size` bytes of `content` into `file`: straight from the layer
    /// reader when `content` is the call's tar stream, otherwise through the
    /// stream resource.
    async fn fill(
        &mut self,
        file: &mut std::fs::File,
        content: &Resource<DynInputStream>,
        size: u64,
    ) -> io::Result<()> {
        if let Some((rep, reader)) = &self.tar {
            if *rep == content.rep() {
                let mut src = lock(reader);
                return copy_exact(&mut **src, file, size);
            }
        }
        let stream = self
            .table
            .get_mut(content)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut left = size;
        while left > 0 {
            match stream.read(left.min(256 << 10) as usize) {
                Ok(b) if b.is_empty() => stream.ready().await,
                Ok(b) => {
                    file.write_all(&b)?;
                    left -= b.len() as u64;
                }
                Err(StreamError::Closed) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the stream ended after {} of {size} bytes", size - left),
                    ))
                }
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
        Ok(())
    }
}

fn meta(m: Meta) -> fsops::Meta {
    fsops::Meta {
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        mtime: m.mtime,
    }
}

impl layer_fs::Host for State {
    async fn mkdir(&mut self, path: String, m: Meta) -> Ret<()> {
        let r = fsops::mkdir(&self.root, &path, &meta(m), &mut self.journal);
        self.outcome("mkdir", r)
    }

    async fn write_file(
        &mut self,
        path: String,
        m: Meta,
        content: Resource<DynInputStream>,
        size: u64,
    ) -> Ret<()> {
        let mut file = match fsops::create_file(&self.root, &path, &mut self.journal) {
            Ok(f) => f,
            Err(e) => return self.outcome("write-file", Err(e)),
        };
        if let Err(err) = self.fill(&mut file, &content, size).await {
            return self.outcome("write-file", Err(FsError::Os { path, err }));
        }
        let r = fsops::finish_file(&file, &path, &meta(m));
        self.outcome("write-file", r)
    }

    async fn symlink(&mut self, path: String, target: String, uid: u32, gid: u32) -> Ret<()> {
        let r = fsops::symlink(&self.root, &path, &target, uid, gid, &mut self.journal);
        self.outcome("symlink", r)
    }

    async fn hardlink(&mut self, path: String, target: String) -> Ret<()> {
        let r = fsops::hardlink(&self.root, &path, &target, &mut self.journal);
        self.outcome("hardlink", r)
    }

    async fn mknod(
        &mut self,
        path: String,
        kind: NodeKind,
        major: u32,
        minor: u32,
        m: Meta,
    ) -> Ret<()> {
        let kind = match kind {
            NodeKind::CharDevice => fsops::NodeKind::Char,
            NodeKind::BlockDevice => fsops::NodeKind::Block,
            NodeKind::Fifo => fsops::NodeKind::Fifo,
        };
        let r = fsops::mknod(
            &self.root,
            &path,
            kind,
            (major, minor),
            &meta(m),
            self.devices_granted,
            &mut self.journal,
        );
        self.outcome("mknod", r)
    }

    async fn set_xattr(&mut self, path: String, name: String, value: Vec<u8>) -> Ret<()> {
        let r = fsops::set_xattr(&self.root, &path, &name, &value);
        self.outcome("set-xattr", r)
    }

    async fn whiteout(&mut self, path: String) -> Ret<()> {
        let r = fsops::whiteout(&self.root, &path, &mut self.journal);
        self.outcome("whiteout", r)
    }

    async fn set_opaque(&mut self, path: String) -> Ret<()> {
        let r = fsops::set_opaque(&self.root, &path);
        self.outcome("set-opaque", r)
    }

    async fn remove(&mut self, path: String) -> Ret<()> {
        let r = fsops::remove(&self.root, &path);
        self.outcome("remove", r)
    }

    async fn copy_tree(&mut self, src: String, dst: String) -> Ret<()> {
        let r = fsops::copy_tree(&self.root, &src, &dst, &mut self.journal);
        self.outcome("copy-tree", r)
    }

    async fn kind(&mut self, path: String) -> wasmtime::Result<Option<EntryKind>> {
        match fsops::kind(&self.root, &path) {
            Ok(k) => Ok(k.map(|k| match k {
                fsops::EntryKind::File => EntryKind::File,
                fsops::EntryKind::Directory => EntryKind::Directory,
                fsops::EntryKind::Symlink => EntryKind::Symlink,
                fsops::EntryKind::Other => EntryKind::Other,
            })),
            Err(FsError::Escape { path, why }) => Err(self.violation(Refusal::Path {
                op: "kind".into(),
                path,
                why: why.to_string(),
            })),
            Err(_) => Ok(None),
        }
    }

    async fn disk_usage(&mut self, path: String) -> Ret<Usage> {
        let r = fsops::disk_usage(&self.root, &path).map(|u| Usage {
            size: u.size,
            inodes: u.inodes,
        });
        self.outcome("disk-usage", r)
    }

    async fn stat(&mut self, path: String) -> Ret<StatInfo> {
        let r = fsops::stat(&self.root, &path).map(stat_info);
        self.outcome("stat", r)
    }

    async fn read_link(&mut self, path: String) -> Ret<String> {
        let r = fsops::read_link(&self.root, &path);
        self.outcome("read-link", r)
    }

    async fn list_xattrs(&mut self, path: String) -> Ret<Vec<String>> {
        let r = fsops::list_xattrs(&self.root, &path);
        self.outcome("list-xattrs", r)
    }

    async fn get_xattr(&mut self, path: String, name: String) -> Ret<Vec<u8>> {
        let r = fsops::get_xattr(&self.root, &path, &name);
        self.outcome("get-xattr", r)
    }
}

fn stat_info(s: fsops::StatInfo) -> StatInfo {
    StatInfo {
        kind: match s.kind {
            fsops::FileKind::File => FileKind::File,
            fsops::FileKind::Directory => FileKind::Directory,
            fsops::FileKind::Symlink => FileKind::Symlink,
            fsops::FileKind::CharDevice => FileKind::CharDevice,
            fsops::FileKind::BlockDevice => FileKind::BlockDevice,
            fsops::FileKind::Fifo => FileKind::Fifo,
            fsops::FileKind::Socket => FileKind::Socket,
        },
        mode: s.mode,
        uid: s.uid,
        gid: s.gid,
        size: s.size,
        mtime: s.mtime,
        mtime_nsec: s.mtime_nsec,
        rdev_major: s.rdev.0,
        rdev_minor: s.rdev.1,
        nlink: s.nlink,
        dev: s.dev,
        ino: s.ino,
    }
}

impl log::Host for State {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.plugin;
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}
