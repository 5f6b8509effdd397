//! Tests of the embedded DNS server, on loopback only: fake upstreams run in the test on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use super::server::frame;
use super::table::{name_key, query_key};
use super::*;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(5);

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// An address on 127.0.0.1 whose port is free for both UDP and TCP.
fn free_addr() -> SocketAddr {
    loop {
        let udp = std::net::UdpSocket::bind((LOCAL, 0)).unwrap();
        let addr = udp.local_addr().unwrap();
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    message.to_vec().unwrap()
}

fn addresses(message: &Message) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    ips.sort();
    ips
}

/// Sends `packet` over UDP from `from` and waits `wait` for the answer.
async fn exchange(
    server: SocketAddr,
    from: IpAddr,
    packet: &[u8],
    wait: Duration,
) -> Option<Message> {
    let socket = UdpSocket::bind((from, 0)).await.unwrap();
    socket.send_to(packet, server).await.unwrap();
    let mut buf = vec![0; 65535];
    let (len, _) = tokio::time::timeout(wait, socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(Message::from_vec(&buf[..len]).unwrap())
}

async fn ask(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    ask_from(server, LOCAL, name, rtype).await
}

async fn ask_from(server: SocketAddr, from: IpAddr, name: &str, rtype: RecordType) -> Message {
    exchange(server, from, &query(0x1234, name, rtype), WAIT)
        .await
        .expect("the DNS server did not answer")
}

async fn ask_tcp(stream: &mut TcpStream, name: &str, rtype: RecordType) -> Message {
    let packet = query(0x4321, name, rtype);
    stream.write_all(&frame(&packet).unwrap()).await.unwrap();
    let len = stream.read_u16().await.unwrap();
    let mut answer = vec![0; usize::from(len)];
    stream.read_exact(&mut answer).await.unwrap();
    Message::from_vec(&answer).unwrap()
}

/// The answer of a fake upstream to `request`: `ip` for its first question, same id.
fn canned(request: &Message, ip: Ipv4Addr, truncated: bool) -> Vec<u8> {
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.truncation = truncated;
    let question = request.queries[0].clone();
    if !truncated {
        response.add_answer(Record::from_rdata(
            question.name().clone(),
            60,
            RData::A(A(ip)),
        ));
    }
    response.add_query(question);
    response.to_vec().unwrap()
}

/// A fake upstream on 127.0.0.1 answering every UDP query with `ip`.
async fn fake_upstream(ip: Ipv4Addr, truncated: bool) -> (SocketAddr, JoinHandle<()>) {
    let socket = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0; 65535];
        loop {
            let (len, from) = socket.recv_from(&mut buf).await.unwrap();
            let request = Message::from_vec(&buf[..len]).unwrap();
            socket
                .send_to(&canned(&request, ip, truncated), from)
                .await
                .unwrap();
        }
    });
    (addr, task)
}

/// A fake upstream on `addr` answering TCP queries with `ip`.
async fn fake_tcp_upstream(addr: SocketAddr, ip: Ipv4Addr) -> JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let len = stream.read_u16().await.unwrap();
            let mut request = vec![0; usize::from(len)];
            stream.read_exact(&mut request).await.unwrap();
            let request = Message::from_vec(&request).unwrap();
            stream
                .write_all(&frame(&canned(&request, ip, false)).unwrap())
                .await
                .unwrap();
        }
    })
}

/// A server on a free loopback port for network "n1" with two containers.
async fn two_containers(upstreams: Vec<SocketAddr>) -> (Dns, SocketAddr) {
    let dns = Dns::new(upstreams);
    dns.add(
        "n1",
        "abcdef123456789",
        &names(&["/web", "frontend", "abcdef123456", "webhost"]),
        Ipv4Addr::new(10, 0, 0, 2),
        vec![],
    );
    dns.add(
        "n1",
        "0123456789abcdef",
        &names(&["db", "Database."]),
        Ipv4Addr::new(10, 0, 0, 3),
        vec![],
    );
    let addr = free_addr();
    dns.serve("n1", addr).await.unwrap();
    (dns, addr)
}

#[tokio::test]
async fn names_aliases_short_ids_resolve_in_any_case() {
    let (_dns, server) = two_containers(vec![]).await;
    for name in ["web", "WEB", "web.", "FrontEnd.", "abcdef123456", "webhost"] {
        let answer = ask(server, name, RecordType::A).await;
        assert_eq!(
            answer.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert_eq!(answer.metadata.id, 0x1234);
        assert!(answer.metadata.recursion_available);
        assert_eq!(addresses(&answer), [Ipv4Addr::new(10, 0, 0, 2)], "{name}");
        assert_eq!(answer.answers[0].ttl, 600);
    }
    for name in ["db", "database", "DATABASE."] {
        assert_eq!(
            addresses(&ask(server, name, RecordType::A).await),
            [Ipv4Addr::new(10, 0, 0, 3)],
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_shared_name_answers_every_holder() {
    let (dns, server) = two_containers(vec![]).await;
    dns.add(
        "n1",
        "c3",
        &names(&["svc"]),
        Ipv4Addr::new(10, 0, 0, 4),
        vec![],
    );
    dns.add(
        "n1",
        "c4",
        &names(&["svc", "SVC"]),
        Ipv4Addr::new(10, 0, 0, 5),
        vec![],
    );
    let answer = ask(server, "svc", RecordType::A).await;
    assert_eq!(
        addresses(&answer),
        [Ipv4Addr::new(10, 0, 0, 4), Ipv4Addr::new(10, 0, 0, 5)]
    );
    // Names belong to their network only.
    dns.add(
        "n2",
        "c5",
        &names(&["other"]),
        Ipv4Addr::new(10, 1, 0, 2),
        vec![],
    );
    let answer = ask(server, "other", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn other_types_of_known_names_get_nodata() {
    let (_dns, server) = two_containers(vec![]).await;
    for rtype in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
        let answer = ask(server, "web", rtype).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.answers.is_empty());
        assert_eq!(answer.queries[0].query_type(), rtype);
    }
}

#[tokio::test]
async fn unknown_names_are_forwarded_and_relayed_with_the_client_id() {
    let (upstream, _task) = fake_upstream(Ipv4Addr::new(192, 0, 2, 1), false).await;
    let (_dns, server) = two_containers(vec![upstream]).await;
    let answer = exchange(
        server,
        LOCAL,
        &query(0xbeef, "example.test", RecordType::A),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(answer.metadata.id, 0xbeef);
    assert_eq!(addresses(&answer), [Ipv4Addr::new(192, 0, 2, 1)]);
}

#[tokio::test]
async fn a_container_with_its_own_upstreams_is_answered_by_them() {
    let (global, _global_task) = fake_upstream(Ipv4Addr::new(192, 0, 2, 1), false).await;
    let (own, _own_task) = fake_upstream(Ipv4Addr::new(192, 0, 2, 2), false).await;
    let (dns, server) = two_containers(vec![global]).await;
    dns.add(
        "n1",
        "c3",
        &names(&["custom"]),
        Ipv4Addr::new(127, 0, 0, 2),
        vec![own],
    );
    let from_custom = ask_from(
        server,
        "127.0.0.2".parse().unwrap(),
        "example.test",
        RecordType::A,
    )
    .await;
    assert_eq!(addresses(&from_custom), [Ipv4Addr::new(192, 0, 2, 2)]);
    let from_other = ask_from(
        server,
        "127.0.0.3".parse().unwrap(),
        "example.test",
        RecordType::A,
    )
    .await;
    assert_eq!(addresses(&from_other), [Ipv4Addr::new(192, 0, 2, 1)]);
}

#[tokio::test]
async fn without_upstreams_unknown_names_get_servfail() {
    let (_dns, server) = two_containers(vec![]).await;
    let answer = ask(server, "example.test", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        answer.queries[0].name(),
        &Name::from_ascii("example.test.").unwrap()
    );
}

#[tokio::test]
async fn a_dead_upstream_passes_to_the_next() {
    let refused = std::net::UdpSocket::bind((LOCAL, 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let silent = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let (good, _task) = fake_upstream(Ipv4Addr::new(192, 0, 2, 7), false).await;
    let (_dns, server) = two_containers(vec![refused, silent.local_addr().unwrap(), good]).await;
    let started = std::time::Instant::now();
    let answer = ask(server, "example.test", RecordType::A).await;
    assert_eq!(addresses(&answer), [Ipv4Addr::new(192, 0, 2, 7)]);
    assert!(started.elapsed() >= UPSTREAM_TIMEOUT);
}

#[tokio::test]
async fn a_truncated_answer_is_relayed_and_the_tcp_retry_forwarded_over_tcp() {
    let (upstream, _task) = fake_upstream(Ipv4Addr::new(192, 0, 2, 1), true).await;
    let _tcp_task = fake_tcp_upstream(upstream, Ipv4Addr::new(192, 0, 2, 9)).await;
    let (_dns, server) = two_containers(vec![upstream]).await;
    let answer = ask(server, "big.example.test", RecordType::A).await;
    assert!(answer.metadata.truncation);
    let mut stream = TcpStream::connect(server).await.unwrap();
    let answer = ask_tcp(&mut stream, "big.example.test", RecordType::A).await;
    assert_eq!(answer.metadata.id, 0x4321);
    assert_eq!(addresses(&answer), [Ipv4Addr::new(192, 0, 2, 9)]);
}

#[tokio::test]
async fn tcp_queries_are_answered_on_one_connection() {
    let (_dns, server) = two_containers(vec![]).await;
    let mut stream = TcpStream::connect(server).await.unwrap();
    assert_eq!(
        addresses(&ask_tcp(&mut stream, "web", RecordType::A).await),
        [Ipv4Addr::new(10, 0, 0, 2)]
    );
    assert_eq!(
        addresses(&ask_tcp(&mut stream, "DB", RecordType::A).await),
        [Ipv4Addr::new(10, 0, 0, 3)]
    );
}

#[tokio::test]
async fn an_answer_too_big_for_udp_is_truncated_and_whole_over_tcp() {
    let (dns, server) = two_containers(vec![]).await;
    for i in 0..60 {
        dns.add(
            "n1",
            &format!("replica{i}"),
            &names(&["many"]),
            Ipv4Addr::new(10, 0, 1, i),
            vec![],
        );
    }
    let answer = ask(server, "many", RecordType::A).await;
    assert!(answer.metadata.truncation);
    let mut with_edns = Message::from_vec(&query(7, "many", RecordType::A)).unwrap();
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    with_edns.set_edns(edns);
    let answer = exchange(server, LOCAL, &with_edns.to_vec().unwrap(), WAIT)
        .await
        .unwrap();
    assert!(!answer.metadata.truncation);
    assert_eq!(addresses(&answer).len(), 60);
    assert!(answer.edns.is_some());
    let mut stream = TcpStream::connect(server).await.unwrap();
    assert_eq!(
        addresses(&ask_tcp(&mut stream, "many", RecordType::A).await).len(),
        60
    );
}

#[tokio::test]
async fn a_removed_container_is_unknown() {
    let (dns, server) = two_containers(vec![]).await;
    dns.remove("n1", "abcdef123456789");
    for name in ["web", "frontend", "abcdef123456"] {
        assert_eq!(
            ask(server, name, RecordType::A)
                .await
                .metadata
                .response_code,
            ResponseCode::ServFail
        );
    }
    assert_eq!(
        addresses(&ask(server, "db", RecordType::A).await),
        [Ipv4Addr::new(10, 0, 0, 3)]
    );
    // Adding again replaces rather than duplicates.
    dns.add(
        "n1",
        "x",
        &names(&["web"]),
        Ipv4Addr::new(10, 0, 0, 8),
        vec![],
    );
    dns.add(
        "n1",
        "x",
        &names(&["web"]),
        Ipv4Addr::new(10, 0, 0, 9),
        vec![],
    );
    assert_eq!(
        addresses(&ask(server, "web", RecordType::A).await),
        [Ipv4Addr::new(10, 0, 0, 9)]
    );
}

/// Whether both the UDP and the TCP port of `addr` can be bound again.
async fn closed(addr: SocketAddr) -> bool {
    for _ in 0..100 {
        if std::net::UdpSocket::bind(addr).is_ok() && std::net::TcpListener::bind(addr).is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn stop_closes_the_port() {
    let (dns, server) = two_containers(vec![]).await;
    dns.stop("n1");
    assert!(closed(server).await);
    let packet = query(1, "web", RecordType::A);
    assert!(exchange(server, LOCAL, &packet, Duration::from_millis(300))
        .await
        .is_none());
    // The names stayed; serving again on the same address answers them.
    dns.serve("n1", server).await.unwrap();
    assert_eq!(
        addresses(&ask(server, "web", RecordType::A).await),
        [Ipv4Addr::new(10, 0, 0, 2)]
    );
}

#[tokio::test]
async fn serve_is_idempotent_and_a_new_address_moves_the_server() {
    let (dns, first) = two_containers(vec![]).await;
    dns.serve("n1", first).await.unwrap();
    assert_eq!(
        addresses(&ask(first, "web", RecordType::A).await),
        [Ipv4Addr::new(10, 0, 0, 2)]
    );
    let second = free_addr();
    dns.serve("n1", second).await.unwrap();
    assert!(closed(first).await);
    assert_eq!(
        addresses(&ask(second, "web", RecordType::A).await),
        [Ipv4Addr::new(10, 0, 0, 2)]
    );
    // A port held by another network fails with the address in the error.
    let err = dns.serve("n2", second).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&second.to_string()), "{err}");
}

#[tokio::test]
async fn garbage_is_ignored_and_the_server_keeps_answering() {
    let (_dns, server) = two_containers(vec![]).await;
    let socket = UdpSocket::bind((LOCAL, 0)).await.unwrap();
    let mut response = Message::from_vec(&query(9, "web", RecordType::A)).unwrap();
    response.metadata.message_type = MessageType::Response;
    let mut no_question = Message::new(10, MessageType::Query, OpCode::Query);
    no_question.metadata.recursion_desired = true;
    let mut cut = query(11, "web", RecordType::A);
    cut.truncate(cut.len() - 3);
    let garbage: [&[u8]; 6] = [
        b"",
        b"\x01",
        b"\xde\xad\xbe\xef garbage that is no DNS message at all",
        &response.to_vec().unwrap(),
        &no_question.to_vec().unwrap(),
        &cut,
    ];
    for packet in garbage {
        socket.send_to(packet, server).await.unwrap();
    }
    let mut buf = [0; 512];
    let silent = tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await;
    assert!(silent.is_err(), "garbage got an answer");
    // Garbage over TCP closes that connection only.
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream.write_all(b"\x00\x03abc").await.unwrap();
    assert_eq!(stream.read(&mut buf).await.unwrap(), 0);
    assert_eq!(
        addresses(&ask(server, "web", RecordType::A).await),
        [Ipv4Addr::new(10, 0, 0, 2)]
    );
}

#[test]
fn host_upstreams_skip_loopback_and_comments() {
    let conf = "# generated\nsearch example.test\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n\
                ; nameserver 10.9.9.9\nnameserver ::1\nnameserver 2001:db8::1 # v6\n\
                nameserver ::ffff:127.0.0.1\nnameserver fe80::1%eth0\nnameserver\nnameserver 0.0.0.0\n  nameserver 10.0.0.2\n";
    let expected: Vec<SocketAddr> = ["10.0.0.1:53", "[2001:db8::1]:53", "10.0.0.2:53"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(Dns::host_upstreams(conf), expected);
}

#[test]
fn query_keys_are_lowercase_without_the_root() {
    let mut buf = [0; 256];
    let name = Name::from_ascii("My-App.Example.").unwrap();
    assert_eq!(query_key(&name, &mut buf), Some(&b"my-app.example"[..]));
    assert_eq!(query_key(&Name::root(), &mut buf), Some(&b""[..]));
    assert_eq!(name_key("/Web."), Some(b"web".to_vec().into()));
    assert_eq!(name_key("/"), None);
}

#[tokio::test]
async fn a_container_on_several_networks_resolves_the_names_of_each() {
    let dns = Dns::new(Vec::new());
    let n1 = free_addr();
    dns.serve("n1", n1).await.unwrap();
    // The asking container is 127.0.0.1 on n1 and on n2, not on n3.
    dns.add(
        "n1",
        "asker",
        &names(&["asker"]),
        Ipv4Addr::LOCALHOST,
        vec![],
    );
    dns.add(
        "n2",
        "asker",
        &names(&["asker"]),
        Ipv4Addr::LOCALHOST,
        vec![],
    );
    dns.add(
        "n2",
        "svc",
        &names(&["svc", "svc-alias"]),
        Ipv4Addr::new(10, 2, 0, 5),
        vec![],
    );
    dns.add(
        "n3",
        "hidden",
        &names(&["hidden"]),
        Ipv4Addr::new(10, 3, 0, 5),
        vec![],
    );
    for name in ["svc", "svc-alias"] {
        let m = ask(n1, name, RecordType::A).await;
        assert_eq!(addresses(&m), [Ipv4Addr::new(10, 2, 0, 5)], "{name}");
    }
    // Not on n3: its names stay unknown (no upstreams here: SERVFAIL).
    let m = ask(n1, "hidden", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // Disconnected from n2: its names go with it.
    dns.remove("n2", "asker");
    let m = ask(n1, "svc", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // Connected to n3 later: its names come.
    dns.add(
        "n3",
        "asker",
        &names(&["asker"]),
        Ipv4Addr::LOCALHOST,
        vec![],
    );
    let m = ask(n1, "hidden", RecordType::A).await;
    assert_eq!(addresses(&m), [Ipv4Addr::new(10, 3, 0, 5)]);
    // Someone the network does not know asks: only n1's names.
    let stranger = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let m = ask_from(n1, stranger, "hidden", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}
