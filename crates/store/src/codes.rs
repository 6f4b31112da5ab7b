//! Small-integer codes for the enums stored in the results tables and the system log.
//!
//! Results are the bulk of the database, so a result type or classification costs one
//! small integer per row instead of a string. The codes are part of the on-disk format:
//! never renumber them, only add. Classification codes grow with severity so `MAX()` in SQL
//! and `max()` in Rust both mean "worst".

use prophasis_model::{Classification, Health, LogCategory, Resolution, ResultType};

use crate::error::StoreError;

pub fn classification_code(c: Classification) -> i16 {
    match c {
        Classification::Ok => 1,
        Classification::Unknown => 2,
        Classification::Minor => 3,
        Classification::Major => 4,
        Classification::Critical => 5,
    }
}

pub fn classification_from(code: i16) -> Result<Classification, StoreError> {
    Ok(match code {
        1 => Classification::Ok,
        2 => Classification::Unknown,
        3 => Classification::Minor,
        4 => Classification::Major,
        5 => Classification::Critical,
        other => return Err(StoreError::Corrupt(format!("classification code {other}"))),
    })
}

pub fn result_type_code(t: ResultType) -> i16 {
    match t {
        ResultType::Plugin => 0,
        ResultType::ConnectionError => 1,
        ResultType::ConnectionTimeout => 2,
        ResultType::AuthenticationError => 3,
        ResultType::RequestError => 4,
        ResultType::CommandUnsuccessful => 5,
    }
}

pub fn result_type_from(code: i16) -> Result<ResultType, StoreError> {
    Ok(match code {
        0 => ResultType::Plugin,
        1 => ResultType::ConnectionError,
        2 => ResultType::ConnectionTimeout,
        3 => ResultType::AuthenticationError,
        4 => ResultType::RequestError,
        5 => ResultType::CommandUnsuccessful,
        other => return Err(StoreError::Corrupt(format!("result type code {other}"))),
    })
}

pub fn resolution_code(r: Resolution) -> i16 {
    match r {
        Resolution::FiveMinutes => 1,
        Resolution::OneHour => 2,
    }
}

pub fn log_category_code(c: LogCategory) -> i16 {
    match c {
        LogCategory::Dispatch => 1,
        LogCategory::Distribution => 2,
        LogCategory::Classification => 3,
        LogCategory::Storage => 4,
        LogCategory::Alerting => 5,
        LogCategory::Scheduler => 6,
        LogCategory::System => 7,
    }
}

pub fn log_category_from(code: i16) -> Result<LogCategory, StoreError> {
    LogCategory::ALL
        .into_iter()
        .find(|c| log_category_code(*c) == code)
        .ok_or_else(|| StoreError::Corrupt(format!("log category code {code}")))
}

/// Alert states are few per alert and read rarely, so they are stored as readable names.
pub fn health_list(states: &[Health]) -> String {
    states
        .iter()
        .map(|h| h.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn health_list_from(s: &str) -> Result<Vec<Health>, StoreError> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .map_err(|_| StoreError::Corrupt(format!("health {p:?}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_order_by_severity() {
        for c in Classification::ALL {
            assert_eq!(classification_from(classification_code(c)).unwrap(), c);
        }
        for w in Classification::ALL.windows(2) {
            assert!(classification_code(w[0]) < classification_code(w[1]));
        }
        for t in ResultType::ALL {
            assert_eq!(result_type_from(result_type_code(t)).unwrap(), t);
        }
        for c in LogCategory::ALL {
            assert_eq!(log_category_from(log_category_code(c)).unwrap(), c);
        }
        assert!(classification_from(9).is_err());
        let hs = vec![Health::Ok, Health::Critical];
        assert_eq!(health_list_from(&health_list(&hs)).unwrap(), hs);
        assert_eq!(health_list_from("").unwrap(), vec![]);
    }
}
