//! Registry credentials where docker keeps them, so a user's existing login
//! and helpers work: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with `auths` (base64 `user:password`), and the
//! `docker-credential-NAME` helpers named by `credsStore` (all registries)
//! or `credHelpers` (per registry), spoken to with their `get`, `store` and
//! `erase` protocol. The file is rewritten atomically and keeps every key
//! berth does not know.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// docker.io's key in `auths`, as docker writes it.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// One registry's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub secret: String,
}

/// The config directory: `$DOCKER_CONFIG`, else `~/.docker`.
fn dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("HOME is not set: cannot find ~/.docker/config.json (set DOCKER_CONFIG)")?;
    Ok(PathBuf::from(home).join(".docker"))
}

/// The key a registry has in `auths` and in the helpers: docker.io's is
/// its v1 URL, others are `host[:port]`.
pub fn key_of(registry: &str) -> String {
    let (r, _) = berth_engine::engine::registry_of(registry);
    if r == berth_engine::reference::DEFAULT_REGISTRY {
        DOCKER_HUB_KEY.to_owned()
    } else {
        r
    }
}

fn read_config() -> Result<(PathBuf, Map<String, Value>)> {
    let path = dir()?.join("config.json");
    let map = match std::fs::read(&path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
        Ok(b) => serde_json::from_slice::<Value>(&b)
            .with_context(|| format!("{} is not JSON", path.display()))?
            .as_object()
            .cloned()
            .with_context(|| format!("{} is not a JSON object", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok((path, map))
}

fn write_config(path: &PathBuf, map: &Map<String, Value>) -> Result<()> {
    let dir = path.parent().expect("config.json has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    serde_json::to_writer_pretty(&mut tmp, &Value::Object(map.clone()))?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The helper for `key`, if the config names one.
fn helper_for(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get("credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| map.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| format!("docker-credential-{s}"))
}

/// Runs `helper verb` with `input` on stdin; its stdout.
fn run_helper(helper: &str, verb: &str, input: &[u8]) -> Result<(bool, String)> {
    let mut child = Command::new(helper)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running the credential helper {helper} (is it on PATH?)"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input)
        .with_context(|| format!("writing to {helper} {verb}"))?;
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for {helper} {verb}"))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        return Ok((true, text));
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Ok((false, if err.is_empty() { text } else { err }))
}

/// The credentials stored for `registry`, if any.
pub fn get(registry: &str) -> Result<Option<Login>> {
    let key = key_of(registry);
    let (path, map) = read_config()?;
    if let Some(helper) = helper_for(&map, &key) {
        let (ok, out) = run_helper(&helper, "get", key.as_bytes())?;
        if !ok {
            // "credentials not found in native keychain" is not an error.
            if out.to_ascii_lowercase().contains("not found") {
                return Ok(None);
            }
            bail!("{helper} get {key}: {out}");
        }
        let v: Value = serde_json::from_str(&out)
            .with_context(|| format!("{helper} get answered something that is not JSON"))?;
        let username = v["Username"].as_str().unwrap_or("").to_owned();
        let secret = v["Secret"].as_str().unwrap_or("").to_owned();
        return Ok((!secret.is_empty()).then_some(Login { username, secret }));
    }
    let Some(entry) = map.get("auths").and_then(|a| a.get(&key)) else {
        return Ok(None);
    };
    let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    else {
        return Ok(None);
    };
    let pair = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .with_context(|| format!("{}: auths.{key}.auth is not base64", path.display()))?;
    let (u, p) = pair
        .split_once(':')
        .with_context(|| format!("{}: auths.{key}.auth is not user:password", path.display()))?;
    Ok(Some(Login {
        username: u.to_owned(),
        secret: p.to_owned(),
    }))
}

/// Stores credentials for `registry` (in its helper when one is named).
pub fn store(registry: &str, login: &Login) -> Result<()> {
    let key = key_of(registry);
    let (path, mut map) = read_config()?;
    if let Some(helper) = helper_for(&map, &key) {
        let input = json!({"ServerURL": key, "Username": login.username, "Secret": login.secret});
        let (ok, out) = run_helper(&helper, "store", input.to_string().as_bytes())?;
        if !ok {
            bail!("{helper} store {key}: {out}");
        }
        // docker leaves an empty entry, so `auths` lists where one is logged in.
        let auths = map.entry("auths").or_insert_with(|| json!({}));
        if let Some(a) = auths.as_object_mut() {
            a.insert(key, json!({}));
        }
        return write_config(&path, &map);
    }
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", login.username, login.secret));
    let auths = map.entry("auths").or_insert_with(|| json!({}));
    let Some(a) = auths.as_object_mut() else {
        bail!("{}: auths is not a JSON object", path.display());
    };
    a.insert(key, json!({ "auth": encoded }));
    write_config(&path, &map)
}

/// Removes the credentials of `registry`; whether there were any.
pub fn erase(registry: &str) -> Result<bool> {
    let key = key_of(registry);
    let (path, mut map) = read_config()?;
    let mut found = false;
    if let Some(helper) = helper_for(&map, &key) {
        let (ok, out) = run_helper(&helper, "erase", key.as_bytes())?;
        if ok {
            found = true;
        } else if !out.to_ascii_lowercase().contains("not found") {
            bail!("{helper} erase {key}: {out}");
        }
    }
    if let Some(a) = map.get_mut("auths").and_then(Value::as_object_mut) {
        found |= a.remove(&key).is_some();
        write_config(&path, &map)?;
    }
    Ok(found)
}

/// The `X-Registry-Auth` value for `registry`: docker's `AuthConfig` as
/// base64url JSON (`{}` when there are no credentials, as docker sends).
pub fn header_for(registry: &str) -> Result<String> {
    let value = match get(registry)? {
        Some(l) => {
            json!({"username": l.username, "password": l.secret, "serveraddress": key_of(registry)})
        }
        None => json!({}),
    };
    Ok(base64::engine::general_purpose::URL_SAFE.encode(value.to_string()))
}

/// The `X-Registry-Config` value of a build: every registry the config
/// knows (`auths`, `credHelpers`, and what a `credsStore` helper lists)
/// with its credentials, as docker's AuthConfig by server, base64url JSON.
pub fn registry_config_header() -> Result<String> {
    let (_, map) = read_config()?;
    let mut servers: Vec<String> = Vec::new();
    for section in ["auths", "credHelpers"] {
        if let Some(o) = map.get(section).and_then(Value::as_object) {
            servers.extend(o.keys().cloned());
        }
    }
    if let Some(store) = map.get("credsStore").and_then(Value::as_str) {
        let helper = format!("docker-credential-{store}");
        if let Ok((true, out)) = run_helper(&helper, "list", b"") {
            if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&out) {
                servers.extend(o.keys().cloned());
            }
        }
    }
    servers.sort();
    servers.dedup();
    let mut all = Map::new();
    for server in servers {
        let host = server
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or(host);
        let registry = if server == DOCKER_HUB_KEY || host == "index.docker.io" {
            berth_engine::reference::DEFAULT_REGISTRY
        } else {
            host
        };
        if let Some(l) = get(registry)? {
            all.insert(
                server.clone(),
                json!({"username": l.username, "password": l.secret, "serveraddress": server}),
            );
        }
    }
    Ok(base64::engine::general_purpose::URL_SAFE.encode(Value::Object(all).to_string()))
}
