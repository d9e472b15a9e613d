//! Criterion benches of the exact win probabilities against Monte Carlo with 100,000 draws, on
//! 10-arm posteriors shaped like docs/benchmarks.md's (LinearBandit after 10,000 rewards per
//! arm, TSPar after 100,000 trials per arm, a correlated 9-odds-ratio LogisticBandit posterior).
//! Quick run: `cargo bench -p banditkit-core --bench exact -- --quick`.
use banditkit_core::exact::{prob_best_beta, prob_best_gaussian, prob_best_mvn, MVN_TOLERANCE};
use banditkit_core::montecarlo::{win_counts_beta, win_counts_gaussian, win_counts_mvn};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

const ARMS: usize = 10;
const DRAWS: u64 = 100_000;

fn linear_posterior() -> (Vec<f64>, Vec<f64>) {
    let sd = 1.0 / 10_001f64.sqrt();
    let mu = (0..ARMS)
        .map(|i| 1.0 + 0.1 * i as f64 + 0.003 * (i as f64).sin())
        .collect();
    (mu, vec![sd; ARMS])
}

fn tspar_posterior() -> (Vec<f64>, Vec<f64>) {
    let n = 100_000.0;
    let succ: Vec<f64> = (0..ARMS)
        .map(|i| (n * (0.01 + 0.001 * i as f64)).floor())
        .collect();
    (
        succ.iter().map(|s| 1.0 + s).collect(),
        succ.iter().map(|s| 1.0 + n - s).collect(),
    )
}

/// Odds ratios with correlation through the shared reference, the reference fixed at 0.
fn logistic_posterior() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let k = ARMS;
    let mean: Vec<f64> = (0..k)
        .map(|i| {
            if i + 1 == k {
                0.0
            } else {
                0.02 * i as f64 - 0.1
            }
        })
        .collect();
    let mut cov = vec![0.0; k * k];
    for i in 0..k - 1 {
        for j in 0..k - 1 {
            cov[i * k + j] = 0.004
                + if i == j {
                    0.006 + 0.0005 * i as f64
                } else {
                    0.0
                };
        }
    }
    let mut low = vec![0.0; k * k];
    for i in 0..k - 1 {
        for j in 0..=i {
            let s: f64 = (0..j).map(|p| low[i * k + p] * low[j * k + p]).sum();
            low[i * k + j] = if i == j {
                (cov[i * k + i] - s).sqrt()
            } else {
                (cov[i * k + j] - s) / low[j * k + j]
            };
        }
    }
    (mean, cov, low)
}

fn exact_vs_mc(c: &mut Criterion) {
    let mut g = c.benchmark_group("exact 10 arms");
    let (mu, sigma) = linear_posterior();
    g.bench_function("gaussian exact", |b| {
        b.iter(|| prob_best_gaussian(black_box(&mu), &sigma))
    });
    g.bench_function("gaussian mc-100k", |b| {
        b.iter(|| win_counts_gaussian(black_box(&mu), &sigma, DRAWS, 1))
    });
    let (alpha, beta) = tspar_posterior();
    g.bench_function("beta exact", |b| {
        b.iter(|| prob_best_beta(black_box(&alpha), &beta))
    });
    g.bench_function("beta mc-100k", |b| {
        b.iter(|| win_counts_beta(black_box(&alpha), &beta, DRAWS, 1))
    });
    let (mean, cov, low) = logistic_posterior();
    g.bench_function("mvn exact", |b| {
        b.iter(|| prob_best_mvn(black_box(&mean), &cov, 1, MVN_TOLERANCE).unwrap())
    });
    g.bench_function("mvn mc-100k", |b| {
        b.iter(|| win_counts_mvn(black_box(&mean), &low, DRAWS, 1))
    });
    g.finish();
}

criterion_group!(benches, exact_vs_mc);
criterion_main!(benches);
