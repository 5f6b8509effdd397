//! docker's shell-like processing of Dockerfile words: quotes, the escape
//! character and `$VAR`/`${VAR…}` substitution (as BuildKit's shell lexer
//! does for `ENV`, `ARG`, `COPY`, `WORKDIR`, …), and the raw `key=value`
//! splitting of `ENV`/`LABEL`/`ARG` whose values are expanded afterwards.
//!
//! Substitution forms: `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`,
//! `${NAME:+word}`, `${NAME+word}`, `${NAME:?msg}`, `${NAME?msg}`, and
//! BuildKit's `${NAME#pat}`, `${NAME##pat}`, `${NAME%pat}`, `${NAME%%pat}`,
//! `${NAME/pat/repl}`, `${NAME//pat/repl}` (`*` and `?` wildcards). An unset
//! variable expands to nothing; `$` before a character that cannot start a
//! name stays a `$`.

/// A variable lookup: `Some(value)` when the variable is set (maybe empty).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands one word: quotes removed, escapes applied, variables substituted;
/// blanks are kept (`"a  b"` and `a  b` both give `a  b`).
pub fn expand_word(word: &str, env: Env<'_>, escape: char) -> Result<String, String> {
    Lexer::new(word, env, escape)
        .run()
        .map(|(w, _)| w)
        .map_err(|e| format!("failed to process {word:?}: {e}"))
}

/// Expands `text` and splits it into words as docker does: unquoted blanks
/// separate words, including blanks that came from a variable's value
/// (`$X` with `X="a b"` gives two words); quotes are removed and a quoted
/// blank stays inside its word; empty words are dropped.
pub fn expand_words(text: &str, env: Env<'_>, escape: char) -> Result<Vec<String>, String> {
    Lexer::new(text, env, escape)
        .run()
        .map(|(_, words)| words)
        .map_err(|e| format!("failed to process {text:?}: {e}"))
}

/// The pairs of `ENV`/`LABEL` (`k=v k2="v 2"`), or the legacy one-pair form
/// `KEY value words…` (when the first word has no `=`; the value is the
/// rest of the text). Values are returned raw — quotes and escapes kept —
/// to be expanded with [`expand_word`]. A lone name gives `(name, "")`;
/// `ARG`, which must tell "no default" from "empty default" and has no
/// legacy form, should use [`arg_decls`].
pub fn split_pairs(args: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let args = args.trim();
    let words = raw_words(args, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        // Legacy form: the key, a run of blanks, then everything else.
        let blank = |c: char| matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r');
        return Ok(match args.split_once(blank) {
            Some((key, value)) => {
                vec![(key.to_string(), value.trim_start_matches(blank).to_string())]
            }
            None => vec![(args.to_string(), String::new())],
        });
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err("names can not be blank".to_string()),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect()
}

/// The declarations of an `ARG` instruction: `name` (no default, `None`) or
/// `name=value` (`Some`, possibly empty), values raw as in [`split_pairs`].
pub fn arg_decls(args: &str, escape: char) -> Result<Vec<(String, Option<String>)>, String> {
    raw_words(args.trim(), escape)
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err("ARG names can not be blank".to_string()),
            Some((k, v)) => Ok((k.to_string(), Some(v.to_string()))),
            None => Ok((w, None)),
        })
        .collect()
}

/// Splits on unquoted blanks keeping quotes and escapes in the words, as
/// docker's parser does before it looks for `=` in `ENV`/`LABEL`/`ARG`.
fn raw_words(s: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false; // an empty quoted word ("") still counts
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match quote {
            None if c.is_whitespace() => {
                if in_word && (quoted || !cur.is_empty()) {
                    words.push(std::mem::take(&mut cur));
                }
                cur.clear();
                in_word = false;
                quoted = false;
            }
            None => {
                in_word = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    quoted = true;
                } else if c == escape {
                    // The escape and the character it escapes both stay;
                    // an escape at the very end is dropped.
                    if let Some(&n) = chars.get(i) {
                        cur.push(c);
                        cur.push(n);
                        i += 1;
                    }
                    continue;
                }
                cur.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                } else if c == escape && q != '\'' {
                    match chars.get(i) {
                        Some(&n) => {
                            cur.push(c);
                            cur.push(n);
                            i += 1;
                        }
                        None => quote = None,
                    }
                    continue;
                }
                cur.push(c);
            }
        }
    }
    if in_word && (quoted || !cur.is_empty()) {
        words.push(cur);
    }
    words
}

/// Words collected while expanding: blanks from unquoted text and from
/// variable values end a word; quoted text is added whole.
#[derive(Default)]
struct Words {
    done: Vec<String>,
    cur: String,
}

impl Words {
    fn add(&mut self, c: char) {
        if c.is_whitespace() {
            if !self.cur.is_empty() {
                self.done.push(std::mem::take(&mut self.cur));
            }
        } else {
            self.cur.push(c);
        }
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add(c));
    }

    fn add_raw(&mut self, c: char) {
        self.cur.push(c);
    }

    fn add_raw_str(&mut self, s: &str) {
        self.cur.push_str(s);
    }

    fn finish(mut self) -> Vec<String> {
        if !self.cur.is_empty() {
            self.done.push(self.cur);
        }
        self.done
    }
}

const MISSING_BRACE: &str = "syntax error: missing '}'";

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: Env<'a>,
    escape: char,
    /// Keep escape characters in the output (for `#`/`%`/`/` patterns,
    /// which read their own escapes).
    raw_escapes: bool,
}

impl<'a> Lexer<'a> {
    fn new(text: &str, env: Env<'a>, escape: char) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            env,
            escape,
            raw_escapes: false,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn run(&mut self) -> Result<(String, Vec<String>), String> {
        self.process(None, false)
    }

    /// Processes up to `stop` (consumed) or the end of the text: the text
    /// as one string and as words.
    fn process(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let r = self.process_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut out = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((out, words.finish()));
            }
            match c {
                '$' => {
                    let v = self.dollar()?;
                    words.add_str(&v);
                    out.push_str(&v);
                }
                '\'' => {
                    let v = self.single_quoted()?;
                    words.add_raw_str(&v);
                    out.push_str(&v);
                }
                '"' => {
                    let v = self.double_quoted()?;
                    words.add_raw_str(&v);
                    out.push_str(&v);
                }
                _ => {
                    self.pos += 1;
                    let mut ch = c;
                    if c == self.escape {
                        if self.raw_escapes {
                            words.add_raw(c);
                            out.push(c);
                        }
                        // An escape at the very end is dropped.
                        let Some(n) = self.next() else { break };
                        ch = n;
                        words.add_raw(n);
                    } else {
                        words.add(c);
                    }
                    out.push(ch);
                }
            }
        }
        match stop {
            Some(s) => Err(format!(
                "unexpected end of statement while looking for matching {s}"
            )),
            None => Ok((out, words.finish())),
        }
    }

    /// `'…'`: everything literal up to the next `'`.
    fn single_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// `"…"`: `$` substitutes; the escape character escapes `"`, `$` and
    /// itself and is otherwise literal.
    fn double_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    let mut ch = c;
                    if c == self.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                ch = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    /// A substitution starting at `$`.
    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err(MISSING_BRACE.into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let ch = self.next().ok_or(MISSING_BRACE)?;
        match ch {
            '}' => Ok(self.lookup(&name).unwrap_or_default()),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let colon = ch == ':';
                let op = if colon {
                    self.next().ok_or(MISSING_BRACE)?
                } else {
                    ch
                };
                let modifier = if colon {
                    format!(":{op}")
                } else {
                    op.to_string()
                };
                let word = self.until('}', op == '#' || op == '%', MISSING_BRACE)?;
                let value = self.lookup(&name);
                let unset = match &value {
                    None => true,
                    Some(v) => colon && v.is_empty(),
                };
                match op {
                    '-' if unset => Ok(word),
                    '-' => Ok(value.unwrap_or_default()),
                    '+' if unset => Ok(String::new()),
                    '+' => Ok(word),
                    '?' if unset => {
                        let message = match (&word, &value) {
                            (w, _) if !w.is_empty() => w.as_str(),
                            (_, None) => "is not allowed to be unset",
                            (_, Some(_)) => "is not allowed to be empty",
                        };
                        Err(format!("{name}: {message}"))
                    }
                    '?' => Ok(value.unwrap_or_default()),
                    '#' | '%' => {
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(p) => (true, p),
                            None => (false, word.as_str()),
                        };
                        let pat = Pattern::parse(pattern).map_err(|e| {
                            format!("invalid pattern ({pattern}) in substitution: {e}")
                        })?;
                        let value = value.unwrap_or_default();
                        Ok(if op == '#' {
                            pat.trim_prefix(&value, greedy)
                        } else {
                            pat.trim_suffix(&value, greedy)
                        })
                    }
                    _ => Err(format!("unsupported modifier ({modifier}) in substitution")),
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let pattern = self.until('/', true, "syntax error: missing '/' in ${}")?;
                let replacement = self.until('}', true, MISSING_BRACE)?;
                let pat = Pattern::parse(&pattern)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                let value = self.lookup(&name).unwrap_or_default();
                Ok(pat.replace(&value, &replacement, all))
            }
            _ => Err(format!("unsupported modifier ({ch}) in substitution")),
        }
    }

    /// The word of a `${…}` modifier up to `stop`; `at_end` is the error
    /// when the text ends first.
    fn until(&mut self, stop: char, raw_escapes: bool, at_end: &str) -> Result<String, String> {
        match self.process(Some(stop), raw_escapes) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(at_end.into()),
            Err(e) => Err(e),
        }
    }

    /// A variable name: letters, digits and `_`; or a run of digits; or one
    /// of the shell's special parameters (`$@`, `$#`, …, which are unset).
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!') {
                self.pos += 1;
                return c.to_string();
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

/// A shell pattern of `${VAR#pat}` and friends: `*` any run of characters,
/// `?` any one, `\` quotes `*`, `?` and `\` (and is dropped before `}`/`/`).
#[derive(Debug)]
struct Pattern(Vec<Tok>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Lit(char),
    Any,
    Star,
}

impl Pattern {
    fn parse(p: &str) -> Result<Pattern, String> {
        let mut toks = Vec::new();
        let mut it = p.chars().peekable();
        while let Some(c) = it.next() {
            toks.push(match c {
                '*' => Tok::Star,
                '?' => Tok::Any,
                '\\' => match it.peek() {
                    Some('}' | '/') => continue,
                    Some(&n @ ('*' | '?' | '\\')) => {
                        it.next();
                        Tok::Lit(n)
                    }
                    Some(&n) => return Err(format!("invalid escape '\\{n}'")),
                    None => return Err("invalid escape '\\' at the end".into()),
                },
                c => Tok::Lit(c),
            });
        }
        Ok(Pattern(toks))
    }

    fn matches(toks: &[Tok], s: &[char]) -> bool {
        match toks.split_first() {
            None => s.is_empty(),
            Some((Tok::Star, rest)) => (0..=s.len()).any(|k| Self::matches(rest, &s[k..])),
            Some((Tok::Any, rest)) => !s.is_empty() && Self::matches(rest, &s[1..]),
            Some((Tok::Lit(c), rest)) => s.first() == Some(c) && Self::matches(rest, &s[1..]),
        }
    }

    /// Removes the shortest (or, `greedy`, the longest) matching prefix.
    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut ends = 0..=v.len();
        let hit = |k: &usize| Self::matches(&self.0, &v[..*k]);
        let k = if greedy {
            ends.rev().find(hit)
        } else {
            ends.find(hit)
        };
        k.map_or_else(|| value.to_string(), |k| v[k..].iter().collect())
    }

    /// Removes the shortest (or, `greedy`, the longest) matching suffix.
    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut starts = 0..=v.len();
        let hit = |k: &usize| Self::matches(&self.0, &v[*k..]);
        let k = if greedy {
            starts.find(hit)
        } else {
            starts.rev().find(hit)
        };
        k.map_or_else(|| value.to_string(), |k| v[..k].iter().collect())
    }

    /// Replaces the first (or every) leftmost-longest match.
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let v: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        while pos <= v.len() {
            let found = (pos..=v.len()).find_map(|i| {
                (i..=v.len())
                    .rev()
                    .find(|&j| Self::matches(&self.0, &v[i..j]))
                    .map(|j| (i, j))
            });
            let Some((i, j)) = found else { break };
            out.extend(&v[pos..i]);
            out.push_str(replacement);
            if j == i {
                // An empty match: step over one character.
                out.extend(v.get(i));
                pos = i + 1;
            } else {
                pos = j;
            }
            if !all {
                break;
            }
        }
        if pos <= v.len() {
            out.extend(&v[pos..]);
        }
        out
    }
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
