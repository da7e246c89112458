//! The peers benchmark's scenarios (S1–S5) and what the publisher does in
//! each of their phases.

use super::PeersArgs;

/// The scenarios of the surge benchmark (S1–S5; S6 is `surge --residents`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Scenario {
    /// S1: 19,000 idle connections per instance, held with pings.
    Hold,
    /// S2: 10,000 subscribers, steady publish rates stepped up until a peer
    /// saturates.
    Steady,
    /// S3: 1,000 subscribers, bursts of 10 messages every 10 ms.
    Burst,
    /// S4: 10,000 subscribers, one publish a second; latency to the last.
    Broadcast,
    /// S5: a steady rate, then the same with 5% of the clients not reading.
    Slow,
}

impl Scenario {
    pub(super) fn title(self) -> &'static str {
        match self {
            Scenario::Hold => "S1 hold: idle connections with pings",
            Scenario::Steady => "S2 steady fan-out, stepped rates",
            Scenario::Burst => "S3 hot burst: 10 messages every 10 ms",
            Scenario::Broadcast => "S4 big broadcast: one publish a second",
            Scenario::Slow => "S5 slow consumers: 5% stop reading",
        }
    }

    pub(super) fn default_subscribers(self) -> usize {
        match self {
            Scenario::Hold => 38_000,
            Scenario::Burst => 1_000,
            _ => 10_000,
        }
    }

    pub(super) fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// What the publisher does during one phase.
#[derive(Clone, Copy, Debug)]
pub(super) struct Step {
    /// Publishing moments per second.
    pub(super) ticks_per_second: f64,
    /// Messages published back to back at each moment.
    pub(super) per_tick: usize,
    /// Percent of the connections that stop reading before this phase.
    pub(super) stalled_percent: f64,
}

impl Step {
    pub(super) fn messages_per_second(&self) -> f64 {
        self.ticks_per_second * self.per_tick as f64
    }

    pub(super) fn label(&self) -> String {
        let mut label = if self.per_tick > 1 {
            format!(
                "{} every {:.0} ms",
                self.per_tick,
                1000.0 / self.ticks_per_second
            )
        } else {
            format!("{}/s", self.ticks_per_second)
        };
        if self.stalled_percent > 0.0 {
            label += &format!(", {}% not reading", self.stalled_percent);
        }
        label
    }
}

impl PeersArgs {
    /// The phases of one repetition, in order.
    pub(super) fn steps(&self) -> Vec<Step> {
        let steady = |rate: f64, stalled_percent: f64| Step {
            ticks_per_second: rate,
            per_tick: 1,
            stalled_percent,
        };
        let first = self.rates.first().copied().unwrap_or(10.0);
        match self.scenario {
            Scenario::Hold => Vec::new(),
            Scenario::Steady => self.rates.iter().map(|&r| steady(r, 0.0)).collect(),
            Scenario::Burst => vec![Step {
                ticks_per_second: 100.0,
                per_tick: 10,
                stalled_percent: 0.0,
            }],
            Scenario::Broadcast => vec![steady(1.0, 0.0)],
            Scenario::Slow => vec![steady(first, 0.0), steady(first, 5.0)],
        }
    }
}
