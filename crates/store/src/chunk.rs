//! The older results tier of both backends stores one row per series and hour, its
//! results in time order in one byte string (a "chunk"): a 30-day read of a series is
//! ~720 rows instead of 43,200, and the hourly compaction writes one row per series
//! instead of sixty. This module is the chunk encoding, shared by `pg_tiers.rs` and
//! `sqlite/chunks.rs`; it does no I/O.
//!
//! A chunk's results, in time order, each one
//! `ts i64 | flags u8 (1: check_id follows, 2: value follows) | check_id i64 | value f64 |
//! result_type i16 | classification i16 | message length i32 | message (UTF-8)`,
//! big-endian like PostgreSQL's binary send functions, so SQL on PostgreSQL can build the
//! same bytes (`pg_tiers::ELEMENT_SQL`: its migration 0007 and the recent rows of a read).
//! One byte string rather than arrays per column: PostgreSQL called a send function per
//! array element on every read (26 ms of server CPU for 30 days of one series), and copies
//! bytes; SQLite would spread arrays over several columns for nothing.

use std::ops::Range;

use prophasis_model::{CheckResult, HostId};

use crate::codes::{classification_from, result_type_from};
use crate::error::{Result, StoreError};
use crate::ingest::Row;

/// Milliseconds per chunk.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The chunk (hour number) a result belongs to, rounded down also before 1970.
pub(crate) fn hour_of(ts: i64) -> i64 {
    ts.div_euclid(HOUR_MS)
}

/// One result of a chunk, its message a range of the chunk's bytes.
pub(crate) struct Elem {
    pub ts: i64,
    pub check_id: Option<i64>,
    pub value: Option<f64>,
    pub result_type: i16,
    pub classification: i16,
    pub message: Range<usize>,
}

/// Appends one result in the chunk encoding.
pub(crate) fn put_element(b: &mut Vec<u8>, r: &Row<'_>) {
    b.extend_from_slice(&r.ts.to_be_bytes());
    b.push(r.check_id.is_some() as u8 | (r.value.is_some() as u8) << 1);
    if let Some(c) = r.check_id {
        b.extend_from_slice(&c.to_be_bytes());
    }
    if let Some(v) = r.value {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&r.result_type.to_be_bytes());
    b.extend_from_slice(&r.classification.to_be_bytes());
    b.extend_from_slice(&(r.message.len() as i32).to_be_bytes());
    b.extend_from_slice(r.message.as_bytes());
}

/// The encoded results of `rows` (one series, sorted by time).
pub(crate) fn encode(rows: &[Row<'_>]) -> Vec<u8> {
    let mut b = Vec::with_capacity(rows.iter().map(|r| 33 + r.message.len()).sum());
    for r in rows {
        put_element(&mut b, r);
    }
    b
}

/// The distinct checks named by `rows`, ascending (PostgreSQL keeps them beside a chunk).
pub(crate) fn checks_of(rows: &[Row<'_>]) -> Vec<i64> {
    let mut checks: Vec<i64> = rows.iter().filter_map(|r| r.check_id).collect();
    checks.sort_unstable();
    checks.dedup();
    checks
}

fn corrupt() -> StoreError {
    StoreError::Corrupt("a result chunk ends early".into())
}

/// Calls `f` with each result of `data` in order; messages are checked to be UTF-8, so
/// [`message`] of an element given to `f` never fails.
pub(crate) fn for_each(data: &[u8], mut f: impl FnMut(Elem) -> Result<()>) -> Result<()> {
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
        let end = at.checked_add(n).ok_or_else(corrupt)?;
        let b = data.get(*at..end).ok_or_else(corrupt)?;
        *at = end;
        Ok(b)
    };
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        let mut a = [0; N];
        a.copy_from_slice(b);
        a
    }
    while at < data.len() {
        let ts = i64::from_be_bytes(arr(take(&mut at, 8)?));
        let flags = take(&mut at, 1)?[0];
        let check_id = if flags & 1 != 0 {
            Some(i64::from_be_bytes(arr(take(&mut at, 8)?)))
        } else {
            None
        };
        let value = if flags & 2 != 0 {
            Some(f64::from_be_bytes(arr(take(&mut at, 8)?)))
        } else {
            None
        };
        let result_type = i16::from_be_bytes(arr(take(&mut at, 2)?));
        let classification = i16::from_be_bytes(arr(take(&mut at, 2)?));
        let len = i32::from_be_bytes(arr(take(&mut at, 4)?));
        let len = usize::try_from(len).map_err(|_| corrupt())?;
        let start = at;
        std::str::from_utf8(take(&mut at, len)?)
            .map_err(|_| StoreError::Corrupt("text not UTF-8".into()))?;
        f(Elem {
            ts,
            check_id,
            value,
            result_type,
            classification,
            message: start..at,
        })?;
    }
    Ok(())
}

/// The message of `e`, an element of `data` given by [`for_each`].
pub(crate) fn message<'a>(data: &'a [u8], e: &Elem) -> &'a str {
    std::str::from_utf8(&data[e.message.clone()]).unwrap_or_default()
}

/// The result `e` of `data` as the model has it. A chunk keeps the id of a check that has
/// since been deleted (rewriting every chunk that names it would scan them all while
/// holding the write lock); `is_check(id)` says whether the check still exists, and a
/// deleted one reads as no check, as results outlive their check. Check ids are never
/// reused, so a stored id never comes to mean another check.
pub(crate) fn to_result(
    data: &[u8],
    e: &Elem,
    host: HostId,
    plugin: &str,
    is_check: &dyn Fn(i64) -> bool,
) -> Result<CheckResult> {
    Ok(CheckResult {
        host_id: host,
        plugin_id: plugin.to_string(),
        check_id: e.check_id.filter(|c| is_check(*c)),
        timestamp: e.ts,
        value: e.value,
        message: message(data, e).to_string(),
        result_type: result_type_from(e.result_type)?,
        classification: classification_from(e.classification)?,
    })
}

/// A stored chunk, decoded, with the series it belongs to.
pub(crate) struct Chunk {
    pub host_id: i64,
    pub plugin_pk: i32,
    pub data: Vec<u8>,
    pub elems: Vec<Elem>,
}

impl Chunk {
    pub fn new(host_id: i64, plugin_pk: i32, data: Vec<u8>) -> Result<Chunk> {
        let mut elems = Vec::with_capacity(data.len() / 40);
        for_each(&data, |e| {
            elems.push(e);
            Ok(())
        })?;
        Ok(Chunk {
            host_id,
            plugin_pk,
            data,
            elems,
        })
    }

    pub fn row(&self, i: usize) -> Row<'_> {
        let e = &self.elems[i];
        Row {
            host_id: self.host_id,
            plugin_pk: self.plugin_pk,
            ts: e.ts,
            check_id: e.check_id,
            value: e.value,
            message: message(&self.data, e),
            result_type: e.result_type,
            classification: e.classification,
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        (0..self.elems.len()).map(|i| self.row(i))
    }

    /// Appends the results with `keep(ts)` to `out` (`is_check`: see [`to_result`]).
    pub fn push_results(
        &self,
        out: &mut Vec<CheckResult>,
        (host, plugin): (HostId, &str),
        keep: impl Fn(i64) -> bool,
        is_check: &dyn Fn(i64) -> bool,
    ) -> Result<()> {
        for e in self.elems.iter().filter(|e| keep(e.ts)) {
            out.push(to_result(&self.data, e, host, plugin, is_check)?);
        }
        Ok(())
    }

    /// The stored results merged with `new` (one series and hour, sorted by time, one per
    /// millisecond) into `out`, by time: a new result replaces a stored one of the same
    /// millisecond.
    pub fn merge_into<'a>(&'a self, new: &[Row<'a>], out: &mut Vec<Row<'a>>) {
        out.clear();
        let (mut i, mut j) = (0, 0);
        let olds = &self.elems;
        while i < olds.len() || j < new.len() {
            let take_new = j < new.len() && (i >= olds.len() || new[j].ts <= olds[i].ts);
            if take_new {
                if i < olds.len() && olds[i].ts == new[j].ts {
                    i += 1; // replaced
                }
                out.push(new[j]);
                j += 1;
            } else {
                out.push(self.row(i));
                i += 1;
            }
        }
    }
}

/// `rows` (sorted by host, plugin and time) split into chunks: for each
/// (host, plugin, hour), where its rows are.
pub(crate) fn groups(rows: &[Row<'_>]) -> Vec<((i64, i32, i64), Range<usize>)> {
    let mut groups: Vec<((i64, i32, i64), Range<usize>)> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let key = (r.host_id, r.plugin_pk, hour_of(r.ts));
        match groups.last_mut() {
            Some((k, range)) if *k == key => range.end = i + 1,
            _ => groups.push((key, i..i + 1)),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, value: Option<f64>, check: Option<i64>, message: &str) -> Row<'_> {
        Row {
            host_id: 7,
            plugin_pk: 3,
            ts,
            check_id: check,
            value,
            message,
            result_type: 1,
            classification: 4,
        }
    }

    #[test]
    fn a_chunk_decodes_to_the_rows_it_was_made_of() {
        let rows = [
            row(-5, None, None, ""),
            row(10, Some(-0.0), Some(i64::MAX), "é ok"),
            row(11, Some(f64::MAX), None, "x"),
        ];
        let c = Chunk::new(7, 3, encode(&rows)).unwrap();
        let back: Vec<Row<'_>> = c.rows().collect();
        assert_eq!(back.len(), 3);
        for (a, b) in rows.iter().zip(&back) {
            assert_eq!(
                (a.ts, a.check_id, a.value.map(f64::to_bits), a.message),
                (b.ts, b.check_id, b.value.map(f64::to_bits), b.message)
            );
            assert_eq!((b.result_type, b.classification), (1, 4));
        }
    }

    #[test]
    fn a_cut_or_invalid_chunk_is_refused_not_misread() {
        let data = encode(&[row(1, Some(1.0), None, "message")]);
        for end in 1..data.len() {
            assert!(
                Chunk::new(0, 0, data[..end].to_vec()).is_err(),
                "cut at {end}"
            );
        }
        let mut bad = data.clone();
        let last = bad.len() - 1;
        bad[last] = 0xff;
        assert!(Chunk::new(0, 0, bad).is_err(), "message not UTF-8");
    }

    #[test]
    fn merging_replaces_the_same_millisecond_and_keeps_time_order() {
        let old = Chunk::new(
            7,
            3,
            encode(&[row(1, None, None, "a"), row(5, None, None, "b")]),
        )
        .unwrap();
        let new = [
            row(0, None, None, "n0"),
            row(5, None, None, "n5"),
            row(9, None, None, "n9"),
        ];
        let mut out = Vec::new();
        old.merge_into(&new, &mut out);
        let got: Vec<(i64, &str)> = out.iter().map(|r| (r.ts, r.message)).collect();
        assert_eq!(got, [(0, "n0"), (1, "a"), (5, "n5"), (9, "n9")]);
    }

    #[test]
    fn rows_are_grouped_by_series_and_hour() {
        let mut rows = vec![
            row(0, None, None, ""),
            row(HOUR_MS - 1, None, None, ""),
            row(HOUR_MS, None, None, ""),
        ];
        rows.push(Row {
            plugin_pk: 4,
            ..rows[2]
        });
        let g = groups(&rows);
        assert_eq!(g, [((7, 3, 0), 0..2), ((7, 3, 1), 2..3), ((7, 4, 1), 3..4)]);
        assert_eq!(hour_of(-1), -1);
    }
}
