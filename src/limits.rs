//! Rate limits on check-ins, per phone and per network address, so one
//! script cannot fill the write path or bury a person under fake check-ins.
//! Generous per address: a shelter's Wi-Fi puts hundreds behind one.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

#[derive(Clone)]
pub struct CheckinLimits {
    per_phone: Arc<DefaultKeyedRateLimiter<String>>,
    per_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"))
}

/// How long until `key` may go again, if it may not now.
fn wait<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Option<Duration> {
    limiter
        .check_key(key)
        .err()
        .map(|until| until.wait_time_from(DefaultClock::default().now()))
}

impl CheckinLimits {
    /// At most `per_phone` check-ins a minute under one phone number and
    /// `per_address` from one address (each allowing a burst of that many).
    pub fn new(per_phone: u32, per_address: u32) -> Self {
        let limits = CheckinLimits {
            per_phone: Arc::new(DefaultKeyedRateLimiter::keyed(per_minute(per_phone))),
            per_address: Arc::new(DefaultKeyedRateLimiter::keyed(per_minute(per_address))),
        };
        // Forget keys that are back to a full allowance, so memory follows
        // the current load, not everyone ever seen.
        let weak = (
            Arc::downgrade(&limits.per_phone),
            Arc::downgrade(&limits.per_address),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                match (weak.0.upgrade(), weak.1.upgrade()) {
                    (Some(phone), Some(address)) => {
                        phone.retain_recent();
                        address.retain_recent();
                    }
                    _ => return,
                }
            }
        });
        limits
    }

    /// `Some(wait)` when this address has sent too many.
    pub fn address(&self, address: IpAddr) -> Option<Duration> {
        wait(&self.per_address, &address)
    }

    /// `Some(wait)` when this phone (its keyed hash) has checked in too often.
    pub fn phone(&self, phone_hash: &str) -> Option<Duration> {
        wait(&self.per_phone, &phone_hash.to_owned())
    }
}
