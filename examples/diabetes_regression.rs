//! Regression on a real data set: diabetes progression (442 patients x 10 features, from
//! `linfa-datasets`), train / validation / test splits, Levenberg-Marquardt through the
//! training driver with early stopping on the validation loss, and the test error against
//! the baseline of predicting the training mean.
//!
//! `cargo run --release --example diabetes_regression` (exits 1 if the net does not beat the
//! mean predictor on the test set).

use tall_skinny::prelude::*;
use tall_skinny::runtime::data::{shuffle_split, MiniBatches, Remainder};
use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};
use tall_skinny::runtime::train::{TrainConfig, Trainer};

#[tall_skinny_net(batch = 62)]
struct Diabetes {
    inp: Dense<10, 6, Tanh>,
    body: [Residual<6, Tanh>; 4],
    head: Dense<6, 1, Identity>,
    loss: Mse<1>,
}

/// Per-column mean and standard deviation.
fn stats<const N: usize>(rows: &[[f64; N]]) -> ([f64; N], [f64; N]) {
    let n = rows.len() as f64;
    let mean: [f64; N] = core::array::from_fn(|k| rows.iter().map(|r| r[k]).sum::<f64>() / n);
    let sd = core::array::from_fn(|k| {
        (rows.iter().map(|r| (r[k] - mean[k]).powi(2)).sum::<f64>() / n).sqrt()
    });
    (mean, sd)
}

/// `(row - mean) / sd`, column by column.
fn scale<const N: usize>(rows: &[[f64; N]], (m, s): ([f64; N], [f64; N])) -> Vec<[f64; N]> {
    rows.iter()
        .map(|r| core::array::from_fn(|k| (r[k] - m[k]) / s[k]))
        .collect()
}

fn main() {
    let data = linfa_datasets::diabetes();
    let mut xs: Vec<[f64; 10]> = data
        .records()
        .outer_iter()
        .map(|r| core::array::from_fn(|k| r[k]))
        .collect();
    let mut ts: Vec<[f64; 1]> = data.targets().iter().map(|&t| [t]).collect();
    let split = shuffle_split(&mut xs, &mut ts, 42, 66, 66).unwrap();

    // Standardise features and target with the training split's statistics only.
    let (sx, st) = (stats(split.train.0), stats(split.train.1));
    let (train_x, train_t) = (scale(split.train.0, sx), scale(split.train.1, st));
    let (val_x, val_t) = (scale(split.val.0, sx), scale(split.val.1, st));
    let (test_x, test_t) = (scale(split.test.0, sx), scale(split.test.1, st));

    let mut net = Diabetes::init(1);
    let mut lm = LevenbergMarquardt::new(LmConfig::default()).unwrap();
    let mut batches = MiniBatches::with_vec(&train_x, &train_t, 7, Remainder::Carry).unwrap();
    let config = TrainConfig::default()
        .with_max_epochs(300)
        .with_patience(15);
    let report = Trainer::new(config).unwrap().fit(
        &mut net,
        &mut lm,
        &mut batches,
        Some((&val_x, &val_t)),
        (),
    );
    println!("{report}");

    // Test error in the target's units (the net predicts the standardised target).
    let test = net.evaluate(&test_x, &test_t).unwrap();
    let mse = test.mse.unwrap() * st.1[0] * st.1[0];
    let baseline = split
        .test
        .1
        .iter()
        .map(|t| (t[0] - st.0[0]).powi(2))
        .sum::<f64>()
        / 66.0;
    println!(
        "test ({} patients): MSE {mse:.1} (RMSE {:.1}); predicting the training mean: MSE {baseline:.1} (RMSE {:.1}); R^2 {:.3}",
        test.samples,
        mse.sqrt(),
        baseline.sqrt(),
        1.0 - mse / baseline
    );
    if report.reason.is_error() || mse.is_nan() || mse >= baseline {
        eprintln!(
            "broken: the net does not beat the mean predictor ({})",
            report.reason
        );
        std::process::exit(1);
    }
}
