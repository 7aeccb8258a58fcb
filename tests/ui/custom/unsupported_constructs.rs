// Every unsupported construct of one body is reported in the same build, each on its token.
use tall_skinny::prelude::*;

#[activation]
fn kitchen_sink(x: f64) -> f64 {
    let mut acc = x % 2.0;
    for _ in 0..3 {
        acc = acc + 1.0;
    }
    println!("{acc}");
    let g = |y: f64| y * 2.0;
    let p = x.powf(x);
    let m = x.max(x * x);
    let k = if x > 0.0 && x < 1.0 { x } else { 0.0 };
    let c = x as i64;
    g(acc) + p + m + k + helper(x) + c as f64
}

fn helper(x: f64) -> f64 {
    x
}

fn main() {}
