//! The model of a declared network, parsed from the annotated struct.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, GenericArgument, Ident, Item, PathArguments, Type, Visibility};

use crate::errors::Errors;
use crate::net::attr::{int_lit, Args, Scalar};
use crate::net::check::{check_slots, Slot};

/// The activations built into the runtime, by declaration name.
pub const ACTIVATIONS: &[&str] = &[
    "Identity", "Tanh", "Sigmoid", "Softplus", "Relu", "Gelu", "Silu", "Sin",
];

/// A whole declaration: `#[tall_skinny_net(..)] struct Name { layers.., loss }`.
pub struct Net {
    /// The struct's own attributes (doc comments, derives, ...), passed through.
    pub attrs: Vec<Attribute>,
    /// The struct's visibility.
    pub vis: Visibility,
    /// The struct's name.
    pub ident: Ident,
    /// Samples per batch.
    pub batch: usize,
    /// Scalar type.
    pub scalar: Scalar,
    /// The parameterised layers in order.
    pub layers: Vec<LayerField>,
    /// The loss (always the last field).
    pub loss: LossField,
}

/// Which kind of stage a layer field declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// `Dense<I, O, Act>`: `act(W z + b)`.
    Dense,
    /// `DenseNoBias<I, O, Act>`: `act(W z)`.
    DenseNoBias,
    /// `Residual<W, Act>`: `z + act(W z + b)`.
    Residual,
}

impl LayerKind {
    /// The name used in declarations.
    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Dense => "Dense",
            LayerKind::DenseNoBias => "DenseNoBias",
            LayerKind::Residual => "Residual",
        }
    }

    /// Whether the layer has a bias parameter.
    pub fn bias(self) -> bool {
        !matches!(self, LayerKind::DenseNoBias)
    }
}

/// The activation of a layer.
#[derive(Clone, Debug)]
pub enum Act {
    /// One of [`ACTIVATIONS`], from the runtime.
    Builtin(Ident),
    /// A type of the user's scope, by its path as written (made by `#[activation]`, or any
    /// type implementing the runtime's `Activation`).
    Custom(syn::Path),
}

impl core::fmt::Display for Act {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Act::Builtin(i) => write!(f, "{i}"),
            Act::Custom(p) => write!(f, "{}", tidy(p)),
        }
    }
}

/// An integer from the declaration, with where it was written.
#[derive(Clone, Copy, Debug)]
pub struct Num {
    /// The value.
    pub value: usize,
    /// Its span, for errors.
    pub span: Span,
}

/// One layer field, possibly an array `[Layer; N]` of identical layers.
pub struct LayerField {
    /// Field attributes (doc comments), passed through.
    pub attrs: Vec<Attribute>,
    /// Field visibility.
    pub vis: Visibility,
    /// Field name.
    pub ident: Ident,
    /// Stage kind.
    pub kind: LayerKind,
    /// Input width.
    pub inputs: Num,
    /// Output width.
    pub outputs: Num,
    /// The activation.
    pub act: Act,
    /// `Some(N)` for `[Layer; N]`.
    pub array: Option<Num>,
    /// The declared type, for error spans.
    pub ty: Type,
}

impl LayerField {
    /// Number of stages this field declares.
    pub fn count(&self) -> usize {
        self.array.map_or(1, |n| n.value)
    }

    /// Parameters of one element: `O * I (+ O)`.
    pub fn params_each(&self) -> usize {
        self.outputs.value * self.inputs.value
            + if self.kind.bias() {
                self.outputs.value
            } else {
                0
            }
    }

    /// Parameters of the whole field.
    pub fn params(&self) -> usize {
        self.params_each() * self.count()
    }
}

/// Which loss ends the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// `Mse<O>`
    Mse,
    /// `SoftmaxCrossEntropy<C>`
    SoftmaxCrossEntropy,
    /// A loss type of the user's scope, `Name<O>` (made by `#[loss]`, or any type
    /// implementing the runtime's `Loss`); its path is [`LossField::custom`].
    Custom,
}

impl LossKind {
    /// The name used in declarations.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Mse => "Mse",
            LossKind::SoftmaxCrossEntropy => "SoftmaxCrossEntropy",
            LossKind::Custom => "custom loss",
        }
    }
}

/// The loss field.
pub struct LossField {
    /// Field attributes, passed through.
    pub attrs: Vec<Attribute>,
    /// Field visibility.
    pub vis: Visibility,
    /// Field name.
    pub ident: Ident,
    /// Which loss.
    pub kind: LossKind,
    /// Its width (outputs or classes).
    pub width: Num,
    /// For [`LossKind::Custom`], the type's path without its `<O>` argument.
    pub custom: Option<syn::Path>,
    /// The declared type, for error spans.
    pub ty: Type,
}

const LAYER_HELP: &str = "one of the layers `Dense<I, O, Act>`, `DenseNoBias<I, O, Act>`, \
`Residual<W, Act>` (each may be an array `[Layer; N]`) or, as the last field, one of the losses \
`Mse<O>`, `SoftmaxCrossEntropy<C>`";

/// Every name a field type may have, for "did you mean" hints.
const TYPE_NAMES: &[&str] = &[
    "Dense",
    "DenseNoBias",
    "Residual",
    "Mse",
    "SoftmaxCrossEntropy",
];

/// Names from other libraries, and what to write here instead.
const TYPE_ALIASES: &[(&str, &str)] = &[
    ("Linear", "Dense"),
    ("FullyConnected", "Dense"),
    ("Fc", "Dense"),
    ("Skip", "Residual"),
    ("ResBlock", "Residual"),
    ("MeanSquaredError", "Mse"),
    ("MSELoss", "Mse"),
    ("L2Loss", "Mse"),
    ("CrossEntropyLoss", "SoftmaxCrossEntropy"),
    ("Softmax", "SoftmaxCrossEntropy"),
    ("LogSoftmax", "SoftmaxCrossEntropy"),
    ("CrossEntropy", "SoftmaxCrossEntropy"),
    ("SoftmaxCrossEntropyLoss", "SoftmaxCrossEntropy"),
    ("NLLLoss", "SoftmaxCrossEntropy"),
    ("CategoricalCrossentropy", "SoftmaxCrossEntropy"),
    ("SparseCategoricalCrossentropy", "SoftmaxCrossEntropy"),
];

/// Activation names from other libraries, and what to write here instead.
const ACTIVATION_ALIASES: &[(&str, &str)] = &[
    ("Linear", "Identity"),
    ("None", "Identity"),
    ("Id", "Identity"),
    ("Swish", "Silu"),
    ("Logistic", "Sigmoid"),
    ("Sine", "Sin"),
];

fn suggest(
    name: &str,
    aliases: &[(&str, &'static str)],
    names: &[&'static str],
) -> Option<&'static str> {
    match aliases.iter().find(|(a, _)| a.eq_ignore_ascii_case(name)) {
        Some((_, to)) => Some(to),
        None => crate::errors::did_you_mean(name, names),
    }
}

/// A field as parsed: a layer, the loss, or something already reported as an error.
enum Parsed {
    Layer(LayerField),
    Loss(LossField),
    Broken,
}

/// A declaration example to show in errors about the struct as a whole.
const STRUCT_EXAMPLE: &str =
    "`struct Net { inp: Dense<2, 8, Tanh>, out: Dense<8, 1, Identity>, loss: Mse<1> }`";

/// `Dense < 2 , 8 , Tanh >` (token spacing) as `Dense<2, 8, Tanh>`.
pub(crate) fn tidy(tokens: &impl quote::ToTokens) -> String {
    let s = tokens.to_token_stream().to_string();
    s.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" ;", ";")
        .replace("[ ", "[")
        .replace(" ]", "]")
        .replace(" :: ", "::")
        .replace(" : ", ": ")
        .replace(":: ", "::")
        .replace("& ", "&")
}

impl LayerField {
    /// How this field would be declared with other widths, e.g. `[Residual<8, Tanh>; 3]`.
    pub fn decl_with(&self, inputs: usize, outputs: usize) -> String {
        let one = self.elem_with(inputs, outputs);
        match self.array {
            Some(n) => format!("[{one}; {}]", n.value),
            None => one,
        }
    }

    /// One element with other widths, e.g. `Dense<4, 8, Tanh>`.
    pub fn elem_with(&self, inputs: usize, outputs: usize) -> String {
        elem_decl(self.kind, inputs, outputs, &self.act)
    }
}

impl LossField {
    /// How this loss would be declared with another width, e.g. `Mse<2>`.
    pub fn decl_with(&self, width: usize) -> String {
        format!("{}<{width}>", self.name())
    }

    /// The loss's name as declared (`Mse`, `Huber`, `losses::Huber`).
    pub fn name(&self) -> String {
        match &self.custom {
            Some(p) => tidy(p),
            None => self.kind.name().to_string(),
        }
    }
}

impl Net {
    /// Parses the annotated item, reporting every problem found (with those of `args`):
    /// parse errors of every field, then the checks of [`crate::net::check`] on the fields that
    /// did parse, so a declaration with several mistakes shows them all in one build.
    pub fn from_item(item: &Item, args: Args) -> syn::Result<Net> {
        let Args {
            batch,
            scalar,
            mut errors,
        } = args;
        let s = match item {
            Item::Struct(s) => s,
            Item::Enum(e) => {
                errors.spanned(
                    e.enum_token,
                    format!(
                        "an enum cannot be a network; write a struct with named fields instead, \
                         one per layer and the loss last, e.g. {STRUCT_EXAMPLE}"
                    ),
                );
                return Err(errors.finish().unwrap_err());
            }
            Item::Union(u) => {
                errors.spanned(
                    u.union_token,
                    format!(
                        "a union cannot be a network; write a struct with named fields instead, \
                         one per layer and the loss last, e.g. {STRUCT_EXAMPLE}"
                    ),
                );
                return Err(errors.finish().unwrap_err());
            }
            other => {
                use quote::quote;
                let (what, span) = match other {
                    Item::Fn(f) => {
                        let (k, i) = (&f.sig.fn_token, &f.sig.ident);
                        ("a function", quote!(#k #i))
                    }
                    Item::Type(t) => {
                        let (k, i) = (&t.type_token, &t.ident);
                        ("a type alias", quote!(#k #i))
                    }
                    Item::Trait(t) => {
                        let (k, i) = (&t.trait_token, &t.ident);
                        ("a trait", quote!(#k #i))
                    }
                    Item::Impl(i) => {
                        let k = &i.impl_token;
                        ("an impl block", quote!(#k))
                    }
                    Item::Mod(m) => {
                        let (k, i) = (&m.mod_token, &m.ident);
                        ("a module", quote!(#k #i))
                    }
                    _ => ("this item", quote!(#other)),
                };
                errors.spanned(
                    span,
                    format!(
                        "{what} cannot be a network; #[tall_skinny_net] goes on a struct, so \
                         write one with named fields, one per layer and the loss last, e.g. \
                         {STRUCT_EXAMPLE}"
                    ),
                );
                return Err(errors.finish().unwrap_err());
            }
        };
        if !s.generics.params.is_empty() {
            errors.spanned(
                &s.generics,
                format!(
                    "a network struct cannot be generic: its sizes are fixed by the declaration \
                     and its scalar by the attribute; remove `{}` (for an `f32` network write \
                     `#[tall_skinny_net(scalar = f32)]`)",
                    tidy(&s.generics)
                ),
            );
        }
        if let Some(w) = &s.generics.where_clause {
            errors.spanned(
                w,
                "a network struct cannot have a `where` clause: it is not generic; remove it",
            );
        }
        let named = match &s.fields {
            Fields::Named(named) => Some(named),
            Fields::Unnamed(f) => {
                let n = f.unnamed.len();
                let fields: Vec<String> = f
                    .unnamed
                    .iter()
                    .enumerate()
                    .map(|(i, field)| {
                        let name = if i + 1 == n && n > 1 {
                            "loss".to_string()
                        } else {
                            format!("layer{i}")
                        };
                        format!("{name}: {}", tidy(&field.ty))
                    })
                    .collect();
                let rewrite = if fields.is_empty() {
                    STRUCT_EXAMPLE.to_string()
                } else {
                    format!("`struct {} {{ {} }}`", s.ident, fields.join(", "))
                };
                errors.spanned(
                    f,
                    format!(
                        "a network needs named fields, one per layer and the loss last, not a \
                         tuple struct; write {rewrite}"
                    ),
                );
                None
            }
            Fields::Unit => {
                errors.spanned(
                    &s.ident,
                    format!(
                        "a network needs fields, one per layer and the loss last; write e.g. \
                         {STRUCT_EXAMPLE}"
                    ),
                );
                None
            }
        };
        let Some(named) = named else {
            return Err(errors.finish().unwrap_err());
        };
        if named.named.is_empty() {
            errors.push(syn::Error::new(
                named.brace_token.span.join(),
                format!(
                    "a network needs at least one layer and a loss, the loss last; write e.g. \
                     {STRUCT_EXAMPLE}"
                ),
            ));
            return Err(errors.finish().unwrap_err());
        }

        let fields: Vec<&syn::Field> = named.named.iter().collect();
        let n_fields = fields.len();
        let sketches: Vec<Sketch> = fields.iter().map(|f| sketch(f)).collect();
        let mut parsed: Vec<Parsed> = Vec::with_capacity(n_fields);
        for (i, field) in fields.iter().enumerate() {
            let ident = field.ident.clone().expect("named field");
            let prev = match parsed.last() {
                Some(Parsed::Layer(l)) => Some(l),
                _ => None,
            };
            let around = Around {
                prev,
                prev_out: match prev {
                    Some(l) => Some(l.outputs.value),
                    None => i.checked_sub(1).and_then(|j| sketches[j].outputs()),
                },
                next_in: sketches.get(i + 1).and_then(|s| s.consts.first().copied()),
                loss: (i + 2 == n_fields && sketches[i + 1].loss_like()).then(|| &sketches[i + 1]),
                last: i + 1 == n_fields,
            };
            let p = parse_field(field, ident, &around, &mut errors);
            parsed.push(p);
        }
        let broken = parsed.iter().any(|p| matches!(p, Parsed::Broken));
        let loss_pos: Vec<usize> = parsed
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p, Parsed::Loss(_)))
            .map(|(i, _)| i)
            .collect();
        let layer_names = |range: core::ops::Range<usize>| -> Vec<&Ident> {
            parsed[range]
                .iter()
                .filter_map(|p| match p {
                    Parsed::Layer(l) => Some(&l.ident),
                    _ => None,
                })
                .collect()
        };
        let mut misplaced = false;
        if let Some(&first) = loss_pos.first() {
            let Parsed::Loss(loss) = &parsed[first] else {
                unreachable!()
            };
            let after = layer_names(first + 1..parsed.len());
            if let Some(last) = after.last() {
                misplaced = true;
                let list = after.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>();
                let (which, verb) = match list.split_last() {
                    Some((one, [])) => (format!("layer {one}"), "comes"),
                    Some((last, rest)) => {
                        (format!("layers {} and {last}", rest.join(", ")), "come")
                    }
                    None => unreachable!("at least one layer"),
                };
                errors.spanned(
                    fields[first],
                    format!(
                        "the loss must be the last field, but {which} {verb} after the loss `{}`; \
                         move `{}: {}` below `{last}`",
                        loss.ident,
                        loss.ident,
                        tidy(&loss.ty)
                    ),
                );
            }
            for &extra in &loss_pos[1..] {
                let Parsed::Loss(dup) = &parsed[extra] else {
                    unreachable!()
                };
                errors.spanned(
                    fields[extra],
                    format!(
                        "a network has one loss, and `{}: {}` already is it; remove `{}`",
                        loss.ident,
                        tidy(&loss.ty),
                        dup.ident
                    ),
                );
            }
        }
        let layer_count = parsed
            .iter()
            .filter(|p| matches!(p, Parsed::Layer(_)))
            .count();
        if !broken && loss_pos.is_empty() {
            let last = parsed.iter().rev().find_map(|p| match p {
                Parsed::Layer(l) => Some(l),
                _ => None,
            });
            let example = match last {
                Some(l) if l.outputs.value >= 2 => format!(
                    "`loss: Mse<{o}>` (regression) or `loss: SoftmaxCrossEntropy<{o}>` \
                     (classification) after `{}`",
                    l.ident,
                    o = l.outputs.value
                ),
                Some(l) => format!(
                    "`loss: Mse<{}>` after `{}`",
                    l.outputs.value.max(1),
                    l.ident
                ),
                None => "`loss: Mse<1>`".to_string(),
            };
            errors.spanned(
                &s.ident,
                format!("missing loss: the last field of a network is its loss; add {example}"),
            );
        }
        if !broken && layer_count == 0 && !loss_pos.is_empty() {
            let Parsed::Loss(loss) = &parsed[loss_pos[0]] else {
                unreachable!()
            };
            errors.spanned(
                &s.ident,
                format!(
                    "a network needs at least one layer before the loss; add e.g. \
                     `out: Dense<2, {}, Identity>` above `{}`",
                    loss.width.value.max(1),
                    loss.ident
                ),
            );
        }

        if !errors.is_empty() {
            // Check what did parse, so that these errors come together with the others.
            // The slots are in the intended order (the loss last); a field that did not
            // parse, or a misplaced loss, breaks the chain so that no guess is reported.
            let mut slots: Vec<Slot> = Vec::new();
            for (i, p) in parsed.iter().enumerate() {
                match p {
                    Parsed::Layer(l) => slots.push(Slot::Layer(l)),
                    Parsed::Broken => slots.push(Slot::Broken),
                    Parsed::Loss(_) if Some(&i) == loss_pos.first() => {}
                    Parsed::Loss(_) => slots.push(Slot::Broken),
                }
            }
            if let Some(&first) = loss_pos.first() {
                let Parsed::Loss(loss) = &parsed[first] else {
                    unreachable!()
                };
                if misplaced {
                    slots.push(Slot::Broken);
                }
                slots.push(Slot::Loss(loss));
            }
            check_slots(&slots, &mut errors);
            return Err(errors.finish().unwrap_err());
        }

        let mut layers = Vec::new();
        let mut loss = None;
        for p in parsed {
            match p {
                Parsed::Layer(l) => layers.push(l),
                Parsed::Loss(l) => loss = Some(l),
                Parsed::Broken => unreachable!("reported above"),
            }
        }
        Ok(Net {
            attrs: s.attrs.clone(),
            vis: s.vis.clone(),
            ident: s.ident.clone(),
            batch,
            scalar,
            layers,
            loss: loss.expect("checked above"),
        })
    }

    /// Total number of parameterised stages.
    pub fn depth(&self) -> usize {
        self.layers.iter().map(LayerField::count).sum()
    }

    /// Total number of parameters.
    pub fn n_params(&self) -> usize {
        self.layers.iter().map(LayerField::params).sum()
    }
}

fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => ungroup(&g.elem),
        other => other,
    }
}

/// A built-in layer or loss, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Builtin {
    Layer(LayerKind),
    Loss(LossKind),
}

/// The built-in of exactly this name.
fn exact(name: &str) -> Option<Builtin> {
    Some(match name {
        "Dense" => Builtin::Layer(LayerKind::Dense),
        "DenseNoBias" => Builtin::Layer(LayerKind::DenseNoBias),
        "Residual" => Builtin::Layer(LayerKind::Residual),
        "Mse" => Builtin::Loss(LossKind::Mse),
        "SoftmaxCrossEntropy" => Builtin::Loss(LossKind::SoftmaxCrossEntropy),
        _ => return None,
    })
}

/// The built-in `name` most likely means: itself, the same in another case, another library's
/// name for it (`Linear`), or a near spelling (`Desne`).
fn resolve(name: &str) -> Option<Builtin> {
    exact(name).or_else(|| suggest(name, TYPE_ALIASES, TYPE_NAMES).and_then(exact))
}

/// `Softmax` or `LogSoftmax`, in any case: not an activation here (it couples the outputs of
/// a layer) but part of the loss `SoftmaxCrossEntropy`.
fn is_softmax(name: &str) -> bool {
    ["softmax", "logsoftmax"].contains(&name.to_ascii_lowercase().as_str())
}

/// Binary cross-entropy under PyTorch's names, which no `#[loss]` function is named after
/// (`fn bce_loss` makes `BceLoss`): not built in.
const BCE_NAMES: &[&str] = &["BCELoss", "BCEWithLogitsLoss"];

/// Binary cross-entropy on a score `y` (before the sigmoid) and a target `t` in [0, 1],
/// written so that `#[loss]` accepts it and no `exp` overflows.
const BCE_FN: &str = "#[loss] fn bce_with_logits(y: f64, t: f64) -> f64 { if y > 0.0 { (1.0 + \
(-y).exp()).ln() + y * (1.0 - t) } else { (1.0 + y.exp()).ln() - y * t } }";

/// A field's name without `r#`.
fn plain(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").unwrap_or(&s).to_string()
}

/// What fixes write for a missing or unusable activation: none.
const NO_ACT: &str = "Identity";

/// A field's type as written, read without parsing it (its last name and its integer
/// arguments), so that the fix for one field can use the widths of its neighbours.
struct Sketch {
    ident: Ident,
    name: Option<String>,
    consts: Vec<usize>,
}

fn sketch(field: &syn::Field) -> Sketch {
    let ident = field.ident.clone().expect("named field");
    let elem = match ungroup(&field.ty) {
        Type::Array(a) => ungroup(&a.elem),
        t => t,
    };
    match elem {
        Type::Path(tp) if tp.qself.is_none() => {
            let seg = tp.path.segments.last().expect("a path has a segment");
            let consts = match &seg.arguments {
                PathArguments::AngleBracketed(a) => a
                    .args
                    .iter()
                    .filter_map(const_arg)
                    .map(|n| n.value)
                    .collect(),
                _ => Vec::new(),
            };
            Sketch {
                ident,
                name: Some(seg.ident.to_string()),
                consts,
            }
        }
        _ => Sketch {
            ident,
            name: None,
            consts: Vec::new(),
        },
    }
}

impl Sketch {
    fn builtin(&self) -> Option<Builtin> {
        self.name.as_deref().and_then(resolve)
    }

    /// The outputs of this field, if it reads as a layer with literal widths.
    fn outputs(&self) -> Option<usize> {
        match self.builtin() {
            Some(Builtin::Layer(LayerKind::Residual)) => self.consts.first().copied(),
            Some(Builtin::Layer(_)) => self.consts.get(1).copied(),
            _ => None,
        }
    }

    /// Whether this field reads as a loss: a built-in one under some spelling, or `Name<O>`.
    fn loss_like(&self) -> bool {
        match self.builtin() {
            Some(Builtin::Loss(_)) => true,
            Some(Builtin::Layer(_)) => false,
            None => self.consts.len() == 1 && !self.name.as_deref().is_some_and(is_softmax),
        }
    }
}

/// The neighbours of the field being parsed, for fixes that chain with them.
struct Around<'a> {
    /// The field before, if it parsed as a layer.
    prev: Option<&'a LayerField>,
    /// The outputs of the field before, parsed or read from its tokens.
    prev_out: Option<usize>,
    /// The first width of the field after (its inputs, or a loss's width), from its tokens.
    next_in: Option<usize>,
    /// The last field, when it reads as a loss and this field is the one before it.
    loss: Option<&'a Sketch>,
    /// Whether this is the last field.
    last: bool,
}

fn nonzero(n: Option<usize>) -> Option<usize> {
    n.filter(|&n| n > 0)
}

/// The widths `I, O` a fix for a `Dense` layer writes: those written (`[I, O]`, or one width,
/// read as whichever the neighbours agree with), else the neighbours', never 0.
fn dense_widths(consts: &[usize], around: &Around) -> (usize, usize) {
    let (i, o) = match *consts {
        [i, o, ..] => (nonzero(Some(i)), nonzero(Some(o))),
        [c] => match (around.prev_out, around.next_in) {
            (Some(p), Some(n)) if p != c && n == c && p > 0 => (Some(p), nonzero(Some(c))),
            _ => (nonzero(Some(c)), None),
        },
        [] => (None, None),
    };
    let o = o.or(nonzero(around.next_in));
    let i = i.or(nonzero(around.prev_out)).or(o);
    let o = o.or(i);
    (i.unwrap_or(16), o.unwrap_or(16))
}

/// The width a fix for a `Residual` layer writes.
fn residual_width(consts: &[usize], around: &Around) -> usize {
    nonzero(consts.first().copied())
        .or(nonzero(around.prev_out))
        .or(nonzero(around.next_in))
        .unwrap_or(16)
}

/// One layer element, e.g. `Dense<2, 8, Tanh>` or `Residual<8, Tanh>`.
fn elem_decl(
    kind: LayerKind,
    inputs: usize,
    outputs: usize,
    act: &dyn core::fmt::Display,
) -> String {
    match kind {
        LayerKind::Residual => format!("Residual<{inputs}, {act}>"),
        k => format!("{}<{inputs}, {outputs}, {act}>", k.name()),
    }
}

/// A layer of this kind as a fix writes it, from what was written and the neighbours.
fn layer_fix(kind: LayerKind, consts: &[usize], act: &str, around: &Around) -> String {
    match kind {
        LayerKind::Residual => elem_decl(kind, residual_width(consts, around), 0, &act),
        k => {
            let (i, o) = dense_widths(consts, around);
            elem_decl(k, i, o, &act)
        }
    }
}

/// A loss of this kind as a fix writes it: the width written, else the last layer's outputs.
fn loss_fix(kind: LossKind, consts: &[usize], around: &Around) -> String {
    let w = match *consts {
        [w] if w > 0 => w,
        _ => nonzero(around.prev_out)
            .or(nonzero(consts.first().copied()))
            .unwrap_or(1),
    };
    format!("{}<{w}>", kind.name())
}

/// A built-in as a fix writes it, reusing the widths and activation among `args`.
fn builtin_fix(b: Builtin, args: &[&GenericArgument], around: &Around) -> String {
    let consts: Vec<usize> = args
        .iter()
        .filter_map(|a| const_arg(a))
        .map(|n| n.value)
        .collect();
    match b {
        Builtin::Layer(k) => {
            let act = act_of(args);
            layer_fix(k, &consts, act.as_deref().unwrap_or(NO_ACT), around)
        }
        Builtin::Loss(k) => loss_fix(k, &consts, around),
    }
}

/// The activation among `args` (the last that reads as one), as a fix writes it.
fn act_of(args: &[&GenericArgument]) -> Option<String> {
    args.iter().rev().find_map(|a| act_fix(a))
}

/// `arg` as a fix writes it in an activation's place: a built-in (`Tanh`, also for `Tanh<3>`),
/// the built-in another spelling means (`ReLU`, `Linear`), `Identity` for a softmax, the
/// path of a custom type; `None` for anything else (an integer, a named constant `W`, a layer).
fn act_fix(arg: &GenericArgument) -> Option<String> {
    let GenericArgument::Type(ty) = arg else {
        return None;
    };
    let Type::Path(tp) = ungroup(ty) else {
        return None;
    };
    if tp.qself.is_some() {
        return None;
    }
    let seg = tp.path.segments.last().expect("a path has a segment");
    let name = seg.ident.to_string();
    if tp.path.segments.len() > 1 || tp.path.leading_colon.is_some() {
        return seg.arguments.is_empty().then(|| tidy(&tp.path));
    }
    if ACTIVATIONS.contains(&name.as_str()) {
        return Some(name);
    }
    if is_softmax(&name) {
        return Some(NO_ACT.to_string());
    }
    if near_builtin(&tp.path, ACTIVATION_ALIASES, ACTIVATIONS) {
        return suggest(&name, ACTIVATION_ALIASES, ACTIVATIONS).map(str::to_string);
    }
    let constant = name
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !seg.arguments.is_empty()
        || constant
        || exact(&name).is_some()
        || near_builtin(&tp.path, TYPE_ALIASES, TYPE_NAMES)
    {
        return None;
    }
    Some(name)
}

fn parse_field(field: &syn::Field, ident: Ident, around: &Around, errors: &mut Errors) -> Parsed {
    let Type::Array(arr) = ungroup(&field.ty) else {
        return parse_elem(field, ungroup(&field.ty), None, ident, around, errors);
    };
    let elem = ungroup(&arr.elem);
    if let Some(n) = int_lit(&arr.len) {
        let len = Num {
            value: n,
            span: arr.len.span(),
        };
        return parse_elem(field, elem, Some((arr, len)), ident, around, errors);
    }
    // The length is not a literal: the element is still parsed, for its own errors and for
    // a fix that is valid as a whole.
    let mut inner = Errors::default();
    let len = Num {
        value: 1,
        span: arr.len.span(),
    };
    let is_loss = matches!(elem, Type::Path(tp) if tp.path.segments.last()
        .is_some_and(|s| matches!(exact(&s.ident.to_string()), Some(Builtin::Loss(_)))));
    let p = parse_elem(field, elem, Some((arr, len)), ident, around, &mut inner);
    if !is_loss {
        let example = match &p {
            Parsed::Layer(l) => format!("`[{}; 16]`", l.elem_with(l.inputs.value, l.outputs.value)),
            _ => "`16`".to_string(),
        };
        errors.spanned(
            &arr.len,
            format!(
                "the length of an array of layers must be an integer literal, found `{}` (the \
                 macro cannot read named constants); write e.g. {example}",
                tidy(&arr.len),
            ),
        );
    }
    if let Err(e) = inner.finish() {
        errors.push(e);
    }
    Parsed::Broken
}

/// The layer or loss `elem` (the element type, for an array `arr` of length `len`).
fn parse_elem(
    field: &syn::Field,
    elem: &Type,
    arr: Option<(&syn::TypeArray, Num)>,
    ident: Ident,
    around: &Around,
    errors: &mut Errors,
) -> Parsed {
    let array = arr.map(|(_, n)| n);
    let tp = match elem {
        Type::Path(tp) if tp.qself.is_none() => tp,
        _ => {
            errors.spanned(
                &field.ty,
                format!(
                    "expected a layer or a loss, found `{}`; write {LAYER_HELP}",
                    tidy(&field.ty)
                ),
            );
            return Parsed::Broken;
        }
    };
    let seg = tp.path.segments.last().expect("a path has a segment");
    let name = seg.ident.to_string();
    let single = tp.path.segments.len() == 1 && tp.path.leading_colon.is_none();
    let paren_args: Vec<GenericArgument>;
    let args: Vec<&GenericArgument> = match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().collect(),
        PathArguments::None => Vec::new(),
        PathArguments::Parenthesized(p) => {
            paren_args = p
                .inputs
                .iter()
                .cloned()
                .map(GenericArgument::Type)
                .collect();
            let args: Vec<&GenericArgument> = paren_args.iter().collect();
            let fix = match resolve(&name) {
                Some(b) => builtin_fix(b, &args, around),
                None => format!("{name}<{}>", tidy(&p.inputs)),
            };
            errors.spanned(
                p,
                format!("`{name}` takes `<...>` arguments, not `(...)`; write `{fix}`"),
            );
            return Parsed::Broken;
        }
    };
    let args_span = match &seg.arguments {
        PathArguments::None => quote::ToTokens::to_token_stream(&seg.ident),
        a => quote::ToTokens::to_token_stream(a),
    };
    let attrs = field.attrs.clone();
    let vis = field.vis.clone();
    let consts: Vec<usize> = args
        .iter()
        .filter_map(|a| const_arg(a))
        .map(|n| n.value)
        .collect();
    match exact(&name) {
        Some(Builtin::Layer(kind)) => {
            let want = if kind == LayerKind::Residual { 2 } else { 3 };
            let what = if kind == LayerKind::Residual {
                "the width it keeps and an activation"
            } else {
                "inputs, outputs and an activation"
            };
            let act_written = act_of(&args);
            if kind == LayerKind::Residual && (2..=3).contains(&args.len()) {
                if let (Some(w), Some(o)) = (const_arg(args[0]), const_arg(args[1])) {
                    let act = act_written.as_deref().unwrap_or(NO_ACT);
                    let (w, o) = (w, o.value);
                    // Offer what chains with the neighbours (both when they are unknown).
                    let from_ok = around.prev_out.is_none_or(|p| p == w.value);
                    let (residual, dense) = match array {
                        // An array: its elements feed each other, so the first one changes
                        // the width and the others keep it.
                        Some(n) if n.value > 1 => {
                            let rest = match n.value - 1 {
                                1 => format!("Residual<{o}, {act}>"),
                                k => format!("[Residual<{o}, {act}>; {k}]"),
                            };
                            (
                                format!("`{ident}: [Residual<{}, {act}>; {}]`", w.value, n.value),
                                format!(
                                    "`{}_in: Dense<{}, {o}, {act}>, {ident}: {rest}` to go from \
                                     width {} to {o}",
                                    plain(&ident),
                                    w.value,
                                    w.value
                                ),
                            )
                        }
                        _ => (
                            format!("`Residual<{}, {act}>`", w.value),
                            format!(
                                "`Dense<{}, {o}, {act}>` to go from width {} to {o}",
                                w.value, w.value
                            ),
                        ),
                    };
                    let fixes = match around.next_in {
                        _ if w.value == o => residual,
                        Some(n) if n == o && from_ok => dense,
                        Some(n) if n == w.value => residual,
                        _ => format!("{residual}, or {dense}"),
                    };
                    let and_act = if act_written.is_some() {
                        ""
                    } else {
                        " and an activation"
                    };
                    errors.at(
                        args[1].span(),
                        format!(
                            "a residual stage keeps its width (z + act(W z + b)), so `Residual` \
                             takes one width{and_act}, not two widths; write {fixes}"
                        ),
                    );
                    return Parsed::Broken;
                }
            }
            if args.len() != want {
                let fix = |act: &str| layer_fix(kind, &consts, act, around);
                let msg = if act_written.is_none()
                    && args.len() == want - 1
                    && consts.len() == want - 1
                {
                    let linear = if kind == LayerKind::Residual {
                        ""
                    } else {
                        " (a linear layer)"
                    };
                    format!(
                        "`{name}` takes {want} arguments ({what}), found {}: the activation is \
                         missing; write `{}` for no activation{linear}, or another, e.g. `{}`",
                        args.len(),
                        fix(NO_ACT),
                        fix("Tanh")
                    )
                } else {
                    let act = act_written.as_deref().unwrap_or(NO_ACT);
                    let alt = match kind {
                        LayerKind::Residual => String::new(),
                        _ => {
                            let (i, o) = dense_widths(&consts, around);
                            if i == o && consts.len() < 2 && act_written.is_some() {
                                format!(
                                    ", or `Residual<{i}, {act}>` for a stage that keeps width {i}"
                                )
                            } else {
                                String::new()
                            }
                        }
                    };
                    format!(
                        "`{name}` takes {want} arguments ({what}), found {}; write `{}`{alt}",
                        args.len(),
                        fix(act)
                    )
                };
                errors.spanned(&args_span, msg);
                return Parsed::Broken;
            }
            let written: Vec<Option<Num>> = args[..want - 1].iter().map(|a| const_arg(a)).collect();
            // The widths as a fix writes them: the literals, else the neighbours'.
            let (fix_in, fix_out) = {
                let w = |k: usize| written.get(k).copied().flatten().map(|n| n.value);
                match kind {
                    LayerKind::Residual => {
                        let r = residual_width(&w(0).into_iter().collect::<Vec<_>>(), around);
                        (r, r)
                    }
                    _ => {
                        let (i, o) = (
                            w(0).or(nonzero(around.prev_out)),
                            w(1).or(nonzero(around.next_in)),
                        );
                        (i.or(o).unwrap_or(16), o.or(i).unwrap_or(16))
                    }
                }
            };
            if written.iter().any(Option::is_none) {
                let act = act_fix(args[want - 1]).unwrap_or_else(|| NO_ACT.to_string());
                let fix = elem_decl(kind, fix_in, fix_out, &act);
                for (arg, n) in args.iter().zip(&written) {
                    if n.is_none() {
                        errors.spanned(
                            arg,
                            format!(
                                "widths must be integer literals, found `{}` (the macro cannot \
                                 read named constants); write e.g. `{fix}`",
                                tidy(arg)
                            ),
                        );
                    }
                }
            }
            // A bad activation is reported, but the widths still take part in the checks.
            let decl = |act: &str, outputs: Option<usize>| {
                let one = elem_decl(kind, fix_in, outputs.unwrap_or(fix_out), &act);
                match arr {
                    Some((a, _)) => format!("{ident}: [{one}; {}]", tidy(&a.len)),
                    None => format!("{ident}: {one}"),
                }
            };
            let cx = ActCx {
                ident: &ident,
                decl: &decl,
                outputs: fix_out,
                around,
            };
            let act = activation(args[want - 1], &cx, errors);
            let nums: Vec<Num> = written.into_iter().flatten().collect();
            if nums.len() != want - 1 {
                return Parsed::Broken;
            }
            let (inputs, outputs) = if kind == LayerKind::Residual {
                (nums[0], nums[0])
            } else {
                (nums[0], nums[1])
            };
            Parsed::Layer(LayerField {
                attrs,
                vis,
                ident,
                kind,
                inputs,
                outputs,
                act,
                array,
                ty: field.ty.clone(),
            })
        }
        Some(Builtin::Loss(kind)) => {
            let what = if kind == LossKind::Mse {
                "its number of outputs"
            } else {
                "its number of classes"
            };
            let fix = loss_fix(kind, &consts, around);
            if let Some((arr, _)) = arr {
                errors.spanned(
                    &field.ty,
                    format!(
                        "a loss cannot be an array (found length `{}`); write `{ident}: {fix}`",
                        tidy(&arr.len),
                    ),
                );
                return Parsed::Broken;
            }
            let width = match args.as_slice() {
                [arg] => match const_arg(arg) {
                    Some(n) => n,
                    None => {
                        errors.spanned(
                            arg,
                            format!(
                                "the width of a loss must be an integer literal, found `{}` (the \
                                 macro cannot read named constants); write `{fix}`",
                                tidy(arg)
                            ),
                        );
                        return Parsed::Broken;
                    }
                },
                _ => {
                    errors.spanned(
                        &args_span,
                        format!(
                            "`{name}` takes 1 argument ({what}), found {}; write `{fix}`",
                            args.len()
                        ),
                    );
                    return Parsed::Broken;
                }
            };
            Parsed::Loss(LossField {
                attrs,
                vis,
                ident,
                kind,
                width,
                custom: None,
                ty: field.ty.clone(),
            })
        }
        None if single && is_softmax(&name) && !around.last => {
            errors.spanned(&seg.ident, softmax_field(&name, &ident, around));
            Parsed::Broken
        }
        None if single && BCE_NAMES.contains(&name.as_str()) => {
            errors.spanned(&seg.ident, bce(&name, &ident, &consts, around));
            Parsed::Broken
        }
        None if around.last
            && array.is_none()
            && args.len() == 1
            && const_arg(args[0]).is_some()
            && !near_builtin(&tp.path, TYPE_ALIASES, TYPE_NAMES)
            && !ACTIVATIONS.iter().any(|a| a.eq_ignore_ascii_case(&name)) =>
        {
            // A loss type of the user's scope (`#[loss]`): `Name<O>` as the last field.
            let mut path = tp.path.clone();
            if let Some(seg) = path.segments.last_mut() {
                seg.arguments = PathArguments::None;
            }
            Parsed::Loss(LossField {
                attrs,
                vis,
                ident,
                kind: LossKind::Custom,
                width: const_arg(args[0]).expect("checked"),
                custom: Some(path),
                ty: field.ty.clone(),
            })
        }
        None => {
            let loss_like = args.len() == 1 && const_arg(args[0]).is_some();
            // An activation in a layer's place: a built-in, or another spelling of one that
            // is no layer's name (`Linear` is read as a layer).
            let act_name = if ACTIVATIONS.contains(&name.as_str()) {
                Some(name.as_str())
            } else if single
                && args.is_empty()
                && !near_builtin(&tp.path, TYPE_ALIASES, TYPE_NAMES)
                && near_builtin(&tp.path, ACTIVATION_ALIASES, ACTIVATIONS)
            {
                suggest(&name, ACTIVATION_ALIASES, ACTIVATIONS)
            } else {
                None
            };
            let msg = if let Some(act) = act_name {
                activation_as_layer(&name, act, &ident, around)
            } else {
                match resolve(&name) {
                    Some(b) => format!(
                        "unknown layer or loss `{name}`; write `{}` if that is what you meant, \
                         else {LAYER_HELP}",
                        builtin_fix(b, &args, around)
                    ),
                    None => {
                        let custom = if !loss_like || around.last {
                            ""
                        } else {
                            "; a custom loss `Name<O>` (from `#[loss]`) must be the last field"
                        };
                        format!("unknown layer or loss `{name}`; write {LAYER_HELP}{custom}")
                    }
                }
            };
            errors.spanned(&seg.ident, msg);
            Parsed::Broken
        }
    }
}

/// `act: Tanh` as a field: the activation goes inside a layer, the one before if that has
/// none (as in other libraries' sequential models).
fn activation_as_layer(name: &str, act: &str, ident: &Ident, around: &Around) -> String {
    match around.prev {
        Some(p)
            if p.array.is_none()
                && matches!(&p.act, Act::Builtin(i) if i == NO_ACT)
                && p.kind != LayerKind::Residual =>
        {
            format!(
                "`{name}` is an activation, not a layer: it goes inside a layer; write `{}: {}` \
                 and remove `{ident}`",
                p.ident,
                elem_decl(p.kind, p.inputs.value, p.outputs.value, &act)
            )
        }
        _ => {
            let (i, o) = dense_widths(&[], around);
            format!(
                "`{name}` is an activation, not a layer; write it inside a layer instead, e.g. \
                 `{ident}: {}`",
                elem_decl(LayerKind::Dense, i, o, &act)
            )
        }
    }
}

/// A `Softmax` (or `LogSoftmax`) field between the layers.
fn softmax_field(name: &str, ident: &Ident, around: &Around) -> String {
    let what = what_softmax(name);
    match around.loss {
        Some(loss) if loss.name.as_deref() == Some("SoftmaxCrossEntropy") => format!(
            "`{name}` is not a layer: {what} is part of the loss `SoftmaxCrossEntropy`, which \
             applies it to the outputs of the last layer; remove `{ident}`"
        ),
        Some(loss) => {
            let c = nonzero(around.prev_out)
                .or(nonzero(loss.consts.first().copied()))
                .unwrap_or(2)
                .max(2);
            format!(
                "`{name}` is not a layer: {what} is part of the loss `SoftmaxCrossEntropy`, which \
                 applies it to the outputs of the last layer; remove `{ident}` and write `{}: \
                 SoftmaxCrossEntropy<{c}>` (its targets are class indices, `[usize; B]`)",
                loss.ident
            )
        }
        None => format!(
            "`{name}` is not a layer: {what} is available only as part of the loss \
             `SoftmaxCrossEntropy<C>`, which applies it to the outputs of the last layer; \
             remove `{ident}`"
        ),
    }
}

fn what_softmax(name: &str) -> &'static str {
    if name.to_ascii_lowercase().starts_with("log") {
        "the log-softmax"
    } else {
        "the softmax"
    }
}

/// `loss: BCELoss<O>`: binary cross-entropy is not built in.
fn bce(name: &str, ident: &Ident, consts: &[usize], around: &Around) -> String {
    let w = nonzero(consts.first().copied())
        .or(nonzero(around.prev_out))
        .unwrap_or(1);
    // The last layer with `outputs` scores and no activation, if it has to change.
    let head = |outputs: usize| -> String {
        match around.prev {
            Some(p)
                if p.outputs.value == outputs
                    && matches!(&p.act, Act::Builtin(i) if i == NO_ACT) =>
            {
                String::new()
            }
            Some(p) if p.kind != LayerKind::Residual && p.count() == 1 && p.array.is_none() => {
                format!(
                    "`{}: {}` and ",
                    p.ident,
                    elem_decl(p.kind, p.inputs.value, outputs, &NO_ACT)
                )
            }
            _ => format!("a last layer of {outputs} outputs with `{NO_ACT}`, and "),
        }
    };
    if w == 1 {
        format!(
            "binary cross-entropy (`{name}`) is not built in; for two classes write {}`{ident}: \
             SoftmaxCrossEntropy<2>` (its targets are class indices, 0 or 1: a softmax over two \
             scores is the sigmoid of their difference)",
            head(2)
        )
    } else {
        format!(
            "binary cross-entropy (`{name}`) is not built in; for {w} independent binary outputs \
             write it with `#[loss]` on the scores before the sigmoid, `{BCE_FN}`, then {}`{ident}: \
             BceWithLogits<{w}>`",
            head(w)
        )
    }
}

fn const_arg(arg: &GenericArgument) -> Option<Num> {
    match arg {
        GenericArgument::Const(expr) => int_lit(expr).map(|value| Num {
            value,
            span: expr.span(),
        }),
        _ => None,
    }
}

/// Whether a single-segment `path` is a built-in name in another case (`MSE`, `tanh`) or a
/// name from another library with a built-in equivalent (`Linear`, `Swish`): taken as a
/// mistake rather than as a type of the user's scope (which can still be named `self::Swish`).
fn near_builtin(
    path: &syn::Path,
    aliases: &[(&str, &'static str)],
    names: &[&'static str],
) -> bool {
    if path.segments.len() != 1 || path.leading_colon.is_some() {
        return false;
    }
    let id = &path.segments[0].ident;
    let name = id.to_string();
    names.iter().any(|n| n.eq_ignore_ascii_case(&name))
        || aliases.iter().any(|(a, _)| a.eq_ignore_ascii_case(&name))
}

/// Where an activation is parsed: the layer, for fixes that show it whole.
struct ActCx<'a> {
    ident: &'a Ident,
    /// The layer's declaration (`name: Type`) with another activation and, if given, another
    /// number of outputs.
    decl: &'a dyn Fn(&str, Option<usize>) -> String,
    /// The layer's outputs (as written, or as its fix writes them).
    outputs: usize,
    around: &'a Around<'a>,
}

/// The activation named by `arg`: a built-in (`Tanh`), or a type of the user's scope
/// (`Softsign`, `acts::Softsign`, made by `#[activation]`), whose being an activation the
/// compiler checks. A built-in name in another case (`ReLU`) or another library's name for
/// a built-in (`Linear`, `Swish`) is an error with the fix, and so is a softmax (part of the
/// loss `SoftmaxCrossEntropy` here). On error, records it and returns a stand-in (the likely
/// intended activation, else `Identity`) so the layer's widths can still be checked and
/// shown in other messages; the declaration fails either way.
fn activation(arg: &GenericArgument, cx: &ActCx, errors: &mut Errors) -> Act {
    let list = ACTIVATIONS.join(", ");
    let stand_in = |span: Span, name: &str| Act::Builtin(Ident::new(name, span));
    let tp = match arg {
        GenericArgument::Type(ty) => match ungroup(ty) {
            Type::Path(tp) if tp.qself.is_none() => Some(tp),
            _ => None,
        },
        _ => None,
    };
    let Some(tp) = tp else {
        errors.spanned(
            arg,
            format!(
                "expected an activation, found `{}`; write one of {list} (`{NO_ACT}` for none, \
                 e.g. `{}`), or the name of an `#[activation]` function's type",
                tidy(arg),
                (cx.decl)(NO_ACT, None)
            ),
        );
        return stand_in(arg.span(), NO_ACT);
    };
    let seg = tp.path.segments.last().expect("a path has a segment");
    let name = seg.ident.to_string();
    let single = tp.path.segments.len() == 1 && tp.path.leading_colon.is_none();
    if single && ACTIVATIONS.contains(&name.as_str()) {
        if seg.arguments.is_empty() {
            return Act::Builtin(seg.ident.clone());
        }
        errors.spanned(
            tp,
            format!("the activation `{name}` takes no arguments; write `{name}`"),
        );
        return stand_in(seg.ident.span(), &name);
    }
    if single && is_softmax(&name) {
        errors.spanned(&seg.ident, softmax_act(&name, cx));
        return stand_in(seg.ident.span(), NO_ACT);
    }
    if single && near_builtin(&tp.path, ACTIVATION_ALIASES, ACTIVATIONS) {
        let meant = suggest(&name, ACTIVATION_ALIASES, ACTIVATIONS);
        let msg = match meant {
            Some(m) => format!(
                "unknown activation `{name}`; write `{m}` if that is what you meant, else \
                 one of {list} (for your own `#[activation]` type of this name, write \
                 `self::{name}`)"
            ),
            None => format!("unknown activation `{name}`; write one of {list}"),
        };
        errors.spanned(&seg.ident, msg);
        return stand_in(seg.ident.span(), meant.unwrap_or(NO_ACT));
    }
    Act::Custom(tp.path.clone())
}

/// A softmax as a layer's activation: on the last layer, the fix is the loss
/// `SoftmaxCrossEntropy` on scores without an activation.
fn softmax_act(name: &str, cx: &ActCx) -> String {
    let what = what_softmax(name);
    let around = cx.around;
    if around.loss.is_none() && !around.last {
        return format!(
            "`{name}` is not an activation: an activation acts on each output alone and {what} \
             couples them; it is available only as part of the loss `SoftmaxCrossEntropy<C>`, \
             which applies it to the outputs of the last layer; write another activation here, \
             e.g. `{}`",
            (cx.decl)("Tanh", None)
        );
    }
    let (c, one) = if cx.outputs >= 2 {
        (cx.outputs, "")
    } else {
        (
            2,
            " (a softmax over one output is always 1, so give the layer two)",
        )
    };
    let head = (cx.decl)(NO_ACT, Some(c));
    let start = format!(
        "`{name}` is not an activation: {what} is part of the loss `SoftmaxCrossEntropy`, which \
         applies it to the outputs of the last layer; write `{head}`"
    );
    match around.loss {
        Some(l) if l.name.as_deref() == Some("SoftmaxCrossEntropy") && l.consts == [c] => start,
        Some(l) => format!(
            "{start} and `{}: SoftmaxCrossEntropy<{c}>` (its targets are class indices, \
             `[usize; B]`){one}",
            l.ident
        ),
        None => format!(
            "{start} and add `loss: SoftmaxCrossEntropy<{c}>` after `{}`{one}",
            cx.ident
        ),
    }
}
