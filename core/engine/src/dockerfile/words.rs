//! docker's quoting of instruction arguments: words split on blanks with
//! single and double quotes and backslash escapes (`ENV`, `LABEL`, `EXPOSE`,
//! `VOLUME`), `key=value` pairs, the JSON-array form of `CMD`/`ENTRYPOINT`,
//! and Go durations (`HEALTHCHECK --interval=30s`).

/// Splits `s` into words as docker does for `ENV`/`LABEL`: blanks separate
/// words, quotes group (and are removed), a backslash escapes the next
/// character — inside double quotes only `"`, `\`, `$` and `` ` ``, inside
/// single quotes nothing.
pub fn split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err(format!("unexpected end of text in {s:?}: missing '")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => {
                                return Err(format!("unexpected end of text in {s:?}: missing \""))
                            }
                        },
                        Some(n) => cur.push(n),
                        None => return Err(format!("unexpected end of text in {s:?}: missing \"")),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `KEY=VALUE` pairs (`ENV a=1 b="two words"`), or the old one-pair form
/// `KEY VALUE…` (the value is the rest of the text) when the first word has
/// no `=`. `what` names the instruction in errors.
pub fn pairs(s: &str, what: &str) -> Result<Vec<(String, String)>, String> {
    let s = s.trim();
    let first = s.split([' ', '\t']).next().unwrap_or_default();
    if !first.contains('=') {
        let (key, value) = s
            .split_once([' ', '\t'])
            .ok_or_else(|| format!("{what} needs a value: {what} {s}"))?;
        let value = split(value.trim())?.join(" ");
        return Ok(vec![(key.to_string(), value)]);
    }
    split(s)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{what} names no key in {w:?}")),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(format!("{what}: {w:?} is not KEY=VALUE")),
        })
        .collect()
}

/// The JSON-array form (`["a", "b"]`), if `s` is one.
pub fn json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// A Go duration (`90s`, `1m30s`, `500ms`, `1h`, `0`) in nanoseconds.
pub fn duration_ns(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 30s, 1m30s, 500ms)");
    if s == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Ok(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(
            split(r#"a "b c" 'd e' f\ g"#).unwrap(),
            ["a", "b c", "d e", "f g"]
        );
        assert_eq!(split(r#"x="1 2" y='$z'"#).unwrap(), ["x=1 2", "y=$z"]);
        assert_eq!(split(r#""a\"b""#).unwrap(), [r#"a"b"#]);
        assert!(split(r#"a "b"#).is_err());
        assert_eq!(split("  ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn pairs_in_both_forms() {
        assert_eq!(
            pairs(r#"A=1 B="two words""#, "ENV").unwrap(),
            [("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
        assert_eq!(
            pairs("A one two", "ENV").unwrap(),
            [("A".to_string(), "one two".to_string())]
        );
        assert!(pairs("=x", "ENV").is_err());
        assert!(pairs("LONELY", "ENV")
            .unwrap_err()
            .contains("needs a value"));
    }

    #[test]
    fn json_arrays_and_durations() {
        assert_eq!(json_array(r#"["sh", "-c"]"#).unwrap(), ["sh", "-c"]);
        assert_eq!(json_array("sh -c"), None);
        assert_eq!(duration_ns("30s").unwrap(), 30_000_000_000);
        assert_eq!(duration_ns("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(duration_ns("500ms").unwrap(), 500_000_000);
        assert_eq!(duration_ns("1.5h").unwrap(), 5_400_000_000_000);
        assert!(
            duration_ns("ten").is_err() && duration_ns("5").is_err() && duration_ns("").is_err()
        );
    }
}
