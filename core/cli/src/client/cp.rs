//! `berth cp`: copies between a container (CONTAINER:PATH) and the local
//! filesystem through the daemon's archive API (tar streams), with docker's
//! rules for where things land.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hyper::Method;

use super::http::{enc, Client, DaemonError};

enum End {
    Local(PathBuf),
    Container(String, String),
}

fn parse(s: &str) -> End {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return End::Local(PathBuf::from(s));
    }
    match s.split_once(':') {
        Some((c, p)) if !c.is_empty() => End::Container(c.to_string(), p.to_string()),
        _ => End::Local(PathBuf::from(s)),
    }
}

fn tar_of(src: &Path, name: &str) -> Result<Vec<u8>> {
    let mut t = tar::Builder::new(Vec::new());
    t.follow_symlinks(false);
    let meta =
        std::fs::symlink_metadata(src).with_context(|| format!("lstat {}", src.display()))?;
    if meta.is_dir() {
        t.append_dir_all(name, src)
    } else {
        t.append_path_with_name(src, name)
    }
    .with_context(|| format!("archiving {}", src.display()))?;
    Ok(t.into_inner()?)
}

fn base(p: &str) -> String {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into())
}

/// Whether a path in the container is a directory (`None`: it does not exist).
async fn container_is_dir(c: &Client, id: &str, path: &str) -> Result<Option<bool>> {
    match c
        .call(
            Method::HEAD,
            &format!("/containers/{}/archive?path={}", enc(id), enc(path)),
            None,
        )
        .await
    {
        Ok(_) => {
            // `PATH/.` exists only when PATH is a directory.
            let dir = c
                .call(
                    Method::HEAD,
                    &format!(
                        "/containers/{}/archive?path={}",
                        enc(id),
                        enc(&format!("{}/.", path.trim_end_matches('/')))
                    ),
                    None,
                )
                .await
                .is_ok();
            Ok(Some(dir))
        }
        // HEAD answers carry no message: a 404 here is the path (the container was found by name first).
        Err(e)
            if e.downcast_ref::<DaemonError>()
                .is_some_and(|d| d.status == 404) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub async fn cp(c: &Client, src: &str, dst: &str) -> Result<i32> {
    match (parse(src), parse(dst)) {
        (End::Container(..), End::Container(..)) => {
            bail!("copying between containers is not supported")
        }
        (End::Local(_), End::Local(_)) => {
            bail!("must specify at least one container source (CONTAINER:PATH)")
        }
        (End::Container(id, path), End::Local(to)) => {
            let (_, data) = c
                .call(
                    Method::GET,
                    &format!("/containers/{}/archive?path={}", enc(&id), enc(&path)),
                    None,
                )
                .await?;
            if to.as_os_str() == "-" {
                use std::io::Write as _;
                std::io::stdout().write_all(&data)?;
                return Ok(0);
            }
            if to.is_dir() {
                tar::Archive::new(&data[..])
                    .unpack(&to)
                    .with_context(|| format!("extracting into {}", to.display()))?;
                return Ok(0);
            }
            let parent = to
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                bail!("no such directory: {}", parent.display());
            }
            let tmp = tempfile::Builder::new()
                .prefix(".berth-cp-")
                .tempdir_in(parent)?;
            tar::Archive::new(&data[..])
                .unpack(tmp.path())
                .with_context(|| format!("extracting into {}", parent.display()))?;
            let top = tmp.path().join(base(&path));
            std::fs::rename(&top, &to)
                .with_context(|| format!("moving {} to {}", top.display(), to.display()))?;
            Ok(0)
        }
        (End::Local(from), End::Container(id, path)) => {
            c.json::<crate::api::containers::ContainerInspect>(
                Method::GET,
                &format!("/containers/{}/json", enc(&id)),
                None,
            )
            .await?;
            if from.as_os_str() == "-" {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)?;
                c.upload(
                    Method::PUT,
                    &format!("/containers/{}/archive?path={}", enc(&id), enc(&path)),
                    data.into(),
                    "application/x-tar",
                )
                .await?;
                return Ok(0);
            }
            let (dir, name) = match container_is_dir(c, &id, &path).await? {
                Some(true) => (path.clone(), base(&from.to_string_lossy())),
                Some(false) if from.is_dir() => bail!("cannot copy a directory to a file: {path}"),
                _ => {
                    let parent = Path::new(&path)
                        .parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "/".into());
                    (parent, base(&path))
                }
            };
            let data = tar_of(&from, &name)?;
            c.upload(
                Method::PUT,
                &format!("/containers/{}/archive?path={}", enc(&id), enc(&dir)),
                data.into(),
                "application/x-tar",
            )
            .await?;
            Ok(0)
        }
    }
}
