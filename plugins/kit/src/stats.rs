//! The statistics the plugins need: quantiles, medians and least squares.
//!
//! Inputs are plain slices; NaN (a figure that was not measured) is the caller's
//! to filter out, except in [`quantiles`], which skips it because every caller
//! wants that.

/// The `q`-quantile (0 ≤ q ≤ 1) of values sorted in ascending order, by linear
/// interpolation between the closest ranks (the "type 7" definition used by
/// NumPy, R and most dashboards). `None` for an empty slice.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let q = q.clamp(0.0, 1.0);
    #[allow(clippy::cast_precision_loss)]
    let rank = q * last as f64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let below = rank.floor() as usize;
    let above = (below + 1).min(last);
    let fraction = rank - rank.floor();
    Some(sorted[below] + (sorted[above] - sorted[below]) * fraction)
}

/// Several quantiles of `values` at once (one sort), skipping NaN. Each
/// element of the result is `None` when no value is left.
pub fn quantiles(values: impl IntoIterator<Item = f64>, qs: &[f64]) -> Vec<Option<f64>> {
    let mut sorted: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    qs.iter().map(|&q| quantile_sorted(&sorted, q)).collect()
}

/// The median of `values` (NaN skipped), `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    quantiles(values.iter().copied(), &[0.5]).pop().flatten()
}

/// A straight line fitted to points by ordinary least squares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearFit {
    /// Change of y per unit of x.
    pub slope: f64,
    /// y at x = 0.
    pub intercept: f64,
    /// Coefficient of determination: the share of y's variance the line
    /// explains, from 0 (none) to 1 (every point on the line). Points that all
    /// share one y are fitted exactly and get 1.
    pub r_squared: f64,
}

impl LinearFit {
    /// The fitted y at `x`.
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// Fits `y = intercept + slope · x` to the points by ordinary least squares.
/// `None` with fewer than two points or when every x is the same.
///
/// Coordinates are centred on their means before summing, which keeps the sums
/// accurate for large offsets such as RSS in bytes or epoch milliseconds.
pub fn least_squares(points: &[(f64, f64)]) -> Option<LinearFit> {
    if points.len() < 2 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in points {
        let (dx, dy) = (x - mean_x, y - mean_y);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx == 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    // Explained over total variance; for a simple regression that is r², which
    // stays exact when syy = 0 (a flat series is fitted perfectly).
    let r_squared = if syy == 0.0 {
        1.0
    } else {
        ((sxy * sxy) / (sxx * syy)).clamp(0.0, 1.0)
    };
    Some(LinearFit {
        slope,
        intercept: mean_y - slope * mean_x,
        r_squared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&sorted, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&sorted, 1.0), Some(4.0));
        assert_eq!(quantile_sorted(&sorted, 0.5), Some(2.5));
        // NumPy: np.percentile([1,2,3,4], 95) == 3.85
        assert!(close(quantile_sorted(&sorted, 0.95).unwrap_or(0.0), 3.85));
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&[7.0], 0.99), Some(7.0));
    }

    #[test]
    fn quantiles_sort_and_skip_nan() {
        let got = quantiles([5.0, f64::NAN, 1.0, 3.0], &[0.0, 0.5, 1.0]);
        assert_eq!(got, vec![Some(1.0), Some(3.0), Some(5.0)]);
        assert_eq!(quantiles([f64::NAN], &[0.5]), vec![None]);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn least_squares_recovers_a_line() {
        let points: Vec<(f64, f64)> = (0..10)
            .map(|i| (f64::from(i), 1.0e8 + 65_536.0 * f64::from(i)))
            .collect();
        let fit = least_squares(&points).expect("fit");
        assert!(close(fit.slope, 65_536.0));
        assert!(close(fit.intercept, 1.0e8));
        assert!(close(fit.r_squared, 1.0));
        assert!(close(fit.at(10.0), 1.0e8 + 655_360.0));
    }

    #[test]
    fn least_squares_r_squared_of_a_centred_step() {
        // A step in the middle of evenly spaced points: r = √3/2·√(n²/(n²−1)).
        let points: Vec<(f64, f64)> = (0..100)
            .map(|i| (f64::from(i), if i < 50 { 0.0 } else { 1.0 }))
            .collect();
        let fit = least_squares(&points).expect("fit");
        assert!((fit.r_squared - 0.75).abs() < 0.01, "{}", fit.r_squared);
    }

    #[test]
    fn least_squares_edge_cases() {
        assert_eq!(least_squares(&[]), None);
        assert_eq!(least_squares(&[(1.0, 2.0)]), None);
        assert_eq!(least_squares(&[(1.0, 2.0), (1.0, 3.0)]), None);
        let flat = least_squares(&[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]).expect("fit");
        assert_eq!((flat.slope, flat.r_squared), (0.0, 1.0));
    }
}
