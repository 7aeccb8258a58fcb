//! Fuzzing `tall_skinny_codegen::expand`, the whole `#[tall_skinny_net]` macro as a function.
//!
//! The property, for every input: `expand` returns (never panics, never loops), and
//! - on `Ok(tokens)`, `tokens` parse as a Rust file (`syn::File`);
//! - on `Err(e)`, `e` carries at least one message, and
//! - `expand_or_error` (what the proc macro emits) always parses as a Rust file.
//!
//! Two targets share this: `tokens` (arbitrary text, see [`check_text`]) and `structured`
//! (declarations that look like real ones but are wrong in many ways, see [`Decl`]). The
//! regression tests of the crashes found live in `codegen/tests/fuzz_regressions.rs`.

use arbitrary::Arbitrary;
use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;

/// Runs `expand` on one (attribute arguments, item) pair and checks the property.
pub fn check_expand(attr: TokenStream, item: TokenStream) {
    match tall_skinny_codegen::expand(attr.clone(), item.clone()) {
        Ok(tokens) => {
            if let Err(e) = syn::parse2::<syn::File>(tokens.clone()) {
                panic!("expand returned code that does not parse ({e}):\n{tokens}\nfor attr `{attr}` item `{item}`");
            }
        }
        Err(e) => {
            assert!(e.into_iter().count() > 0, "an error without messages");
        }
    }
    let emitted = tall_skinny_codegen::expand_or_error(attr, item);
    if let Err(e) = syn::parse2::<syn::File>(emitted.clone()) {
        panic!("expand_or_error emitted tokens that do not parse ({e}):\n{emitted}");
    }
}

/// Deepest bracket nesting of a token stream. Very deep nesting makes `syn`'s own recursive
/// descent (not the macro) overflow the stack, and rustc rejects it anyway (recursion limit),
/// so such inputs are skipped.
fn depth(ts: &TokenStream) -> usize {
    ts.clone()
        .into_iter()
        .map(|t| match t {
            TokenTree::Group(g) => 1 + depth(&g.stream()),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

const MAX_DEPTH: usize = 32;

fn tokens(s: &str) -> Option<TokenStream> {
    // The nesting is checked on the raw text first: the lexer itself is recursive.
    let mut d = 0usize;
    for c in s.chars() {
        match c {
            '(' | '[' | '{' => {
                d += 1;
                if d > MAX_DEPTH {
                    return None;
                }
            }
            ')' | ']' | '}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    let ts: TokenStream = s.parse().ok()?;
    (depth(&ts) <= MAX_DEPTH).then_some(ts)
}

/// The `tokens` target: arbitrary bytes as text, used two ways.
/// 1. First line = attribute arguments, the rest = the item, both as raw token streams.
/// 2. If the text is a Rust file (as the seed corpus from `tests/ui` is), every item with a
///    `#[tall_skinny_net(..)]` attribute is expanded the way the compiler would call the macro.
pub fn check_text(data: &[u8]) {
    if data.len() > 8192 {
        return;
    }
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (first, rest) = s.split_once('\n').unwrap_or(("", s));
    if let (Some(attr), Some(item)) = (tokens(first), tokens(rest)) {
        check_expand(attr, item);
    }
    let Some(ts) = tokens(s) else { return };
    let Ok(file) = syn::parse2::<syn::File>(ts) else {
        return;
    };
    for mut item in file.items {
        let attrs = match &mut item {
            syn::Item::Struct(i) => &mut i.attrs,
            syn::Item::Enum(i) => &mut i.attrs,
            syn::Item::Union(i) => &mut i.attrs,
            syn::Item::Fn(i) => &mut i.attrs,
            syn::Item::Type(i) => &mut i.attrs,
            _ => continue,
        };
        let Some(pos) = attrs.iter().position(|a| {
            a.path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "tall_skinny_net")
        }) else {
            continue;
        };
        let attr = attrs.remove(pos);
        let args = match attr.meta {
            syn::Meta::List(l) => l.tokens,
            _ => TokenStream::new(),
        };
        check_expand(args, item.to_token_stream());
    }
}

// ---------------------------------------------------------------------------------------------
// Structured declarations

/// Words that appear in declarations, right and wrong.
const WORDS: &[&str] = &[
    "Dense",
    "DenseNoBias",
    "Residual",
    "Mse",
    "SoftmaxCrossEntropy",
    "Identity",
    "Tanh",
    "Sigmoid",
    "Softplus",
    "Relu",
    "Gelu",
    "Silu",
    "Sin",
    "dense",
    "Dens",
    "Residul",
    "DenseNobias",
    "MSE",
    "Softmax",
    "CrossEntropy",
    "ReLU",
    "tanh",
    "Linear",
    "Cos",
    "Foo",
    "f16",
    "f32",
    "f64",
    "u8",
    "usize",
    "Self",
    "crate",
    "_",
    "batch",
    "scalar",
    "Box",
    "Option",
    "Vec",
    "T",
    "N",
    "super",
    "self",
    "r#type",
    "r#loss",
    "loss",
    "inp",
    "out",
    "body",
    "head",
    "a",
    "A",
    "a_",
    "_a",
    "INP",
    "tall_skinny",
    "runtime",
];

/// A word from [`WORDS`], or an arbitrary short identifier-like string.
#[derive(Arbitrary, Debug, Clone)]
pub enum Word {
    Known(u8),
    Raw(String),
}

impl Word {
    fn render(&self) -> String {
        match self {
            Word::Known(i) => WORDS[*i as usize % WORDS.len()].to_string(),
            Word::Raw(s) => s.chars().take(12).collect(),
        }
    }
}

/// Numbers that stress the sizes: zero, small, huge, overflowing, negative, not integers.
#[derive(Arbitrary, Debug, Clone)]
pub enum Num {
    Small(u8),
    Width(u8),
    Zero,
    UsizeMax,
    Huge(u64),
    Pow2(u8),
    Overflow128,
    TooLong,
    Negative(u8),
    Float(u8),
    Suffixed(u8, u8),
    Hex(u16),
    Underscored(u32),
    Paren(u8),
    Expr(u8, u8),
    ConstBlock(u8),
    Str(u8),
    Ident(Word),
}

impl Num {
    fn render(&self) -> String {
        const SUFFIXES: &[&str] = &["usize", "u8", "u64", "i32", "f32", "u128", "isize"];
        match self {
            Num::Small(n) => (n % 4 + 1).to_string(),
            Num::Width(n) => n.to_string(),
            Num::Zero => "0".into(),
            Num::UsizeMax => usize::MAX.to_string(),
            Num::Huge(n) => n.to_string(),
            Num::Pow2(k) => (1u128 << (k % 128)).to_string(),
            Num::Overflow128 => "340282366920938463463374607431768211456".into(),
            Num::TooLong => "9".repeat(80),
            Num::Negative(n) => format!("-{n}"),
            Num::Float(n) => format!("{n}.5"),
            Num::Suffixed(n, s) => format!("{n}{}", SUFFIXES[*s as usize % SUFFIXES.len()]),
            Num::Hex(n) => format!("0x{n:x}"),
            Num::Underscored(n) => {
                let s = n.to_string();
                let (a, b) = s.split_at(s.len() / 2);
                format!("{a}_{b}")
            }
            Num::Paren(n) => format!("({n})"),
            Num::Expr(a, b) => format!("{a} + {b}"),
            Num::ConstBlock(n) => format!("{{ {n} }}"),
            Num::Str(n) => format!("\"{n}\""),
            Num::Ident(w) => w.render(),
        }
    }
}

/// One generic argument of a layer or loss type.
#[derive(Arbitrary, Debug, Clone)]
pub enum TyArg {
    Num(Num),
    Word(Word),
    Path(Word, Word),
    Lifetime,
    Underscore,
    Nested(Word, Vec<Num>),
    Tuple,
    Assoc(Word, Num),
}

impl TyArg {
    fn render(&self) -> String {
        match self {
            TyArg::Num(n) => n.render(),
            TyArg::Word(w) => w.render(),
            TyArg::Path(a, b) => format!("{}::{}", a.render(), b.render()),
            TyArg::Lifetime => "'a".into(),
            TyArg::Underscore => "_".into(),
            TyArg::Nested(w, nums) => format!(
                "{}<{}>",
                w.render(),
                nums.iter()
                    .take(4)
                    .map(Num::render)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TyArg::Tuple => "()".into(),
            TyArg::Assoc(w, n) => format!("{} = {}", w.render(), n.render()),
        }
    }
}

/// A layer or loss type as written: `Kind<args>` with a possibly wrong kind and arguments.
#[derive(Arbitrary, Debug, Clone)]
pub struct Ty {
    pub prefix: Option<Word>,
    pub kind: Word,
    pub args: Option<Vec<TyArg>>,
}

impl Ty {
    fn render(&self) -> String {
        let mut s = String::new();
        if let Some(p) = &self.prefix {
            s += &p.render();
            s += "::";
        }
        s += &self.kind.render();
        if let Some(args) = &self.args {
            s += "<";
            s += &args
                .iter()
                .take(5)
                .map(TyArg::render)
                .collect::<Vec<_>>()
                .join(", ");
            s += ">";
        }
        s
    }
}

/// The type of a field.
#[derive(Arbitrary, Debug, Clone)]
pub enum FieldTy {
    /// A plausible layer: the right kinds, widths from [`Num`], an activation word.
    Layer(u8, Num, Num, Word),
    /// A plausible array of layers.
    Array(u8, Num, Num, Word, Num),
    /// A plausible loss.
    Loss(bool, Num),
    /// Anything type-like.
    Any(Ty),
    /// An array of anything.
    AnyArray(Ty, Num),
    Reference(Ty),
    Tuple(Vec<Ty>),
    Slice(Ty),
    Raw(String),
}

impl FieldTy {
    fn render(&self) -> String {
        let layer = |k: &u8, i: &Num, o: &Num, a: &Word| match k % 3 {
            0 => format!("Dense<{}, {}, {}>", i.render(), o.render(), a.render()),
            1 => format!(
                "DenseNoBias<{}, {}, {}>",
                i.render(),
                o.render(),
                a.render()
            ),
            _ => format!("Residual<{}, {}>", i.render(), a.render()),
        };
        match self {
            FieldTy::Layer(k, i, o, a) => layer(k, i, o, a),
            FieldTy::Array(k, i, o, a, n) => format!("[{}; {}]", layer(k, i, o, a), n.render()),
            FieldTy::Loss(softmax, n) => {
                let kind = if *softmax {
                    "SoftmaxCrossEntropy"
                } else {
                    "Mse"
                };
                format!("{kind}<{}>", n.render())
            }
            FieldTy::Any(t) => t.render(),
            FieldTy::AnyArray(t, n) => format!("[{}; {}]", t.render(), n.render()),
            FieldTy::Reference(t) => format!("&'static {}", t.render()),
            FieldTy::Tuple(ts) => format!(
                "({})",
                ts.iter()
                    .take(3)
                    .map(Ty::render)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            FieldTy::Slice(t) => format!("[{}]", t.render()),
            FieldTy::Raw(s) => s.chars().take(24).collect(),
        }
    }
}

/// A field: `attrs vis name: ty`.
#[derive(Arbitrary, Debug, Clone)]
pub struct Field {
    pub name: Word,
    pub public: bool,
    pub doc: bool,
    pub cfg: bool,
    pub ty: FieldTy,
}

/// An attribute argument: `name = value`, `name`, `name(value)`, or junk.
#[derive(Arbitrary, Debug, Clone)]
pub enum Arg {
    Batch(Num),
    Scalar(Word),
    NameValue(Word, Num),
    Path(Word),
    List(Word, Num),
    Raw(String),
}

impl Arg {
    fn render(&self) -> String {
        match self {
            Arg::Batch(n) => format!("batch = {}", n.render()),
            Arg::Scalar(w) => format!("scalar = {}", w.render()),
            Arg::NameValue(w, n) => format!("{} = {}", w.render(), n.render()),
            Arg::Path(w) => w.render(),
            Arg::List(w, n) => format!("{}({})", w.render(), n.render()),
            Arg::Raw(s) => s.chars().take(16).collect(),
        }
    }
}

/// What kind of item carries the attribute.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Shape {
    Struct,
    TupleStruct,
    UnitStruct,
    Enum,
    Union,
    Fn,
}

/// Generic parameters.
#[derive(Arbitrary, Debug, Clone)]
pub enum Generics {
    Type(Word),
    Lifetime,
    Const(Word),
    Bounded(Word, Word),
}

/// A whole declaration: `#[tall_skinny_net(args)] attrs vis struct Name<generics> { fields }`.
#[derive(Arbitrary, Debug, Clone)]
pub struct Decl {
    pub args: Vec<Arg>,
    pub trailing_comma: bool,
    pub shape: Shape,
    pub public: bool,
    pub name: Word,
    pub generics: Option<Generics>,
    pub where_clause: bool,
    pub derive: bool,
    pub fields: Vec<Field>,
}

impl Decl {
    /// The attribute arguments and the item, as source text.
    pub fn render(&self) -> (String, String) {
        let mut attr = self
            .args
            .iter()
            .take(6)
            .map(Arg::render)
            .collect::<Vec<_>>()
            .join(", ");
        if self.trailing_comma {
            attr += ",";
        }
        let mut item = String::new();
        if self.derive {
            item += "#[derive(Clone, Debug)] ";
        }
        if self.public {
            item += "pub ";
        }
        let name = match self.name.render() {
            n if n.is_empty() => "Net".to_string(),
            n => n,
        };
        let generics = match &self.generics {
            None => String::new(),
            Some(Generics::Type(w)) => format!("<{}>", w.render()),
            Some(Generics::Lifetime) => "<'a>".into(),
            Some(Generics::Const(w)) => format!("<const {}: usize>", w.render()),
            Some(Generics::Bounded(a, b)) => format!("<{}: {}>", a.render(), b.render()),
        };
        let where_clause = if self.where_clause {
            " where Self: Sized"
        } else {
            ""
        };
        let fields: Vec<String> = self
            .fields
            .iter()
            .take(10)
            .map(|f| {
                let mut s = String::new();
                if f.doc {
                    s += "/// doc\n";
                }
                if f.cfg {
                    s += "#[cfg(test)] ";
                }
                if f.public {
                    s += "pub ";
                }
                s + &format!("{}: {}", f.name.render(), f.ty.render())
            })
            .collect();
        let unnamed: Vec<String> = self.fields.iter().take(10).map(|f| f.ty.render()).collect();
        match self.shape {
            Shape::Struct => {
                item += &format!(
                    "struct {name}{generics}{where_clause} {{ {} }}",
                    fields.join(",\n")
                )
            }
            Shape::TupleStruct => {
                item += &format!(
                    "struct {name}{generics}({}){where_clause};",
                    unnamed.join(", ")
                )
            }
            Shape::UnitStruct => item += &format!("struct {name}{generics};"),
            Shape::Enum => {
                item += &format!("enum {name}{generics} {{ A {{ {} }} }}", fields.join(", "))
            }
            Shape::Union => item += &format!("union {name}{generics} {{ {} }}", fields.join(", ")),
            Shape::Fn => item += &format!("fn {name}() {{}}"),
        }
        (attr, item)
    }
}

/// The `structured` target: renders the declaration and checks the property. Declarations
/// whose text does not even tokenise (from the raw strings) are skipped.
pub fn check_decl(decl: &Decl) {
    let (attr, item) = decl.render();
    if let (Some(attr), Some(item)) = (tokens(&attr), tokens(&item)) {
        check_expand(attr, item);
    }
}

// ---------------------------------------------------------------------------------------------
// Chains: declarations whose widths chain by construction, so that the fuzzer reaches the
// size arithmetic and the code generation with extreme (and ordinary) numbers.

/// A width: mostly small, sometimes extreme.
#[derive(Arbitrary, Debug, Clone)]
pub enum Width {
    Small(u8),
    Any(Num),
}

impl Width {
    fn render(&self) -> String {
        match self {
            Width::Small(n) => (n % 17).to_string(),
            Width::Any(n) => n.render(),
        }
    }
}

/// One layer of a chain: kind (Dense, DenseNoBias, Residual), activation, output width,
/// array length.
#[derive(Arbitrary, Debug, Clone)]
pub struct ChainLayer {
    pub kind: u8,
    pub act: u8,
    pub out: Width,
    pub array: Option<Width>,
}

/// A declaration whose layer widths chain (`inputs` of a layer = `outputs` of the previous).
#[derive(Arbitrary, Debug, Clone)]
pub struct Chain {
    pub batch: Option<Width>,
    pub f32: bool,
    pub inputs: Width,
    pub layers: Vec<ChainLayer>,
    pub softmax: bool,
    /// Which extra mistake, if any (index into a list; most values mean none).
    pub mistake: u8,
}

impl Chain {
    /// The attribute arguments and the item, as source text.
    pub fn render(&self) -> (String, String) {
        const ACTS: &[&str] = &[
            "Identity", "Tanh", "Sigmoid", "Softplus", "Relu", "Gelu", "Silu", "Sin",
        ];
        let mut args = Vec::new();
        if let Some(b) = &self.batch {
            args.push(format!("batch = {}", b.render()));
        }
        if self.f32 {
            args.push("scalar = f32".into());
        }
        let mut fields = Vec::new();
        let mut width = self.inputs.render();
        for (k, l) in self.layers.iter().take(12).enumerate() {
            let act = ACTS[l.act as usize % ACTS.len()];
            let (ty, out) = match l.kind % 3 {
                0 => {
                    let out = l.out.render();
                    (format!("Dense<{width}, {out}, {act}>"), out)
                }
                1 => {
                    let out = l.out.render();
                    (format!("DenseNoBias<{width}, {out}, {act}>"), out)
                }
                _ => (format!("Residual<{width}, {act}>"), width.clone()),
            };
            let ty = match &l.array {
                Some(n) if out == width => format!("[{ty}; {}]", n.render()),
                _ => ty,
            };
            fields.push(format!("l{k}: {ty}"));
            width = out;
        }
        let loss = if self.softmax {
            "SoftmaxCrossEntropy"
        } else {
            "Mse"
        };
        fields.push(format!("loss: {loss}<{width}>"));
        match self.mistake % 16 {
            0 => {
                fields.pop();
            }
            1 => fields.insert(0, format!("first: {loss}<2>")),
            2 => {
                let f = fields[0].clone();
                fields.insert(0, f);
            }
            3 => args.push("batch = 2".into()),
            4 => args.push("scalar = f16".into()),
            _ => {}
        }
        (
            args.join(", "),
            format!("pub struct Net {{ {} }}", fields.join(", ")),
        )
    }
}

/// The `structured` target's input: a free-form declaration or a chain.
#[derive(Arbitrary, Debug, Clone)]
pub enum Input {
    Decl(Decl),
    Chain(Chain),
}

/// The `structured` target.
pub fn check_input(input: &Input) {
    let (attr, item) = match input {
        Input::Decl(d) => d.render(),
        Input::Chain(c) => c.render(),
    };
    if let (Some(attr), Some(item)) = (tokens(&attr), tokens(&item)) {
        check_expand(attr, item);
    }
}
