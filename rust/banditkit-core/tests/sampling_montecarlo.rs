//! Win counting: determinism across thread counts, exact totals, ties, and accuracy against
//! exact or numerically integrated win probabilities (5 binomial standard errors).
mod sampling_common;

use banditkit_core::montecarlo::{
    apply_aggressive, first_argmax, sample_beta, sample_gaussian, sample_mvn, win_counts_beta,
    win_counts_gaussian, win_counts_mvn, CHUNK_DRAWS,
};
use banditkit_core::rng::Xoshiro256PlusPlus;
use sampling_common::*;

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn same_seed_same_counts_on_1_and_2_threads() {
    let mu = [0.1, 0.0, 0.12, -0.3, 0.05];
    let sigma = [0.1, 0.2, 0.05, 1.0, 0.0];
    let draws = 50 * CHUNK_DRAWS as u64 + 7;
    let g1 = in_pool(1, || win_counts_gaussian(&mu, &sigma, draws, 11));
    let g2 = in_pool(2, || win_counts_gaussian(&mu, &sigma, draws, 11));
    assert_eq!(g1, g2);
    assert_eq!(g1, win_counts_gaussian(&mu, &sigma, draws, 11));
    assert_ne!(g1, win_counts_gaussian(&mu, &sigma, draws, 12));

    let (a, b) = ([3.0, 4.0, 0.5, 30.0], [5.0, 6.0, 0.7, 50.0]);
    let b1 = in_pool(1, || win_counts_beta(&a, &b, draws, 13));
    let b2 = in_pool(2, || win_counts_beta(&a, &b, draws, 13));
    assert_eq!(b1, b2);
    assert_ne!(b1, win_counts_beta(&a, &b, draws, 14));

    let mean = [0.2, 0.1, 0.0];
    let l = [1.0, 0.0, 0.0, 0.5, 0.8, 0.0, 0.0, 0.0, 0.0];
    let m1 = in_pool(1, || win_counts_mvn(&mean, &l, draws, 15));
    let m2 = in_pool(2, || win_counts_mvn(&mean, &l, draws, 15));
    assert_eq!(m1, m2);
}

#[test]
fn counts_sum_to_draws() {
    let mu = [0.0, 0.1, 0.2];
    let sigma = [1.0, 1.0, 1.0];
    for draws in [0, 1, CHUNK_DRAWS as u64 - 1, CHUNK_DRAWS as u64, 100_003] {
        let g = win_counts_gaussian(&mu, &sigma, draws, 1);
        assert_eq!(g.iter().sum::<u64>(), draws);
        let b = win_counts_beta(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], draws, 1);
        assert_eq!(b.iter().sum::<u64>(), draws);
        let m = win_counts_mvn(
            &mu,
            &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            draws,
            1,
        );
        assert_eq!(m.iter().sum::<u64>(), draws);
    }
    assert_eq!(win_counts_gaussian(&[], &[], 10, 1), Vec::<u64>::new());
    assert_eq!(win_counts_gaussian(&[3.0], &[1.0], 10, 1), vec![10]);
    assert_eq!(win_counts_beta(&[2.0], &[1.0], 10, 1), vec![10]);
    assert_eq!(win_counts_mvn(&[0.0], &[1.0], 10, 1), vec![10]);
}

#[test]
fn ties_go_to_the_lowest_index() {
    let draws = 10_000;
    assert_eq!(
        win_counts_gaussian(&[1.0; 4], &[0.0; 4], draws, 3),
        vec![draws, 0, 0, 0]
    );
    assert_eq!(
        win_counts_gaussian(&[1.0, 2.0, 2.0], &[0.0; 3], draws, 3),
        vec![0, draws, 0]
    );
    assert_eq!(
        win_counts_mvn(&[0.5, 0.5], &[0.0; 4], draws, 3),
        vec![draws, 0]
    );
    assert_eq!(first_argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
    assert_eq!(first_argmax(&[]), None);
}

#[test]
fn two_gaussian_arms_match_phi() {
    let (mu, sigma) = ([0.3, 0.5], [1.0, 0.6]);
    let draws = 1_000_000;
    let c = win_counts_gaussian(&mu, &sigma, draws, 21);
    let p1 = normal_cdf((mu[1] - mu[0]) / (sigma[0] * sigma[0] + sigma[1] * sigma[1]).sqrt());
    assert_proportion(c[1], draws, p1, "P(arm 1 wins)");
}

/// P(arm i wins) = integral of f_i(x) prod_{j != i} F_j(x) dx for independent arms.
fn integrated_win_probs(
    pdf: &[Box<dyn Fn(f64) -> f64>],
    cdf: &[Box<dyn Fn(f64) -> f64>],
    lo: f64,
    hi: f64,
) -> Vec<f64> {
    (0..pdf.len())
        .map(|i| {
            let integrand = |x: f64| {
                pdf[i](x)
                    * (0..cdf.len())
                        .filter(|&j| j != i)
                        .map(|j| cdf[j](x))
                        .product::<f64>()
            };
            simpson(integrand, lo, hi, 20_000)
        })
        .collect()
}

#[test]
fn several_gaussian_arms_match_integration() {
    let mu = [0.0, 0.2, 0.1, -0.5];
    let sigma = [1.0, 0.5, 0.8, 2.0];
    let pdf: Vec<Box<dyn Fn(f64) -> f64>> = (0..4)
        .map(|i| {
            Box::new(move |x: f64| normal_pdf((x - mu[i]) / sigma[i]) / sigma[i])
                as Box<dyn Fn(f64) -> f64>
        })
        .collect();
    let cdf: Vec<Box<dyn Fn(f64) -> f64>> = (0..4)
        .map(|i| {
            Box::new(move |x: f64| normal_cdf((x - mu[i]) / sigma[i])) as Box<dyn Fn(f64) -> f64>
        })
        .collect();
    let p = integrated_win_probs(&pdf, &cdf, -20.0, 20.0);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    let draws = 500_000;
    let c = win_counts_gaussian(&mu, &sigma, draws, 22);
    for i in 0..4 {
        assert_proportion(c[i], draws, p[i], &format!("gaussian arm {i}"));
    }
}

#[test]
fn beta_arms_match_known_values() {
    // Beta(2, 1) beats a uniform with probability P(Y > U) = E[Y] = 2/3.
    let draws = 500_000;
    let c = win_counts_beta(&[1.0, 2.0], &[1.0, 1.0], draws, 31);
    assert_proportion(c[1], draws, 2.0 / 3.0, "Beta(2,1) vs U");
    // Arcsine vs uniform: P(X > U) = E[X] = 1/2 (log-space path for shapes < 1).
    let c = win_counts_beta(&[0.5, 1.0], &[0.5, 1.0], draws, 32);
    assert_proportion(c[0], draws, 0.5, "Beta(0.5,0.5) vs U");
    // Three arms with polynomial densities, integrated numerically.
    let pdf: Vec<Box<dyn Fn(f64) -> f64>> = vec![
        Box::new(|x| 2.0 * (1.0 - x)),     // Beta(1, 2)
        Box::new(|x| 2.0 * x),             // Beta(2, 1)
        Box::new(|x| 6.0 * x * (1.0 - x)), // Beta(2, 2)
    ];
    let cdf: Vec<Box<dyn Fn(f64) -> f64>> = vec![
        Box::new(|x| 1.0 - (1.0 - x) * (1.0 - x)),
        Box::new(|x| x * x),
        Box::new(|x| x * x * (3.0 - 2.0 * x)),
    ];
    let p = integrated_win_probs(&pdf, &cdf, 0.0, 1.0);
    let c = win_counts_beta(&[1.0, 2.0, 2.0], &[2.0, 1.0, 2.0], draws, 33);
    for i in 0..3 {
        assert_proportion(c[i], draws, p[i], &format!("beta arm {i}"));
    }
}

#[test]
fn mvn_with_a_zero_row_and_correlation() {
    let draws = 500_000;
    // Arm 1 fixed at 0.3 (zero row): arm 0 ~ N(0, 1) wins with P(Z > 0.3).
    let c = win_counts_mvn(&[0.0, 0.3], &[1.0, 0.0, 0.0, 0.0], draws, 41);
    assert_proportion(c[0], draws, 1.0 - normal_cdf(0.3), "zero row");
    // Correlation 0.8, unit variances: x0 - x1 ~ N(0.1, 0.4).
    let l = [1.0, 0.0, 0.8, 0.6];
    let c = win_counts_mvn(&[0.1, 0.0], &l, draws, 42);
    assert_proportion(c[0], draws, normal_cdf(0.1 / 0.4f64.sqrt()), "correlated");
    // Three arms, the last a fixed reference at 0 (the LogisticBandit layout): arm 0 and 1
    // independent N(0, 1) and N(-0.2, 0.5^2).
    let l3 = [1.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0];
    let c = win_counts_mvn(&[0.0, -0.2, 0.0], &l3, draws, 43);
    // The reference wins when both are below 0.
    let p_ref = normal_cdf(0.0) * normal_cdf(0.2 / 0.5);
    assert_proportion(c[2], draws, p_ref, "reference arm");
}

#[test]
fn mvn_with_diagonal_factor_equals_independent_gaussians() {
    // Same stream consumption and arithmetic: the counts are identical, not just close. (Means
    // in descending order, so the Gaussian kernel samples in index order too, and spreads wide
    // enough that no arm is ever pruned.)
    let mu = [0.1, 0.0, -0.1];
    let sigma = [0.5, 1.0, 2.0];
    let l = [0.5, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0];
    let draws = 20 * CHUNK_DRAWS as u64 + 3;
    assert_eq!(
        win_counts_mvn(&mu, &l, draws, 5),
        win_counts_gaussian(&mu, &sigma, draws, 5)
    );
}

#[test]
fn aggressive_reweights_counts() {
    let p = apply_aggressive(&[1, 2, 3], 1.0);
    assert!(p
        .iter()
        .zip([1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0])
        .all(|(a, b)| (a - b).abs() < 1e-15));
    let p = apply_aggressive(&[1, 2, 3], 2.0);
    assert!(p
        .iter()
        .zip([1.0 / 14.0, 4.0 / 14.0, 9.0 / 14.0])
        .all(|(a, b)| (a - b).abs() < 1e-15));
    // Huge exponents neither overflow nor give NaN.
    assert_eq!(
        apply_aggressive(&[10, 50_000, 100_000], 1e4),
        vec![0.0, 0.0, 1.0]
    );
    let p = apply_aggressive(&[10, 99_990, 100_000], 1e4);
    assert!((p[1] - 1.0 / (1.0 + 1.0 / 0.9999f64.powf(1e4))).abs() < 1e-12);
    assert_eq!(apply_aggressive(&[5, 5, 0], 1e6), vec![0.5, 0.5, 0.0]);
    assert_eq!(apply_aggressive(&[0, 0], 2.0), vec![0.0, 0.0]);
    assert_eq!(apply_aggressive(&[], 2.0), Vec::<f64>::new());
    let p = apply_aggressive(&[0, 7, 3], 0.5);
    assert_eq!(p[0], 0.0);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
}

#[test]
fn single_joint_draws() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(51);
    assert_eq!(
        sample_gaussian(&[1.0, 2.0], &[0.0, 0.0], &mut rng),
        vec![1.0, 2.0]
    );
    assert_eq!(
        sample_mvn(&[0.5, -1.0], &[0.0; 4], &mut rng),
        vec![0.5, -1.0]
    );
    let v = sample_beta(&[0.01, 2.0, 1e6], &[0.01, 3.0, 1e6], &mut rng);
    assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
    // The arm picked by one Thompson draw is picked with its win probability.
    let (mu, sigma) = ([0.0, 0.3], [1.0, 0.5]);
    let n = 200_000u64;
    let picks = (0..n)
        .filter(|_| first_argmax(&sample_gaussian(&mu, &sigma, &mut rng)) == Some(1))
        .count() as u64;
    assert_proportion(
        picks,
        n,
        normal_cdf(0.3 / 1.25f64.sqrt()),
        "select gaussian",
    );
    let picks = (0..n)
        .filter(|_| first_argmax(&sample_beta(&[1.0, 2.0], &[1.0, 1.0], &mut rng)) == Some(1))
        .count() as u64;
    assert_proportion(picks, n, 2.0 / 3.0, "select beta");
    let l = [1.0, 0.0, 0.8, 0.6];
    let picks = (0..n)
        .filter(|_| first_argmax(&sample_mvn(&[0.1, 0.0], &l, &mut rng)) == Some(0))
        .count() as u64;
    assert_proportion(picks, n, normal_cdf(0.1 / 0.4f64.sqrt()), "select mvn");
}

#[test]
fn pruning_dominated_arms_keeps_the_probabilities() {
    // Tight, well separated posteriors (the benchmark's shape): most arms are never sampled,
    // and the counts still match the exact two-way comparisons within 5 standard errors.
    let draws = 400_000u64;
    let mu = [1.0, 1.9, 1.88, 1.5, 1.89];
    let sigma = [0.005, 0.01, 0.01, 0.005, 0.002];
    let c = win_counts_gaussian(&mu, &sigma, draws, 11);
    assert_eq!(c.iter().sum::<u64>(), draws);
    assert_eq!(c[0] + c[3], 0);
    // Arms 1, 2, 4 contend; compare against numerical integration of
    // P_i = int phi_i(x) prod_{j != i} Phi_j(x) dx.
    let contenders = [1usize, 2, 4];
    for &i in &contenders {
        let p = integrate_win_prob(&mu, &sigma, i);
        assert_proportion(c[i], draws, p, "pruned gaussian");
    }
    // Point masses: equal values tie, the lower index wins even though it is sampled later.
    let c = win_counts_gaussian(&[0.5, 1.0, 1.0], &[0.0, 0.0, 0.0], 5000, 1);
    assert_eq!(c, vec![0, 5000, 0]);
}

/// `P(arm i is the largest)` for independent normals, by the trapezoidal rule on a fine grid.
fn integrate_win_prob(mu: &[f64], sigma: &[f64], i: usize) -> f64 {
    let (lo, hi) = (mu[i] - 10.0 * sigma[i], mu[i] + 10.0 * sigma[i]);
    let n = 200_000;
    let h = (hi - lo) / n as f64;
    (0..=n)
        .map(|k| {
            let x = lo + k as f64 * h;
            let z = (x - mu[i]) / sigma[i];
            let dens = (-0.5 * z * z).exp() / (sigma[i] * (2.0 * std::f64::consts::PI).sqrt());
            let others: f64 = (0..mu.len())
                .filter(|&j| j != i)
                .map(|j| normal_cdf((x - mu[j]) / sigma[j]))
                .product();
            let w = if k == 0 || k == n { 0.5 } else { 1.0 };
            w * dens * others * h
        })
        .sum()
}

#[test]
fn beta_pruning_keeps_the_probabilities() {
    // The TSPar benchmark's shape: rates 1.0% .. 1.9% on 100,000 trials each. Dominated arms
    // are skipped; the counts still match the exact integral within 5 standard errors.
    let alpha: Vec<f64> = (0..10)
        .map(|i| 1.0 + (100_000.0 * (0.01 + 0.001 * i as f64)).floor())
        .collect();
    let beta: Vec<f64> = alpha.iter().map(|a| 1.0 + 100_000.0 - (a - 1.0)).collect();
    let draws = 200_000u64;
    let c = win_counts_beta(&alpha, &beta, draws, 21);
    assert_eq!(c.iter().sum::<u64>(), draws);
    let exact = banditkit_core::exact::prob_best_beta(&alpha, &beta);
    for (i, &p) in exact.iter().enumerate() {
        assert_proportion(c[i], draws, p, "pruned beta");
    }
}

#[test]
fn beta_bound_holds_for_every_draw() {
    use banditkit_core::gamma::BetaSampler;
    use banditkit_core::normal::max_abs_standard_normal;
    use banditkit_core::rng::Xoshiro256PlusPlus;
    let z = max_abs_standard_normal();
    for (a, b) in [
        (0.3, 0.7),
        (1.0, 1.0),
        (2.5, 40.0),
        (1000.0, 99_000.0),
        (5e5, 5e5),
    ] {
        let s = BetaSampler::new(a, b);
        let upper = s.upper_bound(z);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let max = (0..200_000).map(|_| s.sample(&mut rng)).fold(0.0, f64::max);
        assert!(
            max <= upper,
            "Beta({a}, {b}): draw {max} above bound {upper}"
        );
    }
}
