//! Unit tests of the contextual module (the heavy accuracy tests run from Python).
use super::*;
use crate::linalg::solve_spd;
use crate::normal::standard_normal;
use crate::rng::Xoshiro256PlusPlus;

fn cfg(d: usize, window: usize, gamma: f64) -> ArmConfig {
    ArmConfig {
        n_features: d,
        l2_lambda: 1.0,
        window_size: window,
        gamma,
        refactor_every: ArmConfig::default_refactor_every(d),
    }
}

fn contexts(n: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x: Vec<f64> = (0..n * d).map(|_| standard_normal(&mut rng)).collect();
    let r: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
    (x, r)
}

fn max_identity_error(a: &[f64], inv: &[f64], d: usize) -> f64 {
    let mut worst: f64 = 0.0;
    for i in 0..d {
        for j in 0..d {
            let s: f64 = (0..d).map(|k| a[i * d + k] * inv[k * d + j]).sum();
            worst = worst.max((s - (i == j) as u8 as f64).abs());
        }
    }
    worst
}

/// Ridge fit from scratch on weighted observations: (A, b).
fn ridge(d: usize, ridge: f64, obs: &[(&[f64], f64, f64)]) -> (Vec<f64>, Vec<f64>) {
    let mut a = vec![0.0; d * d];
    let mut b = vec![0.0; d];
    for i in 0..d {
        a[i * d + i] = ridge;
    }
    for &(x, r, w) in obs {
        for i in 0..d {
            b[i] += w * r * x[i];
            for j in 0..d {
                a[i * d + j] += w * x[i] * x[j];
            }
        }
    }
    (a, b)
}

#[test]
fn sherman_morrison_tracks_inverse_and_theta() {
    let d = 12;
    let (x, r) = contexts(3000, d, 1);
    let mut arm = ArmState::new(cfg(d, 0, 1.0));
    for i in 0..3000 {
        arm.add(&x[i * d..(i + 1) * d], r[i]);
    }
    let a = arm.gram();
    assert!(max_identity_error(&a, &arm.a_inv(), d) < 1e-10);
    let obs: Vec<_> = (0..3000)
        .map(|i| (&x[i * d..(i + 1) * d], r[i], 1.0))
        .collect();
    let (a_ref, b_ref) = ridge(d, 1.0, &obs);
    for (g, w) in a.iter().zip(&a_ref) {
        assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0));
    }
    let theta = solve_spd(&a_ref, d, &b_ref).unwrap();
    for (t, w) in arm.theta().iter().zip(&theta) {
        assert!((t - w).abs() < 1e-10);
    }
}

#[test]
fn window_and_forgetting_match_closed_form() {
    let d = 6;
    let n = 700;
    let (x, r) = contexts(n, d, 2);
    for (window, gamma) in [(50usize, 1.0), (0, 0.97), (40, 0.99)] {
        let mut arm = ArmState::new(cfg(d, window, gamma));
        for i in 0..n {
            arm.add(&x[i * d..(i + 1) * d], r[i]);
        }
        let first = if window > 0 { n - window } else { 0 };
        let obs: Vec<_> = (first..n)
            .map(|i| (&x[i * d..(i + 1) * d], r[i], gamma.powi((n - 1 - i) as i32)))
            .collect();
        let (a_ref, b_ref) = ridge(d, gamma.powi(n as i32), &obs);
        let a = arm.gram();
        for (g, w) in a.iter().zip(&a_ref) {
            assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{window} {gamma}");
        }
        assert!(max_identity_error(&a_ref, &arm.a_inv(), d) < 1e-8);
        let theta = solve_spd(&a_ref, d, &b_ref).unwrap();
        for (t, w) in arm.theta().iter().zip(&theta) {
            assert!((t - w).abs() <= 1e-8 * w.abs().max(1.0));
        }
        assert_eq!(arm.window_len(), if window > 0 { window } else { 0 });
    }
}

#[test]
fn predict_equals_repeated_select_for_any_thread_count() {
    let d = 9;
    let (x, r) = contexts(500, d, 4);
    for scoring in [Scoring::Ucb { alpha: 0.7 }, Scoring::Ts { v: 0.5 }] {
        let mut p = LinearPolicy::new(cfg(d, 0, 1.0), scoring, 4, 42).unwrap();
        p.partial_fit(
            &x[..300 * d],
            &(0..300).map(|i| i % 4).collect::<Vec<_>>(),
            &r[..300],
            &idx,
        )
        .unwrap();
        let batch = &x[300 * d..];
        let mut one = p.clone();
        let singles: Vec<usize> = batch
            .chunks(d)
            .map(|xi| one.select(xi, Some(&[3, 1, 2])).unwrap())
            .collect();
        let mut p1 = p.clone();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let serial = pool.install(|| p1.predict(batch, Some(&[1, 2, 3])).unwrap());
        let parallel = p.predict(batch, Some(&[1, 2, 3])).unwrap();
        assert_eq!(singles, parallel);
        assert_eq!(serial, parallel);
        assert!(parallel.iter().all(|&k| k != 0));
    }
}

#[test]
fn rejected_calls_change_nothing() {
    let d = 3;
    let mut p = LinearPolicy::new(cfg(d, 0, 1.0), Scoring::Ts { v: 1.0 }, 2, 7).unwrap();
    p.update(0, &[1.0, 2.0, 3.0], 1.0, &idx).unwrap();
    let before = (p.events(), p.arm(0).theta().to_vec(), p.arm(0).a_inv());
    assert!(p.select(&[1.0, f64::NAN, 0.0], None).is_err());
    assert!(p.select(&[1.0, 0.0], None).is_err());
    assert!(p.select(&[1.0, 0.0, 0.0], Some(&[])).is_err());
    assert!(p.update(0, &[1.0, 0.0, 0.0], f64::INFINITY, &idx).is_err());
    assert!(p.update(5, &[1.0, 0.0, 0.0], 0.0, &idx).is_err());
    assert!(p
        .partial_fit(&[1.0, 0.0, 0.0, 1.0, 2.0, 3.0], &[0, 9], &[0.0, 1.0], &idx)
        .is_err());
    assert_eq!(
        before,
        (p.events(), p.arm(0).theta().to_vec(), p.arm(0).a_inv())
    );
    let bad = ArmConfig {
        gamma: 1.5,
        ..cfg(d, 0, 1.0)
    };
    assert!(LinearPolicy::new(bad, Scoring::Ucb { alpha: 1.0 }, 1, 0).is_err());
    assert!(LinearPolicy::new(cfg(d, 0, 1.0), Scoring::Ucb { alpha: -1.0 }, 1, 0).is_err());
}

#[test]
fn snapshot_round_trip() {
    let d = 4;
    let (x, r) = contexts(30, d, 5);
    let mut arm = ArmState::new(cfg(d, 8, 0.9));
    for i in 0..30 {
        arm.add(&x[i * d..(i + 1) * d], r[i]);
    }
    let mut back = ArmState::from_snapshot(*arm.config(), arm.snapshot()).unwrap();
    assert_eq!(back.snapshot(), arm.snapshot());
    back.add(&x[..d], 1.0);
    arm.add(&x[..d], 1.0);
    for (a, b) in back.theta().iter().zip(arm.theta()) {
        assert!((a - b).abs() < 1e-12);
    }
}

fn idx(k: usize) -> String {
    format!("arm{k}")
}

/// Every arm's state and the event counter, to compare before and after a rejected call.
fn fingerprint(p: &LinearPolicy) -> (u64, Vec<ArmSnapshot>) {
    (
        p.events(),
        (0..p.n_arms()).map(|k| p.arm(k).snapshot()).collect(),
    )
}

#[test]
fn updates_that_would_overflow_are_rejected_without_change() {
    let d = 4;
    let (x, r) = contexts(40, d, 6);
    for (window, gamma) in [(0, 1.0), (5, 1.0), (0, 0.9), (6, 0.95)] {
        let mut p =
            LinearPolicy::new(cfg(d, window, gamma), Scoring::Ucb { alpha: 1.0 }, 2, 3).unwrap();
        let arms: Vec<usize> = (0..40).map(|i| i % 2).collect();
        p.partial_fit(&x, &arms, &r, &idx).unwrap();
        let before = fingerprint(&p);
        // A context of 1e200: x x^T overflows.
        let e = p.update(1, &[1e200, 0.0, 1.0, 0.0], 1.0, &idx).unwrap_err();
        assert_eq!(
            e.0,
            "update would make the state of arm 'arm1' non-finite (overflow)"
        );
        assert_eq!(fingerprint(&p), before);
        // A reward of 1e308 may pass once (with forgetting, theta's step overflows already);
        // twice overflows b. A rejection changes nothing.
        let before = fingerprint(&p);
        if p.update(0, &[1.0, 1.0, 0.0, 0.0], 1e308, &idx).is_err() {
            assert_eq!(fingerprint(&p), before);
        }
        let before = fingerprint(&p);
        assert!(p.update(0, &[1.0, 1.0, 0.0, 0.0], 1e308, &idx).is_err());
        assert_eq!(fingerprint(&p), before);
        // A batch is all-or-nothing: the good rows before the bad one do not stay.
        let batch = [0.5, 0.5, 0.5, 0.5, 1e200, 0.0, 0.0, 0.0];
        assert!(p.partial_fit(&batch, &[1, 1], &[1.0, 1.0], &idx).is_err());
        assert_eq!(fingerprint(&p), before);
        assert!(p.arm(0).is_finite() && p.arm(1).is_finite());
    }
}

#[test]
fn large_but_safe_values_take_the_trial_path_and_stay_exact() {
    // Magnitudes past the in-place bound go through a trial copy; the result must equal a plain
    // `add` bit for bit.
    let d = 3;
    let mut checked = ArmState::new(cfg(d, 0, 1.0));
    let mut plain = checked.clone();
    for (x, r) in [([1e20, 0.0, 1.0], 1e20), ([0.0, 1.0, 1.0], 2.0)] {
        assert!(checked.try_add(&x, r));
        plain.add(&x, r);
    }
    assert_eq!(checked.snapshot(), plain.snapshot());
}

#[test]
fn restored_state_must_be_finite() {
    let d = 2;
    let arm = ArmState::new(cfg(d, 0, 1.0));
    let mut snap = arm.snapshot();
    snap.theta[0] = f64::NAN;
    assert!(ArmState::from_snapshot(*arm.config(), snap.clone()).is_none());
    assert!(ArmState::from_snapshot_finite_matrices(*arm.config(), snap).is_none());
    for matrix in 0..2 {
        let mut snap = arm.snapshot();
        let m = if matrix == 0 {
            &mut snap.gram_packed
        } else {
            &mut snap.a_inv_packed
        };
        m[1] = f64::INFINITY;
        assert!(ArmState::from_snapshot(*arm.config(), snap).is_none());
    }
}

#[test]
fn ties_are_shared_and_broken_at_random_per_event() {
    let d = 3;
    let mut p = LinearPolicy::new(cfg(d, 0, 1.0), Scoring::Ucb { alpha: 1.0 }, 3, 7).unwrap();
    let x = [1.0, 2.0, 3.0];
    assert_eq!(p.propensities(&x, None).unwrap(), vec![1.0 / 3.0; 3]);
    assert_eq!(
        p.propensities(&x, Some(&[2, 1, 2])).unwrap(),
        vec![0.0, 0.5, 0.5]
    );
    let mut counts = [0usize; 3];
    let n = 3000;
    for _ in 0..n {
        counts[p.select(&x, None).unwrap()] += 1;
    }
    // 5 standard errors of a 1/3 frequency.
    let se = (2.0 / 9.0 / n as f64).sqrt();
    for c in counts {
        assert!(
            (c as f64 / n as f64 - 1.0 / 3.0).abs() < 5.0 * se,
            "{counts:?}"
        );
    }
    // predict from the same event index repeats select's choices.
    let mut a = LinearPolicy::new(cfg(d, 0, 1.0), Scoring::Ucb { alpha: 1.0 }, 3, 7).unwrap();
    let mut b = a.clone();
    let xs: Vec<f64> = x.iter().cycle().take(20 * d).copied().collect();
    let one: Vec<usize> = (0..20).map(|_| a.select(&x, None).unwrap()).collect();
    assert_eq!(b.predict(&xs, None).unwrap(), one);
}

#[test]
fn lints_propensities_are_the_gaussian_win_probabilities() {
    let d = 4;
    let mut p = LinearPolicy::new(cfg(d, 0, 1.0), Scoring::Ts { v: 0.7 }, 3, 1).unwrap();
    let (x, r) = contexts(30, d, 2);
    let arms: Vec<usize> = (0..30).map(|i| i % 3).collect();
    p.partial_fit(&x, &arms, &r, &|k| k.to_string()).unwrap();
    let probs = p.propensities(&x[..2 * d], None).unwrap();
    for row in 0..2 {
        let xr = &x[row * d..(row + 1) * d];
        let mu: Vec<f64> = (0..3).map(|k| p.arm(k).mean(xr)).collect();
        let sd: Vec<f64> = (0..3).map(|k| 0.7 * p.arm(k).variance(xr).sqrt()).collect();
        let want = crate::exact::prob_best_gaussian(&mu, &sd);
        assert_eq!(&probs[row * 3..row * 3 + 3], want.as_slice());
    }
    // x = 0: every score is exactly 0, all arms tie.
    assert_eq!(p.propensities(&[0.0; 4], None).unwrap(), vec![1.0 / 3.0; 3]);
    assert!(p.propensities(&[0.0; 3], None).is_err());
    assert!(p.propensities(&[0.0; 4], Some(&[])).is_err());
}
