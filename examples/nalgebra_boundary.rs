//! nalgebra at the boundary: a batch of inputs built as an nalgebra matrix (a column per
//! sample) and passed to the net without a copy, the outputs read back as a matrix, a data
//! set of any length viewed as an `I x n` matrix, and the parameter vector and gradient
//! handled as `SVector` (zero-copy) and `DVector` (owned copy). Exits non-zero if a
//! conversion is not the identity on the data or not zero-copy.
//!
//! `cargo run --release --example nalgebra_boundary`

// `!(x < y)` is deliberate: a NaN must fail the checks.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use nalgebra::{DVector, SMatrix, SVector};
use tall_skinny::prelude::*;
use tall_skinny::runtime::boundary;

#[tall_skinny_net(batch = 4)]
struct Net {
    inp: Dense<3, 8, Tanh>,
    body: [Residual<8, Tanh>; 4],
    head: Dense<8, 2, Identity>,
    loss: Mse<2>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let net = Net::init(3);

    // Inputs as a 3 x 4 nalgebra matrix: column j is sample j. `as_batch` sees its storage
    // as the net's `[[f64; 3]; 4]` (the matrix's `data.0`), without a copy.
    let x = SMatrix::<f64, 3, 4>::from_fn(|i, j| 0.25 * i as f64 - 0.3 * j as f64);
    let batch: &[[f64; 3]; 4] = boundary::as_batch(&x);
    if !std::ptr::eq(batch.as_ptr().cast::<f64>(), x.as_ptr()) || batch != &x.data.0 {
        return Err("as_batch is not a view of the matrix".into());
    }
    let t = SMatrix::<f64, 2, 4>::from_fn(|k, j| if k == 0 { 0.1 * j as f64 } else { -0.2 });

    // Outputs back as a 2 x 4 matrix (by value: nalgebra's own `from_array_storage`).
    let y: SMatrix<f64, 2, 4> =
        SMatrix::from_array_storage(nalgebra::ArrayStorage(net.forward(batch)?));
    println!("inputs (a column per sample):{x:.3}outputs:{y:.6}");
    for j in 0..4 {
        let one = net.forward_one(&batch[j])?;
        if one != [y[(0, j)], y[(1, j)]] {
            return Err(format!("column {j} is not sample {j}").into());
        }
    }

    // The loss, with the targets also built as a matrix.
    let loss = net.loss(batch, boundary::as_batch(&t))?;
    println!("batch loss {loss:.6e}");

    // A data set of 73 samples (not a multiple of the batch) as a 3 x 73 matrix view, and
    // the outputs of `forward_all` viewed the same way.
    let data: Vec<[f64; 3]> = (0..73)
        .map(|k| {
            let s = k as f64 / 73.0;
            [s, (3.0 * s).sin(), 1.0 - s]
        })
        .collect();
    let mut out = vec![[0.0; 2]; data.len()];
    net.forward_all(&data, &mut out)?;
    let xs = boundary::samples_view(&data);
    let ys = boundary::samples_view(&out);
    println!(
        "data set: inputs {:?}, outputs {:?}, mean output {:.6}",
        xs.shape(),
        ys.shape(),
        ys.column_mean().transpose()
    );
    if ys.column(40).iter().ne(out[40].iter()) || xs[(1, 10)] != data[10][1] {
        return Err("samples_view is not column-per-sample".into());
    }
    // The same data as a slice of SVectors (e.g. to compute a mean with nalgebra).
    let vs: &[SVector<f64, 3>] = boundary::as_vectors(&data);
    let mean = vs.iter().sum::<SVector<f64, 3>>() / vs.len() as f64;
    println!("mean input {:.6}", mean.transpose());

    // The parameter vector as an SVector (zero-copy), the gradient as an owned DVector.
    let mut p = [0.0; Net::N_PARAMS];
    net.params(&mut p);
    let mut g = [0.0; Net::N_PARAMS];
    net.gradient(batch, boundary::as_batch(&t), &mut g)?;
    let pv: &SVector<f64, { Net::N_PARAMS }> = boundary::as_vector(&p);
    let gd: DVector<f64> = DVector::from_column_slice(&g);
    println!(
        "{} parameters: |p| = {:.6}, |g| = {:.6e}, p.g = {:.6e}",
        Net::N_PARAMS,
        pv.norm(),
        gd.norm(),
        boundary::slice_view(&p).dot(&gd)
    );

    // A gradient step written with nalgebra arithmetic on the parameter array in place.
    let mut q = p;
    *boundary::as_vector_mut(&mut q) -= 0.1 * boundary::as_vector(&g);
    let mut stepped = net.clone();
    stepped.set_params(&q)?;
    let after = stepped.loss(batch, boundary::as_batch(&t))?;
    println!("after one gradient step of 0.1: loss {after:.6e}");
    if !(after < loss) {
        return Err("the gradient step did not decrease the loss".into());
    }
    println!("ok");
    Ok(())
}
