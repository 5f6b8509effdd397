//! Bandwidth limits: a token bucket (`tbf`) qdisc at the root of a link,
//! installed through rtnetlink and removed again only if it is the one the
//! shaping step installs.

use futures_util::stream::{StreamExt, TryStreamExt};
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcHeader, TcMessage, TcOption};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{
    DefaultNla, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};

use super::apply::{journal, Record};
use super::netlink::{gone_is_ok, Netlink};
use super::plan::{Shaping, Step};
use super::NetError;

impl Netlink {
    /// Installs the token bucket of `shaping` on its link here; `what`
    /// names the step.
    pub(super) async fn shape(
        &self,
        shaping: &Shaping,
        what: &str,
        record: &mut Record<'_>,
    ) -> Result<(), NetError> {
        let nl = self;
        let link = nl
            .link(&shaping.link)
            .await
            .map_err(|e| NetError::netlink(what, &e))?
            .ok_or_else(|| {
                NetError::new(what, format!("there is no link named {}", shaping.link))
            })?;
        let mtu = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Mtu(mtu) => Some(*mtu),
                _ => None,
            })
            .unwrap_or(1500);
        let tick = psched_ticks_per_usec().map_err(|e| NetError::new(what, e))?;
        let options = tbf_options(shaping.rate, mtu, tick).map_err(|e| NetError::new(what, e))?;
        journal(
            record,
            Step::Shaping {
                side: shaping.side,
                link: shaping.link.clone(),
            },
            what,
        )?;
        let header = TcHeader {
            index: link.header.index as i32,
            parent: TcHandle::ROOT,
            ..Default::default()
        };
        let message = TcMessage::from_parts(
            header,
            vec![
                TcAttribute::Kind("tbf".into()),
                TcAttribute::Options(options),
            ],
        );
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewQueueDiscipline(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let mut handle = nl.handle.clone();
        let mut responses = handle
            .request(request)
            .map_err(|e| NetError::netlink(what, &e))?;
        while let Some(response) = responses.next().await {
            if let NetlinkPayload::Error(e) = response.payload {
                if e.code.is_some() {
                    return Err(NetError::io(what, &e.to_io()));
                }
            }
        }
        Ok(())
    }

    /// shaping step installs.
    pub(super) async fn unshape(&self, link: &str, what: &str) -> Result<(), NetError> {
        let Some(index) = self.find_index(link, what).await? else {
            return Ok(());
        };
        let qdiscs: Vec<TcMessage> = self
            .handle
            .qdisc()
            .get()
            .index(index as i32)
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetError::netlink(what, &e))?;
        let ours = qdiscs.iter().any(|q| {
            q.header.index == index as i32
                && q.header.parent == TcHandle::ROOT
                && q.attributes.contains(&TcAttribute::Kind("tbf".into()))
        });
        if !ours {
            return Ok(());
        }
        let mut request = self.handle.qdisc().del(index as i32);
        request.message_mut().header.parent = TcHandle::ROOT;
        gone_is_ok(request.execute().await, &[libc::ENOENT, libc::ENODEV], what)
    }
}

// The token bucket filter (`tbf`) qdisc. netlink-packet-route does not model
// its options, so they are encoded here as the kernel's structs
// (include/uapi/linux/pkt_sched.h), in native byte order.

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// How much traffic may wait in the bucket's queue, in time at the rate.
const TBF_LATENCY_USEC: u64 = 50_000;
/// The smallest burst: enough for a few full frames whatever the rate.
const TBF_MIN_BURST: u64 = 16 * 1024;

/// The `TCA_OPTIONS` of a token bucket at `rate` bits/s on a link of `mtu`,
/// with `ticks_per_usec` psched ticks to a microsecond.
fn tbf_options(rate: u64, mtu: u32, ticks_per_usec: f64) -> Result<Vec<TcOption>, String> {
    if rate < 8 {
        return Err(format!(
            "a rate of {rate} bit/s is below one byte per second"
        ));
    }
    let bytes_per_sec = rate / 8;
    // At least one timer tick's worth of traffic (tc's rule of thumb is
    // rate/HZ; 10 ms covers HZ=100), and a couple of full frames.
    let burst = (bytes_per_sec / 100)
        .max(TBF_MIN_BURST)
        .max(2 * u64::from(mtu))
        .min(u64::from(u32::MAX));
    let limit = (bytes_per_sec.saturating_mul(TBF_LATENCY_USEC) / 1_000_000)
        .saturating_add(burst)
        .min(u64::from(u32::MAX));
    // The bucket's depth as the time to send `burst` at the rate, in ticks.
    let usec = 1_000_000.0 * burst as f64 / bytes_per_sec as f64;
    let buffer = (usec * ticks_per_usec).min(f64::from(u32::MAX)) as u32;

    let rate32 = u32::try_from(bytes_per_sec).unwrap_or(u32::MAX);
    let mut parms = Vec::with_capacity(36);
    // struct tc_ratespec rate: cell_log, linklayer, overhead, cell_align, mpu, rate
    parms.extend_from_slice(&[0, TC_LINKLAYER_ETHERNET]);
    parms.extend_from_slice(&0u16.to_ne_bytes());
    parms.extend_from_slice(&0i16.to_ne_bytes());
    parms.extend_from_slice(&0u16.to_ne_bytes());
    parms.extend_from_slice(&rate32.to_ne_bytes());
    // struct tc_ratespec peakrate: none
    parms.extend_from_slice(&[0u8; 12]);
    parms.extend_from_slice(&(limit as u32).to_ne_bytes());
    parms.extend_from_slice(&buffer.to_ne_bytes());
    parms.extend_from_slice(&0u32.to_ne_bytes()); // mtu: only with a peak rate

    let mut options = vec![
        TcOption::Other(DefaultNla::new(TCA_TBF_PARMS, parms)),
        TcOption::Other(DefaultNla::new(
            TCA_TBF_BURST,
            (burst as u32).to_ne_bytes().to_vec(),
        )),
    ];
    if bytes_per_sec > u64::from(u32::MAX) {
        options.push(TcOption::Other(DefaultNla::new(
            TCA_TBF_RATE64,
            bytes_per_sec.to_ne_bytes().to_vec(),
        )));
    }
    Ok(options)
}

/// Packet scheduler ticks per microsecond, from the clock parameters the
/// kernel publishes in /proc/net/psched (read the way tc reads them: the
/// ratio of its first two words, scaled by the clock resolution in the
/// third, where a resolution of 1 GHz marks the old nanosecond convention).
fn psched_ticks_per_usec() -> Result<f64, String> {
    let path = "/proc/net/psched";
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    parse_psched(&text).ok_or_else(|| format!("{path} is not 3 hex numbers: {text:?}"))
}

fn parse_psched(text: &str) -> Option<f64> {
    let mut words = text
        .split_whitespace()
        .map(|w| u32::from_str_radix(w, 16).ok());
    let (t2us, us2t, clock_res) = (words.next()??, words.next()??, words.next()??);
    if us2t == 0 || clock_res == 0 {
        return None;
    }
    let t2us = if clock_res == 1_000_000_000 {
        us2t
    } else {
        t2us
    };
    Some(f64::from(t2us) / f64::from(us2t) * (f64::from(clock_res) / 1_000_000.0))
}

#[cfg(test)]
#[path = "shape_tests.rs"]
mod tests;
