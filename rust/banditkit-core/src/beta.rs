//! TSPar's state: independent Beta(alpha, beta) posteriors over Bernoulli arms, and the
//! `[total, success]` count validation shared with LogisticBandit.
use crate::bail;
use crate::error::{BanditError, Result};
use crate::gaussian::fmt_num;

/// Formats a count the way the contract's messages show it (integers without a decimal point).
fn fmt_count(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e16 {
        format!("{}", x as i64)
    } else {
        fmt_num(x)
    }
}

/// Validates `[total, success]` pairs, in order, with the contract's messages. `names[i]` is the
/// arm of `obs[i]`. Counts must be finite whole numbers, non-negative, success <= total.
pub fn validate_count_obs(names: &[String], obs: &[(f64, f64)]) -> Result<()> {
    if obs.is_empty() {
        bail!("obs dictionary cannot be empty");
    }
    for (name, &(total, success)) in names.iter().zip(obs) {
        for (what, v) in [("Total", total), ("Success", success)] {
            if !v.is_finite() || v != v.trunc() {
                bail!(
                    "{what} count must be a finite whole number, got {} for action '{name}'",
                    fmt_num(v)
                );
            }
        }
        if total < 0.0 {
            bail!(
                "Total count must be non-negative, got {} for action '{name}'",
                fmt_count(total)
            );
        }
        if success < 0.0 {
            bail!(
                "Success count must be non-negative, got {} for action '{name}'",
                fmt_count(success)
            );
        }
        if success > total {
            bail!(
                "Success count ({}) cannot exceed total count ({}) for action '{name}'",
                fmt_count(success),
                fmt_count(total)
            );
        }
    }
    Ok(())
}

/// Per-arm Beta posteriors, prior Beta(1, 1).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BetaPosterior {
    pub alpha: Vec<f64>,
    pub beta: Vec<f64>,
}

impl BetaPosterior {
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alpha.is_empty()
    }

    /// Appends an arm with the Beta(1, 1) prior; returns its index.
    pub fn push_arm(&mut self) -> usize {
        self.alpha.push(1.0);
        self.beta.push(1.0);
        self.alpha.len() - 1
    }

    /// Adds validated `(arm, total, success)` counts: alpha += success, beta += total - success.
    /// All-or-nothing: counts that would make an arm's alpha or beta infinite are rejected,
    /// naming the arm by `name(index)`, and nothing changes.
    pub fn add_counts(
        &mut self,
        counts: &[(usize, f64, f64)],
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        if let Some(&(arm, _, _)) = counts.iter().find(|c| c.0 >= self.len()) {
            bail!("unknown arm index {arm}");
        }
        let mut staged: Vec<(usize, f64, f64)> = Vec::with_capacity(counts.len());
        for &(arm, total, success) in counts {
            let at = staged.iter().position(|s| s.0 == arm);
            let (_, a, b) = at.map_or((arm, self.alpha[arm], self.beta[arm]), |j| staged[j]);
            let entry = (arm, a + success, b + (total - success));
            if !(entry.1.is_finite() && entry.2.is_finite()) {
                return Err(BanditError::overflow(&name(arm)));
            }
            match at {
                Some(j) => staged[j] = entry,
                None => staged.push(entry),
            }
        }
        for (arm, a, b) in staged {
            self.alpha[arm] = a;
            self.beta[arm] = b;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("arm{i}")).collect()
    }

    #[test]
    fn messages_match_contract() {
        let e = |obs: &[(f64, f64)]| validate_count_obs(&names(obs.len()), obs).unwrap_err().0;
        assert_eq!(e(&[]), "obs dictionary cannot be empty");
        assert_eq!(
            e(&[(-1.0, 0.0)]),
            "Total count must be non-negative, got -1 for action 'arm0'"
        );
        assert_eq!(
            e(&[(1.0, -2.0)]),
            "Success count must be non-negative, got -2 for action 'arm0'"
        );
        assert_eq!(
            e(&[(1.0, 1.0), (3.0, 5.0)]),
            "Success count (5) cannot exceed total count (3) for action 'arm1'"
        );
        assert!(e(&[(f64::NAN, 0.0)]).starts_with("Total count must be a finite whole number"));
        assert!(e(&[(2.5, 0.0)]).starts_with("Total count must be a finite whole number"));
    }

    #[test]
    fn counts_accumulate() {
        let mut b = BetaPosterior::default();
        b.push_arm();
        b.push_arm();
        let name = |i: usize| format!("arm{i}");
        b.add_counts(&[(1, 10.0, 3.0)], &name).unwrap();
        assert_eq!(b.alpha, vec![1.0, 4.0]);
        assert_eq!(b.beta, vec![1.0, 8.0]);
        let before = b.clone();
        assert!(b
            .add_counts(&[(0, 1.0, 1.0), (2, 1.0, 1.0)], &name)
            .is_err());
        assert_eq!(b, before);
        // Counts of 1e308 twice: finite input, infinite alpha. Rejected, nothing changes.
        b.add_counts(&[(0, 1e308, 1e308)], &name).unwrap();
        let before = b.clone();
        let e = b
            .add_counts(&[(1, 1.0, 1.0), (0, 1e308, 1e308)], &name)
            .unwrap_err();
        assert_eq!(
            e.0,
            "update would make the state of arm 'arm0' non-finite (overflow)"
        );
        assert_eq!(b, before);
    }
}
