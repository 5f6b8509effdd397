//! Output as docker prints it: aligned tables, "3 minutes ago", sizes, and
//! Go-template-like `--format` strings (`{{.ID}}`, `{{.State.Status}}`,
//! `{{json .Config}}`, a leading `table`).

use anyhow::{bail, Result};
use serde_json::Value;

/// Columns separated by at least three spaces, as docker's tabwriter.
pub fn table<S: AsRef<str>>(headers: &[S], rows: &[Vec<String>]) {
    let n = headers.len();
    let mut w: Vec<usize> = headers.iter().map(|h| h.as_ref().chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}   ", width = w[i]));
            }
        }
        s.trim_end().to_string()
    };
    say!("{}", line(headers.iter().map(|h| h.as_ref()).collect()));
    for r in rows {
        say!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

/// "5 seconds ago" for a unix time.
pub fn ago(t: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format!("{} ago", crate::api::units::human(now - t))
}

/// Bytes as docker's stats show them (KiB, MiB, GiB).
pub fn bytes(b: f64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v}{}", U[i])
    } else {
        format!("{v:.2}{}", U[i])
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for k in path
        .trim_start_matches('.')
        .split('.')
        .filter(|k| !k.is_empty())
    {
        cur = cur.get(k)?;
    }
    Some(cur)
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(" ")),
        Value::Object(_) => format!("map[{}]", v),
        other => other.to_string(),
    }
}

/// The value of `.A.B`, `index .A "key"` or `(index .A "key").B`; `None`
/// for an expression this subset does not know.
fn eval(expr: &str, v: &Value) -> Option<Value> {
    let index = |inner: &str| -> Option<Value> {
        let (path, key) = inner.trim().split_once(' ')?;
        let key = key.trim();
        let base = if path == "." {
            Some(v)
        } else {
            lookup(v, path)
        };
        let got = match key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
            Some(k) => base.and_then(|b| b.get(k)),
            None => base.and_then(|b| b.get(key.parse::<usize>().ok()?)),
        };
        Some(got.cloned().unwrap_or(Value::Null))
    };
    if let Some(rest) = expr.strip_prefix("(index ") {
        let (inner, tail) = rest.split_once(')')?;
        let base = index(inner)?;
        return Some(match tail.trim() {
            "" => base,
            t if t.starts_with('.') => lookup(&base, t).cloned().unwrap_or(Value::Null),
            _ => return None,
        });
    }
    if let Some(inner) = expr.strip_prefix("index ") {
        return index(inner);
    }
    if !expr.starts_with('.') {
        return None;
    }
    Some(lookup(v, expr).cloned().unwrap_or(Value::Null))
}

/// Renders a template against one object.
pub fn render(t: &str, v: &Value) -> Result<String> {
    let t = t.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = t.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            bail!("template: unclosed action in {t:?}");
        };
        let action = rest[start + 2..start + end].trim();
        let (json, path) = match action.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, action),
        };
        let val = eval(path, v).ok_or_else(|| {
            anyhow::anyhow!("template: berth's --format knows {{{{.Field}}}}, {{{{.A.B}}}}, {{{{json .Field}}}}, {{{{index .Map \"key\"}}}} and {{{{(index .Map \"key\").Field}}}}, not {action:?}")
        })?;
        if json {
            out.push_str(&serde_json::to_string(&val)?);
        } else {
            out.push_str(&show(&val));
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Renders rows; with `table`, headers are the field names upper-cased.
pub fn template_rows(t: &str, rows: &[Value], table_mode: bool) -> Result<()> {
    if table_mode {
        let headers: Vec<String> = t
            .split("{{")
            .skip(1)
            .filter_map(|s| s.split("}}").next())
            .map(|a| {
                let f = a.trim().trim_start_matches("json ").trim_start_matches('.');
                match f {
                    "ID" => "CONTAINER ID".to_string(),
                    other => other.to_ascii_uppercase(),
                }
            })
            .collect();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                t.split("{{")
                    .skip(1)
                    .filter_map(|s| s.split("}}").next())
                    .map(|a| render(&format!("{{{{{a}}}}}"), r).unwrap_or_default())
                    .collect()
            })
            .collect();
        table(&headers, &cells);
        return Ok(());
    }
    for r in rows {
        say!("{}", render(t, r)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let v = serde_json::json!({"State": {"Status": "running", "ExitCode": 0}, "Name": "/x", "Config": {"Env": ["A=1"]}});
        assert_eq!(
            render("{{.State.Status}} {{.State.ExitCode}}", &v).unwrap(),
            "running 0"
        );
        assert_eq!(render("{{json .Config.Env}}", &v).unwrap(), "[\"A=1\"]");
        assert!(render("{{range .X}}", &v).is_err());
        assert_eq!(bytes(2048.0), "2.00KiB");
    }
}
