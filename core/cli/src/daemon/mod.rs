//! `berth daemon`: the Docker Engine API on a unix socket (axum over hyper),
//! in front of the engine. Paths are docker's, with or without a `/v1.NN`
//! prefix; errors are docker's `{"message": …}` with its status codes;
//! attach and exec hijack the connection through an HTTP upgrade.

mod api;
mod archive;
mod build;
mod containers;
mod df;
mod exec;
mod images;
mod memory;
mod networks;
mod push;
mod render;
mod stats;
mod system;
mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::routing::{delete, get, head, post};
use axum::Router;
use berth_engine::containers::Containers;
use berth_engine::Engine;

use crate::api::{socket_path, MAX_API, MIN_API};

/// `berth daemon`'s flags.
#[derive(clap::Args, Debug)]
pub struct DaemonArgs {
    /// Root of berth's state (images, layers, containers).
    #[arg(long, default_value = "/var/lib/berth", env = "BERTH_ROOT")]
    pub root: PathBuf,
    /// The configuration file (plugins and their grants, registries).
    #[arg(long, default_value = "/etc/berth/berth.toml", env = "BERTH_CONFIG")]
    pub config: PathBuf,
    /// Where to listen: unix://PATH, or tcp://HOST:PORT (any address with
    /// --tls/--tlsverify, else loopback only: whoever reaches it is root on
    /// this machine). Repeatable.
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock"
    )]
    pub hosts: Vec<String>,
    /// The group of the API sockets (root:GROUP, mode 0660), as dockerd's
    /// -G; default `[daemon] group` of berth.toml, else root's alone.
    #[arg(short = 'G', long)]
    pub group: Option<String>,
    /// TLS on the TCP listeners (default: `[daemon]` of berth.toml).
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

/// What every handler shares.
pub struct Daemon {
    pub engine: Arc<Engine>,
    pub containers: Arc<Containers>,
    pub root: PathBuf,
}

pub type Shared = Arc<Daemon>;

fn router(d: Shared) -> Router {
    use containers as c;
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/df", get(df::df))
        .route("/events", get(system::events))
        .route("/containers/json", get(c::list))
        .route("/containers/prune", post(c::prune))
        .route("/containers/create", post(c::create))
        .route("/containers/{id}/json", get(c::inspect))
        .route("/containers/{id}/start", post(c::start))
        .route("/containers/{id}/stop", post(c::stop))
        .route("/containers/{id}/restart", post(c::restart))
        .route("/containers/{id}/kill", post(c::kill))
        .route("/containers/{id}/wait", post(c::wait))
        .route("/containers/{id}/attach", post(c::attach))
        .route("/containers/{id}/logs", get(c::logs))
        .route("/containers/{id}/top", get(c::top))
        .route("/containers/{id}/stats", get(stats::stats))
        .route("/containers/{id}/rename", post(c::rename))
        .route("/containers/{id}/changes", get(c::changes))
        .route("/containers/{id}/export", get(archive::export))
        .route("/containers/{id}/update", post(c::update))
        .route("/containers/{id}/pause", post(c::pause))
        .route("/containers/{id}/unpause", post(c::unpause))
        .route("/containers/{id}/resize", post(c::resize))
        .route(
            "/containers/{id}/archive",
            get(archive::archive_get)
                .put(archive::archive_put)
                .head(archive::archive_head),
        )
        .route("/containers/{id}", delete(c::remove))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/commit", post(images::commit))
        .route("/auth", post(push::auth))
        .route("/images/json", get(images::list))
        .route("/images/prune", post(images::prune))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/images/create", post(images::create))
        .route("/images/get", get(images::get))
        .route("/images/load", post(images::load))
        .route(
            "/images/{*rest}",
            get(images::by_name)
                .post(images::by_name_post)
                .delete(images::remove),
        )
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route(
            "/networks/{id}",
            get(networks::inspect).delete(networks::remove),
        )
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route("/session", head(api::no_session).post(api::no_session))
        .fallback(api::unknown)
        .with_state(d)
}

/// Strips docker's `/v1.NN` prefix; refuses a version outside what berth serves.
fn rewrite(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some((ver, tail)) = rest.split_once('/') {
            if let Some((maj, min)) = ver.split_once('.') {
                if let (Ok(maj), Ok(min)) = (maj.parse::<u32>(), min.parse::<u32>()) {
                    let mut new = format!("/{tail}");
                    if (maj, min) > MAX_API || (maj, min) < MIN_API {
                        // The fallback answers it with docker's message.
                        new = format!("/berth/bad-version/{maj}.{min}");
                    }
                    if let Some(q) = req.uri().query() {
                        new.push('?');
                        new.push_str(q);
                    }
                    if let Ok(uri) = new.parse() {
                        *req.uri_mut() = uri;
                    }
                }
            }
        }
    }
    req
}

/// Where the daemon listens: a unix socket, or TCP when configured.
enum Listen {
    Unix(PathBuf),
    Tcp(String),
}

/// `host` as a listener; TCP on anything but loopback only with TLS.
fn listen_addr(host: &str, tls: bool) -> Result<Listen> {
    if let Some(a) = host.strip_prefix("tcp://") {
        let (h, port) = a
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            .ok_or_else(|| anyhow::anyhow!("invalid host {host:?}: tcp://HOST:PORT"))?;
        let h = h.trim_start_matches('[').trim_end_matches(']');
        let loopback = h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback && !tls {
            bail!(
                "refusing to listen on {host} without TLS: berth serves its API over plain TCP \
                 only on loopback addresses (127.0.0.1, ::1), as whoever reaches it controls this \
                 machine; give --tlsverify with --tlscacert, --tlscert and --tlskey, or use \
                 tcp://127.0.0.1:{port}"
            );
        }
        return Ok(Listen::Tcp(a.to_string()));
    }
    socket_path(host).map(Listen::Unix)
}

/// The gid of group `name` (a name in /etc/group, or a number).
fn group_id(name: &str) -> Result<u32> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => bail!("the socket group {name:?} does not exist (see /etc/group)"),
        Err(e) => bail!("looking up the socket group {name:?}: {e}"),
    }
}

/// Binds a unix socket: mode 0660, owner root, group `gid` (root's when
/// none); a stale socket (nobody listening) is replaced, a live one is an
/// error.
fn bind(path: &std::path::Path, gid: Option<u32>) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{} is in use: another daemon listens on it", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale {}", path.display()))?;
    }
    let l = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::lchown(path, Some(0), Some(gid))
            .with_context(|| format!("giving {} to group {gid}", path.display()))?;
    }
    Ok(l)
}

fn inode(p: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn main(a: DaemonArgs) -> Result<i32> {
    memory::one_arena();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or the journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        // Plugin calls leave the worker pool (block_in_place), which hands
        // the worker's queue to a pool thread: idle pool threads go after a
        // second, so their stacks do not outlive the work.
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = rt.block_on(serve(a));
    // A plugin call still blocked at this point ends at its deadline (its
    // thread is interrupted then); the daemon does not wait that long.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    served?;
    Ok(0)
}

async fn serve(a: DaemonArgs) -> Result<()> {
    use axum::ServiceExt as _;
    use tower::Layer as _;
    // The configuration is read before anything is made, as bad flags are.
    let config = berth_engine::config::Config::load(&a.config, &crate::plugins::builtins())
        .with_context(|| format!("reading {}", a.config.display()))?;
    let c = &config.daemon;
    let tls_args = crate::tls::TlsArgs {
        tls: a.tls.tls || c.tls,
        tlsverify: a.tls.tlsverify || c.tlsverify,
        tlscacert: a.tls.tlscacert.clone().or(c.tlscacert.clone()),
        tlscert: a.tls.tlscert.clone().or(c.tlscert.clone()),
        tlskey: a.tls.tlskey.clone().or(c.tlskey.clone()),
    };
    let tls = crate::tls::server_config(&tls_args).context("setting up TLS")?;
    let listens: Vec<Listen> = a
        .hosts
        .iter()
        .map(|h| listen_addr(h, tls.is_some()))
        .collect::<Result<_>>()?;
    let paths: Vec<PathBuf> = listens
        .iter()
        .filter_map(|l| match l {
            Listen::Unix(p) => Some(p.clone()),
            Listen::Tcp(_) => None,
        })
        .collect();
    let engine = Arc::new(
        Engine::open(
            &a.root,
            &a.config,
            crate::plugins::builtins(),
            crate::plugins::compiler(),
        )
        .with_context(|| format!("opening berth's state in {}", a.root.display()))?,
    );
    let group = a.group.clone().or(engine.config().daemon.group.clone());
    let gid = group.as_deref().map(group_id).transpose()?;
    let exe = std::env::current_exe().context("finding the berth executable")?;
    let containers = Containers::open(engine.clone(), exe)
        .await
        .context("loading the containers")?;
    let networks = containers.networks.clone();
    let d = Arc::new(Daemon {
        engine,
        containers,
        root: a.root.clone(),
    });
    // Start-up is done: the first trim comes when it has been quiet a moment.
    let idle = memory::Idle::start();
    let app = router(d).layer(axum::middleware::from_fn_with_state(idle, memory::track));
    let app = tower::util::MapRequestLayer::new(rewrite).layer(app);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = Vec::new();
    let mut bound = Vec::new();
    for p in &paths {
        let l = bind(p, gid)?;
        bound.push(inode(p));
        let svc = app.clone().into_make_service();
        let mut rx = stop_rx.clone();
        servers.push(tokio::spawn(async move {
            axum::serve(l, svc)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        }));
        tracing::info!("berth daemon listening on unix://{}", p.display());
    }
    for l in &listens {
        let Listen::Tcp(addr) = l else { continue };
        let t = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on tcp://{addr}"))?;
        let svc = app.clone().into_make_service();
        let mut rx = stop_rx.clone();
        let stopped = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        match &tls {
            Some(cfg) => {
                if tls_args.verify() {
                    tracing::info!(
                        "berth daemon listening on tcp://{addr} (TLS, clients verified)"
                    );
                } else {
                    tracing::warn!("berth daemon listening on tcp://{addr} (TLS without --tlsverify): whoever reaches it controls this machine");
                }
                let l = crate::tls::TlsListener::new(t, cfg.clone())
                    .with_context(|| format!("listening on tcp://{addr}"))?;
                servers.push(tokio::spawn(async move {
                    axum::serve(l, svc).with_graceful_shutdown(stopped).await
                }));
            }
            None => {
                tracing::warn!("berth daemon listening on tcp://{addr} (loopback, no TLS): whoever reaches it controls this machine");
                servers.push(tokio::spawn(async move {
                    axum::serve(t, svc).with_graceful_shutdown(stopped).await
                }));
            }
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("berth daemon stopping (containers keep running)");
    let _ = stop_tx.send(true);
    // Hijacked streams (attach, logs -f) would hold graceful shutdown forever.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        for s in servers {
            let _ = s.await;
        }
    })
    .await;
    // Links of ended containers still being deleted.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), networks.settle()).await;
    // Only our own sockets: a daemon started meanwhile may have replaced one.
    for (p, ino) in paths.iter().zip(bound) {
        if ino.is_some() && inode(p) == ino {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}
