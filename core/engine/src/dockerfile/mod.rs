//! Dockerfile instructions as berth applies them to an image config: one
//! instruction parsed from its text (`words`: docker's quoting; `instruction`:
//! the instructions that change a config, as `commit --change` takes them)
//! and applied to a config in docker's JSON (`apply`).

pub mod apply;
pub mod instruction;
pub mod words;

pub use apply::Changes;
pub use instruction::{parse_change, parse_changes, Form, Health, Instruction};
