//! Images: the rows of `GET /images/json`, the progress messages of
//! `POST /images/create` (pull) and `POST /images/load`, and the answer of
//! `DELETE /images/{name}`. `GET /images/{name}/json` is the engine's own
//! rendering of the image config (docker's `ImageInspect`), passed through.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A row of `GET /images/json`: one per image id, with all its tags.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: i64,
    pub size: u64,
    pub shared_size: i64,
    pub virtual_size: u64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

/// One line of a pull or load stream (docker's `JSONMessage`): only the
/// fields that are set are written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Extra data of the stream's end (a push's `{"Tag", "Digest", "Size"}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux: Option<serde_json::Value>,
}

impl JsonMessage {
    /// `{"status": …}`.
    pub fn status(status: impl Into<String>) -> JsonMessage {
        JsonMessage {
            status: Some(status.into()),
            ..Default::default()
        }
    }

    /// `{"errorDetail": {"message": …}, "error": …}`.
    pub fn error(message: impl Into<String>) -> JsonMessage {
        let message = message.into();
        JsonMessage {
            error_detail: Some(ErrorDetail {
                code: None,
                message: message.clone(),
            }),
            error: Some(message),
            ..Default::default()
        }
    }
}

/// A layer's progress: `{}` for a status change, bytes while downloading.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgressDetail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// Why a stream failed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    /// An exit code to end with (a build's failing `RUN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    pub message: String,
}

/// One line of `DELETE /images/{name}`'s answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageDeleteItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untagged: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
}

impl From<berth_engine::engine::HistoryEntry> for HistoryItem {
    fn from(h: berth_engine::engine::HistoryEntry) -> Self {
        HistoryItem {
            id: h.id,
            created: h.created,
            created_by: h.created_by,
            tags: h.tags,
            size: h.size,
            comment: h.comment,
        }
    }
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImagePruneResponse {
    #[serde(deserialize_with = "crate::api::nullable")]
    pub images_deleted: Vec<ImageDeleteItem>,
    pub space_reclaimed: u64,
}

/// `POST /build/prune`: berth's builder keeps no cache of its own yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BuildPruneResponse {
    #[serde(deserialize_with = "crate::api::nullable")]
    pub caches_deleted: Vec<String>,
    pub space_reclaimed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_dockers_json() {
        let m = JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            id: Some("abc".into()),
            ..JsonMessage::status("Pull complete")
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"status": "Pull complete", "progressDetail": {}, "id": "abc"})
        );
        let d = JsonMessage {
            progress_detail: Some(ProgressDetail {
                current: Some(5),
                total: Some(10),
            }),
            id: Some("abc".into()),
            ..JsonMessage::status("Downloading")
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"status": "Downloading", "progressDetail": {"current": 5, "total": 10}, "id": "abc"})
        );
        assert_eq!(
            serde_json::to_value(JsonMessage::error("boom")).unwrap(),
            json!({"errorDetail": {"message": "boom"}, "error": "boom"})
        );
    }

    #[test]
    fn summary_and_delete_are_dockers_json() {
        let s = ImageSummary {
            id: "sha256:1".into(),
            repo_tags: vec!["a:latest".into()],
            created: 7,
            size: 9,
            shared_size: -1,
            virtual_size: 9,
            containers: -1,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"Id": "sha256:1", "ParentId": "", "RepoTags": ["a:latest"], "RepoDigests": [], "Created": 7,
                   "Size": 9, "SharedSize": -1, "VirtualSize": 9, "Labels": {}, "Containers": -1})
        );
        let u = ImageDeleteItem {
            untagged: Some("a:latest".into()),
            deleted: None,
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            json!({"Untagged": "a:latest"})
        );
    }
}

/// A row of `GET /images/{name}/history`, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub comment: String,
}
