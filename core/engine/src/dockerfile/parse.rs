//! A Dockerfile's text to its stages and raw instructions, as docker's
//! parser reads it: parser directives (`# syntax=`, `# escape=`) at the top,
//! comments and blank lines dropped, lines continued by the escape
//! character, leading `--flag`s checked against what each instruction
//! takes, BuildKit heredocs (`RUN <<EOF`) read from the following lines, and
//! the instructions grouped into stages by `FROM`. Nothing is expanded here
//! (see `expand`); argument checks are the ones docker makes while parsing.

use super::{expand, words};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// `\` or `` ` `` (from `# escape=`).
    pub escape: char,
    /// The `# syntax=` directive's value.
    pub syntax: Option<String>,
    /// `ARG` instructions before the first `FROM`.
    pub global_args: Vec<RawInstruction>,
    pub stages: Vec<Stage>,
}

/// One `FROM` and the instructions up to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Its `FROM` instruction.
    pub from: RawInstruction,
    /// The image as written (unexpanded): `busybox:${V}`, `scratch`, or an
    /// earlier stage's name.
    pub base: String,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// `--platform` as written (unexpanded).
    pub platform: Option<String>,
    /// Everything after `FROM` up to the next `FROM`.
    pub instructions: Vec<RawInstruction>,
}

/// One instruction as written, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawInstruction {
    /// The 1-based line where the instruction starts.
    pub line: usize,
    /// Upper-cased: `RUN`.
    pub keyword: String,
    /// The leading `--name=value` flags in order; a bare boolean flag
    /// (`--link`) has the value `true`; repeatable flags (`--mount`,
    /// `--exclude`) appear once per use.
    pub flags: Vec<(String, String)>,
    /// The text after the flags, trimmed; heredoc bodies are not in it
    /// (their `<<EOF` markers are).
    pub args: String,
    /// The words when `args` is a JSON array of strings (exec form), for
    /// the instructions that have one (`RUN`, `CMD`, `ENTRYPOINT`, `SHELL`,
    /// `COPY`, `ADD`, `VOLUME`).
    pub json: Option<Vec<String>>,
    /// The heredocs of `RUN`/`COPY`/`ADD` (also as an `ONBUILD` trigger),
    /// in the order of their markers.
    pub heredocs: Vec<Heredoc>,
    /// What docker prints after `Step N/M : `: the keyword as written,
    /// flags and arguments, on one line.
    pub original: String,
}

/// A heredoc body (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub delimiter: String,
    /// The body; each line keeps its newline; leading tabs removed for `<<-`.
    pub content: String,
    /// Variables are expanded in the body: false when the delimiter was
    /// quoted (`<<'EOF'`, `<<"EOF"`).
    pub expand: bool,
    /// `<<-`: leading tabs of the body lines (and the terminator) dropped.
    pub strip_tabs: bool,
}

/// Why a Dockerfile cannot be parsed, with the line to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error on line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// The instructions whose arguments may be a JSON array.
const JSON_FORM: [&str; 7] = ["RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"];

#[derive(Clone, Copy, PartialEq)]
enum FlagKind {
    /// `--name=value`, at most once.
    Value,
    /// `--name=value`, any number of times.
    Repeated,
    /// `--name`, `--name=true` or `--name=false`.
    Bool,
}

/// The flags `keyword` takes.
fn flags_of(keyword: &str) -> &'static [(&'static str, FlagKind)] {
    use FlagKind::*;
    match keyword {
        "FROM" => &[("platform", Value)],
        "RUN" => &[("mount", Repeated), ("network", Value), ("security", Value)],
        "COPY" => &[
            ("from", Value),
            ("chown", Value),
            ("chmod", Value),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Repeated),
        ],
        "ADD" => &[
            ("chown", Value),
            ("chmod", Value),
            ("link", Bool),
            ("keep-git-dir", Bool),
            ("checksum", Value),
            ("exclude", Repeated),
        ],
        "HEALTHCHECK" => &[
            ("interval", Value),
            ("timeout", Value),
            ("start-period", Value),
            ("start-interval", Value),
            ("retries", Value),
        ],
        _ => &[],
    }
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (escape, syntax) = directives(&lines)?;

    let mut instructions = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i + 1;
        let first = chomp(lines[i]).trim_start();
        i += 1;
        if first.starts_with('#') {
            continue;
        }
        let (head, mut continues) = continuation(first, escape);
        if !continues && head.trim().is_empty() {
            continue;
        }
        let mut text = head.to_string();
        while continues && i < lines.len() {
            let next = chomp(lines[i]);
            i += 1;
            // Comments and blank lines inside a continuation are dropped.
            if next.trim_start().starts_with('#') || next.trim().is_empty() {
                continue;
            }
            let (part, more) = continuation(next, escape);
            text.push_str(part);
            continues = more;
        }
        if text.trim().is_empty() {
            continue;
        }
        let mut inst = instruction(&text, start, escape)?;
        for marker in heredoc_markers(&inst, start)? {
            inst.heredocs
                .push(read_heredoc(&lines, &mut i, marker, start)?);
        }
        instructions.push(inst);
    }
    stages(instructions, lines.len(), escape, syntax)
}

/// The parser directives at the very top; they end at the first line that
/// is not one (a blank line, another comment, an instruction).
fn directives(lines: &[&str]) -> Result<(char, Option<String>), ParseError> {
    let mut escape = None;
    let mut syntax = None;
    for (n, line) in lines.iter().enumerate() {
        let err = |message: String| ParseError {
            line: n + 1,
            message,
        };
        let Some((key, value)) = directive(chomp(line)) else {
            break;
        };
        match key.as_str() {
            "escape" => {
                if escape.is_some() {
                    return Err(err("only one escape parser directive can be used".into()));
                }
                escape = Some(match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    v => {
                        return Err(err(format!(
                            "invalid escape token '{v}' does not match ` or \\"
                        )))
                    }
                });
            }
            "syntax" => {
                if syntax.is_some() {
                    return Err(err("only one syntax parser directive can be used".into()));
                }
                syntax = Some(value);
            }
            _ => break,
        }
    }
    Ok((escape.unwrap_or('\\'), syntax))
}

/// `# key = value` with a key of letters and digits (lowercased).
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let key_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let key = &rest[..key_len];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[key_len..].trim_start().strip_prefix('=')?.trim();
    (!value.is_empty()).then(|| (key.to_ascii_lowercase(), value.to_string()))
}

/// A line without its line ending.
fn chomp(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// The line without a trailing escape character (and the blanks after it),
/// and whether it continues. An escaped escape (`\\`) does not continue.
fn continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(before) if before.is_empty() || !before.ends_with(escape) => (before, true),
        _ => (line, false),
    }
}

/// One instruction from its joined text (heredocs not read yet).
fn instruction(text: &str, line: usize, escape: char) -> Result<RawInstruction, ParseError> {
    let err = |message: String| ParseError { line, message };
    let text = text.trim();
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let keyword = word.to_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(err(format!("unknown instruction: {keyword}")));
    }
    let (raw_flags, args) = split_flags(rest);
    let flags = check_flags(&keyword, raw_flags).map_err(err)?;
    let args = args.trim().to_string();
    let json = if JSON_FORM.contains(&keyword.as_str()) {
        json_form(&args).map_err(err)?
    } else {
        None
    };
    check_args(&keyword, &args, json.as_deref(), escape).map_err(err)?;
    if keyword == "ONBUILD" {
        let trigger = instruction(&args, line, escape)?;
        match trigger.keyword.as_str() {
            "ONBUILD" => {
                return Err(err(
                    "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                ))
            }
            k @ ("FROM" | "MAINTAINER") => {
                return Err(err(format!("{k} isn't allowed as an ONBUILD trigger")))
            }
            _ => {}
        }
    }
    Ok(RawInstruction {
        line,
        keyword,
        flags,
        args,
        json,
        heredocs: Vec::new(),
        original: text.to_string(),
    })
}

/// The leading `--…` words (quotes removed, `\` escaping) and the rest. A
/// lone `--` ends the flags.
fn split_flags(rest: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        let tail = &rest[pos..];
        let trimmed = tail.trim_start();
        pos += tail.len() - trimmed.len();
        if !trimmed.starts_with("--") {
            return (flags, trimmed);
        }
        let mut word = String::new();
        let mut quote = None;
        let mut chars = trimmed.char_indices();
        let mut end = trimmed.len();
        while let Some((at, c)) = chars.next() {
            match (quote, c) {
                (None, c) if c.is_whitespace() => {
                    end = at;
                    break;
                }
                (None, '\'' | '"') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => word.extend(chars.next().map(|(_, n)| n)),
                (_, c) => word.push(c),
            }
        }
        pos += end;
        if word == "--" {
            return (flags, rest[pos..].trim_start());
        }
        flags.push(word);
    }
}

fn check_flags(keyword: &str, raw: Vec<String>) -> Result<Vec<(String, String)>, String> {
    let known = flags_of(keyword);
    let mut flags: Vec<(String, String)> = Vec::new();
    for word in raw {
        let body = &word[2..];
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(_, kind)) = known.iter().find(|(n, _)| *n == name) else {
            let takes: Vec<String> = known.iter().map(|(n, _)| format!("--{n}")).collect();
            let takes = if takes.is_empty() {
                "no flags".to_string()
            } else {
                takes.join(", ")
            };
            return Err(format!(
                "unknown flag for {keyword}: --{name} ({keyword} takes {takes})"
            ));
        };
        if kind != FlagKind::Repeated && flags.iter().any(|(n, _)| n == name) {
            return Err(format!("Duplicate flag specified: {name}"));
        }
        let value = match (kind, value) {
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some(v)) if v.eq_ignore_ascii_case("true") => "true".into(),
            (FlagKind::Bool, Some(v)) if v.eq_ignore_ascii_case("false") => "false".into(),
            (FlagKind::Bool, Some("")) | (_, None) => {
                return Err(format!("Missing a value on flag: {name}"))
            }
            (FlagKind::Bool, Some(v)) => {
                return Err(format!("Expecting boolean value for flag {name}, not: {v}"))
            }
            // An empty value (`--chown=`) is a value, as in docker.
            (_, Some(v)) => v.to_string(),
        };
        flags.push((name.to_string(), value));
    }
    Ok(flags)
}

/// `Some` for a JSON array of strings; an array of anything else is an error;
/// other text is the shell form.
fn json_form(args: &str) -> Result<Option<Vec<String>>, String> {
    if let Some(v) = words::json_array(args) {
        return Ok(Some(v));
    }
    if args.starts_with('[') && serde_json::from_str::<Vec<serde_json::Value>>(args).is_ok() {
        return Err(
            "when using JSON array syntax, arrays must be comprised of strings only".into(),
        );
    }
    Ok(None)
}

/// The argument checks docker makes while parsing.
fn check_args(
    keyword: &str,
    args: &str,
    json: Option<&[String]>,
    escape: char,
) -> Result<(), String> {
    let count = json.map_or_else(|| args.split_whitespace().count(), <[String]>::len);
    match keyword {
        "MAINTAINER" | "USER" | "WORKDIR" | "STOPSIGNAL" if args.is_empty() => {
            Err(format!("{keyword} requires exactly one argument"))
        }
        "RUN" | "EXPOSE" | "VOLUME" | "HEALTHCHECK" | "SHELL" | "ONBUILD" | "ENV" | "LABEL"
        | "ARG"
            if count == 0 =>
        {
            Err(format!("{keyword} requires at least one argument"))
        }
        "COPY" | "ADD" if count < 2 => Err(format!(
            "{keyword} requires at least two arguments, but only one was provided. \
             Destination could not be determined"
        )),
        "FROM" if !(count == 1 || (count == 3 && from_has_as(args))) => {
            Err("FROM requires either one or three arguments".into())
        }
        "SHELL" if json.is_none() => Err("SHELL requires the arguments to be in JSON form".into()),
        "ENV" | "LABEL" => {
            let first = args.split_whitespace().next().unwrap_or_default();
            if !first.contains('=') && count < 2 {
                return Err(format!("{keyword} must have two arguments"));
            }
            expand::split_pairs(args, escape)
                .map(drop)
                .map_err(|e| format!("{keyword}: {e}"))
        }
        "ARG" => expand::arg_decls(args, escape).map(drop),
        "HEALTHCHECK" => {
            let (kind, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
            match kind.to_uppercase().as_str() {
                "NONE" if !rest.trim().is_empty() => {
                    Err("HEALTHCHECK NONE takes no arguments".into())
                }
                "NONE" => Ok(()),
                "CMD" if rest.trim().is_empty() => {
                    Err("Missing command after HEALTHCHECK CMD".into())
                }
                "CMD" => Ok(()),
                _ => Err(format!("Unknown type {kind:?} in HEALTHCHECK (try CMD)")),
            }
        }
        _ => Ok(()),
    }
}

fn from_has_as(args: &str) -> bool {
    args.split_whitespace()
        .nth(1)
        .is_some_and(|w| w.eq_ignore_ascii_case("as"))
}

/// A heredoc marker found in the arguments, before its body is read.
struct Marker {
    delimiter: String,
    expand: bool,
    strip_tabs: bool,
}

/// The heredoc markers of a `RUN`/`COPY`/`ADD` in shell form (also as an
/// `ONBUILD` trigger), in order.
fn heredoc_markers(inst: &RawInstruction, line: usize) -> Result<Vec<Marker>, ParseError> {
    let (keyword, args) = if inst.keyword == "ONBUILD" {
        let (k, rest) = inst
            .args
            .split_once(char::is_whitespace)
            .unwrap_or((&inst.args, ""));
        let (_, rest) = split_flags(rest);
        if json_form(rest.trim()).ok().flatten().is_some() {
            return Ok(Vec::new());
        }
        (k.to_uppercase(), rest.trim())
    } else if inst.json.is_some() {
        return Ok(Vec::new());
    } else {
        (inst.keyword.clone(), inst.args.as_str())
    };
    if !matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
        return Ok(Vec::new());
    }
    let err = |message: String| ParseError { line, message };
    // An unterminated quote in the line means no heredocs, as in docker.
    let Some(words) = raw_shell_words(args) else {
        return Ok(Vec::new());
    };
    let mut markers = Vec::new();
    for w in &words {
        if let Some(m) = marker(w).map_err(err)? {
            markers.push(m);
        }
    }
    if keyword != "RUN"
        && words
            .last()
            .is_some_and(|w| marker(w).ok().flatten().is_some())
    {
        return Err(err(format!(
            "{keyword} cannot accept a heredoc as a destination"
        )));
    }
    Ok(markers)
}

/// Words split on unquoted blanks, quotes and `\` escapes kept; `None` for
/// an unterminated quote.
fn raw_shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                continue;
            }
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                cur.push(c);
                cur.extend(chars.next());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if quote.is_some() {
        return None;
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Some(words)
}

/// A heredoc marker word: `[n]<<[-]WORD`, `WORD` possibly quoted.
fn marker(word: &str) -> Result<Option<Marker>, String> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = w.strip_prefix("<<") else {
        return Ok(None);
    };
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let mut delimiter = String::new();
    let mut quoted = false;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                quoted = true;
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated quote in heredoc marker {word}")),
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(n @ ('"' | '$' | '\\')) => delimiter.push(n),
                            Some(n) => {
                                delimiter.push('\\');
                                delimiter.push(n);
                            }
                            None => {
                                return Err(format!("unterminated quote in heredoc marker {word}"))
                            }
                        },
                        Some(n) => delimiter.push(n),
                    }
                }
            }
            '\\' => delimiter.extend(chars.next()),
            c => delimiter.push(c),
        }
    }
    if delimiter.is_empty() {
        return Ok(None);
    }
    Ok(Some(Marker {
        delimiter,
        expand: !quoted,
        strip_tabs,
    }))
}

/// Reads a heredoc body from `lines[*i..]` up to its terminator line.
fn read_heredoc(
    lines: &[&str],
    i: &mut usize,
    marker: Marker,
    line: usize,
) -> Result<Heredoc, ParseError> {
    let mut content = String::new();
    while let Some(raw) = lines.get(*i) {
        *i += 1;
        let body = chomp(raw);
        let candidate = if marker.strip_tabs {
            body.trim_start_matches('\t')
        } else {
            body
        };
        if candidate == marker.delimiter {
            return Ok(Heredoc {
                delimiter: marker.delimiter,
                content,
                expand: marker.expand,
                strip_tabs: marker.strip_tabs,
            });
        }
        content.push_str(if marker.strip_tabs {
            raw.trim_start_matches('\t')
        } else {
            raw
        });
    }
    Err(ParseError {
        line,
        message: format!(
            "unterminated heredoc: no line {:?} ends the heredoc started here",
            marker.delimiter
        ),
    })
}

/// Groups the instructions into stages.
fn stages(
    instructions: Vec<RawInstruction>,
    last_line: usize,
    escape: char,
    syntax: Option<String>,
) -> Result<Dockerfile, ParseError> {
    let end = |message: &str| ParseError {
        line: last_line.max(1),
        message: message.to_string(),
    };
    if instructions.is_empty() {
        return Err(end("file with no instructions"));
    }
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for inst in instructions {
        if inst.keyword == "FROM" {
            let stage = stage(inst)?;
            if let Some(name) = &stage.name {
                if stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                    return Err(ParseError {
                        line: stage.from.line,
                        message: format!("duplicate stage name {name:?}"),
                    });
                }
            }
            stages.push(stage);
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(inst);
        } else if inst.keyword == "ARG" {
            global_args.push(inst);
        } else {
            return Err(ParseError {
                line: inst.line,
                message: format!(
                    "no build stage in current context: {} must come after a FROM \
                     (only ARG may come before the first FROM)",
                    inst.keyword
                ),
            });
        }
    }
    if stages.is_empty() {
        return Err(end(
            "dockerfile contains no stages to build: it has no FROM",
        ));
    }
    Ok(Dockerfile {
        escape,
        syntax,
        global_args,
        stages,
    })
}

/// A stage from its `FROM` (whose argument count is already checked).
fn stage(from: RawInstruction) -> Result<Stage, ParseError> {
    let words: Vec<&str> = from.args.split_whitespace().collect();
    let base = words[0].to_string();
    let name = match words.get(2) {
        Some(n) => {
            let name = n.to_lowercase();
            let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(ParseError {
                    line: from.line,
                    message: format!(
                        "invalid name for build stage: {n:?}, name can't start with a number \
                         or contain symbols"
                    ),
                });
            }
            Some(name)
        }
        None => None,
    };
    let platform = from
        .flags
        .iter()
        .find(|(n, _)| n == "platform")
        .map(|(_, v)| v.clone());
    Ok(Stage {
        from,
        base,
        name,
        platform,
        instructions: Vec::new(),
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
