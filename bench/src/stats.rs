//! Percentiles and rates over measured durations.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn summarize(samples: &mut [Duration]) -> Summary {
    summarize_ms(&mut samples.iter().map(|sample| ms(*sample)).collect::<Vec<_>>())
}

/// Percentiles of values in milliseconds, which may be negative (differences between pairs).
pub fn summarize_ms(samples: &mut [f64]) -> Summary {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(index).copied().unwrap_or(f64::NAN)
    };
    Summary { p50_ms: at(0.50), p99_ms: at(0.99) }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
