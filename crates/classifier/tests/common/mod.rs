//! Shared helpers for the integration tests: building inputs and running code.
#![allow(dead_code)]

use prophasis_classifier::{Engine, EngineConfig, NoHistory, Outcome, Sample};
use prophasis_model::{Classification, ResultType};

pub fn engine() -> Engine {
    Engine::new(EngineConfig::default()).expect("engine")
}

/// Samples one minute apart from values (None = missing), all of result type "plugin".
pub fn samples(values: &[Option<f64>]) -> Vec<Sample> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| Sample {
            value: *v,
            message: String::new(),
            result_type: ResultType::Plugin,
            timestamp: 1_700_000_000_000 + i as i64 * 60_000,
        })
        .collect()
}

pub fn nums(values: &[f64]) -> Vec<Sample> {
    samples(&values.iter().map(|v| Some(*v)).collect::<Vec<_>>())
}

pub fn run(engine: &mut Engine, code: &str, inputs: &[Sample]) -> Outcome {
    engine.classify(code, inputs, &NoHistory)
}

/// Asserts the run ended in `unknown` with a diagnostic whose message contains `needle`.
pub fn assert_unknown(out: &Outcome, needle: &str) {
    assert_eq!(out.classification, Classification::Unknown, "{out:?}");
    assert_eq!(out.diagnostics.len(), 1, "{out:?}");
    assert!(
        out.diagnostics[0].message.contains(needle),
        "diagnostic {:?} does not mention {needle:?}",
        out.diagnostics[0]
    );
}
