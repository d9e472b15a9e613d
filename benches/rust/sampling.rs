//! Criterion benches of the sampling engine: per-draw cost of the samplers and the win-count
//! kernels (throughput in draw x arm elements, so criterion reports time per (draw x arm)).
//! Quick run: `cargo bench -p banditkit-core --bench sampling -- --quick`.
use banditkit_core::gamma::{BetaSampler, GammaSampler};
use banditkit_core::montecarlo::{
    win_counts_beta, win_counts_gaussian, win_counts_mvn, CHUNK_DRAWS,
};
use banditkit_core::normal::{fill_standard_normal, standard_normal};
use banditkit_core::rng::Xoshiro256PlusPlus;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;
use std::hint::black_box;

const ARMS: usize = 10;

fn gaussian_arms() -> (Vec<f64>, Vec<f64>) {
    let mu = (0..ARMS).map(|i| 1.0 + 0.01 * i as f64).collect();
    let sigma = (0..ARMS).map(|i| 0.05 + 0.001 * i as f64).collect();
    (mu, sigma)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn samplers(c: &mut Criterion) {
    const N: usize = 4096;
    let mut g = c.benchmark_group("samplers");
    g.throughput(Throughput::Elements(N as u64));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut buf = vec![0.0; N];
    g.bench_function("xoshiro_next_f64", |b| {
        b.iter(|| buf.iter_mut().for_each(|v| *v = rng.next_f64()));
        black_box(&buf);
    });
    g.bench_function("standard_normal_fill", |b| {
        b.iter(|| fill_standard_normal(&mut rng, &mut buf));
        black_box(&buf);
    });
    let mut words = vec![0u64; N];
    let mut x4 = banditkit_core::rng::Xoshiro256PlusPlusX4::from_rng(&mut rng);
    g.bench_function("xoshiro_x4_words", |b| {
        b.iter(|| x4.fill_u64(&mut words));
        black_box(&words);
    });
    g.bench_function("standard_normal_single", |b| {
        b.iter(|| buf.iter_mut().for_each(|v| *v = standard_normal(&mut rng)));
        black_box(&buf);
    });
    for shape in [0.3, 2.5, 1e6] {
        let s = GammaSampler::new(shape);
        g.bench_function(format!("gamma_{shape}"), |b| {
            b.iter(|| buf.iter_mut().for_each(|v| *v = s.sample(&mut rng)));
            black_box(&buf);
        });
    }
    for (a, bb) in [(11.0, 991.0), (0.5, 0.5)] {
        let s = BetaSampler::new(a, bb);
        g.bench_function(format!("beta_{a}_{bb}"), |b| {
            b.iter(|| buf.iter_mut().for_each(|v| *v = s.sample(&mut rng)));
            black_box(&buf);
        });
    }
    g.finish();
}

/// The alternative layout, for comparison: draw-major (each draw samples all arms in turn and
/// keeps the best), same chunking and streams.
fn win_counts_gaussian_draw_major(mu: &[f64], sigma: &[f64], draws: u64, seed: u64) -> Vec<u64> {
    let chunks = draws.div_ceil(CHUNK_DRAWS as u64);
    (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            let mut counts = vec![0u64; mu.len()];
            let mut rng = Xoshiro256PlusPlus::stream(seed, chunk);
            let n = (draws - chunk * CHUNK_DRAWS as u64).min(CHUNK_DRAWS as u64);
            for _ in 0..n {
                let (mut best, mut winner) = (f64::NEG_INFINITY, 0);
                for (i, (&m, &s)) in mu.iter().zip(sigma).enumerate() {
                    let v = m + s * standard_normal(&mut rng);
                    if v > best {
                        best = v;
                        winner = i;
                    }
                }
                counts[winner] += 1;
            }
            counts
        })
        .reduce(
            || vec![0; mu.len()],
            |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
        )
}

fn win_counts(c: &mut Criterion) {
    let (mu, sigma) = gaussian_arms();
    let mut g = c.benchmark_group("win_counts");
    for threads in [1, 2] {
        let p = pool(threads);
        let draws = 100_000u64;
        g.throughput(Throughput::Elements(draws * ARMS as u64));
        g.bench_function(format!("gaussian_10x100k_{threads}t"), |b| {
            b.iter(|| p.install(|| win_counts_gaussian(black_box(&mu), &sigma, draws, 7)))
        });
        g.bench_function(format!("gaussian_draw_major_10x100k_{threads}t"), |b| {
            b.iter(|| {
                p.install(|| win_counts_gaussian_draw_major(black_box(&mu), &sigma, draws, 7))
            })
        });
        // MVN with a dense lower-triangular factor and the last arm fixed (a zero row).
        let mut l = vec![0.0; ARMS * ARMS];
        for i in 0..ARMS - 1 {
            for k in 0..=i {
                l[i * ARMS + k] = if i == k { 0.1 } else { 0.01 };
            }
        }
        g.bench_function(format!("mvn_10x100k_{threads}t"), |b| {
            b.iter(|| p.install(|| win_counts_mvn(black_box(&mu), &l, draws, 7)))
        });
        let draws = 10_000u64;
        let alpha: Vec<f64> = (0..ARMS)
            .map(|i| 1.0 + (1000.0 * (0.01 + 0.001 * i as f64)).floor())
            .collect();
        let beta: Vec<f64> = alpha.iter().map(|a| 1.0 + 1000.0 - (a - 1.0)).collect();
        g.throughput(Throughput::Elements(draws * ARMS as u64));
        g.bench_function(format!("beta_10x10k_{threads}t"), |b| {
            b.iter(|| p.install(|| win_counts_beta(black_box(&alpha), &beta, draws, 7)))
        });
    }
    g.finish();
}

fn thread_scaling(c: &mut Criterion) {
    let (mu, sigma) = gaussian_arms();
    let draws = 1_000_000u64;
    let mut g = c.benchmark_group("thread_scaling");
    g.sample_size(10);
    g.throughput(Throughput::Elements(draws * ARMS as u64));
    for threads in [1, 2] {
        let p = pool(threads);
        g.bench_function(format!("gaussian_10x1m_{threads}t"), |b| {
            b.iter(|| p.install(|| win_counts_gaussian(black_box(&mu), &sigma, draws, 7)))
        });
    }
    g.finish();
}

criterion_group!(benches, samplers, win_counts, thread_scaling);
criterion_main!(benches);
