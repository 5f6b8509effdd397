//! Exec instances: `POST /containers/{id}/exec` (the request is the
//! engine's `ExecConfig`, docker's shape), `POST /exec/{id}/start`,
//! `GET /exec/{id}/json`.

use serde::{Deserialize, Serialize};

pub use berth_engine::containers::exec::ExecConfig;

/// `POST /exec/{id}/start`'s body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartRequest {
    pub detach: bool,
    pub tty: bool,
    /// The client's terminal `[height, width]`; `null` without one.
    pub console_size: Option<[u16; 2]>,
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    /// `null` until the process has exited.
    pub exit_code: Option<i32>,
    pub process_config: ProcessConfig,
    pub open_stdin: bool,
    pub open_stderr: bool,
    pub open_stdout: bool,
    pub can_remove: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub detach_keys: String,
    pub pid: i32,
}

/// An exec's `ProcessConfig` (docker writes these fields in lower case).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", default)]
pub struct ProcessConfig {
    pub tty: bool,
    /// The program; `null` for an empty command.
    pub entrypoint: Option<String>,
    pub arguments: Vec<String>,
    pub privileged: bool,
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inspect_is_dockers_json() {
        let x = ExecInspect {
            id: "e1".into(),
            running: false,
            exit_code: Some(3),
            process_config: ProcessConfig {
                tty: true,
                entrypoint: Some("sh".into()),
                arguments: vec!["-c".into(), "exit 3".into()],
                privileged: false,
                user: String::new(),
            },
            open_stdin: true,
            open_stderr: true,
            open_stdout: true,
            can_remove: false,
            container_id: "c1".into(),
            detach_keys: String::new(),
            pid: 42,
        };
        assert_eq!(
            serde_json::to_value(&x).unwrap(),
            json!({
                "ID": "e1", "Running": false, "ExitCode": 3,
                "ProcessConfig": {"tty": true, "entrypoint": "sh", "arguments": ["-c", "exit 3"], "privileged": false, "user": ""},
                "OpenStdin": true, "OpenStderr": true, "OpenStdout": true, "CanRemove": false,
                "ContainerID": "c1", "DetachKeys": "", "Pid": 42,
            })
        );
        let none = ExecInspect::default();
        let v = serde_json::to_value(&none).unwrap();
        assert!(v["ExitCode"].is_null() && v["ProcessConfig"]["entrypoint"].is_null());
    }

    #[test]
    fn start_sends_null_console_size() {
        let s = ExecStartRequest::default();
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"Detach": false, "Tty": false, "ConsoleSize": null})
        );
    }
}
