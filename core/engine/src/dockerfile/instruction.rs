//! The Dockerfile instructions that change an image's config (`CMD`,
//! `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `USER`, `VOLUME`, `WORKDIR`,
//! `STOPSIGNAL`, `HEALTHCHECK`, `ONBUILD`), parsed from one line as
//! `commit --change` takes them.

use super::words;

/// `CMD`/`ENTRYPOINT`/`HEALTHCHECK CMD` arguments: the JSON-array (exec)
/// form, or the shell form (run by `/bin/sh -c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    Exec(Vec<String>),
    Shell(String),
}

impl Form {
    fn parse(s: &str) -> Form {
        match words::json_array(s) {
            Some(v) => Form::Exec(v),
            None => Form::Shell(s.trim().to_string()),
        }
    }

    /// The command line as an image config holds it.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Form::Exec(v) => v.clone(),
            Form::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
        }
    }
}

/// `HEALTHCHECK [OPTIONS] CMD …`; durations in nanoseconds, 0 for the default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// docker's `Test`: `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

/// One config-changing instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Cmd(Form),
    Entrypoint(Form),
    Env(Vec<(String, String)>),
    /// Ports as `80/tcp`.
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    User(String),
    Volume(Vec<String>),
    Workdir(String),
    StopSignal(String),
    /// `None` for `HEALTHCHECK NONE`.
    Healthcheck(Option<Health>),
    /// The trigger as written, its instruction upper-cased.
    OnBuild(String),
}

/// What `commit --change` accepts (docker's list, with `STOPSIGNAL` and `HEALTHCHECK`).
const CHANGES: &str =
    "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK";

/// Parses `--change` values (each may hold several lines) into their
/// instructions, in order; blank lines are skipped. The first bad line is
/// refused naming the problem.
pub fn parse_changes(values: &[String]) -> crate::error::Result<Vec<Instruction>> {
    values
        .iter()
        .flat_map(|c| c.lines())
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_change(l).map_err(|r| crate::error::EngineError::invalid("--change", l, r)))
        .collect()
}

/// Parses one `--change` line (`ENV A=1`, `CMD ["sh"]`, …).
pub fn parse_change(line: &str) -> Result<Instruction, String> {
    let line = line.trim();
    let (word, rest) = line
        .split_once([' ', '\t'])
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((line, ""));
    let keyword = word.to_ascii_uppercase();
    let need = |what: &str| -> Result<(), String> {
        if rest.is_empty() {
            Err(format!("{what} requires at least one argument"))
        } else {
            Ok(())
        }
    };
    Ok(match keyword.as_str() {
        "CMD" => {
            need("CMD")?;
            Instruction::Cmd(Form::parse(rest))
        }
        "ENTRYPOINT" => {
            need("ENTRYPOINT")?;
            Instruction::Entrypoint(Form::parse(rest))
        }
        "ENV" => {
            need("ENV")?;
            Instruction::Env(words::pairs(rest, "ENV")?)
        }
        "LABEL" => {
            need("LABEL")?;
            Instruction::Label(words::pairs(rest, "LABEL")?)
        }
        "EXPOSE" => {
            need("EXPOSE")?;
            let mut ports = Vec::new();
            for p in words::split(rest)? {
                ports.extend(expose(&p)?);
            }
            Instruction::Expose(ports)
        }
        "USER" => {
            need("USER")?;
            Instruction::User(one(rest, "USER")?)
        }
        "WORKDIR" => {
            need("WORKDIR")?;
            Instruction::Workdir(one(rest, "WORKDIR")?)
        }
        "STOPSIGNAL" => {
            need("STOPSIGNAL")?;
            let sig = one(rest, "STOPSIGNAL")?;
            berth_runtime::signal::parse(&sig)
                .map_err(|_| format!("STOPSIGNAL: invalid signal {sig:?}"))?;
            Instruction::StopSignal(sig)
        }
        "VOLUME" => {
            need("VOLUME")?;
            let v = match words::json_array(rest) {
                Some(v) => v,
                None => words::split(rest)?,
            };
            if v.iter().any(|p| p.is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Instruction::Volume(v)
        }
        "HEALTHCHECK" => {
            need("HEALTHCHECK")?;
            Instruction::Healthcheck(healthcheck(rest)?)
        }
        "ONBUILD" => {
            need("ONBUILD")?;
            let (w, r) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            match w.to_ascii_uppercase().as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())
                }
                "FROM" | "MAINTAINER" => {
                    return Err(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        w.to_ascii_uppercase()
                    ))
                }
                t => Instruction::OnBuild(format!("{t} {}", r.trim()).trim_end().to_string()),
            }
        }
        "" => return Err("an empty --change: give an instruction".into()),
        _ => {
            return Err(format!(
                "{word} is not a valid change command: it must be one of {CHANGES}"
            ))
        }
    })
}

/// The single argument of `USER`/`WORKDIR`/`STOPSIGNAL`.
fn one(rest: &str, what: &str) -> Result<String, String> {
    let w = match words::json_array(rest) {
        Some(v) => v,
        None => words::split(rest)?,
    };
    match w.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("{what} requires exactly one argument")),
    }
}

/// `80`, `80/udp`, `8000-8002/tcp` as `80/tcp`, … .
fn expose(p: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("EXPOSE: invalid protocol {proto:?} in {p:?}"));
    }
    let port = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("EXPOSE: invalid port {s:?} in {p:?}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if hi < lo {
        return Err(format!("EXPOSE: invalid range {p:?}"));
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

fn healthcheck(rest: &str) -> Result<Option<Health>, String> {
    let mut h = Health::default();
    let mut rest = rest.trim();
    while let Some(opt) = rest.strip_prefix("--") {
        let (flag, after) = opt.split_once([' ', '\t']).unwrap_or((opt, ""));
        let (name, value) = flag
            .split_once('=')
            .ok_or_else(|| format!("HEALTHCHECK: --{flag} needs a value (--{flag}=…)"))?;
        match name {
            "interval" => h.interval = positive(value, name)?,
            "timeout" => h.timeout = positive(value, name)?,
            "start-period" => h.start_period = positive(value, name)?,
            "start-interval" => h.start_interval = positive(value, name)?,
            "retries" => {
                h.retries = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| format!("HEALTHCHECK: --retries={value:?} is not a count"))?
            }
            _ => return Err(format!("HEALTHCHECK: unknown flag --{name}")),
        }
        rest = after.trim();
    }
    let (kind, args) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    match kind.to_ascii_uppercase().as_str() {
        "NONE" if args.trim().is_empty() && h == Health::default() => Ok(None),
        "NONE" => Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" if !args.trim().is_empty() => {
            h.test = match Form::parse(args) {
                Form::Exec(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
                Form::Shell(s) => vec!["CMD-SHELL".into(), s],
            };
            Ok(Some(h))
        }
        "CMD" => Err("HEALTHCHECK CMD requires a command".into()),
        _ => Err(format!("HEALTHCHECK: expected CMD or NONE, got {kind:?}")),
    }
}

/// A duration flag of `HEALTHCHECK`: docker wants at least 1 ms (or 0).
fn positive(value: &str, name: &str) -> Result<i64, String> {
    let ns = words::duration_ns(value).map_err(|e| format!("HEALTHCHECK --{name}: {e}"))?;
    if ns != 0 && ns < 1_000_000 {
        return Err(format!(
            "HEALTHCHECK: Interval \"{name}\" cannot be less than 1ms"
        ));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_parses() {
        assert_eq!(
            parse_change(r#"CMD ["sh", "-c", "x"]"#).unwrap(),
            Instruction::Cmd(Form::Exec(vec!["sh".into(), "-c".into(), "x".into()]))
        );
        assert_eq!(
            parse_change("entrypoint echo hi").unwrap(),
            Instruction::Entrypoint(Form::Shell("echo hi".into()))
        );
        assert_eq!(
            parse_change("EXPOSE 80 53/udp 8000-8001").unwrap(),
            Instruction::Expose(vec![
                "80/tcp".into(),
                "53/udp".into(),
                "8000/tcp".into(),
                "8001/tcp".into()
            ])
        );
        assert_eq!(
            parse_change(r#"VOLUME ["/a", "/b"]"#).unwrap(),
            Instruction::Volume(vec!["/a".into(), "/b".into()])
        );
        assert_eq!(
            parse_change("USER 1000:1000").unwrap(),
            Instruction::User("1000:1000".into())
        );
        assert_eq!(
            parse_change("WORKDIR /srv").unwrap(),
            Instruction::Workdir("/srv".into())
        );
        assert_eq!(
            parse_change("STOPSIGNAL SIGINT").unwrap(),
            Instruction::StopSignal("SIGINT".into())
        );
        assert_eq!(
            parse_change("onbuild run make").unwrap(),
            Instruction::OnBuild("RUN make".into())
        );
        assert_eq!(
            parse_change("HEALTHCHECK NONE").unwrap(),
            Instruction::Healthcheck(None)
        );
        let Instruction::Healthcheck(Some(h)) =
            parse_change("HEALTHCHECK --interval=5s --retries=2 CMD curl -f http://x/").unwrap()
        else {
            panic!()
        };
        assert_eq!(h.test, ["CMD-SHELL", "curl -f http://x/"]);
        assert_eq!((h.interval, h.retries, h.timeout), (5_000_000_000, 2, 0));
    }

    #[test]
    fn bad_changes_name_the_problem() {
        let e = parse_change("RUN make").unwrap_err();
        assert!(e.contains("RUN is not a valid change command"), "{e}");
        assert!(parse_change("CMD").unwrap_err().contains("CMD requires"));
        assert!(parse_change("EXPOSE 0")
            .unwrap_err()
            .contains("invalid port"));
        assert!(parse_change("EXPOSE 80/xyz")
            .unwrap_err()
            .contains("protocol"));
        assert!(parse_change("STOPSIGNAL SIGNOPE")
            .unwrap_err()
            .contains("SIGNOPE"));
        assert!(parse_change("USER a b")
            .unwrap_err()
            .contains("exactly one"));
        assert!(parse_change("ONBUILD ONBUILD RUN x").is_err());
        assert!(parse_change("HEALTHCHECK --interval=1us CMD x").is_err());
        assert!(parse_change("HEALTHCHECK --bogus=1 CMD x")
            .unwrap_err()
            .contains("--bogus"));
    }
}
