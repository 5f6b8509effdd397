//! Config-changing instructions applied to an image's `config` in docker's
//! JSON (`Cmd`, `Entrypoint`, `Env`, `ExposedPorts`, `Labels`, `User`,
//! `Volumes`, `WorkingDir`, `StopSignal`, `Healthcheck`, `OnBuild`), in
//! order and with docker's rules: `ENV` replaces a variable of the same
//! name, a relative `WORKDIR` is joined to the one before, and `ENTRYPOINT`
//! clears the `CMD` inherited from before unless a `CMD` was given among
//! the same changes.

use serde_json::{json, Map, Value};

use super::instruction::Instruction;

/// The state of applying one set of changes.
#[derive(Debug, Default)]
pub struct Changes {
    cmd_set: bool,
}

impl Changes {
    /// Applies `list` to `config`, in order.
    pub fn apply(config: &mut Map<String, Value>, list: &[Instruction]) {
        let mut c = Changes::default();
        for i in list {
            c.one(config, i);
        }
    }

    fn one(&mut self, config: &mut Map<String, Value>, i: &Instruction) {
        match i {
            Instruction::Cmd(form) => {
                config.insert("Cmd".into(), json!(form.argv()));
                self.cmd_set = true;
            }
            Instruction::Entrypoint(form) => {
                config.insert("Entrypoint".into(), json!(form.argv()));
                if !self.cmd_set {
                    config.insert("Cmd".into(), Value::Null);
                }
            }
            Instruction::Env(pairs) => {
                let env = array(config, "Env");
                for (k, v) in pairs {
                    let entry = Value::String(format!("{k}={v}"));
                    let same = |e: &Value| {
                        e.as_str()
                            .is_some_and(|s| s.split_once('=').map_or(s, |(n, _)| n) == k)
                    };
                    match env.iter_mut().find(|e| same(e)) {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
            }
            Instruction::Label(pairs) => {
                let labels = object(config, "Labels");
                for (k, v) in pairs {
                    labels.insert(k.clone(), Value::String(v.clone()));
                }
            }
            Instruction::Expose(ports) => {
                let exposed = object(config, "ExposedPorts");
                for p in ports {
                    exposed.insert(p.clone(), json!({}));
                }
            }
            Instruction::Volume(paths) => {
                let volumes = object(config, "Volumes");
                for p in paths {
                    volumes.insert(p.clone(), json!({}));
                }
            }
            Instruction::User(u) => {
                config.insert("User".into(), json!(u));
            }
            Instruction::Workdir(w) => {
                let dir = if w.starts_with('/') {
                    w.clone()
                } else {
                    let base = config
                        .get("WorkingDir")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .unwrap_or("/");
                    format!("{}/{w}", base.trim_end_matches('/'))
                };
                config.insert("WorkingDir".into(), json!(dir));
            }
            Instruction::StopSignal(s) => {
                config.insert("StopSignal".into(), json!(s));
            }
            Instruction::Healthcheck(None) => {
                config.insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
            }
            Instruction::Healthcheck(Some(h)) => {
                let mut o = Map::new();
                o.insert("Test".into(), json!(h.test));
                for (k, v) in [
                    ("Interval", h.interval),
                    ("Timeout", h.timeout),
                    ("StartPeriod", h.start_period),
                    ("StartInterval", h.start_interval),
                    ("Retries", h.retries),
                ] {
                    if v != 0 {
                        o.insert(k.into(), json!(v));
                    }
                }
                config.insert("Healthcheck".into(), Value::Object(o));
            }
            Instruction::OnBuild(t) => array(config, "OnBuild").push(json!(t)),
        }
    }
}

/// `config[key]` as an array, made one if it is missing or null.
fn array<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let v = config.entry(key).or_insert(Value::Null);
    if !v.is_array() {
        *v = json!([]);
    }
    v.as_array_mut().expect("made an array")
}

/// `config[key]` as an object, made one if it is missing or null.
fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = config.entry(key).or_insert(Value::Null);
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("made an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse_change;

    fn applied(start: Value, changes: &[&str]) -> Value {
        let mut c = start.as_object().unwrap().clone();
        let list: Vec<_> = changes.iter().map(|l| parse_change(l).unwrap()).collect();
        Changes::apply(&mut c, &list);
        Value::Object(c)
    }

    #[test]
    fn changes_follow_dockers_rules() {
        let c = applied(
            json!({"Env": ["PATH=/bin", "A=0"], "Cmd": ["sh"], "WorkingDir": "/srv"}),
            &[
                "ENV A=1 B=2",
                "LABEL team=infra",
                "EXPOSE 80",
                "WORKDIR app",
                "ENTRYPOINT [\"/bin/run\"]",
                "VOLUME /data",
                "HEALTHCHECK --interval=5s CMD true",
                "ONBUILD RUN make",
            ],
        );
        assert_eq!(c["Env"], json!(["PATH=/bin", "A=1", "B=2"]));
        assert_eq!(c["Labels"], json!({"team": "infra"}));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(c["WorkingDir"], json!("/srv/app"));
        assert_eq!(c["Entrypoint"], json!(["/bin/run"]));
        assert_eq!(c["Cmd"], Value::Null, "ENTRYPOINT clears the inherited CMD");
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        assert_eq!(
            c["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64})
        );
        assert_eq!(c["OnBuild"], json!(["RUN make"]));
        // A CMD among the same changes stays, whatever the order.
        let c = applied(json!({}), &["CMD [\"a\"]", "ENTRYPOINT b"]);
        assert_eq!(c["Cmd"], json!(["a"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "b"]));
    }
}
