//! A container's log in docker's `json-file` format: one JSON object per
//! line (`{"log": …, "stream": "stdout", "time": RFC 3339 with nanoseconds}`),
//! rotated by size into `NAME.1`, `NAME.2`, … (oldest last), as docker does.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Size-based rotation (`--log-opt max-size=10m --log-opt max-file=3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Bytes per file; 0 = never rotate.
    pub max_size: u64,
    /// Files kept, the live one included (at least 1).
    pub max_files: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size: 0,
            max_files: 1,
        }
    }
}

impl Rotation {
    /// From docker's log options; an unknown option or a bad value is an error.
    pub fn from_opts(
        kind: &str,
        opts: &std::collections::BTreeMap<String, String>,
    ) -> Result<Rotation, String> {
        if !(kind.is_empty() || kind == "json-file") {
            return Err(format!(
                "logging driver {kind:?} is not supported (berth writes json-file logs)"
            ));
        }
        let mut r = Rotation::default();
        for (k, v) in opts {
            match k.as_str() {
                "max-size" => {
                    r.max_size = if v == "-1" {
                        0
                    } else {
                        super::config::parse_size(v)
                            .map_err(|e| format!("log-opt max-size: {e}"))?
                            as u64
                    }
                }
                "max-file" => {
                    r.max_files = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| format!("log-opt max-file: invalid value {v:?}"))?
                }
                "compress" | "mode" | "labels" | "env" | "tag" => {}
                other => {
                    return Err(format!(
                        "unknown log opt '{other}' for json-file log driver"
                    ))
                }
            }
        }
        if r.max_files > 1 && r.max_size == 0 {
            return Err("max-file cannot be set without max-size".into());
        }
        Ok(r)
    }
}

/// Appends entries to the live log file and rotates it.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl Writer {
    pub fn open(path: &Path, rotation: Rotation) -> std::io::Result<Writer> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
        })
    }

    pub fn write(&mut self, stream: &str, log: &str) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(&Entry {
            log: log.to_string(),
            stream: stream.to_string(),
            time: crate::store::now(),
        })
        .expect("serializable");
        line.push(b'\n');
        if self.rotation.max_size > 0
            && self.size > 0
            && self.size + line.len() as u64 > self.rotation.max_size
        {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let n = self.rotation.max_files;
        if n <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for i in (1..n - 1).rev() {
            let _ = std::fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// Every entry of the log, oldest first (rotated files included).
pub fn read_all(path: &Path) -> Vec<Entry> {
    let mut files = Vec::new();
    let mut i = 1;
    while rotated(path, i).exists() {
        files.push(rotated(path, i));
        i += 1;
    }
    files.reverse();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    for f in files {
        if let Ok(f) = File::open(&f) {
            out.extend(parse(BufReader::new(f)).0);
        }
    }
    out
}

/// Parses complete lines; returns the entries and the bytes consumed.
pub fn parse(r: impl BufRead) -> (Vec<Entry>, u64) {
    let mut out = Vec::new();
    let mut used = 0u64;
    for line in r.split(b'\n') {
        let Ok(line) = line else { break };
        used += line.len() as u64 + 1;
        if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
            out.push(e);
        }
    }
    (out, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(
            crate::store::format_time(0, 5),
            "1970-01-01T00:00:00.000000005Z"
        );
        assert_eq!(
            crate::store::format_time(1_795_000_000, 0),
            "2026-11-18T11:06:40.000000000Z"
        );
    }

    #[test]
    fn rotation_keeps_max_files() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c-json.log");
        let mut w = Writer::open(
            &p,
            Rotation {
                max_size: 200,
                max_files: 3,
            },
        )
        .unwrap();
        for i in 0..40 {
            w.write("stdout", &format!("line {i}\n")).unwrap();
        }
        assert!(rotated(&p, 2).exists() && !rotated(&p, 3).exists());
        let all = read_all(&p);
        assert_eq!(all.last().unwrap().log, "line 39\n");
        // Older lines were dropped, the kept ones are in order.
        let n: Vec<u32> = all
            .iter()
            .map(|e| e.log.trim()[5..].parse().unwrap())
            .collect();
        assert!(n.windows(2).all(|w| w[1] == w[0] + 1) && n[0] > 0);
    }

    #[test]
    fn options() {
        let o = |k: &str, v: &str| [(k.to_string(), v.to_string())].into();
        assert_eq!(
            Rotation::from_opts("json-file", &o("max-size", "1k"))
                .unwrap()
                .max_size,
            1024
        );
        assert!(Rotation::from_opts("", &o("max-size", "12q"))
            .unwrap_err()
            .contains("12q"));
        assert!(Rotation::from_opts("syslog", &Default::default()).is_err());
        assert!(Rotation::from_opts("", &o("max-file", "3")).is_err());
    }
}
