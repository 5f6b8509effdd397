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
