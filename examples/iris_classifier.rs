//! Classification on a real data set: the iris flowers (150 samples x 4 features, 3
//! species, from `linfa-datasets`), a softmax cross-entropy net trained by
//! Levenberg-Marquardt through the training driver, and its accuracy on a held-out test set.
//!
//! `cargo run --release --example iris_classifier` (exits 1 if the test accuracy is below
//! 0.8).

use tall_skinny::prelude::*;
use tall_skinny::runtime::data::{shuffle_split, MiniBatches, Remainder};
use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig};
use tall_skinny::runtime::train::{TrainConfig, Trainer};

#[tall_skinny_net(batch = 30)]
struct Iris {
    inp: Dense<4, 8, Tanh>,
    body: [Residual<8, Tanh>; 4],
    head: Dense<8, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

fn main() {
    let data = linfa_datasets::iris();
    let mut xs: Vec<[f64; 4]> = data
        .records()
        .outer_iter()
        .map(|r| core::array::from_fn(|k| r[k]))
        .collect();
    let mut labels: Vec<usize> = data.targets().to_vec();
    let split = shuffle_split(&mut xs, &mut labels, 3, 30, 30).unwrap();

    // Standardise the features with the training split's statistics.
    let n = split.train.0.len() as f64;
    let mean: [f64; 4] =
        core::array::from_fn(|k| split.train.0.iter().map(|x| x[k]).sum::<f64>() / n);
    let sd: [f64; 4] = core::array::from_fn(|k| {
        (split
            .train
            .0
            .iter()
            .map(|x| (x[k] - mean[k]).powi(2))
            .sum::<f64>()
            / n)
            .sqrt()
    });
    let scale = |xs: &[[f64; 4]]| -> Vec<[f64; 4]> {
        xs.iter()
            .map(|x| core::array::from_fn(|k| (x[k] - mean[k]) / sd[k]))
            .collect()
    };
    let (train_x, val_x, test_x) = (
        scale(split.train.0),
        scale(split.val.0),
        scale(split.test.0),
    );

    let mut net = Iris::init(1);
    let mut lm = LevenbergMarquardt::new(LmConfig::default()).unwrap();
    let mut batches = MiniBatches::with_vec(&train_x, split.train.1, 5, Remainder::Carry).unwrap();
    let config = TrainConfig::default()
        .with_max_epochs(200)
        .with_patience(10);
    let report = Trainer::new(config).unwrap().fit(
        &mut net,
        &mut lm,
        &mut batches,
        Some((&val_x, split.val.1)),
        (),
    );
    println!("{report}");

    let test = net.evaluate(&test_x, split.test.1).unwrap();
    println!("test: {test}");
    let first = net.forward_one(&test_x[0]).unwrap();
    println!(
        "first test flower: logits {first:.2?}, label {}",
        split.test.1[0]
    );
    let accuracy = test.accuracy().unwrap();
    if report.reason.is_error() || accuracy < 0.8 {
        eprintln!("broken: test accuracy {accuracy:.3} ({})", report.reason);
        std::process::exit(1);
    }
}
