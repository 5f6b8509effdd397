//! The verbs that act on containers by name and print each name: stop,
//! restart, kill, rm, pause, unpause, rename, wait.

use anyhow::Result;
use hyper::Method;

use crate::api::containers::WaitResponse;
use crate::client::http::{enc, Client};

/// Runs `f` for every id; prints errors as docker does and returns 1 if any failed.
pub(super) async fn each<F, Fut>(ids: &[String], f: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut code = 0;
    for id in ids {
        if let Err(e) = f(id.clone()).await {
            eprintln!("{e}");
            code = 1;
        }
    }
    Ok(code)
}

pub async fn stop(
    c: &Client,
    ids: &[String],
    time: Option<i64>,
    signal: Option<&str>,
    restart: bool,
) -> Result<i32> {
    let verb = if restart { "restart" } else { "stop" };
    each(ids, |id| async move {
        let mut q = format!("/containers/{}/{verb}?", enc(&id));
        if let Some(t) = time {
            q.push_str(&format!("t={t}&"));
        }
        if let Some(s) = signal {
            q.push_str(&format!("signal={}", enc(s)));
        }
        c.call(Method::POST, &q, None).await.map(|_| say!("{id}"))
    })
    .await
}

pub async fn kill(c: &Client, ids: &[String], signal: &str) -> Result<i32> {
    each(ids, |id| async move {
        c.call(
            Method::POST,
            &format!("/containers/{}/kill?signal={}", enc(&id), enc(signal)),
            None,
        )
        .await
        .map(|_| say!("{id}"))
    })
    .await
}

pub async fn rm(c: &Client, ids: &[String], force: bool, volumes: bool) -> Result<i32> {
    each(ids, |id| async move {
        c.call(
            Method::DELETE,
            &format!(
                "/containers/{}?force={}&v={}",
                enc(&id),
                force as u8,
                volumes as u8
            ),
            None,
        )
        .await
        .map(|_| say!("{id}"))
    })
    .await
}

pub async fn simple(c: &Client, ids: &[String], verb: &str) -> Result<i32> {
    each(ids, |id| async move {
        c.call(
            Method::POST,
            &format!("/containers/{}/{verb}", enc(&id)),
            None,
        )
        .await
        .map(|_| say!("{id}"))
    })
    .await
}

/// `commit`'s flags.
#[derive(Debug)]
pub struct CommitArgs<'a> {
    pub author: Option<&'a str>,
    pub changes: &'a [String],
    pub message: Option<&'a str>,
    pub pause: bool,
}

/// `commit CONTAINER [REPO[:TAG]]`: prints the new image's id, as docker does.
pub async fn commit(
    c: &Client,
    container: &str,
    reference: Option<&str>,
    a: &CommitArgs<'_>,
) -> Result<i32> {
    let mut q = format!("/commit?container={}&pause={}", enc(container), a.pause);
    if let Some(r) = reference {
        q.push_str(&crate::client::flags::repo_tag_query(r)?);
    }
    for (k, v) in [("author", a.author), ("comment", a.message)] {
        if let Some(v) = v {
            q.push_str(&format!("&{k}={}", enc(v)));
        }
    }
    for ch in a.changes {
        q.push_str(&format!("&changes={}", enc(ch)));
    }
    let (_, body) = c.call(Method::POST, &q, None).await?;
    let id: crate::api::IdResponse = serde_json::from_slice(&body)?;
    say!("{}", id.id);
    Ok(0)
}

/// `update`'s flags, as docker's.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub resources: crate::client::flags::ResourceArgs,
    /// Restart policy (no, always, unless-stopped, on-failure[:N]).
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `update`: prints each container as given, as docker does.
pub async fn update(c: &Client, a: &UpdateArgs) -> Result<i32> {
    let r = a.resources.parse()?;
    let u = berth_engine::containers::config::UpdateConfig {
        memory: r.memory,
        memory_swap: r.memory_swap,
        memory_reservation: r.memory_reservation,
        nano_cpus: r.nano_cpus,
        cpu_shares: r.cpu_shares,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpuset_cpus: r.cpuset_cpus,
        pids_limit: r.pids_limit,
        restart_policy: a
            .restart
            .as_ref()
            .map(|r| crate::client::flags::restart(&Some(r.clone())))
            .transpose()?,
    };
    let body = crate::client::http::Json::of(&u)?;
    let mut code = 0;
    for name in &a.containers {
        let path = format!("/containers/{}/update", enc(name));
        match c.call(Method::POST, &path, Some(&body)).await {
            Ok(_) => say!("{name}"),
            Err(e) => {
                eprintln!("berth: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `diff CONTAINER`: docker's `C`/`A`/`D` lines.
pub async fn diff(c: &Client, container: &str) -> Result<i32> {
    let path = format!("/containers/{}/changes", enc(container));
    let rows: Option<Vec<crate::api::containers::ChangeItem>> =
        c.json(Method::GET, &path, None).await?;
    for r in rows.unwrap_or_default() {
        let kind = match r.kind {
            0 => "C",
            1 => "A",
            _ => "D",
        };
        say!("{kind} {}", r.path);
    }
    Ok(0)
}

pub async fn rename(c: &Client, old: &str, new: &str) -> Result<i32> {
    c.call(
        Method::POST,
        &format!("/containers/{}/rename?name={}", enc(old), enc(new)),
        None,
    )
    .await?;
    Ok(0)
}

pub async fn wait(c: &Client, ids: &[String]) -> Result<i32> {
    each(ids, |id| async move {
        let v: WaitResponse = c
            .json(
                Method::POST,
                &format!("/containers/{}/wait", enc(&id)),
                None,
            )
            .await?;
        say!("{}", v.status_code);
        Ok(())
    })
    .await
}
