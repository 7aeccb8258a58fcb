//! Elementwise activations with their first and second derivatives.
//!
//! Every activation gives the value, `f'` and `f''` at once; the exact Hessian needs all
//! three. Generated code names these types by their full path.

use crate::real::Real;

/// An elementwise activation `f: R -> R`, twice differentiable where it is used.
///
/// The built-in ones are below; `#[activation] fn name(x: f64) -> f64 { .. }` makes one from
/// a function, with `f'` and `f''` differentiated from its body at compile time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an activation",
    label = "not an activation",
    note = "an activation is one of Identity, Tanh, Sigmoid, Softplus, Relu, Gelu, Silu, Sin, \
            or a type made by `#[activation] fn name(x: f64) -> f64 {{ .. }}` (written `Name`)"
)]
pub trait Activation: Copy + Default + core::fmt::Debug + 'static {
    /// The name used in declarations (`Tanh`, `Relu`, ...).
    const NAME: &'static str;
    /// `f(x)`.
    fn value<T: Real>(x: T) -> T;
    /// `(f(x), f'(x))`.
    fn d1<T: Real>(x: T) -> (T, T);
    /// `(f(x), f'(x), f''(x))`.
    fn d2<T: Real>(x: T) -> (T, T, T);
}

/// The sign of `x` as used by the derivative of `abs`: `1` for `x > 0`, `-1` for `x < 0`,
/// and `0` at `x = 0` (either sign of zero: the middle of the subdifferential `[-1, 1]`, so
/// `d|x|/dx` at the kink is 0, like `Relu`'s convention of taking the derivative at a kink
/// from the flat side). NaN stays NaN.
#[inline(always)]
pub fn sign<T: Real>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        -T::ONE
    } else {
        x * T::ZERO
    }
}

macro_rules! activation {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name;
    };
}

activation!(
    /// `f(x) = x`.
    Identity
);
activation!(
    /// `f(x) = tanh x`.
    Tanh
);
activation!(
    /// `f(x) = 1 / (1 + e^-x)`.
    Sigmoid
);
activation!(
    /// `f(x) = ln(1 + e^x)`, evaluated without overflow.
    Softplus
);
activation!(
    /// `f(x) = max(x, 0)`. `f'` is taken as 0 at the kink and `f''` is 0 everywhere: the
    /// Hessian is exact away from `x = 0` and has no curvature term from this layer.
    Relu
);
activation!(
    /// GELU, tanh form: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    Gelu
);
activation!(
    /// SiLU (swish): `f(x) = x / (1 + e^-x)`.
    Silu
);
activation!(
    /// `f(x) = sin x`.
    Sin
);

impl Activation for Identity {
    const NAME: &'static str = "Identity";
    #[inline(always)]
    fn value<T: Real>(x: T) -> T {
        x
    }
    #[inline(always)]
    fn d1<T: Real>(x: T) -> (T, T) {
        (x, T::ONE)
    }
    #[inline(always)]
    fn d2<T: Real>(x: T) -> (T, T, T) {
        (x, T::ONE, T::ZERO)
    }
}

impl Activation for Tanh {
    const NAME: &'static str = "Tanh";
    #[inline(always)]
    fn value<T: Real>(x: T) -> T {
        x.tanh()
    }
    #[inline(always)]
    fn d1<T: Real>(x: T) -> (T, T) {
        let t = x.tanh();
        (t, T::ONE - t * t)
    }
    #[inline(always)]
    fn d2<T: Real>(x: T) -> (T, T, T) {
        let t = x.tanh();
        let s = T::ONE - t * t;
        (t, s, -(t + t) * s)
    }
}

/// Logistic function without overflow for large `|x|`.
#[inline(always)]
fn logistic<T: Real>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

impl Activation for Sigmoid {
    const NAME: &'static str = "Sigmoid";
    #[inline(always)]
    fn value<T: Real>(x: T) -> T {
        logistic(x)
    }
    #[inline(always)]
    fn d1<T: Real>(x: T) -> (T, T) {
        let s = logistic(x);
        (s, s * (T::ONE - s))
    }
    #[inline(always)]
    fn d2<T: Real>(x: T) -> (T, T, T) {
        let s = logistic(x);
        let ds = s * (T::ONE - s);
        (s, ds, ds * (T::ONE - s - s))
    }
}

impl Activation for Softplus {
    const NAME: &'static str = "Softplus";
    #[inline(always)]
    fn value<T: Real>(x: T) -> T {
        x.max(T::ZERO) + (-x.abs()).exp().ln_1p()
    }
    #[inline(always)]
    fn d1<T: Real>(x: T) -> (T, T) {
        (Self::value(x), logistic(x))
    }
    #[inline(always)]
    fn d2<T: Real>(x: T) -> (T, T, T) {
        let s = logistic(x);
        (Self::value(x), s, s * (T::ONE - s))
    }
}

impl Activation for Relu {
    const NAME: &'static str = "Relu";
    #[inline(always)]
    fn value<T: Real>(x: T) -> T {
        // Written so that NaN propagates (`NaN <= 0` is false).
        if x <= T::ZERO {
            T::ZERO
        } else {
            x
        }
    }
    #[inline(always)]
    fn d1<T: Real>(x: T) -> (T, T) {
        if x <= T::ZERO {
            (T::ZERO, T::ZERO)
        } else {
            (x, T::ONE)
        }
    }
    #[inline(always)]
    fn d2<T: Real>(x: T) -> (T, T, T) {
        let (f, d) = Self::d1(x);
        (f, d, T::ZERO)
    }
}

const GELU_A: f64 = 0.044715;
/// sqrt(2 / pi)
const GELU_K: f64 = 0.797_884_560_802_865_4;

impl Activation for Gelu {
    const NAME: &'static str = "Gelu";
    #[inline(always)]
    fn value<T: Real>(x: T) -> T {
        let x2 = x * x;
        let g = T::c(GELU_K) * (x + T::c(GELU_A) * x2 * x);
        T::c(0.5) * x * (T::ONE + g.tanh())
    }
    #[inline(always)]
    fn d1<T: Real>(x: T) -> (T, T) {
        let (f, d, _) = Self::d2(x);
        (f, d)
    }
    #[inline(always)]
    fn d2<T: Real>(x: T) -> (T, T, T) {
        let half = T::c(0.5);
        let k = T::c(GELU_K);
        let a = T::c(GELU_A);
        let x2 = x * x;
        let g = k * (x + a * x2 * x);
        let g1 = k * (T::ONE + T::c(3.0) * a * x2);
        let g2 = T::c(6.0) * k * a * x;
        let t = g.tanh();
        let sech2 = T::ONE - t * t;
        // Far in the tails sech^2 is exactly 0 while g' and g'' overflow: keep 0 * inf out.
        let (t1, t2) = if sech2 == T::ZERO {
            (T::ZERO, T::ZERO)
        } else {
            (sech2 * g1, sech2 * (g2 - (t + t) * g1 * g1))
        };
        let f = half * x * (T::ONE + t);
        let f1 = half * (T::ONE + t) + half * x * t1;
        let f2 = t1 + half * x * t2;
        (f, f1, f2)
    }
}

impl Activation for Silu {
    const NAME: &'static str = "Silu";
    #[inline(always)]
    fn value<T: Real>(x: T) -> T {
        x * logistic(x)
    }
    #[inline(always)]
    fn d1<T: Real>(x: T) -> (T, T) {
        let s = logistic(x);
        let ds = s * (T::ONE - s);
        (x * s, s + x * ds)
    }
    #[inline(always)]
    fn d2<T: Real>(x: T) -> (T, T, T) {
        let s = logistic(x);
        let ds = s * (T::ONE - s);
        (x * s, s + x * ds, (ds + ds) + x * ds * (T::ONE - s - s))
    }
}

impl Activation for Sin {
    const NAME: &'static str = "Sin";
    #[inline(always)]
    fn value<T: Real>(x: T) -> T {
        x.sin()
    }
    #[inline(always)]
    fn d1<T: Real>(x: T) -> (T, T) {
        let (s, c) = x.sin_cos();
        (s, c)
    }
    #[inline(always)]
    fn d2<T: Real>(x: T) -> (T, T, T) {
        let (s, c) = x.sin_cos();
        (s, c, -s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<A: Activation>() {
        let h = 1e-5;
        for i in -40..=40 {
            let x = i as f64 * 0.1 + 0.013;
            let (f, d, dd) = A::d2(x);
            assert_eq!(f, A::value(x), "{} value", A::NAME);
            assert_eq!(A::d1(x).1, d, "{} d1", A::NAME);
            let fd = (A::value(x + h) - A::value(x - h)) / (2.0 * h);
            let fdd = (A::d1(x + h).1 - A::d1(x - h).1) / (2.0 * h);
            let scale = 1.0 + f.abs();
            assert!(
                (fd - d).abs() < 1e-8 * scale,
                "{} f' at {x}: {d} vs {fd}",
                A::NAME
            );
            assert!(
                (fdd - dd).abs() < 1e-8 * scale,
                "{} f'' at {x}: {dd} vs {fdd}",
                A::NAME
            );
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        check::<Identity>();
        check::<Tanh>();
        check::<Sigmoid>();
        check::<Softplus>();
        check::<Relu>();
        check::<Gelu>();
        check::<Silu>();
        check::<Sin>();
    }

    #[test]
    fn no_overflow_at_extremes() {
        for x in [-1e300f64, -800.0, 800.0, 1e300] {
            assert!(Sigmoid::d2(x).0.is_finite());
            assert!(Softplus::d2(x).0.is_finite());
            assert!(Silu::d2(x).1.is_finite());
            let (f, d, dd) = Gelu::d2(x);
            assert!(
                f.is_finite() && d.is_finite() && dd.is_finite(),
                "gelu at {x}"
            );
        }
    }
}
