//! Noise control: what keeps a real problem from drowning in notifications.
//!
//! - [`AlertSettings`]: per alert, re-notification while an entity stays in a to-state,
//!   flap detection and dependency hold-back. Stored beside the alert as JSON.
//! - [`MaintenanceWindow`]: while one is active for an entity, notifications about it are
//!   not sent (monitoring goes on; health is still recorded). One-off or weekly, in UTC.
//! - [`FlapTracker`]: counts an entity's transitions in a sliding window.

use std::collections::{HashMap, VecDeque};

use prophasis_model::rules::Topology;
use prophasis_model::transition::Entity;
use prophasis_model::{HostGroupId, HostId, Millis, ServiceId};
use serde::{Deserialize, Serialize};

use crate::modules::FieldError;
use crate::time::{day_start, weekday, DAY_MS};

/// Alerting settings of one alert beyond its module's options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertSettings {
    /// Notify again every this many seconds while the entity stays in a to-state (not
    /// acknowledged, not in maintenance). 0: never.
    pub renotify_every_seconds: u64,
    /// More than this many transitions of one entity within `flap_window_seconds` marks
    /// it flapping: one flapping notification is sent instead of many. 0: off.
    pub flap_threshold: u32,
    pub flap_window_seconds: u64,
    /// Hold back problem notifications about a host while a service it belongs to is
    /// already down (recoveries are always sent).
    pub hold_when_dependency_down: bool,
}

impl AlertSettings {
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.flap_threshold > 0 && self.flap_window_seconds == 0 {
            return Err(FieldError::new(
                "settings.flap_window_seconds",
                "must be at least 1 when flap_threshold is set",
            ));
        }
        if self.renotify_every_seconds > 0 && self.renotify_every_seconds < 60 {
            return Err(FieldError::new(
                "settings.renotify_every_seconds",
                "must be 0 (off) or at least 60",
            ));
        }
        Ok(())
    }
}

/// What a maintenance window silences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceTarget {
    Host(HostId),
    /// Every host of the group, through nested groups.
    HostGroup(HostGroupId),
    Service(ServiceId),
}

/// When a maintenance window is active (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum WindowSchedule {
    /// From `start` (inclusive) to `end` (exclusive), milliseconds since the epoch.
    Once { start: Millis, end: Millis },
    /// On the given weekdays (0 = Monday … 6 = Sunday), from `start_minute` after UTC
    /// midnight for `duration_minutes` (it may run past midnight).
    Weekly {
        days: Vec<u8>,
        start_minute: u32,
        duration_minutes: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    #[serde(default)]
    pub id: i64,
    pub target: MaintenanceTarget,
    pub schedule: WindowSchedule,
    #[serde(default)]
    pub comment: String,
}

impl MaintenanceWindow {
    pub fn validate(&self) -> Result<(), FieldError> {
        match &self.schedule {
            WindowSchedule::Once { start, end } => {
                if end <= start {
                    return Err(FieldError::new("schedule.end", "must be after start"));
                }
            }
            WindowSchedule::Weekly {
                days,
                start_minute,
                duration_minutes,
            } => {
                if days.is_empty() || days.iter().any(|d| *d > 6) {
                    return Err(FieldError::new(
                        "schedule.days",
                        "must list weekdays 0 (Monday) to 6 (Sunday)",
                    ));
                }
                if *start_minute >= 24 * 60 {
                    return Err(FieldError::new(
                        "schedule.start_minute",
                        "must be below 1440",
                    ));
                }
                if *duration_minutes == 0 || *duration_minutes > 7 * 24 * 60 {
                    return Err(FieldError::new(
                        "schedule.duration_minutes",
                        "must be between 1 and 10080 (a week)",
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn is_active(&self, now: Millis) -> bool {
        match &self.schedule {
            WindowSchedule::Once { start, end } => *start <= now && now < *end,
            WindowSchedule::Weekly {
                days,
                start_minute,
                duration_minutes,
            } => {
                // An occurrence that started up to a week ago may still be running.
                (0..=7).any(|back| {
                    let day = day_start(now) - back * DAY_MS;
                    let begin = day + i64::from(*start_minute) * 60_000;
                    let end = begin + i64::from(*duration_minutes) * 60_000;
                    days.contains(&weekday(day)) && begin <= now && now < end
                })
            }
        }
    }

    pub fn covers(&self, entity: Entity, topology: &Topology) -> bool {
        match (self.target, entity) {
            (MaintenanceTarget::Host(h), Entity::Host(e)) => h == e,
            (MaintenanceTarget::HostGroup(g), Entity::Host(e)) => {
                topology.group_hosts(g).any(|h| h == e)
            }
            (MaintenanceTarget::Service(s), Entity::Service(e)) => s == e,
            _ => false,
        }
    }
}

/// Whether any active window covers the entity.
pub fn in_maintenance(
    windows: &[MaintenanceWindow],
    entity: Entity,
    topology: &Topology,
    now: Millis,
) -> bool {
    windows
        .iter()
        .any(|w| w.is_active(now) && w.covers(entity, topology))
}

/// Recent transition times per entity.
#[derive(Debug, Default)]
pub struct FlapTracker {
    seen: HashMap<Entity, VecDeque<Millis>>,
}

/// Longest window remembered, so the memory per entity stays bounded.
const MAX_WINDOW_MS: Millis = 24 * 3_600_000;

impl FlapTracker {
    pub fn record(&mut self, entity: Entity, at: Millis) {
        let q = self.seen.entry(entity).or_default();
        q.push_back(at);
        while q.front().is_some_and(|t| *t < at - MAX_WINDOW_MS) || q.len() > 1000 {
            q.pop_front();
        }
    }

    /// Transitions of the entity within `window_ms` up to `now`.
    pub fn count(&self, entity: Entity, now: Millis, window_ms: Millis) -> usize {
        self.seen.get(&entity).map_or(0, |q| {
            q.iter()
                .filter(|t| **t > now - window_ms && **t <= now)
                .count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekly_windows_follow_the_calendar() {
        // 2024-02-29 is a Thursday (3); 22:00 for 4 hours runs into Friday.
        let thu_midnight = 1_709_164_800_000;
        let w = MaintenanceWindow {
            id: 0,
            target: MaintenanceTarget::Host(1),
            schedule: WindowSchedule::Weekly {
                days: vec![3],
                start_minute: 22 * 60,
                duration_minutes: 240,
            },
            comment: String::new(),
        };
        let h = 3_600_000;
        let cases = [
            (thu_midnight + 21 * h, false),
            (thu_midnight + 22 * h, true),
            (thu_midnight + 25 * h, true),
            (thu_midnight + 26 * h, false),
            (thu_midnight + 7 * 24 * h + 23 * h, true),
            (thu_midnight + 24 * 24 * h + 23 * h, false),
        ];
        for (at, want) in cases {
            assert_eq!(w.is_active(at), want, "{}", crate::time::rfc3339(at));
        }
        let once = MaintenanceWindow {
            schedule: WindowSchedule::Once { start: 10, end: 20 },
            ..w
        };
        assert!(!once.is_active(9) && once.is_active(10) && !once.is_active(20));
    }

    #[test]
    fn flaps_are_counted_in_the_window() {
        let mut f = FlapTracker::default();
        for t in [0, 10, 20, 30] {
            f.record(Entity::Host(1), t);
        }
        assert_eq!(f.count(Entity::Host(1), 30, 100), 4);
        assert_eq!(f.count(Entity::Host(1), 30, 15), 2);
        assert_eq!(f.count(Entity::Host(2), 30, 100), 0);
    }
}
