//! `.dockerignore`: which paths of a build context are left out, with the
//! semantics of moby's patternmatcher — each pattern is matched against the
//! path and each of its parent directories, the last matching pattern
//! decides, `!` patterns take paths back in.

/// The patterns of a `.dockerignore` file.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// A `!` pattern: a match takes the path back into the context.
    exception: bool,
    kind: Kind,
}

/// How a pattern matches, chosen as the patternmatcher chooses it.
#[derive(Debug, Clone)]
enum Kind {
    /// No wildcard: the path must be this.
    Exact(String),
    /// `dir/**`: the path starts with `dir/`.
    Prefix(String),
    /// `**/name` (or `**name`): the path ends with the rest.
    Suffix(String),
    Glob(Vec<Tok>),
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    /// `?`: one character but `/`.
    One,
    /// `*`: any run of characters but `/`.
    Star,
    /// `**` inside a pattern: any number of whole leading segments
    /// (`(.*/)?`).
    Segments,
    /// `**` at the end: anything at all.
    Rest,
    /// `[…]`: ranges (a single character is a range of one), negated by `^`.
    Class(bool, Vec<(char, char)>),
}

impl Ignore {
    /// Reads `.dockerignore` text: a line starting with `#` is a comment,
    /// the others are trimmed and blank ones skipped; a leading `!` makes
    /// an exception; each pattern is cleaned like Go's `filepath.Clean`
    /// (`./a//b/` is `a/b`) and a leading `/` dropped.
    pub fn parse(text: &str) -> Result<Ignore, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, p) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if p.is_empty() {
                return Err(format!(
                    ".dockerignore line {}: illegal exclusion pattern: \"!\"",
                    n + 1
                ));
            }
            let p = clean(p);
            let p = match p.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_string(),
                _ => p,
            };
            let kind = compile(&p)
                .map_err(|e| format!(".dockerignore line {}: pattern {p:?}: {e}", n + 1))?;
            patterns.push(Pattern { exception, kind });
        }
        Ok(Ignore { patterns })
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out:
    /// the last pattern matching it or one of its parent directories
    /// decides. The context root itself is never excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path.trim_start_matches('/'));
        if path == "." {
            return false;
        }
        let path: Vec<char> = path.chars().collect();
        let parents: Vec<usize> = (0..path.len()).filter(|&i| path[i] == '/').collect();
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that can change the answer needs a look.
            if p.exception != excluded {
                continue;
            }
            let hit = p.kind.matches(&path) || parents.iter().any(|&i| p.kind.matches(&path[..i]));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether any `!` pattern exists: a walker must then look inside
    /// excluded directories, since something below may be taken back in.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// Compiles a cleaned pattern, choosing the kind as the patternmatcher
/// does (which matters: `**foo` is a plain suffix test).
fn compile(p: &str) -> Result<Kind, String> {
    #[derive(PartialEq)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Glob,
    }
    let mut detected = Detected::Exact;
    let mut toks = Vec::new();
    let mut it = p.chars().peekable();
    let mut first = true;
    while let Some(c) = it.next() {
        match c {
            '*' if it.peek() == Some(&'*') => {
                it.next();
                if it.peek() == Some(&'/') {
                    it.next();
                }
                if it.peek().is_none() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        toks.push(Tok::Rest);
                        detected = Detected::Glob;
                    }
                } else {
                    toks.push(Tok::Segments);
                    detected = Detected::Glob;
                }
                if first {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                detected = Detected::Glob;
            }
            '?' => {
                toks.push(Tok::One);
                detected = Detected::Glob;
            }
            '\\' => match it.next() {
                Some(n) => {
                    toks.push(Tok::Lit(n));
                    detected = Detected::Glob;
                }
                None => return Err("syntax error in pattern: it ends with \\".into()),
            },
            '[' => {
                toks.push(class(&mut it)?);
                detected = Detected::Glob;
            }
            c => toks.push(Tok::Lit(c)),
        }
        first = false;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact(p.to_string()),
        // Both strip the `**`: `dir/**` keeps `dir/`, `**/x` keeps `/x`.
        Detected::Prefix => Kind::Prefix(p[..p.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(p[2..].to_string()),
        Detected::Glob => Kind::Glob(toks),
    })
}

/// A `[…]` class after its `[`.
fn class(it: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Tok, String> {
    let unclosed = || "syntax error in pattern: [ without ]".to_string();
    let negated = it.next_if_eq(&'^').is_some();
    let mut ranges = Vec::new();
    loop {
        let lo = match it.next().ok_or_else(unclosed)? {
            ']' if !ranges.is_empty() => return Ok(Tok::Class(negated, ranges)),
            ']' => return Err("syntax error in pattern: empty []".into()),
            '\\' => it.next().ok_or_else(unclosed)?,
            c => c,
        };
        let hi = if it.next_if_eq(&'-').is_some() {
            match it.next().ok_or_else(unclosed)? {
                '\\' => it.next().ok_or_else(unclosed)?,
                ']' => return Err("syntax error in pattern: range without an end".into()),
                c => c,
            }
        } else {
            lo
        };
        if hi < lo {
            return Err(format!("syntax error in pattern: bad range {lo}-{hi}"));
        }
        ranges.push((lo, hi));
    }
}

impl Kind {
    fn matches(&self, path: &[char]) -> bool {
        match self {
            Kind::Exact(p) => p.chars().eq(path.iter().copied()),
            Kind::Prefix(p) => {
                let p: Vec<char> = p.chars().collect();
                path.starts_with(&p)
            }
            Kind::Suffix(s) => {
                let s: Vec<char> = s.chars().collect();
                // `**/foo` also matches `foo` itself.
                path.ends_with(&s) || (s.first() == Some(&'/') && path == &s[1..])
            }
            Kind::Glob(toks) => glob(toks, path),
        }
    }
}

fn glob(toks: &[Tok], s: &[char]) -> bool {
    let Some((tok, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match tok {
        Tok::Lit(c) => s.first() == Some(c) && glob(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|&c| c != '/') && glob(rest, &s[1..]),
        Tok::Class(negated, ranges) => {
            s.first().is_some_and(|&c| {
                c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }) && glob(rest, &s[1..])
        }
        Tok::Star => {
            let run = s.iter().position(|&c| c == '/').unwrap_or(s.len());
            (0..=run).any(|k| glob(rest, &s[k..]))
        }
        Tok::Segments => {
            glob(rest, s)
                || s.iter()
                    .enumerate()
                    .any(|(i, &c)| c == '/' && glob(rest, &s[i + 1..]))
        }
        Tok::Rest => true,
    }
}

#[cfg(test)]
#[path = "ignore_tests.rs"]
mod tests;
