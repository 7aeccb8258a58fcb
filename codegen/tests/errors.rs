//! `tall_skinny_codegen::expand` called directly on token streams: every kind of mistake in a
//! declaration is an `Err` with a message that names the problem and the fix, several
//! mistakes come back together, and valid declarations expand to code that parses.
//!
//! Spans are checked inside the compiler, by the trybuild cases in `tests/ui/`.

use proc_macro2::TokenStream;
use quote::quote;
use tall_skinny_codegen::{expand, expand_or_error};

/// The messages of every error `expand` reports, in order.
fn errors(attr: TokenStream, item: TokenStream) -> Vec<String> {
    match expand(attr, item) {
        Ok(_) => panic!("expected the declaration to be rejected, but it expanded"),
        Err(err) => err.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// Asserts there is exactly one error and that it contains every fragment.
#[track_caller]
fn one_error(attr: TokenStream, item: TokenStream, fragments: &[&str]) -> String {
    let errs = errors(attr, item);
    assert_eq!(errs.len(), 1, "expected exactly one error, got {errs:#?}");
    let msg = &errs[0];
    for f in fragments {
        assert!(msg.contains(f), "message lacks {f:?}:\n{msg}");
    }
    assert_style(msg);
    msg.clone()
}

/// Every message starts in lower case (or with a code span / the attribute's name) and, after
/// saying what is wrong, says what to write (`write`, `add`, `move`, `remove`, `rename`,
/// `use`, `give`).
#[track_caller]
fn assert_style(msg: &str) {
    let first = msg.chars().next().expect("empty message");
    assert!(
        first.is_lowercase() || first == '`' || msg.starts_with("#[tall_skinny_net]"),
        "message should start in lower case: {msg}"
    );
    let fixes = [
        "write", "add ", "move ", "remove", "rename", "use ", "give ",
    ];
    assert!(
        fixes.iter().any(|f| msg.contains(f)),
        "message should say what to write instead: {msg}"
    );
    assert!(
        !msg.ends_with('.'),
        "messages do not end with a full stop: {msg}"
    );
}

fn net(fields: TokenStream) -> TokenStream {
    quote!(struct Net { #fields })
}

// ---- widths ------------------------------------------------------------------------------

#[test]
fn dense_widths_that_do_not_chain_name_both_layers_and_widths() {
    let msg = one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, out: Dense<4, 1, Identity>, loss: Mse<1>)),
        &[
            "widths do not chain",
            "`inp` gives 8 outputs",
            "`out` takes 4 inputs",
        ],
    );
    assert!(msg.contains("write `out: Dense<8, 1, Identity>`"), "{msg}");
    assert!(msg.contains("`Dense<2, 4, Tanh>`"), "{msg}");
}

#[test]
fn residual_array_with_the_wrong_width() {
    one_error(
        quote!(),
        net(quote!(
            inp: Dense<2, 8, Tanh>,
            body: [Residual<16, Tanh>; 4],
            head: Dense<16, 1, Identity>,
            loss: Mse<1>
        )),
        &[
            "`inp` gives 8 outputs",
            "`body` takes 16 inputs",
            // `body: [Residual<8, Tanh>; 4]` would not chain with `head`.
            "make `inp` give 16 outputs: `Dense<2, 16, Tanh>`",
        ],
    );
}

#[test]
fn chain_fixes_do_not_break_the_next_link() {
    // Giving `body` 8 inputs would also give it 8 outputs, which `head` does not take.
    let msg = one_error(
        quote!(),
        net(quote!(
            inp: Dense<2, 8, Tanh>,
            body: [Residual<16, Tanh>; 4],
            head: Dense<16, 1, Identity>,
            loss: Mse<1>
        )),
        &["make `inp` give 16 outputs: `Dense<2, 16, Tanh>`"],
    );
    assert!(!msg.contains("`body: [Residual<8, Tanh>; 4]`"), "{msg}");
    // Neither side can change alone: a layer between them.
    one_error(
        quote!(),
        net(quote!(
            inp: Dense<2, 8, Tanh>,
            a: Residual<8, Tanh>,
            b: Residual<16, Tanh>,
            head: Dense<16, 1, Identity>,
            loss: Mse<1>
        )),
        &["add a layer between them, e.g. `b_in: Dense<8, 16, Identity>` before `b`"],
    );
    // The elements of an array of dense layers feed each other: its outputs cannot change
    // alone.
    let msg = one_error(
        quote!(),
        net(quote!(
            inp: Dense<2, 8, Tanh>,
            body: [Dense<8, 8, Tanh>; 3],
            out: Dense<4, 1, Identity>,
            loss: Mse<1>
        )),
        &["write `out: Dense<8, 1, Identity>`"],
    );
    assert!(!msg.contains("make `body`"), "{msg}");
    let msg = one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, body: [Dense<8, 8, Tanh>; 3], loss: Mse<4>)),
        &["write `loss: Mse<8>`"],
    );
    assert!(!msg.contains("make `body`"), "{msg}");
}

#[test]
fn chain_after_a_residual_suggests_only_the_next_layer() {
    // Changing the residual's width would break the chain before it, so it is not offered.
    let msg = one_error(
        quote!(),
        net(quote!(
            inp: Dense<2, 8, Tanh>,
            body: Residual<8, Tanh>,
            head: Dense<4, 1, Identity>,
            loss: Mse<1>
        )),
        &[
            "`body` gives 8 outputs",
            "`head` takes 4 inputs",
            "write `head: Dense<8, 1, Identity>`",
        ],
    );
    assert!(!msg.contains("make `body`"), "{msg}");
}

#[test]
fn loss_width_must_match_the_last_layer() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<3, 16, Tanh>, head: Dense<16, 2, Identity>, loss: Mse<3>)),
        &[
            "the last layer `head` gives 2 outputs",
            "loss `loss` takes 3",
            "write `loss: Mse<2>`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(head: DenseNoBias<32, 10, Identity>, loss: SoftmaxCrossEntropy<9>)),
        &[
            "gives 10 outputs",
            "takes 9 class scores",
            "`loss: SoftmaxCrossEntropy<10>`",
        ],
    );
}

#[test]
fn residual_that_changes_width() {
    one_error(
        quote!(),
        net(quote!(
            inp: Dense<2, 8, Tanh>,
            body: [Residual<8, 16, Tanh>; 3],
            head: Dense<16, 1, Identity>,
            loss: Mse<1>
        )),
        &[
            "residual stage keeps its width",
            "write `body_in: Dense<8, 16, Tanh>, body: [Residual<16, Tanh>; 2]` to go from width 8 \
             to 16",
        ],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, body: [Residual<8, 16, Tanh>; 3], head: Dense<16, 1, Identity>, loss: Mse<1>",
        1,
        &[("body: [Residual<8, 16, Tanh>; 3]", "body_in: Dense<8, 16, Tanh>, body: [Residual<16, Tanh>; 2]", "")],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, body: [Residual<8, 16, Tanh>; 2], head: Dense<8, 1, Identity>, loss: Mse<1>",
        1,
        &[("body: [Residual<8, 16, Tanh>; 2]", "body: [Residual<8, Tanh>; 2]", "")],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, body: [Residual<8, 16, Tanh>; 2], head: Dense<16, 1, Identity>, loss: Mse<1>",
        1,
        &[("body: [Residual<8, 16, Tanh>; 2]", "body_in: Dense<8, 16, Tanh>, body: Residual<16, Tanh>", "")],
    );
}

#[test]
fn array_elements_must_map_a_width_to_itself() {
    one_error(
        quote!(),
        net(quote!(
            inp: Dense<2, 8, Tanh>,
            body: [Dense<8, 16, Tanh>; 3],
            head: Dense<16, 1, Identity>,
            loss: Mse<1>
        )),
        &[
            "maps 8 to 16",
            "`body_in: Dense<8, 16, Tanh>, body: [Dense<16, 16, Tanh>; 2]`",
        ],
    );
    // A single element may change width.
    assert!(expand(
        quote!(),
        net(quote!(body: [Dense<8, 16, Tanh>; 1], loss: Mse<16>))
    )
    .is_ok());
}

#[test]
fn widths_and_lengths_must_be_literals() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, W, Tanh>, loss: Mse<8>)),
        &["integer literals, found `W`", "named constants"],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, body: [Residual<8, Tanh>; N], loss: Mse<8>)),
        &[
            "length of an array",
            "found `N`",
            "`[Residual<8, Tanh>; 16]`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, loss: Mse<{ 4 + 4 }>)),
        &["width of a loss must be an integer literal"],
    );
}

#[test]
fn wrong_number_of_layer_arguments() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, Tanh>, loss: Mse<2>)),
        &[
            "`Dense` takes 3 arguments (inputs, outputs and an activation), found 2",
            "write `Dense<2, 2, Tanh>`",
            "`Residual<2, Tanh>`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense, loss: Mse<2>)),
        &[
            "`Dense` takes 3 arguments (inputs, outputs and an activation), found 0",
            "write `Dense<2, 2, Identity>`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 2, Tanh>, body: Residual<2>, loss: Mse<2>)),
        &[
            "`Residual` takes 2 arguments (the width it keeps and an activation), found 1",
            "the activation is missing",
            "write `Residual<2, Identity>` for no activation",
            "`Residual<2, Tanh>`",
        ],
    );
}

// ---- names -------------------------------------------------------------------------------

#[test]
fn unknown_layer() {
    one_error(
        quote!(),
        net(quote!(inp: Linear<2, 8, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1>)),
        &[
            "unknown layer or loss `Linear`",
            "write `Dense<2, 8, Tanh>`",
            "Residual<W, Act>",
        ],
    );
    let msg = one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, conv: Conv<8, 8, Relu>, loss: Mse<8>)),
        &[
            "unknown layer or loss `Conv`",
            "write one of the layers",
            "`Residual<W, Act>`",
            "`Mse<O>`",
        ],
    );
    assert!(!msg.contains("what you meant"), "{msg}");
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Identity>, act: Tanh, loss: Mse<8>)),
        &[
            "`Tanh` is an activation, not a layer",
            "write `inp: Dense<2, 8, Tanh>` and remove `act`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(inp: (Dense<2, 8, Tanh>, Dense<8, 8, Tanh>), loss: Mse<8>)),
        &["expected a layer or a loss, found `(Dense<2, 8, Tanh>, Dense<8, 8, Tanh>)`"],
    );
}

#[test]
fn unknown_activation() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, tanh>, out: Dense<8, 1, Identity>, loss: Mse<1>)),
        &[
            "unknown activation `tanh`",
            "write `Tanh`",
            "Identity, Tanh, Sigmoid",
            "`self::tanh`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, ReLU>, loss: Mse<8>)),
        &["unknown activation `ReLU`", "write `Relu`"],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Linear>, loss: Mse<8>)),
        &["unknown activation `Linear`", "write `Identity`"],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, 3>, loss: Mse<8>)),
        &[
            "expected an activation, found `3`",
            "write one of Identity, Tanh",
        ],
    );
}

#[test]
fn unknown_loss() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 3, Tanh>, loss: CrossEntropy<3>)),
        &[
            "unknown layer or loss `CrossEntropy`",
            "write `SoftmaxCrossEntropy<3>`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 3, Tanh>, loss: MSE<3>)),
        &["unknown layer or loss `MSE`", "write `Mse<3>`"],
    );
}

#[test]
fn field_names_must_not_collide() {
    one_error(
        quote!(),
        net(quote!(layer: Dense<2, 8, Tanh>, Layer: Dense<8, 1, Identity>, loss: Mse<1>)),
        &[
            "`layer` and `Layer`",
            "`OFFSET_LAYER`",
            "rename one of them",
        ],
    );
    one_error(
        quote!(),
        net(quote!(a: Dense<2, 8, Tanh>, a: Dense<8, 1, Identity>, loss: Mse<1>)),
        &["duplicate field `a`", "`a_2`"],
    );
    one_error(
        quote!(),
        net(quote!(out: Dense<2, 1, Tanh>, out: Mse<1>)),
        &["duplicate field `out`"],
    );
}

// ---- loss --------------------------------------------------------------------------------

#[test]
fn missing_loss() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, out: Dense<8, 1, Identity>)),
        &["missing loss", "add `loss: Mse<1>` after `out`"],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, out: Dense<8, 4, Identity>)),
        &["`loss: Mse<4>`", "`loss: SoftmaxCrossEntropy<4>`"],
    );
}

#[test]
fn a_misspelled_loss_is_not_also_a_missing_loss() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 1, Tanh>, loss: MSE<1>)),
        &["unknown layer or loss `MSE`", "write `Mse<1>`"],
    );
}

/// A name that is not a built-in (a typo like `Tahn` or `Mae`, or a type of the user's scope
/// like `Softsign`) is taken as the path of a custom activation or loss: the compiler then
/// resolves it, with its own "a struct with a similar name exists" hint for typos, and the
/// runtime traits' `on_unimplemented` message for a type that is no activation or loss.
/// Only other spellings of built-ins (`tanh`, `MSE`) and other libraries' names (`Linear`)
/// stay the macro's errors, since a custom type could well be called `Selu` or `Mae`.
#[test]
fn custom_activation_and_loss_paths_are_accepted() {
    for decl in [
        quote!(inp: Dense<2, 8, Softsign>, out: Dense<8, 1, acts::ScaledTanh>, loss: Mae<1>),
        quote!(inp: Dense<2, 8, Tahn>, out: [Residual<8, Selu>; 3], head: Dense<8, 2, Identity>, loss: crate::losses::Huber<2>),
    ] {
        let out = tall_skinny_codegen::expand(quote!(), net(decl.clone()))
            .unwrap_or_else(|e| panic!("{decl} was rejected: {e}"))
            .to_string();
        assert!(!out.contains(":: runtime :: Softsign") && !out.contains(":: runtime :: Tahn"));
    }
    let out = tall_skinny_codegen::expand(
        quote!(),
        net(quote!(inp: Dense<2, 8, Softsign>, loss: losses::Huber<8>)),
    )
    .unwrap()
    .to_string();
    assert!(
        out.contains("Layer < f64 , Softsign , 2 , 8 , true , false >"),
        "{out}"
    );
    assert!(out.contains("loss : losses :: Huber < 8 >"), "{out}");
    assert!(out.contains("loss : losses :: Huber :: < 8 >"), "{out}");
    // A one-argument unknown type that is not the last field is still an unknown layer.
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, l: Huber<8>, out: Dense<8, 1, Identity>, loss: Mse<1>)),
        &["unknown layer or loss `Huber`", "must be the last field"],
    );
}

#[test]
fn loss_not_last() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, loss: Mse<1>, out: Dense<8, 1, Identity>)),
        &[
            "the loss must be the last field",
            "layer `out` comes after",
            "move `loss: Mse<1>` below `out`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(loss: Mse<1>, inp: Dense<2, 8, Tanh>, out: Dense<8, 1, Identity>)),
        &["layers `inp` and `out` come after"],
    );
}

#[test]
fn two_losses() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 1, Tanh>, loss: Mse<1>, loss2: Mse<1>)),
        &["one loss", "`loss: Mse<1>` already is it", "remove `loss2`"],
    );
}

#[test]
fn only_a_loss() {
    one_error(
        quote!(),
        net(quote!(loss: Mse<3>)),
        &[
            "at least one layer before the loss",
            "`out: Dense<2, 3, Identity>`",
        ],
    );
}

#[test]
fn loss_shapes() {
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 1, Tanh>, loss: SoftmaxCrossEntropy<1>)),
        &[
            "over 1 class is constant",
            "`Dense<2, 2, Tanh>`",
            "`loss: SoftmaxCrossEntropy<2>`",
            "`Mse<1>`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 1, Tanh>, loss: [Mse<1>; 2])),
        &["a loss cannot be an array", "write `loss: Mse<1>`"],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 1, Tanh>, loss: Mse<8, 1>)),
        &[
            "`Mse` takes 1 argument (its number of outputs), found 2",
            "write `Mse<1>`",
        ],
    );
}

// ---- shape of the item -------------------------------------------------------------------

#[test]
fn generics() {
    one_error(
        quote!(),
        quote!(
            struct Net<T> {
                inp: Dense<2, 1, Tanh>,
                loss: Mse<1>,
            }
        ),
        &["cannot be generic", "remove `<T>`", "scalar = f32"],
    );
    one_error(
        quote!(),
        quote!(
            struct Net<'a, const N: usize> {
                inp: Dense<2, 1, Tanh>,
                loss: Mse<1>,
            }
        ),
        &["remove `<'a, const N: usize>`"],
    );
    one_error(
        quote!(),
        quote!(
            struct Net
            where
                u8: Copy,
            {
                inp: Dense<2, 1, Tanh>,
                loss: Mse<1>,
            }
        ),
        &["`where` clause", "remove it"],
    );
}

#[test]
fn tuple_unit_and_empty_structs() {
    one_error(
        quote!(),
        quote!(struct Net(Dense<2, 8, Tanh>, Dense<8, 1, Identity>, Mse<1>);),
        &["named fields", "tuple struct", "`struct Net { layer0: Dense<2, 8, Tanh>, layer1: Dense<8, 1, Identity>, loss: Mse<1> }`"],
    );
    one_error(
        quote!(),
        quote!(
            struct Net;
        ),
        &["a network needs fields", "struct Net {"],
    );
    one_error(
        quote!(),
        quote!(
            struct Net {}
        ),
        &["at least one layer and a loss"],
    );
}

#[test]
fn enums_unions_and_other_items() {
    one_error(
        quote!(),
        quote!(
            enum Net {
                A,
                B,
            }
        ),
        &["an enum cannot be a network", "struct Net {"],
    );
    one_error(
        quote!(),
        quote!(union Net { a: u32, b: f32 }),
        &["a union cannot be a network"],
    );
    one_error(
        quote!(),
        quote!(
            fn net() {}
        ),
        &["a function cannot be a network"],
    );
    one_error(
        quote!(),
        quote!(
            type Net = u8;
        ),
        &["a type alias cannot be a network"],
    );
}

// ---- attribute arguments -----------------------------------------------------------------

fn good() -> TokenStream {
    net(quote!(inp: Dense<2, 8, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1>))
}

#[test]
fn unknown_arguments() {
    one_error(
        quote!(batch_size = 4),
        good(),
        &[
            "unknown argument `batch_size`",
            "write `batch = 4`",
            "`batch = N`",
            "`scalar = f32 | f64`",
        ],
    );
    let msg = one_error(
        quote!(precision = f32),
        good(),
        &["unknown argument `precision`", "or remove it"],
    );
    assert!(!msg.contains("what you meant"), "{msg}");
    one_error(
        quote!(foo::batch = 4),
        good(),
        &["unknown argument `foo::batch`"],
    );
}

#[test]
fn duplicate_arguments() {
    one_error(
        quote!(batch = 4, scalar = f32, batch = 8),
        good(),
        &["duplicate argument `batch`", "already given as `batch = 4`"],
    );
    one_error(
        quote!(scalar = f32, scalar = f64),
        good(),
        &[
            "duplicate argument `scalar`",
            "already given as `scalar = f32`",
        ],
    );
}

#[test]
fn bad_argument_values() {
    one_error(
        quote!(scalar = f16),
        good(),
        &["`scalar` must be `f32` or `f64`, found `f16`"],
    );
    one_error(
        quote!(batch = "4"),
        good(),
        &["found `\"4\"`", "without quotes: `batch = 4`"],
    );
    one_error(
        quote!(scalar = "f32"),
        good(),
        &["without quotes: `scalar = f32`"],
    );
    one_error(
        quote!(batch = -1),
        good(),
        &["positive integer literal", "`batch = 8`"],
    );
    one_error(quote!(batch = 4u8), good(), &["found `4u8`"]);
    assert!(expand(quote!(batch = 4usize), good()).is_ok());
    one_error(
        quote!(batch),
        good(),
        &["argument `batch` needs a value", "`batch = 4`"],
    );
    one_error(
        quote!(scalar),
        good(),
        &["argument `scalar` needs a value", "`scalar = f32`"],
    );
    one_error(
        quote!(batch(4)),
        good(),
        &["not `batch(..)`", "`batch = 4`"],
    );
    one_error(
        quote!(batch = 4 scalar = f32),
        good(),
        &["expected `,`", "separated by commas"],
    );
}

// ---- zeros -------------------------------------------------------------------------------

#[test]
fn zeros() {
    one_error(
        quote!(batch = 0),
        good(),
        &["`batch` must be at least 1", "found 0", "`batch = 1`"],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<0, 8, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1>)),
        &[
            "layer `inp`",
            "at least 1 input, found 0",
            "`inp: Dense<1, 8, Tanh>`",
        ],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, out: Dense<0, 1, Identity>, loss: Mse<1>)),
        &[
            "at least 1 input, found 0",
            "`out: Dense<8, 1, Identity>`",
            "the 8 outputs of `inp`",
        ],
    );
    one_error(
        quote!(),
        net(
            quote!(inp: Dense<2, 8, Tanh>, mid: DenseNoBias<8, 0, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1>),
        ),
        &[
            "layer `mid`",
            "at least 1 output, found 0",
            "`mid: DenseNoBias<8, 8, Tanh>`",
        ],
    );
    one_error(
        quote!(),
        net(
            quote!(inp: Dense<2, 8, Tanh>, body: Residual<0, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1>),
        ),
        &[
            "`Residual` layer needs a width of at least 1, found 0",
            "`body: Residual<8, Tanh>`",
        ],
    );
    one_error(
        quote!(),
        net(
            quote!(inp: Dense<2, 8, Tanh>, body: [Residual<8, Tanh>; 0], out: Dense<8, 1, Identity>, loss: Mse<1>),
        ),
        &[
            "at least 1 element, found 0",
            "`[Residual<8, Tanh>; 4]`",
            "remove the field",
        ],
    );
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<0>)),
        &[
            "loss `loss`",
            "width of at least 1, found 0",
            "`loss: Mse<1>`",
            "the 1 output of `out`",
        ],
    );
}

#[test]
fn too_many_parameters_is_an_error_not_a_panic() {
    let big = quote!(18446744073709551615);
    one_error(
        quote!(),
        net(quote!(inp: Dense<#big, #big, Tanh>, loss: Mse<#big>)),
        &["more parameters than fit in a `usize`"],
    );
}

// ---- several errors at once --------------------------------------------------------------

#[test]
fn attribute_and_field_errors_come_together() {
    let errs = errors(
        quote!(batch = 0, precision = f32),
        net(quote!(
            inp: Dense<2, 8, tanh>,
            body: [Residual<16, Tanh>; 4],
            head: Dense<16, 2, Identity>,
            loss: Mse<3>
        )),
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(errs[0].contains("`batch` must be at least 1"));
    assert!(errs[1].contains("unknown argument `precision`"));
    assert!(errs[2].contains("unknown activation `tanh`"));
    // The width checks still run on the layer with the bad activation, and show the
    // activation that was probably meant.
    assert!(errs[3].contains("`inp` gives 8 outputs") && errs[3].contains("`Dense<2, 16, Tanh>`"));
    assert!(errs[4].contains("`head` gives 2 outputs"));
    errs.iter().for_each(|m| assert_style(m));
}

#[test]
fn several_field_errors_come_together_without_guesses_across_broken_fields() {
    let errs = errors(
        quote!(batch = 4),
        net(quote!(
            inp: Dense<0, 8, Tanh>,
            body: [Residual<8, Tanh>; 0],
            mid: Dense<4, 4, Sigmoid>,
            conv: Conv<4, 4>,
            head: Dense<5, 2, Identity>,
            loss: SoftmaxCrossEntropy<3>
        )),
    );
    // conv did not parse, so mid -> conv -> head is not checked (head takes 5, mid gives 4).
    assert_eq!(errs.len(), 5, "{errs:#?}");
    let all = errs.join("\n");
    for f in [
        "unknown layer or loss `Conv`",
        "layer `inp`: a `Dense` layer needs at least 1 input",
        "at least 1 element, found 0",
        "`body` gives 8 outputs but layer `mid` takes 4 inputs",
        "`head` gives 2 outputs but the loss `loss` takes 3 class scores",
    ] {
        assert!(all.contains(f), "missing {f:?} in {all}");
    }
    assert!(!all.contains("`mid` gives"), "{all}");
    assert!(!all.contains("missing loss"), "{all}");
}

#[test]
fn shape_argument_and_field_errors_come_together() {
    let errs = errors(
        quote!(scalar = f16),
        quote!(
            struct Net<T> {
                inp: Dense<2, 8, Tanh>,
                out: Residual<8, 4, Tanh>,
                loss: Mse<4>,
                extra: Mse<4>,
            }
        ),
    );
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].contains("`scalar` must be"));
    assert!(errs[1].contains("cannot be generic"));
    assert!(errs[2].contains("residual stage keeps its width"));
    assert!(errs[3].contains("remove `extra`"));
}

#[test]
fn a_misplaced_loss_is_not_also_a_width_error() {
    // Once the loss moves last it will be checked against `out`; until then, one message.
    one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, loss: Mse<8>, out: Dense<8, 1, Identity>)),
        &["must be the last field"],
    );
}

#[test]
fn zero_widths_are_not_also_chain_errors() {
    let errs = errors(
        quote!(),
        net(quote!(inp: Dense<2, 0, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1>)),
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

// ---- the stand-in on error ---------------------------------------------------------------

#[test]
fn on_error_the_macro_emits_the_errors_and_a_field_less_struct() {
    let out = expand_or_error(
        quote!(batch = 0),
        quote!(
            pub struct Net {
                inp: Dense<2, 8, tanh>,
                loss: Mse<8>,
            }
        ),
    );
    let file: syn::File = syn::parse2(out).expect("the error output parses");
    let mut compile_errors = 0;
    let mut structs = Vec::new();
    for item in &file.items {
        match item {
            syn::Item::Macro(m)
                if m.mac
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "compile_error") =>
            {
                compile_errors += 1
            }
            syn::Item::Struct(s) => structs.push(s),
            other => panic!("unexpected item {}", quote!(#other)),
        }
    }
    assert_eq!(compile_errors, 2);
    assert_eq!(structs.len(), 1);
    assert_eq!(structs[0].ident, "Net");
    assert!(matches!(structs[0].vis, syn::Visibility::Public(_)));
    assert!(structs[0].fields.is_empty());
}

// ---- valid declarations ------------------------------------------------------------------

#[track_caller]
fn expands(attr: TokenStream, item: TokenStream) -> syn::File {
    let out = expand(attr, item).unwrap_or_else(|e| panic!("rejected: {e}"));
    syn::parse2::<syn::File>(out).expect("the expansion parses as a file")
}

#[test]
fn valid_declarations_expand_to_code_that_parses() {
    let cases = [
        (quote!(), good()),
        (
            quote!(batch = 4),
            net(quote!(
                inp: Dense<3, 16, Tanh>,
                body: [Residual<16, Tanh>; 32],
                mid: DenseNoBias<16, 16, Sin>,
                head: Dense<16, 2, Identity>,
                loss: Mse<2>
            )),
        ),
        (
            quote!(scalar = f32, batch = 3,),
            net(quote!(
                a: Dense<4, 8, Identity>,
                b: Residual<8, Tanh>,
                c: Residual<8, Sigmoid>,
                d: Residual<8, Softplus>,
                e: Residual<8, Relu>,
                f: Residual<8, Gelu>,
                g: Residual<8, Silu>,
                h: [Residual<8, Sin>; 2],
                head: DenseNoBias<8, 3, Identity>,
                loss: SoftmaxCrossEntropy<3>
            )),
        ),
        (
            quote!(scalar = f64),
            quote!(
                /// Docs pass through.
                pub(crate) struct Tiny {
                    /// A layer.
                    pub r#in: [Dense<1, 1, tall_skinny::prelude::Identity>; 1],
                    pub loss: tall_skinny::prelude::Mse<1>,
                }
            ),
        ),
    ];
    for (attr, item) in cases {
        let file = expands(attr, item.clone());
        let name = match syn::parse2::<syn::ItemStruct>(item) {
            Ok(s) => s.ident,
            Err(e) => panic!("{e}"),
        };
        let has_struct = file
            .items
            .iter()
            .any(|i| matches!(i, syn::Item::Struct(s) if s.ident == name));
        assert!(has_struct, "no struct `{name}` in the expansion");
        let ws = quote::format_ident!("{}Workspace", name);
        let has_ws = file
            .items
            .iter()
            .any(|i| matches!(i, syn::Item::Type(s) if s.ident == ws));
        assert!(has_ws, "no `{ws}` in the expansion");
    }
}

#[test]
fn the_model_reports_sizes() {
    use tall_skinny_codegen::net::{ast::Net, attr::parse_args};
    let item: syn::Item = syn::parse2(net(quote!(
        inp: Dense<3, 16, Tanh>,
        body: [Residual<16, Tanh>; 32],
        mid: DenseNoBias<16, 16, Sin>,
        head: Dense<16, 2, Identity>,
        loss: Mse<2>
    )))
    .unwrap();
    let net =
        Net::from_item(&item, parse_args(quote!(batch = 4))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(net.batch, 4);
    assert_eq!(net.depth(), 1 + 32 + 1 + 1);
    assert_eq!(
        net.n_params(),
        (3 * 16 + 16) + 32 * (16 * 16 + 16) + 16 * 16 + (16 * 2 + 2)
    );
}

// ---- every suggested fix is valid --------------------------------------------------------

/// A declaration with mistakes, with the fixes its messages suggest. Each fix is
/// `(old, new, quoted)`: the messages must contain `quoted` (the backticked `new` when
/// `quoted` is empty), and the declaration with every `old` replaced by its `new` must expand.
/// `errors` is how many messages the declaration gets.
#[track_caller]
fn fixes_are_valid(fields: &str, errors_expected: usize, fixes: &[(&str, &str, &str)]) {
    let parse = |s: &str| -> TokenStream {
        format!("struct Net {{ {s} }}")
            .parse()
            .unwrap_or_else(|e| panic!("{s} does not tokenise: {e}"))
    };
    let errs = errors(quote!(), parse(fields));
    assert_eq!(
        errs.len(),
        errors_expected,
        "{fields}: expected {errors_expected} errors, got {errs:#?}"
    );
    errs.iter().for_each(|m| assert_style(m));
    let all = errs.join("\n");
    let mut fixed = fields.to_string();
    for (old, new, quoted) in fixes {
        let quoted = if quoted.is_empty() {
            format!("`{new}`")
        } else {
            quoted.to_string()
        };
        assert!(
            all.contains(&quoted),
            "{fields}: no message suggests {quoted}:\n{all}"
        );
        assert!(fixed.contains(old), "{fixed} lacks {old:?}");
        fixed = fixed.replacen(old, new, 1);
    }
    if let Err(e) = expand(quote!(), parse(&fixed)) {
        let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        panic!("{fields}\nfixed as suggested to\n{fixed}\nis still rejected: {msgs:#?}\n(the messages were {errs:#?})");
    }
}

#[test]
fn a_missing_activation_suggests_a_valid_layer() {
    for (decl, fix) in [
        ("Dense<8, 8>", "Dense<8, 8, Identity>"),
        ("Dense<8, 8>", "Dense<8, 8, Tanh>"),
        ("DenseNoBias<8, 8>", "DenseNoBias<8, 8, Identity>"),
        ("Linear<8, 8>", "Dense<8, 8, Identity>"),
        ("linear<8, 8>", "Dense<8, 8, Identity>"),
        ("Fc<8, 8>", "Dense<8, 8, Identity>"),
        ("Desne<8, 8>", "Dense<8, 8, Identity>"),
        ("Dense<8>", "Dense<8, 8, Identity>"),
        ("Dense", "Dense<8, 8, Identity>"),
        ("Linear<8>", "Dense<8, 8, Identity>"),
        ("Linear", "Dense<8, 8, Identity>"),
        ("Linear<8, 8, Tanh>", "Dense<8, 8, Tanh>"),
        ("Dense<8, 8, Tanh, 3>", "Dense<8, 8, Tanh>"),
        ("Dense<8, 8, 3>", "inp: Dense<8, 8, Identity>"),
    ] {
        let fields = format!("inp: Dense<2, 8, Tanh>, mid: {decl}, loss: Mse<8>");
        let (quoted, fix) = match fix.strip_prefix("inp: ") {
            Some(f) => (format!("`mid: {f}`"), f),
            None => (format!("`{fix}`"), fix),
        };
        let (old, new) = (format!("mid: {decl},"), format!("mid: {fix},"));
        fixes_are_valid(&fields, 1, &[(&old, &new, &quoted)]);
    }
}

#[test]
fn arity_mistakes_suggest_valid_layers_that_chain() {
    // One width and an activation: the other width is the neighbours'.
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, mid: Dense<8, Tanh>, head: Dense<4, 1, Identity>, loss: Mse<1>",
        1,
        &[("Dense<8, Tanh>", "Dense<8, 4, Tanh>", "")],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, mid: Dense<4, Tanh>, head: Dense<4, 1, Identity>, loss: Mse<1>",
        1,
        &[("Dense<4, Tanh>", "Dense<8, 4, Tanh>", "")],
    );
    fixes_are_valid(
        "inp: Dense<2, Tanh>, loss: Mse<2>",
        1,
        &[("Dense<2, Tanh>", "Dense<2, 2, Tanh>", "")],
    );
    fixes_are_valid(
        "inp: Dense<2, Tanh>, loss: Mse<2>",
        1,
        &[("Dense<2, Tanh>", "Residual<2, Tanh>", "")],
    );
    for (decl, fix) in [
        ("Residual<8>", "Residual<8, Identity>"),
        ("Residual<8>", "Residual<8, Tanh>"),
        ("Residual", "Residual<8, Identity>"),
        ("Residual<8, 8, 8>", "Residual<8, Identity>"),
        ("Residual<8, 8, Tanh>", "Residual<8, Tanh>"),
        ("Skip<8>", "Residual<8, Identity>"),
        ("ResBlock<8, Tanh>", "Residual<8, Tanh>"),
        ("[Residual<8>; 3]", "[Residual<8, Identity>; 3]"),
    ] {
        let fields = format!("inp: Dense<2, 8, Tanh>, body: {decl}, loss: Mse<8>");
        let old = decl.trim_start_matches('[').split(';').next().unwrap();
        let new = fix.trim_start_matches('[').split(';').next().unwrap();
        fixes_are_valid(&fields, 1, &[(old, new, "")]);
    }
    // Two widths: a residual keeps its width, a dense layer changes it; what chains with the
    // next field is offered.
    for (decl, act) in [
        ("Residual<8, 16>", "Identity"),
        ("Residual<8, 16, Tanh>", "Tanh"),
    ] {
        let dense = format!("Dense<8, 16, {act}>");
        let residual = format!("Residual<8, {act}>");
        let fields = format!("inp: Dense<2, 8, Tanh>, body: {decl}, loss: Mse<16>");
        fixes_are_valid(&fields, 1, &[(decl, &dense, "")]);
        let msg = one_error(quote!(), fields.parse().map(net).unwrap(), &[]);
        assert!(!msg.contains(&residual), "{msg}");
        let fields = format!("inp: Dense<2, 8, Tanh>, body: {decl}, loss: Mse<8>");
        fixes_are_valid(&fields, 1, &[(decl, &residual, "")]);
        let msg = one_error(quote!(), fields.parse().map(net).unwrap(), &[]);
        assert!(!msg.contains(&dense), "{msg}");
        // Neither neighbour decides: both.
        let fields = format!("inp: Dense<2, 8, Tanh>, body: {decl}, loss: Mse<4>");
        one_error(
            quote!(),
            fields.parse().map(net).unwrap(),
            &[&dense, &residual],
        );
    }
}

#[test]
fn non_literal_widths_suggest_literals() {
    fixes_are_valid(
        "inp: Dense<2, W, Tanh>, loss: Mse<8>",
        1,
        &[("Dense<2, W, Tanh>", "Dense<2, 8, Tanh>", "")],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, mid: Dense<W, 4, Tanh>, loss: Mse<4>",
        1,
        &[("Dense<W, 4, Tanh>", "Dense<8, 4, Tanh>", "")],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, body: [Residual<8, Tanh>; N], loss: Mse<8>",
        1,
        &[("[Residual<8, Tanh>; N]", "[Residual<8, Tanh>; 16]", "")],
    );
    // The length and the element are both wrong: two errors, and both fixes together.
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, body: [Linear<8, 8>; N], loss: Mse<8>",
        2,
        &[
            ("N]", "16]", "`16`"),
            ("Linear<8, 8>", "Dense<8, 8, Identity>", ""),
        ],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, loss: Mse<W>",
        1,
        &[("Mse<W>", "Mse<8>", "")],
    );
}

#[test]
fn misspelled_and_misshapen_losses_suggest_valid_losses() {
    for (decl, fix) in [
        ("Mse", "Mse<3>"),
        ("Mse<3, 1>", "Mse<3>"),
        ("MSE<3>", "Mse<3>"),
        ("MSELoss<3>", "Mse<3>"),
        ("MeanSquaredError", "Mse<3>"),
        ("SoftmaxCrossEntropy", "SoftmaxCrossEntropy<3>"),
        ("CrossEntropy<3>", "SoftmaxCrossEntropy<3>"),
        ("CrossEntropyLoss", "SoftmaxCrossEntropy<3>"),
        ("CrossEntropyLoss<3>", "SoftmaxCrossEntropy<3>"),
        ("NLLLoss<3>", "SoftmaxCrossEntropy<3>"),
        ("CategoricalCrossentropy<3>", "SoftmaxCrossEntropy<3>"),
        ("SparseCategoricalCrossentropy<3>", "SoftmaxCrossEntropy<3>"),
        ("Softmax<3>", "SoftmaxCrossEntropy<3>"),
        ("Softmax", "SoftmaxCrossEntropy<3>"),
        ("LogSoftmax<3>", "SoftmaxCrossEntropy<3>"),
    ] {
        let fields = format!("inp: Dense<2, 8, Tanh>, head: Dense<8, 3, Identity>, loss: {decl}");
        fixes_are_valid(&fields, 1, &[(decl, fix, "")]);
    }
    fixes_are_valid(
        "inp: Dense<2, 3, Tanh>, loss: [Mse<3>; 2]",
        1,
        &[("[Mse<3>; 2]", "Mse<3>", "`loss: Mse<3>`")],
    );
    fixes_are_valid(
        "inp: Dense<2, 3, Tanh>, loss: [Mse<3>; N]",
        1,
        &[("[Mse<3>; N]", "Mse<3>", "`loss: Mse<3>`")],
    );
}

#[test]
fn a_softmax_activation_points_to_softmax_cross_entropy() {
    let head = (
        "Dense<8, 3, Softmax>",
        "Dense<8, 3, Identity>",
        "`head: Dense<8, 3, Identity>`",
    );
    // The loss already is the softmax cross-entropy: only the head changes.
    let msg = one_error(
        quote!(),
        net(
            quote!(inp: Dense<2, 8, Tanh>, head: Dense<8, 3, Softmax>, loss: SoftmaxCrossEntropy<3>),
        ),
        &[
            "`Softmax` is not an activation",
            "part of the loss `SoftmaxCrossEntropy`",
        ],
    );
    assert!(!msg.contains("loss: SoftmaxCrossEntropy<3>"), "{msg}");
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, head: Dense<8, 3, Softmax>, loss: SoftmaxCrossEntropy<3>",
        1,
        &[head],
    );
    // Another loss: both change, in one message.
    for loss in ["Mse<3>", "Huber<3>"] {
        fixes_are_valid(
            &format!("inp: Dense<2, 8, Tanh>, head: Dense<8, 3, Softmax>, loss: {loss}"),
            1,
            &[
                head,
                (
                    loss,
                    "SoftmaxCrossEntropy<3>",
                    "`loss: SoftmaxCrossEntropy<3>`",
                ),
            ],
        );
    }
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, head: Dense<8, 3, softmax>, loss: Mse<3>",
        1,
        &[
            ("softmax", "Identity", "`head: Dense<8, 3, Identity>`"),
            (
                "Mse<3>",
                "SoftmaxCrossEntropy<3>",
                "`loss: SoftmaxCrossEntropy<3>`",
            ),
        ],
    );
    // PyTorch's log-softmax with NLL: the loss's name is its own error.
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, head: Dense<8, 3, LogSoftmax>, loss: NLLLoss<3>",
        2,
        &[
            ("LogSoftmax", "Identity", "`head: Dense<8, 3, Identity>`"),
            (
                "NLLLoss<3>",
                "SoftmaxCrossEntropy<3>",
                "`SoftmaxCrossEntropy<3>`",
            ),
        ],
    );
    // A softmax over one output is constant: two classes.
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, head: Dense<8, 1, Softmax>, loss: Mse<1>",
        1,
        &[
            (
                "Dense<8, 1, Softmax>",
                "Dense<8, 2, Identity>",
                "`head: Dense<8, 2, Identity>`",
            ),
            (
                "Mse<1>",
                "SoftmaxCrossEntropy<2>",
                "`loss: SoftmaxCrossEntropy<2>`",
            ),
        ],
    );
    // An array head.
    fixes_are_valid(
        "inp: Dense<2, 3, Tanh>, head: [Dense<3, 3, Softmax>; 2], loss: Mse<3>",
        1,
        &[
            ("Softmax", "Identity", "`head: [Dense<3, 3, Identity>; 2]`"),
            (
                "Mse<3>",
                "SoftmaxCrossEntropy<3>",
                "`loss: SoftmaxCrossEntropy<3>`",
            ),
        ],
    );
    // On a hidden layer there is no softmax.
    fixes_are_valid(
        "inp: Dense<2, 8, Softmax>, head: Dense<8, 3, Identity>, loss: SoftmaxCrossEntropy<3>",
        1,
        &[("Softmax", "Tanh", "`inp: Dense<2, 8, Tanh>`")],
    );
    // The last field, with the loss missing.
    let errs = errors(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, head: Dense<8, 3, Softmax>)),
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].contains("add `loss: SoftmaxCrossEntropy<3>` after `head`"),
        "{errs:#?}"
    );
    assert!(errs[1].contains("missing loss"), "{errs:#?}");
}

#[test]
fn a_softmax_field_points_to_softmax_cross_entropy() {
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, head: Dense<8, 3, Identity>, probs: Softmax, loss: SoftmaxCrossEntropy<3>",
        1,
        &[("probs: Softmax, ", "", "remove `probs`")],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, head: Dense<8, 3, Identity>, probs: LogSoftmax, loss: Mse<3>",
        1,
        &[
            ("probs: LogSoftmax, ", "", "remove `probs`"),
            (
                "Mse<3>",
                "SoftmaxCrossEntropy<3>",
                "`loss: SoftmaxCrossEntropy<3>`",
            ),
        ],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, s: Softmax, head: Dense<8, 3, Identity>, loss: Mse<3>",
        1,
        &[("s: Softmax, ", "", "remove `s`")],
    );
}

#[test]
fn binary_cross_entropy_points_to_two_classes() {
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, head: Dense<8, 1, Sigmoid>, loss: BCELoss<1>",
        1,
        &[
            (
                "Dense<8, 1, Sigmoid>",
                "Dense<8, 2, Identity>",
                "`head: Dense<8, 2, Identity>`",
            ),
            (
                "BCELoss<1>",
                "SoftmaxCrossEntropy<2>",
                "`loss: SoftmaxCrossEntropy<2>`",
            ),
        ],
    );
    // Several binary outputs: a `#[loss]` of its own, which expands.
    let msg = one_error(
        quote!(),
        net(quote!(inp: Dense<2, 8, Tanh>, head: Dense<8, 3, Sigmoid>, loss: BCEWithLogitsLoss<3>)),
        &[
            "`head: Dense<8, 3, Identity>`",
            "`loss: BceWithLogits<3>`",
            "#[loss] fn bce_with_logits",
        ],
    );
    let code = msg
        .split("`#[loss] ")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .expect("the function is quoted");
    tall_skinny_codegen::expand_loss(quote!(), code.parse().unwrap())
        .unwrap_or_else(|e| panic!("the suggested `{code}` is rejected: {e}"));
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, head: Dense<8, 3, Sigmoid>, loss: BCEWithLogitsLoss<3>",
        1,
        &[
            ("Sigmoid", "Identity", "`head: Dense<8, 3, Identity>`"),
            (
                "BCEWithLogitsLoss<3>",
                "BceWithLogits<3>",
                "`loss: BceWithLogits<3>`",
            ),
        ],
    );
    // A `#[loss]` of the user's own with a similar name is not taken for it.
    assert!(expand(
        quote!(),
        net(quote!(inp: Dense<2, 1, Tanh>, loss: BceLoss<1>))
    )
    .is_ok());
}

#[test]
fn an_activation_as_a_field_goes_inside_a_layer() {
    // After a layer without an activation: that layer takes it (as in sequential models).
    fixes_are_valid(
        "inp: Dense<2, 8, Identity>, act: Tanh, head: Dense<8, 1, Identity>, loss: Mse<1>",
        1,
        &[(
            "inp: Dense<2, 8, Identity>, act: Tanh",
            "inp: Dense<2, 8, Tanh>",
            "`inp: Dense<2, 8, Tanh>` and remove `act`",
        )],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, Identity>, act: ReLU, head: Dense<8, 1, Identity>, loss: Mse<1>",
        1,
        &[(
            "inp: Dense<2, 8, Identity>, act: ReLU",
            "inp: Dense<2, 8, Relu>",
            "`inp: Dense<2, 8, Relu>` and remove `act`",
        )],
    );
    // Else a layer of its own that chains.
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, act: Relu, head: Dense<8, 1, Identity>, loss: Mse<1>",
        1,
        &[("act: Relu", "act: Dense<8, 8, Relu>", "")],
    );
}

#[test]
fn activation_spellings_suggest_valid_activations() {
    for (act, fix) in [
        ("tanh", "Tanh"),
        ("ReLU", "Relu"),
        ("GELU", "Gelu"),
        ("SiLU", "Silu"),
        ("Swish", "Silu"),
        ("Linear", "Identity"),
        ("None", "Identity"),
        ("Logistic", "Sigmoid"),
    ] {
        let fields = format!("inp: Dense<2, 8, {act}>, loss: Mse<8>");
        fixes_are_valid(&fields, 1, &[(act, fix, "")]);
    }
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh<3>>, loss: Mse<8>",
        1,
        &[("Tanh<3>", "Tanh", "`Tanh`")],
    );
    fixes_are_valid(
        "inp: Dense<2, 8, 3>, loss: Mse<8>",
        1,
        &[("3>", "Identity>", "`inp: Dense<2, 8, Identity>`")],
    );
}

#[test]
fn width_fixes_are_valid() {
    // Both ways to make widths chain.
    let decl = "inp: Dense<2, 8, Tanh>, out: Dense<4, 1, Identity>, loss: Mse<1>";
    fixes_are_valid(
        decl,
        1,
        &[(
            "Dense<4, 1, Identity>",
            "Dense<8, 1, Identity>",
            "`out: Dense<8, 1, Identity>`",
        )],
    );
    fixes_are_valid(decl, 1, &[("Dense<2, 8, Tanh>", "Dense<2, 4, Tanh>", "")]);
    let decl = "inp: Dense<3, 16, Tanh>, head: Dense<16, 2, Identity>, loss: Mse<3>";
    fixes_are_valid(decl, 1, &[("Mse<3>", "Mse<2>", "`loss: Mse<2>`")]);
    fixes_are_valid(
        decl,
        1,
        &[("Dense<16, 2, Identity>", "Dense<16, 3, Identity>", "")],
    );
    // An array of dense layers cannot change its outputs alone: only the next layer changes.
    let decl = "inp: Dense<2, 8, Tanh>, body: [Dense<8, 8, Tanh>; 3], out: Dense<4, 1, Identity>, loss: Mse<1>";
    let errs = errors(quote!(), decl.parse::<TokenStream>().map(net).unwrap());
    assert!(!errs[0].contains("make `body`"), "{errs:#?}");
    fixes_are_valid(
        decl,
        1,
        &[(
            "Dense<4, 1, Identity>",
            "Dense<8, 1, Identity>",
            "`out: Dense<8, 1, Identity>`",
        )],
    );
    let decl = "inp: Dense<2, 8, Tanh>, body: [Dense<8, 8, Tanh>; 3], loss: Mse<4>";
    let errs = errors(quote!(), decl.parse::<TokenStream>().map(net).unwrap());
    assert!(!errs[0].contains("make `body`"), "{errs:#?}");
    // A residual array at the start may change its width; after a layer it may not.
    let decl = "body: [Residual<8, Tanh>; 3], out: Dense<4, 1, Identity>, loss: Mse<1>";
    fixes_are_valid(
        decl,
        1,
        &[("[Residual<8, Tanh>; 3]", "[Residual<4, Tanh>; 3]", "")],
    );
    let decl = "inp: Dense<2, 8, Tanh>, body: [Residual<16, Tanh>; 4], head: Dense<16, 1, Identity>, loss: Mse<1>";
    fixes_are_valid(
        decl,
        1,
        &[(
            "Dense<2, 8, Tanh>",
            "Dense<2, 16, Tanh>",
            "make `inp` give 16 outputs: `Dense<2, 16, Tanh>`",
        )],
    );
    let errs = errors(quote!(), decl.parse::<TokenStream>().map(net).unwrap());
    assert!(
        !errs[0].contains("`body: [Residual<8, Tanh>; 4]`"),
        "{errs:#?}"
    );
    // Neither neighbour can change alone: a layer between them.
    let decl = "inp: Dense<2, 8, Tanh>, a: Residual<8, Tanh>, b: Residual<16, Tanh>, head: Dense<16, 1, Identity>, loss: Mse<1>";
    fixes_are_valid(
        decl,
        1,
        &[(
            "b: Residual",
            "b_in: Dense<8, 16, Identity>, b: Residual",
            "`b_in: Dense<8, 16, Identity>`",
        )],
    );
    // Arrays that change width: the first element gets a field of its own.
    fixes_are_valid(
        "inp: Dense<2, 8, Tanh>, body: [Dense<8, 16, Tanh>; 3], head: Dense<16, 1, Identity>, loss: Mse<1>",
        1,
        &[("body: [Dense<8, 16, Tanh>; 3]", "body_in: Dense<8, 16, Tanh>, body: [Dense<16, 16, Tanh>; 2]", "")],
    );
    // A softmax over one class.
    fixes_are_valid(
        "inp: Dense<2, 1, Tanh>, loss: SoftmaxCrossEntropy<1>",
        1,
        &[
            ("Dense<2, 1, Tanh>", "Dense<2, 2, Tanh>", ""),
            (
                "SoftmaxCrossEntropy<1>",
                "SoftmaxCrossEntropy<2>",
                "`loss: SoftmaxCrossEntropy<2>`",
            ),
        ],
    );
    fixes_are_valid(
        "inp: Dense<2, 1, Tanh>, loss: SoftmaxCrossEntropy<1>",
        1,
        &[("SoftmaxCrossEntropy<1>", "Mse<1>", "")],
    );
    // A bad activation does not leak into the fixes of other errors.
    fixes_are_valid(
        "inp: Dense<2, 8, 3>, out: Dense<4, 1, Identity>, loss: Mse<1>",
        2,
        &[
            ("3>", "Identity>", "`inp: Dense<2, 8, Identity>`"),
            (
                "Dense<4, 1, Identity>",
                "Dense<8, 1, Identity>",
                "`out: Dense<8, 1, Identity>`",
            ),
        ],
    );
    let decl = "inp: Dense<2, 8, 3>, out: Dense<4, 1, Identity>, loss: Mse<1>";
    fixes_are_valid(decl, 2, &[("Dense<2, 8, 3>", "Dense<2, 4, Identity>", "")]);
}

#[test]
fn zero_and_name_fixes_are_valid() {
    for (decl, old, new, quoted) in [
        (
            "inp: Dense<0, 8, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1>",
            "Dense<0, 8, Tanh>",
            "Dense<1, 8, Tanh>",
            "`inp: Dense<1, 8, Tanh>`",
        ),
        (
            "inp: Dense<2, 8, Tanh>, out: Dense<0, 1, Identity>, loss: Mse<1>",
            "Dense<0, 1, Identity>",
            "Dense<8, 1, Identity>",
            "`out: Dense<8, 1, Identity>`",
        ),
        (
            "inp: Dense<2, 0, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1>",
            "Dense<2, 0, Tanh>",
            "Dense<2, 8, Tanh>",
            "`inp: Dense<2, 8, Tanh>`",
        ),
        (
            "inp: Dense<2, 8, Tanh>, body: Residual<0, Tanh>, loss: Mse<8>",
            "Residual<0, Tanh>",
            "Residual<8, Tanh>",
            "`body: Residual<8, Tanh>`",
        ),
        (
            "inp: Dense<2, 8, Tanh>, body: [Residual<8, Tanh>; 0], loss: Mse<8>",
            "; 0]",
            "; 4]",
            "`[Residual<8, Tanh>; 4]`",
        ),
        (
            "inp: Dense<2, 8, Tanh>, body: [Residual<8, Tanh>; 0], loss: Mse<8>",
            "body: [Residual<8, Tanh>; 0], ",
            "",
            "remove the field",
        ),
        (
            "inp: Dense<2, 1, Tanh>, loss: Mse<0>",
            "Mse<0>",
            "Mse<1>",
            "`loss: Mse<1>`",
        ),
        (
            "layer: Dense<2, 8, Tanh>, Layer: Dense<8, 1, Identity>, loss: Mse<1>",
            "Layer:",
            "layer_2:",
            "`layer_2`",
        ),
        (
            "a: Dense<2, 8, Tanh>, a: Dense<8, 1, Identity>, loss: Mse<1>",
            "a: Dense<8",
            "a_2: Dense<8",
            "`a_2`",
        ),
        (
            "inp: Dense<2, 8, Tanh>, out: Dense<8, 1, Identity>",
            "Identity>",
            "Identity>, loss: Mse<1>",
            "`loss: Mse<1>`",
        ),
        (
            "inp: Dense<2, 8, Tanh>, out: Dense<8, 4, Identity>",
            "Identity>",
            "Identity>, loss: SoftmaxCrossEntropy<4>",
            "`loss: SoftmaxCrossEntropy<4>`",
        ),
        (
            "loss: Mse<3>",
            "loss",
            "out: Dense<2, 3, Identity>, loss",
            "`out: Dense<2, 3, Identity>`",
        ),
        (
            "inp: Dense<2, 8, Tanh>, loss: Mse<1>, out: Dense<8, 1, Identity>",
            "loss: Mse<1>, out: Dense<8, 1, Identity>",
            "out: Dense<8, 1, Identity>, loss: Mse<1>",
            "move `loss: Mse<1>` below `out`",
        ),
        (
            "inp: Dense<2, 1, Tanh>, loss: Mse<1>, loss2: Mse<1>",
            ", loss2: Mse<1>",
            "",
            "remove `loss2`",
        ),
    ] {
        fixes_are_valid(decl, 1, &[(old, new, quoted)]);
    }
}

// ---- #[activation] and #[loss] -----------------------------------------------------------

#[test]
fn unsupported_constructs_are_each_reported_and_the_list_once() {
    let err = tall_skinny_codegen::expand_activation(
        quote!(),
        quote!(
            fn kitchen_sink(x: f64) -> f64 {
                let mut acc = x % 2.0;
                for _ in 0..3 {
                    acc = acc + 1.0;
                }
                println!("{acc}");
                let p = x.powf(x);
                let k = if x > 0.0 && x < 1.0 { x } else { 0.0 };
                let c = x as i64;
                acc + p + k + helper(x) + c as f64 + kitchen_sink(x - 1.0)
            }
        ),
    )
    .unwrap_err();
    let msgs: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
    let what = [
        "the operator `%`",
        "the statement `for",
        "the macro `println!`",
        "`powf` with an exponent that depends on the argument",
        "`&&` in a condition",
        "a cast to `i64`",
        "the call of `helper`",
        "`kitchen_sink` calls itself",
    ];
    assert_eq!(msgs.len(), what.len(), "{msgs:#?}");
    for (m, w) in msgs.iter().zip(what) {
        assert!(m.contains(w), "{m:?} should be about {w}");
        assert!(m.contains("`kitchen_sink`"), "{m}");
    }
    let listing: Vec<usize> = (0..msgs.len())
        .filter(|&i| msgs[i].contains("supported: float literals"))
        .collect();
    assert_eq!(
        listing,
        [0],
        "the list is in the first message only: {msgs:#?}"
    );
    for m in &msgs[1..msgs.len() - 1] {
        assert!(
            m.contains(
                "rewrite it with the constructs listed at the first error of `kitchen_sink`"
            ),
            "{m}"
        );
    }
    assert!(
        msgs[7].contains("write the function without calling itself"),
        "{}",
        msgs[7]
    );
    // Alone, recursion lists them.
    let err = tall_skinny_codegen::expand_loss(
        quote!(),
        quote!(
            fn again(y: f64, t: f64) -> f64 {
                again(y, t)
            }
        ),
    )
    .unwrap_err();
    let msgs: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(
        msgs[0].contains("calls itself") && msgs[0].contains("supported: "),
        "{}",
        msgs[0]
    );
}
