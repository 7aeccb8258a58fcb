//! A `#![no_std]` binary with its own `#[panic_handler]` and **no** `#[global_allocator]`,
//! that declares nets with `#[tall_skinny_net]` and calls the generated `gradient`, `hvp` and
//! the damped Hessian solve (`curvature_into`/`factor`/`solve_refined`, `hessian_solve`),
//! also for a net with a custom `#[activation]` and `#[loss]`, and the optimizers
//! (Levenberg-Marquardt, trust region, saddle-free Newton).
//!
//! It only builds if neither `std` nor `alloc` is linked into the generated code or the
//! runtime: see README.md in this folder. Exit code 0 means every call returned `Ok` with
//! finite, non-trivial results.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::panic::PanicInfo;

use tall_skinny::prelude::*;

#[tall_skinny_net(batch = 2)]
pub struct Regressor {
    inp: Dense<3, 8, Tanh>,
    body: [Residual<8, Tanh>; 4],
    head: Dense<8, 2, Identity>,
    loss: Mse<2>,
}

#[tall_skinny_net(batch = 2, scalar = f32)]
pub struct Classifier {
    inp: Dense<4, 6, Gelu>,
    body: [Residual<6, Sin>; 3],
    mid: DenseNoBias<6, 6, Softplus>,
    head: Dense<6, 3, Identity>,
    loss: SoftmaxCrossEntropy<3>,
}

/// A custom activation and loss (`#[activation]`, `#[loss]`): their generated derivatives
/// must not need `std` either.
#[activation]
fn softsign(x: f64) -> f64 {
    x / (1.0 + x.abs())
}

#[loss]
fn huber(y: f64, t: f64) -> f64 {
    let r = y - t;
    if r.abs() <= 1.0 { 0.5 * r * r } else { r.abs() - 0.5 }
}

#[tall_skinny_net(batch = 2)]
pub struct Custom {
    inp: Dense<3, 6, Softsign>,
    body: [Residual<6, Softsign>; 3],
    head: Dense<6, 2, Identity>,
    loss: Huber<2>,
}

// Link the C runtime (crt1's `_start` -> `__libc_start_main` -> `main` below) and libc's
// `memcpy`/`memset`, which core's codegen expects. std normally links libc itself.
#[link(name = "c")]
extern "C" {}

/// With `std` linked, this is a second `panic_impl` lang item and the build fails (E0152).
#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    // panic = "abort" in both profiles of this crate: no unwinding machinery is needed.
    loop {
        core::hint::spin_loop();
    }
}

fn dot<T: Copy + core::ops::Mul<Output = T> + core::ops::Add<Output = T>>(a: &[T], b: &[T], zero: T) -> T {
    a.iter().zip(b).fold(zero, |s, (&x, &y)| s + x * y)
}

/// 0 on success, otherwise the number of the first failed check.
fn run() -> isize {
    // --- f64, Mse, batch 2 ---
    let net = Regressor::init(black_box(3));
    let x = black_box([[0.5, -1.0, 0.25], [0.1, 0.2, 0.3]]);
    let t = black_box([[0.3, -0.1], [0.0, 0.5]]);
    let mut g = [0.0f64; Regressor::N_PARAMS];
    let loss = match net.gradient(&x, &t, &mut g) {
        Ok(l) => l,
        Err(_) => return 1,
    };
    if !(loss.is_finite() && loss > 0.0) {
        return 2;
    }
    let mut hv = [0.0f64; Regressor::N_PARAMS];
    if net.hvp(&x, &t, &g, &mut hv).is_err() {
        return 3;
    }
    let ghg = dot(&g, &hv, 0.0);
    let gg = dot(&g, &g, 0.0);
    if !(ghg.is_finite() && gg > 0.0 && ghg != 0.0) {
        return 4;
    }
    // The workspace variants, with the workspace on this stack.
    let mut ws = RegressorWorkspace::ZERO;
    let mut g2 = [0.0f64; Regressor::N_PARAMS];
    match net.gradient_in(&mut ws, &x, &t, &mut g2) {
        Ok(l) if l == loss => {}
        _ => return 5,
    }
    if g2 != g {
        return 6;
    }
    let mut hv2 = [0.0f64; Regressor::N_PARAMS];
    if net.hvp_in(&mut ws, &x, &t, &g, &mut hv2).is_err() || hv2 != hv {
        return 7;
    }
    // Bad input is a Result error, not a panic.
    let bad = [[f64::NAN, 0.0, 0.0], [0.0, 0.0, 0.0]];
    if net.gradient(&bad, &t, &mut g2).is_ok() {
        return 8;
    }

    // The damped Hessian solve, storage in a `static` (as on a microcontroller): curvature,
    // factor, solve, and the residual checked with `hvp`.
    static mut CURV: RegressorCurvature = RegressorCurvature::ZERO;
    // SAFETY: `run` is called once, from `main`, on a single thread; nothing else touches CURV.
    let curv = unsafe { &mut *core::ptr::addr_of_mut!(CURV) };
    if net.curvature_into(curv, &x, &t).is_err() {
        return 14;
    }
    let eps = 1e-2;
    let mut step = [0.0f64; Regressor::N_PARAMS];
    match curv.factor(eps) {
        Ok(mut f) => {
            if f.solve_refined(&g, &mut step, 2).is_err() || f.inertia().positive == 0 {
                return 15;
            }
        }
        Err(_) => return 15,
    }
    let mut hs = [0.0f64; Regressor::N_PARAMS];
    if net.hvp(&x, &t, &step, &mut hs).is_err() {
        return 16;
    }
    let mut r2 = 0.0;
    for i in 0..Regressor::N_PARAMS {
        let r = hs[i] + eps * step[i] - g[i];
        r2 += r * r;
    }
    if !(r2 <= 1e-20 * gg) {
        return 17;
    }

    // Optimizers: a few Levenberg-Marquardt (Gauss-Newton) and trust-region steps, each
    // optimizer (with the storage it owns) in a `static`, configured at run time; the loss
    // must go down.
    {
        use tall_skinny::runtime::optim::{LevenbergMarquardt, LmConfig, TrustRegion, TrustRegionConfig};
        static mut LM: LevenbergMarquardt<Regressor> = LevenbergMarquardt::ZERO;
        static mut TR: TrustRegion<Regressor> = TrustRegion::ZERO;
        // SAFETY: as for CURV above.
        let (lm, tr) = unsafe { (&mut *core::ptr::addr_of_mut!(LM), &mut *core::ptr::addr_of_mut!(TR)) };
        let mut fit = net.clone();
        if lm.step(&mut fit, &x, &t).is_ok() {
            return 24; // an unconfigured optimizer must refuse to step
        }
        if lm.configure(LmConfig::default()).is_err() || tr.configure(TrustRegionConfig::default()).is_err() {
            return 22;
        }
        for _ in 0..5 {
            if lm.step(&mut fit, &x, &t).is_err() {
                return 22;
            }
        }
        for _ in 0..3 {
            if tr.step(&mut fit, &x, &t).is_err() {
                return 22;
            }
        }
        // Saddle-free Newton with an 8-vector eigen block, in a `static` too.
        {
            use tall_skinny::runtime::optim::{SaddleFreeConfig, SaddleFreeNewton};
            static mut SF: SaddleFreeNewton<Regressor, 8> = SaddleFreeNewton::ZERO;
            // SAFETY: as for CURV above.
            let sf = unsafe { &mut *core::ptr::addr_of_mut!(SF) };
            if sf.configure(SaddleFreeConfig::default().with_max_negative(8)).is_err() {
                return 22;
            }
            for _ in 0..3 {
                if sf.step(&mut fit, &x, &t).is_err() {
                    return 22;
                }
            }
        }
        match fit.loss(&x, &t) {
            Ok(l) if l < 0.5 * loss => {}
            _ => return 23,
        }
    }

    // --- f32, SoftmaxCrossEntropy, batch 2 ---
    let cls = Classifier::init(black_box(11));
    let xc = black_box([[0.5f32, -1.0, 0.25, 0.75], [0.1, 0.2, 0.3, -0.4]]);
    let labels = black_box([2usize, 0]);
    let mut gc = [0.0f32; Classifier::N_PARAMS];
    let lc = match cls.gradient(&xc, &labels, &mut gc) {
        Ok(l) => l,
        Err(_) => return 9,
    };
    if !(lc.is_finite() && lc > 0.0) {
        return 10;
    }
    let mut hvc = [0.0f32; Classifier::N_PARAMS];
    if cls.hvp(&xc, &labels, &gc, &mut hvc).is_err() {
        return 11;
    }
    let c = dot(&gc, &hvc, 0.0);
    if !(c.is_finite() && c != 0.0) {
        return 12;
    }
    let mut stepc = [0.0f32; Classifier::N_PARAMS];
    if cls.hessian_solve(&xc, &labels, 1e-1, &gc, &mut stepc).is_err() {
        return 18;
    }
    if cls.gradient(&xc, &[0, 3], &mut gc).is_ok() {
        return 13; // label out of range must be an error
    }
    // --- custom activation and loss, f64 ---
    let cu = Custom::init(black_box(5));
    let mut gu = [0.0f64; Custom::N_PARAMS];
    let lu = match cu.gradient(&x, &t, &mut gu) {
        Ok(l) if l.is_finite() && l > 0.0 => l,
        _ => return 19,
    };
    let mut hvu = [0.0f64; Custom::N_PARAMS];
    if cu.hvp(&x, &t, &gu, &mut hvu).is_err() {
        return 20;
    }
    let mut stepu = [0.0f64; Custom::N_PARAMS];
    if cu.hessian_solve(&x, &t, 1e-1, &gu, &mut stepu).is_err() {
        return 21;
    }
    black_box((loss, ghg, lc, c, lu));
    0
}

/// The precompiled `core` of the stable toolchain is built with `panic = "unwind"` and its
/// unwind tables refer to this symbol. With `panic = "abort"` nothing ever unwinds, so it is
/// never called; defining it satisfies the linker (std would otherwise provide it).
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// The C runtime's entry point calls this; its return value is the process exit code.
#[no_mangle]
pub extern "C" fn main(_argc: isize, _argv: *const *const u8) -> isize {
    black_box(run())
}
