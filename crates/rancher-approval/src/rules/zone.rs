//! The time zone a rule set's clock facts (`time.hour`, `time.minute`, `time.weekday`) are seen in: UTC, a fixed
//! offset (`+01:00`), or an IANA name (`Europe/Berlin`) with its daylight-saving rules.
//!
//! IANA names are looked up in the time zone database compiled into the program (jiff's bundled copy), never in
//! the host's files, so a rule set decides the same on every machine and a recorded decision replays anywhere.

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};

/// A loaded time zone.
#[derive(Debug, Clone)]
pub(crate) enum Zone {
    /// UTC or a fixed offset.
    Fixed(FixedOffset),
    /// An IANA zone, daylight saving included.
    Named(jiff::tz::TimeZone),
}

/// The local clock at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Clock {
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 (Monday) to 6 (Sunday).
    pub weekday: usize,
}

fn database() -> &'static jiff::tz::TimeZoneDatabase {
    static DB: OnceLock<jiff::tz::TimeZoneDatabase> = OnceLock::new();
    DB.get_or_init(jiff::tz::TimeZoneDatabase::bundled)
}

impl Zone {
    /// UTC.
    pub(crate) fn utc() -> Self {
        Self::Fixed(FixedOffset::east_opt(0).expect("zero is a valid offset"))
    }

    /// Reads `UTC`, `Z`, `+hh:mm`, `-hh:mm` or an IANA name; the error says what to write instead.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if let Some(fixed) = fixed(text) {
            return Ok(Self::Fixed(fixed));
        }
        let name = text.trim();
        let named = (!name.is_empty() && name.len() <= 64)
            .then(|| database().get(name).ok())
            .flatten();
        named.map(Self::Named).ok_or_else(|| {
            format!(
                "{text:?} is not a time zone; write an IANA name such as Europe/Berlin or America/New_York, UTC, \
                 or an offset such as +01:00 or -05:00"
            )
        })
    }

    /// The local clock at `now`.
    pub(crate) fn clock(&self, now: DateTime<Utc>) -> Clock {
        match self {
            Self::Fixed(offset) => {
                let local = now.with_timezone(offset);
                Clock {
                    hour: local.hour(),
                    minute: local.minute(),
                    weekday: local.weekday().num_days_from_monday() as usize,
                }
            }
            Self::Named(tz) => {
                // Seconds since the epoch always fit jiff's range for the instants chrono can hold in practice; a
                // time outside it is seen in UTC rather than failing.
                let local = jiff::Timestamp::from_second(now.timestamp())
                    .ok()
                    .map(|ts| tz.to_datetime(ts));
                match local {
                    Some(dt) => Clock {
                        hour: u32::try_from(dt.hour()).unwrap_or(0),
                        minute: u32::try_from(dt.minute()).unwrap_or(0),
                        weekday: usize::try_from(dt.weekday().to_monday_zero_offset()).unwrap_or(0),
                    },
                    None => Self::utc().clock(now),
                }
            }
        }
    }
}

fn fixed(text: &str) -> Option<FixedOffset> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    if h > 14 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn berlin_follows_daylight_saving_time() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // Winter: UTC+1. 2026-12-07 is a Monday.
        assert_eq!(
            berlin.clock(at(2026, 12, 7, 8, 30)),
            Clock {
                hour: 9,
                minute: 30,
                weekday: 0
            }
        );
        // Summer: UTC+2.
        assert_eq!(berlin.clock(at(2026, 7, 6, 8, 30)).hour, 10);
        // The switch on 2026-03-29 at 01:00 UTC: a minute before is 01:59 local, a minute after 03:01.
        assert_eq!(berlin.clock(at(2026, 3, 29, 0, 59)).hour, 1);
        assert_eq!(
            berlin.clock(at(2026, 3, 29, 1, 1)),
            Clock {
                hour: 3,
                minute: 1,
                weekday: 6
            }
        );
        // And back on 2026-10-25 at 01:00 UTC.
        assert_eq!(berlin.clock(at(2026, 10, 25, 0, 59)).hour, 2);
        assert_eq!(berlin.clock(at(2026, 10, 25, 1, 1)).hour, 2);
        assert_eq!(berlin.clock(at(2026, 10, 25, 2, 1)).hour, 3);
    }

    #[test]
    fn the_weekday_is_the_local_one() {
        let ny = Zone::parse("America/New_York").unwrap();
        // Monday 02:00 UTC is still Sunday evening in New York.
        assert_eq!(
            ny.clock(at(2026, 12, 7, 2, 0)),
            Clock {
                hour: 21,
                minute: 0,
                weekday: 6
            }
        );
    }

    #[test]
    fn fixed_offsets_and_utc_still_work() {
        assert_eq!(Zone::parse("+01:00").unwrap().clock(at(2026, 7, 6, 8, 30)).hour, 9);
        assert_eq!(
            Zone::parse("-05:30").unwrap().clock(at(2026, 7, 6, 8, 30)),
            Clock {
                hour: 3,
                minute: 0,
                weekday: 0
            }
        );
        assert_eq!(Zone::parse("UTC").unwrap().clock(at(2026, 7, 6, 8, 30)).hour, 8);
        assert_eq!(Zone::parse("Z").unwrap().clock(at(2026, 7, 6, 8, 30)).hour, 8);
    }

    #[test]
    fn an_unknown_zone_is_refused_by_name() {
        for bad in [
            "Europe/Berln",
            "Mars/Olympus",
            "",
            "+25:00",
            "01:00",
            "../../etc/passwd",
        ] {
            let err = Zone::parse(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?} is not a time zone")), "{err}");
            assert!(err.contains("Europe/Berlin"), "{err}");
        }
    }
}
