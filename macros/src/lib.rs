//! The `#[tall_skinny_net]`, `#[activation]` and `#[loss]` attributes. All logic lives in
//! `tall-skinny-codegen`; see the `tall_skinny` crate for documentation.

use proc_macro::TokenStream;

/// Generates a specialised, stack-allocated implementation of the declared chain network:
/// forward pass, loss, gradient and exact Hessian-vector product. See the `tall_skinny`
/// crate docs for the declaration syntax and for runnable examples.
///
/// ```ignore
/// use tall_skinny::prelude::*;
///
/// #[tall_skinny_net(batch = 4)]            // batch (default 1), scalar = f32 | f64 (default f64)
/// pub struct Policy {
///     inp: Dense<3, 16, Tanh>,             // act(W z + b)
///     body: [Residual<16, Tanh>; 32],      // z + act(W z + b), 32 identical layers
///     mid: DenseNoBias<16, 16, Sin>,       // act(W z)
///     head: Dense<16, 2, Identity>,
///     loss: Mse<2>,                        // or SoftmaxCrossEntropy<C>; always the last field
/// }
/// ```
///
/// (This example is `ignore`d here because this crate cannot depend on `tall_skinny`, whose
/// paths the generated code uses; the same declaration runs as a doctest of `tall_skinny`.)
///
/// # Compile errors
///
/// A wrong declaration is a compile error on the offending token that says what to write
/// instead, and every mistake of one declaration is reported in the same build. In place of
/// the struct the macro then emits a field-less struct of the same name, so code that names
/// the type sees no follow-up errors. For example, widths that do not chain:
///
/// ```compile_fail
/// use tall_skinny_macros::tall_skinny_net;
///
/// #[tall_skinny_net]
/// struct Net {
///     inp: Dense<2, 8, Tanh>,
///     out: Dense<4, 1, Identity>,
///     loss: Mse<1>,
/// }
/// # fn main() {}
/// ```
///
/// is rejected with
///
/// ```text
/// error: widths do not chain: layer `inp` gives 8 outputs but layer `out` takes 4 inputs;
///        write `out: Dense<8, 1, Identity>`, or make `inp` give 4 outputs: `Dense<2, 4, Tanh>`
///  --> src/main.rs:6:16
///   |
/// 6 |     out: Dense<4, 1, Identity>,
///   |                ^
/// ```
///
/// Other mistakes that are caught the same way: a residual that changes width
/// (`Residual<8, 16, Tanh>`), arrays whose elements change width, unknown layers,
/// activations and losses (with a "did you mean" where one is close), a loss that is
/// missing, not last or given twice, zero widths, array lengths or `batch`, generic, tuple
/// and unit structs, enums and unions, and unknown, duplicate or malformed attribute
/// arguments. The exact messages and spans are pinned by the trybuild cases in the
/// repository's `tests/ui/` (one folder per kind of mistake).
#[proc_macro_attribute]
pub fn tall_skinny_net(attr: TokenStream, item: TokenStream) -> TokenStream {
    tall_skinny_codegen::expand_or_error(attr.into(), item.into()).into()
}

/// Turns a one-argument scalar function into an activation type usable in any layer. The type
/// is named after the function in UpperCamelCase (`softsign` -> `Softsign`,
/// `scaled_tanh` -> `ScaledTanh`); `f'` and `f''` are differentiated from the body at compile
/// time and emitted as plain Rust, generic over the scalar (one definition serves `f32` and
/// `f64` networks). The function itself stays as written.
///
/// ```ignore
/// use tall_skinny::prelude::*;
///
/// #[activation]
/// fn softsign(x: f64) -> f64 {
///     x / (1.0 + x.abs())
/// }
///
/// #[tall_skinny_net]
/// struct Net { a: Dense<2, 8, Softsign>, head: Dense<8, 1, Identity>, loss: Mse<1> }
/// ```
///
/// (`ignore`d here because this crate cannot depend on `tall_skinny`; the same code runs as a
/// doctest of `tall_skinny`.)
///
/// The body may use float literals and named constants, the argument, `let` bindings,
/// `+ - * /`, unary `-`, `powi(n)` (integer literal), `powf(c)` (constant exponent), `exp`, `ln`,
/// `sqrt`, `tanh`, `sinh`, `cosh`, `sin`, `cos`, `atan`, `abs` (derivative `0` at `0`),
/// `max`/`min` against a constant, and `if`/`else` on comparisons (differentiated branch by
/// branch). Anything else is a compile error on the construct, listing what is supported:
///
/// ```compile_fail
/// use tall_skinny_macros::activation;
///
/// #[activation]
/// fn wobble(x: f64) -> f64 {
///     x.exp2() // error: the method `exp2` in #[activation] `wobble`: ...
/// }
/// # fn main() {}
/// ```
///
/// So is a wrong signature (not exactly one `f64` or `f32` argument, generics, `async`,
/// `unsafe`) and recursion. The cases are pinned by the trybuild tests in `tests/ui/custom/`.
#[proc_macro_attribute]
pub fn activation(attr: TokenStream, item: TokenStream) -> TokenStream {
    tall_skinny_codegen::expand_activation_or_error(attr.into(), item.into()).into()
}

/// Turns a function `fn name(y: f64, t: f64) -> f64` of one output `y` and its target `t`
/// into a loss type `Name<O>` for the last field of a network (`loss: Huber<1>`): applied to
/// every output, summed, and averaged over the batch, with targets `[[T; O]; B]`. `d/dy` and
/// `d2/dy2` are differentiated from the body at compile time, with the same rules as
/// [`macro@activation`].
///
/// ```ignore
/// use tall_skinny::prelude::*;
///
/// const DELTA: f64 = 1.0;
///
/// #[loss]
/// fn huber(y: f64, t: f64) -> f64 {
///     let r = y - t;
///     if r.abs() <= DELTA { 0.5 * r * r } else { DELTA * (r.abs() - 0.5 * DELTA) }
/// }
/// ```
///
/// A loss takes exactly two arguments:
///
/// ```compile_fail
/// use tall_skinny_macros::loss;
///
/// #[loss]
/// fn squared(y: f64) -> f64 { y * y }
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn loss(attr: TokenStream, item: TokenStream) -> TokenStream {
    tall_skinny_codegen::expand_loss_or_error(attr.into(), item.into()).into()
}
