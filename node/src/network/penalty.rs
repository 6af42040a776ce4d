//! Misbehaviour scores and the ban list: plain data with the clock passed in,
//! so every rule here is unit-tested without sockets. The network task owns
//! one [`Penalties`] and applies its decisions (disconnect, block, unblock).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::limits::{
    BAN_LIST_MAX, BAN_THRESHOLD_POINTS, MISBEHAVIOUR_DECAY_POINTS_PER_MINUTE, SCORED_PEERS_MAX,
};

/// What a peer did wrong, as judged by the node (sync) or by the network
/// layer itself (gossip score). Each kind carries a number of points; at
/// [`BAN_THRESHOLD_POINTS`] the peer is disconnected and banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A sync response held a block that does not decode or does not verify
    /// (bad certificate, wrong hash chain). Provable: 50 points, two strikes.
    InvalidBlock,
    /// A sync response did not match the request (wrong heights, a status
    /// the peer then cannot serve). 25 points.
    WrongResponse,
    /// A request timed out or failed at the transport. Honest peers on bad
    /// links do this too: 5 points, forgiven in half a minute.
    Unresponsive,
    /// Set by the network: the peer's gossipsub score fell under the
    /// graylist threshold (repeated rejected gossip). Immediate ban.
    GossipGraylisted,
}

impl Misbehaviour {
    /// Points added to the peer's score.
    pub fn points(self) -> u32 {
        match self {
            Misbehaviour::InvalidBlock => 50,
            Misbehaviour::WrongResponse => 25,
            Misbehaviour::Unresponsive => 5,
            Misbehaviour::GossipGraylisted => BAN_THRESHOLD_POINTS,
        }
    }
}

/// What the caller must do after a penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PenaltyOutcome {
    /// Keep the peer; its score is now this.
    Scored(u32),
    /// Disconnect and block the peer until the given instant.
    Ban {
        /// When the ban ends.
        until: Instant,
        /// A ban evicted to make room, to be unblocked now.
        evicted: Option<PeerId>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Score {
    points: u32,
    updated: Instant,
}

impl Score {
    /// The score after decay at `now` (whole points only).
    fn at(self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.updated);
        let forgiven = elapsed.as_secs() * MISBEHAVIOUR_DECAY_POINTS_PER_MINUTE as u64 / 60;
        self.points
            .saturating_sub(u32::try_from(forgiven).unwrap_or(u32::MAX))
    }
}

/// Per-peer misbehaviour scores and the timed, bounded ban list.
#[derive(Debug)]
pub struct Penalties {
    scores: HashMap<PeerId, Score>,
    bans: HashMap<PeerId, Instant>,
    ban_duration: Duration,
}

impl Penalties {
    /// Empty, banning for `ban_duration`.
    pub fn new(ban_duration: Duration) -> Self {
        Penalties {
            scores: HashMap::new(),
            bans: HashMap::new(),
            ban_duration,
        }
    }

    /// Current (decayed) score of a peer.
    pub fn score(&self, peer: &PeerId, now: Instant) -> u32 {
        self.scores.get(peer).map_or(0, |s| s.at(now))
    }

    /// Whether the peer is banned at `now`.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.bans.get(peer).is_some_and(|until| *until > now)
    }

    /// Number of peers on the ban list.
    pub fn banned_count(&self) -> usize {
        self.bans.len()
    }

    /// Adds `what`'s points to the peer's score; bans at the threshold.
    pub fn penalise(&mut self, peer: PeerId, what: Misbehaviour, now: Instant) -> PenaltyOutcome {
        let points = self.score(&peer, now).saturating_add(what.points());
        if points < BAN_THRESHOLD_POINTS {
            self.make_room_for_score(&peer, now);
            self.scores.insert(
                peer,
                Score {
                    points,
                    updated: now,
                },
            );
            return PenaltyOutcome::Scored(points);
        }
        // A banned peer starts from zero when the ban ends: the ban was the
        // punishment, and gossipsub remembers its gossip score anyway.
        self.scores.remove(&peer);
        let until = now + self.ban_duration;
        let evicted = if self.bans.len() >= BAN_LIST_MAX && !self.bans.contains_key(&peer) {
            // Lift the ban closest to its end: the least punishment lost.
            let soonest = self
                .bans
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(p, _)| *p);
            if let Some(p) = soonest {
                self.bans.remove(&p);
            }
            soonest
        } else {
            None
        };
        self.bans.insert(peer, until);
        PenaltyOutcome::Ban { until, evicted }
    }

    /// Removes and returns the bans that have ended at `now`.
    pub fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let ended: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in &ended {
            self.bans.remove(peer);
        }
        ended
    }

    fn make_room_for_score(&mut self, peer: &PeerId, now: Instant) {
        if self.scores.len() < SCORED_PEERS_MAX || self.scores.contains_key(peer) {
            return;
        }
        // Forget fully decayed scores first, then the lowest one.
        self.scores.retain(|_, s| s.at(now) > 0);
        if self.scores.len() >= SCORED_PEERS_MAX {
            if let Some(lowest) = self
                .scores
                .iter()
                .min_by_key(|(_, s)| s.at(now))
                .map(|(p, _)| *p)
            {
                self.scores.remove(&lowest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_add_up_to_a_ban() {
        let mut p = Penalties::new(Duration::from_secs(60));
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert_eq!(
            p.penalise(peer, Misbehaviour::InvalidBlock, t0),
            PenaltyOutcome::Scored(50)
        );
        assert!(!p.is_banned(&peer, t0));
        let outcome = p.penalise(peer, Misbehaviour::InvalidBlock, t0);
        assert_eq!(
            outcome,
            PenaltyOutcome::Ban {
                until: t0 + Duration::from_secs(60),
                evicted: None
            }
        );
        assert!(p.is_banned(&peer, t0));
        assert_eq!(p.score(&peer, t0), 0);
    }

    #[test]
    fn scores_decay_over_time() {
        let mut p = Penalties::new(Duration::from_secs(60));
        let peer = PeerId::random();
        let t0 = Instant::now();
        p.penalise(peer, Misbehaviour::InvalidBlock, t0);
        // 10 points per minute: 50 points are gone after five minutes.
        assert_eq!(p.score(&peer, t0 + Duration::from_secs(60)), 40);
        assert_eq!(p.score(&peer, t0 + Duration::from_secs(300)), 0);
        // So an unreliable but honest peer is never banned.
        let mut t = t0;
        for _ in 0..100 {
            t += Duration::from_secs(30);
            assert!(matches!(
                p.penalise(peer, Misbehaviour::Unresponsive, t),
                PenaltyOutcome::Scored(_)
            ));
        }
    }

    #[test]
    fn graylisting_bans_at_once_and_bans_expire() {
        let mut p = Penalties::new(Duration::from_secs(60));
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert!(matches!(
            p.penalise(peer, Misbehaviour::GossipGraylisted, t0),
            PenaltyOutcome::Ban { .. }
        ));
        assert!(p.expire_bans(t0 + Duration::from_secs(59)).is_empty());
        assert_eq!(p.expire_bans(t0 + Duration::from_secs(60)), vec![peer]);
        assert!(!p.is_banned(&peer, t0 + Duration::from_secs(60)));
        assert_eq!(p.banned_count(), 0);
    }

    #[test]
    fn ban_list_is_bounded() {
        let mut p = Penalties::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let first = PeerId::random();
        p.penalise(first, Misbehaviour::GossipGraylisted, t0);
        for i in 1..BAN_LIST_MAX {
            p.penalise(
                PeerId::random(),
                Misbehaviour::GossipGraylisted,
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(p.banned_count(), BAN_LIST_MAX);
        let late = t0 + Duration::from_secs(1);
        let outcome = p.penalise(PeerId::random(), Misbehaviour::GossipGraylisted, late);
        assert_eq!(
            outcome,
            PenaltyOutcome::Ban {
                until: late + Duration::from_secs(60),
                evicted: Some(first)
            }
        );
        assert_eq!(p.banned_count(), BAN_LIST_MAX);
    }

    #[test]
    fn score_table_is_bounded() {
        let mut p = Penalties::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..SCORED_PEERS_MAX + 10 {
            p.penalise(PeerId::random(), Misbehaviour::Unresponsive, t0);
        }
        assert!(p.scores.len() <= SCORED_PEERS_MAX);
    }
}
