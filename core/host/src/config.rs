//! What the operator configures: the host's engine settings and each plugin's grants.
//!
//! Grants are data, not code (as extism's manifests): the root a plugin may
//! touch, its limits, the registries it may reach and the credentials the host
//! adds for it. The plugin itself never sees a credential.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of the one wasmtime engine every plugin runs on.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where compiled components are cached (`<sha256>-<wasmtime>-<settings>.cwasm`).
    pub cache_dir: PathBuf,
    /// How many plugin instances may be alive at once (pooling allocator slots).
    pub max_instances: u32,
    /// The largest linear memory any plugin may ever have; each plugin's
    /// [`Grants::memory_limit`] must be at most this.
    pub max_memory: usize,
    /// How often the epoch ticker advances; deadlines are checked at this granularity.
    pub tick: Duration,
    /// Who compiles a component that is neither in the cache nor built into
    /// berth.
    pub compiler: Compiler,
}

/// Who compiles components.
#[derive(Debug, Clone, Default)]
pub enum Compiler {
    /// This process. What compiling allocates is handed back to the system
    /// afterwards as far as the allocator allows.
    #[default]
    InProcess,
    /// A separate process: `program args… OUT`, given the component on its
    /// stdin, writes the compiled component to the file OUT (as
    /// [`compile_to_file`](crate::compile_to_file) does) and exits 0, or
    /// prints why not on stderr and exits non-zero. berth runs its own
    /// `berth plugin-compile`; a compile then leaves nothing in the daemon.
    Command {
        /// The program.
        program: PathBuf,
        /// Its arguments before OUT.
        args: Vec<String>,
    },
}

impl HostConfig {
    /// A configuration with sane defaults that caches compiled plugins in `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            cache_dir: cache_dir.into(),
            ..HostConfig::default()
        }
    }
}

impl Default for HostConfig {
    /// Cache in `/var/lib/berth/plugin-cache`, 64 instances, 4 GiB memories, 10 ms ticks.
    fn default() -> Self {
        HostConfig {
            cache_dir: PathBuf::from("/var/lib/berth/plugin-cache"),
            max_instances: 64,
            max_memory: 4 << 30,
            tick: Duration::from_millis(10),
            compiler: Compiler::InProcess,
        }
    }
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone)]
pub enum WasmSource {
    /// A default plugin embedded in the binary, with the form wasmtime
    /// compiled it to when the binary was built.
    Builtin(Builtin),
    /// Component bytes embedded in the binary, compiled on first use.
    Bytes(&'static [u8]),
    /// A `.wasm` component file named in `berth.toml`.
    File(PathBuf),
}

/// A plugin built into the binary: its component and what the build made of
/// it, so that loading it hashes and compiles nothing.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The component.
    pub wasm: &'static [u8],
    /// SHA-256 of `wasm`, lowercase hex.
    pub wasm_sha256: &'static str,
    /// The component compiled by wasmtime's `Engine::precompile_component`
    /// with berth's engine settings (`engine_config.rs`).
    pub precompiled: &'static [u8],
    /// SHA-256 of `precompiled`, lowercase hex: the copy in the cache is
    /// checked against it.
    pub precompiled_sha256: &'static str,
    /// The engine settings hash `precompiled` was compiled with; an engine
    /// whose hash differs compiles `wasm` instead (and logs why).
    pub settings: u64,
}

/// One plugin to load: its name (used in every log line and error), its
/// component and what it is granted.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// The plugin's name, e.g. `storage-overlay`.
    pub name: String,
    /// The component.
    pub wasm: WasmSource,
    /// What the plugin may touch.
    pub grants: Grants,
}

/// Credentials the host adds to a fetcher's requests; never shown to the plugin.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Basic …` on requests to the registry and to the token
    /// realm that registry names.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer …` on requests to the registry.
    Bearer {
        /// The token.
        token: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credentials::Bearer { .. } => f.write_str("Bearer { token: <redacted> }"),
        }
    }
}

/// Limits on a fetcher's HTTP traffic.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Time to establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time from sending a request to the first byte of the response.
    pub first_byte_timeout: Duration,
    /// Longest silence while a response body streams.
    pub between_bytes_timeout: Duration,
    /// Largest response body the host passes on; longer bodies fail the stream.
    pub max_response_bytes: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connect_timeout: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(120),
            between_bytes_timeout: Duration::from_secs(120),
            max_response_bytes: 64 << 30,
        }
    }
}

/// What one plugin may touch and how much it may use.
#[derive(Debug, Clone)]
pub struct Grants {
    /// The plugin's private root directory, created (mode 0700) if missing. It
    /// is preopened as `/` through WASI and is the only place `layer-fs` touches.
    pub root: PathBuf,
    /// Cap on the plugin's linear memory, per call.
    pub memory_limit: usize,
    /// Deadline of each call.
    pub timeout: Duration,
    /// `host[:port]` of the registries a fetcher may reach (over https).
    pub registries: Vec<String>,
    /// `host[:port]` of granted registries that may be reached over plain http.
    /// Loopback registries (`127.0.0.0/8`, `localhost`, `[::1]`) are insecure
    /// without being listed, as with docker.
    pub insecure_registries: Vec<String>,
    /// Credentials per registry (`host[:port]`), added by the host.
    pub credentials: HashMap<String, Credentials>,
    /// Extra read-only preopens (archives, OCI layouts), each visible to the
    /// guest at the same path as on the host.
    pub read_paths: Vec<PathBuf>,
    /// Limits on HTTP traffic (fetchers).
    pub http: HttpLimits,
    /// Whether `layer-fs.mknod` may create device nodes beyond the harmless
    /// ones (`null`, `zero`, `full`, `random`, `urandom`, `tty`, `ptmx`) and
    /// whiteouts. Off by default: a plugin could otherwise read a disk through
    /// a node it made in its own root.
    pub device_nodes: bool,
    /// What a network plugin's plans may name.
    pub network: NetworkGrants,
}

/// What a network plugin's plans may touch. Nothing by default: the engine
/// grants its built-in bridge plugin `berth`, `br-` and `veth` links and the
/// private address ranges; `berth.toml` grants others per plugin.
#[derive(Debug, Clone, Default)]
pub struct NetworkGrants {
    /// Prefixes of the host-side link names it may create and enslave to.
    pub link_prefixes: Vec<String>,
    /// Address pools every address, subnet, gateway and route must lie in.
    pub pools: Vec<ipnet::Ipv4Net>,
    /// Host links it may put macvlans on.
    pub macvlan_parents: Vec<String>,
}

impl Grants {
    /// Default grants for a plugin whose root is `root`: 256 MiB of memory,
    /// 10 minutes per call, no registries, no extra paths.
    pub fn new(root: impl Into<PathBuf>) -> Grants {
        Grants {
            root: root.into(),
            ..Grants::default()
        }
    }
}

impl Default for Grants {
    /// The defaults of [`Grants::new`] with an empty root, which must be set
    /// before loading (loading fails on an empty root).
    fn default() -> Self {
        Grants {
            root: PathBuf::new(),
            memory_limit: 256 << 20,
            timeout: Duration::from_secs(600),
            registries: Vec::new(),
            insecure_registries: Vec::new(),
            credentials: HashMap::new(),
            read_paths: Vec::new(),
            http: HttpLimits::default(),
            device_nodes: false,
            network: NetworkGrants::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_in_debug() {
        let c = Credentials::Basic {
            username: "me".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let b = Credentials::Bearer {
            token: "tok".into(),
        };
        assert!(!format!("{b:?}").contains("s3cr3t"));
    }
}
