use super::*;

fn counts(known: Option<usize>, total: f64, success: f64) -> ArmCounts {
    ArmCounts {
        known,
        total,
        success,
    }
}

fn pos(b: usize) -> String {
    format!("batch{b}")
}

const ORTS: UpdateOptions = UpdateOptions {
    odds_ratios_only: true,
    remove_not_observed: false,
    decay: 0.0,
};

fn assert_sane(s: &LogisticState) {
    let k = s.k();
    assert!(s.mu.iter().chain(&s.sigma_inv).all(|v| v.is_finite()));
    for i in 0..k {
        for j in 0..k {
            assert_eq!(s.sigma_inv[i * k + j], s.sigma_inv[j * k + i]);
        }
    }
    assert!(sampler::is_psd(&s.sigma_inv, k));
}

#[test]
fn first_update_is_the_mle_with_fisher_information() {
    let (s, slots) = LogisticState::default()
        .update(
            &[counts(None, 1000.0, 100.0), counts(None, 4000.0, 800.0)],
            ORTS,
            &pos,
        )
        .unwrap()
        .unwrap();
    assert_eq!(slots, vec![Slot::New(0), Slot::New(1)]);
    let lg = |p: f64| (p / (1.0 - p)).ln();
    assert!((s.mu[1] - lg(0.2)).abs() < 1e-12);
    assert!((s.mu[0] - (lg(0.1) - lg(0.2))).abs() < 1e-12);
    let (v0, v1) = (1000.0 * 0.1 * 0.9, 4000.0 * 0.2 * 0.8);
    let expect = [v0, v0, v0, v0 + v1];
    for (a, b) in s.sigma_inv.iter().zip(expect) {
        assert!((a - b).abs() < 1e-9 * b);
    }
}

#[test]
fn zero_totals_change_nothing_and_arrangement_is_new_off_on() {
    let s0 = LogisticState::default();
    assert!(s0
        .update(&[counts(None, 0.0, 0.0)], ORTS, &pos)
        .unwrap()
        .is_none());
    let (s1, _) = s0
        .update(
            &[
                counts(None, 100.0, 10.0),
                counts(None, 100.0, 20.0),
                counts(None, 100.0, 30.0),
            ],
            ORTS,
            &pos,
        )
        .unwrap()
        .unwrap();
    // Known arm 1 observed, arm 0 and 2 not, one new arm.
    let (s2, slots) = s1
        .update(
            &[counts(Some(1), 50.0, 5.0), counts(None, 60.0, 6.0)],
            ORTS,
            &pos,
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        slots,
        vec![Slot::New(1), Slot::Known(0), Slot::Known(2), Slot::Known(1)]
    );
    assert_sane(&s2);
    let remove = UpdateOptions {
        remove_not_observed: true,
        ..ORTS
    };
    let (s3, slots) = s1
        .update(
            &[counts(Some(1), 50.0, 5.0), counts(None, 60.0, 6.0)],
            remove,
            &pos,
        )
        .unwrap()
        .unwrap();
    assert_eq!(slots, vec![Slot::New(1), Slot::Known(1)]);
    assert_eq!(s3.k(), 2);
}

#[test]
fn extreme_rates_and_zero_precision_arms_stay_finite() {
    let s0 = LogisticState::default();
    let (s1, _) = s0
        .update(
            &[
                counts(None, 1000.0, 0.0),
                counts(None, 10.0, 10.0),
                counts(None, 100000.0, 3.0),
            ],
            ORTS,
            &pos,
        )
        .unwrap()
        .unwrap();
    assert_sane(&s1);
    // An arm with zero precision everywhere (upstream's double inverse raised here).
    let state = LogisticState::new(
        vec![0.1, 0.2, -1.0],
        vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 2.0],
    )
    .unwrap();
    for opts in [
        ORTS,
        UpdateOptions {
            odds_ratios_only: false,
            ..ORTS
        },
    ] {
        let (s2, _) = state
            .update(
                &[counts(Some(0), 500.0, 50.0), counts(Some(2), 500.0, 60.0)],
                opts,
                &pos,
            )
            .unwrap()
            .unwrap();
        assert_sane(&s2);
        let sm = odds_ratio_sampler(&s2).unwrap();
        assert!(sm.chol_lower.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn odds_ratio_precision_is_the_marginal() {
    let p0 = [4.0, 1.0, 2.0, 1.0, 3.0, 1.5, 2.0, 1.5, 9.0];
    let inv = crate::linalg::inverse_spd(&p0, 3).unwrap();
    let block = [inv[0], inv[1], inv[3], inv[4]];
    let marg = crate::linalg::inverse_spd(&block, 2).unwrap();
    let out = odds_ratio_precision(&p0, 3);
    for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        assert!((out[i * 3 + j] - marg[i * 2 + j]).abs() < 1e-12);
    }
    assert_eq!(&out[6..9], &[0.0, 0.0, 0.0]);
}

#[test]
fn user_states_must_be_symmetric_psd() {
    let eye = vec![1.0, 0.0, 0.0, 1.0];
    assert!(LogisticState::new(vec![0.0; 2], eye.clone()).is_ok());
    let neg: Vec<f64> = eye.iter().map(|v| -v).collect();
    let e = LogisticState::new(vec![0.0; 2], neg).unwrap_err();
    assert!(e.0.starts_with("sigma_inv must be positive semidefinite"));
    // Singular, with a rounding-level negative eigenvalue: accepted.
    let v = [0.6, 0.8];
    let mut singular: Vec<f64> = (0..4).map(|i| 1e6 * v[i / 2] * v[i % 2]).collect();
    singular[3] -= 1e-8;
    assert!(LogisticState::new(vec![0.0; 2], singular).is_ok());
    assert!(LogisticState::new(vec![f64::NAN, 0.0], eye.clone()).is_err());
    assert!(LogisticState::new(vec![0.0; 2], vec![1.0, 0.5, 0.0, 1.0]).is_err());
}

#[test]
fn update_that_overflows_is_rejected() {
    // A precision near f64::MAX plus the Fisher information of huge counts overflows.
    let big = LogisticState::new(vec![0.0; 2], vec![1.7e308, 0.0, 0.0, 1.7e308]).unwrap();
    let full = UpdateOptions {
        odds_ratios_only: false,
        ..ORTS
    };
    let e = big
        .update(
            &[counts(Some(0), 1e308, 5e307), counts(Some(1), 1e308, 5e307)],
            full,
            &pos,
        )
        .unwrap_err();
    assert_eq!(
        e.0,
        "update would make the state of arm 'batch0' non-finite (overflow)"
    );
    // Counts whose total is beyond f64 (the MAP objective is scaled by it).
    let huge: Vec<ArmCounts> = (0..8).map(|_| counts(None, 1e308, 5e307)).collect();
    let e = LogisticState::default()
        .update(&huge, full, &pos)
        .unwrap_err();
    assert!(e
        .0
        .starts_with("update would make the state of arm 'batch0'"));
}

#[test]
fn sampler_repairs_or_fails_as_specified() {
    // Covariance block with a small negative eigenvalue: repaired by a few increments.
    let s = LogisticState {
        mu: vec![0.0; 3],
        sigma_inv: vec![1.0, 0.0, 0.0, 0.0, -200.0, 0.0, 0.0, 0.0, 1.0],
    };
    let sm = odds_ratio_sampler(&s).unwrap();
    assert_eq!(sm.repairs, 5);
    let s = LogisticState {
        mu: vec![0.0; 3],
        sigma_inv: vec![1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
    };
    let e = odds_ratio_sampler(&s).unwrap_err();
    assert!(e.0.starts_with(
        "Failed to make covariance matrix positive semidefinite after 100 iterations"
    ));
}

#[test]
fn constructor_and_delete_validate() {
    assert!(LogisticState::new(vec![0.0], vec![]).is_err());
    assert!(LogisticState::new(vec![f64::NAN], vec![1.0]).is_err());
    assert!(LogisticState::new(vec![0.0, 0.0], vec![1.0, 0.5, 0.0, 1.0]).is_err());
    let s = LogisticState::new(vec![0.5, -1.0], vec![2.0, 2.0, 2.0, 5.0]).unwrap();
    assert!(s.delete(2).is_err());
    let d = s.delete(1).unwrap();
    assert_eq!(d.k(), 1);
    assert!((d.mu[0] - (-0.5)).abs() < 1e-15);
}

#[test]
fn rounding_level_negative_precision_is_not_inverted() {
    // Reached by valid updates (Full-TS, decay 1, clipped rates): arms 2..=5 form a block
    // whose level nothing identifies; its zero eigenvalue comes out at -3.8e-11 (-2e-15
    // relative). NumPy's pinv inverts it to a variance of -2.6e10 and the repair fails.
    #[rustfmt::skip]
    let sigma_inv = vec![
        0.00012337934976493025, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.00012337934976493025,
        0.0, 0.0001233793497648489, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0001233793497648489,
        0.0, 0.0, 2.2499976302226474, -1.1695263554535698e-05, -0.00022377783681206624, -2.249762157122281, 0.0, 0.0,
        0.0, 0.0, -1.1695263554535698e-05, 11.104083760675895, -0.001104382559906288, -11.102967682852434, 0.0, 0.0,
        0.0, 0.0, -0.00022377783681206624, -0.001104382559906288, 212.44614213805275, -212.44481397765605, 0.0, 0.0,
        0.0, 0.0, -2.249762157122281, -11.102967682852434, -212.44481397765605, 225.79754381747918, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9624.190560000006, 9624.190560000006,
        0.00012337934976493025, 0.0001233793497648489, 0.0, 0.0, 0.0, 0.0, 9624.190560000006, 9624.314186108471,
    ];
    let (values, _) = crate::linalg::sym_eigen(&sigma_inv, 8);
    assert!(
        values[0] < 0.0,
        "the regression needs the negative rounding: {values:?}"
    );
    let s = LogisticState::new(vec![0.0; 8], sigma_inv).unwrap();
    let sm = odds_ratio_sampler(&s).unwrap();
    assert_eq!(sm.repairs, 0);
    assert!(sm.chol_lower.iter().all(|v| v.is_finite()));
}
