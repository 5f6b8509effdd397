//! Files into and out of a container's root filesystem through the
//! `berth archive` helper, which chroots into the (mounted) root first, so
//! paths and symlinks resolve as they would in the container and never
//! reach the host's files: `cp` and a build's `COPY`/`ADD` use it.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};

use super::Containers;
use crate::error::{EngineError, Result};

impl Containers {
    /// The helper on `rootfs` (a container's `<dir>/rootfs`), not yet run.
    /// For a remapped container it works in the container's user namespace,
    /// so owners read and written are the container's.
    pub fn archive_cmd(&self, rootfs: &Path) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.exe);
        c.arg("archive")
            .arg("--rootfs")
            .arg(rootfs)
            .kill_on_drop(true);
        let id = rootfs
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str());
        let remap = id
            .and_then(|id| self.get(id).ok())
            .and_then(|rec| self.remap_of(&rec.host_config));
        if let Some(ns) = remap.and_then(|r| r.userns().ok()) {
            use std::os::fd::AsRawFd as _;
            c.arg("--userns").arg(format!(
                "/proc/{}/fd/{}",
                std::process::id(),
                ns.as_raw_fd()
            ));
        }
        c
    }

    /// Extracts the tar read from `src` into directory `dir` of container
    /// `key`'s filesystem (mounted for the while if the container is not
    /// running), with the tar's owners and modes.
    pub async fn put_archive(
        &self,
        key: &str,
        dir: &str,
        mut src: impl AsyncRead + Unpin,
    ) -> Result<()> {
        let (id, rootfs, ours) = self.rootfs(key).await?;
        let run = async {
            let mut child = self
                .archive_cmd(&rootfs)
                .arg("--put")
                .arg(dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?;
            if let Some(mut i) = child.stdin.take() {
                // A helper that failed early closes its stdin: its stderr says why.
                let _ = tokio::io::copy(&mut src, &mut i).await;
                let _ = i.shutdown().await;
            }
            child.wait_with_output().await
        };
        let out = run.await;
        if ours {
            self.release_rootfs(&id).await;
        }
        let out = out.map_err(|e| EngineError::io("running the archive helper for", &id, e))?;
        if out.status.success() {
            return Ok(());
        }
        let reason = String::from_utf8_lossy(&out.stderr)
            .trim()
            .trim_start_matches("berth: ")
            .to_string();
        Err(EngineError::Archive {
            container: id,
            path: dir.to_owned(),
            missing: reason.contains("Could not find"),
            reason,
        })
    }

    /// Writes a tar of `path` in container `key`'s filesystem (named by its
    /// last component, as `cp` makes it) to `out`.
    pub async fn get_archive(
        &self,
        key: &str,
        path: &str,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<()> {
        let (id, rootfs, ours) = self.rootfs(key).await?;
        let run = async {
            let mut child = self
                .archive_cmd(&rootfs)
                .arg("--get")
                .arg(path)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            let mut stdout = child.stdout.take().expect("piped");
            let copied = tokio::io::copy(&mut stdout, out).await;
            let status = child.wait_with_output().await?;
            copied.map(|_| status)
        };
        let out = run.await;
        if ours {
            self.release_rootfs(&id).await;
        }
        let out = out.map_err(|e| EngineError::io("running the archive helper for", &id, e))?;
        if out.status.success() {
            return Ok(());
        }
        let reason = String::from_utf8_lossy(&out.stderr)
            .trim()
            .trim_start_matches("berth: ")
            .to_string();
        Err(EngineError::Archive {
            container: id,
            path: path.to_owned(),
            missing: reason.contains("Could not find"),
            reason,
        })
    }
}
