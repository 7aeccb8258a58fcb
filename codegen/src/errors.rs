//! Collecting several errors into one `syn::Error` (serde_derive's `Ctxt`, in small), and
//! the "did you mean" hints shared by the parsers.
//!
//! Style of every message: starts in lower case, says what is wrong, then what to write
//! instead, with a concrete example taken from the declaration where possible.

/// Accumulates errors; [`Errors::finish`] returns them all combined, or `Ok`.
#[derive(Default)]
pub struct Errors {
    first: Option<syn::Error>,
}

impl Errors {
    /// Records one error (which may itself combine several).
    pub fn push(&mut self, err: syn::Error) {
        match &mut self.first {
            Some(first) => first.combine(err),
            None => self.first = Some(err),
        }
    }

    /// Records an error spanning `tokens`.
    pub fn spanned<T: quote::ToTokens, M: core::fmt::Display>(&mut self, tokens: T, msg: M) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }

    /// Records an error at `span`.
    pub fn at<M: core::fmt::Display>(&mut self, span: proc_macro2::Span, msg: M) {
        self.push(syn::Error::new(span, msg));
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// How many errors have been recorded.
    pub fn len(&self) -> usize {
        self.first
            .as_ref()
            .map_or(0, |e| e.clone().into_iter().count())
    }

    /// `Ok(())`, or every recorded error at once.
    pub fn finish(self) -> syn::Result<()> {
        match self.first {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// The candidate `name` was most likely meant to be, if any is close: the same word in
/// another case (`tanh` for `Tanh`), a small typo (`Tahn`, `Desne`), or a part of the name
/// (`CrossEntropy` for `SoftmaxCrossEntropy`).
pub fn did_you_mean(name: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if let Some(c) = candidates.iter().find(|c| c.eq_ignore_ascii_case(name)) {
        return Some(c);
    }
    let best = candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), *c))
        .min_by_key(|&(d, _)| d);
    if let Some((d, c)) = best {
        if d <= 1 + c.len().min(name.len()) / 4 {
            return Some(c);
        }
    }
    if lower.len() >= 4 {
        if let Some(c) = candidates.iter().find(|c| {
            let cl = c.to_ascii_lowercase();
            cl.contains(&lower) || lower.contains(&cl)
        }) {
            return Some(c);
        }
    }
    None
}

/// Levenshtein distance (with adjacent transpositions counted as one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let acts = &[
            "Identity", "Tanh", "Sigmoid", "Softplus", "Relu", "Gelu", "Silu", "Sin",
        ];
        assert_eq!(did_you_mean("tanh", acts), Some("Tanh"));
        assert_eq!(did_you_mean("ReLU", acts), Some("Relu"));
        assert_eq!(did_you_mean("Tahn", acts), Some("Tanh"));
        assert_eq!(did_you_mean("Sigmiod", acts), Some("Sigmoid"));
        assert_eq!(did_you_mean("Swish", acts), None);
        let names = &[
            "Dense",
            "DenseNoBias",
            "Residual",
            "Mse",
            "SoftmaxCrossEntropy",
        ];
        assert_eq!(
            did_you_mean("CrossEntropy", names),
            Some("SoftmaxCrossEntropy")
        );
        assert_eq!(did_you_mean("MSE", names), Some("Mse"));
        assert_eq!(did_you_mean("Linear", names), None);
        assert_eq!(did_you_mean("Conv", names), None);
        assert_eq!(did_you_mean("Desne", names), Some("Dense"));
        assert_eq!(did_you_mean("Mae", names), Some("Mse"));
        assert_eq!(did_you_mean("Conv", names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
