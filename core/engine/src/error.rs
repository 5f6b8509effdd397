//! The engine's error type: what failed, on which object.

use std::path::PathBuf;

use crate::containers::Status;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob {digest}: {reason}")]
    Blob { digest: String, reason: String },
    #[error("image {name:?} not found (pull it or load it first)")]
    ImageNotFound { name: String },
    #[error("invalid reference {reference:?}: {reason}")]
    Reference { reference: String, reason: String },
    #[error("image {name}: {reason}")]
    Image { name: String, reason: String },
    #[error(
        "image {name} is used by container {container}: remove the container first or use --force"
    )]
    ImageInUse { name: String, container: String },
    #[error("configuration {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Plugin(#[from] berth_host::HostError),
    #[error(transparent)]
    Login(#[from] berth_host::LoginError),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
    /// An image reference (or other shared OCI logic) the SDK refused.
    #[error(transparent)]
    Sdk(#[from] berth_sdk::SdkError),
    /// docker's 404 for containers, volumes, exec instances.
    #[error("No such {what}: {name}")]
    NotFound { what: &'static str, name: String },
    /// A container verb its state refuses (docker's 409, in docker's words).
    #[error("{}", refusal(.id, .op, *.status))]
    ContainerState {
        id: String,
        op: ContainerOp,
        status: Status,
    },
    /// An exec instance that cannot do `op` (already run, or no terminal).
    #[error("{}", match .op {
        ExecOp::Start => format!("Error: Exec command {id} has already run"),
        ExecOp::Resize => format!("exec {id} has no terminal or is not running"),
    })]
    ExecState { id: String, op: ExecOp },
    /// Connecting to a running container's monitor for an attach failed.
    #[error("attaching to container {id}: {source}")]
    Attach { id: String, source: std::io::Error },
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name.")]
    ContainerNameInUse { name: String, holder: String },
    #[error("network with name {name} already exists")]
    NetworkNameInUse { name: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    /// docker answers a second connect to the same network with a 403.
    #[error("endpoint with name {container} already exists in network {network}")]
    AlreadyConnected { container: String, network: String },
    #[error("remove {name}: volume is in use - [{container}]")]
    VolumeInUse { name: String, container: String },
    #[error("error while removing network: network {name} id {id} has active endpoints ({})", .containers.join(", "))]
    NetworkInUse {
        name: String,
        id: String,
        containers: Vec<String>,
    },
    /// `bridge`, `host` and `none` are made by the daemon, never by a user.
    #[error("{name} is a pre-defined network and cannot be {}", match .op {
        NetworkOp::Create => "created",
        NetworkOp::Remove => "removed",
    })]
    PredefinedNetwork { name: String, op: NetworkOp },
    /// An id prefix shared by several objects of kind `what`.
    #[error("multiple IDs found with provided prefix: {prefix}")]
    AmbiguousPrefix { what: &'static str, prefix: String },
    /// A request field or option `what` whose `value` is refused; `reason`
    /// is docker's whole message (it names the value as docker words it).
    #[error("{reason}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// `--init` asked for, and no static init on the host.
    #[error("--init needs a statically linked init: install Debian's tini (/usr/bin/tini-static)")]
    NoInit,
    /// A container's config.json that does not parse.
    #[error("the bundle of container {id} is unreadable: {source}")]
    Bundle {
        id: String,
        source: serde_json::Error,
    },
    #[error("starting container {id}: {reason}")]
    Start { id: String, reason: String },
    /// A build failed (its Dockerfile, a step, a source): docker's words.
    #[error("{reason}")]
    Build { reason: String },
    /// A build's `RUN` exited non-zero: its command and exit code (the
    /// docker CLI exits with the code).
    #[error("The command '{command}' returned a non-zero code: {code}")]
    BuildStep { command: String, code: i64 },
    /// The archive helper refused or failed (`cp`, a build's `COPY`):
    /// `missing` when the path is not there.
    #[error("{reason}")]
    Archive {
        container: String,
        path: String,
        reason: String,
        missing: bool,
    },
    #[error("mounting the root filesystem of {id}: {reason}")]
    Mount { id: String, reason: String },
}

/// The container verbs a container's state can refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerOp {
    Start,
    /// `key` is the name or id the request gave (docker repeats it).
    Kill {
        key: String,
    },
    Remove,
    Pause,
    Unpause,
    Resize,
    Top,
    /// Creating an exec instance.
    Exec,
    /// Starting an exec instance created before.
    ExecStart,
    Attach,
    /// Committing a container that is being removed (or is dead).
    Commit,
    /// Updating a container that is being removed (or is dead).
    Update,
}

/// What an exec instance was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOp {
    Start,
    Resize,
}

/// What was asked of a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkOp {
    Create,
    Remove,
}

/// docker's text for a container verb its state refuses.
fn refusal(id: &str, op: &ContainerOp, status: Status) -> String {
    match op {
        ContainerOp::Start => format!("cannot start container {id}: it is being removed"),
        ContainerOp::Kill { key } => {
            format!("Cannot kill container: {key}: container {id} is not running")
        }
        ContainerOp::Remove => format!(
            "You cannot remove a {} container {id}. Stop the container before attempting removal or force remove",
            if status == Status::Paused { "paused" } else { "running" }
        ),
        ContainerOp::Pause if status == Status::Paused => {
            format!("Container {id} is already paused")
        }
        ContainerOp::Unpause => format!("Container {id} is not paused"),
        ContainerOp::Exec if status == Status::Paused => {
            format!("Container {id} is paused, unpause the container before exec")
        }
        ContainerOp::Attach => {
            format!("You cannot attach to a paused container {id}, unpause it first")
        }
        ContainerOp::Commit if status == Status::Dead => {
            format!("You cannot commit container {id} which is Dead")
        }
        ContainerOp::Commit => format!("You cannot commit container {id} which is being removed"),
        ContainerOp::Update => format!("Cannot update container {id}: it is being removed"),
        ContainerOp::Pause
        | ContainerOp::Resize
        | ContainerOp::Top
        | ContainerOp::Exec
        | ContainerOp::ExecStart => format!("Container {id} is not running"),
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

pub use berth_errdefs::ErrorKind;

impl EngineError {
    /// What kind of failure this is; the API turns the kind into a status.
    /// Errors of the runtime and the plugin host keep their own kind; a
    /// start that fails (a command not found, a bad mount) is the request's
    /// fault, as docker answers it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::NotFound { .. } | EngineError::ImageNotFound { .. } => ErrorKind::NotFound,
            EngineError::Archive { missing: true, .. } => ErrorKind::NotFound,
            EngineError::Archive { .. } => ErrorKind::InvalidInput,
            EngineError::Build { .. } | EngineError::BuildStep { .. } => ErrorKind::InvalidInput,
            EngineError::ImageInUse { .. }
            | EngineError::ContainerState { .. }
            | EngineError::ExecState { .. }
            | EngineError::Attach { .. }
            | EngineError::ContainerNameInUse { .. }
            | EngineError::NetworkNameInUse { .. }
            | EngineError::NotConnected { .. }
            | EngineError::VolumeInUse { .. } => ErrorKind::Conflict,
            EngineError::AlreadyConnected { .. }
            | EngineError::NetworkInUse { .. }
            | EngineError::PredefinedNetwork { .. } => ErrorKind::Forbidden,
            EngineError::AmbiguousPrefix { .. }
            | EngineError::InvalidArgument { .. }
            | EngineError::NoInit
            | EngineError::Bundle { .. }
            | EngineError::Reference { .. }
            | EngineError::Config { .. }
            | EngineError::Start { .. }
            | EngineError::Image { .. }
            | EngineError::Sdk(_) => ErrorKind::InvalidInput,
            EngineError::Plugin(e) => e.kind(),
            EngineError::Login(berth_host::LoginError::Unauthorized { .. }) => ErrorKind::Forbidden,
            EngineError::Login(berth_host::LoginError::Unavailable { .. }) => {
                ErrorKind::Unavailable
            }
            EngineError::Runtime(e) => e.kind(),
            EngineError::Io { .. } | EngineError::Blob { .. } | EngineError::Mount { .. } => {
                ErrorKind::Internal
            }
        }
    }

    /// A refused request field or option (see `InvalidArgument`).
    pub(crate) fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        EngineError::InvalidArgument {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EngineError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_errors_keep_their_kind() {
        let missing =
            EngineError::Runtime(berth_runtime::RuntimeError::NotFound { id: "c1".into() });
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        let plugin = EngineError::Plugin(berth_host::HostError::Plugin {
            plugin: "bridge".into(),
            call: "create-network".into(),
            error: berth_host::PluginError {
                kind: berth_host::PluginErrorKind::AlreadyExists,
                message: "exists".into(),
            },
        });
        assert_eq!(plugin.kind(), ErrorKind::Conflict);
        let timeout = EngineError::Plugin(berth_host::HostError::Timeout {
            plugin: "overlay".into(),
            call: "apply-layer".into(),
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(timeout.kind(), ErrorKind::Unavailable);
        let start = EngineError::Start {
            id: "c1".into(),
            reason: "exec: not found".into(),
        };
        assert_eq!(start.kind(), ErrorKind::InvalidInput);
        let io = EngineError::io("reading", "/x", std::io::Error::other("boom"));
        assert_eq!(io.kind(), ErrorKind::Internal);
    }

    /// Each error's kind and docker's exact text (the docker CLI tests
    /// compare some of them).
    fn says(e: EngineError, kind: ErrorKind, text: &str) {
        assert_eq!(e.kind(), kind, "{e:?}");
        assert_eq!(e.to_string(), text, "{e:?}");
    }

    fn state(op: ContainerOp, status: Status) -> EngineError {
        EngineError::ContainerState {
            id: "c1".into(),
            op,
            status,
        }
    }

    #[test]
    fn container_states_refuse_in_dockers_words() {
        let c = ErrorKind::Conflict;
        says(
            state(ContainerOp::Start, Status::Removing),
            c,
            "cannot start container c1: it is being removed",
        );
        says(
            state(ContainerOp::Kill { key: "web".into() }, Status::Exited),
            c,
            "Cannot kill container: web: container c1 is not running",
        );
        says(
            state(ContainerOp::Remove, Status::Running),
            c,
            "You cannot remove a running container c1. Stop the container before attempting removal or force remove",
        );
        says(
            state(ContainerOp::Remove, Status::Paused),
            c,
            "You cannot remove a paused container c1. Stop the container before attempting removal or force remove",
        );
        says(
            state(ContainerOp::Pause, Status::Paused),
            c,
            "Container c1 is already paused",
        );
        for op in [
            ContainerOp::Pause,
            ContainerOp::Resize,
            ContainerOp::Top,
            ContainerOp::Exec,
            ContainerOp::ExecStart,
        ] {
            says(state(op, Status::Exited), c, "Container c1 is not running");
        }
        says(
            state(ContainerOp::ExecStart, Status::Paused),
            c,
            "Container c1 is not running",
        );
        says(
            state(ContainerOp::Unpause, Status::Running),
            c,
            "Container c1 is not paused",
        );
        says(
            state(ContainerOp::Exec, Status::Paused),
            c,
            "Container c1 is paused, unpause the container before exec",
        );
        says(
            state(ContainerOp::Attach, Status::Paused),
            c,
            "You cannot attach to a paused container c1, unpause it first",
        );
    }

    #[test]
    fn conflicts_name_the_objects() {
        let c = ErrorKind::Conflict;
        says(
            EngineError::ExecState {
                id: "x1".into(),
                op: ExecOp::Start,
            },
            c,
            "Error: Exec command x1 has already run",
        );
        says(
            EngineError::ExecState {
                id: "x1".into(),
                op: ExecOp::Resize,
            },
            c,
            "exec x1 has no terminal or is not running",
        );
        says(
            EngineError::Attach {
                id: "c1".into(),
                source: std::io::Error::other("refused"),
            },
            c,
            "attaching to container c1: refused",
        );
        says(
            EngineError::ContainerNameInUse {
                name: "web".into(),
                holder: "c1".into(),
            },
            c,
            "Conflict. The container name \"/web\" is already in use by container \"c1\". You have to remove (or rename) that container to be able to reuse that name.",
        );
        says(
            EngineError::NetworkNameInUse {
                name: "front".into(),
            },
            c,
            "network with name front already exists",
        );
        says(
            EngineError::NotConnected {
                container: "web".into(),
                network: "front".into(),
            },
            c,
            "container web is not connected to network front",
        );
        says(
            EngineError::VolumeInUse {
                name: "data".into(),
                container: "c1".into(),
            },
            c,
            "remove data: volume is in use - [c1]",
        );
    }

    #[test]
    fn forbidden_operations_name_the_network() {
        let f = ErrorKind::Forbidden;
        says(
            EngineError::AlreadyConnected {
                container: "web".into(),
                network: "front".into(),
            },
            f,
            "endpoint with name web already exists in network front",
        );
        says(
            EngineError::NetworkInUse {
                name: "front".into(),
                id: "n1".into(),
                containers: vec!["web".into(), "db".into()],
            },
            f,
            "error while removing network: network front id n1 has active endpoints (web, db)",
        );
        says(
            EngineError::PredefinedNetwork {
                name: "bridge".into(),
                op: NetworkOp::Create,
            },
            f,
            "bridge is a pre-defined network and cannot be created",
        );
        says(
            EngineError::PredefinedNetwork {
                name: "host".into(),
                op: NetworkOp::Remove,
            },
            f,
            "host is a pre-defined network and cannot be removed",
        );
    }

    #[test]
    fn bad_requests_keep_what_was_refused() {
        let i = ErrorKind::InvalidInput;
        says(
            EngineError::AmbiguousPrefix {
                what: "container",
                prefix: "ab".into(),
            },
            i,
            "multiple IDs found with provided prefix: ab",
        );
        let e = EngineError::invalid("--dns", "x", "x is not an ip address (--dns)");
        assert!(matches!(
            &e,
            EngineError::InvalidArgument { what: "--dns", value, .. } if value == "x"
        ));
        says(e, i, "x is not an ip address (--dns)");
        says(
            EngineError::NoInit,
            i,
            "--init needs a statically linked init: install Debian's tini (/usr/bin/tini-static)",
        );
        let source = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let text = format!("the bundle of container c1 is unreadable: {source}");
        says(
            EngineError::Bundle {
                id: "c1".into(),
                source,
            },
            i,
            &text,
        );
    }
}
