//! Image references as docker users write them: `busybox`, `busybox:1.36`,
//! `127.0.0.1:5000/team/app:v1`, `repo@sha256:…`. The parser is the SDK's, so
//! the engine and the fetcher plugins name every image the same way; this
//! module re-exports it (its errors become [`EngineError::Sdk`]).

pub use berth_sdk::reference::{is_loopback_host, Reference, DOCKER_HUB as DEFAULT_REGISTRY};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EngineError;

    #[test]
    fn errors_name_the_reference_and_the_reason() {
        let e: EngineError = Reference::parse("Upper:x").unwrap_err().into();
        let msg = e.to_string();
        assert!(
            msg.contains("\"Upper:x\"") && msg.contains("lowercase"),
            "{msg}"
        );
    }
}
