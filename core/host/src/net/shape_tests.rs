//! The shaper against the real kernel, as root, inside network namespaces
//! each test creates; and the token bucket's parameters, computed alone.

use std::os::fd::AsFd;

use futures_util::stream::TryStreamExt;
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcOption};
use rtnetlink::packet_core::Nla;

use super::*;
use crate::net::netlink::testns::{block_on, in_new_netns, new_netns};
use crate::net::plan::{Shaping, Side, Step};
use crate::net::testnl::{apply, bridge_plan, get_link, links, undo_all};

/// The kind of the root qdisc of `name` and the options it reports.
async fn root_qdisc(nl: &Netlink, name: &str) -> Option<(String, Vec<TcOption>)> {
    let index = get_link(nl, name).await.header.index as i32;
    let qdiscs: Vec<_> = nl
        .handle
        .qdisc()
        .get()
        .index(index)
        .execute()
        .try_collect()
        .await
        .unwrap();
    let root = qdiscs
        .into_iter()
        .find(|q| q.header.index == index && q.header.parent == TcHandle::ROOT)?;
    let mut kind = String::new();
    let mut options = Vec::new();
    for attribute in root.attributes {
        match attribute {
            TcAttribute::Kind(k) => kind = k,
            TcAttribute::Options(o) => options = o,
            _ => {}
        }
    }
    Some((kind, options))
}

/// The attributes inside the options a qdisc reports, by kind.
/// netlink-packet-route does not know tbf and hands back the whole
/// TCA_OPTIONS as one opaque attribute, so it is walked here.
fn tbf_attributes(options: &[TcOption]) -> Vec<(u16, Vec<u8>)> {
    let mut attributes = Vec::new();
    for option in options {
        let TcOption::Other(nla) = option else {
            continue;
        };
        let mut value = vec![0; nla.value_len()];
        nla.emit_value(&mut value);
        if nla.kind() != TCA_OPTIONS {
            attributes.push((nla.kind(), value));
            continue;
        }
        let mut rest = &value[..];
        while rest.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
            let kind = u16::from_ne_bytes([rest[2], rest[3]]);
            attributes.push((kind, rest[4..len].to_vec()));
            rest = &rest[(len + 3) & !3..];
        }
    }
    attributes
}

const TCA_OPTIONS: u16 = 2;

/// The byte rate of a tbf qdisc (from TCA_TBF_RATE64, else the `rate.rate`
/// of TCA_TBF_PARMS).
fn tbf_rate(options: &[TcOption]) -> u64 {
    let attributes = tbf_attributes(options);
    let raw = |kind: u16| {
        attributes
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.clone())
    };
    if let Some(rate64) = raw(TCA_TBF_RATE64) {
        return u64::from_ne_bytes(rate64[..8].try_into().unwrap());
    }
    let parms =
        raw(TCA_TBF_PARMS).unwrap_or_else(|| panic!("tbf reports its parameters: {options:?}"));
    u64::from(u32::from_ne_bytes(parms[8..12].try_into().unwrap()))
}

#[test]
fn shaping_installs_a_token_bucket_on_either_side() {
    in_new_netns(|| {
        block_on(async {
            let container_ns = new_netns();
            let netns = Some(container_ns.as_fd());
            let host = Netlink::new().unwrap();
            let container = Netlink::in_netns(container_ns.as_fd()).unwrap();
            let mut plan = bridge_plan();
            plan.shaping = vec![
                Shaping {
                    side: Side::Host,
                    link: "vethtest0".into(),
                    rate: 10_000_000,
                },
                // 40 Gbit/s is more bytes per second than 32 bits hold.
                Shaping {
                    side: Side::Container,
                    link: "eth0".into(),
                    rate: 40_000_000_000,
                },
            ];
            let (steps, result) = apply(&host, &plan, netns).await;
            result.unwrap();
            assert!(steps.contains(&Step::Shaping {
                side: Side::Host,
                link: "vethtest0".into()
            }));
            assert!(steps.contains(&Step::Shaping {
                side: Side::Container,
                link: "eth0".into()
            }));

            let (kind, options) = root_qdisc(&host, "vethtest0").await.expect("a root qdisc");
            assert_eq!(kind, "tbf");
            assert_eq!(tbf_rate(&options), 10_000_000 / 8);
            let (kind, options) = root_qdisc(&container, "eth0").await.expect("a root qdisc");
            assert_eq!(kind, "tbf");
            assert_eq!(tbf_rate(&options), 40_000_000_000 / 8);

            // Undoing the shaping steps alone takes the buckets away.
            for step in steps
                .iter()
                .rev()
                .filter(|s| matches!(s, Step::Shaping { .. }))
            {
                host.undo(step, netns).await.unwrap();
                host.undo(step, netns).await.unwrap();
            }
            let not_tbf =
                |q: Option<(String, Vec<TcOption>)>| q.is_none_or(|(kind, _)| kind != "tbf");
            assert!(not_tbf(root_qdisc(&host, "vethtest0").await));
            assert!(not_tbf(root_qdisc(&container, "eth0").await));

            undo_all(&host, &steps, netns).await;
            assert!(links(&host).await.is_empty());
        })
    });
}

#[test]
fn tbf_parameters_follow_the_rate() {
    // The usual kernel: 1000 ns per µs, 64 ns per tick, 1 MHz clock.
    let ticks = parse_psched("000003e8 00000040 000f4240 3b9aca00\n").unwrap();
    assert_eq!(ticks, 15.625);
    // The old nanosecond convention.
    assert_eq!(
        parse_psched("000003e8 00000400 3b9aca00 3b9aca00"),
        Some(1000.0)
    );
    assert_eq!(parse_psched("garbage"), None);

    let options = tbf_options(10_000_000, 1500, ticks).unwrap();
    assert_eq!(tbf_rate(&options), 1_250_000);
    let parms = match &options[0] {
        TcOption::Other(nla) => {
            let mut v = vec![0; nla.value_len()];
            nla.emit_value(&mut v);
            v
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(parms.len(), 36, "struct tc_tbf_qopt");
    let word = |at: usize| u32::from_ne_bytes(parms[at..at + 4].try_into().unwrap());
    let burst = 16 * 1024;
    assert_eq!(
        word(24),
        1_250_000 / 20 + burst,
        "limit: 50 ms at the rate plus the burst"
    );
    let expected_ticks = (1e6 * f64::from(burst) / 1_250_000.0 * ticks) as u32;
    assert_eq!(
        word(28),
        expected_ticks,
        "buffer: the burst's send time in ticks"
    );
    assert!(tbf_options(4, 1500, ticks).is_err());
}
