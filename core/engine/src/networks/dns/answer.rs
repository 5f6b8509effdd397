//! What one query gets: an answer from the network's names, a forward to
//! the upstream resolvers, or SERVFAIL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::sync::Semaphore;
use tracing::debug;

use super::table::{query_key, read, Table};
use super::{QueryError, MAX_MESSAGE};

/// The TTL of the answers about containers.
const TTL: u32 = 600;
/// The UDP answer size a client without EDNS accepts.
const PLAIN_UDP_PAYLOAD: usize = 512;
/// The UDP payload size this server advertises in its EDNS answers.
const EDNS_PAYLOAD: u16 = 1232;

/// What to do with one query.
#[derive(Debug)]
pub(super) enum Action {
    Reply(Vec<u8>),
    Forward(Arc<[SocketAddr]>),
    Ignore,
}

/// Every network's names, by network id (what a container on several
/// networks can resolve).
pub(super) type Tables = Arc<RwLock<HashMap<String, Arc<RwLock<Table>>>>>;

/// What the tasks of one network's server share.
#[derive(Debug, Clone)]
pub(super) struct Ctx {
    pub(super) table: Arc<RwLock<Table>>,
    /// All networks' tables: a container asking this network's server also
    /// resolves the names of the other networks it is on.
    pub(super) tables: Tables,
    pub(super) upstreams: Arc<[SocketAddr]>,
    pub(super) forwards: Arc<Semaphore>,
}

impl Ctx {
    /// Answers `packet` from the table, or says where to forward it.
    pub(super) fn route(
        &self,
        packet: &[u8],
        from: SocketAddr,
        udp: bool,
    ) -> Result<Action, QueryError> {
        let decode = |source| QueryError::Decode { from, source };
        let mut decoder = BinDecoder::new(packet);
        let header = Header::read(&mut decoder).map_err(decode)?;
        if header.metadata.message_type != MessageType::Query || header.counts.queries == 0 {
            return Ok(Action::Ignore);
        }
        let query = Query::read(&mut decoder).map_err(decode)?;
        let table = read(&self.table);
        if header.metadata.op_code == OpCode::Query && header.counts.queries == 1 {
            let mut buf = [0; 256];
            if let Some(key) = query_key(query.name(), &mut buf) {
                // This network's names first, then those of the other
                // networks the asking container is on (by network id).
                let mut found = table.names.get(key).cloned();
                if found.is_none() {
                    if let Some(sender) = table.id_at(from.ip()) {
                        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
                        let mut others: Vec<_> = tables
                            .iter()
                            .filter(|(_, t)| !Arc::ptr_eq(t, &self.table))
                            .collect();
                        others.sort_by(|a, b| a.0.cmp(b.0));
                        found = others.into_iter().find_map(|(_, t)| {
                            let t = read(t);
                            t.containers
                                .contains_key(sender)
                                .then(|| t.names.get(key).cloned())
                                .flatten()
                        });
                    }
                }
                if let Some(holders) = found {
                    let wants_a =
                        query.query_type() == RecordType::A && query.query_class() == DNSClass::IN;
                    let answers = holders.iter().filter(|_| wants_a).map(|(_, ip)| {
                        Record::from_rdata(query.name().clone(), TTL, RData::A(A(*ip)))
                    });
                    let answer = local_answer(packet, query.clone(), answers, udp, from)?;
                    return Ok(Action::Reply(answer));
                }
            }
        }
        let upstreams = table
            .upstreams_of(from.ip())
            .unwrap_or_else(|| Arc::clone(&self.upstreams));
        drop(table);
        if upstreams.is_empty() {
            debug!(%from, name = %query.name(), "no upstream resolver: SERVFAIL");
            let answer = failure(&header.metadata, query).to_vec();
            return answer
                .map(Action::Reply)
                .map_err(|source| QueryError::Encode { from, source });
        }
        Ok(Action::Forward(upstreams))
    }
}

/// The answer to `packet` with `answers`; over UDP, truncated if it does not fit what the client takes.
fn local_answer(
    packet: &[u8],
    query: Query,
    answers: impl Iterator<Item = Record>,
    udp: bool,
    from: SocketAddr,
) -> Result<Vec<u8>, QueryError> {
    let request =
        Message::from_vec(packet).map_err(|source| QueryError::Decode { from, source })?;
    let mut response = Message::new(
        request.metadata.id,
        MessageType::Response,
        request.metadata.op_code,
    );
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.metadata.recursion_available = true;
    response.add_query(query);
    response.add_answers(answers);
    let mut limit = MAX_MESSAGE;
    if let Some(edns) = &request.edns {
        if udp {
            limit = usize::from(edns.max_payload()).max(PLAIN_UDP_PAYLOAD);
        }
        let mut ours = Edns::new();
        ours.set_max_payload(EDNS_PAYLOAD);
        response.set_edns(ours);
    } else if udp {
        limit = PLAIN_UDP_PAYLOAD;
    }
    let encode = |source| QueryError::Encode { from, source };
    let bytes = response.to_vec().map_err(encode)?;
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    response.truncate().to_vec().map_err(encode)
}

/// A SERVFAIL answer to the query with `metadata` and `query`.
fn failure(metadata: &Metadata, query: Query) -> Message {
    let mut response = Message::new(metadata.id, MessageType::Response, metadata.op_code);
    response.metadata = Metadata::response_from_request(metadata);
    response.metadata.recursion_available = true;
    response.metadata.response_code = ResponseCode::ServFail;
    response.add_query(query);
    response
}

/// The SERVFAIL answer to a query that `Ctx::route` already decoded once.
pub(super) fn servfail(packet: &[u8], from: SocketAddr) -> Result<Vec<u8>, QueryError> {
    let mut decoder = BinDecoder::new(packet);
    let decode = |source| QueryError::Decode { from, source };
    let header = Header::read(&mut decoder).map_err(decode)?;
    let query = Query::read(&mut decoder).map_err(decode)?;
    failure(&header.metadata, query)
        .to_vec()
        .map_err(|source| QueryError::Encode { from, source })
}
