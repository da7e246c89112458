//! The Redis broker: one Redis, or a Redis Cluster with sharded pub/sub.
//!
//! Publishing runs one Lua script that increments the channel's sequence
//! number, encodes the event with it, appends it to a capped, expiring
//! history list and publishes it, all atomically: every instance sees the
//! same numbers and the history never disagrees with what was published.
//! The counter (a hash with the stream's epoch), the history list and the
//! pub/sub channel share one hash tag (see [`Channel::redis_name`]), so on a
//! cluster they live on one shard and the script may touch all three.
//!
//! Subscriptions use RESP3 push messages; redis-rs resubscribes after a
//! reconnect by itself. Events published while the link was down are not
//! delivered by Redis, so a lost link is reported to the node as
//! [`BrokerEvent::Disconnected`], and the node then makes every local
//! subscriber catch up from its last sequence number.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Script, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::broker::{
    BoxFuture, Broker, BrokerError, BrokerEvent, Frame, History, HistoryLimits, Position,
    new_epoch, now_us,
};
use super::channel::Channel;

/// An idle channel's counter is forgotten after this long; the next event
/// starts a new epoch, and old `since` values then get a resync.
const STREAM_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A command that takes longer than this fails (and is retried by the
/// caller) instead of hanging a publish or a subscribe.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

const PUBLISH: &str = r#"
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
local frame = '{"op":"event","channel":"' .. ARGV[2] .. '","seq":' .. seq ..
  ',"epoch":"' .. epoch .. '","ts":' .. ARGV[4] .. ',' .. ARGV[5]
redis.call('RPUSH', KEYS[2], frame)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[6]), -1)
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[8])
if ARGV[9] == 'sharded' then
  redis.call('SPUBLISH', ARGV[1], frame)
else
  redis.call('PUBLISH', ARGV[1], frame)
end
return {seq, epoch}
"#;

const HISTORY: &str = r#"
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local since = tonumber(ARGV[2])
local frames = {}
if since >= 0 and since < seq then
  frames = redis.call('LRANGE', KEYS[2], -(seq - since), -1)
end
return {seq, epoch, frames}
"#;

pub struct RedisBroker {
    conn: Conn,
    limits: HistoryLimits,
    publish: Script,
    history: Script,
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisBroker {
    /// Connects to one Redis (`redis://…`).
    pub async fn single(
        url: &str,
        limits: HistoryLimits,
        events: UnboundedSender<BrokerEvent>,
    ) -> Result<Self, BrokerError> {
        // Subscriptions arrive as RESP3 pushes, whatever the URL says.
        let info = url.into_connection_info().map_err(unavailable)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_push_sender(push_handler(events))
            .set_automatic_resubscription()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_max_delay(Duration::from_secs(2));
        let manager = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        Ok(Self::with(Conn::Single(manager), limits))
    }

    /// Connects to a Redis Cluster through any of its nodes (`host:port`).
    pub async fn cluster(
        nodes: &[String],
        limits: HistoryLimits,
        events: UnboundedSender<BrokerEvent>,
    ) -> Result<Self, BrokerError> {
        let urls: Vec<String> = nodes
            .iter()
            .map(|n| {
                if n.contains("://") {
                    n.clone()
                } else {
                    format!("redis://{n}")
                }
            })
            .collect();
        let client = ClusterClient::builder(urls)
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(push_handler(events))
            .connection_timeout(RESPONSE_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .build()
            .map_err(unavailable)?;
        let conn = client.get_async_connection().await.map_err(unavailable)?;
        Ok(Self::with(Conn::Cluster(conn), limits))
    }

    fn with(conn: Conn, limits: HistoryLimits) -> Self {
        Self {
            conn,
            limits,
            publish: Script::new(PUBLISH),
            history: Script::new(HISTORY),
        }
    }
}

/// Turns RESP3 pushes into broker events, in the connection's own task.
fn push_handler(
    events: UnboundedSender<BrokerEvent>,
) -> impl Fn(PushInfo) -> Result<(), redis::aio::SendError> + Send + Sync + 'static {
    move |push: PushInfo| {
        let event = match push.kind {
            PushKind::Message | PushKind::SMessage => {
                let Some(Value::BulkString(payload)) = push.data.get(1) else {
                    return Ok(());
                };
                match String::from_utf8(payload.clone())
                    .map_err(|e| e.to_string())
                    .and_then(|text| Frame::parse(text).map_err(|e| e.to_string()))
                {
                    Ok(frame) => BrokerEvent::Frame(Arc::new(frame)),
                    Err(error) => {
                        tracing::warn!(%error, "unreadable event from Redis");
                        return Ok(());
                    }
                }
            }
            PushKind::Disconnection => BrokerEvent::Disconnected,
            _ => return Ok(()),
        };
        events.send(event).map_err(|_| redis::aio::SendError)
    }
}

fn unavailable(e: redis::RedisError) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}

/// The counter hash and the history list of a channel.
fn keys(channel: &Channel) -> (String, String, String) {
    let name = channel.redis_name();
    (format!("{name}:meta"), format!("{name}:history"), name)
}

impl Broker for RedisBroker {
    fn publish<'a>(
        &'a self,
        channel: &'a Channel,
        tail: &'a str,
    ) -> BoxFuture<'a, Result<Position, BrokerError>> {
        Box::pin(async move {
            let (meta, history, pubsub) = keys(channel);
            let mut invocation = self.publish.prepare_invoke();
            invocation
                .key(meta)
                .key(history)
                .arg(pubsub)
                .arg(channel.to_string())
                .arg(new_epoch())
                .arg(now_us())
                .arg(tail)
                .arg(self.limits.size.max(1))
                .arg(self.limits.ttl.as_secs().max(1))
                .arg(STREAM_TTL.as_secs())
                .arg(match self.conn {
                    Conn::Single(_) => "plain",
                    Conn::Cluster(_) => "sharded",
                });
            let (seq, epoch): (u64, String) = match self.conn.clone() {
                Conn::Single(mut c) => invocation.invoke_async(&mut c).await,
                Conn::Cluster(mut c) => invocation.invoke_async(&mut c).await,
            }
            .map_err(unavailable)?;
            Ok(Position {
                seq,
                epoch: Arc::from(epoch),
            })
        })
    }

    fn subscribe<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            let name = channel.redis_name();
            match self.conn.clone() {
                Conn::Single(mut c) => c.subscribe(name).await,
                Conn::Cluster(mut c) => c.ssubscribe(name).await,
            }
            .map_err(unavailable)
        })
    }

    fn unsubscribe<'a>(&'a self, channel: &'a Channel) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            let name = channel.redis_name();
            match self.conn.clone() {
                Conn::Single(mut c) => c.unsubscribe(name).await,
                Conn::Cluster(mut c) => c.sunsubscribe(name).await,
            }
            .map_err(unavailable)
        })
    }

    fn history<'a>(
        &'a self,
        channel: &'a Channel,
        since: Option<u64>,
    ) -> BoxFuture<'a, Result<History, BrokerError>> {
        Box::pin(async move {
            let (meta, history, _) = keys(channel);
            let mut invocation = self.history.prepare_invoke();
            invocation
                .key(meta)
                .key(history)
                .arg(new_epoch())
                .arg(since.map_or(-1, |s| s as i64))
                .arg(STREAM_TTL.as_secs());
            let (seq, epoch, texts): (u64, String, Vec<String>) = match self.conn.clone() {
                Conn::Single(mut c) => invocation.invoke_async(&mut c).await,
                Conn::Cluster(mut c) => invocation.invoke_async(&mut c).await,
            }
            .map_err(unavailable)?;
            let oldest_kept = now_us() - self.limits.ttl.as_micros() as i64;
            let frames = texts
                .into_iter()
                .filter_map(|t| Frame::parse(t).ok())
                .filter(|f| f.ts_us >= oldest_kept)
                .map(Arc::new)
                .collect();
            Ok(History {
                position: Position {
                    seq,
                    epoch: Arc::from(epoch),
                },
                frames,
            })
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), BrokerError>> {
        Box::pin(async move {
            let ping = redis::cmd("PING");
            match self.conn.clone() {
                Conn::Single(mut c) => ping.query_async::<String>(&mut c).await,
                Conn::Cluster(mut c) => ping.query_async::<String>(&mut c).await,
            }
            .map(|_| ())
            .map_err(unavailable)
        })
    }

    fn name(&self) -> &'static str {
        match self.conn {
            Conn::Single(_) => "redis",
            Conn::Cluster(_) => "redis-cluster",
        }
    }
}
