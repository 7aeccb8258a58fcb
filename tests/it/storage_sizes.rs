//! The storage sizes the generated docs state (computed by the macro from the runtime's
//! layouts, `codegen/src/net/sizes.rs`) against `size_of` of the generated types, on nets of
//! every layer kind, both scalars and losses, batch 1 to 32, and the `BYTES` consts.

use std::mem::size_of;

use tall_skinny::prelude::*;
use tall_skinny_codegen::net::{ast::Net, attr::parse_args, sizes};

fn model(attr: &str, item: &str) -> Net {
    let attr: proc_macro2::TokenStream = attr
        .trim_start_matches('(')
        .trim_end_matches(')')
        .parse()
        .unwrap();
    let item: syn::Item = syn::parse_str(item).unwrap();
    Net::from_item(&item, parse_args(attr)).unwrap()
}

macro_rules! sized {
    ($name:ident, $ws:ident, $curv:ident, $ggn:ident, $attr:tt, { $($body:tt)* }) => {{
        #[tall_skinny_net $attr]
        #[allow(dead_code)]
        struct $name { $($body)* }
        let net = model(stringify!($attr), stringify!(struct $name { $($body)* }));
        let got = (size_of::<$ws>(), size_of::<$curv>(), size_of::<$ggn>());
        let want = (sizes::workspace(&net), sizes::curvature(&net), sizes::woodbury(&net));
        assert_eq!(got, want, "{}: (workspace, curvature, woodbury) size_of vs the docs", stringify!($name));
        assert_eq!(($ws::BYTES, $curv::BYTES, $ggn::BYTES), got);
        println!("{}: workspace {}, curvature {}, woodbury {}", stringify!($name), got.0, got.1, got.2);
    }};
}

#[test]
fn documented_sizes_are_the_sizes() {
    sized!(A, AWorkspace, ACurvature, AGgn, (batch = 2), {
        inp: Dense<2, 4, Tanh>, body: [Residual<4, Tanh>; 3], head: Dense<4, 1, Identity>, loss: Mse<1>,
    });
    sized!(B, BWorkspace, BCurvature, BGgn, (batch = 1, scalar = f32), {
        inp: Dense<3, 8, Gelu>, body: [Residual<8, Tanh>; 14], head: Dense<8, 2, Identity>, loss: Mse<2>,
    });
    sized!(C, CWorkspace, CCurvature, CGgn, (batch = 8, scalar = f32), {
        inp: Dense<3, 8, Tanh>, body: [Residual<8, Tanh>; 14], head: Dense<8, 2, Identity>, loss: Mse<2>,
    });
    sized!(D, DWorkspace, DCurvature, DGgn, (batch = 5), {
        a: DenseNoBias<3, 5, Sigmoid>, b: Dense<5, 7, Silu>, c: [Dense<7, 7, Softplus>; 2], d: DenseNoBias<7, 3, Identity>,
        loss: SoftmaxCrossEntropy<3>,
    });
    sized!(E, EWorkspace, ECurvature, EGgn, (batch = 32), {
        inp: Dense<1, 8, Tanh>, body: [Residual<8, Tanh>; 14], head: Dense<8, 1, Identity>, loss: Mse<1>,
    });
    // The README's table: quickstart's Policy, realtime_loop's Plant, fit_regression's
    // Regressor (E above), the embedded example's f32 Plant (C above).
    sized!(Policy, PolicyWorkspace, PolicyCurvature, PolicyGgn, (batch = 4), {
        inp: Dense<3, 16, Tanh>, body: [Residual<16, Tanh>; 32], head: Dense<16, 2, Identity>, loss: Mse<2>,
    });
    sized!(Plant, PlantWorkspace, PlantCurvature, PlantGgn, (batch = 8), {
        inp: Dense<3, 8, Tanh>, body: [Residual<8, Tanh>; 14], head: Dense<8, 2, Identity>, loss: Mse<2>,
    });
    sized!(F, FWorkspace, FCurvature, FGgn, (batch = 3, scalar = f32), {
        inp: DenseNoBias<1, 3, Relu>, loss: SoftmaxCrossEntropy<3>,
    });
}

/// Each optimizer holds its state, its vectors and exactly the storage its step needs:
/// Levenberg-Marquardt no exact-Hessian curvature (and, with the Woodbury form, no workspace),
/// the Newton methods no Gauss-Newton storage.
#[test]
fn optimizers_hold_only_their_storage() {
    use tall_skinny::runtime::optim::*;
    #[tall_skinny_net(batch = 8)]
    struct Plant {
        inp: Dense<3, 8, Tanh>,
        body: [Residual<8, Tanh>; 14],
        head: Dense<8, 2, Identity>,
        loss: Mse<2>,
    }
    let v = size_of::<[f64; Plant::N_PARAMS]>();
    let (ws, curv, ggn) = (
        size_of::<PlantWorkspace>(),
        size_of::<PlantCurvature>(),
        size_of::<PlantGgn>(),
    );
    let sizes = [
        // Woodbury form: its storage lends its own forward records to the gradient, so no
        // workspace (GnScratch is zero bytes); four vectors and the column scaling D.
        (
            "LevenbergMarquardt",
            size_of::<LevenbergMarquardt<Plant>>(),
            ggn + 5 * v,
        ),
        // Without storage for D (a RAM-bounded target): the four vectors.
        (
            "LevenbergMarquardt<_, NoScale>",
            size_of::<LevenbergMarquardt<Plant, NoScale>>(),
            ggn + 4 * v,
        ),
        (
            "DampedNewton",
            size_of::<DampedNewton<Plant>>(),
            ws + curv + 4 * v,
        ),
        (
            "TrustRegion",
            size_of::<TrustRegion<Plant>>(),
            ws + curv + 7 * v,
        ),
        // four vectors, the eigen block (2 K vectors, 2 K x K matrices, 2 K scalars), K = 8,
        // and the last search's report
        (
            "SaddleFreeNewton<_, 8>",
            size_of::<SaddleFreeNewton<Plant, 8>>(),
            ws + curv
                + (4 + 2 * 8) * v
                + (2 * 8 * 8 + 2 * 8) * size_of::<f64>()
                + size_of::<SaddleFreeInfo<f64>>(),
        ),
        ("Adam", size_of::<Adam<Plant>>(), ws + 5 * v),
        ("Sgd", size_of::<Sgd<Plant>>(), ws + 4 * v),
    ];
    for (name, got, parts) in sizes {
        println!("{name}<Plant>: {got} bytes (storage and vectors {parts})");
        // a few scalars and counters of state on top of the storage
        assert!(
            got >= parts && got <= parts + 128,
            "{name}: {got} vs {parts}"
        );
    }
}

/// `Model::gradient_gauss_newton_into` (what a Levenberg-Marquardt step calls) gives the
/// same loss and gradient as `gradient_into` and leaves the same factorable Gauss-Newton
/// storage as `gauss_newton_into`, in both forms: Woodbury (the storage's own records as
/// scratch, zero-byte `GnScratch`) and Riccati (`GnScratch` is the workspace).
#[test]
fn gradient_and_gauss_newton_in_one_call() {
    use tall_skinny::runtime::ggn::GgnMethod;
    use tall_skinny::runtime::optim::Model;
    use tall_skinny::runtime::solver::Factorization;
    use tall_skinny::runtime::ConstZero;

    fn check<
        M: Model<Input = [[f64; I]; 16], Target = [[f64; O]; 16], Scalar = f64>,
        const I: usize,
        const O: usize,
    >(
        net: &M,
        method: GgnMethod,
    ) {
        assert_eq!(M::GGN_METHOD, method);
        let x: [[f64; I]; 16] =
            core::array::from_fn(|n| core::array::from_fn(|i| ((n * I + i) as f64 * 0.37).sin()));
        let t: [[f64; O]; 16] =
            core::array::from_fn(|n| core::array::from_fn(|i| ((n * 5 + i) as f64 * 0.23).cos()));
        let mut ws = Box::new(M::Workspace::ZERO);
        let (mut g1, mut g2) = (M::Vector::ZERO, M::Vector::ZERO);
        let l1 = net.gradient_into(&mut ws, &x, &t, &mut g1).unwrap();
        let mut gn1 = Box::new(M::GaussNewton::ZERO);
        net.gauss_newton_into(&mut gn1, &x, &t).unwrap();
        let mut scratch = Box::new(M::GnScratch::ZERO);
        let mut gn2 = Box::new(M::GaussNewton::ZERO);
        let l2 = net
            .gradient_gauss_newton_into(&mut scratch, &mut gn2, &x, &t, &mut g2)
            .unwrap();
        assert_eq!(l1, l2);
        assert_eq!(g1.as_ref(), g2.as_ref());
        let (mut s1, mut s2) = (M::Vector::ZERO, M::Vector::ZERO);
        net.factor_current(&mut *gn1, 1e-2)
            .unwrap()
            .solve_refined(&g1, &mut s1, 2)
            .unwrap();
        net.factor_current(&mut *gn2, 1e-2)
            .unwrap()
            .solve_refined(&g1, &mut s2, 2)
            .unwrap();
        assert_eq!(s1.as_ref(), s2.as_ref());
        assert!(s1.as_ref().iter().any(|v| *v != 0.0));

        // A non-finite input: the error names it, a fresh storage stays empty, and a filled
        // one is not left half-overwritten under its old fingerprint (it is either emptied
        // or still solves its old problem exactly).
        let mut xb = x;
        xb[3][I - 1] = f64::NAN;
        let want = NetError::NonFiniteInput {
            sample: 3,
            index: I - 1,
        };
        let mut gn3 = Box::new(M::GaussNewton::ZERO);
        let mut g3 = M::Vector::ZERO;
        let err = net.gradient_gauss_newton_into(&mut scratch, &mut gn3, &xb, &t, &mut g3);
        assert_eq!(err.unwrap_err(), want);
        assert_eq!(
            net.factor_current(&mut *gn3, 1e-2).err(),
            Some(SolveError::NoCurvature)
        );
        let err = net.gradient_gauss_newton_into(&mut scratch, &mut gn2, &xb, &t, &mut g3);
        assert_eq!(err.unwrap_err(), want);
        match net.factor_current(&mut *gn2, 1e-2) {
            Err(e) => assert_eq!(e, SolveError::NoCurvature),
            Ok(mut f) => {
                let mut s3 = M::Vector::ZERO;
                f.solve_refined(&g1, &mut s3, 2).unwrap();
                assert_eq!(s3.as_ref(), s2.as_ref());
            }
        };
    }

    #[tall_skinny_net(batch = 16)]
    struct Wide {
        inp: Dense<3, 8, Tanh>,
        body: [Residual<8, Tanh>; 3],
        head: Dense<8, 3, Identity>,
        loss: Mse<3>,
    }
    // One output and a width-1 layer: the Riccati form is the cheaper one.
    #[tall_skinny_net(batch = 16)]
    struct Thin {
        inp: Dense<1, 1, Tanh>,
        loss: Mse<1>,
    }
    let wide = Wide::init(5);
    let thin = Thin::init(5);
    let (w, r) = (Wide::GGN_METHOD, Thin::GGN_METHOD);
    println!("Wide: {w:?}, Thin: {r:?}");
    assert_eq!(
        size_of::<<Thin as Model>::GnScratch>(),
        size_of::<ThinWorkspace>()
    );
    check(&wide, w);
    check(&thin, r);
    assert_ne!(w, r, "one net of each form");
}
