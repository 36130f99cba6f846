//! Percentiles and rates over measured durations.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn summarize(samples: &mut [Duration]) -> Summary {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(index).map(|d| d.as_secs_f64() * 1e3).unwrap_or(f64::NAN)
    };
    Summary { p50_ms: at(0.50), p99_ms: at(0.99) }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
