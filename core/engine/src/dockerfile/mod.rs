//! Dockerfiles in berth: the build front end — a Dockerfile's text to its
//! stages and raw instructions (`parse`), docker's shell-like expansion of
//! their words (`expand`) and the `.dockerignore` of a context (`ignore`) —
//! and the instructions that change an image config, one parsed from its
//! text (`words`: docker's quoting; `instruction`: as `commit --change`
//! takes them) and applied to a config in docker's JSON (`apply`).

pub mod apply;
pub mod expand;
pub mod ignore;
pub mod instruction;
pub mod parse;
pub mod words;

pub use apply::Changes;
pub use ignore::Ignore;
pub use instruction::{parse_change, parse_changes, Form, Health, Instruction};
pub use parse::{parse, Dockerfile, Heredoc, ParseError, RawInstruction, Stage};
